//! [`FeedConfig`]: the knobs every feed handler takes.

/// Configuration of a feed handler (one venue connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    /// A `Stale` event is emitted by `on_tick` when no message arrived for this long, for
    /// the whole feed and for each instrument that has had a message (nanoseconds).
    pub stale_after_ns: u64,
    /// A trade price, or a best bid/ask mid, further than this many basis points from the
    /// instrument's reference price is reported as an `OutlierPrice` event. 0 disables.
    pub outlier_band_bps: u32,
    /// After this many outliers in a row the reference price moves to the new level (the
    /// market really moved). At least 1.
    pub outlier_reanchor_after: u8,
    /// Book updates held per instrument while waiting for a snapshot (Binance); when full,
    /// the oldest is dropped (the next snapshot must then be newer).
    pub max_buffered_updates: usize,
    /// A message with more price levels than this is rejected (`TooLarge`).
    pub max_levels_per_message: usize,
    /// Accept (and ignore) fields a message type does not document. Off by default: an
    /// unexpected field means the venue changed its format, and the message is rejected
    /// (`UnknownField`) rather than guessed at.
    pub allow_unknown_fields: bool,
    /// Use the hand-written validating scanners for the hottest Binance message shapes
    /// (falling back to simd-json for anything else). Off only for differential testing.
    pub fast_path: bool,
    /// Each reject reason is logged at most once per this many nanoseconds of `ts_recv`.
    pub reject_log_interval_ns: u64,
    /// Kraken v2 book depth assumed until a subscribe acknowledgement says otherwise.
    pub kraken_v2_default_depth: u16,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            stale_after_ns: 5_000_000_000,
            outlier_band_bps: 1_000,
            outlier_reanchor_after: 3,
            max_buffered_updates: 10_000,
            max_levels_per_message: 100_000,
            allow_unknown_fields: false,
            fast_path: true,
            reject_log_interval_ns: 10_000_000_000,
            kraken_v2_default_depth: 10,
        }
    }
}
