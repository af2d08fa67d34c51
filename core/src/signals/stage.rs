//! The signal stage: features on every book update and trade, models scoring them, signals
//! out.
//!
//! It sits between the book stage and the trading stage and keeps its own copy of the books
//! (a [`Market`], about 8 ns a delta) so it can run on a thread of its own. For each
//! configured model (a *slot*: one model on one instrument) it keeps a [`FeatureEngine`];
//! when a book update closes a sample (`sample_ms` of the model's feature spec), the slot's
//! feature vector goes to the model and a [`Signal`] goes out on [`SIGNAL_STREAM`] with the
//! cause's timestamps and replay flag, so a replay of the journal derives the same signals.
//! Every input passes on unchanged.
//!
//! * A vector with a NaN or infinite value never reaches a model: it is counted
//!   (`non_finite`) and the prediction skipped. So is a vector whose features still lack
//!   history (`warming`).
//! * Shadow slots are scored, journaled (`Signal::FLAG_SHADOW`) and monitored like the others;
//!   strategies ignore them (A/B comparison without trading).
//! * An ensemble combines the predictions its members made on the same update into one
//!   signal (`Signal::FLAG_ENSEMBLE`, model index = number of slots).
//! * Monitoring per slot: drift (population stability index of the live features and
//!   predictions against the training reference of the metadata) and live accuracy (each
//!   prediction joined with the realised forward log return of the mid at its horizon),
//!   both journaled as [`ModelEvent`]s.
//! * Hot swap: an admin `swap_model` command loads and warms up the new version beside the
//!   serving one (on a loader thread, see [`SwapHandoff`]); its `model_swap` control record
//!   reaches this stage between two events, which switches to the prepared model and
//!   journals a `swapped` model event. When the control record is replayed from the journal
//!   the stage loads that version itself; if it no longer loads, the old version keeps
//!   serving and `swap_refused` is journaled.

use std::sync::{Arc, Mutex, PoisonError};

use aaiti_model::{
    BookDelta, Control, ControlAction, Envelope, FeedEvent, InstrumentId, InstrumentRegistry,
    ModelEvent, ModelEventKind, Record, RecordHeader, RecordKind, Signal, StreamId, Trade,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

use crate::admin::AdminReplies;
use crate::market::Market;
use crate::runtime::{Emitter, Stage};
use crate::signals::features::FeatureEngine;
use crate::signals::model::{EnsembleMethod, ModelRegistry, OnnxModel, Prediction, combine};
use crate::signals::monitor::{
    AccuracyTracker, DriftLevel, DriftMonitor, DriftParams, DriftSubject,
};

/// Stream of the signal stage's own records (signals, model events).
pub const SIGNAL_STREAM: StreamId = StreamId(1002);

/// Subject codes of drift events about predictions (feature drift uses the input position).
const SUBJECT_PREDICTION_PSI: u32 = u32::MAX - 2;
const SUBJECT_PREDICTION_MEAN: u32 = u32::MAX - 1;
const SUBJECT_PREDICTION_STD: u32 = u32::MAX;

/// One model serving one instrument.
pub struct SlotSetup {
    /// The name it is configured (and swapped) by.
    pub name: String,
    /// The instrument it scores.
    pub instrument: InstrumentId,
    /// Scored and journaled, never traded.
    pub shadow: bool,
    /// The loaded, warmed-up model.
    pub model: OnnxModel,
}

/// An ensemble over slots.
pub struct EnsembleSetup {
    /// Member slot indices (same instrument).
    pub members: Vec<usize>,
    /// One weight per member.
    pub weights: Vec<f64>,
    /// How predictions combine.
    pub method: EnsembleMethod,
}

/// Everything the stage is built from.
pub struct SignalSetup {
    /// Instruments.
    pub registry: InstrumentRegistry,
    /// The slots, in configuration order (their index is the signals' model index).
    pub slots: Vec<SlotSetup>,
    /// An optional ensemble.
    pub ensemble: Option<EnsembleSetup>,
    /// Drift monitoring parameters.
    pub drift: DriftParams,
    /// Predictions awaiting their horizon, per slot (live accuracy).
    pub accuracy_capacity: usize,
    /// Where swaps are prepared.
    pub handoff: SwapHandoff,
    /// The models directory (swaps replayed from the journal load from it).
    pub models: Option<Arc<ModelRegistry>>,
    /// Where admin commands are answered.
    pub admin: Option<AdminReplies>,
}

/// Models loaded and warmed up for a swap, waiting for their `model_swap` record. Shared
/// between the admin's loader thread and the stage; only touched on a swap (cold path).
#[derive(Clone, Default)]
pub struct SwapHandoff {
    ready: Arc<Mutex<Vec<OnnxModel>>>,
}

impl SwapHandoff {
    /// Parks a prepared model (replacing one of the same name and version).
    pub fn put(&self, model: OnnxModel) {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        ready.retain(|m| !(m.name() == model.name() && m.version() == model.version()));
        ready.push(model);
    }

    fn take(&self, name: &str, version: u32) -> Option<OnnxModel> {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let index = ready
            .iter()
            .position(|m| m.name() == name && m.version() == version)?;
        Some(ready.swap_remove(index))
    }
}

/// Counters of one slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotStats {
    /// Samples closed.
    pub samples: u64,
    /// Predictions made (signals emitted).
    pub predictions: u64,
    /// Samples skipped while features lacked history.
    pub warming: u64,
    /// Samples skipped for a NaN or infinite feature.
    pub non_finite: u64,
    /// Model calls that failed.
    pub errors: u64,
    /// Drift evaluations past a warn threshold.
    pub drift_warnings: u64,
    /// Drift evaluations past an alert threshold.
    pub drift_alerts: u64,
    /// Predictions scored against realised returns.
    pub scored: u64,
    /// Swaps applied.
    pub swaps: u64,
}

struct Slot {
    name: String,
    instrument: InstrumentId,
    /// The instrument's definition (scales, for the feature engine).
    spec: aaiti_model::Instrument,
    shadow: bool,
    model: OnnxModel,
    features: FeatureEngine,
    drift: Option<DriftMonitor>,
    accuracy: AccuracyTracker,
    /// The normalised vector as f64 (drift monitor input), reused.
    scratch: Vec<f64>,
    /// This update's prediction (for the ensemble), if any.
    last: Option<Prediction>,
    stats: SlotStats,
}

#[derive(Serialize, Deserialize)]
struct SavedSlot {
    name: String,
    version: u32,
    features: Vec<u8>,
    drift: Option<DriftMonitor>,
    accuracy: AccuracyTracker,
    stats: SlotStats,
}

#[derive(Serialize, Deserialize)]
struct SavedSignals {
    seq: u64,
    market: Vec<u8>,
    slots: Vec<SavedSlot>,
    ensemble_predictions: u64,
}

/// See the module docs.
pub struct SignalStage {
    market: Market,
    slots: Vec<Slot>,
    ensemble: Option<EnsembleSetup>,
    ensemble_scratch: Vec<Prediction>,
    ensemble_predictions: u64,
    drift_params: DriftParams,
    accuracy_capacity: usize,
    handoff: SwapHandoff,
    models: Option<Arc<ModelRegistry>>,
    admin: Option<AdminReplies>,
    seq: u64,
    cause: RecordHeader,
    clock: UnixNanos,
    tap: Option<crossbeam_channel::Sender<FeatureRow>>,
}

/// A scored feature vector, as [`SignalStage::tap_features`] passes it on.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// Slot index.
    pub slot: usize,
    /// The sample's boundary (the `ts_ns` of a feature export row).
    pub ts: UnixNanos,
    /// Raw feature values, spec order.
    pub raw: Vec<f64>,
    /// The model's prediction.
    pub prediction: f64,
}

/// A slot's monitors for `model`.
fn monitors(
    model: &OnnxModel,
    drift: DriftParams,
    accuracy_capacity: usize,
) -> Result<(Option<DriftMonitor>, AccuracyTracker), String> {
    let metadata = model.metadata();
    let drift = match &metadata.reference {
        Some(reference) => Some(
            DriftMonitor::new(reference, drift)
                .map_err(|error| format!("model {}: drift reference: {error}", metadata.name))?,
        ),
        None => None,
    };
    let accuracy = AccuracyTracker::new(metadata.horizon_ms, accuracy_capacity)
        .map_err(|error| format!("model {}: accuracy: {error}", metadata.name))?;
    Ok((drift, accuracy))
}

impl SignalStage {
    /// Builds the stage.
    ///
    /// # Errors
    ///
    /// A feature spec or monitoring reference that does not fit, an ensemble over slots that
    /// do not exist or trade other instruments.
    pub fn new(setup: SignalSetup) -> Result<Self, String> {
        let market = Market::new(&setup.registry)?;
        let mut slots = Vec::with_capacity(setup.slots.len());
        for slot in setup.slots {
            let spec = setup
                .registry
                .get(slot.instrument)
                .ok_or_else(|| format!("model {}: unknown instrument", slot.name))?
                .clone();
            let features = FeatureEngine::new(&slot.model.metadata().features, &spec)
                .map_err(|error| format!("model {}: features: {error}", slot.name))?;
            let (drift, accuracy) = monitors(&slot.model, setup.drift, setup.accuracy_capacity)?;
            let width = slot.model.input_width();
            slots.push(Slot {
                name: slot.name,
                instrument: slot.instrument,
                spec,
                shadow: slot.shadow,
                model: slot.model,
                features,
                drift,
                accuracy,
                scratch: vec![0.0; width],
                last: None,
                stats: SlotStats::default(),
            });
        }
        if let Some(ensemble) = &setup.ensemble {
            let Some(&first) = ensemble.members.first() else {
                return Err("[signals.ensemble]: no members".to_owned());
            };
            if ensemble.weights.len() != ensemble.members.len() {
                return Err("[signals.ensemble]: one weight per member".to_owned());
            }
            for &member in &ensemble.members {
                let (Some(slot), Some(head)) = (slots.get(member), slots.get(first)) else {
                    return Err(format!("[signals.ensemble]: no model {member}"));
                };
                if slot.instrument != head.instrument {
                    return Err("[signals.ensemble]: members score different instruments".into());
                }
            }
        }
        let members = setup.ensemble.as_ref().map_or(0, |e| e.members.len());
        Ok(Self {
            market,
            slots,
            ensemble: setup.ensemble,
            ensemble_scratch: Vec::with_capacity(members),
            ensemble_predictions: 0,
            drift_params: setup.drift,
            accuracy_capacity: setup.accuracy_capacity,
            handoff: setup.handoff,
            models: setup.models,
            admin: setup.admin,
            seq: 0,
            cause: RecordHeader::default(),
            clock: UnixNanos(0),
            tap: None,
        })
    }

    /// Passes every scored feature vector to `tap` (tests, diagnostics: each row allocates;
    /// a full or closed channel drops rows). Serving never needs it.
    pub fn tap_features(&mut self, tap: crossbeam_channel::Sender<FeatureRow>) {
        self.tap = Some(tap);
    }

    /// Counters per slot, in configuration order.
    pub fn slot_stats(&self) -> Vec<(String, SlotStats)> {
        self.slots
            .iter()
            .map(|slot| (slot.name.clone(), slot.stats))
            .collect()
    }

    /// The feature values of slot `index` at its last closed sample (raw, spec order): for
    /// tests that compare served features with exported ones.
    pub fn raw_features(&self, index: usize) -> Option<&[f64]> {
        self.slots.get(index).map(|slot| slot.features.raw())
    }

    fn header(&mut self) -> RecordHeader {
        self.seq += 1;
        RecordHeader::derived(SIGNAL_STREAM, self.seq, &self.cause)
    }

    fn emit<R: Record>(&mut self, record: &R, out: &mut Emitter<'_>) {
        let header = self.header();
        out.emit_record(header, record);
    }

    fn on_book(&mut self, instrument: InstrumentId, now: UnixNanos, out: &mut Emitter<'_>) {
        let Some(state) = self.market.get(instrument) else {
            return;
        };
        if !state.valid() {
            return;
        }
        let mid = state.mid();
        let mut any = false;
        for index in 0..self.slots.len() {
            if self.slots[index].instrument != instrument {
                continue;
            }
            let Some(state) = self.market.get(instrument) else {
                return;
            };
            let slot = &mut self.slots[index];
            slot.last = None;
            if !slot.features.on_book(state, now) {
                continue;
            }
            slot.stats.samples += 1;
            if let Some(mid) = mid {
                let scored = &mut slot.stats.scored;
                slot.accuracy.on_mid(now, mid, &mut |_| *scored += 1);
            }
            if !slot.features.warm() {
                slot.stats.warming += 1;
                continue;
            }
            if slot.features.non_finite() {
                slot.stats.non_finite += 1;
                continue;
            }
            let prediction = match slot.model.predict(slot.features.normalized()) {
                Ok(prediction) => prediction,
                Err(error) => {
                    slot.stats.errors += 1;
                    if slot.stats.errors == 1 {
                        tracing::warn!(model = slot.name, %error, "prediction failed");
                    }
                    continue;
                }
            };
            slot.stats.predictions += 1;
            slot.last = Some(prediction);
            any = true;
            if let Some(mid) = mid {
                slot.accuracy.on_prediction(now, mid, prediction.value);
            }
            if let (Some(tap), Some(sample)) = (&self.tap, slot.features.last_sample()) {
                let _ = tap.try_send(FeatureRow {
                    slot: index,
                    ts: sample.ts,
                    raw: slot.features.raw().to_vec(),
                    prediction: prediction.value,
                });
            }
            let metadata = slot.model.metadata();
            let signal = Signal {
                model: index as u32,
                model_version: slot.model.version(),
                instrument,
                horizon_ms: metadata.horizon_ms,
                prediction: prediction.value,
                confidence: prediction.confidence.clamp(0.0, 1.0),
                flags: if slot.shadow { Signal::FLAG_SHADOW } else { 0 },
                feature_count: slot.model.input_width() as u32,
            };
            self.emit(&signal, out);
            self.monitor(index, now, out);
        }
        if any {
            self.emit_ensemble(instrument, out);
        }
    }

    /// Drift and accuracy of slot `index` after a prediction.
    fn monitor(&mut self, index: usize, _now: UnixNanos, out: &mut Emitter<'_>) {
        let slot = &mut self.slots[index];
        let Some(prediction) = slot.last else {
            return;
        };
        let Some(drift) = &mut slot.drift else {
            return;
        };
        for (target, value) in slot.scratch.iter_mut().zip(slot.features.normalized()) {
            *target = f64::from(*value);
        }
        let Ok(Some(summary)) = drift.observe(&slot.scratch, prediction.value) else {
            return;
        };
        let version = slot.model.version();
        let instrument = slot.instrument;
        let mut events: [Option<ModelEvent>; 8] = [None; 8];
        let mut count = 0;
        for alert in drift.alerts() {
            if count == events.len() {
                break;
            }
            let subject = match alert.subject {
                DriftSubject::FeaturePsi(position) => position,
                DriftSubject::PredictionPsi => SUBJECT_PREDICTION_PSI,
                DriftSubject::PredictionMeanShift => SUBJECT_PREDICTION_MEAN,
                DriftSubject::PredictionStdRatio => SUBJECT_PREDICTION_STD,
            };
            let p = &self.drift_params;
            let (warn, alert_at) = match alert.subject {
                DriftSubject::FeaturePsi(_) | DriftSubject::PredictionPsi => {
                    (p.psi_warn, p.psi_alert)
                }
                DriftSubject::PredictionMeanShift => (p.mean_shift_warn, p.mean_shift_alert),
                DriftSubject::PredictionStdRatio => (p.std_ratio_warn, p.std_ratio_alert),
            };
            let (level, threshold) = match alert.level {
                DriftLevel::Ok => continue,
                DriftLevel::Warn => (1, warn),
                DriftLevel::Alert => (2, alert_at),
            };
            events[count] = Some(ModelEvent {
                kind: ModelEventKind::Drift.code(),
                level,
                model: index as u32,
                version,
                instrument,
                subject,
                value: alert.value,
                threshold,
                count: drift.observations(),
                ..ModelEvent::default()
            });
            count += 1;
        }
        match summary.level {
            DriftLevel::Ok => {}
            DriftLevel::Warn => slot.stats.drift_warnings += 1,
            DriftLevel::Alert => {
                slot.stats.drift_alerts += 1;
                tracing::warn!(model = slot.name, ?summary, "model drift alert");
            }
        }
        let scores = slot.accuracy.scores();
        let accuracy = ModelEvent {
            kind: ModelEventKind::Accuracy.code(),
            model: index as u32,
            version,
            instrument,
            value: scores.ic.unwrap_or(0.0),
            threshold: scores.hit_rate.unwrap_or(0.0),
            count: scores.count,
            ..ModelEvent::default()
        };
        for event in events.iter().flatten() {
            self.emit(event, out);
        }
        // Accuracy goes to the journal at every drift evaluation (once a window).
        self.emit(&accuracy, out);
    }

    fn emit_ensemble(&mut self, instrument: InstrumentId, out: &mut Emitter<'_>) {
        let Some(ensemble) = &self.ensemble else {
            return;
        };
        self.ensemble_scratch.clear();
        for &member in &ensemble.members {
            match self.slots.get(member).and_then(|slot| slot.last) {
                Some(prediction) => self.ensemble_scratch.push(prediction),
                // A member made no prediction on this update: no combined one either.
                None => return,
            }
        }
        let Some(&first) = ensemble.members.first() else {
            return;
        };
        let combined = combine(ensemble.method, &ensemble.weights, &self.ensemble_scratch);
        let horizon_ms = self.slots[first].model.metadata().horizon_ms;
        let feature_count = self.slots[first].model.input_width() as u32;
        let signal = Signal {
            model: self.slots.len() as u32,
            model_version: 0,
            instrument,
            horizon_ms,
            prediction: combined.value,
            confidence: combined.confidence.clamp(0.0, 1.0),
            flags: Signal::FLAG_ENSEMBLE,
            feature_count,
        };
        if signal.prediction.is_finite() {
            self.ensemble_predictions += 1;
            self.emit(&signal, out);
        }
    }

    /// A `model_swap` record: switch slot `name` to `version` (see the module docs).
    fn on_swap(&mut self, control: &Control, out: &mut Emitter<'_>) {
        let used = control
            .text
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(control.text.len());
        let name = String::from_utf8_lossy(&control.text[..used]).into_owned();
        let version = u32::try_from(control.arg).unwrap_or(0);
        let replay = self.cause.flags & RecordHeader::FLAG_REPLAY != 0;
        let outcome = self.swap(&name, version);
        let (index, previous) = match &outcome {
            Ok(done) | Err((done, _)) => *done,
        };
        let event = ModelEvent {
            kind: if outcome.is_ok() {
                ModelEventKind::Swapped.code()
            } else {
                ModelEventKind::SwapRefused.code()
            },
            model: index,
            version,
            instrument: self
                .slots
                .get(index as usize)
                .map_or(InstrumentId(u32::MAX), |s| s.instrument),
            previous,
            ..ModelEvent::default()
        };
        self.emit(&event, out);
        let reply = match outcome {
            Ok(_) => {
                tracing::info!(model = name, version, previous, "model swapped");
                Ok(serde_json::json!({
                    "swapped": name, "version": version, "previous": previous,
                }))
            }
            Err((_, error)) => {
                tracing::warn!(model = name, version, error, "model swap refused");
                Err(error)
            }
        };
        if !replay && let Some(admin) = &self.admin {
            admin.answer(self.cause.seq, reply);
        }
    }

    /// Swaps slot `name` to `version`: `(slot index, previous version)`, or why not.
    #[allow(clippy::type_complexity, reason = "private, one caller")]
    fn swap(&mut self, name: &str, version: u32) -> Result<(u32, u32), ((u32, u32), String)> {
        let Some(index) = self.slots.iter().position(|s| s.name == name) else {
            return Err(((u32::MAX, 0), format!("no model named {name:?} serves")));
        };
        let previous = self.slots[index].model.version();
        let done = (index as u32, previous);
        let model = match self.handoff.take(name, version) {
            Some(model) => model,
            None => {
                // A replayed swap (or one whose preparation was lost): load it here.
                let Some(models) = &self.models else {
                    return Err((done, "no models directory".to_owned()));
                };
                let entry = models
                    .get(name, Some(version))
                    .map_err(|error| (done, error.to_string()))?;
                OnnxModel::load(entry).map_err(|error| (done, error.to_string()))?
            }
        };
        let slot = &mut self.slots[index];
        // Same features: the engine's history carries over; else a new engine warms up.
        if model.metadata().features != slot.model.metadata().features {
            slot.features = FeatureEngine::new(&model.metadata().features, &slot.spec)
                .map_err(|error| (done, format!("features: {error}")))?;
            slot.scratch = vec![0.0; model.input_width()];
        }
        let (drift, accuracy) = monitors(&model, self.drift_params, self.accuracy_capacity)
            .map_err(|error| (done, error))?;
        slot.drift = drift;
        slot.accuracy = accuracy;
        slot.model = model;
        slot.stats.swaps += 1;
        Ok(done)
    }
}

impl Stage for SignalStage {
    fn name(&self) -> &str {
        "signals"
    }

    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        self.cause = event.header;
        if self.cause.ts_event.0 == 0 {
            self.cause.ts_event = self.clock;
        }
        let now = self.cause.ts_event;
        if now > self.clock {
            self.clock = now;
        }
        // The input goes on first: a signal follows the update it was computed on.
        out.emit(event);
        match RecordKind::try_from(event.header.kind) {
            Ok(RecordKind::BookDelta) => {
                if let Some(delta) = event.payload::<BookDelta>() {
                    let delta = *delta;
                    if self.market.on_delta(&delta, now) && delta.flags & BookDelta::FLAG_LAST != 0
                    {
                        self.on_book(delta.instrument, now, out);
                    }
                }
            }
            Ok(RecordKind::Trade) => {
                if let Some(trade) = event.payload::<Trade>() {
                    let trade = *trade;
                    self.market.on_trade(&trade, now);
                    for slot in &mut self.slots {
                        if slot.instrument == trade.instrument {
                            slot.features.on_trade(&trade, now);
                        }
                    }
                }
            }
            Ok(RecordKind::FeedEvent) => {
                if let Some(feed_event) = event.payload::<FeedEvent>() {
                    self.market.on_feed_event(&{ *feed_event });
                }
            }
            Ok(RecordKind::Control) => {
                if let Some(control) = event.payload::<Control>()
                    && control.action == ControlAction::ModelSwap.code()
                {
                    self.on_swap(&{ *control }, out);
                }
            }
            _ => {}
        }
    }

    fn report(&self) -> Vec<(String, u64)> {
        let mut counters = Vec::new();
        let mut predictions = 0;
        for slot in &self.slots {
            let s = slot.stats;
            predictions += s.predictions;
            for (name, value) in [
                ("predictions", s.predictions),
                ("samples", s.samples),
                ("warming", s.warming),
                ("non_finite", s.non_finite),
                ("errors", s.errors),
                ("drift_warnings", s.drift_warnings),
                ("drift_alerts", s.drift_alerts),
                ("scored", s.scored),
                ("swaps", s.swaps),
            ] {
                counters.push((format!("{}.{name}", slot.name), value));
            }
            let scores = slot.accuracy.scores();
            if let Some(hit) = scores.hit_rate {
                counters.push((format!("{}.hit_rate_ppm", slot.name), (hit * 1e6) as u64));
            }
            if let Some(ic) = scores.ic {
                // Negative correlations show as 0 here; the journal has the signed value.
                counters.push((format!("{}.ic_ppm", slot.name), (ic.max(0.0) * 1e6) as u64));
            }
        }
        counters.push(("predictions".to_owned(), predictions));
        counters.push(("ensemble_predictions".to_owned(), self.ensemble_predictions));
        counters
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        let slots = self
            .slots
            .iter()
            .map(|slot| {
                Ok(SavedSlot {
                    name: slot.name.clone(),
                    version: slot.model.version(),
                    features: slot.features.snapshot()?,
                    drift: slot.drift.clone(),
                    accuracy: slot.accuracy.clone(),
                    stats: slot.stats,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let saved = SavedSignals {
            seq: self.seq,
            market: self.market.snapshot()?,
            slots,
            ensemble_predictions: self.ensemble_predictions,
        };
        postcard::to_stdvec(&saved)
            .map(Some)
            .map_err(|error| error.to_string())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let saved: SavedSignals =
            postcard::from_bytes(state).map_err(|error| format!("signal state: {error}"))?;
        if saved.slots.len() != self.slots.len()
            || saved
                .slots
                .iter()
                .zip(&self.slots)
                .any(|(s, slot)| s.name != slot.name)
        {
            return Err("the configured models differ from the snapshot's".to_owned());
        }
        for (saved_slot, index) in saved.slots.into_iter().zip(0..) {
            if self.slots[index].model.version() != saved_slot.version {
                // The snapshot was taken after a swap: serve that version again.
                self.swap(&saved_slot.name.clone(), saved_slot.version)
                    .map_err(|(_, error)| error)?;
            }
            let slot = &mut self.slots[index];
            slot.features.restore(&saved_slot.features)?;
            slot.drift = saved_slot.drift;
            slot.accuracy = saved_slot.accuracy;
            slot.stats = saved_slot.stats;
        }
        self.market.restore(&saved.market)?;
        self.seq = saved.seq;
        self.ensemble_predictions = saved.ensemble_predictions;
        Ok(())
    }
}
