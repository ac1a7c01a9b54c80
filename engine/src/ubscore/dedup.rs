//! The de-duplication table: the first command seen under each id and its outcome.

use crate::command::{Command, CommandKey, Outcome, RejectReason};
use rustc_hash::FxHashMap;

/// Remembers every fresh command by its key, so that a retry gets the first outcome.
///
/// The records sit in a vector in the order they were made; the hash map holds only
/// key → place (24 bytes a slot instead of ~90), so the table grows and is rehashed
/// cheaply: growing it was a quarter of the pipeline's time.
#[derive(Clone, Debug, Default)]
pub struct DedupTable {
    index: FxHashMap<CommandKey, usize>,
    records: Vec<(Command, Outcome)>,
}

impl DedupTable {
    /// For a known id: the first outcome if `command` is a retry of the same command,
    /// `DuplicateId` if it is a different command reusing the id. `None` for a fresh id.
    pub fn lookup(&self, command: &Command) -> Option<Outcome> {
        let (first, outcome) = &self.records[*self.index.get(&command.key())?];
        Some(if first == command { *outcome } else { Outcome::Rejected(RejectReason::DuplicateId) })
    }

    /// An empty table with room for `n` commands (a recovery knows how many it loads).
    pub fn with_capacity(n: usize) -> DedupTable {
        DedupTable {
            index: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            records: Vec::with_capacity(n),
        }
    }

    /// Records a command loaded from a snapshot; false (and nothing changed) if its key is
    /// already recorded.
    pub fn load(&mut self, command: Command, outcome: Outcome) -> bool {
        match self.index.entry(command.key()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(self.records.len());
                self.records.push((command, outcome));
                true
            }
        }
    }

    /// Records a fresh command and its outcome.
    pub fn insert(&mut self, command: Command, outcome: Outcome) {
        let previous = self.index.insert(command.key(), self.records.len());
        assert!(previous.is_none(), "command {:?} recorded twice", command.key());
        self.records.push((command, outcome));
    }

    /// Number of recorded commands.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// All entries, sorted by key (keys are unique, so an unstable sort is exact).
    pub fn entries(&self) -> Vec<(CommandKey, (Command, Outcome))> {
        let mut rows: Vec<_> = self.records.iter().map(|r| (r.0.key(), *r)).collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        rows
    }
}
