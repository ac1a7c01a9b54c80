//! The matching engine: one book per symbol, price-time priority, the maker's price,
//! and an event log with dense `event_id` and `trade_id`.
//!
//! Event order for one incoming order (the reference model follows the same rule):
//! for each execution, `Trade`, then `OrderClosed(Filled)` of the maker if it is done;
//! afterwards `OrderClosed(Filled)` of the taker if it is done, else
//! `OrderClosed(Expired)` for an IOC or market order, else (GTC) it rests: silently, or
//! with a `Rested` event when the markets publish order events.
//! A cancel yields `OrderClosed(Cancelled)` or `CancelRejected`. A place UBSCore refused
//! yields `Rejected` when the markets publish order events, nothing otherwise.

mod book;

pub use book::{Fill, OrderBook, Slot};

use crate::Applied;
use crate::command::{MeInput, Order};
use crate::event::{CancelRejectReason, CloseReason, MeEvent, MeEventKind, Trade};
use crate::math;
use crate::types::{EventId, Markets, OrderId, RestingOrder, Side, SymbolId, TradeId, UbsSeq, UserId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An input the matching engine refuses; each names the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeError {
    /// The order names a symbol without a book.
    UnknownSymbol { ubs_seq: UbsSeq, symbol: SymbolId },
    /// The order id already rests (UBSCore admits each order id once).
    DuplicateOrder { ubs_seq: UbsSeq, order_id: OrderId },
}

impl fmt::Display for MeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeError::UnknownSymbol { ubs_seq, symbol } => {
                write!(f, "ubs_seq {ubs_seq}: unknown symbol {symbol}")
            }
            MeError::DuplicateOrder { ubs_seq, order_id } => {
                write!(f, "ubs_seq {ubs_seq}: order {order_id} already rests")
            }
        }
    }
}

impl std::error::Error for MeError {}

/// The matching engine's state in serializable form (for snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeState {
    /// The last processed UBSCore sequence number.
    pub last_ubs_seq: UbsSeq,
    /// The next trade id.
    pub next_trade_id: TradeId,
    /// The next event id.
    pub next_event_id: EventId,
    /// Resting orders per symbol, in priority order.
    pub books: BTreeMap<SymbolId, Vec<RestingOrder>>,
}

/// Where a resting order is.
#[derive(Clone, Copy, Debug)]
struct Locator {
    symbol: SymbolId,
    slot: Slot,
}

/// The matching engine state machine.
#[derive(Clone, Debug)]
pub struct MatchingEngine {
    markets: Markets,
    books: BTreeMap<SymbolId, OrderBook>,
    index: FxHashMap<OrderId, Locator>,
    next_trade_id: TradeId,
    next_event_id: EventId,
    last_ubs_seq: UbsSeq,
}

impl MatchingEngine {
    /// An engine with one empty book per configured symbol.
    pub fn new(markets: Markets) -> MatchingEngine {
        let books = markets.symbols().map(|s| (s.id, OrderBook::new(s.id))).collect();
        MatchingEngine {
            markets,
            books,
            index: FxHashMap::default(),
            next_trade_id: 1,
            next_event_id: 1,
            last_ubs_seq: 0,
        }
    }

    /// The whole state: counters and every book in priority order.
    pub fn export_state(&self) -> MeState {
        MeState {
            last_ubs_seq: self.last_ubs_seq,
            next_trade_id: self.next_trade_id,
            next_event_id: self.next_event_id,
            books: self.all_orders(),
        }
    }

    /// The order-id index (which book each resting order is in), sorted by order id: what
    /// cancels and fills are looked up by. Must list exactly the resting orders.
    pub fn index_entries(&self) -> Vec<(OrderId, SymbolId)> {
        let mut entries: Vec<(OrderId, SymbolId)> =
            self.index.iter().map(|(id, l)| (*id, l.symbol)).collect();
        entries.sort_unstable();
        entries
    }

    /// Rebuilds the engine from an exported state: books in priority order, and the
    /// order-id index derived from them.
    pub fn from_state(markets: Markets, state: MeState) -> Result<MatchingEngine, String> {
        let mut me = MatchingEngine::new(markets);
        for (symbol, orders) in state.books {
            let Some(book) = me.books.get_mut(&symbol) else {
                return Err(format!("snapshot has a book for unknown symbol {symbol}"));
            };
            for order in orders {
                if order.symbol != symbol
                    || order.filled >= order.qty
                    || me.index.contains_key(&order.order_id)
                {
                    return Err(format!("bad resting order {order:?}"));
                }
                let crosses = match order.side {
                    Side::Buy => book.best_ask().is_some_and(|a| order.price >= a),
                    Side::Sell => book.best_bid().is_some_and(|b| order.price <= b),
                };
                if crosses {
                    return Err(format!("resting order {} crosses the book", order.order_id));
                }
                let slot = book.insert(&order);
                if !crate::bugs::planted(crate::bugs::Bug::IndexNotRebuilt) {
                    me.index.insert(order.order_id, Locator { symbol, slot });
                }
            }
        }
        me.last_ubs_seq = state.last_ubs_seq;
        me.next_trade_id = state.next_trade_id.max(1);
        me.next_event_id = state.next_event_id.max(1);
        Ok(me)
    }

    /// Processes one accepted place or cancel, appending its events to `out`. Inputs
    /// must come in increasing `ubs_seq` order; one at or below the watermark is a
    /// duplicate delivery and changes nothing.
    pub fn process(
        &mut self,
        ubs_seq: UbsSeq,
        input: &MeInput,
        out: &mut Vec<MeEvent>,
    ) -> Result<Applied, MeError> {
        if ubs_seq <= self.last_ubs_seq {
            return Ok(Applied::Duplicate);
        }
        match *input {
            MeInput::Place(order) => self.place(ubs_seq, &order, out)?,
            MeInput::Cancel { order_id, user } => self.cancel(ubs_seq, order_id, user, out),
            MeInput::Reject { order_id, user, reason } => {
                if self.markets.order_events() {
                    push(
                        out,
                        &mut self.next_event_id,
                        ubs_seq,
                        MeEventKind::Rejected { order_id, user, reason },
                    );
                }
            }
        }
        self.last_ubs_seq = ubs_seq;
        Ok(Applied::Applied)
    }

    /// Consumes a UBSCore sequence number that carries no order (a deposit, a withdrawal,
    /// a rejected place): only the watermark moves.
    pub fn skip(&mut self, ubs_seq: UbsSeq) -> Applied {
        if ubs_seq <= self.last_ubs_seq {
            return Applied::Duplicate;
        }
        self.last_ubs_seq = ubs_seq;
        Applied::Applied
    }

    fn place(&mut self, ubs_seq: UbsSeq, order: &Order, out: &mut Vec<MeEvent>) -> Result<(), MeError> {
        let qty_unit = match self.markets.symbol(order.symbol) {
            Some(symbol) => symbol.qty_unit,
            None => return Err(MeError::UnknownSymbol { ubs_seq, symbol: order.symbol }),
        };
        if self.index.contains_key(&order.order_id) {
            return Err(MeError::DuplicateOrder { ubs_seq, order_id: order.order_id });
        }
        let order_events = self.markets.order_events();
        let Self { books, index, next_trade_id, next_event_id, .. } = self;
        let book = books.get_mut(&order.symbol).expect("a book exists for every symbol");
        let remaining = book.take(order.side, order.price, order.qty, |fill| {
            // The value is at most the buy order's lock (its price is >= the trade price
            // and its quantity >= the fill), and UBSCore accepted that lock as a u64.
            let value = math::quote_value(fill.price, fill.qty, qty_unit)
                .expect("a trade value is bounded by the buyer's accepted lock");
            let (buy_order_id, buyer, sell_order_id, seller) = match order.side {
                Side::Buy => (order.order_id, order.user, fill.maker_order_id, fill.maker_user),
                Side::Sell => (fill.maker_order_id, fill.maker_user, order.order_id, order.user),
            };
            let trade = Trade {
                trade_id: *next_trade_id,
                symbol: order.symbol,
                price: fill.price,
                qty: fill.qty,
                value,
                buy_order_id,
                sell_order_id,
                buyer,
                seller,
                taker_side: order.side,
            };
            *next_trade_id += 1;
            push(out, next_event_id, ubs_seq, MeEventKind::Trade(trade));
            if fill.maker_done {
                let removed = index.remove(&fill.maker_order_id);
                debug_assert!(removed.is_some());
                let kind = MeEventKind::OrderClosed {
                    order_id: fill.maker_order_id,
                    user: fill.maker_user,
                    reason: CloseReason::Filled,
                };
                push(out, next_event_id, ubs_seq, kind);
            }
        });
        let close = |reason| MeEventKind::OrderClosed { order_id: order.order_id, user: order.user, reason };
        if remaining == 0 {
            push(out, next_event_id, ubs_seq, close(CloseReason::Filled));
        } else if !order.kind.rests() {
            push(out, next_event_id, ubs_seq, close(CloseReason::Expired));
        } else {
            let resting = RestingOrder {
                order_id: order.order_id,
                user: order.user,
                symbol: order.symbol,
                side: order.side,
                price: order.price,
                qty: order.qty,
                filled: order.qty - remaining,
            };
            let slot = book.insert(&resting);
            index.insert(order.order_id, Locator { symbol: order.symbol, slot });
            if order_events {
                let kind = MeEventKind::Rested {
                    order_id: order.order_id,
                    user: order.user,
                    symbol: order.symbol,
                    side: order.side,
                    price: order.price,
                    qty: remaining,
                };
                push(out, next_event_id, ubs_seq, kind);
            }
        }
        Ok(())
    }

    fn cancel(&mut self, ubs_seq: UbsSeq, order_id: OrderId, user: UserId, out: &mut Vec<MeEvent>) {
        let kind = match self.index.get(&order_id).copied() {
            None => MeEventKind::CancelRejected { order_id, user, reason: CancelRejectReason::NotResting },
            Some(at) => {
                let book = self.books.get_mut(&at.symbol).expect("indexed orders have a book");
                if book.get(at.slot).user != user {
                    MeEventKind::CancelRejected { order_id, user, reason: CancelRejectReason::NotOwner }
                } else {
                    let removed = book.remove(at.slot);
                    debug_assert_eq!(removed.order_id, order_id);
                    self.index.remove(&order_id);
                    MeEventKind::OrderClosed { order_id, user, reason: CloseReason::Cancelled }
                }
            }
        };
        push(out, &mut self.next_event_id, ubs_seq, kind);
    }

    /// The markets it matches.
    pub fn markets(&self) -> &Markets {
        &self.markets
    }

    /// The last processed UBSCore sequence number (0 if none).
    pub fn last_ubs_seq(&self) -> UbsSeq {
        self.last_ubs_seq
    }

    /// The id the next trade will get.
    pub fn next_trade_id(&self) -> TradeId {
        self.next_trade_id
    }

    /// The id the next event will get.
    pub fn next_event_id(&self) -> EventId {
        self.next_event_id
    }

    /// The book of one symbol.
    pub fn book(&self, symbol: SymbolId) -> Option<&OrderBook> {
        self.books.get(&symbol)
    }

    /// All books, by symbol.
    pub fn books(&self) -> impl Iterator<Item = &OrderBook> {
        self.books.values()
    }

    /// A resting order by id.
    pub fn resting(&self, order_id: OrderId) -> Option<RestingOrder> {
        let at = self.index.get(&order_id)?;
        Some(self.books[&at.symbol].get(at.slot))
    }

    /// Number of resting orders over all books.
    pub fn resting_count(&self) -> usize {
        debug_assert_eq!(self.index.len(), self.books.values().map(OrderBook::len).sum::<usize>());
        self.index.len()
    }

    /// Resting orders of all books, per symbol in priority order (see [`OrderBook::orders`]).
    pub fn all_orders(&self) -> BTreeMap<SymbolId, Vec<RestingOrder>> {
        self.books.iter().map(|(id, book)| (*id, book.orders())).collect()
    }
}

fn push(out: &mut Vec<MeEvent>, next_event_id: &mut EventId, ubs_seq: UbsSeq, kind: MeEventKind) {
    out.push(MeEvent { event_id: *next_event_id, ubs_seq, kind });
    *next_event_id += 1;
}
