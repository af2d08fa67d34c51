//! The FIX 4.4 acceptor for the quant desk and order routing to venues (issue 6).
//!
//! * [`fix`]: the FIX 4.4 codec, dictionary, session layer and acceptor.
//! * [`paper`]: the embedded paper venue, a deterministic simulated exchange that fills the
//!   engine's orders against the live or replayed book (latency on engine time, queue
//!   position estimates, maker/taker fees, snapshots).
#![forbid(unsafe_code)]

pub mod binance;
pub mod fix;
pub mod paper;
pub mod secrets;
