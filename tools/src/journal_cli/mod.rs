//! `aaiti-journal`: inspection of AAITI journals (the binary's logic; `src/bin/aaiti-journal.rs`
//! only parses arguments and calls [`run`]).
//!
//! Every command takes a data directory (holding `journal/`) or a journal directory (holding
//! `journal-*.seg`) and opens it read-only through [`aaiti_journal::JournalReader`], which
//! CRC-checks every record and never modifies a file (a torn tail is reported, not cut).
//! Prices and quantities are shown at their instrument's scale from the instrument registry of
//! the embedded default configuration (or `--config FILE`).
//!
//! | command | what |
//! |---|---|
//! | `stats` (`info`) | segments, sizes, sequence and time ranges, counts by kind, rates |
//! | `dump` | records as text or JSON lines, filtered |
//! | `tail [-f]` | the last records; with `-f`, follows a live writer until interrupted |
//! | `verify` | checks everything; exit 0 clean, 1 problems, 2 usage or I/O errors |
//! | `order <id>` | one order's lifecycle with the time between steps |
//! | `latency` | per-stage latency percentiles, optional `.hgrm` files |
//! | `export` | CSV or JSON lines for analysis |
//!
//! Exit codes for every command: 0 success, 1 when the journal's contents are at fault (bad
//! data, not a journal, or `verify` found problems), 2 for usage, configuration and I/O errors.

mod dump;
mod error;
mod filter;
mod latency;
mod order;
mod render;
mod source;
mod stats;
mod time;
mod verify;

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use error::{CliError, EXIT_PROBLEMS, EXIT_USAGE};
pub use filter::{Filter, KindSel, OrderRef};
pub use render::{JsonItem, JsonRecord, Renderer};
pub use source::{open_reader, resolve_journal_dir};
pub use time::{format_rfc3339, parse_time};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "aaiti-journal",
    version,
    about = "Inspect AAITI journals: stats, dump, tail, verify, order lifecycles, latency, export.",
    long_about = "Inspect AAITI journals. Every command takes a data directory (holding journal/) \
                  or a journal directory (holding journal-*.seg files) and never modifies it.\n\n\
                  Exit codes: 0 success, 1 the journal's contents are at fault (corrupt, not a \
                  journal, or problems found by verify), 2 usage, configuration or I/O errors."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// Configuration file whose instrument list names and scales prices (default: the
    /// configuration embedded in the engine).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Never show progress bars (they appear on stderr only when it is a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Segments, sizes, sequence and time ranges, record counts by kind, rates.
    #[command(visible_alias = "info")]
    Stats(StatsArgs),
    /// Records as text or JSON lines, filtered.
    Dump(DumpArgs),
    /// The last records; with -f, follow a live journal until interrupted.
    Tail(TailArgs),
    /// Check CRCs, headers, sequence continuity (journal and per stream), record contents.
    Verify(VerifyArgs),
    /// One order's lifecycle (commands, risk decisions, events, FIX messages) with latencies.
    Order(OrderArgs),
    /// Per-stage latency percentiles from record timestamps.
    Latency(LatencyArgs),
    /// Records as CSV or JSON lines for analysis (pandas: read_csv / read_json(lines=True)).
    Export(ExportArgs),
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Record filters.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterArgs {
    /// Record kinds (comma-separated): book_delta, trade, top_of_book, feed_event, book_check,
    /// order_command, order_event, risk_event, signal, control, blob.
    #[arg(long, value_name = "KIND[,KIND..]")]
    pub kind: Vec<String>,
    /// Instrument: symbol (BTCUSDT), venue:symbol, or registry id.
    #[arg(long, value_name = "SYMBOL|ID")]
    pub instrument: Option<String>,
    /// Account id.
    #[arg(long, value_name = "ID")]
    pub account: Option<u32>,
    /// Order: engine order id or client order id (order commands, events, risk events).
    #[arg(long, value_name = "ID")]
    pub order: Option<String>,
    /// First journal sequence (inclusive).
    #[arg(long, value_name = "SEQ")]
    pub from_seq: Option<u64>,
    /// Last journal sequence (inclusive).
    #[arg(long, value_name = "SEQ")]
    pub to_seq: Option<u64>,
    /// Earliest receive time (inclusive): RFC 3339 or nanoseconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from_time: Option<u64>,
    /// Latest receive time (inclusive): RFC 3339 or nanoseconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to_time: Option<u64>,
}

/// `dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// Filters.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

/// `tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// Records to show from the end (before following, with -f).
    #[arg(short = 'n', long, default_value_t = 10)]
    pub lines: u64,
    /// Keep printing records as they are appended, until interrupted (Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Filters (applied to the records shown).
    #[command(flatten)]
    pub filter: FilterArgs,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Most problems to list (all are counted).
    #[arg(long, default_value_t = 100)]
    pub max_problems: usize,
}

/// `order`.
#[derive(Debug, Args)]
pub struct OrderArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// Engine order id or client order id.
    pub id: String,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// Only stages whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub stage: Option<String>,
    /// Write the selected stage's percentile distribution (HdrHistogram `.hgrm` text, values
    /// in microseconds) to FILE; the selection (see --stage) must be exactly one stage.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write every selected stage's distribution to `DIR/<stage>.hgrm`.
    #[arg(long, value_name = "DIR")]
    pub hgrm_dir: Option<PathBuf>,
    /// One JSON object instead of text (values in nanoseconds).
    #[arg(long)]
    pub json: bool,
    /// Filters (applied before measuring).
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row; one record kind per file.
    Csv,
    /// JSON lines (the `dump --json` objects).
    Jsonl,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Data directory or journal directory.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Output file (default: standard output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Filters (`--kind` is required for CSV: exactly one kind).
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// What a command needs besides its arguments.
pub(crate) struct Context {
    pub(crate) renderer: Renderer,
    /// Progress bars wanted (still only shown when stderr is a terminal).
    pub(crate) progress: bool,
}

impl Context {
    fn filter(&self, args: &FilterArgs) -> Result<Filter, CliError> {
        let instrument = args
            .instrument
            .as_deref()
            .map(|text| filter::parse_instrument(text, self.renderer.registry()))
            .transpose()?;
        Ok(Filter {
            kinds: filter::parse_kinds(&args.kind)?,
            instrument,
            account: args.account.map(aaiti_model::AccountId),
            order: args.order.as_deref().map(OrderRef::new),
            from_seq: args.from_seq,
            to_seq: args.to_seq,
            from_time: args.from_time,
            to_time: args.to_time,
        })
    }
}

/// Runs `cli`, writing results to `out` (progress and diagnostics go to stderr). Returns the
/// exit code of a command that completed: 0, or [`EXIT_PROBLEMS`] when `verify` found
/// problems.
///
/// # Errors
///
/// [`CliError`]; its [`exit_code`](CliError::exit_code) says how the process should exit.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<u8, CliError> {
    let loaded = aaiti_core::config::load(cli.config.as_deref())?;
    let ctx = Context {
        renderer: Renderer::new(loaded.registry),
        progress: !cli.no_progress,
    };
    match &cli.command {
        Command::Stats(args) => {
            let reader = source::open_reader(&args.path, ctx.progress)?;
            stats::run(&reader, &ctx, args.json, out)?;
            Ok(0)
        }
        Command::Dump(args) => {
            let reader = source::open_reader(&args.path, ctx.progress)?;
            let filter = ctx.filter(&args.filter)?;
            // A bar would tear through records printed on the same terminal.
            let progress = ctx.progress && !std::io::stdout().is_terminal();
            dump::dump(&reader, &ctx, &filter, args.json, args.limit, progress, out)?;
            Ok(0)
        }
        Command::Tail(args) => {
            let filter = ctx.filter(&args.filter)?;
            dump::tail(
                &args.path,
                &ctx,
                &filter,
                args.lines,
                args.follow,
                args.json,
                out,
            )?;
            Ok(0)
        }
        Command::Verify(args) => verify::run(&args.path, &ctx, args.json, args.max_problems, out),
        Command::Order(args) => {
            let reader = source::open_reader(&args.path, ctx.progress)?;
            order::run(&reader, &ctx, &OrderRef::new(&args.id), args.json, out)?;
            Ok(0)
        }
        Command::Latency(args) => {
            let reader = source::open_reader(&args.path, ctx.progress)?;
            let filter = ctx.filter(&args.filter)?;
            latency::run(&reader, &ctx, &filter, args, out)?;
            Ok(0)
        }
        Command::Export(args) => {
            let reader = source::open_reader(&args.path, ctx.progress)?;
            let filter = ctx.filter(&args.filter)?;
            dump::export(
                &reader,
                &ctx,
                &filter,
                args.format,
                args.out.as_deref(),
                out,
            )?;
            Ok(0)
        }
    }
}
