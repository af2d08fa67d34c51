//! Crash recovery of `aaiti run`: restarts resume from the journal without losing, repeating
//! or reusing a record, including after `SIGKILL` at random moments under load.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aaiti_core::config::DEFAULT_CONFIG;
use aaiti_journal::JournalReader;

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
        .replacen("segment_size_mb = 256", "segment_size_mb = 1", 1);
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
        assert_eq!(streams, 2, "the replay's stream and the book's");
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
    for kill in 0..20 {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let child = Command::new(env!("CARGO_BIN_EXE_aaiti"))
            .args(run_args(&config, &data))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + random % 350));
        let status = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = child;
        let _ = child.wait();
        let (records, _) = verify(&data.join("journal"));
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
    assert!(records > last_records);
    let _ = std::fs::remove_dir_all(&dir);
}
