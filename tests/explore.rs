//! Bounded exhaustive crash-state exploration: the correct engine survives every explored
//! crash state (every class: resolutions of pending writes, fsync errors, crashes inside
//! recoveries, media damage at rest) and every planted bug is caught, by the rule it
//! breaks; a failure reproduces at its operation.

#![cfg(madsim)]

use engine::bugs::Bug;
use scenarios::checker::Violation;
use scenarios::explore::{ExploreConfig, ExploreReport, explore};

fn config(commands: usize, recovery_depth: usize, planted: Option<Bug>) -> ExploreConfig {
    ExploreConfig { seed: 0, commands, depth: 1, recovery_depth, at: None, jobs: 2, planted }
}

fn run(cfg: &ExploreConfig) -> ExploreReport {
    explore(cfg, &|_, _| {})
}

#[test]
fn the_engine_survives_every_explored_crash_state() {
    let r = run(&config(16, 1, None));
    assert!(r.failures.is_empty(), "{:#?}", r.failures.first());
    assert!(r.ops > 200 && r.crash_points == 2 * r.ops, "{} ops, {} crash points", r.ops, r.crash_points);
    assert!(r.states > r.crash_points, "pending state resolved more than one way");
    assert!(r.fsync_errors > 0 && r.media_faults > 0 && r.recovery_crashes > 0, "{r:?}");
    assert!(r.detected > 0, "some damage must be refused loudly");
    for cell in [
        "ubscore group-commit append after",
        "ubscore seal fsync before",
        "matching snapshot-rename rename before",
        "market-data group-commit fsync after",
        "audit snapshot-rename rename before",
    ] {
        assert!(r.coverage.get(cell).copied().unwrap_or(0) > 0, "{cell} not hit: {:?}", r.coverage.keys());
    }
    assert!(
        r.coverage.keys().any(|c| c.contains("recovery-rewrite")),
        "crashes inside recoveries are mapped"
    );
}

/// The violations that may catch each bug in an exploration.
fn catches(bug: Bug) -> &'static [&'static str] {
    match bug {
        Bug::ApplyBeforeWal => &["lost-ack"],
        Bug::TrustCacheOnReopen => &["unrecoverable", "lost-ack", "recovery-mismatch"],
        Bug::UnsealedCommits => &["lost-ack"],
        Bug::NormalisedBeforeLog => &["foreign-command"],
        Bug::IndexNotRebuilt => &["state-mismatch", "unrecoverable"],
        Bug::TickLostOnRecovery => &["market-data-diverged"],
        Bug::AuditBeforeLedger => &["audit-diverged"],
        // A follower's pull finds its next events removed: in a recovery, or in the
        // recorded run itself.
        Bug::RetentionForgetsFollowers => &["unrecoverable", "service-error"],
        _ => &[
            "unrecoverable",
            "lost-ack",
            "history-broken",
            "recovery-mismatch",
            "state-mismatch",
            "silent-corruption",
        ],
    }
}

#[test]
fn planted_bugs_are_caught_by_the_rule_they_break() {
    const { assert!(engine::bugs::AVAILABLE) };
    let mut wrong = Vec::new();
    for bug in [
        Bug::ApplyBeforeWal,
        Bug::TrustCacheOnReopen,
        Bug::UnsealedCommits,
        Bug::NormalisedBeforeLog,
        Bug::IndexNotRebuilt,
    ] {
        let r = run(&config(16, 0, Some(bug)));
        // Damage at rest shows a bug through its own lens: judge what the checker found.
        let unwrapped = |v: &Violation| match v {
            Violation::SilentCorruption { found } => found.kind(),
            other => other.kind(),
        };
        let first = r.failures.first().map(|f| unwrapped(&f.violation));
        let (n, until) = (r.failures.len(), r.states_until_first_failure);
        eprintln!("{bug}: {n} failing states, first after {until:?} states: {first:?}");
        if !first.is_some_and(|k| catches(bug).contains(&k)) {
            wrong.push((bug, first));
        }
    }
    assert!(wrong.is_empty(), "not caught, or caught by the wrong rule: {wrong:?}");
}

/// Market data and the trail are explored too: each of their bugs is caught by its rule
/// (their recoveries judged against the checker's own derivations, the trail against the
/// ledger beside it, the followers' floors in the matching engine's retention).
#[test]
fn the_followers_bugs_are_caught_by_the_rule_they_break() {
    const { assert!(engine::bugs::AVAILABLE) };
    let mut wrong = Vec::new();
    for (bug, commands) in
        [(Bug::RetentionForgetsFollowers, 16), (Bug::AuditBeforeLedger, 16), (Bug::TickLostOnRecovery, 20)]
    {
        let r = run(&config(commands, 0, Some(bug)));
        let first = r.failures.first().map(|f| f.violation.kind());
        eprintln!("{bug}: {} failing states, first: {first:?}", r.failures.len());
        if !first.is_some_and(|k| catches(bug).contains(&k)) {
            wrong.push((bug, first));
        }
    }
    assert!(wrong.is_empty(), "not caught, or caught by the wrong rule: {wrong:?}");
}

#[test]
fn a_failure_reproduces_at_its_operation() {
    let cfg = config(16, 0, Some(Bug::ApplyBeforeWal));
    let first = run(&cfg).failures.into_iter().next().expect("apply-before-wal is caught");
    let again = run(&ExploreConfig { at: Some(first.op), ..cfg });
    assert!(
        again.failures.iter().any(|f| f.op == first.op && f.violation.kind() == first.violation.kind()),
        "explore --at {} did not reproduce {first:?}",
        first.op
    );
    assert!(again.states < 200, "--at explores one operation, not the run ({} states)", again.states);
}
