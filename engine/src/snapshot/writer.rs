//! Creating a snapshot: every step is durable before the next one depends on it, so a
//! crash after any single filesystem operation leaves either the previous snapshot or the
//! new one as the newest valid snapshot, never a half-written one that loads.

use super::{COMPLETE, FORMAT_VERSION, FileMeta, LATEST, METADATA, Metadata, SnapshotError, err};
use crate::storage::FileSystem;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes the snapshot `seq` of `service` into `dir` with the given state files and
/// fields, moves `latest` to it, and removes all but the newest `keep` snapshots.
pub fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    service: &str,
    seq: u64,
    fields: BTreeMap<String, u64>,
    files: &[(String, Vec<u8>)],
    keep: usize,
) -> Result<(), SnapshotError> {
    assert!(keep >= 1, "keep at least the snapshot just written");
    if crate::bugs::planted(crate::bugs::Bug::NonAtomicLatest) {
        return write_in_place(fs, dir, service, seq, fields, files, keep);
    }
    crate::storage::create_dir_durable(fs, dir).map_err(err("create_dir", dir))?;
    let target = dir.join(super::snapshot_name(seq));
    if fs.exists(&target).map_err(err("exists", &target))? {
        // A snapshot at this sequence number is there already (taken again with nothing
        // logged since, e.g. by a graceful stop right after a restart). It is kept: replacing
        // it means removing it before the new one is durable, and a power failure in between
        // can keep the removal and lose the rename, leaving no snapshot at all where the
        // logs before it are gone. (The matching engine's state can grow without a new event
        // id, by resting orders: the kept one is older, and everything after it is logged.)
        return Ok(());
    }
    let tmp = dir.join(super::tmp_name(seq));
    if fs.exists(&tmp).map_err(err("exists", &tmp))? {
        fs.remove_dir_all(&tmp).map_err(err("remove", &tmp))?;
    }
    fs.create_dir_all(&tmp).map_err(err("create_dir", &tmp))?;

    let mut metas = Vec::with_capacity(files.len());
    for (name, data) in files {
        assert!(name != METADATA && name != COMPLETE && !name.contains('/'), "bad snapshot file name {name}");
        write_file(fs, &tmp.join(name), data)?;
        metas.push(FileMeta { name: name.clone(), size: data.len() as u64, crc32: crc32fast::hash(data) });
    }
    let meta =
        Metadata { format_version: FORMAT_VERSION, service: service.to_string(), seq, fields, files: metas };
    let json = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
    write_file(fs, &tmp.join(METADATA), &json)?;
    // The marker holds the metadata's checksum: a COMPLETE from another attempt cannot pass.
    write_file(fs, &tmp.join(COMPLETE), format!("{:08x}\n", crc32fast::hash(&json)).as_bytes())?;
    fs.sync_dir(&tmp).map_err(err("sync_dir", &tmp))?;

    fs.rename(&tmp, &target).map_err(err("rename", &tmp))?;
    fs.sync_dir(dir).map_err(err("sync_dir", dir))?;

    // Atomic pointer update: write a new pointer file, then rename it over the old one.
    let pointer_tmp = dir.join(format!("{LATEST}.tmp"));
    if fs.exists(&pointer_tmp).map_err(err("exists", &pointer_tmp))? {
        fs.remove_file(&pointer_tmp).map_err(err("remove", &pointer_tmp))?;
    }
    write_file(fs, &pointer_tmp, super::snapshot_name(seq).as_bytes())?;
    fs.rename(&pointer_tmp, &dir.join(LATEST)).map_err(err("rename", &pointer_tmp))?;
    fs.sync_dir(dir).map_err(err("sync_dir", dir))?;

    prune(fs, dir, keep)
}

/// The planted bug: the pointer first, then the files in place, nothing fsynced.
fn write_in_place(
    fs: &dyn FileSystem,
    dir: &Path,
    service: &str,
    seq: u64,
    fields: BTreeMap<String, u64>,
    files: &[(String, Vec<u8>)],
    keep: usize,
) -> Result<(), SnapshotError> {
    fs.create_dir_all(dir).map_err(err("create_dir", dir))?;
    let latest = dir.join(LATEST);
    if fs.exists(&latest).map_err(err("exists", &latest))? {
        fs.remove_file(&latest).map_err(err("remove", &latest))?;
    }
    fs.create_new(&latest).map_err(err("create", &latest))?;
    fs.append(&latest, super::snapshot_name(seq).as_bytes()).map_err(err("write", &latest))?;
    let target = dir.join(super::snapshot_name(seq));
    if fs.exists(&target).map_err(err("exists", &target))? {
        fs.remove_dir_all(&target).map_err(err("remove", &target))?;
    }
    fs.create_dir_all(&target).map_err(err("create_dir", &target))?;
    let mut metas = Vec::new();
    for (name, data) in files {
        let path = target.join(name);
        fs.create_new(&path).map_err(err("create", &path))?;
        fs.append(&path, data).map_err(err("write", &path))?;
        metas.push(FileMeta { name: name.clone(), size: data.len() as u64, crc32: crc32fast::hash(data) });
    }
    let meta =
        Metadata { format_version: FORMAT_VERSION, service: service.to_string(), seq, fields, files: metas };
    let json = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
    let path = target.join(METADATA);
    fs.create_new(&path).map_err(err("create", &path))?;
    fs.append(&path, &json).map_err(err("write", &path))?;
    prune(fs, dir, keep)
}

fn write_file(fs: &dyn FileSystem, path: &Path, data: &[u8]) -> Result<(), SnapshotError> {
    fs.create_new(path).map_err(err("create", path))?;
    fs.append(path, data).map_err(err("write", path))?;
    fs.sync_file(path).map_err(err("sync", path))
}

/// Removes all but the newest `keep` snapshot directories.
fn prune(fs: &dyn FileSystem, dir: &Path, keep: usize) -> Result<(), SnapshotError> {
    if crate::bugs::planted(crate::bugs::Bug::SnapshotsNeverPruned) {
        return Ok(());
    }
    let mut seqs: Vec<u64> = fs
        .list_dir(dir)
        .map_err(err("list", dir))?
        .iter()
        .filter_map(|n| super::parse_snapshot_name(n))
        .collect();
    seqs.sort_unstable();
    if seqs.len() <= keep {
        return Ok(());
    }
    for seq in &seqs[..seqs.len() - keep] {
        let path = dir.join(super::snapshot_name(*seq));
        fs.remove_dir_all(&path).map_err(err("remove", &path))?;
    }
    fs.sync_dir(dir).map_err(err("sync_dir", dir))
}
