//! A service that follows the matching engine's event log (market data, the audit trail),
//! with its WAL and snapshots: the WAL holds the events as pulled (WAL seq = `event_id`),
//! a snapshot holds the whole derived state. Recovery loads the newest snapshot and
//! re-derives from the events after it, so what was published is published again,
//! identically.

use super::{DurableConfig, DurableError, RecoveryInfo, decode, kind};
use crate::audit::{AuditState, AuditTrail};
use crate::codec;
use crate::market_data::{MarketData, MdConfig, MdState};
use crate::snapshot;
use crate::storage::FileSystem;
use crate::wal::{Wal, WalError};
use crate::{Applied, EventId, Markets, MeEvent, MeEventKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const STATE_FILE: &str = "state.bin";

/// Who follows the matching engine's event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FollowerId {
    /// Market data.
    MarketData = 0,
    /// Settlement's audit trail.
    Audit = 1,
}

/// A state machine derived from the matching engine's events.
pub trait Follower: Sized {
    /// Its whole state, as snapshotted.
    type State: Serialize + DeserializeOwned;
    /// Its name in snapshots and errors.
    const NAME: &'static str;
    /// Applies one event (a duplicate changes nothing; a gap is refused).
    fn apply_event(&mut self, event: &MeEvent) -> Result<Applied, String>;
    /// The last applied event.
    fn last_event_id(&self) -> EventId;
    /// The whole state.
    fn whole_state(&self) -> &Self::State;
    /// Called for each event re-derived by a recovery; `first_trade`: the first trade
    /// re-derived after a snapshot (where a planted bug strikes).
    fn replayed(&mut self, _event: &MeEvent, _first_trade: bool) {}
}

impl Follower for MarketData {
    type State = MdState;
    const NAME: &'static str = "market_data";
    fn apply_event(&mut self, event: &MeEvent) -> Result<Applied, String> {
        self.apply(event).map_err(|e| e.to_string())
    }
    fn last_event_id(&self) -> EventId {
        MarketData::last_event_id(self)
    }
    fn whole_state(&self) -> &MdState {
        self.state()
    }
    fn replayed(&mut self, event: &MeEvent, first_trade: bool) {
        if let MeEventKind::Trade(t) = event.kind
            && first_trade
            && crate::bugs::planted(crate::bugs::Bug::TickLostOnRecovery)
        {
            self.lose_tick(t.trade_id);
        }
    }
}

impl Follower for AuditTrail {
    type State = AuditState;
    const NAME: &'static str = "audit";
    fn apply_event(&mut self, event: &MeEvent) -> Result<Applied, String> {
        self.apply(event).map_err(|e| e.to_string())
    }
    fn last_event_id(&self) -> EventId {
        AuditTrail::last_event_id(self)
    }
    fn whole_state(&self) -> &AuditState {
        self.state()
    }
}

/// Market data with its durable log of pulled events.
pub type DurableMarketData = DurableFollower<MarketData>;
/// The audit trail with its durable log of pulled events.
pub type DurableAudit = DurableFollower<AuditTrail>;

/// A follower with its durable log of pulled events.
pub struct DurableFollower<F: Follower> {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: DurableConfig,
    inner: F,
    wal: Wal,
    since_snapshot: u64,
    last_snapshot_ms: u64,
    /// The event of its oldest kept snapshot (0: none): the matching engine keeps every
    /// event after it.
    recovery_floor: EventId,
}

/// The event of the oldest snapshot in `dir`'s snapshots (0: none).
fn oldest_snapshot_event(fs: &dyn FileSystem, dir: &Path) -> EventId {
    snapshot::oldest_fields(fs, &dir.join("snapshots")).and_then(|f| f.get("seq").copied()).unwrap_or(0)
}

impl DurableFollower<MarketData> {
    /// Recovers market data (see [`DurableFollower::open`]).
    pub fn open_market_data(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        markets: &Markets,
        md_config: MdConfig,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableMarketData, RecoveryInfo), DurableError> {
        md_config.validate().map_err(DurableError::Engine)?;
        let restore = |state| MarketData::from_state(markets, md_config, state).map_err(|e| e.to_string());
        DurableFollower::open(fs, dir, config, now_ms, MarketData::new(markets, md_config), restore)
    }
}

impl DurableFollower<AuditTrail> {
    /// Recovers the audit trail (see [`DurableFollower::open`]).
    pub fn open_audit(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableAudit, RecoveryInfo), DurableError> {
        DurableFollower::open(fs, dir, config, now_ms, AuditTrail::new(), |s| Ok(AuditTrail::from_state(s)))
    }
}

impl<F: Follower> DurableFollower<F> {
    /// Recovers: the newest valid snapshot (rebuilt with `restore`; none: `fresh`), then
    /// every logged event after it.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: DurableConfig,
        now_ms: u64,
        fresh: F,
        restore: impl FnOnce(F::State) -> Result<F, String>,
    ) -> Result<(DurableFollower<F>, RecoveryInfo), DurableError> {
        let mut info = RecoveryInfo::default();
        let mut inner = match snapshot::load(fs.as_ref(), &dir.join("snapshots"), F::NAME)? {
            Some(l) => {
                let bytes = l.files.get(STATE_FILE).map(Vec::as_slice).unwrap_or_default();
                let state: F::State = decode(|| format!("{} snapshot {}", F::NAME, l.meta.seq), bytes)?;
                let inner = restore(state).map_err(DurableError::Divergence)?;
                if inner.last_event_id() != l.meta.seq {
                    return Err(DurableError::Divergence(format!(
                        "{} snapshot {} holds state as of event {}",
                        F::NAME,
                        l.meta.seq,
                        inner.last_event_id()
                    )));
                }
                info.snapshot_seq = Some(l.meta.seq);
                info.skipped_snapshots = l.skipped;
                inner
            }
            None => fresh,
        };
        let from_snapshot = inner.last_event_id();
        let mut first_trade = info.snapshot_seq.is_some();
        let (wal, wal_info) = Wal::open(fs.clone(), &dir.join("wal"), config.wal, |e| {
            let refuse = |reason: String| WalError::Replay { seq: e.seq, reason };
            if e.kind != kind::FOLLOWED_EVENT {
                return Err(refuse(format!("unknown entry type {}", e.kind)));
            }
            if e.seq <= from_snapshot {
                return Ok(());
            }
            let event: MeEvent = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
            if event.event_id != e.seq {
                return Err(refuse(format!("event {} stored at WAL seq {}", event.event_id, e.seq)));
            }
            match inner.apply_event(&event) {
                Ok(Applied::Applied) => {}
                other => return Err(refuse(format!("{} replay: {other:?}", F::NAME))),
            }
            let is_trade = matches!(event.kind, MeEventKind::Trade(_));
            inner.replayed(&event, is_trade && std::mem::take(&mut first_trade));
            Ok(())
        })?;
        // A snapshot is taken after the commit that covers it: a WAL that ends before it
        // lost durable entries.
        if wal.next_seq() <= from_snapshot {
            return Err(DurableError::Divergence(format!(
                "{} snapshot is as of event {from_snapshot}, the WAL ends at {}",
                F::NAME,
                wal.next_seq() - 1
            )));
        }
        // And one that ends beyond the state replayed holds events nothing replayed: the
        // snapshot they followed is gone and retention removed what came before them.
        if wal.next_seq() - 1 != inner.last_event_id() {
            return Err(DurableError::Divergence(format!(
                "{} recovered as of event {}, but its WAL ends at {} (its first kept entry {}): \
                 the snapshot those entries follow is lost",
                F::NAME,
                inner.last_event_id(),
                wal.next_seq() - 1,
                wal.first_seq()
            )));
        }
        info.replayed = inner.last_event_id() - from_snapshot;
        info.wal = wal_info;
        let since_snapshot = info.replayed;
        let dir = dir.to_path_buf();
        let recovery_floor = oldest_snapshot_event(fs.as_ref(), &dir);
        let last_snapshot_ms = now_ms;
        Ok((
            DurableFollower { fs, dir, config, inner, wal, since_snapshot, last_snapshot_ms, recovery_floor },
            info,
        ))
    }

    /// Logs and applies one pulled event (durable after [`DurableFollower::commit`]). One
    /// at or below the watermark is skipped; a gap is refused.
    pub fn apply(&mut self, event: &MeEvent) -> Result<Applied, DurableError> {
        let applied = self.inner.apply_event(event).map_err(DurableError::Engine)?;
        if applied == Applied::Applied {
            let seq = self.wal.append(kind::FOLLOWED_EVENT, &codec::encode(event));
            assert_eq!(seq, event.event_id, "a follower's WAL seq is the event id");
            self.since_snapshot += 1;
        }
        Ok(applied)
    }

    /// Group commit. Returns the durable watermark (last logged event id).
    pub fn commit(&mut self) -> Result<EventId, DurableError> {
        if crate::bugs::planted(crate::bugs::Bug::FollowerServesUnsynced) {
            return Ok(self.durable_event_id());
        }
        Ok(self.wal.commit()?)
    }

    /// Takes a snapshot if due.
    pub fn maybe_snapshot(&mut self, now_ms: u64) -> Result<bool, DurableError> {
        if !self.config.snapshots.due(self.since_snapshot, now_ms.saturating_sub(self.last_snapshot_ms)) {
            return Ok(false);
        }
        self.snapshot(now_ms)?;
        Ok(true)
    }

    /// Commits and writes the whole state as a snapshot. Returns its event id.
    pub fn snapshot(&mut self, now_ms: u64) -> Result<EventId, DurableError> {
        let seq = self.wal.commit()?;
        assert_eq!(seq, self.inner.last_event_id(), "every applied event is logged");
        let fields = BTreeMap::from([("last_event_id".to_string(), seq)]);
        let snapshots = self.dir.join("snapshots");
        let files = [(STATE_FILE.to_string(), codec::encode(self.inner.whole_state()))];
        let keep = self.config.keep_snapshots;
        snapshot::write(self.fs.as_ref(), &snapshots, F::NAME, seq, fields, &files, keep)?;
        if let Some(oldest) =
            super::ubscore::oldest_snapshot(self.fs.as_ref(), &snapshots)?.filter(|_| self.config.retention)
        {
            self.wal.retain_from(oldest + 1)?;
        }
        self.recovery_floor = oldest_snapshot_event(self.fs.as_ref(), &self.dir);
        self.since_snapshot = 0;
        self.last_snapshot_ms = now_ms;
        Ok(seq)
    }

    /// The event of its oldest kept snapshot (0: none): the oldest point it could recover
    /// to, so the matching engine must keep every event after it.
    pub fn recovery_floor(&self) -> EventId {
        self.recovery_floor
    }

    /// The watermark: every event up to it is durable here.
    pub fn durable_event_id(&self) -> EventId {
        if crate::bugs::planted(crate::bugs::Bug::FollowerServesUnsynced) {
            return self.inner.last_event_id();
        }
        self.wal.durable_seq()
    }

    /// The state machine (queries answer from it up to the durable watermark).
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}
