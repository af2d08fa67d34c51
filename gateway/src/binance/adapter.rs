//! The adapter thread, its handle, and the order bookkeeping that turns Binance's answers
//! and stream events into exactly one event per change of an order.
//!
//! # Threads
//!
//! * `binance` (the adapter thread) owns every order's state, the REST client (one
//!   keep-alive connection) and the rate-limit accounting. It waits on three channels: the
//!   bounded request queue fed by [`BinanceHandle::submit`], control messages (reconcile,
//!   shutdown), and the user data stream's messages. REST calls block this thread only.
//! * `binance-user` runs the user data stream ([`super::stream`]) and forwards parsed
//!   `executionReport`s.
//!
//! # One event per change
//!
//! A change can be seen up to three times: in the REST answer (a `FULL` new-order answer
//! lists its immediate fills; a cancel answer says `CANCELED`), on the user data stream, and
//! in a later query or trade list. Each tracked order remembers whether `Accepted` went out,
//! its filled quantity and the trade ids already reported, and reaches one final event
//! (`Rejected`, `Canceled`, `Expired`, or the fill that leaves nothing open). Fills are
//! reported by trade id; when the stream shows a cumulative quantity beyond what the adapter
//! has seen (a missed event), or an answer reports more executed than seen, the missing
//! trades are read with `GET /api/v3/myTrades` and reported in trade-id order before the
//! event that revealed them.
//!
//! # Unknown outcomes
//!
//! A new order whose request may have reached Binance without a usable answer (timeout after
//! sending, HTTP 5xx, undecodable success) is not rejected: its fate is unknown, so it is
//! queried by client order id right away and then every second until Binance says what
//! happened (`-2013` "Order does not exist" → `Rejected`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use aaiti_model::{
    ClientOrderId, Instrument, InstrumentId, OrderId, OrderType, Price, Qty, RejectReason, Scale,
    Side, TimeInForce, UnixNanos, fixed::ASCII_BUF_LEN, parse_fixed, write_fixed,
};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, select, unbounded};

use super::{
    AdapterEvent, AssetCode, BinanceConfig, BinanceError, BinanceRequest, COMMISSION_SCALE,
    CancelOrder, Commission, FailedRequest, KnownOrder, NewOrder, OrderReport, OrderStatus,
    Reconciliation, ReportSource, StreamState, VenueError, VenueOrderStatus,
    config::is_client_id_byte,
    error::{cancel_reason, new_order_reason},
    http::HttpClient,
    net::{self, Endpoint},
    rest::{FillJson, Limits, OrderJson, RestClient, RestError},
    sign::{Params, Signer},
    stream::{self, ExecutionReport, StreamMsg, StreamSetup},
};
use crate::{
    paper::{Liquidity, VenueEvent, VenueEventKind},
    secrets::Credentials,
};

/// How often unresolved orders are queried again, and the loop's idle wake-up.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// Starts the Binance adapter.
#[derive(Debug, Clone, Copy)]
pub struct BinanceAdapter;

impl BinanceAdapter {
    /// Validates the configuration and instruments, starts the adapter and user-stream
    /// threads, and returns the handle and the event channel.
    ///
    /// Nothing is sent to Binance before this returns: the clock sync and the stream
    /// subscription happen on the threads ([`StreamState::Connected`] tells when fills will
    /// flow). `instruments` are the engine's instruments traded on Binance; their symbols
    /// must be Binance's (`BTCUSDT`) and their scales must hold every price and quantity
    /// Binance reports for them (tick and step sizes).
    pub fn spawn(
        config: BinanceConfig,
        credentials: Credentials,
        instruments: &[Instrument],
    ) -> Result<(BinanceHandle, Receiver<AdapterEvent>), BinanceError> {
        config.validate()?;
        let rest_endpoint = Endpoint::parse("rest_url", &config.rest_url, true)?;
        let ws_endpoint = Endpoint::parse("ws_api_url", &config.ws_api_url, false)?;
        let tls = net::tls_config(&config.extra_root_pem)?;
        let table = instrument_table(instruments)?;

        let (events_tx, events_rx) = unbounded();
        let (requests_tx, requests_rx) = bounded(config.request_queue);
        let (control_tx, control_rx) = bounded(16);
        let (stream_tx, stream_rx) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let offset = Arc::new(AtomicI64::new(0));
        let signer = Signer::new(&credentials);
        let connect_timeout = Duration::from_millis(u64::from(config.connect_timeout_ms));
        let io_timeout = Duration::from_millis(u64::from(config.io_timeout_ms));

        let setup = StreamSetup {
            url: config.ws_api_url.clone(),
            endpoint: ws_endpoint,
            tls: Arc::clone(&tls),
            connect_timeout,
            io_timeout,
            idle_timeout: Duration::from_millis(config.stream_idle_timeout_ms),
            reconnect_min: Duration::from_millis(config.reconnect_min_ms),
            reconnect_max: Duration::from_millis(config.reconnect_max_ms),
            recv_window_ms: config.recv_window_ms,
            api_key: zeroize::Zeroizing::new(credentials.api_key().to_owned()),
            signer: signer.clone(),
            offset_ms: Arc::clone(&offset),
            stop: Arc::clone(&stop),
            tx: stream_tx,
        };
        let stream_thread = std::thread::Builder::new()
            .name("binance-user".into())
            .spawn(move || stream::run(setup))
            .map_err(|e| BinanceError::Spawn(e.to_string()))?;

        let rest = RestClient::new(
            HttpClient::new(rest_endpoint, tls, connect_timeout, io_timeout),
            signer,
            credentials.api_key(),
            config.recv_window_ms,
            config.sync_time,
            Limits::new(
                config.max_weight_1m,
                config.max_orders_10s,
                config.max_orders_1d,
                Duration::from_millis(config.default_backoff_ms),
            ),
            Arc::clone(&offset),
        );
        drop(credentials);
        let by_symbol = table
            .iter()
            .enumerate()
            .map(|(index, inst)| (inst.symbol.clone(), index))
            .collect();
        let by_id = table
            .iter()
            .enumerate()
            .map(|(index, inst)| (inst.id, index))
            .collect();
        let worker = Worker {
            rest,
            sync_time: config.sync_time,
            prefix: config.client_id_prefix.clone(),
            instruments: table,
            by_id,
            by_symbol,
            orders: HashMap::new(),
            done: VecDeque::new(),
            done_index: HashMap::new(),
            done_cap: config.done_orders_kept,
            recheck: Vec::new(),
            next_recheck: Instant::now() + RECHECK_EVERY,
            uncertain_grace: Duration::from_millis(u64::from(config.recv_window_ms) + 1000),
            events: events_tx.clone(),
            emitted: 0,
            stop: Arc::clone(&stop),
        };
        let worker_thread = std::thread::Builder::new()
            .name("binance".into())
            .spawn(move || worker.run(&requests_rx, &control_rx, &stream_rx));
        let worker_thread = match worker_thread {
            Ok(thread) => thread,
            Err(e) => {
                stop.store(true, Ordering::Release);
                let _ = stream_thread.join();
                return Err(BinanceError::Spawn(e.to_string()));
            }
        };
        Ok((
            BinanceHandle {
                requests: requests_tx,
                control: control_tx,
                events: events_tx,
                stop,
                threads: vec![worker_thread, stream_thread],
            },
            events_rx,
        ))
    }
}

/// Messages outside the request queue.
enum Control {
    Reconcile {
        known: Vec<KnownOrder>,
        reply: Sender<Reconciliation>,
    },
    Shutdown,
}

/// The engine's side of the adapter. Dropping it stops the threads (without waiting for
/// them; [`BinanceHandle::shutdown`] waits).
pub struct BinanceHandle {
    requests: Sender<BinanceRequest>,
    control: Sender<Control>,
    events: Sender<AdapterEvent>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for BinanceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceHandle")
            .field("queued", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl BinanceHandle {
    /// Queues a request without blocking. When the queue is full (or the adapter has
    /// stopped) the request is answered at once on the event channel — `Rejected`
    /// (`RateLimited`; `VenueDisabled` if stopped) for a new order, `CancelRejected` for a
    /// cancel, `RequestFailed` otherwise — and false is returned.
    pub fn submit(&self, request: BinanceRequest) -> bool {
        let (request, reason, message) = match self.requests.try_send(request) {
            Ok(()) => return true,
            Err(TrySendError::Full(request)) => (
                request,
                RejectReason::RateLimited,
                "the Binance request queue is full",
            ),
            Err(TrySendError::Disconnected(request)) => (
                request,
                RejectReason::VenueDisabled,
                "the Binance adapter has stopped",
            ),
        };
        tracing::warn!(?request, message, "binance: request refused");
        let error = VenueError {
            http_status: 0,
            code: 0,
            message: message.to_owned(),
        };
        let event = match request {
            BinanceRequest::New(order) => AdapterEvent::Order(local_report(
                order.order_id,
                order.instrument,
                order.client_order_id,
                VenueEventKind::Rejected { reason },
                error,
            )),
            BinanceRequest::Cancel(cancel) => AdapterEvent::Order(local_report(
                cancel.order_id,
                cancel.instrument,
                cancel.client_order_id,
                VenueEventKind::CancelRejected { reason },
                error,
            )),
            BinanceRequest::Query(order_id) => AdapterEvent::RequestFailed {
                request: FailedRequest::Query(order_id),
                error,
            },
            BinanceRequest::OpenOrders(instrument) => AdapterEvent::RequestFailed {
                request: FailedRequest::OpenOrders(instrument),
                error,
            },
        };
        // The receiver may be gone at shutdown; nothing to tell then.
        let _ = self.events.send(event);
        false
    }

    /// Reconciles after a restart: registers `known` (the orders the engine believes open),
    /// lists the open orders of every instrument, queries the known orders Binance no
    /// longer lists, and reports on the event channel what happened to them meanwhile
    /// (missed fills, cancels, expiries) before returning the summary. Blocks the caller
    /// (start-up only) up to `timeout`.
    pub fn reconcile(
        &self,
        known: Vec<KnownOrder>,
        timeout: Duration,
    ) -> Result<Reconciliation, BinanceError> {
        let (reply, answer) = bounded(1);
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.control
            .send_timeout(Control::Reconcile { known, reply }, timeout)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(_) => {
                    BinanceError::Timeout(timeout_ms)
                }
                crossbeam_channel::SendTimeoutError::Disconnected(_) => BinanceError::Stopped,
            })?;
        answer.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => BinanceError::Timeout(timeout_ms),
            crossbeam_channel::RecvTimeoutError::Disconnected => BinanceError::Stopped,
        })
    }

    /// Stops both threads and waits for them (at most about one I/O timeout).
    pub fn shutdown(mut self) {
        self.signal_stop();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    fn signal_stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.control.try_send(Control::Shutdown);
    }
}

impl Drop for BinanceHandle {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn now_nanos() -> UnixNanos {
    UnixNanos::from_system_time(SystemTime::now())
}

fn local_report(
    order_id: OrderId,
    instrument: InstrumentId,
    client_order_id: ClientOrderId,
    kind: VenueEventKind,
    error: VenueError,
) -> OrderReport {
    OrderReport {
        event: VenueEvent {
            ts: now_nanos(),
            order_id,
            kind,
        },
        instrument,
        client_order_id,
        venue_order_id: 0,
        source: ReportSource::Local,
        commission: None,
        error: Some(error),
    }
}

/// An instrument as the adapter needs it.
#[derive(Debug, Clone)]
struct Inst {
    id: InstrumentId,
    symbol: String,
    quote: String,
    price_scale: Scale,
    qty_scale: Scale,
}

fn instrument_table(instruments: &[Instrument]) -> Result<Vec<Inst>, BinanceError> {
    let mut table: Vec<Inst> = Vec::with_capacity(instruments.len());
    for instrument in instruments {
        let bad = |reason| BinanceError::Instrument {
            id: instrument.id,
            symbol: instrument.symbol.clone(),
            reason,
        };
        let symbol = instrument.symbol.as_bytes();
        if symbol.is_empty()
            || symbol.len() > 20
            || !symbol
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(bad("a Binance symbol is 1..=20 characters of A-Z 0-9"));
        }
        if table
            .iter()
            .any(|i| i.id == instrument.id || i.symbol == instrument.symbol)
        {
            return Err(bad("listed twice"));
        }
        table.push(Inst {
            id: instrument.id,
            symbol: instrument.symbol.clone(),
            quote: instrument.quote.clone(),
            price_scale: instrument.price_scale,
            qty_scale: instrument.qty_scale,
        });
    }
    Ok(table)
}

/// One order the adapter follows.
#[derive(Debug, Clone)]
struct Tracked {
    order_id: OrderId,
    client_order_id: ClientOrderId,
    inst: usize,
    order_type: OrderType,
    tif: TimeInForce,
    qty: Qty,
    /// Filled so far, as reported to the engine.
    cum: Qty,
    /// Part of `cum` not matched to trade ids yet (orders registered by reconciliation with
    /// fills seen before a restart): the first trades, in id order, up to this quantity
    /// are taken as already reported.
    unattributed: Qty,
    venue_order_id: u64,
    accepted: bool,
    trades: Vec<u64>,
    /// When this process sent the order (`None`: registered by reconciliation).
    sent_at: Option<Instant>,
}

/// A fill to report, from any source.
struct FillData<'a> {
    trade_id: u64,
    price: &'a str,
    qty: &'a str,
    commission: Option<&'a str>,
    commission_asset: Option<&'a str>,
    maker: bool,
    ts: UnixNanos,
    /// From a trade list that also holds trades reported before a restart (see
    /// `Tracked::unattributed`); false for fills known to be new.
    listed: bool,
}

struct Worker {
    rest: RestClient,
    sync_time: bool,
    prefix: String,
    instruments: Vec<Inst>,
    by_id: HashMap<InstrumentId, usize>,
    by_symbol: HashMap<String, usize>,
    orders: HashMap<OrderId, Tracked>,
    /// Finished orders, oldest first, with their instrument, for late events and cancels.
    done: VecDeque<OrderId>,
    done_index: HashMap<OrderId, (usize, ClientOrderId, u64)>,
    done_cap: usize,
    /// Orders whose state must be read again (unknown outcome, trades not yet fetched).
    recheck: Vec<OrderId>,
    next_recheck: Instant,
    /// How long after sending a "does not exist" answer is not yet final: Binance refuses a
    /// request once its timestamp is older than the recvWindow, so after recvWindow (plus
    /// the 1 s it tolerates ahead) an order it does not know will never exist.
    uncertain_grace: Duration,
    events: Sender<AdapterEvent>,
    /// Order events sent (for reconciliation summaries).
    emitted: usize,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(
        mut self,
        requests: &Receiver<BinanceRequest>,
        control: &Receiver<Control>,
        stream: &Receiver<StreamMsg>,
    ) {
        if self.sync_time {
            match self.rest.sync_time() {
                Ok(offset) => tracing::info!(offset_ms = offset, "binance: server clock offset"),
                Err(e) => {
                    tracing::warn!(
                        error = %e.to_venue_error(),
                        "binance: clock sync failed; using the local clock",
                    );
                }
            }
        }
        loop {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            select! {
                recv(control) -> message => match message {
                    Ok(Control::Reconcile { known, reply }) => {
                        let summary = self.reconcile(known);
                        let _ = reply.send(summary);
                    }
                    Ok(Control::Shutdown) | Err(_) => break,
                },
                recv(stream) -> message => match message {
                    Ok(message) => self.on_stream(message),
                    // The stream thread only ends when stopping.
                    Err(_) => break,
                },
                recv(requests) -> message => match message {
                    Ok(request) => self.on_request(request),
                    Err(_) => break,
                },
                default(RECHECK_EVERY) => {}
            }
            if Instant::now() >= self.next_recheck {
                self.next_recheck = Instant::now() + RECHECK_EVERY;
                self.recheck_pending();
            }
        }
        self.stop.store(true, Ordering::Release);
    }

    // -----------------------------------------------------------------------------------
    // Ids and emission
    // -----------------------------------------------------------------------------------

    fn venue_client_id(&self, order_id: OrderId) -> String {
        format!("{}{}", self.prefix, order_id.0)
    }

    /// Our order id from a Binance client order id, if it is one of ours.
    fn our_order_id(&self, client_id: &str) -> Option<OrderId> {
        let digits = client_id.strip_prefix(self.prefix.as_str())?;
        let id: u64 = digits.parse().ok()?;
        // Exactly the canonical text: no sign, no leading zeros.
        (id != 0 && id.to_string() == digits).then_some(OrderId(id))
    }

    fn emit(
        &mut self,
        t: &Tracked,
        ts: UnixNanos,
        kind: VenueEventKind,
        source: ReportSource,
        commission: Option<Commission>,
        error: Option<VenueError>,
    ) {
        self.emitted += 1;
        let report = OrderReport {
            event: VenueEvent {
                ts,
                order_id: t.order_id,
                kind,
            },
            instrument: self.instruments[t.inst].id,
            client_order_id: t.client_order_id,
            venue_order_id: t.venue_order_id,
            source,
            commission,
            error,
        };
        let _ = self.events.send(AdapterEvent::Order(report));
    }

    fn keep(&mut self, t: Tracked) {
        self.orders.insert(t.order_id, t);
    }

    fn finish(&mut self, t: Tracked) {
        if self.done.len() >= self.done_cap
            && let Some(oldest) = self.done.pop_front()
        {
            self.done_index.remove(&oldest);
        }
        self.done.push_back(t.order_id);
        self.done_index
            .insert(t.order_id, (t.inst, t.client_order_id, t.venue_order_id));
    }

    fn leaves(t: &Tracked) -> Qty {
        Qty((t.qty.0 - t.cum.0).max(0))
    }

    // -----------------------------------------------------------------------------------
    // Requests
    // -----------------------------------------------------------------------------------

    fn on_request(&mut self, request: BinanceRequest) {
        match request {
            BinanceRequest::New(order) => self.new_order(&order),
            BinanceRequest::Cancel(cancel) => self.cancel(&cancel),
            BinanceRequest::Query(order_id) => self.query(order_id),
            BinanceRequest::OpenOrders(instrument) => self.open_orders(instrument),
        }
    }

    fn reject_new(&mut self, order: &NewOrder, reason: RejectReason, message: &str) {
        tracing::info!(
            order_id = order.order_id.0,
            ?reason,
            message,
            "binance: order refused locally"
        );
        let _ = self.events.send(AdapterEvent::Order(local_report(
            order.order_id,
            order.instrument,
            order.client_order_id,
            VenueEventKind::Rejected { reason },
            VenueError {
                http_status: 0,
                code: 0,
                message: message.to_owned(),
            },
        )));
        self.emitted += 1;
    }

    fn new_order(&mut self, order: &NewOrder) {
        let Some(&inst) = self.by_id.get(&order.instrument) else {
            return self.reject_new(
                order,
                RejectReason::UnknownInstrument,
                "instrument not configured for Binance",
            );
        };
        if order.order_id.0 == 0 {
            return self.reject_new(order, RejectReason::VenueReject, "order id 0");
        }
        if self.orders.contains_key(&order.order_id)
            || self.done_index.contains_key(&order.order_id)
        {
            return self.reject_new(
                order,
                RejectReason::DuplicateClientOrderId,
                "order id already used",
            );
        }
        let client_id = self.venue_client_id(order.order_id);
        let params = match order_params(order, &self.instruments[inst], &client_id) {
            Ok(params) => params,
            Err((reason, message)) => return self.reject_new(order, reason, message),
        };
        let t = Tracked {
            order_id: order.order_id,
            client_order_id: order.client_order_id,
            inst,
            order_type: order.order_type,
            tif: order.tif,
            qty: order.qty,
            cum: Qty(0),
            unattributed: Qty(0),
            venue_order_id: 0,
            accepted: false,
            trades: Vec::new(),
            sent_at: Some(Instant::now()),
        };
        // Tracked before sending: stream events may be processed before the answer when
        // the answer is lost.
        match self.rest.new_order(&params) {
            Ok(answer) => self.on_new_order_answer(t, &answer),
            Err(e) if e.outcome_unknown() => {
                tracing::warn!(
                    order_id = order.order_id.0,
                    error = %e.to_venue_error(),
                    "binance: new order outcome unknown; querying",
                );
                self.resolve(t, ReportSource::Rest);
            }
            Err(e) => {
                let error = e.to_venue_error();
                let reason = match &e {
                    RestError::Refused(_) => RejectReason::RateLimited,
                    RestError::Venue(v) => new_order_reason(v.http_status, v.code, &v.message),
                    RestError::Transport { .. } | RestError::Decode(_) => RejectReason::VenueReject,
                };
                tracing::warn!(
                    order_id = order.order_id.0,
                    ?reason,
                    status = error.http_status,
                    code = error.code,
                    message = %error.message,
                    "binance: order rejected",
                );
                self.emit(
                    &t,
                    now_nanos(),
                    VenueEventKind::Rejected { reason },
                    if matches!(e, RestError::Refused(_)) {
                        ReportSource::Local
                    } else {
                        ReportSource::Rest
                    },
                    None,
                    Some(error),
                );
                self.finish(t);
            }
        }
    }

    fn on_new_order_answer(&mut self, mut t: Tracked, answer: &OrderJson) {
        t.venue_order_id = answer.order_id;
        let ts = answer
            .time_ms()
            .map_or_else(now_nanos, UnixNanos::from_millis);
        let status = VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or("NEW"));
        let executed = self.executed(&t, answer);
        if !self.accept_or_reject(&mut t, status, executed, ts, ReportSource::Rest, None) {
            return;
        }
        // Immediate fills of a FULL answer: the incoming order took liquidity.
        let mut fills: Vec<&FillJson> = answer.fills.iter().collect();
        fills.sort_by_key(|f| f.trade_id);
        for fill in fills {
            self.apply_fill(
                &mut t,
                &FillData {
                    trade_id: fill.trade_id,
                    price: &fill.price,
                    qty: &fill.qty,
                    commission: Some(&fill.commission),
                    commission_asset: Some(&fill.commission_asset),
                    maker: false,
                    ts,
                    listed: false,
                },
                ReportSource::Rest,
            );
        }
        self.settle(t, status, executed, ts, ReportSource::Rest, None);
    }

    /// The executed quantity of an answer, at the instrument's scale (what the adapter has
    /// seen when it does not parse: a configuration error, logged).
    fn executed(&self, t: &Tracked, answer: &OrderJson) -> Qty {
        let text = answer.executed_qty.as_deref().unwrap_or("0");
        match Qty::parse(text.as_bytes(), self.instruments[t.inst].qty_scale) {
            Ok(qty) => qty,
            Err(e) => {
                tracing::error!(
                    order_id = t.order_id.0,
                    text,
                    error = %e,
                    "binance: executed quantity does not fit the instrument's quantity scale",
                );
                t.cum
            }
        }
    }

    /// Emits `Accepted` the first time an order is seen working, or `Rejected` when Binance
    /// ended it without it ever trading in a way the engine treats as a refusal (a FOK that
    /// could not fill, a market order finding nothing, `REJECTED`). False if the order is
    /// finished.
    fn accept_or_reject(
        &mut self,
        t: &mut Tracked,
        status: VenueOrderStatus,
        executed: Qty,
        ts: UnixNanos,
        source: ReportSource,
        error: Option<VenueError>,
    ) -> bool {
        if t.accepted {
            return true;
        }
        let unfilled_end = status.is_final() && executed.0 == 0 && t.cum.0 == 0;
        let refusal = if !unfilled_end {
            None
        } else if status == VenueOrderStatus::Rejected {
            Some(RejectReason::VenueReject)
        } else if t.order_type == OrderType::Market {
            Some(RejectReason::NoLiquidity)
        } else if t.tif == TimeInForce::Fok {
            Some(RejectReason::FillOrKillUnfilled)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.emit(
                t,
                ts,
                VenueEventKind::Rejected { reason },
                source,
                None,
                error,
            );
            let finished = t.clone();
            self.finish(finished);
            return false;
        }
        t.accepted = true;
        self.emit(t, ts, VenueEventKind::Accepted, source, None, None);
        true
    }

    /// Reports one fill unless its trade id was reported already.
    fn apply_fill(&mut self, t: &mut Tracked, fill: &FillData<'_>, source: ReportSource) {
        if t.trades.contains(&fill.trade_id) {
            return;
        }
        let inst = &self.instruments[t.inst];
        let (Ok(price), Ok(qty)) = (
            Price::parse(fill.price.as_bytes(), inst.price_scale),
            Qty::parse(fill.qty.as_bytes(), inst.qty_scale),
        ) else {
            tracing::error!(
                order_id = t.order_id.0,
                trade_id = fill.trade_id,
                price = fill.price,
                qty = fill.qty,
                "binance: fill does not fit the instrument's scales; not reported"
            );
            return;
        };
        t.trades.push(fill.trade_id);
        if fill.listed && t.unattributed.0 > 0 {
            // Reported before a restart (counted in the engine's cum).
            t.unattributed = Qty((t.unattributed.0 - qty.0).max(0));
            return;
        }
        t.cum = Qty(t.cum.0.saturating_add(qty.0));
        if t.cum.0 > t.qty.0 {
            tracing::error!(
                order_id = t.order_id.0,
                cum = t.cum.0,
                qty = t.qty.0,
                "binance: fills exceed the order quantity"
            );
        }
        let commission_text = fill.commission.unwrap_or("0");
        let asset = fill.commission_asset.filter(|a| !a.is_empty());
        let fee = match asset {
            Some(asset) if asset == inst.quote => parse_ceil(commission_text, inst.price_scale)
                .unwrap_or_else(|| {
                    tracing::error!(
                        order_id = t.order_id.0,
                        commission = commission_text,
                        "binance: commission does not parse"
                    );
                    0
                }),
            _ => 0,
        };
        let commission = Commission {
            asset: asset.and_then(AssetCode::new),
            amount: parse_ceil(commission_text, COMMISSION_SCALE).unwrap_or(0),
        };
        let leaves = Self::leaves(t);
        let cum = t.cum;
        self.emit(
            t,
            fill.ts,
            VenueEventKind::Fill {
                exec_id: fill.trade_id,
                price,
                qty,
                liquidity: if fill.maker {
                    Liquidity::Maker
                } else {
                    Liquidity::Taker
                },
                fee,
                leaves,
                cum,
            },
            source,
            Some(commission),
            None,
        );
    }

    /// Reads the order's trades and reports those not reported yet, in id order. False if
    /// they could not be read.
    fn catch_up_trades(&mut self, t: &mut Tracked, source: ReportSource) -> bool {
        if t.venue_order_id == 0 {
            return false;
        }
        let symbol = self.instruments[t.inst].symbol.clone();
        match self.rest.my_trades(&symbol, t.venue_order_id) {
            Ok(mut trades) => {
                trades.sort_by_key(|trade| trade.id);
                let venue_order_id = t.venue_order_id;
                for trade in trades
                    .iter()
                    .filter(|trade| trade.order_id == venue_order_id)
                {
                    self.apply_fill(
                        t,
                        &FillData {
                            trade_id: trade.id,
                            price: &trade.price,
                            qty: &trade.qty,
                            commission: Some(&trade.commission),
                            commission_asset: Some(&trade.commission_asset),
                            maker: trade.is_maker,
                            ts: UnixNanos::from_millis(trade.time),
                            listed: true,
                        },
                        source,
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(
                    order_id = t.order_id.0,
                    error = %e.to_venue_error(),
                    "binance: cannot read the order's trades; will retry",
                );
                false
            }
        }
    }

    /// Brings an order up to a state Binance reported: missed fills first, then the final
    /// event if the order is over. Consumes the order: it stays tracked unless finished.
    fn settle(
        &mut self,
        mut t: Tracked,
        status: VenueOrderStatus,
        executed: Qty,
        ts: UnixNanos,
        source: ReportSource,
        error: Option<VenueError>,
    ) {
        if !self.accept_or_reject(&mut t, status, executed, ts, source, error.clone()) {
            return;
        }
        if executed.0 > t.cum.0 && !self.catch_up_trades(&mut t, source) {
            self.keep_for_recheck(t);
            return;
        }
        if !status.is_final() {
            return self.keep(t);
        }
        if t.cum.0 < executed.0 {
            // The trade list lags the order (Binance's trade list is eventually
            // consistent): ask again before ending the order.
            self.keep_for_recheck(t);
            return;
        }
        let leaves = Self::leaves(&t);
        match status {
            VenueOrderStatus::Filled => {}
            VenueOrderStatus::Canceled => {
                self.emit(
                    &t,
                    ts,
                    VenueEventKind::Canceled { leaves },
                    source,
                    None,
                    None,
                );
            }
            VenueOrderStatus::Expired | VenueOrderStatus::ExpiredInMatch => {
                self.emit(
                    &t,
                    ts,
                    VenueEventKind::Expired { leaves },
                    source,
                    None,
                    None,
                );
            }
            // REJECTED after acceptance: the order is over with its remainder unfilled.
            _ => {
                self.emit(
                    &t,
                    ts,
                    VenueEventKind::Canceled { leaves },
                    source,
                    None,
                    error,
                );
            }
        }
        self.finish(t);
    }

    fn keep_for_recheck(&mut self, t: Tracked) {
        if !self.recheck.contains(&t.order_id) {
            self.recheck.push(t.order_id);
        }
        self.keep(t);
    }

    /// Queries an order whose state is uncertain and settles it; `-2013` for an order never
    /// accepted means Binance never took it, once the request can no longer be executed
    /// (`uncertain_grace` after it was sent).
    fn resolve(&mut self, mut t: Tracked, source: ReportSource) {
        let symbol = self.instruments[t.inst].symbol.clone();
        let client_id = self.venue_client_id(t.order_id);
        match self.rest.query(&symbol, &client_id) {
            Ok(answer) => {
                t.venue_order_id = answer.order_id;
                let status = VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or(""));
                let executed = self.executed(&t, &answer);
                let ts = answer
                    .time_ms()
                    .map_or_else(now_nanos, UnixNanos::from_millis);
                self.settle(t, status, executed, ts, source, None);
            }
            Err(e) if e.code() == -2013 && !t.accepted && t.cum.0 == 0 => {
                if t.sent_at
                    .is_some_and(|sent| sent.elapsed() < self.uncertain_grace)
                {
                    // The request may still be on its way through Binance.
                    return self.keep_for_recheck(t);
                }
                let error = e.to_venue_error();
                tracing::warn!(
                    order_id = t.order_id.0,
                    "binance: order unknown to Binance after an uncertain send; rejected"
                );
                self.emit(
                    &t,
                    now_nanos(),
                    VenueEventKind::Rejected {
                        reason: RejectReason::VenueReject,
                    },
                    source,
                    None,
                    Some(error),
                );
                self.finish(t);
            }
            Err(e) => {
                tracing::warn!(
                    order_id = t.order_id.0,
                    error = %e.to_venue_error(),
                    "binance: order state unknown; will query again",
                );
                self.keep_for_recheck(t);
            }
        }
    }

    fn recheck_pending(&mut self) {
        if self.recheck.is_empty() {
            return;
        }
        for order_id in std::mem::take(&mut self.recheck) {
            if let Some(t) = self.orders.remove(&order_id) {
                self.resolve(t, ReportSource::Rest);
            }
        }
    }

    fn cancel(&mut self, cancel: &CancelOrder) {
        let Some(mut t) = self.orders.remove(&cancel.order_id) else {
            let (reason, message, instrument, client_order_id, venue_order_id) =
                match self.done_index.get(&cancel.order_id) {
                    Some(&(inst, client_order_id, venue_order_id)) => (
                        RejectReason::TooLateToCancel,
                        "the order is already finished",
                        self.instruments[inst].id,
                        client_order_id,
                        venue_order_id,
                    ),
                    None => (
                        RejectReason::UnknownOrder,
                        "no such order at this adapter",
                        cancel.instrument,
                        cancel.client_order_id,
                        0,
                    ),
                };
            let mut report = local_report(
                cancel.order_id,
                instrument,
                client_order_id,
                VenueEventKind::CancelRejected { reason },
                VenueError {
                    http_status: 0,
                    code: 0,
                    message: message.to_owned(),
                },
            );
            report.venue_order_id = venue_order_id;
            self.emitted += 1;
            let _ = self.events.send(AdapterEvent::Order(report));
            return;
        };
        let symbol = self.instruments[t.inst].symbol.clone();
        let client_id = self.venue_client_id(t.order_id);
        match self.rest.cancel(&symbol, &client_id) {
            Ok(answer) => {
                if t.venue_order_id == 0 {
                    t.venue_order_id = answer.order_id;
                }
                let status =
                    VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or("CANCELED"));
                let executed = self.executed(&t, &answer);
                let ts = answer
                    .time_ms()
                    .map_or_else(now_nanos, UnixNanos::from_millis);
                self.settle(t, status, executed, ts, ReportSource::Rest, None);
            }
            Err(e) if e.outcome_unknown() => {
                // The cancel may have happened: the order's state says. If it is still open
                // the cancel is answered as refused; should it take effect after all, the
                // stream (or the next check) reports `Canceled`.
                let error = e.to_venue_error();
                tracing::warn!(
                    order_id = t.order_id.0,
                    %error,
                    "binance: cancel outcome unknown; querying",
                );
                let order_id = t.order_id;
                self.resolve(t, ReportSource::Rest);
                if let Some(t) = self.orders.get(&order_id).cloned() {
                    self.emit(
                        &t,
                        now_nanos(),
                        VenueEventKind::CancelRejected {
                            reason: RejectReason::VenueReject,
                        },
                        ReportSource::Rest,
                        None,
                        Some(error),
                    );
                }
            }
            Err(e) => {
                let error = e.to_venue_error();
                let reason = match &e {
                    RestError::Refused(_) => RejectReason::RateLimited,
                    RestError::Venue(v) => cancel_reason(v.http_status, v.code, &v.message),
                    RestError::Transport { .. } | RestError::Decode(_) => RejectReason::VenueReject,
                };
                tracing::warn!(
                    order_id = t.order_id.0,
                    ?reason,
                    status = error.http_status,
                    code = error.code,
                    message = %error.message,
                    "binance: cancel rejected",
                );
                let source = if matches!(e, RestError::Refused(_)) {
                    ReportSource::Local
                } else {
                    ReportSource::Rest
                };
                self.emit(
                    &t,
                    now_nanos(),
                    VenueEventKind::CancelRejected { reason },
                    source,
                    None,
                    Some(error),
                );
                if e.code() == -2011 {
                    // Binance no longer has it open: learn how it ended (fills first).
                    self.resolve(t, ReportSource::Rest);
                } else {
                    self.keep(t);
                }
            }
        }
    }

    fn status_of(&self, inst: usize, answer: &OrderJson) -> OrderStatus {
        let scales = &self.instruments[inst];
        let parse_qty = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| Qty::parse(t.as_bytes(), scales.qty_scale).ok())
                .unwrap_or(Qty(0))
        };
        OrderStatus {
            order_id: self
                .our_order_id(answer.order_client_id())
                .unwrap_or(OrderId(0)),
            venue_client_id: answer.order_client_id().to_owned(),
            venue_order_id: answer.order_id,
            instrument: scales.id,
            side: match answer.side.as_deref() {
                Some("BUY") => Some(Side::Buy),
                Some("SELL") => Some(Side::Sell),
                _ => None,
            },
            status: VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or("")),
            price: answer
                .price
                .as_deref()
                .and_then(|t| Price::parse(t.as_bytes(), scales.price_scale).ok())
                .unwrap_or(Price(0)),
            qty: parse_qty(&answer.orig_qty),
            cum: parse_qty(&answer.executed_qty),
            updated: answer
                .time_ms()
                .map_or(UnixNanos::ZERO, UnixNanos::from_millis),
        }
    }

    fn query(&mut self, order_id: OrderId) {
        let (inst, tracked) = match self.orders.remove(&order_id) {
            Some(t) => (t.inst, Some(t)),
            None => match self.done_index.get(&order_id) {
                Some(&(inst, _, _)) => (inst, None),
                None => {
                    let _ = self.events.send(AdapterEvent::RequestFailed {
                        request: FailedRequest::Query(order_id),
                        error: VenueError {
                            http_status: 0,
                            code: 0,
                            message: "no such order at this adapter".into(),
                        },
                    });
                    return;
                }
            },
        };
        let symbol = self.instruments[inst].symbol.clone();
        let client_id = self.venue_client_id(order_id);
        match self.rest.query(&symbol, &client_id) {
            Ok(answer) => {
                let status = self.status_of(inst, &answer);
                if let Some(mut t) = tracked {
                    t.venue_order_id = answer.order_id;
                    let executed = self.executed(&t, &answer);
                    let ts = answer
                        .time_ms()
                        .map_or_else(now_nanos, UnixNanos::from_millis);
                    self.settle(t, status.status, executed, ts, ReportSource::Rest, None);
                }
                let _ = self.events.send(AdapterEvent::Status(status));
            }
            Err(e) => {
                if let Some(t) = tracked {
                    self.keep(t);
                }
                let _ = self.events.send(AdapterEvent::RequestFailed {
                    request: FailedRequest::Query(order_id),
                    error: e.to_venue_error(),
                });
            }
        }
    }

    fn open_orders(&mut self, instrument: Option<InstrumentId>) {
        let symbol = match instrument {
            Some(id) => match self.by_id.get(&id) {
                Some(&inst) => Some(self.instruments[inst].symbol.clone()),
                None => {
                    let _ = self.events.send(AdapterEvent::RequestFailed {
                        request: FailedRequest::OpenOrders(instrument),
                        error: VenueError {
                            http_status: 0,
                            code: 0,
                            message: "instrument not configured for Binance".into(),
                        },
                    });
                    return;
                }
            },
            None => None,
        };
        match self.rest.open_orders(symbol.as_deref()) {
            Ok(list) => {
                let mut orders = Vec::with_capacity(list.len());
                for answer in &list {
                    let Some(&inst) = self.by_symbol.get(&answer.symbol) else {
                        continue;
                    };
                    let status = self.status_of(inst, answer);
                    // Fills the adapter missed show up here first: report them.
                    if let Some(mut t) = self.orders.remove(&status.order_id) {
                        t.venue_order_id = answer.order_id;
                        let ts = status.updated;
                        self.settle(t, status.status, status.cum, ts, ReportSource::Rest, None);
                    }
                    orders.push(status);
                }
                let _ = self
                    .events
                    .send(AdapterEvent::OpenOrders { instrument, orders });
            }
            Err(e) => {
                let _ = self.events.send(AdapterEvent::RequestFailed {
                    request: FailedRequest::OpenOrders(instrument),
                    error: e.to_venue_error(),
                });
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // User data stream
    // -----------------------------------------------------------------------------------

    fn on_stream(&mut self, message: StreamMsg) {
        match message {
            StreamMsg::Up { first } => {
                let _ = self
                    .events
                    .send(AdapterEvent::Stream(StreamState::Connected));
                if !first && !self.orders.is_empty() {
                    // Events may have been missed while the stream was down.
                    let ids: Vec<OrderId> = self.orders.keys().copied().collect();
                    let mut insts: Vec<usize> = self.orders.values().map(|t| t.inst).collect();
                    insts.sort_unstable();
                    insts.dedup();
                    let summary = self.reconcile_ids(&ids, &insts);
                    tracing::info!(
                        open = summary.open.len(),
                        closed = summary.closed.len(),
                        events = summary.events,
                        "binance: reconciled after the user data stream reconnected"
                    );
                }
            }
            StreamMsg::Down { reason } => {
                let _ = self
                    .events
                    .send(AdapterEvent::Stream(StreamState::Disconnected { reason }));
            }
            StreamMsg::Refused(error) => {
                let _ = self
                    .events
                    .send(AdapterEvent::Stream(StreamState::Refused(error)));
            }
            StreamMsg::Report(report) => self.on_report(&report),
        }
    }

    fn on_report(&mut self, r: &ExecutionReport) {
        let Some(&inst) = self.by_symbol.get(&r.symbol) else {
            return;
        };
        let Some(order_id) = self.our_order_id(r.order_client_id()) else {
            tracing::debug!(
                client_id = r.order_client_id(),
                "binance: report of an order not placed by the adapter"
            );
            return;
        };
        let Some(mut t) = self.orders.remove(&order_id) else {
            if !self.done_index.contains_key(&order_id) {
                tracing::warn!(
                    order_id = order_id.0,
                    exec_type = %r.exec_type,
                    "binance: report for an order the adapter does not track (reconcile it)",
                );
            }
            return;
        };
        if t.inst != inst {
            tracing::error!(
                order_id = order_id.0,
                symbol = %r.symbol,
                "binance: report symbol differs from the order's",
            );
            return self.keep(t);
        }
        if t.venue_order_id == 0 {
            t.venue_order_id = r.order_id;
        }
        let ts = UnixNanos::from_millis(if r.transaction_time > 0 {
            r.transaction_time
        } else {
            r.event_time
        });
        let scale = self.instruments[inst].qty_scale;
        let (Ok(last), Ok(cum)) = (
            Qty::parse(r.last_qty.as_bytes(), scale),
            Qty::parse(r.cum_qty.as_bytes(), scale),
        ) else {
            tracing::error!(
                order_id = order_id.0,
                "binance: report quantities do not fit the instrument's scale"
            );
            return self.keep(t);
        };
        let status = VenueOrderStatus::from_binance(&r.status);
        match r.exec_type.as_str() {
            "NEW" => {
                let _ = self.accept_or_reject(
                    &mut t,
                    VenueOrderStatus::New,
                    Qty(0),
                    ts,
                    ReportSource::UserStream,
                    None,
                );
                self.keep(t);
            }
            "TRADE" => {
                let Ok(trade_id) = u64::try_from(r.trade_id) else {
                    return self.keep(t);
                };
                if !self.accept_or_reject(&mut t, status, cum, ts, ReportSource::UserStream, None) {
                    return;
                }
                let seen = t.cum.0;
                if !t.trades.contains(&trade_id) && cum.0 == seen + last.0 {
                    self.apply_fill(
                        &mut t,
                        &FillData {
                            trade_id,
                            price: &r.last_price,
                            qty: &r.last_qty,
                            commission: r.commission.as_deref(),
                            commission_asset: r.commission_asset.as_deref(),
                            maker: r.maker,
                            ts,
                            listed: false,
                        },
                        ReportSource::UserStream,
                    );
                } else if cum.0 > seen + last.0
                    && !self.catch_up_trades(&mut t, ReportSource::UserStream)
                {
                    return self.keep_for_recheck(t);
                }
                if status == VenueOrderStatus::Filled && t.cum.0 >= t.qty.0 {
                    self.finish(t);
                } else {
                    self.keep(t);
                }
            }
            "CANCELED" | "EXPIRED" | "TRADE_PREVENTION" | "REJECTED" => {
                let error = r
                    .reject_reason
                    .as_deref()
                    .filter(|reason| *reason != "NONE")
                    .map(|reason| VenueError {
                        http_status: 0,
                        code: 0,
                        message: reason.to_owned(),
                    });
                let status = if status.is_final() {
                    status
                } else if r.exec_type == "CANCELED" {
                    VenueOrderStatus::Canceled
                } else {
                    VenueOrderStatus::Expired
                };
                self.settle(t, status, cum, ts, ReportSource::UserStream, error);
            }
            // REPLACED, AMENDMENT: not produced by this adapter's requests.
            _ => self.keep(t),
        }
    }

    // -----------------------------------------------------------------------------------
    // Reconciliation
    // -----------------------------------------------------------------------------------

    fn reconcile(&mut self, known: Vec<KnownOrder>) -> Reconciliation {
        let mut ids = Vec::with_capacity(known.len());
        let mut refused = Vec::new();
        for k in known {
            let Some(&inst) = self.by_id.get(&k.instrument) else {
                refused.push((
                    k.order_id,
                    VenueError {
                        http_status: 0,
                        code: 0,
                        message: "instrument not configured for Binance".into(),
                    },
                ));
                continue;
            };
            self.orders.entry(k.order_id).or_insert(Tracked {
                order_id: k.order_id,
                client_order_id: k.client_order_id,
                inst,
                order_type: k.order_type,
                tif: k.tif,
                qty: k.qty,
                cum: k.cum,
                unattributed: k.cum,
                venue_order_id: 0,
                accepted: k.accepted,
                trades: Vec::new(),
                sent_at: None,
            });
            ids.push(k.order_id);
        }
        let all: Vec<usize> = (0..self.instruments.len()).collect();
        let mut summary = self.reconcile_ids(&ids, &all);
        summary.failed.extend(refused);
        summary
    }

    /// Lists the open orders of `insts`, settles the tracked `ids` against them (querying
    /// those not listed), and collects the listed orders that are not among `ids`.
    fn reconcile_ids(&mut self, ids: &[OrderId], insts: &[usize]) -> Reconciliation {
        let start = self.emitted;
        let mut summary = Reconciliation {
            complete: true,
            ..Reconciliation::default()
        };
        let mut listed: HashMap<OrderId, OrderJson> = HashMap::new();
        for &inst in insts {
            let symbol = self.instruments[inst].symbol.clone();
            match self.rest.open_orders(Some(&symbol)) {
                Ok(list) => {
                    for answer in list {
                        match self.our_order_id(answer.order_client_id()) {
                            Some(id) if ids.contains(&id) => {
                                listed.insert(id, answer);
                            }
                            _ => summary.unknown.push(self.status_of(inst, &answer)),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        symbol,
                        error = %e.to_venue_error(),
                        "binance: cannot list open orders; querying one by one",
                    );
                    summary.complete = false;
                }
            }
        }
        for &order_id in ids {
            let Some(mut t) = self.orders.remove(&order_id) else {
                continue;
            };
            if let Some(answer) = listed.remove(&order_id) {
                t.venue_order_id = answer.order_id;
                let status =
                    VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or("NEW"));
                let executed = self.executed(&t, &answer);
                let ts = answer
                    .time_ms()
                    .map_or_else(now_nanos, UnixNanos::from_millis);
                self.settle(t, status, executed, ts, ReportSource::Reconcile, None);
            } else {
                let symbol = self.instruments[t.inst].symbol.clone();
                let client_id = self.venue_client_id(order_id);
                match self.rest.query(&symbol, &client_id) {
                    Ok(answer) => {
                        t.venue_order_id = answer.order_id;
                        let status =
                            VenueOrderStatus::from_binance(answer.status.as_deref().unwrap_or(""));
                        let executed = self.executed(&t, &answer);
                        let ts = answer
                            .time_ms()
                            .map_or_else(now_nanos, UnixNanos::from_millis);
                        self.settle(t, status, executed, ts, ReportSource::Reconcile, None);
                    }
                    Err(e) if e.code() == -2013 => {
                        let error = e.to_venue_error();
                        tracing::warn!(
                            order_id = order_id.0,
                            "binance: known order has no record at Binance; rejected"
                        );
                        self.emit(
                            &t,
                            now_nanos(),
                            VenueEventKind::Rejected {
                                reason: RejectReason::UnknownOrder,
                            },
                            ReportSource::Reconcile,
                            None,
                            Some(error),
                        );
                        self.finish(t);
                        summary.missing.push(order_id);
                        continue;
                    }
                    Err(e) => {
                        summary.failed.push((order_id, e.to_venue_error()));
                        self.keep_for_recheck(t);
                        continue;
                    }
                }
            }
            if self.orders.contains_key(&order_id) {
                if !summary.failed.iter().any(|(id, _)| *id == order_id) {
                    summary.open.push(order_id);
                }
            } else {
                summary.closed.push(order_id);
            }
        }
        summary.events = self.emitted - start;
        summary
    }
}

/// The parameters of `POST /api/v3/order` (without recvWindow, timestamp, signature).
fn order_params(
    order: &NewOrder,
    inst: &Inst,
    client_id: &str,
) -> Result<Params, (RejectReason, &'static str)> {
    let unsupported = |message| Err((RejectReason::UnsupportedOrder, message));
    let (kind, has_price, has_stop, has_tif) = match (order.order_type, order.post_only) {
        (OrderType::Limit, true) => ("LIMIT_MAKER", true, false, false),
        (OrderType::Limit, false) => ("LIMIT", true, false, true),
        (OrderType::Market, false) => ("MARKET", false, false, false),
        (OrderType::StopLimit, false) => ("STOP_LOSS_LIMIT", true, true, true),
        (OrderType::Stop, false) => ("STOP_LOSS", false, true, false),
        (_, true) => return unsupported("post-only applies to limit orders only"),
    };
    if order.post_only && order.tif != TimeInForce::Gtc {
        return unsupported("post-only orders must be GTC on Binance");
    }
    let tif = match order.tif {
        TimeInForce::Gtc => "GTC",
        TimeInForce::Ioc => "IOC",
        TimeInForce::Fok => "FOK",
        TimeInForce::Day | TimeInForce::Gtd if has_tif => {
            return unsupported("Binance spot has no DAY or GTD time in force");
        }
        TimeInForce::Day | TimeInForce::Gtd => "",
    };
    if order.qty.0 <= 0 {
        return Err((RejectReason::InvalidQuantity, "quantity must be positive"));
    }
    if has_price && order.price.0 <= 0 {
        return Err((RejectReason::InvalidPrice, "limit price must be positive"));
    }
    if has_stop && order.stop_price.0 <= 0 {
        return Err((RejectReason::InvalidPrice, "stop price must be positive"));
    }
    let mut params = Params::new();
    let mut buf = [0u8; ASCII_BUF_LEN];
    let mut ok = params.push("symbol", &inst.symbol)
        && params.push(
            "side",
            match order.side {
                Side::Buy => "BUY",
                Side::Sell => "SELL",
            },
        )
        && params.push("type", kind);
    if has_tif {
        ok &= params.push("timeInForce", tif);
    }
    ok &= params.push(
        "quantity",
        fixed_text(order.qty.0, inst.qty_scale, &mut buf),
    );
    if has_price {
        ok &= params.push(
            "price",
            fixed_text(order.price.0, inst.price_scale, &mut buf),
        );
    }
    if has_stop {
        ok &= params.push(
            "stopPrice",
            fixed_text(order.stop_price.0, inst.price_scale, &mut buf),
        );
    }
    ok &= client_id.bytes().all(is_client_id_byte) && params.push("newClientOrderId", client_id);
    ok &= params.push("newOrderRespType", "FULL");
    if !ok {
        return Err((RejectReason::VenueReject, "parameter needs encoding"));
    }
    Ok(params)
}

/// The exact decimal text of a mantissa (`6173763` at scale 2 is `61737.63`).
fn fixed_text(mantissa: i64, scale: Scale, buf: &mut [u8; ASCII_BUF_LEN]) -> &str {
    std::str::from_utf8(write_fixed(mantissa, scale, buf)).unwrap_or("")
}

/// Parses a decimal at `scale`, rounding digits beyond the scale toward +∞ (fees: Binance
/// prints 8 places, the quote asset may have fewer). `None` if it is not a decimal or does
/// not fit.
fn parse_ceil(text: &str, scale: Scale) -> Option<i64> {
    let places = usize::from(scale.places());
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() <= places {
        return parse_fixed(text.as_bytes(), scale).ok();
    }
    let (kept, dropped) = frac.split_at(places);
    if !dropped.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sign = if negative { "-" } else { "" };
    let truncated = if kept.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{kept}")
    };
    let value = parse_fixed(truncated.as_bytes(), scale).ok()?;
    // Toward +∞: a positive value with dropped digits goes up; a negative one is already
    // above its exact value once truncated.
    if !negative && dropped.bytes().any(|b| b != b'0') {
        value.checked_add(1)
    } else {
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(places: u8) -> Scale {
        Scale::new(places).unwrap()
    }

    #[test]
    fn fees_round_toward_plus_infinity() {
        assert_eq!(parse_ceil("0.10000000", s(2)), Some(10));
        assert_eq!(parse_ceil("0.10000001", s(2)), Some(11));
        assert_eq!(parse_ceil("0.00012345", s(2)), Some(1));
        assert_eq!(parse_ceil("-0.00500000", s(2)), Some(0));
        assert_eq!(parse_ceil("-0.01500000", s(2)), Some(-1));
        assert_eq!(parse_ceil("3", s(0)), Some(3));
        assert_eq!(parse_ceil("2.5", s(0)), Some(3));
        assert_eq!(parse_ceil("0.00012345", s(8)), Some(12_345));
        assert_eq!(parse_ceil("abc", s(2)), None);
        assert_eq!(parse_ceil("1.2x5", s(1)), None);
    }

    fn inst() -> Inst {
        Inst {
            id: InstrumentId(0),
            symbol: "BTCUSDT".into(),
            quote: "USDT".into(),
            price_scale: s(2),
            qty_scale: s(5),
        }
    }

    fn order() -> NewOrder {
        NewOrder {
            order_id: OrderId(7),
            client_order_id: ClientOrderId::NONE,
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtc,
            post_only: false,
            price: Price(5_000_012),
            stop_price: Price(0),
            qty: Qty(150),
        }
    }

    #[test]
    fn order_parameters_are_exact() {
        let params = order_params(&order(), &inst(), "aaiti-7").unwrap();
        assert_eq!(
            params.finish(),
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00150\
             &price=50000.12&newClientOrderId=aaiti-7&newOrderRespType=FULL"
        );
        let maker = NewOrder {
            post_only: true,
            side: Side::Sell,
            ..order()
        };
        assert_eq!(
            order_params(&maker, &inst(), "aaiti-7").unwrap().finish(),
            "symbol=BTCUSDT&side=SELL&type=LIMIT_MAKER&quantity=0.00150&price=50000.12\
             &newClientOrderId=aaiti-7&newOrderRespType=FULL"
        );
        let market = NewOrder {
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            price: Price(0),
            ..order()
        };
        assert_eq!(
            order_params(&market, &inst(), "aaiti-7").unwrap().finish(),
            "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.00150\
             &newClientOrderId=aaiti-7&newOrderRespType=FULL"
        );
        let stop = NewOrder {
            order_type: OrderType::StopLimit,
            stop_price: Price(5_100_000),
            ..order()
        };
        assert_eq!(
            order_params(&stop, &inst(), "aaiti-7").unwrap().finish(),
            "symbol=BTCUSDT&side=BUY&type=STOP_LOSS_LIMIT&timeInForce=GTC&quantity=0.00150\
             &price=50000.12&stopPrice=51000.00&newClientOrderId=aaiti-7&newOrderRespType=FULL"
        );
        let refused = |o: NewOrder| order_params(&o, &inst(), "aaiti-7").unwrap_err().0;
        assert_eq!(
            refused(NewOrder {
                tif: TimeInForce::Day,
                ..order()
            }),
            RejectReason::UnsupportedOrder
        );
        assert_eq!(
            refused(NewOrder {
                post_only: true,
                tif: TimeInForce::Ioc,
                ..order()
            }),
            RejectReason::UnsupportedOrder
        );
        assert_eq!(
            refused(NewOrder {
                qty: Qty(0),
                ..order()
            }),
            RejectReason::InvalidQuantity
        );
        assert_eq!(
            refused(NewOrder {
                price: Price(-1),
                ..order()
            }),
            RejectReason::InvalidPrice
        );
        assert_eq!(
            refused(NewOrder {
                order_type: OrderType::StopLimit,
                ..order()
            }),
            RejectReason::InvalidPrice
        );
    }
}
