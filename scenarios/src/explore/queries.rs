//! The followers' query paths, asked of every recovered state. Market data and the audit
//! trail answer clients from what is durable; the world asks them a few queries a round,
//! explore asks every query its workload allows (each symbol's top and its L2 book now and
//! as of an event half-way, every tick and three after a trade half-way, every order's
//! trail, every user's orders, market data's status) of each follower just after its
//! recovery and again once caught up,
//! through the services' own answer functions, and holds each answer to the checker's
//! derivation at the event the follower is at. A follower that was just recovered or has
//! just committed holds nothing beyond its durable watermark, so a refusal is a violation
//! too: a follower that serves nothing would otherwise pass. Queries read state the
//! comparison of whole states never sees (market data's per-symbol tops, the trail's
//! index by user), so an index a recovery forgets to rebuild is found here.

use crate::checker::Violation;
use engine::audit::AuditState;
use engine::durable::DurablePipeline;
use engine::market_data::{MdState, Top};
use engine::service::{Request, Response};
use engine::{Command, EventId, Markets, UserId};
use std::collections::BTreeSet;

/// The queries asked of each follower.
#[derive(Clone, Debug, Default)]
pub struct Queries {
    market_data: Vec<Request>,
    trail: Vec<Request>,
}

impl Queries {
    /// Every query the workload allows: its markets' symbols, its orders and users, and
    /// half-way points of `end`, the market data its whole workload makes.
    pub fn of(markets: &Markets, commands: &[Command], end: &MdState) -> Queries {
        let mut market_data = vec![
            Request::Status,
            Request::Ticks { after: 0, max: u32::MAX },
            // Ticks after a trade half-way: `after` must skip exactly the trades up to it.
            Request::Ticks { after: end.last_trade_id / 2, max: 3 },
        ];
        for symbol in markets.symbols().map(|s| s.id) {
            market_data.push(Request::Top { symbol });
            market_data.push(Request::Book { symbol, as_of: EventId::MAX });
            market_data.push(Request::Book { symbol, as_of: end.last_event_id / 2 });
        }
        let mut trail = vec![Request::Status];
        let orders: BTreeSet<_> = commands
            .iter()
            .filter_map(|c| match c {
                Command::Place(o) => Some(o.order_id),
                _ => None,
            })
            .collect();
        trail.extend(orders.into_iter().map(|order_id| Request::AuditOrder { order_id }));
        // Every user a command names, hostile strangers included.
        let users: BTreeSet<UserId> = commands.iter().map(Command::user).collect();
        trail.extend(users.into_iter().map(|user| Request::AuditUser { user }));
        Queries { market_data, trail }
    }
}

/// What each follower answered.
#[derive(Clone, Debug)]
pub struct Answers {
    market_data: Vec<(Request, Response)>,
    trail: Vec<(Request, Response)>,
}

impl Answers {
    /// Asks `p`'s followers every query (`None`: it runs none).
    pub fn ask(queries: &Queries, p: &DurablePipeline) -> Option<Answers> {
        let f = p.followers.as_ref()?;
        let md = |r: &Request| (r.clone(), engine::service::market_data::answer(&f.market_data, r.clone()));
        let trail =
            |r: &Request| (r.clone(), engine::service::audit::answer(&p.settlement, &f.audit, r.clone()));
        Some(Answers {
            market_data: queries.market_data.iter().map(md).collect(),
            trail: queries.trail.iter().map(trail).collect(),
        })
    }

    /// Holds market data's answers to `truth`, the derivation at the event it is at.
    pub fn judge_market_data(&self, truth: &MdState, recovery: Option<usize>) -> Result<(), Violation> {
        let at = truth.last_event_id;
        judge(
            "market data",
            &self.market_data,
            |r| Some(market_data_answer(truth, r)),
            |(field, expected, actual)| Violation::MarketDataDiverged {
                recovery,
                at,
                field,
                expected,
                actual,
            },
        )
    }

    /// Holds the trail's answers to `truth`, the derivation at the event it is at.
    pub fn judge_trail(&self, truth: &AuditState, recovery: Option<usize>) -> Result<(), Violation> {
        let at = truth.last_event_id;
        judge(
            "the audit trail",
            &self.trail,
            |r| trail_answer(truth, r),
            |(field, expected, actual)| Violation::AuditDiverged { recovery, at, field, expected, actual },
        )
    }
}

/// The first of `who`'s answers that is not what `owed` says (`None`: not judged): a
/// refusal, or a wrong answer named by `diverged`.
fn judge(
    who: &str,
    answers: &[(Request, Response)],
    owed: impl Fn(&Request) -> Option<Response>,
    diverged: impl Fn((String, String, String)) -> Violation,
) -> Result<(), Violation> {
    for (request, got) in answers {
        let Some(want) = owed(request) else { continue };
        if let Some(v) = differs(who, request, &want, got) {
            return Err(v.unwrap_or_else(&diverged));
        }
    }
    Ok(())
}

/// A refusal (`Ok`) or a wrong answer (`Err`: field, expected, actual), if `got` is not `want`.
fn differs(
    who: &str,
    request: &Request,
    want: &Response,
    got: &Response,
) -> Option<Result<Violation, (String, String, String)>> {
    if got == want {
        return None;
    }
    if let Response::Error(e) = got {
        let detail = format!("{who}, at its durable watermark, refused {request:?}: {e}");
        return Some(Ok(Violation::QueryRefused { detail }));
    }
    Some(Err((format!("answer to {request:?}"), format!("{want:?}"), format!("{got:?}"))))
}

/// The answer market data at `truth` owes `request`.
fn market_data_answer(truth: &MdState, request: &Request) -> Response {
    let at = truth.last_event_id;
    match *request {
        Request::Status => Response::Status(engine::service::Status {
            ubs_seq: 0,
            event_id: at,
            trade_id: truth.last_trade_id,
        }),
        Request::Ticks { after, max } => Response::Ticks(
            truth.ticks.iter().filter(|t| t.trade_id > after).take(max as usize).copied().collect(),
        ),
        Request::Book { symbol, as_of } => {
            let as_of = as_of.min(at);
            let book = truth.l2.iter().rev().find(|b| b.symbol == symbol && b.event_id <= as_of).cloned();
            Response::Book { as_of, book }
        }
        Request::Top { symbol } => {
            // Deltas are published at every change of a top, from an empty book on.
            let top =
                truth.deltas.iter().rev().find(|d| d.symbol == symbol).map_or(Top::default(), |d| d.top);
            Response::Top { as_of: at, top: Some(top) }
        }
        ref other => Response::Error(format!("market data is not asked {other:?}")),
    }
}

/// The answer the trail at `truth` owes `request` (`None`: the status, whose trade is the
/// ledger's, judged with the ledger).
fn trail_answer(truth: &AuditState, request: &Request) -> Option<Response> {
    let as_of = truth.last_event_id;
    Some(match *request {
        Request::AuditOrder { order_id } => {
            Response::Audit { as_of, order: truth.orders.get(&order_id).cloned() }
        }
        Request::AuditUser { user } => {
            let ids = truth.orders.iter().filter(|(_, o)| o.user == user).map(|(id, _)| *id).collect();
            Response::Orders { as_of, ids }
        }
        Request::Status => return None,
        ref other => Response::Error(format!("the trail is not asked {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Side;
    use engine::market_data::{Level, Tick, TopDelta};

    fn state() -> MdState {
        let tick = |trade_id, event_id| Tick {
            trade_id,
            event_id,
            symbol: 1,
            price: 100,
            qty: 1,
            taker_side: Side::Buy,
        };
        let top = |bid| Top { bid: Some(Level { price: bid, qty: 5 }), ask: None };
        MdState {
            last_event_id: 9,
            last_trade_id: 3,
            orders: Default::default(),
            ticks: vec![tick(1, 2), tick(2, 4), tick(3, 7)],
            l2: Vec::new(),
            deltas: vec![
                TopDelta { event_id: 1, symbol: 1, top: top(90) },
                TopDelta { event_id: 5, symbol: 2, top: top(70) },
                TopDelta { event_id: 6, symbol: 1, top: top(95) },
            ],
        }
    }

    #[test]
    fn answers_owed_follow_the_derivation_not_the_engine() {
        let s = state();
        let Response::Ticks(after_one) = market_data_answer(&s, &Request::Ticks { after: 1, max: 1 }) else {
            panic!("ticks answered with ticks");
        };
        assert_eq!(after_one.iter().map(|t| t.trade_id).collect::<Vec<_>>(), vec![2]);
        let Response::Top { as_of, top } = market_data_answer(&s, &Request::Top { symbol: 1 }) else {
            panic!("top answered with a top");
        };
        assert_eq!((as_of, top.and_then(|t| t.bid).map(|l| l.price)), (9, Some(95)), "the last delta");
        let empty = market_data_answer(&s, &Request::Top { symbol: 3 });
        assert_eq!(empty, Response::Top { as_of: 9, top: Some(Top::default()) }, "a book never touched");
    }

    #[test]
    fn a_refusal_and_a_wrong_answer_are_told_apart() {
        let want = Response::Ticks(Vec::new());
        let refused = differs("market data", &Request::Status, &want, &Response::Error("no".into()));
        assert!(matches!(refused, Some(Ok(Violation::QueryRefused { .. }))));
        let wrong =
            differs("market data", &Request::Status, &want, &Response::Orders { as_of: 0, ids: vec![] });
        assert!(matches!(wrong, Some(Err(_))));
        assert!(differs("market data", &Request::Status, &want, &want).is_none());
    }
}
