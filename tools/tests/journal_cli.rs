//! End-to-end tests of the `aaiti-journal` binary on journals written with `JournalWriter`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests unwrap and panic on failure"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aaiti_journal::{Durability, JournalConfig, JournalWriter, Maintenance};
use aaiti_model::{
    AccountId, BookAction, BookDelta, ClientOrderId, Envelope, FeedEvent, FeedEventKind,
    InstrumentId, OrderAction, OrderCommand, OrderEvent, OrderEventKind, OrderId, OrderType, Price,
    Qty, Record, RecordHeader, RejectReason, RiskEvent, RiskEventKind, Side, StreamId, TimeInForce,
    Trade, UnixNanos, VenueId,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_aaiti-journal");
/// 2024-08-09T00:00:00Z.
const T0: u64 = 1_723_161_600_000_000_000;
const T1: u64 = T0 + 1_000_000;
const T2: u64 = T0 + 1_000_000_000;
/// Book deltas appended after the mixed records (enough for several 64 KiB segments).
const BULK: u64 = 2000;
const MIXED: u64 = 15;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "aaiti-journal-cli-{name}-{}-{nanos}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> JournalConfig {
    JournalConfig {
        segment_size_bytes: 64 << 10,
        durability: Durability::None,
        prefault: false,
        prefault_window_bytes: 64 << 10,
        maintenance: Maintenance::Manual,
    }
}

fn env<R: Record>(stream: u16, seq: u64, ts_event: u64, ts_recv: u64, record: &R) -> Envelope {
    let header = RecordHeader::new(
        StreamId(stream),
        seq,
        UnixNanos(ts_event),
        UnixNanos(ts_recv),
    );
    Envelope::new(header, record)
}

fn cl(text: &str) -> ClientOrderId {
    ClientOrderId::new(text.as_bytes()).unwrap()
}

fn new_order(text: &str, account: u32, side: Side) -> OrderCommand {
    OrderCommand {
        action: OrderAction::New.code(),
        side: side.code(),
        order_type: OrderType::Limit.code(),
        time_in_force: TimeInForce::Gtc.code(),
        account: AccountId(account),
        instrument: InstrumentId(0),
        price: Price(6_170_000),
        qty: Qty(200_000),
        client_order_id: cl(text),
        ..OrderCommand::default()
    }
}

fn order_event(kind: OrderEventKind, id: u64, text: &str, account: u32) -> OrderEvent {
    OrderEvent {
        kind: kind.code(),
        side: Side::Buy.code(),
        account: AccountId(account),
        instrument: InstrumentId(0),
        order_id: OrderId(id),
        price: Price(6_170_000),
        client_order_id: cl(text),
        ..OrderEvent::default()
    }
}

fn delta(side: Side, price: i64, venue_seq: u64) -> BookDelta {
    BookDelta {
        instrument: InstrumentId(0),
        side: side.code(),
        action: BookAction::Set.code(),
        flags: BookDelta::FLAG_LAST,
        price: Price(price),
        qty: Qty(150_000_000),
        venue_seq,
        ..BookDelta::default()
    }
}

/// Writes the fixture journal into `dir`:
///
/// | seq | record |
/// |---|---|
/// | 1, 2 | book deltas (stream 1), recv - event = 1 us, 2 us |
/// | 3 | trade BTCUSDT (stream 1), 3 us |
/// | 4 | feed event on ADA/XBT (stream 1), 4 us |
/// | 5 | trade ADA/XBT (stream 5) |
/// | 6 | New C1 (account 7) at T1 |
/// | 7 | FIX blob with 11=C1 at T1 + 5 us |
/// | 8 | accepted 1001/C1 at T1 + 10 us |
/// | 9 | New C2 (account 8) at T1 + 20 us |
/// | 10 | risk reject of 1002 at T1 + 25 us |
/// | 11 | rejected 1002/C2 at T1 + 27 us |
/// | 12 | partial fill 1001/C1 at T1 + 50 us |
/// | 13 | cancel C1-X of 1001 at T1 + 60 us |
/// | 14 | canceled 1001/C1-X at T1 + 90 us |
/// | 15 | binary blob |
/// | 16.. | `BULK` book deltas (stream 1), ts_recv = T2 + i us |
fn write_fixture(dir: &Path) {
    let mut w = JournalWriter::open(dir, config()).unwrap();
    w.append_envelope(&env(
        1,
        1,
        T0,
        T0 + 1_000,
        &delta(Side::Buy, 6_173_763, 100),
    ))
    .unwrap();
    w.append_envelope(&env(
        1,
        2,
        T0 + 10_000,
        T0 + 12_000,
        &delta(Side::Sell, 6_173_764, 101),
    ))
    .unwrap();
    let trade = Trade {
        instrument: InstrumentId(0),
        aggressor: Side::Buy.code(),
        price: Price(6_173_764),
        qty: Qty(100_000),
        trade_id: 77,
        ..Trade::default()
    };
    w.append_envelope(&env(1, 3, T0 + 20_000, T0 + 23_000, &trade))
        .unwrap();
    let feed = FeedEvent {
        instrument: InstrumentId(1),
        kind: FeedEventKind::BookValid.code(),
        venue: VenueId(1),
        ..FeedEvent::default()
    };
    w.append_envelope(&env(1, 4, T0 + 30_000, T0 + 34_000, &feed))
        .unwrap();
    let ada = Trade {
        instrument: InstrumentId(1),
        price: Price(123),
        qty: Qty(5_00000000),
        ..Trade::default()
    };
    w.append_envelope(&env(5, 1, 0, T0 + 40_000, &ada)).unwrap();
    w.append_envelope(&env(2, 1, 0, T1, &new_order("C1", 7, Side::Buy)))
        .unwrap();
    w.append_blob(
        7,
        UnixNanos(T1 + 5_000),
        b"8=FIX.4.4\x0135=D\x0111=C1\x0155=BTCUSDT\x01",
    )
    .unwrap();
    let accepted = order_event(OrderEventKind::Accepted, 1001, "C1", 7);
    w.append_envelope(&env(3, 1, 0, T1 + 10_000, &accepted))
        .unwrap();
    w.append_envelope(&env(2, 2, 0, T1 + 20_000, &new_order("C2", 8, Side::Sell)))
        .unwrap();
    let risk = RiskEvent {
        kind: RiskEventKind::CheckRejected.code(),
        reason: RejectReason::MaxOrderQty.code(),
        account: AccountId(8),
        instrument: InstrumentId(0),
        order_id: OrderId(1002),
        value: 200_000,
        limit: 100_000,
        ..RiskEvent::default()
    };
    w.append_envelope(&env(3, 2, 0, T1 + 25_000, &risk))
        .unwrap();
    let mut rejected = order_event(OrderEventKind::Rejected, 1002, "C2", 8);
    rejected.reject_reason = RejectReason::MaxOrderQty.code();
    rejected.side = Side::Sell.code();
    w.append_envelope(&env(3, 3, 0, T1 + 27_000, &rejected))
        .unwrap();
    let mut fill = order_event(OrderEventKind::PartiallyFilled, 1001, "C1", 7);
    fill.last_price = Price(6_170_000);
    fill.last_qty = Qty(100_000);
    fill.cum_qty = Qty(100_000);
    fill.leaves_qty = Qty(100_000);
    w.append_envelope(&env(3, 4, 0, T1 + 50_000, &fill))
        .unwrap();
    let cancel = OrderCommand {
        action: OrderAction::Cancel.code(),
        account: AccountId(7),
        instrument: InstrumentId(0),
        order_id: OrderId(1001),
        client_order_id: cl("C1-X"),
        orig_client_order_id: cl("C1"),
        ..OrderCommand::default()
    };
    w.append_envelope(&env(2, 3, 0, T1 + 60_000, &cancel))
        .unwrap();
    let canceled = order_event(OrderEventKind::Canceled, 1001, "C1-X", 7);
    w.append_envelope(&env(3, 5, 0, T1 + 90_000, &canceled))
        .unwrap();
    w.append_blob(9, UnixNanos(T1 + 95_000), &[0, 1, 2, 0xff])
        .unwrap();
    for i in 0..BULK {
        let ts = T2 + i * 1_000;
        let d = delta(Side::Buy, 6_000_000 + i as i64, 1_000 + i);
        w.append_envelope(&env(1, 5 + i, ts - 500, ts, &d)).unwrap();
    }
    w.commit().unwrap();
}

/// A data directory (`<tmp>/journal`) holding the fixture.
fn fixture(name: &str) -> TempDir {
    let tmp = TempDir::new(name);
    write_fixture(&tmp.0.join("journal"));
    tmp
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.code, 0,
        "{args:?}: stderr {}\nstdout {}",
        out.stderr, out.stdout
    );
    // Nothing on stderr: no progress bar when it is not a terminal, no warning.
    assert!(out.stderr.is_empty(), "{args:?}: {}", out.stderr);
    out.stdout
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|v| v["seq"].as_u64().unwrap()).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file's bytes under `dir`, sorted by name.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn stats_counts_everything_by_kind() {
    let tmp = fixture("stats");
    let data_dir = p(&tmp.0);
    let v: Value = serde_json::from_str(&run_ok(&["stats", data_dir, "--json"])).unwrap();
    assert_eq!(v["records"], MIXED + BULK);
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["last_seq"], MIXED + BULK);
    assert_eq!(v["blobs"], 2);
    assert_eq!(v["envelopes"], MIXED + BULK - 2);
    assert!(v["segments"].as_array().unwrap().len() >= 2, "{v}");
    let kinds = &v["by_kind"];
    assert_eq!(kinds["book_delta"], 2 + BULK);
    assert_eq!(kinds["trade"], 2);
    assert_eq!(kinds["feed_event"], 1);
    assert_eq!(kinds["order_command"], 3);
    assert_eq!(kinds["order_event"], 4);
    assert_eq!(kinds["risk_event"], 1);
    assert_eq!(v["by_feed_event_kind"]["book_valid"], 1);
    let events = &v["by_order_event_kind"];
    for kind in ["accepted", "rejected", "partially_filled", "canceled"] {
        assert_eq!(events[kind], 1, "{kind}");
    }
    assert_eq!(v["by_instrument"]["ADA/XBT"], 2);
    assert_eq!(v["ts_recv_min"], T0 + 1_000);
    assert_eq!(v["ts_recv_max"], T2 + (BULK - 1) * 1_000);
    assert!(v["records_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["torn_tail"].is_null());
    // Segment sequence ranges tile the journal.
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs[0]["first_ts_recv"], T0 + 1_000);
    let mut next = 1;
    for s in segs {
        assert_eq!(s["first_seq"], next);
        next = s["last_seq"].as_u64().unwrap() + 1;
    }
    assert_eq!(next, MIXED + BULK + 1);

    // `info` is the same command; the journal directory itself is accepted too; text works.
    let text = run_ok(&["info", p(&tmp.0.join("journal"))]);
    assert!(text.contains("order_event"), "{text}");
    assert!(text.contains("2015 (sequences 1..=2015)"), "{text}");
}

#[test]
fn dump_renders_and_filters() {
    let tmp = fixture("dump");
    let dir = p(&tmp.0);

    // Everything, as JSON lines that parse back.
    let all = json_lines(&run_ok(&["dump", dir, "--json"]));
    assert_eq!(all.len() as u64, MIXED + BULK);
    assert_eq!(seqs(&all)[..3], [1, 2, 3]);
    let first = &all[0];
    assert_eq!(first["kind"], "book_delta");
    assert_eq!(first["stream"], 1);
    assert_eq!(first["stream_seq"], 1);
    assert_eq!(first["ts_recv"], T0 + 1_000);
    assert_eq!(first["time"], "2024-08-09T00:00:00.000001000Z");
    let payload = &first["payload"];
    assert_eq!(payload["symbol"], "BTCUSDT");
    assert_eq!(payload["side"], "buy");
    assert_eq!(payload["action"], "set");
    assert_eq!(payload["flags"], "last");
    assert_eq!(payload["price"], "61737.63");
    assert_eq!(payload["price_raw"], 6_173_763);
    assert_eq!(payload["qty"], "1.50000000");
    // ADA/XBT has 9 price decimals.
    assert_eq!(all[4]["payload"]["price"], "0.000000123");
    // Blobs: FIX text escaped, binary as hex.
    assert_eq!(all[6]["kind"], "blob");
    assert_eq!(all[6]["blob_kind"], 7);
    assert_eq!(
        all[6]["text"],
        "8=FIX.4.4\u{1}35=D\u{1}11=C1\u{1}55=BTCUSDT\u{1}"
    );
    assert_eq!(all[14]["hex"], "000102ff");

    // Text lines name the fields, with the symbol and the scaled price.
    let text = run_ok(&["dump", dir, "--to-seq", "7"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(
        lines[0].contains("2024-08-09T00:00:00.000001000Z"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("book_delta"));
    assert!(
        lines[0].contains("BTCUSDT") && lines[0].contains("price=61737.63"),
        "{}",
        lines[0]
    );
    assert!(lines[6].contains(r#""8=FIX.4.4\x0135=D"#), "{}", lines[6]);

    // By kind.
    let trades = json_lines(&run_ok(&[
        "dump",
        dir,
        "--json",
        "--kind",
        "trade,risk_event",
    ]));
    assert_eq!(seqs(&trades), [3, 5, 10]);
    let blobs = json_lines(&run_ok(&["dump", dir, "--json", "--kind", "blob"]));
    assert_eq!(seqs(&blobs), [7, 15]);

    // By instrument, symbol or id.
    let ada = json_lines(&run_ok(&["dump", dir, "--json", "--instrument", "ADA/XBT"]));
    assert_eq!(seqs(&ada), [4, 5]);
    let ada_by_id = json_lines(&run_ok(&["dump", dir, "--json", "--instrument", "1"]));
    assert_eq!(seqs(&ada_by_id), [4, 5]);

    // By account and by order (engine id or client order id).
    let acct = json_lines(&run_ok(&["dump", dir, "--json", "--account", "8"]));
    assert_eq!(seqs(&acct), [9, 10, 11]);
    let order = json_lines(&run_ok(&["dump", dir, "--json", "--order", "1001"]));
    assert_eq!(seqs(&order), [8, 12, 13, 14]);
    let by_cl = json_lines(&run_ok(&["dump", dir, "--json", "--order", "C2"]));
    assert_eq!(seqs(&by_cl), [9, 11]);

    // Sequence ranges across segments, and a limit.
    let range = json_lines(&run_ok(&[
        "dump",
        dir,
        "--json",
        "--from-seq",
        "900",
        "--to-seq",
        "1700",
    ]));
    assert_eq!(range.len(), 801);
    assert_eq!(
        (range[0]["seq"].as_u64(), range[800]["seq"].as_u64()),
        (Some(900), Some(1700))
    );
    let limited = json_lines(&run_ok(&[
        "dump",
        dir,
        "--json",
        "--from-seq",
        "10",
        "--limit",
        "3",
    ]));
    assert_eq!(seqs(&limited), [10, 11, 12]);

    // Time ranges, RFC 3339 and nanoseconds.
    let from = "2024-08-09T00:00:00.001Z"; // T1
    let to = (T1 + 27_000).to_string();
    let window = json_lines(&run_ok(&[
        "dump",
        dir,
        "--json",
        "--from-time",
        from,
        "--to-time",
        &to,
    ]));
    assert_eq!(seqs(&window), [6, 7, 8, 9, 10, 11]);
    let late = T2 + 1_500 * 1_000;
    let tail = json_lines(&run_ok(&[
        "dump",
        dir,
        "--json",
        "--from-time",
        &late.to_string(),
    ]));
    assert_eq!(tail.len() as u64, BULK - 1_500);
    assert_eq!(tail[0]["ts_recv"], late);

    // Bad filter values are usage errors.
    let bad = run(&["dump", dir, "--kind", "trades"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("unknown record kind"), "{}", bad.stderr);
    let bad = run(&["dump", dir, "--instrument", "NOPE"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    let bad = run(&["dump", dir, "--from-time", "yesterday"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn verify_passes_a_clean_journal() {
    let tmp = fixture("verify-clean");
    let out = run(&["verify", p(&tmp.0)]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("OK: 2015 records"), "{}", out.stdout);
    let v: Value = serde_json::from_str(&run_ok(&["verify", p(&tmp.0), "--json"])).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["records"], MIXED + BULK);
}

/// Flips one byte of `file` at `offset`.
fn flip(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(file, bytes).unwrap();
}

fn assert_verify_fails(data_dir: &Path, expect: &str) -> Output {
    let journal = data_dir.join("journal");
    let before = snapshot(&journal);
    let out = run(&["verify", p(data_dir)]);
    assert_eq!(out.code, 1, "stdout {}\nstderr {}", out.stdout, out.stderr);
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    assert!(
        out.stdout.contains(expect),
        "expected {expect:?} in {}",
        out.stdout
    );
    // Read-only: every byte as before.
    assert!(
        snapshot(&journal) == before,
        "verify changed the journal files"
    );
    out
}

/// As [`assert_verify_fails`], and other commands refuse the journal cleanly (no panic).
fn assert_unreadable(data_dir: &Path, expect: &str) -> Output {
    let out = assert_verify_fails(data_dir, expect);
    let dump = run(&["dump", p(data_dir)]);
    assert_eq!(dump.code, 1, "{}", dump.stderr);
    assert!(
        dump.stderr.starts_with("aaiti-journal: "),
        "{}",
        dump.stderr
    );
    assert!(!dump.stderr.contains("panicked"), "{}", dump.stderr);
    out
}

#[test]
fn verify_reports_a_garbled_frame_and_changes_nothing() {
    let tmp = fixture("verify-garbled");
    // A byte in the middle of the first segment: followed by valid records, so not a tail.
    let seg0 = tmp.0.join("journal/journal-00000000.seg");
    flip(&seg0, 64 + 20_000);
    let out = assert_unreadable(&tmp.0, "corrupt record in segment 0");
    assert!(
        out.stdout.contains("ERROR: [segment 0, offset"),
        "{}",
        out.stdout
    );
}

#[test]
fn verify_reports_a_torn_tail_without_cutting_it() {
    let tmp = fixture("verify-torn");
    let journal = tmp.0.join("journal");
    let last = snapshot(&journal)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .unwrap();
    // The last frame of the last started segment: find its end (the data is zero after it).
    let bytes = std::fs::read(&last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    flip(&last, end - 8);
    let out = assert_verify_fails(&tmp.0, "torn tail");
    assert!(out.stdout.contains("seq 2015"), "{}", out.stdout);
    // Other commands read what precedes it, and warn.
    let dump = run(&["dump", p(&tmp.0), "--json"]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    assert_eq!(dump.stdout.lines().count() as u64, MIXED + BULK - 1);
    assert!(
        dump.stderr.contains("warning") && dump.stderr.contains("torn tail"),
        "{}",
        dump.stderr
    );
}

#[test]
fn verify_rejects_another_format_version() {
    let tmp = fixture("verify-version");
    let seg0 = tmp.0.join("journal/journal-00000000.seg");
    let mut bytes = std::fs::read(&seg0).unwrap();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&seg0, bytes).unwrap();
    assert_unreadable(&tmp.0, "format version 2");
}

#[test]
fn verify_rejects_things_that_are_not_journals() {
    let tmp = TempDir::new("not-journal");
    // A directory of something else.
    std::fs::write(tmp.0.join("notes.txt"), "hello").unwrap();
    let out = run(&["verify", p(&tmp.0)]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("neither a journal directory"),
        "{}",
        out.stdout
    );
    // A file.
    let out = run(&["verify", p(&tmp.0.join("notes.txt"))]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("is a file"), "{}", out.stdout);
    // A missing path is an I/O error.
    let out = run(&["stats", p(&tmp.0.join("missing"))]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("No such file"), "{}", out.stderr);
    // Segment-named files that are not segments: garbage, truncated, empty.
    let journal = tmp.0.join("journal");
    std::fs::create_dir(&journal).unwrap();
    let seg = journal.join("journal-00000000.seg");
    for (bytes, expect) in [
        (vec![0x55u8; 4096], "not a journal segment"),
        (b"AAITIJNL\x01\x00".to_vec(), "truncated segment header"),
        (Vec::new(), "empty file"),
    ] {
        std::fs::write(&seg, &bytes).unwrap();
        let out = run(&["verify", p(&tmp.0)]);
        assert_eq!(out.code, 1, "{expect}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(expect), "{expect}: {}", out.stdout);
        assert_eq!(std::fs::read(&seg).unwrap(), bytes, "file changed");
        let stats = run(&["stats", p(&tmp.0), "--json"]);
        assert_eq!(stats.code, 1);
        assert!(stats.stderr.contains(expect), "{}", stats.stderr);
    }
}

#[test]
fn verify_finds_per_stream_gaps() {
    let tmp = TempDir::new("stream-gap");
    let dir = tmp.0.join("journal");
    let mut w = JournalWriter::open(&dir, config()).unwrap();
    for seq in [1, 2, 3, 5, 6] {
        let d = delta(Side::Buy, 100, seq);
        w.append_envelope(&env(1, seq, T0, T0 + seq, &d)).unwrap();
    }
    w.commit().unwrap();
    drop(w);
    let out = run(&["verify", p(&dir)]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("stream 1: sequence jumps from 3 to 5 (1 records missing)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("seq 4]"), "{}", out.stdout);
}

#[test]
fn order_shows_the_lifecycle_with_latencies() {
    let tmp = fixture("order");
    let v: Value = serde_json::from_str(&run_ok(&["order", p(&tmp.0), "1001", "--json"])).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(seqs(steps), [6, 7, 8, 12, 13, 14]);
    let since_prev: Vec<i64> = steps
        .iter()
        .map(|s| s["since_prev_ns"].as_i64().unwrap())
        .collect();
    assert_eq!(since_prev, [0, 5_000, 5_000, 40_000, 10_000, 30_000]);
    assert_eq!(steps[5]["since_first_ns"], 90_000);
    let lat = &v["latencies_ns"];
    assert_eq!(lat["command_to_first_event"], 10_000);
    assert_eq!(lat["command_to_accepted"], 10_000);
    assert_eq!(lat["command_to_first_fill"], 50_000);
    assert_eq!(lat["command_to_done"], 90_000);
    assert_eq!(lat["cancel_to_canceled"], 30_000);
    assert_eq!(v["client_order_ids"], serde_json::json!(["C1", "C1-X"]));

    // By client order id, with the risk decision linked through the order id.
    let text = run_ok(&["order", p(&tmp.0), "C2"]);
    assert!(text.contains("3 steps"), "{text}");
    assert!(
        text.contains("risk_event") && text.contains("reason=max_order_qty"),
        "{text}"
    );
    assert!(
        text.contains("command_to_rejected") && text.contains("7.000us"),
        "{text}"
    );

    let missing = run(&["order", p(&tmp.0), "999"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("no order command"),
        "{}",
        missing.stderr
    );
}

#[test]
fn latency_percentiles_match_known_deltas() {
    let tmp = fixture("latency");
    let hgrm = tmp.0.join("ack.hgrm");
    let v: Value = serde_json::from_str(&run_ok(&["latency", p(&tmp.0), "--json"])).unwrap();
    let stage = |name: &str| {
        v["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stage {name} in {v}"))
            .clone()
    };
    let close = |value: &Value, want: u64| {
        let got = value.as_u64().unwrap();
        // Three significant figures.
        assert!(got >= want && got <= want + want / 1000, "{got} vs {want}");
    };
    let ack = stage("order.command_to_ack");
    assert_eq!(ack["count"], 2);
    close(&ack["min"], 7_000);
    close(&ack["p50"], 7_000);
    close(&ack["max"], 10_000);
    close(&stage("order.command_to_first_fill")["p50"], 50_000);
    close(&stage("order.cancel_to_canceled")["max"], 30_000);
    close(&stage("order.command_to_rejected")["p50"], 7_000);
    // Market data: 2 deltas at 1 and 2 us, then BULK at 0.5 us.
    let md = stage("wire.book_delta.s1");
    assert_eq!(md["count"], 2 + BULK);
    close(&md["p50"], 500);
    close(&md["max"], 2_000);
    close(&stage("wire.trade.s1")["p50"], 3_000);
    close(&stage("wire.feed_event.s1")["p50"], 4_000);

    // Filters apply before measuring; --hgrm writes one stage's distribution.
    let text = run_ok(&[
        "latency",
        p(&tmp.0),
        "--to-seq",
        "15",
        "--stage",
        "command_to_ack",
        "--hgrm",
        p(&hgrm),
    ]);
    assert!(text.contains("order.command_to_ack"), "{text}");
    assert!(!text.contains("wire."), "{text}");
    let hgrm_text = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        hgrm_text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"),
        "{hgrm_text}"
    );
    assert!(
        hgrm_text.contains("#[Max     =       10.007, Total count    =            2]"),
        "{hgrm_text}"
    );
    // Several stages selected for one file is a usage error.
    let out = run(&["latency", p(&tmp.0), "--hgrm", p(&hgrm)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let dir = tmp.0.join("hgrm");
    run_ok(&[
        "latency",
        p(&tmp.0),
        "--stage",
        "order.",
        "--hgrm-dir",
        p(&dir),
    ]);
    assert!(dir.join("order.cancel_to_canceled.hgrm").is_file());
}

#[test]
fn export_writes_csv_and_json_lines() {
    let tmp = fixture("export");
    let csv = tmp.0.join("deltas.csv");
    run_ok(&[
        "export",
        p(&tmp.0),
        "--format",
        "csv",
        "--kind",
        "book_delta",
        "--out",
        p(&csv),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, 1 + 2 + BULK);
    assert_eq!(
        lines[0],
        "seq,time,ts_recv,ts_event,stream,stream_seq,header_flags,instrument,symbol,side,action,\
         flags,price,price_raw,qty,qty_raw,venue_seq"
    );
    assert_eq!(
        lines[1],
        format!(
            "1,2024-08-09T00:00:00.000001000Z,{},{T0},1,1,0,0,BTCUSDT,buy,set,last,61737.63,6173763,1.50000000,150000000,100",
            T0 + 1_000
        )
    );
    let columns = lines[0].split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == columns));

    // Order commands: client order ids and blank "none" cells.
    let out = run_ok(&["export", p(&tmp.0), "--kind", "order_command"]);
    assert_eq!(out.lines().count(), 4);
    assert!(out.lines().nth(3).unwrap().ends_with(",C1-X,C1"), "{out}");

    // JSON lines: any kinds, with filters.
    let jsonl = run_ok(&[
        "export",
        p(&tmp.0),
        "--format",
        "jsonl",
        "--kind",
        "order_event,blob",
    ]);
    assert_eq!(seqs(&json_lines(&jsonl)), [7, 8, 11, 12, 14, 15]);

    // CSV needs exactly one kind.
    let out = run(&["export", p(&tmp.0), "--format", "csv"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("exactly one --kind"), "{}", out.stderr);
}

#[test]
fn tail_shows_the_last_records() {
    let tmp = fixture("tail");
    let last = json_lines(&run_ok(&["tail", p(&tmp.0), "-n", "3", "--json"]));
    assert_eq!(
        seqs(&last),
        [MIXED + BULK - 2, MIXED + BULK - 1, MIXED + BULK]
    );
    let filtered = json_lines(&run_ok(&[
        "tail",
        p(&tmp.0),
        "-n",
        "2",
        "--json",
        "--kind",
        "order_event",
    ]));
    assert_eq!(seqs(&filtered), [12, 14]);
}

#[test]
fn tail_follow_picks_up_appended_records() {
    let tmp = TempDir::new("tail-follow");
    let dir = tmp.0.join("journal");
    let mut w = JournalWriter::open(&dir, config()).unwrap();
    for seq in 1..=3 {
        w.append_envelope(&env(1, seq, T0, T0 + seq, &delta(Side::Buy, 100, seq)))
            .unwrap();
    }
    w.commit().unwrap();

    let mut child = Command::new(BIN)
        .args(["tail", p(&dir), "-f", "-n", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got: Vec<u64> = Vec::new();
    let next_line = |got: &mut Vec<u64>| {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("tail -f printed nothing in time");
        let v: Value = serde_json::from_str(&line).unwrap();
        got.push(v["seq"].as_u64().unwrap());
    };
    next_line(&mut got);
    next_line(&mut got);
    assert_eq!(got, [2, 3]);
    // A writer thread appends, enough to roll into new segments.
    let writer = std::thread::spawn(move || {
        for seq in 4..=1_200 {
            w.append_envelope(&env(1, seq, T0, T0 + seq, &delta(Side::Buy, 100, seq)))
                .unwrap();
            if seq % 100 == 0 {
                w.commit().unwrap();
                w.maintain();
            }
        }
        w.commit().unwrap();
        w
    });
    while got.len() < 1_199 {
        next_line(&mut got);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(writer.join().unwrap());
    assert_eq!(got, (2..=1_200).collect::<Vec<u64>>());
}
