//! Public-API tests of the real-time risk monitor (`aaiti_risk::monitor`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use aaiti_model::{AccountId, InstrumentId, Price, Qty, RiskEventKind, Scale, UnixNanos};
use aaiti_risk::monitor::{
    BreachAction, MonitorConfig, MonitorError, RiskMonitor, VarMethod, inverse_normal_cdf,
};
use proptest::prelude::*;

const SECOND: u64 = 1_000_000_000;
const Z99: f64 = 2.326_347_874_040_840_8;

/// splitmix64, and normals by Box–Muller: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn config(lambda: f64, window: u32) -> MonitorConfig {
    MonitorConfig {
        ewma_lambda: lambda,
        window,
        warmup_samples: 5,
        ..MonitorConfig::default()
    }
}

/// One interval: each price at 0.5 s into second `t` (0 = no price), then the clock at
/// the end of the second, which closes it.
fn feed(monitor: &mut RiskMonitor, t: u64, prices: &[f64]) -> bool {
    for (i, &p) in prices.iter().enumerate() {
        if p != 0.0 {
            monitor.on_price(
                InstrumentId(i as u32),
                p,
                UnixNanos(t * SECOND + SECOND / 2),
            );
        }
    }
    monitor.on_clock(UnixNanos((t + 1) * SECOND))
}

/// Feeds a price path per instrument (`paths[t][i]`) from second 0.
fn feed_paths(monitor: &mut RiskMonitor, paths: &[Vec<f64>]) {
    monitor.on_clock(UnixNanos(0));
    for (t, prices) in paths.iter().enumerate() {
        assert!(feed(monitor, t as u64, prices));
    }
}

/// Price paths from log returns `returns[t][i]`, starting at 100.
fn paths_from_returns(returns: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = returns.first().map_or(0, Vec::len);
    let mut price = vec![100.0; n];
    let mut paths = vec![price.clone()];
    for r in returns {
        for (p, x) in price.iter_mut().zip(r) {
            *p *= x.exp();
        }
        paths.push(price.clone());
    }
    paths
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()).max(1e-300)
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[test]
fn config_parses_the_documented_example_and_rejects_mistakes() {
    let text = r#"
        interval_ms = 1000
        ewma_lambda = 0.94
        window = 500
        confidence = 0.99
        horizon_s = 60
        warmup_samples = 30
        valuation_places = 8
        breach_on = "max"
        action = "reduce_only"

        [[limits]]
        account = 0
        var_limit = "250000.00"
        action = "halt"

        [[limits]]
        account = 3
        var_limit = "1000"
    "#;
    let config: MonitorConfig = toml::from_str(text).unwrap();
    assert_eq!(config.limits.len(), 2);
    assert_eq!(config.limits[0].action, Some(BreachAction::Halt));
    config.validate().unwrap();
    let defaults: MonitorConfig = toml::from_str("").unwrap();
    assert_eq!(defaults, MonitorConfig::default());
    assert_eq!(
        (
            defaults.interval_ms,
            defaults.ewma_lambda,
            defaults.window,
            defaults.confidence
        ),
        (1_000, 0.94, 500, 0.99)
    );

    let unknown = toml::from_str::<MonitorConfig>("lamda = 0.9").unwrap_err();
    assert!(unknown.to_string().contains("lamda"), "{unknown}");
    let unknown_in_limit =
        toml::from_str::<MonitorConfig>("[[limits]]\naccount = 0\nvar_limit = \"1\"\nx = 1");
    assert!(unknown_in_limit.is_err());

    let bad = |text: &str| {
        toml::from_str::<MonitorConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
    };
    assert!(matches!(
        bad("ewma_lambda = 1.0"),
        MonitorError::Config {
            key: "ewma_lambda",
            ..
        }
    ));
    assert!(matches!(
        bad("confidence = 0.4"),
        MonitorError::Config {
            key: "confidence",
            ..
        }
    ));
    assert!(matches!(
        bad("window = 0"),
        MonitorError::Config { key: "window", .. }
    ));
    assert!(matches!(
        bad("interval_ms = 0"),
        MonitorError::Config {
            key: "interval_ms",
            ..
        }
    ));
    assert!(matches!(
        bad("horizon_s = 0"),
        MonitorError::Config {
            key: "horizon_s",
            ..
        }
    ));
    assert!(matches!(
        bad("valuation_places = 19"),
        MonitorError::Config {
            key: "valuation_places",
            ..
        }
    ));
    assert!(matches!(
        bad("[[limits]]\naccount = 1\nvar_limit = \"10.000000001\""),
        MonitorError::Limit { .. }
    ));
    assert!(matches!(
        bad("[[limits]]\naccount = 1\nvar_limit = \"100000000000\""),
        MonitorError::Limit { .. }
    ));
    assert!(matches!(
        bad("[[limits]]\naccount = 1\nvar_limit = \"-5\""),
        MonitorError::NonPositiveLimit { .. }
    ));
    assert!(matches!(
        bad(
            "[[limits]]\naccount = 1\nvar_limit = \"5\"\n[[limits]]\naccount = 1\nvar_limit = \"6\""
        ),
        MonitorError::DuplicateAccount { .. }
    ));
    let message = bad("ewma_lambda = 1.5").to_string();
    assert!(message.contains("ewma_lambda") && message.contains("0 < ewma_lambda < 1"));
    assert!(matches!(
        RiskMonitor::new(&MonitorConfig::default(), 1_000_000),
        Err(MonitorError::TooLarge { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Correlations
// ---------------------------------------------------------------------------------------

#[test]
fn perfectly_correlated_instruments_give_plus_and_minus_10000_bp() {
    let mut rng = Rng(7);
    let returns: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let r = 0.001 * rng.normal();
            // B moves twice as much as A; C is A's inverse; D has its own noise.
            vec![r, 2.0 * r, -r, 0.001 * rng.normal()]
        })
        .collect();
    let mut m = RiskMonitor::new(&config(0.94, 500), 4).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    let rho = m.correlation();
    assert_eq!(rho.rho_bp(0, 1), 10_000);
    assert_eq!(rho.rho_bp(1, 0), 10_000);
    assert_eq!(rho.rho_bp(0, 2), -10_000);
    assert_eq!(rho.rho_bp(1, 2), -10_000);
    assert_eq!(rho.rho_bp(3, 3), 10_000);
    assert!(rho.rho_bp(0, 3).abs() < 10_000);
    assert_eq!(
        rho.correlated_with(0, 7_000).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn independent_random_walks_have_correlation_near_zero() {
    // λ = 0.999: about 2000 effective samples, so the estimate's standard error is ~2.2 %.
    let mut rng = Rng(42);
    let returns: Vec<Vec<f64>> = (0..5_000)
        .map(|_| (0..3).map(|_| 0.002 * rng.normal()).collect())
        .collect();
    let mut m = RiskMonitor::new(&config(0.999, 500), 3).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let bp = m.correlation().rho_bp(a, b);
        assert!(bp.abs() < 1_000, "rho({a},{b}) = {bp} bp");
    }
    // And the volatility is the one simulated (0.2 % per interval), within 10 %.
    let sigma = m.volatility(InstrumentId(0)).unwrap();
    assert!((sigma / 0.002 - 1.0).abs() < 0.1, "{sigma}");
}

// ---------------------------------------------------------------------------------------
// VaR
// ---------------------------------------------------------------------------------------

#[test]
fn single_position_parametric_var_is_z_sigma_w_sqrt_h() {
    // Returns of constant magnitude r: the (normalised) EWMA variance is exactly r².
    let r = 0.003;
    let returns: Vec<Vec<f64>> = (0..50)
        .map(|t| vec![if t % 2 == 0 { r } else { -r }])
        .collect();
    let mut m = RiskMonitor::new(&config(0.94, 500), 1).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    assert_eq!(m.samples(InstrumentId(0)), 50);
    assert!(close(m.volatility(InstrumentId(0)).unwrap(), r, 1e-9));
    for w in [1_000_000.0, -250_000.0] {
        let var = m.var(&[w]);
        let expected = Z99 * r * f64::abs(w) * 60_f64.sqrt();
        assert!(
            close(var.parametric, expected, 1e-9),
            "{} vs {expected}",
            var.parametric
        );
        assert!(close(var.sigma_interval, r * f64::abs(w), 1e-9));
        assert!(close(m.component_var_parametric()[0], expected, 1e-9));
        assert!(!var.warming_up);
    }
    assert!((inverse_normal_cdf(0.99) - Z99).abs() < 1e-12);
}

#[test]
fn historical_var_is_the_loss_quantile_scaled_by_sqrt_time() {
    // 100 scenarios with returns -0.1 %, -0.2 %, ..., -10 % in a scrambled order.
    let returns: Vec<Vec<f64>> = (0..100_u64)
        .map(|t| vec![-0.001 * ((t * 37) % 100 + 1) as f64])
        .collect();
    let mut m = RiskMonitor::new(&config(0.94, 100), 1).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    assert_eq!(m.scenarios(), 100);
    let w = 10_000.0;
    let var = m.var(&[w]);
    // Losses 10, 20, ..., 1000; 99 % of 100 sorted: the 99th, 990; horizon 60 s.
    let expected = 990.0 * 60_f64.sqrt();
    assert!(close(var.historical, expected, 1e-9), "{}", var.historical);
    assert_eq!(var.scenarios, 100);
    assert!(close(m.component_var_historical()[0], expected, 1e-9));
    // A short position gains in every scenario.
    assert_eq!(m.var(&[-w]).historical, 0.0);
}

#[test]
fn the_window_keeps_only_the_latest_scenarios() {
    // 30 intervals of big losses, then 10 of small ones; a window of 10 forgets the former.
    let returns: Vec<Vec<f64>> = (0..40)
        .map(|t| vec![if t < 30 { -0.05 } else { -0.001 }])
        .collect();
    let mut m = RiskMonitor::new(&config(0.94, 10), 1).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    assert_eq!(m.scenarios(), 10);
    let var = m.var(&[1_000.0]);
    assert!(
        close(var.historical, 1.0 * 60_f64.sqrt(), 1e-9),
        "{}",
        var.historical
    );
}

#[test]
fn components_add_up_and_hedges_reduce_risk() {
    let mut rng = Rng(3);
    let returns: Vec<Vec<f64>> = (0..400)
        .map(|_| {
            let common = rng.normal();
            (0..5)
                .map(|_| 0.001 * (common + 0.5 * rng.normal()))
                .collect()
        })
        .collect();
    let mut m = RiskMonitor::new(&config(0.97, 500), 5).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    let book = [100_000.0, -50_000.0, 20_000.0, 0.0, 70_000.0];
    let var = m.var(&book);
    let sum_p: f64 = m.component_var_parametric().iter().sum();
    let sum_h: f64 = m.component_var_historical().iter().sum();
    assert!(close(sum_p, var.parametric, 1e-9));
    assert!(close(sum_h, var.historical, 1e-9));
    assert_eq!(m.component_var_parametric()[3], 0.0);
    // The short leg hedges: its component is negative, and so is its marginal VaR.
    assert!(m.component_var_parametric()[1] < 0.0);
    // Marginal VaR predicts the change for a small trade.
    let marginal = m.marginal_var_parametric()[0];
    let mut bumped = book;
    bumped[0] += 1.0;
    let bumped_var = m.var(&bumped).parametric;
    assert!(close(bumped_var - var.parametric, marginal, 1e-4));
}

// ---------------------------------------------------------------------------------------
// Engine time, gaps, missing and bad data
// ---------------------------------------------------------------------------------------

#[test]
fn a_gap_is_one_sample_scaled_to_one_interval() {
    let mut m = RiskMonitor::new(&config(0.94, 500), 1).unwrap();
    assert_eq!(m.next_close(), None);
    m.on_price(InstrumentId(0), 100.0, UnixNanos(5 * SECOND + 1));
    assert_eq!(m.next_close(), Some(UnixNanos(6 * SECOND)));
    assert!(m.on_clock(UnixNanos(6 * SECOND)));
    m.on_price(InstrumentId(0), 121.0, UnixNanos(6 * SECOND + 7));
    // 10 000 s later: one close, the return over the 10 000 intervals divided by 100.
    assert!(m.on_clock(UnixNanos(10_006 * SECOND + 3)));
    assert_eq!(m.intervals_closed(), 2);
    assert_eq!(m.next_close(), Some(UnixNanos(10_007 * SECOND)));
    assert!(close(m.last_returns()[0], (1.21_f64).ln() / 100.0, 1e-12));
    assert_eq!(m.samples(InstrumentId(0)), 1);
    // Nothing more until the next boundary; earlier times are ignored.
    assert!(!m.on_clock(UnixNanos(10_006 * SECOND + 999_999_999)));
    assert!(!m.on_clock(UnixNanos(SECOND)));
    assert_eq!(m.intervals_closed(), 2);
}

#[test]
fn a_price_past_the_boundary_belongs_to_the_next_interval() {
    let mut m = RiskMonitor::new(&config(0.94, 500), 1).unwrap();
    m.on_price(InstrumentId(0), 100.0, UnixNanos(SECOND / 2));
    assert!(m.on_clock(UnixNanos(SECOND)));
    m.on_price(InstrumentId(0), 110.0, UnixNanos(SECOND + 1));
    // No on_clock: the price at 2.5 s closes [1 s, 2 s) first, at 110.
    assert!(m.on_price(InstrumentId(0), 200.0, UnixNanos(2 * SECOND + SECOND / 2)));
    assert!(close(m.last_returns()[0], (1.1_f64).ln(), 1e-12));
    assert_eq!(m.latest_price(InstrumentId(0)), Some(200.0));
}

#[test]
fn missing_prices_carry_forward_or_stay_unknown() {
    let mut m = RiskMonitor::new(&config(0.94, 500), 3).unwrap();
    m.on_clock(UnixNanos(0));
    // Instrument 0 moves, 1 is priced once and never again, 2 is never priced.
    for t in 0..40 {
        let p0 = if t % 2 == 0 { 100.0 } else { 101.0 };
        let prices = if t == 0 {
            vec![p0, 50.0, 0.0]
        } else {
            vec![p0, 0.0, 0.0]
        };
        feed(&mut m, t, &prices);
    }
    assert_eq!(m.samples(InstrumentId(0)), 39);
    // Carried forward: 39 zero returns, a known zero volatility (so "unknown" for sizing).
    assert_eq!(m.samples(InstrumentId(1)), 39);
    assert_eq!(m.covariance(InstrumentId(1), InstrumentId(1)), 0.0);
    assert_eq!(m.volatility(InstrumentId(1)), None);
    assert_eq!(m.samples(InstrumentId(2)), 0);
    assert_eq!(m.volatility(InstrumentId(2)), None);
    assert_eq!(m.covariance(InstrumentId(0), InstrumentId(2)), 0.0);
    assert_eq!(m.correlation().rho_bp(0, 2), 0);
    assert_eq!(m.target_qty(100.0, InstrumentId(2), 10.0, 1e9), 0.0);
    // Positions only in instruments without risk data: VaR 0, flagged.
    let var = m.var(&[0.0, 1e6, 1e6]);
    assert_eq!((var.parametric, var.historical), (0.0, 0.0));
    assert!(var.warming_up);
    assert!(m.component_var_parametric().iter().all(|c| *c == 0.0));
    // Out-of-range instruments: zero answers, no panic.
    assert_eq!(m.covariance(InstrumentId(9), InstrumentId(0)), 0.0);
    assert_eq!(m.volatility(InstrumentId(9)), None);
    assert_eq!(m.latest_price(InstrumentId(9)), None);
}

#[test]
fn bad_prices_are_refused_and_counted() {
    let mut m = RiskMonitor::new(&config(0.94, 500), 1).unwrap();
    let ts = UnixNanos(SECOND / 2);
    m.on_price(InstrumentId(0), 100.0, ts);
    for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
        m.on_price(InstrumentId(0), bad, ts);
    }
    m.on_price(InstrumentId(1), 100.0, ts);
    assert_eq!(m.rejected_prices(), 5);
    assert_eq!(m.latest_price(InstrumentId(0)), Some(100.0));
    m.on_price_fixed(InstrumentId(0), Price(-1), ts);
    assert_eq!(m.rejected_prices(), 6);
}

#[test]
fn no_data_and_zero_variance_give_zero_not_nan() {
    let mut m = RiskMonitor::new(&config(0.94, 500), 2).unwrap();
    let var = m.var(&[1e6, -1e6]);
    assert_eq!(
        (var.parametric, var.historical, var.scenarios),
        (0.0, 0.0, 0)
    );
    // Constant prices: valid zero returns.
    feed_paths(&mut m, &vec![vec![10.0, 20.0]; 20]);
    let var = m.var(&[1e6, f64::NAN]);
    assert_eq!(
        (var.parametric, var.historical, var.scenarios),
        (0.0, 0.0, 19)
    );
    assert!(m.marginal_var_parametric().iter().all(|x| *x == 0.0));
    assert_eq!(m.correlation().rho_bp(0, 1), 0);
    assert_eq!(m.var(&[]).parametric, 0.0);
}

// ---------------------------------------------------------------------------------------
// Breaches
// ---------------------------------------------------------------------------------------

#[test]
fn a_breach_is_reported_every_interval_and_journaled_once() {
    let mut config = config(0.94, 500);
    config.breach_on = VarMethod::Parametric;
    config.limits = toml::from_str::<MonitorConfig>(
        "[[limits]]\naccount = 2\nvar_limit = \"100.00\"\naction = \"halt\"",
    )
    .unwrap()
    .limits;
    let r = 0.001;
    let returns: Vec<Vec<f64>> = (0..40)
        .map(|t| vec![if t % 2 == 0 { r } else { -r }])
        .collect();
    let mut m = RiskMonitor::new(&config, 1).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    // VaR = z · 0.001 · w · √60 ≈ 0.01802 · w: 100 at w ≈ 5549.
    let ts = UnixNanos(41 * SECOND);
    let quiet = m.evaluate(AccountId(2), &[5_000.0], ts);
    assert!(quiet.breach.is_none() && !quiet.breach_cleared);
    assert_eq!(quiet.var_limit, Some(100.0));
    assert!(quiet.risk_event().is_none());

    let first = m.evaluate(AccountId(2), &[6_000.0], ts);
    let breach = first.breach.unwrap();
    let expected = Z99 * r * 6_000.0 * 60_f64.sqrt();
    assert_eq!(breach.value, (expected * 1e8).ceil() as i64);
    assert_eq!(breach.limit, 10_000_000_000);
    assert_eq!(breach.action, BreachAction::Halt);
    assert!(breach.first);
    let event = first.risk_event().unwrap();
    assert_eq!(event.kind, RiskEventKind::VarBreach.code());
    assert_eq!((event.account, event.action), (AccountId(2), 2));
    assert_eq!((event.value, event.limit), (breach.value, 10_000_000_000));
    assert_eq!(event.instrument, InstrumentId(u32::MAX));
    aaiti_model::Record::validate(&event).unwrap();

    let again = m.evaluate(AccountId(2), &[-6_000.0], ts);
    assert!(!again.breach.unwrap().first);
    assert!(again.risk_event().is_none());
    let cleared = m.evaluate(AccountId(2), &[0.0], ts);
    assert!(cleared.breach.is_none() && cleared.breach_cleared);
    // Other accounts have no limit.
    let other = m.evaluate(AccountId(1), &[1e9], ts);
    assert!(other.breach.is_none() && other.var_limit.is_none());
    assert_eq!(m.var_limit(AccountId(2)), Some(100.0));
    // The engine fills the account-state fields.
    assert!(other.drawdown.is_none() && other.margin_usage.is_none());
}

// ---------------------------------------------------------------------------------------
// Sizing
// ---------------------------------------------------------------------------------------

#[test]
fn target_qty_is_budget_over_sigma_times_price_capped() {
    let r = 0.002;
    let returns: Vec<Vec<f64>> = (0..10)
        .map(|t| vec![if t % 2 == 0 { r } else { -r }])
        .collect();
    let mut cfg = config(0.94, 500);
    cfg.warmup_samples = 10;
    let mut m = RiskMonitor::new(&cfg, 1).unwrap();
    let mut short = returns.clone();
    short.pop();
    feed_paths(&mut m, &paths_from_returns(&short));
    // 9 returns < warmup 10: unknown.
    assert_eq!(m.target_qty(100.0, InstrumentId(0), 50_000.0, 1e9), 0.0);
    let mut m = RiskMonitor::new(&cfg, 1).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    // 100 per interval at σ 0.2 % of 50 000: 1 unit.
    let qty = m.target_qty(100.0, InstrumentId(0), 50_000.0, 1e9);
    assert!(close(qty, 1.0, 1e-9), "{qty}");
    assert_eq!(m.target_qty(100.0, InstrumentId(0), 50_000.0, 0.25), 0.25);
    assert_eq!(m.target_qty(-1.0, InstrumentId(0), 50_000.0, 1e9), 0.0);
    assert_eq!(m.target_qty(100.0, InstrumentId(0), f64::NAN, 1e9), 0.0);
    let fixed = m.target_qty_fixed(
        250.0,
        InstrumentId(0),
        Price(5_000_000),
        Scale::new(2).unwrap(),
        Scale::new(3).unwrap(),
        Qty(1_000_000),
    );
    assert_eq!(fixed, Qty(2_500));
    let capped = m.target_qty_fixed(
        250.0,
        InstrumentId(0),
        Price(5_000_000),
        Scale::new(2).unwrap(),
        Scale::new(3).unwrap(),
        Qty(1_000),
    );
    assert_eq!(capped, Qty(1_000));
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

#[test]
fn snapshot_round_trip_preserves_every_result() {
    let mut cfg = config(0.94, 50);
    cfg.limits = toml::from_str::<MonitorConfig>("[[limits]]\naccount = 0\nvar_limit = \"1\"")
        .unwrap()
        .limits;
    let mut rng = Rng(11);
    let mut original = RiskMonitor::new(&cfg, 4).unwrap();
    original.on_clock(UnixNanos(0));
    let step = |m: &mut RiskMonitor, rng: &mut Rng, t: u64| {
        let prices: Vec<f64> = (0..4)
            .map(|i| 100.0 + f64::from(i) + rng.normal())
            .collect();
        feed(m, t, &prices)
    };
    for t in 0..80 {
        step(&mut original, &mut rng, t);
    }
    let book = [1e5, -3e4, 2e4, 5e4];
    // Put account 0 into breach, so the flag travels too.
    assert!(
        original
            .evaluate(AccountId(0), &book, UnixNanos(0))
            .breach
            .unwrap()
            .first
    );
    let bytes = postcard::to_allocvec(&original).unwrap();
    let mut restored: RiskMonitor = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(restored, original);
    // Same inputs from here on, bit-identical outputs.
    let mut rng_copy = Rng(rng.0);
    for t in 80..120 {
        let a = step(&mut original, &mut rng, t);
        let b = step(&mut restored, &mut rng_copy, t);
        assert_eq!(a, b);
        let (ra, rb) = (
            original.evaluate(AccountId(0), &book, UnixNanos(t)),
            restored.evaluate(AccountId(0), &book, UnixNanos(t)),
        );
        assert_eq!(ra, rb);
        assert_eq!(ra.var.parametric.to_bits(), rb.var.parametric.to_bits());
        assert!(!ra.breach.unwrap().first, "breach state restored");
        assert_eq!(
            original.component_var_parametric(),
            restored.component_var_parametric()
        );
        assert_eq!(
            original.component_var_historical(),
            restored.component_var_historical()
        );
    }
    assert_eq!(original.correlation(), restored.correlation());
    assert_eq!(
        postcard::to_allocvec(&restored).unwrap(),
        postcard::to_allocvec(&original).unwrap()
    );
    // A truncated snapshot is an error, not a panic.
    assert!(postcard::from_bytes::<RiskMonitor>(&bytes[..bytes.len() / 2]).is_err());
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// A monitor over `n` instruments fed `intervals` of correlated random returns.
fn random_monitor(seed: u64, n: usize, intervals: usize) -> RiskMonitor {
    let mut rng = Rng(seed);
    let loadings: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let returns: Vec<Vec<f64>> = (0..intervals)
        .map(|_| {
            let common = rng.normal();
            loadings
                .iter()
                .map(|l| 0.001 * (l * common + rng.normal()))
                .collect()
        })
        .collect();
    let mut m = RiskMonitor::new(&config(0.97, 200), n).unwrap();
    feed_paths(&mut m, &paths_from_returns(&returns));
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn var_scales_linearly_with_position_size(
        seed in any::<u64>(),
        book in proptest::collection::vec(-1e6..1e6_f64, 4),
        k in 0.01..100.0_f64,
    ) {
        let mut m = random_monitor(seed, 4, 120);
        let base = m.var(&book);
        let scaled_book: Vec<f64> = book.iter().map(|w| w * k).collect();
        let scaled = m.var(&scaled_book);
        prop_assert!(close(scaled.parametric, k * base.parametric, 1e-9));
        prop_assert!(close(scaled.historical, k * base.historical, 1e-9));
    }

    #[test]
    fn parametric_var_of_a_book_is_at_most_the_sum_of_standalone_vars(
        seed in any::<u64>(),
        book in proptest::collection::vec(-1e6..1e6_f64, 5),
    ) {
        let mut m = random_monitor(seed, 5, 150);
        let total = m.var(&book).parametric;
        let mut standalone = 0.0;
        for (i, &w) in book.iter().enumerate() {
            let mut single = vec![0.0; 5];
            single[i] = w;
            standalone += m.var(&single).parametric;
        }
        prop_assert!(total <= standalone * (1.0 + 1e-12) + 1e-9, "{} > {}", total, standalone);
    }

    #[test]
    fn nothing_non_finite_ever_comes_out(
        ops in proptest::collection::vec(
            (0_u32..4, any::<f64>(), 0_u64..5_000_000_000, any::<bool>()),
            1..300,
        ),
        book in proptest::collection::vec(any::<f64>(), 0..5),
    ) {
        let mut m = RiskMonitor::new(&config(0.9, 20), 3).unwrap();
        let mut ts = 0_u64;
        for (instrument, price, step, big_jump) in ops {
            ts += if big_jump { step * 1_000 } else { step };
            // Mostly plausible prices, sometimes arbitrary ones (NaN, inf, 0, negative).
            let price = if instrument == 3 { price } else { 100.0 + (price % 10.0) };
            m.on_price(InstrumentId(instrument), price, UnixNanos(ts));
            let var = m.var(&book);
            for x in [var.parametric, var.historical, var.sigma_interval] {
                prop_assert!(x.is_finite() && x >= 0.0, "{:?}", var);
            }
            let parts = m
                .component_var_parametric()
                .iter()
                .chain(m.marginal_var_parametric())
                .chain(m.component_var_historical());
            for x in parts {
                prop_assert!(x.is_finite());
            }
            for i in 0..3 {
                let q = m.target_qty(1.0, InstrumentId(i), 100.0, 1e12);
                prop_assert!(q.is_finite() && q >= 0.0);
                prop_assert!(m.covariance(InstrumentId(i), InstrumentId(i)).is_finite());
            }
        }
    }
}
