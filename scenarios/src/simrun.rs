//! The worlds of the scenario catalog (faults, storage settings, workload per scenario and
//! seed), and the entry point that judges a finished world with the checker.

use crate::checker::{self, Violation};
use crate::scenario::{Params, Scenario};
use crate::workload::{self, WorkloadConfig};
use engine::Markets;
use engine::durable::{DurableConfig, SnapshotPolicy};
use engine::market_data::MdConfig;
use engine::wal::WalConfig;
use rand::Rng;
use sim::fs::{CrashTarget, FaultConfig, OpKind};
use sim::world::{Chaos, WorldConfig, WorldResult};
use std::time::Duration;

/// The world of one (scenario, seed, parameters).
pub fn world_config(scenario: Scenario, seed: u64, commands: usize, params: &Params) -> WorldConfig {
    let mut cfg = crash_world(seed, commands);
    let c = &mut cfg.chaos;
    match scenario {
        Scenario::Differential | Scenario::Baseline => {
            *c = Chaos::none();
            cfg.faults = FaultConfig::perfect();
        }
        Scenario::Crash => {}
        Scenario::ProcessCrash => {
            c.process_crash = 0.7;
            // Two fsyncs per group commit (entries, seal): 0.5 % of fsyncs is ~1 % of commits.
            cfg.faults.eio_fsync = 0.005;
        }
        Scenario::TornTail => {
            cfg.faults = FaultConfig { lose_write: 0.2, tear_write: 0.7, ..FaultConfig::default() };
            c.crash_window = 12;
        }
        Scenario::SnapshotCrash => {
            cfg.storage.snapshots = SnapshotPolicy::every(40, 0);
            c.crash_window = 40;
        }
        Scenario::RecoveryCrash => c.crash_in_recovery = 0.6,
        Scenario::CorruptSnapshot => {
            cfg.storage.snapshots = SnapshotPolicy::every(150, 0);
            c.corrupt_snapshot = 0.5;
        }
        Scenario::Media => {
            // Small snapshot intervals so that snapshot files exist to be hit.
            cfg.storage.snapshots = SnapshotPolicy::every(150, 0);
            c.media = 0.25;
            c.process_crash = 0.3;
        }
        // Per operation, and a group commit has two writes and two fsyncs (entries, seal):
        // 0.5 % of them is ~1 % of commits.
        Scenario::FsyncEio => cfg.faults.eio_fsync = 0.005,
        Scenario::DiskFull => cfg.faults.enospc_write = 0.005,
        // Metadata operations are rare in steady state (a segment's creation, a snapshot's
        // directory and renames) and frequent in recovery (listings, existence checks):
        // 1 % of them fails a few times a run, and a recovery now and then.
        Scenario::MetadataEio => {
            cfg.faults.eio_metadata = 0.01;
            c.process_crash = 0.3;
        }
        // Reads are most frequent in recovery (the log, the seal, snapshots) and in pulls
        // served from disk: no tail cache, so that a pull reads too. Retention on, so that
        // a snapshot wrongly given up may leave nothing to recover from.
        Scenario::ReadWriteEio => {
            cfg.faults.eio_read = 0.005;
            cfg.faults.eio_write = 0.002;
            cfg.storage.wal = WalConfig { segment_bytes: 4 << 10, tail_cache_bytes: 0 };
            cfg.storage.snapshots = SnapshotPolicy::every(60, 0);
            cfg.storage.retention = true;
            c.process_crash = 0.3;
        }
        Scenario::Retention => {
            cfg.storage.wal = WalConfig { segment_bytes: 4 << 10, tail_cache_bytes: 0 };
            cfg.storage.snapshots = SnapshotPolicy::every(60, 0);
            cfg.storage.retention = true;
            c.process_crash = 0.3;
            c.crash_on = Some(CrashTarget { kind: Some(OpKind::Remove), phase: None });
        }
        Scenario::Network => {
            c.node_faults = false;
            c.partitions = true;
            c.loss = 0.05;
            c.duplicate = 0.05;
        }
        Scenario::Chaos => {
            c.partitions = true;
            c.loss = 0.01;
            c.duplicate = 0.02;
        }
        Scenario::Swarm => swarm(seed, &mut cfg),
        Scenario::Replica | Scenario::Failover => replica_world(scenario, seed, &mut cfg),
        Scenario::MarketData => {
            with_market_data(&mut cfg);
            // Retention on, with small segments: the matching engine keeps what its
            // followers may re-pull (their floors travel with every pull).
            cfg.storage.wal = WalConfig::segments(4 << 10);
            cfg.storage.retention = true;
            cfg.storage.snapshots = SnapshotPolicy::every(40, 0);
            cfg.chaos.partitions = true;
            cfg.chaos.loss = 0.01;
        }
        Scenario::Restart => {
            c.graceful_stop = 0.7;
            c.process_crash = 0.3;
            cfg.storage.retention = true;
            cfg.storage.wal = WalConfig::segments(4 << 10);
        }
        Scenario::Hostile => {
            c.partitions = true;
            c.loss = 0.01;
            c.duplicate = 0.02;
            with_hostile(seed, &mut cfg, HOSTILE_PERCENT);
        }
    }
    if let Some(ms) = params.fault_every_ms {
        cfg.chaos.fault_every_ms = ms;
    }
    cfg.planted = params.planted;
    cfg
}

/// The `replica` and `failover` worlds: the crash world with the replica, loss and
/// partitions. Retention stays off (as in `crash_world`): the replica keeps nothing on disk
/// and rebuilds from UBSCore's first record after every kill.
fn replica_world(scenario: Scenario, seed: u64, cfg: &mut WorldConfig) {
    cfg.replica = scenario.has_replica();
    cfg.chaos.partitions = true;
    cfg.chaos.loss = 0.01;
    if scenario == Scenario::Failover {
        // The primary dies once 10–70 % of the commands are acknowledged.
        let mut r = sim::seed::rng(seed, sim::seed::Stream::Swarm);
        cfg.failover_at = Some(r.gen_range(0.1..=0.7));
    }
}

/// Adds market data to a world: the matching engine then logs order events (and
/// Settlement keeps the audit trail), and market data publishes often enough for short
/// runs to have many L2 books.
pub fn with_market_data(cfg: &mut WorldConfig) {
    cfg.markets = cfg.markets.clone().with_order_events(true);
    // A move of 5 basis points publishes an L2 book: the workload's best prices move that
    // much now and then (at 100, none ever did, and a broken move trigger went unseen).
    cfg.market_data = Some(MdConfig { depth: 10, l2_every: 50, move_bps: 5 });
}

/// Swarm testing: every rate drawn from the seed's swarm stream, so that a sweep covers
/// quiet runs, storms and everything between.
fn swarm(seed: u64, cfg: &mut WorldConfig) {
    let mut r = sim::seed::rng(seed, sim::seed::Stream::Swarm);
    // With probability `p` a rate in `0..hi`, else 0.
    fn maybe(r: &mut rand_chacha::ChaCha8Rng, p: f64, hi: f64) -> f64 {
        if r.gen_bool(p) { r.gen_range(0.0..hi) } else { 0.0 }
    }
    let (loss, duplicate) = (maybe(&mut r, 0.5, 0.05), maybe(&mut r, 0.5, 0.05));
    let (crash_in_recovery, corrupt_snapshot) = (maybe(&mut r, 0.3, 0.7), maybe(&mut r, 0.3, 0.6));
    let (eio_fsync, enospc, tear) =
        (maybe(&mut r, 0.3, 0.02), maybe(&mut r, 0.3, 0.02), maybe(&mut r, 0.8, 0.8));
    let fault_every_ms = [50, 150, 300, 1_000, 5_000][r.gen_range(0..5)];
    let crash_window = [5, 20, 60, 200][r.gen_range(0..4)];
    let snapshot_every = [20, 100, 400, 2_000][r.gen_range(0..4)];
    let partitions = r.gen_bool(0.5);
    let process_crash = maybe(&mut r, 0.5, 1.0);
    let media = maybe(&mut r, 0.2, 0.3);
    let (retention, tail_cache_bytes) = (r.gen_bool(0.3), [0, 4 << 10, 4 << 20][r.gen_range(0..3)]);
    cfg.chaos = Chaos {
        fault_every_ms,
        max_down_ms: 200,
        partitions,
        loss,
        duplicate,
        crash_window,
        crash_in_recovery,
        corrupt_snapshot,
        node_faults: true,
        process_crash,
        crash_on: None,
        media,
        graceful_stop: 0.0,
    };
    cfg.faults = FaultConfig {
        lose_write: (1.0 - tear) / 2.0,
        tear_write: tear,
        eio_fsync,
        enospc_write: enospc,
        ..FaultConfig::default()
    };
    cfg.storage.snapshots = SnapshotPolicy::every(snapshot_every, 0);
    cfg.storage.retention = retention;
    cfg.storage.wal.tail_cache_bytes = tail_cache_bytes;
    // Drawn last, so that every rate above stays what it was for each seed: the replica
    // (it rebuilds from UBSCore's whole log, so only without retention), and half of
    // those runs fail over.
    cfg.replica = !retention && r.gen_bool(0.3);
    if cfg.replica && r.gen_bool(0.5) {
        cfg.failover_at = Some(r.gen_range(0.1..=0.7));
    }
    // Market data, drawn after everything else for the same reason.
    if r.gen_bool(0.3) {
        with_market_data(cfg);
    }
    storage_knobs(&mut r, cfg);
    // Hostile commands in a third of the runs, drawn after the storage settings.
    if r.gen_bool(1.0 / 3.0) {
        with_hostile(seed, cfg, HOSTILE_PERCENT);
    }
    // Graceful stops in a third of the runs.
    if r.gen_bool(1.0 / 3.0) {
        cfg.chaos.graceful_stop = r.gen_range(0.1..0.7);
    }
    io_errors(&mut r, cfg);
}

/// Swarm's I/O errors, drawn after everything else: metadata EIO in a third of the runs,
/// then read and write EIO in a third (recoveries' reads of logs and snapshots fail too,
/// so a service must stop, read again or fall back).
fn io_errors(r: &mut rand_chacha::ChaCha8Rng, cfg: &mut WorldConfig) {
    if r.gen_bool(1.0 / 3.0) {
        cfg.faults.eio_metadata = r.gen_range(0.001..0.02);
    }
    if r.gen_bool(1.0 / 3.0) {
        cfg.faults.eio_read = r.gen_range(0.0002..0.003);
        cfg.faults.eio_write = r.gen_range(0.0001..0.0015);
    }
}

/// The share of hostile commands (percent) in `hostile` and the swarm runs that draw them.
pub const HOSTILE_PERCENT: u32 = 10;

/// Mixes hostile commands (`crate::hostile`) into the world's workload, from their own
/// stream, so that the workload's draws stay what they were.
fn with_hostile(seed: u64, cfg: &mut WorldConfig, percent: u32) {
    let mut rng = sim::seed::rng(seed, sim::seed::Stream::Hostile);
    let commands = std::mem::take(&mut cfg.commands);
    cfg.commands = crate::hostile::mix(&mut rng, commands, WORLD_USERS, percent);
    cfg.max_safety = safety_budget(cfg.commands.len());
}

/// The storage settings every other scenario leaves at one value, drawn last (after
/// everything above, so each seed's rates stay what they were): snapshots by simulated
/// time too (production's second trigger; 0 = by count only), a third snapshot kept (the
/// WAL then reaches back further), small segments (rotation and, with retention, removals
/// every few commits).
fn storage_knobs(r: &mut rand_chacha::ChaCha8Rng, cfg: &mut WorldConfig) {
    cfg.storage.snapshots.every_ms = SWARM_SNAPSHOT_MS[r.gen_range(0..SWARM_SNAPSHOT_MS.len())];
    cfg.storage.keep_snapshots = SWARM_KEEP_SNAPSHOTS[r.gen_range(0..SWARM_KEEP_SNAPSHOTS.len())];
    cfg.storage.wal.segment_bytes = SWARM_SEGMENT_BYTES[r.gen_range(0..SWARM_SEGMENT_BYTES.len())];
}

/// Swarm's snapshot intervals by simulated time, ms (0: by count only), by weight.
pub const SWARM_SNAPSHOT_MS: [u64; 4] = [0, 0, 300, 3_000];
/// Swarm's numbers of snapshots kept, by weight.
pub const SWARM_KEEP_SNAPSHOTS: [usize; 3] = [2, 2, 3];
/// Swarm's WAL segment sizes, bytes, by weight.
pub const SWARM_SEGMENT_BYTES: [u64; 3] = [64 << 10, 64 << 10, 4 << 10];

/// The users of a world's workload.
const WORLD_USERS: u64 = 50;

/// A world with the seeded workload, crashes of every service, torn and lost writes.
pub fn crash_world(seed: u64, commands: usize) -> WorldConfig {
    let mut wl = sim::seed::rng(seed, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands, users: WORLD_USERS });
    // A handful of snapshots per run, whatever its length: each one copies the state.
    let snapshot_every = (commands.len() as u64 / 6).max(200);
    let budget_for = commands.len();
    WorldConfig {
        seed,
        markets: workload::default_markets(),
        commands,
        clients: 4,
        chaos: Chaos { fault_every_ms: 300, max_down_ms: 200, node_faults: true, ..Chaos::none() },
        faults: FaultConfig::default(),
        storage: DurableConfig {
            wal: WalConfig::segments(64 << 10),
            snapshots: SnapshotPolicy::every(snapshot_every, 0),
            keep_snapshots: 2,
            retention: false,
        },
        keep_trace: false,
        full_recoveries: false,
        max_safety: safety_budget(budget_for),
        planted: None,
        plan: None,
        cancel: None,
        replica: false,
        failover_at: None,
        market_data: None,
    }
}

/// Simulated time a run's safety phase may take: about 5 ms of simulated time per command
/// in a quiet run, so 25 ms per command leaves room for storms of faults, and never less
/// than 10 minutes.
pub fn safety_budget(commands: usize) -> Duration {
    Duration::from_millis((commands as u64).saturating_mul(25)).max(Duration::from_secs(600))
}

/// Judges a finished world (see [`checker::judge`]). Returns the first violation.
pub fn check(result: &WorldResult, markets: &Markets) -> Result<(), Violation> {
    checker::judge(result, markets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A quiet run needs about 5 ms of simulated time per command (20,150 commands of
    /// baseline seed 1 take 89 s): the budget leaves four times that at every size, so a
    /// long run is not cut short into a false liveness failure.
    #[test]
    fn the_safety_budget_grows_with_the_run() {
        for commands in [100, 2_000, 24_000, 1_000_000, 10_000_000] {
            let quiet = Duration::from_millis(5 * commands as u64);
            assert!(safety_budget(commands) >= quiet * 4, "{commands} commands");
        }
        assert_eq!(safety_budget(1), Duration::from_secs(600));
        // The world's budget counts its whole workload (the commands and the deposits).
        let world = crash_world(0, 100_000);
        assert_eq!(world.max_safety, safety_budget(world.commands.len()));
        assert!(world.max_safety >= Duration::from_secs(2_500));
    }

    /// A sweep of swarm seeds reaches every value of every storage knob it draws, and
    /// combinations of them (time-triggered snapshots with retention on).
    #[test]
    fn swarm_reaches_every_storage_setting() {
        use std::collections::BTreeSet;
        let params = Params::default();
        let worlds: Vec<_> =
            (0..200).map(|s| world_config(Scenario::Swarm, s, 200, &params).storage).collect();
        let ms: BTreeSet<_> = worlds.iter().map(|s| s.snapshots.every_ms).collect();
        let keep: BTreeSet<_> = worlds.iter().map(|s| s.keep_snapshots).collect();
        let segments: BTreeSet<_> = worlds.iter().map(|s| s.wal.segment_bytes).collect();
        assert_eq!(ms, SWARM_SNAPSHOT_MS.into_iter().collect());
        assert_eq!(keep, SWARM_KEEP_SNAPSHOTS.into_iter().collect());
        assert_eq!(segments, SWARM_SEGMENT_BYTES.into_iter().collect());
        let timed_with_retention = worlds.iter().filter(|s| s.snapshots.every_ms > 0 && s.retention).count();
        assert!(
            timed_with_retention >= 10,
            "{timed_with_retention} worlds snapshot by time with retention on"
        );
        // The other scenarios keep one setting each: snapshots by count only.
        let crash = world_config(Scenario::Crash, 0, 200, &params).storage;
        assert_eq!((crash.snapshots.every_ms, crash.keep_snapshots), (0, 2));
    }

    /// Hostile commands come in the `hostile` world and in about a third of swarm's, on top
    /// of the same seeded workload; no other scenario has them.
    #[test]
    fn hostile_commands_are_mixed_into_hostile_and_some_swarm_worlds() {
        let params = Params::default();
        let plain = |seed| crash_world(seed, 200).commands.len();
        let hostile = world_config(Scenario::Hostile, 3, 200, &params);
        assert!(hostile.commands.len() > plain(3) + 10, "{} commands", hostile.commands.len());
        assert_eq!(hostile.max_safety, safety_budget(hostile.commands.len()));
        let swarm =
            (0..300).filter(|&s| world_config(Scenario::Swarm, s, 200, &params).commands.len() > plain(s));
        let drawn = swarm.count();
        assert!((60..=140).contains(&drawn), "{drawn} of 300 swarm worlds have hostile commands");
        for scenario in
            Scenario::ALL.into_iter().filter(|s| ![Scenario::Hostile, Scenario::Swarm].contains(s))
        {
            assert_eq!(world_config(scenario, 3, 200, &params).commands.len(), plain(3), "{scenario}");
        }
    }

    /// Metadata EIO comes in `metadata-eio` and in about a third of swarm's worlds, drawn
    /// last (each seed's other rates stay what they were); no other scenario has it.
    #[test]
    fn metadata_errors_come_in_metadata_eio_and_some_swarm_worlds() {
        let params = Params::default();
        let eio = |s, seed| world_config(s, seed, 200, &params).faults.eio_metadata;
        assert!(eio(Scenario::MetadataEio, 0) > 0.0);
        let drawn = (0..300).filter(|&seed| eio(Scenario::Swarm, seed) > 0.0).count();
        assert!((60..=140).contains(&drawn), "{drawn} of 300 swarm worlds have metadata errors");
        for scenario in
            Scenario::ALL.into_iter().filter(|s| ![Scenario::MetadataEio, Scenario::Swarm].contains(s))
        {
            assert_eq!(eio(scenario, 3), 0.0, "{scenario}");
        }
    }

    /// Read and write EIO come in `read-write-eio` and in about a third of swarm's worlds,
    /// drawn after everything else, so that every other draw of a seed stays what it was.
    #[test]
    fn read_and_write_errors_come_in_read_write_eio_and_some_swarm_worlds() {
        let params = Params::default();
        let rates = |s, seed| {
            let f = world_config(s, seed, 200, &params).faults;
            (f.eio_read, f.eio_write)
        };
        assert!(rates(Scenario::ReadWriteEio, 0).0 > 0.0);
        let drawn: Vec<u64> = (0..300).filter(|&seed| rates(Scenario::Swarm, seed).0 > 0.0).collect();
        assert!((60..=140).contains(&drawn.len()), "{} of 300 swarm worlds have read errors", drawn.len());
        assert!(drawn.iter().all(|&seed| rates(Scenario::Swarm, seed).1 > 0.0), "write errors with them");
        let metadata = |seed| world_config(Scenario::Swarm, seed, 200, &params).faults.eio_metadata;
        assert!(drawn.iter().any(|&seed| metadata(seed) > 0.0), "independent of metadata errors");
        assert!(drawn.iter().any(|&seed| metadata(seed) == 0.0), "independent of metadata errors");
        for scenario in
            Scenario::ALL.into_iter().filter(|s| ![Scenario::ReadWriteEio, Scenario::Swarm].contains(s))
        {
            assert_eq!(rates(scenario, 3), (0.0, 0.0), "{scenario}");
        }
    }
}
