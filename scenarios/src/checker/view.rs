//! A comparable picture of an exchange's state, built from the engine or from the model.

use crate::model::Model;
use engine::{
    Amount, AssetId, Balance, MatchingEngine, OrderId, Pipeline, RestingOrder, SymbolId, UbsCore, UserId,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// The state of all three services at quiescence, in sorted, comparable form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExchangeView {
    /// Non-zero balances.
    pub balances: BTreeMap<(UserId, AssetId), Balance>,
    /// Σ deposits − Σ withdrawals per asset.
    pub supply: BTreeMap<AssetId, Amount>,
    /// Resting orders per symbol, priority order (bids best first, then asks).
    pub books: BTreeMap<SymbolId, Vec<RestingOrder>>,
    /// Funds each open order still holds: order → (user, asset, amount).
    pub locks: BTreeMap<OrderId, (UserId, AssetId, Amount)>,
    /// Next UBSCore sequence number.
    pub next_ubs_seq: u64,
    /// Number of ME events (and the last applied by UBSCore).
    pub events: u64,
    /// Number of trades (and the settlement watermark).
    pub trades: u64,
}

impl ExchangeView {
    /// The engine's state. Panics-free: reads only.
    pub fn of_engine(p: &Pipeline) -> ExchangeView {
        ExchangeView::of_parts(p.ubscore(), p.matching(), p.settlement().last_trade_id())
    }

    /// The state of separately held services (e.g. recovered durable ones), with the
    /// settlement watermark `trades`.
    pub fn of_parts(ubs: &UbsCore, me: &MatchingEngine, trades: u64) -> ExchangeView {
        ExchangeView {
            balances: ubs.balances(),
            supply: ubs.supply().iter().filter(|(_, s)| **s != 0).map(|(a, s)| (*a, *s)).collect(),
            books: me.all_orders(),
            locks: ubs
                .open_locks()
                .into_iter()
                .map(|(id, l)| (id, (l.user, l.asset, l.remaining_lock)))
                .collect(),
            next_ubs_seq: ubs.next_seq(),
            events: ubs.last_event_id(),
            trades,
        }
    }

    /// The model's state.
    pub fn of_model(m: &Model) -> ExchangeView {
        ExchangeView {
            balances: m.balances(),
            supply: m.net_deposits().into_iter().filter(|(_, s)| *s != 0).collect(),
            books: m.books(),
            locks: m.locks(),
            next_ubs_seq: m.history().len() as u64 + 1,
            events: m.applied_event_id(),
            trades: m.ledger().len() as u64,
        }
    }
}
