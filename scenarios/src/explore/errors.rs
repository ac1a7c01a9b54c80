//! The `io-error` family: each operation of the recorded run fails in turn, with the error
//! its kind can have (EIO on a write, a read, an fsync or a metadata operation), in a run
//! of the workload of its own. The engine decides what the error means (stop, retry, go
//! on); the explorer judges what it decided. A run that stops restarts the services on
//! the disk it left (a process restart keeps the page cache; a power failure loses what is
//! pending); a run that goes on is crashed both ways just after each of the next few
//! acknowledgements, and at its end. Everything acknowledged by then must survive, and the
//! state must be the model's at a prefix of the commands sent.
//!
//! The crash-point family cannot see this class: there the service dies at the failed
//! operation, so code that runs *after* an error (an fsync error ignored, a directory
//! fsync's error ignored, a failed rename taken for done) never runs.

use super::drive::{self, Known, Progress, Setup};
use super::{ExploreFailure, ExploreReport, Explorer, Family, Outcome};
use crate::checker::Violation;
use sim::fs::{Disk, Fate, IoErrorAt, IoFailure, LoggedOp, OpKind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Acknowledgements after the error at which a run that goes on is crashed: enough to
/// reach the next directory fsync, commit or snapshot that could mask what the error
/// broke, few enough that a run costs a handful of recoveries.
pub const ACKS_AFTER: usize = 3;

/// The error an operation of `kind` fails with here (`None`: the disk cannot fail it).
pub fn failure_of(kind: OpKind) -> Option<IoFailure> {
    match kind {
        OpKind::Append | OpKind::Write => Some(IoFailure::WriteEio),
        OpKind::Read => Some(IoFailure::ReadEio),
        OpKind::Fsync => Some(IoFailure::FsyncEio),
        OpKind::Truncate => None,
        k if k.is_metadata() => Some(IoFailure::MetadataEio),
        _ => None,
    }
}

/// Operation `k` (1-based) of the recorded run `ops` as a pinned error: its kind and phase,
/// and its place among that kind and phase's operations since the disk was created (the
/// recorded run's disk is fresh, so its log counts them all).
pub fn pinned(ops: &[LoggedOp], k: u64) -> Option<IoErrorAt> {
    let i = usize::try_from(k.checked_sub(1)?).ok()?;
    let op = ops.get(i)?;
    let failure = failure_of(op.kind)?;
    let nth = ops[..=i].iter().filter(|o| o.kind == op.kind && o.phase == op.phase).count() as u64;
    Some(IoErrorAt { kind: op.kind, phase: op.phase, nth, failure })
}

/// A disk to recover after the error, what the clients knew then, and how it came about.
pub struct ErrorState {
    /// How: "the run stopped …, process restart", "… power failure, pending lost".
    pub label: String,
    /// The disk, revived.
    pub disk: Disk,
    /// What the clients and the followers' readers knew.
    pub known: Known,
}

/// The run with operation `at` failing: the states to judge, or `None` when the error never
/// fired (the run took another path before it; not a finding).
pub fn run(setup: &Setup, at: IoErrorAt) -> Option<Vec<ErrorState>> {
    let disk = setup.disk();
    disk.lock().unwrap_or_else(|e| e.into_inner()).pin_error(at);
    let after: Mutex<Vec<(u64, Disk)>> = Mutex::new(Vec::new());
    let on_ack = |ops: u64, d: &Disk| {
        let mut after = after.lock().unwrap_or_else(|e| e.into_inner());
        if !d.io_errors().is_empty() && after.len() < ACKS_AFTER {
            after.push((ops, d.snapshot_copy()));
        }
    };
    let (progress, result) = drive::drive(setup, &disk, &on_ack);
    let end = disk.lock().unwrap_or_else(|e| e.into_inner());
    if end.io_errors().is_empty() {
        return None;
    }
    let ended = match &result {
        Ok(()) => "the run went on to its end".to_string(),
        Err(e) => format!("the run stopped ({e})"),
    };
    let acks = after.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut states = Vec::new();
    for (ops, d) in acks {
        let what = format!("the run went on; crashed after its acknowledgement at operation {ops}");
        crashed_both_ways(&what, ops, &d, &progress, &mut states);
    }
    crashed_both_ways(&ended, end.ops(), &end, &progress, &mut states);
    Some(states)
}

/// `d` (after `ops` operations of a run that made `progress`) crashed as a process crash
/// (pending kept) and as a power failure (pending lost), each revived, into `out`.
pub fn crashed_both_ways(what: &str, ops: u64, d: &Disk, progress: &Progress, out: &mut Vec<ErrorState>) {
    let known = progress.known(ops, ops + 1);
    for (how, disk) in both_ways(d) {
        out.push(ErrorState { label: format!("{what}, {how}"), disk, known });
    }
}

/// How a recovery error's failure names its state (its operation is the acknowledgement's).
pub const RECOVERY_CELL: &str = "a recovery of the disk acknowledged at operation";

/// A verdict: the recovery crash that exposed it (if one did) and the violation.
pub(super) type Verdict = Option<(Option<String>, Violation)>;

impl Explorer<'_> {
    /// Every operation of the recorded run `ops` that can fail, failing in a run of its own
    /// (on `jobs` threads); each run's states recovered and judged, in operation order.
    pub(super) fn io_errors(
        &self,
        ops: &[LoggedOp],
        wanted: &(dyn Fn(u64, Family) -> bool + Sync),
        report: &mut ExploreReport,
    ) {
        let ks: Vec<(u64, IoErrorAt)> = (1..=ops.len() as u64)
            .filter(|k| wanted(*k, Family::IoError))
            .filter_map(|k| pinned(ops, k).map(|at| (k, at)))
            .collect();
        let judged = self.judge_runs(&ks, &|(_, at)| run(&self.setup, at).map(Ok));
        for ((k, _), verdicts) in judged {
            report.io_errors += 1;
            let logged = &ops[k as usize - 1];
            let cell = format!("{} {} (EIO)", logged.kind.name(), logged.path.display());
            for (label, verdict) in verdicts {
                self.count(Family::IoError, k, "fails", &cell, label, verdict, report);
            }
        }
    }

    /// Runs `make(item)` for every item on `jobs` threads and judges the states each run
    /// gives (a run that fails by itself is one failing state): verdicts by item, in order.
    /// `None` from `make`: nothing to judge.
    pub(super) fn judge_runs<K: Ord + Copy + Sync + Send>(
        &self,
        items: &[K],
        make: &(dyn Fn(K) -> Option<Result<Vec<ErrorState>, Violation>> + Sync),
    ) -> BTreeMap<K, Vec<(String, Verdict)>> {
        let next = AtomicU64::new(0);
        let judged = Mutex::new(BTreeMap::new());
        std::thread::scope(|scope| {
            for _ in 0..self.cfg.jobs.max(1) {
                scope.spawn(|| {
                    engine::bugs::plant(self.cfg.planted);
                    while let Some(item) = items.get(next.fetch_add(1, Ordering::SeqCst) as usize) {
                        // A run that panics (an engine assertion) is a finding, not the
                        // explorer's end.
                        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| make(*item)))
                            .unwrap_or_else(|panic| {
                                let message = engine::service::panic_message(&*panic);
                                Some(Err(Violation::Panic { message }))
                            });
                        let verdicts: Vec<(String, Verdict)> = match made {
                            None => continue,
                            Some(Err(v)) => vec![("the run itself failed".to_string(), Some((None, v)))],
                            Some(Ok(states)) => states
                                .into_iter()
                                .map(|s| (s.label, self.verdict(&self.outcome(s.disk, 0, false), &s.known)))
                                .collect(),
                        };
                        judged.lock().unwrap_or_else(|e| e.into_inner()).insert(*item, verdicts);
                    }
                });
            }
        });
        judged.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    /// One judged state of `family`: counted, and a failure when it has a verdict.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn count(
        &self,
        family: Family,
        k: u64,
        when: &'static str,
        cell: &str,
        resolution: String,
        verdict: Verdict,
        report: &mut ExploreReport,
    ) {
        report.states += 1;
        let Some((recovery_crash, violation)) = verdict else { return };
        report.states_until_first_failure.get_or_insert(report.states);
        report.failures.push(ExploreFailure {
            family,
            op: k,
            when,
            cell: cell.to_string(),
            resolution,
            recovery_crash,
            violation,
        });
    }

    /// `disk` (just after an acknowledgement, alive: a process restart) recovered once with
    /// each operation of its recovery failing in turn. A recovery that goes on must hold the
    /// truth; one that stops is restarted on the disk it left (process restart, and power
    /// failure losing what is pending), and that recovery must.
    pub(super) fn recovery_errors(&self, disk: &Disk) -> Vec<(String, Outcome)> {
        let clean = Arc::new(Mutex::new(disk.snapshot_copy()));
        clean.lock().unwrap_or_else(|e| e.into_inner()).record_ops();
        // The engine's recovery alone (recover, catch up): not the oracle's reads after it.
        // A recovery that panics here is judged where the oracle recovers the same disk.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.setup.open(&clean)));
        let log = clean.lock().unwrap_or_else(|e| e.into_inner()).op_log().to_vec();
        let base = disk.lifetime_ops().clone();
        let mut out = Vec::new();
        for (j, op) in log.iter().enumerate() {
            let Some(failure) = failure_of(op.kind) else { continue };
            let earlier =
                log[..=j].iter().filter(|o| (o.kind, o.phase) == (op.kind, op.phase)).count() as u64;
            let nth = base.get(&(op.kind, op.phase)).copied().unwrap_or(0) + earlier;
            let mut failing = disk.snapshot_copy();
            failing.pin_error(IoErrorAt { kind: op.kind, phase: op.phase, nth, failure });
            let failing = Arc::new(Mutex::new(failing));
            let what = format!(
                "its recovery's operation {} ({} {}) failed",
                j + 1,
                op.kind.name(),
                op.path.display()
            );
            match self.oracle.recover_marked(&self.setup, &failing) {
                Ok((h, marks)) => {
                    out.push((format!("{what}; the recovery went on"), Outcome::unnested(Ok(h), marks)))
                }
                Err(Violation::Unrecoverable { .. }) => {
                    let left = failing.lock().unwrap_or_else(|e| e.into_inner()).snapshot_copy();
                    for (how, again) in both_ways(&left) {
                        let what = format!("{what}; the recovery stopped; {how}");
                        out.push((what, self.outcome(again, 0, false)));
                    }
                }
                Err(v) => out.push((
                    format!("{what}; the recovery failed"),
                    Outcome::unnested(Err(v), Default::default()),
                )),
            }
        }
        out
    }

    /// The verdicts on the recoveries of the disk acknowledged at operation `k`, each with
    /// one of its operations failing: what was acknowledged by `k` must survive.
    pub(super) fn judge_recovery_errors(
        &self,
        k: u64,
        outcomes: Vec<(String, Outcome)>,
        progress: &Progress,
        report: &mut ExploreReport,
    ) {
        let known = progress.known(k, k + 1);
        let cell = format!("{RECOVERY_CELL} {k}");
        for (label, o) in outcomes {
            let verdict = self.verdict(&o, &known);
            self.count(Family::IoError, k, "acknowledged, then recovered", &cell, label, verdict, report);
        }
    }
}

/// `d` restarted both ways: as a process (pending kept) and after a power failure (pending
/// lost), each revived and disarmed.
fn both_ways(d: &Disk) -> [(&'static str, Disk); 2] {
    [false, true].map(|power| {
        let mut crashed = d.snapshot_copy();
        crashed.clear_pins();
        if power {
            crashed.power_fail_scripted(&|_| Fate::Lose);
        }
        crashed.revive();
        (if power { "power failure, pending lost" } else { "process restart" }, crashed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::fs::Phase;
    use std::path::PathBuf;

    fn op(kind: OpKind, phase: Phase) -> LoggedOp {
        LoggedOp { kind, path: PathBuf::from("/x/ubscore/wal"), phase }
    }

    #[test]
    fn an_operation_is_pinned_by_its_place_among_its_kind_and_phase() {
        let ops = [
            op(OpKind::Append, Phase::GroupCommit),
            op(OpKind::Fsync, Phase::GroupCommit),
            op(OpKind::Append, Phase::GroupCommit),
            op(OpKind::FsyncDir, Phase::SegmentRotation),
            op(OpKind::Truncate, Phase::TornTailTruncation),
        ];
        let at = pinned(&ops, 3).expect("a write can fail");
        assert_eq!(
            (at.kind, at.phase, at.nth, at.failure),
            (OpKind::Append, Phase::GroupCommit, 2, IoFailure::WriteEio)
        );
        let dir = pinned(&ops, 4).expect("a directory fsync can fail");
        assert_eq!((dir.nth, dir.failure), (1, IoFailure::MetadataEio));
        assert_eq!(pinned(&ops, 5), None, "the disk has no error for a truncation");
        assert_eq!(pinned(&ops, 0), None, "operations count from 1");
        assert_eq!(pinned(&ops, 6), None, "past the log");
    }
}
