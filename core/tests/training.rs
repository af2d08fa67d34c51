//! The training pipeline: the engine's feature export feeds `tools/scripts/train.py`, whose
//! model and metadata are what the engine serves.
//!
//! * A short export of the bundled recording is trained twice into two directories: the
//!   files are byte-identical, the metadata parses as the engine's `ModelMetadata`, its hash
//!   is the graph's, its feature spec is the one given (with z-scores filled in), its
//!   training section describes the CSV.
//! * The committed model (`core/models/btcusdt-ridge-1`) was trained on exactly what the
//!   engine exports today: its recorded CSV hash equals the hash of a fresh export of the
//!   whole recording with its spec. A change to the feature code that moves any value fails
//!   here until the model is retrained (see `core/models/README.md`).
//!
//! train.py runs under the project's venv (`tools/scripts/python_env.py --ml` installs the
//! pinned packages from PyPI the first time). Without python3 or the packages the test
//! fails and says why: it never skips.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use aaiti_core::config;
use aaiti_core::replay::{BUNDLED_BINANCE_BTCUSDT_NAME, ReplayVenue};
use aaiti_core::signals::features::export::{ExportOptions, ExportSummary, export};
use aaiti_core::signals::features::{FeatureSpec, Normalization};
use aaiti_core::signals::model::{Dim, ModelMetadata};
use sha2::{Digest, Sha256};

const HORIZON_MS: u32 = 2_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-training-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The spec the bundled model is trained with.
fn spec_path() -> PathBuf {
    repo().join("core/models/training/btcusdt-ridge.spec.json")
}

fn spec() -> FeatureSpec {
    serde_json::from_str(&std::fs::read_to_string(spec_path()).unwrap()).unwrap()
}

fn export_bundled(out: &Path, duration_ms: Option<u64>) -> ExportSummary {
    let options = ExportOptions {
        recording: BUNDLED_BINANCE_BTCUSDT_NAME.to_owned(),
        venue: ReplayVenue::Binance,
        spec: spec(),
        horizons_ms: vec![HORIZON_MS],
        out: out.to_owned(),
        duration_ms,
    };
    export(&options, &config::load(None).unwrap().registry).unwrap()
}

/// Runs train.py (it re-executes itself under the venv python).
fn train(csv: &Path, out_dir: &Path) -> PathBuf {
    let script = repo().join("tools/scripts/train.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--csv".as_ref(), csv.as_os_str()])
        .args(["--spec".as_ref(), spec_path().as_os_str()])
        .args(["--horizon-ms", &HORIZON_MS.to_string()])
        .args(["--out-dir".as_ref(), out_dir.as_os_str()])
        .args(["--name", "btcusdt-ridge", "--version", "7", "--folds", "4"])
        .args(["--source", "bundled:binance-btcusdt (test window)"])
        .output()
        .unwrap_or_else(|error| panic!("train.py needs python3 on PATH: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "train.py failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    let metadata = PathBuf::from(stdout.trim());
    assert_eq!(metadata, out_dir.join("btcusdt-ridge-7.json"), "{stderr}");
    metadata
}

/// `spec` with every normalisation removed (training fills them in).
fn without_norms(mut spec: FeatureSpec) -> FeatureSpec {
    for feature in &mut spec.features {
        feature.norm = Normalization::None;
    }
    spec
}

#[test]
fn a_short_export_trains_into_reproducible_engine_metadata() {
    let dir = temp_dir("short");
    let csv = dir.join("features.csv");
    let summary = export_bundled(&csv, Some(150_000));
    assert!(summary.rows > 1_000, "{summary:?}");

    let first = train(&csv, &dir.join("a"));
    let second = train(&csv, &dir.join("b"));
    let onnx = dir.join("a/btcusdt-ridge-7.onnx");
    assert_eq!(
        std::fs::read(&onnx).unwrap(),
        std::fs::read(dir.join("b/btcusdt-ridge-7.onnx")).unwrap(),
        "two trainings on the same CSV wrote different graphs"
    );
    assert_eq!(
        std::fs::read_to_string(&first).unwrap(),
        std::fs::read_to_string(&second).unwrap(),
        "two trainings on the same CSV wrote different metadata"
    );

    let metadata = ModelMetadata::from_json(&std::fs::read_to_string(&first).unwrap()).unwrap();
    metadata.check().unwrap();
    assert_eq!(metadata.name, "btcusdt-ridge");
    assert_eq!(metadata.version, 7);
    assert_eq!(metadata.onnx, "btcusdt-ridge-7.onnx");
    assert_eq!(metadata.sha256, sha256(&onnx));
    assert_eq!(metadata.horizon_ms, HORIZON_MS);
    let width = spec().len() as u64;
    assert_eq!(metadata.inputs.len(), 1);
    assert_eq!(metadata.inputs[0].name, "features");
    assert_eq!(metadata.inputs[0].shape, [Dim::Dynamic, Dim::Fixed(width)]);
    assert_eq!(metadata.outputs.len(), 1);
    assert_eq!(metadata.outputs[0].name, "prediction");
    assert_eq!(metadata.outputs[0].shape, [Dim::Dynamic, Dim::Fixed(1)]);

    // The feature spec is the one given, now with a z-score per feature.
    metadata.features.validate().unwrap();
    assert_eq!(
        without_norms(metadata.features.clone()),
        without_norms(spec())
    );
    assert!(
        metadata
            .features
            .features
            .iter()
            .all(|f| matches!(f.norm, Normalization::Zscore { std, .. } if std > 0.0))
    );

    let training = &metadata.training;
    assert_eq!(training.rows, summary.rows);
    assert_eq!(Some(training.from_ns), summary.first_ts_ns);
    assert_eq!(Some(training.to_ns), summary.last_ts_ns);
    assert_eq!(training.csv_sha256, sha256(&csv));

    let validation = &metadata.validation;
    assert_eq!(validation.folds.len(), 4);
    assert!(validation.rmse.is_some_and(|rmse| rmse > 0.0));
    assert!(validation.ic.is_some_and(|ic| (-1.0..=1.0).contains(&ic)));
    assert!(
        validation
            .hit_rate
            .is_some_and(|hit| (0.0..=1.0).contains(&hit))
    );

    let reference = metadata.reference.as_ref().unwrap();
    assert_eq!(reference.features.len(), spec().len());
    for histogram in reference.features.iter().chain([&reference.prediction]) {
        assert!(!histogram.edges.is_empty() && histogram.edges.len() <= 9);
        assert_eq!(histogram.fractions.len(), histogram.edges.len() + 1);
        assert!(histogram.edges.windows(2).all(|w| w[0] < w[1]));
        let total: f64 = histogram.fractions.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_bundled_model_was_trained_on_what_the_engine_exports() {
    let models = repo().join("core/models");
    let metadata_path = models.join("btcusdt-ridge-1.json");
    let metadata =
        ModelMetadata::from_json(&std::fs::read_to_string(&metadata_path).unwrap()).unwrap();
    metadata.check().unwrap();
    assert_eq!(metadata.sha256, sha256(&models.join(&metadata.onnx)));
    assert_eq!(
        without_norms(metadata.features.clone()),
        without_norms(spec())
    );
    assert_eq!(metadata.horizon_ms, HORIZON_MS);

    let dir = temp_dir("bundled");
    let csv = dir.join("features.csv");
    let summary = export_bundled(&csv, None);
    assert_eq!(metadata.training.rows, summary.rows);
    assert_eq!(
        metadata.training.csv_sha256,
        sha256(&csv),
        "the feature export changed since core/models/btcusdt-ridge-1 was trained: retrain it \
         (core/models/README.md) so the model is served the features it learnt"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
