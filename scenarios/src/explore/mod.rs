//! `exsim explore`: bounded exhaustive crash-state exploration over the real storage code
//! (ALICE / CrashMonkey style, on the simulator's disk). A small seeded workload runs
//! through every durable service (UBSCore, Matching, Settlement with its audit trail,
//! market data); for every filesystem operation k, the disk as it
//! is just after k took effect (the same disk as just before k + 1) has its pending state
//! resolved every bounded way ([`states::resolutions`]); the services recover from each
//! resulting disk and the oracle judges them. Each distinct disk is then recovered again
//! with a crash at every operation of its recovery (power failure or process crash), up to
//! `recovery_depth` nested crashes: a recovery cut short and redone must land on the same
//! history.

pub mod drive;
pub mod errors;
mod fanout;
pub mod followers;
pub mod oracle;
pub mod pace;
pub mod queries;
pub mod served;
pub mod shrink;
pub mod standby;
pub mod states;
pub mod stops;

use crate::checker::Violation;
use drive::{Known, Progress, Setup};
use oracle::Oracle;
use serde::Serialize;
use served::Marks;
use sim::fs::{Disk, Fate, LoggedOp, Media};
use sim::media::Target;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What to explore.
#[derive(Clone, Debug)]
pub struct ExploreConfig {
    /// Workload seed.
    pub seed: u64,
    /// Commands in the workload (initial deposits included).
    pub commands: usize,
    /// Deviations from "all kept" combined per resolution.
    pub depth: usize,
    /// Nested crashes inside recoveries.
    pub recovery_depth: usize,
    /// Only these crash states: to reproduce one failure, or to shrink one.
    pub only: Option<Only>,
    /// Only these commands of the seeded workload, by index (a shrunk workload).
    pub keep: Option<Vec<usize>>,
    /// Storage settings overridden for every service (a shrunk failure).
    pub storage: drive::Storage,
    /// Worker threads.
    pub jobs: usize,
    /// A bug planted in the engine.
    pub planted: Option<engine::bugs::Bug>,
    /// Hostile commands mixed into the workload, percent (0: none; see `crate::hostile`).
    pub hostile: u32,
}

impl ExploreConfig {
    /// The seeded workload this exploration runs, before `keep` and `storage`.
    pub fn workload(&self) -> drive::Setup {
        drive::Setup::new(self.seed, self.commands).with_hostile(self.hostile)
    }
}

/// A restriction of the crash states explored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Only {
    /// What is explored, all when `None`: the crash points before and after these
    /// operations (1-based), the fsync errors and media faults at them, the standby's runs
    /// with these pulls' replies lost or a failover after these commands.
    pub ops: Option<BTreeSet<u64>>,
    /// Which family of crash state is explored at them (all when `None`).
    pub family: Option<Family>,
}

/// The families of crash state an exploration judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// A crash point with its pending state resolved.
    CrashPoint,
    /// An fsync failing with EIO.
    FsyncError,
    /// An operation failing with its kind's I/O error, in a run of its own that goes on
    /// as the engine decides.
    IoError,
    /// Media damage at rest after an acknowledgement.
    Media,
    /// The recorded run itself, without any crash.
    Run,
    /// A run with the hot standby, the reply to one of its pulls lost.
    LostReply,
    /// A run with the hot standby, promoted after one command.
    Failover,
    /// A run with a graceful stop of every service after one command.
    Stop,
}

impl Only {
    /// Both crash points at operation `op`, every family: what `--at` reproduces.
    pub fn at(op: u64) -> Only {
        Only { ops: Some(BTreeSet::from([op])), family: None }
    }

    /// Whether the state at `k` is wanted for `family`: for crash points the disk after
    /// operation `k` (= before `k + 1`), for fsync errors and media faults operation `k`
    /// itself, for the standby's runs pull or command `k`.
    fn wants(only: Option<&Only>, k: u64, family: Family) -> bool {
        only.is_none_or(|o| {
            let at = o.ops.as_ref().is_none_or(|ops| {
                ops.contains(&k) || (family == Family::CrashPoint && ops.contains(&(k + 1)))
            });
            o.family.is_none_or(|f| f == family) && at
        })
    }
}

impl Family {
    /// Every family, in the order an exploration judges them.
    pub const ALL: [Family; 8] = [
        Family::CrashPoint,
        Family::FsyncError,
        Family::IoError,
        Family::Media,
        Family::LostReply,
        Family::Failover,
        Family::Stop,
        Family::Run,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::CrashPoint => "crash-point",
            Family::FsyncError => "fsync-error",
            Family::IoError => "io-error",
            Family::Media => "media",
            Family::LostReply => "lost-reply",
            Family::Failover => "failover",
            Family::Stop => "stop",
            Family::Run => "run",
        }
    }
}

/// One failing crash state.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreFailure {
    /// The operation (1-based) and whether the crash came before or after its effect.
    pub op: u64,
    /// The family of the crash state.
    pub family: Family,
    /// `before` or `after`.
    pub when: &'static str,
    /// The coverage cell of that crash point.
    pub cell: String,
    /// How the pending state was resolved.
    pub resolution: String,
    /// The crash inside the recovery, if the failure needed one.
    pub recovery_crash: Option<String>,
    /// What the oracle found.
    pub violation: Violation,
}

/// What an exploration did and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExploreReport {
    /// Commands in the workload.
    pub commands: usize,
    /// Filesystem operations of the workload.
    pub ops: u64,
    /// Crash points explored (operations × before/after).
    pub crash_points: u64,
    /// Crash states judged (crash points × resolutions of their pending state).
    pub states: u64,
    /// Distinct disks recovered (states with equal durable contents are recovered once).
    pub distinct_disks: u64,
    /// Recoveries crashed at one of their own operations and redone.
    pub recovery_crashes: u64,
    /// fsyncs explored as failing with EIO (each followed by a process restart).
    pub fsync_errors: u64,
    /// Operations explored as failing with an I/O error, each in a run of its own.
    pub io_errors: u64,
    /// Disks damaged at rest after a commit (one media fault each).
    pub media_faults: u64,
    /// Of those, the ones a service refused to open naming the damage (allowed).
    pub detected: u64,
    /// Runs with the hot standby, one pull's reply lost in each.
    pub lost_replies: u64,
    /// Runs with a failover to the hot standby, one per command.
    pub failovers: u64,
    /// Runs with a graceful stop of every service, one per command.
    pub stops: u64,
    /// Crash states judged before the first failure (in operation order), if any failed.
    pub states_until_first_failure: Option<u64>,
    /// Crash points per coverage cell.
    pub coverage: BTreeMap<String, u64>,
    /// Failures: the crash states' in operation order, then the standby's runs', then the
    /// recorded run's.
    pub failures: Vec<ExploreFailure>,
    /// Wall time, milliseconds.
    pub wall_ms: u64,
}

/// What recovering one distinct disk gave: the commands it recovered (or the violation),
/// and the violation of a crashed-and-redone recovery of it, if any.
#[derive(Clone, Debug)]
struct Outcome {
    recovered: Result<usize, Violation>,
    /// What each service's recovery held before pulling (zero when it failed).
    marks: Marks,
    /// Per follower, the least a crashed-and-redone recovery held, and how: a follower
    /// must keep what it served however often its recovery is cut short.
    nested_marks: served::Least,
    nested: Option<(String, Violation)>,
    nested_states: u64,
    /// Crash points inside its recovery, per coverage cell.
    cells: BTreeMap<String, u64>,
    /// On a disk with unsettled data (a process crash's page cache), a recovery cut short
    /// may legitimately lose what was never durable: the fewest history entries a redone
    /// recovery found, and how; judged against what the clients were acknowledged.
    nested_least: Option<(String, usize)>,
}

impl Outcome {
    /// A recovery's outcome before (or without) crashes inside it.
    fn unnested(recovered: Result<usize, Violation>, marks: Marks) -> Outcome {
        Outcome {
            recovered,
            marks,
            nested_marks: Default::default(),
            nested: None,
            nested_states: 0,
            cells: BTreeMap::new(),
            nested_least: None,
        }
    }
}

/// The media faults struck at rest after each commit: (target, kind, aim seed). Aimed at
/// the last group (a lost or flipped commit), at record headers and payloads, at segment
/// headers and at snapshot files.
const STRIKES: [(Target, Media, u64); 7] = [
    (Target::LastCommit, Media::BitFlip, 1),
    (Target::LastCommit, Media::LostWrite, 1),
    (Target::RecordHeader, Media::BitFlip, 1),
    (Target::Anywhere, Media::BitFlip, 1),
    (Target::Anywhere, Media::BitFlip, 2),
    (Target::SegmentHeader, Media::BitFlip, 1),
    (Target::Snapshot, Media::BitFlip, 1),
];

/// One disk damaged at rest, recovered: `Ok(None)` when a service refused to open naming
/// the damage, `Ok(Some((h, marks)))` the history it recovered and what the followers held.
struct Damaged {
    label: String,
    outcome: Result<Option<(usize, Marks)>, Violation>,
}

/// The disk just after operation k (= just before k + 1), each resolution's outcome.
struct AtK {
    resolutions: Vec<(String, Outcome)>,
}

struct Explorer<'a> {
    cfg: &'a ExploreConfig,
    setup: Setup,
    oracle: Oracle,
    /// Outcomes by (disk fingerprint, recovery depth explored).
    cache: Mutex<BTreeMap<(u64, usize), Outcome>>,
}

/// Runs an exploration; `tick(done, total)` reports progress over operations (the total
/// is known only at the end: until then it is the operations seen so far).
pub fn explore(cfg: &ExploreConfig, tick: &(dyn Fn(u64, u64) + Sync)) -> ExploreReport {
    let started = std::time::Instant::now();
    engine::bugs::plant(cfg.planted);
    let setup = cfg.workload().keeping(cfg.keep.as_deref()).with_storage(cfg.storage);
    let ex = Explorer { cfg, oracle: Oracle::new(&setup), setup, cache: Mutex::new(BTreeMap::new()) };
    // Shared with the disk's tap, which must own what it holds.
    let only = Arc::new(cfg.only.clone());
    let wanted = move |k: u64, family: Family| Only::wants(only.as_ref().as_ref(), k, family);
    let (recorded, recovered) = fanout::record_and_recover(&ex, wanted.clone(), tick);
    let mut report = ExploreReport {
        commands: ex.setup.commands.len(),
        ops: recorded.ops.len() as u64,
        ..ExploreReport::default()
    };
    ex.judge_recovered(recovered, &recorded, &wanted, &mut report);
    report.failures.sort_by_key(|f| f.op);
    ex.judge_after_states(&recorded, &wanted, &mut report);
    ex.count_disks(&mut report);
    report.wall_ms = started.elapsed().as_millis() as u64;
    report
}

/// Records a failure of the recorded run (`cell`: itself, or its snapshots) as the state
/// judged last.
fn run_failure(report: &mut ExploreReport, cell: &str, resolution: String, violation: Violation) {
    report.states_until_first_failure.get_or_insert(report.states);
    report.failures.push(ExploreFailure {
        family: Family::Run,
        op: report.ops,
        when: "without a crash",
        cell: cell.into(),
        resolution,
        recovery_crash: None,
        violation,
    });
}

/// The coverage cell of a crash at operation `op` (1-based).
fn cell(ops: &[LoggedOp], op: u64, before: bool) -> Option<String> {
    let logged = ops.get(op.checked_sub(1)? as usize)?;
    Some(sim::coverage::cell(&sim::fs::service_of(&logged.path), logged.phase, logged.kind, before))
}

impl Explorer<'_> {
    /// Judges what the workers recovered, family by family in their order (crash points,
    /// fsync errors, failing operations, recoveries with one, media damage), and runs and
    /// judges the failing operations' own runs in their place.
    fn judge_recovered(
        &self,
        recovered: fanout::Recovered,
        recorded: &drive::Recorded,
        wanted: &(dyn Fn(u64, Family) -> bool + Sync),
        report: &mut ExploreReport,
    ) {
        let (ops, progress) = (&recorded.ops, &recorded.progress);
        for (k, at) in recovered.after {
            let failures = self.judge(k, &at, ops, progress, report);
            if report.states_until_first_failure.is_none() && !failures.is_empty() {
                report.states_until_first_failure = Some(report.states);
            }
            report.failures.extend(failures);
        }
        for (k, (path, outcome)) in recovered.fsync_errors {
            report.fsync_errors += 1;
            report.states += 1;
            if let Some(f) = self.judge_fsync_error(k, &path, &outcome, progress) {
                report.states_until_first_failure.get_or_insert(report.states);
                report.failures.push(f);
            }
        }
        self.io_errors(ops, wanted, report);
        for (k, outcomes) in recovered.recovery_errors {
            self.judge_recovery_errors(k, outcomes, progress, report);
        }
        for (k, outcomes) in recovered.damage {
            self.judge_media(k, outcomes, progress, report);
        }
    }

    /// The runs judged after every crash state: the standby's, the graceful stops', the
    /// recorded run's snapshots and, last, the recorded run itself.
    fn judge_after_states(
        &self,
        recorded: &drive::Recorded,
        wanted: &(dyn Fn(u64, Family) -> bool + Sync),
        report: &mut ExploreReport,
    ) {
        // A recorded run that fails by itself fails every run with the standby the same way.
        if recorded.result.is_ok() {
            self.standby(report);
            self.stops(wanted, report);
        }
        // Like the recorded run's own failure, judged whatever operations are explored.
        let run_wanted = self.cfg.only.as_ref().is_none_or(|o| o.family.is_none_or(|f| f == Family::Run));
        if recorded.result.is_ok() && run_wanted {
            self.pace(recorded, report);
        }
        if let Err(e) = &recorded.result {
            // Judged last: every crash state before the failure was explored first.
            let what = format!(
                "command #{} of the workload failed",
                recorded.progress.started_at.len().saturating_sub(1)
            );
            let violation = Violation::ServiceError { service: "pipeline".into(), error: e.to_string() };
            run_failure(report, "the recorded run itself", what, violation);
        }
    }

    /// Counts the distinct disks recovered, the recoveries crashed inside them and their
    /// coverage cells, from the cache of outcomes.
    fn count_disks(&self, report: &mut ExploreReport) {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        report.distinct_disks = cache.keys().map(|(fp, _)| *fp).collect::<BTreeSet<_>>().len() as u64;
        report.recovery_crashes = cache.values().map(|o| o.nested_states).sum();
        for o in cache.values() {
            for (c, n) in &o.cells {
                *report.coverage.entry(c.clone()).or_default() += n;
            }
        }
    }

    /// The workload again with the hot standby: without a fault, then every pull's reply
    /// lost once, a failover after every command; judged after the crash states (they are
    /// counted after them).
    fn standby(&self, report: &mut ExploreReport) {
        use standby::StandbyFault;
        let only = self.cfg.only.as_ref();
        let wanted = |family, n| Only::wants(only, n, family);
        let family_wanted = |family| only.is_none_or(|o| o.family.is_none_or(|f| f == family));
        if !family_wanted(Family::LostReply) && !family_wanted(Family::Failover) {
            return;
        }
        // The run without a fault counts the pulls; it is judged as "pull 0" of the lost replies.
        let mut runs = Vec::new();
        let mut pulls = 0;
        if family_wanted(Family::LostReply) {
            let clean = standby::run(&self.setup, &self.oracle, StandbyFault::None);
            pulls = clean.pulls;
            if wanted(Family::LostReply, 0) {
                runs.push((Family::LostReply, 0, clean.verdict, "the replica without a fault".to_string()));
            }
        }
        let n = self.setup.commands.len() as u64;
        for (family, k) in (1..=pulls)
            .map(|j| (Family::LostReply, j))
            .chain((1..=n).map(|i| (Family::Failover, i)))
            .filter(|(family, k)| wanted(*family, *k))
        {
            let (fault, what) = match family {
                Family::LostReply => {
                    (StandbyFault::LostReply(k), format!("the reply to the replica's pull {k} lost"))
                }
                _ => (StandbyFault::Failover(k as usize), format!("failover after command {k}")),
            };
            runs.push((family, k, standby::run(&self.setup, &self.oracle, fault).verdict, what));
        }
        for (family, k, verdict, what) in runs {
            match (family, k) {
                (Family::LostReply, 0) => {}
                (Family::LostReply, _) => report.lost_replies += 1,
                _ => report.failovers += 1,
            }
            // Every run is a judged state, the one without a fault included.
            report.states += 1;
            if let Err(violation) = verdict {
                report.states_until_first_failure.get_or_insert(report.states);
                report.failures.push(ExploreFailure {
                    op: k,
                    family,
                    when: "in a run",
                    cell: what.clone(),
                    resolution: what,
                    recovery_crash: None,
                    violation,
                });
            }
        }
    }

    /// The recorded run's snapshots against their policy ([`pace`]) and the files it left
    /// against the hygiene rules ([`pace::hygiene`]), judged as one state.
    fn pace(&self, recorded: &drive::Recorded, report: &mut ExploreReport) {
        report.states += 1;
        if let Err(violation) = pace::check(&self.setup, &recorded.ops, &recorded.progress, &recorded.disk) {
            let what = "the snapshots taken, against the entries logged".to_string();
            run_failure(report, "the recorded run's snapshots", what, violation);
        } else if let Err(violation) = pace::hygiene(&self.setup, &recorded.disk) {
            let what = "the files left, against the storage settings".to_string();
            run_failure(report, "the recorded run's files", what, violation);
        }
    }

    /// The verdicts on the disk after operation `k`, as the crash after `k` and the crash
    /// before `k + 1` (the clients knew more acknowledgements at the second); counts them.
    fn judge(
        &self,
        k: u64,
        at: &AtK,
        ops: &[LoggedOp],
        progress: &Progress,
        report: &mut ExploreReport,
    ) -> Vec<ExploreFailure> {
        let mut failures = Vec::new();
        for (op, before, last_ok, limit) in [(k, false, k.saturating_sub(1), k), (k + 1, true, k, k + 1)] {
            let Some(cell) = cell(ops, op, before) else { continue };
            if self.cfg.only.as_ref().and_then(|o| o.ops.as_ref()).is_some_and(|ops| !ops.contains(&op)) {
                continue;
            }
            report.crash_points += 1;
            *report.coverage.entry(cell.clone()).or_default() += 1;
            let known = progress.known(last_ok, limit);
            for (label, outcome) in &at.resolutions {
                report.states += 1;
                if let Some((recovery_crash, violation)) = self.verdict(outcome, &known) {
                    failures.push(ExploreFailure {
                        family: Family::CrashPoint,
                        op,
                        when: if before { "before" } else { "after" },
                        cell: cell.clone(),
                        resolution: label.clone(),
                        recovery_crash,
                        violation,
                    });
                }
            }
        }
        failures
    }

    /// The verdicts on the disks struck at rest right after the acknowledgement at
    /// operation `k`: everything acknowledged (and served) by then must survive or be
    /// refused loudly.
    fn judge_media(&self, k: u64, outcomes: Vec<Damaged>, progress: &Progress, report: &mut ExploreReport) {
        let known = progress.known(k, k + 1);
        for d in outcomes {
            report.media_faults += 1;
            report.states += 1;
            report.detected += u64::from(matches!(d.outcome, Ok(None)));
            let verdict = d.outcome.and_then(|recovered| match recovered {
                None => Ok(()),
                Some((h, marks)) => self
                    .oracle
                    .placed(&self.setup, h, known.acked, known.attempted)
                    .and_then(|()| served::check(known.served, marks))
                    .map_err(|v| Violation::SilentCorruption { found: Box::new(v) }),
            });
            if let Err(violation) = verdict {
                report.states_until_first_failure.get_or_insert(report.states);
                report.failures.push(ExploreFailure {
                    family: Family::Media,
                    op: k,
                    when: "after",
                    cell: format!("media at rest after operation {k}"),
                    resolution: d.label,
                    recovery_crash: None,
                    violation,
                });
            }
        }
    }

    /// `disk` just after an acknowledgement, struck in each service's files once per
    /// [`STRIKES`] entry, and recovered.
    fn damaged(&self, disk: &Disk) -> Vec<Damaged> {
        let strikes = drive::SERVICES.into_iter().flat_map(|s| STRIKES.map(|x| (s, x)));
        strikes
            .filter_map(|(service, (target, media, aim))| {
                let mut d = disk.snapshot_copy();
                let what =
                    sim::media::strike_storage(&mut d, &drive::service_dir(service), target, media, aim)?;
                let outcome = self.oracle.recover_damaged(&self.setup, &Arc::new(Mutex::new(d)));
                Some(Damaged { label: what, outcome })
            })
            .collect()
    }

    /// The finding on an outcome, given what the clients knew, if any: (the recovery crash
    /// that exposed it, if one did; the violation).
    fn verdict(&self, o: &Outcome, known: &Known) -> Option<(Option<String>, Violation)> {
        let placed = |h| self.oracle.placed(&self.setup, h, known.acked, known.attempted);
        if let Err(v) =
            o.recovered.clone().and_then(placed).and_then(|_| served::check(known.served, o.marks))
        {
            return Some((None, v));
        }
        if let Some((what, least)) = &o.nested_least {
            if let Err(v) = placed(*least) {
                return Some((Some(what.clone()), v));
            }
        }
        if let Some((what, v)) = o.nested_marks.check(known.served) {
            return Some((Some(what), v));
        }
        o.nested.clone().map(|(what, v)| (Some(what), v))
    }

    /// An fsync failed (EIO, its writes dropped but still in the page cache) and the
    /// service restarts as a process: the recovery, then a crash or power failure at every
    /// operation of it and after it, must keep what it recovered.
    fn after_fsync_error(&self, mut disk: Disk) -> Outcome {
        disk.revive();
        self.outcome(disk, self.cfg.recovery_depth.max(1), true)
    }

    /// The verdict on a failed fsync at operation `k`.
    fn judge_fsync_error(
        &self,
        k: u64,
        path: &str,
        o: &Outcome,
        progress: &Progress,
    ) -> Option<ExploreFailure> {
        let (recovery_crash, violation) = self.verdict(o, &progress.known(k - 1, k))?;
        Some(ExploreFailure {
            family: Family::FsyncError,
            op: k,
            when: "fails",
            cell: format!("fsync {path} (EIO)"),
            resolution: "fsync failed with EIO, the service restarted (page cache kept)".into(),
            recovery_crash,
            violation,
        })
    }

    /// Every resolution of `crashed` (the disk just after some operation), recovered.
    fn at_k(&self, crashed: Disk) -> AtK {
        let items = crashed.pending_items();
        let resolutions = states::resolutions(&items, self.cfg.depth)
            .into_iter()
            .map(|res| {
                let mut disk = crashed.clone();
                disk.power_fail_scripted(&|i| res.fates.get(i).copied().unwrap_or(Fate::Keep));
                disk.revive();
                let nested = res.label == "all kept" || res.label == "all lost";
                (res.label, self.outcome(disk, self.cfg.recovery_depth, nested))
            })
            .collect();
        AtK { resolutions }
    }

    /// Recovers `disk` (cached by its contents) and, when `nested` and `depth` allow, every
    /// recovery of it crashed at each of its operations.
    fn outcome(&self, disk: Disk, depth: usize, nested: bool) -> Outcome {
        // An outcome is a function of the disk and the depth explored: cached under both,
        // so that no verdict depends on which worker got to a disk first.
        let fp = disk.fingerprint();
        let depth = if nested { depth } else { 0 };
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let reused = {
            let cache = lock();
            if let Some(o) = cache.get(&(fp, depth)) {
                return o.clone();
            }
            // The recovery itself depends on the disk alone: one made for another depth serves.
            cache.range((fp, 0)..=(fp, usize::MAX)).next().map(|(_, o)| (o.recovered.clone(), o.marks))
        };
        let (recovered, marks) = reused.unwrap_or_else(|| {
            match self.oracle.recover_marked(&self.setup, &Arc::new(Mutex::new(disk.clone()))) {
                Ok((h, marks)) => (Ok(h), marks),
                Err(v) => (Err(v), Marks::default()),
            }
        });
        let mut o = Outcome::unnested(recovered, marks);
        if depth > 0 {
            if let Ok(h) = o.recovered {
                self.crash_recoveries(&disk, h, depth, &mut o);
            }
        }
        lock().insert((fp, depth), o.clone());
        o
    }

    /// Crashes the recovery of `disk` after each of its operations (= before the next), as
    /// a process crash that keeps what is pending and as a power failure that loses it; the
    /// recovery redone must land on the same `h` history entries and pass the oracle.
    fn crash_recoveries(&self, disk: &Disk, h: usize, depth: usize, o: &mut Outcome) {
        let states: Arc<Mutex<Vec<Disk>>> = Arc::new(Mutex::new(Vec::new()));
        let d = {
            let mut d = disk.snapshot_copy();
            d.record_ops();
            let sink = states.clone();
            d.set_tap(Some(sim::fs::Tap(Arc::new(move |_, now: &Disk| {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(now.snapshot_copy());
            }))));
            Arc::new(Mutex::new(d))
        };
        // A recovery that panics is judged where the oracle recovers the same disk.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.setup.open(&d)));
        // A recovery of durable data must find the same history however often it is cut
        // short; with data only in the page cache, it may find less (never less than acked).
        let settled = disk.settled();
        let ops = d.lock().unwrap_or_else(|e| e.into_inner()).op_log().to_vec();
        let states = std::mem::take(&mut *states.lock().unwrap_or_else(|e| e.into_inner()));
        for (j, state) in states.into_iter().enumerate() {
            let j = j as u64 + 1;
            for (op, before) in [(j, false), (j + 1, true)] {
                if let Some(c) = cell(&ops, op, before) {
                    *o.cells.entry(c).or_default() += 1;
                }
            }
            for power in [false, true] {
                let mut crashed = state.clone();
                if power {
                    crashed.power_fail_scripted(&|_| Fate::Lose);
                }
                crashed.revive();
                o.nested_states += 1;
                let what = format!(
                    "recovery crashed after its operation {j} ({})",
                    if power { "power failure, pending lost" } else { "process crash" }
                );
                let again = self.outcome(crashed, depth - 1, true);
                o.nested_marks.lower(
                    &what,
                    again.recovered.is_ok().then_some(again.marks),
                    &again.nested_marks,
                );
                if let (Ok(q), false) = (&again.recovered, settled) {
                    if o.nested_least.as_ref().is_none_or(|(_, least)| q < least) {
                        o.nested_least = Some((what.clone(), *q));
                    }
                }
                let finding = redone_finding(&what, h, o.marks, settled, &again);
                if let Some(found) = finding {
                    o.nested.get_or_insert(found);
                }
            }
        }
    }
}

/// The finding on a recovery redone after `what` cut the first one short, on a disk whose
/// uninterrupted recovery found `h` history entries and the followers at `marks`; `settled`:
/// everything on the disk was durable.
fn redone_finding(
    what: &str,
    h: usize,
    marks: Marks,
    settled: bool,
    again: &Outcome,
) -> Option<(String, Violation)> {
    let mismatch = |service: &str, at: u64, field: &str, expected: String, actual: String| {
        let field = field.to_string();
        Violation::RecoveryMismatch { service: service.into(), recovery: 1, at, field, expected, actual }
    };
    let found = match &again.recovered {
        // On durable data a redone recovery finds the followers at least where the
        // uninterrupted one did (further, if the cut-short one pulled more).
        Ok(_) if settled && again.marks.0.iter().zip(marks.0).any(|(a, b)| *a < b) => mismatch(
            "market-data, audit",
            h as u64,
            "events the followers recovered after a recovery was cut short",
            format!("at least {:?} (what the uninterrupted recovery of the same disk found)", marks.0),
            format!("{:?}", again.marks.0),
        ),
        Ok(q) if *q == h || (!settled && *q < h) => {
            return again.nested.clone().map(|(w, v)| (format!("{what}; then {w}"), v));
        }
        Ok(q) => mismatch(
            "ubscore",
            *q as u64,
            "history entries recovered after a recovery was cut short",
            format!("{h} (what the uninterrupted recovery of the same disk found)"),
            q.to_string(),
        ),
        Err(v) => v.clone(),
    };
    Some((what.to_string(), found))
}

/// The command that reproduces one failure: its operation (or pull, or command) and its
/// family, on the configuration that found it.
pub fn repro_command(cfg: &ExploreConfig, failure: &ExploreFailure) -> String {
    let mut cmd = String::from("cargo run --release");
    if let Some(bug) = cfg.planted {
        cmd += &format!(" --features planted-bugs -- explore --plant {bug}");
    } else {
        cmd += " -- explore";
    }
    cmd += &format!(
        " --seed {} --commands {} --depth {} --recovery-depth {}",
        cfg.seed, cfg.commands, cfg.depth, cfg.recovery_depth
    );
    if cfg.hostile > 0 {
        cmd += &format!(" --hostile {}", cfg.hostile);
    }
    let s = cfg.storage;
    for (flag, value) in [
        ("--segment-bytes", s.segment_bytes),
        ("--snapshot-every", s.snapshot_every),
        ("--pull-every", s.pull_every),
    ] {
        if let Some(v) = value {
            cmd += &format!(" {flag} {v}");
        }
    }
    if let Some(keep) = &cfg.keep {
        let list: Vec<String> = keep.iter().map(usize::to_string).collect();
        cmd += &format!(" --keep {}", if list.is_empty() { "none".into() } else { list.join(",") });
    }
    if failure.family != Family::Run {
        cmd += &format!(" --at {}", failure.op);
    }
    cmd + &format!(" --family {}", failure.family.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redone(recovered: Result<usize, Violation>, marks: [u64; 2]) -> Outcome {
        Outcome {
            recovered,
            marks: Marks(marks),
            nested_marks: served::Least::default(),
            nested: None,
            nested_states: 0,
            cells: BTreeMap::new(),
            nested_least: None,
        }
    }

    #[test]
    fn a_redone_recovery_on_durable_data_keeps_the_history_and_the_followers() {
        let first = Marks([5, 4]);
        let judge =
            |settled, again: Outcome| redone_finding("cut", 10, first, settled, &again).map(|(_, v)| v);
        assert_eq!(judge(true, redone(Ok(10), [5, 4])), None);
        assert_eq!(judge(true, redone(Ok(10), [7, 6])), None, "further: it pulled more before the cut");
        let behind = judge(true, redone(Ok(10), [5, 3])).expect("the trail lost durable events");
        assert!(
            matches!(&behind, Violation::RecoveryMismatch { expected, .. } if expected.starts_with("at least"))
        );
        assert_eq!(
            judge(false, redone(Ok(10), [5, 3])),
            None,
            "unsettled: the served rule judges it instead"
        );
        assert_eq!(judge(true, redone(Ok(9), [5, 4])).map(|v| v.kind()), Some("recovery-mismatch"));
        assert_eq!(judge(false, redone(Ok(9), [5, 4])), None, "unsettled: fewer entries may be lost");
        let failed = Violation::Unrecoverable { error: "refused".into() };
        assert_eq!(judge(false, redone(Err(failed.clone()), [0, 0])), Some(failed));
    }
}
