//! The hot-standby matching replica: a second matching engine fed UBSCore's durable
//! command records, independently of the primary. It keeps nothing on disk: after a
//! restart it rebuilds by replaying UBSCore's log. After every event it produces it
//! extends a chained xxh3 hash, so that a checker can say at which event id it first
//! disagreed with the primary's log (or the model's).

use crate::codec;
use crate::durable::pipeline::me_input;
use crate::matching::{MatchingEngine, MeError};
use crate::{Applied, EventId, Markets, MeEvent, UbsRecord, UbsSeq};

/// The chained hash after `event`, given the link before it (0 before the first event):
/// xxh3-64 of the event's bytes (the codec's encoding) seeded with the previous link,
/// encoded into `buf` (reused, so that hashing allocates nothing).
fn link_with(prev: u64, event: &MeEvent, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    codec::encode_into(event, buf);
    xxhash_rust::xxh3::xxh3_64_with_seed(buf, prev)
}

/// A replica of the matching engine with its hash chain.
pub struct Replica {
    me: MatchingEngine,
    chain: u64,
    scratch: Vec<MeEvent>,
    bytes: Vec<u8>,
    /// Every event produced: what a promotion hands over as the new primary's log.
    events: Vec<MeEvent>,
}

impl Replica {
    /// An empty replica (it starts from UBSCore's first record).
    pub fn new(markets: Markets) -> Replica {
        Replica {
            me: MatchingEngine::new(markets),
            chain: 0,
            scratch: Vec::new(),
            bytes: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Applies one durable UBSCore record in sequence order, and appends `(event_id, link)`
    /// for every event it produced to `out`. A record at or below the watermark changes
    /// nothing.
    pub fn apply(&mut self, record: &UbsRecord, out: &mut Vec<(EventId, u64)>) -> Result<Applied, MeError> {
        // The planted bug numbers inputs by arrival, so a record delivered twice is new.
        let seq = if crate::bugs::planted(crate::bugs::Bug::ReplicaAppliesTwice) {
            self.me.last_ubs_seq() + 1
        } else {
            record.seq
        };
        let Some(input) = me_input(record) else {
            return Ok(self.me.skip(seq));
        };
        self.scratch.clear();
        let first = self.last_event_id() + 1;
        let applied = self.me.process(seq, &input, &mut self.scratch)?;
        for (i, event) in self.scratch.iter().enumerate() {
            assert_eq!(event.event_id, first + i as u64, "the replica's events are dense");
            self.chain = link_with(self.chain, event, &mut self.bytes);
            out.push((event.event_id, self.chain));
        }
        self.events.extend_from_slice(&self.scratch);
        Ok(applied)
    }

    /// The last UBSCore sequence number consumed.
    pub fn last_ubs_seq(&self) -> UbsSeq {
        self.me.last_ubs_seq()
    }

    /// The id of the last event produced (0 if none).
    pub fn last_event_id(&self) -> EventId {
        self.me.next_event_id() - 1
    }

    /// The link after the last event produced.
    pub fn chain(&self) -> u64 {
        self.chain
    }

    /// Every event produced, from event 1.
    pub fn events(&self) -> &[MeEvent] {
        &self.events
    }

    /// The replica's matching engine.
    pub fn engine(&self) -> &MatchingEngine {
        &self.me
    }
}
