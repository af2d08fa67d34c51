//! `aaiti-core`: the trading core. It owns the rings and the threads and wires the stage
//! crates (feeds, book, risk, journal, gateway) into one pipeline.
//!
//! * [`runtime`]: stages connected by `disruptor` rings, placed on pinned threads by
//!   configuration, drained and stopped by a control event.
//! * [`config`]: the embedded default configuration and TOML overrides.
//! * [`engine`]: builds the configured pipeline and runs it.
//! * [`stages`]: the engine's stages (books today).
//! * [`replay`]: recorded venue traffic as a pipeline source.
//! * [`live`]: live venue connections (with backup failover) as a pipeline source.
//! * [`cli`]: the `aaiti` command line (`src/main.rs` only calls [`cli::main`]).
#![deny(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod desk;
pub mod engine;
mod hash;
pub mod live;
pub mod market;
pub mod oms;
pub mod replay;
pub mod runtime;
pub mod signals;
pub mod snapshots;
pub mod stages;
pub mod strategy;
pub mod synthetic;
pub mod sys;
pub mod venues;
