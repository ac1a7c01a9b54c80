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

/// Every bad input, values at and past the type limits included: exit code 2, one line on
/// stderr naming the problem, nothing on stdout, no panic, within a second (nothing runs).
#[test]
fn bad_inputs_get_one_line_and_exit_2_within_a_second() {
    const U64_MAX: &str = "18446744073709551615";
    const PAST_U64: &str = "18446744073709551616";
    let cases: &[(&[&str], &str)] = &[
        (&["sweep", "--seeds", "5..2"], "empty"),
        (&["sweep", "--seeds", "3..3"], "empty"),
        (&["sweep", "--seeds", "x..y"], "malformed seed range"),
        (&["sweep", "--seeds", "0..18446744073709551615"], "at most"),
        (&["sweep", "--seeds", "0..=18446744073709551615"], "at most"),
        (&["sweep", "--seeds", "0..18446744073709551616"], "malformed seed range"),
        (&["sweep", "--seeds", "random:0"], "random:0"),
        (&["sweep", "--seeds", "random:99999999999"], "random:"),
        (&["sweep", "--seeds", "random:5@zz"], "malformed"),
        (&["sweep", "--count", "0"], "--count"),
        (&["sweep", "--count", "10000000000"], "--count"),
        (&["sweep", "--count", U64_MAX], "--count"),
        (&["sweep", "--count", "-1"], "--count"),
        (&["sweep", "--jobs", "0", "--count", "1"], "--jobs"),
        (&["sweep", "--jobs", U64_MAX, "--count", "1"], "--jobs"),
        (&["sweep", "--count", "3", "--shard", "0/2"], "shard"),
        (&["sweep", "--count", "3", "--shard", "3/2"], "shard"),
        (&["sweep", "--count", "1", "--shard", "x"], "shard"),
        (&["sweep", "--count", "1", "--shard", "2/18446744073709551616"], "shard"),
        (&["sweep", "--scenarios", "crash,nope", "--count", "1"], "unknown scenario"),
        (&["sweep", "--count", "1", "--run-timeout", "0"], "--run-timeout"),
        (&["sweep", "--count", "1", "--run-timeout", "nan"], "--run-timeout"),
        (&["sweep", "--count", "1", "--run-timeout", "1e300"], "--run-timeout"),
        (&["sweep", "--count", "1", "--max-failures", "0"], "--max-failures"),
        (&["sweep", "--count", "1", "--heartbeat", "0"], "--heartbeat"),
        (&["sweep", "--count", "1", "--fail-fast", "--max-failures", "2"], "--fail-fast"),
        (&["sweep", "--count", "1", "--json", "/no/such/dir/r.json"], "/no/such/dir/r.json"),
        (&["sweep", "--count", "1", "--junit", "/no/such/dir/r.xml"], "/no/such/dir/r.xml"),
        (&["run", "--seed", "-3"], "--seed"),
        (&["run", "--seed", PAST_U64], "--seed"),
        (&["run", "--seed", "1", "--commands", "0"], "--commands"),
        (&["run", "--seed", "1", "--commands", "1000000000000"], "--commands"),
        (&["run", "--seed", "1", "--commands", U64_MAX], "--commands"),
        (&["run", "--seed", "1", "--fault-every-ms", "0"], "--fault-every-ms"),
        (&["run", "--seed", "1", "--fault-every-ms", U64_MAX], "--fault-every-ms"),
        (&["run", "--scenario", "nope", "--seed", "1"], "unknown scenario"),
        (&["run", "--seed", "1", "--plan", "/no/such/plan.json"], "/no/such/plan.json"),
        (&["run", "--seed", "1", "--save-plan", "/no/such/dir/p.json"], "/no/such/dir/p.json"),
        (&["run", "--seed", "1", "--plant", "nope"], "unknown bug"),
        (&["run", "--seed", "1", "--trace-kind", "nope"], "--trace-kind"),
        (&["repro", "not-a-file-or-seed"], "not-a-file-or-seed"),
        (&["repro", "3"], "--scenario"),
        (&["repro", "3", "--scenario", "nope"], "unknown scenario"),
        (&["shrink", "--scenario", "nope", "--seed", "1"], "unknown scenario"),
        (&["shrink", "--scenario", "differential", "--seed", "1"], "no fault plan"),
        (&["shrink", "--scenario", "crash", "--seed", "1", "--budget", "1"], "--budget"),
        (&["shrink", "--scenario", "crash", "--seed", "1", "--budget", U64_MAX], "--budget"),
        (&["planted", "--max-seeds", "0"], "--max-seeds"),
        (&["planted", "--commands", U64_MAX], "--commands"),
        (&["bench", "pipeline", "--runs", "0"], "--runs"),
        (&["bench", "pipeline", "--max-commands", U64_MAX], "--max-commands"),
        (&["bench", "sim", "--max-commands", "10"], "--max-commands"),
        (&["bench", "storage", "--entries", "0"], "--entries"),
        (&["bench", "storage", "--entries", U64_MAX], "--entries"),
        (&["no-such-command"], "no-such-command"),
        (&["explore", "--commands", "5"], "--commands"),
        (&["explore", "--commands", "100000"], "--commands"),
        (&["explore", "--depth", "9"], "--depth"),
        (&["explore", "--recovery-depth", "3"], "--recovery-depth"),
        (&["explore", "--plant", "nope"], "unknown bug"),
        (&["explore", "--jobs", "0"], "--jobs"),
        (&["explore", "--keep", "1,x"], "--keep"),
        (&["explore", "--keep", "30"], "--keep"),
        (&["explore", "--shrink", "--budget", "1"], "--budget"),
        (&["explore", "--segment-bytes", "10"], "--segment-bytes"),
        (&["explore", "--snapshot-every", "0"], "--snapshot-every"),
        (&["explore", "--pull-every", "0"], "--pull-every"),
        (&["explore", "--family", "nope"], "--family"),
        (&["explore", "--family", "run", "--at", "3"], "--family run"),
        (&["coverage"], "report"),
        (&["coverage", "/no/such/report.json"], "/no/such/report.json"),
        (&["regress", "add", "/no/such/report.json"], "/no/such/report.json"),
        (&["regress", "list", "--file", "/no/such/regressions.txt"], "/no/such/regressions.txt"),
        (&["crashtest", "--duration", "0"], "--duration"),
        (&["crashtest", "--kill-every", "1"], "--kill-every"),
        (&["load", "--addr", "not-an-address"], "--addr"),
        (&["load", "--addr", "127.0.0.1:1", "--clients", "0"], "--clients"),
        (&["node", "--service", "ubscore", "--data", "/tmp/x"], "--ubscore"),
        (&["cluster"], "--data"),
    ];
    assert!(cases.len() >= 40);
    // Every case is checked, and every wrong one listed.
    let mut wrong = Vec::new();
    for (args, names) in cases {
        let started = std::time::Instant::now();
        let o = exsim(args);
        let took = started.elapsed();
        let err = text(&o.stderr);
        let ok = o.status.code() == Some(2)
            && err.lines().count() == 1
            && err.starts_with("error: ")
            && err.contains(names)
            && !err.contains("panicked")
            && o.stdout.is_empty()
            && took < std::time::Duration::from_secs(1);
        if !ok {
            wrong.push(format!("{args:?} (want `{names}`): exit {:?} in {took:?}: {err}", o.status.code()));
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));
}

/// A write error on stdout (a full disk) ends the command with one line, not a panic.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_on_stdout_ends_with_one_line() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let o = Command::new(env!("CARGO_BIN_EXE_exsim")).arg("list").stdout(full).output().expect("exsim runs");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write to stdout") && !err.contains("panicked"), "{err}");
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
    let crash_row = text(&o.stdout).lines().find(|l| l.starts_with("crash ")).map(str::to_string);
    let cells: Vec<String> = crash_row.unwrap_or_default().split_whitespace().map(str::to_string).collect();
    assert_eq!(cells.get(1..3), Some(&["2".to_string(), "0".to_string()][..]), "{}", text(&o.stdout));
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
        "service pause to take a snapshot, 5k accounts",
        "longest gap between commands while it is written",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(rows.iter().all(|r| r["per_second"].as_f64().unwrap() > 0.0));
}

/// `bench sim` measures the runtime's own limit in the same run and relates each row to it.
#[cfg(madsim)]
#[test]
fn bench_sim_compares_the_exchange_with_a_bare_madsim_loop() {
    let o = exsim(&["bench", "sim", "--json", "--max-commands", "1000"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&o.stdout)).expect("one JSON object");
    let bare = json["bare_messages_per_s"].as_f64().unwrap_or(0.0);
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "only the 1,000-command row fits --max-commands 1000");
    let exchange = rows[0]["messages_per_s"].as_f64().unwrap_or(0.0);
    // The exchange moves messages and much else besides: it cannot beat the bare loop.
    assert!(bare > 0.0 && exchange > 0.0 && exchange < bare, "exchange {exchange}/s, bare {bare}/s");
    // A run's peak heap is counted: the workload, the disks and the recovered states at least.
    let peak = rows[0]["peak_bytes"].as_u64().unwrap_or(0);
    assert!(peak > 1 << 20, "peak heap {peak} bytes");
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
        "metadata-eio",
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
    // The verdict goes to stdout (the trace, when asked for, to stderr), as for sweep and repro.
    let err = text(&o.stdout);
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
    assert_eq!(text(&again.stdout).lines().last(), err.lines().last());
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
    // A plan that kills the replica, for a scenario that has none.
    let replica = zero
        .replace(r#""service": "ubscore""#, r#""service": "replica""#)
        .replace(r#""nth": 0"#, r#""nth": 3"#);
    std::fs::write(&quiet, replica).unwrap();
    let bad = exsim(&[&base[..], &["--plan", quiet.to_str().unwrap()]].concat());
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("names the replica"), "{}", text(&bad.stderr));
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
    let o = exsim(&["explore", "--commands", "12", "--recovery-depth", "0", "--keep", "0,1,2,9"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("explored seed 0: 4 commands"), "--keep: {}", text(&o.stdout));
    let o = exsim(&["explore", "--commands", "12", "--family", "failover"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(" 0 crash points,") && text(&o.stdout).contains(" 12 failovers,"),
        "--family failover: {}",
        text(&o.stdout)
    );
    let o = exsim(&["coverage", report.to_str().unwrap()]);
    // Twelve commands are too few for retention: its cells stay unhit, and are listed.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("cells never hit:\n") && text(&o.stdout).contains("retention remove"));
}

/// A run over its wall-clock limit is cancelled and reported as a timeout, and the sweep
/// goes on to the next run; a heartbeat line names the slowest run in flight while stderr
/// is not a terminal; the report's failing runs can be added to a regression file.
#[test]
fn a_sweep_reports_runs_over_their_time_limit_as_timeouts_and_goes_on() {
    let dir = scratch("timeouts");
    let report = dir.join("report.json");
    let junit = dir.join("report.xml");
    let args = [
        "sweep",
        "--scenarios",
        "crash",
        "--seeds",
        "0..3",
        "--commands",
        "300000",
        "--run-timeout",
        "0.5",
        "--jobs",
        "1",
        "--heartbeat",
        "1",
        "--json",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ];
    let o = exsim(&args);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    for seed in 0..3 {
        assert!(
            out.contains(&format!("FAILED crash seed {seed}: timeout: wall-clock limit of 0.5 s")),
            "{out}"
        );
    }
    assert!(err.contains("heartbeat") && err.contains("slowest in flight: crash seed"), "{err}");
    // The reproduce commands end the output, one a line.
    let tail: Vec<&str> = out.lines().rev().take(3).collect();
    assert!(
        tail.iter().all(|l| l.starts_with("cargo run --release -- run --scenario crash --seed ")),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!((json["failures"].as_u64(), json["timeouts"].as_u64()), (Some(3), Some(3)));
    assert_eq!(json["failing"][0]["kind"], "timeout");
    assert_eq!(json["meta"]["run_timeout_s"].as_f64(), Some(0.5));
    assert_eq!(json["failing"][1]["params"]["commands"].as_u64(), Some(300_000));
    // JUnit: a testsuites root, a suite per scenario, a testcase per run with its time, the
    // reproduce command as the failure's message and the last trace lines in system-out.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuites name=\"exsim sweep\" tests=\"3\" failures=\"3\""), "{xml}");
    assert_eq!(xml.matches("<testsuite name=\"crash\" tests=\"3\"").count(), 1, "{xml}");
    assert_eq!(xml.matches("<testcase classname=\"exsim.crash\" name=\"seed ").count(), 3, "{xml}");
    assert!(xml.contains("<failure type=\"timeout\" message=\"reproduce: cargo run --release -- run --scenario crash --seed 0 --commands 300000\">"), "{xml}");
    assert!(xml.contains("<system-out>--- last trace lines of "), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");

    // A wall-clock timeout is not a regression: the regression test runs without a limit.
    let file = dir.join("regressions.txt");
    let add = |report: &std::path::Path| {
        exsim(&["regress", "add", report.to_str().unwrap(), "--file", file.to_str().unwrap()])
    };
    let o = add(&report);
    assert!(text(&o.stdout).contains("a wall-clock timeout") && text(&o.stdout).contains("nothing added"));

    // Other failures are appended with every parameter, once; a default number of
    // commands written or not is the same run.
    std::fs::write(&file, "baseline 5 2000   # an old-form line\nswarm 4   # no commands given, no newline")
        .unwrap();
    let failing = |scenario: &str, seed: u64, commands: u64, every: Option<u64>| {
        serde_json::json!({ "scenario": scenario, "seed": seed, "kind": "lost-ack", "failure": "lost-ack: …",
            "params": { "commands": commands, "fault_every_ms": every, "plant": null } })
    };
    let found = dir.join("found.json");
    let entries = [
        failing("crash", 7, 2_000, Some(50)),
        failing("baseline", 5, 2_000, None),
        failing("swarm", 4, 2_000, None),
        failing("swarm", 9, 300, None),
    ];
    std::fs::write(&found, serde_json::json!({ "failing": entries }).to_string()).unwrap();
    let o = add(&found);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = exsim(&["regress", "list", "--file", file.to_str().unwrap()]);
    let listed = text(&o.stdout);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "baseline 5 commands=2000",
            "swarm 4",
            "crash 7 commands=2000 fault-every-ms=50",
            "swarm 9 commands=300"
        ],
        "{listed}"
    );
    let o = add(&found);
    assert!(
        text(&o.stdout).contains("already in") && text(&o.stdout).contains("nothing added"),
        "{}",
        text(&o.stdout)
    );
    // A file that does not exist yet is started.
    let fresh = dir.join("new-regressions.txt");
    let o = exsim(&["regress", "add", found.to_str().unwrap(), "--file", fresh.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&fresh).unwrap().lines().count(), 4);
}

/// The extremes of the fault interval run and end (a day between faults is a quiet run).
#[test]
fn a_run_at_the_top_of_the_fault_interval_range_ends() {
    let o = exsim(&[
        "run",
        "--scenario",
        "swarm",
        "--seed",
        "1",
        "--commands",
        "50",
        "--fault-every-ms",
        "86400000",
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
    assert!(text(&o.stdout).starts_with("swarm seed 1: ok"), "{}", text(&o.stdout));
}

/// `--max-failures` (and `--fail-fast`) stop starting runs; the rest are counted.
#[test]
fn a_sweep_stops_after_max_failures() {
    let sweep = |stop: &[&str]| {
        let base = [
            "sweep",
            "--scenarios",
            "crash",
            "--seeds",
            "0..5",
            "--commands",
            "100000",
            "--run-timeout",
            "0.3",
        ];
        exsim(&[&base[..], &["--jobs", "1"], stop].concat())
    };
    for (stop, failed) in [(&["--fail-fast"][..], 1), (&["--max-failures", "2"][..], 2)] {
        let o = sweep(stop);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{stop:?}: {out}");
        let line = format!("stopped after {failed} failures: {} runs not started", 5 - failed);
        assert!(out.contains(&line), "{stop:?}: {out}");
    }
}

/// The JSON report carries a meta block with every parameter; `random:N@BASE` draws the
/// seeds it printed; the summary table fits 100 columns and `--details` adds faults by kind.
#[test]
fn a_report_records_its_parameters_and_random_seeds_reproduce() {
    let dir = scratch("meta");
    let report = dir.join("r.json");
    let o = exsim(&[
        "sweep",
        "--scenarios",
        "baseline,crash",
        "--seeds",
        "random:3@7",
        "--commands",
        "100",
        "--details",
        "--json",
        report.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let meta = &json["meta"];
    assert_eq!(meta["seeds"]["kind"], "random");
    assert_eq!(meta["seeds"]["base"].as_u64(), Some(7));
    assert_eq!(meta["params"]["commands"].as_u64(), Some(100));
    assert!(meta["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(meta["command_line"].as_array().is_some_and(|a| a.iter().any(|x| x == "random:3@7")));
    let drawn: Vec<u64> = meta["drawn_seeds"].as_array().unwrap().iter().filter_map(|s| s.as_u64()).collect();
    assert_eq!(drawn.len(), 3);
    let printed =
        out.lines().find(|l| l.starts_with("random seeds (random:3@0x7): ")).expect("seeds printed");
    let printed: Vec<u64> =
        printed.rsplit(": ").next().unwrap().split(' ').map(|s| s.parse().unwrap()).collect();
    assert_eq!(printed, drawn);
    let runs = json["reports"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    assert!(runs.iter().all(
        |r| r["params"]["commands"].as_u64() == Some(100) && drawn.contains(&r["seed"].as_u64().unwrap())
    ));
    // The table, from its header to its total row, fits 100 columns.
    let table: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("scenario ")).take(4).collect();
    assert_eq!(table.len(), 4, "{out}");
    assert!(table[3].starts_with("total "), "{out}");
    assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
    assert!(out.contains("crash:\n  failures: none\n  faults: "), "{out}");
}

/// `repro REPORT` reruns a failing run with every parameter it had, the planted bug
/// included: a build that cannot plant it refuses (exit 2) instead of rerunning without it.
#[test]
fn repro_of_a_report_reruns_with_its_planted_bug() {
    let dir = scratch("repro-plant");
    let report = dir.join("r.json");
    let failing = serde_json::json!({ "failing": [{
        "scenario": "crash", "seed": 2, "failure": "recovery-mismatch: …",
        "params": { "scenario": "crash", "seed": 2, "commands": 300, "fault_every_ms": null, "plant": "skip-fsync" }
    }]});
    std::fs::write(&report, failing.to_string()).unwrap();
    let o = exsim(&["repro", report.to_str().unwrap()]);
    if !exsim_scenarios::bugs_available() {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        assert!(text(&o.stderr).contains("planted-bugs"), "{}", text(&o.stderr));
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("--plant skip-fsync") && text(&o.stdout).contains("crash seed 2: FAILED")
    );
}

/// `repro REPORT` reruns under the report's wall-clock limit (a timed-out run must not hang
/// its rerun), and refuses a report whose parameters do not read as they should.
#[test]
fn repro_of_a_report_keeps_its_time_limit_and_checks_its_fields() {
    let dir = scratch("repro-limit");
    let write = |name: &str, meta: serde_json::Value, params: serde_json::Value| {
        let path = dir.join(name);
        let failing = serde_json::json!({ "meta": meta, "failing": [{
            "scenario": "crash", "seed": 0, "kind": "timeout", "failure": "timeout: wall-clock limit of 0.3 s passed",
            "params": params }] });
        std::fs::write(&path, failing.to_string()).unwrap();
        path
    };
    let params = serde_json::json!({ "commands": 300000, "fault_every_ms": null, "plant": null });
    let report = write("limit.json", serde_json::json!({ "run_timeout_s": 0.3 }), params.clone());
    let started = std::time::Instant::now();
    let o = exsim(&["repro", report.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.contains("timeout: wall-clock limit of 0.3 s passed"), "{out}");
    assert!(out.contains("recorded in the report: timeout: "), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "the rerun kept no limit");
    for (name, meta, params) in [
        ("negative.json", serde_json::json!({ "run_timeout_s": -1 }), params.clone()),
        ("plant.json", serde_json::json!({}), serde_json::json!({ "commands": 300, "plant": 5 })),
        ("commands.json", serde_json::json!({}), serde_json::json!({ "commands": "300" })),
        ("huge.json", serde_json::json!({}), serde_json::json!({ "commands": 18446744073709551615u64 })),
    ] {
        let o = exsim(&["repro", write(name, meta, params).to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.lines().count() == 1 && err.contains(name), "{name}: {err}");
    }
}

/// `--trace-node` keeps one node's events; the trace hash does not depend on printing.
#[test]
fn a_trace_filtered_to_one_node_prints_only_its_events() {
    let base = ["run", "--scenario", "crash", "--seed", "1", "--commands", "60"];
    let quiet = exsim(&base);
    let one = exsim(&[&base[..], &["--trace-node", "matching"]].concat());
    assert!(one.status.success(), "{}", text(&one.stderr));
    let lines: Vec<String> = text(&one.stderr).lines().map(str::to_string).collect();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.split_whitespace().nth(1) == Some("matching")), "{lines:?}");
    let all = exsim(&[&base[..], &["--trace"]].concat());
    assert!(text(&all.stderr).lines().any(|l| l.split_whitespace().nth(1) == Some("ubscore")));
    let faults = exsim(&[&base[..], &["--trace-kind", "fault"]].concat());
    assert!(
        text(&faults.stderr).lines().all(|l| [
            "kill",
            "restart",
            "crash",
            "partition",
            "heal",
            "pinned",
            "snapshot",
            "media"
        ]
        .iter()
        .any(|k| l.split_whitespace().nth(2) == Some(k))),
        "{}",
        text(&faults.stderr)
    );
    let last = |o: &Output| text(&o.stdout).lines().last().map(str::to_string);
    assert_eq!(last(&quiet), last(&one));
    assert_eq!(last(&quiet), last(&all));
    assert!(last(&quiet).is_some_and(|l| l.starts_with("trace hash: 0x")));
}
