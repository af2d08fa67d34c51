//! The engine's stages: each wraps a stage crate's logic in the runtime's
//! [`Stage`](crate::runtime::Stage) trait: `book` (L2 books, checksums), `trading`
//! (strategies, order manager, pre-trade risk, risk monitor, paper venue), `journal`.

pub mod book;
pub mod journal;
pub mod trading;
