//! Settlement's audit trail judged against the model: every recovery of it at its point of
//! the model's event log, never ahead of the ledger recovered beside it, and complete at
//! the end. The expected trail is derived here from the model's own event log, with its
//! own code: nothing of the engine's audit trail is reused.

use super::Violation;
use crate::model::Model;
use engine::audit::{AuditEntry, AuditState, OrderAudit};
use engine::service::Recovered;
use engine::{EventId, MeEvent, MeEventKind, OrderId, UserId};
use sim::world::{Answered, RecoveryRecord, Served};
use std::collections::BTreeMap;

/// The model's trail after one more event.
fn step(trail: &mut AuditState, event: &MeEvent) {
    let mut note = |order_id: OrderId, user: UserId, entry: AuditEntry| {
        let order = trail.orders.entry(order_id).or_insert(OrderAudit { user, entries: Vec::new() });
        order.entries.push((event.event_id, entry));
    };
    match event.kind {
        MeEventKind::Rested { order_id, user, qty, .. } => note(order_id, user, AuditEntry::Rested { qty }),
        MeEventKind::Trade(t) => {
            for (order_id, user) in [(t.buy_order_id, t.buyer), (t.sell_order_id, t.seller)] {
                note(order_id, user, AuditEntry::Fill { trade_id: t.trade_id, qty: t.qty, price: t.price });
            }
            trail.last_trade_id = t.trade_id;
        }
        MeEventKind::OrderClosed { order_id, user, reason } => {
            note(order_id, user, AuditEntry::Closed { reason })
        }
        MeEventKind::Rejected { order_id, user, reason } => {
            note(order_id, user, AuditEntry::Rejected { reason })
        }
        MeEventKind::CancelRejected { .. } => {}
    }
    trail.last_event_id = event.event_id;
}

fn diverged(
    recovery: Option<usize>,
    at: EventId,
    field: String,
    expected: String,
    actual: String,
) -> Violation {
    Violation::AuditDiverged { recovery, at, field, expected, actual }
}

/// How a query's answer, as of the trail's current event, differs from the model's.
fn answer_differs(trail: &AuditState, q: &Served) -> Option<(String, String, String)> {
    let (field, want, got) = match q {
        Served::AuditOrder { order_id, order, .. } => {
            let want = format!("{:?}", trail.orders.get(order_id));
            (format!("audit of order {order_id} served"), want, format!("{:?}", order.as_ref()))
        }
        Served::AuditUser { user, ids, .. } => {
            let mine = trail.orders.iter().filter(|(_, o)| o.user == *user).map(|(id, _)| *id);
            let want: Vec<OrderId> = mine.collect();
            (format!("orders of user {user} served"), format!("{want:?}"), format!("{ids:?}"))
        }
        Served::Top { .. } | Served::Book { .. } => return None,
    };
    (want != got).then_some((field, want, got))
}

/// The model's trail after each of its events: `[e]` is the trail as of event `e` (`[0]`:
/// before any). For judges that compare many recoveries (explore).
pub fn derive_all(model: &Model) -> Vec<AuditState> {
    let mut trail = AuditState::default();
    let mut out = vec![trail.clone()];
    for event in model.events() {
        step(&mut trail, event);
        out.push(trail.clone());
    }
    out
}

/// The first field in which a recovered trail differs from the model's.
pub(crate) fn difference(want: &AuditState, got: &AuditState) -> Option<(String, String, String)> {
    if want.last_trade_id != got.last_trade_id {
        return Some(("last trade id".into(), want.last_trade_id.to_string(), got.last_trade_id.to_string()));
    }
    let ids = want.orders.keys().chain(got.orders.keys());
    let id = ids.copied().find(|id| want.orders.get(id) != got.orders.get(id))?;
    Some((format!("order {id}"), format!("{:?}", want.orders.get(&id)), format!("{:?}", got.orders.get(&id))))
}

/// A trail recovered beside a ledger must not speak of a trade beyond it (an audit record
/// written before its trade was durable).
pub(crate) fn ahead_of_ledger(
    recovery: Option<usize>,
    trail: &AuditState,
    ledger_trade_id: u64,
) -> Option<Violation> {
    (trail.last_trade_id > ledger_trade_id).then(|| {
        let expected = format!("at most the ledger's, {ledger_trade_id}");
        let actual = trail.last_trade_id.to_string();
        diverged(recovery, trail.last_event_id, "last trade in the trail".into(), expected, actual)
    })
}

/// Every recovered audit trail must be the model's at the event it recovered to, and must
/// not hold a fill of a trade beyond the ledger recovered beside it (an audit record
/// written before its trade was durable).
pub fn check(recoveries: &[RecoveryRecord], queries: &[Answered], model: &Model) -> Result<(), Violation> {
    let mut points: BTreeMap<EventId, Vec<(usize, &AuditState)>> = BTreeMap::new();
    for (i, r) in recoveries.iter().enumerate() {
        if let Recovered::Audit { state, ledger_trade_id, .. } = &r.state {
            if let Some(v) = ahead_of_ledger(Some(i), state, *ledger_trade_id) {
                return Err(v);
            }
            let pick = |a: &Served| match a {
                Served::AuditOrder { as_of, .. } | Served::AuditUser { as_of, .. } => Some(*as_of),
                _ => None,
            };
            if let Some(served) =
                super::served_before(queries, r.at_ms, pick).filter(|e| *e > state.last_event_id)
            {
                let expected = format!("at least {served}, served before it");
                return Err(diverged(
                    Some(i),
                    state.last_event_id,
                    "events".into(),
                    expected,
                    state.last_event_id.to_string(),
                ));
            }
            points.entry(state.last_event_id).or_default().push((i, state));
        }
    }
    let events = model.events();
    if let Some((&at, list)) = points.range(events.len() as u64 + 1..).next() {
        let (expected, actual) = (format!("at most {}", events.len()), at.to_string());
        return Err(diverged(Some(list[0].0), at, "last event id".into(), expected, actual));
    }
    let mut trail = AuditState::default();
    let mut asked: BTreeMap<EventId, Vec<&Served>> = BTreeMap::new();
    for q in queries.iter().map(|a| &a.answer) {
        if let Served::AuditOrder { as_of, .. } | Served::AuditUser { as_of, .. } = q {
            asked.entry(*as_of).or_default().push(q);
        }
    }
    if let Some((&at, list)) = asked.range(events.len() as u64 + 1..).next() {
        let (expected, actual) = (format!("at most event {}", events.len()), format!("{:?}", list[0]));
        return Err(diverged(None, at, "query answered".into(), expected, actual));
    }
    let judge = |trail: &AuditState| -> Result<(), Violation> {
        let at = trail.last_event_id;
        for (i, got) in points.get(&at).into_iter().flatten() {
            if let Some((field, expected, actual)) = difference(trail, got) {
                return Err(diverged(Some(*i), at, field, expected, actual));
            }
        }
        for q in asked.get(&at).into_iter().flatten() {
            if let Some((field, expected, actual)) = answer_differs(trail, q) {
                return Err(diverged(None, at, field, expected, actual));
            }
        }
        Ok(())
    };
    judge(&trail)?;
    for event in events {
        step(&mut trail, event);
        judge(&trail)?;
    }
    Ok(())
}

/// The trail recovered at the end holds every event of the model (the run converged).
pub fn check_complete(recoveries: &[RecoveryRecord], model: &Model) -> Result<(), Violation> {
    let last = recoveries.iter().rev().find_map(|r| match &r.state {
        Recovered::Audit { state, .. } => Some(state.last_event_id),
        _ => None,
    });
    let want = model.events().len() as u64;
    match last {
        Some(got) if got == want => Ok(()),
        got => Err(diverged(
            None,
            got.unwrap_or(0),
            "last event id at the end".into(),
            want.to_string(),
            format!("{got:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CloseReason, RejectReason};

    #[test]
    fn the_derivation_keeps_each_orders_story_and_finds_a_difference() {
        let ev = |event_id, kind| MeEvent { event_id, ubs_seq: event_id, kind };
        let mut trail = AuditState::default();
        step(
            &mut trail,
            &ev(1, MeEventKind::Rejected { order_id: 5, user: 1, reason: RejectReason::ZeroQty }),
        );
        step(
            &mut trail,
            &ev(2, MeEventKind::OrderClosed { order_id: 6, user: 2, reason: CloseReason::Expired }),
        );
        assert_eq!(trail.orders[&5].entries, [(1, AuditEntry::Rejected { reason: RejectReason::ZeroQty })]);
        assert_eq!(trail.last_event_id, 2);
        assert_eq!(difference(&trail, &trail.clone()), None);
        let mut other = trail.clone();
        other.orders.remove(&6);
        let (field, _, actual) = difference(&trail, &other).expect("order 6 is missing");
        assert_eq!((field.as_str(), actual.as_str()), ("order 6", "None"));
    }
}
