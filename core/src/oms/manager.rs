//! [`OrderManager`]: the order table, its indices and every transition.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, VecDeque};

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, InstrumentRegistry, OrderAction, OrderCommand,
    OrderEvent, OrderEventKind, OrderFlags, OrderId, OrderType, Price, Qty, RejectReason, Side,
    TimeInForce, UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::config::{ExpiryMode, OmsConfig, TriggerSource};
use super::error::{IllegalTransition, InvariantViolation, OmsConfigError, VenueEvent};
use super::order::{
    Deferred, Fill, Links, NIL, Order, OrderStatus, Pending, PriorityEffect, ReplaceRequest,
};
use super::stops::{StopBook, StopEntry};
use crate::hash::{FixedMap, FixedSet};

/// Number of [`RejectReason`] codes counted (codes are below 64).
const REJECT_CODES: usize = 64;

/// The trading rules of one instrument the manager checks, copied from the registry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Rules {
    /// Tick size (price mantissa), at least 1.
    pub(super) tick: i64,
    /// Lot size (quantity mantissa), at least 1.
    pub(super) lot: i64,
    /// Minimum notional × 10^qty_scale: comparable with `price × qty` mantissa products.
    pub(super) min_notional_scaled: i128,
}

/// Head, tail and length of one account's open-order list.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ListEnds {
    pub(super) head: u32,
    pub(super) tail: u32,
    pub(super) len: u32,
}

impl ListEnds {
    pub(super) const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        len: 0,
    };
}

/// An order's Day/GTD expiry in the queue. Ordered by time, then id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct ExpiryEntry {
    pub(super) at: UnixNanos,
    pub(super) id: OrderId,
}

/// Event and error counts, for the engine's report. Every count only grows (until the
/// manager is rebuilt); they are part of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OmsCounters {
    /// Commands given to [`OrderManager::on_command`].
    pub commands: u64,
    /// Orders created.
    pub orders_created: u64,
    /// New orders rejected (validation, risk via [`OrderManager::reject_new`]).
    pub new_rejected: u64,
    /// Cancel commands.
    pub cancel_requests: u64,
    /// Replace commands.
    pub replace_requests: u64,
    /// Cancel, replace and status commands rejected by the manager.
    pub requests_rejected: u64,
    /// Venue acknowledgements applied.
    pub acks: u64,
    /// Fills applied.
    pub fills: u64,
    /// Orders completely filled.
    pub filled: u64,
    /// Orders canceled (by the venue or locally).
    pub canceled: u64,
    /// Orders expired.
    pub expired: u64,
    /// Orders rejected by the venue.
    pub venue_rejected: u64,
    /// Replaces applied (confirmed, or local for armed stops).
    pub replaced: u64,
    /// Cancel/replace rejects from the venue.
    pub cancel_rejected: u64,
    /// Cancel rejects for orders already done and retired (ignored, benign).
    pub late_cancel_rejects: u64,
    /// Stops triggered.
    pub triggered: u64,
    /// Cancels the manager requested because an order's expiry time came.
    pub expiry_cancels: u64,
    /// Of those, how many the venue rejected (the order kept working past its time).
    pub expiry_cancel_rejected: u64,
    /// Done orders dropped from memory.
    pub retired: u64,
    /// Illegal venue transitions (all kinds).
    pub illegal: u64,
    /// Illegal transitions by [`IllegalTransition::index`].
    pub illegal_by_kind: [u64; IllegalTransition::KINDS],
    /// Rejects of every kind (new, cancel, replace, venue) by [`RejectReason`] code.
    pub rejects_by_reason: Vec<u64>,
}

impl Default for OmsCounters {
    fn default() -> Self {
        Self {
            commands: 0,
            orders_created: 0,
            new_rejected: 0,
            cancel_requests: 0,
            replace_requests: 0,
            requests_rejected: 0,
            acks: 0,
            fills: 0,
            filled: 0,
            canceled: 0,
            expired: 0,
            venue_rejected: 0,
            replaced: 0,
            cancel_rejected: 0,
            late_cancel_rejects: 0,
            triggered: 0,
            expiry_cancels: 0,
            expiry_cancel_rejected: 0,
            retired: 0,
            illegal: 0,
            illegal_by_kind: [0; IllegalTransition::KINDS],
            rejects_by_reason: vec![0; REJECT_CODES],
        }
    }
}

impl OmsCounters {
    /// Rejects counted with `reason`.
    pub fn rejects(&self, reason: RejectReason) -> u64 {
        self.rejects_by_reason
            .get(usize::from(reason.code()))
            .copied()
            .unwrap_or(0)
    }

    fn count_reject(&mut self, reason: RejectReason) {
        if let Some(count) = self.rejects_by_reason.get_mut(usize::from(reason.code())) {
            *count += 1;
        }
    }
}

/// What the engine must do after a command (or [`OrderManager::accept_new`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// An order was created (or a held stop triggered at once): send it to the venue as
    /// [`Order::venue_type`].
    Route(OrderId),
    /// A stop order was created and is held until its trigger price trades.
    Held(OrderId),
    /// A cancel was requested (`PendingCancel` emitted): send it to the venue.
    SendCancel(OrderId),
    /// A replace was requested (`PendingReplace` emitted): send it to the venue with the
    /// values in the order's [`Pending::Replace`].
    SendReplace(OrderId),
    /// Handled locally (an armed stop canceled or replaced): nothing to send.
    Done(OrderId),
    /// Answer to a status command; no event is emitted.
    Status(OrderId, OrderStatus),
    /// Rejected with this reason. A `Rejected` (new orders) or `CancelRejected` (cancel and
    /// replace) event was emitted; status commands emit nothing.
    Rejected(RejectReason),
}

/// A new order that passed validation: what the risk check sees, and the only way to
/// create an order ([`OrderManager::accept_new`]). Built by [`OrderManager::validate_new`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::manual_non_exhaustive,
    reason = "the engine is in this crate, where #[non_exhaustive] would not stop it from \
              building an unvalidated view; the private field does"
)]
pub struct NewOrderView {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Flags.
    pub flags: OrderFlags,
    /// Limit price (0 for Market and Stop).
    pub price: Price,
    /// Stop price (0 for Market and Limit).
    pub stop_price: Price,
    /// Quantity.
    pub qty: Qty,
    /// Expiry: the command's for GTD, the next session end for Day, else 0.
    pub expire_at: UnixNanos,
    /// Client order id.
    pub client_order_id: ClientOrderId,
    /// Only [`OrderManager::validate_new`] builds views.
    _private: (),
}

/// The order manager: every order's lifecycle, deterministic and without I/O.
///
/// See the [module documentation](super) for the state machine, the call sequence and the
/// policies. The whole state is `Serialize`/`Deserialize` (see [`OrderManager::snapshot`]).
#[derive(Debug)]
pub struct OrderManager {
    pub(super) config: OmsConfig,
    pub(super) rules: Vec<Rules>,
    pub(super) next_order_id: u64,
    pub(super) slots: Vec<Option<Order>>,
    pub(super) free: Vec<u32>,
    pub(super) done: VecDeque<u32>,
    pub(super) lists: Vec<ListEnds>,
    pub(super) stops: Vec<StopBook>,
    pub(super) last_trigger: Vec<Price>,
    pub(super) expiry: BinaryHeap<Reverse<ExpiryEntry>>,
    pub(super) expiry_stale: u64,
    pub(super) live: u32,
    pub(super) counters: OmsCounters,
    pub(super) by_id: FixedMap<OrderId, u32>,
    pub(super) by_client_id: FixedMap<(AccountId, ClientOrderId), OrderId>,
    pub(super) exec_ids: FixedSet<(OrderId, u64)>,
}

/// The order in `slot`, borrowing only the table (so other fields stay usable).
#[inline]
fn slot_mut(slots: &mut [Option<Order>], slot: u32) -> Option<&mut Order> {
    slots.get_mut(slot as usize).and_then(Option::as_mut)
}

/// Builds the event describing `order` after a change of kind `kind`.
#[inline]
fn event(order: &Order, kind: OrderEventKind) -> OrderEvent {
    OrderEvent {
        kind: kind.code(),
        side: order.side.code(),
        liquidity: 0,
        _pad: 0,
        reject_reason: RejectReason::None.code(),
        _pad2: 0,
        account: order.account,
        instrument: order.instrument,
        order_id: order.id,
        exec_id: 0,
        price: order.price,
        last_price: Price::ZERO,
        last_qty: Qty::ZERO,
        cum_qty: order.cum_qty,
        leaves_qty: order.leaves_qty(),
        avg_price: order.avg_price(),
        fee: 0,
        client_order_id: order.client_order_id,
    }
}

/// The event answering a command that names no order we can describe.
fn command_event(cmd: &OrderCommand, kind: OrderEventKind, reason: RejectReason) -> OrderEvent {
    OrderEvent {
        kind: kind.code(),
        // The record format needs a valid side; a command with a bad side code says Buy.
        side: cmd.side().unwrap_or(Side::Buy).code(),
        reject_reason: reason.code(),
        account: cmd.account,
        instrument: cmd.instrument,
        order_id: cmd.order_id,
        price: cmd.price,
        client_order_id: cmd.client_order_id,
        ..OrderEvent::default()
    }
}

impl OrderManager {
    /// Snapshot format version (bumped when the serialized layout changes).
    pub const SNAPSHOT_VERSION: u32 = 1;

    /// A manager for the instruments of `instruments` (ids and trading rules are copied).
    ///
    /// # Errors
    ///
    /// The configuration is invalid ([`OmsConfig::validate`]).
    pub fn new(
        config: OmsConfig,
        instruments: &InstrumentRegistry,
    ) -> Result<Self, OmsConfigError> {
        config.validate()?;
        let rules = instruments
            .instruments()
            .iter()
            .map(|i| Rules {
                tick: i.tick_size.0.max(1),
                lot: i.lot_size.0.max(1),
                min_notional_scaled: i128::from(i.min_notional.0.max(0))
                    * i128::from(i.qty_scale.factor()),
            })
            .collect::<Vec<_>>();
        Ok(Self::from_parts(config, rules))
    }

    /// An empty manager with its tables allocated.
    pub(super) fn from_parts(config: OmsConfig, rules: Vec<Rules>) -> Self {
        let slot_capacity = (config.max_live_orders as usize) + (config.done_retention as usize);
        let instruments = rules.len();
        let stops_capacity = config.stops_capacity as usize;
        let mut by_id = FixedMap::default();
        by_id.reserve(slot_capacity);
        let mut by_client_id = FixedMap::default();
        by_client_id.reserve(config.session_orders_capacity as usize);
        let mut exec_ids = FixedSet::default();
        exec_ids.reserve(config.session_fills_capacity as usize);
        Self {
            rules,
            next_order_id: 1,
            slots: Vec::with_capacity(slot_capacity),
            free: Vec::with_capacity(slot_capacity),
            done: VecDeque::with_capacity(config.done_retention as usize + 1),
            lists: vec![ListEnds::EMPTY; config.accounts as usize],
            stops: (0..instruments)
                .map(|_| StopBook::with_capacity(stops_capacity))
                .collect(),
            last_trigger: vec![Price::ZERO; instruments],
            expiry: BinaryHeap::with_capacity(config.max_live_orders as usize),
            expiry_stale: 0,
            live: 0,
            counters: OmsCounters::default(),
            by_id,
            by_client_id,
            exec_ids,
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OmsConfig {
        &self.config
    }

    /// Makes accounts `0..count` known (it only ever grows the set; a smaller `count` is
    /// ignored because open orders may belong to those accounts).
    pub fn set_accounts(&mut self, count: u32) {
        if count as usize > self.lists.len() {
            self.lists.resize(count as usize, ListEnds::EMPTY);
            self.config.accounts = count;
        }
    }

    /// True if `account` may trade.
    #[inline]
    pub fn is_known_account(&self, account: AccountId) -> bool {
        account.index() < self.lists.len()
    }

    // -----------------------------------------------------------------------------------
    // Commands
    // -----------------------------------------------------------------------------------

    /// Applies a client command: New (validate, then create without a risk check — use
    /// [`validate_new`](Self::validate_new) / [`accept_new`](Self::accept_new) to run risk in
    /// between), Cancel, Replace or Status. Events go to `out`; the outcome says what to send
    /// to the venue. Never panics; a bad command changes no order.
    pub fn on_command(
        &mut self,
        cmd: &OrderCommand,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        self.counters.commands += 1;
        match cmd.action() {
            Some(OrderAction::New) => match self.validate_new(cmd, now) {
                Ok(view) => self.accept_new(&view, now, out),
                Err(reason) => {
                    self.reject_new(cmd, reason, out);
                    CommandOutcome::Rejected(reason)
                }
            },
            Some(OrderAction::Cancel) => self.request_cancel(cmd, now, out),
            Some(OrderAction::Replace) => self.request_replace(cmd, now, out),
            Some(OrderAction::Status) => match self.resolve(cmd) {
                Ok(slot) => match self.at(slot) {
                    Some(order) => CommandOutcome::Status(order.id, order.status),
                    None => self.reject_status(RejectReason::UnknownOrder),
                },
                Err(reason) => self.reject_status(reason),
            },
            None => {
                self.reject_new(cmd, RejectReason::UnsupportedOrder, out);
                CommandOutcome::Rejected(RejectReason::UnsupportedOrder)
            }
        }
    }

    fn reject_status(&mut self, reason: RejectReason) -> CommandOutcome {
        self.counters.requests_rejected += 1;
        self.counters.count_reject(reason);
        CommandOutcome::Rejected(reason)
    }

    /// Validates a New command without changing anything. Checks, in this order: action,
    /// account (`UnknownAccount`), instrument (`UnknownInstrument`), side/type/time-in-force
    /// codes and flag bits (`UnsupportedOrder`), quantity (`InvalidQuantity`: not positive or
    /// off lot; `MaxOrderQty`: above `max_order_lots`), prices (`InvalidPrice`: a required
    /// price missing, non-positive, off tick or above `max_price_ticks`, or a price given
    /// that the type does not use), combinations (`UnsupportedOrder`: post-only on
    /// market/stop or with IOC/FOK, FOK stops, GTD without a future `expire_at`,
    /// `expire_at` on other time in force), minimum notional (`BelowMinNotional`, on the
    /// limit price, else the stop price; market orders are left to risk), client order id
    /// (`DuplicateClientOrderId`), capacity (`MaxOpenOrders`).
    ///
    /// # Errors
    ///
    /// The first failed check's reason.
    pub fn validate_new(
        &self,
        cmd: &OrderCommand,
        now: UnixNanos,
    ) -> Result<NewOrderView, RejectReason> {
        use RejectReason as R;
        if cmd.action() != Some(OrderAction::New) {
            return Err(R::UnsupportedOrder);
        }
        if !self.is_known_account(cmd.account) {
            return Err(R::UnknownAccount);
        }
        let rules = self
            .rules
            .get(cmd.instrument.index())
            .ok_or(R::UnknownInstrument)?;
        let (Some(side), Some(order_type), Some(time_in_force)) =
            (cmd.side(), cmd.order_type(), cmd.time_in_force())
        else {
            return Err(R::UnsupportedOrder);
        };
        let flags = cmd.flags();
        if flags.has_unknown_bits() {
            return Err(R::UnsupportedOrder);
        }
        self.check_qty(rules, cmd.qty)?;
        self.check_prices(rules, order_type, cmd.price, cmd.stop_price)?;
        check_combination(order_type, time_in_force, flags)?;
        let expire_at = match time_in_force {
            TimeInForce::Gtd if cmd.expire_at > now => cmd.expire_at,
            TimeInForce::Gtd => return Err(R::UnsupportedOrder),
            _ if cmd.expire_at.0 != 0 => return Err(R::UnsupportedOrder),
            TimeInForce::Day => UnixNanos(self.config.day_expiry(now.0)),
            _ => UnixNanos::ZERO,
        };
        check_min_notional(rules, order_type, cmd.price, cmd.stop_price, cmd.qty)?;
        if self.client_id_taken(cmd.account, &cmd.client_order_id) {
            return Err(R::DuplicateClientOrderId);
        }
        if self.live >= self.config.max_live_orders {
            return Err(R::MaxOpenOrders);
        }
        Ok(NewOrderView {
            account: cmd.account,
            instrument: cmd.instrument,
            side,
            order_type,
            time_in_force,
            flags,
            price: cmd.price,
            stop_price: cmd.stop_price,
            qty: cmd.qty,
            expire_at,
            client_order_id: cmd.client_order_id,
            _private: (),
        })
    }

    /// Emits the `Rejected` event for a New command rejected by validation or by risk and
    /// counts it. Nothing else changes (no order id is used).
    pub fn reject_new(
        &mut self,
        cmd: &OrderCommand,
        reason: RejectReason,
        out: &mut impl FnMut(OrderEvent),
    ) {
        self.counters.new_rejected += 1;
        self.counters.count_reject(reason);
        out(command_event(cmd, OrderEventKind::Rejected, reason));
    }

    /// Creates the order `view` describes (after [`validate_new`](Self::validate_new) and the
    /// risk check): emits `PendingNew` and returns [`CommandOutcome::Route`] (send it), or
    /// [`CommandOutcome::Held`] for a stop (held until triggered; if the last trigger price
    /// already triggers it, it triggers at once: `Triggered` is emitted and the outcome is
    /// `Route`). The duplicate client id, account and capacity checks are repeated because the
    /// state may have changed since validation; a failure emits `Rejected`.
    pub fn accept_new(
        &mut self,
        view: &NewOrderView,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        let recheck = if !self.is_known_account(view.account) {
            Err(RejectReason::UnknownAccount)
        } else if view.instrument.index() >= self.rules.len() {
            Err(RejectReason::UnknownInstrument)
        } else if self.live >= self.config.max_live_orders {
            Err(RejectReason::MaxOpenOrders)
        } else {
            Ok(())
        };
        let slot = recheck
            .and_then(|()| self.alloc_slot().ok_or(RejectReason::MaxOpenOrders))
            .and_then(|slot| {
                // One hash and probe both checks and reserves the client id.
                if view.client_order_id.is_none() {
                    return Ok(slot);
                }
                match self
                    .by_client_id
                    .entry((view.account, view.client_order_id))
                {
                    Entry::Vacant(entry) => {
                        entry.insert(OrderId(self.next_order_id));
                        Ok(slot)
                    }
                    Entry::Occupied(_) => {
                        self.free.push(slot);
                        Err(RejectReason::DuplicateClientOrderId)
                    }
                }
            });
        let slot = match slot {
            Ok(slot) => slot,
            Err(reason) => {
                self.counters.new_rejected += 1;
                self.counters.count_reject(reason);
                out(OrderEvent {
                    kind: OrderEventKind::Rejected.code(),
                    side: view.side.code(),
                    reject_reason: reason.code(),
                    account: view.account,
                    instrument: view.instrument,
                    price: view.price,
                    client_order_id: view.client_order_id,
                    ..OrderEvent::default()
                });
                return CommandOutcome::Rejected(reason);
            }
        };
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        let is_stop = view.order_type.has_stop_price();
        let order = Order {
            id,
            account: view.account,
            instrument: view.instrument,
            client_order_id: view.client_order_id,
            side: view.side,
            order_type: view.order_type,
            time_in_force: view.time_in_force,
            flags: view.flags,
            price: view.price,
            stop_price: view.stop_price,
            qty: view.qty,
            cum_qty: Qty::ZERO,
            notional: 0,
            fees: 0,
            fill_count: 0,
            status: if is_stop {
                OrderStatus::Armed
            } else {
                OrderStatus::PendingNew
            },
            pending: Pending::None,
            deferred: Deferred::None,
            triggered: false,
            expire_at: view.expire_at,
            created_at: now,
            updated_at: now,
            priority_at: now,
            answer_owed: false,
            expiry_queued: view.expire_at.0 != 0,
            links: Links::NONE,
        };
        out(event(&order, OrderEventKind::PendingNew));
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = Some(order);
        }
        self.by_id.insert(id, slot);
        self.link(view.account, slot);
        self.live += 1;
        self.counters.orders_created += 1;
        if view.expire_at.0 != 0 {
            self.expiry.push(Reverse(ExpiryEntry {
                at: view.expire_at,
                id,
            }));
        }
        if !is_stop {
            return CommandOutcome::Route(id);
        }
        self.arm(slot, now, out)
    }

    /// Puts an armed stop in its stop book, or triggers it at once if the last trigger price
    /// is already at or through its stop.
    fn arm(
        &mut self,
        slot: u32,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        let Some(order) = self.at(slot) else {
            return CommandOutcome::Rejected(RejectReason::UnknownOrder);
        };
        let (id, side, stop, instrument) =
            (order.id, order.side, order.stop_price, order.instrument);
        let last = self
            .last_trigger
            .get(instrument.index())
            .copied()
            .unwrap_or(Price::ZERO);
        if last.0 > 0 && StopBook::triggers(side, stop, last) {
            self.trigger(slot, last, now, out);
            return CommandOutcome::Route(id);
        }
        if let Some(book) = self.stops.get_mut(instrument.index()) {
            book.insert(side, StopEntry { stop, id, slot });
        }
        CommandOutcome::Held(id)
    }

    fn request_cancel(
        &mut self,
        cmd: &OrderCommand,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        self.counters.cancel_requests += 1;
        let slot = match self.resolve(cmd) {
            Ok(slot) => slot,
            Err(reason) => return self.reject_request(cmd, None, reason, out),
        };
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.reject_request(cmd, None, RejectReason::UnknownOrder, out);
        };
        let id = order.id;
        if order.status.is_terminal() {
            return self.reject_request(cmd, Some(slot), RejectReason::TooLateToCancel, out);
        }
        if !order.pending.is_none() {
            // One request in flight at a time.
            return self.reject_request(cmd, Some(slot), RejectReason::UnsupportedOrder, out);
        }
        if order.status == OrderStatus::Armed {
            self.end_armed(slot, OrderStatus::Canceled, now, out);
            return CommandOutcome::Done(id);
        }
        order.pending = Pending::Cancel { expiring: false };
        order.updated_at = now;
        out(event(order, OrderEventKind::PendingCancel));
        CommandOutcome::SendCancel(id)
    }

    fn request_replace(
        &mut self,
        cmd: &OrderCommand,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        self.counters.replace_requests += 1;
        let slot = match self.resolve(cmd) {
            Ok(slot) => slot,
            Err(reason) => return self.reject_request(cmd, None, reason, out),
        };
        let request = match self.check_replace(cmd, slot) {
            Ok(request) => request,
            Err(reason) => return self.reject_request(cmd, Some(slot), reason, out),
        };
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.reject_request(cmd, None, RejectReason::UnknownOrder, out);
        };
        let (id, account, old_client_id) = (order.id, order.account, order.client_order_id);
        if order.status == OrderStatus::Armed {
            // Not at the venue: apply now.
            let (side, stop, instrument) = (order.side, order.stop_price, order.instrument);
            apply_replace(order, &request, now);
            out(event(order, OrderEventKind::Replaced));
            self.counters.replaced += 1;
            if let Some(book) = self.stops.get_mut(instrument.index()) {
                book.remove(side, stop, id);
            }
            self.reserve_client_id(account, old_client_id, request.client_order_id, id);
            return match self.arm(slot, now, out) {
                CommandOutcome::Held(_) => CommandOutcome::Done(id),
                other => other,
            };
        }
        order.pending = Pending::Replace(request);
        order.updated_at = now;
        out(event(order, OrderEventKind::PendingReplace));
        self.reserve_client_id(account, old_client_id, request.client_order_id, id);
        CommandOutcome::SendReplace(id)
    }

    /// Indexes a replace's new client id (from the request on: ids are unique per session).
    fn reserve_client_id(
        &mut self,
        account: AccountId,
        old: ClientOrderId,
        new: ClientOrderId,
        id: OrderId,
    ) {
        if new != old && !new.is_none() {
            self.by_client_id.insert((account, new), id);
        }
    }

    /// Checks a Replace against the order in `slot`; the new values if it is acceptable.
    /// Rules: the order is open with no request in flight (`TooLateToCancel`,
    /// `UnsupportedOrder`); side, type, time in force, flags and instrument unchanged and
    /// `expire_at` 0 or unchanged (`UnsupportedOrder`); quantity valid like a new order's and
    /// above the filled quantity (`InvalidQuantity`); prices valid for the type, and a
    /// triggered stop keeps its stop price (`InvalidPrice` / `UnsupportedOrder`); minimum
    /// notional; a new client id not used in the session; something actually changes.
    fn check_replace(&self, cmd: &OrderCommand, slot: u32) -> Result<ReplaceRequest, RejectReason> {
        use RejectReason as R;
        let order = self.at(slot).ok_or(R::UnknownOrder)?;
        if order.status.is_terminal() {
            return Err(R::TooLateToCancel);
        }
        if !order.pending.is_none() {
            return Err(R::UnsupportedOrder);
        }
        if cmd.side != order.side.code()
            || cmd.order_type != order.order_type.code()
            || cmd.time_in_force != order.time_in_force.code()
            || cmd.flags != order.flags.0
            || cmd.instrument != order.instrument
            || (cmd.expire_at.0 != 0 && cmd.expire_at != order.expire_at)
        {
            return Err(R::UnsupportedOrder);
        }
        let rules = self
            .rules
            .get(order.instrument.index())
            .ok_or(R::UnknownInstrument)?;
        self.check_qty(rules, cmd.qty)?;
        if cmd.qty <= order.cum_qty {
            return Err(R::InvalidQuantity);
        }
        self.check_prices(rules, order.order_type, cmd.price, cmd.stop_price)?;
        if order.triggered && cmd.stop_price != order.stop_price {
            return Err(R::UnsupportedOrder);
        }
        check_min_notional(rules, order.order_type, cmd.price, cmd.stop_price, cmd.qty)?;
        let client_order_id =
            if cmd.client_order_id.is_none() || cmd.client_order_id == order.client_order_id {
                order.client_order_id
            } else if self.client_id_taken(order.account, &cmd.client_order_id) {
                return Err(R::DuplicateClientOrderId);
            } else {
                cmd.client_order_id
            };
        if cmd.price == order.price
            && cmd.stop_price == order.stop_price
            && cmd.qty == order.qty
            && client_order_id == order.client_order_id
        {
            return Err(R::UnsupportedOrder);
        }
        Ok(ReplaceRequest {
            price: cmd.price,
            stop_price: cmd.stop_price,
            qty: cmd.qty,
            client_order_id,
            priority: PriorityEffect::of(order.price, order.qty, cmd.price, cmd.qty),
        })
    }

    /// Emits `CancelRejected` for a cancel or replace command: describing the order if one
    /// was found, else echoing the command.
    fn reject_request(
        &mut self,
        cmd: &OrderCommand,
        slot: Option<u32>,
        reason: RejectReason,
        out: &mut impl FnMut(OrderEvent),
    ) -> CommandOutcome {
        self.counters.requests_rejected += 1;
        self.counters.count_reject(reason);
        let mut reply = match slot.and_then(|s| self.at(s)) {
            Some(order) => event(order, OrderEventKind::CancelRejected),
            None => command_event(cmd, OrderEventKind::CancelRejected, reason),
        };
        reply.reject_reason = reason.code();
        out(reply);
        CommandOutcome::Rejected(reason)
    }

    /// Finds the target of a cancel/replace/status command: by `order_id`, by
    /// `orig_client_order_id` within the command's account, or both (they must agree). The
    /// order must belong to the command's account. An order that ended and was retired gives
    /// `TooLateToCancel`.
    fn resolve(&self, cmd: &OrderCommand) -> Result<u32, RejectReason> {
        use RejectReason as R;
        if !self.is_known_account(cmd.account) {
            return Err(R::UnknownAccount);
        }
        let by_client = if cmd.orig_client_order_id.is_none() {
            None
        } else {
            match self
                .by_client_id
                .get(&(cmd.account, cmd.orig_client_order_id))
            {
                Some(&id) => Some(id),
                None => return Err(R::UnknownOrder),
            }
        };
        let id = match (cmd.order_id, by_client) {
            (OrderId(0), None) => return Err(R::UnknownOrder),
            (OrderId(0), Some(id)) => id,
            (id, Some(other)) if id != other => return Err(R::UnknownOrder),
            (id, _) => id,
        };
        match self.by_id.get(&id) {
            Some(&slot) => match self.at(slot) {
                Some(order) if order.account == cmd.account => Ok(slot),
                _ => Err(R::UnknownOrder),
            },
            None if id.0 != 0 && id.0 < self.next_order_id => Err(R::TooLateToCancel),
            None => Err(R::UnknownOrder),
        }
    }

    /// Requests a cancel of every open order of `account` (all accounts if `None`), e.g. for
    /// a kill switch: armed stops are canceled at once (`Canceled`), orders at the venue get
    /// `PendingCancel` (send each on), an order with a replace in flight is canceled as soon
    /// as the replace is answered. Returns the number of orders affected.
    pub fn cancel_all(
        &mut self,
        account: Option<AccountId>,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> usize {
        let accounts = match account {
            Some(a) if self.is_known_account(a) => a.index()..a.index() + 1,
            Some(_) => 0..0,
            None => 0..self.lists.len(),
        };
        let mut affected = 0;
        for account in accounts {
            let mut slot = self.lists.get(account).map_or(NIL, |l| l.head);
            let mut budget = self.slots.len();
            while slot != NIL && budget > 0 {
                budget -= 1;
                let Some(order) = slot_mut(&mut self.slots, slot) else {
                    break;
                };
                let next = order.links.next;
                match (order.status, order.pending) {
                    (OrderStatus::Armed, _) => {
                        self.end_armed(slot, OrderStatus::Canceled, now, out);
                        affected += 1;
                    }
                    (_, Pending::None) => {
                        order.pending = Pending::Cancel { expiring: false };
                        order.updated_at = now;
                        out(event(order, OrderEventKind::PendingCancel));
                        affected += 1;
                    }
                    (_, Pending::Replace(_)) => {
                        order.deferred = Deferred::Cancel;
                        affected += 1;
                    }
                    (_, Pending::Cancel { .. }) => {}
                }
                slot = next;
            }
        }
        affected
    }

    // -----------------------------------------------------------------------------------
    // Venue reports
    // -----------------------------------------------------------------------------------

    /// The venue acknowledged the order: PendingNew → New, emits `Accepted`.
    ///
    /// # Errors
    ///
    /// Any other state (the order is left unchanged and the error counted).
    pub fn on_venue_ack(
        &mut self,
        order_id: OrderId,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = self.venue_slot(order_id, VenueEvent::Ack)?;
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: VenueEvent::Ack,
            });
        };
        match order.status {
            OrderStatus::PendingNew => {
                order.status = OrderStatus::New;
                order.updated_at = now;
                out(event(order, OrderEventKind::Accepted));
                self.counters.acks += 1;
                Ok(())
            }
            status => {
                let error = state_error(order, VenueEvent::Ack, status);
                self.illegal(error)
            }
        }
    }

    /// A fill: checks it (order at the venue and not done, non-zero and new execution id,
    /// positive quantity and price, not through the limit, no overfill, fee total fits) and
    /// applies it: `cum_qty`, `notional`, fees; emits `PartiallyFilled` or `Filled`. A fill
    /// while PendingNew acknowledges the order implicitly; a fill while a cancel or replace
    /// is in flight keeps the request in flight, unless it completes the order (the venue's
    /// answer to the request is then owed: see [`on_cancel_rejected`](Self::on_cancel_rejected)).
    ///
    /// # Errors
    ///
    /// The first failed check; the order is left unchanged and the error counted.
    pub fn on_venue_fill(
        &mut self,
        order_id: OrderId,
        fill: &Fill,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = self.venue_slot(order_id, VenueEvent::Fill)?;
        let exec_id = fill.exec_id;
        let Some(order) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: VenueEvent::Fill,
            });
        };
        let invalid = |what| IllegalTransition::InvalidFill {
            order_id,
            exec_id,
            what,
        };
        let check = if order.status == OrderStatus::Armed {
            Err(IllegalTransition::NotAtVenue {
                order_id,
                event: VenueEvent::Fill,
            })
        } else if order.status.is_terminal() {
            Err(IllegalTransition::FillAfterDone {
                order_id,
                exec_id,
                status: order.status,
            })
        } else if exec_id == 0 {
            Err(invalid("execution id is 0"))
        } else if fill.qty.0 <= 0 {
            Err(invalid("quantity is not positive"))
        } else if fill.price.0 <= 0 {
            Err(invalid("price is not positive"))
        } else if self.exec_ids.contains(&(order_id, exec_id)) {
            Err(IllegalTransition::DuplicateExecId { order_id, exec_id })
        } else {
            check_fill_amounts(order, fill)
        };
        let fees = match check {
            Ok(fees) => fees,
            Err(error) => return self.illegal(error),
        };
        self.exec_ids.insert((order_id, exec_id));
        order.cum_qty = Qty(order.cum_qty.0 + fill.qty.0);
        order.notional = order
            .notional
            .saturating_add(aaiti_model::notional(fill.price, fill.qty));
        order.fees = fees;
        order.fill_count = order.fill_count.saturating_add(1);
        order.updated_at = now;
        self.counters.fills += 1;
        let done = order.cum_qty == order.qty;
        let kind = if done {
            order.status = OrderStatus::Filled;
            if !order.pending.is_none() {
                order.answer_owed = true;
                order.pending = Pending::None;
            }
            order.deferred = Deferred::None;
            self.counters.filled += 1;
            OrderEventKind::Filled
        } else {
            order.status = OrderStatus::PartiallyFilled;
            OrderEventKind::PartiallyFilled
        };
        let mut report = event(order, kind);
        report.exec_id = exec_id;
        report.last_price = fill.price;
        report.last_qty = fill.qty;
        report.fee = fill.fee;
        report.liquidity = fill.liquidity.code();
        out(report);
        if done {
            self.close(slot);
        }
        Ok(())
    }

    /// The venue canceled the order (on request or on its own, e.g. an IOC remainder or
    /// self-trade prevention): emits `Canceled`, or `Expired` if the cancel was the manager's
    /// expiry request.
    ///
    /// # Errors
    ///
    /// The order is an armed stop or already done.
    pub fn on_venue_canceled(
        &mut self,
        order_id: OrderId,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        self.venue_end(order_id, VenueEvent::Canceled, now, out)
    }

    /// The venue expired the order (IOC/FOK remainder, venue-side Day/GTD): emits `Expired`.
    ///
    /// # Errors
    ///
    /// The order is an armed stop or already done.
    pub fn on_venue_expired(
        &mut self,
        order_id: OrderId,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        self.venue_end(order_id, VenueEvent::Expired, now, out)
    }

    fn venue_end(
        &mut self,
        order_id: OrderId,
        venue_event: VenueEvent,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = self.venue_slot(order_id, venue_event)?;
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: venue_event,
            });
        };
        if !order.status.is_at_venue() {
            let error = state_error(order, venue_event, order.status);
            return self.illegal(error);
        }
        let expired = venue_event == VenueEvent::Expired
            || order.pending == Pending::Cancel { expiring: true };
        order.status = if expired {
            OrderStatus::Expired
        } else {
            OrderStatus::Canceled
        };
        // A cancel confirmation answers a pending cancel; anything else leaves the request's
        // answer (a reject) owed.
        let answered =
            venue_event == VenueEvent::Canceled && matches!(order.pending, Pending::Cancel { .. });
        order.answer_owed = !order.pending.is_none() && !answered;
        order.pending = Pending::None;
        order.deferred = Deferred::None;
        order.updated_at = now;
        let kind = if expired {
            self.counters.expired += 1;
            OrderEventKind::Expired
        } else {
            self.counters.canceled += 1;
            OrderEventKind::Canceled
        };
        out(event(order, kind));
        self.close(slot);
        Ok(())
    }

    /// The venue rejected the new order: PendingNew → Rejected, emits `Rejected` with
    /// `reason` (`None` is reported as `VenueReject`).
    ///
    /// # Errors
    ///
    /// The order is not pending new (acknowledged, filled, done or an armed stop).
    pub fn on_venue_rejected(
        &mut self,
        order_id: OrderId,
        reason: RejectReason,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = self.venue_slot(order_id, VenueEvent::Rejected)?;
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: VenueEvent::Rejected,
            });
        };
        if order.status != OrderStatus::PendingNew {
            let error = state_error(order, VenueEvent::Rejected, order.status);
            return self.illegal(error);
        }
        let reason = if reason == RejectReason::None {
            RejectReason::VenueReject
        } else {
            reason
        };
        order.status = OrderStatus::Rejected;
        order.answer_owed = !order.pending.is_none();
        order.pending = Pending::None;
        order.deferred = Deferred::None;
        order.updated_at = now;
        let mut report = event(order, OrderEventKind::Rejected);
        report.reject_reason = reason.code();
        out(report);
        self.counters.venue_rejected += 1;
        self.counters.count_reject(reason);
        self.close(slot);
        Ok(())
    }

    /// The venue confirmed the replace in flight: the order takes the requested price, stop,
    /// quantity and client id; [`Order::priority_at`] moves to `now` if the replace loses
    /// priority; emits `Replaced` (a confirmation while PendingNew acknowledges the order
    /// implicitly). If fills meanwhile reached the new quantity exactly, the
    /// order is done (Filled) and the `Replaced` event carries `leaves_qty` 0.
    ///
    /// # Errors
    ///
    /// No replace in flight, the order is done or an armed stop, or the new quantity is
    /// below the filled quantity ([`IllegalTransition::ReplaceBelowFilled`]; the request
    /// stays in flight).
    pub fn on_venue_replaced(
        &mut self,
        order_id: OrderId,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = self.venue_slot(order_id, VenueEvent::Replaced)?;
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: VenueEvent::Replaced,
            });
        };
        let request = match (order.status.is_at_venue(), order.pending) {
            (true, Pending::Replace(request)) => request,
            _ => {
                let error = state_error(order, VenueEvent::Replaced, order.status);
                return self.illegal(error);
            }
        };
        if request.qty < order.cum_qty {
            let error = IllegalTransition::ReplaceBelowFilled {
                order_id,
                qty: request.qty,
                cum_qty: order.cum_qty,
            };
            return self.illegal(error);
        }
        apply_replace(order, &request, now);
        order.pending = Pending::None;
        if order.status == OrderStatus::PendingNew {
            order.status = OrderStatus::New;
        }
        let done = order.cum_qty == order.qty;
        if done {
            order.status = OrderStatus::Filled;
            order.deferred = Deferred::None;
            self.counters.filled += 1;
        }
        out(event(order, OrderEventKind::Replaced));
        self.counters.replaced += 1;
        if done {
            self.close(slot);
        } else {
            self.run_deferred(slot, now, out);
        }
        Ok(())
    }

    /// The venue rejected the cancel or replace in flight: the request is dropped, the order
    /// is unchanged, and `CancelRejected` is emitted with `reason` (`None` is reported as
    /// `VenueReject`). For an order that ended while the request was in flight (its answer
    /// owed), the reject is forwarded (`TooLateToCancel` if `reason` is `None`) and nothing
    /// changes; for an order already retired it is ignored and counted as late.
    ///
    /// # Errors
    ///
    /// No request in flight or owed, or an armed stop.
    pub fn on_cancel_rejected(
        &mut self,
        order_id: OrderId,
        reason: RejectReason,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> Result<(), IllegalTransition> {
        let slot = match self.lookup(order_id, VenueEvent::CancelRejected) {
            Ok(slot) => slot,
            Err(IllegalTransition::RetiredOrder { .. }) => {
                self.counters.late_cancel_rejects += 1;
                return Ok(());
            }
            Err(error) => return self.illegal(error),
        };
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return self.illegal(IllegalTransition::UnknownOrder {
                order_id,
                event: VenueEvent::CancelRejected,
            });
        };
        if order.status.is_terminal() && order.answer_owed {
            order.answer_owed = false;
            let reason = if reason == RejectReason::None {
                RejectReason::TooLateToCancel
            } else {
                reason
            };
            let mut report = event(order, OrderEventKind::CancelRejected);
            report.reject_reason = reason.code();
            out(report);
            self.counters.cancel_rejected += 1;
            self.counters.count_reject(reason);
            return Ok(());
        }
        if !order.status.is_at_venue() || order.pending.is_none() {
            let error = state_error(order, VenueEvent::CancelRejected, order.status);
            return self.illegal(error);
        }
        if order.pending == (Pending::Cancel { expiring: true }) {
            self.counters.expiry_cancel_rejected += 1;
        }
        let reason = if reason == RejectReason::None {
            RejectReason::VenueReject
        } else {
            reason
        };
        order.pending = Pending::None;
        order.updated_at = now;
        let mut report = event(order, OrderEventKind::CancelRejected);
        report.reject_reason = reason.code();
        out(report);
        self.counters.cancel_rejected += 1;
        self.counters.count_reject(reason);
        self.run_deferred(slot, now, out);
        Ok(())
    }

    /// Requests the cancel deferred while a replace was in flight, if any.
    fn run_deferred(&mut self, slot: u32, now: UnixNanos, out: &mut impl FnMut(OrderEvent)) {
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return;
        };
        if order.deferred == Deferred::None
            || !order.pending.is_none()
            || !order.status.is_at_venue()
        {
            return;
        }
        let expiring = order.deferred == Deferred::Expire;
        order.deferred = Deferred::None;
        order.pending = Pending::Cancel { expiring };
        order.updated_at = now;
        out(event(order, OrderEventKind::PendingCancel));
        if expiring {
            self.counters.expiry_cancels += 1;
        }
    }

    // -----------------------------------------------------------------------------------
    // Prices and time
    // -----------------------------------------------------------------------------------

    /// A price for `instrument` from `source`. Ignored unless `source` is the configured
    /// [`TriggerSource`] and the price is positive. Triggers every armed stop it reaches —
    /// buy stops at `price >= stop`, sell stops at `price <= stop`, so a gap over several
    /// stops triggers them all (buys first, each side nearest stop first, then oldest). For
    /// each: emits `Triggered` (`last_price` = this price) and the order becomes PendingNew
    /// as a Market (Stop) or Limit (StopLimit) order the engine must send. Returns the number
    /// triggered. O(log n + triggered), no allocation.
    pub fn on_trigger_price(
        &mut self,
        instrument: InstrumentId,
        source: TriggerSource,
        price: Price,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) -> usize {
        if source != self.config.trigger_source || price.0 <= 0 {
            return 0;
        }
        let index = instrument.index();
        let Some(last) = self.last_trigger.get_mut(index) else {
            return 0;
        };
        *last = price;
        let mut triggered = 0;
        while let Some(entry) = self
            .stops
            .get_mut(index)
            .and_then(|b| b.pop_triggered(price))
        {
            let matches = self
                .at(entry.slot)
                .is_some_and(|o| o.id == entry.id && o.status == OrderStatus::Armed);
            debug_assert!(matches, "stop book entry without its armed order");
            if matches {
                self.trigger(entry.slot, price, now, out);
                triggered += 1;
            }
        }
        triggered
    }

    /// Fires an armed stop (already out of its stop book).
    fn trigger(
        &mut self,
        slot: u32,
        price: Price,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) {
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return;
        };
        order.status = OrderStatus::PendingNew;
        order.triggered = true;
        order.priority_at = now;
        order.updated_at = now;
        let mut report = event(order, OrderEventKind::Triggered);
        report.last_price = price;
        out(report);
        self.counters.triggered += 1;
    }

    /// Engine time advanced to `now`: ends every order whose Day/GTD time is at or before
    /// `now`, earliest first (then oldest). Armed stops expire at once (`Expired`). Orders at
    /// the venue, with [`ExpiryMode::Local`], get a cancel request (`PendingCancel`: send it;
    /// the venue's confirmation ends them as `Expired`), deferred if a replace is in flight;
    /// with [`ExpiryMode::Venue`] they are left to the venue. Returns the number of orders
    /// expired or sent a cancel. O(log n) per due order.
    pub fn on_time(&mut self, now: UnixNanos, out: &mut impl FnMut(OrderEvent)) -> usize {
        let mode = self.config.expiry;
        let mut affected = 0;
        while let Some(&Reverse(entry)) = self.expiry.peek() {
            if entry.at > now {
                break;
            }
            self.expiry.pop();
            let slot = self.by_id.get(&entry.id).copied();
            let Some(order) = slot.and_then(|s| slot_mut(&mut self.slots, s)) else {
                self.expiry_stale = self.expiry_stale.saturating_sub(1);
                continue;
            };
            if !order.expiry_queued || order.expire_at != entry.at || order.status.is_terminal() {
                self.expiry_stale = self.expiry_stale.saturating_sub(1);
                continue;
            }
            order.expiry_queued = false;
            let slot = slot.unwrap_or(NIL);
            match (order.status, order.pending, mode) {
                (OrderStatus::Armed, _, _) => {
                    self.end_armed(slot, OrderStatus::Expired, now, out);
                    affected += 1;
                }
                (_, _, ExpiryMode::Venue) => {}
                (_, Pending::None, ExpiryMode::Local) => {
                    order.pending = Pending::Cancel { expiring: true };
                    order.updated_at = now;
                    out(event(order, OrderEventKind::PendingCancel));
                    self.counters.expiry_cancels += 1;
                    affected += 1;
                }
                (_, Pending::Replace(_), ExpiryMode::Local) => {
                    order.deferred = Deferred::Expire;
                    affected += 1;
                }
                // A client cancel is already in flight: it ends the order anyway.
                (_, Pending::Cancel { .. }, ExpiryMode::Local) => {}
            }
        }
        self.compact_expiry();
        affected
    }

    /// Drops dead entries from the expiry queue once they outnumber the live ones (keeps its
    /// size proportional to the orders that can still expire; no allocation).
    fn compact_expiry(&mut self) {
        let len = self.expiry.len() as u64;
        if self.expiry_stale < 64 || self.expiry_stale * 2 < len {
            return;
        }
        let (by_id, slots) = (&self.by_id, &self.slots);
        self.expiry.retain(|Reverse(entry)| {
            by_id
                .get(&entry.id)
                .and_then(|&s| slots.get(s as usize))
                .and_then(Option::as_ref)
                .is_some_and(|o| o.expiry_queued && o.expire_at == entry.at)
        });
        self.expiry_stale = 0;
    }

    /// Starts a new session: client order ids and execution ids of orders that are done are
    /// forgotten (they may be used again); those of open orders stay.
    pub fn reset_session(&mut self) {
        let (by_id, slots) = (&self.by_id, &self.slots);
        let open = |id: &OrderId| {
            by_id
                .get(id)
                .and_then(|&s| slots.get(s as usize))
                .and_then(Option::as_ref)
                .is_some_and(|o| !o.status.is_terminal())
        };
        self.by_client_id.retain(|_, id| open(id));
        self.exec_ids.retain(|(id, _)| open(id));
    }

    // -----------------------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------------------

    /// The order with this id, if held (open, or done and not yet retired).
    #[inline]
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.by_id.get(&id).and_then(|&s| self.at(s))
    }

    /// Status of an order, if held.
    #[inline]
    pub fn status(&self, id: OrderId) -> Option<OrderStatus> {
        self.order(id).map(|o| o.status)
    }

    /// True if the id was assigned and its order is done and no longer held.
    pub fn is_retired(&self, id: OrderId) -> bool {
        id.0 != 0 && id.0 < self.next_order_id && !self.by_id.contains_key(&id)
    }

    /// The order an account's client order id names (its current or an earlier id of a
    /// replaced order), if held.
    pub fn find_by_client_id(&self, account: AccountId, id: &ClientOrderId) -> Option<&Order> {
        self.by_client_id
            .get(&(account, *id))
            .and_then(|order_id| self.order(*order_id))
    }

    /// The open orders (armed, pending or working) of `account`, oldest first.
    pub fn open_orders(&self, account: AccountId) -> OpenOrders<'_> {
        let ends = self
            .lists
            .get(account.index())
            .copied()
            .unwrap_or(ListEnds::EMPTY);
        OpenOrders {
            manager: self,
            next: ends.head,
            remaining: ends.len as usize,
        }
    }

    /// Number of open orders of `account`.
    pub fn open_count(&self, account: AccountId) -> usize {
        self.lists
            .get(account.index())
            .map_or(0, |l| l.len as usize)
    }

    /// Number of open orders in all accounts.
    pub fn live_count(&self) -> usize {
        self.live as usize
    }

    /// Every order held (open and retained done ones), in table order.
    pub fn orders(&self) -> impl Iterator<Item = &Order> {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Armed stops of `instrument`.
    pub fn armed_stops(&self, instrument: InstrumentId) -> usize {
        self.stops.get(instrument.index()).map_or(0, StopBook::len)
    }

    /// The last trigger price seen for `instrument` (0 before the first).
    pub fn last_trigger_price(&self, instrument: InstrumentId) -> Price {
        self.last_trigger
            .get(instrument.index())
            .copied()
            .unwrap_or(Price::ZERO)
    }

    /// The id the next order will get.
    pub fn next_order_id(&self) -> OrderId {
        OrderId(self.next_order_id)
    }

    /// The counters.
    pub fn counters(&self) -> &OmsCounters {
        &self.counters
    }

    // -----------------------------------------------------------------------------------
    // Internals
    // -----------------------------------------------------------------------------------

    #[inline]
    fn at(&self, slot: u32) -> Option<&Order> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    #[inline]
    fn client_id_taken(&self, account: AccountId, id: &ClientOrderId) -> bool {
        !id.is_none() && self.by_client_id.contains_key(&(account, *id))
    }

    fn check_qty(&self, rules: &Rules, qty: Qty) -> Result<(), RejectReason> {
        if qty.0 <= 0 || qty.0 % rules.lot != 0 {
            return Err(RejectReason::InvalidQuantity);
        }
        if qty.0 / rules.lot > self.config.max_order_lots {
            return Err(RejectReason::MaxOrderQty);
        }
        Ok(())
    }

    fn check_price(&self, rules: &Rules, price: Price) -> Result<(), RejectReason> {
        if price.0 <= 0
            || price.0 % rules.tick != 0
            || price.0 / rules.tick > self.config.max_price_ticks
        {
            return Err(RejectReason::InvalidPrice);
        }
        Ok(())
    }

    fn check_prices(
        &self,
        rules: &Rules,
        order_type: OrderType,
        price: Price,
        stop_price: Price,
    ) -> Result<(), RejectReason> {
        if order_type.has_limit_price() {
            self.check_price(rules, price)?;
        } else if price.0 != 0 {
            return Err(RejectReason::InvalidPrice);
        }
        if order_type.has_stop_price() {
            self.check_price(rules, stop_price)?;
        } else if stop_price.0 != 0 {
            return Err(RejectReason::InvalidPrice);
        }
        Ok(())
    }

    /// The slot of the order a venue report is for.
    fn lookup(&self, order_id: OrderId, event: VenueEvent) -> Result<u32, IllegalTransition> {
        match self.by_id.get(&order_id) {
            Some(&slot) => Ok(slot),
            None if self.is_retired(order_id) => {
                Err(IllegalTransition::RetiredOrder { order_id, event })
            }
            None => Err(IllegalTransition::UnknownOrder { order_id, event }),
        }
    }

    /// [`lookup`](Self::lookup), counting a failure.
    fn venue_slot(
        &mut self,
        order_id: OrderId,
        event: VenueEvent,
    ) -> Result<u32, IllegalTransition> {
        match self.lookup(order_id, event) {
            Ok(slot) => Ok(slot),
            Err(error) => self.illegal(error).map(|()| NIL),
        }
    }

    /// Counts an illegal transition and returns it.
    fn illegal(&mut self, error: IllegalTransition) -> Result<(), IllegalTransition> {
        self.counters.illegal += 1;
        if let Some(count) = self.counters.illegal_by_kind.get_mut(error.index()) {
            *count += 1;
        }
        Err(error)
    }

    /// Ends an armed stop locally (cancel or expiry): out of its stop book, `status`, event.
    fn end_armed(
        &mut self,
        slot: u32,
        status: OrderStatus,
        now: UnixNanos,
        out: &mut impl FnMut(OrderEvent),
    ) {
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return;
        };
        order.status = status;
        order.updated_at = now;
        let kind = if status == OrderStatus::Expired {
            self.counters.expired += 1;
            OrderEventKind::Expired
        } else {
            self.counters.canceled += 1;
            OrderEventKind::Canceled
        };
        out(event(order, kind));
        let (side, stop, id, instrument) =
            (order.side, order.stop_price, order.id, order.instrument);
        if let Some(book) = self.stops.get_mut(instrument.index()) {
            let removed = book.remove(side, stop, id);
            debug_assert!(removed, "armed stop missing from its stop book");
        }
        self.close(slot);
    }

    /// Bookkeeping once an order is done: out of its account's open list, expiry entry
    /// marked stale, into the done queue (retiring the oldest beyond the retention).
    fn close(&mut self, slot: u32) {
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return;
        };
        let account = order.account;
        if order.expiry_queued {
            order.expiry_queued = false;
            self.expiry_stale += 1;
        }
        self.unlink(account, slot);
        self.live = self.live.saturating_sub(1);
        self.done.push_back(slot);
        while self.done.len() > self.config.done_retention as usize {
            self.retire_oldest();
        }
    }

    /// Drops the oldest done order from memory and frees its slot.
    fn retire_oldest(&mut self) -> Option<()> {
        let slot = self.done.pop_front()?;
        let order = self.slots.get_mut(slot as usize)?.take()?;
        self.by_id.remove(&order.id);
        self.free.push(slot);
        self.counters.retired += 1;
        Some(())
    }

    /// A free slot: from the free list, a new one within the table's capacity, or the
    /// oldest done order's.
    fn alloc_slot(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        let capacity = self.config.max_live_orders as usize + self.config.done_retention as usize;
        if self.slots.len() < capacity {
            self.slots.push(None);
            return Some((self.slots.len() - 1) as u32);
        }
        self.retire_oldest()?;
        self.free.pop()
    }

    fn link(&mut self, account: AccountId, slot: u32) {
        let Some(ends) = self.lists.get_mut(account.index()) else {
            return;
        };
        let tail = ends.tail;
        if tail == NIL {
            ends.head = slot;
        }
        ends.tail = slot;
        ends.len += 1;
        if let Some(order) = slot_mut(&mut self.slots, slot) {
            order.links = Links {
                prev: tail,
                next: NIL,
            };
        }
        if let Some(previous) = slot_mut(&mut self.slots, tail) {
            previous.links.next = slot;
        }
    }

    fn unlink(&mut self, account: AccountId, slot: u32) {
        let Some(order) = slot_mut(&mut self.slots, slot) else {
            return;
        };
        let Links { prev, next } = order.links;
        order.links = Links::NONE;
        if let Some(previous) = slot_mut(&mut self.slots, prev) {
            previous.links.next = next;
        }
        if let Some(following) = slot_mut(&mut self.slots, next) {
            following.links.prev = prev;
        }
        if let Some(ends) = self.lists.get_mut(account.index()) {
            if ends.head == slot {
                ends.head = next;
            }
            if ends.tail == slot {
                ends.tail = prev;
            }
            ends.len = ends.len.saturating_sub(1);
        }
    }

    // -----------------------------------------------------------------------------------
    // Invariants
    // -----------------------------------------------------------------------------------

    /// Checks every internal invariant: the indices agree with the table, open orders have
    /// `0 <= cum_qty < qty`, every armed stop is in its stop book (sorted) and nothing else
    /// is, the account lists hold exactly the open orders in id order, the done queue and
    /// the free list partition the rest. O(n); for tests and snapshot restore.
    ///
    /// # Errors
    ///
    /// The first invariant found broken.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |what, id| Err(InvariantViolation::new(what, id));
        let none = OrderId(0);
        if self.lists.len() != self.config.accounts as usize {
            return fail("account lists do not match the account count", none);
        }
        if self.stops.len() != self.rules.len() || self.last_trigger.len() != self.rules.len() {
            return fail("per-instrument tables do not match the instruments", none);
        }
        let capacity = self.config.max_live_orders as usize + self.config.done_retention as usize;
        if self.slots.len() > capacity {
            return fail("order table above its capacity", none);
        }
        let mut live = 0u32;
        let mut armed = 0usize;
        let mut held = 0usize;
        for (slot, entry) in self.slots.iter().enumerate() {
            let Some(order) = entry else { continue };
            held += 1;
            let id = order.id;
            if id.0 == 0 || id.0 >= self.next_order_id {
                return fail("order id outside 1..next_order_id", id);
            }
            if self.by_id.get(&id) != Some(&(slot as u32)) {
                return fail("id index does not point at the order", id);
            }
            if !self.is_known_account(order.account) || order.instrument.index() >= self.rules.len()
            {
                return fail("order of an unknown account or instrument", id);
            }
            if order.qty.0 <= 0 || order.cum_qty.0 < 0 || order.cum_qty > order.qty {
                return fail("quantities out of range", id);
            }
            if order.status == OrderStatus::Filled && order.cum_qty != order.qty {
                return fail("filled order with leaves", id);
            }
            if order.status.is_terminal() {
                if !order.pending.is_none() || order.links != Links::NONE || order.expiry_queued {
                    return fail("done order still pending, listed or queued", id);
                }
                continue;
            }
            live += 1;
            if order.cum_qty >= order.qty {
                return fail("open order without leaves", id);
            }
            if order.answer_owed {
                return fail("open order with an answer owed", id);
            }
            if order.status == OrderStatus::Armed {
                armed += 1;
                if !order.pending.is_none() || order.triggered || order.cum_qty.0 != 0 {
                    return fail("armed stop pending, triggered or filled", id);
                }
                let listed = self.stops.get(order.instrument.index()).is_some_and(|b| {
                    b.entries().any(|(side, e)| {
                        side == order.side
                            && e.id == id
                            && e.slot == slot as u32
                            && e.stop == order.stop_price
                    })
                });
                if !listed {
                    return fail("armed stop missing from its stop book", id);
                }
            }
            if let Pending::Replace(request) = order.pending
                && request.qty <= Qty::ZERO
            {
                return fail("replace request without quantity", id);
            }
        }
        if live != self.live {
            return fail("open order count is wrong", none);
        }
        if self.by_id.len() != held {
            return fail("id index holds orders not in the table", none);
        }
        if self.stops.iter().map(StopBook::len).sum::<usize>() != armed
            || !self.stops.iter().all(StopBook::is_sorted)
        {
            return fail(
                "stop books hold entries that are not armed stops, or are unsorted",
                none,
            );
        }
        // Account lists: exactly the open orders, oldest first.
        let mut listed = 0usize;
        for (account, ends) in self.lists.iter().enumerate() {
            let mut slot = ends.head;
            let mut prev = NIL;
            let mut count = 0u32;
            let mut last_id = 0u64;
            while slot != NIL {
                let Some(order) = self.at(slot) else {
                    return fail("account list points at an empty slot", none);
                };
                if order.account.index() != account
                    || order.status.is_terminal()
                    || order.links.prev != prev
                    || order.id.0 <= last_id
                {
                    return fail("account list broken or out of order", order.id);
                }
                count += 1;
                if count as usize > self.slots.len() {
                    return fail("account list has a cycle", order.id);
                }
                last_id = order.id.0;
                prev = slot;
                slot = order.links.next;
            }
            if count != ends.len || ends.tail != prev {
                return fail("account list length or tail wrong", none);
            }
            listed += count as usize;
        }
        if listed != live as usize {
            return fail("open orders missing from the account lists", none);
        }
        // Done queue and free list.
        if self.done.len() > self.config.done_retention as usize {
            return fail("done queue above the retention", none);
        }
        for &slot in &self.done {
            if !self.at(slot).is_some_and(|o| o.status.is_terminal()) {
                return fail("done queue holds an open or empty slot", none);
            }
        }
        for &slot in &self.free {
            if slot as usize >= self.slots.len() || self.at(slot).is_some() {
                return fail("free list holds a used slot", none);
            }
        }
        if self.done.len() + live as usize != held || self.free.len() + held != self.slots.len() {
            return fail("done queue and free list do not partition the table", none);
        }
        let queued = self
            .slots
            .iter()
            .flatten()
            .filter(|o| o.expiry_queued)
            .count();
        if self.expiry.len() < queued {
            return fail("expiry queue misses orders", none);
        }
        for (key, id) in &self.by_client_id {
            if key.1.is_none() || (id.0 == 0 || id.0 >= self.next_order_id) {
                return fail("client id index entry invalid", *id);
            }
        }
        Ok(())
    }
}

/// Iterator over an account's open orders, oldest first.
#[derive(Debug)]
pub struct OpenOrders<'a> {
    manager: &'a OrderManager,
    next: u32,
    remaining: usize,
}

impl<'a> Iterator for OpenOrders<'a> {
    type Item = &'a Order;

    fn next(&mut self) -> Option<&'a Order> {
        if self.remaining == 0 {
            return None;
        }
        let order = self.manager.at(self.next)?;
        self.remaining -= 1;
        self.next = order.links.next;
        Some(order)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Post-only needs a limit price and a resting time in force; FOK stops are not supported.
fn check_combination(
    order_type: OrderType,
    time_in_force: TimeInForce,
    flags: OrderFlags,
) -> Result<(), RejectReason> {
    let immediate = matches!(time_in_force, TimeInForce::Ioc | TimeInForce::Fok);
    if flags.contains(OrderFlags::POST_ONLY) && (!order_type.has_limit_price() || immediate) {
        return Err(RejectReason::UnsupportedOrder);
    }
    if order_type.has_stop_price() && time_in_force == TimeInForce::Fok {
        return Err(RejectReason::UnsupportedOrder);
    }
    Ok(())
}

/// `price × qty` (limit price, else stop price) against the instrument's minimum notional,
/// exactly in `i128`. Market orders have no price to check here.
fn check_min_notional(
    rules: &Rules,
    order_type: OrderType,
    price: Price,
    stop_price: Price,
    qty: Qty,
) -> Result<(), RejectReason> {
    let reference = if order_type.has_limit_price() {
        price
    } else if order_type.has_stop_price() {
        stop_price
    } else {
        return Ok(());
    };
    if aaiti_model::notional(reference, qty) < rules.min_notional_scaled {
        return Err(RejectReason::BelowMinNotional);
    }
    Ok(())
}

/// Limit, overfill and fee checks of a fill; the new fee total if it passes.
fn check_fill_amounts(order: &Order, fill: &Fill) -> Result<i64, IllegalTransition> {
    let (order_id, exec_id) = (order.id, fill.exec_id);
    if order.venue_type() == OrderType::Limit {
        // During a replace either price may be in force at the venue: allow the wider one.
        let requested = match order.pending {
            Pending::Replace(request) => request.price,
            _ => order.price,
        };
        let (through, limit) = match order.side {
            Side::Buy => {
                let limit = order.price.max(requested);
                (fill.price > limit, limit)
            }
            Side::Sell => {
                let limit = order.price.min(requested);
                (fill.price < limit, limit)
            }
        };
        if through {
            return Err(IllegalTransition::FillOutsideLimit {
                order_id,
                exec_id,
                limit,
                price: fill.price,
            });
        }
    }
    match order.cum_qty.checked_add(fill.qty) {
        Some(cum) if cum <= order.qty => {}
        _ => {
            return Err(IllegalTransition::Overfill {
                order_id,
                exec_id,
                qty: order.qty,
                cum_qty: order.cum_qty,
                fill_qty: fill.qty,
            });
        }
    }
    order
        .fees
        .checked_add(fill.fee)
        .ok_or(IllegalTransition::InvalidFill {
            order_id,
            exec_id,
            what: "fee total overflows",
        })
}

/// The error for a report that does not fit the order's state.
fn state_error(order: &Order, event: VenueEvent, status: OrderStatus) -> IllegalTransition {
    if status == OrderStatus::Armed {
        IllegalTransition::NotAtVenue {
            order_id: order.id,
            event,
        }
    } else {
        IllegalTransition::InvalidState {
            order_id: order.id,
            event,
            status,
            pending: !order.pending.is_none(),
        }
    }
}

/// Gives the order a confirmed (or local) replace's values.
fn apply_replace(order: &mut Order, request: &ReplaceRequest, now: UnixNanos) {
    order.price = request.price;
    order.stop_price = request.stop_price;
    order.qty = request.qty;
    order.client_order_id = request.client_order_id;
    if request.priority == PriorityEffect::Loses {
        order.priority_at = now;
    }
    order.updated_at = now;
}
