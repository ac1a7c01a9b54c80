//! Scripted power failures: instead of drawing each pending item's fate from the disk's
//! random stream, an explorer names it. Items are numbered in the order a power failure
//! resolves them (inode order, then the order the operations were issued), which
//! [`super::Disk::pending_items`] lists.

use std::path::PathBuf;

/// How one pending item ends at a scripted power failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fate {
    /// The write, truncation or directory operation reaches the disk.
    Keep,
    /// It never does: the write is lost, the truncation or entry operation rolled back.
    Lose,
    /// A write reaches the disk only for its first `sectors` sectors; the rest of its range
    /// holds `fill`. (For truncations and entry operations: the same as `Lose`.)
    Tear {
        /// Sectors of the write (counted from its first) that hold the new data.
        sectors: u64,
        /// What the remaining sectors hold.
        fill: Fill,
    },
}

/// What the unwritten sectors of a torn write hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fill {
    /// Zeros (a sector the device never wrote, on a fresh extent).
    Zeros,
    /// Bytes that are neither old nor new content (a fixed pattern, so runs repeat).
    Garbage,
}

/// What a pending item is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingKind {
    /// A write of `len` bytes at `offset`, spanning `sectors` sectors.
    Write {
        /// Offset in the file.
        offset: u64,
        /// Bytes written.
        len: u64,
        /// Sectors the write touches.
        sectors: u64,
    },
    /// A truncation to `len`.
    Truncate {
        /// The new length.
        len: u64,
    },
    /// A directory entry operation (link, unlink, rename), described.
    Entry {
        /// The operation.
        op: String,
    },
}

/// One item of a disk's pending state, as a power failure would resolve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingItem {
    /// The file or directory.
    pub path: PathBuf,
    /// What is pending.
    pub kind: PendingKind,
}

/// The garbage byte at `at` of a torn write: a fixed pattern unlike real content.
pub fn garbage(at: u64) -> u8 {
    (at.wrapping_mul(131).wrapping_add(17) as u8) ^ 0xA5
}
