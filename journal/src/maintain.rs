//! Work kept off the append path: preparing the next segment and pre-faulting pages ahead of
//! the write position. Runs on a helper thread ([`Maintenance::Background`]) or inside
//! [`JournalWriter::maintain`](crate::JournalWriter::maintain) ([`Maintenance::Manual`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::config::Maintenance;
use crate::error::{JournalError, Result};
use crate::segment::{self, WritableSegment};
use crate::sys::PrefaultHandle;

/// Pre-fault at most this much per step, so the helper re-reads the write position often.
const PREFAULT_STEP: usize = 2 << 20;
/// How far ahead of a writer that caught up the helper resumes.
const CATCH_UP_LEAD: usize = 4 << 20;
/// Helper sleep when there is nothing to do.
const IDLE_PARK: Duration = Duration::from_micros(500);
/// The writer publishes its position to the helper when it crosses a multiple of this.
pub(crate) const POSITION_GRANULE_SHIFT: u32 = 16;

/// What the next segment to prepare is.
#[derive(Clone)]
pub(crate) struct SpareSpec {
    pub(crate) dir: PathBuf,
    pub(crate) index: u64,
    pub(crate) capacity: u64,
}

enum Spare {
    Empty,
    Creating,
    Ready(WritableSegment),
    Failed(JournalError),
}

struct State {
    /// Bumped at every roll, so a pre-fault result for an old segment is not applied to a new.
    generation: u64,
    active: Option<PrefaultHandle>,
    active_populated_to: usize,
    spare: Spare,
    spare_handle: Option<PrefaultHandle>,
    spare_populated_to: usize,
    next_spare: Option<SpareSpec>,
    /// Finished segments to unmap off the append path (munmap of a big map takes a while).
    retired: Vec<WritableSegment>,
    prefault: bool,
    window: usize,
}

pub(crate) struct Shared {
    /// The writer's offset in its active segment; `Relaxed` (a hint for pre-faulting, which
    /// never changes contents, so a stale value only wastes or delays work).
    write_offset: CachePadded<AtomicU64>,
    stop: AtomicBool,
    state: Mutex<State>,
    spare_done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent in a way that
        // matters (every field is a hint or is replaced whole): keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Owns the helper thread (if any) and the state shared with it.
pub(crate) struct Maintainer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Maintainer {
    pub(crate) fn start(
        mode: Maintenance,
        prefault: bool,
        window: usize,
        active: PrefaultHandle,
        write_offset: usize,
        next_spare: SpareSpec,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            write_offset: CachePadded::new(AtomicU64::new(write_offset as u64)),
            stop: AtomicBool::new(false),
            state: Mutex::new(State {
                generation: 0,
                active: Some(active),
                active_populated_to: 0,
                spare: Spare::Empty,
                spare_handle: None,
                spare_populated_to: 0,
                next_spare: Some(next_spare),
                retired: Vec::new(),
                prefault,
                window,
            }),
            spare_done: Condvar::new(),
        });
        let thread = match mode {
            Maintenance::Manual => None,
            Maintenance::Background => {
                let helper = Arc::clone(&shared);
                let handle = std::thread::Builder::new()
                    .name("journal-maint".into())
                    .spawn(move || {
                        while !helper.stop.load(Ordering::Acquire) {
                            if !run_once(&helper) {
                                std::thread::park_timeout(IDLE_PARK);
                            }
                        }
                    })
                    .map_err(|e| JournalError::io("spawn helper thread", "journal-maint", e))?;
                Some(handle)
            }
        };
        Ok(Self { shared, thread })
    }

    /// Tells the helper where the writer is (cheap: call on granule crossings only).
    #[inline]
    pub(crate) fn publish_offset(&self, offset: usize) {
        self.shared
            .write_offset
            .store(offset as u64, Ordering::Relaxed);
    }

    /// Runs pending maintenance inline until nothing is left (manual mode).
    pub(crate) fn run_inline(&self) {
        // Bounded: one spare plus at most window / step pre-fault steps per segment.
        for _ in 0..1024 {
            if !run_once(&self.shared) {
                break;
            }
        }
    }

    /// Hands over the prepared next segment (waiting if the helper is creating it right now),
    /// or creates it inline when none is prepared. Returns the segment and how far it is
    /// pre-faulted.
    pub(crate) fn take_spare(&self, spec: &SpareSpec) -> Result<(WritableSegment, usize, bool)> {
        let mut state = self.shared.lock();
        loop {
            match std::mem::replace(&mut state.spare, Spare::Empty) {
                Spare::Ready(segment) if segment.index == spec.index => {
                    state.spare_handle = None;
                    return Ok((segment, state.spare_populated_to, false));
                }
                Spare::Ready(_) => {}
                Spare::Creating => {
                    state.spare = Spare::Creating;
                    state = self
                        .shared
                        .spare_done
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                Spare::Failed(error) => {
                    tracing::warn!(%error, "the helper failed to prepare the next segment; retrying inline");
                    break;
                }
                Spare::Empty => break,
            }
        }
        state.next_spare = None;
        state.spare_handle = None;
        drop(state);
        let segment = segment::prepare(&spec.dir, spec.index, spec.capacity)?;
        Ok((segment, 0, true))
    }

    /// Unmaps `segment` off the append path (on the helper, or at the next `maintain`).
    pub(crate) fn retire(&self, segment: WritableSegment) {
        let mut state = self.shared.lock();
        state.retired.push(segment);
        if self.thread.is_none() && state.retired.len() > 4 {
            // Manual mode without `maintain` calls: bound the backlog.
            let retired = std::mem::take(&mut state.retired);
            drop(state);
            drop(retired);
        }
    }

    /// The writer started `active`: pre-fault it from `populated_to`, prepare `next`.
    pub(crate) fn rolled(&self, active: PrefaultHandle, populated_to: usize, next: SpareSpec) {
        let mut state = self.shared.lock();
        state.generation += 1;
        state.active = Some(active);
        state.active_populated_to = populated_to;
        state.spare_populated_to = 0;
        state.next_spare = Some(next);
        drop(state);
        self.shared.write_offset.store(0, Ordering::Relaxed);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Maintainer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// One step of maintenance; `true` if it did something (more may be pending).
fn run_once(shared: &Shared) -> bool {
    // 0. Unmap retired segments.
    let retired = std::mem::take(&mut shared.lock().retired);
    if !retired.is_empty() {
        drop(retired);
        return true;
    }
    // 1. Prepare the next segment (the slow part: fallocate, header, fsync, rename, mmap).
    let spec = {
        let mut state = shared.lock();
        if matches!(state.spare, Spare::Empty) && state.next_spare.is_some() {
            state.spare = Spare::Creating;
            state.next_spare.take()
        } else {
            None
        }
    };
    if let Some(spec) = spec {
        let result = segment::prepare(&spec.dir, spec.index, spec.capacity);
        let mut state = shared.lock();
        state.spare_populated_to = 0;
        state.spare = match result {
            Ok(segment) => {
                state.spare_handle = Some(segment.map.prefault_handle());
                Spare::Ready(segment)
            }
            Err(error) => Spare::Failed(error),
        };
        drop(state);
        shared.spare_done.notify_all();
        return true;
    }

    // 2. Pre-fault from the write position to `window` ahead, spilling into the spare.
    let (generation, active, active_done, spare, spare_done, window) = {
        let state = shared.lock();
        if !state.prefault {
            return false;
        }
        let Some(active) = state.active.clone() else {
            return false;
        };
        (
            state.generation,
            active,
            state.active_populated_to,
            state.spare_handle.clone(),
            state.spare_populated_to,
            state.window,
        )
    };
    let offset = shared.write_offset.load(Ordering::Relaxed) as usize;
    let target = offset.saturating_add(window);
    // Once the writer has caught up (the pages just ahead of it are not done), leave those
    // to it and work further ahead: two threads faulting the same (large) folios serialise
    // on the folio lock, while faulting different ranges proceeds in parallel. On a segment
    // not yet touched, start at the writer.
    let lead = (window / 4).min(CATCH_UP_LEAD);
    let base = offset & !4095;
    let from = if active_done == 0 {
        base
    } else {
        active_done.max(base + lead)
    };
    let active_len = active.len();
    let (handle, from, end, in_spare) = if from < active_len.min(target) {
        (
            active,
            from,
            target.min(active_len).min(from + PREFAULT_STEP),
            false,
        )
    } else if let Some(spare) = spare
        && target > active_len
    {
        let spare_target = (target - active_len).min(spare.len());
        if spare_done >= spare_target {
            return false;
        }
        (
            spare,
            spare_done,
            spare_target.min(spare_done + PREFAULT_STEP),
            true,
        )
    } else {
        return false;
    };
    if let Err(error) = handle.populate_write(from, end - from) {
        tracing::warn!(%error, "MADV_POPULATE_WRITE failed; pre-faulting disabled");
        shared.lock().prefault = false;
        return false;
    }
    let mut state = shared.lock();
    if state.generation == generation {
        if in_spare {
            state.spare_populated_to = state.spare_populated_to.max(end);
        } else {
            state.active_populated_to = state.active_populated_to.max(end);
        }
    }
    true
}
