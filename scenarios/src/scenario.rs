//! The scenario catalog: named, parameterised values. A run is reproduced from
//! (scenario, seed, parameters); `exsim list` prints the catalog.

use crate::checker::Violation;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

/// A named scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// In-memory engine vs model.
    Differential,
    /// Simulated services without faults.
    Baseline,
    /// Kills and crash points of every service.
    Crash,
    /// Kills that take the process but not the machine (page cache survives), mixed with
    /// power failures, and fsync errors.
    ProcessCrash,
    /// Crashes in the middle of group commits with torn and lost unsynced writes.
    TornTail,
    /// Crashes during snapshot creation (snapshots every few dozen entries).
    SnapshotCrash,
    /// Crashes during recovery, repeatedly.
    RecoveryCrash,
    /// The newest snapshot is damaged at restart: fallback to the previous one.
    CorruptSnapshot,
    /// Media faults at rest (bit rot, latent sector errors, lost and misdirected writes),
    /// aimed at headers, seals, snapshot files and anywhere.
    Media,
    /// fsync fails with EIO (fsyncgate): the service stops and recovers.
    FsyncEio,
    /// Writes fail with ENOSPC: the service stops and recovers.
    DiskFull,
    /// Metadata operations (create, rename, remove, directory fsync, list, …) fail with
    /// EIO: the service stops and recovers.
    MetadataEio,
    /// Reads and writes fail with EIO (a read of a snapshot is tried again before the
    /// snapshot counts as damaged); retention on: the service stops and recovers.
    ReadWriteEio,
    /// Small segments, frequent snapshots, retention on, no tail cache: old segments are
    /// removed while every service must still recover.
    Retention,
    /// Loss, duplication, partitions; no node faults.
    Network,
    /// Crashes plus network faults.
    Chaos,
    /// Everything, with rates drawn per seed.
    Swarm,
    /// A hot-standby matching replica follows UBSCore's log beside the primary, under
    /// kills of all four and network faults; its hash chain is checked at every event.
    Replica,
    /// As `replica`, and the primary dies for good part-way: the replica is promoted and
    /// UBSCore and Settlement switch to it.
    Failover,
    /// Order events on: market data pulls the matching engine's events and publishes ticks,
    /// L2 books and top-of-book deltas, and Settlement keeps the audit trail, under kills
    /// of all four and network faults.
    MarketData,
    /// Crashes and network faults with hostile commands mixed into the workload: zero and
    /// unknown fields, overflows, strangers, reused ids, cancels of nothing, dust trades.
    Hostile,
    /// Planned restarts: most kills are graceful stops (a final snapshot, exit, restart), a
    /// third of them interrupted by a crash inside the stop; retention on.
    Restart,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 22] = [
        Scenario::Differential,
        Scenario::Baseline,
        Scenario::Crash,
        Scenario::ProcessCrash,
        Scenario::TornTail,
        Scenario::SnapshotCrash,
        Scenario::RecoveryCrash,
        Scenario::CorruptSnapshot,
        Scenario::Media,
        Scenario::FsyncEio,
        Scenario::DiskFull,
        Scenario::MetadataEio,
        Scenario::ReadWriteEio,
        Scenario::Retention,
        Scenario::Network,
        Scenario::Chaos,
        Scenario::Swarm,
        Scenario::Replica,
        Scenario::Failover,
        Scenario::MarketData,
        Scenario::Hostile,
        Scenario::Restart,
    ];

    /// The scenarios a plain `exsim sweep` runs.
    pub fn defaults() -> Vec<Scenario> {
        if sim::SIMULATION_BUILD {
            Scenario::ALL.into_iter().filter(|s| *s != Scenario::Differential).collect()
        } else {
            vec![Scenario::Differential]
        }
    }

    /// The scenario's name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Differential => "differential",
            Scenario::Baseline => "baseline",
            Scenario::Crash => "crash",
            Scenario::ProcessCrash => "process-crash",
            Scenario::TornTail => "torn-tail",
            Scenario::SnapshotCrash => "snapshot-crash",
            Scenario::RecoveryCrash => "recovery-crash",
            Scenario::CorruptSnapshot => "corrupt-snapshot",
            Scenario::Media => "media",
            Scenario::FsyncEio => "fsync-eio",
            Scenario::DiskFull => "disk-full",
            Scenario::MetadataEio => "metadata-eio",
            Scenario::ReadWriteEio => "read-write-eio",
            Scenario::Retention => "retention",
            Scenario::Network => "network",
            Scenario::Chaos => "chaos",
            Scenario::Swarm => "swarm",
            Scenario::Replica => "replica",
            Scenario::Failover => "failover",
            Scenario::MarketData => "market-data",
            Scenario::Hostile => "hostile",
            Scenario::Restart => "restart",
        }
    }

    /// One line on what the scenario does.
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Differential => {
                "in-memory pipeline beside the reference model, compared every 500 commands"
            }
            Scenario::Baseline => "the three services as simulated nodes with clients; no faults",
            Scenario::Crash => {
                "kills and filesystem crash points of every service, power failure of its disk"
            }
            Scenario::ProcessCrash => {
                "process crashes (page cache survives) mixed with power failures, and fsync EIO"
            }
            Scenario::TornTail => "crashes inside group commits; unsynced writes mostly torn or lost",
            Scenario::SnapshotCrash => {
                "snapshots every few dozen entries, crash points inside their creation"
            }
            Scenario::RecoveryCrash => "crash points inside recovery, again and again",
            Scenario::CorruptSnapshot => {
                "the newest snapshot damaged at restart: fallback to the previous one"
            }
            Scenario::Media => {
                "media faults at restart (bit rot, bad sectors, lost/misdirected writes) aimed at headers, \
                 seals, snapshots; refusing to start is fine, losing data silently is not"
            }
            Scenario::FsyncEio => {
                "fsync fails with EIO (fsyncgate); the service stops and recovers from disk"
            }
            Scenario::DiskFull => "writes fail with ENOSPC; the service stops and recovers",
            Scenario::MetadataEio => {
                "create, mkdir, rename, remove, rmdir, directory fsync, list, exists and len fail with EIO (no \
                 effect; a failed directory fsync leaves its entries pending); the service stops and recovers"
            }
            Scenario::ReadWriteEio => {
                "reads and writes fail with EIO, recovery's reads of snapshots and logs included; 4 KiB \
                 segments, snapshots every 60 entries, retention on; the service stops and recovers"
            }
            Scenario::Retention => {
                "4 KiB segments, snapshots every 60 entries, retention on, no tail cache: old segments \
                 removed under crashes, every service still recovers"
            }
            Scenario::Network => "packet loss, duplicated messages and partitions; no node faults",
            Scenario::Chaos => "crashes plus loss, duplication and partitions",
            Scenario::Swarm => "every fault, with rates drawn per seed (quiet runs to storms)",
            Scenario::Replica => {
                "a hot-standby matching replica beside the primary, killed like the others, with loss \
                 and partitions; its chained state hash checked at every event"
            }
            Scenario::Failover => {
                "as replica, and the primary matching engine dies for good part-way: the replica is \
                 promoted, UBSCore and Settlement switch to it, no gap and no duplicate downstream"
            }
            Scenario::MarketData => {
                "order events on: market data as a fourth durable service (ticks, L2 books, top-of-book \
                 deltas) and Settlement's audit trail, killed like the others, with loss, partitions and \
                 retention on; everything they publish derived again by the oracle"
            }
            Scenario::Restart => {
                "graceful stops (SIGTERM: final snapshot, exit, restart) among the kills, a third crashed \
                 half-way, then power failures; retention on"
            }
            Scenario::Hostile => {
                "crashes, loss and duplication, and one command in ten hostile: zero and unknown fields, \
                 overflowing deposits and locks, strangers, reused ids, cancels of nothing, dust trades"
            }
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Result<Scenario, String> {
        Scenario::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario `{name}` (known: {})", names.join(", "))
        })
    }

    /// Whether its world has the hot-standby replica.
    pub fn has_replica(self) -> bool {
        matches!(self, Scenario::Replica | Scenario::Failover)
    }

    /// Whether its world has market data (swarm seeds may draw it too).
    pub fn has_market_data(self) -> bool {
        self == Scenario::MarketData
    }

    /// The services of its world at `seed`: what a plan may name (a swarm seed draws the
    /// replica and market data).
    pub fn services(self, seed: u64) -> &'static [sim::plan::Service] {
        #[cfg(madsim)]
        {
            let cfg = crate::simrun::world_config(self, seed, 1, &Params::default());
            sim::plan::Service::of_world(cfg.replica, cfg.market_data.is_some())
        }
        #[cfg(not(madsim))]
        {
            let _ = seed;
            sim::plan::Service::of_world(self.has_replica(), self.has_market_data())
        }
    }

    /// Whether it needs the simulation build.
    pub fn needs_simulation(self) -> bool {
        self != Scenario::Differential
    }

    /// Default commands per run.
    pub fn default_commands(self) -> usize {
        match self {
            Scenario::Differential => 10_000,
            _ => 2_000,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of a run besides scenario and seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Params {
    /// Commands after the initial deposits (`None`: the scenario's default).
    pub commands: Option<usize>,
    /// Mean simulated ms between node and network faults (`None`: the scenario's; larger
    /// means fewer faults; `shrink` raises it).
    pub fault_every_ms: Option<u64>,
    /// A bug planted in the engine (builds with the `planted-bugs` feature only).
    #[serde(skip)]
    pub planted: Option<engine::bugs::Bug>,
}

/// Most commands one run may have (the workload is generated up front).
pub const MAX_COMMANDS: usize = 10_000_000;

/// Most mean simulated ms between faults (a day).
pub const MAX_FAULT_EVERY_MS: u64 = 86_400_000;

impl Params {
    /// Checks the ranges the command line enforces, for parameters read from files.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = self.commands.filter(|n| !(1..=MAX_COMMANDS).contains(n)) {
            return Err(format!("commands {n} is not within 1 to {MAX_COMMANDS}"));
        }
        if let Some(ms) = self.fault_every_ms.filter(|ms| !(1..=MAX_FAULT_EVERY_MS).contains(ms)) {
            return Err(format!("fault-every-ms {ms} is not within 1 to {MAX_FAULT_EVERY_MS}"));
        }
        Ok(())
    }
}

/// The outcome of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scenario.
    pub scenario: Scenario,
    /// Seed.
    pub seed: u64,
    /// Commands submitted.
    pub commands: usize,
    /// The first failed check, described; `None` when the run passed.
    pub failure: Option<String>,
    /// The first failed check, typed.
    pub violation: Option<Violation>,
    /// The last trace lines of the nodes, when the run failed.
    pub tails: BTreeMap<String, Vec<String>>,
    /// Wall time, microseconds.
    pub wall_us: u64,
    /// Simulated time, milliseconds (0 for in-memory runs).
    pub sim_ms: u64,
    /// Simulated messages.
    pub messages: u64,
    /// Nodes killed.
    pub kills: u64,
    /// WAL segments removed by retention.
    pub segments_removed: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Crash points hit, by operation and timing (e.g. `fsync before`).
    pub crash_points: BTreeMap<String, u64>,
    /// The trace hash (0 for in-memory runs).
    pub trace_hash: u64,
    /// xxh3 digest of the final recovered state (simulated runs that recovered).
    pub state_digest: Option<u64>,
    /// The fault plan the run executed (simulated runs): replaying it repeats the run.
    pub plan: Option<sim::plan::FaultPlan>,
    /// Every trace line, when asked for (to find where two runs of a seed differ).
    #[serde(skip)]
    pub trace: Option<Vec<String>>,
    /// Each service's filesystem operations by kind and phase (simulated runs).
    #[serde(skip)]
    pub op_counts: sim::plan::OpCounts,
}

impl RunReport {
    /// The report of a run that has not run yet.
    pub fn empty(scenario: Scenario, seed: u64, commands: usize) -> RunReport {
        RunReport {
            scenario,
            seed,
            commands,
            failure: None,
            violation: None,
            tails: BTreeMap::new(),
            wall_us: 0,
            sim_ms: 0,
            messages: 0,
            kills: 0,
            segments_removed: 0,
            faults: BTreeMap::new(),
            crash_points: BTreeMap::new(),
            trace_hash: 0,
            state_digest: None,
            plan: None,
            trace: None,
            op_counts: BTreeMap::new(),
        }
    }
}

/// The command that reproduces a run.
pub fn repro_command(scenario: Scenario, seed: u64, params: &Params) -> String {
    let mut cmd = format!("cargo run --release -- run --scenario {scenario} --seed {seed}");
    if let Some(n) = params.commands.filter(|n| *n != scenario.default_commands()) {
        cmd += &format!(" --commands {n}");
    }
    if let Some(ms) = params.fault_every_ms {
        cmd += &format!(" --fault-every-ms {ms}");
    }
    if let Some(bug) = params.planted {
        cmd = cmd.replacen("cargo run --release --", "cargo run --release --features planted-bugs --", 1);
        cmd += &format!(" --plant {bug}");
    }
    cmd
}

/// Runs one seed of one scenario.
pub fn run(scenario: Scenario, seed: u64, params: &Params) -> RunReport {
    run_with(scenario, seed, params, &RunOptions::default())
}

/// What a run does besides its scenario, seed and parameters.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Execute this fault plan instead of the seed's.
    pub plan: Option<sim::plan::FaultPlan>,
    /// Keep every trace line in the report.
    pub keep_trace: bool,
    /// Set from outside (a wall-clock watchdog) to stop the run early as a timeout.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Runs one seed of one scenario with `options`.
pub fn run_with(scenario: Scenario, seed: u64, params: &Params, options: &RunOptions) -> RunReport {
    let commands = params.commands.unwrap_or(scenario.default_commands());
    let started = Instant::now();
    let mut report = RunReport::empty(scenario, seed, commands);
    // A panic anywhere in the exchange (simulated or in memory) is a finding, not a crash
    // of the tool.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut r = report.clone();
        match scenario {
            Scenario::Differential => {
                let d = crate::sweep::run_differential(
                    seed,
                    &crate::workload::WorkloadConfig { commands, users: 100 },
                    options.cancel.as_deref(),
                );
                r.commands = d.commands;
                r.violation = match d.failure {
                    Some(detail) if d.cancelled => Some(Violation::Timeout { detail }),
                    Some(detail) => Some(Violation::Divergence { detail }),
                    None => None,
                };
            }
            _ => run_world(scenario, seed, commands, params, options, &mut r),
        }
        r
    }));
    match outcome {
        Ok(r) => report = r,
        Err(panic) => {
            let message = engine::service::panic_message(&*panic);
            report.violation = Some(Violation::Panic { message });
        }
    }
    report.failure = report.violation.as_ref().map(Violation::to_string);
    report.wall_us = started.elapsed().as_micros() as u64;
    report
}

#[cfg(madsim)]
fn run_world(
    scenario: Scenario,
    seed: u64,
    commands: usize,
    params: &Params,
    options: &RunOptions,
    report: &mut RunReport,
) {
    let config = || {
        let mut cfg = crate::simrun::world_config(scenario, seed, commands, params);
        cfg.plan = options.plan.clone();
        cfg.keep_trace = options.keep_trace;
        cfg.cancel = options.cancel.clone();
        cfg
    };
    let cfg = config();
    let markets = cfg.markets.clone();
    let result = sim::world::run_world(cfg);
    report.commands = result.sent.len();
    report.plan = Some(result.plan.clone());
    report.trace = result.trace.clone();
    report.op_counts = result.op_counts.clone();
    report.sim_ms = result.sim_time.as_millis() as u64;
    report.messages = result.messages;
    report.kills = result.kills;
    report.segments_removed = result.segments_removed;
    report.faults = result.faults.clone();
    report.crash_points = result.crash_points.clone();
    report.trace_hash = result.trace_hash;
    report.state_digest = result.state_digest;
    if let Err(v) = judged(&result, &markets) {
        report.tails = result.tails.clone();
        drop(result);
        report.violation = Some(with_rows_named(v, config, report.trace_hash, &markets));
    }
}

/// A recovery found wrong by digest says only that a table differs: the same run again,
/// with every row kept, names the first row that does. The run is deterministic, so it
/// fails the same way; its finding replaces `first` only if it is the same run (same trace
/// hash), of the same kind, and names a row (a run cancelled by the wall clock, or one that
/// went another way, leaves `first` as it is).
#[cfg(madsim)]
fn with_rows_named(
    first: Violation,
    config: impl FnOnce() -> sim::world::WorldConfig,
    hash: u64,
    markets: &engine::Markets,
) -> Violation {
    use crate::checker::recovery::found_by_digest;
    if !found_by_digest(&first) {
        return first;
    }
    let mut cfg = config();
    if cfg.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
        return first;
    }
    cfg.full_recoveries = true;
    let again = sim::world::run_world(cfg);
    match judged(&again, markets) {
        Err(named)
            if again.trace_hash == hash && named.kind() == first.kind() && !found_by_digest(&named) =>
        {
            named
        }
        _ => first,
    }
}

/// The checker's verdict on a finished world. A panic in the checker is a finding too, and
/// keeps the run's plan, hashes and tails.
#[cfg(madsim)]
fn judged(result: &sim::world::WorldResult, markets: &engine::Markets) -> Result<(), Violation> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::simrun::check(result, markets)))
        .unwrap_or_else(|panic| {
            let message = format!("the checker: {}", engine::service::panic_message(&*panic));
            Err(Violation::Panic { message })
        })
}

#[cfg(not(madsim))]
fn run_world(
    scenario: Scenario,
    _seed: u64,
    _commands: usize,
    _params: &Params,
    _options: &RunOptions,
    report: &mut RunReport,
) {
    report.violation = Some(Violation::Unrecoverable {
        error: format!("scenario {scenario} needs the simulation build (--cfg madsim)"),
    });
}

/// The scenario a planted bug is hunted with: the faults that can expose it.
pub fn hunting_ground(bug: engine::bugs::Bug) -> Scenario {
    use engine::bugs::Bug;
    match bug {
        Bug::NonAtomicLatest | Bug::IndexNotRebuilt => Scenario::SnapshotCrash,
        Bug::CrcNotChecked | Bug::SeqReusedAfterBadRecord => Scenario::TornTail,
        Bug::TrustCacheOnReopen => Scenario::ProcessCrash,
        Bug::UnsealedCommits => Scenario::Media,
        Bug::RetentionBatchedUnlinks => Scenario::Retention,
        Bug::NoSnapshotFallback => Scenario::CorruptSnapshot,
        Bug::ReplicaAppliesTwice => Scenario::Replica,
        Bug::PromotionForgetsDownstream => Scenario::Failover,
        Bug::TickLostOnRecovery
        | Bug::AuditBeforeLedger
        | Bug::RetentionForgetsFollowers
        | Bug::FollowerServesUnsynced
        | Bug::QueryGuardInverted => Scenario::MarketData,
        Bug::ZeroLockUntracked => Scenario::Hostile,
        Bug::CleanStopTrusted => Scenario::Restart,
        Bug::DirFsyncErrorIgnored => Scenario::MetadataEio,
        Bug::SnapshotReadErrorCondemns | Bug::FailedAppendRetried => Scenario::ReadWriteEio,
        Bug::SnapshotsNeverTaken | Bug::SnapshotsNeverPruned => Scenario::SnapshotCrash,
        Bug::SegmentsNeverRotated => Scenario::Retention,
        _ => Scenario::Crash,
    }
}

/// Seeds `0..max_seeds` of the bug's scenario until a run fails: (seeds run, first
/// violation), or `None` if none failed.
pub fn hunt(bug: engine::bugs::Bug, commands: usize, max_seeds: u64) -> (u64, Option<Violation>) {
    let scenario = hunting_ground(bug);
    let params = Params { commands: Some(commands), planted: Some(bug), ..Params::default() };
    for seed in 0..max_seeds {
        if let Some(v) = run(scenario, seed, &params).violation {
            return (seed + 1, Some(v));
        }
    }
    (max_seeds, None)
}
