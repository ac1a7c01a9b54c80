//! The matching engine with its event WAL (WAL seq = `event_id`) and per-book snapshots.
//! Recovery loads the snapshot and then re-matches UBSCore's orders after the snapshot's
//! `last_ubs_seq`: every regenerated event must equal, byte for byte, the one already in
//! the WAL (a free determinism check); events past the WAL's end are appended as new.

use super::index::SparseIndex;
use super::{DurableConfig, DurableError, FollowerId, RecoveryInfo, decode, kind};
use crate::codec;
use crate::matching::{MatchingEngine, MeState};
use crate::snapshot;
use crate::storage::FileSystem;
use crate::wal::{Wal, WalError};
use crate::{Applied, EventId, Markets, MeEvent, MeEventKind, MeInput, RestingOrder, Trade, TradeId, UbsSeq};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERVICE: &str = "matching";
/// The sparse trade_id index up to the snapshot (older snapshots lack it).
const TRADES_INDEX_FILE: &str = "trades-index.bin";

/// The matching engine with its WAL.
pub struct DurableMatching {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: DurableConfig,
    me: MatchingEngine,
    wal: Wal,
    /// Logged events not yet regenerated since the restart.
    unverified: VecDeque<MeEvent>,
    trades: SparseIndex,
    scratch: Vec<MeEvent>,
    since_snapshot: u64,
    last_snapshot_ms: u64,
    /// Events above this must stay for UBSCore's recovery.
    floor_event: EventId,
    /// Trades above this must stay for Settlement.
    floor_trade: TradeId,
    /// Where each follower of the log (market data, the audit trail) may re-pull after,
    /// as heard since this start (`None`: not yet; retention then keeps everything).
    floor_followers: [Option<EventId>; 2],
    /// `last_ubs_seq` of the oldest kept snapshot.
    recovery_floor: UbsSeq,
}

fn book_file(symbol: u32) -> String {
    format!("book-{symbol}.bin")
}

impl DurableMatching {
    /// Loads the newest valid snapshot and reads the WAL after it. The engine then needs
    /// UBSCore's records after [`DurableMatching::last_ubs_seq`] to catch up.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        markets: Markets,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableMatching, RecoveryInfo), DurableError> {
        let mut info = RecoveryInfo::default();
        let (me, stored_index) = match snapshot::load(fs.as_ref(), &dir.join("snapshots"), SERVICE)? {
            Some(l) => {
                let field = |name: &str| {
                    l.meta.fields.get(name).copied().ok_or_else(|| {
                        DurableError::Divergence(format!("matching snapshot {} lacks {name}", l.meta.seq))
                    })
                };
                let mut books = BTreeMap::new();
                for s in markets.symbols() {
                    let bytes = l.files.get(&book_file(s.id)).map(Vec::as_slice).unwrap_or_default();
                    let orders: Vec<RestingOrder> =
                        decode(|| format!("matching snapshot book {}", s.id), bytes)?;
                    books.insert(s.id, orders);
                }
                let state = MeState {
                    last_ubs_seq: field("last_ubs_seq")?,
                    next_trade_id: field("next_trade_id")?,
                    next_event_id: field("next_event_id")?,
                    books,
                };
                if l.meta.seq + 1 != state.next_event_id {
                    return Err(DurableError::Divergence(
                        "matching snapshot seq != next_event_id - 1".into(),
                    ));
                }
                info.snapshot_seq = Some(l.meta.seq);
                info.skipped_snapshots = l.skipped;
                let what = format!("matching snapshot {} trade index", l.meta.seq);
                let index = match l.files.get(TRADES_INDEX_FILE) {
                    Some(b) => Some(SparseIndex::decode(&what, b, l.meta.seq)?),
                    None => None,
                };
                (MatchingEngine::from_state(markets, state).map_err(DurableError::Divergence)?, index)
            }
            None => (MatchingEngine::new(markets), None),
        };
        let next_event = me.next_event_id();
        let mut unverified = VecDeque::new();
        // With the stored trade index, the sealed segments the snapshot covers are not read.
        let skip_below = if stored_index.is_some() { next_event } else { 0 };
        let mut trades = stored_index.unwrap_or_default();
        let mut first_seen = None;
        let (wal, wal_info) = Wal::open_from(fs.clone(), &dir.join("wal"), config.wal, skip_below, |e| {
            first_seen.get_or_insert(e.seq);
            let refuse = |reason: String| WalError::Replay { seq: e.seq, reason };
            if e.kind != kind::ME_EVENT {
                return Err(refuse(format!("unknown entry type {}", e.kind)));
            }
            if e.seq < next_event {
                // Covered by the snapshot: only the trade index needs it. A trade's encoding
                // starts with event_id, ubs_seq, variant 0 (Trade), trade_id.
                let [event_id, _, variant, trade_id] = codec::leading_varints::<4>(e.payload)
                    .ok_or_else(|| refuse("undecodable event".into()))?;
                if event_id != e.seq {
                    return Err(refuse(format!("event {event_id} stored at WAL seq {}", e.seq)));
                }
                if variant == 0 {
                    trades.note(trade_id, e.seq);
                }
                return Ok(());
            }
            let ev: MeEvent = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
            if ev.event_id != e.seq {
                return Err(refuse(format!("event {} stored at WAL seq {}", ev.event_id, e.seq)));
            }
            if let MeEventKind::Trade(t) = &ev.kind {
                trades.note(t.trade_id, e.seq);
            }
            if ev.event_id >= next_event {
                unverified.push_back(ev);
            }
            Ok(())
        })?;
        // The WAL must continue the snapshot: from its next event (or, holding nothing after
        // it, end right there), never ending before it.
        let continues = match first_seen {
            Some(f) => f <= next_event,
            None => wal.next_seq() <= next_event,
        };
        if !continues || wal.next_seq() < next_event {
            return Err(DurableError::Divergence(format!(
                "matching snapshot needs events from {next_event}, the WAL holds {first_seen:?}..{}",
                wal.next_seq() - 1
            )));
        }
        info.replayed = unverified.len() as u64;
        trades.forget_below(wal.first_seq());
        let since_snapshot = info.replayed;
        info.wal = wal_info;
        let m = DurableMatching {
            fs,
            dir: dir.to_path_buf(),
            config,
            me,
            wal,
            unverified,
            trades,
            scratch: Vec::new(),
            since_snapshot,
            last_snapshot_ms: now_ms,
            floor_event: 0,
            floor_trade: 0,
            floor_followers: [None; 2],
            recovery_floor: 0,
        };
        let mut m = m;
        m.recovery_floor = m.read_recovery_floor();
        Ok((m, info))
    }

    /// Consumes one UBSCore record: an accepted place or cancel is matched; anything else
    /// only advances the watermark. Regenerated events are verified against the WAL,
    /// new ones are logged (durable after [`DurableMatching::commit`]).
    pub fn process(&mut self, ubs_seq: UbsSeq, input: Option<&MeInput>) -> Result<Applied, DurableError> {
        self.scratch.clear();
        let applied = match input {
            Some(input) => self
                .me
                .process(ubs_seq, input, &mut self.scratch)
                .map_err(|e| DurableError::Engine(e.to_string()))?,
            None => self.me.skip(ubs_seq),
        };
        for ev in &self.scratch {
            match self.unverified.pop_front() {
                Some(logged) if logged == *ev => {}
                Some(logged) => {
                    return Err(DurableError::Divergence(format!(
                        "re-matching ubs_seq {ubs_seq} gives {ev:?}, the WAL has {logged:?}"
                    )));
                }
                None => {
                    let seq = self.wal.append(kind::ME_EVENT, &codec::encode(ev));
                    assert_eq!(seq, ev.event_id, "ME WAL seq is the event id");
                    if let MeEventKind::Trade(t) = &ev.kind {
                        self.trades.note(t.trade_id, seq);
                    }
                    self.since_snapshot += 1;
                }
            }
        }
        if let Some(next) = self.unverified.front() {
            if next.ubs_seq <= self.me.last_ubs_seq() {
                return Err(DurableError::Divergence(format!(
                    "the WAL has event {} for ubs_seq {}, re-matching produced none",
                    next.event_id, next.ubs_seq
                )));
            }
        }
        Ok(applied)
    }

    /// A matching engine that takes over a replica's state and event log (the promotion of
    /// a hot standby): opens `dir`, which must hold no engine yet, logs every event (ids
    /// from 1, dense), commits, and snapshots `state`, so that a restart replays nothing.
    /// An I/O error half-way leaves a prefix of the log and no snapshot; the replica's
    /// node clears its directory at its next start and hands over again once it holds
    /// enough.
    pub fn adopt(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        markets: Markets,
        config: DurableConfig,
        state: MeState,
        events: &[MeEvent],
        now_ms: u64,
    ) -> Result<DurableMatching, DurableError> {
        let (mut d, _) = DurableMatching::open(fs, dir, markets.clone(), config, now_ms)?;
        if d.durable_event_id() != 0 || d.last_ubs_seq() != 0 {
            return Err(DurableError::Divergence(format!(
                "cannot adopt a replica into {}: it holds events up to {}",
                dir.display(),
                d.durable_event_id()
            )));
        }
        if state.next_event_id != events.len() as u64 + 1 {
            return Err(DurableError::Divergence(format!(
                "a replica at event {} hands over {} events",
                state.next_event_id.saturating_sub(1),
                events.len()
            )));
        }
        for ev in events {
            let seq = d.wal.append(kind::ME_EVENT, &codec::encode(ev));
            if seq != ev.event_id {
                return Err(DurableError::Divergence(format!(
                    "replica event {} logged at {seq}",
                    ev.event_id
                )));
            }
            if let MeEventKind::Trade(t) = &ev.kind {
                d.trades.note(t.trade_id, seq);
            }
        }
        d.me = MatchingEngine::from_state(markets, state).map_err(DurableError::Divergence)?;
        d.commit()?;
        d.snapshot(now_ms)?;
        if crate::bugs::planted(crate::bugs::Bug::PromotionForgetsDownstream) {
            d.wal.retain_from(d.wal.durable_seq() + 1)?;
        }
        Ok(d)
    }

    /// Group commit. Returns the durable event id.
    pub fn commit(&mut self) -> Result<EventId, DurableError> {
        Ok(self.wal.commit()?)
    }

    /// Up to `max` durable events with `event_id > after`.
    pub fn events_after(&self, after: EventId, max: usize) -> Result<Vec<MeEvent>, DurableError> {
        self.read(after + 1, max, |_: &[u8]| true)
    }

    /// Up to `max` durable trades with `trade_id > after`, in order.
    pub fn trades_after(&self, after: TradeId, max: usize) -> Result<Vec<Trade>, DurableError> {
        let start = self.trades.start_for(after, self.wal.first_seq());
        // A trade event's encoding starts with event_id, ubs_seq, variant 0, trade_id.
        let wanted = |payload: &[u8]| {
            codec::leading_varints::<4>(payload)
                .is_none_or(|[_, _, variant, trade_id]| variant == 0 && trade_id > after)
        };
        let events = self.read(start, max, wanted)?;
        Ok(events
            .into_iter()
            .filter_map(|ev| match ev.kind {
                MeEventKind::Trade(t) => Some(t),
                _ => None,
            })
            .collect())
    }

    /// Up to `max` durable events from `from` whose payload passes `keep` (checked before
    /// decoding, so unwanted events cost no decode).
    fn read(
        &self,
        from: EventId,
        max: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<MeEvent>, DurableError> {
        super::collect(&self.wal, "matching", from, max, |_, payload| {
            keep(payload).then(|| codec::decode::<MeEvent>(payload))
        })
    }

    /// Takes a snapshot if due (only once recovery has caught up with the WAL).
    pub fn maybe_snapshot(&mut self, now_ms: u64) -> Result<bool, DurableError> {
        let due =
            self.config.snapshots.due(self.since_snapshot, now_ms.saturating_sub(self.last_snapshot_ms));
        if !due || !self.caught_up() {
            return Ok(false);
        }
        self.snapshot(now_ms)?;
        Ok(true)
    }

    /// Commits, rotates, and writes one file per book plus the counters.
    pub fn snapshot(&mut self, now_ms: u64) -> Result<u64, DurableError> {
        assert!(self.caught_up(), "a snapshot must not skip unverified WAL events");
        self.wal.rotate()?;
        let state = self.me.export_state();
        let seq = state.next_event_id - 1;
        assert_eq!(seq, self.wal.durable_seq());
        let fields = BTreeMap::from([
            ("last_ubs_seq".to_string(), state.last_ubs_seq),
            ("next_trade_id".to_string(), state.next_trade_id),
            ("next_event_id".to_string(), state.next_event_id),
        ]);
        let mut files: Vec<(String, Vec<u8>)> =
            state.books.iter().map(|(symbol, orders)| (book_file(*symbol), codec::encode(orders))).collect();
        files.push((TRADES_INDEX_FILE.to_string(), self.trades.encode()));
        let snapshots = self.dir.join("snapshots");
        snapshot::write(
            self.fs.as_ref(),
            &snapshots,
            SERVICE,
            seq,
            fields,
            &files,
            self.config.keep_snapshots,
        )?;
        self.recovery_floor = self.read_recovery_floor();
        if let Some(oldest) =
            super::ubscore::oldest_snapshot(self.fs.as_ref(), &snapshots)?.filter(|_| self.config.retention)
        {
            // With order events, Settlement follows the event log (its floor is a follower's).
            let for_settlement = match self.followers_floor() {
                Some(_) if crate::bugs::planted(crate::bugs::Bug::RetentionForgetsFollowers) => u64::MAX,
                Some(floor) => floor + 1,
                None => self.trades.start_for(self.floor_trade, self.wal.first_seq()),
            };
            self.wal.retain_from((oldest + 1).min(self.floor_event + 1).min(for_settlement))?;
            self.trades.forget_below(self.wal.first_seq());
        }
        self.since_snapshot = 0;
        self.last_snapshot_ms = now_ms;
        Ok(seq)
    }

    fn read_recovery_floor(&self) -> UbsSeq {
        snapshot::oldest_fields(self.fs.as_ref(), &self.dir.join("snapshots"))
            .and_then(|f| f.get("last_ubs_seq").copied())
            .unwrap_or(0)
    }

    /// Downstream needs: UBSCore may re-pull events after `event_id`, Settlement trades
    /// after `trade_id`; retention keeps them.
    pub fn set_downstream_floors(&mut self, event_id: EventId, trade_id: TradeId) {
        self.floor_event = event_id;
        self.floor_trade = trade_id;
    }

    /// UBSCore may re-pull events after `event_id` (its oldest snapshot's): retention keeps them.
    pub fn set_event_floor(&mut self, event_id: EventId) {
        self.floor_event = event_id;
    }

    /// Settlement may re-pull trades after `trade_id`: retention keeps them.
    pub fn set_trade_floor(&mut self, trade_id: TradeId) {
        self.floor_trade = trade_id;
    }

    /// Follower `who` may re-pull events after `event_id`: retention keeps them.
    pub fn set_follower_floor(&mut self, who: FollowerId, event_id: EventId) {
        self.floor_followers[who as usize] = Some(event_id);
    }

    /// With order events on, both followers (market data, Settlement's audit trail) are
    /// expected: the lowest floor they reported, 0 while one has not (a deployment with
    /// order events and no market data would keep its whole log). `None`: no followers.
    fn followers_floor(&self) -> Option<EventId> {
        let on = self.me.markets().order_events();
        on.then(|| self.floor_followers.iter().map(|f| f.unwrap_or(0)).min().unwrap_or(0))
    }

    /// The `last_ubs_seq` the engine could fall back to (its oldest kept snapshot's):
    /// UBSCore must keep its records after this.
    pub fn recovery_floor(&self) -> UbsSeq {
        self.recovery_floor
    }

    /// Whether every logged event has been regenerated and verified.
    pub fn caught_up(&self) -> bool {
        self.unverified.is_empty()
    }

    /// The last UBSCore record consumed.
    pub fn last_ubs_seq(&self) -> UbsSeq {
        self.me.last_ubs_seq()
    }

    /// Every event up to this id is durable.
    pub fn durable_event_id(&self) -> EventId {
        self.wal.durable_seq()
    }

    /// The state machine.
    pub fn engine(&self) -> &MatchingEngine {
        &self.me
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }
}
