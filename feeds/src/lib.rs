//! Market data: venue normalizers, replay of recorded streams and live WebSocket feeds (issue 3).
//!
//! This crate is part of the workspace layout; its stage is built by the issue named above.
#![forbid(unsafe_code)]
