//! `exsim explore`: the command line of bounded exhaustive crash-state exploration.

use crate::Failure;
use std::path::PathBuf;

/// Arguments of `exsim explore`.
#[derive(clap::Args, Clone)]
pub struct ExploreArgs {
    /// Workload seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Commands in the workload, the initial deposits included (9..=200).
    #[arg(long, default_value_t = 30)]
    commands: usize,
    /// Deviations from "all pending writes kept" combined per crash state (0..=3).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Nested crashes inside each recovery (0..=2).
    #[arg(long, default_value_t = 1)]
    recovery_depth: usize,
    /// Explore only the crash points at this operation (before and after it; with a standby
    /// family: this pull or command): reproduces one failure.
    #[arg(long)]
    at: Option<u64>,
    /// Explore only this family of crash state: crash-point, fsync-error, io-error, media,
    /// lost-reply, failover, stop or run.
    #[arg(long)]
    family: Option<String>,
    /// Only these commands of the seeded workload, by index (e.g. `0,3,7`, or `none`): a shrunk workload.
    #[arg(long)]
    keep: Option<String>,
    /// Every storage's WAL segment size in bytes (64..; default: 1024).
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Every storage's snapshot interval in entries (1..; default: 2 to 6 by storage).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// The followers pull after this many commands (1..; default: 8).
    #[arg(long)]
    pull_every: Option<u64>,
    /// Shrink the first failure found: ddmin over the commands while its class of crash state still fails.
    #[arg(long)]
    shrink: bool,
    /// Explorations a shrink may spend.
    #[arg(long, default_value_t = 300)]
    budget: usize,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Plant a known bug (builds with `--features planted-bugs`).
    #[arg(long)]
    plant: Option<String>,
    /// Mix hostile commands into the workload: after each command, this percent chance of
    /// one (zero and unknown fields, overflows, strangers, reused ids, dust trades; 0..=100).
    #[arg(long, default_value_t = 0)]
    hostile: u32,
    /// Write the report (counts, coverage map, failures) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[cfg(madsim)]
pub fn run(args: ExploreArgs) -> Result<(), Failure> {
    use exsim_scenarios::explore;
    let cfg = config(&args)?;
    if let Some(path) = &args.json {
        crate::check_writable(path)?;
    }
    let bar = crate::progress_bar(0, "{bar:40} {pos}/{len} operations, eta {eta}");
    let report = explore::explore(&cfg, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    summary(&cfg, &report);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("plain data serializes");
        std::fs::write(path, json)
            .map_err(|e| Failure::Usage(format!("{}: cannot write report: {e}", path.display())))?;
    }
    if report.failures.is_empty() {
        say!("no failure");
        return Ok(());
    }
    failures(&cfg, &report);
    if args.shrink {
        shrink(&cfg, &report.failures[0], args.budget)?;
    }
    Err(Failure::Check(format!("{} crash states failed", report.failures.len())))
}

/// The exploration the arguments ask for, validated.
#[cfg(madsim)]
fn config(args: &ExploreArgs) -> Result<exsim_scenarios::explore::ExploreConfig, Failure> {
    use exsim_scenarios::explore::{self, Family, Only};
    if !(9..=200).contains(&args.commands) {
        return Err(Failure::Usage(format!("--commands must be in 9..=200, not {}", args.commands)));
    }
    if args.depth > 3 || args.recovery_depth > 2 {
        return Err(Failure::Usage("--depth must be in 0..=3 and --recovery-depth in 0..=2".into()));
    }
    if args.segment_bytes.is_some_and(|b| b < 64)
        || args.snapshot_every == Some(0)
        || args.pull_every == Some(0)
    {
        return Err(Failure::Usage(
            "--segment-bytes must be at least 64, --snapshot-every and --pull-every at least 1".into(),
        ));
    }
    if args.hostile > 100 {
        return Err(Failure::Usage(format!("--hostile is a percentage (0..=100), not {}", args.hostile)));
    }
    if args.shrink && args.budget < 2 {
        return Err(Failure::Usage("--budget must be at least 2 explorations".into()));
    }
    let family = match args.family.as_deref() {
        None => None,
        Some(name) => Some(Family::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            Failure::Usage(format!("--family: unknown `{name}` (known: {})", names.join(", ")))
        })?),
    };
    if args.at.is_some() && family == Some(Family::Run) {
        return Err(Failure::Usage("--family run has no --at: the recorded run is one".into()));
    }
    let only = (args.at.is_some() || family.is_some())
        .then(|| Only { ops: args.at.map(|k| std::collections::BTreeSet::from([k])), family });
    Ok(explore::ExploreConfig {
        seed: args.seed,
        commands: args.commands,
        depth: args.depth,
        recovery_depth: args.recovery_depth,
        only,
        keep: args.keep.as_deref().map(|k| parse_keep(k, args.commands)).transpose()?,
        storage: explore::drive::Storage {
            segment_bytes: args.segment_bytes,
            snapshot_every: args.snapshot_every,
            pull_every: args.pull_every,
        },
        jobs: crate::parse_jobs(args.jobs)?,
        planted: crate::parse_plant(args.plant.as_deref())?,
        hostile: args.hostile,
    })
}

/// Prints what an exploration did and its coverage map.
#[cfg(madsim)]
fn summary(cfg: &exsim_scenarios::explore::ExploreConfig, report: &exsim_scenarios::explore::ExploreReport) {
    say!(
        "explored seed {}: {} commands, {} filesystem operations, {} crash points, {} crash states, \
         {} fsync errors, {} failed operations (io-error), {} media faults ({} detected), {} distinct disks recovered, {} recoveries crashed and redone, \
         {} replica replies lost, {} failovers, {} graceful stops, in {:.1} s",
        cfg.seed,
        report.commands,
        report.ops,
        report.crash_points,
        report.states,
        report.fsync_errors,
        report.io_errors,
        report.media_faults,
        report.detected,
        report.distinct_disks,
        report.recovery_crashes,
        report.lost_replies,
        report.failovers,
        report.stops,
        report.wall_ms as f64 / 1e3
    );
    crate::put(&sim::coverage::table(&report.coverage));
}

/// Prints the failures by kind and the first ones, each with its reproduce command.
#[cfg(madsim)]
fn failures(cfg: &exsim_scenarios::explore::ExploreConfig, report: &exsim_scenarios::explore::ExploreReport) {
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in &report.failures {
        *kinds.entry(f.violation.kind()).or_default() += 1;
    }
    say!("{} failing crash states ({kinds:?}); the first ones:", report.failures.len());
    let mut shown = std::collections::BTreeSet::new();
    for f in report.failures.iter().filter(|f| shown.insert((f.family, f.op))).take(5) {
        say!("- {}", place(f));
        if let Some(r) = &f.recovery_crash {
            say!("  then {r}");
        }
        say!("  {}", f.violation.to_string().lines().next().unwrap_or_default());
        say!("  reproduce: {}", exsim_scenarios::explore::repro_command(cfg, f));
    }
    if let Some(n) = report.states_until_first_failure {
        say!("first failure after {n} crash states");
    }
}

/// Shrinks `failure` and prints the commands and the crash state that still fail.
#[cfg(madsim)]
fn shrink(
    cfg: &exsim_scenarios::explore::ExploreConfig,
    failure: &exsim_scenarios::explore::ExploreFailure,
    budget: usize,
) -> Result<(), Failure> {
    use exsim_scenarios::explore::{self, shrink};
    let bar = crate::progress_bar(budget as u64, "{bar:40} {pos}/{len} explorations {msg}");
    let shrunk = shrink::shrink(cfg, failure, budget, &|runs, commands| {
        bar.set_position(runs as u64);
        bar.set_message(format!("best: {commands} commands"));
    });
    bar.finish_and_clear();
    let s = shrunk.map_err(|e| Failure::Check(format!("cannot shrink: {e}")))?;
    let f = &s.failure;
    say!(
        "shrunk in {} explorations: {} commands and {} faults -> {} commands and {} faults",
        s.runs,
        s.before.0,
        s.before.1,
        s.after.0,
        s.after.1
    );
    let all = cfg.workload().commands;
    let keep = s.config.keep.clone().unwrap_or_default();
    say!("commands: {} of the seeded workload: {keep:?}", keep.len());
    let storage = s.config.storage;
    if storage != cfg.storage {
        let or_default = |v: Option<u64>| v.map_or("the default".to_string(), |v| v.to_string());
        say!(
            "storage: WAL segments of {} bytes, snapshots every {} entries, followers pulling every {} commands \
             (the exploration's overridden)",
            or_default(storage.segment_bytes),
            or_default(storage.snapshot_every),
            or_default(storage.pull_every)
        );
    }
    for i in &keep {
        say!("  command #{i}: {:?}", all[*i]);
    }
    say!("crash state: {}", place(f));
    if let Some(r) = &f.recovery_crash {
        say!("  then {r}");
    }
    for line in f.violation.to_string().lines() {
        say!("  {line}");
    }
    say!("reproduce: {}", explore::repro_command(&s.config, f));
    Ok(())
}

/// Where a failure happened: its crash point and resolution, or the run's fault.
#[cfg(madsim)]
fn place(f: &exsim_scenarios::explore::ExploreFailure) -> String {
    use exsim_scenarios::explore::Family;
    match f.family {
        Family::LostReply | Family::Failover => f.cell.clone(),
        Family::Stop => format!("{}: {}", f.cell, f.resolution),
        _ => format!("operation {} {} ({}), {}", f.op, f.when, f.cell, f.resolution),
    }
}

/// `--keep`: command indices into the seeded workload of `commands`, or `none`.
#[cfg(madsim)]
fn parse_keep(list: &str, commands: usize) -> Result<Vec<usize>, Failure> {
    if list == "none" {
        return Ok(Vec::new());
    }
    let mut keep = std::collections::BTreeSet::new();
    for item in list.split(',') {
        let i: usize = item.trim().parse().map_err(|_| {
            Failure::Usage(format!("--keep: {item:?} is not a command index (a list like 0,3,7, or none)"))
        })?;
        if i >= commands {
            return Err(Failure::Usage(format!("--keep: command {i} is beyond the workload's {commands}")));
        }
        keep.insert(i);
    }
    Ok(keep.into_iter().collect())
}

#[cfg(not(madsim))]
pub fn run(_args: ExploreArgs) -> Result<(), Failure> {
    Err(Failure::Usage(
        "explore needs the simulation build (--cfg madsim); rebuild without overriding RUSTFLAGS".into(),
    ))
}
