//! Loopback round trip NewOrderSingle -> ExecutionReport through the whole engine, beside the
//! load generator's own floor, in one run:
//!
//! 1. the floor: `aaiti-fixload` against its trivial responder (each order answered at once
//!    with a canned ExecutionReport), twice: blocking in `read` (the trivial
//!    responder, whose every answer waits for a thread wake-up), and busy-polling on the
//!    engine's core (the same placement and wait strategy as the engine: the strict floor);
//! 2. the engine: the same generator against `aaiti run`'s FIX gateway (session layer,
//!    dictionary, decode, journal of the command, order manager, pre-trade risk, paper
//!    venue, journal of the order events, desk stage, execution report), journal durability
//!    `none`, replaying the bundled BTCUSDT recording at its recorded pace meanwhile.
//!
//! Open loop at 1 k and 10 k orders/s (latency from each order's intended send time, so
//! coordinated omission is corrected), then closed loop at the maximum rate. The generator
//! is pinned to the cores the engine does not use and busy-polls there. Orders rest away from the market (the
//! recording trades between 61 824 and 61 856; orders are 1 tick to $1000 from 61 840, so
//! a few cross), half of them canceled, so the engine's books of open orders stay bounded.
//!
//! `cargo bench -p aaiti-benches --bench fix_roundtrip` (`-- --quick`: 3 s per run;
//! `AAITI_BENCH_HELPERS=pinned`: the engine's helper threads on its core too).

#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark prints its figures"
)]

use std::net::SocketAddr;
use std::time::Duration;

use aaiti_core::config::{self, DEFAULT_CONFIG};
use aaiti_core::engine::{self, RunOptions};
use aaiti_feeds::replay::Pace;
use aaiti_tools::fixload::{self, LoadConfig, LoadReport, Mix, ResponderConfig, Summary};

fn load(
    connect: SocketAddr,
    rate: f64,
    seconds: u64,
    credentials: bool,
    cores: &[usize],
) -> anyhow::Result<LoadReport> {
    let mut config = LoadConfig::new(connect);
    // The generator has its cores to itself: it spins between sends rather than sleeping,
    // so a core waking from idle (slow on this VM) is not part of any figure.
    config.cores = cores.to_vec();
    config.busy_poll = true;
    config.rate = rate;
    config.window = 32;
    config.duration = Duration::from_secs(seconds);
    config.warmup = Duration::from_secs(2);
    config.mix = Mix {
        new: 50,
        cancel: 50,
        replace: 0,
    };
    config.account = "desk-1".to_owned();
    config.price = "61840".to_owned();
    config.price_jitter_ticks = 100_000;
    if credentials {
        config.username = Some("desk".to_owned());
        config.password = Some("desk-demo".to_owned());
    }
    fixload::run(&config).map_err(|error| anyhow::anyhow!("load run against {connect}: {error}"))
}

fn row(label: &str, report: &LoadReport) -> Summary {
    let s = report.latency_summary();
    println!(
        "{label:<34} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>11.0} {:>7}",
        s.p50_ns as f64 / 1e3,
        s.p90_ns as f64 / 1e3,
        s.p99_ns as f64 / 1e3,
        s.p999_ns as f64 / 1e3,
        s.max_ns as f64 / 1e3,
        report.throughput,
        report.rejected,
    );
    s
}

/// Rejections are answered faster than acceptances: a run with any is not the figure
/// asked for, and says so.
fn rejects(label: &str, report: &LoadReport) {
    if report.rejected > 0 {
        println!("  WARNING: {label} rejected orders; its latencies mix in rejections");
    }
    for (reason, count) in &report.rejects {
        println!("  {label} rejects: {count} {reason}");
    }
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 3 } else { 10 };
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>10} {:>10} {:>11} {:>7}",
        "run (latency us)", "p50", "p90", "p99", "p99.9", "max", "acks/s", "rejects"
    );

    // The engine (and the spinning responder) on the first core, the generator on the rest.
    let cores = aaiti_core::sys::available_cores();
    let first_core = cores.first().copied().unwrap_or(0);
    let generator_cores: Vec<usize> = cores.iter().copied().skip(1).collect();

    // 1. The floors, with nothing else running.
    let mut floors = Vec::new();
    let mut floor_max = Vec::new();
    for (name, spin) in [("blocking", false), ("spinning", true)] {
        let mut responder = ResponderConfig::new("127.0.0.1:0".parse()?);
        responder.spin = spin;
        responder.core = spin.then_some(first_core);
        let responder = responder.start()?;
        let address = responder.local_addr();
        let mut at_rates = Vec::new();
        for rate in [1_000.0, 10_000.0] {
            at_rates.push(row(
                &format!("floor {name}, open {}/s", rate as u64),
                &load(address, rate, seconds, false, &generator_cores)?,
            ));
        }
        let max = load(address, 0.0, seconds, false, &generator_cores)?;
        row(&format!("floor {name}, closed (max)"), &max);
        floors.push((name, at_rates));
        floor_max.push((name, max.throughput));
        let _ = responder.stop();
    }

    // 2. The engine on one core (one thread runs every source and stage, spinning), so the
    //    load generator has the other core to itself, as the responder's pair had.
    let data = std::env::temp_dir().join(format!("aaiti-bench-fix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let text = DEFAULT_CONFIG
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1)
        .replacen("latency_us = 1000", "latency_us = 0", 1)
        .replace("throttle_per_minute = 1000", "throttle_per_minute = 0")
        .replacen("orders_per_minute = 1000", "orders_per_minute = 0", 1)
        .replacen("max_open_orders = 500", "max_open_orders = 65536", 1)
        .replacen(
            "price_band_bps = 500\nmax_open_orders = 200",
            "price_band_bps = 0\nmax_open_orders = 0",
            1,
        )
        .replacen(
            "max_gross_exposure = \"2000000\"",
            "max_gross_exposure = \"none\"",
            1,
        )
        .replacen(
            "max_net_exposure = \"1000000\"",
            "max_net_exposure = \"none\"",
            1,
        )
        .replacen("max_position = \"10\"", "max_position = \"none\"", 1)
        // Resting orders reserve margin: a desk account deep enough for every one of them.
        .replacen(
            "name = \"desk-1\"\naccount_type = \"paper\"\nmargin_mode = \"cross\"\nbalances = { USDT = \"100000\" }",
            "name = \"desk-1\"\naccount_type = \"paper\"\nmargin_mode = \"cross\"\nbalances = { USDT = \"1000000000\" }",
            1,
        )
        .replacen(
            "max_drawdown_bps = 1000",
            "max_drawdown_bps = 1000\nmax_concentration_bps = 0\nmax_correlated_exposure = \"none\"",
            1,
        );
    if !text.contains("USDT = \"1000000000\"") {
        anyhow::bail!("the default configuration changed: update this benchmark's edits");
    }
    let path = data.with_extension("toml");
    std::fs::create_dir_all(&data)?;
    std::fs::write(&path, text)?;
    let loaded = config::load(Some(&path))?;
    let options = RunOptions {
        speed: Some(Pace::Recorded),
        data_dir: Some(data.clone()),
        cores: Some(vec![first_core]),
        ..RunOptions::default()
    };
    // The engine's helper threads (journal maintenance, model loader, admin socket) are left
    // to the OS, as `aaiti run` leaves them (the placement pins pipeline threads only): they
    // take some time on the generator's core. `AAITI_BENCH_HELPERS=pinned` confines them to
    // the engine's core (they inherit this thread's affinity), as under
    // `taskset -c 0 aaiti run`: the whole engine on one core.
    let helpers_pinned = std::env::var("AAITI_BENCH_HELPERS").is_ok_and(|v| v == "pinned");
    if helpers_pinned {
        let _ = aaiti_core::sys::pin_current_thread(first_core);
    }
    let started = engine::start(&loaded, &options)?;
    let engine_address = started
        .fix_address
        .ok_or_else(|| anyhow::anyhow!("no gateway"))?;
    // Let the replayed book become valid first (orders on an invalid book are refused).
    std::thread::sleep(Duration::from_secs(3));
    let mut engine_p50 = Vec::new();
    for rate in [1_000.0, 10_000.0] {
        let report = load(engine_address, rate, seconds, true, &generator_cores)?;
        let engine = row(&format!("engine, open loop {}/s", rate as u64), &report);
        rejects("engine", &report);
        engine_p50.push((rate, engine.p50_ns));
    }
    let engine_max = load(engine_address, 0.0, seconds, true, &generator_cores)?;
    row("engine, closed loop (max rate)", &engine_max);
    rejects("engine", &engine_max);
    println!(
        "engine placement: {} pipeline thread(s) on core {first_core}, helper threads {}; \
         generator on cores {generator_cores:?}",
        started.plan.threads.len(),
        if helpers_pinned {
            format!("on core {first_core}")
        } else {
            "anywhere".to_owned()
        }
    );
    for (name, at_rates) in &floors {
        for ((rate, engine), floor) in engine_p50.iter().zip(at_rates) {
            println!(
                "p50 engine / {name} floor at {}/s: {:.2}x (goal <= 1.2x)",
                *rate as u64,
                *engine as f64 / floor.p50_ns.max(1) as f64
            );
        }
    }
    let floor_max: Vec<String> = floor_max
        .iter()
        .map(|(name, throughput)| format!("{name} floor {throughput:.0}"))
        .collect();
    println!(
        "max rate per session: engine {:.0} orders/s; {} (goal >= 150000)",
        engine_max.throughput,
        floor_max.join(", ")
    );
    started.running.stop_handle().request_stop();
    let finished = started.wait();
    if finished.report.failed {
        anyhow::bail!("the engine failed during the benchmark");
    }
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(&path);
    Ok(())
}
