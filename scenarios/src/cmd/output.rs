//! What the commands print: stdout that survives a full disk, the verdict of one run, the
//! failure of one run with its reproduce command first, and one-line argument errors.

use exsim_scenarios::scenario::{self, Params, RunReport};
use std::io::Write;

/// Writes `text` on stdout. A closed pipe ends the process quietly (SIGPIPE is restored in
/// `main`); any other write error (a full disk) ends it with one line and exit code 1.
pub fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// One line on a passing run: counts, times and (simulated runs) the trace hash.
pub fn verdict_line(r: &RunReport) -> String {
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

/// A failing run: the reproduce command first, the commit, the failed check, and the last
/// trace lines of each node.
pub fn failure_text(r: &RunReport, params: &Params, failure: &str) -> String {
    let mut text = format!(
        "reproduce: {}\ncommit: {}\n{} seed {}: FAILED\n{failure}\n",
        scenario::repro_command(r.scenario, r.seed, params),
        env!("EXSIM_COMMIT"),
        r.scenario,
        r.seed
    );
    text += &tails_text(r);
    text
}

/// The last trace lines of each node of a failed run.
pub fn tails_text(r: &RunReport) -> String {
    let mut text = String::new();
    for (node, lines) in &r.tails {
        if !lines.is_empty() {
            text += &format!("--- last trace lines of {node}\n{}\n", lines.join("\n"));
        }
    }
    text
}

/// The state digest and trace hash lines that end `run` and `repro` output.
pub fn hash_lines(r: &RunReport) -> String {
    let digest = r.state_digest.map_or("-".into(), |d| format!("0x{d:016x}"));
    format!("state digest: {digest}\ntrace hash: 0x{:016x}", r.trace_hash)
}

/// A clap error as one line (its first paragraph, joined), so that every bad input reads
/// the same way.
pub fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect();
    let line = if first.is_empty() { "bad arguments".to_string() } else { first.join(" ") };
    if line.starts_with("error:") { line } else { format!("error: {line}") }
}
