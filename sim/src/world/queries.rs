//! The observer's queries, as a client would make them: market data's ticks (each round,
//! after the last one served), a top of book and an L2 book as of an event, and the audit
//! trail of an order and of a user. Every answer is kept, with the event it is as of, for
//! the checker to hold against the model. The choice of symbol, event, order and user
//! follows the round number, so it is deterministic. After convergence one last round asks
//! everything again and holds the services to answering it (`final_round`).

use super::observer::Watch;
use super::services::market_data_addr;
use super::{Answered, Problem, Served, Shared, lock};
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

/// The strict round after convergence (no faults left): every query must get the answer of
/// its kind, not an error or silence; market data's ticks are read until none is left.
/// What is answered is kept for the checker as in any round; a refusal is a
/// `QueryRefused` problem (a service that answers nothing would otherwise pass, since only
/// answers are judged).
pub(crate) async fn final_round(
    ep: &Endpoint,
    shared: &Shared,
    watch: &Watch,
    matching_event: u64,
    settlement: SocketAddr,
) {
    let refused = |who: &str, request: &Request, answer: Option<Response>| {
        let answer = answer.map_or_else(|| "no answer".to_string(), |a| format!("{a:?}"));
        let detail = format!("after convergence, {who} answered {request:?} with {answer}");
        lock(&shared.errors).push(Problem::QueryRefused(detail));
    };
    if watch.market_data {
        let md = market_data_addr();
        if drain_ticks(ep, md, shared, &refused).await {
            shared.ticks_complete.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        for &symbol in &watch.symbols {
            let request = Request::Top { symbol };
            match strictly(ep, md, &request).await {
                Some(Response::Top { as_of, top }) => keep(shared, Served::Top { symbol, as_of, top }),
                other => refused("market data", &request, other),
            }
            let request = Request::Book { symbol, as_of: matching_event };
            match strictly(ep, md, &request).await {
                Some(Response::Book { as_of, book }) => keep(shared, Served::Book { symbol, as_of, book }),
                other => refused("market data", &request, other),
            }
        }
    }
    if watch.audit {
        let request = Request::AuditOrder { order_id: 1 };
        match strictly(ep, settlement, &request).await {
            Some(Response::Audit { as_of, order }) => {
                keep(shared, Served::AuditOrder { order_id: 1, as_of, order })
            }
            other => refused("settlement", &request, other),
        }
        let request = Request::AuditUser { user: 0 };
        match strictly(ep, settlement, &request).await {
            Some(Response::Orders { as_of, ids }) => keep(shared, Served::AuditUser { user: 0, as_of, ids }),
            other => refused("settlement", &request, other),
        }
    }
}

/// Reads ticks after the last one served until an answer has none (bounded): whether it
/// got to the end.
async fn drain_ticks(
    ep: &Endpoint,
    md: SocketAddr,
    shared: &Shared,
    refused: &impl Fn(&str, &Request, Option<Response>),
) -> bool {
    const MAX_READS: usize = 100_000;
    for _ in 0..MAX_READS {
        let after = lock(&shared.served_ticks).last().map_or(0, |t| t.trade_id);
        let request = Request::Ticks { after, max: 256 };
        match strictly(ep, md, &request).await {
            Some(Response::Ticks(ticks)) if ticks.is_empty() => return true,
            Some(Response::Ticks(ticks)) => lock(&shared.served_ticks).extend(ticks),
            other => {
                refused("market data", &request, other);
                return false;
            }
        }
    }
    let detail = format!("after convergence, market data's ticks did not end within {MAX_READS} reads");
    lock(&shared.errors).push(Problem::QueryRefused(detail));
    false
}

/// A query of the final round: silence is retried (a slow answer is not a refusal: the
/// services' serving loops may wait on their own pulls), an answer is returned as it is.
async fn strictly(ep: &Endpoint, dst: SocketAddr, request: &Request) -> Option<Response> {
    const TRIES: usize = 3;
    for _ in 0..TRIES {
        if let Some(answer) = rpc::call(ep, dst, request, Duration::from_secs(1)).await {
            return Some(answer);
        }
    }
    None
}
