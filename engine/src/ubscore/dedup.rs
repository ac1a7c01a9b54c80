//! The de-duplication table: the first command seen under each id and its outcome.

use crate::command::{Command, CommandKey, Outcome, RejectReason};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

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

    /// All entries, sorted by key.
    pub fn entries(&self) -> BTreeMap<CommandKey, (Command, Outcome)> {
        self.seen.iter().map(|(k, v)| (*k, *v)).collect()
    }
}
