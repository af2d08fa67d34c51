//! The adapter's configuration (`[binance]` in TOML).

use serde::{Deserialize, Serialize};

use super::BinanceError;

/// Binance adapter settings. Every field has a default suited to the production API.
///
/// ```toml
/// [binance]
/// # REST API base (https:// or http://).
/// rest_url = "https://api.binance.com"
/// # WebSocket API endpoint carrying the user data stream (wss:// or ws://).
/// ws_api_url = "wss://ws-api.binance.com:443/ws-api/v3"
/// # How long a signed request stays valid after its timestamp (1..=60000 ms).
/// recv_window_ms = 5000
/// # Measure the offset to the server clock (GET /api/v3/time) at start and after -1021.
/// sync_time = true
/// # Requests waiting for the adapter thread; beyond this `submit` rejects at once.
/// request_queue = 1024
/// connect_timeout_ms = 3000
/// io_timeout_ms = 5000
/// # Refuse locally before these (Binance: 6000 weight/min, 100 orders/10 s, 200000/day).
/// max_weight_1m = 5000
/// max_orders_10s = 90
/// max_orders_1d = 190000
/// # Backoff after a 429/418 that carries no Retry-After.
/// default_backoff_ms = 10000
/// # User data stream reconnect delays (doubling) and silence that counts as a dead link.
/// reconnect_min_ms = 100
/// reconnect_max_ms = 5000
/// stream_idle_timeout_ms = 60000
/// # Binance client order id = prefix + engine order id ([A-Za-z0-9_-], at most 16 bytes).
/// client_id_prefix = "aaiti-"
/// # Finished orders remembered (late reports ignored, cancels answered TooLateToCancel).
/// done_orders_kept = 4096
/// # Extra PEM root certificates (files), besides the bundled Mozilla roots.
/// extra_root_pem = []
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinanceConfig {
    /// REST API base URL, `https://host[:port]` or `http://host[:port]` (tests).
    pub rest_url: String,
    /// WebSocket API URL for the user data stream, `wss://host[:port]/path` or `ws://...`.
    pub ws_api_url: String,
    /// `recvWindow` of signed requests in milliseconds (Binance allows at most 60000).
    pub recv_window_ms: u32,
    /// Correct the local clock by the server's (`GET /api/v3/time`) at start and after a
    /// `-1021` (timestamp outside the recvWindow), which is then retried once.
    pub sync_time: bool,
    /// Capacity of the request queue between `submit` and the adapter thread.
    pub request_queue: usize,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout_ms: u32,
    /// Read/write timeout of one HTTP exchange or WebSocket handshake.
    pub io_timeout_ms: u32,
    /// Request weight per minute beyond which requests are refused locally.
    pub max_weight_1m: u32,
    /// Orders per 10 seconds beyond which new orders are refused locally.
    pub max_orders_10s: u32,
    /// Orders per day beyond which new orders are refused locally.
    pub max_orders_1d: u32,
    /// Backoff after a 429/418 without a `Retry-After` header.
    pub default_backoff_ms: u64,
    /// First user data stream reconnect delay; doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// Silence on the user data stream after which it is reconnected (Binance pings every
    /// 20 s).
    pub stream_idle_timeout_ms: u64,
    /// Prefix of the Binance client order ids (`newClientOrderId = prefix + order id`).
    pub client_id_prefix: String,
    /// Finished orders remembered.
    pub done_orders_kept: usize,
    /// Extra PEM files of trusted root certificates.
    pub extra_root_pem: Vec<String>,
}

impl Default for BinanceConfig {
    fn default() -> Self {
        Self {
            rest_url: "https://api.binance.com".into(),
            ws_api_url: "wss://ws-api.binance.com:443/ws-api/v3".into(),
            recv_window_ms: 5000,
            sync_time: true,
            request_queue: 1024,
            connect_timeout_ms: 3000,
            io_timeout_ms: 5000,
            max_weight_1m: 5000,
            max_orders_10s: 90,
            max_orders_1d: 190_000,
            default_backoff_ms: 10_000,
            reconnect_min_ms: 100,
            reconnect_max_ms: 5000,
            stream_idle_timeout_ms: 60_000,
            client_id_prefix: "aaiti-".into(),
            done_orders_kept: 4096,
            extra_root_pem: Vec::new(),
        }
    }
}

impl BinanceConfig {
    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), BinanceError> {
        let bad = |key: &'static str, fix: &'static str| Err(BinanceError::Config { key, fix });
        if !(1..=60_000).contains(&self.recv_window_ms) {
            return bad("recv_window_ms", "1..=60000 (Binance's maximum)");
        }
        if self.request_queue == 0 || self.request_queue > 1 << 20 {
            return bad("request_queue", "1..=1048576");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms", "more than 0");
        }
        if self.io_timeout_ms == 0 {
            return bad("io_timeout_ms", "more than 0");
        }
        if self.max_weight_1m == 0 {
            return bad("max_weight_1m", "more than 0");
        }
        if self.max_orders_10s == 0 || self.max_orders_1d == 0 {
            return bad("max_orders_10s / max_orders_1d", "more than 0");
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return bad(
                "reconnect_min_ms / reconnect_max_ms",
                "0 < reconnect_min_ms <= reconnect_max_ms",
            );
        }
        if self.stream_idle_timeout_ms < 1000 {
            return bad("stream_idle_timeout_ms", "at least 1000");
        }
        let prefix = self.client_id_prefix.as_bytes();
        if prefix.len() > 16 || !prefix.iter().all(|&b| is_client_id_byte(b)) {
            return bad(
                "client_id_prefix",
                "at most 16 characters of A-Z a-z 0-9 _ -",
            );
        }
        if self.done_orders_kept == 0 {
            return bad("done_orders_kept", "more than 0");
        }
        Ok(())
    }
}

/// Bytes Binance allows in a client order id (`^[a-zA-Z0-9-_]{1,36}$`).
pub(crate) fn is_client_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_toml_parses() {
        BinanceConfig::default().validate().unwrap();
        let config: BinanceConfig =
            toml::from_str("recv_window_ms = 2500\nsync_time = false\n").unwrap();
        assert_eq!(config.recv_window_ms, 2500);
        assert!(!config.sync_time);
        assert_eq!(config.max_weight_1m, 5000);
        assert!(toml::from_str::<BinanceConfig>("nope = 1").is_err());
        let bad = BinanceConfig {
            client_id_prefix: "a b".into(),
            ..BinanceConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(BinanceError::Config {
                key: "client_id_prefix",
                ..
            })
        ));
        let bad = BinanceConfig {
            recv_window_ms: 60_001,
            ..BinanceConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
