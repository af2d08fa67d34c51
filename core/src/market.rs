//! The trading stage's view of the market: an L2 book per instrument, whether it may be
//! traded on, and the last trade price, kept from the records the book stage passes on.
//!
//! The book stage keeps its own books (it may run on another thread); this copy is the one
//! the order manager, the paper venue, risk marks and strategies read, on the trading
//! thread, without locks. Applying a delta costs about 8 ns (see the book benchmarks).

use aaiti_book::L2Book;
use aaiti_gateway::paper::DepthView;
use aaiti_model::{
    BookDelta, FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, Price, Qty, Side, Trade,
    UnixNanos,
};
use serde::{Deserialize, Serialize};

/// One instrument's market state.
pub struct InstrumentMarket {
    book: L2Book,
    valid: bool,
    last_trade: Option<Price>,
    last_update: UnixNanos,
}

impl InstrumentMarket {
    /// The book.
    pub fn book(&self) -> &L2Book {
        &self.book
    }

    /// True if the book is synchronised with the venue (nothing trades on it otherwise).
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The last trade price seen.
    pub fn last_trade(&self) -> Option<Price> {
        self.last_trade
    }

    /// Engine time of the last book update or trade.
    pub fn last_update(&self) -> UnixNanos {
        self.last_update
    }

    /// Mid price (rounded down to the price scale), if both sides are present.
    pub fn mid(&self) -> Option<Price> {
        self.book.mid()
    }
}

impl DepthView for InstrumentMarket {
    #[inline]
    fn best(&self, side: Side) -> Option<(Price, Qty)> {
        self.book.best(side)
    }

    fn for_each_level(&self, side: Side, f: &mut dyn FnMut(Price, Qty) -> bool) {
        for (price, qty) in self.book.levels(side) {
            if !f(price, qty) {
                break;
            }
        }
    }

    #[inline]
    fn level_qty(&self, side: Side, price: Price) -> Qty {
        self.book.qty_at(side, price)
    }

    #[inline]
    fn is_valid(&self) -> bool {
        self.valid
    }
}

/// Every instrument's market state, indexed by [`InstrumentId`].
pub struct Market {
    instruments: Vec<InstrumentMarket>,
}

/// An L2 book in a snapshot: its levels, best first, and the last venue sequence applied.
/// Shared by the book and trading stages' snapshot sections.
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedLevels {
    bids: Vec<(Price, Qty)>,
    asks: Vec<(Price, Qty)>,
    venue_seq: u64,
}

impl SavedLevels {
    /// The levels of `book`.
    pub(crate) fn of(book: &L2Book) -> Self {
        Self {
            bids: book.levels(Side::Buy).collect(),
            asks: book.levels(Side::Sell).collect(),
            venue_seq: book.venue_seq(),
        }
    }

    /// A new book with `tick` holding these levels.
    pub(crate) fn rebuild(&self, tick: Price) -> Result<L2Book, String> {
        let mut book = L2Book::new(tick).map_err(|error| error.to_string())?;
        book.replace_snapshot(self.bids.iter().copied(), self.asks.iter().copied())
            .map_err(|error| format!("book state: {error}"))?;
        book.set_venue_seq(self.venue_seq);
        Ok(book)
    }
}

/// What a [`Market`] snapshot holds per instrument.
#[derive(Serialize, Deserialize)]
struct SavedInstrument {
    levels: SavedLevels,
    valid: bool,
    last_trade: Option<Price>,
    last_update: UnixNanos,
}

impl Market {
    /// Empty books for every registered instrument.
    ///
    /// # Errors
    ///
    /// An instrument's tick size cannot make a book.
    pub fn new(registry: &InstrumentRegistry) -> Result<Self, String> {
        let mut instruments = Vec::with_capacity(registry.len());
        for instrument in registry.instruments() {
            let book = L2Book::new(instrument.tick_size)
                .map_err(|error| format!("instrument {}: {error}", instrument.symbol))?;
            instruments.push(InstrumentMarket {
                book,
                valid: false,
                last_trade: None,
                last_update: UnixNanos(0),
            });
        }
        Ok(Self { instruments })
    }

    /// The books as the paper venue reads them.
    pub fn books(&self) -> &[InstrumentMarket] {
        &self.instruments
    }

    /// One instrument's state.
    #[inline]
    pub fn get(&self, instrument: InstrumentId) -> Option<&InstrumentMarket> {
        self.instruments.get(instrument.index())
    }

    /// Number of instruments.
    pub fn len(&self) -> usize {
        self.instruments.len()
    }

    /// True with no instrument.
    pub fn is_empty(&self) -> bool {
        self.instruments.is_empty()
    }

    /// Applies a book delta; false if it was refused (unknown instrument, bad level).
    #[inline]
    pub fn on_delta(&mut self, delta: &BookDelta, now: UnixNanos) -> bool {
        match self.instruments.get_mut(delta.instrument.index()) {
            Some(market) => {
                market.last_update = now;
                market.book.apply_delta(delta).is_ok()
            }
            None => false,
        }
    }

    /// Records a trade's price.
    #[inline]
    pub fn on_trade(&mut self, trade: &Trade, now: UnixNanos) {
        if let Some(market) = self.instruments.get_mut(trade.instrument.index())
            && trade.price.0 > 0
        {
            market.last_trade = Some(trade.price);
            market.last_update = now;
        }
    }

    /// Tracks validity: a venue snapshot makes a book valid; gaps, checksum mismatches,
    /// resyncs and disconnections make it invalid until the next.
    pub fn on_feed_event(&mut self, event: &FeedEvent) {
        let Some(market) = self.instruments.get_mut(event.instrument.index()) else {
            return;
        };
        match FeedEventKind::try_from(event.kind) {
            Ok(FeedEventKind::BookValid) => market.valid = true,
            Ok(
                FeedEventKind::Gap
                | FeedEventKind::ChecksumMismatch
                | FeedEventKind::ResyncRequested
                | FeedEventKind::Disconnected,
            ) => market.valid = false,
            _ => {}
        }
    }

    /// Serializes every book (cold path).
    ///
    /// # Errors
    ///
    /// The encoder failed.
    pub fn snapshot(&self) -> Result<Vec<u8>, String> {
        let saved: Vec<SavedInstrument> = self
            .instruments
            .iter()
            .map(|market| SavedInstrument {
                levels: SavedLevels::of(&market.book),
                valid: market.valid,
                last_trade: market.last_trade,
                last_update: market.last_update,
            })
            .collect();
        postcard::to_stdvec(&saved).map_err(|error| error.to_string())
    }

    /// Restores [`Market::snapshot`]'s bytes; nothing changes on error.
    ///
    /// # Errors
    ///
    /// Undecodable bytes, another instrument count, or a level the book refuses.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Vec<SavedInstrument> =
            postcard::from_bytes(bytes).map_err(|error| format!("market state: {error}"))?;
        if saved.len() != self.instruments.len() {
            return Err(format!(
                "the snapshot has {} instruments, the configuration {}",
                saved.len(),
                self.instruments.len()
            ));
        }
        let mut books = Vec::with_capacity(saved.len());
        for (saved, market) in saved.iter().zip(&self.instruments) {
            books.push(saved.levels.rebuild(market.book.tick_size())?);
        }
        for ((market, saved), book) in self.instruments.iter_mut().zip(saved).zip(books) {
            market.book = book;
            market.valid = saved.valid;
            market.last_trade = saved.last_trade;
            market.last_update = saved.last_update;
        }
        Ok(())
    }
}
