//! `aaiti features` export on the bundled Binance recording, checked against an independent
//! run: the same records decoded straight from the recording (no pipeline, no book stage),
//! fed by hand to a `Market` and a `FeatureEngine`; forward returns recomputed from the
//! samples' mids.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::BufReader;
use std::path::PathBuf;

use aaiti_core::config;
use aaiti_core::market::Market;
use aaiti_core::replay::{BUNDLED_BINANCE_BTCUSDT, BUNDLED_BINANCE_BTCUSDT_NAME, ReplayVenue};
use aaiti_core::signals::features::export::{ExportError, ExportOptions, export};
use aaiti_core::signals::features::{FeatureEngine, FeatureSpec};
use aaiti_feeds::replay::RecordingReader;
use aaiti_feeds::{BinanceFeed, FeedConfig, FeedHandler, RecordBuffer};
use aaiti_model::{
    BookDelta, FeedEvent, InstrumentRegistry, RecordKind, StreamId, Trade, UnixNanos,
};

/// Every kind, with the parameters a real model would use.
fn spec() -> FeatureSpec {
    serde_json::from_value(serde_json::json!({
        "sample_ms": 100,
        "features": [
            {"name": "mid", "kind": "mid"},
            {"name": "spread_bps", "kind": "spread_bps"},
            {"name": "microprice", "kind": "microprice"},
            {"name": "micro_dev_bps", "kind": "microprice_deviation_bps"},
            {"name": "imb_1", "kind": "book_imbalance", "levels": 1},
            {"name": "imb_10", "kind": "book_imbalance", "levels": 10},
            {"name": "ret_1", "kind": "log_return", "horizon": 1},
            {"name": "ret_10", "kind": "log_return", "horizon": 10},
            {"name": "ret_50", "kind": "log_return", "horizon": 50},
            {"name": "rv_50", "kind": "realized_vol", "window": 50},
            {"name": "sma_20", "kind": "sma", "period": 20},
            {"name": "ema_20_dev", "kind": "ema", "period": 20, "output": "deviation_bps"},
            {"name": "rsi_14", "kind": "rsi", "period": 14},
            {"name": "macd_hist", "kind": "macd", "fast": 12, "slow": 26, "signal": 9,
             "output": "histogram"},
            {"name": "bb_pct_b", "kind": "bollinger", "period": 20, "k": 2.0,
             "output": "percent_b"},
            {"name": "bb_width", "kind": "bollinger", "period": 20, "k": 2.0, "output": "width"},
            {"name": "flow_20", "kind": "trade_flow", "window": 20},
            {"name": "flow_vol_20", "kind": "trade_flow", "window": 20,
             "output": "signed_volume"},
            {"name": "tps_50", "kind": "trade_intensity", "window": 50}
        ]
    }))
    .unwrap()
}

const HORIZONS_MS: [u32; 2] = [500, 2_000];
const DURATION_MS: u64 = 90_000;

fn registry() -> InstrumentRegistry {
    config::load(None).unwrap().registry
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("aaiti-{}-{name}", std::process::id()))
}

/// A closed sample of the independent run.
struct Closed {
    ts: u64,
    mid: f64,
    /// The raw vector, if warm and finite.
    row: Option<Vec<f64>>,
}

/// Decodes the bundled recording as the replay source does and drives a Market and a
/// FeatureEngine as the signal stage does, stopping where the export's duration ends.
fn independent_run(registry: &InstrumentRegistry, spec: &FeatureSpec) -> Vec<Closed> {
    let gzip = flate2::read::MultiGzDecoder::new(BUNDLED_BINANCE_BTCUSDT);
    let mut reader = RecordingReader::new(BufReader::with_capacity(1 << 16, gzip), None);
    let venue = registry.venue_id("binance").unwrap();
    let mut feed = BinanceFeed::new_spot(registry, venue, StreamId(1), FeedConfig::default());
    let mut buffer = RecordBuffer::with_capacity(4096);
    let btc = registry.find(venue, "BTCUSDT").unwrap();
    let mut market = Market::new(registry).unwrap();
    let mut engine = FeatureEngine::new(spec, registry.get(btc).unwrap()).unwrap();
    let mut clock = UnixNanos(0);
    let mut end = None;
    let mut closed = Vec::new();
    while let Some(message) = reader.next_message().unwrap() {
        buffer.clear();
        feed.on_tick(message.ts_recv, &mut buffer);
        let _ = feed.on_message(message.payload, message.ts_recv, &mut buffer);
        for event in buffer.iter() {
            let mut now = event.header.ts_event;
            if now.0 == 0 {
                now = clock;
            }
            clock = clock.max(now);
            let end = *end.get_or_insert(UnixNanos(now.0 + DURATION_MS * 1_000_000));
            if now > end {
                return closed;
            }
            match RecordKind::try_from(event.header.kind) {
                Ok(RecordKind::BookDelta) => {
                    let delta = *event.payload::<BookDelta>().unwrap();
                    if !market.on_delta(&delta, now) || delta.flags & BookDelta::FLAG_LAST == 0 {
                        continue;
                    }
                    assert_eq!(delta.instrument, btc);
                    let state = market.get(btc).unwrap();
                    if state.valid() && engine.on_book(state, now) {
                        let sample = engine.last_sample().unwrap();
                        let usable = engine.warm() && !engine.non_finite();
                        closed.push(Closed {
                            ts: sample.ts.0,
                            mid: sample.mid,
                            row: usable.then(|| engine.raw().to_vec()),
                        });
                    }
                }
                Ok(RecordKind::Trade) => {
                    let trade = *event.payload::<Trade>().unwrap();
                    market.on_trade(&trade, now);
                    engine.on_trade(&trade, now);
                }
                Ok(RecordKind::FeedEvent) => {
                    market.on_feed_event(event.payload::<FeedEvent>().unwrap());
                }
                _ => {}
            }
        }
    }
    closed
}

fn parse(field: &str) -> f64 {
    field
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {field:?}"))
}

#[test]
fn exported_rows_equal_an_independent_run() {
    let registry = registry();
    let spec = spec();
    let out = temp_path("features.csv");
    let options = ExportOptions {
        recording: BUNDLED_BINANCE_BTCUSDT_NAME.to_owned(),
        venue: ReplayVenue::Binance,
        spec: spec.clone(),
        horizons_ms: HORIZONS_MS.to_vec(),
        out: out.clone(),
        duration_ms: Some(DURATION_MS),
    };
    let summary = export(&options, &registry).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();

    let mut lines = text.lines();
    let names: Vec<&str> = spec.names().collect();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "ts_ns,instrument,{},fwd_ret_500ms,fwd_ret_2000ms",
            names.join(",")
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();

    let closed = independent_run(&registry, &spec);
    let last_ts = closed.last().unwrap().ts;
    let longest = u64::from(HORIZONS_MS[1]) * 1_000_000;
    let expected: Vec<&Closed> = closed
        .iter()
        .filter(|c| c.row.is_some() && c.ts + longest <= last_ts)
        .collect();
    let usable = closed.iter().filter(|c| c.row.is_some()).count();
    // About 10 samples a second over 90 s, after a few seconds of warm-up.
    assert!(expected.len() > 700, "{} rows", expected.len());
    assert_eq!(rows.len(), expected.len());
    assert_eq!(summary.rows, rows.len() as u64);
    assert_eq!(summary.samples, closed.len() as u64);
    assert_eq!(summary.cut_at_end, (usable - expected.len()) as u64);
    assert_eq!(
        summary.warming + summary.non_finite,
        (closed.len() - usable) as u64
    );
    assert_eq!(summary.first_ts_ns, Some(expected[0].ts));

    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row.len(), 2 + spec.len() + HORIZONS_MS.len());
        assert_eq!(row[0].parse::<u64>().unwrap(), want.ts);
        assert_eq!(row[1], "BTCUSDT");
        let values = want.row.as_ref().unwrap();
        for (i, (field, value)) in row[2..2 + spec.len()].iter().zip(values).enumerate() {
            assert_eq!(
                parse(field).to_bits(),
                value.to_bits(),
                "{} at {}: {field} vs {value:?}",
                names[i],
                want.ts
            );
        }
        for (field, horizon) in row[2 + spec.len()..].iter().zip(HORIZONS_MS) {
            let target = closed
                .iter()
                .find(|c| c.ts >= want.ts + u64::from(horizon) * 1_000_000)
                .unwrap();
            let forward = (target.mid / want.mid).ln();
            assert_eq!(parse(field).to_bits(), forward.to_bits(), "{horizon} ms");
        }
    }
    // The spec's features are live, not constant: the vectors vary over the run.
    for (i, name) in names.iter().enumerate() {
        let first = &rows[0][2 + i];
        assert!(
            rows.iter().any(|row| &row[2 + i] != first),
            "{name} never changes"
        );
    }
}

#[test]
fn bad_requests_fail_with_precise_errors() {
    let registry = registry();
    let options = ExportOptions {
        recording: "/nonexistent/binance.jsonl".to_owned(),
        venue: ReplayVenue::Binance,
        spec: spec(),
        horizons_ms: vec![1_000],
        out: temp_path("never.csv"),
        duration_ms: Some(1_000),
    };
    let error = export(&options, &registry).unwrap_err();
    assert!(matches!(error, ExportError::Replay(_)), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/binance.jsonl"),
        "{error}"
    );

    let mut bad_spec = options.clone();
    bad_spec.recording = BUNDLED_BINANCE_BTCUSDT_NAME.to_owned();
    bad_spec.spec.sample_ms = 0;
    assert_eq!(
        export(&bad_spec, &registry).unwrap_err().to_string(),
        "feature spec: `sample_ms` = 0 must be between 1 and 3600000"
    );

    let mut no_dir = options.clone();
    no_dir.recording = BUNDLED_BINANCE_BTCUSDT_NAME.to_owned();
    no_dir.out = PathBuf::from("/nonexistent-dir/features.csv");
    let error = export(&no_dir, &registry).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot write /nonexistent-dir/features.csv: "),
        "{error}"
    );

    let mut no_horizon = options;
    no_horizon.horizons_ms.clear();
    assert!(matches!(
        export(&no_horizon, &registry),
        Err(ExportError::Horizons(_))
    ));
}
