//! Delta debugging (ddmin) of a failing run: over the events of its fault plan, over its
//! fault rates (network, lost/torn writes, I/O errors), and over its commands one by one,
//! while the same kind of violation still occurs (a smaller run that fails differently is
//! another bug, not this one). Removing a command also removes the cancels of its order,
//! which would otherwise stop meaning anything.

use crate::checker::Violation;
use crate::scenario::{self, Params, RunOptions, Scenario};
use engine::Command;
use sim::plan::{FaultPlan, PlannedFault, RecoveryFault};
use std::collections::BTreeSet;

/// The smallest failing run found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// Commands and plan events of the original failing run.
    pub before: (usize, usize),
    /// The reduced plan (its `keep_commands` selects the commands).
    pub plan: FaultPlan,
    /// The violation the reduced run still shows.
    pub violation: Violation,
    /// Runs spent.
    pub runs: usize,
}

/// Why a run cannot be shrunk.
#[derive(Clone, Debug, PartialEq)]
pub enum ShrinkError {
    /// It passes.
    Passes,
    /// Replaying its own plan does not reproduce the failure (a determinism bug).
    ReplayDiffers(String),
}

/// ddmin: the smallest sublist of `items` (at the granularity of single items) for which
/// `fails` holds, assuming it holds for `items`; stops when `budget` runs are spent.
pub fn ddmin<T: Clone>(items: Vec<T>, fails: &mut dyn FnMut(&[T]) -> bool, budget: &mut usize) -> Vec<T> {
    let mut items = items;
    let mut n = 2usize;
    while items.len() >= 2 && *budget > 0 {
        let chunk = items.len().div_ceil(n);
        let mut reduced = false;
        for start in (0..items.len()).step_by(chunk) {
            if *budget == 0 {
                break;
            }
            *budget -= 1;
            let complement: Vec<T> = items[..start]
                .iter()
                .chain(items[(start + chunk).min(items.len())..].iter())
                .cloned()
                .collect();
            if fails(&complement) {
                items = complement;
                n = n.saturating_sub(1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= items.len() {
                break;
            }
            n = (2 * n).min(items.len());
        }
    }
    if items.len() == 1 && *budget > 0 {
        *budget -= 1;
        if fails(&[]) {
            items.clear();
        }
    }
    items
}

/// Drops the cancels whose order is not placed by a kept command.
fn with_dependants(all: &[Command], keep: &[usize]) -> Vec<usize> {
    let placed: BTreeSet<u64> = keep
        .iter()
        .filter_map(|i| match all.get(*i) {
            Some(Command::Place(o)) => Some(o.order_id),
            _ => None,
        })
        .collect();
    let ever: BTreeSet<u64> =
        all.iter().filter_map(|c| if let Command::Place(o) = c { Some(o.order_id) } else { None }).collect();
    keep.iter()
        .copied()
        .filter(|i| match all.get(*i) {
            Some(Command::Cancel { order_id, .. }) => !ever.contains(order_id) || placed.contains(order_id),
            _ => true,
        })
        .collect()
}

/// The state of one shrink: the best (smallest failing) plan so far, the plan as that run
/// executed it (with the operations its crashes hit), and the runs left.
struct Shrinker<'a> {
    scenario: Scenario,
    seed: u64,
    params: &'a Params,
    kind: &'static str,
    all: Vec<Command>,
    /// The scenario's snapshot interval (0: no snapshots by count).
    snapshot_every: u64,
    /// The scenario's WAL segment size.
    segment_bytes: u64,
    best: FaultPlan,
    executed: FaultPlan,
    found: Violation,
    runs: usize,
    left: usize,
    tick: &'a dyn Fn(&Progress),
    /// The pass running.
    pass: &'static str,
}

/// What a shrink tells its caller after each run.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Runs so far.
    pub runs: usize,
    /// The pass that ran it.
    pub pass: &'static str,
    /// Whether the run still failed the same way (its plan is the new best).
    pub accepted: bool,
    /// Commands of the best plan.
    pub commands: usize,
    /// Faults (events, pinned I/O errors and named power-failure fates) of the best plan.
    pub faults: usize,
}

impl Shrinker<'_> {
    /// Runs `candidate`; when it fails the same way it becomes the best plan.
    fn try_plan(&mut self, candidate: FaultPlan) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        self.runs += 1;
        let opts = RunOptions { plan: Some(candidate.clone()), ..RunOptions::default() };
        let result = scenario::run_with(self.scenario, self.seed, self.params, &opts);
        let accepted = match (result.violation.filter(|v| v.kind() == self.kind), result.plan) {
            (Some(v), Some(executed)) => {
                (self.best, self.executed, self.found) = (candidate, executed, v);
                true
            }
            _ => false,
        };
        let (commands, faults, ..) = self.size();
        (self.tick)(&Progress { runs: self.runs, pass: self.pass, accepted, commands, faults });
        accepted
    }

    /// What the shrink makes smaller: commands, then faults, then the snapshot interval.
    fn size(&self) -> (usize, usize, u64, u64) {
        let b = &self.best;
        let snapshots = b.snapshot_every.unwrap_or(self.snapshot_every);
        let segments = b.segment_bytes.unwrap_or(self.segment_bytes);
        (b.keep_commands.as_ref().map_or(0, Vec::len), b.faults(), snapshots, segments)
    }

    /// The first candidate that still fails, if any.
    fn first_of(&mut self, candidates: Vec<FaultPlan>) -> bool {
        candidates.into_iter().any(|c| c != self.best && self.try_plan(c))
    }

    /// The plan with every crash pinned to the operation it hit, as the best run executed
    /// it (commands kept as they are).
    fn pinned(&self) -> FaultPlan {
        self.with_best_settings(self.executed.pinned())
    }

    /// `plan` (derived from the executed plan) with the best plan's commands, overrides and
    /// pinned I/O errors: the executed plan lists every error the rates drew, which are
    /// pinned only when the rates go off (see [`FaultPlan::errors_pinned`]).
    fn with_best_settings(&self, plan: FaultPlan) -> FaultPlan {
        let b = &self.best;
        FaultPlan {
            keep_commands: b.keep_commands.clone(),
            snapshot_every: b.snapshot_every,
            segment_bytes: b.segment_bytes,
            io_errors: b.io_errors.clone(),
            ..plan
        }
    }

    /// Crashes pinned to their operations (or, failing that, re-aimed and anchored)
    /// survive removed commands: try that first.
    fn pin(&mut self) {
        self.pass = "pin crashes to their operations";
        let (b, p) = (self.best.clone(), self.pinned());
        let drawn = FaultPlan { io_errors: self.executed.io_errors.clone(), ..p.clone() };
        let all_pinned = Some(drawn.errors_pinned()).filter(|q| !q.io_errors.is_empty());
        let candidates = all_pinned.into_iter().chain([p, b.reaimed().anchored(), b.anchored(), b.reaimed()]);
        self.first_of(candidates.collect());
    }

    /// Each crash pinned on its own (when pinning all at once changes the run too much):
    /// for a plan of at most `PIN_EACH_MAX` events, one run each.
    fn pin_each(&mut self) {
        self.pass = "pin one crash";
        if self.executed.events.len() > PIN_EACH_MAX {
            return;
        }
        // A pinned event moves to the front, so the events before `i` shift by one: the
        // next unpinned one is at `i + 1` either way.
        for i in 0..self.executed.events.len() {
            if self.left == 0 {
                break;
            }
            let candidate = self.with_best_settings(self.executed.pinned_one(i));
            if candidate.events != self.executed.events {
                self.try_plan(candidate);
            }
        }
    }

    /// The shortest failing prefix (binary search): cheap, and it makes every later run
    /// shorter. A prefix that passes is not taken, so a non-monotone failure costs runs only.
    fn prefix(&mut self) {
        self.pass = "shortest prefix";
        let kept = self.best.keep_commands.clone().unwrap_or_default();
        let (mut lo, mut hi) = (1usize, kept.len());
        while lo < hi && self.left > 0 {
            let mid = (lo + hi) / 2;
            let candidate = FaultPlan { keep_commands: Some(kept[..mid].to_vec()), ..self.best.clone() };
            if self.try_plan(candidate) { hi = mid } else { lo = mid + 1 }
        }
    }

    /// Only the events that happened in the best run (an event due after the run ended, a
    /// pinned crash whose operation never came, did nothing): one run that often removes
    /// most of a long plan before ddmin starts.
    fn happened(&mut self) {
        self.pass = "events that happened";
        let candidate = self.with_best_settings(self.executed.clone());
        if candidate.events.len() < self.best.events.len() {
            self.try_plan(candidate);
        }
    }

    /// ddmin over one list of the best plan: `set` puts a sublist into a candidate.
    fn ddmin_list<T: Clone>(&mut self, items: Vec<T>, set: &dyn Fn(&mut FaultPlan, &[T])) {
        let mut left = self.left;
        ddmin(
            items,
            &mut |sub| {
                let mut candidate = self.best.clone();
                set(&mut candidate, sub);
                self.try_plan(candidate)
            },
            &mut left,
        );
    }

    /// ddmin over the plan's events.
    fn events(&mut self) {
        self.pass = "ddmin events";
        self.ddmin_list(self.best.events.clone(), &|c, sub| c.events = sub.to_vec());
    }

    /// The fates each pinned power failure drew, named instead (first with the rates of
    /// lost and torn writes off, so that no other power failure draws any): a crash state
    /// that no longer moves when the draws before it change, so commands around it can go.
    fn fates(&mut self) {
        self.pass = "name power-failure fates";
        // Every pending write torn (or lost) alike is sturdier than a list of named items
        // (it does not depend on where each item falls): name fates only when the rate
        // classes could not be made uniform.
        let d = self.best.disk;
        let uniform = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)].contains(&(d.lose_write, d.tear_write));
        if uniform && (d.persist_entry_op == 0.0 || d.persist_entry_op == 1.0) {
            return;
        }
        let named = self.with_best_settings(self.executed.fates_named());
        if named.events == self.with_best_settings(self.executed.clone()).events {
            return;
        }
        let d = named.disk;
        let quiet = FaultPlan {
            disk: sim::fs::FaultConfig { lose_write: 0.0, tear_write: 0.0, persist_entry_op: 1.0, ..d },
            ..named.clone()
        };
        self.first_of(vec![quiet, named]);
    }

    /// ddmin over each pinned power failure's named fates (an item left out is kept).
    fn fate_items(&mut self) {
        self.pass = "ddmin named fates";
        for i in 0..self.best.events.len() {
            let Some(PlannedFault::CrashAt { fates: Some(fates), .. }) =
                self.best.events.get(i).map(|e| &e.fault)
            else {
                continue;
            };
            self.ddmin_list(fates.clone(), &|c, sub| {
                if let PlannedFault::CrashAt { fates, .. } = &mut c.events[i].fault {
                    *fates = Some(sub.to_vec());
                }
            });
        }
    }

    /// ddmin over the pinned I/O errors (once the rates that drew them are off).
    fn errors(&mut self) {
        self.pass = "ddmin I/O errors";
        let d = self.best.disk;
        if self.best.io_errors.is_empty() || d.eio_fsync + d.eio_read + d.eio_write + d.enospc_write > 0.0 {
            return;
        }
        self.ddmin_list(self.best.io_errors.clone(), &|c, sub| c.io_errors = sub.to_vec());
    }

    /// ddmin over single commands (removing an order removes its cancels).
    fn commands(&mut self) {
        self.pass = "ddmin commands";
        let keep = self.best.keep_commands.clone().unwrap_or_default();
        let all = self.all.clone();
        let mut left = self.left;
        let kept = ddmin(
            keep,
            &mut |sub| {
                self.try_plan(FaultPlan {
                    keep_commands: Some(with_dependants(&all, sub)),
                    ..self.best.clone()
                })
            },
            &mut left,
        );
        self.best.keep_commands = Some(with_dependants(&all, &kept));
    }

    /// Whole classes of small decisions off: the network's, the disk's.
    fn rates(&mut self) {
        self.pass = "rate classes";
        for class in rate_reductions(&self.best) {
            self.first_of(class);
        }
    }

    /// Each pinned crash as early in the service's life as still fails: the 1st operation
    /// of its kind and phase, else the 2nd, the 4th, … (a crash late in a long run needs
    /// that run; one early needs a few commands).
    fn lower_pins(&mut self) {
        self.pass = "crashes earlier";
        for i in 0..self.best.events.len() {
            let Some(&PlannedFault::CrashAt { nth, .. }) = self.best.events.get(i).map(|e| &e.fault) else {
                continue;
            };
            self.smallest(1, nth, &|best, lower| {
                let mut candidate = best.clone();
                if let PlannedFault::CrashAt { nth, .. } = &mut candidate.events[i].fault {
                    *nth = lower;
                }
                candidate
            });
        }
    }

    /// Tries `make(best, n)` for n = `from`, 2·`from`, 4·`from`, … below `below` and keeps
    /// the first that still fails: a number made small (an operation count, an interval, a
    /// size) in a logarithmic number of runs.
    fn smallest(&mut self, from: u64, below: u64, make: &dyn Fn(&FaultPlan, u64) -> FaultPlan) {
        let mut n = from.max(1);
        while n < below && self.left > 0 {
            if self.try_plan(make(&self.best, n)) {
                break;
            }
            n *= 2;
        }
    }

    /// Snapshots sooner: a failure that needs a snapshot (taking one, crashing in one,
    /// recovering from one) then needs fewer commands. The smallest interval among 1, 2,
    /// 4, … below the scenario's that still fails.
    fn snapshots(&mut self) {
        self.pass = "snapshot sooner";
        let current = self.best.snapshot_every.unwrap_or(self.snapshot_every);
        self.smallest(1, current, &|best, every| FaultPlan { snapshot_every: Some(every), ..best.clone() });
    }

    /// Smaller WAL segments: a failure that needs rotation or retention then needs fewer
    /// commands. The smallest of 256, 512, … bytes below the scenario's that still fails.
    fn segments(&mut self) {
        self.pass = "smaller segments";
        let current = self.best.segment_bytes.unwrap_or(self.segment_bytes);
        self.smallest(256, current, &|best, bytes| FaultPlan { segment_bytes: Some(bytes), ..best.clone() });
    }

    /// Each pinned I/O error as early in the service's life as still fails (as
    /// [`Shrinker::lower_pins`] does for crashes).
    fn lower_errors(&mut self) {
        self.pass = "I/O errors earlier";
        for i in 0..self.best.io_errors.len() {
            let nth = self.best.io_errors[i].at.nth;
            self.smallest(1, nth, &|best, lower| {
                let mut candidate = best.clone();
                candidate.io_errors[i].at.nth = lower;
                candidate
            });
        }
    }

    /// Each fault a recovery meets, dropped if the failure stays without it.
    fn recoveries(&mut self) {
        self.pass = "recovery faults";
        for i in 0..self.best.events.len() {
            let mut j = 0;
            while j < recovery_of(&self.best.events[i].fault).map_or(0, Vec::len) && self.left > 0 {
                let mut candidate = self.best.clone();
                if let Some(r) = recovery_mut(&mut candidate.events[i].fault) {
                    r.remove(j);
                }
                if !self.try_plan(candidate) {
                    j += 1;
                }
            }
        }
    }
}

fn recovery_of(f: &PlannedFault) -> Option<&Vec<RecoveryFault>> {
    match f {
        PlannedFault::Kill { recovery, .. }
        | PlannedFault::CrashPoint { recovery, .. }
        | PlannedFault::CrashAt { recovery, .. } => Some(recovery),
        PlannedFault::Partition { .. } => None,
    }
}

fn recovery_mut(f: &mut PlannedFault) -> Option<&mut Vec<RecoveryFault>> {
    match f {
        PlannedFault::Kill { recovery, .. }
        | PlannedFault::CrashPoint { recovery, .. }
        | PlannedFault::CrashAt { recovery, .. } => Some(recovery),
        PlannedFault::Partition { .. } => None,
    }
}

/// Plans with more events than this are not pinned one event at a time.
const PIN_EACH_MAX: usize = 32;

/// Shrinks the failing run (scenario, seed, params) within `budget` runs; `tick` hears
/// about each run.
pub fn shrink(
    scenario: Scenario,
    seed: u64,
    params: &Params,
    budget: usize,
    tick: &dyn Fn(&Progress),
) -> Result<Shrunk, ShrinkError> {
    let first = scenario::run(scenario, seed, params);
    let (Some(violation), Some(plan)) = (first.violation, first.plan) else {
        return Err(ShrinkError::Passes);
    };
    let cfg = crate::simrun::world_config(scenario, seed, first.commands, params);
    let (all, snapshot_every, segment_bytes) =
        (cfg.commands, cfg.storage.snapshots.every_entries, cfg.storage.wal.segment_bytes);
    let before = (all.len(), plan.faults());
    // The errors the rates drew stay draws until a pass pins them (with the rates off).
    let best = FaultPlan { keep_commands: Some((0..all.len()).collect()), io_errors: Vec::new(), ..plan };
    let mut s = Shrinker {
        scenario,
        seed,
        params,
        kind: violation.kind(),
        all,
        snapshot_every,
        segment_bytes,
        executed: best.clone(),
        best: best.clone(),
        found: violation.clone(),
        runs: 1,
        // The first run, and one kept for the final check.
        left: budget.saturating_sub(2),
        tick,
        pass: "replay",
    };
    if !s.try_plan(best) {
        return Err(ShrinkError::ReplayDiffers(format!("{scenario} seed {seed}: {violation}")));
    }
    // Cheap passes first (each a handful of runs), the ddmin passes after; then all of them
    // again while a round still makes the run smaller (one pass opens the way for another:
    // a pinned crash lets commands go, fewer commands let the crash move earlier).
    s.pin();
    s.prefix();
    s.happened();
    s.rates();
    s.fates();
    s.events();
    s.errors();
    s.fate_items();
    while s.left > 0 {
        let size = s.size();
        s.pin();
        s.pin_each();
        s.lower_pins();
        s.lower_errors();
        s.snapshots();
        s.segments();
        s.recoveries();
        s.prefix();
        s.happened();
        s.rates();
        s.fates();
        s.events();
        s.errors();
        s.fate_items();
        s.commands();
        if s.size() >= size {
            break;
        }
    }
    // The final plan must fail as reported: rerun it once.
    let last = s.best.clone();
    s.left = s.left.max(1);
    s.pass = "final check";
    s.try_plan(last);
    Ok(Shrunk { before, plan: s.best, violation: s.found, runs: s.runs })
}

/// For each class of rates (the network's; I/O errors; lost and torn writes at power
/// failure), the plans worth trying in order: the class off, then (for writes) every pending
/// write torn, every pending write lost. A fate drawn for every write alike does not move
/// when the draws before it change, so the events and commands around it can go.
fn rate_reductions(p: &FaultPlan) -> Vec<Vec<FaultPlan>> {
    let mut out = Vec::new();
    if p.network.loss > 0.0 || p.network.duplicate > 0.0 {
        out.push(vec![FaultPlan { network: sim::plan::NetworkFaults::default(), ..p.clone() }]);
    }
    let d = p.disk;
    if d.eio_fsync > 0.0 || d.eio_read > 0.0 || d.eio_write > 0.0 || d.enospc_write > 0.0 {
        out.push(vec![FaultPlan { disk: d.healed(), ..p.clone() }]);
    }
    if d.lose_write > 0.0 || d.tear_write > 0.0 || d.persist_entry_op < 1.0 {
        let writes = |lose, tear, persist| FaultPlan {
            disk: sim::fs::FaultConfig { lose_write: lose, tear_write: tear, persist_entry_op: persist, ..d },
            ..p.clone()
        };
        let mut tries = vec![writes(0.0, 0.0, 1.0)];
        if d.tear_write > 0.0 && d.tear_write < 1.0 {
            tries.push(writes(0.0, 1.0, 1.0));
        }
        if d.lose_write > 0.0 && d.lose_write < 1.0 {
            tries.push(writes(1.0, 0.0, 1.0));
        }
        out.push(tries);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_items_that_matter() {
        let items: Vec<u32> = (0..40).collect();
        let mut budget = 1_000;
        let mut fails = |s: &[u32]| s.contains(&7) && s.contains(&31);
        assert_eq!(ddmin(items, &mut fails, &mut budget), vec![7, 31]);
        assert!(budget < 1_000);
        let mut none = 0;
        let mut always = |_: &[u32]| true;
        assert_eq!(ddmin(vec![1, 2, 3], &mut always, &mut none), vec![1, 2, 3], "no budget, no change");
    }

    #[test]
    fn removing_a_place_removes_its_cancels() {
        use engine::{Order, OrderKind, Side};
        let order = Order {
            order_id: 9,
            user: 1,
            symbol: 0,
            side: Side::Buy,
            kind: OrderKind::Gtc,
            price: 10,
            qty: 1,
        };
        let all = vec![
            Command::Place(order),
            Command::Cancel { order_id: 9, user: 1 },
            Command::Cancel { order_id: 77, user: 1 },
        ];
        assert_eq!(with_dependants(&all, &[1, 2]), vec![2]);
        assert_eq!(with_dependants(&all, &[0, 1, 2]), vec![0, 1, 2]);
    }
}
