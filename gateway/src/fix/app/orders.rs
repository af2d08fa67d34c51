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

/// The desk's live orders by (account, ClOrdID): a fixed-capacity open-addressing table
/// (linear probing, backward-shift deletion), allocated once; no allocation per order.
#[derive(Debug, Clone)]
pub struct DeskOrders {
    slots: Vec<Option<OrderInfo>>,
    mask: usize,
    len: usize,
    capacity: usize,
}

fn hash(account: AccountId, id: &ClientOrderId) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = u64::from(account.0).wrapping_mul(K);
    for chunk in id.0.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
        h ^= h >> 29;
    }
    h
}

impl DeskOrders {
    /// A table for up to `capacity` orders (at least one); its slots (twice as many,
    /// rounded up to a power of two) are allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let size = capacity.saturating_mul(2).next_power_of_two();
        Self {
            slots: vec![None; size],
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

    fn home(&self, account: AccountId, id: &ClientOrderId) -> usize {
        hash(account, id) as usize & self.mask
    }

    /// The slot holding the key, or the empty slot where it would go.
    fn find(&self, account: AccountId, id: &ClientOrderId) -> (usize, bool) {
        let mut at = self.home(account, id);
        // Bounded: the table is never more than half full, so an empty slot comes first.
        for _ in 0..self.slots.len() {
            match &self.slots[at] {
                None => return (at, false),
                Some(info) if info.account == account && info.client_order_id == *id => {
                    return (at, true);
                }
                Some(_) => at = (at + 1) & self.mask,
            }
        }
        (at, false)
    }

    /// Inserts `info` under (its account, its ClOrdID), returning the order it replaces.
    ///
    /// # Errors
    ///
    /// The table holds [`capacity`](Self::capacity) other orders.
    pub fn insert(&mut self, info: OrderInfo) -> Result<Option<OrderInfo>, DeskOrdersFull> {
        let (at, found) = self.find(info.account, &info.client_order_id);
        if found {
            return Ok(self.slots[at].replace(info));
        }
        if self.len >= self.capacity {
            return Err(DeskOrdersFull {
                capacity: self.capacity,
            });
        }
        self.slots[at] = Some(info);
        self.len += 1;
        Ok(None)
    }

    /// The order with this key.
    pub fn get(&self, account: AccountId, id: &ClientOrderId) -> Option<&OrderInfo> {
        match self.find(account, id) {
            (at, true) => self.slots[at].as_ref(),
            _ => None,
        }
    }

    /// The order with this key, to change (not its account or ClOrdID: remove and insert
    /// again to re-key it).
    pub fn get_mut(&mut self, account: AccountId, id: &ClientOrderId) -> Option<&mut OrderInfo> {
        match self.find(account, id) {
            (at, true) => self.slots[at].as_mut(),
            _ => None,
        }
    }

    /// Removes the order with this key.
    pub fn remove(&mut self, account: AccountId, id: &ClientOrderId) -> Option<OrderInfo> {
        let (mut hole, found) = self.find(account, id);
        if !found {
            return None;
        }
        let removed = self.slots[hole].take();
        self.len -= 1;
        // Backward shift: move later entries of the probe run into the hole unless their
        // home lies cyclically in (hole, at].
        let mut at = hole;
        for _ in 0..self.slots.len() {
            at = (at + 1) & self.mask;
            let Some(info) = &self.slots[at] else {
                break;
            };
            let home = self.home(info.account, &info.client_order_id);
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.slots[hole] = self.slots[at].take();
                hole = at;
            }
        }
        removed
    }
}
