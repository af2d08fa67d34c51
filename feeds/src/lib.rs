//! `aaiti-feeds`: market data normalizers for Binance, Coinbase and Kraken, with the
//! venues' book synchronisation procedures, data-quality checks and replay of recordings.
//!
//! Each venue connection gets one handler ([`BinanceFeed`], [`CoinbaseFeed`],
//! [`KrakenV1Feed`], [`KrakenV2Feed`]), built from the [`InstrumentRegistry`], the venue's
//! [`VenueId`], the connection's [`StreamId`] and a [`FeedConfig`]. The handler takes raw
//! message bytes and appends [`aaiti_model`] records to a caller-owned [`RecordBuffer`]:
//!
//! * [`BookDelta`]: a snapshot is one `Clear` then `Set`s flagged `FLAG_SNAPSHOT`; an update
//!   is `Set`s (`Delete` for quantity 0); the last delta of each venue message carries
//!   `FLAG_LAST`; `venue_seq` is the venue's update id (Binance `u`) or a per-instrument
//!   update counter (Coinbase `l2update`, Kraken).
//! * [`Trade`], [`TopOfBook`] (Binance `bookTicker`, Coinbase `ticker`), [`BookCheck`]
//!   (Kraken's CRC32 after each book message, to verify against the built book).
//! * [`FeedEvent`]: `BookValid`, `Gap`, `ResyncRequested`, `Rejected` (the value is the
//!   [`RejectReason`] code), `Crossed`, `Stale`, `OutOfOrderTimestamp`, `OutlierPrice`.
//!
//! Every record is numbered `1, 2, 3...` in its stream ([`aaiti_model::RecordHeader::seq`]);
//! `ts_recv` is the caller's receive time and `ts_event` the venue's time (the receive time
//! when a message carries none: Binance spot `bookTicker` and REST snapshots, Coinbase
//! snapshots, Kraken v2 snapshots).
//!
//! ```
//! use aaiti_feeds::{BinanceFeed, FeedConfig, RecordBuffer};
//! use aaiti_model::{InstrumentRegistry, InstrumentSpec, StreamId, Trade, UnixNanos};
//!
//! let spec = InstrumentSpec {
//!     venue: "binance".into(), symbol: "BTCUSDT".into(), base: "BTC".into(),
//!     quote: "USDT".into(), price_scale: 2, qty_scale: 8, tick_size: "0.01".into(),
//!     lot_size: "0.00001".into(), min_notional: "5".into(),
//! };
//! let registry = InstrumentRegistry::from_specs(&[spec]).unwrap();
//! let venue = registry.venue_id("binance").unwrap();
//! let mut feed = BinanceFeed::new_spot(&registry, venue, StreamId(1), FeedConfig::default());
//! let mut out = RecordBuffer::new();
//! let mut msg = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#.to_vec();
//! feed.on_message(&mut msg, UnixNanos(1_723_161_254_087_896_568), &mut out).unwrap();
//! let trade = out.as_slice()[0].payload::<Trade>().unwrap();
//! assert_eq!(trade.price.0, 6_183_763);
//! assert_eq!(trade.qty.0, 2_000_000);
//! ```
//!
//! # Parsing
//!
//! Messages are parsed with simd-json's tape (buffers reused: no allocation per message in
//! steady state), decimal strings go straight to fixed point with
//! [`aaiti_model::fixed::parse_fixed`] (exact; exponents, rounding and overflow are
//! rejected). The hottest Binance shapes (`depthUpdate`, `trade`, `bookTicker` on combined
//! streams) first go through hand-written validating scanners that either produce exactly
//! what the general path would or hand the message over to it.
//!
//! # Bad input
//!
//! A message that is truncated, not JSON, of an unknown type, with unknown, duplicate,
//! missing or mistyped fields, with exponent or out-of-range numbers, negative quantities or
//! an unknown symbol returns [`FeedError::Rejected`] with a [`RejectReason`], appends a
//! `Rejected` [`FeedEvent`], is counted in [`FeedStats`] and logged (rate-limited per
//! reason); the handler's books and sequences are untouched. Nothing panics.
//!
//! # Limits
//!
//! The normalizers do no I/O: the [`live`] module's WebSocket/REST clients, [`replay`] and
//! the pipeline drive them through [`FeedHandler`], [`BinanceFeed::needs_snapshot`] and
//! [`BinanceFeed::on_depth_snapshot`]. Kraken checksums are emitted as [`BookCheck`]
//! records, not verified here. Coinbase Exchange `level2` carries no sequence numbers, so
//! gaps there are undetectable (Advanced Trade's `sequence_num` is checked).
#![forbid(unsafe_code)]

mod binance;
mod buffer;
mod coinbase;
mod config;
mod core;
mod error;
mod json;
mod kraken;
pub mod live;
mod quality;
pub mod replay;
mod stats;
mod symbols;
mod text;

#[cfg(doc)]
use aaiti_model::{BookCheck, BookDelta, FeedEvent, InstrumentRegistry, TopOfBook, Trade};
use aaiti_model::{InstrumentId, StreamId, UnixNanos, VenueId};

pub use crate::{
    binance::{BinanceFeed, BinanceMarket},
    buffer::RecordBuffer,
    coinbase::CoinbaseFeed,
    config::FeedConfig,
    error::{FeedError, MessageKind, MessageOutcome, Reject, RejectReason},
    kraken::{KrakenV1Feed, KrakenV2Feed},
    stats::FeedStats,
};

/// What every venue handler offers, so replay and the pipeline can drive any of them.
pub trait FeedHandler {
    /// Normalizes one message received at `ts_recv`, appending records to `out`.
    ///
    /// The bytes may be modified (simd-json unescapes strings in place).
    ///
    /// # Errors
    ///
    /// [`FeedError::Rejected`] for bad input; a `Rejected` [`FeedEvent`] is appended and the
    /// handler's state is otherwise unchanged.
    fn on_message(
        &mut self,
        bytes: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> Result<MessageOutcome, FeedError>;

    /// Staleness check at `now` (wall clock live, recorded time in replay): appends one
    /// `Stale` event for the feed and for each instrument that has gone quiet for longer
    /// than [`FeedConfig::stale_after_ns`], once until they hear again. Returns the number of
    /// events appended.
    fn on_tick(&mut self, now: UnixNanos, out: &mut RecordBuffer) -> usize;

    /// The handler's counters.
    fn stats(&self) -> &FeedStats;

    /// The venue.
    fn venue(&self) -> VenueId;

    /// The stream the records are numbered in.
    fn stream(&self) -> StreamId;

    /// `seq` of the last record appended (0 before the first).
    fn last_seq(&self) -> u64;

    /// True while the instrument's book is synchronised (it may be traded on).
    fn is_book_valid(&self, instrument: InstrumentId) -> bool;

    /// Marks the instrument's book invalid (for example after a checksum mismatch found by
    /// the book builder) and appends `ResyncRequested`. Updates are then held back or
    /// dropped until the venue's snapshot arrives. False if the instrument is not on this
    /// connection.
    fn request_resync(
        &mut self,
        instrument: InstrumentId,
        now: UnixNanos,
        out: &mut RecordBuffer,
    ) -> bool;
}
