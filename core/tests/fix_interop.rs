//! Interoperability with a FIX engine not written here: the desk's scenario written with
//! asyncfix 1.0.1 (Python, from PyPI) against the whole engine over TCP.
//!
//! The test installs asyncfix into `<repo>/.deps/venv` with `tools/scripts/python_env.py`
//! (so a plain `cargo test` works on a machine with python3 and network to PyPI), starts
//! the engine in-process on an ephemeral port as `desk.rs` does, runs
//! `tools/interop/asyncfix_desk.py` against it (log on, market data, orders, replace,
//! cancel, status, positions, log out, reconnect with sequence gaps both ways, a lost
//! message resent) and requires every check of that script to pass. Then it stops the
//! engine and reads the journal: the desk's four order commands are on stream 901.
//!
//! Without python3, or when the install fails, the test fails and says why: it never
//! skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod desk_support;

use desk_support::start;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aaiti_journal::JournalReader;
use aaiti_model::{Control, ControlAction, OrderAction, OrderCommand, RecordKind};

/// The scenario's own limit is 50 s; this only catches a hung interpreter.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The venv's python with asyncfix 1.0.1, made by `tools/scripts/python_env.py`.
fn python_with_asyncfix() -> PathBuf {
    let script = repo().join("tools/scripts/python_env.py");
    let output = match Command::new("python3").arg(&script).arg("--quiet").output() {
        Ok(output) => output,
        Err(error) => panic!(
            "the FIX interoperability test needs python3 on PATH (to install asyncfix from \
             PyPI into .deps/venv), and running it failed: {error}"
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`python3 {}` failed ({}): could not install asyncfix==1.0.1 from PyPI into \
         .deps/venv\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    let python = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        python.is_file(),
        "python_env.py printed {python:?}, which is not a file\n--- stderr\n{stderr}"
    );
    python
}

/// The end of a possibly long log, on a char boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// What the scenario printed, and how it ended.
struct Scenario {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

fn run_scenario(python: &Path, address: std::net::SocketAddr, dir: &Path) -> Scenario {
    let script = repo().join("tools/interop/asyncfix_desk.py");
    // Files, not pipes: the debug log can outgrow a pipe's buffer while nobody reads it.
    let (out_path, err_path) = (dir.join("scenario.stdout"), dir.join("scenario.stderr"));
    let mut child = Command::new(python)
        .arg(&script)
        .args(["--host", &address.ip().to_string()])
        .args(["--port", &address.port().to_string()])
        .arg("--journal-dir")
        .arg(dir.join("asyncfix"))
        .arg("--verbose")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    let deadline = Instant::now() + SCENARIO_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    Scenario {
        success: status.is_some_and(|s| s.success()),
        status: status.map_or_else(
            || format!("killed after {SCENARIO_DEADLINE:?}"),
            |s| s.to_string(),
        ),
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

#[test]
fn asyncfix_trades_reconnects_and_fills_sequence_gaps() {
    // Timings go to the captured output, shown when the test fails.
    let clock = Instant::now();
    let python = python_with_asyncfix();
    eprintln!("venv ready after {:?}", clock.elapsed());
    let dir = temp_dir("asyncfix");
    let data = dir.join("data");
    let started = start(&data);
    let address = started
        .fix_address
        .expect("the gateway is enabled by default");
    eprintln!("engine listening on {address} after {:?}", clock.elapsed());

    let scenario = run_scenario(&python, address, &dir);
    eprintln!("scenario done after {:?}", clock.elapsed());

    started.running.stop_handle().request_stop();
    let finished = started.wait();
    eprintln!("engine stopped after {:?}", clock.elapsed());

    let summary: Option<serde_json::Value> = serde_json::from_str(&scenario.stdout).ok();
    let failed: Vec<&serde_json::Value> = summary
        .as_ref()
        .and_then(|s| s["checks"].as_array())
        .map(|checks| checks.iter().filter(|c| c["ok"] != true).collect())
        .unwrap_or_default();
    assert!(
        scenario.success,
        "the asyncfix scenario failed ({}).\nfailed checks: {}\nfirst hard failure: {}\n\
         --- stdout (summary)\n{}\n--- stderr (asyncfix debug log, end)\n{}",
        scenario.status,
        serde_json::to_string_pretty(&failed).unwrap(),
        summary
            .as_ref()
            .map_or(serde_json::Value::Null, |s| s["failed"].clone()),
        scenario.stdout,
        tail(&scenario.stderr, 20_000),
    );
    // Exit status 0 must mean a complete run: the summary says so, with every step.
    let summary = summary.expect("the scenario prints its summary as JSON");
    assert_eq!(summary["ok"], true, "{}", scenario.stdout);
    assert!(summary["failed"].is_null(), "{}", scenario.stdout);
    let passed: Vec<&str> = summary["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == true)
        .filter_map(|c| c["check"].as_str())
        .collect();
    for step in [
        "logon",
        "market data snapshot (W) with levels",
        "market data incremental refresh (X)",
        "limit order New",
        "replace (G) Replaced",
        "cancel (F) Canceled",
        "market order Filled",
        "positions (AN) show the fill",
        "logout",
        "reconnect: logon with a sequence gap",
        "engine asks for our gap (ResendRequest)",
        "asyncfix fills the gap (SequenceReset-GapFill)",
        "engine resends its report (PossDupFlag) and gap-fills the rest",
        "a lost message is resent (PossDupFlag) and answered",
        "logout after the reconnect",
    ] {
        assert!(
            passed.contains(&step),
            "no passed check {step:?}: {}",
            scenario.stdout
        );
    }
    assert!(!finished.report.failed, "the engine reported a failure");

    // The desk's order commands are journaled on its stream, in order, with the ClOrdIDs
    // asyncfix's order model made (root--1, --2, --3); status and position requests are
    // not commands. And its sessions: two logons, two logouts.
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let (mut commands, mut sessions) = (Vec::new(), 0);
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        if envelope.header.stream.0 != 901 {
            continue;
        }
        match RecordKind::try_from(envelope.header.kind) {
            Ok(RecordKind::OrderCommand) => {
                let command = *envelope.payload::<OrderCommand>().unwrap();
                commands.push((
                    command.action(),
                    command.client_order_id.as_str().to_owned(),
                ));
            }
            Ok(RecordKind::Control) => {
                let control = *envelope.payload::<Control>().unwrap();
                assert_eq!(control.action(), Some(ControlAction::DeskSession));
                sessions += 1;
            }
            _ => {}
        }
    }
    let actions: Vec<_> = commands.iter().map(|(action, _)| *action).collect();
    assert_eq!(
        actions,
        [
            Some(OrderAction::New),
            Some(OrderAction::Replace),
            Some(OrderAction::Cancel),
            Some(OrderAction::New)
        ],
        "D, G, F, D: {commands:?}"
    );
    let ids: Vec<&str> = commands.iter().map(|(_, id)| id.as_str()).collect();
    assert!(
        ids[0].starts_with("lim-") && ids[0].ends_with("--1"),
        "{ids:?}"
    );
    assert_eq!(ids[1], ids[0].replace("--1", "--2"), "{ids:?}");
    assert_eq!(ids[2], ids[0].replace("--1", "--3"), "{ids:?}");
    assert!(
        ids[3].starts_with("mkt-") && ids[3].ends_with("--1"),
        "{ids:?}"
    );
    assert!(sessions >= 4, "two logons and two logouts: {sessions}");
    let _ = std::fs::remove_dir_all(&dir);
}
