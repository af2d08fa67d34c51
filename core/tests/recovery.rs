//! Crash recovery of `aaiti run`: restarts resume from the journal without losing, repeating
//! or reusing a record, including after `SIGKILL` at random moments under load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aaiti_core::config::DEFAULT_CONFIG;
use aaiti_journal::JournalReader;
use aaiti_model::{OrderEvent, OrderEventKind, Side};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-recovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The default configuration (bundled BTCUSDT replay) with yielding threads and small
/// journal segments, so rolls happen during the test.
fn config(dir: &Path) -> PathBuf {
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("segment_size_mb = 256", "segment_size_mb = 1", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1);
    let path = dir.join("aaiti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_args(config: &Path, data: &Path) -> Vec<String> {
    vec![
        "run".into(),
        "--config".into(),
        config.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--speed".into(),
        "50".into(),
    ]
}

/// Checks the journal the way `aaiti-journal verify` does and returns (records, streams):
/// frames verify (the reader checks CRCs, headers and sequence continuity), every envelope
/// validates, and every stream's sequence numbers run 1, 2, 3... with no gap or reuse.
fn verify(journal: &Path) -> (u64, usize) {
    let reader = JournalReader::open(journal).unwrap();
    let mut next = vec![1_u64; usize::from(u16::MAX) + 1];
    let mut records = 0;
    for frame in reader.iter() {
        let envelope = frame
            .envelope()
            .expect("only envelopes are journaled today")
            .unwrap();
        let stream = envelope.header.stream.index();
        assert_eq!(
            envelope.header.seq,
            next[stream],
            "stream {stream} at journal seq {}: expected its seq {}",
            frame.seq(),
            next[stream]
        );
        next[stream] += 1;
        records += 1;
    }
    assert_eq!(records, reader.len());
    (records, next.iter().filter(|&&n| n > 1).count())
}

#[test]
fn restarts_resume_without_reuse() {
    let dir = temp_dir("restart");
    let config = config(&dir);
    let data = dir.join("data");
    let mut previous = 0;
    for round in 0..3 {
        let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
            .args(run_args(&config, &data))
            .args(["--duration", "0.7", "--json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            summary["recovery"]["journal_records"], previous,
            "round {round}"
        );
        let (records, streams) = verify(&data.join("journal"));
        assert!(records > previous, "round {round} journaled nothing");
        assert_eq!(
            streams, 4,
            "the replay's stream, the book's, the signal stage's and the trading stage's"
        );
        previous = records;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_under_load_twenty_times() {
    let dir = temp_dir("kill9");
    let config = config(&dir);
    let data = dir.join("data");
    let mut random = 0x9E37_79B9_7F4A_7C15_u64;
    let mut last_records = 0;
    let mut acknowledged = Vec::new();
    // The suite kills 20 times; the long run sets AAITI_KILLS=200.
    let kills: usize = std::env::var("AAITI_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for kill in 0..kills {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let child = Command::new(env!("CARGO_BIN_EXE_aaiti"))
            .args(run_args(&config, &data))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed while it runs: once its journal exists (start-up loads ONNX Runtime and the
        // model first, which takes a while on a loaded machine), after a random delay.
        let started = std::time::Instant::now();
        while !data.join("journal").exists() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(150 + random % 350));
        let status = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = child;
        let _ = child.wait();
        let (records, _) = verify(&data.join("journal"));
        acknowledged.push(journaled_orders(&data.join("journal")).0);
        assert!(
            records >= last_records,
            "kill {kill}: the journal lost records ({last_records} -> {records})"
        );
        last_records = records;
    }
    // A clean run after the kills resumes and stops normally.
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(run_args(&config, &data))
        .args(["--duration", "0.5", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["report"]["failed"], false);
    assert!(summary["recovery"]["journal_records"].as_u64().unwrap() >= last_records);
    let (records, _) = verify(&data.join("journal"));
    // A long run (AAITI_KILLS=200) may have replayed the whole recording before this run;
    // then there is nothing left to journal.
    assert!(records >= last_records);
    check_orders_and_positions(&data.join("journal"), &acknowledged);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Per order, its journaled events (kind, cum qty) in order; per (account, instrument), the
/// signed sum of journaled fills.
type Orders = BTreeMap<u64, Vec<(u8, i64)>>;

fn journaled_orders(journal: &Path) -> (Orders, BTreeMap<(u32, u32), i64>) {
    let reader = JournalReader::open(journal).unwrap();
    let mut orders = Orders::new();
    let mut positions = BTreeMap::new();
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        let Some(event) = envelope.payload::<OrderEvent>() else {
            continue;
        };
        if event.order_id.0 == 0 {
            continue; // rejected before it got an id
        }
        orders
            .entry(event.order_id.0)
            .or_default()
            .push((event.kind, event.cum_qty.0));
        let kind = OrderEventKind::try_from(event.kind).unwrap();
        if matches!(
            kind,
            OrderEventKind::PartiallyFilled | OrderEventKind::Filled
        ) {
            let sign = Side::try_from(event.side).unwrap().sign();
            *positions
                .entry((event.account.0, event.instrument.0))
                .or_insert(0) += sign * event.last_qty.0;
        }
    }
    positions.retain(|_, qty| *qty != 0);
    (orders, positions)
}

/// Every order acknowledged before a kill still has exactly the events it had then (a
/// prefix of its final history); the engine's positions equal the sums of journaled fills;
/// its working orders are exactly those whose last journaled event is not final.
fn check_orders_and_positions(journal: &Path, acknowledged: &[Orders]) {
    let (orders, positions) = journaled_orders(journal);
    for (kill, before) in acknowledged.iter().enumerate() {
        for (id, events) in before {
            let acked = events
                .iter()
                .any(|(kind, _)| *kind == OrderEventKind::Accepted.code());
            if !acked {
                continue;
            }
            let now = &orders[id];
            assert!(
                now.len() >= events.len() && now[..events.len()] == events[..],
                "kill {kill}: order {id} changed history: {events:?} -> {now:?}"
            );
        }
    }
    let snapshot = newest_snapshot(journal);
    let view =
        aaiti_core::stages::trading::TradingView::from_section(section(&snapshot, "trading"))
            .unwrap();
    let engine_positions: BTreeMap<(u32, u32), i64> = view
        .positions
        .iter()
        .map(|&(account, instrument, qty)| ((account, instrument), qty))
        .collect();
    assert_eq!(
        engine_positions, positions,
        "positions = sum of journaled fills"
    );
    let terminal = [
        OrderEventKind::Filled,
        OrderEventKind::Canceled,
        OrderEventKind::Rejected,
        OrderEventKind::Expired,
    ]
    .map(OrderEventKind::code);
    let mut working: Vec<u64> = orders
        .iter()
        .filter(|(_, events)| !terminal.contains(&events.last().unwrap().0))
        .map(|(id, _)| *id)
        .collect();
    working.sort_unstable();
    let engine_working: Vec<u64> = view.open_orders.iter().map(|o| o.0).collect();
    assert_eq!(engine_working, working, "working orders");
    assert!(view.stats.fills > 0, "the run traded");
    assert_eq!(view.stats.illegal_transitions, 0);
}

/// The newest snapshot file's engine state.
fn newest_snapshot(journal: &Path) -> aaiti_core::snapshots::EngineSnapshot {
    let store = aaiti_journal::SnapshotStore::open(journal).unwrap();
    let latest = store.load_latest().unwrap().snapshot.expect("a snapshot");
    aaiti_core::snapshots::EngineSnapshot::decode(&latest.state).unwrap()
}

fn section<'a>(snapshot: &'a aaiti_core::snapshots::EngineSnapshot, stage: &str) -> &'a [u8] {
    &snapshot
        .sections
        .iter()
        .find(|(name, _)| name == stage)
        .unwrap_or_else(|| panic!("no {stage} section"))
        .1
}

/// Per stream: record count and a hash of the records' bytes in stream order.
fn stream_digests(journal: &Path) -> BTreeMap<u16, (u64, u64)> {
    let reader = JournalReader::open(journal).unwrap();
    let mut hashers: BTreeMap<u16, (u64, DefaultHasher)> = BTreeMap::new();
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        let entry = hashers
            .entry(envelope.header.stream.0)
            .or_insert_with(|| (0, DefaultHasher::new()));
        entry.0 += 1;
        envelope.as_bytes().hash(&mut entry.1);
    }
    hashers
        .into_iter()
        .map(|(stream, (count, hasher))| (stream, (count, hasher.finish())))
        .collect()
}

fn run_to_end(config: &Path, data: &Path) -> serde_json::Value {
    let mut args = run_args(config, data);
    let speed = args.len() - 1;
    "max".clone_into(&mut args[speed]);
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Killed at random moments while snapshots are taken every 100 ms, restarted each time on
/// the same directory, then run to the end of the recording: the journal and the engine's
/// state are exactly those of one uninterrupted run.
#[test]
fn state_after_kills_and_snapshots_equals_one_clean_run() {
    let dir = temp_dir("equal");
    let text = std::fs::read_to_string(config(&dir)).unwrap().replacen(
        "snapshot_interval_s = 60",
        "snapshot_interval_s = 0.1",
        1,
    );
    let config = dir.join("snapshots.toml");
    std::fs::write(&config, text).unwrap();

    let reference = dir.join("reference");
    let summary = run_to_end(&config, &reference);
    assert_eq!(summary["report"]["failed"], false);

    let data = dir.join("crashed");
    let mut random = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..6 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let mut child = Command::new(env!("CARGO_BIN_EXE_aaiti"))
            .args(run_args(&config, &data))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + random % 500));
        assert!(
            Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        let _ = child.wait();
    }
    let summary = run_to_end(&config, &data);
    assert_eq!(summary["report"]["failed"], false);
    assert!(
        summary["recovery"]["snapshot"].is_object(),
        "the last start recovered from a snapshot: {}",
        summary["recovery"]
    );
    assert!(
        summary["recovery"]["replayed"].as_u64().unwrap()
            < summary["recovery"]["journal_records"].as_u64().unwrap(),
        "only the tail after the snapshot is replayed"
    );

    verify(&data.join("journal"));
    assert_eq!(
        stream_digests(&data.join("journal")),
        stream_digests(&reference.join("journal")),
        "every stream holds the same records as in the uninterrupted run"
    );
    let crashed = newest_snapshot(&data.join("journal"));
    let clean = newest_snapshot(&reference.join("journal"));
    assert_eq!(crashed.covered_seq, clean.covered_seq);
    assert_eq!(crashed.streams, clean.streams);
    assert!(
        section(&crashed, "book") == section(&clean, "book"),
        "the books (levels, validity, sequence numbers, counters) are identical"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `retention = "delete"`, segments every kept snapshot covers are deleted, at most
/// `snapshots_keep` snapshots remain, and a restart resumes from the newest snapshot.
#[test]
fn retention_deletes_covered_segments_and_restart_uses_the_snapshot() {
    let dir = temp_dir("retention");
    let text = std::fs::read_to_string(config(&dir))
        .unwrap()
        .replacen("snapshot_interval_s = 60", "snapshot_interval_s = 0.05", 1)
        .replacen("retention = \"keep\"", "retention = \"delete\"", 1)
        .replacen("snapshots_keep = 3", "snapshots_keep = 2", 1);
    let config = dir.join("retention.toml");
    std::fs::write(&config, text).unwrap();
    let data = dir.join("data");
    // Recorded pace x50 for 1.5 s: about 30 snapshots, over 1 MiB segments.
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(run_args(&config, &data))
        .args(["--duration", "1.5", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let journal = data.join("journal");
    let store = aaiti_journal::SnapshotStore::open(&journal).unwrap();
    let kept = store.list().unwrap();
    assert!(
        !kept.is_empty() && kept.len() <= 2,
        "kept snapshots: {kept:?}"
    );
    let reader = JournalReader::open(&journal).unwrap();
    assert!(
        reader.first_seq() > 1,
        "covered segments were deleted (journal starts at {})",
        reader.first_seq()
    );
    assert!(
        reader.first_seq() <= kept[0].0 + 1,
        "nothing uncovered was deleted"
    );
    drop(reader);
    let summary = run_to_end(&config, &data);
    assert_eq!(summary["report"]["failed"], false);
    assert!(summary["recovery"]["snapshot"].is_object());
    let _ = std::fs::remove_dir_all(&dir);
}
