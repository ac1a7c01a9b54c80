//! The reference model: a deliberately naive implementation of SEMANTICS.md, written
//! separately from the engine and sharing only the domain types with it. It is the judge
//! of every differential test and (later) every simulation run.
//!
//! Where the engine is fast (slabs, intrusive queues, hash maps, event-driven
//! settlement), the model is plain: one ordered map of resting orders keyed by priority,
//! and each trade settled on the spot while matching.

use engine::{
    Ack, Amount, AssetId, Balance, CancelRejectReason, CloseReason, Command, CommandKey, EventId, Markets,
    MeEvent, MeEventKind, Order, OrderId, OrderKind, Outcome, Price, RejectReason, RestingOrder, Side,
    SymbolId, Trade, TradeId, UbsRecord, UbsSeq, UserId,
};
use std::collections::BTreeMap;

/// A resting order in the model, with the funds it still holds.
#[derive(Clone, Debug)]
struct ModelOrder {
    order: Order,
    filled: u64,
    lock_asset: AssetId,
    lock_left: Amount,
}

/// Priority key: (symbol, side, price rank, arrival). For bids the rank is inverted so
/// that ascending key order is best-first on both sides.
type PriorityKey = (SymbolId, Side, u64, u64);

fn priority_key(order: &Order, arrival: u64) -> PriorityKey {
    let rank = match order.side {
        Side::Buy => u64::MAX - order.price,
        Side::Sell => order.price,
    };
    (order.symbol, order.side, rank, arrival)
}

fn crosses(taker: &Order, maker_price: Price) -> bool {
    match taker.side {
        Side::Buy => maker_price <= taker.price,
        Side::Sell => maker_price >= taker.price,
    }
}

/// A symbol as the model reads it: its assets and the base asset's minor units per whole
/// unit, worked out here from the asset's decimals (not taken from the engine's `Symbol`).
#[derive(Clone, Copy, Debug)]
struct ModelSymbol {
    base: AssetId,
    quote: AssetId,
    qty_unit: u64,
}

/// The reference exchange.
#[derive(Clone, Debug)]
pub struct Model {
    markets: Markets,
    /// The assets and symbols, read once from the market definition's lists: the model
    /// looks ids up in its own tables, so that a wrong lookup in the engine's `Markets`
    /// (shared by both) cannot make the two agree on rejecting everything.
    assets: BTreeMap<AssetId, u8>,
    symbols: BTreeMap<SymbolId, ModelSymbol>,
    balances: BTreeMap<(UserId, AssetId), Balance>,
    /// Σ deposits − Σ withdrawals per asset, in u128 so the check itself cannot overflow.
    net_deposits: BTreeMap<AssetId, u128>,
    seen: BTreeMap<CommandKey, (Command, Outcome)>,
    book: BTreeMap<PriorityKey, ModelOrder>,
    where_is: BTreeMap<OrderId, PriorityKey>,
    arrivals: u64,
    history: Vec<UbsRecord>,
    events: Vec<MeEvent>,
    ledger: Vec<Trade>,
    /// Whether the balance effects of matching wait for [`Model::apply_event`].
    deferred: bool,
    /// Balance changes of the event being built.
    staged: Vec<Delta>,
    /// Balance changes of events not yet applied (deferred mode).
    pending: BTreeMap<EventId, Vec<Delta>>,
    /// What UBSCore holds frozen per open order: locked when the order is accepted,
    /// spent by trades and released by the close, as UBSCore applies the events.
    ubs_locks: BTreeMap<OrderId, (UserId, AssetId, Amount)>,
    /// Lock changes of the event being built.
    staged_locks: Vec<LockChange>,
    /// Lock changes of events not yet applied (deferred mode).
    pending_locks: BTreeMap<EventId, Vec<LockChange>>,
    /// The last event whose balance changes were applied.
    applied: EventId,
}

/// One balance change of an event: (user, asset, Δavail, Δfrozen).
type Delta = (UserId, AssetId, i128, i128);

/// One change of an event to UBSCore's per-order locks.
#[derive(Clone, Copy, Debug)]
enum LockChange {
    /// A trade spent this much of the order's lock.
    Spend(OrderId, Amount),
    /// The order closed: whatever it held is released.
    Close(OrderId),
}

impl Model {
    /// An exchange whose matching results reach the balances when UBSCore applies them:
    /// each command's balance checks see only the events applied before it, as in the
    /// distributed exchange where UBSCore pulls the ME's events asynchronously.
    pub fn deferred(markets: Markets) -> Model {
        Model { deferred: true, ..Model::new(markets) }
    }

    /// Applies the balance effects of the model's own event `event.event_id`, which must be
    /// the next one and equal `event` (what the engine logged).
    pub fn apply_event(&mut self, event: &MeEvent) -> Result<(), String> {
        if event.event_id != self.applied + 1 {
            return Err(format!("event {} applied after event {}", event.event_id, self.applied));
        }
        match self.events.get(event.event_id as usize - 1) {
            Some(mine) if mine == event => {}
            mine => return Err(format!("engine applied {event:?}, the model derived {mine:?}")),
        }
        let deltas = self.pending.remove(&event.event_id).unwrap_or_default();
        self.apply_deltas(&deltas);
        let locks = self.pending_locks.remove(&event.event_id).unwrap_or_default();
        self.apply_lock_changes(&locks);
        self.applied = event.event_id;
        Ok(())
    }

    /// The last event whose balance effects were applied.
    pub fn applied_event_id(&self) -> EventId {
        self.applied
    }

    /// An empty exchange.
    pub fn new(markets: Markets) -> Model {
        let assets: BTreeMap<AssetId, u8> = markets.assets().map(|a| (a.id, a.decimals)).collect();
        let symbols = markets
            .symbols()
            .map(|s| {
                let decimals = assets.get(&s.base).copied().expect("a symbol's base asset is defined");
                (s.id, ModelSymbol { base: s.base, quote: s.quote, qty_unit: 10u64.pow(u32::from(decimals)) })
            })
            .collect();
        Model {
            markets,
            assets,
            symbols,
            balances: BTreeMap::new(),
            net_deposits: BTreeMap::new(),
            seen: BTreeMap::new(),
            book: BTreeMap::new(),
            where_is: BTreeMap::new(),
            arrivals: 0,
            history: Vec::new(),
            events: Vec::new(),
            ledger: Vec::new(),
            deferred: false,
            staged: Vec::new(),
            pending: BTreeMap::new(),
            ubs_locks: BTreeMap::new(),
            staged_locks: Vec::new(),
            pending_locks: BTreeMap::new(),
            applied: 0,
        }
    }

    /// Processes one command completely (validate, lock, match, settle).
    pub fn submit(&mut self, command: Command) -> Ack {
        if let Some((first, outcome)) = self.seen.get(&command.key()) {
            let outcome =
                if *first == command { *outcome } else { Outcome::Rejected(RejectReason::DuplicateId) };
            return Ack { outcome, seq: None };
        }
        let seq = self.history.len() as UbsSeq + 1;
        let outcome = match command {
            Command::Deposit { user, asset, amount, .. } => self.deposit(user, asset, amount),
            Command::Withdraw { user, asset, amount, .. } => self.withdraw(user, asset, amount),
            Command::Place(order) => self.place(seq, order),
            Command::Cancel { .. } => Outcome::Accepted,
        };
        if let (Command::Place(o), Outcome::Rejected(reason)) = (command, outcome)
            && self.markets.order_events()
        {
            self.emit(seq, MeEventKind::Rejected { order_id: o.order_id, user: o.user, reason });
        }
        self.seen.insert(command.key(), (command, outcome));
        self.history.push(UbsRecord { seq, command, outcome });
        if let Command::Cancel { order_id, user } = command {
            self.cancel(seq, order_id, user);
        }
        Ack { outcome, seq: Some(seq) }
    }

    fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Outcome {
        if amount == 0 {
            return Outcome::Rejected(RejectReason::ZeroAmount);
        }
        if !self.assets.contains_key(&asset) {
            return Outcome::Rejected(RejectReason::UnknownAsset);
        }
        let net = self.net_deposits.get(&asset).copied().unwrap_or(0);
        if net + u128::from(amount) > u128::from(u64::MAX) {
            return Outcome::Rejected(RejectReason::Overflow);
        }
        self.net_deposits.insert(asset, net + u128::from(amount));
        self.balances.entry((user, asset)).or_default().avail += amount;
        Outcome::Accepted
    }

    fn withdraw(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Outcome {
        if amount == 0 {
            return Outcome::Rejected(RejectReason::ZeroAmount);
        }
        if !self.assets.contains_key(&asset) {
            return Outcome::Rejected(RejectReason::UnknownAsset);
        }
        let avail = self.balances.get(&(user, asset)).map_or(0, |b| b.avail);
        if avail < amount {
            return Outcome::Rejected(RejectReason::InsufficientBalance);
        }
        self.balances.entry((user, asset)).or_default().avail -= amount;
        *self.net_deposits.entry(asset).or_default() -= u128::from(amount);
        Outcome::Accepted
    }

    fn place(&mut self, seq: UbsSeq, order: Order) -> Outcome {
        if order.qty == 0 {
            return Outcome::Rejected(RejectReason::ZeroQty);
        }
        if order.price == 0 {
            return Outcome::Rejected(RejectReason::ZeroPrice);
        }
        let Some(symbol) = self.symbols.get(&order.symbol).copied() else {
            return Outcome::Rejected(RejectReason::UnknownSymbol);
        };
        let unit = u128::from(symbol.qty_unit);
        let (lock_asset, lock) = match order.side {
            Side::Buy => (symbol.quote, u128::from(order.price) * u128::from(order.qty) / unit),
            Side::Sell => (symbol.base, u128::from(order.qty)),
        };
        if lock > u128::from(u64::MAX) {
            return Outcome::Rejected(RejectReason::Overflow);
        }
        let lock = lock as u64;
        let avail = self.balances.get(&(order.user, lock_asset)).map_or(0, |b| b.avail);
        if avail < lock {
            return Outcome::Rejected(RejectReason::InsufficientBalance);
        }
        let row = self.balances.entry((order.user, lock_asset)).or_default();
        row.avail -= lock;
        row.frozen += lock;
        self.ubs_locks.insert(order.order_id, (order.user, lock_asset, lock));

        let mut taker = ModelOrder { order, filled: 0, lock_asset, lock_left: lock };
        // Match: repeatedly take the best crossing maker on the other side.
        while taker.filled < order.qty {
            let other = order.side.opposite();
            let best = self
                .book
                .range((order.symbol, other, 0, 0)..=(order.symbol, other, u64::MAX, u64::MAX))
                .next()
                .map(|(k, m)| (*k, m.order.price));
            let Some((key, maker_price)) = best else { break };
            if !crosses(&order, maker_price) {
                break;
            }
            let mut maker = self.book.remove(&key).expect("key was just found");
            let qty = (order.qty - taker.filled).min(maker.order.qty - maker.filled);
            taker.filled += qty;
            maker.filled += qty;
            let value = (u128::from(maker_price) * u128::from(qty) / unit) as u64;
            let (buy, sell) = match order.side {
                Side::Buy => (&mut taker, &mut maker),
                Side::Sell => (&mut maker, &mut taker),
            };
            let trade = Trade {
                trade_id: self.ledger.len() as TradeId + 1,
                symbol: order.symbol,
                price: maker_price,
                qty,
                value,
                buy_order_id: buy.order.order_id,
                sell_order_id: sell.order.order_id,
                buyer: buy.order.user,
                seller: sell.order.user,
                taker_side: order.side,
            };
            // Settle on the spot. The buyer pays `value` and gets back what its own
            // price would have locked for this quantity beyond that (price improvement).
            let improvement = (u128::from(buy.order.price - maker_price) * u128::from(qty) / unit) as u64;
            buy.lock_left -= value + improvement;
            sell.lock_left -= qty;
            let (buy_id, sell_id) = (buy.order.order_id, sell.order.order_id);
            self.staged_locks.push(LockChange::Spend(buy_id, value + improvement));
            self.staged_locks.push(LockChange::Spend(sell_id, qty));
            let (buyer, seller) = (buy.order.user, sell.order.user);
            self.change(buyer, symbol.quote, improvement as i128, -((value + improvement) as i128));
            self.change(buyer, symbol.base, qty as i128, 0);
            self.change(seller, symbol.base, 0, -(qty as i128));
            self.change(seller, symbol.quote, value as i128, 0);
            self.ledger.push(trade);
            self.emit(seq, MeEventKind::Trade(trade));
            if maker.filled == maker.order.qty {
                self.where_is.remove(&maker.order.order_id);
                self.close(seq, &maker, CloseReason::Filled);
            } else {
                self.book.insert(key, maker);
            }
        }
        if taker.filled == order.qty {
            self.close(seq, &taker, CloseReason::Filled);
        } else if order.kind != OrderKind::Gtc {
            self.close(seq, &taker, CloseReason::Expired);
        } else {
            self.arrivals += 1;
            let key = priority_key(&order, self.arrivals);
            self.where_is.insert(order.order_id, key);
            let qty = order.qty - taker.filled;
            self.book.insert(key, taker);
            if self.markets.order_events() {
                let (order_id, user, symbol, side, price) =
                    (order.order_id, order.user, order.symbol, order.side, order.price);
                self.emit(seq, MeEventKind::Rested { order_id, user, symbol, side, price, qty });
            }
        }
        Outcome::Accepted
    }

    fn cancel(&mut self, seq: UbsSeq, order_id: OrderId, user: UserId) {
        let kind = match self.where_is.get(&order_id).copied() {
            None => MeEventKind::CancelRejected { order_id, user, reason: CancelRejectReason::NotResting },
            Some(key) if self.book[&key].order.user != user => {
                MeEventKind::CancelRejected { order_id, user, reason: CancelRejectReason::NotOwner }
            }
            Some(key) => {
                let order = self.book.remove(&key).expect("indexed order rests");
                self.where_is.remove(&order_id);
                self.close(seq, &order, CloseReason::Cancelled);
                return;
            }
        };
        self.emit(seq, kind);
    }

    /// Releases everything the order still holds and reports it closed.
    fn close(&mut self, seq: UbsSeq, order: &ModelOrder, reason: CloseReason) {
        let left = order.lock_left as i128;
        self.change(order.order.user, order.lock_asset, left, -left);
        self.staged_locks.push(LockChange::Close(order.order.order_id));
        let kind =
            MeEventKind::OrderClosed { order_id: order.order.order_id, user: order.order.user, reason };
        self.emit(seq, kind);
    }

    /// Stages a balance change of the event about to be emitted.
    fn change(&mut self, user: UserId, asset: AssetId, d_avail: i128, d_frozen: i128) {
        self.staged.push((user, asset, d_avail, d_frozen));
    }

    fn apply_deltas(&mut self, deltas: &[Delta]) {
        for (user, asset, d_avail, d_frozen) in deltas.iter().copied() {
            let row = self.balances.entry((user, asset)).or_default();
            let avail = i128::from(row.avail) + d_avail;
            let frozen = i128::from(row.frozen) + d_frozen;
            assert!(avail >= 0 && frozen >= 0, "model balance of user {user} asset {asset} went negative");
            row.avail = u64::try_from(avail).expect("model balance exceeds u64");
            row.frozen = u64::try_from(frozen).expect("model balance exceeds u64");
        }
    }

    fn emit(&mut self, ubs_seq: UbsSeq, kind: MeEventKind) {
        let event_id = self.events.len() as EventId + 1;
        self.events.push(MeEvent { event_id, ubs_seq, kind });
        let deltas = std::mem::take(&mut self.staged);
        let locks = std::mem::take(&mut self.staged_locks);
        if self.deferred {
            self.pending.insert(event_id, deltas);
            self.pending_locks.insert(event_id, locks);
        } else {
            self.apply_deltas(&deltas);
            self.apply_lock_changes(&locks);
            self.applied = event_id;
        }
    }

    fn apply_lock_changes(&mut self, changes: &[LockChange]) {
        for change in changes {
            match *change {
                LockChange::Spend(order_id, amount) => {
                    let lock =
                        self.ubs_locks.get_mut(&order_id).expect("a trade of an order the model locked");
                    lock.2 = lock.2.checked_sub(amount).expect("model lock went negative");
                }
                LockChange::Close(order_id) => {
                    self.ubs_locks.remove(&order_id).expect("a close of an order the model locked");
                }
            }
        }
    }

    /// The market configuration.
    pub fn markets(&self) -> &Markets {
        &self.markets
    }

    /// Every fresh command with its outcome, in sequence order.
    pub fn history(&self) -> &[UbsRecord] {
        &self.history
    }

    /// The matching engine's event log as the model derives it.
    pub fn events(&self) -> &[MeEvent] {
        &self.events
    }

    /// All trades in id order (the settlement ledger).
    pub fn ledger(&self) -> &[Trade] {
        &self.ledger
    }

    /// Non-zero balances, sorted.
    pub fn balances(&self) -> BTreeMap<(UserId, AssetId), Balance> {
        self.balances.iter().filter(|(_, b)| b.avail != 0 || b.frozen != 0).map(|(k, b)| (*k, *b)).collect()
    }

    /// Σ deposits − Σ withdrawals per asset.
    pub fn net_deposits(&self) -> BTreeMap<AssetId, Amount> {
        self.net_deposits.iter().map(|(a, n)| (*a, *n as Amount)).collect()
    }

    /// Resting orders per symbol in priority order (bids best first, then asks).
    pub fn books(&self) -> BTreeMap<SymbolId, Vec<RestingOrder>> {
        let mut books: BTreeMap<SymbolId, Vec<RestingOrder>> =
            self.symbols.keys().map(|s| (*s, Vec::new())).collect();
        for m in self.book.values() {
            books.entry(m.order.symbol).or_default().push(RestingOrder {
                order_id: m.order.order_id,
                user: m.order.user,
                symbol: m.order.symbol,
                side: m.order.side,
                price: m.order.price,
                qty: m.order.qty,
                filled: m.filled,
            });
        }
        books
    }

    /// What UBSCore holds frozen per open order after the events applied so far:
    /// order → (user, asset, amount). Equals [`Model::locks`] once every event is applied.
    pub fn ubs_locks(&self) -> &BTreeMap<OrderId, (UserId, AssetId, Amount)> {
        &self.ubs_locks
    }

    /// The de-duplication table: the first command under each id and its outcome.
    pub fn dedup(&self) -> &BTreeMap<CommandKey, (Command, Outcome)> {
        &self.seen
    }

    /// What each resting order still holds frozen: order → (user, asset, amount).
    pub fn locks(&self) -> BTreeMap<OrderId, (UserId, AssetId, Amount)> {
        self.book.values().map(|m| (m.order.order_id, (m.order.user, m.lock_asset, m.lock_left))).collect()
    }
}
