//! ONNX models: the runtime, the models directory, inference sessions and ensembles.
//!
//! * [`init_runtime`] loads ONNX Runtime (`ort` with `load-dynamic`) from `ORT_DYLIB_PATH`,
//!   once per process; `./x setup` installs the library from the `onnxruntime==1.31.1` wheel
//!   and exports the variable.
//! * [`ModelRegistry`] reads a models directory; [`OnnxModel::load`] loads one model, checks
//!   it against its metadata (hash, input/output names and shapes, input width) and warms it
//!   up; [`OnnxModel::predict`] scores a feature vector without allocating.
//! * [`Ensemble`] scores several models on one vector and [`combine`]s their predictions.
//!
//! ```no_run
//! use aaiti_core::signals::model::{ModelRegistry, OnnxModel, init_runtime};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! init_runtime()?;
//! let registry = ModelRegistry::open("core/models".as_ref())?;
//! let mut model = OnnxModel::load(registry.get("btcusdt-ridge", None)?)?;
//! let features = vec![0.0_f32; model.input_width()];
//! let prediction = model.predict(&features)?;
//! println!("{} ({})", prediction.value, prediction.confidence);
//! # Ok(())
//! # }
//! ```
//!
//! Limits: float32 single-row models only (one input `[1, n]` or `[?, n]`, a float32
//! prediction output of one value); no execution provider but the CPU; a process loads one
//! ONNX Runtime library, once.
//!
//! # Models directory
//!
//! Each model is two files side by side: the ONNX graph `<file>.onnx` (an ONNX protobuf
//! `ModelProto`, any IR version and opset ONNX Runtime 1.31 runs) and its metadata
//! `<file>.json`. The registry reads every `*.json` file directly in the directory.
//!
//! # Metadata file (`<file>.json`)
//!
//! One UTF-8 JSON object; the training pipeline (`tools/scripts/train.py`) writes it.
//! Fields (unknown top-level keys are ignored):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `name` | string, non-empty | model name; with `version` the registry key |
//! | `version` | integer `0..=2^32-1` | increases with every retraining; the newest is the default |
//! | `onnx` | string | file name of the graph, in the same directory (no `/`, no `..`) |
//! | `sha256` | string, 64 hex digits | SHA-256 of the `.onnx` file's bytes; checked at load |
//! | `inputs` | array of `{name, shape}` | the graph's inputs, in graph order |
//! | `outputs` | array of `{name, shape}` | the graph's outputs, in graph order |
//! | `horizon_ms` | integer `0..=2^32-1` | horizon of the predicted forward return, ms |
//! | `features` | object | the feature spec ([`FeatureSpec`](crate::signals::features::FeatureSpec)): the input vector, in order |
//! | `training` | object | `source` (string), `rows`, `from_ns`, `to_ns` (integers), `csv_sha256` (string); other keys kept |
//! | `validation` | object | `folds` (array, any items), `ic`, `hit_rate`, `rmse` (numbers or `null`); other keys kept |
//! | `reference` | object, optional | [`Reference`](crate::signals::monitor::Reference): one histogram per feature and one of the predictions |
//!
//! A `shape` is an array of dimensions: a non-negative integer is a fixed size; `-1`,
//! `null` or a string (a symbolic name such as `"N"`) is a dynamic one. It must match the
//! graph's declared shape dimension by dimension (dynamic only matches dynamic).
//!
//! `validation.rmse` (in the prediction's unit, above 0) is required when the graph has no
//! confidence output: the confidence is then derived from it (see [`OnnxModel`]).

mod ensemble;
mod error;
mod metadata;
mod onnx;
mod registry;
mod runtime;

pub use ensemble::{Ensemble, EnsembleError, EnsembleMethod, combine};
pub use error::{IoKind, ModelError};
pub use metadata::{Dim, ModelMetadata, TensorSpec, TrainingInfo, ValidationInfo};
pub use onnx::OnnxModel;
pub use registry::{ModelRegistry, RegistryEntry, RegistryError};
pub use runtime::{ORT_DYLIB_PATH, init_runtime, init_runtime_from, runtime_path};

/// One scored feature vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The model's output (for the engine's models: the expected forward log return over
    /// the metadata's `horizon_ms`).
    pub value: f64,
    /// How much to trust it, in `0..=1` (how it is obtained: [`OnnxModel`], [`combine`]).
    pub confidence: f64,
}
