//! Run-time administration through `aaiti admin`: the risk state is readable, limits change
//! atomically (or not at all), halts and resumes apply, every command is journaled, and a
//! restart rebuilds the changed limits from the journal alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aaiti_core::config::DEFAULT_CONFIG;
use aaiti_journal::JournalReader;
use aaiti_model::{Control, ControlAction, RecordKind, RiskEvent, RiskEventKind};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path) -> PathBuf {
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1);
    let path = dir.join("aaiti.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `aaiti run` at recorded speed and waits for its admin socket.
fn start(config: &Path, data: &Path, seconds: &str) -> Child {
    let socket = data.join("admin.sock");
    let _ = std::fs::remove_file(&socket);
    let child = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(["run", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(["--speed", "recorded", "--duration", seconds, "--json"])
        .stdout(Stdio::piped())
        // A file, not a pipe: nobody reads the log while the engine runs.
        .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no admin socket appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn admin(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .arg("admin")
        .arg("--data-dir")
        .arg(data)
        .arg("--json")
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "admin command was not refused");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn account(state: &serde_json::Value) -> &serde_json::Value {
    &state["risk"]["accounts"][0]
}

#[test]
fn limits_change_at_run_time_and_survive_a_restart() {
    let dir = temp_dir("limits");
    let config = config(&dir);
    let data = dir.join("data");
    let run = start(&config, &data, "8");

    let state = ok(&admin(&data, &["risk"]));
    assert_eq!(account(&state)["name"], "paper-1");
    assert_eq!(state["risk"]["global_state"], "active");
    let before = account(&state)["max_open_orders"].as_u64().unwrap();
    assert_ne!(before, 3);

    // A change that parses but does not fit is refused whole.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[risk.account_defaults]\nmax_open_orders = 3\n[risk]\ndisabled_venues = [\"nowhere\"]\n",
    )
    .unwrap();
    assert!(refused(&admin(&data, &["set-limits", bad.to_str().unwrap()])).contains("nowhere"));
    // Text that is not a risk configuration never reaches the engine.
    std::fs::write(
        &bad,
        "[risk.account_defaults]\nmax_open_orders = \"many\"\n",
    )
    .unwrap();
    let error = refused(&admin(&data, &["set-limits", bad.to_str().unwrap()]));
    assert!(error.contains("max_open_orders"), "{error}");
    std::fs::write(
        &bad,
        "[[accounts]]\nname = \"ghost\"\naccount_type = \"paper\"\n",
    )
    .unwrap();
    assert!(refused(&admin(&data, &["set-limits", bad.to_str().unwrap()])).contains("paper-1"));
    let state = ok(&admin(&data, &["risk"]));
    assert_eq!(account(&state)["max_open_orders"].as_u64().unwrap(), before);

    let good = dir.join("good.toml");
    std::fs::write(&good, "[risk.account_defaults]\nmax_open_orders = 3\n").unwrap();
    let change = ok(&admin(&data, &["set-limits", good.to_str().unwrap()]));
    let changed = change["changed"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|c| c["field"] == "max_open_orders" && c["new"] == "3"),
        "{change}"
    );
    let state = ok(&admin(&data, &["risk"]));
    assert_eq!(account(&state)["max_open_orders"], 3);

    // Halt and resume one account; an unknown account is refused.
    let halted = ok(&admin(&data, &["halt", "--account", "paper-1"]));
    assert_eq!(halted["applied"], "halt");
    assert_eq!(account(&halted)["trading_state"], "halted");
    assert!(refused(&admin(&data, &["halt", "--account", "ghost"])).contains("ghost"));
    let resumed = ok(&admin(&data, &["resume", "--account", "paper-1"]));
    assert_eq!(account(&resumed)["trading_state"], "active");

    let output = run.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !data.join("admin.sock").exists(),
        "the socket outlived the run"
    );

    // The journal holds the commands (stream 900) and the trading stage's answers to them.
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let mut chunks = 0;
    let mut halts = 0;
    let mut limit_events = Vec::new();
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        match RecordKind::try_from(envelope.header.kind) {
            Ok(RecordKind::Control) if envelope.header.stream.0 == 900 => {
                let control = *envelope.payload::<Control>().unwrap();
                match control.action() {
                    Some(ControlAction::LimitsChunk) => chunks += 1,
                    Some(ControlAction::Halt) => halts += 1,
                    _ => {}
                }
            }
            Ok(RecordKind::RiskEvent) => {
                let event = *envelope.payload::<RiskEvent>().unwrap();
                if event.kind == RiskEventKind::LimitsChanged.code() {
                    limit_events.push(event);
                }
            }
            _ => {}
        }
    }
    // Two changes reached the engine: the refused one (bad venue, bad account) and the good
    // one; text that did not parse did not.
    assert!(chunks >= 3, "{chunks} limits pieces");
    assert_eq!(halts, 1, "the refused halt never reached the journal");
    assert!(
        limit_events.iter().any(|e| e.value == 3),
        "{limit_events:?}"
    );

    // Without snapshots the restart rebuilds the limits by replaying the commands.
    let snapshots = data.join("journal").join("snapshots");
    if snapshots.exists() {
        std::fs::remove_dir_all(&snapshots).unwrap();
    }
    let run = start(&config, &data, "3");
    let state = ok(&admin(&data, &["risk"]));
    assert_eq!(account(&state)["max_open_orders"], 3);
    assert_eq!(account(&state)["trading_state"], "active");
    let output = run.wait_with_output().unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["recovery"]["replayed"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn admin_without_an_engine_says_so() {
    let dir = temp_dir("none");
    let output = admin(&dir, &["risk"]);
    let error = refused(&output);
    assert!(error.contains("cannot reach an engine"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
