//! Builds the configured pipeline, places it, runs it until its sources finish or a stop is
//! requested, and summarises the run.
//!
//! The pipeline today: the configured sources (replays of venue recordings, synthetic
//! generators) -> `book` (an L2 book per instrument, validity, checksums, BBO checks) ->
//! `counter` (verifies every stream arrives complete and in order). Later issues insert the
//! feature, strategy, risk and journal stages.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aaiti_feeds::replay::Pace;
use aaiti_journal::{JournalReader, JournalWriter};
use aaiti_model::{RecordHeader, StreamId};
use serde::Serialize;

use crate::config::{ConfigError, LoadedConfig, SourceConfig};
use crate::live::{LiveSettings, live_source};
use crate::replay::{ReplaySource, parse_speed};
use crate::runtime::{Pipeline, Plan, RunReport, Running, StopHandle, plan};
use crate::stages::book::BookStage;
use crate::stages::journal::JournalStage;
use crate::synthetic::{CountingSink, SyntheticSource};

/// Stream id of the book stage's own records. Sources number from 1 in configuration order.
pub const BOOK_STREAM: StreamId = StreamId(1000);

/// Run-time overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Events per synthetic generator instead of the configured number.
    pub events: Option<u64>,
    /// Events per second per synthetic generator instead of the configured rate (0: max).
    pub rate_per_s: Option<u64>,
    /// Replay speed instead of each replay source's configured one.
    pub speed: Option<Pace>,
    /// Compare books with the venues' own BBO (overrides `book.check` when set).
    pub check: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Plan for these cores instead of the process's affinity mask.
    pub cores: Option<Vec<usize>>,
    /// The data directory: with `[journal] enabled`, the journal lives in `journal/` under
    /// it and the run resumes from it. `None` runs without a journal.
    pub data_dir: Option<PathBuf>,
}

/// What start-up recovery found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovery {
    /// Journal directory.
    pub journal_dir: String,
    /// Records in the journal when the run started.
    pub journal_records: u64,
    /// Source records passed back through the stages.
    pub replayed: u64,
    /// A torn tail recovery cut, if any (segment, offset, sequence, bytes).
    pub torn_tail: Option<String>,
    /// Each source's last journaled sequence (it resumes after it).
    pub resumed: Vec<(String, u64)>,
    /// Time recovery took.
    pub elapsed_s: f64,
}

/// The pipeline the configuration describes, up to the book stage (the journal stage and
/// the counter are added by [`start`]).
pub fn build_pipeline(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<Pipeline> {
    let config = &loaded.config;
    let mut pipeline = Pipeline::new(config.pipeline.ring_settings());
    for (index, source) in config.sources.iter().enumerate() {
        let stream = StreamId(u16::try_from(index + 1)?);
        pipeline = match source {
            SourceConfig::Synthetic {
                name,
                events,
                rate_per_s,
            } => {
                let events = options.events.unwrap_or(*events);
                let rate = options.rate_per_s.unwrap_or(*rate_per_s);
                pipeline.source(Box::new(SyntheticSource::new(name, stream.0, events, rate)))
            }
            SourceConfig::Replay {
                name,
                venue,
                file,
                speed,
            } => {
                let pace = match options.speed {
                    Some(pace) => pace,
                    None => parse_speed(speed).map_err(anyhow::Error::msg)?,
                };
                let source =
                    ReplaySource::open(name, file, *venue, pace, &loaded.registry, stream)?;
                pipeline.source(Box::new(source))
            }
            SourceConfig::Live {
                name,
                venue,
                url,
                rest_url,
                backup_url,
                failover_after_ms,
                failback_after_ms,
                ca_file,
            } => {
                let extra_roots_pem = match ca_file {
                    Some(path) => vec![std::fs::read(path).map_err(|error| {
                        anyhow::anyhow!(
                            "source {name}: cannot read ca_file {}: {error}",
                            path.display()
                        )
                    })?],
                    None => Vec::new(),
                };
                let settings = LiveSettings {
                    venue: *venue,
                    url: url.clone(),
                    rest_url: rest_url.clone(),
                    backup_url: backup_url.clone(),
                    failover_after_ms: *failover_after_ms,
                    failback_after_ms: *failback_after_ms,
                    extra_roots_pem,
                };
                pipeline.source(live_source(name, &settings, &loaded.registry, stream)?)
            }
        };
    }
    let check = options.check || config.book.check;
    Ok(pipeline.stage(Box::new(BookStage::new(
        &loaded.registry,
        check,
        BOOK_STREAM,
    )?)))
}

/// Adds the journal stage and the counter, and rebuilds state from an existing journal:
/// source records go back through the stages (flagged replay, so nothing is journaled or
/// sent twice) and each source resumes after its last journaled record.
fn attach_journal_and_recover(
    loaded: &LoadedConfig,
    options: &RunOptions,
    mut pipeline: Pipeline,
) -> anyhow::Result<(Pipeline, Option<Recovery>)> {
    let section = &loaded.config.journal;
    let Some(data_dir) = options.data_dir.as_ref().filter(|_| section.enabled) else {
        return Ok((pipeline.stage(Box::new(CountingSink::new("counter"))), None));
    };
    let started = Instant::now();
    let journal_dir = data_dir.join("journal");
    let writer_config = section.writer_config().map_err(anyhow::Error::msg)?;
    let writer = JournalWriter::open(&journal_dir, writer_config)?;
    let report = writer.recovery_report().clone();
    let torn_tail = report.torn_tail.as_ref().map(|tail| format!("{tail:?}"));
    if let Some(tail) = &torn_tail {
        tracing::warn!(tail, "recovery cut a torn tail from the journal");
    }
    // Pass 1: where each stream's journaled records end.
    let reader = JournalReader::open(&journal_dir)?;
    let mut journaled_through = vec![0_u64; usize::from(u16::MAX) + 1];
    for frame in reader.iter() {
        if let Some(Ok(envelope)) = frame.envelope() {
            let last = &mut journaled_through[envelope.header.stream.index()];
            *last = (*last).max(envelope.header.seq);
        }
    }
    pipeline = pipeline
        .stage(Box::new(JournalStage::new(
            writer,
            journaled_through.clone(),
        )))
        .stage(Box::new(CountingSink::new("counter")));

    // Pass 2: source records back through the stages, in journal order.
    let sources = loaded.config.sources.len();
    let mut replayed = 0_u64;
    let progress = progress_bar(reader.len());
    for frame in reader.iter() {
        progress.inc(1);
        let Some(Ok(mut envelope)) = frame.envelope() else {
            continue;
        };
        let stream = envelope.header.stream.index();
        if stream == 0 || stream > sources {
            continue; // derived by the stages: they derive it again
        }
        envelope.header.flags |= RecordHeader::FLAG_REPLAY;
        pipeline.recover_event(&envelope);
        replayed += 1;
    }
    progress.finish_and_clear();
    let mut resumed = Vec::with_capacity(sources);
    for (index, source) in loaded.config.sources.iter().enumerate() {
        let last = journaled_through[index + 1];
        pipeline.resume_source(index, last);
        resumed.push((source.name().to_owned(), last));
    }
    let recovery = Recovery {
        journal_dir: journal_dir.display().to_string(),
        journal_records: reader.len(),
        replayed,
        torn_tail,
        resumed,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    if recovery.journal_records > 0 {
        tracing::info!(
            records = recovery.journal_records,
            replayed = recovery.replayed,
            elapsed_s = recovery.elapsed_s,
            "resumed from the journal"
        );
    }
    Ok((pipeline, Some(recovery)))
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || len < 100_000 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "recovering {bar:40} {pos}/{len} records ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Plans the pipeline's threads for this machine (or `options.cores`).
pub fn plan_for(
    loaded: &LoadedConfig,
    pipeline: &Pipeline,
    options: &RunOptions,
) -> Result<Plan, ConfigError> {
    let cores = options
        .cores
        .clone()
        .unwrap_or_else(crate::sys::available_cores);
    plan(&pipeline.shape(), &loaded.config.placement, &cores)
        .map_err(|error| loaded.placement_error(error))
}

/// The plan `aaiti run` would use, without opening the journal (for `aaiti placement` and
/// `aaiti config check`).
pub fn preview_plan(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<Plan> {
    let mut shape = build_pipeline(loaded, options)?.shape();
    if loaded.config.journal.enabled {
        shape.stages.push("journal".to_owned());
    }
    shape.stages.push("counter".to_owned());
    let cores = options
        .cores
        .clone()
        .unwrap_or_else(crate::sys::available_cores);
    Ok(plan(&shape, &loaded.config.placement, &cores)
        .map_err(|error| loaded.placement_error(error))?)
}

/// A started run.
pub struct Started {
    /// The thread placement.
    pub plan: Plan,
    /// The running pipeline.
    pub running: Running,
    /// What recovery did (with a journal).
    pub recovery: Option<Recovery>,
}

/// Builds the pipeline, recovers from the journal, starts the threads and arranges the
/// optional time limit.
pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<Started> {
    let pipeline = build_pipeline(loaded, options)?;
    let (pipeline, recovery) = attach_journal_and_recover(loaded, options, pipeline)?;
    let plan = plan_for(loaded, &pipeline, options)?;
    let running = pipeline.start(&plan)?;
    if let Some(duration) = options.duration {
        let stop = running.stop_handle();
        std::thread::Builder::new()
            .name("run-timer".into())
            .spawn(move || stop_after(&stop, duration))?;
    }
    Ok(Started {
        plan,
        running,
        recovery,
    })
}

fn stop_after(stop: &StopHandle, duration: Duration) {
    let deadline = std::time::Instant::now() + duration;
    while !stop.stop_requested() {
        let now = std::time::Instant::now();
        if now >= deadline {
            stop.request_stop();
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// Runs to completion (sources finished, time limit, or a stop requested elsewhere).
pub fn run(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<(Plan, RunReport)> {
    let started = start(loaded, options)?;
    Ok((started.plan, started.running.wait()))
}
