//! Blocking byte streams for the REST and WebSocket clients: std TCP, plain or wrapped in a
//! rustls session, with connect and I/O timeouts. URL parsing for the two endpoints.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream, ToSocketAddrs},
    sync::Arc,
    time::Duration,
};

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};

use super::BinanceError;

/// A parsed `http(s)://` or `ws(s)://` URL: what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// TLS (https, wss) or plain (http, ws).
    pub(crate) tls: bool,
    /// Host name or IP literal (without brackets).
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// Path (`/` when the URL has none); REST paths are appended to it.
    pub(crate) path: String,
}

impl Endpoint {
    /// Parses `scheme://host[:port][/path]`; `web` selects http/https, else ws/wss.
    pub(crate) fn parse(key: &'static str, url: &str, web: bool) -> Result<Self, BinanceError> {
        let bad = |reason| BinanceError::Url {
            key,
            url: url.to_owned(),
            reason,
        };
        let (tls, rest) = match url.split_once("://") {
            Some(("https", rest)) if web => (true, rest),
            Some(("http", rest)) if web => (false, rest),
            Some(("wss", rest)) if !web => (true, rest),
            Some(("ws", rest)) if !web => (false, rest),
            _ if web => return Err(bad("expected an http:// or https:// URL")),
            _ => return Err(bad("expected a ws:// or wss:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if path.contains(['?', '#', ' ']) {
            return Err(bad("the URL must not carry a query, fragment or space"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("unexpected text after the host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad("bad port"))?),
                None => (authority, default_port),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        {
            return Err(bad("bad host name"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Builds the rustls client configuration: the bundled Mozilla roots plus any extra PEM
/// files, ring provider, TLS 1.2 and 1.3.
pub(crate) fn tls_config(extra_root_pem: &[String]) -> Result<Arc<ClientConfig>, BinanceError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_root_pem {
        let pem = std::fs::read(path).map_err(|e| BinanceError::Tls(format!("{path}: {e}")))?;
        let mut found = 0usize;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| BinanceError::Tls(format!("{path}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| BinanceError::Tls(format!("{path}: {e}")))?;
            found += 1;
        }
        if found == 0 {
            return Err(BinanceError::Tls(format!(
                "{path}: no CERTIFICATE block in the file"
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BinanceError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connected blocking stream: plain TCP or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Connects to the endpoint (first address that answers within `connect_timeout`) and
    /// starts TLS if the endpoint wants it; the handshake itself runs on first I/O.
    pub(crate) fn connect(
        endpoint: &Endpoint,
        tls: &Arc<ClientConfig>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> io::Result<Self> {
        let addrs: Vec<SocketAddr> = match endpoint.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, endpoint.port)],
            Err(_) => (endpoint.host.as_str(), endpoint.port)
                .to_socket_addrs()?
                .collect(),
        };
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "host name has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(socket) => {
                    // Small request/response messages: send at once.
                    socket.set_nodelay(true)?;
                    socket.set_read_timeout(Some(io_timeout))?;
                    socket.set_write_timeout(Some(io_timeout))?;
                    if !endpoint.tls {
                        return Ok(Self::Plain(socket));
                    }
                    let name = ServerName::try_from(endpoint.host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let session =
                        ClientConnection::new(Arc::clone(tls), name).map_err(io::Error::other)?;
                    return Ok(Self::Tls(Box::new(StreamOwned::new(session, socket))));
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The TCP socket underneath.
    pub(crate) fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }

    /// True if an idle connection can no longer be used: the peer closed it or sent
    /// something unsolicited (a TLS close_notify, an error page). Checked before reusing a
    /// keep-alive connection, so that a request is not written into a dead socket — which
    /// for a new order would leave its fate unknown.
    pub(crate) fn is_stale(&self) -> bool {
        let socket = self.socket();
        if socket.set_nonblocking(true).is_err() {
            return true;
        }
        let mut probe = [0u8; 1];
        let stale = match socket.peek(&mut probe) {
            Ok(_) => true, // EOF (0) or unexpected bytes
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        socket.set_nonblocking(false).is_err() || stale
    }

    /// Changes the read timeout (the WebSocket reader polls with a short one).
    pub(crate) fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.socket().set_read_timeout(Some(timeout))
    }

    /// Closes both directions without waiting.
    pub(crate) fn shutdown(&self) {
        // Already closed by the peer: nothing to do about an error here.
        let _ = self.socket().shutdown(std::net::Shutdown::Both);
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// True for the errors a read timeout produces.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let e = Endpoint::parse("rest_url", "https://api.binance.com", true).unwrap();
        assert_eq!(
            (e.tls, e.host.as_str(), e.port, e.path.as_str()),
            (true, "api.binance.com", 443, "")
        );
        assert_eq!(e.host_header(), "api.binance.com");
        let e = Endpoint::parse("rest_url", "http://127.0.0.1:8080/", true).unwrap();
        assert_eq!((e.tls, e.port), (false, 8080));
        assert_eq!(e.host_header(), "127.0.0.1:8080");
        let e = Endpoint::parse("ws", "wss://ws-api.binance.com:443/ws-api/v3", false).unwrap();
        assert_eq!((e.tls, e.port, e.path.as_str()), (true, 443, "/ws-api/v3"));
        let e = Endpoint::parse("ws", "ws://[::1]:9000/x", false).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.host_header(), "[::1]:9000");
        assert!(Endpoint::parse("rest_url", "ftp://x", true).is_err());
        assert!(Endpoint::parse("rest_url", "wss://x", true).is_err());
        assert!(Endpoint::parse("rest_url", "https://x:notaport", true).is_err());
        assert!(Endpoint::parse("rest_url", "https://x/a?b=c", true).is_err());
        assert!(Endpoint::parse("rest_url", "https://x y", true).is_err());
    }
}
