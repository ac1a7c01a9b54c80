//! `exsim regress add REPORT.json`: appends a sweep's failing runs, with every parameter
//! they ran with, to the regression file that `cargo test` runs (tests/regressions.rs).

use super::report::failing_runs;
use crate::Failure;
use exsim_scenarios::regress::{self, Entry};
use std::io::Write;
use std::path::PathBuf;

/// `exsim regress …`.
#[derive(clap::Subcommand)]
pub enum RegressCmd {
    /// Appends the failing runs of JSON reports to the regression file (skipping runs it
    /// already holds, and runs with a planted bug, which are not regressions).
    Add {
        /// JSON reports written by `sweep --json`.
        #[arg(required = true)]
        reports: Vec<String>,
        /// The regression file.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/regression_seeds.txt"))]
        file: PathBuf,
    },
    /// Lists the regression file's runs, one a line.
    List {
        /// The regression file.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/regression_seeds.txt"))]
        file: PathBuf,
    },
}

/// Runs `exsim regress …`.
pub fn run(cmd: RegressCmd) -> Result<(), Failure> {
    match cmd {
        RegressCmd::Add { reports, file } => add(&reports, &file),
        RegressCmd::List { file } => {
            for (_, e) in read(&file)? {
                say!("{}", e.line());
            }
            Ok(())
        }
    }
}

fn read(file: &PathBuf) -> Result<Vec<(usize, Entry)>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("{}: cannot read the regression file: {e}", file.display())))?;
    regress::parse(&text).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))
}

fn add(reports: &[String], file: &PathBuf) -> Result<(), Failure> {
    // A new file is started; an existing one must parse.
    let mut known: Vec<Entry> =
        if file.exists() { read(file)?.into_iter().map(|(_, e)| e).collect() } else { Vec::new() };
    let mut lines = Vec::new();
    for path in reports {
        let name =
            std::path::Path::new(path).file_name().map_or(path.clone(), |n| n.to_string_lossy().into_owned());
        for f in failing_runs(path)? {
            if let Some(bug) = f.params.planted {
                say!("skipped {} seed {}: planted bug {bug} (not a regression)", f.scenario, f.seed);
                continue;
            }
            if f.kind == "timeout" {
                // It ran past a wall-clock limit: in the regression test it would have none.
                say!(
                    "skipped {} seed {}: a wall-clock timeout (rerun it with `exsim repro`)",
                    f.scenario,
                    f.seed
                );
                continue;
            }
            let entry = Entry {
                scenario: f.scenario,
                seed: f.seed,
                commands: f.params.commands,
                fault_every_ms: f.params.fault_every_ms,
            };
            if known.iter().any(|k| k.same_run(&entry)) {
                say!("skipped {}: already in {}", entry.line(), file.display());
                continue;
            }
            let note: String = f.failure.chars().take(80).collect();
            lines.push(format!("{:<40} # {note} (from {name})", entry.line()));
            say!("added {}", entry.line());
            known.push(entry);
        }
    }
    if lines.is_empty() {
        say!("nothing added");
        return Ok(());
    }
    // A last line without its newline must not swallow the first added one.
    let ends_open = std::fs::read(file).is_ok_and(|t| t.last().is_some_and(|b| *b != b'\n'));
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .map_err(|e| Failure::Usage(format!("{}: cannot append: {e}", file.display())))?;
    let text: String = (if ends_open { "\n" } else { "" }).to_string()
        + &lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    out.write_all(text.as_bytes())
        .map_err(|e| Failure::Check(format!("{}: cannot append: {e}", file.display())))?;
    say!("{} runs added to {}; `cargo test --test regressions` runs them", lines.len(), file.display());
    Ok(())
}
