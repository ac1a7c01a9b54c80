//! Client commands to UBSCore and their outcomes.

use crate::types::{
    Amount, AssetId, OrderId, OrderKind, Price, Qty, RequestId, Side, SymbolId, UbsSeq, UserId,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A new order as the client places it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Client-chosen id; unique for the life of the exchange.
    pub order_id: OrderId,
    /// Owner.
    pub user: UserId,
    /// Book.
    pub symbol: SymbolId,
    /// Bid or ask.
    pub side: Side,
    /// GTC, IOC or market.
    pub kind: OrderKind,
    /// Limit price (the protection limit for a market order).
    pub price: Price,
    /// Quantity in base minor units.
    pub qty: Qty,
}

/// A client command. Each is identified by its id for de-duplication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `avail += amount`.
    Deposit { request_id: RequestId, user: UserId, asset: AssetId, amount: Amount },
    /// `avail -= amount`, if available.
    Withdraw { request_id: RequestId, user: UserId, asset: AssetId, amount: Amount },
    /// Lock funds and forward the order to the matching engine.
    Place(Order),
    /// Forward a cancel to the matching engine.
    Cancel { order_id: OrderId, user: UserId },
}

/// The identity of a command for de-duplication: deposits and withdrawals share the
/// request-id space; places and cancels each have their own order-id space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CommandKey {
    /// A deposit or withdrawal.
    Request(RequestId),
    /// A place.
    Place(OrderId),
    /// A cancel of that order.
    Cancel(OrderId),
}

impl Command {
    /// The de-duplication key of this command.
    pub fn key(&self) -> CommandKey {
        match *self {
            Command::Deposit { request_id, .. } | Command::Withdraw { request_id, .. } => {
                CommandKey::Request(request_id)
            }
            Command::Place(order) => CommandKey::Place(order.order_id),
            Command::Cancel { order_id, .. } => CommandKey::Cancel(order_id),
        }
    }

    /// The user the command acts for.
    pub fn user(&self) -> UserId {
        match *self {
            Command::Deposit { user, .. } | Command::Withdraw { user, .. } | Command::Cancel { user, .. } => {
                user
            }
            Command::Place(order) => order.user,
        }
    }
}

/// Why UBSCore rejected a command. A rejected command changes no balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// Deposit or withdrawal of zero.
    ZeroAmount,
    /// Order quantity zero.
    ZeroQty,
    /// Order price zero.
    ZeroPrice,
    /// Deposit or withdrawal of an unconfigured asset.
    UnknownAsset,
    /// Order on an unconfigured symbol.
    UnknownSymbol,
    /// The id was used before by a different command.
    DuplicateId,
    /// Not enough available balance for the withdrawal or the lock.
    InsufficientBalance,
    /// An amount would not fit in 64 bits (lock value, or the asset's total supply).
    Overflow,
}

impl RejectReason {
    /// Snake-case name used in reports and CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::ZeroAmount => "zero_amount",
            RejectReason::ZeroQty => "zero_qty",
            RejectReason::ZeroPrice => "zero_price",
            RejectReason::UnknownAsset => "unknown_asset",
            RejectReason::UnknownSymbol => "unknown_symbol",
            RejectReason::DuplicateId => "duplicate_id",
            RejectReason::InsufficientBalance => "insufficient_balance",
            RejectReason::Overflow => "overflow",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// UBSCore's verdict on a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied (and, for places and cancels, forwarded to matching).
    Accepted,
    /// Not applied.
    Rejected(RejectReason),
}

/// What UBSCore answers to one submitted command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The outcome; for a retry, the outcome of the first submission.
    pub outcome: Outcome,
    /// The sequence number the command got, or `None` when it was answered from the
    /// de-duplication table (a retry, or a different command reusing a known id).
    pub seq: Option<UbsSeq>,
}

/// One entry of UBSCore's ordered command history: every fresh command with its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UbsRecord {
    /// Dense sequence number, from 1.
    pub seq: UbsSeq,
    /// The command as received.
    pub command: Command,
    /// Its outcome.
    pub outcome: Outcome,
}

/// What UBSCore forwards to the matching engine: an accepted place or cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeInput {
    /// A new order whose funds are locked.
    Place(Order),
    /// A cancel request.
    Cancel { order_id: OrderId, user: UserId },
    /// A place UBSCore refused: only the watermark moves, and, when the markets publish
    /// order events, a `Rejected` event is logged (the audit trail's end of the order).
    Reject { order_id: OrderId, user: UserId, reason: RejectReason },
}
