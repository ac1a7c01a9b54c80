//! Seed sweeps over scenarios, and the in-memory differential run: a seeded workload runs
//! through the engine's pipeline and the reference model side by side; the invariants and
//! the full state comparison are checked along the way and at the end.

use crate::checker::{self, ExchangeView, Violation};
use crate::model::Model;
use crate::scenario::{Params, RunOptions, RunReport, Scenario};
use crate::seeds::RunList;
use crate::workload::{self, WorkloadConfig};
use engine::Pipeline;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

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
    /// Whether it was cancelled (its wall-clock limit passed) before the end.
    pub cancelled: bool,
}

/// Runs the in-memory differential scenario for one seed.
pub fn run_differential(
    seed: u64,
    config: &WorkloadConfig,
    cancel: Option<&AtomicBool>,
) -> DifferentialReport {
    let started = Instant::now();
    let mut rng = sim::seed::rng(seed, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut rng, config);
    let markets = workload::default_markets();
    let mut engine = Pipeline::with_logs(markets.clone());
    let mut model = Model::new(markets);
    let mut failure = None;
    let mut cancelled = false;
    for (i, command) in commands.iter().enumerate() {
        if i % CHECK_EVERY == 0 && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            failure = Some(format!("cancelled after {i} of {} commands", commands.len()));
            cancelled = true;
            break;
        }
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
        cancelled,
    }
}

/// Invariants of the engine's state and event log, then equality with the model.
pub fn check(engine: &Pipeline, model: &Model) -> Result<(), String> {
    checker::check_state(&ExchangeView::of_engine(engine)).map_err(|e| format!("invariant: {e}"))?;
    checker::check_event_log(engine.events()).map_err(|e| format!("invariant: {e}"))?;
    checker::compare(engine, model).map_err(|e| format!("engine differs from model: {e}"))
}

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Worker threads, each running one simulation at a time.
    pub jobs: usize,
    /// Wall-clock limit of one run: a run over it is cancelled and fails as a timeout.
    pub run_timeout: Duration,
    /// Stop starting runs once this many failed (runs in flight finish).
    pub max_failures: Option<u64>,
}

/// The runs in flight, for a heartbeat that names the slowest.
#[derive(Debug, Default)]
pub struct InFlight {
    runs: Mutex<BTreeMap<usize, (Scenario, u64, Instant)>>,
}

impl InFlight {
    /// The run in flight for longest: scenario, seed, and for how long.
    pub fn slowest(&self) -> Option<(Scenario, u64, Duration)> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.values().min_by_key(|(_, _, since)| *since).map(|(s, seed, since)| (*s, *seed, since.elapsed()))
    }

    fn set(&self, worker: usize, run: Option<(Scenario, u64)>) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        match run {
            Some((s, seed)) => runs.insert(worker, (s, seed, Instant::now())),
            None => runs.remove(&worker),
        };
    }
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepOutcome {
    /// Every run done, in (scenario, seed) order; passing runs without their plan.
    pub reports: Vec<RunReport>,
    /// Runs not started because `max_failures` was reached.
    pub skipped: u64,
    /// Timed-out runs that did not stop when cancelled (their threads are abandoned: the
    /// process should exit without waiting for them).
    pub abandoned: u64,
}

/// How long a cancelled run has to stop before its thread is abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Runs every run of `runs` on `opts.jobs` threads, calling `progress` after each.
pub fn sweep(
    runs: &RunList,
    params: &Params,
    opts: &SweepOptions,
    in_flight: &InFlight,
    progress: impl Fn(&RunReport) + Sync,
) -> SweepOutcome {
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let abandoned = AtomicU64::new(0);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..opts.jobs.max(1) {
            let (next, failures, abandoned, reports) = (&next, &failures, &abandoned, &reports);
            let progress = &progress;
            scope.spawn(move || {
                loop {
                    if opts.max_failures.is_some_and(|m| failures.load(Ordering::SeqCst) >= m) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= runs.len() {
                        break;
                    }
                    let (scenario, seed) = runs.get(i);
                    in_flight.set(worker, Some((scenario, seed)));
                    let (mut report, stuck) = run_with_limit(scenario, seed, params, opts.run_timeout);
                    in_flight.set(worker, None);
                    abandoned.fetch_add(u64::from(stuck), Ordering::SeqCst);
                    if report.failure.is_some() {
                        failures.fetch_add(1, Ordering::SeqCst);
                    } else {
                        report.plan = None;
                    }
                    progress(&report);
                    reports.lock().unwrap_or_else(|e| e.into_inner()).push(report);
                }
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|e| e.into_inner());
    reports.sort_by_key(|r| (r.scenario, r.seed));
    SweepOutcome {
        skipped: runs.len().saturating_sub(reports.len() as u64),
        reports,
        abandoned: abandoned.into_inner(),
    }
}

/// One run on its own thread under a wall-clock `limit`: past it, the run is cancelled
/// (it stops at its next simulated step) and fails as a timeout. Returns the report and
/// whether the run's thread had to be abandoned (it did not stop within a grace period).
pub fn run_with_limit(scenario: Scenario, seed: u64, params: &Params, limit: Duration) -> (RunReport, bool) {
    let cancel = Arc::new(AtomicBool::new(false));
    let options = RunOptions { cancel: Some(cancel.clone()), ..RunOptions::default() };
    let (tx, rx) = mpsc::channel();
    let params_copy = *params;
    let spawned = std::thread::Builder::new().name(format!("{scenario}-{seed}")).spawn(move || {
        let _ = tx.send(crate::scenario::run_with(scenario, seed, &params_copy, &options));
    });
    if spawned.is_err() {
        // No thread to spare: run here, without a limit.
        return (crate::scenario::run(scenario, seed, params), false);
    }
    let started = Instant::now();
    let detail = |how: &str| format!("wall-clock limit of {} passed: {how}", seconds(limit));
    match rx.recv_timeout(limit) {
        Ok(report) => (report, false),
        Err(mpsc::RecvTimeoutError::Disconnected) => (
            failed_report(
                scenario,
                seed,
                params,
                Violation::Panic { message: "the run's thread died".into() },
            ),
            false,
        ),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            cancel.store(true, Ordering::SeqCst);
            match rx.recv_timeout(CANCEL_GRACE) {
                Ok(mut report) => {
                    match &mut report.violation {
                        Some(Violation::Timeout { detail: d }) => *d = detail(d),
                        // It finished after its limit: over budget all the same.
                        None => {
                            let how = format!("finished after {}", seconds(started.elapsed()));
                            report.violation = Some(Violation::Timeout { detail: detail(&how) });
                        }
                        // A finding made before the cancel stands.
                        Some(_) => {}
                    }
                    report.failure = report.violation.as_ref().map(Violation::to_string);
                    (report, false)
                }
                Err(_) => {
                    let how = "the run did not stop when cancelled (abandoned)";
                    let mut report =
                        failed_report(scenario, seed, params, Violation::Timeout { detail: detail(how) });
                    report.wall_us = started.elapsed().as_micros() as u64;
                    (report, true)
                }
            }
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The report of a run that produced none of its own.
fn failed_report(scenario: Scenario, seed: u64, params: &Params, violation: Violation) -> RunReport {
    let mut report = RunReport::empty(scenario, seed, params.commands.unwrap_or(scenario.default_commands()));
    report.failure = Some(violation.to_string());
    report.violation = Some(violation);
    report
}
