//! Rings between threads: `disruptor` ring buffers of [`Envelope`] slots, consumed through
//! the crate's `EventPoller` so that the runtime owns its threads (pinning, wait strategy).
//!
//! A ring has one consumer thread and one or more producer threads (multi-producer when two
//! threads feed it). Producers never drop events: a full ring makes the producer wait, and
//! each wait is counted as a *stall* in the ring's statistics.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::thread::Thread;

use aaiti_model::Envelope;
use crossbeam_utils::CachePadded;
use disruptor::{
    BusySpin, EventPoller, MultiProducer, MultiProducerBarrier, Polling, Producer,
    SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
};
use serde::Serialize;

/// State a ring shares between its producers, its consumer and the runtime's reports.
pub(crate) struct RingShared {
    pub(crate) name: String,
    pub(crate) capacity: usize,
    /// True while the consumer is parked or about to park. SeqCst on both sides (see
    /// [`RingPublisher::wake_consumer`]).
    consumer_sleeping: CachePadded<AtomicBool>,
    /// Only parking consumers register; producers of other rings never look at it.
    consumer_thread: OnceLock<Thread>,
    consumer_may_park: bool,
    /// Set when any pipeline thread failed: blocked producers give up instead of waiting
    /// forever for a consumer that is gone.
    aborted: Arc<AtomicBool>,
    producers: Vec<Arc<ProducerCounters>>,
    /// Events the consumer has taken (stored once per batch, relaxed: statistics only).
    consumed: CachePadded<AtomicU64>,
}

/// Per-producer counters; each is written by its producer only, so plain relaxed stores
/// suffice (no read-modify-write on the hot path).
#[derive(Default)]
pub(crate) struct ProducerCounters {
    published: CachePadded<AtomicU64>,
    stalls: AtomicU64,
    dropped_after_abort: AtomicU64,
}

/// A ring's statistics for reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RingStats {
    /// Ring name (the stage it feeds).
    pub name: String,
    /// Slots.
    pub capacity: usize,
    /// Producer threads.
    pub producers: usize,
    /// Events published.
    pub published: u64,
    /// Events taken by the consumer.
    pub consumed: u64,
    /// Publishes that found the ring full and had to wait (back-pressure made visible).
    pub full_stalls: u64,
    /// Events a producer could not publish because the pipeline had failed.
    pub dropped_after_abort: u64,
}

impl RingShared {
    pub(crate) fn stats(&self) -> RingStats {
        let sum = |f: fn(&ProducerCounters) -> u64| self.producers.iter().map(|p| f(p)).sum();
        RingStats {
            name: self.name.clone(),
            capacity: self.capacity,
            producers: self.producers.len(),
            published: sum(|p| p.published.load(Ordering::Relaxed)),
            consumed: self.consumed.load(Ordering::Relaxed),
            full_stalls: sum(|p| p.stalls.load(Ordering::Relaxed)),
            dropped_after_abort: sum(|p| p.dropped_after_abort.load(Ordering::Relaxed)),
        }
    }
}

enum PublisherInner {
    Single(SingleProducer<Envelope, SingleConsumerBarrier>),
    Multi(MultiProducer<Envelope, SingleConsumerBarrier>),
}

/// One producer's handle on a ring.
pub(crate) struct RingPublisher {
    inner: PublisherInner,
    shared: Arc<RingShared>,
    counters: Arc<ProducerCounters>,
    published: u64,
}

impl RingPublisher {
    /// Claims the next slot, lets `write` fill it in place, publishes it. Waits while the
    /// ring is full (counted as one stall per blocked publish).
    #[inline]
    pub(crate) fn publish_with<F: FnOnce(&mut Envelope)>(&mut self, write: F) {
        let mut write = Some(write);
        if !self.try_publish_once(&mut write) && !self.publish_blocked(&mut write) {
            return;
        }
        self.published += 1;
        self.counters
            .published
            .store(self.published, Ordering::Relaxed);
        if self.shared.consumer_may_park {
            self.wake_consumer();
        }
    }

    #[inline]
    fn try_publish_once<F: FnOnce(&mut Envelope)>(&mut self, write: &mut Option<F>) -> bool {
        let fill = |slot: &mut Envelope| {
            if let Some(write) = write.take() {
                write(slot);
            }
        };
        match &mut self.inner {
            PublisherInner::Single(producer) => producer.try_publish(fill).is_ok(),
            PublisherInner::Multi(producer) => producer.try_publish(fill).is_ok(),
        }
    }

    /// Waits for a free slot. Returns false if the event was dropped because the pipeline
    /// failed (counted in `dropped_after_abort`).
    #[cold]
    fn publish_blocked<F: FnOnce(&mut Envelope)>(&mut self, write: &mut Option<F>) -> bool {
        self.counters.stalls.fetch_add(1, Ordering::Relaxed);
        let mut spins = 0_u32;
        loop {
            if self.try_publish_once(write) {
                return true;
            }
            if self.shared.aborted.load(Ordering::Relaxed) {
                self.counters
                    .dropped_after_abort
                    .fetch_add(1, Ordering::Relaxed);
                return false;
            }
            spins = spins.saturating_add(1);
            if spins < 256 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            // A parked consumer must be woken or a full ring never drains.
            if self.shared.consumer_may_park {
                self.wake_consumer();
            }
        }
    }

    /// Dekker-style hand-shake with a parking consumer: we store the published cursor (inside
    /// the disruptor, Release) then fence and read the sleeping flag; the consumer stores the
    /// flag, fences, then re-reads the cursor before parking. One of the two sees the other.
    #[inline]
    fn wake_consumer(&self) {
        fence(Ordering::SeqCst);
        if self.shared.consumer_sleeping.load(Ordering::Relaxed)
            && let Some(thread) = self.shared.consumer_thread.get()
        {
            thread.unpark();
        }
    }
}

enum PollerInner {
    Single(EventPoller<Envelope, SingleProducerBarrier>),
    Multi(EventPoller<Envelope, MultiProducerBarrier>),
}

/// The consumer's handle on a ring.
pub(crate) struct RingConsumer {
    inner: PollerInner,
    shared: Arc<RingShared>,
    consumed: u64,
}

/// Outcome of one poll.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    /// This many events were handed to the callback.
    Events(usize),
    /// Nothing available.
    Empty,
    /// Every producer is gone and every event was taken.
    Closed,
}

/// The disruptor's `Barrier` trait is private, so the two poller types get one macro body.
macro_rules! drain {
    ($poller:expr, $limit:expr, $handle:expr) => {
        match $poller.take($limit) {
            Ok(mut guard) => {
                let mut count = 0_usize;
                for event in &mut guard {
                    $handle(event);
                    count += 1;
                }
                Polled::Events(count)
            }
            Err(Polling::NoEvents) => Polled::Empty,
            Err(Polling::Shutdown) => Polled::Closed,
        }
    };
}

impl RingConsumer {
    /// Hands up to `limit` available events to `handle`, in order, then releases their slots.
    #[inline]
    pub(crate) fn poll<H: FnMut(&Envelope)>(&mut self, limit: u64, mut handle: H) -> Polled {
        let polled = match &mut self.inner {
            PollerInner::Single(poller) => drain!(poller, limit, handle),
            PollerInner::Multi(poller) => drain!(poller, limit, handle),
        };
        if let Polled::Events(count) = polled {
            self.consumed += count as u64;
            self.shared.consumed.store(self.consumed, Ordering::Relaxed);
        }
        polled
    }

    /// True if an event is ready (no consumption).
    #[inline]
    pub(crate) fn has_available(&self) -> bool {
        match &self.inner {
            PollerInner::Single(poller) => poller.has_available(),
            PollerInner::Multi(poller) => poller.has_available(),
        }
    }

    /// Parks the calling (consumer) thread for at most `timeout` unless an event is ready.
    pub(crate) fn park(&self, timeout: std::time::Duration) {
        let shared = &self.shared;
        let _ = shared.consumer_thread.set(std::thread::current());
        shared.consumer_sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if !self.has_available() {
            std::thread::park_timeout(timeout);
        }
        shared.consumer_sleeping.store(false, Ordering::Relaxed);
    }
}

/// Builds a ring with `producers` producer handles and one consumer.
///
/// `capacity` must be a power of two (checked by configuration validation; asserted here).
pub(crate) fn ring(
    name: &str,
    capacity: usize,
    producers: usize,
    consumer_may_park: bool,
    aborted: Arc<AtomicBool>,
) -> (Vec<RingPublisher>, RingConsumer, Arc<RingShared>) {
    assert!(
        capacity.is_power_of_two() && producers >= 1,
        "ring {name}: bad shape"
    );
    let counters: Vec<Arc<ProducerCounters>> = (0..producers)
        .map(|_| Arc::new(ProducerCounters::default()))
        .collect();
    let shared = Arc::new(RingShared {
        name: name.to_owned(),
        capacity,
        consumer_sleeping: CachePadded::new(AtomicBool::new(false)),
        consumer_thread: OnceLock::new(),
        consumer_may_park,
        aborted,
        producers: counters.clone(),
        consumed: CachePadded::new(AtomicU64::new(0)),
    });
    let publisher = |inner, counters| RingPublisher {
        inner,
        shared: Arc::clone(&shared),
        counters,
        published: 0,
    };
    // The builder's wait strategy only applies to threads the disruptor manages; we use
    // pollers, so it is never used.
    if producers == 1 {
        let (poller, builder) =
            disruptor::build_single_producer(capacity, Envelope::default, BusySpin)
                .new_event_poller();
        let producer = builder.build();
        let consumer = RingConsumer {
            inner: PollerInner::Single(poller),
            shared: Arc::clone(&shared),
            consumed: 0,
        };
        let publishers = vec![publisher(
            PublisherInner::Single(producer),
            Arc::clone(&counters[0]),
        )];
        (publishers, consumer, shared)
    } else {
        let (poller, builder) =
            disruptor::build_multi_producer(capacity, Envelope::default, BusySpin)
                .new_event_poller();
        let first = builder.build();
        let mut publishers = Vec::with_capacity(producers);
        for counter in counters.iter().skip(1) {
            publishers.push(publisher(
                PublisherInner::Multi(first.clone()),
                Arc::clone(counter),
            ));
        }
        publishers.insert(
            0,
            publisher(PublisherInner::Multi(first), Arc::clone(&counters[0])),
        );
        let consumer = RingConsumer {
            inner: PollerInner::Multi(poller),
            shared: Arc::clone(&shared),
            consumed: 0,
        };
        (publishers, consumer, shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aaiti_model::{RecordHeader, StreamId, Trade, UnixNanos};

    fn trade(seq: u64) -> Envelope {
        Envelope::new(
            RecordHeader::new(StreamId(1), seq, UnixNanos(seq), UnixNanos(seq)),
            &Trade::default(),
        )
    }

    #[test]
    fn full_ring_stalls_are_counted_and_nothing_is_lost() {
        let aborted = Arc::new(AtomicBool::new(false));
        let (mut publishers, mut consumer, shared) = ring("test", 8, 1, true, aborted);
        let mut publisher = publishers.remove(0);
        let producer = std::thread::spawn(move || {
            for seq in 1..=1000 {
                publisher.publish_with(|slot| slot.copy_from(&trade(seq)));
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 1000 {
            match consumer.poll(4, |event| seen.push(event.header.seq)) {
                Polled::Events(_) => std::thread::sleep(std::time::Duration::from_micros(50)),
                Polled::Empty => consumer.park(std::time::Duration::from_millis(1)),
                Polled::Closed => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
        let stats = shared.stats();
        assert_eq!(stats.published, 1000);
        assert_eq!(stats.consumed, 1000);
        assert!(
            stats.full_stalls > 0,
            "an 8-slot ring with a slow consumer must stall"
        );
        assert_eq!(consumer.poll(4, |_| {}), Polled::Closed);
    }

    #[test]
    fn multi_producer_ring_delivers_every_event() {
        let aborted = Arc::new(AtomicBool::new(false));
        let (publishers, mut consumer, shared) = ring("mp", 64, 2, false, aborted);
        let handles: Vec<_> = publishers
            .into_iter()
            .enumerate()
            .map(|(index, mut publisher)| {
                std::thread::spawn(move || {
                    for seq in 1..=5000_u64 {
                        let mut envelope = trade(seq);
                        envelope.header.stream = StreamId(index as u16 + 1);
                        publisher.publish_with(|slot| slot.copy_from(&envelope));
                    }
                })
            })
            .collect();
        let mut last = [0_u64; 3];
        let mut total = 0;
        loop {
            match consumer.poll(256, |event| {
                let stream = event.header.stream.index();
                assert_eq!(event.header.seq, last[stream] + 1, "per-stream order");
                last[stream] = event.header.seq;
                total += 1;
            }) {
                Polled::Closed => break,
                Polled::Empty => std::thread::yield_now(),
                Polled::Events(_) => {}
            }
        }
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(total, 10_000);
        assert_eq!(shared.stats().published, 10_000);
    }
}
