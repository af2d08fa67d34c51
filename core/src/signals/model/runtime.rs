//! Loading the ONNX Runtime shared library (`ort`'s `load-dynamic`): once per process, from
//! `ORT_DYLIB_PATH` or a path the caller gives.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;

use super::ModelError;

/// The environment variable naming the library (`./x setup` exports it).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// The process's ONNX Runtime environment and the library it was loaded from. ONNX Runtime
/// allows one environment per process and a library cannot be unloaded, so this is set once
/// and never replaced.
static RUNTIME: OnceLock<(Environment, PathBuf)> = OnceLock::new();

/// Serialises first initialisations (two threads loading models at start).
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from the file `ORT_DYLIB_PATH` names and creates the process's
/// environment. Idempotent: after the first success it returns `Ok` at once.
///
/// # Errors
///
/// [`ModelError::RuntimeUnset`] when the variable is unset or empty, and the errors of
/// [`init_runtime_from`] for the path it names. Each message says how to fix it.
pub fn init_runtime() -> Result<(), ModelError> {
    environment().map(|_| ())
}

/// Loads ONNX Runtime from `path` (the `libonnxruntime.so.1.31.1` of the onnxruntime 1.31.1
/// wheel) and creates the process's environment. Idempotent for the same path.
///
/// The file is checked to exist and be a regular file before it is handed to the dynamic
/// loader, so a wrong path is an error, not a crash. A file that is a shared library but
/// runs faulty initialisers when loaded cannot be guarded against.
///
/// # Errors
///
/// * [`ModelError::RuntimeMissing`]: `path` does not exist or is not a regular file.
/// * [`ModelError::RuntimeLoad`]: the dynamic loader refused it, it is not ONNX Runtime, or
///   its version is older than 1.31.
/// * [`ModelError::RuntimeAlreadyLoaded`]: ONNX Runtime was already loaded from another file
///   (a process can hold only one).
/// * [`ModelError::RuntimeEnvironment`]: ONNX Runtime refused to create its environment.
pub fn init_runtime_from(path: &Path) -> Result<(), ModelError> {
    let path = checked_path(path)?;
    let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, loaded)) = RUNTIME.get() {
        return if *loaded == path {
            Ok(())
        } else {
            Err(ModelError::RuntimeAlreadyLoaded {
                loaded: loaded.clone(),
                requested: path,
            })
        };
    }
    let builder = ort::init_from(&path).map_err(|error| ModelError::RuntimeLoad {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let environment = builder
        .with_name("aaiti")
        .with_telemetry(false)
        .build()
        .map_err(|error| ModelError::RuntimeEnvironment {
            reason: error.to_string(),
        })?;
    // Cannot be set already: every writer holds `INIT` and checked above.
    let _ = RUNTIME.set((environment, path));
    Ok(())
}

/// The file ONNX Runtime was loaded from, once it is.
pub fn runtime_path() -> Option<&'static Path> {
    RUNTIME.get().map(|(_, path)| path.as_path())
}

/// The process's environment, initialising it from `ORT_DYLIB_PATH` on first use.
pub(crate) fn environment() -> Result<&'static Environment, ModelError> {
    if let Some((environment, _)) = RUNTIME.get() {
        return Ok(environment);
    }
    let path = match std::env::var_os(ORT_DYLIB_PATH) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => return Err(ModelError::RuntimeUnset),
    };
    init_runtime_from(&path)?;
    RUNTIME
        .get()
        .map(|(environment, _)| environment)
        .ok_or(ModelError::RuntimeUnset)
}

/// `path` made absolute (so `ort` does not resolve a relative one against the executable's
/// directory instead of the working directory we checked) after checking it is a file.
fn checked_path(path: &Path) -> Result<PathBuf, ModelError> {
    let missing = |problem| ModelError::RuntimeMissing {
        path: path.to_path_buf(),
        problem,
    };
    match std::fs::metadata(path) {
        Err(_) => return Err(missing("does not exist")),
        Ok(meta) if !meta.is_file() => return Err(missing("is not a regular file")),
        Ok(_) => {}
    }
    std::path::absolute(path).map_err(|_| missing("cannot be made absolute"))
}
