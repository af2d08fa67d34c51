//! The matching engine of the paper venue. See the [module documentation](super).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use aaiti_model::{
    AccountId, BookAction, BookDelta, InstrumentId, InstrumentRegistry, OrderId, OrderType, Price,
    Qty, RejectReason, Scale, Side, TimeInForce, Trade, UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::config::{PaperConfig, QueueModel, TradeThrough};
use super::depth::{Books, DepthView};
use super::fees::fee;
use super::{PaperError, PaperStats};

/// Largest instrument index the venue accepts (the per-instrument table is dense).
pub const MAX_INSTRUMENTS: usize = 1 << 16;
/// Resting-order capacity reserved per instrument and side at registration.
const RESTING_HINT: usize = 256;
/// Consumed-level entries reserved per instrument and side.
const CONSUMED_HINT: usize = 64;
/// Events reserved in the output buffer.
const EVENTS_HINT: usize = 1_024;
/// Requests in flight reserved.
const PENDING_HINT: usize = 1_024;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// Public vocabulary
// ---------------------------------------------------------------------------------------------

/// An order as the OMS sends it to the venue (stops are triggered by the OMS first).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperOrder {
    /// Engine-assigned id; unique among the venue's live and remembered orders.
    pub order_id: OrderId,
    /// Account.
    pub account: AccountId,
    /// Instrument (registered with [`PaperVenue::add_instrument`]).
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// `Market` or `Limit`; stop types are rejected with `UnsupportedOrder`.
    pub order_type: OrderType,
    /// Limit price (ignored for market orders), `> 0`.
    pub price: Price,
    /// Quantity, `> 0`.
    pub qty: Qty,
    /// Time in force. Market orders never rest: any remainder expires whatever the TIF.
    pub tif: TimeInForce,
    /// Reject rather than take liquidity.
    pub post_only: bool,
    /// Expiry of a `Gtd` order (engine time); ignored otherwise.
    pub expire_at: UnixNanos,
}

/// Whether a fill added or took liquidity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Liquidity {
    /// The order was resting (maker fee).
    Maker,
    /// The order took displayed liquidity (taker fee).
    Taker,
}

impl Liquidity {
    /// The `OrderEvent::liquidity` code: 1 maker, 2 taker.
    pub const fn code(self) -> u8 {
        match self {
            Self::Maker => 1,
            Self::Taker => 2,
        }
    }
}

/// What happened to an order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VenueEventKind {
    /// The order is working (emitted before any fill of it).
    Accepted,
    /// The order was refused; nothing of it traded.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// A fill.
    Fill {
        /// Execution id: the venue's counter, 1, 2, 3... over its life (snapshotted).
        exec_id: u64,
        /// Fill price.
        price: Price,
        /// Fill quantity.
        qty: Qty,
        /// Maker or taker.
        liquidity: Liquidity,
        /// Fee in the quote asset at the price scale (negative: rebate).
        fee: i64,
        /// Quantity still open after this fill (0: the order is done).
        leaves: Qty,
        /// Quantity filled so far, this fill included.
        cum: Qty,
    },
    /// Canceled on request.
    Canceled {
        /// Quantity that was open.
        leaves: Qty,
    },
    /// Expired: IOC or market remainder, `Day` roll, `Gtd` time.
    Expired {
        /// Quantity that was open.
        leaves: Qty,
    },
    /// A replace took effect.
    Replaced {
        /// New limit price.
        price: Price,
        /// New total quantity.
        qty: Qty,
        /// Open quantity after the replace (before any fill the new price causes).
        leaves: Qty,
        /// True if the order kept its queue position.
        kept_priority: bool,
    },
    /// A cancel or replace was refused; the order is unchanged.
    CancelRejected {
        /// Why.
        reason: RejectReason,
    },
}

/// One output of the venue, stamped with the engine time at which the venue acted.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueEvent {
    /// Venue time (a request's effective time, an expiry time, or the market event's time).
    pub ts: UnixNanos,
    /// The order concerned.
    pub order_id: OrderId,
    /// What happened.
    pub kind: VenueEventKind,
}

/// A resting order's state, for the OMS, tools and tests.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// The order as last submitted or replaced.
    pub order: PaperOrder,
    /// Open quantity.
    pub leaves: Qty,
    /// Filled quantity.
    pub cum: Qty,
    /// Estimated displayed quantity ahead of it at its price.
    pub queue_ahead: Qty,
    /// When it expires (`Day` and `Gtd`).
    pub expire_at: Option<UnixNanos>,
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// Deterministic hasher for the order-id index (never iterated, only looked up).
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Known {
    Live(u32),
    Done,
}

type IdMap = HashMap<OrderId, Known, BuildHasherDefault<IdHasher>>;

/// A request in flight towards the venue.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Request {
    New(PaperOrder),
    Cancel(OrderId),
    Replace {
        order_id: OrderId,
        price: Price,
        qty: Qty,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    due: UnixNanos,
    request: Request,
}

/// A resting order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OrderSlot {
    order: PaperOrder,
    live: bool,
    /// Time priority: smaller is earlier. Changes when the order loses its place.
    prio_seq: u64,
    /// Its key in the expiry list.
    expiry: Option<ExpiryKey>,
    leaves: i64,
    cum: i64,
    /// Estimated real displayed quantity ahead of it.
    queue_ahead: i64,
    /// The level's displayed quantity when last seen.
    level_seen: i64,
    /// Quantity traded at its price (hitting its side) since `level_seen`.
    traded_seen: i64,
    /// The level history is unreliable (book cleared or invalid): re-base on the next update.
    rebase: bool,
}

/// Position of a resting order in its side's list: sorted ascending, best order last.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct RestEntry {
    /// Price goodness: the price for bids, its negation for asks (higher is better).
    good: i64,
    /// `u64::MAX - prio_seq`: earlier orders sort later, so are met first from the end.
    inv_seq: u64,
    slot: u32,
}

/// Liquidity our taker fills took from a displayed level, until the market shows it gone.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Consumed {
    price: Price,
    /// Quantity taken (of the displayed `seen`).
    taken: i64,
    /// The level's displayed quantity when last seen.
    seen: i64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct ExpiryKey {
    at: UnixNanos,
    seq: u64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ExpiryEntry {
    key: ExpiryKey,
    slot: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InstrumentState {
    qty_places: u8,
    /// Resting orders per side (index 0 buys, 1 sells).
    resting: [Vec<RestEntry>; 2],
    /// Consumed displayed liquidity per book side, sorted by price.
    consumed: [Vec<Consumed>; 2],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Ledger {
    slots: Vec<OrderSlot>,
    free: Vec<u32>,
    /// Sorted descending by key: the next expiry is last.
    expiries: Vec<ExpiryEntry>,
    /// Recently finished ids, oldest first.
    done: VecDeque<OrderId>,
    events: Vec<VenueEvent>,
    next_seq: u64,
    next_exec_id: u64,
    stats: PaperStats,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    config: PaperConfig,
    clock: UnixNanos,
    instruments: Vec<Option<InstrumentState>>,
    pending: VecDeque<Pending>,
    ledger: Ledger,
}

/// A level to take from, planned before anything is changed (FOK needs the total first).
#[derive(Copy, Clone, Debug)]
struct PlanFill {
    price: Price,
    qty: i64,
    displayed: i64,
}

/// The embedded paper venue. See the [module documentation](super) for the model and the
/// call sequence.
///
/// Serializes (for engine snapshots) as its complete state: configuration, clock, resting
/// and in-flight orders, queue estimates, consumed liquidity, counters and undrained events.
/// Deserializing validates the state and rebuilds the order index.
#[derive(Debug, Clone)]
pub struct PaperVenue {
    s: State,
    index: IdMap,
    plan: Vec<PlanFill>,
}

#[inline]
const fn side_ix(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Higher is better for a resting order of `side`. Prices are validated `> 0` first, so the
/// negation cannot overflow.
#[inline]
const fn goodness(side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => price.0,
        Side::Sell => -price.0,
    }
}

/// True if a level at `level` is within a `side` order's `limit`.
#[inline]
fn within(side: Side, level: Price, limit: Price) -> bool {
    match side {
        Side::Buy => level <= limit,
        Side::Sell => level >= limit,
    }
}

/// First instant strictly after `ts` at which `Day` orders expire.
fn day_end(ts: UnixNanos, roll_s: u32) -> UnixNanos {
    let offset = u64::from(roll_s) * 1_000_000_000;
    if ts.0 < offset {
        return UnixNanos(offset);
    }
    let days = (ts.0 - offset) / NANOS_PER_DAY + 1;
    UnixNanos(offset.saturating_add(days.saturating_mul(NANOS_PER_DAY)))
}

/// Taken quantity still outstanding at a level now displaying `displayed`: the market
/// removing quantity from a level takes what we took first (it sits at the front).
#[inline]
fn outstanding(entry: &Consumed, displayed: i64) -> i64 {
    let removed = entry.seen.saturating_sub(displayed).max(0);
    entry.taken.saturating_sub(removed).max(0)
}

#[inline]
fn consumed_at(consumed: &[Consumed], price: Price, displayed: i64) -> i64 {
    match consumed.binary_search_by(|c| c.price.cmp(&price)) {
        Ok(i) => outstanding(&consumed[i], displayed),
        Err(_) => 0,
    }
}

fn add_consumed(consumed: &mut Vec<Consumed>, fill: &PlanFill) {
    match consumed.binary_search_by(|c| c.price.cmp(&fill.price)) {
        Ok(i) => {
            let entry = &mut consumed[i];
            entry.taken = outstanding(entry, fill.displayed).saturating_add(fill.qty);
            entry.seen = fill.displayed;
        }
        Err(i) => consumed.insert(
            i,
            Consumed {
                price: fill.price,
                taken: fill.qty,
                seen: fill.displayed,
            },
        ),
    }
}

/// Plans a `side` taker order of `want` against the opposite side of `book`, up to `limit`,
/// net of liquidity already consumed. Returns the quantity planned.
fn walk_plan<B: DepthView + ?Sized>(
    book: &B,
    side: Side,
    limit: Option<Price>,
    want: i64,
    consumed: &[Consumed],
    max_levels: u32,
    plan: &mut Vec<PlanFill>,
) -> i64 {
    plan.clear();
    let mut remaining = want;
    let mut levels = 0u32;
    book.for_each_level(side.opposite(), &mut |price, displayed| {
        if remaining <= 0 || levels >= max_levels {
            return false;
        }
        levels += 1;
        if limit.is_some_and(|limit| !within(side, price, limit)) {
            return false;
        }
        if price.0 <= 0 || displayed.0 <= 0 {
            return true;
        }
        let available = displayed.0 - consumed_at(consumed, price, displayed.0);
        if available > 0 {
            let qty = available.min(remaining);
            remaining -= qty;
            plan.push(PlanFill {
                price,
                qty,
                displayed: displayed.0,
            });
        }
        true
    });
    want - remaining
}

impl Ledger {
    fn push(&mut self, ts: UnixNanos, order_id: OrderId, kind: VenueEventKind) {
        match kind {
            VenueEventKind::Accepted => self.stats.accepted += 1,
            VenueEventKind::Rejected { .. } => self.stats.rejected += 1,
            VenueEventKind::Fill { .. } => self.stats.fills += 1,
            VenueEventKind::Canceled { .. } => self.stats.canceled += 1,
            VenueEventKind::Expired { .. } => self.stats.expired += 1,
            VenueEventKind::Replaced { .. } => self.stats.replaced += 1,
            VenueEventKind::CancelRejected { .. } => self.stats.cancel_rejected += 1,
        }
        self.events.push(VenueEvent { ts, order_id, kind });
    }

    #[allow(clippy::too_many_arguments, reason = "one fill's fields")]
    fn fill(
        &mut self,
        ts: UnixNanos,
        order_id: OrderId,
        price: Price,
        qty: i64,
        liquidity: Liquidity,
        fee: i64,
        leaves: i64,
        cum: i64,
    ) {
        let exec_id = self.next_exec_id;
        self.next_exec_id = self.next_exec_id.wrapping_add(1);
        self.push(
            ts,
            order_id,
            VenueEventKind::Fill {
                exec_id,
                price,
                qty: Qty(qty),
                liquidity,
                fee,
                leaves: Qty(leaves),
                cum: Qty(cum),
            },
        );
    }

    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn alloc(&mut self, slot: OrderSlot) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Remembers `order_id` as finished (bounded; the oldest is forgotten).
    fn remember_done(&mut self, index: &mut IdMap, order_id: OrderId, kept: usize) {
        if kept == 0 {
            index.remove(&order_id);
            return;
        }
        if self.done.len() >= kept
            && let Some(old) = self.done.pop_front()
            && index.get(&old) == Some(&Known::Done)
        {
            index.remove(&old);
        }
        self.done.push_back(order_id);
        index.insert(order_id, Known::Done);
    }

    fn insert_expiry(&mut self, key: ExpiryKey, slot: u32) {
        let at = self.expiries.partition_point(|e| e.key > key);
        self.expiries.insert(at, ExpiryEntry { key, slot });
    }

    fn remove_expiry(&mut self, key: ExpiryKey) {
        let at = self.expiries.partition_point(|e| e.key > key);
        if self.expiries.get(at).is_some_and(|e| e.key == key) {
            self.expiries.remove(at);
        }
    }

    /// Frees a resting order's slot after its entry left the resting list.
    fn finish(&mut self, index: &mut IdMap, slot: u32, kept: usize) {
        let s = &mut self.slots[slot as usize];
        s.live = false;
        let (order_id, expiry) = (s.order.order_id, s.expiry.take());
        if let Some(key) = expiry {
            self.remove_expiry(key);
        }
        self.free.push(slot);
        self.remember_done(index, order_id, kept);
    }
}

impl InstrumentState {
    fn new(qty_places: u8, hint: usize) -> Self {
        Self {
            qty_places,
            resting: [Vec::with_capacity(hint), Vec::with_capacity(hint)],
            consumed: [
                Vec::with_capacity(CONSUMED_HINT),
                Vec::with_capacity(CONSUMED_HINT),
            ],
        }
    }
}

/// Removes `slot`'s entry from its resting list (O(log n) search plus the shift).
fn unlink(resting: &mut [Vec<RestEntry>; 2], slot: &OrderSlot, slot_ix: u32) {
    let side = slot.order.side;
    let key = RestEntry {
        good: goodness(side, slot.order.price),
        inv_seq: u64::MAX - slot.prio_seq,
        slot: slot_ix,
    };
    let list = &mut resting[side_ix(side)];
    if let Ok(at) = list.binary_search(&key) {
        list.remove(at);
    }
}

fn link(resting: &mut [Vec<RestEntry>; 2], slot: &OrderSlot, slot_ix: u32) {
    let side = slot.order.side;
    let key = RestEntry {
        good: goodness(side, slot.order.price),
        inv_seq: u64::MAX - slot.prio_seq,
        slot: slot_ix,
    };
    let list = &mut resting[side_ix(side)];
    let at = list.partition_point(|e| *e < key);
    list.insert(at, key);
}

/// Drops the entries in `list[start..]` whose order is done, finishing them; keeps order.
fn compact(
    list: &mut Vec<RestEntry>,
    start: usize,
    ledger: &mut Ledger,
    index: &mut IdMap,
    kept: usize,
) {
    let mut write = start;
    for read in start..list.len() {
        let entry = list[read];
        if ledger.slots[entry.slot as usize].leaves == 0 {
            ledger.finish(index, entry.slot, kept);
        } else {
            list[write] = entry;
            write += 1;
        }
    }
    list.truncate(write);
}

/// Fills the resting orders of `side` that the opposite displayed book crosses, as makers
/// at their own price, consuming the crossing liquidity.
#[allow(clippy::too_many_arguments, reason = "split borrows of the venue")]
fn uncross<B: DepthView + ?Sized>(
    inst: &mut InstrumentState,
    ledger: &mut Ledger,
    index: &mut IdMap,
    plan: &mut Vec<PlanFill>,
    config: &PaperConfig,
    book: &B,
    side: Side,
    ts: UnixNanos,
) {
    let InstrumentState {
        qty_places,
        resting,
        consumed,
    } = inst;
    let list = &mut resting[side_ix(side)];
    let Some(best) = list.last() else { return };
    let best_price = ledger.slots[best.slot as usize].order.price;
    let Some((opposite, _)) = book.best(side.opposite()) else {
        return;
    };
    if opposite.0 <= 0 || !within(side, opposite, best_price) {
        return;
    }
    let consumed = &mut consumed[side_ix(side.opposite())];
    let start = list.partition_point(|e| e.good < goodness(side, opposite));
    let mut any_done = false;
    for i in (start..list.len()).rev() {
        let slot_ix = list[i].slot;
        let s = &ledger.slots[slot_ix as usize];
        let (price, leaves) = (s.order.price, s.leaves);
        let total = walk_plan(
            book,
            side,
            Some(price),
            leaves,
            consumed,
            config.max_walk_levels,
            plan,
        );
        if total <= 0 {
            continue;
        }
        for step in plan.iter() {
            add_consumed(consumed, step);
        }
        let s = &mut ledger.slots[slot_ix as usize];
        s.leaves -= total;
        s.cum += total;
        let (order_id, leaves, cum) = (s.order.order_id, s.leaves, s.cum);
        any_done |= leaves == 0;
        let fee = fee(price, Qty(total), *qty_places, config.maker_fee_bp);
        ledger.fill(
            ts,
            order_id,
            price,
            total,
            Liquidity::Maker,
            fee,
            leaves,
            cum,
        );
    }
    if any_done {
        compact(list, start, ledger, index, config.done_orders_kept as usize);
    }
}

impl PaperVenue {
    /// A venue with no instruments.
    ///
    /// # Errors
    ///
    /// [`PaperError::Config`] if a value is out of range.
    pub fn new(config: PaperConfig) -> Result<Self, PaperError> {
        config.validate()?;
        let max = config.max_orders as usize;
        let kept = config.done_orders_kept as usize;
        let walk = (config.max_walk_levels as usize).min(4_096);
        Ok(Self {
            s: State {
                clock: UnixNanos::ZERO,
                instruments: Vec::new(),
                pending: VecDeque::with_capacity(PENDING_HINT.min(max)),
                ledger: Ledger {
                    slots: Vec::with_capacity(max),
                    free: Vec::with_capacity(max),
                    expiries: Vec::with_capacity(RESTING_HINT.min(max)),
                    done: VecDeque::with_capacity(kept),
                    events: Vec::with_capacity(EVENTS_HINT),
                    next_seq: 1,
                    next_exec_id: 1,
                    stats: PaperStats::default(),
                },
                config,
            },
            index: IdMap::with_capacity_and_hasher(max + kept, BuildHasherDefault::default()),
            plan: Vec::with_capacity(walk),
        })
    }

    /// A venue trading every instrument of `registry`.
    ///
    /// # Errors
    ///
    /// As [`PaperVenue::new`] and [`PaperVenue::add_instrument`].
    pub fn with_registry(
        config: PaperConfig,
        registry: &InstrumentRegistry,
    ) -> Result<Self, PaperError> {
        let mut venue = Self::new(config)?;
        for instrument in registry.instruments() {
            venue.add_instrument(instrument.id, instrument.qty_scale)?;
        }
        Ok(venue)
    }

    /// Registers `instrument`, whose quantities have `qty_scale` decimal places (fees need
    /// it), and pre-allocates its structures.
    ///
    /// # Errors
    ///
    /// [`PaperError::InstrumentIdTooLarge`] beyond [`MAX_INSTRUMENTS`],
    /// [`PaperError::InstrumentExists`] if already registered.
    pub fn add_instrument(
        &mut self,
        instrument: InstrumentId,
        qty_scale: Scale,
    ) -> Result<(), PaperError> {
        let ix = instrument.index();
        if ix >= MAX_INSTRUMENTS {
            return Err(PaperError::InstrumentIdTooLarge(instrument));
        }
        if self.s.instruments.len() <= ix {
            self.s.instruments.resize_with(ix + 1, || None);
        }
        if self.s.instruments[ix].is_some() {
            return Err(PaperError::InstrumentExists(instrument));
        }
        let hint = RESTING_HINT.min(self.s.config.max_orders as usize);
        self.s.instruments[ix] = Some(InstrumentState::new(qty_scale.places(), hint));
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &PaperConfig {
        &self.s.config
    }

    /// Venue time: the latest `now` seen (it never goes backwards).
    pub fn clock(&self) -> UnixNanos {
        self.s.clock
    }

    /// Counters.
    pub fn stats(&self) -> PaperStats {
        self.s.ledger.stats
    }

    /// Resting orders.
    pub fn open_orders(&self) -> usize {
        self.s.ledger.live()
    }

    /// Requests submitted but not yet in effect (latency).
    pub fn in_flight(&self) -> usize {
        self.s.pending.len()
    }

    /// Events not yet drained.
    pub fn pending_events(&self) -> usize {
        self.s.ledger.events.len()
    }

    /// The earliest time at which a request takes effect or an order expires: the engine
    /// should call [`PaperVenue::on_time`] then (or at any later event).
    pub fn next_due(&self) -> Option<UnixNanos> {
        let request = self.s.pending.front().map(|p| p.due);
        let expiry = self.s.ledger.expiries.last().map(|e| e.key.at);
        match (request, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A resting order's state.
    pub fn order(&self, order_id: OrderId) -> Option<OrderView> {
        let Some(&Known::Live(slot)) = self.index.get(&order_id) else {
            return None;
        };
        let s = self.s.ledger.slots.get(slot as usize)?;
        Some(OrderView {
            order: s.order,
            leaves: Qty(s.leaves),
            cum: Qty(s.cum),
            queue_ahead: Qty(s.queue_ahead),
            expire_at: s.expiry.map(|k| k.at),
        })
    }

    /// Hands every undrained event to `out`, oldest first, and forgets them. Does not
    /// allocate.
    pub fn drain(&mut self, mut out: impl FnMut(VenueEvent)) {
        for event in self.s.ledger.events.drain(..) {
            out(event);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Requests
    // -----------------------------------------------------------------------------------------

    /// Submits a new order; it takes effect at `now + latency`.
    pub fn submit<M: Books + ?Sized>(&mut self, order: PaperOrder, now: UnixNanos, books: &M) {
        self.enqueue(Request::New(order), now, books);
    }

    /// Requests a cancel; it takes effect at `now + latency`.
    pub fn cancel<M: Books + ?Sized>(&mut self, order_id: OrderId, now: UnixNanos, books: &M) {
        self.enqueue(Request::Cancel(order_id), now, books);
    }

    /// Requests a replace to `price` and total quantity `qty` (filled quantity included);
    /// it takes effect at `now + latency`.
    ///
    /// Same price and a smaller quantity keep the queue position; a price change or a larger
    /// quantity re-queues the order behind the level's displayed quantity (and, if the new
    /// price is marketable, it takes liquidity first).
    pub fn replace<M: Books + ?Sized>(
        &mut self,
        order_id: OrderId,
        price: Price,
        qty: Qty,
        now: UnixNanos,
        books: &M,
    ) {
        let request = Request::Replace {
            order_id,
            price,
            qty,
        };
        self.enqueue(request, now, books);
    }

    /// Advances venue time to `now`: requests and expiries due by then take effect.
    pub fn on_time<M: Books + ?Sized>(&mut self, now: UnixNanos, books: &M) {
        self.observe(now);
        self.run_due(books);
    }

    fn observe(&mut self, now: UnixNanos) {
        self.s.clock = self.s.clock.max(now);
    }

    fn enqueue<M: Books + ?Sized>(&mut self, request: Request, now: UnixNanos, books: &M) {
        self.observe(now);
        self.run_due(books);
        self.s.ledger.stats.requests += 1;
        let clock = self.s.clock;
        if self.s.pending.len() >= self.s.config.max_orders as usize {
            let (order_id, kind) = match request {
                Request::New(order) => (
                    order.order_id,
                    VenueEventKind::Rejected {
                        reason: RejectReason::RateLimited,
                    },
                ),
                Request::Cancel(order_id) | Request::Replace { order_id, .. } => (
                    order_id,
                    VenueEventKind::CancelRejected {
                        reason: RejectReason::RateLimited,
                    },
                ),
            };
            self.s.ledger.push(clock, order_id, kind);
            return;
        }
        let due = UnixNanos(clock.0.saturating_add(self.s.config.latency_ns()));
        if due <= clock && self.s.pending.is_empty() {
            // No latency and nothing ahead of it: the same as queueing, without the queue.
            self.apply(Pending { due, request }, books);
            self.run_due(books);
            return;
        }
        self.s.pending.push_back(Pending { due, request });
        self.run_due(books);
    }

    /// Applies requests and expiries due by the clock, in time order (an expiry first on a
    /// tie). Requests all have the same latency, so the queue is already in time order.
    fn run_due<M: Books + ?Sized>(&mut self, books: &M) {
        let clock = self.s.clock;
        // Each step consumes a request or an expiry; a request adds at most one expiry.
        let mut steps = 2 * self.s.pending.len() + self.s.ledger.expiries.len() + 1;
        while steps > 0 {
            steps -= 1;
            let request = self
                .s
                .pending
                .front()
                .map(|p| p.due)
                .filter(|&d| d <= clock);
            let expiry = self
                .s
                .ledger
                .expiries
                .last()
                .map(|e| e.key.at)
                .filter(|&a| a <= clock);
            match (request, expiry) {
                (None, None) => break,
                (Some(r), Some(e)) if e <= r => self.expire_next(),
                (None, Some(_)) => self.expire_next(),
                (Some(_), _) => {
                    if let Some(pending) = self.s.pending.pop_front() {
                        self.apply(pending, books);
                    }
                }
            }
        }
    }

    fn expire_next(&mut self) {
        let Some(entry) = self.s.ledger.expiries.pop() else {
            return;
        };
        let slot = self.s.ledger.slots[entry.slot as usize];
        if let Some(inst) = self
            .s
            .instruments
            .get_mut(slot.order.instrument.index())
            .and_then(Option::as_mut)
        {
            unlink(&mut inst.resting, &slot, entry.slot);
        }
        let ledger = &mut self.s.ledger;
        ledger.slots[entry.slot as usize].expiry = None;
        let leaves = Qty(slot.leaves);
        ledger.push(
            entry.key.at,
            slot.order.order_id,
            VenueEventKind::Expired { leaves },
        );
        let kept = self.s.config.done_orders_kept as usize;
        ledger.finish(&mut self.index, entry.slot, kept);
    }

    fn apply<M: Books + ?Sized>(&mut self, pending: Pending, books: &M) {
        match pending.request {
            Request::New(order) => self.apply_new(order, pending.due, books),
            Request::Cancel(order_id) => self.apply_cancel(order_id, pending.due),
            Request::Replace {
                order_id,
                price,
                qty,
            } => self.apply_replace(order_id, price, qty, pending.due, books),
        }
    }

    fn apply_new<M: Books + ?Sized>(&mut self, order: PaperOrder, ts: UnixNanos, books: &M) {
        let Self { s, index, plan } = self;
        let State {
            config,
            instruments,
            ledger,
            ..
        } = s;
        let reject = |ledger: &mut Ledger, reason| {
            ledger.push(ts, order.order_id, VenueEventKind::Rejected { reason });
        };
        if order.order_id == OrderId(0) || index.contains_key(&order.order_id) {
            return reject(ledger, RejectReason::VenueReject);
        }
        let Some(inst) = instruments
            .get_mut(order.instrument.index())
            .and_then(Option::as_mut)
        else {
            return reject(ledger, RejectReason::UnknownInstrument);
        };
        if order.qty.0 <= 0 {
            return reject(ledger, RejectReason::InvalidQuantity);
        }
        let limit = match order.order_type {
            OrderType::Market if order.post_only => {
                return reject(ledger, RejectReason::UnsupportedOrder);
            }
            OrderType::Market => None,
            OrderType::Limit if order.price.0 <= 0 => {
                return reject(ledger, RejectReason::InvalidPrice);
            }
            OrderType::Limit => Some(order.price),
            OrderType::Stop | OrderType::StopLimit => {
                return reject(ledger, RejectReason::UnsupportedOrder);
            }
        };
        let rests = limit.is_some()
            && matches!(
                order.tif,
                TimeInForce::Gtc | TimeInForce::Day | TimeInForce::Gtd
            );
        let expire_at = match order.tif {
            _ if !rests => None,
            TimeInForce::Gtd if order.expire_at <= ts => {
                return reject(ledger, RejectReason::VenueReject);
            }
            TimeInForce::Gtd => Some(order.expire_at),
            TimeInForce::Day => Some(day_end(ts, config.day_roll_utc_s)),
            _ => None,
        };
        let Some(book) = books.book(order.instrument).filter(|b| b.is_valid()) else {
            return reject(ledger, RejectReason::BookInvalid);
        };
        if rests && ledger.live() >= config.max_orders as usize {
            return reject(ledger, RejectReason::MaxOpenOrders);
        }
        let opposite = side_ix(order.side.opposite());
        let qty = order.qty.0;
        let planned = walk_plan(
            book,
            order.side,
            limit,
            qty,
            &inst.consumed[opposite],
            config.max_walk_levels,
            plan,
        );
        if order.post_only && planned > 0 {
            return reject(ledger, RejectReason::PostOnlyWouldCross);
        }
        if order.tif == TimeInForce::Fok && planned < qty {
            return reject(ledger, RejectReason::FillOrKillUnfilled);
        }
        if limit.is_none() && planned == 0 {
            return reject(ledger, RejectReason::NoLiquidity);
        }
        ledger.push(ts, order.order_id, VenueEventKind::Accepted);
        let cum = take(
            inst,
            ledger,
            plan,
            config,
            order.order_id,
            order.side,
            qty,
            0,
            ts,
        );
        let leaves = qty - cum;
        let kept = config.done_orders_kept as usize;
        if leaves == 0 {
            ledger.remember_done(index, order.order_id, kept);
        } else if !rests {
            ledger.push(
                ts,
                order.order_id,
                VenueEventKind::Expired {
                    leaves: Qty(leaves),
                },
            );
            ledger.remember_done(index, order.order_id, kept);
        } else {
            let ahead = book.level_qty(order.side, order.price).0.max(0);
            let prio_seq = ledger.next_seq();
            let slot = OrderSlot {
                order,
                live: true,
                prio_seq,
                expiry: expire_at.map(|at| ExpiryKey { at, seq: prio_seq }),
                leaves,
                cum,
                queue_ahead: ahead,
                level_seen: ahead,
                traded_seen: 0,
                rebase: false,
            };
            let slot_ix = ledger.alloc(slot);
            link(&mut inst.resting, &slot, slot_ix);
            if let Some(key) = slot.expiry {
                ledger.insert_expiry(key, slot_ix);
            }
            index.insert(order.order_id, Known::Live(slot_ix));
        }
    }

    fn apply_cancel(&mut self, order_id: OrderId, ts: UnixNanos) {
        let Self { s, index, .. } = self;
        let State {
            config,
            instruments,
            ledger,
            ..
        } = s;
        let slot_ix = match index.get(&order_id) {
            Some(&Known::Live(slot)) => slot,
            found => {
                let reason = match found {
                    None => RejectReason::UnknownOrder,
                    Some(_) => RejectReason::TooLateToCancel,
                };
                ledger.push(ts, order_id, VenueEventKind::CancelRejected { reason });
                return;
            }
        };
        let slot = ledger.slots[slot_ix as usize];
        if let Some(inst) = instruments
            .get_mut(slot.order.instrument.index())
            .and_then(Option::as_mut)
        {
            unlink(&mut inst.resting, &slot, slot_ix);
        }
        let leaves = Qty(slot.leaves);
        ledger.push(ts, order_id, VenueEventKind::Canceled { leaves });
        ledger.finish(index, slot_ix, config.done_orders_kept as usize);
    }

    fn apply_replace<M: Books + ?Sized>(
        &mut self,
        order_id: OrderId,
        price: Price,
        qty: Qty,
        ts: UnixNanos,
        books: &M,
    ) {
        let Self { s, index, plan } = self;
        let State {
            config,
            instruments,
            ledger,
            ..
        } = s;
        let refuse = |ledger: &mut Ledger, reason| {
            ledger.push(ts, order_id, VenueEventKind::CancelRejected { reason });
        };
        let slot_ix = match index.get(&order_id) {
            Some(&Known::Live(slot)) => slot,
            None => return refuse(ledger, RejectReason::UnknownOrder),
            Some(Known::Done) => return refuse(ledger, RejectReason::TooLateToCancel),
        };
        let old = ledger.slots[slot_ix as usize];
        if qty.0 <= 0 || qty.0 <= old.cum {
            return refuse(ledger, RejectReason::InvalidQuantity);
        }
        if price.0 <= 0 {
            return refuse(ledger, RejectReason::InvalidPrice);
        }
        let Some(inst) = instruments
            .get_mut(old.order.instrument.index())
            .and_then(Option::as_mut)
        else {
            return refuse(ledger, RejectReason::UnknownInstrument);
        };
        let leaves = qty.0 - old.cum;
        if price == old.order.price && qty <= old.order.qty {
            let s = &mut ledger.slots[slot_ix as usize];
            s.order.qty = qty;
            s.leaves = leaves;
            let kind = VenueEventKind::Replaced {
                price,
                qty,
                leaves: Qty(leaves),
                kept_priority: true,
            };
            ledger.push(ts, order_id, kind);
            return;
        }
        let Some(book) = books.book(old.order.instrument).filter(|b| b.is_valid()) else {
            return refuse(ledger, RejectReason::BookInvalid);
        };
        let side = old.order.side;
        let planned = walk_plan(
            book,
            side,
            Some(price),
            leaves,
            &inst.consumed[side_ix(side.opposite())],
            config.max_walk_levels,
            plan,
        );
        if old.order.post_only && planned > 0 {
            return refuse(ledger, RejectReason::PostOnlyWouldCross);
        }
        unlink(&mut inst.resting, &old, slot_ix);
        let kind = VenueEventKind::Replaced {
            price,
            qty,
            leaves: Qty(leaves),
            kept_priority: false,
        };
        ledger.push(ts, order_id, kind);
        let cum = take(
            inst, ledger, plan, config, order_id, side, qty.0, old.cum, ts,
        );
        let leaves = qty.0 - cum;
        let prio_seq = ledger.next_seq();
        let ahead = book.level_qty(side, price).0.max(0);
        let s = &mut ledger.slots[slot_ix as usize];
        s.order.price = price;
        s.order.qty = qty;
        s.leaves = leaves;
        s.cum = cum;
        s.prio_seq = prio_seq;
        s.queue_ahead = ahead;
        s.level_seen = ahead;
        s.traded_seen = 0;
        s.rebase = false;
        let slot = *s;
        if leaves == 0 {
            ledger.finish(index, slot_ix, config.done_orders_kept as usize);
        } else {
            link(&mut inst.resting, &slot, slot_ix);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Market data
    // -----------------------------------------------------------------------------------------

    /// A trade printed on the real market: fills resting orders it went through, and those
    /// at its price behind the estimated queue. `aggressor` is the taker's side, `None` if
    /// the venue does not say (then it may have hit either side).
    pub fn on_trade<M: Books + ?Sized>(
        &mut self,
        instrument: InstrumentId,
        price: Price,
        qty: Qty,
        aggressor: Option<Side>,
        now: UnixNanos,
        books: &M,
    ) {
        self.observe(now);
        self.run_due(books);
        let Self { s, index, .. } = self;
        let State {
            config,
            clock,
            instruments,
            ledger,
            ..
        } = s;
        let inst = instruments
            .get_mut(instrument.index())
            .and_then(Option::as_mut);
        let (Some(inst), true) = (inst, price.0 > 0 && qty.0 > 0) else {
            ledger.stats.ignored_market_events += 1;
            return;
        };
        for side in [Side::Buy, Side::Sell] {
            let at_price = aggressor != Some(side);
            trade_side(
                inst, ledger, index, config, side, price, qty.0, at_price, *clock,
            );
        }
    }

    /// A level of the real book changed to `qty` (0: removed). Call it after the engine's
    /// book has applied the change: it advances queue estimates at that level, forgets
    /// consumed liquidity the market has removed, and fills resting orders the new book
    /// crosses.
    pub fn on_book_delta<M: Books + ?Sized>(
        &mut self,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        qty: Qty,
        now: UnixNanos,
        books: &M,
    ) {
        self.observe(now);
        self.run_due(books);
        let Self { s, index, plan } = self;
        let State {
            config,
            clock,
            instruments,
            ledger,
            ..
        } = s;
        let inst = instruments
            .get_mut(instrument.index())
            .and_then(Option::as_mut);
        let (Some(inst), true) = (inst, price.0 > 0 && qty.0 >= 0) else {
            ledger.stats.ignored_market_events += 1;
            return;
        };
        let book = books.book(instrument).filter(|b| b.is_valid());
        let consumed = &mut inst.consumed[side_ix(side)];
        if let Ok(at) = consumed.binary_search_by(|c| c.price.cmp(&price)) {
            let left = outstanding(&consumed[at], qty.0);
            if left == 0 || qty.0 == 0 {
                consumed.remove(at);
            } else {
                consumed[at] = Consumed {
                    price,
                    taken: left,
                    seen: qty.0,
                };
            }
        }
        let list = &inst.resting[side_ix(side)];
        let good = goodness(side, price);
        let lo = list.partition_point(|e| e.good < good);
        let hi = list.partition_point(|e| e.good <= good);
        for entry in &list[lo..hi] {
            let slot = &mut ledger.slots[entry.slot as usize];
            advance_queue(slot, qty.0, config.queue_model, book.is_some());
        }
        if let Some(book) = book {
            uncross(
                inst,
                ledger,
                index,
                plan,
                config,
                book,
                side.opposite(),
                *clock,
            );
        }
    }

    /// The real book of `instrument` was cleared (a snapshot follows): consumed liquidity is
    /// forgotten and queue estimates re-base on the next update of their level.
    pub fn on_book_clear<M: Books + ?Sized>(
        &mut self,
        instrument: InstrumentId,
        now: UnixNanos,
        books: &M,
    ) {
        self.observe(now);
        self.run_due(books);
        let State {
            instruments,
            ledger,
            ..
        } = &mut self.s;
        let Some(inst) = instruments
            .get_mut(instrument.index())
            .and_then(Option::as_mut)
        else {
            ledger.stats.ignored_market_events += 1;
            return;
        };
        for side in 0..2 {
            inst.consumed[side].clear();
            for entry in &inst.resting[side] {
                ledger.slots[entry.slot as usize].rebase = true;
            }
        }
    }

    /// The book of `instrument` became valid again (after a resynchronisation): fills the
    /// resting orders it crosses.
    pub fn on_book_valid<M: Books + ?Sized>(
        &mut self,
        instrument: InstrumentId,
        now: UnixNanos,
        books: &M,
    ) {
        self.observe(now);
        self.run_due(books);
        let Self { s, index, plan } = self;
        let State {
            config,
            clock,
            instruments,
            ledger,
            ..
        } = s;
        let inst = instruments
            .get_mut(instrument.index())
            .and_then(Option::as_mut);
        let book = books.book(instrument).filter(|b| b.is_valid());
        if let (Some(inst), Some(book)) = (inst, book) {
            for side in [Side::Buy, Side::Sell] {
                uncross(inst, ledger, index, plan, config, book, side, *clock);
            }
        }
    }

    /// [`PaperVenue::on_book_delta`] / [`PaperVenue::on_book_clear`] from a feed record;
    /// records with unknown codes are counted and ignored.
    pub fn on_book_delta_record<M: Books + ?Sized>(
        &mut self,
        delta: &BookDelta,
        now: UnixNanos,
        books: &M,
    ) {
        let side = Side::try_from(delta.side);
        match (BookAction::try_from(delta.action), side) {
            (Ok(BookAction::Set), Ok(side)) => {
                self.on_book_delta(delta.instrument, side, delta.price, delta.qty, now, books);
            }
            (Ok(BookAction::Delete), Ok(side)) => {
                self.on_book_delta(delta.instrument, side, delta.price, Qty::ZERO, now, books);
            }
            (Ok(BookAction::Clear), _) => self.on_book_clear(delta.instrument, now, books),
            _ => {
                self.on_time(now, books);
                self.s.ledger.stats.ignored_market_events += 1;
            }
        }
    }

    /// [`PaperVenue::on_trade`] from a feed record (aggressor code 0: unknown).
    pub fn on_trade_record<M: Books + ?Sized>(&mut self, trade: &Trade, now: UnixNanos, books: &M) {
        let aggressor = Side::try_from(trade.aggressor).ok();
        if trade.aggressor != 0 && aggressor.is_none() {
            self.on_time(now, books);
            self.s.ledger.stats.ignored_market_events += 1;
            return;
        }
        self.on_trade(
            trade.instrument,
            trade.price,
            trade.qty,
            aggressor,
            now,
            books,
        );
    }

    // -----------------------------------------------------------------------------------------
    // Snapshots
    // -----------------------------------------------------------------------------------------

    /// Rebuilds the venue from a deserialized state, checking every internal link.
    fn from_state(s: State) -> Result<Self, PaperError> {
        s.config.validate()?;
        let corrupt = |what: &'static str| Err(PaperError::CorruptSnapshot(what));
        let ledger = &s.ledger;
        let max = s.config.max_orders as usize;
        let kept = s.config.done_orders_kept as usize;
        let mut index = IdMap::with_capacity_and_hasher(max + kept, BuildHasherDefault::default());
        let mut live = 0usize;
        for (i, slot) in ledger.slots.iter().enumerate() {
            if !slot.live {
                continue;
            }
            live += 1;
            let o = &slot.order;
            if slot.leaves <= 0
                || slot.cum < 0
                || slot.leaves.checked_add(slot.cum) != Some(o.qty.0)
                || o.price.0 <= 0
                || slot.queue_ahead < 0
            {
                return corrupt("resting order quantities");
            }
            if index.insert(o.order_id, Known::Live(i as u32)).is_some() {
                return corrupt("duplicate live order id");
            }
        }
        if live + ledger.free.len() != ledger.slots.len() || live > max {
            return corrupt("free list");
        }
        for &f in &ledger.free {
            if ledger.slots.get(f as usize).is_none_or(|s| s.live) {
                return corrupt("free list");
            }
        }
        let mut linked = 0usize;
        for (ix, inst) in s.instruments.iter().enumerate() {
            let Some(inst) = inst else { continue };
            if inst.qty_places > Scale::MAX_PLACES {
                return corrupt("quantity scale");
            }
            for side in [Side::Buy, Side::Sell] {
                let list = &inst.resting[side_ix(side)];
                if !list.is_sorted_by(|a, b| a < b) {
                    return corrupt("resting order");
                }
                for e in list {
                    let ok = ledger.slots.get(e.slot as usize).is_some_and(|s| {
                        s.live
                            && s.order.side == side
                            && s.order.instrument.index() == ix
                            && e.good == goodness(side, s.order.price)
                            && e.inv_seq == u64::MAX - s.prio_seq
                    });
                    if !ok {
                        return corrupt("resting order link");
                    }
                    linked += 1;
                }
                let consumed = &inst.consumed[side_ix(side)];
                if !consumed.is_sorted_by(|a, b| a.price < b.price) {
                    return corrupt("consumed liquidity");
                }
            }
        }
        if linked != live {
            return corrupt("resting orders not linked");
        }
        if !ledger.expiries.is_sorted_by(|a, b| a.key > b.key) {
            return corrupt("expiry order");
        }
        for e in &ledger.expiries {
            let ok = ledger
                .slots
                .get(e.slot as usize)
                .is_some_and(|s| s.live && s.expiry == Some(e.key));
            if !ok {
                return corrupt("expiry link");
            }
        }
        let with_expiry = ledger
            .slots
            .iter()
            .filter(|s| s.live && s.expiry.is_some())
            .count();
        if with_expiry != ledger.expiries.len() {
            return corrupt("expiry count");
        }
        if ledger.done.len() > kept {
            return corrupt("finished order ids");
        }
        for &id in &ledger.done {
            if index.insert(id, Known::Done).is_some() {
                return corrupt("finished order id also known");
            }
        }
        let walk = (s.config.max_walk_levels as usize).min(4_096);
        Ok(Self {
            s,
            index,
            plan: Vec::with_capacity(walk),
        })
    }
}

/// Applies a taker plan for order `order_id` (`qty` in total, `cum` already filled):
/// consumes the levels and emits one taker fill per level. Returns the new `cum`.
#[allow(clippy::too_many_arguments, reason = "split borrows of the venue")]
fn take(
    inst: &mut InstrumentState,
    ledger: &mut Ledger,
    plan: &[PlanFill],
    config: &PaperConfig,
    order_id: OrderId,
    side: Side,
    qty: i64,
    mut cum: i64,
    ts: UnixNanos,
) -> i64 {
    let consumed = &mut inst.consumed[side_ix(side.opposite())];
    for step in plan {
        add_consumed(consumed, step);
        cum += step.qty;
        let fee = fee(
            step.price,
            Qty(step.qty),
            inst.qty_places,
            config.taker_fee_bp,
        );
        let leaves = qty - cum;
        ledger.fill(
            ts,
            order_id,
            step.price,
            step.qty,
            Liquidity::Taker,
            fee,
            leaves,
            cum,
        );
    }
    cum
}

/// Moves a resting order's queue estimate after its level changed to `new_qty`.
fn advance_queue(slot: &mut OrderSlot, new_qty: i64, model: QueueModel, informative: bool) {
    if informative && !slot.rebase {
        let decrease = slot.level_seen.saturating_sub(new_qty);
        let cancelled = decrease.saturating_sub(slot.traded_seen).max(0);
        let ahead = slot.queue_ahead;
        let advance = match model {
            QueueModel::Conservative => 0,
            QueueModel::Optimistic => cancelled,
            QueueModel::Proportional => {
                let level = slot.level_seen.saturating_sub(slot.traded_seen).max(1);
                (i128::from(cancelled) * i128::from(ahead) / i128::from(level)) as i64
            }
        };
        slot.queue_ahead = ahead.saturating_sub(advance).max(0);
    }
    slot.queue_ahead = slot.queue_ahead.min(new_qty).max(0);
    slot.level_seen = new_qty;
    slot.traded_seen = 0;
    slot.rebase = false;
}

/// Fills resting orders of `side` from a trade at `price` of `qty`: through its price in
/// price-time priority, then at its price (if `at_price`) behind the queue estimate.
#[allow(clippy::too_many_arguments, reason = "split borrows of the venue")]
fn trade_side(
    inst: &mut InstrumentState,
    ledger: &mut Ledger,
    index: &mut IdMap,
    config: &PaperConfig,
    side: Side,
    price: Price,
    qty: i64,
    at_price: bool,
    ts: UnixNanos,
) {
    let list = &mut inst.resting[side_ix(side)];
    let good = goodness(side, price);
    let start = list.partition_point(|e| e.good < good);
    let mut budget = qty;
    let mut any_done = false;
    for i in (start..list.len()).rev() {
        let entry = list[i];
        let s = &mut ledger.slots[entry.slot as usize];
        let fill = if entry.good > good {
            s.queue_ahead = 0;
            let fill = match config.trade_through {
                TradeThrough::TradeQty => s.leaves.min(budget),
                TradeThrough::Full => s.leaves,
            };
            budget = budget.saturating_sub(fill).max(0);
            fill
        } else if at_price {
            // The aggressor's volume walks the virtual queue: the real quantity ahead, then
            // our orders in time priority (each one's fill reduces what reaches the next).
            let fill = budget.saturating_sub(s.queue_ahead).clamp(0, s.leaves);
            budget -= fill;
            s.queue_ahead = s.queue_ahead.saturating_sub(qty).max(0);
            s.traded_seen = s.traded_seen.saturating_add(qty);
            fill
        } else {
            break;
        };
        if fill <= 0 {
            continue;
        }
        s.leaves -= fill;
        s.cum += fill;
        let (order_id, limit, leaves, cum) = (s.order.order_id, s.order.price, s.leaves, s.cum);
        any_done |= leaves == 0;
        let fee = fee(limit, Qty(fill), inst.qty_places, config.maker_fee_bp);
        ledger.fill(
            ts,
            order_id,
            limit,
            fill,
            Liquidity::Maker,
            fee,
            leaves,
            cum,
        );
    }
    if any_done {
        compact(list, start, ledger, index, config.done_orders_kept as usize);
    }
}

impl Serialize for PaperVenue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.s.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PaperVenue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let state = State::deserialize(deserializer)?;
        Self::from_state(state).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_end_rolls_at_the_offset() {
        let day = NANOS_PER_DAY;
        assert_eq!(day_end(UnixNanos(0), 0), UnixNanos(day));
        assert_eq!(day_end(UnixNanos(day - 1), 0), UnixNanos(day));
        assert_eq!(day_end(UnixNanos(day), 0), UnixNanos(2 * day));
        let hour = 3_600 * 1_000_000_000;
        assert_eq!(day_end(UnixNanos(hour), 7_200), UnixNanos(2 * hour));
        assert_eq!(
            day_end(UnixNanos(3 * hour), 7_200),
            UnixNanos(day + 2 * hour)
        );
        assert_eq!(day_end(UnixNanos(u64::MAX), 0), UnixNanos(u64::MAX));
    }

    #[test]
    fn consumed_liquidity_follows_the_level() {
        let e = Consumed {
            price: Price(100),
            taken: 3,
            seen: 10,
        };
        assert_eq!(outstanding(&e, 10), 3);
        assert_eq!(outstanding(&e, 12), 3, "additions join behind");
        assert_eq!(outstanding(&e, 8), 1, "removals take from the front first");
        assert_eq!(outstanding(&e, 5), 0);
    }

    #[test]
    fn restore_refuses_inconsistent_state() {
        use crate::paper::VecBook;
        let config = PaperConfig {
            latency_us: 0,
            ..PaperConfig::default()
        };
        let mut venue = PaperVenue::new(config).unwrap();
        venue
            .add_instrument(InstrumentId(0), Scale::new(0).unwrap())
            .unwrap();
        let mut book = VecBook::new();
        book.set(Side::Sell, Price(100), Qty(5));
        let books = [book];
        let order = PaperOrder {
            order_id: OrderId(7),
            account: AccountId(0),
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Price(99),
            qty: Qty(3),
            tif: TimeInForce::Day,
            post_only: false,
            expire_at: UnixNanos::ZERO,
        };
        venue.submit(order, UnixNanos(1), &books[..]);
        venue.submit(
            PaperOrder {
                order_id: OrderId(8),
                ..order
            },
            UnixNanos(2),
            &books[..],
        );
        venue.cancel(OrderId(8), UnixNanos(3), &books[..]);
        assert!(PaperVenue::from_state(venue.s.clone()).is_ok());

        fn resting(s: &mut State) -> &mut Vec<RestEntry> {
            &mut s.instruments[0].as_mut().unwrap().resting[0]
        }
        type Corrupt = fn(&mut State);
        let corruptions: [(&str, Corrupt); 6] = [
            ("bad slot link", |s| resting(s)[0].slot = 42),
            ("lost link", |s| resting(s).clear()),
            ("quantities", |s| s.ledger.slots[0].leaves = 0),
            ("expiry", |s| s.ledger.expiries.clear()),
            ("done and live", |s| s.ledger.done.push_back(OrderId(7))),
            ("config", |s| s.config.max_walk_levels = 0),
        ];
        for (what, corrupt) in corruptions {
            let mut state = venue.s.clone();
            corrupt(&mut state);
            assert!(PaperVenue::from_state(state).is_err(), "{what}");
        }
    }

    #[test]
    fn queue_models() {
        let slot = |ahead, seen, traded| OrderSlot {
            order: PaperOrder {
                order_id: OrderId(1),
                account: AccountId(0),
                instrument: InstrumentId(0),
                side: Side::Buy,
                order_type: OrderType::Limit,
                price: Price(100),
                qty: Qty(1),
                tif: TimeInForce::Gtc,
                post_only: false,
                expire_at: UnixNanos::ZERO,
            },
            live: true,
            prio_seq: 1,
            expiry: None,
            leaves: 1,
            cum: 0,
            queue_ahead: ahead,
            level_seen: seen,
            traded_seen: traded,
            rebase: false,
        };
        // Level 10, 6 ahead; it drops to 6 with 2 traded: 2 cancelled of a level of 8.
        let mut s = slot(4, 10, 2);
        advance_queue(&mut s, 6, QueueModel::Proportional, true);
        assert_eq!(s.queue_ahead, 3); // 4 - 2*4/8
        let mut s = slot(4, 10, 2);
        advance_queue(&mut s, 6, QueueModel::Optimistic, true);
        assert_eq!(s.queue_ahead, 2);
        let mut s = slot(4, 10, 2);
        advance_queue(&mut s, 6, QueueModel::Conservative, true);
        assert_eq!(s.queue_ahead, 4);
        // Growth never moves the order; the estimate never exceeds the level.
        let mut s = slot(4, 10, 0);
        advance_queue(&mut s, 20, QueueModel::Optimistic, true);
        assert_eq!(s.queue_ahead, 4);
        let mut s = slot(4, 10, 0);
        advance_queue(&mut s, 1, QueueModel::Conservative, true);
        assert_eq!(s.queue_ahead, 1);
        // Uninformative updates only re-base.
        let mut s = slot(4, 10, 0);
        advance_queue(&mut s, 5, QueueModel::Optimistic, false);
        assert_eq!((s.queue_ahead, s.level_seen), (4, 5));
    }
}
