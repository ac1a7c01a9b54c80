//! The market-data node: recovers from its own disk, pulls the matching engine's durable
//! events after its watermark, and answers queries (ticks, L2 books, top of book) from
//! what is durable here.

use super::node::{
    NodeEnv, Recovered, Stop, after_disk, attach, contiguous, lock, ms_since, serve, spawn_puller,
};
use super::protocol::{FollowerId, Request, Response, Status};
use crate::durable::{DurableError, DurableMarketData};
use crate::market_data::MdConfig;
use std::net::SocketAddr;

impl Recovered {
    /// Market data as just recovered from `snapshot`.
    pub fn of_market_data(md: &DurableMarketData, snapshot: Option<u64>) -> Recovered {
        Recovered::MarketData { state: md.inner().state().clone(), snapshot }
    }
}

/// Runs market data, listening on `listen`, until a fatal error or a graceful shutdown.
pub async fn run_market_data(env: NodeEnv, listen: SocketAddr, config: MdConfig) -> Stop {
    market_data(env, listen, config).await.unwrap_or_else(Stop::Fatal)
}

async fn market_data(env: NodeEnv, listen: SocketAddr, config: MdConfig) -> Result<Stop, DurableError> {
    let start = madsim::time::Instant::now();
    let opened =
        DurableMarketData::open_market_data(env.fs.clone(), &env.dir, &env.markets, config, env.config, 0);
    let (md, info) = after_disk(&env, opened).await?;
    env.trace(format!(
        "recovered last_event_id={} snapshot={:?} replayed={}",
        md.durable_event_id(),
        info.snapshot_seq,
        info.replayed
    ));
    env.recovered(|| Recovered::of_market_data(&md, info.snapshot_seq));
    let (ep, state, fatal) = attach(&env, listen, md).await?;
    // Pull the ME's durable events after the logged watermark.
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        NodeEnv::matching_now,
        |s: &DurableMarketData, max| Request::MarketEvents {
            who: FollowerId::MarketData,
            after: s.inner().last_event_id(),
            max,
            floor: s.recovery_floor(),
        },
        move |s, response| match response {
            Response::Events(events) if !events.is_empty() => Some(
                contiguous(
                    "matching → market data",
                    s.inner().last_event_id(),
                    events.iter().map(|e| e.event_id),
                )
                .and_then(|()| events.iter().try_for_each(|e| s.apply(e).map(|_| ())))
                .and_then(|()| s.commit().map(|_| ()))
                .and_then(|()| s.maybe_snapshot(ms_since(start)).map(|_| ())),
            ),
            _ => None,
        },
    );
    let served = state.clone();
    serve(ep, fatal, &env, move |request| Ok(answer(&lock(&served), request))).await?;
    let snapshot = lock(&state).snapshot(ms_since(start))?;
    Ok(Stop::Graceful { snapshot: Some(snapshot) })
}

/// Answers a query from what is durable. Pulled events are committed in the same step as
/// they are applied, so memory runs ahead of the watermark only after a failed commit,
/// which stops the node: until it has, queries are refused. Public so that a harness can
/// ask a recovered market data what a client would, without a network.
pub fn answer(s: &DurableMarketData, request: Request) -> Response {
    let durable = s.durable_event_id();
    let md = s.inner();
    let ahead = md.last_event_id() != durable;
    let ahead = ahead != crate::bugs::planted(crate::bugs::Bug::QueryGuardInverted);
    if ahead && request != Request::Status {
        return Response::Error(format!("market data holds events after its durable {durable}"));
    }
    match request {
        Request::Ticks { after, max } => Response::Ticks(
            md.ticks_after(after, max as usize)
                .iter()
                .take_while(|t| t.event_id <= durable)
                .copied()
                .collect(),
        ),
        Request::Book { symbol, as_of } => {
            let as_of = as_of.min(durable);
            Response::Book { as_of, book: md.l2_as_of(symbol, as_of).cloned() }
        }
        Request::Top { symbol } => Response::Top { as_of: durable, top: md.top(symbol) },
        Request::Status => {
            Response::Status(Status { ubs_seq: 0, event_id: durable, trade_id: md.state().last_trade_id })
        }
        other => Response::Error(format!("market data does not serve {other:?}")),
    }
}
