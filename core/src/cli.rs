//! The `aaiti` command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use aaiti_feeds::replay::Pace;
use aaiti_gateway::secrets::{Credentials, SecretsKey};

use crate::config::{self, DEFAULT_CONFIG, LoadedConfig, SourceConfig};
use crate::engine::{self, RunOptions};
use crate::replay::ReplayVenue;
use crate::runtime::{Plan, RunReport};

/// AAITI: a low-latency crypto trading core.
#[derive(Debug, Parser)]
#[command(name = "aaiti", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine (embedded default configuration unless --config is given). Ctrl-C
    /// drains every ring, stops every thread and prints a summary.
    Run(RunArgs),
    /// Replay a recording through the feed and book stages, optionally cross-checking the
    /// books against the venue's own data.
    Replay(ReplayArgs),
    /// Show or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show the threads, cores and wait strategies the placement would use.
    Placement(PlacementArgs),
    /// Administer a running engine through the admin socket in its data directory: read the
    /// risk state, change risk limits, halt, resume, engage the kill switch. Every command
    /// is journaled and takes effect between two events.
    Admin(AdminArgs),
    /// FIX gateway utilities.
    #[command(subcommand)]
    Fix(FixCommand),
    /// Export features and forward returns from a recording (CSV, for training): the
    /// recording goes through the engine's own book stage and feature engine, so a model is
    /// trained on exactly the features it is served.
    Features(FeaturesArgs),
    /// Exchange API secrets, encrypted at rest (AES-256-GCM) for `[venues.binance]
    /// secrets_file`. The key comes from --key-file or the environment variable
    /// AAITI_SECRETS_KEY (64 hex characters); nothing secret is ever printed or logged.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Generate a new random secrets key into a new file (mode 0600; never overwritten).
    NewKey {
        /// Where to write it.
        file: PathBuf,
    },
    /// Read the API key and its secret from standard input (two lines: key, then secret)
    /// and write them sealed into FILE (mode 0600, replaced atomically).
    Set {
        /// The secrets file.
        file: PathBuf,
        /// The secrets key file (default: the AAITI_SECRETS_KEY environment variable).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Open FILE with the key and show which API key it holds (its first four characters).
    Check {
        /// The secrets file.
        file: PathBuf,
        /// The secrets key file (default: the AAITI_SECRETS_KEY environment variable).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum FixCommand {
    /// Read a password from standard input (one line) and print its argon2 hash for a
    /// `[[gateway.sessions]]` entry: `auth = { type = "password", username = "...", hash =
    /// "<this>" }`. The password itself is never stored.
    HashPassword,
}

#[derive(Debug, Args)]
struct AdminArgs {
    /// The engine's data directory (default: `engine.data_dir` of the configuration).
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration file the engine runs with (for its default data directory).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Print the engine's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// The current risk state: trading states, limits and their usage, positions, VaR.
    Risk,
    /// Change risk limits: FILE holds `[risk]` and/or `[[accounts]]` keys as in the engine's
    /// configuration; tables merge into the running limits key by key, arrays replace whole.
    /// All or nothing: a value that does not fit leaves every limit as it was.
    SetLimits {
        /// TOML file (`-` reads standard input).
        file: PathBuf,
    },
    /// Halt trading and cancel open orders (one account, or everything).
    Halt {
        /// Account name (default: global).
        #[arg(long)]
        account: Option<String>,
    },
    /// Resume trading (an account's drawdown high-water mark restarts from its equity; a
    /// global resume also releases the global kill switch).
    Resume {
        /// Account name (default: global).
        #[arg(long)]
        account: Option<String>,
    },
    /// Swap a model of the signal stage for another version of the models directory, without
    /// stopping (loaded and warmed up beside the serving one, switched between two events,
    /// journaled). A version that does not load leaves the old one serving.
    SwapModel {
        /// The model's name (as in `[[signals.models]]`).
        model: String,
        /// The version (default: the newest in the models directory).
        #[arg(long)]
        version: Option<u32>,
    },
    /// Engage the kill switch: halt, cancel all open orders, optionally flatten.
    KillSwitch {
        /// Account name (default: global).
        #[arg(long)]
        account: Option<String>,
        /// Also close every position with reduce-only market orders.
        #[arg(long)]
        flatten: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Configuration file (TOML) replacing the embedded default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the journal and other state live (default: `engine.data_dir`, `.aaiti`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Replay speed for replay sources: `max`, `recorded` or a factor such as `10`.
    #[arg(long, value_name = "SPEED", value_parser = parse_pace)]
    speed: Option<Pace>,
    /// Compare books with the venues' own best bid/offer.
    #[arg(long)]
    check: bool,
    /// Events per synthetic generator (0: until stopped).
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Events per second per synthetic generator (0: as fast as possible).
    #[arg(long, value_name = "N")]
    rate: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording: `<recv ns> <json>` lines (optionally gzip) or `<ts>: <json>` captures.
    file: PathBuf,
    /// Feed handler; guessed from the file name when absent.
    #[arg(long, value_enum)]
    venue: Option<VenueArg>,
    /// `max` (default), `recorded`, or a factor such as `10`.
    #[arg(long, value_name = "SPEED", default_value = "max", value_parser = parse_pace)]
    speed: Pace,
    /// Cross-check books: Binance BBO vs bookTicker, Kraken checksums, Coinbase BBO vs ticker.
    #[arg(long)]
    check: bool,
    /// Print the report as one JSON object (`--report json`).
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "text"], default_value = "text")]
    report: String,
    /// Configuration file (TOML) replacing the embedded default (its instruments are used).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FeaturesArgs {
    /// The recording, or `bundled:binance-btcusdt` (the one compiled in).
    recording: String,
    /// The feature spec: a JSON file holding a feature spec, or a model's metadata (its
    /// `features`).
    #[arg(long, value_name = "FILE")]
    spec: PathBuf,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Forward-return horizons in milliseconds, comma separated.
    #[arg(long, value_name = "MS,...", value_delimiter = ',', default_values_t = [1000_u32, 5000])]
    horizons: Vec<u32>,
    /// Feed handler; guessed from the file name when absent.
    #[arg(long, value_enum)]
    venue: Option<VenueArg>,
    /// Only the first SECONDS of the recording.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Configuration file (TOML) replacing the embedded default (its instruments are used).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, clap::ValueEnum)]
enum VenueArg {
    Binance,
    BinanceFutures,
    Coinbase,
    Kraken,
    KrakenV2,
}

impl From<VenueArg> for ReplayVenue {
    fn from(venue: VenueArg) -> Self {
        match venue {
            VenueArg::Binance => Self::Binance,
            VenueArg::BinanceFutures => Self::BinanceFutures,
            VenueArg::Coinbase => Self::Coinbase,
            VenueArg::Kraken => Self::Kraken,
            VenueArg::KrakenV2 => Self::KrakenV2,
        }
    }
}

fn parse_pace(text: &str) -> Result<Pace, String> {
    crate::replay::parse_speed(text)
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the embedded default configuration.
    PrintDefault,
    /// Check a configuration file (default: the embedded one) and the placement it gives on
    /// this machine.
    Check {
        /// File to check.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct PlacementArgs {
    /// Configuration file (TOML) replacing the embedded default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Plan for this many cores (0..N) instead of the cores this process may use.
    #[arg(long, value_name = "N")]
    cores: Option<usize>,
}

/// Entry point of the `aaiti` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "aaiti: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AAITI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Run(args) => run(args),
        Command::Replay(args) => replay(args),
        Command::Config(ConfigCommand::PrintDefault) => {
            stdout.write_all(DEFAULT_CONFIG.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let loaded = config::load(file.as_deref())?;
            let options = RunOptions::default();
            // (No data directory: checking never opens or changes a journal.)
            let plan = engine::preview_plan(&loaded, &options)?;
            writeln!(stdout, "{}: ok", loaded.origin)?;
            write_plan(&mut stdout, &plan)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(args) => admin(args),
        Command::Fix(FixCommand::HashPassword) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("no password on standard input");
            }
            let hash = aaiti_gateway::fix::auth::hash_password(password.as_bytes())
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            writeln!(stdout, "{hash}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Secrets(command) => secrets(command, &mut stdout),
        Command::Features(args) => features(args, &mut stdout),
        Command::Placement(args) => {
            let loaded = config::load(args.config.as_deref())?;
            let options = RunOptions {
                cores: args.cores.map(|n| (0..n.max(1)).collect()),
                ..RunOptions::default()
            };
            let plan = engine::preview_plan(&loaded, &options)?;
            write_plan(&mut stdout, &plan)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn features(args: FeaturesArgs, stdout: &mut impl Write) -> anyhow::Result<ExitCode> {
    use crate::signals::features::FeatureSpec;
    use crate::signals::features::export::{ExportOptions, export};
    let loaded = config::load(args.config.as_deref())?;
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("cannot read {}", args.spec.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", args.spec.display()))?;
    // A model's metadata holds its spec under `features`.
    let spec_json = match json.get("features") {
        Some(features) if features.is_object() => features.clone(),
        _ => json,
    };
    let spec: FeatureSpec = serde_json::from_value(spec_json)
        .with_context(|| format!("{}: not a feature spec", args.spec.display()))?;
    let venue = match args.venue {
        Some(venue) => ReplayVenue::from(venue),
        None if args.recording == crate::replay::BUNDLED_BINANCE_BTCUSDT_NAME => {
            ReplayVenue::Binance
        }
        None => ReplayVenue::guess(&args.recording).with_context(|| {
            format!(
                "cannot tell the venue of {} from its name; pass --venue",
                args.recording
            )
        })?,
    };
    let duration_ms = match args.duration {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => Some((seconds * 1000.0) as u64),
        Some(seconds) => anyhow::bail!("--duration must be positive, got {seconds}"),
        None => None,
    };
    let options = ExportOptions {
        recording: args.recording,
        venue,
        spec,
        horizons_ms: args.horizons,
        out: args.out,
        duration_ms,
    };
    let summary = export(&options, &loaded.registry)?;
    writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(ExitCode::SUCCESS)
}

fn secrets_key(key_file: Option<&std::path::Path>) -> anyhow::Result<SecretsKey> {
    match key_file {
        Some(path) => SecretsKey::from_file(path),
        None => SecretsKey::from_env(aaiti_gateway::secrets::KEY_ENV_VAR),
    }
    .map_err(|error| anyhow::anyhow!("the secrets key: {error}"))
}

fn secrets(command: SecretsCommand, stdout: &mut impl Write) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::NewKey { file } => {
            let key = SecretsKey::generate().map_err(|error| anyhow::anyhow!("{error}"))?;
            key.write_new_file(&file)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            writeln!(stdout, "wrote a new secrets key to {}", file.display())?;
        }
        SecretsCommand::Set { file, key_file } => {
            let key = secrets_key(key_file.as_deref())?;
            let mut api_key = zeroize::Zeroizing::new(String::new());
            let mut secret = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut api_key)?;
            std::io::stdin().read_line(&mut secret)?;
            let credentials = Credentials::new(
                api_key.trim_end_matches(['\r', '\n']),
                secret.trim_end_matches(['\r', '\n']),
            )
            .map_err(|error| anyhow::anyhow!("{error}"))?;
            aaiti_gateway::secrets::save(&file, &key, &credentials)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            writeln!(stdout, "sealed {credentials:?} into {}", file.display())?;
        }
        SecretsCommand::Check { file, key_file } => {
            let key = secrets_key(key_file.as_deref())?;
            let credentials = aaiti_gateway::secrets::load(&file, &key)
                .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
            writeln!(stdout, "{}: {credentials:?}", file.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut loaded = config::load(args.config.as_deref())?;
    let file = args.file.display().to_string();
    let venue = match args.venue {
        Some(venue) => ReplayVenue::from(venue),
        None => ReplayVenue::guess(&file).with_context(|| {
            format!("cannot tell the venue of {file} from its name; pass --venue")
        })?,
    };
    // A replay check serves no desk and scores no model (it checks feeds and books).
    loaded.config.gateway.enabled = false;
    loaded.config.signals.enabled = false;
    loaded.config.sources = vec![SourceConfig::Replay {
        name: "replay".to_owned(),
        venue,
        file: file.clone(),
        speed: "max".to_owned(),
    }];
    let options = RunOptions {
        speed: Some(args.speed),
        check: args.check,
        ..RunOptions::default()
    };
    let started = engine::start(&loaded, &options)?;
    let plan = started.plan.clone();
    let stop = started.running.stop_handle();
    ctrlc::set_handler(move || stop.request_stop()).context("cannot install the Ctrl-C handler")?;
    let report = started.wait().report;
    let counter = |component: &str, name: &str| report.counter(component, name).unwrap_or(0);
    let messages = counter("replay", "messages");
    let summary = serde_json::json!({
        "file": file,
        "venue": venue,
        "messages": messages,
        "records": counter("replay", "records"),
        "book_updates": counter("book", "book_updates"),
        "deltas": counter("book", "deltas"),
        "bbo_checks": counter("book", "bbo_checks"),
        "bbo_mismatches": counter("book", "bbo_mismatches"),
        "checksum_checks": counter("book", "checksum_checks"),
        "checksum_failures": counter("book", "checksum_failures"),
        "gaps": counter("book", "gaps"),
        "resyncs": counter("book", "resyncs"),
        "rejected_messages": counter("replay", "rejected_messages"),
        "bad_lines": counter("replay", "bad_lines"),
        "crossed": counter("book", "crossed"),
        "stale": counter("replay", "stale"),
        "outliers": counter("replay", "outliers"),
        "elapsed_s": report.elapsed_s,
        "messages_per_s": messages as f64 / report.elapsed_s.max(1e-9),
        "threads": plan.threads.len(),
        "failed": report.failed,
    });
    let mut stdout = std::io::stdout().lock();
    if args.report == "json" {
        writeln!(stdout, "{summary}")?;
    } else {
        write_report(&mut stdout, &report)?;
        writeln!(
            stdout,
            "replay: {}",
            serde_json::to_string_pretty(&summary)?
        )?;
    }
    Ok(if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    use crate::admin::AdminCommand;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => config::load(args.config.as_deref())?.config.engine.data_dir,
    };
    let command = match args.action {
        AdminAction::Risk => AdminCommand::Risk,
        AdminAction::SetLimits { file } => {
            let toml = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            AdminCommand::SetLimits { toml }
        }
        AdminAction::Halt { account } => AdminCommand::Halt { account },
        AdminAction::Resume { account } => AdminCommand::Resume { account },
        AdminAction::KillSwitch { account, flatten } => {
            AdminCommand::KillSwitch { account, flatten }
        }
        AdminAction::SwapModel { model, version } => AdminCommand::SwapModel { model, version },
    };
    let path = data_dir.join(crate::admin::socket::SOCKET_NAME);
    let answer = crate::admin::socket::request(&path, &command)?;
    let mut stdout = std::io::stdout().lock();
    if !answer.ok {
        let error = answer.error.unwrap_or_default();
        if args.json {
            writeln!(
                stdout,
                "{}",
                serde_json::json!({ "ok": false, "error": error })
            )?;
        }
        anyhow::bail!("the engine refused: {error}");
    }
    let result = answer.result.unwrap_or_default();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&result)?)?;
    } else {
        match command {
            AdminCommand::Risk => write_risk_state(&mut stdout, &result)?,
            AdminCommand::SetLimits { .. } => write_limit_changes(&mut stdout, &result)?,
            AdminCommand::SwapModel { .. } => {
                writeln!(stdout, "{}", serde_json::to_string_pretty(&result)?)?;
            }
            _ => {
                let applied = result["applied"].as_str().unwrap_or("done");
                writeln!(stdout, "{applied}: applied")?;
                write_risk_state(&mut stdout, &result)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The risk state as a table (the JSON of the `risk` admin command, or any answer with a
/// `risk` member).
fn write_risk_state(out: &mut dyn Write, state: &serde_json::Value) -> std::io::Result<()> {
    let risk = &state["risk"];
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    writeln!(
        out,
        "global: {}{}  (valuation {})",
        text(&risk["global_state"]),
        if risk["global_kill_switch"] == true {
            ", kill switch engaged"
        } else {
            ""
        },
        text(&risk["valuation_currency"])
    )?;
    let var = state["var"].as_array().cloned().unwrap_or_default();
    for account in risk["accounts"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "account {} ({}, {}): {}{}",
            text(&account["name"]),
            text(&account["account_type"]),
            text(&account["margin_mode"]),
            text(&account["effective_state"]),
            if account["kill_switch"] == true {
                ", kill switch engaged"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "  equity {}  high-water {}  drawdown {} bp (halt at {})",
            text(&account["equity"]),
            text(&account["high_water_mark"]),
            text(&account["drawdown_bps"]),
            text(&account["max_drawdown_bps"])
        )?;
        writeln!(
            out,
            "  gross exposure {} / {}  net {} / {}",
            text(&account["gross_exposure"]),
            text(&account["max_gross_exposure"]),
            text(&account["net_exposure"]),
            text(&account["max_net_exposure"])
        )?;
        writeln!(
            out,
            "  margin initial {}  maintenance {}  free {}{}",
            text(&account["initial_margin"]),
            text(&account["maintenance_margin"]),
            text(&account["free_margin"]),
            if account["margin_call"] == true {
                "  MARGIN CALL"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "  open orders {} / {}  rate {} per minute ({} available now)",
            text(&account["open_orders"]),
            text(&account["max_open_orders"]),
            text(&account["orders_per_minute"]),
            text(&account["orders_available"])
        )?;
        if let Some(figures) = var.iter().find(|v| v["account"] == account["id"]) {
            writeln!(
                out,
                "  VaR parametric {:.2}  historical {:.2}  limit {}{}",
                figures["parametric"].as_f64().unwrap_or(0.0),
                figures["historical"].as_f64().unwrap_or(0.0),
                text(&figures["limit"]),
                if figures["warming_up"] == true {
                    "  (warming up)"
                } else {
                    ""
                }
            )?;
        }
        for balance in account["balances"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  balance {:<6} {}  reserved {}",
                text(&balance["asset"]),
                text(&balance["balance"]),
                text(&balance["reserved"])
            )?;
        }
        for position in account["positions"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  position {}:{} qty {} (max {}) avg {} mark {} realized {} unrealized {} \
                 fees {}",
                text(&position["venue"]),
                text(&position["symbol"]),
                text(&position["qty"]),
                text(&position["max_position"]),
                text(&position["avg_entry"]),
                text(&position["mark"]),
                text(&position["realized_pnl"]),
                text(&position["unrealized_pnl"]),
                text(&position["fees"])
            )?;
        }
    }
    Ok(())
}

fn write_limit_changes(out: &mut dyn Write, result: &serde_json::Value) -> std::io::Result<()> {
    let changes = result["changed"].as_array().cloned().unwrap_or_default();
    if changes.is_empty() {
        return writeln!(out, "limits unchanged");
    }
    writeln!(out, "{} limit(s) changed:", changes.len())?;
    for change in &changes {
        let scope = match (change["account"].as_u64(), change["instrument"].as_u64()) {
            (Some(account), Some(instrument)) => {
                format!("account {account}, instrument {instrument}")
            }
            (Some(account), None) => format!("account {account}"),
            (None, Some(index)) => format!("index {index}"),
            (None, None) => "global".to_owned(),
        };
        writeln!(
            out,
            "  {} ({scope}): {} -> {}",
            change["field"].as_str().unwrap_or("?"),
            change["old"],
            change["new"]
        )?;
    }
    Ok(())
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let loaded: LoadedConfig = config::load(args.config.as_deref())?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| loaded.config.engine.data_dir.clone());
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let duration = match args.duration {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => {
            Some(Duration::from_secs_f64(seconds))
        }
        Some(seconds) => {
            anyhow::bail!("--duration must be a positive number of seconds, got {seconds}")
        }
        None => None,
    };
    let options = RunOptions {
        events: args.events,
        rate_per_s: args.rate,
        speed: args.speed,
        check: args.check,
        duration,
        cores: None,
        data_dir: Some(data_dir.clone()),
    };
    let started = engine::start(&loaded, &options)?;
    let plan = started.plan.clone();
    let recovery = started.recovery.clone();
    {
        let mut stderr = std::io::stderr().lock();
        writeln!(
            stderr,
            "aaiti: running with {} (data in {}); Ctrl-C stops",
            loaded.origin,
            data_dir.display()
        )?;
        write_plan(&mut stderr, &plan)?;
    }
    let stop = started.running.stop_handle();
    let first_interrupt = std::sync::OnceLock::new();
    ctrlc::set_handler(move || {
        let first = *first_interrupt.get_or_init(std::time::Instant::now);
        // A second Ctrl-C means the operator wants out now; but a SIGINT delivered twice at
        // once (`timeout` signals its child and its process group) is still the first.
        if INTERRUPTED.swap(true, Ordering::SeqCst) && first.elapsed() >= Duration::from_secs(1) {
            std::process::exit(130);
        }
        stop.request_stop();
    })
    .context("cannot install the Ctrl-C handler")?;
    let finished = started.wait();
    let report = finished.report;
    let summary = serde_json::json!({
        "config": loaded.origin,
        "data_dir": data_dir.display().to_string(),
        "interrupted": INTERRUPTED.load(Ordering::SeqCst),
        "recovery": recovery,
        "snapshots": finished.snapshots,
        "summary": {
            "predictions": report.counter("signals", "predictions"),
            "orders": finished.trading.as_ref().map(|t| t["orders"].clone()),
            "fills": finished.trading.as_ref().map(|t| t["fills"].clone()),
            "pnl_net": finished.trading.as_ref().map(|t| t["pnl_net"].clone()),
        },
        "trading": finished.trading,
        "report": report,
    });
    let summary_path = data_dir.join("run-summary.json");
    std::fs::write(&summary_path, serde_json::to_vec_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string(&summary)?)?;
    } else {
        write_report(&mut stdout, &report)?;
    }
    Ok(if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_plan(out: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
    writeln!(
        out,
        "placement: {} threads, {} busy-spinning",
        plan.threads.len(),
        plan.spinning_threads()
    )?;
    for thread in &plan.threads {
        let core = thread
            .core
            .map_or("unpinned".to_owned(), |c| format!("core {c}"));
        let sources = if thread.sources.is_empty() {
            String::new()
        } else {
            format!("sources {:?} ", thread.sources)
        };
        let stages = if thread.stages.is_empty() {
            String::new()
        } else {
            format!("stages {:?}", thread.stages)
        };
        writeln!(
            out,
            "  {:<24} {:<9} {:<12} {sources}{stages}",
            thread.name,
            core,
            thread.wait.to_string()
        )?;
    }
    Ok(())
}

fn write_report(out: &mut dyn Write, report: &RunReport) -> std::io::Result<()> {
    let outcome = if report.failed {
        "FAILED (see threads)"
    } else {
        "drained cleanly"
    };
    writeln!(
        out,
        "aaiti: stopped after {:.3} s, {outcome}",
        report.elapsed_s
    )?;
    writeln!(out, "threads:")?;
    for thread in &report.threads {
        let core = match (thread.core, thread.pinned) {
            (Some(core), true) => format!("core {core}"),
            (Some(core), false) => format!("core {core} (pin failed)"),
            (None, _) => "unpinned".to_owned(),
        };
        writeln!(
            out,
            "  {:<24} {:<9} {:<12} events {:>12} batches {:>10}{}",
            thread.name,
            core,
            thread.wait,
            thread.events,
            thread.batches,
            thread
                .failure
                .as_deref()
                .map(|f| format!("  FAILED: {f}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "rings:")?;
    for ring in &report.rings {
        writeln!(
            out,
            "  -> {:<21} capacity {:>8} producers {} published {:>12} consumed {:>12} full-stalls {}",
            ring.name,
            ring.capacity,
            ring.producers,
            ring.published,
            ring.consumed,
            ring.full_stalls
        )?;
    }
    writeln!(out, "components:")?;
    for component in report.threads.iter().flat_map(|t| &t.components) {
        let counters: Vec<String> = component
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(out, "  {:<24} {}", component.name, counters.join(" "))?;
    }
    if let Some(events) = report.counter("counter", "events") {
        // Records through the whole pipeline, not venue messages.
        let rate = events as f64 / report.elapsed_s.max(1e-9);
        writeln!(
            out,
            "throughput: {events} events in {:.3} s = {:.2} M events/s",
            report.elapsed_s,
            rate / 1e6
        )?;
    }
    Ok(())
}
