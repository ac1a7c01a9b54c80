//! Which snapshot a correct recovery must load: the newest `snapshot-*` directory of a
//! service that verifies, judged here from the bytes on the simulated disk, independently
//! of the engine's loader (`COMPLETE` holds the CRC32 of `metadata.json`; every file listed
//! there has its size and CRC32; a sector that cannot be read makes it invalid).

use crate::fs::Disk;
use std::path::Path;

/// The newest valid snapshot's sequence number under `service_dir/snapshots`, if any.
pub fn newest_valid(disk: &Disk, service_dir: &Path) -> Option<u64> {
    let dir = service_dir.join("snapshots");
    let mut seqs: Vec<u64> = disk
        .names(&dir)
        .iter()
        .filter_map(|n| n.strip_prefix("snapshot-").filter(|s| s.len() == 20).and_then(|s| s.parse().ok()))
        .collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs.into_iter().find(|seq| valid(disk, &dir.join(format!("snapshot-{seq:020}")), *seq))
}

fn valid(disk: &Disk, dir: &Path, seq: u64) -> bool {
    let (Some(meta), Some(complete)) =
        (disk.peek(&dir.join("metadata.json")), disk.peek(&dir.join("COMPLETE")))
    else {
        return false;
    };
    if String::from_utf8_lossy(&complete).trim() != format!("{:08x}", crc32fast::hash(&meta)) {
        return false;
    }
    let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&meta) else { return false };
    if meta["seq"].as_u64() != Some(seq) || meta["format_version"].as_u64() != Some(1) {
        return false;
    }
    let Some(files) = meta["files"].as_array() else { return false };
    files.iter().all(|f| {
        let (Some(name), Some(size), Some(crc)) =
            (f["name"].as_str(), f["size"].as_u64(), f["crc32"].as_u64())
        else {
            return false;
        };
        disk.peek(&dir.join(name))
            .is_some_and(|d| d.len() as u64 == size && u64::from(crc32fast::hash(&d)) == crc)
    })
}
