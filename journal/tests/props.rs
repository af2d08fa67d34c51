//! Property: any sequence of appends, reopens, commits and torn final records leaves a
//! journal that reads back exactly what the model says survived.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use aaiti_journal::{Durability, JournalConfig, JournalReader, JournalWriter, Maintenance};
use proptest::prelude::*;
use util::{Rec, TempDir, append, assert_frame, envelope};

#[derive(Debug, Clone)]
enum Op {
    /// `count` records: blobs of `size` bytes or envelopes.
    Append {
        blob: bool,
        size: usize,
        count: usize,
    },
    Commit,
    Reopen {
        manual: bool,
    },
    /// XOR the final record's bytes from `from` (mod its length) with `xor`, then reopen.
    TearLast {
        from: usize,
        xor: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 0usize..700, 1usize..150)
            .prop_map(|(blob, size, count)| Op::Append { blob, size, count }),
        1 => Just(Op::Commit),
        2 => any::<bool>().prop_map(|manual| Op::Reopen { manual }),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(from, xor)| Op::TearLast { from, xor }),
    ]
}

fn config(manual: bool, segment_kib: u64) -> JournalConfig {
    JournalConfig {
        segment_size_bytes: segment_kib * 1024,
        durability: if manual {
            Durability::None
        } else {
            Durability::Interval {
                ms: 5,
                records: 100,
            }
        },
        prefault: !manual,
        prefault_window_bytes: 64 * 1024,
        maintenance: if manual {
            Maintenance::Manual
        } else {
            Maintenance::Background
        },
    }
}

fn make(i: u64, blob: bool, size: usize) -> Rec {
    let ts = 1_000 + i;
    if blob {
        Rec::Blob {
            kind: (i % 5) as u16,
            ts,
            data: (0..size).map(|j| (i as usize + j) as u8 | 1).collect(),
        }
    } else {
        Rec::Env(envelope(i, ts))
    }
}

fn run(ops: Vec<Op>, segment_kib: u64) {
    let tmp = TempDir::new("props");
    let dir = tmp.journal();
    let mut model: Vec<Rec> = Vec::new();
    let mut writer = Some(JournalWriter::open(&dir, config(false, segment_kib)).unwrap());
    for op in ops {
        match op {
            Op::Append { blob, size, count } => {
                let w = writer.as_mut().unwrap();
                for _ in 0..count {
                    let rec = make(model.len() as u64, blob, size);
                    assert_eq!(append(w, &rec), model.len() as u64 + 1);
                    model.push(rec);
                }
            }
            Op::Commit => {
                writer.as_mut().unwrap().commit().unwrap();
            }
            Op::Reopen { manual } => {
                drop(writer.take());
                let w = JournalWriter::open(&dir, config(manual, segment_kib)).unwrap();
                assert!(
                    w.recovery_report().repairs.is_empty(),
                    "{:?}",
                    w.recovery_report()
                );
                assert_eq!(w.next_seq(), model.len() as u64 + 1);
                writer = Some(w);
            }
            Op::TearLast { from, xor } => {
                if model.is_empty() {
                    continue;
                }
                drop(writer.take());
                let reader = JournalReader::open(&dir).unwrap();
                let frame = reader.get(reader.last_seq()).unwrap();
                let path = reader
                    .segments()
                    .find(|s| s.0 == frame.segment())
                    .unwrap()
                    .1
                    .to_path_buf();
                let body = match model.last().unwrap() {
                    Rec::Env(e) => e.as_bytes().len(),
                    Rec::Blob { data, .. } => 16 + data.len(),
                };
                let len = (16 + body).div_ceil(8) * 8;
                let start = frame.offset() + (from % len) as u64;
                let end = frame.offset() + len as u64;
                drop(reader);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .unwrap();
                let mut bytes = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut bytes, start).unwrap();
                bytes.iter_mut().for_each(|b| *b ^= xor);
                file.write_all_at(&bytes, start).unwrap();
                drop(file);
                let w = JournalWriter::open(&dir, config(false, segment_kib)).unwrap();
                let torn = w
                    .recovery_report()
                    .torn_tail
                    .clone()
                    .expect("torn tail detected");
                assert!(torn.cut);
                assert_eq!(torn.seq, model.len() as u64);
                model.pop();
                assert_eq!(w.next_seq(), model.len() as u64 + 1);
                writer = Some(w);
            }
        }
    }
    drop(writer);
    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), model.len() as u64);
    assert!(reader.report().torn_tail.is_none());
    for (frame, rec) in reader.iter().zip(&model) {
        assert_frame(&frame, rec);
    }
    assert_eq!(reader.iter().count(), model.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn appends_reopens_and_torn_tails(ops in prop::collection::vec(op(), 1..25), big in any::<bool>()) {
        run(ops, if big { 128 } else { 64 });
    }
}

/// Flips bytes anywhere in a small journal (headers included). Whatever happens: no panic,
/// readers change nothing, and whenever the journal opens, every record it yields is exactly
/// the one written with that sequence (corruption is cut or reported, never returned).
fn flip(flips: Vec<(usize, u64, u8)>) {
    let tmp = TempDir::new("flip");
    let dir = tmp.journal();
    let config = JournalConfig {
        maintenance: Maintenance::Manual,
        ..config(true, 64)
    };
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    let written: Vec<Rec> = (0..1_200)
        .map(|i| make(i, i % 3 == 0, (i as usize * 13) % 200))
        .collect();
    for rec in &written {
        append(&mut writer, rec);
    }
    drop(writer);
    let segments = util::segment_files(&dir);
    for (segment, offset, xor) in flips {
        let path = &segments[segment % segments.len()];
        let len = std::fs::metadata(path).unwrap().len();
        let at = offset % len;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let mut b = [0u8];
        file.read_exact_at(&mut b, at).unwrap();
        file.write_all_at(&[b[0] ^ xor], at).unwrap();
    }
    let check = |reader: &JournalReader| {
        for frame in reader.iter() {
            assert_frame(&frame, &written[frame.seq() as usize - 1]);
        }
    };
    let before = util::files(&dir);
    if let Ok(reader) = JournalReader::open(&dir) {
        check(&reader);
    }
    assert!(before == util::files(&dir), "a reader changed the files");
    if aaiti_journal::recover(&dir).is_ok() {
        let mut writer = JournalWriter::open(&dir, config).unwrap();
        let next = writer.next_seq();
        append(&mut writer, &written[0]);
        drop(writer);
        let reader = JournalReader::open(&dir).unwrap();
        assert_eq!(reader.last_seq(), next);
        for frame in reader.iter().take_while(|f| f.seq() < next) {
            assert_frame(&frame, &written[frame.seq() as usize - 1]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_are_never_returned(
        flips in prop::collection::vec((0usize..4, any::<u64>(), 1u8..=255), 1..4)
    ) {
        flip(flips);
    }
}
