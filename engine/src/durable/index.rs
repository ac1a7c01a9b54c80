//! A sparse index from a service-level sequence number (ubs_seq, trade_id) to the WAL
//! sequence number of its entry, so downstream reads can start near their watermark
//! without scanning the whole log or holding one entry per record in memory.

/// Every `STRIDE`-th key is indexed (retention cuts the log at indexed keys only, so a
/// fine stride lets small logs, e.g. the explorer's, be cut too).
const STRIDE: u64 = 16;

use super::DurableError;

/// Sparse key → WAL seq index; keys must be added in increasing order.
#[derive(Clone, Debug, Default)]
pub struct SparseIndex {
    points: Vec<(u64, u64)>,
}

impl SparseIndex {
    /// Notes that `key` is at WAL seq `wal_seq` (kept if it falls on the stride).
    pub fn note(&mut self, key: u64, wal_seq: u64) {
        if key % STRIDE == 1 && self.points.last().is_none_or(|(k, _)| *k < key) {
            self.points.push((key, wal_seq));
        }
    }

    /// A WAL seq at or before the entry of the first key greater than `after`.
    pub fn start_for(&self, after: u64, first_wal_seq: u64) -> u64 {
        let i = self.points.partition_point(|(k, _)| *k <= after + 1);
        match i {
            0 => first_wal_seq,
            i => self.points[i - 1].1.max(first_wal_seq),
        }
    }

    /// Forgets points below a WAL seq (after retention).
    pub fn forget_below(&mut self, wal_seq: u64) {
        self.points.retain(|(_, s)| *s >= wal_seq);
    }

    /// The index as bytes, for a snapshot: with it, recovery need not read the WAL the
    /// snapshot covers only to rebuild the index.
    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(&self.points)
    }

    /// The index a snapshot holds, covering WAL entries up to `upto`; `what` names it in
    /// errors. Refused unless keys and WAL seqs rise and stay at or below `upto`.
    pub fn decode(what: &str, bytes: &[u8], upto: u64) -> Result<SparseIndex, DurableError> {
        let points: Vec<(u64, u64)> = super::decode(|| what.to_string(), bytes)?;
        let rising = points.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        if !rising || points.last().is_some_and(|(_, s)| *s > upto) {
            return Err(DurableError::Divergence(format!("{what}: not a rising index up to WAL seq {upto}")));
        }
        Ok(SparseIndex { points })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_start_at_or_before_the_key() {
        let mut ix = SparseIndex::default();
        for key in 1..=1000u64 {
            ix.note(key, key * 2 + 5);
        }
        assert_eq!(ix.start_for(0, 7), 7);
        // Points every 16 keys: 1, 17, 33, …, 289, 305, …
        assert_eq!(ix.start_for(300, 7), 289 * 2 + 5);
        assert_eq!(ix.start_for(304, 7), 305 * 2 + 5);
        assert_eq!(ix.start_for(303, 7), 289 * 2 + 5);
        assert_eq!(ix.start_for(15, 7), 7, "key 1 is at WAL seq 7");
        ix.forget_below(600);
        assert_eq!(ix.start_for(300, 600), 600);
    }

    #[test]
    fn a_stored_index_reads_back_and_a_bad_one_is_refused() {
        let mut ix = SparseIndex::default();
        for key in 1..=100u64 {
            ix.note(key, key + 3);
        }
        let back = SparseIndex::decode("ix", &ix.encode(), 103).expect("reads back");
        assert_eq!(back.points, ix.points);
        assert_eq!(back.start_for(40, 1), 33 + 3);
        assert!(SparseIndex::decode("ix", &ix.encode(), 90).is_err(), "a point beyond the snapshot");
        let falling = crate::codec::encode(&vec![(17u64, 20u64), (1, 4)]);
        assert!(SparseIndex::decode("ix", &falling, 100).is_err(), "keys must rise");
        assert!(SparseIndex::decode("ix", b"\xff\xff", 100).is_err(), "undecodable");
    }
}
