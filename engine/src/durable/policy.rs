//! When to take a snapshot: after a number of WAL entries, or after some time with at
//! least one new entry. Time comes from the caller (simulated or real), never a clock here.

/// Snapshot triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Take one after this many WAL entries since the last (0: never by count).
    pub every_entries: u64,
    /// Take one after this many milliseconds since the last, if anything changed (0: never by time).
    pub every_ms: u64,
}

impl SnapshotPolicy {
    /// By count or by time, whichever comes first.
    pub fn every(entries: u64, ms: u64) -> SnapshotPolicy {
        SnapshotPolicy { every_entries: entries, every_ms: ms }
    }

    /// Never automatically.
    pub fn never() -> SnapshotPolicy {
        SnapshotPolicy { every_entries: 0, every_ms: 0 }
    }

    /// Whether a snapshot is due, given entries and time since the last one.
    pub fn due(&self, entries_since: u64, ms_since: u64) -> bool {
        (self.every_entries > 0 && entries_since >= self.every_entries)
            || (self.every_ms > 0 && entries_since > 0 && ms_since >= self.every_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_or_time_whichever_first() {
        let p = SnapshotPolicy::every(100, 1_000);
        assert!(!p.due(99, 999));
        assert!(p.due(100, 0));
        assert!(p.due(1, 1_000));
        assert!(!p.due(0, 5_000), "nothing new, nothing to snapshot");
        assert!(!SnapshotPolicy::never().due(u64::MAX, u64::MAX));
    }
}
