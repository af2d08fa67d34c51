//! `aaiti replay --check` on the bundled recordings: the market-data correctness bar.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::process::Command;

fn replay(file: &str, extra: &[&str]) -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/").to_owned() + file;
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(["replay", &path, "--check", "--report", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn field(report: &serde_json::Value, name: &str) -> u64 {
    report[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn binance_btcusdt_applies_every_diff_and_matches_book_ticker() {
    let report = replay("binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz", &[]);
    assert_eq!(field(&report, "messages"), 99_574);
    assert_eq!(field(&report, "rejected_messages"), 0);
    assert_eq!(field(&report, "gaps"), 0);
    assert_eq!(field(&report, "resyncs"), 0);
    // The two mismatches are best-level removals that no bookTicker reported (data README).
    assert_eq!(field(&report, "bbo_checks"), 6_492);
    assert!(field(&report, "bbo_mismatches") <= 2, "{report}");
    assert_eq!(report["failed"], false);
}

#[test]
fn kraken_v1_every_checksum_verifies() {
    let report = replay(
        "kraken/ws_v1_book1000_20210417_31s.txt",
        &["--venue", "kraken"],
    );
    assert_eq!(field(&report, "checksum_checks"), 4_269);
    assert_eq!(field(&report, "checksum_failures"), 0);
    assert_eq!(field(&report, "gaps"), 0);
    assert_eq!(field(&report, "rejected_messages"), 0);
}

#[test]
fn coinbase_books_agree_with_ticker() {
    let report = replay("coinbase/exchange_ws_20210417_31s.txt", &[]);
    let checks = field(&report, "bbo_checks");
    let mismatches = field(&report, "bbo_mismatches");
    assert_eq!(checks, 107);
    assert!(checks - mismatches >= 100, "{report}");
    assert_eq!(field(&report, "rejected_messages"), 0);
}

#[test]
fn unknown_venue_and_missing_file_are_clear_errors() {
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(["replay", "/nonexistent/recording.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--venue"));
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(["replay", "/nonexistent/kraken.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/kraken.txt"));
}
