//! Unit tests of the paper venue's behaviour, one scenario each.

use aaiti_model::{
    AccountId, BookAction, BookDelta, InstrumentId, OrderId, OrderType, Price, Qty, RejectReason,
    Scale, Side, TimeInForce, Trade, UnixNanos,
};

use super::*;

const I: InstrumentId = InstrumentId(0);

fn config() -> PaperConfig {
    PaperConfig {
        latency_us: 0,
        maker_fee_bp: FeeBp::ZERO,
        taker_fee_bp: FeeBp::ZERO,
        ..PaperConfig::default()
    }
}

fn order(id: u64, side: Side, order_type: OrderType, price: i64, qty: i64) -> PaperOrder {
    PaperOrder {
        order_id: OrderId(id),
        account: AccountId(1),
        instrument: I,
        side,
        order_type,
        price: Price(price),
        qty: Qty(qty),
        tif: TimeInForce::Gtc,
        post_only: false,
        expire_at: UnixNanos::ZERO,
    }
}

fn limit(id: u64, side: Side, price: i64, qty: i64) -> PaperOrder {
    order(id, side, OrderType::Limit, price, qty)
}

fn market(id: u64, side: Side, qty: i64) -> PaperOrder {
    PaperOrder {
        tif: TimeInForce::Ioc,
        ..order(id, side, OrderType::Market, 0, qty)
    }
}

/// A venue with one instrument (quantity scale 0) and its book.
struct Sim {
    venue: PaperVenue,
    books: Vec<VecBook>,
    now: u64,
}

impl Sim {
    fn new(config: PaperConfig) -> Self {
        let mut venue = PaperVenue::new(config).unwrap();
        venue.add_instrument(I, Scale::new(0).unwrap()).unwrap();
        Self {
            venue,
            books: vec![VecBook::new()],
            now: 1_000,
        }
    }

    fn tick(&mut self) -> UnixNanos {
        self.now += 1;
        UnixNanos(self.now)
    }

    /// Sets a level in the book and tells the venue.
    fn level(&mut self, side: Side, price: i64, qty: i64) {
        let now = self.tick();
        self.venue.on_time(now, &self.books[..]);
        self.books[0].set(side, Price(price), Qty(qty));
        self.venue
            .on_book_delta(I, side, Price(price), Qty(qty), now, &self.books[..]);
    }

    fn submit(&mut self, order: PaperOrder) {
        let now = self.tick();
        self.venue.submit(order, now, &self.books[..]);
    }

    fn cancel(&mut self, id: u64) {
        let now = self.tick();
        self.venue.cancel(OrderId(id), now, &self.books[..]);
    }

    fn replace(&mut self, id: u64, price: i64, qty: i64) {
        let now = self.tick();
        self.venue
            .replace(OrderId(id), Price(price), Qty(qty), now, &self.books[..]);
    }

    fn trade(&mut self, price: i64, qty: i64, aggressor: Option<Side>) {
        let now = self.tick();
        self.venue
            .on_trade(I, Price(price), Qty(qty), aggressor, now, &self.books[..]);
    }

    fn events(&mut self) -> Vec<VenueEvent> {
        let mut out = Vec::new();
        self.venue.drain(|e| out.push(e));
        out
    }

    fn kinds(&mut self) -> Vec<(u64, VenueEventKind)> {
        self.events()
            .into_iter()
            .map(|e| (e.order_id.0, e.kind))
            .collect()
    }

    /// (price, qty, liquidity, leaves) of every fill drained.
    fn fills(&mut self) -> Vec<(i64, i64, Liquidity, i64)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                VenueEventKind::Fill {
                    price,
                    qty,
                    liquidity,
                    leaves,
                    ..
                } => Some((price.0, qty.0, liquidity, leaves.0)),
                _ => None,
            })
            .collect()
    }

    fn ahead(&self, id: u64) -> i64 {
        self.venue.order(OrderId(id)).unwrap().queue_ahead.0
    }
}

fn rejected(reason: RejectReason) -> VenueEventKind {
    VenueEventKind::Rejected { reason }
}

#[test]
fn market_order_walks_three_levels() {
    let mut sim = Sim::new(PaperConfig {
        taker_fee_bp: FeeBp::from_bp(10).unwrap(),
        ..config()
    });
    sim.level(Side::Sell, 10_000, 5);
    sim.level(Side::Sell, 10_100, 5);
    sim.level(Side::Sell, 10_200, 5);
    sim.level(Side::Sell, 10_300, 5);
    sim.submit(market(1, Side::Buy, 12));
    let events = sim.kinds();
    assert_eq!(events[0], (1, VenueEventKind::Accepted));
    let fills: Vec<_> = events[1..]
        .iter()
        .map(|(_, kind)| match *kind {
            VenueEventKind::Fill {
                exec_id,
                price,
                qty,
                liquidity,
                fee,
                leaves,
                cum,
            } => (exec_id, price.0, qty.0, liquidity, fee, leaves.0, cum.0),
            other => panic!("{other:?}"),
        })
        .collect();
    // One fill per level at the level's price; fee = 10 bp of each fill's notional.
    assert_eq!(
        fills,
        vec![
            (1, 10_000, 5, Liquidity::Taker, 50, 7, 5),
            (2, 10_100, 5, Liquidity::Taker, 51, 2, 10), // 50.5 rounds up
            (3, 10_200, 2, Liquidity::Taker, 21, 0, 12), // 20.4 rounds up
        ]
    );
    assert_eq!(sim.venue.open_orders(), 0);

    // A market sell finds no bids at all.
    sim.submit(market(2, Side::Sell, 1));
    assert_eq!(sim.kinds(), vec![(2, rejected(RejectReason::NoLiquidity))]);
}

#[test]
fn two_orders_do_not_take_the_same_quantity() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Sell, 101, 5);
    sim.submit(market(1, Side::Buy, 3));
    assert_eq!(sim.fills(), vec![(100, 3, Liquidity::Taker, 0)]);
    sim.submit(market(2, Side::Buy, 4));
    assert_eq!(
        sim.fills(),
        vec![(100, 2, Liquidity::Taker, 2), (101, 2, Liquidity::Taker, 0)]
    );
    // The market removes 1 of level 100 (the front, i.e. what we took): still nothing left.
    sim.level(Side::Sell, 100, 4);
    sim.submit(limit(3, Side::Buy, 100, 1));
    let events = sim.kinds();
    assert_eq!(
        events,
        vec![(3, VenueEventKind::Accepted)],
        "rests, no fill"
    );
    sim.cancel(3);
    sim.events();
    // New quantity joining the level is available.
    sim.level(Side::Sell, 100, 6);
    sim.submit(market(4, Side::Buy, 5));
    assert_eq!(
        sim.fills(),
        vec![(100, 2, Liquidity::Taker, 3), (101, 3, Liquidity::Taker, 0)]
    );
    // Once the market has removed the whole level and it reappears, it is fresh.
    sim.level(Side::Sell, 100, 0);
    sim.level(Side::Sell, 100, 2);
    sim.submit(market(5, Side::Buy, 2));
    assert_eq!(sim.fills(), vec![(100, 2, Liquidity::Taker, 0)]);
}

#[test]
fn resting_limit_fills_on_a_trade_through_its_price() {
    let mut sim = Sim::new(PaperConfig {
        maker_fee_bp: FeeBp::from_bp(2).unwrap(),
        ..config()
    });
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 98, 7);
    sim.submit(limit(1, Side::Buy, 99, 3));
    assert_eq!(sim.kinds(), vec![(1, VenueEventKind::Accepted)]);
    assert_eq!(sim.ahead(1), 0, "a new level: nothing ahead");
    // A sell prints at 98, below our 99: we would have been hit first, at our price.
    sim.trade(98, 2, Some(Side::Sell));
    let events = sim.events();
    let VenueEventKind::Fill {
        price,
        qty,
        liquidity,
        fee,
        leaves,
        ..
    } = events[0].kind
    else {
        panic!("{events:?}")
    };
    assert_eq!(
        (price, qty, liquidity, leaves),
        (Price(99), Qty(2), Liquidity::Maker, Qty(1))
    );
    assert_eq!(fee, 1, "2 bp of 198 = 0.0396, rounded up");
    // A trade above our price does nothing; a big one through fills the rest only.
    sim.trade(100, 9, None);
    assert!(sim.events().is_empty());
    sim.trade(97, 9, Some(Side::Sell));
    assert_eq!(sim.fills(), vec![(99, 1, Liquidity::Maker, 0)]);
    assert_eq!(sim.venue.open_orders(), 0);
}

#[test]
fn trade_through_shares_the_trade_in_priority_or_fills_fully() {
    for (mode, expected) in [
        (
            TradeThrough::TradeQty,
            vec![(99, 3, Liquidity::Maker, 0), (98, 1, Liquidity::Maker, 2)],
        ),
        (
            TradeThrough::Full,
            vec![(99, 3, Liquidity::Maker, 0), (98, 3, Liquidity::Maker, 0)],
        ),
    ] {
        let mut sim = Sim::new(PaperConfig {
            trade_through: mode,
            ..config()
        });
        sim.level(Side::Sell, 100, 5);
        sim.submit(limit(1, Side::Buy, 98, 3));
        sim.submit(limit(2, Side::Buy, 99, 3));
        sim.events();
        sim.trade(97, 4, Some(Side::Sell));
        assert_eq!(sim.fills(), expected, "{mode:?}");
    }
}

#[test]
fn trade_at_the_price_consumes_the_queue_first() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 99, 5);
    sim.submit(limit(1, Side::Buy, 99, 3));
    sim.submit(limit(2, Side::Buy, 99, 3));
    sim.events();
    assert_eq!((sim.ahead(1), sim.ahead(2)), (5, 5));
    // A buy-aggressor trade at 99 hit asks, not our bids.
    sim.trade(99, 4, Some(Side::Buy));
    assert!(sim.events().is_empty());
    assert_eq!(sim.ahead(1), 5);
    sim.trade(99, 4, Some(Side::Sell));
    assert!(sim.events().is_empty());
    assert_eq!(sim.ahead(1), 1);
    // 7 more: 1 ahead, then order 1 takes 3, then order 2 the remaining 3.
    sim.trade(99, 7, Some(Side::Sell));
    assert_eq!(
        sim.fills(),
        vec![(99, 3, Liquidity::Maker, 0), (99, 3, Liquidity::Maker, 0)]
    );
    sim.submit(limit(3, Side::Buy, 99, 3));
    sim.submit(limit(4, Side::Buy, 99, 3));
    sim.events();
    // Both start behind the 5 displayed (our own earlier order is ahead of order 4 too).
    sim.trade(99, 9, None);
    assert_eq!(
        sim.fills(),
        vec![(99, 3, Liquidity::Maker, 0), (99, 1, Liquidity::Maker, 2)]
    );
}

#[test]
fn queue_advances_when_the_level_shrinks() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 99, 10);
    sim.submit(limit(1, Side::Buy, 99, 1));
    sim.events();
    assert_eq!(sim.ahead(1), 10);
    sim.level(Side::Buy, 99, 20); // 10 more join behind us
    assert_eq!(sim.ahead(1), 10);
    sim.level(Side::Buy, 99, 16); // 4 cancelled out of 20, half of them ahead of us
    assert_eq!(sim.ahead(1), 8);
    sim.trade(99, 2, Some(Side::Sell)); // 2 traded from the front
    assert_eq!(sim.ahead(1), 6);
    sim.level(Side::Buy, 99, 10); // 6 fewer: 2 traded, 4 cancelled of 14, 6/14 ahead
    assert_eq!(sim.ahead(1), 5); // 6 - floor(4 * 6 / 14) = 6 - 1
    sim.level(Side::Buy, 99, 3); // never more ahead than displayed
    assert_eq!(sim.ahead(1), 2);
    sim.level(Side::Buy, 99, 0);
    assert_eq!(sim.ahead(1), 0);
    sim.trade(99, 1, Some(Side::Sell));
    assert_eq!(sim.fills(), vec![(99, 1, Liquidity::Maker, 0)]);

    let mut sim = Sim::new(PaperConfig {
        queue_model: QueueModel::Optimistic,
        ..config()
    });
    sim.level(Side::Buy, 99, 10);
    sim.submit(limit(1, Side::Buy, 99, 1));
    sim.level(Side::Buy, 99, 12);
    sim.level(Side::Buy, 99, 8);
    assert_eq!(sim.ahead(1), 6);
}

#[test]
fn fill_or_kill() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Sell, 101, 5);
    sim.level(Side::Sell, 102, 5);
    let fok = |id, price, qty| PaperOrder {
        tif: TimeInForce::Fok,
        ..limit(id, Side::Buy, price, qty)
    };
    sim.submit(fok(1, 101, 11));
    assert_eq!(
        sim.kinds(),
        vec![(1, rejected(RejectReason::FillOrKillUnfilled))]
    );
    sim.submit(fok(2, 101, 10));
    assert_eq!(
        sim.fills(),
        vec![(100, 5, Liquidity::Taker, 5), (101, 5, Liquidity::Taker, 0)]
    );
    sim.submit(PaperOrder {
        tif: TimeInForce::Fok,
        ..market(3, Side::Buy, 6)
    });
    assert_eq!(
        sim.kinds(),
        vec![(3, rejected(RejectReason::FillOrKillUnfilled))]
    );
}

#[test]
fn ioc_remainder_expires() {
    let mut sim = Sim::new(config());
    sim.level(Side::Buy, 100, 5);
    sim.level(Side::Buy, 99, 5);
    let ioc = PaperOrder {
        tif: TimeInForce::Ioc,
        ..limit(1, Side::Sell, 100, 8)
    };
    sim.submit(ioc);
    let events = sim.kinds();
    assert_eq!(events.len(), 3);
    assert!(matches!(
        events[1].1,
        VenueEventKind::Fill {
            qty: Qty(5),
            price: Price(100),
            ..
        }
    ));
    assert_eq!(events[2], (1, VenueEventKind::Expired { leaves: Qty(3) }));
    // Market orders never rest, whatever their time in force.
    sim.submit(PaperOrder {
        tif: TimeInForce::Gtc,
        ..market(2, Side::Sell, 8)
    });
    let events = sim.kinds();
    assert_eq!(
        events.last(),
        Some(&(2, VenueEventKind::Expired { leaves: Qty(3) }))
    );
    assert_eq!(sim.venue.open_orders(), 0);
}

#[test]
fn post_only_that_would_cross_is_rejected() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 98, 5);
    let post = |id, price| PaperOrder {
        post_only: true,
        ..limit(id, Side::Buy, price, 1)
    };
    sim.submit(post(1, 100));
    assert_eq!(
        sim.kinds(),
        vec![(1, rejected(RejectReason::PostOnlyWouldCross))]
    );
    sim.submit(post(2, 99));
    assert_eq!(sim.kinds(), vec![(2, VenueEventKind::Accepted)]);
    sim.replace(2, 101, 1);
    assert_eq!(
        sim.kinds(),
        vec![(
            2,
            VenueEventKind::CancelRejected {
                reason: RejectReason::PostOnlyWouldCross
            }
        )]
    );
    assert_eq!(sim.venue.order(OrderId(2)).unwrap().order.price, Price(99));
}

#[test]
fn latency_delays_requests_on_engine_time() {
    let mut sim = Sim::new(PaperConfig {
        latency_us: 100,
        ..config()
    });
    sim.level(Side::Sell, 100, 5);
    let t0 = sim.now;
    sim.venue
        .submit(market(1, Side::Buy, 2), UnixNanos(t0), &sim.books[..]);
    assert!(sim.events().is_empty());
    assert_eq!(sim.venue.next_due(), Some(UnixNanos(t0 + 100_000)));
    // A cancel sent later arrives after the order has filled.
    sim.venue
        .cancel(OrderId(1), UnixNanos(t0 + 50_000), &sim.books[..]);
    assert_eq!(sim.venue.in_flight(), 2);
    // The book changes in the meantime: the order meets the book as it is on arrival.
    sim.books[0].set(Side::Sell, Price(100), Qty(0));
    sim.books[0].set(Side::Sell, Price(101), Qty(5));
    sim.venue.on_time(UnixNanos(t0 + 99_999), &sim.books[..]);
    assert!(sim.events().is_empty());
    sim.venue.on_time(UnixNanos(t0 + 200_000), &sim.books[..]);
    let events = sim.events();
    let stamped: Vec<_> = events.iter().map(|e| (e.ts.0 - t0, e.kind)).collect();
    assert_eq!(stamped[0], (100_000, VenueEventKind::Accepted));
    assert!(matches!(
        stamped[1],
        (
            100_000,
            VenueEventKind::Fill {
                price: Price(101),
                ..
            }
        )
    ));
    assert_eq!(
        stamped[2],
        (
            150_000,
            VenueEventKind::CancelRejected {
                reason: RejectReason::TooLateToCancel
            }
        )
    );
    assert_eq!(sim.venue.next_due(), None);
    // Time never goes backwards: an older `now` counts as the venue clock.
    sim.venue
        .submit(market(2, Side::Buy, 1), UnixNanos(5), &sim.books[..]);
    sim.venue.on_time(UnixNanos(t0 + 300_000), &sim.books[..]);
    assert_eq!(sim.events()[0].ts, UnixNanos(t0 + 300_000));
}

#[test]
fn replace_keeps_or_loses_priority() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 99, 2);
    sim.submit(limit(1, Side::Buy, 99, 4));
    sim.submit(limit(2, Side::Buy, 99, 4));
    sim.events();
    // Smaller quantity, same price: keeps its place.
    sim.replace(1, 99, 3);
    assert_eq!(
        sim.kinds(),
        vec![(
            1,
            VenueEventKind::Replaced {
                price: Price(99),
                qty: Qty(3),
                leaves: Qty(3),
                kept_priority: true
            }
        )]
    );
    sim.trade(99, 3, Some(Side::Sell)); // 2 ahead, then order 1 gets 1
    assert_eq!(sim.fills(), vec![(99, 1, Liquidity::Maker, 2)]);
    // More quantity: to the back, behind the displayed level (now 0 after the trade? the
    // book still shows 2; the venue re-queues behind what is displayed).
    sim.replace(1, 99, 5);
    assert_eq!(
        sim.kinds(),
        vec![(
            1,
            VenueEventKind::Replaced {
                price: Price(99),
                qty: Qty(5),
                leaves: Qty(4),
                kept_priority: false
            }
        )]
    );
    assert_eq!(sim.ahead(1), 2);
    sim.level(Side::Buy, 99, 0);
    sim.trade(99, 5, Some(Side::Sell)); // order 2 (4) is now ahead of order 1
    assert_eq!(
        sim.events()
            .iter()
            .filter_map(|e| match e.kind {
                VenueEventKind::Fill { qty, .. } => Some((e.order_id.0, qty.0)),
                _ => None,
            })
            .collect::<Vec<_>>(),
        vec![(2, 4), (1, 1)]
    );
    // Price change: re-queued behind the new level; marketable prices take first.
    sim.level(Side::Buy, 98, 7);
    sim.replace(1, 98, 5);
    sim.events();
    assert_eq!(sim.ahead(1), 7);
    sim.replace(1, 100, 5);
    let events = sim.kinds();
    assert!(matches!(
        events[0].1,
        VenueEventKind::Replaced {
            kept_priority: false,
            ..
        }
    ));
    assert_eq!(
        events[1].1,
        VenueEventKind::Fill {
            exec_id: 4,
            price: Price(100),
            qty: Qty(3),
            liquidity: Liquidity::Taker,
            fee: 0,
            leaves: Qty(0),
            cum: Qty(5)
        }
    );
    assert_eq!(sim.venue.open_orders(), 0);
    // Quantity at or below the filled quantity is refused.
    sim.submit(limit(3, Side::Buy, 90, 5));
    sim.trade(89, 2, Some(Side::Sell));
    sim.events();
    sim.replace(3, 90, 2);
    assert_eq!(
        sim.kinds(),
        vec![(
            3,
            VenueEventKind::CancelRejected {
                reason: RejectReason::InvalidQuantity
            }
        )]
    );
}

#[test]
fn cancels_of_finished_and_unknown_orders() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.submit(limit(1, Side::Buy, 100, 2));
    sim.events();
    sim.cancel(1);
    assert_eq!(
        sim.kinds(),
        vec![(
            1,
            VenueEventKind::CancelRejected {
                reason: RejectReason::TooLateToCancel
            }
        )]
    );
    sim.cancel(77);
    sim.replace(78, 100, 1);
    assert_eq!(
        sim.kinds(),
        vec![
            (
                77,
                VenueEventKind::CancelRejected {
                    reason: RejectReason::UnknownOrder
                }
            ),
            (
                78,
                VenueEventKind::CancelRejected {
                    reason: RejectReason::UnknownOrder
                }
            )
        ]
    );
    sim.submit(limit(2, Side::Buy, 90, 2));
    sim.cancel(2);
    assert_eq!(
        sim.kinds(),
        vec![
            (2, VenueEventKind::Accepted),
            (2, VenueEventKind::Canceled { leaves: Qty(2) })
        ]
    );
    sim.cancel(2);
    sim.replace(2, 91, 2);
    assert!(sim.kinds().iter().all(|(_, k)| *k
        == VenueEventKind::CancelRejected {
            reason: RejectReason::TooLateToCancel
        }));
    // A finished id cannot be reused while remembered.
    sim.submit(limit(2, Side::Buy, 90, 2));
    assert_eq!(sim.kinds(), vec![(2, rejected(RejectReason::VenueReject))]);
}

#[test]
fn finished_ids_are_forgotten_oldest_first() {
    let mut sim = Sim::new(PaperConfig {
        done_orders_kept: 2,
        ..config()
    });
    sim.level(Side::Buy, 50, 1);
    for id in 1..=3 {
        sim.submit(limit(id, Side::Buy, 40, 1));
        sim.cancel(id);
    }
    sim.events();
    sim.cancel(1);
    sim.cancel(3);
    let reasons: Vec<_> = sim.kinds().into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        reasons,
        vec![
            VenueEventKind::CancelRejected {
                reason: RejectReason::UnknownOrder
            },
            VenueEventKind::CancelRejected {
                reason: RejectReason::TooLateToCancel
            }
        ]
    );
}

#[test]
fn invalid_book_rejects_orders_but_not_cancels() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.submit(limit(1, Side::Buy, 90, 1));
    sim.books[0].valid = false;
    sim.submit(limit(2, Side::Buy, 90, 1));
    sim.submit(market(3, Side::Buy, 1));
    sim.replace(1, 91, 1);
    sim.cancel(1);
    assert_eq!(
        sim.kinds(),
        vec![
            (1, VenueEventKind::Accepted),
            (2, rejected(RejectReason::BookInvalid)),
            (3, rejected(RejectReason::BookInvalid)),
            (
                1,
                VenueEventKind::CancelRejected {
                    reason: RejectReason::BookInvalid
                }
            ),
            (1, VenueEventKind::Canceled { leaves: Qty(1) }),
        ]
    );
    // No book at all for the instrument: invalid too.
    let now = sim.tick();
    sim.venue
        .submit(limit(4, Side::Buy, 90, 1), now, &[] as &[VecBook]);
    assert_eq!(sim.kinds(), vec![(4, rejected(RejectReason::BookInvalid))]);
}

#[test]
fn crossing_book_fills_resting_orders_as_maker() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.submit(limit(1, Side::Buy, 99, 4));
    sim.submit(limit(2, Side::Buy, 98, 4));
    sim.events();
    sim.level(Side::Sell, 98, 3); // the ask drops through both
    assert_eq!(sim.fills(), vec![(99, 3, Liquidity::Maker, 1)]);
    sim.level(Side::Sell, 97, 6);
    assert_eq!(
        sim.fills(),
        vec![(99, 1, Liquidity::Maker, 0), (98, 4, Liquidity::Maker, 0)]
    );
    // Invalid books never trigger fills; the next valid update does.
    sim.submit(limit(3, Side::Buy, 96, 1));
    sim.books[0].valid = false;
    sim.level(Side::Sell, 96, 1);
    assert!(sim.fills().is_empty());
    sim.books[0].valid = true;
    let now = sim.tick();
    sim.venue.on_book_valid(I, now, &sim.books[..]);
    assert_eq!(sim.fills(), vec![(96, 1, Liquidity::Maker, 0)]);
}

#[test]
fn fees_for_makers_and_takers_with_rebates() {
    let mut sim = Sim::new(PaperConfig {
        maker_fee_bp: FeeBp::parse("-0.25").unwrap(),
        taker_fee_bp: FeeBp::parse("4.5").unwrap(),
        ..config()
    });
    // Quantity scale 0, price mantissas: fees are in price mantissa units.
    sim.level(Side::Sell, 1_000_000, 100);
    sim.submit(market(1, Side::Buy, 30)); // notional 30_000_000 × 4.5 bp = 13_500
    sim.submit(limit(2, Side::Buy, 999_000, 10));
    sim.trade(998_000, 10, Some(Side::Sell)); // 9_990_000 × -0.25 bp = -249.75 -> -249
    let fees: Vec<_> = sim
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            VenueEventKind::Fill { fee, liquidity, .. } => Some((liquidity, fee)),
            _ => None,
        })
        .collect();
    assert_eq!(
        fees,
        vec![(Liquidity::Taker, 13_500), (Liquidity::Maker, -249)]
    );
}

#[test]
fn expiry_of_day_and_gtd_orders() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    let t = sim.now;
    sim.submit(PaperOrder {
        tif: TimeInForce::Gtd,
        expire_at: UnixNanos(t + 500),
        ..limit(1, Side::Buy, 90, 1)
    });
    sim.submit(PaperOrder {
        tif: TimeInForce::Day,
        ..limit(2, Side::Buy, 90, 1)
    });
    sim.submit(PaperOrder {
        tif: TimeInForce::Gtd,
        expire_at: UnixNanos(t),
        ..limit(3, Side::Buy, 90, 1)
    });
    let day = 86_400_000_000_000;
    assert_eq!(
        sim.venue.order(OrderId(2)).unwrap().expire_at,
        Some(UnixNanos(day))
    );
    assert_eq!(sim.venue.next_due(), Some(UnixNanos(t + 500)));
    sim.venue.on_time(UnixNanos(t + 499), &sim.books[..]);
    sim.events();
    sim.venue.on_time(UnixNanos(day), &sim.books[..]);
    let events = sim.events();
    let expired: Vec<_> = events
        .iter()
        .map(|e| (e.order_id.0, e.ts.0, e.kind))
        .collect();
    assert_eq!(
        expired,
        vec![
            (1, t + 500, VenueEventKind::Expired { leaves: Qty(1) }),
            (2, day, VenueEventKind::Expired { leaves: Qty(1) }),
        ]
    );
    assert_eq!(sim.venue.open_orders(), 0);
}

#[test]
fn bad_inputs_are_rejected_never_panic() {
    let mut sim = Sim::new(config());
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 99, 5);
    sim.submit(limit(1, Side::Buy, 99, 0));
    sim.submit(limit(2, Side::Buy, 99, -5));
    sim.submit(limit(3, Side::Buy, 0, 1));
    sim.submit(limit(4, Side::Buy, -1, 1));
    sim.submit(order(5, Side::Buy, OrderType::Stop, 99, 1));
    sim.submit(PaperOrder {
        post_only: true,
        ..market(6, Side::Buy, 1)
    });
    sim.submit(PaperOrder {
        instrument: InstrumentId(9),
        ..limit(7, Side::Buy, 99, 1)
    });
    sim.submit(limit(0, Side::Buy, 99, 1));
    sim.submit(market(8, Side::Sell, i64::MAX));
    let reasons: Vec<_> = sim.kinds();
    assert_eq!(
        &reasons[..8],
        &[
            (1, rejected(RejectReason::InvalidQuantity)),
            (2, rejected(RejectReason::InvalidQuantity)),
            (3, rejected(RejectReason::InvalidPrice)),
            (4, rejected(RejectReason::InvalidPrice)),
            (5, rejected(RejectReason::UnsupportedOrder)),
            (6, rejected(RejectReason::UnsupportedOrder)),
            (7, rejected(RejectReason::UnknownInstrument)),
            (0, rejected(RejectReason::VenueReject)),
        ]
    );
    assert_eq!(
        reasons[10],
        (
            8,
            VenueEventKind::Expired {
                leaves: Qty(i64::MAX - 5)
            }
        )
    );
    sim.submit(limit(9, Side::Buy, i64::MAX, i64::MAX));
    sim.submit(limit(10, Side::Sell, i64::MAX, 1));
    sim.replace(9, i64::MAX, -1);
    sim.replace(9, -3, 5);
    sim.replace(10, 1, i64::MAX);
    sim.events();
    // Garbage market data is counted and ignored.
    let before = sim.venue.stats().ignored_market_events;
    sim.trade(-5, 1, None);
    sim.trade(i64::MIN, i64::MIN, Some(Side::Buy));
    sim.trade(100, 0, None);
    let now = sim.tick();
    let books = &sim.books[..];
    sim.venue
        .on_trade(InstrumentId(u32::MAX), Price(100), Qty(1), None, now, books);
    sim.venue
        .on_book_delta(I, Side::Buy, Price(i64::MIN), Qty(1), now, books);
    sim.venue
        .on_book_delta(I, Side::Buy, Price(5), Qty(-1), now, books);
    sim.venue.on_book_clear(InstrumentId(77), now, books);
    let delta = BookDelta {
        instrument: I,
        side: 9,
        action: BookAction::Set.code(),
        ..BookDelta::default()
    };
    sim.venue.on_book_delta_record(&delta, now, books);
    let trade = Trade {
        instrument: I,
        aggressor: 7,
        price: Price(100),
        qty: Qty(1),
        ..Trade::default()
    };
    sim.venue.on_trade_record(&trade, now, books);
    assert_eq!(sim.venue.stats().ignored_market_events, before + 9);
    // Extreme but valid values still fill correctly.
    sim.trade(i64::MAX - 1, i64::MAX, Some(Side::Sell));
    assert!(sim.fills().iter().all(|f| f.1 > 0));
    // A book view full of nonsense is skipped.
    let mut bad = VecBook::new();
    bad.set(Side::Sell, Price(-7), Qty(3));
    bad.set(Side::Sell, Price(101), Qty(2));
    sim.books[0] = bad;
    sim.submit(market(11, Side::Buy, 5));
    let fills = sim.fills();
    assert_eq!(fills, vec![(101, 2, Liquidity::Taker, 3)]);
}

#[test]
fn capacity_limits_reject_instead_of_growing() {
    let mut sim = Sim::new(PaperConfig {
        max_orders: 2,
        ..config()
    });
    sim.level(Side::Sell, 100, 5);
    for id in 1..=3 {
        sim.submit(limit(id, Side::Buy, 90, 1));
    }
    let events = sim.kinds();
    assert_eq!(events[2], (3, rejected(RejectReason::MaxOpenOrders)));
    // Taker orders that do not rest are still fine.
    sim.submit(market(4, Side::Buy, 1));
    assert_eq!(sim.fills().len(), 1);
    // Requests in flight are bounded too.
    let mut sim = Sim::new(PaperConfig {
        max_orders: 2,
        latency_us: 10,
        ..config()
    });
    for id in 1..=3 {
        sim.venue
            .submit(limit(id, Side::Buy, 90, 1), UnixNanos(1), &sim.books[..]);
    }
    assert_eq!(sim.kinds(), vec![(3, rejected(RejectReason::RateLimited))]);
}

#[test]
fn records_drive_the_same_paths() {
    let mut sim = Sim::new(config());
    let now = sim.tick();
    sim.books[0].set(Side::Sell, Price(100), Qty(5));
    let delta = BookDelta {
        instrument: I,
        side: Side::Sell.code(),
        action: BookAction::Set.code(),
        price: Price(100),
        qty: Qty(5),
        ..BookDelta::default()
    };
    sim.venue.on_book_delta_record(&delta, now, &sim.books[..]);
    sim.submit(limit(1, Side::Buy, 99, 2));
    sim.events();
    let trade = Trade {
        instrument: I,
        aggressor: Side::Sell.code(),
        price: Price(98),
        qty: Qty(1),
        ..Trade::default()
    };
    sim.venue.on_trade_record(&trade, now, &sim.books[..]);
    assert_eq!(sim.fills(), vec![(99, 1, Liquidity::Maker, 1)]);
    let clear = BookDelta {
        instrument: I,
        action: BookAction::Clear.code(),
        ..BookDelta::default()
    };
    sim.venue.on_book_delta_record(&clear, now, &sim.books[..]);
    assert_eq!(sim.venue.stats().ignored_market_events, 0);
}

#[test]
fn snapshot_round_trip_preserves_behaviour() {
    let mut sim = Sim::new(PaperConfig {
        latency_us: 5,
        maker_fee_bp: FeeBp::parse("-0.5").unwrap(),
        ..config()
    });
    sim.level(Side::Sell, 100, 5);
    sim.level(Side::Buy, 98, 6);
    sim.venue.on_time(UnixNanos(10_000), &sim.books[..]);
    sim.now = 10_000;
    sim.submit(limit(1, Side::Buy, 98, 4));
    sim.submit(PaperOrder {
        tif: TimeInForce::Day,
        ..limit(2, Side::Sell, 101, 4)
    });
    sim.venue.on_time(UnixNanos(20_000), &sim.books[..]);
    sim.now = 20_000;
    sim.submit(market(3, Side::Buy, 2)); // in flight in the snapshot
    sim.level(Side::Buy, 98, 8);

    let bytes = postcard::to_allocvec(&sim.venue).unwrap();
    let restored: PaperVenue = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(postcard::to_allocvec(&restored).unwrap(), bytes);
    let mut copy = Sim {
        venue: restored,
        books: sim.books.clone(),
        now: sim.now,
    };
    for s in [&mut sim, &mut copy] {
        s.venue.on_time(UnixNanos(30_000), &s.books[..]);
        s.now = 30_000;
        s.trade(98, 9, Some(Side::Sell));
        s.level(Side::Sell, 100, 1);
        s.submit(market(4, Side::Buy, 3));
        s.cancel(1);
        s.venue.on_time(UnixNanos(86_400_000_000_000), &s.books[..]);
    }
    let (a, b) = (sim.events(), copy.events());
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(sim.venue.stats(), copy.venue.stats());

    // Corrupt state is refused, not trusted.
    let mut broken = bytes.clone();
    let last = broken.len() - 1;
    broken.truncate(last);
    assert!(postcard::from_bytes::<PaperVenue>(&broken).is_err());
}
