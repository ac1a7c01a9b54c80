//! The recorded run's snapshots held to their policy, as the world holds its runs
//! ([`crate::checker::policy`]): each service that logged many times its interval must
//! have taken snapshots at about that pace. The renames into place are counted from the
//! disk's own operation log; the entries each log holds are read from the services
//! recovered from the disk the run left (whose state the crash states after its last
//! operation judge against the model). Every state a recovery finds could be right while
//! no snapshot is ever taken: only this check sees a trigger that never fires.

use super::drive::{Progress, SERVICES, Setup, service_dir};
use crate::checker::{Violation, hygiene, policy};
use engine::durable::DurableConfig;
use sim::fs::{Disk, LoggedOp, OpKind, Phase};
use std::sync::{Arc, Mutex};

/// The first service whose snapshots broke its policy in the run that logged `ops`, made
/// `progress` and left `disk` (`Ok` too when the disk does not open: the crash states
/// judge that).
pub fn check(setup: &Setup, ops: &[LoggedOp], progress: &Progress, disk: &Disk) -> Result<(), Violation> {
    let Ok(p) = setup.open(&Arc::new(Mutex::new(disk.snapshot_copy()))) else { return Ok(()) };
    let mut logs = vec![
        (setup.config.ubscore, p.ubs.wal().next_seq()),
        (setup.config.matching, p.me.wal().next_seq()),
        (setup.config.settlement, p.settlement.wal().next_seq()),
    ];
    if let (Some(f), Some(c)) = (&p.followers, &setup.config.followers) {
        logs.extend([(c.market_data, f.market_data.wal().next_seq()), (c.audit, f.audit.wal().next_seq())]);
    }
    let windows = windows(ops.len() as u64, progress);
    for (service, (config, next)) in SERVICES.iter().zip(logs) {
        let taken = count(ops, service, "snapshots", SNAPSHOT);
        let decisions = decisions(ops, service, &windows);
        if let Some(detail) = pace(config, next.saturating_sub(1), decisions, taken) {
            let service = sim::fs::service_of(&service_dir(service));
            return Err(Violation::PolicyBroken { service, detail });
        }
    }
    Ok(())
}

/// The files the recorded run left on `disk`, each storage's against its settings
/// ([`crate::checker::hygiene`]: snapshots pruned, segments rotated).
pub fn hygiene(setup: &Setup, disk: &Disk) -> Result<(), Violation> {
    let mut configs = vec![setup.config.ubscore, setup.config.matching, setup.config.settlement];
    if let Some(c) = &setup.config.followers {
        configs.extend([c.market_data, c.audit]);
    }
    for (service, config) in SERVICES.iter().zip(configs) {
        let dir = service_dir(service);
        // Settlement's directory holds the audit trail's: each is judged by its own settings.
        let nested = |p: &std::path::Path| {
            SERVICES.iter().any(|other| {
                other != service && other.starts_with(service) && p.starts_with(service_dir(other))
            })
        };
        let present = disk.files_under(&dir).into_iter().filter(|p| !nested(p)).collect();
        let appends = disk.furthest_appends(&dir).into_iter().filter(|(p, _)| !nested(p)).collect();
        let prunes_interrupted =
            disk.prunes_interrupted(&dir).into_iter().filter(|(p, _)| !nested(p)).collect();
        let files = sim::world::FilesSeen { present, appends, prunes_interrupted };
        hygiene::judge(&files, &config)?;
    }
    Ok(())
}

/// One life without restarts, stops or simulated time, of `logged` entries, with
/// `decisions` chances to snapshot. The pipeline asks each service once per command (and
/// once more at the end) whether a snapshot is due, so one command's work brings one
/// snapshot at most however many entries it logged (a taker crossing several makers, a
/// follower's pull of a dozen events): only `every` entries a decision count toward the pace.
fn pace(config: DurableConfig, logged: u64, decisions: u64, taken: u64) -> Option<String> {
    let paced = logged.min(decisions.saturating_mul(config.snapshots.every_entries));
    let detail = policy::judge_pace(config.snapshots, paced, 0, 0, 0, taken)?;
    Some(format!(
        "{detail} ({logged} entries logged in {decisions} commands that committed, {paced} counted)"
    ))
}

/// The operations of each command's work, as half-open ranges of 0-based indices into the
/// operation log: from the last acknowledgement to the next, and from the last to the end
/// (the followers' final catch-up).
fn windows(ops: u64, progress: &Progress) -> Vec<(u64, u64)> {
    let mut bounds: Vec<u64> = std::iter::once(0).chain(progress.acked_at.iter().copied()).collect();
    bounds.push(ops);
    bounds.windows(2).map(|w| (w[0], w[1].max(w[0]))).collect()
}

/// The windows in which `service` committed (a group commit's fsync in its log): each is
/// one chance to snapshot.
fn decisions(ops: &[LoggedOp], service: &str, windows: &[(u64, u64)]) -> u64 {
    let dir = service_dir(service).join("wal");
    let committed = |&(from, to): &(u64, u64)| {
        ops.get(from as usize..to as usize)
            .is_some_and(|w| w.iter().any(|op| (op.kind, op.phase) == COMMIT && in_dir(op, &dir)))
    };
    windows.iter().filter(|w| committed(w)).count() as u64
}

/// A snapshot's rename into place.
const SNAPSHOT: (OpKind, Phase) = (OpKind::Rename, Phase::SnapshotRename);

/// A group commit's fsync.
const COMMIT: (OpKind, Phase) = (OpKind::Fsync, Phase::GroupCommit);

/// Whether `op` is on a file right under `dir` or below it.
fn in_dir(op: &LoggedOp, dir: &std::path::Path) -> bool {
    op.path.parent().is_some_and(|p| p.starts_with(dir))
}

/// Operations of `what` in `service`'s directory `sub` (the audit trail's, under
/// Settlement's, is its own).
fn count(ops: &[LoggedOp], service: &str, sub: &str, what: (OpKind, Phase)) -> u64 {
    let dir = service_dir(service).join(sub);
    ops.iter().filter(|op| (op.kind, op.phase) == what && in_dir(op, &dir)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::durable::SnapshotPolicy;

    fn op(kind: OpKind, phase: Phase, path: &str) -> LoggedOp {
        LoggedOp { kind, phase, path: path.into() }
    }

    #[test]
    fn one_decision_per_command_bounds_the_pace() {
        let base = Setup::new(0, 8).config.ubscore;
        let config = DurableConfig { snapshots: SnapshotPolicy::every(1, 0), ..base };
        // 40 entries in 8 commands at one snapshot per entry: 8 snapshots is the most a
        // correct service can take, and enough; none is too few.
        assert_eq!(pace(config, 40, 8, 8), None);
        assert!(pace(config, 40, 8, 0).is_some_and(|d| d.contains("too few") && d.contains("40 entries")));
        assert!(pace(config, 40, 40, 8).is_some(), "without the cap, 8 of 40 would be too few");
    }

    #[test]
    fn services_are_told_apart_by_directory_and_commits_by_command() {
        let ops = vec![
            op(OpKind::Fsync, Phase::GroupCommit, "/x/settlement/wal/wal-1.wal"),
            op(OpKind::Fsync, Phase::GroupCommit, "/x/settlement/wal/wal-1.wal"),
            op(OpKind::Rename, Phase::SnapshotRename, "/x/settlement/audit/snapshots/.tmp-1"),
            op(OpKind::Fsync, Phase::GroupCommit, "/x/settlement/audit/wal/wal-1.wal"),
            op(OpKind::Rename, Phase::SnapshotRename, "/x/settlement/snapshots/.tmp-2"),
        ];
        assert_eq!(count(&ops, "settlement", "snapshots", SNAPSHOT), 1);
        assert_eq!(count(&ops, "settlement/audit", "snapshots", SNAPSHOT), 1);
        let progress = Progress { acked_at: vec![1, 3], ..Progress::default() };
        let windows = windows(ops.len() as u64, &progress);
        assert_eq!(windows, vec![(0, 1), (1, 3), (3, 5)]);
        assert_eq!(decisions(&ops, "settlement", &windows), 2, "two commits in two commands");
        assert_eq!(decisions(&ops, "settlement/audit", &windows), 1);
        assert_eq!(decisions(&ops, "ubscore", &windows), 0);
    }
}
