//! The explorer's judge: after every recovery, all three services must open without error,
//! each must load the newest snapshot that verifies on the disk (judged by the simulator),
//! UBSCore's log must hold exactly the first `p` commands as sent, and the full state of
//! all three (balances, locks, de-dup counters, books, order index, event log, ledger)
//! must equal the model fed those `p` commands; `p` must lie between the commands
//! acknowledged and the commands submitted before the crash.

use super::drive::{Setup, service_dir};
use crate::checker::{Violation, final_state};
use crate::model::Model;
use engine::durable::UbsEntry;
use sim::fs::Disk;
use std::sync::{Arc, Mutex};

/// The model after each prefix of the workload, indexed by the length of its history
/// (a retried command is answered from the de-dup table and logs nothing, so prefixes
/// that differ only by retries hold the same state).
pub struct Oracle {
    /// `models[h]`: the model once its history holds `h` commands.
    models: Vec<Model>,
    /// `logged[i]`: the history's length after the first `i` commands.
    logged: Vec<usize>,
}

impl Oracle {
    /// Feeds the model every prefix of `setup`'s commands.
    pub fn new(setup: &Setup) -> Oracle {
        let mut model = Model::new(setup.markets.clone());
        let mut models = vec![model.clone()];
        let mut logged = vec![0];
        for c in &setup.commands {
            model.submit(*c);
            if model.history().len() > models.len() - 1 {
                models.push(model.clone());
            }
            logged.push(model.history().len());
        }
        Oracle { models, logged }
    }

    /// Judges a recovered history of `h` commands against what the clients knew at the
    /// crash: `acked` commands acknowledged, `attempted` submitted.
    pub fn placed(&self, setup: &Setup, h: usize, acked: usize, attempted: usize) -> Result<(), Violation> {
        let (least, most) = (self.logged[acked], self.logged[attempted]);
        if h < least {
            // The first acknowledged command whose entry is missing.
            let i = (0..acked).find(|i| self.logged[i + 1] > h).unwrap_or(0);
            return Err(Violation::LostAck {
                command: format!("#{i} {:?}", setup.commands[i]),
                ack: format!(
                    "acknowledged before the crash; the recovered history holds {h} of {least} entries"
                ),
            });
        }
        if h > most {
            return Err(Violation::HistoryBroken {
                detail: format!(
                    "recovered {h} history entries, but the commands submitted before the crash make {most}"
                ),
            });
        }
        Ok(())
    }

    /// Recovers the three services from `disk` (alive, resolved) and judges them against
    /// the model. Returns `h`, the entries the recovered history holds.
    pub fn recover(&self, setup: &Setup, disk: &Arc<Mutex<Disk>>) -> Result<usize, Violation> {
        self.recover_or_detect(setup, disk).map_err(|(v, _)| v)
    }

    /// Like [`Oracle::recover`] on a disk damaged at rest: a service that refuses to open
    /// naming the damage has detected it (`Ok(None)`); one that opens must hold the truth.
    pub fn recover_damaged(
        &self,
        setup: &Setup,
        disk: &Arc<Mutex<Disk>>,
    ) -> Result<Option<usize>, Violation> {
        match self.recover_or_detect(setup, disk) {
            Ok(h) => Ok(Some(h)),
            Err((_, true)) => Ok(None),
            Err((v, false)) if v.is_data_loss_or_change() => {
                Err(Violation::SilentCorruption { found: Box::new(v) })
            }
            Err((v, false)) => Err(v),
        }
    }

    /// The recovery and its verdict; on failure, whether the engine's error names damage.
    fn recover_or_detect(&self, setup: &Setup, disk: &Arc<Mutex<Disk>>) -> Result<usize, (Violation, bool)> {
        let expected: Vec<(&str, Option<u64>)> = ["ubscore", "matching", "settlement"]
            .into_iter()
            .map(|s| {
                (
                    s,
                    sim::snapshots::newest_valid(
                        &disk.lock().unwrap_or_else(|e| e.into_inner()),
                        &service_dir(s),
                    ),
                )
            })
            .collect();
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let fs = Arc::new(sim::fs::NodeFs::detached(disk.clone()));
            engine::durable::DurablePipeline::open(
                fs,
                &super::drive::root(),
                setup.markets.clone(),
                setup.config,
                0,
            )
        }));
        let (p, info) = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                let named = sim::world::names_damage(&e);
                return Err((Violation::Unrecoverable { error: e.to_string() }, named));
            }
            Err(panic) => {
                return Err((Violation::Panic { message: engine::service::panic_message(&*panic) }, false));
            }
        };
        // Recovery reads only what it replays; as at the end of a simulated run, every log
        // is scrubbed, so damage at rest below a snapshot is refused here or judged.
        for wal in [p.ubs.wal(), p.me.wal(), p.settlement.wal()] {
            if let Err(e) = wal.scrub() {
                let e = engine::durable::DurableError::Wal(e);
                let named = sim::world::names_damage(&e);
                return Err((Violation::Unrecoverable { error: e.to_string() }, named));
            }
        }
        self.judge_open(p, &info, &expected).map_err(|v| (v, false))
    }

    /// Judges opened services against the model.
    fn judge_open(
        &self,
        p: engine::durable::DurablePipeline,
        info: &engine::durable::pipeline::PipelineRecovery,
        expected: &[(&str, Option<u64>)],
    ) -> Result<usize, Violation> {
        let loaded = [info.ubscore.snapshot_seq, info.matching.snapshot_seq, info.settlement.snapshot_seq];
        for (i, (service, want)) in expected.iter().enumerate() {
            if loaded[i] != *want {
                return Err(Violation::RecoveryMismatch {
                    service: service.to_string(),
                    recovery: 0,
                    at: loaded[i].unwrap_or(0),
                    field: "snapshot loaded".into(),
                    expected: format!("{want:?} (the newest that verifies on the disk)"),
                    actual: format!("{:?}", loaded[i]),
                });
            }
        }
        let n = (p.ubs.core().next_seq() - 1) as usize;
        let Some(model) = self.models.get(n) else {
            return Err(Violation::HistoryBroken {
                detail: format!(
                    "ubscore recovered {n} history entries; the whole workload makes {}",
                    self.models.len() - 1
                ),
            });
        };
        check_history(&p.ubs, model)?;
        final_state::check(&p.ubs, &p.me, &p.settlement, model)?;
        Ok(n)
    }
}

/// UBSCore's kept log must be the model's history from its first kept command on: every
/// command as the client sent it, with the model's outcome.
fn check_history(ubs: &engine::durable::DurableUbs, model: &Model) -> Result<(), Violation> {
    let kept: Vec<engine::UbsRecord> = ubs
        .history()
        .map_err(|e| Violation::Unrecoverable { error: e.to_string() })?
        .into_iter()
        .filter_map(|e| match e {
            UbsEntry::Command(r) => Some(r),
            UbsEntry::Event(_) => None,
        })
        .collect();
    let from = kept.first().map_or(model.history().len(), |r| (r.seq as usize).saturating_sub(1));
    let want = model.history().get(from..).unwrap_or_default();
    for (w, k) in want.iter().zip(&kept) {
        if w != k {
            return Err(Violation::ForeignCommand {
                seq: k.seq,
                logged: format!("{k:?}"),
                sent: Some(format!("{w:?}")),
            });
        }
    }
    if want.len() != kept.len() {
        return Err(Violation::HistoryBroken {
            detail: format!(
                "ubscore keeps {} commands from seq {}, the model {}",
                kept.len(),
                from + 1,
                want.len()
            ),
        });
    }
    Ok(())
}
