//! The trading stage: strategies, the order manager, pre-trade risk, the risk monitor and the
//! paper venue, on one thread, driven by the market data and commands that reach it.
//!
//! For every input it first passes the input on (so the journal holds the cause before its
//! effects), then advances engine time (the input's `ts_event`; never the wall clock): the
//! paper venue releases requests whose latency has passed, the order manager expires Day and
//! GTD orders, the monitor closes its sampling interval and evaluates VaR. Then:
//!
//! * book deltas update the stage's books and the paper venue's queue estimates; a complete
//!   update marks positions (mid or last trade, `[trading] mark`), feeds stop triggers and
//!   the strategies;
//! * trades fill resting paper orders they print through, mark, trigger stops;
//! * an [`OrderCommand`] (from the desk, a test driver or a strategy) is validated by the
//!   order manager, checked by pre-trade risk, and routed to the venue, or rejected with
//!   its precise reason ([`OrderEvent`] `Rejected`, and a [`RiskEvent`] for a risk reject);
//! * venue reports move orders through their state machine; fills update positions,
//!   balances and P&L; risk breaches (drawdown, margin, VaR) become [`RiskEvent`]s and their
//!   action (reduce-only, halt and cancel all, flatten);
//! * `Control` records halt, resume, or engage the kill switch (per account or global),
//!   replace the risk limits (`limits_chunk`, see [`crate::admin`]) or ask for the risk state
//!   (`risk_report`); an admin command is answered through [`AdminReplies`] unless it is
//!   replayed.
//! * a venue report the order manager refuses (fill after cancel, overfill, duplicate
//!   execution id...) leaves the order unchanged and is journaled as an `illegal_report`
//!   [`RiskEvent`].
//!
//! Everything it derives goes out on its own stream (strategy commands, order events, risk
//! events) with the cause's timestamps and replay flag, so a replay of the journal rebuilds
//! exactly the same orders, positions and sequence numbers, and the journal stage skips what
//! it already holds. The whole state is one snapshot section.

use aaiti_gateway::paper::{PaperConfig, PaperOrder, PaperVenue, VenueEvent, VenueEventKind};
use aaiti_model::{
    AccountId, BookDelta, Control, ControlAction, Envelope, FeedEvent, FeedEventKind, InstrumentId,
    InstrumentRegistry, OrderAction, OrderCommand, OrderEvent, OrderEventKind, OrderFlags, OrderId,
    OrderType, Price, Qty, Record, RecordHeader, RecordKind, RejectReason, RiskEvent,
    RiskEventKind, Signal, StreamId, TimeInForce, Trade, UnixNanos, VenueAction, VenueReport,
    VenueRequest,
};
use aaiti_risk::config::RiskConfigFile;
use aaiti_risk::monitor::{MonitorConfig, RiskMonitor};
use aaiti_risk::{
    Breach, BreachAction, FlattenOrder, NewOrder, RiskEngine, RiskSetup, Scope, TradingState,
};
use serde::{Deserialize, Serialize};

use crate::admin::{AdminReplies, AdminReply, Assembled, LimitsAssembler};

use crate::market::Market;
use crate::oms::{
    CommandOutcome, Fill, Liquidity, OmsConfig, OrderManager, Pending, TriggerSource,
};
use crate::runtime::{Emitter, Stage};
use crate::strategy::{Intents, Strategy, client_order_id};

/// Which price marks positions (and feeds the VaR sampler).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkSource {
    /// Mid of the best bid and offer.
    #[default]
    Mid,
    /// Last trade price.
    Last,
}

/// Everything the trading stage is built from.
pub struct TradingSetup {
    /// Instruments.
    pub registry: InstrumentRegistry,
    /// Number of accounts.
    pub accounts: u32,
    /// Order manager configuration.
    pub oms: OmsConfig,
    /// Compiled risk limits and balances.
    pub risk: RiskSetup,
    /// Risk monitor configuration.
    pub monitor: MonitorConfig,
    /// Paper venue configuration.
    pub paper: PaperConfig,
    /// Mark source.
    pub mark: MarkSource,
    /// Hosted strategies.
    pub strategies: Vec<Box<dyn Strategy>>,
    /// Stream of the stage's own records.
    pub stream: StreamId,
    /// The risk configuration `risk` was compiled from (limits changes apply over it).
    pub risk_file: RiskConfigFile,
    /// Where admin commands are answered.
    pub admin: Option<AdminReplies>,
    /// Per account id: true if its orders go to a live venue (written as [`VenueRequest`]
    /// records for the router) instead of the paper venue. Missing entries are paper.
    pub live_accounts: Vec<bool>,
    /// Where the stage leaves its end-of-run summary (orders, fills, P&L) when the pipeline
    /// drains.
    pub summary: Option<SummarySlot>,
}

/// Receives the trading stage's end-of-run summary (a JSON document, see
/// [`TradingStage::summary`]).
pub type SummarySlot = std::sync::Arc<std::sync::Mutex<Option<serde_json::Value>>>;

/// Counters of the trading stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradingStats {
    /// Order commands processed (desk, drivers, strategies, liquidations).
    pub commands: u64,
    /// New orders accepted and routed (or armed, for stops).
    pub orders_accepted: u64,
    /// New orders rejected by the order manager's validation.
    pub rejected_invalid: u64,
    /// New orders rejected by pre-trade risk.
    pub rejected_risk: u64,
    /// Orders the venue rejected.
    pub rejected_venue: u64,
    /// Fills.
    pub fills: u64,
    /// Order events emitted.
    pub order_events: u64,
    /// Risk events emitted.
    pub risk_events: u64,
    /// Venue reports the order manager refused (illegal transitions).
    pub illegal_transitions: u64,
    /// Risk engine calls that failed (unknown ids; counted, never fatal).
    pub risk_errors: u64,
    /// VaR evaluations.
    pub var_evaluations: u64,
    /// Strategy intents dropped (more than a callback may emit).
    pub intents_dropped: u64,
    /// Admin commands applied (halt, resume, kill switch, limits, reports).
    pub admin_commands: u64,
    /// Limits changes refused (invalid values, wrong accounts, broken pieces).
    pub limits_refused: u64,
    /// Requests written for live venues (new orders and cancels).
    pub venue_requests: u64,
    /// Live venue reports applied.
    pub venue_reports: u64,
    /// Model signals passed to the strategies.
    pub signals: u64,
}

/// One position in mantissas: quantity at the instrument's quantity scale, prices and
/// amounts (quote asset) at its price scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionLine {
    /// Account id.
    pub account: u32,
    /// Instrument id.
    pub instrument: u32,
    /// Signed quantity.
    pub qty: i64,
    /// Average entry price.
    pub avg_entry: i64,
    /// Mark price.
    pub mark: i64,
    /// Realized P&L before fees.
    pub realized: i64,
    /// Unrealized P&L at the mark.
    pub unrealized: i64,
    /// Fees paid.
    pub fees: i64,
}

/// The last VaR evaluation of an account, for the desk.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VarView {
    /// Account id.
    pub account: u32,
    /// Engine time of the evaluation.
    pub ts: UnixNanos,
    /// Parametric VaR, valuation currency.
    pub parametric: f64,
    /// Historical-simulation VaR.
    pub historical: f64,
    /// The account's VaR limit, if one is configured.
    pub limit: Option<f64>,
    /// Some held instrument has too few returns yet.
    pub warming_up: bool,
}

/// `value` as JSON (an error, never a panic, for numbers JSON cannot hold).
fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|error| format!("risk state as JSON: {error}"))
}

/// [`OrderFlags`] bits of a venue order.
fn order_flags_bits(post_only: bool) -> u8 {
    if post_only {
        OrderFlags::POST_ONLY.0
    } else {
        0
    }
}

/// `limit` code of an `illegal_report` for a report about an order never seen.
fn venue_event_code(kind: &VenueEventKind) -> u8 {
    use crate::oms::VenueEvent as Report;
    match kind {
        VenueEventKind::Accepted => Report::Ack,
        VenueEventKind::Rejected { .. } => Report::Rejected,
        VenueEventKind::Fill { .. } => Report::Fill,
        VenueEventKind::Canceled { .. } => Report::Canceled,
        VenueEventKind::Expired { .. } => Report::Expired,
        VenueEventKind::Replaced { .. } => Report::Replaced,
        VenueEventKind::CancelRejected { .. } => Report::CancelRejected,
    }
    .code()
}

/// The stage's snapshot section.
#[derive(Serialize, Deserialize)]
struct SavedTrading {
    seq: u64,
    clock: UnixNanos,
    liquidation_ids: u64,
    stats: TradingStats,
    market: Vec<u8>,
    oms: Vec<u8>,
    risk: RiskEngine,
    monitor: RiskMonitor,
    paper: PaperVenue,
    strategies: Vec<(String, Vec<u8>)>,
    risk_file: RiskConfigFile,
    last_var: Vec<Option<VarView>>,
}

/// See the module docs.
pub struct TradingStage {
    market: Market,
    oms: OrderManager,
    risk: RiskEngine,
    monitor: RiskMonitor,
    paper: PaperVenue,
    strategies: Vec<Box<dyn Strategy>>,
    mark: MarkSource,
    stream: StreamId,
    seq: u64,
    clock: UnixNanos,
    accounts: u32,
    liquidation_ids: u64,
    stats: TradingStats,
    // Scratch, reused (no allocation in steady state).
    order_events: Vec<OrderEvent>,
    venue_events: Vec<VenueEvent>,
    breaches: Vec<Breach>,
    flatten: Vec<FlattenOrder>,
    intents: Intents,
    commands: Vec<(OrderCommand, bool)>,
    notionals: Vec<f64>,
    /// The input being handled: derived records take its timestamps and replay flag.
    cause: RecordHeader,
    /// A replace risk refused, answered with a cancel reject instead of being sent.
    refused_replace: Option<(OrderId, RejectReason)>,
    /// Per account: routed to a live venue.
    live_accounts: Vec<bool>,
    /// Live venue requests waiting to be written (scratch, reused).
    venue_requests: Vec<VenueRequest>,
    summary: Option<SummarySlot>,
    // Administration (cold path).
    registry: InstrumentRegistry,
    risk_file: RiskConfigFile,
    admin: Option<AdminReplies>,
    limits_text: LimitsAssembler,
    last_var: Vec<Option<VarView>>,
}

/// Most rounds of the internal event loop per input (a guard against a feedback loop
/// between strategies and the venue; each round handles everything queued).
const MAX_ROUNDS: usize = 64;

impl TradingStage {
    /// Builds the stage.
    ///
    /// # Errors
    ///
    /// A configuration the order manager, risk engine, monitor or venue refuses.
    pub fn new(setup: TradingSetup) -> Result<Self, String> {
        let instruments = setup.registry.len();
        let mut oms = OrderManager::new(setup.oms, &setup.registry)
            .map_err(|error| format!("[oms]: {error}"))?;
        oms.set_accounts(setup.accounts);
        let risk = RiskEngine::new(setup.risk).map_err(|error| format!("[risk]: {error}"))?;
        let monitor = RiskMonitor::new(&setup.monitor, instruments)
            .map_err(|error| format!("[monitor]: {error}"))?;
        let paper = PaperVenue::with_registry(setup.paper, &setup.registry)
            .map_err(|error| format!("[paper]: {error}"))?;
        let market = Market::new(&setup.registry)?;
        Ok(Self {
            market,
            oms,
            risk,
            monitor,
            paper,
            strategies: setup.strategies,
            mark: setup.mark,
            stream: setup.stream,
            seq: 0,
            clock: UnixNanos(0),
            accounts: setup.accounts,
            liquidation_ids: 0,
            stats: TradingStats::default(),
            order_events: Vec::with_capacity(256),
            venue_events: Vec::with_capacity(256),
            breaches: Vec::with_capacity(16),
            flatten: Vec::with_capacity(16),
            intents: Intents::new(),
            commands: Vec::with_capacity(64),
            notionals: vec![0.0; instruments],
            cause: RecordHeader::default(),
            refused_replace: None,
            live_accounts: setup.live_accounts,
            summary: setup.summary,
            venue_requests: Vec::with_capacity(64),
            last_var: vec![None; setup.accounts as usize],
            registry: setup.registry,
            risk_file: setup.risk_file,
            admin: setup.admin,
            limits_text: LimitsAssembler::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> TradingStats {
        self.stats
    }

    /// The order manager (read-only).
    pub fn orders(&self) -> &OrderManager {
        &self.oms
    }

    /// The risk engine (read-only).
    pub fn risk(&self) -> &RiskEngine {
        &self.risk
    }

    fn header(&mut self) -> RecordHeader {
        self.seq += 1;
        RecordHeader::derived(self.stream, self.seq, &self.cause)
    }

    fn emit<R: Record>(&mut self, record: &R, out: &mut Emitter<'_>) {
        let header = self.header();
        out.emit_record(header, record);
    }

    fn emit_risk(&mut self, event: &RiskEvent, out: &mut Emitter<'_>) {
        self.stats.risk_events += 1;
        self.emit(event, out);
    }

    // ------------------------------------------------------------------------------------
    // Time
    // ------------------------------------------------------------------------------------

    fn advance(&mut self, now: UnixNanos, out: &mut Emitter<'_>) {
        if now <= self.clock {
            return;
        }
        self.clock = now;
        self.paper.on_time(now, self.market.books());
        let events = &mut self.order_events;
        self.oms.on_time(now, &mut |event| events.push(event));
        if self.monitor.on_clock(now) {
            self.evaluate_var(now, out);
        }
    }

    fn evaluate_var(&mut self, now: UnixNanos, out: &mut Emitter<'_>) {
        for account in 0..self.accounts {
            let account = AccountId(account);
            let risk = &self.risk;
            let limits = risk.limits();
            let mut any = false;
            for (index, notional) in self.notionals.iter_mut().enumerate() {
                *notional = 0.0;
                let instrument = InstrumentId(index as u32);
                let (Ok(view), Some(params)) = (
                    risk.position(account, instrument),
                    limits.instruments.get(index),
                ) else {
                    continue;
                };
                if view.position.qty == 0 || view.mark <= 0 {
                    continue;
                }
                let raw = i128::from(view.position.qty) * i128::from(view.mark);
                *notional = params.to_value.apply(raw) as f64 / 1e8;
                any = true;
            }
            if !any {
                continue;
            }
            self.stats.var_evaluations += 1;
            let report = self.monitor.evaluate(account, &self.notionals, now);
            if let Some(slot) = self.last_var.get_mut(account.index()) {
                *slot = Some(VarView {
                    account: account.0,
                    ts: now,
                    parametric: report.var.parametric,
                    historical: report.var.historical,
                    limit: report.var_limit,
                    warming_up: report.var.warming_up,
                });
            }
            if let Some(event) = report.risk_event() {
                self.emit_risk(&event, out);
            }
            if let Some(breach) = report.breach {
                use aaiti_risk::monitor::BreachAction as VarAction;
                let state = match breach.action {
                    VarAction::Alert => None,
                    VarAction::ReduceOnly => Some(TradingState::ReduceOnly),
                    VarAction::Halt => Some(TradingState::Halted),
                };
                if let Some(state) = state
                    && self.risk.account(account).map(|a| a.trading_state) != Ok(state)
                {
                    self.set_state(Scope::Account(account), state, out);
                }
            }
        }
        self.risk.copy_correlations(self.monitor.correlation());
    }

    fn set_state(&mut self, scope: Scope, state: TradingState, out: &mut Emitter<'_>) {
        match self.risk.set_trading_state(scope, state) {
            Ok(event) => self.emit_risk(&event, out),
            Err(_) => self.stats.risk_errors += 1,
        }
        if state == TradingState::Halted {
            let account = match scope {
                Scope::Global => None,
                Scope::Account(account) => Some(account),
            };
            let now = self.clock;
            let events = &mut self.order_events;
            self.oms
                .cancel_all(account, now, &mut |event| events.push(event));
        }
    }

    // ------------------------------------------------------------------------------------
    // Market data
    // ------------------------------------------------------------------------------------

    fn on_delta(&mut self, delta: &BookDelta, now: UnixNanos) {
        if !self.market.on_delta(delta, now) {
            return;
        }
        self.paper
            .on_book_delta_record(delta, now, self.market.books());
        if delta.flags & BookDelta::FLAG_LAST == 0 {
            return;
        }
        let instrument = delta.instrument;
        let Some(state) = self.market.get(instrument) else {
            return;
        };
        if !state.valid() {
            return;
        }
        if let Some(mid) = state.mid() {
            let events = &mut self.order_events;
            self.oms
                .on_trigger_price(instrument, TriggerSource::Mid, mid, now, &mut |e| {
                    events.push(e);
                });
            if self.mark == MarkSource::Mid {
                self.mark_to(instrument, mid, now);
            }
        }
        for strategy in &mut self.strategies {
            strategy.on_book(&self.market, instrument, now, &mut self.intents);
        }
    }

    fn on_trade(&mut self, trade: &Trade, now: UnixNanos) {
        self.market.on_trade(trade, now);
        self.paper.on_trade_record(trade, now, self.market.books());
        if trade.price.0 <= 0 {
            return;
        }
        let events = &mut self.order_events;
        self.oms.on_trigger_price(
            trade.instrument,
            TriggerSource::LastTrade,
            trade.price,
            now,
            &mut |e| {
                events.push(e);
            },
        );
        if self.mark == MarkSource::Last {
            self.mark_to(trade.instrument, trade.price, now);
        }
        for strategy in &mut self.strategies {
            strategy.on_trade(&self.market, trade, now, &mut self.intents);
        }
    }

    fn mark_to(&mut self, instrument: InstrumentId, price: Price, now: UnixNanos) {
        if self
            .risk
            .on_mark(instrument, price, now, &mut self.breaches)
            .is_err()
        {
            self.stats.risk_errors += 1;
        }
        self.monitor.on_price_fixed(instrument, price, now);
    }

    fn on_feed_event(&mut self, event: &FeedEvent, now: UnixNanos) {
        self.market.on_feed_event(event);
        if FeedEventKind::try_from(event.kind) == Ok(FeedEventKind::BookValid) {
            self.paper
                .on_book_valid(event.instrument, now, self.market.books());
        }
    }

    fn on_control(&mut self, control: &Control, out: &mut Emitter<'_>) {
        let scope = if control.account == Control::ALL_ACCOUNTS {
            Scope::Global
        } else {
            Scope::Account(control.account)
        };
        match control.action() {
            Some(ControlAction::Halt) => self.set_state(scope, TradingState::Halted, out),
            Some(ControlAction::Resume) => {
                if let Scope::Account(account) = scope {
                    let _ = self.risk.reset_high_water_mark(account);
                }
                if matches!(scope, Scope::Global) {
                    let _ = self.risk.release_kill_switch(scope);
                }
                self.set_state(scope, TradingState::Active, out);
            }
            Some(ControlAction::RiskReport) => {
                self.answer_with(Self::risk_state);
                return;
            }
            Some(ControlAction::OrderStatus) => {
                self.answer_with(|stage| stage.order_status(control));
                return;
            }
            Some(ControlAction::LimitsChunk) => {
                match self.limits_text.push(control) {
                    Assembled::Partial => {}
                    Assembled::Complete(text) => {
                        let outcome = self.change_limits(&text, out);
                        if outcome.is_err() {
                            self.stats.limits_refused += 1;
                        }
                        self.answer(outcome);
                    }
                    Assembled::Broken(error) => {
                        self.stats.limits_refused += 1;
                        self.answer(Err(error));
                    }
                }
                return;
            }
            Some(ControlAction::KillSwitch) => {
                // `arg` 1: also flatten the positions.
                match self.risk.engage_kill_switch(scope, control.arg == 1) {
                    Ok(intent) => {
                        self.emit_risk(&intent.event, out);
                        let now = self.clock;
                        let events = &mut self.order_events;
                        for (account, _) in &intent.cancel {
                            self.oms
                                .cancel_all(Some(*account), now, &mut |e| events.push(e));
                        }
                        for order in &intent.flatten {
                            let command = self.liquidation_command(order);
                            self.commands.push((command, true));
                        }
                    }
                    Err(_) => self.stats.risk_errors += 1,
                }
            }
            _ => return,
        }
        let applied = control.action().map_or("", ControlAction::name);
        let account = (control.account != Control::ALL_ACCOUNTS).then_some(control.account.0);
        self.answer_with(|stage| {
            to_json(&stage.risk.report(stage.clock)).map(
                |risk| serde_json::json!({ "applied": applied, "account": account, "risk": risk }),
            )
        });
    }

    /// Answers the admin command being handled (not when it is replayed).
    fn answer(&mut self, reply: AdminReply) {
        self.answer_with(|_| reply);
    }

    /// Answers the admin command being handled with what `make` builds, which runs only
    /// when there is someone to answer (not for replayed commands nor other streams).
    fn answer_with(&mut self, make: impl FnOnce(&Self) -> AdminReply) {
        if self.cause.stream != crate::admin::ADMIN_STREAM {
            return;
        }
        self.stats.admin_commands += 1;
        if self.cause.flags & RecordHeader::FLAG_REPLAY != 0 {
            return;
        }
        if let Some(admin) = &self.admin {
            admin.answer(self.cause.seq, make(self));
        }
    }

    /// The risk state for the desk: limits, usage, trading states, the last VaR figures.
    fn risk_state(&self) -> AdminReply {
        let var: Vec<&VarView> = self.last_var.iter().flatten().collect();
        Ok(serde_json::json!({
            "engine_time_ns": self.clock.0,
            "risk": to_json(&self.risk.report(self.clock))?,
            "var": to_json(&var)?,
            "positions": to_json(&self.position_lines())?,
            "open_orders": self.oms.live_count(),
            "stats": to_json(&self.stats)?,
        }))
    }

    /// The run's outcome: order and fill counts, and per position the quantity and P&L in
    /// the instrument's quote asset (decimal numbers; `net` = realized + unrealized - fees).
    pub fn summary(&self) -> serde_json::Value {
        let mut positions = Vec::new();
        let mut net_total = 0.0;
        for line in self.position_lines() {
            let Some(instrument) = self.registry.get(InstrumentId(line.instrument)) else {
                continue;
            };
            let price = instrument.price_scale.factor() as f64;
            let qty = instrument.qty_scale.factor() as f64;
            let realized = line.realized as f64 / price;
            let unrealized = line.unrealized as f64 / price;
            let fees = line.fees as f64 / price;
            let net = realized + unrealized - fees;
            net_total += net;
            let account = self
                .risk_file
                .accounts
                .get(line.account as usize)
                .map_or_else(|| line.account.to_string(), |a| a.name.clone());
            positions.push(serde_json::json!({
                "account": account,
                "instrument": instrument.symbol,
                "quote": instrument.quote,
                "qty": line.qty as f64 / qty,
                "realized": realized,
                "unrealized": unrealized,
                "fees": fees,
                "net": net,
            }));
        }
        serde_json::json!({
            "orders": self.stats.orders_accepted,
            "rejected": self.stats.rejected_invalid + self.stats.rejected_risk
                + self.stats.rejected_venue,
            "fills": self.stats.fills,
            "signals": self.stats.signals,
            "positions": positions,
            "pnl_net": net_total,
        })
    }

    /// Every non-flat position in mantissas, for the desk's position reports.
    fn position_lines(&self) -> Vec<PositionLine> {
        let mut lines = Vec::new();
        for account in 0..self.accounts {
            for instrument in self.registry.instruments() {
                let Ok(view) = self.risk.position(AccountId(account), instrument.id) else {
                    continue;
                };
                let position = view.position;
                if position.qty == 0 && position.realized == 0 {
                    continue;
                }
                // Raw notionals are price × qty mantissas: back to the price scale.
                let unit = 10_i128.pow(u32::from(instrument.qty_scale.places()));
                let amount = |raw: i128| {
                    i64::try_from(raw / unit).unwrap_or(if raw < 0 { i64::MIN } else { i64::MAX })
                };
                lines.push(PositionLine {
                    account,
                    instrument: instrument.id.0,
                    qty: position.qty,
                    avg_entry: position.avg_entry(),
                    mark: view.mark,
                    realized: amount(position.realized),
                    unrealized: amount(view.unrealized),
                    fees: amount(position.fees),
                });
            }
        }
        lines
    }

    /// One order's state, by account and client order id (the `text` of the request).
    fn order_status(&self, control: &Control) -> AdminReply {
        let used = control
            .text
            .iter()
            .rposition(|&byte| byte != 0)
            .map_or(0, |last| last + 1);
        let order = if control.arg != 0 {
            self.oms
                .order(OrderId(control.arg))
                .filter(|order| order.account == control.account)
        } else {
            let id = aaiti_model::ClientOrderId::new(&control.text[..used])
                .map_err(|error| format!("client order id: {error}"))?;
            self.oms.find_by_client_id(control.account, &id)
        }
        .ok_or_else(|| "unknown order".to_owned())?;
        Ok(serde_json::json!({
            "order_id": order.id.0,
            "account": order.account.0,
            "instrument": order.instrument.0,
            "client_order_id": String::from_utf8_lossy(order.client_order_id.as_bytes()),
            "side": order.side.code(),
            "order_type": order.order_type.code(),
            "time_in_force": order.time_in_force.code(),
            "flags": order.flags.0,
            "expire_at": order.expire_at.0,
            "price": order.price.0,
            "stop_price": order.stop_price.0,
            "qty": order.qty.0,
            "cum_qty": order.cum_qty.0,
            "leaves_qty": order.leaves_qty().0,
            "avg_price": order.avg_price().0,
            "status": format!("{:?}", order.status),
            "pending": !matches!(order.pending, Pending::None),
        }))
    }

    /// Applies a limits change given as risk configuration text over the current one:
    /// tables merge key by key, arrays (`[[accounts]]`, `[[risk.instruments]]`) replace
    /// whole. All or nothing.
    fn change_limits(&mut self, text: &str, out: &mut Emitter<'_>) -> AdminReply {
        let merged = crate::admin::merge_risk_file(&self.risk_file, text)?;
        if merged.accounts.len() != self.risk_file.accounts.len()
            || merged
                .accounts
                .iter()
                .zip(&self.risk_file.accounts)
                .any(|(new, old)| new.name != old.name)
        {
            return Err(format!(
                "[[accounts]] must list the running accounts in order ({})",
                self.risk_file
                    .accounts
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let setup = aaiti_risk::compile(&merged.risk, &merged.accounts, &self.registry)
            .map_err(|error| error.to_string())?;
        let change = self
            .risk
            .replace_limits(setup.limits)
            .map_err(|error| error.to_string())?;
        self.risk_file = merged;
        for event in change.events() {
            self.emit_risk(&event, out);
        }
        tracing::info!(changed = change.diffs.len(), "risk limits changed");
        let amount = |value: i128| {
            if value == aaiti_risk::limits::NO_LIMIT {
                "none".to_owned()
            } else {
                value.to_string()
            }
        };
        let changed: Vec<serde_json::Value> = change
            .diffs
            .iter()
            .map(|d| {
                serde_json::json!({
                    "account": d.account,
                    "instrument": d.instrument,
                    "field": d.field,
                    "old": amount(d.old),
                    "new": amount(d.new),
                })
            })
            .collect();
        Ok(serde_json::json!({ "changed": changed }))
    }

    /// Journals a venue report the order manager refused.
    fn illegal_report(
        &mut self,
        account: AccountId,
        instrument: InstrumentId,
        error: Option<&crate::oms::IllegalTransition>,
        event: &VenueEvent,
        out: &mut Emitter<'_>,
    ) {
        self.stats.illegal_transitions += 1;
        let (kind, report) = match error {
            Some(error) => (error.index() as i64, error.event().code()),
            None => (0, venue_event_code(&event.kind)),
        };
        tracing::warn!(
            order = event.order_id.0,
            ?event.kind,
            kind = error.map_or("unknown_order", |e| e.name()),
            "venue report refused by the order manager"
        );
        let record = RiskEvent {
            kind: RiskEventKind::IllegalReport.code(),
            reason: RejectReason::None.code(),
            account,
            instrument,
            order_id: event.order_id,
            value: kind,
            limit: i64::from(report),
            ..RiskEvent::default()
        };
        self.emit_risk(&record, out);
    }

    fn liquidation_command(&mut self, order: &FlattenOrder) -> OrderCommand {
        self.liquidation_ids += 1;
        OrderCommand {
            action: OrderAction::New.code(),
            side: order.side.code(),
            order_type: OrderType::Market.code(),
            time_in_force: TimeInForce::Ioc.code(),
            flags: OrderFlags::REDUCE_ONLY.0,
            account: order.account,
            instrument: order.instrument,
            qty: order.qty,
            client_order_id: client_order_id("liquidation", self.liquidation_ids),
            ..OrderCommand::default()
        }
    }

    // ------------------------------------------------------------------------------------
    // Orders
    // ------------------------------------------------------------------------------------

    fn reference_price(&self, instrument: InstrumentId) -> Price {
        let Some(state) = self.market.get(instrument) else {
            return Price(0);
        };
        let preferred = match self.mark {
            MarkSource::Mid => state.mid().or(state.last_trade()),
            MarkSource::Last => state.last_trade().or(state.mid()),
        };
        preferred.unwrap_or(Price(0))
    }

    fn on_command(&mut self, command: &OrderCommand, liquidation: bool, out: &mut Emitter<'_>) {
        self.stats.commands += 1;
        let now = self.clock;
        if command.action() != Some(OrderAction::New) {
            let events = &mut self.order_events;
            let outcome = self.oms.on_command(command, now, &mut |e| events.push(e));
            if let CommandOutcome::SendReplace(id) = outcome {
                self.check_replace(id, out);
            }
            return;
        }
        let view = match self.oms.validate_new(command, now) {
            Ok(view) => view,
            Err(reason) => {
                self.stats.rejected_invalid += 1;
                let events = &mut self.order_events;
                self.oms
                    .reject_new(command, reason, &mut |e| events.push(e));
                return;
            }
        };
        let reference = self.reference_price(command.instrument);
        let mut price = command.price;
        if view.order_type == OrderType::Market || view.order_type == OrderType::Stop {
            // Market orders are checked at the reference price (their protection price).
            price = reference;
        }
        let order_id = self.oms.next_order_id();
        let request = NewOrder {
            account: command.account,
            instrument: command.instrument,
            order_id,
            side: view.side,
            order_type: view.order_type,
            price,
            qty: command.qty,
            flags: view.flags,
            reference_price: reference,
            liquidation,
        };
        if let Err(reject) = self.risk.check_new_order(&request, now) {
            self.stats.rejected_risk += 1;
            let event = reject.event(command.account, command.instrument, order_id);
            self.emit_risk(&event, out);
            let events = &mut self.order_events;
            self.oms
                .reject_new(command, reject.reason, &mut |e| events.push(e));
            return;
        }
        let events = &mut self.order_events;
        match self.oms.accept_new(&view, now, &mut |e| events.push(e)) {
            CommandOutcome::Route(id) => {
                self.stats.orders_accepted += 1;
                self.route(id);
            }
            CommandOutcome::Held(_) => self.stats.orders_accepted += 1,
            _ => {}
        }
    }

    /// A replace that adds quantity or moves the price is checked like a new order for its
    /// remaining quantity; a refused one is canceled-rejected by the venue path (the order
    /// manager gets the cancel reject, the order is unchanged).
    fn check_replace(&mut self, id: OrderId, out: &mut Emitter<'_>) {
        let Some(order) = self.oms.order(id) else {
            return;
        };
        let Pending::Replace(request) = order.pending else {
            return;
        };
        let check = NewOrder {
            account: order.account,
            instrument: order.instrument,
            order_id: id,
            side: order.side,
            order_type: order.venue_type(),
            price: request.price,
            qty: Qty(request.qty.0 - order.cum_qty.0),
            flags: order.flags,
            reference_price: self.reference_price(order.instrument),
            liquidation: false,
        };
        if let Err(reject) = self.risk.would_accept(&check, self.clock) {
            self.stats.rejected_risk += 1;
            let event = reject.event(order.account, order.instrument, id);
            self.emit_risk(&event, out);
            // Mark the request so `route_pending` answers it with a cancel reject.
            self.refused_replace = Some((id, reject.reason));
        }
    }

    /// Sends order `id` to its venue and reserves its risk.
    fn route(&mut self, id: OrderId) {
        let Some(order) = self.oms.order(id) else {
            return;
        };
        let leaves = order.leaves_qty();
        let venue_order = PaperOrder {
            order_id: id,
            account: order.account,
            instrument: order.instrument,
            side: order.side,
            order_type: order.venue_type(),
            price: order.price,
            qty: leaves,
            tif: order.time_in_force,
            post_only: order.flags.contains(OrderFlags::POST_ONLY),
            expire_at: order.expire_at,
        };
        let live = self.is_live(order.account);
        let stop_price = order.stop_price;
        let client_order_id = order.client_order_id;
        let reserve_price = if venue_order.order_type == OrderType::Market {
            self.reference_price(order.instrument)
        } else {
            order.price
        };
        if self
            .risk
            .on_order_accepted(
                order.account,
                order.instrument,
                id,
                order.side,
                reserve_price,
                leaves,
            )
            .is_err()
        {
            self.stats.risk_errors += 1;
        }
        if live {
            self.venue_requests.push(VenueRequest {
                action: VenueAction::New.code(),
                side: venue_order.side.code(),
                order_type: venue_order.order_type.code(),
                time_in_force: venue_order.tif.code(),
                flags: order_flags_bits(venue_order.post_only),
                account: venue_order.account,
                instrument: venue_order.instrument,
                order_id: id,
                price: venue_order.price,
                stop_price,
                qty: leaves,
                expire_at: venue_order.expire_at,
                venue: self.venue_of(venue_order.instrument),
                client_order_id,
                ..VenueRequest::default()
            });
            return;
        }
        self.paper
            .submit(venue_order, self.clock, self.market.books());
    }

    fn is_live(&self, account: AccountId) -> bool {
        self.live_accounts
            .get(account.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    fn venue_of(&self, instrument: InstrumentId) -> aaiti_model::VenueId {
        self.registry
            .get(instrument)
            .map_or(aaiti_model::VenueId(0), |i| i.venue)
    }

    /// Asks the live venue to cancel order `id`.
    fn cancel_live(&mut self, id: OrderId) {
        let Some(order) = self.oms.order(id) else {
            return;
        };
        let request = VenueRequest {
            action: VenueAction::Cancel.code(),
            account: order.account,
            instrument: order.instrument,
            order_id: id,
            venue: self.venue_of(order.instrument),
            client_order_id: order.client_order_id,
            ..VenueRequest::default()
        };
        self.venue_requests.push(request);
    }

    /// Writes the queued live venue requests (the router sends them once journaled).
    fn flush_venue_requests(&mut self, out: &mut Emitter<'_>) {
        let requests = std::mem::take(&mut self.venue_requests);
        for request in &requests {
            self.stats.venue_requests += 1;
            self.emit(request, out);
        }
        self.venue_requests = requests;
        self.venue_requests.clear();
    }

    /// Emits the queued order events and acts on them: triggered stops go to the venue,
    /// pending cancels and replaces are sent, strategies hear about their orders.
    fn flush_order_events(&mut self, out: &mut Emitter<'_>) {
        let mut index = 0;
        while index < self.order_events.len() {
            let event = self.order_events[index];
            index += 1;
            self.stats.order_events += 1;
            self.emit(&event, out);
            match OrderEventKind::try_from(event.kind) {
                Ok(OrderEventKind::Triggered) => self.route(event.order_id),
                Ok(OrderEventKind::PendingCancel) => {
                    if self.is_live(event.account) {
                        self.cancel_live(event.order_id);
                    } else {
                        self.paper
                            .cancel(event.order_id, self.clock, self.market.books());
                    }
                }
                Ok(OrderEventKind::PendingReplace) => self.send_replace(event.order_id),
                Ok(OrderEventKind::Rejected) if event.order_id.0 != 0 => {
                    // A routed order the venue refused: already counted at the venue event.
                }
                _ => {}
            }
            for strategy in &mut self.strategies {
                if strategy.account() == event.account {
                    strategy.on_order_event(&self.market, &event, self.clock, &mut self.intents);
                }
            }
        }
        self.order_events.clear();
    }

    fn send_replace(&mut self, id: OrderId) {
        if let Some((refused, reason)) = self.refused_replace
            && refused == id
        {
            self.refused_replace = None;
            let now = self.clock;
            let events = &mut self.order_events;
            if self
                .oms
                .on_cancel_rejected(id, reason, now, &mut |e| events.push(e))
                .is_err()
            {
                self.stats.illegal_transitions += 1;
            }
            return;
        }
        let Some(order) = self.oms.order(id) else {
            return;
        };
        if self.is_live(order.account) {
            // Binance spot has no in-place replace (see `crate::venues`).
            let now = self.clock;
            let events = &mut self.order_events;
            if self
                .oms
                .on_cancel_rejected(id, RejectReason::UnsupportedOrder, now, &mut |e| {
                    events.push(e)
                })
                .is_err()
            {
                self.stats.illegal_transitions += 1;
            }
            return;
        }
        if let Pending::Replace(request) = order.pending {
            self.paper.replace(
                id,
                request.price,
                request.qty,
                self.clock,
                self.market.books(),
            );
        }
    }

    fn on_venue_event(&mut self, event: &VenueEvent, out: &mut Emitter<'_>) {
        let now = self.clock;
        let id = event.order_id;
        let Some((account, instrument, side)) = self
            .oms
            .order(id)
            .map(|order| (order.account, order.instrument, order.side))
        else {
            let all = (AccountId(u32::MAX), InstrumentId(u32::MAX));
            self.illegal_report(all.0, all.1, None, event, out);
            return;
        };
        let events = &mut self.order_events;
        let mut push = |e| events.push(e);
        let result = match event.kind {
            VenueEventKind::Accepted => self.oms.on_venue_ack(id, now, &mut push),
            VenueEventKind::Rejected { reason } => {
                self.stats.rejected_venue += 1;
                let result = self.oms.on_venue_rejected(id, reason, now, &mut push);
                let _ = self.risk.on_order_done(account, id);
                result
            }
            VenueEventKind::Fill {
                exec_id,
                price,
                qty,
                liquidity,
                fee,
                ..
            } => {
                let fill = Fill {
                    exec_id,
                    price,
                    qty,
                    liquidity: match liquidity {
                        aaiti_gateway::paper::Liquidity::Maker => Liquidity::Maker,
                        aaiti_gateway::paper::Liquidity::Taker => Liquidity::Taker,
                    },
                    fee,
                };
                let result = self.oms.on_venue_fill(id, &fill, now, &mut push);
                if result.is_ok() {
                    self.stats.fills += 1;
                    let risk_fill = aaiti_risk::Fill {
                        account,
                        instrument,
                        order_id: id,
                        side,
                        price,
                        qty,
                        fee,
                        ts: now,
                    };
                    if self.risk.on_fill(&risk_fill, &mut self.breaches).is_err() {
                        self.stats.risk_errors += 1;
                    }
                }
                result
            }
            VenueEventKind::Canceled { .. } => {
                let result = self.oms.on_venue_canceled(id, now, &mut push);
                let _ = self.risk.on_order_done(account, id);
                result
            }
            VenueEventKind::Expired { .. } => {
                let result = self.oms.on_venue_expired(id, now, &mut push);
                let _ = self.risk.on_order_done(account, id);
                result
            }
            VenueEventKind::Replaced { price, leaves, .. } => {
                let result = self.oms.on_venue_replaced(id, now, &mut push);
                let _ = self.risk.on_order_done(account, id);
                if leaves.0 > 0 {
                    let _ = self
                        .risk
                        .on_order_accepted(account, instrument, id, side, price, leaves);
                }
                result
            }
            VenueEventKind::CancelRejected { reason } => {
                self.oms.on_cancel_rejected(id, reason, now, &mut push)
            }
        };
        if let Err(error) = result {
            self.illegal_report(account, instrument, Some(&error), event, out);
        }
    }

    /// A live venue's journaled report: the same path as the paper venue's events.
    fn on_venue_report(&mut self, report: &VenueReport, out: &mut Emitter<'_>) {
        self.stats.venue_reports += 1;
        match crate::venues::report_event(report) {
            Some(event) => self.on_venue_event(&event, out),
            None => self.stats.illegal_transitions += 1,
        }
    }

    fn on_breaches(&mut self, out: &mut Emitter<'_>) {
        while let Some(breach) = self.breaches.pop() {
            self.emit_risk(&breach.event, out);
            let account = breach.event.account;
            match breach.action {
                BreachAction::Alert | BreachAction::ReduceOnly => {}
                BreachAction::Halt => {
                    let now = self.clock;
                    let events = &mut self.order_events;
                    self.oms
                        .cancel_all(Some(account), now, &mut |e| events.push(e));
                }
                BreachAction::Flatten { instrument } => {
                    let now = self.clock;
                    let events = &mut self.order_events;
                    self.oms
                        .cancel_all(Some(account), now, &mut |e| events.push(e));
                    self.flatten.clear();
                    if self
                        .risk
                        .flatten_orders(account, instrument, &mut self.flatten)
                        .is_ok()
                    {
                        for index in 0..self.flatten.len() {
                            let order = self.flatten[index];
                            let command = self.liquidation_command(&order);
                            self.commands.push((command, true));
                        }
                    }
                }
            }
        }
    }

    /// Runs the internal loop until nothing is queued.
    fn settle(&mut self, out: &mut Emitter<'_>) {
        for _ in 0..MAX_ROUNDS {
            let mut busy = false;
            if !self.intents.is_empty() {
                busy = true;
                for command in self.intents.drain() {
                    self.commands.push((command, false));
                }
            }
            if !self.commands.is_empty() {
                busy = true;
                let commands = std::mem::take(&mut self.commands);
                for (command, liquidation) in &commands {
                    // Strategy and liquidation orders are journaled as commands too.
                    self.emit(command, out);
                    self.on_command(command, *liquidation, out);
                }
                let mut commands = commands;
                commands.clear();
                if self.commands.is_empty() {
                    self.commands = commands;
                }
            }
            self.venue_events.clear();
            let venue_events = &mut self.venue_events;
            self.paper.drain(|event| venue_events.push(event));
            if !self.venue_events.is_empty() {
                busy = true;
                let events = std::mem::take(&mut self.venue_events);
                for event in &events {
                    self.on_venue_event(event, out);
                }
                self.venue_events = events;
                self.venue_events.clear();
            }
            if !self.breaches.is_empty() {
                busy = true;
                self.on_breaches(out);
            }
            if !self.order_events.is_empty() {
                busy = true;
                self.flush_order_events(out);
            }
            if !self.venue_requests.is_empty() {
                self.flush_venue_requests(out);
            }
            if !busy {
                break;
            }
        }
        self.stats.intents_dropped = self.intents.dropped();
    }
}

/// What a trading snapshot section holds, for audits and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TradingView {
    /// Non-zero positions: account, instrument, signed quantity mantissa.
    pub positions: Vec<(u32, u32, i64)>,
    /// Working orders: id, cumulative and leaves quantity mantissas.
    pub open_orders: Vec<(u64, i64, i64)>,
    /// Counters.
    pub stats: TradingStats,
}

impl TradingView {
    /// Decodes a trading stage's snapshot section.
    ///
    /// # Errors
    ///
    /// Not a trading section of this build.
    pub fn from_section(bytes: &[u8]) -> Result<Self, String> {
        let saved: SavedTrading =
            postcard::from_bytes(bytes).map_err(|error| format!("trading state: {error}"))?;
        let oms = OrderManager::restore(&saved.oms).map_err(|error| error.to_string())?;
        let mut view = Self {
            stats: saved.stats,
            ..Self::default()
        };
        let accounts = saved.risk.limits().accounts.len();
        let instruments = saved.risk.limits().instruments.len();
        for account in 0..accounts {
            for instrument in 0..instruments {
                if let Ok(position) = saved
                    .risk
                    .position(AccountId(account as u32), InstrumentId(instrument as u32))
                    && position.position.qty != 0
                {
                    view.positions
                        .push((account as u32, instrument as u32, position.position.qty));
                }
            }
            for order in oms.open_orders(AccountId(account as u32)) {
                view.open_orders
                    .push((order.id.0, order.cum_qty.0, order.leaves_qty().0));
            }
        }
        view.open_orders.sort_unstable();
        Ok(view)
    }
}

impl Stage for TradingStage {
    fn name(&self) -> &str {
        "trading"
    }

    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        out.emit(event);
        if event.header.stream == crate::runtime::RUNTIME_STREAM {
            return;
        }
        self.cause = event.header;
        // Requests from the desk and admins carry ts_event 0: they happen at the engine's
        // current time (a wall-clock stamp would jump a replay's clock forward).
        if self.cause.ts_event.0 == 0 {
            self.cause.ts_event = self.clock;
        }
        let now = self.cause.ts_event;
        self.advance(now, out);
        let now = self.clock;
        match RecordKind::try_from(event.header.kind) {
            Ok(RecordKind::BookDelta) => {
                if let Some(delta) = event.payload::<BookDelta>() {
                    self.on_delta(&{ *delta }, now);
                }
            }
            Ok(RecordKind::Trade) => {
                if let Some(trade) = event.payload::<Trade>() {
                    self.on_trade(&{ *trade }, now);
                }
            }
            Ok(RecordKind::FeedEvent) => {
                if let Some(feed_event) = event.payload::<FeedEvent>() {
                    self.on_feed_event(&{ *feed_event }, now);
                }
            }
            Ok(RecordKind::OrderCommand) => {
                if let Some(command) = event.payload::<OrderCommand>() {
                    self.on_command(&{ *command }, false, out);
                }
            }
            Ok(RecordKind::Control) => {
                if let Some(control) = event.payload::<Control>() {
                    self.on_control(&{ *control }, out);
                }
            }
            Ok(RecordKind::Signal) => {
                if let Some(signal) = event.payload::<Signal>() {
                    let signal = *signal;
                    self.stats.signals += 1;
                    for strategy in &mut self.strategies {
                        strategy.on_signal(&self.market, &signal, now, &mut self.intents);
                    }
                }
            }
            Ok(RecordKind::VenueReport) => {
                if let Some(report) = event.payload::<VenueReport>() {
                    self.on_venue_report(&{ *report }, out);
                }
            }
            _ => {}
        }
        self.settle(out);
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        let saved = SavedTrading {
            seq: self.seq,
            clock: self.clock,
            liquidation_ids: self.liquidation_ids,
            stats: self.stats,
            market: self.market.snapshot()?,
            oms: self.oms.snapshot().map_err(|error| error.to_string())?,
            risk: self.risk.clone(),
            monitor: self.monitor.clone(),
            paper: self.paper.clone(),
            strategies: self
                .strategies
                .iter()
                .map(|s| Ok((s.name().to_owned(), s.snapshot()?)))
                .collect::<Result<_, String>>()?,
            risk_file: self.risk_file.clone(),
            last_var: self.last_var.clone(),
        };
        postcard::to_stdvec(&saved)
            .map(Some)
            .map_err(|error| error.to_string())
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let saved: SavedTrading =
            postcard::from_bytes(state).map_err(|error| format!("trading state: {error}"))?;
        let oms = OrderManager::restore(&saved.oms).map_err(|error| error.to_string())?;
        if saved.strategies.len() != self.strategies.len()
            || saved
                .strategies
                .iter()
                .zip(&self.strategies)
                .any(|((name, _), strategy)| name != strategy.name())
        {
            return Err("the configured strategies differ from the snapshot's".to_owned());
        }
        self.market.restore(&saved.market)?;
        for ((_, bytes), strategy) in saved.strategies.iter().zip(&mut self.strategies) {
            strategy.restore(bytes)?;
        }
        self.oms = oms;
        self.risk = saved.risk;
        self.monitor = saved.monitor;
        self.paper = saved.paper;
        self.seq = saved.seq;
        self.clock = saved.clock;
        self.liquidation_ids = saved.liquidation_ids;
        self.stats = saved.stats;
        self.risk_file = saved.risk_file;
        self.last_var = saved.last_var;
        Ok(())
    }

    fn on_shutdown(&mut self, _out: &mut Emitter<'_>) {
        if let Some(slot) = &self.summary {
            let summary = self.summary();
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(summary);
        }
    }

    fn report(&self) -> Vec<(String, u64)> {
        let s = self.stats;
        let mut counters: Vec<(String, u64)> = [
            ("commands", s.commands),
            ("orders_accepted", s.orders_accepted),
            ("rejected_invalid", s.rejected_invalid),
            ("rejected_risk", s.rejected_risk),
            ("rejected_venue", s.rejected_venue),
            ("fills", s.fills),
            ("order_events", s.order_events),
            ("risk_events", s.risk_events),
            ("illegal_transitions", s.illegal_transitions),
            ("risk_errors", s.risk_errors),
            ("var_evaluations", s.var_evaluations),
            ("intents_dropped", s.intents_dropped),
            ("admin_commands", s.admin_commands),
            ("limits_refused", s.limits_refused),
            ("venue_requests", s.venue_requests),
            ("venue_reports", s.venue_reports),
            ("signals", s.signals),
            ("open_orders", self.oms.live_count() as u64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for strategy in &self.strategies {
            for (name, value) in strategy.report() {
                counters.push((format!("{}.{name}", strategy.name()), value));
            }
        }
        counters
    }
}
