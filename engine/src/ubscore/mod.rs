//! UBSCore, the user balance core: validates and de-duplicates client commands, locks
//! funds for orders, and applies the matching engine's events. It is the sequencer:
//! every fresh command gets the next `ubs_seq`.

mod balances;
mod dedup;

pub use balances::{Balances, BalancesView};
pub use dedup::{DedupTable, DedupView};

use crate::Applied;
use crate::command::{Ack, Command, CommandKey, MeInput, Order, Outcome, RejectReason, UbsRecord};
use crate::event::{MeEvent, MeEventKind, Trade};
use crate::math;
use crate::types::{
    Amount, AssetId, Balance, EventId, Markets, OrderId, Price, Side, SymbolId, UbsSeq, UserId,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Funds an open order still holds frozen, tracked per order so that exactly this amount
/// is released when the order leaves the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenLock {
    /// Owner.
    pub user: UserId,
    /// Book.
    pub symbol: SymbolId,
    /// Bid or ask.
    pub side: Side,
    /// Limit price (needed for a buy's price improvement).
    pub price: Price,
    /// The asset that is locked: quote for a buy, base for a sell.
    pub asset: AssetId,
    /// Frozen minor units still held by this order.
    pub remaining_lock: Amount,
}

/// UBSCore's whole state in sorted, serializable form (for snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UbsState {
    /// Every balance row, sorted by (user, asset).
    pub balances: Vec<((UserId, AssetId), Balance)>,
    /// Σ deposits − Σ withdrawals per asset.
    pub supply: Vec<(AssetId, Amount)>,
    /// Open locks, sorted by order id.
    pub open: Vec<(OrderId, OpenLock)>,
    /// The de-duplication table, sorted by key.
    pub dedup: Vec<(CommandKey, (Command, Outcome))>,
    /// The next `ubs_seq`.
    pub next_seq: UbsSeq,
    /// The last applied ME event.
    pub last_event_id: EventId,
}

/// Open locks sorted by order id.
fn sorted_locks(open: &FxHashMap<OrderId, OpenLock>) -> Vec<(OrderId, OpenLock)> {
    let mut rows: Vec<_> = open.iter().map(|(id, l)| (*id, *l)).collect();
    rows.sort_unstable_by_key(|(id, _)| *id);
    rows
}

/// UBSCore's state as it was when [`UbsCore::share`] was called.
#[derive(Clone, Debug)]
pub struct UbsView {
    balances: BalancesView,
    open: FxHashMap<OrderId, OpenLock>,
    dedup: DedupView,
    next_seq: UbsSeq,
    last_event_id: EventId,
}

impl UbsView {
    /// The whole state, sorted (a deterministic snapshot image).
    pub fn export_state(&self) -> UbsState {
        UbsState {
            balances: self.balances.rows_sorted(),
            supply: self.balances.supply().iter().map(|(a, s)| (*a, *s)).collect(),
            open: sorted_locks(&self.open),
            dedup: self.dedup.entries(),
            next_seq: self.next_seq,
            last_event_id: self.last_event_id,
        }
    }

    /// The sequence number the next fresh command would get.
    pub fn next_seq(&self) -> UbsSeq {
        self.next_seq
    }

    /// The id of the last applied matching-engine event.
    pub fn last_event_id(&self) -> EventId {
        self.last_event_id
    }
}

/// The result of submitting one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submission {
    /// What the client is told.
    pub ack: Ack,
    /// The history entry, for a fresh command.
    pub record: Option<UbsRecord>,
    /// What to send to the matching engine, for an accepted place or cancel.
    pub forward: Option<(UbsSeq, MeInput)>,
}

/// A matching-engine event UBSCore cannot apply; each names the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UbsError {
    /// Events must be applied in `event_id` order without gaps.
    EventGap { expected: EventId, got: EventId },
    /// The event names an order UBSCore holds no lock for.
    UnknownOrder { event_id: EventId, order_id: OrderId },
    /// The event names a symbol that is not configured.
    UnknownSymbol { event_id: EventId, symbol: SymbolId },
    /// The event contradicts UBSCore's state (e.g. a lock would go negative).
    Inconsistent { event_id: EventId, what: String },
}

impl fmt::Display for UbsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UbsError::EventGap { expected, got } => {
                write!(f, "ME event gap: expected event {expected}, got {got}")
            }
            UbsError::UnknownOrder { event_id, order_id } => {
                write!(f, "ME event {event_id}: no open lock for order {order_id}")
            }
            UbsError::UnknownSymbol { event_id, symbol } => {
                write!(f, "ME event {event_id}: unknown symbol {symbol}")
            }
            UbsError::Inconsistent { event_id, what } => write!(f, "ME event {event_id}: {what}"),
        }
    }
}

impl std::error::Error for UbsError {}

/// The UBSCore state machine.
#[derive(Clone, Debug)]
pub struct UbsCore {
    markets: Markets,
    balances: Balances,
    open: FxHashMap<OrderId, OpenLock>,
    dedup: DedupTable,
    next_seq: UbsSeq,
    last_event_id: EventId,
}

impl UbsCore {
    /// An empty UBSCore for these markets.
    pub fn new(markets: Markets) -> UbsCore {
        UbsCore {
            markets,
            balances: Balances::default(),
            open: FxHashMap::default(),
            dedup: DedupTable::default(),
            next_seq: 1,
            last_event_id: 0,
        }
    }

    /// The whole state, sorted (a deterministic snapshot image).
    pub fn export_state(&self) -> UbsState {
        UbsState {
            balances: self.balances.rows_sorted(),
            supply: self.balances.supply().iter().map(|(a, s)| (*a, *s)).collect(),
            open: sorted_locks(&self.open),
            dedup: self.dedup.entries(),
            next_seq: self.next_seq,
            last_event_id: self.last_event_id,
        }
    }

    /// The state as it is now, for a snapshot to encode elsewhere while UBSCore goes on:
    /// balances and de-duplication records are shared page by page (a write afterwards
    /// copies the page it touches), so taking it does not copy them.
    pub fn share(&mut self) -> UbsView {
        UbsView {
            balances: self.balances.share(),
            open: self.open.clone(),
            dedup: self.dedup.share(),
            next_seq: self.next_seq,
            last_event_id: self.last_event_id,
        }
    }

    /// Rebuilds UBSCore from an exported state, checking its internal consistency.
    pub fn from_state(markets: Markets, state: UbsState) -> Result<UbsCore, String> {
        let balances = Balances::from_parts(state.balances, state.supply.into_iter().collect())?;
        let mut open = FxHashMap::with_capacity_and_hasher(state.open.len(), Default::default());
        for (id, lock) in state.open {
            if open.insert(id, lock).is_some() {
                return Err(format!("order {id} has two open locks"));
            }
        }
        let mut dedup = DedupTable::with_capacity(state.dedup.len());
        for (key, (command, outcome)) in state.dedup {
            if command.key() != key || !dedup.load(command, outcome) {
                return Err(format!("bad de-duplication entry {key:?}"));
            }
        }
        if state.next_seq == 0 {
            return Err("next_seq is 0".into());
        }
        Ok(UbsCore {
            markets,
            balances,
            open,
            dedup,
            next_seq: state.next_seq,
            last_event_id: state.last_event_id,
        })
    }

    /// Validates, de-duplicates and applies one client command.
    pub fn submit(&mut self, command: Command) -> Submission {
        let command = planted_normalisation(command);
        let place = match self.dedup.admit(&command) {
            Ok(place) => place,
            Err(outcome) => {
                return Submission { ack: Ack { outcome, seq: None }, record: None, forward: None };
            }
        };
        let (outcome, forward) = match command {
            Command::Deposit { user, asset, amount, .. } => (self.deposit(user, asset, amount), None),
            Command::Withdraw { user, asset, amount, .. } => (self.withdraw(user, asset, amount), None),
            Command::Place(order) => match self.place(&order) {
                Ok(()) => (Outcome::Accepted, Some(MeInput::Place(order))),
                // The matching engine hears of a refused order only to log its end.
                Err(reason) => {
                    let reject = MeInput::Reject { order_id: order.order_id, user: order.user, reason };
                    (Outcome::Rejected(reason), self.markets.order_events().then_some(reject))
                }
            },
            Command::Cancel { order_id, user } => {
                (Outcome::Accepted, Some(MeInput::Cancel { order_id, user }))
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.dedup.settle(place, outcome);
        Submission {
            ack: Ack { outcome, seq: Some(seq) },
            record: Some(UbsRecord { seq, command, outcome }),
            forward: forward.map(|input| (seq, input)),
        }
    }

    fn deposit(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Outcome {
        if amount == 0 {
            return Outcome::Rejected(RejectReason::ZeroAmount);
        }
        if self.markets.asset(asset).is_none() {
            return Outcome::Rejected(RejectReason::UnknownAsset);
        }
        match self.balances.deposit(user, asset, amount) {
            Ok(()) => Outcome::Accepted,
            Err(reason) => Outcome::Rejected(reason),
        }
    }

    fn withdraw(&mut self, user: UserId, asset: AssetId, amount: Amount) -> Outcome {
        if amount == 0 {
            return Outcome::Rejected(RejectReason::ZeroAmount);
        }
        if self.markets.asset(asset).is_none() {
            return Outcome::Rejected(RejectReason::UnknownAsset);
        }
        match self.balances.withdraw(user, asset, amount) {
            Ok(()) => Outcome::Accepted,
            Err(reason) => Outcome::Rejected(reason),
        }
    }

    fn place(&mut self, order: &Order) -> Result<(), RejectReason> {
        if order.qty == 0 {
            return Err(RejectReason::ZeroQty);
        }
        if order.price == 0 {
            return Err(RejectReason::ZeroPrice);
        }
        let symbol = self.markets.symbol(order.symbol).ok_or(RejectReason::UnknownSymbol)?;
        let lock = math::lock_amount(order.side, order.price, order.qty, symbol.qty_unit)
            .ok_or(RejectReason::Overflow)?;
        let asset = match order.side {
            Side::Buy => symbol.quote,
            Side::Sell => symbol.base,
        };
        self.balances.lock(order.user, asset, lock)?;
        if lock == 0 && crate::bugs::planted(crate::bugs::Bug::ZeroLockUntracked) {
            return Ok(());
        }
        let previous = self.open.insert(
            order.order_id,
            OpenLock {
                user: order.user,
                symbol: order.symbol,
                side: order.side,
                price: order.price,
                asset,
                remaining_lock: lock,
            },
        );
        // The de-duplication table admits each order id once, so no lock can be replaced.
        assert!(previous.is_none(), "order {} locked twice", order.order_id);
        Ok(())
    }

    /// Applies one matching-engine event. Events must arrive in `event_id` order; an
    /// event at or below the watermark is a duplicate and changes nothing.
    pub fn apply_event(&mut self, event: &MeEvent) -> Result<Applied, UbsError> {
        if event.event_id <= self.last_event_id {
            return Ok(Applied::Duplicate);
        }
        if event.event_id != self.last_event_id + 1 {
            return Err(UbsError::EventGap { expected: self.last_event_id + 1, got: event.event_id });
        }
        match event.kind {
            MeEventKind::Trade(trade) => self.settle_trade(event.event_id, &trade)?,
            MeEventKind::OrderClosed { order_id, .. } => {
                let lock = self
                    .open
                    .remove(&order_id)
                    .ok_or(UbsError::UnknownOrder { event_id: event.event_id, order_id })?;
                self.balances
                    .unfreeze(lock.user, lock.asset, lock.remaining_lock)
                    .map_err(|what| UbsError::Inconsistent { event_id: event.event_id, what })?;
            }
            MeEventKind::CancelRejected { .. }
            | MeEventKind::Rested { .. }
            | MeEventKind::Rejected { .. } => {}
        }
        self.last_event_id = event.event_id;
        Ok(Applied::Applied)
    }

    fn settle_trade(&mut self, event_id: EventId, trade: &Trade) -> Result<(), UbsError> {
        let inconsistent = |what: String| UbsError::Inconsistent { event_id, what };
        let symbol = self
            .markets
            .symbol(trade.symbol)
            .ok_or(UbsError::UnknownSymbol { event_id, symbol: trade.symbol })?;
        let (base, quote, qty_unit) = (symbol.base, symbol.quote, symbol.qty_unit);
        let value = math::quote_value(trade.price, trade.qty, qty_unit);
        if value != Some(trade.value) {
            return Err(inconsistent(format!(
                "trade {} value {} != floor({} * {} / {qty_unit})",
                trade.trade_id, trade.value, trade.price, trade.qty
            )));
        }

        // Buyer: pays the value out of the lock, and gets back the price improvement.
        let buy = self
            .open
            .get_mut(&trade.buy_order_id)
            .ok_or(UbsError::UnknownOrder { event_id, order_id: trade.buy_order_id })?;
        if buy.side != Side::Buy || buy.price < trade.price || buy.symbol != trade.symbol {
            return Err(inconsistent(format!(
                "trade {} at {} does not fit buy order {} ({:?} at {})",
                trade.trade_id, trade.price, trade.buy_order_id, buy.side, buy.price
            )));
        }
        let improvement = math::quote_value(buy.price - trade.price, trade.qty, qty_unit)
            .ok_or_else(|| inconsistent("price improvement overflows".into()))?;
        let taken =
            trade.value.checked_add(improvement).filter(|taken| *taken <= buy.remaining_lock).ok_or_else(
                || {
                    inconsistent(format!(
                        "trade {} takes {} + {improvement} from buy order {} holding {}",
                        trade.trade_id, trade.value, trade.buy_order_id, buy.remaining_lock
                    ))
                },
            )?;
        buy.remaining_lock -= taken;
        let buyer = buy.user;

        let sell = self
            .open
            .get_mut(&trade.sell_order_id)
            .ok_or(UbsError::UnknownOrder { event_id, order_id: trade.sell_order_id })?;
        if sell.side != Side::Sell || sell.price > trade.price || sell.remaining_lock < trade.qty {
            return Err(inconsistent(format!(
                "trade {} ({} at {}) does not fit sell order {} ({:?} at {}, holding {})",
                trade.trade_id,
                trade.qty,
                trade.price,
                trade.sell_order_id,
                sell.side,
                sell.price,
                sell.remaining_lock
            )));
        }
        sell.remaining_lock -= trade.qty;
        let seller = sell.user;

        let b = &mut self.balances;
        b.spend_frozen(buyer, quote, trade.value).map_err(inconsistent)?;
        b.unfreeze(buyer, quote, improvement).map_err(inconsistent)?;
        b.credit(buyer, base, trade.qty).map_err(inconsistent)?;
        b.spend_frozen(seller, base, trade.qty).map_err(inconsistent)?;
        b.credit(seller, quote, trade.value).map_err(inconsistent)?;
        Ok(())
    }

    /// Takes back what the last [`UbsCore::share`] froze, once its snapshot is written (see
    /// [`Balances::reclaim`]); false while a view still holds it.
    pub fn reclaim(&mut self) -> bool {
        self.balances.reclaim()
    }

    /// The sequence number the next fresh command will get.
    pub fn next_seq(&self) -> UbsSeq {
        self.next_seq
    }

    /// The id of the last applied matching-engine event (0 if none).
    pub fn last_event_id(&self) -> EventId {
        self.last_event_id
    }

    /// The market configuration.
    pub fn markets(&self) -> &Markets {
        &self.markets
    }

    /// One balance (zero if the row does not exist).
    pub fn balance(&self, user: UserId, asset: AssetId) -> Balance {
        self.balances.get(user, asset)
    }

    /// All non-zero balances, sorted by (user, asset).
    pub fn balances(&self) -> BTreeMap<(UserId, AssetId), Balance> {
        self.balances.non_zero()
    }

    /// Σ (avail + frozen) over all users, per asset.
    pub fn supply(&self) -> &BTreeMap<AssetId, Amount> {
        self.balances.supply()
    }

    /// All open locks, sorted by order id.
    pub fn open_locks(&self) -> BTreeMap<OrderId, OpenLock> {
        self.open.iter().map(|(id, lock)| (*id, *lock)).collect()
    }

    /// The open lock of one order.
    pub fn open_lock(&self, order_id: OrderId) -> Option<&OpenLock> {
        self.open.get(&order_id)
    }

    /// The de-duplication table.
    pub fn dedup(&self) -> &DedupTable {
        &self.dedup
    }
}

/// The planted normalisation bug: a GTC sell's price is rounded down to a multiple of 100
/// before the command is applied and logged. Everything downstream agrees with the log;
/// only a checker that compares the log with what clients sent can tell.
#[inline]
fn planted_normalisation(command: Command) -> Command {
    match command {
        Command::Place(mut order)
            if crate::bugs::planted(crate::bugs::Bug::NormalisedBeforeLog)
                && order.kind == crate::OrderKind::Gtc
                && order.side == crate::Side::Sell
                && order.price >= 100 =>
        {
            order.price -= order.price % 100;
            Command::Place(order)
        }
        other => other,
    }
}
