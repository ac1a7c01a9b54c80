//! The checker: the judge of every run. `history` holds the agreed history against what the
//! clients sent and were told, `recovery` every recovery against the model at its point,
//! `final_state` the end state, `invariants` the rules any state must keep; every finding
//! is a typed [`Violation`].

pub mod archive;
#[cfg(madsim)]
pub mod audit;
pub mod final_state;
pub mod history;
#[cfg(madsim)]
pub mod hygiene;
mod invariants;
#[cfg(madsim)]
pub mod market_data;
#[cfg(madsim)]
pub mod policy;
#[cfg(madsim)]
pub mod recovery;
pub mod replica;
mod view;
mod violation;

pub use invariants::{check_event_log, check_state};
pub use view::ExchangeView;
pub use violation::Violation;

#[cfg(madsim)]
pub use judge::judge;

#[cfg(madsim)]
mod judge;

use crate::model::Model;
use engine::Pipeline;
use std::fmt::Debug;

/// The newest event that an answer `pick` selects was as of, among the answers given
/// before `at_ms`: a service recovering at `at_ms` must hold at least that much, since it
/// answers only from what is durable.
#[cfg(madsim)]
fn served_before(
    answers: &[sim::world::Answered],
    at_ms: u64,
    pick: impl Fn(&sim::world::Served) -> Option<u64>,
) -> Option<u64> {
    answers.iter().filter(|a| a.at_ms < at_ms).filter_map(|a| pick(&a.answer)).max()
}

/// The first difference between two sequences or values, described.
pub fn first_difference<T: PartialEq + Debug>(
    what: &str,
    expected: &[T],
    actual: &[T],
) -> Result<(), String> {
    if let Some(i) = (0..expected.len().min(actual.len())).find(|i| expected[*i] != actual[*i]) {
        return Err(format!(
            "{what}[{i}]:\n  expected (model): {:?}\n  actual (engine):  {:?}",
            expected[i], actual[i]
        ));
    }
    if expected.len() != actual.len() {
        return Err(format!("{what}: model has {} entries, engine has {}", expected.len(), actual.len()));
    }
    Ok(())
}

/// Compares everything the engine (built `with_logs`) and the model hold: history,
/// event log, ledger and the full state view. Returns the first difference.
pub fn compare(engine: &Pipeline, model: &Model) -> Result<(), String> {
    first_difference("ubscore history", model.history(), engine.history())?;
    first_difference("me events", model.events(), engine.events())?;
    first_difference("settlement ledger", model.ledger(), engine.settlement().ledger())?;
    let (want, got) = (ExchangeView::of_model(model), ExchangeView::of_engine(engine));
    match view_difference(&want, &got) {
        Some((name, w, g)) => Err(format!("state.{name}:\n  expected (model): {w}\n  actual (engine):  {g}")),
        None => Ok(()),
    }
}

/// The first field in which two views differ: (name, expected, actual).
pub fn view_difference(want: &ExchangeView, got: &ExchangeView) -> Option<(&'static str, String, String)> {
    if want == got {
        return None;
    }
    let fields: [(&str, String, String); 7] = [
        ("balances", format!("{:?}", want.balances), format!("{:?}", got.balances)),
        ("supply", format!("{:?}", want.supply), format!("{:?}", got.supply)),
        ("books", format!("{:?}", want.books), format!("{:?}", got.books)),
        ("locks", format!("{:?}", want.locks), format!("{:?}", got.locks)),
        ("next_ubs_seq", want.next_ubs_seq.to_string(), got.next_ubs_seq.to_string()),
        ("events", want.events.to_string(), got.events.to_string()),
        ("trades", want.trades.to_string(), got.trades.to_string()),
    ];
    fields.into_iter().find(|(_, w, g)| w != g)
}
