//! Features: incremental indicators computed from the book and trades. SKELETON: the
//! features helper owns this module and replaces this file; the names below are the contract
//! other modules rely on.

use serde::{Deserialize, Serialize};

/// A model's feature vector: which features, in which order, with which parameters and
/// normalisation. Declared in the model's metadata, not in code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Milliseconds of engine time between two samples (the model is scored once a sample).
    pub sample_ms: u32,
    /// The features, in input order.
    pub features: Vec<serde_json::Value>,
}

impl FeatureSpec {
    /// Number of features (the model's input width).
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// True when it declares no feature.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }
}
