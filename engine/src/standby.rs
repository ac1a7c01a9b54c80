//! The hot standby's side of its pull link from UBSCore, one code for the replica node and
//! for an in-process run: what the next pull asks for, and applying a pulled batch. A pull
//! that got no answer (a lost reply, a timeout) is asked again; under the planted
//! `ReplicaAppliesTwice` the retry asks from the start of the last batch applied.

use crate::durable::{DurableError, contiguous};
use crate::replica::Replica;
use crate::{EventId, Markets, UbsRecord, UbsSeq};
use std::cell::Cell;

/// A replica and the state of its pull link.
pub struct Standby {
    replica: Replica,
    /// A pull is out and has not been answered (the next one knows it got no reply).
    asking: Cell<bool>,
    /// The watermark before the last batch applied (where the planted bug asks again).
    batch_start: UbsSeq,
}

impl Standby {
    /// An empty standby (it starts from UBSCore's first record).
    pub fn new(markets: Markets) -> Standby {
        Standby { replica: Replica::new(markets), asking: Cell::new(false), batch_start: 0 }
    }

    /// The watermark the next pull asks records after; the pull is outstanding until
    /// [`Standby::answered`].
    pub fn ask(&self) -> UbsSeq {
        let retry = self.asking.replace(true) && crate::bugs::planted(crate::bugs::Bug::ReplicaAppliesTwice);
        if retry { self.batch_start } else { self.replica.last_ubs_seq() }
    }

    /// The outstanding pull got a reply (whatever it holds).
    pub fn answered(&self) {
        self.asking.set(false);
    }

    /// Applies one pulled batch in order; returns the links of the events it produced. A
    /// batch that does not continue the watermark is refused.
    pub fn apply(&mut self, records: &[UbsRecord]) -> Result<Vec<(EventId, u64)>, DurableError> {
        let last = self.replica.last_ubs_seq();
        if !crate::bugs::planted(crate::bugs::Bug::ReplicaAppliesTwice) {
            contiguous("ubscore → replica", last, records.iter().map(|r| r.seq))?;
        }
        self.batch_start = last;
        let mut out = Vec::new();
        for r in records {
            self.replica.apply(r, &mut out).map_err(|e| DurableError::Engine(format!("replica: {e}")))?;
        }
        Ok(out)
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
}
