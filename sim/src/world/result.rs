//! What a run produced: the world's own problems, every recovery, the services recovered
//! from their disks at the end, and the counts and records the checker and reports use.

use crate::fs::ArchivedVersion;
use crate::plan::{FaultPlan, OpCounts};
use engine::durable::{DurableMarketData, DurableMatching, DurableSettlement, DurableUbs};
use engine::service::Recovered;
use engine::{Ack, Command};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Something the world itself saw go wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A service stopped with an error the injected faults do not explain.
    ServiceError {
        /// The node.
        node: String,
        /// The error, displayed.
        error: String,
    },
    /// No convergence after faults stopped.
    Liveness(String),
    /// After convergence, a service refused a query (an error, a wrong kind of answer or
    /// silence), or the final round of queries did not end.
    QueryRefused(String),
    /// The run was cancelled from outside (its wall-clock limit passed).
    Timeout(String),
    /// The services could not be recovered from their disks at the end.
    FinalRecovery(String),
}

/// What the hot-standby replica reported during a run.
#[derive(Clone, Debug, Default)]
pub struct ReplicaSeen {
    /// `(event_id, link)` of every event it produced, in the order produced (a replica that
    /// restarts produces the same ids again).
    pub links: Vec<(engine::EventId, u64)>,
    /// Its state and link as of the last status request that found it changed.
    pub last_state: Option<(engine::matching::MeState, u64)>,
    /// Whether it was promoted (a failover): its last state as a replica is then not the
    /// end of the run; the matching engine it became is judged as the matching engine.
    pub promoted: bool,
}

/// The services recovered from their disks after the run.
pub struct FinalState {
    /// UBSCore.
    pub ubs: DurableUbs,
    /// Matching, caught up with UBSCore's history.
    pub me: DurableMatching,
    /// Settlement.
    pub settlement: DurableSettlement,
    /// Market data, in worlds that have it.
    pub market_data: Option<DurableMarketData>,
}

/// One recovery of one service, as the world saw it.
#[derive(Clone, Debug)]
pub struct RecoveryRecord {
    /// The service.
    pub node: String,
    /// Simulated milliseconds since the start.
    pub at_ms: u64,
    /// The state it recovered, and the snapshot it says it loaded.
    pub state: Recovered,
    /// The newest snapshot that verified on its disk just before it opened (judged by the
    /// simulator, not the engine): the one it had to load.
    pub newest_valid_snapshot: Option<u64>,
    /// The digest of the table the world dropped from `state` (UBSCore's de-dup table,
    /// Settlement's ledger; see `WorldConfig::full_recoveries`); `None`: `state` is whole.
    pub thinned: Option<super::TableDigest>,
}

/// What the simulator saw of one disk's files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilesSeen {
    /// Every file after the final recovery, sorted.
    pub present: Vec<PathBuf>,
    /// Every file ever appended to (removed ones too) and the furthest offset an append to
    /// it started at.
    pub appends: Vec<(PathBuf, u64)>,
    /// Per snapshot directory, the prunings an I/O error or a death interrupted.
    pub prunes_interrupted: Vec<(PathBuf, u64)>,
}

/// What happened in a run.
pub struct WorldResult {
    /// The trace hash (equal for equal seeds, code and parameters); it covers the state
    /// digest too.
    pub trace_hash: u64,
    /// xxh3 digest of the state of all services as recovered at the end (balances, locks,
    /// de-dup table, counters; books; ledger; market data), if they could be recovered.
    pub state_digest: Option<u64>,
    /// Trace lines.
    pub trace_lines: u64,
    /// Simulated time.
    pub sim_time: Duration,
    /// Messages the simulated network carried.
    pub messages: u64,
    /// Nodes killed by the chaos controller (including crash points hit).
    pub kills: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Crash points hit, by coverage cell (`service phase op before|after`).
    pub crash_points: BTreeMap<String, u64>,
    /// Every acknowledged command with its ack.
    pub acked: Vec<(Command, Ack)>,
    /// Problems found by the world itself (unexpected service errors, no convergence).
    pub problems: Vec<Problem>,
    /// The commands the clients were given (what was really sent, for the checker).
    pub sent: Vec<Command>,
    /// The services as recovered from disk at the end, if they could be.
    pub final_state: Option<FinalState>,
    /// Every version of UBSCore's WAL files that an fsync ever made durable (the disk's own
    /// record, files removed since included): the agreed history, for the checker.
    pub ubs_wal_archive: Vec<ArchivedVersion>,
    /// The last trace lines of every node.
    pub tails: BTreeMap<String, Vec<String>>,
    /// Every trace line, when the run was asked to keep them (to localise nondeterminism).
    pub trace: Option<Vec<String>>,
    /// WAL segments that retention removed (made durable once, gone at the end), all services.
    pub segments_removed: u64,
    /// Each service's files, by the disk it ran on: the checker's hygiene rules (snapshots
    /// pruned, segments rotated) judge them.
    pub files: BTreeMap<String, FilesSeen>,
    /// Under media faults: services that refused to go on because their data is damaged,
    /// with the error naming the damage. The run ends at the first one.
    pub corruption_detected: Vec<(String, String)>,
    /// Every recovery of every service, in order: (node, simulated ms, recovered state).
    pub recoveries: Vec<RecoveryRecord>,
    /// Each service's operations by (kind, phase) until the final recovery.
    pub op_counts: OpCounts,
    /// The storage settings every service ran with: the policy the checker holds the
    /// snapshots they took to.
    pub storage: engine::durable::DurableConfig,
    /// The plan the world executed: its rates and the events that happened before the
    /// faults stopped. Replaying it (`WorldConfig::plan`) repeats the run.
    pub plan: FaultPlan,
    /// What the replica reported, in worlds that have one.
    pub replica: Option<ReplicaSeen>,
    /// What market data served, in worlds that have it.
    pub market_data: Option<MarketDataSeen>,
    /// Every query the observer had answered (market data's books, the audit trail), in
    /// the order answered.
    pub served: Vec<Answered>,
}

/// A query answered during a run, with the event the answer was as of: the checker holds
/// each answer to the model's derivation at that event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Market data's top of a book.
    Top { symbol: engine::SymbolId, as_of: engine::EventId, top: Option<engine::market_data::Top> },
    /// Market data's L2 book as of an event.
    Book { symbol: engine::SymbolId, as_of: engine::EventId, book: Option<engine::market_data::L2Book> },
    /// Settlement's audit trail of one order.
    AuditOrder { order_id: engine::OrderId, as_of: engine::EventId, order: Option<engine::audit::OrderAudit> },
    /// Settlement's orders of one user.
    AuditUser { user: engine::UserId, as_of: engine::EventId, ids: Vec<engine::OrderId> },
}

/// An answer and when it came (simulated ms since the start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// When.
    pub at_ms: u64,
    /// The answer.
    pub answer: Served,
}

/// What market data served during a run, and the settings it was run with.
#[derive(Clone, Debug)]
pub struct MarketDataSeen {
    /// Its publication settings (the world's, for the oracle's own derivation).
    pub config: engine::market_data::MdConfig,
    /// Every tick it served to the observer, in the order served.
    pub served_ticks: Vec<engine::market_data::Tick>,
    /// Whether the observer read the ticks to the end after convergence: the served ticks
    /// are then all of them.
    pub ticks_complete: bool,
}

/// xxh3 over the canonical encoding of every service's recovered state: equal states,
/// equal digests (the seeds' own choice of state hash).
pub fn state_digest(f: &FinalState) -> u64 {
    let mut bytes = engine::codec::encode(&f.ubs.core().export_state());
    engine::codec::encode_into(&f.me.engine().export_state(), &mut bytes);
    engine::codec::encode_into(&f.settlement.settlement().ledger(), &mut bytes);
    if let Some(md) = &f.market_data {
        engine::codec::encode_into(md.inner().state(), &mut bytes);
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}
