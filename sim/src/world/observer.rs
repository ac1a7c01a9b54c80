//! The observer: asks every service for its status and tells when all three (and the
//! replica, if the world has one) have converged. `rounds` counts completed observation rounds, so that a verdict formed
//! before the last command is not used.

use super::services::replica_addr;
use super::{Shared, lock};
use engine::service::{Request, Response, rpc};
use madsim::net::Endpoint;
use madsim::runtime::Handle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Creates the observer node.
pub(crate) fn spawn(handle: &Handle, shared: &Arc<Shared>, replica: bool) {
    let shared = shared.clone();
    handle
        .create_node()
        .name("observer")
        .ip([10, 0, 2, 1].into())
        .init(move || {
            let shared = shared.clone();
            async move { run(shared, replica).await }
        })
        .build();
}

async fn run(shared: Arc<Shared>, replica: bool) {
    let Ok(ep) = Endpoint::bind(SocketAddr::from(([10, 0, 2, 1], 9000))).await else {
        return;
    };
    loop {
        let mut statuses = Vec::new();
        let replica = replica.then(replica_addr);
        let now = *lock(&shared.directory);
        let mut answers = Vec::new();
        for addr in [now.ubscore, now.matching, now.settlement].into_iter().chain(replica) {
            let answer = match rpc::call(&ep, addr, &Request::Status, Duration::from_millis(100)).await {
                Some(Response::Status(s)) => Some(s),
                _ => None,
            };
            answers.push(answer);
            statuses.extend(answer);
        }
        *lock(&shared.statuses) = (shared.rounds.load(Ordering::SeqCst) + 1, answers);
        let ok = match statuses.as_slice() {
            [u, m, s] => {
                replica.is_none()
                    && u.ubs_seq == m.ubs_seq
                    && u.event_id == m.event_id
                    && m.trade_id == s.trade_id
            }
            // The replica has consumed UBSCore's whole log and produced the primary's events.
            [u, m, s, r] => {
                u.ubs_seq == m.ubs_seq
                    && u.event_id == m.event_id
                    && m.trade_id == s.trade_id
                    && r.ubs_seq == u.ubs_seq
                    && r.event_id == m.event_id
            }
            _ => false,
        };
        *lock(&shared.last_statuses) = format!("{statuses:?}");
        shared.converged.store(ok, Ordering::SeqCst);
        shared.rounds.fetch_add(1, Ordering::SeqCst);
        madsim::time::sleep(Duration::from_millis(25)).await;
    }
}
