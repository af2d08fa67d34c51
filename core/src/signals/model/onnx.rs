//! One model's inference session: checked against its metadata at load, then scored with
//! buffers bound once.

use std::path::{Path, PathBuf};

use ort::AsPointer;
use ort::memory::Allocator;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{IoBinding, RunOptions, Session};
use ort::value::{Outlet, Tensor, TensorElementType, ValueType};
use sha2::{Digest, Sha256};

use super::metadata::{Dim, ModelMetadata, ShapeDisplay, TensorSpec};
use super::registry::RegistryEntry;
use super::{IoKind, ModelError, Prediction, runtime};

/// Runs with a zero vector at load, so the first real prediction does not pay for ONNX
/// Runtime's lazy set-up (allocation planning, arena growth, kernel caches).
const WARMUP_RUNS: usize = 64;

/// Outputs a run computes: the prediction and the confidence.
const MAX_OUTPUTS: usize = 2;

/// Where a prediction's confidence comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ConfidenceSource {
    /// An output named like `confidence`: its single value, clamped to `0..=1`.
    Output,
    /// An output named like `probabilities`: its largest value, clamped to `0..=1`.
    MaxProbability,
    /// No such output: `|value| / (|value| + rmse)` with the validation RMSE.
    Rmse(f64),
}

/// A loaded model: one ONNX Runtime session, single-threaded, with its input and output
/// tensors allocated and bound once.
///
/// [`predict`](Self::predict) copies the features into the bound input tensor, runs the
/// graph into the pre-allocated output tensors and reads them: nothing is allocated on the
/// Rust side (a counting allocator checks it in `core/tests/inference.rs`). ONNX Runtime's
/// own per-run bookkeeping in C++ (its execution frame; intermediate tensors come from its
/// CPU arena) does not go through Rust's allocator and is not counted by that test.
///
/// Session settings: one intra-op and one inter-op thread (no thread pool, nothing spins),
/// sequential execution, every graph optimisation, memory patterns off, deterministic
/// kernels: the same input gives the same bits.
///
/// # Confidence
///
/// * If the graph has an output whose name contains `confidence` (any case), the
///   confidence is its value (one value), clamped to `0..=1`.
/// * Else, if an output's name contains `prob` (`probabilities`, `probability`), it is the
///   largest of its values (a classifier's winning class probability), clamped to `0..=1`.
/// * Else it is derived from the metadata's validation RMSE:
///   `confidence = |value| / (|value| + rmse)`: a prediction as large as the model's typical
///   error gets 0.5, one ten times larger 0.91, one ten times smaller 0.09, zero gets 0.
///   The metadata must then give an RMSE above 0.
///
/// The prediction is the first output that is not the confidence output; it must be a
/// float32 tensor holding one value. Other outputs are not computed.
pub struct OnnxModel {
    metadata: ModelMetadata,
    onnx_path: PathBuf,
    width: usize,
    confidence: ConfidenceSource,
    session: Session,
    /// `[1, width]` float32, bound to the graph's input (ONNX Runtime reads its buffer in
    /// place on the CPU: writing the features into it is all a run needs).
    input: Tensor<f32>,
    /// Pre-allocated output tensors, bound to the graph's outputs: the prediction, then the
    /// confidence output if the model has one. ONNX Runtime writes into them.
    outputs: Vec<Tensor<f32>>,
    /// Binds `input` and `outputs` to the session, once.
    binding: IoBinding,
    /// Default run options, created once rather than by ONNX Runtime on every run.
    run_options: RunOptions,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.metadata.name)
            .field("version", &self.metadata.version)
            .field("onnx_path", &self.onnx_path)
            .field("width", &self.width)
            .field("confidence", &self.confidence)
            .finish_non_exhaustive()
    }
}

impl OnnxModel {
    /// Loads a registry entry's model: see [`load_from`](Self::load_from) for the checks.
    ///
    /// # Errors
    ///
    /// As [`load_from`](Self::load_from); metadata errors name the metadata file.
    pub fn load(entry: &RegistryEntry) -> Result<Self, ModelError> {
        Self::load_inner(
            entry.onnx_path(),
            entry.metadata().clone(),
            entry.metadata_path(),
        )
    }

    /// Loads the ONNX graph at `onnx_path` described by `metadata`, checks them against each
    /// other, builds the session and warms it up. ONNX Runtime is initialised from
    /// `ORT_DYLIB_PATH` if [`super::init_runtime_from`] was not called before.
    ///
    /// Checks, in order: the metadata itself ([`ModelMetadata::check`]); the file exists;
    /// its SHA-256 equals `metadata.sha256`; ONNX Runtime accepts it; the graph's inputs and
    /// outputs have the metadata's count, names (in order) and shapes (a dynamic dimension
    /// matches only a dynamic one); there is exactly one input, a float32 `[1, n]` or
    /// `[?, n]` tensor with `n` the number of features; the outputs are usable (see the
    /// type docs).
    ///
    /// # Errors
    ///
    /// A [`ModelError`] naming the file and the mismatch: `Runtime*`, `Metadata`,
    /// `OnnxMissing`, `OnnxRead`, `HashMismatch`, `Corrupt`, `IoCount`, `IoName`,
    /// `IoShape`, `IoType`, `InputWidth`, or `Session` (warm-up failed).
    pub fn load_from(onnx_path: &Path, metadata: ModelMetadata) -> Result<Self, ModelError> {
        Self::load_inner(onnx_path.to_path_buf(), metadata, onnx_path)
    }

    fn load_inner(
        onnx_path: PathBuf,
        metadata: ModelMetadata,
        metadata_path: &Path,
    ) -> Result<Self, ModelError> {
        let bad_metadata = |reason: String| ModelError::Metadata {
            path: metadata_path.to_path_buf(),
            reason,
        };
        metadata.check().map_err(bad_metadata)?;
        let environment = runtime::environment()?;

        let bytes = match std::fs::read(&onnx_path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::OnnxMissing {
                    path: onnx_path,
                    metadata: metadata_path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(ModelError::OnnxRead {
                    path: onnx_path,
                    source,
                });
            }
        };
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&metadata.sha256) {
            return Err(ModelError::HashMismatch {
                path: onnx_path,
                expected: metadata.sha256.clone(),
                actual,
            });
        }

        let session_error = |reason: String| ModelError::Session {
            path: onnx_path.clone(),
            reason,
        };
        // The session is built from the bytes just hashed, so what runs is what was checked.
        let session = configure(Session::builder(environment).map_err(|e| e.to_string()))
            .map_err(session_error)?
            .commit_from_memory(&bytes)
            .map_err(|error| ModelError::Corrupt {
                path: onnx_path.clone(),
                reason: error.to_string(),
            })?;

        check_io(
            &onnx_path,
            IoKind::Input,
            &metadata.inputs,
            session.inputs(),
        )?;
        check_io(
            &onnx_path,
            IoKind::Output,
            &metadata.outputs,
            session.outputs(),
        )?;
        let (width, input_outlet) = input_width(&onnx_path, &metadata, session.inputs())?;
        let (prediction, confidence) = choose_outputs(&onnx_path, session.outputs())?;
        let confidence_source = match confidence {
            Some((_, source)) => source,
            None => match metadata.validation.rmse {
                Some(rmse) if rmse > 0.0 => ConfidenceSource::Rmse(rmse),
                _ => {
                    return Err(bad_metadata(
                        "the model has no confidence output, so `validation.rmse` (above 0) \
                         is needed to derive one"
                            .into(),
                    ));
                }
            },
        };

        let ort_error = |error: ort::Error| session_error(error.to_string());
        let allocator = Allocator::default();
        let mut input = Tensor::<f32>::new(&allocator, [1_usize, width]).map_err(ort_error)?;
        input
            .try_extract_tensor_mut::<f32>()
            .map_err(ort_error)?
            .1
            .fill(0.0);
        let mut binding = session.create_binding().map_err(ort_error)?;
        binding
            .bind_input(input_outlet.name(), &input)
            .map_err(ort_error)?;
        let mut outputs = Vec::with_capacity(MAX_OUTPUTS);
        for outlet in std::iter::once(prediction).chain(confidence.map(|(outlet, _)| outlet)) {
            let mut tensor =
                Tensor::<f32>::new(&allocator, concrete_shape(outlet)).map_err(ort_error)?;
            binding
                .bind_output(outlet.name(), &mut tensor)
                .map_err(ort_error)?;
            outputs.push(tensor);
        }
        let run_options = RunOptions::new().map_err(ort_error)?;

        let mut model = Self {
            metadata,
            onnx_path,
            width,
            confidence: confidence_source,
            session,
            input,
            outputs,
            binding,
            run_options,
        };
        model.warm_up()?;
        Ok(model)
    }

    fn warm_up(&mut self) -> Result<(), ModelError> {
        let zeros = vec![0.0_f32; self.width];
        for _ in 0..WARMUP_RUNS {
            match self.predict(&zeros) {
                Ok(_) | Err(ModelError::NonFiniteOutput { .. }) => {}
                Err(error) => {
                    return Err(ModelError::Session {
                        path: self.onnx_path.clone(),
                        reason: format!("warm-up run failed: {error}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Scores one feature vector (in the metadata's feature order, normalised as the
    /// metadata says). Allocation-free.
    ///
    /// # Errors
    ///
    /// * [`ModelError::WidthMismatch`]: `features` is not [`input_width`](Self::input_width)
    ///   long.
    /// * [`ModelError::NonFiniteInput`]: a feature is NaN or infinite (the graph is not run).
    /// * [`ModelError::Run`]: ONNX Runtime failed.
    /// * [`ModelError::NonFiniteOutput`]: the model produced NaN or an infinity.
    pub fn predict(&mut self, features: &[f32]) -> Result<Prediction, ModelError> {
        if features.len() != self.width {
            return Err(ModelError::WidthMismatch {
                expected: self.width,
                got: features.len(),
            });
        }
        if let Some(index) = features.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::NonFiniteInput { index });
        }
        let run_error = |error: ort::Error| ModelError::Run {
            reason: error.to_string(),
        };
        self.input
            .try_extract_tensor_mut::<f32>()
            .map_err(run_error)?
            .1
            .copy_from_slice(features);
        self.run().map_err(run_error)?;
        let value = match self.outputs.first().map(first_f32) {
            Some(Ok(Some(value))) => f64::from(value),
            Some(Err(error)) => return Err(run_error(error)),
            _ => {
                return Err(ModelError::NonFiniteOutput {
                    output: "prediction",
                });
            }
        };
        if !value.is_finite() {
            return Err(ModelError::NonFiniteOutput {
                output: "prediction",
            });
        }
        let confidence = match self.confidence {
            ConfidenceSource::Rmse(rmse) => value.abs() / (value.abs() + rmse),
            source => {
                let raw = match self.outputs.get(1).map(|v| read_confidence(v, source)) {
                    Some(Ok(raw)) => raw,
                    Some(Err(error)) => return Err(run_error(error)),
                    None => None,
                };
                match raw.map(f64::from) {
                    Some(c) if c.is_finite() => c.clamp(0.0, 1.0),
                    _ => {
                        return Err(ModelError::NonFiniteOutput {
                            output: "confidence",
                        });
                    }
                }
            }
        };
        Ok(Prediction { value, confidence })
    }

    /// One run of the graph on the bound `input` into the bound `outputs`.
    ///
    /// ONNX Runtime's C `RunWithBinding` is called directly. `ort`'s safe wrappers cost
    /// 200-300 ns of the ~2 us a small model takes: `run_with_options` rebuilds its name and
    /// value arrays and resolves its output selection on every run, then ONNX Runtime's
    /// `Run` looks every name up; `run_binding` asks ONNX Runtime for the bound outputs (an
    /// allocation there) and wraps each in a new `Arc`ed value (an allocation here).
    /// Measured on the test MLP, p50: `run_with_options` with a pre-allocated output
    /// 2.11 us, `run_binding` 2.11 us, C `Run` 1.93 us, C `RunWithBinding` 1.80 us.
    #[allow(
        unsafe_code,
        reason = "ONNX Runtime's C `RunWithBinding`, to skip the safe wrappers' per-run work"
    )]
    fn run(&mut self) -> Result<(), ort::Error> {
        let run_with_binding = ort::api().RunWithBinding;
        // SAFETY: the session, the run options and the binding are live `ort` objects owned
        // by `self` for the whole call, and the binding was created for this session; the
        // binding holds the bound input and output values alive (as does `self`).
        // `&mut self` makes this the only run of the session (ONNX Runtime's runs are not
        // safe to call concurrently on one session) and leaves no Rust borrow into the
        // tensors' buffers while ONNX Runtime reads the input and writes the outputs, which
        // are pre-allocated with the outputs' shapes and types so it writes in place.
        let status = unsafe {
            run_with_binding(
                self.session.ptr_mut(),
                self.run_options.ptr(),
                self.binding.ptr(),
            )
        };
        // SAFETY: `status` was just returned by ONNX Runtime and is released here, once.
        unsafe { ort::Error::result_from_status(status) }
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// Model name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Model version.
    pub fn version(&self) -> u32 {
        self.metadata.version
    }

    /// Number of features [`predict`](Self::predict) takes.
    pub fn input_width(&self) -> usize {
        self.width
    }

    /// The `.onnx` file it was loaded from.
    pub fn onnx_path(&self) -> &Path {
        &self.onnx_path
    }
}

/// The engine's session settings (see [`OnnxModel`]).
fn configure(builder: Result<SessionBuilder, String>) -> Result<SessionBuilder, String> {
    let text = |error: ort::Error<SessionBuilder>| error.to_string();
    builder?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(text)?
        .with_intra_threads(1)
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        .with_parallel_execution(false)
        .map_err(text)?
        .with_intra_op_spinning(false)
        .map_err(text)?
        .with_inter_op_spinning(false)
        .map_err(text)?
        // Memory patterns pre-plan one block for a run's intermediate tensors; for a few
        // tiny tensors checking the plan costs more than the arena's allocations
        // (measured: 60-70 ns slower per run on the test MLP).
        .with_memory_pattern(false)
        .map_err(text)?
        .with_deterministic_compute(true)
        .map_err(text)
}

/// The first value of a float32 output tensor.
fn first_f32(value: &Tensor<f32>) -> Result<Option<f32>, ort::Error> {
    value
        .try_extract_tensor::<f32>()
        .map(|(_, data)| data.first().copied())
}

/// The confidence output's value: its first value, or its largest for probabilities.
fn read_confidence(
    value: &Tensor<f32>,
    source: ConfidenceSource,
) -> Result<Option<f32>, ort::Error> {
    let (_, data) = value.try_extract_tensor::<f32>()?;
    Ok(if source == ConfidenceSource::Output {
        data.first().copied()
    } else {
        // NaN sorts above every number with `total_cmp`, so a NaN probability is reported.
        data.iter().copied().max_by(f32::total_cmp)
    })
}

/// The graph's declared shape as metadata dimensions (ONNX Runtime reports -1 for dynamic).
fn outlet_dims(outlet: &Outlet) -> Option<Vec<Dim>> {
    match outlet.dtype() {
        ValueType::Tensor { shape, .. } => Some(
            shape
                .iter()
                .map(|&d| u64::try_from(d).map_or(Dim::Dynamic, Dim::Fixed))
                .collect(),
        ),
        _ => None,
    }
}

/// The shape of the tensor to pre-allocate for an output: dynamic dimensions become 1 (one
/// row per run).
fn concrete_shape(outlet: &Outlet) -> Vec<i64> {
    match outlet.dtype() {
        ValueType::Tensor { shape, .. } => shape.iter().map(|&d| d.max(1)).collect(),
        _ => Vec::new(),
    }
}

fn type_name(outlet: &Outlet) -> String {
    match outlet.dtype() {
        ValueType::Tensor { ty, .. } => format!("a tensor of {ty}"),
        other => format!("{other}"),
    }
}

fn is_f32_tensor(outlet: &Outlet) -> bool {
    matches!(
        outlet.dtype(),
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            ..
        }
    )
}

/// The graph's inputs or outputs have the metadata's count, names and shapes.
fn check_io(
    path: &Path,
    kind: IoKind,
    declared: &[TensorSpec],
    outlets: &[Outlet],
) -> Result<(), ModelError> {
    if declared.len() != outlets.len() {
        return Err(ModelError::IoCount {
            path: path.to_path_buf(),
            kind,
            metadata: declared.len(),
            model: outlets.len(),
        });
    }
    for (index, (spec, outlet)) in declared.iter().zip(outlets).enumerate() {
        if spec.name != outlet.name() {
            return Err(ModelError::IoName {
                path: path.to_path_buf(),
                kind,
                index,
                metadata: spec.name.clone(),
                model: outlet.name().to_owned(),
            });
        }
        let Some(dims) = outlet_dims(outlet) else {
            // Only tensors have shapes; maps and sequences are refused where they are used.
            continue;
        };
        if dims != spec.shape {
            return Err(ModelError::IoShape {
                path: path.to_path_buf(),
                kind,
                name: spec.name.clone(),
                metadata: ShapeDisplay(&spec.shape).to_string(),
                model: ShapeDisplay(&dims).to_string(),
            });
        }
    }
    Ok(())
}

/// The single input is a float32 `[1, n]` or `[?, n]` tensor with `n` = number of features:
/// `n` and the input.
fn input_width<'s>(
    path: &Path,
    metadata: &ModelMetadata,
    inputs: &'s [Outlet],
) -> Result<(usize, &'s Outlet), ModelError> {
    let io_type = |outlet: &Outlet, found: String, expected| ModelError::IoType {
        path: path.to_path_buf(),
        kind: IoKind::Input,
        name: outlet.name().to_owned(),
        found,
        expected,
    };
    let input = match inputs {
        [input] => input,
        [] => {
            return Err(ModelError::IoCount {
                path: path.to_path_buf(),
                kind: IoKind::Input,
                metadata: 1,
                model: 0,
            });
        }
        [_, second, ..] => {
            return Err(io_type(
                second,
                "a second input".to_owned(),
                "the engine feeds exactly one input",
            ));
        }
    };
    if !is_f32_tensor(input) {
        return Err(io_type(
            input,
            type_name(input),
            "the engine feeds a float32 tensor",
        ));
    }
    let dims = outlet_dims(input).unwrap_or_default();
    let width = match dims.as_slice() {
        [Dim::Fixed(1) | Dim::Dynamic, Dim::Fixed(n)] => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => {
            return Err(io_type(
                input,
                format!("shaped {}", ShapeDisplay(&dims)),
                "the engine feeds one row: [1, n] or [?, n] with a fixed n",
            ));
        }
    };
    if width != metadata.features.len() {
        return Err(ModelError::InputWidth {
            path: path.to_path_buf(),
            features: metadata.features.len(),
            input: width,
        });
    }
    Ok((width, input))
}

/// A confidence output and how to read it.
type ConfidenceOutput<'s> = (&'s Outlet, ConfidenceSource);

/// The prediction output and, if there is one, the confidence output with how to read it.
fn choose_outputs<'s>(
    path: &Path,
    outputs: &'s [Outlet],
) -> Result<(&'s Outlet, Option<ConfidenceOutput<'s>>), ModelError> {
    let io_type = |outlet: &Outlet, found: String, expected| ModelError::IoType {
        path: path.to_path_buf(),
        kind: IoKind::Output,
        name: outlet.name().to_owned(),
        found,
        expected,
    };
    let source_of = |outlet: &Outlet| {
        let name = outlet.name().to_ascii_lowercase();
        if name.contains("confidence") {
            Some(ConfidenceSource::Output)
        } else if name.contains("prob") {
            Some(ConfidenceSource::MaxProbability)
        } else {
            None
        }
    };
    // "confidence" wins over "prob" when both exist.
    let confidence = outputs
        .iter()
        .find(|o| source_of(o) == Some(ConfidenceSource::Output))
        .or_else(|| outputs.iter().find(|o| source_of(o).is_some()))
        .and_then(|o| source_of(o).map(|source| (o, source)));
    let Some(prediction) = outputs
        .iter()
        .find(|o| confidence.is_none_or(|(c, _)| c.name() != o.name()))
    else {
        return Err(match confidence {
            Some((outlet, _)) => io_type(
                outlet,
                "the only output, read as the confidence".to_owned(),
                "a prediction output is needed besides it",
            ),
            None => ModelError::Corrupt {
                path: path.to_path_buf(),
                reason: "the graph has no output".to_owned(),
            },
        });
    };
    let values = |outlet: &Outlet| concrete_shape(outlet).iter().product::<i64>();
    if !is_f32_tensor(prediction) {
        return Err(io_type(
            prediction,
            type_name(prediction),
            "the prediction must be a float32 tensor",
        ));
    }
    if values(prediction) != 1 {
        return Err(io_type(
            prediction,
            format!(
                "shaped {}",
                ShapeDisplay(&outlet_dims(prediction).unwrap_or_default())
            ),
            "the prediction must hold one value per row",
        ));
    }
    if let Some((outlet, source)) = confidence {
        if !is_f32_tensor(outlet) {
            return Err(io_type(
                outlet,
                type_name(outlet),
                "a confidence or probability output must be a float32 tensor",
            ));
        }
        let n = values(outlet);
        if n < 1 || (source == ConfidenceSource::Output && n != 1) {
            return Err(io_type(
                outlet,
                format!(
                    "shaped {}",
                    ShapeDisplay(&outlet_dims(outlet).unwrap_or_default())
                ),
                "a confidence output holds one value per row, a probability output at least one",
            ));
        }
    }
    Ok((prediction, confidence))
}
