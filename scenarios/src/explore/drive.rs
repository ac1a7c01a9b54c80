//! The explored workload: a few dozen seeded commands through the durable services in one
//! process (the in-process pipeline: UBSCore, Matching, Settlement with its audit trail,
//! market data; the markets publish order events), on one simulated disk with tiny segments,
//! frequent snapshots and retention on. A recording run logs every filesystem operation
//! and, for every command, the operation count when it was submitted and acknowledged
//! (and, after every round of the followers' pulls, what they would serve from then on);
//! the explorer sees the disk after every operation through a tap on it.

use super::served::{Marks, Served};
use engine::durable::pipeline::{FollowersConfig, PipelineConfig};
use engine::durable::{DurableConfig, DurableError, DurablePipeline, SnapshotPolicy};
use engine::market_data::MdConfig;
use engine::wal::WalConfig;
use engine::{Command, Markets};
use sim::fs::{Disk, FaultConfig, LoggedOp, NodeFs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The root of the services' directories on the explored disk.
pub fn root() -> PathBuf {
    PathBuf::from("/x")
}

/// What every run of one exploration shares.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The seed (workload and the disk's own stream).
    pub seed: u64,
    /// The markets.
    pub markets: Markets,
    /// The commands, in submission order.
    pub commands: Vec<Command>,
    /// Storage settings: tiny segments, snapshots every few entries, retention on.
    pub config: PipelineConfig,
}

/// Overrides of every storage's settings (none: each keeps the explored defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Storage {
    /// WAL segment size, bytes.
    pub segment_bytes: Option<u64>,
    /// Snapshot after this many entries.
    pub snapshot_every: Option<u64>,
    /// The followers pull after this many commands.
    pub pull_every: Option<u64>,
}

impl Storage {
    /// Each setting the smaller of this and `base` (an unset one is the explored default,
    /// never smaller than a set one).
    pub fn smallest(self, base: Storage) -> Storage {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Storage {
            segment_bytes: min(self.segment_bytes, base.segment_bytes),
            snapshot_every: min(self.snapshot_every, base.snapshot_every),
            pull_every: min(self.pull_every, base.pull_every),
        }
    }
}

/// Users of the explored workload (each starts with three deposits).
pub const USERS: u64 = 2;

/// The explored orders stand this many times closer to the mid than a sweep's, so that
/// most places cross: every crash state then has trades in flight to settle and publish.
pub const NARROW: u64 = 8;

impl Setup {
    /// The workload of `seed`: `commands` in all, the users' initial deposits included.
    pub fn new(seed: u64, commands: usize) -> Setup {
        let mut wl = sim::seed::rng(seed, sim::seed::Stream::Workload);
        let rest = commands.saturating_sub(USERS as usize * 3);
        let config = crate::workload::WorkloadConfig { commands: rest, users: USERS };
        let commands = crate::workload::generate_narrowed(&mut wl, &config, NARROW);
        let c = DurableConfig {
            wal: WalConfig { segment_bytes: 1024, tail_cache_bytes: 0 },
            snapshots: SnapshotPolicy::every(6, 0),
            keep_snapshots: 2,
            retention: true,
        };
        // Downstream snapshots come often enough that every service's retention moves; the
        // followers' too (counted in events, about two per command), yet not after every
        // pull (8 commands): what a follower serves then rests on its WAL alone.
        let followers = FollowersConfig {
            md: MdConfig { depth: 10, l2_every: 8, move_bps: 100 },
            market_data: DurableConfig { snapshots: SnapshotPolicy::every(12, 0), ..c },
            audit: DurableConfig { snapshots: SnapshotPolicy::every(9, 0), ..c },
            pull_every: 8,
        };
        let config = PipelineConfig {
            ubscore: c,
            matching: DurableConfig { snapshots: SnapshotPolicy::every(3, 0), ..c },
            settlement: DurableConfig { snapshots: SnapshotPolicy::every(2, 0), ..c },
            followers: Some(followers),
        };
        let markets = crate::workload::default_markets().with_order_events(true);
        Setup { seed, markets, commands, config }
    }

    /// The workload with hostile commands mixed in (`crate::hostile`: `percent` in 100
    /// after each command, from their own stream), cut back to its length, so that the
    /// same seed explores the same number of commands.
    pub fn with_hostile(mut self, percent: u32) -> Setup {
        if percent > 0 {
            let users = USERS;
            let len = self.commands.len();
            let mut rng = sim::seed::rng(self.seed, sim::seed::Stream::Hostile);
            self.commands = crate::hostile::mix(&mut rng, std::mem::take(&mut self.commands), users, percent);
            self.commands.truncate(len);
        }
        self
    }

    /// Only the commands at `keep` (indices into the seeded workload, in its order), when
    /// given: a shrunk workload. Indices beyond the workload are ignored (validated by the
    /// command line).
    pub fn keeping(mut self, keep: Option<&[usize]>) -> Setup {
        if let Some(keep) = keep {
            let all = std::mem::take(&mut self.commands);
            let kept: std::collections::BTreeSet<usize> = keep.iter().copied().collect();
            self.commands =
                all.into_iter().enumerate().filter(|(i, _)| kept.contains(i)).map(|(_, c)| c).collect();
        }
        self
    }

    /// Every storage with `storage`'s WAL segment size and snapshot interval instead of its
    /// own, and the followers with its lag, where given (a shrunk failure needs fewer
    /// commands to reach a rare phase).
    pub fn with_storage(mut self, storage: Storage) -> Setup {
        let set = |c: &mut DurableConfig| {
            if let Some(bytes) = storage.segment_bytes {
                c.wal.segment_bytes = bytes;
            }
            if let Some(n) = storage.snapshot_every {
                c.snapshots = SnapshotPolicy::every(n, 0);
            }
        };
        let cfg = &mut self.config;
        set(&mut cfg.ubscore);
        set(&mut cfg.matching);
        set(&mut cfg.settlement);
        if let Some(f) = cfg.followers.as_mut() {
            set(&mut f.market_data);
            set(&mut f.audit);
            f.pull_every = storage.pull_every.unwrap_or(f.pull_every);
        }
        self
    }

    /// A fresh disk that never fails on its own (the explorer resolves every crash).
    pub fn disk(&self) -> Arc<Mutex<Disk>> {
        let config = FaultConfig { latency_us: 0, ..FaultConfig::perfect() };
        Arc::new(Mutex::new(Disk::new(config, sim::seed::rng(self.seed, sim::seed::Stream::Disk))))
    }

    /// Opens (recovers) the services on `disk` and lets them catch up.
    pub fn open(&self, disk: &Arc<Mutex<Disk>>) -> Result<DurablePipeline, DurableError> {
        let fs = Arc::new(NodeFs::detached(disk.clone()));
        DurablePipeline::open(fs, &root(), self.markets.clone(), self.config, 0).map(|(p, _)| p)
    }
}

/// When each command was submitted and acknowledged, in operations of the disk.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Operations done when command `i` was submitted.
    pub started_at: Vec<u64>,
    /// Operations done when command `i`'s acknowledgement came back.
    pub acked_at: Vec<u64>,
    /// What the followers served: their durable watermarks, recorded after every round of
    /// their pulls.
    pub served: Served,
}

impl Progress {
    /// Commands acknowledged while operations `1..=last_ok` succeeded: a run that dies
    /// before operation `last_ok + 1` (or after operation `last_ok + 1` took effect, which
    /// the engine sees fail) acknowledged exactly these.
    pub fn acked(&self, last_ok: u64) -> usize {
        self.acked_at.iter().filter(|a| **a <= last_ok).count()
    }

    /// Commands whose first operation could have been issued before the death at operation
    /// `k`: no later command can be durable.
    pub fn attempted(&self, k: u64) -> usize {
        self.started_at.iter().filter(|s| **s < k).count()
    }
}

/// What the clients and the followers' readers knew at a crash: commands acknowledged and
/// submitted, and what the followers had served.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    /// Commands acknowledged.
    pub acked: usize,
    /// Commands submitted.
    pub attempted: usize,
    /// What the followers had served.
    pub served: Marks,
}

impl Progress {
    /// What was known at a death while operations `1..=last_ok` had succeeded and `limit`
    /// was the next.
    pub fn known(&self, last_ok: u64, limit: u64) -> Known {
        Known {
            acked: self.acked(last_ok),
            attempted: self.attempted(limit),
            served: self.served.by(last_ok),
        }
    }
}

/// Runs the workload on `disk` until it ends (every follower caught up) or the disk dies.
pub fn drive(
    setup: &Setup,
    disk: &Arc<Mutex<Disk>>,
    on_ack: &dyn Fn(u64, &Disk),
) -> (Progress, Result<(), DurableError>) {
    drive_stopping(setup, disk, None, on_ack)
}

/// [`drive`], with a graceful stop of every service after the first `stop_after` commands
/// (when given): their snapshots written, the services opened again on the same disk, and
/// the rest of the workload submitted to them.
pub fn drive_stopping(
    setup: &Setup,
    disk: &Arc<Mutex<Disk>>,
    stop_after: Option<usize>,
    on_ack: &dyn Fn(u64, &Disk),
) -> (Progress, Result<(), DurableError>) {
    let mut progress = Progress::default();
    let served = Arc::new(Mutex::new(Served::default()));
    let result = submit_all(setup, disk, &served, stop_after, &mut progress, on_ack);
    progress.served = std::mem::take(&mut *served.lock().unwrap_or_else(|e| e.into_inner()));
    (progress, result)
}

/// Opens the services on `disk`, the followers' commits recorded into `served`.
fn open_observed(
    setup: &Setup,
    disk: &Arc<Mutex<Disk>>,
    served: &Arc<Mutex<Served>>,
) -> Result<DurablePipeline, DurableError> {
    let mut p = setup.open(disk)?;
    let (sink, at) = (served.clone(), disk.clone());
    p.on_followers_commit(Box::new(move |f| {
        let marks = Marks::of_followers(f);
        sink.lock().unwrap_or_else(|e| e.into_inner()).record(ops(&at), marks);
    }));
    Ok(p)
}

/// Submits every command (stopping and reopening the services after `stop_after` of them),
/// then lets the followers pull what the last ones made (so that their last commits are
/// explored too).
fn submit_all(
    setup: &Setup,
    disk: &Arc<Mutex<Disk>>,
    served: &Arc<Mutex<Served>>,
    stop_after: Option<usize>,
    progress: &mut Progress,
    on_ack: &dyn Fn(u64, &Disk),
) -> Result<(), DurableError> {
    let mut p = open_observed(setup, disk, served)?;
    for (i, command) in setup.commands.iter().enumerate() {
        progress.started_at.push(ops(disk));
        p.submit(*command, i as u64)?;
        progress.acked_at.push(ops(disk));
        {
            let d = disk.lock().unwrap_or_else(|e| e.into_inner());
            on_ack(d.ops(), &d);
        }
        if stop_after == Some(i + 1) {
            p.stop(i as u64)?;
            p = open_observed(setup, disk, served)?;
        }
    }
    p.converge(0)
}

/// Operations the disk has done.
fn ops(disk: &Arc<Mutex<Disk>>) -> u64 {
    disk.lock().unwrap_or_else(|e| e.into_inner()).ops()
}

/// What the one run of an exploration did.
pub struct Recorded {
    /// Every filesystem operation, in order.
    pub ops: Vec<LoggedOp>,
    /// When each command was submitted and acknowledged, and what the followers served.
    pub progress: Progress,
    /// How the workload ended.
    pub result: Result<(), DurableError>,
    /// The disk it left, every service alive (its pending state unresolved).
    pub disk: Disk,
}

/// The one run of an exploration: records every operation and the workload's progress,
/// and hands `tap` the disk after every operation (the crash state "just after k"). A run
/// that fails without any crash (a bug no crash is needed for) still returns what it did.
pub fn record(setup: &Setup, tap: Option<sim::fs::Tap>, on_ack: &dyn Fn(u64, &Disk)) -> Recorded {
    let disk = setup.disk();
    {
        let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
        d.record_ops();
        d.set_tap(tap);
    }
    let (progress, result) = drive(setup, &disk, on_ack);
    let mut d = disk.lock().unwrap_or_else(|e| e.into_inner());
    d.set_tap(None);
    Recorded { ops: d.op_log().to_vec(), progress, result, disk: d.snapshot_copy() }
}

/// Every service's directory under [`root`], in the order of the pipeline's recoveries.
pub const SERVICES: [&str; 5] = ["ubscore", "matching", "settlement", "market-data", "settlement/audit"];

/// A service's directory on the explored disk.
pub fn service_dir(service: &str) -> PathBuf {
    root().join(service)
}
