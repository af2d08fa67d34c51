//! Byte streams under the WebSocket and HTTP clients: a non-blocking TCP socket (mio), plain
//! or wrapped in a rustls client session. Platform details stay here.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, ToSocketAddrs},
    sync::Arc,
};

use mio::net::TcpStream;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};

use super::{Endpoint, LiveError};

/// Which servers a TLS connection trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Root certificates in PEM (each entry may hold several `CERTIFICATE` blocks).
    pub pem_roots: Vec<Vec<u8>>,
    /// Also trust the Mozilla roots bundled by `webpki-roots` (real exchanges).
    pub webpki_roots: bool,
}

impl TlsConfig {
    /// Trust the bundled Mozilla roots only.
    pub fn public_roots() -> Self {
        Self {
            pem_roots: Vec::new(),
            webpki_roots: true,
        }
    }

    /// Builds the rustls client configuration (ring provider, TLS 1.2 and 1.3).
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, LiveError> {
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for (index, pem) in self.pem_roots.iter().enumerate() {
            let mut found = 0usize;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| LiveError::BadRootCertificate {
                    index,
                    reason: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| LiveError::BadRootCertificate {
                    index,
                    reason: e.to_string(),
                })?;
                found += 1;
            }
            if found == 0 {
                return Err(LiveError::BadRootCertificate {
                    index,
                    reason: "no CERTIFICATE block in the PEM text".into(),
                });
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| LiveError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// A connected stream: plain TCP or TLS over TCP, both non-blocking.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
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

impl Transport {
    /// Wraps a connected socket, starting the TLS session if the endpoint wants one.
    pub(crate) fn new(
        stream: TcpStream,
        endpoint: &Endpoint,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Self> {
        if !endpoint.tls {
            return Ok(Self::Plain(stream));
        }
        let config = tls.ok_or_else(|| io::Error::other("no TLS configuration"))?;
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let session = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        Ok(Self::Tls(Box::new(StreamOwned::new(session, stream))))
    }

    /// Closes the socket (both directions) without waiting.
    pub(crate) fn shutdown(&mut self) {
        let socket = match self {
            Self::Plain(s) => &*s,
            Self::Tls(s) => &s.sock,
        };
        // A socket the peer already closed returns an error here; nothing to do about it.
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
}

/// Starts a non-blocking TCP connect to the endpoint's first resolved address.
pub(crate) fn start_connect(endpoint: &Endpoint) -> io::Result<TcpStream> {
    let addr = resolve(endpoint)?;
    let stream = TcpStream::connect(addr)?;
    // Latency over throughput: small messages go out at once.
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn resolve(endpoint: &Endpoint) -> io::Result<SocketAddr> {
    if let Ok(ip) = endpoint.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, endpoint.port));
    }
    (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host name has no address"))
}

/// Where a non-blocking connect stands.
pub(crate) enum ConnectProgress {
    Pending,
    Connected,
    Failed(io::Error),
}

/// Checks a connect started by [`start_connect`] (mio's documented procedure: a pending
/// error means failure, a peer address means connected, `NotConnected` means not yet).
pub(crate) fn connect_progress(stream: &TcpStream) -> ConnectProgress {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return ConnectProgress::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => ConnectProgress::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => ConnectProgress::Pending,
        Err(e) => ConnectProgress::Failed(e),
    }
}

/// True for the errors that mean "try again later" on a non-blocking socket.
pub(crate) fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
