#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! A live account's orders go to the Binance adapter (here against the local mock of the
//! Binance API), write-ahead: each order's request is journaled before it is sent, the
//! venue's reports come back as journaled records, and a restart reconciles the orders the
//! journal says are open with what the venue did meanwhile.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aaiti_core::config::{self, DEFAULT_CONFIG};
use aaiti_core::engine::{self, RunOptions};
use aaiti_core::venues::VENUE_STREAM;
use aaiti_feeds::replay::Pace;
use aaiti_gateway::binance::mock::MockBinance;
use aaiti_gateway::secrets::{self, Credentials, SecretsKey};
use aaiti_journal::JournalReader;
use aaiti_model::{
    OrderEvent, OrderEventKind, RecordKind, VenueAction, VenueReport, VenueReportKind, VenueRequest,
};

/// Binance's published example key pair (documentation only, not a real account).
const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The default configuration with `paper-1` (the flow driver's account) made live on the
/// mock, no FIX gateway, yielding threads.
fn config_text(mock: &MockBinance, dir: &Path) -> String {
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("segment_size_mb = 256", "segment_size_mb = 4", 1)
        .replacen("[gateway]\nenabled = true", "[gateway]\nenabled = false", 1)
        .replacen(
            "name = \"paper-1\"\naccount_type = \"paper\"",
            "name = \"paper-1\"\naccount_type = \"live\"",
            1,
        );
    assert!(text.contains("account_type = \"live\"") && text.contains("enabled = false"));
    format!(
        "{text}\n[venues.binance]\nsecrets_file = {:?}\nkey_file = {:?}\n\n\
         [venues.binance.adapter]\nrest_url = {:?}\nws_api_url = {:?}\n\
         connect_timeout_ms = 1000\nio_timeout_ms = 2000\nreconnect_min_ms = 20\n\
         reconnect_max_ms = 200\n",
        dir.join("binance.sec"),
        dir.join("secrets.key"),
        mock.rest_url(),
        mock.ws_api_url(),
    )
}

#[derive(Default)]
struct Seen {
    new_requests: Vec<VenueRequest>,
    cancel_requests: usize,
    reports: Vec<(u64, VenueReport)>,
    order_events: Vec<OrderEvent>,
}

fn read_journal(data: &Path, after_seq: u64) -> (Seen, u64) {
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let mut seen = Seen::default();
    let mut last = after_seq;
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        let seq = frame.seq();
        last = last.max(seq);
        if seq <= after_seq {
            continue;
        }
        match RecordKind::try_from(envelope.header.kind) {
            Ok(RecordKind::VenueRequest) => {
                let request = *envelope.payload::<VenueRequest>().unwrap();
                if request.action == VenueAction::New.code() {
                    seen.new_requests.push(request);
                } else {
                    seen.cancel_requests += 1;
                }
            }
            Ok(RecordKind::VenueReport) => {
                assert_eq!(envelope.header.stream, VENUE_STREAM);
                seen.reports
                    .push((seq, *envelope.payload::<VenueReport>().unwrap()));
            }
            Ok(RecordKind::OrderEvent) => {
                seen.order_events
                    .push(*envelope.payload::<OrderEvent>().unwrap());
            }
            _ => {}
        }
    }
    (seen, last)
}

fn run(loaded: &config::LoadedConfig, data: &Path, seconds: u64) -> aaiti_core::runtime::RunReport {
    let options = RunOptions {
        speed: Some(Pace::Recorded),
        data_dir: Some(data.to_owned()),
        duration: Some(Duration::from_secs(seconds)),
        ..RunOptions::default()
    };
    let started = engine::start(loaded, &options).expect("start the engine");
    let finished = started.wait();
    assert!(!finished.report.failed, "the run failed");
    finished.report
}

#[test]
fn live_orders_reach_binance_after_the_journal_and_reconcile_on_restart() {
    let mock = MockBinance::start(KEY, SECRET).unwrap();
    mock.add_symbol("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "5")
        .unwrap();
    // Inside the recording's spread: passive orders rest, crossing ones fill.
    mock.set_market_price("BTCUSDT", "61790.00").unwrap();
    mock.set_balance("USDT", "1000000").unwrap();
    mock.set_balance("BTC", "100").unwrap();

    let dir = temp_dir("restart");
    let key = SecretsKey::generate().unwrap();
    key.write_new_file(&dir.join("secrets.key")).unwrap();
    secrets::save(
        &dir.join("binance.sec"),
        &key,
        &Credentials::new(KEY, SECRET).unwrap(),
    )
    .unwrap();
    let path = dir.join("live.toml");
    std::fs::write(&path, config_text(&mock, &dir)).unwrap();
    let loaded = config::load(Some(&path)).unwrap();
    let data = dir.join("data");

    // Run 1: the flow driver trades its (live) account for 12 s of the recording.
    let report = run(&loaded, &data, 12);
    let sent = report.counter("router", "sent_new").unwrap();
    let (first, last_seq) = read_journal(&data, 0);
    assert!(
        first.new_requests.len() >= 3,
        "{} live orders journaled",
        first.new_requests.len()
    );
    // Everything sent was journaled first (the router only sees journaled requests), and
    // everything journaled in this run was sent.
    assert_eq!(sent, first.new_requests.len() as u64);
    let posted: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v3/order")
        .collect();
    assert_eq!(posted.len(), first.new_requests.len(), "{posted:?}");
    for request in &first.new_requests {
        let id = format!("aaiti-{}", request.order_id.0);
        assert!(
            posted.iter().any(|p| p.params.contains(&id)),
            "order {id} never reached the venue"
        );
    }
    // The venue's answers came back as journaled reports and moved the orders.
    let accepted: BTreeSet<u64> = first
        .reports
        .iter()
        .filter(|(_, r)| r.kind() == Some(VenueReportKind::Accepted))
        .map(|(_, r)| r.order_id.0)
        .collect();
    assert!(!accepted.is_empty(), "no acknowledgement came back");
    assert!(first.order_events.iter().any(|e| {
        e.kind == OrderEventKind::Accepted.code() && accepted.contains(&e.order_id.0)
    }));
    // No paper venue fill for the live account: every fill of account 0 comes from a report.
    let fills_from_venue = first
        .reports
        .iter()
        .filter(|(_, r)| r.kind() == Some(VenueReportKind::Fill))
        .count();
    let fills_applied = first
        .order_events
        .iter()
        .filter(|e| {
            e.account.0 == 0
                && (e.kind == OrderEventKind::Filled.code()
                    || e.kind == OrderEventKind::PartiallyFilled.code())
        })
        .count();
    assert_eq!(fills_applied, fills_from_venue);

    // While the engine is down, the venue fills one of its resting orders.
    let (resting, request) = first
        .new_requests
        .iter()
        .map(|r| (format!("aaiti-{}", r.order_id.0), r))
        .find(|(id, _)| mock.order(id).is_some_and(|o| o.status == "NEW"))
        .expect("a resting order at the venue");
    let instrument = loaded.registry.get(request.instrument).unwrap();
    let decimal = |mantissa: i64, places: u8| {
        let unit = 10_i64.pow(u32::from(places));
        format!(
            "{}.{:0width$}",
            mantissa / unit,
            mantissa % unit,
            width = usize::from(places)
        )
    };
    // At its limit price: a maker fill.
    mock.fill(
        &resting,
        &decimal(request.qty.0, instrument.qty_scale.places()),
        &decimal(request.price.0, instrument.price_scale.places()),
        true,
    )
    .unwrap();
    let filled_id: u64 = resting.trim_start_matches("aaiti-").parse().unwrap();

    // Run 2: recovery replays the journal (nothing is sent again), then the reconciliation
    // reports the fill, journaled and applied like any report.
    let report = run(&loaded, &data, 4);
    assert_eq!(report.counter("router", "refused"), Some(0));
    let (second, _) = read_journal(&data, last_seq);
    let reconciled_fill = second
        .reports
        .iter()
        .find(|(_, r)| r.order_id.0 == filled_id && r.kind() == Some(VenueReportKind::Fill))
        .unwrap_or_else(|| panic!("no fill report for {resting} after the restart"));
    assert_eq!(reconciled_fill.1.leaves.0, 0);
    assert!(
        second
            .order_events
            .iter()
            .any(|e| { e.order_id.0 == filled_id && e.kind == OrderEventKind::Filled.code() })
    );
    // Nothing from run 1 was sent again.
    let posted_again = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v3/order")
        .count();
    assert_eq!(
        posted_again,
        posted.len() + second.new_requests.len(),
        "a replayed request was sent again"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `aaiti secrets`: a new key file, credentials sealed from standard input, checked back;
/// nothing secret is printed and both files are private to their owner.
#[test]
fn secrets_command_seals_credentials() {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let dir = temp_dir("secrets");
    let aaiti = env!("CARGO_BIN_EXE_aaiti");
    let key_file = dir.join("secrets.key");
    let sealed = dir.join("binance.sec");
    let status = Command::new(aaiti)
        .args(["secrets", "new-key"])
        .arg(&key_file)
        .status()
        .unwrap();
    assert!(status.success());
    // A key is never overwritten.
    let again = Command::new(aaiti)
        .args(["secrets", "new-key"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut child = Command::new(aaiti)
        .args(["secrets", "set"])
        .arg(&sealed)
        .arg("--key-file")
        .arg(&key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{KEY}\n{SECRET}").unwrap();
    let set = child.wait_with_output().unwrap();
    assert!(set.status.success());
    let check = Command::new(aaiti)
        .args(["secrets", "check"])
        .arg(&sealed)
        .arg("--key-file")
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(check.status.success());
    for output in [&set.stdout, &check.stdout] {
        let text = String::from_utf8_lossy(output);
        assert!(text.contains("vmPU"), "{text}");
        assert!(!text.contains(SECRET) && !text.contains(KEY), "{text}");
    }
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("vmPUZE6"));
    for file in [&key_file, &sealed] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    // The wrong key is told apart from a damaged file.
    let other = dir.join("other.key");
    Command::new(aaiti)
        .args(["secrets", "new-key"])
        .arg(&other)
        .status()
        .unwrap();
    let wrong = Command::new(aaiti)
        .args(["secrets", "check"])
        .arg(&sealed)
        .arg("--key-file")
        .arg(&other)
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
