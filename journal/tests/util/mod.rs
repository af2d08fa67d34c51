//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aaiti_journal::{Durability, Frame, FrameBody, JournalConfig, JournalWriter, Maintenance};
use aaiti_model::{
    AccountId, BookAction, BookDelta, Control, ControlAction, Envelope, InstrumentId, OrderEvent,
    OrderEventKind, OrderId, Price, Qty, RecordHeader, Side, StreamId, TopOfBook, Trade, UnixNanos,
};

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join("aaiti-journal-tests")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The journal directory inside.
    pub(crate) fn journal(&self) -> PathBuf {
        self.0.join("journal")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 64 KiB segments, `none`, background maintenance.
pub(crate) fn small_config() -> JournalConfig {
    JournalConfig {
        segment_size_bytes: 64 * 1024,
        durability: Durability::None,
        prefault: true,
        prefault_window_bytes: 64 * 1024,
        maintenance: Maintenance::Background,
    }
}

/// What a test appended.
#[derive(Debug, Clone)]
pub(crate) enum Rec {
    Env(Envelope),
    Blob { kind: u16, ts: u64, data: Vec<u8> },
}

impl Rec {
    pub(crate) fn ts_recv(&self) -> u64 {
        match self {
            Rec::Env(e) => e.header.ts_recv.0,
            Rec::Blob { ts, .. } => *ts,
        }
    }
}

/// An envelope of one of five kinds, chosen by `i`.
pub(crate) fn envelope(i: u64, ts_recv: u64) -> Envelope {
    let header = RecordHeader::new(
        StreamId((i % 3) as u16),
        i + 1,
        UnixNanos(ts_recv - 5),
        UnixNanos(ts_recv),
    );
    let instrument = InstrumentId((i % 7) as u32);
    match i % 5 {
        0 => Envelope::new(
            header,
            &Trade {
                instrument,
                aggressor: Side::Buy.code(),
                price: Price(6_000_000 + i as i64),
                qty: Qty(i as i64 + 1),
                trade_id: i,
                ..Trade::default()
            },
        ),
        1 => Envelope::new(
            header,
            &BookDelta {
                instrument,
                side: Side::Sell.code(),
                action: BookAction::Set.code(),
                price: Price(6_000_100 - i as i64),
                qty: Qty(3),
                venue_seq: i * 2,
                ..BookDelta::default()
            },
        ),
        2 => Envelope::new(
            header,
            &TopOfBook {
                instrument,
                bid_price: Price(100),
                bid_qty: Qty(1),
                ask_price: Price(101),
                ask_qty: Qty(2),
                venue_seq: i,
                ..TopOfBook::default()
            },
        ),
        3 => Envelope::new(
            header,
            &OrderEvent {
                kind: OrderEventKind::Accepted.code(),
                side: Side::Buy.code(),
                account: AccountId(1),
                instrument,
                order_id: OrderId(i),
                exec_id: i * 3,
                ..OrderEvent::default()
            },
        ),
        _ => Envelope::new(
            header,
            &Control::new(ControlAction::Tick, AccountId(u32::MAX), i),
        ),
    }
}

/// A blob whose every data byte is non-zero; length varies with `i` (padding varies too).
pub(crate) fn blob(i: u64, ts_recv: u64) -> Rec {
    let len = 1 + (i as usize * 37) % 300;
    let data = (0..len)
        .map(|j| 1 + ((i as usize + j) % 251) as u8)
        .collect();
    Rec::Blob {
        kind: (i % 9) as u16 + 1,
        ts: ts_recv,
        data,
    }
}

/// Record `i` of the standard mix: mostly envelopes, every fourth a blob.
pub(crate) fn record(i: u64) -> Rec {
    let ts = 1_000_000 + i * 10;
    if i % 4 == 3 {
        blob(i, ts)
    } else {
        Rec::Env(envelope(i, ts))
    }
}

pub(crate) fn append(writer: &mut JournalWriter, rec: &Rec) -> u64 {
    match rec {
        Rec::Env(e) => writer.append_envelope(e).unwrap(),
        Rec::Blob { kind, ts, data } => writer.append_blob(*kind, UnixNanos(*ts), data).unwrap(),
    }
}

/// Asserts a frame carries exactly `rec` (byte-identical envelope bytes).
pub(crate) fn assert_frame(frame: &Frame<'_>, rec: &Rec) {
    match (frame.body(), rec) {
        (FrameBody::Envelope(bytes), Rec::Env(e)) => {
            assert_eq!(bytes, e.as_bytes(), "seq {}", frame.seq());
            let back = frame.envelope().unwrap().unwrap();
            assert_eq!(back.as_bytes(), e.as_bytes());
        }
        (
            FrameBody::Blob {
                kind,
                ts_recv,
                data,
            },
            Rec::Blob {
                kind: k,
                ts,
                data: d,
            },
        ) => {
            assert_eq!(
                (kind, ts_recv.0, data),
                (*k, *ts, d.as_slice()),
                "seq {}",
                frame.seq()
            );
        }
        (body, rec) => panic!("seq {}: frame {body:?} but expected {rec:?}", frame.seq()),
    }
    assert_eq!(frame.ts_recv().0, rec.ts_recv());
}

/// Every file under `dir` (recursively) with its bytes.
pub(crate) fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Segment files of a journal, sorted.
pub(crate) fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    out.sort();
    out
}

/// Copies the journal's files (not the lock) into `to`.
pub(crate) fn copy_journal(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for path in segment_files(from) {
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}
