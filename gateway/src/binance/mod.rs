//! Binance spot exchange adapter.
//!
//! Live accounts' orders go to Binance through this adapter; it reports back with the paper
//! venue's event types ([`VenueEvent`](crate::paper::VenueEvent),
//! [`VenueEventKind`](crate::paper::VenueEventKind)) wrapped in an [`OrderReport`] that
//! adds what the engine journals with them: instrument, client order id, Binance's order id,
//! the commission as charged, and Binance's error code and message for rejects.
//!
//! ```no_run
//! use std::time::Duration;
//! use aaiti_gateway::binance::{AdapterEvent, BinanceAdapter, BinanceConfig, BinanceRequest};
//! use aaiti_gateway::secrets::{self, SecretsKey};
//! # fn instruments() -> Vec<aaiti_model::Instrument> { Vec::new() }
//! # fn order() -> aaiti_gateway::binance::NewOrder { unimplemented!() }
//!
//! let key = SecretsKey::from_env(secrets::KEY_ENV_VAR)?;
//! let credentials = secrets::load("binance.sec".as_ref(), &key)?;
//! let (handle, events) =
//!     BinanceAdapter::spawn(BinanceConfig::default(), credentials, &instruments())?;
//! let summary = handle.reconcile(Vec::new(), Duration::from_secs(30))?;
//! handle.submit(BinanceRequest::New(order()));
//! while let Ok(event) = events.recv() {
//!     if let AdapterEvent::Order(report) = event { /* journal, then to the OMS */ }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Protocol
//!
//! * **REST** (`rest_url`, default `https://api.binance.com`): new order, cancel, query,
//!   open orders, the trades of an order, server time (weights: order 1, cancel 1, query 4,
//!   open orders 6 per symbol, trades of an order 5, time 1). `SIGNED` requests carry
//!   `recvWindow`, `timestamp` (local clock corrected by `GET /api/v3/time`) and
//!   `signature` = hex HMAC-SHA256 of the exact query string or body, and the API key in
//!   `X-MBX-APIKEY`. Orders are placed with `newOrderRespType=FULL`. One keep-alive
//!   connection, on the adapter thread.
//! * **User data stream** over the WebSocket API (`ws_api_url`, default
//!   `wss://ws-api.binance.com:443/ws-api/v3`) with `userDataStream.subscribe.signature`:
//!   the `listenKey` REST endpoints are retired for spot. `executionReport` events give
//!   fills (`x=TRADE`: `l`/`L` last quantity/price, `z` cumulative, `n`/`N` commission, `t`
//!   trade id, `m` maker), cancels, expiries and rejects. A fill's `exec_id` is Binance's
//!   trade id (unique per symbol).
//! * **Client order ids**: `newClientOrderId` = `client_id_prefix` + the engine's order id
//!   (`aaiti-42`), so any report or listing maps back to the engine's order without a
//!   table, across restarts. Orders whose id lacks the prefix are not ours.
//!
//! # Errors and limits
//!
//! Refusals become `Rejected` / `CancelRejected` with the closest
//! [`RejectReason`](aaiti_model::RejectReason) (`-2010` by its message: insufficient balance,
//! post-only would take, duplicate...; `-1013` by its filter: `PRICE_FILTER` → invalid
//! price, `LOT_SIZE` → invalid quantity, `NOTIONAL` → below min notional...; `-1022`/`-2014`/
//! `-2015` → not authorized; `-2011` on cancel → too late), and Binance's code and message
//! in [`OrderReport::error`] and in the log. `-1021` (clock outside the recvWindow)
//! resyncs the clock and retries once. HTTP 429/418 start a backoff until `Retry-After`
//! (or `default_backoff_ms`): meanwhile every request is refused locally (`RateLimited`),
//! not queued. The used weight (`X-MBX-USED-WEIGHT-1M`) and order counts
//! (`X-MBX-ORDER-COUNT-10S`/`-1D`) are tracked and requests are refused locally before
//! `max_weight_1m` / `max_orders_10s` / `max_orders_1d`.
//!
//! # Test support
//!
//! [`mock`] is a local stand-in for Binance (REST and WebSocket API on 127.0.0.1) used by
//! the tests; it is not part of the trading path.

mod adapter;
mod config;
mod error;
mod http;
pub mod mock;
mod net;
mod rest;
mod sign;
mod stream;
mod types;

pub use adapter::{BinanceAdapter, BinanceHandle};
pub use config::BinanceConfig;
pub use error::{BinanceError, VenueError};
pub use types::{
    AdapterEvent, AssetCode, BinanceRequest, COMMISSION_SCALE, CancelOrder, Commission,
    FailedRequest, KnownOrder, NewOrder, OrderReport, OrderStatus, Reconciliation, ReportSource,
    StreamState, VenueOrderStatus,
};
