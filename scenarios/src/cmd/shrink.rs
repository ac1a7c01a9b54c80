//! `exsim shrink`: delta debugging of a failing run down to a minimal plan, written to a
//! file that `exsim run --plan` replays.

use crate::Failure;
use exsim_scenarios::scenario::{Params, Scenario};
#[cfg(madsim)]
use std::path::Path;
use std::path::PathBuf;

/// Shrinks, prints the minimal plan and its reproduce command, writes the plan to `out`.
#[cfg(madsim)]
pub fn run(
    scenario: Scenario,
    seed: u64,
    params: Params,
    budget: usize,
    out: Option<PathBuf>,
    verbose: bool,
) -> Result<(), Failure> {
    if budget < 2 {
        return Err(Failure::Usage("--budget must be at least 2 runs".into()));
    }
    if !scenario.needs_simulation() {
        return Err(Failure::Usage(format!(
            "{scenario} has no fault plan to shrink; shrink a simulation scenario"
        )));
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("shrunk-{scenario}-{seed}.json")));
    crate::check_writable(&out)?;
    let bar = crate::progress_bar(budget as u64, "{bar:40} {pos}/{len} runs {msg}");
    let shrunk = exsim_scenarios::shrink::shrink(scenario, seed, &params, budget, &|p| {
        bar.set_position(p.runs as u64);
        bar.set_message(format!("best: {} commands, {} faults ({})", p.commands, p.faults, p.pass));
        if verbose && p.accepted {
            bar.suspend(|| {
                eprintln!("run {:>4} {:<34} {} commands, {} faults", p.runs, p.pass, p.commands, p.faults)
            });
        }
    });
    bar.finish_and_clear();
    let shrunk = match shrunk {
        Ok(s) => s,
        Err(exsim_scenarios::shrink::ShrinkError::Passes) => {
            say!("{scenario} seed {seed} passes: nothing to shrink");
            return Ok(());
        }
        Err(exsim_scenarios::shrink::ShrinkError::ReplayDiffers(what)) => {
            return Err(Failure::Check(format!(
                "{what}: replaying the run's own plan does not reproduce its failure (nondeterminism?)"
            )));
        }
    };
    let json = serde_json::to_string_pretty(&shrunk.plan).expect("plain data serializes");
    std::fs::write(&out, json)
        .map_err(|e| Failure::Usage(format!("{}: cannot write plan: {e}", out.display())))?;
    let kept = shrunk.plan.keep_commands.as_ref().map_or(0, Vec::len);
    say!(
        "shrunk in {} runs: {} commands and {} faults -> {kept} commands and {} faults",
        shrunk.runs,
        shrunk.before.0,
        shrunk.before.1,
        shrunk.plan.faults()
    );
    crate::put(&shrunk.plan.describe());
    // The workload of the run that was shrunk (the plan's indices point into it).
    let commands = params.commands.unwrap_or(scenario.default_commands());
    let all = exsim_scenarios::simrun::world_config(scenario, seed, commands, &params).commands;
    for i in shrunk.plan.keep_commands.iter().flatten() {
        if let Some(c) = all.get(*i) {
            say!("  command #{i}: {c:?}");
        }
    }
    say!("reproduce: {}", repro(scenario, seed, &params, &out));
    say!("still fails with:\n{}", shrunk.violation);
    Err(Failure::Check("the reduced run still fails (as intended)".into()))
}

/// Without the simulation build there is no plan to shrink.
#[cfg(not(madsim))]
pub fn run(_: Scenario, _: u64, _: Params, _: usize, _: Option<PathBuf>, _: bool) -> Result<(), Failure> {
    Err(Failure::Usage("shrink needs the simulation build (--cfg madsim)".into()))
}

/// The command that replays a shrunk plan.
#[cfg(madsim)]
fn repro(scenario: Scenario, seed: u64, params: &Params, plan: &Path) -> String {
    format!("{} --plan {}", exsim_scenarios::scenario::repro_command(scenario, seed, params), plan.display())
}
