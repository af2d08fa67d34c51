//! `order <id>`: one order's lifecycle.
//!
//! An order is known by its engine order id and by client order ids (its own, and those of
//! the cancels and replaces that target it). A first pass over the order records links the
//! id given to the others (an event carries both the order id and the client order id); a
//! second pass collects every order command, order event and risk event that carries one of
//! them, and every FIX message blob whose ClOrdID (11), OrigClOrdID (41) or OrderID (37) field
//! names one. Links that only a later record reveals about an earlier cancel's id are found;
//! chains needing more than one hop beyond that (a replace of a replace known only through
//! its predecessor) may be missed.

use std::collections::BTreeSet;
use std::io::Write;

use aaiti_journal::{Frame, FrameBody, JournalReader};
use aaiti_model::{
    ClientOrderId, Envelope, OrderAction, OrderCommand, OrderEvent, OrderEventKind, RiskEvent,
};
use serde_json::json;

use super::Context;
use super::error::CliError;
use super::filter::OrderRef;
use super::render::{JsonRecord, is_texty};
use super::source::Progress;
use super::time::format_duration_ns;

/// Most steps collected for one order (bounds memory on a pathological journal).
const MAX_STEPS: usize = 100_000;
/// Most ids collected for one order.
const MAX_IDS: usize = 10_000;

#[derive(Debug, Default)]
struct Ids {
    order_ids: BTreeSet<u64>,
    /// Client order ids seen in records linked to the order.
    client_ids: BTreeSet<Vec<u8>>,
    /// The text given, as a client order id (it may also be an engine order id).
    seed_cl: Option<Vec<u8>>,
}

impl Ids {
    fn has_id(&self, id: u64) -> bool {
        id != 0 && self.order_ids.contains(&id)
    }

    fn has_cl(&self, cl: &ClientOrderId) -> bool {
        !cl.is_none()
            && (self.client_ids.contains(cl.as_bytes())
                || self.seed_cl.as_deref() == Some(cl.as_bytes()))
    }

    fn add_id(&mut self, id: u64) {
        if id != 0 && self.order_ids.len() < MAX_IDS {
            self.order_ids.insert(id);
        }
    }

    fn add_cl(&mut self, cl: &ClientOrderId) {
        if !cl.is_none() && self.client_ids.len() < MAX_IDS {
            self.client_ids.insert(cl.as_bytes().to_vec());
        }
    }

    /// Links ids through `envelope` if it refers to the order; true if it does.
    fn link(&mut self, envelope: &Envelope) -> bool {
        if let Some(c) = envelope.payload::<OrderCommand>() {
            if self.has_id(c.order_id.0)
                || self.has_cl(&c.client_order_id)
                || self.has_cl(&c.orig_client_order_id)
            {
                self.add_id(c.order_id.0);
                self.add_cl(&c.client_order_id);
                self.add_cl(&c.orig_client_order_id);
                return true;
            }
        } else if let Some(e) = envelope.payload::<OrderEvent>() {
            if self.has_id(e.order_id.0) || self.has_cl(&e.client_order_id) {
                self.add_id(e.order_id.0);
                self.add_cl(&e.client_order_id);
                return true;
            }
        } else if let Some(r) = envelope.payload::<RiskEvent>() {
            return self.has_id(r.order_id.0);
        }
        false
    }

    /// True if a FIX message names one of the ids (fields split on SOH or `|`).
    fn in_fix(&self, data: &[u8]) -> bool {
        data.split(|&b| b == 0x01 || b == b'|').any(|field| {
            let Some(eq) = field.iter().position(|&b| b == b'=') else {
                return false;
            };
            let (tag, value) = (&field[..eq], &field[eq + 1..]);
            match tag {
                b"11" | b"41" => {
                    self.client_ids.contains(value) || self.seed_cl.as_deref() == Some(value)
                }
                b"37" => std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|id| self.has_id(id)),
                _ => false,
            }
        })
    }
}

/// A step of the lifecycle.
struct Step {
    ts: u64,
    text: String,
    json: JsonRecord,
    /// What the step is, for the summary.
    what: StepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    New,
    Cancel,
    Replace,
    OtherCommand,
    Event(Option<OrderEventKind>),
    Risk,
    Fix,
}

fn step_kind(frame: &Frame<'_>) -> StepKind {
    let FrameBody::Envelope(bytes) = frame.body() else {
        return StepKind::Fix;
    };
    let Ok(envelope) = Envelope::from_bytes(bytes) else {
        return StepKind::OtherCommand;
    };
    if let Some(c) = envelope.payload::<OrderCommand>() {
        return match c.action() {
            Some(OrderAction::New) => StepKind::New,
            Some(OrderAction::Cancel) => StepKind::Cancel,
            Some(OrderAction::Replace) => StepKind::Replace,
            _ => StepKind::OtherCommand,
        };
    }
    if let Some(e) = envelope.payload::<OrderEvent>() {
        return StepKind::Event(OrderEventKind::try_from(e.kind).ok());
    }
    StepKind::Risk
}

/// `order`.
pub(crate) fn run(
    reader: &JournalReader,
    ctx: &Context,
    order: &OrderRef,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut ids = Ids::default();
    if let Some(id) = order.id {
        ids.add_id(id);
    }
    if ClientOrderId::new(order.text.as_bytes()).is_ok() {
        ids.seed_cl = Some(order.text.as_bytes().to_vec());
    }
    // Pass 1: link ids.
    let mut bar = Progress::bar(ctx.progress, reader.len() * 2, "order");
    for frame in reader.iter() {
        bar.tick();
        if let FrameBody::Envelope(bytes) = frame.body()
            && let Ok(envelope) = Envelope::from_bytes(bytes)
        {
            ids.link(&envelope);
        }
    }
    // Pass 2: collect.
    let mut steps: Vec<Step> = Vec::new();
    for frame in reader.iter() {
        bar.tick();
        if steps.len() >= MAX_STEPS {
            break;
        }
        let hit = match frame.body() {
            FrameBody::Envelope(bytes) => Envelope::from_bytes(bytes).is_ok_and(|e| ids.link(&e)),
            FrameBody::Blob { data, .. } => is_texty(data) && ids.in_fix(data),
        };
        if hit {
            steps.push(Step {
                ts: frame.ts_recv().0,
                text: ctx.renderer.text_line(&frame),
                json: ctx.renderer.json(&frame),
                what: step_kind(&frame),
            });
        }
    }
    bar.finish();
    if steps.is_empty() {
        return Err(CliError::Usage(format!(
            "no order command, order event, risk event or FIX message refers to order {:?} \
             in {}",
            order.text,
            reader.dir().display()
        )));
    }
    let first_ts = steps[0].ts;
    let delta = |a: u64, b: u64| i128::from(b) - i128::from(a);
    let summary = summarize(&steps);
    let client_ids: Vec<String> = ids
        .client_ids
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if as_json {
        let mut prev = first_ts;
        let list: Vec<JsonRecord> = steps
            .iter()
            .map(|s| {
                let mut j = s.json.clone();
                j.push("since_prev_ns", delta(prev, s.ts) as i64);
                j.push("since_first_ns", delta(first_ts, s.ts) as i64);
                prev = s.ts;
                j
            })
            .collect();
        let mut value = JsonRecord::default();
        value.push("order", order.text.as_str());
        value.push("order_ids", json!(ids.order_ids));
        value.push("client_order_ids", json!(client_ids));
        value.push_objects("steps", list);
        let mut latencies = JsonRecord::default();
        for (name, ns) in &summary {
            latencies.push(*name, *ns as i64);
        }
        value.push_object("latencies_ns", latencies);
        serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "order {}: order ids {:?}, client order ids {:?}, {} steps",
        order.text,
        ids.order_ids,
        client_ids,
        steps.len()
    )?;
    writeln!(out, "{:>12} {:>12}  record", "+prev", "+first")?;
    let mut prev = first_ts;
    for s in &steps {
        writeln!(
            out,
            "{:>12} {:>12}  {}",
            format_duration_ns(delta(prev, s.ts)),
            format_duration_ns(delta(first_ts, s.ts)),
            s.text
        )?;
        prev = s.ts;
    }
    if !summary.is_empty() {
        writeln!(out, "\nlatencies:")?;
        for (name, ns) in &summary {
            writeln!(out, "  {name:<28} {}", format_duration_ns(*ns))?;
        }
    }
    Ok(())
}

const FILLS: &[OrderEventKind] = &[OrderEventKind::PartiallyFilled, OrderEventKind::Filled];
const DONE: &[OrderEventKind] = &[
    OrderEventKind::Filled,
    OrderEventKind::Canceled,
    OrderEventKind::Rejected,
    OrderEventKind::Expired,
];

/// Latencies between the lifecycle's landmarks (ns; from receive times).
fn summarize(steps: &[Step]) -> Vec<(&'static str, i128)> {
    let mut out = Vec::new();
    let first_of = |pred: &dyn Fn(StepKind) -> bool, after: u64| {
        steps
            .iter()
            .find(|s| s.ts >= after && pred(s.what))
            .map(|s| s.ts)
    };
    let is_event = |k: StepKind| matches!(k, StepKind::Event(_));
    let is = |want: &'static [OrderEventKind]| move |k: StepKind| matches!(k, StepKind::Event(Some(e)) if want.contains(&e));
    if let Some(new) = steps.iter().find(|s| s.what == StepKind::New).map(|s| s.ts) {
        let d = |t: Option<u64>| t.map(|t| i128::from(t) - i128::from(new));
        for (name, value) in [
            ("command_to_first_event", d(first_of(&is_event, new))),
            (
                "command_to_accepted",
                d(first_of(&is(&[OrderEventKind::Accepted]), new)),
            ),
            (
                "command_to_rejected",
                d(first_of(&is(&[OrderEventKind::Rejected]), new)),
            ),
            (
                "command_to_risk_event",
                d(first_of(&|k| k == StepKind::Risk, new)),
            ),
            ("command_to_first_fill", d(first_of(&is(FILLS), new))),
            ("command_to_done", d(first_of(&is(DONE), new))),
        ] {
            if let Some(v) = value {
                out.push((name, v));
            }
        }
    }
    if let Some(cancel) = steps
        .iter()
        .find(|s| s.what == StepKind::Cancel)
        .map(|s| s.ts)
        && let Some(t) = first_of(
            &is(&[OrderEventKind::Canceled, OrderEventKind::CancelRejected]),
            cancel,
        )
    {
        out.push(("cancel_to_canceled", i128::from(t) - i128::from(cancel)));
    }
    if let Some(replace) = steps
        .iter()
        .find(|s| s.what == StepKind::Replace)
        .map(|s| s.ts)
        && let Some(t) = first_of(
            &is(&[OrderEventKind::Replaced, OrderEventKind::CancelRejected]),
            replace,
        )
    {
        out.push(("replace_to_replaced", i128::from(t) - i128::from(replace)));
    }
    out
}
