#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The signal stage with the bundled model: the features it serves are exactly the ones
//! `aaiti features` exports for training; a model swap through the admin command while the
//! engine runs; refusals of models that do not load; ONNX Runtime missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aaiti_core::admin::AdminCommand;
use aaiti_core::config::{self, DEFAULT_CONFIG};
use aaiti_core::engine::{self, RunOptions};
use aaiti_core::replay::{BUNDLED_BINANCE_BTCUSDT_NAME, ReplaySource, ReplayVenue};
use aaiti_core::runtime::{Pipeline, PlacementConfig, RingSettings, WaitStrategy, plan};
use aaiti_core::signals::features::export::{ExportOptions, export};
use aaiti_core::signals::model::{OnnxModel, RegistryEntry, init_runtime_from};
use aaiti_core::signals::stage::{FeatureRow, SignalSetup, SignalStage, SlotSetup, SwapHandoff};
use aaiti_core::stages::book::BookStage;
use aaiti_feeds::replay::Pace;
use aaiti_journal::JournalReader;
use aaiti_model::{ModelEvent, ModelEventKind, RecordKind, Signal, StreamId};

const MODEL: &str = "btcusdt-ridge";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-signals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// ONNX Runtime from `ORT_DYLIB_PATH` (`./x test`), else the checkout's `.deps` copy.
fn runtime() {
    let path = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo().join(".deps/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    };
    assert!(
        path.is_file(),
        "ONNX Runtime not found at {}: run `./x setup`",
        path.display()
    );
    init_runtime_from(&path.canonicalize().unwrap()).unwrap();
}

fn bundled_model() -> OnnxModel {
    runtime();
    let entry = RegistryEntry::from_file(&repo().join("core/models/btcusdt-ridge-1.json")).unwrap();
    OnnxModel::load(&entry).unwrap()
}

#[test]
fn served_features_equal_exported_features() {
    let loaded = config::parse(DEFAULT_CONFIG, "default").unwrap();
    let registry = &loaded.registry;
    let model = bundled_model();
    let spec = model.metadata().features.clone();
    let dir = temp_dir("parity");

    // Training side: `aaiti features` over the first 90 s of the recording.
    let csv = dir.join("features.csv");
    let summary = export(
        &ExportOptions {
            recording: BUNDLED_BINANCE_BTCUSDT_NAME.to_owned(),
            venue: ReplayVenue::Binance,
            spec: spec.clone(),
            horizons_ms: vec![2000],
            out: csv.clone(),
            duration_ms: Some(90_000),
        },
        registry,
    )
    .unwrap();
    assert!(summary.rows > 300, "{summary:?}");

    // Serving side: the engine's book stage and signal stage over the same recording.
    let venue = registry.venue_id("binance").unwrap();
    let instrument = registry.find(venue, "BTCUSDT").unwrap();
    let mut stage = SignalStage::new(SignalSetup {
        registry: registry.clone(),
        slots: vec![SlotSetup {
            name: MODEL.to_owned(),
            instrument,
            shadow: false,
            model,
        }],
        ensemble: None,
        drift: Default::default(),
        accuracy_capacity: 4096,
        handoff: SwapHandoff::default(),
        models: None,
        admin: None,
    })
    .unwrap();
    let (tap, rows) = crossbeam_channel::unbounded::<FeatureRow>();
    stage.tap_features(tap);
    let source = ReplaySource::open(
        "replay",
        BUNDLED_BINANCE_BTCUSDT_NAME,
        ReplayVenue::Binance,
        Pace::Max,
        registry,
        StreamId(1),
    )
    .unwrap();
    let pipeline = Pipeline::new(RingSettings {
        capacity: 1024,
        batch_limit: 256,
    })
    .source(Box::new(source))
    .stage(Box::new(
        BookStage::new(registry, false, aaiti_core::engine::BOOK_STREAM).unwrap(),
    ))
    .stage(Box::new(stage));
    let placement = PlacementConfig {
        wait: WaitStrategy::Yield,
        pin: false,
        ..PlacementConfig::default()
    };
    let plan = plan(&pipeline.shape(), &placement, &[0]).unwrap();
    let report = pipeline.start(&plan).unwrap().wait();
    assert!(!report.failed);
    let served: HashMap<u64, Vec<f64>> = rows.try_iter().map(|row| (row.ts.0, row.raw)).collect();

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let names: Vec<&str> = spec.names().collect();
    assert_eq!(&header[2..2 + names.len()], names.as_slice());
    let mut compared = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let ts: u64 = fields[0].parse().unwrap();
        let exported: Vec<f64> = fields[2..2 + names.len()]
            .iter()
            .map(|f| f.parse().unwrap())
            .collect();
        let Some(values) = served.get(&ts) else {
            panic!("the engine served no vector for the exported sample at {ts}");
        };
        for (index, (a, b)) in values.iter().zip(&exported).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "feature {} at {ts}: served {a}, exported {b}",
                names[index]
            );
        }
        compared += 1;
    }
    assert_eq!(compared, summary.rows);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default configuration, replaying at the recorded pace with yielding threads and no
/// FIX listener, serving version 1 of the bundled model.
fn engine_config(dir: &Path) -> config::LoadedConfig {
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("segment_size_mb = 256", "segment_size_mb = 4", 1)
        .replacen("[gateway]\nenabled = true", "[gateway]\nenabled = false", 1)
        .replacen(
            "[[signals.models]]\nname = \"btcusdt-ridge\"",
            "[[signals.models]]\nname = \"btcusdt-ridge\"\nversion = 1",
            1,
        );
    assert!(text.contains("version = 1"));
    let path = dir.join("signals.toml");
    std::fs::write(&path, text).unwrap();
    config::load(Some(&path)).unwrap()
}

#[test]
fn hot_swap_through_the_admin_command() {
    let dir = temp_dir("swap");
    let data = dir.join("data");
    let models = data.join("models");
    let loaded = engine_config(&dir);
    // Five times the recorded pace: the model's features are warm (10 s of history) after
    // about 2 s.
    let options = RunOptions {
        speed: Some(Pace::Speed(5.0)),
        data_dir: Some(data.clone()),
        duration: Some(Duration::from_secs(8)),
        ..RunOptions::default()
    };
    let started = engine::start(&loaded, &options).unwrap();
    // New versions arrive in the models directory while it runs. Version 2: the same graph under a new version number. Version 3: metadata whose hash
    // does not match its file (a corrupt copy).
    let v1 = std::fs::read_to_string(repo().join("core/models/btcusdt-ridge-1.json")).unwrap();
    let mut v2: serde_json::Value = serde_json::from_str(&v1).unwrap();
    v2["version"] = 2.into();
    std::fs::write(
        models.join("btcusdt-ridge-2.json"),
        serde_json::to_vec(&v2).unwrap(),
    )
    .unwrap();
    let mut v3 = v2.clone();
    v3["version"] = 3.into();
    v3["onnx"] = "btcusdt-ridge-3.onnx".into();
    std::fs::write(models.join("btcusdt-ridge-3.onnx"), b"not an onnx graph").unwrap();
    std::fs::write(
        models.join("btcusdt-ridge-3.json"),
        serde_json::to_vec(&v3).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let refused = started.admin.call(
        AdminCommand::SwapModel {
            model: MODEL.to_owned(),
            version: Some(3),
        },
        Duration::from_secs(30),
    );
    let error = refused.unwrap_err();
    assert!(error.contains("btcusdt-ridge-3"), "{error}");
    let unknown = started.admin.call(
        AdminCommand::SwapModel {
            model: "no-such-model".to_owned(),
            version: None,
        },
        Duration::from_secs(30),
    );
    assert!(unknown.unwrap_err().contains("no model named"));
    let swapped = started
        .admin
        .call(
            AdminCommand::SwapModel {
                model: MODEL.to_owned(),
                version: Some(2),
            },
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(swapped["version"], 2);
    assert_eq!(swapped["previous"], 1);
    let finished = started.wait();
    assert!(!finished.report.failed);
    assert_eq!(
        finished.report.counter("signals", "btcusdt-ridge.swaps"),
        Some(1)
    );

    // The journal: the swap, and signals of version 1 before it and 2 after it.
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let mut swap_at = None;
    let (mut before, mut after) = (0, 0);
    for frame in reader.iter() {
        let envelope = frame.envelope().unwrap().unwrap();
        match RecordKind::try_from(envelope.header.kind) {
            Ok(RecordKind::ModelEvent) => {
                let event = *envelope.payload::<ModelEvent>().unwrap();
                if event.kind() == Some(ModelEventKind::Swapped) {
                    assert_eq!((event.version, event.previous), (2, 1));
                    swap_at = Some(frame.seq());
                }
                assert_ne!(event.kind(), Some(ModelEventKind::SwapRefused));
            }
            Ok(RecordKind::Signal) => {
                let signal = *envelope.payload::<Signal>().unwrap();
                match swap_at {
                    None => {
                        assert_eq!(signal.model_version, 1);
                        before += 1;
                    }
                    Some(_) => {
                        assert_eq!(signal.model_version, 2);
                        after += 1;
                    }
                }
            }
            _ => {}
        }
    }
    assert!(swap_at.is_some(), "no swap journaled");
    assert!(
        before > 0 && after > 0,
        "{before} signals before, {after} after"
    );

    // A restart (configured with version 1) restores the swap: version 2 serves again.
    std::fs::remove_file(models.join("btcusdt-ridge-3.json")).unwrap();
    let options = RunOptions {
        duration: Some(Duration::from_secs(3)),
        ..options
    };
    let finished = engine::start(&loaded, &options).unwrap().wait();
    assert!(!finished.report.failed);
    let reader = JournalReader::open(data.join("journal")).unwrap();
    let last_version = reader
        .iter()
        .filter_map(|frame| {
            let envelope = frame.envelope()?.ok()?;
            envelope.payload::<Signal>().map(|s| s.model_version)
        })
        .last();
    assert_eq!(last_version, Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_that_does_not_load_stops_the_start_with_its_reason() {
    let dir = temp_dir("refused");
    let data = dir.join("data");
    let text = DEFAULT_CONFIG
        .replacen("[gateway]\nenabled = true", "[gateway]\nenabled = false", 1)
        .replacen(
            "[[signals.models]]\nname = \"btcusdt-ridge\"",
            "[[signals.models]]\nname = \"btcusdt-ridge\"\nversion = 7",
            1,
        );
    assert!(text.contains("version = 7"));
    let path = dir.join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load(Some(&path)).unwrap();
    let options = RunOptions {
        data_dir: Some(data),
        ..RunOptions::default()
    };
    let Err(error) = engine::start(&loaded, &options) else {
        panic!("started with a model version that does not exist");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("signals.models[0]") && message.contains('7'),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_onnx_runtime_is_explained_or_tolerated_by_configuration() {
    let dir = temp_dir("runtime");
    let aaiti = env!("CARGO_BIN_EXE_aaiti");
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("[gateway]\nenabled = true", "[gateway]\nenabled = false", 1);
    let strict = dir.join("strict.toml");
    std::fs::write(&strict, &text).unwrap();
    let output = Command::new(aaiti)
        .args(["run", "--speed", "max", "--duration", "2", "--config"])
        .arg(&strict)
        .arg("--data-dir")
        .arg(dir.join("a"))
        .env("ORT_DYLIB_PATH", dir.join("no-such-libonnxruntime.so"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-libonnxruntime.so") && stderr.contains("./x setup"),
        "{stderr}"
    );

    let lenient = dir.join("lenient.toml");
    std::fs::write(
        &lenient,
        text.replacen(
            "on_missing_runtime = \"error\"",
            "on_missing_runtime = \"disable\"",
            1,
        ),
    )
    .unwrap();
    let output = Command::new(aaiti)
        .args([
            "run",
            "--speed",
            "max",
            "--duration",
            "2",
            "--json",
            "--config",
        ])
        .arg(&lenient)
        .arg("--data-dir")
        .arg(dir.join("b"))
        .env("ORT_DYLIB_PATH", dir.join("no-such-libonnxruntime.so"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        summary["summary"]["predictions"].is_null(),
        "{}",
        summary["summary"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `aaiti run --speed max --json` on the default configuration: the bundled model scores the
/// whole recording, the model strategy trades on it, and the summary says so.
#[test]
fn default_run_predicts_and_the_model_strategy_trades() {
    let dir = temp_dir("default");
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1);
    let path = dir.join("default.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aaiti"))
        .args(["run", "--speed", "max", "--json", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let totals = &summary["summary"];
    assert!(totals["predictions"].as_u64().unwrap() > 5000, "{totals}");
    assert!(totals["orders"].as_u64().unwrap() > 0, "{totals}");
    assert!(totals["fills"].as_u64().unwrap() > 0, "{totals}");
    assert!(totals["pnl_net"].as_f64().is_some(), "{totals}");
    let counter = |component: &str, name: &str| {
        summary["report"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["components"].as_array().unwrap())
            .filter(|c| c["name"] == component)
            .flat_map(|c| c["counters"].as_array().unwrap())
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_u64().unwrap())
    };
    assert_eq!(counter("signals", "btcusdt-ridge.non_finite"), Some(0));
    assert_eq!(counter("signals", "btcusdt-ridge.errors"), Some(0));
    assert!(counter("trading", "ml.orders").unwrap() > 10);
    assert!(counter("trading", "ml.fills").unwrap() > 0);
    let ml = summary["trading"]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["account"] == "ml-1");
    assert!(
        ml.is_some(),
        "no position line for the model strategy's account"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
