//! Shrinking an exploration's failure to a few commands and one crash state: ddmin over the
//! workload's commands while a crash state of the same class (the same coverage cell, an
//! fsync or any operation of the same cell failing, media damage after an acknowledgement, or the recorded
//! run itself) still fails with the same kind of violation. A try explores only the crash
//! states of that class, without nested recovery crashes unless the failure needed one,
//! so it costs the recoveries at a handful of operations, not a whole exploration.

use super::drive::{self, Setup, Storage};
use super::{ExploreConfig, ExploreFailure, Family, Only, cell, explore};
use std::collections::BTreeSet;

/// Where a failure's crash state lies, independent of its operation's place in the run.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Class {
    /// A crash point of this coverage cell (before or after).
    Point(String),
    /// An fsync of this coverage cell failing with EIO.
    Fsync(String),
    /// An operation of this coverage cell failing with its kind's I/O error.
    Io(String),
    /// A recovery after an acknowledgement with one of its operations failing.
    RecoveryIo,
    /// Media damage at rest after an acknowledgement.
    Media,
    /// The recorded run, judged as this cell (itself, or its snapshots' pace).
    Run(String),
    /// A run of its own with a fault of this family (the standby's lost reply or failover,
    /// a graceful stop).
    Standby(Family),
}

/// A shrunk failure of an exploration.
#[derive(Clone, Debug)]
pub struct ExploreShrunk {
    /// The exploration that reproduces it: the kept commands, its crash state (`--at`).
    pub config: ExploreConfig,
    /// The failure the kept commands give.
    pub failure: ExploreFailure,
    /// Commands and faults of the failure before shrinking.
    pub before: (usize, usize),
    /// Commands and faults after.
    pub after: (usize, usize),
    /// Explorations run (the first reproduction and the final one included).
    pub runs: usize,
}

/// Why a failure could not be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// Exploring only the failure's class of crash state did not reproduce it.
    NotReproduced(String),
}

impl std::fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShrinkError::NotReproduced(what) => {
                write!(f, "exploring only its class of crash state does not reproduce {what}")
            }
        }
    }
}

/// The faults of a failing crash state: the crash (or failed fsync, or strike), each
/// pending write or directory operation that deviated from "all kept", each crash inside
/// a recovery. A failure of the run itself has none.
pub fn faults(f: &ExploreFailure) -> usize {
    let all_lost = usize::from(f.family == Family::CrashPoint && f.resolution == "all lost");
    let nested = f.recovery_crash.as_deref().map_or(0, |r| r.matches("recovery crashed").count());
    usize::from(f.family != Family::Run) + deviations(f) + all_lost + nested
}

/// The single deviations from "all kept" that `f`'s resolution combines (the depth that
/// explores it; "all lost" is explored at every depth).
fn deviations(f: &ExploreFailure) -> usize {
    match f.resolution.as_str() {
        _ if f.family != Family::CrashPoint => 0,
        "all kept" | "all lost" => 0,
        label => label.split("; ").count(),
    }
}

/// Storage settings a shrink tries after removing commands, in this order: with tiny
/// segments, a snapshot after every entry and followers pulling after every command, rotation,
/// pruning and retention need a command or two, not dozens. The last two keep the
/// snapshot intervals: a follower's commit that no snapshot follows needs them.
const SMALLER: [Storage; 9] = [
    Storage { segment_bytes: Some(64), snapshot_every: Some(1), pull_every: Some(1) },
    Storage { segment_bytes: Some(64), snapshot_every: Some(1), pull_every: Some(2) },
    Storage { segment_bytes: Some(64), snapshot_every: Some(1), pull_every: None },
    Storage { segment_bytes: Some(64), snapshot_every: Some(2), pull_every: None },
    Storage { segment_bytes: Some(64), snapshot_every: None, pull_every: None },
    Storage { segment_bytes: None, snapshot_every: Some(1), pull_every: None },
    Storage { segment_bytes: None, snapshot_every: Some(2), pull_every: None },
    Storage { segment_bytes: Some(64), snapshot_every: None, pull_every: Some(1) },
    Storage { segment_bytes: None, snapshot_every: None, pull_every: Some(1) },
];

/// Shrinks `failure`, found by exploring `cfg`, spending at most `budget` explorations;
/// `tick(runs, commands)` reports progress (explorations run, commands in the best so far).
pub fn shrink(
    cfg: &ExploreConfig,
    failure: &ExploreFailure,
    budget: usize,
    tick: &dyn Fn(usize, usize),
) -> Result<ExploreShrunk, ShrinkError> {
    let all: Vec<usize> = cfg.keep.clone().unwrap_or_else(|| (0..cfg.workload().commands.len()).collect());
    let before = (all.len(), faults(failure));
    // Only what the failure needed: its deviations, a recovery crash if it had one.
    let mut base = cfg.clone();
    base.depth = cfg.depth.min(deviations(failure));
    if failure.recovery_crash.is_none() {
        base.recovery_depth = 0;
    }
    let kind = failure.violation.kind();
    let mut search = Search { class: class_of(cfg, failure), kind, base, runs: 0, left: budget, tick };
    let not_reproduced = |what: &str| ShrinkError::NotReproduced(format!("{kind} {what}"));
    if search.failing(&all).is_none() {
        return Err(not_reproduced(&format!("({} {})", failure.family.name(), failure.op)));
    }
    let mut keep = search.ddmin(all);
    // Smaller settings are kept only when they let commands go.
    let defaults = search.base.storage;
    let mut tried_settings = Vec::new();
    for storage in SMALLER.into_iter().map(|s| s.smallest(defaults)) {
        if storage == defaults || tried_settings.contains(&storage) {
            continue;
        }
        tried_settings.push(storage);
        let tried = ExploreConfig { storage, ..search.base.clone() };
        if search.left <= 2 || search.failing_with(&tried, &keep).is_none() {
            continue;
        }
        let saved = std::mem::replace(&mut search.base, tried);
        let fewer = search.ddmin(keep.clone());
        if fewer.len() < keep.len() {
            keep = fewer;
            break;
        }
        search.base = saved;
    }
    keep = search.pairs(keep);
    let shrunk = search.failing(&keep).ok_or_else(|| not_reproduced("with the commands kept"))?;
    let mut config = search.base.clone();
    let ops = (shrunk.family != Family::Run).then(|| BTreeSet::from([shrunk.op]));
    config.only = Some(Only { ops, family: Some(shrunk.family) });
    config.keep = Some(keep.clone());
    Ok(ExploreShrunk {
        config,
        before,
        after: (keep.len(), faults(&shrunk)),
        failure: shrunk,
        runs: search.runs,
    })
}

/// One shrink's state: what must keep failing, the exploration tried, the budget.
struct Search<'a> {
    class: Class,
    kind: &'static str,
    base: ExploreConfig,
    runs: usize,
    left: usize,
    tick: &'a dyn Fn(usize, usize),
}

impl Search<'_> {
    /// The first failure of the kind sought, exploring the class with only `keep`.
    fn failing(&mut self, keep: &[usize]) -> Option<ExploreFailure> {
        let base = self.base.clone();
        self.failing_with(&base, keep)
    }

    /// The same, with the storage settings of `base`.
    fn failing_with(&mut self, base: &ExploreConfig, keep: &[usize]) -> Option<ExploreFailure> {
        self.runs += 1;
        self.left = self.left.saturating_sub(1);
        let failures = focused(base, keep, &self.class);
        (self.tick)(self.runs, keep.len());
        failures.into_iter().find(|f| f.violation.kind() == self.kind)
    }

    /// Removes two commands at once while that still fails, then ddmin again: ddmin leaves
    /// no single command removable, but a deposit and the order it funds may go only
    /// together.
    fn pairs(&mut self, mut keep: Vec<usize>) -> Vec<usize> {
        'again: loop {
            for a in 0..keep.len() {
                for b in a + 1..keep.len() {
                    if self.left <= 1 {
                        return keep;
                    }
                    let without: Vec<usize> = keep
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != a && *i != b)
                        .map(|(_, c)| *c)
                        .collect();
                    if self.failing(&without).is_some() {
                        keep = self.ddmin(without);
                        continue 'again;
                    }
                }
            }
            return keep;
        }
    }

    /// ddmin over the commands, leaving one exploration for the final check (`failing`
    /// counts the runs; ddmin's own budget only bounds them).
    fn ddmin(&mut self, keep: Vec<usize>) -> Vec<usize> {
        let mut budget = self.left.saturating_sub(1);
        crate::shrink::ddmin(keep, &mut |k| self.failing(k).is_some(), &mut budget)
    }
}

/// The class of `failure`'s crash state, read from the operation log of the run that found it.
fn class_of(cfg: &ExploreConfig, failure: &ExploreFailure) -> Class {
    let ops = || drive::record(&setup_of(cfg, cfg.keep.as_deref()), None, &|_, _| {}).ops;
    match failure.family {
        Family::CrashPoint => Class::Point(failure.cell.clone()),
        Family::FsyncError => Class::Fsync(cell(&ops(), failure.op, false).unwrap_or_default()),
        Family::IoError if failure.cell.starts_with(super::errors::RECOVERY_CELL) => Class::RecoveryIo,
        Family::IoError => Class::Io(cell(&ops(), failure.op, false).unwrap_or_default()),
        Family::Media => Class::Media,
        Family::Run => Class::Run(failure.cell.clone()),
        Family::LostReply | Family::Failover | Family::Stop => Class::Standby(failure.family),
    }
}

/// The workload and storage of `cfg`, with only the commands at `keep`.
fn setup_of(cfg: &ExploreConfig, keep: Option<&[usize]>) -> Setup {
    cfg.workload().keeping(keep).with_storage(cfg.storage)
}

/// The failures, with only the commands at `keep`, of the crash states of `class`.
fn focused(base: &ExploreConfig, keep: &[usize], class: &Class) -> Vec<ExploreFailure> {
    let drive::Recorded { ops, progress, .. } = drive::record(&setup_of(base, Some(keep)), None, &|_, _| {});
    let matching = |want: &str, timings: &[bool]| -> Option<BTreeSet<u64>> {
        let at = |op: &u64| timings.iter().any(|before| cell(&ops, *op, *before).as_deref() == Some(want));
        Some((1..=ops.len() as u64).filter(at).collect())
    };
    let (ops_wanted, family) = match class {
        Class::Point(c) => (matching(c, &[false, true]), Family::CrashPoint),
        Class::Fsync(c) => (matching(c, &[false]), Family::FsyncError),
        Class::Io(c) => (matching(c, &[false]), Family::IoError),
        Class::RecoveryIo => (Some(progress.acked_at.iter().copied().collect()), Family::IoError),
        Class::Media => (Some(progress.acked_at.iter().copied().collect()), Family::Media),
        Class::Run(_) => (Some(BTreeSet::new()), Family::Run),
        Class::Standby(family) => (None, *family),
    };
    let only = Only { ops: ops_wanted, family: Some(family) };
    let cfg = ExploreConfig { keep: Some(keep.to_vec()), only: Some(only), ..base.clone() };
    let report = explore(&cfg, &|_, _| {});
    // Only the class's own: a crash point explored at an operation is judged at both
    // timings, and the recorded run's failure is reported whatever is explored.
    report.failures.into_iter().filter(|f| in_class(f, class, &ops)).collect()
}

/// Whether `f` is a failure of a crash state of `class` (`ops`: its run's operation log).
fn in_class(f: &ExploreFailure, class: &Class, ops: &[sim::fs::LoggedOp]) -> bool {
    match class {
        Class::Point(c) => f.family == Family::CrashPoint && f.cell == *c,
        Class::Fsync(c) => f.family == Family::FsyncError && cell(ops, f.op, false).as_deref() == Some(c),
        Class::Io(c) => {
            f.family == Family::IoError
                && !f.cell.starts_with(super::errors::RECOVERY_CELL)
                && cell(ops, f.op, false).as_deref() == Some(c)
        }
        Class::RecoveryIo => f.family == Family::IoError && f.cell.starts_with(super::errors::RECOVERY_CELL),
        Class::Media => f.family == Family::Media,
        // The recorded run's snapshots and its own failure are two classes of one family.
        Class::Run(cell) => f.family == Family::Run && f.cell == *cell,
        Class::Standby(family) => f.family == *family,
    }
}
