//! Settlement with its audit trail (when the markets publish order events): it pulls the
//! matching engine's whole event log instead of its trades, appends each trade to the
//! ledger and commits the ledger, and only then logs the events in the audit trail's own
//! WAL (`<dir>/audit`) and commits that: an audit record never speaks of a trade the
//! ledger does not hold durably. Queries answer from what is durable.

use super::node::{NodeEnv, Recovered, Stop, after_disk, attach, lock, ms_since, serve, spawn_puller};
use super::protocol::{FollowerId, Request, Response, Status};
use crate::MeEvent;
use crate::durable::{DurableAudit, DurableError, DurableSettlement, settle_events};

/// Settlement's state in its node: the ledger and the audit trail.
struct Books {
    ledger: DurableSettlement,
    audit: DurableAudit,
}

impl Books {
    /// Applies a pulled batch ([`settle_events`]: the ledger's commit first, then the
    /// trail's), then takes whatever snapshots are due.
    fn apply(&mut self, events: &[MeEvent], now_ms: u64) -> Result<(), DurableError> {
        settle_events(&mut self.ledger, &mut self.audit, events)?;
        self.ledger.maybe_checkpoint(now_ms)?;
        self.audit.maybe_snapshot(now_ms).map(|_| ())
    }

    /// Answers a query from what is durable.
    fn answer(&self, request: Request) -> Response {
        answer(&self.ledger, &self.audit, request)
    }
}

/// Answers a query to Settlement's audit trail from what is durable (`ledger`: the ledger
/// beside it, for the status). Public so that a harness can ask a recovered trail what a
/// client would, without a network.
pub fn answer(ledger: &DurableSettlement, audit: &DurableAudit, request: Request) -> Response {
    let trail = audit.inner();
    if trail.last_event_id() != audit.durable_event_id() && request != Request::Status {
        return Response::Error("the audit trail holds events after its durable watermark".into());
    }
    match request {
        Request::Status => {
            let (event_id, trade_id) = (audit.durable_event_id(), ledger.durable_trade_id());
            Response::Status(Status { ubs_seq: 0, event_id, trade_id })
        }
        Request::AuditOrder { order_id } => {
            Response::Audit { as_of: trail.last_event_id(), order: trail.order(order_id).cloned() }
        }
        Request::AuditUser { user } => {
            Response::Orders { as_of: trail.last_event_id(), ids: trail.orders_of(user) }
        }
        other => Response::Error(format!("settlement does not serve {other:?}")),
    }
}

/// Settlement's node with the audit trail: recovery of both, the puller of events, the
/// server.
pub(super) async fn settlement_with_audit(env: NodeEnv) -> Result<Stop, DurableError> {
    let start = madsim::time::Instant::now();
    let (ledger, info) =
        after_disk(&env, DurableSettlement::open(env.fs.clone(), &env.dir, env.config, 0)).await?;
    env.recovered(|| Recovered::of_settlement(&ledger, info.snapshot_seq));
    let (audit, audit_info) =
        after_disk(&env, DurableAudit::open_audit(env.fs.clone(), &env.dir.join("audit"), env.config, 0))
            .await?;
    env.trace(format!(
        "recovered last_trade_id={} checkpoint={:?} audit last_event_id={} snapshot={:?}",
        ledger.durable_trade_id(),
        info.snapshot_seq,
        audit.durable_event_id(),
        audit_info.snapshot_seq
    ));
    if let Some(hook) = &env.on_recovered {
        let state = audit.inner().state().clone();
        let ledger_trade_id = ledger.settlement().last_trade_id();
        hook(
            &format!("{}-audit", env.name),
            Recovered::Audit { state, ledger_trade_id, snapshot: audit_info.snapshot_seq },
        );
    }
    let (ep, state, fatal) = attach(&env, env.addrs.settlement, Books { ledger, audit }).await?;
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        NodeEnv::matching_now,
        |s: &Books, max| Request::MarketEvents {
            who: FollowerId::Audit,
            after: s.audit.inner().last_event_id(),
            max,
            floor: s.audit.recovery_floor(),
        },
        move |s, response| match response {
            Response::Events(events) if !events.is_empty() => Some(s.apply(&events, ms_since(start))),
            _ => None,
        },
    );
    let served = state.clone();
    serve(ep, fatal, &env, move |request| Ok(lock(&served).answer(request))).await?;
    let mut books = lock(&state);
    books.audit.snapshot(ms_since(start))?;
    let snapshot = books.ledger.checkpoint(ms_since(start))?;
    Ok(Stop::Graceful { snapshot: Some(snapshot) })
}
