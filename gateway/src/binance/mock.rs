//! Test support: a local stand-in for the Binance spot API. Not used in trading.
//!
//! [`MockBinance::start`] listens on two ephemeral ports of 127.0.0.1: an HTTP/1.1 server
//! with keep-alive for the REST endpoints the adapter uses, and a WebSocket server for the
//! WebSocket API's `userDataStream.subscribe.signature`. It checks requests the way Binance
//! documents: the `X-MBX-APIKEY` header (`-2014` missing, `-2015` wrong key), the
//! `timestamp` against `recvWindow` (`-1021`), and the HMAC-SHA256 `signature` over the
//! exact parameter string (`-1022`).
//!
//! Matching is book-less: a market order fills completely at the symbol's configured market
//! price (or expires if none is set); a limit order that crosses that price fills
//! completely at it, one that does not rests (IOC/FOK expire); `LIMIT_MAKER` that would
//! cross is refused (`-2010`); stop orders rest untriggered. Symbols have tick, step and
//! minimum-notional filters (`-1013 Filter failure: ...`), assets have optional balances
//! (`-2010` insufficient balance; an asset without a balance is unlimited). Test hooks fill,
//! cancel or expire resting orders and push the matching `executionReport` events to the
//! subscribed user data streams; others inject rate limiting (429/418 with `Retry-After`),
//! a used-weight level, a clock skew, and drop or refuse user stream connections.
//!
//! Decimals are handled at 8 places, as Binance prints them (`"0.10000000"`).

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aaiti_model::{FixedDisplay, Scale, parse_fixed};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde_json::{Value, json};
use tungstenite::Message;

use super::sign::Signer;

const POLL: Duration = Duration::from_millis(10);
const ONE: i128 = 100_000_000;

/// What a test hook could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockError {
    /// No order with that client order id.
    #[error("no such order")]
    UnknownOrder,
    /// The order is not open.
    #[error("the order is not open")]
    NotOpen,
    /// The symbol is not configured.
    #[error("unknown symbol")]
    UnknownSymbol,
    /// A decimal does not parse at 8 places.
    #[error("bad decimal {0:?}")]
    BadNumber(String),
    /// The fill is larger than the order's open quantity.
    #[error("fill larger than the open quantity")]
    Overfill,
}

/// Which asset commissions are charged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockCommission {
    /// The quote asset: `rate × price × qty`.
    Quote,
    /// The base asset: `rate × qty`.
    Base,
    /// Another asset (e.g. `BNB`), amount `rate × price × qty` without conversion.
    Other(String),
}

/// A REST request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// `totalParams`: the query string followed by the body.
    pub params: String,
    /// Answered 429/418 by an injected rate limit.
    pub rate_limited: bool,
}

/// An order's state in the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOrderView {
    /// Binance order id.
    pub order_id: u64,
    /// Status text (`NEW`, `FILLED`...).
    pub status: String,
    /// Executed quantity text (8 places).
    pub executed: String,
}

#[derive(Debug, Clone)]
struct Symbol {
    base: String,
    quote: String,
    tick: i64,
    step: i64,
    min_notional: i64,
    market_price: Option<i64>,
}

#[derive(Debug, Clone)]
struct Order {
    symbol: String,
    order_id: u64,
    client_id: String,
    side: &'static str,
    order_type: String,
    tif: String,
    price: i64,
    stop_price: i64,
    qty: i64,
    executed: i64,
    cum_quote: i64,
    status: &'static str,
    time: i64,
    update_time: i64,
}

impl Order {
    fn is_open(&self) -> bool {
        matches!(self.status, "NEW" | "PARTIALLY_FILLED")
    }
}

#[derive(Debug, Clone)]
struct Trade {
    id: u64,
    order_id: u64,
    symbol: String,
    price: i64,
    qty: i64,
    quote_qty: i64,
    commission: i64,
    commission_asset: String,
    time: i64,
    is_buyer: bool,
    is_maker: bool,
}

struct Subscriber {
    connection: u64,
    subscription_id: u64,
    tx: Sender<String>,
}

struct State {
    api_key: String,
    signer: Signer,
    symbols: HashMap<String, Symbol>,
    balances: HashMap<String, i64>,
    orders: Vec<Order>,
    trades: Vec<Trade>,
    next_trade_id: u64,
    next_cancel_id: u64,
    commission_bp: i64,
    commission: MockCommission,
    skew_ms: i64,
    blocked: Option<(Instant, u16)>,
    weight: u32,
    weight_minute: i64,
    orders_10s: u32,
    orders_10s_window: i64,
    orders_1d: u32,
    requests: Vec<RecordedRequest>,
    subscribers: Vec<Subscriber>,
    next_subscription_id: u64,
    next_connection: u64,
    /// Connections opened before this number are closed.
    kill_before: u64,
    streams_refused: bool,
    delay: Duration,
    /// Requests to take in and drop without acting or answering, once each.
    swallow: Vec<(String, String)>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread leaves the state usable for the others.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The mock server. Dropping it stops its threads.
pub struct MockBinance {
    shared: Arc<Shared>,
    rest_addr: SocketAddr,
    ws_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MockBinance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBinance")
            .field("rest_addr", &self.rest_addr)
            .field("ws_addr", &self.ws_addr)
            .finish_non_exhaustive()
    }
}

fn scale() -> Scale {
    super::COMMISSION_SCALE
}

fn d8(text: &str) -> Result<i64, MockError> {
    parse_fixed(text.as_bytes(), scale()).map_err(|_| MockError::BadNumber(text.to_owned()))
}

fn f8(mantissa: i64) -> String {
    FixedDisplay::new(mantissa, scale()).to_string()
}

/// `a × b` of two 8-place mantissas, at 8 places (rounded down).
fn mul8(a: i64, b: i64) -> i64 {
    (i128::from(a) * i128::from(b) / ONE).clamp(0, i128::from(i64::MAX)) as i64
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl MockBinance {
    /// Starts the servers for one API key and secret.
    pub fn start(api_key: &str, secret: &str) -> std::io::Result<Self> {
        let rest = TcpListener::bind("127.0.0.1:0")?;
        let ws = TcpListener::bind("127.0.0.1:0")?;
        rest.set_nonblocking(true)?;
        ws.set_nonblocking(true)?;
        let rest_addr = rest.local_addr()?;
        let ws_addr = ws.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                api_key: api_key.to_owned(),
                signer: Signer::from_secret(secret.as_bytes()),
                symbols: HashMap::new(),
                balances: HashMap::new(),
                orders: Vec::new(),
                trades: Vec::new(),
                next_trade_id: 1000,
                next_cancel_id: 1,
                commission_bp: 10,
                commission: MockCommission::Quote,
                skew_ms: 0,
                blocked: None,
                weight: 0,
                weight_minute: 0,
                orders_10s: 0,
                orders_10s_window: 0,
                orders_1d: 0,
                requests: Vec::new(),
                subscribers: Vec::new(),
                next_subscription_id: 0,
                next_connection: 1,
                kill_before: 0,
                streams_refused: false,
                delay: Duration::ZERO,
                swallow: Vec::new(),
            }),
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("mock-binance-rest".into())
                .spawn(move || accept_loop(&rest, &s, serve_http))?,
        );
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name("mock-binance-ws".into())
                .spawn(move || accept_loop(&ws, &s, serve_ws))?,
        );
        Ok(Self {
            shared,
            rest_addr,
            ws_addr,
            threads,
        })
    }

    /// The REST base URL (`http://127.0.0.1:port`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// The WebSocket API URL (`ws://127.0.0.1:port/ws-api/v3`).
    pub fn ws_api_url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.ws_addr)
    }

    /// Adds a symbol with its filters (decimal texts).
    pub fn add_symbol(
        &self,
        symbol: &str,
        base: &str,
        quote: &str,
        tick_size: &str,
        step_size: &str,
        min_notional: &str,
    ) -> Result<(), MockError> {
        let entry = Symbol {
            base: base.to_owned(),
            quote: quote.to_owned(),
            tick: d8(tick_size)?.max(1),
            step: d8(step_size)?.max(1),
            min_notional: d8(min_notional)?,
            market_price: None,
        };
        self.shared.lock().symbols.insert(symbol.to_owned(), entry);
        Ok(())
    }

    /// Sets the price market orders (and crossing limit orders) fill at.
    pub fn set_market_price(&self, symbol: &str, price: &str) -> Result<(), MockError> {
        let price = d8(price)?;
        let mut state = self.shared.lock();
        let entry = state
            .symbols
            .get_mut(symbol)
            .ok_or(MockError::UnknownSymbol)?;
        entry.market_price = Some(price);
        Ok(())
    }

    /// Sets an asset's free balance (checked when orders are placed, never debited).
    pub fn set_balance(&self, asset: &str, amount: &str) -> Result<(), MockError> {
        let amount = d8(amount)?;
        self.shared.lock().balances.insert(asset.to_owned(), amount);
        Ok(())
    }

    /// Sets the commission rate (basis points) and asset. Default: 10 bp in the quote asset.
    pub fn set_commission(&self, rate_bp: i64, asset: MockCommission) {
        let mut state = self.shared.lock();
        state.commission_bp = rate_bp;
        state.commission = asset;
    }

    /// Moves the server clock by `skew_ms` relative to the machine's.
    pub fn set_clock_skew_ms(&self, skew_ms: i64) {
        self.shared.lock().skew_ms = skew_ms;
    }

    /// Answers every REST request with `status` (429 or 418) and `Retry-After:
    /// retry_after_s` until that many seconds have passed.
    pub fn rate_limit(&self, status: u16, retry_after_s: u64) {
        self.shared.lock().blocked =
            Some((Instant::now() + Duration::from_secs(retry_after_s), status));
    }

    /// Sets the request weight used in the current minute (reported in
    /// `X-MBX-USED-WEIGHT-1M`).
    pub fn set_used_weight(&self, weight: u32) {
        let mut state = self.shared.lock();
        state.weight_minute = (now_ms() + state.skew_ms).div_euclid(60_000);
        state.weight = weight;
    }

    /// Every REST request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Active user data stream subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.shared.lock().subscribers.len()
    }

    /// Closes every WebSocket connection (the adapter must reconnect).
    pub fn drop_user_streams(&self) {
        let mut state = self.shared.lock();
        state.kill_before = state.next_connection;
        state.subscribers.clear();
    }

    /// While true, new WebSocket connections are closed at once (the venue is unreachable
    /// for the stream); REST keeps working.
    pub fn refuse_user_streams(&self, refuse: bool) {
        self.shared.lock().streams_refused = refuse;
    }

    /// Delays every REST answer (a slow venue), without holding up the stream.
    pub fn set_response_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// The next `method path` request (e.g. `POST /api/v3/order`) is read, recorded and then
    /// neither executed nor answered: the request is lost inside the venue, so the client
    /// times out without knowing whether it acted.
    pub fn swallow_next(&self, method: &str, path: &str) {
        self.shared
            .lock()
            .swallow
            .push((method.to_owned(), path.to_owned()));
    }

    /// An order's state by client order id.
    pub fn order(&self, client_id: &str) -> Option<MockOrderView> {
        let state = self.shared.lock();
        state
            .orders
            .iter()
            .rev()
            .find(|o| o.client_id == client_id)
            .map(|o| MockOrderView {
                order_id: o.order_id,
                status: o.status.to_owned(),
                executed: f8(o.executed),
            })
    }

    /// Places a resting limit order directly (as another client of the account would).
    pub fn place_order(
        &self,
        symbol: &str,
        client_id: &str,
        side_buy: bool,
        price: &str,
        qty: &str,
    ) -> Result<u64, MockError> {
        let (price, qty) = (d8(price)?, d8(qty)?);
        let mut state = self.shared.lock();
        if !state.symbols.contains_key(symbol) {
            return Err(MockError::UnknownSymbol);
        }
        let now = state.now();
        let order_id = state.orders.len() as u64 + 1;
        state.orders.push(Order {
            symbol: symbol.to_owned(),
            order_id,
            client_id: client_id.to_owned(),
            side: if side_buy { "BUY" } else { "SELL" },
            order_type: "LIMIT".into(),
            tif: "GTC".into(),
            price,
            stop_price: 0,
            qty,
            executed: 0,
            cum_quote: 0,
            status: "NEW",
            time: now,
            update_time: now,
        });
        let index = state.orders.len() - 1;
        state.push_report(index, "NEW", None, "");
        Ok(order_id)
    }

    /// Fills `qty` of an open order at `price` (maker or taker) and pushes the `TRADE`
    /// report. Returns the trade id.
    pub fn fill(
        &self,
        client_id: &str,
        qty: &str,
        price: &str,
        maker: bool,
    ) -> Result<u64, MockError> {
        let (qty, price) = (d8(qty)?, d8(price)?);
        let mut state = self.shared.lock();
        let index = state.open_index(client_id)?;
        if qty <= 0 || qty > state.orders[index].qty - state.orders[index].executed {
            return Err(MockError::Overfill);
        }
        Ok(state.execute(index, qty, price, maker).id)
    }

    /// Cancels an open order on the venue's side (as the account's UI would) and pushes the
    /// `CANCELED` report.
    pub fn cancel_order(&self, client_id: &str) -> Result<(), MockError> {
        let mut state = self.shared.lock();
        let index = state.open_index(client_id)?;
        state.end(index, "CANCELED", "CANCELED");
        Ok(())
    }

    /// Expires an open order (exchange maintenance, STP) and pushes the `EXPIRED` report.
    pub fn expire_order(&self, client_id: &str) -> Result<(), MockError> {
        let mut state = self.shared.lock();
        let index = state.open_index(client_id)?;
        state.end(index, "EXPIRED", "EXPIRED");
        Ok(())
    }
}

impl Drop for MockBinance {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, serve: fn(TcpStream, &Shared, u64)) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _)) => {
                let connection = {
                    let mut state = shared.lock();
                    state.next_connection += 1;
                    state.next_connection - 1
                };
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("mock-binance-conn".into())
                    .spawn(move || {
                        if stream.set_nonblocking(false).is_ok() {
                            serve(stream, &shared, connection);
                        }
                    });
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
                connections.retain(|c| !c.is_finished());
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

// ---------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------

struct Answer {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
}

fn error(status: u16, code: i32, msg: &str) -> Answer {
    Answer {
        status,
        body: json!({ "code": code, "msg": msg }).to_string(),
        headers: Vec::new(),
    }
}

fn ok(body: Value) -> Answer {
    Answer {
        status: 200,
        body: body.to_string(),
        headers: Vec::new(),
    }
}

fn serve_http(mut stream: TcpStream, shared: &Shared, _connection: u64) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .is_err()
    {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        // Complete request in the buffer?
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(&buf);
        if let Ok(httparse::Status::Complete(header_len)) = parsed {
            let mut content_length = 0usize;
            let mut api_key = None;
            let mut close = false;
            for header in request.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    content_length = std::str::from_utf8(header.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                } else if header.name.eq_ignore_ascii_case("x-mbx-apikey") {
                    api_key = std::str::from_utf8(header.value).ok().map(str::to_owned);
                } else if header.name.eq_ignore_ascii_case("connection") {
                    close = header.value.eq_ignore_ascii_case(b"close");
                }
            }
            if buf.len() >= header_len + content_length {
                let method = request.method.unwrap_or("").to_owned();
                let target = request.path.unwrap_or("").to_owned();
                let body = String::from_utf8_lossy(&buf[header_len..header_len + content_length])
                    .into_owned();
                buf.drain(..header_len + content_length);
                if shared.lock().take_swallowed(&method, &target) {
                    // Hold the connection without answering until the client gives up.
                    continue;
                }
                let answer = handle_rest(shared, &method, &target, api_key.as_deref(), &body);
                let delay = shared.lock().delay;
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let mut out = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\n",
                    answer.status,
                    reason_phrase(answer.status),
                    answer.body.len()
                );
                for (name, value) in &answer.headers {
                    out.push_str(name);
                    out.push_str(": ");
                    out.push_str(value);
                    out.push_str("\r\n");
                }
                out.push_str("\r\n");
                out.push_str(&answer.body);
                if stream.write_all(out.as_bytes()).is_err() || close {
                    return;
                }
                continue;
            }
        } else if parsed.is_err() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if super::net::is_timeout(&e) => {}
            Err(_) => return,
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        _ => "Status",
    }
}

/// Parses `a=1&b=2` into pairs (no percent-decoding needed for what the adapter sends).
fn pairs(text: &str) -> Vec<(&str, &str)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

fn get<'a>(params: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn mandatory(name: &str) -> Answer {
    error(
        400,
        -1102,
        &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

fn handle_rest(
    shared: &Shared,
    method: &str,
    target: &str,
    api_key: Option<&str>,
    body: &str,
) -> Answer {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // totalParams: the query string concatenated with the body (rest-api.md).
    let total = format!("{query}{body}");
    let mut state = shared.lock();
    let now = state.now();
    let mut record = RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        params: total.clone(),
        rate_limited: false,
    };
    if let Some((until, status)) = state.blocked {
        let now_instant = Instant::now();
        if until > now_instant {
            record.rate_limited = true;
            state.requests.push(record);
            let remaining = (until - now_instant).as_millis().div_ceil(1000);
            let mut answer = error(
                status,
                -1003,
                "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            );
            answer.headers.push(("Retry-After", remaining.to_string()));
            return answer;
        }
        state.blocked = None;
    }
    state.requests.push(record);
    let weight = match (method, path) {
        ("GET", "/api/v3/order") => 4,
        ("GET", "/api/v3/openOrders") if query.contains("symbol=") => 6,
        ("GET", "/api/v3/openOrders") => 80,
        ("GET", "/api/v3/myTrades") => 5,
        _ => 1,
    };
    let minute = now.div_euclid(60_000);
    if minute != state.weight_minute {
        state.weight_minute = minute;
        state.weight = 0;
    }
    state.weight += weight;
    let weight_header = ("X-MBX-USED-WEIGHT-1M", state.weight.to_string());
    let mut answer = match (method, path) {
        ("GET", "/api/v3/time") => ok(json!({ "serverTime": now })),
        ("GET", "/api/v3/ping") => ok(json!({})),
        _ => {
            let params = pairs(&total);
            match state.authenticate(api_key, &total, &params, now) {
                Err(answer) => answer,
                Ok(()) => match (method, path) {
                    ("POST", "/api/v3/order") => state.new_order(&params, now),
                    ("DELETE", "/api/v3/order") => state.cancel(&params, now),
                    ("GET", "/api/v3/order") => state.query(&params),
                    ("GET", "/api/v3/openOrders") => state.open_orders(&params),
                    ("GET", "/api/v3/myTrades") => state.my_trades(&params),
                    _ => error(404, -1000, "Unknown endpoint."),
                },
            }
        }
    };
    answer.headers.push(weight_header);
    answer
}

impl State {
    fn now(&self) -> i64 {
        now_ms() + self.skew_ms
    }

    fn take_swallowed(&mut self, method: &str, target: &str) -> bool {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        let Some(at) = self
            .swallow
            .iter()
            .position(|(m, p)| m == method && p == path)
        else {
            return false;
        };
        self.swallow.remove(at);
        self.requests.push(RecordedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            params: String::new(),
            rate_limited: false,
        });
        true
    }

    fn authenticate(
        &self,
        api_key: Option<&str>,
        total: &str,
        params: &[(&str, &str)],
        now: i64,
    ) -> Result<(), Answer> {
        let Some(api_key) = api_key.filter(|k| !k.is_empty()) else {
            return Err(error(401, -2014, "API-key format invalid."));
        };
        if api_key != self.api_key {
            return Err(error(
                401,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ));
        }
        self.check_signed(params, now, || {
            // The signed payload is totalParams without the signature parameter.
            total
                .split('&')
                .filter(|p| !p.starts_with("signature="))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    /// The timing and signature checks shared by REST and the WebSocket API.
    fn check_signed(
        &self,
        params: &[(&str, &str)],
        now: i64,
        payload: impl FnOnce() -> String,
    ) -> Result<(), Answer> {
        let Some(signature) = get(params, "signature") else {
            return Err(mandatory("signature"));
        };
        let Some(timestamp) = get(params, "timestamp").and_then(|t| t.parse::<i64>().ok()) else {
            return Err(mandatory("timestamp"));
        };
        let recv_window = get(params, "recvWindow")
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(5000);
        if recv_window > 60_000 {
            return Err(error(400, -1131, "recvWindow must be less than 60000"));
        }
        // rest-api.md, "Timing security".
        if !(timestamp < now + 1000 && now - timestamp <= recv_window) {
            return Err(error(
                400,
                -1021,
                "Timestamp for this request is outside of the recvWindow.",
            ));
        }
        if !self.signer.verify(payload().as_bytes(), signature) {
            return Err(error(
                400,
                -1022,
                "Signature for this request is not valid.",
            ));
        }
        Ok(())
    }

    fn open_index(&self, client_id: &str) -> Result<usize, MockError> {
        let index = self
            .orders
            .iter()
            .rposition(|o| o.client_id == client_id)
            .ok_or(MockError::UnknownOrder)?;
        if !self.orders[index].is_open() {
            return Err(MockError::NotOpen);
        }
        Ok(index)
    }

    fn find(&self, params: &[(&str, &str)]) -> Result<Option<usize>, Answer> {
        let Some(symbol) = get(params, "symbol") else {
            return Err(mandatory("symbol"));
        };
        if !self.symbols.contains_key(symbol) {
            return Err(error(400, -1121, "Invalid symbol."));
        }
        let by_id = get(params, "orderId").and_then(|t| t.parse::<u64>().ok());
        let by_client = get(params, "origClientOrderId");
        if by_id.is_none() && by_client.is_none() {
            return Err(mandatory("orderId"));
        }
        Ok(self.orders.iter().rposition(|o| {
            o.symbol == symbol
                && by_id.is_none_or(|id| o.order_id == id)
                && by_client.is_none_or(|c| o.client_id == c)
        }))
    }

    fn order_json(&self, index: usize) -> Value {
        let o = &self.orders[index];
        json!({
            "symbol": o.symbol,
            "orderId": o.order_id,
            "orderListId": -1,
            "clientOrderId": o.client_id,
            "price": f8(o.price),
            "origQty": f8(o.qty),
            "executedQty": f8(o.executed),
            "cummulativeQuoteQty": f8(o.cum_quote),
            "status": o.status,
            "timeInForce": o.tif,
            "type": o.order_type,
            "side": o.side,
            "stopPrice": f8(o.stop_price),
            "icebergQty": f8(0),
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": o.is_open(),
            "workingTime": o.time,
            "origQuoteOrderQty": f8(0),
            "selfTradePreventionMode": "NONE",
        })
    }

    fn new_order(&mut self, params: &[(&str, &str)], now: i64) -> Answer {
        let Some(symbol_name) = get(params, "symbol") else {
            return mandatory("symbol");
        };
        let Some(symbol) = self.symbols.get(symbol_name).cloned() else {
            return error(400, -1121, "Invalid symbol.");
        };
        let side = match get(params, "side") {
            Some("BUY") => "BUY",
            Some("SELL") => "SELL",
            Some(_) => return error(400, -1117, "Invalid side."),
            None => return mandatory("side"),
        };
        let Some(order_type) = get(params, "type") else {
            return mandatory("type");
        };
        let (needs_price, needs_stop, needs_tif) = match order_type {
            "LIMIT" => (true, false, true),
            "LIMIT_MAKER" => (true, false, false),
            "MARKET" => (false, false, false),
            "STOP_LOSS" | "TAKE_PROFIT" => (false, true, false),
            "STOP_LOSS_LIMIT" | "TAKE_PROFIT_LIMIT" => (true, true, true),
            _ => return error(400, -1116, "Invalid orderType."),
        };
        let tif = match get(params, "timeInForce") {
            Some(tif @ ("GTC" | "IOC" | "FOK")) if needs_tif => tif,
            Some(_) if needs_tif => return error(400, -1115, "Invalid timeInForce."),
            None if needs_tif => return mandatory("timeInForce"),
            Some(_) => {
                return error(
                    400,
                    -1106,
                    "Parameter 'timeInForce' sent when not required.",
                );
            }
            None => "GTC",
        };
        let number = |name: &str, needed: bool| -> Result<i64, Answer> {
            match get(params, name) {
                Some(text) => d8(text).map_err(|_| {
                    error(
                        400,
                        -1100,
                        &format!("Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."),
                    )
                }),
                None if needed => Err(mandatory(name)),
                None => Ok(0),
            }
        };
        let qty = match number("quantity", true) {
            Ok(qty) => qty,
            Err(answer) => return answer,
        };
        let price = match number("price", needs_price) {
            Ok(price) => price,
            Err(answer) => return answer,
        };
        let stop_price = match number("stopPrice", needs_stop) {
            Ok(price) => price,
            Err(answer) => return answer,
        };
        let client_id = match get(params, "newClientOrderId") {
            Some(id) => id.to_owned(),
            None => format!("mock{}", self.orders.len() + 1),
        };
        if self
            .orders
            .iter()
            .any(|o| o.is_open() && o.client_id == client_id)
        {
            return error(400, -2010, "Duplicate order sent.");
        }
        if needs_price && (price <= 0 || price % symbol.tick != 0) {
            return error(400, -1013, "Filter failure: PRICE_FILTER");
        }
        if qty <= 0 || qty % symbol.step != 0 {
            return error(400, -1013, "Filter failure: LOT_SIZE");
        }
        let reference = if needs_price {
            Some(price)
        } else {
            symbol.market_price
        };
        if let Some(reference) = reference
            && mul8(reference, qty) < symbol.min_notional
        {
            return error(400, -1013, "Filter failure: NOTIONAL");
        }
        let (asset, needed) = if side == "BUY" {
            (&symbol.quote, reference.map_or(0, |p| mul8(p, qty)))
        } else {
            (&symbol.base, qty)
        };
        if self.balances.get(asset).is_some_and(|&free| free < needed) {
            return error(
                400,
                -2010,
                "Account has insufficient balance for requested action.",
            );
        }
        let crosses = |limit: i64| {
            symbol.market_price.is_some_and(|market| {
                if side == "BUY" {
                    limit >= market
                } else {
                    limit <= market
                }
            })
        };
        if order_type == "LIMIT_MAKER" && crosses(price) {
            return error(400, -2010, "Order would immediately match and take.");
        }
        let order_id = self.orders.len() as u64 + 1;
        self.orders.push(Order {
            symbol: symbol_name.to_owned(),
            order_id,
            client_id,
            side,
            order_type: order_type.to_owned(),
            tif: tif.to_owned(),
            price,
            stop_price,
            qty,
            executed: 0,
            cum_quote: 0,
            status: "NEW",
            time: now,
            update_time: now,
        });
        let index = self.orders.len() - 1;
        self.count_order(now);
        self.push_report(index, "NEW", None, "");
        let mut fills = Vec::new();
        match order_type {
            "MARKET" => match symbol.market_price {
                Some(market) => fills.push(self.execute(index, qty, market, false)),
                None => {
                    self.end(index, "EXPIRED", "EXPIRED");
                }
            },
            "LIMIT" if crosses(price) => {
                if let Some(market) = symbol.market_price {
                    fills.push(self.execute(index, qty, market, false));
                }
            }
            "LIMIT" if tif != "GTC" => {
                self.end(index, "EXPIRED", "EXPIRED");
            }
            _ => {}
        }
        let mut body = self.order_json(index);
        body["transactTime"] = json!(now);
        body["fills"] = Value::Array(
            fills
                .iter()
                .map(|t| {
                    json!({
                        "price": f8(t.price),
                        "qty": f8(t.qty),
                        "commission": f8(t.commission),
                        "commissionAsset": t.commission_asset,
                        "tradeId": t.id,
                    })
                })
                .collect(),
        );
        let mut answer = ok(body);
        answer
            .headers
            .push(("X-MBX-ORDER-COUNT-10S", self.orders_10s.to_string()));
        answer
            .headers
            .push(("X-MBX-ORDER-COUNT-1D", self.orders_1d.to_string()));
        answer
    }

    fn count_order(&mut self, now: i64) {
        let window = now.div_euclid(10_000);
        if window != self.orders_10s_window {
            self.orders_10s_window = window;
            self.orders_10s = 0;
        }
        self.orders_10s += 1;
        self.orders_1d += 1;
    }

    fn cancel(&mut self, params: &[(&str, &str)], now: i64) -> Answer {
        let index = match self.find(params) {
            Err(answer) => return answer,
            Ok(None) => return error(400, -2011, "Unknown order sent."),
            Ok(Some(index)) => index,
        };
        if !self.orders[index].is_open() {
            return error(400, -2011, "Unknown order sent.");
        }
        let cancel_id = self.end(index, "CANCELED", "CANCELED");
        self.orders[index].update_time = now;
        let mut body = self.order_json(index);
        body["origClientOrderId"] = json!(self.orders[index].client_id);
        body["clientOrderId"] = json!(cancel_id);
        body["transactTime"] = json!(now);
        ok(body)
    }

    fn query(&mut self, params: &[(&str, &str)]) -> Answer {
        match self.find(params) {
            Err(answer) => answer,
            Ok(None) => error(400, -2013, "Order does not exist."),
            Ok(Some(index)) => ok(self.order_json(index)),
        }
    }

    fn open_orders(&mut self, params: &[(&str, &str)]) -> Answer {
        let symbol = get(params, "symbol");
        if let Some(symbol) = symbol
            && !self.symbols.contains_key(symbol)
        {
            return error(400, -1121, "Invalid symbol.");
        }
        let list: Vec<Value> = (0..self.orders.len())
            .filter(|&i| {
                self.orders[i].is_open() && symbol.is_none_or(|s| self.orders[i].symbol == s)
            })
            .map(|i| self.order_json(i))
            .collect();
        ok(Value::Array(list))
    }

    fn my_trades(&mut self, params: &[(&str, &str)]) -> Answer {
        let Some(symbol) = get(params, "symbol") else {
            return mandatory("symbol");
        };
        let order_id = get(params, "orderId").and_then(|t| t.parse::<u64>().ok());
        let list: Vec<Value> = self
            .trades
            .iter()
            .filter(|t| t.symbol == symbol && order_id.is_none_or(|id| t.order_id == id))
            .map(|t| {
                json!({
                    "symbol": t.symbol,
                    "id": t.id,
                    "orderId": t.order_id,
                    "orderListId": -1,
                    "price": f8(t.price),
                    "qty": f8(t.qty),
                    "quoteQty": f8(t.quote_qty),
                    "commission": f8(t.commission),
                    "commissionAsset": t.commission_asset,
                    "time": t.time,
                    "isBuyer": t.is_buyer,
                    "isMaker": t.is_maker,
                    "isBestMatch": true,
                })
            })
            .collect();
        ok(Value::Array(list))
    }

    /// Executes `qty` at `price`; pushes the `TRADE` report.
    fn execute(&mut self, index: usize, qty: i64, price: i64, maker: bool) -> Trade {
        let now = self.now();
        let symbol = self
            .symbols
            .get(&self.orders[index].symbol)
            .cloned()
            .unwrap_or(Symbol {
                base: String::new(),
                quote: String::new(),
                tick: 1,
                step: 1,
                min_notional: 0,
                market_price: None,
            });
        let quote_qty = mul8(price, qty);
        let rate = i128::from(self.commission_bp);
        let ceil = |amount: i64| -> i64 {
            let scaled = i128::from(amount) * rate;
            (scaled.div_euclid(10_000) + i128::from(scaled.rem_euclid(10_000) != 0)) as i64
        };
        let (commission, commission_asset) = match &self.commission {
            MockCommission::Quote => (ceil(quote_qty), symbol.quote.clone()),
            MockCommission::Base => (ceil(qty), symbol.base.clone()),
            MockCommission::Other(asset) => (ceil(quote_qty), asset.clone()),
        };
        self.next_trade_id += 1;
        let trade = Trade {
            id: self.next_trade_id,
            order_id: self.orders[index].order_id,
            symbol: self.orders[index].symbol.clone(),
            price,
            qty,
            quote_qty,
            commission,
            commission_asset,
            time: now,
            is_buyer: self.orders[index].side == "BUY",
            is_maker: maker,
        };
        let order = &mut self.orders[index];
        order.executed += qty;
        order.cum_quote += quote_qty;
        order.update_time = now;
        order.status = if order.executed >= order.qty {
            "FILLED"
        } else {
            "PARTIALLY_FILLED"
        };
        self.trades.push(trade.clone());
        self.push_report(index, "TRADE", Some(&trade), "");
        trade
    }

    /// Ends an open order (`CANCELED`, `EXPIRED`); returns the cancel request id used.
    fn end(&mut self, index: usize, status: &'static str, exec_type: &'static str) -> String {
        let now = self.now();
        let order = &mut self.orders[index];
        order.status = status;
        order.update_time = now;
        let cancel_id = if status == "CANCELED" {
            self.next_cancel_id += 1;
            format!("cancel{}", self.next_cancel_id)
        } else {
            String::new()
        };
        self.push_report(index, exec_type, None, &cancel_id);
        cancel_id
    }

    /// Sends an `executionReport` (user-data-stream.md) to every subscriber. For cancels,
    /// `c` is the cancel request's id and `C` the order's own.
    fn push_report(
        &mut self,
        index: usize,
        exec_type: &str,
        trade: Option<&Trade>,
        cancel_id: &str,
    ) {
        let o = &self.orders[index];
        let now = self.now();
        let (client, orig) = if cancel_id.is_empty() {
            (o.client_id.as_str(), "")
        } else {
            (cancel_id, o.client_id.as_str())
        };
        let event = json!({
            "e": "executionReport",
            "E": now,
            "s": o.symbol,
            "c": client,
            "S": o.side,
            "o": o.order_type,
            "f": o.tif,
            "q": f8(o.qty),
            "p": f8(o.price),
            "P": f8(o.stop_price),
            "F": f8(0),
            "g": -1,
            "C": orig,
            "x": exec_type,
            "X": o.status,
            "r": "NONE",
            "i": o.order_id,
            "l": f8(trade.map_or(0, |t| t.qty)),
            "z": f8(o.executed),
            "L": f8(trade.map_or(0, |t| t.price)),
            "n": trade.map_or_else(|| "0".to_owned(), |t| f8(t.commission)),
            "N": trade.map(|t| t.commission_asset.clone()),
            "T": now,
            "t": trade.map_or(-1, |t| i64::try_from(t.id).unwrap_or(-1)),
            "I": 1,
            "w": o.is_open(),
            "m": trade.is_some_and(|t| t.is_maker),
            "M": false,
            "O": o.time,
            "Z": f8(o.cum_quote),
            "Y": f8(trade.map_or(0, |t| t.quote_qty)),
            "Q": f8(0),
            "W": o.time,
            "V": "NONE",
        });
        for subscriber in &self.subscribers {
            let frame = json!({ "subscriptionId": subscriber.subscription_id, "event": event });
            let _ = subscriber.tx.send(frame.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------
// WebSocket API
// ---------------------------------------------------------------------------------------

fn serve_ws(stream: TcpStream, shared: &Shared, connection: u64) {
    if shared.lock().streams_refused {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return;
    }
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    if ws.get_ref().set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let (tx, rx): (Sender<String>, Receiver<String>) = unbounded();
    loop {
        if shared.stop.load(Ordering::Acquire) || shared.lock().kill_before > connection {
            let _ = ws.close(None);
            let _ = ws.flush();
            let _ = ws.get_ref().shutdown(std::net::Shutdown::Both);
            break;
        }
        while let Ok(frame) = rx.try_recv() {
            if ws.send(Message::text(frame)).is_err() {
                break;
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let answer = handle_ws_request(shared, text.as_str(), connection, &tx);
                if ws.send(Message::text(answer)).is_err() {
                    break;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if super::net::is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    shared
        .lock()
        .subscribers
        .retain(|s| s.connection != connection);
}

fn handle_ws_request(shared: &Shared, text: &str, connection: u64, tx: &Sender<String>) -> String {
    let request: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => {
            return json!({"id": null, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}).to_string();
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let failure = |answer: Answer| -> String {
        let parsed: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        json!({ "id": id, "status": answer.status, "error": parsed }).to_string()
    };
    if request.get("method").and_then(Value::as_str) != Some("userDataStream.subscribe.signature") {
        return failure(error(400, -1020, "This operation is not supported."));
    }
    let params: Vec<(String, String)> = request
        .get("params")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut state = shared.lock();
    let Some(api_key) = get(&borrowed, "apiKey") else {
        return failure(mandatory("apiKey"));
    };
    if api_key != state.api_key {
        return failure(error(
            401,
            -2015,
            "Invalid API-key, IP, or permissions for action.",
        ));
    }
    let now = state.now();
    // web-socket-api.md: every param but the signature, sorted by name.
    let checked = state.check_signed(&borrowed, now, || {
        let mut sorted: Vec<&(&str, &str)> =
            borrowed.iter().filter(|(k, _)| *k != "signature").collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    if let Err(answer) = checked {
        return failure(answer);
    }
    let subscription_id = state.next_subscription_id;
    state.next_subscription_id += 1;
    state.subscribers.push(Subscriber {
        connection,
        subscription_id,
        tx: tx.clone(),
    });
    json!({
        "id": id,
        "status": 200,
        "result": { "subscriptionId": subscription_id },
        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": state.weight}],
    })
    .to_string()
}
