//! `aaiti features`: a recording replayed through the engine's own book path and feature
//! engine, written as CSV for training.
//!
//! [`export`] builds a small pipeline on one thread: a [`ReplaySource`] at maximum speed,
//! the [`BookStage`] (as in `aaiti run`), and an export stage that keeps a [`Market`] and a
//! [`FeatureEngine`] per instrument exactly as the signal stage does (engine time is each
//! record's `ts_event`, or the latest seen when it has none; a complete update of a valid
//! book goes to the engine). The features a model is trained on are therefore the features
//! it is served.
//!
//! # CSV format
//!
//! UTF-8, `\n` line ends, comma separated, no quoting (names and symbols that would need it
//! are refused). The first line is the header:
//!
//! ```text
//! ts_ns,instrument,<feature names in spec order>,fwd_ret_<h>ms,...
//! ```
//!
//! with one `fwd_ret_<h>ms` column per horizon in the order given. Then one row per closed
//! sample (see the [sampling rules](super)) whose feature vector is warm and finite:
//!
//! | column | content |
//! |---|---|
//! | `ts_ns` | the sample's timestamp: its sampling boundary, ns since the Unix epoch (integer) |
//! | `instrument` | the instrument's venue symbol, e.g. `BTCUSDT` |
//! | one per feature | the raw (unnormalised) value, printed so that it parses back to the same `f64` (Rust's shortest round-trip form: `0.25`, `61737.635`, `-3.1e-5`) |
//! | `fwd_ret_<h>ms` | ln(mid of the first closed sample with `ts ≥ ts_ns + h` / this sample's mid), same number form |
//!
//! Mids are the samples' mids (after the closing book update, price units). Rows of one
//! instrument are in time order; instruments interleave as their rows complete. A row is
//! written once all its forward returns are known, so rows whose longest horizon runs past
//! the end of the recording (or of `duration_ms`) are dropped. Samples that are not warm or
//! not finite are not written but still serve as forward-return targets.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aaiti_feeds::replay::Pace;
use aaiti_model::{
    BookDelta, Envelope, FeedEvent, InstrumentRegistry, RecordKind, StreamId, Trade, UnixNanos,
};

use super::{FeatureEngine, FeatureSpec, FeatureSpecError};
use crate::engine::BOOK_STREAM;
use crate::market::Market;
use crate::replay::{ReplaySource, ReplaySourceError, ReplayVenue};
use crate::runtime::{
    Emitter, Pipeline, PlacementConfig, RingSettings, Source, SourceStatus, Stage, WaitStrategy,
    plan,
};
use crate::stages::book::BookStage;

/// Longest forward-return horizon: one day.
pub const MAX_HORIZON_MS: u32 = 86_400_000;

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// A recording file, or `bundled:binance-btcusdt`.
    pub recording: String,
    /// The feed handler that decodes it.
    pub venue: ReplayVenue,
    /// The features.
    pub spec: FeatureSpec,
    /// Forward-return horizons, milliseconds (1 to [`MAX_HORIZON_MS`], distinct).
    pub horizons_ms: Vec<u32>,
    /// The CSV file to write (created or truncated).
    pub out: PathBuf,
    /// Only the first `duration_ms` of engine time (from the first record); `None`: all.
    pub duration_ms: Option<u64>,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Samples closed (all instruments).
    pub samples: u64,
    /// Samples not written because some feature lacked history.
    pub warming: u64,
    /// Samples not written because a value was NaN or infinite.
    pub non_finite: u64,
    /// Warm samples dropped because a horizon ran past the end.
    pub cut_at_end: u64,
    /// Records the replay produced.
    pub records: u64,
    /// Timestamp of the first and last row written (ns).
    pub first_ts_ns: Option<u64>,
    /// See `first_ts_ns`.
    pub last_ts_ns: Option<u64>,
    /// Wall time, seconds.
    pub elapsed_s: f64,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The feature spec is invalid.
    #[error("feature spec: {0}")]
    Spec(#[from] FeatureSpecError),
    /// A bad horizon list.
    #[error("horizons: {0}")]
    Horizons(String),
    /// A symbol that cannot be a CSV field.
    #[error("instrument symbol {0:?} holds a comma, quote or line break: it cannot be exported")]
    Symbol(String),
    /// The recording cannot be replayed.
    #[error(transparent)]
    Replay(#[from] ReplaySourceError),
    /// The pipeline cannot be built or failed.
    #[error("export pipeline: {0}")]
    Pipeline(String),
    /// The output file cannot be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Replays `options.recording` and writes its features and forward returns to
/// `options.out` (format in the [module docs](self)). `registry` is the engine's instrument
/// registry (from configuration): the recording's symbols are looked up in it.
///
/// # Errors
///
/// An invalid spec or horizon, a recording that cannot be opened, an output file that
/// cannot be written, a pipeline failure.
pub fn export(
    options: &ExportOptions,
    registry: &InstrumentRegistry,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    options.spec.validate()?;
    check_horizons(&options.horizons_ms)?;
    if let Some(symbol) = registry
        .instruments()
        .iter()
        .map(|instrument| &instrument.symbol)
        .find(|symbol| symbol.contains([',', '"', '\n', '\r']))
    {
        return Err(ExportError::Symbol(symbol.clone()));
    }
    let path = options.out.display().to_string();
    let io = |source| ExportError::Io {
        path: path.clone(),
        source,
    };
    let source = ReplaySource::open(
        "replay",
        &options.recording,
        options.venue,
        Pace::Max,
        registry,
        StreamId(1),
    )?;
    let book = BookStage::new(registry, false, BOOK_STREAM)
        .map_err(|error| ExportError::Pipeline(error.to_string()))?;
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(&options.out).map_err(io)?);
    writer
        .write_all(header(&options.spec, &options.horizons_ms).as_bytes())
        .map_err(io)?;
    let done = Arc::new(AtomicBool::new(false));
    let outcome = Arc::new(Mutex::new(None));
    let stage = ExportStage::new(
        options,
        registry,
        writer,
        Arc::clone(&done),
        Arc::clone(&outcome),
    )?;
    let pipeline = Pipeline::new(RingSettings {
        capacity: 1024,
        batch_limit: 256,
    })
    .source(Box::new(UntilDone { source, done }))
    .stage(Box::new(book))
    .stage(Box::new(stage));
    // One thread that yields when idle: an export shares the machine.
    let placement = PlacementConfig {
        wait: WaitStrategy::Yield,
        pin: false,
        ..PlacementConfig::default()
    };
    let plan = plan(&pipeline.shape(), &placement, &[0])
        .map_err(|error| ExportError::Pipeline(error.to_string()))?;
    let report = pipeline
        .start(&plan)
        .map_err(|error| ExportError::Pipeline(error.to_string()))?
        .wait();
    if report.failed {
        let failure = report
            .threads
            .iter()
            .find_map(|thread| thread.failure.clone())
            .unwrap_or_else(|| "a thread stopped before draining".to_owned());
        return Err(ExportError::Pipeline(failure));
    }
    let outcome = outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| ExportError::Pipeline("the export stage never shut down".to_owned()))?;
    let mut summary = outcome.map_err(io)?;
    summary.records = report.counter("replay", "records").unwrap_or(0);
    summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn check_horizons(horizons: &[u32]) -> Result<(), ExportError> {
    if horizons.is_empty() {
        return Err(ExportError::Horizons(
            "none given: name at least one forward-return horizon".into(),
        ));
    }
    for (index, &horizon) in horizons.iter().enumerate() {
        if !(1..=MAX_HORIZON_MS).contains(&horizon) {
            return Err(ExportError::Horizons(format!(
                "{horizon} ms must be between 1 and {MAX_HORIZON_MS}"
            )));
        }
        if horizons[..index].contains(&horizon) {
            return Err(ExportError::Horizons(format!(
                "{horizon} ms is listed twice"
            )));
        }
    }
    Ok(())
}

/// The CSV header line.
fn header(spec: &FeatureSpec, horizons_ms: &[u32]) -> String {
    let mut line = String::from("ts_ns,instrument");
    for name in spec.names() {
        line.push(',');
        line.push_str(name);
    }
    for horizon in horizons_ms {
        let _ = write!(line, ",fwd_ret_{horizon}ms");
    }
    line.push('\n');
    line
}

/// The replay, finished early once the export stage has seen enough.
struct UntilDone {
    source: ReplaySource,
    done: Arc<AtomicBool>,
}

impl Source for UntilDone {
    fn name(&self) -> &str {
        self.source.name()
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        // Relaxed: the flag only saves work; the stage ignores what comes after it anyway.
        if self.done.load(Ordering::Relaxed) {
            return SourceStatus::Finished;
        }
        self.source.poll(out)
    }

    fn report(&self) -> Vec<(String, u64)> {
        self.source.report()
    }
}

/// A warm, finite sample waiting for its forward returns.
struct PendingRow {
    ts: u64,
    mid: f64,
    /// `ts_ns,instrument,<features>`, formatted when the sample closed.
    text: String,
    /// Forward returns, NaN until known.
    forward: Vec<f64>,
}

/// What the stage hands back when it shuts down.
type Outcome = Result<ExportSummary, std::io::Error>;

struct ExportStage {
    market: Market,
    engines: Vec<FeatureEngine>,
    symbols: Vec<String>,
    horizons_ns: Vec<u64>,
    pending: Vec<VecDeque<PendingRow>>,
    writer: BufWriter<File>,
    /// Engine time, as the signal stage keeps it.
    clock: UnixNanos,
    duration_ns: Option<u64>,
    end: Option<UnixNanos>,
    done: Arc<AtomicBool>,
    summary: ExportSummary,
    error: Option<std::io::Error>,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl ExportStage {
    fn new(
        options: &ExportOptions,
        registry: &InstrumentRegistry,
        writer: BufWriter<File>,
        done: Arc<AtomicBool>,
        outcome: Arc<Mutex<Option<Outcome>>>,
    ) -> Result<Self, ExportError> {
        let market = Market::new(registry).map_err(ExportError::Pipeline)?;
        let engines = registry
            .instruments()
            .iter()
            .map(|instrument| FeatureEngine::new(&options.spec, instrument))
            .collect::<Result<Vec<_>, _>>()?;
        let horizons_ns: Vec<u64> = options
            .horizons_ms
            .iter()
            .map(|&h| u64::from(h) * 1_000_000)
            .collect();
        // Rows wait at most the longest horizon: one per sample in it, plus the newest.
        let longest = horizons_ns.iter().copied().max().unwrap_or(0);
        let depth = (longest / (u64::from(options.spec.sample_ms) * 1_000_000) + 2) as usize;
        Ok(Self {
            market,
            engines,
            symbols: registry
                .instruments()
                .iter()
                .map(|instrument| instrument.symbol.clone())
                .collect(),
            horizons_ns,
            pending: (0..registry.len())
                .map(|_| VecDeque::with_capacity(depth))
                .collect(),
            writer,
            clock: UnixNanos(0),
            duration_ns: options.duration_ms.map(|ms| ms.saturating_mul(1_000_000)),
            end: None,
            done,
            summary: ExportSummary::default(),
            error: None,
            outcome,
        })
    }

    fn on_sample(&mut self, index: usize) {
        let Some(engine) = self.engines.get(index) else {
            return;
        };
        let Some(sample) = engine.last_sample() else {
            return;
        };
        self.summary.samples += 1;
        let Some(pending) = self.pending.get_mut(index) else {
            return;
        };
        // This sample is the first at or after every horizon it has reached.
        for row in pending.iter_mut() {
            for (forward, horizon) in row.forward.iter_mut().zip(&self.horizons_ns) {
                if forward.is_nan() && sample.ts.0 >= row.ts.saturating_add(*horizon) {
                    *forward = (sample.mid / row.mid).ln();
                }
            }
        }
        while pending
            .front()
            .is_some_and(|row| row.forward.iter().all(|f| !f.is_nan()))
        {
            if let Some(row) = pending.pop_front() {
                write_row(&mut self.writer, &row, &mut self.error, &mut self.summary);
            }
        }
        if !engine.warm() {
            self.summary.warming += 1;
            return;
        }
        if engine.non_finite() {
            self.summary.non_finite += 1;
            return;
        }
        let mut text = String::with_capacity(32 + 24 * engine.raw().len());
        let symbol = self.symbols.get(index).map_or("", String::as_str);
        let _ = write!(text, "{},{symbol}", sample.ts.0);
        for value in engine.raw() {
            let _ = write!(text, ",{value:?}");
        }
        pending.push_back(PendingRow {
            ts: sample.ts.0,
            mid: sample.mid,
            text,
            forward: vec![f64::NAN; self.horizons_ns.len()],
        });
    }
}

fn write_row(
    writer: &mut BufWriter<File>,
    row: &PendingRow,
    error: &mut Option<std::io::Error>,
    summary: &mut ExportSummary,
) {
    if error.is_some() {
        return;
    }
    let mut line = String::with_capacity(row.text.len() + 24 * row.forward.len() + 1);
    line.push_str(&row.text);
    for forward in &row.forward {
        let _ = write!(line, ",{forward:?}");
    }
    line.push('\n');
    match writer.write_all(line.as_bytes()) {
        Ok(()) => {
            summary.rows += 1;
            summary.first_ts_ns.get_or_insert(row.ts);
            summary.last_ts_ns = Some(row.ts);
        }
        Err(source) => *error = Some(source),
    }
}

impl Stage for ExportStage {
    fn name(&self) -> &str {
        "export"
    }

    fn on_event(&mut self, event: &Envelope, _out: &mut Emitter<'_>) {
        if self.done.load(Ordering::Relaxed) {
            return;
        }
        // Engine time exactly as the signal stage keeps it.
        let mut now = event.header.ts_event;
        if now.0 == 0 {
            now = self.clock;
        }
        if now > self.clock {
            self.clock = now;
        }
        if let Some(duration) = self.duration_ns
            && now.0 != 0
        {
            let end = *self
                .end
                .get_or_insert(UnixNanos(now.0.saturating_add(duration)));
            if now > end {
                self.done.store(true, Ordering::Relaxed);
                return;
            }
        }
        match RecordKind::try_from(event.header.kind) {
            Ok(RecordKind::BookDelta) => {
                let Some(delta) = event.payload::<BookDelta>() else {
                    return;
                };
                let delta = *delta;
                if !self.market.on_delta(&delta, now) || delta.flags & BookDelta::FLAG_LAST == 0 {
                    return;
                }
                let index = delta.instrument.index();
                let (Some(state), Some(engine)) = (
                    self.market.get(delta.instrument),
                    self.engines.get_mut(index),
                ) else {
                    return;
                };
                if state.valid() && engine.on_book(state, now) {
                    self.on_sample(index);
                }
            }
            Ok(RecordKind::Trade) => {
                if let Some(trade) = event.payload::<Trade>() {
                    let trade = *trade;
                    self.market.on_trade(&trade, now);
                    if let Some(engine) = self.engines.get_mut(trade.instrument.index()) {
                        engine.on_trade(&trade, now);
                    }
                }
            }
            Ok(RecordKind::FeedEvent) => {
                if let Some(feed_event) = event.payload::<FeedEvent>() {
                    self.market.on_feed_event(&{ *feed_event });
                }
            }
            _ => {}
        }
        if self.error.is_some() {
            self.done.store(true, Ordering::Relaxed);
        }
    }

    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {
        self.summary.cut_at_end = self.pending.iter().map(|p| p.len() as u64).sum();
        if self.error.is_none()
            && let Err(error) = self.writer.flush()
        {
            self.error = Some(error);
        }
        let outcome = match self.error.take() {
            Some(error) => Err(error),
            None => Ok(self.summary.clone()),
        };
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("rows".to_owned(), self.summary.rows),
            ("samples".to_owned(), self.summary.samples),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_are_checked() {
        assert!(check_horizons(&[1_000, 5_000]).is_ok());
        assert_eq!(
            check_horizons(&[]).unwrap_err().to_string(),
            "horizons: none given: name at least one forward-return horizon"
        );
        assert_eq!(
            check_horizons(&[0]).unwrap_err().to_string(),
            "horizons: 0 ms must be between 1 and 86400000"
        );
        assert_eq!(
            check_horizons(&[500, 500]).unwrap_err().to_string(),
            "horizons: 500 ms is listed twice"
        );
    }

    #[test]
    fn the_header_lists_features_then_horizons() {
        let spec: FeatureSpec = serde_json::from_str(
            r#"{"sample_ms": 100, "features": [
                {"name": "a", "kind": "mid"}, {"name": "b", "kind": "spread_bps"}]}"#,
        )
        .unwrap();
        assert_eq!(
            header(&spec, &[1_000, 250]),
            "ts_ns,instrument,a,b,fwd_ret_1000ms,fwd_ret_250ms\n"
        );
    }
}
