//! UBSCore with its WAL and snapshots.

use super::index::SparseIndex;
use super::{DurableConfig, DurableError, RecoveryInfo, decode, kind};
use crate::codec;
use crate::snapshot;
use crate::storage::FileSystem;
use crate::ubscore::{Submission, UbsCore, UbsState, UbsView};
use crate::wal::{Wal, WalError};
use crate::{Applied, Command, Markets, MeEvent, UbsRecord, UbsSeq};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SERVICE: &str = "ubscore";
const STATE_FILE: &str = "state.bin";
/// The sparse ubs_seq index up to the snapshot (older snapshots lack it).
const INDEX_FILE: &str = "index.bin";
/// The clean-shutdown marker of the planted bug `clean-stop-trusted` (no correct build writes it).
const CLEAN_MARKER: &str = "CLEAN";

/// UBSCore, logging every fresh command and every applied ME event before anything that
/// depends on it leaves the service.
pub struct DurableUbs {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: DurableConfig,
    core: UbsCore,
    wal: Wal,
    index: SparseIndex,
    appended_ubs_seq: UbsSeq,
    durable_ubs_seq: UbsSeq,
    since_snapshot: u64,
    last_snapshot_ms: u64,
    /// Records with `ubs_seq` above this must stay in the WAL for downstream recovery.
    downstream_floor: UbsSeq,
    /// `last_event_id` of the oldest kept snapshot: the ME must keep events after it.
    recovery_floor: u64,
}

impl DurableUbs {
    /// Recovers UBSCore from `dir` (`snapshots/` and `wal/`): the newest valid snapshot,
    /// then every later WAL entry re-applied and checked against what was logged.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        markets: Markets,
        config: DurableConfig,
        now_ms: u64,
    ) -> Result<(DurableUbs, RecoveryInfo), DurableError> {
        let mut info = RecoveryInfo::default();
        let loaded = snapshot::load(fs.as_ref(), &dir.join("snapshots"), SERVICE)?;
        let (mut core, snap_seq, stored_index) = match loaded {
            Some(l) => {
                let bytes = l.files.get(STATE_FILE).map(Vec::as_slice).unwrap_or_default();
                let state: UbsState = decode(|| format!("ubscore snapshot {}", l.meta.seq), bytes)?;
                let core = UbsCore::from_state(markets, state).map_err(DurableError::Divergence)?;
                info.snapshot_seq = Some(l.meta.seq);
                info.skipped_snapshots = l.skipped;
                let index = match l.files.get(INDEX_FILE) {
                    Some(b) => Some(SparseIndex::decode(
                        &format!("ubscore snapshot {} index", l.meta.seq),
                        b,
                        l.meta.seq,
                    )?),
                    None => None,
                };
                (core, l.meta.seq, index)
            }
            None => (UbsCore::new(markets), 0, None),
        };
        // With the index the snapshot stored, the sealed segments it covers need not be
        // read: a restart costs the WAL after the snapshot, not the whole log.
        let skip_below = if stored_index.is_some() { snap_seq + 1 } else { 0 };
        let mut index = stored_index.unwrap_or_default();
        let mut replayed = 0;
        let skip_to = if crate::bugs::planted(crate::bugs::Bug::ReplayOffByOne) {
            snap_seq + 1
        } else if crate::bugs::planted(crate::bugs::Bug::CleanStopTrusted)
            && fs.exists(&dir.join(CLEAN_MARKER)).unwrap_or(false)
        {
            u64::MAX
        } else {
            snap_seq
        };
        let mut first_seen = None;
        let (wal, wal_info) = Wal::open_from(fs.clone(), &dir.join("wal"), config.wal, skip_below, |e| {
            first_seen.get_or_insert(e.seq);
            let refuse = |reason: String| WalError::Replay { seq: e.seq, reason };
            match e.kind {
                kind::UBS_COMMAND if e.seq <= skip_to => {
                    // Covered by the snapshot: only the index needs its ubs_seq.
                    let [ubs_seq] = codec::leading_varints::<1>(e.payload)
                        .ok_or_else(|| refuse("undecodable record".into()))?;
                    index.note(ubs_seq, e.seq);
                }
                kind::UBS_COMMAND => {
                    let rec: UbsRecord = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
                    index.note(rec.seq, e.seq);
                    let sub = core.submit(rec.command);
                    if sub.record != Some(rec) {
                        return Err(refuse(format!("logged {rec:?}, re-applying gives {:?}", sub.record)));
                    }
                    replayed += 1;
                }
                kind::UBS_APPLIED_EVENT => {
                    if e.seq > skip_to {
                        let ev: MeEvent = codec::decode(e.payload).map_err(|c| refuse(c.to_string()))?;
                        match core.apply_event(&ev) {
                            Ok(Applied::Applied) => replayed += 1,
                            other => {
                                return Err(refuse(format!(
                                    "logged event {} re-applies as {other:?}",
                                    ev.event_id
                                )));
                            }
                        }
                    }
                }
                other => return Err(refuse(format!("unknown entry type {other}"))),
            }
            Ok(())
        })?;
        // The WAL must continue the snapshot: from the entry after it (or, holding nothing
        // after it, end right there), never ending before it.
        let continues = match first_seen {
            Some(f) => f <= snap_seq + 1,
            None => wal.next_seq() <= snap_seq + 1,
        };
        if !continues || wal.next_seq() <= snap_seq {
            return Err(DurableError::Divergence(format!(
                "ubscore snapshot covers WAL seq {snap_seq}, but the WAL holds {:?}..{}",
                first_seen,
                wal.next_seq() - 1
            )));
        }
        info.replayed = replayed;
        info.wal = wal_info;
        index.forget_below(wal.first_seq());
        let seq = core.next_seq() - 1;
        let ubs = DurableUbs {
            fs,
            dir: dir.to_path_buf(),
            config,
            core,
            wal,
            index,
            appended_ubs_seq: seq,
            durable_ubs_seq: seq,
            since_snapshot: replayed,
            last_snapshot_ms: now_ms,
            downstream_floor: 0,
            recovery_floor: 0,
        };
        let mut ubs = ubs;
        ubs.recovery_floor = ubs.read_recovery_floor();
        Ok((ubs, info))
    }

    /// Validates and applies a command; a fresh one is logged. Nothing about it may be
    /// acknowledged or forwarded before [`DurableUbs::commit`] returns.
    pub fn submit(&mut self, command: Command) -> Submission {
        let sub = self.core.submit(command);
        if let Some(record) = sub.record {
            let wal_seq = self.wal.append(kind::UBS_COMMAND, &codec::encode(&record));
            self.index.note(record.seq, wal_seq);
            self.appended_ubs_seq = record.seq;
            self.since_snapshot += 1;
        }
        sub
    }

    /// Applies and logs one ME event (a duplicate is ignored, a gap refused).
    pub fn apply_event(&mut self, event: &MeEvent) -> Result<Applied, DurableError> {
        let applied = self.core.apply_event(event).map_err(|e| DurableError::Engine(e.to_string()))?;
        if applied == Applied::Applied {
            self.wal.append(kind::UBS_APPLIED_EVENT, &codec::encode(event));
            self.since_snapshot += 1;
        }
        Ok(applied)
    }

    /// Group commit: makes everything logged so far durable. Returns the durable `ubs_seq`.
    pub fn commit(&mut self) -> Result<UbsSeq, DurableError> {
        if crate::bugs::planted(crate::bugs::Bug::ApplyBeforeWal) && self.wal.next_seq() % 4 != 0 {
            // Applied and acknowledged, but written and fsynced only with a later commit.
            self.durable_ubs_seq = self.appended_ubs_seq;
            return Ok(self.durable_ubs_seq);
        }
        self.wal.commit()?;
        self.durable_ubs_seq = self.appended_ubs_seq;
        Ok(self.durable_ubs_seq)
    }

    /// Up to `max` durable command records with `ubs_seq > after`, in order (what the
    /// matching engine pulls).
    pub fn records_after(&self, after: UbsSeq, max: usize) -> Result<Vec<UbsRecord>, DurableError> {
        if after >= self.durable_ubs_seq || max == 0 {
            return Ok(Vec::new());
        }
        let start = self.index.start_for(after, self.wal.first_seq());
        // Skip cheaply what is not wanted: other entry types, and records at or below the
        // watermark (their ubs_seq is the payload's first integer).
        let out = super::collect(&self.wal, "ubscore", start, max, |kind, payload| {
            let wanted = kind == kind::UBS_COMMAND
                && codec::leading_varints::<1>(payload).is_none_or(|[seq]| seq > after);
            wanted.then(|| codec::decode::<UbsRecord>(payload))
        })?;
        if out.first().is_some_and(|r| r.seq != after + 1) {
            return Err(DurableError::Compacted { log: "ubscore records", after, oldest: out[0].seq });
        }
        Ok(out)
    }

    /// Every durable WAL entry still kept, in order: commands with their outcomes and the
    /// ME events UBSCore applied between them (the agreed history a checker replays).
    pub fn history(&self) -> Result<Vec<UbsEntry>, DurableError> {
        super::collect(&self.wal, "ubscore", self.wal.first_seq(), usize::MAX, |kind, payload| {
            Some(match kind {
                kind::UBS_COMMAND => codec::decode(payload).map(UbsEntry::Command),
                _ => codec::decode(payload).map(UbsEntry::Event),
            })
        })
    }

    /// Takes a snapshot if the policy says it is due at `now_ms`.
    pub fn maybe_snapshot(&mut self, now_ms: u64) -> Result<bool, DurableError> {
        if crate::bugs::planted(crate::bugs::Bug::SnapshotsNeverTaken) {
            return Ok(false);
        }
        if !self.config.snapshots.due(self.since_snapshot, now_ms.saturating_sub(self.last_snapshot_ms)) {
            return Ok(false);
        }
        self.snapshot(now_ms)?;
        Ok(true)
    }

    /// Planted `clean-stop-trusted` only: leaves the clean-shutdown marker a graceful stop
    /// writes after its snapshot.
    pub fn leave_clean_marker(&self) -> Result<(), DurableError> {
        let path = self.dir.join(CLEAN_MARKER);
        let io = |e: std::io::Error| DurableError::Engine(format!("{}: {e}", path.display()));
        if !self.fs.exists(&path).map_err(io)? {
            self.fs.create_new(&path).map_err(io)?;
            self.fs.sync_dir(&self.dir).map_err(io)?;
        }
        Ok(())
    }

    /// Commits, rotates the WAL, writes a snapshot of the committed state, and drops WAL
    /// segments no longer needed. Blocking: [`DurableUbs::begin_snapshot`] is the
    /// non-stalling form.
    pub fn snapshot(&mut self, now_ms: u64) -> Result<u64, DurableError> {
        let job = self.begin_snapshot()?;
        let seq = job.run()?;
        self.finish_snapshot(seq, now_ms)?;
        Ok(seq)
    }

    /// Starts a snapshot: commits, rotates the WAL and copies the state. The copy is the
    /// only pause of the service; the returned job encodes and writes it and can run
    /// elsewhere (another thread or task) while the service goes on.
    pub fn begin_snapshot(&mut self) -> Result<SnapshotJob, DurableError> {
        self.wal.rotate()?;
        self.durable_ubs_seq = self.appended_ubs_seq;
        Ok(SnapshotJob {
            fs: self.fs.clone(),
            dir: self.dir.join("snapshots"),
            seq: self.wal.durable_seq(),
            keep: self.config.keep_snapshots,
            core: self.core.share(),
            index: self.index.clone(),
        })
    }

    /// Completes a snapshot written by a job: WAL retention and the snapshot triggers.
    pub fn finish_snapshot(&mut self, seq: u64, now_ms: u64) -> Result<(), DurableError> {
        self.core.reclaim();
        self.retain(&self.dir.join("snapshots"))?;
        // Entries logged while the job ran count towards the next snapshot.
        self.since_snapshot = (self.wal.next_seq() - 1).saturating_sub(seq);
        self.last_snapshot_ms = now_ms;
        Ok(())
    }

    fn retain(&mut self, snapshots: &Path) -> Result<(), DurableError> {
        self.recovery_floor = self.read_recovery_floor();
        if !self.config.retention {
            return Ok(());
        }
        if let Some(oldest) = oldest_snapshot(self.fs.as_ref(), snapshots)? {
            let downstream = self.index.start_for(self.downstream_floor, self.wal.first_seq());
            self.wal.retain_from((oldest + 1).min(downstream))?;
            self.index.forget_below(self.wal.first_seq());
        }
        Ok(())
    }

    fn read_recovery_floor(&self) -> u64 {
        snapshot::oldest_fields(self.fs.as_ref(), &self.dir.join("snapshots"))
            .and_then(|f| f.get("last_event_id").copied())
            .unwrap_or(0)
    }

    /// Downstream (the matching engine) may need every record after `ubs_seq` to recover:
    /// retention keeps them.
    pub fn set_downstream_floor(&mut self, ubs_seq: UbsSeq) {
        self.downstream_floor = ubs_seq;
    }

    /// The `last_event_id` UBSCore could fall back to (its oldest kept snapshot's): the
    /// matching engine must keep its events after this.
    pub fn recovery_floor(&self) -> u64 {
        self.recovery_floor
    }

    /// The state machine.
    pub fn core(&self) -> &UbsCore {
        &self.core
    }

    /// The WAL (for the replay API and watermarks).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Every command up to this `ubs_seq` is durable.
    pub fn durable_ubs_seq(&self) -> UbsSeq {
        self.durable_ubs_seq
    }
}

/// One entry of UBSCore's WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UbsEntry {
    /// A fresh command and its outcome.
    Command(UbsRecord),
    /// An ME event UBSCore applied.
    Event(MeEvent),
}

/// A snapshot being written from a view of UBSCore's state (pages shared, not copied).
pub struct SnapshotJob {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    seq: u64,
    keep: usize,
    core: UbsView,
    index: SparseIndex,
}

impl SnapshotJob {
    /// The WAL sequence number the snapshot covers.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Encodes and writes the snapshot; returns its sequence number.
    pub fn run(self) -> Result<u64, DurableError> {
        let state = codec::encode(&self.core.export_state());
        let fields = BTreeMap::from([
            ("next_ubs_seq".to_string(), self.core.next_seq()),
            ("last_event_id".to_string(), self.core.last_event_id()),
        ]);
        let files = [(STATE_FILE.to_string(), state), (INDEX_FILE.to_string(), self.index.encode())];
        snapshot::write(self.fs.as_ref(), &self.dir, SERVICE, self.seq, fields, &files, self.keep)?;
        Ok(self.seq)
    }
}

/// The sequence number of the oldest snapshot directory present.
pub(crate) fn oldest_snapshot(fs: &dyn FileSystem, dir: &Path) -> Result<Option<u64>, DurableError> {
    let names = fs.list_dir(dir).map_err(|source| {
        DurableError::Snapshot(snapshot::SnapshotError { op: "list", path: dir.to_path_buf(), source })
    })?;
    Ok(names.iter().filter_map(|n| snapshot::parse_snapshot_name(n)).min())
}
