//! The three services as long-running async nodes: each recovers from its own disk,
//! serves durable entries to downstream, and pulls from upstream after its own watermark.
//! Written once against madsim's API: simulated in the simulation build, tokio and TCP in
//! the normal build.

use super::protocol::{Request, Response, Status};
use super::rpc;
use super::rpc::Endpoint;
use crate::Markets;
pub(super) use crate::durable::contiguous;
use crate::durable::pipeline::me_input;
use crate::durable::{DurableConfig, DurableError, DurableMatching, DurableSettlement, DurableUbs};
use crate::storage::FileSystem;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Where the three services listen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addrs {
    /// UBSCore.
    pub ubscore: SocketAddr,
    /// Matching.
    pub matching: SocketAddr,
    /// Settlement.
    pub settlement: SocketAddr,
}

/// A sink for trace lines: (node, event).
pub type Tracer = Arc<dyn Fn(&str, String) + Send + Sync>;

/// A service's state right after it recovered, handed to the checker, with the snapshot
/// it loaded (its sequence number; `None`: none, the whole log was replayed).
#[derive(Clone, Debug)]
pub enum Recovered {
    /// UBSCore: its state and the last durable WAL sequence number it holds.
    Ubs { wal_seq: u64, state: crate::ubscore::UbsState, snapshot: Option<u64> },
    /// Matching: its state as loaded (before catching up with UBSCore), and its order-id
    /// index (which book each resting order is in).
    Matching {
        state: crate::matching::MeState,
        index: Vec<(crate::OrderId, crate::SymbolId)>,
        snapshot: Option<u64>,
    },
    /// Settlement: its ledger and its watermark (the last trade it settled).
    Settlement { ledger: Vec<crate::Trade>, last_trade_id: crate::TradeId, snapshot: Option<u64> },
    /// Market data: its whole derived state.
    MarketData { state: crate::market_data::MdState, snapshot: Option<u64> },
    /// Settlement's audit trail (reported as `<node>-audit`, right after the ledger's
    /// recovery), with the last trade of the ledger recovered beside it.
    Audit { state: crate::audit::AuditState, ledger_trade_id: crate::TradeId, snapshot: Option<u64> },
}

impl Recovered {
    /// UBSCore as just recovered from `snapshot`.
    pub fn of_ubs(ubs: &DurableUbs, snapshot: Option<u64>) -> Recovered {
        Recovered::Ubs { wal_seq: ubs.wal().durable_seq(), state: ubs.core().export_state(), snapshot }
    }

    /// The matching engine as just recovered from `snapshot` (before catching up with UBSCore).
    pub fn of_matching(me: &DurableMatching, snapshot: Option<u64>) -> Recovered {
        Recovered::Matching {
            state: me.engine().export_state(),
            index: me.engine().index_entries(),
            snapshot,
        }
    }

    /// Settlement as just recovered from `snapshot`.
    pub fn of_settlement(settlement: &DurableSettlement, snapshot: Option<u64>) -> Recovered {
        Recovered::Settlement {
            ledger: settlement.settlement().ledger().to_vec(),
            last_trade_id: settlement.settlement().last_trade_id(),
            snapshot,
        }
    }

    /// The snapshot the recovery loaded.
    pub fn snapshot(&self) -> Option<u64> {
        match self {
            Recovered::Ubs { snapshot, .. }
            | Recovered::Matching { snapshot, .. }
            | Recovered::Settlement { snapshot, .. }
            | Recovered::MarketData { snapshot, .. }
            | Recovered::Audit { snapshot, .. } => *snapshot,
        }
    }
}

/// Where recovered states go (the simulation's checker); `None` outside simulations.
pub type RecoveryHook = Arc<dyn Fn(&str, Recovered) + Send + Sync>;

/// Everything a service node needs.
#[derive(Clone)]
pub struct NodeEnv {
    /// The node's name (for the trace).
    pub name: String,
    /// Its disk.
    pub fs: Arc<dyn FileSystem>,
    /// Its data directory.
    pub dir: PathBuf,
    /// The markets.
    pub markets: Markets,
    /// Storage settings.
    pub config: DurableConfig,
    /// Where everyone listens.
    pub addrs: Addrs,
    /// Longest pause between pulls that found nothing (pauses start at 1 ms and double).
    pub pull_interval: Duration,
    /// How long a pull waits for its reply.
    pub rpc_timeout: Duration,
    /// Entries per pull.
    pub batch: u32,
    /// Trace sink.
    pub trace: Tracer,
    /// Receives the recovered state after every recovery.
    pub on_recovered: Option<RecoveryHook>,
    /// Set to stop the node gracefully (SIGTERM in the real build): it stops serving,
    /// commits, takes a snapshot and returns. `None` in simulations (the replica sets its
    /// own, to hand over: see [`run_replica`]).
    pub shutdown: Option<Arc<AtomicBool>>,
    /// Where the matching engine is now, if it can move (a failover promotes the replica):
    /// UBSCore and Settlement read it before every pull. `None`: always `addrs.matching`.
    pub directory: Option<Directory>,
}

/// The services' current addresses, shared by the nodes that follow a failover.
pub type Directory = Arc<Mutex<Addrs>>;

/// Why a node stopped.
#[derive(Debug)]
pub enum Stop {
    /// A fatal error: the node must be restarted and recover from disk.
    Fatal(DurableError),
    /// Asked to (see [`NodeEnv::shutdown`]): everything committed and a snapshot taken at
    /// this sequence number, so a restart replays nothing after it (on a single-threaded
    /// runtime, as `exsim node` runs it: no other task of the node runs in between).
    Graceful {
        /// The snapshot's sequence number (UBSCore's WAL seq, the ME's, the last trade id).
        /// `None`: the matching engine was asked to stop before it had verified the events
        /// its recovery found in its WAL; a snapshot then would skip them, so it takes none
        /// and its restart verifies them again.
        snapshot: Option<u64>,
    },
}

impl NodeEnv {
    fn shutting_down(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
}

impl NodeEnv {
    /// Where the matching engine is now.
    pub(super) fn matching_now(&self) -> SocketAddr {
        self.directory.as_ref().map_or(self.addrs.matching, |d| lock(d).matching)
    }

    pub(super) fn trace(&self, event: String) {
        (self.trace)(&self.name, event);
    }

    pub(super) fn recovered(&self, state: impl FnOnce() -> Recovered) {
        if let Some(hook) = &self.on_recovered {
            hook(&self.name, state());
        }
    }
}

/// Milliseconds since `start` (simulated time in a simulation).
pub(super) fn ms_since(start: madsim::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

pub(super) async fn settle_disk(fs: &dyn FileSystem) {
    let us = fs.take_latency_us();
    if us > 0 {
        madsim::time::sleep(Duration::from_micros(us)).await;
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn bind(env: &NodeEnv, addr: SocketAddr) -> Result<Arc<Endpoint>, DurableError> {
    rpc::bind(addr)
        .await
        .map(Arc::new)
        .map_err(|e| DurableError::Engine(format!("{}: bind {addr}: {e}", env.name)))
}

/// A fatal error seen by one task of a node stops all of them.
#[derive(Default)]
pub(super) struct Fatal {
    stop: AtomicBool,
    error: Mutex<Option<DurableError>>,
}

impl Fatal {
    fn set(&self, e: DurableError) {
        lock(&self.error).get_or_insert(e);
        self.stop.store(true, Ordering::SeqCst);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn take(&self) -> DurableError {
        lock(&self.error).take().unwrap_or_else(|| DurableError::Engine("stopped".into()))
    }
    /// The error a task stopped the node with, if one did (not a shutdown).
    fn error(&self) -> Option<DurableError> {
        lock(&self.error).take()
    }
}

/// Serves requests with `handle` until a fatal error, or until asked to shut down (`Ok`:
/// the node's other tasks are stopped too).
pub(super) async fn serve(
    ep: Arc<Endpoint>,
    fatal: Arc<Fatal>,
    env: &NodeEnv,
    mut handle: impl FnMut(Request) -> Result<Response, DurableError>,
) -> Result<(), DurableError> {
    let fs = env.fs.clone();
    loop {
        if fatal.stopped() {
            return Err(fatal.take());
        }
        if env.shutting_down() {
            fatal.stop.store(true, Ordering::SeqCst);
            return Ok(());
        }
        let next = madsim::time::timeout(Duration::from_millis(50), rpc::next_request(&ep)).await;
        let Ok(Ok((from, tag, request))) = next else { continue };
        let response = contain(|| handle(request));
        settle_disk(fs.as_ref()).await;
        match response {
            Ok(r) => rpc::reply(&ep, from, tag, &r).await,
            Err(e) => {
                fatal.set(e);
                return Err(fatal.take());
            }
        }
    }
}

/// Runs one step of the service; a panic (a broken assertion) becomes a fatal error, so
/// that the node stops and is restarted like a crashed process instead of taking the
/// whole process down with every other node's state.
fn contain<T>(step: impl FnOnce() -> Result<T, DurableError>) -> Result<T, DurableError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step))
        .unwrap_or_else(|panic| Err(DurableError::Panicked(panic_message(&*panic))))
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A downstream service asking for entries after `after` has consumed them: if this log
/// ends before, durable entries were lost here.
pub(super) fn witness(log: &'static str, after: u64, durable: u64) -> Result<(), DurableError> {
    if after > durable {
        return Err(DurableError::WitnessAhead { log, downstream: after, durable });
    }
    Ok(())
}

/// What a puller did with a reply: nothing new (back off), or applied (and the result).
type Pulled = Option<Result<(), DurableError>>;

/// Spawns the node's puller: asks `upstream` for durable entries after the node's own
/// watermark (`request`), applies and commits what arrives (`apply`), and backs off while
/// nothing is new. A fatal error stops every task of the node.
pub(super) fn spawn_puller<S: Send + 'static>(
    ep: Arc<Endpoint>,
    state: Arc<Mutex<S>>,
    fatal: Arc<Fatal>,
    env: NodeEnv,
    upstream: impl Fn(&NodeEnv) -> SocketAddr + Send + 'static,
    request: impl Fn(&S, u32) -> Request + Send + 'static,
    apply: impl Fn(&mut S, Response) -> Pulled + Send + 'static,
) -> madsim::task::JoinHandle<()> {
    madsim::task::spawn(async move {
        let mut idle = Duration::ZERO;
        while !fatal.stopped() {
            let req = request(&lock(&state), env.batch);
            let pulled = match rpc::call(&ep, upstream(&env), &req, env.rpc_timeout).await {
                Some(response) => {
                    contain(|| Ok(apply(&mut lock(&state), response))).unwrap_or_else(|e| Some(Err(e)))
                }
                None => None,
            };
            match pulled {
                Some(result) => {
                    settle_disk(env.fs.as_ref()).await;
                    if let Err(e) = result {
                        fatal.set(e);
                    }
                    idle = Duration::ZERO;
                }
                None => {
                    idle = (idle * 2).clamp(Duration::from_millis(1), env.pull_interval);
                    madsim::time::sleep(idle).await;
                }
            }
        }
    })
}

/// The result of a disk operation, after its simulated time has passed.
pub(super) async fn after_disk<T>(env: &NodeEnv, result: Result<T, DurableError>) -> Result<T, DurableError> {
    settle_disk(env.fs.as_ref()).await;
    result
}

/// Binds the node's endpoint and shares the recovered service between the serving and
/// pulling tasks.
pub(super) async fn attach<S>(
    env: &NodeEnv,
    addr: SocketAddr,
    service: S,
) -> Result<(Arc<Endpoint>, Arc<Mutex<S>>, Arc<Fatal>), DurableError> {
    Ok((bind(env, addr).await?, Arc::new(Mutex::new(service)), Arc::new(Fatal::default())))
}

/// Runs UBSCore until a fatal error (an I/O error: stop and recover from disk) or a
/// graceful shutdown.
pub async fn run_ubscore(env: NodeEnv) -> Stop {
    ubscore(env).await.unwrap_or_else(Stop::Fatal)
}

/// Runs the matching engine until a fatal error or a graceful shutdown.
pub async fn run_matching(env: NodeEnv) -> Stop {
    matching(env).await.unwrap_or_else(Stop::Fatal)
}

/// Runs settlement until a fatal error or a graceful shutdown; when the markets publish
/// order events it keeps the audit trail too (see [`super::audit`]).
pub async fn run_settlement(env: NodeEnv) -> Stop {
    let run = if env.markets.order_events() {
        super::audit::settlement_with_audit(env).await
    } else {
        settlement(env).await
    };
    run.unwrap_or_else(Stop::Fatal)
}

/// UBSCore's node: recovery, the puller of ME events, the server.
async fn ubscore(env: NodeEnv) -> Result<Stop, DurableError> {
    let start = madsim::time::Instant::now();
    let (ubs, info) =
        after_disk(&env, DurableUbs::open(env.fs.clone(), &env.dir, env.markets.clone(), env.config, 0))
            .await?;
    env.trace(format!(
        "recovered ubs_seq={} snapshot={:?} replayed={}",
        ubs.durable_ubs_seq(),
        info.snapshot_seq,
        info.replayed
    ));
    env.recovered(|| Recovered::of_ubs(&ubs, info.snapshot_seq));
    let (ep, state, fatal) = attach(&env, env.addrs.ubscore, ubs).await?;
    // Pull the ME's durable events after the applied watermark.
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        NodeEnv::matching_now,
        |s: &DurableUbs, max| Request::PullEvents {
            after: s.core().last_event_id(),
            max,
            floor: s.recovery_floor(),
        },
        |s, response| match response {
            Response::Events(events) if !events.is_empty() => Some(
                contiguous("matching → ubscore", s.core().last_event_id(), events.iter().map(|e| e.event_id))
                    .and_then(|()| events.iter().try_for_each(|e| s.apply_event(e).map(|_| ())))
                    .and_then(|()| s.commit().map(|_| ())),
            ),
            _ => None,
        },
    );
    let served = state.clone();
    serve(ep, fatal, &env, move |request| {
        let mut s = lock(&served);
        Ok(match request {
            Request::Submit(command) => {
                let sub = s.submit(command);
                s.commit()?;
                s.maybe_snapshot(ms_since(start))?;
                Response::Ack(sub.ack)
            }
            Request::PullRecords { after, max, floor } => {
                witness("ubscore wal", after, s.durable_ubs_seq())?;
                // Retention keeps what the matching engine could need to recover.
                s.set_downstream_floor(floor.min(after));
                Response::Records(s.records_after(after, max as usize)?)
            }
            Request::ReplicaRecords { after, max } => replica_records(&s, after, max)?,
            Request::Status => Response::Status(Status {
                ubs_seq: s.durable_ubs_seq(),
                event_id: s.core().last_event_id(),
                trade_id: 0,
            }),
            other => Response::Error(format!("ubscore does not serve {other:?}")),
        })
    })
    .await?;
    let mut s = lock(&state);
    let snapshot = s.snapshot(ms_since(start))?;
    if crate::bugs::planted(crate::bugs::Bug::CleanStopTrusted) {
        s.leave_clean_marker()?;
    }
    Ok(Stop::Graceful { snapshot: Some(snapshot) })
}

/// UBSCore's answer to the replica. A replica keeps nothing durable, so a watermark ahead
/// of the log or records already removed are its problem, answered with an error; an I/O
/// error is UBSCore's own and stops it.
fn replica_records(s: &DurableUbs, after: u64, max: u32) -> Result<Response, DurableError> {
    if after > s.durable_ubs_seq() {
        return Ok(Response::Error(format!(
            "replica at ubs_seq {after} is ahead of the durable log at {}",
            s.durable_ubs_seq()
        )));
    }
    match s.records_after(after, max as usize) {
        Ok(records) => Ok(Response::Records(records)),
        Err(gone @ DurableError::Compacted { .. }) => Ok(Response::Error(gone.to_string())),
        Err(e) => Err(e),
    }
}

/// The matching engine's node: recovery, the puller of UBSCore's records, the server.
async fn matching(env: NodeEnv) -> Result<Stop, DurableError> {
    let start = madsim::time::Instant::now();
    let (me, info) =
        after_disk(&env, DurableMatching::open(env.fs.clone(), &env.dir, env.markets.clone(), env.config, 0))
            .await?;
    env.trace(format!(
        "recovered last_ubs_seq={} events={} snapshot={:?} to_verify={}",
        me.last_ubs_seq(),
        me.durable_event_id(),
        info.snapshot_seq,
        info.replayed
    ));
    env.recovered(|| Recovered::of_matching(&me, info.snapshot_seq));
    let (ep, state, fatal) = attach(&env, env.addrs.matching, me).await?;
    // Pull UBSCore's durable records after the consumed watermark.
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        |env: &NodeEnv| env.addrs.ubscore,
        |s: &DurableMatching, max| Request::PullRecords {
            after: s.last_ubs_seq(),
            max,
            floor: s.recovery_floor(),
        },
        move |s, response| match response {
            Response::Records(records) if !records.is_empty() => Some(
                contiguous("ubscore → matching", s.last_ubs_seq(), records.iter().map(|r| r.seq))
                    .and_then(|()| {
                        records.iter().try_for_each(|r| s.process(r.seq, me_input(r).as_ref()).map(|_| ()))
                    })
                    .and_then(|()| s.commit().map(|_| ()))
                    .and_then(|()| s.maybe_snapshot(ms_since(start)).map(|_| ())),
            ),
            _ => None,
        },
    );
    let served = state.clone();
    serve(ep, fatal, &env, move |request| {
        let mut s = lock(&served);
        Ok(match request {
            Request::PullEvents { after, max, floor } => {
                witness("matching wal", after, s.durable_event_id())?;
                s.set_event_floor(floor.min(after));
                Response::Events(s.events_after(after, max as usize)?)
            }
            Request::PullTrades { after, max } => {
                s.set_trade_floor(after);
                Response::Trades(s.trades_after(after, max as usize)?)
            }
            Request::MarketEvents { who, after, max, floor } => {
                s.set_follower_floor(who, floor.min(after));
                // Not a witness of lost data: after a failover the new primary may still
                // be behind events its followers took from the old one (it will make them
                // again, identically). A follower ahead waits.
                if after > s.durable_event_id() {
                    return Ok(Response::Error(format!(
                        "follower at event {after} is ahead of the durable log at {}",
                        s.durable_event_id()
                    )));
                }
                // Events removed below the follower's floor (a bug) come back as a reply that
                // does not continue its watermark, which it refuses.
                Response::Events(s.events_after(after, max as usize)?)
            }
            Request::Status => Response::Status(Status {
                ubs_seq: s.last_ubs_seq(),
                event_id: s.durable_event_id(),
                trade_id: s.engine().next_trade_id() - 1,
            }),
            other => Response::Error(format!("matching does not serve {other:?}")),
        })
    })
    .await?;
    let mut s = lock(&state);
    let snapshot = if s.caught_up() { Some(s.snapshot(ms_since(start))?) } else { None };
    Ok(Stop::Graceful { snapshot })
}

/// Settlement's node: recovery, the puller of trades, the server.
async fn settlement(env: NodeEnv) -> Result<Stop, DurableError> {
    let start = madsim::time::Instant::now();
    let (settlement, info) =
        after_disk(&env, DurableSettlement::open(env.fs.clone(), &env.dir, env.config, 0)).await?;
    env.trace(format!(
        "recovered last_trade_id={} checkpoint={:?}",
        settlement.durable_trade_id(),
        info.snapshot_seq
    ));
    env.recovered(|| Recovered::of_settlement(&settlement, info.snapshot_seq));
    let (ep, state, fatal) = attach(&env, env.addrs.settlement, settlement).await?;
    // Pull the ME's durable trades after the settled watermark.
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        NodeEnv::matching_now,
        |s: &DurableSettlement, max| Request::PullTrades { after: s.settlement().last_trade_id(), max },
        move |s, response| match response {
            Response::Trades(trades) if !trades.is_empty() => Some(
                contiguous(
                    "matching → settlement",
                    s.settlement().last_trade_id(),
                    trades.iter().map(|t| t.trade_id),
                )
                .and_then(|()| trades.iter().try_for_each(|t| s.apply(t).map(|_| ())))
                .and_then(|()| s.commit().map(|_| ()))
                .and_then(|()| s.maybe_checkpoint(ms_since(start)).map(|_| ())),
            ),
            _ => None,
        },
    );
    let served = state.clone();
    serve(ep, fatal, &env, move |request| {
        let s = lock(&served);
        Ok(match request {
            Request::Status => {
                Response::Status(Status { ubs_seq: 0, event_id: 0, trade_id: s.durable_trade_id() })
            }
            other => Response::Error(format!("settlement does not serve {other:?}")),
        })
    })
    .await?;
    let snapshot = lock(&state).checkpoint(ms_since(start))?;
    Ok(Stop::Graceful { snapshot: Some(snapshot) })
}

/// What the hot-standby replica tells its observer (the simulation's checker).
#[derive(Clone, Debug)]
pub enum ReplicaReport {
    /// `(event_id, link)` of every event produced since the last report, in order.
    Links(Vec<(crate::EventId, u64)>),
    /// The replica's whole state, as of a status request that found it changed.
    State {
        /// The matching engine's state.
        state: crate::matching::MeState,
        /// The link after its last event.
        chain: u64,
    },
}

/// Where the replica's reports go.
pub type ReplicaHook = Arc<dyn Fn(ReplicaReport) + Send + Sync>;

/// The replica's state in its node: the engine, and what its puller remembers.
struct ReplicaNode {
    standby: crate::standby::Standby,
    /// Changed since its state was last reported.
    dirty: bool,
}

/// Runs the hot-standby replica, listening on `listen`, until a fatal error or until it
/// holds event `handover_at` (`u64::MAX`: never; it may be lowered while it runs), which
/// promotes it: its state and event log become a matching engine's directory in `env.dir`
/// ([`DurableMatching::adopt`]) and it returns `Stop::Graceful` with the last event
/// adopted; the caller then runs the matching engine there. Until then it keeps nothing
/// on disk: every start clears its directory (what a handover cut short left) and rebuilds
/// from UBSCore's log.
pub async fn run_replica(
    env: NodeEnv,
    listen: SocketAddr,
    hook: ReplicaHook,
    handover_at: Arc<AtomicU64>,
) -> Stop {
    replica(env, listen, hook, handover_at).await.unwrap_or_else(Stop::Fatal)
}

async fn replica(
    mut env: NodeEnv,
    listen: SocketAddr,
    hook: ReplicaHook,
    handover_at: Arc<AtomicU64>,
) -> Result<Stop, DurableError> {
    // The replica decides itself, from its own state, when it holds enough to hand over.
    let handover = Arc::new(AtomicBool::new(false));
    env.shutdown = Some(handover.clone());
    let due = move |s: &ReplicaNode| {
        if s.standby.replica().last_event_id() >= handover_at.load(Ordering::SeqCst) {
            handover.store(true, Ordering::SeqCst);
        }
    };
    let node = ReplicaNode { standby: crate::standby::Standby::new(env.markets.clone()), dirty: true };
    clear_handover(&env)?;
    env.trace("replica: rebuilding from ubscore's log".into());
    let (ep, state, fatal) = attach(&env, listen, node).await?;
    let puller = spawn_replica_puller(&ep, &state, &fatal, &env, hook.clone(), due.clone());
    let served = state.clone();
    serve(ep, fatal.clone(), &env, move |request| {
        let mut s = lock(&served);
        Ok(match request {
            Request::Status => {
                due(&s);
                if std::mem::take(&mut s.dirty) {
                    hook(ReplicaReport::State {
                        state: s.standby.replica().engine().export_state(),
                        chain: s.standby.replica().chain(),
                    });
                }
                Response::Status(Status {
                    ubs_seq: s.standby.replica().last_ubs_seq(),
                    event_id: s.standby.replica().last_event_id(),
                    trade_id: s.standby.replica().engine().next_trade_id() - 1,
                })
            }
            other => Response::Error(format!("the replica does not serve {other:?}")),
        })
    })
    .await?;
    // The puller holds the endpoint until it sees the stop: the engine binds it next. A
    // batch it failed half-way must not be handed over.
    let _ = puller.await;
    if let Some(e) = fatal.error() {
        return Err(e);
    }
    let last = hand_over(&env, &state).await?;
    env.trace(format!("replica: promoted, events up to {last} adopted"));
    Ok(Stop::Graceful { snapshot: Some(last) })
}

/// The replica's puller: UBSCore's records after its watermark (after an unanswered pull,
/// under the planted bug, from the start of its last batch); the links of what it
/// produced go to `hook`, and `due` checks after each batch whether it may hand over.
fn spawn_replica_puller(
    ep: &Arc<Endpoint>,
    state: &Arc<Mutex<ReplicaNode>>,
    fatal: &Arc<Fatal>,
    env: &NodeEnv,
    hook: ReplicaHook,
    due: impl Fn(&ReplicaNode) + Send + 'static,
) -> madsim::task::JoinHandle<()> {
    let tracer = env.clone();
    spawn_puller(
        ep.clone(),
        state.clone(),
        fatal.clone(),
        env.clone(),
        |env: &NodeEnv| env.addrs.ubscore,
        |s: &ReplicaNode, max| Request::ReplicaRecords { after: s.standby.ask(), max },
        move |s, response| {
            s.standby.answered();
            match response {
                Response::Records(records) if !records.is_empty() => {
                    let applied = replica_batch(s, &records).map(|out| hook(ReplicaReport::Links(out)));
                    due(s);
                    Some(applied)
                }
                Response::Error(why) => {
                    tracer.trace(format!("replica: ubscore refused: {why}"));
                    None
                }
                _ => None,
            }
        },
    )
}

/// The promotion: the replica's state and every event it produced become a matching
/// engine's directory on its own disk (the caller then runs that engine). Returns the
/// last event adopted.
async fn hand_over(env: &NodeEnv, state: &Arc<Mutex<ReplicaNode>>) -> Result<u64, DurableError> {
    let adopted = {
        let s = lock(state);
        let (fs, markets, me) =
            (env.fs.clone(), env.markets.clone(), s.standby.replica().engine().export_state());
        DurableMatching::adopt(fs, &env.dir, markets, env.config, me, s.standby.replica().events(), 0)
            .map(|me| me.durable_event_id())
    };
    after_disk(env, adopted).await
}

/// Removes what a handover cut short left in the replica's directory: a replica keeps
/// nothing on disk, and a handover is written whole, from a replica that holds everything.
fn clear_handover(env: &NodeEnv) -> Result<(), DurableError> {
    let io = |op: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| DurableError::Wal(crate::wal::WalError::Io { op, path, source })
    };
    if env.fs.exists(&env.dir).map_err(io("exists", &env.dir))? {
        env.fs.remove_dir_all(&env.dir).map_err(io("remove", &env.dir))?;
        if let Some(parent) = env.dir.parent() {
            env.fs.sync_dir(parent).map_err(io("fsync_dir", parent))?;
        }
    }
    Ok(())
}

/// Applies one pulled batch; returns the links of the events it produced.
fn replica_batch(
    s: &mut ReplicaNode,
    records: &[crate::UbsRecord],
) -> Result<Vec<(crate::EventId, u64)>, DurableError> {
    let applied = s.standby.apply(records);
    // A refused batch changed nothing; one applied, even half-way, did.
    if !matches!(applied, Err(DurableError::PullGap { .. })) {
        s.dirty = true;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemFs;

    fn env(fs: Arc<dyn FileSystem>) -> NodeEnv {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        NodeEnv {
            name: "replica".into(),
            fs,
            dir: PathBuf::from("/data/replica"),
            markets: crate::Markets::default(),
            config: DurableConfig::matching(),
            addrs: Addrs { ubscore: addr, matching: addr, settlement: addr },
            pull_interval: Duration::from_millis(1),
            rpc_timeout: Duration::from_millis(1),
            batch: 1,
            trace: Arc::new(|_: &str, _: String| {}),
            on_recovered: None,
            shutdown: None,
            directory: None,
        }
    }

    #[test]
    fn a_replica_starts_from_an_empty_directory_whatever_a_handover_left() {
        let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
        let env = env(fs.clone());
        // Nothing there: nothing to do.
        clear_handover(&env).unwrap();
        assert!(!fs.exists(&env.dir).unwrap());
        // What a handover cut short leaves: part of a WAL, no snapshot.
        let wal = env.dir.join("wal");
        fs.create_dir_all(&wal).unwrap();
        fs.create_new(&wal.join("wal-00001-00000000000000000001.wal")).unwrap();
        fs.append(&wal.join("wal-00001-00000000000000000001.wal"), b"partial").unwrap();
        clear_handover(&env).unwrap();
        assert!(!fs.exists(&env.dir).unwrap(), "the directory is gone");
        assert!(fs.exists(&PathBuf::from("/data")).unwrap(), "its parent stays");
    }
}
