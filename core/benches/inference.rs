//! Inference latency: [`OnnxModel::predict`] beside Python onnxruntime's
//! `InferenceSession.run` on the same model, the same feature vectors and the same session
//! settings, in the same run.
//!
//! * Models: the small MLP of the tests (`core/tests/data/models/mlp-1`: 16 inputs, 32
//!   hidden with ReLU, 1 output) and, when `core/models/*.json` exists, the newest version of
//!   every bundled model.
//! * Inputs: 1 024 seeded pseudo-random vectors of the model's width (uniform in [-2, 2)),
//!   scored in turn; 10 000 warm-up runs, then 200 000 timed ones per side.
//! * Rust: every `predict` call timed on its own with `quanta::Clock::raw` (TSC) into an
//!   HdrHistogram (the clock's own cost, printed first, is included). Python:
//!   `tools/scripts/bench_onnx_python.py` under the venv of `tools/scripts/python_env.py --ml`
//!   (onnxruntime 1.31.1, the library the engine loads), timing each `run` with
//!   `perf_counter_ns`. Both are pinned to the machine's last CPU.
//!
//! Goals (issue 7): p50 <= 2 us, p99.9 <= 10 us, >= 5x faster than Python at p50.
//!
//! Run: `./x bench -p aaiti-core --bench inference` (ONNX Runtime from `ORT_DYLIB_PATH`, else
//! the checkout's `.deps/onnxruntime-1.31.1/`; about 10 s once built).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: a failure is a broken set-up, reported at once"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use aaiti_core::signals::model::{ModelRegistry, OnnxModel, RegistryEntry, init_runtime_from};
use hdrhistogram::Histogram;
use quanta::Clock;

const ITERATIONS: usize = 200_000;
const WARMUP: usize = 10_000;
const VECTORS: usize = 1_024;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => workspace().join(".deps/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

/// Seeded vectors of `width` values, uniform in [-2, 2) (xorshift64*).
fn vectors(width: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 bits
        (bits as f32 / (1u32 << 24) as f32) * 4.0 - 2.0
    };
    (0..VECTORS)
        .map(|_| (0..width).map(|_| next()).collect())
        .collect()
}

struct Figures {
    p50: u64,
    p99: u64,
    p999: u64,
    mean: f64,
}

fn bench_rust(clock: &Clock, model: &mut OnnxModel, inputs: &[Vec<f32>]) -> Figures {
    let mut sum = 0.0;
    for i in 0..WARMUP {
        sum += model.predict(&inputs[i % inputs.len()]).unwrap().value;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for i in 0..ITERATIONS {
        let x = &inputs[i % inputs.len()];
        let start = clock.raw();
        let prediction = model.predict(x);
        let end = clock.raw();
        sum += prediction.unwrap().value;
        hist.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    assert!(sum.is_finite());
    Figures {
        p50: hist.value_at_quantile(0.5),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        mean: hist.mean(),
    }
}

/// The venv python with onnxruntime, or why there is none.
fn python() -> Result<PathBuf, String> {
    let output = Command::new("python3")
        .arg(workspace().join("tools/scripts/python_env.py"))
        .args(["--ml", "--quiet"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "python_env.py --ml failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .last()
        .map(PathBuf::from)
        .ok_or_else(|| "python_env.py printed no path".to_owned())
}

fn bench_python(
    python: &Path,
    onnx: &Path,
    inputs: &[Vec<f32>],
    cpu: Option<usize>,
) -> Result<Figures, String> {
    let file = std::env::temp_dir().join(format!("aaiti-bench-inputs-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::json!({ "inputs": inputs }).to_string())
        .map_err(|e| e.to_string())?;
    let mut command = Command::new(python);
    command
        .arg(workspace().join("tools/scripts/bench_onnx_python.py"))
        .arg(onnx)
        .arg(&file)
        .args(["--iterations", &ITERATIONS.to_string()])
        .args(["--warmup", &WARMUP.to_string()]);
    if let Some(cpu) = cpu {
        command.args(["--cpu", &cpu.to_string()]);
    }
    let output = command.output().map_err(|e| e.to_string());
    let _ = std::fs::remove_file(&file);
    let output = output?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    let field = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
    eprintln!(
        "  python {} onnxruntime {}: perf_counter_ns pair {} ns",
        report["python"].as_str().unwrap_or("?"),
        report["runtime"].as_str().unwrap_or("?"),
        field("clock_ns")
    );
    Ok(Figures {
        p50: field("p50_ns") as u64,
        p99: field("p99_ns") as u64,
        p999: field("p999_ns") as u64,
        mean: field("mean_ns"),
    })
}

/// The models to time: the test MLP and the newest version of each bundled model.
fn models() -> Vec<(String, RegistryEntry)> {
    let tests = ModelRegistry::open(&workspace().join("core/tests/data/models")).unwrap();
    let mut models = vec![(
        "mlp 16-32-1".to_owned(),
        tests.get("mlp", Some(1)).unwrap().clone(),
    )];
    let bundled = workspace().join("core/models");
    if bundled.is_dir() {
        match ModelRegistry::open(&bundled) {
            Ok(registry) => {
                let mut names: Vec<&str> = registry
                    .list()
                    .iter()
                    .map(|e| e.metadata().name.as_str())
                    .collect();
                names.dedup();
                for name in names {
                    let entry = registry.get(name, None).unwrap();
                    let label = format!("{name} v{}", entry.metadata().version);
                    models.push((label, entry.clone()));
                }
            }
            Err(error) => eprintln!("bundled models skipped: {error}"),
        }
    } else {
        eprintln!("no core/models/: timing the test MLP only");
    }
    models
}

fn main() {
    let started = Instant::now();
    init_runtime_from(&library()).unwrap_or_else(|e| panic!("{e}"));
    let cpu = core_affinity::get_core_ids()
        .and_then(|ids| ids.last().copied())
        .filter(|id| core_affinity::set_for_current(*id))
        .map(|id| id.id);
    eprintln!("pinned to cpu {cpu:?}");

    let clock = Clock::new();
    let mut overhead = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
    for _ in 0..1_000_000 {
        let start = clock.raw();
        let end = clock.raw();
        overhead.saturating_record(clock.delta_as_nanos(start, end).max(1));
    }
    eprintln!(
        "clock overhead (quanta raw pair): p50 {} ns, p99 {} ns",
        overhead.value_at_quantile(0.5),
        overhead.value_at_quantile(0.99)
    );

    let python = python();
    if let Err(reason) = &python {
        eprintln!("python baseline unavailable: {reason}");
    }
    let mut rows = Vec::new();
    for (seed, (label, entry)) in (1_u64..).zip(models()) {
        let mut model = match OnnxModel::load(&entry) {
            Ok(model) => model,
            Err(error) => {
                eprintln!("{label}: not loaded: {error}");
                continue;
            }
        };
        let inputs = vectors(model.input_width(), seed);
        eprintln!(
            "{label}: {} inputs, {}",
            model.input_width(),
            entry.onnx_path().display()
        );
        let rust = bench_rust(&clock, &mut model, &inputs);
        let py = python.as_ref().ok().map(|python| {
            bench_python(python, &entry.onnx_path(), &inputs, cpu).unwrap_or_else(|e| {
                eprintln!("  python run failed: {e}");
                Figures {
                    p50: 0,
                    p99: 0,
                    p999: 0,
                    mean: f64::NAN,
                }
            })
        });
        rows.push((label, rust, py));
    }

    eprintln!(
        "\nlatency per prediction, ns ({ITERATIONS} timed runs each; python = \
         InferenceSession.run)"
    );
    eprintln!(
        "{:<22} {:>8} {:>8} {:>9} {:>8} | {:>8} {:>8} {:>9} {:>8} | {:>6} {:>6}",
        "model",
        "rust p50",
        "p99",
        "p99.9",
        "mean",
        "py p50",
        "p99",
        "p99.9",
        "mean",
        "p50 x",
        "p99 x"
    );
    for (label, rust, py) in &rows {
        let (py50, py99, py999, pymean) = py
            .as_ref()
            .map_or((0, 0, 0, f64::NAN), |p| (p.p50, p.p99, p.p999, p.mean));
        eprintln!(
            "{label:<22} {:>8} {:>8} {:>9} {:>8.0} | {py50:>8} {py99:>8} {py999:>9} {pymean:>8.0} \
             | {:>6.2} {:>6.2}",
            rust.p50,
            rust.p99,
            rust.p999,
            rust.mean,
            py50 as f64 / rust.p50 as f64,
            py99 as f64 / rust.p99 as f64,
        );
    }
    for (label, rust, py) in &rows {
        let ratio = py.as_ref().map(|p| p.p50 as f64 / rust.p50 as f64);
        eprintln!(
            "goals {label}: p50 <= 2000 ns {}, p99.9 <= 10000 ns {}, >= 5x python {}",
            verdict(rust.p50 <= 2_000),
            verdict(rust.p999 <= 10_000),
            ratio.map_or("n/a", |r| verdict(r >= 5.0)),
        );
    }
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
