//! `exsim repro`: reruns the failing runs of a sweep's JSON report exactly as they ran (the
//! same parameters, the planted bug included), or seeds of one scenario.

use super::output::{failure_text, hash_lines, verdict_line};
use super::report::failing_runs;
use crate::{Failure, ParamArgs};
use exsim_scenarios::scenario::{self, Params, Scenario};

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
    /// Print each rerun's trace on stderr.
    #[arg(long)]
    trace: bool,
    #[command(flatten)]
    filter: super::trace::TraceFilterArgs,
}

/// Runs `exsim repro`.
pub fn run(a: ReproArgs) -> Result<(), Failure> {
    let seed_params = a.params.clone().params()?;
    let _guard = a.trace.then(|| a.filter.install()).transpose()?;
    let mut runs: Vec<(Scenario, u64, Params)> = Vec::new();
    for item in &a.what {
        if let Ok(seed) = item.parse::<u64>() {
            let Some(name) = &a.scenario else {
                return Err(Failure::Usage(format!("seed {item}: name its scenario with --scenario")));
            };
            runs.push((Scenario::parse(name).map_err(Failure::Usage)?, seed, seed_params));
            continue;
        }
        if a.params.given() {
            return Err(Failure::Usage(format!(
                "{item}: a report carries each run's parameters; --commands, --fault-every-ms and --plant apply to seeds"
            )));
        }
        for f in failing_runs(item)? {
            runs.push((f.scenario, f.seed, f.params));
        }
    }
    if runs.is_empty() {
        say!("nothing to reproduce: the report has no failing runs");
        return Ok(());
    }
    crate::require_simulation(&runs.iter().map(|r| r.0).collect::<Vec<_>>())?;
    let mut failed = 0;
    for (s, seed, p) in &runs {
        let report = scenario::run(*s, *seed, p);
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
    match failed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} of {} runs still fail", runs.len()))),
    }
}
