//! `exsim`: conformance runs, benchmarks, and seeded runs and sweeps.

use clap::{Parser, Subcommand};
use exsim_scenarios::bench::{self, alloc::Counting};
use exsim_scenarios::conform;
use exsim_scenarios::scenario::{self, MAX_COMMANDS, MAX_FAULT_EVERY_MS, Params, Scenario};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

/// Prints a line on stdout (a full disk ends the program with one line, not a panic).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::put(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod cmd;

/// Prints `text` on stdout as it is (see [`cmd::output::write_stdout`]).
fn put(text: &str) {
    cmd::output::write_stdout(text);
}

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
    /// command that reproduces it) and, last, the run's trace hash on stdout; the trace
    /// (`--trace`) on stderr.
    Run(cmd::run::RunArgs),
    /// Bounded exhaustive crash-state exploration of every durable service: every
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
        /// Seeds to try per bug (1 to 1,000,000).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_seeds: u64,
        /// Commands per run (1 to 10,000,000).
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=MAX_COMMANDS as u64))]
        commands: u64,
    },
    /// Many runs over scenarios and seeds: a progress bar (a heartbeat line every 10 s in
    /// CI logs), a summary table, the failures' reproduce commands last, JSON and JUnit
    /// reports.
    Sweep(cmd::sweep::SweepArgs),
    /// Reruns recorded failures exactly as they ran: a sweep's JSON report, or seeds of
    /// one scenario (`--scenario`).
    Repro(cmd::repro::ReproArgs),
    /// The regression file: `regress add REPORT.json` appends a sweep's failing runs.
    Regress {
        #[command(subcommand)]
        what: cmd::regress::RegressCmd,
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
        /// Most runs to spend (2 to 1,000,000).
        #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
        budget: u64,
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
    /// Commands per run, 1 to 10,000,000 (default: the scenario's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COMMANDS as u64))]
    commands: Option<u64>,
    /// Mean simulated ms between faults, 1 to 86,400,000 (default: the scenario's; larger =
    /// fewer faults).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_FAULT_EVERY_MS))]
    fault_every_ms: Option<u64>,
    /// Plant a known bug in the engine (builds with `--features planted-bugs`; see
    /// `exsim planted`), e.g. to watch `shrink` work on a failing run.
    #[arg(long)]
    plant: Option<String>,
}

impl ParamArgs {
    fn params(self) -> Result<Params, Failure> {
        let planted = parse_plant(self.plant.as_deref())?;
        Ok(Params {
            commands: self.commands.map(|n| n as usize),
            fault_every_ms: self.fault_every_ms,
            planted,
        })
    }

    /// Whether any parameter was given.
    fn given(&self) -> bool {
        self.commands.is_some() || self.fault_every_ms.is_some() || self.plant.is_some()
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
        /// Runs per measurement, 1 to 1000 (the median is reported).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1_000))]
        runs: u64,
        /// Largest generated stream, 10,000 to 10,000,000 (10k, 100k and 1M are measured up
        /// to this).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..=MAX_COMMANDS as u64))]
        max_commands: u64,
    },
    /// Simulation speed: wall time per run at 1k, 10k and 100k commands (simulation build).
    Sim {
        /// Print one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Largest run measured, 1,000 to 10,000,000 (1k, 10k and 100k up to this).
        #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..=MAX_COMMANDS as u64))]
        max_commands: u64,
    },
    /// WAL appends, recovery and snapshots on the real disk.
    Storage {
        /// Print one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Directory on the disk to measure (default: target/bench-storage).
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-storage"))]
        dir: PathBuf,
        /// WAL entries for the recovery rows and accounts for the snapshot rows (1 to
        /// 100,000,000).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
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

/// `--jobs`, or the available cores.
#[cfg(madsim)]
fn parse_jobs(jobs: Option<usize>) -> Result<usize, Failure> {
    match jobs {
        Some(0) => Err(Failure::Usage("--jobs must be at least 1".into())),
        Some(j) if j > 1024 => Err(Failure::Usage(format!("--jobs {j}: at most 1024"))),
        Some(j) => Ok(j),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            put(&e.render().to_string());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", cmd::output::one_line(&e));
            return ExitCode::from(2);
        }
    };
    let command_line: Vec<String> = std::env::args().collect();
    match dispatch(cli.command, command_line) {
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

fn dispatch(command: Cmd, command_line: Vec<String>) -> Result<(), Failure> {
    match command {
        Cmd::Conform { input, out } => conform_cmd(&input, &out),
        Cmd::Bench { which: BenchCmd::Pipeline { json, fixture, runs, max_commands } } => {
            bench_pipeline(json, fixture, runs as usize, max_commands as usize)
        }
        Cmd::Bench { which: BenchCmd::Storage { json, dir, entries } } => bench_storage(json, &dir, entries),
        Cmd::Bench { which: BenchCmd::Sim { json, max_commands } } => bench_sim(json, max_commands as usize),
        Cmd::Run(args) => cmd::run::run(args),
        Cmd::Explore(args) => cmd::explore::run(args),
        Cmd::Coverage { reports } => cmd::coverage::run(&reports),
        Cmd::Planted { max_seeds, commands } => planted_cmd(max_seeds, commands as usize),
        Cmd::List => {
            for s in Scenario::ALL {
                say!("{:<17} {}", s.name(), s.describe());
            }
            Ok(())
        }
        Cmd::Sweep(args) => cmd::sweep::run(args, command_line),
        Cmd::Repro(args) => cmd::repro::run(args),
        Cmd::Regress { what } => cmd::regress::run(what),
        Cmd::Shrink { scenario, seed, params, budget, out, verbose } => {
            let scenario = Scenario::parse(&scenario).map_err(Failure::Usage)?;
            require_simulation(&[scenario])?;
            cmd::shrink::run(scenario, seed, params.params()?, budget as usize, out, verbose)
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
    say!(
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
        say!(
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

fn conform_cmd(input: &std::path::Path, out: &std::path::Path) -> Result<(), Failure> {
    let fixture = conform::load(input).map_err(|e| Failure::Usage(e.to_string()))?;
    let pipeline = conform::run(&fixture).map_err(|e| Failure::Check(format!("engine error: {e}")))?;
    let (tables, summary) = conform::render(&pipeline);
    conform::write(out, &tables)
        .map_err(|e| Failure::Usage(format!("{}: cannot write: {e}", out.display())))?;
    say!(
        "{} deposits, {} order commands: {} accepted, {} rejected, {} trades, {} resting",
        fixture.deposits,
        summary.orders,
        summary.accepted,
        summary.rejected,
        summary.trades,
        summary.resting
    );
    say!("wrote {} into {}", conform::OUTPUT_FILES.join(", "), out.display());
    Ok(())
}

fn bench_pipeline(json: bool, fixture: PathBuf, runs: usize, max_commands: usize) -> Result<(), Failure> {
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
        say!("{}", serde_json::to_string(result).expect("plain data serializes"));
    } else {
        crate::put(&table);
    }
}
