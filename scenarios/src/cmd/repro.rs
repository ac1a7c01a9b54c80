//! `exsim repro`: reruns the failing runs of a sweep's JSON report exactly as they ran (the
//! same parameters, the planted bug included), or seeds of one scenario.

use super::output::{failure_text, hash_lines, verdict_line};
use super::report::failing_runs;
use crate::{Failure, ParamArgs};
use exsim_scenarios::scenario::{self, Params, Scenario};
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
    /// Wall-clock limit of each rerun in seconds (default: the report's limit for its runs,
    /// none for seeds).
    #[arg(long, value_parser = super::sweep::parse_seconds)]
    run_timeout: Option<f64>,
}

/// One rerun: what, under which wall-clock limit (`None`: none), and how it failed before.
struct Rerun {
    scenario: Scenario,
    seed: u64,
    params: Params,
    limit: Option<Duration>,
    recorded: Option<String>,
}

/// Runs `exsim repro`.
pub fn run(a: ReproArgs) -> Result<(), Failure> {
    let seed_params = a.params.clone().params()?;
    a.trace.install_if_asked()?;
    let given = a.run_timeout.map(Duration::from_secs_f64);
    let mut runs: Vec<Rerun> = Vec::new();
    for item in &a.what {
        if let Ok(seed) = item.parse::<u64>() {
            let Some(name) = &a.scenario else {
                return Err(Failure::Usage(format!("seed {item}: name its scenario with --scenario")));
            };
            let scenario = Scenario::parse(name).map_err(Failure::Usage)?;
            runs.push(Rerun { scenario, seed, params: seed_params, limit: given, recorded: None });
            continue;
        }
        if a.params.given() || a.scenario.is_some() {
            return Err(Failure::Usage(format!(
                "{item}: a report carries each run's scenario and parameters; --scenario, --commands, \
                 --fault-every-ms and --plant apply to seeds"
            )));
        }
        for f in failing_runs(item)? {
            // Under the limit it ran with: a run that timed out must not hang its rerun.
            let limit = given.or(f.run_timeout_s.map(Duration::from_secs_f64));
            runs.push(Rerun {
                scenario: f.scenario,
                seed: f.seed,
                params: f.params,
                limit,
                recorded: Some(f.failure),
            });
        }
    }
    if runs.is_empty() {
        say!("nothing to reproduce: the report has no failing runs");
        return Ok(());
    }
    crate::require_simulation(&runs.iter().map(|r| r.scenario).collect::<Vec<_>>())?;
    let mut failed = 0;
    for (i, r) in runs.iter().enumerate() {
        let (report, stuck) = match r.limit {
            Some(limit) => run_with_limit(r.scenario, r.seed, &r.params, limit),
            None => (scenario::run(r.scenario, r.seed, &r.params), false),
        };
        match &report.failure {
            None => say!("{}", verdict_line(&report)),
            Some(f) => {
                failed += 1;
                crate::put(&failure_text(&report, &r.params, f));
            }
        }
        if let Some(recorded) = &r.recorded {
            say!("recorded in the report: {recorded}");
        }
        if stuck {
            // Its thread still runs and would slow every later rerun: stop here.
            return Err(Failure::Check(format!(
                "{} seed {} did not stop after its time limit; {} reruns not started",
                r.scenario,
                r.seed,
                runs.len() - i - 1
            )));
        }
        if r.scenario.needs_simulation() {
            say!("{}", hash_lines(&report));
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} of {} runs still fail", runs.len()))),
    }
}
