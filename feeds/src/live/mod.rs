//! The live market-data path: WebSocket clients (plain `ws://` or TLS `wss://`) that feed a
//! venue handler, reconnect with backoff, resubscribe and resynchronise books, and a
//! primary/backup [`Failover`] on top of two of them.
//!
//! # Threading and time
//!
//! A [`Connection`] is a non-blocking state machine owned by one I/O thread, which calls
//! [`Connection::poll`] in its loop with the current time. Nothing inside sleeps or spawns:
//! TCP connects, the TLS and WebSocket handshakes, the reads and writes and the REST depth
//! snapshot fetch all advance a step per `poll` and return at `WouldBlock`. All timing
//! (dead-connection detection, pings, backoff, snapshot deadlines, failover) comes from the
//! `now` argument, so a test can drive it with any clock. The only blocking call is the
//! name resolution of a host name when a connection attempt starts (`getaddrinfo`); IP
//! literals never block.
//!
//! # What a poll does
//!
//! 1. Connects when the backoff delay has passed (`Disconnected` → `Connecting` →
//!    `Handshaking` → `Open`), sends the venue's subscribe messages ([`Subscription`]),
//!    emits a `Connected` [`FeedEvent`](aaiti_model::FeedEvent) on
//!    [`LiveConfig::event_stream`].
//! 2. Reads up to [`LiveConfig::max_messages_per_poll`] frames. Each text frame is copied into
//!    a reused buffer and given to the handler ([`crate::FeedHandler::on_message`]); the
//!    handler's records go to `out`. Pings are answered, binary frames are counted and
//!    skipped, and invalid UTF-8, frames over [`LiveConfig::max_message_bytes`], protocol
//!    violations, a close or a socket error end the connection (counted in [`LiveStats`]).
//! 3. Sends a ping every [`LiveConfig::ping_interval_ms`]; declares the connection dead after
//!    [`LiveConfig::dead_after_ms`] without any frame.
//! 4. When the handler wants a REST snapshot ([`LiveFeed::snapshot_wanted`], Binance at start
//!    and after a gap) and [`LiveConfig::rest_url`] is set, fetches it with a non-blocking
//!    HTTP/1.1 GET bounded by [`LiveConfig::snapshot_timeout_ms`] and
//!    [`LiveConfig::max_snapshot_bytes`], and feeds it to the handler.
//! 5. Runs the handler's staleness check ([`crate::FeedHandler::on_tick`]).
//!
//! When a connection ends, `Disconnected` is emitted, every valid book is invalidated with
//! [`crate::FeedHandler::request_resync`] (so nothing trades on a book that no longer
//! updates), and the next attempt waits for the [`Backoff`] delay (exponential, with
//! deterministic jitter from a seeded xorshift). After reconnecting the subscription
//! brings the venue's snapshot (Coinbase, Kraken) or the REST snapshot is fetched (Binance).
//!
//! # Records and streams
//!
//! The handler's records keep its own stream and numbering. The connection's own events
//! (`Connected`, `Disconnected`) are numbered `1, 2, 3...` in [`LiveConfig::event_stream`].
//! A [`Failover`] renumbers everything it forwards into its own stream (see there).
//!
//! # Limits
//!
//! * Allocation: over `ws://` the read path allocates nothing per message in steady state
//!   (measured in `tests/live_alloc.rs`; each message is copied once from tungstenite's
//!   frame buffer into a reused buffer). Over `wss://`, rustls' buffered connection moves
//!   each decrypted TLS record into a new `Vec` (about one allocation per message); its
//!   unbuffered API would remove that and is not used yet.
//! * HTTP responses: `Content-Length`, `chunked` or close-delimited bodies; no redirects,
//!   no compression, no keep-alive (one connection per snapshot).
//! * Name resolution blocks (see above); proxies are not supported.
//! * For Coinbase and Kraken, a resync of an open connection (after a failover switch)
//!   unsubscribes and subscribes again to get a fresh snapshot.

mod backoff;
mod failover;
mod rest;
mod subscribe;
mod transport;
mod ws;

use aaiti_model::{InstrumentId, UnixNanos};

pub use self::{
    backoff::{Backoff, BackoffConfig},
    failover::{ActiveFeed, Failover, FailoverConfig, FailoverStats},
    subscribe::Subscription,
    transport::TlsConfig,
    ws::{ConnState, Connection, LiveConfig, LiveStats, PollStatus},
};
use crate::{
    BinanceFeed, BinanceMarket, CoinbaseFeed, FeedHandler, KrakenV1Feed, KrakenV2Feed, RecordBuffer,
};

/// Errors of the live path.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A URL that is not `ws://`, `wss://`, `http://` or `https://` with a host.
    #[error("bad URL `{url}`: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A root certificate that does not parse or is not accepted.
    #[error("TLS root certificate #{index}: {reason}")]
    BadRootCertificate {
        /// Position in [`TlsConfig::pem_roots`].
        index: usize,
        /// Why.
        reason: String,
    },
    /// The TLS configuration cannot be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// A configuration value out of its domain.
    #[error("live config `{key}`: {reason}")]
    BadConfig {
        /// The [`LiveConfig`] or [`FailoverConfig`] field.
        key: &'static str,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
    /// [`LiveConfig::max_consecutive_failures`] connection attempts failed in a row.
    #[error("gave up after {attempts} consecutive failed connection attempts")]
    GaveUp {
        /// Failed attempts.
        attempts: u32,
    },
}

/// How a venue's books get their snapshot after a (re)connect or a resync request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SnapshotSource {
    /// The subscription sends one (Coinbase, Kraken).
    Stream,
    /// A REST request (Binance depth snapshot).
    Rest,
}

/// What the live connection needs from a venue handler beyond [`FeedHandler`]: where its
/// snapshots come from. The defaults describe a venue whose subscription sends snapshots.
pub trait LiveFeed: FeedHandler {
    /// Where snapshots come from.
    fn snapshot_source(&self) -> SnapshotSource {
        SnapshotSource::Stream
    }

    /// An instrument whose book waits for a REST snapshot, if any.
    fn snapshot_wanted(&self) -> Option<InstrumentId> {
        None
    }

    /// The REST path and query of `symbol`'s depth snapshot with up to `limit` levels.
    fn snapshot_path(&self, symbol: &str, limit: u32) -> Option<String> {
        let _ = (symbol, limit);
        None
    }

    /// Applies a REST snapshot body; false if it was rejected (the handler counted it).
    fn on_snapshot(
        &mut self,
        instrument: InstrumentId,
        body: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> bool {
        let _ = (instrument, body, ts_recv, out);
        false
    }
}

impl LiveFeed for BinanceFeed {
    fn snapshot_source(&self) -> SnapshotSource {
        SnapshotSource::Rest
    }

    fn snapshot_wanted(&self) -> Option<InstrumentId> {
        self.instruments_needing_snapshot().next()
    }

    fn snapshot_path(&self, symbol: &str, limit: u32) -> Option<String> {
        let prefix = match self.market() {
            BinanceMarket::Spot => "/api/v3/depth",
            BinanceMarket::UsdFutures => "/fapi/v1/depth",
        };
        Some(format!("{prefix}?symbol={symbol}&limit={limit}"))
    }

    fn on_snapshot(
        &mut self,
        instrument: InstrumentId,
        body: &mut [u8],
        ts_recv: UnixNanos,
        out: &mut RecordBuffer,
    ) -> bool {
        self.on_depth_snapshot(instrument, body, ts_recv, out)
            .is_ok()
    }
}

impl LiveFeed for CoinbaseFeed {}
impl LiveFeed for KrakenV1Feed {}
impl LiveFeed for KrakenV2Feed {}

/// A parsed `scheme://host[:port][/path]` URL (no user info, no fragment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

impl Endpoint {
    /// Parses `url`; `ws`/`http` are plain, `wss`/`https` TLS.
    pub(crate) fn parse(url: &str) -> Result<Self, LiveError> {
        let bad = |reason| LiveError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => (false, 80),
            "wss" | "https" => (true, 443),
            _ => return Err(bad("scheme must be ws, wss, http or https")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if rest.as_bytes().get(at) == Some(&b'?') => {
                (&rest[..at], format!("/{}", &rest[at..]))
            }
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(bad("user info is not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => port.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("junk after `]`")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad("bad port"))?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// `host` or `[v6]`, with `:port` unless it is the scheme's default.
    pub(crate) fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let e = Endpoint::parse("wss://stream.binance.com:9443/stream?streams=a/b").unwrap();
        assert_eq!(
            e,
            Endpoint {
                tls: true,
                host: "stream.binance.com".into(),
                port: 9443,
                path: "/stream?streams=a/b".into()
            }
        );
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((e.tls, e.port, e.path.as_str()), (false, 8080, "/"));
        assert_eq!(e.host_header(), "127.0.0.1:8080");
        let e = Endpoint::parse("https://[::1]/x").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 443));
        assert_eq!(e.host_header(), "[::1]");
        for bad in [
            "",
            "ftp://x",
            "ws://",
            "ws://:80",
            "ws://h:99999",
            "ws://u@h",
            "ws://[::1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
