//! The de-duplication table: the first command seen under each id and its outcome.

use crate::command::{Command, CommandKey, Outcome, RejectReason};
use rustc_hash::FxHashMap;

/// Remembers every fresh command by its key, so that a retry gets the first outcome.
#[derive(Clone, Debug, Default)]
pub struct DedupTable {
    seen: FxHashMap<CommandKey, (Command, Outcome)>,
}

impl DedupTable {
    /// For a known id: the first outcome if `command` is a retry of the same command,
    /// `DuplicateId` if it is a different command reusing the id. `None` for a fresh id.
    pub fn lookup(&self, command: &Command) -> Option<Outcome> {
        let (first, outcome) = self.seen.get(&command.key())?;
        Some(if first == command { *outcome } else { Outcome::Rejected(RejectReason::DuplicateId) })
    }

    /// An empty table with room for `n` commands (a recovery knows how many it loads).
    pub fn with_capacity(n: usize) -> DedupTable {
        DedupTable { seen: FxHashMap::with_capacity_and_hasher(n, Default::default()) }
    }

    /// Records a command loaded from a snapshot; false (and nothing changed) if its key is
    /// already recorded.
    pub fn load(&mut self, command: Command, outcome: Outcome) -> bool {
        match self.seen.entry(command.key()) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((command, outcome));
                true
            }
        }
    }

    /// Records a fresh command and its outcome.
    pub fn insert(&mut self, command: Command, outcome: Outcome) {
        let previous = self.seen.insert(command.key(), (command, outcome));
        assert!(previous.is_none(), "command {:?} recorded twice", command.key());
    }

    /// Number of recorded commands.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// All entries, sorted by key (keys are unique, so an unstable sort is exact).
    pub fn entries(&self) -> Vec<(CommandKey, (Command, Outcome))> {
        let mut rows: Vec<_> = self.seen.iter().map(|(k, v)| (*k, *v)).collect();
        rows.sort_unstable_by_key(|(k, _)| *k);
        rows
    }
}
