//! The FIX gateway as a pipeline source: the acceptor's event loop runs inside
//! [`Source::poll`] on an I/O thread (the first source thread unless the placement gives it
//! one of its own), so desk orders enter the pipeline without another hop.
//!
//! Inbound, after the session layer: [`dictionary::validate`], then [`app::decode`]:
//!
//! * orders (D, F, G) become [`OrderCommand`] records on [`DESK_STREAM`], journaled and
//!   replayed like every source record; the trading stage checks and routes them;
//! * status (H), positions (AN) and admin (U1) requests go through the admin channel
//!   ([`crate::admin`], journaled on the admin stream); the answer comes back here;
//! * market data requests (V) subscribe through [`DeskFeed`].
//!
//! Outbound, from the [`DeskStage`](super::DeskStage) (after the journal): execution
//! reports and cancel rejects for the desk's own orders, snapshots (W) and incremental
//! refreshes (X) of subscribed books. A pending report (PendingNew, PendingCancel,
//! PendingReplace) is left out when its answer is queued right behind it, as with the
//! paper venue's immediate acknowledgements; a venue that takes time gets it sent.
//!
//! Logons, logouts and refused logons are journaled as `desk_session` control records.

use std::sync::Arc;
use std::time::Duration;

use aaiti_gateway::fix::Reject;
use aaiti_gateway::fix::acceptor::{Acceptor, Application, LogonFailure, Reply, SessionId};
use aaiti_gateway::fix::app::{
    self, AccountSet, AdminAction, AdminResponse, AdminStatus, DeskContext, DeskOrders,
    DeskRequest, LevelChange, MdUpdateType, OrderInfo, PosReqResult, PositionReport, PositionsAck,
    ReportStamp, SessionScope, Subscription,
};
use aaiti_gateway::fix::codec::{Encoder, Message};
use aaiti_gateway::fix::dictionary;
use aaiti_gateway::fix::session::{DisconnectReason, SessionConfig};
use aaiti_gateway::fix::store::{MemoryStore, MessageStore};
use aaiti_model::{
    AccountId, ClientOrderId, Control, ControlAction, InstrumentId, InstrumentRegistry,
    OrderAction, OrderCommand, OrderEvent, Price, Qty, RecordHeader, RejectReason, UnixNanos,
};
use crossbeam_channel::Receiver;

use super::store::JournalStore;
use super::{DESK_STREAM, DeskFeed, DeskOut, DeskReceiver};
use crate::admin::{AdminCommand, AdminHandle, AdminReply};
use crate::hash::{FixedMap, FixedState};
use crate::runtime::{Emitter, Source, SourceStatus};

/// Most desk orders the gateway tracks at once.
const ORDER_CAPACITY: usize = 65_536;
/// Most level changes in one incremental refresh (X).
const MAX_CHANGES_PER_MESSAGE: usize = 32;
/// Most instruments one session may be subscribed to at once.
const MAX_SUBSCRIPTIONS_PER_SESSION: usize = 256;
/// Outbound messages handled per poll (bounded work per call).
const OUTBOUND_PER_POLL: usize = 4_096;

/// How a session's market data subscription wants updates.
#[derive(Debug, Clone)]
struct MdSub {
    session: SessionId,
    req_id: app::ReqId,
    instrument: InstrumentId,
    depth: usize,
    update_type: MdUpdateType,
    /// A snapshot-only request: answered once, then dropped.
    snapshot_only: bool,
}

/// A request waiting for the engine's answer.
struct Waiting {
    session: SessionId,
    kind: WaitingKind,
    reply: Receiver<AdminReply>,
}

enum WaitingKind {
    Admin(app::AdminRequest),
    Positions(app::PositionsRequest),
    Status {
        command: OrderCommand,
        ord_status_req_id: Option<app::ReqId>,
        seq: u64,
    },
}

/// Where an order's reports go: the session, and the key of its [`DeskOrders`] entry.
#[derive(Copy, Clone, Debug)]
struct Route {
    session: SessionId,
    order_key: ClientOrderId,
}

/// What the gateway source needs to build.
pub struct GatewaySetup {
    /// Acceptor configuration.
    pub acceptor: aaiti_gateway::fix::acceptor::AcceptorConfig,
    /// Sessions.
    pub sessions: Vec<SessionConfig>,
    /// Instruments.
    pub registry: InstrumentRegistry,
    /// Account names, by id.
    pub accounts: Vec<String>,
    /// Where each session's sequence numbers and sent messages are journaled
    /// (`<dir>/<their CompID>-<our CompID>/`); `None` keeps them in memory only.
    pub store_dir: Option<std::path::PathBuf>,
    /// The stores' durability.
    pub durability: aaiti_journal::Durability,
    /// Sent application messages each session keeps in memory for resends.
    pub resend_capacity: usize,
    /// The admin channel (status, positions, admin requests).
    pub admin: AdminHandle,
    /// The desk stage's output.
    pub outbound: DeskReceiver,
    /// Subscriptions shared with the desk stage.
    pub feed: Arc<DeskFeed>,
}

/// The gateway's application state (everything but the acceptor).
struct Desk {
    ctx: &'static DeskContext<'static>,
    scopes: Vec<Option<SessionScope>>,
    names: Vec<String>,
    orders: DeskOrders,
    routes: FixedMap<(AccountId, ClientOrderId), Route>,
    subs: Vec<MdSub>,
    waiting: Vec<Waiting>,
    admin: AdminHandle,
    feed: Arc<DeskFeed>,
    /// Records to emit after the acceptor's poll.
    records: Vec<Record>,
    report_seq: u64,
    changes: Vec<LevelChange>,
    changes_instrument: Option<InstrumentId>,
    counters: Counters,
}

enum Record {
    Command(OrderCommand),
    Control(Control),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    orders_in: u64,
    rejected: u64,
    reports_out: u64,
    md_out: u64,
    logons: u64,
    logons_failed: u64,
    send_errors: u64,
    /// Pending reports not sent because their answer followed at once.
    pending_superseded: u64,
}

/// Whether `following` answers the pending state `event` reports (same order): the
/// pending report then need not be sent.
fn superseded(event: &OrderEvent, following: &OrderEvent) -> bool {
    use aaiti_model::OrderEventKind as Kind;
    if following.account != event.account || following.order_id != event.order_id {
        return false;
    }
    let (Ok(kind), Ok(answer)) = (Kind::try_from(event.kind), Kind::try_from(following.kind))
    else {
        return false;
    };
    matches!(
        (kind, answer),
        (Kind::PendingNew, Kind::Accepted | Kind::Rejected)
            | (Kind::PendingCancel, Kind::Canceled | Kind::CancelRejected)
            | (Kind::PendingReplace, Kind::Replaced | Kind::CancelRejected)
    )
}

/// See the [module docs](self).
pub struct GatewaySource {
    acceptor: Acceptor,
    desk: Desk,
    outbound: DeskReceiver,
    seq: u64,
}

impl GatewaySource {
    /// Binds the acceptor.
    ///
    /// # Errors
    ///
    /// The listen address cannot be bound, a session's configuration is invalid, or a store
    /// cannot be opened.
    pub fn new(setup: GatewaySetup) -> anyhow::Result<Self> {
        // The context borrows the registry and account names for the process's life: the
        // gateway lives as long as the engine (one per start).
        let registry: &'static InstrumentRegistry = Box::leak(Box::new(setup.registry));
        let accounts: &'static [String] = Box::leak(setup.accounts.into_boxed_slice());
        let ctx: &'static DeskContext<'static> =
            Box::leak(Box::new(DeskContext::new(registry, accounts)?));
        let mut scopes = Vec::with_capacity(setup.sessions.len());
        for (index, session) in setup.sessions.iter().enumerate() {
            scopes.push(Some(scope(ctx, session).map_err(|error| {
                anyhow::anyhow!("gateway.sessions[{index}]: {error}")
            })?));
        }
        let names = setup
            .sessions
            .iter()
            .map(|s| s.target_comp_id.clone())
            .collect();
        let (store_dir, durability, capacity) =
            (setup.store_dir, setup.durability, setup.resend_capacity);
        let store_factory =
            move |session: &SessionConfig| -> std::io::Result<Box<dyn MessageStore>> {
                Ok(match &store_dir {
                    Some(dir) => Box::new(JournalStore::open(
                        &dir.join(format!(
                            "{}-{}",
                            session.target_comp_id, session.sender_comp_id
                        )),
                        durability,
                        capacity,
                    )?),
                    None => Box::new(MemoryStore::new(capacity)),
                })
            };
        let acceptor = Acceptor::bind(setup.acceptor, setup.sessions, store_factory)?;
        Ok(Self {
            acceptor,
            desk: Desk {
                ctx,
                scopes,
                names,
                orders: DeskOrders::with_capacity(ORDER_CAPACITY),
                routes: FixedMap::with_capacity_and_hasher(2 * ORDER_CAPACITY, FixedState),
                subs: Vec::new(),
                waiting: Vec::new(),
                admin: setup.admin,
                feed: setup.feed,
                records: Vec::with_capacity(256),
                report_seq: 0,
                changes: Vec::with_capacity(256),
                changes_instrument: None,
                counters: Counters::default(),
            },
            outbound: setup.outbound,
            seq: 0,
        })
    }

    /// The address the acceptor listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.acceptor.local_addr()
    }

    fn emit_records(&mut self, out: &mut Emitter<'_>) -> bool {
        if self.desk.records.is_empty() {
            return false;
        }
        let now = crate::clock::now();
        for record in self.desk.records.drain(..) {
            self.seq += 1;
            // ts_event 0: desk requests happen at the engine's current time.
            let header = RecordHeader::new(DESK_STREAM, self.seq, UnixNanos(0), now);
            match record {
                Record::Command(command) => out.emit_record(header, &command),
                Record::Control(control) => out.emit_record(header, &control),
            }
        }
        true
    }

    /// Sends what the desk stage queued, up to [`OUTBOUND_PER_POLL`] messages. A pending
    /// report (PendingNew, PendingCancel, PendingReplace) whose answer is already queued
    /// right behind it is not sent: FIX makes the pending states optional, and the desk
    /// learns nothing from a report superseded within the same microsecond (the paper
    /// venue answers at once unless it simulates latency). Its order's bookkeeping is
    /// unchanged by it either way.
    fn drain_outbound(&mut self) -> bool {
        let mut busy = false;
        let mut handled = 1;
        let mut next = self.outbound.try_recv().ok();
        while let Some(message) = next.take() {
            busy = true;
            if handled < OUTBOUND_PER_POLL {
                handled += 1;
                next = self.outbound.try_recv().ok();
            }
            match message {
                DeskOut::Order(event) => {
                    if let Some(DeskOut::Order(following)) = &next
                        && superseded(&event, following)
                    {
                        self.desk.counters.pending_superseded += 1;
                        continue;
                    }
                    self.desk.order_event(&mut self.acceptor, &event);
                }
                DeskOut::Level {
                    instrument,
                    side,
                    price,
                    qty,
                    action,
                    last,
                } => {
                    self.desk.level(
                        &mut self.acceptor,
                        instrument,
                        LevelChange {
                            action,
                            side,
                            price,
                            qty,
                        },
                        last,
                    );
                }
                DeskOut::Snapshot {
                    instrument,
                    bids,
                    asks,
                } => self
                    .desk
                    .snapshot(&mut self.acceptor, instrument, &bids, &asks),
            }
        }
        busy
    }
}

/// A session's scope from its configuration.
fn scope(ctx: &DeskContext<'_>, config: &SessionConfig) -> Result<SessionScope, String> {
    let mut allowed = AccountSet::EMPTY;
    for name in &config.accounts {
        let id = ctx
            .account_id(name.as_bytes())
            .ok_or_else(|| format!("accounts: no account named {name:?} in [[accounts]]"))?;
        allowed.insert(id);
    }
    let default_account = match &config.default_account {
        Some(name) => {
            let id = ctx.account_id(name.as_bytes()).ok_or_else(|| {
                format!("default_account: no account named {name:?} in [[accounts]]")
            })?;
            if !allowed.contains(id) {
                return Err(format!("default_account {name:?} is not in accounts"));
            }
            id
        }
        None => AccountId(u32::MAX),
    };
    let default_venue = match &config.default_venue {
        Some(name) => ctx
            .venue_id(name.as_bytes())
            .ok_or_else(|| format!("default_venue: no venue named {name:?}"))?,
        None => aaiti_model::VenueId(u16::MAX),
    };
    Ok(SessionScope {
        role: config.role,
        default_account,
        allowed_accounts: allowed,
        default_venue,
    })
}

fn session_control(kind: u64, comp_id: &str, reason: &str) -> Control {
    let mut control = Control::new(ControlAction::DeskSession, Control::ALL_ACCOUNTS, kind);
    let text = format!("{comp_id} {reason}");
    let bytes = text.as_bytes();
    let len = bytes.len().min(control.text.len());
    control.text[..len].copy_from_slice(&bytes[..len]);
    control
}

impl Desk {
    fn stamp(&mut self) -> ReportStamp {
        self.report_seq += 1;
        ReportStamp {
            seq: self.report_seq,
            time: crate::clock::now(),
        }
    }

    /// Sends a message whose SendingTime (52) is the report's TransactTime (60): one clock
    /// reading for both.
    fn send_stamped(
        &mut self,
        acceptor: &mut Acceptor,
        session: SessionId,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder, &ReportStamp) -> Result<(), app::EncodeError>,
    ) {
        let stamp = self.stamp();
        let mut failed = None;
        let sent = acceptor.send_at(session, msg_type, stamp.time, |enc| {
            if let Err(error) = body(enc, &stamp) {
                failed = Some(error);
            }
        });
        self.settle_send(failed, sent.is_err());
    }

    fn settle_send(&mut self, failed: Option<app::EncodeError>, send_failed: bool) {
        if let Some(error) = failed {
            self.counters.send_errors += 1;
            tracing::error!(%error, "a message to the desk could not be encoded");
        }
        if send_failed {
            self.counters.send_errors += 1;
        }
    }

    fn send(
        &mut self,
        acceptor: &mut Acceptor,
        session: SessionId,
        msg_type: &[u8],
        body: impl FnOnce(&mut Encoder) -> Result<(), app::EncodeError>,
    ) {
        let mut failed = None;
        let sent = acceptor.send(session, msg_type, |enc| {
            if let Err(error) = body(enc) {
                failed = Some(error);
            }
        });
        self.settle_send(failed, sent.is_err());
    }

    // --- order reports ----------------------------------------------------------------

    fn order_event(&mut self, acceptor: &mut Acceptor, event: &OrderEvent) {
        let account = event.account;
        let Some(route) = self.routes.get(&(account, event.client_order_id)).copied() else {
            return; // not a desk order
        };
        let (key, slot) = match self.orders.slot(account, &route.order_key) {
            Some(slot) => (route.order_key, slot),
            None => match self.orders.slot(account, &event.client_order_id) {
                Some(slot) => (event.client_order_id, slot),
                None => return,
            },
        };
        let info = *self.orders.at(slot);
        let ctx = self.ctx;
        self.send_stamped(
            acceptor,
            route.session,
            app::order_event_msg_type(event),
            |enc, stamp| app::encode_order_event(enc, event, &info, stamp, ctx),
        );
        self.counters.reports_out += 1;
        // Sending changed no order: the handle still holds this one.
        let entry = self.orders.at_mut(slot);
        let request_before = entry.request;
        // A cancel or replace of an order the engine does not know: the gateway's stand-in
        // for it has served its one answer.
        let unknown = event.kind == aaiti_model::OrderEventKind::CancelRejected.code()
            && event.reject_reason == aaiti_model::RejectReason::UnknownOrder.code();
        let done = entry.apply(event) || unknown;
        let after = *entry;
        if request_before.kind != app::RequestKind::None
            && after.request.kind == app::RequestKind::None
        {
            // The request was answered: its id routes nothing any more.
            if request_before.client_order_id != after.client_order_id {
                self.routes
                    .remove(&(account, request_before.client_order_id));
            }
        }
        if done {
            self.orders.remove(account, &key);
            self.routes.remove(&(account, after.client_order_id));
            self.routes.remove(&(account, key));
            return;
        }
        if after.client_order_id != key {
            // A replace took effect: the order is now known by its new ClOrdID.
            self.orders.remove(account, &key);
            let _ = self.orders.insert(after);
            self.routes.remove(&(account, key));
            self.routes.insert(
                (account, after.client_order_id),
                Route {
                    session: route.session,
                    order_key: after.client_order_id,
                },
            );
        }
    }

    // --- market data ------------------------------------------------------------------

    fn level(
        &mut self,
        acceptor: &mut Acceptor,
        instrument: InstrumentId,
        change: LevelChange,
        last: bool,
    ) {
        if self.changes_instrument != Some(instrument) {
            self.changes.clear();
            self.changes_instrument = Some(instrument);
        }
        self.changes.push(change);
        if !last {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        let mut full_refresh = false;
        for index in 0..self.subs.len() {
            let sub = &self.subs[index];
            if sub.instrument != instrument || sub.snapshot_only {
                continue;
            }
            if sub.update_type == MdUpdateType::FullRefresh {
                full_refresh = true;
                continue;
            }
            let (session, req_id) = (sub.session, sub.req_id);
            let ctx = self.ctx;
            // A venue update can move hundreds of levels: several smaller messages keep
            // every message well within what FIX engines parse.
            for part in changes.chunks(MAX_CHANGES_PER_MESSAGE) {
                self.send(acceptor, session, b"X", |enc| {
                    app::encode_md_incremental(enc, Some(req_id.as_bytes()), instrument, part, ctx)
                });
                self.counters.md_out += 1;
            }
        }
        if full_refresh {
            self.feed.request_snapshot(instrument);
        }
        self.changes = changes;
        self.changes.clear();
        self.changes_instrument = None;
    }

    fn snapshot(
        &mut self,
        acceptor: &mut Acceptor,
        instrument: InstrumentId,
        bids: &[(Price, Qty)],
        asks: &[(Price, Qty)],
    ) {
        let mut index = 0;
        while index < self.subs.len() {
            let sub = self.subs[index].clone();
            if sub.instrument != instrument {
                index += 1;
                continue;
            }
            let depth = if sub.depth == 0 {
                usize::MAX
            } else {
                sub.depth
            };
            let (bids, asks) = (
                &bids[..bids.len().min(depth)],
                &asks[..asks.len().min(depth)],
            );
            let ctx = self.ctx;
            self.send(acceptor, sub.session, b"W", |enc| {
                app::encode_md_snapshot(
                    enc,
                    Some(sub.req_id.as_bytes()),
                    instrument,
                    bids,
                    asks,
                    ctx,
                )
            });
            self.counters.md_out += 1;
            if sub.snapshot_only {
                self.subs.swap_remove(index);
            } else {
                index += 1;
            }
        }
    }

    fn market_data(&mut self, session: SessionId, request: &app::MarketDataRequest) {
        match request.subscription {
            Subscription::Unsubscribe => {
                let feed = Arc::clone(&self.feed);
                self.subs.retain(|sub| {
                    let matches = sub.session == session && sub.req_id == request.md_req_id;
                    if matches && !sub.snapshot_only {
                        feed.unsubscribe(sub.instrument);
                    }
                    !matches
                });
            }
            Subscription::Snapshot | Subscription::Subscribe => {
                let snapshot_only = request.subscription == Subscription::Snapshot;
                for &instrument in request.instruments() {
                    self.subs.push(MdSub {
                        session,
                        req_id: request.md_req_id,
                        instrument,
                        depth: request.depth as usize,
                        update_type: request.update_type,
                        snapshot_only,
                    });
                    if snapshot_only {
                        self.feed.request_snapshot(instrument);
                    } else {
                        self.feed.subscribe(instrument);
                    }
                }
            }
        }
    }

    // --- answers from the engine ------------------------------------------------------

    fn answers(&mut self, acceptor: &mut Acceptor) -> bool {
        let mut busy = false;
        let mut index = 0;
        while index < self.waiting.len() {
            let reply = match self.waiting[index].reply.try_recv() {
                Ok(reply) => reply,
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    index += 1;
                    continue;
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    Err("the engine stopped before answering".to_owned())
                }
            };
            busy = true;
            let waiting = self.waiting.swap_remove(index);
            self.answer(acceptor, waiting.session, &waiting.kind, reply);
        }
        busy
    }

    fn answer(
        &mut self,
        acceptor: &mut Acceptor,
        session: SessionId,
        kind: &WaitingKind,
        reply: AdminReply,
    ) {
        match kind {
            WaitingKind::Admin(request) => {
                let (status, text, state) = match &reply {
                    Ok(value) => (
                        AdminStatus::Applied,
                        None,
                        (request.action == AdminAction::RiskState).then(|| value.to_string()),
                    ),
                    Err(error) => (AdminStatus::Refused, Some(error.as_str()), None),
                };
                let response = AdminResponse {
                    admin_req_id: request.admin_req_id.as_bytes(),
                    action: Some(request.action),
                    account: request.account,
                    status,
                    text,
                    risk_state: state.as_deref().map(str::as_bytes),
                };
                let ctx = self.ctx;
                self.send(acceptor, session, b"U2", |enc| {
                    app::encode_admin_response(enc, &response, ctx)
                });
            }
            WaitingKind::Positions(request) => self.positions(acceptor, session, request, reply),
            WaitingKind::Status {
                command,
                ord_status_req_id,
                seq,
            } => self.status(acceptor, session, command, *ord_status_req_id, *seq, reply),
        }
    }

    fn positions(
        &mut self,
        acceptor: &mut Acceptor,
        session: SessionId,
        request: &app::PositionsRequest,
        reply: AdminReply,
    ) {
        let report_id = self.stamp().seq;
        let lines: Vec<crate::stages::trading::PositionLine> = match reply.and_then(|value| {
            serde_json::from_value(value["positions"].clone()).map_err(|e| e.to_string())
        }) {
            Ok(lines) => lines,
            Err(error) => {
                let ack = PositionsAck {
                    report_id,
                    pos_req_id: request.pos_req_id.as_bytes(),
                    result: PosReqResult::Other,
                    total_reports: 0,
                    account: Some(request.account),
                    text: Some(&error),
                };
                let ctx = self.ctx;
                self.send(acceptor, session, b"AO", |enc| {
                    app::encode_positions_ack(enc, &ack, ctx)
                });
                return;
            }
        };
        let mine: Vec<_> = lines
            .iter()
            .filter(|line| {
                line.account == request.account.0
                    && request
                        .instrument
                        .is_none_or(|instrument| instrument.0 == line.instrument)
            })
            .collect();
        let total = mine.len() as u32;
        let ack = PositionsAck {
            report_id,
            pos_req_id: request.pos_req_id.as_bytes(),
            result: if total == 0 {
                PosReqResult::NoPositions
            } else {
                PosReqResult::Valid
            },
            total_reports: total,
            account: Some(request.account),
            text: None,
        };
        let ctx = self.ctx;
        self.send(acceptor, session, b"AO", |enc| {
            app::encode_positions_ack(enc, &ack, ctx)
        });
        let now = crate::clock::now();
        for line in mine {
            let report = PositionReport {
                report_id: self.stamp().seq,
                pos_req_id: Some(request.pos_req_id.as_bytes()),
                total_reports: total,
                business_date: now,
                account: request.account,
                instrument: InstrumentId(line.instrument),
                long_qty: Qty(line.qty.max(0)),
                short_qty: Qty(line.qty.min(0).saturating_neg()),
                avg_price: Price(line.avg_entry),
                realized_pnl: line.realized,
                unrealized_pnl: line.unrealized,
            };
            self.send(acceptor, session, b"AP", |enc| {
                app::encode_position_report(enc, &report, ctx)
            });
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one request's parts, cold path")]
    fn status(
        &mut self,
        acceptor: &mut Acceptor,
        session: SessionId,
        command: &OrderCommand,
        ord_status_req_id: Option<app::ReqId>,
        seq: u64,
        reply: AdminReply,
    ) {
        let stamp = self.stamp();
        let ctx = self.ctx;
        match reply
            .ok()
            .and_then(|value| status_from_json(&value, command))
        {
            Some(state) => {
                let report = app::StatusReport {
                    order: &state.info,
                    order_id: state.order_id,
                    ord_status: state.ord_status,
                    cum_qty: state.cum_qty,
                    leaves_qty: state.leaves_qty,
                    avg_price: state.avg_price,
                    ord_status_req_id: ord_status_req_id.as_ref().map(app::ReqId::as_bytes),
                };
                self.send(acceptor, session, b"8", |enc| {
                    app::encode_status_report(enc, &report, &stamp, ctx)
                });
            }
            None => {
                let id = if command.orig_client_order_id.is_none() {
                    command.client_order_id
                } else {
                    command.orig_client_order_id
                };
                self.send(acceptor, session, b"j", |enc| {
                    app::encode_business_reject(
                        enc,
                        seq,
                        b"H",
                        (!id.is_none()).then(|| id.as_bytes()),
                        app::BusinessReason::UnknownId,
                        "unknown order",
                    )
                });
            }
        }
    }
}

/// An order as the engine's status answer describes it.
struct OrderState {
    info: OrderInfo,
    order_id: aaiti_model::OrderId,
    ord_status: u8,
    cum_qty: Qty,
    leaves_qty: Qty,
    avg_price: Price,
}

/// The engine's answer to a status request as the order's terms and state.
fn status_from_json(value: &serde_json::Value, command: &OrderCommand) -> Option<OrderState> {
    let int = |key: &str| value[key].as_i64();
    let code = |key: &str| value[key].as_u64().and_then(|c| u8::try_from(c).ok());
    let info = OrderInfo {
        account: command.account,
        instrument: InstrumentId(u32::try_from(value["instrument"].as_u64()?).ok()?),
        side: aaiti_model::Side::try_from(code("side")?).ok()?,
        order_type: aaiti_model::OrderType::try_from(code("order_type")?).ok()?,
        time_in_force: aaiti_model::TimeInForce::try_from(code("time_in_force")?).ok()?,
        flags: aaiti_model::OrderFlags(code("flags")?),
        qty: Qty(int("qty")?),
        price: Price(int("price")?),
        stop_price: Price(int("stop_price")?),
        expire_at: UnixNanos(value["expire_at"].as_u64()?),
        client_order_id: ClientOrderId::new(value["client_order_id"].as_str()?.as_bytes()).ok()?,
        orig_client_order_id: ClientOrderId::NONE,
        request: app::PendingRequest::default(),
    };
    // OrdStatus (39) of the order manager's state; a cancel or replace in flight shows as
    // pending cancel (6).
    let pending = value["pending"].as_bool() == Some(true);
    let ord_status = match value["status"].as_str()? {
        "Armed" | "New" | "PartiallyFilled" if pending => b'6',
        "PendingNew" => b'A',
        "Armed" | "New" => b'0',
        "PartiallyFilled" => b'1',
        "Filled" => b'2',
        "Canceled" => b'4',
        "Rejected" => b'8',
        "Expired" => b'C',
        _ => return None,
    };
    Some(OrderState {
        info,
        order_id: aaiti_model::OrderId(value["order_id"].as_u64()?),
        ord_status,
        cum_qty: Qty(int("cum_qty")?),
        leaves_qty: Qty(int("leaves_qty")?),
        avg_price: Price(int("avg_price")?),
    })
}

impl Application for Desk {
    fn on_logon(&mut self, session: SessionId, config: &SessionConfig, _now: UnixNanos) {
        self.counters.logons += 1;
        self.records.push(Record::Control(session_control(
            1,
            &config.target_comp_id,
            "logon",
        )));
        tracing::info!(session = session.0, peer = %config.target_comp_id, "desk session logged on");
    }

    fn on_logout(&mut self, session: SessionId, reason: DisconnectReason, _now: UnixNanos) {
        let name = self
            .names
            .get(session.0 as usize)
            .cloned()
            .unwrap_or_default();
        self.records.push(Record::Control(session_control(
            2,
            &name,
            &format!("{reason:?}"),
        )));
        // Its subscriptions end with it.
        let feed = Arc::clone(&self.feed);
        self.subs.retain(|sub| {
            let mine = sub.session == session;
            if mine && !sub.snapshot_only {
                feed.unsubscribe(sub.instrument);
            }
            !mine
        });
        self.waiting.retain(|waiting| waiting.session != session);
        tracing::info!(session = session.0, peer = %name, ?reason, "desk session ended");
    }

    fn on_logon_failed(&mut self, failure: &LogonFailure, _now: UnixNanos) {
        self.counters.logons_failed += 1;
        self.records.push(Record::Control(session_control(
            3,
            &failure.sender_comp_id,
            &format!("{:?} from {}", failure.error, failure.peer),
        )));
        tracing::warn!(
            peer = %failure.sender_comp_id,
            username = %failure.username,
            address = %failure.peer,
            error = ?failure.error,
            failures = failure.consecutive_failures,
            "desk logon refused"
        );
    }

    fn on_message(
        &mut self,
        session: SessionId,
        msg: &Message<'_>,
        reply: &mut Reply<'_>,
        _now: UnixNanos,
    ) -> Result<(), Reject> {
        dictionary::validate(msg)?;
        let Some(scope) = self.scopes.get(session.0 as usize).copied().flatten() else {
            return Ok(());
        };
        let request = match app::decode(msg, self.ctx, &scope) {
            Ok(request) => request,
            Err(app::AppReject::Session(reject)) => {
                self.counters.rejected += 1;
                return Err(reject);
            }
            Err(reject) => {
                self.refuse(msg, reply, &reject);
                return Ok(());
            }
        };
        match request {
            DeskRequest::Order(command) => {
                if let Err(reason) = self.order(session, command) {
                    let reject = app::AppReject::Order {
                        reason,
                        text: reason.name(),
                    };
                    self.refuse(msg, reply, &reject);
                }
            }
            DeskRequest::Status {
                command,
                ord_status_req_id,
            } => {
                let account = self
                    .ctx
                    .account_name(command.account)
                    .unwrap_or("")
                    .to_owned();
                let id = if command.orig_client_order_id.is_none() {
                    command.client_order_id
                } else {
                    command.orig_client_order_id
                };
                // By OrderID (37) when given: it names the order whatever its ClOrdID became.
                let order_id = (command.order_id.0 != 0).then_some(command.order_id.0);
                let reply = self.admin.submit(AdminCommand::OrderStatus {
                    account,
                    client_order_id: String::from_utf8_lossy(id.as_bytes()).into_owned(),
                    order_id,
                });
                self.waiting.push(Waiting {
                    session,
                    kind: WaitingKind::Status {
                        command,
                        ord_status_req_id,
                        seq: msg.seq_num().unwrap_or(0),
                    },
                    reply,
                });
            }
            DeskRequest::MarketData(request) => {
                let held = self
                    .subs
                    .iter()
                    .filter(|sub| sub.session == session)
                    .count();
                if request.subscription != Subscription::Unsubscribe
                    && held + request.instruments().len() > MAX_SUBSCRIPTIONS_PER_SESSION
                {
                    let reject = app::AppReject::MarketData {
                        reason: app::MdRejectReason::InsufficientBandwidth,
                        text: "too many market data subscriptions on this session",
                    };
                    self.refuse(msg, reply, &reject);
                } else {
                    self.market_data(session, &request);
                }
            }
            DeskRequest::Positions(request) => {
                let reply = self.admin.submit(AdminCommand::Risk);
                self.waiting.push(Waiting {
                    session,
                    kind: WaitingKind::Positions(request),
                    reply,
                });
            }
            DeskRequest::Admin(request) => {
                let account = request
                    .account
                    .and_then(|id| self.ctx.account_name(id))
                    .map(str::to_owned);
                let command = match request.action {
                    AdminAction::Halt => AdminCommand::Halt { account },
                    AdminAction::Resume => AdminCommand::Resume { account },
                    AdminAction::KillSwitch => AdminCommand::KillSwitch {
                        account,
                        flatten: false,
                    },
                    AdminAction::KillSwitchFlatten => AdminCommand::KillSwitch {
                        account,
                        flatten: true,
                    },
                    AdminAction::RiskState => AdminCommand::Risk,
                };
                let reply = self.admin.submit(command);
                self.waiting.push(Waiting {
                    session,
                    kind: WaitingKind::Admin(request),
                    reply,
                });
            }
        }
        Ok(())
    }
}

impl Desk {
    /// Answers a request the gateway refuses (from the request itself).
    fn refuse(&mut self, msg: &Message<'_>, reply: &mut Reply<'_>, reject: &app::AppReject) {
        self.counters.rejected += 1;
        let stamp = self.stamp();
        let mut failed = None;
        let _ = reply.send(reject.msg_type(msg.msg_type()), |enc| {
            if let Err(error) = app::encode_app_reject(enc, msg, reject, &stamp) {
                failed = Some(error);
            }
        });
        if let Some(error) = failed {
            tracing::error!(%error, "a reject to the desk could not be encoded");
        }
    }

    /// Remembers a desk order (for its reports) and queues its command for the engine.
    /// Refused, with nothing queued, when the gateway cannot track it: its reports could not
    /// reach the desk, or a live order already has its ClOrdID.
    fn order(&mut self, session: SessionId, command: OrderCommand) -> Result<(), RejectReason> {
        let account = command.account;
        if self.routes.len() >= 2 * ORDER_CAPACITY {
            return Err(RejectReason::MaxOpenOrders);
        }
        match command.action() {
            Some(OrderAction::New) => {
                let Some(info) = OrderInfo::from_command(&command) else {
                    return Err(RejectReason::UnsupportedOrder);
                };
                if self.orders.get(account, &command.client_order_id).is_some() {
                    // A live order has this ClOrdID: its record must not be overwritten.
                    return Err(RejectReason::DuplicateClientOrderId);
                }
                if self.orders.insert(info).is_err() {
                    return Err(RejectReason::MaxOpenOrders);
                }
                self.routes.insert(
                    (account, command.client_order_id),
                    Route {
                        session,
                        order_key: command.client_order_id,
                    },
                );
            }
            Some(OrderAction::Cancel | OrderAction::Replace) => {
                let target = command.orig_client_order_id;
                match self.orders.get_mut(account, &target) {
                    Some(info) => info.on_request(&command),
                    None => {
                        // Not ours (or already done): remember enough to answer it.
                        if let Some(info) = OrderInfo::from_command(&command) {
                            let _ = self.orders.insert(info);
                        }
                    }
                }
                let route = Route {
                    session,
                    order_key: target,
                };
                self.routes
                    .insert((account, command.client_order_id), route);
                self.routes.entry((account, target)).or_insert(route);
            }
            _ => {}
        }
        self.counters.orders_in += 1;
        self.records.push(Record::Command(command));
        Ok(())
    }
}

impl Source for GatewaySource {
    fn name(&self) -> &str {
        "fix"
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        let mut busy = self.drain_outbound();
        busy |= self.desk.answers(&mut self.acceptor);
        if let Err(error) = self.acceptor.poll(Some(Duration::ZERO), &mut self.desk) {
            tracing::error!(%error, "the FIX acceptor's poll failed");
        }
        busy |= self.emit_records(out);
        if busy {
            SourceStatus::Busy
        } else {
            SourceStatus::Idle
        }
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.seq = last_seq;
    }

    fn keeps_running(&self) -> bool {
        false
    }

    fn report(&self) -> Vec<(String, u64)> {
        let c = self.desk.counters;
        let stats = self.acceptor.stats();
        vec![
            ("orders_in".to_owned(), c.orders_in),
            ("rejected".to_owned(), c.rejected),
            ("reports_out".to_owned(), c.reports_out),
            ("md_out".to_owned(), c.md_out),
            ("logons".to_owned(), c.logons),
            ("logons_failed".to_owned(), c.logons_failed),
            ("send_errors".to_owned(), c.send_errors),
            ("pending_superseded".to_owned(), c.pending_superseded),
            ("connections".to_owned(), stats.accepted),
        ]
    }
}

#[cfg(test)]
mod tests {
    use aaiti_model::{OrderEventKind as Kind, OrderId};
    use bytemuck::Zeroable;

    use super::*;

    fn event(kind: Kind, account: u32, order: u64) -> OrderEvent {
        let mut event = OrderEvent::zeroed();
        event.kind = kind.code();
        event.account = AccountId(account);
        event.order_id = OrderId(order);
        event
    }

    #[test]
    fn a_pending_report_is_superseded_only_by_its_own_answer() {
        let answered = [
            (Kind::PendingNew, Kind::Accepted),
            (Kind::PendingNew, Kind::Rejected),
            (Kind::PendingCancel, Kind::Canceled),
            (Kind::PendingCancel, Kind::CancelRejected),
            (Kind::PendingReplace, Kind::Replaced),
            (Kind::PendingReplace, Kind::CancelRejected),
        ];
        for (pending, answer) in answered {
            let first = event(pending, 1, 7);
            assert!(
                superseded(&first, &event(answer, 1, 7)),
                "{pending:?} {answer:?}"
            );
            // Another order's or another account's answer does not.
            assert!(!superseded(&first, &event(answer, 1, 8)));
            assert!(!superseded(&first, &event(answer, 2, 7)));
        }
        // Reports that are not pending states are always sent.
        assert!(!superseded(
            &event(Kind::Accepted, 1, 7),
            &event(Kind::Canceled, 1, 7)
        ));
        assert!(!superseded(
            &event(Kind::PartiallyFilled, 1, 7),
            &event(Kind::Filled, 1, 7)
        ));
        // A pending state followed by something other than its answer is sent.
        assert!(!superseded(
            &event(Kind::PendingNew, 1, 7),
            &event(Kind::PendingCancel, 1, 7)
        ));
        assert!(!superseded(
            &event(Kind::PendingCancel, 1, 7),
            &event(Kind::PartiallyFilled, 1, 7)
        ));
    }
}
