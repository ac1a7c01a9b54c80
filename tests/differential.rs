//! The differential property: random command streams give the same acknowledgements, the
//! same UBSCore history, the same ME event log, the same ledger and the same final state
//! in the engine and in the independent reference model; and SEMANTICS.md's invariants
//! hold on the engine after every command.

use engine::{Asset, Command, Markets, Order, OrderKind, Outcome, Pipeline, Side};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use scenarios::checker::{self, ExchangeView};
use scenarios::model::Model;
use std::collections::BTreeMap;

/// Small units make rounding, dust and price improvement frequent: asset 1 has 3
/// decimals, asset 2 has 2, asset 3 has 0. Symbol 13 exists only in the strategy (unknown).
fn markets() -> Markets {
    let asset = |id, decimals| Asset { id, code: format!("A{id}"), decimals };
    Markets::new(
        vec![asset(1, 3), asset(2, 2), asset(3, 0)],
        vec![(10, "A1_A2".into(), 1, 2), (11, "A3_A2".into(), 3, 2), (12, "A1_A3".into(), 1, 3)],
    )
    .unwrap()
}

const USERS: u64 = 5;

#[derive(Clone, Debug)]
enum Op {
    Deposit {
        user: u64,
        asset: u32,
        amount: u64,
    },
    Withdraw {
        user: u64,
        asset: u32,
        amount: u64,
    },
    Place {
        user: u64,
        symbol: u32,
        side: Side,
        kind: OrderKind,
        price: u64,
        qty: u64,
        reuse_id: Option<usize>,
    },
    Cancel {
        target: usize,
        by_owner: bool,
        user: u64,
    },
    Retry {
        index: usize,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..50_000u64, 1 => Just(0u64), 1 => (u64::MAX / 2)..=u64::MAX]
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        2 => (user.clone(), 0..=4u32, amount()).prop_map(|(user, asset, amount)| Op::Deposit { user, asset, amount }),
        1 => (user.clone(), 0..=4u32, amount()).prop_map(|(user, asset, amount)| Op::Withdraw { user, asset, amount }),
        10 => (
            user.clone(),
            prop_oneof![10 => 10..=12u32, 1 => Just(13u32)],
            prop_oneof![Just(Side::Buy), Just(Side::Sell)],
            prop_oneof![6 => Just(OrderKind::Gtc), 2 => Just(OrderKind::Ioc), 2 => Just(OrderKind::Market)],
            prop_oneof![20 => 1..=30u64, 1 => Just(0u64), 1 => (u64::MAX / 4)..=u64::MAX],
            prop_oneof![20 => 1..=3_000u64, 1 => Just(0u64), 1 => (u64::MAX / 4)..=u64::MAX],
            prop::option::weighted(0.05, any::<usize>()),
        )
            .prop_map(|(user, symbol, side, kind, price, qty, reuse_id)| Op::Place { user, symbol, side, kind, price, qty, reuse_id }),
        3 => (any::<usize>(), prop::bool::weighted(0.85), user).prop_map(|(target, by_owner, user)| Op::Cancel { target, by_owner, user }),
        1 => any::<usize>().prop_map(|index| Op::Retry { index }),
    ]
}

/// Turns abstract operations into commands with concrete, mostly fresh ids.
fn materialize(ops: &[Op]) -> Vec<Command> {
    let mut commands: Vec<Command> = Vec::new();
    let mut orders: Vec<Order> = Vec::new();
    let (mut next_request, mut next_order) = (1u64, 1u64);
    for op in ops {
        let command = match *op {
            Op::Deposit { user, asset, amount } => {
                next_request += 1;
                Command::Deposit { request_id: next_request, user, asset, amount }
            }
            Op::Withdraw { user, asset, amount } => {
                next_request += 1;
                Command::Withdraw { request_id: next_request, user, asset, amount }
            }
            Op::Place { user, symbol, side, kind, price, qty, reuse_id } => {
                let order_id = match reuse_id {
                    Some(i) if !orders.is_empty() => orders[i % orders.len()].order_id,
                    _ => {
                        next_order += 1;
                        next_order
                    }
                };
                let order = Order { order_id, user, symbol, side, kind, price, qty };
                orders.push(order);
                Command::Place(order)
            }
            Op::Cancel { target, by_owner, user } => match orders.get(target % orders.len().max(1)) {
                Some(o) => {
                    Command::Cancel { order_id: o.order_id, user: if by_owner { o.user } else { user } }
                }
                None => Command::Cancel { order_id: 999_999, user },
            },
            Op::Retry { index } if !commands.is_empty() => commands[index % commands.len()],
            Op::Retry { .. } => continue,
        };
        commands.push(command);
    }
    commands
}

/// Funded users first, so that most orders are accepted and books fill up.
fn funding() -> Vec<Command> {
    let mut out = Vec::new();
    for user in 0..USERS {
        for asset in 1..=3 {
            out.push(Command::Deposit {
                request_id: 1_000_000 + user * 10 + u64::from(asset),
                user,
                asset,
                amount: 200_000,
            });
        }
    }
    out
}

fn run_differential(commands: &[Command]) -> Result<(), TestCaseError> {
    run_differential_on(markets(), commands)
}

fn run_differential_on(markets: Markets, commands: &[Command]) -> Result<(), TestCaseError> {
    let mut engine = Pipeline::with_logs(markets.clone());
    let mut model = Model::new(markets);
    // Σ accepted deposits − withdrawals, from the acks alone.
    let mut net: BTreeMap<u32, u128> = BTreeMap::new();
    for (i, command) in commands.iter().enumerate() {
        let want = model.submit(*command);
        let got =
            engine.submit(*command).map_err(|e| TestCaseError::fail(format!("#{i} {command:?}: {e}")))?;
        prop_assert_eq!(want, got, "ack of command #{} {:?}", i, command);
        if got.seq.is_some() && got.outcome == Outcome::Accepted {
            match *command {
                Command::Deposit { asset, amount, .. } => {
                    *net.entry(asset).or_default() += u128::from(amount)
                }
                Command::Withdraw { asset, amount, .. } => {
                    *net.entry(asset).or_default() -= u128::from(amount)
                }
                _ => {}
            }
        }
        let view = ExchangeView::of_engine(&engine);
        let supply: BTreeMap<u32, u128> = view.supply.iter().map(|(a, s)| (*a, u128::from(*s))).collect();
        net.retain(|_, v| *v != 0);
        prop_assert_eq!(&supply, &net, "supply after command #{}", i);
        checker::check_state(&view)
            .map_err(|e| TestCaseError::fail(format!("after #{i} {command:?}: {e}")))?;
        checker::check_event_log(engine.events())
            .map_err(|e| TestCaseError::fail(format!("after #{i}: {e}")))?;
        checker::compare(&engine, &model)
            .map_err(|e| TestCaseError::fail(format!("after #{i} {command:?}: {e}")))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_model_on_random_streams(ops in prop::collection::vec(op(), 1..250)) {
        let mut commands = funding();
        commands.extend(materialize(&ops));
        run_differential(&commands)?;
    }

    #[test]
    fn engine_equals_model_without_funding(ops in prop::collection::vec(op(), 1..120)) {
        run_differential(&materialize(&ops))?;
    }

    /// With order events on, both also log `Rested` and `Rejected` at the same places.
    #[test]
    fn engine_equals_model_with_order_events(ops in prop::collection::vec(op(), 1..200)) {
        let mut commands = funding();
        commands.extend(materialize(&ops));
        run_differential_on(markets().with_order_events(true), &commands)?;
    }
}

/// Order events appear where the strategy makes orders rest and get refused.
#[test]
fn order_events_are_logged_only_when_asked_for() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let ops = prop::collection::vec(op(), 200).new_tree(&mut runner).unwrap().current();
    let mut commands = funding();
    commands.extend(materialize(&ops));
    let count = |on: bool| {
        let mut engine = Pipeline::with_logs(markets().with_order_events(on));
        for c in &commands {
            engine.submit(*c).unwrap();
        }
        let rested =
            engine.events().iter().filter(|e| matches!(e.kind, engine::MeEventKind::Rested { .. })).count();
        let rejected =
            engine.events().iter().filter(|e| matches!(e.kind, engine::MeEventKind::Rejected { .. })).count();
        (rested, rejected)
    };
    assert_eq!(count(false), (0, 0));
    let (rested, rejected) = count(true);
    assert!(rested > 5 && rejected > 5, "{rested} rested, {rejected} rejected");
}

/// The generated streams reach the cases the property is about (else it proves little).
#[test]
fn the_strategy_covers_trades_rejections_duplicates_and_cancels() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(op(), 150..250);
    let mut seen = BTreeMap::<&str, usize>::new();
    for _ in 0..40 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut commands = funding();
        commands.extend(materialize(&ops));
        let mut model = Model::new(markets());
        for c in &commands {
            let ack = model.submit(*c);
            let key = match (ack.seq, ack.outcome) {
                (None, Outcome::Rejected(engine::RejectReason::DuplicateId)) => "duplicate id",
                (None, _) => "retry",
                (_, Outcome::Rejected(engine::RejectReason::InsufficientBalance)) => "insufficient",
                (_, Outcome::Rejected(engine::RejectReason::Overflow)) => "overflow",
                (_, Outcome::Rejected(_)) => "other rejection",
                _ => "accepted",
            };
            *seen.entry(key).or_default() += 1;
        }
        for e in model.events() {
            let key = match e.kind {
                engine::MeEventKind::Trade(_) => "trade",
                engine::MeEventKind::OrderClosed { reason: engine::CloseReason::Cancelled, .. } => {
                    "cancelled"
                }
                engine::MeEventKind::OrderClosed { reason: engine::CloseReason::Expired, .. } => "expired",
                engine::MeEventKind::OrderClosed { .. } => "filled",
                engine::MeEventKind::CancelRejected { .. } => "cancel rejected",
                engine::MeEventKind::Rested { .. } => "rested",
                engine::MeEventKind::Rejected { .. } => "rejected",
            };
            *seen.entry(key).or_default() += 1;
        }
    }
    for key in [
        "duplicate id",
        "retry",
        "insufficient",
        "overflow",
        "other rejection",
        "accepted",
        "trade",
        "cancelled",
        "expired",
        "filled",
        "cancel rejected",
    ] {
        assert!(seen.get(key).copied().unwrap_or(0) >= 5, "{key} seen {:?} times: {seen:?}", seen.get(key));
    }
}

/// The checker is not vacuous: a single changed command makes the comparison fail.
#[test]
fn the_checker_detects_a_divergence() {
    let mut commands = funding();
    let place = |order_id, side, price| {
        Command::Place(Order { order_id, user: 1, symbol: 10, side, kind: OrderKind::Gtc, price, qty: 1_500 })
    };
    commands.extend([place(1, Side::Sell, 7), place(2, Side::Buy, 9)]);
    let mut engine = Pipeline::with_logs(markets());
    let mut model = Model::new(markets());
    for c in &commands {
        engine.submit(*c).unwrap();
        model.submit(*c);
    }
    assert!(checker::compare(&engine, &model).is_ok());
    engine.submit(place(3, Side::Buy, 8)).unwrap();
    model.submit(place(3, Side::Buy, 6));
    let err = checker::compare(&engine, &model).unwrap_err();
    assert!(err.contains("history"), "{err}");
}
