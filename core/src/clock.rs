//! The one place I/O threads read the wall clock (to stamp `ts_recv`). The engine's logic
//! never calls it: it takes time from event timestamps.

use aaiti_model::UnixNanos;

/// Current wall-clock time (`CLOCK_REALTIME` through the vDSO: ~20 ns, no syscall).
#[inline]
pub fn now() -> UnixNanos {
    UnixNanos::from_system_time(std::time::SystemTime::now())
}
