//! `exsim crashtest`: a cluster on a temporary directory under load, a seeded controller
//! that kills a random service at random moments (SIGKILL, sometimes SIGTERM) and restarts
//! it, then the verdict of the simulator's checker on what the real disk holds.

use super::Service;
use super::cluster::Cluster;
use super::judge::{Judged, judge};
use super::load::{self, LoadConfig, LoadResult, percentile};
use crate::checker::Violation;
use engine::service::{Request, Response, rpc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a crash test runs.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    /// How long the load and the kills go on.
    pub duration: Duration,
    /// Mean time between two kills.
    pub kill_every: Duration,
    /// Seeds the workload and the controller's choices.
    pub seed: u64,
    /// Probability that a kill is a SIGTERM (graceful) rather than a SIGKILL.
    pub term: f64,
    /// Concurrent clients.
    pub clients: usize,
    /// The cluster's directory (kept); `None`: a temporary one, removed if the test passes.
    pub data: Option<PathBuf>,
    /// A planted bug for the nodes (a build with `--features planted-bugs`).
    pub plant: Option<String>,
    /// The services the controller may kill (not empty).
    pub targets: Vec<Service>,
}

/// One kill and what followed.
#[derive(Clone, Debug)]
pub struct Kill {
    /// The service.
    pub service: Service,
    /// SIGTERM (true) or SIGKILL.
    pub graceful: bool,
    /// A SIGTERM that ended with a snapshot (the node says so as it exits): its restart
    /// must replay nothing. A matching engine stopped before it verified its WAL takes none.
    pub clean: bool,
    /// From the signal to serving again.
    pub rto: Duration,
    /// WAL entries its restart replayed after its snapshot (graceful stops: must be 0).
    pub replayed: Option<u64>,
}

/// What a crash test found.
#[derive(Debug)]
pub struct CrashReport {
    /// The cluster's directory.
    pub data: PathBuf,
    /// Every kill.
    pub kills: Vec<Kill>,
    /// Restarts of services that stopped on their own (a fatal error), by service.
    pub self_restarts: Vec<(Service, String)>,
    /// Services that did not exit 0 at the final SIGTERM, and how they ended.
    pub unclean_stops: Vec<(Service, String)>,
    /// The load.
    pub load: LoadResult,
    /// Whether the services caught up with each other after the load (a liveness check).
    pub converged: Result<(), String>,
    /// The verdict (what the checker judged, or the violation).
    pub verdict: Result<Judged, Violation>,
}

/// Why a crash test could not run (distinct from a failed verdict).
#[derive(Debug)]
pub struct CrashError(pub String);

impl std::fmt::Display for CrashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(what: &str) -> impl Fn(std::io::Error) -> CrashError + '_ {
    move |e| CrashError(format!("{what}: {e}"))
}

/// How long a service may take to serve after a (re)start before the test fails.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Runs a crash test with executable `exe` (this program, which runs the nodes).
pub async fn run(exe: &Path, cfg: &CrashConfig) -> Result<CrashReport, CrashError> {
    assert!(!cfg.targets.is_empty(), "a crash test needs a service to kill");
    let data = match &cfg.data {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("exsim-crashtest-{}-{}", std::process::id(), cfg.seed)),
    };
    // The judge compares the directory's whole history with this run's commands.
    if std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(CrashError(format!(
            "{}: not empty (a crash test needs a fresh directory)",
            data.display()
        )));
    }
    let mut cluster = Cluster::new(exe, &data, cfg.plant.clone()).map_err(err("cluster"))?;
    let probe = rpc::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(err("probe endpoint"))?;
    for s in Service::ALL {
        cluster.spawn(s).map_err(err("start"))?;
    }
    for s in Service::ALL {
        if cluster.serving(&probe, s, START_LIMIT).await.is_none() {
            return Err(CrashError(format!(
                "{s} did not start serving within {START_LIMIT:?}; see {}",
                cluster.log(s).display()
            )));
        }
    }
    let load_cfg = LoadConfig {
        addr: cluster.addrs.ubscore,
        // More than the test can send (about 2,000 acknowledged commands/s here), without
        // generating millions up front.
        commands: (cfg.duration.as_secs() as usize).saturating_mul(20_000).clamp(10_000, 5_000_000),
        clients: cfg.clients,
        rate: None,
        seed: cfg.seed,
        timeout: Duration::from_millis(300),
    };
    let end = Instant::now() + cfg.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let load_stop = stop.clone();
    let load = tokio::spawn(async move { load::run(&load_cfg, end, load_stop).await });
    let mut failure = None;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6b69_6c6c);
    let mut kills = Vec::new();
    let mut self_restarts = Vec::new();
    while Instant::now() < end {
        let mean = cfg.kill_every.as_millis().max(2) as u64;
        let pause = Duration::from_millis(rng.gen_range(mean / 2..=mean * 3 / 2));
        tokio::time::sleep(pause.min(end.saturating_duration_since(Instant::now()))).await;
        supervise(&mut cluster, &mut self_restarts)?;
        if Instant::now() >= end {
            break;
        }
        let service = cfg.targets[rng.gen_range(0..cfg.targets.len())];
        // The first kill is a SIGTERM whenever SIGTERMs are asked for: every test shows a
        // clean restart, whatever the timing allows.
        let graceful = rng.gen_bool(cfg.term.clamp(0.0, 1.0)) || (kills.is_empty() && cfg.term > 0.0);
        // Only a serving node is signalled (one just restarted may not handle SIGTERM yet).
        if !cluster.running(service) || cluster.serving(&probe, service, START_LIMIT).await.is_none() {
            failure = Some(format!("{service} is not serving: {}", last_line(&cluster.log(service))));
            stop.store(true, Ordering::SeqCst);
            break;
        }
        match kill_and_restart(&mut cluster, &probe, service, graceful).await? {
            Ok(kill) => kills.push(kill),
            Err(why) => {
                // It cannot come back: stop here, and let the checker judge the disk.
                failure = Some(why);
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    let load = load.await.map_err(|e| CrashError(format!("load: {e}")))?;
    supervise(&mut cluster, &mut self_restarts)?;
    let mut unclean_stops = Vec::new();
    let converged = match &failure {
        Some(why) => Err(why.clone()),
        None => converge(&cluster, &probe, Duration::from_secs(30)).await,
    };
    for (s, status) in cluster.stop_all(Duration::from_secs(10)).await.map_err(err("stop"))? {
        if !status.is_some_and(|st| st.success()) {
            let how = status.map_or("still running 10 s after it".into(), |st| st.to_string());
            unclean_stops.push((s, how));
        }
    }
    drop(cluster);
    let verdict = judge(&data, &crate::workload::default_markets(), &load.sent, &load.acks());
    Ok(CrashReport { data, kills, self_restarts, unclean_stops, load, converged, verdict })
}

/// Waits until the services agree (matching has pulled all of UBSCore's history, UBSCore
/// all of matching's events, settlement all trades), as the simulation's liveness phase
/// does before its final check: the end state is then the whole history's.
async fn converge(cluster: &Cluster, probe: &rpc::Endpoint, within: Duration) -> Result<(), String> {
    let start = Instant::now();
    let a = cluster.addrs;
    let status = |addr| async move {
        match rpc::call(probe, addr, &Request::Status, Duration::from_millis(500)).await {
            Some(Response::Status(s)) => Some(s),
            _ => None,
        }
    };
    let mut last = None;
    while start.elapsed() < within {
        let (u, m, s) = (status(a.ubscore).await, status(a.matching).await, status(a.settlement).await);
        if let (Some(u), Some(m), Some(s)) = (u, m, s) {
            if m.ubs_seq == u.ubs_seq && u.event_id == m.event_id && s.trade_id == m.trade_id {
                return Ok(());
            }
            last = Some((u, m, s));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the services did not converge within {within:?}: last status {last:?}"))
}

/// Restarts services that stopped on their own (a fatal error: they recover from disk).
fn supervise(cluster: &mut Cluster, restarts: &mut Vec<(Service, String)>) -> Result<(), CrashError> {
    for (s, status) in cluster.exited().map_err(err("wait"))? {
        restarts.push((s, status.to_string()));
        cluster.spawn(s).map_err(err("restart"))?;
    }
    Ok(())
}

/// Kills `s` (SIGKILL, or SIGTERM when `graceful`), restarts it and waits until it serves.
/// `Ok(Err(why))`: it did not stop as asked or did not come back (a finding, not a harness
/// error).
async fn kill_and_restart(
    cluster: &mut Cluster,
    probe: &rpc::Endpoint,
    s: Service,
    graceful: bool,
) -> Result<Result<Kill, String>, CrashError> {
    let log_len = std::fs::metadata(cluster.log(s)).map(|m| m.len()).unwrap_or(0);
    let start = Instant::now();
    cluster.signal(s, if graceful { libc::SIGTERM } else { libc::SIGKILL }).map_err(err("signal"))?;
    let status = cluster.wait_exit(s, Duration::from_secs(10)).await.map_err(err("wait"))?;
    let Some(status) = status else {
        return Ok(Err(format!("{s} did not exit within 10 s of its signal")));
    };
    if graceful && !status.success() {
        return Ok(Err(format!(
            "{s} stopped by SIGTERM exited with {status}: {}",
            last_line(&cluster.log(s))
        )));
    }
    cluster.spawn(s).map_err(err("restart"))?;
    if cluster.serving(probe, s, START_LIMIT).await.is_none() {
        let last = last_line(&cluster.log(s));
        return Ok(Err(format!("{s} did not serve again within {START_LIMIT:?}: {last}")));
    }
    let rto = start.elapsed();
    let replayed = replayed_since(&cluster.log(s), log_len, s);
    let clean = graceful && !stop_line_since(&cluster.log(s), log_len).contains(NO_SNAPSHOT);
    Ok(Ok(Kill { service: s, graceful, clean, rto, replayed }))
}

/// How a node that stops gracefully without a snapshot says so (`exsim node`).
pub const NO_SNAPSHOT: &str = "without a snapshot (its WAL not yet verified)";

/// The line in which a node said how it stopped, in `log` after byte `from` (empty if none).
fn stop_line_since(log: &Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    text.lines().find(|l| l.contains(" stopped gracefully")).unwrap_or_default().to_string()
}

/// The last line of a node's log (its last words, when it stopped on an error).
fn last_line(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(&text).lines().last().unwrap_or("(empty log)").to_string()
}

/// The WAL entries the latest recovery in `log` (after byte `from`) replayed after its
/// snapshot, from the node's trace line.
fn replayed_since(log: &Path, from: u64, s: Service) -> Option<u64> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?).into_owned();
    let line = text.lines().rev().find(|l| l.contains(" recovered "))?;
    let field = |name: &str| -> Option<u64> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        let digits: String = line[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    match s {
        Service::Ubscore => field("replayed"),
        Service::Matching => field("to_verify"),
        // Settlement replays the trades after its checkpoint.
        Service::Settlement => {
            let checkpoint = line
                .find("checkpoint=Some(")
                .map(|at| line[at + 16..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>());
            let from = checkpoint.and_then(|c| c.parse().ok()).unwrap_or(0);
            field("last_trade_id").map(|last| last.saturating_sub(from))
        }
        Service::Replica | Service::MarketData => None,
    }
}

/// The report, readable: kills, RTO, clean restarts, load figures and the verdict.
pub fn describe(r: &CrashReport) -> String {
    let mut out = String::new();
    let term = r.kills.iter().filter(|k| k.graceful).count();
    out += &format!(
        "kills: {} (SIGKILL {}, SIGTERM {}), restarts: {}, restarts after a fatal error: {}\n",
        r.kills.len(),
        r.kills.len() - term,
        term,
        r.kills.len() + r.self_restarts.len(),
        r.self_restarts.len()
    );
    let per_service: Vec<String> = Service::ALL
        .iter()
        .map(|s| format!("{s} {}", r.kills.iter().filter(|k| k.service == *s).count()))
        .collect();
    out += &format!("kills by service: {}\n", per_service.join(", "));
    let mut rto: Vec<u64> = r.kills.iter().map(|k| k.rto.as_millis() as u64).collect();
    rto.sort_unstable();
    out += &format!(
        "RTO (signal to serving again): p50 {} ms, p99 {} ms, max {} ms\n",
        percentile(&rto, 0.5),
        percentile(&rto, 0.99),
        rto.last().copied().unwrap_or(0)
    );
    let clean: Vec<u64> = r.kills.iter().filter(|k| k.clean).filter_map(|k| k.replayed).collect();
    out += &format!("clean restarts: {}, replayed {}\n", clean.len(), clean.iter().sum::<u64>());
    let l = &r.load;
    out += &format!(
        "commands: {} acknowledged of {} sent, {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms\n",
        l.acked.len(),
        l.sent.len(),
        l.throughput(),
        l.latency_us(0.5) as f64 / 1000.0,
        l.latency_us(0.99) as f64 / 1000.0
    );
    for (s, why) in &r.self_restarts {
        out += &format!("  {s} stopped on its own: {why}\n");
    }
    for (s, how) in &r.unclean_stops {
        out += &format!("  {s} at the final SIGTERM: {how}\n");
    }
    out
}
