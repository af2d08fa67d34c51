//! Property tests: after any sequence of updates the book equals a plain `BTreeMap` book, is
//! sorted and never holds a zero level; rejected updates change nothing.

use std::collections::BTreeMap;

use aaiti_book::{BookError, L2Book, MAX_WINDOW_TICKS};
use aaiti_model::{Price, Qty, Side};
use proptest::prelude::*;

/// The reference: one `BTreeMap<Price, Qty>` per side.
#[derive(Default)]
struct Reference {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

impl Reference {
    fn apply(&mut self, side: Side, price: Price, qty: Qty) {
        let map = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if qty.0 == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
    }

    fn levels(&self, side: Side) -> Vec<(Price, Qty)> {
        match side {
            Side::Buy => self.bids.iter().rev().map(|(&p, &q)| (p, q)).collect(),
            Side::Sell => self.asks.iter().map(|(&p, &q)| (p, q)).collect(),
        }
    }
}

/// Where an update's price comes from.
#[derive(Debug, Clone)]
enum Place {
    /// Within a few ticks of the moving mid (the hot region).
    Near(i64),
    /// Up to a few windows from the mid: exercises re-centring.
    Windows(i64),
    /// Anywhere in a range far wider than the window: exercises the overflow store.
    Anywhere(i64),
    /// An invalid price: zero, negative or off tick.
    Invalid(i64),
}

#[derive(Debug, Clone)]
enum Op {
    /// One update at a `Place`; qty 0 deletes, negative is invalid.
    Level {
        mid_step: i64,
        side: Side,
        place: Place,
        qty: i64,
    },
    /// A run of levels on consecutive ticks starting at `mid + offset`, set walking away
    /// from the touch (or toward it, each a new best), then, if `eat`, deleted best first as
    /// an aggressive order would: window moves then migrate contiguous keys, edges included.
    Sweep {
        side: Side,
        offset: i64,
        len: i64,
        toward: bool,
        eat: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let place = prop_oneof![
        6 => (-20i64..20).prop_map(Place::Near),
        2 => (-1_000i64..1_000).prop_map(Place::Windows),
        1 => (1i64..1 << 24).prop_map(Place::Anywhere),
        1 => (-3i64..3).prop_map(Place::Invalid),
    ];
    let qty = prop_oneof![3 => Just(0i64), 6 => 1i64..1_000_000, 1 => Just(-1i64)];
    let mid_step = prop_oneof![8 => Just(0i64), 2 => -30i64..30, 1 => -3_000i64..3_000];
    let side = || prop_oneof![Just(Side::Buy), Just(Side::Sell)];
    let level = (mid_step, side(), place, qty).prop_map(|(mid_step, side, place, qty)| Op::Level {
        mid_step,
        side,
        place,
        qty,
    });
    let sweep = (
        side(),
        -600i64..600,
        1i64..700,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(side, offset, len, toward, eat)| Op::Sweep {
            side,
            offset,
            len,
            toward,
            eat,
        });
    prop_oneof![30 => level, 1 => sweep]
}

fn check(book: &L2Book, reference: &Reference) -> Result<(), TestCaseError> {
    for side in [Side::Buy, Side::Sell] {
        let levels: Vec<_> = book.levels(side).collect();
        prop_assert_eq!(&levels, &reference.levels(side));
        prop_assert_eq!(book.level_count(side), levels.len());
        prop_assert_eq!(book.levels(side).len(), levels.len());
        prop_assert!(
            levels.iter().all(|&(_, q)| q.0 > 0),
            "zero or negative level"
        );
        let sorted = levels.windows(2).all(|w| match side {
            Side::Buy => w[0].0 > w[1].0,
            Side::Sell => w[0].0 < w[1].0,
        });
        prop_assert!(sorted, "{side} levels out of order");
        prop_assert_eq!(book.best(side), levels.first().copied());
        for &(price, qty) in &levels {
            prop_assert_eq!(book.qty_at(side, price), qty);
            // Neighbouring prices hold what the reference says (usually nothing).
            let tick = book.tick_size().0;
            for probe in [Price(price.0 - tick), Price(price.0 + tick)] {
                let want = levels
                    .iter()
                    .find(|(p, _)| *p == probe)
                    .map_or(Qty(0), |(_, q)| *q);
                prop_assert_eq!(book.qty_at(side, probe), want);
            }
        }
        prop_assert_eq!(book.qty_at(side, Price(-5)), Qty(0));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn matches_btreemap_reference(
        tick in prop_oneof![Just(1i64), Just(5), Just(100)],
        window in prop_oneof![Just(64usize), Just(512), Just(4096), Just(MAX_WINDOW_TICKS)],
        start in 1_000i64..1_000_000,
        ops in prop::collection::vec(op(), 1..400),
    ) {
        let mut book = L2Book::with_window(Price(tick), window).unwrap();
        let mut reference = Reference::default();
        let mut mid = start;
        for op in ops {
            let (mid_step, side, place, qty) = match op {
                Op::Level { mid_step, side, place, qty } => (mid_step, side, place, qty),
                Op::Sweep { side, offset, len, toward, eat } => {
                    // Tick of the i-th level from the best.
                    let at = |i: i64| {
                        let t = mid + offset + if side == Side::Buy { -i } else { i };
                        Price(t.max(1) * tick)
                    };
                    let mut step = |price: Price, qty: Qty| -> Result<(), TestCaseError> {
                        book.apply(side, price, qty).unwrap();
                        reference.apply(side, price, qty);
                        let want = reference.levels(side).first().copied();
                        prop_assert_eq!(book.best(side), want);
                        Ok(())
                    };
                    for i in 0..len {
                        let i = if toward { len - 1 - i } else { i };
                        step(at(i), Qty(1 + i))?;
                    }
                    if eat {
                        for i in 0..len {
                            step(at(i), Qty(0))?;
                        }
                    }
                    check(&book, &reference)?;
                    continue;
                }
            };
            mid = (mid + mid_step).max(10_000);
            let ticks = match place {
                Place::Near(d) => mid + d,
                Place::Windows(d) => mid + d * (window as i64) / 256,
                Place::Anywhere(t) => t,
                Place::Invalid(_) => 0,
            };
            let price = match place {
                Place::Invalid(d) if tick > 1 && d > 0 => Price(mid * tick + d),
                Place::Invalid(d) => Price(-d.abs() * tick),
                _ => Price(ticks * tick),
            };
            let qty = Qty(qty);
            let result = book.apply(side, price, qty);
            let valid_price = price.0 > 0 && price.0 % tick == 0;
            if valid_price && qty.0 >= 0 {
                prop_assert_eq!(result, Ok(()));
                reference.apply(side, price, qty);
            } else {
                let is_expected = matches!(
                    result,
                    Err(BookError::NonPositivePrice { .. }
                        | BookError::OffTick { .. }
                        | BookError::NegativeQty { .. })
                );
                prop_assert!(is_expected, "{:?}", result);
            }
            check(&book, &reference)?;
        }
        book.clear();
        check(&book, &Reference::default())?;
    }

    #[test]
    fn snapshot_equals_sequential_sets(
        bids in prop::collection::vec((1i64..1 << 30, 0i64..100), 0..200),
        asks in prop::collection::vec((1i64..1 << 30, 0i64..100), 0..200),
    ) {
        let mut book = L2Book::with_window(Price(1), 256).unwrap();
        book.apply(Side::Buy, Price(77), Qty(1)).unwrap();
        let to_levels = |v: &[(i64, i64)]| v.iter().map(|&(p, q)| (Price(p), Qty(q))).collect::<Vec<_>>();
        book.replace_snapshot(to_levels(&bids), to_levels(&asks)).unwrap();
        let mut reference = Reference::default();
        for (p, q) in to_levels(&bids) {
            reference.apply(Side::Buy, p, q);
        }
        for (p, q) in to_levels(&asks) {
            reference.apply(Side::Sell, p, q);
        }
        check(&book, &reference)?;
    }
}
