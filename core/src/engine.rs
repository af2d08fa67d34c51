//! Builds the configured pipeline, places it, runs it until its sources finish or a stop is
//! requested, and summarises the run.
//!
//! The pipeline today: the configured sources (replays of venue recordings, synthetic
//! generators) -> `book` (an L2 book per instrument, validity, checksums, BBO checks) ->
//! `counter` (verifies every stream arrives complete and in order). Later issues insert the
//! feature, strategy, risk and journal stages.

use std::time::Duration;

use aaiti_feeds::replay::Pace;
use aaiti_model::StreamId;

use crate::config::{ConfigError, LoadedConfig, SourceConfig};
use crate::replay::{ReplaySource, parse_speed};
use crate::runtime::{Pipeline, Plan, RunReport, Running, StopHandle, plan};
use crate::stages::book::BookStage;
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
}

/// The pipeline the configuration describes.
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
        };
    }
    let check = options.check || config.book.check;
    Ok(pipeline
        .stage(Box::new(BookStage::new(
            &loaded.registry,
            check,
            BOOK_STREAM,
        )?))
        .stage(Box::new(CountingSink::new("counter"))))
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

/// Starts the pipeline and arranges the optional time limit.
pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<(Plan, Running)> {
    let pipeline = build_pipeline(loaded, options)?;
    let plan = plan_for(loaded, &pipeline, options)?;
    let running = pipeline.start(&plan)?;
    if let Some(duration) = options.duration {
        let stop = running.stop_handle();
        std::thread::Builder::new()
            .name("run-timer".into())
            .spawn(move || stop_after(&stop, duration))?;
    }
    Ok((plan, running))
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
    let (plan, running) = start(loaded, options)?;
    Ok((plan, running.wait()))
}
