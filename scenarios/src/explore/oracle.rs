//! The explorer's judge: after every recovery, every service must open without error,
//! each must load the newest snapshot that verifies on the disk (judged by the simulator),
//! UBSCore's log must hold exactly the first `p` commands as sent, and the full state of
//! all of them (balances, locks, de-dup counters, books, order index, event log, ledger,
//! market data, the audit trail) must equal the model fed those `p` commands; `p` must lie
//! between the commands acknowledged and the commands submitted before the crash. The
//! followers are judged as recovered too ([`super::followers`]).

use super::drive::{SERVICES, Setup, service_dir};
use super::followers;
use super::served::Marks;
use crate::checker::{Violation, final_state};
use crate::model::Model;
use engine::durable::pipeline::PipelineRecovery;
use engine::durable::{DurableError, DurablePipeline, UbsEntry};
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
    /// The followers' derivations, when the workload runs them.
    followers: Option<followers::Truth>,
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
        let full = &models[models.len() - 1];
        let followers = setup
            .config
            .followers
            .map(|f| followers::Truth::new(full, f.md, &setup.markets, &setup.commands));
        Oracle { models, logged, followers }
    }

    /// The model fed the whole workload.
    pub fn model_at_end(&self) -> &Model {
        &self.models[self.models.len() - 1]
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

    /// Recovers every service from `disk` (alive, resolved) and judges them against
    /// the model. Returns `h`, the entries the recovered history holds.
    pub fn recover(&self, setup: &Setup, disk: &Arc<Mutex<Disk>>) -> Result<usize, Violation> {
        self.recover_marked(setup, disk).map(|(h, _)| h)
    }

    /// [`Oracle::recover`], with what each service's recovery held before it pulled
    /// anything (to be held against what it served before the crash).
    pub fn recover_marked(
        &self,
        setup: &Setup,
        disk: &Arc<Mutex<Disk>>,
    ) -> Result<(usize, Marks), Violation> {
        self.recover_or_detect(setup, disk).map_err(|(v, _)| v)
    }

    /// Like [`Oracle::recover_marked`] on a disk damaged at rest: a service that refuses to
    /// open naming the damage has detected it (`Ok(None)`); one that opens must hold the truth.
    pub fn recover_damaged(
        &self,
        setup: &Setup,
        disk: &Arc<Mutex<Disk>>,
    ) -> Result<Option<(usize, Marks)>, Violation> {
        match self.recover_or_detect(setup, disk) {
            Ok(recovered) => Ok(Some(recovered)),
            Err((_, true)) => Ok(None),
            Err((v, false)) if v.is_data_loss_or_change() => {
                Err(Violation::SilentCorruption { found: Box::new(v) })
            }
            Err((v, false)) => Err(v),
        }
    }

    /// The recovery and its verdict; on failure, whether the engine's error names damage.
    fn recover_or_detect(
        &self,
        setup: &Setup,
        disk: &Arc<Mutex<Disk>>,
    ) -> Result<(usize, Marks), (Violation, bool)> {
        let expected: Vec<Option<u64>> = SERVICES
            .iter()
            .map(|s| {
                let disk = disk.lock().unwrap_or_else(|e| e.into_inner());
                sim::snapshots::newest_valid(&disk, &service_dir(s))
            })
            .collect();
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let fs = Arc::new(sim::fs::NodeFs::detached(disk.clone()));
            let (mut p, info) =
                DurablePipeline::recover(fs, &super::drive::root(), setup.markets.clone(), setup.config, 0)?;
            let recovered = self.followers.as_ref().and_then(|t| followers::Recovered::of(&p, &t.queries));
            let marks = recovered.as_ref().map_or(Marks::default(), followers::Recovered::marks);
            p.converge(0)?;
            Ok::<_, DurableError>((p, info, recovered, marks))
        }));
        let (p, info, recovered, marks) = match opened {
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
        let mut wals = vec![p.ubs.wal(), p.me.wal(), p.settlement.wal()];
        if let Some(f) = &p.followers {
            wals.extend([f.market_data.wal(), f.audit.wal()]);
        }
        for wal in wals {
            if let Err(e) = wal.scrub() {
                let e = engine::durable::DurableError::Wal(e);
                let named = sim::world::names_damage(&e);
                return Err((Violation::Unrecoverable { error: e.to_string() }, named));
            }
        }
        let h = self.judge_open(&p, &info, &expected, recovered.as_ref()).map_err(|v| (v, false))?;
        Ok((h, marks))
    }

    /// Judges opened services against the model.
    fn judge_open(
        &self,
        p: &DurablePipeline,
        info: &PipelineRecovery,
        expected: &[Option<u64>],
        recovered: Option<&followers::Recovered>,
    ) -> Result<usize, Violation> {
        let mut loaded =
            vec![info.ubscore.snapshot_seq, info.matching.snapshot_seq, info.settlement.snapshot_seq];
        loaded.extend(info.followers.iter().flatten().map(|f| f.snapshot_seq));
        for ((service, want), got) in SERVICES.iter().zip(expected).zip(&loaded) {
            if got != want {
                return Err(Violation::RecoveryMismatch {
                    service: sim::fs::service_of(&service_dir(service)),
                    recovery: 0,
                    at: got.unwrap_or(0),
                    field: "snapshot loaded".into(),
                    expected: format!("{want:?} (the newest that verifies on the disk)"),
                    actual: format!("{got:?}"),
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
        if let (Some(truth), Some(recovered)) = (&self.followers, recovered) {
            truth.judge_recovered(recovered, model.events().len() as u64)?;
        }
        check_history(&p.ubs, model)?;
        final_state::check(&p.ubs, &p.me, &p.settlement, model)?;
        if let Some(truth) = &self.followers {
            truth.judge_caught_up(p, model.events().len() as u64)?;
        }
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
