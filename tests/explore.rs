//! Bounded exhaustive crash-state exploration: the correct engine survives every explored
//! crash state (every class: resolutions of pending writes, fsync errors, crashes inside
//! recoveries, media damage at rest) and every planted bug is caught, by the rule it
//! breaks; a failure reproduces at its operation.

#![cfg(madsim)]

use engine::bugs::Bug;
use scenarios::checker::Violation;
use scenarios::explore::drive::Storage;
use scenarios::explore::{ExploreConfig, ExploreReport, Family, Only, explore, shrink};

fn config(commands: usize, recovery_depth: usize, planted: Option<Bug>) -> ExploreConfig {
    ExploreConfig {
        seed: 0,
        commands,
        depth: 1,
        recovery_depth,
        only: None,
        keep: None,
        storage: Default::default(),
        jobs: 2,
        planted,
        hostile: 0,
    }
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
    assert_eq!(
        (r.io_errors, r.stops),
        (r.ops, 16),
        "every operation failed once, a stop after every command"
    );
    // A pull after every command and a last one: each reply lost once; a failover after
    // every command.
    assert_eq!((r.lost_replies, r.failovers), (17, 16), "{r:?}");
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
        // The log differs from what the client sent; a follower recovered in a run with a
        // failing operation (judged before the log) shows the normalised price too.
        Bug::NormalisedBeforeLog => &["foreign-command", "market-data-diverged"],
        Bug::IndexNotRebuilt => &["state-mismatch", "unrecoverable"],
        Bug::TickLostOnRecovery => &["market-data-diverged"],
        Bug::AuditBeforeLedger => &["audit-diverged"],
        // A follower's pull finds its next events removed: in a recovery, or in the
        // recorded run itself.
        Bug::RetentionForgetsFollowers => &["unrecoverable", "service-error"],
        // The replica's chain, or its refusal of an order it already holds.
        Bug::ReplicaAppliesTwice => &["replica-diverged", "service-error"],
        // A follower's pull after the failover finds the promoted log's start removed.
        Bug::PromotionForgetsDownstream => &["service-error"],
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
    // Each in the family that reaches it (every family together costs minutes in a debug
    // build; the correct engine is explored in every family above).
    for (bug, family) in [
        (Bug::ApplyBeforeWal, Family::CrashPoint),
        (Bug::TrustCacheOnReopen, Family::FsyncError),
        (Bug::UnsealedCommits, Family::Media),
        (Bug::NormalisedBeforeLog, Family::CrashPoint),
        (Bug::IndexNotRebuilt, Family::CrashPoint),
    ] {
        let only = Some(Only { ops: None, family: Some(family) });
        let r = run(&ExploreConfig { only, ..config(16, 0, Some(bug)) });
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

/// Errors the engine runs past, and states a service leaves on purpose, are classes of
/// their own: a directory fsync's error ignored, a snapshot's read error taken for damage,
/// a graceful stop's marker trusted after the next crash. Only the io-error family (each
/// operation failing in a run that goes on as the engine decides, each operation of a
/// recovery failing) and the stop family (a graceful stop after each command) find them;
/// the crash points and media damage, where nothing fails that the engine could run past
/// and nothing stops gracefully, do not. The correct engine passes the same exploration.
#[test]
fn errors_run_past_and_graceful_stops_are_found_by_their_own_families() {
    const { assert!(engine::bugs::AVAILABLE) };
    let family = |f| Some(Only { ops: None, family: Some(f) });
    for (bug, seed, commands, own, kinds) in [
        (Bug::DirFsyncErrorIgnored, 0, 16, Family::IoError, &["unrecoverable"][..]),
        (Bug::SnapshotReadErrorCondemns, 0, 16, Family::IoError, &["recovery-mismatch", "unrecoverable"]),
        (Bug::CleanStopTrusted, 0, 16, Family::Stop, &["history-broken", "unrecoverable", "lost-ack"]),
    ] {
        let base = ExploreConfig { seed, depth: 0, ..config(commands, 0, Some(bug)) };
        let found = run(&ExploreConfig { only: family(own), ..base.clone() });
        let first = found.failures.first().map(|f| (f.family, f.violation.kind()));
        assert!(
            first.is_some_and(|(f, kind)| f == own && kinds.contains(&kind)),
            "{bug}: {:#?}",
            found.failures.first()
        );
        for other in [Family::CrashPoint, Family::Media] {
            let r = run(&ExploreConfig { only: family(other), ..base.clone() });
            assert!(r.failures.is_empty(), "{bug} under {other:?}: {:#?}", r.failures.first());
        }
        let clean = run(&ExploreConfig { planted: None, only: family(own), ..base });
        assert!(clean.failures.is_empty(), "{:#?}", clean.failures.first());
        if own == Family::IoError {
            // Every operation failed once, and each acknowledged disk's recoveries too.
            assert_eq!(clean.io_errors, clean.ops, "{clean:?}");
            assert!(clean.states > 3 * clean.io_errors, "recoveries with a failing operation: {clean:?}");
        } else {
            assert_eq!(clean.stops, commands as u64, "a stop after every command: {clean:?}");
        }
    }
}

/// Two oracles that no recovered state shows: the followers' answers to queries (a market
/// data that refuses every query at its durable watermark holds exactly the right state),
/// and the pace of the recorded run's snapshots (a trigger that never fires leaves every
/// state right). Each bug is caught by its own rule, and only there: the crash points find
/// nothing wrong with the run whose snapshots never came.
#[test]
fn queries_and_the_snapshot_pace_are_judged() {
    const { assert!(engine::bugs::AVAILABLE) };
    let family = |f| Some(Only { ops: None, family: Some(f) });
    let base = ExploreConfig { depth: 0, ..config(16, 0, None) };
    let refused = run(&ExploreConfig {
        only: family(Family::CrashPoint),
        planted: Some(Bug::QueryGuardInverted),
        ..base.clone()
    });
    let first = refused.failures.first().map(|f| f.violation.kind());
    assert_eq!(first, Some("query-refused"), "{:#?}", refused.failures.first());
    // Snapshots every 2 entries: 16 commands log enough to owe some.
    let storage = Storage { snapshot_every: Some(2), ..Storage::default() };
    let never = ExploreConfig { planted: Some(Bug::SnapshotsNeverTaken), storage, ..base.clone() };
    let paced = run(&ExploreConfig { only: family(Family::Run), ..never.clone() });
    let first = paced.failures.first().map(|f| (f.family, f.violation.kind()));
    assert_eq!(first, Some((Family::Run, "policy-broken")), "{:#?}", paced.failures.first());
    let crashed = run(&ExploreConfig { only: family(Family::CrashPoint), ..never });
    assert!(crashed.failures.is_empty(), "{:#?}", crashed.failures.first());
    let clean = run(&ExploreConfig { only: family(Family::Run), storage, ..base });
    assert!(clean.failures.is_empty(), "{:#?}", clean.failures.first());
}

/// The files the recorded run leaves are judged too: a writer that never prunes its
/// snapshots and a WAL that never closes a full segment keep every state right (nothing a
/// recovery finds is wrong) and fill the disk. Each is caught by the hygiene rules in the
/// run family; the correct engine passes them at the same settings.
#[test]
fn snapshots_never_pruned_and_segments_never_rotated_leak_disk() {
    const { assert!(engine::bugs::AVAILABLE) };
    let only_run = Some(Only { ops: None, family: Some(Family::Run) });
    let storage = Storage { segment_bytes: Some(128), ..Storage::default() };
    let base = ExploreConfig { depth: 0, only: only_run, storage, ..config(16, 0, None) };
    for bug in [Bug::SnapshotsNeverPruned, Bug::SegmentsNeverRotated] {
        let r = run(&ExploreConfig { planted: Some(bug), ..base.clone() });
        let first = r.failures.first().map(|f| (f.family, f.violation.kind()));
        assert_eq!(first, Some((Family::Run, "disk-leak")), "{bug}: {:#?}", r.failures.first());
    }
    let clean = run(&base);
    assert!(clean.failures.is_empty(), "{:#?}", clean.failures.first());
}

/// A write that fails part-way leaves the pages it copied before the error in the cache
/// (SimFs: every whole page before the write's last). Only an append that crosses a page
/// boundary leaves any, so the log must outgrow a page: 120 commands, 64 KiB segments, no
/// snapshot to rotate them. A WAL that retries the failed append writes the whole group
/// after those pages, and the next recovery finds acknowledged entries behind a torn
/// record; the correct engine, which gives up, passes the same operations.
#[test]
fn a_retried_append_after_a_partial_write_is_caught_by_the_io_error_family() {
    const { assert!(engine::bugs::AVAILABLE) };
    let storage = Storage { segment_bytes: Some(64 << 10), snapshot_every: Some(100_000), pull_every: None };
    // The operations around the first append that crosses a page boundary at seed 0.
    let only = Some(Only { ops: Some((500..=620).collect()), family: Some(Family::IoError) });
    let base = ExploreConfig { depth: 0, storage, only, ..config(120, 0, None) };
    let r = run(&ExploreConfig { planted: Some(Bug::FailedAppendRetried), ..base.clone() });
    let first = r.failures.first().map(|f| (f.family, f.violation.kind()));
    assert_eq!(first, Some((Family::IoError, "unrecoverable")), "{:#?}", r.failures.first());
    let clean = run(&base);
    assert!(clean.failures.is_empty(), "{:#?}", clean.failures.first());
    assert!(clean.io_errors > 100, "{clean:?}");
}

/// Market data and the trail are explored too: each of their bugs is caught by its rule
/// (their recoveries judged against the checker's own derivations, the trail against the
/// ledger beside it, the followers' floors in the matching engine's retention).
#[test]
fn the_followers_bugs_are_caught_by_the_rule_they_break() {
    const { assert!(engine::bugs::AVAILABLE) };
    let mut wrong = Vec::new();
    // `follower-serves-unsynced` has its own test below (its first failure is found under
    // media damage too, so its rule is looked for inside).
    for (bug, commands) in
        [(Bug::RetentionForgetsFollowers, 16), (Bug::AuditBeforeLedger, 16), (Bug::TickLostOnRecovery, 20)]
    {
        let only = Some(Only { ops: None, family: Some(Family::CrashPoint) });
        let r = run(&ExploreConfig { only, ..config(commands, 0, Some(bug)) });
        let first = r.failures.first().map(|f| f.violation.kind());
        eprintln!("{bug}: {} failing states, first: {first:?}", r.failures.len());
        if !first.is_some_and(|k| catches(bug).contains(&k)) {
            wrong.push((bug, first));
        }
    }
    assert!(wrong.is_empty(), "not caught, or caught by the wrong rule: {wrong:?}");
}

/// A bug only hostile commands reach (an order that locks nothing, untracked) is caught
/// when the explored workload has them (`--hostile`): seed 9's has a dust buy.
#[test]
fn a_bug_of_hostile_inputs_is_caught_with_hostile_commands_mixed_in() {
    const { assert!(engine::bugs::AVAILABLE) };
    let only = Some(Only { ops: None, family: Some(Family::CrashPoint) });
    let cfg = ExploreConfig { seed: 9, depth: 0, only, ..config(30, 0, Some(Bug::ZeroLockUntracked)) };
    let plain = run(&cfg);
    assert!(
        plain.failures.is_empty(),
        "the plain workload never locks nothing: {:?}",
        plain.failures.first()
    );
    let r = run(&ExploreConfig { hostile: 30, ..cfg });
    let first = r.failures.first().map(|f| f.violation.kind());
    assert!(
        first.is_some_and(|k| ["unrecoverable", "state-mismatch", "service-error"].contains(&k)),
        "{first:?}"
    );
}

/// A follower that reports events durable before they are is caught by what it served:
/// its recovery is consistent (only behind), and it pulls the events again, so nothing but
/// the served watermark recorded before the crash tells.
#[test]
fn a_follower_is_held_to_what_it_served() {
    const { assert!(engine::bugs::AVAILABLE) };
    let only = Some(Only { ops: None, family: Some(Family::CrashPoint) });
    let r = run(&ExploreConfig { only, ..config(16, 0, Some(Bug::FollowerServesUnsynced)) });
    // Found under media damage too (the damage is not what lost the events): look inside.
    let by_served_rule = |v: &Violation| match v {
        Violation::SilentCorruption { found } => found.as_ref().clone(),
        other => other.clone(),
    };
    let served = |f: &&scenarios::explore::ExploreFailure| match by_served_rule(&f.violation) {
        Violation::MarketDataDiverged { field, expected, .. }
        | Violation::AuditDiverged { field, expected, .. } => {
            field == "events" && expected.contains("served before the crash")
        }
        _ => false,
    };
    let first = r.failures.first().expect("follower-serves-unsynced is caught");
    assert!(served(&first), "caught by another rule: {first:#?}");
    assert!(
        r.failures.iter().any(|f| f.family == Family::CrashPoint && served(&f)),
        "a crash point catches it too"
    );
}

#[test]
fn a_failure_reproduces_at_its_operation() {
    let cfg = config(16, 0, Some(Bug::ApplyBeforeWal));
    let first = run(&cfg).failures.into_iter().next().expect("apply-before-wal is caught");
    let again = run(&ExploreConfig { only: Some(Only::at(first.op)), ..cfg });
    assert!(
        again.failures.iter().any(|f| f.op == first.op && f.violation.kind() == first.violation.kind()),
        "explore --at {} did not reproduce {first:?}",
        first.op
    );
    assert!(again.states < 200, "--at explores one operation, not the run ({} states)", again.states);
}

/// A failure shrinks to a few commands (the trail's bug needs a trade: two places and their
/// deposits) that still fail the same way at the crash state the shrink names.
#[test]
fn a_failure_shrinks_to_a_few_commands_that_reproduce_it() {
    let only = Some(Only { ops: None, family: Some(Family::CrashPoint) });
    let cfg = ExploreConfig { only, ..config(16, 0, Some(Bug::AuditBeforeLedger)) };
    let first = run(&cfg).failures.into_iter().next().expect("audit-before-ledger is caught");
    let s = shrink::shrink(&cfg, &first, 100, &|_, _| {}).expect("it reproduces");
    assert_eq!(s.before.0, 16);
    assert!(s.after.0 <= 5 && s.after.1 <= 2, "{:?} -> {:?}", s.before, s.after);
    assert_eq!(s.failure.violation.kind(), "audit-diverged");
    let keep = s.config.keep.clone().expect("the kept commands");
    assert_eq!(keep.len(), s.after.0);
    // The reproduce configuration, explored in full at its operation, fails the same way.
    let again = run(&ExploreConfig { recovery_depth: 1, depth: 1, ..s.config.clone() });
    assert!(
        again.failures.iter().any(|f| f.op == s.failure.op && f.violation.kind() == "audit-diverged"),
        "{:?}",
        again.failures.first()
    );
}

/// The hot standby is explored too: the replica bugs are caught by a lost reply (the retry
/// re-applies a batch) and by a failover (the promoted log lost what followers had not
/// pulled).
#[test]
fn the_replica_bugs_are_caught_by_a_lost_reply_and_a_failover() {
    const { assert!(engine::bugs::AVAILABLE) };
    let mut wrong = Vec::new();
    for (bug, family) in
        [(Bug::ReplicaAppliesTwice, Family::LostReply), (Bug::PromotionForgetsDownstream, Family::Failover)]
    {
        let only = Only { ops: None, family: Some(family) };
        let r = run(&ExploreConfig { only: Some(only), ..config(16, 0, Some(bug)) });
        let first = r.failures.first().map(|f| (f.family, f.violation.kind()));
        eprintln!("{bug}: {} failing runs, first: {first:?}", r.failures.len());
        if !first.is_some_and(|(f, k)| f == family && catches(bug).contains(&k)) {
            wrong.push((bug, first));
        }
    }
    assert!(wrong.is_empty(), "not caught, or caught by the wrong rule: {wrong:?}");
}

/// Found by explore at the shrink's smallest settings: market data whose only snapshot is
/// damaged at rest after retention removed the events before it opened at event 0 on a WAL
/// that continues later, and panicked at its next pull. It must refuse to open, naming it.
#[test]
fn a_follower_whose_snapshot_is_lost_after_retention_refuses_to_open() {
    let cfg = ExploreConfig {
        keep: Some(vec![29]),
        storage: Storage { segment_bytes: Some(64), snapshot_every: Some(1), pull_every: Some(1) },
        only: Some(Only { ops: None, family: Some(Family::Media) }),
        ..config(30, 0, None)
    };
    let r = run(&cfg);
    assert!(r.failures.is_empty(), "{:#?}", r.failures.first());
    assert!(r.media_faults > 0 && r.detected > 0, "{r:?}");
}
