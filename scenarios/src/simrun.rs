//! Runs the whole exchange in the simulated world and judges the result against the
//! reference model: UBSCore's committed history is the agreed history; the model replays
//! it and must agree with every recorded outcome; every acknowledged command is in it
//! exactly once; the recovered state of all three services, the ME's event log and the
//! settlement ledger equal the model's.

use crate::checker::{self, ExchangeView};
use crate::model::Model;
use crate::scenario::{Params, Scenario};
use crate::workload::{self, WorkloadConfig};
use engine::durable::{DurableConfig, SnapshotPolicy, UbsEntry};
use engine::service::Recovered;
use engine::wal::WalConfig;
use engine::{CommandKey, Markets};
use rand::Rng;
use sim::fs::FaultConfig;
use sim::world::{Chaos, WorldConfig, WorldResult};
use std::collections::BTreeMap;
use std::time::Duration;

/// The world of one (scenario, seed, parameters).
pub fn world_config(scenario: Scenario, seed: u64, commands: usize, params: &Params) -> WorldConfig {
    let mut cfg = crash_world(seed, commands);
    let c = &mut cfg.chaos;
    match scenario {
        Scenario::Differential | Scenario::Baseline => {
            *c = Chaos::none();
            cfg.faults = FaultConfig::perfect();
        }
        Scenario::Crash => {}
        Scenario::ProcessCrash => {
            c.process_crash = 0.7;
            cfg.faults.eio_fsync = 0.01;
        }
        Scenario::TornTail => {
            cfg.faults = FaultConfig { lose_write: 0.2, tear_write: 0.7, ..FaultConfig::default() };
            c.crash_window = 12;
        }
        Scenario::SnapshotCrash => {
            cfg.storage.snapshots = SnapshotPolicy::every(40, 0);
            c.crash_window = 40;
        }
        Scenario::RecoveryCrash => c.crash_in_recovery = 0.6,
        Scenario::CorruptSnapshot => {
            cfg.storage.snapshots = SnapshotPolicy::every(150, 0);
            c.corrupt_snapshot = 0.5;
        }
        Scenario::FsyncEio => cfg.faults.eio_fsync = 0.01,
        Scenario::DiskFull => cfg.faults.enospc_write = 0.01,
        Scenario::Network => {
            c.node_faults = false;
            c.partitions = true;
            c.loss = 0.05;
            c.duplicate = 0.05;
        }
        Scenario::Chaos => {
            c.partitions = true;
            c.loss = 0.01;
            c.duplicate = 0.02;
        }
        Scenario::Swarm => swarm(seed, &mut cfg),
    }
    if let Some(ms) = params.fault_every_ms {
        cfg.chaos.fault_every_ms = ms;
    }
    cfg.print_trace = params.trace;
    cfg.planted = params.planted;
    cfg
}

/// Swarm testing: every rate drawn from the seed's swarm stream, so that a sweep covers
/// quiet runs, storms and everything between.
fn swarm(seed: u64, cfg: &mut WorldConfig) {
    let mut r = sim::seed::rng(seed, sim::seed::Stream::Swarm);
    // With probability `p` a rate in `0..hi`, else 0.
    fn maybe(r: &mut rand_chacha::ChaCha8Rng, p: f64, hi: f64) -> f64 {
        if r.gen_bool(p) { r.gen_range(0.0..hi) } else { 0.0 }
    }
    let (loss, duplicate) = (maybe(&mut r, 0.5, 0.05), maybe(&mut r, 0.5, 0.05));
    let (crash_in_recovery, corrupt_snapshot) = (maybe(&mut r, 0.3, 0.7), maybe(&mut r, 0.3, 0.6));
    let (eio_fsync, enospc, tear) =
        (maybe(&mut r, 0.3, 0.02), maybe(&mut r, 0.3, 0.02), maybe(&mut r, 0.8, 0.8));
    let fault_every_ms = [50, 150, 300, 1_000, 5_000][r.gen_range(0..5)];
    let crash_window = [5, 20, 60, 200][r.gen_range(0..4)];
    let snapshot_every = [20, 100, 400, 2_000][r.gen_range(0..4)];
    let partitions = r.gen_bool(0.5);
    let process_crash = maybe(&mut r, 0.5, 1.0);
    cfg.chaos = Chaos {
        fault_every_ms,
        max_down_ms: 200,
        partitions,
        loss,
        duplicate,
        crash_window,
        crash_in_recovery,
        corrupt_snapshot,
        node_faults: true,
        process_crash,
    };
    cfg.faults = FaultConfig {
        lose_write: (1.0 - tear) / 2.0,
        tear_write: tear,
        eio_fsync,
        enospc_write: enospc,
        ..FaultConfig::default()
    };
    cfg.storage.snapshots = SnapshotPolicy::every(snapshot_every, 0);
}

/// A world with the seeded workload, crashes of every service, torn and lost writes.
pub fn crash_world(seed: u64, commands: usize) -> WorldConfig {
    let mut wl = sim::seed::rng(seed, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands, users: 50 });
    // A handful of snapshots per run, whatever its length: each one copies the state.
    let snapshot_every = (commands.len() as u64 / 6).max(200);
    WorldConfig {
        seed,
        markets: workload::default_markets(),
        commands,
        clients: 4,
        chaos: Chaos { fault_every_ms: 300, max_down_ms: 200, node_faults: true, ..Chaos::none() },
        faults: FaultConfig::default(),
        storage: DurableConfig {
            wal: WalConfig::segments(64 << 10),
            snapshots: SnapshotPolicy::every(snapshot_every, 0),
            keep_snapshots: 2,
            retention: false,
        },
        print_trace: false,
        max_safety: Duration::from_secs(600),
        planted: None,
    }
}

/// The recoveries of a run, indexed by the point of history each recovered to.
struct RecoveryPoints<'r> {
    /// UBSCore recoveries by the number of WAL entries they hold.
    ubs: BTreeMap<u64, Vec<(usize, &'r engine::ubscore::UbsState)>>,
    /// Matching recoveries by the last `ubs_seq` their snapshot covers.
    me: BTreeMap<u64, Vec<(usize, &'r engine::matching::MeState)>>,
    /// Settlement recoveries.
    settlement: Vec<(usize, &'r [engine::Trade])>,
}

impl<'r> RecoveryPoints<'r> {
    fn new(result: &'r WorldResult) -> RecoveryPoints<'r> {
        let mut p = RecoveryPoints { ubs: BTreeMap::new(), me: BTreeMap::new(), settlement: Vec::new() };
        for (i, (_, _, r)) in result.recoveries.iter().enumerate() {
            match r {
                Recovered::Ubs { wal_seq, state } => p.ubs.entry(*wal_seq).or_default().push((i, state)),
                Recovered::Matching { state } => p.me.entry(state.last_ubs_seq).or_default().push((i, state)),
                Recovered::Settlement { ledger } => p.settlement.push((i, ledger)),
            }
        }
        p
    }

    /// UBSCore recovered to `wal_seq` entries must hold the model's balances and counters there.
    fn check_at_wal(&self, model: &Model, wal_seq: u64) -> Result<(), String> {
        for (i, state) in self.ubs.get(&wal_seq).into_iter().flatten() {
            let got: BTreeMap<_, _> =
                state.balances.iter().filter(|(_, b)| b.avail != 0 || b.frozen != 0).copied().collect();
            let want = model.balances();
            let fail = |what: &str, w: String, g: String| {
                Err(format!(
                    "recovery #{i} of ubscore (at WAL seq {wal_seq}): {what}\n  expected (model): {w}\n  actual:           {g}"
                ))
            };
            if got != want {
                let key = want.keys().chain(got.keys()).find(|k| want.get(k) != got.get(k)).copied();
                return fail(
                    &format!("balance of {key:?}"),
                    format!("{:?}", key.and_then(|k| want.get(&k))),
                    format!("{:?}", key.and_then(|k| got.get(&k))),
                );
            }
            if state.next_seq != model.history().len() as u64 + 1 {
                return fail(
                    "next ubs_seq",
                    (model.history().len() + 1).to_string(),
                    state.next_seq.to_string(),
                );
            }
            if state.last_event_id != model.applied_event_id() {
                return fail(
                    "last applied ME event",
                    model.applied_event_id().to_string(),
                    state.last_event_id.to_string(),
                );
            }
        }
        Ok(())
    }

    /// The matching engine recovered to `ubs_seq` must hold the model's books there.
    fn check_at_ubs_seq(&self, model: &Model, ubs_seq: u64) -> Result<(), String> {
        for (i, state) in self.me.get(&ubs_seq).into_iter().flatten() {
            let fail = |what: &str, w: String, g: String| {
                Err(format!(
                    "recovery #{i} of matching (at ubs_seq {ubs_seq}): {what}\n  expected (model): {w}\n  actual:           {g}"
                ))
            };
            if state.books != model.books() {
                return fail("books", format!("{:?}", model.books()), format!("{:?}", state.books));
            }
            if state.next_event_id != model.events().len() as u64 + 1 {
                return fail(
                    "next event id",
                    (model.events().len() + 1).to_string(),
                    state.next_event_id.to_string(),
                );
            }
            if state.next_trade_id != model.ledger().len() as u64 + 1 {
                return fail(
                    "next trade id",
                    (model.ledger().len() + 1).to_string(),
                    state.next_trade_id.to_string(),
                );
            }
        }
        Ok(())
    }

    /// Every recovered settlement ledger is a prefix of the model's trades.
    fn check_settlement(&self, model: &Model) -> Result<(), String> {
        for (i, ledger) in &self.settlement {
            let want = model.ledger().get(..ledger.len()).unwrap_or(model.ledger());
            checker::first_difference(&format!("recovery #{i} of settlement: ledger"), want, ledger)?;
        }
        Ok(())
    }
}

/// Judges a finished world. Returns the first failed check, described.
pub fn check(result: &WorldResult, markets: &Markets) -> Result<(), String> {
    if let Some(e) = result.errors.first() {
        return Err(e.clone());
    }
    let f = result.final_state.as_ref().ok_or("the services could not be recovered from disk")?;
    // UBSCore's WAL interleaves commands with the ME events it applied; each command's
    // outcome depends on the events applied before it, so the model replays both. On the
    // way, every recovery is checked at the point of history it recovered to.
    let points = RecoveryPoints::new(result);
    let mut model = Model::deferred(markets.clone());
    points.check_at_wal(&model, 0)?;
    points.check_at_ubs_seq(&model, 0)?;
    for (i, entry) in f.entries.iter().enumerate() {
        match entry {
            UbsEntry::Command(r) => {
                let ack = model.submit(r.command);
                if ack.seq != Some(r.seq) || ack.outcome != r.outcome {
                    return Err(format!("history entry {r:?}: the model gives {ack:?}"));
                }
                points.check_at_ubs_seq(&model, r.seq)?;
            }
            UbsEntry::Event(e) => model.apply_event(e).map_err(|x| format!("applied event: {x}"))?,
        }
        points.check_at_wal(&model, i as u64 + 1)?;
    }
    points.check_settlement(&model)?;
    let by_key: BTreeMap<CommandKey, &engine::UbsRecord> =
        f.history.iter().map(|r| (r.command.key(), r)).collect();
    if by_key.len() != f.history.len() {
        return Err("a command id appears twice in UBSCore's history".into());
    }
    for (command, ack) in &result.acked {
        let Some(r) = by_key.get(&command.key()) else {
            return Err(format!("acknowledged command {command:?} ({ack:?}) is not in the history: lost"));
        };
        if r.command == *command && (r.outcome != ack.outcome || ack.seq.is_some_and(|s| s != r.seq)) {
            return Err(format!("acknowledged {ack:?} for {command:?}, history says {r:?}"));
        }
    }
    let view = ExchangeView::of_parts(f.ubs.core(), f.me.engine(), f.settlement.durable_trade_id());
    checker::check_state(&view).map_err(|e| format!("invariant: {e}"))?;
    let want = ExchangeView::of_model(&model);
    if view != want {
        return Err(format!(
            "recovered state differs from the model:\n  model:  {want:?}\n  engine: {view:?}"
        ));
    }
    let events = f.me.events_after(0, usize::MAX).map_err(|e| e.to_string())?;
    checker::first_difference("me events", model.events(), &events)?;
    checker::first_difference("settlement ledger", model.ledger(), f.settlement.settlement().ledger())?;
    Ok(())
}
