//! The FIX 4.4 session layer, driven message by message with hand-built messages and
//! explicit timestamps: logon, authentication, heartbeats and test requests, sequence
//! gaps, duplicates, resends, sequence resets, rejects, logout, throttle, outbound headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use aaiti_gateway::fix::Reject;
use aaiti_gateway::fix::acceptor::AcceptorConfig;
use aaiti_gateway::fix::auth::{Auth, hash_password};
use aaiti_gateway::fix::codec::{Encoder, Framing, Parser, checksum, frame};
use aaiti_gateway::fix::session::{
    Action, DisconnectReason, LogonError, Role, Session, SessionConfig,
};
use aaiti_gateway::fix::store::MemoryStore;
use aaiti_model::UnixNanos;

/// 2024-01-01 00:00:00 UTC.
const T0: u64 = 1_704_067_200_000_000_000;
const MS: u64 = 1_000_000;

fn at_ms(ms: u64) -> UnixNanos {
    UnixNanos(T0 + ms * MS)
}

/// `YYYYMMDD-HH:MM:SS.sss` of a time on 2024-01-01.
fn ts(time: UnixNanos) -> String {
    let ms = (time.0 - T0) / MS;
    assert!(ms < 86_400_000, "tests stay on the first day");
    format!(
        "20240101-{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

/// A message with correct BodyLength and CheckSum from its body (`35=...|`, `|` for SOH).
fn raw(body: &str) -> Vec<u8> {
    let body = body.replace('|', "\x01").into_bytes();
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(&body);
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

/// A message from the desk (49=DESK, 56=AAITI) with the standard header and `extra` fields.
fn msg(msg_type: &str, seq: u64, sent: UnixNanos, extra: &str) -> Vec<u8> {
    raw(&format!(
        "35={msg_type}|49=DESK|56=AAITI|34={seq}|52={}|{extra}",
        ts(sent)
    ))
}

fn logon(seq: u64, sent: UnixNanos, extra: &str) -> Vec<u8> {
    msg("A", seq, sent, &format!("98=0|108=30|{extra}"))
}

fn config() -> SessionConfig {
    SessionConfig {
        sender_comp_id: "AAITI".into(),
        target_comp_id: "DESK".into(),
        auth: Auth::None,
        role: Role::Trader,
        accounts: vec!["main".into()],
        default_account: Some("main".into()),
        default_venue: None,
        heartbeat_min_s: 1,
        heartbeat_max_s: 60,
        reset_on_logon: false,
        throttle_per_minute: 1_000,
        throttle_burst: 100,
    }
}

/// One message we sent, as (tag, value) pairs.
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

/// Splits and checks (framing, checksum, header) what the session wrote.
fn split(mut bytes: &[u8]) -> Vec<Out> {
    let mut parser = Parser::new();
    let mut messages = Vec::new();
    while !bytes.is_empty() {
        let Framing::Complete(len) = frame(bytes, 1 << 20) else {
            panic!(
                "session wrote a bad frame: {:?}",
                String::from_utf8_lossy(bytes)
            );
        };
        let msg = parser.parse(&bytes[..len]).unwrap();
        let fields: Vec<(u32, String)> = msg
            .fields()
            .iter()
            .map(|f| (f.tag, String::from_utf8(msg.value(f).to_vec()).unwrap()))
            .collect();
        let tags: Vec<u32> = fields.iter().map(|(t, _)| *t).take(7).collect();
        assert_eq!(tags, [8, 9, 35, 49, 56, 34, 52], "standard header first");
        messages.push(Out(fields));
        bytes = &bytes[len..];
    }
    messages
}

struct Harness {
    session: Session,
    parser: Parser,
    out: Vec<u8>,
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        Self::with_store(config, MemoryStore::new(100))
    }

    fn with_store(config: SessionConfig, store: MemoryStore) -> Self {
        Self {
            session: Session::new(config, &AcceptorConfig::default(), Box::new(store)),
            parser: Parser::new(),
            out: Vec::new(),
        }
    }

    /// Connected and logged on at T0 (their seq 1, HeartBtInt 30), output drained.
    fn logged_on() -> Self {
        let mut h = Self::new(config());
        h.connect(at_ms(0));
        assert_eq!(h.feed(&logon(1, at_ms(0), ""), at_ms(0)), Action::LoggedOn);
        h.take();
        h
    }

    fn connect(&mut self, now: UnixNanos) {
        assert!(self.session.connect(now));
    }

    fn feed(&mut self, bytes: &[u8], now: UnixNanos) -> Action {
        let parsed = self.parser.parse(bytes).unwrap();
        self.session.on_message(&parsed, now, &mut self.out)
    }

    /// Feeds a message that must need nothing more from the caller.
    fn none(&mut self, bytes: &[u8], now: UnixNanos) {
        assert_eq!(self.feed(bytes, now), Action::None);
    }

    fn timer(&mut self, now: UnixNanos) -> Action {
        self.session.on_timer(now, &mut self.out)
    }

    fn take(&mut self) -> Vec<Out> {
        let out = split(&self.out);
        self.out.clear();
        out
    }

    /// Sends an application message (an execution report with ClOrdID `id`).
    fn send_app(&mut self, id: &str, now: UnixNanos) -> u64 {
        self.session
            .send(b"8", now, &mut self.out, |e| {
                e.str(11, id.as_bytes());
                e.char(150, b'0');
            })
            .unwrap()
    }
}

#[test]
fn logon_is_answered_and_numbers_advance() {
    let mut h = Harness::new(config());
    assert!(!h.session.is_connected());
    h.connect(at_ms(0));
    assert_eq!(h.feed(&logon(1, at_ms(5), ""), at_ms(10)), Action::LoggedOn);
    let out = h.take();
    assert_eq!(out.len(), 1);
    let answer = &out[0];
    assert_eq!(answer.msg_type(), "A");
    assert_eq!(answer.get(49), Some("AAITI"));
    assert_eq!(answer.get(56), Some("DESK"));
    assert_eq!(answer.seq(), 1);
    assert_eq!(answer.get(52), Some(ts(at_ms(10)).as_str()));
    assert_eq!(answer.get(98), Some("0"));
    assert_eq!(answer.get(108), Some("30"));
    assert_eq!(answer.get(141), None);
    assert!(h.session.is_logged_on());
    assert_eq!(h.session.heartbeat_s(), 30);
    assert_eq!(
        (h.session.next_sender_seq(), h.session.next_target_seq()),
        (2, 2)
    );
    // A second connection cannot bind while one is.
    assert!(!h.session.connect(at_ms(20)));
}

#[test]
fn first_message_must_be_logon() {
    let mut h = Harness::new(config());
    h.connect(at_ms(0));
    let action = h.feed(&msg("0", 1, at_ms(0), ""), at_ms(0));
    assert_eq!(action, Action::LogonFailed(LogonError::NotLogon));
    assert!(h.take().is_empty(), "no answer");
    assert!(!h.session.is_connected());
    assert_eq!(
        (h.session.next_sender_seq(), h.session.next_target_seq()),
        (1, 1)
    );
}

#[test]
fn refused_logons_are_answered_without_consuming_numbers() {
    let cases: [(&str, LogonError, &str); 6] = [
        (
            "98=0|108=0|",
            LogonError::HeartBtInt,
            "HeartBtInt(108) must be between 1 and 60",
        ),
        (
            "98=0|108=61|",
            LogonError::HeartBtInt,
            "HeartBtInt(108) must be between 1 and 60",
        ),
        ("98=0|", LogonError::Field(108), "HeartBtInt(108) required"),
        (
            "98=1|108=30|",
            LogonError::EncryptMethod,
            "EncryptMethod(98) must be 0 (none)",
        ),
        (
            "108=30|",
            LogonError::Field(98),
            "EncryptMethod(98) required",
        ),
        (
            "98=0|108=30|141=Y|",
            LogonError::ResetSeqNum,
            "MsgSeqNum(34) must be 1 with ResetSeqNumFlag(141)=Y",
        ),
    ];
    for (fields, error, text) in cases {
        let mut h = Harness::new(config());
        h.connect(at_ms(0));
        let action = h.feed(&msg("A", 2, at_ms(0), fields), at_ms(0));
        assert_eq!(action, Action::LogonFailed(error), "{fields}");
        let out = h.take();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].msg_type(), "5");
        assert_eq!(out[0].get(58), Some(text));
        assert_eq!(out[0].seq(), 1);
        assert!(!h.session.is_connected());
        // Nothing consumed: the next Logon still gets 34=1 and may use 34=1.
        assert_eq!(
            (h.session.next_sender_seq(), h.session.next_target_seq()),
            (1, 1)
        );
    }
    // SendingTime 121 s away at logon.
    let mut h = Harness::new(config());
    h.connect(at_ms(0));
    let action = h.feed(&logon(1, at_ms(0), ""), at_ms(121_000));
    assert_eq!(action, Action::LogonFailed(LogonError::SendingTime));
    assert_eq!(h.take()[0].get(58), Some("SendingTime accuracy problem"));
}

#[test]
fn logon_with_wrong_comp_ids_is_refused() {
    let mut h = Harness::new(config());
    h.connect(at_ms(0));
    let bytes = raw(&format!(
        "35=A|49=OTHER|56=AAITI|34=1|52={}|98=0|108=30|",
        ts(at_ms(0))
    ));
    assert_eq!(
        h.feed(&bytes, at_ms(0)),
        Action::LogonFailed(LogonError::CompId)
    );
    assert_eq!(h.take()[0].get(58), Some("CompID problem"));
}

#[test]
fn reset_seq_num_flag_resets_both_numbers() {
    let mut h = Harness::logged_on();
    for i in 0..3 {
        h.send_app(&format!("o{i}"), at_ms(100));
    }
    h.none(&msg("0", 2, at_ms(200), ""), at_ms(200));
    h.take();
    assert_eq!(
        (h.session.next_sender_seq(), h.session.next_target_seq()),
        (5, 3)
    );
    h.session.disconnected();
    h.connect(at_ms(1_000));
    assert_eq!(
        h.feed(&logon(1, at_ms(1_000), "141=Y|"), at_ms(1_000)),
        Action::LoggedOn
    );
    let out = h.take();
    assert_eq!(out[0].msg_type(), "A");
    assert_eq!(out[0].seq(), 1);
    assert_eq!(out[0].get(141), Some("Y"));
    assert_eq!(
        (h.session.next_sender_seq(), h.session.next_target_seq()),
        (2, 2)
    );
}

#[test]
fn reset_on_logon_configuration_resets_without_the_flag() {
    let mut h = Harness::new(SessionConfig {
        reset_on_logon: true,
        ..config()
    });
    h.connect(at_ms(0));
    assert_eq!(h.feed(&logon(1, at_ms(0), ""), at_ms(0)), Action::LoggedOn);
    h.send_app("a", at_ms(1));
    h.none(&msg("0", 2, at_ms(2), ""), at_ms(2));
    h.take();
    h.session.disconnected();
    h.connect(at_ms(10));
    // Their 34=1 would be "too low" without the reset.
    assert_eq!(
        h.feed(&logon(1, at_ms(10), ""), at_ms(10)),
        Action::LoggedOn
    );
    let out = h.take();
    assert_eq!((out[0].seq(), out[0].get(141)), (1, Some("Y")));
    assert_eq!(
        (h.session.next_sender_seq(), h.session.next_target_seq()),
        (2, 2)
    );
}

#[test]
fn password_authentication() {
    let hash = hash_password(b"s3cret").unwrap();
    let password_config = SessionConfig {
        auth: Auth::Password {
            username: "desk1".into(),
            hash,
        },
        ..config()
    };
    password_config.validate().unwrap();
    let cases = [
        ("553=desk1|554=s3cret|", None),
        ("553=desk1|554=wrong|", Some(LogonError::BadCredentials)),
        ("553=desk2|554=s3cret|", Some(LogonError::BadCredentials)),
        ("553=desk1|", Some(LogonError::MissingCredentials)),
        ("", Some(LogonError::MissingCredentials)),
    ];
    for (fields, failure) in cases {
        let mut h = Harness::new(password_config.clone());
        h.connect(at_ms(0));
        let action = h.feed(&logon(1, at_ms(0), fields), at_ms(0));
        let out = h.take();
        match failure {
            None => {
                assert_eq!(action, Action::LoggedOn);
                assert_eq!(out[0].msg_type(), "A");
            }
            Some(error) => {
                assert_eq!(action, Action::LogonFailed(error), "{fields}");
                assert!(error.is_auth());
                assert_eq!(out[0].msg_type(), "5");
                let text = out[0].get(58).unwrap();
                assert!(!text.contains("s3cret") && !text.contains("wrong"));
                assert_eq!(
                    (h.session.next_sender_seq(), h.session.next_target_seq()),
                    (1, 1)
                );
            }
        }
    }
}

#[test]
fn logon_sequence_numbers() {
    // Too low: refused with the standard text.
    let mut h = Harness::logged_on();
    h.none(&msg("0", 2, at_ms(1), ""), at_ms(1));
    h.session.disconnected();
    h.take();
    h.connect(at_ms(10));
    let action = h.feed(&logon(2, at_ms(10), ""), at_ms(10));
    assert_eq!(action, Action::LogonFailed(LogonError::SeqNumTooLow));
    assert_eq!(
        h.take()[0].get(58),
        Some("MsgSeqNum too low, expecting 3 but received 2")
    );
    // Too high: accepted, then a ResendRequest for the gap.
    h.connect(at_ms(20));
    assert_eq!(
        h.feed(&logon(7, at_ms(20), ""), at_ms(20)),
        Action::LoggedOn
    );
    let out = h.take();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].msg_type(), "A");
    assert_eq!(out[1].msg_type(), "2");
    assert_eq!((out[1].get(7), out[1].get(16)), (Some("3"), Some("0")));
    assert_eq!(h.session.next_target_seq(), 3);
}

#[test]
fn heartbeat_when_nothing_was_sent() {
    let mut h = Harness::logged_on();
    // HeartBtInt 30 s; our Logon went out at T0.
    assert_eq!(h.session.next_deadline(), Some(at_ms(30_000)));
    assert_eq!(h.timer(at_ms(29_999)), Action::None);
    assert!(h.take().is_empty());
    // Traffic from the peer keeps it from test requests, not from heartbeats.
    h.none(&msg("0", 2, at_ms(20_000), ""), at_ms(20_000));
    assert_eq!(h.timer(at_ms(30_000)), Action::None);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg_type(), "0");
    assert_eq!(out[0].get(112), None);
    // Sending anything resets the heartbeat timer.
    h.send_app("x", at_ms(40_000));
    h.take();
    assert_eq!(h.timer(at_ms(69_999)), Action::None);
    assert!(h.take().iter().all(|m| m.msg_type() != "0"));
}

#[test]
fn test_request_on_silence_then_disconnect() {
    let mut h = Harness::logged_on();
    // HeartBtInt + 20 % = 36 s of silence.
    h.none(&msg("0", 2, at_ms(10_000), ""), at_ms(10_000));
    h.send_app("keep-our-side-busy", at_ms(45_000));
    h.take();
    assert_eq!(h.timer(at_ms(45_999)), Action::None);
    assert!(h.take().is_empty());
    assert_eq!(h.timer(at_ms(46_000)), Action::None);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg_type(), "1");
    let id = out[0].get(112).unwrap().to_string();
    assert!(!id.is_empty());
    // Answered: the session goes on.
    h.none(
        &msg("0", 3, at_ms(47_000), &format!("112={id}|")),
        at_ms(47_000),
    );
    assert_eq!(h.timer(at_ms(60_000)), Action::None);
    // Silent again: another TestRequest at 47 + 36 = 83 s, and the end 36 s later.
    h.take();
    assert_eq!(h.timer(at_ms(83_000)), Action::None);
    assert!(h.take().iter().any(|m| m.msg_type() == "1"));
    assert_eq!(h.timer(at_ms(118_999)), Action::None);
    assert_eq!(
        h.timer(at_ms(119_000)),
        Action::Disconnect(DisconnectReason::TestRequestTimeout)
    );
    assert!(!h.session.is_connected());
}

#[test]
fn test_request_from_the_peer_is_answered() {
    let mut h = Harness::logged_on();
    assert_eq!(
        h.feed(&msg("1", 2, at_ms(1), "112=PING-7|"), at_ms(1)),
        Action::None
    );
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].msg_type(), out[0].get(112)), ("0", Some("PING-7")));
    // Without TestReqID: Reject reason 1 on tag 112.
    h.none(&msg("1", 3, at_ms(2), ""), at_ms(2));
    let out = h.take();
    assert_eq!(out[0].msg_type(), "3");
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("1"), Some("112")));
    assert_eq!(h.session.next_target_seq(), 4);
}

#[test]
fn a_gap_asks_once_and_drops_until_filled() {
    let mut h = Harness::logged_on();
    let order = |seq: u64, id: &str| msg("D", seq, at_ms(seq), &format!("11={id}|55=BTCUSDT|"));
    assert_eq!(h.feed(&order(2, "a"), at_ms(2)), Action::Deliver);
    // 3 and 4 lost; 5 arrives.
    assert_eq!(h.feed(&order(5, "d"), at_ms(5)), Action::None);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg_type(), "2");
    assert_eq!((out[0].get(7), out[0].get(16)), (Some("3"), Some("0")));
    // 6 too: dropped, no second request.
    assert_eq!(h.feed(&order(6, "e"), at_ms(6)), Action::None);
    assert!(h.take().is_empty());
    assert_eq!(h.session.next_target_seq(), 3);
    // The resend fills the gap in order; every message is delivered exactly once.
    for seq in 3..=6 {
        let resent = msg(
            "D",
            seq,
            at_ms(100),
            &format!("43=Y|122={}|11=r{seq}|55=BTCUSDT|", ts(at_ms(seq))),
        );
        assert_eq!(h.feed(&resent, at_ms(100)), Action::Deliver, "seq {seq}");
    }
    assert_eq!(h.feed(&order(7, "f"), at_ms(101)), Action::Deliver);
    assert!(h.take().is_empty());
    // A new gap after the first closed asks again.
    assert_eq!(h.feed(&order(10, "g"), at_ms(102)), Action::None);
    let out = h.take();
    assert_eq!((out[0].msg_type(), out[0].get(7)), ("2", Some("8")));
    assert_eq!(h.session.stats().resend_requests_sent, 2);
}

#[test]
fn seq_too_low_without_poss_dup_ends_the_session() {
    let mut h = Harness::logged_on();
    h.none(&msg("0", 2, at_ms(1), ""), at_ms(1));
    let action = h.feed(&msg("0", 2, at_ms(2), ""), at_ms(2));
    assert_eq!(action, Action::Disconnect(DisconnectReason::SeqNumTooLow));
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg_type(), "5");
    assert_eq!(
        out[0].get(58),
        Some("MsgSeqNum too low, expecting 3 but received 2")
    );
    assert!(!h.session.is_connected());
}

#[test]
fn poss_dup_rules() {
    let mut h = Harness::logged_on();
    let order = |seq: u64, extra: &str| msg("D", seq, at_ms(500), &format!("{extra}11=x|"));
    assert_eq!(h.feed(&order(2, ""), at_ms(500)), Action::Deliver);
    // A duplicate of 2 with a proper OrigSendingTime: ignored silently.
    let dup = order(2, &format!("43=Y|122={}|", ts(at_ms(400))));
    assert_eq!(h.feed(&dup, at_ms(500)), Action::None);
    assert!(h.take().is_empty());
    assert_eq!(h.session.next_target_seq(), 3);
    // PossDup at the expected number without OrigSendingTime: Reject 1 on 122, consumed,
    // not delivered.
    assert_eq!(h.feed(&order(3, "43=Y|"), at_ms(500)), Action::None);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].msg_type(), "3");
    assert_eq!(
        (
            out[0].get(45),
            out[0].get(371),
            out[0].get(372),
            out[0].get(373)
        ),
        (Some("3"), Some("122"), Some("D"), Some("1"))
    );
    assert_eq!(h.session.next_target_seq(), 4);
    // OrigSendingTime later than SendingTime: Reject 10, consumed, ignored.
    let late = order(4, &format!("43=Y|122={}|", ts(at_ms(600))));
    assert_eq!(h.feed(&late, at_ms(500)), Action::None);
    let out = h.take();
    assert_eq!(
        (out[0].get(373), out[0].get(371)),
        (Some("10"), Some("122"))
    );
    assert_eq!(h.session.next_target_seq(), 5);
    assert!(h.session.is_logged_on());
}

#[test]
fn resend_request_replays_application_messages_and_gap_fills_the_rest() {
    let mut h = Harness::logged_on();
    // Ours: 1 Logon, 2 and 3 execution reports, 4 heartbeat, 5 execution report.
    assert_eq!(h.send_app("a", at_ms(1_000)), 2);
    assert_eq!(h.send_app("b", at_ms(2_000)), 3);
    assert_eq!(h.timer(at_ms(32_000)), Action::None);
    assert_eq!(h.send_app("c", at_ms(33_000)), 5);
    let originals = h.take();
    assert_eq!(originals[2].msg_type(), "0");
    let now = at_ms(34_000);
    h.none(&msg("2", 2, now, "7=1|16=0|"), now);
    let out = h.take();
    let summary: Vec<(&str, u64, Option<&str>)> = out
        .iter()
        .map(|m| (m.msg_type(), m.seq(), m.get(36)))
        .collect();
    assert_eq!(
        summary,
        [
            ("4", 1, Some("2")),
            ("8", 2, None),
            ("8", 3, None),
            ("4", 4, Some("5")),
            ("8", 5, None),
        ]
    );
    for m in &out {
        assert_eq!(m.get(43), Some("Y"));
        assert_eq!(m.get(52), Some(ts(now).as_str()));
        assert!(m.get(122).is_some());
        if m.msg_type() == "4" {
            assert_eq!(m.get(123), Some("Y"));
        }
    }
    assert_eq!(out[1].get(122), Some(ts(at_ms(1_000)).as_str()));
    assert_eq!(out[1].get(11), Some("a"));
    assert_eq!(out[1].get(150), Some("0"));
    assert_eq!(out[4].get(122), Some(ts(at_ms(33_000)).as_str()));
    // Resends do not consume numbers.
    assert_eq!(h.session.next_sender_seq(), 6);
    // A bounded range, and an EndSeqNo past the last sent.
    h.none(&msg("2", 3, now, "7=3|16=3|"), now);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].msg_type(), out[0].seq(), out[0].get(11)),
        ("8", 3, Some("b"))
    );
    h.none(&msg("2", 4, now, "7=5|16=99|"), now);
    let out = h.take();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].msg_type(), out[0].seq()), ("8", 5));
    // A bad range is rejected.
    h.none(&msg("2", 5, now, "7=4|16=2|"), now);
    let out = h.take();
    assert_eq!(
        (out[0].msg_type(), out[0].get(373), out[0].get(371)),
        ("3", Some("5"), Some("16"))
    );
}

#[test]
fn messages_the_store_forgot_are_gap_filled() {
    let mut h = Harness::with_store(config(), MemoryStore::new(2));
    h.connect(at_ms(0));
    assert_eq!(h.feed(&logon(1, at_ms(0), ""), at_ms(0)), Action::LoggedOn);
    for id in ["a", "b", "c", "d"] {
        h.send_app(id, at_ms(1));
    }
    h.take();
    h.none(&msg("2", 2, at_ms(2), "7=1|16=0|"), at_ms(2));
    let summary: Vec<(String, u64, Option<String>)> = h
        .take()
        .iter()
        .map(|m| {
            (
                m.msg_type().to_string(),
                m.seq(),
                m.get(36).map(String::from),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("4".to_string(), 1, Some("4".to_string())),
            ("8".to_string(), 4, None),
            ("8".to_string(), 5, None),
        ]
    );
}

#[test]
fn resend_request_with_a_gap_is_served_then_asks_for_ours() {
    let mut h = Harness::logged_on();
    h.send_app("a", at_ms(1));
    h.take();
    h.none(&msg("2", 5, at_ms(2), "7=2|16=0|"), at_ms(2));
    let out = h.take();
    let types: Vec<&str> = out.iter().map(Out::msg_type).collect();
    assert_eq!(types, ["8", "2"]);
    assert_eq!(out[0].get(43), Some("Y"));
    assert_eq!((out[1].get(7), out[1].get(16)), (Some("2"), Some("0")));
}

#[test]
fn sequence_reset_gap_fill_and_reset_modes() {
    let mut h = Harness::logged_on();
    // GapFill at the expected number moves it.
    let gap = msg(
        "4",
        2,
        at_ms(1),
        &format!("43=Y|122={}|123=Y|36=10|", ts(at_ms(1))),
    );
    assert_eq!(h.feed(&gap, at_ms(1)), Action::None);
    assert!(h.take().is_empty());
    assert_eq!(h.session.next_target_seq(), 10);
    // GapFill that would not advance: Reject 5 on 36, its own number consumed.
    h.none(&msg("4", 10, at_ms(2), "123=Y|36=9|"), at_ms(2));
    let out = h.take();
    assert_eq!(
        (
            out[0].msg_type(),
            out[0].get(373),
            out[0].get(371),
            out[0].get(45)
        ),
        ("3", Some("5"), Some("36"), Some("10"))
    );
    assert_eq!(h.session.next_target_seq(), 11);
    // GapFill too high: a gap like any other.
    h.none(&msg("4", 15, at_ms(3), "123=Y|36=20|"), at_ms(3));
    assert_eq!(h.take()[0].msg_type(), "2");
    assert_eq!(h.session.next_target_seq(), 11);
    // Reset mode ignores MsgSeqNum (even a low one) and sets the number.
    assert_eq!(
        h.feed(&msg("4", 1, at_ms(4), "36=50|"), at_ms(4)),
        Action::None
    );
    assert!(h.take().is_empty());
    assert_eq!(h.session.next_target_seq(), 50);
    // Reset mode cannot lower it (FIX 4.4: Reject, value out of range).
    h.none(&msg("4", 50, at_ms(5), "36=40|"), at_ms(5));
    let out = h.take();
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("5"), Some("36")));
    assert_eq!(h.session.next_target_seq(), 50);
    // Missing NewSeqNo.
    h.none(&msg("4", 50, at_ms(6), "123=Y|"), at_ms(6));
    let out = h.take();
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("1"), Some("36")));
    assert_eq!(h.session.next_target_seq(), 51);
}

#[test]
fn rejects_consume_the_number() {
    let mut h = Harness::logged_on();
    // A framed message whose fields do not parse (tag without a value).
    let broken = raw(&format!(
        "35=D|49=DESK|56=AAITI|34=2|52={}|11=|",
        ts(at_ms(1))
    ));
    let error = Parser::new().parse(&broken).unwrap_err();
    assert_eq!(
        h.session
            .on_unparsable(&broken, error, at_ms(1), &mut h.out),
        Action::None
    );
    let out = h.take();
    assert_eq!(out[0].msg_type(), "3");
    assert_eq!(
        (
            out[0].get(45),
            out[0].get(371),
            out[0].get(372),
            out[0].get(373)
        ),
        (Some("2"), Some("11"), Some("D"), Some("4"))
    );
    assert_eq!(h.session.next_target_seq(), 3);
    // The application refuses a delivered message.
    let order = msg("D", 3, at_ms(2), "11=abc|");
    assert_eq!(h.feed(&order, at_ms(2)), Action::Deliver);
    let parsed = h.parser.parse(&order).unwrap();
    let reject = Reject {
        reason: 1,
        ref_tag: Some(55),
        text: "Symbol(55) missing",
    };
    assert_eq!(
        h.session.reject(&parsed, reject, at_ms(2), &mut h.out),
        Action::None
    );
    let out = h.take();
    assert_eq!(
        (
            out[0].get(45),
            out[0].get(371),
            out[0].get(373),
            out[0].get(58)
        ),
        (Some("3"), Some("55"), Some("1"), Some("Symbol(55) missing"))
    );
    assert_eq!(h.session.next_target_seq(), 4);
    // SendingTime missing: Reject 1 on 52, consumed, session stays.
    let bytes = raw("35=0|49=DESK|56=AAITI|34=4|");
    assert_eq!(h.feed(&bytes, at_ms(3)), Action::None);
    let out = h.take();
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("1"), Some("52")));
    assert_eq!(h.session.next_target_seq(), 5);
    assert!(h.session.is_logged_on());
}

#[test]
fn comp_id_problem_rejects_then_logs_out() {
    let mut h = Harness::logged_on();
    let bytes = raw(&format!(
        "35=0|49=DESK|56=SOMEONE|34=2|52={}|",
        ts(at_ms(1))
    ));
    let action = h.feed(&bytes, at_ms(1));
    assert_eq!(action, Action::Disconnect(DisconnectReason::CompId));
    let out = h.take();
    let types: Vec<&str> = out.iter().map(Out::msg_type).collect();
    assert_eq!(types, ["3", "5"]);
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("9"), Some("56")));
    assert_eq!(h.session.next_target_seq(), 3);
    assert!(!h.session.is_connected());
}

#[test]
fn sending_time_accuracy() {
    let mut h = Harness::logged_on();
    // 120 s off is fine, 120.001 s is not.
    assert_eq!(
        h.feed(&msg("0", 2, at_ms(0), ""), at_ms(120_000)),
        Action::None
    );
    let action = h.feed(&msg("0", 3, at_ms(120_000), ""), at_ms(240_001));
    assert_eq!(action, Action::Disconnect(DisconnectReason::SendingTime));
    let out = h.take();
    let types: Vec<&str> = out.iter().map(Out::msg_type).collect();
    assert_eq!(types, ["3", "5"]);
    assert_eq!((out[0].get(373), out[0].get(371)), (Some("10"), Some("52")));
}

#[test]
fn logout_both_ways() {
    // The peer's Logout is answered.
    let mut h = Harness::logged_on();
    let action = h.feed(&msg("5", 2, at_ms(1), "58=bye|"), at_ms(1));
    assert_eq!(action, Action::Disconnect(DisconnectReason::LogoutReceived));
    let out = h.take();
    assert_eq!((out.len(), out[0].msg_type()), (1, "5"));
    // Ours waits for the answer...
    let mut h = Harness::logged_on();
    assert_eq!(
        h.session.logout(b"end of day", at_ms(10), &mut h.out),
        Action::None
    );
    let out = h.take();
    assert_eq!(
        (out[0].msg_type(), out[0].get(58)),
        ("5", Some("end of day"))
    );
    // ...while messages are still processed...
    assert_eq!(
        h.feed(&msg("D", 2, at_ms(11), "11=z|"), at_ms(11)),
        Action::Deliver
    );
    assert_eq!(
        h.feed(&msg("5", 3, at_ms(12), ""), at_ms(12)),
        Action::Disconnect(DisconnectReason::LogoutAnswered)
    );
    assert!(h.take().is_empty(), "an answer is not answered");
    // ...or gives up after the logout timeout (2 s by default).
    let mut h = Harness::logged_on();
    assert_eq!(h.session.logout(b"", at_ms(10), &mut h.out), Action::None);
    assert_eq!(h.session.next_deadline(), Some(at_ms(2_010)));
    assert_eq!(h.timer(at_ms(2_009)), Action::None);
    assert_eq!(
        h.timer(at_ms(2_010)),
        Action::Disconnect(DisconnectReason::LogoutTimeout)
    );
}

#[test]
fn a_second_logon_ends_the_session() {
    let mut h = Harness::logged_on();
    let action = h.feed(&logon(2, at_ms(1), ""), at_ms(1));
    assert_eq!(
        action,
        Action::Disconnect(DisconnectReason::UnexpectedLogon)
    );
    assert_eq!(h.take()[0].msg_type(), "5");
}

#[test]
fn throttle_rejects_application_messages_only() {
    let mut h = Harness::new(SessionConfig {
        throttle_per_minute: 60,
        throttle_burst: 2,
        ..config()
    });
    h.connect(at_ms(0));
    assert_eq!(h.feed(&logon(1, at_ms(0), ""), at_ms(0)), Action::LoggedOn);
    h.take();
    let now = at_ms(1);
    assert_eq!(h.feed(&msg("D", 2, now, "11=o1|"), now), Action::Deliver);
    assert_eq!(h.feed(&msg("D", 3, now, "11=o2|"), now), Action::Deliver);
    assert_eq!(h.feed(&msg("D", 4, now, "11=o3|"), now), Action::None);
    assert_eq!(h.feed(&msg("V", 5, now, "262=md1|"), now), Action::None);
    let out = h.take();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].msg_type(), "j");
    assert_eq!(
        (
            out[0].get(45),
            out[0].get(372),
            out[0].get(379),
            out[0].get(380)
        ),
        (Some("4"), Some("D"), Some("o3"), Some("0"))
    );
    assert_eq!(out[0].get(58), Some("throttled: 60 messages per minute"));
    assert_eq!(out[1].get(379), Some("md1"));
    // Admin messages pass; the session stays up; numbers were consumed.
    assert_eq!(h.feed(&msg("1", 6, now, "112=t|"), now), Action::None);
    assert_eq!(h.take()[0].msg_type(), "0");
    assert!(h.session.is_logged_on());
    assert_eq!(h.session.next_target_seq(), 7);
    assert_eq!(h.session.stats().throttled, 2);
    // One second later one more token.
    let later = at_ms(1_001);
    assert_eq!(
        h.feed(&msg("D", 7, later, "11=o4|"), later),
        Action::Deliver
    );
}

#[test]
fn outbound_header_and_store() {
    let mut h = Harness::logged_on();
    let mut encoder = Encoder::new(256);
    let seq = h.session.start_message(&mut encoder, b"8", at_ms(5));
    assert_eq!(seq, 2);
    encoder.str(11, b"abc");
    let bytes = h.session.finish_message(&mut encoder).unwrap().to_vec();
    let out = split(&bytes);
    assert_eq!(out[0].msg_type(), "8");
    assert_eq!(out[0].get(49), Some("AAITI"));
    assert_eq!(out[0].get(56), Some("DESK"));
    assert_eq!(out[0].seq(), 2);
    assert_eq!(out[0].get(52), Some(ts(at_ms(5)).as_str()));
    assert_eq!(h.session.next_sender_seq(), 3);
    // Stored: a resend finds it.
    h.none(&msg("2", 2, at_ms(6), "7=2|16=2|"), at_ms(6));
    let out = h.take();
    assert_eq!(
        (out[0].msg_type(), out[0].seq(), out[0].get(11)),
        ("8", 2, Some("abc"))
    );
    // finish without start is an error, not a panic.
    assert!(h.session.finish_message(&mut encoder).is_err());
    // Another message between start and finish took the number: an error, never two
    // messages with one number.
    assert_eq!(h.session.start_message(&mut encoder, b"8", at_ms(7)), 3);
    assert_eq!(h.send_app("between", at_ms(7)), 3);
    assert!(h.session.finish_message(&mut encoder).is_err());
    assert_eq!(h.session.next_sender_seq(), 4);
}

#[test]
fn configuration_is_validated() {
    config().validate().unwrap();
    let bad = [
        SessionConfig {
            sender_comp_id: String::new(),
            ..config()
        },
        SessionConfig {
            target_comp_id: "A B".into(),
            ..config()
        },
        SessionConfig {
            default_account: Some("other".into()),
            ..config()
        },
        SessionConfig {
            heartbeat_min_s: 10,
            heartbeat_max_s: 5,
            ..config()
        },
        SessionConfig {
            auth: Auth::Password {
                username: "u".into(),
                hash: "not-a-hash".into(),
            },
            ..config()
        },
    ];
    for config in bad {
        assert!(config.validate().is_err(), "{config:?}");
    }
    let parsed: SessionConfig = toml::from_str(
        r#"
        sender_comp_id = "AAITI"
        target_comp_id = "DESK"
        auth = { type = "none" }
        role = "viewer"
        "#,
    )
    .unwrap();
    assert_eq!(parsed.role, Role::Viewer);
    assert_eq!((parsed.heartbeat_min_s, parsed.heartbeat_max_s), (1, 120));
    assert_eq!(
        (parsed.throttle_per_minute, parsed.throttle_burst),
        (1_000, 100)
    );
    let typo = toml::from_str::<SessionConfig>(
        r#"
        sender_comp_id = "AAITI"
        target_comp_id = "DESK"
        auth = { type = "none" }
        role = "viewer"
        reset_on_logn = true
        "#,
    );
    assert!(typo.is_err());
}
