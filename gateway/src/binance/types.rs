//! What goes into the adapter (requests) and what comes out (events).

use aaiti_model::{
    ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Scale, Side, TimeInForce,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

use super::VenueError;
use crate::paper::VenueEvent;

/// Decimal places of [`Commission::amount`] (Binance reports commissions with 8).
#[allow(
    clippy::panic,
    reason = "evaluated at compile time: 8 is a valid scale"
)]
pub const COMMISSION_SCALE: Scale = match Scale::new(8) {
    Ok(scale) => scale,
    Err(_) => panic!("8 is a valid scale"),
};

/// A new order.
///
/// Mapping to Binance (`POST /api/v3/order`): `Market` → `MARKET`; `Limit` → `LIMIT` with the
/// time in force, or `LIMIT_MAKER` when `post_only` (GTC only); `StopLimit` →
/// `STOP_LOSS_LIMIT` (a buy stop above the market, a sell stop below); `Stop` → `STOP_LOSS`.
/// Time in force `Day` and `Gtd` do not exist on Binance spot and are refused
/// (`UnsupportedOrder`), as are post-only orders that are not GTC limits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The engine's order id (also the Binance client order id: prefix + id).
    pub order_id: OrderId,
    /// The desk's client order id, carried back in every event of the order.
    pub client_order_id: ClientOrderId,
    /// The instrument (one given to [`super::BinanceAdapter::spawn`]).
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Order type.
    pub order_type: OrderType,
    /// Time in force (ignored for market and stop-market orders).
    pub tif: TimeInForce,
    /// Post-only (`LIMIT_MAKER`).
    pub post_only: bool,
    /// Limit price at the instrument's price scale (limit and stop-limit orders).
    pub price: Price,
    /// Trigger price at the price scale (stop and stop-limit orders).
    pub stop_price: Price,
    /// Quantity at the instrument's quantity scale.
    pub qty: Qty,
}

/// A cancel. The instrument and client order id are only used to label the refusal when the
/// request cannot even be queued; the adapter cancels the order it knows by `order_id`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CancelOrder {
    /// The engine's order id.
    pub order_id: OrderId,
    /// Its instrument.
    pub instrument: InstrumentId,
    /// Its client order id.
    pub client_order_id: ClientOrderId,
}

/// A request to the adapter thread.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinanceRequest {
    /// Place an order: answered by [`AdapterEvent::Order`] events (`Accepted` or `Rejected`,
    /// then fills and the end of the order).
    New(NewOrder),
    /// Cancel an order: `Canceled` or `CancelRejected`.
    Cancel(CancelOrder),
    /// Query an order's state: [`AdapterEvent::Status`] (after the events of any change the
    /// adapter had missed) or [`AdapterEvent::RequestFailed`].
    Query(OrderId),
    /// List the open orders of one instrument or of all: [`AdapterEvent::OpenOrders`] or
    /// [`AdapterEvent::RequestFailed`].
    OpenOrders(Option<InstrumentId>),
}

/// Where an order event came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportSource {
    /// Decided by the adapter without asking Binance (validation, rate limits, queue full).
    Local,
    /// A REST answer (new order, cancel, query, trades).
    Rest,
    /// The user data stream.
    UserStream,
    /// Reconciliation after a restart or a stream reconnect.
    Reconcile,
}

/// An asset code such as `USDT` or `BNB`, stored inline (at most 16 bytes).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AssetCode {
    len: u8,
    bytes: [u8; 16],
}

impl AssetCode {
    /// The code, if it is 1..=16 bytes of `A-Z 0-9`.
    pub fn new(text: &str) -> Option<Self> {
        let raw = text.as_bytes();
        if raw.is_empty()
            || raw.len() > 16
            || !raw
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Self {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len).min(16)]).unwrap_or("")
    }
}

impl std::fmt::Debug for AssetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssetCode({:?})", self.as_str())
    }
}

impl std::fmt::Display for AssetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The commission Binance charged for a fill, as it reported it.
///
/// Binance charges in the quote asset, the base asset (buys, by default) or BNB. When the
/// asset is the instrument's quote asset the fee also appears in the fill's `fee` (quote
/// asset at the price scale, rounded toward +∞ like the paper venue's fees); otherwise the
/// fill's `fee` is 0 and this is the only record of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commission {
    /// The asset charged; `None` if Binance named none or a code longer than 16 bytes.
    pub asset: Option<AssetCode>,
    /// The amount at [`COMMISSION_SCALE`] (8 places), rounded toward +∞.
    pub amount: i64,
}

/// An order event with the context the engine journals with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReport {
    /// The event, as the paper venue reports its own: `ts` is the venue's time (event or
    /// transaction time, ms precision) or, for local decisions, the wall clock.
    pub event: VenueEvent,
    /// The order's instrument.
    pub instrument: InstrumentId,
    /// The desk's client order id.
    pub client_order_id: ClientOrderId,
    /// Binance's order id (0 if Binance never assigned one).
    pub venue_order_id: u64,
    /// Where it came from.
    pub source: ReportSource,
    /// For fills: the commission as Binance charged it.
    pub commission: Option<Commission>,
    /// For rejects: what Binance (or the transport) said; the same text is logged.
    pub error: Option<VenueError>,
}

/// An order's state at Binance (`status` of the REST API).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VenueOrderStatus {
    /// `PENDING_NEW`.
    PendingNew,
    /// `NEW`: working, nothing filled.
    New,
    /// `PARTIALLY_FILLED`.
    PartiallyFilled,
    /// `FILLED`.
    Filled,
    /// `CANCELED`.
    Canceled,
    /// `PENDING_CANCEL`.
    PendingCancel,
    /// `REJECTED`.
    Rejected,
    /// `EXPIRED`.
    Expired,
    /// `EXPIRED_IN_MATCH` (self-trade prevention).
    ExpiredInMatch,
    /// Anything else.
    Other,
}

impl VenueOrderStatus {
    /// Parses Binance's status text.
    pub fn from_binance(text: &str) -> Self {
        match text {
            "PENDING_NEW" => Self::PendingNew,
            "NEW" => Self::New,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "CANCELED" => Self::Canceled,
            "PENDING_CANCEL" => Self::PendingCancel,
            "REJECTED" => Self::Rejected,
            "EXPIRED" => Self::Expired,
            "EXPIRED_IN_MATCH" => Self::ExpiredInMatch,
            _ => Self::Other,
        }
    }

    /// True once the order can no longer trade.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Filled | Self::Canceled | Self::Rejected | Self::Expired | Self::ExpiredInMatch
        )
    }
}

/// An order as Binance lists it (query and open-orders answers, reconciliation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatus {
    /// Our order id, or `OrderId(0)` for an order not placed by this adapter (its client id
    /// does not carry our prefix).
    pub order_id: OrderId,
    /// Binance's client order id.
    pub venue_client_id: String,
    /// Binance's order id.
    pub venue_order_id: u64,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Side, if Binance reported one.
    pub side: Option<Side>,
    /// State.
    pub status: VenueOrderStatus,
    /// Limit price at the price scale (0 for market orders).
    pub price: Price,
    /// Order quantity at the quantity scale.
    pub qty: Qty,
    /// Filled quantity.
    pub cum: Qty,
    /// Last update time.
    pub updated: UnixNanos,
}

/// The request a [`AdapterEvent::RequestFailed`] answers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailedRequest {
    /// [`BinanceRequest::Query`].
    Query(OrderId),
    /// [`BinanceRequest::OpenOrders`].
    OpenOrders(Option<InstrumentId>),
}

/// The state of the user data stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamState {
    /// Subscribed: fills and cancels arrive as they happen.
    Connected,
    /// Lost; the adapter reconnects and then reconciles its open orders.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Binance refused the subscription (e.g. `-1022` invalid signature); retried with
    /// backoff.
    Refused(VenueError),
}

/// Everything the adapter reports, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdapterEvent {
    /// An order event.
    Order(OrderReport),
    /// The answer to [`BinanceRequest::Query`].
    Status(OrderStatus),
    /// The answer to [`BinanceRequest::OpenOrders`].
    OpenOrders {
        /// The instrument asked for (`None`: all of the adapter's instruments).
        instrument: Option<InstrumentId>,
        /// The open orders.
        orders: Vec<OrderStatus>,
    },
    /// A query or open-orders request failed.
    RequestFailed {
        /// The request.
        request: FailedRequest,
        /// Why.
        error: VenueError,
    },
    /// The user data stream connected, dropped or was refused.
    Stream(StreamState),
}

/// An order the engine believes is open, for [`super::BinanceHandle::reconcile`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KnownOrder {
    /// The engine's order id.
    pub order_id: OrderId,
    /// The desk's client order id.
    pub client_order_id: ClientOrderId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Order type (for how an unfilled expiry is reported).
    pub order_type: OrderType,
    /// Time in force.
    pub tif: TimeInForce,
    /// Order quantity.
    pub qty: Qty,
    /// What the engine has already seen filled.
    pub cum: Qty,
    /// Whether the engine has seen it accepted (if not, `Accepted` is reported first when
    /// Binance has it).
    pub accepted: bool,
}

/// What a reconciliation found. The order events it caused (fills, cancels, expiries,
/// rejects) went out on the event channel, in order, before this returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Known orders still open at Binance (any fills missed meanwhile were reported).
    pub open: Vec<OrderId>,
    /// Known orders that finished while we were away (filled, canceled, expired, rejected).
    pub closed: Vec<OrderId>,
    /// Known orders Binance has no record of: reported `Rejected` (`UnknownOrder`).
    pub missing: Vec<OrderId>,
    /// Known orders whose state could not be read; they stay tracked and are checked again.
    pub failed: Vec<(OrderId, VenueError)>,
    /// Open orders at Binance on the adapter's instruments that are not in the known list.
    pub unknown: Vec<OrderStatus>,
    /// False if some instrument's open orders could not be listed (so `unknown` may be
    /// incomplete).
    pub complete: bool,
    /// Order events sent on the channel.
    pub events: usize,
}
