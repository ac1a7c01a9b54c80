//! The deterministic world, in the style of turmoil: a [`WorldBuilder`] makes a [`World`]
//! (the three services as madsim nodes on their own simulated disks, clients that retry
//! until acknowledged, an observer that tells convergence), and verbs drive it: `crash`,
//! `restart`, `arm_crash_point`, `partition`, `heal`, `step`. The chaos actor executes a
//! [`FaultPlan`] with those verbs during the safety phase; then a liveness phase without
//! faults; finally the services are recovered from their disks for the checker. One seed
//! (or one seed and an edited plan) determines everything.
//!
//! One file per actor: `services`, `clients`, `observer`, `chaos`; `finish` gathers the
//! [`WorldResult`].

mod chaos;
mod clients;
mod finish;
mod observer;
mod queries;
mod result;
mod services;
mod thin;

pub use result::{
    Answered, FilesSeen, FinalState, MarketDataSeen, Problem, RecoveryRecord, ReplicaSeen, Served,
    WorldResult, state_digest,
};
pub use services::names_damage;
pub use thin::{TableDigest, thin};

use crate::fs::{CrashPoint, CrashTarget, Death, FaultConfig, PendingFate, SimFs};
use crate::plan::{ChaosRates, FaultPlan, NetworkFaults, OpCounts, RecoveryFault, Service};
use crate::trace::{Tags, Trace};
use engine::durable::DurableConfig;
use engine::service::{Directory, Recovered, RecoveryHook, ReplicaHook, ReplicaReport, Status, Tracer};
use engine::{Ack, Command, Markets};
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The fault rates a scenario sets: the seed's plan is drawn from them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chaos {
    /// Mean simulated milliseconds between two faults (0: no node faults).
    pub fault_every_ms: u64,
    /// How long a killed node stays down, at most (ms).
    pub max_down_ms: u64,
    /// Whether to partition links between services too.
    pub partitions: bool,
    /// Packet loss rate during the safety phase.
    pub loss: f64,
    /// Probability that a message is delivered twice during the safety phase.
    pub duplicate: f64,
    /// Crash points are armed within this many filesystem operations of now.
    pub crash_window: u64,
    /// Probability that a restarting node crashes again during its recovery.
    pub crash_in_recovery: f64,
    /// Probability that a restarting node finds its newest snapshot damaged.
    pub corrupt_snapshot: f64,
    /// Whether kills and crash points happen at all (network chaos alone otherwise).
    pub node_faults: bool,
    /// Probability that a kill or a crash point kills only the process (the page cache
    /// survives) instead of cutting the power.
    pub process_crash: f64,
    /// When set, half of the crash points are aimed at the first few operations this target
    /// matches (e.g. retention's removes, a snapshot's rename), which a window of all
    /// operations rarely hits.
    pub crash_on: Option<CrashTarget>,
    /// Probability that a restarting node finds one media fault on its disk (bit rot, a
    /// latent sector error, a lost or misdirected write), aimed at the bytes that matter.
    /// Under media faults a service may refuse to start naming the damage ("corruption
    /// detected"), which ends the run; it may never lose or change acknowledged data.
    pub media: f64,
    /// Probability that a kill of a durable service is a graceful stop instead (SIGTERM: a
    /// final snapshot, then exit and restart; a third of them crash half-way).
    pub graceful_stop: f64,
}

impl Chaos {
    /// No faults at all.
    pub fn none() -> Chaos {
        Chaos {
            fault_every_ms: 0,
            max_down_ms: 0,
            partitions: false,
            loss: 0.0,
            duplicate: 0.0,
            crash_window: 200,
            crash_in_recovery: 0.0,
            corrupt_snapshot: 0.0,
            node_faults: false,
            process_crash: 0.0,
            crash_on: None,
            media: 0.0,
            graceful_stop: 0.0,
        }
    }

    /// The rates the planner draws events from.
    pub fn rates(&self) -> ChaosRates {
        ChaosRates {
            fault_every_ms: self.fault_every_ms,
            max_down_ms: self.max_down_ms,
            partitions: self.partitions,
            node_faults: self.node_faults,
            crash_window: self.crash_window,
            process_crash: self.process_crash,
            crash_on: self.crash_on,
            crash_in_recovery: self.crash_in_recovery,
            corrupt_snapshot: self.corrupt_snapshot,
            media: self.media,
            replica: false,
            market_data: false,
            graceful_stop: self.graceful_stop,
        }
    }
}

/// One simulation run's parameters.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The seed.
    pub seed: u64,
    /// The markets.
    pub markets: Markets,
    /// The commands the clients send (split round-robin over the clients).
    pub commands: Vec<Command>,
    /// Number of client nodes.
    pub clients: usize,
    /// Node and network fault rates (the seed's plan is drawn from them).
    pub chaos: Chaos,
    /// Disk fault rates.
    pub faults: FaultConfig,
    /// Storage settings of every service.
    pub storage: DurableConfig,
    /// Keep every trace line in the result (to compare two runs line by line).
    pub keep_trace: bool,
    /// Keep every recovery's de-dup table and ledger row by row (the checker then names the
    /// first differing row) instead of as digests (memory linear in the run; see `thin`).
    pub full_recoveries: bool,
    /// Simulated time after which the safety phase is cut short and liveness must follow.
    pub max_safety: Duration,
    /// A bug planted in the engine for this run (needs the `planted-bugs` feature).
    pub planted: Option<engine::bugs::Bug>,
    /// An explicit plan to execute instead of the seed's (its rates replace `faults`,
    /// `chaos.loss` and `chaos.duplicate`; its `keep_commands` selects from `commands`).
    pub plan: Option<FaultPlan>,
    /// Set from outside the simulation (a wall-clock watchdog) to stop the run at its next
    /// step with a timeout. Only a run that is already a failure ever reads it as set.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Whether a hot-standby matching replica follows UBSCore's log (it is then killed
    /// like the others, and judged by its hash chain and its final state).
    pub replica: bool,
    /// A failover (needs the replica): once this share (0 to 1) of the commands sent is
    /// acknowledged, the primary matching engine dies for good and the replica is promoted.
    /// A share, not a count, so that a run with fewer commands (a shrunk plan) still fails
    /// over at the same point of its workload.
    pub failover_at: Option<f64>,
    /// Market data, with its publication settings (`None`: the world has none). It needs
    /// markets that publish order events.
    pub market_data: Option<engine::market_data::MdConfig>,
}

/// Where a failover stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failover {
    /// None planned, or done.
    Idle,
    /// The primary dies once this many commands are acknowledged.
    Pending(usize),
    /// The primary is dead; the replica is promoted once a status round that started after
    /// round `after_round` shows it has every event UBSCore applied.
    PrimaryDead { after_round: usize },
    /// Promotion asked for; waiting for the replica to hand over.
    Promoting,
}

/// Why a node is restarted when it stopped itself (after an I/O error).
const STOPPED_ITSELF: &str = "stopped itself";

/// The directory of a service's data on its disk.
fn data_dir(s: Service) -> PathBuf {
    PathBuf::from("/data").join(s.name())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// State the actors share with the world.
pub(crate) struct Shared {
    pub(crate) trace: Arc<Trace>,
    pub(crate) tracer: Tracer,
    pub(crate) errors: Mutex<Vec<Problem>>,
    pub(crate) recoveries: Mutex<Vec<RecoveryRecord>>,
    /// The newest valid snapshot of each service as it starts opening its disk.
    pub(crate) newest_valid: Mutex<BTreeMap<String, Option<u64>>>,
    /// Services that stopped themselves (after an I/O error) and wait for their supervisor.
    pub(crate) stopped: Mutex<BTreeSet<Service>>,
    /// Each durable service's graceful-stop request (its SIGTERM), set by the world.
    pub(crate) shutdown: BTreeMap<Service, Arc<AtomicBool>>,
    /// Services that stopped gracefully (and exited) and wait for their supervisor.
    pub(crate) exited: Mutex<BTreeSet<Service>>,
    /// Graceful stops that ended in an exit (not in a crash or an error).
    pub(crate) exits: AtomicU64,
    /// Services that refused to go on naming damage inflicted on their disk.
    pub(crate) detected: Mutex<Vec<(String, String)>>,
    /// Clients done.
    pub(crate) done: AtomicUsize,
    /// Acknowledged commands: (index in the sent list, command, ack).
    pub(crate) acked: Mutex<Vec<(usize, Command, Ack)>>,
    /// When each acknowledgement came (index in the sent list, simulated ms), in order.
    pub(crate) ack_times: Mutex<Vec<(usize, u64)>>,
    /// The start of the run.
    pub(crate) start: madsim::time::Instant,
    /// The observer's last verdict, its completed rounds and the statuses it saw.
    pub(crate) converged: AtomicBool,
    pub(crate) rounds: AtomicUsize,
    pub(crate) last_statuses: Mutex<String>,
    /// What the replica reported: its links, and its last state.
    pub(crate) replica: Mutex<ReplicaSeen>,
    /// Where the services are now (the matching engine moves at a failover).
    pub(crate) directory: Directory,
    /// The event id the replica must hold to hand over (every event UBSCore applied), once
    /// a promotion is asked for; `u64::MAX` before. Every life of the replica reads it.
    pub(crate) promote_at: Arc<AtomicU64>,
    /// The replica has handed its state over and runs as the matching engine.
    pub(crate) promoted: AtomicBool,
    /// The statuses of the observer's last complete round (`None`: no answer), in the
    /// order ubscore, matching, settlement (, replica)(, market data), and the round they
    /// belong to.
    pub(crate) statuses: Mutex<(usize, Vec<Option<Status>>)>,
    /// Every tick market data served to the observer, in the order served.
    pub(crate) served_ticks: Mutex<Vec<engine::market_data::Tick>>,
    /// Every other query answered to the observer.
    pub(crate) served: Mutex<Vec<Answered>>,
    /// The observer's strict round after convergence: asked by the world, done by the
    /// observer (see `queries::final_round`).
    pub(crate) final_asked: AtomicBool,
    pub(crate) final_done: AtomicBool,
    /// The final round read market data's ticks until none was left: the served ticks
    /// are then every tick, and the checker holds them to all of the model's.
    pub(crate) ticks_complete: AtomicBool,
}

impl Shared {
    /// The hook every recovery reports to; unless `full`, the tables that grow with the run
    /// are kept as digests (see `thin`).
    fn recovery_hook(self: &Arc<Self>, start: madsim::time::Instant, full: bool) -> RecoveryHook {
        let shared = self.clone();
        Arc::new(move |node: &str, mut state: Recovered| {
            let newest_valid_snapshot = lock(&shared.newest_valid).get(node).copied().flatten();
            let thinned = if full { None } else { thin::thin(&mut state) };
            lock(&shared.recoveries).push(RecoveryRecord {
                node: node.to_string(),
                at_ms: start.elapsed().as_millis() as u64,
                state,
                newest_valid_snapshot,
                thinned,
            });
        })
    }
}

impl Shared {
    /// The hook the replica reports to.
    pub(crate) fn replica_hook(self: &Arc<Self>) -> ReplicaHook {
        let shared = self.clone();
        Arc::new(move |report: ReplicaReport| {
            let mut seen = lock(&shared.replica);
            match report {
                ReplicaReport::Links(links) => seen.links.extend(links),
                ReplicaReport::State { state, chain } => seen.last_state = Some((state, chain)),
            }
        })
    }
}

/// Builds a [`World`].
pub struct WorldBuilder {
    cfg: WorldConfig,
}

impl WorldBuilder {
    /// A world of `cfg`.
    pub fn new(cfg: WorldConfig) -> WorldBuilder {
        WorldBuilder { cfg }
    }

    /// Executes `plan` instead of the seed's.
    pub fn plan(mut self, plan: FaultPlan) -> WorldBuilder {
        self.cfg.plan = Some(plan);
        self
    }

    /// Creates the nodes (inside a running simulation).
    pub fn build(mut self) -> World {
        if let Some(plan) = &self.cfg.plan {
            self.cfg.faults = plan.disk;
            self.cfg.chaos.loss = plan.network.loss;
            self.cfg.chaos.duplicate = plan.network.duplicate;
            if let Some(n) = plan.snapshot_every {
                self.cfg.storage.snapshots.every_entries = n;
            }
            if let Some(n) = plan.segment_bytes {
                self.cfg.storage.wal.segment_bytes = n;
            }
            if let Some(n) = plan.clients {
                self.cfg.clients = n;
            }
            if let Some(keep) = &plan.keep_commands {
                self.cfg.commands = keep.iter().filter_map(|i| self.cfg.commands.get(*i).copied()).collect();
            }
        }
        World::new(self.cfg)
    }
}

/// A running world and its verbs.
pub struct World {
    cfg: WorldConfig,
    /// Why the safety phase ended before the clients were done, if its budget ran out.
    budget_spent: Option<String>,
    handle: Handle,
    simfs: Arc<SimFs>,
    net: Arc<NetSim>,
    nodes: BTreeMap<Service, NodeId>,
    shared: Arc<Shared>,
    start: madsim::time::Instant,
    kills: u64,
    partitions: u64,
    /// Graceful stops asked for.
    stops: u64,
    /// Snapshots damaged on purpose (a fallback must stay intact).
    damaged_snapshots: BTreeSet<PathBuf>,
    clients: usize,
    /// Whether media faults can strike (only then may a refusal to start be detection).
    media: bool,
    /// Services dead for good (the primary after a failover): never restarted.
    retired: BTreeSet<Service>,
    failover: Failover,
}

impl World {
    fn new(cfg: WorldConfig) -> World {
        engine::bugs::plant(cfg.planted);
        let handle = Handle::current();
        let simfs = SimFs::current();
        simfs.set_default_config(cfg.faults);
        let net = NetSim::current();
        net.update_config(|c| c.packet_loss_rate = cfg.chaos.loss);
        engine::service::rpc::set_duplicate_rate(cfg.chaos.duplicate);
        engine::service::rpc::take_duplicated();
        let start = madsim::time::Instant::now();
        let trace = Arc::new(if cfg.keep_trace { Trace::keeping() } else { Trace::new() });
        let tracer: Tracer = {
            let trace = trace.clone();
            Arc::new(move |node: &str, event: String| trace.record(start.elapsed(), node, &event))
        };
        let shared = Arc::new(Shared {
            trace,
            tracer,
            errors: Mutex::new(Vec::new()),
            recoveries: Mutex::new(Vec::new()),
            newest_valid: Mutex::new(BTreeMap::new()),
            stopped: Mutex::new(BTreeSet::new()),
            shutdown: Service::of_world(cfg.replica, cfg.market_data.is_some())
                .iter()
                .filter(|s| **s != Service::Replica)
                .map(|s| (*s, Arc::new(AtomicBool::new(false))))
                .collect(),
            exited: Mutex::new(BTreeSet::new()),
            exits: AtomicU64::new(0),
            detected: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            acked: Mutex::new(Vec::new()),
            ack_times: Mutex::new(Vec::new()),
            start,
            converged: AtomicBool::new(false),
            rounds: AtomicUsize::new(0),
            last_statuses: Mutex::new(String::new()),
            replica: Mutex::new(ReplicaSeen::default()),
            directory: Arc::new(Mutex::new(services::addrs())),
            promote_at: Arc::new(AtomicU64::new(u64::MAX)),
            promoted: AtomicBool::new(false),
            statuses: Mutex::new((0, Vec::new())),
            served_ticks: Mutex::new(Vec::new()),
            served: Mutex::new(Vec::new()),
            final_asked: AtomicBool::new(false),
            final_done: AtomicBool::new(false),
            ticks_complete: AtomicBool::new(false),
        });
        let hook = shared.recovery_hook(start, cfg.full_recoveries);
        let media = cfg.chaos.media > 0.0 || cfg.plan.as_ref().is_some_and(plan_has_media);
        assert!(cfg.replica || cfg.failover_at.is_none(), "a failover needs the replica");
        if let Some(md) = cfg.market_data {
            assert!(cfg.markets.order_events(), "market data needs markets that publish order events");
            assert_eq!(md.validate(), Ok(()), "market data settings");
        }
        let acks = |share: f64| {
            assert!((0.0..=1.0).contains(&share), "failover share {share} is not within 0 to 1");
            ((share * cfg.commands.len() as f64).ceil() as usize).max(1)
        };
        let cfg_failover = cfg.failover_at.map_or(Failover::Idle, |s| Failover::Pending(acks(s)));
        let nodes = services::spawn(&handle, &shared, &cfg, hook, media);
        let keep = cfg.plan.as_ref().and_then(|p| p.keep_commands.clone());
        let clients = clients::spawn(&handle, &shared, &cfg.commands, keep.as_deref(), cfg.clients.max(1));
        let watch = observer::Watch {
            replica: cfg.replica,
            market_data: cfg.market_data.is_some(),
            audit: cfg.markets.order_events(),
            symbols: cfg.markets.symbols().map(|s| s.id).collect(),
        };
        observer::spawn(&handle, &shared, watch);
        World {
            cfg,
            budget_spent: None,
            handle,
            simfs,
            net,
            nodes,
            shared,
            start,
            kills: 0,
            partitions: 0,
            stops: 0,
            damaged_snapshots: BTreeSet::new(),
            clients,
            media,
            retired: BTreeSet::new(),
            failover: cfg_failover,
        }
    }

    /// The world's services: the three durable ones, and the replica and market data if
    /// it has them.
    pub fn services(&self) -> Vec<Service> {
        Service::of_world(self.cfg.replica, self.cfg.market_data.is_some()).to_vec()
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Lets simulated time pass.
    pub async fn step(&self, d: Duration) {
        madsim::time::sleep(d).await;
    }

    /// Writes a line of `node` into the trace.
    pub fn trace(&self, node: &str, line: String) {
        (self.shared.tracer)(node, line);
    }

    /// Writes a line of `node` about an injected `fault` into the trace.
    pub fn trace_fault(&self, node: &str, fault: &str, line: String) {
        self.shared.trace.record_tagged(self.start.elapsed(), node, &line, Tags::fault(fault));
    }

    /// Kills `s`: its disk resolves its pending state as `death` says.
    pub fn crash(&mut self, s: Service, death: Death) {
        self.set_next_death(s, death);
        self.handle.kill(self.nodes[&s]);
        self.kills += 1;
        let fault = if death == Death::ProcessCrash { "process-crash" } else { "power-failure" };
        self.trace_fault(s.name(), fault, format!("kill{}", death_note(death)));
    }

    /// Asks `s` to stop gracefully (its SIGTERM): it stops serving, commits, takes a snapshot
    /// and exits (see `services::exited`); its supervisor restarts it. False (and nothing
    /// done) for the replica, whose only graceful stop is its promotion.
    pub fn stop(&mut self, s: Service) -> bool {
        let Some(flag) = self.shared.shutdown.get(&s) else { return false };
        flag.store(true, Ordering::SeqCst);
        self.stops += 1;
        self.trace_fault(s.name(), "graceful-stop", "stop requested (graceful)".into());
        true
    }

    /// Records a finding of the world about `s` (a service error no injected fault explains).
    pub fn problem(&self, s: Service, error: String) {
        self.trace(s.name(), format!("problem: {error}"));
        lock(&self.shared.errors).push(Problem::ServiceError { node: s.name().to_string(), error });
    }

    /// Services that stopped gracefully since the last call.
    pub fn take_exited(&self) -> Vec<Service> {
        std::mem::take(&mut *lock(&self.shared.exited)).into_iter().collect()
    }

    /// Restarts `s` (killing it first if it still runs, as a process crash when it stopped
    /// itself), and inflicts the first faults of `recovery` on it as it comes back: every
    /// fault up to and including the first crash in recovery. Returns the rest, for the
    /// restart after that crash.
    pub fn restart(&mut self, s: Service, why: &str, recovery: &[RecoveryFault]) -> Vec<RecoveryFault> {
        if why == STOPPED_ITSELF {
            self.set_next_death(s, Death::ProcessCrash);
        }
        self.handle.kill(self.nodes[&s]);
        // A new life has not been asked to stop.
        if let Some(flag) = self.shared.shutdown.get(&s) {
            flag.store(false, Ordering::SeqCst);
        }
        let rest = self.meet_recovery_faults(s, recovery);
        // Revived here, not only when the node's init runs: until then the supervisor must
        // not take the restarting node for one a crash point killed again.
        lock(&self.simfs.disk(self.nodes[&s])).revive();
        self.handle.restart(self.nodes[&s]);
        self.trace_fault(s.name(), "restart", format!("restart ({why})"));
        rest
    }

    /// Arms a crash point on `s`'s disk: it dies (as `death` says) at the `crash.op`-th
    /// operation from now that `target` matches.
    pub fn arm_crash_point(
        &mut self,
        s: Service,
        crash: CrashPoint,
        target: Option<CrashTarget>,
        death: Death,
    ) {
        let disk = self.simfs.disk(self.nodes[&s]);
        let mut disk = lock(&disk);
        match target {
            Some(t) => disk.set_crash_point_on(t, crash),
            None => disk.set_crash_point(Some(crash)),
        }
        disk.set_next_death(death);
    }

    /// Cuts the link from `a` to `b`, one way: what `a` sends `b` is lost, while `b`'s
    /// messages still reach `a`. Requests `a` sends are lost before they act; replies to
    /// `b`'s requests are lost after theirs (the chaos draws both sides, so both happen).
    pub fn partition(&mut self, a: Service, b: Service) {
        self.net.clog_link(self.nodes[&a], self.nodes[&b]);
        self.partitions += 1;
        self.trace_fault(a.name(), "partition", format!("partition from {b}"));
    }

    /// Restores the link from `a` to `b`.
    pub fn heal(&mut self, a: Service, b: Service) {
        self.net.unclog_link(self.nodes[&a], self.nodes[&b]);
        self.trace_fault(a.name(), "heal", format!("heal from {b}"));
    }

    /// Whether `s` is dead for good (the primary after a failover): never restarted.
    pub fn is_retired(&self, s: Service) -> bool {
        self.retired.contains(&s)
    }

    /// Takes the failover one step further, if one is planned: kills the primary for good
    /// when its moment comes; once a status shows the replica has every event UBSCore
    /// applied (UBSCore can apply no more: their only source is dead), asks for the
    /// promotion by publishing that event id and points UBSCore, Settlement and the
    /// observer at the replica's address (it serves them once it has handed over).
    pub fn advance_failover(&mut self) {
        let rounds = self.shared.rounds.load(Ordering::SeqCst);
        match self.failover {
            Failover::Pending(acks) if lock(&self.shared.ack_times).len() >= acks => {
                if !self.is_dead(Service::Matching) {
                    self.crash(Service::Matching, Death::PowerFailure);
                }
                self.retired.insert(Service::Matching);
                // It may have stopped itself just before: it stays down all the same.
                lock(&self.shared.stopped).remove(&Service::Matching);
                self.trace_fault("matching", "failover", "failover: the primary is gone for good".into());
                self.failover = Failover::PrimaryDead { after_round: rounds + 1 };
            }
            Failover::PrimaryDead { after_round } => {
                let (round, statuses) = lock(&self.shared.statuses).clone();
                let field = |i: usize| statuses.get(i).copied().flatten().map(|s| s.event_id);
                let (Some(applied), Some(replica)) = (field(0), field(3)) else { return };
                if round > after_round && replica >= applied {
                    lock(&self.shared.directory).matching = services::replica_addr();
                    self.shared.promote_at.store(applied, Ordering::SeqCst);
                    let line =
                        format!("failover: promoted (it has event {replica}, ubscore applied {applied})");
                    self.trace_fault("replica", "promotion", line);
                    self.failover = Failover::Promoting;
                }
            }
            Failover::Promoting if self.shared.promoted.load(Ordering::SeqCst) => {
                self.trace("replica", "failover: serving as the matching engine".into());
                self.failover = Failover::Idle;
            }
            _ => {}
        }
    }

    /// Whether the replica was asked to take over (the matching engine's data is then on
    /// the replica's disk).
    pub fn failed_over(&self) -> bool {
        self.shared.promote_at.load(Ordering::SeqCst) != u64::MAX
    }

    /// Whether the replica has handed over and runs as the matching engine.
    pub fn promoted(&self) -> bool {
        self.shared.promoted.load(Ordering::SeqCst)
    }

    /// Whether no failover is planned or under way (one that is done counts as none).
    pub fn failover_settled(&self) -> bool {
        self.failover == Failover::Idle
    }

    /// Where a failover under way stands, described (`None`: none is).
    pub fn failover_state(&self) -> Option<&'static str> {
        match self.failover {
            Failover::Idle => None,
            Failover::Pending(_) => Some("waiting for its moment"),
            Failover::PrimaryDead { .. } => {
                Some("waiting for the replica to hold every event UBSCore applied")
            }
            Failover::Promoting => Some("waiting for the replica to hand over"),
        }
    }

    /// Whether `s` is dead (killed, or a crash point fired) and not restarted.
    pub fn is_dead(&self, s: Service) -> bool {
        lock(&self.simfs.disk(self.nodes[&s])).is_dead()
    }

    /// Services that stopped themselves since the last call (never a retired one).
    pub fn take_self_stopped(&self) -> Vec<Service> {
        let stopped = std::mem::take(&mut *lock(&self.shared.stopped));
        stopped.into_iter().filter(|s| !self.is_retired(*s)).collect()
    }

    /// Whether every client has every command acknowledged.
    pub fn clients_done(&self) -> bool {
        self.shared.done.load(Ordering::SeqCst) >= self.clients
    }

    /// Whether a service refused to go on naming damage (the run ends).
    pub fn halted(&self) -> bool {
        !lock(&self.shared.detected).is_empty()
    }

    /// Whether the run was cancelled from outside (its wall-clock limit passed).
    pub fn cancelled(&self) -> bool {
        self.cfg.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Whether the run went over a budget (recorded as a [`Problem::Timeout`]).
    pub fn timed_out(&self) -> bool {
        lock(&self.shared.errors).iter().any(|p| matches!(p, Problem::Timeout(_)))
    }

    /// Records that the run went over a budget, once.
    pub fn time_out(&self, why: String) {
        if !self.timed_out() {
            self.trace("world", format!("timeout: {why}"));
            lock(&self.shared.errors).push(Problem::Timeout(why));
        }
    }

    /// The operation the latest crash point of `s` hit (called as its death is noticed).
    pub fn last_crash_hit(&self, s: Service) -> Option<crate::plan::CrashHit> {
        let disk = self.simfs.disk(self.nodes[&s]);
        let disk = lock(&disk);
        disk.faults().iter().rev().find_map(|f| match f {
            crate::fs::Fault::CrashPoint { kind, phase, nth_of_kind, .. } => {
                let lifetime = disk.last_op().map_or(0, |l| l.nth);
                Some(crate::plan::CrashHit { kind: *kind, phase: *phase, nth: *nth_of_kind, lifetime })
            }
            _ => None,
        })
    }

    /// The last operation `s` performed, as a hit counted since the run began (called as a
    /// kill lands: the kill could be pinned after it).
    pub fn last_op_hit(&self, s: Service) -> Option<crate::plan::CrashHit> {
        let last = lock(&self.simfs.disk(self.nodes[&s])).last_op()?;
        Some(crate::plan::CrashHit { kind: last.kind, phase: last.phase, nth: last.nth, lifetime: last.nth })
    }

    /// Arms a crash point on `s`'s disk pinned to one operation of its life.
    /// `fates`: the pending items' fates if it is a power failure (`None`: drawn).
    pub fn pin_crash(&mut self, s: Service, pin: crate::fs::PinnedCrash, fates: Option<Vec<PendingFate>>) {
        let disk = self.simfs.disk(self.nodes[&s]);
        let mut disk = lock(&disk);
        if let Some(fates) = fates {
            disk.pin_fates(pin.id, fates);
        }
        disk.pin_crash(pin);
    }

    /// The pending items `s`'s disk did not keep at its last power failure.
    pub fn drawn_fates(&self, s: Service) -> Vec<PendingFate> {
        lock(&self.simfs.disk(self.nodes[&s])).drawn_fates().to_vec()
    }

    /// Makes one operation of `s`'s life fail with an I/O error.
    pub fn pin_error(&mut self, s: Service, at: crate::fs::IoErrorAt) {
        lock(&self.simfs.disk(self.nodes[&s])).pin_error(at);
    }

    /// Every I/O error the services' disks returned so far.
    pub fn io_errors(&self) -> Vec<crate::plan::PlannedIoError> {
        let mut out = Vec::new();
        for s in self.services() {
            let disk = self.simfs.disk(self.nodes[&s]);
            let errors = lock(&disk).io_errors().to_vec();
            out.extend(errors.into_iter().map(|at| crate::plan::PlannedIoError { service: s, at }));
        }
        out
    }

    /// Each service's operations of each (kind, phase) so far.
    pub fn op_counts(&self) -> OpCounts {
        let count = |s: &Service| lock(&self.simfs.disk(self.nodes[s])).lifetime_ops().clone();
        self.services().iter().map(|s| (*s, count(s))).collect()
    }

    /// The id of the pinned crash point that killed `s` last, once.
    pub fn take_fired_pin(&self, s: Service) -> Option<usize> {
        lock(&self.simfs.disk(self.nodes[&s])).take_fired_pin()
    }

    /// The seeded-workload index of the command sent as number `i` of this run.
    fn workload_index(&self, i: usize) -> usize {
        self.cfg
            .plan
            .as_ref()
            .and_then(|p| p.keep_commands.as_ref())
            .and_then(|k| k.get(i).copied())
            .unwrap_or(i)
    }

    /// The last acknowledgement so far, as an anchor `now_ms` later.
    pub fn last_ack(&self, now_ms: u64) -> Option<crate::plan::AckAnchor> {
        let (i, at) = *lock(&self.shared.ack_times).last()?;
        Some(crate::plan::AckAnchor { command: self.workload_index(i), delay_ms: now_ms.saturating_sub(at) })
    }

    /// When the command with seeded-workload index `command` was acknowledged, if it was
    /// sent in this run: `Some(None)` while it is not yet acknowledged.
    pub fn ack_time(&self, command: usize) -> Option<Option<u64>> {
        let sent = (0..self.cfg.commands.len()).find(|i| self.workload_index(*i) == command)?;
        Some(lock(&self.shared.ack_times).iter().find(|(i, _)| *i == sent).map(|(_, at)| *at))
    }

    /// Counts a node death the world did not cause directly (a crash point fired).
    pub fn count_kill(&mut self) {
        self.kills += 1;
    }

    fn set_next_death(&self, s: Service, death: Death) {
        lock(&self.simfs.disk(self.nodes[&s])).set_next_death(death);
    }

    fn meet_recovery_faults(&mut self, s: Service, recovery: &[RecoveryFault]) -> Vec<RecoveryFault> {
        let disk = self.simfs.disk(self.nodes[&s]);
        let mut disk = lock(&disk);
        let dir = data_dir(s);
        for (i, fault) in recovery.iter().enumerate() {
            match *fault {
                RecoveryFault::CorruptSnapshot { pick, at } => {
                    let (newest, previous) = disk.newest_snapshots(&dir);
                    // The promise of this fault is a fallback: with retention on, the WAL no
                    // longer reaches back past the snapshots, so the previous one must stay intact.
                    let fallback = !self.cfg.storage.retention
                        || previous.is_some_and(|p| !self.damaged_snapshots.contains(&p));
                    if let Some(snapshot) = newest.filter(|_| fallback) {
                        if let Some(path) = disk.corrupt_snapshot(&snapshot, pick, at) {
                            let line = format!("snapshot corrupted: {}", path.display());
                            self.trace_fault(s.name(), "corrupt-snapshot", line);
                            self.damaged_snapshots.insert(snapshot);
                        }
                    }
                }
                RecoveryFault::Media { target, media, aim } => {
                    if let Some(what) = crate::media::strike(&mut disk, &dir, target, media, aim) {
                        self.trace_fault(s.name(), "media", what);
                    }
                }
                RecoveryFault::CrashInRecovery { nth, before } => {
                    disk.set_crash_point(Some(CrashPoint { op: nth, before }));
                    self.trace_fault(
                        s.name(),
                        "crash-in-recovery",
                        format!("crash point armed in recovery: op +{nth}"),
                    );
                    return recovery[i + 1..].to_vec();
                }
            }
        }
        Vec::new()
    }
}

fn plan_has_media(plan: &FaultPlan) -> bool {
    use crate::plan::PlannedFault;
    plan.events.iter().any(|e| match &e.fault {
        PlannedFault::Kill { recovery, .. }
        | PlannedFault::CrashPoint { recovery, .. }
        | PlannedFault::CrashAt { recovery, .. }
        | PlannedFault::Stop { recovery, .. } => {
            recovery.iter().any(|r| matches!(r, RecoveryFault::Media { .. }))
        }
        PlannedFault::Partition { .. } => false,
    })
}

/// How a kill is written in the trace: power failures as before kinds existed.
fn death_note(death: Death) -> &'static str {
    match death {
        Death::PowerFailure => "",
        Death::ProcessCrash => " (process crash)",
    }
}

/// Runs one world on a fresh thread and returns what happened.
pub fn run_world(config: WorldConfig) -> WorldResult {
    crate::runner::run(config.seed, None, move || async move {
        let mut world = WorldBuilder::new(config).build();
        let plan = chaos::safety_phase(&mut world).await;
        world.liveness_phase().await;
        world.finish(plan)
    })
}

/// The network rates of a world's configuration, as a plan holds them.
fn network_of(cfg: &WorldConfig) -> NetworkFaults {
    NetworkFaults { loss: cfg.chaos.loss, duplicate: cfg.chaos.duplicate }
}
