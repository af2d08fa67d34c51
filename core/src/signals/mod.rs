//! Signals: features computed on every book update and trade, ONNX models scoring them, and
//! the monitoring of those models (drift, live accuracy).

pub mod bundled;
pub mod features;
pub mod model;
pub mod monitor;
pub mod stage;
