//! The observer: asks every service for its status and tells when all three (and the
//! replica and market data, if the world has them) have converged. `rounds` counts
//! completed observation rounds, so that a verdict formed before the last command is not
//! used. In worlds with market data it also reads the ticks served, as a client would.

use super::services::{market_data_addr, replica_addr};
use super::{Shared, lock};
use engine::service::{Request, Response, Status, rpc};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Creates the observer node.
pub(crate) fn spawn(handle: &Handle, shared: &Arc<Shared>, replica: bool, market_data: bool) {
    let shared = shared.clone();
    handle
        .create_node()
        .name("observer")
        .ip([10, 0, 2, 1].into())
        .init(move || {
            let shared = shared.clone();
            async move { run(shared, replica, market_data).await }
        })
        .build();
}

async fn run(shared: Arc<Shared>, replica: bool, market_data: bool) {
    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 2, 1], 9000))).await else {
        return;
    };
    loop {
        let mut statuses = Vec::new();
        let replica = replica.then(replica_addr);
        let market_data = market_data.then(market_data_addr);
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
        let ok = answers.iter().all(Option::is_some)
            && converged(&statuses, replica.is_some(), market_data.is_some());
        if let Some(addr) = market_data {
            read_ticks(&ep, addr, &shared).await;
        }
        *lock(&shared.last_statuses) = format!("{statuses:?}");
        shared.converged.store(ok, Ordering::SeqCst);
        shared.rounds.fetch_add(1, Ordering::SeqCst);
        madsim::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether every status agrees (in the order ubscore, matching, settlement, then the
/// replica and market data if present): UBSCore's log consumed and its events applied,
/// every trade settled, the replica holding UBSCore's log and the primary's events, market
/// data holding the primary's events.
fn converged(statuses: &[Status], replica: bool, market_data: bool) -> bool {
    let [u, m, s, extra @ ..] = statuses else { return false };
    let mut extra = extra.iter();
    let core = u.ubs_seq == m.ubs_seq && u.event_id == m.event_id && m.trade_id == s.trade_id;
    let replica_ok =
        !replica || extra.next().is_some_and(|r| r.ubs_seq == u.ubs_seq && r.event_id == m.event_id);
    let market_data_ok = !market_data || extra.next().is_some_and(|d| d.event_id == m.event_id);
    core && replica_ok && market_data_ok
}

/// Asks market data for the ticks after the last one served, and keeps what it answers.
async fn read_ticks(ep: &Endpoint, addr: SocketAddr, shared: &Shared) {
    let after = lock(&shared.served_ticks).last().map_or(0, |t| t.trade_id);
    let request = Request::Ticks { after, max: 256 };
    if let Some(Response::Ticks(ticks)) = rpc::call(ep, addr, &request, Duration::from_millis(100)).await {
        lock(&shared.served_ticks).extend(ticks);
    }
}
