//! The recorded run's snapshots held to their policy, as the world holds its runs
//! ([`crate::checker::policy`]): each service that logged many times its interval must
//! have taken snapshots at about that pace. The renames into place are counted from the
//! disk's own operation log; the entries each log holds are read from the services
//! recovered from the disk the run left (whose state the crash states after its last
//! operation judge against the model). Every state a recovery finds could be right while
//! no snapshot is ever taken: only this check sees a trigger that never fires.

use super::drive::{SERVICES, Setup, service_dir};
use crate::checker::{Violation, policy};
use engine::durable::DurableConfig;
use sim::fs::{Disk, LoggedOp, OpKind, Phase};
use std::sync::{Arc, Mutex};

/// The first service whose snapshots broke its policy in the run that logged `ops` and left
/// `disk` (`Ok` too when the disk does not open: the crash states judge that).
pub fn check(setup: &Setup, ops: &[LoggedOp], disk: &Disk) -> Result<(), Violation> {
    let Ok(p) = setup.open(&Arc::new(Mutex::new(disk.snapshot_copy()))) else { return Ok(()) };
    let mut logs = vec![
        (setup.config.ubscore, p.ubs.wal().next_seq()),
        (setup.config.matching, p.me.wal().next_seq()),
        (setup.config.settlement, p.settlement.wal().next_seq()),
    ];
    if let (Some(f), Some(c)) = (&p.followers, &setup.config.followers) {
        logs.extend([(c.market_data, f.market_data.wal().next_seq()), (c.audit, f.audit.wal().next_seq())]);
    }
    for (service, (config, next)) in SERVICES.iter().zip(logs) {
        let (taken, commits) =
            (count(ops, service, "snapshots", SNAPSHOT), count(ops, service, "wal", COMMIT));
        if let Some(detail) = pace(config, next.saturating_sub(1), commits, taken) {
            let service = sim::fs::service_of(&service_dir(service));
            return Err(Violation::PolicyBroken { service, detail });
        }
    }
    Ok(())
}

/// One life without restarts, stops or simulated time, of `logged` entries in `commits`
/// group commits. A service decides on a snapshot after a commit, so one commit brings one
/// snapshot at most however many entries it carries (a follower's pull of a dozen events,
/// a trade's fills): only `every` entries a commit count toward the pace.
fn pace(config: DurableConfig, logged: u64, commits: u64, taken: u64) -> Option<String> {
    let paced = logged.min(commits.saturating_mul(config.snapshots.every_entries));
    policy::judge_pace(config.snapshots, paced, 0, 0, 0, taken)
}

/// A snapshot's rename into place.
const SNAPSHOT: (OpKind, Phase) = (OpKind::Rename, Phase::SnapshotRename);

/// A group commit's fsync.
const COMMIT: (OpKind, Phase) = (OpKind::Fsync, Phase::GroupCommit);

/// Operations of `what` in `service`'s directory `sub` (the audit trail's, under
/// Settlement's, is its own).
fn count(ops: &[LoggedOp], service: &str, sub: &str, what: (OpKind, Phase)) -> u64 {
    let dir = service_dir(service).join(sub);
    let own = |op: &&LoggedOp| op.path.parent().is_some_and(|p| p.starts_with(&dir));
    ops.iter().filter(|op| (op.kind, op.phase) == what).filter(own).count() as u64
}
