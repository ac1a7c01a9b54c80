//! The order audit trail: for every order, what happened to it in the matching engine's
//! log order (rested, each fill with its trade, and its end: filled, cancelled, expired or
//! rejected), queryable by order id and by user. A pure state machine fed the matching
//! engine's events (with order events on); Settlement keeps it beside its ledger.

use crate::Applied;
use crate::command::RejectReason;
use crate::event::{CloseReason, MeEvent, MeEventKind};
use crate::types::{EventId, OrderId, Price, Qty, TradeId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One thing that happened to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditEntry {
    /// It rests in the book with this much left.
    Rested { qty: Qty },
    /// It traded: the trade, its quantity and price.
    Fill { trade_id: TradeId, qty: Qty, price: Price },
    /// It is done (filled, cancelled, expired).
    Closed { reason: CloseReason },
    /// UBSCore refused it.
    Rejected { reason: RejectReason },
}

/// The history of one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAudit {
    /// Its owner.
    pub user: UserId,
    /// What happened, in log order, with the event that said it.
    pub entries: Vec<(EventId, AuditEntry)>,
}

/// The whole trail, serializable (the snapshot) and comparable (the checker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditState {
    /// The last applied event.
    pub last_event_id: EventId,
    /// The last trade whose fills it holds.
    pub last_trade_id: TradeId,
    /// Every order's history, by order id.
    pub orders: BTreeMap<OrderId, OrderAudit>,
}

/// An event the trail cannot apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// Events must come densely.
    Gap { expected: EventId, got: EventId },
    /// An event names an order of another user than the one the trail knows.
    OtherUser { event_id: EventId, order_id: OrderId },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Gap { expected, got } => write!(f, "audit: expected event {expected}, got {got}"),
            AuditError::OtherUser { event_id, order_id } => {
                write!(f, "audit: event {event_id} gives order {order_id} another owner")
            }
        }
    }
}

impl std::error::Error for AuditError {}

/// The audit-trail state machine.
#[derive(Clone, Debug, Default)]
pub struct AuditTrail {
    state: AuditState,
    by_user: BTreeMap<UserId, BTreeSet<OrderId>>,
}

impl AuditTrail {
    /// An empty trail.
    pub fn new() -> AuditTrail {
        AuditTrail::default()
    }

    /// Rebuilds the trail (and its per-user index) from a snapshot's state.
    pub fn from_state(state: AuditState) -> AuditTrail {
        let mut by_user: BTreeMap<UserId, BTreeSet<OrderId>> = BTreeMap::new();
        for (id, order) in &state.orders {
            by_user.entry(order.user).or_default().insert(*id);
        }
        AuditTrail { state, by_user }
    }

    /// Applies one event. One at or below the watermark is a duplicate and changes nothing.
    pub fn apply(&mut self, event: &MeEvent) -> Result<Applied, AuditError> {
        let id = event.event_id;
        if id <= self.state.last_event_id {
            return Ok(Applied::Duplicate);
        }
        if id != self.state.last_event_id + 1 {
            return Err(AuditError::Gap { expected: self.state.last_event_id + 1, got: id });
        }
        match event.kind {
            MeEventKind::Rested { order_id, user, qty, .. } => {
                self.note(id, order_id, user, AuditEntry::Rested { qty })?
            }
            MeEventKind::Trade(t) => {
                let fill = AuditEntry::Fill { trade_id: t.trade_id, qty: t.qty, price: t.price };
                self.note(id, t.buy_order_id, t.buyer, fill)?;
                self.note(id, t.sell_order_id, t.seller, fill)?;
                self.state.last_trade_id = t.trade_id;
            }
            MeEventKind::OrderClosed { order_id, user, reason } => {
                self.note(id, order_id, user, AuditEntry::Closed { reason })?
            }
            MeEventKind::Rejected { order_id, user, reason } => {
                self.note(id, order_id, user, AuditEntry::Rejected { reason })?
            }
            MeEventKind::CancelRejected { .. } => {}
        }
        self.state.last_event_id = id;
        Ok(Applied::Applied)
    }

    fn note(
        &mut self,
        event_id: EventId,
        order_id: OrderId,
        user: UserId,
        entry: AuditEntry,
    ) -> Result<(), AuditError> {
        let order =
            self.state.orders.entry(order_id).or_insert_with(|| OrderAudit { user, entries: Vec::new() });
        if order.user != user {
            return Err(AuditError::OtherUser { event_id, order_id });
        }
        order.entries.push((event_id, entry));
        self.by_user.entry(user).or_default().insert(order_id);
        Ok(())
    }

    /// The history of one order.
    pub fn order(&self, order_id: OrderId) -> Option<&OrderAudit> {
        self.state.orders.get(&order_id)
    }

    /// The orders of one user, by id.
    pub fn orders_of(&self, user: UserId) -> Vec<OrderId> {
        self.by_user.get(&user).map_or_else(Vec::new, |ids| ids.iter().copied().collect())
    }

    /// The last applied event id.
    pub fn last_event_id(&self) -> EventId {
        self.state.last_event_id
    }

    /// The whole state.
    pub fn state(&self) -> &AuditState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Trade;
    use crate::types::Side;

    fn ev(event_id: EventId, kind: MeEventKind) -> MeEvent {
        MeEvent { event_id, ubs_seq: event_id, kind }
    }

    #[test]
    fn an_order_keeps_its_fills_and_its_end_by_id_and_by_user() {
        let mut audit = AuditTrail::new();
        let trade = Trade {
            trade_id: 1,
            symbol: 0,
            price: 100,
            qty: 3,
            value: 3,
            buy_order_id: 11,
            sell_order_id: 10,
            buyer: 2,
            seller: 1,
            taker_side: Side::Buy,
        };
        let events = [
            MeEventKind::Rested { order_id: 10, user: 1, symbol: 0, side: Side::Sell, price: 100, qty: 5 },
            MeEventKind::Trade(trade),
            MeEventKind::OrderClosed { order_id: 11, user: 2, reason: CloseReason::Filled },
            MeEventKind::OrderClosed { order_id: 10, user: 1, reason: CloseReason::Cancelled },
            MeEventKind::Rejected { order_id: 12, user: 2, reason: RejectReason::InsufficientBalance },
        ];
        for (i, kind) in events.into_iter().enumerate() {
            assert_eq!(audit.apply(&ev(i as u64 + 1, kind)), Ok(Applied::Applied));
        }
        let maker = audit.order(10).expect("order 10 is audited");
        assert_eq!(
            maker.entries.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            [
                AuditEntry::Rested { qty: 5 },
                AuditEntry::Fill { trade_id: 1, qty: 3, price: 100 },
                AuditEntry::Closed { reason: CloseReason::Cancelled }
            ]
        );
        assert_eq!(audit.orders_of(2), [11, 12]);
        assert_eq!(audit.state().last_trade_id, 1);
        assert_eq!(
            audit.apply(&ev(
                5,
                MeEventKind::Rested { order_id: 1, user: 1, symbol: 0, side: Side::Buy, price: 1, qty: 1 }
            )),
            Ok(Applied::Duplicate)
        );
        assert!(matches!(audit.apply(&ev(7, events[0])), Err(AuditError::Gap { .. })));
        let other = MeEventKind::OrderClosed { order_id: 10, user: 9, reason: CloseReason::Expired };
        assert!(matches!(audit.apply(&ev(6, other)), Err(AuditError::OtherUser { .. })));
        let copy = AuditTrail::from_state(audit.state().clone());
        assert_eq!(copy.orders_of(1), audit.orders_of(1));
    }
}
