//! `exsim run`: one seeded run (of the seed's plan or of an edited one). The verdict and the
//! hashes go to stdout, the trace (`--trace`) to stderr, as for `sweep` and `repro`.

use super::output::{failure_text, hash_lines, verdict_line};
use crate::{Failure, ParamArgs};
use exsim_scenarios::scenario::{self, RunReport, Scenario};
use std::path::PathBuf;

/// Arguments of `exsim run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Scenario (see `exsim list`).
    #[arg(long, default_value = "crash")]
    scenario: String,
    /// The seed (default: $EXSIM_SEED, else required).
    #[arg(long, env = "EXSIM_SEED", allow_negative_numbers = true)]
    seed: u64,
    #[command(flatten)]
    params: ParamArgs,
    #[command(flatten)]
    trace: super::trace::TraceArgs,
    /// Execute this fault plan (JSON, as `--save-plan`, `shrink` or a sweep report's
    /// failing runs write it, possibly edited) instead of the seed's.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Write the fault plan the run executed to this file.
    #[arg(long)]
    save_plan: Option<PathBuf>,
    /// Run twice and compare the traces line by line; on a difference, print the first
    /// differing line of each run.
    #[arg(long)]
    check_determinism: bool,
}

/// Runs `exsim run`.
pub fn run(a: RunArgs) -> Result<(), Failure> {
    let scenario = Scenario::parse(&a.scenario).map_err(Failure::Usage)?;
    crate::require_simulation(&[scenario])?;
    let params = a.params.params()?;
    a.trace.install_if_asked()?;
    let plan = a.plan.as_deref().map(|p| read_plan(p, scenario, a.seed)).transpose()?;
    if let Some(path) = &a.save_plan {
        crate::check_writable(path)?;
    }
    let plan_arg = a.plan.as_ref().map(|p| format!(" --plan {}", p.display())).unwrap_or_default();
    let options = scenario::RunOptions { plan, keep_trace: a.check_determinism, cancel: None };
    let report = scenario::run_with(scenario, a.seed, &params, &options);
    if a.check_determinism {
        let again = scenario::run_with(scenario, a.seed, &params, &options);
        if let Some(diff) = first_trace_difference(&report, &again) {
            return Err(Failure::Check(format!("{scenario} seed {} is not deterministic:\n{diff}", a.seed)));
        }
        say!("deterministic: two runs, {} equal trace lines", report.trace.as_ref().map_or(0, Vec::len));
    }
    if let (Some(path), Some(plan)) = (&a.save_plan, &report.plan) {
        let json = serde_json::to_string_pretty(plan).expect("plain data serializes");
        std::fs::write(path, json)
            .map_err(|e| Failure::Usage(format!("{}: cannot write plan: {e}", path.display())))?;
    }
    match &report.failure {
        None => {
            say!("{}", verdict_line(&report));
            say!("{}", hash_lines(&report));
            Ok(())
        }
        Some(f) => {
            // The reproduce command (first line) must replay the same plan.
            let text = failure_text(&report, &params, f);
            let text = match text.split_once('\n') {
                Some((first, rest)) => format!("{first}{plan_arg}\n{rest}"),
                None => text,
            };
            crate::put(&text);
            say!("{}", hash_lines(&report));
            Err(Failure::Check(format!(
                "{scenario} seed {} failed: {}",
                a.seed,
                report.violation.as_ref().map_or("failure", |v| v.kind())
            )))
        }
    }
}

fn read_plan(path: &std::path::Path, scenario: Scenario, seed: u64) -> Result<sim::plan::FaultPlan, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: cannot read plan: {e}", path.display())))?;
    let plan: sim::plan::FaultPlan = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{}: not a fault plan: {e}", path.display())))?;
    plan.validate()
        .and_then(|()| plan.validate_services(scenario.services(seed)))
        .map_err(|e| Failure::Usage(format!("{}: invalid plan: {e}", path.display())))?;
    Ok(plan)
}

/// Where two runs' traces first differ: the line number and each run's line.
fn first_trace_difference(a: &RunReport, b: &RunReport) -> Option<String> {
    let (x, y) = (a.trace.as_deref().unwrap_or_default(), b.trace.as_deref().unwrap_or_default());
    let at = (0..x.len().max(y.len())).find(|i| x.get(*i) != y.get(*i))?;
    let line = |t: &[String]| t.get(at).cloned().unwrap_or_else(|| "(trace ended)".into());
    Some(format!("first difference at trace line {}:\n  run 1: {}\n  run 2: {}", at + 1, line(x), line(y)))
}
