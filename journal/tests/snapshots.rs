//! Snapshots, falling back past a corrupt one, and retention.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use aaiti_journal::{JournalError, JournalReader, JournalWriter, PruneMode, SnapshotStore};
use util::{TempDir, append, assert_frame, record, segment_files, small_config};

#[test]
fn the_latest_valid_snapshot_wins_and_corrupt_ones_are_reported() {
    let tmp = TempDir::new("snap");
    let store = SnapshotStore::open(tmp.journal()).unwrap();
    assert!(store.load_latest().unwrap().snapshot.is_none());
    store.write(100, b"state at 100").unwrap();
    let newest = store.write(200, b"state at 200").unwrap();
    let latest = store.load_latest().unwrap();
    let snap = latest.snapshot.unwrap();
    assert_eq!(
        (snap.covered_seq, snap.state.as_slice()),
        (200, b"state at 200".as_slice())
    );
    assert!(latest.skipped.is_empty());

    // Corrupt the newest: one state byte.
    let file = OpenOptions::new().write(true).open(&newest).unwrap();
    file.write_all_at(b"X", 45).unwrap();
    let latest = store.load_latest().unwrap();
    let snap = latest.snapshot.unwrap();
    assert_eq!(
        (snap.covered_seq, snap.state.as_slice()),
        (100, b"state at 100".as_slice())
    );
    assert_eq!(latest.skipped.len(), 1);
    assert_eq!(latest.skipped[0].path, newest);
    assert!(
        matches!(&latest.skipped[0].error, JournalError::BadSnapshot { reason, .. } if reason.contains("CRC")),
        "{:?}",
        latest.skipped[0].error
    );

    // Truncated, and ahead of the journal.
    std::fs::write(&newest, b"AAITISNP").unwrap();
    assert!(store.load(&newest).is_err());
    store.write(300, b"state at 300").unwrap();
    let latest = store.load_latest_at_most(250).unwrap();
    assert_eq!(latest.snapshot.unwrap().covered_seq, 100);
    assert_eq!(latest.skipped.len(), 2);

    // Retention keeps the newest valid one(s), leaves newer corrupt ones for inspection.
    store.write(400, b"state at 400").unwrap();
    let deleted = store.prune(1).unwrap();
    let left: Vec<u64> = store.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(left, vec![400]);
    assert_eq!(deleted.len(), 3);
}

#[test]
fn resume_from_a_snapshot_and_prune_what_it_covers() {
    for mode in ["delete", "archive"] {
        let tmp = TempDir::new("prune");
        let dir = tmp.journal();
        let mut writer = JournalWriter::open(&dir, small_config()).unwrap();
        for i in 0..4_000 {
            append(&mut writer, &record(i));
        }
        let store = SnapshotStore::open(&dir).unwrap();
        store.write(2_500, b"engine state").unwrap();
        let segments_before = segment_files(&dir).len();

        let covered = store.load_latest().unwrap().snapshot.unwrap().covered_seq;
        let prune_mode = match mode {
            "delete" => PruneMode::Delete,
            _ => PruneMode::ArchiveTo(tmp.path().join("archive")),
        };
        let pruned = writer.prune_before(covered, &prune_mode).unwrap();
        assert!(!pruned.is_empty());
        assert_eq!(pruned[0].first_seq, 1);
        for p in &pruned {
            assert!(p.last_seq <= covered);
            assert!(!p.path.exists());
            assert_eq!(
                p.archived_to.as_ref().is_some_and(|a| a.exists()),
                mode == "archive"
            );
        }
        assert_eq!(segment_files(&dir).len(), segments_before - pruned.len());
        // Nothing more to prune for the same sequence; the active segment is never pruned.
        assert!(
            writer
                .prune_before(covered, &prune_mode)
                .unwrap()
                .is_empty()
        );
        drop(writer);

        // Recovery: newest valid snapshot, then replay only the tail.
        let reader = JournalReader::open(&dir).unwrap();
        let first = reader.first_seq();
        assert!(first > 1 && first <= covered + 1, "first {first}");
        let replay: Vec<u64> = reader
            .seek_seq(covered + 1)
            .unwrap()
            .map(|f| f.seq())
            .collect();
        assert_eq!(replay, (covered + 1..=4_000).collect::<Vec<_>>());
        assert_frame(&reader.get(4_000).unwrap(), &record(3_999));
        assert!(matches!(
            reader.seek_seq(1),
            Err(JournalError::SeqOutOfRange { .. })
        ));
        drop(reader);

        // The writer reopens a pruned journal and continues.
        let mut writer = JournalWriter::open(&dir, small_config()).unwrap();
        assert_eq!(writer.next_seq(), 4_001);
        assert_eq!(append(&mut writer, &record(4_000)), 4_001);
        // Everything but the active segment can go.
        let active = writer.active_segment();
        let rest = writer.prune_before(u64::MAX, &prune_mode).unwrap();
        assert!(rest.iter().all(|p| p.index < active));
        drop(writer);
        let reader = JournalReader::open(&dir).unwrap();
        assert_eq!(reader.segments().count(), 1);
        assert_eq!(reader.last_seq(), 4_001);
    }
}
