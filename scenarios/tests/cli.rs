//! The `exsim` binary as a user runs it: exit codes, error lines, outputs.

use std::path::PathBuf;
use std::process::{Command, Output};

fn exsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exsim")).args(args).output().expect("exsim runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/zxi").join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn conform_writes_the_four_files_and_reports_the_trade_count() {
    let out = scratch("conform-good");
    let o = exsim(&[
        "conform",
        "--input",
        fixture("with_cancel_small").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for f in ["balances.csv", "orderbook.csv", "trades.csv", "rejected.csv"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    assert!(text(&o.stdout).contains("616 trades"), "{}", text(&o.stdout));
}

#[test]
fn conform_exits_2_with_file_and_line_on_malformed_input() {
    let dir = scratch("conform-bad");
    let src = fixture("with_cancel_small").join("input");
    for f in ["assets_config.csv", "symbols_config.csv", "balances_init.csv"] {
        std::fs::copy(src.join(f), dir.join(f)).expect("copy");
    }
    std::fs::write(dir.join("orders.csv"), "order_id,user_id,side,price,qty\n1,2,buy,1.5.5,1\n")
        .expect("write");
    let o = exsim(&[
        "conform",
        "--input",
        dir.to_str().unwrap(),
        "--out",
        scratch("conform-bad-out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("orders.csv:2:") && err.contains("price") && !err.contains("panicked"), "{err}");
}

#[test]
fn bad_arguments_exit_2_without_panicking() {
    for args in [
        &["sweep", "--seeds", "5..2"][..],
        &["sweep", "--seeds", "x..y"],
        &["sweep", "--jobs", "0", "--count", "1"],
        &["sweep", "--count", "0"],
        &["sweep", "--count", "3", "--shard", "0/2"],
        &["sweep", "--count", "3", "--shard", "3/2"],
        &["run", "--seed", "-3"],
        &["run", "--seed", "1", "--commands", "0"],
        &["run", "--scenario", "nope", "--seed", "1"],
        &["sweep", "--scenarios", "crash,nope", "--count", "1"],
        &["sweep", "--count", "1", "--shard", "x"],
        &["repro", "not-a-file-or-seed"],
        &["shrink", "--scenario", "nope", "--seed", "1"],
        &["run", "--seed", "1", "--fault-every-ms", "0"],
        &["bench", "pipeline", "--runs", "0"],
        &["bench", "storage", "--entries", "0"],
        &["no-such-command"],
        &["explore", "--commands", "5"],
        &["explore", "--commands", "100000"],
        &["explore", "--depth", "9"],
        &["explore", "--recovery-depth", "3"],
        &["explore", "--plant", "nope"],
        &["explore", "--jobs", "0"],
        &["coverage"],
        &["coverage", "/no/such/report.json"],
        &["run", "--seed", "1", "--plan", "/no/such/plan.json"],
        &["shrink", "--scenario", "differential", "--seed", "1"],
        &["shrink", "--scenario", "crash", "--seed", "1", "--budget", "1"],
        &["crashtest", "--duration", "0"],
        &["crashtest", "--kill-every", "1"],
        &["load", "--addr", "not-an-address"],
        &["load", "--addr", "127.0.0.1:1", "--clients", "0"],
        &["node", "--service", "ubscore", "--data", "/tmp/x"],
        &["cluster"],
    ] {
        let o = exsim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("panicked"), "{args:?}");
    }
}

/// The simulation build cannot run real processes: it says which command does.
#[cfg(madsim)]
#[test]
fn real_mode_commands_name_the_real_build() {
    for (args, name) in [
        (&["crashtest"][..], "crashtest"),
        (&["cluster", "--data", "/tmp/exsim-never-created"], "cluster"),
        (&["load", "--addr", "127.0.0.1:1"], "load"),
    ] {
        let o = exsim(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o.stderr).contains(&format!("cargo real {name}")), "{args:?}: {}", text(&o.stderr));
    }
    assert!(!std::path::Path::new("/tmp/exsim-never-created").exists(), "nothing ran");
}

#[test]
fn run_and_sweep_pass_and_report() {
    let o = exsim(&["run", "--scenario", "differential", "--seed", "3", "--commands", "300"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("differential seed 3: ok"), "{}", text(&o.stdout));
    let o = exsim(&["run", "--scenario", "crash", "--seed", "3", "--commands", "200"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("crash seed 3: ok"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.starts_with("trace hash: 0x") && last.len() == "trace hash: 0x".len() + 16, "{last}");
    // The same seed prints the same line (same trace hash, same faults), wall time aside.
    let again = text(&exsim(&["run", "--scenario", "crash", "--seed", "3", "--commands", "200"]).stdout);
    assert_eq!(out.lines().last(), again.lines().last(), "the same seed gives the same trace hash");
    let report = scratch("sweep").join("report.json");
    let o = exsim(&[
        "sweep",
        "--scenarios",
        "differential,baseline,crash",
        "--seeds",
        "0..2",
        "--commands",
        "150",
        "--jobs",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("| crash | 2 | 0 |"), "{}", text(&o.stdout));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((json["runs"].as_u64(), json["failures"].as_u64()), (Some(6), Some(0)));
}

#[test]
fn the_trace_of_one_seed_can_be_printed() {
    let o = exsim(&["run", "--scenario", "crash", "--seed", "1", "--commands", "50", "--trace"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let trace = text(&o.stderr);
    for event in ["ubscore", "recovered", "liveness phase", "converged", "ack #"] {
        assert!(trace.contains(event), "{event} in trace");
    }
}

#[test]
fn bench_storage_prints_every_row_as_json() {
    let dir = scratch("bench-storage");
    let o = exsim(&["bench", "storage", "--json", "--entries", "5000", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let rows = json["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for want in [
        "durable WAL append, batch 1024",
        "recovery: UBSCore re-applies 5k commands",
        "snapshot load, 5k accounts",
        "longest service pause during snapshot",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(rows.iter().all(|r| r["per_second"].as_f64().unwrap() > 0.0));
}

#[test]
fn list_names_every_scenario_with_a_description() {
    let o = exsim(&["list"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    for name in [
        "differential",
        "baseline",
        "crash",
        "torn-tail",
        "snapshot-crash",
        "recovery-crash",
        "corrupt-snapshot",
        "fsync-eio",
        "disk-full",
        "network",
        "chaos",
        "swarm",
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} listed"));
        assert!(line.split_whitespace().count() > 3, "{line}");
        // Every listed scenario runs.
        let o = exsim(&["run", "--scenario", name, "--seed", "1", "--commands", "60"]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
    }
}

#[test]
fn shrink_and_repro_of_seeds_report_passing_runs() {
    let o = exsim(&["shrink", "--scenario", "crash", "--seed", "2", "--commands", "80"]);
    assert!(o.status.success() && text(&o.stdout).contains("nothing to shrink"), "{}", text(&o.stdout));
    let o = exsim(&["repro", "3", "4", "--scenario", "torn-tail", "--commands", "80"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().filter(|l| l.starts_with("torn-tail seed")).count(), 2);
}

/// A failing run, as a user sees it: exit code 1, the reproduce command as the first line,
/// the failed check, the nodes' last trace lines, and the trace hash last. Failures are
/// provoked by planting a bug, which needs the `planted-bugs` feature; without it,
/// `--plant` is refused with exit code 2.
#[test]
fn a_failing_run_prints_its_reproduce_command_first() {
    let o =
        exsim(&["run", "--scenario", "crash", "--seed", "2", "--commands", "300", "--plant", "skip-fsync"]);
    if !exsim_scenarios::bugs_available() {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("planted-bugs"));
        return;
    }
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "reproduce: cargo run --release --features planted-bugs -- run --scenario crash --seed 2 --commands 300 --plant skip-fsync"
    );
    assert!(err.contains("crash seed 2: FAILED") && err.contains("--- last trace lines of"), "{err}");
    assert!(err.lines().last().unwrap_or_default().starts_with("trace hash: 0x"), "{err}");
    // The printed command reproduces the same failure.
    let again =
        exsim(&["run", "--scenario", "crash", "--seed", "2", "--commands", "300", "--plant", "skip-fsync"]);
    assert_eq!(text(&again.stderr).lines().last(), err.lines().last());
}

/// `exsim … | head` must end quietly when the reader goes away, not panic.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_exsim"))
        .args(["sweep", "--scenarios", "differential", "--count", "3", "--commands", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exsim runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("exsim ends");
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}

#[test]
fn a_saved_plan_replays_to_the_same_hash_and_an_edited_one_does_not() {
    let dir = scratch("plans");
    let plan = dir.join("plan.json");
    let base = ["run", "--scenario", "crash", "--seed", "3", "--commands", "200"];
    let o = exsim(&[&base[..], &["--save-plan", plan.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let hash = text(&o.stdout).lines().last().unwrap_or_default().to_string();
    let replay = exsim(&[&base[..], &["--plan", plan.to_str().unwrap()]].concat());
    assert_eq!(text(&replay.stdout).lines().last().unwrap_or_default(), hash, "{}", text(&replay.stderr));
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert!(!json["events"].as_array().unwrap().is_empty(), "the seed planned faults");
    json["events"] = serde_json::json!([]);
    let quiet = dir.join("quiet.json");
    std::fs::write(&quiet, json.to_string()).unwrap();
    let edited = exsim(&[&base[..], &["--plan", quiet.to_str().unwrap()]].concat());
    assert!(edited.status.success(), "{}", text(&edited.stderr));
    let out = text(&edited.stdout);
    assert!(out.contains(" 0 kills"), "no events, no kills: {out}");
    assert_ne!(out.lines().last().unwrap_or_default(), hash);
    std::fs::write(&quiet, "{ not json").unwrap();
    let bad = exsim(&[&base[..], &["--plan", quiet.to_str().unwrap()]].concat());
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("not a fault plan"), "{}", text(&bad.stderr));
    let zero = r#"{"disk": {"lose_write": 0.0, "tear_write": 0.0, "persist_entry_op": 1.0, "eio_read": 0.0,
        "eio_write": 0.0, "eio_fsync": 0.0, "capacity": 1000000, "enospc_write": 0.0, "bit_rot": 0.0,
        "latency_us": 20}, "network": {"loss": 0.0, "duplicate": 0.0}, "events": [{"at_ms": 0, "crash-at":
        {"service": "ubscore", "kind": "fsync", "phase": "group-commit", "nth": 0, "before": false,
        "death": "power-failure", "down_ms": 5, "recovery": []}}]}"#;
    std::fs::write(&quiet, zero).unwrap();
    let bad = exsim(&[&base[..], &["--plan", quiet.to_str().unwrap()]].concat());
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("names operation 0"), "{}", text(&bad.stderr));
    let twice = exsim(&[&base[..], &["--check-determinism"]].concat());
    assert!(text(&twice.stdout).contains("deterministic: two runs"), "{}", text(&twice.stdout));
}

#[test]
fn explore_prints_its_counts_and_map_and_coverage_lists_unhit_cells() {
    let report = scratch("explore").join("explore.json");
    let o =
        exsim(&["explore", "--commands", "12", "--recovery-depth", "0", "--json", report.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("explored seed 0: 12 commands") && out.contains("no failure"), "{out}");
    assert!(out.contains("group-commit") && out.contains("cells hit:"), "{out}");
    let o = exsim(&["explore", "--commands", "12", "--recovery-depth", "0", "--at", "40"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(" 2 crash points,"),
        "--at K explores one operation: {}",
        text(&o.stdout)
    );
    let o = exsim(&["coverage", report.to_str().unwrap()]);
    // Twelve commands are too few for retention: its cells stay unhit, and are listed.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("cells never hit:\n") && text(&o.stdout).contains("retention remove"));
}
