//! Risk monitor benchmarks, 50 instruments, window 500, with baselines in the same run:
//!
//! * `var`: one VaR recomputation (parametric with components and marginals, plus
//!   historical simulation over 500 scenarios with its components), as `evaluate` runs it
//!   per account per interval; and the same with a window of 1 (≈ the parametric part).
//!   Baseline: historical VaR the naive way (losses collected into a new `Vec` and fully
//!   sorted per call).
//! * `close`: the interval close (`on_clock` when a boundary passes: 50 log returns, the
//!   EWMA update of the 50×50 covariance, a scenario-ring slot, the correlation matrix in
//!   basis points). Baseline: recomputing the covariance from the full 500-scenario window
//!   (500 × 50 × 50 products) and the correlation matrix from it, every interval.
//! * `on_price`: the per-tick call, timed in batches of 1000 calls (a TSC read costs more
//!   than one call); figures are per call.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-monitor cargo bench -p aaiti-risk --bench var`
//! (about 1 s once built). Each sample is the `quanta` TSC delta around one operation (one
//! batch for `on_price`), so it includes one clock read (~10–20 ns); percentiles from an
//! HDR histogram. Inputs come from a deterministic one-factor random walk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark binary: fails loudly, prints its results"
)]

use std::hint::black_box;

use aaiti_model::{InstrumentId, UnixNanos};
use aaiti_risk::monitor::{CorrelationMatrix, MonitorConfig, RiskMonitor};
use hdrhistogram::Histogram;
use quanta::Clock;

const N: usize = 50;
const WINDOW: u32 = 500;
const SECOND: u64 = 1_000_000_000;

/// splitmix64 with Box–Muller normals.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// One-factor market: each instrument's log return is `0.001·(βᵢ·f + εᵢ)`.
struct Market {
    rng: Rng,
    beta: Vec<f64>,
    prices: Vec<f64>,
    returns: Vec<f64>,
}

impl Market {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let beta = (0..N).map(|_| 0.5 + rng.uniform()).collect();
        Self {
            rng,
            beta,
            prices: (0..N).map(|i| 10.0 + i as f64).collect(),
            returns: vec![0.0; N],
        }
    }

    fn step(&mut self) {
        let f = self.rng.normal();
        for ((p, r), b) in self
            .prices
            .iter_mut()
            .zip(&mut self.returns)
            .zip(&self.beta)
        {
            *r = 0.001 * (b * f + self.rng.normal());
            *p *= r.exp();
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn line(name: &str, h: &Histogram<u64>, unit_divisor: f64) {
    let q = |p: f64| h.value_at_quantile(p) as f64 / unit_divisor;
    println!(
        "{name:<44} p50 {:>9.3} µs  p99 {:>9.3} µs  mean {:>9.3} µs  (n = {})",
        q(0.5) / 1_000.0,
        q(0.99) / 1_000.0,
        h.mean() / unit_divisor / 1_000.0,
        h.len()
    );
}

/// A monitor fed `WINDOW + 100` intervals (the scenario ring is full).
fn warm_monitor(window: u32, market: &mut Market, t: &mut u64) -> RiskMonitor {
    let config = MonitorConfig {
        window,
        ..MonitorConfig::default()
    };
    let mut monitor = RiskMonitor::new(&config, N).expect("config");
    monitor.on_clock(UnixNanos(*t * SECOND));
    for _ in 0..WINDOW + 100 {
        market.step();
        feed(&mut monitor, market, *t);
        *t += 1;
        assert!(monitor.on_clock(UnixNanos(*t * SECOND)));
    }
    monitor
}

fn feed(monitor: &mut RiskMonitor, market: &Market, t: u64) {
    for (i, &p) in market.prices.iter().enumerate() {
        monitor.on_price(
            InstrumentId(i as u32),
            p,
            UnixNanos(t * SECOND + 1 + i as u64),
        );
    }
}

fn main() {
    let clock = Clock::new();
    let mut market = Market::new(2024);
    let mut t = 1_700_000_000_u64;
    let mut monitor = warm_monitor(WINDOW, &mut market, &mut t);
    let mut monitor_w1 = warm_monitor(1, &mut Market::new(2024), &mut t.clone());
    let book: Vec<f64> = (0..N)
        .map(|i| {
            if i % 3 == 0 {
                -40_000.0
            } else {
                25_000.0 + 1_000.0 * i as f64
            }
        })
        .collect();
    println!("risk monitor, {N} instruments, window {WINDOW} (shared 2-core VM: noisy)");

    // --- VaR recomputation -----------------------------------------------------------
    let runs = 20_000;
    let mut h_var = histogram();
    let mut h_var_w1 = histogram();
    let mut sink = 0.0;
    for _ in 0..1_000 {
        sink += monitor.var(black_box(&book)).parametric;
    }
    for _ in 0..runs {
        let start = clock.raw();
        let v = monitor.var(black_box(&book));
        let end = clock.raw();
        sink += v.parametric + v.historical;
        h_var.saturating_record(clock.delta_as_nanos(start, end).max(1));
        let start = clock.raw();
        let v = monitor_w1.var(black_box(&book));
        let end = clock.raw();
        sink += v.parametric;
        h_var_w1.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    // Baseline: naive historical VaR over the same 500 scenarios (kept here as rows).
    let mut scenarios: Vec<Vec<f64>> = Vec::new();
    let mut base_market = Market::new(7);
    for _ in 0..WINDOW {
        base_market.step();
        scenarios.push(base_market.returns.clone());
    }
    let mut h_naive_hist = histogram();
    for _ in 0..runs / 4 {
        let start = clock.raw();
        let mut losses: Vec<f64> = scenarios
            .iter()
            .map(|s| {
                -s.iter()
                    .zip(black_box(&book))
                    .map(|(r, w)| r * w)
                    .sum::<f64>()
            })
            .collect();
        losses.sort_by(f64::total_cmp);
        let rank = ((0.99 * losses.len() as f64) - 1e-9).ceil() as usize;
        let var = losses[rank - 1].max(0.0) * 60_f64.sqrt();
        let end = clock.raw();
        sink += var;
        h_naive_hist.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }

    // --- Interval close vs full-window covariance --------------------------------------
    let closes = 20_000;
    let mut h_close = histogram();
    for _ in 0..closes {
        market.step();
        feed(&mut monitor, &market, t);
        t += 1;
        let start = clock.raw();
        let closed = monitor.on_clock(UnixNanos(t * SECOND));
        let end = clock.raw();
        assert!(closed);
        h_close.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    sink += f64::from(monitor.correlation().rho_bp(0, 1));
    let mut h_naive_cov = histogram();
    let mut cov = vec![0.0; N * N];
    let mut corr = CorrelationMatrix::identity(N);
    for k in 0..2_000 {
        // The ring moves by one scenario per interval, as in the monitor.
        base_market.step();
        scenarios[k % WINDOW as usize].copy_from_slice(&base_market.returns);
        let start = clock.raw();
        cov.fill(0.0);
        for s in &scenarios {
            for (row, &ra) in cov.chunks_exact_mut(N).zip(s) {
                for (c, &rb) in row.iter_mut().zip(s) {
                    *c += ra * rb;
                }
            }
        }
        let scale = 1.0 / f64::from(WINDOW);
        for c in &mut cov {
            *c *= scale;
        }
        corr.refresh_from_covariance(black_box(&cov));
        let end = clock.raw();
        h_naive_cov.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    sink += f64::from(corr.rho_bp(0, 1));

    // --- on_price ----------------------------------------------------------------------
    let batch = 1_000_u64;
    let mut h_price = histogram();
    let ts = UnixNanos(t * SECOND + 10);
    let mut price = 100.0;
    for b in 0..3_000_u64 {
        let start = clock.raw();
        for k in 0..batch {
            price += 0.01;
            let instrument = InstrumentId(((b + k) % N as u64) as u32);
            black_box(monitor.on_price(instrument, black_box(price), ts));
        }
        let end = clock.raw();
        // Picoseconds per call, so the histogram keeps sub-ns resolution.
        h_price.saturating_record((clock.delta_as_nanos(start, end) * 1_000 / batch).max(1));
    }

    println!("VaR recomputation (parametric + historical):");
    line("  var(), 50 instr, window 500", &h_var, 1.0);
    line("  var(), 50 instr, window 1 (≈ parametric)", &h_var_w1, 1.0);
    line(
        "  baseline: naive historical (alloc + sort)",
        &h_naive_hist,
        1.0,
    );
    println!("interval close:");
    line("  on_clock close (EWMA 50×50 + ring + corr)", &h_close, 1.0);
    line(
        "  baseline: full-window cov (500×50×50)+corr",
        &h_naive_cov,
        1.0,
    );
    println!("per tick:");
    println!(
        "  {:<42} p50 {:>9.2} ns  p99 {:>9.2} ns  (per call, batches of {batch})",
        "on_price",
        h_price.value_at_quantile(0.5) as f64 / 1_000.0,
        h_price.value_at_quantile(0.99) as f64 / 1_000.0,
    );
    let ratio = |a: &Histogram<u64>, b: &Histogram<u64>| {
        a.value_at_quantile(0.5) as f64 / b.value_at_quantile(0.5) as f64
    };
    println!(
        "ratios (p50): naive covariance / EWMA close = {:.0}x; naive historical / historical \
         part of var() = {:.1}x",
        ratio(&h_naive_cov, &h_close),
        h_naive_hist.value_at_quantile(0.5) as f64
            / (h_var.value_at_quantile(0.5) as f64 - h_var_w1.value_at_quantile(0.5) as f64)
                .max(1.0),
    );
    black_box(sink);
}
