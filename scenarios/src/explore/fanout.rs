//! The one recorded run fanned out to the workers: the disk's tap and the
//! acknowledgements hand over every state wanted (the disk after each operation, the disk
//! with each fsync failed, each acknowledged disk to damage at rest or to recover with
//! failing operations), `jobs` threads recover them as they come, and what they found is
//! collected by operation, to be judged in order once the run is over.

use super::{AtK, Damaged, Explorer, Family, Outcome, drive};
use sim::fs::Disk;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the run hands the explorer at each operation.
pub(super) enum State {
    /// The disk just after the operation took effect.
    After(Disk),
    /// The operation is an fsync of the named file: the disk as if it had failed with EIO.
    FsyncFailed(String, Disk),
    /// A command was just acknowledged: the disk, to be damaged at rest in every targeted
    /// way, in every service's files.
    Acknowledged(Disk),
    /// A command was just acknowledged: the disk, recovered with each operation of its
    /// recovery failing in turn.
    RecoveryErrors(Disk),
}

/// What the workers recovered, by operation.
#[derive(Default)]
pub(super) struct Recovered {
    /// The disk after each operation, every resolution of its pending state.
    pub after: BTreeMap<u64, AtK>,
    /// Each fsync failed with EIO: its file and the restart's outcome.
    pub fsync_errors: BTreeMap<u64, (String, Outcome)>,
    /// Each acknowledged disk damaged at rest.
    pub damage: BTreeMap<u64, Vec<Damaged>>,
    /// Each acknowledged disk recovered with each operation of its recovery failing.
    pub recovery_errors: BTreeMap<u64, Vec<(String, Outcome)>>,
}

impl Recovered {
    /// Recovers `state`, handed over at operation `k`, and keeps what it found.
    fn recover(this: &Mutex<Recovered>, ex: &Explorer<'_>, k: u64, state: State) {
        let lock = || this.lock().unwrap_or_else(|e| e.into_inner());
        match state {
            State::After(disk) => {
                let at = ex.at_k(disk);
                lock().after.insert(k, at);
            }
            State::FsyncFailed(path, disk) => {
                let outcome = ex.after_fsync_error(disk);
                lock().fsync_errors.insert(k, (path, outcome));
            }
            State::Acknowledged(disk) => {
                let outcomes = ex.damaged(&disk);
                lock().damage.insert(k, outcomes);
            }
            State::RecoveryErrors(disk) => {
                let outcomes = ex.recovery_errors(&disk);
                lock().recovery_errors.insert(k, outcomes);
            }
        }
    }
}

/// Runs the workload once, recording it, while the workers recover every state `wanted`
/// as it is handed over; `tick(done, seen)` after each.
pub(super) fn record_and_recover(
    ex: &Explorer<'_>,
    wanted: impl Fn(u64, Family) -> bool + Clone + Send + Sync + 'static,
    tick: &(dyn Fn(u64, u64) + Sync),
) -> (drive::Recorded, Recovered) {
    let jobs = ex.cfg.jobs.max(1);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, State)>(jobs * 4);
    let rx = Mutex::new(rx);
    let (seen, done) = (Arc::new(AtomicU64::new(0)), AtomicU64::new(0));
    let recovered = Mutex::new(Recovered::default());
    let recorded = std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                engine::bugs::plant(ex.cfg.planted);
                loop {
                    let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((k, state)) = next else { break };
                    Recovered::recover(&recovered, ex, k, state);
                    tick(done.fetch_add(1, Ordering::SeqCst) + 1, seen.load(Ordering::SeqCst));
                }
            });
        }
        if wanted(0, Family::CrashPoint) {
            seen.fetch_add(1, Ordering::SeqCst);
            let empty = ex.setup.disk().lock().unwrap_or_else(|e| e.into_inner()).snapshot_copy();
            let _ = tx.send((0, State::After(empty)));
        }
        let tap = tap(tx.clone(), seen.clone(), wanted.clone());
        let on_ack = |k: u64, disk: &Disk| {
            let send = |state| {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((k, state));
            };
            if wanted(k, Family::Media) {
                send(State::Acknowledged(disk.snapshot_copy()));
            }
            if wanted(k, Family::IoError) {
                send(State::RecoveryErrors(disk.snapshot_copy()));
            }
        };
        let recorded = drive::record(&ex.setup, Some(tap), &on_ack);
        drop(tx);
        recorded
    });
    (recorded, recovered.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The disk's tap: after every operation, the disk as it is (a crash point) and, after an
/// fsync, the disk before it with that fsync failed.
fn tap(
    tx: std::sync::mpsc::SyncSender<(u64, State)>,
    seen: Arc<AtomicU64>,
    wanted: impl Fn(u64, Family) -> bool + Send + Sync + 'static,
) -> sim::fs::Tap {
    let sender = Mutex::new(tx);
    // The disk before the current operation: where an fsync that fails starts from.
    let previous: Mutex<Option<Disk>> = Mutex::new(None);
    sim::fs::Tap(Arc::new(move |k: u64, disk: &Disk| {
        let copy = disk.snapshot_copy();
        let before = previous.lock().unwrap_or_else(|e| e.into_inner()).replace(copy.clone());
        let send = |item| {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = sender.lock().unwrap_or_else(|e| e.into_inner()).send((k, item));
        };
        if let (Some(last), Some(mut failed)) = (disk.op_log().last(), before) {
            if last.kind == sim::fs::OpKind::Fsync && wanted(k, Family::FsyncError) {
                failed.fail_fsync(&last.path);
                send(State::FsyncFailed(last.path.display().to_string(), failed));
            }
        }
        if wanted(k, Family::CrashPoint) {
            send(State::After(copy));
        }
    }))
}
