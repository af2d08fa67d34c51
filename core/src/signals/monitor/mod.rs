//! Model monitoring. SKELETON: the monitoring helper owns this module and replaces this
//! file; the names below are the contract other modules rely on.

use serde::{Deserialize, Serialize};

/// A distribution summarised as a histogram: `edges.len() + 1 == fractions.len()`
/// (below the first edge, between edges, above the last), fractions summing to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, ascending.
    pub edges: Vec<f64>,
    /// Share of the training samples in each bin.
    pub fractions: Vec<f64>,
}

/// The training data's distributions a model's live inputs and outputs are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// One histogram per feature, in input order.
    pub features: Vec<Histogram>,
    /// The model's predictions on the training data.
    pub prediction: Histogram,
}
