//! The observer: asks every service for its status and tells when all three (and the
//! replica and market data, if the world has them) have converged. `rounds` counts
//! completed observation rounds, so that a verdict formed before the last command is not
//! used. In worlds with market data or the audit trail it also queries them, as a client
//! would (`queries`).

use super::queries;
use super::services::{market_data_addr, replica_addr};
use super::{Shared, lock};
use engine::service::{Request, Response, Status, rpc};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What the observer watches besides the three core services.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    /// The replica.
    pub(crate) replica: bool,
    /// Market data.
    pub(crate) market_data: bool,
    /// Settlement's audit trail.
    pub(crate) audit: bool,
    /// The markets' symbols (what market data is asked about).
    pub(crate) symbols: Vec<engine::SymbolId>,
}

/// Creates the observer node.
pub(crate) fn spawn(handle: &Handle, shared: &Arc<Shared>, watch: Watch) {
    let shared = shared.clone();
    handle
        .create_node()
        .name("observer")
        .ip([10, 0, 2, 1].into())
        .init(move || {
            let (shared, watch) = (shared.clone(), watch.clone());
            async move { run(shared, watch).await }
        })
        .build();
}

async fn run(shared: Arc<Shared>, watch: Watch) {
    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 2, 1], 9000))).await else {
        return;
    };
    loop {
        let mut statuses = Vec::new();
        let replica = watch.replica.then(replica_addr);
        let market_data = watch.market_data.then(market_data_addr);
        let now = *lock(&shared.directory);
        let mut answers = Vec::new();
        let members =
            [now.ubscore, now.matching, now.settlement].into_iter().chain(replica).chain(market_data);
        for addr in members {
            let answer = match rpc::call(&ep, addr, &Request::Status, Duration::from_millis(100)).await {
                Some(Response::Status(s)) => Some(s),
                _ => None,
            };
            answers.push(answer);
            statuses.extend(answer);
        }
        *lock(&shared.statuses) = (shared.rounds.load(Ordering::SeqCst) + 1, answers.clone());
        let ok = answers.iter().all(Option::is_some) && converged(&statuses, &watch);
        let round = shared.rounds.load(Ordering::SeqCst);
        let matching_event = answers.get(1).copied().flatten().map_or(0, |m| m.event_id);
        queries::ask(&ep, &shared, &watch, round, matching_event, now.settlement).await;
        if shared.final_asked.load(Ordering::SeqCst) && !shared.final_done.load(Ordering::SeqCst) {
            queries::final_round(&ep, &shared, &watch, matching_event, now.settlement).await;
            shared.final_done.store(true, Ordering::SeqCst);
        }
        *lock(&shared.last_statuses) = format!("{statuses:?}");
        shared.converged.store(ok, Ordering::SeqCst);
        shared.rounds.fetch_add(1, Ordering::SeqCst);
        madsim::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every status agrees (in the order ubscore, matching, settlement, then the
/// replica and market data if present): UBSCore's log consumed and its events applied,
/// every trade settled (and, with the audit trail, every event in it), the replica holding
/// UBSCore's log and the primary's events, market data holding the primary's events.
fn converged(statuses: &[Status], watch: &Watch) -> bool {
    let [u, m, s, extra @ ..] = statuses else { return false };
    let mut extra = extra.iter();
    let core = u.ubs_seq == m.ubs_seq && u.event_id == m.event_id && m.trade_id == s.trade_id;
    let audit_ok = !watch.audit || s.event_id == m.event_id;
    let replica_ok =
        !watch.replica || extra.next().is_some_and(|r| r.ubs_seq == u.ubs_seq && r.event_id == m.event_id);
    let market_data_ok = !watch.market_data || extra.next().is_some_and(|d| d.event_id == m.event_id);
    core && audit_ok && replica_ok && market_data_ok
}
