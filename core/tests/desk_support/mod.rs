//! Shared by the desk tests: the whole engine with its FIX gateway on an ephemeral port.

use std::path::Path;
use std::time::Duration;

use aaiti_core::config::{self, DEFAULT_CONFIG};
use aaiti_core::engine::{self, RunOptions, Started};
use aaiti_feeds::replay::Pace;

/// Starts the engine on the default configuration, replaying at the recorded pace, with the
/// gateway on an ephemeral port, no venue latency, no throttles, small journal segments and
/// yielding threads (the suite shares two cores).
pub(crate) fn start(data: &Path) -> Started {
    let text = DEFAULT_CONFIG
        .replacen("wait = \"busy-spin\"", "wait = \"yield\"", 1)
        .replacen("segment_size_mb = 256", "segment_size_mb = 4", 1)
        .replacen("listen = \"127.0.0.1:9878\"", "listen = \"127.0.0.1:0\"", 1)
        .replacen("latency_us = 1000", "latency_us = 0", 1)
        .replace("throttle_per_minute = 1000", "throttle_per_minute = 0");
    assert!(text.contains("127.0.0.1:0") && text.contains("latency_us = 0"));
    let path = data.with_extension("toml");
    std::fs::write(&path, text).expect("write the test configuration");
    let loaded = config::load(Some(&path)).expect("load the test configuration");
    let options = RunOptions {
        speed: Some(Pace::Recorded),
        data_dir: Some(data.to_owned()),
        duration: Some(Duration::from_secs(120)),
        ..RunOptions::default()
    };
    engine::start(&loaded, &options).expect("start the engine")
}
