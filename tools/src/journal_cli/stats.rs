//! `stats` (`info`): what a journal holds.

use std::collections::BTreeMap;
use std::io::Write;

use aaiti_journal::{FrameBody, JournalReader};
use aaiti_model::{Envelope, FeedEvent, FeedEventKind, OrderEvent, OrderEventKind, RecordKind};
use serde_json::{Value as Json, json};

use super::Context;
use super::error::CliError;
use super::filter::instrument_of;
use super::source::Progress;
use super::time::{format_duration_ns, format_rfc3339};

/// One segment file.
#[derive(Debug)]
struct SegmentStats {
    index: u64,
    path: String,
    size_bytes: Option<u64>,
    first_seq: u64,
    last_seq: u64,
    /// `ts_recv` of its first and last records.
    first_ts: Option<u64>,
    last_ts: Option<u64>,
}

/// Counts gathered in one pass.
#[derive(Debug, Default)]
struct Counts {
    envelopes: u64,
    blobs: u64,
    invalid: u64,
    by_kind: BTreeMap<&'static str, u64>,
    by_feed_event: BTreeMap<String, u64>,
    by_order_event: BTreeMap<String, u64>,
    by_blob_kind: BTreeMap<u16, u64>,
    by_stream: BTreeMap<u16, u64>,
    by_instrument: BTreeMap<String, u64>,
    ts_first: Option<u64>,
    ts_last: Option<u64>,
    ts_min: Option<u64>,
    ts_max: Option<u64>,
}

fn name_or_code<T: Copy>(
    code: Result<T, impl std::fmt::Display>,
    name: fn(T) -> &'static str,
) -> String {
    match code {
        Ok(v) => name(v).to_owned(),
        Err(c) => format!("code_{c}"),
    }
}

fn count(reader: &JournalReader, ctx: &Context) -> Counts {
    let mut c = Counts::default();
    let mut bar = Progress::bar(ctx.progress, reader.len(), "stats");
    for frame in reader.iter() {
        bar.tick();
        let ts = frame.ts_recv().0;
        c.ts_first.get_or_insert(ts);
        c.ts_last = Some(ts);
        c.ts_min = Some(c.ts_min.map_or(ts, |m| m.min(ts)));
        c.ts_max = Some(c.ts_max.map_or(ts, |m| m.max(ts)));
        match frame.body() {
            FrameBody::Blob { kind, .. } => {
                c.blobs += 1;
                *c.by_blob_kind.entry(kind).or_default() += 1;
            }
            FrameBody::Envelope(bytes) => {
                c.envelopes += 1;
                let Ok(envelope) = Envelope::from_bytes(bytes) else {
                    c.invalid += 1;
                    continue;
                };
                let Ok(kind) = envelope.kind() else { continue };
                *c.by_kind.entry(kind.name()).or_default() += 1;
                *c.by_stream.entry(envelope.header.stream.0).or_default() += 1;
                if let Some(e) = envelope.payload::<FeedEvent>() {
                    let name = name_or_code(FeedEventKind::try_from(e.kind), FeedEventKind::name);
                    *c.by_feed_event.entry(name).or_default() += 1;
                }
                if let Some(e) = envelope.payload::<OrderEvent>() {
                    let name = name_or_code(OrderEventKind::try_from(e.kind), OrderEventKind::name);
                    *c.by_order_event.entry(name).or_default() += 1;
                }
                if let Some(id) = instrument_of(&envelope)
                    && kind != RecordKind::Control
                {
                    let name = match ctx.renderer.symbol(id) {
                        Some(symbol) => symbol.to_owned(),
                        None if id.0 == u32::MAX => "all".to_owned(),
                        None => format!("#{}", id.0),
                    };
                    *c.by_instrument.entry(name).or_default() += 1;
                }
            }
        }
    }
    bar.finish();
    c
}

fn map_json<K: ToString>(map: &BTreeMap<K, u64>) -> Json {
    Json::Object(
        map.iter()
            .map(|(k, v)| (k.to_string(), Json::from(*v)))
            .collect(),
    )
}

/// `stats`.
pub(crate) fn run(
    reader: &JournalReader,
    ctx: &Context,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let segments: Vec<SegmentStats> = reader
        .segments()
        .map(|(index, path, first_seq, last_seq)| SegmentStats {
            index,
            path: path.display().to_string(),
            size_bytes: std::fs::metadata(path).ok().map(|m| m.len()),
            first_seq,
            last_seq,
            first_ts: reader.get(first_seq).ok().map(|f| f.ts_recv().0),
            last_ts: reader.get(last_seq).ok().map(|f| f.ts_recv().0),
        })
        .collect();
    let c = count(reader, ctx);
    let report = reader.report();
    let span_ns = c.ts_min.zip(c.ts_max).map(|(lo, hi)| hi - lo);
    let records = reader.len();
    let rate = span_ns
        .filter(|s| *s > 0)
        .map(|s| records as f64 / (s as f64 / 1e9));
    let size_total: u64 = segments.iter().filter_map(|s| s.size_bytes).sum();
    let torn = report.torn_tail.as_ref().map(|t| {
        json!({
            "path": t.path.display().to_string(),
            "segment": t.segment,
            "offset": t.offset,
            "seq": t.seq,
            "fault": format!("{:?}", t.fault),
            "bytes": t.bytes,
        })
    });
    if as_json {
        let value = json!({
            "journal_dir": reader.dir().display().to_string(),
            "segments": segments.iter().map(|s| json!({
                "index": s.index,
                "path": s.path,
                "size_bytes": s.size_bytes,
                "first_seq": s.first_seq,
                "last_seq": s.last_seq,
                "records": (s.last_seq + 1).saturating_sub(s.first_seq),
                "first_ts_recv": s.first_ts,
                "last_ts_recv": s.last_ts,
            })).collect::<Vec<_>>(),
            "spare_segments": report.spare_segments,
            "size_bytes": size_total,
            "bytes_scanned": report.bytes_scanned,
            "records": records,
            "first_seq": reader.first_seq(),
            "last_seq": reader.last_seq(),
            "envelopes": c.envelopes,
            "blobs": c.blobs,
            "invalid_envelopes": c.invalid,
            "ts_recv_first": c.ts_first,
            "ts_recv_last": c.ts_last,
            "ts_recv_min": c.ts_min,
            "ts_recv_max": c.ts_max,
            "time_min": c.ts_min.map(format_rfc3339),
            "time_max": c.ts_max.map(format_rfc3339),
            "span_ns": span_ns,
            "records_per_s": rate,
            "by_kind": map_json(&c.by_kind),
            "by_feed_event_kind": map_json(&c.by_feed_event),
            "by_order_event_kind": map_json(&c.by_order_event),
            "by_blob_kind": map_json(&c.by_blob_kind),
            "by_stream": map_json(&c.by_stream),
            "by_instrument": map_json(&c.by_instrument),
            "torn_tail": torn,
        });
        serde_json::to_writer_pretty(&mut *out, &value).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "journal      {}", reader.dir().display())?;
    writeln!(
        out,
        "segments     {} ({} spare), {} bytes on disk, {} bytes of records",
        segments.len(),
        report.spare_segments,
        size_total,
        report.bytes_scanned
    )?;
    writeln!(
        out,
        "records      {} (sequences {}..={}): {} envelopes, {} blobs{}",
        records,
        reader.first_seq(),
        reader.last_seq(),
        c.envelopes,
        c.blobs,
        if c.invalid > 0 {
            format!(", {} INVALID", c.invalid)
        } else {
            String::new()
        }
    )?;
    if let (Some(lo), Some(hi), Some(first), Some(last)) =
        (c.ts_min, c.ts_max, c.ts_first, c.ts_last)
    {
        writeln!(
            out,
            "time         {} .. {} (span {})",
            format_rfc3339(lo),
            format_rfc3339(hi),
            format_duration_ns(i128::from(hi - lo))
        )?;
        writeln!(
            out,
            "first/last   {} / {}",
            format_rfc3339(first),
            format_rfc3339(last)
        )?;
    }
    if let Some(rate) = rate {
        writeln!(out, "rate         {rate:.1} records/s over the span")?;
    }
    match &report.torn_tail {
        Some(t) => writeln!(
            out,
            "torn tail    segment {} offset {} (sequence {}): {:?}, {} bytes (not cut; data ends before it)",
            t.segment, t.offset, t.seq, t.fault, t.bytes
        )?,
        None => writeln!(out, "torn tail    none")?,
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>8} {:>12} {:>12} {:>10} {:>12}  {:<30}  {:<30}  path",
        "segment", "first_seq", "last_seq", "records", "bytes", "first time", "last time"
    )?;
    for s in &segments {
        writeln!(
            out,
            "{:>8} {:>12} {:>12} {:>10} {:>12}  {:<30}  {:<30}  {}",
            s.index,
            s.first_seq,
            s.last_seq,
            (s.last_seq + 1).saturating_sub(s.first_seq),
            s.size_bytes.map_or_else(|| "?".into(), |b| b.to_string()),
            s.first_ts.map_or_else(|| "-".into(), format_rfc3339),
            s.last_ts.map_or_else(|| "-".into(), format_rfc3339),
            s.path
        )?;
    }
    let sections: [(&str, Vec<(String, u64)>); 6] = [
        (
            "by kind",
            c.by_kind
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
        ),
        (
            "feed events",
            c.by_feed_event
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
        (
            "order events",
            c.by_order_event
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
        (
            "blobs by kind",
            c.by_blob_kind
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
        (
            "by stream",
            c.by_stream
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
        (
            "by instrument",
            c.by_instrument
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
    ];
    for (title, rows) in sections {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "\n{title}:")?;
        for (name, n) in rows {
            writeln!(out, "  {name:<28} {n:>12}")?;
        }
    }
    Ok(())
}
