//! The durable services in one process, linked by the pull protocol: each asks its
//! upstream for durable entries after its own watermark. A client's command is
//! acknowledged only after UBSCore's commit covering it. With order events on, the
//! matching engine's two followers run too: market data, and Settlement's audit trail
//! (Settlement then pulls the whole event log, as its node does).

use super::{
    DurableAudit, DurableConfig, DurableError, DurableMarketData, DurableMatching, DurableSettlement,
    DurableUbs, FollowerId, RecoveryInfo, contiguous, settle_events,
};
use crate::market_data::MdConfig;
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
    /// The followers' recoveries (market data, the audit trail), when they run.
    pub followers: Option<[RecoveryInfo; 2]>,
}

/// Storage and publication settings of the matching engine's followers.
#[derive(Clone, Copy, Debug)]
pub struct FollowersConfig {
    /// What market data publishes.
    pub md: MdConfig,
    /// Market data's storage.
    pub market_data: DurableConfig,
    /// The audit trail's storage.
    pub audit: DurableConfig,
    /// The followers (Settlement with its trail, market data) pull after every this many
    /// submitted commands (1: every one): a follower that lags as its process would, so
    /// that the matching engine's retention must keep what it has not pulled yet.
    pub pull_every: u64,
}

/// The matching engine's followers.
pub struct Followers {
    /// Market data (`<root>/market-data`).
    pub market_data: DurableMarketData,
    /// Settlement's audit trail (`<root>/settlement/audit`).
    pub audit: DurableAudit,
}

/// Storage settings of the services.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// UBSCore.
    pub ubscore: DurableConfig,
    /// Matching.
    pub matching: DurableConfig,
    /// Settlement.
    pub settlement: DurableConfig,
    /// The followers: required exactly when the markets publish order events.
    pub followers: Option<FollowersConfig>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            ubscore: DurableConfig::ubscore(),
            matching: DurableConfig::matching(),
            settlement: DurableConfig::settlement(),
            followers: None,
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

/// UBSCore, Matching, Settlement and (with order events) the followers, each with its own
/// directory under one root.
pub struct DurablePipeline {
    /// UBSCore.
    pub ubs: DurableUbs,
    /// Matching.
    pub me: DurableMatching,
    /// Settlement.
    pub settlement: DurableSettlement,
    /// Market data and the audit trail, with order events on.
    pub followers: Option<Followers>,
    /// Commands submitted since the followers last pulled, and after how many they pull.
    unpulled: u64,
    pull_every: u64,
    /// Called after every round of the followers' pulls, once both committed (see
    /// [`DurablePipeline::on_followers_commit`]).
    followers_committed: Option<FollowersCommitted>,
}

/// What [`DurablePipeline::on_followers_commit`] calls: the followers just committed.
pub type FollowersCommitted = Box<dyn FnMut(&Followers) + Send>;

impl DurablePipeline {
    /// Opens (recovers) all services under `root` and lets them catch up.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        root: &Path,
        markets: Markets,
        config: PipelineConfig,
        now_ms: u64,
    ) -> Result<(DurablePipeline, PipelineRecovery), DurableError> {
        let (mut p, info) = DurablePipeline::recover(fs, root, markets, config, now_ms)?;
        p.converge(now_ms)?;
        Ok((p, info))
    }

    /// Recovers every service from its own directory, without letting them pull: each
    /// holds what its own recovery found.
    pub fn recover(
        fs: Arc<dyn FileSystem>,
        root: &Path,
        markets: Markets,
        config: PipelineConfig,
        now_ms: u64,
    ) -> Result<(DurablePipeline, PipelineRecovery), DurableError> {
        if config.followers.is_some_and(|f| f.pull_every == 0) {
            return Err(DurableError::Engine("the followers' pull_every must be at least 1".into()));
        }
        if markets.order_events() != config.followers.is_some() {
            return Err(DurableError::Engine(format!(
                "the followers must run exactly when the markets publish order events \
                 (order events {}, followers {})",
                markets.order_events(),
                config.followers.is_some()
            )));
        }
        let (ubs, u) =
            DurableUbs::open(fs.clone(), &root.join("ubscore"), markets.clone(), config.ubscore, now_ms)?;
        let (me, m) = DurableMatching::open(
            fs.clone(),
            &root.join("matching"),
            markets.clone(),
            config.matching,
            now_ms,
        )?;
        let (settlement, s) =
            DurableSettlement::open(fs.clone(), &root.join("settlement"), config.settlement, now_ms)?;
        let mut info = PipelineRecovery { ubscore: u, matching: m, settlement: s, followers: None };
        let followers = match config.followers {
            None => None,
            Some(f) => {
                let (market_data, md) = DurableMarketData::open_market_data(
                    fs.clone(),
                    &root.join("market-data"),
                    &markets,
                    f.md,
                    f.market_data,
                    now_ms,
                )?;
                let (audit, a) =
                    DurableAudit::open_audit(fs, &root.join("settlement").join("audit"), f.audit, now_ms)?;
                info.followers = Some([md, a]);
                Some(Followers { market_data, audit })
            }
        };
        let pull_every = config.followers.map_or(1, |f| f.pull_every);
        let followers_committed = None;
        Ok((
            DurablePipeline { ubs, me, settlement, followers, unpulled: 0, pull_every, followers_committed },
            info,
        ))
    }

    /// Calls `f` after every round of the followers' pulls, once both have committed
    /// (market data last; a round that fails before then calls nothing), with the
    /// followers as they stand: the moments from which a follower process would answer
    /// queries up to its new watermark (an observer of what they serve, as the explorer is).
    pub fn on_followers_commit(&mut self, f: FollowersCommitted) {
        self.followers_committed = Some(f);
    }

    /// Submits one command: UBSCore applies and commits it (only then is it acknowledged),
    /// and the downstream services pull until everything has flowed through (the
    /// followers only every `pull_every` commands).
    pub fn submit(&mut self, command: Command, now_ms: u64) -> Result<Ack, DurableError> {
        let sub = self.ubs.submit(command);
        self.ubs.commit()?;
        self.unpulled += 1;
        let followers_pull = self.unpulled >= self.pull_every;
        self.flow(now_ms, followers_pull)?;
        Ok(sub.ack)
    }

    /// A graceful stop of every service (each one's SIGTERM, as `crate::service` runs it):
    /// everything flows through, then each takes a snapshot of what it committed. The
    /// pipeline is done; open the directories again to go on.
    pub fn stop(mut self, now_ms: u64) -> Result<(), DurableError> {
        self.converge(now_ms)?;
        self.ubs.snapshot(now_ms)?;
        if crate::bugs::planted(crate::bugs::Bug::CleanStopTrusted) {
            self.ubs.leave_clean_marker()?;
        }
        if self.me.caught_up() {
            self.me.snapshot(now_ms)?;
        }
        self.settlement.checkpoint(now_ms)?;
        if let Some(f) = &mut self.followers {
            f.market_data.snapshot(now_ms)?;
            f.audit.snapshot(now_ms)?;
        }
        Ok(())
    }

    /// Runs the pull links until no service has anything left to pull, then takes any
    /// snapshots that are due.
    pub fn converge(&mut self, now_ms: u64) -> Result<(), DurableError> {
        self.flow(now_ms, true)
    }

    /// [`DurablePipeline::converge`], with the followers pulling only if `followers_pull`.
    fn flow(&mut self, now_ms: u64, followers_pull: bool) -> Result<(), DurableError> {
        if followers_pull {
            self.unpulled = 0;
        }
        loop {
            let mut moved = false;
            // Matching pulls UBSCore's durable records.
            let records = self.ubs.records_after(self.me.last_ubs_seq(), BATCH)?;
            contiguous("ubscore → matching", self.me.last_ubs_seq(), records.iter().map(|r| r.seq))?;
            for rec in records {
                self.me.process(rec.seq, me_input(&rec).as_ref())?;
                moved = true;
            }
            self.me.commit()?;
            // UBSCore pulls the ME's durable events.
            let events = self.me.events_after(self.ubs.core().last_event_id(), BATCH)?;
            contiguous(
                "matching → ubscore",
                self.ubs.core().last_event_id(),
                events.iter().map(|e| e.event_id),
            )?;
            for ev in events {
                self.ubs.apply_event(&ev)?;
                moved = true;
            }
            self.ubs.commit()?;
            moved |= self.pull_downstream(followers_pull)?;
            if !moved {
                break;
            }
        }
        // Retention never drops what a downstream service could need to recover.
        self.ubs.set_downstream_floor(self.me.recovery_floor());
        self.me.set_downstream_floors(self.ubs.recovery_floor(), self.settlement.durable_trade_id());
        if let Some(f) = &self.followers {
            self.me.set_follower_floor(FollowerId::MarketData, f.market_data.recovery_floor());
            self.me.set_follower_floor(FollowerId::Audit, f.audit.recovery_floor());
        }
        self.ubs.maybe_snapshot(now_ms)?;
        self.me.maybe_snapshot(now_ms)?;
        self.settlement.maybe_checkpoint(now_ms)?;
        if let Some(f) = &mut self.followers {
            f.market_data.maybe_snapshot(now_ms)?;
            f.audit.maybe_snapshot(now_ms)?;
        }
        Ok(())
    }

    /// One round of the matching engine's downstream pulls: Settlement's durable trades
    /// or, with the followers, Settlement (ledger, then trail) and market data pulling its
    /// durable events (only if `followers_pull`). Returns whether anything moved.
    fn pull_downstream(&mut self, followers_pull: bool) -> Result<bool, DurableError> {
        let Some(f) = &mut self.followers else {
            let last = self.settlement.settlement().last_trade_id();
            let trades = self.me.trades_after(last, BATCH)?;
            contiguous("matching → settlement", last, trades.iter().map(|t| t.trade_id))?;
            for trade in &trades {
                self.settlement.apply(trade)?;
            }
            self.settlement.commit()?;
            return Ok(!trades.is_empty());
        };
        if !followers_pull {
            return Ok(false);
        }
        let events = self.me.events_after(f.audit.inner().last_event_id(), BATCH)?;
        settle_events(&mut self.settlement, &mut f.audit, &events)?;
        let last = f.market_data.inner().last_event_id();
        let published = self.me.events_after(last, BATCH)?;
        contiguous("matching → market data", last, published.iter().map(|e| e.event_id))?;
        for e in &published {
            f.market_data.apply(e)?;
        }
        f.market_data.commit()?;
        if let Some(observe) = &mut self.followers_committed {
            observe(f);
        }
        Ok(!events.is_empty() || !published.is_empty())
    }
}
