//! The end of a run: the liveness phase (no more faults; everything must converge), the
//! final power-off and recovery of every service from its disk, and the result.

use super::services::{damaged_media, names_damage};
use super::{
    FilesSeen, FinalState, MarketDataSeen, Problem, ReplicaSeen, STOPPED_ITSELF, World, WorldResult,
    data_dir, lock, state_digest,
};
use crate::fs::{Death, Fault, NodeFs};
use crate::plan::{FaultPlan, Service};
use engine::durable::pipeline::me_input;
use engine::durable::{
    DurableAudit, DurableError, DurableMarketData, DurableMatching, DurableSettlement, DurableUbs,
};
use engine::service::Recovered;
use engine::storage::FileSystem;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the services have to converge once faults stop (simulated).
const LIVENESS_BUDGET: Duration = Duration::from_secs(120);
/// Steps of 50 ms the observer has for the final round of queries (no faults: a few round
/// trips of at most 10 ms each, unless a query has to be asked again after 1 s of silence).
const FINAL_QUERY_STEPS: u64 = 400;

impl World {
    /// Stops every fault, brings every service back and waits until all three agree.
    pub async fn liveness_phase(&mut self) {
        self.trace("world", "liveness phase".into());
        self.net.update_config(|c| c.packet_loss_rate = 0.0);
        engine::service::rpc::set_duplicate_rate(0.0);
        let services = self.services();
        for &s in &services {
            {
                let disk = self.simfs.disk(self.nodes[&s]);
                let mut disk = lock(&disk);
                disk.set_crash_point(None);
                disk.clear_pins();
                disk.set_config(self.cfg.faults.healed());
            }
            let stopped_itself = lock(&self.shared.stopped).remove(&s);
            lock(&self.shared.exited).remove(&s);
            if self.is_retired(s) {
                // Gone for good (the primary after a failover).
            } else if stopped_itself {
                self.restart(s, STOPPED_ITSELF, &[]);
            } else if self.is_dead(s) {
                self.restart(s, "liveness", &[]);
            }
            for &other in &services {
                self.net.unclog_link(self.nodes[&s], self.nodes[&other]);
            }
        }
        let deadline = self.elapsed() + LIVENESS_BUDGET;
        // A converged verdict counts only from a round that started after every client was done.
        let mut first_valid_round = usize::MAX;
        let shared = self.shared.clone();
        let rounds = || shared.rounds.load(Ordering::SeqCst);
        loop {
            if self.halted() || self.timed_out() {
                break;
            }
            if self.cancelled() {
                self.time_out(format!("cancelled at {:.1} s simulated", self.elapsed().as_secs_f64()));
                break;
            }
            if self.clients_done() && first_valid_round == usize::MAX {
                first_valid_round = rounds() + 2;
            }
            // A failover under way is not convergence, even when every status agrees.
            let converged = self.shared.converged.load(Ordering::SeqCst) && self.failover_settled();
            if rounds() >= first_valid_round && converged {
                break;
            }
            if self.elapsed() > deadline {
                let detail = self.not_converged();
                lock(&self.shared.errors).push(Problem::Liveness(detail));
                break;
            }
            for s in self.take_self_stopped() {
                self.restart(s, STOPPED_ITSELF, &[]);
            }
            // A graceful stop asked for in the safety phase may end only now.
            for s in self.take_exited() {
                if !self.is_retired(s) {
                    self.restart(s, "after a graceful stop", &[]);
                }
            }
            self.advance_failover();
            self.step(Duration::from_millis(50)).await;
        }
        let verdict = if self.halted() { "halted: corruption detected" } else { "converged" };
        self.trace("world", verdict.into());
        if verdict == "converged" && lock(&self.shared.errors).is_empty() {
            self.final_queries().await;
        }
    }

    /// After convergence, with every fault stopped, every query a client may make must be
    /// answered (a service that refuses everything would otherwise pass: only answers are
    /// judged); the observer asks each once more, strictly (`queries::final_round`).
    async fn final_queries(&mut self) {
        if self.cfg.market_data.is_none() && !self.cfg.markets.order_events() {
            return;
        }
        self.shared.final_asked.store(true, Ordering::SeqCst);
        for _ in 0..FINAL_QUERY_STEPS {
            if self.shared.final_done.load(Ordering::SeqCst) {
                return;
            }
            self.step(Duration::from_millis(50)).await;
        }
        let waited = FINAL_QUERY_STEPS * 50;
        lock(&self.shared.errors).push(Problem::QueryRefused(format!(
            "the final round of queries did not end within {waited} ms"
        )));
    }

    /// Why the liveness phase failed: clients done, the last statuses, the budget spent and
    /// any failover still under way.
    fn not_converged(&self) -> String {
        let detail = format!(
            "not converged 120 s after faults stopped ({} of {} clients done); \
             last statuses (ubscore, matching, settlement, then the replica and market data if present): {}",
            self.shared.done.load(Ordering::SeqCst),
            self.clients,
            lock(&self.shared.last_statuses)
        );
        // A stall and a run too slow for its budget look the same in a simulation: both
        // are liveness failures; the detail says which budget ran out.
        let detail = match &self.budget_spent {
            Some(spent) => format!("{spent}, then {detail}"),
            None => detail,
        };
        match self.failover_state() {
            Some(state) => format!("{detail}; the failover is still {state}"),
            None => detail,
        }
    }

    /// Powers every service off, recovers each from its disk, and gathers the result.
    pub fn finish(self, plan: FaultPlan) -> WorldResult {
        let sim_time = self.elapsed();
        let messages = self.net.stat().msg_count;
        // Before the final recovery, whose reads are not the run's.
        let op_counts = self.op_counts();
        for s in self.services() {
            self.set_next_death(s, Death::PowerFailure);
            self.handle.kill(self.nodes[&s]);
        }
        let final_state = self.recover_final();
        let state_digest = final_state.as_ref().map(state_digest);
        let trace = &self.shared.trace;
        if let Some(d) = state_digest {
            trace.absorb(&format!("state digest {d:016x}"));
        }
        let (faults, crash_points) = self.fault_counts();
        let shared = &self.shared;
        let mut acked = std::mem::take(&mut *lock(&shared.acked));
        acked.sort_by_key(|(i, _, _)| *i);
        let names: Vec<&str> = self.services().iter().map(|s| s.name()).chain(["world"]).collect();
        WorldResult {
            trace_hash: trace.hash(),
            state_digest,
            trace_lines: trace.lines(),
            sim_time,
            messages,
            kills: self.kills,
            faults,
            crash_points,
            acked: acked.into_iter().map(|(_, c, a)| (c, a)).collect(),
            problems: std::mem::take(&mut *lock(&shared.errors)),
            segments_removed: self.segments_removed(),
            files: self.files_seen(),
            corruption_detected: std::mem::take(&mut *lock(&shared.detected)),
            sent: self.cfg.commands.clone(),
            final_state,
            ubs_wal_archive: lock(&self.simfs.disk(self.nodes[&Service::Ubscore]))
                .durable_archive(&PathBuf::from("/data/ubscore/wal")),
            tails: names.into_iter().map(|n| (n.to_string(), trace.tail(n))).collect(),
            trace: trace.all_lines(),
            recoveries: std::mem::take(&mut *lock(&shared.recoveries)),
            op_counts,
            storage: self.cfg.storage,
            plan,
            replica: self.cfg.replica.then(|| ReplicaSeen {
                promoted: self.promoted(),
                ..std::mem::take(&mut *lock(&shared.replica))
            }),
            market_data: self.cfg.market_data.map(|config| MarketDataSeen {
                config,
                served_ticks: std::mem::take(&mut *lock(&shared.served_ticks)),
                ticks_complete: shared.ticks_complete.load(Ordering::SeqCst),
            }),
            served: std::mem::take(&mut *lock(&shared.served)),
        }
    }

    /// The final recovery; a failure to recover is recorded as a problem (or, when it names
    /// damage inflicted on purpose, as detected corruption).
    fn recover_final(&self) -> Option<FinalState> {
        // A panic in the engine during the final recovery is a finding, not the end of the run.
        let recovered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.open_all()))
            .unwrap_or_else(|panic| Err(DurableError::Panicked(engine::service::panic_message(&*panic))));
        recovered
            .map_err(|e| {
                if self.media
                    && names_damage(&e)
                    && self.services().iter().any(|s| damaged_media(&self.simfs, self.nodes[s]))
                {
                    lock(&self.shared.detected).push(("final recovery".into(), e.to_string()));
                } else {
                    lock(&self.shared.errors).push(Problem::FinalRecovery(e.to_string()));
                }
            })
            .ok()
    }

    /// Opens the three services from their disks; the final recoveries are recoveries too:
    /// the checker judges each one at its point.
    fn open_all(&self) -> Result<FinalState, DurableError> {
        let hook = self.shared.recovery_hook(self.start, self.cfg.full_recoveries);
        // `s`'s disk, for the recovery reported as `role`'s.
        let disk_of = |s: Service, role: Service| -> Arc<dyn FileSystem> {
            let disk = self.simfs.disk(self.nodes[&s]);
            let valid = {
                let mut d = lock(&disk);
                d.revive();
                crate::snapshots::newest_valid(&d, &data_dir(s))
            };
            lock(&self.shared.newest_valid).insert(role.name().to_string(), valid);
            Arc::new(NodeFs::detached(disk))
        };
        let fs = |s: Service| disk_of(s, s);
        let (markets, storage) = (self.cfg.markets.clone(), self.cfg.storage);
        let (ubs, info) =
            DurableUbs::open(fs(Service::Ubscore), &data_dir(Service::Ubscore), markets.clone(), storage, 0)?;
        hook("ubscore", Recovered::of_ubs(&ubs, info.snapshot_seq));
        // After a failover the matching engine's data is on the promoted replica's disk.
        let matching = if self.failed_over() { Service::Replica } else { Service::Matching };
        let me_fs = disk_of(matching, Service::Matching);
        let (mut me, info) = DurableMatching::open(me_fs, &data_dir(matching), markets.clone(), storage, 0)?;
        hook("matching", Recovered::of_matching(&me, info.snapshot_seq));
        let (settlement, info) =
            DurableSettlement::open(fs(Service::Settlement), &data_dir(Service::Settlement), storage, 0)?;
        hook("settlement", Recovered::of_settlement(&settlement, info.snapshot_seq));
        if markets.order_events() {
            // Settlement's audit trail, on its disk beside the ledger.
            let dir = data_dir(Service::Settlement).join("audit");
            let valid = crate::snapshots::newest_valid(
                &lock(&self.simfs.disk(self.nodes[&Service::Settlement])),
                &dir,
            );
            lock(&self.shared.newest_valid).insert("settlement-audit".into(), valid);
            let (audit, info) = DurableAudit::open_audit(fs(Service::Settlement), &dir, storage, 0)?;
            let (state, ledger_trade_id) =
                (audit.inner().state().clone(), settlement.settlement().last_trade_id());
            hook(
                "settlement-audit",
                Recovered::Audit { state, ledger_trade_id, snapshot: info.snapshot_seq },
            );
            audit.wal().scrub()?;
        }
        let market_data = match self.cfg.market_data {
            Some(config) => {
                let dir = data_dir(Service::MarketData);
                let (md, info) = DurableMarketData::open_market_data(
                    fs(Service::MarketData),
                    &dir,
                    &markets,
                    config,
                    storage,
                    0,
                )?;
                hook("market-data", Recovered::of_market_data(&md, info.snapshot_seq));
                md.wal().scrub()?;
                Some(md)
            }
            None => None,
        };
        // Recovery reads only what it replays; the end of a run scrubs every log, so
        // damage at rest below a snapshot is refused here, loudly, or not at all.
        ubs.wal().scrub()?;
        me.wal().scrub()?;
        settlement.wal().scrub()?;
        // The matching engine re-derives its books after its snapshot and verifies its WAL.
        for r in ubs.records_after(me.last_ubs_seq(), usize::MAX)? {
            me.process(r.seq, me_input(&r).as_ref())?;
        }
        me.commit()?;
        if !me.caught_up() {
            return Err(DurableError::Divergence(
                "matching has logged events UBSCore's history does not produce".into(),
            ));
        }
        Ok(FinalState { ubs, me, settlement, market_data })
    }

    /// Faults by kind and crash points by coverage cell, every fault absorbed into the hash.
    fn fault_counts(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let mut faults: BTreeMap<String, u64> = BTreeMap::new();
        let mut crash_points: BTreeMap<String, u64> = BTreeMap::new();
        for s in self.services() {
            let disk = self.simfs.disk(self.nodes[&s]);
            let disk = lock(&disk);
            for f in disk.faults() {
                *faults.entry(f.kind().to_string()).or_default() += 1;
                if let Fault::CrashPoint { before, kind, phase, path, .. } = f {
                    // By the storage the operation touched (Settlement's node keeps two:
                    // its ledger and its audit trail), as explore names them.
                    let service = crate::fs::service_of(path);
                    *crash_points
                        .entry(crate::coverage::cell(&service, *phase, *kind, *before))
                        .or_default() += 1;
                }
                self.shared.trace.absorb(&format!("fault {f:?}"));
            }
        }
        if self.partitions > 0 {
            faults.insert("partition".into(), self.partitions);
        }
        let duplicated = engine::service::rpc::take_duplicated();
        if duplicated > 0 {
            faults.insert("message_duplicated".into(), duplicated);
        }
        // Counted, not absorbed into the hash: each stop and exit has its trace line.
        if self.stops > 0 {
            faults.insert("graceful_stop".into(), self.stops);
            faults.insert("graceful_exit".into(), self.shared.exits.load(Ordering::SeqCst));
        }
        let detected = lock(&self.shared.detected).len() as u64;
        if detected > 0 {
            faults.insert("corruption_detected".into(), detected);
        }
        self.shared.trace.absorb(&format!(
            "network faults: {} partitions, {duplicated} duplicated messages",
            self.partitions
        ));
        (faults, crash_points)
    }

    /// Every file of each service (by the disk it ran on) and the furthest offset an
    /// append to it started at.
    fn files_seen(&self) -> BTreeMap<String, FilesSeen> {
        let files = |s: &Service| {
            let disk = self.simfs.disk(self.nodes[s]);
            let disk = lock(&disk);
            let dir = data_dir(*s);
            FilesSeen {
                present: disk.files_under(&dir),
                appends: disk.furthest_appends(&dir),
                prunes_interrupted: disk.prunes_interrupted(&dir),
            }
        };
        self.services().iter().map(|s| (s.name().to_string(), files(s))).collect()
    }

    /// WAL segments made durable once and gone at the end, all services.
    fn segments_removed(&self) -> u64 {
        self.services()
            .iter()
            .map(|s| {
                let disk = self.simfs.disk(self.nodes[s]);
                let disk = lock(&disk);
                let wal = data_dir(*s).join("wal");
                let now = disk.files_under(&wal);
                let ever = disk.archived_paths(&wal);
                let segments = ever.iter().filter(|p| p.extension().is_some_and(|e| e == "wal"));
                segments.filter(|p| !now.contains(p)).count() as u64
            })
            .sum()
    }
}
