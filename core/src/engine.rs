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

use crate::admin::ModelPreparer;
use crate::admin::socket::AdminServer;
use crate::admin::{ADMIN_STREAM, AdminHandle, AdminReplies};
use crate::config::MissingRuntime;
use crate::config::{ConfigError, LoadedConfig, Retention, SourceConfig, StrategyConfig};
use crate::desk::gateway::{GatewaySetup, GatewaySource};
use crate::desk::{DESK_STREAM, DeskFeed, DeskStage};
use crate::live::{LiveSettings, live_source};
use crate::replay::{ReplaySource, parse_speed};
use crate::runtime::{
    Pipeline, Plan, RunReport, Running, SnapshotTrigger, Stage, StopHandle, plan,
};
use crate::signals::model::{ModelRegistry, OnnxModel};
use crate::signals::stage::{EnsembleSetup, SignalSetup, SignalStage, SlotSetup, SwapHandoff};
use crate::snapshots::{self, SnapshotLog, SnapshotWriter};
use crate::stages::book::BookStage;
use crate::stages::journal::{JournalStage, PruneRequest};
use crate::stages::trading::{SummarySlot, TradingSetup, TradingStage};
use crate::strategy::Strategy;
use crate::strategy::flow::{FlowParams, FlowStrategy};
use crate::strategy::ml::{MlParams, MlStrategy};
use crate::strategy::rule::{RuleParams, RuleStrategy};
use crate::synthetic::{CountingSink, SyntheticSource};
use crate::venues::{LiveRouterStage, Reconciler, VENUE_STREAM, VenueReportSource};
use aaiti_gateway::binance::BinanceAdapter;
use aaiti_gateway::secrets::SecretsKey;

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
/// stages that must come after it, and the counter are added by [`start`]).
pub struct Built {
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Submits admin commands.
    pub admin: AdminHandle,
    /// Stages that act only on journaled records, in order: the live venue router (it sends
    /// an order to an exchange once its request is written) and the desk stage (it
    /// acknowledges an order once written).
    pub after_journal: Vec<Box<dyn Stage>>,
    /// Sources after the configured ones and the admin source, in order, with the stream
    /// their records are journaled on (recovery replays them and resumes each after its
    /// last journaled record).
    pub serving_sources: Vec<(String, StreamId)>,
    /// The address the FIX gateway listens on, when it runs.
    pub fix_address: Option<std::net::SocketAddr>,
    /// The live venue's restart reconciliation, to start once recovery is done.
    pub reconciler: Option<Reconciler>,
    /// Where the trading stage leaves its end-of-run summary.
    pub summary: SummarySlot,
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
    let (admin, mut admin_source, admin_replies) = crate::admin::channel(
        config.accounts.iter().map(|a| a.name.clone()).collect(),
        trading,
    );
    // A plan or check only needs the stage's place: no model is loaded then.
    let signals = if bind {
        signal_stage(loaded, options, Some(admin_replies.clone()))?
    } else {
        None
    };
    if let Some((_, preparer)) = &signals {
        admin_source = admin_source.with_model_preparer(preparer.clone());
    }
    pipeline = pipeline.source(Box::new(admin_source));
    let check = options.check || config.book.check;
    pipeline = pipeline.stage(Box::new(BookStage::new(
        &loaded.registry,
        check,
        BOOK_STREAM,
    )?));
    if let Some((stage, _)) = signals {
        pipeline = pipeline.stage(Box::new(stage));
    } else if !bind && config.signals.enabled && !config.signals.models.is_empty() {
        pipeline = pipeline.stage(Box::new(Placeholder("signals")));
    }
    let summary = SummarySlot::default();
    if trading {
        pipeline = pipeline.stage(Box::new(trading_stage(
            loaded,
            Some(admin_replies),
            Some(summary.clone()),
        )?));
    }
    let mut after_journal: Vec<Box<dyn Stage>> = Vec::new();
    let mut serving_sources = Vec::new();
    let mut fix_address = None;
    let mut reconciler = None;
    if bind && gateway_runs(loaded) {
        let (source, stage) = desk_gateway(loaded, options, admin.clone())?;
        fix_address = Some(source.local_addr());
        pipeline = pipeline.source(Box::new(source));
        serving_sources.push(("fix".to_owned(), DESK_STREAM));
        after_journal.push(Box::new(stage));
    }
    if trading && let Some((source, router)) = live_venue(loaded, bind)? {
        if let Some(source) = source {
            pipeline = pipeline.source(Box::new(source));
            serving_sources.push(("binance-orders".to_owned(), VENUE_STREAM));
        }
        // Before the desk: an order reaches the exchange as soon as it is written.
        reconciler = Some(router.reconciler());
        after_journal.insert(0, Box::new(router));
    }
    Ok(Built {
        pipeline,
        admin,
        after_journal,
        serving_sources,
        fix_address,
        reconciler,
        summary,
    })
}

/// Holds a stage's place in a pipeline that is only planned, never run.
struct Placeholder(&'static str);

impl Stage for Placeholder {
    fn name(&self) -> &str {
        self.0
    }

    fn on_event(&mut self, event: &aaiti_model::Envelope, out: &mut crate::runtime::Emitter<'_>) {
        out.emit(event);
    }
}

/// Where `./x setup` puts the ONNX Runtime library, relative to the checkout.
const BUNDLED_ORT: &str = ".deps/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";

/// Loads ONNX Runtime from `ORT_DYLIB_PATH`; when it is unset, from where `./x setup` puts
/// it: `.deps/` of the working directory, or of the checkout the executable was built in
/// (so tests and `target/release/aaiti` find it without the variable).
fn init_onnx_runtime() -> Result<(), crate::signals::model::ModelError> {
    use crate::signals::model::{ORT_DYLIB_PATH, init_runtime, init_runtime_from};
    if std::env::var_os(ORT_DYLIB_PATH).is_some_and(|value| !value.is_empty()) {
        return init_runtime();
    }
    let mut candidates = vec![PathBuf::from(BUNDLED_ORT)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(
            exe.ancestors()
                .skip(1)
                .take(5)
                .map(|dir| dir.join(BUNDLED_ORT)),
        );
    }
    match candidates.iter().find(|path| path.is_file()) {
        Some(path) => init_runtime_from(path),
        None => init_runtime(),
    }
}

/// The signal stage the configuration describes, and what prepares its model swaps; `None`
/// when `[signals]` is off (or ONNX Runtime is missing and the configuration allows running
/// without it).
///
/// # Errors
///
/// ONNX Runtime missing (with how to fix it), a model that does not load, a model or
/// ensemble that names an unknown instrument or model.
pub fn signal_stage(
    loaded: &LoadedConfig,
    options: &RunOptions,
    admin: Option<AdminReplies>,
) -> anyhow::Result<Option<(SignalStage, ModelPreparer)>> {
    let config = &loaded.config;
    let section = &config.signals;
    if !section.enabled || section.models.is_empty() {
        return Ok(None);
    }
    if let Err(error) = init_onnx_runtime() {
        if section.on_missing_runtime == MissingRuntime::Disable {
            tracing::warn!(%error, "the signal stage is disabled: ONNX Runtime is not available");
            return Ok(None);
        }
        anyhow::bail!(
            "{error}\n(or set [signals] on_missing_runtime = \"disable\" to run without the \
             signal stage)"
        );
    }
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| config.engine.data_dir.clone());
    let models_dir = if section.models_dir.is_absolute() {
        section.models_dir.clone()
    } else {
        data_dir.join(&section.models_dir)
    };
    crate::signals::bundled::install(&models_dir)?;
    let registry = Arc::new(ModelRegistry::open(&models_dir).map_err(|error| {
        anyhow::anyhow!("[signals] models_dir {}: {error}", models_dir.display())
    })?);
    let mut slots = Vec::with_capacity(section.models.len());
    for (index, slot) in section.models.iter().enumerate() {
        let key = format!("signals.models[{index}]");
        let instrument = loaded
            .registry
            .venue_id(&slot.venue)
            .and_then(|v| loaded.registry.find(v, &slot.symbol))
            .ok_or_else(|| {
                anyhow::anyhow!("{key}: no instrument {}:{}", slot.venue, slot.symbol)
            })?;
        let entry = registry
            .get(&slot.name, slot.version)
            .map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
        let model = OnnxModel::load(entry).map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
        tracing::info!(
            model = slot.name,
            version = model.version(),
            instrument = slot.symbol,
            shadow = slot.shadow,
            "model loaded and warmed up"
        );
        slots.push(SlotSetup {
            name: slot.name.clone(),
            instrument,
            shadow: slot.shadow,
            model,
        });
    }
    let ensemble = match &section.ensemble {
        None => None,
        Some(ensemble) => {
            let mut members = Vec::with_capacity(ensemble.members.len());
            for name in &ensemble.members {
                let index = section
                    .models
                    .iter()
                    .position(|m| &m.name == name)
                    .ok_or_else(|| anyhow::anyhow!("[signals.ensemble]: no model {name:?}"))?;
                members.push(index);
            }
            let weights = if ensemble.weights.is_empty() {
                vec![1.0; members.len()]
            } else {
                ensemble.weights.clone()
            };
            Some(EnsembleSetup {
                members,
                weights,
                method: ensemble.method,
            })
        }
    };
    let handoff = SwapHandoff::default();
    let stage = SignalStage::new(SignalSetup {
        registry: loaded.registry.clone(),
        slots,
        ensemble,
        drift: section.drift,
        accuracy_capacity: section.accuracy_capacity,
        handoff: handoff.clone(),
        models: Some(Arc::clone(&registry)),
        admin,
    })
    .map_err(|error| anyhow::anyhow!("{}: {error}", loaded.origin))?;
    let serving: Vec<String> = section.models.iter().map(|m| m.name.clone()).collect();
    let preparer: ModelPreparer = Arc::new(move |name: &str, version: Option<u32>| {
        if !serving.iter().any(|s| s == name) {
            return Err(format!(
                "no model named {name:?} serves (models: {})",
                serving.join(", ")
            ));
        }
        // Read the directory again: the new version was copied there after the start.
        let registry = ModelRegistry::open(&models_dir).map_err(|error| error.to_string())?;
        let entry = registry
            .get(name, version)
            .map_err(|error| error.to_string())?;
        let model = OnnxModel::load(entry).map_err(|error| error.to_string())?;
        let version = model.version();
        handoff.put(model);
        Ok(version)
    });
    Ok(Some((stage, preparer)))
}

/// The Binance adapter, its report source and the router, when some account is live. With
/// `connect` false (plans, checks) nothing is started and no request is ever sent.
fn live_venue(
    loaded: &LoadedConfig,
    connect: bool,
) -> anyhow::Result<Option<(Option<VenueReportSource>, LiveRouterStage)>> {
    let config = &loaded.config;
    let Some(live) = config
        .accounts
        .iter()
        .find(|a| a.account_type == aaiti_risk::AccountType::Live)
    else {
        return Ok(None);
    };
    let Some(section) = &config.venues.binance else {
        anyhow::bail!(
            "{}: account {:?} is live but [venues.binance] is not configured (secrets_file, \
             adapter); see `aaiti secrets set --help`",
            loaded.origin,
            live.name
        );
    };
    let venue = loaded.registry.venue_id("binance").ok_or_else(|| {
        anyhow::anyhow!(
            "{}: live accounts trade on binance, which has no instrument",
            loaded.origin
        )
    })?;
    if !connect {
        return Ok(Some((None, LiveRouterStage::new(venue, None))));
    }
    let key = match &section.key_file {
        Some(path) => SecretsKey::from_file(path),
        None => SecretsKey::from_env(aaiti_gateway::secrets::KEY_ENV_VAR),
    }
    .map_err(|error| anyhow::anyhow!("[venues.binance]: the secrets key: {error}"))?;
    let credentials =
        aaiti_gateway::secrets::load(&section.secrets_file, &key).map_err(|error| {
            anyhow::anyhow!(
                "[venues.binance]: {}: {error}",
                section.secrets_file.display()
            )
        })?;
    let instruments: Vec<aaiti_model::Instrument> = loaded
        .registry
        .instruments()
        .iter()
        .filter(|i| i.venue == venue)
        .cloned()
        .collect();
    let (handle, events) =
        BinanceAdapter::spawn(section.adapter.clone(), credentials, &instruments)
            .map_err(|error| anyhow::anyhow!("[venues.binance]: {error}"))?;
    tracing::info!(url = section.adapter.rest_url, "Binance adapter started");
    Ok(Some((
        Some(VenueReportSource::new("binance-orders", venue, events)),
        LiveRouterStage::new(venue, Some(handle)),
    )))
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
    summary: Option<SummarySlot>,
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
                let (account_id, instrument) =
                    strategy_target(loaded, &key, account, venue, symbol)?;
                if !(1..=MAX_FLOW_OPEN).contains(max_open) {
                    anyhow::bail!("{key}.max_open is {max_open}; use 1 to {MAX_FLOW_OPEN}");
                }
                let qty = aaiti_model::Qty::parse_str(qty, instrument.qty_scale)
                    .map_err(|error| anyhow::anyhow!("{key}.qty {qty:?}: {error}"))?;
                strategies.push(Box::new(FlowStrategy::new(FlowParams {
                    name: name.clone(),
                    account: account_id,
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
            StrategyConfig::Ml {
                name,
                account,
                venue,
                symbol,
                max_position,
                model,
                min_confidence,
                full_signal,
                max_inventory,
                min_trade,
                target_vol_1m_bps,
                improve_ticks,
                order_ttl_ms,
                min_interval_ms,
                max_loss,
                flatten_on_loss,
                post_only,
            } => {
                let (account_id, instrument) =
                    strategy_target(loaded, &key, account, venue, symbol)?;
                let qty = |text: &str, what: &str| {
                    aaiti_model::Qty::parse_str(text, instrument.qty_scale)
                        .map_err(|error| anyhow::anyhow!("{key}.{what} {text:?}: {error}"))
                };
                let mut params = MlParams::new(
                    name.clone(),
                    account_id,
                    instrument,
                    qty(max_position, "max_position")?,
                );
                if let Some(model) = model {
                    let models = &config.signals.models;
                    let index = if model == "ensemble" && config.signals.ensemble.is_some() {
                        models.len()
                    } else {
                        models
                            .iter()
                            .position(|m| &m.name == model)
                            .ok_or_else(|| {
                                anyhow::anyhow!(
                                    "{key}.model: no [[signals.models]] named {model:?}"
                                )
                            })?
                    };
                    params.model = Some(u32::try_from(index)?);
                }
                if let Some(value) = min_confidence {
                    params.min_confidence = *value;
                }
                if let Some(value) = full_signal {
                    params.full_signal = *value;
                }
                if let Some(text) = max_inventory {
                    params.max_inventory = qty(text, "max_inventory")?;
                }
                if let Some(text) = min_trade {
                    params.min_trade = qty(text, "min_trade")?;
                }
                if let Some(value) = target_vol_1m_bps {
                    params.target_vol_1m_bps = *value;
                }
                if let Some(value) = improve_ticks {
                    params.improve_ticks = *value;
                }
                if let Some(value) = order_ttl_ms {
                    params.order_ttl_ms = *value;
                }
                if let Some(value) = min_interval_ms {
                    params.min_interval_ms = *value;
                }
                if let Some(text) = max_loss {
                    let loss = aaiti_model::Price::parse_str(text, instrument.price_scale)
                        .map_err(|error| anyhow::anyhow!("{key}.max_loss {text:?}: {error}"))?;
                    params.max_loss = Some(loss);
                }
                if let Some(value) = flatten_on_loss {
                    params.flatten_on_loss = *value;
                }
                if let Some(value) = post_only {
                    params.post_only = *value;
                }
                let strategy =
                    MlStrategy::new(params).map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
                strategies.push(Box::new(strategy));
            }
            StrategyConfig::Rule {
                name,
                account,
                venue,
                symbol,
                qty,
                max_position,
                fast_updates,
                slow_updates,
                threshold_bps,
            } => {
                let (account_id, instrument) =
                    strategy_target(loaded, &key, account, venue, symbol)?;
                let parse = |text: &str, what: &str| {
                    aaiti_model::Qty::parse_str(text, instrument.qty_scale)
                        .map_err(|error| anyhow::anyhow!("{key}.{what} {text:?}: {error}"))
                };
                let strategy = RuleStrategy::new(RuleParams {
                    name: name.clone(),
                    account: account_id,
                    instrument: instrument.id,
                    fast_updates: *fast_updates,
                    slow_updates: *slow_updates,
                    threshold_bps: *threshold_bps,
                    order_qty: parse(qty, "qty")?,
                    max_position: parse(max_position, "max_position")?,
                })
                .map_err(|error| anyhow::anyhow!("{key}: {error}"))?;
                strategies.push(Box::new(strategy));
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
        live_accounts: config
            .accounts
            .iter()
            .map(|a| a.account_type == aaiti_risk::AccountType::Live)
            .collect(),
        summary,
    };
    TradingStage::new(setup).map_err(|error| anyhow::anyhow!("{}: {error}", loaded.origin))
}

/// The account and instrument a `[[strategies]]` entry names.
fn strategy_target<'a>(
    loaded: &'a LoadedConfig,
    key: &str,
    account: &str,
    venue: &str,
    symbol: &str,
) -> anyhow::Result<(aaiti_model::AccountId, &'a aaiti_model::Instrument)> {
    let registry = &loaded.registry;
    let account_id = loaded
        .config
        .accounts
        .iter()
        .position(|a| a.name == account)
        .ok_or_else(|| anyhow::anyhow!("{key}.account: no account named {account:?}"))?;
    let instrument = registry
        .venue_id(venue)
        .and_then(|v| registry.find(v, symbol))
        .and_then(|id| registry.get(id))
        .ok_or_else(|| {
            anyhow::anyhow!("{key}: no instrument {venue}:{symbol} in [[instruments]]")
        })?;
    Ok((
        aaiti_model::AccountId(u32::try_from(account_id)?),
        instrument,
    ))
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
    after_journal: Vec<Box<dyn Stage>>,
    serving_sources: &[(String, StreamId)],
) -> anyhow::Result<(Pipeline, Option<JournalSetup>)> {
    let section = &loaded.config.journal;
    let Some(data_dir) = options.data_dir.as_ref().filter(|_| section.enabled) else {
        for stage in after_journal {
            pipeline = pipeline.stage(stage);
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
    // After the journal: an exchange gets an order, and the desk hears of one, only once
    // its record is written.
    for stage in after_journal {
        pipeline = pipeline.stage(stage);
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
                && stream != VENUE_STREAM
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
    // Then the serving sources (FIX gateway, venue reports): their sequence numbers continue.
    for (offset, (name, stream)) in serving_sources.iter().enumerate() {
        let last = journaled_through[stream.index()];
        pipeline.resume_source(sources + 1 + offset, last);
        resumed.push((name.clone(), last));
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
    let built = build_pipeline(loaded, options, false)?;
    let mut shape = built.pipeline.shape();
    if loaded.config.journal.enabled {
        shape.stages.push("journal".to_owned());
    }
    for stage in &built.after_journal {
        shape.stages.push(stage.name().to_owned());
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
    summary: SummarySlot,
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
    /// The trading stage's end-of-run summary (orders, fills, signals, positions and P&L),
    /// when it ran.
    pub trading: Option<serde_json::Value>,
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
        let summary = self
            .summary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        Finished {
            report,
            snapshots,
            trading: summary,
        }
    }
}

/// Builds the pipeline, recovers from the journal, starts the threads and arranges the
/// optional time limit and the periodic snapshots.
pub fn start(loaded: &LoadedConfig, options: &RunOptions) -> anyhow::Result<Started> {
    let Built {
        pipeline,
        admin,
        after_journal,
        serving_sources,
        fix_address,
        reconciler,
        summary,
    } = build_pipeline(loaded, options, true)?;
    let (mut pipeline, journal) =
        attach_journal_and_recover(loaded, options, pipeline, after_journal, &serving_sources)?;
    if let Some(reconciler) = reconciler {
        // The journal is replayed: the router knows which orders the venue may hold.
        reconciler.start();
    }
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
        summary,
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
