//! `exsim sweep`: many runs over scenarios and seeds, with a progress bar (a heartbeat line
//! when stderr is not a terminal), a summary table that fits 100 columns, JSON and JUnit
//! reports opened before any work, wall-clock limits per run, and the reproduce commands
//! of the failures last.

use super::report::{self, ReportFiles, SweepMeta};
use crate::{Failure, ParamArgs};
use exsim_scenarios::bench::thousands;
use exsim_scenarios::scenario::{Params, RunReport, Scenario};
use exsim_scenarios::seeds::{self, MAX_RUNS, RunList, Seeds};
use exsim_scenarios::sweep::{self, InFlight, SweepOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Arguments of `exsim sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Comma-separated scenarios (default: every simulation scenario).
    #[arg(long)]
    scenarios: Option<String>,
    /// Seeds: a range `A..B` (end exclusive) or `A..=B`, or `random:N` (N fresh seeds,
    /// printed and recorded; `random:N@BASE` draws the same ones again).
    #[arg(long, conflicts_with = "count")]
    seeds: Option<String>,
    /// Number of seeds per scenario, starting at 0 (default 100).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    count: Option<u64>,
    /// Worker threads, each running one simulation at a time (default: available cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: Option<u64>,
    /// Run only shard K of N (`K/N`, 1-based): every N-th run, for CI job matrices.
    #[arg(long)]
    shard: Option<String>,
    #[command(flatten)]
    params: ParamArgs,
    /// Wall-clock limit of one run in seconds (0.01 to 86400): a run over it is cancelled
    /// and fails as a timeout, and the sweep goes on.
    #[arg(long, default_value_t = 300.0, value_parser = parse_seconds)]
    run_timeout: f64,
    /// Stop starting runs after the first failure.
    #[arg(long, conflicts_with = "max_failures")]
    fail_fast: bool,
    /// Stop starting runs after N failures (runs in flight finish).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_RUNS))]
    max_failures: Option<u64>,
    /// Seconds between heartbeat lines when stderr is not a terminal (1 to 3600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    heartbeat: u64,
    /// After the table, faults by kind, crash points by cell and failures by kind per
    /// scenario.
    #[arg(long)]
    details: bool,
    /// Write a JSON report (its parameters, every run, the failing runs with their plans).
    #[arg(long, alias = "report")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long)]
    junit: Option<PathBuf>,
}

/// Seconds as a float within 0.01..=86400.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let s: f64 = text.parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(0.01..=86_400.0).contains(&s) {
        return Err(format!("{text} is not within 0.01 to 86400 seconds"));
    }
    Ok(s)
}

/// A fresh base for `random:N`: CI's run id when there is one (each CI run sweeps
/// different seeds, every shard of it the same selection, and a rerun of a failed job the
/// same ones), else the clock. This runs in the CLI before any simulation starts: the base
/// only chooses which seeds run, is printed and recorded, and `random:N@BASE` repeats it, so
/// no run's behaviour depends on the clock.
fn fresh_base() -> u64 {
    if let Ok(id) = std::env::var("GITHUB_RUN_ID") {
        return xxhash_rust::xxh3::xxh3_64(format!("github-run/{id}").as_bytes());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    xxhash_rust::xxh3::xxh3_64(&now.as_nanos().to_le_bytes())
}

/// Runs `exsim sweep`.
pub fn run(a: SweepArgs, command_line: Vec<String>) -> Result<(), Failure> {
    let scenarios = match &a.scenarios {
        Some(list) => list
            .split(',')
            .map(|s| Scenario::parse(s.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Usage)?,
        None => Scenario::defaults(),
    };
    crate::require_simulation(&scenarios)?;
    let seeds = match &a.seeds {
        Some(text) => Seeds::parse(text, fresh_base).map_err(Failure::Usage)?,
        None => Seeds::first(a.count.unwrap_or(100)),
    };
    let shard = a.shard.as_deref().map(seeds::parse_shard).transpose().map_err(Failure::Usage)?;
    let runs = RunList::new(scenarios, seeds, shard).map_err(Failure::Usage)?;
    let params = a.params.clone().params()?;
    let jobs =
        a.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let options = SweepOptions {
        jobs,
        run_timeout: Duration::from_secs_f64(a.run_timeout),
        max_failures: if a.fail_fast { Some(1) } else { a.max_failures },
    };
    // Reports are opened before any work: a bad path fails now, not after the sweep.
    let files = ReportFiles::create(a.json.as_deref(), a.junit.as_deref())?;
    if let Seeds::Random { .. } = runs.seeds() {
        say!("random seeds ({}): {}", runs.seeds().describe(), drawn(runs.seeds()));
    }
    let meta = SweepMeta::new(command_line, &runs, &params, &options);
    let started = Instant::now();
    let outcome = with_progress(&runs, &params, &options, a.heartbeat);
    let failed = print_results(&outcome, &params, started.elapsed(), jobs, a.details);
    // Written after the reproduce commands are printed: a full disk must not hide them.
    let written = files.write(&meta, &outcome.reports, &params, outcome.skipped);
    if outcome.abandoned > 0 {
        // Their threads still run; returning from `main` ends the process without them.
        eprintln!("{} runs abandoned after their time limit", outcome.abandoned);
    }
    written?;
    match failed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} of {} runs failed", outcome.reports.len()))),
    }
}

/// Prints the failures, the table, the coverage, the speed and, last, the reproduce
/// commands. Returns the number of failed runs.
fn print_results(
    outcome: &sweep::SweepOutcome,
    params: &Params,
    wall: Duration,
    jobs: usize,
    details_too: bool,
) -> usize {
    let reports = &outcome.reports;
    let failed: Vec<&RunReport> = reports.iter().filter(|r| r.failure.is_some()).collect();
    for r in &failed {
        say!(
            "FAILED {} seed {}: {}",
            r.scenario,
            r.seed,
            first_line(r.failure.as_deref().unwrap_or_default())
        );
    }
    crate::put(&summary_table(reports));
    if details_too {
        crate::put(&details(reports));
    }
    let coverage = report::coverage(reports);
    if !coverage.is_empty() {
        let all = sim::coverage::universe().len();
        say!(
            "crash-window coverage: {} of {all} cells hit (the map: --json, then `exsim coverage REPORT`)",
            all - sim::coverage::unhit(&coverage).len()
        );
    }
    let per_second = reports.len() as f64 / wall.as_secs_f64().max(1e-9);
    say!(
        "{} runs in {:.2} s wall on {jobs} jobs: {per_second:.1} runs/s ({:.0} runs/minute)",
        reports.len(),
        wall.as_secs_f64(),
        per_second * 60.0
    );
    if outcome.skipped > 0 {
        say!("stopped after {} failures: {} runs not started", failed.len(), outcome.skipped);
    }
    if !failed.is_empty() {
        say!("reproduce the failures with:");
        for r in &failed {
            say!("{}", exsim_scenarios::scenario::repro_command(r.scenario, r.seed, params));
        }
    }
    failed.len()
}

/// The seeds a random selection drew, the first 20 of them.
fn drawn(seeds: &Seeds) -> String {
    let n = seeds.len().min(20) as u64;
    let mut text: Vec<String> = (0..n).map(|i| seeds.get(i).to_string()).collect();
    if seeds.len() > 20 {
        text.push(format!("… ({} more, all in the JSON report)", seeds.len() - 20));
    }
    text.join(" ")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Runs the sweep behind a progress bar (stderr is a terminal) or a heartbeat line every
/// `heartbeat` seconds (it is not: a CI log).
fn with_progress(
    runs: &RunList,
    params: &Params,
    options: &SweepOptions,
    heartbeat: u64,
) -> sweep::SweepOutcome {
    let in_flight = InFlight::default();
    let (done, failures) = (AtomicU64::new(0), AtomicU64::new(0));
    let terminal = std::io::stderr().is_terminal();
    let bar = if terminal { ProgressBar::new(runs.len()) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {prefix}  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("0 failed");
    // Drawn from the start, not only after the first run ends.
    bar.enable_steady_tick(Duration::from_millis(250));
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        if !terminal {
            let (in_flight, done, failures) = (&in_flight, &done, &failures);
            let total = runs.len();
            scope.spawn(move || {
                let started = Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(Duration::from_secs(heartbeat))
                {
                    let slowest = in_flight.slowest().map_or(String::new(), |(s, seed, d)| {
                        format!("; slowest in flight: {s} seed {seed} for {:.1} s", d.as_secs_f64())
                    });
                    eprintln!(
                        "heartbeat {:.0} s: {}/{total} runs done, {} failed{slowest}",
                        started.elapsed().as_secs_f64(),
                        done.load(Ordering::SeqCst),
                        failures.load(Ordering::SeqCst)
                    );
                }
            });
        }
        let outcome = sweep::sweep(runs, params, options, &in_flight, |r| {
            done.fetch_add(1, Ordering::SeqCst);
            if r.failure.is_some() {
                let n = failures.fetch_add(1, Ordering::SeqCst) + 1;
                bar.set_prefix(format!("{n} FAILED"));
            }
            bar.inc(1);
        });
        drop(stop);
        bar.finish_and_clear();
        outcome
    })
}

/// Per scenario: runs, failures, commands, kills, faults, crash points, simulated and wall
/// time, runs per second; then the totals. Fits 100 columns.
pub fn summary_table(reports: &[RunReport]) -> String {
    let row = |name: &str, rs: &[&RunReport]| {
        let wall = rs.iter().map(|r| r.wall_us).sum::<u64>() as f64 / 1e6;
        format!(
            "{name:<16} {:>6} {:>6} {:>11} {:>7} {:>8} {:>9} {:>10} {:>9} {:>7}\n",
            thousands(rs.len() as u64),
            rs.iter().filter(|r| r.failure.is_some()).count(),
            thousands(rs.iter().map(|r| r.commands as u64).sum()),
            thousands(rs.iter().map(|r| r.kills).sum()),
            thousands(rs.iter().flat_map(|r| r.faults.values()).sum()),
            thousands(rs.iter().flat_map(|r| r.crash_points.values()).sum()),
            format!("{:.0} s", rs.iter().map(|r| r.sim_ms).sum::<u64>() as f64 / 1e3),
            format!("{wall:.1} s"),
            format!("{:.1}", rs.len() as f64 / wall.max(1e-9)),
        )
    };
    let mut out = format!(
        "{:<16} {:>6} {:>6} {:>11} {:>7} {:>8} {:>9} {:>10} {:>9} {:>7}\n",
        "scenario",
        "runs",
        "failed",
        "commands",
        "kills",
        "faults",
        "crash pts",
        "simulated",
        "wall",
        "runs/s"
    );
    let groups = report::by_scenario(reports);
    for (s, rs) in &groups {
        out += &row(s.name(), rs);
    }
    if groups.len() > 1 {
        out += &row("total", &reports.iter().collect::<Vec<_>>());
    }
    out
}

/// Faults by kind, crash points by cell and failures by kind, per scenario, wrapped at 100
/// columns.
fn details(reports: &[RunReport]) -> String {
    let mut out = String::new();
    for (s, rs) in report::by_scenario(reports) {
        let mut sections: Vec<(&str, BTreeMap<String, u64>)> = vec![
            ("failures", BTreeMap::new()),
            ("faults", BTreeMap::new()),
            ("crash points", BTreeMap::new()),
        ];
        for r in &rs {
            if let Some(v) = &r.violation {
                *sections[0].1.entry(v.kind().to_string()).or_default() += 1;
            }
            for (k, n) in &r.faults {
                *sections[1].1.entry(k.clone()).or_default() += n;
            }
            for (k, n) in &r.crash_points {
                *sections[2].1.entry(k.clone()).or_default() += n;
            }
        }
        out += &format!("{s}:\n");
        for (title, counts) in sections {
            let items: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect();
            let items = if items.is_empty() { vec!["none".to_string()] } else { items };
            out += &wrap(&format!("  {title}: "), &items, 100);
        }
    }
    out
}

/// `items` after `head`, comma-separated, in lines of at most `width` columns.
fn wrap(head: &str, items: &[String], width: usize) -> String {
    let indent = " ".repeat(4);
    let mut out = String::new();
    let mut line = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() { format!("{item}, ") } else { item.clone() };
        if line.len() + piece.trim_end().len() > width && line.trim().len() > head.trim().len() {
            out += line.trim_end();
            out += "\n";
            line = indent.clone();
        }
        line += &piece;
    }
    out += line.trim_end();
    out + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_details_stay_within_the_width() {
        let items: Vec<String> = (0..40).map(|i| format!("fault_kind_{i} {}", i * 1000)).collect();
        let text = wrap("  faults: ", &items, 100);
        assert!(text.lines().count() > 3);
        assert!(text.lines().all(|l| l.len() <= 100), "{text}");
        assert!(text.contains("fault_kind_39 39000"));
    }
}
