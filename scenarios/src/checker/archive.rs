//! UBSCore's history as the simulated disk recorded it: every WAL record that any fsync
//! ever made durable (files removed since included), decoded here, independently of the
//! engine's reader. The checker replays this, not what the engine says its log holds: a
//! record once durable must stay in the history with the same bytes, and the history has
//! no holes.

use super::Violation;
use engine::codec;
use engine::durable::{UbsEntry, kind};
use engine::wal::format::{MAGIC, RECORD_HEADER, SEGMENT_HEADER};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One record read from durable bytes: (kind, seq, payload, its size on disk).
fn record_at(b: &[u8]) -> Option<(u8, u64, &[u8], usize)> {
    let u32_at = |at: usize| b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
    let len = u32_at(0)? as usize;
    let end = RECORD_HEADER.checked_add(len)?;
    let crc = u32_at(end)?;
    if crc != crc32fast::hash(&b[..end]) {
        return None;
    }
    let seq = u64::from_le_bytes(b[9..17].try_into().expect("8 bytes"));
    Some((b[4], seq, &b[RECORD_HEADER..end], end + 4))
}

fn broken(detail: String) -> Violation {
    Violation::HistoryBroken { detail }
}

/// The agreed history: every durable record of UBSCore's WAL files, by sequence number,
/// decoded. Fails if a sequence number was made durable with two different contents, if
/// the sequence has a hole, or if a durable record does not decode.
pub fn history(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<UbsEntry>, Violation> {
    let mut by_seq: BTreeMap<u64, (u8, &[u8], &PathBuf)> = BTreeMap::new();
    for (path, bytes) in files {
        if bytes.len() < SEGMENT_HEADER || bytes[..MAGIC.len()] != MAGIC {
            continue; // not a segment (or a header never made durable): no records
        }
        let mut at = SEGMENT_HEADER;
        while let Some((kind, seq, payload, size)) = record_at(&bytes[at..]) {
            match by_seq.get(&seq) {
                Some((k, p, first)) if (*k, *p) != (kind, payload) => {
                    return Err(broken(format!(
                        "WAL entry {seq} was durable in {} and durable with other bytes in {}",
                        first.display(),
                        path.display()
                    )));
                }
                Some(_) => {}
                None => {
                    by_seq.insert(seq, (kind, payload, path));
                }
            }
            at += size;
        }
    }
    let mut entries = Vec::with_capacity(by_seq.len());
    for (i, (seq, (k, payload, path))) in by_seq.into_iter().enumerate() {
        if seq != i as u64 + 1 {
            return Err(broken(format!("no durable WAL entry {} although entry {seq} is durable", i + 1)));
        }
        let entry = match k {
            kind::UBS_COMMAND => codec::decode(payload).map(UbsEntry::Command),
            _ => codec::decode(payload).map(UbsEntry::Event),
        };
        entries
            .push(entry.map_err(|e| broken(format!("durable WAL entry {seq} in {}: {e}", path.display())))?);
    }
    Ok(entries)
}
