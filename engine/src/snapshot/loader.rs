//! Loading the newest valid snapshot: every `snapshot-*`, newest first; valid means `COMPLETE` matches the metadata and every file's size and CRC32
//! match. Leftover temporary directories are removed.

use super::{COMPLETE, FORMAT_VERSION, LATEST, METADATA, Metadata, SnapshotError, err};
use crate::storage::FileSystem;
use std::collections::BTreeMap;
use std::path::Path;

/// A loaded, verified snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Its metadata.
    pub meta: Metadata,
    /// Its state files by name.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Snapshots that were newer but invalid, skipped (directory names).
    pub skipped: Vec<String>,
}

/// Loads the newest valid snapshot of `service` in `dir`, or `None` if there is none.
/// I/O errors other than damaged or missing snapshot files are returned.
pub fn load(fs: &dyn FileSystem, dir: &Path, service: &str) -> Result<Option<Loaded>, SnapshotError> {
    if !fs.exists(dir).map_err(err("exists", dir))? {
        return Ok(None);
    }
    let names = fs.list_dir(dir).map_err(err("list", dir))?;
    let mut removed = false;
    for name in &names {
        if name.starts_with(".tmp-") || name == &format!("{LATEST}.tmp") {
            let path = dir.join(name);
            let result =
                if name.starts_with(".tmp-") { fs.remove_dir_all(&path) } else { fs.remove_file(&path) };
            result.map_err(err("remove", &path))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir).map_err(err("sync_dir", dir))?;
    }

    if crate::bugs::planted(crate::bugs::Bug::NonAtomicLatest) {
        return Ok(trust_latest(fs, dir));
    }
    // Newest first. `latest` is kept for operators and tools, but not trusted: after a
    // crash between the rename of a complete snapshot and the pointer update it lags, and
    // the newer, verified snapshot is the right one.
    let mut candidates: Vec<(u64, &String)> =
        names.iter().filter_map(|n| super::parse_snapshot_name(n).map(|s| (s, n))).collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));

    let mut skipped = Vec::new();
    for (_, name) in candidates {
        match verify(fs, &dir.join(name), service) {
            Some((meta, files)) => {
                quarantine(fs, dir, &skipped)?;
                return Ok(Some(Loaded { meta, files, skipped }));
            }
            None if crate::bugs::planted(crate::bugs::Bug::NoSnapshotFallback) => return Ok(None),
            None => skipped.push(name.clone()),
        }
    }
    quarantine(fs, dir, &skipped)?;
    Ok(None)
}

/// Prefix of a snapshot directory found damaged: kept for inspection, never loaded, and
/// not counted among the snapshots a writer keeps.
pub const DAMAGED_PREFIX: &str = "damaged-";

/// Renames damaged snapshots (newer than the one loaded) out of the way. Why: the writer
/// keeps the newest `keep` snapshots and retention trims the WAL to the oldest kept one;
/// a damaged snapshot counted among them would push out the older valid one, and the next
/// damage would leave nothing to recover from.
fn quarantine(fs: &dyn FileSystem, dir: &Path, damaged: &[String]) -> Result<(), SnapshotError> {
    for name in damaged {
        let (from, to) = (dir.join(name), dir.join(format!("{DAMAGED_PREFIX}{name}")));
        if fs.exists(&to).map_err(err("exists", &to))? {
            fs.remove_dir_all(&to).map_err(err("remove", &to))?;
        }
        fs.rename(&from, &to).map_err(err("rename", &from))?;
    }
    if !damaged.is_empty() {
        fs.sync_dir(dir).map_err(err("sync_dir", dir))?;
    }
    Ok(())
}

/// Reads of a snapshot file that fail before it counts as unreadable.
const READ_TRIES: usize = 3;

/// Reads one file of a snapshot; `None` if it is missing or stays unreadable. An I/O error
/// is read again first: a transient error must not condemn a valid snapshot (quarantined,
/// it is never loaded again, and when retention has trimmed the log behind it the service
/// cannot recover), while an unreadable sector stays unreadable.
fn read_file(fs: &dyn FileSystem, path: &Path) -> Option<Vec<u8>> {
    let tries =
        if crate::bugs::planted(crate::bugs::Bug::SnapshotReadErrorCondemns) { 1 } else { READ_TRIES };
    for _ in 0..tries {
        match fs.read_all(path) {
            Ok(data) => return Some(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(_) => {}
        }
    }
    None
}

/// Reads and verifies one snapshot directory; `None` if anything is missing or wrong.
fn verify(fs: &dyn FileSystem, dir: &Path, service: &str) -> Option<(Metadata, BTreeMap<String, Vec<u8>>)> {
    let json = read_file(fs, &dir.join(METADATA))?;
    let complete = read_file(fs, &dir.join(COMPLETE))?;
    if String::from_utf8_lossy(&complete).trim() != format!("{:08x}", crc32fast::hash(&json)) {
        return None;
    }
    let meta: Metadata = serde_json::from_slice(&json).ok()?;
    if meta.format_version != FORMAT_VERSION || meta.service != service {
        return None;
    }
    if super::parse_snapshot_name(&dir.file_name()?.to_string_lossy()) != Some(meta.seq) {
        return None;
    }
    let mut files = BTreeMap::new();
    for f in &meta.files {
        let data = read_file(fs, &dir.join(&f.name))?;
        if data.len() as u64 != f.size || crc32fast::hash(&data) != f.crc32 {
            return None;
        }
        files.insert(f.name.clone(), data);
    }
    Some((meta, files))
}

/// The planted bug: whatever `latest` names is loaded, unverified.
fn trust_latest(fs: &dyn FileSystem, dir: &Path) -> Option<Loaded> {
    let name = String::from_utf8(fs.read_all(&dir.join(LATEST)).ok()?).ok()?;
    let seq = super::parse_snapshot_name(name.trim())?;
    let snap = dir.join(name.trim());
    let meta: Metadata =
        fs.read_all(&snap.join(METADATA)).ok().and_then(|j| serde_json::from_slice(&j).ok()).unwrap_or(
            Metadata {
                format_version: FORMAT_VERSION,
                service: String::new(),
                seq,
                fields: BTreeMap::new(),
                files: Vec::new(),
            },
        );
    let mut files = BTreeMap::new();
    for name in fs.list_dir(&snap).unwrap_or_default() {
        if let Ok(data) = fs.read_all(&snap.join(&name)) {
            files.insert(name, data);
        }
    }
    Some(Loaded { meta: Metadata { seq, ..meta }, files, skipped: Vec::new() })
}
