//! Public-API test: two venues' books feed a consolidated top of book.

use aaiti_book::{ConsolidatedTop, L2Book, VenueScales};
use aaiti_model::{InstrumentId, Price, Qty, Scale, Side, VenueId};

#[test]
fn books_feed_the_consolidated_top() {
    let scale = |places| Scale::new(places).unwrap();
    // Venue 0 quotes BTC at 2 decimal places (tick 0.01), venue 1 at 1 (tick 0.1);
    // quantities at 8 and 5 places.
    let mut book0 = L2Book::new(Price(1)).unwrap();
    let mut book1 = L2Book::new(Price(1)).unwrap();
    book0
        .apply(Side::Buy, Price(6_000_000), Qty(100_000_000))
        .unwrap(); // 60000.00 x 1
    book0
        .apply(Side::Sell, Price(6_000_010), Qty(50_000_000))
        .unwrap(); // 60000.10 x 0.5
    book1
        .apply(Side::Buy, Price(600_001), Qty(200_000))
        .unwrap(); // 60000.1 x 2
    book1
        .apply(Side::Sell, Price(600_003), Qty(100_000))
        .unwrap(); // 60000.3 x 1

    let venues = [
        VenueScales {
            venue: VenueId(0),
            price: scale(2),
            qty: scale(8),
        },
        VenueScales {
            venue: VenueId(1),
            price: scale(1),
            qty: scale(5),
        },
    ];
    let mut top = ConsolidatedTop::new(&venues, scale(2), scale(8)).unwrap();
    top.update_top(VenueId(0), &book0.top_of_book(InstrumentId(0)))
        .unwrap();
    top.update_top(VenueId(1), &book1.top_of_book(InstrumentId(5)))
        .unwrap();

    let bid = top.best_bid().unwrap();
    assert_eq!(
        (bid.venue, bid.price, bid.qty),
        (VenueId(1), Price(6_000_010), Qty(200_000_000))
    );
    let ask = top.best_ask().unwrap();
    assert_eq!(
        (ask.venue, ask.price, ask.qty),
        (VenueId(0), Price(6_000_010), Qty(50_000_000))
    );
    assert!(top.is_crossed(), "venue 1 bids at venue 0's ask");

    // Venue 1's bid is hit; its book empties on that side.
    book1.apply(Side::Buy, Price(600_001), Qty(0)).unwrap();
    top.update_top(VenueId(1), &book1.top_of_book(InstrumentId(5)))
        .unwrap();
    assert_eq!(top.best_bid().unwrap().venue, VenueId(0));
    assert!(!top.is_crossed());
}
