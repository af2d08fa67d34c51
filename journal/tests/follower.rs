//! A follower tails a writer running in another thread, across segment rolls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod util;

use std::time::{Duration, Instant};

use aaiti_journal::{Follower, JournalConfig, JournalError, JournalWriter, Maintenance, PruneMode};
use util::{TempDir, append, assert_frame, record, small_config};

fn follow_live(config: JournalConfig, n: u64) {
    let tmp = TempDir::new("follow");
    let dir = tmp.journal();
    std::fs::create_dir_all(&dir).unwrap();
    // Opened before the writer created anything.
    let mut follower = Follower::open(&dir, 1).unwrap();
    assert!(follower.poll().unwrap().is_none());

    let writer_dir = dir.clone();
    let writer = std::thread::spawn(move || {
        let mut writer = JournalWriter::open(&writer_dir, config).unwrap();
        for i in 0..n {
            append(&mut writer, &record(i));
            if i % 500 == 0 {
                writer.commit().unwrap();
                writer.maintain();
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        writer.stats().rolls
    });

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "follower stuck at {seen}: {follower:?}"
        );
        if let Some(frame) = follower.wait(Duration::from_millis(10)).unwrap() {
            seen += 1;
            assert_eq!(frame.seq(), seen);
            assert_frame(&frame, &record(seen - 1));
        }
    }
    let rolls = writer.join().unwrap();
    assert!(rolls >= 5, "rolls {rolls}");
    assert!(follower.poll().unwrap().is_none());
    assert_eq!(follower.next_seq(), n + 1);
}

#[test]
fn follows_a_live_writer_across_rolls() {
    follow_live(small_config(), 6_000);
}

#[test]
fn follows_a_manual_maintenance_writer() {
    follow_live(
        JournalConfig {
            maintenance: Maintenance::Manual,
            prefault: false,
            ..small_config()
        },
        6_000,
    );
}

#[test]
fn follows_from_the_middle_and_reports_pruned_sequences() {
    let tmp = TempDir::new("follow-mid");
    let dir = tmp.journal();
    let mut writer = JournalWriter::open(&dir, small_config()).unwrap();
    for i in 0..3_000 {
        append(&mut writer, &record(i));
    }
    let mut follower = Follower::open(&dir, 1_234).unwrap();
    for seq in 1_234..=3_000 {
        let frame = follower.poll().unwrap().expect("written already");
        assert_eq!(frame.seq(), seq);
        assert_frame(&frame, &record(seq - 1));
    }
    assert!(follower.poll().unwrap().is_none());
    append(&mut writer, &record(3_000));
    assert_eq!(follower.poll().unwrap().unwrap().seq(), 3_001);

    let pruned = writer.prune_before(2_000, &PruneMode::Delete).unwrap();
    assert!(!pruned.is_empty());
    let first = pruned.last().unwrap().last_seq + 1;
    assert!(
        matches!(Follower::open(&dir, 1), Err(JournalError::SeqPruned { seq: 1, first: f }) if f == first)
    );
    let mut late = Follower::open(&dir, first).unwrap();
    assert_eq!(late.poll().unwrap().unwrap().seq(), first);
}

#[test]
fn readers_opened_during_live_appends_see_a_valid_prefix() {
    let tmp = TempDir::new("live-readers");
    let dir = tmp.journal();
    let mut writer = JournalWriter::open(&dir, small_config()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader_dir = dir.clone();
        let stop = &stop;
        let readers = scope.spawn(move || {
            let mut opened = 0;
            let mut last = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reader = aaiti_journal::JournalReader::open(&reader_dir)
                    .unwrap_or_else(|e| panic!("reader open during appends: {e}"));
                assert!(reader.report().torn_tail.is_none());
                assert!(reader.last_seq() >= last, "went backwards");
                last = reader.last_seq();
                for frame in reader.iter().step_by(97) {
                    assert_frame(&frame, &record(frame.seq() - 1));
                }
                opened += 1;
            }
            opened
        });
        for i in 0..20_000 {
            append(&mut writer, &record(i));
            if i % 2_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(readers.join().unwrap() > 0);
    });
    assert!(writer.stats().rolls >= 20);
}
