//! The pipeline benchmark: the in-process pipeline and the matching engine alone, on the
//! golden 100k set and on generated streams of 10k, 100k and 1M commands.

use super::{alloc, median, thousands};
use crate::conform;
use crate::workload::{self, WorkloadConfig};
use engine::{Command, Markets, MatchingEngine, MeInput, Pipeline, UbsSeq};
use serde::Serialize;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// One measured line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Commands (or ME inputs) processed per run.
    pub commands: u64,
    /// Trades per run.
    pub trades: u64,
    /// Median wall time of one run, nanoseconds.
    pub median_ns: u64,
    /// Commands per second at the median.
    pub per_second: u64,
    /// Nanoseconds per command at the median.
    pub ns_per_command: f64,
    /// Peak heap during one run, bytes (0 if the counting allocator is not installed).
    pub peak_bytes: u64,
}

/// The whole benchmark result.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineBench {
    /// Runs per row (the median is reported).
    pub runs: usize,
    /// Whether this is an optimised build.
    pub release: bool,
    /// The rows.
    pub rows: Vec<Row>,
}

impl PipelineBench {
    /// The table as Markdown.
    pub fn table(&self) -> String {
        let mut s = format!(
            "exsim bench pipeline ({} build, median of {} runs)\n\n| workload | commands | trades | time | commands/s | ns/command | peak heap |\n|---|---:|---:|---:|---:|---:|---:|\n",
            if self.release { "release" } else { "debug" },
            self.runs
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {} | {:.1} ms | {} | {:.0} | {:.1} MiB |\n",
                r.name,
                thousands(r.commands),
                thousands(r.trades),
                r.median_ns as f64 / 1e6,
                thousands(r.per_second),
                r.ns_per_command,
                r.peak_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        s
    }
}

fn measure(name: &str, runs: usize, commands: u64, mut once: impl FnMut() -> u64) -> Row {
    let mut times = Vec::with_capacity(runs);
    let mut trades = 0;
    let mut peak = 0;
    for _ in 0..runs {
        let base = alloc::start();
        let t = Instant::now();
        trades = black_box(once());
        times.push(t.elapsed().as_nanos() as u64);
        peak = peak.max(alloc::peak_since(base) as u64);
    }
    let median_ns = median(times).max(1);
    Row {
        name: name.to_string(),
        commands,
        trades,
        median_ns,
        per_second: (commands as u128 * 1_000_000_000 / median_ns as u128) as u64,
        ns_per_command: median_ns as f64 / commands.max(1) as f64,
        peak_bytes: peak,
    }
}

fn run_pipeline(markets: &Markets, commands: &[Command]) -> u64 {
    let mut p = Pipeline::new(markets.clone());
    for c in commands {
        p.submit(*c).expect("benchmark workloads are valid");
    }
    p.settlement().last_trade_id()
}

/// The inputs UBSCore forwards to the ME for this command stream.
fn me_inputs(markets: &Markets, commands: &[Command]) -> Vec<(UbsSeq, MeInput)> {
    let mut ubs = engine::UbsCore::new(markets.clone());
    let mut me = MatchingEngine::new(markets.clone());
    let mut events = Vec::new();
    let mut out = Vec::new();
    for c in commands {
        if let Some((seq, input)) = ubs.submit(*c).forward {
            events.clear();
            me.process(seq, &input, &mut events).expect("valid input");
            for e in &events {
                ubs.apply_event(e).expect("valid events");
            }
            out.push((seq, input));
        }
    }
    out
}

fn run_matching(markets: &Markets, inputs: &[(UbsSeq, MeInput)]) -> u64 {
    let mut me = MatchingEngine::new(markets.clone());
    let mut events = Vec::with_capacity(64);
    for (seq, input) in inputs {
        events.clear();
        me.process(*seq, input, &mut events).expect("valid input");
        black_box(&events);
    }
    me.next_trade_id() - 1
}

/// The hot-standby replica over the same inputs: matching plus an xxh3 link per event
/// (and the event log it keeps for a promotion). Its cost over `run_matching` is the
/// replica's overhead.
fn run_replica(markets: &Markets, inputs: &[(UbsSeq, MeInput)]) -> u64 {
    let mut replica = engine::replica::Replica::new(markets.clone());
    let mut links = Vec::with_capacity(64);
    for (seq, input) in inputs {
        let command = match *input {
            MeInput::Place(order) => Command::Place(order),
            MeInput::Cancel { order_id, user } => Command::Cancel { order_id, user },
            MeInput::Reject { .. } => continue,
        };
        let record = engine::UbsRecord { seq: *seq, command, outcome: engine::Outcome::Accepted };
        links.clear();
        replica.apply(&record, &mut links).expect("valid input");
        black_box(&links);
    }
    replica.engine().next_trade_id() - 1
}

/// Runs the benchmark; `fixture` is the golden 100k set's directory (skipped if absent).
pub fn run_pipeline_bench(
    fixture: Option<&Path>,
    runs: usize,
    max_commands: usize,
    progress: impl Fn(&str),
) -> Result<PipelineBench, String> {
    let mut rows = Vec::new();
    let mut golden = None;
    if let Some(dir) = fixture {
        progress("loading the golden 100k set");
        let f = conform::load(dir).map_err(|e| e.to_string())?;
        golden = Some(f);
    }
    if let Some(f) = &golden {
        progress("pipeline, golden 100k");
        rows.push(measure("pipeline, golden 100k", runs, f.commands.len() as u64, || {
            run_pipeline(&f.markets, &f.commands)
        }));
    }
    let markets = workload::default_markets();
    let mut sizes = vec![10_000usize, 100_000, 1_000_000];
    sizes.retain(|n| *n <= max_commands);
    let mut largest = None;
    for n in &sizes {
        progress(&format!("generating {n} commands"));
        let mut rng = sim::seed::rng(1, sim::seed::Stream::Workload);
        let commands = workload::generate(&mut rng, &WorkloadConfig { commands: *n, users: 1_000 });
        progress(&format!("pipeline, generated {n}"));
        let label = format!("pipeline, generated {}", short(*n));
        rows.push(measure(&label, runs, commands.len() as u64, || run_pipeline(&markets, &commands)));
        largest = Some(commands);
    }
    if let Some(f) = &golden {
        progress("matching alone, golden 100k");
        let inputs = me_inputs(&f.markets, &f.commands);
        rows.push(measure("matching alone, golden 100k", runs, inputs.len() as u64, || {
            run_matching(&f.markets, &inputs)
        }));
        progress("replica (matching + hash chain), golden 100k");
        rows.push(measure("replica (matching + hash chain), golden 100k", runs, inputs.len() as u64, || {
            run_replica(&f.markets, &inputs)
        }));
    }
    if let (Some(commands), Some(n)) = (&largest, sizes.last()) {
        progress("matching alone, generated");
        let inputs = me_inputs(&markets, commands);
        let label = format!("matching alone, generated {}", short(*n));
        rows.push(measure(&label, runs, inputs.len() as u64, || run_matching(&markets, &inputs)));
    }
    Ok(PipelineBench { runs, release: !cfg!(debug_assertions), rows })
}

fn short(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
