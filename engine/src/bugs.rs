//! Planted bugs: test-only switches that re-create, one at a time, mistakes a storage or
//! exchange engineer makes (several are the known bugs of the reference implementation),
//! so that tests can prove the simulator and its oracle catch each one. Compiled in only
//! with the `planted-bugs` feature; without it every switch reads "off". The switch is per
//! thread, and every simulation runs on its own thread.

use serde::Serialize;
use std::fmt;

/// A bug that can be planted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// The WAL "commits" without fsync.
    SkipFsync,
    /// UBSCore changes state and acknowledges before the WAL entry is durable.
    ApplyBeforeWal,
    /// `latest` is written first and trusted; snapshot files are written in place, unverified.
    NonAtomicLatest,
    /// WAL records are read without checking their CRC.
    CrcNotChecked,
    /// Opening the WAL removes what was there (the reference implementation's truncation).
    WalTruncatedOnReopen,
    /// A torn tail is left in place and the next segment reuses its sequence numbers.
    SeqReusedAfterBadRecord,
    /// Loading a matching snapshot does not rebuild the order-id index.
    IndexNotRebuilt,
    /// Settlement resumes from its checkpoint and appends trades it already has.
    SettlementNotIdempotent,
    /// UBSCore's recovery skips the first WAL entry after its snapshot.
    ReplayOffByOne,
    /// Reopening the WAL fsyncs the newest segment in place and trusts what the page cache
    /// shows (the landed engine's behaviour: wrong after an fsync error and a process crash).
    TrustCacheOnReopen,
    /// UBSCore normalises an order (rounds a GTC sell's price) before applying and logging
    /// it: the log, the books and every ack agree with each other, not with the client.
    NormalisedBeforeLog,
    /// Group commits are acknowledged without a seal: damage to the last group at rest looks
    /// like a torn tail and is cut silently.
    UnsealedCommits,
    /// Retention removes several old segments and fsyncs the directory once: a power
    /// failure can keep an older segment and lose a newer one (a hole in the log).
    RetentionBatchedUnlinks,
    /// The loader gives up at the first damaged snapshot instead of falling back to the
    /// previous one, and replays the whole log: right state while the log is complete, but
    /// not the recovery it should have been.
    NoSnapshotFallback,
    /// The hot-standby replica numbers UBSCore's records by arrival, and after a pull that
    /// got no reply asks again from the start of the batch before: a record delivered
    /// twice is applied twice.
    ReplicaAppliesTwice,
    /// A promoted replica starts its log at its handover snapshot: the events before it,
    /// which UBSCore and Settlement may not have pulled yet, are removed.
    PromotionForgetsDownstream,
    /// Market data's recovery re-derives the first trade after its snapshot into the book
    /// but does not publish its tick again: a tick served before the crash is gone.
    TickLostOnRecovery,
    /// Settlement commits the audit trail's records before the ledger holding their trades:
    /// a crash in between leaves the trail speaking of trades the ledger lost.
    AuditBeforeLedger,
    /// The matching engine's retention keeps only what UBSCore may re-pull, forgetting
    /// the followers of its log (market data, Settlement with its audit trail).
    RetentionForgetsFollowers,
    /// A follower (market data, the audit trail) leaves its pulled events to be made
    /// durable by its next snapshot and reports what it applied as durable: it serves
    /// events that a crash takes back, which it then pulls again as if nothing happened.
    FollowerServesUnsynced,
    /// UBSCore keeps no open lock for an order that locks nothing (a buy too small to be
    /// worth a quote unit): "nothing frozen, nothing to release", until the order trades.
    ZeroLockUntracked,
    /// A graceful stop leaves a clean-shutdown marker that UBSCore's open trusts ("nothing
    /// after the snapshot to replay") but never removes: after the next crash it skips the
    /// WAL entries logged since its snapshot.
    CleanStopTrusted,
    /// The WAL ignores a failed directory fsync after creating a segment and appends to
    /// it: the segment's name is not durable, and a power failure can take the whole
    /// segment, acknowledged entries and all.
    DirFsyncErrorIgnored,
    /// Market data's guard against serving events that are not durable yet is inverted:
    /// it answers only while it runs ahead of its watermark and refuses every query once
    /// it has caught up; every state it holds and recovers is right.
    QueryGuardInverted,
    /// The snapshot loader takes a read error for damage without reading again: a
    /// transient EIO quarantines a valid snapshot for good, and when retention has trimmed
    /// the log behind it the service can never recover.
    SnapshotReadErrorCondemns,
    /// UBSCore never takes the snapshots its policy asks for (a graceful stop still takes
    /// its own): every recovery replays the whole log, and every state is right.
    SnapshotsNeverTaken,
    /// The snapshot writer never removes old snapshots: every state is right, and the
    /// snapshot directory grows without bound.
    SnapshotsNeverPruned,
    /// The WAL never closes a full segment after a group commit: entries go to the current
    /// segment until a snapshot rotates it, so a segment grows with the entries between
    /// snapshots, past its size.
    SegmentsNeverRotated,
    /// The WAL retries a group commit's append that failed, once, instead of giving up: a
    /// write that failed part-way left its first pages in the file, and the retry appends
    /// the whole group after them.
    FailedAppendRetried,
}

impl Bug {
    /// Every plantable bug.
    pub const ALL: [Bug; 29] = [
        Bug::SkipFsync,
        Bug::ApplyBeforeWal,
        Bug::NonAtomicLatest,
        Bug::CrcNotChecked,
        Bug::WalTruncatedOnReopen,
        Bug::SeqReusedAfterBadRecord,
        Bug::IndexNotRebuilt,
        Bug::SettlementNotIdempotent,
        Bug::ReplayOffByOne,
        Bug::TrustCacheOnReopen,
        Bug::NormalisedBeforeLog,
        Bug::UnsealedCommits,
        Bug::RetentionBatchedUnlinks,
        Bug::NoSnapshotFallback,
        Bug::ReplicaAppliesTwice,
        Bug::PromotionForgetsDownstream,
        Bug::TickLostOnRecovery,
        Bug::AuditBeforeLedger,
        Bug::RetentionForgetsFollowers,
        Bug::FollowerServesUnsynced,
        Bug::ZeroLockUntracked,
        Bug::CleanStopTrusted,
        Bug::DirFsyncErrorIgnored,
        Bug::QueryGuardInverted,
        Bug::SnapshotReadErrorCondemns,
        Bug::SnapshotsNeverTaken,
        Bug::SnapshotsNeverPruned,
        Bug::SegmentsNeverRotated,
        Bug::FailedAppendRetried,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::SkipFsync => "skip-fsync",
            Bug::ApplyBeforeWal => "apply-before-wal",
            Bug::NonAtomicLatest => "non-atomic-latest",
            Bug::CrcNotChecked => "crc-not-checked",
            Bug::WalTruncatedOnReopen => "wal-truncated-on-reopen",
            Bug::SeqReusedAfterBadRecord => "seq-reused-after-bad-record",
            Bug::IndexNotRebuilt => "index-not-rebuilt",
            Bug::SettlementNotIdempotent => "settlement-not-idempotent",
            Bug::ReplayOffByOne => "replay-off-by-one",
            Bug::TrustCacheOnReopen => "trust-cache-on-reopen",
            Bug::NormalisedBeforeLog => "normalised-before-log",
            Bug::UnsealedCommits => "unsealed-commits",
            Bug::RetentionBatchedUnlinks => "retention-batched-unlinks",
            Bug::NoSnapshotFallback => "no-snapshot-fallback",
            Bug::ReplicaAppliesTwice => "replica-applies-twice",
            Bug::PromotionForgetsDownstream => "promotion-forgets-downstream",
            Bug::TickLostOnRecovery => "tick-lost-on-recovery",
            Bug::AuditBeforeLedger => "audit-before-ledger",
            Bug::RetentionForgetsFollowers => "retention-forgets-followers",
            Bug::FollowerServesUnsynced => "follower-serves-unsynced",
            Bug::ZeroLockUntracked => "zero-lock-untracked",
            Bug::CleanStopTrusted => "clean-stop-trusted",
            Bug::DirFsyncErrorIgnored => "dir-fsync-error-ignored",
            Bug::QueryGuardInverted => "query-guard-inverted",
            Bug::SnapshotReadErrorCondemns => "snapshot-read-error-condemns",
            Bug::SnapshotsNeverTaken => "snapshots-never-taken",
            Bug::SnapshotsNeverPruned => "snapshots-never-pruned",
            Bug::SegmentsNeverRotated => "segments-never-rotated",
            Bug::FailedAppendRetried => "failed-append-retried",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static PLANTED: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Plants `bug` (or none) for the current thread. Without the `planted-bugs` feature this
/// does nothing, and a test relying on it fails to detect anything.
pub fn plant(bug: Option<Bug>) {
    #[cfg(feature = "planted-bugs")]
    PLANTED.with(|p| p.set(bug));
    #[cfg(not(feature = "planted-bugs"))]
    let _ = bug;
}

/// Whether `bug` is planted on this thread.
#[inline]
pub fn planted(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    return PLANTED.with(|p| p.get() == Some(bug));
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// Whether this build can plant bugs.
pub const AVAILABLE: bool = cfg!(feature = "planted-bugs");
