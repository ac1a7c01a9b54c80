//! Which runs a sweep does: scenarios × a seed selection, optionally one shard of it.
//! Seed ranges stay ranges: a run is computed from its index, never from a list of every
//! seed, so `0..18446744073709551615` costs nothing until it is run (and is refused
//! above [`MAX_RUNS`]).

use crate::scenario::Scenario;
use serde::Serialize;

/// Most runs one sweep may do (split bigger sweeps with shards or several seed ranges).
pub const MAX_RUNS: u64 = 10_000_000;

/// Most seeds `random:N` may draw.
pub const MAX_RANDOM: u64 = 1_000_000;

/// A selection of seeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Seeds {
    /// `start..=last`.
    Range {
        /// The first seed.
        start: u64,
        /// The last seed (inclusive).
        last: u64,
    },
    /// `count` seeds derived from `base` (`random:N`, reproducible as `random:N@BASE`).
    Random {
        /// How many.
        count: u64,
        /// What they are derived from.
        base: u64,
    },
}

impl Seeds {
    /// Parses `A..B`, `A..=B`, `random:N` (a fresh base from `fresh_base`) or `random:N@BASE`.
    pub fn parse(text: &str, fresh_base: impl FnOnce() -> u64) -> Result<Seeds, String> {
        if let Some(rest) = text.strip_prefix("random:") {
            let bad = || format!("malformed `{text}` (expected random:N or random:N@BASE, e.g. random:200)");
            let (count, base) = match rest.split_once('@') {
                Some((n, base)) => (n, Some(parse_u64(base).ok_or_else(bad)?)),
                None => (rest, None),
            };
            let count: u64 = count.trim().parse().map_err(|_| bad())?;
            if !(1..=MAX_RANDOM).contains(&count) {
                return Err(format!("random:{count}: draw 1 to {MAX_RANDOM} seeds"));
            }
            return Ok(Seeds::Random { count, base: base.unwrap_or_else(fresh_base) });
        }
        let bad =
            || format!("malformed seed range `{text}` (expected A..B, A..=B or random:N, e.g. 0..1000)");
        let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
            (a, b, true)
        } else if let Some((a, b)) = text.split_once("..") {
            (a, b, false)
        } else {
            return Err(bad());
        };
        let a: u64 = a.trim().parse().map_err(|_| bad())?;
        let b: u64 = b.trim().parse().map_err(|_| bad())?;
        let last = if inclusive { Some(b) } else { b.checked_sub(1) };
        match last {
            Some(last) if last >= a => Ok(Seeds::Range { start: a, last }),
            _ => Err(format!("seed range `{text}` is empty")),
        }
    }

    /// `0..count`.
    pub fn first(count: u64) -> Seeds {
        assert!(count > 0, "an empty seed selection");
        Seeds::Range { start: 0, last: count - 1 }
    }

    /// How many seeds (up to 2^64, hence u128).
    pub fn len(&self) -> u128 {
        match self {
            Seeds::Range { start, last } => u128::from(last - start) + 1,
            Seeds::Random { count, .. } => u128::from(*count),
        }
    }

    /// Always false: a selection holds at least one seed (`parse` refuses empty ones).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`-th seed.
    pub fn get(&self, i: u64) -> u64 {
        match self {
            Seeds::Range { start, .. } => start + i,
            // Mixed before counting: the selections of bases B and B + 1 do not overlap.
            Seeds::Random { base, .. } => splitmix64(splitmix64(*base).wrapping_add(i)),
        }
    }

    /// As a user would write it again (`random:N@BASE` reproduces the same seeds).
    pub fn describe(&self) -> String {
        match self {
            Seeds::Range { start, last } => format!("{start}..={last}"),
            Seeds::Random { count, base } => format!("random:{count}@{base:#x}"),
        }
    }
}

fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// SplitMix64: spreads consecutive bases over the whole seed space.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every run of a sweep: scenario-major over the seeds, then every N-th of a shard.
#[derive(Clone, Debug)]
pub struct RunList {
    scenarios: Vec<Scenario>,
    seeds: Seeds,
    /// `(k, n)`: the runs whose index is `k - 1` modulo `n`.
    shard: (u64, u64),
    len: u64,
}

impl RunList {
    /// The runs of `scenarios` × `seeds`, shard `k` of `n` (1-based); refused above
    /// [`MAX_RUNS`] runs or when the shard is empty.
    pub fn new(scenarios: Vec<Scenario>, seeds: Seeds, shard: Option<(u64, u64)>) -> Result<RunList, String> {
        let (k, n) = shard.unwrap_or((1, 1));
        if scenarios.is_empty() {
            return Err("no scenario to run".into());
        }
        assert!(k >= 1 && k <= n, "shard {k}/{n}");
        let total = seeds.len() * scenarios.len() as u128;
        // Runs with index i, i % n == k - 1, for i < total.
        let len = (total + u128::from(n) - u128::from(k)) / u128::from(n);
        if len > u128::from(MAX_RUNS) {
            return Err(format!(
                "{} runs ({} scenarios × {} seeds{}): a sweep does at most {MAX_RUNS}; \
                 use a smaller seed range or --shard",
                len,
                scenarios.len(),
                seeds.len(),
                if n > 1 { format!(", shard {k}/{n}") } else { String::new() }
            ));
        }
        if len == 0 {
            return Err(format!("shard {k}/{n} of {total} runs is empty"));
        }
        Ok(RunList { scenarios, seeds, shard: (k, n), len: len as u64 })
    }

    /// Number of runs.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never empty (refused by [`RunList::new`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `j`-th run: (scenario, seed).
    pub fn get(&self, j: u64) -> (Scenario, u64) {
        assert!(j < self.len, "run {j} of {}", self.len);
        let (k, n) = self.shard;
        let i = u128::from(k - 1) + u128::from(j) * u128::from(n);
        let per = self.seeds.len();
        let scenario = self.scenarios[(i / per) as usize];
        (scenario, self.seeds.get((i % per) as u64))
    }

    /// The scenarios.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// The seed selection.
    pub fn seeds(&self) -> &Seeds {
        &self.seeds
    }

    /// The shard `(k, n)`.
    pub fn shard(&self) -> (u64, u64) {
        self.shard
    }
}

/// Parses a shard `K/N` (1 <= K <= N).
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("malformed shard `{text}` (expected K/N with 1 <= K <= N, e.g. 2/4)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_inclusive_and_exclusive_without_collecting() {
        let never = || panic!("no fresh base for a range");
        assert_eq!(Seeds::parse("3..5", never), Ok(Seeds::Range { start: 3, last: 4 }));
        assert_eq!(Seeds::parse("3..=5", || 0), Ok(Seeds::Range { start: 3, last: 5 }));
        let all = Seeds::parse("0..=18446744073709551615", || 0).unwrap();
        assert_eq!(all.len(), 1u128 << 64);
        assert_eq!(all.get(u64::MAX), u64::MAX);
        for bad in ["5..2", "3..3", "x..y", "1", "0..18446744073709551616", "random:0", "random:x"] {
            assert!(Seeds::parse(bad, || 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_seeds_are_reproducible_from_their_base() {
        let drawn = Seeds::parse("random:4", || 77).unwrap();
        assert_eq!(drawn, Seeds::Random { count: 4, base: 77 });
        let again = Seeds::parse(&drawn.describe(), || panic!("the base is given")).unwrap();
        let seeds: Vec<u64> = (0..4).map(|i| drawn.get(i)).collect();
        assert_eq!(seeds, (0..4).map(|i| again.get(i)).collect::<Vec<_>>());
        assert_ne!(seeds[0], seeds[1]);
        let next: Vec<u64> = (0..4).map(|i| Seeds::Random { count: 4, base: 78 }.get(i)).collect();
        assert!(next.iter().all(|s| !seeds.contains(s)), "bases 77 and 78 overlap");
    }

    #[test]
    fn shards_partition_the_runs_in_order() {
        let scenarios = vec![Scenario::Crash, Scenario::Baseline];
        let all = RunList::new(scenarios.clone(), Seeds::first(5), None).unwrap();
        let every: Vec<_> = (0..all.len()).map(|j| all.get(j)).collect();
        assert_eq!(every.len(), 10);
        assert_eq!((every[0], every[5]), ((Scenario::Crash, 0), (Scenario::Baseline, 0)));
        let mut union = Vec::new();
        for k in 1..=3 {
            let shard = RunList::new(scenarios.clone(), Seeds::first(5), Some((k, 3))).unwrap();
            union.extend((0..shard.len()).map(|j| (k - 1 + j * 3, shard.get(j))));
        }
        union.sort();
        assert_eq!(union.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), every);
        let huge = Seeds::parse("0..=18446744073709551615", || 0).unwrap();
        assert!(RunList::new(scenarios.clone(), huge, None).unwrap_err().contains("at most"));
        assert!(RunList::new(scenarios, Seeds::first(1), Some((3, 3))).is_err());
    }
}
