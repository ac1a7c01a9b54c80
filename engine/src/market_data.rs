//! Market data: a pure state machine fed the matching engine's event log (with book
//! events on), deriving a tick per trade, level-2 snapshots and top-of-book deltas.
//!
//! The publication rules, after applying event `n` that touched symbol `s`:
//! * a [`Tick`] per `Trade`;
//! * a [`TopDelta`] for `s` when its best bid or ask level (price and quantity) differs
//!   from the last one published for `s`;
//! * an [`L2Book`] of every symbol when `n` is a multiple of `l2_every`, otherwise one of
//!   `s` when its best bid or ask price moved more than `move_bps` from the one in `s`'s
//!   last L2 (a side appearing or emptying counts as a move).

use crate::Applied;
use crate::event::{CloseReason, MeEvent, MeEventKind};
use crate::types::{EventId, Markets, OrderId, Price, Qty, Side, SymbolId, TradeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// When market data publishes level-2 books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdConfig {
    /// Levels per side in an L2 book.
    pub depth: usize,
    /// An L2 of every symbol at every event id that is a multiple of this.
    pub l2_every: u64,
    /// An L2 of a symbol when its best price moved more than this (basis points).
    pub move_bps: u64,
}

impl MdConfig {
    /// The seed design's: 10 levels, a move above 5 %; every 1,000 events stands in for
    /// "every second".
    pub fn standard() -> MdConfig {
        MdConfig { depth: 10, l2_every: 1_000, move_bps: 500 }
    }

    /// Refuses settings that would publish nothing or divide by zero.
    pub fn validate(&self) -> Result<(), String> {
        if self.depth == 0 || self.l2_every == 0 {
            return Err(format!("market data needs depth and l2_every above 0, got {self:?}"));
        }
        Ok(())
    }
}

/// One trade as published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// The trade.
    pub trade_id: TradeId,
    /// The event that carried it.
    pub event_id: EventId,
    /// Book.
    pub symbol: SymbolId,
    /// Execution price.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
    /// The taker's side.
    pub taker_side: Side,
}

/// One price level: the summed remaining quantity of the orders resting at a price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// Price.
    pub price: Price,
    /// Quantity.
    pub qty: Qty,
}

/// The best level of each side (`None`: the side is empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Top {
    /// Best bid.
    pub bid: Option<Level>,
    /// Best ask.
    pub ask: Option<Level>,
}

/// A change of one symbol's top of book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopDelta {
    /// After this event.
    pub event_id: EventId,
    /// Book.
    pub symbol: SymbolId,
    /// The new top.
    pub top: Top,
}

/// A level-2 book: up to `depth` levels per side, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L2Book {
    /// As of this event.
    pub event_id: EventId,
    /// Book.
    pub symbol: SymbolId,
    /// Bids, highest first.
    pub bids: Vec<Level>,
    /// Asks, lowest first.
    pub asks: Vec<Level>,
}

/// An event market data cannot apply: its input contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MdError {
    /// Events must come densely.
    Gap { expected: EventId, got: EventId },
    /// Trades must come densely.
    TradeGap { event_id: EventId, expected: TradeId, got: TradeId },
    /// An order rests twice, or in a book that does not exist.
    BadRest { event_id: EventId, order_id: OrderId },
    /// A trade's maker, or a cancelled order, is not resting (or not for that much).
    NotResting { event_id: EventId, order_id: OrderId },
}

impl fmt::Display for MdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdError::Gap { expected, got } => write!(f, "market data: expected event {expected}, got {got}"),
            MdError::TradeGap { event_id, expected, got } => {
                write!(f, "market data: event {event_id} carries trade {got}, expected {expected}")
            }
            MdError::BadRest { event_id, order_id } => {
                write!(f, "market data: event {event_id} rests order {order_id} twice or in no book")
            }
            MdError::NotResting { event_id, order_id } => {
                write!(f, "market data: event {event_id} takes from order {order_id}, which does not rest")
            }
        }
    }
}

impl std::error::Error for MdError {}

/// A resting order as market data sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdOrder {
    /// Book.
    pub symbol: SymbolId,
    /// Side.
    pub side: Side,
    /// Price.
    pub price: Price,
    /// Remaining quantity.
    pub remaining: Qty,
}

/// The whole state, serializable (the snapshot) and comparable (the checker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdState {
    /// The last applied event.
    pub last_event_id: EventId,
    /// The last trade seen.
    pub last_trade_id: TradeId,
    /// Resting orders by id.
    pub orders: BTreeMap<OrderId, MdOrder>,
    /// Every tick, by trade id.
    pub ticks: Vec<Tick>,
    /// Every L2 book published, in order.
    pub l2: Vec<L2Book>,
    /// Every top-of-book delta published, in order.
    pub deltas: Vec<TopDelta>,
}

/// One symbol's aggregated book.
#[derive(Clone, Debug, Default)]
struct Levels {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
    top: Top,
    /// Best prices in this symbol's last L2 (bid, ask).
    l2_best: (Option<Price>, Option<Price>),
}

impl Levels {
    fn side(&mut self, side: Side) -> &mut BTreeMap<Price, Qty> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn top(&self) -> Top {
        let level = |(p, q): (&Price, &Qty)| Level { price: *p, qty: *q };
        Top { bid: self.bids.iter().next_back().map(level), ask: self.asks.iter().next().map(level) }
    }

    fn l2(&self, event_id: EventId, symbol: SymbolId, depth: usize) -> L2Book {
        let level = |(p, q): (&Price, &Qty)| Level { price: *p, qty: *q };
        L2Book {
            event_id,
            symbol,
            bids: self.bids.iter().rev().take(depth).map(level).collect(),
            asks: self.asks.iter().take(depth).map(level).collect(),
        }
    }
}

/// Whether a best price moved beyond `bps` basis points (a side appearing or emptying is a move).
fn moved(old: Option<Price>, new: Option<Price>, bps: u64) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => u128::from(o.abs_diff(n)) * 10_000 > u128::from(bps) * u128::from(o),
        (old, new) => old.is_some() != new.is_some(),
    }
}

/// The market-data state machine.
#[derive(Clone, Debug)]
pub struct MarketData {
    config: MdConfig,
    levels: BTreeMap<SymbolId, Levels>,
    state: MdState,
}

impl MarketData {
    /// Empty books for every configured symbol.
    pub fn new(markets: &Markets, config: MdConfig) -> MarketData {
        let levels = markets.symbols().map(|s| (s.id, Levels::default())).collect();
        let state = MdState {
            last_event_id: 0,
            last_trade_id: 0,
            orders: BTreeMap::new(),
            ticks: Vec::new(),
            l2: Vec::new(),
            deltas: Vec::new(),
        };
        MarketData { config, levels, state }
    }

    /// Rebuilds market data from a snapshot's state: the books from the resting orders,
    /// the last published tops and L2 prices from the published history.
    pub fn from_state(markets: &Markets, config: MdConfig, state: MdState) -> Result<MarketData, MdError> {
        let mut md = MarketData::new(markets, config);
        for (order_id, o) in &state.orders {
            let bad = MdError::BadRest { event_id: state.last_event_id, order_id: *order_id };
            let levels = md.levels.get_mut(&o.symbol).ok_or(bad.clone())?;
            if o.remaining == 0 {
                return Err(bad);
            }
            *levels.side(o.side).entry(o.price).or_default() += o.remaining;
        }
        for d in &state.deltas {
            if let Some(levels) = md.levels.get_mut(&d.symbol) {
                levels.top = d.top;
            }
        }
        for b in &state.l2 {
            if let Some(levels) = md.levels.get_mut(&b.symbol) {
                levels.l2_best = (b.bids.first().map(|l| l.price), b.asks.first().map(|l| l.price));
            }
        }
        md.state = state;
        Ok(md)
    }

    /// Applies one event. One at or below the watermark is a duplicate and changes nothing.
    pub fn apply(&mut self, event: &MeEvent) -> Result<Applied, MdError> {
        let id = event.event_id;
        if id <= self.state.last_event_id {
            return Ok(Applied::Duplicate);
        }
        if id != self.state.last_event_id + 1 {
            return Err(MdError::Gap { expected: self.state.last_event_id + 1, got: id });
        }
        let touched = match event.kind {
            MeEventKind::Rested { order_id, symbol, side, price, qty, .. } => {
                self.rest(id, order_id, MdOrder { symbol, side, price, remaining: qty })?;
                Some(symbol)
            }
            MeEventKind::Trade(t) => {
                let expected = self.state.last_trade_id + 1;
                if t.trade_id != expected {
                    return Err(MdError::TradeGap { event_id: id, expected, got: t.trade_id });
                }
                let maker = if t.taker_side == Side::Buy { t.sell_order_id } else { t.buy_order_id };
                if self.take(id, maker, Some(t.qty))? != t.symbol {
                    return Err(MdError::NotResting { event_id: id, order_id: maker });
                }
                let (symbol, price, qty, taker_side) = (t.symbol, t.price, t.qty, t.taker_side);
                self.state.ticks.push(Tick {
                    trade_id: t.trade_id,
                    event_id: id,
                    symbol,
                    price,
                    qty,
                    taker_side,
                });
                self.state.last_trade_id = t.trade_id;
                Some(symbol)
            }
            MeEventKind::OrderClosed { order_id, reason: CloseReason::Cancelled, .. } => {
                Some(self.take(id, order_id, None)?)
            }
            MeEventKind::OrderClosed { order_id, .. } if self.state.orders.contains_key(&order_id) => {
                // Filled makers leave with their last trade; takers never rested.
                return Err(MdError::NotResting { event_id: id, order_id });
            }
            MeEventKind::OrderClosed { .. }
            | MeEventKind::CancelRejected { .. }
            | MeEventKind::Rejected { .. } => None,
        };
        self.state.last_event_id = id;
        self.publish(id, touched);
        Ok(Applied::Applied)
    }

    fn rest(&mut self, event_id: EventId, order_id: OrderId, order: MdOrder) -> Result<(), MdError> {
        let bad = MdError::BadRest { event_id, order_id };
        let levels = self.levels.get_mut(&order.symbol).ok_or(bad.clone())?;
        if order.remaining == 0 || self.state.orders.contains_key(&order_id) {
            return Err(bad);
        }
        *levels.side(order.side).entry(order.price).or_default() += order.remaining;
        self.state.orders.insert(order_id, order);
        Ok(())
    }

    /// Takes `qty` (all that remains: `None`) from a resting order; returns its symbol.
    fn take(&mut self, event_id: EventId, order_id: OrderId, qty: Option<Qty>) -> Result<SymbolId, MdError> {
        let not_resting = MdError::NotResting { event_id, order_id };
        let order = self.state.orders.get_mut(&order_id).ok_or(not_resting.clone())?;
        let qty = qty.unwrap_or(order.remaining);
        if qty > order.remaining {
            return Err(not_resting);
        }
        order.remaining -= qty;
        let o = *order;
        if o.remaining == 0 {
            self.state.orders.remove(&order_id);
        }
        let side = self.levels.get_mut(&o.symbol).ok_or(not_resting.clone())?.side(o.side);
        let level = side.get_mut(&o.price).ok_or(not_resting)?;
        assert!(*level >= qty, "a level holds at least each of its orders");
        *level -= qty;
        if *level == 0 {
            side.remove(&o.price);
        }
        Ok(o.symbol)
    }

    /// Publishes the top-of-book delta and L2 books that event `id` calls for.
    fn publish(&mut self, id: EventId, touched: Option<SymbolId>) {
        let (depth, every, bps) = (self.config.depth, self.config.l2_every, self.config.move_bps);
        if let Some(symbol) = touched {
            let levels = self.levels.get_mut(&symbol).expect("touched symbols have a book");
            let top = levels.top();
            if top != levels.top {
                levels.top = top;
                self.state.deltas.push(TopDelta { event_id: id, symbol, top });
            }
        }
        for (symbol, levels) in &mut self.levels {
            let best = (levels.top.bid.map(|l| l.price), levels.top.ask.map(|l| l.price));
            let due = id % every == 0
                || (touched == Some(*symbol)
                    && (moved(levels.l2_best.0, best.0, bps) || moved(levels.l2_best.1, best.1, bps)));
            if due {
                levels.l2_best = best;
                self.state.l2.push(levels.l2(id, *symbol, depth));
            }
        }
    }

    /// The last applied event id.
    pub fn last_event_id(&self) -> EventId {
        self.state.last_event_id
    }

    /// Up to `max` ticks after trade `after`.
    pub fn ticks_after(&self, after: TradeId, max: usize) -> &[Tick] {
        let from = self.state.ticks.partition_point(|t| t.trade_id <= after);
        let to = from.saturating_add(max).min(self.state.ticks.len());
        &self.state.ticks[from..to]
    }

    /// The L2 book of `symbol` as last published at or before event `as_of`.
    pub fn l2_as_of(&self, symbol: SymbolId, as_of: EventId) -> Option<&L2Book> {
        let end = self.state.l2.partition_point(|b| b.event_id <= as_of);
        self.state.l2[..end].iter().rev().find(|b| b.symbol == symbol)
    }

    /// The current top of `symbol`'s book.
    pub fn top(&self, symbol: SymbolId) -> Option<Top> {
        self.levels.get(&symbol).map(|l| l.top)
    }

    /// The whole state.
    pub fn state(&self) -> &MdState {
        &self.state
    }

    /// Drops the tick of trade `trade_id` (the planted bug "a tick lost on recovery").
    pub fn lose_tick(&mut self, trade_id: TradeId) {
        self.state.ticks.retain(|t| t.trade_id != trade_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Trade;
    use crate::types::Asset;

    fn markets() -> Markets {
        let asset = |id, code: &str| Asset { id, code: code.into(), decimals: 2 };
        Markets::new(vec![asset(1, "BTC"), asset(2, "USD")], vec![(1, "BTC/USD".into(), 1, 2)])
            .expect("valid markets")
            .with_order_events(true)
    }

    fn ev(event_id: EventId, kind: MeEventKind) -> MeEvent {
        MeEvent { event_id, ubs_seq: event_id, kind }
    }

    fn rest(order_id: OrderId, side: Side, price: Price, qty: Qty) -> MeEventKind {
        MeEventKind::Rested { order_id, user: 1, symbol: 1, side, price, qty }
    }

    #[test]
    fn books_ticks_tops_and_l2_follow_the_events() {
        let config = MdConfig { depth: 2, l2_every: 100, move_bps: 500 };
        let mut md = MarketData::new(&markets(), config);
        let events = [
            rest(1, Side::Sell, 1000, 5),
            rest(2, Side::Sell, 1000, 3),
            rest(3, Side::Sell, 1020, 4),
            rest(4, Side::Buy, 900, 2),
            MeEventKind::Trade(Trade {
                trade_id: 1,
                symbol: 1,
                price: 1000,
                qty: 5,
                value: 50,
                buy_order_id: 9,
                sell_order_id: 1,
                buyer: 2,
                seller: 1,
                taker_side: Side::Buy,
            }),
            MeEventKind::OrderClosed { order_id: 1, user: 1, reason: CloseReason::Filled },
            MeEventKind::OrderClosed { order_id: 2, user: 1, reason: CloseReason::Cancelled },
        ];
        for (i, kind) in events.into_iter().enumerate() {
            assert_eq!(md.apply(&ev(i as u64 + 1, kind)), Ok(Applied::Applied));
        }
        let top = md.top(1).expect("symbol 1 has a book");
        assert_eq!(top.ask, Some(Level { price: 1020, qty: 4 }));
        assert_eq!(top.bid, Some(Level { price: 900, qty: 2 }));
        assert_eq!(md.ticks_after(0, 10).len(), 1);
        assert_eq!(md.ticks_after(0, 10)[0].price, 1000);
        // Tops: 1000x5, 1000x8, (1020 rests behind: no change), bid appears, 1000x3, 1020x4.
        let asks: Vec<_> = md.state().deltas.iter().map(|d| d.top.ask.map(|l| (l.price, l.qty))).collect();
        assert_eq!(
            asks,
            [Some((1000, 5)), Some((1000, 8)), Some((1000, 8)), Some((1000, 3)), Some((1020, 4))]
        );
        // L2: the first rest (a side appears), the bid appearing, the ask moving 2 % (no),
        // so two books; the second one is as of event 4.
        assert_eq!(md.state().l2.len(), 2);
        let l2 = md.l2_as_of(1, 6).expect("an L2 at or before event 6");
        assert_eq!(l2.event_id, 4);
        assert_eq!(l2.asks, [Level { price: 1000, qty: 8 }, Level { price: 1020, qty: 4 }]);
        // A repeat is a duplicate; a gap and a trade from nothing are refused.
        assert_eq!(md.apply(&ev(7, rest(5, Side::Buy, 1, 1))), Ok(Applied::Duplicate));
        assert!(matches!(md.apply(&ev(9, rest(5, Side::Buy, 1, 1))), Err(MdError::Gap { .. })));
        let cancel = MeEventKind::OrderClosed { order_id: 1, user: 1, reason: CloseReason::Cancelled };
        assert!(matches!(md.apply(&ev(8, cancel)), Err(MdError::NotResting { .. })));
    }

    #[test]
    fn a_state_rebuilt_from_its_snapshot_continues_alike() {
        let config = MdConfig { depth: 10, l2_every: 3, move_bps: 100 };
        let mut md = MarketData::new(&markets(), config);
        for (i, price) in [1000, 1100, 1300, 1200].into_iter().enumerate() {
            md.apply(&ev(i as u64 + 1, rest(i as u64 + 1, Side::Buy, price, 1))).expect("rests");
        }
        let mut copy = MarketData::from_state(&markets(), config, md.state().clone()).expect("valid state");
        for (i, price) in [1500, 900].into_iter().enumerate() {
            let e = ev(i as u64 + 5, rest(i as u64 + 5, Side::Sell, price, 1));
            assert_eq!(md.apply(&e), copy.apply(&e));
        }
        assert_eq!(md.state(), copy.state());
        assert_eq!(md.top(1), copy.top(1));
    }
}
