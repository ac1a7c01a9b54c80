//! The de-duplication table: the first command seen under each id and its outcome.

use crate::command::{Command, CommandKey, Outcome, RejectReason};
use crate::pages::{Pages, Shared};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry;

/// Remembers every fresh command by its key, so that a retry gets the first outcome.
///
/// The records sit in pages in the order they were made (growing never copies them; a
/// snapshot shares them); the hash map holds only key → place (24 bytes a slot instead of ~90), so the
/// table grows and is rehashed cheaply: growing it was a quarter of the pipeline's time.
#[derive(Clone, Debug, Default)]
pub struct DedupTable {
    index: FxHashMap<CommandKey, usize>,
    records: Pages<(Command, Outcome)>,
}

impl DedupTable {
    /// One hash probe per command. For a known id, `Err` with the first outcome if `command`
    /// is a retry of the same command, `DuplicateId` if it is a different command reusing
    /// the id. For a fresh id, the command is recorded and `Ok` gives its place, whose
    /// outcome [`DedupTable::settle`] sets once the command has been applied.
    pub fn admit(&mut self, command: &Command) -> Result<usize, Outcome> {
        match self.index.entry(command.key()) {
            Entry::Occupied(known) => {
                let (first, outcome) = self.records.get(*known.get());
                Err(if first == command { *outcome } else { Outcome::Rejected(RejectReason::DuplicateId) })
            }
            Entry::Vacant(slot) => {
                let place = self.records.len();
                slot.insert(place);
                // Until settled: the caller applies the command without returning in between.
                self.records.push((*command, Outcome::Accepted));
                Ok(place)
            }
        }
    }

    /// Sets the outcome of the fresh command admitted at `place`.
    pub fn settle(&mut self, place: usize, outcome: Outcome) {
        assert_eq!(place + 1, self.records.len(), "only the last command admitted is settled");
        self.records.get_mut(place).1 = outcome;
    }

    /// An empty table with room for `n` commands (a recovery knows how many it loads).
    pub fn with_capacity(n: usize) -> DedupTable {
        DedupTable {
            index: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            records: Pages::with_capacity(n),
        }
    }

    /// Records a command loaded from a snapshot; false (and nothing changed) if its key is
    /// already recorded.
    pub fn load(&mut self, command: Command, outcome: Outcome) -> bool {
        match self.index.entry(command.key()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(self.records.len());
                self.records.push((command, outcome));
                true
            }
        }
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
        sorted_entries(self.records.iter())
    }

    /// The records as they are now, sharing their pages (a write afterwards copies the page
    /// it touches): what a snapshot encodes while the table goes on.
    pub fn share(&mut self) -> DedupView {
        DedupView { records: self.records.share() }
    }
}

/// The de-duplication records as they were when [`DedupTable::share`] was called.
#[derive(Clone, Debug)]
pub struct DedupView {
    records: Shared<(Command, Outcome)>,
}

impl DedupView {
    /// All entries, sorted by key.
    pub fn entries(&self) -> Vec<(CommandKey, (Command, Outcome))> {
        sorted_entries(self.records.iter())
    }
}

fn sorted_entries<'a>(
    records: impl Iterator<Item = &'a (Command, Outcome)>,
) -> Vec<(CommandKey, (Command, Outcome))> {
    let mut rows: Vec<_> = records.map(|r| (r.0.key(), *r)).collect();
    rows.sort_unstable_by_key(|(k, _)| *k);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_gets_the_first_outcome_and_a_reused_id_is_refused() {
        let deposit = Command::Deposit { request_id: 1, user: 2, asset: 1, amount: 5 };
        let mut t = DedupTable::default();
        let place = t.admit(&deposit).expect("fresh");
        t.settle(place, Outcome::Rejected(RejectReason::ZeroAmount));
        assert_eq!(t.admit(&deposit), Err(Outcome::Rejected(RejectReason::ZeroAmount)), "the first outcome");
        let other = Command::Withdraw { request_id: 1, user: 2, asset: 1, amount: 5 };
        assert_eq!(t.admit(&other), Err(Outcome::Rejected(RejectReason::DuplicateId)));
        assert_eq!(t.len(), 1);
    }
}
