//! End-to-end latency harness (grows with the pipeline stages; micro benchmarks live in each
//! crate's own `benches/`).
#![forbid(unsafe_code)]
