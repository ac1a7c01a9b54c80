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
    /// Explore only the crash points at this operation (before and after it): reproduces one failure.
    #[arg(long)]
    at: Option<u64>,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Plant a known bug (builds with `--features planted-bugs`).
    #[arg(long)]
    plant: Option<String>,
    /// Write the report (counts, coverage map, failures) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[cfg(madsim)]
pub fn run(args: ExploreArgs) -> Result<(), Failure> {
    use exsim_scenarios::explore::{self, ExploreConfig};
    if !(9..=200).contains(&args.commands) {
        return Err(Failure::Usage(format!("--commands must be in 9..=200, not {}", args.commands)));
    }
    if args.depth > 3 || args.recovery_depth > 2 {
        return Err(Failure::Usage("--depth must be in 0..=3 and --recovery-depth in 0..=2".into()));
    }
    let planted = crate::parse_plant(args.plant.as_deref())?;
    let jobs = crate::parse_jobs(args.jobs)?;
    let cfg = ExploreConfig {
        seed: args.seed,
        commands: args.commands,
        depth: args.depth,
        recovery_depth: args.recovery_depth,
        at: args.at,
        jobs,
        planted,
    };
    if let Some(path) = &args.json {
        crate::check_writable(path)?;
    }
    let bar = crate::progress_bar(0, "{bar:40} {pos}/{len} operations, eta {eta}");
    let report = explore::explore(&cfg, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    say!(
        "explored seed {}: {} commands, {} filesystem operations, {} crash points, {} crash states, \
         {} fsync errors, {} media faults ({} detected), {} distinct disks recovered, {} recoveries crashed and redone, in {:.1} s",
        cfg.seed,
        report.commands,
        report.ops,
        report.crash_points,
        report.states,
        report.fsync_errors,
        report.media_faults,
        report.detected,
        report.distinct_disks,
        report.recovery_crashes,
        report.wall_ms as f64 / 1e3
    );
    crate::put(&sim::coverage::table(&report.coverage));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("plain data serializes");
        std::fs::write(path, json)
            .map_err(|e| Failure::Usage(format!("{}: cannot write report: {e}", path.display())))?;
    }
    if report.failures.is_empty() {
        say!("no failure");
        return Ok(());
    }
    let mut kinds: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in &report.failures {
        *kinds.entry(f.violation.kind()).or_default() += 1;
    }
    say!("{} failing crash states ({kinds:?}); the first ones:", report.failures.len());
    let mut shown = std::collections::BTreeSet::new();
    for f in report.failures.iter().filter(|f| shown.insert(f.op)).take(5) {
        say!("- operation {} {} ({}), {}", f.op, f.when, f.cell, f.resolution);
        if let Some(r) = &f.recovery_crash {
            say!("  then {r}");
        }
        say!("  {}", f.violation.to_string().lines().next().unwrap_or_default());
        say!("  reproduce: {}", explore::repro_command(&cfg, f.op));
    }
    if let Some(n) = report.states_until_first_failure {
        say!("first failure after {n} crash states");
    }
    Err(Failure::Check(format!("{} crash states failed", report.failures.len())))
}

#[cfg(not(madsim))]
pub fn run(_args: ExploreArgs) -> Result<(), Failure> {
    Err(Failure::Usage(
        "explore needs the simulation build (--cfg madsim); rebuild without overriding RUSTFLAGS".into(),
    ))
}
