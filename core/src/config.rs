//! Configuration: an embedded default, replaced by a TOML file with `--config`.
//!
//! Every error names the file, the key and the fix; the engine refuses to start on any of
//! them rather than run on a guess.

use std::path::{Path, PathBuf};

use aaiti_model::{InstrumentRegistry, InstrumentSpec};
use serde::{Deserialize, Serialize};

use crate::replay::ReplayVenue;
use crate::runtime::{PlacementConfig, PlacementError, RingSettings};

/// The configuration compiled into the binary.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Name shown for the embedded default in error messages.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[engine]`.
    pub engine: EngineConfig,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[[sources]]`: where events enter, in stream order (stream ids 1, 2, ...).
    pub sources: Vec<SourceConfig>,
    /// `[book]`.
    #[serde(default)]
    pub book: BookConfig,
    /// `[journal]`.
    #[serde(default)]
    pub journal: JournalSection,
    /// `[placement]`.
    #[serde(default)]
    pub placement: PlacementConfig,
    /// `[[instruments]]`.
    #[serde(default)]
    pub instruments: Vec<InstrumentSpec>,
    /// `[trading]`.
    #[serde(default)]
    pub trading: TradingSection,
    /// `[oms]`: the order manager.
    #[serde(default)]
    pub oms: crate::oms::OmsConfig,
    /// `[paper]`: the paper venue.
    #[serde(default)]
    pub paper: aaiti_gateway::paper::PaperConfig,
    /// `[risk]`: limits, rates, trading state.
    #[serde(default)]
    pub risk: aaiti_risk::RiskConfig,
    /// `[monitor]`: the real-time risk monitor (VaR).
    #[serde(default)]
    pub monitor: aaiti_risk::monitor::MonitorConfig,
    /// `[[accounts]]`: trading accounts, ids 0, 1, ... in this order.
    #[serde(default)]
    pub accounts: Vec<aaiti_risk::config::AccountConfig>,
    /// `[[strategies]]`.
    #[serde(default)]
    pub strategies: Vec<StrategyConfig>,
    /// `[admin]`: run-time administration.
    #[serde(default)]
    pub admin: AdminSection,
    /// `[gateway]`: the FIX 4.4 acceptor for the desk.
    #[serde(default)]
    pub gateway: GatewaySection,
    /// `[venues]`: exchange adapters for `account_type = "live"` accounts.
    #[serde(default)]
    pub venues: VenuesSection,
    /// `[signals]`: features, models, monitoring.
    #[serde(default)]
    pub signals: SignalsSection,
}

/// `[venues]`: the exchange adapters live accounts' orders go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenuesSection {
    /// `[venues.binance]`: Binance spot.
    #[serde(default)]
    pub binance: Option<BinanceVenueSection>,
}

/// `[venues.binance]`: the Binance spot adapter and where its API key is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinanceVenueSection {
    /// The encrypted credentials file written by `aaiti secrets set` (relative paths: from
    /// the working directory).
    pub secrets_file: PathBuf,
    /// A file holding the 32-byte secrets key as 64 hex characters (mode 0600). Without
    /// it the key comes from the environment variable `AAITI_SECRETS_KEY`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// `[venues.binance.adapter]`: endpoints, timeouts, rate limits.
    #[serde(default)]
    pub adapter: aaiti_gateway::binance::BinanceConfig,
}

/// `[gateway]`: the FIX 4.4 acceptor for the quant desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Listen for the desk (needs the trading stage).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `[gateway.acceptor]`: listen address, limits, timeouts.
    #[serde(default)]
    pub acceptor: aaiti_gateway::fix::acceptor::AcceptorConfig,
    /// Sent application messages each session keeps in memory for resends (older ones are
    /// gap-filled); every sent message is journaled in `fix/` under the data directory.
    #[serde(default = "default_resend_capacity")]
    pub resend_capacity: usize,
    /// `[[gateway.sessions]]`: one per CompID pair.
    #[serde(default)]
    pub sessions: Vec<aaiti_gateway::fix::session::SessionConfig>,
}

fn default_resend_capacity() -> usize {
    100_000
}

impl Default for GatewaySection {
    fn default() -> Self {
        Self {
            enabled: true,
            acceptor: aaiti_gateway::fix::acceptor::AcceptorConfig::default(),
            resend_capacity: default_resend_capacity(),
            sessions: Vec::new(),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Serve admin commands (`aaiti admin ...`) on `admin.sock` in the data directory
    /// (mode 0600: only the directory's owner can connect).
    #[serde(default = "yes")]
    pub socket: bool,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self { socket: true }
    }
}

/// `[trading]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradingSection {
    /// Run the trading stage (needs at least one account).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What marks positions: `mid` or `last`.
    #[serde(default)]
    pub mark: crate::stages::trading::MarkSource,
}

impl Default for TradingSection {
    fn default() -> Self {
        Self {
            enabled: true,
            mark: crate::stages::trading::MarkSource::Mid,
        }
    }
}

/// One `[[strategies]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StrategyConfig {
    /// The deterministic order-flow driver ([`crate::strategy::flow`]).
    Flow {
        /// Name (client order id prefix).
        name: String,
        /// Account name (from `[[accounts]]`).
        account: String,
        /// Venue of the instrument.
        venue: String,
        /// Symbol.
        symbol: String,
        /// Order quantity, in base units (`"0.001"`).
        qty: String,
        /// One action every this many valid book updates.
        #[serde(default = "default_every_updates")]
        every_updates: u32,
        /// Every n-th action crosses the spread.
        #[serde(default = "default_cross_every")]
        cross_every: u32,
        /// Every n-th action replaces the oldest working order (0: never).
        #[serde(default = "default_replace_every")]
        replace_every: u32,
        /// Passive orders sit this many ticks behind the touch.
        #[serde(default = "default_offset_ticks")]
        offset_ticks: i64,
        /// Most working orders.
        #[serde(default = "default_max_open")]
        max_open: usize,
        /// Position, in lots, beyond which it trades only toward flat.
        #[serde(default = "default_max_position")]
        max_position: i64,
    },
    /// The model strategy ([`crate::strategy::ml`]): signals to a target position,
    /// volatility-adjusted, worked with limit orders at or inside the touch. Keys left out
    /// take the defaults of [`crate::strategy::ml::MlParams::new`].
    Ml {
        /// Name (client order id prefix).
        name: String,
        /// Account name (from `[[accounts]]`).
        account: String,
        /// Venue of the instrument.
        venue: String,
        /// Symbol.
        symbol: String,
        /// Position at full signal, in base units (`"0.01"`).
        max_position: String,
        /// The model it follows (a `[[signals.models]]` name, or `"ensemble"`); default:
        /// every non-shadow model scoring its instrument.
        #[serde(default)]
        model: Option<String>,
        /// Signals below this confidence are ignored.
        #[serde(default)]
        min_confidence: Option<f64>,
        /// Predicted forward log return at which the full position is wanted.
        #[serde(default)]
        full_signal: Option<f64>,
        /// Hard limit on position plus working orders, in base units.
        #[serde(default)]
        max_inventory: Option<String>,
        /// Smallest order, in base units.
        #[serde(default)]
        min_trade: Option<String>,
        /// Volatility (bps per minute) above which the position is scaled down.
        #[serde(default)]
        target_vol_1m_bps: Option<f64>,
        /// Ticks inside the touch a passive order may improve (0: join).
        #[serde(default)]
        improve_ticks: Option<i64>,
        /// A working order is canceled after this long at one price.
        #[serde(default)]
        order_ttl_ms: Option<u64>,
        /// Least engine time between two actions.
        #[serde(default)]
        min_interval_ms: Option<u64>,
        /// Own loss (quote asset) that halts it.
        #[serde(default)]
        max_loss: Option<String>,
        /// On a loss halt, flatten.
        #[serde(default)]
        flatten_on_loss: Option<bool>,
        /// Passive orders are post-only.
        #[serde(default)]
        post_only: Option<bool>,
    },
    /// The rule-based example ([`crate::strategy::rule`]): EMA crossover of the mid.
    Rule {
        /// Name (client order id prefix).
        name: String,
        /// Account name (from `[[accounts]]`).
        account: String,
        /// Venue of the instrument.
        venue: String,
        /// Symbol.
        symbol: String,
        /// Order quantity, in base units.
        qty: String,
        /// Position wanted when long (negated when short), in base units.
        max_position: String,
        /// Fast EMA period, in book updates.
        #[serde(default = "default_fast_updates")]
        fast_updates: u32,
        /// Slow EMA period, in book updates.
        #[serde(default = "default_slow_updates")]
        slow_updates: u32,
        /// Gap between the averages, in basis points, that changes its mind.
        #[serde(default = "default_threshold_bps")]
        threshold_bps: f64,
    },
}

fn default_fast_updates() -> u32 {
    20
}
fn default_slow_updates() -> u32 {
    200
}
fn default_threshold_bps() -> f64 {
    1.0
}

/// `[signals]`: features, ONNX models, their monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsSection {
    /// Run the signal stage.
    #[serde(default)]
    pub enabled: bool,
    /// When ONNX Runtime cannot be loaded: `"error"` (refuse to start, saying how to fix
    /// it) or `"disable"` (run without the signal stage, with a warning).
    #[serde(default)]
    pub on_missing_runtime: MissingRuntime,
    /// The models directory (each model an `.onnx` file and its `.json` metadata).
    /// Relative paths are taken from the data directory; the bundled model is written there
    /// when missing.
    #[serde(default = "default_models_dir")]
    pub models_dir: PathBuf,
    /// The models that serve, one instrument each (their index is the signals' model
    /// index).
    #[serde(default)]
    pub models: Vec<ModelSlotConfig>,
    /// An optional ensemble over some of them.
    #[serde(default)]
    pub ensemble: Option<EnsembleConfig>,
    /// Drift monitoring.
    #[serde(default)]
    pub drift: crate::signals::monitor::DriftParams,
    /// Predictions awaiting their horizon, per model (live accuracy).
    #[serde(default = "default_accuracy_capacity")]
    pub accuracy_capacity: usize,
}

impl Default for SignalsSection {
    fn default() -> Self {
        Self {
            enabled: false,
            on_missing_runtime: MissingRuntime::default(),
            models_dir: default_models_dir(),
            models: Vec::new(),
            ensemble: None,
            drift: crate::signals::monitor::DriftParams::default(),
            accuracy_capacity: default_accuracy_capacity(),
        }
    }
}

fn default_models_dir() -> PathBuf {
    PathBuf::from("models")
}
fn default_accuracy_capacity() -> usize {
    65_536
}

/// What happens when ONNX Runtime cannot be loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingRuntime {
    /// Refuse to start.
    #[default]
    Error,
    /// Run without the signal stage.
    Disable,
}

/// One `[[signals.models]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSlotConfig {
    /// The model's name in the models directory.
    pub name: String,
    /// Its version; default: the newest.
    #[serde(default)]
    pub version: Option<u32>,
    /// Venue of the instrument it scores.
    pub venue: String,
    /// Symbol.
    pub symbol: String,
    /// Scored and journaled but never traded (A/B comparison).
    #[serde(default)]
    pub shadow: bool,
}

/// `[signals.ensemble]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// `weighted_average` or `majority_vote`.
    pub method: crate::signals::model::EnsembleMethod,
    /// Member model names (from `[[signals.models]]`, same instrument).
    pub members: Vec<String>,
    /// One weight per member (default: equal).
    #[serde(default)]
    pub weights: Vec<f64>,
}

fn default_every_updates() -> u32 {
    20
}
fn default_cross_every() -> u32 {
    3
}
fn default_replace_every() -> u32 {
    7
}
fn default_offset_ticks() -> i64 {
    2
}
fn default_max_open() -> usize {
    4
}
fn default_max_position() -> i64 {
    5
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Where the journal and other state live.
    pub data_dir: PathBuf,
}

/// `[pipeline]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Slots per ring (power of two).
    pub ring_capacity: usize,
    /// Events per batch.
    pub batch_limit: u64,
}

impl PipelineConfig {
    /// As runtime settings.
    pub fn ring_settings(&self) -> RingSettings {
        RingSettings {
            capacity: self.ring_capacity,
            batch_limit: self.batch_limit,
        }
    }
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Synthetic trades (load generation, tests).
    Synthetic {
        /// Source name (placement refers to it).
        name: String,
        /// Events to generate; 0 runs until stopped.
        #[serde(default)]
        events: u64,
        /// Events per second (open loop); 0 is as fast as the pipeline takes them.
        #[serde(default)]
        rate_per_s: u64,
    },
    /// A recording replayed through a venue's feed handler.
    Replay {
        /// Source name (placement refers to it).
        name: String,
        /// Feed handler: `binance`, `binance-futures`, `coinbase`, `kraken`, `kraken-v2`.
        venue: ReplayVenue,
        /// A recording path, or `bundled:binance-btcusdt` for the recording compiled in.
        file: String,
        /// `recorded`, `max`, or a speed-up factor such as `10`.
        #[serde(default = "recorded")]
        speed: String,
    },
    /// A live WebSocket connection to a venue, optionally with a backup connection.
    Live {
        /// Source name (placement refers to it).
        name: String,
        /// Feed handler: `binance`, `binance-futures`, `coinbase`, `kraken`, `kraken-v2`.
        venue: ReplayVenue,
        /// `wss://` (or `ws://`) URL; for Binance the base, e.g.
        /// `wss://stream.binance.com:9443`.
        url: String,
        /// REST base URL for depth snapshots (Binance: `https://api.binance.com`).
        #[serde(default)]
        rest_url: Option<String>,
        /// A backup connection's URL: failover when the primary goes stale, failback when
        /// it recovers.
        #[serde(default)]
        backup_url: Option<String>,
        /// Primary silent this long: switch to the backup.
        #[serde(default = "default_failover_ms")]
        failover_after_ms: u64,
        /// Primary healthy this long: switch back.
        #[serde(default = "default_failback_ms")]
        failback_after_ms: u64,
        /// Extra trusted root certificates (PEM file), e.g. for a private endpoint.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

fn default_failover_ms() -> u64 {
    2_000
}

fn default_failback_ms() -> u64 {
    10_000
}

fn recorded() -> String {
    "recorded".to_owned()
}

impl SourceConfig {
    /// The source's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Synthetic { name, .. } | Self::Replay { name, .. } | Self::Live { name, .. } => {
                name
            }
        }
    }
}

/// `[journal]`: the memory-mapped event journal under `<data-dir>/journal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Journal every record and resume from the journal on start.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Size of each segment file in MiB.
    #[serde(default = "default_segment_mb")]
    pub segment_size_mb: u64,
    /// `none` (survives a process crash), `interval` (msync every `interval_ms` or
    /// `interval_records`, group commit) or `sync` (msync before each batch is released).
    #[serde(default = "default_durability")]
    pub durability: String,
    /// `interval`: longest time between syncs.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u32,
    /// `interval`: most records between syncs (0: time only).
    #[serde(default)]
    pub interval_records: u32,
    /// Pre-fault pages ahead of the writer.
    #[serde(default = "yes")]
    pub prefault: bool,
    /// Seconds between engine snapshots (0: none while running).
    #[serde(default = "default_snapshot_interval_s")]
    pub snapshot_interval_s: f64,
    /// Take a snapshot when the run stops cleanly (the next start then replays nothing).
    #[serde(default = "yes")]
    pub snapshot_on_stop: bool,
    /// Snapshots kept; older ones are deleted.
    #[serde(default = "default_snapshots_keep")]
    pub snapshots_keep: usize,
    /// Segments every kept snapshot covers: `keep`, `delete`, or `archive` (moved to
    /// `archive_dir`).
    #[serde(default = "default_retention")]
    pub retention: String,
    /// Where `archive` moves retired segments (relative: under the data directory).
    #[serde(default = "default_archive_dir")]
    pub archive_dir: PathBuf,
}

/// What happens to journal segments every kept snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retention {
    /// Keep them (the journal is the audit trail).
    Keep,
    /// Delete them.
    Delete,
    /// Move them to this directory.
    Archive(PathBuf),
}

fn yes() -> bool {
    true
}
fn default_segment_mb() -> u64 {
    256
}
fn default_durability() -> String {
    "none".to_owned()
}
fn default_interval_ms() -> u32 {
    10
}
fn default_snapshot_interval_s() -> f64 {
    60.0
}
fn default_snapshots_keep() -> usize {
    3
}
fn default_retention() -> String {
    "keep".to_owned()
}
fn default_archive_dir() -> PathBuf {
    PathBuf::from("archive")
}

impl Default for JournalSection {
    fn default() -> Self {
        Self {
            enabled: true,
            segment_size_mb: default_segment_mb(),
            durability: default_durability(),
            interval_ms: default_interval_ms(),
            interval_records: 0,
            prefault: true,
            snapshot_interval_s: default_snapshot_interval_s(),
            snapshot_on_stop: true,
            snapshots_keep: default_snapshots_keep(),
            retention: default_retention(),
            archive_dir: default_archive_dir(),
        }
    }
}

impl JournalSection {
    /// The retention policy, with `archive_dir` resolved against `data_dir`.
    pub fn retention(&self, data_dir: &std::path::Path) -> Result<Retention, String> {
        match self.retention.as_str() {
            "keep" => Ok(Retention::Keep),
            "delete" => Ok(Retention::Delete),
            "archive" => Ok(Retention::Archive(data_dir.join(&self.archive_dir))),
            other => Err(format!(
                "retention {other:?} is not \"keep\", \"delete\" or \"archive\""
            )),
        }
    }

    /// As the journal crate's configuration.
    pub fn writer_config(&self) -> Result<aaiti_journal::JournalConfig, String> {
        let durability = match self.durability.as_str() {
            "none" => aaiti_journal::Durability::None,
            "interval" => aaiti_journal::Durability::Interval {
                ms: self.interval_ms,
                records: self.interval_records,
            },
            "sync" => aaiti_journal::Durability::Sync,
            other => {
                return Err(format!(
                    "durability {other:?} is not \"none\", \"interval\" or \"sync\""
                ));
            }
        };
        let config = aaiti_journal::JournalConfig {
            segment_size_bytes: self.segment_size_mb.saturating_mul(1 << 20),
            durability,
            prefault: self.prefault,
            ..aaiti_journal::JournalConfig::default()
        };
        config.validate().map_err(|error| error.to_string())?;
        Ok(config)
    }
}

/// `[book]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookConfig {
    /// Compare books with the venues' own best bid/offer (`aaiti replay --check`).
    #[serde(default)]
    pub check: bool,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read configuration file {file}: {source}")]
    Read {
        /// File.
        file: String,
        /// OS error.
        source: std::io::Error,
    },
    /// Not valid TOML or not our schema (the message shows line, column and key).
    #[error("configuration file {file} is invalid: {source}")]
    Parse {
        /// File.
        file: String,
        /// Parser error with location.
        source: Box<toml::de::Error>,
    },
    /// A value is out of its domain.
    #[error("configuration file {file}: `{key}` {problem}. Fix: {fix}")]
    Invalid {
        /// File.
        file: String,
        /// Key.
        key: String,
        /// What is wrong.
        problem: String,
        /// What to change.
        fix: String,
    },
    /// The instrument list is invalid.
    #[error("configuration file {file}: {source}")]
    Instruments {
        /// File.
        file: String,
        /// Details (index, symbol, key).
        source: aaiti_model::InstrumentError,
    },
    /// The placement cannot run on this machine.
    #[error("configuration file {file}: {source}")]
    Placement {
        /// File.
        file: String,
        /// Details (key, problem, fix).
        source: PlacementError,
    },
}

/// A validated configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The values.
    pub config: Config,
    /// File name for messages (or [`EMBEDDED_NAME`]).
    pub origin: String,
    /// The instruments, parsed.
    pub registry: InstrumentRegistry,
}

impl LoadedConfig {
    /// Wraps a placement error with this configuration's file name.
    pub fn placement_error(&self, source: PlacementError) -> ConfigError {
        ConfigError::Placement {
            file: self.origin.clone(),
            source,
        }
    }
}

/// Loads `path`, or the embedded default if `None`, and validates it.
pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    match path {
        None => parse(DEFAULT_CONFIG, EMBEDDED_NAME),
        Some(path) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                file: file.clone(),
                source,
            })?;
            parse(&text, &file)
        }
    }
}

/// Parses and validates configuration text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<LoadedConfig, ConfigError> {
    let file = origin.to_owned();
    let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
        file: file.clone(),
        source: Box::new(source),
    })?;
    let invalid = |key: &str, problem: String, fix: &str| ConfigError::Invalid {
        file: file.clone(),
        key: key.to_owned(),
        problem,
        fix: fix.to_owned(),
    };
    let capacity = config.pipeline.ring_capacity;
    if !(64..=1 << 24).contains(&capacity) || !capacity.is_power_of_two() {
        return Err(invalid(
            "pipeline.ring_capacity",
            format!("is {capacity}, not a power of two between 64 and 16777216"),
            "use a power of two such as 65536",
        ));
    }
    if config.pipeline.batch_limit == 0 {
        return Err(invalid(
            "pipeline.batch_limit",
            "is 0".into(),
            "use at least 1 (1024 is a good start)",
        ));
    }
    if !(1..=64).contains(&config.sources.len()) {
        return Err(invalid(
            "sources",
            format!("lists {} sources", config.sources.len()),
            "list between 1 and 64 [[sources]]",
        ));
    }
    for (index, source) in config.sources.iter().enumerate() {
        let key = format!("sources[{index}]");
        if source.name().trim().is_empty() {
            return Err(invalid(
                &format!("{key}.name"),
                "is empty".into(),
                "give the source a name",
            ));
        }
        if config.sources[..index]
            .iter()
            .any(|other| other.name() == source.name())
        {
            return Err(invalid(
                &format!("{key}.name"),
                format!("{:?} is used twice", source.name()),
                "give every source its own name",
            ));
        }
        if let SourceConfig::Live {
            name,
            url,
            rest_url,
            backup_url,
            ..
        } = source
        {
            let websocket = |url: &str| url.starts_with("ws://") || url.starts_with("wss://");
            for (field, value) in [("url", Some(url)), ("backup_url", backup_url.as_ref())] {
                if let Some(value) = value.filter(|v| !websocket(v)) {
                    return Err(invalid(
                        &format!("{key}.{field}"),
                        format!("of live source {name:?} is {value:?}, not a WebSocket URL"),
                        "use a wss:// (or ws://) URL",
                    ));
                }
            }
            if let Some(rest) = rest_url
                .as_ref()
                .filter(|r| !r.starts_with("https://") && !r.starts_with("http://"))
            {
                return Err(invalid(
                    &format!("{key}.rest_url"),
                    format!("of live source {name:?} is {rest:?}, not an HTTP URL"),
                    "use an https:// URL such as \"https://api.binance.com\"",
                ));
            }
        }
        if let SourceConfig::Replay { speed, .. } = source
            && let Err(problem) = crate::replay::parse_speed(speed)
        {
            return Err(invalid(
                &format!("{key}.speed"),
                problem,
                "use \"max\", \"recorded\" or a factor like \"10\"",
            ));
        }
    }
    if config.engine.data_dir.as_os_str().is_empty() {
        return Err(invalid(
            "engine.data_dir",
            "is empty".into(),
            "name a directory, e.g. \".aaiti\"",
        ));
    }
    if let Err(problem) = config.journal.writer_config() {
        return Err(invalid(
            "journal",
            problem,
            "use durability = \"none\", \"interval\" or \"sync\" and a segment_size_mb of 1 or more",
        ));
    }
    if let Err(problem) = config.journal.retention(&config.engine.data_dir) {
        return Err(invalid(
            "journal.retention",
            problem,
            "use \"keep\", \"delete\" or \"archive\"",
        ));
    }
    let interval = config.journal.snapshot_interval_s;
    if !interval.is_finite() || interval < 0.0 || (interval > 0.0 && interval < 0.01) {
        return Err(invalid(
            "journal.snapshot_interval_s",
            format!("is {interval}"),
            "use 0 (no periodic snapshots) or a number of seconds of at least 0.01",
        ));
    }
    if config.journal.snapshots_keep == 0 {
        return Err(invalid(
            "journal.snapshots_keep",
            "is 0".into(),
            "keep at least 1 snapshot (3 is the default)",
        ));
    }
    let registry = InstrumentRegistry::from_specs(&config.instruments).map_err(|source| {
        ConfigError::Instruments {
            file: file.clone(),
            source,
        }
    })?;
    Ok(LoadedConfig {
        config,
        origin: file,
        registry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let loaded = load(None).unwrap();
        assert_eq!(loaded.origin, EMBEDDED_NAME);
        assert_eq!(
            loaded.registry.len(),
            21,
            "BTCUSDT plus the 20 pairs of the Kraken and Coinbase recordings"
        );
        assert!(loaded.config.pipeline.ring_capacity.is_power_of_two());
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(DEFAULT_CONFIG.contains(replace), "{replace}");
        DEFAULT_CONFIG.replacen(replace, by, 1)
    }

    #[test]
    fn errors_name_file_key_and_fix() {
        let error = parse(
            &with("ring_capacity = 65536", "ring_capacity = 1000"),
            "test.toml",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("test.toml")
                && text.contains("pipeline.ring_capacity")
                && text.contains("Fix:"),
            "{text}"
        );

        let error = parse(
            &with("batch_limit = 1024", "batch_limt = 1024"),
            "typo.toml",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("typo.toml") && text.contains("batch_limt"),
            "{text}"
        );
        assert!(text.contains("line"), "{text}");

        let error =
            parse(&with("wait = \"busy-spin\"", "wait = \"spinny\""), "w.toml").unwrap_err();
        assert!(error.to_string().contains("busy-spin"), "{error}");

        let error = parse(
            &with("tick_size = \"0.01\"", "tick_size = \"1e-2\""),
            "i.toml",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("i.toml") && text.contains("tick_size") && text.contains("BTCUSDT"),
            "{text}"
        );

        let error = parse(&with("speed = \"recorded\"", "speed = \"fast\""), "s.toml").unwrap_err();
        assert!(error.to_string().contains("sources[0].speed"), "{error}");

        let error = parse(
            &with("venue = \"binance\"\nfile", "venue = \"nyse\"\nfile"),
            "v.toml",
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("v.toml") && error.to_string().contains("nyse"),
            "{error}"
        );

        let error = parse(
            &with("ring_capacity = 65536", "ring_capacity = \"big\""),
            "t.toml",
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::Parse { .. }), "{error}");

        let missing = load(Some(Path::new("/nonexistent/aaiti.toml"))).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/aaiti.toml"));
    }

    #[test]
    fn manual_placement_parses() {
        let text = with(
            "pin = true",
            "pin = true\n[[placement.threads]]\nname = \"io\"\nrun = [\"binance\"]\ncore = 0\nwait = \"park:100\"\n",
        );
        let loaded = parse(
            &text.replace("mode = \"auto\"", "mode = \"manual\""),
            "m.toml",
        )
        .unwrap();
        assert_eq!(loaded.config.placement.threads.len(), 1);
        assert_eq!(
            loaded.config.placement.threads[0].wait,
            crate::runtime::WaitStrategy::Park { timeout_us: 100 }
        );
    }
}
