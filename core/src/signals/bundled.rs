//! The model the default configuration serves, compiled into the binary (see
//! `core/models/README.md` for how it was trained) and written into the models directory at
//! start when missing, so `aaiti run` works from any directory.

use std::path::Path;

/// The bundled files: name and bytes.
const FILES: &[(&str, &[u8])] = &[
    (
        "btcusdt-ridge-1.onnx",
        include_bytes!("../../models/btcusdt-ridge-1.onnx"),
    ),
    (
        "btcusdt-ridge-1.json",
        include_bytes!("../../models/btcusdt-ridge-1.json"),
    ),
];

/// Writes the bundled model files into `dir` (created if needed), leaving files already
/// there alone (an operator's own version of the same name wins).
///
/// # Errors
///
/// The directory or a file cannot be written.
pub fn install(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", dir.display()))?;
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        // Written under a temporary name and renamed: a crash never leaves half a model.
        let temporary = dir.join(format!(".{name}.tmp"));
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    }
    Ok(())
}
