#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The Binance adapter against the local mock of the Binance API
//! (`aaiti_gateway::binance::mock`), which checks keys, signatures and timestamps like
//! Binance and pushes `executionReport`s on the WebSocket API user data stream.

use std::time::{Duration, Instant};

use aaiti_gateway::{
    binance::{
        AdapterEvent, BinanceAdapter, BinanceConfig, BinanceHandle, BinanceRequest, CancelOrder,
        FailedRequest, KnownOrder, NewOrder, OrderReport, ReportSource, StreamState,
        VenueOrderStatus,
        mock::{MockBinance, MockCommission},
    },
    paper::{Liquidity, VenueEventKind},
    secrets::{self, Credentials, SecretsKey},
};
use aaiti_model::{
    ClientOrderId, Instrument, InstrumentId, InstrumentRegistry, InstrumentSpec, OrderId,
    OrderType, Price, Qty, RejectReason, Side, TimeInForce,
};
use crossbeam_channel::Receiver;

/// Binance's published example key pair (documentation only, not a real account).
const KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
const WAIT: Duration = Duration::from_secs(5);
const BTC: InstrumentId = InstrumentId(0);
const ETH: InstrumentId = InstrumentId(1);

fn instruments() -> Vec<Instrument> {
    let spec = |symbol: &str, base: &str| InstrumentSpec {
        venue: "binance".into(),
        symbol: symbol.into(),
        base: base.into(),
        quote: "USDT".into(),
        price_scale: 2,
        qty_scale: 5,
        tick_size: "0.01".into(),
        lot_size: "0.00001".into(),
        min_notional: "5".into(),
    };
    InstrumentRegistry::from_specs(&[spec("BTCUSDT", "BTC"), spec("ETHUSDT", "ETH")])
        .unwrap()
        .instruments()
        .to_vec()
}

fn mock() -> MockBinance {
    let mock = MockBinance::start(KEY, SECRET).unwrap();
    mock.add_symbol("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "5")
        .unwrap();
    // Stricter filters than the engine's instrument, to provoke -1013.
    mock.add_symbol("ETHUSDT", "ETH", "USDT", "0.10", "0.0001", "5")
        .unwrap();
    mock.set_market_price("BTCUSDT", "50000.00").unwrap();
    mock.set_market_price("ETHUSDT", "3000.00").unwrap();
    mock
}

fn config(mock: &MockBinance) -> BinanceConfig {
    BinanceConfig {
        rest_url: mock.rest_url(),
        ws_api_url: mock.ws_api_url(),
        connect_timeout_ms: 1000,
        io_timeout_ms: 2000,
        reconnect_min_ms: 20,
        reconnect_max_ms: 200,
        ..BinanceConfig::default()
    }
}

struct Adapter {
    handle: BinanceHandle,
    events: Receiver<AdapterEvent>,
}

impl Adapter {
    fn start(config: BinanceConfig, credentials: Credentials) -> Self {
        let (handle, events) = BinanceAdapter::spawn(config, credentials, &instruments()).unwrap();
        Self { handle, events }
    }

    /// Started and subscribed to the user data stream.
    fn connected(mock: &MockBinance) -> Self {
        let adapter = Self::start(config(mock), Credentials::new(KEY, SECRET).unwrap());
        adapter.wait_stream(|s| *s == StreamState::Connected);
        adapter
    }

    fn next(&self) -> AdapterEvent {
        self.events
            .recv_timeout(WAIT)
            .expect("no event from the adapter")
    }

    fn wait_stream(&self, wanted: impl Fn(&StreamState) -> bool) -> StreamState {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.events.recv_timeout(Duration::from_millis(100)) {
                Ok(AdapterEvent::Stream(state)) if wanted(&state) => return state,
                Ok(AdapterEvent::Stream(_)) | Err(_) => {}
                Ok(other) => panic!("unexpected event while waiting for the stream: {other:?}"),
            }
        }
        panic!("stream state not reached");
    }

    /// The next order event (stream state changes skipped).
    fn order_event(&self) -> OrderReport {
        loop {
            match self.next() {
                AdapterEvent::Order(report) => return report,
                AdapterEvent::Stream(_) => {}
                other => panic!("expected an order event, got {other:?}"),
            }
        }
    }

    /// No order event within `quiet`.
    fn assert_quiet(&self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(AdapterEvent::Stream(_)) => {}
                Ok(other) => panic!("unexpected event {other:?}"),
                Err(_) => return,
            }
        }
    }

    fn submit(&self, request: BinanceRequest) {
        assert!(self.handle.submit(request));
    }
}

fn limit(id: u64, side: Side, price: i64, qty: i64) -> NewOrder {
    NewOrder {
        order_id: OrderId(id),
        client_order_id: ClientOrderId::new(format!("desk-{id}").as_bytes()).unwrap(),
        instrument: BTC,
        side,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        post_only: false,
        price: Price(price),
        stop_price: Price(0),
        qty: Qty(qty),
    }
}

fn cancel(order: &NewOrder) -> BinanceRequest {
    BinanceRequest::Cancel(CancelOrder {
        order_id: order.order_id,
        instrument: order.instrument,
        client_order_id: order.client_order_id,
    })
}

fn known(order: &NewOrder, cum: i64) -> KnownOrder {
    KnownOrder {
        order_id: order.order_id,
        client_order_id: order.client_order_id,
        instrument: order.instrument,
        order_type: order.order_type,
        tif: order.tif,
        qty: order.qty,
        cum: Qty(cum),
        accepted: true,
    }
}

fn expect_accepted(adapter: &Adapter, order: &NewOrder) -> OrderReport {
    let report = adapter.order_event();
    assert_eq!(report.event.order_id, order.order_id, "{report:?}");
    assert_eq!(report.event.kind, VenueEventKind::Accepted, "{report:?}");
    assert_eq!(report.client_order_id, order.client_order_id);
    assert_eq!(report.instrument, order.instrument);
    assert!(report.venue_order_id > 0);
    report
}

fn expect_rejected(adapter: &Adapter, order_id: u64, reason: RejectReason) -> OrderReport {
    let report = adapter.order_event();
    assert_eq!(report.event.order_id, OrderId(order_id), "{report:?}");
    assert_eq!(
        report.event.kind,
        VenueEventKind::Rejected { reason },
        "{report:?}"
    );
    report
}

/// (exec_id, price, qty, liquidity, fee, leaves, cum)
fn fill_of(report: &OrderReport) -> (u64, i64, i64, Liquidity, i64, i64, i64) {
    match report.event.kind {
        VenueEventKind::Fill {
            exec_id,
            price,
            qty,
            liquidity,
            fee,
            leaves,
            cum,
        } => (exec_id, price.0, qty.0, liquidity, fee, leaves.0, cum.0),
        other => panic!("expected a fill, got {other:?} in {report:?}"),
    }
}

#[test]
fn limit_order_accepted_then_filled_through_the_user_stream() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    // Buy 0.00200 BTC at 49000.12 (price scale 2, quantity scale 5).
    let order = limit(1, Side::Buy, 4_900_012, 200);
    adapter.submit(BinanceRequest::New(order));
    let accepted = expect_accepted(&adapter, &order);
    assert_eq!(accepted.source, ReportSource::Rest);
    // The mantissas went out as exact decimal text, signed, with our client order id.
    let post = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(
        post.params.starts_with(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00200\
             &price=49000.12&newClientOrderId=aaiti-1&newOrderRespType=FULL&recvWindow=5000\
             &timestamp="
        ),
        "{}",
        post.params
    );
    assert!(post.params.contains("&signature="));

    // Partial fill as maker: 0.0005 at 49000.12, 10 bp commission in USDT.
    let trade = mock.fill("aaiti-1", "0.0005", "49000.12", true).unwrap();
    let fill = adapter.order_event();
    assert_eq!(fill.source, ReportSource::UserStream);
    assert_eq!(fill.venue_order_id, accepted.venue_order_id);
    // fee = 0.0005 × 49000.12 × 0.001 = 0.02450006 USDT → 0.03 at the price scale (toward +∞)
    assert_eq!(
        fill_of(&fill),
        (trade, 4_900_012, 50, Liquidity::Maker, 3, 150, 50)
    );
    let commission = fill.commission.unwrap();
    assert_eq!(commission.asset.unwrap().as_str(), "USDT");
    assert_eq!(commission.amount, 2_450_006);

    // The rest as taker.
    let trade2 = mock.fill("aaiti-1", "0.0015", "49000.00", false).unwrap();
    let fill = adapter.order_event();
    // fee = 0.0015 × 49000 × 0.001 = 0.0735 → 0.08
    assert_eq!(
        fill_of(&fill),
        (trade2, 4_900_000, 150, Liquidity::Taker, 8, 0, 200)
    );
    assert_eq!(mock.order("aaiti-1").unwrap().status, "FILLED");
    // Nothing else: no duplicate from the stream's NEW, no extra final event.
    adapter.assert_quiet(Duration::from_millis(300));
    // A cancel now is too late.
    adapter.submit(cancel(&order));
    let refused = adapter.order_event();
    assert_eq!(
        refused.event.kind,
        VenueEventKind::CancelRejected {
            reason: RejectReason::TooLateToCancel
        }
    );
    adapter.handle.shutdown();
}

#[test]
fn market_order_fills_at_once_with_base_asset_commission() {
    let mock = mock();
    mock.set_commission(10, MockCommission::Base);
    let adapter = Adapter::connected(&mock);
    let order = NewOrder {
        order_type: OrderType::Market,
        tif: TimeInForce::Ioc,
        price: Price(0),
        ..limit(7, Side::Buy, 0, 100)
    };
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);
    let fill = adapter.order_event();
    assert_eq!(fill.source, ReportSource::Rest);
    let (exec_id, price, qty, liquidity, fee, leaves, cum) = fill_of(&fill);
    assert!(exec_id > 0);
    assert_eq!(
        (price, qty, liquidity, fee, leaves, cum),
        (5_000_000, 100, Liquidity::Taker, 0, 0, 100)
    );
    // 0.001 BTC × 10 bp = 0.000001 BTC, charged in BTC: not in the quote fee.
    let commission = fill.commission.unwrap();
    assert_eq!(commission.asset.unwrap().as_str(), "BTC");
    assert_eq!(commission.amount, 100);
    let post = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(
        post.params
            .starts_with("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.00100&")
    );
    // The stream's NEW and TRADE for the same order are not reported twice.
    adapter.assert_quiet(Duration::from_millis(300));

    // A market order finding no price expires unfilled: reported as NoLiquidity.
    let mock2 = MockBinance::start(KEY, SECRET).unwrap();
    mock2
        .add_symbol("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "0")
        .unwrap();
    let adapter2 = Adapter::connected(&mock2);
    adapter2.submit(BinanceRequest::New(NewOrder {
        order_id: OrderId(8),
        ..order
    }));
    expect_rejected(&adapter2, 8, RejectReason::NoLiquidity);
    // An IOC limit that does not cross is accepted, then expires.
    let ioc = NewOrder {
        tif: TimeInForce::Ioc,
        ..limit(9, Side::Buy, 4_000_000, 100)
    };
    adapter.submit(BinanceRequest::New(ioc));
    expect_accepted(&adapter, &ioc);
    assert_eq!(
        adapter.order_event().event.kind,
        VenueEventKind::Expired { leaves: Qty(100) }
    );
    adapter.handle.shutdown();
    adapter2.handle.shutdown();
}

#[test]
fn cancel_and_cancel_rejects() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    let order = limit(3, Side::Sell, 5_100_000, 300);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);
    adapter.submit(cancel(&order));
    let canceled = adapter.order_event();
    assert_eq!(
        canceled.event.kind,
        VenueEventKind::Canceled { leaves: Qty(300) }
    );
    assert_eq!(canceled.source, ReportSource::Rest);
    assert_eq!(mock.order("aaiti-3").unwrap().status, "CANCELED");
    let delete = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .unwrap();
    assert!(
        delete
            .params
            .starts_with("symbol=BTCUSDT&origClientOrderId=aaiti-3&")
    );
    // The stream's CANCELED is not reported again; a second cancel is too late.
    adapter.assert_quiet(Duration::from_millis(200));
    adapter.submit(cancel(&order));
    assert_eq!(
        adapter.order_event().event.kind,
        VenueEventKind::CancelRejected {
            reason: RejectReason::TooLateToCancel
        }
    );
    // Unknown order.
    adapter.submit(cancel(&limit(99, Side::Buy, 1, 1)));
    let unknown = adapter.order_event();
    assert_eq!(
        unknown.event.kind,
        VenueEventKind::CancelRejected {
            reason: RejectReason::UnknownOrder
        }
    );
    assert_eq!(unknown.source, ReportSource::Local);

    // Ended on the venue's side (UI cancel, expiry): reported from the stream.
    let ui = limit(5, Side::Buy, 4_900_000, 200);
    let expiring = limit(6, Side::Buy, 4_900_000, 200);
    for order in [ui, expiring] {
        adapter.submit(BinanceRequest::New(order));
        expect_accepted(&adapter, &order);
    }
    mock.fill("aaiti-5", "0.0005", "49000.00", true).unwrap();
    assert_eq!(fill_of(&adapter.order_event()).6, 50);
    mock.cancel_order("aaiti-5").unwrap();
    let canceled = adapter.order_event();
    assert_eq!(canceled.source, ReportSource::UserStream);
    assert_eq!(
        canceled.event.kind,
        VenueEventKind::Canceled { leaves: Qty(150) }
    );
    mock.expire_order("aaiti-6").unwrap();
    let expired = adapter.order_event();
    assert_eq!(expired.source, ReportSource::UserStream);
    assert_eq!(
        expired.event.kind,
        VenueEventKind::Expired { leaves: Qty(200) }
    );

    // Filled on the venue while the stream was away: Binance answers -2011, the adapter
    // reports CancelRejected(TooLateToCancel) with Binance's words, then the fill it missed.
    let order = limit(4, Side::Buy, 4_900_000, 200);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);
    mock.refuse_user_streams(true);
    mock.drop_user_streams();
    adapter.wait_stream(|s| matches!(s, StreamState::Disconnected { .. }));
    let trade = mock.fill("aaiti-4", "0.002", "49000.00", true).unwrap();
    adapter.submit(cancel(&order));
    let refused = adapter.order_event();
    assert_eq!(
        refused.event.kind,
        VenueEventKind::CancelRejected {
            reason: RejectReason::TooLateToCancel
        }
    );
    let error = refused.error.unwrap();
    assert_eq!((error.http_status, error.code), (400, -2011));
    assert_eq!(error.message, "Unknown order sent.");
    let fill = adapter.order_event();
    assert_eq!(
        fill_of(&fill),
        (trade, 4_900_000, 200, Liquidity::Maker, 10, 0, 200)
    );
    adapter.handle.shutdown();
}

#[test]
fn query_and_open_orders() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    let a = limit(11, Side::Buy, 4_800_000, 100);
    let b = NewOrder {
        instrument: ETH,
        ..limit(12, Side::Sell, 310_000, 1000)
    };
    for order in [a, b] {
        adapter.submit(BinanceRequest::New(order));
        expect_accepted(&adapter, &order);
    }
    mock.place_order("BTCUSDT", "manual-1", true, "40000.00", "0.01")
        .unwrap();

    adapter.submit(BinanceRequest::Query(a.order_id));
    let AdapterEvent::Status(status) = adapter.next() else {
        panic!("expected a status");
    };
    assert_eq!(status.order_id, a.order_id);
    assert_eq!(status.venue_client_id, "aaiti-11");
    assert_eq!(status.status, VenueOrderStatus::New);
    assert_eq!(
        (status.price, status.qty, status.cum),
        (Price(4_800_000), Qty(100), Qty(0))
    );
    assert_eq!(status.side, Some(Side::Buy));

    // A fill the stream has not delivered yet shows up in the query: reported first.
    mock.refuse_user_streams(true);
    mock.drop_user_streams();
    adapter.wait_stream(|s| matches!(s, StreamState::Disconnected { .. }));
    let trade = mock.fill("aaiti-11", "0.0004", "48000.00", true).unwrap();
    adapter.submit(BinanceRequest::Query(a.order_id));
    let fill = adapter.order_event();
    assert_eq!(fill_of(&fill).0, trade);
    assert_eq!(fill.source, ReportSource::Rest);
    let AdapterEvent::Status(status) = adapter.next() else {
        panic!("expected a status");
    };
    assert_eq!(status.status, VenueOrderStatus::PartiallyFilled);
    assert_eq!(status.cum, Qty(40));

    adapter.submit(BinanceRequest::OpenOrders(None));
    let AdapterEvent::OpenOrders { instrument, orders } = adapter.next() else {
        panic!("expected open orders");
    };
    assert_eq!(instrument, None);
    let mut ids: Vec<(u64, InstrumentId)> = orders
        .iter()
        .map(|o| (o.order_id.0, o.instrument))
        .collect();
    ids.sort();
    assert_eq!(ids, [(0, BTC), (11, BTC), (12, ETH)]);
    let manual = orders.iter().find(|o| o.order_id.0 == 0).unwrap();
    assert_eq!(manual.venue_client_id, "manual-1");
    assert_eq!(manual.qty, Qty(1000));

    adapter.submit(BinanceRequest::OpenOrders(Some(ETH)));
    let AdapterEvent::OpenOrders { orders, .. } = adapter.next() else {
        panic!("expected open orders");
    };
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].order_id, b.order_id);
    assert_eq!(orders[0].price, Price(310_000));

    adapter.submit(BinanceRequest::Query(OrderId(404)));
    assert!(matches!(
        adapter.next(),
        AdapterEvent::RequestFailed {
            request: FailedRequest::Query(OrderId(404)),
            ..
        }
    ));
    adapter.handle.shutdown();
}

#[test]
fn a_bad_secret_is_refused_cleanly() {
    let mock = mock();
    let adapter = Adapter::start(
        config(&mock),
        Credentials::new(KEY, "not-the-secret").unwrap(),
    );
    let StreamState::Refused(error) = adapter.wait_stream(|s| matches!(s, StreamState::Refused(_)))
    else {
        unreachable!()
    };
    assert_eq!((error.http_status, error.code), (400, -1022));
    let order = limit(21, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(order));
    let rejected = expect_rejected(&adapter, 21, RejectReason::NotAuthorized);
    assert_eq!(rejected.source, ReportSource::Rest);
    let error = rejected.error.unwrap();
    assert_eq!((error.http_status, error.code), (400, -1022));
    assert_eq!(error.message, "Signature for this request is not valid.");
    assert_eq!(mock.subscriptions(), 0);
    adapter.handle.shutdown();

    // A wrong API key: -2015.
    let adapter = Adapter::start(
        config(&mock),
        Credentials::new("someone-else", SECRET).unwrap(),
    );
    adapter.submit(BinanceRequest::New(limit(22, Side::Buy, 4_900_000, 100)));
    let rejected = expect_rejected(&adapter, 22, RejectReason::NotAuthorized);
    assert_eq!(rejected.error.unwrap().code, -2015);
    adapter.handle.shutdown();
}

#[test]
fn venue_refusals_map_to_reject_reasons() {
    let mock = mock();
    mock.set_balance("USDT", "10").unwrap();
    let adapter = Adapter::connected(&mock);
    // 0.001 BTC at 49000 needs 49 USDT.
    adapter.submit(BinanceRequest::New(limit(31, Side::Buy, 4_900_000, 100)));
    let rejected = expect_rejected(&adapter, 31, RejectReason::InsufficientBalance);
    let error = rejected.error.unwrap();
    assert_eq!((error.http_status, error.code), (400, -2010));
    assert_eq!(
        error.message,
        "Account has insufficient balance for requested action."
    );
    // ETHUSDT's venue filters are tick 0.10, step 0.0001, notional 5.
    let eth = |id, price, qty| NewOrder {
        instrument: ETH,
        ..limit(id, Side::Sell, price, qty)
    };
    adapter.submit(BinanceRequest::New(eth(32, 300_005, 1000)));
    let rejected = expect_rejected(&adapter, 32, RejectReason::InvalidPrice);
    let error = rejected.error.unwrap();
    assert_eq!(error.code, -1013);
    assert_eq!(error.message, "Filter failure: PRICE_FILTER");
    adapter.submit(BinanceRequest::New(eth(33, 300_000, 1005)));
    expect_rejected(&adapter, 33, RejectReason::InvalidQuantity);
    adapter.submit(BinanceRequest::New(eth(34, 300_000, 10)));
    expect_rejected(&adapter, 34, RejectReason::BelowMinNotional);
    // Post-only that would take: LIMIT_MAKER refused by the venue.
    adapter.submit(BinanceRequest::New(NewOrder {
        post_only: true,
        ..limit(35, Side::Sell, 4_900_000, 100)
    }));
    let rejected = expect_rejected(&adapter, 35, RejectReason::PostOnlyWouldCross);
    assert_eq!(rejected.error.unwrap().code, -2010);
    // Refused locally, nothing sent: DAY does not exist on Binance spot.
    let posts = mock
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    adapter.submit(BinanceRequest::New(NewOrder {
        tif: TimeInForce::Day,
        ..limit(36, Side::Buy, 4_900_000, 100)
    }));
    let rejected = expect_rejected(&adapter, 36, RejectReason::UnsupportedOrder);
    assert_eq!(rejected.source, ReportSource::Local);
    adapter.submit(BinanceRequest::New(NewOrder {
        instrument: InstrumentId(9),
        ..limit(37, Side::Buy, 4_900_000, 100)
    }));
    expect_rejected(&adapter, 37, RejectReason::UnknownInstrument);
    adapter.submit(BinanceRequest::New(limit(38, Side::Buy, 4_900_000, 0)));
    expect_rejected(&adapter, 38, RejectReason::InvalidQuantity);
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        posts
    );
    // Reusing an order id is refused.
    adapter.submit(BinanceRequest::New(limit(31, Side::Buy, 100, 100)));
    expect_rejected(&adapter, 31, RejectReason::DuplicateClientOrderId);
    adapter.handle.shutdown();
}

#[test]
fn rate_limits_back_off_until_retry_after_and_refuse_locally() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    mock.rate_limit(429, 1);
    let limited_at = Instant::now();
    adapter.submit(BinanceRequest::New(limit(41, Side::Buy, 4_900_000, 100)));
    let rejected = expect_rejected(&adapter, 41, RejectReason::RateLimited);
    assert_eq!(rejected.source, ReportSource::Rest);
    let error = rejected.error.unwrap();
    assert_eq!((error.http_status, error.code), (429, -1003));
    // During the backoff: refused at once, not sent, not queued.
    for id in 42..45 {
        adapter.submit(BinanceRequest::New(limit(id, Side::Buy, 4_900_000, 100)));
        let rejected = expect_rejected(&adapter, id, RejectReason::RateLimited);
        assert_eq!(rejected.source, ReportSource::Local);
        assert!(rejected.error.unwrap().message.contains("backoff"));
    }
    let sent: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].rate_limited);
    // After Retry-After (1 s): trading resumes.
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(limited_at.elapsed()));
    let order = limit(45, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);

    // Used weight near the budget: the next request is refused before it is sent. Stay
    // clear of a minute boundary, where the weight window resets.
    let into_minute = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000) as u64;
    if into_minute > 57_000 {
        std::thread::sleep(Duration::from_millis(60_500 - into_minute));
    }
    mock.set_used_weight(4999);
    let order = limit(46, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order); // answered with X-MBX-USED-WEIGHT-1M: 5000
    let posts = mock
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    adapter.submit(BinanceRequest::New(limit(47, Side::Buy, 4_900_000, 100)));
    let rejected = expect_rejected(&adapter, 47, RejectReason::RateLimited);
    assert_eq!(rejected.source, ReportSource::Local);
    assert!(rejected.error.unwrap().message.contains("max_weight_1m"));
    assert_eq!(
        mock.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count(),
        posts
    );
    adapter.handle.shutdown();
}

#[test]
fn a_full_queue_rejects_at_once() {
    let mock = mock();
    let adapter = Adapter::start(
        BinanceConfig {
            request_queue: 1,
            ..config(&mock)
        },
        Credentials::new(KEY, SECRET).unwrap(),
    );
    adapter.wait_stream(|s| *s == StreamState::Connected);
    mock.set_response_delay(Duration::from_millis(400));
    adapter.submit(BinanceRequest::New(limit(51, Side::Buy, 4_900_000, 100)));
    std::thread::sleep(Duration::from_millis(100)); // the adapter thread is now waiting on it
    adapter.submit(BinanceRequest::New(limit(52, Side::Buy, 4_900_000, 100)));
    let started = Instant::now();
    assert!(
        !adapter
            .handle
            .submit(BinanceRequest::New(limit(53, Side::Buy, 4_900_000, 100)))
    );
    assert!(started.elapsed() < Duration::from_millis(50));
    let rejected = expect_rejected(&adapter, 53, RejectReason::RateLimited);
    assert_eq!(rejected.source, ReportSource::Local);
    assert_eq!(adapter.order_event().event.order_id, OrderId(51));
    assert_eq!(adapter.order_event().event.order_id, OrderId(52));
    mock.set_response_delay(Duration::ZERO);
    adapter.handle.shutdown();
}

#[test]
fn a_clock_outside_the_recv_window_is_resynced_once() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    // The server clock jumps 30 s ahead: the adapter's timestamps fall outside the 5 s
    // recvWindow (-1021), it resyncs with GET /api/v3/time and sends again.
    mock.set_clock_skew_ms(30_000);
    let order = limit(61, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);
    let paths: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path != "/api/v3/openOrders")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let tail = &paths[paths.len() - 3..];
    assert_eq!(
        tail,
        [
            "POST /api/v3/order",
            "GET /api/v3/time",
            "POST /api/v3/order"
        ]
    );
    adapter.handle.shutdown();
}

#[test]
fn the_stream_reconnects_and_missed_fills_are_recovered() {
    let mock = mock();
    let adapter = Adapter::connected(&mock);
    let order = limit(71, Side::Buy, 4_900_000, 300);
    adapter.submit(BinanceRequest::New(order));
    expect_accepted(&adapter, &order);
    let first = mock.fill("aaiti-71", "0.001", "49000.00", true).unwrap();
    assert_eq!(fill_of(&adapter.order_event()).0, first);

    mock.refuse_user_streams(true);
    mock.drop_user_streams();
    adapter.wait_stream(|s| matches!(s, StreamState::Disconnected { .. }));
    // Two fills while the stream is down: nobody hears them.
    let second = mock.fill("aaiti-71", "0.0005", "48999.00", true).unwrap();
    let third = mock.fill("aaiti-71", "0.0015", "48998.00", false).unwrap();
    adapter.assert_quiet(Duration::from_millis(200));
    mock.refuse_user_streams(false);
    adapter.wait_stream(|s| *s == StreamState::Connected);
    // Reconciliation after the reconnect reports them, in trade order.
    let fill = adapter.order_event();
    assert_eq!(fill.source, ReportSource::Reconcile);
    assert_eq!(
        fill_of(&fill),
        (second, 4_899_900, 50, Liquidity::Maker, 3, 150, 150)
    );
    let fill = adapter.order_event();
    assert_eq!(
        fill_of(&fill),
        (third, 4_899_800, 150, Liquidity::Taker, 8, 0, 300)
    );
    adapter.assert_quiet(Duration::from_millis(200));
    adapter.handle.shutdown();
}

#[test]
fn reconciliation_after_a_restart() {
    let mock = mock();
    let orders: Vec<NewOrder> = (1..=4)
        .map(|i| limit(80 + i, Side::Buy, 4_800_000 + i as i64, 200))
        .collect();
    {
        let adapter = Adapter::connected(&mock);
        for order in &orders {
            adapter.submit(BinanceRequest::New(*order));
            expect_accepted(&adapter, order);
        }
        // Seen before the restart: 0.0005 of order 81.
        mock.fill("aaiti-81", "0.0005", "48000.01", true).unwrap();
        assert_eq!(fill_of(&adapter.order_event()).6, 50);
        adapter.handle.shutdown();
    }
    // While down: 81 fills completely, 82 is canceled, 83 fills partly, 84 stays; someone
    // places an order by hand.
    let fill_81 = mock.fill("aaiti-81", "0.0015", "48000.01", true).unwrap();
    mock.cancel_order("aaiti-82").unwrap();
    let fill_83 = mock.fill("aaiti-83", "0.0005", "48000.03", true).unwrap();
    mock.place_order("BTCUSDT", "web_123", false, "60000.00", "0.5")
        .unwrap();
    // 85 was journaled but never reached Binance.
    let lost = limit(85, Side::Sell, 5_500_000, 100);

    let adapter = Adapter::connected(&mock);
    let mut known: Vec<KnownOrder> = orders.iter().map(|o| known(o, 0)).collect();
    known[0].cum = Qty(50);
    known.push(self::known(&lost, 0));
    let summary = adapter.handle.reconcile(known, WAIT).unwrap();
    assert!(summary.complete);
    assert_eq!(summary.closed, [OrderId(81), OrderId(82)]);
    assert_eq!(summary.open, [OrderId(83), OrderId(84)]);
    assert_eq!(summary.missing, [OrderId(85)]);
    assert!(summary.failed.is_empty());
    assert_eq!(summary.unknown.len(), 1);
    assert_eq!(summary.unknown[0].venue_client_id, "web_123");
    assert_eq!(summary.unknown[0].order_id, OrderId(0));
    assert_eq!(summary.unknown[0].side, Some(Side::Sell));
    assert_eq!(summary.events, 4);

    // Only what happened while down: the earlier 0.0005 of 81 is not reported again.
    let event = adapter.order_event();
    assert_eq!(event.event.order_id, OrderId(81));
    assert_eq!(event.source, ReportSource::Reconcile);
    assert_eq!(
        fill_of(&event),
        (fill_81, 4_800_001, 150, Liquidity::Maker, 8, 0, 200)
    );
    let event = adapter.order_event();
    assert_eq!(event.event.order_id, OrderId(82));
    assert_eq!(
        event.event.kind,
        VenueEventKind::Canceled { leaves: Qty(200) }
    );
    let event = adapter.order_event();
    assert_eq!(event.event.order_id, OrderId(83));
    assert_eq!(
        fill_of(&event),
        (fill_83, 4_800_003, 50, Liquidity::Maker, 3, 150, 50)
    );
    let event = adapter.order_event();
    assert_eq!(event.event.order_id, OrderId(85));
    assert_eq!(
        event.event.kind,
        VenueEventKind::Rejected {
            reason: RejectReason::UnknownOrder
        }
    );
    assert_eq!(event.error.unwrap().code, -2013);
    adapter.assert_quiet(Duration::from_millis(200));

    // The reconciled orders are tracked again: live events and cancels work.
    let live = mock.fill("aaiti-84", "0.002", "48000.04", true).unwrap();
    let event = adapter.order_event();
    assert_eq!(event.source, ReportSource::UserStream);
    assert_eq!(fill_of(&event).0, live);
    adapter.submit(cancel(&orders[2]));
    assert_eq!(
        adapter.order_event().event.kind,
        VenueEventKind::Canceled { leaves: Qty(150) }
    );
    adapter.handle.shutdown();
}

#[test]
fn credentials_from_an_encrypted_secrets_file_drive_the_adapter() {
    let dir = std::env::temp_dir().join(format!("aaiti-binance-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("secrets.key");
    std::fs::write(&key_path, "cd".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let key = SecretsKey::from_file(&key_path).unwrap();
    let path = dir.join("binance.sec");
    secrets::save(&path, &key, &Credentials::new(KEY, SECRET).unwrap()).unwrap();

    let credentials = secrets::load(&path, &SecretsKey::from_file(&key_path).unwrap()).unwrap();
    assert!(!format!("{credentials:?}").contains(SECRET));
    let mock = mock();
    let adapter = Adapter::start(config(&mock), credentials);
    adapter.wait_stream(|s| *s == StreamState::Connected);
    let order = limit(91, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(order));
    // Accepted: the mock verified the HMAC made with the decrypted secret.
    expect_accepted(&adapter, &order);
    adapter.handle.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lost_requests_are_resolved_by_querying() {
    let mock = mock();
    let adapter = Adapter::start(
        BinanceConfig {
            io_timeout_ms: 300,
            recv_window_ms: 1000,
            ..config(&mock)
        },
        Credentials::new(KEY, SECRET).unwrap(),
    );
    adapter.wait_stream(|s| *s == StreamState::Connected);

    // Executed, but the answer is late: the adapter times out, queries, and reports what
    // Binance did (Accepted), not a reject. (The stream is kept away so that only the
    // query can tell.)
    mock.refuse_user_streams(true);
    mock.drop_user_streams();
    adapter.wait_stream(|s| matches!(s, StreamState::Disconnected { .. }));
    mock.set_response_delay(Duration::from_millis(600));
    let late = limit(101, Side::Buy, 4_900_000, 100);
    adapter.submit(BinanceRequest::New(late));
    std::thread::sleep(Duration::from_millis(400));
    mock.set_response_delay(Duration::ZERO);
    let accepted = expect_accepted(&adapter, &late);
    assert_eq!(accepted.source, ReportSource::Rest);
    assert_eq!(mock.order("aaiti-101").unwrap().status, "NEW");
    adapter.assert_quiet(Duration::from_millis(200));

    // Lost inside the venue: "Order does not exist" is only believed once the request's
    // recvWindow has passed (it can no longer execute); then the order is rejected.
    mock.swallow_next("POST", "/api/v3/order");
    let sent = Instant::now();
    adapter.submit(BinanceRequest::New(limit(102, Side::Buy, 4_900_000, 100)));
    let rejected = expect_rejected(&adapter, 102, RejectReason::VenueReject);
    assert!(sent.elapsed() >= Duration::from_millis(2000));
    assert_eq!(rejected.error.unwrap().code, -2013);
    assert!(mock.order("aaiti-102").is_none());

    // A lost cancel: the order is still open, so the cancel is refused.
    mock.swallow_next("DELETE", "/api/v3/order");
    adapter.submit(cancel(&late));
    let refused = adapter.order_event();
    assert_eq!(
        refused.event.kind,
        VenueEventKind::CancelRejected {
            reason: RejectReason::VenueReject
        }
    );
    assert_eq!(mock.order("aaiti-101").unwrap().status, "NEW");
    // Sent again, it goes through.
    adapter.submit(cancel(&late));
    assert_eq!(
        adapter.order_event().event.kind,
        VenueEventKind::Canceled { leaves: Qty(100) }
    );
    adapter.handle.shutdown();
}
