//! Builds the configured pipeline, places it, runs it until its sources finish or a stop is
//! requested, and summarises the run.

use std::time::Duration;

use crate::config::{ConfigError, LoadedConfig};
use crate::runtime::{Pipeline, Plan, RunReport, Running, StopHandle, plan};
use crate::synthetic::{CountingSink, PassThrough, SyntheticSource};

/// Run-time overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Events per generator instead of the configured number.
    pub events: Option<u64>,
    /// Events per second per generator instead of the configured rate (0: max).
    pub rate_per_s: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Plan for these cores instead of the process's affinity mask.
    pub cores: Option<Vec<usize>>,
}

/// The pipeline the configuration describes (today: synthetic generators -> passthrough ->
/// counter; later issues add the feed, book, strategy, risk and journal stages).
pub fn build_pipeline(loaded: &LoadedConfig, options: &RunOptions) -> Pipeline {
    let config = &loaded.config;
    let events = options.events.unwrap_or(config.synthetic.events);
    let rate = options.rate_per_s.unwrap_or(config.synthetic.rate_per_s);
    let mut pipeline = Pipeline::new(config.pipeline.ring_settings());
    for index in 1..=config.synthetic.sources {
        let name = format!("synthetic-{index}");
        pipeline = pipeline.source(Box::new(SyntheticSource::new(&name, index, events, rate)));
    }
    pipeline
        .stage(Box::new(PassThrough::new("passthrough")))
        .stage(Box::new(CountingSink::new("counter")))
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
    let pipeline = build_pipeline(loaded, options);
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

/// Runs to completion (sources finished, time limit, or `stop` requested elsewhere).
pub fn run(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<(Plan, RunReport)> {
    let (plan, running) = start(loaded, options)?;
    Ok((plan, running.wait()))
}
