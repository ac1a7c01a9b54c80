//! A sweep's reports: the JSON report (a `meta` block with every parameter, every run with
//! its parameters, the failing runs with their plans) and the JUnit XML. Both files are
//! created before the sweep starts.

use super::output::tails_text;
use crate::Failure;
use exsim_scenarios::scenario::{self, Params, RunReport};
use exsim_scenarios::seeds::{RunList, Seeds};
use exsim_scenarios::sweep::SweepOptions;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Everything a sweep was asked to do, as the JSON report's `meta` block.
#[derive(Serialize)]
pub struct SweepMeta {
    exsim_version: &'static str,
    /// The commit, with `-dirty` when the tree had changes.
    commit: &'static str,
    command_line: Vec<String>,
    scenarios: Vec<String>,
    seeds: Seeds,
    /// Every seed a `random:N` selection drew.
    drawn_seeds: Option<Vec<u64>>,
    shard: String,
    params: serde_json::Value,
    jobs: usize,
    run_timeout_s: f64,
    max_failures: Option<u64>,
}

impl SweepMeta {
    /// The meta block of a sweep.
    pub fn new(
        command_line: Vec<String>,
        runs: &RunList,
        params: &Params,
        options: &SweepOptions,
    ) -> SweepMeta {
        let seeds = runs.seeds().clone();
        let drawn_seeds = match seeds {
            Seeds::Random { count, .. } => Some((0..count).map(|i| seeds.get(i)).collect()),
            Seeds::Range { .. } => None,
        };
        let (k, n) = runs.shard();
        SweepMeta {
            exsim_version: env!("CARGO_PKG_VERSION"),
            commit: env!("EXSIM_COMMIT"),
            command_line,
            scenarios: runs.scenarios().iter().map(|s| s.name().to_string()).collect(),
            seeds,
            drawn_seeds,
            shard: format!("{k}/{n}"),
            params: json!({
                "commands": params.commands,
                "fault_every_ms": params.fault_every_ms,
                "plant": params.planted.map(|b| b.name()),
            }),
            jobs: options.jobs,
            run_timeout_s: options.run_timeout.as_secs_f64(),
            max_failures: options.max_failures,
        }
    }
}

/// The parameters one run ran with, complete: `repro` and `regress add` read them back.
pub fn run_params(r: &RunReport, params: &Params) -> serde_json::Value {
    json!({
        "scenario": r.scenario,
        "seed": r.seed,
        "commands": params.commands.unwrap_or(r.scenario.default_commands()),
        "fault_every_ms": params.fault_every_ms,
        "plant": params.planted.map(|b| b.name()),
    })
}

/// The runs of each scenario, in the reports' (scenario, seed) order.
pub fn by_scenario(reports: &[RunReport]) -> Vec<(exsim_scenarios::scenario::Scenario, Vec<&RunReport>)> {
    let mut groups: Vec<(exsim_scenarios::scenario::Scenario, Vec<&RunReport>)> = Vec::new();
    for r in reports {
        match groups.last_mut() {
            Some((s, rs)) if *s == r.scenario => rs.push(r),
            _ => groups.push((r.scenario, vec![r])),
        }
    }
    groups
}

/// Crash points hit over all runs, by cell.
pub fn coverage(reports: &[RunReport]) -> BTreeMap<String, u64> {
    let mut coverage = BTreeMap::new();
    for r in reports {
        for (cell, n) in &r.crash_points {
            *coverage.entry(cell.clone()).or_default() += n;
        }
    }
    coverage
}

/// The report files, created (truncated) before the sweep.
pub struct ReportFiles {
    json: Option<(PathBuf, File)>,
    junit: Option<(PathBuf, File)>,
}

fn create(path: Option<&Path>) -> Result<Option<(PathBuf, File)>, Failure> {
    path.map(|p| {
        File::create(p)
            .map(|f| (p.to_path_buf(), f))
            .map_err(|e| Failure::Usage(format!("{}: cannot write the report: {e}", p.display())))
    })
    .transpose()
}

impl ReportFiles {
    /// Creates the files asked for; an unwritable path is an error before any run.
    pub fn create(json: Option<&Path>, junit: Option<&Path>) -> Result<ReportFiles, Failure> {
        Ok(ReportFiles { json: create(json)?, junit: create(junit)? })
    }

    /// Writes both reports (each independently: one failing does not stop the other).
    pub fn write(
        self,
        meta: &SweepMeta,
        reports: &[RunReport],
        params: &Params,
        skipped: u64,
    ) -> Result<(), Failure> {
        let mut errors = Vec::new();
        if let Some((path, mut file)) = self.json {
            let text = serde_json::to_string_pretty(&json_report(meta, reports, params, skipped))
                .expect("plain data serializes");
            if let Err(e) = file.write_all(text.as_bytes()) {
                errors.push(format!("{}: cannot write the report: {e}", path.display()));
            }
        }
        if let Some((path, mut file)) = self.junit {
            if let Err(e) = file.write_all(junit_xml(reports, params).as_bytes()) {
                errors.push(format!("{}: cannot write the JUnit report: {e}", path.display()));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(Failure::Check(errors.join("\n"))) }
    }
}

fn json_report(meta: &SweepMeta, reports: &[RunReport], params: &Params, skipped: u64) -> serde_json::Value {
    let failed: Vec<&RunReport> = reports.iter().filter(|r| r.failure.is_some()).collect();
    let runs: Vec<_> = reports
        .iter()
        .map(|r| {
            json!({
                "scenario": r.scenario, "seed": r.seed, "params": run_params(r, params),
                "verdict": if r.failure.is_some() { "fail" } else { "pass" },
                "trace_hash": format!("0x{:016x}", r.trace_hash),
                "state_digest": r.state_digest.map(|d| format!("0x{d:016x}")),
                "wall_us": r.wall_us, "sim_ms": r.sim_ms, "commands": r.commands, "kills": r.kills,
                "segments_removed": r.segments_removed, "faults": r.faults, "crash_points": r.crash_points,
                "failure": r.failure, "violation": r.violation,
            })
        })
        .collect();
    let failing: Vec<_> = failed
        .iter()
        .map(|r| {
            json!({
                "scenario": r.scenario, "seed": r.seed, "params": run_params(r, params),
                "kind": r.violation.as_ref().map(|v| v.kind()),
                "failure": r.failure,
                "reproduce": scenario::repro_command(r.scenario, r.seed, params),
                "tails": r.tails,
                "plan": r.plan,
            })
        })
        .collect();
    json!({
        "meta": meta,
        "runs": reports.len(),
        "failures": failed.len(),
        "timeouts": reports.iter().filter(|r| r.violation.as_ref().is_some_and(|v| v.kind() == "timeout")).count(),
        "not_started": skipped,
        "failing": failing,
        "coverage": coverage(reports),
        "reports": runs,
    })
}

fn xml_escape(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || !c.is_control())
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a `<testsuites>` root, a `<testsuite>` per scenario, a `<testcase>` per run
/// with its time; a failure carries the reproduce command as its message, the failed check
/// as its text, and the nodes' last trace lines in `system-out`.
pub fn junit_xml(reports: &[RunReport], params: &Params) -> String {
    let secs = |rs: &[&RunReport]| rs.iter().map(|r| r.wall_us as f64 / 1e6).sum::<f64>();
    let failures = |rs: &[&RunReport]| rs.iter().filter(|r| r.failure.is_some()).count();
    let all: Vec<&RunReport> = reports.iter().collect();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"exsim sweep\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
        all.len(),
        failures(&all),
        secs(&all)
    );
    for (s, rs) in by_scenario(reports) {
        x += &format!(
            "  <testsuite name=\"{s}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            rs.len(),
            failures(&rs),
            secs(&rs)
        );
        for r in rs {
            x += &format!(
                "    <testcase classname=\"exsim.{s}\" name=\"seed {}\" time=\"{:.3}\">",
                r.seed,
                r.wall_us as f64 / 1e6
            );
            if let Some(f) = &r.failure {
                x += &format!(
                    "\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n      <system-out>{}</system-out>\n    ",
                    r.violation.as_ref().map_or("failure", |v| v.kind()),
                    xml_escape(&format!(
                        "reproduce: {}",
                        scenario::repro_command(r.scenario, r.seed, params)
                    )),
                    xml_escape(f),
                    xml_escape(&tails_text(r))
                );
            }
            x += "</testcase>\n";
        }
        x += "  </testsuite>\n";
    }
    x + "</testsuites>\n"
}

/// A failing run read back from a JSON report.
pub struct FailingRun {
    /// Scenario.
    pub scenario: exsim_scenarios::scenario::Scenario,
    /// Seed.
    pub seed: u64,
    /// Every parameter it ran with (the planted bug included).
    pub params: Params,
    /// The violation's kind (`timeout`, `lost-ack` …), as recorded.
    pub kind: String,
    /// The violation's first line, as recorded.
    pub failure: String,
    /// The wall-clock limit the sweep gave each run, in seconds.
    pub run_timeout_s: Option<f64>,
}

/// The failing runs of a JSON report written by `sweep --json`.
pub fn failing_runs(path: &str) -> Result<Vec<FailingRun>, Failure> {
    let usage = |e: String| Failure::Usage(format!("{path}: {e}"));
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("not a seed and not a readable report: {e}")))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| usage(format!("not a JSON report: {e}")))?;
    let failing = json["failing"].as_array().ok_or_else(|| usage("no `failing` list".into()))?;
    let run_timeout_s = match &json["meta"]["run_timeout_s"] {
        serde_json::Value::Null => None,
        v => match v.as_f64() {
            Some(s) if (0.01..=86_400.0).contains(&s) => Some(s),
            _ => return Err(usage(format!("meta.run_timeout_s {v} is not within 0.01 to 86400 seconds"))),
        },
    };
    let mut runs = Vec::new();
    for f in failing {
        // Reports from before the `params` object carry the same fields at the top.
        let p = if f["params"].is_object() { &f["params"] } else { f };
        let malformed = || usage(format!("malformed failing entry {f}"));
        let (Some(name), Some(seed)) = (f["scenario"].as_str(), f["seed"].as_u64()) else {
            return Err(malformed());
        };
        // A field present with the wrong type is malformed, not absent: a plant that does not
        // read as a name must not turn into a rerun without the bug.
        let typed = |key: &str, ok: bool| if p[key].is_null() || ok { Ok(()) } else { Err(malformed()) };
        typed("plant", p["plant"].is_string())?;
        typed("commands", p["commands"].is_u64())?;
        typed("fault_every_ms", p["fault_every_ms"].is_u64())?;
        let planted = crate::parse_plant(p["plant"].as_str())?;
        let commands =
            p["commands"].as_u64().map(|n| usize::try_from(n).map_err(|_| malformed())).transpose()?;
        let params = Params { commands, fault_every_ms: p["fault_every_ms"].as_u64(), planted };
        params.validate().map_err(|e| usage(format!("{name} seed {seed}: {e}")))?;
        let failure = f["failure"].as_str().and_then(|t| t.lines().next()).unwrap_or("").to_string();
        let kind = match f["kind"].as_str() {
            Some(k) => k.to_string(),
            None => failure.split(':').next().unwrap_or("").to_string(),
        };
        runs.push(FailingRun {
            scenario: exsim_scenarios::scenario::Scenario::parse(name).map_err(usage)?,
            seed,
            params,
            kind,
            failure,
            run_timeout_s,
        });
    }
    Ok(runs)
}
