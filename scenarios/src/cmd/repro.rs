//! `exsim repro`: reruns the failing runs of a sweep's JSON report exactly as they ran (the
//! same parameters, the planted bug included), or seeds of one scenario.

use super::output::{failure_text, hash_lines, verdict_line};
use super::report::failing_runs;
use crate::{Failure, ParamArgs};
use exsim_scenarios::scenario::{Params, Scenario};
use exsim_scenarios::sweep::run_with_limit;
use std::time::Duration;

/// Arguments of `exsim repro`.
#[derive(clap::Args)]
pub struct ReproArgs {
    /// A JSON report written by `sweep --json`, or seeds (with `--scenario`).
    #[arg(required = true)]
    what: Vec<String>,
    /// Scenario of the seeds (required with seeds).
    #[arg(long)]
    scenario: Option<String>,
    /// Parameters of the seeds (a report carries its own).
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    trace: super::trace::TraceArgs,
    /// Wall-clock limit of each rerun in seconds (default: the report's, else 300).
    #[arg(long, value_parser = super::sweep::parse_seconds)]
    run_timeout: Option<f64>,
}

/// Runs `exsim repro`.
pub fn run(a: ReproArgs) -> Result<(), Failure> {
    let seed_params = a.params.clone().params()?;
    a.trace.install_if_asked()?;
    let limit = |report: Option<f64>| Duration::from_secs_f64(a.run_timeout.or(report).unwrap_or(300.0));
    let mut runs: Vec<(Scenario, u64, Params, Duration)> = Vec::new();
    for item in &a.what {
        if let Ok(seed) = item.parse::<u64>() {
            let Some(name) = &a.scenario else {
                return Err(Failure::Usage(format!("seed {item}: name its scenario with --scenario")));
            };
            runs.push((Scenario::parse(name).map_err(Failure::Usage)?, seed, seed_params, limit(None)));
            continue;
        }
        if a.params.given() || a.scenario.is_some() {
            return Err(Failure::Usage(format!(
                "{item}: a report carries each run's scenario and parameters; --scenario, --commands, \
                 --fault-every-ms and --plant apply to seeds"
            )));
        }
        for f in failing_runs(item)? {
            runs.push((f.scenario, f.seed, f.params, limit(f.run_timeout_s)));
        }
    }
    if runs.is_empty() {
        say!("nothing to reproduce: the report has no failing runs");
        return Ok(());
    }
    crate::require_simulation(&runs.iter().map(|r| r.0).collect::<Vec<_>>())?;
    let (mut failed, mut abandoned) = (0, false);
    for (s, seed, p, limit) in &runs {
        // Under the limit it ran with: a run that timed out must not hang its rerun.
        let (report, stuck) = run_with_limit(*s, *seed, p, *limit);
        abandoned |= stuck;
        match &report.failure {
            None => say!("{}", verdict_line(&report)),
            Some(f) => {
                failed += 1;
                crate::put(&failure_text(&report, p, f));
            }
        }
        if s.needs_simulation() {
            say!("{}", hash_lines(&report));
        }
    }
    if abandoned {
        // A run's thread never stopped: exit without waiting for it.
        eprintln!("{failed} of {} runs still fail (one abandoned after its time limit)", runs.len());
        std::process::exit(1);
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} of {} runs still fail", runs.len()))),
    }
}
