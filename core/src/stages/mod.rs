//! The engine's stages: each wraps a stage crate's logic (books, later features, strategy,
//! risk, journal) in the runtime's [`Stage`](crate::runtime::Stage) trait.

pub mod book;
pub mod journal;
