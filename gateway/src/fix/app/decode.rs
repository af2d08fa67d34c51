//! Desk requests to engine records.

use aaiti_model::{
    AccountId, ClientOrderId, FixedError, Instrument, InstrumentId, OrderAction, OrderCommand,
    OrderFlags, OrderId, OrderType, Price, Qty, RejectReason, Side, TimeInForce, UnixNanos,
};

use super::{
    AdminAction, AdminRequest, AppReject, BusinessReason, DeskContext, DeskRequest,
    MAX_MD_INSTRUMENTS, MarketDataRequest, MdRejectReason, MdUpdateType, Name, PosReqResult,
    PositionsRequest, ReqId, SessionScope, Subscription,
};
use crate::fix::Reject;
use crate::fix::codec::{Field, Message, parse_u64, parse_utc_timestamp, value_word};
use crate::fix::dictionary::column;

/// Decodes an application request (D, F, G, H, V, AN, U1) for a session with `scope`.
///
/// Meant for messages that passed [`validate`](crate::fix::dictionary::validate); on any
/// other input it still never panics and answers missing or malformed fields with
/// [`AppReject::Session`]. Any other MsgType (admin messages included: they are the
/// session layer's) is [`AppReject::Business`] reason 3.
///
/// # Errors
///
/// What to answer instead (see the [module docs](super)).
pub fn decode(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<DeskRequest, AppReject> {
    match msg.msg_type() {
        b"D" => decode_order(msg, ctx, scope, OrderAction::New),
        b"F" => decode_order(msg, ctx, scope, OrderAction::Cancel),
        b"G" => decode_order(msg, ctx, scope, OrderAction::Replace),
        b"H" => decode_status(msg, ctx, scope),
        b"V" => decode_market_data(msg, ctx, scope).map(DeskRequest::MarketData),
        b"AN" => decode_positions(msg, ctx, scope).map(DeskRequest::Positions),
        b"U1" => decode_admin(msg, ctx, scope).map(DeskRequest::Admin),
        _ => Err(business(
            BusinessReason::UnsupportedMsgType,
            "unsupported message type",
        )),
    }
}

fn session(reason: u32, tag: u32, text: &'static str) -> AppReject {
    AppReject::Session(Reject {
        reason,
        ref_tag: Some(tag),
        text,
    })
}

fn missing(tag: u32) -> AppReject {
    session(1, tag, "required tag missing")
}

fn out_of_range(tag: u32) -> AppReject {
    session(5, tag, "value is incorrect (out of range) for this tag")
}

fn business(reason: BusinessReason, text: &'static str) -> AppReject {
    AppReject::Business { reason, text }
}

fn order(reason: RejectReason, text: &'static str) -> AppReject {
    AppReject::Order { reason, text }
}

fn required(value: Option<&[u8]>, tag: u32) -> Result<&[u8], AppReject> {
    value.ok_or_else(|| missing(tag))
}

/// ClOrdID (11) or OrigClOrdID (41): exactly what [`ClientOrderId::new`] accepts (1 to 40
/// bytes, each printable ASCII `0x21..=0x7E`) and the same id, checked and copied eight
/// bytes at a time (`new` checks byte by byte and copies through `memset` and `memcpy`
/// calls: a tenth of an order's decoding).
#[inline]
fn client_order_id(value: &[u8], tag: u32) -> Result<ClientOrderId, AppReject> {
    const LOWS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let len = value.len();
    let bad = || session(5, tag, "order id must be 1 to 40 printable ASCII bytes");
    if len == 0 || len > ClientOrderId::CAPACITY {
        return Err(bad());
    }
    let mut id = [0_u8; ClientOrderId::CAPACITY];
    let mut outside = 0;
    for (at, out) in (0..len).step_by(8).zip(id.chunks_exact_mut(8)) {
        let word = value_word(value, at);
        // Bytes past the end (zero in `word`) are checked as `A`, a printable byte.
        let valid = match len - at {
            rest @ 1..=7 => (1_u64 << (8 * rest)) - 1,
            _ => u64::MAX,
        };
        let x = word | (0x4141_4141_4141_4141 & !valid);
        // Per byte, the high bit of: the byte itself (not ASCII), its low seven bits plus
        // 1 (0x7F), and the complement of its low seven bits plus 0x5F (below 0x21).
        outside |=
            (x | ((x & LOWS) + 0x0101_0101_0101_0101) | !((x & LOWS) + 0x5F5F_5F5F_5F5F_5F5F))
                & HIGHS;
        out.copy_from_slice(&word.to_le_bytes());
    }
    if outside != 0 {
        return Err(bad());
    }
    Ok(ClientOrderId(id))
}

/// [`client_order_id`] of a field's value: the words loaded from the message (which
/// nearly always holds 40 bytes from the value's start: fields follow) and masked to
/// the value's length.
#[inline(always)]
fn client_order_id_in(
    msg: &Message<'_>,
    field: &Field,
    tag: u32,
) -> Result<ClientOrderId, AppReject> {
    const CAPACITY: usize = ClientOrderId::CAPACITY;
    const LOWS: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let start = field.start as usize;
    let len = field.end.saturating_sub(field.start) as usize;
    let block = msg
        .bytes()
        .get(start..)
        .and_then(<[u8]>::first_chunk::<CAPACITY>);
    let (Some(block), 1..=CAPACITY) = (block, len) else {
        return client_order_id(msg.value(field), tag);
    };
    let mut id = [0_u8; CAPACITY];
    let mut outside = 0;
    let mut at = 0;
    while let (true, Some(chunk), Some(out)) = (
        at < len,
        block.get(at..at + 8).and_then(<[u8]>::first_chunk::<8>),
        id.get_mut(at..at + 8),
    ) {
        let keep = match len - at {
            rest @ 1..=7 => (1_u64 << (8 * rest)) - 1,
            _ => u64::MAX,
        };
        let word = u64::from_le_bytes(*chunk) & keep;
        out.copy_from_slice(&word.to_le_bytes());
        // The bytes past the end are checked as `A`, a printable byte. Per byte, the high
        // bit of: the byte itself (not ASCII), its low seven bits plus 1 (0x7F), the
        // complement of its low seven bits plus 0x5F (below 0x21).
        let x = word | (0x4141_4141_4141_4141 & !keep);
        outside |= x | ((x & LOWS) + 0x0101_0101_0101_0101) | !((x & LOWS) + 0x5F5F_5F5F_5F5F_5F5F);
        at += 8;
    }
    if outside & HIGHS != 0 {
        return Err(session(
            5,
            tag,
            "order id must be 1 to 40 printable ASCII bytes",
        ));
    }
    Ok(ClientOrderId(id))
}

fn req_id(value: &[u8], tag: u32) -> Result<ReqId, AppReject> {
    ReqId::new(value).ok_or_else(|| session(5, tag, "request id longer than 40 bytes"))
}

/// The single byte of a char field.
fn one_byte(value: &[u8], tag: u32) -> Result<u8, AppReject> {
    match value {
        [byte] => Ok(*byte),
        _ => Err(session(6, tag, "incorrect data format for value")),
    }
}

/// Why an account cannot be used.
enum AccountProblem {
    Unknown,
    NotAllowed,
}

fn resolve_account(
    name: Option<Name<'_>>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<AccountId, AccountProblem> {
    let id = match name {
        None => scope.default_account,
        Some(name) => ctx.account_named(name).ok_or(AccountProblem::Unknown)?,
    };
    if scope.allowed_accounts.contains(id) {
        Ok(id)
    } else {
        Err(AccountProblem::NotAllowed)
    }
}

fn resolve_instrument<'a>(
    symbol: Name<'_>,
    exchange: Option<Name<'_>>,
    ctx: &DeskContext<'a>,
    scope: &SessionScope,
) -> Option<&'a Instrument> {
    let venue = match exchange {
        None => scope.default_venue,
        Some(name) => ctx.venue_named(name)?,
    };
    ctx.instrument_named(venue, symbol)
}

/// The fields of D, F, G and H, found through the parser's index of the known tags
/// (no pass over the fields): a field's value is read when asked for. Where a tag appears
/// twice (only in a message that skipped validation), the last one counts.
struct OrderFields<'a> {
    msg: &'a Message<'a>,
}

/// Column of Account (1).
const ACCOUNT: usize = column(1);
/// Column of ClOrdID (11).
const CL_ORD_ID: usize = column(11);
/// Column of OrigClOrdID (41).
const ORIG_CL_ORD_ID: usize = column(41);
/// Column of OrderID (37).
const ORDER_ID: usize = column(37);
/// Column of Symbol (55).
const SYMBOL: usize = column(55);
/// Column of SecurityExchange (207).
const EXCHANGE: usize = column(207);
/// Column of Side (54).
const SIDE: usize = column(54);
/// Column of OrdType (40).
const ORD_TYPE: usize = column(40);
/// Column of Price (44).
const PRICE: usize = column(44);
/// Column of StopPx (99).
const STOP_PRICE: usize = column(99);
/// Column of OrderQty (38).
const QTY: usize = column(38);
/// Column of TimeInForce (59).
const TIME_IN_FORCE: usize = column(59);
/// Column of ExecInst (18).
const EXEC_INST: usize = column(18);
/// Column of HandlInst (21).
const HANDL_INST: usize = column(21);
/// Column of ExpireTime (126).
const EXPIRE_TIME: usize = column(126);
/// Column of OrdStatusReqID (790).
const ORD_STATUS_REQ_ID: usize = column(790);

/// Every column above is a real one (a tag without a column would read as absent).
const _: () = {
    let columns = [
        ACCOUNT,
        CL_ORD_ID,
        ORIG_CL_ORD_ID,
        ORDER_ID,
        SYMBOL,
        EXCHANGE,
        SIDE,
        ORD_TYPE,
        PRICE,
        STOP_PRICE,
        QTY,
        TIME_IN_FORCE,
        EXEC_INST,
        HANDL_INST,
        EXPIRE_TIME,
        ORD_STATUS_REQ_ID,
    ];
    let mut index = 0;
    while index < columns.len() {
        assert!(columns[index] != 0);
        index += 1;
    }
};

impl<'a> OrderFields<'a> {
    #[inline]
    fn read(msg: &'a Message<'a>) -> Self {
        Self { msg }
    }

    /// The field in `slot` (a column).
    #[inline(always)]
    fn field(&self, slot: usize) -> Option<&'a Field> {
        self.msg.last_in_column(slot)
    }

    /// The value in `slot`.
    #[inline(always)]
    fn get(&self, slot: usize) -> Option<&'a [u8]> {
        self.msg.value_in_column(slot)
    }

    /// The value in `slot` as a name to look up.
    #[inline(always)]
    fn name(&self, slot: usize) -> Option<Name<'a>> {
        self.field(slot)
            .map(|field| Name::in_message(self.msg, field))
    }

    /// The ClOrdID (11) or OrigClOrdID (41) in `slot`, checked and copied from the
    /// message a word at a time (see [`client_order_id`]).
    #[inline(always)]
    fn client_order_id(&self, slot: usize, tag: u32) -> Result<ClientOrderId, AppReject> {
        let field = self.field(slot).ok_or_else(|| missing(tag))?;
        client_order_id_in(self.msg, field, tag)
    }
}

fn side(value: Option<&[u8]>) -> Result<Side, AppReject> {
    match one_byte(required(value, 54)?, 54)? {
        b'1' => Ok(Side::Buy),
        b'2' => Ok(Side::Sell),
        _ => Err(out_of_range(54)),
    }
}

fn order_type(value: Option<&[u8]>) -> Result<OrderType, AppReject> {
    match one_byte(required(value, 40)?, 40)? {
        b'1' => Ok(OrderType::Market),
        b'2' => Ok(OrderType::Limit),
        b'3' => Ok(OrderType::Stop),
        b'4' => Ok(OrderType::StopLimit),
        _ => Err(out_of_range(40)),
    }
}

fn time_in_force(value: Option<&[u8]>) -> Result<TimeInForce, AppReject> {
    let Some(value) = value else {
        return Ok(TimeInForce::Day);
    };
    match one_byte(value, 59)? {
        b'0' => Ok(TimeInForce::Day),
        b'1' => Ok(TimeInForce::Gtc),
        b'3' => Ok(TimeInForce::Ioc),
        b'4' => Ok(TimeInForce::Fok),
        b'6' => Ok(TimeInForce::Gtd),
        _ => Err(out_of_range(59)),
    }
}

/// ExecInst (18): `6` post-only, `E` reduce-only, separated by spaces.
fn flags(value: Option<&[u8]>) -> Result<OrderFlags, AppReject> {
    let mut flags = OrderFlags::NONE;
    for &byte in value.unwrap_or_default() {
        flags = match byte {
            b' ' => flags,
            b'6' => flags.with(OrderFlags::POST_ONLY),
            b'E' => flags.with(OrderFlags::REDUCE_ONLY),
            _ => {
                return Err(order(
                    RejectReason::UnsupportedOrder,
                    "ExecInst (18): only 6 (post-only) and E (reduce-only) are supported",
                ));
            }
        };
    }
    Ok(flags)
}

fn check_handl_inst(value: Option<&[u8]>) -> Result<(), AppReject> {
    match value {
        None | Some(b"1" | b"2") => Ok(()),
        Some(b"3") => Err(order(
            RejectReason::UnsupportedOrder,
            "HandlInst 3 (manual) is not supported",
        )),
        Some(_) => Err(out_of_range(21)),
    }
}

/// The answer to a Price or Qty that does not parse at the instrument's scale: an order
/// reject for too many decimals or a value out of range, a session reject (incorrect data
/// format) for the grammar errors that validation rules out.
fn fixed_error(
    error: &FixedError,
    tag: u32,
    reason: RejectReason,
    too_many_decimals: &'static str,
    too_large: &'static str,
) -> AppReject {
    match error {
        FixedError::TooManyDecimals { .. } => order(reason, too_many_decimals),
        FixedError::Overflow { .. } => order(reason, too_large),
        _ => session(6, tag, "incorrect data format for value"),
    }
}

#[inline(always)]
fn price(value: &[u8], tag: u32, instrument: &Instrument) -> Result<Price, AppReject> {
    Price::parse(value, instrument.price_scale).map_err(|error| {
        let (decimals, large) = if tag == 44 {
            (
                "Price (44) has more decimals than the instrument's price scale",
                "Price (44) is out of range",
            )
        } else {
            (
                "StopPx (99) has more decimals than the instrument's price scale",
                "StopPx (99) is out of range",
            )
        };
        fixed_error(&error, tag, RejectReason::InvalidPrice, decimals, large)
    })
}

fn decode_order(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
    action: OrderAction,
) -> Result<DeskRequest, AppReject> {
    if !scope.role.may_trade() {
        return Err(business(
            BusinessReason::NotAuthorized,
            "this session may not send orders",
        ));
    }
    let f = OrderFields::read(msg);
    let client = f.client_order_id(CL_ORD_ID, 11)?;
    let orig = match action {
        OrderAction::New | OrderAction::Status => ClientOrderId::NONE,
        OrderAction::Cancel | OrderAction::Replace => f.client_order_id(ORIG_CL_ORD_ID, 41)?,
    };
    let side = side(f.get(SIDE))?;
    let symbol = f.name(SYMBOL).ok_or_else(|| missing(55))?;
    let account =
        resolve_account(f.name(ACCOUNT), ctx, scope).map_err(|problem| match problem {
            AccountProblem::Unknown => order(RejectReason::UnknownAccount, "unknown account"),
            AccountProblem::NotAllowed => order(
                RejectReason::UnknownAccount,
                "account not allowed for this session",
            ),
        })?;
    let instrument = resolve_instrument(symbol, f.name(EXCHANGE), ctx, scope).ok_or_else(|| {
        order(
            RejectReason::UnknownInstrument,
            "unknown Symbol (55) on this SecurityExchange (207)",
        )
    })?;
    let order_id = match f.get(ORDER_ID) {
        None => OrderId(0),
        Some(value) => parse_u64(value)
            .map(OrderId)
            .ok_or_else(|| order(RejectReason::UnknownOrder, "unknown OrderID (37)"))?,
    };
    // The command is written once, in the request returned (built early and completed
    // later, it was copied into the request: a `memcpy` call per order).
    if action == OrderAction::Cancel {
        // A cancel carries no order terms (38 is informational in FIX 4.4).
        return Ok(DeskRequest::Order(OrderCommand {
            action: action.code(),
            side: side.code(),
            account,
            instrument: instrument.id,
            order_id,
            client_order_id: client,
            orig_client_order_id: orig,
            ..OrderCommand::default()
        }));
    }
    let order_type = order_type(f.get(ORD_TYPE))?;
    let time_in_force = time_in_force(f.get(TIME_IN_FORCE))?;
    let flags = flags(f.get(EXEC_INST))?;
    check_handl_inst(f.get(HANDL_INST))?;
    let qty = Qty::parse(required(f.get(QTY), 38)?, instrument.qty_scale).map_err(|error| {
        fixed_error(
            &error,
            38,
            RejectReason::InvalidQuantity,
            "OrderQty (38) has more decimals than the instrument's quantity scale",
            "OrderQty (38) is out of range",
        )
    })?;
    let limit = match (order_type.has_limit_price(), f.get(PRICE)) {
        (true, Some(value)) => price(value, 44, instrument)?,
        (true, None) => return Err(missing(44)),
        (false, Some(_)) => {
            return Err(order(
                RejectReason::InvalidPrice,
                "Price (44) given for an order type without a limit price",
            ));
        }
        (false, None) => Price::ZERO,
    };
    let stop = match (order_type.has_stop_price(), f.get(STOP_PRICE)) {
        (true, Some(value)) => price(value, 99, instrument)?,
        (true, None) => return Err(missing(99)),
        (false, Some(_)) => {
            return Err(order(
                RejectReason::InvalidPrice,
                "StopPx (99) given for an order type without a stop price",
            ));
        }
        (false, None) => Price::ZERO,
    };
    let expire_at = match (time_in_force, f.get(EXPIRE_TIME)) {
        (TimeInForce::Gtd, Some(value)) => {
            parse_utc_timestamp(value).ok_or_else(|| session(6, 126, "incorrect data format"))?
        }
        (TimeInForce::Gtd, None) => {
            return Err(business(
                BusinessReason::ConditionallyRequiredFieldMissing,
                "ExpireTime (126) is required with TimeInForce 6 (GTD)",
            ));
        }
        (_, Some(_)) => {
            return Err(order(
                RejectReason::UnsupportedOrder,
                "ExpireTime (126) is only allowed with TimeInForce 6 (GTD)",
            ));
        }
        (_, None) => UnixNanos::ZERO,
    };
    Ok(DeskRequest::Order(OrderCommand {
        action: action.code(),
        side: side.code(),
        order_type: order_type.code(),
        time_in_force: time_in_force.code(),
        flags: flags.0,
        account,
        instrument: instrument.id,
        order_id,
        price: limit,
        stop_price: stop,
        qty,
        expire_at,
        client_order_id: client,
        orig_client_order_id: orig,
        ..OrderCommand::default()
    }))
}

fn decode_status(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<DeskRequest, AppReject> {
    let f = OrderFields::read(msg);
    if f.get(CL_ORD_ID).is_none() && f.get(ORDER_ID).is_none() {
        return Err(missing(11));
    }
    let orig = match f.get(CL_ORD_ID) {
        Some(value) => client_order_id(value, 11)?,
        None => ClientOrderId::NONE,
    };
    let ord_status_req_id = f
        .get(ORD_STATUS_REQ_ID)
        .map(|value| req_id(value, 790))
        .transpose()?;
    let side = side(f.get(SIDE))?;
    let symbol = f.name(SYMBOL).ok_or_else(|| missing(55))?;
    let account =
        resolve_account(f.name(ACCOUNT), ctx, scope).map_err(|problem| match problem {
            AccountProblem::Unknown => business(BusinessReason::Other, "unknown account"),
            AccountProblem::NotAllowed => business(
                BusinessReason::NotAuthorized,
                "account not allowed for this session",
            ),
        })?;
    let instrument = resolve_instrument(symbol, f.name(EXCHANGE), ctx, scope).ok_or_else(|| {
        business(
            BusinessReason::UnknownSecurity,
            "unknown Symbol (55) on this SecurityExchange (207)",
        )
    })?;
    let order_id = match f.get(ORDER_ID) {
        None => OrderId(0),
        Some(value) => parse_u64(value)
            .map(OrderId)
            .ok_or_else(|| business(BusinessReason::UnknownId, "unknown OrderID (37)"))?,
    };
    let command = OrderCommand {
        action: OrderAction::Status.code(),
        side: side.code(),
        account,
        instrument: instrument.id,
        order_id,
        orig_client_order_id: orig,
        ..OrderCommand::default()
    };
    Ok(DeskRequest::Status {
        command,
        ord_status_req_id,
    })
}

fn subscription(value: Option<&[u8]>, tag: u32) -> Result<Option<Subscription>, AppReject> {
    value
        .map(|value| match value {
            b"0" => Ok(Subscription::Snapshot),
            b"1" => Ok(Subscription::Subscribe),
            b"2" => Ok(Subscription::Unsubscribe),
            _ => Err(out_of_range(tag)),
        })
        .transpose()
}

fn md_reject(reason: MdRejectReason, text: &'static str) -> AppReject {
    AppReject::MarketData { reason, text }
}

fn decode_market_data(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<MarketDataRequest, AppReject> {
    let (mut id, mut sub, mut depth, mut update, mut aggregated) = (None, None, None, None, None);
    let (mut bids, mut offers, mut other_entry_type) = (false, false, false);
    // Symbols and their optional 207, resolved after the pass (the request id must be known
    // before a MarketDataRequestReject can be answered).
    let mut symbols: [(&[u8], Option<&[u8]>); MAX_MD_INSTRUMENTS] =
        [(&[], None); MAX_MD_INSTRUMENTS];
    let mut symbol_count = 0_usize;
    for field in msg.fields() {
        let value = msg.value(field);
        match field.tag {
            262 => id = Some(value),
            263 => sub = Some(value),
            264 => depth = Some(value),
            265 => update = Some(value),
            266 => aggregated = Some(value),
            269 => match value {
                b"0" => bids = true,
                b"1" => offers = true,
                _ => other_entry_type = true,
            },
            55 => {
                if let Some(slot) = symbols.get_mut(symbol_count) {
                    *slot = (value, None);
                }
                symbol_count += 1;
            }
            207 => {
                if let Some(slot) = symbol_count
                    .checked_sub(1)
                    .and_then(|last| symbols.get_mut(last))
                {
                    slot.1 = Some(value);
                }
            }
            _ => {}
        }
    }
    let md_req_id = req_id(required(id, 262)?, 262)?;
    let subscription = subscription(sub, 263)?.ok_or_else(|| missing(263))?;
    let depth = required(depth, 264)?;
    if symbol_count == 0 {
        return Err(missing(146));
    }
    if aggregated == Some(b"N") {
        return Err(md_reject(
            MdRejectReason::UnsupportedAggregatedBook,
            "only aggregated books (266=Y) are served",
        ));
    }
    if other_entry_type {
        return Err(md_reject(
            MdRejectReason::UnsupportedMdEntryType,
            "only bids (269=0) and offers (269=1) are served",
        ));
    }
    if !bids && !offers {
        return Err(missing(269));
    }
    let depth = parse_u64(depth)
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| {
            md_reject(
                MdRejectReason::UnsupportedMarketDepth,
                "MarketDepth too large",
            )
        })?;
    let update_type = match (update, subscription) {
        (Some(b"0"), _) => MdUpdateType::FullRefresh,
        (Some(b"1"), _) => MdUpdateType::Incremental,
        (Some(_), _) => return Err(out_of_range(265)),
        (None, Subscription::Subscribe) => {
            return Err(business(
                BusinessReason::ConditionallyRequiredFieldMissing,
                "MDUpdateType (265) is required with SubscriptionRequestType 1",
            ));
        }
        (None, _) => MdUpdateType::FullRefresh,
    };
    if symbol_count > MAX_MD_INSTRUMENTS {
        return Err(md_reject(
            MdRejectReason::InsufficientBandwidth,
            "more than 16 instruments in one MarketDataRequest",
        ));
    }
    let mut instruments = [InstrumentId(0); MAX_MD_INSTRUMENTS];
    for (slot, &(symbol, exchange)) in instruments.iter_mut().zip(&symbols[..symbol_count]) {
        *slot = resolve_instrument(Name::of(symbol), exchange.map(Name::of), ctx, scope)
            .ok_or_else(|| {
                md_reject(
                    MdRejectReason::UnknownSymbol,
                    "unknown Symbol (55) on this SecurityExchange (207)",
                )
            })?
            .id;
    }
    Ok(MarketDataRequest {
        md_req_id,
        subscription,
        depth,
        update_type,
        bids,
        offers,
        instruments,
        instrument_count: symbol_count as u8,
    })
}

fn positions_reject(result: PosReqResult, text: &'static str) -> AppReject {
    AppReject::Positions { result, text }
}

fn decode_positions(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<PositionsRequest, AppReject> {
    let (mut id, mut kind, mut sub, mut account, mut symbol, mut exchange) =
        (None, None, None, None, None, None);
    for field in msg.fields() {
        let value = Some(msg.value(field));
        match field.tag {
            710 => id = value,
            724 => kind = value,
            263 => sub = value,
            1 => account = value,
            55 => symbol = value,
            207 => exchange = value,
            _ => {}
        }
    }
    let pos_req_id = req_id(required(id, 710)?, 710)?;
    match required(kind, 724)? {
        b"0" => {}
        b"1" | b"2" | b"3" => {
            return Err(positions_reject(
                PosReqResult::NotSupported,
                "only PosReqType 0 (positions) is supported",
            ));
        }
        _ => return Err(out_of_range(724)),
    }
    let subscription = subscription(sub, 263)?.unwrap_or(Subscription::Snapshot);
    let account =
        resolve_account(account.map(Name::of), ctx, scope).map_err(|problem| match problem {
            AccountProblem::Unknown => {
                positions_reject(PosReqResult::InvalidOrUnsupported, "unknown account")
            }
            AccountProblem::NotAllowed => positions_reject(
                PosReqResult::NotAuthorized,
                "account not allowed for this session",
            ),
        })?;
    let instrument = match symbol {
        None => None,
        Some(symbol) => Some(
            resolve_instrument(Name::of(symbol), exchange.map(Name::of), ctx, scope)
                .ok_or_else(|| {
                    positions_reject(
                        PosReqResult::InvalidOrUnsupported,
                        "unknown Symbol (55) on this SecurityExchange (207)",
                    )
                })?
                .id,
        ),
    };
    Ok(PositionsRequest {
        pos_req_id,
        account,
        instrument,
        subscription,
    })
}

fn decode_admin(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<AdminRequest, AppReject> {
    if !scope.role.may_administer() {
        return Err(business(
            BusinessReason::NotAuthorized,
            "this session may not send admin requests",
        ));
    }
    let (mut id, mut action, mut account) = (None, None, None);
    for field in msg.fields() {
        let value = Some(msg.value(field));
        match field.tag {
            20_000 => id = value,
            20_001 => action = value,
            1 => account = value,
            _ => {}
        }
    }
    let admin_req_id = req_id(required(id, 20_000)?, 20_000)?;
    let action = AdminAction::from_code(one_byte(required(action, 20_001)?, 20_001)?)
        .ok_or_else(|| out_of_range(20_001))?;
    let account = match account {
        None => None,
        Some(name) => Some(ctx.account_id(name).ok_or(AppReject::Admin {
            text: "unknown account",
        })?),
    };
    Ok(AdminRequest {
        admin_req_id,
        action,
        account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time ClOrdID check and copy agree with `ClientOrderId::new` on every
    /// length around the limits and on bytes at and around each edge of printable ASCII.
    #[test]
    fn client_order_ids_match_the_model() {
        use crate::fix::codec::{Parser, checksum};
        // Every byte but SOH, which cannot be in a value.
        let edges = [
            0x00, 0x02, 0x20, 0x21, 0x22, 0x41, 0x7D, 0x7E, 0x7F, 0x80, 0xA1, 0xFF,
        ];
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parser = Parser::new();
        for len in 1..=45 {
            for round in 0..200 {
                let mut value: Vec<u8> = (0..len).map(|_| b'!' + (next() % 94) as u8).collect();
                if round % 2 == 1 {
                    let at = (next() as usize) % len;
                    value[at] = edges[(next() as usize) % edges.len()];
                }
                let mut body = b"35=D\x0111=".to_vec();
                body.extend_from_slice(&value);
                body.push(0x01);
                if round % 4 < 2 {
                    // Fields after it: the 40-byte block is in the message.
                    body.extend_from_slice(&[b"58=".as_slice(), &[b'x'; 48], b"\x01"].concat());
                }
                let mut bytes = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
                bytes.extend_from_slice(&body);
                let sum = checksum(&bytes);
                bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
                let msg = parser.parse(&bytes).unwrap();
                let ours = client_order_id(msg.value(&msg.fields()[3]), 11);
                assert_eq!(client_order_id_in(&msg, &msg.fields()[3], 11), ours);
                match ClientOrderId::new(&value) {
                    Ok(id) => assert_eq!(ours, Ok(id)),
                    Err(_) => assert!(ours.is_err()),
                }
            }
        }
    }
}
