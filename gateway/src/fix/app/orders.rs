//! What the gateway remembers about the desk's orders, to write complete reports.

use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, OrderAction, OrderCommand, OrderEvent, OrderEventKind,
    OrderFlags, OrderType, Price, Qty, Side, TimeInForce, UnixNanos,
};

/// What an outstanding desk request asks of an order.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// Nothing outstanding.
    #[default]
    None,
    /// An OrderCancelRequest (F).
    Cancel,
    /// An OrderCancelReplaceRequest (G).
    Replace,
}

/// The desk's outstanding cancel or replace of an order (one at a time, as the engine
/// allows).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingRequest {
    /// Cancel or replace (or none).
    pub kind: RequestKind,
    /// The request's ClOrdID (11): reports answering it carry it, with the order's current
    /// ClOrdID as OrigClOrdID (41).
    pub client_order_id: ClientOrderId,
    /// Replace: the new quantity.
    pub qty: Qty,
    /// Replace: the new limit price.
    pub price: Price,
    /// Replace: the new stop price.
    pub stop_price: Price,
}

/// What the gateway remembers about one desk order: the terms the engine's events do not
/// carry (order type, time in force, stop price, quantity...) and the FIX id chain.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderInfo {
    /// Account.
    pub account: AccountId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Order type.
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Flags (post-only, reduce-only).
    pub flags: OrderFlags,
    /// Order quantity.
    pub qty: Qty,
    /// Limit price (0 without).
    pub price: Price,
    /// Stop price (0 without).
    pub stop_price: Price,
    /// GTD expiry (0 without).
    pub expire_at: UnixNanos,
    /// The order's current ClOrdID.
    pub client_order_id: ClientOrderId,
    /// The ClOrdID the current one replaced (NONE before any replace).
    pub orig_client_order_id: ClientOrderId,
    /// The outstanding cancel or replace.
    pub request: PendingRequest,
}

impl OrderInfo {
    /// From a command sent to the engine: a New gives the order; a Cancel or Replace gives
    /// what the request tells about the order it targets (its ClOrdID is the request's
    /// OrigClOrdID, the request is pending; a cancel's order type is unknown and recorded
    /// as Limit): enough to answer the request when the gateway does not know the order.
    /// `None` for Status commands and invalid codes.
    pub fn from_command(command: &OrderCommand) -> Option<Self> {
        let side = command.side()?;
        let action = command.action()?;
        let mut info = Self {
            account: command.account,
            instrument: command.instrument,
            side,
            order_type: command.order_type().unwrap_or(OrderType::Limit),
            time_in_force: command.time_in_force().unwrap_or(TimeInForce::Day),
            flags: command.flags(),
            qty: command.qty,
            price: command.price,
            stop_price: command.stop_price,
            expire_at: command.expire_at,
            client_order_id: command.client_order_id,
            orig_client_order_id: ClientOrderId::NONE,
            request: PendingRequest::default(),
        };
        match action {
            OrderAction::New => {}
            OrderAction::Cancel | OrderAction::Replace => {
                info.client_order_id = command.orig_client_order_id;
                info.on_request(command);
            }
            OrderAction::Status => return None,
        }
        Some(info)
    }

    /// Records a Cancel or Replace command sent for this order (other actions are
    /// ignored).
    pub fn on_request(&mut self, command: &OrderCommand) {
        let kind = match command.action() {
            Some(OrderAction::Cancel) => RequestKind::Cancel,
            Some(OrderAction::Replace) => RequestKind::Replace,
            _ => return,
        };
        self.request = PendingRequest {
            kind,
            client_order_id: command.client_order_id,
            qty: command.qty,
            price: command.price,
            stop_price: command.stop_price,
        };
    }

    /// Applies an engine event after its report was written: a replace takes effect
    /// (new terms and ClOrdID, the old one becomes OrigClOrdID), an answered request is
    /// cleared. Returns true when the order is done (filled, canceled, rejected, expired)
    /// and can be forgotten.
    pub fn apply(&mut self, event: &OrderEvent) -> bool {
        let Ok(kind) = OrderEventKind::try_from(event.kind) else {
            return false;
        };
        match kind {
            OrderEventKind::Replaced => {
                let request = self.request;
                if request.kind == RequestKind::Replace {
                    if !request.client_order_id.is_none()
                        && request.client_order_id != self.client_order_id
                    {
                        self.orig_client_order_id = self.client_order_id;
                        self.client_order_id = request.client_order_id;
                    }
                    self.qty = request.qty;
                    self.price = request.price;
                    self.stop_price = request.stop_price;
                }
                self.request = PendingRequest::default();
                false
            }
            OrderEventKind::CancelRejected => {
                self.request = PendingRequest::default();
                false
            }
            OrderEventKind::Filled
            | OrderEventKind::Canceled
            | OrderEventKind::Rejected
            | OrderEventKind::Expired => {
                self.request = PendingRequest::default();
                true
            }
            OrderEventKind::PendingNew
            | OrderEventKind::Accepted
            | OrderEventKind::PartiallyFilled
            | OrderEventKind::PendingCancel
            | OrderEventKind::PendingReplace
            | OrderEventKind::Triggered => false,
        }
    }
}

/// [`DeskOrders`] is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the desk order table is full ({capacity} orders)")]
pub struct DeskOrdersFull {
    /// The table's capacity.
    pub capacity: usize,
}

/// The desk's live orders by (account, ClOrdID), allocated once; no allocation per order.
///
/// Two arrays, so that a lookup touches little memory (the engine answers every order event
/// through it): a dense slab of [`OrderInfo`]s (freed entries are reused newest first, so
/// the working set stays small and warm), and an open-addressing index over it (linear
/// probing, backward-shift deletion, at most half full) of 8-byte entries: the key's 32-bit
/// hash, whose low bits are its home position, and its slab entry's number plus one (0:
/// empty). A probe compares hashes and reads the slab only on a match.
#[derive(Debug, Clone)]
pub struct DeskOrders {
    index: Vec<u64>,
    entries: Vec<OrderInfo>,
    /// Slab entries not in use.
    free: Vec<u32>,
    mask: usize,
    len: usize,
    capacity: usize,
}

fn hash(account: AccountId, id: &ClientOrderId) -> u32 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = u64::from(account.0).wrapping_mul(K);
    for chunk in id.0.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
        h ^= h >> 29;
    }
    // Truncation keeps the low half, which the multiply-xorshift mixed with the high one.
    (h ^ (h >> 32)) as u32
}

/// An index entry.
fn pack(hash: u32, entry: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(entry + 1)
}

/// (hash, slab entry) of an index entry; `None` if it is empty.
fn unpack(word: u64) -> Option<(u32, usize)> {
    let entry = (word & 0xFFFF_FFFF) as u32;
    (entry != 0).then(|| ((word >> 32) as u32, entry as usize - 1))
}

/// Where an order lives in a [`DeskOrders`] table (see [`DeskOrders::slot`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OrderSlot(usize);

/// Where [`DeskOrders::find`] ended: the index position, and the slab entry if the key is
/// there.
struct Found {
    at: usize,
    entry: Option<usize>,
}

impl DeskOrders {
    /// A table for up to `capacity` orders (at least one, at most 2^31); its memory (an
    /// index of twice as many entries rounded up to a power of two, and the slab) is
    /// allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1 << 31);
        let size = capacity.saturating_mul(2).next_power_of_two();
        Self {
            index: vec![0; size],
            entries: Vec::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            mask: size - 1,
            len: 0,
            capacity,
        }
    }

    /// Orders in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most orders the table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The key's index position, or the empty position where it would go.
    fn find(&self, account: AccountId, id: &ClientOrderId) -> Found {
        let wanted = hash(account, id);
        let mut at = wanted as usize & self.mask;
        // Bounded: the index is never more than half full, so an empty entry comes first.
        for _ in 0..self.index.len() {
            let Some((hash, entry)) = unpack(self.index[at]) else {
                return Found { at, entry: None };
            };
            if hash == wanted {
                let info = &self.entries[entry];
                if info.account == account && info.client_order_id == *id {
                    return Found {
                        at,
                        entry: Some(entry),
                    };
                }
            }
            at = (at + 1) & self.mask;
        }
        Found { at, entry: None }
    }

    /// Inserts `info` under (its account, its ClOrdID), returning the order it replaces.
    ///
    /// # Errors
    ///
    /// The table holds [`capacity`](Self::capacity) other orders.
    pub fn insert(&mut self, info: OrderInfo) -> Result<Option<OrderInfo>, DeskOrdersFull> {
        let found = self.find(info.account, &info.client_order_id);
        if let Some(entry) = found.entry {
            return Ok(Some(std::mem::replace(&mut self.entries[entry], info)));
        }
        if self.len >= self.capacity {
            return Err(DeskOrdersFull {
                capacity: self.capacity,
            });
        }
        let entry = match self.free.pop() {
            Some(entry) => {
                self.entries[entry as usize] = info;
                entry
            }
            None => {
                // Within the capacity reserved up front: no reallocation.
                self.entries.push(info);
                (self.entries.len() - 1) as u32
            }
        };
        self.index[found.at] = pack(hash(info.account, &info.client_order_id), entry);
        self.len += 1;
        Ok(None)
    }

    /// Where the order with this key lives: a handle for [`at`](Self::at) and
    /// [`at_mut`](Self::at_mut), so that one lookup serves several reads and writes. The
    /// handle stays valid while that order is in the table (inserting or removing other
    /// orders does not move it).
    pub fn slot(&self, account: AccountId, id: &ClientOrderId) -> Option<OrderSlot> {
        self.find(account, id).entry.map(OrderSlot)
    }

    /// The order at a handle from [`slot`](Self::slot).
    ///
    /// A handle whose order was removed since points at whatever order reuses its place.
    ///
    /// # Panics
    ///
    /// Only for a handle from another, larger table.
    pub fn at(&self, slot: OrderSlot) -> &OrderInfo {
        &self.entries[slot.0]
    }

    /// The order at a handle, to change (not its account or ClOrdID); as [`at`](Self::at).
    pub fn at_mut(&mut self, slot: OrderSlot) -> &mut OrderInfo {
        &mut self.entries[slot.0]
    }

    /// The order with this key.
    pub fn get(&self, account: AccountId, id: &ClientOrderId) -> Option<&OrderInfo> {
        let entry = self.find(account, id).entry?;
        Some(&self.entries[entry])
    }

    /// The order with this key, to change (not its account or ClOrdID: remove and insert
    /// again to re-key it).
    pub fn get_mut(&mut self, account: AccountId, id: &ClientOrderId) -> Option<&mut OrderInfo> {
        let entry = self.find(account, id).entry?;
        Some(&mut self.entries[entry])
    }

    /// Removes the order with this key.
    pub fn remove(&mut self, account: AccountId, id: &ClientOrderId) -> Option<OrderInfo> {
        let found = self.find(account, id);
        let entry = found.entry?;
        let removed = self.entries[entry];
        self.free.push(entry as u32);
        self.len -= 1;
        // Backward shift: move later entries of the probe run into the hole unless their
        // home lies cyclically in (hole, at].
        let mut hole = found.at;
        self.index[hole] = 0;
        let mut at = hole;
        for _ in 0..self.index.len() {
            at = (at + 1) & self.mask;
            let Some((hash, _)) = unpack(self.index[at]) else {
                break;
            };
            let home = hash as usize & self.mask;
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.index[hole] = self.index[at];
                self.index[at] = 0;
                hole = at;
            }
        }
        Some(removed)
    }
}
