//! The observer's queries, as a client would make them: market data's ticks (each round,
//! after the last one served), a top of book and an L2 book as of an event, and the audit
//! trail of an order and of a user. Every answer is kept, with the event it is as of, for
//! the checker to hold against the model. The choice of symbol, event, order and user
//! follows the round number, so it is deterministic.

use super::observer::Watch;
use super::services::market_data_addr;
use super::{Answered, Served, Shared, lock};
use engine::service::{Request, Response, rpc};
use madsim::net::Endpoint;
use std::net::SocketAddr;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_millis(100);

/// One round of queries. `matching_event`: the matching engine's last durable event this
/// round (books are asked as of a share of it); `settlement`: where Settlement is.
pub(crate) async fn ask(
    ep: &Endpoint,
    shared: &Shared,
    watch: &Watch,
    round: usize,
    matching_event: u64,
    settlement: SocketAddr,
) {
    if watch.market_data && !watch.symbols.is_empty() {
        let md = market_data_addr();
        read_ticks(ep, md, shared).await;
        let symbol = watch.symbols[round % watch.symbols.len()];
        if let Some(Response::Top { as_of, top }) = rpc::call(ep, md, &Request::Top { symbol }, TIMEOUT).await
        {
            keep(shared, Served::Top { symbol, as_of, top });
        }
        let asked = matching_event * (round % 4) as u64 / 3;
        let request = Request::Book { symbol, as_of: asked };
        if let Some(Response::Book { as_of, book }) = rpc::call(ep, md, &request, TIMEOUT).await {
            keep(shared, Served::Book { symbol, as_of, book });
        }
    }
    if watch.audit {
        // Early orders (whose stories are long) on even rounds, any order (or none yet) on odd.
        let span = if round % 2 == 0 { 500 } else { 2_000 };
        let order_id = (round as u64 * 7_919) % span + 1;
        let request = Request::AuditOrder { order_id };
        if let Some(Response::Audit { as_of, order }) = rpc::call(ep, settlement, &request, TIMEOUT).await {
            keep(shared, Served::AuditOrder { order_id, as_of, order });
        }
        let user = round as u64 % 50;
        if let Some(Response::Orders { as_of, ids }) =
            rpc::call(ep, settlement, &Request::AuditUser { user }, TIMEOUT).await
        {
            keep(shared, Served::AuditUser { user, as_of, ids });
        }
    }
}

/// Keeps an answer with the simulated time it came.
fn keep(shared: &Shared, answer: Served) {
    let at_ms = shared.start.elapsed().as_millis() as u64;
    lock(&shared.served).push(Answered { at_ms, answer });
}

/// Asks market data for the ticks after the last one served, and keeps what it answers.
async fn read_ticks(ep: &Endpoint, addr: SocketAddr, shared: &Shared) {
    let after = lock(&shared.served_ticks).last().map_or(0, |t| t.trade_id);
    let request = Request::Ticks { after, max: 256 };
    if let Some(Response::Ticks(ticks)) = rpc::call(ep, addr, &request, TIMEOUT).await {
        lock(&shared.served_ticks).extend(ticks);
    }
}
