//! [`Connection`]: one venue WebSocket connection, polled by its owner thread.

use std::sync::Arc;

use aaiti_model::{
    FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, RecordHeader, StreamId, UnixNanos,
    VenueId,
};
use mio::net::TcpStream;
use rustls::ClientConfig;
use tungstenite::{
    HandshakeError, Message, WebSocket,
    client::client_with_config,
    error::{Error as WsError, ProtocolError},
    handshake::{MidHandshake, client::ClientHandshake},
    protocol::WebSocketConfig,
};

use super::{
    Endpoint, LiveError, LiveFeed, SnapshotSource,
    backoff::{Backoff, BackoffConfig},
    rest::{FetchPoll, SnapshotFetch},
    subscribe::Subscription,
    transport::{self, ConnectProgress, TlsConfig, Transport},
};
use crate::RecordBuffer;

const MS: u64 = 1_000_000;

/// Configuration of one live connection.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// `ws://` or `wss://` URL (for [`Subscription::BinanceCombined`] the base, e.g.
    /// `wss://stream.binance.com:9443`, to which the stream path is appended).
    pub url: String,
    /// What to subscribe to.
    pub subscription: Subscription,
    /// Base URL of the venue's REST API for depth snapshots (`https://api.binance.com`);
    /// `None`: no REST snapshots (books wait for one through the stream).
    pub rest_url: Option<String>,
    /// Trusted roots for `wss://` and `https://`.
    pub tls: TlsConfig,
    /// Stream the connection's own `Connected`/`Disconnected` events are numbered in.
    pub event_stream: StreamId,
    /// A TCP connect plus TLS and WebSocket handshakes must finish within this.
    pub connect_timeout_ms: u64,
    /// No frame at all (data, ping, pong) for this long: the connection is dead.
    pub dead_after_ms: u64,
    /// A ping is sent this often (0: never).
    pub ping_interval_ms: u64,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Frames read per [`Connection::poll`] at most, so one busy connection cannot starve the
    /// rest of the owner's loop.
    pub max_messages_per_poll: usize,
    /// A message (or frame) larger than this ends the connection.
    pub max_message_bytes: usize,
    /// A REST snapshot must arrive within this.
    pub snapshot_timeout_ms: u64,
    /// After a failed or too old snapshot, the next request waits this long.
    pub snapshot_retry_ms: u64,
    /// A REST response larger than this fails.
    pub max_snapshot_bytes: usize,
    /// `limit` of the REST depth request.
    pub snapshot_depth: u32,
    /// [`Connection::poll`] returns [`LiveError::GaveUp`] after this many failed connection
    /// attempts in a row (`None`: retry for ever).
    pub max_consecutive_failures: Option<u32>,
}

impl LiveConfig {
    /// Defaults for `url`: pings every 10 s, dead after 30 s, 5 s to connect, backoff from
    /// 100 ms to 30 s, 1 MiB messages, 5 s and 16 MiB for a snapshot of 1000 levels.
    pub fn new(url: impl Into<String>, subscription: Subscription) -> Self {
        Self {
            url: url.into(),
            subscription,
            rest_url: None,
            tls: TlsConfig::public_roots(),
            event_stream: StreamId(0),
            connect_timeout_ms: 5_000,
            dead_after_ms: 30_000,
            ping_interval_ms: 10_000,
            backoff: BackoffConfig::default(),
            max_messages_per_poll: 256,
            max_message_bytes: 1 << 20,
            snapshot_timeout_ms: 5_000,
            snapshot_retry_ms: 1_000,
            max_snapshot_bytes: 16 << 20,
            snapshot_depth: 1_000,
            max_consecutive_failures: None,
        }
    }
}

/// Where a connection is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Waiting for the backoff delay before the next attempt.
    Disconnected,
    /// TCP connect in progress.
    Connecting,
    /// TLS / WebSocket handshake in progress.
    Handshaking,
    /// Subscribed and receiving.
    Open,
    /// [`LiveConfig::max_consecutive_failures`] reached: no more attempts.
    GaveUp,
}

/// What one [`Connection::poll`] did.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PollStatus {
    /// Text messages handed to the handler.
    pub messages: u32,
    /// The state after the poll (`None` only in `Default`).
    pub state: Option<ConnState>,
    /// True if this poll read frames up to [`LiveConfig::max_messages_per_poll`]: more may be
    /// waiting, poll again without sleeping.
    pub more: bool,
}

/// Counters of a connection. Never reset.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Connection attempts started.
    pub connect_attempts: u64,
    /// Connections that reached `Open`.
    pub connects: u64,
    /// Attempts that failed before `Open` (refused, timed out, TLS or handshake failure).
    pub connect_failures: u64,
    /// Open connections that ended.
    pub disconnects: u64,
    /// Text messages handed to the handler.
    pub messages: u64,
    /// Bytes of those messages.
    pub message_bytes: u64,
    /// Messages the handler rejected.
    pub rejected: u64,
    /// Binary frames (skipped: no venue here sends binary data).
    pub binary_frames: u64,
    /// Pings received (answered).
    pub pings_received: u64,
    /// Pings sent.
    pub pings_sent: u64,
    /// Pongs received.
    pub pongs_received: u64,
    /// Text frames that were not UTF-8 (the connection is closed: RFC 6455 section 8.1).
    pub invalid_utf8: u64,
    /// Messages or frames over [`LiveConfig::max_message_bytes`] (the connection is closed).
    pub oversized: u64,
    /// Other WebSocket protocol violations by the server (the connection is closed).
    pub protocol_errors: u64,
    /// Socket, TLS or write errors on an open connection.
    pub io_errors: u64,
    /// Connections ended for lack of any frame within [`LiveConfig::dead_after_ms`].
    pub dead_timeouts: u64,
    /// Close frames received.
    pub closes_received: u64,
    /// REST snapshot requests started.
    pub snapshot_requests: u64,
    /// REST snapshots the handler applied.
    pub snapshots_applied: u64,
    /// REST snapshot requests that failed (connect, HTTP status, timeout, size) or whose
    /// body the handler rejected.
    pub snapshot_failures: u64,
    /// Resynchronisations requested by [`Connection::resync`].
    pub resyncs: u64,
}

enum State {
    Disconnected {
        retry_at_ns: u64,
    },
    Connecting {
        stream: TcpStream,
        deadline_ns: u64,
    },
    Handshaking {
        handshake: Box<MidHandshake<ClientHandshake<Transport>>>,
        deadline_ns: u64,
    },
    Open {
        ws: Box<WebSocket<Transport>>,
    },
    GaveUp,
}

/// Why an open connection ends (for the log and the `Disconnected` event's `value`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
enum EndReason {
    Closed = 1,
    Io = 2,
    Protocol = 3,
    InvalidUtf8 = 4,
    Oversized = 5,
    Dead = 6,
    Requested = 7,
}

/// One WebSocket connection to a venue, feeding the venue handler `H`.
///
/// Created disconnected; the first [`Connection::poll`] starts connecting. See the
/// [module docs](super) for what a poll does.
pub struct Connection<H> {
    handler: H,
    config: LiveConfig,
    endpoint: Endpoint,
    url: String,
    rest: Option<Endpoint>,
    tls: Option<Arc<ClientConfig>>,
    ws_config: WebSocketConfig,
    instruments: Vec<InstrumentId>,
    symbols: Vec<String>,
    snapshot_paths: Vec<Option<String>>,
    venue: VenueId,
    state: State,
    backoff: Backoff,
    consecutive_failures: u32,
    connection_no: u64,
    event_seq: u64,
    scratch: Vec<u8>,
    last_frame_ns: u64,
    last_message_ns: Option<u64>,
    last_ping_ns: u64,
    got_message: bool,
    fetch: SnapshotFetch,
    next_snapshot_ns: u64,
    stats: LiveStats,
}

impl<H> std::fmt::Debug for Connection<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("state", &state_of(&self.state))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<H: LiveFeed> Connection<H> {
    /// A connection for `handler`, whose instruments are the registry's instruments of the
    /// handler's venue.
    ///
    /// # Errors
    ///
    /// [`LiveError::BadUrl`] for `url` or `rest_url`, [`LiveError::BadRootCertificate`] /
    /// [`LiveError::Tls`] for the TLS roots, [`LiveError::BadConfig`] for zero limits.
    pub fn new(
        handler: H,
        registry: &InstrumentRegistry,
        config: LiveConfig,
    ) -> Result<Self, LiveError> {
        for (key, zero) in [
            ("max_messages_per_poll", config.max_messages_per_poll == 0),
            ("max_message_bytes", config.max_message_bytes == 0),
            ("dead_after_ms", config.dead_after_ms == 0),
            ("connect_timeout_ms", config.connect_timeout_ms == 0),
            ("snapshot_timeout_ms", config.snapshot_timeout_ms == 0),
            ("max_snapshot_bytes", config.max_snapshot_bytes == 0),
        ] {
            if zero {
                return Err(LiveError::BadConfig {
                    key,
                    reason: "must be above 0",
                });
            }
        }
        let venue = handler.venue();
        let (instruments, symbols): (Vec<InstrumentId>, Vec<String>) = registry
            .instruments()
            .iter()
            .filter(|i| i.venue == venue)
            .map(|i| (i.id, i.symbol.clone()))
            .unzip();
        let symbol_refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
        let url = config.subscription.url(&config.url, &symbol_refs);
        let endpoint = Endpoint::parse(&url)?;
        let rest = config
            .rest_url
            .as_deref()
            .map(Endpoint::parse)
            .transpose()?;
        let needs_tls = endpoint.tls || rest.as_ref().is_some_and(|r| r.tls);
        let tls = if needs_tls {
            Some(config.tls.client_config()?)
        } else {
            None
        };
        let snapshot_paths = symbols
            .iter()
            .map(|s| handler.snapshot_path(s, config.snapshot_depth))
            .collect();
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(config.max_message_bytes))
            .max_frame_size(Some(config.max_message_bytes))
            .read_buffer_size(64 * 1024)
            .write_buffer_size(0);
        Ok(Self {
            handler,
            backoff: Backoff::new(config.backoff.clone()),
            fetch: SnapshotFetch::new(config.max_snapshot_bytes),
            scratch: Vec::with_capacity(64 * 1024),
            config,
            endpoint,
            url,
            rest,
            tls,
            ws_config,
            instruments,
            symbols,
            snapshot_paths,
            venue,
            state: State::Disconnected { retry_at_ns: 0 },
            consecutive_failures: 0,
            connection_no: 0,
            event_seq: 0,
            last_frame_ns: 0,
            last_message_ns: None,
            last_ping_ns: 0,
            got_message: false,
            next_snapshot_ns: 0,
            stats: LiveStats::default(),
        })
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably (e.g. to request a resync after a checksum mismatch).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The URL connected to (with the subscription's path).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The instruments on this connection.
    pub fn instruments(&self) -> &[InstrumentId] {
        &self.instruments
    }

    /// The counters.
    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }

    /// The state.
    pub fn state(&self) -> ConnState {
        state_of(&self.state)
    }

    /// True while open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open { .. })
    }

    /// When the last text message arrived (`None` before the first).
    pub fn last_message_at(&self) -> Option<UnixNanos> {
        self.last_message_ns.map(UnixNanos)
    }

    /// Open and a text message within the last `window_ns` before `now`.
    pub fn is_fresh(&self, now: UnixNanos, window_ns: u64) -> bool {
        self.is_open()
            && self
                .last_message_ns
                .is_some_and(|t| now.0.saturating_sub(t) <= window_ns)
    }

    /// True if every instrument's book is valid.
    pub fn books_valid(&self) -> bool {
        self.instruments
            .iter()
            .all(|&id| self.handler.is_book_valid(id))
    }

    /// Reads what is available, keeps the connection alive and reconnects it; appends the
    /// handler's records and the connection's events to `out` (which is not cleared).
    ///
    /// # Errors
    ///
    /// [`LiveError::GaveUp`] once [`LiveConfig::max_consecutive_failures`] attempts failed
    /// in a row (every later poll returns it too). Everything else (refused connections,
    /// bad frames, dead servers) is handled here: counted, logged and reconnected.
    pub fn poll(
        &mut self,
        now: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<PollStatus, LiveError> {
        let now_ns = now.0;
        let mut status = PollStatus::default();
        self.advance_connect(now_ns, out);
        if let State::GaveUp = self.state {
            return Err(LiveError::GaveUp {
                attempts: self.consecutive_failures,
            });
        }
        if self.is_open() {
            let (messages, more) = self.read_frames(now_ns, out);
            status.messages = messages;
            status.more = more;
        }
        if self.is_open() {
            self.keep_alive(now_ns, out);
        }
        if self.is_open() {
            self.drive_snapshot(now_ns, out);
        }
        self.handler.on_tick(now, out);
        status.state = Some(self.state());
        Ok(status)
    }

    /// Invalidates every book (`ResyncRequested`) and gets fresh snapshots: from REST for
    /// Binance; for venues whose subscription sends snapshots, by unsubscribing and
    /// subscribing again (if open; otherwise the next connect does it).
    pub fn resync(&mut self, now: UnixNanos, out: &mut RecordBuffer) {
        self.stats.resyncs += 1;
        for i in 0..self.instruments.len() {
            self.handler.request_resync(self.instruments[i], now, out);
        }
        self.fetch.abort();
        self.next_snapshot_ns = 0;
        if self.handler.snapshot_source() == SnapshotSource::Stream && self.is_open() {
            let symbols: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
            let mut messages = self.config.subscription.unsubscribe_messages(&symbols);
            messages.extend(self.config.subscription.subscribe_messages(&symbols));
            if let Err(e) = self.send_texts(messages) {
                self.end(now.0, EndReason::Io, &e.to_string(), out);
            }
        }
    }

    /// Closes the connection now (as if it had died); it reconnects after the backoff.
    pub fn disconnect(&mut self, now: UnixNanos, out: &mut RecordBuffer) {
        if self.is_open() {
            self.end(now.0, EndReason::Requested, "requested", out);
        }
    }

    fn advance_connect(&mut self, now_ns: u64, out: &mut RecordBuffer) {
        if let State::Disconnected { retry_at_ns } = self.state {
            if now_ns < retry_at_ns {
                return;
            }
            self.stats.connect_attempts += 1;
            match transport::start_connect(&self.endpoint) {
                Ok(stream) => {
                    self.state = State::Connecting {
                        stream,
                        deadline_ns: now_ns.saturating_add(self.config.connect_timeout_ms * MS),
                    };
                }
                Err(e) => return self.attempt_failed(now_ns, &e.to_string()),
            }
        }
        if let State::Connecting {
            stream,
            deadline_ns,
        } = &self.state
        {
            let deadline_ns = *deadline_ns;
            match transport::connect_progress(stream) {
                ConnectProgress::Pending if now_ns >= deadline_ns => {
                    return self.attempt_failed(now_ns, "connect timed out");
                }
                ConnectProgress::Pending => return,
                ConnectProgress::Failed(e) => return self.attempt_failed(now_ns, &e.to_string()),
                ConnectProgress::Connected => {}
            }
            let State::Connecting { stream, .. } =
                std::mem::replace(&mut self.state, State::Disconnected { retry_at_ns: 0 })
            else {
                return;
            };
            let transport = match Transport::new(stream, &self.endpoint, self.tls.as_ref()) {
                Ok(t) => t,
                Err(e) => return self.attempt_failed(now_ns, &e.to_string()),
            };
            let result = client_with_config(self.url.as_str(), transport, Some(self.ws_config));
            self.handshake_result(result, now_ns, deadline_ns, out);
        } else if let State::Handshaking { deadline_ns, .. } = &self.state {
            let deadline_ns = *deadline_ns;
            if now_ns >= deadline_ns {
                return self.attempt_failed(now_ns, "handshake timed out");
            }
            let State::Handshaking { handshake, .. } =
                std::mem::replace(&mut self.state, State::Disconnected { retry_at_ns: 0 })
            else {
                return;
            };
            let result = handshake.handshake();
            self.handshake_result(result, now_ns, deadline_ns, out);
        }
    }

    fn handshake_result(
        &mut self,
        result: Result<
            (
                WebSocket<Transport>,
                tungstenite::handshake::client::Response,
            ),
            HandshakeError<ClientHandshake<Transport>>,
        >,
        now_ns: u64,
        deadline_ns: u64,
        out: &mut RecordBuffer,
    ) {
        match result {
            Ok((ws, _response)) => self.opened(Box::new(ws), now_ns, out),
            Err(HandshakeError::Interrupted(mid)) => {
                self.state = State::Handshaking {
                    handshake: Box::new(mid),
                    deadline_ns,
                };
            }
            Err(HandshakeError::Failure(e)) => self.attempt_failed(now_ns, &e.to_string()),
        }
    }

    fn attempt_failed(&mut self, now_ns: u64, reason: &str) {
        self.stats.connect_failures += 1;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self
            .config
            .max_consecutive_failures
            .is_some_and(|max| self.consecutive_failures >= max)
        {
            tracing::error!(url = %self.url, reason, attempts = self.consecutive_failures, "giving up");
            self.state = State::GaveUp;
            return;
        }
        let delay_ns = self.backoff.next_delay_ns();
        tracing::warn!(url = %self.url, reason, delay_ms = delay_ns / MS, "connection attempt failed");
        self.state = State::Disconnected {
            retry_at_ns: now_ns.saturating_add(delay_ns),
        };
    }

    fn opened(&mut self, ws: Box<WebSocket<Transport>>, now_ns: u64, out: &mut RecordBuffer) {
        self.state = State::Open { ws };
        self.connection_no += 1;
        self.stats.connects += 1;
        self.last_frame_ns = now_ns;
        self.last_ping_ns = now_ns;
        self.got_message = false;
        self.next_snapshot_ns = 0;
        tracing::info!(url = %self.url, connection = self.connection_no, "connected");
        self.event(FeedEventKind::Connected, now_ns, 0, out);
        let symbols: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
        let messages = self.config.subscription.subscribe_messages(&symbols);
        if let Err(e) = self.send_texts(messages) {
            self.end(now_ns, EndReason::Io, &e.to_string(), out);
        }
    }

    fn send_texts(&mut self, messages: Vec<String>) -> Result<(), WsError> {
        let State::Open { ws } = &mut self.state else {
            return Ok(());
        };
        for message in messages {
            ws.write(Message::text(message))?;
        }
        flush(ws)
    }

    /// Ends an open connection: `Disconnected`, books invalidated, backoff.
    fn end(&mut self, now_ns: u64, reason: EndReason, detail: &str, out: &mut RecordBuffer) {
        if let State::Open { ws } = &mut self.state {
            // Best effort: tell the server, then drop the socket either way.
            let _ = ws.close(None);
            let _ = ws.flush();
            ws.get_mut().shutdown();
        }
        self.fetch.abort();
        self.stats.disconnects += 1;
        tracing::warn!(url = %self.url, ?reason, detail, "disconnected");
        self.event(FeedEventKind::Disconnected, now_ns, reason as i64, out);
        let now = UnixNanos(now_ns);
        for i in 0..self.instruments.len() {
            let id = self.instruments[i];
            if self.handler.is_book_valid(id) {
                self.handler.request_resync(id, now, out);
            }
        }
        if self.got_message {
            // The connection worked: the next attempt starts from the shortest delay.
            self.backoff.reset();
            self.consecutive_failures = 0;
        }
        let delay_ns = self.backoff.next_delay_ns();
        self.state = State::Disconnected {
            retry_at_ns: now_ns.saturating_add(delay_ns),
        };
    }

    /// Reads frames; returns (text messages, more may be waiting).
    fn read_frames(&mut self, now_ns: u64, out: &mut RecordBuffer) -> (u32, bool) {
        let now = UnixNanos(now_ns);
        let mut messages = 0u32;
        for _ in 0..self.config.max_messages_per_poll {
            let State::Open { ws } = &mut self.state else {
                return (messages, false);
            };
            let frame = ws.read();
            let ended = match frame {
                Ok(Message::Text(text)) => {
                    self.last_frame_ns = now_ns;
                    self.last_message_ns = Some(now_ns);
                    self.got_message = true;
                    self.scratch.clear();
                    self.scratch.extend_from_slice(text.as_bytes());
                    drop(text);
                    messages += 1;
                    self.stats.messages += 1;
                    self.stats.message_bytes += self.scratch.len() as u64;
                    if self
                        .handler
                        .on_message(&mut self.scratch, now, out)
                        .is_err()
                    {
                        self.stats.rejected += 1;
                    }
                    None
                }
                Ok(Message::Binary(_)) => {
                    self.last_frame_ns = now_ns;
                    self.stats.binary_frames += 1;
                    None
                }
                Ok(Message::Ping(_)) => {
                    // tungstenite queued the pong; `keep_alive` flushes it.
                    self.last_frame_ns = now_ns;
                    self.stats.pings_received += 1;
                    None
                }
                Ok(Message::Pong(_)) => {
                    self.last_frame_ns = now_ns;
                    self.stats.pongs_received += 1;
                    None
                }
                Ok(Message::Close(_)) => {
                    self.stats.closes_received += 1;
                    Some((EndReason::Closed, "close frame".to_owned()))
                }
                Ok(Message::Frame(_)) => None,
                Err(WsError::Io(e)) if transport::would_block(&e) => return (messages, false),
                Err(e) => Some(self.classify(e)),
            };
            if let Some((reason, detail)) = ended {
                self.end(now_ns, reason, &detail, out);
                return (messages, false);
            }
        }
        (messages, true)
    }

    fn classify(&mut self, e: WsError) -> (EndReason, String) {
        let reason = match &e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => EndReason::Closed,
            WsError::Capacity(_) => {
                self.stats.oversized += 1;
                EndReason::Oversized
            }
            WsError::Utf8(_) => {
                self.stats.invalid_utf8 += 1;
                EndReason::InvalidUtf8
            }
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                self.stats.io_errors += 1;
                EndReason::Io
            }
            WsError::Protocol(_) | WsError::AttackAttempt => {
                self.stats.protocol_errors += 1;
                EndReason::Protocol
            }
            _ => {
                self.stats.io_errors += 1;
                EndReason::Io
            }
        };
        (reason, e.to_string())
    }

    fn keep_alive(&mut self, now_ns: u64, out: &mut RecordBuffer) {
        if now_ns.saturating_sub(self.last_frame_ns) > self.config.dead_after_ms * MS {
            self.stats.dead_timeouts += 1;
            return self.end(
                now_ns,
                EndReason::Dead,
                "no frame within dead_after_ms",
                out,
            );
        }
        let State::Open { ws } = &mut self.state else {
            return;
        };
        let interval_ns = self.config.ping_interval_ms * MS;
        let mut result = Ok(());
        if interval_ns > 0 && now_ns.saturating_sub(self.last_ping_ns) >= interval_ns {
            self.last_ping_ns = now_ns;
            self.stats.pings_sent += 1;
            result = ws.write(Message::Ping(tungstenite::Bytes::new()));
        }
        if let Err(e) = result.and_then(|()| flush(ws)) {
            let (reason, detail) = self.classify(e);
            self.end(now_ns, reason, &detail, out);
        }
    }

    fn drive_snapshot(&mut self, now_ns: u64, out: &mut RecordBuffer) {
        let Some(rest) = &self.rest else {
            return;
        };
        match self.fetch.poll(now_ns, self.tls.as_ref()) {
            FetchPoll::Pending => return,
            FetchPoll::Done(instrument) => {
                let applied = self.handler.on_snapshot(
                    instrument,
                    self.fetch.body_mut(),
                    UnixNanos(now_ns),
                    out,
                );
                if applied && self.handler.snapshot_wanted() != Some(instrument) {
                    self.stats.snapshots_applied += 1;
                } else {
                    // Rejected, or too old for the buffered updates: ask again later.
                    self.stats.snapshot_failures += 1;
                    self.next_snapshot_ns =
                        now_ns.saturating_add(self.config.snapshot_retry_ms * MS);
                }
                return;
            }
            FetchPoll::Failed(instrument, reason) => {
                self.stats.snapshot_failures += 1;
                tracing::warn!(url = %self.url, instrument = instrument.0, reason, "snapshot request failed");
                self.next_snapshot_ns = now_ns.saturating_add(self.config.snapshot_retry_ms * MS);
                return;
            }
            FetchPoll::Idle => {}
        }
        if now_ns < self.next_snapshot_ns {
            return;
        }
        let Some(instrument) = self.handler.snapshot_wanted() else {
            return;
        };
        let Some(path) = self
            .instruments
            .iter()
            .position(|&i| i == instrument)
            .and_then(|k| self.snapshot_paths[k].as_deref())
        else {
            return;
        };
        self.stats.snapshot_requests += 1;
        let deadline = now_ns.saturating_add(self.config.snapshot_timeout_ms * MS);
        if let Err(e) = self.fetch.start(rest, path, instrument, deadline) {
            self.stats.snapshot_failures += 1;
            tracing::warn!(url = %self.url, error = %e, "snapshot request failed to start");
            self.next_snapshot_ns = now_ns.saturating_add(self.config.snapshot_retry_ms * MS);
        }
    }

    fn event(&mut self, kind: FeedEventKind, now_ns: u64, value: i64, out: &mut RecordBuffer) {
        self.event_seq += 1;
        let now = UnixNanos(now_ns);
        let header = RecordHeader::new(self.config.event_stream, self.event_seq, now, now);
        out.push(
            header,
            &FeedEvent {
                instrument: InstrumentId(u32::MAX),
                kind: kind.code(),
                venue: self.venue,
                venue_seq: self.connection_no,
                expected: 0,
                value,
            },
        );
    }
}

fn state_of(state: &State) -> ConnState {
    match state {
        State::Disconnected { .. } => ConnState::Disconnected,
        State::Connecting { .. } => ConnState::Connecting,
        State::Handshaking { .. } => ConnState::Handshaking,
        State::Open { .. } => ConnState::Open,
        State::GaveUp => ConnState::GaveUp,
    }
}

/// Flushes, treating `WouldBlock` as "the rest goes out on a later poll".
fn flush(ws: &mut WebSocket<Transport>) -> Result<(), WsError> {
    match ws.flush() {
        Err(WsError::Io(e)) if transport::would_block(&e) => Ok(()),
        other => other,
    }
}
