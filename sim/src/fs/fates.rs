//! Power-failure fates as data. A power failure draws each pending item's fate (kept, lost,
//! torn sector by sector, an entry operation rolled back) from the disk's random stream;
//! the disk records the fates it drew under names that survive a shrink, and a plan can name
//! them back. A name cannot be a path: WAL segments and snapshots carry sequence numbers
//! in their names, which change when commands are removed. So a node is named by its path
//! with every run of digits masked (`/data/ubscore/wal/wal-#-#.wal`) and its rank among
//! the paths that mask alike (0: the last in name order, the newest), and an item by its
//! place among that node's pending items counted from the newest.

use super::resolution::garbage;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What one sector of a torn write holds after the power failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SectorFate {
    /// The new data.
    New,
    /// The old content.
    Old,
    /// Zeros.
    Zeros,
    /// Bytes that are neither (replayed as a fixed pattern).
    Garbage,
}

/// How a pending item that did not simply reach the disk ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemFate {
    /// The write is lost; the truncation or entry operation rolled back.
    Lose,
    /// The write reached the disk sector by sector as listed. The list is aligned with the
    /// write's end, where a torn tail shows: a write spanning fewer sectors takes the last
    /// fates listed, one spanning more repeats the first for its extra leading sectors.
    Tear(Vec<SectorFate>),
}

/// The fate of one pending item at a power failure, by a name that survives a shrink.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingFate {
    /// The node's path with each run of digits masked as `#`.
    pub node: String,
    /// Its rank among the paths that mask alike, newest (last in name order) first.
    pub newest: usize,
    /// The item's place among the node's pending items, newest first.
    pub item: usize,
    /// How it ended.
    pub fate: ItemFate,
}

impl PendingFate {
    /// One readable line.
    pub fn describe(&self) -> String {
        let what = match &self.fate {
            ItemFate::Lose => "lost".to_string(),
            ItemFate::Tear(s) => format!("torn {s:?}"),
        };
        format!("{} (newest-{}), pending item newest-{}: {what}", self.node, self.newest, self.item)
    }
}

/// `path` with every run of ASCII digits replaced by one `#`.
pub fn mask(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_digits = false;
    for c in path.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

/// Every node's stable name (masked path, rank among the alike, newest first), given
/// every node's path.
pub fn stable_names<K: Ord + Copy>(paths: &BTreeMap<K, PathBuf>) -> BTreeMap<K, (String, usize)> {
    let mut alike: BTreeMap<String, Vec<(String, K)>> = BTreeMap::new();
    for (k, p) in paths {
        let path = p.to_string_lossy().into_owned();
        alike.entry(mask(&path)).or_default().push((path, *k));
    }
    let mut out = BTreeMap::new();
    for (masked, mut group) in alike {
        group.sort_by(|a, b| b.0.cmp(&a.0));
        for (rank, (_, k)) in group.into_iter().enumerate() {
            out.insert(k, (masked.clone(), rank));
        }
    }
    out
}

/// The named fate of an item, if `fates` names it.
pub fn named<'a>(fates: &'a [PendingFate], node: &(String, usize), item: usize) -> Option<&'a ItemFate> {
    fates.iter().find(|f| f.node == node.0 && f.newest == node.1 && f.item == item).map(|f| &f.fate)
}

/// Writes `data` at `offset` into `content` sector by sector as `sectors` say (see
/// [`ItemFate::Tear`]). Returns how many sectors hold the new data.
pub fn apply_torn(
    content: &mut Vec<u8>,
    offset: u64,
    data: &[u8],
    sectors: &[SectorFate],
    sector: u64,
) -> u64 {
    let end = offset + data.len() as u64;
    let mut start = offset / sector * sector;
    let spanned = (end.div_ceil(sector) - start / sector) as usize;
    // The fate of the write's i-th sector: aligned with the list's end.
    let fate = |i: usize| {
        let at = (i + sectors.len()).saturating_sub(spanned);
        sectors.get(at).or(sectors.first()).copied().unwrap_or(SectorFate::New)
    };
    let (mut i, mut written) = (0, 0);
    while start < end {
        let (a, b) = (start.max(offset), (start + sector).min(end));
        let piece: Vec<u8> = match fate(i) {
            SectorFate::New => {
                written += 1;
                data[(a - offset) as usize..(b - offset) as usize].to_vec()
            }
            SectorFate::Old => Vec::new(),
            SectorFate::Zeros => vec![0; (b - a) as usize],
            SectorFate::Garbage => (a..b).map(garbage).collect(),
        };
        if !piece.is_empty() {
            let at = a as usize;
            if content.len() < at + piece.len() {
                content.resize(at + piece.len(), 0);
            }
            content[at..at + piece.len()].copy_from_slice(&piece);
        }
        start += sector;
        i += 1;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_digit_runs_and_ranks_newest_first() {
        assert_eq!(
            mask("/data/ubscore/wal/wal-00003-00000000000000001434.wal"),
            "/data/ubscore/wal/wal-#-#.wal"
        );
        let paths: BTreeMap<u32, PathBuf> =
            [(1, "/d/wal-001.wal"), (2, "/d/wal-003.wal"), (3, "/d/wal-002.wal"), (4, "/d/latest")]
                .into_iter()
                .map(|(k, p)| (k, PathBuf::from(p)))
                .collect();
        let names = stable_names(&paths);
        assert_eq!(names[&2], ("/d/wal-#.wal".to_string(), 0));
        assert_eq!(names[&3], ("/d/wal-#.wal".to_string(), 1));
        assert_eq!(names[&1], ("/d/wal-#.wal".to_string(), 2));
        assert_eq!(names[&4], ("/d/latest".to_string(), 0));
    }

    #[test]
    fn a_torn_write_lands_sector_by_sector_and_repeats_its_last_fate() {
        let mut content = vec![7u8; 8];
        let data = [1u8; 12];
        // Four sectors (bytes 2..4, 4..8, 8..12, 12..14), two fates: aligned with the end,
        // the first fate repeats for the two extra leading sectors.
        let written = apply_torn(&mut content, 2, &data, &[SectorFate::New, SectorFate::Old], 4);
        assert_eq!(written, 3);
        assert_eq!(content, vec![7, 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        // Three sectors, four fates: the last three apply.
        let mut content = Vec::new();
        let fates = [SectorFate::Garbage, SectorFate::New, SectorFate::New, SectorFate::Zeros];
        assert_eq!(apply_torn(&mut content, 0, &data, &fates, 4), 2);
        assert_eq!(content, vec![1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    }
}
