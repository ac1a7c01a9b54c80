//! UBSCore's history as the simulated disk recorded it: every version of its WAL files
//! that an fsync ever made durable (files removed since included), decoded here,
//! independently of the engine's reader. The checker replays this, not what the engine
//! says its log holds: an entry once vouched for (sealed) must stay in the history with the
//! same bytes, and the history has no holes.

use super::Violation;
use engine::codec;
use engine::durable::{UbsEntry, kind};
use engine::wal::format::{MAGIC, RECORD_HEADER, SEAL_FILE, SEGMENT_HEADER, read_seal};
use sim::fs::ArchivedVersion;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One record read from durable bytes: (kind, seq, durable field, payload, size on disk).
fn record_at(b: &[u8]) -> Option<(u8, u64, u64, &[u8], usize)> {
    let u32_at = |at: usize| b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
    let len = u32_at(0)? as usize;
    let end = RECORD_HEADER.checked_add(len)?;
    let crc = u32_at(end)?;
    if crc != crc32fast::hash(&b[..end]) {
        return None;
    }
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    Some((b[4], u64_at(9), u64_at(17), &b[RECORD_HEADER..end], end + 4))
}

fn broken(detail: String) -> Violation {
    Violation::HistoryBroken { detail }
}

/// A history entry as some durable file version holds it.
struct Held<'a> {
    kind: u8,
    payload: &'a [u8],
    /// The segment (epoch, first seq) it was read from.
    segment: (u32, u64),
    /// Whether a later record of a durable version vouches for it (a seal, or an entry
    /// whose `durable` field covers it): it was promised, and may be acknowledged.
    vouched: bool,
    path: &'a PathBuf,
}

/// The entries of one durable file version: ((epoch, first seq), entries, highest seq any
/// record vouches for). `None` if it is not a segment.
type Version<'a> = ((u32, u64), Vec<(u64, u8, &'a [u8])>, u64);

fn read_version(bytes: &[u8]) -> Option<Version<'_>> {
    if bytes.len() < SEGMENT_HEADER || bytes[..MAGIC.len()] != MAGIC {
        return None; // not a segment, or a header never made durable: no records
    }
    let header = engine::wal::format::SegmentHeader::decode(bytes)?;
    let (mut entries, mut vouched_to, mut at) = (Vec::new(), 0, SEGMENT_HEADER);
    while let Some((kind, seq, durable, payload, size)) = record_at(&bytes[at..]) {
        at += size;
        vouched_to = vouched_to.max(durable);
        entries.push((seq, kind, payload));
    }
    Some(((header.epoch, header.first_seq), entries, vouched_to))
}

/// The agreed history: the entries of UBSCore's durable WAL file versions, in the order
/// the disk made them durable. An entry is vouched for once a durable seal names it (or a
/// later record's `durable` field covers it): it may have been acknowledged. A later version
/// may replace or drop entries nothing vouched for (a group whose seal never became durable
/// was never acknowledged, and recovery may cut it); replacing or dropping a vouched entry
/// breaks the history, as do holes, seals ahead of the entries, and durable entries that do
/// not decode.
pub fn history(files: &[ArchivedVersion]) -> Result<Vec<UbsEntry>, Violation> {
    // Segment versions count from their first fsync (appends extend them, and seals
    // written meanwhile vouch for what they added); a seal counts from its last (the seal
    // file is overwritten in place, and a slot written later may extend it).
    let mut order: Vec<(u64, &PathBuf, &Vec<u8>)> = files
        .iter()
        .map(|v| {
            let seal = v.path.file_name().is_some_and(|n| n == SEAL_FILE);
            (if seal { v.last_synced } else { v.first_synced }, &v.path, &v.bytes)
        })
        .collect();
    order.sort_by_key(|(at, _, _)| *at);
    let mut held: BTreeMap<u64, Held<'_>> = BTreeMap::new();
    let mut sealed_to = 0;
    for (_, path, bytes) in order {
        if path.file_name().is_some_and(|n| n == SEAL_FILE) {
            // A durable seal vouches for every entry up to the one it names.
            let Some((sealed, _)) = read_seal(bytes) else { continue };
            if sealed > held.keys().next_back().copied().unwrap_or(0) {
                return Err(broken(format!("the seal vouches for entry {sealed}, which was never durable")));
            }
            // Entries up to `sealed_to` are vouched already (and cannot be replaced): mark
            // only the new ones, so that a seal per commit costs what the commit added.
            // (`sealed_to` also advances with records' `durable` fields, below.)
            if sealed > sealed_to {
                held.range_mut(sealed_to + 1..=sealed).for_each(|(_, h)| h.vouched = true);
                sealed_to = sealed;
            }
            continue;
        }
        let Some((segment, entries, vouched_to)) = read_version(bytes) else { continue };
        let last = entries.last().map_or(segment.1.saturating_sub(1), |(seq, _, _)| *seq);
        // What an earlier version of this segment held beyond this one was cut.
        let cut: Vec<u64> =
            held.range(last + 1..).filter(|(_, h)| h.segment == segment).map(|(seq, _)| *seq).collect();
        for seq in cut {
            if held[&seq].vouched {
                return Err(broken(format!("vouched WAL entry {seq} was cut from {}", path.display())));
            }
            held.remove(&seq);
        }
        for (seq, kind, payload) in entries {
            let vouched = vouched_to >= seq;
            let same = held.get(&seq).map(|h| (h.kind, h.payload) == (kind, payload));
            match same {
                Some(true) => {
                    if let Some(h) = held.get_mut(&seq) {
                        h.vouched |= vouched;
                    }
                }
                Some(false) => {
                    if let Some((v, first)) =
                        held.range(seq..).find(|(_, h)| h.vouched).map(|(v, h)| (*v, h.path))
                    {
                        return Err(broken(format!(
                            "vouched WAL entry {v} in {} was replaced: entry {seq} durable with other bytes in {}",
                            first.display(),
                            path.display()
                        )));
                    }
                    held.retain(|s, _| *s < seq);
                    held.insert(seq, Held { kind, payload, segment, vouched, path });
                }
                None => {
                    held.insert(seq, Held { kind, payload, segment, vouched, path });
                }
            }
        }
        // A record's `durable` field vouches for every entry up to it, in any segment.
        if vouched_to > sealed_to {
            held.range_mut(sealed_to + 1..=vouched_to).for_each(|(_, h)| h.vouched = true);
            sealed_to = vouched_to;
        }
    }
    let mut out = Vec::with_capacity(held.len());
    for (i, (seq, h)) in held.into_iter().enumerate() {
        if seq != i as u64 + 1 {
            return Err(broken(format!("no durable WAL entry {} although entry {seq} is durable", i + 1)));
        }
        let entry = match h.kind {
            kind::UBS_COMMAND => codec::decode(h.payload).map(UbsEntry::Command),
            _ => codec::decode(h.payload).map(UbsEntry::Event),
        };
        out.push(entry.map_err(|e| broken(format!("durable WAL entry {seq} in {}: {e}", h.path.display())))?);
    }
    Ok(out)
}
