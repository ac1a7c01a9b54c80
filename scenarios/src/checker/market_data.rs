//! Market data judged against the model: every recovery and the final state at their
//! point of the model's event log, and every tick served. The expected ticks, books, L2
//! books and top-of-book deltas are derived here, from the model's own event log, by a
//! deliberately plain second implementation (levels summed from the resting orders at each
//! step, no incremental index): nothing of the engine's market data is reused.

use super::Violation;
use crate::model::Model;
use engine::market_data::{L2Book, Level, MdConfig, MdOrder, MdState, Tick, Top, TopDelta};
use engine::service::Recovered;
use engine::{CloseReason, EventId, MeEvent, MeEventKind, Side, SymbolId};
use sim::world::{Answered, RecoveryRecord, Served};
use std::collections::BTreeMap;

/// The model's market data after each event, built one event at a time.
struct Derivation {
    config: MdConfig,
    symbols: Vec<SymbolId>,
    state: MdState,
    /// Per symbol: the last top published and the best prices of the last L2.
    tops: BTreeMap<SymbolId, Top>,
    l2_best: BTreeMap<SymbolId, (Option<u64>, Option<u64>)>,
}

impl Derivation {
    fn new(model: &Model, config: MdConfig) -> Derivation {
        let symbols: Vec<SymbolId> = model.markets().symbols().map(|s| s.id).collect();
        let state = MdState {
            last_event_id: 0,
            last_trade_id: 0,
            orders: BTreeMap::new(),
            ticks: Vec::new(),
            l2: Vec::new(),
            deltas: Vec::new(),
        };
        let tops = symbols.iter().map(|s| (*s, Top::default())).collect();
        let l2_best = symbols.iter().map(|s| (*s, (None, None))).collect();
        Derivation { config, symbols, state, tops, l2_best }
    }

    /// Levels of one side of `symbol`, best first, summed from the resting orders.
    fn levels(&self, symbol: SymbolId, side: Side) -> Vec<Level> {
        let mut sums: BTreeMap<u64, u64> = BTreeMap::new();
        for o in self.state.orders.values().filter(|o| o.symbol == symbol && o.side == side) {
            *sums.entry(o.price).or_default() += o.remaining;
        }
        let levels = sums.into_iter().map(|(price, qty)| Level { price, qty });
        match side {
            Side::Buy => levels.rev().collect(),
            Side::Sell => levels.collect(),
        }
    }

    fn step(&mut self, event: &MeEvent) {
        let id = event.event_id;
        let touched = match event.kind {
            MeEventKind::Rested { order_id, symbol, side, price, qty, .. } => {
                self.state.orders.insert(order_id, MdOrder { symbol, side, price, remaining: qty });
                Some(symbol)
            }
            MeEventKind::Trade(t) => {
                let maker = if t.taker_side == Side::Buy { t.sell_order_id } else { t.buy_order_id };
                if let Some(o) = self.state.orders.get_mut(&maker) {
                    o.remaining = o.remaining.saturating_sub(t.qty);
                    if o.remaining == 0 {
                        self.state.orders.remove(&maker);
                    }
                }
                let (trade_id, symbol, price, qty, taker_side) =
                    (t.trade_id, t.symbol, t.price, t.qty, t.taker_side);
                self.state.ticks.push(Tick { trade_id, event_id: id, symbol, price, qty, taker_side });
                self.state.last_trade_id = t.trade_id;
                Some(t.symbol)
            }
            MeEventKind::OrderClosed { order_id, reason: CloseReason::Cancelled, .. } => {
                self.state.orders.remove(&order_id).map(|o| o.symbol)
            }
            MeEventKind::OrderClosed { .. }
            | MeEventKind::CancelRejected { .. }
            | MeEventKind::Rejected { .. } => None,
        };
        self.state.last_event_id = id;
        if let Some(symbol) = touched {
            let (bids, asks) = (self.levels(symbol, Side::Buy), self.levels(symbol, Side::Sell));
            let top = Top { bid: bids.first().copied(), ask: asks.first().copied() };
            if self.tops.insert(symbol, top) != Some(top) {
                self.state.deltas.push(TopDelta { event_id: id, symbol, top });
            }
        }
        let periodic = id % self.config.l2_every == 0;
        for symbol in self.symbols.clone() {
            if !periodic && touched != Some(symbol) {
                continue;
            }
            let (bids, asks) = (self.levels(symbol, Side::Buy), self.levels(symbol, Side::Sell));
            let best = (bids.first().map(|l| l.price), asks.first().map(|l| l.price));
            let last = self.l2_best[&symbol];
            let moved = touched == Some(symbol) && (self.moved(last.0, best.0) || self.moved(last.1, best.1));
            if periodic || moved {
                self.l2_best.insert(symbol, best);
                let depth = self.config.depth;
                let (bids, asks) =
                    (bids.into_iter().take(depth).collect(), asks.into_iter().take(depth).collect());
                self.state.l2.push(L2Book { event_id: id, symbol, bids, asks });
            }
        }
    }

    /// How a query's answer, as of the current event, differs from the model's.
    fn answer_differs(&self, q: &Served) -> Option<(String, String, String)> {
        let (field, want, got) = match q {
            Served::Top { symbol, top, .. } => {
                let want = format!("{:?}", self.tops.get(symbol));
                (format!("top of book of symbol {symbol} served"), want, format!("{top:?}"))
            }
            Served::Book { symbol, book, .. } => {
                let want = self.state.l2.iter().rev().find(|b| b.symbol == *symbol);
                (
                    format!("L2 book of symbol {symbol} served"),
                    format!("{want:?}"),
                    format!("{:?}", book.as_ref()),
                )
            }
            Served::AuditOrder { .. } | Served::AuditUser { .. } => return None,
        };
        (want != got).then_some((field, want, got))
    }

    /// A best price moved beyond the threshold, in basis points of the old price.
    fn moved(&self, old: Option<u64>, new: Option<u64>) -> bool {
        match (old, new) {
            (Some(o), Some(n)) => {
                let diff = o.abs_diff(n);
                diff as u128 * 10_000 > self.config.move_bps as u128 * o as u128
            }
            (None, None) => false,
            _ => true,
        }
    }
}

/// The model's market data after each of its events: `[e]` is the state as of event `e`
/// (`[0]`: before any). For judges that compare many recoveries (explore).
pub fn derive_all(model: &Model, config: MdConfig) -> Vec<MdState> {
    let mut d = Derivation::new(model, config);
    let mut out = vec![d.state.clone()];
    for event in model.events() {
        d.step(event);
        out.push(d.state.clone());
    }
    out
}

/// The first field in which `got` differs from the model's market data `want`.
pub(crate) fn difference(want: &MdState, got: &MdState) -> Option<(String, String, String)> {
    let scalar = [
        ("last event id", want.last_event_id, got.last_event_id),
        ("last trade id", want.last_trade_id, got.last_trade_id),
    ];
    if let Some((field, w, g)) = scalar.into_iter().find(|(_, w, g)| w != g) {
        return Some((field.into(), w.to_string(), g.to_string()));
    }
    fn first<T: PartialEq + std::fmt::Debug>(
        what: &str,
        w: &[T],
        g: &[T],
    ) -> Option<(String, String, String)> {
        let i = (0..w.len().max(g.len())).find(|i| w.get(*i) != g.get(*i))?;
        Some((format!("{what}[{i}]"), format!("{:?}", w.get(i)), format!("{:?}", g.get(i))))
    }
    first("ticks", &want.ticks, &got.ticks)
        .or_else(|| first("top-of-book deltas", &want.deltas, &got.deltas))
        .or_else(|| first("L2 books", &want.l2, &got.l2))
        .or_else(|| {
            let (w, g): (Vec<_>, Vec<_>) = (want.orders.iter().collect(), got.orders.iter().collect());
            first("resting orders", &w, &g)
        })
}

/// Every market-data recovery (the final one included) must hold exactly the model's
/// market data at the event it recovered to; the last recovery must hold every event
/// when the run converged; every tick served must be the model's tick of that trade,
/// served in trade order.
pub fn check(
    recoveries: &[RecoveryRecord],
    served: &[Tick],
    complete: bool,
    queries: &[Answered],
    config: MdConfig,
    model: &Model,
) -> Result<(), Violation> {
    let mut points: BTreeMap<EventId, Vec<(usize, &MdState)>> = BTreeMap::new();
    for (i, r) in recoveries.iter().enumerate() {
        if let Recovered::MarketData { state, .. } = &r.state {
            let pick = |a: &Served| match a {
                Served::Top { as_of, .. } | Served::Book { as_of, .. } => Some(*as_of),
                _ => None,
            };
            if let Some(served) =
                super::served_before(queries, r.at_ms, pick).filter(|e| *e > state.last_event_id)
            {
                let (field, expected) =
                    ("events".to_string(), format!("at least {served}, served before it"));
                let actual = state.last_event_id.to_string();
                let at = state.last_event_id;
                return Err(Violation::MarketDataDiverged { recovery: Some(i), at, field, expected, actual });
            }
            points.entry(state.last_event_id).or_default().push((i, state));
        }
    }
    let events = model.events();
    if let Some((&at, list)) = points.range(events.len() as u64 + 1..).next() {
        let field = "last event id".to_string();
        let (expected, actual) = (format!("at most {}", events.len()), at.to_string());
        return Err(Violation::MarketDataDiverged { recovery: Some(list[0].0), at, field, expected, actual });
    }
    let mut d = Derivation::new(model, config);
    let mut asked: BTreeMap<EventId, Vec<&Served>> = BTreeMap::new();
    for q in queries.iter().map(|a| &a.answer) {
        if let Served::Top { as_of, .. } | Served::Book { as_of, .. } = q {
            asked.entry(*as_of).or_default().push(q);
        }
    }
    if let Some((&at, list)) = asked.range(events.len() as u64 + 1..).next() {
        let (expected, actual) = (format!("at most event {}", events.len()), format!("{:?}", list[0]));
        let field = "query answered".into();
        return Err(Violation::MarketDataDiverged { recovery: None, at, field, expected, actual });
    }
    let judge = |d: &Derivation| -> Result<(), Violation> {
        let at = d.state.last_event_id;
        for (i, got) in points.get(&at).into_iter().flatten() {
            if let Some((field, expected, actual)) = difference(&d.state, got) {
                return Err(Violation::MarketDataDiverged {
                    recovery: Some(*i),
                    at,
                    field,
                    expected,
                    actual,
                });
            }
        }
        for q in asked.get(&at).into_iter().flatten() {
            if let Some((field, expected, actual)) = d.answer_differs(q) {
                return Err(Violation::MarketDataDiverged { recovery: None, at, field, expected, actual });
            }
        }
        Ok(())
    };
    judge(&d)?;
    for event in events {
        d.step(event);
        judge(&d)?;
    }
    check_served(served, &d.state.ticks, complete)
}

/// Ticks served must be the model's, every trade once, in trade order (the observer always
/// asks for the ticks after the last one it was served); `complete`: the observer read them
/// to the end after convergence, so they must be all of the model's.
fn check_served(served: &[Tick], ticks: &[Tick], complete: bool) -> Result<(), Violation> {
    let mut last = 0;
    for tick in served {
        let want = (tick.trade_id as usize).checked_sub(1).and_then(|i| ticks.get(i));
        let field = format!("tick of trade {} served", tick.trade_id);
        if tick.trade_id != last + 1 {
            let expected = format!("the tick of trade {}", last + 1);
            return Err(Violation::MarketDataDiverged {
                recovery: None,
                at: 0,
                field,
                expected,
                actual: format!("{tick:?}"),
            });
        }
        if want != Some(tick) {
            let (expected, actual) = (format!("{want:?}"), format!("{tick:?}"));
            return Err(Violation::MarketDataDiverged {
                recovery: None,
                at: tick.event_id,
                field,
                expected,
                actual,
            });
        }
        last = tick.trade_id;
    }
    if complete && last != ticks.len() as u64 {
        return Err(Violation::MarketDataDiverged {
            recovery: None,
            at: 0,
            field: "ticks served after convergence".into(),
            expected: format!("every tick, to trade {}", ticks.len()),
            actual: format!("to trade {last}"),
        });
    }
    Ok(())
}

/// The final market data holds every event of the model (the run converged).
pub fn check_complete(state: &MdState, model: &Model) -> Result<(), Violation> {
    let want = model.events().len() as u64;
    if state.last_event_id == want {
        return Ok(());
    }
    Err(Violation::MarketDataDiverged {
        recovery: None,
        at: state.last_event_id,
        field: "last event id at the end".into(),
        expected: want.to_string(),
        actual: state.last_event_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Trade;

    fn tick(trade_id: u64, price: u64) -> Tick {
        Tick { trade_id, event_id: trade_id * 2, symbol: 1, price, qty: 1, taker_side: Side::Buy }
    }

    #[test]
    fn served_ticks_must_be_the_models_in_order() {
        let model = [tick(1, 10), tick(2, 11), tick(3, 12)];
        assert_eq!(check_served(&[tick(1, 10), tick(2, 11), tick(3, 12)], &model, true), Ok(()));
        assert!(check_served(&[tick(1, 10), tick(3, 12)], &model, false).is_err(), "a tick skipped");
        assert!(check_served(&[tick(1, 10), tick(1, 10)], &model, false).is_err(), "a repeat");
        assert!(check_served(&[tick(1, 99)], &model, false).is_err(), "a changed price");
        let all = [tick(1, 10), tick(2, 11), tick(3, 12), tick(4, 13)];
        assert!(check_served(&all, &model, false).is_err(), "a trade the model never made");
        // A prefix is fine while the run goes on, not once the observer read to the end.
        assert_eq!(check_served(&[tick(1, 10)], &model, false), Ok(()));
        assert!(check_served(&[tick(1, 10)], &model, true).is_err(), "ticks missing after convergence");
        assert!(check_served(&[], &model, true).is_err(), "nothing served after convergence");
    }

    #[test]
    fn the_derivation_sums_levels_and_publishes_on_moves() {
        let markets = crate::workload::default_markets().with_order_events(true);
        let model = Model::new(markets);
        let symbol = model.markets().symbols().next().expect("a symbol").id;
        let config = MdConfig { depth: 10, l2_every: 1_000, move_bps: 1_000 };
        let mut d = Derivation::new(&model, config);
        let rest = |id, order_id, price, qty| MeEvent {
            event_id: id,
            ubs_seq: id,
            kind: MeEventKind::Rested { order_id, user: 1, symbol, side: Side::Sell, price, qty },
        };
        d.step(&rest(1, 1, 100, 2));
        d.step(&rest(2, 2, 100, 3));
        d.step(&rest(3, 3, 95, 1)); // 5 % better: no new L2 at a 10 % threshold
        let trade = Trade {
            trade_id: 1,
            symbol,
            price: 95,
            qty: 1,
            value: 1,
            buy_order_id: 9,
            sell_order_id: 3,
            buyer: 2,
            seller: 1,
            taker_side: Side::Buy,
        };
        d.step(&MeEvent { event_id: 4, ubs_seq: 4, kind: MeEventKind::Trade(trade) });
        assert_eq!(d.levels(symbol, Side::Sell), [Level { price: 100, qty: 5 }]);
        assert_eq!(d.state.l2.len(), 1, "only the side appearing published an L2");
        let asks: Vec<_> = d.state.deltas.iter().map(|x| x.top.ask.map(|l| (l.price, l.qty))).collect();
        assert_eq!(asks, [Some((100, 2)), Some((100, 5)), Some((95, 1)), Some((100, 5))]);
        assert_eq!(d.state.ticks.len(), 1);
    }
}
