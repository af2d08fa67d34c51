//! The command line of `aaiti-fixload` (the binary only calls [`cli_main`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::{LoadConfig, LoadError, Mix, ResponderConfig, run};

/// Exit status of a run that finished with failed sessions or unanswered requests.
const EXIT_INCOMPLETE: u8 = 1;

/// Exit status when nothing could be measured: bad arguments, connection or logon failure.
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "aaiti-fixload",
    version,
    about = "FIX 4.4 load generator (open or closed loop, latency corrected for coordinated \
             omission) and a trivial responder to measure its floor.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Accept FIX sessions and answer every order request at once with one canned
    /// ExecutionReport. Prints `listening ADDR` first.
    Responder(ResponderArgs),
}

#[derive(Debug, Args)]
struct ResponderArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Its CompID (the TargetCompID the initiators use).
    #[arg(long, default_value = "AAITI")]
    sender: String,
    /// Required Username (553).
    #[arg(long)]
    username: Option<String>,
    /// Required Password (554).
    #[arg(long)]
    password: Option<String>,
    /// Stop after this many seconds and print the counts (default: run until killed).
    #[arg(long, value_parser = seconds)]
    duration: Option<Duration>,
    /// Busy-poll each connection (non-blocking reads in a spin loop) instead of blocking
    /// in `read`: the floor of a system under test that spins too.
    #[arg(long)]
    spin: bool,
    /// Pin the connection threads to this core.
    #[arg(long)]
    core: Option<usize>,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// The acceptor, HOST:PORT.
    #[arg(long, required = true)]
    connect: Option<String>,
    /// SenderCompID: `DESK` gives DESK, DESK2, DESK3...; `{n}` in it is replaced by the
    /// session number.
    #[arg(long, default_value = "DESK")]
    sender: String,
    /// TargetCompID.
    #[arg(long, default_value = "AAITI")]
    target: String,
    /// Username (553) for the Logon.
    #[arg(long)]
    username: Option<String>,
    /// Password (554) for the Logon.
    #[arg(long)]
    password: Option<String>,
    /// Do not send ResetSeqNumFlag (141=Y) in the Logon.
    #[arg(long)]
    no_reset: bool,
    /// HeartBtInt, seconds.
    #[arg(long, default_value_t = 30)]
    heartbeat: u32,
    /// Sessions (connections).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Threads driving the sessions (at most the number of cores).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Orders per second per session, open loop; 0 = closed loop at the maximum rate.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Closed loop: requests in flight per session.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value = "10", value_parser = seconds)]
    duration: Duration,
    /// Seconds sent but not measured, first.
    #[arg(long, default_value = "2", value_parser = seconds)]
    warmup: Duration,
    /// Seconds to wait for the last answers.
    #[arg(long, default_value = "5", value_parser = seconds)]
    drain_timeout: Duration,
    /// Seconds allowed for connecting and for the Logon exchange, each.
    #[arg(long, default_value = "5", value_parser = seconds)]
    logon_timeout: Duration,
    /// Order mix, relative weights.
    #[arg(long, default_value = "new=80,cancel=10,replace=10", value_parser = mix)]
    mix: Mix,
    /// Symbol (55).
    #[arg(long, default_value = "BTCUSDT")]
    symbol: String,
    /// SecurityExchange (207).
    #[arg(long, default_value = "binance")]
    exchange: String,
    /// Account (1).
    #[arg(long, default_value = "paper-1")]
    account: String,
    /// Reference price: buys rest below it, sells above.
    #[arg(long, default_value = "50000")]
    price: String,
    /// Extra ticks of random distance from the reference price (beyond one tick).
    #[arg(long, default_value_t = 100)]
    price_jitter_ticks: u32,
    /// Tick size.
    #[arg(long, default_value = "0.01")]
    tick: String,
    /// Order quantity.
    #[arg(long, default_value = "0.001")]
    qty: String,
    /// Seed of the order generator.
    #[arg(long, default_value_t = 0x00A4_17E5_EED0)]
    seed: u64,
    /// Never sleep between sends (spin, yielding the core).
    #[arg(long)]
    busy_poll: bool,
    /// Pin the driving threads to these cores (comma-separated; thread i on the i-th,
    /// round robin).
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    /// Write the corrected latency distribution here (.hgrm, microseconds).
    #[arg(long)]
    hgrm: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

fn mix(text: &str) -> Result<Mix, String> {
    text.parse().map_err(|error: LoadError| error.to_string())
}

fn resolve(text: &str) -> Result<SocketAddr, LoadError> {
    text.to_socket_addrs()
        .map_err(|source| LoadError::Io {
            what: format!("resolving {text}"),
            source,
        })?
        .next()
        .ok_or_else(|| LoadError::Config(format!("{text} resolves to no address")))
}

/// Parses the command line, runs, prints, and gives the exit status (see the module docs).
pub fn cli_main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Some(Command::Responder(args)) => responder(&args, &mut out),
        None => load(&cli.load, &mut out),
    };
    match result.and_then(|code| out.flush().map(|()| code).map_err(write_error)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let _ = writeln!(io::stderr(), "aaiti-fixload: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn write_error(source: io::Error) -> LoadError {
    LoadError::Io {
        what: "writing the report".to_owned(),
        source,
    }
}

fn load(args: &LoadArgs, out: &mut dyn Write) -> Result<u8, LoadError> {
    let connect = args.connect.as_deref().unwrap_or("127.0.0.1:9878");
    let mut config = LoadConfig::new(resolve(connect)?);
    config.sender = args.sender.clone();
    config.target = args.target.clone();
    config.username = args.username.clone();
    config.password = args.password.clone();
    config.reset_seq_num = !args.no_reset;
    config.heartbeat_secs = args.heartbeat;
    config.sessions = args.sessions;
    config.threads = args.threads;
    config.rate = args.rate;
    config.window = args.window;
    config.duration = args.duration;
    config.warmup = args.warmup;
    config.drain_timeout = args.drain_timeout;
    config.connect_timeout = args.logon_timeout;
    config.logon_timeout = args.logon_timeout;
    config.mix = args.mix;
    config.symbol = args.symbol.clone();
    config.exchange = args.exchange.clone();
    config.account = args.account.clone();
    config.price = args.price.clone();
    config.price_jitter_ticks = args.price_jitter_ticks;
    config.tick = args.tick.clone();
    config.qty = args.qty.clone();
    config.seed = args.seed;
    config.busy_poll = args.busy_poll;
    config.cores.clone_from(&args.cores);
    let report = run(&config)?;
    if let Some(path) = &args.hgrm {
        let io = |source| LoadError::Io {
            what: format!("writing {}", path.display()),
            source,
        };
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        report.write_hgrm(&mut file).map_err(io)?;
        file.flush().map_err(io)?;
    }
    if args.json {
        writeln!(out, "{}", report.to_json()).map_err(write_error)?;
    } else {
        report.write_text(out).map_err(write_error)?;
    }
    let complete = report.errors.is_empty() && report.unacknowledged == 0;
    Ok(if complete { 0 } else { EXIT_INCOMPLETE })
}

fn responder(args: &ResponderArgs, out: &mut dyn Write) -> Result<u8, LoadError> {
    let mut config = ResponderConfig::new(resolve(&args.listen)?);
    config.comp_id = args.sender.clone();
    config.username = args.username.clone();
    config.password = args.password.clone();
    config.spin = args.spin;
    config.core = args.core;
    let handle = config.start()?;
    // Scripts read this line to learn the port.
    writeln!(out, "listening {}", handle.local_addr()).map_err(write_error)?;
    out.flush().map_err(write_error)?;
    match args.duration {
        Some(duration) => std::thread::sleep(duration),
        // Until the process is killed.
        None => loop {
            std::thread::park();
        },
    }
    let counts = handle.stop();
    writeln!(
        out,
        "connections {}, logons {}, new {}, cancel {}, replace {}, test requests {}, resend requests {}",
        counts.connections,
        counts.logons,
        counts.new_orders,
        counts.cancels,
        counts.replaces,
        counts.test_requests,
        counts.resend_requests
    )
    .map_err(write_error)?;
    Ok(0)
}
