//! What a run measured: the per-thread [`Recorder`], the merged [`LoadReport`] and its
//! text, JSON and `.hgrm` forms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::LoadError;
use super::orders::Kind;

/// Highest latency the histograms hold: 60 s in nanoseconds (larger values saturate).
const HIST_MAX_NS: u64 = 60_000_000_000;

/// Significant digits of the histograms.
const HIST_SIGFIG: u8 = 3;

/// Nanoseconds per microsecond: `.hgrm` files and the text report show microseconds.
const NS_PER_US: f64 = 1_000.0;

/// Counts per order kind.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// NewOrderSingle (D).
    pub new: u64,
    /// OrderCancelRequest (F).
    pub cancel: u64,
    /// OrderCancelReplaceRequest (G).
    pub replace: u64,
}

impl KindCounts {
    /// All kinds.
    pub fn total(&self) -> u64 {
        self.new + self.cancel + self.replace
    }

    fn add(&mut self, kind: Kind) {
        match kind {
            Kind::New => self.new += 1,
            Kind::Cancel => self.cancel += 1,
            Kind::Replace => self.replace += 1,
        }
    }

    fn merge(&mut self, other: &Self) {
        self.new += other.new;
        self.cancel += other.cancel;
        self.replace += other.replace;
    }

    fn to_json(self) -> Value {
        json!({ "new": self.new, "cancel": self.cancel, "replace": self.replace })
    }
}

/// Session-level events, over all sessions and the whole run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Heartbeats sent because nothing else was sent for HeartBtInt.
    pub heartbeats_sent: u64,
    /// TestRequests sent because the acceptor was silent.
    pub test_requests_sent: u64,
    /// TestRequests from the acceptor answered with a Heartbeat.
    pub test_requests_answered: u64,
    /// ResendRequests from the acceptor answered with a gap fill.
    pub resend_requests_answered: u64,
    /// Inbound MsgSeqNum gaps (each sent a ResendRequest unless one already covered it).
    pub sequence_gaps: u64,
    /// Session-level Rejects (3) received.
    pub session_rejects: u64,
    /// Garbled inbound messages skipped.
    pub garbled: u64,
    /// Application messages that matched no request in flight (fills, unsolicited
    /// reports, repeats).
    pub unmatched: u64,
}

impl SessionCounters {
    fn merge(&mut self, other: &Self) {
        self.heartbeats_sent += other.heartbeats_sent;
        self.test_requests_sent += other.test_requests_sent;
        self.test_requests_answered += other.test_requests_answered;
        self.resend_requests_answered += other.resend_requests_answered;
        self.sequence_gaps += other.sequence_gaps;
        self.session_rejects += other.session_rejects;
        self.garbled += other.garbled;
        self.unmatched += other.unmatched;
    }
}

/// One thread's measurements.
#[derive(Debug)]
pub(super) struct Recorder {
    latency: Histogram<u64>,
    service: Histogram<u64>,
    sent: KindCounts,
    acked: KindCounts,
    rejected: u64,
    rejects: BTreeMap<String, u64>,
    /// Reused to build a reject key without allocating unless the key is new.
    key: String,
    fallback_new: u64,
    warmup_sent: u64,
    behind_schedule: u64,
    max_send_lag: Duration,
    last_ack: Option<Instant>,
    pub(super) session: SessionCounters,
}

fn histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, HIST_SIGFIG)
        .map_err(|error| LoadError::Histogram(format!("{error:?}")))
}

impl Recorder {
    pub(super) fn new() -> Result<Self, LoadError> {
        Ok(Self {
            latency: histogram()?,
            service: histogram()?,
            sent: KindCounts::default(),
            acked: KindCounts::default(),
            rejected: 0,
            rejects: BTreeMap::new(),
            key: String::with_capacity(128),
            fallback_new: 0,
            warmup_sent: 0,
            behind_schedule: 0,
            max_send_lag: Duration::ZERO,
            last_ack: None,
            session: SessionCounters::default(),
        })
    }

    pub(super) fn sent(&mut self, kind: Kind, measured: bool) {
        if measured {
            self.sent.add(kind);
        } else {
            self.warmup_sent += 1;
        }
    }

    pub(super) fn fallback_new(&mut self, measured: bool) {
        if measured {
            self.fallback_new += 1;
        }
    }

    /// A measured open-loop send went out `lag` after its intended time; more than one
    /// send interval (`period`) late counts as behind schedule.
    pub(super) fn send_lag(&mut self, lag: Duration, period: Duration) {
        self.max_send_lag = self.max_send_lag.max(lag);
        if lag > period {
            self.behind_schedule += 1;
        }
    }

    /// The acknowledgement of a measured request arrived at `at`.
    pub(super) fn ack(
        &mut self,
        kind: Kind,
        intended: Instant,
        sent: Instant,
        at: Instant,
        rejected: bool,
    ) {
        let ns = |from: Instant| {
            u64::try_from(at.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
        };
        // The histograms start at 1 ns; a zero is a clock tie, not a free answer.
        self.latency.saturating_record(ns(intended).max(1));
        self.service.saturating_record(ns(sent).max(1));
        self.acked.add(kind);
        if rejected {
            self.rejected += 1;
        }
        self.last_ack = Some(self.last_ack.map_or(at, |last| last.max(at)));
    }

    /// Counts a rejection under `"<kind>: <label><detail>"`.
    pub(super) fn reject(&mut self, kind: Kind, label: &str, detail: &[u8]) {
        self.key.clear();
        let _ = write!(
            self.key,
            "{}: {label}{}",
            kind.label(),
            String::from_utf8_lossy(detail)
        );
        match self.rejects.get_mut(self.key.as_str()) {
            Some(count) => *count += 1,
            None => {
                self.rejects.insert(self.key.clone(), 1);
            }
        }
    }

    pub(super) fn unmatched(&mut self) {
        self.session.unmatched += 1;
    }

    #[cfg(test)]
    pub(super) fn fallback_new_count(&self) -> u64 {
        self.fallback_new
    }

    #[cfg(test)]
    pub(super) fn rejects_snapshot(&self) -> Vec<(String, u64)> {
        self.rejects.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// A latency distribution in a few numbers, nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl Summary {
    /// The summary of `hist` (all zero when it is empty).
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        Self {
            count: hist.len(),
            min_ns: hist.min(),
            p50_ns: hist.value_at_quantile(0.5),
            p90_ns: hist.value_at_quantile(0.9),
            p99_ns: hist.value_at_quantile(0.99),
            p999_ns: hist.value_at_quantile(0.999),
            max_ns: hist.max(),
            mean_ns: hist.mean(),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "min_ns": self.min_ns,
            "p50_ns": self.p50_ns,
            "p90_ns": self.p90_ns,
            "p99_ns": self.p99_ns,
            "p99_9_ns": self.p999_ns,
            "max_ns": self.max_ns,
            "mean_ns": self.mean_ns.round(),
        })
    }

    fn text(self) -> String {
        let us = |ns: u64| ns as f64 / NS_PER_US;
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (count {})",
            us(self.p50_ns),
            us(self.p90_ns),
            us(self.p99_ns),
            us(self.p999_ns),
            us(self.max_ns),
            self.count
        )
    }
}

/// The result of [`run`](super::run). Counts and histograms cover the measured orders
/// (intended send time after the warmup) unless a field says otherwise.
#[derive(Debug)]
pub struct LoadReport {
    /// Sessions run.
    pub sessions: usize,
    /// Threads that drove them.
    pub threads: usize,
    /// Orders per second per session; 0 for closed loop.
    pub rate: f64,
    /// Orders in flight per session in closed loop.
    pub window: usize,
    /// The warmup.
    pub warmup: Duration,
    /// The measured time.
    pub duration: Duration,
    /// Nanoseconds from each request's intended send time (its slot in the open-loop
    /// schedule; the actual send time in closed loop) to its acknowledgement: the
    /// latency corrected for coordinated omission.
    pub latency: Histogram<u64>,
    /// Nanoseconds from each request's actual send to its acknowledgement.
    pub service: Histogram<u64>,
    /// Requests sent.
    pub sent: KindCounts,
    /// Requests acknowledged (accepted or rejected).
    pub acked: KindCounts,
    /// Acknowledgements that were rejections.
    pub rejected: u64,
    /// Rejections by `"<kind>: <reason>"` (the reason is the Text (58), or the reject
    /// code when there is no text; session and business rejects are prefixed as such).
    pub rejects: BTreeMap<String, u64>,
    /// Cancels and replaces sent as new orders because no order was open.
    pub fallback_new: u64,
    /// Requests sent during the warmup (not measured).
    pub warmup_sent: u64,
    /// Measured requests never acknowledged (within the drain time).
    pub unacknowledged: u64,
    /// Open loop: measured sends more than one send interval after their intended time.
    pub behind_schedule: u64,
    /// Open loop: the latest a measured send went out after its intended time.
    pub max_send_lag: Duration,
    /// Seconds from the end of the warmup to the later of the end of sending and the last
    /// measured acknowledgement.
    pub measured_seconds: f64,
    /// Measured acknowledgements per second over `measured_seconds`, all sessions.
    pub throughput: f64,
    /// Session-level events (warmup included).
    pub session: SessionCounters,
    /// Sessions that failed during the run, `session N (SENDER): reason`.
    pub errors: Vec<String>,
}

impl LoadReport {
    /// An empty report for a run of this shape.
    pub(super) fn new(
        sessions: usize,
        threads: usize,
        rate: f64,
        window: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Result<Self, LoadError> {
        Ok(Self {
            sessions,
            threads,
            rate,
            window,
            warmup,
            duration,
            latency: histogram()?,
            service: histogram()?,
            sent: KindCounts::default(),
            acked: KindCounts::default(),
            rejected: 0,
            rejects: BTreeMap::new(),
            fallback_new: 0,
            warmup_sent: 0,
            unacknowledged: 0,
            behind_schedule: 0,
            max_send_lag: Duration::ZERO,
            measured_seconds: 0.0,
            throughput: 0.0,
            session: SessionCounters::default(),
            errors: Vec::new(),
        })
    }

    /// Adds one thread's measurements; returns its last measured acknowledgement.
    pub(super) fn merge(&mut self, rec: &Recorder) -> Result<Option<Instant>, LoadError> {
        let add = |error| LoadError::Histogram(format!("{error:?}"));
        self.latency.add(&rec.latency).map_err(add)?;
        self.service.add(&rec.service).map_err(add)?;
        self.sent.merge(&rec.sent);
        self.acked.merge(&rec.acked);
        self.rejected += rec.rejected;
        for (reason, count) in &rec.rejects {
            *self.rejects.entry(reason.clone()).or_default() += count;
        }
        self.fallback_new += rec.fallback_new;
        self.warmup_sent += rec.warmup_sent;
        self.behind_schedule += rec.behind_schedule;
        self.max_send_lag = self.max_send_lag.max(rec.max_send_lag);
        self.session.merge(&rec.session);
        Ok(rec.last_ack)
    }

    /// The corrected latency in a few numbers.
    pub fn latency_summary(&self) -> Summary {
        Summary::of(&self.latency)
    }

    /// The service time in a few numbers.
    pub fn service_summary(&self) -> Summary {
        Summary::of(&self.service)
    }

    /// The human-readable report (microseconds).
    ///
    /// # Errors
    ///
    /// Writing to `out`.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let mode = if self.rate > 0.0 {
            format!(
                "open loop, {} orders/s per session ({} orders/s in all)",
                self.rate,
                self.rate * self.sessions as f64
            )
        } else {
            format!("closed loop, {} in flight per session", self.window)
        };
        writeln!(
            out,
            "aaiti-fixload: {} session(s) on {} thread(s), {mode}; {:.1} s measured after {:.1} s warmup",
            self.sessions,
            self.threads,
            self.duration.as_secs_f64(),
            self.warmup.as_secs_f64()
        )?;
        writeln!(
            out,
            "sent          {} (new {}, cancel {}, replace {}; {} cancel/replace sent as new with nothing open; {} more in warmup)",
            self.sent.total(),
            self.sent.new,
            self.sent.cancel,
            self.sent.replace,
            self.fallback_new,
            self.warmup_sent
        )?;
        writeln!(
            out,
            "acknowledged  {} (new {}, cancel {}, replace {}), rejected {}, unacknowledged {}",
            self.acked.total(),
            self.acked.new,
            self.acked.cancel,
            self.acked.replace,
            self.rejected,
            self.unacknowledged
        )?;
        writeln!(
            out,
            "throughput    {:.1} acks/s over {:.3} s",
            self.throughput, self.measured_seconds
        )?;
        writeln!(
            out,
            "latency (us, from intended send)  {}",
            self.latency_summary().text()
        )?;
        writeln!(
            out,
            "service (us, from actual send)    {}",
            self.service_summary().text()
        )?;
        if self.rate > 0.0 {
            writeln!(
                out,
                "behind schedule {} sends more than one interval late (max lag {:.1} us)",
                self.behind_schedule,
                self.max_send_lag.as_secs_f64() * 1e6
            )?;
        }
        if self.rejects.is_empty() {
            writeln!(out, "rejects       none")?;
        } else {
            writeln!(out, "rejects")?;
            for (reason, count) in &self.rejects {
                writeln!(out, "  {count:>10}  {reason}")?;
            }
        }
        let s = &self.session;
        writeln!(
            out,
            "session       heartbeats sent {}, test requests sent {} / answered {}, resend requests answered {}, sequence gaps {}, session rejects {}, garbled {}, unmatched {}",
            s.heartbeats_sent,
            s.test_requests_sent,
            s.test_requests_answered,
            s.resend_requests_answered,
            s.sequence_gaps,
            s.session_rejects,
            s.garbled,
            s.unmatched
        )?;
        if self.errors.is_empty() {
            writeln!(out, "errors        none")?;
        } else {
            writeln!(out, "errors")?;
            for error in &self.errors {
                writeln!(out, "  {error}")?;
            }
        }
        Ok(())
    }

    /// The report as one JSON object; latencies in integer nanoseconds. Keys: `sessions`,
    /// `threads`, `rate_per_session` (0 = closed loop), `window`, `warmup_s`,
    /// `duration_s`, `sent` / `acknowledged` (`new`, `cancel`, `replace`), `rejected`,
    /// `rejects` (reason to count), `fallback_new`, `warmup_sent`, `unacknowledged`,
    /// `behind_schedule`, `max_send_lag_ns`, `measured_s`, `throughput_acks_per_s`,
    /// `latency` / `service` (`count`, `min_ns`, `p50_ns`, `p90_ns`, `p99_ns`,
    /// `p99_9_ns`, `max_ns`, `mean_ns`), `session` (the [`SessionCounters`] fields) and
    /// `errors` (strings).
    pub fn to_json(&self) -> Value {
        let s = &self.session;
        json!({
            "sessions": self.sessions,
            "threads": self.threads,
            "rate_per_session": self.rate,
            "window": self.window,
            "warmup_s": self.warmup.as_secs_f64(),
            "duration_s": self.duration.as_secs_f64(),
            "sent": self.sent.to_json(),
            "acknowledged": self.acked.to_json(),
            "rejected": self.rejected,
            "rejects": self.rejects,
            "fallback_new": self.fallback_new,
            "warmup_sent": self.warmup_sent,
            "unacknowledged": self.unacknowledged,
            "behind_schedule": self.behind_schedule,
            "max_send_lag_ns": u64::try_from(self.max_send_lag.as_nanos()).unwrap_or(u64::MAX),
            "measured_s": self.measured_seconds,
            "throughput_acks_per_s": self.throughput,
            "latency": self.latency_summary().to_json(),
            "service": self.service_summary().to_json(),
            "session": {
                "heartbeats_sent": s.heartbeats_sent,
                "test_requests_sent": s.test_requests_sent,
                "test_requests_answered": s.test_requests_answered,
                "resend_requests_answered": s.resend_requests_answered,
                "sequence_gaps": s.sequence_gaps,
                "session_rejects": s.session_rejects,
                "garbled": s.garbled,
                "unmatched": s.unmatched,
            },
            "errors": self.errors,
        })
    }

    /// The corrected latency histogram as an `.hgrm` file (see [`write_hgrm`]),
    /// microseconds.
    ///
    /// # Errors
    ///
    /// Writing to `out`.
    pub fn write_hgrm(&self, out: &mut dyn Write) -> io::Result<()> {
        write_hgrm(&self.latency, NS_PER_US, out)
    }
}

/// Writes `hist` in HdrHistogram's percentile distribution text format, as Java's
/// `outputPercentileDistribution(out, 5, unit_ratio)` prints it (`.hgrm`, read by the
/// HdrHistogram plotter): a header line and a blank line; one line per percentile step
/// (5 steps per halving of the remaining distance to 100%) with the value divided by
/// `unit_ratio` (`%12.3f`), the percentile as a fraction (`%2.12f`), the count up to that
/// value (`%10d`) and `1/(1-percentile)` (`%14.2f`, left out on the 100% line); then
/// `#[Mean = .., StdDeviation = ..]`, `#[Max = .., Total count = ..]` and
/// `#[Buckets = .., SubBuckets = ..]`.
///
/// # Errors
///
/// Writing to `out`.
pub fn write_hgrm(hist: &Histogram<u64>, unit_ratio: f64, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0_u64;
    if !hist.is_empty() {
        for step in hist.iter_quantiles(5) {
            total += step.count_since_last_iteration();
            let value = step.value_iterated_to() as f64 / unit_ratio;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                writeln!(
                    out,
                    "{value:12.3} {quantile:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - quantile)
                )?;
            } else {
                writeln!(out, "{value:12.3} {quantile:2.12} {total:10}")?;
            }
        }
    }
    let (mean, stdev, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            hist.mean() / unit_ratio,
            hist.stdev() / unit_ratio,
            hist.max() as f64 / unit_ratio,
        )
    };
    // Java's sub-bucket count: the power of two at or above 2 * 10^sigfig.
    let sub_buckets = (2 * 10_u64.pow(u32::from(hist.sigfig()))).next_power_of_two();
    writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    )?;
    writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        hist.buckets()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_lists_every_value_up_to_the_total() {
        let mut hist = histogram().unwrap();
        for value in 1..=1000_u64 {
            hist.record(value * 1000).unwrap();
        }
        let mut out = Vec::new();
        write_hgrm(&hist, 1000.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 20);
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[1].parse::<f64>().unwrap(), 1.0);
        assert_eq!(last[2], "1000");
        let first: f64 = rows[0][0].parse().unwrap();
        assert!((first - 1.0).abs() < 0.01, "{first}");
        assert!(text.contains("SubBuckets     =         2048]"));
        assert!(text.contains("Total count    =         1000]"));
    }

    #[test]
    fn rejects_are_counted_by_kind_and_text() {
        let mut rec = Recorder::new().unwrap();
        rec.reject(Kind::New, "", b"price out of band");
        rec.reject(Kind::New, "", b"price out of band");
        rec.reject(Kind::Cancel, "CxlRejReason=", b"1");
        assert_eq!(
            rec.rejects_snapshot(),
            vec![
                ("cancel: CxlRejReason=1".to_owned(), 1),
                ("new: price out of band".to_owned(), 2)
            ]
        );
    }
}
