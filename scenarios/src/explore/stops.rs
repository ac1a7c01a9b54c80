//! The `stop` family: a graceful stop of every service after each command in turn (each
//! one's SIGTERM: everything flows through, each takes a snapshot), the services opened
//! again on the same disk, and the rest of the workload submitted to them; then crashed
//! both ways (a process crash keeps what is pending, a power failure loses it) just after
//! each of the next few acknowledgements, and at the end. A stop is a state a service
//! leaves on purpose (a snapshot just taken, markers, nothing pending) and trusts when it
//! opens: what it trusts must still hold after the crashes that follow.

use super::drive::{self, Setup};
use super::errors::{ACKS_AFTER, ErrorState, crashed_both_ways};
use super::{ExploreReport, Explorer, Family};
use crate::checker::Violation;
use sim::fs::Disk;
use std::sync::Mutex;

/// The run with a graceful stop after command `after` (1-based): the states to judge, or
/// the violation when the run itself fails (a stop must leave a disk that opens).
pub fn run(setup: &Setup, after: usize) -> Result<Vec<ErrorState>, Violation> {
    let disk = setup.disk();
    let acks: Mutex<(usize, Vec<(u64, Disk)>)> = Mutex::new((0, Vec::new()));
    let on_ack = |ops: u64, d: &Disk| {
        let mut acks = acks.lock().unwrap_or_else(|e| e.into_inner());
        acks.0 += 1;
        // The acknowledgements of the commands after the stop.
        if acks.0 > after && acks.1.len() < ACKS_AFTER {
            acks.1.push((ops, d.snapshot_copy()));
        }
    };
    let (progress, result) = drive::drive_stopping(setup, &disk, Some(after), &on_ack);
    result.map_err(|e| Violation::ServiceError { service: "pipeline".into(), error: e.to_string() })?;
    let end = disk.lock().unwrap_or_else(|e| e.into_inner());
    let mut states = Vec::new();
    for (ops, d) in acks.into_inner().unwrap_or_else(|e| e.into_inner()).1 {
        let what = format!("stopped and opened again; crashed after the acknowledgement at operation {ops}");
        crashed_both_ways(&what, ops, &d, &progress, &mut states);
    }
    crashed_both_ways("stopped and opened again; the run's end", end.ops(), &end, &progress, &mut states);
    Ok(states)
}

impl Explorer<'_> {
    /// The `stop` family: a graceful stop after every command (on `jobs` threads), each
    /// run's states recovered and judged, in command order.
    pub(super) fn stops(&self, wanted: &(dyn Fn(u64, Family) -> bool + Sync), report: &mut ExploreReport) {
        let n = self.setup.commands.len() as u64;
        let after: Vec<u64> = (1..=n).filter(|i| wanted(*i, Family::Stop)).collect();
        let judged = self.judge_runs(&after, &|i| Some(run(&self.setup, i as usize)));
        for (i, verdicts) in judged {
            report.stops += 1;
            let cell = format!("a graceful stop after command {i}");
            for (label, verdict) in verdicts {
                self.count(Family::Stop, i, "in a run", &cell, label, verdict, report);
            }
        }
    }
}
