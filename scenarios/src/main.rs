//! `exsim`: conformance runs, benchmarks, and seeded runs and sweeps.

use clap::{Parser, Subcommand};
use exsim_scenarios::bench::{self, alloc::Counting};
use exsim_scenarios::scenario::{self, Params, RunReport, Scenario};
use exsim_scenarios::{conform, sweep};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

mod cmd;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Deterministic simulation testing of a three-service exchange.
#[derive(Parser)]
#[command(name = "exsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a zero_x_infinity fixture and write balances, orderbook, trades and rejects.
    Conform {
        /// Fixture directory (holding `input/` or the input CSVs themselves).
        #[arg(long)]
        input: PathBuf,
        /// Output directory (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Benchmarks that print a table.
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// One seeded run of a scenario. Prints the verdict (on failure, first line: the
    /// command that reproduces it); the last line is the run's trace hash.
    Run {
        /// Scenario (see `exsim list`).
        #[arg(long, default_value = "crash")]
        scenario: String,
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        params: ParamArgs,
        /// Print the trace of the run.
        #[arg(long)]
        trace: bool,
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
    },
    /// Bounded exhaustive crash-state exploration of the three durable services: every
    /// filesystem operation of a small workload, every bounded way its pending writes end,
    /// every crash inside the recovery.
    Explore(cmd::explore::ExploreArgs),
    /// One service of the real exchange as a process on a real disk over TCP (normal
    /// build: `cargo real node …`). SIGTERM stops it gracefully (snapshot, exit 0).
    Node(cmd::real::NodeArgs),
    /// The three services as processes on DATA; prints their addresses, restarts any that
    /// stops on its own, stops them gracefully at the end (normal build).
    Cluster(cmd::real::ClusterArgs),
    /// The seeded workload sent to a running UBSCore by real clients; throughput and
    /// latency (normal build).
    Load(cmd::real::LoadArgs),
    /// A real cluster under load, killed with SIGKILL and SIGTERM and restarted at random,
    /// then judged by the checker from its data directories (normal build).
    Crashtest(cmd::real::CrashtestArgs),
    /// The crash-window coverage map merged from `sweep --json` and `explore --json`
    /// reports, and every cell nothing hit (exit 1 if any).
    Coverage {
        /// JSON reports.
        reports: Vec<PathBuf>,
    },
    /// The scenarios, one a line, with what each does.
    List,
    /// Plants each known bug in turn and counts the seeds until a run catches it (needs a
    /// build with `--features planted-bugs`).
    Planted {
        /// Seeds to try per bug.
        #[arg(long, default_value_t = 300)]
        max_seeds: u64,
        /// Commands per run.
        #[arg(long, default_value_t = 2_000)]
        commands: usize,
    },
    /// Many runs over scenarios and seeds, with a progress bar, a summary table and reports.
    Sweep {
        /// Comma-separated scenarios (default: every simulation scenario).
        #[arg(long)]
        scenarios: Option<String>,
        /// Seed range `A..B` (end exclusive) or `A..=B`.
        #[arg(long, conflicts_with = "count")]
        seeds: Option<String>,
        /// Number of seeds per scenario, starting at 0 (default 100).
        #[arg(long)]
        count: Option<u64>,
        /// Worker threads, each running one simulation at a time (default: available cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard K of N (`K/N`, 1-based): every N-th run, for CI job matrices.
        #[arg(long)]
        shard: Option<String>,
        #[command(flatten)]
        params: ParamArgs,
        /// Write a JSON report (every run: scenario, seed, verdict, trace hash, wall time).
        #[arg(long, alias = "report")]
        json: Option<PathBuf>,
        /// Write a JUnit XML report.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Reruns recorded failures: a sweep's JSON report, or seeds of one scenario.
    Repro {
        /// A JSON report written by `sweep --json`, or seeds.
        #[arg(required = true)]
        what: Vec<String>,
        /// Scenario of the seeds (when seeds are given).
        #[arg(long, default_value = "crash")]
        scenario: String,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Reduces a failing run by delta debugging (its plan's faults, its fault rates, its
    /// commands one by one) while the same kind of violation occurs; writes the minimal
    /// plan and prints it with the command that replays it.
    Shrink {
        /// Scenario.
        #[arg(long)]
        scenario: String,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        params: ParamArgs,
        /// Most runs to spend.
        #[arg(long, default_value_t = 1_000)]
        budget: usize,
        /// Where to write the minimal plan (default `shrunk-SCENARIO-SEED.json`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print every accepted step (a run that still failed the same way) on stderr: pass, commands, faults.
        #[arg(long)]
        verbose: bool,
    },
}

/// Run parameters shared by run, sweep, repro and shrink.
#[derive(clap::Args, Clone)]
struct ParamArgs {
    /// Commands per run (default: the scenario's).
    #[arg(long)]
    commands: Option<usize>,
    /// Mean simulated ms between faults (default: the scenario's; larger = fewer faults).
    #[arg(long)]
    fault_every_ms: Option<u64>,
    /// Plant a known bug in the engine (builds with `--features planted-bugs`; see
    /// `exsim planted`), e.g. to watch `shrink` work on a failing run.
    #[arg(long)]
    plant: Option<String>,
}

impl ParamArgs {
    fn params(self, trace: bool) -> Result<Params, Failure> {
        if self.commands == Some(0) {
            return Err(Failure::Usage("--commands must be at least 1".into()));
        }
        if self.fault_every_ms == Some(0) {
            return Err(Failure::Usage("--fault-every-ms must be at least 1".into()));
        }
        let planted = parse_plant(self.plant.as_deref())?;
        Ok(Params { commands: self.commands, fault_every_ms: self.fault_every_ms, trace, planted })
    }
}

#[derive(Subcommand)]
enum BenchCmd {
    /// In-process pipeline and matching alone: golden 100k set, generated 10k–1M streams.
    Pipeline {
        /// Print one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// The golden 100k fixture directory.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/zxi/default_100k"))]
        fixture: PathBuf,
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Largest generated stream (10k, 100k and 1M are measured up to this).
        #[arg(long, default_value_t = 1_000_000)]
        max_commands: usize,
    },
    /// Simulation speed: wall time per run at 1k, 10k and 100k commands (simulation build).
    Sim {
        /// Print one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Largest run measured (1k, 10k and 100k up to this).
        #[arg(long, default_value_t = 100_000)]
        max_commands: usize,
    },
    /// WAL appends, recovery and snapshots on the real disk.
    Storage {
        /// Print one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Directory on the disk to measure (default: target/bench-storage).
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-storage"))]
        dir: PathBuf,
        /// WAL entries for the recovery rows and accounts for the snapshot rows.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
    },
}

/// The bug named by `--plant`, if any.
fn parse_plant(name: Option<&str>) -> Result<Option<engine::bugs::Bug>, Failure> {
    let Some(name) = name else { return Ok(None) };
    let bug = engine::bugs::Bug::ALL.into_iter().find(|b| b.name() == name).ok_or_else(|| {
        let names: Vec<_> = engine::bugs::Bug::ALL.iter().map(|b| b.name()).collect();
        Failure::Usage(format!("unknown bug `{name}` (known: {})", names.join(", ")))
    })?;
    if !engine::bugs::AVAILABLE {
        return Err(Failure::Usage("--plant needs a build with --features planted-bugs".into()));
    }
    Ok(Some(bug))
}

/// Fails early, before any work, if `path` cannot be written.
fn check_writable(path: &std::path::Path) -> Result<(), Failure> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| Failure::Usage(format!("{}: cannot write: {e}", path.display())))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// A progress bar on stderr with `template`.
#[cfg(madsim)]
fn progress_bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// An error that ends the command with exit code 2 (bad input) or 1 (a failed check).
enum Failure {
    Usage(String),
    Check(String),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `exsim … | head` into a panic on the next print;
    // a command-line tool should simply stop, as other Unix tools do.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Check(e)) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(command: Cmd) -> Result<(), Failure> {
    match command {
        Cmd::Conform { input, out } => conform_cmd(&input, &out),
        Cmd::Bench { which: BenchCmd::Pipeline { json, fixture, runs, max_commands } } => {
            bench_pipeline(json, fixture, runs, max_commands)
        }
        Cmd::Bench { which: BenchCmd::Storage { json, dir, entries } } => bench_storage(json, &dir, entries),
        Cmd::Bench { which: BenchCmd::Sim { json, max_commands } } => bench_sim(json, max_commands),
        Cmd::Run { scenario, seed, params, trace, plan, save_plan, check_determinism } => {
            let scenario = Scenario::parse(&scenario).map_err(Failure::Usage)?;
            require_simulation(&[scenario])?;
            let params = params.params(trace)?;
            run_cmd(scenario, seed, &params, plan, save_plan, check_determinism)
        }
        Cmd::Explore(args) => cmd::explore::run(args),
        Cmd::Coverage { reports } => cmd::coverage::run(&reports),
        Cmd::Planted { max_seeds, commands } => planted_cmd(max_seeds, commands),
        Cmd::List => {
            for s in Scenario::ALL {
                println!("{:<17} {}", s.name(), s.describe());
            }
            Ok(())
        }
        Cmd::Sweep { scenarios, seeds, count, jobs, shard, params, json, junit } => {
            let scenarios = match scenarios {
                Some(list) => list
                    .split(',')
                    .map(|s| Scenario::parse(s.trim()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(Failure::Usage)?,
                None => Scenario::defaults(),
            };
            require_simulation(&scenarios)?;
            let seeds = match (seeds, count) {
                (Some(range), _) => parse_seed_range(&range).map_err(Failure::Usage)?,
                (None, Some(0)) => return Err(Failure::Usage("--count must be at least 1".into())),
                (None, count) => (0..count.unwrap_or(100)).collect(),
            };
            let jobs = parse_jobs(jobs)?;
            let runs: Vec<(Scenario, u64)> =
                scenarios.iter().flat_map(|s| seeds.iter().map(move |seed| (*s, *seed))).collect();
            let runs = match shard {
                Some(shard) => select_shard(runs, &shard).map_err(Failure::Usage)?,
                None => runs,
            };
            sweep_cmd(&runs, &params.params(false)?, jobs, json, junit)
        }
        Cmd::Repro { what, scenario, params } => repro_cmd(&what, &scenario, params.params(false)?),
        Cmd::Shrink { scenario, seed, params, budget, out, verbose } => {
            let scenario = Scenario::parse(&scenario).map_err(Failure::Usage)?;
            require_simulation(&[scenario])?;
            cmd::shrink::run(scenario, seed, params.params(false)?, budget, out, verbose)
        }
        Cmd::Node(a) => real_node(a),
        Cmd::Cluster(a) => real_cluster(a),
        Cmd::Load(a) => real_load(a),
        Cmd::Crashtest(a) => real_crashtest(a),
    }
}

#[cfg(madsim)]
fn real_node(_: cmd::real::NodeArgs) -> Result<(), Failure> {
    Err(Failure::Usage(cmd::real::needs_real_build("node")))
}

#[cfg(madsim)]
fn real_cluster(_: cmd::real::ClusterArgs) -> Result<(), Failure> {
    Err(Failure::Usage(cmd::real::needs_real_build("cluster")))
}

#[cfg(madsim)]
fn real_load(_: cmd::real::LoadArgs) -> Result<(), Failure> {
    Err(Failure::Usage(cmd::real::needs_real_build("load")))
}

#[cfg(madsim)]
fn real_crashtest(_: cmd::real::CrashtestArgs) -> Result<(), Failure> {
    Err(Failure::Usage(cmd::real::needs_real_build("crashtest")))
}

/// A real-mode failure as a CLI failure: exit code 2 is a usage error, others a check.
#[cfg(not(madsim))]
fn real_failure((code, message): (u8, String)) -> Failure {
    if code == 2 { Failure::Usage(message) } else { Failure::Check(message) }
}

#[cfg(not(madsim))]
fn real_node(a: cmd::real::NodeArgs) -> Result<(), Failure> {
    let plant = parse_plant(a.plant.as_deref())?;
    cmd::real::node(a, plant).map_err(real_failure)
}

#[cfg(not(madsim))]
fn real_cluster(a: cmd::real::ClusterArgs) -> Result<(), Failure> {
    cmd::real::cluster(a).map_err(Failure::Check)
}

#[cfg(not(madsim))]
fn real_load(a: cmd::real::LoadArgs) -> Result<(), Failure> {
    cmd::real::load(a).map_err(Failure::Check)
}

#[cfg(not(madsim))]
fn real_crashtest(a: cmd::real::CrashtestArgs) -> Result<(), Failure> {
    parse_plant(a.plant.as_deref())?;
    cmd::real::crashtest(a).map_err(real_failure)
}

fn planted_cmd(max_seeds: u64, commands: usize) -> Result<(), Failure> {
    require_simulation(&[Scenario::Crash])?;
    if !engine::bugs::AVAILABLE {
        return Err(Failure::Usage(
            "this build cannot plant bugs: run `cargo run --release --features planted-bugs -- planted`"
                .into(),
        ));
    }
    if max_seeds == 0 || commands == 0 {
        return Err(Failure::Usage("--max-seeds and --commands must be at least 1".into()));
    }
    println!(
        "| planted bug | scenario | seeds to detection | violation | first failed check |\n|---|---|---:|---|---|"
    );
    let mut missed = 0;
    for bug in engine::bugs::Bug::ALL {
        let (seeds, violation) = scenario::hunt(bug, commands, max_seeds);
        let text = violation.as_ref().map(|v| v.to_string());
        let check = text.as_deref().and_then(|f| f.lines().next()).unwrap_or("NOT CAUGHT");
        let check: String = check.chars().take(110).collect();
        if violation.is_none() {
            missed += 1;
        }
        println!(
            "| {bug} | {} | {} | {} | {} |",
            scenario::hunting_ground(bug),
            if violation.is_some() { seeds.to_string() } else { format!("> {seeds}") },
            violation.as_ref().map_or("-", |v| v.kind()),
            check.replace('|', "/")
        );
    }
    match missed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} planted bugs were not caught"))),
    }
}

fn parse_jobs(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(0) => Err(Failure::Usage("--jobs must be at least 1".into())),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Reruns the failing runs of a JSON report, or seeds of one scenario.
fn repro_cmd(what: &[String], scenario: &str, params: Params) -> Result<(), Failure> {
    let mut runs: Vec<(Scenario, u64, Params)> = Vec::new();
    for item in what {
        if let Ok(seed) = item.parse::<u64>() {
            let s = Scenario::parse(scenario).map_err(Failure::Usage)?;
            runs.push((s, seed, params));
            continue;
        }
        let text = std::fs::read_to_string(item)
            .map_err(|e| Failure::Usage(format!("{item}: not a seed and not a readable report: {e}")))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{item}: not a JSON report: {e}")))?;
        let failing =
            json["failing"].as_array().ok_or_else(|| Failure::Usage(format!("{item}: no `failing` list")))?;
        for f in failing {
            let (Some(s), Some(seed)) = (f["scenario"].as_str(), f["seed"].as_u64()) else {
                return Err(Failure::Usage(format!("{item}: malformed failing entry {f}")));
            };
            let p = Params {
                commands: f["commands"].as_u64().map(|n| n as usize),
                fault_every_ms: f["fault_every_ms"].as_u64(),
                trace: false,
                planted: None,
            };
            runs.push((Scenario::parse(s).map_err(Failure::Usage)?, seed, p));
        }
    }
    if runs.is_empty() {
        println!("nothing to reproduce: the report has no failing runs");
        return Ok(());
    }
    require_simulation(&runs.iter().map(|r| r.0).collect::<Vec<_>>())?;
    let mut failed = 0;
    for (s, seed, p) in &runs {
        let report = scenario::run(*s, *seed, p);
        match &report.failure {
            None => println!("{}", verdict_line(&report)),
            Some(f) => {
                failed += 1;
                println!("{}", failure_text(&report, p, f));
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(Failure::Check(format!("{n} of {} runs still fail", runs.len()))),
    }
}

/// One run (of the seed's plan or of `plan`), its verdict and hashes; optionally twice,
/// comparing the traces line by line.
fn run_cmd(
    scenario: Scenario,
    seed: u64,
    params: &Params,
    plan: Option<PathBuf>,
    save_plan: Option<PathBuf>,
    check_determinism: bool,
) -> Result<(), Failure> {
    let plan_path = plan.clone();
    let plan = match plan {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::Usage(format!("{}: cannot read plan: {e}", path.display())))?;
            let plan: sim::plan::FaultPlan = serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("{}: not a fault plan: {e}", path.display())))?;
            plan.validate().map_err(|e| Failure::Usage(format!("{}: invalid plan: {e}", path.display())))?;
            Some(plan)
        }
    };
    if let Some(path) = &save_plan {
        check_writable(path)?;
    }
    let plan_arg = plan_path.map(|p| format!(" --plan {}", p.display())).unwrap_or_default();
    let options = scenario::RunOptions { plan, keep_trace: check_determinism };
    let report = scenario::run_with(scenario, seed, params, &options);
    if check_determinism {
        let again = scenario::run_with(scenario, seed, params, &options);
        if let Some(diff) = first_trace_difference(&report, &again) {
            return Err(Failure::Check(format!("{scenario} seed {seed} is not deterministic:\n{diff}")));
        }
        println!("deterministic: two runs, {} equal trace lines", report.trace.as_ref().map_or(0, Vec::len));
    }
    if let (Some(path), Some(plan)) = (&save_plan, &report.plan) {
        let json = serde_json::to_string_pretty(plan).expect("plain data serializes");
        std::fs::write(path, json)
            .map_err(|e| Failure::Usage(format!("{}: cannot write plan: {e}", path.display())))?;
    }
    let digest = report.state_digest.map_or("-".into(), |d| format!("0x{d:016x}"));
    let hash = format!("state digest: {digest}\ntrace hash: 0x{:016x}", report.trace_hash);
    match &report.failure {
        None => {
            println!("{}\n{hash}", verdict_line(&report));
            Ok(())
        }
        Some(f) => {
            // The reproduce command (first line) must replay the same plan.
            let text = failure_text(&report, params, f);
            let text = match text.split_once('\n') {
                Some((first, rest)) => format!("{first}{plan_arg}\n{rest}"),
                None => text,
            };
            Err(Failure::Check(format!("{text}{hash}")))
        }
    }
}

/// Where two runs' traces first differ: the line number and each run's line.
fn first_trace_difference(a: &RunReport, b: &RunReport) -> Option<String> {
    let (x, y) = (a.trace.as_deref().unwrap_or_default(), b.trace.as_deref().unwrap_or_default());
    let at = (0..x.len().max(y.len())).find(|i| x.get(*i) != y.get(*i))?;
    let line = |t: &[String]| t.get(at).cloned().unwrap_or_else(|| "(trace ended)".into());
    Some(format!("first difference at trace line {}:\n  run 1: {}\n  run 2: {}", at + 1, line(x), line(y)))
}

/// Simulation scenarios need the `--cfg madsim` build.
fn require_simulation(scenarios: &[Scenario]) -> Result<(), Failure> {
    if let Some(s) = scenarios.iter().find(|s| s.needs_simulation() && !sim::SIMULATION_BUILD) {
        return Err(Failure::Usage(format!(
            "scenario {s} needs the simulation build, but this binary was built without --cfg madsim \
             (RUSTFLAGS replaced .cargo/config.toml's flags?); rebuild with RUSTFLAGS=\"--cfg madsim\""
        )));
    }
    Ok(())
}

fn verdict_line(r: &RunReport) -> String {
    let mut line = format!(
        "{} seed {}: ok ({} commands, {:.1} ms wall",
        r.scenario,
        r.seed,
        r.commands,
        r.wall_us as f64 / 1e3
    );
    if r.scenario.needs_simulation() {
        line += &format!(
            ", {:.1} s simulated, {} messages, {} kills, faults {:?}, trace hash {:016x}",
            r.sim_ms as f64 / 1e3,
            r.messages,
            r.kills,
            r.faults,
            r.trace_hash
        );
    }
    line + ")"
}

fn failure_text(r: &RunReport, params: &Params, failure: &str) -> String {
    let mut text = format!(
        "reproduce: {}\ncommit: {}\n{} seed {}: FAILED\n{failure}\n",
        scenario::repro_command(r.scenario, r.seed, params),
        env!("EXSIM_COMMIT"),
        r.scenario,
        r.seed
    );
    for (node, lines) in &r.tails {
        if !lines.is_empty() {
            text += &format!("--- last trace lines of {node}\n{}\n", lines.join("\n"));
        }
    }
    text
}

fn conform_cmd(input: &std::path::Path, out: &std::path::Path) -> Result<(), Failure> {
    let fixture = conform::load(input).map_err(|e| Failure::Usage(e.to_string()))?;
    let pipeline = conform::run(&fixture).map_err(|e| Failure::Check(format!("engine error: {e}")))?;
    let (tables, summary) = conform::render(&pipeline);
    conform::write(out, &tables)
        .map_err(|e| Failure::Usage(format!("{}: cannot write: {e}", out.display())))?;
    println!(
        "{} deposits, {} order commands: {} accepted, {} rejected, {} trades, {} resting",
        fixture.deposits, summary.orders, summary.accepted, summary.rejected, summary.trades, summary.resting
    );
    println!("wrote {} into {}", conform::OUTPUT_FILES.join(", "), out.display());
    Ok(())
}

fn bench_pipeline(json: bool, fixture: PathBuf, runs: usize, max_commands: usize) -> Result<(), Failure> {
    if runs == 0 {
        return Err(Failure::Usage("--runs must be at least 1".into()));
    }
    let fixture = if fixture.exists() {
        Some(fixture)
    } else {
        eprintln!("note: {} not found; skipping the golden-set rows", fixture.display());
        None
    };
    let result =
        with_spinner(|progress| bench::run_pipeline_bench(fixture.as_deref(), runs, max_commands, progress))
            .map_err(Failure::Usage)?;
    print_bench(json, &result, result.table());
    Ok(())
}

fn bench_storage(json: bool, dir: &std::path::Path, entries: u64) -> Result<(), Failure> {
    let result =
        with_spinner(|progress| bench::run_storage_bench(dir, entries, progress)).map_err(Failure::Usage)?;
    print_bench(json, &result, result.table());
    Ok(())
}

#[cfg(madsim)]
fn bench_sim(json: bool, max_commands: usize) -> Result<(), Failure> {
    if max_commands < 1_000 {
        return Err(Failure::Usage("--max-commands must be at least 1000".into()));
    }
    let result =
        with_spinner(|progress| bench::run_sim_bench(max_commands, progress)).map_err(Failure::Check)?;
    print_bench(json, &result, result.table());
    Ok(())
}

#[cfg(not(madsim))]
fn bench_sim(_json: bool, _max_commands: usize) -> Result<(), Failure> {
    require_simulation(&[Scenario::Crash])
}

/// Runs a long benchmark behind a spinner that shows its progress messages (on stderr).
fn with_spinner<T>(run: impl FnOnce(&dyn Fn(&str)) -> T) -> T {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = run(&|m: &str| spinner.set_message(m.to_string()));
    spinner.finish_and_clear();
    result
}

/// Prints a benchmark result as one JSON object or as its table.
fn print_bench<T: serde::Serialize>(json: bool, result: &T, table: String) {
    if json {
        println!("{}", serde_json::to_string(result).expect("plain data serializes"));
    } else {
        print!("{table}");
    }
}

fn parse_seed_range(text: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("malformed seed range `{text}` (expected A..B or A..=B, e.g. 0..1000)");
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let seeds: Vec<u64> = if inclusive { (a..=b).collect() } else { (a..b).collect() };
    if seeds.is_empty() {
        return Err(format!("seed range `{text}` is empty"));
    }
    Ok(seeds)
}

fn select_shard<T>(runs: Vec<T>, text: &str) -> Result<Vec<T>, String> {
    let bad = || format!("malformed shard `{text}` (expected K/N with 1 <= K <= N, e.g. 2/4)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(runs.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, s)| s).collect())
}

fn sweep_cmd(
    runs: &[(Scenario, u64)],
    params: &Params,
    jobs: usize,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
) -> Result<(), Failure> {
    let bar = ProgressBar::new(runs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {per_sec}, eta {eta} {msg}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let reports = sweep::sweep(runs, params, jobs, |r| {
        if r.failure.is_some() {
            let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} FAILED"));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall = started.elapsed();
    let failed: Vec<_> = reports.iter().filter(|r| r.failure.is_some()).collect();
    for r in &failed {
        println!("{}", failure_text(r, params, r.failure.as_deref().unwrap_or_default()));
    }
    print!("{}", summary_table(&reports));
    let mut coverage: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in &reports {
        for (cell, n) in &r.crash_points {
            *coverage.entry(cell.clone()).or_default() += n;
        }
    }
    if !coverage.is_empty() {
        let all = sim::coverage::universe().len();
        println!(
            "crash-window coverage: {} of {all} cells hit (the map: --json, then `exsim coverage REPORT`)",
            all - sim::coverage::unhit(&coverage).len()
        );
    }
    println!(
        "{} runs in {:.2} s wall on {jobs} jobs: {:.1} runs/s ({:.0} runs/minute)",
        reports.len(),
        wall.as_secs_f64(),
        reports.len() as f64 / wall.as_secs_f64().max(1e-9),
        reports.len() as f64 / wall.as_secs_f64().max(1e-9) * 60.0
    );
    if let Some(path) = json {
        let runs_json: Vec<_> = reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "scenario": r.scenario, "seed": r.seed, "verdict": if r.failure.is_some() { "fail" } else { "pass" },
                    "trace_hash": format!("0x{:016x}", r.trace_hash), "state_digest": r.state_digest.map(|d| format!("0x{d:016x}")), "wall_us": r.wall_us, "sim_ms": r.sim_ms,
                    "commands": r.commands, "kills": r.kills, "segments_removed": r.segments_removed, "faults": r.faults, "crash_points": r.crash_points,
                    "failure": r.failure, "violation": r.violation,
                })
            })
            .collect();
        let json = serde_json::json!({
            "runs": reports.len(),
            "failures": failed.len(),
            "failing": failed.iter().map(|r| serde_json::json!({
                "scenario": r.scenario, "seed": r.seed, "commands": params.commands, "fault_every_ms": params.fault_every_ms,
                "reproduce": scenario::repro_command(r.scenario, r.seed, params),
                "plan": r.plan,
            })).collect::<Vec<_>>(),
            "coverage": coverage,
            "reports": runs_json,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("plain data serializes"))
            .map_err(|e| Failure::Usage(format!("{}: cannot write report: {e}", path.display())))?;
    }
    if let Some(path) = junit {
        std::fs::write(&path, junit_xml(&reports, params))
            .map_err(|e| Failure::Usage(format!("{}: cannot write JUnit report: {e}", path.display())))?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Check(format!("{} of {} runs failed", failed.len(), reports.len())))
    }
}

fn summary_table(reports: &[RunReport]) -> String {
    use std::collections::BTreeMap;
    let mut out = String::from(
        "| scenario | runs | failures | commands | kills | faults injected | crash points hit | simulated | wall | seeds/s |\n|---|---:|---:|---:|---:|---|---|---:|---:|---:|\n",
    );
    let mut scenarios: Vec<Scenario> = reports.iter().map(|r| r.scenario).collect();
    scenarios.dedup();
    let join = |m: &BTreeMap<&str, u64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        }
    };
    for s in scenarios {
        let rs: Vec<_> = reports.iter().filter(|r| r.scenario == s).collect();
        let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
        let mut points: BTreeMap<&str, u64> = BTreeMap::new();
        for r in &rs {
            for (k, v) in &r.faults {
                *faults.entry(k).or_default() += v;
            }
            for (k, v) in &r.crash_points {
                *points.entry(k).or_default() += v;
            }
        }
        let wall = rs.iter().map(|r| r.wall_us).sum::<u64>() as f64 / 1e6;
        out += &format!(
            "| {s} | {} | {} | {} | {} | {} | {} | {:.1} s | {wall:.2} s | {:.1} |\n",
            rs.len(),
            rs.iter().filter(|r| r.failure.is_some()).count(),
            bench::thousands(rs.iter().map(|r| r.commands as u64).sum()),
            rs.iter().map(|r| r.kills).sum::<u64>(),
            join(&faults),
            if points.is_empty() {
                "-".to_string()
            } else {
                format!("{} in {} cells", points.values().sum::<u64>(), points.len())
            },
            rs.iter().map(|r| r.sim_ms).sum::<u64>() as f64 / 1e3,
            rs.len() as f64 / wall.max(1e-9),
        );
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn junit_xml(reports: &[RunReport], params: &Params) -> String {
    let failures = reports.iter().filter(|r| r.failure.is_some()).count();
    let total: f64 = reports.iter().map(|r| r.wall_us as f64 / 1e6).sum();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"exsim sweep\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n",
        reports.len()
    );
    for r in reports {
        x += &format!(
            "  <testcase classname=\"exsim.{}\" name=\"seed {}\" time=\"{:.3}\">",
            r.scenario,
            r.seed,
            r.wall_us as f64 / 1e6
        );
        if let Some(f) = &r.failure {
            x += &format!(
                "\n    <failure type=\"{}\" message=\"{}\">{}</failure>\n  ",
                r.violation.as_ref().map_or("failure", |v| v.kind()),
                xml_escape(&scenario::repro_command(r.scenario, r.seed, params)),
                xml_escape(f)
            );
        }
        x += "</testcase>\n";
    }
    x + "</testsuite>\n"
}
