//! The verdict on a real cluster's data directories, by the simulator's checker. The
//! history is UBSCore's WAL as the real disk holds it, decoded by the checker's own reader
//! (not the engine's); the clients' sent commands and acknowledgements come from the load
//! generator. Every acknowledged command must be in the history with its outcome, the
//! history must replay in the model to the same outcomes, and the three services recovered
//! from their directories must hold exactly the model's state.

use super::{Service, service_dir, storage};
use crate::checker::{Violation, archive, final_state, history};
use crate::model::Model;
use engine::durable::{DurableMatching, DurableSettlement, DurableUbs, UbsEntry, pipeline::me_input};
use engine::storage::StdFs;
use engine::{Ack, Command, Markets, UbsRecord};
use sim::fs::ArchivedVersion;
use std::path::Path;
use std::sync::Arc;

/// What the judge found besides the verdict.
#[derive(Clone, Debug, Default)]
pub struct Judged {
    /// Entries in UBSCore's WAL (commands and the ME events it applied).
    pub history_entries: usize,
    /// Commands in the history.
    pub commands: usize,
}

/// UBSCore's WAL files as the disk holds them, as durable versions in the order they were
/// written: segments by name (their index), the seal file last.
fn wal_files(data: &Path) -> Result<Vec<ArchivedVersion>, Violation> {
    let dir = service_dir(Service::Ubscore, data).join("wal");
    let unreadable =
        |e: std::io::Error| Violation::Unrecoverable { error: format!("{}: {e}", dir.display()) };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        // Segments and the seal; not a rewrite the WAL left half done.
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name == engine::wal::format::SEAL_FILE || (name.starts_with("wal-") && name.ends_with(".wal"))
        })
        .collect();
    paths.sort();
    let seal = engine::wal::format::SEAL_FILE;
    paths.sort_by_key(|p| p.file_name().is_some_and(|n| n == seal));
    let mut out = Vec::new();
    for (i, path) in paths.into_iter().enumerate() {
        let bytes = std::fs::read(&path).map_err(unreadable)?;
        let at = i as u64 + 1;
        out.push(ArchivedVersion { path, first_synced: at, last_synced: at, bytes });
    }
    Ok(out)
}

/// Judges the cluster directory `data` (every service stopped) against what the clients
/// sent and were told.
pub fn judge(
    data: &Path,
    markets: &Markets,
    sent: &[Command],
    acked: &[(Command, Ack)],
) -> Result<Judged, Violation> {
    let entries = archive::history(&wal_files(data)?)?;
    let commands: Vec<UbsRecord> = entries
        .iter()
        .filter_map(|e| match e {
            UbsEntry::Command(r) => Some(*r),
            UbsEntry::Event(_) => None,
        })
        .collect();
    history::check_sent(&commands, sent)?;
    let model = replay(markets, &entries)?;
    history::check_acks(&commands, acked)?;
    final_state(data, markets, &model)?;
    Ok(Judged { history_entries: entries.len(), commands: commands.len() })
}

/// Replays the history into the model; each logged outcome must be the model's.
fn replay(markets: &Markets, entries: &[UbsEntry]) -> Result<Model, Violation> {
    let mut model = Model::deferred(markets.clone());
    for entry in entries {
        history::replay_entry(&mut model, entry)?;
    }
    Ok(model)
}

/// Recovers the three services from their directories (as a restart would), catches the
/// matching engine up with UBSCore's history, and compares everything with the model.
fn final_state(data: &Path, markets: &Markets, model: &Model) -> Result<(), Violation> {
    let failed = |e: engine::durable::DurableError| Violation::Unrecoverable { error: e.to_string() };
    let fs = || -> Arc<dyn engine::storage::FileSystem> { Arc::new(StdFs::new()) };
    let (ubs, _) =
        DurableUbs::open(fs(), &service_dir(Service::Ubscore, data), markets.clone(), storage(), 0)
            .map_err(failed)?;
    let (mut me, _) =
        DurableMatching::open(fs(), &service_dir(Service::Matching, data), markets.clone(), storage(), 0)
            .map_err(failed)?;
    let (settlement, _) =
        DurableSettlement::open(fs(), &service_dir(Service::Settlement, data), storage(), 0)
            .map_err(failed)?;
    for r in ubs.records_after(me.last_ubs_seq(), usize::MAX).map_err(failed)? {
        me.process(r.seq, me_input(&r).as_ref()).map_err(failed)?;
    }
    me.commit().map_err(failed)?;
    if !me.caught_up() {
        return Err(Violation::Unrecoverable {
            error: "matching has logged events UBSCore's history does not produce".into(),
        });
    }
    final_state::check(&ubs, &me, &settlement, model)
}
