//! The wire protocol: every link is "give me your durable entries after N, at most K".
//! Requests go to tag [`REQUEST_TAG`] with a random reply tag in front; the reply comes
//! back on that tag.

use crate::audit::OrderAudit;
pub use crate::durable::FollowerId;
use crate::market_data::{L2Book, Tick, Top};
use crate::{Ack, Command, EventId, MeEvent, OrderId, SymbolId, Trade, TradeId, UbsRecord, UbsSeq, UserId};
use serde::{Deserialize, Serialize};

/// Tag on which every node receives requests.
pub const REQUEST_TAG: u64 = 1;

/// A request to a service node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Client → UBSCore: apply a command; answered only after it is durable.
    Submit(Command),
    /// Matching → UBSCore: durable command records after `after`. `floor`: the oldest point
    /// the puller could recover to (its oldest snapshot's `last_ubs_seq`); UBSCore's retention
    /// keeps every record after it.
    PullRecords { after: UbsSeq, max: u32, floor: UbsSeq },
    /// UBSCore → Matching: durable events after `after`; `floor` as for records (the
    /// `last_event_id` of UBSCore's oldest snapshot).
    PullEvents { after: EventId, max: u32, floor: EventId },
    /// Settlement → Matching: durable trades after `after` (settlement recovers from its
    /// own log, so `after` is also the floor of the matching engine's retention for it).
    PullTrades { after: TradeId, max: u32 },
    /// Anyone → any node: its watermarks.
    Status,
    /// Replica → UBSCore: durable command records after `after`. Unlike
    /// [`Request::PullRecords`] it moves no retention floor (the replica keeps nothing on
    /// disk), and records already removed are answered with an error, not a stop.
    ReplicaRecords { after: UbsSeq, max: u32 },
    /// A follower (market data; Settlement with its audit trail) → Matching: durable events
    /// after `after`. `floor`: the oldest point the follower could recover to (its oldest
    /// snapshot's event); retention keeps every event after it. A follower ahead of the
    /// durable log (after a failover) is answered with an error, not a stop.
    MarketEvents { who: FollowerId, after: EventId, max: u32, floor: EventId },
    /// Anyone → Market data: durable ticks after trade `after`.
    Ticks { after: TradeId, max: u32 },
    /// Anyone → Market data: the L2 book of `symbol` last published at or before event
    /// `as_of`.
    Book { symbol: SymbolId, as_of: EventId },
    /// Anyone → Market data: the current top of `symbol`'s book.
    Top { symbol: SymbolId },
    /// Anyone → Settlement: the audit trail of one order.
    AuditOrder { order_id: OrderId },
    /// Anyone → Settlement: the orders of one user in the audit trail.
    AuditUser { user: UserId },
}

/// A node's watermarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// UBSCore: last durable `ubs_seq`; Matching: last consumed `ubs_seq`.
    pub ubs_seq: UbsSeq,
    /// UBSCore: last applied event; Matching: last durable event; Market data, and
    /// Settlement with its audit trail: the last durable event they followed (0 for
    /// Settlement without it).
    pub event_id: EventId,
    /// Matching: last durable trade; Settlement: last settled trade; Market data: its last
    /// tick's trade.
    pub trade_id: TradeId,
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command's acknowledgement.
    Ack(Ack),
    /// Command records.
    Records(Vec<UbsRecord>),
    /// ME events.
    Events(Vec<MeEvent>),
    /// Trades.
    Trades(Vec<Trade>),
    /// Watermarks.
    Status(Status),
    /// The node cannot serve this request.
    Error(String),
    /// Ticks.
    Ticks(Vec<Tick>),
    /// The L2 book last published at or before `as_of` (the event asked for, or the last
    /// durable one if that is earlier), if one was.
    Book { as_of: EventId, book: Option<L2Book> },
    /// A top of book as of event `as_of` (`None`: no such symbol).
    Top { as_of: EventId, top: Option<Top> },
    /// An order's audit trail as of event `as_of` (`None`: not in the trail).
    Audit { as_of: EventId, order: Option<OrderAudit> },
    /// A user's order ids in the audit trail as of event `as_of`.
    Orders { as_of: EventId, ids: Vec<OrderId> },
}
