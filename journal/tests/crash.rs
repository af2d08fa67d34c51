//! States a crash can leave around a segment roll, and leftovers of segment creation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aaiti_journal::{JournalConfig, JournalReader, JournalWriter, Maintenance, Repair};
use util::{TempDir, append, assert_frame, record, segment_files, small_config};

fn config() -> JournalConfig {
    JournalConfig {
        maintenance: Maintenance::Manual,
        ..small_config()
    }
}

/// Writes records until the first record of segment 1 is appended; returns the count and
/// the two segment paths.
fn rolled_once(dir: &Path) -> (u64, PathBuf, PathBuf) {
    let mut writer = JournalWriter::open(dir, config()).unwrap();
    let mut n = 0;
    while writer.active_segment() == 0 {
        append(&mut writer, &record(n));
        n += 1;
    }
    drop(writer);
    let files = segment_files(dir);
    (n, files[0].clone(), files[1].clone())
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

/// Zeroes segment 1's data (its only record) and sets its `first_seq`.
fn empty_segment_1(path: &Path, first_seq: u64) {
    write_at(path, 64, &[0u8; 4096]);
    write_at(path, 56, &first_seq.to_le_bytes());
}

fn continue_and_check(dir: &Path, expected_next: u64) {
    let mut writer = JournalWriter::open(dir, config()).unwrap();
    assert_eq!(writer.next_seq(), expected_next);
    for i in expected_next - 1..expected_next + 999 {
        assert_eq!(append(&mut writer, &record(i)), i + 1);
    }
    drop(writer);
    let reader = JournalReader::open(dir).unwrap();
    assert_eq!(reader.last_seq(), expected_next + 999);
    for (i, frame) in reader.iter().enumerate() {
        assert_frame(&frame, &record(i as u64));
    }
}

#[test]
fn crash_after_sealing_before_starting_the_next_segment() {
    let tmp = TempDir::new("crash-sealed");
    let dir = tmp.journal();
    let (n, _, second) = rolled_once(&dir);
    empty_segment_1(&second, 0); // a spare again: segment 0 is sealed
    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), n - 1);
    drop(reader);
    let writer = JournalWriter::open(&dir, config()).unwrap();
    assert!(writer.recovery_report().repairs.is_empty());
    assert_eq!(writer.active_segment(), 0);
    drop(writer);
    continue_and_check(&dir, n);
}

#[test]
fn crash_after_starting_the_next_segment_before_its_first_record() {
    let tmp = TempDir::new("crash-started");
    let dir = tmp.journal();
    let (n, _, second) = rolled_once(&dir);
    empty_segment_1(&second, n);
    let writer = JournalWriter::open(&dir, config()).unwrap();
    assert!(writer.recovery_report().repairs.is_empty());
    assert_eq!(writer.active_segment(), 1);
    drop(writer);
    continue_and_check(&dir, n);
}

#[test]
fn a_started_segment_after_an_unsealed_one_goes_back_to_spare() {
    let tmp = TempDir::new("crash-unsealed");
    let dir = tmp.journal();
    let (n, first, second) = rolled_once(&dir);
    empty_segment_1(&second, n);
    // Remove segment 0's seal: find it after the last record.
    let reader = JournalReader::open(&dir).unwrap();
    let last = reader.get(n - 1).unwrap();
    let seal_at = last.offset() + frame_len(&last);
    drop(reader);
    let mut word = [0u8; 4];
    OpenOptions::new()
        .read(true)
        .open(&first)
        .unwrap()
        .read_exact_at(&mut word, seal_at)
        .unwrap();
    assert_eq!(
        u32::from_le_bytes(word),
        0xFF00_0000,
        "seal expected at {seal_at}"
    );
    write_at(&first, seal_at, &[0u8; 4]);

    let writer = JournalWriter::open(&dir, config()).unwrap();
    assert_eq!(
        writer.recovery_report().repairs,
        vec![Repair::ResetSpare {
            path: second.clone()
        }]
    );
    assert_eq!(writer.active_segment(), 0);
    drop(writer);
    continue_and_check(&dir, n);
}

/// Padded size of a frame.
fn frame_len(frame: &aaiti_journal::Frame<'_>) -> u64 {
    let body = match frame.body() {
        aaiti_journal::FrameBody::Envelope(b) => b.len(),
        aaiti_journal::FrameBody::Blob { data, .. } => 16 + data.len(),
    };
    (16 + body as u64).div_ceil(8) * 8
}

#[test]
fn half_created_segments_are_removed() {
    let tmp = TempDir::new("crash-tmp");
    let dir = tmp.journal();
    let (n, _, _) = rolled_once(&dir);
    let stray = dir.join("journal-00000002.seg.tmp");
    std::fs::write(&stray, b"half").unwrap();
    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), n);
    drop(reader);
    assert!(stray.exists(), "readers never remove anything");
    let writer = JournalWriter::open(&dir, config()).unwrap();
    assert_eq!(
        writer.recovery_report().repairs,
        vec![Repair::RemovedTempFile {
            path: stray.clone()
        }]
    );
    assert!(!stray.exists());
}
