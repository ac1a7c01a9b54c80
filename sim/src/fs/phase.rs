//! What the storage code is doing at each filesystem operation, told from the operation and
//! its path alone (the engine's documented layout, never the engine's word): the storage
//! phase of a crash point. Crash points are tagged with it, sweeps aim at it, and the
//! coverage map counts crash points per (service, phase, operation, before/after).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

/// A filesystem operation, as the node's filesystem names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// `create_dir_all`.
    Mkdir,
    /// `create_new`.
    Create,
    /// Append to a file.
    Append,
    /// Write at an offset.
    Write,
    /// Read (a range or the whole file).
    Read,
    /// File length.
    Len,
    /// Truncation.
    Truncate,
    /// fsync of a file.
    Fsync,
    /// fsync of a directory.
    FsyncDir,
    /// Rename.
    Rename,
    /// Removal of a file.
    Remove,
    /// Recursive removal of a directory.
    Rmdir,
    /// Directory listing.
    List,
    /// Existence check.
    Exists,
}

impl OpKind {
    /// Every operation.
    pub const ALL: [OpKind; 14] = [
        OpKind::Mkdir,
        OpKind::Create,
        OpKind::Append,
        OpKind::Write,
        OpKind::Read,
        OpKind::Len,
        OpKind::Truncate,
        OpKind::Fsync,
        OpKind::FsyncDir,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::Rmdir,
        OpKind::List,
        OpKind::Exists,
    ];

    /// The short name (as in traces).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Mkdir => "mkdir",
            OpKind::Create => "create",
            OpKind::Append => "append",
            OpKind::Write => "write",
            OpKind::Read => "read",
            OpKind::Len => "len",
            OpKind::Truncate => "truncate",
            OpKind::Fsync => "fsync",
            OpKind::FsyncDir => "fsync_dir",
            OpKind::Rename => "rename",
            OpKind::Remove => "remove",
            OpKind::Rmdir => "rmdir",
            OpKind::List => "list",
            OpKind::Exists => "exists",
        }
    }

    /// Whether the operation works on names rather than file contents (the operations a
    /// metadata EIO may fail): the entry operations, a directory's fsync, listing,
    /// existence and length.
    pub fn is_metadata(self) -> bool {
        self.is_entry_op() || matches!(self, OpKind::FsyncDir | OpKind::List | OpKind::Exists | OpKind::Len)
    }

    /// Whether the operation changes the namespace of its directory.
    fn is_entry_op(self) -> bool {
        matches!(self, OpKind::Mkdir | OpKind::Create | OpKind::Rename | OpKind::Remove | OpKind::Rmdir)
    }
}

/// The storage phase an operation belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Creating the service's directories at start-up.
    Startup,
    /// Reading the WAL, the seal or snapshots while recovering (or serving pulls).
    RecoveryRead,
    /// Appending a group of WAL entries and making it durable.
    GroupCommit,
    /// Writing the seal that witnesses the last commit.
    Seal,
    /// Creating a new WAL segment.
    SegmentRotation,
    /// Cutting a torn tail off a segment.
    TornTailTruncation,
    /// Rewriting the newest segment's verified bytes at open (`.rewrite`, rename).
    RecoveryRewrite,
    /// Writing a snapshot's files into its temporary directory.
    SnapshotBuild,
    /// Renaming a finished snapshot into place.
    SnapshotRename,
    /// Updating the `latest` pointer.
    LatestUpdate,
    /// Removing old snapshots (and leftovers of unfinished ones).
    Pruning,
    /// Removing WAL segments no one needs any more.
    Retention,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 12] = [
        Phase::Startup,
        Phase::RecoveryRead,
        Phase::GroupCommit,
        Phase::Seal,
        Phase::SegmentRotation,
        Phase::TornTailTruncation,
        Phase::RecoveryRewrite,
        Phase::SnapshotBuild,
        Phase::SnapshotRename,
        Phase::LatestUpdate,
        Phase::Pruning,
        Phase::Retention,
    ];

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Startup => "startup",
            Phase::RecoveryRead => "recovery-read",
            Phase::GroupCommit => "group-commit",
            Phase::Seal => "seal",
            Phase::SegmentRotation => "segment-rotation",
            Phase::TornTailTruncation => "torn-tail-truncation",
            Phase::RecoveryRewrite => "recovery-rewrite",
            Phase::SnapshotBuild => "snapshot-build",
            Phase::SnapshotRename => "snapshot-rename",
            Phase::LatestUpdate => "latest-update",
            Phase::Pruning => "pruning",
            Phase::Retention => "retention",
        }
    }

    /// The operations that make up the phase: the cells of the coverage map. A crash point
    /// at an operation outside this list is counted but not a cell anyone must hit.
    pub fn ops(self) -> &'static [OpKind] {
        use OpKind::*;
        match self {
            Phase::Startup => &[Mkdir, FsyncDir],
            Phase::RecoveryRead => &[Read, List],
            Phase::GroupCommit => &[Append, Fsync],
            Phase::Seal => &[Write, Fsync],
            Phase::SegmentRotation => &[Create, FsyncDir],
            // The engine cuts a torn tail by rewriting the segment (`RecoveryRewrite`): an
            // in-place truncate trusts the page cache after an fsync error, so only a
            // planted bug truncates. Counted when it happens, never a cell to hit.
            Phase::TornTailTruncation => &[],
            Phase::RecoveryRewrite => &[Create, Append, Fsync, Rename, FsyncDir],
            Phase::SnapshotBuild => &[Mkdir, Create, Append, Fsync, FsyncDir],
            Phase::SnapshotRename => &[Rename, FsyncDir],
            Phase::LatestUpdate => &[Create, Append, Fsync, Rename, FsyncDir],
            Phase::Pruning => &[Rmdir, FsyncDir],
            Phase::Retention => &[Remove, FsyncDir],
        }
    }
}

/// Tells each operation's phase from its kind and path; remembers, per directory, the phase
/// of its last namespace change (a directory fsync belongs to it) and, per file, the phase
/// of its last write (a file fsync belongs to it).
#[derive(Clone, Debug, Default)]
pub struct PhaseTracker {
    // Keyed by the path's bytes: comparing paths component by component was a tenth of a
    // simulation's time. The engine spells each path one way, so bytes name it.
    dirs: BTreeMap<OsString, Phase>,
    files: BTreeMap<OsString, Phase>,
}

fn name_of(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Whether `path` lies inside a snapshot being built (`snapshots/.tmp-*/…`).
fn in_tmp_snapshot(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with(".tmp-")))
}

/// The phase of a write-like operation on a file, by the file's name and place.
fn file_phase(path: &Path) -> Phase {
    let name = name_of(path);
    if in_tmp_snapshot(path) {
        Phase::SnapshotBuild
    } else if name.starts_with("latest") {
        Phase::LatestUpdate
    } else if name == "seal" {
        Phase::Seal
    } else if name.ends_with(".rewrite") {
        Phase::RecoveryRewrite
    } else {
        Phase::GroupCommit
    }
}

impl PhaseTracker {
    /// The phase of `op` on `path` (`to`: a rename's destination).
    pub fn classify(&mut self, op: OpKind, path: &Path, to: Option<&Path>) -> Phase {
        let name = name_of(path);
        let phase = match op {
            OpKind::Read | OpKind::List | OpKind::Len | OpKind::Exists => Phase::RecoveryRead,
            OpKind::Mkdir if in_tmp_snapshot(path) => Phase::SnapshotBuild,
            OpKind::Mkdir => Phase::Startup,
            OpKind::Create if name.ends_with(".wal") => Phase::SegmentRotation,
            OpKind::Create | OpKind::Append | OpKind::Write => file_phase(path),
            OpKind::Truncate => Phase::TornTailTruncation,
            OpKind::Fsync => self.files.get(path.as_os_str()).copied().unwrap_or_else(|| file_phase(path)),
            OpKind::FsyncDir => self.dirs.get(path.as_os_str()).copied().unwrap_or(Phase::Startup),
            OpKind::Rename if name.starts_with(".tmp-") => Phase::SnapshotRename,
            OpKind::Rename if name.starts_with("latest") => Phase::LatestUpdate,
            OpKind::Rename if to.is_some_and(|t| name_of(t).starts_with("damaged-")) => Phase::Pruning,
            OpKind::Rename => Phase::RecoveryRewrite,
            OpKind::Remove if name.ends_with(".wal") => Phase::Retention,
            OpKind::Remove if name.ends_with(".rewrite") => Phase::RecoveryRewrite,
            OpKind::Remove if name.starts_with("latest") => Phase::LatestUpdate,
            OpKind::Remove | OpKind::Rmdir => Phase::Pruning,
        };
        // Only a change is written: most operations append to the file they appended to
        // before, and allocating its path each time costs more than the rest of the call.
        if matches!(op, OpKind::Create | OpKind::Append | OpKind::Write | OpKind::Truncate) {
            remember(&mut self.files, path, phase);
        }
        if op.is_entry_op() {
            remember(&mut self.dirs, path.parent().unwrap_or(Path::new("")), phase);
        }
        phase
    }
}

/// Sets `map[path]` to `phase`, allocating only for a path not seen before.
fn remember(map: &mut BTreeMap<OsString, Phase>, path: &Path, phase: Phase) {
    match map.get_mut(path.as_os_str()) {
        Some(p) => *p = phase,
        None => {
            map.insert(path.as_os_str().to_owned(), phase);
        }
    }
}

/// The service a path belongs to: the directory that holds its `wal` or `snapshots`.
pub fn service_of(path: &Path) -> String {
    let parts: Vec<&str> = path.components().filter_map(|c| c.as_os_str().to_str()).collect();
    match parts.iter().position(|p| *p == "wal" || *p == "snapshots") {
        Some(i) if i > 0 => parts[i - 1].to_string(),
        _ => parts.iter().rev().find(|p| !p.is_empty() && **p != "/").map_or("?", |p| p).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_documented_layout() {
        let mut t = PhaseTracker::default();
        let p = |s: &str| std::path::PathBuf::from(s);
        assert_eq!(t.classify(OpKind::Mkdir, &p("/d/ubscore/wal"), None), Phase::Startup);
        assert_eq!(t.classify(OpKind::Create, &p("/d/ubscore/wal/00001.wal"), None), Phase::SegmentRotation);
        assert_eq!(t.classify(OpKind::FsyncDir, &p("/d/ubscore/wal"), None), Phase::SegmentRotation);
        assert_eq!(t.classify(OpKind::Append, &p("/d/ubscore/wal/00001.wal"), None), Phase::GroupCommit);
        assert_eq!(t.classify(OpKind::Fsync, &p("/d/ubscore/wal/00001.wal"), None), Phase::GroupCommit);
        assert_eq!(t.classify(OpKind::Write, &p("/d/ubscore/wal/seal"), None), Phase::Seal);
        assert_eq!(t.classify(OpKind::Fsync, &p("/d/ubscore/wal/seal"), None), Phase::Seal);
        let tmp = p("/d/ubscore/snapshots/.tmp-00000000000000000008");
        assert_eq!(t.classify(OpKind::Mkdir, &tmp, None), Phase::SnapshotBuild);
        assert_eq!(t.classify(OpKind::Append, &tmp.join("state"), None), Phase::SnapshotBuild);
        let snap = p("/d/ubscore/snapshots/snapshot-00000000000000000008");
        assert_eq!(t.classify(OpKind::Rename, &tmp, Some(&snap)), Phase::SnapshotRename);
        assert_eq!(t.classify(OpKind::FsyncDir, &p("/d/ubscore/snapshots"), None), Phase::SnapshotRename);
        assert_eq!(
            t.classify(OpKind::Rename, &p("/d/ubscore/snapshots/latest.tmp"), None),
            Phase::LatestUpdate
        );
        assert_eq!(t.classify(OpKind::Rmdir, &snap, None), Phase::Pruning);
        assert_eq!(t.classify(OpKind::Remove, &p("/d/ubscore/wal/00001.wal"), None), Phase::Retention);
        assert_eq!(t.classify(OpKind::FsyncDir, &p("/d/ubscore/wal"), None), Phase::Retention);
        assert_eq!(
            t.classify(OpKind::Truncate, &p("/d/ubscore/wal/00002.wal"), None),
            Phase::TornTailTruncation
        );
        assert_eq!(service_of(&p("/data/matching/wal/00001.wal")), "matching");
    }
}
