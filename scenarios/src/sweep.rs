//! Seed sweeps over scenarios, and the in-memory differential run: a seeded workload runs
//! through the engine's pipeline and the reference model side by side; the invariants and
//! the full state comparison are checked along the way and at the end.

use crate::checker::{self, ExchangeView};
use crate::model::Model;
use crate::scenario::{Params, RunReport, Scenario};
use crate::workload::{self, WorkloadConfig};
use engine::Pipeline;
use serde::Serialize;
use std::time::Instant;

/// How often (in commands) the invariants and the state comparison run during a run.
pub const CHECK_EVERY: usize = 500;

/// The outcome of one in-memory differential run.
#[derive(Clone, Debug, Serialize)]
pub struct DifferentialReport {
    /// The seed.
    pub seed: u64,
    /// Commands submitted (including initial deposits).
    pub commands: usize,
    /// Trades executed.
    pub trades: u64,
    /// The first failed check, described; `None` when the run passed.
    pub failure: Option<String>,
    /// Wall time of the run in microseconds.
    pub wall_us: u64,
}

/// Runs the in-memory differential scenario for one seed.
pub fn run_differential(seed: u64, config: &WorkloadConfig) -> DifferentialReport {
    let started = Instant::now();
    let mut rng = sim::seed::rng(seed, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut rng, config);
    let markets = workload::default_markets();
    let mut engine = Pipeline::with_logs(markets.clone());
    let mut model = Model::new(markets);
    let mut failure = None;
    for (i, command) in commands.iter().enumerate() {
        let want = model.submit(*command);
        let got = match engine.submit(*command) {
            Ok(ack) => ack,
            Err(e) => {
                failure = Some(format!("command #{i} {command:?}: engine error: {e}"));
                break;
            }
        };
        if want != got {
            failure = Some(format!(
                "command #{i} {command:?}: ack\n  expected (model): {want:?}\n  actual (engine):  {got:?}"
            ));
            break;
        }
        if (i + 1) % CHECK_EVERY == 0 || i + 1 == commands.len() {
            if let Err(e) = check(&engine, &model) {
                failure = Some(format!("after command #{i}: {e}"));
                break;
            }
        }
    }
    DifferentialReport {
        seed,
        commands: commands.len(),
        trades: engine.settlement().last_trade_id(),
        failure,
        wall_us: started.elapsed().as_micros() as u64,
    }
}

/// Invariants of the engine's state and event log, then equality with the model.
pub fn check(engine: &Pipeline, model: &Model) -> Result<(), String> {
    checker::check_state(&ExchangeView::of_engine(engine)).map_err(|e| format!("invariant: {e}"))?;
    checker::check_event_log(engine.events()).map_err(|e| format!("invariant: {e}"))?;
    checker::compare(engine, model).map_err(|e| format!("engine differs from model: {e}"))
}

/// Runs every (scenario, seed) pair on `jobs` threads, calling `progress` after each
/// run; reports in (scenario, seed) order.
pub fn sweep(
    runs: &[(Scenario, u64)],
    params: &Params,
    jobs: usize,
    progress: impl Fn(&RunReport) + Sync,
) -> Vec<RunReport> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reports = std::sync::Mutex::new(Vec::with_capacity(runs.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((scenario, seed)) = runs.get(i) else { break };
                    let report = crate::scenario::run(*scenario, *seed, params);
                    progress(&report);
                    reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| (r.scenario, r.seed));
    reports
}
