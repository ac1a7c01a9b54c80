//! Delta debugging (ddmin) of a failing run: over the events of its fault plan, over its
//! fault rates (network, lost/torn writes, I/O errors), and over its commands one by one,
//! while the same kind of violation still occurs (a smaller run that fails differently is
//! another bug, not this one). Removing a command also removes the cancels of its order,
//! which would otherwise stop meaning anything.

use crate::checker::Violation;
use crate::scenario::{self, Params, RunOptions, Scenario};
use engine::Command;
use sim::plan::FaultPlan;
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

/// Shrinks the failing run (scenario, seed, params) within `budget` runs; `tick` hears
/// about each run (runs so far, commands and events of the best plan).
pub fn shrink(
    scenario: Scenario,
    seed: u64,
    params: &Params,
    budget: usize,
    tick: &dyn Fn(usize, usize, usize),
) -> Result<Shrunk, ShrinkError> {
    let first = scenario::run(scenario, seed, params);
    let (Some(violation), Some(plan)) = (first.violation, first.plan) else {
        return Err(ShrinkError::Passes);
    };
    let kind = violation.kind();
    let all: Vec<Command> = crate::simrun::world_config(scenario, seed, first.commands, params).commands;
    let mut runs = 1usize;
    let mut best = FaultPlan { keep_commands: Some((0..all.len()).collect()), ..plan };
    let before = (all.len(), best.events.len());
    let attempt = |p: &FaultPlan, runs: &mut usize| -> Option<Violation> {
        *runs += 1;
        let opts = RunOptions { plan: Some(p.clone()), keep_trace: false };
        let v = scenario::run_with(scenario, seed, params, &opts).violation.filter(|v| v.kind() == kind);
        tick(*runs, p.keep_commands.as_ref().map_or(0, Vec::len), p.events.len());
        v
    };
    let Some(mut best_violation) = attempt(&best, &mut runs) else {
        return Err(ShrinkError::ReplayDiffers(format!("{scenario} seed {seed}: {violation}")));
    };
    let mut left = budget.saturating_sub(runs);
    // Events anchored to the workload's progress and crash points aimed at the operation
    // they hit survive removed commands.
    for candidate in [best.reaimed().anchored(), best.anchored(), best.reaimed()] {
        if candidate == best || left == 0 {
            continue;
        }
        left -= 1;
        if let Some(v) = attempt(&candidate, &mut runs) {
            (best, best_violation) = (candidate, v);
            break;
        }
    }
    // The shortest failing prefix first (binary search): cheap, and it makes every later run
    // shorter. A prefix that passes is not taken, so a non-monotone failure only costs runs.
    let (mut lo, mut hi) = (1usize, all.len());
    while lo < hi && left > 0 {
        left -= 1;
        let mid = (lo + hi) / 2;
        let candidate = FaultPlan { keep_commands: Some((0..mid).collect()), ..best.clone() };
        match attempt(&candidate, &mut runs) {
            Some(v) => (best, best_violation, hi) = (candidate, v, mid),
            None => lo = mid + 1,
        }
    }
    let mut found = best_violation.clone();
    // The plan's events.
    let events = best.events.clone();
    let kept = ddmin(
        events,
        &mut |sub| {
            let candidate = FaultPlan { events: sub.to_vec(), ..best.clone() };
            attempt(&candidate, &mut runs).map(|v| found = v).is_some()
        },
        &mut left,
    );
    best.events = kept;
    // Whole classes of small decisions: the network's, the disk's.
    for off in rate_reductions(&best) {
        if left == 0 {
            break;
        }
        left -= 1;
        if let Some(v) = attempt(&off, &mut runs) {
            (best, found) = (off, v);
        }
    }
    // Single commands.
    let keep = best.keep_commands.clone().unwrap_or_default();
    let kept = ddmin(
        keep,
        &mut |sub| {
            let candidate = FaultPlan { keep_commands: Some(with_dependants(&all, sub)), ..best.clone() };
            attempt(&candidate, &mut runs).map(|v| found = v).is_some()
        },
        &mut left,
    );
    best.keep_commands = Some(with_dependants(&all, &kept));
    // Fewer commands may need fewer faults.
    let events = best.events.clone();
    best.events = ddmin(
        events,
        &mut |sub| {
            let candidate = FaultPlan { events: sub.to_vec(), ..best.clone() };
            attempt(&candidate, &mut runs).map(|v| found = v).is_some()
        },
        &mut left,
    );
    // The final plan must fail as reported: rerun it once.
    let last = attempt(&best, &mut runs).unwrap_or(found);
    Ok(Shrunk { before, plan: best, violation: last, runs })
}

/// Plans with one class of rates turned off, in the order worth trying.
fn rate_reductions(p: &FaultPlan) -> Vec<FaultPlan> {
    let mut out = Vec::new();
    if p.network.loss > 0.0 || p.network.duplicate > 0.0 {
        let mut q = p.clone();
        q.network = sim::plan::NetworkFaults::default();
        out.push(q);
    }
    let d = p.disk;
    if d.eio_fsync > 0.0 || d.eio_read > 0.0 || d.eio_write > 0.0 || d.enospc_write > 0.0 {
        let mut q = p.clone();
        q.disk = d.healed();
        out.push(q);
    }
    if d.lose_write > 0.0 || d.tear_write > 0.0 || d.persist_entry_op < 1.0 {
        let mut q = p.clone();
        q.disk = sim::fs::FaultConfig { lose_write: 0.0, tear_write: 0.0, persist_entry_op: 1.0, ..q.disk };
        out.push(q);
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
