//! The end of a run: the services recovered from their disks after the final power-off
//! must hold exactly the model's state, the ME's event log and the settlement ledger must
//! equal the model's, and the invariants must hold.

use super::{ExchangeView, Violation, check_state, first_difference, view_difference};
use crate::model::Model;
use sim::world::FinalState;

/// Judges the final recovered state against the model that replayed the whole history.
pub fn check(f: &FinalState, model: &Model) -> Result<(), Violation> {
    let view = ExchangeView::of_parts(f.ubs.core(), f.me.engine(), f.settlement.durable_trade_id());
    check_state(&view).map_err(|detail| Violation::Invariant { detail })?;
    if let Some((field, expected, actual)) = view_difference(&ExchangeView::of_model(model), &view) {
        return Err(Violation::StateMismatch { field: field.into(), expected, actual });
    }
    let index = f.me.engine().index_entries();
    let mut resting: Vec<_> = view.books.values().flatten().map(|o| (o.order_id, o.symbol)).collect();
    resting.sort_unstable();
    if index != resting {
        return Err(Violation::StateMismatch {
            field: "order index".into(),
            expected: format!("{resting:?}"),
            actual: format!("{index:?}"),
        });
    }
    let log = |log: &'static str| move |detail| Violation::LogMismatch { log: log.into(), detail };
    let events =
        f.me.events_after(0, usize::MAX).map_err(|e| Violation::Unrecoverable { error: e.to_string() })?;
    first_difference("me events", model.events(), &events).map_err(log("me events"))?;
    first_difference("settlement ledger", model.ledger(), f.settlement.settlement().ledger())
        .map_err(log("settlement ledger"))
}
