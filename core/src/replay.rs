//! Replay of recorded venue traffic as a pipeline [`Source`]: the same feed handlers and the
//! same stages as live data, at recorded pace, N times faster, or as fast as possible.

use std::io::BufRead;
use std::path::Path;

use aaiti_feeds::replay::{Pace, Pacer, RecordingReader, ReplayError, SystemClock};
use aaiti_feeds::{
    BinanceFeed, CoinbaseFeed, FeedConfig, FeedHandler, FeedStats, KrakenV1Feed, KrakenV2Feed,
    RecordBuffer,
};
use aaiti_model::{InstrumentRegistry, StreamId, UnixNanos};

use crate::runtime::{Emitter, Source, SourceStatus};

/// The Binance BTCUSDT recording bundled in `data/binance/` (gzip; see its README and
/// license), compiled into the binary so the default run works from any directory.
pub const BUNDLED_BINANCE_BTCUSDT: &[u8] =
    include_bytes!("../../data/binance/spot_btcusdt_20240808T2354Z_650s.jsonl.gz");
/// How configuration names the bundled recording.
pub const BUNDLED_BINANCE_BTCUSDT_NAME: &str = "bundled:binance-btcusdt";

/// Most messages one poll replays, so stop requests are seen promptly at max speed.
const POLL_BATCH: usize = 256;

/// Which feed handler decodes a recording.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayVenue {
    /// Binance spot combined streams and REST snapshots.
    Binance,
    /// Binance USD-M futures.
    BinanceFutures,
    /// Coinbase Exchange (and Advanced Trade) WebSocket.
    Coinbase,
    /// Kraken WebSocket v1.
    Kraken,
    /// Kraken WebSocket v2.
    KrakenV2,
}

impl ReplayVenue {
    /// The registry's venue name.
    pub fn venue_name(self) -> &'static str {
        match self {
            Self::Binance | Self::BinanceFutures => "binance",
            Self::Coinbase => "coinbase",
            Self::Kraken | Self::KrakenV2 => "kraken",
        }
    }

    /// Guesses the venue from a file name (`binance`, `coinbase`, `kraken` in it).
    pub fn guess(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.contains("binance") {
            Some(Self::Binance)
        } else if lower.contains("coinbase") {
            Some(Self::Coinbase)
        } else if lower.contains("kraken") {
            Some(if lower.contains("v2") {
                Self::KrakenV2
            } else {
                Self::Kraken
            })
        } else {
            None
        }
    }
}

/// Parses `max`, `recorded` or a speed-up factor such as `10` or `2.5`.
pub fn parse_speed(text: &str) -> Result<Pace, String> {
    match text {
        "max" => Ok(Pace::Max),
        "recorded" | "1" | "1x" => Ok(Pace::Recorded),
        _ => match text.trim_end_matches('x').parse::<f64>() {
            Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(Pace::Speed(speed)),
            _ => Err(format!(
                "speed {text:?} is not \"max\", \"recorded\" or a positive factor like \"10\""
            )),
        },
    }
}

/// Why a replay source cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ReplaySourceError {
    /// The venue is not in the instrument registry.
    #[error("venue {0:?} has no instrument in the configuration; add [[instruments]] for it")]
    UnknownVenue(&'static str),
    /// The recording cannot be opened.
    #[error("cannot open recording {file}: {source}")]
    Open {
        /// File.
        file: String,
        /// Cause.
        source: ReplayError,
    },
    /// Bad speed.
    #[error("{0}")]
    Speed(String),
}

/// Counters of a replay.
#[derive(Debug, Default, Clone)]
pub struct ReplayCounters {
    /// Messages handed to the feed handler.
    pub messages: u64,
    /// Messages it rejected.
    pub rejected_messages: u64,
    /// Lines of the recording that were not messages.
    pub bad_lines: u64,
    /// Records emitted.
    pub records: u64,
}

/// A recording replayed through a venue feed handler.
pub struct ReplaySource {
    name: String,
    reader: RecordingReader<Box<dyn BufRead + Send>>,
    pacer: Pacer<SystemClock>,
    handler: Box<dyn FeedHandler + Send>,
    buffer: RecordBuffer,
    counters: ReplayCounters,
    feed_stats: Option<FeedStats>,
    /// Records up to this sequence were journaled before a restart: they are normalized
    /// again (to rebuild the handler's state) but not emitted.
    resume_after_seq: u64,
    /// A message read but not due yet (recorded pace), with its payload.
    held: Option<UnixNanos>,
    held_payload: Vec<u8>,
}

impl ReplaySource {
    /// Replays `file` (a path, or [`BUNDLED_BINANCE_BTCUSDT_NAME`]) through `venue`'s handler,
    /// numbering its records on `stream`.
    pub fn open(
        name: &str,
        file: &str,
        venue: ReplayVenue,
        pace: Pace,
        registry: &InstrumentRegistry,
        stream: StreamId,
    ) -> Result<Self, ReplaySourceError> {
        let venue_id = registry
            .venue_id(venue.venue_name())
            .ok_or(ReplaySourceError::UnknownVenue(venue.venue_name()))?;
        let reader: RecordingReader<Box<dyn BufRead + Send>> = if file
            == BUNDLED_BINANCE_BTCUSDT_NAME
        {
            let gzip = flate2::read::MultiGzDecoder::new(BUNDLED_BINANCE_BTCUSDT);
            RecordingReader::new(
                Box::new(std::io::BufReader::with_capacity(1 << 16, gzip)),
                None,
            )
        } else {
            RecordingReader::open(Path::new(file)).map_err(|source| ReplaySourceError::Open {
                file: file.to_owned(),
                source,
            })?
        };
        let config = FeedConfig::default();
        let handler: Box<dyn FeedHandler + Send> = match venue {
            ReplayVenue::Binance => {
                Box::new(BinanceFeed::new_spot(registry, venue_id, stream, config))
            }
            ReplayVenue::BinanceFutures => Box::new(BinanceFeed::new_usd_futures(
                registry, venue_id, stream, config,
            )),
            ReplayVenue::Coinbase => {
                Box::new(CoinbaseFeed::new(registry, venue_id, stream, config))
            }
            ReplayVenue::Kraken => Box::new(KrakenV1Feed::new(registry, venue_id, stream, config)),
            ReplayVenue::KrakenV2 => {
                Box::new(KrakenV2Feed::new(registry, venue_id, stream, config))
            }
        };
        let pacer = Pacer::new(pace, SystemClock::new())
            .map_err(|e| ReplaySourceError::Speed(e.to_string()))?;
        Ok(Self {
            name: name.to_owned(),
            reader,
            pacer,
            handler,
            buffer: RecordBuffer::with_capacity(4096),
            counters: ReplayCounters::default(),
            feed_stats: None,
            resume_after_seq: 0,
            held: None,
            held_payload: Vec::new(),
        })
    }
}

/// The parts of a [`ReplaySource`] that emitting a message uses.
struct Parts<'a> {
    handler: &'a mut (dyn FeedHandler + Send),
    buffer: &'a mut RecordBuffer,
    counters: &'a mut ReplayCounters,
    resume_after_seq: u64,
}

/// Normalizes one recorded message and emits its records not yet journaled.
fn emit_message(parts: &mut Parts<'_>, ts: UnixNanos, payload: &mut [u8], out: &mut Emitter<'_>) {
    parts.buffer.clear();
    parts.handler.on_tick(ts, parts.buffer);
    parts.counters.messages += 1;
    if parts.handler.on_message(payload, ts, parts.buffer).is_err() {
        parts.counters.rejected_messages += 1;
    }
    for envelope in parts.buffer.iter() {
        if envelope.header.seq > parts.resume_after_seq {
            parts.counters.records += 1;
            out.emit(envelope);
        }
    }
}

impl ReplaySource {
    /// Whether the held message is due. Never sleeps: the thread's other sources (admin
    /// commands, the desk's sessions) are served meanwhile, and the thread's wait strategy
    /// decides how it idles.
    fn due(&mut self, ts: UnixNanos) -> bool {
        self.pacer.due_in(ts) == 0
    }
}

impl Source for ReplaySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn resume_after(&mut self, last_seq: u64) {
        self.resume_after_seq = last_seq;
    }

    fn poll(&mut self, out: &mut Emitter<'_>) -> SourceStatus {
        let mut status = SourceStatus::Idle;
        if let Some(ts) = self.held {
            if !self.due(ts) {
                return status;
            }
            self.held = None;
            let mut parts = Parts {
                handler: &mut *self.handler,
                buffer: &mut self.buffer,
                counters: &mut self.counters,
                resume_after_seq: self.resume_after_seq,
            };
            emit_message(&mut parts, ts, &mut self.held_payload, out);
            status = SourceStatus::Busy;
        }
        for _ in 0..POLL_BATCH {
            let message = match self.reader.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => {
                    self.feed_stats = Some(self.handler.stats().clone());
                    return SourceStatus::Finished;
                }
                Err(ReplayError::BadLine { line, reason }) => {
                    tracing::warn!(line, reason, "skipping a bad recording line");
                    self.counters.bad_lines += 1;
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "recording read failed; replay ends here");
                    self.feed_stats = Some(self.handler.stats().clone());
                    return SourceStatus::Finished;
                }
            };
            // While resuming, messages whose records are already journaled are normalized
            // again (the handler rebuilds its state) without pacing and without emitting.
            let resuming = self.handler.last_seq() < self.resume_after_seq;
            if !resuming && self.pacer.due_in(message.ts_recv) > 0 {
                // Not due yet: keep it and let the thread's other sources run.
                self.held = Some(message.ts_recv);
                self.held_payload.clear();
                self.held_payload.extend_from_slice(message.payload);
                return status;
            }
            let (ts, payload) = (message.ts_recv, message.payload);
            let mut parts = Parts {
                handler: &mut *self.handler,
                buffer: &mut self.buffer,
                counters: &mut self.counters,
                resume_after_seq: self.resume_after_seq,
            };
            emit_message(&mut parts, ts, payload, out);
            status = SourceStatus::Busy;
        }
        status
    }

    fn report(&self) -> Vec<(String, u64)> {
        let c = &self.counters;
        let stats = self
            .feed_stats
            .clone()
            .unwrap_or_else(|| self.handler.stats().clone());
        vec![
            ("messages".to_owned(), c.messages),
            ("rejected_messages".to_owned(), c.rejected_messages),
            ("bad_lines".to_owned(), c.bad_lines),
            ("records".to_owned(), c.records),
            ("updates_applied".to_owned(), stats.updates_applied),
            ("updates_dropped".to_owned(), stats.updates_dropped),
            ("snapshots_applied".to_owned(), stats.snapshots_applied),
            ("gaps".to_owned(), stats.gaps),
            ("resyncs_requested".to_owned(), stats.resyncs_requested),
            ("stale".to_owned(), stats.stale),
            ("out_of_order".to_owned(), stats.out_of_order),
            ("outliers".to_owned(), stats.outliers),
            ("crossed".to_owned(), stats.crossed),
        ]
    }
}
