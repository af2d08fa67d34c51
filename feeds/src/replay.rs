//! Replay of recorded venue traffic through the same handlers as live data.
//!
//! # Recording formats
//!
//! Both are text, one message per line (`\n`, optionally `\r\n`), read from plain or gzip
//! files (several gzip members concatenated are read as one stream):
//!
//! * [`RecordingFormat::ReceiveNanos`]: `<receive time, ns since the epoch> <raw message>`,
//!   e.g. `1723161253937085768 {"stream":"btcusdt@depth@100ms","data":{...}}`.
//! * [`RecordingFormat::Capture`] (cryptofeed's capture files): a first line
//!   `<url> <-> <connect time>`; lines with ` <- ` are what the client sent
//!   (`<url> <- <time>: <json>`) and are skipped; every other line is
//!   `<receive time, seconds since the epoch with a fraction>: <raw message>`, e.g.
//!   `1618677817.061845: {"type":"subscriptions",...}`. Times convert to nanoseconds exactly.
//!
//! # Pacing
//!
//! A [`Pacer`] spaces messages as recorded ([`Pace::Recorded`]), `N` times faster
//! ([`Pace::Speed`]) or not at all ([`Pace::Max`]). Time comes from a [`Clock`], injected so
//! that tests can run pacing on a manual clock.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use aaiti_model::UnixNanos;

use crate::{FeedHandler, buffer::RecordBuffer, text};

/// Errors of the replay readers.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading the file failed.
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
    /// A line does not follow the format.
    #[error("recording line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A speed factor that is not a finite number above zero.
    #[error("replay speed must be a finite number above 0, got {0}")]
    BadSpeed(f64),
}

/// The line format of a recording.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecordingFormat {
    /// `<receive ns> <message>`.
    ReceiveNanos,
    /// `<seconds.fraction>: <message>`, with a `<url> <-> <ts>` header and ` <- ` client lines.
    Capture,
}

impl RecordingFormat {
    /// Guesses the format from a recording's first line.
    pub fn detect(first_line: &[u8]) -> Option<Self> {
        if contains(first_line, b" <-> ") || contains(first_line, b" <- ") {
            return Some(Self::Capture);
        }
        let digits = first_line.iter().take_while(|b| b.is_ascii_digit()).count();
        match first_line.get(digits) {
            Some(b' ') if digits > 0 => Some(Self::ReceiveNanos),
            Some(b'.' | b':') if digits > 0 => Some(Self::Capture),
            _ => None,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One recorded message: its receive time and its bytes (mutable: handlers parse in place).
#[derive(Debug)]
pub struct RecordedMessage<'a> {
    /// Recorded receive time.
    pub ts_recv: UnixNanos,
    /// The raw message.
    pub payload: &'a mut [u8],
    /// 1-based line number in the recording.
    pub line: u64,
}

/// Longest recording line accepted, in bytes. The largest real message (a 1000-level REST
/// depth snapshot) is about 80 KB; longer lines are skipped as [`ReplayError::BadLine`].
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Consumes input up to and including the next newline (or the end), storing nothing.
fn skip_rest_of_line<R: BufRead>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(());
        }
        match buffer.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                reader.consume(newline + 1);
                return Ok(());
            }
            None => {
                let len = buffer.len();
                reader.consume(len);
            }
        }
    }
}

/// Reads recorded messages line by line into one reused buffer.
#[derive(Debug)]
pub struct RecordingReader<R> {
    reader: R,
    format: Option<RecordingFormat>,
    line: Vec<u8>,
    line_no: u64,
    client_lines: u64,
    header: Option<UnixNanos>,
}

impl RecordingReader<Box<dyn BufRead + Send>> {
    /// Opens a recording, gzip-compressed (detected by its magic bytes) or plain, and
    /// detects its format from the first line.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Io`] if the file cannot be opened or read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReplayError> {
        let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
        let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        };
        Ok(Self::new(reader, None))
    }
}

impl<R: BufRead> RecordingReader<R> {
    /// A reader of `format` (`None`: detect from the first line).
    pub fn new(reader: R, format: Option<RecordingFormat>) -> Self {
        Self {
            reader,
            format,
            line: Vec::with_capacity(1 << 16),
            line_no: 0,
            client_lines: 0,
            header: None,
        }
    }

    /// A reader over any [`Read`] (wrapped in a [`BufReader`]).
    pub fn from_read<T: Read>(
        read: T,
        format: Option<RecordingFormat>,
    ) -> RecordingReader<BufReader<T>> {
        RecordingReader::new(BufReader::new(read), format)
    }

    /// The format (once known).
    pub fn format(&self) -> Option<RecordingFormat> {
        self.format
    }

    /// Client-sent lines skipped so far (capture format).
    pub fn client_lines(&self) -> u64 {
        self.client_lines
    }

    /// The connect time of a capture file's header line, once read.
    pub fn connected_at(&self) -> Option<UnixNanos> {
        self.header
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.line_no
    }

    /// The next message, or `None` at the end of the recording.
    ///
    /// # Errors
    ///
    /// [`ReplayError::Io`] on a read error; [`ReplayError::BadLine`] for a line that does
    /// not follow the format (the reader can continue with the next line).
    pub fn next_message(&mut self) -> Result<Option<RecordedMessage<'_>>, ReplayError> {
        loop {
            self.line.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            if (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.line)?
                == 0
            {
                return Ok(None);
            }
            self.line_no += 1;
            if self.line.len() > MAX_LINE_BYTES && self.line.last() != Some(&b'\n') {
                // Not a recording line (or a corrupt one): skip the rest of it without
                // holding it, so a file with no newlines cannot exhaust memory.
                skip_rest_of_line(&mut self.reader)?;
                return Err(ReplayError::BadLine {
                    line: self.line_no,
                    reason: "line longer than MAX_LINE_BYTES",
                });
            }
            while matches!(self.line.last(), Some(b'\n' | b'\r')) {
                self.line.pop();
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line_no;
            let format = match self.format {
                Some(format) => format,
                None => {
                    let detected =
                        RecordingFormat::detect(&self.line).ok_or(ReplayError::BadLine {
                            line,
                            reason: "unknown recording format",
                        })?;
                    self.format = Some(detected);
                    detected
                }
            };
            let (ts_recv, start) = match format {
                RecordingFormat::ReceiveNanos => {
                    let space =
                        self.line
                            .iter()
                            .position(|&b| b == b' ')
                            .ok_or(ReplayError::BadLine {
                                line,
                                reason: "no space after the receive time",
                            })?;
                    let ns = text::unsigned(&self.line[..space]).ok_or(ReplayError::BadLine {
                        line,
                        reason: "bad receive time",
                    })?;
                    (UnixNanos(ns), space + 1)
                }
                RecordingFormat::Capture => {
                    if let Some(at) = find(&self.line, b" <-> ") {
                        let ts = text::unix_seconds(trim(&self.line[at + 5..])).map_err(|_| {
                            ReplayError::BadLine {
                                line,
                                reason: "bad connect time",
                            }
                        })?;
                        self.header = Some(ts);
                        continue;
                    }
                    if contains(&self.line, b" <- ") {
                        self.client_lines += 1;
                        continue;
                    }
                    let colon = find(&self.line, b": ").ok_or(ReplayError::BadLine {
                        line,
                        reason: "no `: ` after the receive time",
                    })?;
                    let ts = text::unix_seconds(&self.line[..colon]).map_err(|_| {
                        ReplayError::BadLine {
                            line,
                            reason: "bad receive time",
                        }
                    })?;
                    (ts, colon + 2)
                }
            };
            return Ok(Some(RecordedMessage {
                ts_recv,
                payload: &mut self.line[start..],
                line,
            }));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// How fast to replay.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Pace {
    /// As fast as possible.
    Max,
    /// At the recorded pace.
    Recorded,
    /// `N` times the recorded pace (`Speed(2.0)` takes half the recorded time).
    Speed(f64),
}

/// A monotonic clock that can sleep. Injected into [`Pacer`] so pacing is testable.
pub trait Clock {
    /// Monotonic nanoseconds from an arbitrary origin.
    fn now_ns(&mut self) -> u64;
    /// Sleeps for `ns` nanoseconds.
    fn sleep_ns(&mut self, ns: u64);
}

/// The real clock: [`std::time::Instant`] and [`std::thread::sleep`].
#[derive(Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ns(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn sleep_ns(&mut self, ns: u64) {
        std::thread::sleep(std::time::Duration::from_nanos(ns));
    }
}

/// Spaces replayed messages in time.
#[derive(Debug)]
pub struct Pacer<C> {
    pace: Pace,
    clock: C,
    /// (first recorded time, clock time when it was released).
    origin: Option<(u64, u64)>,
}

impl<C: Clock> Pacer<C> {
    /// A pacer on `clock`.
    ///
    /// # Errors
    ///
    /// [`ReplayError::BadSpeed`] for a speed that is not finite and above zero.
    pub fn new(pace: Pace, clock: C) -> Result<Self, ReplayError> {
        if let Pace::Speed(speed) = pace
            && !(speed.is_finite() && speed > 0.0)
        {
            return Err(ReplayError::BadSpeed(speed));
        }
        Ok(Self {
            pace,
            clock,
            origin: None,
        })
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The clock, mutably.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Waits until the message recorded at `recorded` is due; returns the nanoseconds slept.
    /// The first message is due at once; messages recorded out of order are due at once.
    pub fn wait(&mut self, recorded: UnixNanos) -> u64 {
        let wait = self.due_in(recorded);
        if wait > 0 {
            self.clock.sleep_ns(wait);
        }
        wait
    }

    /// Nanoseconds until the message recorded at `recorded` is due (0: now), without
    /// waiting. The first message asked about sets the origin and is due at once.
    pub fn due_in(&mut self, recorded: UnixNanos) -> u64 {
        let speed = match self.pace {
            Pace::Max => return 0,
            Pace::Recorded => 1.0,
            Pace::Speed(speed) => speed,
        };
        let Some((recorded_origin, wall_origin)) = self.origin else {
            self.origin = Some((recorded.0, self.clock.now_ns()));
            return 0;
        };
        let elapsed = recorded.0.saturating_sub(recorded_origin);
        let offset = if speed == 1.0 {
            elapsed
        } else {
            (elapsed as f64 / speed) as u64
        };
        let due = wall_origin.saturating_add(offset);
        due.saturating_sub(self.clock.now_ns())
    }
}

/// Totals of a [`replay`] run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Messages given to the handler.
    pub messages: u64,
    /// Messages it rejected.
    pub rejected: u64,
    /// Records it appended.
    pub records: u64,
    /// Lines that were not messages (bad lines, skipped).
    pub bad_lines: u64,
}

/// Replays a recording through `handler`: for each message, waits for it (`pacer`), runs the
/// staleness check at its recorded time, normalizes it and gives the records to `sink`.
/// Rejected messages and bad lines are counted and skipped.
///
/// # Errors
///
/// [`ReplayError::Io`] if reading fails.
pub fn replay<R, C, H, S>(
    reader: &mut RecordingReader<R>,
    pacer: &mut Pacer<C>,
    handler: &mut H,
    out: &mut RecordBuffer,
    mut sink: S,
) -> Result<ReplaySummary, ReplayError>
where
    R: BufRead,
    C: Clock,
    H: FeedHandler + ?Sized,
    S: FnMut(&RecordBuffer),
{
    let mut summary = ReplaySummary::default();
    loop {
        let message = match reader.next_message() {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(summary),
            Err(ReplayError::BadLine { line, reason }) => {
                tracing::warn!(line, reason, "skipping a bad recording line");
                summary.bad_lines += 1;
                continue;
            }
            Err(error) => return Err(error),
        };
        pacer.wait(message.ts_recv);
        out.clear();
        handler.on_tick(message.ts_recv, out);
        summary.messages += 1;
        if handler
            .on_message(message.payload, message.ts_recv, out)
            .is_err()
        {
            summary.rejected += 1;
        }
        summary.records += out.len() as u64;
        sink(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlong_lines_are_skipped_without_holding_them() {
        // Well-formed but too long: without the limit it would be returned as a message.
        let mut data = b"1723161253937085768 ".to_vec();
        data.resize(MAX_LINE_BYTES + 10, b'x');
        data.extend_from_slice(b"\n1723161253937085768 {\"a\":1}\n");
        let mut reader = RecordingReader::new(
            std::io::BufReader::new(std::io::Cursor::new(data)),
            Some(RecordingFormat::ReceiveNanos),
        );
        assert!(matches!(
            reader.next_message(),
            Err(ReplayError::BadLine {
                line: 1,
                reason: "line longer than MAX_LINE_BYTES"
            })
        ));
        let message = reader.next_message().unwrap().unwrap();
        assert_eq!(message.line, 2);
        assert_eq!(message.ts_recv, UnixNanos(1_723_161_253_937_085_768));
        assert_eq!(&message.payload[..], b"{\"a\":1}");
        assert!(reader.next_message().unwrap().is_none());
    }

    #[test]
    fn detects_formats() {
        assert_eq!(
            RecordingFormat::detect(b"1723161253937085768 {\"a\":1}"),
            Some(RecordingFormat::ReceiveNanos)
        );
        assert_eq!(
            RecordingFormat::detect(b"wss://ws-feed.pro.coinbase.com <-> 1618677816.8434298"),
            Some(RecordingFormat::Capture)
        );
        assert_eq!(
            RecordingFormat::detect(b"1618677817.061845: {}"),
            Some(RecordingFormat::Capture)
        );
        assert_eq!(RecordingFormat::detect(b"{}"), None);
    }
}
