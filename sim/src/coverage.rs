//! The crash-window coverage map: crash points counted per cell (service × storage phase ×
//! operation × before/after its effect). A cell is named `service phase op when`, e.g.
//! `ubscore snapshot-rename rename before`. The universe is every service with every
//! operation of every phase ([`crate::fs::Phase::ops`]); `exsim coverage` lists the cells
//! nothing hit.

use crate::fs::{OpKind, Phase};
use std::collections::BTreeMap;

/// The storage the map covers, named as [`crate::fs::service_of`] names a path: the three
/// core services, market data and Settlement's audit trail (the hot-standby replica's
/// storage is counted but not part of the map).
pub const SERVICES: [&str; 5] = ["ubscore", "matching", "settlement", "market-data", "audit"];

/// The name of a cell.
pub fn cell(service: &str, phase: Phase, op: OpKind, before: bool) -> String {
    format!("{service} {} {} {}", phase.name(), op.name(), if before { "before" } else { "after" })
}

/// Every cell of the map.
pub fn universe() -> Vec<String> {
    let mut out = Vec::new();
    for service in SERVICES {
        for phase in Phase::ALL {
            for op in phase.ops() {
                for before in [true, false] {
                    out.push(cell(service, phase, *op, before));
                }
            }
        }
    }
    out
}

/// Cells of the universe with no hit in `hits`.
pub fn unhit(hits: &BTreeMap<String, u64>) -> Vec<String> {
    universe().into_iter().filter(|c| hits.get(c).copied().unwrap_or(0) == 0).collect()
}

/// A compact table: one row per phase, the hits of each service (before/after summed), and
/// how many of the phase's cells were hit.
pub fn table(hits: &BTreeMap<String, u64>) -> String {
    let mut out = format!("{:<22}", "phase");
    for service in SERVICES {
        out += &format!("{service:>12}");
    }
    out += &format!("{:>12}\n", "cells hit");
    for phase in Phase::ALL {
        let mut row = format!("{:<22}", phase.name());
        let (mut hit, mut total) = (0, 0);
        for service in SERVICES {
            let mut n = 0;
            for op in phase.ops() {
                for before in [true, false] {
                    let c = hits.get(&cell(service, phase, *op, before)).copied().unwrap_or(0);
                    n += c;
                    total += 1;
                    hit += u64::from(c > 0);
                }
            }
            row += &format!("{n:>12}");
        }
        out += &format!("{row}{:>12}\n", format!("{hit}/{total}"));
    }
    let all = universe().len();
    out += &format!("cells hit: {} of {all}\n", all - unhit(hits).len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_universe_names_every_phase_and_unhit_cells_are_listed() {
        let u = universe();
        assert!(u.contains(&"ubscore snapshot-rename rename before".to_string()));
        assert!(u.contains(&"settlement retention remove after".to_string()));
        assert!(u.contains(&"market-data snapshot-rename rename before".to_string()));
        assert!(u.contains(&"audit retention remove after".to_string()));
        assert_eq!(u.len(), 5 * 62, "62 cells per service");
        let trail = crate::fs::service_of(std::path::Path::new("/data/settlement/audit/wal/wal-00001.wal"));
        assert_eq!(trail, "audit", "the trail's files are its own storage, not the ledger's");
        let mut hits = BTreeMap::new();
        hits.insert("ubscore snapshot-rename rename before".to_string(), 3);
        let missing = unhit(&hits);
        assert_eq!(missing.len(), u.len() - 1);
        assert!(!missing.contains(&"ubscore snapshot-rename rename before".to_string()));
        assert!(table(&hits).contains("cells hit: 1 of"));
    }
}
