//! What a pipeline thread does when it has nothing to process.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A thread's idle behaviour, from lowest latency (and a whole core burnt) to lowest CPU.
///
/// In configuration it is a string: `"busy-spin"`, `"spin-hint"`, `"yield"`, `"park"`
/// (200 us timeout) or `"park:<microseconds>"`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WaitStrategy {
    /// Re-poll immediately. Lowest latency; the thread owns its core.
    BusySpin,
    /// Re-poll after a CPU spin-loop hint (`pause`): kinder to a hyper-thread sibling.
    SpinHint,
    /// Re-poll after `sched_yield`: lets other runnable threads on the core go first.
    Yield,
    /// Park until a producer wakes the thread or the timeout passes. Lowest CPU; adds the
    /// OS wake-up latency (tens of microseconds).
    Park {
        /// Upper bound on one park, so sources and stop requests are still served.
        timeout_us: u64,
    },
}

impl WaitStrategy {
    /// Park timeout when none is given.
    pub const DEFAULT_PARK_TIMEOUT_US: u64 = 200;
}

impl TryFrom<String> for WaitStrategy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<WaitStrategy> for String {
    fn from(wait: WaitStrategy) -> Self {
        match wait {
            WaitStrategy::Park { timeout_us } => format!("park:{timeout_us}"),
            other => other.name().to_owned(),
        }
    }
}

impl std::str::FromStr for WaitStrategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "unknown wait strategy {text:?}: use \"busy-spin\", \"spin-hint\", \"yield\", \"park\" \
                 or \"park:<microseconds>\""
            )
        };
        match text {
            "busy-spin" => Ok(Self::BusySpin),
            "spin-hint" => Ok(Self::SpinHint),
            "yield" => Ok(Self::Yield),
            "park" => Ok(Self::Park {
                timeout_us: Self::DEFAULT_PARK_TIMEOUT_US,
            }),
            _ => match text.strip_prefix("park:").map(str::parse::<u64>) {
                Some(Ok(timeout_us)) if timeout_us > 0 => Ok(Self::Park { timeout_us }),
                _ => Err(invalid()),
            },
        }
    }
}

impl WaitStrategy {
    /// True for strategies that keep a core busy while idle; the placement never runs more
    /// of these than there are cores.
    pub const fn is_spinning(self) -> bool {
        matches!(self, Self::BusySpin | Self::SpinHint)
    }

    /// Short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::BusySpin => "busy-spin",
            Self::SpinHint => "spin-hint",
            Self::Yield => "yield",
            Self::Park { .. } => "park",
        }
    }

    pub(crate) fn park_timeout(self) -> Duration {
        match self {
            Self::Park { timeout_us } => Duration::from_micros(timeout_us.max(1)),
            _ => Duration::ZERO,
        }
    }
}

impl std::fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Park { timeout_us } => write!(f, "park({timeout_us}us)"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for text in ["busy-spin", "spin-hint", "yield", "park:50"] {
            let wait: WaitStrategy = text.parse().unwrap();
            assert_eq!(String::from(wait), text);
        }
        assert_eq!("park".parse(), Ok(WaitStrategy::Park { timeout_us: 200 }));
        assert!("park:0".parse::<WaitStrategy>().is_err());
        assert!(
            "spin"
                .parse::<WaitStrategy>()
                .unwrap_err()
                .contains("busy-spin")
        );
        assert!(WaitStrategy::SpinHint.is_spinning() && !WaitStrategy::Yield.is_spinning());
    }
}
