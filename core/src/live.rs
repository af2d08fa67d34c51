//! Live venue connections as a pipeline [`Source`]: one WebSocket connection per source, or
//! a primary and a backup with automatic failover and failback.
//!
//! Every record the connection (or the failover) produces is renumbered into the source's
//! own stream, so downstream stages and the journal see one gap-free stream per source that
//! continues across restarts ([`Source::resume_after`]). After a restart the books rebuilt
//! from the journal are stale: the source first marks them for resynchronisation, and they
//! become valid again only from the venue's fresh snapshot.

use aaiti_feeds::live::{
    Connection, Failover, FailoverConfig, LiveConfig, LiveError, LiveFeed, Subscription, TlsConfig,
};
use aaiti_feeds::{
    BinanceFeed, CoinbaseFeed, FeedConfig, KrakenV1Feed, KrakenV2Feed, RecordBuffer,
};
use aaiti_model::{
    FeedEvent, FeedEventKind, InstrumentId, InstrumentRegistry, RecordHeader, StreamId, VenueId,
};

use crate::clock;
use crate::replay::ReplayVenue;
use crate::runtime::{Emitter, Source, SourceStatus};

/// Where a live source connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSettings {
    /// Feed handler.
    pub venue: ReplayVenue,
    /// WebSocket URL (`wss://...`; for Binance the base to which the stream path is added).
    pub url: String,
    /// REST base URL for depth snapshots (Binance).
    pub rest_url: Option<String>,
    /// A second connection's URL: the backup feed.
    pub backup_url: Option<String>,
    /// Switch to the backup after the primary is silent this long.
    pub failover_after_ms: u64,
    /// Switch back after the primary has been healthy this long.
    pub failback_after_ms: u64,
    /// Extra trusted root certificates (PEM), e.g. for a test server.
    pub extra_roots_pem: Vec<Vec<u8>>,
}

enum Feed<H: LiveFeed> {
    Single(Box<Connection<H>>),
    WithBackup(Box<Failover<H, H>>),
}

impl<H: LiveFeed> Feed<H> {
    fn poll(&mut self, out: &mut RecordBuffer) -> Result<(), LiveError> {
        let now = clock::now();
        match self {
            Self::Single(connection) => connection.poll(now, out).map(|_| ()),
            Self::WithBackup(failover) => failover.poll(now, out).map(|_| ()),
        }
    }
}

/// A live source over handler type `H`.
struct LiveSource<H: LiveFeed> {
    name: String,
    stream: StreamId,
    venue: VenueId,
    instruments: Vec<InstrumentId>,
    feed: Feed<H>,
    buffer: RecordBuffer,
    seq: u64,
    resumed: bool,
    gave_up: bool,
    records: u64,
}

impl<H: LiveFeed + Send> Source for LiveSource<H> {
    fn name(&self) -> &str {
        &self.name
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.seq = last_seq;
        self.resumed = last_seq > 0;
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        if self.resumed {
            // Books rebuilt from the journal are stale until the venue's snapshot arrives.
            self.resumed = false;
            let now = clock::now();
            for &instrument in &self.instruments {
                self.seq += 1;
                let event = FeedEvent {
                    instrument,
                    kind: FeedEventKind::ResyncRequested.code(),
                    venue: self.venue,
                    ..FeedEvent::default()
                };
                out.emit_record(RecordHeader::new(self.stream, self.seq, now, now), &event);
            }
        }
        if self.gave_up {
            return SourceStatus::Finished;
        }
        self.buffer.clear();
        if let Err(error) = self.feed.poll(&mut self.buffer) {
            tracing::error!(source = self.name, %error, "live feed gave up");
            self.gave_up = true;
        }
        if self.buffer.is_empty() {
            return SourceStatus::Idle;
        }
        for envelope in self.buffer.iter() {
            self.seq += 1;
            self.records += 1;
            let mut renumbered = *envelope;
            renumbered.header.stream = self.stream;
            renumbered.header.seq = self.seq;
            out.emit(&renumbered);
        }
        SourceStatus::Busy
    }

    fn report(&self) -> Vec<(String, u64)> {
        vec![
            ("records".to_owned(), self.records),
            ("last_seq".to_owned(), self.seq),
        ]
    }
}

/// Why a live source cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum LiveSourceError {
    /// The venue has no instrument in the registry.
    #[error("venue {0:?} has no instrument in the configuration; add [[instruments]] for it")]
    UnknownVenue(&'static str),
    /// The connection settings are invalid.
    #[error("live source {name}: {source}")]
    Config {
        /// Source name.
        name: String,
        /// Cause.
        source: LiveError,
    },
}

/// Builds a live source numbered on `stream`. The handlers' internal streams are derived from
/// it (they never leave the source).
pub fn live_source(
    name: &str,
    settings: &LiveSettings,
    registry: &InstrumentRegistry,
    stream: StreamId,
) -> Result<Box<dyn Source>, LiveSourceError> {
    let venue_name = settings.venue.venue_name();
    let venue = registry
        .venue_id(venue_name)
        .ok_or(LiveSourceError::UnknownVenue(venue_name))?;
    match settings.venue {
        ReplayVenue::Binance => build(
            name,
            settings,
            registry,
            stream,
            venue,
            Subscription::binance_default(),
            |s| BinanceFeed::new_spot(registry, venue, s, FeedConfig::default()),
        ),
        ReplayVenue::BinanceFutures => build(
            name,
            settings,
            registry,
            stream,
            venue,
            Subscription::binance_default(),
            |s| BinanceFeed::new_usd_futures(registry, venue, s, FeedConfig::default()),
        ),
        ReplayVenue::Coinbase => {
            let subscription = Subscription::Coinbase {
                channels: vec!["level2".into(), "ticker".into(), "matches".into()],
            };
            build(name, settings, registry, stream, venue, subscription, |s| {
                CoinbaseFeed::new(registry, venue, s, FeedConfig::default())
            })
        }
        ReplayVenue::Kraken => build(
            name,
            settings,
            registry,
            stream,
            venue,
            Subscription::KrakenV1 {
                depth: 1000,
                trades: true,
            },
            |s| KrakenV1Feed::new(registry, venue, s, FeedConfig::default()),
        ),
        ReplayVenue::KrakenV2 => build(
            name,
            settings,
            registry,
            stream,
            venue,
            Subscription::KrakenV2 {
                depth: 1000,
                trades: true,
            },
            |s| KrakenV2Feed::new(registry, venue, s, FeedConfig::default()),
        ),
    }
}

fn build<H: LiveFeed + Send + 'static>(
    name: &str,
    settings: &LiveSettings,
    registry: &InstrumentRegistry,
    stream: StreamId,
    venue: VenueId,
    subscription: Subscription,
    handler: impl Fn(StreamId) -> H,
) -> Result<Box<dyn Source>, LiveSourceError> {
    let error = |source| LiveSourceError::Config {
        name: name.to_owned(),
        source,
    };
    // Internal streams: the handler's records and the connection's own events, per side.
    let internal = |offset: u16| StreamId(stream.0.saturating_add(offset));
    let config = |url: &str, events: StreamId| {
        let mut config = LiveConfig::new(url, subscription.clone());
        config.rest_url.clone_from(&settings.rest_url);
        config.tls = TlsConfig {
            pem_roots: settings.extra_roots_pem.clone(),
            ..TlsConfig::public_roots()
        };
        config.event_stream = events;
        config
    };
    let primary = Connection::new(
        handler(internal(10_000)),
        registry,
        config(&settings.url, internal(20_000)),
    )
    .map_err(error)?;
    let feed = match &settings.backup_url {
        None => Feed::Single(Box::new(primary)),
        Some(backup_url) => {
            let backup = Connection::new(
                handler(internal(30_000)),
                registry,
                config(backup_url, internal(40_000)),
            )
            .map_err(error)?;
            let failover = Failover::new(
                primary,
                backup,
                FailoverConfig {
                    stream: internal(50_000),
                    failover_after_ms: settings.failover_after_ms,
                    failback_after_ms: settings.failback_after_ms,
                },
            )
            .map_err(error)?;
            Feed::WithBackup(Box::new(failover))
        }
    };
    let instruments = registry
        .instruments()
        .iter()
        .filter(|i| i.venue == venue)
        .map(|i| i.id)
        .collect();
    Ok(Box::new(LiveSource {
        name: name.to_owned(),
        stream,
        venue,
        instruments,
        feed,
        buffer: RecordBuffer::with_capacity(4096),
        seq: 0,
        resumed: false,
        gave_up: false,
        records: 0,
    }))
}
