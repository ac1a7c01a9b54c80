//! `exsim`: conformance runs, benchmarks, and seeded runs and sweeps.

use clap::{Args, Parser, Subcommand};
use exsim_scenarios::bench::{self, alloc::Counting};
use exsim_scenarios::workload::WorkloadConfig;
use exsim_scenarios::{conform, sweep};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// One seeded run of the baseline scenario; prints the verdict.
    Run {
        /// The seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
    /// Many seeds of the baseline scenario, with a progress bar and a summary.
    Sweep {
        /// Seed range `A..B` (end exclusive) or `A..=B`.
        #[arg(long, conflicts_with = "count")]
        seeds: Option<String>,
        /// Number of seeds, starting at 0 (default 200).
        #[arg(long)]
        count: Option<u64>,
        /// Worker threads (default: available cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only shard K of N (`K/N`, 1-based): every N-th seed, for CI job matrices.
        #[arg(long)]
        shard: Option<String>,
        /// Also write a JSON report to this file.
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        workload: WorkloadArgs,
    },
}

#[derive(Args)]
struct WorkloadArgs {
    /// Commands per run (after the initial deposits).
    #[arg(long, default_value_t = WorkloadConfig::default().commands)]
    commands: usize,
    /// Users per run.
    #[arg(long, default_value_t = WorkloadConfig::default().users)]
    users: u64,
}

impl WorkloadArgs {
    fn config(&self) -> Result<WorkloadConfig, String> {
        if self.users == 0 {
            return Err("--users must be at least 1".into());
        }
        Ok(WorkloadConfig { commands: self.commands, users: self.users })
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

/// An error that ends the command with exit code 2 (bad input) or 1 (a failed check).
enum Failure {
    Usage(String),
    Check(String),
}

fn main() -> ExitCode {
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
        Cmd::Run { seed, workload } => {
            let config = workload.config().map_err(Failure::Usage)?;
            let report = sweep::run_baseline(seed, &config);
            match report.failure {
                None => {
                    println!(
                        "seed {seed}: ok ({} commands, {} trades, {:.1} ms)",
                        report.commands,
                        report.trades,
                        report.wall_us as f64 / 1e3
                    );
                    Ok(())
                }
                Some(f) => Err(Failure::Check(format!(
                    "reproduce: {}\nseed {seed}: FAILED\n{f}",
                    sweep::repro_command(seed, &config)
                ))),
            }
        }
        Cmd::Sweep { seeds, count, jobs, shard, report, workload } => {
            let config = workload.config().map_err(Failure::Usage)?;
            let seeds = match (seeds, count) {
                (Some(range), _) => parse_seed_range(&range).map_err(Failure::Usage)?,
                (None, Some(0)) => return Err(Failure::Usage("--count must be at least 1".into())),
                (None, count) => (0..count.unwrap_or(200)).collect(),
            };
            let seeds = match shard {
                Some(shard) => select_shard(seeds, &shard).map_err(Failure::Usage)?,
                None => seeds,
            };
            let jobs = match jobs {
                Some(0) => return Err(Failure::Usage("--jobs must be at least 1".into())),
                Some(j) => j,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            sweep_cmd(&seeds, &config, jobs, report)
        }
    }
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
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = bench::run_pipeline_bench(fixture.as_deref(), runs, max_commands, |m| {
        spinner.set_message(m.to_string())
    });
    spinner.finish_and_clear();
    let result = result.map_err(Failure::Usage)?;
    if json {
        println!("{}", serde_json::to_string(&result).expect("plain data serializes"));
    } else {
        print!("{}", result.table());
        if !bench::alloc::installed() {
            println!("(peak heap not measured: counting allocator not installed)");
        }
    }
    Ok(())
}

fn bench_storage(json: bool, dir: &std::path::Path, entries: u64) -> Result<(), Failure> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = bench::run_storage_bench(dir, entries, |m| spinner.set_message(m.to_string()));
    spinner.finish_and_clear();
    let result = result.map_err(Failure::Usage)?;
    if json {
        println!("{}", serde_json::to_string(&result).expect("plain data serializes"));
    } else {
        print!("{}", result.table());
    }
    Ok(())
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

fn select_shard(seeds: Vec<u64>, text: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("malformed shard `{text}` (expected K/N with 1 <= K <= N, e.g. 2/4)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(seeds.into_iter().enumerate().filter(|(i, _)| i % n == k - 1).map(|(_, s)| s).collect())
}

fn sweep_cmd(
    seeds: &[u64],
    config: &WorkloadConfig,
    jobs: usize,
    report: Option<PathBuf>,
) -> Result<(), Failure> {
    let bar = ProgressBar::new(seeds.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}")
            .expect("valid template"),
    );
    let started = std::time::Instant::now();
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let reports = sweep::sweep(seeds, config, jobs, |r| {
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
        println!("reproduce: {}", sweep::repro_command(r.seed, config));
        println!("seed {}: FAILED\n{}\n", r.seed, r.failure.as_deref().unwrap_or_default());
    }
    let commands: usize = reports.iter().map(|r| r.commands).sum();
    let trades: u64 = reports.iter().map(|r| r.trades).sum();
    println!("| scenario | runs | failures | commands | trades | wall | seeds/min |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| baseline | {} | {} | {} | {} | {:.2} s | {:.0} |",
        reports.len(),
        failed.len(),
        bench::thousands(commands as u64),
        bench::thousands(trades),
        wall.as_secs_f64(),
        reports.len() as f64 / wall.as_secs_f64().max(1e-9) * 60.0
    );
    if let Some(path) = report {
        let json = serde_json::json!({
            "scenario": "baseline",
            "commands_per_run": config.commands,
            "users": config.users,
            "runs": reports.len(),
            "failures": failed.len(),
            "failing_seeds": failed.iter().map(|r| r.seed).collect::<Vec<_>>(),
            "reports": reports,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("plain data serializes"))
            .map_err(|e| Failure::Usage(format!("{}: cannot write report: {e}", path.display())))?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Check(format!("{} of {} seeds failed", failed.len(), reports.len())))
    }
}
