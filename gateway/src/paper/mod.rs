//! The embedded paper venue: a deterministic simulated exchange that fills the engine's
//! orders against the real (live or replayed) market.
//!
//! It runs synchronously inside the engine's trading stage, is fed every market-data event,
//! and takes time only from its arguments (engine time, i.e. event timestamps), so the same
//! inputs always give the same outputs: replaying the journal rebuilds it, and a snapshot
//! ([`PaperVenue`] is `Serialize`/`Deserialize`) restores it exactly.
//!
//! # Call sequence
//!
//! The venue reads books through [`Books`] / [`DepthView`] (the engine implements them for
//! its `aaiti_book::L2Book`s; this crate does not depend on `aaiti-book`). Every entry point
//! first advances the venue clock to `now` and applies the requests and expiries due by then.
//!
//! ```text
//! order command (from the OMS)   submit(order, ts, &books) / cancel(id, ts, &books)
//!                                / replace(id, price, qty, ts, &books)
//! market event at ts:            on_time(ts, &books)            -- before the book changes
//!                                (engine applies the event to its book)
//!   BookDelta Set/Delete         on_book_delta(instr, side, price, qty, ts, &books)
//!   BookDelta Clear              on_book_clear(instr, ts, &books)
//!   FeedEvent BookValid          on_book_valid(instr, ts, &books)
//!   Trade                        on_trade(instr, price, qty, aggressor, ts, &books)
//!                                (or on_book_delta_record / on_trade_record on the records)
//! timer (ControlAction::Tick)    on_time(ts, &books), due at next_due()
//! after each input               drain(|event| ...)             -- to the OMS / journal
//! snapshot                       postcard::to_allocvec(&venue) / postcard::from_bytes
//! ```
//!
//! Calling `on_time` before the engine's book applies an event makes requests due before the
//! event see the book as it was; without it they see the updated book (an error of at most
//! one event).
//!
//! # Model
//!
//! * **Latency.** A request submitted at `t` takes effect at `t + latency_us` of engine time,
//!   in submission order (one latency for all requests). Events carry the time the venue
//!   acted; the way back to the engine is not delayed.
//! * **Taking liquidity.** A market order, or a limit order crossing the opposite best, walks
//!   the opposite side's displayed levels best first up to its limit (at most
//!   `max_walk_levels`), one taker fill per level at the level's price. Market orders never
//!   rest; IOC and market remainders expire; a FOK that cannot fill completely is rejected
//!   (`FillOrKillUnfilled`) with nothing filled; a market order finding nothing is rejected
//!   (`NoLiquidity`); a post-only order that would take is rejected (`PostOnlyWouldCross`);
//!   on an invalid book every new order is rejected (`BookInvalid`).
//! * **Consumed liquidity.** The real book does not know about paper fills, so the venue
//!   remembers, per level, what it has taken and the quantity displayed then. When the level
//!   later shows less, the market is taken to have removed the front of the level first — the
//!   part we took — so the consumed amount shrinks by the decrease; additions join behind and
//!   do not change it; a level deleted (or a book cleared) forgets it. Available liquidity =
//!   displayed − consumed, so two orders never take the same displayed quantity, and a level
//!   only refills for us once the market has removed what we took.
//! * **Resting orders and queue position.** A resting order starts behind the displayed
//!   quantity at its price on its side (`queue_ahead`; 0 on a new level). A trade printing
//!   *through* its price (below a buy, above a sell; any aggressor) fills it at its own price
//!   as maker, up to the trade's quantity shared in price-time priority (`trade_through =
//!   "trade_qty"`) or completely (`"full"`), and clears its queue. A trade *at* its price
//!   whose aggressor is the other side (or unknown) walks the virtual queue: the real
//!   quantity ahead first, then our orders in time priority; what is left fills them; every
//!   order's `queue_ahead` drops by the trade's quantity. When the level shrinks by more than
//!   the trades there explain, the rest are cancels, applied by `queue_model`:
//!   `conservative` (all behind us), `proportional` (the default: `cancelled × ahead /
//!   level`), `optimistic` (all ahead). The estimate never exceeds the displayed level.
//! * **Crossing book.** When the opposite displayed side moves to or through a resting
//!   order's price, the order fills at its own price as **maker** (the incoming real orders
//!   would have hit it), up to the unconsumed crossing quantity, which it then consumes.
//! * **Own orders never match each other** (no self-trade): each fills only against the real
//!   market.
//! * **Replace** (`qty` is the new total, filled included; it must exceed the filled
//!   quantity): same price and less quantity keeps the queue position; a price change or more
//!   quantity re-queues behind the displayed level and takes liquidity first if marketable.
//! * **Fees**: `notional × rate`, rate in basis points per fill (maker or taker), in the quote
//!   asset at the price scale, rounded once toward +∞ ([`fee`]).
//! * **Expiry**: `Day` orders at the next `day_roll_utc_s` after they took effect, `Gtd` at
//!   their `expire_at` (already past: rejected `VenueReject`).
//! * **Ids**: `exec_id` is a counter (1, 2, ...); order id 0 or an id live or remembered
//!   (`done_orders_kept`) is rejected `VenueReject`; cancel/replace of a remembered finished
//!   order gets `TooLateToCancel`, of an unknown one `UnknownOrder`.
//!
//! # Cost
//!
//! Resting orders sit per instrument and side in a price-time sorted `Vec` with the best
//! last: a trade or a book update touches the affected orders only (O(log n + k)); placing or
//! removing an order is a binary search plus a shift. Slots, index, queues and buffers are
//! allocated up front (`max_orders`); inputs never allocate in steady state, and no input
//! (absurd prices, negative quantities, unknown ids or instruments) panics.
//!
//! # Configuration
//!
//! ```toml
//! [paper]
//! # One-way latency to the venue, in microseconds of engine (event) time. 0: immediate.
//! latency_us = 1000
//! # Fee rates in basis points of the notional; negative = rebate; exact to 0.0001 bp.
//! maker_fee_bp = 10.0
//! taker_fee_bp = 10.0
//! # Queue position on cancels: "conservative", "proportional" or "optimistic".
//! queue_model = "proportional"
//! # Trades through a resting price fill: "trade_qty" (up to the trade) or "full".
//! trade_through = "trade_qty"
//! # Most resting orders (and requests in flight); pre-allocated.
//! max_orders = 16384
//! # Most levels a taker order walks.
//! max_walk_levels = 1000
//! # Finished order ids remembered for TooLateToCancel.
//! done_orders_kept = 16384
//! # Day orders expire at this many seconds after 00:00 UTC.
//! day_roll_utc_s = 0
//! ```
//!
//! # Example
//!
//! ```
//! use aaiti_gateway::paper::{
//!     Liquidity, PaperConfig, PaperOrder, PaperVenue, VecBook, VenueEventKind,
//! };
//! use aaiti_model::{
//!     AccountId, InstrumentId, OrderId, OrderType, Price, Qty, Scale, Side, TimeInForce,
//!     UnixNanos,
//! };
//!
//! let config = PaperConfig { latency_us: 0, ..PaperConfig::default() };
//! let mut venue = PaperVenue::new(config)?;
//! venue.add_instrument(InstrumentId(0), Scale::new(3).unwrap())?;
//! let mut book = VecBook::new();
//! book.set(Side::Sell, Price(10_000), Qty(1_000));
//! book.set(Side::Sell, Price(10_001), Qty(1_000));
//! let books = [book];
//!
//! let order = PaperOrder {
//!     order_id: OrderId(1),
//!     account: AccountId(0),
//!     instrument: InstrumentId(0),
//!     side: Side::Buy,
//!     order_type: OrderType::Market,
//!     price: Price(0),
//!     qty: Qty(1_500),
//!     tif: TimeInForce::Ioc,
//!     post_only: false,
//!     expire_at: UnixNanos::ZERO,
//! };
//! venue.submit(order, UnixNanos(1), &books[..]);
//! let mut fills = Vec::new();
//! venue.drain(|event| {
//!     if let VenueEventKind::Fill { price, qty, liquidity, .. } = event.kind {
//!         assert_eq!(liquidity, Liquidity::Taker);
//!         fills.push((price, qty));
//!     }
//! });
//! assert_eq!(fills, [(Price(10_000), Qty(1_000)), (Price(10_001), Qty(500))]);
//! # Ok::<(), aaiti_gateway::paper::PaperError>(())
//! ```

mod config;
mod depth;
mod fees;
mod venue;

#[cfg(test)]
mod tests;

use aaiti_model::InstrumentId;
use serde::{Deserialize, Serialize};

pub use config::{FeeBp, PaperConfig, QueueModel, TradeThrough};
pub use depth::{Books, DepthView, VecBook};
pub use fees::fee;
pub use venue::{
    Liquidity, MAX_INSTRUMENTS, OrderView, PaperOrder, PaperVenue, VenueEvent, VenueEventKind,
};

/// Why the paper venue cannot be built or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaperError {
    /// A configuration value is out of range.
    #[error("[paper] `{key}` is out of range: {fix}")]
    Config {
        /// The key.
        key: &'static str,
        /// What to write instead.
        fix: &'static str,
    },
    /// The instrument id is beyond [`MAX_INSTRUMENTS`].
    #[error("instrument id {0} is beyond the paper venue's limit of 65536 instruments")]
    InstrumentIdTooLarge(InstrumentId),
    /// The instrument is already registered.
    #[error("instrument id {0} is already registered with the paper venue")]
    InstrumentExists(InstrumentId),
    /// A snapshot's state is inconsistent.
    #[error("paper venue snapshot is corrupt: {0}")]
    CorruptSnapshot(&'static str),
}

/// Counters of the paper venue (part of its snapshot).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperStats {
    /// Requests received (submit, cancel, replace).
    pub requests: u64,
    /// Orders accepted.
    pub accepted: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Fills.
    pub fills: u64,
    /// Orders canceled.
    pub canceled: u64,
    /// Orders expired (IOC and market remainders included).
    pub expired: u64,
    /// Replaces applied.
    pub replaced: u64,
    /// Cancels and replaces refused.
    pub cancel_rejected: u64,
    /// Market events ignored: unknown instrument, non-positive price or quantity, unknown
    /// codes in records.
    pub ignored_market_events: u64,
}
