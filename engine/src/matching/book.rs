//! One order book: price levels holding FIFO queues of resting orders.
//!
//! Orders live in a slab (`Vec<Node>` plus a free list) and are linked into their
//! level's queue by slot index, so that a cancel removes an order from the middle of a
//! level in O(1) once its slot is known (the matching engine's order-id index).

use crate::types::{OrderId, Price, Qty, RestingOrder, Side, SymbolId, UserId};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

/// Index of a node in the slab.
pub type Slot = u32;
const NIL: Slot = Slot::MAX;

#[derive(Clone, Debug)]
struct Node {
    order_id: OrderId,
    user: UserId,
    price: Price,
    qty: Qty,
    filled: Qty,
    side: Side,
    prev: Slot,
    next: Slot,
}

#[derive(Clone, Copy, Debug)]
struct Level {
    head: Slot,
    tail: Slot,
}

/// One execution against a resting order, as reported to the matching engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    /// The resting (maker) order.
    pub maker_order_id: OrderId,
    /// Its owner.
    pub maker_user: UserId,
    /// The maker's price: the trade price.
    pub price: Price,
    /// Quantity executed.
    pub qty: Qty,
    /// Whether the maker is now fully filled (and has left the book).
    pub maker_done: bool,
}

/// The book of one symbol.
#[derive(Clone, Debug)]
pub struct OrderBook {
    symbol: SymbolId,
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    nodes: Vec<Node>,
    free: Vec<Slot>,
    len: usize,
    /// Cached best prices (the maps' last bid and first ask), kept in step with the maps.
    best_bid: Option<Price>,
    best_ask: Option<Price>,
}

impl OrderBook {
    /// An empty book.
    pub fn new(symbol: SymbolId) -> OrderBook {
        OrderBook {
            symbol,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            len: 0,
            best_bid: None,
            best_ask: None,
        }
    }

    /// Re-reads the cached best prices after a level was removed.
    fn refresh_best(&mut self) {
        self.best_bid = self.bids.last_key_value().map(|(p, _)| *p);
        self.best_ask = self.asks.first_key_value().map(|(p, _)| *p);
    }

    /// The symbol of this book.
    pub fn symbol(&self) -> SymbolId {
        self.symbol
    }

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no order rests.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Highest bid price.
    pub fn best_bid(&self) -> Option<Price> {
        debug_assert_eq!(self.best_bid, self.bids.last_key_value().map(|(p, _)| *p));
        self.best_bid
    }

    /// Lowest ask price.
    pub fn best_ask(&self) -> Option<Price> {
        debug_assert_eq!(self.best_ask, self.asks.first_key_value().map(|(p, _)| *p));
        self.best_ask
    }

    /// Number of price levels per side: (bids, asks).
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// Executes an incoming order against the opposite side while prices cross, best
    /// price first and FIFO within a level, calling `on_fill` for each execution.
    /// Returns the unfilled quantity.
    pub fn take(
        &mut self,
        taker_side: Side,
        limit: Price,
        mut qty: Qty,
        mut on_fill: impl FnMut(Fill),
    ) -> Qty {
        while qty > 0 {
            let mut level = match taker_side {
                Side::Buy => match self.asks.first_entry() {
                    Some(level) if *level.key() <= limit => level,
                    _ => break,
                },
                Side::Sell => match self.bids.last_entry() {
                    Some(level) if *level.key() >= limit => level,
                    _ => break,
                },
            };
            let price = *level.key();
            let levels = level.get_mut();
            while qty > 0 && levels.head != NIL {
                let slot = levels.head;
                let node = &mut self.nodes[slot as usize];
                let fill = qty.min(node.qty - node.filled);
                debug_assert!(fill > 0, "a resting order always has a remainder");
                node.filled += fill;
                qty -= fill;
                let maker_done = node.filled == node.qty;
                on_fill(Fill {
                    maker_order_id: node.order_id,
                    maker_user: node.user,
                    price,
                    qty: fill,
                    maker_done,
                });
                if maker_done {
                    levels.head = node.next;
                    if levels.head == NIL {
                        levels.tail = NIL;
                    } else {
                        self.nodes[levels.head as usize].prev = NIL;
                    }
                    self.free.push(slot);
                    self.len -= 1;
                }
            }
            if levels.head == NIL {
                level.remove();
                self.refresh_best();
            }
        }
        qty
    }

    /// Appends an order at the back of its price level; returns its slot.
    pub fn insert(&mut self, order: &RestingOrder) -> Slot {
        assert_eq!(order.symbol, self.symbol);
        assert!(order.filled < order.qty, "only orders with a remainder rest");
        // Resting must never cross the book: the taker has consumed every crossing maker.
        match order.side {
            Side::Buy => assert!(self.best_ask().is_none_or(|ask| order.price < ask)),
            Side::Sell => assert!(self.best_bid().is_none_or(|bid| order.price > bid)),
        }
        let node = Node {
            order_id: order.order_id,
            user: order.user,
            price: order.price,
            qty: order.qty,
            filled: order.filled,
            side: order.side,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                let slot = Slot::try_from(self.nodes.len()).expect("fewer than 2^32 resting orders");
                self.nodes.push(node);
                slot
            }
        };
        let levels = match order.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        match levels.entry(order.price) {
            Entry::Vacant(v) => {
                v.insert(Level { head: slot, tail: slot });
                match order.side {
                    Side::Buy => self.best_bid = self.best_bid.max(Some(order.price)),
                    Side::Sell => {
                        self.best_ask = Some(self.best_ask.map_or(order.price, |a| a.min(order.price)))
                    }
                }
            }
            Entry::Occupied(mut o) => {
                let level = o.get_mut();
                self.nodes[level.tail as usize].next = slot;
                self.nodes[slot as usize].prev = level.tail;
                level.tail = slot;
            }
        }
        self.len += 1;
        slot
    }

    /// The order in `slot` as a resting order.
    pub fn get(&self, slot: Slot) -> RestingOrder {
        let n = &self.nodes[slot as usize];
        RestingOrder {
            order_id: n.order_id,
            user: n.user,
            symbol: self.symbol,
            side: n.side,
            price: n.price,
            qty: n.qty,
            filled: n.filled,
        }
    }

    /// Unlinks the order in `slot` from its level and frees the slot.
    pub fn remove(&mut self, slot: Slot) -> RestingOrder {
        let removed = self.get(slot);
        let (prev, next) = {
            let n = &self.nodes[slot as usize];
            (n.prev, n.next)
        };
        let levels = match removed.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let Entry::Occupied(mut level) = levels.entry(removed.price) else {
            panic!("order {} rests at a price without a level", removed.order_id);
        };
        let l = level.get_mut();
        if prev == NIL {
            debug_assert_eq!(l.head, slot);
            l.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            debug_assert_eq!(l.tail, slot);
            l.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        if l.head == NIL {
            level.remove();
            self.refresh_best();
        }
        self.free.push(slot);
        self.len -= 1;
        removed
    }

    /// Resting orders in priority order: bids best first, then asks best first; FIFO
    /// within a level.
    pub fn orders(&self) -> Vec<RestingOrder> {
        let mut out = Vec::with_capacity(self.len);
        for level in self.bids.values().rev().chain(self.asks.values()) {
            let mut slot = level.head;
            while slot != NIL {
                out.push(self.get(slot));
                slot = self.nodes[slot as usize].next;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(order_id: OrderId, side: Side, price: Price, qty: Qty) -> RestingOrder {
        RestingOrder { order_id, user: order_id * 10, symbol: 0, side, price, qty, filled: 0 }
    }

    #[test]
    fn take_goes_best_price_then_fifo_and_stops_at_limit() {
        let mut book = OrderBook::new(0);
        book.insert(&order(1, Side::Sell, 101, 5));
        book.insert(&order(2, Side::Sell, 100, 5));
        book.insert(&order(3, Side::Sell, 100, 5));
        book.insert(&order(4, Side::Sell, 102, 5));
        let mut fills = Vec::new();
        let left =
            book.take(Side::Buy, 101, 13, |f| fills.push((f.maker_order_id, f.price, f.qty, f.maker_done)));
        assert_eq!(left, 0);
        assert_eq!(fills, vec![(2, 100, 5, true), (3, 100, 5, true), (1, 101, 3, false)]);
        let mut fills = Vec::new();
        let left = book.take(Side::Buy, 101, 10, |f| fills.push((f.maker_order_id, f.qty)));
        assert_eq!((left, fills), (8, vec![(1, 2)]));
        assert_eq!(book.best_ask(), Some(102));
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn remove_from_the_middle_keeps_fifo_order() {
        let mut book = OrderBook::new(0);
        let _a = book.insert(&order(1, Side::Buy, 50, 1));
        let b = book.insert(&order(2, Side::Buy, 50, 1));
        let _c = book.insert(&order(3, Side::Buy, 50, 1));
        assert_eq!(book.remove(b).order_id, 2);
        let ids: Vec<_> = book.orders().iter().map(|o| o.order_id).collect();
        assert_eq!(ids, vec![1, 3]);
        // The freed slot is reused and goes to the back of its level.
        book.insert(&order(4, Side::Buy, 50, 1));
        let ids: Vec<_> = book.orders().iter().map(|o| o.order_id).collect();
        assert_eq!(ids, vec![1, 3, 4]);
    }

    #[test]
    #[should_panic]
    fn resting_a_crossing_order_is_refused() {
        let mut book = OrderBook::new(0);
        book.insert(&order(1, Side::Sell, 100, 1));
        book.insert(&order(2, Side::Buy, 100, 1));
    }
}
