//! [`FeatureEngine`]: one spec's features for one instrument, updated on every book update
//! and trade (sampling rules in the [module docs](super)).
//!
//! Features that read the same indicator share it: the SMA and Bollinger features of one
//! period share a rolling window, MACD lines of the same periods one MACD, and so on. Each
//! shared *source* is pushed once per sample and summarised once per closed sample; the
//! features then only read the summary.

use aaiti_book::L2Book;
use aaiti_model::{Instrument, InstrumentId, Price, Qty, Side, Trade, UnixNanos};
use serde::{Deserialize, Serialize};

use super::indicators::{Ema, IntSum, Macd, Ring, RollingStats, RollingSum, Rsi, to_f64};
use super::{
    AverageOutput, BollingerOutput, FeatureKind, FeatureSpec, FeatureSpecError, FlowOutput,
    MacdOutput, Normalization,
};
use crate::market::InstrumentMarket;

/// A closed sample: its timestamp (the end of its sampling interval) and its mid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// `k × sample_ms`: the sampling boundary the closing update crossed last.
    pub ts: UnixNanos,
    /// Mid price after the closing update, price units.
    pub mid: f64,
}

/// The parameters that identify a shared source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKey {
    SquaredReturns(u32),
    Stats(u32),
    Ema(u32),
    Rsi(u32),
    Macd(u32, u32, u32),
    Flow(u32),
    Count(u32),
}

/// An indicator's state, shared by every feature that reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Source {
    /// Squared one-sample log returns (realized volatility).
    SquaredReturns(RollingSum),
    /// Mids as bid + ask mantissas (SMA, Bollinger).
    Stats(RollingStats),
    Ema(Ema),
    Rsi(Rsi),
    Macd(Macd),
    /// Buy and sell aggressor volume, quantity mantissas.
    Flow(IntSum, IntSum),
    /// Trades.
    Count(IntSum),
}

impl Source {
    fn new(key: SourceKey) -> Self {
        let n = |value: u32| value as usize;
        match key {
            SourceKey::SquaredReturns(window) => Self::SquaredReturns(RollingSum::new(n(window))),
            SourceKey::Stats(period) => Self::Stats(RollingStats::new(n(period))),
            SourceKey::Ema(period) => Self::Ema(Ema::new(period)),
            SourceKey::Rsi(period) => Self::Rsi(Rsi::new(period)),
            SourceKey::Macd(fast, slow, signal) => Self::Macd(Macd::new(fast, slow, signal)),
            SourceKey::Flow(window) => Self::Flow(IntSum::new(n(window)), IntSum::new(n(window))),
            SourceKey::Count(window) => Self::Count(IntSum::new(n(window))),
        }
    }

    /// Appends one sample.
    #[inline]
    fn push(&mut self, mid: f64, mid_x2: i64, change: Option<f64>, bucket: &Bucket) {
        match self {
            Self::SquaredReturns(sum) => {
                if let Some(change) = change {
                    sum.push(change * change);
                }
            }
            Self::Stats(stats) => stats.push(mid_x2),
            Self::Ema(ema) => ema.push(mid),
            Self::Rsi(rsi) => rsi.push(mid),
            Self::Macd(macd) => macd.push(mid),
            Self::Flow(buy, sell) => {
                buy.push(bucket.buy);
                sell.push(bucket.sell);
            }
            Self::Count(count) => count.push(bucket.count),
        }
    }

    /// The values features read, for the sample just closed (see [`Output`]).
    #[inline]
    fn summary(&self, to_price: f64) -> [f64; 2] {
        match self {
            Self::SquaredReturns(sum) => [sum.sum().max(0.0).sqrt(), 0.0],
            Self::Stats(stats) => [stats.mean() * to_price, stats.std() * to_price],
            Self::Ema(ema) => [ema.value(), 0.0],
            Self::Rsi(rsi) => [rsi.value(), 0.0],
            Self::Macd(macd) => [macd.line(), macd.signal()],
            Self::Flow(buy, sell) => {
                let (b, s) = (buy.sum(), sell.sum());
                [to_f64(b.wrapping_sub(s)), to_f64(b.wrapping_add(s))]
            }
            Self::Count(count) => [to_f64(count.sum()), 0.0],
        }
    }

    fn clear(&mut self) {
        match self {
            Self::SquaredReturns(sum) => sum.clear(),
            Self::Stats(stats) => stats.clear(),
            Self::Ema(ema) => ema.clear(),
            Self::Rsi(rsi) => rsi.clear(),
            Self::Macd(macd) => macd.clear(),
            Self::Flow(buy, sell) => {
                buy.clear();
                sell.clear();
            }
            Self::Count(count) => count.clear(),
        }
    }

    /// Restored state has the shape `fresh` (built from the same spec) has.
    fn fits(&self, fresh: &Self) -> bool {
        match (self, fresh) {
            (Self::SquaredReturns(a), Self::SquaredReturns(b)) => a.fits(b),
            (Self::Stats(a), Self::Stats(b)) => a.fits(b),
            (Self::Ema(a), Self::Ema(b)) => a.fits(b),
            (Self::Rsi(a), Self::Rsi(b)) => a.fits(b),
            (Self::Macd(a), Self::Macd(b)) => a.fits(b),
            (Self::Flow(a, c), Self::Flow(b, d)) => a.fits(b) && c.fits(d),
            (Self::Count(a), Self::Count(b)) => a.fits(b),
            _ => false,
        }
    }
}

/// How a feature gets its value: from the book at the closing update, the log-mid history,
/// or a source's summary (`source` indexes the engine's sources).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Output {
    Mid,
    SpreadBps,
    Microprice,
    MicropriceDeviationBps,
    BookImbalance {
        levels: usize,
    },
    LogReturn {
        horizon: usize,
    },
    RealizedVol {
        source: usize,
    },
    Sma {
        source: usize,
        output: AverageOutput,
    },
    Ema {
        source: usize,
        output: AverageOutput,
    },
    Rsi {
        source: usize,
    },
    Macd {
        source: usize,
        output: MacdOutput,
    },
    Bollinger {
        source: usize,
        k: f64,
        output: BollingerOutput,
    },
    TradeFlow {
        source: usize,
        output: FlowOutput,
    },
    TradeIntensity {
        source: usize,
        per_second: f64,
    },
}

/// The source a feature kind reads, if any.
fn source_key(kind: &FeatureKind) -> Option<SourceKey> {
    Some(match *kind {
        FeatureKind::RealizedVol { window } => SourceKey::SquaredReturns(window),
        FeatureKind::Sma { period, .. } | FeatureKind::Bollinger { period, .. } => {
            SourceKey::Stats(period)
        }
        FeatureKind::Ema { period, .. } => SourceKey::Ema(period),
        FeatureKind::Rsi { period } => SourceKey::Rsi(period),
        FeatureKind::Macd {
            fast, slow, signal, ..
        } => SourceKey::Macd(fast, slow, signal),
        FeatureKind::TradeFlow { window, .. } => SourceKey::Flow(window),
        FeatureKind::TradeIntensity { window } => SourceKey::Count(window),
        FeatureKind::Mid {}
        | FeatureKind::SpreadBps {}
        | FeatureKind::Microprice {}
        | FeatureKind::MicropriceDeviationBps {}
        | FeatureKind::BookImbalance { .. }
        | FeatureKind::LogReturn { .. } => return None,
    })
}

fn output(kind: &FeatureKind, source: usize, sample_ms: u32) -> Output {
    let n = |value: u32| value as usize;
    match *kind {
        FeatureKind::Mid {} => Output::Mid,
        FeatureKind::SpreadBps {} => Output::SpreadBps,
        FeatureKind::Microprice {} => Output::Microprice,
        FeatureKind::MicropriceDeviationBps {} => Output::MicropriceDeviationBps,
        FeatureKind::BookImbalance { levels } => Output::BookImbalance { levels: n(levels) },
        FeatureKind::LogReturn { horizon } => Output::LogReturn {
            horizon: n(horizon),
        },
        FeatureKind::RealizedVol { .. } => Output::RealizedVol { source },
        FeatureKind::Sma { output, .. } => Output::Sma { source, output },
        FeatureKind::Ema { output, .. } => Output::Ema { source, output },
        FeatureKind::Rsi { .. } => Output::Rsi { source },
        FeatureKind::Macd { output, .. } => Output::Macd { source, output },
        FeatureKind::Bollinger { k, output, .. } => Output::Bollinger { source, k, output },
        FeatureKind::TradeFlow { output, .. } => Output::TradeFlow { source, output },
        FeatureKind::TradeIntensity { window } => {
            // Trades in the window / its length in seconds.
            let seconds = f64::from(window) * f64::from(sample_ms) / 1000.0;
            Output::TradeIntensity {
                source,
                per_second: 1.0 / seconds,
            }
        }
    }
}

/// Trades since the last close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Bucket {
    buy: i128,
    sell: i128,
    count: i128,
}

/// Everything that changes as events arrive (one value, so snapshots cannot miss a field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Dynamic {
    /// Index `k` of the last closed sample.
    last_k: Option<u64>,
    /// Samples closed since the start or the last reset, saturating.
    samples: u64,
    /// Mid after the latest book update (carried over empty samples), as price units and as
    /// bid + ask mantissas.
    last_mid: f64,
    last_mid_x2: i64,
    /// ln(mid) of the samples, newest last; long enough for the longest log return.
    log_mid: Ring<f64>,
    bucket: Bucket,
    sources: Vec<Source>,
    raw: Vec<f64>,
    normalized: Vec<f32>,
    non_finite: bool,
    last_sample: Option<Sample>,
    /// Gaps that reset the history.
    resets: u64,
}

/// What [`FeatureEngine::snapshot`] writes.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The spec as JSON (it has a self-describing shape postcard cannot carry).
    spec: String,
    dynamic: Dynamic,
}

/// [`Saved`] by reference, so a snapshot does not clone the state.
#[derive(Serialize)]
struct SavedRef<'a> {
    spec: String,
    dynamic: &'a Dynamic,
}

/// One spec's features for one instrument. See the [module docs](super) for the sampling
/// rules and what each feature computes.
///
/// ```
/// use aaiti_core::market::Market;
/// use aaiti_core::signals::features::{FeatureEngine, FeatureSpec};
/// use aaiti_model::{BookAction, BookDelta, InstrumentRegistry, InstrumentSpec, Price, Qty, Side, UnixNanos};
///
/// let registry = InstrumentRegistry::from_specs(&[InstrumentSpec {
///     venue: "binance".into(), symbol: "BTCUSDT".into(), base: "BTC".into(),
///     quote: "USDT".into(), price_scale: 2, qty_scale: 8, tick_size: "0.01".into(),
///     lot_size: "0.00001".into(), min_notional: "5".into(),
/// }]).unwrap();
/// let instrument = &registry.instruments()[0];
/// let spec: FeatureSpec = serde_json::from_str(
///     r#"{"sample_ms": 100, "features": [{"name": "spread", "kind": "spread_bps"}]}"#,
/// ).unwrap();
/// let mut engine = FeatureEngine::new(&spec, instrument).unwrap();
/// let mut market = Market::new(&registry).unwrap();
/// for (side, price) in [(Side::Buy, 6_000_000), (Side::Sell, 6_000_100)] {
///     let delta = BookDelta {
///         instrument: instrument.id, side: side.code(), action: BookAction::Set.code(),
///         flags: BookDelta::FLAG_LAST, price: Price(price), qty: Qty(100_000_000),
///         ..BookDelta::default()
///     };
///     market.on_delta(&delta, UnixNanos(1_000_000_000));
/// }
/// let state = market.get(instrument.id).unwrap();
/// assert!(engine.on_book(state, UnixNanos(1_000_000_000)));
/// assert!(engine.warm());
/// assert!((engine.raw()[0] - 1.0 / 60_000.5 * 1e4).abs() < 1e-12);
/// ```
pub struct FeatureEngine {
    spec: FeatureSpec,
    instrument: InstrumentId,
    sample_ns: u64,
    /// [`FeatureSpec::history_samples`]: warm at this many samples; longer gaps reset.
    history: u64,
    /// 10^price_scale and 10^qty_scale, to real units.
    price_unit: f64,
    qty_unit: f64,
    /// Per feature, in spec order: where its value comes from.
    outputs: Vec<Output>,
    /// `(mean, 1 / std)` per feature; `(0, 1)` without normalisation.
    norms: Vec<(f64, f64)>,
    /// Most book levels any imbalance feature sums.
    max_levels: usize,
    /// Cumulative bid/ask quantity of the best levels at the closing update (scratch).
    bid_depth: Vec<i128>,
    ask_depth: Vec<i128>,
    /// Each source's summary for the sample just closed (scratch).
    summaries: Vec<[f64; 2]>,
    dynamic: Dynamic,
}

impl FeatureEngine {
    /// An engine for `spec` on `instrument` (its scales turn mantissas into prices and
    /// volumes). Allocates every buffer it will use.
    ///
    /// # Errors
    ///
    /// The spec does not validate.
    pub fn new(spec: &FeatureSpec, instrument: &Instrument) -> Result<Self, FeatureSpecError> {
        spec.validate()?;
        let mut keys: Vec<SourceKey> = Vec::new();
        let mut outputs = Vec::with_capacity(spec.len());
        for feature in &spec.features {
            let source = match source_key(&feature.kind) {
                Some(key) => match keys.iter().position(|k| *k == key) {
                    Some(index) => index,
                    None => {
                        keys.push(key);
                        keys.len() - 1
                    }
                },
                None => usize::MAX,
            };
            outputs.push(output(&feature.kind, source, spec.sample_ms));
        }
        let max_horizon = outputs
            .iter()
            .map(|output| match output {
                Output::LogReturn { horizon } => *horizon,
                _ => 1,
            })
            .max()
            .unwrap_or(1);
        let max_levels = outputs
            .iter()
            .map(|output| match output {
                Output::BookImbalance { levels } => *levels,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let norms = spec
            .features
            .iter()
            .map(|feature| match feature.norm {
                Normalization::None => (0.0, 1.0),
                Normalization::Zscore { mean, std } => (mean, 1.0 / std),
            })
            .collect();
        let width = spec.len();
        Ok(Self {
            spec: spec.clone(),
            instrument: instrument.id,
            sample_ns: u64::from(spec.sample_ms) * 1_000_000,
            history: spec.history_samples(),
            price_unit: 10f64.powi(i32::from(instrument.price_scale.places())),
            qty_unit: 10f64.powi(i32::from(instrument.qty_scale.places())),
            outputs,
            norms,
            max_levels,
            bid_depth: vec![0; max_levels],
            ask_depth: vec![0; max_levels],
            summaries: vec![[0.0; 2]; keys.len()],
            dynamic: Dynamic {
                last_k: None,
                samples: 0,
                last_mid: 0.0,
                last_mid_x2: 0,
                log_mid: Ring::new(max_horizon + 1),
                bucket: Bucket::default(),
                sources: keys.into_iter().map(Source::new).collect(),
                raw: vec![0.0; width],
                normalized: vec![0.0; width],
                non_finite: false,
                last_sample: None,
                resets: 0,
            },
        })
    }

    /// The spec.
    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }

    /// Counts a trade of this instrument into the sample being built (trades of other
    /// instruments, and trades without a positive price and quantity, are ignored).
    #[inline]
    pub fn on_trade(&mut self, trade: &Trade, _now: UnixNanos) {
        if trade.instrument != self.instrument || trade.price.0 <= 0 || trade.qty.0 <= 0 {
            return;
        }
        let bucket = &mut self.dynamic.bucket;
        bucket.count = bucket.count.saturating_add(1);
        let qty = i128::from(trade.qty.0);
        if trade.aggressor == Side::Buy.code() {
            bucket.buy = bucket.buy.saturating_add(qty);
        } else if trade.aggressor == Side::Sell.code() {
            bucket.sell = bucket.sell.saturating_add(qty);
        }
    }

    /// After a complete, valid book update of this instrument (the caller checks
    /// `BookDelta::FLAG_LAST` and [`InstrumentMarket::valid`]). True when this update closed
    /// a sample: [`Self::raw`] and [`Self::normalized`] then hold the vector to score.
    #[inline]
    pub fn on_book(&mut self, market: &InstrumentMarket, now: UnixNanos) -> bool {
        let book = market.book();
        let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) else {
            return false;
        };
        // Book prices are at most 2^62 - 1: the sum fits.
        let mid_x2 = bid.0.0.saturating_add(ask.0.0);
        let mid = mid_x2 as f64 / (2.0 * self.price_unit);
        let k = now.0 / self.sample_ns;
        let d = &mut self.dynamic;
        match d.last_k {
            Some(last) if k <= last => {
                d.last_mid = mid;
                d.last_mid_x2 = mid_x2;
                return false;
            }
            Some(last) if k - last <= self.history => {
                // Samples without a book update carry the previous mid and hold no trades.
                let carried = (d.last_mid, d.last_mid_x2);
                for _ in 1..k - last {
                    d.push_sample(carried, &Bucket::default());
                }
            }
            Some(_) => {
                // A gap longer than any history: what is held is stale.
                d.reset();
            }
            None => {}
        }
        let bucket = std::mem::take(&mut d.bucket);
        d.push_sample((mid, mid_x2), &bucket);
        d.last_k = Some(k);
        d.last_mid = mid;
        d.last_mid_x2 = mid_x2;
        d.last_sample = Some(Sample {
            ts: UnixNanos(k.saturating_mul(self.sample_ns)),
            mid,
        });
        self.compute(book, bid, ask, mid);
        true
    }

    /// Fills `raw` and `normalized` for the sample just closed.
    #[inline]
    fn compute(&mut self, book: &L2Book, (bid, bid_qty): Level, (ask, ask_qty): Level, mid: f64) {
        let (bid, ask) = (bid.0 as f64, ask.0 as f64);
        let (bid_qty, ask_qty) = (bid_qty.0 as f64, ask_qty.0 as f64);
        let mid_mantissa = (bid + ask) * 0.5;
        let microprice = if bid_qty + ask_qty > 0.0 {
            (bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)
        } else {
            mid_mantissa
        };
        if self.max_levels > 0 {
            depth(book, Side::Buy, &mut self.bid_depth);
            depth(book, Side::Sell, &mut self.ask_depth);
        }
        let d = &mut self.dynamic;
        // Rolling stats hold bid + ask mantissas.
        let to_price = 0.5 / self.price_unit;
        for (summary, source) in self.summaries.iter_mut().zip(&d.sources) {
            *summary = source.summary(to_price);
        }
        let summaries = &self.summaries;
        let read = |source: usize| summaries.get(source).copied().unwrap_or([0.0; 2]);
        let latest_log = d.log_mid.back(0).unwrap_or(0.0);
        for (((output, raw), normalized), &(mean, inv_std)) in self
            .outputs
            .iter()
            .zip(d.raw.iter_mut())
            .zip(d.normalized.iter_mut())
            .zip(&self.norms)
        {
            let value = match *output {
                Output::Mid => mid,
                Output::SpreadBps => (ask - bid) / mid_mantissa * 1e4,
                Output::Microprice => microprice / self.price_unit,
                Output::MicropriceDeviationBps => (microprice - mid_mantissa) / mid_mantissa * 1e4,
                Output::BookImbalance { levels } => {
                    let at = levels.saturating_sub(1);
                    let b = self.bid_depth.get(at).copied().unwrap_or(0);
                    let a = self.ask_depth.get(at).copied().unwrap_or(0);
                    if a + b == 0 {
                        0.0
                    } else {
                        to_f64(b - a) / to_f64(b + a)
                    }
                }
                Output::LogReturn { horizon } => match d.log_mid.back(horizon) {
                    Some(past) => latest_log - past,
                    None => 0.0,
                },
                Output::RealizedVol { source } | Output::Rsi { source } => read(source)[0],
                Output::Sma { source, output } | Output::Ema { source, output } => {
                    average(mid, read(source)[0], output)
                }
                Output::Macd { source, output } => {
                    let [line, signal] = read(source);
                    match output {
                        MacdOutput::Line => line,
                        MacdOutput::Signal => signal,
                        MacdOutput::Histogram => line - signal,
                    }
                }
                Output::Bollinger { source, k, output } => {
                    let [m, s] = read(source);
                    match output {
                        BollingerOutput::Mean => m,
                        BollingerOutput::Std => s,
                        BollingerOutput::Upper => m + k * s,
                        BollingerOutput::Lower => m - k * s,
                        // Flat prices (the std is exact): the bands coincide.
                        BollingerOutput::PercentB if s == 0.0 => 0.5,
                        BollingerOutput::PercentB => (mid - (m - k * s)) / (2.0 * k * s),
                        BollingerOutput::Width => 2.0 * k * s / m,
                    }
                }
                Output::TradeFlow { source, output } => {
                    let [signed, total] = read(source);
                    match output {
                        FlowOutput::Imbalance if total == 0.0 => 0.0,
                        FlowOutput::Imbalance => signed / total,
                        FlowOutput::SignedVolume => signed / self.qty_unit,
                    }
                }
                Output::TradeIntensity { source, per_second } => read(source)[0] * per_second,
            };
            *raw = value;
            *normalized = ((value - mean) * inv_std) as f32;
        }
        // A NaN or infinite raw value stays so through the normalisation (std is finite and
        // positive), and an overflow to f32 shows there too: checking one vector is enough.
        d.non_finite = !d.normalized.iter().all(|value| value.is_finite());
    }

    /// The raw values of the last closed sample, in spec order.
    pub fn raw(&self) -> &[f64] {
        &self.dynamic.raw
    }

    /// What the model gets: the last closed sample's values with the normalisation applied.
    pub fn normalized(&self) -> &[f32] {
        &self.dynamic.normalized
    }

    /// True once every feature has its full history (and until a long gap resets it).
    pub fn warm(&self) -> bool {
        self.dynamic.samples >= self.history
    }

    /// True if a raw or normalised value of the last sample is NaN or infinite.
    pub fn non_finite(&self) -> bool {
        self.dynamic.non_finite
    }

    /// The last closed sample.
    pub fn last_sample(&self) -> Option<Sample> {
        self.dynamic.last_sample
    }

    /// Samples closed since the start or the last reset.
    pub fn samples(&self) -> u64 {
        self.dynamic.samples
    }

    /// Gaps longer than the history that reset the engine.
    pub fn resets(&self) -> u64 {
        self.dynamic.resets
    }

    /// The engine's state (cold path).
    ///
    /// # Errors
    ///
    /// The encoder failed.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        let spec = serde_json::to_string(&self.spec).map_err(|error| error.to_string())?;
        let saved = SavedRef {
            spec,
            dynamic: &self.dynamic,
        };
        postcard::to_stdvec(&saved).map_err(|error| format!("feature state: {error}"))
    }

    /// Restores [`Self::snapshot`]'s bytes; nothing changes on error.
    ///
    /// # Errors
    ///
    /// Undecodable bytes, a snapshot of another spec, or state of the wrong shape.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Saved =
            postcard::from_bytes(bytes).map_err(|error| format!("feature state: {error}"))?;
        let spec = serde_json::to_string(&self.spec).map_err(|error| error.to_string())?;
        if saved.spec != spec {
            return Err("the feature state was saved for another feature spec".to_owned());
        }
        let fresh = &self.dynamic;
        let dynamic = saved.dynamic;
        let width = self.spec.len();
        let fits = dynamic.log_mid.fits(&fresh.log_mid)
            && dynamic.raw.len() == width
            && dynamic.normalized.len() == width
            && dynamic.sources.len() == fresh.sources.len()
            && dynamic
                .sources
                .iter()
                .zip(&fresh.sources)
                .all(|(source, fresh)| source.fits(fresh));
        if !fits {
            return Err("the feature state does not fit the spec's windows".to_owned());
        }
        self.dynamic = dynamic;
        Ok(())
    }
}

impl Dynamic {
    /// Appends one sample to the log-mid history and every source.
    #[inline]
    fn push_sample(&mut self, (mid, mid_x2): (f64, i64), bucket: &Bucket) {
        let log_mid = mid.ln();
        let change = self.log_mid.back(0).map(|previous| log_mid - previous);
        self.log_mid.push(log_mid);
        self.samples = self.samples.saturating_add(1);
        for source in &mut self.sources {
            source.push(mid, mid_x2, change, bucket);
        }
    }

    /// Forgets the history: the engine warms up again from the next sample.
    #[cold]
    fn reset(&mut self) {
        self.log_mid.clear();
        self.samples = 0;
        self.resets = self.resets.saturating_add(1);
        for source in &mut self.sources {
            source.clear();
        }
    }
}

/// A price level: price and quantity mantissas.
type Level = (Price, Qty);

/// A moving average as the feature reports it.
#[inline]
fn average(mid: f64, average: f64, output: AverageOutput) -> f64 {
    match output {
        AverageOutput::Price => average,
        AverageOutput::DeviationBps => (mid / average - 1.0) * 1e4,
    }
}

/// Cumulative quantity of the best `out.len()` levels of `side`: `out[i]` sums levels
/// `0..=i` (a side with fewer levels repeats its total).
#[inline]
fn depth(book: &L2Book, side: Side, out: &mut [i128]) {
    let mut total = 0i128;
    let mut levels = book.levels(side);
    let mut filled = 0;
    for (slot, (_, qty)) in out.iter_mut().zip(&mut levels) {
        // At most 50 levels of i64 quantities: no overflow.
        total += i128::from(qty.0);
        *slot = total;
        filled += 1;
    }
    if let Some(rest) = out.get_mut(filled..) {
        rest.fill(total);
    }
}

#[cfg(test)]
mod tests {
    use aaiti_model::{BookAction, BookDelta, InstrumentRegistry, InstrumentSpec};
    use proptest::prelude::*;

    use super::*;
    use crate::market::Market;

    fn registry() -> InstrumentRegistry {
        let spec = |venue: &str, symbol: &str| InstrumentSpec {
            venue: venue.into(),
            symbol: symbol.into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            price_scale: 2,
            qty_scale: 8,
            tick_size: "0.01".into(),
            lot_size: "0.00001".into(),
            min_notional: "5".into(),
        };
        InstrumentRegistry::from_specs(&[spec("binance", "BTCUSDT"), spec("binance", "ETHUSDT")])
            .unwrap()
    }

    /// Every kind, with short windows so that property tests see them warm.
    fn full_spec(sample_ms: u32) -> FeatureSpec {
        serde_json::from_value(serde_json::json!({
            "sample_ms": sample_ms,
            "features": [
                {"name": "mid", "kind": "mid"},
                {"name": "spread", "kind": "spread_bps"},
                {"name": "micro", "kind": "microprice"},
                {"name": "micro_dev", "kind": "microprice_deviation_bps"},
                {"name": "imb1", "kind": "book_imbalance", "levels": 1},
                {"name": "imb3", "kind": "book_imbalance", "levels": 3},
                {"name": "imb9", "kind": "book_imbalance", "levels": 9},
                {"name": "ret1", "kind": "log_return", "horizon": 1},
                {"name": "ret4", "kind": "log_return", "horizon": 4},
                {"name": "rv5", "kind": "realized_vol", "window": 5},
                {"name": "sma4", "kind": "sma", "period": 4},
                {"name": "sma4_dev", "kind": "sma", "period": 4, "output": "deviation_bps"},
                {"name": "ema3", "kind": "ema", "period": 3},
                {"name": "ema5_dev", "kind": "ema", "period": 5, "output": "deviation_bps"},
                {"name": "rsi3", "kind": "rsi", "period": 3},
                {"name": "macd_line", "kind": "macd", "fast": 2, "slow": 4, "signal": 3, "output": "line"},
                {"name": "macd_signal", "kind": "macd", "fast": 2, "slow": 4, "signal": 3, "output": "signal"},
                {"name": "macd_hist", "kind": "macd", "fast": 2, "slow": 4, "signal": 3, "output": "histogram"},
                {"name": "bb_mean", "kind": "bollinger", "period": 5, "k": 2.0, "output": "mean"},
                {"name": "bb_std", "kind": "bollinger", "period": 5, "k": 2.0, "output": "std"},
                {"name": "bb_up", "kind": "bollinger", "period": 5, "k": 2.0, "output": "upper"},
                {"name": "bb_low", "kind": "bollinger", "period": 5, "k": 1.5, "output": "lower"},
                {"name": "bb_b", "kind": "bollinger", "period": 5, "k": 2.0, "output": "percent_b"},
                {"name": "bb_w", "kind": "bollinger", "period": 5, "k": 2.0, "output": "width"},
                {"name": "flow3", "kind": "trade_flow", "window": 3},
                {"name": "flow3_v", "kind": "trade_flow", "window": 3, "output": "signed_volume"},
                {"name": "tps4", "kind": "trade_intensity", "window": 4,
                 "norm": {"zscore": {"mean": 10.0, "std": 4.0}}}
            ]
        }))
        .unwrap()
    }

    /// A book state: levels best first, as (price, qty) mantissas.
    #[derive(Debug, Clone)]
    struct Book {
        bids: Vec<(i64, i64)>,
        asks: Vec<(i64, i64)>,
    }

    /// A trade: aggressor code, qty mantissa.
    type Print = (u8, i64);

    fn apply(market: &mut Market, book: &Book, now: UnixNanos) {
        let id = InstrumentId(0);
        let clear = BookDelta {
            instrument: id,
            action: BookAction::Clear.code(),
            ..BookDelta::default()
        };
        market.on_delta(&clear, now);
        let levels = book
            .bids
            .iter()
            .map(|l| (Side::Buy, l))
            .chain(book.asks.iter().map(|l| (Side::Sell, l)));
        let count = book.bids.len() + book.asks.len();
        for (index, (side, &(price, qty))) in levels.enumerate() {
            let delta = BookDelta {
                instrument: id,
                side: side.code(),
                action: BookAction::Set.code(),
                flags: if index + 1 == count {
                    BookDelta::FLAG_LAST
                } else {
                    0
                },
                price: Price(price),
                qty: Qty(qty),
                ..BookDelta::default()
            };
            assert!(market.on_delta(&delta, now));
        }
    }

    fn trade(aggressor: u8, qty: i64) -> Trade {
        Trade {
            instrument: InstrumentId(0),
            aggressor,
            price: Price(6_000_000),
            qty: Qty(qty),
            ..Trade::default()
        }
    }

    /// The sampled series, kept naively: every sample's mid and trade totals.
    #[derive(Default)]
    struct Naive {
        mids: Vec<f64>,
        buy: Vec<i128>,
        sell: Vec<i128>,
        count: Vec<i128>,
    }

    impl Naive {
        fn push(&mut self, mid: f64, prints: &[Print]) {
            self.mids.push(mid);
            let sum = |side: u8| {
                prints
                    .iter()
                    .filter(|p| p.0 == side)
                    .map(|p| i128::from(p.1))
                    .sum()
            };
            self.buy.push(sum(1));
            self.sell.push(sum(2));
            self.count.push(prints.len() as i128);
        }

        fn last<T>(values: &[T], n: usize) -> &[T] {
            &values[values.len().saturating_sub(n)..]
        }

        fn ema(values: &[f64], period: f64) -> f64 {
            let alpha = 2.0 / (period + 1.0);
            values[1..]
                .iter()
                .fold(values[0], |ema, x| alpha * x + (1.0 - alpha) * ema)
        }

        fn mean_std(values: &[f64]) -> (f64, f64) {
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            (mean, var.sqrt())
        }

        fn rsi(values: &[f64], period: usize) -> f64 {
            let changes: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
            let p = period as f64;
            let (mut gain, mut loss) = (0.0, 0.0);
            for (i, c) in changes.iter().enumerate() {
                let (g, l) = (c.max(0.0), (-c).max(0.0));
                if i < period {
                    gain += g;
                    loss += l;
                    if i + 1 == period {
                        gain /= p;
                        loss /= p;
                    }
                } else {
                    gain = (gain * (p - 1.0) + g) / p;
                    loss = (loss * (p - 1.0) + l) / p;
                }
            }
            if changes.len() < period && !changes.is_empty() {
                gain /= changes.len() as f64;
                loss /= changes.len() as f64;
            }
            if loss == 0.0 {
                if gain == 0.0 { 50.0 } else { 100.0 }
            } else {
                100.0 - 100.0 / (1.0 + gain / loss)
            }
        }

        /// The full spec's expected values, from first principles.
        fn expected(&self, book: &Book, sample_ms: u32) -> Vec<f64> {
            let m = &self.mids;
            let mid = *m.last().unwrap();
            let (bid, bq) = (book.bids[0].0 as f64, book.bids[0].1 as f64);
            let (ask, aq) = (book.asks[0].0 as f64, book.asks[0].1 as f64);
            let mid_m = (bid + ask) / 2.0;
            let micro = (bid * aq + ask * bq) / (bq + aq);
            let imbalance = |n: usize| {
                let b: i64 = book.bids.iter().take(n).map(|l| l.1).sum();
                let a: i64 = book.asks.iter().take(n).map(|l| l.1).sum();
                (b - a) as f64 / (b + a) as f64
            };
            let ret = |h: usize| {
                if m.len() > h {
                    (mid / m[m.len() - 1 - h]).ln()
                } else {
                    0.0
                }
            };
            let returns: Vec<f64> = m.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
            let rv = Self::last(&returns, 5)
                .iter()
                .map(|r| r * r)
                .sum::<f64>()
                .sqrt();
            let sma4 = Self::mean_std(Self::last(m, 4)).0;
            let ema = |p: f64| Self::ema(m, p);
            let lines: Vec<f64> = (1..=m.len())
                .map(|n| Self::ema(&m[..n], 2.0) - Self::ema(&m[..n], 4.0))
                .collect();
            let line = *lines.last().unwrap();
            let signal = Self::ema(&lines, 3.0);
            let (bb_m, bb_s) = Self::mean_std(Self::last(m, 5));
            let percent_b = if bb_s <= 1e-9 * bb_m {
                0.5
            } else {
                (mid - (bb_m - 2.0 * bb_s)) / (4.0 * bb_s)
            };
            let b: i128 = Self::last(&self.buy, 3).iter().sum();
            let s: i128 = Self::last(&self.sell, 3).iter().sum();
            let flow = if b + s == 0 {
                0.0
            } else {
                (b - s) as f64 / (b + s) as f64
            };
            let count: i128 = Self::last(&self.count, 4).iter().sum();
            vec![
                mid,
                (ask - bid) / mid_m * 1e4,
                micro / 100.0,
                (micro - mid_m) / mid_m * 1e4,
                imbalance(1),
                imbalance(3),
                imbalance(9),
                ret(1),
                ret(4),
                rv,
                sma4,
                (mid / sma4 - 1.0) * 1e4,
                ema(3.0),
                (mid / ema(5.0) - 1.0) * 1e4,
                Self::rsi(m, 3),
                line,
                signal,
                line - signal,
                bb_m,
                bb_s,
                bb_m + 2.0 * bb_s,
                bb_m - 1.5 * bb_s,
                percent_b,
                4.0 * bb_s / bb_m,
                flow,
                (b - s) as f64 / 1e8,
                count as f64 / (4.0 * f64::from(sample_ms) / 1000.0),
            ]
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    /// One step of a generated run: time advance (ms), the book after it, trades before it.
    fn steps() -> impl Strategy<Value = Vec<(u64, Book, Vec<Print>)>> {
        let level = (1i64..5_000_000_000).boxed();
        let step = (
            0u64..450,
            -300i64..=300,
            1i64..=40,
            prop::collection::vec(level.clone(), 1..6),
            prop::collection::vec(level, 1..6),
            prop::collection::vec((0u8..=2, 1i64..100_000_000), 0..4),
        );
        prop::collection::vec(step, 1..120).prop_map(|steps| {
            let mut mid = 6_000_000i64;
            steps
                .into_iter()
                .map(|(dt, drift, spread, bid_qty, ask_qty, prints)| {
                    mid += drift;
                    let bid = mid - spread / 2;
                    let ask = bid + spread;
                    let side = |top: i64, dir: i64, qty: Vec<i64>| {
                        qty.into_iter()
                            .enumerate()
                            .map(|(i, q)| (top + dir * i as i64 * 3, q))
                            .collect()
                    };
                    let book = Book {
                        bids: side(bid, -1, bid_qty),
                        asks: side(ask, 1, ask_qty),
                    };
                    (dt, book, prints)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every feature against a recomputation from the whole sampled series, through
        /// the sampling clock (updates that close nothing, one sample, several).
        #[test]
        fn every_feature_matches_a_naive_recomputation(steps in steps()) {
            let registry = registry();
            let spec = full_spec(100);
            let mut engine = FeatureEngine::new(&spec, &registry.instruments()[0]).unwrap();
            let mut market = Market::new(&registry).unwrap();
            let mut naive = Naive::default();
            let mut pending: Vec<Print> = Vec::new();
            let mut last_k: Option<u64> = None;
            let mut last_mid = 0.0;
            let mut now_ms = 1_723_161_255_208u64;
            for (dt, book, prints) in steps {
                now_ms += dt;
                let now = UnixNanos::from_millis(now_ms);
                for &(aggressor, qty) in &prints {
                    engine.on_trade(&trade(aggressor, qty), now);
                    if aggressor != 0 || qty > 0 {
                        pending.push((aggressor, qty));
                    }
                }
                apply(&mut market, &book, now);
                let closed = engine.on_book(market.get(InstrumentId(0)).unwrap(), now);
                let mid = (book.bids[0].0 + book.asks[0].0) as f64 / 200.0;
                let k = now_ms / 100;
                let expect_close = last_k.is_none_or(|last| k > last);
                prop_assert_eq!(closed, expect_close);
                if closed {
                    if let Some(last) = last_k {
                        for _ in last + 1..k {
                            naive.push(last_mid, &[]);
                        }
                    }
                    naive.push(mid, &pending);
                    pending.clear();
                    last_k = Some(k);
                    let expected = naive.expected(&book, 100);
                    for (i, (got, want)) in engine.raw().iter().zip(&expected).enumerate() {
                        // %b divides a difference of prices by the band width: when the band
                        // is a few ticks wide, rounding of ~1e-11 in the prices becomes ~1e-9
                        // in %b, whichever way it is computed.
                        let ill_conditioned = spec.features[i].name == "bb_b"
                            && (got - want).abs() <= 1e-6;
                        prop_assert!(close(*got, *want) || ill_conditioned,
                            "{} after {} samples: {} vs {}",
                            spec.features[i].name, naive.mids.len(), got, want);
                    }
                    prop_assert_eq!(engine.warm(), naive.mids.len() as u64 >= spec.history_samples());
                    prop_assert!(!engine.non_finite());
                    let sample = engine.last_sample().unwrap();
                    prop_assert_eq!(sample.ts, UnixNanos::from_millis(k * 100));
                    prop_assert_eq!(sample.mid, mid);
                    let tps = engine.raw()[26];
                    prop_assert_eq!(engine.normalized()[26], ((tps - 10.0) / 4.0) as f32);
                    prop_assert_eq!(engine.normalized()[0], mid as f32);
                }
                last_mid = mid;
            }
        }
    }

    fn simple_book(mid_cents: i64) -> Book {
        Book {
            bids: vec![(mid_cents - 1, 100_000_000), (mid_cents - 2, 50_000_000)],
            asks: vec![(mid_cents + 1, 300_000_000)],
        }
    }

    fn engine_and_market(spec: &FeatureSpec) -> (FeatureEngine, Market) {
        let registry = registry();
        let engine = FeatureEngine::new(spec, &registry.instruments()[0]).unwrap();
        (engine, Market::new(&registry).unwrap())
    }

    fn update(engine: &mut FeatureEngine, market: &mut Market, mid_cents: i64, ms: u64) -> bool {
        let now = UnixNanos::from_millis(ms);
        apply(market, &simple_book(mid_cents), now);
        engine.on_book(market.get(InstrumentId(0)).unwrap(), now)
    }

    #[test]
    fn empty_samples_carry_the_previous_mid_and_long_gaps_reset() {
        let spec: FeatureSpec = serde_json::from_value(serde_json::json!({
            "sample_ms": 100,
            "features": [{"name": "sma3", "kind": "sma", "period": 3},
                         {"name": "ret2", "kind": "log_return", "horizon": 2}]
        }))
        .unwrap();
        let (mut engine, mut market) = engine_and_market(&spec);
        assert!(update(&mut engine, &mut market, 10000, 1_050));
        assert!(!engine.warm());
        // Same interval: nothing closes, but the mid is remembered for carrying.
        assert!(!update(&mut engine, &mut market, 10100, 1_099));
        // Three boundaries crossed (1100, 1200, 1300): two carried samples at 101, then 104.
        assert!(update(&mut engine, &mut market, 10400, 1_300));
        assert_eq!(engine.samples(), 4);
        assert!(engine.warm());
        assert_eq!(engine.raw()[0], (101.0 + 101.0 + 104.0) / 3.0);
        assert!((engine.raw()[1] - (104.0f64 / 101.0).ln()).abs() < 1e-15);
        assert_eq!(
            engine.last_sample().unwrap().ts,
            UnixNanos::from_millis(1_300)
        );
        // Time going backwards closes nothing.
        assert!(!update(&mut engine, &mut market, 9000, 1_250));
        // Four boundaries: within the history (3 samples)? No: a reset.
        assert!(update(&mut engine, &mut market, 11000, 1_700));
        assert_eq!(engine.resets(), 1);
        assert_eq!(engine.samples(), 1);
        assert!(!engine.warm());
        assert_eq!(engine.raw()[0], 110.0);
        assert_eq!(engine.raw()[1], 0.0);
    }

    #[test]
    fn one_sided_books_and_foreign_trades_are_ignored() {
        let spec = full_spec(100);
        let (mut engine, mut market) = engine_and_market(&spec);
        let now = UnixNanos::from_millis(1_000);
        let one_sided = Book {
            bids: vec![(10000, 1)],
            asks: vec![],
        };
        apply(&mut market, &one_sided, now);
        assert!(!engine.on_book(market.get(InstrumentId(0)).unwrap(), now));
        assert_eq!(engine.samples(), 0);
        let mut foreign = trade(1, 5);
        foreign.instrument = InstrumentId(1);
        engine.on_trade(&foreign, now);
        engine.on_trade(&trade(1, 0), now);
        engine.on_trade(&trade(2, 7), now);
        assert!(update(&mut engine, &mut market, 10000, 1_000));
        let index = |name: &str| spec.names().position(|n| n == name).unwrap();
        assert_eq!(engine.raw()[index("flow3")], -1.0);
        assert_eq!(engine.raw()[index("flow3_v")], -7e-8);
        assert_eq!(engine.raw()[index("tps4")], 1.0 / 0.4);
    }

    #[test]
    fn values_the_model_cannot_take_are_flagged() {
        // A zscore whose std is tiny but valid: the normalised mid overflows f32.
        let mut spec = full_spec(100);
        spec.features[0].norm = Normalization::Zscore {
            mean: 0.0,
            std: 1e-37,
        };
        spec.validate().unwrap();
        let (mut engine, mut market) = engine_and_market(&spec);
        assert!(update(&mut engine, &mut market, 10000, 1_000));
        assert!(engine.non_finite());
        assert_eq!(engine.raw()[0], 100.0);
        assert!(engine.normalized()[0].is_infinite());
        let (mut fine, mut market) = engine_and_market(&full_spec(100));
        assert!(update(&mut fine, &mut market, 10000, 1_000));
        assert!(!fine.non_finite());
    }

    #[test]
    fn a_restored_engine_continues_exactly() {
        let spec = full_spec(100);
        let (mut engine, mut market) = engine_and_market(&spec);
        let mids = [10000i64, 10005, 9997, 10020, 10011, 10040, 10038, 9990];
        for (i, &mid) in mids.iter().enumerate() {
            engine.on_trade(
                &trade(1 + (i % 2) as u8, 1_000 * i as i64 + 1),
                UnixNanos(0),
            );
            update(&mut engine, &mut market, mid, 1_000 + 100 * i as u64);
        }
        let bytes = engine.snapshot().unwrap();
        let (mut restored, _) = engine_and_market(&spec);
        restored.restore(&bytes).unwrap();
        assert_eq!(restored.raw(), engine.raw());
        assert_eq!(restored.warm(), engine.warm());
        for (i, &mid) in mids.iter().rev().enumerate() {
            let ms = 2_000 + 130 * i as u64;
            let print = trade(2, 77 + i as i64);
            engine.on_trade(&print, UnixNanos(0));
            restored.on_trade(&print, UnixNanos(0));
            let a = update(&mut engine, &mut market, mid, ms);
            let b = update(&mut restored, &mut market, mid, ms);
            assert_eq!(a, b);
            assert_eq!(engine.raw(), restored.raw());
            assert_eq!(engine.normalized(), restored.normalized());
        }
        assert_eq!(restored.snapshot().unwrap(), engine.snapshot().unwrap());
    }

    #[test]
    fn restore_refuses_foreign_or_broken_state_and_changes_nothing() {
        let spec = full_spec(100);
        let (mut engine, mut market) = engine_and_market(&spec);
        update(&mut engine, &mut market, 10000, 1_000);
        let before = engine.snapshot().unwrap();
        let mut other_spec = spec.clone();
        other_spec.features[9].kind = FeatureKind::RealizedVol { window: 6 };
        let (other, _) = engine_and_market(&other_spec);
        let error = engine.restore(&other.snapshot().unwrap()).unwrap_err();
        assert_eq!(
            error,
            "the feature state was saved for another feature spec"
        );
        assert!(engine.restore(&before[..before.len() / 2]).is_err());
        assert!(engine.restore(b"").is_err());
        assert_eq!(engine.snapshot().unwrap(), before);
        // Right spec, wrong window: a snapshot edited (or of another build) does not fit.
        let mut saved: Saved = postcard::from_bytes(&before).unwrap();
        saved.dynamic.log_mid = Ring::new(99);
        let edited = postcard::to_stdvec(&saved).unwrap();
        assert_eq!(
            engine.restore(&edited).unwrap_err(),
            "the feature state does not fit the spec's windows"
        );
        assert_eq!(engine.snapshot().unwrap(), before);
    }
}
