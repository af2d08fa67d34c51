//! Engine recovery from a large journal, with and without a snapshot.
//!
//! 1. Runs the default configuration (the bundled Binance BTCUSDT replay) once at full speed
//!    to get a real journal (book deltas, trades, tops of book).
//! 2. Builds a journal of `AAITI_BENCH_JOURNAL_MB` (default 1024) MiB by appending that
//!    journal's records again and again with each stream's sequence numbers continued, so
//!    it is a valid journal the engine can resume from.
//! 3. Measures a plain scan of it (every frame's CRC and every envelope's validation).
//! 4. Starts the engine on it with no snapshot: every source record is replayed through the
//!    book stage. The run then stops at once and its stop writes a snapshot.
//! 5. Starts the engine again: it restores the snapshot and replays nothing.
//!
//! Run: `cargo bench -p aaiti-core --bench recovery`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark binary"
)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use aaiti_core::config::{self, DEFAULT_CONFIG};
use aaiti_core::engine::{self, RunOptions};
use aaiti_journal::{JournalConfig, JournalReader, JournalWriter};

fn main() {
    let target_mb: u64 = std::env::var("AAITI_BENCH_JOURNAL_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let root = std::env::temp_dir().join(format!("aaiti-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let text = DEFAULT_CONFIG
        .replacen("speed = \"recorded\"", "speed = \"max\"", 1)
        .replacen("snapshot_on_stop = true", "snapshot_on_stop = false", 1)
        .replacen("snapshot_interval_s = 60", "snapshot_interval_s = 0", 1)
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1);
    let loaded = config::parse(&text, "bench").unwrap();

    // 1. A real journal.
    let base = root.join("base");
    let options = |data: &Path| RunOptions {
        data_dir: Some(data.to_path_buf()),
        ..RunOptions::default()
    };
    engine::run(&loaded, &options(&base)).unwrap();
    let base_journal = base.join("journal");

    // 2. Grow it to the target size.
    let big = root.join("big");
    let big_journal = big.join("journal");
    let copies = grow(&base_journal, &big_journal, target_mb << 20);

    // 3. Scan.
    let started = Instant::now();
    let reader = JournalReader::open(&big_journal).unwrap();
    let mut records = 0_u64;
    for frame in reader.iter() {
        frame.envelope().unwrap().unwrap();
        records += 1;
    }
    let scan_s = started.elapsed().as_secs_f64();
    drop(reader);
    // Every frame is 16 bytes of framing plus a 192-byte envelope.
    let bytes = records * 208;

    // 4. and 5. Resume without, then with, a snapshot.
    let text = text.replacen("snapshot_on_stop = false", "snapshot_on_stop = true", 1);
    let loaded = config::parse(&text, "bench").unwrap();
    let resume = |label: &str| {
        let started = Instant::now();
        let run = engine::start(&loaded, &options(&big)).unwrap();
        let to_running = started.elapsed().as_secs_f64();
        let recovery = run.recovery.clone().unwrap();
        run.running.stop_handle().request_stop();
        let finished = run.wait();
        println!(
            "{label:<18} recovery {:>7.3} s (start to running {:.3} s), replayed {:>9} records, \
             snapshot {}",
            recovery.elapsed_s,
            to_running,
            recovery.replayed,
            recovery
                .snapshot
                .as_ref()
                .map_or("none".to_owned(), |s| format!(
                    "covering seq {}",
                    s.covered_seq
                )),
        );
        (recovery.elapsed_s, finished)
    };
    println!(
        "journal: {:.1} MiB, {records} records ({copies} copies of a {}-record Binance BTCUSDT \
         replay journal)",
        bytes as f64 / (1 << 20) as f64,
        records / copies.max(1)
    );
    println!(
        "scan (CRC + validation of every record): {scan_s:.3} s = {:.2} GB/s, {:.1} M records/s",
        bytes as f64 / scan_s / 1e9,
        records as f64 / scan_s / 1e6
    );
    let (without, finished) = resume("without snapshot");
    let snapshot = finished.snapshots.unwrap();
    println!(
        "snapshot at stop: {} bytes, written in {:.1} ms",
        snapshot.last_bytes, snapshot.last_write_ms
    );
    let (with, _) = resume("with snapshot");
    println!(
        "resume with a snapshot is {:.1}x faster than replaying the journal (goal: under 2 s)",
        without / with.max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// Appends copies of `from` to a new journal in `to` until it holds `target` bytes; returns
/// the number of copies.
fn grow(from: &Path, to: &PathBuf, target: u64) -> u64 {
    let source = JournalReader::open(from).unwrap();
    let mut last = vec![0_u64; usize::from(u16::MAX) + 1];
    for frame in source.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        let stream = envelope.header.stream.index();
        last[stream] = last[stream].max(envelope.header.seq);
    }
    let config = JournalConfig {
        segment_size_bytes: 256 << 20,
        ..JournalConfig::default()
    };
    let mut writer = JournalWriter::open(to, config).unwrap();
    let mut copies = 0_u64;
    let mut written = 0_u64;
    while written < target {
        for frame in source.iter() {
            let mut envelope = frame.envelope().unwrap().unwrap();
            let stream = envelope.header.stream.index();
            envelope.header.seq += copies * last[stream];
            writer.append_envelope(&envelope).unwrap();
            written += 208;
        }
        copies += 1;
    }
    writer.commit().unwrap();
    copies
}
