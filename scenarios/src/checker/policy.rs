//! The storage policy, judged from the simulator's record: a service that logs many times
//! its snapshot interval takes snapshots at about that pace, neither far fewer (a trigger
//! that never fires, a counter lost at a restart) nor far more (one that fires at every
//! commit). No state is wrong either way; recoveries replay more or snapshots cost more,
//! and a policy the engine does not follow is a bug all the same.

use super::Violation;
use sim::fs::{OpKind, Phase};
use sim::plan::Service;
use sim::world::{FinalState, WorldResult};

/// How many times the interval a stretch of the log may go without a snapshot on average:
/// a snapshot cut short by a crash is taken again after the restart, so a slower pace than
/// this is a trigger that does not fire, not bad luck.
const SLOWEST: u64 = 4;

/// Snapshots UBSCore and the matching engine took (renames into place attempted, as the
/// simulator counted them: one cut short forces a restart, which widens the bounds) against what their interval allows for the entries their logs hold
/// at the end (as recovered and judged against the model).
pub fn check_snapshots(result: &WorldResult, f: &FinalState) -> Result<(), Violation> {
    let policy = result.storage.snapshots;
    if policy.every_entries == 0 {
        return Ok(());
    }
    let mut logs = vec![(Service::Ubscore, f.ubs.wal().next_seq() - 1)];
    // With a replica, the matching engine may be promoted onto another disk part-way.
    if result.replica.is_none() {
        logs.push((Service::Matching, f.me.wal().next_seq() - 1));
    }
    let stops = result.faults.get("graceful_stop").copied().unwrap_or(0);
    for (service, logged) in logs {
        let taken = result
            .op_counts
            .get(&service)
            .and_then(|c| c.get(&(OpKind::Rename, Phase::SnapshotRename)))
            .copied()
            .unwrap_or(0);
        // Every life begins with a recovery, and the final state is recovered too (this
        // check runs only once it was): neither the first nor the last is a restart.
        let recoveries = result.recoveries.iter().filter(|r| r.node == service.name()).count() as u64;
        let restarts = recoveries.saturating_sub(2);
        let bounds = Bounds::of(policy, logged, restarts, stops, result.sim_time.as_millis() as u64);
        if let Some(detail) = bounds.judge(taken) {
            return Err(Violation::PolicyBroken { service: service.name().to_string(), detail });
        }
    }
    Ok(())
}

/// What is wrong with `taken` snapshots for `logged` entries under `policy` in a life of
/// `restarts` restarts, `stops` graceful stops and `ms` simulated milliseconds, if anything
/// (the bounds of [`check_snapshots`], for judges of other runs: explore's).
pub fn judge_pace(
    policy: engine::durable::SnapshotPolicy,
    logged: u64,
    restarts: u64,
    stops: u64,
    ms: u64,
    taken: u64,
) -> Option<String> {
    if policy.every_entries == 0 {
        return None;
    }
    Bounds::of(policy, logged, restarts, stops, ms).judge(taken)
}

/// The snapshots a service may have completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bounds {
    logged: u64,
    every: u64,
    least: u64,
    most: u64,
}

impl Bounds {
    /// For `logged` entries at one snapshot every `every_entries` (or `every_ms`): at least
    /// one per [`SLOWEST`] intervals, less one per restart and one more (a snapshot cut
    /// short, a counter started again, the stretch since the last); at most one per interval and one per `every_ms`, plus two per
    /// restart or stop (a snapshot taken again after a crash rolled its rename back, a
    /// damaged one renamed aside, a stop's own).
    fn of(
        policy: engine::durable::SnapshotPolicy,
        logged: u64,
        restarts: u64,
        stops: u64,
        ms: u64,
    ) -> Bounds {
        let every = policy.every_entries;
        let least = (logged / (SLOWEST * every)).saturating_sub(restarts + 1);
        let by_time = ms.checked_div(policy.every_ms).unwrap_or(0);
        let most = logged / every + by_time + 2 * (restarts + stops) + 2;
        Bounds { logged, every, least, most }
    }

    /// What is wrong with `taken` snapshots, if anything.
    fn judge(self, taken: u64) -> Option<String> {
        let Bounds { logged, every, least, most } = self;
        let what = format!("{taken} snapshots completed for {logged} entries logged at one every {every}");
        if taken < least {
            return Some(format!("{what}: too few, at least {least} (one per {SLOWEST} intervals)"));
        }
        (taken > most).then(|| format!("{what}: too many, at most {most}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::durable::SnapshotPolicy;

    #[test]
    fn a_pace_far_from_the_interval_either_way_is_named() {
        let by_count = SnapshotPolicy::every(100, 0);
        let b = Bounds::of(by_count, 4_000, 0, 0, 60_000);
        assert_eq!((b.least, b.most), (9, 42));
        assert_eq!(b.judge(40), None, "one per interval");
        assert_eq!(b.judge(10), None, "slower, within four intervals each");
        assert!(b.judge(0).is_some_and(|d| d.contains("too few")), "never");
        assert!(b.judge(400).is_some_and(|d| d.contains("too many")), "every few entries");
        let restarted = Bounds::of(by_count, 4_000, 20, 3, 60_000);
        assert_eq!((restarted.least, restarted.most), (0, 88), "each restart and stop widens both");
        let timed = Bounds::of(SnapshotPolicy::every(100, 1_000), 4_000, 0, 0, 60_000);
        assert_eq!(timed.most, 102, "one per second of simulated time too");
    }
}
