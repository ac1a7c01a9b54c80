//! The three services as madsim nodes, each on its own simulated disk. A node that stops
//! itself (after an I/O error) reports to its supervisor (the world); one that refuses to
//! start naming damage inflicted on its disk halts the run.

use super::{Problem, Shared, WorldConfig, data_dir, lock};
use crate::fs::{Fault, SimFs};
use crate::plan::Service;
use engine::durable::DurableError;
use engine::service::{Addrs, NodeEnv, RecoveryHook};
use engine::wal::WalError;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The services' addresses.
pub(crate) fn addrs() -> Addrs {
    let a = |i| SocketAddr::from(([10, 0, 0, i], 7000));
    Addrs { ubscore: a(1), matching: a(2), settlement: a(3) }
}

/// Where the replica listens.
pub(crate) fn replica_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, Service::Replica.host()], 7000))
}

/// Where market data listens.
pub(crate) fn market_data_addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, Service::MarketData.host()], 7000))
}

/// Errors that name damaged durable data (a file, an offset, a missing entry): under media
/// faults, a service that stops with one of these has detected the damage.
pub fn names_damage(e: &DurableError) -> bool {
    match e {
        DurableError::Wal(WalError::Corrupt { .. } | WalError::Gap { .. }) => true,
        DurableError::Wal(WalError::Io { op, .. }) => *op == "read",
        DurableError::Snapshot(s) => s.op == "read",
        DurableError::Codec { .. }
        | DurableError::Divergence(_)
        | DurableError::WitnessAhead { .. }
        | DurableError::Compacted { .. } => true,
        _ => false,
    }
}

/// Whether media damage was inflicted on the disk of `node` (only then may a service's
/// refusal to start count as detected corruption rather than a bug).
pub(crate) fn damaged_media(simfs: &SimFs, node: NodeId) -> bool {
    let disk = simfs.disk(node);
    let disk = lock(&disk);
    disk.faults().iter().any(|f| matches!(f, Fault::Media { .. } | Fault::SnapshotCorrupted { .. }))
}

/// Service errors that injected faults legitimately cause: the service stops and recovers.
fn expected(e: &DurableError) -> bool {
    match e {
        DurableError::Wal(WalError::Io { .. } | WalError::Poisoned) | DurableError::Snapshot(_) => true,
        other => other.to_string().contains("simfs:"),
    }
}

/// Creates the service nodes (the three durable ones, and the replica if the world has one).
pub(crate) fn spawn(
    handle: &Handle,
    shared: &Arc<Shared>,
    cfg: &WorldConfig,
    hook: RecoveryHook,
    media: bool,
) -> BTreeMap<Service, NodeId> {
    let mut nodes = BTreeMap::new();
    for &service in Service::of_world(cfg.replica, cfg.market_data.is_some()) {
        let (shared, hook) = (shared.clone(), hook.clone());
        let life =
            Life { markets: cfg.markets.clone(), storage: cfg.storage, market_data: cfg.market_data, media };
        let node = handle
            .create_node()
            .name(service.name())
            .ip([10, 0, 0, service.host()].into())
            .init(move || {
                let (shared, life, hook) = (shared.clone(), life.clone(), hook.clone());
                async move { run(service, shared, life, hook).await }
            })
            .build();
        nodes.insert(service, node.id());
    }
    nodes
}

/// The replica's life: a replica until it has handed over, the matching engine on its own
/// disk after. A life that dies before it marked the handover done starts again as a
/// replica (clearing whatever its directory holds) and hands over once it holds every
/// event UBSCore applied; one that dies after runs the matching engine on its disk.
async fn run_replica(mut env: NodeEnv, shared: &Arc<Shared>) -> engine::service::Stop {
    env.addrs.matching = replica_addr();
    if !shared.promoted.load(Ordering::SeqCst) {
        let (hook, at) = (shared.replica_hook(), shared.promote_at.clone());
        let stop = engine::service::run_replica(env.clone(), replica_addr(), hook, at).await;
        if matches!(stop, engine::service::Stop::Fatal(_)) {
            return stop;
        }
        shared.promoted.store(true, Ordering::SeqCst);
        // The handover wrote a snapshot: the recovery that follows must load it.
        let disk = SimFs::current().disk(madsim::plugin::node());
        let valid = crate::snapshots::newest_valid(&lock(&disk), &env.dir);
        lock(&shared.newest_valid).insert(env.name.clone(), valid);
    }
    engine::service::run_matching(env).await
}

/// What every life of a service node is started with.
#[derive(Clone)]
struct Life {
    markets: engine::Markets,
    storage: engine::durable::DurableConfig,
    market_data: Option<engine::market_data::MdConfig>,
    /// Whether media faults can strike.
    media: bool,
}

/// One life of a service node: revive its disk, run the service until it stops itself.
async fn run(service: Service, shared: Arc<Shared>, life: Life, hook: RecoveryHook) {
    let Life { markets, storage, market_data, media } = life;
    let name = service.name();
    let id = madsim::plugin::node();
    let simfs = SimFs::current();
    {
        let disk = simfs.disk(id);
        let mut disk = lock(&disk);
        disk.revive();
        let valid = crate::snapshots::newest_valid(&disk, &data_dir(service));
        lock(&shared.newest_valid).insert(name.to_string(), valid);
        if service == Service::Settlement && markets.order_events() {
            let valid = crate::snapshots::newest_valid(&disk, &data_dir(service).join("audit"));
            lock(&shared.newest_valid).insert(format!("{name}-audit"), valid);
        }
    }
    let tracer = shared.tracer.clone();
    let env = NodeEnv {
        name: name.to_string(),
        fs: Arc::new(simfs.node_fs(id)),
        dir: data_dir(service),
        markets,
        config: storage,
        addrs: addrs(),
        pull_interval: Duration::from_millis(32),
        rpc_timeout: Duration::from_millis(100),
        batch: 256,
        trace: tracer.clone(),
        on_recovered: Some(hook),
        shutdown: shared.shutdown.get(&service).cloned(),
        directory: Some(shared.directory.clone()),
    };
    tracer(name, "start".into());
    let stop = match service {
        Service::Ubscore => engine::service::run_ubscore(env).await,
        Service::Matching => engine::service::run_matching(env).await,
        Service::Settlement => engine::service::run_settlement(env).await,
        Service::Replica => run_replica(env, &shared).await,
        Service::MarketData => {
            let config = market_data.expect("market data runs only in worlds configured with it");
            engine::service::run_market_data(env, market_data_addr(), config).await
        }
    };
    // A crash point that fired where no `.await` followed (the final snapshot of a graceful
    // stop) killed the node, yet its task ran on to here: the death is the supervisor's,
    // with the pause and the recovery faults it planned.
    if lock(&simfs.disk(id)).is_dead() {
        return;
    }
    let err = match stop {
        engine::service::Stop::Fatal(err) => err,
        engine::service::Stop::Graceful { snapshot } => return exited(service, &shared, snapshot),
    };
    // Reached only when the service stopped itself (not when killed).
    tracer(name, format!("stopped: {err}"));
    if media && names_damage(&err) && damaged_media(&SimFs::current(), id) {
        tracer(name, "corruption detected: the run ends here".into());
        lock(&shared.detected).push((name.to_string(), err.to_string()));
        return;
    }
    if !expected(&err) {
        lock(&shared.errors).push(Problem::ServiceError { node: name.to_string(), error: err.to_string() });
    }
    lock(&shared.stopped).insert(service);
}

/// A life that stopped gracefully ends as a real process does: at once, its other tasks
/// with it (no pull applied after its final snapshot), the page cache intact. The snapshot
/// it says it took must be the newest valid one on its disk, judged by the simulator.
fn exited(service: Service, shared: &Arc<Shared>, snapshot: Option<u64>) {
    let name = service.name();
    let id = madsim::plugin::node();
    let disk = SimFs::current().disk(id);
    let valid = crate::snapshots::newest_valid(&lock(&disk), &data_dir(service));
    let Some(snapshot) = snapshot else {
        (shared.tracer)(name, "stopped gracefully without a snapshot (its WAL not yet verified)".into());
        return exit(service, shared, &disk, id);
    };
    (shared.tracer)(name, format!("stopped gracefully at snapshot {snapshot}"));
    if valid != Some(snapshot) {
        let error = format!(
            "stopped gracefully saying it took snapshot {snapshot}, but the newest valid snapshot \
             on its disk is {valid:?}"
        );
        lock(&shared.errors).push(Problem::ServiceError { node: name.to_string(), error });
    }
    exit(service, shared, &disk, id)
}

/// The process ends (its page cache survives); the supervisor restarts it.
fn exit(service: Service, shared: &Shared, disk: &Mutex<crate::fs::Disk>, id: NodeId) {
    lock(&shared.exited).insert(service);
    shared.exits.fetch_add(1, Ordering::SeqCst);
    lock(disk).set_next_death(crate::fs::Death::ProcessCrash);
    madsim::runtime::Handle::current().kill(id);
}
