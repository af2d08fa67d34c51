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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use aaiti_journal::{JournalReader, JournalWriter, PruneMode, SnapshotStore};
use aaiti_model::{RecordHeader, StreamId};
use serde::Serialize;

use crate::admin::socket::AdminServer;
use crate::admin::{ADMIN_STREAM, AdminHandle, AdminReplies};
use crate::config::{ConfigError, LoadedConfig, Retention, SourceConfig, StrategyConfig};
use crate::desk::gateway::{GatewaySetup, GatewaySource};
use crate::desk::{DESK_STREAM, DeskFeed, DeskStage};
use crate::live::{LiveSettings, live_source};
use crate::replay::{ReplaySource, parse_speed};
use crate::runtime::{Pipeline, Plan, RunReport, Running, SnapshotTrigger, StopHandle, plan};
use crate::snapshots::{self, SnapshotLog, SnapshotWriter};
use crate::stages::book::BookStage;
use crate::stages::journal::{JournalStage, PruneRequest};
use crate::stages::trading::{TradingSetup, TradingStage};
use crate::strategy::Strategy;
use crate::strategy::flow::{FlowParams, FlowStrategy};
use crate::synthetic::{CountingSink, SyntheticSource};

/// Stream id of the book stage's own records. Sources number from 1 in configuration order.
pub const BOOK_STREAM: StreamId = StreamId(1000);
/// Stream id of the trading stage's own records (strategy orders, order and risk events).
pub const TRADING_STREAM: StreamId = StreamId(1001);

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
    /// The snapshot the stages were restored from, if any.
    pub snapshot: Option<SnapshotUse>,
    /// Source records passed back through the stages.
    pub replayed: u64,
    /// A torn tail recovery cut, if any (segment, offset, sequence, bytes).
    pub torn_tail: Option<String>,
    /// Each source's last journaled sequence (it resumes after it).
    pub resumed: Vec<(String, u64)>,
    /// Time recovery took.
    pub elapsed_s: f64,
}

/// The snapshot a recovery started from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SnapshotUse {
    /// Its file.
    pub path: String,
    /// The journal sequence it covers; replay started after it.
    pub covered_seq: u64,
}

/// The pipeline the configuration describes, up to the trading stage (the journal stage, the
/// desk stage and the counter are added by [`start`]).
pub struct Built {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Submits admin commands.
    pub admin: AdminHandle,
    /// The desk stage, when the FIX gateway runs (it goes after the journal stage).
    pub desk: Option<DeskStage>,
    /// The address the FIX gateway listens on, when it runs.
    pub fix_address: Option<std::net::SocketAddr>,
}

/// Builds the pipeline the configuration describes (see [`Built`]). With `bind` false the
/// FIX gateway is left out (for plans and checks: nothing listens).
pub fn build_pipeline(
    loaded: &LoadedConfig,
    options: &RunOptions,
    bind: bool,
) -> anyhow::Result<Built> {
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
    let trading = config.trading.enabled && !config.accounts.is_empty();
    let (admin, admin_source, admin_replies) = crate::admin::channel(
        config.accounts.iter().map(|a| a.name.clone()).collect(),
        trading,
    );
    pipeline = pipeline.source(Box::new(admin_source));
    let check = options.check || config.book.check;
    pipeline = pipeline.stage(Box::new(BookStage::new(
        &loaded.registry,
        check,
        BOOK_STREAM,
    )?));
    if trading {
        pipeline = pipeline.stage(Box::new(trading_stage(loaded, Some(admin_replies))?));
    }
    let mut desk = None;
    let mut fix_address = None;
    if bind && gateway_runs(loaded) {
        let (source, stage) = desk_gateway(loaded, options, admin.clone())?;
        fix_address = Some(source.local_addr());
        pipeline = pipeline.source(Box::new(source));
        desk = Some(stage);
    }
    Ok(Built {
        pipeline,
        admin,
        desk,
        fix_address,
    })
}

/// Whether the FIX gateway runs: `[gateway] enabled`, sessions configured, and a trading
/// stage to take the orders.
fn gateway_runs(loaded: &LoadedConfig) -> bool {
    let config = &loaded.config;
    config.gateway.enabled
        && !config.gateway.sessions.is_empty()
        && config.trading.enabled
        && !config.accounts.is_empty()
}

/// The FIX gateway source and its desk stage.
fn desk_gateway(
    loaded: &LoadedConfig,
    options: &RunOptions,
    admin: AdminHandle,
) -> anyhow::Result<(GatewaySource, DeskStage)> {
    let config = &loaded.config;
    let feed = DeskFeed::new(loaded.registry.len());
    let (stage, outbound) = DeskStage::new(&loaded.registry, std::sync::Arc::clone(&feed))
        .map_err(anyhow::Error::msg)?;
    let durability = config
        .journal
        .writer_config()
        .map_err(anyhow::Error::msg)?
        .durability;
    let source = GatewaySource::new(GatewaySetup {
        acceptor: config.gateway.acceptor.clone(),
        sessions: config.gateway.sessions.clone(),
        registry: loaded.registry.clone(),
        accounts: config.accounts.iter().map(|a| a.name.clone()).collect(),
        store_dir: options
            .data_dir
            .as_ref()
            .filter(|_| config.journal.enabled)
            .map(|dir| dir.join("fix")),
        durability,
        resend_capacity: config.gateway.resend_capacity,
        admin,
        outbound,
        feed,
    })
    .map_err(|error| anyhow::anyhow!("{}: [gateway]: {error:#}", loaded.origin))?;
    tracing::info!(address = %source.local_addr(), "FIX gateway listening");
    Ok((source, stage))
}

/// Most working orders a `flow` strategy may keep (its order list is pre-sized).
const MAX_FLOW_OPEN: usize = 1024;

/// The trading stage the configuration describes.
///
/// # Errors
///
/// Risk limits, order manager, monitor, paper venue or strategy settings that do not fit the
/// instruments and accounts (the message names the key).
pub fn trading_stage(
    loaded: &LoadedConfig,
    admin: Option<AdminReplies>,
) -> anyhow::Result<TradingStage> {
    let config = &loaded.config;
    let registry = &loaded.registry;
    let risk = aaiti_risk::compile(&config.risk, &config.accounts, registry)
        .map_err(|error| anyhow::anyhow!("{}: {error}", loaded.origin))?;
    let mut strategies: Vec<Box<dyn Strategy>> = Vec::new();
    for (index, strategy) in config.strategies.iter().enumerate() {
        let key = format!("strategies[{index}]");
        match strategy {
            StrategyConfig::Flow {
                name,
                account,
                venue,
                symbol,
                qty,
                every_updates,
                cross_every,
                replace_every,
                offset_ticks,
                max_open,
                max_position,
            } => {
                let account_id = config
                    .accounts
                    .iter()
                    .position(|a| &a.name == account)
                    .ok_or_else(|| {
                        anyhow::anyhow!("{key}.account: no account named {account:?}")
                    })?;
                let instrument = registry
                    .venue_id(venue)
                    .and_then(|v| registry.find(v, symbol))
                    .and_then(|id| registry.get(id))
                    .ok_or_else(|| {
                        anyhow::anyhow!("{key}: no instrument {venue}:{symbol} in [[instruments]]")
                    })?;
                if !(1..=MAX_FLOW_OPEN).contains(max_open) {
                    anyhow::bail!("{key}.max_open is {max_open}; use 1 to {MAX_FLOW_OPEN}");
                }
                let qty = aaiti_model::Qty::parse_str(qty, instrument.qty_scale)
                    .map_err(|error| anyhow::anyhow!("{key}.qty {qty:?}: {error}"))?;
                strategies.push(Box::new(FlowStrategy::new(FlowParams {
                    name: name.clone(),
                    account: aaiti_model::AccountId(u32::try_from(account_id)?),
                    instrument: instrument.id,
                    tick: instrument.tick_size,
                    qty,
                    every_updates: *every_updates,
                    cross_every: *cross_every,
                    replace_every: *replace_every,
                    offset_ticks: *offset_ticks,
                    max_open: *max_open,
                    max_position: *max_position,
                })));
            }
        }
    }
    let setup = TradingSetup {
        registry: registry.clone(),
        accounts: u32::try_from(config.accounts.len())?,
        oms: config.oms.clone(),
        risk,
        monitor: config.monitor.clone(),
        paper: config.paper.clone(),
        mark: config.trading.mark,
        strategies,
        stream: TRADING_STREAM,
        risk_file: aaiti_risk::config::RiskConfigFile {
            risk: config.risk.clone(),
            accounts: config.accounts.clone(),
        },
        admin,
    };
    TradingStage::new(setup).map_err(|error| anyhow::anyhow!("{}: {error}", loaded.origin))
}

/// The journal side of a run: recovery's findings and the snapshot machinery to start.
struct JournalSetup {
    recovery: Recovery,
    snapshots: Option<SnapshotSetup>,
}

struct SnapshotSetup {
    writer: SnapshotWriter,
    interval: Option<Duration>,
    on_stop: bool,
}

/// Adds the journal stage and the counter, and rebuilds state from an existing journal: the
/// newest usable snapshot restores every stage, then the source records journaled after it
/// go back through the stages (flagged replay, so nothing is journaled or sent twice) and
/// each source resumes after its last journaled record. Without a snapshot the whole journal
/// is replayed.
fn attach_journal_and_recover(
    loaded: &LoadedConfig,
    options: &RunOptions,
    mut pipeline: Pipeline,
    desk: Option<DeskStage>,
) -> anyhow::Result<(Pipeline, Option<JournalSetup>)> {
    let section = &loaded.config.journal;
    let gateway = desk.is_some();
    let Some(data_dir) = options.data_dir.as_ref().filter(|_| section.enabled) else {
        if let Some(desk) = desk {
            pipeline = pipeline.stage(Box::new(desk));
        }
        return Ok((pipeline.stage(Box::new(CountingSink::new("counter"))), None));
    };
    let started = Instant::now();
    let journal_dir = data_dir.join("journal");
    let writer_config = section.writer_config().map_err(anyhow::Error::msg)?;
    let retention = section.retention(data_dir).map_err(anyhow::Error::msg)?;
    let writer = JournalWriter::open(&journal_dir, writer_config)?;
    let report = writer.recovery_report().clone();
    let torn_tail = report.torn_tail.as_ref().map(|tail| format!("{tail:?}"));
    if let Some(tail) = &torn_tail {
        tracing::warn!(tail, "recovery cut a torn tail from the journal");
    }
    let reader = JournalReader::open(&journal_dir)?;
    let store = SnapshotStore::open(&journal_dir)?;
    let chosen = snapshots::load_for_recovery(&store, &reader)?;

    // Where each stream's journaled records end: from the snapshot, then the tail after it.
    let mut journaled_through = vec![0_u64; usize::from(u16::MAX) + 1];
    let mut replay_from = reader.first_seq();
    let mut from_snapshot = None;
    if let Some(chosen) = &chosen {
        for &(stream, seq) in &chosen.snapshot.streams {
            journaled_through[usize::from(stream)] = seq;
        }
        replay_from = chosen.snapshot.covered_seq + 1;
        from_snapshot = Some(SnapshotUse {
            path: chosen.path.display().to_string(),
            covered_seq: chosen.snapshot.covered_seq,
        });
    }
    if let Some(frames) = tail(&reader, replay_from)? {
        for frame in frames {
            if let Some(Ok(envelope)) = frame.envelope() {
                let last = &mut journaled_through[envelope.header.stream.index()];
                *last = (*last).max(envelope.header.seq);
            }
        }
    }
    let prune = (retention != Retention::Keep).then(|| {
        PruneRequest::new(match &retention {
            Retention::Archive(dir) => PruneMode::ArchiveTo(dir.clone()),
            _ => PruneMode::Delete,
        })
    });
    let mut journal_stage = JournalStage::new(writer, journaled_through.clone());
    if let Some(prune) = &prune {
        journal_stage = journal_stage.with_retention(prune.clone());
    }
    pipeline = pipeline.stage(Box::new(journal_stage));
    if let Some(desk) = desk {
        // After the journal: the desk hears of an order only once its record is written.
        pipeline = pipeline.stage(Box::new(desk));
    }
    pipeline = pipeline.stage(Box::new(CountingSink::new("counter")));

    if let Some(chosen) = &chosen {
        for (stage, state) in &chosen.snapshot.sections {
            pipeline.restore_stage(stage, state).map_err(|error| {
                anyhow::anyhow!(
                    "snapshot {} does not fit this configuration (stage {stage}: {error}); move \
                     it out of {} to rebuild from the journal alone",
                    chosen.path.display(),
                    store.dir().display()
                )
            })?;
        }
    }

    // Source records after the snapshot back through the stages, in journal order.
    let sources = loaded.config.sources.len();
    let mut replayed = 0_u64;
    let progress = progress_bar(reader.last_seq().saturating_sub(replay_from) + 1);
    if let Some(frames) = tail(&reader, replay_from)? {
        for frame in frames {
            progress.inc(1);
            let Some(Ok(mut envelope)) = frame.envelope() else {
                continue;
            };
            let stream = envelope.header.stream;
            if !(1..=sources).contains(&stream.index())
                && stream != ADMIN_STREAM
                && stream != DESK_STREAM
            {
                continue; // derived by the stages: they derive it again
            }
            envelope.header.flags |= RecordHeader::FLAG_REPLAY;
            pipeline.recover_event(&envelope);
            replayed += 1;
        }
    }
    progress.finish_and_clear();
    let mut resumed = Vec::with_capacity(sources);
    for (index, source) in loaded.config.sources.iter().enumerate() {
        let last = journaled_through[index + 1];
        pipeline.resume_source(index, last);
        resumed.push((source.name().to_owned(), last));
    }
    // The admin source follows the configured ones.
    let admin_last = journaled_through[ADMIN_STREAM.index()];
    pipeline.resume_source(sources, admin_last);
    resumed.push(("admin".to_owned(), admin_last));
    // Then the FIX gateway, when it runs (its requests' sequence numbers continue).
    let desk_last = journaled_through[DESK_STREAM.index()];
    if gateway {
        pipeline.resume_source(sources + 1, desk_last);
        resumed.push(("fix".to_owned(), desk_last));
    }
    let recovery = Recovery {
        journal_dir: journal_dir.display().to_string(),
        journal_records: reader.len(),
        snapshot: from_snapshot,
        replayed,
        torn_tail,
        resumed,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    if recovery.journal_records > 0 {
        tracing::info!(
            records = recovery.journal_records,
            snapshot = ?recovery.snapshot,
            replayed = recovery.replayed,
            elapsed_s = recovery.elapsed_s,
            "resumed from the journal"
        );
    }
    let interval = (section.snapshot_interval_s > 0.0)
        .then(|| Duration::from_secs_f64(section.snapshot_interval_s));
    let snapshots = (interval.is_some() || section.snapshot_on_stop).then(|| SnapshotSetup {
        writer: SnapshotWriter::new(store, section.snapshots_keep, retention, prune),
        interval,
        on_stop: section.snapshot_on_stop,
    });
    Ok((
        pipeline,
        Some(JournalSetup {
            recovery,
            snapshots,
        }),
    ))
}

/// The journal's frames from `from_seq` on, if there are any.
fn tail(
    reader: &JournalReader,
    from_seq: u64,
) -> anyhow::Result<Option<aaiti_journal::Frames<'_>>> {
    Ok(if reader.is_empty() || from_seq > reader.last_seq() {
        None
    } else {
        Some(reader.seek_seq(from_seq)?)
    })
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
    let mut shape = build_pipeline(loaded, options, false)?.pipeline.shape();
    if loaded.config.journal.enabled {
        shape.stages.push("journal".to_owned());
    }
    if gateway_runs(loaded) {
        shape.sources.push("fix".to_owned());
        shape.serving.push(true);
        shape.stages.push("desk".to_owned());
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
    /// Submits admin commands (risk state, limits, halt, resume, kill switch).
    pub admin: AdminHandle,
    /// The admin socket, when the run has a data directory and `[admin] socket` is on.
    pub admin_socket: Option<PathBuf>,
    /// The address the FIX gateway listens on, when it runs.
    pub fix_address: Option<std::net::SocketAddr>,
    snapshots: Option<SnapshotsRunning>,
    socket_server: Option<AdminServer>,
}

struct SnapshotsRunning {
    collector: JoinHandle<()>,
    timer_done: Arc<AtomicBool>,
    log: Arc<Mutex<SnapshotLog>>,
}

/// A finished run.
pub struct Finished {
    /// The runtime's report.
    pub report: RunReport,
    /// What the snapshot writer did (with a journal).
    pub snapshots: Option<SnapshotLog>,
}

impl Started {
    /// Waits for the pipeline to stop and for its last snapshot to be written.
    pub fn wait(self) -> Finished {
        let report = self.running.wait();
        drop(self.socket_server);
        let snapshots = self.snapshots.map(|snapshots| {
            snapshots.timer_done.store(true, Ordering::Release);
            // Every stage has stopped, so every port is gone and the collector ends.
            if snapshots.collector.join().is_err() {
                tracing::error!("the snapshot writer panicked");
            }
            snapshots
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        });
        Finished { report, snapshots }
    }
}

/// Builds the pipeline, recovers from the journal, starts the threads and arranges the
/// optional time limit and the periodic snapshots.
pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<Started> {
    let Built {
        pipeline,
        admin,
        desk,
        fix_address,
    } = build_pipeline(loaded, options, true)?;
    let (mut pipeline, journal) = attach_journal_and_recover(loaded, options, pipeline, desk)?;
    let mut recovery = None;
    let mut snapshot_setup = None;
    if let Some(journal) = journal {
        recovery = Some(journal.recovery);
        snapshot_setup = journal.snapshots;
    }
    let mut collector = None;
    if let Some(setup) = snapshot_setup {
        let log = setup.writer.log();
        let mut writer = setup.writer;
        let (port, handle) =
            crate::runtime::snapshot::collector(pipeline.stage_count(), move |id, sections| {
                writer.complete(id, sections);
            })?;
        pipeline = pipeline.snapshots(port, setup.on_stop);
        collector = Some((handle, log, setup.interval));
    }
    let plan = plan_for(loaded, &pipeline, options)?;
    let socket_server = match &options.data_dir {
        Some(dir) if loaded.config.admin.socket => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(crate::admin::socket::SOCKET_NAME);
            Some(AdminServer::start(&path, admin.clone()).map_err(|error| {
                anyhow::anyhow!(
                    "admin socket {}: {error} (or set [admin] socket = false)",
                    path.display()
                )
            })?)
        }
        _ => None,
    };
    let running = pipeline.start(&plan)?;
    if let Some(duration) = options.duration {
        let stop = running.stop_handle();
        std::thread::Builder::new()
            .name("run-timer".into())
            .spawn(move || stop_after(&stop, duration))?;
    }
    let snapshots = match collector {
        Some((handle, log, interval)) => {
            let timer_done = Arc::new(AtomicBool::new(false));
            if let Some(interval) = interval {
                let trigger = running.snapshot_trigger();
                let stop = running.stop_handle();
                let done = Arc::clone(&timer_done);
                std::thread::Builder::new()
                    .name("snapshot-timer".into())
                    .spawn(move || snapshot_every(&trigger, &stop, &done, interval))?;
            }
            Some(SnapshotsRunning {
                collector: handle,
                timer_done,
                log,
            })
        }
        None => None,
    };
    Ok(Started {
        plan,
        running,
        recovery,
        admin,
        admin_socket: socket_server
            .as_ref()
            .map(|server| server.path().to_owned()),
        fix_address,
        snapshots,
        socket_server,
    })
}

fn stop_after(stop: &StopHandle, duration: Duration) {
    let deadline = Instant::now() + duration;
    while !stop.stop_requested() {
        let now = Instant::now();
        if now >= deadline {
            stop.request_stop();
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

fn snapshot_every(
    trigger: &SnapshotTrigger,
    stop: &StopHandle,
    done: &AtomicBool,
    interval: Duration,
) {
    let mut next = Instant::now() + interval;
    loop {
        if stop.stop_requested() || done.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if now >= next {
            trigger.request();
            next = now + interval;
        }
        std::thread::sleep((next - now).min(Duration::from_millis(100)));
    }
}

/// Runs to completion (sources finished, time limit, or a stop requested elsewhere).
pub fn run(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<(Plan, RunReport)> {
    let started = start(loaded, options)?;
    let plan = started.plan.clone();
    Ok((plan, started.wait().report))
}
