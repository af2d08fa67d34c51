//! Write, reopen, read back: byte-identical, contiguous sequences, across segment rolls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use aaiti_journal::{
    Durability, JournalConfig, JournalError, JournalReader, JournalWriter, Maintenance,
};
use aaiti_model::UnixNanos;
use util::{Rec, TempDir, append, assert_frame, record, small_config};

fn round_trip(config: JournalConfig, n: u64) {
    let tmp = TempDir::new("round-trip");
    let dir = tmp.journal();
    let records: Vec<Rec> = (0..n).map(record).collect();
    let mut writer = JournalWriter::open(&dir, config.clone()).unwrap();
    assert_eq!(writer.next_seq(), 1);
    for (i, rec) in records.iter().enumerate() {
        assert_eq!(append(&mut writer, rec), i as u64 + 1);
        if i % 100 == 99 {
            writer.commit().unwrap();
            writer.maintain();
        }
    }
    assert_eq!(writer.commit().unwrap(), n);
    assert_eq!(writer.durable_seq(), n);
    let rolls = writer.stats().rolls;
    assert!(rolls >= 3, "expected several segment rolls, got {rolls}");
    drop(writer);

    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(
        (reader.first_seq(), reader.last_seq(), reader.len()),
        (1, n, n)
    );
    assert!(reader.report().torn_tail.is_none());
    assert_eq!(reader.segments().count() as u64, rolls + 1);
    let mut count = 0;
    for (frame, rec) in reader.iter().zip(&records) {
        count += 1;
        assert_eq!(frame.seq(), count);
        assert_frame(&frame, rec);
    }
    assert_eq!(count, n);
    // Sequences are contiguous across segments and segments agree with the frames.
    let mut expected_first = 1;
    for (_, _, first, last) in reader.segments() {
        assert_eq!(first, expected_first);
        expected_first = last + 1;
    }
    assert_eq!(expected_first, n + 1);

    // Reopening the writer continues after the last record.
    let mut writer = JournalWriter::open(&dir, config).unwrap();
    assert!(
        writer.recovery_report().repairs.is_empty(),
        "{:?}",
        writer.recovery_report()
    );
    assert_eq!(writer.next_seq(), n + 1);
    let extra = record(n);
    assert_eq!(append(&mut writer, &extra), n + 1);
    drop(writer);
    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), n + 1);
    assert_frame(&reader.get(n + 1).unwrap(), &extra);
    assert_frame(&reader.get(1).unwrap(), &records[0]);
}

#[test]
fn round_trip_background_maintenance() {
    round_trip(small_config(), 3000);
}

#[test]
fn round_trip_manual_maintenance_without_prefault() {
    round_trip(
        JournalConfig {
            maintenance: Maintenance::Manual,
            prefault: false,
            ..small_config()
        },
        3000,
    );
}

#[test]
fn round_trip_sync_and_interval() {
    round_trip(
        JournalConfig {
            durability: Durability::Sync,
            ..small_config()
        },
        2500,
    );
    round_trip(
        JournalConfig {
            durability: Durability::Interval { ms: 1, records: 50 },
            ..small_config()
        },
        2500,
    );
}

#[test]
fn interval_commit_syncs_when_due() {
    let tmp = TempDir::new("interval");
    let config = JournalConfig {
        durability: Durability::Interval { ms: 0, records: 10 },
        ..small_config()
    };
    let mut writer = JournalWriter::open(tmp.journal(), config).unwrap();
    for i in 0..9 {
        append(&mut writer, &record(i));
        assert_eq!(writer.commit().unwrap(), 0, "not due before 10 records");
    }
    append(&mut writer, &record(9));
    assert_eq!(writer.commit().unwrap(), 10);
    assert_eq!(writer.durable_seq(), 10);
    append(&mut writer, &record(10));
    assert_eq!(writer.durable_seq(), 10);
    assert_eq!(writer.sync().unwrap(), 11);
}

#[test]
fn blobs_of_every_size_round_trip_and_oversized_ones_are_refused() {
    let tmp = TempDir::new("blobs");
    let mut writer = JournalWriter::open(tmp.journal(), small_config()).unwrap();
    let mut expected = Vec::new();
    for len in 0..200usize {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + len) as u8).collect();
        let seq = writer
            .append_blob(len as u16, UnixNanos(len as u64), &data)
            .unwrap();
        expected.push((seq, len, data));
    }
    // In place: the closure writes straight into the map.
    let seq = writer
        .append_blob_with(9, UnixNanos(5), 12, |out| {
            out.copy_from_slice(b"8=FIX.4.4|35")
        })
        .unwrap();
    // The largest blob a 64 KiB segment holds, and one byte more.
    let max = 64 * 1024 - 64 - 16 - 16;
    let big = writer
        .append_blob(1, UnixNanos(1), &vec![0xAB; max])
        .unwrap();
    match writer.append_blob(1, UnixNanos(1), &vec![0xAB; max + 1]) {
        Err(JournalError::RecordTooLarge { len, max: m }) => {
            assert_eq!((len, m), (max + 17, max + 16))
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    drop(writer);
    let reader = JournalReader::open(tmp.journal()).unwrap();
    for (seq, len, data) in &expected {
        let frame = reader.get(*seq).unwrap();
        assert_frame(
            &frame,
            &Rec::Blob {
                kind: *len as u16,
                ts: *len as u64,
                data: data.clone(),
            },
        );
    }
    assert_frame(
        &reader.get(seq).unwrap(),
        &Rec::Blob {
            kind: 9,
            ts: 5,
            data: b"8=FIX.4.4|35".to_vec(),
        },
    );
    assert_eq!(
        reader.get(big).unwrap().offset(),
        64,
        "a segment-sized blob starts a fresh segment"
    );
    assert_eq!(reader.last_seq(), big);
}

#[test]
fn a_second_writer_is_refused() {
    let tmp = TempDir::new("locked");
    let _writer = JournalWriter::open(tmp.journal(), small_config()).unwrap();
    match JournalWriter::open(tmp.journal(), small_config()) {
        Err(JournalError::Locked { path }) => assert!(path.ends_with("journal.lock")),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        aaiti_journal::recover(tmp.journal()),
        Err(JournalError::Locked { .. })
    ));
}

#[test]
fn an_empty_journal_reads_as_empty() {
    let tmp = TempDir::new("empty");
    drop(JournalWriter::open(tmp.journal(), small_config()).unwrap());
    let reader = JournalReader::open(tmp.journal()).unwrap();
    assert!(reader.is_empty());
    assert_eq!((reader.first_seq(), reader.last_seq()), (1, 0));
    assert!(reader.iter().next().is_none());
    assert!(reader.seek_seq(1).unwrap().next().is_none());
    let writer = JournalWriter::open(tmp.journal(), small_config()).unwrap();
    assert_eq!(writer.next_seq(), 1);
}

#[test]
fn a_spare_too_small_for_a_record_is_skipped_and_followers_get_past_it() {
    let tmp = TempDir::new("small-spare");
    let dir = tmp.journal();
    // A 64 KiB journal whose next segment (a 64 KiB spare) is already prepared.
    let small = JournalConfig {
        maintenance: Maintenance::Manual,
        ..small_config()
    };
    let mut writer = JournalWriter::open(&dir, small).unwrap();
    append(&mut writer, &record(0));
    writer.maintain();
    drop(writer);
    assert_eq!(util::segment_files(&dir).len(), 2);

    // Reopened with 256 KiB segments, a 100 KiB blob fits neither the current segment nor
    // the small spare: the spare is sealed empty and the record starts a new segment.
    let big = JournalConfig {
        segment_size_bytes: 256 * 1024,
        ..small_config()
    };
    let mut writer = JournalWriter::open(&dir, big).unwrap();
    let data = vec![7u8; 100 * 1024];
    let seq = writer.append_blob(1, UnixNanos(1), &data).unwrap();
    assert_eq!(seq, 2);
    assert_eq!(writer.active_segment(), 2);
    append(&mut writer, &record(2));
    drop(writer);

    let reader = JournalReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq(), 3);
    assert_frame(
        &reader.get(2).unwrap(),
        &Rec::Blob {
            kind: 1,
            ts: 1,
            data: data.clone(),
        },
    );
    let mut follower = aaiti_journal::Follower::open(&dir, 1).unwrap();
    let seqs: Vec<u64> = std::iter::from_fn(|| follower.poll().unwrap().map(|f| f.seq())).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    drop(reader);
    let writer = JournalWriter::open(&dir, small_config()).unwrap();
    assert!(writer.recovery_report().repairs.is_empty());
    assert_eq!(writer.next_seq(), 4);
}
