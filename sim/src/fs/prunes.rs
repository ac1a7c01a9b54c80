//! The simulator's record of snapshot pruning, for the checker's hygiene rule. A snapshot
//! renamed into place (`.tmp-*` → `snapshot-*`) opens a cycle in its directory; removing a
//! `snapshot-*` there and then fsyncing the directory completes it (the pruning is
//! durable). An I/O error returned, or the node's death, while a cycle is open interrupts
//! it: a correct writer may then hold one snapshot more than it keeps until its next
//! pruning completes. A writer that never prunes leaves every cycle open, and its
//! snapshots outnumber the interruptions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Open pruning cycles and interrupted ones, by snapshot directory.
#[derive(Clone, Debug, Default)]
pub(super) struct PruneBook {
    /// Directories with a snapshot renamed into place and no pruning completed since:
    /// whether a `snapshot-*` was removed since (its directory fsync then completes it).
    open: BTreeMap<PathBuf, bool>,
    /// Per directory, the cycles an error or a death interrupted.
    interrupted: BTreeMap<PathBuf, u64>,
}

fn name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

impl PruneBook {
    /// A rename: a snapshot put in place opens a cycle in its directory.
    pub fn renamed(&mut self, from: &Path, to: &Path) {
        if name(from).starts_with(".tmp-") && name(to).starts_with("snapshot-") {
            if let Some(dir) = to.parent() {
                self.open.insert(dir.to_path_buf(), false);
            }
        }
    }

    /// A directory removed: a snapshot's marks its directory's cycle as pruning.
    pub fn removed_dir(&mut self, path: &Path) {
        if name(path).starts_with("snapshot-") {
            if let Some(removed) = path.parent().and_then(|d| self.open.get_mut(d)) {
                *removed = true;
            }
        }
    }

    /// A directory fsynced: after a removal, the cycle's pruning is complete.
    pub fn synced_dir(&mut self, dir: &Path) {
        if self.open.get(dir) == Some(&true) {
            self.open.remove(dir);
        }
    }

    /// An error returned or a death: every open cycle is interrupted.
    pub fn interrupt(&mut self) {
        for (dir, _) in std::mem::take(&mut self.open) {
            *self.interrupted.entry(dir).or_default() += 1;
        }
    }

    /// The interrupted cycles of every directory under `under`.
    pub fn interrupted(&self, under: &Path) -> Vec<(PathBuf, u64)> {
        self.interrupted.iter().filter(|(d, _)| d.starts_with(under)).map(|(d, n)| (d.clone(), *n)).collect()
    }
}
