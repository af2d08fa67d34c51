//! The FIX acceptor over TCP loopback, with a small test client built from the codec:
//! logon, heartbeats, test requests, logout; several sessions at once; refused logons
//! (CompIDs, passwords with their delay, already logged on, slow clients); garbage, bad
//! checksums, oversized messages and another BeginString; a peer that never reads; a
//! throttled flood; gaps and resends both ways; sequence numbers surviving reconnects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use aaiti_gateway::fix::Reject;
use aaiti_gateway::fix::acceptor::{
    Acceptor, AcceptorConfig, AcceptorStats, Application, LogonFailure, Reply, SessionId,
};
use aaiti_gateway::fix::auth::{Auth, hash_password};
use aaiti_gateway::fix::codec::{Encoder, Framing, Message, Parser, checksum, frame};
use aaiti_gateway::fix::session::{DisconnectReason, LogonError, Role, SessionConfig};
use aaiti_gateway::fix::store::{MemoryStore, MessageStore};
use aaiti_model::UnixNanos;
use crossbeam_channel::{Receiver, Sender, unbounded};
use mio::Waker;

const PASSWORD: &str = "open sesame";

fn password_hash() -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(PASSWORD.as_bytes()).unwrap())
        .clone()
}

fn session(target: &str) -> SessionConfig {
    SessionConfig {
        sender_comp_id: "AAITI".into(),
        target_comp_id: target.into(),
        auth: Auth::None,
        role: Role::Trader,
        accounts: Vec::new(),
        default_account: None,
        default_venue: None,
        heartbeat_min_s: 1,
        heartbeat_max_s: 60,
        reset_on_logon: false,
        throttle_per_minute: 1_000,
        throttle_burst: 100,
    }
}

fn sessions() -> Vec<SessionConfig> {
    vec![
        session("DESK1"),
        session("DESK2"),
        SessionConfig {
            auth: Auth::Password {
                username: "secure".into(),
                hash: password_hash(),
            },
            ..session("SECURE")
        },
        SessionConfig {
            throttle_per_minute: 60,
            throttle_burst: 5,
            ..session("FLOOD")
        },
    ]
}

fn acceptor_config() -> AcceptorConfig {
    AcceptorConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        max_connections: 16,
        max_message_size: 4_096,
        logon_timeout_ms: 300,
        write_buffer_cap: 64 * 1024,
        sending_time_tolerance_ms: 120_000,
        logout_timeout_ms: 500,
    }
}

// ---------------------------------------------------------------------------------------
// The server: an acceptor on its own thread, with a recording application.

#[derive(Clone, Debug)]
enum Event {
    Logon(String),
    Logout(String, DisconnectReason),
    Message(String, String, u64),
    Failed(LogonFailure),
}

struct App {
    names: HashMap<SessionId, String>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Application for App {
    fn on_logon(&mut self, session: SessionId, config: &SessionConfig, _now: UnixNanos) {
        self.names.insert(session, config.target_comp_id.clone());
        self.events
            .lock()
            .unwrap()
            .push(Event::Logon(config.target_comp_id.clone()));
    }

    fn on_logout(&mut self, session: SessionId, reason: DisconnectReason, _now: UnixNanos) {
        let name = self.names[&session].clone();
        self.events
            .lock()
            .unwrap()
            .push(Event::Logout(name, reason));
    }

    fn on_message(
        &mut self,
        session: SessionId,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        _now: UnixNanos,
    ) -> Result<(), Reject> {
        let name = self.names[&session].clone();
        let msg_type = String::from_utf8_lossy(msg.msg_type()).into_owned();
        let seq = msg.seq_num().unwrap();
        self.events
            .lock()
            .unwrap()
            .push(Event::Message(name, msg_type.clone(), seq));
        if msg_type == "D" {
            let id = msg.get(11).unwrap_or(b"?");
            if id == b"reject-me" {
                return Err(Reject {
                    reason: 1,
                    ref_tag: Some(55),
                    text: "Symbol(55) missing",
                });
            }
            // Acknowledge with an execution report.
            reply
                .send(b"8", |e| {
                    e.str(11, id);
                    e.char(150, b'0');
                    e.char(39, b'0');
                })
                .unwrap();
        }
        Ok(())
    }

    fn on_logon_failed(&mut self, failure: &LogonFailure, _now: UnixNanos) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Failed(failure.clone()));
    }
}

enum Command {
    /// Send `count` execution reports of about `pad` bytes to a session.
    Send {
        target: String,
        count: usize,
        pad: usize,
    },
    Stats(Sender<AcceptorStats>),
}

struct Server {
    addr: SocketAddr,
    commands: Sender<Command>,
    waker: Arc<Waker>,
    events: Arc<Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Acceptor>>,
}

impl Server {
    fn start() -> Self {
        Self::with(acceptor_config(), |_| Ok(Box::new(MemoryStore::default())))
    }

    fn with(
        config: AcceptorConfig,
        stores: impl FnMut(&SessionConfig) -> io::Result<Box<dyn MessageStore>>,
    ) -> Self {
        let acceptor = Acceptor::bind(config, sessions(), stores).unwrap();
        let addr = acceptor.local_addr();
        let waker = acceptor.waker();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (commands, inbox) = unbounded();
        let thread = {
            let events = Arc::clone(&events);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || serve(acceptor, &inbox, events, &stop))
        };
        Self {
            addr,
            commands,
            waker,
            events,
            stop,
            thread: Some(thread),
        }
    }

    fn command(&self, command: Command) {
        self.commands.send(command).unwrap();
        self.waker.wake().unwrap();
    }

    fn stats(&self) -> AcceptorStats {
        let (tx, rx) = unbounded();
        self.command(Command::Stats(tx));
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits for an event matching `pick`.
    fn wait_for<T>(&self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(found) = self.events().iter().find_map(&mut pick) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event: {:?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stop(mut self) -> Acceptor {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake().unwrap();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = self.waker.wake();
            let _ = thread.join();
        }
    }
}

fn serve(
    mut acceptor: Acceptor,
    inbox: &Receiver<Command>,
    events: Arc<Mutex<Vec<Event>>>,
    stop: &AtomicBool,
) -> Acceptor {
    let mut app = App {
        names: HashMap::new(),
        events,
    };
    while !stop.load(Ordering::SeqCst) {
        // No timeout: only sockets, the session timers and the waker end the wait.
        acceptor.poll(None, &mut app).unwrap();
        while let Ok(command) = inbox.try_recv() {
            match command {
                Command::Send { target, count, pad } => {
                    let id = acceptor.session_id("AAITI", &target).unwrap();
                    let text = vec![b'x'; pad];
                    for n in 0..count {
                        acceptor
                            .send(id, b"8", |e| {
                                e.uint(11, n as u64);
                                e.str(58, &text);
                            })
                            .unwrap();
                    }
                }
                Command::Stats(reply) => reply.send(*acceptor.stats()).unwrap(),
            }
        }
    }
    acceptor
}

// ---------------------------------------------------------------------------------------
// The client.

#[derive(Debug)]
struct Out(Vec<(u32, String)>);

impl Out {
    fn get(&self, tag: u32) -> Option<&str> {
        self.0
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_str())
    }

    fn msg_type(&self) -> &str {
        self.get(35).unwrap()
    }

    fn seq(&self) -> u64 {
        self.get(34).unwrap().parse().unwrap()
    }
}

#[derive(Debug)]
enum Recv {
    Msg(Out),
    Closed,
    Timeout,
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    encoder: Encoder,
    parser: Parser,
    name: String,
    /// Our next MsgSeqNum.
    seq: u64,
}

fn now() -> UnixNanos {
    UnixNanos::from_system_time(SystemTime::now())
}

impl Client {
    fn connect(addr: SocketAddr, name: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
            encoder: Encoder::new(1024),
            parser: Parser::new(),
            name: name.into(),
            seq: 1,
        }
    }

    /// A message with our header (49=name, 56=AAITI, 34=seq, 52=now) and `fields`.
    fn build(&mut self, msg_type: &str, seq: u64, fields: &[(u32, &str)]) -> Vec<u8> {
        self.encoder.begin(msg_type.as_bytes());
        self.encoder.str(49, self.name.as_bytes());
        self.encoder.str(56, b"AAITI");
        self.encoder.uint(34, seq);
        self.encoder.timestamp(52, now());
        for (tag, value) in fields {
            self.encoder.str(*tag, value.as_bytes());
        }
        self.encoder.finish().to_vec()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends with the next sequence number.
    fn send(&mut self, msg_type: &str, fields: &[(u32, &str)]) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        let bytes = self.build(msg_type, seq, fields);
        self.write(&bytes);
        seq
    }

    /// Sends with an explicit sequence number (the counter is untouched).
    fn send_seq(&mut self, msg_type: &str, seq: u64, fields: &[(u32, &str)]) {
        let bytes = self.build(msg_type, seq, fields);
        self.write(&bytes);
    }

    fn recv(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            match frame(&self.buf, 1 << 20) {
                Framing::Complete(len) => {
                    let msg = self.parser.parse(&self.buf[..len]).unwrap();
                    let fields = msg
                        .fields()
                        .iter()
                        .map(|f| (f.tag, String::from_utf8_lossy(msg.value(f)).into_owned()))
                        .collect();
                    self.buf.drain(..len);
                    return Recv::Msg(Out(fields));
                }
                Framing::Incomplete => {}
                other => panic!("the acceptor sent a bad frame: {other:?}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0_u8; 65_536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Recv::Timeout;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Recv::Closed,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next message, which must be of `msg_type`.
    fn expect(&mut self, msg_type: &str) -> Out {
        match self.recv(Duration::from_secs(3)) {
            Recv::Msg(msg) if msg.msg_type() == msg_type => msg,
            other => panic!("expected a {msg_type}, got {other:?}"),
        }
    }

    /// The next message of `msg_type`, skipping heartbeats and test requests.
    fn expect_skipping_admin(&mut self, msg_type: &str) -> Out {
        loop {
            match self.recv(Duration::from_secs(3)) {
                Recv::Msg(msg) if msg.msg_type() == msg_type => return msg,
                Recv::Msg(msg) if matches!(msg.msg_type(), "0" | "1") => {}
                other => panic!("expected a {msg_type}, got {other:?}"),
            }
        }
    }

    fn expect_closed(&mut self) {
        match self.recv(Duration::from_secs(3)) {
            Recv::Closed => {}
            other => panic!("expected the connection closed, got {other:?}"),
        }
    }

    fn expect_silence(&mut self, wait: Duration) {
        match self.recv(wait) {
            Recv::Timeout => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    fn logon(&mut self, fields: &[(u32, &str)]) -> Out {
        let mut all = vec![(98, "0")];
        if !fields.iter().any(|(tag, _)| *tag == 108) {
            all.push((108, "30"));
        }
        all.extend_from_slice(fields);
        self.send("A", &all);
        self.expect("A")
    }
}

/// A message with correct BodyLength and CheckSum from a raw body (`|` for SOH).
fn raw(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01").into_bytes();
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn logon_heartbeat_test_request_logout() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    let answer = desk.logon(&[(108, "1")]);
    assert_eq!(answer.get(108), Some("1"));
    assert_eq!(answer.seq(), 1);
    server.wait_for("logon", |e| {
        matches!(e, Event::Logon(n) if n == "DESK1").then_some(())
    });
    // Silent for a while: a Heartbeat after 1 s, a TestRequest after 1.2 s of silence.
    let started = Instant::now();
    let heartbeat = desk.expect("0");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(heartbeat.get(112), None);
    let test_request = desk.expect("1");
    let id = test_request.get(112).unwrap().to_string();
    desk.send("0", &[(112, &id)]);
    // Ours is answered with our TestReqID.
    desk.send("1", &[(112, "ping-42")]);
    let answer = desk.expect_skipping_admin("0");
    assert_eq!(answer.get(112), Some("ping-42"));
    // Logout is answered, then the connection closes.
    desk.send("5", &[]);
    desk.expect_skipping_admin("5");
    desk.expect_closed();
    let reason = server.wait_for("logout", |e| match e {
        Event::Logout(n, reason) if n == "DESK1" => Some(*reason),
        _ => None,
    });
    assert_eq!(reason, DisconnectReason::LogoutReceived);
    let stats = server.stats();
    assert_eq!(
        (stats.logons, stats.logged_on, stats.open_connections),
        (1, 0, 0)
    );
}

#[test]
fn two_sessions_at_once_and_one_connection_per_session() {
    let server = Server::start();
    let mut one = Client::connect(server.addr, "DESK1");
    let mut two = Client::connect(server.addr, "DESK2");
    one.logon(&[]);
    two.logon(&[]);
    one.send("1", &[(112, "one")]);
    two.send("1", &[(112, "two")]);
    assert_eq!(two.expect("0").get(112), Some("two"));
    assert_eq!(one.expect("0").get(112), Some("one"));
    // A second connection for DESK1 is refused; the first goes on.
    let mut intruder = Client::connect(server.addr, "DESK1");
    intruder.send("A", &[(98, "0"), (108, "30")]);
    let refusal = intruder.expect("5");
    assert_eq!(refusal.get(58), Some("session already logged on"));
    intruder.expect_closed();
    one.send("1", &[(112, "still")]);
    assert_eq!(one.expect("0").get(112), Some("still"));
    let failure = server.wait_for("failure", |e| match e {
        Event::Failed(f) => Some(f.clone()),
        _ => None,
    });
    assert_eq!(failure.error, LogonError::AlreadyLoggedOn);
    assert_eq!(server.stats().logged_on, 2);
}

#[test]
fn unknown_comp_ids_and_non_logon_first_messages_are_closed_without_answer() {
    let server = Server::start();
    let mut stranger = Client::connect(server.addr, "NOBODY");
    stranger.send("A", &[(98, "0"), (108, "30")]);
    stranger.expect_closed();
    // Right SenderCompID, wrong TargetCompID.
    let mut lost = Client::connect(server.addr, "DESK1");
    lost.write(&raw(&format!(
        "35=A|49=DESK1|56=SOMEONE|34=1|52={}|98=0|108=30|",
        String::from_utf8_lossy(&timestamp_now())
    )));
    lost.expect_closed();
    // A heartbeat first.
    let mut eager = Client::connect(server.addr, "DESK1");
    eager.send("0", &[]);
    eager.expect_closed();
    let stats = server.stats();
    assert_eq!(stats.unknown_sessions, 2);
    assert_eq!(stats.not_logon_first, 1);
    assert_eq!(stats.logons, 0);
}

fn timestamp_now() -> Vec<u8> {
    let mut encoder = Encoder::new(64);
    encoder.begin(b"0");
    encoder.timestamp(52, now());
    let bytes = encoder.finish().to_vec();
    let mut parser = Parser::new();
    let msg = parser.parse(&bytes).unwrap();
    msg.get(52).unwrap().to_vec()
}

#[test]
fn bad_passwords_are_answered_late_without_blocking_others() {
    let server = Server::start();
    let mut other = Client::connect(server.addr, "DESK1");
    other.logon(&[]);
    let mut delays = Vec::new();
    for attempt in 1..=2_u32 {
        let mut bad = Client::connect(server.addr, "SECURE");
        let started = Instant::now();
        bad.send(
            "A",
            &[(98, "0"), (108, "30"), (553, "secure"), (554, "guess")],
        );
        // Meanwhile another session is served at once.
        let asked = Instant::now();
        other.send("1", &[(112, "busy")]);
        assert_eq!(other.expect("0").get(112), Some("busy"));
        assert!(
            asked.elapsed() < Duration::from_millis(200),
            "{:?}",
            asked.elapsed()
        );
        let logout = bad.expect("5");
        delays.push(started.elapsed());
        assert_eq!(logout.get(58), Some("invalid username or password"));
        bad.expect_closed();
        let failure = server.wait_for("failure", |e| match e {
            Event::Failed(f) if f.consecutive_failures == attempt => Some(f.clone()),
            _ => None,
        });
        assert_eq!(failure.error, LogonError::BadCredentials);
        assert_eq!(failure.sender_comp_id, "SECURE");
        assert_eq!(failure.username, "secure");
        assert_eq!(
            failure.delay,
            Duration::from_millis(250) * 2_u32.pow(attempt - 1)
        );
    }
    assert!(delays[0] >= Duration::from_millis(250), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(500), "{delays:?}");
    // The right password logs on (and clears the count).
    let mut good = Client::connect(server.addr, "SECURE");
    good.logon(&[(553, "secure"), (554, PASSWORD)]);
    let stats = server.stats();
    assert_eq!(stats.auth_failures, 2);
    assert_eq!(stats.logons, 2);
}

#[test]
fn garbage_then_a_valid_logon_split_across_writes() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x01\x01garbage 8=FI");
    std::thread::sleep(Duration::from_millis(20));
    let logon = desk.build("A", 1, &[(98, "0"), (108, "30")]);
    desk.seq = 2;
    // The garbage ended with "8=FI", the start of this Logon: the acceptor kept it.
    desk.write(&logon[4..20]);
    std::thread::sleep(Duration::from_millis(20));
    desk.write(&logon[20..]);
    desk.expect("A");
    assert!(server.stats().garbled >= 1);
}

#[test]
fn garbage_then_a_valid_logon() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.write(b"\x01\x01garbage\x01 10=000\x01");
    std::thread::sleep(Duration::from_millis(20));
    let logon = desk.build("A", 1, &[(98, "0"), (108, "30")]);
    desk.seq = 2;
    desk.write(&logon[..10]);
    std::thread::sleep(Duration::from_millis(20));
    desk.write(&logon[10..]);
    desk.expect("A");
    assert!(server.stats().garbled >= 1);
}

#[test]
fn a_bad_checksum_is_ignored_and_consumes_no_number() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    let mut bad = desk.build("1", 2, &[(112, "lost")]);
    let at = bad.len() - 2;
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    desk.write(&bad);
    desk.expect_silence(Duration::from_millis(100));
    // The same number again, valid: answered, no ResendRequest.
    desk.send_seq("1", 2, &[(112, "found")]);
    assert_eq!(desk.expect("0").get(112), Some("found"));
    desk.seq = 3;
    desk.send("1", &[(112, "next")]);
    assert_eq!(desk.expect("0").get(112), Some("next"));
    assert_eq!(server.stats().garbled, 1);
}

#[test]
fn an_oversized_message_ends_the_session() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    desk.write(b"8=FIX.4.4\x019=100000\x0135=D\x01");
    let logout = desk.expect("5");
    assert_eq!(logout.get(58), Some("message larger than max_message_size"));
    desk.expect_closed();
    let reason = server.wait_for("logout", |e| match e {
        Event::Logout(_, reason) => Some(*reason),
        _ => None,
    });
    assert_eq!(reason, DisconnectReason::MessageTooLarge);
    assert_eq!(server.stats().oversized, 1);
}

#[test]
fn another_begin_string_ends_the_session() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    desk.write(b"8=FIX.4.2\x019=5\x0135=0\x0110=000\x01");
    assert_eq!(desk.expect("5").get(58), Some("Incorrect BeginString"));
    desk.expect_closed();
    assert_eq!(server.stats().wrong_begin_string, 1);
}

#[test]
fn slow_clients_are_closed_after_the_logon_timeout() {
    let server = Server::start();
    let started = Instant::now();
    let mut silent = Client::connect(server.addr, "DESK1");
    // Half a Logon is not a Logon.
    let mut partial = Client::connect(server.addr, "DESK2");
    let logon = partial.build("A", 1, &[(98, "0"), (108, "30")]);
    partial.write(&logon[..30]);
    silent.expect_closed();
    partial.expect_closed();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(server.stats().logon_timeouts, 2);
}

#[test]
fn a_peer_that_never_reads_is_disconnected() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    // Never read again; the acceptor queues until the 64 KiB cap (after the kernel's
    // socket buffers are full).
    let deadline = Instant::now() + Duration::from_secs(8);
    let reason = loop {
        let found = server.events().iter().find_map(|e| match e {
            Event::Logout(_, reason) => Some(*reason),
            _ => None,
        });
        if let Some(reason) = found {
            break reason;
        }
        assert!(Instant::now() < deadline, "never disconnected");
        server.command(Command::Send {
            target: "DESK1".into(),
            count: 256,
            pad: 1_000,
        });
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(reason, DisconnectReason::WriteBufferFull);
    assert_eq!(server.stats().write_buffer_full, 1);
    drop(desk);
}

#[test]
fn a_flood_is_throttled_and_the_session_stays_up() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "FLOOD");
    desk.logon(&[]);
    for n in 0..20 {
        desk.send("D", &[(11, &format!("ord-{n}")), (55, "BTCUSDT")]);
    }
    let (mut acks, mut throttled) = (0, 0);
    for n in 0..20 {
        let msg = match desk.recv(Duration::from_secs(3)) {
            Recv::Msg(msg) => msg,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg.get(11).or(msg.get(379)),
            Some(format!("ord-{n}").as_str())
        );
        match msg.msg_type() {
            "8" => acks += 1,
            "j" => {
                throttled += 1;
                assert_eq!(msg.get(372), Some("D"));
                assert_eq!(msg.get(380), Some("0"));
                assert_eq!(msg.get(58), Some("throttled: 60 messages per minute"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((acks, throttled), (5, 15));
    desk.send("1", &[(112, "alive")]);
    assert_eq!(desk.expect("0").get(112), Some("alive"));
}

#[test]
fn a_gap_is_asked_for_and_filled() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    desk.send_seq("D", 5, &[(11, "five")]);
    let request = desk.expect("2");
    assert_eq!((request.get(7), request.get(16)), (Some("2"), Some("0")));
    // Fill 2..=4 with a gap fill, resend 5.
    let original = String::from_utf8(timestamp_now()).unwrap();
    desk.send_seq(
        "4",
        2,
        &[(43, "Y"), (122, &original), (123, "Y"), (36, "5")],
    );
    desk.send_seq("D", 5, &[(43, "Y"), (122, &original), (11, "five")]);
    let ack = desk.expect("8");
    assert_eq!(ack.get(11), Some("five"));
    let delivered: Vec<u64> = server
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Message(name, t, seq) if name == "DESK1" && t == "D" => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [5]);
}

#[test]
fn a_resend_request_is_answered_with_poss_dups_and_gap_fills() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    desk.send("D", &[(11, "a")]);
    desk.send("D", &[(11, "b")]);
    let first = desk.expect("8");
    let second = desk.expect("8");
    assert_eq!((first.seq(), second.seq()), (2, 3));
    desk.send("2", &[(7, "1"), (16, "0")]);
    let fill = desk.expect("4");
    assert_eq!(
        (fill.seq(), fill.get(123), fill.get(36), fill.get(43)),
        (1, Some("Y"), Some("2"), Some("Y"))
    );
    for original in [&first, &second] {
        let again = desk.expect("8");
        assert_eq!(again.seq(), original.seq());
        assert_eq!(again.get(43), Some("Y"));
        assert_eq!(again.get(122), original.get(52));
        assert_eq!(again.get(11), original.get(11));
    }
    desk.expect_silence(Duration::from_millis(100));
}

#[test]
fn an_application_reject_names_the_message() {
    let server = Server::start();
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.logon(&[]);
    let seq = desk.send("D", &[(11, "reject-me")]);
    let reject = desk.expect("3");
    assert_eq!(reject.get(45), Some(seq.to_string().as_str()));
    assert_eq!((reject.get(371), reject.get(373)), (Some("55"), Some("1")));
    assert_eq!(reject.get(372), Some("D"));
}

/// A store shared across acceptors, as a journaled store would be across restarts.
#[derive(Clone, Default)]
struct SharedStore(Arc<Mutex<MemoryStore>>);

impl MessageStore for SharedStore {
    fn next_sender_seq(&self) -> u64 {
        self.0.lock().unwrap().next_sender_seq()
    }
    fn next_target_seq(&self) -> u64 {
        self.0.lock().unwrap().next_target_seq()
    }
    fn set_next_target_seq(&mut self, seq: u64) -> io::Result<()> {
        self.0.lock().unwrap().set_next_target_seq(seq)
    }
    fn store_sent(&mut self, seq: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.lock().unwrap().store_sent(seq, bytes)
    }
    fn sent(&mut self, begin: u64, end: u64, each: &mut dyn FnMut(u64, &[u8])) -> io::Result<()> {
        self.0.lock().unwrap().sent(begin, end, each)
    }
    fn reset(&mut self) -> io::Result<()> {
        self.0.lock().unwrap().reset()
    }
}

#[test]
fn sequence_numbers_continue_across_reconnects_and_restarts() {
    let stores: Arc<Mutex<HashMap<String, SharedStore>>> = Arc::default();
    let factory = |stores: Arc<Mutex<HashMap<String, SharedStore>>>| {
        move |config: &SessionConfig| -> io::Result<Box<dyn MessageStore>> {
            let store = stores
                .lock()
                .unwrap()
                .entry(config.target_comp_id.clone())
                .or_default()
                .clone();
            Ok(Box::new(store))
        }
    };
    let server = Server::with(acceptor_config(), factory(Arc::clone(&stores)));
    let mut desk = Client::connect(server.addr, "DESK1");
    assert_eq!(desk.logon(&[]).seq(), 1);
    desk.send("D", &[(11, "a")]);
    assert_eq!(desk.expect("8").seq(), 2);
    desk.send("5", &[]);
    assert_eq!(desk.expect("5").seq(), 3);
    desk.expect_closed();
    // Reconnect to the same acceptor: both sides continue.
    let mut again = Client::connect(server.addr, "DESK1");
    again.seq = desk.seq;
    assert_eq!(again.logon(&[]).seq(), 4);
    // A number too low at logon is refused with the standard text.
    let mut stale = Client::connect(server.addr, "DESK2");
    stale.logon(&[]);
    stale.send("5", &[]);
    stale.expect("5");
    let mut stale = Client::connect(server.addr, "DESK2");
    stale.send("A", &[(98, "0"), (108, "30")]);
    assert_eq!(
        stale.expect("5").get(58),
        Some("MsgSeqNum too low, expecting 3 but received 1")
    );
    stale.expect_closed();
    again.send("5", &[]);
    again.expect("5");
    again.expect_closed();
    let acceptor = server.stop();
    let id = acceptor.session_id("AAITI", "DESK1").unwrap();
    assert_eq!(acceptor.session(id).unwrap().next_sender_seq(), 6);
    drop(acceptor);
    // A new acceptor on the same stores (a restart).
    let server = Server::with(acceptor_config(), factory(Arc::clone(&stores)));
    let mut desk = Client::connect(server.addr, "DESK1");
    desk.seq = again.seq;
    assert_eq!(desk.logon(&[]).seq(), 6);
    desk.send("1", &[(112, "x")]);
    assert_eq!(desk.expect("0").seq(), 7);
    // And ResetSeqNumFlag starts both over.
    desk.send("5", &[]);
    desk.expect("5");
    desk.expect_closed();
    let mut fresh = Client::connect(server.addr, "DESK1");
    let answer = fresh.logon(&[(141, "Y")]);
    assert_eq!((answer.seq(), answer.get(141)), (1, Some("Y")));
}

#[test]
fn connections_beyond_the_maximum_are_closed() {
    let config = AcceptorConfig {
        max_connections: 2,
        ..acceptor_config()
    };
    let server = Server::with(config, |_| Ok(Box::new(MemoryStore::default())));
    let mut one = Client::connect(server.addr, "DESK1");
    one.logon(&[]);
    let mut two = Client::connect(server.addr, "DESK2");
    two.logon(&[]);
    let mut three = Client::connect(server.addr, "FLOOD");
    three.expect_closed();
    let stats = server.stats();
    assert_eq!(stats.refused_max_connections, 1);
    assert_eq!(stats.open_connections, 2);
}

#[test]
fn the_waker_ends_a_blocking_poll() {
    let mut acceptor = Acceptor::bind(acceptor_config(), sessions(), |_| {
        Ok(Box::new(MemoryStore::default()) as Box<dyn MessageStore>)
    })
    .unwrap();
    let mut app = App {
        names: HashMap::new(),
        events: Arc::default(),
    };
    let waker = acceptor.waker();
    let started = Instant::now();
    let waking = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        waker.wake().unwrap();
    });
    // No connection, no timer, no timeout: only the waker can end this.
    acceptor.poll(None, &mut app).unwrap();
    let elapsed = started.elapsed();
    waking.join().unwrap();
    assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
    assert_eq!(acceptor.stats().wakeups, 1);
    // A timeout bounds the wait too.
    let started = Instant::now();
    acceptor
        .poll(Some(Duration::from_millis(30)), &mut app)
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(25));
}

#[test]
fn configuration_errors() {
    let config: AcceptorConfig = toml::from_str(
        r#"
        listen = "127.0.0.1:0"
        max_message_size = 8192
        logon_timeout_ms = 500
        "#,
    )
    .unwrap();
    assert_eq!(config.max_message_size, 8_192);
    assert_eq!(config.sending_time_tolerance_ms, 120_000);
    config.validate().unwrap();
    assert!(toml::from_str::<AcceptorConfig>("max_mesage_size = 1").is_err());
    let small_cap = AcceptorConfig {
        write_buffer_cap: 100,
        ..acceptor_config()
    };
    assert!(small_cap.validate().is_err());
    let twice = vec![session("DESK1"), session("DESK1")];
    let error = Acceptor::bind(acceptor_config(), twice, |_| {
        Ok(Box::new(MemoryStore::default()) as Box<dyn MessageStore>)
    })
    .unwrap_err();
    assert!(error.to_string().contains("configured twice"), "{error}");
    let bad_hash = vec![SessionConfig {
        auth: Auth::Password {
            username: "u".into(),
            hash: "plain".into(),
        },
        ..session("DESK1")
    }];
    let stores = |_: &SessionConfig| -> io::Result<Box<dyn MessageStore>> {
        Ok(Box::new(MemoryStore::default()))
    };
    assert!(Acceptor::bind(acceptor_config(), bad_hash, stores).is_err());
}
