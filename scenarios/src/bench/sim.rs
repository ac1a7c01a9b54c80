//! The simulation speed benchmark: wall time per run of the crash scenario at 1k, 10k and
//! 100k commands, simulated messages per wall second, and the cost of a determinism check
//! (the same seed twice, trace hashes compared).

use super::{median, thousands};
use crate::scenario::{self, Params, Scenario};
use serde::Serialize;
use std::time::Instant;

/// One measured line.
#[derive(Clone, Debug, Serialize)]
pub struct SimRow {
    /// Scenario.
    pub scenario: String,
    /// Commands per run.
    pub commands: usize,
    /// Seeds run.
    pub runs: usize,
    /// Median wall time of one run, ms.
    pub wall_ms: f64,
    /// Median simulated time of one run, s.
    pub sim_s: f64,
    /// Median messages of one run.
    pub messages: u64,
    /// Simulated messages per wall second.
    pub messages_per_s: f64,
    /// Median kills per run.
    pub kills: u64,
    /// Median peak heap of one run (the simulation and its checker), bytes.
    pub peak_bytes: u64,
}

/// The benchmark result.
#[derive(Clone, Debug, Serialize)]
pub struct SimBench {
    /// The rows.
    pub rows: Vec<SimRow>,
    /// Wall time of one 10k-command crash run checked for determinism (run twice), over one run.
    pub determinism_overhead: f64,
    /// Messages per wall second of a bare madsim message loop measured in the same run
    /// (4 clients, request/reply round trips to one server, no exchange): the runtime's
    /// own limit here.
    pub bare_messages_per_s: f64,
}

impl SimBench {
    /// The table as Markdown.
    pub fn table(&self) -> String {
        let mut s = "exsim bench sim (release build, medians)\n\n| scenario | commands | seeds | wall per run | simulated | messages | messages/s (wall) | of bare madsim | kills | peak heap |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n".to_string();
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {} | {:.1} ms | {:.1} s | {} | {} | {:.1} % | {} | {:.1} MiB |\n",
                r.scenario,
                thousands(r.commands as u64),
                r.runs,
                r.wall_ms,
                r.sim_s,
                thousands(r.messages),
                thousands(r.messages_per_s as u64),
                100.0 * r.messages_per_s / self.bare_messages_per_s.max(1e-9),
                r.kills,
                r.peak_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        s += &format!(
            "\nbare madsim message loop (4 clients, 64-byte request/reply round trips to one server, \
             no exchange): {} messages/s\n",
            thousands(self.bare_messages_per_s as u64)
        );
        s += &format!(
            "\ndeterminism check (same seed twice, trace hashes compared): {:.2}× one run\n",
            self.determinism_overhead
        );
        s
    }
}

fn row(scenario: Scenario, commands: usize, seeds: u64, progress: &impl Fn(&str)) -> Result<SimRow, String> {
    progress(&format!("{scenario}, {commands} commands"));
    let params = Params { commands: Some(commands), ..Params::default() };
    let mut walls = Vec::new();
    let mut sims = Vec::new();
    let mut msgs = Vec::new();
    let mut kills = Vec::new();
    let mut peaks = Vec::new();
    for seed in 0..seeds {
        let base = super::alloc::start();
        let r = scenario::run(scenario, seed, &params);
        peaks.push(super::alloc::peak_since(base) as u64);
        if let Some(f) = r.failure {
            return Err(format!("{scenario} seed {seed} failed while benchmarking: {f}"));
        }
        walls.push(r.wall_us);
        sims.push(r.sim_ms);
        msgs.push(r.messages);
        kills.push(r.kills);
    }
    let wall_us = median(walls).max(1);
    let messages = median(msgs);
    Ok(SimRow {
        scenario: scenario.name().to_string(),
        commands,
        runs: seeds as usize,
        wall_ms: wall_us as f64 / 1e3,
        sim_s: median(sims) as f64 / 1e3,
        messages,
        messages_per_s: messages as f64 / (wall_us as f64 / 1e6),
        kills: median(kills),
        peak_bytes: median(peaks),
    })
}

/// Runs the benchmark; `max_commands` caps the sizes (10k and 100k are skipped above it).
pub fn run_sim_bench(max_commands: usize, progress: impl Fn(&str)) -> Result<SimBench, String> {
    let mut rows = Vec::new();
    for (scenario, commands, seeds) in [
        (Scenario::Crash, 1_000, 9),
        (Scenario::Baseline, 10_000, 5),
        (Scenario::Crash, 10_000, 5),
        (Scenario::Chaos, 10_000, 5),
        (Scenario::Crash, 100_000, 1),
    ] {
        if commands <= max_commands {
            rows.push(row(scenario, commands, seeds, &progress)?);
        }
    }
    progress("determinism check");
    let n = 10_000.min(max_commands);
    let params = Params { commands: Some(n), ..Params::default() };
    let t = Instant::now();
    let one = scenario::run(Scenario::Crash, 42, &params);
    let single = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let a = scenario::run(Scenario::Crash, 42, &params);
    let b = scenario::run(Scenario::Crash, 42, &params);
    let double = t.elapsed().as_secs_f64();
    if a.trace_hash != b.trace_hash || a.trace_hash != one.trace_hash {
        return Err(format!(
            "seed 42 is not deterministic: trace hashes {:x} vs {:x}",
            a.trace_hash, b.trace_hash
        ));
    }
    progress("bare madsim message loop");
    // The median of three runs of 100,000 messages.
    let mut rates = Vec::new();
    for seed in 0..3 {
        let run = sim::bare::message_loop(seed, 4, 12_500);
        if run.messages != 100_000 {
            return Err(format!("the bare madsim loop delivered {} of 100,000 messages", run.messages));
        }
        rates.push(run.per_second() as u64);
    }
    let bare = median(rates);
    Ok(SimBench { rows, determinism_overhead: double / single.max(1e-9), bare_messages_per_s: bare as f64 })
}
