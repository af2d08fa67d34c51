//! The `aaiti` binary as a user runs it: default config, JSON summary, Ctrl-C drain, and
//! configuration errors that name the file, the key and the fix.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failed unwrap or panic is a failed test"
)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aaiti_core::config::DEFAULT_CONFIG;

fn aaiti() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aaiti"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The default configuration with threads that yield instead of spinning (the suite shares
/// two cores among its tests), optionally with a synthetic generator instead of the replay.
fn polite_config(dir: &std::path::Path, synthetic: bool) -> PathBuf {
    // (The FIX gateway on an ephemeral port: tests run side by side.)
    let mut text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1);
    assert_ne!(text, DEFAULT_CONFIG);
    if synthetic {
        let replay = "kind = \"replay\"\nname = \"binance\"\nvenue = \"binance\"\nfile = \"bundled:binance-btcusdt\"\nspeed = \"recorded\"\n";
        assert!(text.contains(replay));
        text = text.replacen(replay, "kind = \"synthetic\"\nname = \"synthetic-1\"\n", 1);
    }
    let path = dir.join(if synthetic {
        "synthetic.toml"
    } else {
        "polite.toml"
    });
    std::fs::write(&path, text).unwrap();
    path
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn counter(summary: &serde_json::Value, component: &str, name: &str) -> u64 {
    for thread in summary["report"]["threads"].as_array().unwrap() {
        for c in thread["components"].as_array().unwrap() {
            if c["name"] == component {
                for pair in c["counters"].as_array().unwrap() {
                    if pair[0] == name {
                        return pair[1].as_u64().unwrap();
                    }
                }
            }
        }
    }
    panic!("no counter {component}.{name} in {summary}");
}

#[test]
fn print_default_shows_the_embedded_configuration() {
    let output = aaiti().args(["config", "print-default"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), DEFAULT_CONFIG);
}

#[test]
fn bounded_run_prints_a_json_summary_and_writes_it_to_the_data_dir() {
    let dir = temp_dir("bounded");
    let config = polite_config(&dir, true);
    let data = dir.join("data");
    let output = aaiti()
        .args([
            "run", "--events", "20000", "--rate", "0", "--json", "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&output);
    assert_eq!(summary["report"]["failed"], false);
    assert_eq!(counter(&summary, "counter", "events"), 20_000);
    assert_eq!(counter(&summary, "counter", "gaps"), 0);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("run-summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_drains_and_prints_the_summary() {
    let dir = temp_dir("sigint");
    // The default run: the bundled recording at its recorded pace (650 s), stopped early.
    let config = polite_config(&dir, false);
    let child = aaiti()
        .args(["run", "--json", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&output);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["report"]["failed"], false);
    let records = counter(&summary, "binance", "records");
    assert!(records > 0, "the replay emitted nothing in 700 ms");
    let added_by_book =
        counter(&summary, "book", "tops_emitted") + counter(&summary, "book", "crossed");
    assert_eq!(
        counter(&summary, "counter", "events"),
        records + added_by_book,
        "every record emitted before Ctrl-C arrives"
    );
    assert_eq!(counter(&summary, "counter", "gaps"), 0);
    assert_eq!(counter(&summary, "counter", "shutdown_seen"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_configuration_fails_at_start_naming_file_key_and_fix() {
    let dir = temp_dir("bad");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        DEFAULT_CONFIG.replacen("ring_capacity = 65536", "ring_capacity = 100", 1),
    )
    .unwrap();
    let output = aaiti()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml")
            && stderr.contains("pipeline.ring_capacity")
            && stderr.contains("Fix:"),
        "{stderr}"
    );

    std::fs::write(
        &path,
        DEFAULT_CONFIG.replacen("mode = \"auto\"", "mode = \"manual\"", 1),
    )
    .unwrap();
    let output = aaiti()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("placement.threads") && stderr.contains("Fix:"),
        "{stderr}"
    );

    std::fs::write(&path, "this is not toml = = =").unwrap();
    let output = aaiti()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn placement_command_plans_for_any_core_count() {
    for (cores, threads) in [(1, "1 threads"), (2, "2 threads"), (16, "7 threads")] {
        // Default pipeline: the replay, admin and FIX sources on one thread, then book,
        // signals, trading, journal, desk and counter.
        let output = aaiti()
            .args(["placement", "--cores", &cores.to_string()])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.starts_with(&format!("placement: {threads}")),
            "{cores} cores: {text}"
        );
    }
}

/// The default configuration with the replay source replaced by `source` (TOML lines).
fn config_with_source(dir: &std::path::Path, source: &str) -> PathBuf {
    let replay = "kind = \"replay\"\nname = \"binance\"\nvenue = \"binance\"\nfile = \"bundled:binance-btcusdt\"\nspeed = \"recorded\"\n";
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1)
        .replacen(replay, source, 1);
    assert_ne!(text, DEFAULT_CONFIG);
    let path = dir.join("live.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn live_source_keeps_reconnecting_and_stops_cleanly() {
    let dir = temp_dir("live");
    // Port 9 on loopback: nothing listens, every connect is refused at once.
    let config = config_with_source(
        &dir,
        "kind = \"live\"\nname = \"binance-live\"\nvenue = \"binance\"\nurl = \"ws://127.0.0.1:9\"\nbackup_url = \"ws://127.0.0.1:9\"\n",
    );
    let output = aaiti()
        .args(["run", "--duration", "1", "--json", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = json(&output);
    assert_eq!(summary["report"]["failed"], false);
    assert_eq!(counter(&summary, "counter", "gaps"), 0);

    let bad = config_with_source(
        &dir,
        "kind = \"live\"\nname = \"broken\"\nvenue = \"binance\"\nurl = \"http://not-a-websocket\"\n",
    );
    let output = aaiti()
        .args(["run", "--config"])
        .arg(&bad)
        .arg("--data-dir")
        .arg(dir.join("bad-data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
