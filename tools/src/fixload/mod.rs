//! `aaiti-fixload`: a FIX 4.4 load generator for any acceptor (the engine's gateway,
//! QuickFIX, ...), and the trivial responder that measures the generator's own floor.
//!
//! ```text
//! aaiti-fixload --connect 127.0.0.1:9878 --sender DESK --target AAITI \
//!     [--username u --password p] --sessions 2 --rate 1000 --duration 10 --warmup 2 \
//!     --mix new=80,cancel=10,replace=10 --symbol BTCUSDT --exchange binance \
//!     --account paper-1 --price 50000 --price-jitter-ticks 100 --tick 0.01 --qty 0.001 \
//!     [--hgrm latency.hgrm] [--json]
//! aaiti-fixload responder --listen 127.0.0.1:0 [--sender AAITI]
//! ```
//!
//! The same from code ([`run`], [`start_responder`]):
//!
//! ```no_run
//! use std::time::Duration;
//! use aaiti_tools::fixload::{LoadConfig, start_responder, run};
//!
//! let responder = start_responder(([127, 0, 0, 1], 0).into())?;
//! let mut config = LoadConfig::new(responder.local_addr());
//! config.rate = 1000.0;
//! config.duration = Duration::from_secs(1);
//! config.warmup = Duration::from_millis(200);
//! let report = run(&config)?;
//! println!("p99 {} ns", report.latency_summary().p99_ns);
//! # Ok::<(), aaiti_tools::fixload::LoadError>(())
//! ```
//!
//! # Sessions
//!
//! `--sessions N` opens N connections, each its own FIX session: SenderCompIDs `DESK`,
//! `DESK2`, `DESK3`... from `--sender DESK`, or `DESK-1`, `DESK-2`... from a pattern
//! `--sender DESK-{n}`. They are driven by `--threads` threads (default 1, at most the
//! number of cores), each running one event loop over nonblocking sockets. The initiator
//! side of the session is this crate's own (see `session.rs`): Logon with optional
//! ResetSeqNumFlag and Username/Password, heartbeats both ways, TestRequest answers,
//! MsgSeqNum tracking, a gap fill for every ResendRequest (orders are never resent) and a
//! Logout at the end. The schedule starts once every session is logged on; a session
//! that cannot log on fails the run with [`LoadError::Logon`].
//!
//! # Orders
//!
//! Limit orders (OrdType 40=2, TimeInForce 59=1 GTC) on Account 1, Symbol 55 and
//! SecurityExchange 207, at least one tick away from `--price` on their passive side:
//! a buy at `price - (1 + j) * tick`, a sell at `price + (1 + j) * tick`, `j` uniform in
//! `0..=--price-jitter-ticks`, the side chosen at random, so they rest in a market that
//! trades around `--price`. `--mix` weighs new orders, cancels and replaces (a replace
//! moves the price to a fresh one on the same side); a cancel or replace targets an order
//! acknowledged as New and still open, and with none open a new order goes instead.
//! ClOrdIDs are `FL<run tag>-<session>-<n>` (see `orders.rs`).
//!
//! # Measurement
//!
//! Open loop (`--rate R` > 0): session `k` of `N` sends request `i` at
//! `t0 + (i + (k - 1) / N) / R`, whatever happened to the earlier ones, catching up at once
//! when it falls behind. A request's latency runs from that intended time to its
//! acknowledgement: for a new order the ExecutionReport with ExecType 150=0 (New) or 8
//! (Rejected), for a cancel 150=4 or an OrderCancelReject (9), for a replace 150=5 or 9,
//! matched by ClOrdID (11); a session Reject (3) or BusinessMessageReject (j) naming the
//! request also ends it, as a rejection. Timing from the intended time corrects for
//! coordinated omission: a stalled acceptor delays every request that should have been
//! sent meanwhile. The service time, from the actual send, is recorded too. Closed loop
//! (`--rate 0`): `--window` requests in flight per session, sent as soon as one is
//! answered; both times are then from the actual send.
//!
//! Requests whose intended time falls in the first `--warmup` seconds are sent but not
//! measured; sending stops `--duration` seconds later, and the answers still in flight
//! are awaited up to `--drain-timeout` (the rest are reported as unacknowledged and are
//! not in the histograms). Histograms are HdrHistogram, 1 ns to 60 s, 3 significant
//! digits.
//!
//! # Output
//!
//! The text report ([`LoadReport::write_text`]) or one JSON object with `--json`
//! ([`LoadReport::to_json`] documents its keys), and with `--hgrm FILE` the corrected
//! latency distribution in HdrHistogram's `.hgrm` text format, in microseconds
//! ([`write_hgrm`] documents it). Exit status: 0 when every measured request was
//! acknowledged and no session failed, 1 otherwise, 2 when the run could not start (bad
//! arguments, connection or logon failure).
//!
//! # Limits
//!
//! No message store: nothing is ever resent. No TLS. Inbound messages after a sequence gap
//! are processed at once rather than queued until the gap is filled (their
//! acknowledgements still count). Orders left open at the end are not canceled.

mod cli;
mod config;
mod orders;
mod report;
mod responder;
mod runner;
mod session;

use std::net::SocketAddr;

pub use cli::cli_main;
pub use config::{LoadConfig, Mix};
pub use report::{KindCounts, LoadReport, SessionCounters, Summary, write_hgrm};
pub use responder::{ResponderConfig, ResponderCounts, ResponderHandle, start_responder};
pub use runner::run;

/// Why a run (or the responder) could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A configuration value is out of range or malformed.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A session's TCP connection failed.
    #[error("session {session} ({sender}): cannot connect to {addr}: {source}")]
    Connect {
        /// Session number (1-based).
        session: usize,
        /// Its SenderCompID.
        sender: String,
        /// The acceptor's address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A session did not log on: refused (the acceptor's Logout text), closed, or no
    /// answer in time.
    #[error("session {session} ({sender}): logon failed: {reason}")]
    Logon {
        /// Session number (1-based).
        session: usize,
        /// Its SenderCompID.
        sender: String,
        /// What happened.
        reason: String,
    },
    /// An I/O error outside the sessions (binding the responder, writing a file).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Spawn(std::io::Error),
    /// A worker thread panicked.
    #[error("a load generator thread panicked")]
    Thread,
    /// A histogram could not be created or merged (a bug: the bounds are constants).
    #[error("histogram: {0}")]
    Histogram(String),
}
