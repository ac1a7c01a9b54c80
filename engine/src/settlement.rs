//! Settlement: the trade ledger, exactly once per `trade_id`, with gap detection.

use crate::Applied;
use crate::event::Trade;
use crate::types::{TradeId, UserId};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::fmt;

/// A trade that cannot be appended because earlier ones are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeGap {
    /// The trade id that must come next.
    pub expected: TradeId,
    /// The trade id that came.
    pub got: TradeId,
}

impl fmt::Display for TradeGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "settlement gap: expected trade {}, got {}", self.expected, self.got)
    }
}

impl std::error::Error for TradeGap {}

/// The settlement state machine: the ledger of trades, per trade and per user.
#[derive(Clone, Debug, Default)]
pub struct Settlement {
    ledger: Vec<Trade>,
    by_user: FxHashMap<UserId, Vec<TradeId>>,
}

impl Settlement {
    /// An empty ledger.
    pub fn new() -> Settlement {
        Settlement::default()
    }

    /// Appends a trade. A trade at or below the watermark is a duplicate and changes
    /// nothing; one beyond the next id is a gap and is refused (the caller re-requests).
    pub fn apply(&mut self, trade: &Trade) -> Result<Applied, TradeGap> {
        let expected = self.last_trade_id() + 1;
        if trade.trade_id < expected && crate::bugs::planted(crate::bugs::Bug::SettlementNotIdempotent) {
            self.ledger.push(*trade);
            return Ok(Applied::Applied);
        }
        if trade.trade_id < expected {
            debug_assert_eq!(self.ledger[(trade.trade_id - 1) as usize], *trade);
            return Ok(Applied::Duplicate);
        }
        if trade.trade_id != expected {
            return Err(TradeGap { expected, got: trade.trade_id });
        }
        self.ledger.push(*trade);
        self.by_user.entry(trade.buyer).or_default().push(trade.trade_id);
        if trade.seller != trade.buyer {
            self.by_user.entry(trade.seller).or_default().push(trade.trade_id);
        }
        Ok(Applied::Applied)
    }

    /// The watermark: the id of the last settled trade (0 if none).
    pub fn last_trade_id(&self) -> TradeId {
        self.ledger.last().map_or(0, |t| t.trade_id)
    }

    /// Forgets everything after `trade_id` (the planted bug "resume from the checkpoint").
    pub fn forget_after(&mut self, trade_id: TradeId) {
        self.ledger.retain(|t| t.trade_id <= trade_id);
        for ids in self.by_user.values_mut() {
            ids.retain(|id| *id <= trade_id);
        }
    }

    /// All settled trades in `trade_id` order.
    pub fn ledger(&self) -> &[Trade] {
        &self.ledger
    }

    /// The trade ids each user took part in, sorted by user.
    pub fn by_user(&self) -> BTreeMap<UserId, Vec<TradeId>> {
        self.by_user.iter().map(|(u, ids)| (*u, ids.clone())).collect()
    }
}
