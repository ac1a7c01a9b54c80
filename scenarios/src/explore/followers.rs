//! The explorer's judge of the matching engine's followers (market data, Settlement's
//! audit trail). Each is held to the checker's own derivation from the model's event log:
//! what its recovery found, before any catching up, must equal the derivation at the event
//! it recovered to (never beyond the history recovered beside it), and the trail must not
//! speak of a trade beyond the ledger recovered beside it; once caught up, both must equal
//! the derivation at the end of the history the crash left. Both are asked every query
//! each time, and their answers held to the same derivation ([`super::queries`]).

use super::queries::{Answers, Queries};
use crate::checker::{Violation, audit, market_data};
use crate::model::Model;
use engine::audit::AuditState;
use engine::durable::DurablePipeline;
use engine::market_data::{MdConfig, MdState};
use engine::{Command, EventId, Markets, TradeId};

/// What the followers' recoveries found, before they pulled anything.
pub struct Recovered {
    md: MdState,
    trail: AuditState,
    /// The last trade of the ledger recovered beside the trail.
    ledger_trade_id: TradeId,
    /// What they answered, as recovered.
    answers: Answers,
}

impl Recovered {
    /// The followers of a pipeline just recovered, asked `queries` (`None`: it runs none).
    pub fn of(p: &DurablePipeline, queries: &Queries) -> Option<Recovered> {
        let f = p.followers.as_ref()?;
        Some(Recovered {
            md: f.market_data.inner().state().clone(),
            trail: f.audit.inner().state().clone(),
            ledger_trade_id: p.settlement.settlement().last_trade_id(),
            answers: Answers::ask(queries, p)?,
        })
    }

    /// What each follower's recovery holds (before any pull), to be held against what it
    /// served before the crash.
    pub fn marks(&self) -> super::served::Marks {
        super::served::Marks([self.md.last_event_id, self.trail.last_event_id])
    }
}

/// How a follower's state differs from the derivation: (field, expected, actual).
type Difference = (String, String, String);

/// The derivations at every event of the whole workload's model.
pub struct Truth {
    md: Vec<MdState>,
    trail: Vec<AuditState>,
    /// What the followers are asked.
    pub queries: Queries,
}

impl Truth {
    /// Derives both from the model of the whole workload (every shorter history's event
    /// log is a prefix of its log).
    /// The followers are asked every query `markets` and `commands` allow.
    pub fn new(model: &Model, config: MdConfig, markets: &Markets, commands: &[Command]) -> Truth {
        let md = market_data::derive_all(model, config);
        // The derivation starts with the state before any event: it is never empty.
        let queries = md.last().map(|end| Queries::of(markets, commands, end)).unwrap_or_default();
        Truth { md, trail: audit::derive_all(model), queries }
    }

    /// Judges the followers as their recoveries found them, beside a recovered history
    /// that makes `events` events.
    pub fn judge_recovered(&self, recovered: &Recovered, events: EventId) -> Result<(), Violation> {
        let md_at = recovered.md.last_event_id;
        if let Some((field, expected, actual)) =
            at(&self.md, &recovered.md, md_at, events, market_data::difference)
        {
            return Err(Violation::MarketDataDiverged {
                recovery: Some(0),
                at: md_at,
                field,
                expected,
                actual,
            });
        }
        let trail_at = recovered.trail.last_event_id;
        if let Some((field, expected, actual)) =
            at(&self.trail, &recovered.trail, trail_at, events, trail_difference)
        {
            return Err(Violation::AuditDiverged {
                recovery: Some(0),
                at: trail_at,
                field,
                expected,
                actual,
            });
        }
        audit::ahead_of_ledger(Some(0), &recovered.trail, recovered.ledger_trade_id).map_or(Ok(()), Err)?;
        // Both states equal the derivations at their events (`at` above found both): their
        // answers must too.
        if let (Some(md), Some(trail)) = (self.md.get(md_at as usize), self.trail.get(trail_at as usize)) {
            recovered.answers.judge_market_data(md, Some(0))?;
            recovered.answers.judge_trail(trail, Some(0))?;
        }
        Ok(())
    }

    /// Judges the followers of `p`, caught up, once the history makes `events` events.
    pub fn judge_caught_up(&self, p: &DurablePipeline, events: EventId) -> Result<(), Violation> {
        let Some(f) = &p.followers else { return Ok(()) };
        if let Some((field, expected, actual)) =
            at(&self.md, f.market_data.inner().state(), events, events, market_data::difference)
        {
            return Err(Violation::MarketDataDiverged {
                recovery: None,
                at: events,
                field,
                expected,
                actual,
            });
        }
        if let Some((field, expected, actual)) =
            at(&self.trail, f.audit.inner().state(), events, events, trail_difference)
        {
            return Err(Violation::AuditDiverged { recovery: None, at: events, field, expected, actual });
        }
        let (Some(answers), Some(md), Some(trail)) =
            (Answers::ask(&self.queries, p), self.md.get(events as usize), self.trail.get(events as usize))
        else {
            return Ok(());
        };
        answers.judge_market_data(md, None)?;
        answers.judge_trail(trail, None)
    }
}

/// How `got` differs from the derivation at event `at` (`truth[at]`), which must not lie
/// beyond `most` events.
fn at<S>(
    truth: &[S],
    got: &S,
    at: EventId,
    most: EventId,
    differ: fn(&S, &S) -> Option<Difference>,
) -> Option<Difference> {
    if at > most {
        let expected = format!("at most {most} (the events of the history recovered beside it)");
        return Some(("last event id".into(), expected, at.to_string()));
    }
    match truth.get(at as usize) {
        None => Some(("last event id".into(), format!("at most {}", truth.len() - 1), at.to_string())),
        Some(want) => differ(want, got),
    }
}

/// The trail's difference, its event first (the checker's compares trades and orders).
fn trail_difference(want: &AuditState, got: &AuditState) -> Option<Difference> {
    if want.last_event_id != got.last_event_id {
        return Some(("last event id".into(), want.last_event_id.to_string(), got.last_event_id.to_string()));
    }
    audit::difference(want, got)
}
