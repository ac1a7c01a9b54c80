//! The end of a run: the services recovered from their disks after the final power-off
//! must hold exactly the model's state, the ME's event log and the settlement ledger must
//! equal the model's, and the invariants must hold.

use super::{ExchangeView, Violation, check_state, first_difference, view_difference};
use crate::model::Model;
use engine::durable::{DurableMatching, DurableSettlement, DurableUbs};

/// Judges the final recovered state against the model that replayed the whole history.
pub fn check(
    ubs: &DurableUbs,
    me: &DurableMatching,
    settlement: &DurableSettlement,
    model: &Model,
) -> Result<(), Violation> {
    let view = ExchangeView::of_parts(ubs.core(), me.engine(), settlement.durable_trade_id());
    check_state(&view).map_err(|detail| Violation::Invariant { detail })?;
    if let Some((field, expected, actual)) = view_difference(&ExchangeView::of_model(model), &view) {
        return Err(Violation::StateMismatch { field: field.into(), expected, actual });
    }
    let index = me.engine().index_entries();
    let mut resting: Vec<_> = view.books.values().flatten().map(|o| (o.order_id, o.symbol)).collect();
    resting.sort_unstable();
    if index != resting {
        return Err(Violation::StateMismatch {
            field: "order index".into(),
            expected: format!("{resting:?}"),
            actual: format!("{index:?}"),
        });
    }
    let events =
        me.events_after(0, usize::MAX).map_err(|e| Violation::Unrecoverable { error: e.to_string() })?;
    same_tail("me events", model.events(), &events, |e| e.event_id)?;
    same_tail("settlement ledger", model.ledger(), settlement.settlement().ledger(), |t| t.trade_id)
}

/// A log the engine still keeps (retention may have removed its oldest entries) must equal
/// the model's log from its first kept id to the end.
fn same_tail<T: PartialEq + std::fmt::Debug>(
    log: &str,
    model: &[T],
    kept: &[T],
    id: impl Fn(&T) -> u64,
) -> Result<(), Violation> {
    let from = kept.first().map_or(model.len(), |first| (id(first) as usize).saturating_sub(1));
    let want = model.get(from..).unwrap_or_default();
    first_difference(log, want, kept).map_err(|detail| Violation::LogMismatch {
        log: log.into(),
        detail: if from > 0 {
            format!("{detail} (the engine keeps entries from id {})", from + 1)
        } else {
            detail
        },
    })
}
