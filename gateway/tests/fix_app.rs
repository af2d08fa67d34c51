//! The FIX application layer through its public API: every request type decoded, every
//! reject path, every response encoded, framed, parsed and checked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use aaiti_gateway::fix::Reject;
use aaiti_gateway::fix::app::{
    self, AccountSet, AdminAction, AdminResponse, AdminStatus, AppReject, BusinessReason,
    DeskContext, DeskOrders, DeskRequest, LevelAction, LevelChange, MdRejectReason, MdUpdateType,
    OrderInfo, PosReqResult, PositionReport, PositionsAck, ReportStamp, RequestKind, Role,
    SessionScope, Subscription,
};
use aaiti_gateway::fix::codec::{Encoder, Framing, Parser, checksum, frame};
use aaiti_gateway::fix::dictionary::{self, MsgClass};
use aaiti_model::{
    AccountId, ClientOrderId, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderAction,
    OrderCommand, OrderEvent, OrderEventKind, OrderFlags, OrderId, OrderType, Price, Qty,
    RejectReason, Side, TimeInForce, UnixNanos, VenueId,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn spec(venue: &str, symbol: &str, price_scale: u8, qty_scale: u8) -> InstrumentSpec {
    InstrumentSpec {
        venue: venue.into(),
        symbol: symbol.into(),
        base: "B".into(),
        quote: "Q".into(),
        price_scale,
        qty_scale,
        tick_size: "0.01".into(),
        lot_size: "0.0001".into(),
        min_notional: "0".into(),
    }
}

fn registry() -> InstrumentRegistry {
    InstrumentRegistry::from_specs(&[
        spec("binance", "BTCUSDT", 2, 5),
        spec("binance", "ETHUSDT", 2, 4),
        spec("coinbase", "BTC-USD", 2, 8),
    ])
    .unwrap()
}

const BTC: InstrumentId = InstrumentId(0);
const ETH: InstrumentId = InstrumentId(1);
const CB_BTC: InstrumentId = InstrumentId(2);

fn accounts() -> Vec<String> {
    vec!["desk-a".into(), "desk-b".into(), "other".into()]
}

fn scope(role: Role) -> SessionScope {
    let mut allowed = AccountSet::EMPTY;
    assert!(allowed.insert(AccountId(0)));
    assert!(allowed.insert(AccountId(1)));
    SessionScope {
        role,
        default_account: AccountId(0),
        allowed_accounts: allowed,
        default_venue: VenueId(0),
    }
}

const HEADER: &str = "49=DESK|56=AAITI|34=7|52=20240101-12:00:00.000|";

/// A framed inbound message: header, then `body` (`|` for SOH).
fn message(msg_type: &str, body: &str) -> Vec<u8> {
    let body = format!("35={msg_type}|{HEADER}{body}").replace('|', "\x01");
    let mut out = format!("8=FIX.4.4\x019={}\x01", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    let sum = checksum(&out);
    out.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    out
}

/// Frames, parses, validates (must pass unless `validated` is false) and decodes.
fn decode_as(
    role: Role,
    msg_type: &str,
    body: &str,
    validated: bool,
) -> Result<DeskRequest, AppReject> {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let bytes = message(msg_type, body);
    assert_eq!(frame(&bytes, 8192), Framing::Complete(bytes.len()));
    let mut parser = Parser::new();
    let msg = parser.parse(&bytes).unwrap();
    if validated {
        assert_eq!(dictionary::validate(&msg), Ok(()), "{msg_type} {body}");
    }
    app::decode(&msg, &ctx, &scope(role))
}

fn decode(msg_type: &str, body: &str) -> Result<DeskRequest, AppReject> {
    decode_as(Role::Trader, msg_type, body, true)
}

fn command(msg_type: &str, body: &str) -> OrderCommand {
    match decode(msg_type, body) {
        Ok(DeskRequest::Order(command)) => command,
        other => panic!("{msg_type} {body}: {other:?}"),
    }
}

fn order_reject(msg_type: &str, body: &str) -> (RejectReason, &'static str) {
    match decode(msg_type, body) {
        Err(AppReject::Order { reason, text }) => (reason, text),
        other => panic!("{msg_type} {body}: {other:?}"),
    }
}

fn cl(id: &str) -> ClientOrderId {
    ClientOrderId::new(id.as_bytes()).unwrap()
}

const T0: &str = "60=20240101-12:00:00|";

// ---------------------------------------------------------------------------------------
// Decoding orders
// ---------------------------------------------------------------------------------------

#[test]
fn new_order_single_becomes_a_new_command() {
    let got = command(
        "D",
        &format!("11=ord-1|55=BTCUSDT|54=1|{T0}38=0.25|40=2|44=65000.5|59=1|"),
    );
    let expected = OrderCommand {
        action: OrderAction::New.code(),
        side: Side::Buy.code(),
        order_type: OrderType::Limit.code(),
        time_in_force: TimeInForce::Gtc.code(),
        account: AccountId(0),
        instrument: BTC,
        price: Price(6_500_050),
        qty: Qty(25_000),
        client_order_id: cl("ord-1"),
        ..OrderCommand::default()
    };
    assert_eq!(got, expected);
}

#[test]
fn new_order_variants() {
    // Market, sell, Day by default, account by name, instrument on another venue.
    let c = command(
        "D",
        &format!("1=desk-b|11=m|55=BTC-USD|207=coinbase|54=2|{T0}38=1.5|40=1|"),
    );
    assert_eq!(
        (
            c.account,
            c.instrument,
            c.side,
            c.order_type,
            c.time_in_force
        ),
        (
            AccountId(1),
            CB_BTC,
            Side::Sell.code(),
            OrderType::Market.code(),
            TimeInForce::Day.code()
        )
    );
    assert_eq!(
        (c.qty, c.price, c.stop_price),
        (Qty(150_000_000), Price(0), Price(0))
    );
    // Stop, IOC.
    let c = command(
        "D",
        &format!("11=s|55=ETHUSDT|54=1|{T0}38=2|40=3|99=3000|59=3|"),
    );
    assert_eq!(
        (c.instrument, c.order_type, c.stop_price, c.time_in_force),
        (
            ETH,
            OrderType::Stop.code(),
            Price(300_000),
            TimeInForce::Ioc.code()
        )
    );
    // Stop-limit, FOK, reduce-only.
    let c = command(
        "D",
        &format!("11=sl|55=BTCUSDT|54=2|{T0}38=1|40=4|44=60000|99=60100.10|59=4|18=E|"),
    );
    assert_eq!(
        (c.price, c.stop_price, c.time_in_force, c.flags),
        (
            Price(6_000_000),
            Price(6_010_010),
            TimeInForce::Fok.code(),
            OrderFlags::REDUCE_ONLY.0
        )
    );
    // GTD with ExpireTime, post-only and reduce-only, HandlInst 1, Parties ignored.
    let c = command(
        "D",
        &format!(
            "11=g|21=1|55=BTCUSDT|54=1|{T0}38=1|40=2|44=1|59=6|126=20240102-00:00:00|\
             18=6 E|453=1|448=trader-7|447=D|452=11|"
        ),
    );
    assert_eq!(c.time_in_force, TimeInForce::Gtd.code());
    assert_eq!(c.expire_at, UnixNanos(1_704_153_600_000_000_000));
    assert_eq!(c.flags, OrderFlags::ALL.0);
    // Trailing zeros beyond the scale are exact, so accepted.
    let c = command(
        "D",
        &format!("11=z|55=BTCUSDT|54=1|{T0}38=1.000000|40=2|44=1.0000|"),
    );
    assert_eq!((c.qty, c.price), (Qty(100_000), Price(100)));
}

#[test]
fn new_order_rejects() {
    let base = |extra: &str| format!("11=r|55=BTCUSDT|54=1|{T0}38=1|{extra}");
    let cases: [(&str, RejectReason); 11] = [
        ("40=2|44=1|1=nobody|", RejectReason::UnknownAccount),
        ("40=2|44=1|1=other|", RejectReason::UnknownAccount),
        ("40=2|44=1|207=kraken|", RejectReason::UnknownInstrument),
        ("40=2|44=65000.123|", RejectReason::InvalidPrice),
        ("40=2|44=99999999999999999999|", RejectReason::InvalidPrice),
        ("40=1|44=1|", RejectReason::InvalidPrice),
        ("40=2|44=1|99=1|", RejectReason::InvalidPrice),
        ("40=3|99=1.001|", RejectReason::InvalidPrice),
        ("40=2|44=1|18=1|", RejectReason::UnsupportedOrder),
        ("40=2|44=1|21=3|", RejectReason::UnsupportedOrder),
        (
            "40=2|44=1|59=1|126=20240102-00:00:00|",
            RejectReason::UnsupportedOrder,
        ),
    ];
    for (extra, reason) in cases {
        assert_eq!(order_reject("D", &base(extra)).0, reason, "{extra}");
    }
    assert_eq!(
        order_reject("D", &base("40=2|44=1|1=other|")).1,
        "account not allowed for this session"
    );
    let qty = format!("11=r|55=BTCUSDT|54=1|{T0}38=0.000001|40=1|");
    assert_eq!(order_reject("D", &qty).0, RejectReason::InvalidQuantity);
    let unknown = format!("11=r|55=DOGEUSDT|54=1|{T0}38=1|40=1|");
    assert_eq!(
        order_reject("D", &unknown).0,
        RejectReason::UnknownInstrument
    );
    // GTD without ExpireTime: conditionally required field missing.
    assert_eq!(
        decode("D", &base("40=2|44=1|59=6|")),
        Err(AppReject::Business {
            reason: BusinessReason::ConditionallyRequiredFieldMissing,
            text: "ExpireTime (126) is required with TimeInForce 6 (GTD)"
        })
    );
    // ClOrdID too long or not printable: session reject, value out of range.
    let long = format!("11={}|55=BTCUSDT|54=1|{T0}38=1|40=1|", "x".repeat(41));
    assert!(matches!(
        decode("D", &long),
        Err(AppReject::Session(Reject {
            reason: 5,
            ref_tag: Some(11),
            ..
        }))
    ));
    let spaced = format!("11=a b|55=BTCUSDT|54=1|{T0}38=1|40=1|");
    assert!(matches!(
        decode("D", &spaced),
        Err(AppReject::Session(Reject {
            reason: 5,
            ref_tag: Some(11),
            ..
        }))
    ));
}

#[test]
fn viewers_may_not_trade() {
    let body = format!("11=v|55=BTCUSDT|54=1|{T0}38=1|40=1|");
    assert_eq!(
        decode_as(Role::Viewer, "D", &body, true),
        Err(AppReject::Business {
            reason: BusinessReason::NotAuthorized,
            text: "this session may not send orders"
        })
    );
    let cancel = format!("41=a|11=b|55=BTCUSDT|54=1|{T0}");
    assert!(matches!(
        decode_as(Role::Viewer, "F", &cancel, true),
        Err(AppReject::Business {
            reason: BusinessReason::NotAuthorized,
            ..
        })
    ));
    assert!(decode_as(Role::Admin, "F", &cancel, true).is_ok());
}

#[test]
fn cancel_and_replace() {
    let c = command(
        "F",
        &format!("41=ord-1|11=cxl-1|55=BTCUSDT|54=1|{T0}37=42|38=1|"),
    );
    assert_eq!(
        c,
        OrderCommand {
            action: OrderAction::Cancel.code(),
            side: Side::Buy.code(),
            account: AccountId(0),
            instrument: BTC,
            order_id: OrderId(42),
            client_order_id: cl("cxl-1"),
            orig_client_order_id: cl("ord-1"),
            ..OrderCommand::default()
        }
    );
    let c = command(
        "G",
        &format!("41=ord-1|11=rep-1|55=BTCUSDT|54=1|{T0}38=0.5|40=2|44=64000|59=1|18=6|"),
    );
    assert_eq!(
        (c.action, c.qty, c.price, c.flags, c.time_in_force),
        (
            OrderAction::Replace.code(),
            Qty(50_000),
            Price(6_400_000),
            OrderFlags::POST_ONLY.0,
            TimeInForce::Gtc.code()
        )
    );
    assert_eq!(
        (c.client_order_id, c.orig_client_order_id),
        (cl("rep-1"), cl("ord-1"))
    );
    // A non-numeric OrderID cannot be one of ours.
    let bad = format!("41=ord-1|11=cxl-2|55=BTCUSDT|54=1|{T0}37=ABC|");
    assert_eq!(order_reject("F", &bad).0, RejectReason::UnknownOrder);
    // OrigClOrdID that cannot be a client order id.
    let long = format!("41={}|11=c|55=BTCUSDT|54=1|{T0}", "o".repeat(41));
    assert!(matches!(
        decode("F", &long),
        Err(AppReject::Session(Reject {
            reason: 5,
            ref_tag: Some(41),
            ..
        }))
    ));
    // Replace with too many decimals in the new price.
    let rep = format!("41=ord-1|11=rep-2|55=BTCUSDT|54=1|{T0}38=1|40=2|44=1.005|");
    assert_eq!(order_reject("G", &rep).0, RejectReason::InvalidPrice);
}

#[test]
fn order_status_request() {
    for role in [Role::Viewer, Role::Trader, Role::Admin] {
        let got = decode_as(role, "H", "11=ord-1|55=BTCUSDT|54=1|790=st-1|", true).unwrap();
        let DeskRequest::Status {
            command,
            ord_status_req_id,
        } = got
        else {
            panic!("{got:?}");
        };
        assert_eq!(command.action, OrderAction::Status.code());
        assert_eq!(command.orig_client_order_id, cl("ord-1"));
        assert_eq!((command.account, command.instrument), (AccountId(0), BTC));
        assert_eq!(ord_status_req_id.unwrap().as_bytes(), b"st-1");
    }
    let Ok(DeskRequest::Status { command, .. }) = decode("H", "37=99|55=BTCUSDT|54=2|") else {
        panic!()
    };
    assert_eq!(
        (command.order_id, command.orig_client_order_id),
        (OrderId(99), ClientOrderId::NONE)
    );
    let business = |body: &str| match decode("H", body) {
        Err(AppReject::Business { reason, .. }) => reason,
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(business("37=x|55=BTCUSDT|54=1|"), BusinessReason::UnknownId);
    assert_eq!(
        business("11=a|55=NOPE|54=1|"),
        BusinessReason::UnknownSecurity
    );
    assert_eq!(
        business("11=a|55=BTCUSDT|54=1|1=other|"),
        BusinessReason::NotAuthorized
    );
    assert_eq!(
        business("11=a|55=BTCUSDT|54=1|1=ghost|"),
        BusinessReason::Other
    );
    let long = format!("11=a|55=BTCUSDT|54=1|790={}|", "r".repeat(41));
    assert!(matches!(
        decode("H", &long),
        Err(AppReject::Session(Reject {
            ref_tag: Some(790),
            ..
        }))
    ));
}

// ---------------------------------------------------------------------------------------
// Market data, positions, admin
// ---------------------------------------------------------------------------------------

fn md(body: &str) -> Result<app::MarketDataRequest, AppReject> {
    decode_as(Role::Viewer, "V", body, true).map(|request| match request {
        DeskRequest::MarketData(request) => request,
        other => panic!("{other:?}"),
    })
}

fn md_reject(body: &str) -> MdRejectReason {
    match md(body) {
        Err(AppReject::MarketData { reason, .. }) => reason,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn market_data_request() {
    let r = md("262=md-1|263=0|264=5|267=2|269=0|269=1|146=2|55=BTCUSDT|55=BTC-USD|207=coinbase|")
        .unwrap();
    assert_eq!(r.md_req_id.as_bytes(), b"md-1");
    assert_eq!(r.subscription, Subscription::Snapshot);
    assert_eq!((r.depth, r.bids, r.offers), (5, true, true));
    assert_eq!(r.update_type, MdUpdateType::FullRefresh);
    assert_eq!(r.instruments(), &[BTC, CB_BTC]);
    let r = md("262=md-2|263=1|264=1|265=1|266=Y|267=1|269=1|146=1|55=ETHUSDT|").unwrap();
    assert_eq!(
        (r.subscription, r.update_type, r.bids, r.offers, r.depth),
        (
            Subscription::Subscribe,
            MdUpdateType::Incremental,
            false,
            true,
            1
        )
    );
    assert_eq!(r.instruments(), &[ETH]);
    let r = md("262=md-2|263=2|264=0|267=1|269=0|146=1|55=ETHUSDT|").unwrap();
    assert_eq!(r.subscription, Subscription::Unsubscribe);

    let one = "146=1|55=BTCUSDT|";
    assert_eq!(
        md_reject(&format!("262=m|263=0|264=1|267=1|269=2|{one}")),
        MdRejectReason::UnsupportedMdEntryType
    );
    assert_eq!(
        md_reject(&format!("262=m|263=0|264=1|266=N|267=1|269=0|{one}")),
        MdRejectReason::UnsupportedAggregatedBook
    );
    assert_eq!(
        md_reject(&format!("262=m|263=0|264=99999999999|267=1|269=0|{one}")),
        MdRejectReason::UnsupportedMarketDepth
    );
    assert_eq!(
        md_reject("262=m|263=0|264=1|267=1|269=0|146=1|55=BTCUSDT|207=kraken|"),
        MdRejectReason::UnknownSymbol
    );
    let many: String = (0..17).map(|_| "55=BTCUSDT|").collect();
    assert_eq!(
        md_reject(&format!("262=m|263=0|264=1|267=1|269=0|146=17|{many}")),
        MdRejectReason::InsufficientBandwidth
    );
    assert!(matches!(
        md(&format!("262=m|263=1|264=1|267=1|269=0|{one}")),
        Err(AppReject::Business {
            reason: BusinessReason::ConditionallyRequiredFieldMissing,
            ..
        })
    ));
    let long = format!("262={}|263=0|264=1|267=1|269=0|{one}", "m".repeat(41));
    assert!(matches!(
        md(&long),
        Err(AppReject::Session(Reject {
            ref_tag: Some(262),
            ..
        }))
    ));
}

fn positions(role: Role, body: &str) -> Result<app::PositionsRequest, AppReject> {
    decode_as(role, "AN", body, true).map(|request| match request {
        DeskRequest::Positions(request) => request,
        other => panic!("{other:?}"),
    })
}

#[test]
fn request_for_positions() {
    let r = positions(Role::Viewer, &format!("710=p-1|724=0|{T0}")).unwrap();
    assert_eq!(
        (
            r.pos_req_id.as_bytes(),
            r.account,
            r.instrument,
            r.subscription
        ),
        (&b"p-1"[..], AccountId(0), None, Subscription::Snapshot)
    );
    let r = positions(
        Role::Trader,
        &format!("710=p-2|724=0|{T0}1=desk-b|55=ETHUSDT|263=1|715=20240101|581=1|"),
    )
    .unwrap();
    assert_eq!(
        (r.account, r.instrument, r.subscription),
        (AccountId(1), Some(ETH), Subscription::Subscribe)
    );
    let result = |body: &str| match positions(Role::Trader, body) {
        Err(AppReject::Positions { result, .. }) => result,
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(
        result(&format!("710=p|724=1|{T0}")),
        PosReqResult::NotSupported
    );
    assert_eq!(
        result(&format!("710=p|724=0|{T0}1=ghost|")),
        PosReqResult::InvalidOrUnsupported
    );
    assert_eq!(
        result(&format!("710=p|724=0|{T0}1=other|")),
        PosReqResult::NotAuthorized
    );
    assert_eq!(
        result(&format!("710=p|724=0|{T0}55=NOPE|")),
        PosReqResult::InvalidOrUnsupported
    );
}

#[test]
fn admin_request() {
    for (code, action) in [
        ("H", AdminAction::Halt),
        ("R", AdminAction::Resume),
        ("K", AdminAction::KillSwitch),
        ("F", AdminAction::KillSwitchFlatten),
        ("S", AdminAction::RiskState),
    ] {
        let got = decode_as(Role::Admin, "U1", &format!("20000=a-1|20001={code}|"), true);
        let Ok(DeskRequest::Admin(request)) = got else {
            panic!("{got:?}")
        };
        assert_eq!((request.action, request.account), (action, None));
        assert_eq!(request.admin_req_id.as_bytes(), b"a-1");
        assert_eq!(AdminAction::from_code(action.code()), Some(action));
    }
    // Admin sessions may name any account.
    let got = decode_as(Role::Admin, "U1", "20000=a|20001=H|1=other|", true);
    assert!(matches!(got, Ok(DeskRequest::Admin(r)) if r.account == Some(AccountId(2))));
    assert_eq!(
        decode_as(Role::Admin, "U1", "20000=a|20001=H|1=ghost|", true),
        Err(AppReject::Admin {
            text: "unknown account"
        })
    );
    for role in [Role::Trader, Role::Viewer] {
        assert!(matches!(
            decode_as(role, "U1", "20000=a|20001=H|", true),
            Err(AppReject::Business {
                reason: BusinessReason::NotAuthorized,
                ..
            })
        ));
    }
}

#[test]
fn the_documented_admin_request_is_valid() {
    // The example of the module docs, byte for byte (CheckSum computed here).
    let body = "35=U1\x0149=DESK\x0156=AAITI\x0134=12\x0152=20240101-12:00:00.000\x01\
                20000=adm-7\x0120001=H\x011=acct-a\x01";
    assert_eq!(body.len(), 83, "the BodyLength shown in the docs");
    let mut bytes = format!("8=FIX.4.4\x019={}\x01{body}", body.len()).into_bytes();
    let sum = checksum(&bytes);
    bytes.extend_from_slice(format!("10={sum:03}\x01").as_bytes());
    let mut parser = Parser::new();
    let msg = parser.parse(&bytes).unwrap();
    assert_eq!(dictionary::validate(&msg), Ok(()));
    let registry = registry();
    let accounts = vec!["acct-a".to_owned()];
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let request = app::decode(&msg, &ctx, &scope(Role::Admin)).unwrap();
    assert!(matches!(
        request,
        DeskRequest::Admin(r) if r.action == AdminAction::Halt && r.account == Some(AccountId(0))
    ));
}

#[test]
fn other_message_types_are_business_rejects() {
    for msg_type in ["0", "A", "E", "U2", "8"] {
        let registry = registry();
        let accounts = accounts();
        let ctx = DeskContext::new(&registry, &accounts).unwrap();
        let bytes = message(msg_type, "");
        let mut parser = Parser::new();
        let msg = parser.parse(&bytes).unwrap();
        assert_eq!(
            app::decode(&msg, &ctx, &scope(Role::Admin)),
            Err(AppReject::Business {
                reason: BusinessReason::UnsupportedMsgType,
                text: "unsupported message type"
            })
        );
        assert_ne!(dictionary::classify(msg_type.as_bytes()), MsgClass::Invalid);
    }
}

#[test]
fn unvalidated_input_gets_session_rejects_not_panics() {
    let cases = [
        ("D", format!("55=BTCUSDT|54=1|{T0}38=1|40=1|"), 11),
        ("D", format!("11=a|55=BTCUSDT|{T0}38=1|40=1|"), 54),
        ("D", format!("11=a|54=1|{T0}38=1|40=1|"), 55),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}40=1|"), 38),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}38=1|"), 40),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}38=1|40=2|"), 44),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}38=1|40=3|"), 99),
        ("D", format!("11=a|55=BTCUSDT|54=9|{T0}38=1|40=1|"), 54),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}38=1x|40=1|"), 38),
        ("D", format!("11=a|55=BTCUSDT|54=1|{T0}38=1|40=1|59=9|"), 59),
        ("F", format!("11=a|55=BTCUSDT|54=1|{T0}"), 41),
        ("H", "55=BTCUSDT|54=1|".to_owned(), 11),
        (
            "V",
            "263=0|264=1|267=1|269=0|146=1|55=BTCUSDT|".to_owned(),
            262,
        ),
        (
            "V",
            "262=m|263=5|264=1|267=1|269=0|146=1|55=BTCUSDT|".to_owned(),
            263,
        ),
        ("V", "262=m|263=0|264=1|267=1|269=0|".to_owned(), 146),
        ("AN", "724=0|".to_owned(), 710),
        ("AN", "710=p|724=7|".to_owned(), 724),
    ];
    for (msg_type, body, tag) in cases {
        match decode_as(Role::Admin, msg_type, &body, false) {
            Err(AppReject::Session(reject)) => {
                assert_eq!(reject.ref_tag, Some(tag), "{msg_type} {body}");
            }
            other => panic!("{msg_type} {body}: {other:?}"),
        }
    }
    assert!(matches!(
        decode_as(Role::Admin, "U1", "20000=a|20001=Q|", false),
        Err(AppReject::Session(Reject {
            reason: 5,
            ref_tag: Some(20_001),
            ..
        }))
    ));
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

/// Encodes a response with the gateway's header, frames and parses it, and returns its
/// fields (`(tag, value)` in order) after checking the header with the dictionary.
fn respond(msg_type: &[u8], body: impl FnOnce(&mut Encoder)) -> Vec<(u32, String)> {
    let mut enc = Encoder::new(512);
    enc.begin(msg_type);
    enc.str(49, b"AAITI");
    enc.str(56, b"DESK");
    enc.uint(34, 99);
    enc.timestamp(52, UnixNanos(1_704_110_400_000_000_000));
    body(&mut enc);
    let bytes = enc.finish().to_vec();
    assert_eq!(frame(&bytes, 1 << 16), Framing::Complete(bytes.len()));
    let mut parser = Parser::new();
    let msg = parser.parse(&bytes).unwrap();
    // Outbound types are not inbound application types: the dictionary checks the header.
    assert_eq!(dictionary::validate(&msg), Ok(()));
    msg.fields()
        .iter()
        .skip(7)
        .take(msg.fields().len() - 8)
        .map(|f| (f.tag, String::from_utf8(msg.value(f).to_vec()).unwrap()))
        .collect()
}

fn value(fields: &[(u32, String)], tag: u32) -> Option<&str> {
    fields
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v.as_str())
}

fn tags(fields: &[(u32, String)]) -> Vec<u32> {
    fields.iter().map(|(t, _)| *t).collect()
}

fn limit_order() -> OrderInfo {
    OrderInfo::from_command(&command(
        "D",
        &format!("1=desk-b|11=ord-1|55=BTCUSDT|54=1|{T0}38=2|40=2|44=65000|59=6|126=20240102-00:00:00|18=6|"),
    ))
    .unwrap()
}

fn event(kind: OrderEventKind, info: &OrderInfo) -> OrderEvent {
    OrderEvent {
        kind: kind.code(),
        side: info.side.code(),
        account: info.account,
        instrument: info.instrument,
        order_id: OrderId(42),
        price: info.price,
        leaves_qty: info.qty,
        client_order_id: info.client_order_id,
        ..OrderEvent::default()
    }
}

const STAMP: ReportStamp = ReportStamp {
    seq: 7,
    time: UnixNanos(1_704_110_400_123_000_000),
};

fn report(event: &OrderEvent, info: &OrderInfo) -> Vec<(u32, String)> {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    respond(app::order_event_msg_type(event), |enc| {
        app::encode_order_event(enc, event, info, &STAMP, &ctx).unwrap();
    })
}

#[test]
fn every_event_kind_maps_to_exec_type_and_ord_status() {
    let info = limit_order();
    let expected = [
        (OrderEventKind::PendingNew, "A", "A"),
        (OrderEventKind::Accepted, "0", "0"),
        (OrderEventKind::Rejected, "8", "8"),
        (OrderEventKind::PartiallyFilled, "F", "1"),
        (OrderEventKind::Filled, "F", "2"),
        (OrderEventKind::PendingCancel, "6", "6"),
        (OrderEventKind::Canceled, "4", "4"),
        (OrderEventKind::PendingReplace, "E", "E"),
        (OrderEventKind::Replaced, "5", "0"),
        (OrderEventKind::Expired, "C", "C"),
        (OrderEventKind::Triggered, "L", "0"),
    ];
    assert_eq!(expected.len() + 1, OrderEventKind::ALL.len());
    for (kind, exec_type, status) in expected {
        let fields = report(&event(kind, &info), &info);
        assert_eq!(value(&fields, 150), Some(exec_type), "{kind:?}");
        assert_eq!(value(&fields, 39), Some(status), "{kind:?}");
        // FIX 4.4 required fields of an ExecutionReport.
        for tag in [37, 17, 150, 39, 55, 54, 151, 14, 6] {
            assert!(value(&fields, tag).is_some(), "{kind:?} lacks {tag}");
        }
        assert_eq!(value(&fields, 37), Some("42"));
        assert_eq!(value(&fields, 17), Some("42-e7"));
        assert_eq!(value(&fields, 1), Some("desk-b"));
        assert_eq!(value(&fields, 55), Some("BTCUSDT"));
        assert_eq!(value(&fields, 207), Some("binance"));
        assert_eq!(value(&fields, 38), Some("2"));
        assert_eq!(value(&fields, 44), Some("65000"));
        assert_eq!(value(&fields, 59), Some("6"));
        assert_eq!(value(&fields, 126), Some("20240102-00:00:00.000"));
        assert_eq!(value(&fields, 18), Some("6"));
        assert_eq!(value(&fields, 60), Some("20240101-12:00:00.123"));
        let done = matches!(
            kind,
            OrderEventKind::Rejected
                | OrderEventKind::Filled
                | OrderEventKind::Canceled
                | OrderEventKind::Expired
        );
        assert_eq!(
            value(&fields, 151),
            Some(if done { "0" } else { "2" }),
            "{kind:?}"
        );
    }
    // A CancelRejected event is answered with an OrderCancelReject.
    let rejected = event(OrderEventKind::CancelRejected, &info);
    assert_eq!(app::order_event_msg_type(&rejected), b"9");
}

#[test]
fn fills_carry_trade_fields_and_unique_exec_ids() {
    let info = limit_order();
    let mut fill = event(OrderEventKind::PartiallyFilled, &info);
    fill.exec_id = 1001;
    fill.last_qty = Qty(50_000);
    fill.last_price = Price(6_499_950);
    fill.cum_qty = Qty(50_000);
    fill.leaves_qty = Qty(150_000);
    fill.avg_price = Price(6_499_950);
    fill.fee = -163;
    fill.liquidity = 1;
    let fields = report(&fill, &info);
    assert_eq!(value(&fields, 17), Some("42-1001"));
    assert_eq!(value(&fields, 32), Some("0.5"));
    assert_eq!(value(&fields, 31), Some("64999.5"));
    assert_eq!(value(&fields, 851), Some("1"));
    assert_eq!(value(&fields, 151), Some("1.5"));
    assert_eq!(value(&fields, 14), Some("0.5"));
    assert_eq!(value(&fields, 6), Some("64999.5"));
    assert_eq!(value(&fields, 12), Some("-1.63"));
    assert_eq!(value(&fields, 13), Some("3"));
    // Field order of the body.
    assert_eq!(
        tags(&fields),
        [
            37, 11, 17, 150, 39, 1, 55, 207, 54, 38, 40, 44, 59, 126, 18, 32, 31, 851, 151, 14, 6,
            12, 13, 60
        ]
    );
}

#[test]
fn rejected_orders_carry_the_mapped_reason() {
    let info = limit_order();
    let mut rejected = event(OrderEventKind::Rejected, &info);
    rejected.order_id = OrderId(0);
    rejected.reject_reason = RejectReason::MaxPosition.code();
    let fields = report(&rejected, &info);
    assert_eq!(value(&fields, 37), Some("NONE"));
    assert_eq!(value(&fields, 103), Some("3"));
    assert_eq!(value(&fields, 58), Some("max_position"));
    assert_eq!(value(&fields, 151), Some("0"));
}

#[test]
fn cancel_and_replace_lifecycle_keeps_the_id_chain() {
    let mut info = limit_order();
    // The desk asks to replace: the gateway records the request.
    let replace = command(
        "G",
        &format!(
            "1=desk-b|41=ord-1|11=ord-2|55=BTCUSDT|54=1|{T0}38=3|40=2|44=64000|59=6|126=20240102-00:00:00|18=6|"
        ),
    );
    info.on_request(&replace);
    assert_eq!(info.request.kind, RequestKind::Replace);
    let pending = event(OrderEventKind::PendingReplace, &info);
    let fields = report(&pending, &info);
    assert_eq!(
        (value(&fields, 11), value(&fields, 41)),
        (Some("ord-2"), Some("ord-1"))
    );
    assert!(!info.apply(&pending));
    let mut replaced = event(OrderEventKind::Replaced, &info);
    replaced.client_order_id = cl("ord-2");
    replaced.price = Price(6_400_000);
    replaced.leaves_qty = Qty(300_000);
    let fields = report(&replaced, &info);
    assert_eq!(
        (value(&fields, 11), value(&fields, 41)),
        (Some("ord-2"), Some("ord-1"))
    );
    assert_eq!(
        (value(&fields, 38), value(&fields, 44)),
        (Some("3"), Some("64000"))
    );
    assert_eq!(value(&fields, 150), Some("5"));
    assert!(!info.apply(&replaced));
    assert_eq!(
        (
            info.client_order_id,
            info.orig_client_order_id,
            info.qty,
            info.price
        ),
        (cl("ord-2"), cl("ord-1"), Qty(300_000), Price(6_400_000))
    );
    assert_eq!(info.request.kind, RequestKind::None);
    // Then a cancel, rejected by the engine.
    let cancel = command(
        "F",
        &format!("1=desk-b|41=ord-2|11=cxl-1|55=BTCUSDT|54=1|{T0}"),
    );
    info.on_request(&cancel);
    let mut rejected = event(OrderEventKind::CancelRejected, &info);
    rejected.reject_reason = RejectReason::UnsupportedOrder.code();
    rejected.leaves_qty = Qty(300_000);
    let fields = report(&rejected, &info);
    assert_eq!(
        tags(&fields),
        [37, 11, 41, 39, 1, 60, 434, 102, 58],
        "OrderCancelReject body"
    );
    assert_eq!(
        (value(&fields, 11), value(&fields, 41)),
        (Some("cxl-1"), Some("ord-2"))
    );
    assert_eq!(
        (value(&fields, 39), value(&fields, 434), value(&fields, 102)),
        (Some("0"), Some("1"), Some("2"))
    );
    assert!(!info.apply(&rejected));
    assert_eq!(info.request.kind, RequestKind::None);
    // A cancel that succeeds.
    let cancel = command(
        "F",
        &format!("1=desk-b|41=ord-2|11=cxl-2|55=BTCUSDT|54=1|{T0}"),
    );
    info.on_request(&cancel);
    let canceled = event(OrderEventKind::Canceled, &info);
    let fields = report(&canceled, &info);
    assert_eq!(
        (value(&fields, 11), value(&fields, 41)),
        (Some("cxl-2"), Some("ord-2"))
    );
    assert!(info.apply(&canceled), "canceled orders are done");
}

#[test]
fn cancel_reject_for_an_unknown_order() {
    // The gateway does not know the order: it answers from the request itself.
    let cancel = command("F", &format!("41=ghost|11=cxl-9|55=BTCUSDT|54=2|{T0}"));
    let info = OrderInfo::from_command(&cancel).unwrap();
    let rejected = OrderEvent {
        kind: OrderEventKind::CancelRejected.code(),
        side: Side::Sell.code(),
        reject_reason: RejectReason::UnknownOrder.code(),
        client_order_id: cl("cxl-9"),
        ..OrderEvent::default()
    };
    let fields = report(&rejected, &info);
    assert_eq!(
        (value(&fields, 37), value(&fields, 11), value(&fields, 41)),
        (Some("NONE"), Some("cxl-9"), Some("ghost"))
    );
    assert_eq!(
        (value(&fields, 39), value(&fields, 102)),
        (Some("8"), Some("1"))
    );
    assert_eq!(value(&fields, 58), Some("unknown_order"));
}

#[test]
fn bad_events_are_encode_errors() {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let info = limit_order();
    let mut enc = Encoder::new(256);
    let mut bad = event(OrderEventKind::Accepted, &info);
    bad.kind = 200;
    enc.begin(b"8");
    assert_eq!(
        app::encode_execution_report(&mut enc, &bad, &info, &STAMP, &ctx),
        Err(app::EncodeError::BadEvent("kind"))
    );
    let mut unknown = event(OrderEventKind::Accepted, &info);
    unknown.instrument = InstrumentId(77);
    assert_eq!(
        app::encode_execution_report(&mut enc, &unknown, &info, &STAMP, &ctx),
        Err(app::EncodeError::UnknownInstrument(InstrumentId(77)))
    );
}

#[test]
fn reject_reason_mapping_is_total_and_uses_fix_44_codes() {
    for &reason in RejectReason::ALL {
        let ord = app::ord_rej_reason(reason);
        assert!(ord <= 15 || ord == 99, "{reason:?} -> {ord}");
        let cxl = app::cxl_rej_reason(reason);
        assert!(cxl <= 6 || cxl == 99, "{reason:?} -> {cxl}");
    }
    let ord = [
        (RejectReason::UnknownInstrument, 1),
        (RejectReason::TradingHalted, 2),
        (RejectReason::MaxOrderQty, 3),
        (RejectReason::UnknownOrder, 5),
        (RejectReason::DuplicateClientOrderId, 6),
        (RejectReason::UnsupportedOrder, 11),
        (RejectReason::InvalidQuantity, 13),
        (RejectReason::UnknownAccount, 15),
        (RejectReason::InvalidPrice, 99),
        (RejectReason::PostOnlyWouldCross, 0),
    ];
    for (reason, code) in ord {
        assert_eq!(app::ord_rej_reason(reason), code, "{reason:?}");
    }
    assert_eq!(app::cxl_rej_reason(RejectReason::TooLateToCancel), 0);
    assert_eq!(app::cxl_rej_reason(RejectReason::UnknownOrder), 1);
    assert_eq!(app::cxl_rej_reason(RejectReason::DuplicateClientOrderId), 6);
}

/// Decodes `body`, expects a reject, encodes the answer and returns its MsgType and fields.
fn reject_answer(role: Role, msg_type: &str, body: &str) -> (Vec<u8>, Vec<(u32, String)>) {
    let bytes = message(msg_type, body);
    let mut parser = Parser::new();
    let msg = parser.parse(&bytes).unwrap();
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let reject = app::decode(&msg, &ctx, &scope(role)).unwrap_err();
    let answer_type = reject.msg_type(msg.msg_type()).to_vec();
    let fields = respond(&answer_type, |enc| {
        app::encode_app_reject(enc, &msg, &reject, &STAMP).unwrap();
    });
    (answer_type, fields)
}

#[test]
fn every_reject_is_answered_with_its_message() {
    let order = format!("1=desk-a|11=r-1|55=BTCUSDT|54=2|{T0}38=1|40=2|44=1.001|59=1|");
    let (t, f) = reject_answer(Role::Trader, "D", &order);
    assert_eq!(t, b"8");
    assert_eq!(
        tags(&f),
        [
            37, 11, 17, 150, 39, 103, 58, 1, 55, 54, 38, 40, 44, 59, 151, 14, 6, 60
        ]
    );
    assert_eq!(
        (
            value(&f, 11),
            value(&f, 17),
            value(&f, 150),
            value(&f, 39),
            value(&f, 103)
        ),
        (Some("r-1"), Some("r7"), Some("8"), Some("8"), Some("99"))
    );
    assert_eq!(
        value(&f, 44),
        Some("1.001"),
        "the desk's value, byte for byte"
    );

    let (t, f) = reject_answer(
        Role::Trader,
        "G",
        &format!("41=o|11=r-2|55=NOPE|54=1|{T0}38=1|40=1|"),
    );
    assert_eq!(t, b"9");
    assert_eq!(
        (
            value(&f, 37),
            value(&f, 11),
            value(&f, 41),
            value(&f, 39),
            value(&f, 434),
            value(&f, 102)
        ),
        (
            Some("NONE"),
            Some("r-2"),
            Some("o"),
            Some("8"),
            Some("2"),
            Some("99")
        )
    );

    let (t, f) = reject_answer(
        Role::Viewer,
        "D",
        &format!("11=v-1|55=BTCUSDT|54=1|{T0}38=1|40=1|"),
    );
    assert_eq!(t, b"j");
    assert_eq!(tags(&f), [45, 372, 379, 380, 58]);
    assert_eq!(
        (
            value(&f, 45),
            value(&f, 372),
            value(&f, 379),
            value(&f, 380)
        ),
        (Some("7"), Some("D"), Some("v-1"), Some("6"))
    );

    let (t, f) = reject_answer(Role::Trader, "D", "55=BTCUSDT|");
    assert_eq!(t, b"3");
    assert_eq!(
        (
            value(&f, 45),
            value(&f, 371),
            value(&f, 372),
            value(&f, 373)
        ),
        (Some("7"), Some("11"), Some("D"), Some("1"))
    );

    let (t, f) = reject_answer(
        Role::Viewer,
        "V",
        "262=md-9|263=0|264=1|267=1|269=2|146=1|55=BTCUSDT|",
    );
    assert_eq!(t, b"Y");
    assert_eq!((value(&f, 262), value(&f, 281)), (Some("md-9"), Some("8")));

    let (t, f) = reject_answer(Role::Trader, "AN", &format!("710=p-9|724=2|{T0}1=desk-a|"));
    assert_eq!(t, b"AO");
    assert_eq!(
        (
            value(&f, 721),
            value(&f, 710),
            value(&f, 727),
            value(&f, 728),
            value(&f, 729),
            value(&f, 1)
        ),
        (
            Some("7"),
            Some("p-9"),
            Some("0"),
            Some("4"),
            Some("2"),
            Some("desk-a")
        )
    );

    let (t, f) = reject_answer(Role::Admin, "U1", "20000=a-9|20001=K|1=ghost|");
    assert_eq!(t, b"U2");
    assert_eq!(tags(&f), [20_000, 20_001, 1, 20_002, 58]);
    assert_eq!(
        (value(&f, 20_002), value(&f, 58)),
        (Some("1"), Some("unknown account"))
    );
}

#[test]
fn market_data_responses() {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let bids = [(Price(6_500_000), Qty(150_000)), (Price(6_499_999), Qty(1))];
    let asks = [(Price(6_500_001), Qty(2_000))];
    let f = respond(b"W", |enc| {
        app::encode_md_snapshot(enc, Some(b"md-1"), BTC, &bids, &asks, &ctx).unwrap();
    });
    assert_eq!(
        f.iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join("|"),
        "262=md-1|55=BTCUSDT|207=binance|268=3|269=0|270=65000|271=1.5|269=0|270=64999.99|\
         271=0.00001|269=1|270=65000.01|271=0.02"
    );
    let changes = [
        LevelChange {
            action: LevelAction::New,
            side: Side::Buy,
            price: Price(100),
            qty: Qty(10),
        },
        LevelChange {
            action: LevelAction::Delete,
            side: Side::Sell,
            price: Price(200),
            qty: Qty(0),
        },
    ];
    let f = respond(b"X", |enc| {
        app::encode_md_incremental(enc, Some(b"md-1"), ETH, &changes, &ctx).unwrap();
    });
    assert_eq!(
        f.iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join("|"),
        "262=md-1|268=2|279=0|269=0|55=ETHUSDT|207=binance|270=1|271=0.001|279=2|269=1|\
         55=ETHUSDT|207=binance|270=2"
    );
    let f = respond(b"Y", |enc| {
        app::encode_md_reject(enc, b"md-1", MdRejectReason::UnknownSymbol, Some("no")).unwrap();
    });
    assert_eq!(tags(&f), [262, 281, 58]);
    let empty = respond(b"W", |enc| {
        app::encode_md_snapshot(enc, None, BTC, &[], &[], &ctx).unwrap();
    });
    assert_eq!(value(&empty, 268), Some("0"));
    let mut enc = Encoder::new(64);
    enc.begin(b"W");
    assert_eq!(
        app::encode_md_snapshot(&mut enc, Some(b"a\x01b"), BTC, &[], &[], &ctx),
        Err(app::EncodeError::BadValue { tag: 262 })
    );
}

#[test]
fn position_responses() {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let f = respond(b"AO", |enc| {
        app::encode_positions_ack(
            enc,
            &PositionsAck {
                report_id: 5,
                pos_req_id: b"p-1",
                result: PosReqResult::Valid,
                total_reports: 1,
                account: Some(AccountId(1)),
                text: None,
            },
            &ctx,
        )
        .unwrap();
    });
    assert_eq!(tags(&f), [721, 710, 727, 728, 729, 1, 581]);
    assert_eq!((value(&f, 728), value(&f, 729)), (Some("0"), Some("0")));
    let f = respond(b"AP", |enc| {
        app::encode_position_report(
            enc,
            &PositionReport {
                report_id: 6,
                pos_req_id: Some(b"p-1"),
                total_reports: 1,
                business_date: UnixNanos(1_704_110_400_000_000_000),
                account: AccountId(1),
                instrument: BTC,
                long_qty: Qty(250_000),
                short_qty: Qty(0),
                avg_price: Price(6_400_012),
                realized_pnl: 12_345,
                unrealized_pnl: -500,
            },
            &ctx,
        )
        .unwrap();
    });
    assert_eq!(
        f.iter()
            .map(|(t, v)| format!("{t}={v}"))
            .collect::<Vec<_>>()
            .join("|"),
        "721=6|710=p-1|727=1|728=0|715=20240101|1=desk-b|581=1|55=BTCUSDT|207=binance|\
         730=64000.12|731=2|734=64000.12|702=1|703=TOT|704=2.5|705=0|753=2|707=FMTM|708=123.45|\
         707=IMTM|708=-5"
    );
}

#[test]
fn admin_response() {
    let registry = registry();
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    let json = br#"{"halted":false,"accounts":[{"name":"desk-a","equity":"1000.5"}]}"#;
    let f = respond(b"U2", |enc| {
        app::encode_admin_response(
            enc,
            &AdminResponse {
                admin_req_id: b"adm-7",
                action: Some(AdminAction::RiskState),
                account: None,
                status: AdminStatus::Applied,
                text: None,
                risk_state: Some(json),
            },
            &ctx,
        )
        .unwrap();
    });
    assert_eq!(tags(&f), [20_000, 20_001, 20_002, 20_003]);
    assert_eq!(value(&f, 20_003).unwrap().as_bytes(), json);
    let mut enc = Encoder::new(64);
    enc.begin(b"U2");
    let bad = AdminResponse {
        admin_req_id: b"adm-8",
        action: None,
        account: Some(AccountId(0)),
        status: AdminStatus::Refused,
        text: Some("x"),
        risk_state: Some(b"{\"a\":\"\x01\"}"),
    };
    assert_eq!(
        app::encode_admin_response(&mut enc, &bad, &ctx),
        Err(app::EncodeError::BadValue { tag: 20_003 })
    );
}

#[test]
fn desk_context_checks_names() {
    let registry = registry();
    let bad = vec!["ok".to_owned(), "bad\x01name".to_owned()];
    assert!(matches!(
        DeskContext::new(&registry, &bad),
        Err(app::ContextError::BadName {
            what: "account",
            ..
        })
    ));
    let many: Vec<String> = (0..257).map(|i| format!("a{i}")).collect();
    assert!(matches!(
        DeskContext::new(&registry, &many),
        Err(app::ContextError::TooManyAccounts { count: 257, .. })
    ));
    let accounts = accounts();
    let ctx = DeskContext::new(&registry, &accounts).unwrap();
    assert_eq!(
        ctx.instrument(VenueId(1), b"BTC-USD").map(|i| i.id),
        Some(CB_BTC)
    );
    assert_eq!(ctx.instrument(VenueId(0), b"BTC-USD").map(|i| i.id), None);
    assert_eq!(
        ctx.instrument(VenueId(0), b"ETHUSDT").map(|i| i.id),
        Some(ETH)
    );
    assert_eq!(ctx.account_id(b"other"), Some(AccountId(2)));
    assert_eq!(ctx.account_name(AccountId(1)), Some("desk-b"));
    let mut set = AccountSet::EMPTY;
    assert!(set.insert(AccountId(255)));
    assert!(!set.insert(AccountId(256)));
    assert!(set.contains(AccountId(255)) && !set.contains(AccountId(256)));
}

#[test]
fn desk_orders_table_matches_a_map() {
    let mut table = DeskOrders::with_capacity(64);
    let mut model = std::collections::HashMap::new();
    let info = limit_order();
    // A deterministic mix of inserts, lookups and removals over colliding keys.
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for step in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let account = AccountId((state % 3) as u32);
        let id = cl(&format!("o{}", (state >> 8) % 90));
        match (state >> 20) % 3 {
            0 => {
                let mut entry = info;
                entry.account = account;
                entry.client_order_id = id;
                entry.qty = Qty(step);
                let expected_full = model.len() >= 64 && !model.contains_key(&(account, id));
                match table.insert(entry) {
                    Ok(previous) => {
                        assert!(!expected_full);
                        assert_eq!(previous, model.insert((account, id), entry));
                    }
                    Err(full) => {
                        assert!(expected_full);
                        assert_eq!(full.capacity, 64);
                    }
                }
            }
            1 => assert_eq!(table.remove(account, &id), model.remove(&(account, id))),
            _ => assert_eq!(table.get(account, &id), model.get(&(account, id))),
        }
        assert_eq!(table.len(), model.len());
    }
    for ((account, id), entry) in &model {
        assert_eq!(table.get(*account, id), Some(entry));
    }
    if let Some(((account, id), _)) = model.iter().next() {
        table.get_mut(*account, id).unwrap().qty = Qty(-1);
        assert_eq!(table.get(*account, id).unwrap().qty, Qty(-1));
        let slot = table.slot(*account, id).unwrap();
        table.at_mut(slot).qty = Qty(-2);
        assert_eq!(table.at(slot), table.get(*account, id).unwrap());
        assert_eq!(table.at(slot).qty, Qty(-2));
        // Other orders coming and going do not move it.
        if let Some((account, id)) = model.keys().nth(1) {
            table.remove(*account, id).unwrap();
        }
        let mut other = *table.at(slot);
        other.client_order_id = cl("another");
        table.insert(other).unwrap();
        table.remove(other.account, &other.client_order_id);
        assert_eq!(table.at(slot).client_order_id, *id);
    }
    assert!(table.slot(AccountId(7), &cl("nobody")).is_none());
}
