//! `dump`, `tail` and `export`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use aaiti_journal::{Follower, Frame, Frames, JournalReader};
use aaiti_model::UnixNanos;

use super::error::CliError;
use super::filter::{Filter, KindSel};
use super::source::{self, Progress};
use super::{Context, ExportFormat};

/// Where to start reading for `filter`: the later of its sequence and time starts.
pub(crate) fn start<'r>(
    reader: &'r JournalReader,
    filter: &Filter,
) -> Result<Frames<'r>, CliError> {
    let mut frames = reader.iter();
    if let Some(ts) = filter.from_time {
        let at = reader.seek_time(UnixNanos(ts));
        if at.next_seq() > frames.next_seq() {
            frames = at;
        }
    }
    if let Some(seq) = filter.from_seq {
        let seq = seq.clamp(reader.first_seq(), reader.last_seq() + 1);
        if seq > frames.next_seq() {
            frames = reader.seek_seq(seq)?;
        }
    }
    Ok(frames)
}

fn write_record(
    ctx: &Context,
    frame: &Frame<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if json {
        serde_json::to_writer(&mut *out, &ctx.renderer.json(frame))
            .map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    } else {
        writeln!(out, "{}", ctx.renderer.text_line(frame))?;
    }
    Ok(())
}

/// `dump`: matching records in journal order.
pub(crate) fn dump(
    reader: &JournalReader,
    ctx: &Context,
    filter: &Filter,
    json: bool,
    limit: Option<u64>,
    progress: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let frames = start(reader, filter)?;
    let mut bar = Progress::bar(progress, frames.len() as u64, "dump");
    let mut shown = 0u64;
    for frame in frames {
        bar.tick();
        if filter.past_end(frame.seq()) || limit.is_some_and(|l| shown >= l) {
            break;
        }
        if filter.matches(&frame) {
            write_record(ctx, &frame, json, out)?;
            shown += 1;
        }
    }
    bar.finish();
    Ok(())
}

/// How long one follower wait lasts before checking again (bounds the reaction to nothing).
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// `tail`: the last `lines` matching records, then (with `follow`) new ones as they come.
pub(crate) fn tail(
    path: &Path,
    ctx: &Context,
    filter: &Filter,
    lines: u64,
    follow: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let dir = source::resolve_journal_dir(path, follow)?;
    let has_segments = std::fs::read_dir(&dir)
        .map_err(|source| CliError::Io {
            op: "read directory",
            path: dir.clone(),
            source,
        })?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_str().is_some_and(source::is_segment_name));
    let mut next_seq = 1;
    if has_segments {
        let reader = JournalReader::open(&dir)?;
        // Unfiltered, the last `lines` records are the last `lines` sequences; filtered, scan
        // and keep the last `lines` matches (memory bounded by `lines`).
        let from = if filter.is_empty() {
            (reader.last_seq() + 1)
                .saturating_sub(lines)
                .max(reader.first_seq())
        } else {
            reader.first_seq()
        };
        let mut last: VecDeque<u64> = VecDeque::new();
        let mut bar = Progress::bar(ctx.progress && !filter.is_empty(), reader.len(), "tail");
        for frame in reader.seek_seq(from)? {
            bar.tick();
            if lines > 0 && filter.matches(&frame) {
                if last.len() as u64 == lines {
                    last.pop_front();
                }
                last.push_back(frame.seq());
            }
        }
        bar.finish();
        for seq in last {
            write_record(ctx, &reader.get(seq)?, json, out)?;
        }
        next_seq = reader.last_seq() + 1;
    }
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut follower = Follower::open(&dir, next_seq)?;
    // Runs until the process is interrupted (Ctrl-C) or the output is closed.
    loop {
        if let Some(frame) = follower.wait(FOLLOW_POLL)?
            && filter.matches(&frame)
        {
            write_record(ctx, &frame, json, out)?;
            out.flush()?;
        }
    }
}

/// `export`: CSV (one kind) or JSON lines to `path` or `out`.
pub(crate) fn export(
    reader: &JournalReader,
    ctx: &Context,
    filter: &Filter,
    format: ExportFormat,
    path: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let csv_kind = match (format, filter.kinds.as_slice()) {
        (ExportFormat::Jsonl, _) => None,
        (ExportFormat::Csv, [KindSel::Record(kind)]) => Some(Some(*kind)),
        (ExportFormat::Csv, [KindSel::Blob]) => Some(None),
        (ExportFormat::Csv, _) => {
            return Err(CliError::Usage(
                "CSV export needs exactly one --kind (each kind has its own columns); use \
                 --format jsonl for several kinds"
                    .into(),
            ));
        }
    };
    let mut file_out;
    let target: &mut dyn Write = match path {
        Some(path) => {
            let file = File::create(path).map_err(|source| CliError::Io {
                op: "create",
                path: path.to_path_buf(),
                source,
            })?;
            file_out = BufWriter::with_capacity(1 << 20, file);
            &mut file_out
        }
        None => out,
    };
    let frames = start(reader, filter)?;
    // Writing to a file leaves the terminal free for a bar.
    let mut bar = Progress::bar(
        ctx.progress && path.is_some(),
        frames.len() as u64,
        "export",
    );
    if let Some(kind) = csv_kind {
        writeln!(
            target,
            "{}",
            super::render::csv_line(&ctx.renderer.csv_header(kind))
        )?;
    }
    for frame in frames {
        bar.tick();
        if filter.past_end(frame.seq()) {
            break;
        }
        if !filter.matches(&frame) {
            continue;
        }
        if csv_kind.is_some() {
            if let Some(row) = ctx.renderer.csv_row(&frame) {
                writeln!(target, "{}", super::render::csv_line(&row))?;
            }
        } else {
            write_record(ctx, &frame, true, target)?;
        }
    }
    bar.finish();
    target.flush()?;
    Ok(())
}
