//! `exsim node`: one service as a real process. It recovers from its data directory,
//! serves and pulls over TCP, and runs until a fatal error (exit 1: the supervisor restarts
//! it and it recovers from disk) or SIGTERM (graceful: it stops serving, commits, takes a
//! snapshot and exits 0, so its restart replays nothing). Trace lines go to stdout.

use super::{Service, service_dir, storage};
use engine::bugs::Bug;
use engine::service::{Addrs, NodeEnv, Stop, run_matching, run_settlement, run_ubscore};
use engine::storage::StdFs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How a node ended.
#[derive(Debug)]
pub enum Ended {
    /// SIGTERM: stopped after a snapshot at this sequence number (`None`: the matching
    /// engine stopped before it had verified its WAL, without a snapshot).
    Graceful(Option<u64>),
    /// A fatal error (its message).
    Fatal(String),
}

/// Runs `service` on `data` until it ends. One thread (a current-thread runtime), as in
/// the simulation: a planted bug, planted per thread, reaches every task.
pub fn run(service: Service, data: &Path, addrs: Addrs, plant: Option<Bug>) -> Ended {
    engine::bugs::plant(plant);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return Ended::Fatal(format!("cannot start a runtime: {e}")),
    };
    let dir = service_dir(service, data);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Ended::Fatal(format!("{}: {e}", dir.display()));
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    let env = NodeEnv {
        name: service.name().to_string(),
        fs: Arc::new(StdFs::new()),
        dir,
        markets: crate::workload::default_markets(),
        config: storage(),
        addrs,
        pull_interval: Duration::from_millis(20),
        rpc_timeout: Duration::from_millis(500),
        batch: 256,
        trace: Arc::new(|node: &str, event: String| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{node} {event}");
            let _ = out.flush();
        }),
        on_recovered: None,
        shutdown: Some(shutdown.clone()),
        directory: None,
    };
    runtime.block_on(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                let flag = shutdown.clone();
                tokio::spawn(async move {
                    term.recv().await;
                    flag.store(true, Ordering::SeqCst);
                });
            }
            Err(e) => return Ended::Fatal(format!("cannot handle SIGTERM: {e}")),
        }
        let stop = match service {
            Service::Ubscore => run_ubscore(env).await,
            Service::Matching => run_matching(env).await,
            Service::Settlement => run_settlement(env).await,
            Service::Replica | Service::MarketData => {
                return Ended::Fatal(format!("{service} runs in simulations only"));
            }
        };
        match stop {
            Stop::Graceful { snapshot } => Ended::Graceful(snapshot),
            Stop::Fatal(e) => Ended::Fatal(e.to_string()),
        }
    })
}
