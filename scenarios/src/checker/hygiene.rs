//! Disk hygiene, judged from the simulator's record of each service's files: a storage that
//! never prunes its snapshots, or never rotates its WAL, keeps every state right and fills
//! the disk (and with no closed segment, retention has nothing it may remove). Nothing
//! else sees it, so the rules are their own.
//!
//! - **Snapshots pruned:** a `snapshots` directory holds at most `keep_snapshots + 1 + I`
//!   complete snapshots, where `I` counts the prunings an I/O error or a death interrupted
//!   (SimFs's record: between a snapshot's rename into place and its pruning made durable).
//!   One more than kept is a crash between a rename and the pruning after it, and each
//!   interrupted pruning may leave one more; a writer that never prunes leaves one per
//!   snapshot, interrupted or not.
//! - **Segments rotated:** no append to a WAL segment starts at or past the segment size (a
//!   group commit that fills a segment closes it; each life starts a new one). Tiny sizes
//!   get [`HEADER_ROOM`]: a segment's header alone may fill one.

use super::Violation;
use engine::durable::DurableConfig;
use sim::world::{FilesSeen, WorldResult};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Below this, a segment size is taken as this: the header and a first commit may reach it.
pub const HEADER_ROOM: u64 = 64;

/// Every service's files at the end of a world run (after the final recovery).
pub fn check(result: &WorldResult) -> Result<(), Violation> {
    for files in result.files.values() {
        judge(files, &result.storage)?;
    }
    Ok(())
}

/// One disk's files against the storage settings they were written under.
pub fn judge(files: &FilesSeen, storage: &DurableConfig) -> Result<(), Violation> {
    let limit = storage.wal.segment_bytes.max(HEADER_ROOM);
    for (path, furthest) in &files.appends {
        if is_segment(path) && *furthest >= limit {
            return Err(Violation::DiskLeak {
                storage: sim::fs::service_of(path),
                detail: format!(
                    "{} took an append at offset {furthest}, at or past the segment size {limit}: \
                     a full segment is closed by the commit that fills it",
                    path.display()
                ),
            });
        }
    }
    for (dir, snapshots) in snapshots_by_dir(&files.present) {
        let interrupted = files.prunes_interrupted.iter().find(|(d, _)| *d == dir).map_or(0, |(_, n)| *n);
        let most = storage.keep_snapshots as u64 + 1 + interrupted;
        if snapshots.len() as u64 > most {
            let names: Vec<&str> = snapshots.iter().map(String::as_str).collect();
            return Err(Violation::DiskLeak {
                storage: sim::fs::service_of(&dir),
                detail: format!(
                    "{} holds {} complete snapshots ({}): at most {most} for {} kept and {interrupted} prunings interrupted",
                    dir.display(),
                    snapshots.len(),
                    names.join(", "),
                    storage.keep_snapshots
                ),
            });
        }
    }
    Ok(())
}

/// A WAL segment: `wal-*.wal` in a directory named `wal`.
fn is_segment(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
    parent == Some("wal") && name.starts_with("wal-") && name.ends_with(".wal")
}

/// The complete snapshots (`snapshot-` and 20 digits) in each `snapshots` directory, by the
/// files in them.
fn snapshots_by_dir(files: &[PathBuf]) -> BTreeMap<PathBuf, BTreeSet<String>> {
    let mut out: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let Some(snapshot) = path.parent() else { continue };
        let Some(dir) = snapshot.parent().filter(|d| d.file_name().is_some_and(|n| n == "snapshots")) else {
            continue;
        };
        if is_snapshot(snapshot) {
            let name = snapshot.file_name().and_then(|n| n.to_str()).unwrap_or("");
            out.entry(dir.to_path_buf()).or_default().insert(name.to_string());
        }
    }
    out
}

/// A complete snapshot's directory: `snapshot-` and 20 digits.
fn is_snapshot(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let digits = name.strip_prefix("snapshot-").filter(|d| d.len() == 20);
    digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::durable::SnapshotPolicy;
    use engine::wal::WalConfig;

    fn storage(segment_bytes: u64, keep: usize) -> DurableConfig {
        DurableConfig {
            wal: WalConfig::segments(segment_bytes),
            snapshots: SnapshotPolicy::every(10, 0),
            keep_snapshots: keep,
            retention: true,
        }
    }

    fn snapshot(dir: &str, seq: u64) -> PathBuf {
        PathBuf::from(format!("{dir}/snapshot-{seq:020}/state.bin"))
    }

    fn appends(files: Vec<(PathBuf, u64)>) -> FilesSeen {
        FilesSeen {
            present: files.iter().map(|(p, _)| p.clone()).collect(),
            appends: files,
            prunes_interrupted: vec![],
        }
    }

    fn present(files: Vec<PathBuf>) -> FilesSeen {
        FilesSeen {
            appends: files.iter().map(|p| (p.clone(), 0)).collect(),
            present: files,
            prunes_interrupted: vec![],
        }
    }

    #[test]
    fn a_segment_appended_past_its_size_is_a_leak() {
        let seg = |at| appends(vec![(PathBuf::from("/data/ubscore/wal/wal-1-1.wal"), at)]);
        assert_eq!(judge(&seg(1023), &storage(1024, 2)), Ok(()));
        let err = judge(&seg(1024), &storage(1024, 2)).expect_err("at the size");
        assert_eq!(err.kind(), "disk-leak");
        assert!(
            err.to_string().contains("ubscore: /data/ubscore/wal/wal-1-1.wal took an append at offset 1024"),
            "{err}"
        );
        // A tiny size leaves room for the header and a first commit.
        assert_eq!(judge(&seg(32), &storage(16, 2)), Ok(()));
        // Only segments: a snapshot file or the seal may be written anywhere.
        let other = appends(vec![(PathBuf::from("/data/ubscore/wal/seal"), 4096)]);
        assert_eq!(judge(&other, &storage(1024, 2)), Ok(()));
    }

    #[test]
    fn snapshots_beyond_the_kept_the_crash_and_the_interrupted_prunings_are_a_leak() {
        let dir = "/data/settlement/audit/snapshots";
        let mut files: Vec<_> = (1..=3).map(|s| snapshot(dir, s)).collect();
        files.push(PathBuf::from(format!("{dir}/snapshot-00000000000000000003/metadata.json")));
        files.push(PathBuf::from(format!("{dir}/.tmp-00000000000000000004/state.bin")));
        files.push(PathBuf::from(format!("{dir}/damaged-snapshot-00000000000000000005/state.bin")));
        assert_eq!(judge(&present(files.clone()), &storage(1024, 2)), Ok(()), "3 complete for 2 kept");
        files.push(snapshot(dir, 6));
        let err = judge(&present(files.clone()), &storage(1024, 2)).expect_err("4 complete for 2 kept");
        assert_eq!(err.kind(), "disk-leak");
        assert!(
            err.to_string().contains("audit: /data/settlement/audit/snapshots holds 4 complete"),
            "{err}"
        );
        // Each pruning an error or a death interrupted may leave one more, in its directory.
        let mut failed = present(files);
        failed.prunes_interrupted = vec![(PathBuf::from("/data/settlement/snapshots"), 1)];
        assert!(judge(&failed, &storage(1024, 2)).is_err(), "another directory's interruption");
        failed.prunes_interrupted.push((PathBuf::from(dir), 1));
        assert_eq!(judge(&failed, &storage(1024, 2)), Ok(()));
    }
}
