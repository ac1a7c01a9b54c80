//! The services wrapped with their WAL and snapshots (STORAGE.md, "Per service"):
//!
//! | service | WAL entries | snapshot | recovery |
//! |---|---|---|---|
//! | UBSCore | every fresh command with its outcome; every applied ME event | the whole state | snapshot + own WAL, re-applying and verifying each entry |
//! | Matching | its events (WAL seq = `event_id`) | one file per book + counters | snapshot; re-match UBSCore's orders after `last_ubs_seq`, verifying against its own WAL |
//! | Settlement | the ledger of trades (WAL seq = `trade_id`) | a checkpoint (`last_trade_id`) | checkpoint, then the ledger's true tail |
//! | Market data, audit trail | the ME's events as pulled (WAL seq = `event_id`) | the whole derived state | snapshot, then re-derive from the events after it |
//!
//! Nothing a service produces may leave it before the `commit` that covers it returned.

mod follower;
mod index;
mod matching;
pub mod pipeline;
mod policy;
mod settle;
mod settlement;
mod ubscore;

pub use pipeline::DurablePipeline;

pub use follower::{DurableAudit, DurableFollower, DurableMarketData, Follower, FollowerId};
pub use matching::DurableMatching;
pub use policy::SnapshotPolicy;
pub use settle::settle_events;
pub use settlement::DurableSettlement;
pub use ubscore::{DurableUbs, SnapshotJob, UbsEntry};

use crate::codec::CodecError;
use crate::snapshot::SnapshotError;
use crate::wal::{WalConfig, WalError};
use std::fmt;
use std::ops::ControlFlow;

/// WAL entry types (one byte in each record).
pub mod kind {
    /// UBSCore: a fresh command and its outcome (`UbsRecord`).
    pub const UBS_COMMAND: u8 = 1;
    /// UBSCore: an applied ME event (`MeEvent`).
    pub const UBS_APPLIED_EVENT: u8 = 2;
    /// Matching: one output event (`MeEvent`).
    pub const ME_EVENT: u8 = 3;
    /// Settlement: one settled trade (`Trade`).
    pub const TRADE: u8 = 4;
    /// Market data, the audit trail: one pulled ME event (`MeEvent`).
    pub const FOLLOWED_EVENT: u8 = 5;
}

/// Storage settings of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurableConfig {
    /// The WAL's settings.
    pub wal: WalConfig,
    /// When to take snapshots.
    pub snapshots: SnapshotPolicy,
    /// How many snapshots to keep (the WAL is kept back to the oldest).
    pub keep_snapshots: usize,
    /// Whether old WAL segments are removed after snapshots. Simulations keep the whole
    /// log: UBSCore's WAL is the agreed history the checker replays.
    pub retention: bool,
}

impl DurableConfig {
    /// The seed design's defaults for UBSCore: a snapshot every 100,000 entries or 10 minutes.
    pub fn ubscore() -> DurableConfig {
        DurableConfig {
            wal: WalConfig::default(),
            snapshots: SnapshotPolicy::every(100_000, 600_000),
            keep_snapshots: 2,
            retention: true,
        }
    }

    /// Matching: a snapshot every 100,000 events or 10 minutes.
    pub fn matching() -> DurableConfig {
        DurableConfig::ubscore()
    }

    /// Settlement: a checkpoint every 1,000 trades.
    pub fn settlement() -> DurableConfig {
        DurableConfig { snapshots: SnapshotPolicy::every(1_000, 600_000), ..DurableConfig::ubscore() }
    }
}

/// Why a durable service must stop (and, after a restart, recover from disk).
#[derive(Debug)]
pub enum DurableError {
    /// The WAL failed or is damaged.
    Wal(WalError),
    /// A snapshot could not be written.
    Snapshot(SnapshotError),
    /// A WAL entry or snapshot file does not decode.
    Codec { what: String, error: CodecError },
    /// Replayed or re-derived state disagrees with what was logged.
    Divergence(String),
    /// The state machine refused an input (a bug upstream or here).
    Engine(String),
    /// An assertion failed (a bug): the service stops and recovers from disk.
    Panicked(String),
    /// A downstream service holds entries of this service's log beyond its durable end:
    /// entries once durable (and served) are missing, so the log is damaged. Refused loudly
    /// rather than served as if nothing happened.
    WitnessAhead {
        /// The log.
        log: &'static str,
        /// The last entry the downstream service has consumed.
        downstream: u64,
        /// The last durable entry here.
        durable: u64,
    },
    /// Entries after `after` were removed by retention (the oldest kept is `oldest`).
    Compacted {
        /// The log.
        log: &'static str,
        /// The watermark asked after.
        after: u64,
        /// The oldest entry still kept.
        oldest: u64,
    },
    /// A pull reply that does not continue the puller's watermark (a gap or a repeat).
    PullGap {
        /// The link, e.g. `ubscore → matching`.
        link: &'static str,
        /// The id the puller needs next.
        expected: u64,
        /// The id the reply holds there.
        found: u64,
    },
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::Wal(e) => write!(f, "wal: {e}"),
            DurableError::Snapshot(e) => write!(f, "snapshot: {e}"),
            DurableError::Codec { what, error } => write!(f, "{what}: {error}"),
            DurableError::Divergence(e) => write!(f, "recovery diverged: {e}"),
            DurableError::Engine(e) => write!(f, "engine: {e}"),
            DurableError::Panicked(e) => write!(f, "panicked: {e}"),
            DurableError::WitnessAhead { log, downstream, durable } => write!(
                f,
                "{log}: a downstream service consumed entries up to {downstream}, but the log is durable only to \
                 {durable}: acknowledged entries are missing"
            ),
            DurableError::PullGap { link, expected, found } => {
                write!(f, "pull {link}: reply starts at {found}, expected {expected}; refused")
            }
            DurableError::Compacted { log, after, oldest } => {
                write!(f, "{log} after {after} were compacted away (oldest kept: {oldest})")
            }
        }
    }
}

impl std::error::Error for DurableError {}

impl From<WalError> for DurableError {
    fn from(e: WalError) -> Self {
        DurableError::Wal(e)
    }
}

impl From<SnapshotError> for DurableError {
    fn from(e: SnapshotError) -> Self {
        DurableError::Snapshot(e)
    }
}

/// Decodes a payload, naming what it is on failure.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, DurableError> {
    crate::codec::decode(bytes).map_err(|error| DurableError::Codec { what: what(), error })
}

/// Streams durable WAL entries from `from`, keeping up to `max` of those `pick` decodes
/// (`pick` returns `None` to skip an entry without decoding it). `service` names the WAL
/// in errors.
pub(crate) fn collect<T>(
    wal: &crate::wal::Wal,
    service: &str,
    from: u64,
    max: usize,
    mut pick: impl FnMut(u8, &[u8]) -> Option<Result<T, CodecError>>,
) -> Result<Vec<T>, DurableError> {
    let mut out = Vec::new();
    let mut error = None;
    if max == 0 {
        return Ok(out);
    }
    wal.replay(from, None, |e| match pick(e.kind, e.payload) {
        None => ControlFlow::Continue(()),
        Some(Ok(item)) => {
            out.push(item);
            if out.len() >= max { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        }
        Some(Err(c)) => {
            error = Some(DurableError::Codec { what: format!("{service} WAL entry {}", e.seq), error: c });
            ControlFlow::Break(())
        }
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// What a service found when it opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryInfo {
    /// The sequence number of the snapshot loaded, if any.
    pub snapshot_seq: Option<u64>,
    /// Snapshots skipped because they did not verify.
    pub skipped_snapshots: Vec<String>,
    /// WAL entries replayed on top of the snapshot.
    pub replayed: u64,
    /// The WAL's own recovery report.
    pub wal: crate::wal::Recovery,
}

/// A pull reply must continue the puller's watermark exactly: ids `watermark + 1`, `+ 2` …
pub fn contiguous(
    link: &'static str,
    watermark: u64,
    ids: impl Iterator<Item = u64>,
) -> Result<(), DurableError> {
    for (expected, found) in (watermark + 1..).zip(ids) {
        if found != expected {
            return Err(DurableError::PullGap { link, expected, found });
        }
    }
    Ok(())
}
