//! Why ONNX Runtime, a model or a prediction was refused.

use std::fmt;
use std::path::PathBuf;

/// How to get the library, repeated in every runtime error.
const RUNTIME_FIX: &str = "run `./x setup` or set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 \
                           from the onnxruntime 1.31.1 wheel";

/// An input or an output of a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    /// A graph input.
    Input,
    /// A graph output.
    Output,
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Input => "input",
            Self::Output => "output",
        })
    }
}

/// Why ONNX Runtime could not be loaded, a model was refused at load, or a prediction failed.
///
/// Load-time variants name the file concerned (`path`: the `.onnx` file, or the metadata
/// file for metadata problems) and the mismatch.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `ORT_DYLIB_PATH` is not set.
    #[error("ONNX Runtime: ORT_DYLIB_PATH is not set; {RUNTIME_FIX}")]
    RuntimeUnset,
    /// The library path does not name a regular file.
    #[error("ONNX Runtime: {} {problem}; {RUNTIME_FIX}", path.display())]
    RuntimeMissing {
        /// The path tried.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The dynamic loader or ONNX Runtime's version check refused the library.
    #[error("ONNX Runtime: cannot load {}: {reason}; {RUNTIME_FIX}", path.display())]
    RuntimeLoad {
        /// The path tried.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// ONNX Runtime is already loaded from another file.
    #[error(
        "ONNX Runtime is already loaded from {}; a process cannot load {} as well",
        loaded.display(),
        requested.display()
    )]
    RuntimeAlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The one asked for.
        requested: PathBuf,
    },
    /// ONNX Runtime refused to create its environment.
    #[error("ONNX Runtime: cannot create the environment: {reason}")]
    RuntimeEnvironment {
        /// ONNX Runtime's message.
        reason: String,
    },
    /// The metadata is inconsistent or incomplete.
    #[error("{}: {reason}", path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The `.onnx` file named by the metadata does not exist.
    #[error("{}: model file missing (named by {})", path.display(), metadata.display())]
    OnnxMissing {
        /// The `.onnx` path.
        path: PathBuf,
        /// The metadata file naming it.
        metadata: PathBuf,
    },
    /// The `.onnx` file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    OnnxRead {
        /// The `.onnx` path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `.onnx` file's SHA-256 is not the metadata's.
    #[error("{}: sha256 {actual} differs from the metadata's {expected}", path.display())]
    HashMismatch {
        /// The `.onnx` path.
        path: PathBuf,
        /// The metadata's hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// ONNX Runtime could not build a session from the file (not a valid ONNX model, or one
    /// it cannot run).
    #[error("{}: not a loadable ONNX model: {reason}", path.display())]
    Corrupt {
        /// The `.onnx` path.
        path: PathBuf,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// The graph has another number of inputs or outputs than the metadata declares.
    #[error("{}: the model has {model} {kind}s, the metadata declares {metadata}", path.display())]
    IoCount {
        /// The `.onnx` path.
        path: PathBuf,
        /// Inputs or outputs.
        kind: IoKind,
        /// How many the metadata declares.
        metadata: usize,
        /// How many the graph has.
        model: usize,
    },
    /// An input or output has another name than the metadata's.
    #[error("{}: {kind} {index} is named {model:?} in the model, {metadata:?} in the metadata", path.display())]
    IoName {
        /// The `.onnx` path.
        path: PathBuf,
        /// Input or output.
        kind: IoKind,
        /// Its position.
        index: usize,
        /// The metadata's name.
        metadata: String,
        /// The graph's name.
        model: String,
    },
    /// An input or output has another shape than the metadata's.
    #[error("{}: {kind} {name:?} has shape {model} in the model, {metadata} in the metadata", path.display())]
    IoShape {
        /// The `.onnx` path.
        path: PathBuf,
        /// Input or output.
        kind: IoKind,
        /// Its name.
        name: String,
        /// The metadata's shape (`?` = dynamic).
        metadata: String,
        /// The graph's shape (`?` = dynamic).
        model: String,
    },
    /// An input or output the engine uses is not what it can feed or read.
    #[error("{}: {kind} {name:?} is {found}; {expected}", path.display())]
    IoType {
        /// The `.onnx` path.
        path: PathBuf,
        /// Input or output.
        kind: IoKind,
        /// Its name.
        name: String,
        /// What the graph declares.
        found: String,
        /// What the engine supports.
        expected: &'static str,
    },
    /// The input is not as wide as the metadata's feature list.
    #[error("{}: the input takes {input} values, the metadata declares {features} features", path.display())]
    InputWidth {
        /// The `.onnx` path.
        path: PathBuf,
        /// Features declared.
        features: usize,
        /// Input width.
        input: usize,
    },
    /// Configuring or warming up the session failed.
    #[error("{}: {reason}", path.display())]
    Session {
        /// The `.onnx` path.
        path: PathBuf,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// `predict` was given a vector of the wrong length.
    #[error("{got} features given, the model takes {expected}")]
    WidthMismatch {
        /// The model's input width.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A feature is NaN or infinite; the model was not run.
    #[error("feature {index} is not a finite number; the model was not run")]
    NonFiniteInput {
        /// Position of the first non-finite feature.
        index: usize,
    },
    /// The model produced NaN or an infinity.
    #[error("the model's {output} output is not a finite number")]
    NonFiniteOutput {
        /// `prediction` or `confidence`.
        output: &'static str,
    },
    /// ONNX Runtime failed to run the graph.
    #[error("inference failed: {reason}")]
    Run {
        /// ONNX Runtime's message.
        reason: String,
    },
}
