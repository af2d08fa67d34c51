//! Live venues: orders of `account_type = "live"` accounts go to an exchange adapter instead of
//! the paper venue.
//!
//! The path of a live order, and why each step sits where it does:
//!
//! 1. The trading stage accepts the order (order manager, pre-trade risk) and writes a
//!    [`VenueRequest`] record on its own stream instead of handing it to the paper venue.
//! 2. The journal stage writes it. Only then does the [`LiveRouterStage`] (placed after the
//!    journal stage) pass it to the adapter: the journal knows every order an exchange may
//!    hold, so a crash can never leave an order at the exchange that the engine forgot
//!    (write-ahead). A replayed request is never sent again.
//! 3. The adapter's reports (acks, fills, cancels, rejects) come back through the
//!    [`VenueReportSource`] as [`VenueReport`] records on [`VENUE_STREAM`]: source records,
//!    journaled before the trading stage applies them, so a replay of the journal sees the
//!    same reports in the same order and rebuilds the same orders and positions.
//! 4. On restart, once recovery has replayed the journal, the engine starts the
//!    [`Reconciler`]: it gives the adapter the orders the journal says are open, and the
//!    adapter reports what happened to them meanwhile (fills, cancels, expiries; a request
//!    journaled but never sent is rejected), through the same source.
//!
//! Binance spot has no in-place replace: a replace of a live order is answered with a
//! cancel reject (`unsupported_order`); cancel and send a new order instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aaiti_gateway::binance::{
    AdapterEvent, BinanceHandle, BinanceRequest, CancelOrder, KnownOrder, NewOrder, OrderReport,
    StreamState,
};
use aaiti_gateway::paper::{Liquidity, VenueEvent, VenueEventKind};
use aaiti_model::{
    Envelope, OrderFlags, OrderId, OrderType, Qty, Record, RecordHeader, RecordKind, RejectReason,
    Side, StreamId, TimeInForce, UnixNanos, VenueAction, VenueId, VenueReport, VenueReportKind,
    VenueRequest,
};
use crossbeam_channel::Receiver;

use crate::runtime::{Emitter, Source, SourceStatus, Stage};

/// Stream of the live venues' reports (source records, replayed at recovery).
pub const VENUE_STREAM: StreamId = StreamId(902);

/// Most adapter events one poll turns into records.
const POLL_BATCH: usize = 64;

/// How long the restart reconciliation may take before it is reported as incomplete.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);

/// A live venue's report as the record journaled for it.
pub fn report_record(venue: VenueId, report: &OrderReport) -> VenueReport {
    let event = &report.event;
    let mut record = VenueReport {
        venue,
        instrument: report.instrument,
        order_id: event.order_id,
        venue_ts: event.ts,
        venue_order_id: report.venue_order_id,
        venue_error: report
            .error
            .as_ref()
            .map_or(0, |e| i16::try_from(e.code).unwrap_or(i16::MIN)),
        ..VenueReport::default()
    };
    let kind = match event.kind {
        VenueEventKind::Accepted => VenueReportKind::Accepted,
        VenueEventKind::Rejected { reason } => {
            record.reason = reason.code();
            VenueReportKind::Rejected
        }
        VenueEventKind::Fill {
            exec_id,
            price,
            qty,
            liquidity,
            fee,
            leaves,
            cum,
        } => {
            record.exec_id = exec_id;
            record.price = price;
            record.qty = qty;
            record.liquidity = match liquidity {
                Liquidity::Maker => 1,
                Liquidity::Taker => 2,
            };
            record.fee = fee;
            record.leaves = leaves;
            record.cum = cum;
            VenueReportKind::Fill
        }
        VenueEventKind::Canceled { leaves } => {
            record.leaves = leaves;
            VenueReportKind::Canceled
        }
        VenueEventKind::Expired { leaves } => {
            record.leaves = leaves;
            VenueReportKind::Expired
        }
        VenueEventKind::Replaced {
            price,
            qty,
            leaves,
            kept_priority,
        } => {
            record.price = price;
            record.qty = qty;
            record.leaves = leaves;
            record.kept_priority = u8::from(kept_priority);
            VenueReportKind::Replaced
        }
        VenueEventKind::CancelRejected { reason } => {
            record.reason = reason.code();
            VenueReportKind::CancelRejected
        }
    };
    record.kind = kind.code();
    record
}

/// The venue event a journaled report stands for (what the order manager applies).
/// `None` for a record whose codes this build does not know (counted by the caller).
pub fn report_event(record: &VenueReport) -> Option<VenueEvent> {
    let reason = || RejectReason::try_from(record.reason).unwrap_or(RejectReason::VenueReject);
    let kind = match record.kind()? {
        VenueReportKind::Accepted => VenueEventKind::Accepted,
        VenueReportKind::Rejected => VenueEventKind::Rejected { reason: reason() },
        VenueReportKind::Fill => VenueEventKind::Fill {
            exec_id: record.exec_id,
            price: record.price,
            qty: record.qty,
            liquidity: if record.liquidity == 1 {
                Liquidity::Maker
            } else {
                Liquidity::Taker
            },
            fee: record.fee,
            leaves: record.leaves,
            cum: record.cum,
        },
        VenueReportKind::Canceled => VenueEventKind::Canceled {
            leaves: record.leaves,
        },
        VenueReportKind::Expired => VenueEventKind::Expired {
            leaves: record.leaves,
        },
        VenueReportKind::Replaced => VenueEventKind::Replaced {
            price: record.price,
            qty: record.qty,
            leaves: record.leaves,
            kept_priority: record.kept_priority != 0,
        },
        VenueReportKind::CancelRejected => VenueEventKind::CancelRejected { reason: reason() },
    };
    Some(VenueEvent {
        ts: record.venue_ts,
        order_id: record.order_id,
        kind,
    })
}

/// Counters of the venue report source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VenueSourceStats {
    /// Order reports turned into records.
    pub reports: u64,
    /// User data stream state changes (connected, disconnected, refused).
    pub stream_changes: u64,
    /// Queries or listings that failed.
    pub failed_requests: u64,
    /// Other adapter events (query answers, listings), logged only.
    pub other: u64,
}

/// Where a live venue's reports enter the pipeline ([`VENUE_STREAM`]).
pub struct VenueReportSource {
    name: String,
    venue: VenueId,
    events: Receiver<AdapterEvent>,
    seq: u64,
    stats: VenueSourceStats,
}

impl VenueReportSource {
    /// Reads `events` (an adapter's event channel) for `venue`.
    pub fn new(name: &str, venue: VenueId, events: Receiver<AdapterEvent>) -> Self {
        Self {
            name: name.to_owned(),
            venue,
            events,
            seq: 0,
            stats: VenueSourceStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> VenueSourceStats {
        self.stats
    }

    fn other_event(&mut self, event: AdapterEvent) {
        match event {
            AdapterEvent::Order(_) => {}
            AdapterEvent::Stream(state) => {
                self.stats.stream_changes += 1;
                match state {
                    StreamState::Connected => {
                        tracing::info!(venue = self.name, "user data stream connected");
                    }
                    StreamState::Disconnected { reason } => {
                        tracing::warn!(venue = self.name, reason, "user data stream lost");
                    }
                    StreamState::Refused(error) => {
                        tracing::error!(venue = self.name, ?error, "user data stream refused");
                    }
                }
            }
            AdapterEvent::RequestFailed { request, error } => {
                self.stats.failed_requests += 1;
                tracing::warn!(venue = self.name, ?request, ?error, "venue request failed");
            }
            AdapterEvent::Status(status) => {
                self.stats.other += 1;
                tracing::debug!(venue = self.name, ?status, "order status");
            }
            AdapterEvent::OpenOrders { instrument, orders } => {
                self.stats.other += 1;
                tracing::debug!(
                    venue = self.name,
                    ?instrument,
                    open = orders.len(),
                    "open orders"
                );
            }
        }
    }
}

impl Source for VenueReportSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        let mut emitted = 0;
        while emitted < POLL_BATCH {
            let Ok(event) = self.events.try_recv() else {
                break;
            };
            let AdapterEvent::Order(report) = &event else {
                self.other_event(event);
                continue;
            };
            let record = report_record(self.venue, report);
            self.seq += 1;
            self.stats.reports += 1;
            // ts_event 0: the engine's current time (a venue or wall-clock stamp would move a
            // replay's clock); the venue's own time is in the record.
            let header = RecordHeader::new(
                VENUE_STREAM,
                self.seq,
                UnixNanos(0),
                UnixNanos::from_system_time(std::time::SystemTime::now()),
            );
            out.emit_record(header, &record);
            emitted += 1;
        }
        if emitted > 0 {
            SourceStatus::Busy
        } else {
            SourceStatus::Idle
        }
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.seq = self.seq.max(last_seq);
    }

    fn keeps_running(&self) -> bool {
        false
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("reports".into(), self.stats.reports),
            ("stream_changes".into(), self.stats.stream_changes),
            ("failed_requests".into(), self.stats.failed_requests),
        ]
    }
}

/// Counters of the router.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// New orders passed to the adapter.
    pub sent_new: u64,
    /// Cancels passed to the adapter.
    pub sent_cancel: u64,
    /// Requests the adapter refused at once (queue full, stopped: it reports a reject).
    pub refused: u64,
    /// Requests for a venue without an adapter in this run (not sent).
    pub no_adapter: u64,
    /// Journaled requests seen again during recovery (never re-sent).
    pub replayed: u64,
}

/// The orders the journal says a venue may hold. Shared between the router (which keeps it)
/// and the [`Reconciler`] (which reads it once, at start). Only live orders touch it.
type OpenOrders = Arc<Mutex<BTreeMap<OrderId, KnownOrder>>>;

/// Sends journaled [`VenueRequest`]s to the live venue's adapter (see the module docs). Goes
/// after the journal stage.
pub struct LiveRouterStage {
    venue: VenueId,
    handle: Option<Arc<BinanceHandle>>,
    open: OpenOrders,
    stats: RouterStats,
}

/// Starts the restart reconciliation of a live venue (see the module docs).
pub struct Reconciler {
    handle: Option<Arc<BinanceHandle>>,
    open: OpenOrders,
}

impl Reconciler {
    /// The orders the journal says are open at the venue.
    pub fn known_orders(&self) -> Vec<KnownOrder> {
        lock(&self.open).values().copied().collect()
    }

    /// Gives the adapter the orders the journal says are open, on a thread of its own (the
    /// call blocks up to a minute); the adapter reports what happened to them through the
    /// report source. Call it once recovery has replayed the journal.
    pub fn start(self) {
        let known = self.known_orders();
        let Some(handle) = self.handle else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("venue-reconcile".into())
            .spawn(move || {
                let count = known.len();
                match handle.reconcile(known, RECONCILE_TIMEOUT) {
                    Ok(summary) => {
                        if !summary.unknown.is_empty() {
                            tracing::warn!(
                                orders = ?summary.unknown,
                                "the venue holds orders of ours the journal does not know"
                            );
                        }
                        tracing::info!(
                            known = count,
                            open = summary.open.len(),
                            closed = summary.closed.len(),
                            missing = summary.missing.len(),
                            failed = summary.failed.len(),
                            unknown = summary.unknown.len(),
                            complete = summary.complete,
                            "venue reconciliation done"
                        );
                    }
                    Err(error) => {
                        tracing::error!(%error, known = count, "venue reconciliation failed");
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the venue reconciliation");
        }
    }
}

fn lock(open: &OpenOrders) -> std::sync::MutexGuard<'_, BTreeMap<OrderId, KnownOrder>> {
    // The map holds plain values: a panic elsewhere cannot leave it half-updated.
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveRouterStage {
    /// Routes `venue`'s requests to `handle`; without a handle (a journal replay) nothing is
    /// sent.
    pub fn new(venue: VenueId, handle: Option<BinanceHandle>) -> Self {
        Self {
            venue,
            handle: handle.map(Arc::new),
            open: Arc::new(Mutex::new(BTreeMap::new())),
            stats: RouterStats::default(),
        }
    }

    /// The reconciliation to start once recovery is done.
    pub fn reconciler(&self) -> Reconciler {
        Reconciler {
            handle: self.handle.clone(),
            open: Arc::clone(&self.open),
        }
    }

    /// Counters.
    pub fn stats(&self) -> RouterStats {
        self.stats
    }

    /// The orders it believes open at the venue (for tests and reports).
    pub fn open_orders(&self) -> usize {
        lock(&self.open).len()
    }

    fn on_request(&mut self, request: &VenueRequest, replay: bool) {
        if request.venue != self.venue {
            self.stats.no_adapter += 1;
            return;
        }
        let action = VenueAction::try_from(request.action);
        if action == Ok(VenueAction::New) {
            let order_type = OrderType::try_from(request.order_type).unwrap_or(OrderType::Limit);
            let tif = TimeInForce::try_from(request.time_in_force).unwrap_or(TimeInForce::Gtc);
            lock(&self.open).insert(
                request.order_id,
                KnownOrder {
                    order_id: request.order_id,
                    client_order_id: request.client_order_id,
                    instrument: request.instrument,
                    order_type,
                    tif,
                    qty: request.qty,
                    cum: Qty(0),
                    accepted: false,
                },
            );
        }
        if replay {
            self.stats.replayed += 1;
            return;
        }
        let Some(handle) = &self.handle else {
            self.stats.no_adapter += 1;
            return;
        };
        let message = match action {
            Ok(VenueAction::New) => {
                self.stats.sent_new += 1;
                BinanceRequest::New(NewOrder {
                    order_id: request.order_id,
                    client_order_id: request.client_order_id,
                    instrument: request.instrument,
                    side: Side::try_from(request.side).unwrap_or(Side::Buy),
                    order_type: OrderType::try_from(request.order_type).unwrap_or(OrderType::Limit),
                    tif: TimeInForce::try_from(request.time_in_force).unwrap_or(TimeInForce::Gtc),
                    post_only: OrderFlags(request.flags).contains(OrderFlags::POST_ONLY),
                    price: request.price,
                    stop_price: request.stop_price,
                    qty: request.qty,
                })
            }
            Ok(VenueAction::Cancel) => {
                self.stats.sent_cancel += 1;
                BinanceRequest::Cancel(CancelOrder {
                    order_id: request.order_id,
                    instrument: request.instrument,
                    client_order_id: request.client_order_id,
                })
            }
            Err(_) => return,
        };
        if !handle.submit(message) {
            self.stats.refused += 1;
        }
    }

    fn on_report(&mut self, report: &VenueReport) {
        if report.venue != self.venue {
            return;
        }
        let mut open = lock(&self.open);
        let Some(order) = open.get_mut(&report.order_id) else {
            return;
        };
        match report.kind() {
            Some(VenueReportKind::Accepted) => order.accepted = true,
            Some(VenueReportKind::Fill) => {
                order.accepted = true;
                order.cum = report.cum;
                if report.leaves.0 <= 0 {
                    open.remove(&report.order_id);
                }
            }
            Some(VenueReportKind::Replaced) => order.qty = report.qty,
            Some(
                VenueReportKind::Rejected | VenueReportKind::Canceled | VenueReportKind::Expired,
            ) => {
                open.remove(&report.order_id);
            }
            Some(VenueReportKind::CancelRejected) | None => {}
        }
    }
}

impl Stage for LiveRouterStage {
    fn name(&self) -> &str {
        "router"
    }

    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        let replay = event.header.flags & RecordHeader::FLAG_REPLAY != 0;
        if event.header.kind == RecordKind::VenueRequest.code() {
            if let Some(request) = event.payload::<VenueRequest>() {
                self.on_request(&{ *request }, replay);
            }
        } else if event.header.kind == VenueReport::KIND.code()
            && let Some(report) = event.payload::<VenueReport>()
        {
            self.on_report(&{ *report });
        }
        out.emit(event);
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        let open: Vec<SavedOrder> = lock(&self.open).values().map(SavedOrder::from).collect();
        postcard::to_stdvec(&open)
            .map(Some)
            .map_err(|error| error.to_string())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let open: Vec<SavedOrder> =
            postcard::from_bytes(state).map_err(|error| format!("router state: {error}"))?;
        *lock(&self.open) = open
            .into_iter()
            .map(|saved| {
                let order = saved.known();
                (order.order_id, order)
            })
            .collect();
        Ok(())
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("sent_new".into(), self.stats.sent_new),
            ("sent_cancel".into(), self.stats.sent_cancel),
            ("refused".into(), self.stats.refused),
            ("no_adapter".into(), self.stats.no_adapter),
            ("open".into(), self.open_orders() as u64),
        ]
    }
}

/// A [`KnownOrder`] in a snapshot.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedOrder {
    order_id: u64,
    client_order_id: aaiti_model::ClientOrderId,
    instrument: u32,
    order_type: u8,
    tif: u8,
    qty: i64,
    cum: i64,
    accepted: bool,
}

impl From<&KnownOrder> for SavedOrder {
    fn from(order: &KnownOrder) -> Self {
        Self {
            order_id: order.order_id.0,
            client_order_id: order.client_order_id,
            instrument: order.instrument.0,
            order_type: order.order_type.code(),
            tif: order.tif.code(),
            qty: order.qty.0,
            cum: order.cum.0,
            accepted: order.accepted,
        }
    }
}

impl SavedOrder {
    fn known(&self) -> KnownOrder {
        KnownOrder {
            order_id: OrderId(self.order_id),
            client_order_id: self.client_order_id,
            instrument: aaiti_model::InstrumentId(self.instrument),
            order_type: OrderType::try_from(self.order_type).unwrap_or(OrderType::Limit),
            tif: TimeInForce::try_from(self.tif).unwrap_or(TimeInForce::Gtc),
            qty: Qty(self.qty),
            cum: Qty(self.cum),
            accepted: self.accepted,
        }
    }
}
