//! Platform details behind one door: CPU discovery and thread pinning.

/// Core ids this process may run on (its affinity mask), lowest first. Falls back to
/// `0..available_parallelism` where the OS does not say.
pub fn available_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    if cores.is_empty() {
        let count = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        cores = (0..count).collect();
    }
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// Pins the calling thread to `core`; false if the OS refused.
pub fn pin_current_thread(core: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core })
}
