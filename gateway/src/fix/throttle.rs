//! Per-session message throttle.
