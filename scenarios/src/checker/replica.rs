//! The hot-standby replica judged against the model: its chained hash at every event it
//! produced, and its state once it caught up. The model's chain is computed here, from the
//! model's own event log, with its own encoder: nothing of the replica's is trusted. The
//! primary's log is held to the model's elsewhere (every recovery and the final state), so
//! a replica that agrees with the model agrees with the primary at every event both made.

use super::Violation;
use crate::model::Model;
use engine::MeEvent;
use engine::matching::MeState;

/// The model's link after each of its events: `links[i]` follows event `i + 1`. A link is
/// xxh3-64 of the event's bincode-2 standard encoding seeded with the link before (0 first).
pub fn model_links(events: &[MeEvent]) -> Vec<u64> {
    let mut prev = 0;
    events
        .iter()
        .map(|e| {
            let bytes = bincode::serde::encode_to_vec(e, bincode::config::standard())
                .expect("an event encodes into a Vec");
            prev = xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, prev);
            prev
        })
        .collect()
}

/// Every `(event_id, link)` the replica reported must be the model's; the first diverging
/// event (lowest id) is reported.
pub fn check_links(links: &[(u64, u64)], model: &Model) -> Result<(), Violation> {
    let want = model_links(model.events());
    let diverged = links
        .iter()
        .filter(|(id, link)| *id == 0 || want.get(*id as usize - 1) != Some(link))
        .min_by_key(|(id, _)| *id);
    let Some(&(event_id, link)) = diverged else { return Ok(()) };
    let expected =
        match (event_id as usize).checked_sub(1).and_then(|i| Some((model.events().get(i)?, want[i]))) {
            Some((event, link)) => format!("{event:?}, link {link:016x}"),
            None => format!("no event {event_id}: the model's log ends at {}", want.len()),
        };
    Err(Violation::ReplicaDiverged { event_id, expected, actual: format!("link {link:016x}") })
}

/// The replica's last reported state (as of the status that told convergence) must be the
/// model's matching state: books, watermarks and the link after the last event.
pub fn check_state(last: Option<&(MeState, u64)>, model: &Model) -> Result<(), Violation> {
    let Some((state, chain)) = last else {
        return Err(mismatch("report", "a state".into(), "none: it never answered a status".into()));
    };
    let last_ubs_seq = model.history().last().map_or(0, |r| r.seq);
    let fields = [
        ("last_ubs_seq", last_ubs_seq, state.last_ubs_seq),
        ("next_event_id", model.events().len() as u64 + 1, state.next_event_id),
        ("next_trade_id", model.ledger().len() as u64 + 1, state.next_trade_id),
        ("chain", model_links(model.events()).last().copied().unwrap_or(0), *chain),
    ];
    for (field, want, got) in fields {
        if want != got {
            return Err(mismatch(field, format!("{want:#x}"), format!("{got:#x}")));
        }
    }
    let books = model.books();
    for symbol in books.keys().chain(state.books.keys()) {
        let want = books.get(symbol).map(Vec::as_slice).unwrap_or_default();
        let got = state.books.get(symbol).map(Vec::as_slice).unwrap_or_default();
        if let Some(i) = (0..want.len().max(got.len())).find(|i| want.get(*i) != got.get(*i)) {
            let field = format!("books[{symbol}][{i}]");
            return Err(mismatch(&field, format!("{:?}", want.get(i)), format!("{:?}", got.get(i))));
        }
    }
    Ok(())
}

fn mismatch(field: &str, expected: String, actual: String) -> Violation {
    Violation::ReplicaDiverged {
        event_id: 0,
        expected: format!("{field}: {expected}"),
        actual: format!("{field}: {actual}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{WorkloadConfig, default_markets, generate};
    use engine::Pipeline;
    use engine::replica::Replica;

    /// A model and the replica fed the same commands' durable records.
    fn fed(commands: usize) -> (Model, Replica, Vec<(u64, u64)>) {
        let mut rng = sim::seed::rng(5, sim::seed::Stream::Workload);
        let commands = generate(&mut rng, &WorkloadConfig { commands, users: 20 });
        let (mut model, mut pipeline) =
            (Model::new(default_markets()), Pipeline::with_logs(default_markets()));
        for c in &commands {
            model.submit(*c);
            pipeline.submit(*c).expect("the pipeline takes the workload");
        }
        let mut replica = Replica::new(default_markets());
        let mut links = Vec::new();
        for r in pipeline.history() {
            replica.apply(r, &mut links).expect("the replica takes the history");
        }
        (model, replica, links)
    }

    #[test]
    fn the_replica_links_every_event_as_the_checker_does() {
        let (model, replica, links) = fed(600);
        let want = model_links(model.events());
        assert!(want.len() > 100, "the workload makes events ({})", want.len());
        let got: Vec<u64> = links.iter().map(|(_, l)| *l).collect();
        assert_eq!(got, want, "engine and checker chain the same bytes the same way");
        assert_eq!(
            links.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            (1..=want.len() as u64).collect::<Vec<_>>()
        );
        check_links(&links, &model).unwrap();
        let state = (replica.engine().export_state(), replica.chain());
        check_state(Some(&state), &model).unwrap();
    }

    #[test]
    fn the_first_wrong_link_and_a_wrong_watermark_are_named() {
        let (model, replica, mut links) = fed(300);
        let n = links.len();
        links[n - 1].1 ^= 1;
        links[n / 2].1 ^= 1;
        match check_links(&links, &model) {
            Err(Violation::ReplicaDiverged { event_id, .. }) => assert_eq!(event_id, links[n / 2].0),
            other => panic!("{other:?}"),
        }
        let beyond = [(n as u64 + 1, 7)];
        assert!(matches!(check_links(&beyond, &model), Err(Violation::ReplicaDiverged { .. })));
        let mut state = replica.engine().export_state();
        state.next_event_id += 1;
        match check_state(Some(&(state, replica.chain())), &model) {
            Err(Violation::ReplicaDiverged { event_id: 0, expected, .. }) => {
                assert!(expected.starts_with("next_event_id"), "{expected}")
            }
            other => panic!("{other:?}"),
        }
        assert!(check_state(None, &model).is_err(), "a replica that never reported is not judged fine");
    }
}
