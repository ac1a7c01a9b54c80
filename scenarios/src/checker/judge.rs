//! The verdict on a finished world: the world's own problems first, then the history
//! against the clients, every recovery against the model at its point, the acknowledgements
//! and the final state.

use super::recovery::RecoveryPoints;
use super::{Violation, archive, audit, final_state, history, hygiene, market_data, policy, replica};
use crate::model::Model;
use engine::durable::UbsEntry;
use engine::{Markets, UbsRecord};
use sim::world::{Problem, WorldResult};

/// The first violation of a finished world, if any. The oracle speaks first: the history
/// the disk recorded, judged against the clients and the model, with every recovery; then
/// what the world saw (a service failing, no convergence); then the final state.
pub fn judge(result: &WorldResult, markets: &Markets) -> Result<(), Violation> {
    // Under media faults, a data violation means the damage went unnoticed.
    let media = result.faults.keys().any(|k| k.starts_with("media_"));
    judge_all(result, markets).map_err(|v| {
        if media && v.is_data_loss_or_change() {
            Violation::SilentCorruption { found: Box::new(v) }
        } else {
            v
        }
    })
}

fn judge_all(result: &WorldResult, markets: &Markets) -> Result<(), Violation> {
    let entries = archive::history(&result.ubs_wal_archive)?;
    let history: Vec<UbsRecord> = entries
        .iter()
        .filter_map(|e| match e {
            UbsEntry::Command(r) => Some(*r),
            UbsEntry::Event(_) => None,
        })
        .collect();
    history::check_sent(&history, &result.sent)?;
    let model = replay(result, markets, &entries)?;
    history::check_acks(&history, &result.acked)?;
    // A replica that went wrong may also fail loudly or stall: its chain speaks first.
    if let Some(seen) = &result.replica {
        replica::check_links(&seen.links, &model)?;
    }
    // So may market data: what it recovered and served speaks first too.
    if let Some(seen) = &result.market_data {
        let (ticks, complete) = (&seen.served_ticks, seen.ticks_complete);
        market_data::check(&result.recoveries, ticks, complete, &result.served, seen.config, &model)?;
    }
    // And Settlement's audit trail (kept when the markets publish order events).
    if markets.order_events() {
        audit::check(&result.recoveries, &result.served, &model)?;
    }
    if let Some(problem) = result.problems.first() {
        return Err(match problem.clone() {
            Problem::ServiceError { node, error } => Violation::ServiceError { service: node, error },
            Problem::Liveness(detail) => Violation::Liveness { detail },
            Problem::QueryRefused(detail) => Violation::QueryRefused { detail },
            Problem::FinalRecovery(error) => Violation::Unrecoverable { error },
            Problem::Timeout(detail) => Violation::Timeout { detail },
        });
    }
    if !result.corruption_detected.is_empty() {
        // A service refused to go on, naming the damage inflicted on its disk: allowed under
        // media faults. What was durable and acknowledged is judged above; there is no
        // final state to judge.
        return Ok(());
    }
    let f = result.final_state.as_ref().ok_or_else(|| Violation::Unrecoverable {
        error: "the services could not be recovered from disk".into(),
    })?;
    final_state::check(&f.ubs, &f.me, &f.settlement, &model)?;
    if let Some(md) = &f.market_data {
        market_data::check_complete(md.inner().state(), &model)?;
    }
    if markets.order_events() {
        audit::check_complete(&result.recoveries, &model)?;
    }
    policy::check_snapshots(result, f)?;
    hygiene::check(result)?;
    match &result.replica {
        Some(seen) if !seen.promoted => replica::check_state(seen.last_state.as_ref(), &model),
        _ => Ok(()),
    }
}

/// Replays the history into the model. UBSCore's WAL interleaves commands with the ME
/// events it applied; each command's outcome depends on the events applied before it, so
/// the model replays both. On the way, every recovery is judged at its point of history.
fn replay(result: &WorldResult, markets: &Markets, entries: &[UbsEntry]) -> Result<Model, Violation> {
    let mut points = RecoveryPoints::new(&result.recoveries)?;
    let mut model = Model::deferred(markets.clone());
    points.check_at_wal(&model, 0)?;
    points.check_at_ubs_seq(&model, 0)?;
    for (i, entry) in entries.iter().enumerate() {
        history::replay_entry(&mut model, entry)?;
        if let UbsEntry::Command(r) = entry {
            points.check_at_ubs_seq(&model, r.seq)?;
        }
        points.check_at_wal(&model, i as u64 + 1)?;
    }
    points.check_settlement(&model)?;
    points.check_all_placed(entries.len() as u64, model.history().len() as u64)?;
    Ok(model)
}
