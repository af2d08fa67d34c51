//! Pre-trade risk, positions, P&L, margin and VaR (issue 5).
//!
//! This crate is part of the workspace layout; its stage is built by the issue named above.
#![forbid(unsafe_code)]
