//! Tests of the FIX load generator against the in-process responder and against scripted
//! acceptors written here with the gateway's codec.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests unwrap and panic on failure"
)]

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use aaiti_gateway::fix::codec::{Encoder, Framing, Parser, frame};
use aaiti_model::UnixNanos;
use aaiti_tools::fixload::{LoadConfig, LoadError, Mix, ResponderConfig, run, start_responder};

/// Any free port on the loopback interface.
fn localhost() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

/// A short run against `addr`.
fn config(addr: SocketAddr) -> LoadConfig {
    let mut config = LoadConfig::new(addr);
    config.duration = Duration::from_millis(500);
    config.warmup = Duration::ZERO;
    config.drain_timeout = Duration::from_secs(2);
    config.logon_timeout = Duration::from_secs(3);
    config
}

/// A received message, owned.
#[derive(Debug, Clone)]
struct Msg(Vec<(u32, String)>);

impl Msg {
    fn get(&self, tag: u32) -> Option<&str> {
        self.0
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, value)| value.as_str())
    }

    fn msg_type(&self) -> &str {
        self.get(35).unwrap()
    }

    fn seq(&self) -> u64 {
        self.get(34).unwrap().parse().unwrap()
    }
}

/// One side of a FIX connection driven by a test: a scripted acceptor, or a client of the
/// responder.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    parser: Parser,
    encoder: Encoder,
    sender: String,
    target: String,
    next_seq: u64,
}

impl Peer {
    fn new(stream: TcpStream, sender: &str, target: &str) -> Self {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: Vec::new(),
            parser: Parser::new(),
            encoder: Encoder::new(1024),
            sender: sender.to_owned(),
            target: target.to_owned(),
            next_seq: 1,
        }
    }

    /// The next message; `None` at EOF or after the read timeout.
    fn recv(&mut self) -> Option<Msg> {
        loop {
            match frame(&self.buf, 1 << 16) {
                Framing::Complete(len) => {
                    let bytes: Vec<u8> = self.buf.drain(..len).collect();
                    let msg = self.parser.parse(&bytes).unwrap();
                    let fields = msg
                        .fields()
                        .iter()
                        .map(|f| (f.tag, String::from_utf8_lossy(msg.value(f)).into_owned()))
                        .collect();
                    return Some(Msg(fields));
                }
                Framing::Incomplete => {}
                other => panic!("bad framing {other:?}"),
            }
            let mut chunk = [0_u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(error) => panic!("read: {error}"),
            }
        }
    }

    /// The next message that is not a Heartbeat.
    fn recv_skipping_heartbeats(&mut self) -> Option<Msg> {
        loop {
            let msg = self.recv()?;
            if msg.msg_type() != "0" {
                return Some(msg);
            }
        }
    }

    fn send_seq(&mut self, msg_type: &str, seq: u64, fields: &[(u32, &str)]) {
        self.encoder.begin(msg_type.as_bytes());
        self.encoder.str(49, self.sender.as_bytes());
        self.encoder.str(56, self.target.as_bytes());
        self.encoder.uint(34, seq);
        self.encoder
            .timestamp(52, UnixNanos::from_system_time(SystemTime::now()));
        for (tag, value) in fields {
            self.encoder.str(*tag, value.as_bytes());
        }
        let bytes = self.encoder.finish().to_vec();
        // The peer may be gone already in the error tests.
        let _ = self.stream.write_all(&bytes);
    }

    fn send(&mut self, msg_type: &str, fields: &[(u32, &str)]) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.send_seq(msg_type, seq, fields);
    }

    /// Acceptor side: reads the Logon and answers it.
    fn accept_logon(&mut self) -> Msg {
        let logon = self.recv().expect("a Logon");
        assert_eq!(logon.msg_type(), "A");
        let heartbeat = logon.get(108).unwrap().to_owned();
        self.send("A", &[(98, "0"), (108, &heartbeat), (141, "Y")]);
        logon
    }

    /// Acceptor side: a New ExecutionReport for an order request.
    fn ack(&mut self, order: &Msg) {
        let exec_type = match order.msg_type() {
            "D" => "0",
            "F" => "4",
            _ => "5",
        };
        let clordid = order.get(11).unwrap().to_owned();
        self.send(
            "8",
            &[
                (37, "X"),
                (17, "Y"),
                (11, &clordid),
                (150, exec_type),
                (39, "0"),
            ],
        );
    }
}

/// A scripted acceptor on its own thread; `script` gets the connection once it is
/// accepted and returns what the test wants to know.
fn scripted<T: Send + 'static>(
    script: impl FnOnce(&mut Peer) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<T>) {
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut peer = Peer::new(stream, "AAITI", "DESK");
        script(&mut peer)
    });
    (addr, handle)
}

/// Rows of an `.hgrm` file: (value, percentile, total count).
fn hgrm_rows(text: &str) -> Vec<(f64, f64, u64)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    assert_eq!(lines.next(), Some(""));
    lines
        .take_while(|line| !line.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert!(cols.len() == 3 || cols.len() == 4, "{line:?}");
            (
                cols[0].parse().unwrap(),
                cols[1].parse().unwrap(),
                cols[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn open_loop_against_the_responder_acknowledges_everything() {
    let responder = start_responder(localhost()).unwrap();
    let mut config = config(responder.local_addr());
    config.sessions = 2;
    config.rate = 500.0;
    config.duration = Duration::from_secs(1);
    config.warmup = Duration::from_millis(200);
    let report = run(&config).unwrap();
    let counts = responder.stop();

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.unacknowledged, 0);
    // 2 sessions x 500/s x 1 s, scheduled exactly (float rounding may move one order
    // across the end of the window).
    let sent = report.sent.total();
    assert!((998..=1002).contains(&sent), "sent {sent}");
    assert_eq!(report.acked, report.sent);
    assert_eq!(report.rejected, 0);
    assert_eq!(report.latency.len(), sent);
    assert_eq!(report.service.len(), sent);
    // Everything the generator sent, warmup included, reached the responder, as the
    // kinds the report says.
    assert_eq!(counts.logons, 2);
    assert_eq!(
        counts.new_orders + counts.cancels + counts.replaces,
        sent + report.warmup_sent
    );
    assert!(
        (198..=202).contains(&report.warmup_sent),
        "{}",
        report.warmup_sent
    );

    // Latencies are positive, and from the intended time never shorter than from the
    // actual send.
    let latency = report.latency_summary();
    let service = report.service_summary();
    assert!(latency.min_ns > 0 && service.min_ns > 0);
    assert!(latency.p50_ns >= service.p50_ns);
    assert!(latency.max_ns >= service.max_ns);
    assert!(latency.p50_ns < 50_000_000, "p50 {} ns", latency.p50_ns);

    // Throughput about the rate.
    assert!(
        (900.0..=1050.0).contains(&report.throughput),
        "throughput {}",
        report.throughput
    );

    // The mix, 80/10/10: cancels and replaces (or the new orders sent in their place when
    // nothing was open) make up about a fifth.
    let others = report.sent.cancel + report.sent.replace + report.fallback_new;
    let share = others as f64 / sent as f64;
    assert!(
        (0.13..=0.27).contains(&share),
        "cancel/replace share {share}"
    );
    assert!(
        report.sent.cancel > 50 && report.sent.replace > 50,
        "{:?}",
        report.sent
    );
    assert_eq!(report.sent.new - report.fallback_new + others, sent);

    // The .hgrm file: parsable, complete, consistent with the histogram.
    let dir = std::env::temp_dir().join(format!("fixload-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latency.hgrm");
    let mut file = std::fs::File::create(&path).unwrap();
    report.write_hgrm(&mut file).unwrap();
    drop(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let rows = hgrm_rows(&text);
    assert!(rows.len() > 10);
    let (max_us, percentile, total) = *rows.last().unwrap();
    assert_eq!(percentile, 1.0);
    assert_eq!(total, sent);
    assert!(
        rows.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].2 <= w[1].2)
    );
    let max_ns = report.latency.max() as f64;
    assert!((max_us * 1000.0 - max_ns).abs() <= max_ns * 0.001 + 1.0);
    assert!(text.contains(&format!("Total count    = {sent:>12}]")));

    // The JSON report says the same.
    let json = report.to_json();
    assert_eq!(json["acknowledged"]["new"], report.acked.new);
    assert_eq!(json["latency"]["count"], sent);
    assert_eq!(json["errors"].as_array().unwrap().len(), 0);
}

#[test]
fn closed_loop_keeps_the_window_full() {
    let responder = start_responder(localhost()).unwrap();
    let mut config = config(responder.local_addr());
    config.rate = 0.0;
    config.window = 4;
    config.duration = Duration::from_millis(300);
    config.mix = Mix {
        new: 1,
        cancel: 1,
        replace: 1,
    };
    let report = run(&config).unwrap();
    drop(responder);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.unacknowledged, 0);
    assert!(report.sent.total() > 100, "{:?}", report.sent);
    assert_eq!(report.acked, report.sent);
    assert!(report.sent.cancel > 0 && report.sent.replace > 0);
    assert!(report.throughput > 300.0, "{}", report.throughput);
    // Closed loop times from the actual send.
    assert_eq!(report.latency_summary(), report.service_summary());
}

#[test]
fn spinning_responder_and_pinned_generator_answer_everything() {
    let cores = aaiti_core::sys::available_cores();
    let mut responder = ResponderConfig::new(localhost());
    responder.spin = true;
    responder.core = cores.first().copied();
    let responder = responder.start().unwrap();
    let mut config = config(responder.local_addr());
    config.rate = 0.0;
    config.window = 4;
    config.duration = Duration::from_millis(300);
    config.cores = cores.iter().copied().rev().take(1).collect();
    let report = run(&config).unwrap();
    let counts = responder.stop();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.unacknowledged, 0);
    assert!(report.sent.total() > 100, "{:?}", report.sent);
    assert_eq!(report.acked, report.sent);
    // Every request the generator sent (the unmeasured ones included) reached the
    // responder.
    assert_eq!(
        counts.new_orders + counts.cancels + counts.replaces,
        report.sent.total() + report.warmup_sent
    );
    assert_eq!(counts.logons, 1);
}

#[test]
fn responder_answers_logon_test_request_and_orders() {
    let responder = start_responder(localhost()).unwrap();
    let stream = TcpStream::connect(responder.local_addr()).unwrap();
    let mut client = Peer::new(stream, "DESK", "AAITI");
    client.send("A", &[(98, "0"), (108, "30"), (141, "Y")]);
    let logon = client.recv().unwrap();
    assert_eq!(logon.msg_type(), "A");
    assert_eq!(logon.get(49), Some("AAITI"));
    assert_eq!(logon.get(56), Some("DESK"));
    assert_eq!(logon.get(108), Some("30"));
    assert_eq!(logon.get(141), Some("Y"));

    client.send("1", &[(112, "PING-1")]);
    let heartbeat = client.recv().unwrap();
    assert_eq!(heartbeat.msg_type(), "0");
    assert_eq!(heartbeat.get(112), Some("PING-1"));

    let order = [
        (11, "c-1"),
        (1, "acct"),
        (55, "BTCUSDT"),
        (54, "1"),
        (38, "0.5"),
        (40, "2"),
        (44, "100.25"),
    ];
    client.send("D", &order);
    let report = client.recv().unwrap();
    assert_eq!(report.msg_type(), "8");
    for (tag, value) in [
        (11, "c-1"),
        (55, "BTCUSDT"),
        (54, "1"),
        (38, "0.5"),
        (44, "100.25"),
    ] {
        assert_eq!(report.get(tag), Some(value), "tag {tag}");
    }
    assert_eq!(report.get(150), Some("0"));
    assert_eq!(report.get(39), Some("0"));
    assert_eq!(report.get(151), Some("0.5"));
    let first_ids = (
        report.get(37).unwrap().to_owned(),
        report.get(17).unwrap().to_owned(),
    );

    client.send("F", &[(11, "c-2"), (41, "c-1"), (55, "BTCUSDT"), (54, "1")]);
    let canceled = client.recv().unwrap();
    assert_eq!(canceled.get(150), Some("4"));
    assert_eq!(canceled.get(41), Some("c-1"));
    assert_eq!(canceled.get(151), Some("0"));
    assert_ne!(canceled.get(37).unwrap(), first_ids.0);
    assert_ne!(canceled.get(17).unwrap(), first_ids.1);
    assert_eq!(canceled.seq(), report.seq() + 1);

    client.send("5", &[]);
    assert_eq!(client.recv().unwrap().msg_type(), "5");
    assert!(client.recv().is_none(), "closed after the Logout");
    let counts = responder.stop();
    assert_eq!(
        (counts.logons, counts.new_orders, counts.cancels),
        (1, 1, 1)
    );
    assert_eq!(counts.test_requests, 1);
}

#[test]
fn generator_answers_test_request_resend_request_and_fills_gaps() {
    let (addr, acceptor) = scripted(|peer| {
        peer.accept_logon();
        peer.send("1", &[(112, "T-1")]); // seq 2
        peer.send("2", &[(7, "1"), (16, "0")]); // seq 3
        // Skip 4 and 5: the generator asks for them.
        peer.next_seq = 6;
        peer.send("0", &[]);
        let mut heartbeat = None;
        let mut gap_fill = None;
        let mut resend_request = None;
        let mut after_gap_fill = None;
        let mut logout = false;
        while let Some(msg) = peer.recv() {
            match msg.msg_type() {
                "0" if msg.get(112).is_some() => heartbeat = Some(msg),
                "4" => gap_fill = Some(msg),
                "2" => {
                    // Fill the gap the way an acceptor without those messages would.
                    peer.send_seq("4", 4, &[(43, "Y"), (123, "Y"), (36, "6")]);
                    resend_request = Some(msg);
                }
                "D" | "F" | "G" => {
                    if gap_fill.is_some() && after_gap_fill.is_none() {
                        after_gap_fill = Some(msg.clone());
                    }
                    peer.ack(&msg);
                }
                "5" => {
                    peer.send("5", &[]);
                    logout = true;
                    break;
                }
                _ => {}
            }
        }
        (heartbeat, gap_fill, resend_request, after_gap_fill, logout)
    });
    let mut config = config(addr);
    config.rate = 40.0;
    config.mix = Mix {
        new: 1,
        cancel: 0,
        replace: 0,
    };
    let report = run(&config).unwrap();
    let (heartbeat, gap_fill, resend_request, after_gap_fill, logout) = acceptor.join().unwrap();

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.unacknowledged, 0);
    assert!(report.acked.new >= 15, "{:?}", report.acked);
    assert_eq!(report.session.test_requests_answered, 1);
    assert_eq!(report.session.resend_requests_answered, 1);
    assert_eq!(report.session.sequence_gaps, 1);

    let heartbeat = heartbeat.expect("a Heartbeat answering the TestRequest");
    assert_eq!(heartbeat.get(112), Some("T-1"));
    let gap_fill = gap_fill.expect("a SequenceReset-GapFill");
    assert_eq!(gap_fill.seq(), 1, "the gap fill carries BeginSeqNo");
    assert_eq!(gap_fill.get(43), Some("Y"));
    assert_eq!(gap_fill.get(123), Some("Y"));
    assert!(
        gap_fill.get(122).is_some(),
        "OrigSendingTime with PossDupFlag"
    );
    // NewSeqNo is the generator's next number: the next new message carries it.
    let new_seq: u64 = gap_fill.get(36).unwrap().parse().unwrap();
    assert!(new_seq > 1);
    let next = after_gap_fill.expect("orders after the gap fill");
    assert!(next.seq() >= new_seq);
    let resend_request = resend_request.expect("a ResendRequest for the gap");
    assert_eq!(resend_request.get(7), Some("4"));
    assert_eq!(resend_request.get(16), Some("0"));
    assert!(logout, "the generator logs out at the end");
}

#[test]
fn generator_sends_heartbeats_when_idle() {
    let (addr, acceptor) = scripted(|peer| {
        peer.accept_logon();
        let start = Instant::now();
        let mut idle_heartbeat = None;
        while let Some(msg) = peer.recv() {
            match msg.msg_type() {
                "0" if msg.get(112).is_none() && idle_heartbeat.is_none() => {
                    idle_heartbeat = Some(start.elapsed());
                }
                // Keep the generator from declaring the acceptor silent.
                "1" => {
                    let id = msg.get(112).unwrap().to_owned();
                    peer.send("0", &[(112, &id)]);
                }
                "D" => peer.ack(&msg),
                "5" => {
                    peer.send("5", &[]);
                    break;
                }
                _ => {}
            }
        }
        idle_heartbeat
    });
    let mut config = config(addr);
    config.heartbeat_secs = 1;
    // One order at the start, the next would be after the end.
    config.rate = 0.4;
    config.duration = Duration::from_millis(1600);
    let report = run(&config).unwrap();
    let idle_heartbeat = acceptor
        .join()
        .unwrap()
        .expect("a Heartbeat after 1 s idle");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.acked.new, 1);
    assert!(report.session.heartbeats_sent >= 1);
    assert!(
        idle_heartbeat >= Duration::from_millis(900)
            && idle_heartbeat < Duration::from_millis(1500),
        "{idle_heartbeat:?}"
    );
}

#[test]
fn wrong_password_is_a_logon_error() {
    let mut responder = ResponderConfig::new(localhost());
    responder.username = Some("desk".into());
    responder.password = Some("right".into());
    let responder = responder.start().unwrap();
    let mut config = config(responder.local_addr());
    config.sessions = 2;
    config.username = Some("desk".into());
    config.password = Some("wrong".into());
    let started = Instant::now();
    let error = run(&config).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match error {
        LoadError::Logon { reason, .. } => {
            assert!(reason.contains("invalid username or password"), "{reason}");
        }
        other => panic!("expected a logon error, got {other}"),
    }
    // The right password logs on.
    config.password = Some("right".into());
    config.duration = Duration::from_millis(100);
    let report = run(&config).unwrap();
    assert!(report.errors.is_empty());
    assert_eq!(responder.stop().logons, 2);
}

#[test]
fn logout_from_the_acceptor_is_an_error_not_a_hang() {
    let (addr, acceptor) = scripted(|peer| {
        peer.accept_logon();
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            peer.stream
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            if let Some(msg) = peer.recv()
                && msg.msg_type() == "D"
            {
                peer.ack(&msg);
            }
        }
        peer.send("5", &[(58, "maintenance")]);
        peer.stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        // The generator confirms.
        loop {
            match peer.recv_skipping_heartbeats() {
                Some(msg) if msg.msg_type() == "5" => return true,
                Some(_) => {}
                None => return false,
            }
        }
    });
    let mut config = config(addr);
    config.rate = 100.0;
    config.duration = Duration::from_secs(5);
    let started = Instant::now();
    let report = run(&config).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        acceptor.join().unwrap(),
        "the generator answered the Logout"
    );
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("logged out by the acceptor: maintenance"),
        "{:?}",
        report.errors
    );
    assert!(report.acked.new > 5);
}

#[test]
fn a_silent_or_closing_acceptor_fails_the_logon_in_time() {
    // Accepts and never answers.
    let listener = TcpListener::bind(localhost()).unwrap();
    let mut silent = config(listener.local_addr().unwrap());
    silent.logon_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = run(&silent).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&error, LoadError::Logon { reason, .. } if reason.contains("no Logon answer")),
        "{error}"
    );
    drop(listener);

    // Closes the connection on the Logon.
    let (addr, acceptor) = scripted(|peer| {
        peer.recv();
    });
    let error = run(&config(addr)).unwrap_err();
    acceptor.join().unwrap();
    assert!(
        matches!(&error, LoadError::Logon { reason, .. } if reason.contains("closed")),
        "{error}"
    );

    // Nothing listens.
    let port = {
        let probe = TcpListener::bind(localhost()).unwrap();
        probe.local_addr().unwrap()
    };
    assert!(matches!(run(&config(port)), Err(LoadError::Connect { .. })));
}

#[test]
fn rejects_are_counted_by_reason() {
    let (addr, acceptor) = scripted(|peer| {
        peer.accept_logon();
        let mut index = 0;
        while let Some(msg) = peer.recv() {
            match msg.msg_type() {
                "D" => {
                    index += 1;
                    let clordid = msg.get(11).unwrap().to_owned();
                    if index % 2 == 0 {
                        peer.send(
                            "8",
                            &[(11, &clordid), (150, "8"), (39, "8"), (58, "price band")],
                        );
                    } else {
                        let seq = msg.seq().to_string();
                        peer.send("3", &[(45, &seq), (373, "5"), (58, "bad value")]);
                    }
                }
                "5" => {
                    peer.send("5", &[]);
                    break;
                }
                _ => {}
            }
        }
    });
    let mut config = config(addr);
    config.rate = 40.0;
    let report = run(&config).unwrap();
    acceptor.join().unwrap();
    assert_eq!(report.unacknowledged, 0);
    assert_eq!(report.rejected, report.acked.total());
    assert_eq!(report.rejected, report.sent.total());
    let band = report.rejects.get("new: price band").copied().unwrap_or(0);
    let session = report
        .rejects
        .get("new: session reject: bad value")
        .copied()
        .unwrap_or(0);
    assert_eq!(band + session, report.rejected);
    assert!(band > 0 && session > 0, "{:?}", report.rejects);
    assert_eq!(report.session.session_rejects, session);
    // Nothing was accepted, so every cancel or replace became a new order.
    assert_eq!(report.sent.new, report.sent.total());
}

#[test]
fn the_binary_runs_the_responder_and_prints_json() {
    let bin = env!("CARGO_BIN_EXE_aaiti-fixload");
    let mut responder = Command::new(bin)
        .args(["responder", "--listen", "127.0.0.1:0", "--duration", "4"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = responder.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let mut byte = [0_u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 {
            text.push(byte[0] as char);
            if byte[0] == b'\n' {
                let _ = tx.send(text.clone());
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let addr = first.trim().strip_prefix("listening ").unwrap().to_owned();
    let output = Command::new(bin)
        .args([
            "--connect",
            &addr,
            "--rate",
            "200",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
            "--sender",
            "LOAD-{n}",
            "--sessions",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["sessions"], 2);
    assert_eq!(json["unacknowledged"], 0);
    assert!(json["latency"]["p50_ns"].as_u64().unwrap() > 0);
    assert_eq!(json["sent"], json["acknowledged"]);
    let _ = responder.kill();
    let _ = responder.wait();

    // Bad arguments: exit status 2 and a message.
    let output = Command::new(bin)
        .args(["--connect", &addr, "--mix", "new=0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(!output.stderr.is_empty());
}
