//! Scanning one segment file: the valid prefix, and whether what follows it is a torn
//! tail or corruption of durable data.

use super::error::WalError;
use super::format::{self, Record, SEGMENT_HEADER, SegmentHeader};
use std::ops::ControlFlow;
use std::path::Path;

/// What a scan of a segment's bytes found.
#[derive(Debug)]
pub struct Scan {
    /// The verified header.
    pub header: SegmentHeader,
    /// Records of the valid prefix, in order.
    pub records: u64,
    /// Sequence number after the last valid record.
    pub next_seq: u64,
    /// Offset just past the last valid record.
    pub valid_len: u64,
    /// Whether bytes follow the valid prefix (a torn tail, when `Ok`).
    pub torn: bool,
    /// Whether the callback stopped the scan early.
    pub stopped: bool,
}

/// Scans `bytes` (a whole segment). `last` says whether this is the newest segment:
/// only there may a torn tail be cut away. Calls `each` for every valid record, which may
/// stop the scan.
pub fn scan<'b>(
    path: &Path,
    bytes: &'b [u8],
    expected_first: Option<u64>,
    last: bool,
    mut each: impl FnMut(&Record<'b>) -> Result<ControlFlow<()>, WalError>,
) -> Result<Scan, WalError> {
    let corrupt = |offset: usize, seq: u64, reason: &str| WalError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        seq,
        reason: reason.to_string(),
    };
    let header = SegmentHeader::decode(bytes)
        .ok_or_else(|| corrupt(0, expected_first.unwrap_or(0), "bad segment header"))?;
    if let Some((epoch, first)) =
        path.file_name().and_then(|n| format::parse_segment_name(&n.to_string_lossy()))
    {
        if (epoch, first) != (header.epoch, header.first_seq) {
            return Err(corrupt(0, header.first_seq, "segment header does not match its file name"));
        }
    }
    if header.first_seq == 0 {
        return Err(corrupt(0, 0, "segment header names sequence number 0 (they start at 1)"));
    }
    if let Some(expected) = expected_first {
        if header.first_seq != expected {
            return Err(WalError::Gap {
                path: path.to_path_buf(),
                offset: 0,
                expected,
                found: header.first_seq,
            });
        }
    }
    let mut pos = SEGMENT_HEADER;
    let mut next = header.first_seq;
    while pos < bytes.len() {
        match format::decode_record(&bytes[pos..]) {
            Some(r) if r.epoch == header.epoch && r.seq == next => {
                next += 1;
                pos += r.size();
                if each(&r)?.is_break() {
                    let records = next - header.first_seq;
                    return Ok(Scan {
                        header,
                        records,
                        next_seq: next,
                        valid_len: pos as u64,
                        torn: false,
                        stopped: true,
                    });
                }
            }
            Some(r) if r.epoch == header.epoch => {
                return Err(WalError::Gap {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    expected: next,
                    found: r.seq,
                });
            }
            _ => {
                if !last {
                    return Err(corrupt(pos, next, "damaged record in a sealed segment"));
                }
                if let Some(proof) = durable_after(bytes, pos, header.epoch, next) {
                    return Err(corrupt(
                        pos,
                        next,
                        &format!("damaged record, but a valid record at offset {proof} shows it was durable"),
                    ));
                }
                return Ok(Scan {
                    header,
                    records: next - header.first_seq,
                    next_seq: next,
                    valid_len: pos as u64,
                    torn: true,
                    stopped: false,
                });
            }
        }
    }
    Ok(Scan {
        header,
        records: next - header.first_seq,
        next_seq: next,
        valid_len: pos as u64,
        torn: false,
        stopped: false,
    })
}

/// The offset of a valid record after `from` that was written when `seq` was already
/// durable, if any: proof that damage at `from` hit acknowledged data.
fn durable_after(bytes: &[u8], from: usize, epoch: u32, seq: u64) -> Option<usize> {
    (from + 1..bytes.len()).find(|q| {
        format::decode_record(&bytes[*q..])
            .is_some_and(|r| r.epoch == epoch && r.durable >= seq && r.seq > seq)
    })
}
