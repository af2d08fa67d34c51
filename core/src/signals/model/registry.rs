//! The models directory: every `*.json` metadata file in it, by name and version.

use std::path::{Path, PathBuf};

use super::metadata::ModelMetadata;

/// Why a models directory or a metadata file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The directory could not be listed.
    #[error("models directory {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A metadata file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The metadata file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A metadata file is not valid metadata JSON.
    #[error("{}: not valid model metadata: {source}", path.display())]
    Parse {
        /// The metadata file.
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
    /// Two metadata files declare the same name and version.
    #[error("model {name} v{version} is declared twice: {} and {}", first.display(), second.display())]
    Duplicate {
        /// Model name.
        name: String,
        /// Model version.
        version: u32,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// No model with this name (and version).
    #[error("no model {name}{} in {}; available: {available}",
            version.map(|v| format!(" v{v}")).unwrap_or_default(), dir.display())]
    NotFound {
        /// Name asked for.
        name: String,
        /// Version asked for (`None`: any).
        version: Option<u32>,
        /// The directory searched.
        dir: PathBuf,
        /// The models it holds (`name vN, ...`), or `none`.
        available: String,
    },
}

/// One model of the registry: its metadata and where its files are.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEntry {
    metadata: ModelMetadata,
    metadata_path: PathBuf,
}

impl RegistryEntry {
    /// Reads one metadata file (e.g. a new version to hot-swap in). Only the JSON is read
    /// and parsed here; [`super::OnnxModel::load`] checks everything else.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Read`] or [`RegistryError::Parse`], naming the file.
    pub fn from_file(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let metadata = ModelMetadata::from_json(&text).map_err(|source| RegistryError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            metadata,
            metadata_path: path.to_path_buf(),
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The metadata file.
    pub fn metadata_path(&self) -> &Path {
        &self.metadata_path
    }

    /// The `.onnx` file: the metadata's `onnx` file name in the metadata file's directory.
    pub fn onnx_path(&self) -> PathBuf {
        self.metadata_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.metadata.onnx)
    }
}

/// A models directory: each model is `<file>.onnx` plus `<file>.json` metadata (format in
/// the [module docs](super)).
///
/// [`open`](Self::open) reads and parses every `*.json` file directly in the directory
/// (not in subdirectories); models are only loaded, and checked against their metadata, by
/// [`super::OnnxModel::load`].
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    dir: PathBuf,
    /// Sorted by name, then version.
    entries: Vec<RegistryEntry>,
}

impl ModelRegistry {
    /// Reads every metadata file of `dir`.
    ///
    /// # Errors
    ///
    /// The directory cannot be listed, a `.json` file cannot be read or is not valid
    /// metadata, or two files declare the same name and version.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let read_dir_error = |source| RegistryError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for item in std::fs::read_dir(dir).map_err(read_dir_error)? {
            let path = item.map_err(read_dir_error)?.path();
            if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
                paths.push(path);
            }
        }
        // Directory order is the file system's; sort so errors and listings are stable.
        paths.sort();
        let mut entries = paths
            .iter()
            .map(|path| RegistryEntry::from_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| {
            (&a.metadata.name, a.metadata.version).cmp(&(&b.metadata.name, b.metadata.version))
        });
        if let Some(pair) = entries.windows(2).find(|pair| {
            pair[0].metadata.name == pair[1].metadata.name
                && pair[0].metadata.version == pair[1].metadata.version
        }) {
            return Err(RegistryError::Duplicate {
                name: pair[0].metadata.name.clone(),
                version: pair[0].metadata.version,
                first: pair[0].metadata_path.clone(),
                second: pair[1].metadata_path.clone(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// The model `name` at `version`, or its newest version when `version` is `None`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`], listing what the directory holds.
    pub fn get(&self, name: &str, version: Option<u32>) -> Result<&RegistryEntry, RegistryError> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.metadata.name == name && version.is_none_or(|v| e.metadata.version == v))
            .ok_or_else(|| RegistryError::NotFound {
                name: name.to_owned(),
                version,
                dir: self.dir.clone(),
                available: if self.entries.is_empty() {
                    "none".to_owned()
                } else {
                    self.entries
                        .iter()
                        .map(|e| format!("{} v{}", e.metadata.name, e.metadata.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Every model, sorted by name then version.
    pub fn list(&self) -> &[RegistryEntry] {
        &self.entries
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
