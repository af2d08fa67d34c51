//! Corruption that is not a torn tail, and files that are not (valid) journals: clear
//! errors, no panic, no change to the files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aaiti_journal::{
    Follower, FrameFault, JournalConfig, JournalError, JournalReader, JournalWriter, Maintenance,
    recover,
};
use util::{TempDir, append, record, segment_files, small_config};

fn config() -> JournalConfig {
    JournalConfig {
        maintenance: Maintenance::Manual,
        ..small_config()
    }
}

/// A journal of `n` records; returns `(seq, segment index, offset, path)` of every record.
fn journal(dir: &Path, n: u64) -> Vec<(u64, u64, u64, PathBuf)> {
    let mut writer = JournalWriter::open(dir, config()).unwrap();
    for i in 0..n {
        append(&mut writer, &record(i));
    }
    drop(writer);
    let reader = JournalReader::open(dir).unwrap();
    let paths: BTreeMap<u64, PathBuf> = reader
        .segments()
        .map(|(index, path, _, _)| (index, path.to_path_buf()))
        .collect();
    reader
        .iter()
        .map(|f| {
            (
                f.seq(),
                f.segment(),
                f.offset(),
                paths[&f.segment()].clone(),
            )
        })
        .collect()
}

/// The journal files (the writer's lock file aside, which opening for writing creates).
fn journal_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = util::files(dir);
    files.retain(|path, _| !path.ends_with("journal.lock"));
    files
}

fn poke(path: &Path, offset: u64, f: impl Fn(u8) -> u8) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[f(b[0])], offset).unwrap();
}

/// Every way of opening fails the same way and leaves the files alone.
fn all_openers_fail(dir: &Path, check: impl Fn(&JournalError)) {
    let before = journal_files(dir);
    let reader = JournalReader::open(dir)
        .map(|_| ())
        .expect_err("reader should fail");
    check(&reader);
    let recovered = recover(dir).map(|_| ()).expect_err("recover should fail");
    check(&recovered);
    let writer = JournalWriter::open(dir, config())
        .map(|_| ())
        .expect_err("writer should fail");
    check(&writer);
    assert!(before == journal_files(dir), "files changed");
    let message = writer.to_string();
    assert!(!message.is_empty());
}

#[test]
fn corrupt_record_followed_by_valid_ones_in_the_last_segment_is_an_error() {
    let tmp = TempDir::new("mid-last");
    let dir = tmp.journal();
    let frames = journal(&dir, 3000);
    let last_segment = frames.last().unwrap().1;
    let &(seq, segment, offset, ref path) = frames
        .iter()
        .filter(|f| f.1 == last_segment)
        .nth(5)
        .unwrap();
    poke(path, offset + 20, |b| b ^ 1); // a body byte
    all_openers_fail(&dir, |e| match e {
        JournalError::CorruptFrame {
            path: p,
            segment: s,
            offset: o,
            seq: q,
            fault,
            next_valid,
        } => {
            assert_eq!((p, *s, *o, *q), (path, segment, offset, seq), "{e}");
            assert!(matches!(fault, FrameFault::Crc { .. }), "{e}");
            assert!(next_valid.is_some(), "{e}");
            let text = e.to_string();
            assert!(
                text.contains(&format!("offset {offset}"))
                    && text.contains(&format!("sequence {seq}")),
                "{text}"
            );
        }
        other => panic!("expected CorruptFrame, got {other}"),
    });
}

#[test]
fn corrupt_record_in_an_earlier_segment_is_an_error_even_at_its_end() {
    let tmp = TempDir::new("mid-early");
    let dir = tmp.journal();
    let frames = journal(&dir, 3000);
    // The last record of segment 0: looks like a tail, but later segments hold data.
    let &(seq, segment, offset, ref path) = frames.iter().rfind(|f| f.1 == 0).unwrap();
    poke(path, offset + 9, |b| b ^ 0x80); // the sequence field
    all_openers_fail(&dir, |e| match e {
        JournalError::CorruptFrame {
            path: p,
            segment: s,
            offset: o,
            seq: q,
            ..
        } => {
            assert_eq!((p, *s, *o, *q), (path, segment, offset, seq), "{e}");
        }
        other => panic!("expected CorruptFrame, got {other}"),
    });
}

#[test]
fn a_zeroed_length_word_before_valid_data_is_an_error() {
    let tmp = TempDir::new("zero-word");
    let dir = tmp.journal();
    let frames = journal(&dir, 3000);
    // In an earlier segment: the next segment's first sequence no longer follows.
    let (_, _, offset, path) = frames.iter().filter(|f| f.1 == 0).nth(10).unwrap().clone();
    for i in 0..4 {
        poke(&path, offset + i, |_| 0);
    }
    all_openers_fail(&dir, |e| {
        assert!(
            matches!(e, JournalError::SequenceGap { segment: 1, .. }),
            "{e}"
        )
    });
}

#[test]
fn a_zeroed_length_word_in_the_last_segment_is_caught_by_recovery() {
    let tmp = TempDir::new("zero-word-last");
    let dir = tmp.journal();
    let frames = journal(&dir, 3000);
    let (seq, _, offset, path) = frames.iter().rev().nth(10).unwrap().clone();
    for i in 0..4 {
        poke(&path, offset + i, |_| 0);
    }
    let before = journal_files(&dir);
    let check = |e: JournalError| match e {
        JournalError::CorruptFrame {
            seq: q,
            offset: o,
            fault: FrameFault::DataAfterEnd { .. },
            next_valid: Some(_),
            ..
        } => {
            assert_eq!((q, o), (seq, offset));
        }
        other => panic!("expected CorruptFrame(DataAfterEnd), got {other}"),
    };
    check(recover(&dir).unwrap_err());
    check(JournalWriter::open(&dir, config()).unwrap_err());
    assert!(before == journal_files(&dir));
}

#[test]
fn a_missing_segment_is_an_error() {
    let tmp = TempDir::new("missing");
    let dir = tmp.journal();
    journal(&dir, 3000);
    let segments = segment_files(&dir);
    assert!(segments.len() >= 3);
    std::fs::remove_file(&segments[1]).unwrap();
    all_openers_fail(&dir, |e| match e {
        JournalError::MissingSegment { missing, .. } => assert_eq!(missing, "journal-00000001.seg"),
        other => panic!("expected MissingSegment, got {other}"),
    });
}

/// A one-segment journal, with its segment file replaced by `bytes`.
fn bad_segment(name: &str, bytes: impl FnOnce(Vec<u8>) -> Vec<u8>) -> TempDir {
    let tmp = TempDir::new(name);
    let dir = tmp.journal();
    journal(&dir, 10);
    for path in segment_files(&dir).iter().skip(1) {
        std::fs::remove_file(path).unwrap();
    }
    let path = dir.join("journal-00000000.seg");
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, bytes(original)).unwrap();
    tmp
}

#[test]
fn not_a_journal() {
    let tmp = bad_segment("not-journal", |_| {
        b"hello, this is not a journal at all".to_vec()
    });
    all_openers_fail(&tmp.journal(), |e| match e {
        JournalError::NotAJournal { found, .. } => assert_eq!(found, b"hello, t"),
        other => panic!("expected NotAJournal, got {other}"),
    });
    assert!(Follower::open(tmp.journal(), 1).is_err());
}

#[test]
fn empty_file() {
    let tmp = bad_segment("empty-file", |_| Vec::new());
    all_openers_fail(&tmp.journal(), |e| {
        assert!(matches!(e, JournalError::EmptyFile { .. }), "{e}")
    });
}

#[test]
fn truncated_header() {
    for len in [1, 7, 8, 30, 63] {
        let tmp = bad_segment("short-header", |b| b[..len].to_vec());
        all_openers_fail(&tmp.journal(), |e| match e {
            JournalError::TruncatedHeader { len: l, .. } => assert_eq!(*l, len as u64),
            other => panic!("{len} bytes: expected TruncatedHeader, got {other}"),
        });
    }
}

#[test]
fn other_format_version() {
    let tmp = bad_segment("version", |mut b| {
        b[8..12].copy_from_slice(&2u32.to_le_bytes());
        b
    });
    all_openers_fail(&tmp.journal(), |e| match e {
        JournalError::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        } => {}
        other => panic!("expected UnsupportedVersion, got {other}"),
    });
}

#[test]
fn damaged_header() {
    for (at, what) in [(20, "crc"), (44, "crc field"), (50, "reserved")] {
        let tmp = bad_segment("bad-header", |mut b| {
            b[at] ^= 0x10;
            b
        });
        all_openers_fail(&tmp.journal(), |e| {
            assert!(matches!(e, JournalError::BadHeader { .. }), "{what}: {e}");
        });
    }
}

#[test]
fn garbage_of_every_length_never_panics() {
    // Random-looking bytes with a valid header prefix or none, in lengths around the header.
    for len in [0usize, 1, 8, 63, 64, 65, 67, 68, 100, 4096, 70_000] {
        for seed in 0..3u64 {
            let tmp = bad_segment("garbage", |original| {
                let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut out: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                if seed == 1 {
                    let keep = len.min(64);
                    out[..keep].copy_from_slice(&original[..keep]);
                }
                out
            });
            let dir = tmp.journal();
            let before = journal_files(&dir);
            let _ = JournalReader::open(&dir);
            assert!(before == journal_files(&dir), "reader changed files");
            let _ = Follower::open(&dir, 1).map(|mut f| f.poll().map(|_| ()));
            let _ = recover(&dir);
            let _ = JournalWriter::open(&dir, config());
        }
    }
}
