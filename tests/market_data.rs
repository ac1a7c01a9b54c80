//! Market data under the simulator: it follows the matching engine's log through kills of
//! every node; every recovery, the final state and every tick served equal what the
//! checker derives from the model's event log; and the checker names a tampered tick,
//! book or top of book.

#![cfg(madsim)]

use engine::audit::AuditEntry;
use engine::market_data::MdState;
use engine::service::Recovered;
use scenarios::checker::Violation;
use scenarios::scenario::{Params, Scenario};
use scenarios::simrun;
use sim::world::Served;

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
    let md = f.market_data.as_ref().expect("a market-data world recovers market data").inner();
    let events = f.me.durable_event_id();
    assert!(events > 100, "the workload made events ({events})");
    assert_eq!(md.last_event_id(), events, "market data holds every event at the end");
    let state = md.state();
    assert_eq!(state.ticks.len() as u64, f.me.engine().next_trade_id() - 1, "a tick per trade");
    assert!(state.l2.len() > 10 && state.deltas.len() > 50, "L2 books and deltas were published");
    let seen = result.market_data.as_ref().expect("seen");
    // The strict round after convergence read the ticks to the end: every tick was served.
    assert!(seen.ticks_complete, "the final round read the ticks to the end");
    assert_eq!(seen.served_ticks.len(), state.ticks.len(), "every tick served");
    let restarts = md_recoveries(&result).len();
    assert!(restarts >= 3, "market data was killed and recovered ({restarts} recoveries)");
    let from_snapshot = result
        .recoveries
        .iter()
        .filter(|r| matches!(r.state, Recovered::MarketData { snapshot: Some(_), .. }))
        .count();
    assert!(from_snapshot >= 1, "a recovery loaded a market-data snapshot");
    // Retention ran beside the followers (their floors kept what they needed).
    assert!(result.segments_removed > 10, "segments removed: {}", result.segments_removed);
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
    // A top of book and an L2 book served wrong.
    let tops = result
        .served
        .iter()
        .filter(|a| matches!(&a.answer, Served::Top { top: Some(t), .. } if t.bid.is_some()))
        .count();
    let books = result
        .served
        .iter()
        .map(|a| &a.answer)
        .filter(|q| matches!(q, Served::Book { book: Some(_), .. }))
        .count();
    assert!(tops > 10 && books > 10, "queries were answered ({tops} tops, {books} books)");
    for (what, pick) in [("top of book", 0), ("L2 book", 1)] {
        let i = result
            .served
            .iter()
            .map(|a| &a.answer)
            .position(|q| match q {
                Served::Top { top: Some(t), .. } => pick == 0 && t.bid.is_some(),
                Served::Book { book: Some(b), .. } => pick == 1 && !b.bids.is_empty(),
                _ => false,
            })
            .expect("an answer to tamper with");
        let before = result.served[i].clone();
        match &mut result.served[i].answer {
            Served::Top { top: Some(t), .. } => t.bid = None,
            Served::Book { book: Some(b), .. } => b.bids.clear(),
            _ => unreachable!("picked above"),
        }
        expect_named(&result, what);
        result.served[i] = before;
    }
    // The final recovery losing a tick, with an L2 book off, with a top of book off.
    let last = *md_recoveries(&result).last().expect("the final recovery");
    let tampers: [(&str, Tamper); 4] = [
        // Less than the answers it gave before: served state lost.
        ("events", |s| s.last_event_id = 0),
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
            assert!(cfg.markets.order_events(), "seed {seed}: market data without order events");
        }
    }
    assert!(with > 0 && with < seeds, "{with} of {seeds} swarm seeds draw market data");
}

#[test]
fn settlement_keeps_the_audit_trail_and_a_wrong_entry_is_named() {
    let cfg = market_data_world(4, 600);
    let markets = cfg.markets.clone();
    let mut result = sim::world::run_world(cfg);
    simrun::check(&result, &markets).unwrap();
    let audits: Vec<usize> = result
        .recoveries
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.state, Recovered::Audit { .. }))
        .map(|(i, _)| i)
        .collect();
    assert!(audits.len() >= 2, "settlement recovered its audit trail ({} times)", audits.len());
    let last = *audits.last().expect("the final recovery");
    let Recovered::Audit { state, ledger_trade_id, .. } = &mut result.recoveries[last].state else {
        unreachable!("an audit recovery")
    };
    let ends = state
        .orders
        .values()
        .filter(|o| o.entries.iter().any(|(_, e)| !matches!(e, AuditEntry::Fill { .. })))
        .count();
    assert!(
        ends > 50 && state.last_trade_id == *ledger_trade_id,
        "{ends} orders with an end; trail complete"
    );
    let rejected = state
        .orders
        .values()
        .any(|o| o.entries.iter().any(|(_, e)| matches!(e, AuditEntry::Rejected { .. })));
    assert!(rejected, "refused orders are in the trail");
    // One fill dropped from one order: named with the order.
    let (id, order) =
        state.orders.iter_mut().find(|(_, o)| o.entries.len() > 1).expect("an order with a story");
    let id = *id;
    order.entries.remove(0);
    match simrun::check(&result, &markets) {
        Err(Violation::AuditDiverged { field, .. }) => assert_eq!(field, format!("order {id}")),
        other => panic!("a wrong audit entry must be named: {other:?}"),
    }
    // An order's trail served wrong, and a user's orders served wrong.
    let (orders, users) = (
        result
            .served
            .iter()
            .map(|a| &a.answer)
            .filter(|q| matches!(q, Served::AuditOrder { order: Some(_), .. }))
            .count(),
        result
            .served
            .iter()
            .filter(|a| matches!(&a.answer, Served::AuditUser { ids, .. } if !ids.is_empty()))
            .count(),
    );
    assert!(orders > 5 && users > 10, "the audit was queried ({orders} orders, {users} users)");
    let i = result
        .served
        .iter()
        .position(|a| matches!(&a.answer, Served::AuditUser { ids, .. } if !ids.is_empty()))
        .expect("one");
    if let Served::AuditUser { ids, .. } = &mut result.served[i].answer {
        ids.pop();
    }
    match simrun::check(&result, &markets) {
        Err(Violation::AuditDiverged { field, .. }) => {
            assert!(field.starts_with("orders of user"), "{field}")
        }
        other => panic!("a wrong answer must be named: {other:?}"),
    }
    // A trail speaking of a trade beyond the ledger beside it.
    let Recovered::Audit { ledger_trade_id, .. } = &mut result.recoveries[last].state else { unreachable!() };
    *ledger_trade_id -= 1;
    match simrun::check(&result, &markets) {
        Err(Violation::AuditDiverged { field, .. }) => assert_eq!(field, "last trade in the trail"),
        other => panic!("a trail ahead of its ledger must be named: {other:?}"),
    }
}
