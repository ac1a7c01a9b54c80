//! The real-mode subcommands: `node`, `cluster`, `load`, `crashtest`. They run only in the
//! normal build (real tokio, TCP, the real disk); the simulation build names the command
//! that builds and runs it (`cargo real …`).

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `exsim node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// ubscore, matching or settlement.
    #[arg(long)]
    pub service: String,
    /// The cluster's data directory (the service keeps its files in DATA/SERVICE).
    #[arg(long)]
    pub data: PathBuf,
    /// Where UBSCore listens.
    #[arg(long)]
    pub ubscore: SocketAddr,
    /// Where the matching engine listens.
    #[arg(long)]
    pub matching: SocketAddr,
    /// Where settlement listens.
    #[arg(long)]
    pub settlement: SocketAddr,
    /// Plant a known bug (a build with --features planted-bugs).
    #[arg(long)]
    pub plant: Option<String>,
}

/// `exsim cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// The data directory (created if missing; an existing one is recovered).
    #[arg(long)]
    pub data: PathBuf,
    /// Stop (gracefully) after this many seconds; 0: at Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub duration: u64,
}

/// `exsim load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// UBSCore's address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Commands after the initial deposits.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub commands: u64,
    /// Commands per second over all clients (default: as fast as acknowledged).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rate: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub clients: u64,
    /// The workload's seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write every acknowledgement here (JSON lines).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_seconds: u64,
}

/// `exsim crashtest`.
#[derive(Args, Debug)]
pub struct CrashtestArgs {
    /// Seconds of load and kills.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration: u64,
    /// Mean milliseconds between two kills.
    #[arg(long, default_value_t = 1_500, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub kill_every: u64,
    /// Seeds the workload and the kills.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probability that a kill is a SIGTERM (graceful stop) rather than a SIGKILL.
    #[arg(long, default_value_t = 0.25)]
    pub term: f64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub clients: u64,
    /// Keep the cluster in this directory (default: a temporary one, removed on success).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Plant a known bug in the nodes (a build with --features planted-bugs).
    #[arg(long)]
    pub plant: Option<String>,
    /// The services the controller may kill, comma-separated (default: all three).
    #[arg(long, value_delimiter = ',', default_value = "ubscore,matching,settlement")]
    pub target: Vec<String>,
}

/// The simulation build cannot run real nodes: say how to.
#[cfg(madsim)]
pub fn needs_real_build(command: &str) -> String {
    format!(
        "`exsim {command}` runs the real exchange, which this simulation build cannot: \
         run it as `cargo real {command} …` (builds the normal binary in target/real)"
    )
}

#[cfg(not(madsim))]
pub use imp::*;

#[cfg(not(madsim))]
mod imp {
    use super::*;
    use exsim_scenarios::real::crashtest::{self, CrashConfig};
    use exsim_scenarios::real::load::{self, LoadConfig};
    use exsim_scenarios::real::node::{self, Ended};
    use exsim_scenarios::real::{Service, cluster::Cluster};
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn runtime() -> Result<tokio::runtime::Runtime, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))
    }

    fn service(name: &str) -> Result<Service, String> {
        exsim_scenarios::real::parse_service(name)
            .ok_or_else(|| format!("unknown service `{name}` (ubscore, matching, settlement)"))
    }

    /// `exsim node`: Ok on a graceful stop, Err(message) on a fatal error.
    pub fn node(a: NodeArgs, plant: Option<engine::bugs::Bug>) -> Result<(), (u8, String)> {
        let s = service(&a.service).map_err(|e| (2, e))?;
        let addrs =
            engine::service::Addrs { ubscore: a.ubscore, matching: a.matching, settlement: a.settlement };
        match node::run(s, &a.data, addrs, plant) {
            Ended::Graceful(Some(seq)) => {
                say!("{s} stopped gracefully: snapshot {seq}");
                Ok(())
            }
            Ended::Graceful(None) => {
                say!("{s} stopped gracefully {}", exsim_scenarios::real::crashtest::NO_SNAPSHOT);
                Ok(())
            }
            Ended::Fatal(e) => Err((1, format!("{s} stopped: {e}"))),
        }
    }

    /// `exsim cluster`: starts the three services, restarts any that stops on its own,
    /// stops them gracefully at the end.
    pub fn cluster(a: ClusterArgs) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        runtime()?.block_on(async {
            let mut c = Cluster::new(&exe, &a.data, None).map_err(|e| e.to_string())?;
            let probe =
                engine::service::rpc::bind(([127, 0, 0, 1], 0).into()).await.map_err(|e| e.to_string())?;
            for s in Service::ALL {
                c.spawn(s).map_err(|e| e.to_string())?;
            }
            for s in Service::ALL {
                c.serving(&probe, s, Duration::from_secs(20)).await.ok_or(format!("{s} did not start"))?;
            }
            let ad = c.addrs;
            say!("ubscore    {}\nmatching   {}\nsettlement {}", ad.ubscore, ad.matching, ad.settlement);
            say!("data {} (logs in {}/logs)", a.data.display(), a.data.display());
            let _ = std::io::stdout().flush();
            let end = (a.duration > 0).then(|| Instant::now() + Duration::from_secs(a.duration));
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| e.to_string())?;
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                if end.is_some_and(|e| Instant::now() >= e) {
                    break;
                }
                for (s, status) in c.exited().map_err(|e| e.to_string())? {
                    eprintln!("{s} exited ({status}); restarting");
                    c.spawn(s).map_err(|e| e.to_string())?;
                }
            }
            for (s, status) in c.stop_all(Duration::from_secs(10)).await.map_err(|e| e.to_string())? {
                say!("{s} stopped: {}", status.map_or("killed after 10 s".into(), |st| st.to_string()));
            }
            Ok(())
        })
    }

    /// `exsim load`.
    pub fn load(a: LoadArgs) -> Result<(), String> {
        let mut log = match &a.log {
            Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
            None => None,
        };
        let cfg = LoadConfig {
            addr: a.addr,
            commands: a.commands as usize,
            clients: a.clients as usize,
            rate: a.rate,
            seed: a.seed,
            timeout: Duration::from_millis(500),
        };
        let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
        let r = runtime()?.block_on(load::run(&cfg, deadline, Default::default()));
        if let Some(f) = &mut log {
            for acked in &r.acked {
                let line = serde_json::to_string(acked).map_err(|e| e.to_string())?;
                writeln!(f, "{line}").map_err(|e| e.to_string())?;
            }
        }
        say!(
            "acknowledged {} of {} commands in {:.2} s: {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.acked.len(),
            load::workload(&cfg).len(),
            r.elapsed.as_secs_f64(),
            r.throughput(),
            r.latency_us(0.5) as f64 / 1000.0,
            r.latency_us(0.99) as f64 / 1000.0,
            r.latency_us(1.0) as f64 / 1000.0
        );
        if r.acked.len() < load::workload(&cfg).len() {
            return Err(format!(
                "{} commands not acknowledged within {} s",
                load::workload(&cfg).len() - r.acked.len(),
                a.max_seconds
            ));
        }
        Ok(())
    }

    /// `exsim crashtest`: Ok when the verdict passes; Err((exit code, message)).
    pub fn crashtest(a: CrashtestArgs) -> Result<(), (u8, String)> {
        if !(0.0..=1.0).contains(&a.term) {
            return Err((2, format!("--term {} is not a probability (0 to 1)", a.term)));
        }
        let mut targets = Vec::new();
        for name in &a.target {
            let s = service(name).map_err(|e| (2, format!("--target: {e}")))?;
            if !targets.contains(&s) {
                targets.push(s);
            }
        }
        if targets.is_empty() {
            return Err((2, "--target names no service".into()));
        }
        let exe = std::env::current_exe().map_err(|e| (2, e.to_string()))?;
        let cfg = CrashConfig {
            targets,
            duration: Duration::from_secs(a.duration),
            kill_every: Duration::from_millis(a.kill_every),
            seed: a.seed,
            term: a.term,
            clients: a.clients as usize,
            data: a.data.clone(),
            plant: a.plant.clone(),
        };
        say!(
            "crashtest: seed {}, {} s, a kill every ~{} ms of {}{}",
            a.seed,
            a.duration,
            a.kill_every,
            cfg.targets.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
            a.plant.as_ref().map_or(String::new(), |b| format!(", planted bug {b}"))
        );
        let report = runtime()
            .map_err(|e| (2, e))?
            .block_on(crashtest::run(&exe, &cfg))
            .map_err(|e| (1, e.to_string()))?;
        crate::put(&crashtest::describe(&report));
        let unclean: Vec<String> = report
            .kills
            .iter()
            .filter(|k| k.clean && k.replayed != Some(0))
            .map(|k| format!("{} replayed {:?} entries after a graceful stop", k.service, k.replayed))
            .chain(report.unclean_stops.iter().map(|(s, how)| format!("{s} did not stop gracefully: {how}")))
            .collect();
        let keep = |why: String| (1, format!("{why}\ndata kept in {}", report.data.display()));
        if let Err(why) = &report.converged {
            say!("liveness: {why}");
        }
        match (&report.verdict, unclean.first()) {
            (Err(v), _) => Err(keep(format!("verdict: FAILED: {v}"))),
            (Ok(_), _) if report.converged.is_err() => Err(keep("verdict: FAILED: liveness (above)".into())),
            (Ok(_), Some(u)) => Err(keep(format!("verdict: FAILED: {u}"))),
            (Ok(j), None) if report.kills.is_empty() => Err(keep(format!(
                "verdict: FAILED: no kill happened ({} history entries)",
                j.history_entries
            ))),
            (Ok(j), None) => {
                say!("history: {} entries ({} commands) on disk", j.history_entries, j.commands);
                say!("verdict: ok");
                if a.data.is_none() {
                    let _ = std::fs::remove_dir_all(&report.data);
                }
                Ok(())
            }
        }
    }
}
