//! A non-blocking HTTP/1.1 GET for REST depth snapshots, advanced a step per poll and
//! bounded in time and size.

use std::{
    io::{self, Read, Write},
    ops::Range,
    sync::Arc,
};

use aaiti_model::InstrumentId;
use mio::net::TcpStream;
use rustls::ClientConfig;

use super::{
    Endpoint,
    transport::{self, ConnectProgress, Transport},
};

/// Reads per poll before yielding, so a large body cannot hold the owner thread for long.
const READS_PER_POLL: usize = 64;
const READ_CHUNK: usize = 16 * 1024;

enum State {
    Idle,
    Connecting(TcpStream),
    Exchanging(Transport),
}

/// What a fetch poll found.
#[derive(Debug)]
pub(crate) enum FetchPoll {
    /// No fetch in progress.
    Idle,
    /// Still going.
    Pending,
    /// The body is complete: read it with [`SnapshotFetch::body_mut`].
    Done(InstrumentId),
    /// Failed (the fetch is idle again).
    Failed(InstrumentId, String),
}

/// One snapshot request at a time; buffers are reused between requests.
pub(crate) struct SnapshotFetch {
    state: State,
    instrument: InstrumentId,
    endpoint: Option<Endpoint>,
    deadline_ns: u64,
    request: Vec<u8>,
    written: usize,
    response: Vec<u8>,
    body: Range<usize>,
    max_bytes: usize,
}

impl SnapshotFetch {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            state: State::Idle,
            instrument: InstrumentId(0),
            endpoint: None,
            deadline_ns: 0,
            request: Vec::new(),
            written: 0,
            response: Vec::new(),
            body: 0..0,
            max_bytes,
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Starts `GET path` on `base`; fails at once if the connect cannot even start.
    pub(crate) fn start(
        &mut self,
        base: &Endpoint,
        path: &str,
        instrument: InstrumentId,
        deadline_ns: u64,
    ) -> io::Result<()> {
        self.abort();
        let stream = transport::start_connect(base)?;
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.request
            .extend_from_slice(base.host_header().as_bytes());
        self.request.extend_from_slice(
            b"\r\nUser-Agent: aaiti\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        );
        self.written = 0;
        self.response.clear();
        self.body = 0..0;
        self.instrument = instrument;
        self.deadline_ns = deadline_ns;
        self.endpoint = Some(base.clone());
        self.state = State::Connecting(stream);
        Ok(())
    }

    /// Drops any fetch in progress.
    pub(crate) fn abort(&mut self) {
        if let State::Exchanging(t) = &mut self.state {
            t.shutdown();
        }
        self.state = State::Idle;
    }

    /// The body of the completed response (mutable: handlers parse in place).
    pub(crate) fn body_mut(&mut self) -> &mut [u8] {
        let range =
            self.body.start.min(self.response.len())..self.body.end.min(self.response.len());
        &mut self.response[range]
    }

    pub(crate) fn poll(&mut self, now_ns: u64, tls: Option<&Arc<ClientConfig>>) -> FetchPoll {
        if self.is_idle() {
            return FetchPoll::Idle;
        }
        if now_ns >= self.deadline_ns {
            return self.fail("timed out".into());
        }
        match self.step(tls) {
            Ok(true) => {
                self.abort();
                FetchPoll::Done(self.instrument)
            }
            Ok(false) => FetchPoll::Pending,
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn fail(&mut self, reason: String) -> FetchPoll {
        self.abort();
        FetchPoll::Failed(self.instrument, reason)
    }

    /// Advances; true once the body is complete.
    fn step(&mut self, tls: Option<&Arc<ClientConfig>>) -> io::Result<bool> {
        if let State::Connecting(stream) = &self.state {
            match transport::connect_progress(stream) {
                ConnectProgress::Pending => return Ok(false),
                ConnectProgress::Failed(e) => return Err(e),
                ConnectProgress::Connected => {}
            }
            let State::Connecting(stream) = std::mem::replace(&mut self.state, State::Idle) else {
                return Ok(false);
            };
            let endpoint = self
                .endpoint
                .as_ref()
                .ok_or_else(|| io::Error::other("no endpoint"))?;
            self.state = State::Exchanging(Transport::new(stream, endpoint, tls)?);
        }
        let State::Exchanging(transport) = &mut self.state else {
            return Ok(false);
        };
        while self.written < self.request.len() {
            match transport.write(&self.request[self.written..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "request")),
                Ok(n) => self.written += n,
                Err(e) if transport::would_block(&e) => break,
                Err(e) => return Err(e),
            }
        }
        match transport.flush() {
            Ok(()) => {}
            Err(e) if transport::would_block(&e) => {}
            Err(e) => return Err(e),
        }
        if self.written < self.request.len() {
            return Ok(false);
        }
        for _ in 0..READS_PER_POLL {
            let len = self.response.len();
            if len >= self.max_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response larger than max_snapshot_bytes",
                ));
            }
            let chunk = READ_CHUNK.min(self.max_bytes - len);
            self.response.resize(len + chunk, 0);
            let read = transport.read(&mut self.response[len..]);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    self.response.truncate(len);
                    // A TLS peer that closes without close_notify: treat as end of stream.
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        0
                    } else if transport::would_block(&e) {
                        return Ok(false);
                    } else {
                        return Err(e);
                    }
                }
            };
            self.response.truncate(len + n);
            match parse_response(&mut self.response, n == 0)? {
                Some(body) => {
                    self.body = body;
                    return Ok(true);
                }
                None if n == 0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before the response was complete",
                    ));
                }
                None => {}
            }
        }
        Ok(false)
    }
}

fn invalid(reason: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// The body's range once the response is complete (chunked bodies are decoded in place);
/// `None` while more bytes are needed.
fn parse_response(buf: &mut [u8], eof: bool) -> io::Result<Option<Range<usize>>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(invalid("malformed HTTP response head")),
    };
    if response.code != Some(200) {
        return Err(io::Error::other(format!(
            "HTTP status {}",
            response.code.unwrap_or(0)
        )));
    }
    let mut content_length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).map_err(|_| invalid("Content-Length"))?;
            content_length = Some(
                text.trim()
                    .parse::<usize>()
                    .map_err(|_| invalid("Content-Length"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = header
                .value
                .split(|&b| b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if header.name.eq_ignore_ascii_case("content-encoding")
            && !header.value.trim_ascii().eq_ignore_ascii_case(b"identity")
        {
            return Err(invalid("compressed responses are not supported"));
        }
    }
    if chunked {
        return dechunk(buf, head_len);
    }
    match content_length {
        Some(len) => {
            let end = head_len.checked_add(len).ok_or_else(|| invalid("length"))?;
            Ok((buf.len() >= end).then_some(head_len..end))
        }
        None => Ok(eof.then_some(head_len..buf.len())),
    }
}

/// Decodes a complete chunked body in place, returning its range; `None` if incomplete.
fn dechunk(buf: &mut [u8], start: usize) -> io::Result<Option<Range<usize>>> {
    // First pass: find the chunks without touching the buffer.
    let mut pos = start;
    let mut total = 0usize;
    loop {
        let Some(line_end) = find_crlf(buf, pos) else {
            return Ok(None);
        };
        let size_text = &buf[pos..line_end];
        let size_text = match size_text.iter().position(|&b| b == b';') {
            Some(i) => &size_text[..i],
            None => size_text,
        };
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or_else(|| invalid("bad chunk size"))?;
        pos = line_end + 2;
        if size == 0 {
            break;
        }
        let data_end = pos.checked_add(size).ok_or_else(|| invalid("chunk size"))?;
        if buf.len() < data_end + 2 {
            return Ok(None);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(invalid("chunk not followed by CRLF"));
        }
        total += size;
        pos = data_end + 2;
    }
    // Trailers end with an empty line.
    loop {
        let Some(line_end) = find_crlf(buf, pos) else {
            return Ok(None);
        };
        let empty = line_end == pos;
        pos = line_end + 2;
        if empty {
            break;
        }
    }
    // Second pass: move the chunk data together.
    let mut read = start;
    let mut write = start;
    loop {
        let line_end = find_crlf(buf, read).ok_or_else(|| invalid("chunk"))?;
        let size_text = &buf[read..line_end];
        let size_text = match size_text.iter().position(|&b| b == b';') {
            Some(i) => &size_text[..i],
            None => size_text,
        };
        let size = std::str::from_utf8(size_text)
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .ok_or_else(|| invalid("bad chunk size"))?;
        read = line_end + 2;
        if size == 0 {
            break;
        }
        buf.copy_within(read..read + size, write);
        write += size;
        read += size + 2;
    }
    debug_assert_eq!(write - start, total);
    Ok(Some(start..write))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_bodies() {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel".to_vec();
        assert_eq!(parse_response(&mut r, false).unwrap(), None);
        r.extend_from_slice(b"lo");
        let range = parse_response(&mut r, false).unwrap().unwrap();
        assert_eq!(&r[range], b"hello");
    }

    #[test]
    fn chunked_and_close_delimited_bodies() {
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n"
            .to_vec();
        assert_eq!(parse_response(&mut r, false).unwrap(), None);
        r.extend_from_slice(b"\r\n");
        let range = parse_response(&mut r, false).unwrap().unwrap();
        assert_eq!(&r[range], b"hello");
        let mut r = b"HTTP/1.0 200 OK\r\n\r\n{}".to_vec();
        assert_eq!(parse_response(&mut r, false).unwrap(), None);
        let range = parse_response(&mut r, true).unwrap().unwrap();
        assert_eq!(&r[range], b"{}");
    }

    #[test]
    fn bad_responses_are_errors() {
        for bad in [
            &b"HTTP/1.1 500 Oops\r\n\r\n"[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
        ] {
            assert!(parse_response(&mut bad.to_vec(), true).is_err());
        }
    }
}
