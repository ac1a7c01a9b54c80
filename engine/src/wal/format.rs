//! The on-disk format of WAL segments and records (all integers little endian).
//!
//! Segment header, 32 bytes:
//! `magic "EXSIMWAL" | version u32 | epoch u32 | first_seq u64 | prev_records u32 | crc u32`
//! where the CRC32 covers the 28 bytes before it. `prev_records` is how many records the
//! previous segment holds (0: unknown, for a log's first segment or one that follows an
//! empty segment): recovery checks with headers alone that sealed segments it need not
//! replay follow each other without a hole.
//!
//! Record, 29 bytes + payload:
//! `len u32 | kind u8 | epoch u32 | seq u64 | durable u64 | payload [len] | crc u32`
//! where the CRC32 covers everything before it (header fields and payload). `durable` is
//! the highest sequence number that was already fsynced when this record was written: a
//! valid record proves that every record up to `durable` was acknowledged-durable, which
//! is how recovery tells a torn tail (only unsynced data damaged) from corruption of
//! durable data.

/// Segment magic.
pub const MAGIC: [u8; 8] = *b"EXSIMWAL";
/// Format version.
pub const VERSION: u32 = 1;
/// Bytes of a segment header.
pub const SEGMENT_HEADER: usize = 32;
/// Bytes of a record's fixed header (before the payload).
pub const RECORD_HEADER: usize = 25;
/// Bytes of a record's fixed part (header and CRC).
pub const RECORD_OVERHEAD: usize = RECORD_HEADER + 4;
/// Largest payload accepted; anything larger is a damaged length field.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The epoch (one per opening of the WAL).
    pub epoch: u32,
    /// Sequence number of the first record this segment holds (or would hold).
    pub first_seq: u64,
    /// Records in the previous segment, so `first_seq - prev_records` is where that one
    /// starts (0: not known).
    pub prev_records: u32,
}

impl SegmentHeader {
    /// The 32 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER] {
        let mut b = [0u8; SEGMENT_HEADER];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.epoch.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..28].copy_from_slice(&self.prev_records.to_le_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a header; `None` if it is not a valid header.
    pub fn decode(b: &[u8]) -> Option<SegmentHeader> {
        if b.len() < SEGMENT_HEADER || b[0..8] != MAGIC || u32_at(b, 28) != crc32fast::hash(&b[..28]) {
            return None;
        }
        if u32_at(b, 8) != VERSION {
            return None;
        }
        Some(SegmentHeader { epoch: u32_at(b, 12), first_seq: u64_at(b, 16), prev_records: u32_at(b, 24) })
    }
}

/// A decoded record, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Entry type, chosen by the service.
    pub kind: u8,
    /// Epoch of the segment it was written in.
    pub epoch: u32,
    /// Sequence number.
    pub seq: u64,
    /// Highest sequence number durable when it was written.
    pub durable: u64,
    /// The payload.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Appends the encoded record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        assert!(self.payload.len() <= MAX_PAYLOAD, "WAL payload of {} bytes", self.payload.len());
        let start = out.len();
        out.extend_from_slice(&(self.payload.len() as u32).to_le_bytes());
        out.push(self.kind);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.durable.to_le_bytes());
        out.extend_from_slice(self.payload);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// Total encoded size.
    pub fn size(&self) -> usize {
        RECORD_OVERHEAD + self.payload.len()
    }
}

/// Decodes the record at the start of `b`, verifying length and CRC; `None` if there is
/// no complete, valid record there.
pub fn decode_record(b: &[u8]) -> Option<Record<'_>> {
    if b.len() < RECORD_OVERHEAD {
        return None;
    }
    let len = u32_at(b, 0) as usize;
    if len > MAX_PAYLOAD || b.len() < RECORD_OVERHEAD + len {
        return None;
    }
    let end = RECORD_HEADER + len;
    if u32_at(b, end) != crc32fast::hash(&b[..end]) && !crate::bugs::planted(crate::bugs::Bug::CrcNotChecked)
    {
        return None;
    }
    Some(Record {
        kind: b[4],
        epoch: u32_at(b, 5),
        seq: u64_at(b, 9),
        durable: u64_at(b, 17),
        payload: &b[RECORD_HEADER..end],
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// File name of the WAL's *seal*: one small record, rewritten and fsynced by every group
/// commit after its entries are durable and before they are acknowledged, naming the last
/// entry acknowledged. It lives apart from the segments so that damage to a segment's tail
/// (a lost, torn-at-rest or misdirected write, bit rot) cannot take the witness with it:
/// a log whose valid entries end before its seal has lost acknowledged entries, and opening
/// it is refused rather than cut like a torn write.
pub const SEAL_FILE: &str = "seal";

/// Size of one seal record: magic (4), last acknowledged seq (8), CRC of both (4).
pub const SEAL_LEN: usize = 16;

/// The seal file holds two slots, one sector apart, written alternately: a write torn by a
/// power failure can damage only the slot being written, and the other still vouches for
/// everything up to its seq.
pub const SEAL_SLOTS: [u64; 2] = [0, 512];

const SEAL_MAGIC: [u8; 4] = *b"SEAL";

/// One seal record's bytes for `durable`.
pub fn encode_seal(durable: u64) -> [u8; SEAL_LEN] {
    let mut b = [0u8; SEAL_LEN];
    b[..4].copy_from_slice(&SEAL_MAGIC);
    b[4..12].copy_from_slice(&durable.to_le_bytes());
    let crc = crc32fast::hash(&b[..12]);
    b[12..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The last acknowledged seq one seal record names; `None` if the bytes are not valid.
pub fn decode_seal(b: &[u8]) -> Option<u64> {
    if b.len() < SEAL_LEN || b[..4] != SEAL_MAGIC || u32_at(b, 12) != crc32fast::hash(&b[..12]) {
        return None;
    }
    Some(u64_at(b, 4))
}

/// The seal a seal file's bytes hold: the highest valid slot, and which slot that is.
pub fn read_seal(file: &[u8]) -> Option<(u64, usize)> {
    SEAL_SLOTS
        .iter()
        .enumerate()
        .filter_map(|(i, at)| file.get(*at as usize..).and_then(decode_seal).map(|seq| (seq, i)))
        .max()
}

/// Extension of the fresh copy of the newest segment that [`super::Wal::open`] writes and
/// renames over it (never a segment name; leftovers are removed, durably, when the WAL opens).
pub const REWRITE_EXTENSION: &str = "rewrite";

/// The file name of a segment: `wal-{EPOCH:05}-{FIRST_SEQ:020}.wal`.
pub fn segment_name(epoch: u32, first_seq: u64) -> String {
    format!("wal-{epoch:05}-{first_seq:020}.wal")
}

/// Parses a segment file name back into (epoch, first_seq).
pub fn parse_segment_name(name: &str) -> Option<(u32, u64)> {
    let rest = name.strip_prefix("wal-")?.strip_suffix(".wal")?;
    let (epoch, seq) = rest.split_once('-')?;
    // `{:05}` is a minimum width: epochs past 99,999 have more digits, and must still parse.
    if epoch.len() < 5 || seq.len() != 20 || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((epoch.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_record_bytes() {
        let mut out = Vec::new();
        Record { kind: 3, epoch: 2, seq: 0x0102, durable: 1, payload: b"ab" }.encode_into(&mut out);
        let mut expected =
            vec![2, 0, 0, 0, 3, 2, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'a', b'b'];
        let crc = crc32fast::hash(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(out, expected);
        let r = decode_record(&out).unwrap();
        assert_eq!((r.kind, r.epoch, r.seq, r.durable, r.payload), (3, 2, 0x0102, 1, &b"ab"[..]));
    }

    /// The writer takes payloads up to `MAX_PAYLOAD` bytes: the reader must take them back
    /// (a boundary no workload reaches; found by mutating the reader's limit).
    #[test]
    fn the_largest_payload_the_writer_takes_reads_back() {
        let payload = vec![7u8; MAX_PAYLOAD];
        let mut out = Vec::new();
        Record { kind: 1, epoch: 1, seq: 1, durable: 0, payload: &payload }.encode_into(&mut out);
        let r = decode_record(&out).expect("a record of the largest payload");
        assert_eq!(r.payload.len(), MAX_PAYLOAD);
        // One byte more is refused by its length alone (the writer asserts it never writes one).
        out[..4].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        out.push(0);
        assert!(decode_record(&out).is_none());
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let mut out = Vec::new();
        Record { kind: 1, epoch: 1, seq: 9, durable: 8, payload: b"payload" }.encode_into(&mut out);
        for i in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode_record(&bad).is_none(), "bit {i}");
        }
        let header = SegmentHeader { epoch: 4, first_seq: 77, prev_records: 12 };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Some(header));
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes;
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(SegmentHeader::decode(&bad), None, "bit {i}");
        }
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(3, 42), "wal-00003-00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(3, 42)), Some((3, 42)));
        assert_eq!(parse_segment_name(&segment_name(123_456, 7)), Some((123_456, 7)), "wide epochs parse");
        assert_eq!(parse_segment_name("wal-3-42.wal"), None);
        assert_eq!(parse_segment_name("snapshot-1"), None);
    }
}
