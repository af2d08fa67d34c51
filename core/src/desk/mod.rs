//! The desk's side of the pipeline: what the FIX gateway sends back to the quant desk.
//!
//! The [`DeskStage`] runs after the journal stage, so an order event reaches the desk only
//! once its journal record is written: an acknowledgement never gets ahead of the journal.
//! It passes the gateway ([`DeskOut`], over a bounded channel):
//!
//! * every order event (the gateway keeps the desk's own orders and drops the others);
//! * for each instrument a desk session subscribed to ([`DeskFeed`]), a full book snapshot
//!   when asked for one and then every level change, from its own copy of the books.
//!
//! Subscriptions are not engine state: they live in [`DeskFeed`]'s atomics, written by the
//! gateway thread and read here, and end with the process (sessions log on again and
//! subscribe again). Replayed records rebuild the books but are never sent.

pub mod gateway;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use aaiti_model::{
    BookAction, BookDelta, Envelope, FeedEvent, InstrumentId, InstrumentRegistry, OrderEvent,
    Price, Qty, RecordHeader, RecordKind, Side, StreamId,
};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::market::Market;
use crate::runtime::{Emitter, Stage};

/// Stream of the desk's requests (a source stream: journaled, replayed on recovery).
pub const DESK_STREAM: StreamId = StreamId(901);

/// Room in the channel to the gateway. Order events are never dropped silently: a full
/// channel is counted and logged.
const CHANNEL_CAPACITY: usize = 1 << 16;

/// How a level changed (FIX MDUpdateAction 279: new, change, delete).
pub use aaiti_gateway::fix::app::LevelAction;

/// What the desk stage passes to the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeskOut {
    /// An order event, journaled.
    Order(OrderEvent),
    /// A level change of a subscribed instrument; `last` ends one venue update.
    Level {
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Price.
        price: Price,
        /// New quantity (0 for a delete).
        qty: Qty,
        /// How the level changed.
        action: LevelAction,
        /// Last change of its update.
        last: bool,
    },
    /// The whole book of a subscribed instrument, best first (on request, see
    /// [`DeskFeed::subscribe`]); also sent with empty sides when a book is cleared.
    Snapshot {
        /// Instrument.
        instrument: InstrumentId,
        /// Bids, best first.
        bids: Vec<(Price, Qty)>,
        /// Asks, best first.
        asks: Vec<(Price, Qty)>,
    },
}

/// Subscriptions shared between the gateway thread (writer) and the desk stage (reader).
#[derive(Debug)]
pub struct DeskFeed {
    subscribers: Vec<AtomicU32>,
    snapshot_wanted: Vec<AtomicBool>,
    any_snapshot_wanted: AtomicBool,
}

impl DeskFeed {
    /// No subscriptions, for `instruments` instruments.
    pub fn new(instruments: usize) -> Arc<Self> {
        Arc::new(Self {
            subscribers: (0..instruments).map(|_| AtomicU32::new(0)).collect(),
            snapshot_wanted: (0..instruments).map(|_| AtomicBool::new(false)).collect(),
            any_snapshot_wanted: AtomicBool::new(false),
        })
    }

    /// One more subscriber of `instrument`; the stage sends a snapshot next (the gateway
    /// gives it to the sessions waiting for one). Unknown instruments are ignored.
    pub fn subscribe(&self, instrument: InstrumentId) {
        self.request_snapshot(instrument);
        if let Some(count) = self.subscribers.get(instrument.index()) {
            count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// One subscriber of `instrument` fewer.
    pub fn unsubscribe(&self, instrument: InstrumentId) {
        if let Some(count) = self.subscribers.get(instrument.index()) {
            let _ = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Asks for a snapshot of `instrument` without subscribing (a snapshot-only request).
    pub fn request_snapshot(&self, instrument: InstrumentId) {
        if let Some(wanted) = self.snapshot_wanted.get(instrument.index()) {
            wanted.store(true, Ordering::Release);
            self.any_snapshot_wanted.store(true, Ordering::Release);
        }
    }

    fn subscribed(&self, instrument: InstrumentId) -> bool {
        self.subscribers
            .get(instrument.index())
            .is_some_and(|count| count.load(Ordering::Acquire) > 0)
    }
}

/// The gateway's end: what the desk stage sends.
pub type DeskReceiver = Receiver<DeskOut>;

/// Counters of the desk stage.
#[derive(Debug, Default, Clone, Copy)]
struct DeskCounters {
    order_events: u64,
    levels: u64,
    snapshots: u64,
    dropped: u64,
}

/// See the [module docs](self).
pub struct DeskStage {
    market: Market,
    feed: Arc<DeskFeed>,
    out: Sender<DeskOut>,
    counters: DeskCounters,
}

impl DeskStage {
    /// The stage and the gateway's receiving end.
    ///
    /// # Errors
    ///
    /// An instrument whose book cannot be built.
    pub fn new(
        registry: &InstrumentRegistry,
        feed: Arc<DeskFeed>,
    ) -> Result<(Self, DeskReceiver), String> {
        let (out, receiver) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        Ok((
            Self {
                market: Market::new(registry)?,
                feed,
                out,
                counters: DeskCounters::default(),
            },
            receiver,
        ))
    }

    fn send(&mut self, message: DeskOut) {
        match self.out.try_send(message) {
            Ok(()) => {}
            // The gateway is gone (no desk configured or shut down): nothing to tell.
            Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(message)) => {
                self.counters.dropped += 1;
                if matches!(message, DeskOut::Order(_)) {
                    tracing::error!(
                        "the desk gateway is not keeping up: an order event was dropped"
                    );
                }
            }
        }
    }

    fn send_snapshots(&mut self) {
        // A plain load first: this runs after every event and is almost always false.
        if !self.feed.any_snapshot_wanted.load(Ordering::Relaxed)
            || !self.feed.any_snapshot_wanted.swap(false, Ordering::AcqRel)
        {
            return;
        }
        for index in 0..self.feed.snapshot_wanted.len() {
            if !self.feed.snapshot_wanted[index].swap(false, Ordering::AcqRel) {
                continue;
            }
            let instrument = InstrumentId(index as u32);
            let Some(state) = self.market.get(instrument) else {
                continue;
            };
            let (bids, asks) = if state.valid() {
                let book = state.book();
                (
                    book.levels(Side::Buy).collect(),
                    book.levels(Side::Sell).collect(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            self.counters.snapshots += 1;
            self.send(DeskOut::Snapshot {
                instrument,
                bids,
                asks,
            });
        }
    }

    fn on_delta(&mut self, delta: &BookDelta, now: aaiti_model::UnixNanos, replay: bool) {
        let subscribed = !replay && self.feed.subscribed(delta.instrument);
        let side = Side::try_from(delta.side).ok();
        let before = match (subscribed, side) {
            (true, Some(side)) => self
                .market
                .get(delta.instrument)
                .map(|state| state.book().qty_at(side, delta.price)),
            _ => None,
        };
        if !self.market.on_delta(delta, now) || !subscribed {
            return;
        }
        if delta.flags & BookDelta::FLAG_SNAPSHOT != 0
            || BookAction::try_from(delta.action) == Ok(BookAction::Clear)
        {
            // The venue is sending a whole book: the desk gets it whole once it is complete.
            if delta.flags & BookDelta::FLAG_LAST != 0 {
                self.feed.request_snapshot(delta.instrument);
            }
            return;
        }
        let (Some(side), Some(before)) = (side, before) else {
            return;
        };
        let action = match (before.0 == 0, delta.qty.0 == 0) {
            (true, true) => return, // deleting a level that was not there
            (_, true) => LevelAction::Delete,
            (true, false) => LevelAction::New,
            (false, false) => LevelAction::Change,
        };
        self.counters.levels += 1;
        self.send(DeskOut::Level {
            instrument: delta.instrument,
            side,
            price: delta.price,
            qty: delta.qty,
            action,
            last: delta.flags & BookDelta::FLAG_LAST != 0,
        });
    }
}

impl Stage for DeskStage {
    fn name(&self) -> &str {
        "desk"
    }

    fn on_event(&mut self, event: &Envelope, out: &mut Emitter<'_>) {
        out.emit(event);
        let replay = event.header.flags & RecordHeader::FLAG_REPLAY != 0;
        match RecordKind::try_from(event.header.kind) {
            Ok(RecordKind::BookDelta) => {
                if let Some(delta) = event.payload::<BookDelta>() {
                    self.on_delta(&{ *delta }, event.header.ts_event, replay);
                }
            }
            Ok(RecordKind::FeedEvent) => {
                if let Some(feed_event) = event.payload::<FeedEvent>() {
                    let feed_event = *feed_event;
                    self.market.on_feed_event(&feed_event);
                    if !replay && self.feed.subscribed(feed_event.instrument) {
                        // Validity changed: the desk gets the book as it now stands.
                        self.feed.request_snapshot(feed_event.instrument);
                    }
                }
            }
            Ok(RecordKind::OrderEvent) if !replay => {
                if let Some(order_event) = event.payload::<OrderEvent>() {
                    self.counters.order_events += 1;
                    self.send(DeskOut::Order(*order_event));
                }
            }
            _ => {}
        }
        if !replay {
            self.send_snapshots();
        }
    }

    fn on_batch_end(&mut self, _out: &mut Emitter<'_>) {
        self.send_snapshots();
    }

    fn snapshot(&mut self) -> Result<Option<Vec<u8>>, String> {
        self.market.snapshot().map(Some)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        self.market.restore(state)
    }

    fn report(&self) -> Vec<(String, u64)> {
        let c = self.counters;
        vec![
            ("order_events".to_owned(), c.order_events),
            ("levels".to_owned(), c.levels),
            ("snapshots".to_owned(), c.snapshots),
            ("dropped".to_owned(), c.dropped),
        ]
    }
}
