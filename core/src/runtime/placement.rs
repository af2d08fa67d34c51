//! Placement: which stages share a thread, which core each thread is pinned to, and how each
//! thread waits. Configuration, because the right answer differs between a 2-core laptop
//! and a 16-core colocated server.
//!
//! The pipeline is a line: sources, then stages `0..n` in order. A thread runs a contiguous
//! run of that line (sources only, stages only, or sources followed by stages `0..k`); stages
//! that share a thread are fused (direct calls), and a ring connects consecutive threads.
//! Sources may be spread over several threads, which then publish into one multi-producer
//! ring; such threads run sources only.
//!
//! The rule that matters most on small machines: never more busy-spinning threads than
//! cores. Five spinning threads on two cores gave 4-8 ms p99 hops in our measurements,
//! against ~150 ns with two. `auto` placement follows the rule by construction; a manual
//! placement that breaks it is refused at start.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::wait::WaitStrategy;

/// `auto` derives threads from the cores found; `manual` takes [`PlacementConfig::threads`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementMode {
    /// Derive the threads from the cores available to the process.
    #[default]
    Auto,
    /// Use the `threads` list as written.
    Manual,
}

/// The `[placement]` configuration section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// `auto` or `manual`.
    #[serde(default)]
    pub mode: PlacementMode,
    /// Wait strategy of the threads `auto` creates.
    #[serde(default = "default_wait")]
    pub wait: WaitStrategy,
    /// Lowest-numbered cores `auto` leaves to the OS and the control thread. Default: one
    /// when the process has 4 or more cores, none below that.
    #[serde(default)]
    pub reserve_cores: Option<usize>,
    /// Pin threads to their cores (`auto` and `manual`); false leaves scheduling to the OS.
    #[serde(default = "default_true")]
    pub pin: bool,
    /// The threads, for `manual`.
    #[serde(default)]
    pub threads: Vec<ThreadConfig>,
}

fn default_wait() -> WaitStrategy {
    WaitStrategy::BusySpin
}

fn default_true() -> bool {
    true
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            mode: PlacementMode::Auto,
            wait: default_wait(),
            reserve_cores: None,
            pin: true,
            threads: Vec::new(),
        }
    }
}

/// One thread of a manual placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadConfig {
    /// Thread name (shown by `top -H` and in reports).
    pub name: String,
    /// Sources and stages this thread runs, by name, in pipeline order.
    pub run: Vec<String>,
    /// Core to pin to; none leaves the thread unpinned.
    #[serde(default)]
    pub core: Option<usize>,
    /// Idle behaviour.
    #[serde(default = "default_wait")]
    pub wait: WaitStrategy,
}

/// The names of a pipeline's sources and stages, in order.
#[derive(Clone, Debug, Default)]
pub struct PipelineShape {
    /// Source names.
    pub sources: Vec<String>,
    /// Stage names, in pipeline order.
    pub stages: Vec<String>,
    /// Per source: whether it only serves requests (admin commands, desk sessions) and
    /// needs no thread of its own (see [`Source::keeps_running`](super::Source::keeps_running)).
    /// Missing entries count as `false`.
    pub serving: Vec<bool>,
}

impl PipelineShape {
    fn is_serving(&self, source: usize) -> bool {
        self.serving.get(source).copied().unwrap_or(false)
    }
}

/// One planned thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadPlan {
    /// Name.
    pub name: String,
    /// Indices of the sources it runs.
    pub sources: Vec<usize>,
    /// The stages it runs (empty range for a sources-only thread).
    pub stages: Range<usize>,
    /// Core it is pinned to.
    pub core: Option<usize>,
    /// Idle behaviour.
    pub wait: WaitStrategy,
}

/// Every thread of a pipeline, sources-threads first, then in stage order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Threads.
    pub threads: Vec<ThreadPlan>,
}

impl Plan {
    /// Number of threads that spin while idle.
    pub fn spinning_threads(&self) -> usize {
        self.threads.iter().filter(|t| t.wait.is_spinning()).count()
    }
}

/// A placement that cannot run, with the configuration key and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {problem}. Fix: {fix}")]
pub struct PlacementError {
    /// Configuration key, e.g. `placement.threads[1].run`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

fn error(
    key: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> PlacementError {
    PlacementError {
        key: key.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Plans the threads of `shape` on `cores` (the core ids this process may run on).
pub fn plan(
    shape: &PipelineShape,
    config: &PlacementConfig,
    cores: &[usize],
) -> Result<Plan, PlacementError> {
    if shape.sources.is_empty() {
        return Err(error(
            "pipeline.sources",
            "the pipeline has no source",
            "name at least one source",
        ));
    }
    let plan = match config.mode {
        PlacementMode::Auto => plan_auto(shape, config, cores),
        PlacementMode::Manual => plan_manual(shape, config, cores)?,
    };
    Ok(plan)
}

fn plan_auto(shape: &PipelineShape, config: &PlacementConfig, cores: &[usize]) -> Plan {
    let fallback = [0_usize];
    let cores = if cores.is_empty() {
        &fallback[..]
    } else {
        cores
    };
    let reserve = config
        .reserve_cores
        .unwrap_or(if cores.len() >= 4 { 1 } else { 0 });
    let usable = &cores[reserve.min(cores.len() - 1)..];
    let free = usable.len();
    let sources = shape.sources.len();
    let stages = shape.stages.len();
    // Serving sources share the first source thread; only feeds get threads of their own.
    let feeds = (0..sources).filter(|&s| !shape.is_serving(s)).count();

    // Thread layout: how many source threads, and how the stages split into groups.
    let (source_threads, stage_groups) = if free >= feeds + stages && feeds > 1 {
        (feeds, stages)
    } else if free > stages {
        (1, stages)
    } else if free >= 2 {
        (1, free - 1)
    } else {
        (0, 0) // one thread runs everything
    };

    let mut threads = Vec::new();
    let core_of = |index: usize| {
        if config.pin {
            usable.get(index).copied()
        } else {
            None
        }
    };
    if source_threads == 0 {
        threads.push(ThreadPlan {
            name: "pipeline".to_owned(),
            sources: (0..sources).collect(),
            stages: 0..stages,
            core: core_of(0),
            wait: config.wait,
        });
        return Plan { threads };
    }
    // Feeds split round-robin over the source threads; serving sources go to the first.
    let mut owner = vec![0_usize; sources];
    let mut next_feed = 0;
    for (source, owner) in owner.iter_mut().enumerate() {
        if !shape.is_serving(source) {
            *owner = next_feed % source_threads;
            next_feed += 1;
        }
    }
    for thread in 0..source_threads {
        let mine: Vec<usize> = (0..sources).filter(|&s| owner[s] == thread).collect();
        let name = if source_threads == 1 {
            "io".to_owned()
        } else {
            format!("io-{thread}")
        };
        threads.push(ThreadPlan {
            name,
            sources: mine,
            stages: 0..0,
            core: core_of(thread),
            wait: config.wait,
        });
    }
    // Contiguous, as-even-as-possible groups; earlier groups take the remainder.
    let mut start = 0;
    for group in 0..stage_groups {
        let size = stages / stage_groups + usize::from(group < stages % stage_groups);
        let range = start..start + size;
        start += size;
        let name = if size == 1 {
            shape.stages[range.start].clone()
        } else {
            format!(
                "{}..{}",
                shape.stages[range.start],
                shape.stages[range.end - 1]
            )
        };
        threads.push(ThreadPlan {
            name,
            sources: Vec::new(),
            stages: range,
            core: core_of(source_threads + group),
            wait: config.wait,
        });
    }
    Plan { threads }
}

fn plan_manual(
    shape: &PipelineShape,
    config: &PlacementConfig,
    cores: &[usize],
) -> Result<Plan, PlacementError> {
    if config.threads.is_empty() {
        return Err(error(
            "placement.threads",
            "mode is \"manual\" but no thread is listed",
            "add [[placement.threads]] entries, or set mode = \"auto\"",
        ));
    }
    let mut source_owner: Vec<Option<usize>> = vec![None; shape.sources.len()];
    let mut stage_owner: Vec<Option<usize>> = vec![None; shape.stages.len()];
    let mut threads = Vec::with_capacity(config.threads.len());
    for (index, thread) in config.threads.iter().enumerate() {
        let key = format!("placement.threads[{index}]");
        if thread.name.trim().is_empty() {
            return Err(error(
                format!("{key}.name"),
                "the thread has no name",
                "give it a name",
            ));
        }
        if let Some(other) = config.threads[..index]
            .iter()
            .position(|t| t.name == thread.name)
        {
            return Err(error(
                format!("{key}.name"),
                format!(
                    "name {:?} is already used by placement.threads[{other}]",
                    thread.name
                ),
                "give every thread its own name",
            ));
        }
        if thread.run.is_empty() {
            return Err(error(
                format!("{key}.run"),
                "the thread runs nothing",
                "list sources or stages, or remove the thread",
            ));
        }
        let mut sources = Vec::new();
        let mut stages: Vec<usize> = Vec::new();
        for name in &thread.run {
            if let Some(source) = shape.sources.iter().position(|s| s == name) {
                if !stages.is_empty() {
                    return Err(error(
                        format!("{key}.run"),
                        format!("source {name:?} is listed after a stage"),
                        "list sources before stages",
                    ));
                }
                if let Some(owner) = source_owner[source].replace(index) {
                    return Err(duplicate(&key, name, owner));
                }
                sources.push(source);
            } else if let Some(stage) = shape.stages.iter().position(|s| s == name) {
                if let Some(owner) = stage_owner[stage].replace(index) {
                    return Err(duplicate(&key, name, owner));
                }
                if let Some(&last) = stages.last()
                    && stage != last + 1
                {
                    return Err(error(
                        format!("{key}.run"),
                        format!(
                            "stage {name:?} does not directly follow {:?} in the pipeline",
                            shape.stages[last]
                        ),
                        format!(
                            "a thread runs consecutive stages in pipeline order: {}",
                            shape.stages.join(" -> ")
                        ),
                    ));
                }
                stages.push(stage);
            } else {
                return Err(error(
                    format!("{key}.run"),
                    format!("{name:?} is neither a source nor a stage of this pipeline"),
                    format!("use one of: {}", known_names(shape)),
                ));
            }
        }
        let range = match (stages.first(), stages.last()) {
            (Some(&first), Some(&last)) => first..last + 1,
            _ => 0..0,
        };
        if !sources.is_empty() && !range.is_empty() && range.start != 0 {
            return Err(error(
                format!("{key}.run"),
                "a thread that runs sources must start its stages with the first stage",
                format!(
                    "add {:?} to this thread or move its stages to another thread",
                    shape.stages[0]
                ),
            ));
        }
        if let Some(core) = thread.core
            && !cores.contains(&core)
        {
            return Err(error(
                format!("{key}.core"),
                format!("core {core} is not available to this process (available: {cores:?})"),
                "pick an available core, or remove `core` to leave the thread unpinned",
            ));
        }
        threads.push(ThreadPlan {
            name: thread.name.clone(),
            sources,
            stages: range,
            core: if config.pin { thread.core } else { None },
            wait: thread.wait,
        });
    }
    if let Some(missing) = source_owner.iter().position(Option::is_none) {
        return Err(unplaced(&shape.sources[missing]));
    }
    if let Some(missing) = stage_owner.iter().position(Option::is_none) {
        return Err(unplaced(&shape.stages[missing]));
    }
    let source_threads = threads.iter().filter(|t| !t.sources.is_empty()).count();
    if let Some(fused) = threads
        .iter()
        .position(|t| !t.sources.is_empty() && !t.stages.is_empty())
        && source_threads > 1
    {
        return Err(error(
            format!("placement.threads[{fused}].run"),
            "sources are spread over several threads, so the first stage must read them from a ring, but this thread also runs it",
            "move the stages to a thread without sources, or put all sources on this thread",
        ));
    }
    let spinning: Vec<&ThreadPlan> = threads.iter().filter(|t| t.wait.is_spinning()).collect();
    let available = cores.len().max(1);
    if spinning.len() > available {
        return Err(error(
            "placement.threads",
            format!(
                "{} threads busy-spin but the process has only {available} cores; spinners beyond the core count turn ~150 ns hops into millisecond tails",
                spinning.len()
            ),
            "set wait = \"park\" or \"yield\" on some threads, or run more stages per thread",
        ));
    }
    for (position, thread) in spinning.iter().enumerate() {
        if let Some(core) = thread.core
            && let Some(other) = spinning[..position].iter().find(|t| t.core == Some(core))
        {
            return Err(error(
                "placement.threads",
                format!(
                    "spinning threads {:?} and {:?} are both pinned to core {core}",
                    other.name, thread.name
                ),
                "give each spinning thread its own core",
            ));
        }
    }
    // Source threads first, then in stage order: the order rings are wired in.
    threads.sort_by_key(|t| {
        if t.sources.is_empty() {
            (1, t.stages.start)
        } else {
            (0, 0)
        }
    });
    Ok(Plan { threads })
}

fn known_names(shape: &PipelineShape) -> String {
    shape
        .sources
        .iter()
        .chain(&shape.stages)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn duplicate(key: &str, name: &str, owner: usize) -> PlacementError {
    error(
        format!("{key}.run"),
        format!("{name:?} is already run by placement.threads[{owner}]"),
        "run every source and stage on exactly one thread",
    )
}

fn unplaced(name: &str) -> PlacementError {
    error(
        "placement.threads",
        format!("{name:?} is not run by any thread"),
        format!("add {name:?} to the `run` list of a thread"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sources: &[&str], stages: &[&str]) -> PipelineShape {
        PipelineShape {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            serving: Vec::new(),
        }
    }

    #[test]
    fn serving_sources_share_the_first_source_thread() {
        let mut shape = shape(&["a", "b", "admin"], &["book", "journal"]);
        shape.serving = vec![false, false, true];
        let config = PlacementConfig::default();
        let plan = plan(&shape, &config, &cores(5)).unwrap();
        let sources: Vec<Vec<usize>> = plan.threads.iter().map(|t| t.sources.clone()).collect();
        assert_eq!(sources, vec![vec![0, 2], vec![1], vec![], vec![]]);
        // One feed and a serving source: one io thread, as with the feed alone.
        let mut shape = super::PipelineShape {
            sources: vec!["feed".into(), "admin".into()],
            stages: vec!["book".into()],
            serving: vec![false, true],
        };
        let plan = super::plan(&shape, &config, &cores(8)).unwrap();
        assert_eq!(plan.threads.len(), 2);
        shape.serving.clear();
        assert_eq!(
            super::plan(&shape, &config, &cores(8))
                .unwrap()
                .threads
                .len(),
            3
        );
    }

    fn cores(n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    fn check_invariants(plan: &Plan, shape: &PipelineShape, available: usize) {
        assert!(plan.spinning_threads() <= available, "{plan:?}");
        let mut stages: Vec<usize> = plan.threads.iter().flat_map(|t| t.stages.clone()).collect();
        stages.sort_unstable();
        assert_eq!(stages, (0..shape.stages.len()).collect::<Vec<_>>());
        let mut sources: Vec<usize> = plan
            .threads
            .iter()
            .flat_map(|t| t.sources.clone())
            .collect();
        sources.sort_unstable();
        assert_eq!(sources, (0..shape.sources.len()).collect::<Vec<_>>());
        let pinned: Vec<usize> = plan.threads.iter().filter_map(|t| t.core).collect();
        let mut unique = pinned.clone();
        unique.dedup();
        assert_eq!(
            pinned.len(),
            unique.len(),
            "two threads on one core: {plan:?}"
        );
    }

    #[test]
    fn auto_on_one_core_runs_everything_on_one_thread() {
        let shape = shape(&["synthetic"], &["passthrough", "counter"]);
        let plan = plan(&shape, &PlacementConfig::default(), &cores(1)).unwrap();
        assert_eq!(plan.threads.len(), 1);
        assert_eq!(plan.threads[0].stages, 0..2);
        assert_eq!(plan.threads[0].sources, vec![0]);
        assert_eq!(plan.threads[0].core, Some(0));
        check_invariants(&plan, &shape, 1);
    }

    #[test]
    fn auto_on_two_cores_uses_two_spinning_threads() {
        let shape = shape(
            &["binance", "coinbase"],
            &["book", "features", "strategy", "risk", "router"],
        );
        let plan = plan(&shape, &PlacementConfig::default(), &cores(2)).unwrap();
        assert_eq!(plan.threads.len(), 2);
        assert_eq!(plan.threads[0].sources, vec![0, 1]);
        assert!(plan.threads[0].stages.is_empty());
        assert_eq!(plan.threads[1].stages, 0..5);
        assert_eq!(plan.spinning_threads(), 2);
        assert_eq!(plan.threads[0].core, Some(0));
        assert_eq!(plan.threads[1].core, Some(1));
        check_invariants(&plan, &shape, 2);
    }

    #[test]
    fn auto_on_sixteen_cores_spreads_and_reserves_core_zero() {
        let shape = shape(
            &["binance", "coinbase"],
            &["book", "features", "strategy", "risk", "router"],
        );
        let plan = plan(&shape, &PlacementConfig::default(), &cores(16)).unwrap();
        // Two source threads (multi-producer ring) and one thread per stage.
        assert_eq!(plan.threads.len(), 7);
        assert!(
            plan.threads.iter().all(|t| t.core != Some(0)),
            "core 0 is reserved"
        );
        assert_eq!(plan.threads[2].stages, 0..1);
        assert_eq!(plan.threads[6].stages, 4..5);
        check_invariants(&plan, &shape, 15);
    }

    #[test]
    fn auto_on_three_cores_groups_stages_contiguously() {
        let shape = shape(&["replay"], &["a", "b", "c", "d", "e"]);
        let plan = plan(&shape, &PlacementConfig::default(), &cores(3)).unwrap();
        assert_eq!(plan.threads.len(), 3);
        assert_eq!(plan.threads[1].stages, 0..3);
        assert_eq!(plan.threads[2].stages, 3..5);
        check_invariants(&plan, &shape, 3);
    }

    #[test]
    fn auto_with_many_cores_and_few_stages_uses_only_what_it_needs() {
        let shape = shape(&["synthetic"], &["passthrough", "counter"]);
        let plan = plan(&shape, &PlacementConfig::default(), &cores(16)).unwrap();
        assert_eq!(plan.threads.len(), 3);
        check_invariants(&plan, &shape, 15);
    }

    #[test]
    fn auto_without_pinning_leaves_cores_unset() {
        let shape = shape(&["synthetic"], &["counter"]);
        let config = PlacementConfig {
            pin: false,
            ..PlacementConfig::default()
        };
        let plan = plan(&shape, &config, &cores(2)).unwrap();
        assert!(plan.threads.iter().all(|t| t.core.is_none()));
    }

    fn manual(threads: &[(&str, &[&str], Option<usize>, WaitStrategy)]) -> PlacementConfig {
        PlacementConfig {
            mode: PlacementMode::Manual,
            threads: threads
                .iter()
                .map(|(name, run, core, wait)| ThreadConfig {
                    name: name.to_string(),
                    run: run.iter().map(|s| s.to_string()).collect(),
                    core: *core,
                    wait: *wait,
                })
                .collect(),
            ..PlacementConfig::default()
        }
    }

    #[test]
    fn manual_placement_is_validated() {
        use WaitStrategy::*;
        let shape = shape(&["a", "b"], &["x", "y", "z"]);
        let ok = manual(&[
            ("io-a", &["a"], Some(0), BusySpin),
            ("io-b", &["b"], None, Park { timeout_us: 100 }),
            ("engine", &["x", "y", "z"], Some(1), BusySpin),
        ]);
        let planned = plan(&shape, &ok, &cores(2)).unwrap();
        assert_eq!(planned.threads.len(), 3);
        check_invariants(&planned, &shape, 2);

        let too_many_spinners = manual(&[
            ("io", &["a", "b"], Some(0), BusySpin),
            ("x", &["x"], Some(1), BusySpin),
            ("yz", &["y", "z"], None, SpinHint),
        ]);
        let error = plan(&shape, &too_many_spinners, &cores(2)).unwrap_err();
        assert!(error.problem.contains("3 threads busy-spin"), "{error}");
        assert!(error.fix.contains("park"));

        let gap = manual(&[
            ("io", &["a", "b"], None, Yield),
            ("e", &["x", "z"], None, Yield),
            ("y", &["y"], None, Yield),
        ]);
        assert_eq!(
            plan(&shape, &gap, &cores(2)).unwrap_err().key,
            "placement.threads[1].run"
        );

        let unknown = manual(&[("io", &["a", "b", "q"], None, Yield)]);
        assert!(
            plan(&shape, &unknown, &cores(2))
                .unwrap_err()
                .fix
                .contains("\"x\"")
        );

        let missing = manual(&[("io", &["a", "b", "x", "y"], None, Yield)]);
        assert!(
            plan(&shape, &missing, &cores(2))
                .unwrap_err()
                .problem
                .contains("\"z\"")
        );

        let twice = manual(&[
            ("io", &["a", "b", "x"], None, Yield),
            ("e", &["x", "y", "z"], None, Yield),
        ]);
        assert!(
            plan(&shape, &twice, &cores(2))
                .unwrap_err()
                .problem
                .contains("already run")
        );

        let bad_core = manual(&[("all", &["a", "b", "x", "y", "z"], Some(7), Yield)]);
        assert_eq!(
            plan(&shape, &bad_core, &cores(2)).unwrap_err().key,
            "placement.threads[0].core"
        );

        let same_core = manual(&[
            ("io", &["a", "b"], Some(1), BusySpin),
            ("e", &["x", "y", "z"], Some(1), BusySpin),
        ]);
        assert!(
            plan(&shape, &same_core, &cores(2))
                .unwrap_err()
                .problem
                .contains("core 1")
        );

        let split_sources_fused = manual(&[
            ("io", &["a", "x", "y", "z"], None, Yield),
            ("io2", &["b"], None, Yield),
        ]);
        assert!(
            plan(&shape, &split_sources_fused, &cores(2))
                .unwrap_err()
                .problem
                .contains("ring")
        );

        let empty = manual(&[]);
        assert_eq!(
            plan(&shape, &empty, &cores(2)).unwrap_err().key,
            "placement.threads"
        );
    }
}
