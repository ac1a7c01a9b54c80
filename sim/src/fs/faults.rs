//! Fault rates of the simulated disk and the record of every fault injected.

use super::phase::{OpKind, Phase};
use std::path::PathBuf;

/// Probabilities of the disk's faults. All default to zero except the resolution of
/// pending writes at power failure, which is the point of the model.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultConfig {
    /// At power failure: probability that a pending write is lost whole.
    pub lose_write: f64,
    /// At power failure: probability that a pending write is torn (per 512-byte sector:
    /// new content, old content, zeros or garbage).
    pub tear_write: f64,
    /// At power failure: probability that a pending directory entry operation persists.
    pub persist_entry_op: f64,
    /// Probability that a read fails with EIO.
    pub eio_read: f64,
    /// Probability that a write fails with EIO (keeping the whole pages it copied before
    /// its last, if any: `Disk::write`).
    pub eio_write: f64,
    /// Probability that an fsync fails with EIO: the file's pending writes are dropped
    /// and a later fsync returns Ok (fsyncgate).
    pub eio_fsync: f64,
    /// Bytes the disk holds; a write beyond fails with ENOSPC. `u64::MAX`: unlimited.
    pub capacity: u64,
    /// Probability that a write fails with ENOSPC (a transiently full disk).
    pub enospc_write: f64,
    /// Probability that a metadata operation (create, mkdir, rename, remove, rmdir,
    /// directory fsync, list, exists, len) fails with EIO, without effect: a failed directory fsync
    /// leaves the directory's entry operations pending.
    #[serde(default)]
    pub eio_metadata: f64,
    /// At power failure: probability per file of one flipped bit in its durable bytes.
    pub bit_rot: f64,
    /// Simulated microseconds per operation, plus per KiB written.
    pub latency_us: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            lose_write: 0.3,
            tear_write: 0.3,
            persist_entry_op: 0.5,
            eio_read: 0.0,
            eio_write: 0.0,
            eio_fsync: 0.0,
            capacity: u64::MAX,
            enospc_write: 0.0,
            eio_metadata: 0.0,
            bit_rot: 0.0,
            latency_us: 20,
        }
    }
}

impl FaultConfig {
    /// The same disk without injected errors (EIO, ENOSPC, bit rot): the liveness phase.
    pub fn healed(self) -> FaultConfig {
        FaultConfig {
            eio_read: 0.0,
            eio_write: 0.0,
            eio_fsync: 0.0,
            enospc_write: 0.0,
            eio_metadata: 0.0,
            bit_rot: 0.0,
            ..self
        }
    }

    /// The same disk with no I/O error rate (EIO, ENOSPC), bit rot kept: errors pinned to
    /// operations replace the rates when a shrink replays a run.
    pub fn without_error_rates(self) -> FaultConfig {
        FaultConfig { bit_rot: self.bit_rot, ..self.healed() }
    }

    /// Whether any I/O error (EIO, ENOSPC) has a rate above 0.
    pub fn has_error_rates(&self) -> bool {
        self.eio_fsync + self.eio_read + self.eio_write + self.enospc_write + self.eio_metadata > 0.0
    }

    /// A disk that loses nothing and never fails (pending writes all persist at power
    /// failure): the behaviour naive code silently relies on.
    pub fn perfect() -> FaultConfig {
        FaultConfig { lose_write: 0.0, tear_write: 0.0, persist_entry_op: 1.0, ..FaultConfig::default() }
    }
}

/// One injected fault or crash, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A pending write was lost at power failure.
    WriteLost { path: PathBuf, offset: u64, len: u64 },
    /// A pending write was torn at power failure; `sectors` of them were written.
    WriteTorn { path: PathBuf, offset: u64, len: u64, sectors_written: u64 },
    /// A pending directory entry operation was rolled back at power failure.
    EntryRolledBack { dir: PathBuf, op: String },
    /// A read failed with EIO.
    ReadEio { path: PathBuf },
    /// A write failed with EIO.
    WriteEio { path: PathBuf },
    /// The write that failed with EIO before it had copied the pages before its last into
    /// the cache: those `written` bytes at `offset` stayed (pending, like any write).
    PartialWrite { path: PathBuf, offset: u64, written: u64 },
    /// An fsync failed with EIO and dropped the file's pending writes.
    FsyncEio { path: PathBuf, dropped: u64 },
    /// A write failed with ENOSPC.
    NoSpace { path: PathBuf },
    /// A metadata operation (`op`: create, mkdir, rename, remove, rmdir, directory fsync,
    /// list, exists, len) failed with EIO, without effect.
    MetadataEio { path: PathBuf, op: OpKind },
    /// A durable bit flipped.
    BitRot { path: PathBuf, offset: u64 },
    /// A snapshot file was damaged on purpose (fallback scenarios).
    SnapshotCorrupted { path: PathBuf },
    /// The node died at a crash point.
    CrashPoint {
        /// Index of the operation (counted from arming, among the operations it counted).
        op: u64,
        /// Before its effect, or after.
        before: bool,
        /// The operation.
        kind: OpKind,
        /// Its path.
        path: PathBuf,
        /// The storage phase it belonged to.
        phase: Phase,
        /// Which operation of that kind and phase since the crash point was armed.
        nth_of_kind: u64,
    },
    /// The node lost power (kill).
    PowerFailure,
    /// The node's process died; its page cache survived.
    ProcessCrash,
    /// Media damage at rest (see [`Media`]), aimed at `offset` of `path`.
    Media { path: PathBuf, offset: u64, media: Media },
}

/// Ways a disk's media fails at rest, after it acknowledged the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Media {
    /// One bit of durable data flips (bit rot).
    BitFlip,
    /// The sector fails every read until it is rewritten (a latent sector error).
    LatentSector,
    /// The last write an fsync reported durable never reached the media (a lost write):
    /// the file keeps its size, the write's blocks read back as zeros.
    LostWrite,
    /// A sector's data was written to another sector of the file (a misdirected write).
    Misdirected,
}

impl Media {
    /// Every kind.
    pub const ALL: [Media; 4] = [Media::BitFlip, Media::LatentSector, Media::LostWrite, Media::Misdirected];

    /// A short name, for summaries.
    pub fn name(self) -> &'static str {
        match self {
            Media::BitFlip => "media_bit_flip",
            Media::LatentSector => "media_latent_sector",
            Media::LostWrite => "media_lost_write",
            Media::Misdirected => "media_misdirected",
        }
    }
}

impl Fault {
    /// A short name of the kind, for summaries.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::WriteLost { .. } => "write_lost",
            Fault::WriteTorn { .. } => "write_torn",
            Fault::EntryRolledBack { .. } => "entry_rolled_back",
            Fault::ReadEio { .. } => "read_eio",
            Fault::WriteEio { .. } => "write_eio",
            Fault::PartialWrite { .. } => "partial_write",
            Fault::FsyncEio { .. } => "fsync_eio",
            Fault::NoSpace { .. } => "enospc",
            Fault::MetadataEio { .. } => "metadata_eio",
            Fault::BitRot { .. } => "bit_rot",
            Fault::SnapshotCorrupted { .. } => "snapshot_corrupted",
            Fault::CrashPoint { .. } => "crash_point",
            Fault::PowerFailure => "power_failure",
            Fault::ProcessCrash => "process_crash",
            Fault::Media { media, .. } => media.name(),
        }
    }
}
