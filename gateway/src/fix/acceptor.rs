//! The FIX acceptor: many sessions on one `mio` event loop.
//!
//! [`Acceptor::bind`] listens on a TCP address for the configured sessions (one per CompID
//! pair, each with its [`MessageStore`]); [`Acceptor::poll`] runs one round of the loop:
//! it accepts connections, reads, frames and parses messages, runs them through each
//! connection's [`Session`], hands application messages to the caller's [`Application`],
//! runs the timers, and writes. It is meant to be called in a loop by one I/O thread, which
//! may read the wall clock (SendingTime needs it).
//!
//! # Connections
//!
//! * A new connection must log on within `logon_timeout_ms` (slow or silent clients are
//!   closed) and its first message must be a Logon; the Logon's CompID pair (56, 49) picks
//!   the session. An unknown pair, or a first message that is not a Logon, is closed without
//!   an answer; a Logon for a session that is already logged on gets a Logout ("session
//!   already logged on") and is closed: one connection per session at a time.
//! * A failed authentication is answered (Logout with a text) after the
//!   [`FailedLogons`] delay, on a timer: the loop goes on serving other connections.
//! * Reads go into a per-connection buffer of `max_message_size` bytes; [`frame`] finds
//!   messages across partial reads and several per read. Garbled bytes (not a message, bad
//!   BodyLength, bad CheckSum) are skipped up to the next `8=FIX` and consume no sequence
//!   number, as FIX specifies. A message whose BodyLength exceeds `max_message_size`
//!   ends the connection (with a Logout saying so when logged on): it cannot be buffered,
//!   and skipping it would only trade it for an endless resend loop. Another BeginString
//!   ends the connection (Logout "Incorrect BeginString" when logged on).
//! * Each connection reads at most [`READ_BUDGET`] bytes per round, so one flooding peer
//!   cannot starve the others; the rest is read in the next round. A read shorter than its
//!   buffer has emptied the socket, so the loop stops there instead of reading again for a
//!   `WouldBlock` (a system call per message saved; new data raises a new edge-triggered
//!   event). After the peer closed, reads go on to the end of the stream.
//! * When a round finds nothing to do, each session's store may do its housekeeping
//!   ([`MessageStore::maintain`]): off the path of any message.
//! * Writes are queued per connection and flushed once per round (and at the start of the
//!   next [`Acceptor::poll`], for [`Acceptor::send`] calls in between). A partial write
//!   waits for WRITABLE. A peer whose unsent bytes exceed `write_buffer_cap` (it does not
//!   read) is disconnected. A resend is queued at once, so the cap must exceed what the
//!   store can resend (the default 8 MiB covers 10 000 stored messages of 800 bytes).
//! * A connection being closed gets one last non-blocking attempt to write what is queued
//!   (a Logout, typically), then is closed.
//!
//! # Threads
//!
//! [`Acceptor::waker`] gives a [`Waker`] another thread can use to end a blocking
//! [`Acceptor::poll`] early (for example after queueing execution reports for the I/O
//! thread to [`send`](Acceptor::send)).
//!
//! # Configuration
//!
//! ```toml
//! listen = "0.0.0.0:9878"
//! max_connections = 64
//! max_message_size = 65536
//! logon_timeout_ms = 10000
//! write_buffer_cap = 8388608
//! sending_time_tolerance_ms = 120000
//! logout_timeout_ms = 2000
//! ```
//!
//! and one [`SessionConfig`] per `[[sessions]]` entry.

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aaiti_model::UnixNanos;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde::{Deserialize, Serialize};

use crate::fix::Reject;
use crate::fix::auth::FailedLogons;
use crate::fix::codec::{Encoder, Framing, Garbled, Message, Parser, frame};
use crate::fix::session::{
    Action, ConfigError, DisconnectReason, LogonError, Session, SessionConfig, SessionStats,
};
use crate::fix::store::MessageStore;

/// Most bytes read from one connection in one round.
pub const READ_BUDGET: usize = 256 * 1024;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` has token `i + FIRST_CONN`.
const FIRST_CONN: usize = 2;

/// The acceptor's configuration (every key optional; unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcceptorConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Most connections open at once (logged on or not); more are closed on accept.
    pub max_connections: usize,
    /// Largest message accepted, in bytes (whole message, header to checksum); also the
    /// size of each connection's read buffer.
    pub max_message_size: usize,
    /// A connection that has not logged on within this many milliseconds is closed.
    pub logon_timeout_ms: u64,
    /// Most unsent bytes queued for one connection; a peer that lets more pile up is
    /// disconnected.
    pub write_buffer_cap: usize,
    /// Largest difference between a message's SendingTime (52) and our clock, in
    /// milliseconds.
    pub sending_time_tolerance_ms: u64,
    /// How long our Logout waits for the peer's, in milliseconds.
    pub logout_timeout_ms: u64,
}

impl Default for AcceptorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9878)),
            max_connections: 64,
            max_message_size: 64 * 1024,
            logon_timeout_ms: 10_000,
            write_buffer_cap: 8 * 1024 * 1024,
            sending_time_tolerance_ms: 120_000,
            logout_timeout_ms: 2_000,
        }
    }
}

impl AcceptorConfig {
    /// Most connections allowed.
    pub const MAX_CONNECTIONS: usize = 65_536;

    /// Checks ranges.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for the first key out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: &str| {
            Err(ConfigError {
                session: String::new(),
                key,
                problem: problem.into(),
            })
        };
        if self.max_connections == 0 || self.max_connections > Self::MAX_CONNECTIONS {
            return bad("max_connections", "use 1..=65536");
        }
        if !(256..=16 * 1024 * 1024).contains(&self.max_message_size) {
            return bad("max_message_size", "use 256..=16777216 bytes");
        }
        if self.logon_timeout_ms == 0 {
            return bad("logon_timeout_ms", "use at least 1");
        }
        if self.write_buffer_cap < self.max_message_size {
            return bad("write_buffer_cap", "use at least max_message_size");
        }
        if self.sending_time_tolerance_ms == 0 {
            return bad("sending_time_tolerance_ms", "use at least 1");
        }
        if self.logout_timeout_ms == 0 {
            return bad("logout_timeout_ms", "use at least 1");
        }
        Ok(())
    }
}

/// A configured session: its index in the `sessions` given to [`Acceptor::bind`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// A refused Logon, reported so that the engine can journal it. Holds no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogonFailure {
    /// The session its CompIDs name, when they name one.
    pub session: Option<SessionId>,
    /// SenderCompID (49) of the Logon (lossy UTF-8, at most 64 bytes; empty if absent).
    pub sender_comp_id: String,
    /// TargetCompID (56) of the Logon (same).
    pub target_comp_id: String,
    /// Username (553) of the Logon (same; the password is never kept).
    pub username: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Why.
    pub error: LogonError,
    /// Consecutive authentication failures of this session, this one included.
    pub consecutive_failures: u32,
    /// How long the answer is held back.
    pub delay: Duration,
}

/// What the acceptor calls. Every call happens on the acceptor's thread, inside
/// [`Acceptor::poll`].
pub trait Application {
    /// A session logged on (its configuration says what it may do).
    fn on_logon(&mut self, session: SessionId, config: &SessionConfig, now: UnixNanos);

    /// A logged-on session's connection ended.
    fn on_logout(&mut self, session: SessionId, reason: DisconnectReason, now: UnixNanos);

    /// An application message passed the session checks. `reply` sends messages to the
    /// same session (acknowledgements, business rejects). `Err` makes the session answer
    /// with a Reject (35=3) for this message.
    ///
    /// # Errors
    ///
    /// The message violates the dictionary.
    fn on_message(
        &mut self,
        session: SessionId,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        now: UnixNanos,
    ) -> Result<(), Reject>;

    /// A Logon was refused.
    fn on_logon_failed(&mut self, failure: &LogonFailure, now: UnixNanos);
}

/// Sends messages to the session whose message is being handled
/// ([`Application::on_message`]).
#[derive(Debug)]
pub struct Reply<'a> {
    session: &'a mut Session,
    out: &'a mut Vec<u8>,
    now: UnixNanos,
}

impl Reply<'_> {
    /// Sends an application message of `msg_type`; `body` writes the fields after the
    /// standard header. Returns its MsgSeqNum.
    ///
    /// # Errors
    ///
    /// The session's store failed.
    pub fn send(&mut self, msg_type: &[u8], body: impl FnOnce(&mut Encoder)) -> io::Result<u64> {
        self.session.send(msg_type, self.now, self.out, body)
    }
}

/// Why the acceptor could not start.
#[derive(Debug, thiserror::Error)]
pub enum AcceptorError {
    /// A configuration value is out of range or two sessions share a CompID pair.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding, polling or a store failed.
    #[error("fix acceptor: {0}")]
    Io(#[from] io::Error),
}

/// Why [`Acceptor::send`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No session has this id.
    #[error("unknown fix session {0:?}")]
    UnknownSession(SessionId),
    /// The session's store failed; the message was not sent.
    #[error("fix session store: {0}")]
    Store(#[from] io::Error),
}

/// Acceptor counters, for metrics.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptorStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were open.
    pub refused_max_connections: u64,
    /// Connections open now.
    pub open_connections: u64,
    /// Sessions logged on now.
    pub logged_on: u64,
    /// Logons accepted.
    pub logons: u64,
    /// Logons refused (every reason).
    pub logon_failures: u64,
    /// Of which authentication failures.
    pub auth_failures: u64,
    /// Of which the first message was not a Logon.
    pub not_logon_first: u64,
    /// Of which the CompID pair named no session.
    pub unknown_sessions: u64,
    /// Of which the session was already logged on.
    pub already_logged_on: u64,
    /// Connections closed for not logging on in time.
    pub logon_timeouts: u64,
    /// Garbled messages skipped.
    pub garbled: u64,
    /// Connections ended by a message over `max_message_size`.
    pub oversized: u64,
    /// Connections ended by another BeginString.
    pub wrong_begin_string: u64,
    /// Connections ended because the peer did not read.
    pub write_buffer_full: u64,
    /// Connections closed (every reason).
    pub disconnects: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Wake-ups through the [`Waker`].
    pub wakeups: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// No Logon yet.
    AwaitingLogon,
    /// Logged on to this session.
    LoggedOn(usize),
    /// A failed Logon whose answer (in the write buffer) goes out at `until`.
    Delayed { until: UnixNanos, error: LogonError },
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Received bytes `rbuf[..rlen]` not yet framed.
    rbuf: Vec<u8>,
    rlen: usize,
    /// Bytes to send.
    wbuf: Vec<u8>,
    phase: Phase,
    opened: UnixNanos,
    /// WRITABLE interest registered (a write would block).
    writable: bool,
    /// Close at the end of this round (after a last write attempt).
    close: Option<DisconnectReason>,
}

#[derive(Debug)]
struct Slot {
    session: Session,
    /// The connection logged on to it.
    conn: Option<usize>,
}

/// Many FIX sessions on one `mio` event loop (see the [module documentation](self)).
#[derive(Debug)]
pub struct Acceptor {
    config: AcceptorConfig,
    poll: Poll,
    events: Events,
    listener: TcpListener,
    local_addr: SocketAddr,
    waker: Arc<Waker>,
    sessions: Vec<Slot>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    failed: FailedLogons,
    parser: Parser,
    /// Connections with events this round (reused).
    ready: Vec<Ready>,
    /// Connections that hit the read budget and still have input.
    backlog: Vec<usize>,
    /// Output of [`Acceptor::send`] for a session without a connection (stored only).
    scratch: Vec<u8>,
    stats: AcceptorStats,
}

/// One connection's readiness from a poll.
#[derive(Copy, Clone, Debug)]
struct Ready {
    index: usize,
    readable: bool,
    /// Read to the end of the stream: the peer closed or the socket failed.
    closing: bool,
    writable: bool,
}

fn wall_clock() -> UnixNanos {
    UnixNanos::from_system_time(SystemTime::now())
}

fn millis(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

impl Acceptor {
    /// Validates the configuration, makes each session's store with `store_factory`, and
    /// listens.
    ///
    /// # Errors
    ///
    /// [`AcceptorError::Config`] for a bad value or a CompID pair configured twice;
    /// [`AcceptorError::Io`] if a store cannot be made or the address cannot be bound.
    pub fn bind(
        config: AcceptorConfig,
        sessions: Vec<SessionConfig>,
        mut store_factory: impl FnMut(&SessionConfig) -> io::Result<Box<dyn MessageStore>>,
    ) -> Result<Self, AcceptorError> {
        config.validate()?;
        if sessions.len() > u32::MAX as usize {
            return Err(ConfigError {
                session: String::new(),
                key: "sessions",
                problem: "too many sessions".into(),
            }
            .into());
        }
        for (index, session) in sessions.iter().enumerate() {
            session.validate()?;
            if sessions[..index].iter().any(|other| {
                other.sender_comp_id == session.sender_comp_id
                    && other.target_comp_id == session.target_comp_id
            }) {
                return Err(ConfigError {
                    session: format!(
                        " (session {}->{})",
                        session.sender_comp_id, session.target_comp_id
                    ),
                    key: "target_comp_id",
                    problem: "this CompID pair is configured twice".into(),
                }
                .into());
            }
        }
        let mut slots = Vec::with_capacity(sessions.len());
        for session in sessions {
            let store = store_factory(&session)?;
            slots.push(Slot {
                session: Session::new(session, &config, store),
                conn: None,
            });
        }
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let failed = FailedLogons::new(slots.len());
        Ok(Self {
            poll,
            events: Events::with_capacity(1024),
            listener,
            local_addr,
            waker,
            sessions: slots,
            conns: Vec::new(),
            free: Vec::new(),
            failed,
            parser: Parser::new(),
            ready: Vec::with_capacity(1024),
            backlog: Vec::new(),
            scratch: Vec::new(),
            stats: AcceptorStats::default(),
            config,
        })
    }

    /// The address listened on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Wakes a blocking [`Acceptor::poll`] from another thread.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Counters.
    pub fn stats(&self) -> &AcceptorStats {
        &self.stats
    }

    /// Number of configured sessions (ids are `0..len`).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The session with our CompID `sender_comp_id` and theirs `target_comp_id`.
    pub fn session_id(&self, sender_comp_id: &str, target_comp_id: &str) -> Option<SessionId> {
        self.sessions
            .iter()
            .position(|slot| {
                let config = slot.session.config();
                config.sender_comp_id == sender_comp_id && config.target_comp_id == target_comp_id
            })
            .map(|index| SessionId(index as u32))
    }

    /// A session (configuration, sequence numbers, state, counters).
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(id.0 as usize).map(|slot| &slot.session)
    }

    /// A session's counters.
    pub fn session_stats(&self, id: SessionId) -> Option<&SessionStats> {
        self.session(id).map(Session::stats)
    }

    /// Whether a session is logged on.
    pub fn is_logged_on(&self, id: SessionId) -> bool {
        self.sessions
            .get(id.0 as usize)
            .is_some_and(|slot| slot.conn.is_some() && slot.session.is_logged_on())
    }

    /// Sends an application message of `msg_type` to a session; `body` writes the fields
    /// after the standard header. The bytes are queued and written by the next
    /// [`Acceptor::poll`]. A session that is not logged on still stores the message (and
    /// uses a sequence number): the peer gets it by ResendRequest after its next Logon
    /// (unless that Logon resets the numbers). Returns the MsgSeqNum.
    ///
    /// # Errors
    ///
    /// Unknown session, or its store failed.
    pub fn send(
        &mut self,
        id: SessionId,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder),
    ) -> Result<u64, SendError> {
        self.send_at(id, msg_type, wall_clock(), body)
    }

    /// [`Acceptor::send`] with SendingTime (52) `now`, for a caller that has just read the
    /// clock (one reading per message, not two).
    ///
    /// # Errors
    ///
    /// Unknown session, or its store failed.
    pub fn send_at(
        &mut self,
        id: SessionId,
        msg_type: &[u8],
        now: UnixNanos,
        body: impl FnOnce(&mut Encoder),
    ) -> Result<u64, SendError> {
        let cap = self.config.write_buffer_cap;
        let slot = self
            .sessions
            .get_mut(id.0 as usize)
            .ok_or(SendError::UnknownSession(id))?;
        let conn = slot
            .conn
            .and_then(|index| self.conns.get_mut(index))
            .and_then(Option::as_mut)
            .filter(|conn| conn.close.is_none() && matches!(conn.phase, Phase::LoggedOn(_)));
        match conn {
            Some(conn) if slot.session.is_logged_on() => {
                let seq = slot.session.send(msg_type, now, &mut conn.wbuf, body)?;
                check_write_cap(conn, cap, &mut self.stats);
                Ok(seq)
            }
            _ => {
                self.scratch.clear();
                Ok(slot.session.send(msg_type, now, &mut self.scratch, body)?)
            }
        }
    }

    /// Starts a Logout of a logged-on session (with an optional text); the connection
    /// closes when the peer answers or after `logout_timeout_ms`.
    pub fn logout(&mut self, id: SessionId, text: &[u8]) {
        let now = wall_clock();
        let Some(slot) = self.sessions.get_mut(id.0 as usize) else {
            return;
        };
        let Some(conn) = slot
            .conn
            .and_then(|index| self.conns.get_mut(index))
            .and_then(Option::as_mut)
        else {
            return;
        };
        if let Action::Disconnect(reason) = slot.session.logout(text, now, &mut conn.wbuf) {
            conn.close.get_or_insert(reason);
        }
    }

    /// One round of the event loop: writes what is queued, waits for events up to
    /// `timeout` (`None`: until something happens; timers shorten the wait), then accepts,
    /// reads, runs sessions and timers, and writes. Call it in a loop.
    ///
    /// # Errors
    ///
    /// Polling failed (not a per-connection error: those close the connection).
    pub fn poll(&mut self, timeout: Option<Duration>, app: &mut dyn Application) -> io::Result<()> {
        let now = wall_clock();
        self.flush_all();
        self.close_marked(app, now);
        let wait = self.wait_time(timeout, now);
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        // A poll that could not wait returned within microseconds: the reading before it
        // still holds (one clock reading per round for a caller that spins).
        let now = if wait == Some(Duration::ZERO) {
            now
        } else {
            wall_clock()
        };
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        let mut accept = false;
        for event in &self.events {
            match event.token() {
                LISTENER => accept = true,
                WAKER => self.stats.wakeups += 1,
                Token(token) => ready.push(Ready {
                    index: token - FIRST_CONN,
                    readable: event.is_readable() || event.is_read_closed() || event.is_error(),
                    // The peer closed (or the socket failed) before this wake-up: no later
                    // event will say so, so the read must go on to the end of the stream.
                    closing: event.is_read_closed() || event.is_error(),
                    writable: event.is_writable() || event.is_write_closed(),
                }),
            }
        }
        if accept {
            self.accept(now);
        }
        let mut backlog = std::mem::take(&mut self.backlog);
        for &Ready {
            index,
            readable,
            closing,
            writable,
        } in &ready
        {
            if writable {
                self.flush(index);
            }
            if readable && !backlog.contains(&index) {
                self.read(index, now, app, closing);
            }
        }
        for index in backlog.drain(..) {
            self.read(index, now, app, true);
        }
        self.ready = ready;
        if self.backlog.is_empty() {
            // Keep the allocation.
            std::mem::swap(&mut self.backlog, &mut backlog);
        }
        self.timers(now);
        self.flush_all();
        self.close_marked(app, now);
        if self.events.is_empty() && self.backlog.is_empty() {
            // Idle: the stores' housekeeping costs no order any latency now.
            for slot in &mut self.sessions {
                slot.session.maintain_store();
            }
        }
        Ok(())
    }

    /// How long the next wait may last: the caller's timeout shortened by the earliest
    /// timer, zero when a connection has unread input.
    fn wait_time(&self, timeout: Option<Duration>, now: UnixNanos) -> Option<Duration> {
        if !self.backlog.is_empty() {
            return Some(Duration::ZERO);
        }
        let logon_timeout = millis(self.config.logon_timeout_ms);
        let sessions = self
            .sessions
            .iter()
            .filter(|slot| slot.conn.is_some())
            .filter_map(|slot| slot.session.next_deadline());
        let conns = self
            .conns
            .iter()
            .flatten()
            .filter_map(|conn| match conn.phase {
                Phase::AwaitingLogon => {
                    Some(UnixNanos(conn.opened.0.saturating_add(logon_timeout)))
                }
                Phase::Delayed { until, .. } => Some(until),
                Phase::LoggedOn(_) => None,
            });
        let timer = sessions
            .chain(conns)
            .min()
            .map(|deadline| Duration::from_nanos(deadline.saturating_since(now)));
        match (timeout, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn accept(&mut self, now: UnixNanos) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Out of descriptors, typically: the pending connection waits in the
                    // backlog until the next accept.
                    tracing::warn!(%error, "fix acceptor: accept failed");
                    return;
                }
            };
            if self.stats.open_connections >= self.config.max_connections as u64 {
                self.stats.refused_max_connections += 1;
                drop(stream);
                continue;
            }
            let index = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            // Small messages must not wait for Nagle.
            let _ = stream.set_nodelay(true);
            if let Err(error) = self.poll.registry().register(
                &mut stream,
                Token(index + FIRST_CONN),
                Interest::READABLE,
            ) {
                tracing::warn!(%error, "fix acceptor: register failed");
                self.free.push(index);
                continue;
            }
            self.stats.accepted += 1;
            self.stats.open_connections += 1;
            self.conns[index] = Some(Conn {
                stream,
                peer,
                rbuf: vec![0; self.config.max_message_size],
                rlen: 0,
                wbuf: Vec::new(),
                phase: Phase::AwaitingLogon,
                opened: now,
                writable: false,
                close: None,
            });
        }
    }

    /// Reads and handles what a connection has, up to [`READ_BUDGET`] bytes (the rest goes
    /// to the backlog). A read that returns less than the room it was given has emptied the
    /// socket (epoll(7): for stream sockets a short read means the input is exhausted), and
    /// any later data raises a new edge-triggered event, so the read that would only say
    /// `WouldBlock` (one system call per message at low rates) is skipped, unless
    /// `to_the_end`: the peer closed before the wake-up, or this is a backlog read.
    fn read(&mut self, index: usize, now: UnixNanos, app: &mut dyn Application, to_the_end: bool) {
        let mut budget = READ_BUDGET;
        loop {
            let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
                return;
            };
            if conn.close.is_some() || matches!(conn.phase, Phase::Delayed { .. }) {
                // Nothing more is read from a connection on its way out.
                return;
            }
            if conn.rlen == conn.rbuf.len() {
                // Cannot happen (a full buffer always frames or is garbled); never spin.
                conn.close = Some(DisconnectReason::MessageTooLarge);
                return;
            }
            let rlen = conn.rlen;
            match conn.stream.read(&mut conn.rbuf[rlen..]) {
                Ok(0) => {
                    conn.close = Some(DisconnectReason::PeerClosed);
                    return;
                }
                Ok(read) => {
                    let drained = read < conn.rbuf.len() - rlen && !to_the_end;
                    conn.rlen += read;
                    self.stats.bytes_in += read as u64;
                    self.process(index, now, app);
                    budget = budget.saturating_sub(read);
                    if budget == 0 {
                        self.backlog.push(index);
                        return;
                    }
                    if drained {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.close = Some(DisconnectReason::PeerClosed);
                    return;
                }
            }
        }
    }

    /// Frames and handles every whole message in a connection's read buffer.
    fn process(&mut self, index: usize, now: UnixNanos, app: &mut dyn Application) {
        let max = self.config.max_message_size;
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        // Taken out (no copy) so that the messages can borrow it while the rest of `self`
        // is used.
        let rbuf = std::mem::take(&mut conn.rbuf);
        let rlen = conn.rlen;
        let mut start = 0;
        while start < rlen {
            let stop = self.conns[index].as_ref().is_none_or(|conn| {
                conn.close.is_some() || matches!(conn.phase, Phase::Delayed { .. })
            });
            if stop {
                start = rlen;
                break;
            }
            let rest = &rbuf[start..rlen];
            match frame(rest, max) {
                Framing::Complete(len) => {
                    self.handle(index, &rest[..len], now, app);
                    start += len;
                }
                Framing::Incomplete => break,
                Framing::Garbled {
                    reason: Garbled::BadBodyLength,
                    ..
                } if stated_length_exceeds(rest, max) => {
                    self.stats.oversized += 1;
                    let text = b"message larger than max_message_size";
                    self.end(index, DisconnectReason::MessageTooLarge, text, now);
                    start = rlen;
                }
                Framing::Garbled { skip, .. } => {
                    self.stats.garbled += 1;
                    start += keep_possible_start(rest, skip);
                }
                Framing::WrongBeginString => {
                    self.stats.wrong_begin_string += 1;
                    self.end(
                        index,
                        DisconnectReason::WrongBeginString,
                        b"Incorrect BeginString",
                        now,
                    );
                    start = rlen;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) {
            let mut rbuf = rbuf;
            rbuf.copy_within(start..rlen, 0);
            conn.rbuf = rbuf;
            conn.rlen = rlen - start;
        }
    }

    /// Ends a connection for a protocol problem: a Logout with `text` if logged on.
    fn end(&mut self, index: usize, reason: DisconnectReason, text: &[u8], now: UnixNanos) {
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if let Phase::LoggedOn(session) = conn.phase {
            let _ = self.sessions[session]
                .session
                .logout(text, now, &mut conn.wbuf);
        }
        conn.close.get_or_insert(reason);
    }

    /// One framed message.
    fn handle(&mut self, index: usize, bytes: &[u8], now: UnixNanos, app: &mut dyn Application) {
        let Self {
            conns,
            sessions,
            parser,
            failed,
            stats,
            config,
            ..
        } = self;
        let Some(conn) = conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        match conn.phase {
            Phase::Delayed { .. } => {}
            Phase::AwaitingLogon => {
                let parsed = parser
                    .parse(bytes)
                    .ok()
                    .filter(|msg| msg.msg_type() == b"A");
                let Some(msg) = parsed else {
                    stats.logon_failures += 1;
                    stats.not_logon_first += 1;
                    let failure = logon_failure(None, None, conn.peer, LogonError::NotLogon, 0);
                    app.on_logon_failed(&failure, now);
                    conn.close = Some(DisconnectReason::Logon(LogonError::NotLogon));
                    return;
                };
                let found = sessions.iter().position(|slot| {
                    let config = slot.session.config();
                    msg.get(56) == Some(config.sender_comp_id.as_bytes())
                        && msg.get(49) == Some(config.target_comp_id.as_bytes())
                });
                let Some(session) = found else {
                    stats.logon_failures += 1;
                    stats.unknown_sessions += 1;
                    let failure =
                        logon_failure(None, Some(&msg), conn.peer, LogonError::UnknownSession, 0);
                    app.on_logon_failed(&failure, now);
                    conn.close = Some(DisconnectReason::Logon(LogonError::UnknownSession));
                    return;
                };
                let id = SessionId(session as u32);
                let slot = &mut sessions[session];
                if slot.conn.is_some() || !slot.session.connect(now) {
                    stats.logon_failures += 1;
                    stats.already_logged_on += 1;
                    slot.session
                        .refuse_logon(b"session already logged on", now, &mut conn.wbuf);
                    let error = LogonError::AlreadyLoggedOn;
                    let failure = logon_failure(Some(id), Some(&msg), conn.peer, error, 0);
                    app.on_logon_failed(&failure, now);
                    conn.close = Some(DisconnectReason::Logon(error));
                    return;
                }
                match slot.session.on_message(&msg, now, &mut conn.wbuf) {
                    Action::LoggedOn => {
                        conn.phase = Phase::LoggedOn(session);
                        slot.conn = Some(index);
                        failed.success(session);
                        stats.logons += 1;
                        stats.logged_on += 1;
                        tracing::info!(
                            sender = %slot.session.config().sender_comp_id,
                            target = %slot.session.config().target_comp_id,
                            peer = %conn.peer,
                            "fix session logged on"
                        );
                        app.on_logon(id, slot.session.config(), now);
                    }
                    Action::LogonFailed(error) => {
                        stats.logon_failures += 1;
                        let delay = if error.is_auth() {
                            stats.auth_failures += 1;
                            failed.failure(session)
                        } else {
                            Duration::ZERO
                        };
                        let mut failure = logon_failure(
                            Some(id),
                            Some(&msg),
                            conn.peer,
                            error,
                            failed.count(session),
                        );
                        failure.delay = delay;
                        tracing::warn!(
                            sender = %failure.sender_comp_id,
                            peer = %conn.peer,
                            ?error,
                            delay_ms = delay.as_millis() as u64,
                            "fix logon refused"
                        );
                        app.on_logon_failed(&failure, now);
                        if delay.is_zero() {
                            conn.close = Some(DisconnectReason::Logon(error));
                        } else {
                            conn.phase = Phase::Delayed {
                                until: UnixNanos(now.0.saturating_add(delay.as_nanos() as u64)),
                                error,
                            };
                        }
                    }
                    Action::Disconnect(reason) => conn.close = Some(reason),
                    Action::None | Action::Deliver => {
                        // A Logon never yields these; do not leave a half-bound session.
                        slot.session.disconnected();
                        conn.close = Some(DisconnectReason::Logon(LogonError::NotLogon));
                    }
                }
            }
            Phase::LoggedOn(session) => {
                let slot = &mut sessions[session];
                let action = match parser.parse(bytes) {
                    Err(error) => slot
                        .session
                        .on_unparsable(bytes, error, now, &mut conn.wbuf),
                    Ok(msg) => match slot.session.on_message(&msg, now, &mut conn.wbuf) {
                        Action::Deliver => {
                            let mut reply = Reply {
                                session: &mut slot.session,
                                out: &mut conn.wbuf,
                                now,
                            };
                            match app.on_message(SessionId(session as u32), &msg, &mut reply, now) {
                                Ok(()) => Action::None,
                                Err(reject) => {
                                    slot.session.reject(&msg, reject, now, &mut conn.wbuf)
                                }
                            }
                        }
                        other => other,
                    },
                };
                if let Action::Disconnect(reason) = action {
                    conn.close.get_or_insert(reason);
                }
            }
        }
        check_write_cap(conn, config.write_buffer_cap, stats);
    }

    fn timers(&mut self, now: UnixNanos) {
        let logon_timeout = millis(self.config.logon_timeout_ms);
        for slot in &mut self.sessions {
            let Some(conn) = slot
                .conn
                .and_then(|index| self.conns.get_mut(index))
                .and_then(Option::as_mut)
            else {
                continue;
            };
            if conn.close.is_some() || slot.session.next_deadline().is_none_or(|at| at > now) {
                continue;
            }
            if let Action::Disconnect(reason) = slot.session.on_timer(now, &mut conn.wbuf) {
                conn.close = Some(reason);
            }
            check_write_cap(conn, self.config.write_buffer_cap, &mut self.stats);
        }
        for conn in self.conns.iter_mut().flatten() {
            if conn.close.is_some() {
                continue;
            }
            match conn.phase {
                Phase::AwaitingLogon if now.saturating_since(conn.opened) >= logon_timeout => {
                    self.stats.logon_timeouts += 1;
                    conn.close = Some(DisconnectReason::LogonTimeout);
                }
                Phase::Delayed { until, error } if now >= until => {
                    conn.close = Some(DisconnectReason::Logon(error));
                }
                _ => {}
            }
        }
    }

    fn flush_all(&mut self) {
        for index in 0..self.conns.len() {
            let pending = self.conns[index].as_ref().is_some_and(|conn| {
                !conn.wbuf.is_empty()
                    && !conn.writable
                    && !matches!(conn.phase, Phase::Delayed { .. })
            });
            if pending {
                self.flush(index);
            }
        }
    }

    /// Writes what is queued for a connection until done or the socket is full.
    fn flush(&mut self, index: usize) {
        let Some(conn) = self.conns.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if matches!(conn.phase, Phase::Delayed { .. }) && conn.close.is_none() {
            return;
        }
        let mut written = 0;
        let blocked = loop {
            if written == conn.wbuf.len() {
                break false;
            }
            match conn.stream.write(&conn.wbuf[written..]) {
                Ok(0) => {
                    conn.close.get_or_insert(DisconnectReason::PeerClosed);
                    break false;
                }
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break true,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    conn.close.get_or_insert(DisconnectReason::PeerClosed);
                    break false;
                }
            }
        };
        self.stats.bytes_out += written as u64;
        conn.wbuf.drain(..written);
        if conn.close.is_some() {
            return;
        }
        if blocked != conn.writable {
            let interest = if blocked {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(index + FIRST_CONN);
            if self
                .poll
                .registry()
                .reregister(&mut conn.stream, token, interest)
                .is_err()
            {
                conn.close = Some(DisconnectReason::PeerClosed);
                return;
            }
            conn.writable = blocked;
        }
    }

    /// Closes the connections marked for closing: a last write attempt, then close.
    fn close_marked(&mut self, app: &mut dyn Application, now: UnixNanos) {
        for index in 0..self.conns.len() {
            let Some(reason) = self.conns[index].as_ref().and_then(|conn| conn.close) else {
                continue;
            };
            self.flush(index);
            let Some(mut conn) = self.conns[index].take() else {
                continue;
            };
            let _ = self.poll.registry().deregister(&mut conn.stream);
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            drop(conn.stream);
            self.free.push(index);
            self.backlog.retain(|&other| other != index);
            self.stats.disconnects += 1;
            self.stats.open_connections = self.stats.open_connections.saturating_sub(1);
            if let Phase::LoggedOn(session) = conn.phase {
                let slot = &mut self.sessions[session];
                slot.session.disconnected();
                slot.conn = None;
                self.stats.logged_on = self.stats.logged_on.saturating_sub(1);
                tracing::info!(
                    sender = %slot.session.config().sender_comp_id,
                    target = %slot.session.config().target_comp_id,
                    ?reason,
                    "fix session disconnected"
                );
                app.on_logout(SessionId(session as u32), reason, now);
            }
        }
    }
}

fn check_write_cap(conn: &mut Conn, cap: usize, stats: &mut AcceptorStats) {
    if conn.wbuf.len() > cap && conn.close.is_none() {
        stats.write_buffer_full += 1;
        conn.close = Some(DisconnectReason::WriteBufferFull);
    }
}

fn logon_failure(
    session: Option<SessionId>,
    msg: Option<&Message<'_>>,
    peer: SocketAddr,
    error: LogonError,
    consecutive_failures: u32,
) -> LogonFailure {
    let id = |tag: u32| {
        msg.and_then(|msg| msg.get(tag))
            .map(|value| String::from_utf8_lossy(&value[..value.len().min(64)]).into_owned())
            .unwrap_or_default()
    };
    LogonFailure {
        session,
        sender_comp_id: id(49),
        target_comp_id: id(56),
        username: id(553),
        peer,
        error,
        consecutive_failures,
        delay: Duration::ZERO,
    }
}

/// Whether `buf` starts a well-formed FIX 4.4 header whose BodyLength makes the message
/// longer than `max` (as opposed to a garbled BodyLength).
fn stated_length_exceeds(buf: &[u8], max: usize) -> bool {
    const PREFIX: &[u8] = b"8=FIX.4.4\x019=";
    let Some(rest) = buf.strip_prefix(PREFIX) else {
        return false;
    };
    let Some(end) = rest.iter().position(|&b| b == 0x01) else {
        return false;
    };
    if end == 0 || end > 7 {
        return false;
    }
    crate::fix::codec::parse_u64(&rest[..end])
        .is_some_and(|body| PREFIX.len() + end + 1 + body as usize + 7 > max)
}

/// Bytes to drop for a garble: `skip`, except that a tail which could be the start of the
/// next message (`8`, `8=`, `8=F`, `8=FI`) is kept for the next read.
fn keep_possible_start(rest: &[u8], skip: usize) -> usize {
    if skip < rest.len() {
        return skip.max(1);
    }
    for keep in (1..=4).rev() {
        if keep < rest.len() && rest.ends_with(&b"8=FIX"[..keep]) {
            return rest.len() - keep;
        }
    }
    rest.len()
}
