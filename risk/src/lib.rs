//! Pre-trade risk, positions, P&L, margin and VaR (issue 5).
#![forbid(unsafe_code)]

pub mod monitor;
