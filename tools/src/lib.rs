//! AAITI tools: journal inspection, FIX load generator and model training helpers; each tool
//! arrives with the issue that builds its subject.
//!
//! * [`journal_cli`]: the `aaiti-journal` inspection command (`stats`, `dump`, `tail -f`,
//!   `verify`, `order`, `latency`, `export`).
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests unwrap and panic on failure"
    )
)]

pub mod fixload;
pub mod journal_cli;
