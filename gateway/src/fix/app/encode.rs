//! Engine events, books and positions to FIX response bodies.

use aaiti_model::{
    AccountId, ClientOrderId, Instrument, InstrumentId, OrderEvent, OrderEventKind, OrderFlags,
    OrderId, OrderType, Price, Qty, RejectReason, Side, TimeInForce, UnixNanos,
};

use super::{
    AdminAction, AppReject, BusinessReason, DeskContext, MdRejectReason, OrderInfo, PosReqResult,
    RequestKind,
};
use crate::fix::codec::{Encoder, Message, SOH};

/// Numbers the caller supplies for a report.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportStamp {
    /// Makes ExecIDs (and PosMaintRptIDs of rejects) unique: for an engine event, the
    /// event record's sequence number in its stream; for the gateway's own rejects, any
    /// number it never reuses (e.g. the outbound MsgSeqNum).
    pub seq: u64,
    /// TransactTime (60): the event's engine time.
    pub time: UnixNanos,
}

/// Why a response could not be written. The message is then incomplete: the caller
/// starts over with `begin` and does not send it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The instrument is not in the registry.
    #[error("instrument {0} is not in the registry")]
    UnknownInstrument(InstrumentId),
    /// An order event with an invalid code (kind, side or reject reason).
    #[error("order event has an invalid {0} code")]
    BadEvent(&'static str),
    /// A value given for a tag is empty or contains SOH.
    #[error("value of tag {tag} is empty or contains SOH")]
    BadValue {
        /// The tag.
        tag: u32,
    },
}

/// A string field from the caller, checked (an empty value or a SOH would break the
/// message).
fn text(enc: &mut Encoder, tag: u32, value: &[u8]) -> Result<(), EncodeError> {
    if value.is_empty() || value.contains(&SOH) {
        return Err(EncodeError::BadValue { tag });
    }
    enc.str(tag, value);
    Ok(())
}

/// `"00" "01" ... "99"`.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0_u8; 200];
    let mut n = 0;
    while n < 100 {
        table[2 * n] = b'0' + (n / 10) as u8;
        table[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    table
};

/// An id assembled on the stack (ExecID).
struct IdBuf {
    bytes: [u8; 48],
    len: usize,
}

impl IdBuf {
    fn new() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_u64(&mut self, value: u64) {
        // Digit count first, then the digits in place, two per division.
        let count = (1..20).find(|&n| value < 10_u64.pow(n)).unwrap_or(20) as usize;
        let end = self.len + count;
        if end > self.bytes.len() {
            return;
        }
        let mut at = end;
        let mut n = value;
        while at > self.len + 1 {
            let pair = (n % 100) as usize * 2;
            n /= 100;
            at -= 2;
            self.bytes[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        }
        if at > self.len {
            self.bytes[self.len] = b'0' + (n % 10) as u8;
        }
        self.len = end;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len.min(self.bytes.len())]
    }
}

fn instrument<'a>(ctx: &DeskContext<'a>, id: InstrumentId) -> Result<&'a Instrument, EncodeError> {
    ctx.registry()
        .get(id)
        .ok_or(EncodeError::UnknownInstrument(id))
}

/// 55 Symbol and 207 SecurityExchange (names checked by [`DeskContext::new`]).
fn write_instrument(enc: &mut Encoder, instrument: &Instrument, ctx: &DeskContext<'_>) {
    enc.str(55, instrument.symbol.as_bytes());
    if let Some(venue) = ctx.registry().venue_name(instrument.venue) {
        enc.str(207, venue.as_bytes());
    }
}

fn write_account(enc: &mut Encoder, account: AccountId, ctx: &DeskContext<'_>) {
    if let Some(name) = ctx.account_name(account) {
        enc.str(1, name.as_bytes());
    }
}

fn write_order_id(enc: &mut Encoder, id: OrderId) {
    if id.0 == 0 {
        enc.str(37, b"NONE");
    } else {
        enc.uint(37, id.0);
    }
}

fn write_client_id(enc: &mut Encoder, tag: u32, id: &ClientOrderId) {
    if id.is_none() {
        enc.str(tag, b"NONE");
    } else {
        enc.str(tag, id.as_bytes());
    }
}

fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => b'1',
        Side::Sell => b'2',
    }
}

fn ord_type_code(order_type: OrderType) -> u8 {
    match order_type {
        OrderType::Market => b'1',
        OrderType::Limit => b'2',
        OrderType::Stop => b'3',
        OrderType::StopLimit => b'4',
    }
}

fn tif_code(time_in_force: TimeInForce) -> u8 {
    match time_in_force {
        TimeInForce::Day => b'0',
        TimeInForce::Gtc => b'1',
        TimeInForce::Ioc => b'3',
        TimeInForce::Fok => b'4',
        TimeInForce::Gtd => b'6',
    }
}

fn write_exec_inst(enc: &mut Encoder, flags: OrderFlags) {
    let post = flags.contains(OrderFlags::POST_ONLY);
    let reduce = flags.contains(OrderFlags::REDUCE_ONLY);
    match (post, reduce) {
        (true, true) => enc.str(18, b"6 E"),
        (true, false) => enc.str(18, b"6"),
        (false, true) => enc.str(18, b"E"),
        (false, false) => {}
    }
}

/// The closest FIX 4.4 OrdRejReason (103) of every engine reject reason.
pub const fn ord_rej_reason(reason: RejectReason) -> u32 {
    use RejectReason as R;
    match reason {
        // 0 broker / exchange option: the market or the venue said no.
        R::RateLimited
        | R::SelfTrade
        | R::PostOnlyWouldCross
        | R::FillOrKillUnfilled
        | R::NoLiquidity
        | R::VenueReject => 0,
        R::UnknownInstrument => 1,
        // 2 exchange closed: nothing trades here now.
        R::InstrumentDisabled
        | R::VenueDisabled
        | R::TradingHalted
        | R::KillSwitch
        | R::DrawdownHalt
        | R::BookInvalid => 2,
        // 3 order exceeds limit: the risk limits.
        R::MaxOrderQty
        | R::MaxOrderNotional
        | R::PriceBand
        | R::MaxPosition
        | R::MaxGrossExposure
        | R::MaxNetExposure
        | R::MaxOpenOrders
        | R::InsufficientBalance
        | R::InsufficientMargin
        | R::ReduceOnly
        | R::Concentration
        | R::CorrelatedExposure => 3,
        R::TooLateToCancel => 4,
        R::UnknownOrder => 5,
        R::DuplicateClientOrderId => 6,
        R::UnsupportedOrder => 11,
        R::InvalidQuantity => 13,
        R::UnknownAccount => 15,
        // 99 other: FIX 4.4 has no code for these; 58 Text names them.
        R::None | R::InvalidPrice | R::BelowMinNotional | R::NotAuthorized => 99,
    }
}

/// The closest FIX 4.4 CxlRejReason (102) of every engine reject reason.
pub const fn cxl_rej_reason(reason: RejectReason) -> u32 {
    use RejectReason as R;
    match reason {
        R::TooLateToCancel => 0,
        R::UnknownOrder => 1,
        R::DuplicateClientOrderId => 6,
        // 2 broker / exchange option: the request broke a rule (new terms, one request
        // at a time, limits, state).
        R::InvalidQuantity
        | R::InvalidPrice
        | R::BelowMinNotional
        | R::UnsupportedOrder
        | R::MaxOrderQty
        | R::MaxOrderNotional
        | R::PriceBand
        | R::MaxPosition
        | R::MaxGrossExposure
        | R::MaxNetExposure
        | R::MaxOpenOrders
        | R::RateLimited
        | R::SelfTrade
        | R::InsufficientBalance
        | R::InsufficientMargin
        | R::InstrumentDisabled
        | R::VenueDisabled
        | R::TradingHalted
        | R::ReduceOnly
        | R::KillSwitch
        | R::DrawdownHalt
        | R::Concentration
        | R::CorrelatedExposure
        | R::PostOnlyWouldCross
        | R::FillOrKillUnfilled
        | R::NoLiquidity
        | R::VenueReject
        | R::BookInvalid => 2,
        R::None | R::UnknownInstrument | R::UnknownAccount | R::NotAuthorized => 99,
    }
}

/// OrdStatus of a working order from its quantities.
fn live_status(event: &OrderEvent) -> u8 {
    match (event.cum_qty.0 > 0, event.leaves_qty.0 > 0) {
        (true, false) => b'2',
        (true, true) => b'1',
        (false, _) => b'0',
    }
}

/// ExecType (150) and OrdStatus (39) of an event (see the module docs).
fn exec_type_and_status(kind: OrderEventKind, event: &OrderEvent) -> (u8, u8) {
    use OrderEventKind as K;
    match kind {
        K::PendingNew => (b'A', b'A'),
        K::Accepted => (b'0', live_status(event)),
        K::Rejected => (b'8', b'8'),
        K::PartiallyFilled => (b'F', b'1'),
        K::Filled => (b'F', b'2'),
        K::PendingCancel => (b'6', b'6'),
        K::Canceled => (b'4', b'4'),
        K::PendingReplace => (b'E', b'E'),
        K::Replaced => (b'5', live_status(event)),
        K::Expired => (b'C', b'C'),
        K::CancelRejected => (b'I', live_status(event)),
        K::Triggered => (b'L', live_status(event)),
    }
}

struct Decoded {
    kind: OrderEventKind,
    side: Side,
    reason: RejectReason,
}

fn decode_event(event: &OrderEvent) -> Result<Decoded, EncodeError> {
    Ok(Decoded {
        kind: OrderEventKind::try_from(event.kind).map_err(|_| EncodeError::BadEvent("kind"))?,
        side: Side::try_from(event.side).map_err(|_| EncodeError::BadEvent("side"))?,
        reason: RejectReason::try_from(event.reject_reason)
            .map_err(|_| EncodeError::BadEvent("reject_reason"))?,
    })
}

/// The MsgType answering an engine event: `9` OrderCancelReject for `CancelRejected`,
/// `8` ExecutionReport for everything else.
pub fn order_event_msg_type(event: &OrderEvent) -> &'static [u8] {
    if event.kind == OrderEventKind::CancelRejected.code() {
        b"9"
    } else {
        b"8"
    }
}

/// Writes the body answering an engine event: [`encode_cancel_reject`] for
/// `CancelRejected`, [`encode_execution_report`] for the rest (begin the message with
/// [`order_event_msg_type`]).
///
/// # Errors
///
/// As the two functions.
pub fn encode_order_event(
    enc: &mut Encoder,
    event: &OrderEvent,
    order: &OrderInfo,
    stamp: &ReportStamp,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    if event.kind == OrderEventKind::CancelRejected.code() {
        encode_cancel_reject(enc, event, order, stamp, ctx)
    } else {
        encode_execution_report(enc, event, order, stamp, ctx)
    }
}

/// Writes an ExecutionReport (8) body for an engine event: 37, 11, 41 (when answering the
/// desk's cancel or replace), 17, 150, 39, 103 and 58 (rejects), 1, 55, 207, 54, 38, 40,
/// 44, 99, 59, 126, 18, 32, 31, 851 (fills), 151, 14, 6, 12, 13 (fills), 60.
///
/// `order` is what the gateway knows of the order *before* this event (apply the event
/// with [`OrderInfo::apply`] afterwards): its pending request gives 11/41 and, for
/// `Replaced`, the new terms.
///
/// # Errors
///
/// An invalid event code or an instrument not in the registry.
pub fn encode_execution_report(
    enc: &mut Encoder,
    event: &OrderEvent,
    order: &OrderInfo,
    stamp: &ReportStamp,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    use OrderEventKind as K;
    let Decoded { kind, side, reason } = decode_event(event)?;
    let instrument = instrument(ctx, event.instrument)?;
    let price_places = instrument.price_scale.places();
    let qty_places = instrument.qty_scale.places();
    write_order_id(enc, event.order_id);
    let request = &order.request;
    let answering = matches!(
        (kind, request.kind),
        (K::PendingCancel | K::Canceled, RequestKind::Cancel)
            | (K::PendingReplace | K::Replaced, RequestKind::Replace)
    );
    if answering && !request.client_order_id.is_none() {
        write_client_id(enc, 11, &request.client_order_id);
        write_client_id(enc, 41, &order.client_order_id);
    } else if !event.client_order_id.is_none() {
        enc.str(11, event.client_order_id.as_bytes());
    } else if !order.client_order_id.is_none() {
        enc.str(11, order.client_order_id.as_bytes());
    }
    let fill = matches!(kind, K::PartiallyFilled | K::Filled);
    let mut exec_id = IdBuf::new();
    exec_id.push_u64(event.order_id.0);
    exec_id.push(b'-');
    if fill && event.exec_id != 0 {
        exec_id.push_u64(event.exec_id);
    } else {
        exec_id.push(b'e');
        exec_id.push_u64(stamp.seq);
    }
    enc.str(17, exec_id.as_bytes());
    let (exec_type, status) = exec_type_and_status(kind, event);
    enc.char(150, exec_type);
    enc.char(39, status);
    if kind == K::Rejected {
        enc.uint(103, u64::from(ord_rej_reason(reason)));
        enc.str(58, reason.name().as_bytes());
    } else if reason != RejectReason::None {
        enc.str(58, reason.name().as_bytes());
    }
    write_account(enc, event.account, ctx);
    write_instrument(enc, instrument, ctx);
    enc.char(54, side_code(side));
    let (qty, price, stop) = if kind == K::Replaced && request.kind == RequestKind::Replace {
        (request.qty, request.price, request.stop_price)
    } else {
        (order.qty, order.price, order.stop_price)
    };
    enc.decimal(38, qty.0, qty_places);
    enc.char(40, ord_type_code(order.order_type));
    if order.order_type.has_limit_price() {
        enc.decimal(44, price.0, price_places);
    }
    if order.order_type.has_stop_price() {
        enc.decimal(99, stop.0, price_places);
    }
    enc.char(59, tif_code(order.time_in_force));
    if order.time_in_force == TimeInForce::Gtd && order.expire_at.0 != 0 {
        enc.timestamp(126, order.expire_at);
    }
    write_exec_inst(enc, order.flags);
    if fill {
        enc.decimal(32, event.last_qty.0, qty_places);
        enc.decimal(31, event.last_price.0, price_places);
        if matches!(event.liquidity, 1 | 2) {
            // LastLiquidityInd: 1 added liquidity (maker), 2 removed (taker).
            enc.uint(851, u64::from(event.liquidity));
        }
    }
    let done = matches!(kind, K::Rejected | K::Filled | K::Canceled | K::Expired);
    enc.decimal(151, if done { 0 } else { event.leaves_qty.0 }, qty_places);
    enc.decimal(14, event.cum_qty.0, qty_places);
    enc.decimal(6, event.avg_price.0, price_places);
    if fill {
        enc.decimal(12, event.fee, price_places);
        enc.char(13, b'3');
    }
    enc.timestamp(60, stamp.time);
    Ok(())
}

/// Writes an OrderCancelReject (9) body for an engine `CancelRejected` event: 37, 11 (the
/// request's ClOrdID), 41 (the order's), 39, 1, 60, 434, 102, 58 (the reason's name).
///
/// `order` carries the pending request (the gateway's record of the order, or
/// [`OrderInfo::from_command`] of the request when it does not know the order). OrdStatus
/// is `8` when the engine knows no such order, else the closest status from the event's
/// quantities (`4` for a done order with no fill, `2` for a done order with fills).
///
/// # Errors
///
/// An invalid event code.
pub fn encode_cancel_reject(
    enc: &mut Encoder,
    event: &OrderEvent,
    order: &OrderInfo,
    stamp: &ReportStamp,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    let Decoded { reason, .. } = decode_event(event)?;
    write_order_id(enc, event.order_id);
    let request = &order.request;
    let request_id = if request.kind != RequestKind::None && !request.client_order_id.is_none() {
        request.client_order_id
    } else {
        event.client_order_id
    };
    write_client_id(enc, 11, &request_id);
    write_client_id(enc, 41, &order.client_order_id);
    let status = if event.order_id.0 == 0 {
        b'8'
    } else if event.leaves_qty.0 <= 0 && event.cum_qty.0 <= 0 {
        b'4'
    } else {
        live_status(event)
    };
    enc.char(39, status);
    write_account(enc, event.account, ctx);
    enc.timestamp(60, stamp.time);
    enc.char(
        434,
        if request.kind == RequestKind::Replace {
            b'2'
        } else {
            b'1'
        },
    );
    enc.uint(102, u64::from(cxl_rej_reason(reason)));
    enc.str(58, reason.name().as_bytes());
    Ok(())
}

/// Writes a BusinessMessageReject (j) body: 45 RefSeqNum, 372 RefMsgType, 379
/// BusinessRejectRefID (when given), 380, 58.
///
/// # Errors
///
/// A value that is empty or contains SOH.
pub fn encode_business_reject(
    enc: &mut Encoder,
    ref_seq_num: u64,
    ref_msg_type: &[u8],
    ref_id: Option<&[u8]>,
    reason: BusinessReason,
    message: &str,
) -> Result<(), EncodeError> {
    enc.uint(45, ref_seq_num);
    text(enc, 372, ref_msg_type)?;
    if let Some(id) = ref_id {
        text(enc, 379, id)?;
    }
    enc.uint(380, u64::from(reason.code()));
    text(enc, 58, message.as_bytes())
}

/// The business id of a request, for BusinessRejectRefID (379).
fn business_ref_id<'a>(request: &Message<'a>) -> Option<&'a [u8]> {
    match request.msg_type() {
        b"D" | b"F" | b"G" => request.get(11),
        b"H" => request
            .get(790)
            .or_else(|| request.get(11))
            .or_else(|| request.get(37)),
        b"V" => request.get(262),
        b"AN" => request.get(710),
        b"U1" => request.get(20_000),
        _ => None,
    }
}

/// Writes the body answering a request [`decode`](super::decode) refused (begin the
/// message with [`AppReject::msg_type`]), echoing the request's own values:
///
/// * `Session` → Reject: 45, 371, 372, 373, 58.
/// * `Business` → BusinessMessageReject: 45, 372, 379, 380, 58.
/// * `Order` for D → ExecutionReport: 37 `NONE`, 11, 17 `r<seq>`, 150 `8`, 39 `8`,
///   103, 58, 1, 55, 207, 54, 38, 40, 44, 99, 59 (those the request has), 151 0, 14 0,
///   6 0, 60.
/// * `Order` for F and G → OrderCancelReject: 37 (or `NONE`), 11, 41, 39 `8`, 1, 60, 434,
///   102, 58.
/// * `MarketData` → MarketDataRequestReject: 262, 281, 58.
/// * `Positions` → RequestForPositionsAck: 721 (`seq`), 710, 727 0, 728, 729 2 (rejected),
///   1, 58.
/// * `Admin` → AdminResponse: 20000, 20001, 1, 20002 1 (refused), 58.
///
/// # Errors
///
/// [`EncodeError::BadValue`] if the reject's text is empty.
pub fn encode_app_reject(
    enc: &mut Encoder,
    request: &Message<'_>,
    reject: &AppReject,
    stamp: &ReportStamp,
) -> Result<(), EncodeError> {
    let msg_type = request.msg_type();
    let echo = |enc: &mut Encoder, tag: u32| {
        if let Some(value) = request.get(tag) {
            enc.str(tag, value);
        }
    };
    let echo_or_none = |enc: &mut Encoder, tag: u32| {
        enc.str(tag, request.get(tag).unwrap_or(b"NONE"));
    };
    let ref_seq_num = request.get_u64(34).ok().flatten().unwrap_or(0);
    match *reject {
        AppReject::Session(session) => {
            enc.uint(45, ref_seq_num);
            if let Some(tag) = session.ref_tag {
                enc.uint(371, u64::from(tag));
            }
            enc.str(372, msg_type);
            enc.uint(373, u64::from(session.reason));
            text(enc, 58, session.text.as_bytes())?;
        }
        AppReject::Business {
            reason,
            text: message,
        } => {
            encode_business_reject(
                enc,
                ref_seq_num,
                msg_type,
                business_ref_id(request),
                reason,
                message,
            )?;
        }
        AppReject::Order {
            reason,
            text: message,
        } if msg_type == b"D" => {
            enc.str(37, b"NONE");
            echo_or_none(enc, 11);
            let mut exec_id = IdBuf::new();
            exec_id.push(b'r');
            exec_id.push_u64(stamp.seq);
            enc.str(17, exec_id.as_bytes());
            enc.char(150, b'8');
            enc.char(39, b'8');
            enc.uint(103, u64::from(ord_rej_reason(reason)));
            text(enc, 58, message.as_bytes())?;
            for tag in [1, 55, 207, 54, 38, 40, 44, 99, 59] {
                echo(enc, tag);
            }
            enc.uint(151, 0);
            enc.uint(14, 0);
            enc.uint(6, 0);
            enc.timestamp(60, stamp.time);
        }
        AppReject::Order {
            reason,
            text: message,
        } => {
            echo_or_none(enc, 37);
            echo_or_none(enc, 11);
            echo_or_none(enc, 41);
            enc.char(39, b'8');
            echo(enc, 1);
            enc.timestamp(60, stamp.time);
            enc.char(434, if msg_type == b"G" { b'2' } else { b'1' });
            enc.uint(102, u64::from(cxl_rej_reason(reason)));
            text(enc, 58, message.as_bytes())?;
        }
        AppReject::MarketData {
            reason,
            text: message,
        } => {
            echo_or_none(enc, 262);
            enc.char(281, reason.code());
            text(enc, 58, message.as_bytes())?;
        }
        AppReject::Positions {
            result,
            text: message,
        } => {
            enc.uint(721, stamp.seq);
            echo_or_none(enc, 710);
            enc.uint(727, 0);
            enc.uint(728, u64::from(result.code()));
            enc.uint(729, 2);
            echo(enc, 1);
            text(enc, 58, message.as_bytes())?;
        }
        AppReject::Admin { text: message } => {
            echo_or_none(enc, 20_000);
            echo(enc, 20_001);
            echo(enc, 1);
            enc.uint(20_002, 1);
            text(enc, 58, message.as_bytes())?;
        }
    }
    Ok(())
}

/// Writes a MarketDataSnapshotFullRefresh (W) body: 262 (when given), 55, 207, 268, then
/// per level 269 (`0` bid, `1` offer), 270, 271 — bids best first, then offers best first,
/// as given. An empty book is `268=0`.
///
/// # Errors
///
/// An instrument not in the registry, or an MDReqID that is empty or contains SOH.
pub fn encode_md_snapshot(
    enc: &mut Encoder,
    md_req_id: Option<&[u8]>,
    instrument_id: InstrumentId,
    bids: &[(Price, Qty)],
    asks: &[(Price, Qty)],
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    let instrument = instrument(ctx, instrument_id)?;
    let (price_places, qty_places) = (
        instrument.price_scale.places(),
        instrument.qty_scale.places(),
    );
    if let Some(id) = md_req_id {
        text(enc, 262, id)?;
    }
    write_instrument(enc, instrument, ctx);
    enc.uint(268, (bids.len() + asks.len()) as u64);
    for (entry_type, levels) in [(b'0', bids), (b'1', asks)] {
        for &(price, qty) in levels {
            enc.char(269, entry_type);
            enc.decimal(270, price.0, price_places);
            enc.decimal(271, qty.0, qty_places);
        }
    }
    Ok(())
}

/// MDUpdateAction (279) of a level change.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LevelAction {
    /// `0`: a new level.
    New,
    /// `1`: a level's quantity changed.
    Change,
    /// `2`: the level is gone.
    Delete,
}

/// One book level change for an incremental refresh.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LevelChange {
    /// New, change or delete.
    pub action: LevelAction,
    /// Bid (`Buy`) or offer (`Sell`).
    pub side: Side,
    /// Level price.
    pub price: Price,
    /// New level quantity (not written for deletes).
    pub qty: Qty,
}

/// Writes a MarketDataIncrementalRefresh (X) body: 262 (when given), 268, then per change
/// 279, 269, 55, 207, 270, 271 (not for deletes).
///
/// # Errors
///
/// An instrument not in the registry, or an MDReqID that is empty or contains SOH.
pub fn encode_md_incremental(
    enc: &mut Encoder,
    md_req_id: Option<&[u8]>,
    instrument_id: InstrumentId,
    changes: &[LevelChange],
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    let instrument = instrument(ctx, instrument_id)?;
    let (price_places, qty_places) = (
        instrument.price_scale.places(),
        instrument.qty_scale.places(),
    );
    if let Some(id) = md_req_id {
        text(enc, 262, id)?;
    }
    enc.uint(268, changes.len() as u64);
    for change in changes {
        enc.char(
            279,
            match change.action {
                LevelAction::New => b'0',
                LevelAction::Change => b'1',
                LevelAction::Delete => b'2',
            },
        );
        enc.char(
            269,
            match change.side {
                Side::Buy => b'0',
                Side::Sell => b'1',
            },
        );
        write_instrument(enc, instrument, ctx);
        enc.decimal(270, change.price.0, price_places);
        if change.action != LevelAction::Delete {
            enc.decimal(271, change.qty.0, qty_places);
        }
    }
    Ok(())
}

/// Writes a MarketDataRequestReject (Y) body: 262, 281, 58 (when given).
///
/// # Errors
///
/// A value that is empty or contains SOH.
pub fn encode_md_reject(
    enc: &mut Encoder,
    md_req_id: &[u8],
    reason: MdRejectReason,
    message: Option<&str>,
) -> Result<(), EncodeError> {
    text(enc, 262, md_req_id)?;
    enc.char(281, reason.code());
    if let Some(message) = message {
        text(enc, 58, message.as_bytes())?;
    }
    Ok(())
}

/// A RequestForPositionsAck (AO).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PositionsAck<'a> {
    /// PosMaintRptID (721): unique per report.
    pub report_id: u64,
    /// PosReqID (710) of the request.
    pub pos_req_id: &'a [u8],
    /// PosReqResult (728). PosReqStatus (729) follows: 0 completed for `Valid` and
    /// `NoPositions`, 2 rejected otherwise.
    pub result: PosReqResult,
    /// TotalNumPosReports (727): PositionReports that follow.
    pub total_reports: u32,
    /// Account (1), with AccountType (581) 1.
    pub account: Option<AccountId>,
    /// Text (58).
    pub text: Option<&'a str>,
}

/// Writes a RequestForPositionsAck (AO) body: 721, 710, 727, 728, 729, 1, 581, 58.
///
/// # Errors
///
/// A value that is empty or contains SOH.
pub fn encode_positions_ack(
    enc: &mut Encoder,
    ack: &PositionsAck<'_>,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    enc.uint(721, ack.report_id);
    text(enc, 710, ack.pos_req_id)?;
    enc.uint(727, u64::from(ack.total_reports));
    enc.uint(728, u64::from(ack.result.code()));
    let status = match ack.result {
        PosReqResult::Valid | PosReqResult::NoPositions => 0,
        _ => 2,
    };
    enc.uint(729, status);
    if let Some(account) = ack.account {
        write_account(enc, account, ctx);
        enc.uint(581, 1);
    }
    if let Some(message) = ack.text {
        text(enc, 58, message.as_bytes())?;
    }
    Ok(())
}

/// One account's position in one instrument, for a PositionReport (AP).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PositionReport<'a> {
    /// PosMaintRptID (721): unique per report.
    pub report_id: u64,
    /// PosReqID (710) of the request it answers (none for unsolicited reports).
    pub pos_req_id: Option<&'a [u8]>,
    /// TotalNumPosReports (727).
    pub total_reports: u32,
    /// ClearingBusinessDate (715): the UTC date of this time.
    pub business_date: UnixNanos,
    /// Account (1).
    pub account: AccountId,
    /// Instrument (55, 207).
    pub instrument: InstrumentId,
    /// LongQty (704).
    pub long_qty: Qty,
    /// ShortQty (705).
    pub short_qty: Qty,
    /// Average entry price, as SettlPrice (730) and PriorSettlPrice (734) with
    /// SettlPriceType (731) 2 theoretical: FIX 4.4 requires them and the gateway has no
    /// settlement price.
    pub avg_price: Price,
    /// Realized P&L, quote asset at the price scale: PosAmt (708) of PosAmtType (707)
    /// `FMTM` (final mark-to-market).
    pub realized_pnl: i64,
    /// Unrealized P&L, quote asset at the price scale: PosAmt of PosAmtType `IMTM`
    /// (incremental mark-to-market).
    pub unrealized_pnl: i64,
}

/// Writes a PositionReport (AP) body: 721, 710, 727, 728 0, 715, 1, 581 1, 55, 207, 730,
/// 731, 734, 702 1 (703 `TOT`, 704, 705), 753 2 (707 `FMTM`, 708; 707 `IMTM`, 708).
///
/// # Errors
///
/// An instrument not in the registry, or a PosReqID that is empty or contains SOH.
pub fn encode_position_report(
    enc: &mut Encoder,
    report: &PositionReport<'_>,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    let instrument = instrument(ctx, report.instrument)?;
    let (price_places, qty_places) = (
        instrument.price_scale.places(),
        instrument.qty_scale.places(),
    );
    enc.uint(721, report.report_id);
    if let Some(id) = report.pos_req_id {
        text(enc, 710, id)?;
    }
    enc.uint(727, u64::from(report.total_reports));
    enc.uint(728, 0);
    enc.date(715, report.business_date);
    write_account(enc, report.account, ctx);
    enc.uint(581, 1);
    write_instrument(enc, instrument, ctx);
    enc.decimal(730, report.avg_price.0, price_places);
    enc.uint(731, 2);
    enc.decimal(734, report.avg_price.0, price_places);
    enc.uint(702, 1);
    enc.str(703, b"TOT");
    enc.decimal(704, report.long_qty.0, qty_places);
    enc.decimal(705, report.short_qty.0, qty_places);
    enc.uint(753, 2);
    enc.str(707, b"FMTM");
    enc.decimal(708, report.realized_pnl, price_places);
    enc.str(707, b"IMTM");
    enc.decimal(708, report.unrealized_pnl, price_places);
    Ok(())
}

/// AdminStatus (20002).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AdminStatus {
    /// `0`: applied.
    Applied,
    /// `1`: refused.
    Refused,
}

/// An AdminResponse (U2), see the [module docs](super).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct AdminResponse<'a> {
    /// AdminReqID (20000) of the request.
    pub admin_req_id: &'a [u8],
    /// AdminAction (20001) of the request.
    pub action: Option<AdminAction>,
    /// Account (1) of the request.
    pub account: Option<AccountId>,
    /// AdminStatus (20002).
    pub status: AdminStatus,
    /// Text (58).
    pub text: Option<&'a str>,
    /// RiskState (20003): JSON text.
    pub risk_state: Option<&'a [u8]>,
}

/// Writes an AdminResponse (U2) body: 20000, 20001, 1, 20002, 58, 20003.
///
/// # Errors
///
/// A value that is empty or contains SOH (a RiskState with a raw control byte).
pub fn encode_admin_response(
    enc: &mut Encoder,
    response: &AdminResponse<'_>,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    text(enc, 20_000, response.admin_req_id)?;
    if let Some(action) = response.action {
        enc.char(20_001, action.code());
    }
    if let Some(account) = response.account {
        write_account(enc, account, ctx);
    }
    enc.uint(
        20_002,
        match response.status {
            AdminStatus::Applied => 0,
            AdminStatus::Refused => 1,
        },
    );
    if let Some(message) = response.text {
        text(enc, 58, message.as_bytes())?;
    }
    if let Some(state) = response.risk_state {
        text(enc, 20_003, state)?;
    }
    Ok(())
}

/// An order's state, answering an OrderStatusRequest (H).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StatusReport<'a> {
    /// The order.
    pub order: &'a OrderInfo,
    /// OrderID (37).
    pub order_id: OrderId,
    /// OrdStatus (39), as the engine's order manager has it.
    pub ord_status: u8,
    /// CumQty (14).
    pub cum_qty: Qty,
    /// LeavesQty (151).
    pub leaves_qty: Qty,
    /// AvgPx (6).
    pub avg_price: Price,
    /// OrdStatusReqID (790) of the request, echoed.
    pub ord_status_req_id: Option<&'a [u8]>,
}

/// Writes an ExecutionReport (8) body with ExecType `I` (order status): 37, 11, 17, 150,
/// 39, 790, 1, 55, 207, 54, 38, 40, 44, 99, 59, 126, 18, 151, 14, 6, 60. ExecID is
/// `<OrderID>-s<seq>`.
///
/// # Errors
///
/// An instrument not in the registry, or an OrdStatusReqID that is empty or contains SOH.
pub fn encode_status_report(
    enc: &mut Encoder,
    report: &StatusReport<'_>,
    stamp: &ReportStamp,
    ctx: &DeskContext<'_>,
) -> Result<(), EncodeError> {
    let order = report.order;
    let instrument = instrument(ctx, order.instrument)?;
    let price_places = instrument.price_scale.places();
    let qty_places = instrument.qty_scale.places();
    write_order_id(enc, report.order_id);
    write_client_id(enc, 11, &order.client_order_id);
    let mut exec_id = IdBuf::new();
    exec_id.push_u64(report.order_id.0);
    exec_id.push(b'-');
    exec_id.push(b's');
    exec_id.push_u64(stamp.seq);
    enc.str(17, exec_id.as_bytes());
    enc.char(150, b'I');
    enc.char(39, report.ord_status);
    if let Some(id) = report.ord_status_req_id {
        text(enc, 790, id)?;
    }
    write_account(enc, order.account, ctx);
    write_instrument(enc, instrument, ctx);
    enc.char(54, side_code(order.side));
    enc.decimal(38, order.qty.0, qty_places);
    enc.char(40, ord_type_code(order.order_type));
    if order.order_type.has_limit_price() {
        enc.decimal(44, order.price.0, price_places);
    }
    if order.order_type.has_stop_price() {
        enc.decimal(99, order.stop_price.0, price_places);
    }
    enc.char(59, tif_code(order.time_in_force));
    if order.time_in_force == TimeInForce::Gtd && order.expire_at.0 != 0 {
        enc.timestamp(126, order.expire_at);
    }
    write_exec_inst(enc, order.flags);
    enc.decimal(151, report.leaves_qty.0, qty_places);
    enc.decimal(14, report.cum_qty.0, qty_places);
    enc.decimal(6, report.avg_price.0, price_places);
    enc.timestamp(60, stamp.time);
    Ok(())
}
