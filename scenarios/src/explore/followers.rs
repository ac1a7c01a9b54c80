//! The explorer's judge of the matching engine's followers (market data, Settlement's
//! audit trail). Each is held to the checker's own derivation from the model's event log:
//! what its recovery found, before any catching up, must equal the derivation at the event
//! it recovered to, and the trail must not speak of a trade beyond the ledger recovered
//! beside it; once caught up, both must equal the derivation at the end of the history the
//! crash left.

use crate::checker::{Violation, audit, market_data};
use crate::model::Model;
use engine::audit::AuditState;
use engine::durable::DurablePipeline;
use engine::market_data::{MdConfig, MdState};
use engine::{EventId, TradeId};

/// What the followers' recoveries found, before they pulled anything.
pub struct Recovered {
    md: MdState,
    trail: AuditState,
    /// The last trade of the ledger recovered beside the trail.
    ledger_trade_id: TradeId,
}

impl Recovered {
    /// The followers of a pipeline just recovered (`None`: it runs none).
    pub fn of(p: &DurablePipeline) -> Option<Recovered> {
        let f = p.followers.as_ref()?;
        Some(Recovered {
            md: f.market_data.inner().state().clone(),
            trail: f.audit.inner().state().clone(),
            ledger_trade_id: p.settlement.settlement().last_trade_id(),
        })
    }
}

/// The derivations at every event of the whole workload's model.
pub struct Truth {
    md: Vec<MdState>,
    trail: Vec<AuditState>,
}

impl Truth {
    /// Derives both from the model of the whole workload (every shorter history's event
    /// log is a prefix of its log).
    pub fn new(model: &Model, config: MdConfig) -> Truth {
        Truth { md: market_data::derive_all(model, config), trail: audit::derive_all(model) }
    }

    /// Judges the followers as their recoveries found them.
    pub fn judge_recovered(&self, recovered: &Recovered) -> Result<(), Violation> {
        let at = recovered.md.last_event_id;
        self.md_at(&recovered.md, at, Some(0))?;
        self.trail_at(&recovered.trail, recovered.trail.last_event_id, Some(0))?;
        if recovered.trail.last_trade_id > recovered.ledger_trade_id {
            return Err(Violation::AuditDiverged {
                recovery: Some(0),
                at: recovered.trail.last_event_id,
                field: "last trade in the trail".into(),
                expected: format!("at most the ledger's, {}", recovered.ledger_trade_id),
                actual: recovered.trail.last_trade_id.to_string(),
            });
        }
        Ok(())
    }

    /// Judges the followers of `p`, caught up, once the history holds `events` events.
    pub fn judge_caught_up(&self, p: &DurablePipeline, events: EventId) -> Result<(), Violation> {
        let Some(f) = &p.followers else { return Ok(()) };
        self.md_at(f.market_data.inner().state(), events, None)?;
        self.trail_at(f.audit.inner().state(), events, None)
    }

    /// `got` must be the derivation at event `at`.
    fn md_at(&self, got: &MdState, at: EventId, recovery: Option<usize>) -> Result<(), Violation> {
        let found = match self.md.get(at as usize) {
            None => Some(("last event id".into(), format!("at most {}", self.md.len() - 1), at.to_string())),
            Some(want) => market_data::difference(want, got),
        };
        match found {
            None => Ok(()),
            Some((field, expected, actual)) => {
                Err(Violation::MarketDataDiverged { recovery, at, field, expected, actual })
            }
        }
    }

    /// `got` must be the derived trail at event `at`.
    fn trail_at(&self, got: &AuditState, at: EventId, recovery: Option<usize>) -> Result<(), Violation> {
        let found = match self.trail.get(at as usize) {
            None => {
                Some(("last event id".into(), format!("at most {}", self.trail.len() - 1), at.to_string()))
            }
            Some(want) if want.last_event_id != got.last_event_id => {
                Some(("last event id".into(), want.last_event_id.to_string(), got.last_event_id.to_string()))
            }
            Some(want) => audit::difference(want, got),
        };
        match found {
            None => Ok(()),
            Some((field, expected, actual)) => {
                Err(Violation::AuditDiverged { recovery, at, field, expected, actual })
            }
        }
    }
}
