//! Running the sessions: threads, the logon barrier, the send schedule and the event loop.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aaiti_gateway::fix::codec::Parser;

use super::LoadError;
use super::config::{LoadConfig, OrderParams};
use super::report::{LoadReport, Recorder};
use super::session::Session;

/// Between events the loop sleeps only if the next one is at least this far away, and
/// wakes this much before it (a sleep overshoots by the timer slack, ~50 us on Linux).
const SLEEP_MARGIN: Duration = Duration::from_micros(300);

/// Longest single sleep, so inbound session messages wait at most this long.
const SLEEP_MAX: Duration = Duration::from_millis(5);

/// Between the logon barrier and the first scheduled send.
const START_DELAY: Duration = Duration::from_millis(1);

/// Runs the load described by `config` and reports what it measured.
///
/// Connects and logs on every session first; the schedule starts once all are logged on.
/// A session that fails later (disconnect, Logout from the acceptor, protocol error) is
/// listed in [`LoadReport::errors`] and the others go on; the run ends early when none is
/// left.
///
/// # Errors
///
/// [`LoadError::Config`] for a bad configuration, [`LoadError::Connect`] or
/// [`LoadError::Logon`] when a session cannot be established (every session is then
/// closed), [`LoadError::Thread`] if a worker thread panicked.
pub fn run(config: &LoadConfig) -> Result<LoadReport, LoadError> {
    let params = Arc::new(config.validate()?);
    let threads = config.threads;
    let run_tag = run_tag();
    let mut report = LoadReport::new(
        config.sessions,
        threads,
        config.rate,
        config.window,
        config.warmup,
        config.duration,
    )?;
    let (outcomes, start) = thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), LoadError>>();
        let mut starts = Vec::with_capacity(threads);
        let mut workers = Vec::with_capacity(threads);
        let mut failure = None;
        for worker in 0..threads {
            let numbers: Vec<usize> = (1..=config.sessions)
                .filter(|n| (n - 1) % threads == worker)
                .collect();
            let (start_tx, start_rx) = mpsc::channel::<Option<Instant>>();
            let ready = ready_tx.clone();
            let params = Arc::clone(&params);
            let spawned = thread::Builder::new()
                .name(format!("fixload-{worker}"))
                .spawn_scoped(scope, move || {
                    if !config.cores.is_empty() {
                        // Best effort: an OS that refuses leaves the thread where it is.
                        let _ = aaiti_core::sys::pin_current_thread(
                            config.cores[worker % config.cores.len()],
                        );
                    }
                    match Worker::new(config, params, numbers, run_tag) {
                        Ok(worker) => worker.run(ready, &start_rx),
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            None
                        }
                    }
                });
            match spawned {
                Ok(handle) => {
                    starts.push(start_tx);
                    workers.push(handle);
                }
                Err(error) => {
                    failure.get_or_insert(LoadError::Spawn(error));
                }
            }
        }
        drop(ready_tx);
        // Every worker reports once, logged on or failed, and then drops its sender; one
        // that panicked drops it without reporting, which ends the wait.
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    failure.get_or_insert(error);
                }
                Err(_) => {
                    failure.get_or_insert(LoadError::Thread);
                    break;
                }
            }
        }
        let start = failure.is_none().then(|| Instant::now() + START_DELAY);
        for start_tx in &starts {
            // A worker that already ended does not listen any more; nothing to tell it.
            let _ = start_tx.send(start);
        }
        let mut outcomes = Vec::with_capacity(workers.len());
        for handle in workers {
            match handle.join() {
                Ok(Some(outcome)) => outcomes.push(outcome),
                Ok(None) => {}
                Err(_) => {
                    failure.get_or_insert(LoadError::Thread);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok((outcomes, start)),
        }
    })?;
    let mut last_ack: Option<Instant> = None;
    let mut send_end: Option<Instant> = None;
    for outcome in outcomes {
        if let Some(at) = report.merge(&outcome.recorder)? {
            last_ack = Some(last_ack.map_or(at, |last| last.max(at)));
        }
        report.unacknowledged += outcome.unacknowledged;
        report.errors.extend(outcome.errors);
        send_end = Some(send_end.map_or(outcome.send_end, |end| end.max(outcome.send_end)));
    }
    if let (Some(start), Some(send_end)) = (start, send_end) {
        let measure_start = start + config.warmup;
        let end = last_ack.map_or(send_end, |last| last.max(send_end));
        report.measured_seconds = end.saturating_duration_since(measure_start).as_secs_f64();
        if report.measured_seconds > 0.0 {
            report.throughput = report.acked.total() as f64 / report.measured_seconds;
        }
    }
    Ok(report)
}

/// A value different for every run, for the ClOrdIDs: the wall clock in microseconds mixed
/// with the process id.
fn run_tag() -> u64 {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as u64);
    micros ^ (u64::from(std::process::id()) << 24)
}

/// What a worker hands back.
#[derive(Debug)]
struct WorkerOutcome {
    recorder: Recorder,
    unacknowledged: u64,
    errors: Vec<String>,
    /// When sending stopped (the end of the schedule, or earlier if every session failed).
    send_end: Instant,
}

/// One session and its place in the open-loop schedule.
#[derive(Debug)]
struct Slot {
    session: Session,
    /// Index of the next scheduled send.
    next_index: u64,
    /// Its intended time.
    next_at: Instant,
    /// This session's offset in the schedule, in send intervals (`0..1`): sessions are
    /// spread evenly over an interval instead of all sending at once.
    phase: f64,
}

/// One thread's sessions.
#[derive(Debug)]
struct Worker<'a> {
    config: &'a LoadConfig,
    slots: Vec<Slot>,
    parser: Parser,
    rec: Recorder,
    /// Open loop: nanoseconds between a session's sends.
    period_ns: f64,
}

impl<'a> Worker<'a> {
    fn new(
        config: &'a LoadConfig,
        params: Arc<OrderParams>,
        numbers: Vec<usize>,
        run_tag: u64,
    ) -> Result<Self, LoadError> {
        let now = Instant::now();
        let mut slots = Vec::with_capacity(numbers.len());
        for number in numbers {
            // An error here drops the sessions already connected, which closes them.
            let session = Session::connect(config, &params, number, run_tag)?;
            slots.push(Slot {
                session,
                next_index: 0,
                next_at: now,
                phase: (number - 1) as f64 / config.sessions as f64,
            });
        }
        let period_ns = if config.rate > 0.0 {
            1e9 / config.rate
        } else {
            0.0
        };
        Ok(Self {
            config,
            slots,
            parser: Parser::new(),
            rec: Recorder::new()?,
            period_ns,
        })
    }

    /// Logs on, reports to the coordinator, waits for the start and runs; `None` if the
    /// run did not start (this or another worker failed to log on).
    fn run(
        mut self,
        ready: mpsc::Sender<Result<(), LoadError>>,
        start_rx: &mpsc::Receiver<Option<Instant>>,
    ) -> Option<WorkerOutcome> {
        let logon = self.logon();
        let logged_on = logon.is_ok();
        let _ = ready.send(logon);
        // The coordinator counts reports, then waits for the senders to go.
        drop(ready);
        if !logged_on {
            self.shutdown();
            return None;
        }
        let Ok(Some(start)) = start_rx.recv() else {
            // Another worker failed: leave politely.
            self.shutdown();
            return None;
        };
        let send_end = self.drive(start);
        self.drain(send_end);
        self.shutdown();
        let unacknowledged = self
            .slots
            .iter()
            .map(|slot| slot.session.measured_in_flight())
            .sum();
        let errors = self
            .slots
            .iter()
            .filter_map(|slot| {
                let session = &slot.session;
                session.error().map(|reason| {
                    format!("session {} ({}): {reason}", session.number, session.sender)
                })
            })
            .collect();
        Some(WorkerOutcome {
            recorder: self.rec,
            unacknowledged,
            errors,
            send_end,
        })
    }

    /// Reads, runs the timers and writes, for every session; `true` if anything arrived.
    fn pump(&mut self) -> bool {
        let mut got = false;
        for slot in &mut self.slots {
            got |= slot.session.poll(&mut self.parser, &mut self.rec);
        }
        let now = Instant::now();
        for slot in &mut self.slots {
            slot.session.tick(now, &mut self.rec);
            slot.session.flush();
        }
        got
    }

    /// Waits until every session is logged on.
    fn logon(&mut self) -> Result<(), LoadError> {
        let deadline = Instant::now() + self.config.logon_timeout;
        loop {
            self.pump();
            if let Some(slot) = self.slots.iter().find(|slot| slot.session.is_closed()) {
                let session = &slot.session;
                return Err(LoadError::Logon {
                    session: session.number,
                    sender: session.sender.clone(),
                    reason: session.error().unwrap_or("session closed").to_owned(),
                });
            }
            if self.slots.iter().all(|slot| slot.session.is_active()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let slot = self.slots.iter().find(|slot| !slot.session.is_active());
                let (session, sender) = slot.map_or((0, String::new()), |s| {
                    (s.session.number, s.session.sender.clone())
                });
                return Err(LoadError::Logon {
                    session,
                    sender,
                    reason: format!(
                        "no Logon answer within {:.1} s",
                        self.config.logon_timeout.as_secs_f64()
                    ),
                });
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    /// The intended time of a slot's send number `index`.
    fn scheduled(&self, start: Instant, slot: &Slot, index: u64) -> Instant {
        let offset_ns = (index as f64 + slot.phase) * self.period_ns;
        start + Duration::from_nanos(offset_ns as u64)
    }

    /// Sends on schedule (or keeps the window full) until the end; returns when sending
    /// stopped.
    fn drive(&mut self, start: Instant) -> Instant {
        let measure_from = start + self.config.warmup;
        let end = measure_from + self.config.duration;
        let open_loop = self.period_ns > 0.0;
        let period = Duration::from_nanos(self.period_ns as u64);
        for index in 0..self.slots.len() {
            let at = self.scheduled(start, &self.slots[index], 0);
            self.slots[index].next_at = at;
        }
        loop {
            let mut busy = self.pump();
            let now = Instant::now();
            if self.slots.iter().all(|slot| slot.session.is_closed()) {
                return now;
            }
            for index in 0..self.slots.len() {
                if !self.slots[index].session.is_active() {
                    continue;
                }
                if open_loop {
                    // Catch up on every slot that is due: an open-loop generator does
                    // not skip sends when it falls behind.
                    while self.slots[index].next_at <= now && self.slots[index].next_at < end {
                        let intended = self.slots[index].next_at;
                        let measured = intended >= measure_from;
                        let slot = &mut self.slots[index];
                        slot.session
                            .send_order(intended, now, measured, &mut self.rec);
                        if measured {
                            self.rec
                                .send_lag(now.saturating_duration_since(intended), period);
                        }
                        slot.next_index += 1;
                        let next_index = slot.next_index;
                        let next_at = self.scheduled(start, &self.slots[index], next_index);
                        self.slots[index].next_at = next_at;
                        busy = true;
                    }
                } else if now < end {
                    let slot = &mut self.slots[index];
                    while slot.session.is_active() && slot.session.in_flight() < self.config.window
                    {
                        let measured = now >= measure_from;
                        slot.session.send_order(now, now, measured, &mut self.rec);
                        busy = true;
                    }
                }
                self.slots[index].session.flush();
            }
            // Checked after sending, so a late wake-up still sends every request
            // scheduled before the end.
            if now >= end {
                return end;
            }
            if !busy {
                self.idle(open_loop, end);
            }
        }
    }

    /// Waits for the acknowledgements still in flight, up to the drain timeout.
    fn drain(&mut self, send_end: Instant) {
        let deadline = send_end.max(Instant::now()) + self.config.drain_timeout;
        loop {
            let busy = self.pump();
            let waiting = self
                .slots
                .iter()
                .any(|slot| !slot.session.is_closed() && slot.session.in_flight() > 0);
            if !waiting || Instant::now() >= deadline {
                return;
            }
            if !busy {
                thread::yield_now();
            }
        }
    }

    /// Logs every session out and waits for the answers (each session has a deadline).
    fn shutdown(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            slot.session.logout(now);
        }
        while !self.slots.iter().all(|slot| slot.session.is_closed()) {
            if !self.pump() {
                thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Nothing happened this round: wait a little. Spin (yielding the core) while answers
    /// are in flight, so they are timed when they arrive; otherwise sleep until shortly
    /// before the next send.
    fn idle(&self, open_loop: bool, end: Instant) {
        let in_flight = self.slots.iter().any(|slot| slot.session.in_flight() > 0);
        if self.config.busy_poll || in_flight || !open_loop {
            thread::yield_now();
            return;
        }
        let next = self
            .slots
            .iter()
            .filter(|slot| slot.session.is_active())
            .map(|slot| slot.next_at)
            .min()
            .unwrap_or(end)
            .min(end);
        let now = Instant::now();
        let wait = next.saturating_duration_since(now);
        if wait > SLEEP_MARGIN + SLEEP_MARGIN / 3 {
            thread::sleep((wait - SLEEP_MARGIN).min(SLEEP_MAX));
        } else {
            thread::yield_now();
        }
    }
}
