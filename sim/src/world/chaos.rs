//! The chaos actor: executes a fault plan (the seed's, drawn lazily, or an explicit one)
//! with the world's verbs during the safety phase, and supervises: services that stopped
//! themselves restart at once, a service whose crash point fired restarts after the
//! planned pause, and every fault a recovery meets is taken from the plan.

use super::{STOPPED_ITSELF, World, network_of};
use crate::fs::{CrashPoint, Death, PinnedCrash};
use crate::plan::{
    ChaosRates, FaultPlan, PlanEvent, PlannedFault, Planner, RecoveryFault, Service, describe_fault,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// The supervisor's longest sleep between two looks at the world (simulated ms).
const TICK_MS: u64 = 50;

/// How long a service asked to stop gracefully may take to exit (simulated ms): it checks
/// for the request every 50 ms, then commits and writes one snapshot.
const STOP_DEADLINE_MS: u64 = 10_000;

/// Work the chaos actor has scheduled.
#[derive(Default)]
struct Due {
    /// Killed services and when (and meeting what) they restart.
    restarts: BTreeMap<Service, (u64, Vec<RecoveryFault>)>,
    /// For a service with a crash point armed: its pause and recovery faults once it fires,
    /// and the index of its event in the executed plan (to record what it hit).
    armed: BTreeMap<Service, (u64, Vec<RecoveryFault>, Option<usize>)>,
    /// Pinned crash points not yet fired, by the index of their event in the executed plan:
    /// their pause and recovery faults.
    pinned: BTreeMap<usize, (u64, Vec<RecoveryFault>)>,
    /// Partitions and when they heal.
    heals: Vec<(u64, Service, Service)>,
    /// Services asked to stop gracefully and not yet gone: when they were asked, and their
    /// pause and recovery faults once they exit.
    stopping: BTreeMap<Service, (u64, u64, Vec<RecoveryFault>)>,
}

impl Due {
    fn earliest(&self) -> Option<u64> {
        self.restarts.values().map(|r| r.0).chain(self.heals.iter().map(|h| h.0)).min()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Runs the safety phase: until every client is done, the time budget is spent or a
/// service halted the run. Returns the plan as executed (the events that happened).
pub(super) async fn safety_phase(w: &mut World) -> FaultPlan {
    let mut executed = FaultPlan::new(w.cfg.faults, network_of(&w.cfg));
    executed.keep_commands = w.cfg.plan.as_ref().and_then(|p| p.keep_commands.clone());
    executed.snapshot_every = w.cfg.plan.as_ref().and_then(|p| p.snapshot_every);
    executed.segment_bytes = w.cfg.plan.as_ref().and_then(|p| p.segment_bytes);
    executed.clients = w.cfg.plan.as_ref().and_then(|p| p.clients);
    let mut source: Box<dyn Iterator<Item = PlanEvent>> = match &w.cfg.plan {
        Some(p) => Box::new(p.events.clone().into_iter()),
        None => Box::new(Planner::new(
            w.cfg.seed,
            ChaosRates {
                replica: w.cfg.replica,
                market_data: w.cfg.market_data.is_some(),
                ..w.cfg.chaos.rates()
            },
        )),
    };
    let mut next = source.next();
    let mut due = Due::default();
    for e in w.cfg.plan.as_ref().map(|p| p.io_errors.clone()).unwrap_or_default() {
        w.pin_error(e.service, e.at);
    }
    // Pinned crash points at 0 are armed before the services' first operation.
    while let Some(event) = next.take_if(|e| e.at_ms == 0 && matches!(e.fault, PlannedFault::CrashAt { .. }))
    {
        execute(w, &event.fault, &mut due, executed.events.len());
        executed.events.push(event);
        next = source.next();
    }
    while !w.clients_done() && w.elapsed() < w.cfg.max_safety && !w.halted() && !w.cancelled() {
        let now = ms(w.elapsed());
        let wake = next.as_ref().and_then(|e| due_at(w, e)).into_iter().chain(due.earliest()).min();
        let pause = wake.map_or(TICK_MS, |t| t.saturating_sub(now).clamp(1, TICK_MS));
        w.step(Duration::from_millis(pause)).await;
        supervise(w, &mut due, &mut executed);
        let now = ms(w.elapsed());
        if let Some(mut event) = next.take_if(|e| due_at(w, e).is_some_and(|t| t <= now)) {
            let acted = execute(w, &event.fault, &mut due, executed.events.len());
            if let PlannedFault::Kill { service, hit, .. } = &mut event.fault {
                *hit = w.last_op_hit(*service).filter(|_| acted);
            }
            event.last_ack = w.last_ack(now);
            executed.events.push(event);
            next = source.next();
        }
    }
    if w.cancelled() {
        w.time_out(format!("cancelled at {:.1} s simulated", w.elapsed().as_secs_f64()));
    } else if !w.clients_done() && !w.halted() {
        // Judged after the liveness phase: a run that then converges only needed more time.
        w.budget_spent = Some(format!(
            "simulated-time budget of {} s spent with {} of {} clients done",
            w.cfg.max_safety.as_secs(),
            w.shared.done.load(std::sync::atomic::Ordering::SeqCst),
            w.clients
        ));
    }
    executed.io_errors = w.io_errors();
    // A pinned crash point whose operation never came did nothing: not part of the run.
    let mut index = 0;
    executed.events.retain(|_| {
        index += 1;
        !due.pinned.contains_key(&(index - 1))
    });
    executed
}

/// When `e` is due: at its time, or, anchored, `delay_ms` after its command's
/// acknowledgement (`None` while that has not come).
fn due_at(w: &World, e: &PlanEvent) -> Option<u64> {
    match e.after_ack.map(|a| (a, w.ack_time(a.command))) {
        Some((a, Some(acked))) => acked.map(|t| t + a.delay_ms),
        _ => Some(e.at_ms),
    }
}

/// Restarts what must restart now, heals what must heal.
fn supervise(w: &mut World, due: &mut Due, executed: &mut FaultPlan) {
    w.advance_failover();
    let now = ms(w.elapsed());
    stops_ended(w, due, now);
    for s in w.take_self_stopped() {
        // A service that stops itself during a graceful stop ends that stop too.
        due.stopping.remove(&s);
        if !due.restarts.contains_key(&s) {
            w.restart(s, STOPPED_ITSELF, &[]);
        }
    }
    for s in w.services() {
        if w.is_dead(s) && !due.restarts.contains_key(&s) && !w.is_retired(s) {
            // A crash point fired: back after the planned pause, meeting the planned faults.
            // (During a graceful stop too: the crash took the stop's place.)
            due.stopping.remove(&s);
            w.count_kill();
            let fired = w.take_fired_pin(s);
            let pinned = fired.and_then(|i| due.pinned.remove(&i));
            let (down, recovery, event) = match pinned {
                Some((down, recovery)) => {
                    // Its death also disarmed any relative crash point (see `Disk::die`).
                    due.armed.remove(&s);
                    // Traced as it fires, not as it is armed: a pin that never fires leaves
                    // no trace, so the executed plan (which drops it) replays to the same hash.
                    let what = fired.and_then(|i| executed.events.get(i)).map(|e| describe_fault(&e.fault));
                    w.trace_fault(
                        s.name(),
                        "crash-point",
                        format!("pinned crash point fired: {}", what.unwrap_or_default()),
                    );
                    if let Some(PlannedFault::CrashAt { drawn, death: Death::PowerFailure, .. }) =
                        fired.and_then(|i| executed.events.get_mut(i)).map(|e| &mut e.fault)
                    {
                        *drawn = w.drawn_fates(s);
                    }
                    (down, recovery, None)
                }
                None => due.armed.remove(&s).unwrap_or((1, Vec::new(), None)),
            };
            if let Some(PlannedFault::CrashPoint { hit, .. }) =
                event.and_then(|i| executed.events.get_mut(i)).map(|e| &mut e.fault)
            {
                *hit = w.last_crash_hit(s);
            }
            due.restarts.insert(s, (now + down, recovery));
        }
    }
    let ready: Vec<Service> = due.restarts.iter().filter(|(_, r)| r.0 <= now).map(|(s, _)| *s).collect();
    for s in ready {
        let (_, recovery) = due.restarts.remove(&s).expect("listed");
        if w.is_retired(s) {
            continue;
        }
        let rest = w.restart(s, "planned", &recovery);
        if !rest.is_empty() || recovery.iter().any(|r| matches!(r, RecoveryFault::CrashInRecovery { .. })) {
            due.armed.insert(s, (1, rest, None));
        }
    }
    let (heal, keep): (Vec<_>, Vec<_>) = due.heals.drain(..).partition(|h| h.0 <= now);
    due.heals = keep;
    for (_, a, b) in heal {
        w.heal(a, b);
    }
}

/// Services that stopped gracefully come back after the planned pause (their exit also
/// disarmed a crash point armed with the request that did not fire); one that did not exit
/// within [`STOP_DEADLINE_MS`] of its request is a finding (a shutdown that hangs), and is
/// killed so that the run goes on.
fn stops_ended(w: &mut World, due: &mut Due, now: u64) {
    for s in w.take_exited() {
        due.armed.remove(&s);
        if let Some((_, down, recovery)) = due.stopping.remove(&s) {
            due.restarts.insert(s, (now + down, recovery));
        }
    }
    let overdue: Vec<Service> = due
        .stopping
        .iter()
        .filter(|(s, (asked, ..))| now.saturating_sub(*asked) > STOP_DEADLINE_MS && !w.is_dead(**s))
        .map(|(s, _)| *s)
        .collect();
    for s in overdue {
        let (asked, down, recovery) = due.stopping.remove(&s).expect("listed");
        w.problem(
            s,
            format!("did not exit within {} ms of its graceful-stop request at {asked} ms", STOP_DEADLINE_MS),
        );
        w.crash(s, Death::ProcessCrash);
        due.armed.remove(&s);
        due.restarts.insert(s, (now + down, recovery));
    }
}

/// One planned fault (`index`: its place in the executed plan). Returns whether it acted
/// (a kill of a service already down does not).
fn execute(w: &mut World, fault: &PlannedFault, due: &mut Due, index: usize) -> bool {
    let now = ms(w.elapsed());
    match fault {
        PlannedFault::Kill { service, death, down_ms, recovery, .. } => {
            if due.restarts.contains_key(service) || w.is_dead(*service) {
                w.trace_fault(service.name(), "kill-skipped", "kill skipped: already down".into());
                return false;
            }
            w.crash(*service, *death);
            due.armed.remove(service);
            // A kill cuts a graceful stop short: the kill's pause and faults apply.
            due.stopping.remove(service);
            due.restarts.insert(*service, (now + down_ms, recovery.clone()));
        }
        PlannedFault::CrashPoint { service, nth, before, target, death, down_ms, recovery, .. } => {
            w.arm_crash_point(*service, CrashPoint { op: *nth, before: *before }, *target, *death);
            due.armed.insert(*service, (*down_ms, recovery.clone(), Some(index)));
            let at = if *before { "before" } else { "after" };
            let line = match target {
                Some(t) => format!("crash point aimed at {t:?} #{nth} {at}{}", super::death_note(*death)),
                None => format!("crash point armed: op +{nth} {at}{}", super::death_note(*death)),
            };
            w.trace_fault(service.name(), "crash-point", line);
        }
        PlannedFault::CrashAt {
            service, kind, phase, nth, before, death, down_ms, recovery, fates, ..
        } => {
            let pin = PinnedCrash {
                kind: *kind,
                phase: *phase,
                nth: *nth,
                before: *before,
                death: *death,
                id: index,
            };
            w.pin_crash(*service, pin, fates.clone());
            due.pinned.insert(index, (*down_ms, recovery.clone()));
        }
        PlannedFault::Stop { service, down_ms, recovery, interrupt } => {
            let s = *service;
            let busy = due.restarts.contains_key(&s) || due.stopping.contains_key(&s);
            if busy || w.is_dead(s) || w.is_retired(s) || !w.stop(s) {
                w.trace_fault(
                    s.name(),
                    "stop-skipped",
                    "stop skipped: down, stopping, or the replica".into(),
                );
                return false;
            }
            if let Some(i) = interrupt {
                w.arm_crash_point(s, CrashPoint { op: i.nth, before: i.before }, None, i.death);
                due.armed.insert(s, (*down_ms, recovery.clone(), None));
                let at = if i.before { "before" } else { "after" };
                let line = format!("crash point armed: op +{} {at}{}", i.nth, super::death_note(i.death));
                w.trace_fault(s.name(), "crash-point", line);
            }
            due.stopping.insert(s, (now, *down_ms, recovery.clone()));
        }
        PlannedFault::Partition { a, b, for_ms } => {
            w.partition(*a, *b);
            due.heals.push((now + for_ms, *a, *b));
        }
    }
    true
}
