//! The matching engine's output: a log of events with dense ids.

use crate::types::{Amount, EventId, OrderId, Price, Qty, Side, SymbolId, TradeId, UbsSeq, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One execution between a resting maker and an incoming taker, at the maker's price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// Dense over the whole ME, from 1.
    pub trade_id: TradeId,
    /// Book.
    pub symbol: SymbolId,
    /// The maker's price.
    pub price: Price,
    /// Base minor units exchanged.
    pub qty: Qty,
    /// `floor(price * qty / qty_unit)` quote minor units exchanged.
    pub value: Amount,
    /// The buy order.
    pub buy_order_id: OrderId,
    /// The sell order.
    pub sell_order_id: OrderId,
    /// Owner of the buy order.
    pub buyer: UserId,
    /// Owner of the sell order.
    pub seller: UserId,
    /// Side of the incoming (taker) order.
    pub taker_side: Side,
}

/// Why an order left the book (or never rested).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CloseReason {
    /// Fully filled.
    Filled,
    /// Cancelled by its owner.
    Cancelled,
    /// IOC or market remainder.
    Expired,
}

/// Why a cancel did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CancelRejectReason {
    /// No resting order with that id (never placed, already filled, expired or cancelled).
    NotResting,
    /// The order rests but belongs to another user.
    NotOwner,
}

impl CancelRejectReason {
    /// Snake-case name used in reports and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelRejectReason::NotResting => "cancel_not_resting",
            CancelRejectReason::NotOwner => "cancel_not_owner",
        }
    }
}

impl fmt::Display for CancelRejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeEventKind {
    /// A trade.
    Trade(Trade),
    /// An order is done: its whole remaining lock is to be released.
    OrderClosed { order_id: OrderId, user: UserId, reason: CloseReason },
    /// A cancel found nothing to cancel.
    CancelRejected { order_id: OrderId, user: UserId, reason: CancelRejectReason },
    /// An order (or its remainder after fills) now rests in the book. Logged only when the
    /// markets publish order events ([`crate::Markets::with_order_events`]): market data
    /// needs them to build the book; the other services ignore them.
    Rested { order_id: OrderId, user: UserId, symbol: SymbolId, side: Side, price: Price, qty: Qty },
    /// UBSCore refused the order (logged only when the markets publish order events): its
    /// end, for the audit trail.
    Rejected { order_id: OrderId, user: UserId, reason: crate::command::RejectReason },
}

/// One entry of the ME's event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeEvent {
    /// Dense over the whole ME, from 1.
    pub event_id: EventId,
    /// The UBSCore sequence number of the command that produced this event.
    pub ubs_seq: UbsSeq,
    /// What happened.
    pub kind: MeEventKind,
}
