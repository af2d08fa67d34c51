//! A local WebSocket + HTTP server for the live tests: serves a recording's messages over
//! `ws://` or `wss://` (self-signed certificate made at test time) on 127.0.0.1, keeps a
//! Binance depth book from them to answer REST snapshot requests, and injects faults
//! (dropped connections, gaps, silence, refused connections, bad frames) on command.
//!
//! Every loop is bounded by the server's lifetime and stops when the handle drops.
#![allow(dead_code, reason = "each test file uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::{
    collections::{BTreeMap, VecDeque},
    io::{self, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aaiti_feeds::replay::RecordingReader;
use aaiti_model::UnixNanos;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tungstenite::{
    Message, WebSocket,
    handshake::server::{Request, Response},
    protocol::{
        WebSocketConfig,
        frame::{
            Frame,
            coding::{Data, OpCode},
        },
    },
};

pub(crate) const BINANCE_SPOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz"
);

/// Wall-clock now, for `poll`.
pub(crate) fn now() -> UnixNanos {
    UnixNanos(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    )
}

/// The first `limit` messages of a recording.
pub(crate) fn recording(path: &str, limit: usize) -> Vec<Vec<u8>> {
    let mut reader = RecordingReader::open(path).unwrap();
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(m) = reader.next_message().unwrap() else {
            break;
        };
        out.push(m.payload.to_vec());
    }
    out
}

/// Something to send out of band.
#[derive(Clone, Debug)]
pub(crate) enum Inject {
    /// A text frame (valid UTF-8).
    Text(String),
    /// A text frame with arbitrary bytes (e.g. invalid UTF-8).
    RawText(Vec<u8>),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
}

/// How the server behaves.
#[derive(Clone, Debug)]
pub(crate) struct ServerOptions {
    /// Messages to stream, in order (shared cursor across connections: the "market" goes on).
    pub(crate) messages: Arc<Vec<Vec<u8>>>,
    /// Keep a Binance depth book (seeded from the message that is a REST snapshot, which is
    /// then not streamed) and serve it at `/api/v3/depth`.
    pub(crate) binance_book: bool,
    /// Serve `wss://` and `https://` with a self-signed certificate.
    pub(crate) tls: bool,
    /// Pause between messages (zero: as fast as possible).
    pub(crate) pace: Duration,
    /// Ping the client this often.
    pub(crate) ping_every: Option<Duration>,
    /// Everything stops after this.
    pub(crate) lifetime: Duration,
}

impl ServerOptions {
    pub(crate) fn new(messages: Vec<Vec<u8>>) -> Self {
        Self {
            messages: Arc::new(messages),
            binance_book: false,
            tls: false,
            pace: Duration::ZERO,
            ping_every: None,
            lifetime: Duration::from_secs(20),
        }
    }
}

/// A Binance depth book with string levels, keyed by price in 1e-8 units.
#[derive(Default)]
struct Book {
    last_update_id: u64,
    bids: BTreeMap<u64, (String, String)>,
    asks: BTreeMap<u64, (String, String)>,
}

fn price_key(text: &str) -> u64 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut frac = frac.to_owned();
    frac.truncate(8);
    while frac.len() < 8 {
        frac.push('0');
    }
    int.parse::<u64>().unwrap() * 100_000_000 + frac.parse::<u64>().unwrap()
}

fn is_zero(text: &str) -> bool {
    text.bytes().all(|b| b == b'0' || b == b'.')
}

impl Book {
    fn from_snapshot(v: &serde_json::Value) -> Self {
        let mut book = Self {
            last_update_id: v["lastUpdateId"].as_u64().unwrap(),
            ..Self::default()
        };
        book.set_levels(&v["bids"], true);
        book.set_levels(&v["asks"], false);
        book
    }

    fn set_levels(&mut self, levels: &serde_json::Value, bids: bool) {
        let side = if bids { &mut self.bids } else { &mut self.asks };
        for level in levels.as_array().unwrap() {
            let p = level[0].as_str().unwrap();
            let q = level[1].as_str().unwrap();
            if is_zero(q) {
                side.remove(&price_key(p));
            } else {
                side.insert(price_key(p), (p.to_owned(), q.to_owned()));
            }
        }
    }

    /// Applies a combined-stream depthUpdate newer than the book.
    fn apply(&mut self, message: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(message) else {
            return;
        };
        let data = &v["data"];
        if data["e"] != "depthUpdate" {
            return;
        }
        let u = data["u"].as_u64().unwrap();
        if u <= self.last_update_id {
            return;
        }
        self.set_levels(&data["b"], true);
        self.set_levels(&data["a"], false);
        self.last_update_id = u;
    }

    fn json(&self, limit: usize) -> String {
        let side = |levels: &mut dyn Iterator<Item = &(String, String)>| {
            levels
                .take(limit)
                .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            r#"{{"lastUpdateId":{},"bids":[{}],"asks":[{}]}}"#,
            self.last_update_id,
            side(&mut self.bids.values().rev()),
            side(&mut self.asks.values())
        )
    }
}

#[derive(Default)]
struct FeedState {
    cursor: usize,
    book: Option<Book>,
}

/// What the server saw and what the test tells it to do.
#[derive(Default)]
pub(crate) struct Shared {
    stop: AtomicBool,
    feed: Mutex<FeedState>,
    /// Stop sending (connections stay up) while set.
    pub(crate) silent: AtomicBool,
    /// Drop the current connection once it has sent this many messages (0: never); one-shot.
    pub(crate) drop_after: AtomicUsize,
    /// Skip (do not send, but apply to the book) the next this many messages.
    pub(crate) skip: AtomicUsize,
    /// Refuse (accept and close at once) connections until then.
    pub(crate) refuse_until: Mutex<Option<Instant>>,
    /// Frames to send before the next message.
    pub(crate) inject: Mutex<VecDeque<Inject>>,
    /// Answer the next this many REST requests with 500.
    pub(crate) rest_fail: AtomicUsize,
    /// Send REST bodies chunked.
    pub(crate) rest_chunked: AtomicBool,
    /// Request paths of the WebSocket handshakes.
    pub(crate) paths: Mutex<Vec<String>>,
    /// Text frames the clients sent.
    pub(crate) client_texts: Mutex<Vec<String>>,
    /// REST request paths.
    pub(crate) rest_paths: Mutex<Vec<String>>,
    pub(crate) connections: AtomicUsize,
    pub(crate) refused: AtomicUsize,
    /// Messages sent (all connections).
    pub(crate) sent: AtomicUsize,
    pub(crate) pings_from_client: AtomicUsize,
    pub(crate) pongs_from_client: AtomicUsize,
    generation: AtomicUsize,
}

pub(crate) struct TestServer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ws_port: u16,
    pub(crate) http_port: u16,
    /// The self-signed root (PEM) when TLS is on.
    pub(crate) cert_pem: Option<String>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum ServerStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl ServerStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for ServerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ServerStream {
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

impl TestServer {
    pub(crate) fn start(options: ServerOptions) -> Self {
        let (tls, cert_pem) = if options.tls {
            let key = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_owned(),
                "localhost".to_owned(),
            ])
            .unwrap();
            let der = key.cert.der().clone();
            let private =
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], private)
            .unwrap();
            (Some(Arc::new(config)), Some(key.cert.pem()))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared::default());
        let mut messages = (*options.messages).clone();
        if options.binance_book
            && let Some(at) = messages
                .iter()
                .position(|m| m.starts_with(b"{\"lastUpdateId\""))
        {
            let snapshot = messages.remove(at);
            let v: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
            shared.feed.lock().unwrap().book = Some(Book::from_snapshot(&v));
        }
        let options = ServerOptions {
            messages: Arc::new(messages),
            ..options
        };
        let deadline = Instant::now() + options.lifetime;
        let ws = TcpListener::bind("127.0.0.1:0").unwrap();
        let http = TcpListener::bind("127.0.0.1:0").unwrap();
        ws.set_nonblocking(true).unwrap();
        http.set_nonblocking(true).unwrap();
        let ws_port = ws.local_addr().unwrap().port();
        let http_port = http.local_addr().unwrap().port();
        let mut threads = Vec::new();
        {
            let shared = Arc::clone(&shared);
            let tls = tls.clone();
            let options = options.clone();
            threads.push(thread::spawn(move || {
                ws_accept_loop(&ws, &shared, tls.as_ref(), &options, deadline);
            }));
        }
        {
            let shared = Arc::clone(&shared);
            threads.push(thread::spawn(move || {
                http_loop(&http, &shared, tls.as_ref(), deadline);
            }));
        }
        Self {
            shared,
            ws_port,
            http_port,
            cert_pem,
            threads,
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        let scheme = if self.cert_pem.is_some() { "wss" } else { "ws" };
        format!("{scheme}://127.0.0.1:{}", self.ws_port)
    }

    pub(crate) fn rest_url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.http_port)
    }

    pub(crate) fn refuse_for(&self, d: Duration) {
        *self.shared.refuse_until.lock().unwrap() = Some(Instant::now() + d);
    }

    pub(crate) fn inject(&self, frame: Inject) {
        self.shared.inject.lock().unwrap().push_back(frame);
    }

    pub(crate) fn count(&self, what: &AtomicUsize) -> usize {
        what.load(SeqCst)
    }
}

fn live(shared: &Shared, deadline: Instant) -> bool {
    !shared.stop.load(SeqCst) && Instant::now() < deadline
}

fn ws_accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls: Option<&Arc<ServerConfig>>,
    options: &ServerOptions,
    deadline: Instant,
) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    while live(shared, deadline) && handlers.len() < 64 {
        match listener.accept() {
            Ok((stream, _)) => {
                let refuse = shared
                    .refuse_until
                    .lock()
                    .unwrap()
                    .is_some_and(|until| Instant::now() < until);
                if refuse {
                    shared.refused.fetch_add(1, SeqCst);
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
                let shared = Arc::clone(shared);
                let tls = tls.cloned();
                let options = options.clone();
                handlers.push(thread::spawn(move || {
                    serve_ws(stream, &shared, tls, &options, deadline);
                }));
            }
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
    for h in handlers {
        let _ = h.join();
    }
}

fn serve_ws(
    stream: TcpStream,
    shared: &Shared,
    tls: Option<Arc<ServerConfig>>,
    options: &ServerOptions,
    deadline: Instant,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let stream = match tls {
        Some(config) => ServerStream::Tls(Box::new(StreamOwned::new(
            ServerConnection::new(config).unwrap(),
            stream,
        ))),
        None => ServerStream::Plain(stream),
    };
    #[allow(
        clippy::result_large_err,
        reason = "tungstenite's Callback signature fixes the error type"
    )]
    let callback = |request: &Request, response: Response| {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        shared.paths.lock().unwrap().push(path);
        Ok(response)
    };
    let config = WebSocketConfig::default().write_buffer_size(0);
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(stream, callback, Some(config)) else {
        return;
    };
    ws.get_ref().tcp().set_nonblocking(true).unwrap();
    let generation = shared.generation.fetch_add(1, SeqCst) + 1;
    shared.connections.fetch_add(1, SeqCst);
    let mut sent_here = 0usize;
    let mut last_ping = Instant::now();
    let mut blocked = false;
    while live(shared, deadline) && shared.generation.load(SeqCst) == generation {
        // Client frames.
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => shared.client_texts.lock().unwrap().push(t.to_string()),
                Ok(Message::Ping(_)) => {
                    shared.pings_from_client.fetch_add(1, SeqCst);
                }
                Ok(Message::Pong(_)) => {
                    shared.pongs_from_client.fetch_add(1, SeqCst);
                }
                Ok(Message::Close(_)) => return,
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        if blocked {
            match ws.flush() {
                Ok(()) => blocked = false,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(_) => return,
            }
        }
        if let Some(every) = options.ping_every
            && last_ping.elapsed() >= every
        {
            last_ping = Instant::now();
            if !send(&mut ws, Message::Ping(b"srv".to_vec().into()), &mut blocked) {
                return;
            }
        }
        let injected = shared.inject.lock().unwrap().pop_front();
        if let Some(frame) = injected {
            let message = match frame {
                Inject::Text(t) => Message::text(t),
                Inject::RawText(bytes) => {
                    Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))
                }
                Inject::Binary(b) => Message::binary(b),
                Inject::Ping(p) => Message::Ping(p.into()),
            };
            if !send(&mut ws, message, &mut blocked) {
                return;
            }
            continue;
        }
        let drop_after = shared.drop_after.load(SeqCst);
        if drop_after > 0 && sent_here >= drop_after {
            shared.drop_after.store(0, SeqCst);
            let _ = ws.get_ref().tcp().shutdown(Shutdown::Both);
            return;
        }
        if shared.silent.load(SeqCst) {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let next = {
            let mut feed = shared.feed.lock().unwrap();
            let FeedState { cursor, book } = &mut *feed;
            let mut next = None;
            while *cursor < options.messages.len() {
                let message = &options.messages[*cursor];
                *cursor += 1;
                if let Some(book) = book {
                    book.apply(message);
                }
                if shared
                    .skip
                    .fetch_update(SeqCst, SeqCst, |k| k.checked_sub(1))
                    .is_ok()
                {
                    continue;
                }
                next = Some(message.clone());
                break;
            }
            next
        };
        let Some(message) = next else {
            thread::sleep(Duration::from_millis(1));
            continue;
        };
        let text = String::from_utf8(message).unwrap();
        if !send(&mut ws, Message::text(text), &mut blocked) {
            return;
        }
        sent_here += 1;
        shared.sent.fetch_add(1, SeqCst);
        if !options.pace.is_zero() {
            thread::sleep(options.pace);
        }
    }
    let _ = ws.get_ref().tcp().shutdown(Shutdown::Both);
}

/// Sends; false if the connection is gone.
fn send(ws: &mut WebSocket<ServerStream>, message: Message, blocked: &mut bool) -> bool {
    let result = ws.write(message).and_then(|()| ws.flush());
    match result {
        Ok(()) => true,
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
            *blocked = true;
            true
        }
        Err(_) => false,
    }
}

fn http_loop(
    listener: &TcpListener,
    shared: &Shared,
    tls: Option<&Arc<ServerConfig>>,
    deadline: Instant,
) {
    while live(shared, deadline) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = serve_http(stream, shared, tls);
            }
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn serve_http(
    stream: TcpStream,
    shared: &Shared,
    tls: Option<&Arc<ServerConfig>>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut stream = match tls {
        Some(config) => ServerStream::Tls(Box::new(StreamOwned::new(
            ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?,
            stream,
        ))),
        None => ServerStream::Plain(stream),
    };
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    shared.rest_paths.lock().unwrap().push(path.clone());
    let limit = path
        .split("limit=")
        .nth(1)
        .and_then(|l| l.split('&').next())
        .and_then(|l| l.parse().ok())
        .unwrap_or(1000);
    let book = shared
        .feed
        .lock()
        .unwrap()
        .book
        .as_ref()
        .map(|b| b.json(limit));
    let fail = shared
        .rest_fail
        .fetch_update(SeqCst, SeqCst, |k| k.checked_sub(1))
        .is_ok();
    let response = match book {
        Some(body) if !fail && path.starts_with("/api/v3/depth") => {
            if shared.rest_chunked.load(SeqCst) {
                let mut r = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
                for piece in body.as_bytes().chunks(1000) {
                    r.push_str(&format!("{:x}\r\n", piece.len()));
                    r.push_str(std::str::from_utf8(piece).unwrap_or_default());
                    r.push_str("\r\n");
                }
                r.push_str("0\r\n\r\n");
                r
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            }
        }
        _ => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_owned(),
    };
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    if let ServerStream::Tls(s) = &mut stream {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    let _ = stream.tcp().shutdown(Shutdown::Write);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Client-side helpers
// ---------------------------------------------------------------------------------------------

use aaiti_feeds::{
    RecordBuffer,
    live::{BackoffConfig, Connection, LiveConfig, LiveFeed, Subscription, TlsConfig},
};
use aaiti_model::{Envelope, FeedEvent, FeedEventKind, StreamId};

/// A client config for `server`: Binance combined streams, fast timers for tests.
pub(crate) fn client_config(server: &TestServer, rest: bool, event_stream: u16) -> LiveConfig {
    let mut config = LiveConfig::new(server.ws_url(), Subscription::binance_default());
    config.tls = TlsConfig {
        pem_roots: server
            .cert_pem
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        webpki_roots: false,
    };
    config.rest_url = rest.then(|| server.rest_url());
    config.event_stream = StreamId(event_stream);
    config.connect_timeout_ms = 2_000;
    config.dead_after_ms = 5_000;
    config.ping_interval_ms = 0;
    config.snapshot_timeout_ms = 2_000;
    config.snapshot_retry_ms = 50;
    config.backoff = BackoffConfig {
        initial_ms: 20,
        max_ms: 200,
        jitter_pct: 20,
        seed: 42,
    };
    config
}

/// Polls until `done` or `timeout`; every record is appended to `log`. True if done.
pub(crate) fn run<H: LiveFeed>(
    conn: &mut Connection<H>,
    log: &mut Vec<Envelope>,
    timeout: Duration,
    mut done: impl FnMut(&Connection<H>, &[Envelope]) -> bool,
) -> bool {
    let start = Instant::now();
    let mut out = RecordBuffer::with_capacity(4096);
    while start.elapsed() < timeout {
        out.clear();
        let status = conn.poll(now(), &mut out).unwrap();
        log.extend(out.iter().copied());
        if done(conn, log) {
            return true;
        }
        if !status.more {
            thread::sleep(Duration::from_micros(200));
        }
    }
    false
}

/// The feed events in `log`, in order.
pub(crate) fn events(log: &[Envelope]) -> Vec<FeedEventKind> {
    log.iter()
        .filter_map(|e| e.payload::<FeedEvent>())
        .filter_map(|e| FeedEventKind::try_from(e.kind).ok())
        .collect()
}

/// Events of the kinds that tell the connection / sync story.
pub(crate) fn story(log: &[Envelope]) -> Vec<FeedEventKind> {
    events(log)
        .into_iter()
        .filter(|k| {
            matches!(
                k,
                FeedEventKind::Connected
                    | FeedEventKind::Disconnected
                    | FeedEventKind::ResyncRequested
                    | FeedEventKind::BookValid
                    | FeedEventKind::Gap
                    | FeedEventKind::Failover
                    | FeedEventKind::Failback
            )
        })
        .collect()
}

/// True if `wanted` appears in `seen` in order (not necessarily adjacent).
pub(crate) fn in_order(seen: &[FeedEventKind], wanted: &[FeedEventKind]) -> bool {
    let mut it = seen.iter();
    wanted.iter().all(|w| it.any(|s| s == w))
}
