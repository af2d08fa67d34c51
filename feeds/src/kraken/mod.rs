//! Kraken WebSocket v1 and v2: `book` (snapshot, updates, CRC32 checksum) and `trade`.
//!
//! # Books
//!
//! Kraken's book channel needs no sequence numbers: a snapshot, then updates, each carrying
//! the CRC32 of the top 10 levels per side. Per Kraken's documentation, "after each update
//! the book should be truncated to your subscribed depth, as you won't receive qty 0 for
//! price levels that fall out of scope". The handlers therefore keep each book's price
//! ladder (prices only, capacity reserved up front) and emit a `Delete` for every level
//! pushed beyond the depth, so the deltas alone rebuild Kraken's book; then a [`BookCheck`]
//! with the venue's checksum follows the message's deltas, for the book builder to verify.
//! Levels republished into scope (v1 flag `"r"`) are ordinary `Set`s.
//!
//! `venue_seq` is a per-instrument counter of book messages (snapshot included).
//!
//! [`BookCheck`]: aaiti_model::BookCheck

mod v1;
mod v2;

pub use v1::KrakenV1Feed;
pub use v2::KrakenV2Feed;

use aaiti_model::{Side, UnixNanos};

use crate::{
    buffer::RecordBuffer,
    core::{FeedCore, Level},
    error::{MessageKind, MessageOutcome},
};

/// The prices of one book, best first per side (bids stored negated so both sides sort
/// ascending).
#[derive(Debug, Default)]
struct Ladder {
    keys: [Vec<i64>; 2],
}

impl Ladder {
    /// Reserves room for `depth` levels per side plus the inserts of one message, so that
    /// updates do not allocate.
    fn reserve(&mut self, depth: usize) {
        for keys in &mut self.keys {
            keys.reserve((depth + 64).saturating_sub(keys.len()));
        }
    }

    #[inline]
    fn key(side: Side, price: i64) -> (usize, i64) {
        match side {
            Side::Buy => (0, -price),
            Side::Sell => (1, price),
        }
    }

    /// Inserts the price (no-op if present).
    fn insert(&mut self, side: Side, price: i64) {
        let (s, key) = Self::key(side, price);
        if let Err(at) = self.keys[s].binary_search(&key) {
            self.keys[s].insert(at, key);
        }
    }

    /// Removes the price; false if absent.
    fn remove(&mut self, side: Side, price: i64) -> bool {
        let (s, key) = Self::key(side, price);
        match self.keys[s].binary_search(&key) {
            Ok(at) => {
                self.keys[s].remove(at);
                true
            }
            Err(_) => false,
        }
    }

    fn contains(&self, side: Side, price: i64) -> bool {
        let (s, key) = Self::key(side, price);
        self.keys[s].binary_search(&key).is_ok()
    }

    /// Removes the levels beyond `depth`, appending a delete for each to `out`.
    fn truncate(&mut self, depth: usize, out: &mut Vec<Level>) -> usize {
        let mut removed = 0;
        for (s, side) in [(0, Side::Buy), (1, Side::Sell)] {
            let keys = &mut self.keys[s];
            if keys.len() > depth {
                removed += keys.len() - depth;
                for &key in &keys[depth..] {
                    let price = if s == 0 { -key } else { key };
                    out.push(Level {
                        side,
                        price,
                        qty: 0,
                    });
                }
                keys.truncate(depth);
            }
        }
        removed
    }

    fn clear(&mut self) {
        self.keys[0].clear();
        self.keys[1].clear();
    }
}

/// One Kraken book.
#[derive(Debug, Default)]
struct KrakenBook {
    synced: bool,
    ladder: Ladder,
    /// Book messages so far (the `venue_seq` of the last one).
    messages: u64,
}

/// Scratch shared by the book appliers.
#[derive(Debug, Default)]
struct Scratch {
    emit: Vec<Level>,
}

/// Applies a snapshot: the book becomes `levels` truncated to `depth`.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per protocol version"
)]
fn apply_snapshot(
    core: &mut FeedCore,
    out: &mut RecordBuffer,
    local: usize,
    book: &mut KrakenBook,
    levels: &[Level],
    depth: usize,
    checksum: Option<u32>,
    ts: (UnixNanos, UnixNanos),
    scratch: &mut Scratch,
) -> MessageOutcome {
    book.ladder.clear();
    book.ladder.reserve(depth);
    for level in levels.iter().filter(|l| l.qty > 0) {
        book.ladder.insert(level.side, level.price);
    }
    scratch.emit.clear();
    core.stats.truncated_levels += book.ladder.truncate(depth, &mut scratch.emit) as u64;
    scratch.emit.clear();
    scratch.emit.extend(
        levels
            .iter()
            .filter(|l| l.qty > 0 && book.ladder.contains(l.side, l.price)),
    );
    book.messages += 1;
    book.synced = true;
    core.snapshot(out, local, &scratch.emit, book.messages, ts);
    if let Some(checksum) = checksum {
        core.book_check(out, local, checksum, book.messages, ts);
    }
    core.book_valid(out, local, book.messages, ts);
    MessageOutcome::Applied(MessageKind::BookSnapshot)
}

/// Applies an update (levels in message order), truncates to `depth`, emits the deltas and
/// the checksum record.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site per protocol version"
)]
fn apply_update(
    core: &mut FeedCore,
    out: &mut RecordBuffer,
    local: usize,
    book: &mut KrakenBook,
    levels: &[Level],
    depth: usize,
    checksum: Option<u32>,
    ts: (UnixNanos, UnixNanos),
    scratch: &mut Scratch,
) -> MessageOutcome {
    if !book.synced {
        core.stats.updates_dropped += 1;
        return MessageOutcome::Dropped(MessageKind::BookUpdate);
    }
    scratch.emit.clear();
    for level in levels {
        if level.qty == 0 {
            // A level we do not hold (beyond the depth) needs no delete.
            if book.ladder.remove(level.side, level.price) {
                scratch.emit.push(*level);
            }
        } else {
            book.ladder.insert(level.side, level.price);
            scratch.emit.push(*level);
        }
    }
    core.stats.truncated_levels += book.ladder.truncate(depth, &mut scratch.emit) as u64;
    book.messages += 1;
    core.stats.updates_applied += 1;
    core.update(out, local, scratch.emit.iter(), book.messages, true, ts);
    if let Some(checksum) = checksum {
        core.book_check(out, local, checksum, book.messages, ts);
    }
    MessageOutcome::Applied(MessageKind::BookUpdate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_keeps_best_first_and_truncates_the_worst() {
        let mut ladder = Ladder::default();
        ladder.reserve(2);
        for price in [10, 12, 11] {
            ladder.insert(Side::Buy, price);
            ladder.insert(Side::Sell, price + 10);
        }
        ladder.insert(Side::Buy, 12);
        assert!(ladder.contains(Side::Buy, 11));
        let mut removed = Vec::new();
        assert_eq!(ladder.truncate(2, &mut removed), 2);
        assert_eq!(
            removed,
            [
                Level {
                    side: Side::Buy,
                    price: 10,
                    qty: 0
                },
                Level {
                    side: Side::Sell,
                    price: 22,
                    qty: 0
                }
            ]
        );
        assert!(ladder.remove(Side::Buy, 12));
        assert!(!ladder.remove(Side::Buy, 12));
    }
}
