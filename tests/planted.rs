//! Proof that the harness catches bugs: each known bug, planted in the engine behind a
//! test-only switch, makes a sweep of its scenario fail within a few hundred seeds.

#![cfg(madsim)]

use engine::bugs::Bug;
use scenarios::scenario;

#[test]
fn every_planted_bug_is_caught() {
    const { assert!(engine::bugs::AVAILABLE, "the tests build the engine with the planted-bugs feature") };
    let mut missed = Vec::new();
    for bug in Bug::ALL {
        let (seeds, failure) = scenario::hunt(bug, 300, 200);
        eprintln!(
            "{bug}: {seeds} seeds: {}",
            failure.as_deref().unwrap_or("NOT CAUGHT").lines().next().unwrap_or("")
        );
        if failure.is_none() {
            missed.push(bug);
        }
    }
    assert!(missed.is_empty(), "not caught within 200 seeds: {missed:?}");
}

#[test]
fn without_a_planted_bug_the_same_seeds_pass() {
    for bug in [Bug::SkipFsync, Bug::IndexNotRebuilt, Bug::CrcNotChecked] {
        let s = scenario::hunting_ground(bug);
        for seed in 0..3 {
            let params = scenario::Params { commands: Some(300), ..scenario::Params::default() };
            let r = scenario::run(s, seed, &params);
            assert!(r.failure.is_none(), "{s} seed {seed}: {:?}", r.failure);
        }
    }
}
