//! The FIX 4.4 session layer: logon, heartbeats, sequence numbers, resend, reject, logout.
//!
//! [`Session`] is the acceptor side of one FIX session (one CompID pair) as FIX 4.4
//! Volume 2 specifies it, as a pure state machine: no sockets and no clocks. The caller
//! (the [acceptor](super::acceptor)) hands it parsed messages and the time, and it appends
//! the bytes to send to a caller-owned buffer and answers with an [`Action`]: nothing more
//! to do, the logon succeeded, deliver this application message, or disconnect.
//!
//! # Rules implemented
//!
//! * **Logon (A).** The first message of a connection must be a Logon; anything else is
//!   refused without an answer. The Logon must carry our CompIDs, valid credentials
//!   ([`Auth`]), a SendingTime within tolerance, EncryptMethod (98) = 0 and a HeartBtInt
//!   (108) within the session's bounds. ResetSeqNumFlag (141=Y, which needs MsgSeqNum 1)
//!   or `reset_on_logon` resets both sequence numbers to 1, and our Logon then carries
//!   141=Y. A refused Logon is answered (except a non-Logon first message) by a Logout with
//!   a text that is *not* stored and does not consume a sequence number: an unauthenticated
//!   peer cannot move the session's numbers. A Logon with MsgSeqNum too low is refused; one
//!   too high is accepted and followed by a ResendRequest.
//! * **Liveness.** A Heartbeat (0) goes out when nothing was sent for HeartBtInt; a
//!   TestRequest (1) when nothing was received for HeartBtInt + 20 %; the session ends when
//!   nothing is received for another HeartBtInt + 20 % after it. A TestRequest is answered
//!   by a Heartbeat carrying its TestReqID (112). HeartBtInt 0 disables both.
//! * **Sequence numbers.** A MsgSeqNum above the expected one triggers a ResendRequest (2)
//!   for `7=<expected>`, `16=0` (everything after) and the message is **dropped**: the
//!   peer resends it within that range, so nothing is queued (bounded memory) and messages
//!   are always processed in order. While a request is outstanding, further gaps do not
//!   produce more requests (unless 2 × HeartBtInt, or 10 s with heartbeats off, passed
//!   without the gap closing). Exceptions, per the specification: a ResendRequest with a
//!   number too high is served first, then our own ResendRequest is sent; a Logout too high
//!   is answered and the session ends; a SequenceReset in Reset mode ignores MsgSeqNum.
//!   A number too low without PossDupFlag (43=Y) ends the session with the Logout text
//!   `MsgSeqNum too low, expecting N but received M`; with PossDupFlag it is a duplicate
//!   and is ignored. A PossDup message (other than a SequenceReset) needs OrigSendingTime
//!   (122): missing is a Reject with reason 1, later than SendingTime a Reject with reason
//!   10, and the message is not processed (its number is consumed).
//! * **ResendRequest from the peer.** Stored application messages in the range are sent
//!   again with PossDupFlag=Y, OrigSendingTime = their original SendingTime and a new
//!   SendingTime; administrative messages and numbers the store no longer holds are
//!   replaced by SequenceReset-GapFill (35=4, 123=Y, 36=next number). EndSeqNo 0 (or past
//!   the last sent number) means up to the last sent message.
//! * **SequenceReset (4).** GapFill mode (123=Y) is sequenced like any message and moves
//!   the expected number to NewSeqNo (36); a NewSeqNo not above its MsgSeqNum is rejected
//!   with reason 5 on tag 36. Reset mode ignores MsgSeqNum and sets the expected number to
//!   NewSeqNo when that is higher; as the specification says, a lower NewSeqNo is rejected
//!   (reason 5, tag 36) and an equal one changes nothing.
//! * **Reject (3).** Invalid messages are answered by a Reject with RefSeqNum (45),
//!   RefTagID (371), RefMsgType (372), SessionRejectReason (373) and Text (58); a rejected
//!   message still consumes its number. Garbled messages (framing failures) never reach the
//!   session: they are ignored and consume nothing. The application may reject a delivered
//!   message ([`Session::reject`]).
//! * **CompIDs.** A message whose SenderCompID (49) is not the configured counterparty or
//!   whose TargetCompID (56) is not us gets a Reject with reason 9, then a Logout, and the
//!   session ends.
//! * **SendingTime (52).** Further than the tolerance (default 120 s) from our clock: a
//!   Reject with reason 10, a Logout, and the session ends. Missing: Reject reason 1.
//! * **Logout (5).** A peer's Logout is answered by a Logout and the session ends. Our
//!   Logout ([`Session::logout`]) waits for the peer's answer up to the logout timeout.
//! * **Throttle.** Inbound application messages take a token from the session's
//!   [`Throttle`]; one over the limit is answered by a BusinessMessageReject (35=j) with
//!   RefSeqNum (45), RefMsgType (372), BusinessRejectRefID (379: the ClOrdID, MDReqID or
//!   other request id when present), BusinessRejectReason (380) 0 = Other and Text
//!   `throttled: N messages per minute`, and is not delivered; the session stays up.
//!   Administrative messages are never throttled.
//!
//! # Outbound messages
//!
//! Every message we send has the standard header `49=<ours> 56=<theirs> 34=<seq>
//! 52=<now, milliseconds>` right after MsgType, and is stored with its number in the
//! [`MessageStore`] (which also persists both sequence numbers). Application messages are
//! written with [`Session::send`], or with [`Session::start_message`] and
//! [`Session::finish_message`] around a caller's own [`Encoder`].

use std::fmt::{self, Write as _};
use std::io;

use aaiti_model::UnixNanos;
use serde::{Deserialize, Serialize};

use crate::fix::Reject;
use crate::fix::acceptor::AcceptorConfig;
use crate::fix::auth::{Auth, AuthError};
use crate::fix::codec::{Encoder, FieldError, Message, ParseError, Parser};
use crate::fix::store::MessageStore;
use crate::fix::throttle::Throttle;

/// Whether `msg_type` is a session-level (administrative) message: Heartbeat (0),
/// TestRequest (1), ResendRequest (2), Reject (3), SequenceReset (4), Logout (5), Logon (A).
pub fn is_admin(msg_type: &[u8]) -> bool {
    matches!(msg_type, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
}

/// What a session may do; the gateway passes it to the application at logon and does not
/// enforce it itself.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Orders, order status, market data and positions, for its accounts.
    Trader,
    /// Market data, order status and positions only; sends no orders.
    Viewer,
    /// Everything a trader may do, and the admin message (U1).
    Admin,
}

/// One `[[sessions]]` entry: a counterparty allowed to log on. Unknown keys are errors.
///
/// ```toml
/// [[sessions]]
/// sender_comp_id = "AAITI"          # ours: their TargetCompID (56)
/// target_comp_id = "DESK1"          # theirs: their SenderCompID (49)
/// auth = { type = "password", username = "desk1", hash = "$argon2id$v=19$..." }
/// role = "trader"                   # trader | viewer | admin
/// accounts = ["desk1-main"]         # accounts it may trade
/// default_account = "desk1-main"    # when an order carries no Account (1)
/// default_venue = "paper"
/// heartbeat_min_s = 1               # accepted HeartBtInt (108) range
/// heartbeat_max_s = 120
/// reset_on_logon = false            # reset both sequence numbers at every logon
/// throttle_per_minute = 1000        # inbound application messages (0: unlimited)
/// throttle_burst = 100
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Our CompID: SenderCompID (49) of what we send, TargetCompID (56) of what we accept.
    pub sender_comp_id: String,
    /// The counterparty's CompID: the SenderCompID (49) it must send.
    pub target_comp_id: String,
    /// How its Logon is authenticated.
    pub auth: Auth,
    /// What it may do (for the application).
    pub role: Role,
    /// Accounts it may trade, by name (for the application).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Account used when an order names none (must be one of `accounts`).
    #[serde(default)]
    pub default_account: Option<String>,
    /// Venue used when an order names none (for the application).
    #[serde(default)]
    pub default_venue: Option<String>,
    /// Smallest HeartBtInt (108) accepted at logon, in seconds (0 allows "no heartbeats").
    #[serde(default = "default_heartbeat_min_s")]
    pub heartbeat_min_s: u32,
    /// Largest HeartBtInt (108) accepted at logon, in seconds.
    #[serde(default = "default_heartbeat_max_s")]
    pub heartbeat_max_s: u32,
    /// Reset both sequence numbers to 1 at every logon (and answer with 141=Y), whether
    /// or not the peer asks for it.
    #[serde(default)]
    pub reset_on_logon: bool,
    /// Inbound application messages allowed per minute (0: no throttle).
    #[serde(default = "default_throttle_per_minute")]
    pub throttle_per_minute: u32,
    /// How many of them may come at once (the token bucket's size).
    #[serde(default = "default_throttle_burst")]
    pub throttle_burst: u32,
}

const fn default_heartbeat_min_s() -> u32 {
    1
}
const fn default_heartbeat_max_s() -> u32 {
    120
}
const fn default_throttle_per_minute() -> u32 {
    1_000
}
const fn default_throttle_burst() -> u32 {
    100
}

/// A configuration value out of range; names the session, the key and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fix configuration{session}: {key}: {problem}")]
pub struct ConfigError {
    /// ` (session OURS->THEIRS)`, or empty for acceptor-wide keys.
    pub session: String,
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl SessionConfig {
    /// Longest CompID or username accepted.
    pub const MAX_ID_LEN: usize = 64;
    /// Largest `heartbeat_max_s` (one hour).
    pub const MAX_HEARTBEAT_S: u32 = 3_600;

    /// Checks values and the password hash.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: String| {
            Err(ConfigError {
                session: format!(
                    " (session {}->{})",
                    self.sender_comp_id, self.target_comp_id
                ),
                key,
                problem,
            })
        };
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= Self::MAX_ID_LEN
                && id.bytes().all(|b| b.is_ascii_graphic())
        };
        if !id_ok(&self.sender_comp_id) {
            return bad(
                "sender_comp_id",
                "use 1 to 64 printable ASCII characters".into(),
            );
        }
        if !id_ok(&self.target_comp_id) {
            return bad(
                "target_comp_id",
                "use 1 to 64 printable ASCII characters".into(),
            );
        }
        if let Auth::Password { username, .. } = &self.auth
            && !id_ok(username)
        {
            return bad(
                "auth.username",
                "use 1 to 64 printable ASCII characters".into(),
            );
        }
        if let Err(error) = self.auth.validate() {
            return bad("auth.hash", error.to_string());
        }
        if self.heartbeat_max_s > Self::MAX_HEARTBEAT_S
            || self.heartbeat_min_s > self.heartbeat_max_s
        {
            return bad(
                "heartbeat_min_s",
                "use heartbeat_min_s <= heartbeat_max_s <= 3600".into(),
            );
        }
        if let Some(account) = &self.default_account
            && !self.accounts.contains(account)
        {
            return bad(
                "default_account",
                format!("{account:?} is not one of `accounts`"),
            );
        }
        Ok(())
    }
}

/// What the caller must do after handing the session a message or a timer tick. Bytes to
/// send, if any, are already in the output buffer.
#[must_use]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing more.
    None,
    /// The Logon was accepted (our Logon is in the output): the session is up.
    LoggedOn,
    /// An application message passed the session checks: hand it to the application (and,
    /// if the application refuses it, call [`Session::reject`]).
    Deliver,
    /// The Logon was refused; the answer (a Logout with a text, nothing for
    /// [`LogonError::NotLogon`]) is in the output. Send it (after the failure delay when
    /// [`LogonError::is_auth`]) and disconnect.
    LogonFailed(LogonError),
    /// Send what is in the output, then close the connection.
    Disconnect(DisconnectReason),
}

/// Why a Logon was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogonError {
    /// The first message of the connection was not a Logon (no answer).
    NotLogon,
    /// No configured session has this CompID pair (acceptor; no answer).
    UnknownSession,
    /// The session is already logged on over another connection (acceptor).
    AlreadyLoggedOn,
    /// Username (553) or Password (554) missing.
    MissingCredentials,
    /// Wrong username or password.
    BadCredentials,
    /// SenderCompID or TargetCompID is not the session's.
    CompId,
    /// SendingTime missing or beyond the tolerance.
    SendingTime,
    /// EncryptMethod (98) is not 0.
    EncryptMethod,
    /// HeartBtInt (108) outside the configured bounds.
    HeartBtInt,
    /// MsgSeqNum lower than expected.
    SeqNumTooLow,
    /// ResetSeqNumFlag (141=Y) with a MsgSeqNum other than 1.
    ResetSeqNum,
    /// A required field (the tag) is missing or malformed.
    Field(u32),
    /// The message store failed.
    Store,
}

impl LogonError {
    /// An authentication failure: counted, and its answer delayed
    /// ([`FailedLogons`](super::auth::FailedLogons)).
    pub const fn is_auth(self) -> bool {
        matches!(self, Self::MissingCredentials | Self::BadCredentials)
    }
}

/// Why a connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The Logon was refused.
    Logon(LogonError),
    /// The peer sent Logout (and got ours).
    LogoutReceived,
    /// The peer answered our Logout.
    LogoutAnswered,
    /// The peer did not answer our Logout in time.
    LogoutTimeout,
    /// Nothing received after a TestRequest.
    TestRequestTimeout,
    /// MsgSeqNum lower than expected without PossDupFlag.
    SeqNumTooLow,
    /// MsgSeqNum missing or not a number.
    MissingSeqNum,
    /// SenderCompID or TargetCompID wrong.
    CompId,
    /// SendingTime beyond the tolerance.
    SendingTime,
    /// A second Logon on a logged-on session.
    UnexpectedLogon,
    /// The message store failed (sequence numbers cannot be kept).
    Store,
    /// The peer closed the connection or it failed (acceptor).
    PeerClosed,
    /// No Logon within the logon timeout (acceptor).
    LogonTimeout,
    /// The peer does not read: the write buffer reached its cap (acceptor).
    WriteBufferFull,
    /// A message with another BeginString (acceptor).
    WrongBeginString,
    /// A message larger than the configured maximum (acceptor).
    MessageTooLarge,
}

/// Counters of one session, for metrics (never reset).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages handed to the session.
    pub messages_in: u64,
    /// Messages sent (including resends and gap fills).
    pub messages_out: u64,
    /// Accepted logons.
    pub logons: u64,
    /// Application messages delivered.
    pub delivered: u64,
    /// Rejects (3) sent.
    pub rejects_sent: u64,
    /// Application messages throttled (answered by 35=j).
    pub throttled: u64,
    /// ResendRequests sent.
    pub resend_requests_sent: u64,
    /// Application messages resent with PossDupFlag.
    pub messages_resent: u64,
    /// SequenceReset-GapFill messages sent.
    pub gap_fills_sent: u64,
    /// TestRequests sent.
    pub test_requests_sent: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// No connection.
    Disconnected,
    /// A connection whose Logon is expected.
    AwaitingLogon,
    /// Logged on.
    Active,
    /// We sent Logout and wait for the answer until `deadline`.
    LogoutSent { deadline: UnixNanos },
}

/// Header and trailer tags not copied from a stored message into its PossDup resend.
const RESEND_SKIP: [u32; 11] = [8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 10];

/// Fields naming the request an application message is about (BusinessRejectRefID 379):
/// ClOrdID, MDReqID, SecurityReqID, PosReqID, MassStatusReqID, QuoteReqID.
const REQUEST_ID_TAGS: [u32; 6] = [11, 262, 320, 710, 584, 131];

const SECOND: u64 = 1_000_000_000;

/// One FIX session, acceptor side (see the [module documentation](self)).
#[derive(Debug)]
pub struct Session {
    /// Encoder for the session's own messages (kept apart from `inner` so that both can be
    /// borrowed at once).
    encoder: Encoder,
    inner: Inner,
}

struct Inner {
    config: SessionConfig,
    store: Box<dyn MessageStore>,
    /// Parses stored messages for resends.
    parser: Parser,
    throttle: Throttle,
    state: State,
    /// Negotiated HeartBtInt in nanoseconds (0: no heartbeats).
    heartbeat: u64,
    tolerance: u64,
    logout_timeout: u64,
    last_sent: UnixNanos,
    last_received: UnixNanos,
    /// When our TestRequest went out, while unanswered.
    test_request_sent: Option<UnixNanos>,
    test_requests: u64,
    /// Outstanding ResendRequest: the highest number seen beyond the gap, and when asked.
    resend: Option<(u64, UnixNanos)>,
    /// Number given by `start_message`, awaiting `finish_message`.
    pending: Option<(u64, UnixNanos)>,
    stats: SessionStats,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sender_comp_id", &self.config.sender_comp_id)
            .field("target_comp_id", &self.config.target_comp_id)
            .field("state", &self.state)
            .field("next_sender_seq", &self.store.next_sender_seq())
            .field("next_target_seq", &self.store.next_target_seq())
            .finish_non_exhaustive()
    }
}

/// A short text built on the stack (Logout and Reject texts with numbers in them).
struct Text {
    buf: [u8; 128],
    len: usize,
}

impl Text {
    fn new(args: fmt::Arguments<'_>) -> Self {
        let mut text = Self {
            buf: [0; 128],
            len: 0,
        };
        // Truncation is the only possible failure, and a truncated text is still useful.
        let _ = text.write_fmt(args);
        text
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let take = s.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

impl Session {
    /// A disconnected session for `config` (validated by the caller), taking the
    /// SendingTime tolerance and the logout timeout from `acceptor`, and its sequence
    /// numbers from `store`.
    pub fn new(
        config: SessionConfig,
        acceptor: &AcceptorConfig,
        store: Box<dyn MessageStore>,
    ) -> Self {
        let throttle = Throttle::new(config.throttle_per_minute, config.throttle_burst);
        Self {
            encoder: Encoder::new(1024),
            inner: Inner {
                config,
                store,
                parser: Parser::new(),
                throttle,
                state: State::Disconnected,
                heartbeat: 0,
                tolerance: acceptor.sending_time_tolerance_ms.saturating_mul(1_000_000),
                logout_timeout: acceptor.logout_timeout_ms.saturating_mul(1_000_000),
                last_sent: UnixNanos::ZERO,
                last_received: UnixNanos::ZERO,
                test_request_sent: None,
                test_requests: 0,
                resend: None,
                pending: None,
                stats: SessionStats::default(),
            },
        }
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Logged on (including while our Logout waits for its answer).
    pub fn is_logged_on(&self) -> bool {
        matches!(self.inner.state, State::Active | State::LogoutSent { .. })
    }

    /// A connection is bound to the session (logging on or logged on).
    pub fn is_connected(&self) -> bool {
        self.inner.state != State::Disconnected
    }

    /// MsgSeqNum of our next message.
    pub fn next_sender_seq(&self) -> u64 {
        self.inner.store.next_sender_seq()
    }

    /// MsgSeqNum expected from the peer.
    pub fn next_target_seq(&self) -> u64 {
        self.inner.store.next_target_seq()
    }

    /// Counters.
    pub fn stats(&self) -> &SessionStats {
        &self.inner.stats
    }

    /// The negotiated HeartBtInt, in seconds (0 before logon or when off).
    pub fn heartbeat_s(&self) -> u64 {
        self.inner.heartbeat / SECOND
    }

    /// A new connection is bound to the session: its first message must be a Logon.
    /// Returns `false` (and changes nothing) if a connection is already bound.
    pub fn connect(&mut self, now: UnixNanos) -> bool {
        if self.inner.state != State::Disconnected {
            return false;
        }
        self.inner.state = State::AwaitingLogon;
        self.inner.last_received = now;
        self.inner.test_request_sent = None;
        self.inner.resend = None;
        true
    }

    /// The connection is gone (for any reason). Returns whether the session was logged on.
    pub fn disconnected(&mut self) -> bool {
        let was = self.is_logged_on();
        self.inner.state = State::Disconnected;
        self.inner.heartbeat = 0;
        was
    }

    /// Handles one message of the bound connection; what to send is appended to `out`.
    pub fn on_message(&mut self, msg: &Message<'_>, now: UnixNanos, out: &mut Vec<u8>) -> Action {
        let result = self.inner.on_message(&mut self.encoder, msg, now, out);
        self.inner.settle(result)
    }

    /// Handles a framed message whose fields could not be parsed: rejected (and its number
    /// consumed) if its MsgSeqNum can be found and is the expected one; a gap if it is
    /// higher; ignored otherwise.
    pub fn on_unparsable(
        &mut self,
        bytes: &[u8],
        error: ParseError,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> Action {
        let result = self
            .inner
            .on_unparsable(&mut self.encoder, bytes, error, now, out);
        self.inner.settle(result)
    }

    /// Rejects (35=3) a delivered message the application refused; its number was already
    /// consumed.
    pub fn reject(
        &mut self,
        msg: &Message<'_>,
        reject: Reject,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> Action {
        let seq = msg.seq_num().unwrap_or(0);
        let result = self
            .inner
            .send_reject(&mut self.encoder, out, seq, msg.msg_type(), reject, now)
            .map(|()| Action::None);
        self.inner.settle(result)
    }

    /// Timers: heartbeat, test request, its timeout, the logout timeout.
    pub fn on_timer(&mut self, now: UnixNanos, out: &mut Vec<u8>) -> Action {
        let result = self.inner.on_timer(&mut self.encoder, now, out);
        self.inner.settle(result)
    }

    /// When [`Session::on_timer`] next has something to do (`None`: nothing scheduled).
    pub fn next_deadline(&self) -> Option<UnixNanos> {
        self.inner.next_deadline()
    }

    /// Starts our Logout (with an optional text) and waits for the answer up to the
    /// logout timeout. Does nothing unless logged on.
    pub fn logout(&mut self, text: &[u8], now: UnixNanos, out: &mut Vec<u8>) -> Action {
        if self.inner.state != State::Active {
            return Action::None;
        }
        let result = self
            .inner
            .send_logout(&mut self.encoder, out, text, now)
            .map(|()| {
                self.inner.state = State::LogoutSent {
                    deadline: UnixNanos(now.0.saturating_add(self.inner.logout_timeout)),
                };
                Action::None
            });
        self.inner.settle(result)
    }

    /// Writes a Logout with `text` for a connection that cannot have this session (it is
    /// logged on elsewhere); nothing is stored and no number consumed.
    pub fn refuse_logon(&mut self, text: &[u8], now: UnixNanos, out: &mut Vec<u8>) {
        self.inner
            .unsequenced_logout(&mut self.encoder, out, text, now);
    }

    /// Sends an application message: header, then `body` writes the fields after it; the
    /// message is stored and appended to `out`. Returns its MsgSeqNum.
    ///
    /// # Errors
    ///
    /// The store failed (the message is not sent).
    pub fn send(
        &mut self,
        msg_type: &[u8],
        now: UnixNanos,
        out: &mut Vec<u8>,
        body: impl FnOnce(&mut Encoder),
    ) -> io::Result<u64> {
        self.inner.emit(&mut self.encoder, out, msg_type, now, body)
    }

    /// Starts a message in the caller's `encoder` (`Encoder::begin` and the standard
    /// header with the next MsgSeqNum); the caller then writes the body and calls
    /// [`Session::finish_message`]. Returns the MsgSeqNum.
    pub fn start_message(&mut self, encoder: &mut Encoder, msg_type: &[u8], now: UnixNanos) -> u64 {
        let seq = self.inner.store.next_sender_seq();
        encoder.begin(msg_type);
        self.inner.header(encoder, seq, now);
        self.inner.pending = Some((seq, now));
        seq
    }

    /// Lets the store do its housekeeping ([`MessageStore::maintain`]); the acceptor calls
    /// it when idle.
    pub(crate) fn maintain_store(&mut self) {
        self.inner.store.maintain();
    }

    /// Finishes the message started by [`Session::start_message`], stores it (advancing
    /// the sender number) and returns the bytes to send. The session must not send
    /// anything else in between (its number would be taken).
    ///
    /// # Errors
    ///
    /// The store failed, no message was started, or another message took its number.
    pub fn finish_message<'e>(&mut self, encoder: &'e mut Encoder) -> io::Result<&'e [u8]> {
        let (seq, now) = self.inner.pending.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "finish_message without start_message",
            )
        })?;
        if seq != self.inner.store.next_sender_seq() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "another message was sent between start_message and finish_message",
            ));
        }
        let bytes = encoder.finish();
        self.inner.sent(seq, now, bytes)?;
        Ok(bytes)
    }
}

impl Inner {
    /// Turns an I/O failure of the store into a disconnect, and leaves the state
    /// disconnected whenever the caller is told to close.
    fn settle(&mut self, result: io::Result<Action>) -> Action {
        let action = result.unwrap_or_else(|error| {
            tracing::error!(
                sender = %self.config.sender_comp_id,
                target = %self.config.target_comp_id,
                %error,
                "fix session store failed; disconnecting"
            );
            if self.state == State::AwaitingLogon {
                Action::LogonFailed(LogonError::Store)
            } else {
                Action::Disconnect(DisconnectReason::Store)
            }
        });
        if matches!(action, Action::Disconnect(_) | Action::LogonFailed(_)) {
            self.state = State::Disconnected;
            self.heartbeat = 0;
        }
        action
    }

    fn header(&self, encoder: &mut Encoder, seq: u64, now: UnixNanos) {
        encoder.str(49, self.config.sender_comp_id.as_bytes());
        encoder.str(56, self.config.target_comp_id.as_bytes());
        encoder.uint(34, seq);
        encoder.timestamp(52, now);
    }

    /// Stores a sent message and notes the time.
    fn sent(&mut self, seq: u64, now: UnixNanos, bytes: &[u8]) -> io::Result<()> {
        self.store.store_sent(seq, bytes)?;
        self.last_sent = now;
        self.stats.messages_out += 1;
        Ok(())
    }

    /// Sends a sequenced message whose body `body` writes; returns its number.
    fn emit(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        msg_type: &[u8],
        now: UnixNanos,
        body: impl FnOnce(&mut Encoder),
    ) -> io::Result<u64> {
        let seq = self.store.next_sender_seq();
        encoder.begin(msg_type);
        self.header(encoder, seq, now);
        body(encoder);
        let bytes = encoder.finish();
        self.sent(seq, now, bytes)?;
        out.extend_from_slice(bytes);
        Ok(seq)
    }

    /// A Logout that neither consumes a number nor is stored (refused logons).
    fn unsequenced_logout(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        text: &[u8],
        now: UnixNanos,
    ) {
        encoder.begin(b"5");
        self.header(encoder, self.store.next_sender_seq(), now);
        if !text.is_empty() {
            encoder.str(58, text);
        }
        out.extend_from_slice(encoder.finish());
        self.stats.messages_out += 1;
    }

    fn send_logout(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        text: &[u8],
        now: UnixNanos,
    ) -> io::Result<()> {
        self.emit(encoder, out, b"5", now, |e| {
            if !text.is_empty() {
                e.str(58, text);
            }
        })
        .map(drop)
    }

    fn send_reject(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        ref_seq: u64,
        ref_msg_type: &[u8],
        reject: Reject,
        now: UnixNanos,
    ) -> io::Result<()> {
        self.stats.rejects_sent += 1;
        self.emit(encoder, out, b"3", now, |e| {
            e.uint(45, ref_seq);
            if let Some(tag) = reject.ref_tag {
                e.uint(371, u64::from(tag));
            }
            if valid_value(ref_msg_type) {
                e.str(372, ref_msg_type);
            }
            e.uint(373, u64::from(reject.reason));
            if !reject.text.is_empty() {
                e.str(58, reject.text.as_bytes());
            }
        })
        .map(drop)
    }

    /// Consumes `seq` if it is the expected number.
    fn consume(&mut self, seq: u64) -> io::Result<()> {
        if seq == self.store.next_target_seq() {
            self.store.set_next_target_seq(seq + 1)?;
        }
        Ok(())
    }

    fn request_resend(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        seen: u64,
        now: UnixNanos,
    ) -> io::Result<()> {
        let retry_after = if self.heartbeat == 0 {
            10 * SECOND
        } else {
            2 * self.heartbeat
        };
        if let Some((highest, asked)) = &mut self.resend
            && now.saturating_since(*asked) < retry_after
        {
            *highest = (*highest).max(seen);
            return Ok(());
        }
        let begin = self.store.next_target_seq();
        self.resend = Some((seen, now));
        self.stats.resend_requests_sent += 1;
        self.emit(encoder, out, b"2", now, |e| {
            e.uint(7, begin);
            e.uint(16, 0);
        })
        .map(drop)
    }

    fn on_message(
        &mut self,
        encoder: &mut Encoder,
        msg: &Message<'_>,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        self.stats.messages_in += 1;
        match self.state {
            State::Disconnected => return Ok(Action::None),
            State::AwaitingLogon => return self.on_logon(encoder, msg, now, out),
            State::Active | State::LogoutSent { .. } => {}
        }
        self.last_received = now;
        self.test_request_sent = None;
        let msg_type = msg.msg_type();
        let Ok(seq) = msg.seq_num() else {
            self.send_logout(encoder, out, b"MsgSeqNum(34) missing or not a number", now)?;
            return Ok(Action::Disconnect(DisconnectReason::MissingSeqNum));
        };
        if let Some(tag) = self.comp_id_problem(msg) {
            let reject = Reject {
                reason: 9,
                ref_tag: Some(tag),
                text: "CompID problem",
            };
            self.send_reject(encoder, out, seq, msg_type, reject, now)?;
            self.consume(seq)?;
            self.send_logout(encoder, out, b"CompID problem", now)?;
            return Ok(Action::Disconnect(DisconnectReason::CompId));
        }
        match self.check_sending_time(msg, now) {
            Ok(()) => {}
            Err(reject) if reject.reason == 10 => {
                self.send_reject(encoder, out, seq, msg_type, reject, now)?;
                self.consume(seq)?;
                self.send_logout(encoder, out, b"SendingTime accuracy problem", now)?;
                return Ok(Action::Disconnect(DisconnectReason::SendingTime));
            }
            Err(reject) => {
                self.send_reject(encoder, out, seq, msg_type, reject, now)?;
                self.consume(seq)?;
                return Ok(Action::None);
            }
        }
        let expected = self.store.next_target_seq();
        let poss_dup = msg.get(43) == Some(b"Y");
        let sequence_reset = msg_type == b"4";
        let gap_fill = sequence_reset && msg.get(123) == Some(b"Y");
        if sequence_reset && !gap_fill {
            // Reset mode: MsgSeqNum is ignored.
            return self.on_sequence_reset(encoder, msg, None, now, out);
        }
        if seq < expected {
            if !poss_dup {
                let text = Text::new(format_args!(
                    "MsgSeqNum too low, expecting {expected} but received {seq}"
                ));
                self.send_logout(encoder, out, text.bytes(), now)?;
                return Ok(Action::Disconnect(DisconnectReason::SeqNumTooLow));
            }
            // A duplicate of a message already processed: ignored, but a malformed one is
            // still pointed out.
            if !sequence_reset && let Some(reject) = poss_dup_problem(msg) {
                self.send_reject(encoder, out, seq, msg_type, reject, now)?;
            }
            return Ok(Action::None);
        }
        if seq > expected {
            return match msg_type {
                b"2" => {
                    // Serve theirs first, then ask for ours (the specification's order, so
                    // that two sides with gaps do not wait on each other).
                    self.on_resend_request(encoder, msg, seq, now, out)?;
                    self.request_resend(encoder, out, seq, now)?;
                    Ok(Action::None)
                }
                b"5" => self.on_logout(encoder, now, out),
                _ => {
                    self.request_resend(encoder, out, seq, now)?;
                    Ok(Action::None)
                }
            };
        }
        // seq == expected.
        if poss_dup
            && !sequence_reset
            && let Some(reject) = poss_dup_problem(msg)
        {
            self.send_reject(encoder, out, seq, msg_type, reject, now)?;
            self.store.set_next_target_seq(seq + 1)?;
            self.close_resend_gap(seq + 1);
            return Ok(Action::None);
        }
        if sequence_reset {
            return self.on_sequence_reset(encoder, msg, Some(seq), now, out);
        }
        self.store.set_next_target_seq(seq + 1)?;
        self.close_resend_gap(seq + 1);
        match msg_type {
            b"0" | b"3" => Ok(Action::None),
            b"1" => {
                match msg.get(112) {
                    Some(id) => {
                        self.emit(encoder, out, b"0", now, |e| e.str(112, id))?;
                    }
                    None => {
                        let reject = Reject {
                            reason: 1,
                            ref_tag: Some(112),
                            text: "TestReqID(112) missing",
                        };
                        self.send_reject(encoder, out, seq, msg_type, reject, now)?;
                    }
                }
                Ok(Action::None)
            }
            b"2" => {
                self.on_resend_request(encoder, msg, seq, now, out)?;
                Ok(Action::None)
            }
            b"5" => self.on_logout(encoder, now, out),
            b"A" => {
                self.send_logout(encoder, out, b"unexpected Logon: already logged on", now)?;
                Ok(Action::Disconnect(DisconnectReason::UnexpectedLogon))
            }
            _ => {
                if self.throttle.try_acquire(now) {
                    self.stats.delivered += 1;
                    return Ok(Action::Deliver);
                }
                self.stats.throttled += 1;
                let per_minute = self.throttle.per_minute();
                let text = Text::new(format_args!("throttled: {per_minute} messages per minute"));
                let ref_id = REQUEST_ID_TAGS.iter().find_map(|&tag| msg.get(tag));
                self.emit(encoder, out, b"j", now, |e| {
                    e.uint(45, seq);
                    if valid_value(msg_type) {
                        e.str(372, msg_type);
                    }
                    if let Some(id) = ref_id {
                        e.str(379, id);
                    }
                    e.uint(380, 0);
                    e.str(58, text.bytes());
                })?;
                Ok(Action::None)
            }
        }
    }

    /// Forgets an outstanding ResendRequest once everything up to what was seen arrived.
    fn close_resend_gap(&mut self, next_expected: u64) {
        if self
            .resend
            .is_some_and(|(highest, _)| next_expected > highest)
        {
            self.resend = None;
        }
    }

    fn on_logout(
        &mut self,
        encoder: &mut Encoder,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        if matches!(self.state, State::LogoutSent { .. }) {
            return Ok(Action::Disconnect(DisconnectReason::LogoutAnswered));
        }
        self.send_logout(encoder, out, b"", now)?;
        Ok(Action::Disconnect(DisconnectReason::LogoutReceived))
    }

    fn on_logon(
        &mut self,
        encoder: &mut Encoder,
        msg: &Message<'_>,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        if msg.msg_type() != b"A" {
            return Ok(Action::LogonFailed(LogonError::NotLogon));
        }
        let refuse = |this: &mut Self,
                      encoder: &mut Encoder,
                      out: &mut Vec<u8>,
                      text: &[u8],
                      error: LogonError| {
            this.unsequenced_logout(encoder, out, text, now);
            Ok(Action::LogonFailed(error))
        };
        let Ok(seq) = msg.seq_num() else {
            return refuse(
                self,
                encoder,
                out,
                b"MsgSeqNum(34) missing or not a number",
                LogonError::Field(34),
            );
        };
        if self.comp_id_problem(msg).is_some() {
            return refuse(self, encoder, out, b"CompID problem", LogonError::CompId);
        }
        // Credentials before anything that could tell an unauthenticated peer more.
        match self.config.auth.verify(msg.get(553), msg.get(554)) {
            Ok(()) => {}
            Err(AuthError::MissingCredentials) => {
                return refuse(
                    self,
                    encoder,
                    out,
                    b"Username(553) and Password(554) required",
                    LogonError::MissingCredentials,
                );
            }
            Err(_) => {
                return refuse(
                    self,
                    encoder,
                    out,
                    b"invalid username or password",
                    LogonError::BadCredentials,
                );
            }
        }
        if self.check_sending_time(msg, now).is_err() {
            return refuse(
                self,
                encoder,
                out,
                b"SendingTime accuracy problem",
                LogonError::SendingTime,
            );
        }
        match msg.get(98) {
            Some(b"0") => {}
            None => {
                return refuse(
                    self,
                    encoder,
                    out,
                    b"EncryptMethod(98) required",
                    LogonError::Field(98),
                );
            }
            Some(_) => {
                return refuse(
                    self,
                    encoder,
                    out,
                    b"EncryptMethod(98) must be 0 (none)",
                    LogonError::EncryptMethod,
                );
            }
        }
        let (min, max) = (self.config.heartbeat_min_s, self.config.heartbeat_max_s);
        let heartbeat = match msg.get_u64(108) {
            Ok(Some(seconds)) if (u64::from(min)..=u64::from(max)).contains(&seconds) => seconds,
            Ok(Some(_)) => {
                let text = Text::new(format_args!(
                    "HeartBtInt(108) must be between {min} and {max}"
                ));
                return refuse(self, encoder, out, text.bytes(), LogonError::HeartBtInt);
            }
            Ok(None) | Err(_) => {
                return refuse(
                    self,
                    encoder,
                    out,
                    b"HeartBtInt(108) required",
                    LogonError::Field(108),
                );
            }
        };
        let reset_flag = msg.get(141) == Some(b"Y");
        if reset_flag && seq != 1 {
            return refuse(
                self,
                encoder,
                out,
                b"MsgSeqNum(34) must be 1 with ResetSeqNumFlag(141)=Y",
                LogonError::ResetSeqNum,
            );
        }
        let reset = reset_flag || self.config.reset_on_logon;
        if !reset && seq < self.store.next_target_seq() {
            let expected = self.store.next_target_seq();
            let text = Text::new(format_args!(
                "MsgSeqNum too low, expecting {expected} but received {seq}"
            ));
            return refuse(self, encoder, out, text.bytes(), LogonError::SeqNumTooLow);
        }
        if reset {
            self.store.reset()?;
        }
        let expected = self.store.next_target_seq();
        self.state = State::Active;
        self.heartbeat = heartbeat * SECOND;
        self.last_received = now;
        self.test_request_sent = None;
        self.resend = None;
        self.stats.logons += 1;
        if seq == expected {
            self.store.set_next_target_seq(seq + 1)?;
        }
        self.emit(encoder, out, b"A", now, |e| {
            e.uint(98, 0);
            e.uint(108, heartbeat);
            if reset {
                e.bool(141, true);
            }
        })?;
        if seq > expected {
            self.request_resend(encoder, out, seq, now)?;
        }
        Ok(Action::LoggedOn)
    }

    /// The tag (49 or 56) that does not match the session, if any.
    fn comp_id_problem(&self, msg: &Message<'_>) -> Option<u32> {
        if msg.get(49) != Some(self.config.target_comp_id.as_bytes()) {
            return Some(49);
        }
        if msg.get(56) != Some(self.config.sender_comp_id.as_bytes()) {
            return Some(56);
        }
        None
    }

    fn check_sending_time(&self, msg: &Message<'_>, now: UnixNanos) -> Result<(), Reject> {
        match msg.get_timestamp(52) {
            Ok(Some(sent)) => {
                if sent.0.abs_diff(now.0) > self.tolerance {
                    Err(Reject {
                        reason: 10,
                        ref_tag: Some(52),
                        text: "SendingTime accuracy problem",
                    })
                } else {
                    Ok(())
                }
            }
            Ok(None) => Err(Reject {
                reason: 1,
                ref_tag: Some(52),
                text: "SendingTime(52) missing",
            }),
            Err(error) => Err(field_reject(error)),
        }
    }

    /// SequenceReset: `seq` is the MsgSeqNum in GapFill mode (already checked to be the
    /// expected one), `None` in Reset mode.
    fn on_sequence_reset(
        &mut self,
        encoder: &mut Encoder,
        msg: &Message<'_>,
        seq: Option<u64>,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        let ref_seq = match seq {
            Some(seq) => seq,
            None => msg.seq_num().unwrap_or(0),
        };
        let new = match msg.get_u64(36) {
            Ok(Some(new)) => new,
            Ok(None) | Err(_) => {
                let reject = match msg.get_u64(36) {
                    Err(error) => field_reject(error),
                    _ => field_reject(FieldError::Missing { tag: 36 }),
                };
                if let Some(seq) = seq {
                    self.store.set_next_target_seq(seq + 1)?;
                }
                self.send_reject(encoder, out, ref_seq, b"4", reject, now)?;
                return Ok(Action::None);
            }
        };
        let lowered = Reject {
            reason: 5,
            ref_tag: Some(36),
            text: "attempt to lower sequence number",
        };
        match seq {
            Some(seq) => {
                if new > seq {
                    self.store.set_next_target_seq(new)?;
                } else {
                    self.store.set_next_target_seq(seq + 1)?;
                    self.send_reject(encoder, out, seq, b"4", lowered, now)?;
                }
            }
            None => {
                let expected = self.store.next_target_seq();
                if new > expected {
                    self.store.set_next_target_seq(new)?;
                } else if new < expected {
                    self.send_reject(encoder, out, ref_seq, b"4", lowered, now)?;
                }
            }
        }
        self.close_resend_gap(self.store.next_target_seq());
        Ok(Action::None)
    }

    fn on_resend_request(
        &mut self,
        encoder: &mut Encoder,
        msg: &Message<'_>,
        seq: u64,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let field = |tag: u32| match msg.get_u64(tag) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(field_reject(FieldError::Missing { tag })),
            Err(error) => Err(field_reject(error)),
        };
        let check = || -> Result<(u64, u64), Reject> {
            let (begin, end) = (field(7)?, field(16)?);
            if begin == 0 {
                return Err(Reject {
                    reason: 5,
                    ref_tag: Some(7),
                    text: "BeginSeqNo(7) must be at least 1",
                });
            }
            if end != 0 && end < begin {
                return Err(Reject {
                    reason: 5,
                    ref_tag: Some(16),
                    text: "EndSeqNo(16) below BeginSeqNo(7)",
                });
            }
            Ok((begin, end))
        };
        let (begin, end) = match check() {
            Ok(range) => range,
            Err(reject) => return self.send_reject(encoder, out, seq, b"2", reject, now),
        };
        let last = self.store.next_sender_seq().saturating_sub(1);
        let end = if end == 0 || end > last { last } else { end };
        if begin > end {
            // Nothing we sent is in the range: nothing to resend.
            return Ok(());
        }
        self.resend_range(encoder, out, begin, end, now)
    }

    /// Resends `begin..=end`: stored application messages with PossDupFlag, gap fills for
    /// the rest.
    fn resend_range(
        &mut self,
        encoder: &mut Encoder,
        out: &mut Vec<u8>,
        begin: u64,
        end: u64,
        now: UnixNanos,
    ) -> io::Result<()> {
        let Self {
            config,
            store,
            parser,
            stats,
            ..
        } = self;
        let mut fill_from = begin;
        let mut sent = 0_u64;
        store.sent(begin, end, &mut |seq, bytes| {
            if seq < fill_from {
                return;
            }
            // A stored message that does not parse (or an admin one) becomes part of a gap.
            let Ok(original) = parser.parse(bytes) else {
                return;
            };
            let msg_type = original.msg_type();
            if is_admin(msg_type) {
                return;
            }
            if seq > fill_from {
                gap_fill(encoder, out, config, fill_from, seq, now);
                stats.gap_fills_sent += 1;
                sent += 1;
            }
            encoder.begin(msg_type);
            encoder.str(49, config.sender_comp_id.as_bytes());
            encoder.str(56, config.target_comp_id.as_bytes());
            encoder.uint(34, seq);
            encoder.timestamp(52, now);
            encoder.bool(43, true);
            if let Some(sent) = original.get(52) {
                encoder.str(122, sent);
            }
            for field in original.fields() {
                if !RESEND_SKIP.contains(&field.tag) {
                    encoder.str(field.tag, original.value(field));
                }
            }
            out.extend_from_slice(encoder.finish());
            stats.messages_resent += 1;
            sent += 1;
            fill_from = seq + 1;
        })?;
        if fill_from <= end {
            gap_fill(encoder, out, config, fill_from, end + 1, now);
            stats.gap_fills_sent += 1;
            sent += 1;
        }
        self.stats.messages_out += sent;
        self.last_sent = now;
        Ok(())
    }

    fn on_unparsable(
        &mut self,
        encoder: &mut Encoder,
        bytes: &[u8],
        error: ParseError,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        self.stats.messages_in += 1;
        match self.state {
            State::Disconnected => return Ok(Action::None),
            State::AwaitingLogon => return Ok(Action::LogonFailed(LogonError::NotLogon)),
            State::Active | State::LogoutSent { .. } => {}
        }
        self.last_received = now;
        self.test_request_sent = None;
        let Some(seq) = raw_field(bytes, b"\x0134=").and_then(crate::fix::codec::parse_u64) else {
            // No usable MsgSeqNum: treated as garbled.
            return Ok(Action::None);
        };
        let expected = self.store.next_target_seq();
        if seq > expected {
            self.request_resend(encoder, out, seq, now)?;
            return Ok(Action::None);
        }
        if seq < expected {
            return Ok(Action::None);
        }
        self.store.set_next_target_seq(seq + 1)?;
        self.close_resend_gap(seq + 1);
        let reject = Reject {
            reason: error.session_reject_reason(),
            ref_tag: error.ref_tag(),
            text: match error {
                ParseError::InvalidTag { .. } => "invalid tag number",
                ParseError::EmptyValue { .. } => "tag specified without a value",
                ParseError::TooManyFields => "too many fields",
                ParseError::HeaderOrder { .. } | ParseError::TrailerOrder => {
                    "tag specified out of required order"
                }
            },
        };
        let msg_type = raw_field(bytes, b"\x0135=").unwrap_or(b"");
        self.send_reject(encoder, out, seq, msg_type, reject, now)?;
        Ok(Action::None)
    }

    fn grace(&self) -> u64 {
        self.heartbeat + self.heartbeat / 5
    }

    fn next_deadline(&self) -> Option<UnixNanos> {
        let logout = match self.state {
            State::Disconnected | State::AwaitingLogon => return None,
            State::Active => None,
            State::LogoutSent { deadline } => Some(deadline),
        };
        if self.heartbeat == 0 {
            return logout;
        }
        let heartbeat = self.last_sent.0.saturating_add(self.heartbeat);
        let silence = match self.test_request_sent {
            Some(sent) => sent.0.saturating_add(self.grace()),
            None => self.last_received.0.saturating_add(self.grace()),
        };
        let next = heartbeat.min(silence);
        Some(UnixNanos(logout.map_or(next, |l| l.0.min(next))))
    }

    fn on_timer(
        &mut self,
        encoder: &mut Encoder,
        now: UnixNanos,
        out: &mut Vec<u8>,
    ) -> io::Result<Action> {
        match self.state {
            State::Disconnected | State::AwaitingLogon => return Ok(Action::None),
            State::LogoutSent { deadline } if now >= deadline => {
                return Ok(Action::Disconnect(DisconnectReason::LogoutTimeout));
            }
            State::Active | State::LogoutSent { .. } => {}
        }
        if self.heartbeat == 0 {
            return Ok(Action::None);
        }
        let grace = self.grace();
        match self.test_request_sent {
            Some(sent) if now.saturating_since(sent) >= grace => {
                return Ok(Action::Disconnect(DisconnectReason::TestRequestTimeout));
            }
            Some(_) => {}
            None if now.saturating_since(self.last_received) >= grace => {
                self.test_requests += 1;
                let id = Text::new(format_args!("TEST-{}", self.test_requests));
                self.stats.test_requests_sent += 1;
                self.emit(encoder, out, b"1", now, |e| e.str(112, id.bytes()))?;
                self.test_request_sent = Some(now);
            }
            None => {}
        }
        if now.saturating_since(self.last_sent) >= self.heartbeat {
            self.stats.heartbeats_sent += 1;
            self.emit(encoder, out, b"0", now, |_| {})?;
        }
        Ok(Action::None)
    }
}

/// Writes a SequenceReset-GapFill standing in for `from..to` (not stored: it reuses `from`).
fn gap_fill(
    encoder: &mut Encoder,
    out: &mut Vec<u8>,
    config: &SessionConfig,
    from: u64,
    to: u64,
    now: UnixNanos,
) {
    encoder.begin(b"4");
    encoder.str(49, config.sender_comp_id.as_bytes());
    encoder.str(56, config.target_comp_id.as_bytes());
    encoder.uint(34, from);
    encoder.timestamp(52, now);
    encoder.bool(43, true);
    encoder.timestamp(122, now);
    encoder.bool(123, true);
    encoder.uint(36, to);
    out.extend_from_slice(encoder.finish());
}

/// Why a PossDup message cannot be processed, if it cannot: OrigSendingTime (122) missing
/// or malformed (reason 1 or 6), or later than SendingTime (reason 10).
fn poss_dup_problem(msg: &Message<'_>) -> Option<Reject> {
    match msg.get_timestamp(122) {
        Ok(Some(original)) => {
            let sent = msg.get_timestamp(52).ok().flatten()?;
            (original > sent).then_some(Reject {
                reason: 10,
                ref_tag: Some(122),
                text: "OrigSendingTime(122) later than SendingTime(52)",
            })
        }
        Ok(None) => Some(Reject {
            reason: 1,
            ref_tag: Some(122),
            text: "OrigSendingTime(122) required with PossDupFlag(43)=Y",
        }),
        Err(error) => Some(field_reject(error)),
    }
}

fn field_reject(error: FieldError) -> Reject {
    Reject {
        reason: error.session_reject_reason(),
        ref_tag: Some(error.tag()),
        text: match error {
            FieldError::Missing { .. } => "required tag missing",
            FieldError::Format { .. } => "incorrect data format for value",
            FieldError::Range { .. } => "value is incorrect (out of range) for this tag",
        },
    }
}

/// A value we may echo into a field: not empty, no SOH, not absurdly long.
fn valid_value(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 64 && !value.contains(&0x01)
}

/// The value after the first `marker` (`<SOH>34=`) in raw message bytes.
fn raw_field<'a>(bytes: &'a [u8], marker: &[u8]) -> Option<&'a [u8]> {
    let at = bytes.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let len = bytes[at..].iter().position(|&b| b == 0x01)?;
    Some(&bytes[at..at + len])
}
