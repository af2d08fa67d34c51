//! A torn final record, at every byte offset, is cut exactly: earlier records survive and the
//! writer continues with the cut record's sequence.
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

use aaiti_journal::{JournalConfig, JournalReader, JournalWriter, Maintenance, Repair, recover};
use util::{
    Rec, TempDir, append, assert_frame, blob, copy_journal, envelope, record, small_config,
};

fn config() -> JournalConfig {
    JournalConfig {
        maintenance: Maintenance::Manual,
        ..small_config()
    }
}

/// A journal whose last record is `last`; returns the records, and the file and offset of
/// the final frame with its length.
struct Base {
    _tmp: TempDir,
    dir: PathBuf,
    records: Vec<Rec>,
    file: PathBuf,
    offset: u64,
    frame_len: u64,
}

fn base(name: &str, leading: u64, last: Rec, fresh_segment: bool) -> Base {
    let tmp = TempDir::new(name);
    let dir = tmp.journal();
    let mut writer = JournalWriter::open(&dir, config()).unwrap();
    let mut records = Vec::new();
    for i in 0..leading {
        let rec = record(i);
        append(&mut writer, &rec);
        records.push(rec);
    }
    if fresh_segment {
        // Fill the segment so that `last` starts the next one.
        let segment = writer.active_segment();
        let mut i = leading;
        loop {
            let rec = record(i);
            let before = writer.active_segment();
            let seq = append(&mut writer, &rec);
            if writer.active_segment() != before {
                // That one rolled: it is the first of the new segment. Replace it by `last`
                // by starting over with one record fewer.
                drop(writer);
                let count = seq - 1;
                std::fs::remove_dir_all(&dir).unwrap();
                let mut writer = JournalWriter::open(&dir, config()).unwrap();
                records.clear();
                for j in 0..count {
                    let rec = record(j);
                    append(&mut writer, &rec);
                    records.push(rec);
                }
                // `last` is at least as large as any record here, so it rolls too.
                append(&mut writer, &last);
                assert_ne!(
                    writer.active_segment(),
                    segment,
                    "the final record must start a segment"
                );
                records.push(last);
                return finish(tmp, dir, records);
            }
            i += 1;
        }
    }
    append(&mut writer, &last);
    records.push(last);
    drop(writer);
    finish(tmp, dir, records)
}

fn finish(tmp: TempDir, dir: PathBuf, records: Vec<Rec>) -> Base {
    let reader = JournalReader::open(&dir).unwrap();
    let frame = reader.get(reader.last_seq()).unwrap();
    let next_offset = frame.offset() + frame_size(&records[records.len() - 1]);
    let file = reader.segments().last().unwrap().1.to_path_buf();
    let (offset, frame_len) = (frame.offset(), next_offset - frame.offset());
    drop(reader);
    Base {
        _tmp: tmp,
        dir,
        records,
        file,
        offset,
        frame_len,
    }
}

fn frame_size(rec: &Rec) -> u64 {
    let body = match rec {
        Rec::Env(e) => e.as_bytes().len(),
        Rec::Blob { data, .. } => 16 + data.len(),
    };
    (16 + body as u64).div_ceil(8) * 8
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Zero the final frame's bytes from `k` on (a pre-allocated segment's "truncation").
    Zero,
    /// XOR the final frame's bytes from `k` on.
    Garble,
    /// Physically truncate the file at `k`.
    Truncate,
}

fn damage(path: &Path, at: u64, end: u64, how: Damage) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    match how {
        Damage::Truncate => file.set_len(at).unwrap(),
        Damage::Zero | Damage::Garble => {
            let mut bytes = vec![0u8; (end - at) as usize];
            file.read_exact_at(&mut bytes, at).unwrap();
            for b in &mut bytes {
                *b = if matches!(how, Damage::Zero) {
                    0
                } else {
                    *b ^ 0x5A
                };
            }
            file.write_all_at(&bytes, at).unwrap();
        }
    }
}

/// Runs every (damage, offset) case; fsync latency dominates, so cases run on a few threads.
fn check_every_offset(base: &Base) {
    let cases: Vec<(Damage, u64)> = [Damage::Zero, Damage::Garble, Damage::Truncate]
        .into_iter()
        .flat_map(|how| (0..base.frame_len).map(move |k| (how, k)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                while let Some(&(how, k)) =
                    cases.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    check_case(base, how, k);
                }
            });
        }
    });
}

fn check_case(base: &Base, how: Damage, k: u64) {
    let original = std::fs::read(&base.file).unwrap();
    let n = base.records.len() as u64;
    let frame = base.offset as usize..(base.offset + base.frame_len) as usize;
    let tmp = TempDir::new("torn-case");
    let dir = tmp.journal();
    copy_journal(&base.dir, &dir);
    let file = dir.join(base.file.file_name().unwrap());
    let at = base.offset + k;
    damage(&file, at, base.offset + base.frame_len, how);
    let context = format!(
        "{how:?} from byte {k} of the final frame ({} bytes)",
        base.frame_len
    );

    // Zeroing bytes that were zero (padding) changes nothing: the record survives.
    let changed = match how {
        Damage::Zero => original[at as usize..frame.end].iter().any(|&b| b != 0),
        Damage::Garble | Damage::Truncate => true,
    };
    let torn_expected = changed && !(k == 0 && matches!(how, Damage::Zero | Damage::Truncate));

    // Readers see the damage but change nothing.
    let before = util::files(&dir);
    let reader = JournalReader::open(&dir).unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(
        reader.last_seq(),
        if changed { n - 1 } else { n },
        "{context}"
    );
    assert_eq!(
        reader.report().torn_tail.is_some(),
        torn_expected,
        "{context}"
    );
    drop(reader);
    assert!(
        before == util::files(&dir),
        "{context}: a reader modified the files"
    );

    // Recovery: through `recover` or straight through the writer.
    let report = if k.is_multiple_of(2) {
        recover(&dir).unwrap_or_else(|e| panic!("{context}: {e}"))
    } else {
        JournalWriter::open(&dir, config())
            .unwrap()
            .recovery_report()
            .clone()
    };
    assert_eq!(
        report.last_seq,
        if changed { n - 1 } else { n },
        "{context}"
    );
    match &report.torn_tail {
        Some(torn) => {
            assert!(torn_expected, "{context}: unexpected cut {torn:?}");
            assert!(torn.cut, "{context}");
            assert_eq!((torn.offset, torn.seq), (base.offset, n), "{context}");
            assert!(
                torn.bytes <= base.frame_len,
                "{context}: cut {} bytes",
                torn.bytes
            );
            assert!(
                report
                    .repairs
                    .iter()
                    .any(|r| matches!(r, Repair::CutTornTail { .. })),
                "{context}"
            );
        }
        None => assert!(!torn_expected, "{context}: torn tail not detected"),
    }
    if matches!(how, Damage::Truncate) {
        assert!(
            report
                .repairs
                .iter()
                .any(|r| matches!(r, Repair::ExtendedFile { .. })),
            "{context}: truncated file not extended: {:?}",
            report.repairs
        );
    }

    // Everything before survives byte for byte; the writer continues at the cut seq.
    let mut writer = JournalWriter::open(&dir, config()).unwrap();
    assert!(
        writer.recovery_report().repairs.is_empty(),
        "{context}: second recovery repaired again"
    );
    let next = if changed { n } else { n + 1 };
    assert_eq!(writer.next_seq(), next, "{context}");
    let extra = record(1_000 + k);
    assert_eq!(append(&mut writer, &extra), next, "{context}");
    drop(writer);
    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), next, "{context}");
    let survivors = if changed { n - 1 } else { n } as usize;
    for (frame, rec) in reader.iter().zip(&base.records[..survivors]) {
        assert_frame(&frame, rec);
    }
    assert_frame(&reader.get(next).unwrap(), &extra);
}

#[test]
fn torn_blob_in_the_middle_of_a_segment() {
    // 45 data bytes: a 16 + 61 byte frame with 3 bytes of padding.
    let mut last = blob(3, 9_999_999);
    if let Rec::Blob { data, .. } = &mut last {
        data.truncate(45);
    }
    check_every_offset(&base("torn-blob", 40, last, false));
}

#[test]
fn torn_envelope_that_starts_a_segment() {
    // The largest envelope kind so that it rolls like any record before it would.
    let last = Rec::Env(envelope(3, 9_999_999));
    let base = base("torn-first", 0, last, true);
    assert_eq!(base.offset, 64);
    check_every_offset(&base);
}
