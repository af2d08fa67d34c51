//! The REST API client: signed requests, server clock offset, rate-limit accounting, and the
//! JSON answers of the endpoints the adapter uses.
//!
//! | call | endpoint | weight |
//! |---|---|---:|
//! | server time | `GET /api/v3/time` | 1 |
//! | new order | `POST /api/v3/order` (`newOrderRespType=FULL`) | 1 (+1 order) |
//! | cancel | `DELETE /api/v3/order` | 1 |
//! | query | `GET /api/v3/order` | 4 |
//! | open orders | `GET /api/v3/openOrders` | 6 per symbol, 80 for all |
//! | trades of an order | `GET /api/v3/myTrades` (`orderId`) | 5 |

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, de::DeserializeOwned};

use super::{
    VenueError,
    http::HttpClient,
    sign::{Params, Signer},
};

/// Weight of `GET /api/v3/order`.
pub(crate) const WEIGHT_QUERY: u32 = 4;
/// Weight of `GET /api/v3/openOrders` with a symbol.
pub(crate) const WEIGHT_OPEN_ORDERS_SYMBOL: u32 = 6;
/// Weight of `GET /api/v3/openOrders` without a symbol.
pub(crate) const WEIGHT_OPEN_ORDERS_ALL: u32 = 80;
/// Weight of `GET /api/v3/myTrades` with an order id.
pub(crate) const WEIGHT_MY_TRADES: u32 = 5;

/// Why a REST call produced no answer to use.
#[derive(Debug, Clone)]
pub(crate) enum RestError {
    /// Binance answered with an error (HTTP 4xx/5xx, usually with a code and message).
    Venue(VenueError),
    /// Refused before sending: rate-limit backoff or the local weight/order budget.
    Refused(String),
    /// The exchange failed on the way. `sent` false: the server cannot have seen it.
    Transport {
        /// Whether the request may have reached the server.
        sent: bool,
        /// What happened.
        message: String,
    },
    /// A success status with a body that does not decode (the request was executed).
    Decode(String),
}

impl RestError {
    /// The error as a [`VenueError`] for events and logs.
    pub(crate) fn to_venue_error(&self) -> VenueError {
        match self {
            Self::Venue(e) => e.clone(),
            Self::Refused(message) => VenueError {
                http_status: 0,
                code: 0,
                message: format!("refused locally: {message}"),
            },
            Self::Transport { message, .. } => VenueError {
                http_status: 0,
                code: 0,
                message: message.clone(),
            },
            Self::Decode(message) => VenueError {
                http_status: 200,
                code: 0,
                message: format!("undecodable answer: {message}"),
            },
        }
    }

    /// True when the outcome of the request at the venue is unknown: it may have been
    /// executed (5xx, timeouts after sending, undecodable success).
    pub(crate) fn outcome_unknown(&self) -> bool {
        match self {
            Self::Venue(e) => e.http_status >= 500,
            Self::Refused(_) => false,
            Self::Transport { sent, .. } => *sent,
            Self::Decode(_) => true,
        }
    }

    /// The Binance error code, 0 if none.
    pub(crate) fn code(&self) -> i32 {
        match self {
            Self::Venue(e) => e.code,
            _ => 0,
        }
    }
}

/// One order as Binance reports it (new order, cancel, query and open-orders answers).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderJson {
    pub(crate) symbol: String,
    pub(crate) order_id: u64,
    /// For cancels this is the id of the cancel request; see `orig_client_order_id`.
    pub(crate) client_order_id: String,
    #[serde(default)]
    pub(crate) orig_client_order_id: Option<String>,
    #[serde(default)]
    pub(crate) transact_time: Option<u64>,
    #[serde(default)]
    pub(crate) update_time: Option<u64>,
    #[serde(default)]
    pub(crate) time: Option<u64>,
    #[serde(default)]
    pub(crate) price: Option<String>,
    #[serde(default)]
    pub(crate) orig_qty: Option<String>,
    #[serde(default)]
    pub(crate) executed_qty: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) side: Option<String>,
    #[serde(default)]
    pub(crate) fills: Vec<FillJson>,
}

impl OrderJson {
    /// The client order id of the order itself (not of a cancel request).
    pub(crate) fn order_client_id(&self) -> &str {
        match &self.orig_client_order_id {
            Some(id) if !id.is_empty() => id,
            _ => &self.client_order_id,
        }
    }

    /// The latest time the answer carries, in milliseconds.
    pub(crate) fn time_ms(&self) -> Option<u64> {
        self.transact_time.or(self.update_time).or(self.time)
    }
}

/// A fill inside a `FULL` new-order answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FillJson {
    pub(crate) price: String,
    pub(crate) qty: String,
    pub(crate) commission: String,
    pub(crate) commission_asset: String,
    pub(crate) trade_id: u64,
}

/// A trade of `GET /api/v3/myTrades`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TradeJson {
    pub(crate) id: u64,
    pub(crate) order_id: u64,
    pub(crate) price: String,
    pub(crate) qty: String,
    pub(crate) commission: String,
    pub(crate) commission_asset: String,
    pub(crate) time: u64,
    pub(crate) is_maker: bool,
}

#[derive(Debug, Deserialize)]
struct ErrorJson {
    code: i32,
    msg: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TimeJson {
    server_time: i64,
}

/// Local accounting of Binance's limits, from the response headers and our own counts.
///
/// Binance counts request weight per IP per minute and orders per account per 10 s and per
/// day, windows aligned to the clock (a minute starts at :00, a 10 s window at :00, :10...,
/// a day at 00:00 UTC). The headers give the count after each request; between them the
/// adapter adds what it spends, and a window change resets the count.
#[derive(Debug)]
pub(crate) struct Limits {
    max_weight_1m: u32,
    max_orders_10s: u32,
    max_orders_1d: u32,
    default_backoff: Duration,
    weight: u32,
    weight_window: i64,
    orders_10s: u32,
    orders_10s_window: i64,
    orders_1d: u32,
    orders_1d_window: i64,
    backoff_until: Option<Instant>,
}

impl Limits {
    pub(crate) fn new(
        max_weight_1m: u32,
        max_orders_10s: u32,
        max_orders_1d: u32,
        default_backoff: Duration,
    ) -> Self {
        Self {
            max_weight_1m,
            max_orders_10s,
            max_orders_1d,
            default_backoff,
            weight: 0,
            weight_window: 0,
            orders_10s: 0,
            orders_10s_window: 0,
            orders_1d: 0,
            orders_1d_window: 0,
            backoff_until: None,
        }
    }

    fn roll(&mut self, server_ms: i64) {
        let minute = server_ms.div_euclid(60_000);
        if minute != self.weight_window {
            self.weight_window = minute;
            self.weight = 0;
        }
        let slot = server_ms.div_euclid(10_000);
        if slot != self.orders_10s_window {
            self.orders_10s_window = slot;
            self.orders_10s = 0;
        }
        let day = server_ms.div_euclid(86_400_000);
        if day != self.orders_1d_window {
            self.orders_1d_window = day;
            self.orders_1d = 0;
        }
    }

    /// The remaining backoff after a 429/418, if any.
    pub(crate) fn backoff_remaining(&mut self, now: Instant) -> Option<Duration> {
        match self.backoff_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.backoff_until = None;
                None
            }
            None => None,
        }
    }

    /// Reserves `weight` (and one order) or says why not.
    pub(crate) fn admit(
        &mut self,
        server_ms: i64,
        now: Instant,
        weight: u32,
        order: bool,
    ) -> Result<(), String> {
        if let Some(remaining) = self.backoff_remaining(now) {
            return Err(format!(
                "rate-limit backoff, {} ms left (Retry-After)",
                remaining.as_millis()
            ));
        }
        self.roll(server_ms);
        if self.weight.saturating_add(weight) > self.max_weight_1m {
            return Err(format!(
                "request weight {} + {weight} would pass max_weight_1m = {}",
                self.weight, self.max_weight_1m
            ));
        }
        if order && self.orders_10s >= self.max_orders_10s {
            return Err(format!(
                "{} orders in this 10 s window (max_orders_10s = {})",
                self.orders_10s, self.max_orders_10s
            ));
        }
        if order && self.orders_1d >= self.max_orders_1d {
            return Err(format!(
                "{} orders today (max_orders_1d = {})",
                self.orders_1d, self.max_orders_1d
            ));
        }
        self.weight += weight;
        if order {
            self.orders_10s += 1;
            self.orders_1d += 1;
        }
        Ok(())
    }

    /// Takes the counts the server reported.
    pub(crate) fn observe(
        &mut self,
        server_ms: i64,
        used_weight_1m: Option<u32>,
        order_count_10s: Option<u32>,
        order_count_1d: Option<u32>,
    ) {
        self.roll(server_ms);
        if let Some(weight) = used_weight_1m {
            self.weight = weight;
        }
        if let Some(count) = order_count_10s {
            self.orders_10s = count;
        }
        if let Some(count) = order_count_1d {
            self.orders_1d = count;
        }
    }

    /// Starts a backoff after a 429 or 418.
    pub(crate) fn back_off(&mut self, now: Instant, retry_after_s: Option<u64>) {
        let wait = retry_after_s
            .map(|s| Duration::from_secs(s.min(3 * 86_400)))
            .unwrap_or(self.default_backoff);
        let until = now + wait;
        self.backoff_until = Some(self.backoff_until.map_or(until, |old| old.max(until)));
    }
}

/// The REST client (lives on the adapter thread).
pub(crate) struct RestClient {
    http: HttpClient,
    signer: Signer,
    api_key: zeroize::Zeroizing<String>,
    recv_window_ms: u32,
    sync_time: bool,
    /// Server clock minus local clock, milliseconds; shared with the user stream thread,
    /// which signs its subscription with it.
    offset_ms: Arc<AtomicI64>,
    pub(crate) limits: Limits,
}

impl RestClient {
    pub(crate) fn new(
        http: HttpClient,
        signer: Signer,
        api_key: &str,
        recv_window_ms: u32,
        sync_time: bool,
        limits: Limits,
        offset_ms: Arc<AtomicI64>,
    ) -> Self {
        Self {
            http,
            signer,
            api_key: zeroize::Zeroizing::new(api_key.to_owned()),
            recv_window_ms,
            sync_time,
            offset_ms,
            limits,
        }
    }

    /// Local wall clock in milliseconds.
    pub(crate) fn local_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// The server's clock as we estimate it.
    pub(crate) fn server_ms(&self) -> i64 {
        Self::local_ms().saturating_add(self.offset_ms.load(Ordering::Acquire))
    }

    /// Measures the offset to the server clock with `GET /api/v3/time` (midpoint of the
    /// round trip).
    pub(crate) fn sync_time(&mut self) -> Result<i64, RestError> {
        let before = Self::local_ms();
        let answer: TimeJson = self.call("GET", "/api/v3/time", None, 1, false, false)?;
        let after = Self::local_ms();
        let offset = answer.server_time - (before + after) / 2;
        self.offset_ms.store(offset, Ordering::Release);
        Ok(offset)
    }

    /// `POST /api/v3/order`; `params` without recvWindow/timestamp/signature.
    pub(crate) fn new_order(&mut self, params: &Params) -> Result<OrderJson, RestError> {
        self.signed("POST", "/api/v3/order", params, 1, true)
    }

    /// `DELETE /api/v3/order` by our client order id.
    pub(crate) fn cancel(&mut self, symbol: &str, client_id: &str) -> Result<OrderJson, RestError> {
        let params = by_client_id(symbol, client_id)?;
        self.signed("DELETE", "/api/v3/order", &params, 1, false)
    }

    /// `GET /api/v3/order` by our client order id.
    pub(crate) fn query(&mut self, symbol: &str, client_id: &str) -> Result<OrderJson, RestError> {
        let params = by_client_id(symbol, client_id)?;
        self.signed("GET", "/api/v3/order", &params, WEIGHT_QUERY, false)
    }

    /// `GET /api/v3/openOrders`, for one symbol or all.
    pub(crate) fn open_orders(
        &mut self,
        symbol: Option<&str>,
    ) -> Result<Vec<OrderJson>, RestError> {
        let mut params = Params::new();
        let weight = match symbol {
            Some(symbol) => {
                if !params.push("symbol", symbol) {
                    return Err(RestError::Refused(format!(
                        "symbol {symbol:?} needs encoding"
                    )));
                }
                WEIGHT_OPEN_ORDERS_SYMBOL
            }
            None => WEIGHT_OPEN_ORDERS_ALL,
        };
        self.signed("GET", "/api/v3/openOrders", &params, weight, false)
    }

    /// `GET /api/v3/myTrades` of one order.
    pub(crate) fn my_trades(
        &mut self,
        symbol: &str,
        venue_order_id: u64,
    ) -> Result<Vec<TradeJson>, RestError> {
        let mut params = Params::new();
        if !params.push("symbol", symbol) {
            return Err(RestError::Refused(format!(
                "symbol {symbol:?} needs encoding"
            )));
        }
        params.push_int("orderId", i64::try_from(venue_order_id).unwrap_or(i64::MAX));
        self.signed("GET", "/api/v3/myTrades", &params, WEIGHT_MY_TRADES, false)
    }

    fn signed<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        params: &Params,
        weight: u32,
        order: bool,
    ) -> Result<T, RestError> {
        match self.call(method, path, Some(params), weight, order, true) {
            // -1021: our clock is off by more than the recvWindow. The request was refused
            // before processing, so it is safe to resync and send it once more.
            Err(RestError::Venue(e)) if e.code == -1021 && self.sync_time => {
                tracing::warn!(
                    code = e.code,
                    message = %e.message,
                    "binance: timestamp outside recvWindow; resyncing the clock",
                );
                self.sync_time()?;
                self.call(method, path, Some(params), weight, order, true)
            }
            other => other,
        }
    }

    fn call<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        params: Option<&Params>,
        weight: u32,
        order: bool,
        signed: bool,
    ) -> Result<T, RestError> {
        let now = Instant::now();
        self.limits
            .admit(self.server_ms(), now, weight, order)
            .map_err(RestError::Refused)?;
        // Cloned (a short string) so that a request can be signed again, with a new
        // timestamp, after a -1021.
        let text = match params {
            Some(params) if signed => {
                params
                    .clone()
                    .sign(&self.signer, self.recv_window_ms, self.server_ms())
            }
            Some(params) => params.clone().finish(),
            None => String::new(),
        };
        let (target, body) = if method == "POST" {
            (path.to_owned(), text.as_bytes())
        } else if text.is_empty() {
            (path.to_owned(), &b""[..])
        } else {
            (format!("{path}?{text}"), &b""[..])
        };
        let api_key = signed.then_some(self.api_key.as_str());
        let server_ms = self.server_ms();
        let response = match self.http.send(method, &target, api_key, body) {
            Ok(response) => response,
            Err(e) => {
                return Err(RestError::Transport {
                    sent: e.maybe_sent(),
                    message: e.to_string(),
                });
            }
        };
        self.limits.observe(
            server_ms,
            response.used_weight_1m,
            response.order_count_10s,
            response.order_count_1d,
        );
        let status = response.status;
        if (200..300).contains(&status) {
            return serde_json::from_slice(response.body)
                .map_err(|e| RestError::Decode(e.to_string()));
        }
        let retry_after_s = response.retry_after_s;
        let (code, message) = match serde_json::from_slice::<ErrorJson>(response.body) {
            Ok(error) => (error.code, error.msg),
            Err(_) => (
                0,
                String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                    .into_owned(),
            ),
        };
        if status == 429 || status == 418 {
            self.limits.back_off(Instant::now(), retry_after_s);
            tracing::warn!(
                status,
                code,
                %message,
                retry_after_s,
                "binance: rate limited; backing off",
            );
        }
        Err(RestError::Venue(VenueError {
            http_status: status,
            code,
            message,
        }))
    }
}

fn by_client_id(symbol: &str, client_id: &str) -> Result<Params, RestError> {
    let mut params = Params::new();
    if !params.push("symbol", symbol) || !params.push("origClientOrderId", client_id) {
        return Err(RestError::Refused(format!(
            "symbol {symbol:?} or client id {client_id:?} needs encoding"
        )));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_before_the_budget_and_roll_windows() {
        let now = Instant::now();
        let mut limits = Limits::new(10, 2, 100, Duration::from_millis(500));
        let t = 1_700_000_000_000i64 - 1_700_000_000_000 % 60_000;
        assert!(limits.admit(t, now, 4, false).is_ok());
        assert!(limits.admit(t, now, 4, false).is_ok());
        assert!(limits.admit(t, now, 4, false).is_err());
        // The server says 9 are used: only 1 left.
        limits.observe(t, Some(9), None, None);
        assert!(limits.admit(t, now, 2, false).is_err());
        assert!(limits.admit(t, now, 1, false).is_ok());
        // Next minute: reset.
        assert!(limits.admit(t + 60_000, now, 4, false).is_ok());
        // Orders per 10 s.
        assert!(limits.admit(t + 60_000, now, 1, true).is_ok());
        assert!(limits.admit(t + 60_000, now, 1, true).is_ok());
        assert!(limits.admit(t + 60_000, now, 1, true).is_err());
        assert!(limits.admit(t + 70_000, now, 1, true).is_ok());
        // Backoff.
        limits.back_off(now, Some(2));
        assert!(limits.admit(t + 70_000, now, 1, false).is_err());
        assert!(
            limits
                .admit(t + 70_000, now + Duration::from_secs(2), 1, false)
                .is_ok()
        );
        limits.back_off(now, None);
        assert!(limits.backoff_remaining(now).is_some());
        assert!(
            limits
                .backoff_remaining(now + Duration::from_millis(500))
                .is_none()
        );
    }
}
