//! Faults as data: a run's executed plan replays to the same trace hash; an edited plan
//! (fewer events) changes the run; shrinking a planted bug's failure keeps its violation
//! kind with fewer commands and faults, and the shrunk plan replays to the same kind.

#![cfg(madsim)]

use engine::bugs::Bug;
use scenarios::scenario::{self, Params, RunOptions, Scenario};

fn params(commands: usize, planted: Option<Bug>) -> Params {
    Params { commands: Some(commands), planted, ..Params::default() }
}

#[test]
fn an_executed_plan_replays_to_the_same_trace_hash() {
    for (s, seed) in
        [(Scenario::Crash, 3), (Scenario::Chaos, 4), (Scenario::RecoveryCrash, 5), (Scenario::Media, 6)]
    {
        let p = params(300, None);
        let first = scenario::run(s, seed, &p);
        let plan = first.plan.clone().expect("a simulated run has a plan");
        assert!(!plan.events.is_empty(), "{s} seed {seed}: faults were planned");
        let json = serde_json::to_string(&plan).expect("serialises");
        let parsed: sim::plan::FaultPlan = serde_json::from_str(&json).expect("parses");
        let replay =
            scenario::run_with(s, seed, &p, &RunOptions { plan: Some(parsed), ..RunOptions::default() });
        assert_eq!(replay.trace_hash, first.trace_hash, "{s} seed {seed}: replaying its own plan");
        assert_eq!(replay.failure, first.failure);
        let mut fewer = plan.clone();
        fewer.events.truncate(fewer.events.len() / 2);
        let edited =
            scenario::run_with(s, seed, &p, &RunOptions { plan: Some(fewer), ..RunOptions::default() });
        assert_ne!(edited.trace_hash, first.trace_hash, "{s} seed {seed}: an edited plan is a different run");
    }
}

#[test]
fn shrinking_keeps_the_violation_with_fewer_commands_and_faults() {
    let (s, seed) = (scenario::hunting_ground(Bug::SkipFsync), 0);
    let p = params(200, Some(Bug::SkipFsync));
    let original = scenario::run(s, seed, &p);
    let kind = original.violation.as_ref().expect("skip-fsync fails seed 0").kind();
    let shrunk = scenarios::shrink::shrink(s, seed, &p, 60, &|_| {}).expect("shrinks");
    let kept = shrunk.plan.keep_commands.as_ref().map_or(usize::MAX, Vec::len);
    assert_eq!(shrunk.violation.kind(), kind);
    assert!(kept < shrunk.before.0 / 4, "commands {} -> {kept}", shrunk.before.0);
    assert!(shrunk.plan.faults() <= shrunk.before.1, "faults never grow");
    let replay =
        scenario::run_with(s, seed, &p, &RunOptions { plan: Some(shrunk.plan), ..RunOptions::default() });
    assert_eq!(replay.violation.map(|v| v.kind()), Some(kind), "the shrunk plan reproduces the violation");
}

#[test]
fn a_kill_timed_among_hundreds_of_commands_shrinks_to_a_pinned_crash_and_a_few_commands() {
    // The kill that matters lands at a moment of a 500-command run; pinned to the
    // operation it followed, it survives the removal of commands around it.
    let bug = Bug::NoSnapshotFallback;
    let (s, seed) = (scenario::hunting_ground(bug), 0);
    let p = params(200, Some(bug));
    let original = scenario::run(s, seed, &p);
    let kind = original.violation.as_ref().expect("no-snapshot-fallback fails seed 0").kind();
    let shrunk = scenarios::shrink::shrink(s, seed, &p, 120, &|_| {}).expect("shrinks");
    let kept = shrunk.plan.keep_commands.as_ref().map_or(usize::MAX, Vec::len);
    assert_eq!(shrunk.violation.kind(), kind);
    assert!(kept <= 5, "commands {} -> {kept}", shrunk.before.0);
    assert!(shrunk.plan.faults() <= 2, "faults {} -> {}", shrunk.before.1, shrunk.plan.faults());
    assert!(
        shrunk.plan.events.iter().any(|e| matches!(e.fault, sim::plan::PlannedFault::CrashAt { .. })),
        "the crash is pinned to an operation: {}",
        shrunk.plan.describe()
    );
    let replay =
        scenario::run_with(s, seed, &p, &RunOptions { plan: Some(shrunk.plan), ..RunOptions::default() });
    assert_eq!(replay.violation.map(|v| v.kind()), Some(kind), "the shrunk plan reproduces the violation");
}

#[test]
fn two_runs_of_a_seed_have_equal_traces_line_by_line() {
    let p = params(200, None);
    let options = RunOptions { keep_trace: true, ..RunOptions::default() };
    let a = scenario::run_with(Scenario::Swarm, 9, &p, &options);
    let b = scenario::run_with(Scenario::Swarm, 9, &p, &options);
    let (a, b) = (a.trace.expect("kept"), b.trace.expect("kept"));
    assert!(a.len() > 100);
    assert_eq!(a, b);
}

#[test]
fn a_plan_with_one_client_sends_the_commands_in_their_order() {
    // What `shrink`'s "fewer clients" pass relies on: one client, one command at a time,
    // so no order races the deposit it needs.
    let p = params(60, None);
    let first = scenario::run(Scenario::Crash, 4, &p);
    let plan = sim::plan::FaultPlan { clients: Some(1), events: Vec::new(), ..first.plan.expect("a plan") };
    let options = RunOptions { plan: Some(plan), keep_trace: true, ..RunOptions::default() };
    let one = scenario::run_with(Scenario::Crash, 4, &p, &options);
    assert_eq!(one.failure, None);
    let trace = one.trace.expect("kept");
    let acks: Vec<(&str, u64)> = trace
        .iter()
        .filter_map(|l| {
            let (_, rest) = l.split_once(" ack #")?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((l.as_str(), n))
        })
        .collect();
    assert!(one.commands > 60, "the scenario's deposits come first");
    assert_eq!(acks.len(), one.commands, "every command acknowledged once");
    assert!(acks.iter().all(|(l, _)| l.contains("client-0")), "one client");
    assert!(acks.windows(2).all(|w| w[0].1 < w[1].1), "acknowledged in order");
}

#[test]
fn a_kept_command_stays_with_the_client_that_sent_it_in_the_full_run() {
    // Removing a command must not hand every later command to another client (which would
    // make a shrinker's smallest edit a different run altogether).
    let p = params(20, None);
    let full = scenario::run(Scenario::Crash, 4, &p);
    let keep: Vec<usize> = (0..full.commands).filter(|i| i % 3 != 1).collect();
    let plan = sim::plan::FaultPlan {
        keep_commands: Some(keep.clone()),
        events: Vec::new(),
        ..full.plan.expect("a plan")
    };
    let options = RunOptions { plan: Some(plan), keep_trace: true, ..RunOptions::default() };
    let fewer = scenario::run_with(Scenario::Crash, 4, &p, &options);
    assert_eq!(fewer.failure, None);
    let trace = fewer.trace.expect("kept");
    let acks: Vec<(usize, usize)> = trace
        .iter()
        .filter_map(|l| {
            let (head, rest) = l.split_once(" ack #")?;
            let client = head.split("client-").nth(1)?.trim().parse().ok()?;
            Some((client, rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(acks.len(), keep.len(), "every kept command acknowledged, named by its workload place");
    assert!(acks.iter().all(|(client, w)| keep.contains(w) && *client == w % 4), "{acks:?}");
}
