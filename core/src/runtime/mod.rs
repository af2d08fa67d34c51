//! The ring pipeline runtime: stages connected by `disruptor` rings, placed on pinned
//! threads by configuration.
//!
//! ```
//! use aaiti_core::runtime::{plan, Pipeline, PlacementConfig, RingSettings, WaitStrategy};
//! use aaiti_core::synthetic::{CountingSink, PassThrough, SyntheticSource};
//!
//! let pipeline = Pipeline::new(RingSettings { capacity: 1024, batch_limit: 256 })
//!     .source(Box::new(SyntheticSource::new("synthetic", 1, 10_000, 0)))
//!     .stage(Box::new(PassThrough::new("passthrough")))
//!     .stage(Box::new(CountingSink::new("counter")));
//! let placement = PlacementConfig { wait: WaitStrategy::Yield, pin: false, ..Default::default() };
//! let plan = plan(&pipeline.shape(), &placement, &[0, 1]).unwrap();
//! let report = pipeline.start(&plan).unwrap().wait();
//! assert_eq!(report.counter("counter", "events"), Some(10_000));
//! assert!(!report.failed);
//! ```

mod pipeline;
mod placement;
mod ring;
pub mod snapshot;
mod stage;
mod wait;

pub use pipeline::{
    ComponentReport, Pipeline, RUNTIME_STREAM, RingSettings, RunReport, Running, RuntimeError,
    SnapshotTrigger, StopHandle, ThreadReport,
};
pub use placement::{
    PipelineShape, PlacementConfig, PlacementError, PlacementMode, Plan, ThreadConfig, ThreadPlan,
    plan,
};
pub use ring::RingStats;
pub use stage::{Emitter, Source, SourceStatus, Stage};
pub use wait::WaitStrategy;

/// The end of a pipeline, for unit tests of stages.
#[cfg(test)]
pub(crate) fn test_sink() -> stage::Sink {
    stage::Sink::End
}
