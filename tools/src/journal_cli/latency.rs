//! `latency`: per-stage latency histograms from record timestamps.
//!
//! Stages:
//!
//! * `wire.<kind>.s<stream>`: `ts_recv - ts_event` of every envelope with an event time, per
//!   record kind and stream: venue (or client) to us for market data, execution reports and
//!   commands.
//! * `order.command_to_ack`, `order.command_to_accepted`, `order.command_to_rejected`,
//!   `order.command_to_first_fill`: from a New order command to the first order event, the
//!   first `accepted`, `rejected` and fill event of the same client order id.
//! * `order.cancel_to_canceled`, `order.replace_to_replaced`: from a cancel (replace) command
//!   to the `canceled` / `cancel_rejected` (`replaced`) event with its client order id or
//!   target order id.
//!
//! Differences use receive times (`ts_recv`), which one clock stamps. Negative differences
//! (clock steps, venue clocks ahead of ours) are counted, not recorded.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};

use aaiti_journal::{FrameBody, JournalReader};
use aaiti_model::{Envelope, OrderAction, OrderCommand, OrderEvent, OrderEventKind};
use hdrhistogram::Histogram;
use serde_json::{Value as Json, json};

use super::error::CliError;
use super::filter::Filter;
use super::source::Progress;
use super::{Context, LatencyArgs};

/// Most orders (and cancels/replaces) awaiting their event; more are counted as untracked.
const MAX_PENDING: usize = 1 << 20;
/// Significant figures of the histograms.
const SIGFIGS: u8 = 3;

/// One stage's histogram.
pub(crate) struct Stage {
    hist: Histogram<u64>,
    negative: u64,
}

impl Stage {
    fn new() -> Result<Self, CliError> {
        let hist =
            Histogram::new(SIGFIGS).map_err(|e| CliError::Usage(format!("histogram: {e}")))?;
        Ok(Self { hist, negative: 0 })
    }

    fn record(&mut self, from: u64, to: u64) {
        match to.checked_sub(from) {
            // Auto-resizing histograms only fail on values beyond u64 range limits.
            Some(d) => {
                let _ = self.hist.record(d);
            }
            None => self.negative += 1,
        }
    }
}

#[derive(Default)]
struct PendingNew {
    ts: u64,
    acked: bool,
    accepted: bool,
    filled: bool,
}

/// Measures every stage over the matching records.
pub(crate) struct Measure {
    stages: BTreeMap<String, Stage>,
    news: HashMap<[u8; 40], PendingNew>,
    /// Cancels and replaces: by client order id and by target order id.
    amends_by_cl: HashMap<[u8; 40], (OrderAction, u64)>,
    amends_by_id: HashMap<u64, (OrderAction, u64)>,
    untracked: u64,
}

impl Measure {
    fn new() -> Self {
        Self {
            stages: BTreeMap::new(),
            news: HashMap::new(),
            amends_by_cl: HashMap::new(),
            amends_by_id: HashMap::new(),
            untracked: 0,
        }
    }

    fn record(&mut self, name: &str, from: u64, to: u64) -> Result<(), CliError> {
        if !self.stages.contains_key(name) {
            self.stages.insert(name.to_owned(), Stage::new()?);
        }
        if let Some(stage) = self.stages.get_mut(name) {
            stage.record(from, to);
        }
        Ok(())
    }

    fn add(&mut self, envelope: &Envelope) -> Result<(), CliError> {
        let h = envelope.header;
        let ts = h.ts_recv.0;
        if let Ok(kind) = envelope.kind()
            && h.ts_event.0 != 0
        {
            self.record(
                &format!("wire.{}.s{}", kind.name(), h.stream.0),
                h.ts_event.0,
                ts,
            )?;
        }
        if let Some(c) = envelope.payload::<OrderCommand>() {
            let room = self.news.len() + self.amends_by_cl.len() < MAX_PENDING;
            match c.action() {
                Some(OrderAction::New) if !c.client_order_id.is_none() => {
                    if room {
                        self.news.insert(
                            c.client_order_id.0,
                            PendingNew {
                                ts,
                                ..PendingNew::default()
                            },
                        );
                    } else {
                        self.untracked += 1;
                    }
                }
                Some(action @ (OrderAction::Cancel | OrderAction::Replace)) => {
                    if room {
                        if !c.client_order_id.is_none() {
                            self.amends_by_cl.insert(c.client_order_id.0, (action, ts));
                        }
                        if c.order_id.0 != 0 {
                            self.amends_by_id.insert(c.order_id.0, (action, ts));
                        }
                    } else {
                        self.untracked += 1;
                    }
                }
                _ => {}
            }
        }
        if let Some(e) = envelope.payload::<OrderEvent>() {
            self.order_event(e, ts)?;
        }
        Ok(())
    }

    fn order_event(&mut self, e: &OrderEvent, ts: u64) -> Result<(), CliError> {
        let Ok(kind) = OrderEventKind::try_from(e.kind) else {
            return Ok(());
        };
        let mut marks: Vec<(&'static str, u64)> = Vec::new();
        if let Some(p) = self.news.get_mut(&e.client_order_id.0) {
            if !p.acked {
                p.acked = true;
                marks.push(("order.command_to_ack", p.ts));
            }
            match kind {
                OrderEventKind::Accepted if !p.accepted => {
                    p.accepted = true;
                    marks.push(("order.command_to_accepted", p.ts));
                }
                OrderEventKind::Rejected => marks.push(("order.command_to_rejected", p.ts)),
                OrderEventKind::PartiallyFilled | OrderEventKind::Filled if !p.filled => {
                    p.filled = true;
                    marks.push(("order.command_to_first_fill", p.ts));
                }
                _ => {}
            }
            if matches!(
                kind,
                OrderEventKind::Filled
                    | OrderEventKind::Canceled
                    | OrderEventKind::Rejected
                    | OrderEventKind::Expired
            ) {
                self.news.remove(&e.client_order_id.0);
            }
        }
        let amend_done = matches!(
            kind,
            OrderEventKind::Canceled | OrderEventKind::Replaced | OrderEventKind::CancelRejected
        );
        if amend_done {
            let found = self
                .amends_by_cl
                .remove(&e.client_order_id.0)
                .or_else(|| self.amends_by_id.remove(&e.order_id.0));
            if let Some((action, from)) = found {
                self.amends_by_id.remove(&e.order_id.0);
                let name = match action {
                    OrderAction::Replace => "order.replace_to_replaced",
                    _ => "order.cancel_to_canceled",
                };
                marks.push((name, from));
            }
        }
        for (name, from) in marks {
            self.record(name, from, ts)?;
        }
        Ok(())
    }
}

/// Writes `hist` in HdrHistogram's percentile distribution text format (`.hgrm`, as
/// `outputPercentileDistribution` prints it), values scaled by `1 / unit_ratio` (1000: ns to
/// microseconds).
pub(crate) fn write_hgrm(
    hist: &Histogram<u64>,
    unit_ratio: f64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    for v in hist.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / unit_ratio;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            writeln!(
                out,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            )?;
        } else {
            writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
        }
    }
    let (mean, stdev, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            hist.mean() / unit_ratio,
            hist.stdev() / unit_ratio,
            hist.max() as f64 / unit_ratio,
        )
    };
    writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        hist.distinct_values()
    )?;
    Ok(())
}

const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999)];

fn write_file(path: &std::path::Path, stage: &Stage) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut w = BufWriter::new(file);
    write_hgrm(&stage.hist, 1000.0, &mut w).map_err(io)?;
    w.flush().map_err(io)
}

/// `latency`.
pub(crate) fn run(
    reader: &JournalReader,
    ctx: &Context,
    filter: &Filter,
    args: &LatencyArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut measure = Measure::new();
    let frames = super::dump::start(reader, filter)?;
    let mut bar = Progress::bar(ctx.progress, frames.len() as u64, "latency");
    for frame in frames {
        bar.tick();
        if filter.past_end(frame.seq()) {
            break;
        }
        if !filter.matches(&frame) {
            continue;
        }
        if let FrameBody::Envelope(bytes) = frame.body()
            && let Ok(envelope) = Envelope::from_bytes(bytes)
        {
            measure.add(&envelope)?;
        }
    }
    bar.finish();
    let selected: Vec<(&String, &Stage)> = measure
        .stages
        .iter()
        .filter(|(name, _)| args.stage.as_deref().is_none_or(|want| name.contains(want)))
        .collect();
    if let Some(path) = &args.hgrm {
        match selected.as_slice() {
            [(_, stage)] => write_file(path, stage)?,
            _ => {
                let names: Vec<&str> = selected.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CliError::Usage(format!(
                    "--hgrm writes one stage but {} are selected ({}); narrow with --stage or \
                     use --hgrm-dir",
                    names.len(),
                    names.join(", ")
                )));
            }
        }
    }
    if let Some(dir) = &args.hgrm_dir {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        for (name, stage) in &selected {
            write_file(&dir.join(format!("{name}.hgrm")), stage)?;
        }
    }
    if args.json {
        let stages: Vec<Json> = selected
            .iter()
            .map(|(name, s)| {
                let h = &s.hist;
                let mut obj = serde_json::Map::new();
                obj.insert("name".into(), json!(name));
                obj.insert("count".into(), json!(h.len()));
                obj.insert("negative".into(), json!(s.negative));
                // An empty stage (every difference negative) has no percentiles.
                let some = |v: u64| if h.is_empty() { Json::Null } else { json!(v) };
                obj.insert("min".into(), some(h.min()));
                for (label, q) in QUANTILES {
                    obj.insert(label.into(), some(h.value_at_quantile(q)));
                }
                obj.insert("max".into(), some(h.max()));
                obj.insert(
                    "mean".into(),
                    if h.is_empty() {
                        Json::Null
                    } else {
                        json!(h.mean())
                    },
                );
                Json::Object(obj)
            })
            .collect();
        let value =
            json!({ "unit": "ns", "untracked_orders": measure.untracked, "stages": stages });
        serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if selected.is_empty() {
        writeln!(
            out,
            "no latency can be derived from these records (no event times, no order commands with events)"
        )?;
        return Ok(());
    }
    let width = selected
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}   (microseconds)",
        "stage", "count", "min", "p50", "p90", "p99", "p99.9", "max", "negative"
    )?;
    for (name, s) in &selected {
        let h = &s.hist;
        let us = |v: u64| {
            if h.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.3}", v as f64 / 1000.0)
            }
        };
        writeln!(
            out,
            "{:<width$} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            name,
            h.len(),
            us(h.min()),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.9)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max()),
            s.negative
        )?;
    }
    if selected.iter().any(|(_, s)| s.negative > 0) {
        writeln!(
            out,
            "(negative: differences below zero, not in the percentiles; for wire.* stages the \
             venue's clock runs ahead of ours, or the records were replayed with recorded times)"
        )?;
    }
    if measure.untracked > 0 {
        writeln!(
            out,
            "({} orders not tracked: more than {MAX_PENDING} pending)",
            measure.untracked
        )?;
    }
    Ok(())
}
