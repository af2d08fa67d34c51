//! A small blocking HTTP/1.1 client with keep-alive, for the REST API.
//!
//! One connection at a time, reused while the server keeps it open; the request and
//! response buffers are reused between requests. Bodies are read by `Content-Length` or
//! chunked transfer coding and bounded in size. Only the response headers the adapter needs
//! are kept (status, `Retry-After`, `X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`,
//! `X-MBX-ORDER-COUNT-1D`, `Connection`).

use std::{
    io::{self, Read, Write},
    ops::Range,
    sync::Arc,
    time::Duration,
};

use rustls::ClientConfig;

use super::net::{Endpoint, Stream};

/// Largest response accepted (headers and body), bytes. An open-orders list of a busy
/// account is far below this.
const MAX_RESPONSE: usize = 8 << 20;
const READ_CHUNK: usize = 16 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// No connection could be made: nothing was sent.
    Connect(io::Error),
    /// The exchange failed after connecting. `sent` is false only if not one byte of the
    /// request was written, i.e. the server cannot have acted on it.
    Io {
        /// Whether any part of the request may have reached the server.
        sent: bool,
        /// The error.
        source: io::Error,
    },
    /// The response is not HTTP/1.1 as expected, or too large.
    Malformed(&'static str),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Io {
                sent: false,
                source,
            } => write!(f, "request not sent: {source}"),
            Self::Io { sent: true, source } => write!(f, "exchange failed: {source}"),
            Self::Malformed(what) => write!(f, "malformed response: {what}"),
        }
    }
}

impl HttpError {
    /// True if the server may have received (and acted on) the request.
    pub(crate) fn maybe_sent(&self) -> bool {
        match self {
            Self::Connect(_) => false,
            Self::Io { sent, .. } => *sent,
            Self::Malformed(_) => true,
        }
    }
}

/// The parts of a response the adapter uses; the body borrows the client's buffer.
#[derive(Debug)]
pub(crate) struct Response<'a> {
    /// HTTP status.
    pub(crate) status: u16,
    /// The body (de-chunked).
    pub(crate) body: &'a [u8],
    /// `Retry-After` in seconds.
    pub(crate) retry_after_s: Option<u64>,
    /// `X-MBX-USED-WEIGHT-1M`.
    pub(crate) used_weight_1m: Option<u32>,
    /// `X-MBX-ORDER-COUNT-10S`.
    pub(crate) order_count_10s: Option<u32>,
    /// `X-MBX-ORDER-COUNT-1D`.
    pub(crate) order_count_1d: Option<u32>,
}

/// Headers parsed from a response, before the body is known.
#[derive(Debug, Default, Clone, Copy)]
struct Head {
    status: u16,
    header_len: usize,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    retry_after_s: Option<u64>,
    used_weight_1m: Option<u32>,
    order_count_10s: Option<u32>,
    order_count_1d: Option<u32>,
}

/// The client. Not shared: it lives on the adapter thread.
pub(crate) struct HttpClient {
    endpoint: Endpoint,
    host_header: String,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
    io_timeout: Duration,
    conn: Option<Stream>,
    request: Vec<u8>,
    response: Vec<u8>,
    body: Vec<u8>,
}

impl HttpClient {
    pub(crate) fn new(
        endpoint: Endpoint,
        tls: Arc<ClientConfig>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Self {
        let host_header = endpoint.host_header();
        Self {
            endpoint,
            host_header,
            tls,
            connect_timeout,
            io_timeout,
            conn: None,
            request: Vec::with_capacity(1024),
            response: Vec::with_capacity(READ_CHUNK),
            body: Vec::with_capacity(READ_CHUNK),
        }
    }

    /// Sends one request and reads its response. `target` is the path (appended to the
    /// endpoint's path) with its query string; `body` is `application/x-www-form-urlencoded`.
    pub(crate) fn send(
        &mut self,
        method: &str,
        target: &str,
        api_key: Option<&str>,
        body: &[u8],
    ) -> Result<Response<'_>, HttpError> {
        self.build_request(method, target, api_key, body);
        // A reused connection the server closed while idle is replaced before writing; if
        // writing into a reused connection still fails before any byte went out, one fresh
        // connection is tried (the server cannot have seen the request).
        if self.conn.as_ref().is_some_and(Stream::is_stale) {
            self.drop_connection();
        }
        let reused = self.conn.is_some();
        let head = match self.exchange() {
            Err(HttpError::Io { sent: false, .. }) if reused => {
                self.drop_connection();
                self.exchange()
            }
            other => other,
        };
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                self.drop_connection();
                return Err(e);
            }
        };
        if head.close {
            self.drop_connection();
        }
        let body = if head.chunked {
            &self.body[..]
        } else {
            let end = head.header_len + head.content_length.unwrap_or(0);
            &self.response[head.header_len..end]
        };
        Ok(Response {
            status: head.status,
            body,
            retry_after_s: head.retry_after_s,
            used_weight_1m: head.used_weight_1m,
            order_count_10s: head.order_count_10s,
            order_count_1d: head.order_count_1d,
        })
    }

    fn build_request(&mut self, method: &str, target: &str, api_key: Option<&str>, body: &[u8]) {
        let r = &mut self.request;
        r.clear();
        r.extend_from_slice(method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(self.endpoint.path.as_bytes());
        r.extend_from_slice(target.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(self.host_header.as_bytes());
        r.extend_from_slice(b"\r\nUser-Agent: aaiti\r\nAccept: application/json\r\n");
        if let Some(key) = api_key {
            // Credentials::new allows printable ASCII only: no header injection possible.
            r.extend_from_slice(b"X-MBX-APIKEY: ");
            r.extend_from_slice(key.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || method == "POST" {
            r.extend_from_slice(b"Content-Type: application/x-www-form-urlencoded\r\n");
            r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        r.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
        r.extend_from_slice(body);
    }

    fn drop_connection(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.shutdown();
        }
    }

    /// Writes the request and reads the response into the buffers.
    fn exchange(&mut self) -> Result<Head, HttpError> {
        if self.conn.is_none() {
            let conn = Stream::connect(
                &self.endpoint,
                &self.tls,
                self.connect_timeout,
                self.io_timeout,
            )
            .map_err(HttpError::Connect)?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(HttpError::Connect(io::Error::other("no connection")));
        };
        let mut written = 0usize;
        while written < self.request.len() {
            match conn.write(&self.request[written..]) {
                Ok(0) => {
                    return Err(HttpError::Io {
                        sent: written > 0,
                        source: io::Error::new(io::ErrorKind::WriteZero, "connection closed"),
                    });
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(HttpError::Io {
                        sent: written > 0,
                        source,
                    });
                }
            }
        }
        conn.flush()
            .map_err(|source| HttpError::Io { sent: true, source })?;
        self.response.clear();
        self.body.clear();
        let mut head: Option<Head> = None;
        loop {
            if let Some(h) = head
                && self.body_complete(&h)? == Some(true)
            {
                return Ok(h);
            }
            let start = self.response.len();
            if start >= MAX_RESPONSE {
                return Err(HttpError::Malformed("response larger than 8 MiB"));
            }
            self.response.resize(start + READ_CHUNK, 0);
            let Some(conn) = self.conn.as_mut() else {
                return Err(HttpError::Malformed("connection lost"));
            };
            let read = conn.read(&mut self.response[start..]);
            match read {
                Ok(0) => {
                    self.response.truncate(start);
                    return Err(HttpError::Io {
                        sent: true,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before the response was complete",
                        ),
                    });
                }
                Ok(n) => self.response.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.response.truncate(start);
                }
                Err(source) => {
                    self.response.truncate(start);
                    return Err(HttpError::Io { sent: true, source });
                }
            }
            if head.is_none() {
                head = parse_head(&self.response)?;
            }
        }
    }

    /// `Some(true)` once the whole body is in; de-chunks into `self.body` when chunked.
    fn body_complete(&mut self, head: &Head) -> Result<Option<bool>, HttpError> {
        let available = &self.response[head.header_len..];
        if head.chunked {
            self.body.clear();
            return match dechunk(available, &mut self.body)? {
                Some(_) => Ok(Some(true)),
                None => Ok(Some(false)),
            };
        }
        match head.content_length {
            Some(len) => Ok(Some(available.len() >= len)),
            // 1xx/204/304 carry no body; anything else without a length is not supported
            // (Binance always sends a length or chunks).
            None if head.status == 204 || head.status == 304 => Ok(Some(true)),
            None => Err(HttpError::Malformed(
                "response without Content-Length or chunks",
            )),
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Malformed("bad status line or header")),
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        header_len,
        close: response.version == Some(0),
        ..Head::default()
    };
    let number =
        |value: &[u8]| -> Option<u64> { std::str::from_utf8(value).ok()?.trim().parse().ok() };
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                number(value)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n <= MAX_RESPONSE)
                    .ok_or(HttpError::Malformed("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case("retry-after") {
            head.retry_after_s = number(value);
        } else if name.eq_ignore_ascii_case("x-mbx-used-weight-1m") {
            head.used_weight_1m = number(value).map(|n| n.min(u64::from(u32::MAX)) as u32);
        } else if name.eq_ignore_ascii_case("x-mbx-order-count-10s") {
            head.order_count_10s = number(value).map(|n| n.min(u64::from(u32::MAX)) as u32);
        } else if name.eq_ignore_ascii_case("x-mbx-order-count-1d") {
            head.order_count_1d = number(value).map(|n| n.min(u64::from(u32::MAX)) as u32);
        }
    }
    Ok(Some(head))
}

/// Decodes a chunked body from `input` into `out`: `Some(consumed)` when the last chunk and
/// the trailer are in, `None` if more input is needed.
fn dechunk(input: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, HttpError> {
    let mut at = 0usize;
    loop {
        let Some(line) = find_crlf(&input[at..]) else {
            return Ok(None);
        };
        let size_text = &input[at..at + line];
        // Chunk extensions (";name=value") are allowed and ignored.
        let size_text = size_text.split(|&b| b == b';').next().unwrap_or(size_text);
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or(HttpError::Malformed("bad chunk size"))?;
        at += line + 2;
        if size == 0 {
            // Trailer fields until an empty line.
            loop {
                let Some(line) = find_crlf(&input[at..]) else {
                    return Ok(None);
                };
                at += line + 2;
                if line == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if out.len() + size > MAX_RESPONSE {
            return Err(HttpError::Malformed("response larger than 8 MiB"));
        }
        let data: Range<usize> = at..at + size;
        if input.len() < data.end + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&input[data.clone()]);
        if &input[data.end..data.end + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk not followed by CRLF"));
        }
        at = data.end + 2;
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks() {
        let mut out = Vec::new();
        let input = b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n";
        assert_eq!(dechunk(input, &mut out).unwrap(), Some(input.len()));
        assert_eq!(out, b"Wikipedia");
        out.clear();
        assert_eq!(dechunk(&input[..10], &mut out).unwrap(), None);
        out.clear();
        assert!(dechunk(b"zz\r\n", &mut out).is_err());
    }

    #[test]
    fn parses_rate_limit_headers() {
        let head = parse_head(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nX-MBX-USED-WEIGHT-1M: 6001\r\nx-mbx-order-count-10s: 3\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.status, 429);
        assert_eq!(head.retry_after_s, Some(7));
        assert_eq!(head.used_weight_1m, Some(6001));
        assert_eq!(head.order_count_10s, Some(3));
        assert_eq!(head.content_length, Some(2));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
    }
}
