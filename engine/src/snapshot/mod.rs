//! Snapshots: a directory per snapshot with the state files, `metadata.json` (format
//! version, service, sequence number, per-file sizes and CRC32s, service fields) and a
//! `COMPLETE` marker; created atomically (temporary directory, fsyncs, rename, atomic
//! `latest` pointer) and loaded with fallback: the newest snapshot that verifies wins
//! (`latest` is maintained for operators and tools; the loader does not trust it).
//!
//! ```text
//! snapshots/
//!   snapshot-00000000000000001000/   state files, metadata.json, COMPLETE
//!   snapshot-00000000000000002000/
//!   latest                            "snapshot-00000000000000002000"
//! ```

mod loader;
mod writer;

pub use loader::{Loaded, load};
pub use writer::write;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Version of the snapshot layout.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the pointer file to the newest snapshot.
pub const LATEST: &str = "latest";
/// Name of the completion marker.
pub const COMPLETE: &str = "COMPLETE";
/// Name of the metadata file.
pub const METADATA: &str = "metadata.json";

/// The directory name of the snapshot taken at `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("snapshot-{seq:020}")
}

/// The temporary directory name while the snapshot at `seq` is written.
pub fn tmp_name(seq: u64) -> String {
    format!(".tmp-{seq:020}")
}

/// Parses `snapshot-{SEQ}`.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    let seq = name.strip_prefix("snapshot-")?;
    if seq.len() != 20 {
        return None;
    }
    seq.parse().ok()
}

/// One state file as recorded in the metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// File name inside the snapshot directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32 of the contents.
    pub crc32: u32,
}

/// `metadata.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Which service wrote it.
    pub service: String,
    /// The sequence number the snapshot covers (its own WAL's, for the owning service).
    pub seq: u64,
    /// Service-specific sequence numbers (e.g. `last_ubs_seq`, `next_trade_id`).
    pub fields: BTreeMap<String, u64>,
    /// The state files.
    pub files: Vec<FileMeta>,
}

/// Why a snapshot could not be written.
#[derive(Debug)]
pub struct SnapshotError {
    /// The operation.
    pub op: &'static str,
    /// The path it was applied to.
    pub path: PathBuf,
    /// The cause.
    pub source: io::Error,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: snapshot {} failed: {}", self.path.display(), self.op, self.source)
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The sequence numbers of the snapshot directories present, oldest first (verified or not).
pub fn list(fs: &dyn crate::storage::FileSystem, dir: &std::path::Path) -> Result<Vec<u64>, SnapshotError> {
    if !fs.exists(dir).map_err(err("exists", dir))? {
        return Ok(Vec::new());
    }
    let mut seqs: Vec<u64> =
        fs.list_dir(dir).map_err(err("list", dir))?.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// The metadata fields of the oldest snapshot present, if it has readable metadata: what
/// the service would recover from if every newer snapshot were damaged.
pub fn oldest_fields(
    fs: &dyn crate::storage::FileSystem,
    dir: &std::path::Path,
) -> Option<BTreeMap<String, u64>> {
    let oldest = *list(fs, dir).ok()?.first()?;
    let json = fs.read_all(&dir.join(snapshot_name(oldest)).join(METADATA)).ok()?;
    let meta: Metadata = serde_json::from_slice(&json).ok()?;
    let mut fields = meta.fields;
    fields.insert("seq".to_string(), meta.seq);
    Some(fields)
}

pub(crate) fn err<'p>(
    op: &'static str,
    path: &'p std::path::Path,
) -> impl FnOnce(io::Error) -> SnapshotError + 'p {
    move |source| SnapshotError { op, path: path.to_path_buf(), source }
}
