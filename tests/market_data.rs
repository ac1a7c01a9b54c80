//! Market data under the simulator: it follows the matching engine's log through kills of
//! every node; every recovery, the final state and every tick served equal what the
//! checker derives from the model's event log; and the checker names a tampered tick,
//! book or top of book.

#![cfg(madsim)]

use engine::market_data::MdState;
use engine::service::Recovered;
use scenarios::checker::Violation;
use scenarios::scenario::{Params, Scenario};
use scenarios::simrun;

fn market_data_world(seed: u64, commands: usize) -> sim::world::WorldConfig {
    simrun::world_config(Scenario::MarketData, seed, commands, &Params::default())
}

/// A change to a recovered market-data state.
type Tamper = fn(&mut MdState);

/// The state of recovery `i`, a market-data recovery.
fn md_state(result: &mut sim::world::WorldResult, i: usize) -> &mut MdState {
    match &mut result.recoveries[i].state {
        Recovered::MarketData { state, .. } => state,
        other => panic!("recovery {i} is not market data's: {other:?}"),
    }
}

/// The market-data recoveries of a run (the final one included).
fn md_recoveries(result: &sim::world::WorldResult) -> Vec<usize> {
    let is_md = |r: &&sim::world::RecoveryRecord| matches!(r.state, Recovered::MarketData { .. });
    result.recoveries.iter().enumerate().filter(|(_, r)| is_md(r)).map(|(i, _)| i).collect()
}

#[test]
fn market_data_follows_every_event_through_kills() {
    let cfg = market_data_world(2, 800);
    let markets = cfg.markets.clone();
    let result = sim::world::run_world(cfg);
    simrun::check(&result, &markets).unwrap();
    let f = result.final_state.as_ref().expect("recovered");
    let md = f.market_data.as_ref().expect("a market-data world recovers market data").market_data();
    let events = f.me.durable_event_id();
    assert!(events > 100, "the workload made events ({events})");
    assert_eq!(md.last_event_id(), events, "market data holds every event at the end");
    let state = md.state();
    assert_eq!(state.ticks.len() as u64, f.me.engine().next_trade_id() - 1, "a tick per trade");
    assert!(state.l2.len() > 10 && state.deltas.len() > 50, "L2 books and deltas were published");
    let served = &result.market_data.as_ref().expect("seen").served_ticks;
    assert!(served.len() > 10, "the observer was served ticks ({})", served.len());
    let restarts = md_recoveries(&result).len();
    assert!(restarts >= 3, "market data was killed and recovered ({restarts} recoveries)");
    let from_snapshot = result
        .recoveries
        .iter()
        .filter(|r| matches!(r.state, Recovered::MarketData { snapshot: Some(_), .. }))
        .count();
    assert!(from_snapshot >= 1, "a recovery loaded a market-data snapshot");
}

#[test]
fn a_wrong_tick_book_or_top_is_named() {
    let cfg = market_data_world(3, 600);
    let markets = cfg.markets.clone();
    let mut result = sim::world::run_world(cfg);
    simrun::check(&result, &markets).unwrap();
    let expect_named = |result: &sim::world::WorldResult, what: &str| match simrun::check(result, &markets) {
        Err(Violation::MarketDataDiverged { field, .. }) => assert!(field.contains(what), "{what}: {field}"),
        other => panic!("a wrong {what} must be named: {other:?}"),
    };
    // A tick served at a price the model never traded at.
    let seen = result.market_data.as_mut().expect("seen");
    seen.served_ticks[0].price += 1;
    expect_named(&result, "served");
    result.market_data.as_mut().expect("seen").served_ticks[0].price -= 1;
    // The final recovery losing a tick, with an L2 book off, with a top of book off.
    let last = *md_recoveries(&result).last().expect("the final recovery");
    let tampers: [(&str, Tamper); 3] = [
        ("ticks", |s| {
            s.ticks.remove(s.ticks.len() / 2);
        }),
        ("L2 books", |s| s.l2.last_mut().expect("an L2 book").bids.clear()),
        ("top-of-book deltas", |s| s.deltas.last_mut().expect("a delta").top.ask = None),
    ];
    for (what, tamper) in tampers {
        let before = md_state(&mut result, last).clone();
        tamper(md_state(&mut result, last));
        expect_named(&result, what);
        *md_state(&mut result, last) = before;
    }
    simrun::check(&result, &markets).unwrap();
}

#[test]
fn some_swarm_seeds_run_market_data() {
    let (mut with, mut seeds) = (0, 0);
    for seed in 0..40 {
        let cfg = simrun::world_config(Scenario::Swarm, seed, 10, &Params::default());
        seeds += 1;
        if cfg.market_data.is_some() {
            with += 1;
            assert!(cfg.markets.book_events(), "seed {seed}: market data without book events");
            assert!(!cfg.storage.retention, "seed {seed}: market data with retention on");
        }
    }
    assert!(with > 0 && with < seeds, "{with} of {seeds} swarm seeds draw market data");
}
