//! A cluster of the three services as child processes of this executable (`exsim node`),
//! each logging to `DIR/logs/SERVICE.log`. Started, signalled, restarted and probed by a
//! supervisor; every wait has a deadline, and dropping the cluster kills what still runs.

use super::Service;
use engine::service::{Addrs, Request, Response, rpc};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The three services' processes.
pub struct Cluster {
    exe: PathBuf,
    data: PathBuf,
    /// Where they listen.
    pub addrs: Addrs,
    plant: Option<String>,
    children: BTreeMap<Service, Child>,
}

/// A free loopback port (bound and released: the services bind it again at once).
fn free_port() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl Cluster {
    /// A cluster on `data` (created if missing) run by executable `exe`, not started yet.
    pub fn new(exe: &Path, data: &Path, plant: Option<String>) -> io::Result<Cluster> {
        std::fs::create_dir_all(data.join("logs"))?;
        let addrs = Addrs { ubscore: free_port()?, matching: free_port()?, settlement: free_port()? };
        Ok(Cluster { exe: exe.into(), data: data.into(), addrs, plant, children: BTreeMap::new() })
    }

    /// Its data directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// The log file of `s`.
    pub fn log(&self, s: Service) -> PathBuf {
        self.data.join("logs").join(format!("{}.log", s.name()))
    }

    /// Starts `s` (its previous process must have exited).
    pub fn spawn(&mut self, s: Service) -> io::Result<()> {
        let log = OpenOptions::new().create(true).append(true).open(self.log(s))?;
        let a = self.addrs;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("node").arg("--service").arg(s.name()).arg("--data").arg(&self.data);
        for (flag, addr) in
            [("--ubscore", a.ubscore), ("--matching", a.matching), ("--settlement", a.settlement)]
        {
            cmd.arg(flag).arg(addr.to_string());
        }
        if let Some(bug) = &self.plant {
            cmd.arg("--plant").arg(bug);
        }
        // Its own process group: a Ctrl-C at the terminal reaches the supervisor, which
        // stops the nodes with SIGTERM (gracefully), not the nodes themselves.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        #[cfg(target_os = "linux")]
        // SAFETY: between fork and exec only prctl(2), which is async-signal-safe, runs.
        unsafe {
            // A node dies with its supervisor, even one killed by SIGKILL.
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        self.children.insert(s, child);
        Ok(())
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) to `s`.
    pub fn signal(&mut self, s: Service, signal: i32) -> io::Result<()> {
        let child = self.children.get(&s).ok_or_else(|| io::Error::other(format!("{s} is not running")))?;
        let pid = i32::try_from(child.id()).map_err(io::Error::other)?;
        // SAFETY: kill(2) on a child we spawned and have not reaped, so the pid is ours.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `within` for `s` to exit; its exit status (`None`: still running).
    pub async fn wait_exit(&mut self, s: Service, within: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + within;
        loop {
            let Some(child) = self.children.get_mut(&s) else { return Ok(None) };
            if let Some(status) = child.try_wait()? {
                self.children.remove(&s);
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Services whose process exited on its own since the last look, with their status.
    pub fn exited(&mut self) -> io::Result<Vec<(Service, ExitStatus)>> {
        let mut out = Vec::new();
        for (s, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                out.push((*s, status));
            }
        }
        for (s, _) in &out {
            self.children.remove(s);
        }
        Ok(out)
    }

    /// Whether `s` has a process.
    pub fn running(&self, s: Service) -> bool {
        self.children.contains_key(&s)
    }

    /// Waits up to `within` for `s` to answer a status request; how long it took.
    pub async fn serving(&self, ep: &rpc::Endpoint, s: Service, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let addr = match s {
            Service::Ubscore => self.addrs.ubscore,
            Service::Matching => self.addrs.matching,
            Service::Settlement => self.addrs.settlement,
            // Real clusters run the three core services only.
            Service::Replica | Service::MarketData => return None,
        };
        while start.elapsed() < within {
            if let Some(Response::Status(_)) =
                rpc::call(ep, addr, &Request::Status, Duration::from_millis(200)).await
            {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    /// Stops every service with SIGTERM (gracefully: each snapshots and exits 0), killing
    /// what has not exited within `within`. Returns each service's exit status.
    pub async fn stop_all(&mut self, within: Duration) -> io::Result<Vec<(Service, Option<ExitStatus>)>> {
        let running: Vec<Service> = self.children.keys().copied().collect();
        for s in &running {
            self.signal(*s, libc::SIGTERM)?;
        }
        let mut out = Vec::new();
        for s in running {
            let status = self.wait_exit(s, within).await?;
            if status.is_none() {
                self.signal(s, libc::SIGKILL)?;
                self.wait_exit(s, Duration::from_secs(5)).await?;
            }
            out.push((s, status));
        }
        Ok(out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
