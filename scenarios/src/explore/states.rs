//! The bounded resolutions of a crashed disk's pending state: all kept (what a process
//! crash leaves), all lost, and every combination of up to `depth` single deviations from
//! "all kept" (one write lost, one write torn at a sector boundary with zeros or garbage,
//! one truncation or directory operation rolled back).

use sim::fs::{Fate, Fill, PendingItem, PendingKind};

/// One way the pending state ends, with a readable label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// What happened, e.g. `all kept` or `write 2 (ubscore/wal/seal) torn at sector 0 with zeros`.
    pub label: String,
    /// The fate of each pending item, by index.
    pub fates: Vec<Fate>,
}

/// Sector counts a torn write is cut at: none, the first, the middle and the last of its
/// sectors (all of them for short writes).
fn tear_points(sectors: u64) -> Vec<u64> {
    let mut points: Vec<u64> =
        if sectors <= 4 { (0..sectors).collect() } else { vec![0, 1, sectors / 2, sectors - 1] };
    points.dedup();
    points
}

/// The single deviations of item `i`: (fate, label).
fn deviations(i: usize, item: &PendingItem) -> Vec<(Fate, String)> {
    let name = item.path.display();
    match &item.kind {
        PendingKind::Write { offset, sectors, .. } => {
            let mut out = vec![(Fate::Lose, format!("write {i} ({name} @{offset}) lost"))];
            for s in tear_points(*sectors) {
                for fill in [Fill::Zeros, Fill::Garbage] {
                    out.push((
                        Fate::Tear { sectors: s, fill },
                        format!("write {i} ({name} @{offset}) torn after {s} sectors, {fill:?}"),
                    ));
                }
            }
            out
        }
        PendingKind::Truncate { len } => {
            vec![(Fate::Lose, format!("truncate {i} ({name} to {len}) rolled back"))]
        }
        PendingKind::Entry { op } => vec![(Fate::Lose, format!("entry op {i} ({name}: {op}) rolled back"))],
    }
}

/// Every resolution of `items` up to `depth` deviations.
pub fn resolutions(items: &[PendingItem], depth: usize) -> Vec<Resolution> {
    let n = items.len();
    let mut out = vec![Resolution { label: "all kept".into(), fates: vec![Fate::Keep; n] }];
    if n == 0 {
        return out;
    }
    out.push(Resolution { label: "all lost".into(), fates: vec![Fate::Lose; n] });
    let per_item: Vec<Vec<(Fate, String)>> =
        items.iter().enumerate().map(|(i, it)| deviations(i, it)).collect();
    // Combinations of `d` distinct items, each with one of its deviations.
    fn extend(
        per_item: &[Vec<(Fate, String)>],
        from: usize,
        left: usize,
        chosen: &mut Vec<(usize, usize)>,
        out: &mut Vec<Resolution>,
    ) {
        if left == 0 {
            let mut fates = vec![Fate::Keep; per_item.len()];
            let mut labels = Vec::new();
            for (item, dev) in chosen.iter() {
                fates[*item] = per_item[*item][*dev].0;
                labels.push(per_item[*item][*dev].1.clone());
            }
            out.push(Resolution { label: labels.join("; "), fates });
            return;
        }
        for item in from..per_item.len() {
            for dev in 0..per_item[item].len() {
                chosen.push((item, dev));
                extend(per_item, item + 1, left - 1, chosen, out);
                chosen.pop();
            }
        }
    }
    for d in 1..=depth.min(n) {
        extend(&per_item, 0, d, &mut Vec::new(), &mut out);
    }
    // "All lost" equals a single deviation when there is one item: keep the first.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|r| seen.insert(r.fates.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(sectors: u64) -> PendingItem {
        PendingItem {
            path: PathBuf::from("/f"),
            kind: PendingKind::Write { offset: 0, len: sectors * 512, sectors },
        }
    }

    fn entry() -> PendingItem {
        PendingItem { path: PathBuf::from("/d"), kind: PendingKind::Entry { op: "Link".into() } }
    }

    #[test]
    fn depth_bounds_the_combinations() {
        let items = [write(1), entry()];
        // Depth 1: all kept, all lost, write lost, 2 tears, entry rolled back.
        let one = resolutions(&items, 1);
        assert_eq!(one.len(), 6, "{one:#?}");
        assert!(one.iter().any(|r| r.fates == vec![Fate::Lose, Fate::Keep]));
        assert!(one.iter().any(|r| r.fates == vec![Fate::Keep, Fate::Lose]));
        // Depth 2 adds every pair: 3 write deviations × 1 entry deviation (one equals all lost).
        let two = resolutions(&items, 2);
        assert_eq!(two.len(), 6 + 3 - 1);
        assert_eq!(resolutions(&[], 2).len(), 1);
        assert_eq!(tear_points(9), vec![0, 1, 4, 8]);
    }
}
