//! insta snapshots of the recovered state of all three services for pinned (scenario,
//! seed) pairs: balances, resting orders per book, the settlement watermark and a digest of
//! the ledger, one test per pinned seed. Review changes with
//! `cargo insta test --workspace --review` (or `cargo insta review` after `cargo test`);
//! CI runs with INSTA_UPDATE=no. `EXSIM_SEED=N` runs only the pinned seed N.

#![cfg(madsim)]

use scenarios::scenario::{Params, Scenario};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct Recovered {
    /// `user/asset` → `avail + frozen` as `avail / frozen`.
    balances: BTreeMap<String, String>,
    /// Symbol → resting orders in priority order, `id user side price qty filled`.
    books: BTreeMap<u32, Vec<String>>,
    ubs_next_seq: u64,
    me_events: u64,
    settlement_watermark: u64,
    ledger_digest: String,
}

fn recovered(scenario: Scenario, seed: u64, commands: usize) -> Recovered {
    let params = Params { commands: Some(commands), ..Params::default() };
    let cfg = scenarios::simrun::world_config(scenario, seed, commands, &params);
    let markets = cfg.markets.clone();
    let result = sim::world::run_world(cfg);
    scenarios::simrun::check(&result, &markets).unwrap_or_else(|e| panic!("{scenario} seed {seed}: {e}"));
    let f = result.final_state.expect("recovered");
    let balances = f
        .ubs
        .core()
        .balances()
        .into_iter()
        .map(|((u, a), b)| (format!("{u}/{a}"), format!("{} / {}", b.avail, b.frozen)))
        .collect();
    let books = f
        .me
        .engine()
        .all_orders()
        .into_iter()
        .map(|(s, orders)| {
            let lines = orders
                .iter()
                .map(|o| format!("{} {} {} {} {} {}", o.order_id, o.user, o.side, o.price, o.qty, o.filled))
                .collect();
            (s, lines)
        })
        .collect();
    // FNV-1a over the ledger's encoding: equal ledgers, equal digests.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in f.settlement.settlement().ledger() {
        for b in engine::codec::encode(t) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    Recovered {
        balances,
        books,
        ubs_next_seq: f.ubs.core().next_seq(),
        me_events: f.me.durable_event_id(),
        settlement_watermark: f.settlement.durable_trade_id(),
        ledger_digest: format!("{h:016x}"),
    }
}

/// Snapshots the recovered state of one pinned (scenario, seed), 300 commands.
fn snapshot(scenario: Scenario, seed: u64) {
    if !exsim_tests::runs_seed(seed) {
        return;
    }
    let commands = 300;
    let state = recovered(scenario, seed, commands);
    insta::with_settings!({
        snapshot_suffix => format!("{scenario}-{seed}"),
        info => &serde_json::json!({"scenario": scenario.name(), "seed": seed, "commands": commands}),
        sort_maps => true,
    }, {
        insta::assert_yaml_snapshot!("recovered", state);
    });
}

// One test per pinned seed: a mismatch in one does not hide the others.
#[test]
fn baseline_0() {
    snapshot(Scenario::Baseline, 0);
}

#[test]
fn crash_1() {
    snapshot(Scenario::Crash, 1);
}

#[test]
fn snapshot_crash_2() {
    snapshot(Scenario::SnapshotCrash, 2);
}

#[test]
fn corrupt_snapshot_3() {
    snapshot(Scenario::CorruptSnapshot, 3);
}

#[test]
fn chaos_4() {
    snapshot(Scenario::Chaos, 4);
}

#[test]
fn swarm_5() {
    snapshot(Scenario::Swarm, 5);
}
