//! Random access by sequence and by time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_journal::{JournalConfig, JournalError, JournalReader, JournalWriter, Maintenance};
use aaiti_model::UnixNanos;
use util::{Rec, TempDir, append, assert_frame, blob, envelope, small_config};

/// Three interleaved streams whose clocks disagree: globally not sorted by time.
fn records(n: u64) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let ts = 1_000_000 + i * 10 + (i % 3) * 25_000;
            if i % 5 == 4 {
                blob(i, ts)
            } else {
                Rec::Env(envelope(i, ts))
            }
        })
        .collect()
}

fn write(dir: &std::path::Path, records: &[Rec]) {
    let config = JournalConfig {
        maintenance: Maintenance::Manual,
        ..small_config()
    };
    let mut writer = JournalWriter::open(dir, config).unwrap();
    for rec in records {
        append(&mut writer, rec);
    }
}

#[test]
fn seek_by_sequence() {
    let tmp = TempDir::new("seek-seq");
    let recs = records(20_000);
    write(&tmp.journal(), &recs);
    let reader = JournalReader::open(tmp.journal()).unwrap();
    assert!(reader.segments().count() > 20);
    for seq in (1..=20_000)
        .step_by(7)
        .chain([1, 2, 4095, 4096, 4097, 19_999, 20_000])
    {
        let mut frames = reader.seek_seq(seq).unwrap();
        assert_eq!(frames.next_seq(), seq);
        assert_eq!(frames.len() as u64, 20_001 - seq);
        let frame = frames.next().unwrap();
        assert_eq!(frame.seq(), seq);
        assert_frame(&frame, &recs[seq as usize - 1]);
        if seq < 20_000 {
            assert_eq!(frames.next().unwrap().seq(), seq + 1);
        }
        assert_frame(&reader.get(seq).unwrap(), &recs[seq as usize - 1]);
    }
    assert!(reader.seek_seq(20_001).unwrap().next().is_none());
    for bad in [0, 20_002, u64::MAX] {
        assert!(matches!(
            reader.seek_seq(bad),
            Err(JournalError::SeqOutOfRange {
                first: 1,
                last: 20_000,
                ..
            })
        ));
    }
    assert!(reader.get(20_001).is_err());
}

#[test]
fn seek_by_time_finds_the_first_record_at_or_after() {
    let tmp = TempDir::new("seek-time");
    let recs = records(12_000);
    write(&tmp.journal(), &recs);
    let reader = JournalReader::open(tmp.journal()).unwrap();
    let first_at_or_after = |t: u64| {
        recs.iter()
            .position(|r| r.ts_recv() >= t)
            .map(|i| i as u64 + 1)
    };
    let max_ts = recs.iter().map(Rec::ts_recv).max().unwrap();
    let mut probes: Vec<u64> = (0..2_000).map(|k| 990_000 + k * 97).collect();
    probes.extend([
        0,
        1_000_000,
        1_000_001,
        1_025_010,
        max_ts,
        max_ts + 1,
        u64::MAX,
    ]);
    probes.extend(recs.iter().step_by(13).map(Rec::ts_recv));
    for t in probes {
        let got = reader.seek_time(UnixNanos(t)).next().map(|f| f.seq());
        assert_eq!(got, first_at_or_after(t), "t = {t}");
    }
}

#[test]
fn an_empty_reader_seeks_to_nothing() {
    let tmp = TempDir::new("seek-empty");
    write(&tmp.journal(), &[]);
    let reader = JournalReader::open(tmp.journal()).unwrap();
    assert!(reader.seek_time(UnixNanos(5)).next().is_none());
    assert!(reader.seek_seq(1).unwrap().next().is_none());
    assert!(reader.get(1).is_err());
}
