//! The initiator side of one FIX 4.4 session on one nonblocking TCP connection.
//!
//! What it does, and no more (a load generator keeps no message store):
//!
//! * Logon (A) with EncryptMethod 98=0, HeartBtInt 108, ResetSeqNumFlag 141=Y when
//!   configured, Username 553 / Password 554 when given; the session is up when the
//!   acceptor's Logon arrives. A Logout instead is a failed logon, with its Text (58).
//! * MsgSeqNum (34) both ways: ours from 1 (or on from the Logon), theirs checked. A gap
//!   sends one ResendRequest (2) for it and the message is still processed (its
//!   acknowledgement still counts); a lower number without PossDupFlag (43=Y) ends the
//!   session with a Logout, as FIX requires; PossDup repeats are matched again harmlessly
//!   (a request is completed once). SequenceReset (4) moves the expected number forward.
//! * ResendRequest (2) from the acceptor: one SequenceReset-GapFill (4, 123=Y, 43=Y,
//!   MsgSeqNum = BeginSeqNo, NewSeqNo 36 = our next number), because orders are never
//!   resent.
//! * TestRequest (1) is answered by a Heartbeat (0) with its TestReqID (112); a Heartbeat
//!   goes out after HeartBtInt without sending; after HeartBtInt + 20% without receiving
//!   a TestRequest goes out, and without any answer one HeartBtInt later the session fails.
//! * Logout at the end: sent, then the acceptor's Logout awaited (2 s at most). A Logout
//!   the generator did not ask for is answered and reported as an error.
//!
//! Reads take the receive time once per `read` call, right after it returns, so every
//! message in that read is timed from the moment the bytes were in hand.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aaiti_gateway::fix::codec::{Encoder, Framing, Message, Parser, frame};
use aaiti_model::UnixNanos;

use super::LoadError;
use super::config::{LoadConfig, OrderParams};
use super::orders::Flow;
use super::report::Recorder;

/// Receive buffer size; also the largest message accepted.
const RX_CAPACITY: usize = 64 * 1024;

/// Bytes waiting for the socket before the acceptor is declared not to be reading.
const TX_BACKLOG_MAX: usize = 64 * 1024 * 1024;

/// How long the acceptor has to answer our Logout.
const LOGOUT_WAIT: Duration = Duration::from_secs(2);

/// Reads per [`Session::poll`] call, so one busy connection cannot starve the others.
const READS_PER_POLL: usize = 16;

/// The wall clock, for SendingTime (52) and TransactTime (60).
pub(super) fn wall_clock() -> UnixNanos {
    UnixNanos::from_system_time(SystemTime::now())
}

/// The outbound half: standard header, our MsgSeqNum, the bytes not yet written.
#[derive(Debug)]
pub(super) struct Fix {
    sender: Vec<u8>,
    target: Vec<u8>,
    next_out: u64,
    enc: Encoder,
    tx: Vec<u8>,
    last_sent: Instant,
}

impl Fix {
    pub(super) fn new(sender: &[u8], target: &[u8], now: Instant) -> Self {
        Self {
            sender: sender.to_vec(),
            target: target.to_vec(),
            next_out: 1,
            enc: Encoder::new(1024),
            tx: Vec::with_capacity(64 * 1024),
            last_sent: now,
        }
    }

    /// The MsgSeqNum the next message gets.
    pub(super) fn next_out(&self) -> u64 {
        self.next_out
    }

    /// Starts a message with the next MsgSeqNum; the caller adds the body and calls
    /// [`commit`](Self::commit).
    pub(super) fn begin(&mut self, msg_type: &[u8], wall: UnixNanos) -> &mut Encoder {
        let seq = self.next_out;
        self.begin_at(msg_type, seq, wall)
    }

    fn begin_at(&mut self, msg_type: &[u8], seq: u64, wall: UnixNanos) -> &mut Encoder {
        self.enc.begin(msg_type);
        self.enc.str(49, &self.sender);
        self.enc.str(56, &self.target);
        self.enc.uint(34, seq);
        self.enc.timestamp(52, wall);
        &mut self.enc
    }

    /// Finishes the message begun and queues it; it used up one sequence number.
    pub(super) fn commit(&mut self, now: Instant) {
        self.tx.extend_from_slice(self.enc.finish());
        self.next_out += 1;
        self.last_sent = now;
    }

    /// Finishes a message that carries an old sequence number (a gap fill).
    fn commit_resent(&mut self, now: Instant) {
        self.tx.extend_from_slice(self.enc.finish());
        self.last_sent = now;
    }

    #[cfg(test)]
    pub(super) fn take_tx(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tx)
    }
}

/// Where the session is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Logon sent, the acceptor's not received yet.
    LogonSent,
    /// Logged on.
    Active,
    /// Our Logout sent; closes when the acceptor's arrives or at the deadline.
    LogoutSent { deadline: Instant },
    /// Done (normally or with an error).
    Closed,
}

/// Everything of a session except the socket and the receive buffer (so a parsed message,
/// which borrows the buffer, can be handled with `&mut State`).
#[derive(Debug)]
struct State {
    phase: Phase,
    fix: Fix,
    flow: Flow,
    next_in: u64,
    heartbeat: Duration,
    last_recv: Instant,
    /// When our unanswered TestRequest went out.
    test_request_at: Option<Instant>,
    test_requests: u64,
    /// The highest sequence number already asked for in a ResendRequest.
    resend_asked_to: u64,
    error: Option<String>,
}

/// One session.
#[derive(Debug)]
pub(super) struct Session {
    /// 1-based.
    pub(super) number: usize,
    pub(super) sender: String,
    stream: TcpStream,
    rx: Vec<u8>,
    rx_start: usize,
    rx_end: usize,
    tx_pos: usize,
    state: State,
}

impl Session {
    /// Connects session `number` and sends its Logon.
    pub(super) fn connect(
        config: &LoadConfig,
        params: &Arc<OrderParams>,
        number: usize,
        run_tag: u64,
    ) -> Result<Self, LoadError> {
        let sender = config.sender_comp_id(number);
        let connect_error = |source| LoadError::Connect {
            session: number,
            sender: sender.clone(),
            addr: config.connect,
            source,
        };
        let stream = TcpStream::connect_timeout(&config.connect, config.connect_timeout)
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        stream.set_nonblocking(true).map_err(connect_error)?;
        let now = Instant::now();
        let heartbeat = Duration::from_secs(u64::from(config.heartbeat_secs));
        let mut state = State {
            phase: Phase::LogonSent,
            fix: Fix::new(sender.as_bytes(), config.target.as_bytes(), now),
            flow: Flow::new(Arc::clone(params), run_tag, number, config.seed),
            next_in: 1,
            heartbeat,
            last_recv: now,
            test_request_at: None,
            test_requests: 0,
            resend_asked_to: 0,
            error: None,
        };
        let enc = state.fix.begin(b"A", wall_clock());
        enc.uint(98, 0);
        enc.uint(108, u64::from(config.heartbeat_secs));
        if config.reset_seq_num {
            enc.bool(141, true);
        }
        if let Some(username) = &config.username {
            enc.str(553, username.as_bytes());
        }
        if let Some(password) = &config.password {
            enc.str(554, password.as_bytes());
        }
        state.fix.commit(now);
        let mut session = Self {
            number,
            sender,
            stream,
            rx: vec![0; RX_CAPACITY],
            rx_start: 0,
            rx_end: 0,
            tx_pos: 0,
            state,
        };
        session.flush();
        Ok(session)
    }

    /// Logged on and not logging out.
    pub(super) fn is_active(&self) -> bool {
        self.state.phase == Phase::Active
    }

    /// Finished.
    pub(super) fn is_closed(&self) -> bool {
        self.state.phase == Phase::Closed
    }

    /// Why the session failed, if it did.
    pub(super) fn error(&self) -> Option<&str> {
        self.state.error.as_deref()
    }

    /// Requests waiting for their acknowledgement.
    pub(super) fn in_flight(&self) -> usize {
        self.state.flow.in_flight()
    }

    /// Measured requests waiting for their acknowledgement.
    pub(super) fn measured_in_flight(&self) -> u64 {
        self.state.flow.measured_in_flight()
    }

    /// Sends one order request (if logged on).
    pub(super) fn send_order(
        &mut self,
        intended: Instant,
        now: Instant,
        measured: bool,
        rec: &mut Recorder,
    ) {
        if self.state.phase == Phase::Active {
            let State { fix, flow, .. } = &mut self.state;
            flow.send(fix, intended, now, measured, rec);
        }
    }

    /// Reads what has arrived and handles it; `true` if anything was read.
    pub(super) fn poll(&mut self, parser: &mut Parser, rec: &mut Recorder) -> bool {
        let mut got = false;
        for _ in 0..READS_PER_POLL {
            if self.state.phase == Phase::Closed {
                break;
            }
            if self.rx_end == self.rx.len() {
                // Move the partial message to the front; it always fits, as `frame`
                // rejects anything longer than the buffer.
                self.rx.copy_within(self.rx_start..self.rx_end, 0);
                self.rx_end -= self.rx_start;
                self.rx_start = 0;
            }
            match self.stream.read(&mut self.rx[self.rx_end..]) {
                Ok(0) => {
                    let reason = match self.state.phase {
                        Phase::LogonSent => Some("connection closed by the acceptor during logon"),
                        Phase::Active => Some("connection closed by the acceptor"),
                        Phase::LogoutSent { .. } | Phase::Closed => None,
                    };
                    match reason {
                        Some(reason) => self.state.fail(reason.to_owned()),
                        None => self.state.phase = Phase::Closed,
                    }
                }
                Ok(n) => {
                    let at = Instant::now();
                    got = true;
                    self.rx_end += n;
                    self.process(parser, at, rec);
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => self.state.fail(format!("read: {error}")),
            }
        }
        if self.state.phase == Phase::Closed {
            self.close();
        }
        got
    }

    /// Handles every whole message in the receive buffer.
    fn process(&mut self, parser: &mut Parser, at: Instant, rec: &mut Recorder) {
        while self.rx_start < self.rx_end && self.state.phase != Phase::Closed {
            let buf = &self.rx[self.rx_start..self.rx_end];
            match frame(buf, RX_CAPACITY) {
                Framing::Complete(len) => {
                    let bytes = &self.rx[self.rx_start..self.rx_start + len];
                    self.rx_start += len;
                    match parser.parse(bytes) {
                        Ok(msg) => self.state.on_message(&msg, at, rec),
                        // Framed but unreadable: FIX ignores garbled messages.
                        Err(_) => rec.session.garbled += 1,
                    }
                }
                Framing::Incomplete => break,
                Framing::Garbled { skip, .. } => {
                    rec.session.garbled += 1;
                    self.rx_start += skip;
                }
                Framing::WrongBeginString => {
                    self.state
                        .fail("the acceptor sent another BeginString".to_owned());
                }
            }
        }
        if self.rx_start == self.rx_end {
            self.rx_start = 0;
            self.rx_end = 0;
        }
    }

    /// Timers: heartbeats, test requests, the logout deadline.
    pub(super) fn tick(&mut self, now: Instant, rec: &mut Recorder) {
        self.state.tick(now, rec);
        if self.state.phase == Phase::Closed {
            self.close();
        }
    }

    /// Writes what is queued, as far as the socket takes it.
    pub(super) fn flush(&mut self) {
        loop {
            let tx = &self.state.fix.tx;
            if self.tx_pos >= tx.len() {
                break;
            }
            match self.stream.write(&tx[self.tx_pos..]) {
                Ok(0) => {
                    self.fail_io("write: connection closed".to_owned());
                    return;
                }
                Ok(n) => self.tx_pos += n,
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    self.fail_io(format!("write: {error}"));
                    return;
                }
            }
        }
        let queued = self.state.fix.tx.len();
        if self.tx_pos == queued {
            self.state.fix.tx.clear();
            self.tx_pos = 0;
        } else if queued - self.tx_pos > TX_BACKLOG_MAX {
            let waiting = queued - self.tx_pos;
            self.fail_io(format!(
                "the acceptor is not reading: {waiting} bytes waiting to be sent"
            ));
        }
    }

    /// Fails on a write problem: nothing more is written.
    fn fail_io(&mut self, reason: String) {
        self.state.fail(reason);
        self.tx_pos = 0;
        self.state.fix.tx.clear();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Starts the Logout (or just closes a session not logged on).
    pub(super) fn logout(&mut self, now: Instant) {
        match self.state.phase {
            Phase::Active => {
                let enc = self.state.fix.begin(b"5", wall_clock());
                enc.str(58, b"load test done");
                self.state.fix.commit(now);
                self.state.phase = Phase::LogoutSent {
                    deadline: now + LOGOUT_WAIT,
                };
                self.flush();
            }
            Phase::LogonSent => {
                self.state.phase = Phase::Closed;
                self.close();
            }
            Phase::LogoutSent { .. } | Phase::Closed => {}
        }
    }

    /// Closes the connection, after one last attempt to write what is queued (a Logout).
    fn close(&mut self) {
        self.state.phase = Phase::Closed;
        let tx = &self.state.fix.tx;
        if self.tx_pos < tx.len() {
            // Best effort: the socket is nonblocking and the session is over.
            let _ = self.stream.write(&tx[self.tx_pos..]);
            self.tx_pos = tx.len();
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl State {
    fn fail(&mut self, reason: String) {
        if self.error.is_none() {
            self.error = Some(reason);
        }
        self.phase = Phase::Closed;
    }

    /// Sends a Logout with `reason` and fails (protocol errors; FIX wants the Logout).
    fn fail_with_logout(&mut self, reason: String, now: Instant) {
        let enc = self.fix.begin(b"5", wall_clock());
        enc.str(58, reason.as_bytes());
        self.fix.commit(now);
        self.fail(reason);
    }

    fn on_message(&mut self, msg: &Message<'_>, at: Instant, rec: &mut Recorder) {
        self.last_recv = at;
        // Any message shows the acceptor is alive.
        self.test_request_at = None;
        if msg.get(49) != Some(self.fix.target.as_slice())
            || msg.get(56) != Some(self.fix.sender.as_slice())
        {
            let reason = format!(
                "message with SenderCompID {:?} and TargetCompID {:?}, expected {:?} and {:?}",
                lossy(msg.get(49)),
                lossy(msg.get(56)),
                String::from_utf8_lossy(&self.fix.target),
                String::from_utf8_lossy(&self.fix.sender),
            );
            self.fail_with_logout(reason, at);
            return;
        }
        let msg_type = msg.msg_type();
        let seq = match msg.seq_num() {
            Ok(seq) => seq,
            Err(error) => {
                self.fail_with_logout(format!("bad MsgSeqNum: {error}"), at);
                return;
            }
        };
        if self.phase == Phase::LogonSent && msg_type != b"A" && msg_type != b"5" {
            let reason = format!(
                "the acceptor answered the Logon with MsgType {:?}",
                String::from_utf8_lossy(msg_type)
            );
            self.fail_with_logout(reason, at);
            return;
        }
        // SequenceReset-Reset ignores MsgSeqNum.
        if msg_type == b"4" && msg.get(123) != Some(b"Y") {
            if let Ok(Some(new_seq)) = msg.get_u64(36)
                && new_seq > self.next_in
            {
                self.next_in = new_seq;
            }
            return;
        }
        if seq < self.next_in && msg_type != b"5" {
            if msg.get(43) == Some(b"Y") {
                // A repeat (answer to our ResendRequest): acknowledgements we missed
                // complete their request; the rest (gap fills, admin messages) was seen
                // already or changes nothing.
                if matches!(msg_type, b"8" | b"9" | b"3" | b"j") {
                    self.on_application(msg, at, rec);
                }
            } else {
                let reason = format!(
                    "MsgSeqNum too low, expecting {} but received {seq}",
                    self.next_in
                );
                self.fail_with_logout(reason, at);
            }
            return;
        }
        if seq > self.next_in && msg_type != b"5" {
            rec.session.sequence_gaps += 1;
            if seq - 1 > self.resend_asked_to {
                let enc = self.fix.begin(b"2", wall_clock());
                enc.uint(7, self.next_in);
                enc.uint(16, 0);
                self.fix.commit(at);
                self.resend_asked_to = seq - 1;
            }
        }
        self.next_in = self.next_in.max(seq + 1);
        match msg_type {
            b"0" => {}
            b"1" => {
                let enc = self.fix.begin(b"0", wall_clock());
                if let Some(id) = msg.get(112) {
                    enc.str(112, id);
                }
                self.fix.commit(at);
                rec.session.test_requests_answered += 1;
            }
            b"2" => self.on_resend_request(msg, at, rec),
            b"4" => {
                if let Ok(Some(new_seq)) = msg.get_u64(36)
                    && new_seq > self.next_in
                {
                    self.next_in = new_seq;
                }
            }
            b"5" => self.on_logout(msg, at),
            b"A" => {
                if self.phase == Phase::LogonSent {
                    self.phase = Phase::Active;
                }
            }
            _ => self.on_application(msg, at, rec),
        }
    }

    /// Answers a ResendRequest with one gap fill up to our next number.
    fn on_resend_request(&mut self, msg: &Message<'_>, at: Instant, rec: &mut Recorder) {
        let begin = match msg.get_u64(7) {
            Ok(Some(begin)) => begin.max(1),
            _ => {
                self.fail_with_logout("ResendRequest without a valid BeginSeqNo".to_owned(), at);
                return;
            }
        };
        let next = self.fix.next_out();
        if begin >= next {
            // Nothing sent in that range yet.
            return;
        }
        let wall = wall_clock();
        let enc = self.fix.begin_at(b"4", begin, wall);
        enc.bool(43, true);
        enc.timestamp(122, wall);
        enc.bool(123, true);
        enc.uint(36, next);
        self.fix.commit_resent(at);
        rec.session.resend_requests_answered += 1;
    }

    fn on_logout(&mut self, msg: &Message<'_>, at: Instant) {
        let text = lossy(msg.get(58));
        match self.phase {
            Phase::LogonSent => self.fail(format!("logon rejected: {text}")),
            Phase::Active => {
                // Confirm, as FIX asks, then report.
                let enc = self.fix.begin(b"5", wall_clock());
                enc.str(58, b"logout acknowledged");
                self.fix.commit(at);
                self.fail(format!("logged out by the acceptor: {text}"));
            }
            Phase::LogoutSent { .. } => self.phase = Phase::Closed,
            Phase::Closed => {}
        }
    }

    /// Execution reports, cancel rejects, rejects.
    fn on_application(&mut self, msg: &Message<'_>, at: Instant, rec: &mut Recorder) {
        match msg.msg_type() {
            b"8" => self.flow.on_execution_report(msg, at, rec),
            b"9" => self.flow.on_cancel_reject(msg, at, rec),
            b"3" => {
                rec.session.session_rejects += 1;
                let ref_seq = msg.get_u64(45).ok().flatten();
                let text = msg.get(58).unwrap_or(b"(no text)");
                self.flow
                    .on_reject(ref_seq, None, "session reject: ", text, at, rec);
            }
            b"j" => {
                let ref_seq = msg.get_u64(45).ok().flatten();
                let text = msg.get(58).unwrap_or(b"(no text)");
                if !self
                    .flow
                    .on_reject(ref_seq, msg.get(379), "business reject: ", text, at, rec)
                {
                    rec.unmatched();
                }
            }
            _ => rec.unmatched(),
        }
    }

    fn tick(&mut self, now: Instant, rec: &mut Recorder) {
        match self.phase {
            Phase::Active => {
                if now.saturating_duration_since(self.fix.last_sent) >= self.heartbeat {
                    self.fix.begin(b"0", wall_clock());
                    self.fix.commit(now);
                    rec.session.heartbeats_sent += 1;
                }
                match self.test_request_at {
                    None if now.saturating_duration_since(self.last_recv)
                        >= self.heartbeat + self.heartbeat / 5 =>
                    {
                        self.test_requests += 1;
                        let id = format!("TEST{}", self.test_requests);
                        let enc = self.fix.begin(b"1", wall_clock());
                        enc.str(112, id.as_bytes());
                        self.fix.commit(now);
                        self.test_request_at = Some(now);
                        rec.session.test_requests_sent += 1;
                    }
                    Some(sent) if now.saturating_duration_since(sent) >= self.heartbeat => {
                        let reason = format!(
                            "no answer to a TestRequest within HeartBtInt ({} s)",
                            self.heartbeat.as_secs()
                        );
                        self.fail_with_logout(reason, now);
                    }
                    _ => {}
                }
            }
            Phase::LogoutSent { deadline } if now >= deadline => {
                // The acceptor did not confirm; the session is over anyway.
                self.phase = Phase::Closed;
            }
            Phase::LogonSent | Phase::LogoutSent { .. } | Phase::Closed => {}
        }
    }
}

fn lossy(value: Option<&[u8]>) -> String {
    value.map_or_else(
        || "(none)".to_owned(),
        |bytes| String::from_utf8_lossy(bytes).into_owned(),
    )
}
