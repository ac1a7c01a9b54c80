//! Market data with its WAL and snapshots: the WAL holds the matching engine's events as
//! pulled (WAL seq = `event_id`), a snapshot holds the whole derived state (books, ticks,
//! L2 books, top-of-book deltas). Recovery loads the newest snapshot and re-derives from
//! the events after it, so what was published is published again, identically.

use super::{DurableConfig, DurableError, RecoveryInfo, decode, kind};
use crate::codec;
use crate::market_data::{MarketData, MdConfig, MdState};
use crate::snapshot;
use crate::storage::FileSystem;
use crate::wal::{Wal, WalError};
use crate::{Applied, EventId, Markets, MeEvent, MeEventKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERVICE: &str = "market_data";
const STATE_FILE: &str = "state.bin";

/// Market data with its durable log of pulled events.
pub struct DurableMarketData {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: DurableConfig,
    md: MarketData,
    wal: Wal,
    since_snapshot: u64,
    last_snapshot_ms: u64,
}

impl DurableMarketData {
    /// Recovers: the newest valid snapshot, then every logged event after it.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        markets: &Markets,
        md_config: MdConfig,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableMarketData, RecoveryInfo), DurableError> {
        md_config.validate().map_err(DurableError::Engine)?;
        let mut info = RecoveryInfo::default();
        let mut md = match snapshot::load(fs.as_ref(), &dir.join("snapshots"), SERVICE)? {
            Some(l) => {
                let bytes = l.files.get(STATE_FILE).map(Vec::as_slice).unwrap_or_default();
                let state: MdState = decode(|| format!("market data snapshot {}", l.meta.seq), bytes)?;
                if state.last_event_id != l.meta.seq {
                    return Err(DurableError::Divergence(format!(
                        "market data snapshot {} holds state as of event {}",
                        l.meta.seq, state.last_event_id
                    )));
                }
                info.snapshot_seq = Some(l.meta.seq);
                info.skipped_snapshots = l.skipped;
                MarketData::from_state(markets, md_config, state)
                    .map_err(|e| DurableError::Divergence(e.to_string()))?
            }
            None => MarketData::new(markets, md_config),
        };
        let from_snapshot = md.last_event_id();
        let mut lose_next_tick = info.snapshot_seq.is_some();
        let (wal, wal_info) = Wal::open(fs.clone(), &dir.join("wal"), config.wal, |e| {
            let refuse = |reason: String| WalError::Replay { seq: e.seq, reason };
            if e.kind != kind::MD_EVENT {
                return Err(refuse(format!("unknown entry type {}", e.kind)));
            }
            if e.seq <= from_snapshot {
                return Ok(());
            }
            let event: MeEvent = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
            if event.event_id != e.seq {
                return Err(refuse(format!("event {} stored at WAL seq {}", event.event_id, e.seq)));
            }
            match md.apply(&event) {
                Ok(Applied::Applied) => {}
                other => return Err(refuse(format!("market data replay: {other:?}"))),
            }
            if let MeEventKind::Trade(t) = event.kind
                && std::mem::take(&mut lose_next_tick)
                && crate::bugs::planted(crate::bugs::Bug::TickLostOnRecovery)
            {
                md.lose_tick(t.trade_id);
            }
            Ok(())
        })?;
        if md.last_event_id() < from_snapshot {
            return Err(DurableError::Divergence(format!(
                "market data snapshot is as of event {from_snapshot}, the WAL ends at {}",
                md.last_event_id()
            )));
        }
        info.replayed = md.last_event_id() - from_snapshot;
        info.wal = wal_info;
        let since_snapshot = info.replayed;
        let d = DurableMarketData {
            fs,
            dir: dir.to_path_buf(),
            config,
            md,
            wal,
            since_snapshot,
            last_snapshot_ms: now_ms,
        };
        Ok((d, info))
    }

    /// Logs and applies one pulled event (durable after [`DurableMarketData::commit`]).
    /// One at or below the watermark is skipped; a gap is refused.
    pub fn apply(&mut self, event: &MeEvent) -> Result<Applied, DurableError> {
        let applied = self.md.apply(event).map_err(|e| DurableError::Engine(e.to_string()))?;
        if applied == Applied::Applied {
            let seq = self.wal.append(kind::MD_EVENT, &codec::encode(event));
            assert_eq!(seq, event.event_id, "market data WAL seq is the event id");
            self.since_snapshot += 1;
        }
        Ok(applied)
    }

    /// Group commit. Returns the durable watermark (last logged event id).
    pub fn commit(&mut self) -> Result<EventId, DurableError> {
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
        let seq = self.commit()?;
        assert_eq!(seq, self.md.last_event_id(), "every applied event is logged");
        let fields = BTreeMap::from([("last_event_id".to_string(), seq)]);
        let snapshots = self.dir.join("snapshots");
        let files = [(STATE_FILE.to_string(), codec::encode(self.md.state()))];
        snapshot::write(
            self.fs.as_ref(),
            &snapshots,
            SERVICE,
            seq,
            fields,
            &files,
            self.config.keep_snapshots,
        )?;
        if let Some(oldest) =
            super::ubscore::oldest_snapshot(self.fs.as_ref(), &snapshots)?.filter(|_| self.config.retention)
        {
            self.wal.retain_from(oldest + 1)?;
        }
        self.since_snapshot = 0;
        self.last_snapshot_ms = now_ms;
        Ok(seq)
    }

    /// The watermark: every event up to it is durable here.
    pub fn durable_event_id(&self) -> EventId {
        self.wal.durable_seq()
    }

    /// The in-memory market data (queries answer from it up to the durable watermark).
    pub fn market_data(&self) -> &MarketData {
        &self.md
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}
