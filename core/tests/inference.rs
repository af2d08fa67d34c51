//! ONNX inference through the public API: the registry over `core/tests/data/models/`
//! (written by `tools/scripts/make_test_models.py`), predictions against numpy's forward pass
//! of the same weights (`expected/forward.json`), determinism, every load refusal, bad input,
//! no allocation in `predict`, ensembles, and runtime loading errors (in a child process,
//! since a process loads ONNX Runtime once).
//!
//! ONNX Runtime comes from `ORT_DYLIB_PATH` (`./x test` sets it) or, under a plain
//! `cargo test`, from `.deps/onnxruntime-1.31.1/` of this checkout (`./x setup` installs
//! it). Without either the tests fail and say so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
#![allow(
    unsafe_code,
    reason = "a counting GlobalAlloc wrapper around the system allocator"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use aaiti_core::signals::model::{
    Ensemble, EnsembleError, EnsembleMethod, IoKind, ModelError, ModelRegistry, OnnxModel,
    Prediction, RegistryEntry, RegistryError, combine, init_runtime, init_runtime_from,
};
use serde_json::Value;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the thread-locals are const-initialized `Cell`s without destructors, so touching
// them never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, else the checkout's `.deps` copy.
fn library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.deps/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

fn runtime() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let path = library();
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime not found at {} (ORT_DYLIB_PATH unset or wrong): run `./x setup` \
                 or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 from the onnxruntime 1.31.1 \
                 wheel",
                path.display()
            ));
        }
        init_runtime_from(&path).map_err(|e| e.to_string())
    });
    if let Err(message) = ready {
        panic!("{message}");
    }
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models")
}

fn registry() -> ModelRegistry {
    ModelRegistry::open(&models_dir()).unwrap()
}

fn load(name: &str) -> OnnxModel {
    runtime();
    OnnxModel::load(registry().get(name, None).unwrap()).unwrap()
}

fn load_error(name: &str) -> ModelError {
    runtime();
    OnnxModel::load(registry().get(name, None).unwrap()).expect_err(name)
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(models_dir().join("expected/forward.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn inputs(fixture: &Value) -> Vec<Vec<f32>> {
    fixture["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn column(fixture: &Value, model: &str, key: &str) -> Vec<f64> {
    fixture["models"][model][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// float32 inference against a float64 reference.
fn close(got: f64, expected: f64) -> bool {
    (got - expected).abs() <= 1e-5 * expected.abs().max(1.0)
}

#[test]
fn registry_lists_and_finds_models() {
    let registry = registry();
    let listed: Vec<(String, u32)> = registry
        .list()
        .iter()
        .map(|e| (e.metadata().name.clone(), e.metadata().version))
        .collect();
    for expected in [("mlp", 1), ("mlp", 2), ("mlp-conf", 1), ("corrupt", 1)] {
        assert!(
            listed.contains(&(expected.0.to_owned(), expected.1)),
            "{expected:?} not in {listed:?}"
        );
    }
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "listed by name then version");

    assert_eq!(registry.get("mlp", None).unwrap().metadata().version, 2);
    let v1 = registry.get("mlp", Some(1)).unwrap();
    assert_eq!(v1.metadata().version, 1);
    assert_eq!(v1.onnx_path(), models_dir().join("mlp-1.onnx"));
    assert!(v1.metadata().reference.is_some());

    let missing = registry.get("mlp", Some(7)).unwrap_err();
    assert!(matches!(missing, RegistryError::NotFound { .. }));
    let message = missing.to_string();
    assert!(message.contains("no model mlp v7"), "{message}");
    assert!(message.contains("mlp v1, mlp v2"), "{message}");
    assert!(registry.get("nothing", None).is_err());
}

#[test]
fn predictions_match_numpy() {
    let fixture = fixture();
    let vectors = inputs(&fixture);
    for (stem, name, version) in [
        ("mlp-1", "mlp", Some(1)),
        ("mlp-2", "mlp", Some(2)),
        ("mlp-conf", "mlp-conf", None),
        ("mlp-prob", "mlp-prob", None),
    ] {
        runtime();
        let registry = registry();
        let mut model = OnnxModel::load(registry.get(name, version).unwrap()).unwrap();
        assert_eq!(model.input_width(), 16);
        let expected = column(&fixture, stem, "prediction");
        for (i, (x, want)) in vectors.iter().zip(&expected).enumerate() {
            let got = model.predict(x).unwrap();
            assert!(
                close(got.value, *want),
                "{stem} vector {i}: {} vs numpy {want}",
                got.value
            );
            let want_confidence = match stem {
                // No confidence output: |v| / (|v| + rmse), rmse 0.5 in the metadata.
                "mlp-1" | "mlp-2" => got.value.abs() / (got.value.abs() + 0.5),
                "mlp-conf" => column(&fixture, stem, "confidence")[i],
                _ => fixture["models"][stem]["probabilities"][i]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_f64().unwrap())
                    .fold(0.0, f64::max),
            };
            assert!(
                close(got.confidence, want_confidence),
                "{stem} vector {i}: confidence {} vs {want_confidence}",
                got.confidence
            );
            assert!((0.0..=1.0).contains(&got.confidence));
        }
    }
}

#[test]
fn predictions_are_deterministic() {
    let vectors = inputs(&fixture());
    let mut a = load("mlp-conf");
    let mut b = load("mlp-conf");
    for x in &vectors {
        let first = a.predict(x).unwrap();
        let again = a.predict(x).unwrap();
        let other_session = b.predict(x).unwrap();
        for p in [again, other_session] {
            assert_eq!(first.value.to_bits(), p.value.to_bits());
            assert_eq!(first.confidence.to_bits(), p.confidence.to_bits());
        }
    }
}

#[test]
fn bad_input_never_reaches_the_model() {
    let mut model = load("mlp");
    let mut x = vec![0.25_f32; 16];
    let good = model.predict(&x).unwrap();
    x[3] = f32::NAN;
    assert!(matches!(
        model.predict(&x),
        Err(ModelError::NonFiniteInput { index: 3 })
    ));
    x[3] = 0.25;
    x[15] = f32::NEG_INFINITY;
    assert!(matches!(
        model.predict(&x),
        Err(ModelError::NonFiniteInput { index: 15 })
    ));
    assert!(matches!(
        model.predict(&[0.0; 15]),
        Err(ModelError::WidthMismatch {
            expected: 16,
            got: 15
        })
    ));
    assert!(matches!(
        model.predict(&[0.0; 17]),
        Err(ModelError::WidthMismatch { .. })
    ));
    // The session still serves the same answer afterwards.
    x[15] = 0.25;
    assert_eq!(model.predict(&x).unwrap(), good);
}

#[test]
fn predict_does_not_allocate() {
    let vectors = inputs(&fixture());
    for name in ["mlp", "mlp-conf", "mlp-prob"] {
        let mut model = load(name);
        let mut sum = 0.0;
        let count = allocations(|| {
            for _ in 0..200 {
                for x in &vectors {
                    sum += model.predict(x).unwrap().value;
                }
            }
        });
        assert!(sum.is_finite());
        assert_eq!(count, 0, "{name}: {count} allocations in 1 600 predictions");
    }
    let mut ensemble = Ensemble::new(
        vec![load("mlp"), load("mlp-conf"), load("mlp-prob")],
        vec![1.0, 2.0, 1.0],
        EnsembleMethod::WeightedAverage,
    )
    .unwrap();
    let count = allocations(|| {
        for x in &vectors {
            ensemble.predict(x).unwrap();
        }
    });
    assert_eq!(count, 0, "ensemble: {count} allocations");
    // The bad-input path does not allocate either (the stage counts and skips).
    let mut model = load("mlp");
    let nan = [f32::NAN; 16];
    let count = allocations(|| {
        for _ in 0..100 {
            assert!(model.predict(&nan).is_err());
        }
    });
    assert_eq!(count, 0);
}

/// Loads a bad model and returns the error and its message.
fn refusal(name: &str) -> (ModelError, String) {
    let error = load_error(name);
    let message = error.to_string();
    (error, message)
}

#[test]
fn every_refusal_names_the_file_and_the_mismatch() {
    let (error, message) = refusal("bad-input-name");
    assert!(
        matches!(&error, ModelError::IoName { kind: IoKind::Input, index: 0, metadata, model, .. }
            if metadata == "features" && model == "x"),
        "{error:?}"
    );
    assert!(message.contains("bad-input-name.onnx"), "{message}");
    assert!(message.contains("input 0 is named \"x\""), "{message}");

    let (error, message) = refusal("bad-output-name");
    assert!(
        matches!(&error, ModelError::IoName { kind: IoKind::Output, metadata, model, .. }
            if metadata == "score" && model == "prediction"),
        "{error:?}"
    );
    assert!(message.contains("mlp-1.onnx"), "{message}");

    let (error, message) = refusal("bad-width");
    assert!(
        matches!(&error, ModelError::IoShape { kind: IoKind::Input, metadata, model, .. }
            if metadata == "[1, 16]" && model == "[1, 12]"),
        "{error:?}"
    );
    assert!(message.contains("bad-width.onnx"), "{message}");

    let (error, message) = refusal("bad-features");
    assert!(
        matches!(
            error,
            ModelError::InputWidth {
                features: 16,
                input: 12,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(message.contains("bad-features.onnx"), "{message}");

    let (error, message) = refusal("bad-dtype");
    assert!(
        matches!(&error, ModelError::IoType { kind: IoKind::Input, name, .. } if name == "features"),
        "{error:?}"
    );
    assert!(message.contains("float32"), "{message}");

    let (error, message) = refusal("bad-hash");
    let mlp1 = std::fs::read(models_dir().join("mlp-1.onnx")).unwrap();
    let mlp1_sha = sha256_hex(&mlp1);
    assert!(
        matches!(&error, ModelError::HashMismatch { expected, actual, .. }
            if *expected == "ab".repeat(32) && *actual == mlp1_sha),
        "{error:?}"
    );
    assert!(message.contains("mlp-1.onnx"), "{message}");

    let (error, message) = refusal("missing");
    assert!(
        matches!(&error, ModelError::OnnxMissing { path, metadata }
            if path.ends_with("missing.onnx") && metadata.ends_with("missing.json")),
        "{error:?}"
    );
    assert!(message.contains("model file missing"), "{message}");

    let (error, message) = refusal("corrupt");
    assert!(matches!(error, ModelError::Corrupt { .. }), "{error:?}");
    assert!(message.contains("corrupt.onnx"), "{message}");

    let (error, message) = refusal("bad-path");
    assert!(matches!(error, ModelError::Metadata { .. }), "{error:?}");
    assert!(
        message.contains("bad-path.json") && message.contains("`onnx`"),
        "{message}"
    );

    let (error, message) = refusal("no-rmse");
    assert!(matches!(error, ModelError::Metadata { .. }), "{error:?}");
    assert!(
        message.contains("no-rmse.json") && message.contains("validation.rmse"),
        "{message}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A fresh scratch directory for this test run.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aaiti-inference-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn registry_refuses_bad_directories() {
    let missing = Path::new("/nonexistent/aaiti-models");
    assert!(matches!(
        ModelRegistry::open(missing),
        Err(RegistryError::ReadDir { .. })
    ));

    let dir = scratch("malformed");
    std::fs::write(dir.join("broken.json"), "{ \"name\": \"x\", ").unwrap();
    let error = ModelRegistry::open(&dir).unwrap_err();
    assert!(matches!(error, RegistryError::Parse { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("broken.json"), "{message}");

    let dir = scratch("duplicate");
    let mlp = std::fs::read_to_string(models_dir().join("mlp-1.json")).unwrap();
    std::fs::write(dir.join("a.json"), &mlp).unwrap();
    std::fs::write(dir.join("b.json"), &mlp).unwrap();
    let error = ModelRegistry::open(&dir).unwrap_err().to_string();
    assert!(
        error.contains("mlp v1 is declared twice") && error.contains("a.json"),
        "{error}"
    );

    let dir = scratch("empty");
    let registry = ModelRegistry::open(&dir).unwrap();
    assert!(registry.list().is_empty());
    assert!(
        registry
            .get("mlp", None)
            .unwrap_err()
            .to_string()
            .contains("available: none")
    );
    for name in ["malformed", "duplicate", "empty"] {
        std::fs::remove_dir_all(scratch(name)).unwrap();
    }
}

#[test]
fn a_metadata_file_loads_on_its_own() {
    // The hot-swap path: one metadata file, not a directory.
    runtime();
    let entry = RegistryEntry::from_file(&models_dir().join("mlp-conf.json")).unwrap();
    let mut model = OnnxModel::load(&entry).unwrap();
    assert_eq!((model.name(), model.version()), ("mlp-conf", 1));
    assert!(model.predict(&[0.1; 16]).is_ok());
    // And from an explicit path plus metadata.
    let mut model = OnnxModel::load_from(&entry.onnx_path(), entry.metadata().clone()).unwrap();
    assert!(model.predict(&[0.1; 16]).is_ok());
    assert!(matches!(
        RegistryEntry::from_file(&models_dir().join("nope.json")),
        Err(RegistryError::Read { .. })
    ));
}

#[test]
fn ensembles_combine_their_members() {
    let vectors = inputs(&fixture());
    let weights = vec![1.0, 2.0, 0.5];
    for method in [
        EnsembleMethod::WeightedAverage,
        EnsembleMethod::MajorityVote,
    ] {
        let mut singles = [load("mlp"), load("mlp-conf"), load("mlp-prob")];
        let mut ensemble = Ensemble::new(
            vec![load("mlp"), load("mlp-conf"), load("mlp-prob")],
            weights.clone(),
            method,
        )
        .unwrap();
        for x in &vectors {
            let members: Vec<Prediction> =
                singles.iter_mut().map(|m| m.predict(x).unwrap()).collect();
            let combined = ensemble.predict(x).unwrap();
            assert_eq!(ensemble.member_predictions(), members.as_slice());
            assert_eq!(combined, combine(method, &weights, &members));
            if method == EnsembleMethod::WeightedAverage {
                let mean =
                    (members[0].value + 2.0 * members[1].value + 0.5 * members[2].value) / 3.5;
                assert!((combined.value - mean).abs() < 1e-12);
            } else {
                // The value is that of the winning side, so its sign is a member's.
                assert!(
                    combined.value == 0.0
                        || members
                            .iter()
                            .any(|m| m.value.signum() == combined.value.signum())
                );
            }
            assert!((0.0..=1.0).contains(&combined.confidence));
        }
        // Bad input stops the ensemble at its first member.
        assert!(matches!(
            ensemble.predict(&[f32::NAN; 16]),
            Err(ModelError::NonFiniteInput { index: 0 })
        ));
    }
}

#[test]
fn ensembles_refuse_mismatched_members() {
    assert!(matches!(
        Ensemble::new(Vec::new(), Vec::new(), EnsembleMethod::MajorityVote),
        Err(EnsembleError::Empty)
    ));
    assert!(matches!(
        Ensemble::new(
            vec![load("mlp")],
            vec![1.0, 1.0],
            EnsembleMethod::MajorityVote
        ),
        Err(EnsembleError::WeightCount {
            members: 1,
            weights: 2
        })
    ));
    assert!(matches!(
        Ensemble::new(vec![load("mlp")], vec![-1.0], EnsembleMethod::MajorityVote),
        Err(EnsembleError::BadWeight { index: 0, .. })
    ));
    assert!(matches!(
        Ensemble::new(
            vec![load("mlp")],
            vec![f64::NAN],
            EnsembleMethod::MajorityVote
        ),
        Err(EnsembleError::BadWeight { .. })
    ));
    assert!(matches!(
        Ensemble::new(
            vec![load("mlp"), load("mlp-conf")],
            vec![0.0, 0.0],
            EnsembleMethod::WeightedAverage
        ),
        Err(EnsembleError::ZeroWeight)
    ));

    let entry = registry().get("mlp", Some(1)).unwrap().clone();
    let mut other_horizon = entry.metadata().clone();
    other_horizon.horizon_ms = 5_000;
    let mut other_sampling = entry.metadata().clone();
    other_sampling.features.sample_ms = 250;
    for (metadata, what) in [(other_horizon, "horizon"), (other_sampling, "feature spec")] {
        let odd = OnnxModel::load_from(&entry.onnx_path(), metadata).unwrap();
        let error = Ensemble::new(
            vec![load("mlp"), odd],
            vec![1.0, 1.0],
            EnsembleMethod::WeightedAverage,
        )
        .unwrap_err();
        assert!(
            matches!(&error, EnsembleError::Mismatch { index: 1, what: w, .. } if *w == what),
            "{error:?}"
        );
    }
}

#[test]
fn models_move_between_threads() {
    fn send<T: Send>() {}
    send::<OnnxModel>();
    send::<Ensemble>();
    let mut model = load("mlp");
    let handle = std::thread::spawn(move || model.predict(&[0.5; 16]).unwrap());
    assert!(handle.join().unwrap().value.is_finite());
}

/// Environment variable telling the child test which scenario to run.
const CHILD: &str = "AAITI_INFERENCE_CHILD";

/// Runs `runtime_errors_child` in a fresh process (ONNX Runtime loads once per process).
fn run_child(scenario: &str, ort_dylib_path: Option<&str>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "runtime_errors_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, scenario)
        .env("AAITI_INFERENCE_LIBRARY", library());
    match ort_dylib_path {
        Some(path) => command.env("ORT_DYLIB_PATH", path),
        None => command.env_remove("ORT_DYLIB_PATH"),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {scenario} failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn runtime_errors_say_what_to_do() {
    runtime(); // fail here, with the set-up message, if the library is not installed.
    run_child("unset", None);
    run_child("bogus", Some("/nonexistent/lib/libonnxruntime.so.1.31.1"));
}

/// The child half of [`runtime_errors_say_what_to_do`]; does nothing when run directly.
#[test]
#[ignore = "run by runtime_errors_say_what_to_do in a child process"]
fn runtime_errors_child() {
    let Ok(scenario) = std::env::var(CHILD) else {
        println!("runtime_errors_child only runs under runtime_errors_say_what_to_do");
        return;
    };
    let library = PathBuf::from(std::env::var_os("AAITI_INFERENCE_LIBRARY").unwrap());
    let fix = "run `./x setup` or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 from the \
               onnxruntime 1.31.1 wheel";
    if scenario == "bogus" {
        let error = init_runtime().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ModelError::RuntimeMissing { .. }),
            "{error:?}"
        );
        assert!(
            message.contains("/nonexistent/lib/libonnxruntime.so.1.31.1 does not exist"),
            "{message}"
        );
        assert!(message.contains(fix), "{message}");
        return;
    }

    // ORT_DYLIB_PATH unset.
    let error = init_runtime().unwrap_err();
    assert!(matches!(error, ModelError::RuntimeUnset), "{error:?}");
    assert!(error.to_string().contains("ORT_DYLIB_PATH is not set"));
    assert!(error.to_string().contains(fix));
    // Loading a model without a runtime gives the same advice.
    let registry = registry();
    let error = OnnxModel::load(registry.get("mlp", None).unwrap()).unwrap_err();
    assert!(matches!(error, ModelError::RuntimeUnset), "{error:?}");

    let error = init_runtime_from(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/nonexistent/libonnxruntime.so does not exist"),
        "{error}"
    );
    let error = init_runtime_from(&models_dir()).unwrap_err();
    assert!(
        error.to_string().contains("is not a regular file"),
        "{error}"
    );
    // A regular file that is not a shared library: the loader's refusal, not a crash.
    let not_a_library = models_dir().join("mlp-1.json");
    let error = init_runtime_from(&not_a_library).unwrap_err();
    assert!(matches!(error, ModelError::RuntimeLoad { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("cannot load") && message.contains("mlp-1.json") && message.contains(fix),
        "{message}"
    );

    init_runtime_from(&library).unwrap();
    init_runtime_from(&library).unwrap();
    init_runtime().unwrap(); // loaded: the unset variable no longer matters
    let error = init_runtime_from(&not_a_library).unwrap_err();
    assert!(
        matches!(error, ModelError::RuntimeAlreadyLoaded { .. }),
        "{error:?}"
    );
    let mut model = OnnxModel::load(registry.get("mlp", None).unwrap()).unwrap();
    assert!(model.predict(&[0.0; 16]).is_ok());
}
