//! `aaiti-book`: L2 order books per (venue, instrument) on fixed-point prices, and a
//! consolidated top of book across venues for one asset.
//!
//! * [`L2Book`]: price levels of one instrument on one venue. Apply level updates
//!   ([`L2Book::apply`], [`L2Book::apply_delta`]), replace with a snapshot, clear; query best
//!   bid/ask, depth, mid, microprice, imbalance, spread, level counts, the ordered levels and
//!   a [`TopOfBook`](aaiti_model::TopOfBook) record.
//! * [`ConsolidatedTop`]: the best bid and ask across venues, each tagged with its venue,
//!   with prices and quantities normalised to common scales.
//!
//! # Data structure
//!
//! Prices become tick indices (`price / tick`, computed with a multiply and a rotate rather
//! than a division). Each side keeps:
//!
//! * a **window**: an array of quantities for `window_ticks` consecutive ticks (a power of
//!   two, default and largest [`DEFAULT_WINDOW_TICKS`] = 2^18) used as a ring
//!   (`tick & (window - 1)`), placed so that the touch sits near its inner edge with room
//!   for the book behind it;
//! * a two-level **occupancy bitmap** over the window (a bit per tick, a bit per 64 ticks),
//!   so the level after a deleted best is found with one or two `trailing_zeros`;
//! * the **best** tick cached, and the **level count** kept incrementally;
//! * an **overflow** `BTreeMap` for levels outside the window, so any price is kept
//!   exactly: there is no price range outside which levels are dropped.
//!
//! Bids are stored under negated tick indices, so both sides are "lower is better" and share
//! one implementation. An update inside the window does not branch on the slot's previous
//! contents (insert, modify, delete and delete-of-nothing run the same instructions), so a
//! cache miss on a far level does not turn into a mispredicted branch that discards the
//! work already started on the following updates.
//!
//! When the touch moves past the window's inner edge, or drifts half a window away from it,
//! the window re-centres. Because it is a ring, a move only migrates the levels that change
//! store (between the ring and the overflow map); it never copies the array.
//!
//! | operation | cost |
//! |---|---|
//! | set/delete a level inside the window | O(1): about 80 instructions with validation, no branch on the old contents |
//! | delete the best level | O(1): one or two `trailing_zeros`; a scan of at most 64 words if the next level is over 4096 ticks away |
//! | set/delete a level beyond the window | O(log n) in the overflow map |
//! | window move | O(levels migrated × log n), amortised by hysteresis |
//! | best bid/ask, spread, mid, microprice, counts | O(1) |
//! | depth / imbalance over N levels | O(N) bitmap walk (plus overflow iteration) |
//!
//! `benches/book.rs` measures it on the recorded BTCUSDT diff-depth feed (levels from 0.25×
//! to 3× the price) and on a synthetic 1 M-update stream, beside a `BTreeMap` book in the
//! same run: about 100 M updates/s (≈10 ns per update), five to seven times the `BTreeMap`
//! book, on a shared 2-core EPYC VM.
//!
//! # Example
//!
//! ```
//! use aaiti_book::L2Book;
//! use aaiti_model::{InstrumentId, Price, Qty, Side};
//!
//! // BTCUSDT: prices at 2 decimal places, tick 0.01 (mantissa 1); quantities at 8.
//! let mut book = L2Book::new(Price(1))?;
//! book.apply(Side::Buy, Price(6_173_763), Qty(378_826_000))?; // 61737.63 x 3.78826
//! book.apply(Side::Buy, Price(6_173_762), Qty(61_700_000))?;
//! book.apply(Side::Sell, Price(6_173_764), Qty(154_698_000))?;
//! book.apply(Side::Sell, Price(2_000_000_000), Qty(1))?; // far away: kept too
//!
//! assert_eq!(book.best_bid(), Some((Price(6_173_763), Qty(378_826_000))));
//! assert_eq!(book.spread(), Some(Price(1)));
//! assert_eq!(book.mid_x2(), Some(12_347_527)); // 61737.635 exactly, at twice the mantissa
//! assert_eq!(book.level_count(Side::Sell), 2);
//!
//! book.apply(Side::Buy, Price(6_173_763), Qty(0))?; // quantity 0 deletes
//! assert_eq!(book.best_bid(), Some((Price(6_173_762), Qty(61_700_000))));
//!
//! let mut top3 = [(Price(0), Qty(0)); 3];
//! let n = book.depth(Side::Sell, &mut top3);
//! assert_eq!(&top3[..n], &[(Price(6_173_764), Qty(154_698_000)), (Price(2_000_000_000), Qty(1))]);
//!
//! assert!(book.apply(Side::Buy, Price(-5), Qty(1)).is_err()); // typed error, book unchanged
//! let tob = book.top_of_book(InstrumentId(7));
//! assert_eq!(tob.ask_price, Price(6_173_764));
//! # Ok::<(), aaiti_book::BookError>(())
//! ```
//!
//! # Limits
//!
//! * Prices must be positive multiples of the tick no larger than [`L2Book::MAX_PRICE`]
//!   (`2^62 - 1`); quantities must not be negative. Anything else is a [`BookError`], never
//!   a panic, and leaves the book unchanged.
//! * No allocation on the hot path in steady state: the window and bitmaps are allocated by
//!   the constructor. Inserting a level beyond the window allocates in the overflow map,
//!   and so can a window move that evicts levels into it.
//! * Memory: each book reserves about 4 MiB of address space (the largest window on both
//!   sides). The OS backs it lazily, so resident memory follows where the levels are: at
//!   most `16 × window_ticks` bytes plus the overflow map. The first update landing in a
//!   fresh page takes a page fault; [`L2Book::prefault`] takes them all at start-up.
//! * A single update can trigger a window move costing O(levels migrated): a new best far
//!   outside the window (a fat-finger level) moves every window level to the overflow map,
//!   and they move back when it is deleted.
//! * The book stores crossed or locked states if the venue sends them
//!   ([`L2Book::is_crossed`]); sequencing and gap detection belong to the feed handler.
//! * Derived analytics ([`L2Book::microprice`], [`L2Book::imbalance`]) are `f64`.
#![forbid(unsafe_code)]

mod bitset;
mod book;
mod consolidated;
mod error;
mod side;
mod tick;

pub use book::{DEFAULT_WINDOW_TICKS, L2Book, Levels, MAX_WINDOW_TICKS};
pub use consolidated::{ConsolidatedError, ConsolidatedTop, Quote, VenueLevel, VenueScales};
pub use error::BookError;
