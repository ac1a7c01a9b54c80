//! The invariants of SEMANTICS.md that must hold at quiescence, checked on a view.

use super::view::ExchangeView;
use engine::{Amount, AssetId, MeEvent, MeEventKind, Side, UserId};
use std::collections::BTreeMap;

/// Checks conservation, exact frozen amounts, lock/book agreement and uncrossed books.
/// Returns the first violation, described.
pub fn check_state(view: &ExchangeView) -> Result<(), String> {
    // Conservation: per asset, Σ (avail + frozen) = Σ deposits − Σ withdrawals.
    let mut held: BTreeMap<AssetId, u128> = BTreeMap::new();
    for ((_, asset), b) in &view.balances {
        *held.entry(*asset).or_default() += u128::from(b.avail) + u128::from(b.frozen);
    }
    let supply: BTreeMap<AssetId, u128> = view.supply.iter().map(|(a, s)| (*a, u128::from(*s))).collect();
    if held != supply {
        return Err(format!("conservation: held per asset {held:?} != deposits - withdrawals {supply:?}"));
    }

    // frozen(user, asset) = Σ remaining locks of that user's resting orders on it.
    let mut locked: BTreeMap<(UserId, AssetId), Amount> = BTreeMap::new();
    for (user, asset, amount) in view.locks.values() {
        let sum = locked.entry((*user, *asset)).or_default();
        *sum = sum.checked_add(*amount).ok_or("sum of locks overflows")?;
    }
    for (key, b) in &view.balances {
        let want = locked.get(key).copied().unwrap_or(0);
        if b.frozen != want {
            return Err(format!(
                "frozen of user {} asset {} is {} but its resting orders hold {want}",
                key.0, key.1, b.frozen
            ));
        }
    }
    for (key, amount) in &locked {
        if *amount != 0 && !view.balances.contains_key(key) {
            return Err(format!("user {} asset {}: orders hold {amount} but no balance", key.0, key.1));
        }
    }

    // Exactly the resting orders hold locks, and books are well-formed and uncrossed.
    let mut resting = 0usize;
    for (symbol, orders) in &view.books {
        resting += orders.len();
        let split = orders.iter().position(|o| o.side == Side::Sell).unwrap_or(orders.len());
        let (bids, asks) = orders.split_at(split);
        if asks.iter().any(|o| o.side != Side::Sell) {
            return Err(format!("book {symbol}: bids and asks interleaved"));
        }
        if bids.windows(2).any(|w| w[0].price < w[1].price)
            || asks.windows(2).any(|w| w[0].price > w[1].price)
        {
            return Err(format!("book {symbol}: levels out of price order"));
        }
        if let (Some(bid), Some(ask)) = (bids.first(), asks.first()) {
            if bid.price >= ask.price {
                return Err(format!("book {symbol} is crossed: bid {} >= ask {}", bid.price, ask.price));
            }
        }
        for o in orders {
            if o.symbol != *symbol || o.filled >= o.qty {
                return Err(format!("book {symbol}: malformed resting order {o:?}"));
            }
            if !view.locks.contains_key(&o.order_id) {
                return Err(format!("resting order {} holds no lock", o.order_id));
            }
        }
    }
    if resting != view.locks.len() {
        return Err(format!("{} open locks but {resting} resting orders", view.locks.len()));
    }
    Ok(())
}

/// Checks that event ids and trade ids are dense from 1 and `ubs_seq` never decreases.
pub fn check_event_log(events: &[MeEvent]) -> Result<(), String> {
    let mut next_trade = 1;
    let mut last_seq = 0;
    for (i, e) in events.iter().enumerate() {
        if e.event_id != i as u64 + 1 {
            return Err(format!("event #{i} has id {} (ids must be dense from 1)", e.event_id));
        }
        if e.ubs_seq < last_seq {
            return Err(format!("event {} has ubs_seq {} after {last_seq}", e.event_id, e.ubs_seq));
        }
        last_seq = e.ubs_seq;
        if let MeEventKind::Trade(t) = &e.kind {
            if t.trade_id != next_trade {
                return Err(format!(
                    "event {} carries trade {} (expected {next_trade})",
                    e.event_id, t.trade_id
                ));
            }
            next_trade += 1;
        }
    }
    Ok(())
}
