//! The FIX 4.4 acceptor for the quant desk and order routing to venues (issue 6).
//!
//! This crate is part of the workspace layout; its stage is built by the issue named above.
#![forbid(unsafe_code)]
