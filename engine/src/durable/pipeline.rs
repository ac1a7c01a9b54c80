//! The three durable services in one process, linked by the pull protocol: each asks its
//! upstream for durable entries after its own watermark. A client's command is
//! acknowledged only after UBSCore's commit covering it.

use super::{DurableConfig, DurableError, DurableMatching, DurableSettlement, DurableUbs, RecoveryInfo};
use crate::storage::FileSystem;
use crate::{Ack, Command, Markets, MeInput, Outcome, UbsRecord};
use std::path::Path;
use std::sync::Arc;

/// Entries pulled per request.
const BATCH: usize = 1024;

/// What each service found when the pipeline opened.
#[derive(Clone, Debug, Default)]
pub struct PipelineRecovery {
    /// UBSCore's recovery.
    pub ubscore: RecoveryInfo,
    /// The matching engine's recovery.
    pub matching: RecoveryInfo,
    /// Settlement's recovery.
    pub settlement: RecoveryInfo,
}

/// Storage settings of the three services.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// UBSCore.
    pub ubscore: DurableConfig,
    /// Matching.
    pub matching: DurableConfig,
    /// Settlement.
    pub settlement: DurableConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            ubscore: DurableConfig::ubscore(),
            matching: DurableConfig::matching(),
            settlement: DurableConfig::settlement(),
        }
    }
}

/// What the matching engine does with a UBSCore record: an accepted place or cancel is an
/// input; anything else only moves its watermark.
pub fn me_input(record: &UbsRecord) -> Option<MeInput> {
    match (record.command, record.outcome) {
        (Command::Place(order), Outcome::Accepted) => Some(MeInput::Place(order)),
        (Command::Cancel { order_id, user }, Outcome::Accepted) => Some(MeInput::Cancel { order_id, user }),
        (Command::Place(o), Outcome::Rejected(reason)) => {
            Some(MeInput::Reject { order_id: o.order_id, user: o.user, reason })
        }
        _ => None,
    }
}

/// UBSCore, Matching and Settlement, each with its own directory under one root.
pub struct DurablePipeline {
    /// UBSCore.
    pub ubs: DurableUbs,
    /// Matching.
    pub me: DurableMatching,
    /// Settlement.
    pub settlement: DurableSettlement,
}

impl DurablePipeline {
    /// Opens (recovers) all three services under `root` and lets them catch up.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        root: &Path,
        markets: Markets,
        config: PipelineConfig,
        now_ms: u64,
    ) -> Result<(DurablePipeline, PipelineRecovery), DurableError> {
        let (ubs, u) =
            DurableUbs::open(fs.clone(), &root.join("ubscore"), markets.clone(), config.ubscore, now_ms)?;
        let (me, m) =
            DurableMatching::open(fs.clone(), &root.join("matching"), markets, config.matching, now_ms)?;
        let (settlement, s) =
            DurableSettlement::open(fs, &root.join("settlement"), config.settlement, now_ms)?;
        let mut p = DurablePipeline { ubs, me, settlement };
        p.converge(now_ms)?;
        Ok((p, PipelineRecovery { ubscore: u, matching: m, settlement: s }))
    }

    /// Submits one command: UBSCore applies and commits it (only then is it acknowledged),
    /// and the downstream services pull until everything has flowed through.
    pub fn submit(&mut self, command: Command, now_ms: u64) -> Result<Ack, DurableError> {
        let sub = self.ubs.submit(command);
        self.ubs.commit()?;
        self.converge(now_ms)?;
        Ok(sub.ack)
    }

    /// Runs the pull links until no service has anything left to pull, then takes any
    /// snapshots that are due.
    pub fn converge(&mut self, now_ms: u64) -> Result<(), DurableError> {
        loop {
            let mut moved = false;
            // Matching pulls UBSCore's durable records.
            for rec in self.ubs.records_after(self.me.last_ubs_seq(), BATCH)? {
                self.me.process(rec.seq, me_input(&rec).as_ref())?;
                moved = true;
            }
            self.me.commit()?;
            // UBSCore pulls the ME's durable events.
            for ev in self.me.events_after(self.ubs.core().last_event_id(), BATCH)? {
                self.ubs.apply_event(&ev)?;
                moved = true;
            }
            self.ubs.commit()?;
            // Settlement pulls the ME's durable trades.
            for trade in self.me.trades_after(self.settlement.settlement().last_trade_id(), BATCH)? {
                self.settlement.apply(&trade)?;
                moved = true;
            }
            self.settlement.commit()?;
            if !moved {
                break;
            }
        }
        // Retention never drops what a downstream service could need to recover.
        self.ubs.set_downstream_floor(self.me.recovery_floor());
        self.me.set_downstream_floors(self.ubs.recovery_floor(), self.settlement.durable_trade_id());
        self.ubs.maybe_snapshot(now_ms)?;
        self.me.maybe_snapshot(now_ms)?;
        self.settlement.maybe_checkpoint(now_ms)?;
        Ok(())
    }
}
