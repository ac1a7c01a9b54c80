//! `exsim load`: the seeded workload sent to UBSCore by real clients over TCP. Each client
//! sends its share (round-robin) one command at a time and retries it until it is
//! acknowledged or the load's deadline passes (commands carry their own ids, so a retry is
//! idempotent); every acknowledgement is recorded with its latency.

use crate::workload::{WorkloadConfig, generate};
use engine::service::{Request, Response, rpc};
use engine::{Ack, Command};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to send, and how.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// UBSCore's address.
    pub addr: SocketAddr,
    /// Commands after the initial deposits (see [`generate`]).
    pub commands: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Commands per second over all clients (`None`: as fast as acknowledged).
    pub rate: Option<u64>,
    /// The workload's seed.
    pub seed: u64,
    /// How long a request waits for its reply before it is sent again.
    pub timeout: Duration,
}

/// One acknowledged command.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Acked {
    /// Its index in the workload.
    pub index: usize,
    /// The command.
    pub command: Command,
    /// What UBSCore answered.
    pub ack: Ack,
    /// From the first send to the acknowledgement (µs).
    pub latency_us: u64,
    /// Sends it took.
    pub tries: u32,
}

/// What a load did.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Every command sent at least once (acknowledged or not).
    pub sent: Vec<Command>,
    /// Every acknowledgement, in the order they came.
    pub acked: Vec<Acked>,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Acknowledged commands per second.
    pub fn throughput(&self) -> f64 {
        self.acked.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency (µs) at quantile `q` (0..=1) of the acknowledged commands.
    pub fn latency_us(&self, q: f64) -> u64 {
        let mut l: Vec<u64> = self.acked.iter().map(|a| a.latency_us).collect();
        l.sort_unstable();
        percentile(&l, q)
    }

    /// (command, ack) pairs, as the checker takes them.
    pub fn acks(&self) -> Vec<(Command, Ack)> {
        self.acked.iter().map(|a| (a.command, a.ack)).collect()
    }
}

/// The value at quantile `q` of sorted `values` (0 when empty).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[at]
}

/// The commands a load of `cfg` sends: the seeded workload.
pub fn workload(cfg: &LoadConfig) -> Vec<Command> {
    generate(&mut ChaCha8Rng::seed_from_u64(cfg.seed), &WorkloadConfig { commands: cfg.commands, users: 100 })
}

/// Sends the workload until every command is acknowledged, `deadline` passes or `stop`
/// is set.
pub async fn run(cfg: &LoadConfig, deadline: Instant, stop: Arc<AtomicBool>) -> LoadResult {
    let commands = workload(cfg);
    let clients = cfg.clients.max(1);
    let shared = Arc::new(Mutex::new(LoadResult::default()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mine: Vec<(usize, Command)> =
            commands.iter().copied().enumerate().filter(|(i, _)| i % clients == c).collect();
        // Each client paces itself to its share of the rate.
        let gap = cfg.rate.map(|r| Duration::from_secs_f64(clients as f64 / r.max(1) as f64));
        let (cfg, shared, stop) = (cfg.clone(), shared.clone(), stop.clone());
        let over = move || Instant::now() >= deadline || stop.load(Ordering::SeqCst);
        tasks.push(tokio::spawn(async move { client(&cfg, mine, gap, &over, &shared).await }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut result = std::mem::take(&mut *shared.lock().unwrap_or_else(|e| e.into_inner()));
    result.elapsed = start.elapsed();
    result
}

async fn client(
    cfg: &LoadConfig,
    mine: Vec<(usize, Command)>,
    gap: Option<Duration>,
    over: &(dyn Fn() -> bool + Sync),
    shared: &Mutex<LoadResult>,
) {
    let Ok(ep) = rpc::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await else { return };
    let mut next = Instant::now();
    for (index, command) in mine {
        if let Some(gap) = gap {
            tokio::time::sleep_until(next.into()).await;
            next += gap;
        }
        if over() {
            return;
        }
        shared.lock().unwrap_or_else(|e| e.into_inner()).sent.push(command);
        let first = Instant::now();
        let mut tries = 0;
        while !over() {
            tries += 1;
            if let Some(Response::Ack(ack)) =
                rpc::call(&ep, cfg.addr, &Request::Submit(command), cfg.timeout).await
            {
                let latency_us = first.elapsed().as_micros() as u64;
                let acked = Acked { index, command, ack, latency_us, tries };
                shared.lock().unwrap_or_else(|e| e.into_inner()).acked.push(acked);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
