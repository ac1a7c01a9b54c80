//! Faults as data. A seed expands into a [`FaultPlan`]: the disk's and the network's fault
//! rates and a list of typed, timed events (kills, crash points, partitions, and the faults
//! that meet a service as it recovers), which the world executes. A plan is serialisable:
//! a failing run's report embeds the plan it executed, `exsim run --plan FILE` replays an
//! edited one, and `exsim shrink` deletes events (and commands) while the failure stays.
//!
//! Per-write and per-message decisions stay seeded streams under the plan's rates (a run
//! writes thousands of records and sends tens of thousands of messages); the plan names
//! the rates, so a shrinker can turn a whole class off.

use crate::fs::{CrashTarget, Death, FaultConfig, IoErrorAt, Media, OpKind, PendingFate, Phase};
use crate::media::Target;
use crate::seed::{Stream, rng};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Operations of each (kind, phase) each service's disk performed in a run: what pinned
/// crashes count.
pub type OpCounts = BTreeMap<Service, BTreeMap<(OpKind, Phase), u64>>;

/// One of the services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    /// Balances (the agreed history).
    Ubscore,
    /// The matching engine.
    Matching,
    /// Settlement.
    Settlement,
    /// The hot-standby matching replica (worlds that have one): nothing on disk.
    Replica,
    /// Market data (worlds that have it): ticks, L2 books and top-of-book deltas.
    MarketData,
}

impl Service {
    /// The three durable services, in start order.
    pub const ALL: [Service; 3] = [Service::Ubscore, Service::Matching, Service::Settlement];

    /// The durable services and the replica, in start order.
    pub const WITH_REPLICA: [Service; 4] =
        [Service::Ubscore, Service::Matching, Service::Settlement, Service::Replica];

    /// The durable services and market data, in start order.
    pub const WITH_MARKET_DATA: [Service; 4] =
        [Service::Ubscore, Service::Matching, Service::Settlement, Service::MarketData];

    /// Every service.
    pub const WITH_BOTH: [Service; 5] =
        [Service::Ubscore, Service::Matching, Service::Settlement, Service::Replica, Service::MarketData];

    /// The services of a world with or without the replica and market data.
    pub fn of_world(replica: bool, market_data: bool) -> &'static [Service] {
        match (replica, market_data) {
            (false, false) => &Service::ALL,
            (true, false) => &Service::WITH_REPLICA,
            (false, true) => &Service::WITH_MARKET_DATA,
            (true, true) => &Service::WITH_BOTH,
        }
    }

    /// The last byte of its IP address (10.0.0.x), fixed whatever else the world has.
    pub fn host(self) -> u8 {
        match self {
            Service::Ubscore => 1,
            Service::Matching => 2,
            Service::Settlement => 3,
            Service::Replica => 4,
            Service::MarketData => 5,
        }
    }

    /// The node's name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ubscore => "ubscore",
            Service::Matching => "matching",
            Service::Settlement => "settlement",
            Service::Replica => "replica",
            Service::MarketData => "market-data",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault that meets a service as it comes back after a kill or a crash point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryFault {
    /// Its newest snapshot is damaged (file `pick` of it, at offset `at` modulo its size),
    /// unless that would leave no valid fallback.
    CorruptSnapshot {
        /// Which file of the snapshot.
        pick: usize,
        /// Where in it.
        at: u64,
    },
    /// One media fault of kind `media` aimed at `target`; `aim` picks the file and offset.
    Media {
        /// What the fault is aimed at.
        target: Target,
        /// The kind of damage.
        media: Media,
        /// Seeds the choice of file and offset among the target's.
        aim: u64,
    },
    /// A crash point inside the recovery: at its `nth` filesystem operation.
    CrashInRecovery {
        /// The operation (1-based, counted from the restart).
        nth: u64,
        /// Before its effect, or after.
        before: bool,
    },
}

/// What happens at one point of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannedFault {
    /// The service is killed, stays down `down_ms`, and restarts meeting `recovery`.
    Kill {
        /// Which service.
        service: Service,
        /// Power failure (the disk resolves its pending state) or process crash.
        death: Death,
        /// Simulated ms until the restart.
        down_ms: u64,
        /// Faults its recovery meets, in order (a crash in recovery consumes the next).
        recovery: Vec<RecoveryFault>,
        /// The last operation the service performed before the kill (recorded by the world;
        /// not used to execute the plan): lets a shrinker pin the kill to that operation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hit: Option<CrashHit>,
    },
    /// A crash point is armed: the service dies at the `nth` filesystem operation from now
    /// (among those `target` matches, if any), then restarts after `down_ms`.
    CrashPoint {
        /// Which service.
        service: Service,
        /// The operation, counted from now.
        nth: u64,
        /// Before its effect, or after.
        before: bool,
        /// Only operations of this kind or phase count.
        target: Option<CrashTarget>,
        /// How it dies.
        death: Death,
        /// Simulated ms from its death to its restart.
        down_ms: u64,
        /// Faults its recovery meets.
        recovery: Vec<RecoveryFault>,
        /// Which operation it hit, when it fired (recorded by the world; not used to
        /// execute the plan): lets a shrinker aim it at that operation again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hit: Option<CrashHit>,
    },
    /// A crash point pinned to one operation of the service's whole life: the `nth`
    /// operation of `kind` in `phase` since the run began (restarts do not reset the count).
    /// Armed when the event executes; fires once, whenever that operation comes. What a
    /// shrinker turns kills and fired crash points into: the crash stays on its operation
    /// while commands and other faults are removed around it.
    CrashAt {
        /// Which service.
        service: Service,
        /// The operation.
        kind: OpKind,
        /// Its storage phase.
        phase: Phase,
        /// Which operation of that kind and phase since the run began (1-based).
        nth: u64,
        /// Before its effect, or after.
        before: bool,
        /// How it dies.
        death: Death,
        /// Simulated ms from its death to its restart.
        down_ms: u64,
        /// Faults its recovery meets.
        recovery: Vec<RecoveryFault>,
        /// At a power failure: the fates of the disk's pending items, named (items not
        /// named are kept). `None`: drawn from the disk's rates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fates: Option<Vec<PendingFate>>,
        /// The pending items its power failure did not keep, and how they ended (recorded
        /// by the world; not used to execute the plan): lets a shrinker name them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drawn: Vec<PendingFate>,
    },
    /// The service is asked to stop gracefully (SIGTERM: it stops serving, commits, takes
    /// a snapshot and exits, its page cache intact), and restarts `down_ms` after it exited,
    /// meeting `recovery`. With `interrupt`, a crash point is armed as the stop is asked
    /// for: the stop (its final snapshot) may die half-way.
    Stop {
        /// Which service (never the replica, whose graceful stop is its promotion).
        service: Service,
        /// Simulated ms from its exit to its restart.
        down_ms: u64,
        /// Faults its recovery meets.
        recovery: Vec<RecoveryFault>,
        /// A crash point armed with the request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupt: Option<Interrupt>,
    },
    /// The link from `a` to `b` is cut for `for_ms`, one way (see `World::partition`).
    Partition {
        /// The sender: what it sends `b` is lost.
        a: Service,
        /// The receiver: what it sends `a` still arrives.
        b: Service,
        /// Simulated ms until it heals.
        for_ms: u64,
    },
}

/// A crash point armed together with a graceful stop: the `nth` filesystem operation from
/// the request on, before or after its effect, kills the service as `death` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupt {
    /// The operation, counted from the request.
    pub nth: u64,
    /// Before its effect, or after.
    pub before: bool,
    /// How it dies.
    pub death: Death,
}

/// The operation a fired crash point hit (or the last one before a kill): the `nth` of its
/// kind and phase since arming, and the `lifetime`-th since the run began.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashHit {
    /// The operation.
    pub kind: OpKind,
    /// Its storage phase.
    pub phase: Phase,
    /// Which of the operations of that kind and phase since the crash point was armed (for
    /// a kill: since the run began).
    pub nth: u64,
    /// Which of the operations of that kind and phase since the run began.
    #[serde(default)]
    pub lifetime: u64,
}

/// A planned fault at a simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEvent {
    /// Simulated ms since the start (the earliest moment; the world acts at its next tick).
    pub at_ms: u64,
    /// What happens.
    #[serde(flatten)]
    pub fault: PlannedFault,
    /// When set, the event happens `delay_ms` after this command (an index into the seeded
    /// workload) was acknowledged instead of at `at_ms` (which stays the fallback when the
    /// command is not sent): an event anchored to the workload's progress, which survives
    /// commands removed before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ack: Option<AckAnchor>,
    /// The last acknowledgement before the event, as the world saw it when it executed the
    /// event (recorded, not used to execute): what [`FaultPlan::anchored`] turns into
    /// `after_ack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ack: Option<AckAnchor>,
}

/// Why a plan cannot be executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidPlan {
    /// A crash point or I/O error at operation 0 (operations are counted from 1).
    ZeroOperation {
        /// `event` or `io-error`.
        what: &'static str,
        /// Its index in the plan's list.
        index: usize,
    },
    /// A client count of 0 (nobody would send the commands).
    NoClients,
    /// `keep_commands` is not strictly increasing (commands keep their workload order, and
    /// a command is kept once).
    UnsortedCommands {
        /// The first place out of order.
        index: usize,
    },
    /// An event names a service the scenario does not have (the replica, market data).
    AbsentService {
        /// `event` or `io-error`.
        what: &'static str,
        /// Its index in the plan's list.
        index: usize,
        /// The service named.
        service: Service,
    },
}

impl fmt::Display for InvalidPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidPlan::ZeroOperation { what, index } => {
                write!(f, "{what} #{index} names operation 0 (operations are counted from 1)")
            }
            InvalidPlan::NoClients => write!(f, "clients is 0 (at least one client sends the commands)"),
            InvalidPlan::AbsentService { what, index, service } => {
                write!(f, "{what} #{index} names the {service}, and this scenario has none")
            }
            InvalidPlan::UnsortedCommands { index } => {
                write!(
                    f,
                    "keep_commands[{index}] is not above the one before (list each command once, in order)"
                )
            }
        }
    }
}

/// An I/O error at one operation of a service's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedIoError {
    /// Which service's disk.
    pub service: Service,
    /// The operation and the error.
    #[serde(flatten)]
    pub at: IoErrorAt,
}

/// An event's place relative to the workload: `delay_ms` after command `command` (index
/// into the seeded workload) was acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckAnchor {
    /// The command, by its index in the seeded workload.
    pub command: usize,
    /// Simulated ms after its acknowledgement.
    pub delay_ms: u64,
}

/// Network fault rates during the safety phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkFaults {
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
}

/// Everything a run's faults are: rates for the many small decisions, events for the few
/// that matter, and (for shrunk runs) which of the seeded commands are sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Disk fault rates (pending writes lost or torn at power failure, I/O errors).
    pub disk: FaultConfig,
    /// Network fault rates.
    pub network: NetworkFaults,
    /// The events, in time order.
    pub events: Vec<PlanEvent>,
    /// Indices (into the seeded workload) of the commands sent; `None`: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_commands: Option<Vec<usize>>,
    /// I/O errors at given operations of a service's life. In a plan to execute: errors
    /// returned there besides those the rates draw; in an executed plan: every error the
    /// disks returned (drawn or pinned). [`FaultPlan::errors_pinned`] turns the second into
    /// the first, with the rates off, for a shrinker to delete them one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_errors: Vec<PlannedIoError>,
    /// Overrides the scenario's snapshot interval (entries): a shrunk run snapshots sooner,
    /// so a failure that needs a snapshot needs fewer commands. `None`: the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_every: Option<u64>,
    /// Overrides the scenario's WAL segment size (bytes): a shrunk run rotates and
    /// retires segments sooner. `None`: the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    /// Overrides the scenario's number of clients: with one, the commands reach UBSCore in
    /// their order, so an order never races the deposit it needs. `None`: the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
}

/// How a seed's chaos is drawn: the rates a scenario sets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChaosRates {
    /// Mean simulated ms between two events (0: no events).
    pub fault_every_ms: u64,
    /// How long a killed node stays down, or a partition lasts, at most (ms).
    pub max_down_ms: u64,
    /// Whether partitions are drawn.
    pub partitions: bool,
    /// Whether kills and crash points are drawn (network events alone otherwise).
    pub node_faults: bool,
    /// Crash points fall within this many operations of their arming.
    pub crash_window: u64,
    /// Probability that a kill or crash point is a process crash rather than a power failure.
    pub process_crash: f64,
    /// When set, half of the crash points are aimed at the first few operations this
    /// target matches (e.g. retention's removes, a snapshot's rename).
    pub crash_on: Option<CrashTarget>,
    /// Probability that each recovery attempt meets a crash point (again and again).
    pub crash_in_recovery: f64,
    /// Probability that a restart finds its newest snapshot damaged.
    pub corrupt_snapshot: f64,
    /// Probability that a restart finds one media fault.
    pub media: f64,
    /// Whether the world has the replica (it is then a victim too).
    pub replica: bool,
    /// Whether the world has market data (it is then a victim too).
    pub market_data: bool,
    /// Probability that a kill of a durable service is a graceful stop instead.
    pub graceful_stop: f64,
}

/// The longest chain of crash points one recovery meets.
const MAX_RECOVERY_CRASHES: usize = 4;

/// Expands a seed into plan events, lazily, in time order: each draw depends only on the
/// seed and the rates, never on what the world did, so a prefix of the stream is the plan
/// of any run that ended earlier.
pub struct Planner {
    rates: ChaosRates,
    chaos: ChaCha8Rng,
    recovery: ChaCha8Rng,
    t: u64,
}

impl Planner {
    /// The planner of `seed`.
    pub fn new(seed: u64, rates: ChaosRates) -> Planner {
        Planner { rates, chaos: rng(seed, Stream::Crash), recovery: rng(seed, Stream::Recovery), t: 0 }
    }

    fn death(&mut self) -> Death {
        if self.rates.process_crash > 0.0 && self.chaos.gen_bool(self.rates.process_crash.min(1.0)) {
            Death::ProcessCrash
        } else {
            Death::PowerFailure
        }
    }

    fn down(&mut self) -> u64 {
        self.chaos.gen_range(1..=self.rates.max_down_ms.max(1))
    }

    fn recovery_faults(&mut self) -> Vec<RecoveryFault> {
        let (r, rates) = (&mut self.recovery, self.rates);
        let mut out = Vec::new();
        if rates.corrupt_snapshot > 0.0 && r.gen_bool(rates.corrupt_snapshot.min(1.0)) {
            out.push(RecoveryFault::CorruptSnapshot { pick: r.gen_range(0..16), at: r.r#gen() });
        }
        if rates.media > 0.0 && r.gen_bool(rates.media.min(1.0)) {
            let target = Target::ALL[r.gen_range(0..Target::ALL.len())];
            let media = Media::ALL[r.gen_range(0..Media::ALL.len())];
            out.push(RecoveryFault::Media { target, media, aim: r.r#gen() });
        }
        while rates.crash_in_recovery > 0.0
            && out.len() < MAX_RECOVERY_CRASHES
            && r.gen_bool(rates.crash_in_recovery.min(1.0))
        {
            out.push(RecoveryFault::CrashInRecovery { nth: r.gen_range(1..60), before: r.gen_bool(0.5) });
        }
        out
    }

    /// A (phase, operation) cell of the coverage map, drawn uniformly.
    fn drawn_cell(&mut self) -> CrashTarget {
        let cells: Vec<(Phase, OpKind)> =
            Phase::ALL.iter().flat_map(|p| p.ops().iter().map(move |op| (*p, *op))).collect();
        let (phase, op) = cells[self.chaos.gen_range(0..cells.len())];
        CrashTarget { kind: Some(op), phase: Some(phase) }
    }

    /// A crash point for a graceful stop, in a third of them: within 24 operations of the
    /// request (its final snapshot, a dozen or two operations, or what the service still
    /// served and pulled in the few ms before it saw the request).
    fn interrupt(&mut self) -> Option<Interrupt> {
        if !self.chaos.gen_bool(1.0 / 3.0) {
            return None;
        }
        let (nth, before) = (self.chaos.gen_range(1..=24), self.chaos.gen_bool(0.5));
        Some(Interrupt { nth, before, death: self.death() })
    }

    fn victim(&mut self) -> Service {
        let services = Service::of_world(self.rates.replica, self.rates.market_data);
        services[self.chaos.gen_range(0..services.len())]
    }
}

impl Iterator for Planner {
    type Item = PlanEvent;

    fn next(&mut self) -> Option<PlanEvent> {
        let every = self.rates.fault_every_ms;
        if every == 0 || !(self.rates.node_faults || self.rates.partitions) {
            return None;
        }
        loop {
            self.t += self.chaos.gen_range(1..=2 * every);
            let at_ms = self.t;
            let victim = self.victim();
            let action = if self.rates.node_faults { self.chaos.gen_range(0..3) } else { 2 };
            // The replica has no disk for a crash point to fire on: it is killed instead.
            let action = if victim == Service::Replica && action == 1 { 0 } else { action };
            let fault = match action {
                0 => {
                    let death = self.death();
                    let down_ms = self.down();
                    let recovery = self.recovery_faults();
                    // Drawn after everything else, and only when stops are on: every other
                    // scenario's plans stay what they were.
                    if self.rates.graceful_stop > 0.0
                        && victim != Service::Replica
                        && self.chaos.gen_bool(self.rates.graceful_stop.min(1.0))
                    {
                        PlannedFault::Stop { service: victim, down_ms, recovery, interrupt: self.interrupt() }
                    } else {
                        PlannedFault::Kill { service: victim, death, down_ms, recovery, hit: None }
                    }
                }
                1 => {
                    let mut nth = self.chaos.gen_range(1..self.rates.crash_window.max(2));
                    let before = self.chaos.gen_bool(0.5);
                    let death = self.death();
                    // Half the crash points go where the scenario aims them, or (without an aim)
                    // a quarter at the next few operations of a drawn storage phase: rare
                    // phases (a snapshot's rename, retention) get crash points too.
                    let target = match self.rates.crash_on {
                        Some(t) => Some(t).filter(|_| self.chaos.gen_bool(0.5)),
                        None if self.chaos.gen_bool(0.25) => Some(self.drawn_cell()),
                        None => None,
                    };
                    if target.is_some() {
                        nth = self.chaos.gen_range(1..=3);
                    }
                    let down_ms = self.down();
                    let recovery = self.recovery_faults();
                    PlannedFault::CrashPoint {
                        service: victim,
                        nth,
                        before,
                        target,
                        death,
                        down_ms,
                        recovery,
                        hit: None,
                    }
                }
                _ if self.rates.partitions => {
                    let other = self.victim();
                    if other == victim {
                        continue;
                    }
                    PlannedFault::Partition { a: victim, b: other, for_ms: self.down() }
                }
                _ => continue,
            };
            return Some(PlanEvent { at_ms, fault, after_ack: None, last_ack: None });
        }
    }
}

impl FaultPlan {
    /// The same plan with every crash point that fired aimed at the operation it hit (the
    /// n-th of that kind and phase from its arming) instead of at a count of all operations:
    /// the same run, but one whose crash points still land on their operation when
    /// commands before them are removed.
    pub fn reaimed(&self) -> FaultPlan {
        let mut plan = self.clone();
        for e in &mut plan.events {
            if let PlannedFault::CrashPoint { nth, target, hit, .. } = &mut e.fault {
                if let Some(h) = hit.take() {
                    *nth = h.nth;
                    *target = Some(CrashTarget { kind: Some(h.kind), phase: Some(h.phase) });
                }
            }
        }
        plan
    }

    /// The same plan with every kill and every fired crash point pinned to the operation
    /// it hit (a kill: the service's last operation before it, as after its effect) as a
    /// [`PlannedFault::CrashAt`] armed at the start, ahead of the other events: a plan whose
    /// crashes stay on their operations when commands are removed. Kills of a service that
    /// had not done anything yet stay kills.
    pub fn pinned(&self) -> FaultPlan {
        let mut plan = self.clone();
        let (mut pins, mut rest) = (Vec::new(), Vec::new());
        for e in plan.events.drain(..) {
            match pin_of(&e.fault) {
                Some(fault) => pins.push(PlanEvent { at_ms: 0, fault, after_ack: None, last_ack: None }),
                None => rest.push(e),
            }
        }
        plan.events = pins.into_iter().chain(rest).collect();
        plan
    }

    /// The same plan with the fates every pinned power failure drew named (see
    /// [`PlannedFault::CrashAt`]): the same crash states, no longer drawn, so that a
    /// shrinker can keep them while the rates and the workload change, and remove them
    /// one by one.
    pub fn fates_named(&self) -> FaultPlan {
        let mut plan = self.clone();
        for e in &mut plan.events {
            if let PlannedFault::CrashAt { death: Death::PowerFailure, fates, drawn, .. } = &mut e.fault {
                if fates.is_none() {
                    *fates = Some(std::mem::take(drawn));
                }
            }
        }
        plan
    }

    /// The same plan with only event `i` pinned (see [`FaultPlan::pinned`]), moved to the
    /// front; unchanged if it cannot be pinned.
    pub fn pinned_one(&self, i: usize) -> FaultPlan {
        let mut plan = self.clone();
        if let Some(fault) = plan.events.get(i).and_then(|e| pin_of(&e.fault)) {
            plan.events.remove(i);
            plan.events.insert(0, PlanEvent { at_ms: 0, fault, after_ack: None, last_ack: None });
        }
        plan
    }

    /// The same plan with the I/O error rates off and the errors its run returned (its
    /// `io_errors`, as executed) kept at their operations.
    pub fn errors_pinned(&self) -> FaultPlan {
        let d = self.disk;
        FaultPlan { disk: d.without_error_rates(), ..self.clone() }
    }

    /// The same plan with every event anchored to the acknowledgement the world saw last
    /// before it (see [`PlanEvent::after_ack`]).
    pub fn anchored(&self) -> FaultPlan {
        let mut plan = self.clone();
        for e in &mut plan.events {
            if let Some(a) = e.last_ack.take() {
                e.after_ack = Some(a);
            }
        }
        plan
    }

    /// Checks what a plan read from a file could get wrong: operations are counted from 1.
    pub fn validate(&self) -> Result<(), InvalidPlan> {
        for (i, e) in self.events.iter().enumerate() {
            let nth = match e.fault {
                PlannedFault::CrashPoint { nth, .. } | PlannedFault::CrashAt { nth, .. } => nth,
                PlannedFault::Stop { interrupt: Some(i), .. } => i.nth,
                _ => 1,
            };
            if nth == 0 {
                return Err(InvalidPlan::ZeroOperation { what: "event", index: i });
            }
        }
        if let Some(index) = self.io_errors.iter().position(|e| e.at.nth == 0) {
            return Err(InvalidPlan::ZeroOperation { what: "io-error", index });
        }
        if let Some(keep) = &self.keep_commands
            && let Some(index) = keep.windows(2).position(|w| w[0] >= w[1])
        {
            return Err(InvalidPlan::UnsortedCommands { index: index + 1 });
        }
        match self.clients {
            Some(0) => Err(InvalidPlan::NoClients),
            _ => Ok(()),
        }
    }

    /// Checks that every event names a service the world has (`services`, e.g. the replica
    /// only in worlds with one).
    pub fn validate_services(&self, services: &[Service]) -> Result<(), InvalidPlan> {
        let absent = |s: Service| (!services.contains(&s)).then_some(s);
        let names = |f: &PlannedFault| match *f {
            PlannedFault::Kill { service, .. }
            | PlannedFault::CrashPoint { service, .. }
            | PlannedFault::CrashAt { service, .. }
            | PlannedFault::Stop { service, .. } => absent(service),
            PlannedFault::Partition { a, b, .. } => absent(a).or(absent(b)),
        };
        if let Some((index, service)) =
            self.events.iter().enumerate().find_map(|(i, e)| Some((i, names(&e.fault)?)))
        {
            return Err(InvalidPlan::AbsentService { what: "event", index, service });
        }
        match self.io_errors.iter().enumerate().find_map(|(i, e)| Some((i, absent(e.service)?))) {
            Some((index, service)) => Err(InvalidPlan::AbsentService { what: "io-error", index, service }),
            None => Ok(()),
        }
    }

    /// Its faults: the events, the pinned I/O errors and the named power-failure fates.
    pub fn faults(&self) -> usize {
        let fates = |f: &PlannedFault| match f {
            PlannedFault::CrashAt { fates: Some(fates), .. } => fates.len(),
            _ => 0,
        };
        self.events.len() + self.io_errors.len() + self.events.iter().map(|e| fates(&e.fault)).sum::<usize>()
    }

    /// A plan with the given rates and no events yet.
    pub fn new(disk: FaultConfig, network: NetworkFaults) -> FaultPlan {
        FaultPlan {
            disk,
            network,
            events: Vec::new(),
            keep_commands: None,
            io_errors: Vec::new(),
            snapshot_every: None,
            segment_bytes: None,
            clients: None,
        }
    }

    /// The plan as a readable list, one line per event.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let d = &self.disk;
        out += &format!(
            "disk: lose {:.2}, tear {:.2}, entry ops persist {:.2}, eio fsync {:.3}, enospc {:.3}, eio metadata {:.3}\n",
            d.lose_write, d.tear_write, d.persist_entry_op, d.eio_fsync, d.enospc_write, d.eio_metadata
        );
        out += &format!("network: loss {:.3}, duplicate {:.3}\n", self.network.loss, self.network.duplicate);
        if let Some(keep) = &self.keep_commands {
            out += &format!("commands: {} of the seeded workload: {keep:?}\n", keep.len());
        }
        if let Some(n) = self.snapshot_every {
            out += &format!("snapshots: every {n} entries (the scenario's interval overridden)\n");
        }
        if let Some(n) = self.segment_bytes {
            out += &format!("WAL segments: {n} bytes (the scenario's size overridden)\n");
        }
        if let Some(n) = self.clients {
            out += &format!("clients: {n} (the scenario's count overridden)\n");
        }
        for e in &self.io_errors {
            let a = e.at;
            out += &format!(
                "      at  {} {:?} at its {}. {} of {} since the start\n",
                e.service,
                a.failure,
                a.nth,
                a.kind.name(),
                Phase::name(a.phase)
            );
        }
        for e in &self.events {
            out += &format!("{:>8} ms  {}\n", e.at_ms, describe_fault(&e.fault));
        }
        out
    }
}

fn describe_death(d: Death) -> &'static str {
    match d {
        Death::PowerFailure => "power failure",
        Death::ProcessCrash => "process crash",
    }
}

fn describe_recovery(r: &[RecoveryFault]) -> String {
    if r.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = r
        .iter()
        .map(|f| match f {
            RecoveryFault::CorruptSnapshot { pick, .. } => format!("newest snapshot damaged (file #{pick})"),
            RecoveryFault::Media { target, media, .. } => format!("{media:?} aimed at {target:?}"),
            RecoveryFault::CrashInRecovery { nth, before } => {
                format!("crash in recovery at op {nth} {}", if *before { "before" } else { "after" })
            }
        })
        .collect();
    format!("; on restart: {}", parts.join(", "))
}

fn describe_target(t: &Option<CrashTarget>) -> String {
    match t {
        None => "operation".into(),
        Some(t) => {
            let kind = t.kind.map_or("operation", OpKind::name);
            match t.phase {
                Some(p) => format!("{kind} of {}", Phase::name(p)),
                None => kind.to_string(),
            }
        }
    }
}

/// A pinned power failure's named fates, readable: one clause each.
fn describe_fates(fates: Option<&[PendingFate]>) -> String {
    match fates {
        None => String::new(),
        Some([]) => "; every pending item kept".into(),
        Some(f) => {
            let each: Vec<String> = f.iter().map(PendingFate::describe).collect();
            format!("; pending items not kept: {}", each.join("; "))
        }
    }
}

/// The pinned crash point a kill or a fired crash point becomes (see [`FaultPlan::pinned`]).
fn pin_of(f: &PlannedFault) -> Option<PlannedFault> {
    let (service, hit, before, death, down_ms, recovery) = match f {
        PlannedFault::Kill { service, death, down_ms, recovery, hit } => {
            (*service, (*hit)?, false, *death, *down_ms, recovery)
        }
        PlannedFault::CrashPoint { service, before, death, down_ms, recovery, hit, .. } => {
            (*service, (*hit)?, *before, *death, *down_ms, recovery)
        }
        PlannedFault::CrashAt { .. } | PlannedFault::Partition { .. } | PlannedFault::Stop { .. } => {
            return None;
        }
    };
    (hit.lifetime >= 1).then(|| PlannedFault::CrashAt {
        service,
        kind: hit.kind,
        phase: hit.phase,
        nth: hit.lifetime,
        before,
        death,
        down_ms,
        recovery: recovery.clone(),
        fates: None,
        drawn: Vec::new(),
    })
}

/// One event, readable.
pub fn describe_fault(f: &PlannedFault) -> String {
    match f {
        PlannedFault::Kill { service, death, down_ms, recovery, .. } => format!(
            "kill {service} ({}), down {down_ms} ms{}",
            describe_death(*death),
            describe_recovery(recovery)
        ),
        PlannedFault::CrashPoint { service, nth, before, target, death, down_ms, recovery, .. } => format!(
            "crash {service} {} its {nth}. {} from now ({}), down {down_ms} ms{}",
            if *before { "before" } else { "after" },
            describe_target(target),
            describe_death(*death),
            describe_recovery(recovery)
        ),
        PlannedFault::CrashAt {
            service, kind, phase, nth, before, death, down_ms, recovery, fates, ..
        } => {
            format!(
                "crash {service} {} its {nth}. {} of {} since the start ({}), down {down_ms} ms{}{}",
                if *before { "before" } else { "after" },
                kind.name(),
                Phase::name(*phase),
                describe_death(*death),
                describe_recovery(recovery),
                describe_fates(fates.as_deref())
            )
        }
        PlannedFault::Stop { service, down_ms, recovery, interrupt } => format!(
            "stop {service} gracefully{}, down {down_ms} ms after it exits{}",
            interrupt.map_or(String::new(), |i| format!(
                ", crashing {} its {}. operation from the request ({})",
                if i.before { "before" } else { "after" },
                i.nth,
                describe_death(i.death)
            )),
            describe_recovery(recovery)
        ),
        PlannedFault::Partition { a, b, for_ms } => format!("partition {a} from {b} for {for_ms} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> ChaosRates {
        ChaosRates {
            fault_every_ms: 300,
            max_down_ms: 200,
            partitions: true,
            node_faults: true,
            crash_window: 200,
            process_crash: 0.5,
            crash_on: None,
            crash_in_recovery: 0.5,
            corrupt_snapshot: 0.3,
            media: 0.3,
            replica: false,
            market_data: false,
            graceful_stop: 0.0,
        }
    }

    #[test]
    fn a_seed_expands_into_the_same_plan_and_it_round_trips() {
        let a: Vec<PlanEvent> = Planner::new(7, rates()).take(50).collect();
        let b: Vec<PlanEvent> = Planner::new(7, rates()).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, Planner::new(8, rates()).take(50).collect::<Vec<_>>());
        assert!(a.windows(2).all(|w| w[0].at_ms < w[1].at_ms), "events in time order");
        let plan =
            FaultPlan { events: a, ..FaultPlan::new(FaultConfig::default(), NetworkFaults::default()) };
        let json = serde_json::to_string(&plan).expect("serialises");
        let back: FaultPlan = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, plan);
        assert_eq!(plan.describe().lines().count(), 52);
    }

    #[test]
    fn the_replica_is_a_victim_only_in_worlds_with_one_and_never_of_a_crash_point() {
        let with = ChaosRates { replica: true, ..rates() };
        let events: Vec<PlanEvent> = Planner::new(3, with).take(400).collect();
        let (mut kills, mut crash_points) = (0, 0);
        for e in &events {
            match e.fault {
                PlannedFault::Kill { service: Service::Replica, .. } => kills += 1,
                PlannedFault::CrashPoint { service: Service::Replica, .. } => crash_points += 1,
                _ => {}
            }
        }
        assert!(kills > 10, "the replica is killed too ({kills} of 400 events)");
        assert_eq!(crash_points, 0, "the replica has no disk for a crash point to fire on");
        let plan = FaultPlan { events, ..FaultPlan::new(FaultConfig::default(), NetworkFaults::default()) };
        assert_eq!(plan.validate_services(&Service::WITH_REPLICA), Ok(()));
        let refused = plan.validate_services(&Service::WITH_MARKET_DATA);
        assert!(matches!(
            refused,
            Err(InvalidPlan::AbsentService { what: "event", service: Service::Replica, .. })
        ));
        let without: Vec<PlanEvent> = Planner::new(3, rates()).take(400).collect();
        let plan = FaultPlan { events: without, ..plan };
        assert_eq!(plan.validate_services(&Service::ALL), Ok(()));
    }

    #[test]
    fn validation_refuses_operation_zero_and_no_clients() {
        use crate::fs::IoFailure;
        let ok = FaultPlan {
            clients: Some(1),
            ..FaultPlan::new(FaultConfig::default(), NetworkFaults::default())
        };
        assert_eq!(ok.validate(), Ok(()));
        let none = FaultPlan { clients: Some(0), ..ok.clone() };
        assert_eq!(none.validate(), Err(InvalidPlan::NoClients));
        let unsorted = FaultPlan { keep_commands: Some(vec![1, 4, 4, 9]), ..ok.clone() };
        assert_eq!(unsorted.validate(), Err(InvalidPlan::UnsortedCommands { index: 2 }));
        let mut zero = ok.clone();
        let at = IoErrorAt {
            kind: OpKind::Fsync,
            phase: Phase::GroupCommit,
            nth: 0,
            failure: IoFailure::FsyncEio,
        };
        zero.io_errors.push(PlannedIoError { service: Service::Ubscore, at });
        assert_eq!(zero.validate(), Err(InvalidPlan::ZeroOperation { what: "io-error", index: 0 }));
    }

    #[test]
    fn a_fired_crash_point_is_reaimed_at_the_operation_it_hit() {
        let fired = PlannedFault::CrashPoint {
            service: Service::Matching,
            nth: 57,
            before: true,
            target: None,
            death: Death::PowerFailure,
            down_ms: 10,
            recovery: Vec::new(),
            hit: Some(CrashHit { kind: OpKind::Rename, phase: Phase::SnapshotRename, nth: 2, lifetime: 9 }),
        };
        let kill = PlannedFault::Kill {
            service: Service::Ubscore,
            death: Death::ProcessCrash,
            down_ms: 5,
            recovery: Vec::new(),
            hit: None,
        };
        let plan = FaultPlan {
            events: vec![
                PlanEvent { at_ms: 1, fault: fired, after_ack: None, last_ack: None },
                PlanEvent { at_ms: 2, fault: kill.clone(), after_ack: None, last_ack: None },
            ],
            ..FaultPlan::new(FaultConfig::default(), NetworkFaults::default())
        };
        let r = plan.reaimed();
        match &r.events[0].fault {
            PlannedFault::CrashPoint { nth, target, hit, before, .. } => {
                assert_eq!((*nth, *before, *hit), (2, true, None));
                assert_eq!(
                    *target,
                    Some(CrashTarget { kind: Some(OpKind::Rename), phase: Some(Phase::SnapshotRename) })
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.events[1].fault, kill, "kills stay as they are");
        assert_eq!(r.reaimed(), r, "nothing left to re-aim");
        let mut acked = r.clone();
        acked.events[1].last_ack = Some(AckAnchor { command: 7, delay_ms: 30 });
        let a = acked.anchored();
        assert_eq!(a.events[1].after_ack, Some(AckAnchor { command: 7, delay_ms: 30 }));
        assert_eq!((a.events[1].last_ack, a.events[0].after_ack), (None, None));
    }

    #[test]
    fn kills_and_fired_crash_points_are_pinned_to_their_operations_at_the_start() {
        let hit =
            |nth, lifetime| Some(CrashHit { kind: OpKind::Fsync, phase: Phase::GroupCommit, nth, lifetime });
        let recovery = vec![RecoveryFault::CrashInRecovery { nth: 3, before: true }];
        let event = |at_ms, fault| PlanEvent { at_ms, fault, after_ack: None, last_ack: None };
        let kill = |hit| PlannedFault::Kill {
            service: Service::Settlement,
            death: Death::ProcessCrash,
            down_ms: 7,
            recovery: recovery.clone(),
            hit,
        };
        let partition = PlannedFault::Partition { a: Service::Ubscore, b: Service::Matching, for_ms: 9 };
        let fired = PlannedFault::CrashPoint {
            service: Service::Ubscore,
            nth: 40,
            before: true,
            target: None,
            death: Death::PowerFailure,
            down_ms: 3,
            recovery: Vec::new(),
            hit: hit(2, 31),
        };
        let plan = FaultPlan {
            events: vec![
                event(100, partition.clone()),
                event(200, kill(hit(12, 12))),
                event(300, kill(None)),
                event(400, fired),
            ],
            ..FaultPlan::new(FaultConfig::default(), NetworkFaults::default())
        };
        let p = plan.pinned();
        let faults: Vec<(u64, PlannedFault)> = p.events.iter().map(|e| (e.at_ms, e.fault.clone())).collect();
        let at = |service, nth, before, death, down_ms, recovery| PlannedFault::CrashAt {
            service,
            kind: OpKind::Fsync,
            phase: Phase::GroupCommit,
            nth,
            before,
            death,
            down_ms,
            recovery,
            fates: None,
            drawn: Vec::new(),
        };
        assert_eq!(
            faults,
            vec![
                (0, at(Service::Settlement, 12, false, Death::ProcessCrash, 7, recovery.clone())),
                (0, at(Service::Ubscore, 31, true, Death::PowerFailure, 3, Vec::new())),
                (100, partition),
                (300, kill(None)),
            ],
            "pinned crashes first, in the order they happened; the rest keeps its times"
        );
        assert_eq!(p.pinned(), p, "nothing left to pin");
        assert!(
            p.describe().contains("crash settlement after its 12. fsync of group-commit since the start")
        );
    }

    #[test]
    fn no_rate_no_events() {
        let quiet = ChaosRates { fault_every_ms: 0, ..rates() };
        assert_eq!(Planner::new(1, quiet).next(), None);
    }
}
