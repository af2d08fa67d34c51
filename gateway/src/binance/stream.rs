//! The user data stream over the WebSocket API, on its own thread.
//!
//! Binance retired the spot `listenKey` endpoints (`POST /api/v3/userDataStream`) in favour
//! of subscriptions on the WebSocket API (`wss://ws-api.binance.com:443/ws-api/v3`). With an
//! HMAC key the documented way is `userDataStream.subscribe.signature`: a signed request
//! whose `params` are `apiKey`, `recvWindow`, `timestamp` and `signature` (HMAC-SHA256 over
//! the other params sorted by name: `apiKey=..&recvWindow=..&timestamp=..`). The answer is
//! `{"id":..,"status":200,"result":{"subscriptionId":N}}`, then every account event arrives
//! as `{"subscriptionId":N,"event":{"e":"executionReport",...}}`.
//!
//! The thread connects, subscribes, forwards `executionReport` events to the adapter thread,
//! answers the server's pings (tungstenite queues the pong and sends it on the next read),
//! and on any failure — socket error, close, `eventStreamTerminated`, silence longer than
//! `stream_idle_timeout_ms` — reconnects after a doubling delay. Events missed while down are
//! recovered by the adapter thread, which reconciles its open orders after a reconnect.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::Sender;
use rustls::ClientConfig;
use serde::Deserialize;
use tungstenite::{HandshakeError, Message, WebSocket};

use super::{
    VenueError,
    net::{Endpoint, Stream, is_timeout},
    rest::RestClient,
    sign::Signer,
};

/// How often a blocked read wakes up to look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// What the stream thread tells the adapter thread.
#[derive(Debug)]
pub(crate) enum StreamMsg {
    /// Subscribed; `first` is false after a reconnect.
    Up {
        /// First subscription since the adapter started.
        first: bool,
    },
    /// The subscription was lost.
    Down {
        /// Why.
        reason: String,
    },
    /// Binance refused the subscription (bad key or signature, clock, rate limit).
    Refused(VenueError),
    /// An order update.
    Report(Box<ExecutionReport>),
}

/// An `executionReport` event (user-data-stream.md, "Order Update"); only the fields the
/// adapter uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ExecutionReport {
    /// Event time, ms.
    #[serde(rename = "E")]
    pub(crate) event_time: u64,
    /// Symbol.
    #[serde(rename = "s")]
    pub(crate) symbol: String,
    /// Client order id (for cancels: the cancel request's id).
    #[serde(rename = "c")]
    pub(crate) client_id: String,
    /// Original client order id (set on cancels).
    #[serde(rename = "C", default)]
    pub(crate) orig_client_id: Option<String>,
    /// Execution type: NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED,
    /// TRADE_PREVENTION.
    #[serde(rename = "x")]
    pub(crate) exec_type: String,
    /// Order status.
    #[serde(rename = "X")]
    pub(crate) status: String,
    /// Reject reason.
    #[serde(rename = "r", default)]
    pub(crate) reject_reason: Option<String>,
    /// Venue order id.
    #[serde(rename = "i")]
    pub(crate) order_id: u64,
    /// Last executed quantity.
    #[serde(rename = "l")]
    pub(crate) last_qty: String,
    /// Cumulative filled quantity.
    #[serde(rename = "z")]
    pub(crate) cum_qty: String,
    /// Last executed price.
    #[serde(rename = "L")]
    pub(crate) last_price: String,
    /// Commission of this execution.
    #[serde(rename = "n", default)]
    pub(crate) commission: Option<String>,
    /// Commission asset (null when none).
    #[serde(rename = "N", default)]
    pub(crate) commission_asset: Option<String>,
    /// Transaction time, ms.
    #[serde(rename = "T", default)]
    pub(crate) transaction_time: u64,
    /// Trade id (-1 when not a trade).
    #[serde(rename = "t", default)]
    pub(crate) trade_id: i64,
    /// Maker side of the trade.
    #[serde(rename = "m", default)]
    pub(crate) maker: bool,
}

impl ExecutionReport {
    /// The client order id of the order itself.
    pub(crate) fn order_client_id(&self) -> &str {
        match &self.orig_client_id {
            Some(id) if !id.is_empty() => id,
            _ => &self.client_id,
        }
    }
}

/// What the stream thread needs.
pub(crate) struct StreamSetup {
    pub(crate) url: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) recv_window_ms: u32,
    pub(crate) api_key: zeroize::Zeroizing<String>,
    pub(crate) signer: Signer,
    /// Server clock minus local clock, kept up to date by the REST client.
    pub(crate) offset_ms: Arc<AtomicI64>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) tx: Sender<StreamMsg>,
}

enum End {
    Stopped,
    Failed {
        subscribed: bool,
        reason: String,
        /// A delay the server asked for (429 on subscribe).
        wait: Option<Duration>,
    },
}

/// The thread's body: connect, subscribe, read; reconnect until stopped.
pub(crate) fn run(setup: StreamSetup) {
    let mut delay = setup.reconnect_min;
    let mut first = true;
    let mut request_id = 0u64;
    while !setup.stop.load(Ordering::Acquire) {
        request_id += 1;
        match session(&setup, first, request_id) {
            End::Stopped => break,
            End::Failed {
                subscribed,
                reason,
                wait,
            } => {
                if subscribed {
                    first = false;
                    delay = setup.reconnect_min;
                    let _ = setup.tx.send(StreamMsg::Down {
                        reason: reason.clone(),
                    });
                }
                tracing::warn!(
                    %reason,
                    delay_ms = delay.as_millis() as u64,
                    "binance user data stream down; reconnecting",
                );
                sleep_unless_stopped(wait.map_or(delay, |w| w.max(delay)), &setup.stop);
                delay = (delay * 2).min(setup.reconnect_max);
            }
        }
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

fn failed(reason: String) -> End {
    End::Failed {
        subscribed: false,
        reason,
        wait: None,
    }
}

fn session(setup: &StreamSetup, first: bool, request_id: u64) -> End {
    let stream = match Stream::connect(
        &setup.endpoint,
        &setup.tls,
        setup.connect_timeout,
        setup.io_timeout,
    ) {
        Ok(stream) => stream,
        Err(e) => return failed(format!("connect: {e}")),
    };
    let mut ws = match handshake(setup, stream) {
        Ok(ws) => ws,
        Err(reason) => return failed(reason),
    };
    let id = format!("aaiti-uds-{request_id}");
    if let Err(e) = ws.send(Message::text(subscribe_request(setup, &id))) {
        return failed(format!("sending the subscription: {e}"));
    }
    if let Err(e) = ws.get_ref().set_read_timeout(POLL) {
        return failed(format!("socket: {e}"));
    }
    // Wait for the answer to our request; events cannot come before it.
    let deadline = Instant::now() + setup.io_timeout;
    loop {
        if setup.stop.load(Ordering::Acquire) {
            close(&mut ws);
            return End::Stopped;
        }
        if Instant::now() > deadline {
            return failed("no answer to the subscription".into());
        }
        match ws.read() {
            Ok(Message::Text(text)) => match subscription_answer(text.as_str(), &id) {
                None => {}
                Some(Ok(())) => break,
                Some(Err((error, wait))) => {
                    tracing::warn!(
                        status = error.http_status,
                        code = error.code,
                        message = %error.message,
                        "binance refused the user data stream subscription",
                    );
                    let reason = error.to_string();
                    let _ = setup.tx.send(StreamMsg::Refused(error));
                    close(&mut ws);
                    return End::Failed {
                        subscribed: false,
                        reason,
                        wait,
                    };
                }
            },
            Ok(Message::Close(_)) => return failed("closed during the subscription".into()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {}
            Err(e) => return failed(format!("reading the subscription answer: {e}")),
        }
    }
    let _ = setup.tx.send(StreamMsg::Up { first });
    tracing::info!("binance user data stream subscribed");
    let mut last_rx = Instant::now();
    loop {
        if setup.stop.load(Ordering::Acquire) {
            close(&mut ws);
            return End::Stopped;
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                last_rx = Instant::now();
                match event(text.as_str()) {
                    Event::Report(report) => {
                        if setup.tx.send(StreamMsg::Report(report)).is_err() {
                            close(&mut ws);
                            return End::Stopped;
                        }
                    }
                    Event::Terminated => {
                        close(&mut ws);
                        return subscribed_end("the server ended the subscription".into());
                    }
                    Event::Other => {}
                }
            }
            Ok(Message::Close(frame)) => {
                return subscribed_end(format!("closed by the server: {frame:?}"));
            }
            Ok(_) => last_rx = Instant::now(),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => {
                if last_rx.elapsed() > setup.idle_timeout {
                    close(&mut ws);
                    return subscribed_end("no traffic within stream_idle_timeout_ms".into());
                }
            }
            Err(e) => return subscribed_end(format!("read: {e}")),
        }
    }
}

fn subscribed_end(reason: String) -> End {
    End::Failed {
        subscribed: true,
        reason,
        wait: None,
    }
}

fn close(ws: &mut WebSocket<Stream>) {
    // Best effort: the peer may already be gone.
    let _ = ws.close(None);
    let _ = ws.flush();
    ws.get_ref().shutdown();
}

fn handshake(setup: &StreamSetup, stream: Stream) -> Result<WebSocket<Stream>, String> {
    let deadline = Instant::now() + setup.io_timeout;
    let mut attempt = tungstenite::client::client(setup.url.as_str(), stream);
    loop {
        match attempt {
            Ok((ws, _response)) => return Ok(ws),
            Err(HandshakeError::Interrupted(mid)) => {
                if Instant::now() > deadline || setup.stop.load(Ordering::Acquire) {
                    return Err("WebSocket handshake timed out".into());
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(format!("WebSocket handshake: {e}")),
        }
    }
}

/// The signed `userDataStream.subscribe.signature` request.
fn subscribe_request(setup: &StreamSetup, id: &str) -> String {
    let timestamp = RestClient::local_ms().saturating_add(setup.offset_ms.load(Ordering::Acquire));
    // Sorted by name, as the WebSocket API signs: apiKey < recvWindow < timestamp.
    let payload = format!(
        "apiKey={}&recvWindow={}&timestamp={timestamp}",
        setup.api_key.as_str(),
        setup.recv_window_ms
    );
    let signature = setup.signer.sign(payload.as_bytes());
    serde_json::json!({
        "id": id,
        "method": "userDataStream.subscribe.signature",
        "params": {
            "apiKey": setup.api_key.as_str(),
            "recvWindow": setup.recv_window_ms,
            "timestamp": timestamp,
            "signature": signature,
        }
    })
    .to_string()
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Option<AnswerErrorData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerErrorData {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    server_time: Option<u64>,
}

type Refusal = (VenueError, Option<Duration>);

/// `None` if the frame is not the answer to `id`.
fn subscription_answer(text: &str, id: &str) -> Option<Result<(), Refusal>> {
    let answer: Answer = serde_json::from_str(text).ok()?;
    if answer.id.as_ref().and_then(|v| v.as_str()) != Some(id) {
        return None;
    }
    let status = answer.status.unwrap_or(0);
    if status == 200 {
        return Some(Ok(()));
    }
    let (code, message, wait) = match answer.error {
        Some(error) => {
            // `retryAfter` is an epoch time in ms (web-socket-api.md, "IP limits").
            let wait = error.data.and_then(|d| {
                let retry = d.retry_after?;
                let now = d
                    .server_time
                    .unwrap_or(RestClient::local_ms().max(0) as u64);
                Some(Duration::from_millis(retry.saturating_sub(now)))
            });
            (error.code, error.msg, wait)
        }
        None => (0, "subscription refused".to_owned(), None),
    };
    Some(Err((
        VenueError {
            http_status: status,
            code,
            message,
        },
        wait,
    )))
}

enum Event {
    Report(Box<ExecutionReport>),
    Terminated,
    Other,
}

fn event(text: &str) -> Event {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        event: Option<serde_json::Value>,
    }
    let Ok(Envelope { event: Some(event) }) = serde_json::from_str::<Envelope>(text) else {
        return Event::Other;
    };
    match event.get("e").and_then(|e| e.as_str()) {
        Some("executionReport") => match serde_json::from_value::<ExecutionReport>(event) {
            Ok(report) => Event::Report(Box::new(report)),
            Err(e) => {
                tracing::warn!(error = %e, "binance: undecodable executionReport ignored");
                Event::Other
            }
        },
        Some("eventStreamTerminated") => Event::Terminated,
        _ => Event::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_execution_report() {
        let text = r#"{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,"V":"NONE"}}"#;
        let Event::Report(report) = event(text) else {
            panic!("not a report");
        };
        assert_eq!(report.symbol, "ETHBTC");
        assert_eq!(report.order_client_id(), "mUvoqJxFIILMdfAW5iGSOW");
        assert_eq!(report.exec_type, "NEW");
        assert_eq!(report.order_id, 4_293_153);
        assert_eq!(report.trade_id, -1);
        assert_eq!(report.commission_asset, None);
        assert!(matches!(
            event(r#"{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1}}"#),
            Event::Other
        ));
        assert!(matches!(
            event(r#"{"event":{"e":"eventStreamTerminated","E":1}}"#),
            Event::Terminated
        ));
    }

    #[test]
    fn reads_subscription_answers() {
        assert!(
            subscription_answer(
                r#"{"id":"a","status":200,"result":{"subscriptionId":0}}"#,
                "a"
            )
            .is_some_and(|r| r.is_ok())
        );
        assert!(subscription_answer(r#"{"id":"b","status":200,"result":{}}"#, "a").is_none());
        let Some(Err((error, wait))) = subscription_answer(
            r#"{"id":"a","status":429,"error":{"code":-1003,"msg":"Too many","data":{"serverTime":1000,"retryAfter":3000}}}"#,
            "a",
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!((error.http_status, error.code), (429, -1003));
        assert_eq!(wait, Some(Duration::from_millis(2000)));
    }
}
