//! Aiming media faults at the bytes that matter. Uniform placement almost never hits a
//! segment header or a seal; real damage does not care what it hits, but a harness must,
//! so a fault is aimed at one of a few targets drawn from the seed: the WAL's segment
//! headers, its record headers (length, seq, `durable` field), the last group commit of
//! the newest segment, the snapshot files (state, books, `metadata.json`, `COMPLETE`, the
//! `latest` pointer), or anywhere at all (the WAL's seal included).

use crate::fs::{Disk, Media, SECTOR};
use engine::wal::format::{self, SEGMENT_HEADER};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// What a media fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A byte of a WAL segment's header.
    SegmentHeader,
    /// A byte of a WAL record's header.
    RecordHeader,
    /// A byte of the newest segment's last entry (the last acknowledged group).
    LastCommit,
    /// A byte of any snapshot file (`latest` included).
    Snapshot,
    /// Any byte of any file of the service.
    Anywhere,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] =
        [Target::SegmentHeader, Target::RecordHeader, Target::LastCommit, Target::Snapshot, Target::Anywhere];
}

/// Offsets of the records of a segment's bytes (header excluded), in order.
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER;
    while let Some(r) = bytes.get(at..).and_then(format::decode_record) {
        out.push((at, r.size()));
        at += r.size();
    }
    out
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.gen_range(0..items.len())])
}

/// Chooses where to damage `files` (one service's) on `disk`: (file, offset). `None` when
/// the target does not exist yet (no snapshot, no records).
fn aim(disk: &Disk, files: &[PathBuf], target: Target, rng: &mut ChaCha8Rng) -> Option<(PathBuf, u64)> {
    let segments: Vec<&PathBuf> =
        files.iter().filter(|p| p.extension().is_some_and(|e| e == "wal")).collect();
    let size = |p: &Path| disk.durable_bytes(p).map_or(0, |b| b.len() as u64);
    match target {
        Target::SegmentHeader => {
            let seg = pick(rng, &segments)?;
            Some(((*seg).clone(), rng.gen_range(0..SEGMENT_HEADER as u64)))
        }
        Target::RecordHeader => {
            let seg = pick(rng, &segments)?;
            let (at, _) = *pick(rng, &record_offsets(disk.durable_bytes(seg)?))?;
            Some(((*seg).clone(), (at + rng.gen_range(0..format::RECORD_HEADER)) as u64))
        }
        Target::LastCommit => {
            let seg = segments
                .iter()
                .rev()
                .find(|s| !record_offsets(disk.durable_bytes(s).unwrap_or(&[])).is_empty())?;
            let records = record_offsets(disk.durable_bytes(seg)?);
            let (at, len) = *records.last()?;
            Some(((*seg).clone(), (at + rng.gen_range(0..len)) as u64))
        }
        Target::Snapshot => {
            let snaps: Vec<PathBuf> = files
                .iter()
                .filter(|p| p.components().any(|c| c.as_os_str() == "snapshots"))
                .cloned()
                .collect();
            let file = pick(rng, &snaps)?.clone();
            let len = size(&file);
            (len > 0).then(|| (file, rng.gen_range(0..len)))
        }
        Target::Anywhere => {
            let file = pick(rng, files)?.clone();
            let len = size(&file);
            (len > 0).then(|| (file, rng.gen_range(0..len)))
        }
    }
}

/// Inflicts one media fault of kind `media` on `target` of `service_dir` (every file under
/// it), the file and offset chosen by `aim`. Returns a description for the trace, or `None`
/// if nothing was damaged (the target does not exist yet).
pub fn strike(
    disk: &mut Disk,
    service_dir: &Path,
    target: Target,
    media: Media,
    aim_seed: u64,
) -> Option<String> {
    let files = disk.files_under(service_dir);
    strike_files(disk, &files, target, media, aim_seed)
}

/// [`strike`] aimed only at the storage `dir` holds itself ([`crate::fs::service_of`]):
/// Settlement's directory without the audit trail nested in it.
pub fn strike_storage(
    disk: &mut Disk,
    dir: &Path,
    target: Target,
    media: Media,
    aim_seed: u64,
) -> Option<String> {
    let own = crate::fs::service_of(dir);
    let files: Vec<PathBuf> =
        disk.files_under(dir).into_iter().filter(|p| crate::fs::service_of(p) == own).collect();
    strike_files(disk, &files, target, media, aim_seed)
}

fn strike_files(
    disk: &mut Disk,
    files: &[PathBuf],
    target: Target,
    media: Media,
    aim_seed: u64,
) -> Option<String> {
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(aim_seed);
    let (path, offset) = aim(disk, files, target, &mut rng)?;
    disk.inflict(&path, offset, media).then(|| {
        format!(
            "media fault {media:?} aimed at {target:?}: {} offset {offset} (sector {})",
            path.display(),
            offset / SECTOR
        )
    })
}
