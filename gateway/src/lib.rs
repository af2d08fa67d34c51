//! The FIX 4.4 acceptor for the quant desk and order routing to venues (issue 6).
//!
//! * [`paper`]: the embedded paper venue.
#![forbid(unsafe_code)]

pub mod paper;
