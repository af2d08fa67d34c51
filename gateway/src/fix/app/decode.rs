//! Desk requests to engine records.

use aaiti_model::{
    AccountId, ClientOrderId, FixedError, Instrument, InstrumentId, OrderAction, OrderCommand,
    OrderFlags, OrderId, OrderType, Price, Qty, RejectReason, Side, TimeInForce, UnixNanos,
};

use super::{
    AdminAction, AdminRequest, AppReject, BusinessReason, DeskContext, DeskRequest,
    MAX_MD_INSTRUMENTS, MarketDataRequest, MdRejectReason, MdUpdateType, PosReqResult,
    PositionsRequest, ReqId, SessionScope, Subscription,
};
use crate::fix::Reject;
use crate::fix::codec::{Message, parse_u64, parse_utc_timestamp};

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
        b"D" => decode_order(msg, ctx, scope, OrderAction::New).map(DeskRequest::Order),
        b"F" => decode_order(msg, ctx, scope, OrderAction::Cancel).map(DeskRequest::Order),
        b"G" => decode_order(msg, ctx, scope, OrderAction::Replace).map(DeskRequest::Order),
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

fn client_order_id(value: &[u8], tag: u32) -> Result<ClientOrderId, AppReject> {
    ClientOrderId::new(value)
        .map_err(|_| session(5, tag, "order id must be 1 to 40 printable ASCII bytes"))
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
    name: Option<&[u8]>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<AccountId, AccountProblem> {
    let id = match name {
        None => scope.default_account,
        Some(name) => ctx.account_id(name).ok_or(AccountProblem::Unknown)?,
    };
    if scope.allowed_accounts.contains(id) {
        Ok(id)
    } else {
        Err(AccountProblem::NotAllowed)
    }
}

fn resolve_instrument<'a>(
    symbol: &[u8],
    exchange: Option<&[u8]>,
    ctx: &DeskContext<'a>,
    scope: &SessionScope,
) -> Option<&'a Instrument> {
    let venue = match exchange {
        None => scope.default_venue,
        Some(name) => ctx.venue_id(name)?,
    };
    ctx.instrument(venue, symbol)
}

/// The fields of D, F, G and H, read in one pass.
struct OrderFields<'a> {
    account: Option<&'a [u8]>,
    cl_ord_id: Option<&'a [u8]>,
    orig_cl_ord_id: Option<&'a [u8]>,
    order_id: Option<&'a [u8]>,
    symbol: Option<&'a [u8]>,
    exchange: Option<&'a [u8]>,
    side: Option<&'a [u8]>,
    ord_type: Option<&'a [u8]>,
    price: Option<&'a [u8]>,
    stop_price: Option<&'a [u8]>,
    qty: Option<&'a [u8]>,
    time_in_force: Option<&'a [u8]>,
    exec_inst: Option<&'a [u8]>,
    handl_inst: Option<&'a [u8]>,
    expire_time: Option<&'a [u8]>,
    ord_status_req_id: Option<&'a [u8]>,
}

/// The tags [`OrderFields`] reads; a tag's position + 1 is its slot.
const ORDER_TAGS: [u32; 16] = [
    1, 11, 41, 37, 55, 207, 54, 40, 44, 99, 38, 59, 18, 21, 126, 790,
];

/// The slot of every tag below 1024 (0: not read), so that reading a field is one table
/// load and one store rather than a chain of comparisons.
const ORDER_SLOT: [u8; 1024] = {
    let mut slots = [0_u8; 1024];
    let mut index = 0;
    while index < ORDER_TAGS.len() {
        slots[ORDER_TAGS[index] as usize] = index as u8 + 1;
        index += 1;
    }
    slots
};

impl<'a> OrderFields<'a> {
    fn read(msg: &Message<'a>) -> Self {
        // Field index + 1 per slot (slot 0 collects the fields not read): small to clear.
        let mut index = [0_u16; ORDER_TAGS.len() + 1];
        for (position, field) in msg.fields().iter().enumerate() {
            let slot = ORDER_SLOT.get(field.tag as usize).copied().unwrap_or(0);
            index[usize::from(slot)] = position as u16 + 1;
        }
        let fields = msg.fields();
        let v = |slot: usize| {
            usize::from(index[slot])
                .checked_sub(1)
                .and_then(|position| fields.get(position))
                .map(|field| msg.value(field))
        };
        Self {
            account: v(1),
            cl_ord_id: v(2),
            orig_cl_ord_id: v(3),
            order_id: v(4),
            symbol: v(5),
            exchange: v(6),
            side: v(7),
            ord_type: v(8),
            price: v(9),
            stop_price: v(10),
            qty: v(11),
            time_in_force: v(12),
            exec_inst: v(13),
            handl_inst: v(14),
            expire_time: v(15),
            ord_status_req_id: v(16),
        }
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
) -> Result<OrderCommand, AppReject> {
    if !scope.role.may_trade() {
        return Err(business(
            BusinessReason::NotAuthorized,
            "this session may not send orders",
        ));
    }
    let f = OrderFields::read(msg);
    let client = client_order_id(required(f.cl_ord_id, 11)?, 11)?;
    let orig = match action {
        OrderAction::New | OrderAction::Status => ClientOrderId::NONE,
        OrderAction::Cancel | OrderAction::Replace => {
            client_order_id(required(f.orig_cl_ord_id, 41)?, 41)?
        }
    };
    let side = side(f.side)?;
    let symbol = required(f.symbol, 55)?;
    let account = resolve_account(f.account, ctx, scope).map_err(|problem| match problem {
        AccountProblem::Unknown => order(RejectReason::UnknownAccount, "unknown account"),
        AccountProblem::NotAllowed => order(
            RejectReason::UnknownAccount,
            "account not allowed for this session",
        ),
    })?;
    let instrument = resolve_instrument(symbol, f.exchange, ctx, scope).ok_or_else(|| {
        order(
            RejectReason::UnknownInstrument,
            "unknown Symbol (55) on this SecurityExchange (207)",
        )
    })?;
    let order_id = match f.order_id {
        None => OrderId(0),
        Some(value) => parse_u64(value)
            .map(OrderId)
            .ok_or_else(|| order(RejectReason::UnknownOrder, "unknown OrderID (37)"))?,
    };
    let mut command = OrderCommand {
        action: action.code(),
        side: side.code(),
        account,
        instrument: instrument.id,
        order_id,
        client_order_id: client,
        orig_client_order_id: orig,
        ..OrderCommand::default()
    };
    if action == OrderAction::Cancel {
        // A cancel carries no order terms (38 is informational in FIX 4.4).
        return Ok(command);
    }
    let order_type = order_type(f.ord_type)?;
    let time_in_force = time_in_force(f.time_in_force)?;
    let flags = flags(f.exec_inst)?;
    check_handl_inst(f.handl_inst)?;
    let qty = Qty::parse(required(f.qty, 38)?, instrument.qty_scale).map_err(|error| {
        fixed_error(
            &error,
            38,
            RejectReason::InvalidQuantity,
            "OrderQty (38) has more decimals than the instrument's quantity scale",
            "OrderQty (38) is out of range",
        )
    })?;
    let limit = match (order_type.has_limit_price(), f.price) {
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
    let stop = match (order_type.has_stop_price(), f.stop_price) {
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
    let expire_at = match (time_in_force, f.expire_time) {
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
    command.order_type = order_type.code();
    command.time_in_force = time_in_force.code();
    command.flags = flags.0;
    command.qty = qty;
    command.price = limit;
    command.stop_price = stop;
    command.expire_at = expire_at;
    Ok(command)
}

fn decode_status(
    msg: &Message<'_>,
    ctx: &DeskContext<'_>,
    scope: &SessionScope,
) -> Result<DeskRequest, AppReject> {
    let f = OrderFields::read(msg);
    if f.cl_ord_id.is_none() && f.order_id.is_none() {
        return Err(missing(11));
    }
    let orig = match f.cl_ord_id {
        Some(value) => client_order_id(value, 11)?,
        None => ClientOrderId::NONE,
    };
    let ord_status_req_id = f
        .ord_status_req_id
        .map(|value| req_id(value, 790))
        .transpose()?;
    let side = side(f.side)?;
    let symbol = required(f.symbol, 55)?;
    let account = resolve_account(f.account, ctx, scope).map_err(|problem| match problem {
        AccountProblem::Unknown => business(BusinessReason::Other, "unknown account"),
        AccountProblem::NotAllowed => business(
            BusinessReason::NotAuthorized,
            "account not allowed for this session",
        ),
    })?;
    let instrument = resolve_instrument(symbol, f.exchange, ctx, scope).ok_or_else(|| {
        business(
            BusinessReason::UnknownSecurity,
            "unknown Symbol (55) on this SecurityExchange (207)",
        )
    })?;
    let order_id = match f.order_id {
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
        *slot = resolve_instrument(symbol, exchange, ctx, scope)
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
    let account = resolve_account(account, ctx, scope).map_err(|problem| match problem {
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
            resolve_instrument(symbol, exchange, ctx, scope)
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
