//! The trivial responder: a FIX 4.4 acceptor that answers every order request at once with
//! one canned ExecutionReport, so a run against it measures the generator's own floor
//! (plus the loopback TCP stack).
//!
//! One thread accepts; each connection gets a thread with blocking reads (a read timeout
//! of 50 ms lets it notice [`ResponderHandle::stop`] and send heartbeats), or, with
//! [`ResponderConfig::spin`], non-blocking reads in a busy loop: the floor to set beside a
//! system under test that busy-spins too, since a blocked reader pays a thread wake-up per
//! message that a spinning one does not. Per message it frames, indexes the fields and
//! encodes the answer into reused buffers: no allocation.
//!
//! * Logon (A): TargetCompID (56) must be the responder's CompID and, when configured,
//!   Username (553) / Password (554) must match; otherwise it answers with a Logout (58
//!   says why) and closes. Otherwise a Logon back with the same HeartBtInt (and 141=Y if
//!   asked, which also restarts its numbers at 1). A first message that is not a Logon
//!   closes the connection.
//! * Heartbeat (0) is ignored; TestRequest (1) gets a Heartbeat with its TestReqID (112);
//!   ResendRequest (2) a SequenceReset-GapFill to its next number; Logout (5) a Logout,
//!   then it closes. It sends a Heartbeat after HeartBtInt without sending. Inbound
//!   sequence numbers are not checked (that is the generator's job here).
//! * NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G): one
//!   ExecutionReport (8) each, ExecType/OrdStatus New/New, Canceled/Canceled,
//!   Replaced/New, echoing ClOrdID 11, OrigClOrdID 41, Symbol 55, Side 54, OrderQty 38
//!   and Price 44 when present, with a fresh OrderID 37 (`O<connection>-<n>`) and ExecID
//!   17 (`E<connection>-<n>`), CumQty 14 = 0, LeavesQty 151 = OrderQty (0 when
//!   canceled), AvgPx 6 = 0, TransactTime 60. A request without ClOrdID gets a session
//!   Reject (3, reason 1, RefTagID 11).

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use aaiti_gateway::fix::codec::{Encoder, Framing, Message, Parser, frame};

use super::LoadError;
use super::orders::{ID_BUF, write_id};
use super::session::wall_clock;

/// Receive buffer size; also the largest message accepted.
const RX_CAPACITY: usize = 64 * 1024;

/// How often a connection thread looks at the stop flag and its heartbeat timer.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// How long the accept loop sleeps when no connection is waiting.
const ACCEPT_POLL: Duration = Duration::from_millis(2);

/// A write blocked this long ends the connection (a peer that does not read).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The responder's settings.
#[derive(Clone, Debug)]
pub struct ResponderConfig {
    /// Where to listen; port 0 picks a free port ([`ResponderHandle::local_addr`]).
    pub listen: SocketAddr,
    /// Its CompID: the SenderCompID (49) it sends and the TargetCompID (56) it expects.
    pub comp_id: String,
    /// Required Username (553), if any.
    pub username: Option<String>,
    /// Required Password (554), if any.
    pub password: Option<String>,
    /// Busy-poll each connection instead of blocking in `read` (burns a core per
    /// connection while it is open).
    pub spin: bool,
    /// Pin the connection threads to this core.
    pub core: Option<usize>,
}

impl ResponderConfig {
    /// Listens on `listen` as `AAITI`, without credentials.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            comp_id: "AAITI".to_owned(),
            username: None,
            password: None,
            spin: false,
            core: None,
        }
    }

    /// Binds and starts accepting.
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] if the address cannot be bound, [`LoadError::Spawn`] if the
    /// accept thread cannot start.
    pub fn start(&self) -> Result<ResponderHandle, LoadError> {
        let io = |source| LoadError::Io {
            what: format!("responder on {}", self.listen),
            source,
        };
        let listener = TcpListener::bind(self.listen).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        // Nonblocking accept, so the loop can see the stop flag.
        listener.set_nonblocking(true).map_err(io)?;
        let shared = Arc::new(Shared::default());
        let config = Arc::new(self.clone());
        let thread_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("fixload-responder".to_owned())
            .spawn(move || accept_loop(&listener, &config, &thread_shared))
            .map_err(LoadError::Spawn)?;
        Ok(ResponderHandle {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

/// Starts a responder on `listen` with the defaults of [`ResponderConfig::new`].
///
/// # Errors
///
/// As [`ResponderConfig::start`].
pub fn start_responder(listen: SocketAddr) -> Result<ResponderHandle, LoadError> {
    ResponderConfig::new(listen).start()
}

/// A running responder; dropping it stops it too.
#[derive(Debug)]
pub struct ResponderHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl ResponderHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has answered so far (exact once stopped).
    pub fn counts(&self) -> ResponderCounts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let s = &self.shared;
        ResponderCounts {
            connections: get(&s.connections),
            logons: get(&s.logons),
            new_orders: get(&s.new_orders),
            cancels: get(&s.cancels),
            replaces: get(&s.replaces),
            test_requests: get(&s.test_requests),
            resend_requests: get(&s.resend_requests),
        }
    }

    /// Stops accepting, closes every connection and waits for the threads; returns the
    /// final counts.
    pub fn stop(mut self) -> ResponderCounts {
        self.stop_threads();
        self.counts()
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            // A panicked accept thread has nothing left to clean up.
            let _ = acceptor.join();
        }
    }
}

impl Drop for ResponderHandle {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Messages the responder handled, over all connections.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponderCounts {
    /// Connections accepted.
    pub connections: u64,
    /// Logons accepted.
    pub logons: u64,
    /// NewOrderSingles answered.
    pub new_orders: u64,
    /// OrderCancelRequests answered.
    pub cancels: u64,
    /// OrderCancelReplaceRequests answered.
    pub replaces: u64,
    /// TestRequests answered.
    pub test_requests: u64,
    /// ResendRequests answered.
    pub resend_requests: u64,
}

/// The stop flag and the counters. Relaxed ordering throughout: the counters are
/// statistics (exact after the threads are joined, which orders everything before it) and
/// the flag only needs to be seen eventually.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    connections: AtomicU64,
    logons: AtomicU64,
    new_orders: AtomicU64,
    cancels: AtomicU64,
    replaces: AtomicU64,
    test_requests: AtomicU64,
    resend_requests: AtomicU64,
}

fn accept_loop(listener: &TcpListener, config: &Arc<ResponderConfig>, shared: &Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut number = 0_u64;
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                number += 1;
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let config = Arc::clone(config);
                let conn_shared = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name(format!("fixload-resp-{number}"))
                    .spawn(move || serve(stream, &config, &conn_shared, number));
                // Without a thread the connection is dropped, which closes it.
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
                connections.retain(|handle| !handle.is_finished());
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // E.g. out of file descriptors: wait and retry.
            Err(_) => thread::sleep(ACCEPT_POLL * 5),
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// One connection's state.
struct Conn<'a> {
    config: &'a ResponderConfig,
    shared: &'a Shared,
    enc: Encoder,
    out: Vec<u8>,
    /// The initiator's CompID (from its Logon).
    peer: Vec<u8>,
    logged_on: bool,
    /// Close after writing what is queued.
    closing: bool,
    next_out: u64,
    heartbeat: Duration,
    last_sent: Instant,
    /// `O<connection>-` and `E<connection>-`.
    order_prefix: Vec<u8>,
    exec_prefix: Vec<u8>,
    reports: u64,
}

fn serve(mut stream: TcpStream, config: &ResponderConfig, shared: &Shared, number: u64) {
    if let Some(core) = config.core {
        // Best effort: an OS that refuses leaves the thread where it is.
        let _ = aaiti_core::sys::pin_current_thread(core);
    }
    let setup = stream
        .set_nonblocking(config.spin)
        .and_then(|()| stream.set_nodelay(true))
        .and_then(|()| stream.set_read_timeout(Some(READ_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
    if setup.is_err() {
        return;
    }
    let mut conn = Conn {
        config,
        shared,
        enc: Encoder::new(1024),
        out: Vec::with_capacity(64 * 1024),
        peer: Vec::new(),
        logged_on: false,
        closing: false,
        next_out: 1,
        heartbeat: Duration::from_secs(30),
        last_sent: Instant::now(),
        order_prefix: format!("O{number}-").into_bytes(),
        exec_prefix: format!("E{number}-").into_bytes(),
        reports: 0,
    };
    let mut parser = Parser::new();
    let mut rx = vec![0_u8; RX_CAPACITY];
    let (mut start, mut end) = (0_usize, 0_usize);
    while !shared.stop.load(Ordering::Relaxed) && !conn.closing {
        if end == rx.len() {
            rx.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        match stream.read(&mut rx[end..]) {
            Ok(0) => break,
            Ok(n) => {
                end += n;
                while start < end && !conn.closing {
                    match frame(&rx[start..end], RX_CAPACITY) {
                        Framing::Complete(len) => {
                            if let Ok(msg) = parser.parse(&rx[start..start + len]) {
                                conn.on_message(&msg);
                            }
                            start += len;
                        }
                        Framing::Incomplete => break,
                        Framing::Garbled { skip, .. } => start += skip,
                        Framing::WrongBeginString => conn.closing = true,
                    }
                }
                if start == end {
                    start = 0;
                    end = 0;
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock && config.spin => {
                std::hint::spin_loop();
            }
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
        if conn.logged_on && conn.last_sent.elapsed() >= conn.heartbeat {
            conn.begin(b"0");
            conn.commit();
        }
        if !conn.out.is_empty() {
            if write_all(&mut stream, &conn.out).is_err() {
                break;
            }
            conn.out.clear();
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// `write_all` for blocking and non-blocking (spinning) sockets alike: a full socket
/// buffer is waited out, up to [`WRITE_TIMEOUT`] (a blocking socket's own timeout ends it
/// earlier with an error).
fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    let mut blocked_since: Option<Instant> = None;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                blocked_since = None;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= WRITE_TIMEOUT {
                    return Err(ErrorKind::TimedOut.into());
                }
                std::hint::spin_loop();
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

impl Conn<'_> {
    fn begin(&mut self, msg_type: &[u8]) {
        let seq = self.next_out;
        self.begin_at(msg_type, seq);
    }

    fn begin_at(&mut self, msg_type: &[u8], seq: u64) {
        self.enc.begin(msg_type);
        self.enc.str(49, self.config.comp_id.as_bytes());
        self.enc.str(56, &self.peer);
        self.enc.uint(34, seq);
        self.enc.timestamp(52, wall_clock());
    }

    fn commit(&mut self) {
        self.out.extend_from_slice(self.enc.finish());
        self.next_out += 1;
        self.last_sent = Instant::now();
    }

    /// A Logout with `text`, then close.
    fn logout(&mut self, text: &[u8]) {
        self.begin(b"5");
        self.enc.str(58, text);
        self.commit();
        self.closing = true;
    }

    fn on_message(&mut self, msg: &Message<'_>) {
        let msg_type = msg.msg_type();
        if !self.logged_on {
            if msg_type == b"A" {
                self.on_logon(msg);
            } else {
                // FIX: the first message must be a Logon; anything else is dropped.
                self.closing = true;
            }
            return;
        }
        match msg_type {
            b"D" | b"F" | b"G" => self.execution_report(msg),
            b"1" => {
                self.shared.test_requests.fetch_add(1, Ordering::Relaxed);
                self.begin(b"0");
                if let Some(id) = msg.get(112) {
                    self.enc.str(112, id);
                }
                self.commit();
            }
            b"2" => {
                self.shared.resend_requests.fetch_add(1, Ordering::Relaxed);
                let begin = msg.get_u64(7).ok().flatten().unwrap_or(1).max(1);
                if begin < self.next_out {
                    self.begin_at(b"4", begin);
                    self.enc.bool(43, true);
                    self.enc.timestamp(122, wall_clock());
                    self.enc.bool(123, true);
                    self.enc.uint(36, self.next_out);
                    self.out.extend_from_slice(self.enc.finish());
                }
            }
            b"5" => self.logout(b"bye"),
            _ => {}
        }
    }

    fn on_logon(&mut self, msg: &Message<'_>) {
        self.peer = msg.get(49).unwrap_or(b"?").to_vec();
        if msg.get(56) != Some(self.config.comp_id.as_bytes()) {
            self.logout(b"unknown TargetCompID");
            return;
        }
        let matches = |expected: &Option<String>, tag: u32| {
            expected
                .as_ref()
                .is_none_or(|value| msg.get(tag) == Some(value.as_bytes()))
        };
        if !matches(&self.config.username, 553) || !matches(&self.config.password, 554) {
            self.logout(b"invalid username or password");
            return;
        }
        let heartbeat = msg.get_u64(108).ok().flatten().unwrap_or(30).clamp(1, 3600);
        self.heartbeat = Duration::from_secs(heartbeat);
        let reset = msg.get(141) == Some(b"Y");
        if reset {
            self.next_out = 1;
        }
        self.begin(b"A");
        self.enc.uint(98, 0);
        self.enc.uint(108, heartbeat);
        if reset {
            self.enc.bool(141, true);
        }
        self.commit();
        self.logged_on = true;
        self.shared.logons.fetch_add(1, Ordering::Relaxed);
    }

    fn execution_report(&mut self, msg: &Message<'_>) {
        let Some(clordid) = msg.get(11) else {
            let ref_seq = msg.seq_num().unwrap_or(0);
            self.begin(b"3");
            self.enc.uint(45, ref_seq);
            self.enc.uint(371, 11);
            self.enc.uint(373, 1);
            self.enc.str(58, b"required tag missing");
            self.commit();
            return;
        };
        let (exec_type, ord_status, counter) = match msg.msg_type() {
            b"D" => (b'0', b'0', &self.shared.new_orders),
            b"F" => (b'4', b'4', &self.shared.cancels),
            _ => (b'5', b'0', &self.shared.replaces),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.reports += 1;
        let mut id_buf = [0_u8; ID_BUF];
        self.begin(b"8");
        self.enc
            .str(37, write_id(&self.order_prefix, self.reports, &mut id_buf));
        self.enc
            .str(17, write_id(&self.exec_prefix, self.reports, &mut id_buf));
        self.enc.str(11, clordid);
        for tag in [41, 55, 54, 38, 44] {
            if let Some(value) = msg.get(tag) {
                self.enc.str(tag, value);
            }
        }
        self.enc.char(150, exec_type);
        self.enc.char(39, ord_status);
        self.enc.uint(14, 0);
        match msg.get(38) {
            Some(qty) if exec_type != b'4' => self.enc.str(151, qty),
            _ => self.enc.uint(151, 0),
        }
        self.enc.uint(6, 0);
        self.enc.timestamp(60, wall_clock());
        self.commit();
    }
}
