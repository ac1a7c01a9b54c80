//! The hot standby under explore: the workload runs again with a replica pulling UBSCore's
//! durable records after every command (the replica node's own pull code,
//! [`engine::standby::Standby`]), once for every pull with that pull's reply lost (the
//! replica retries, as after a timeout), and once for every command with a failover after
//! it (the primary's directory lost, the replica caught up and promoted into it, the rest
//! of the workload through the promoted engine). A replica judged against the model by the
//! checker's own chain; a failover's disk recovered and judged by the oracle.

use super::drive::{Setup, root, service_dir};
use super::oracle::Oracle;
use crate::checker::{Violation, replica};
use engine::durable::{DurableError, DurableMatching, DurablePipeline};
use engine::standby::Standby;
use engine::storage::FileSystem;
use sim::fs::NodeFs;
use std::sync::{Arc, Mutex};

/// Records a pull's reply holds at most: a retry then spans more than one batch.
const BATCH: usize = 4;

/// The fault of one run with the standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandbyFault {
    /// None: the run that counts the pulls.
    None,
    /// The reply to the replica's n-th pull (1-based) is lost.
    LostReply(u64),
    /// The primary is lost after the i-th command (1-based) and the replica promoted.
    Failover(usize),
}

/// What a run with the standby did.
pub struct StandbyRun {
    /// Pulls the replica made.
    pub pulls: u64,
    /// The replica's verdict (or the run's failure).
    pub verdict: Result<(), Violation>,
}

/// Runs the workload with the standby and `fault`, and judges it.
pub fn run(setup: &Setup, oracle: &Oracle, fault: StandbyFault) -> StandbyRun {
    let disk = setup.disk();
    let mut links = Vec::new();
    let mut pulls = 0;
    // A planted bug may trip an engine assertion: a finding like any other.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        drive(setup, &disk, fault, &mut links, &mut pulls)
    }));
    let verdict = match ran {
        Err(panic) => Err(Violation::Panic { message: engine::service::panic_message(&*panic) }),
        Ok(Err(e)) => Err(Violation::ServiceError { service: "pipeline".into(), error: e.to_string() }),
        // Promoted: the replica is the primary now; the disk holds the truth, and every
        // command was acknowledged.
        Ok(Ok(None)) => {
            let n = setup.commands.len();
            oracle.recover(setup, &disk).and_then(|h| oracle.placed(setup, h, n, n))
        }
        Ok(Ok(Some(standby))) => {
            let model = oracle.model_at_end();
            let state = (standby.replica().engine().export_state(), standby.replica().chain());
            replica::check_links(&links, model).and_then(|_| replica::check_state(Some(&state), model))
        }
    };
    StandbyRun { pulls, verdict }
}

/// The workload with the standby; returns the standby still standing by (or `None`
/// once promoted).
fn drive(
    setup: &Setup,
    disk: &Arc<Mutex<sim::fs::Disk>>,
    fault: StandbyFault,
    links: &mut Vec<(u64, u64)>,
    pulls: &mut u64,
) -> Result<Option<Standby>, DurableError> {
    let mut p = setup.open(disk)?;
    let mut standby = Some(Standby::new(setup.markets.clone()));
    for (i, command) in setup.commands.iter().enumerate() {
        p.submit(*command, i as u64)?;
        let Some(s) = standby.as_mut() else { continue };
        pull(s, &p, fault, links, pulls)?;
        if fault == StandbyFault::Failover(i + 1) {
            while pull(s, &p, StandbyFault::None, links, pulls)? {}
            promote(setup, disk, &mut p, s)?;
            standby = None;
        }
    }
    p.converge(0)?;
    if let Some(s) = standby.as_mut() {
        while pull(s, &p, fault, links, pulls)? {}
    }
    Ok(standby)
}

/// One pull of the replica: UBSCore's durable records after what it asks for, applied
/// unless `fault` loses this reply. Returns whether it got records (or lost them).
fn pull(
    s: &mut Standby,
    p: &DurablePipeline,
    fault: StandbyFault,
    links: &mut Vec<(u64, u64)>,
    pulls: &mut u64,
) -> Result<bool, DurableError> {
    *pulls += 1;
    let records = p.ubs.records_after(s.ask(), BATCH)?;
    if fault == StandbyFault::LostReply(*pulls) {
        return Ok(true);
    }
    s.answered();
    links.extend(s.apply(&records)?);
    Ok(!records.is_empty())
}

/// The failover: the primary's directory is lost with its machine; the replica's state and
/// events become a matching engine there, and the pipeline runs on with it.
fn promote(
    setup: &Setup,
    disk: &Arc<Mutex<sim::fs::Disk>>,
    p: &mut DurablePipeline,
    s: &Standby,
) -> Result<(), DurableError> {
    let fs: Arc<dyn FileSystem> = Arc::new(NodeFs::detached(disk.clone()));
    let dir = service_dir("matching");
    let io = |op: &'static str| {
        let path = dir.clone();
        move |source| DurableError::Wal(engine::wal::WalError::Io { op, path, source })
    };
    fs.remove_dir_all(&dir).map_err(io("remove"))?;
    fs.sync_dir(&root()).map_err(io("fsync_dir"))?;
    let state = s.replica().engine().export_state();
    p.me = DurableMatching::adopt(
        fs,
        &dir,
        setup.markets.clone(),
        setup.config.matching,
        state,
        s.replica().events(),
        0,
    )?;
    Ok(())
}
