//! Recoveries judged by digest. Two tables of a recovered state grow with the run:
//! UBSCore's de-duplication table (every command ever seen) and Settlement's ledger (every
//! trade). Kept whole at every restart, they made a run's memory grow with its length times
//! its restarts (2.1 GB at 100,000 commands with crashes). The world keeps instead each
//! table's row count and an xxh3 digest of its rows in order; the checker digests the
//! model's rows the same way. A mismatch is still a finding of the same kind; the scenario
//! then runs the seed again with every row kept, to name the first differing row.

use engine::service::Recovered;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A table as the number of its rows and a digest of their encodings, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDigest {
    /// Rows.
    pub rows: u64,
    /// xxh3 over the rows' canonical encodings, in order (so the order is judged too).
    pub digest: u64,
}

impl TableDigest {
    /// The digest of `rows`, in their order.
    pub fn of<T: Serialize>(rows: impl IntoIterator<Item = T>) -> TableDigest {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let (mut buf, mut count) = (Vec::new(), 0);
        for row in rows {
            add(&mut hasher, &mut buf, &row);
            count += 1;
        }
        TableDigest { rows: count, digest: hasher.digest() }
    }

    /// The digests of the first `n` rows for each `n` in `lens` (at most the rows there
    /// are), in one pass: what judging many recovered prefixes of one table costs.
    pub fn prefixes<T: Serialize>(rows: &[T], lens: &BTreeSet<u64>) -> BTreeMap<u64, TableDigest> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let (mut buf, mut out, mut done) = (Vec::new(), BTreeMap::new(), 0u64);
        for &n in lens.range(..=rows.len() as u64) {
            for row in &rows[done as usize..n as usize] {
                add(&mut hasher, &mut buf, row);
            }
            done = n;
            out.insert(n, TableDigest { rows: n, digest: hasher.digest() });
        }
        out
    }
}

/// Feeds one row's canonical encoding to `hasher`.
fn add<T: Serialize>(hasher: &mut xxhash_rust::xxh3::Xxh3, buf: &mut Vec<u8>, row: &T) {
    buf.clear();
    engine::codec::encode_into(row, buf);
    hasher.update(buf);
}

/// Replaces the table that grows with the run in `state` (UBSCore's de-dup table,
/// Settlement's ledger) by nothing, and returns its digest; other states stay whole.
pub fn thin(state: &mut Recovered) -> Option<TableDigest> {
    match state {
        Recovered::Ubs { state, .. } => {
            let digest = TableDigest::of(state.dedup.iter().map(|(k, v)| (k, v)));
            state.dedup = Vec::new();
            Some(digest)
        }
        Recovered::Settlement { ledger, .. } => {
            let digest = TableDigest::of(ledger.iter());
            *ledger = Vec::new();
            Some(digest)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_rows_equal_digests_and_order_counts() {
        let a = TableDigest::of([(1u64, 10u64), (2, 20)].iter().map(|(k, v)| (k, v)));
        let b = TableDigest::of([(1u64, 10u64), (2, 20)].iter().map(|(k, v)| (k, v)));
        let swapped = TableDigest::of([(2u64, 20u64), (1, 10)].iter().map(|(k, v)| (k, v)));
        let changed = TableDigest::of([(1u64, 10u64), (2, 21)].iter().map(|(k, v)| (k, v)));
        assert_eq!(a, b);
        assert_eq!(a.rows, 2);
        assert_ne!(a.digest, swapped.digest, "the order is part of the digest");
        assert_ne!(a.digest, changed.digest);
        // A reference tuple encodes as the tuple it points to: the world and the checker may
        // hold their rows either way.
        let owned = TableDigest::of([(1u64, 10u64), (2, 20)].iter());
        assert_eq!(a, owned);
    }

    #[test]
    fn the_prefixes_in_one_pass_equal_each_prefix_digested_alone() {
        let rows: Vec<u64> = (0..50).map(|i| i * 7 + 1).collect();
        let lens: BTreeSet<u64> = [0, 1, 17, 49, 50, 80].into_iter().collect();
        let got = TableDigest::prefixes(&rows, &lens);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), vec![0, 1, 17, 49, 50], "none past the end");
        for (n, d) in got {
            assert_eq!(d, TableDigest::of(&rows[..n as usize]), "prefix {n}");
        }
    }
}
