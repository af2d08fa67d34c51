//! The desk over FIX 4.4 against the whole engine: orders through risk and the journal to
//! the paper venue and back as execution reports, status, positions, market data, the admin
//! message, and sequence numbers and resends across a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

mod desk_support;

use desk_support::start;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aaiti_gateway::fix::codec::{Encoder, Framing, frame};
use aaiti_journal::JournalReader;
use aaiti_model::{Control, ControlAction, OrderCommand, RecordKind, UnixNanos};

type Fields = Vec<(u32, String)>;

fn get(fields: &Fields, tag: u32) -> Option<&str> {
    fields
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.as_str())
}

/// A minimal FIX initiator for the test.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    seq: u64,
    sender: String,
    encoder: Encoder,
}

impl Client {
    fn connect(address: SocketAddr, sender: &str, password: &str, reset: bool) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut client = Self {
            stream,
            buf: Vec::new(),
            seq: 0,
            sender: sender.to_owned(),
            encoder: Encoder::new(1024),
        };
        let username = if sender == "DESK" { "desk" } else { "admin" };
        let mut logon = vec![(98, "0".to_owned()), (108, "30".to_owned())];
        if reset {
            logon.push((141, "Y".to_owned()));
        }
        logon.push((553, username.to_owned()));
        logon.push((554, password.to_owned()));
        client.send("A", &logon);
        client
    }

    fn send(&mut self, msg_type: &str, body: &[(u32, String)]) {
        self.seq += 1;
        let enc = &mut self.encoder;
        enc.begin(msg_type.as_bytes());
        enc.str(49, self.sender.as_bytes());
        enc.str(56, b"AAITI");
        enc.uint(34, self.seq);
        enc.timestamp(52, UnixNanos(now_ns()));
        for (tag, value) in body {
            enc.str(*tag, value.as_bytes());
        }
        let bytes = enc.finish().to_vec();
        self.stream.write_all(&bytes).unwrap();
    }

    /// The next message, answering TestRequests on the way.
    fn recv(&mut self, timeout: Duration) -> Option<Fields> {
        let deadline = Instant::now() + timeout;
        loop {
            match frame(&self.buf, 1 << 20) {
                Framing::Complete(len) => {
                    let bytes: Vec<u8> = self.buf.drain(..len).collect();
                    // Split by hand: a snapshot may hold more fields than the gateway's
                    // inbound parser allows.
                    let fields: Fields = bytes
                        .split(|&b| b == 1)
                        .filter(|field| !field.is_empty())
                        .map(|field| {
                            let text = String::from_utf8_lossy(field);
                            let (tag, value) = text.split_once('=').unwrap();
                            (tag.parse().unwrap(), value.to_owned())
                        })
                        .collect();
                    if get(&fields, 35) == Some("1") {
                        let id = get(&fields, 112).unwrap_or("").to_owned();
                        self.send("0", &[(112, id)]);
                        continue;
                    }
                    return Some(fields);
                }
                Framing::Incomplete => {}
                other => panic!("the engine sent bytes that do not frame: {other:?}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0_u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    /// Waits for a message `accept` takes, skipping others.
    fn expect(&mut self, what: &str, accept: impl Fn(&Fields) -> bool) -> Fields {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.recv(Duration::from_millis(500)) {
                Some(fields) if accept(&fields) => return fields,
                Some(fields) if !matches!(get(&fields, 35), Some("X" | "W" | "0")) => {
                    seen.push(fields);
                }
                Some(_) => {}
                None => {}
            }
        }
        panic!(
            "no {what}; got {:?}",
            seen.iter().rev().take(5).collect::<Vec<_>>()
        );
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-desk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn order(fields: &[(u32, &str)]) -> Vec<(u32, String)> {
    fields.iter().map(|(t, v)| (*t, (*v).to_owned())).collect()
}

#[test]
fn the_desk_trades_over_fix_and_resends_across_a_restart() {
    let dir = temp_dir("fix");
    let data = dir.join("data");
    let started = start(&data);
    let address = started.fix_address.unwrap();

    let mut desk = Client::connect(address, "DESK", "desk-demo", true);
    let logon = desk.expect("logon", |f| get(f, 35) == Some("A"));
    assert_eq!(get(&logon, 141), Some("Y"));

    // The book first: a snapshot with levels once the replayed book is valid.
    desk.send(
        "V",
        &order(&[
            (262, "md-1"),
            (263, "1"),
            (264, "5"),
            (265, "1"),
            (267, "2"),
            (269, "0"),
            (269, "1"),
            (146, "1"),
            (55, "BTCUSDT"),
            (207, "binance"),
        ]),
    );
    let snapshot = desk.expect("a market data snapshot with levels", |f| {
        get(f, 35) == Some("W") && get(f, 268).is_some_and(|n| n != "0")
    });
    let best_bid: f64 = snapshot
        .windows(2)
        .find(|w| w[0] == (269, "0".to_owned()))
        .and_then(|w| w[1].1.parse().ok())
        .expect("a bid in the snapshot");
    desk.expect("an incremental refresh", |f| get(f, 35) == Some("X"));

    // A resting buy well below the market: acknowledged New.
    let price = format!("{:.2}", best_bid - 50.0);
    desk.send(
        "D",
        &order(&[
            (11, "ord-1"),
            (55, "BTCUSDT"),
            (207, "binance"),
            (54, "1"),
            (38, "0.002"),
            (40, "2"),
            (44, &price),
            (59, "1"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let new = desk.expect("New", |f| {
        get(f, 35) == Some("8") && get(f, 150) == Some("0")
    });
    assert_eq!(get(&new, 11), Some("ord-1"));
    assert_eq!(get(&new, 1), Some("desk-1"));
    let order_id = get(&new, 37).unwrap().to_owned();

    // Its status.
    desk.send(
        "H",
        &order(&[(11, "ord-1"), (55, "BTCUSDT"), (207, "binance"), (54, "1")]),
    );
    let status = desk.expect("status", |f| {
        get(f, 35) == Some("8") && get(f, 150) == Some("I")
    });
    assert_eq!(get(&status, 37), Some(order_id.as_str()));
    assert_eq!(get(&status, 39), Some("0"));

    // Replace (new price), then cancel.
    let lower = format!("{:.2}", best_bid - 60.0);
    desk.send(
        "G",
        &order(&[
            (11, "ord-1b"),
            (41, "ord-1"),
            (55, "BTCUSDT"),
            (207, "binance"),
            (54, "1"),
            (38, "0.002"),
            (40, "2"),
            (44, &lower),
            (59, "1"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let replaced = desk.expect("Replaced", |f| {
        get(f, 35) == Some("8") && get(f, 150) == Some("5")
    });
    assert_eq!(get(&replaced, 11), Some("ord-1b"));
    assert_eq!(get(&replaced, 41), Some("ord-1"));
    desk.send(
        "F",
        &order(&[
            (11, "ord-1c"),
            (41, "ord-1b"),
            (55, "BTCUSDT"),
            (207, "binance"),
            (54, "1"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let canceled = desk.expect("Canceled", |f| {
        get(f, 35) == Some("8") && get(f, 150) == Some("4")
    });
    assert_eq!(get(&canceled, 39), Some("4"));

    // A market buy fills against the replayed book.
    desk.send(
        "D",
        &order(&[
            (11, "ord-2"),
            (55, "BTCUSDT"),
            (207, "binance"),
            (54, "1"),
            (38, "0.001"),
            (40, "1"),
            (59, "3"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let filled = desk.expect("Filled", |f| {
        get(f, 35) == Some("8") && get(f, 39) == Some("2")
    });
    assert_eq!(get(&filled, 150), Some("F"));
    assert_eq!(get(&filled, 14), Some("0.001"));

    // Unknown symbol: an order reject from the gateway.
    desk.send(
        "D",
        &order(&[
            (11, "ord-3"),
            (55, "NOPE"),
            (54, "1"),
            (38, "1"),
            (40, "1"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let rejected = desk.expect("Rejected", |f| {
        get(f, 35) == Some("8") && get(f, 150) == Some("8")
    });
    assert_eq!(get(&rejected, 11), Some("ord-3"));

    // Positions: the fill shows.
    desk.send(
        "AN",
        &order(&[
            (710, "pos-1"),
            (724, "0"),
            (1, "desk-1"),
            (581, "1"),
            (715, "20240101"),
            (60, "20240101-00:00:00"),
        ]),
    );
    let ack = desk.expect("positions ack", |f| get(f, 35) == Some("AO"));
    assert_eq!(get(&ack, 727), Some("1"));
    let report = desk.expect("position report", |f| get(f, 35) == Some("AP"));
    assert_eq!(get(&report, 704), Some("0.001"));

    // A trader may not use the admin message; the admin session may.
    desk.send("U1", &order(&[(20000, "adm-1"), (20001, "S")]));
    desk.expect("business reject", |f| get(f, 35) == Some("j"));
    let mut admin = Client::connect(address, "DESK-ADMIN", "admin-demo", true);
    admin.expect("admin logon", |f| get(f, 35) == Some("A"));
    admin.send("U1", &order(&[(20000, "adm-2"), (20001, "S")]));
    let state = admin.expect("risk state", |f| get(f, 35) == Some("U2"));
    assert_eq!(get(&state, 20002), Some("0"));
    let json: serde_json::Value = serde_json::from_str(get(&state, 20003).unwrap()).unwrap();
    assert_eq!(json["risk"]["accounts"][1]["name"], "desk-1");

    // A wrong password is refused.
    let mut intruder = Client::connect(address, "DESK", "guess", false);
    let refused = intruder.expect("logout", |f| get(f, 35) == Some("5"));
    assert!(get(&refused, 58).is_some());

    desk.send("5", &[]);
    desk.expect("logout", |f| get(f, 35) == Some("5"));
    let desk_seq = desk.seq;
    started.running.stop_handle().request_stop();
    let finished = started.wait();
    assert!(!finished.report.failed);

    // Everything the desk sent is journaled on its stream, with the session events.
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let (mut commands, mut sessions) = (0, 0);
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        if envelope.header.stream.0 != 901 {
            continue;
        }
        match RecordKind::try_from(envelope.header.kind) {
            Ok(RecordKind::OrderCommand) => {
                assert!(envelope.payload::<OrderCommand>().is_some());
                commands += 1;
            }
            Ok(RecordKind::Control) => {
                let control = *envelope.payload::<Control>().unwrap();
                assert_eq!(control.action(), Some(ControlAction::DeskSession));
                sessions += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        commands, 4,
        "D, G, F, D (market); the unknown symbol never reached it"
    );
    assert!(
        sessions >= 4,
        "logons, logouts and the refused logon: {sessions}"
    );

    // After a restart the session goes on from its numbers, and a resend request gets the
    // execution reports again (possible duplicates) with gap fills for the rest.
    let started = start(&data);
    let address = started.fix_address.unwrap();
    let mut desk = Client {
        stream: TcpStream::connect(address).unwrap(),
        buf: Vec::new(),
        seq: desk_seq,
        sender: "DESK".to_owned(),
        encoder: Encoder::new(1024),
    };
    desk.send(
        "A",
        &order(&[(98, "0"), (108, "30"), (553, "desk"), (554, "desk-demo")]),
    );
    let logon = desk.expect("logon after restart", |f| get(f, 35) == Some("A"));
    assert_ne!(get(&logon, 34), Some("1"), "the engine's numbers went on");
    desk.send("2", &order(&[(7, "1"), (16, "0")]));
    let resent = desk.expect("a resent execution report", |f| {
        get(f, 35) == Some("8") && get(f, 43) == Some("Y") && get(f, 122).is_some()
    });
    assert!(get(&resent, 11).is_some());
    started.running.stop_handle().request_stop();
    started.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
