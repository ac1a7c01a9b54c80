//! Delta debugging (ddmin) of a failing run: over the events of its fault plan, over its
//! fault rates (network, lost/torn writes, I/O errors), and over its commands one by one,
//! while the same kind of violation still occurs (a smaller run that fails differently is
//! another bug, not this one). Removing a command also removes the cancels of its order,
//! which would otherwise stop meaning anything.

use crate::checker::Violation;
use crate::scenario::{self, Params, RunOptions, Scenario};
use engine::{Command, UserId};
use sim::fs::{OpKind, Phase};
use sim::plan::{FaultPlan, OpCounts, PlannedFault, RecoveryFault, Service};
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
/// `fails` holds, assuming it holds for `items`; stops when `budget` runs are spent. After a
/// removal the next round starts at the place of the removed chunk rather than at the
/// front (Zeller's ddmin starts over): at the granularity of single items one sweep then
/// costs a run per item, not a run per item for every item removed.
pub fn ddmin<T: Clone>(items: Vec<T>, fails: &mut dyn FnMut(&[T]) -> bool, budget: &mut usize) -> Vec<T> {
    let mut items = items;
    let mut n = 2usize;
    let mut resume = 0usize;
    while items.len() >= 2 && *budget > 0 {
        let chunk = items.len().div_ceil(n);
        let chunks = items.len().div_ceil(chunk);
        let first = (resume / chunk).min(chunks - 1);
        let mut reduced = false;
        for start in (0..chunks).map(|k| (first + k) % chunks * chunk) {
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
                resume = start;
                reduced = true;
                break;
            }
        }
        if !reduced {
            resume = 0;
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
    /// The scenario's number of clients.
    clients: usize,
    best: FaultPlan,
    executed: FaultPlan,
    /// The best run's operations by service, kind and phase.
    counts: OpCounts,
    /// The last run's (accepted or not): what a re-aimed crash is scaled to.
    last_counts: OpCounts,
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
        self.last_counts = result.op_counts;
        let accepted = match (result.violation.filter(|v| v.kind() == self.kind), result.plan) {
            (Some(v), Some(executed)) => {
                (self.best, self.executed, self.found) = (candidate, executed, v);
                self.counts = self.last_counts.clone();
                true
            }
            _ => false,
        };
        let (commands, faults, ..) = self.size();
        (self.tick)(&Progress { runs: self.runs, pass: self.pass, accepted, commands, faults });
        accepted
    }

    /// What the shrink makes smaller: commands, then faults, then the snapshot interval,
    /// the segment size and the clients.
    fn size(&self) -> (usize, usize, u64, u64, usize) {
        let b = &self.best;
        let snapshots = b.snapshot_every.unwrap_or(self.snapshot_every);
        let segments = b.segment_bytes.unwrap_or(self.segment_bytes);
        let clients = b.clients.unwrap_or(self.clients);
        (b.keep_commands.as_ref().map_or(0, Vec::len), b.faults(), snapshots, segments, clients)
    }

    /// Runs the best plan with `keep` as its commands; when that no longer fails, once more
    /// with every pinned crash and I/O error moved along: to the same share of its
    /// operations in the shorter run (the 5th of 10 retention removals becomes the 2nd of
    /// 4). Pinned to "the nth since the start", a crash otherwise falls off the end of a
    /// run that lost commands, or lands on another batch.
    fn try_commands(&mut self, keep: Vec<usize>) -> bool {
        self.try_moved(FaultPlan { keep_commands: Some(keep), ..self.best.clone() })
    }

    /// Runs `candidate`, then (if it passed) once more with its pinned crashes and I/O
    /// errors rescaled to the run it made (see [`Shrinker::try_commands`]).
    fn try_moved(&mut self, candidate: FaultPlan) -> bool {
        if self.try_plan(candidate.clone()) {
            return true;
        }
        match rescaled(&candidate, &self.counts, &self.last_counts) {
            Some(moved) => self.try_plan(moved),
            None => false,
        }
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
            clients: b.clients,
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
            // Crashes stay where they are here: moved along, a prefix search takes the first
            // short run that fails, often on another path that shrinks less.
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
        if self.best.io_errors.is_empty() || d.has_error_rates() {
            return;
        }
        self.ddmin_list(self.best.io_errors.clone(), &|c, sub| c.io_errors = sub.to_vec());
    }

    /// ddmin over users: a user's deposits, withdrawals, orders and cancels go together (an
    /// order without its owner's deposits is rejected, deposits without orders are noise),
    /// so a run of thousands of commands loses whole traders in a few runs.
    fn users(&mut self) {
        self.pass = "ddmin users";
        let keep = self.best.keep_commands.clone().unwrap_or_default();
        let all = self.all.clone();
        let users: BTreeSet<UserId> = keep.iter().filter_map(|i| all.get(*i)).map(user_of).collect();
        let mut left = self.left;
        ddmin(
            users.into_iter().collect(),
            &mut |sub| {
                let kept =
                    keep.iter().copied().filter(|i| all.get(*i).is_some_and(|c| sub.contains(&user_of(c))));
                self.try_commands(kept.collect())
            },
            &mut left,
        );
    }

    /// ddmin over single commands (removing an order removes its cancels).
    fn commands(&mut self) {
        self.pass = "ddmin commands";
        let keep = self.best.keep_commands.clone().unwrap_or_default();
        let all = self.all.clone();
        let mut left = self.left;
        ddmin(keep, &mut |sub| self.try_commands(with_dependants(&all, sub)), &mut left);
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
            self.smallest(1, nth, Moves::Nothing, &|best, lower| {
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
    /// A setting of the whole run (`Moves::Crashes`) changes how many operations of each
    /// kind it does, so each try is also made with the crashes moved along.
    fn smallest(&mut self, from: u64, below: u64, moves: Moves, make: &dyn Fn(&FaultPlan, u64) -> FaultPlan) {
        let mut n = from.max(1);
        while n < below && self.left > 0 {
            let candidate = make(&self.best, n);
            let failed = match moves {
                Moves::Crashes => self.try_moved(candidate),
                Moves::Nothing => self.try_plan(candidate),
            };
            if failed {
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
        self.smallest(1, current, Moves::Crashes, &|best, every| FaultPlan {
            snapshot_every: Some(every),
            ..best.clone()
        });
    }

    /// Smaller WAL segments: a failure that needs rotation or retention then needs fewer
    /// commands. The smallest of 64, 128, … bytes below the scenario's that still fails.
    fn segments(&mut self) {
        self.pass = "smaller segments";
        let current = self.best.segment_bytes.unwrap_or(self.segment_bytes);
        self.smallest(64, current, Moves::Crashes, &|best, bytes| FaultPlan {
            segment_bytes: Some(bytes),
            ..best.clone()
        });
    }

    /// Fewer clients: one sends the commands in their order, so an order no longer races
    /// the deposit it needs and single commands can go. Tried as is, then with the crashes
    /// moved to the same share of the (differently batched) run.
    fn clients(&mut self) {
        self.pass = "fewer clients";
        let current = self.best.clients.unwrap_or(self.clients) as u64;
        self.smallest(1, current, Moves::Crashes, &|best, n| FaultPlan {
            clients: Some(n as usize),
            ..best.clone()
        });
    }

    /// Each pinned I/O error as early in the service's life as still fails (as
    /// [`Shrinker::lower_pins`] does for crashes).
    fn lower_errors(&mut self) {
        self.pass = "I/O errors earlier";
        for i in 0..self.best.io_errors.len() {
            let nth = self.best.io_errors[i].at.nth;
            self.smallest(1, nth, Moves::Nothing, &|best, lower| {
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
        | PlannedFault::CrashAt { recovery, .. }
        | PlannedFault::Stop { recovery, .. } => Some(recovery),
        PlannedFault::Partition { .. } => None,
    }
}

fn recovery_mut(f: &mut PlannedFault) -> Option<&mut Vec<RecoveryFault>> {
    match f {
        PlannedFault::Kill { recovery, .. }
        | PlannedFault::CrashPoint { recovery, .. }
        | PlannedFault::CrashAt { recovery, .. }
        | PlannedFault::Stop { recovery, .. } => Some(recovery),
        PlannedFault::Partition { .. } => None,
    }
}

/// What a try of a smaller setting also moves.
#[derive(Clone, Copy)]
enum Moves {
    /// Nothing: the setting is a crash's own place.
    Nothing,
    /// The pinned crashes and I/O errors, to the same share of the run's operations.
    Crashes,
}

/// The user a command belongs to.
fn user_of(c: &Command) -> UserId {
    match *c {
        Command::Deposit { user, .. } | Command::Withdraw { user, .. } | Command::Cancel { user, .. } => user,
        Command::Place(o) => o.user,
    }
}

/// `plan` with each pinned crash and I/O error at the same share of its service's
/// operations of its kind and phase in a run that did `now` as in the one that did `then`
/// (rounded, at least the first, at most the last); `None` when nothing moves.
fn rescaled(plan: &FaultPlan, then: &OpCounts, now: &OpCounts) -> Option<FaultPlan> {
    let scale = |service: Service, kind: OpKind, phase: Phase, nth: u64| {
        let count = |c: &OpCounts| c.get(&service).and_then(|m| m.get(&(kind, phase))).copied().unwrap_or(0);
        let (was, is) = (count(then), count(now));
        if was == 0 || is == 0 {
            return nth;
        }
        let share = (u128::from(nth) * u128::from(is) + u128::from(was / 2)) / u128::from(was);
        u64::try_from(share).unwrap_or(u64::MAX).clamp(1, is)
    };
    let mut out = plan.clone();
    for e in &mut out.events {
        if let PlannedFault::CrashAt { service, kind, phase, nth, .. } = &mut e.fault {
            *nth = scale(*service, *kind, *phase, *nth);
        }
    }
    for e in &mut out.io_errors {
        e.at.nth = scale(e.service, e.at.kind, e.at.phase, e.at.nth);
    }
    (out != *plan).then_some(out)
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
    // The workload the run was given (the plan's command indices point into it); not the
    // count sent, which includes the deposits (and any hostile commands mixed in).
    let commands = params.commands.unwrap_or(scenario.default_commands());
    let cfg = crate::simrun::world_config(scenario, seed, commands, params);
    let (all, snapshot_every, segment_bytes, clients) =
        (cfg.commands, cfg.storage.snapshots.every_entries, cfg.storage.wal.segment_bytes, cfg.clients);
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
        clients,
        executed: best.clone(),
        best: best.clone(),
        counts: OpCounts::new(),
        last_counts: OpCounts::new(),
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
        s.users();
        s.commands();
        if s.size() >= size {
            // Last resort, for a run that stopped shrinking: one client changes every
            // interleaving, which helps a failure that needs an order to follow its
            // deposits and hurts one that needs a particular race.
            let clients = s.best.clients;
            s.clients();
            if s.best.clients == clients {
                break;
            }
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
    if d.has_error_rates() {
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
    fn ddmin_resumes_where_it_removed_so_scattered_items_cost_a_sweep_not_a_square() {
        // Half the items matter, one in two: the granularity of single items is reached
        // early and every removal is one item. Starting over after each costs ~1,500 runs.
        let mut budget = 100_000;
        let mut fails = |s: &[u32]| (0..100).step_by(2).all(|i| s.contains(&i));
        let kept = ddmin((0..100).collect(), &mut fails, &mut budget);
        assert_eq!(kept, (0..100).step_by(2).collect::<Vec<u32>>());
        let runs = 100_000 - budget;
        assert!(runs < 400, "{runs} runs");
    }

    #[test]
    fn a_pinned_crash_and_error_move_to_the_same_share_of_a_shorter_run() {
        use sim::fs::{Death, FaultConfig, IoErrorAt, IoFailure};
        use sim::plan::{NetworkFaults, PlanEvent, PlannedIoError};
        let crash = PlannedFault::CrashAt {
            service: Service::Ubscore,
            kind: OpKind::Remove,
            phase: Phase::Retention,
            nth: 5,
            before: true,
            death: Death::PowerFailure,
            down_ms: 10,
            recovery: Vec::new(),
            fates: None,
            drawn: Vec::new(),
        };
        let mut plan = FaultPlan::new(FaultConfig::default(), NetworkFaults::default());
        plan.events.push(PlanEvent { at_ms: 0, fault: crash, after_ack: None, last_ack: None });
        let at = IoErrorAt {
            kind: OpKind::Fsync,
            phase: Phase::GroupCommit,
            nth: 30,
            failure: IoFailure::FsyncEio,
        };
        plan.io_errors.push(PlannedIoError { service: Service::Matching, at });
        let counts = |removes: u64, fsyncs: u64| -> OpCounts {
            let mut c = OpCounts::new();
            c.entry(Service::Ubscore).or_default().insert((OpKind::Remove, Phase::Retention), removes);
            c.entry(Service::Matching).or_default().insert((OpKind::Fsync, Phase::GroupCommit), fsyncs);
            c
        };
        let moved = rescaled(&plan, &counts(10, 40), &counts(4, 8)).expect("both move");
        let PlannedFault::CrashAt { nth, .. } = moved.events[0].fault else { panic!("still a pinned crash") };
        assert_eq!((nth, moved.io_errors[0].at.nth), (2, 6), "5 of 10 -> 2 of 4; 30 of 40 -> 6 of 8");
        let first = rescaled(&plan, &counts(10, 40), &counts(1, 1)).expect("both move");
        let PlannedFault::CrashAt { nth, .. } = first.events[0].fault else { panic!("still a pinned crash") };
        assert_eq!((nth, first.io_errors[0].at.nth), (1, 1), "never before the first");
        assert_eq!(rescaled(&plan, &counts(10, 40), &counts(10, 40)), None, "same counts, nothing moves");
        assert_eq!(rescaled(&plan, &counts(10, 40), &OpCounts::new()), None, "no such operation: left as is");
        let mut huge = plan.clone();
        huge.io_errors[0].at.nth = u64::MAX;
        let moved = rescaled(&huge, &counts(10, 40), &counts(4, 8)).expect("moves");
        assert_eq!(moved.io_errors[0].at.nth, 8, "no overflow: clamped to the last");
    }

    #[test]
    fn a_user_owns_all_four_kinds_of_command() {
        use engine::{Order, OrderKind, Side};
        let order = Order {
            order_id: 9,
            user: 3,
            symbol: 0,
            side: Side::Buy,
            kind: OrderKind::Gtc,
            price: 1,
            qty: 1,
        };
        let commands = [
            Command::Deposit { request_id: 1, user: 3, asset: 1, amount: 5 },
            Command::Withdraw { request_id: 2, user: 3, asset: 1, amount: 5 },
            Command::Place(order),
            Command::Cancel { order_id: 9, user: 3 },
        ];
        assert!(commands.iter().all(|c| user_of(c) == 3));
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
