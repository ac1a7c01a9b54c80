//! The deterministic world: the three services as madsim nodes on their own simulated
//! disks, clients that retry until acknowledged, a chaos controller that kills and
//! restarts nodes (at random times and at filesystem crash points) and partitions links,
//! then a liveness phase without faults, and finally the services recovered from their
//! disks for the checker. One seed determines everything.

use crate::fs::{CrashPoint, Death, Fault, FaultConfig, SimFs};
use crate::seed::{Stream, rng};
use crate::trace::Trace;
use engine::durable::pipeline::me_input;
use engine::durable::{DurableConfig, DurableError, DurableMatching, DurableSettlement, DurableUbs};
use engine::service::{Addrs, NodeEnv, Recovered, RecoveryHook, Request, Response, Tracer, rpc};
use engine::storage::FileSystem;
use engine::wal::WalError;
use engine::{Ack, Command, Markets};
use madsim::net::{Endpoint, NetSim};
use madsim::runtime::Handle;
use madsim::task::NodeId;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the chaos controller does during the safety phase.
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
    /// When set, half of the crash points are armed at the first few operations of this
    /// kind (e.g. `remove`: retention's deletes), which a window of all operations rarely hits.
    pub crash_on: Option<&'static str>,
    /// Probability that a restarting node finds one media fault on its disk (bit rot, a
    /// latent sector error, a lost or misdirected write), aimed at the bytes that matter.
    /// Under media faults a service may refuse to start naming the damage ("corruption
    /// detected"), which ends the run; it may never lose or change acknowledged data.
    pub media: f64,
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
    /// Node and network faults.
    pub chaos: Chaos,
    /// Disk faults.
    pub faults: FaultConfig,
    /// Storage settings of every service.
    pub storage: DurableConfig,
    /// Print the trace as it happens.
    pub print_trace: bool,
    /// Simulated time after which the safety phase is cut short and liveness must follow.
    pub max_safety: Duration,
    /// A bug planted in the engine for this run (needs the `planted-bugs` feature).
    pub planted: Option<engine::bugs::Bug>,
}

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
    /// The services could not be recovered from their disks at the end.
    FinalRecovery(String),
}

/// The services recovered from their disks after the run.
pub struct FinalState {
    /// UBSCore.
    pub ubs: DurableUbs,
    /// Matching, caught up with UBSCore's history.
    pub me: DurableMatching,
    /// Settlement.
    pub settlement: DurableSettlement,
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
}

/// What happened in a run.
pub struct WorldResult {
    /// The trace hash (equal for equal seeds, code and parameters); it covers the state
    /// digest too.
    pub trace_hash: u64,
    /// xxh3 digest of the state of all three services as recovered at the end (balances,
    /// locks, de-dup table, counters; books; ledger), if they could be recovered.
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
    /// Crash points hit, by operation and timing (e.g. `fsync before`).
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
    pub ubs_wal_archive: Vec<crate::fs::ArchivedVersion>,
    /// The last trace lines of every node.
    pub tails: BTreeMap<String, Vec<String>>,
    /// WAL segments that retention removed (made durable once, gone at the end), all services.
    pub segments_removed: u64,
    /// Under media faults: services that refused to go on because their data is damaged,
    /// with the error naming the damage. The run ends at the first one.
    pub corruption_detected: Vec<(String, String)>,
    /// Every recovery of every service, in order: (node, simulated ms, recovered state).
    pub recoveries: Vec<RecoveryRecord>,
}

/// Why a node is restarted when it stopped itself (after an I/O error).
const STOPPED_ITSELF: &str = "stopped itself";

const SERVICES: [&str; 3] = ["ubscore", "matching", "settlement"];

fn addrs() -> Addrs {
    let a = |i| SocketAddr::from(([10, 0, 0, i], 7000));
    Addrs { ubscore: a(1), matching: a(2), settlement: a(3) }
}

/// Errors that name damaged durable data (a file, an offset, a missing entry): under media
/// faults, a service that stops with one of these has detected the damage.
fn names_damage(e: &DurableError) -> bool {
    match e {
        DurableError::Wal(WalError::Corrupt { .. } | WalError::Gap { .. }) => true,
        DurableError::Wal(WalError::Io { op, .. }) => *op == "read",
        DurableError::Snapshot(s) => s.op == "read",
        DurableError::Codec { .. } | DurableError::Divergence(_) | DurableError::WitnessAhead { .. } => true,
        _ => false,
    }
}

/// Whether media damage was inflicted on the disk of `node` (only then may a service's
/// refusal to start count as detected corruption rather than a bug).
fn damaged_media(simfs: &SimFs, node: NodeId) -> bool {
    let disk = simfs.disk(node);
    let disk = disk.lock().unwrap_or_else(|e| e.into_inner());
    disk.faults().iter().any(|f| matches!(f, Fault::Media { .. } | Fault::SnapshotCorrupted { .. }))
}

/// Service errors that injected faults legitimately cause: the service stops and recovers.
fn expected(e: &DurableError) -> bool {
    match e {
        DurableError::Wal(WalError::Io { .. } | WalError::Poisoned) | DurableError::Snapshot(_) => true,
        other => other.to_string().contains("simfs:"),
    }
}

/// Runs one world on a fresh thread and returns what happened.
pub fn run_world(config: WorldConfig) -> WorldResult {
    crate::runner::run(config.seed, None, move || world(config))
}

async fn world(cfg: WorldConfig) -> WorldResult {
    engine::bugs::plant(cfg.planted);
    let handle = Handle::current();
    let simfs = SimFs::current();
    simfs.set_default_config(cfg.faults);
    let net = NetSim::current();
    net.update_config(|c| c.packet_loss_rate = cfg.chaos.loss);
    engine::service::rpc::set_duplicate_rate(cfg.chaos.duplicate);
    engine::service::rpc::take_duplicated();
    let mut partitions = 0u64;
    let start = madsim::time::Instant::now();
    let trace = Arc::new(Trace::new(cfg.print_trace));
    let tracer: Tracer = {
        let trace = trace.clone();
        Arc::new(move |node: &str, event: String| trace.record(start.elapsed(), node, &event))
    };
    let errors = Arc::new(Mutex::new(Vec::<Problem>::new()));
    let recoveries = Arc::new(Mutex::new(Vec::<RecoveryRecord>::new()));
    // The newest valid snapshot of each service as it starts opening its disk.
    let newest_valid = Arc::new(Mutex::new(BTreeMap::<String, Option<u64>>::new()));
    let on_recovered: RecoveryHook = {
        let recoveries = recoveries.clone();
        let newest_valid = newest_valid.clone();
        Arc::new(move |node: &str, state: Recovered| {
            let at = start.elapsed().as_millis() as u64;
            let newest_valid_snapshot =
                newest_valid.lock().unwrap_or_else(|e| e.into_inner()).get(node).copied().flatten();
            recoveries.lock().unwrap_or_else(|e| e.into_inner()).push(RecoveryRecord {
                node: node.to_string(),
                at_ms: at,
                state,
                newest_valid_snapshot,
            });
        })
    };
    let stopped = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let detected = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let media = cfg.chaos.media > 0.0;

    // The three services.
    let mut nodes: BTreeMap<&str, NodeId> = BTreeMap::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let (tracer, errors, stopped, markets) =
            (tracer.clone(), errors.clone(), stopped.clone(), cfg.markets.clone());
        let detected = detected.clone();
        let on_recovered = on_recovered.clone();
        let newest_valid = newest_valid.clone();
        let storage = cfg.storage;
        let node = handle
            .create_node()
            .name(*name)
            .ip([10, 0, 0, i as u8 + 1].into())
            .init(move || {
                let (tracer, errors, stopped, markets) =
                    (tracer.clone(), errors.clone(), stopped.clone(), markets.clone());
                let detected = detected.clone();
                let on_recovered = on_recovered.clone();
                let newest_valid = newest_valid.clone();
                async move {
                    let id = madsim::plugin::node();
                    let simfs = SimFs::current();
                    {
                        let disk = simfs.disk(id);
                        let mut disk = disk.lock().unwrap_or_else(|e| e.into_inner());
                        disk.revive();
                        let valid = crate::snapshots::newest_valid(&disk, &PathBuf::from("/data").join(name));
                        newest_valid
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(name.to_string(), valid);
                    }
                    let env = NodeEnv {
                        name: name.to_string(),
                        fs: Arc::new(simfs.node_fs(id)),
                        dir: PathBuf::from("/data").join(name),
                        markets,
                        config: storage,
                        addrs: addrs(),
                        pull_interval: Duration::from_millis(32),
                        rpc_timeout: Duration::from_millis(100),
                        batch: 256,
                        trace: tracer.clone(),
                        on_recovered: Some(on_recovered),
                    };
                    tracer(name, "start".into());
                    let err = match *name {
                        "ubscore" => engine::service::run_ubscore(env).await,
                        "matching" => engine::service::run_matching(env).await,
                        _ => engine::service::run_settlement(env).await,
                    };
                    // Reached only when the service stopped itself (not when killed).
                    tracer(name, format!("stopped: {err}"));
                    if media && names_damage(&err) && damaged_media(&SimFs::current(), id) {
                        tracer(name, "corruption detected: the run ends here".into());
                        detected
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((name.to_string(), err.to_string()));
                        return;
                    }
                    if !expected(&err) {
                        errors
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(Problem::ServiceError { node: name.to_string(), error: err.to_string() });
                    }
                    stopped.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
                }
            })
            .build();
        nodes.insert(name, node.id());
    }

    // Clients: each sends its share of the commands, retrying until acknowledged.
    let clients = cfg.clients.max(1);
    let done = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::<(usize, Command, Ack)>::new()));
    for c in 0..clients {
        let mine: Vec<(usize, Command)> =
            cfg.commands.iter().copied().enumerate().filter(|(i, _)| i % clients == c).collect();
        let (done, acked, tracer) = (done.clone(), acked.clone(), tracer.clone());
        handle
            .create_node()
            .name(format!("client-{c}"))
            .ip([10, 0, 1, c as u8 + 1].into())
            .init(move || {
                let (done, acked, tracer, mine) = (done.clone(), acked.clone(), tracer.clone(), mine.clone());
                async move {
                    let name = format!("client-{c}");
                    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 1, c as u8 + 1], 9000))).await
                    else {
                        tracer(&name, "cannot bind".into());
                        return;
                    };
                    for (i, command) in mine {
                        let mut tries = 0u32;
                        loop {
                            tries += 1;
                            let reply = rpc::call(
                                &ep,
                                addrs().ubscore,
                                &Request::Submit(command),
                                Duration::from_millis(200),
                            )
                            .await;
                            if let Some(Response::Ack(ack)) = reply {
                                tracer(
                                    &name,
                                    format!("ack #{i} {:?} seq={:?} tries={tries}", ack.outcome, ack.seq),
                                );
                                acked.lock().unwrap_or_else(|e| e.into_inner()).push((i, command, ack));
                                break;
                            }
                            madsim::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
            .build();
    }

    // Observer: tells when the three services have converged. `rounds` counts completed
    // observation rounds, so that a verdict formed before the last command is not used.
    let converged = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let last_statuses = Arc::new(Mutex::new(String::new()));
    {
        let (converged, rounds, last_statuses) = (converged.clone(), rounds.clone(), last_statuses.clone());
        handle
            .create_node()
            .name("observer")
            .ip([10, 0, 2, 1].into())
            .init(move || {
                let (converged, rounds, last_statuses) =
                    (converged.clone(), rounds.clone(), last_statuses.clone());
                async move {
                    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 2, 1], 9000))).await else {
                        return;
                    };
                    loop {
                        let mut statuses = Vec::new();
                        for addr in [addrs().ubscore, addrs().matching, addrs().settlement] {
                            if let Some(Response::Status(s)) =
                                rpc::call(&ep, addr, &Request::Status, Duration::from_millis(100)).await
                            {
                                statuses.push(s);
                            }
                        }
                        let ok = match statuses.as_slice() {
                            [u, m, s] => {
                                u.ubs_seq == m.ubs_seq && u.event_id == m.event_id && m.trade_id == s.trade_id
                            }
                            _ => false,
                        };
                        *last_statuses.lock().unwrap_or_else(|e| e.into_inner()) = format!("{statuses:?}");
                        converged.store(ok, Ordering::SeqCst);
                        rounds.fetch_add(1, Ordering::SeqCst);
                        madsim::time::sleep(Duration::from_millis(25)).await;
                    }
                }
            })
            .build();
    }

    // Safety phase: chaos until the clients are done (or time runs out).
    let mut chaos_rng = rng(cfg.seed, Stream::Crash);
    let mut kills = 0u64;
    // Faults that hit a node as it comes back: a damaged newest snapshot, a crash point
    // inside its recovery (possibly again and again).
    let recovery_rng = std::cell::RefCell::new(rng(cfg.seed, Stream::Swarm));
    let damaged_snapshots = std::cell::RefCell::new(BTreeSet::<PathBuf>::new());
    let on_restart = |name: &str, chaos: bool| {
        if !chaos {
            return;
        }
        let mut r = recovery_rng.borrow_mut();
        let disk = simfs.disk(nodes[name]);
        let mut disk = disk.lock().unwrap_or_else(|e| e.into_inner());
        if cfg.chaos.corrupt_snapshot > 0.0 && r.gen_bool(cfg.chaos.corrupt_snapshot) {
            let (pick, at) = (r.gen_range(0..16usize), r.r#gen::<u64>());
            let (newest, previous) = disk.newest_snapshots(&PathBuf::from("/data").join(name));
            let mut damaged = damaged_snapshots.borrow_mut();
            // The promise of this fault is a fallback: with retention on, the WAL no longer
            // reaches back past the snapshots, so the previous one must still be intact.
            let fallback = !cfg.storage.retention || previous.is_some_and(|p| !damaged.contains(&p));
            if let Some(snapshot) = newest.filter(|_| fallback) {
                if let Some(path) = disk.corrupt_snapshot(&snapshot, pick, at) {
                    tracer(name, format!("snapshot corrupted: {}", path.display()));
                    damaged.insert(snapshot);
                }
            }
        }
        if media && r.gen_bool(cfg.chaos.media.min(1.0)) {
            if let Some(what) = crate::media::strike(&mut disk, &PathBuf::from("/data").join(name), &mut r) {
                tracer(name, what);
            }
        }
        if cfg.chaos.crash_in_recovery > 0.0 && r.gen_bool(cfg.chaos.crash_in_recovery) {
            let crash = CrashPoint { op: r.gen_range(1..60), before: r.gen_bool(0.5) };
            disk.set_crash_point(Some(crash));
            tracer(name, format!("crash point armed in recovery: op +{}", crash.op));
        }
    };
    // How the next death of `name` treats its disk (drawn only when the scenario mixes
    // kinds, so that power-failure-only scenarios keep their random streams).
    let set_death = |name: &str, death: Death| {
        simfs.disk(nodes[name]).lock().unwrap_or_else(|e| e.into_inner()).set_next_death(death);
    };
    let draw_death = |r: &mut rand_chacha::ChaCha8Rng| {
        if cfg.chaos.process_crash > 0.0 && r.gen_bool(cfg.chaos.process_crash.min(1.0)) {
            Death::ProcessCrash
        } else {
            Death::PowerFailure
        }
    };
    // A service that stopped itself (after an I/O error) is restarted by its supervisor:
    // the process goes, the machine and its page cache stay.
    let restart = |name: &str, why: &str, chaos: bool| {
        if why == STOPPED_ITSELF {
            set_death(name, Death::ProcessCrash);
        }
        handle.kill(nodes[name]);
        on_restart(name, chaos);
        handle.restart(nodes[name]);
        tracer(name, format!("restart ({why})"));
    };
    let halted = || !detected.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
    while done.load(Ordering::SeqCst) < clients && start.elapsed() < cfg.max_safety && !halted() {
        let pause = if cfg.chaos.fault_every_ms > 0 {
            chaos_rng.gen_range(1..=2 * cfg.chaos.fault_every_ms)
        } else {
            50
        };
        madsim::time::sleep(Duration::from_millis(pause)).await;
        let self_stopped: Vec<String> =
            std::mem::take(&mut *stopped.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
        for name in self_stopped {
            restart(&name, STOPPED_ITSELF, true);
        }
        if cfg.chaos.fault_every_ms == 0 {
            continue;
        }
        let victim = SERVICES[chaos_rng.gen_range(0..SERVICES.len())];
        let action = if cfg.chaos.node_faults { chaos_rng.gen_range(0..3) } else { 2 };
        match action {
            0 => {
                let death = draw_death(&mut chaos_rng);
                set_death(victim, death);
                handle.kill(nodes[victim]);
                kills += 1;
                tracer(victim, format!("kill{}", death_note(death)));
                let down = chaos_rng.gen_range(1..=cfg.chaos.max_down_ms.max(1));
                madsim::time::sleep(Duration::from_millis(down)).await;
                on_restart(victim, true);
                handle.restart(nodes[victim]);
                tracer(victim, "restart".into());
            }
            1 => {
                let crash = CrashPoint {
                    op: chaos_rng.gen_range(1..cfg.chaos.crash_window.max(2)),
                    before: chaos_rng.gen_bool(0.5),
                };
                let death = draw_death(&mut chaos_rng);
                let aimed = cfg.chaos.crash_on.filter(|_| chaos_rng.gen_bool(0.5));
                {
                    let disk = simfs.disk(nodes[victim]);
                    let mut disk = disk.lock().unwrap_or_else(|e| e.into_inner());
                    match aimed {
                        Some(kind) => {
                            let op = chaos_rng.gen_range(1..=3);
                            disk.set_crash_point_on(kind, CrashPoint { op, ..crash });
                            tracer(victim, format!("crash point aimed at {kind} #{op}"));
                        }
                        None => disk.set_crash_point(Some(crash)),
                    }
                    disk.set_next_death(death);
                }
                tracer(
                    victim,
                    format!(
                        "crash point armed: op +{} {}{}",
                        crash.op,
                        if crash.before { "before" } else { "after" },
                        death_note(death)
                    ),
                );
            }
            _ if cfg.chaos.partitions => {
                let other = SERVICES[chaos_rng.gen_range(0..SERVICES.len())];
                if other != victim {
                    net.clog_link(nodes[victim], nodes[other]);
                    partitions += 1;
                    tracer(victim, format!("partition from {other}"));
                    let down = chaos_rng.gen_range(1..=cfg.chaos.max_down_ms.max(1));
                    madsim::time::sleep(Duration::from_millis(down)).await;
                    net.unclog_link(nodes[victim], nodes[other]);
                    tracer(victim, format!("heal from {other}"));
                }
            }
            _ => {}
        }
        // A crash point that fired killed its node: bring it back after a pause.
        for name in SERVICES {
            let dead = simfs.disk(nodes[name]).lock().unwrap_or_else(|e| e.into_inner()).is_dead();
            if dead {
                kills += 1;
                madsim::time::sleep(Duration::from_millis(
                    chaos_rng.gen_range(1..=cfg.chaos.max_down_ms.max(1)),
                ))
                .await;
                restart(name, "after crash point", true);
            }
        }
    }

    // Liveness phase: no more faults; everything must converge.
    tracer("world", "liveness phase".into());
    net.update_config(|c| c.packet_loss_rate = 0.0);
    engine::service::rpc::set_duplicate_rate(0.0);
    for name in SERVICES {
        {
            let disk = simfs.disk(nodes[name]);
            let mut disk = disk.lock().unwrap_or_else(|e| e.into_inner());
            disk.set_crash_point(None);
            disk.set_config(cfg.faults.healed());
        }
        let dead = simfs.disk(nodes[name]).lock().unwrap_or_else(|e| e.into_inner()).is_dead();
        let stopped_itself = stopped.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        if stopped_itself {
            restart(name, STOPPED_ITSELF, false);
        } else if dead {
            restart(name, "liveness", false);
        }
        for other in SERVICES {
            net.unclog_link(nodes[name], nodes[other]);
        }
    }
    let deadline = start.elapsed() + Duration::from_secs(120);
    // A converged verdict counts only from a round that started after every client was done.
    let mut first_valid_round = usize::MAX;
    loop {
        if halted() {
            break;
        }
        if done.load(Ordering::SeqCst) == clients && first_valid_round == usize::MAX {
            first_valid_round = rounds.load(Ordering::SeqCst) + 2;
        }
        if rounds.load(Ordering::SeqCst) >= first_valid_round && converged.load(Ordering::SeqCst) {
            break;
        }
        if start.elapsed() > deadline {
            errors.lock().unwrap_or_else(|e| e.into_inner()).push(Problem::Liveness(format!(
                "not converged 120 s after faults stopped ({} of {clients} clients done); \
                 last statuses (ubscore, matching, settlement): {}",
                done.load(Ordering::SeqCst),
                last_statuses.lock().unwrap_or_else(|e| e.into_inner())
            )));
            break;
        }
        let self_stopped: Vec<String> =
            std::mem::take(&mut *stopped.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect();
        for name in self_stopped {
            restart(&name, STOPPED_ITSELF, false);
        }
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    tracer("world", if halted() { "halted: corruption detected" } else { "converged" }.into());
    let sim_time = start.elapsed();
    let messages = net.stat().msg_count;

    // Power off and recover every service from its disk for the checker.
    for name in SERVICES {
        set_death(name, Death::PowerFailure);
        handle.kill(nodes[name]);
    }
    // A panic in the engine during the final recovery is a finding, not the end of the run.
    // The final recoveries are recoveries too: the checker judges each one at its point.
    let final_hook = |name: &str, state: Recovered| on_recovered(name, state);
    let before_open = |name: &str| {
        let disk = simfs.disk(nodes[name]);
        let valid = crate::snapshots::newest_valid(
            &disk.lock().unwrap_or_else(|e| e.into_inner()),
            &PathBuf::from("/data").join(name),
        );
        newest_valid.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), valid);
    };
    let recovered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recover_final(&simfs, &nodes, &cfg, &before_open, &final_hook)
    }))
    .unwrap_or_else(|panic| Err(DurableError::Panicked(engine::service::panic_message(&*panic))));
    let final_state = recovered.map_err(|e| {
        if media && names_damage(&e) && SERVICES.iter().any(|n| damaged_media(&simfs, nodes[n])) {
            detected.lock().unwrap_or_else(|x| x.into_inner()).push(("final recovery".into(), e.to_string()));
        } else {
            errors.lock().unwrap_or_else(|x| x.into_inner()).push(Problem::FinalRecovery(e.to_string()));
        }
    });
    let segments_removed: u64 = SERVICES
        .iter()
        .map(|name| {
            let disk = simfs.disk(nodes[name]);
            let disk = disk.lock().unwrap_or_else(|e| e.into_inner());
            let wal = PathBuf::from("/data").join(name).join("wal");
            let now = disk.files_under(&wal);
            let ever: BTreeSet<PathBuf> = disk
                .durable_archive(&wal)
                .into_iter()
                .map(|v| v.path)
                .filter(|p| p.extension().is_some_and(|e| e == "wal"))
                .collect();
            ever.iter().filter(|p| !now.contains(p)).count() as u64
        })
        .sum();
    let state_digest = final_state.as_ref().ok().map(state_digest);
    if let Some(d) = state_digest {
        trace.absorb(&format!("state digest {d:016x}"));
    }
    let ubs_wal_archive = simfs
        .disk(nodes["ubscore"])
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .durable_archive(&PathBuf::from("/data/ubscore/wal"));
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut crash_points: BTreeMap<String, u64> = BTreeMap::new();
    for name in SERVICES {
        let disk = simfs.disk(nodes[name]);
        let disk = disk.lock().unwrap_or_else(|e| e.into_inner());
        for f in disk.faults() {
            *faults.entry(f.kind().to_string()).or_default() += 1;
            if let Fault::CrashPoint { before, what, .. } = f {
                let op = what.split(' ').next().unwrap_or("?");
                *crash_points
                    .entry(format!("{op} {}", if *before { "before" } else { "after" }))
                    .or_default() += 1;
            }
            trace.absorb(&fault_line(f));
        }
    }
    if partitions > 0 {
        faults.insert("partition".into(), partitions);
    }
    let duplicated = engine::service::rpc::take_duplicated();
    if duplicated > 0 {
        faults.insert("message_duplicated".into(), duplicated);
    }
    trace.absorb(&format!("network faults: {partitions} partitions, {duplicated} duplicated messages"));
    let mut acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
    acked.sort_by_key(|(i, _, _)| *i);
    let tails = SERVICES.iter().chain(["world"].iter()).map(|n| (n.to_string(), trace.tail(n))).collect();
    let problems = std::mem::take(&mut *errors.lock().unwrap_or_else(|e| e.into_inner()));
    let corruption_detected = std::mem::take(&mut *detected.lock().unwrap_or_else(|e| e.into_inner()));
    if !corruption_detected.is_empty() {
        faults.insert("corruption_detected".into(), corruption_detected.len() as u64);
    }
    WorldResult {
        trace_hash: trace.hash(),
        state_digest,
        trace_lines: trace.lines(),
        sim_time,
        messages,
        kills,
        faults,
        crash_points,
        acked: acked.into_iter().map(|(_, c, a)| (c, a)).collect(),
        problems,
        segments_removed,
        corruption_detected,
        sent: cfg.commands.clone(),
        final_state: final_state.ok(),
        ubs_wal_archive,
        tails,
        recoveries: std::mem::take(&mut *recoveries.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// xxh3 over the canonical encoding of every service's recovered state: equal states,
/// equal digests (the seeds' own choice of state hash).
fn state_digest(f: &FinalState) -> u64 {
    let mut bytes = engine::codec::encode(&f.ubs.core().export_state());
    engine::codec::encode_into(&f.me.engine().export_state(), &mut bytes);
    engine::codec::encode_into(&f.settlement.settlement().ledger(), &mut bytes);
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// How a kill is written in the trace: power failures as before kinds existed.
fn death_note(death: Death) -> &'static str {
    match death {
        Death::PowerFailure => "",
        Death::ProcessCrash => " (process crash)",
    }
}

fn fault_line(f: &Fault) -> String {
    format!("fault {f:?}")
}

fn recover_final(
    simfs: &SimFs,
    nodes: &BTreeMap<&str, NodeId>,
    cfg: &WorldConfig,
    before_open: &dyn Fn(&str),
    on_recovered: &dyn Fn(&str, Recovered),
) -> Result<FinalState, DurableError> {
    let fs = |name: &str| -> Arc<dyn FileSystem> {
        let disk = simfs.disk(nodes[name]);
        disk.lock().unwrap_or_else(|e| e.into_inner()).revive();
        before_open(name);
        Arc::new(crate::fs::NodeFs::detached(disk))
    };
    let root = PathBuf::from("/data");
    let (ubs, info) =
        DurableUbs::open(fs("ubscore"), &root.join("ubscore"), cfg.markets.clone(), cfg.storage, 0)?;
    on_recovered("ubscore", Recovered::of_ubs(&ubs, info.snapshot_seq));
    let (mut me, info) =
        DurableMatching::open(fs("matching"), &root.join("matching"), cfg.markets.clone(), cfg.storage, 0)?;
    on_recovered("matching", Recovered::of_matching(&me, info.snapshot_seq));
    let (settlement, info) =
        DurableSettlement::open(fs("settlement"), &root.join("settlement"), cfg.storage, 0)?;
    on_recovered("settlement", Recovered::of_settlement(&settlement, info.snapshot_seq));
    // The matching engine re-derives its books after its snapshot and verifies its WAL.
    for r in ubs.records_after(me.last_ubs_seq(), usize::MAX)? {
        me.process(r.seq, me_input(&r).as_ref())?;
    }
    me.commit()?;
    if !me.caught_up() {
        return Err(DurableError::Divergence(
            "matching has logged events UBSCore's history does not produce".into(),
        ));
    }
    Ok(FinalState { ubs, me, settlement })
}
