//! The trace of a run: one compact line per event (simulated time, node, event), a 64-bit
//! hash over every line (FNV-1a), and the last lines of each node for failure reports.
//! Every line is also a `tracing` event (target `exsim::trace`, fields `sim_ms`, `node`,
//! `kind`), which a subscriber may print and filter; the hash is the same either way.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Lines kept per node for failure reports.
const KEEP: usize = 30;

#[derive(Debug)]
struct Inner {
    hash: u64,
    lines: u64,
    tail: BTreeMap<String, VecDeque<String>>,
    /// Every line (recorded and absorbed), when kept.
    all: Option<Vec<String>>,
}

/// A run's trace.
#[derive(Debug)]
pub struct Trace {
    inner: Mutex<Inner>,
}

/// What a trace line is about, for filtering: `fault` (injected faults: kills, restarts,
/// partitions, crash points, damage), `client` (acknowledgements), `service` (starts,
/// recoveries, stops), `world` (phases and verdicts).
pub fn kind_of(event: &str) -> &'static str {
    const FAULTS: [&str; 9] = [
        "kill",
        "restart",
        "partition",
        "heal",
        "pinned crash point",
        "crash point",
        "snapshot corrupted",
        "media",
        "damage",
    ];
    const SERVICE: [&str; 4] = ["start", "recovered", "stopped", "corruption detected"];
    if event.starts_with("ack #") || event.starts_with("cannot bind") {
        "client"
    } else if FAULTS.iter().any(|f| event.starts_with(f)) {
        "fault"
    } else if SERVICE.iter().any(|f| event.starts_with(f)) {
        "service"
    } else {
        "world"
    }
}

/// What a trace line is about, as `tracing` fields (not hashed: the hash is the line's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Tags<'a> {
    /// `fault`, `client`, `service` or `world` (default: [`kind_of`] the line).
    pub kind: Option<&'static str>,
    /// The fault injected (`power-failure`, `process-crash`, `restart`, `crash-point` …).
    pub fault: Option<&'a str>,
    /// A sequence number the line is about (an acknowledgement's `ubs_seq`).
    pub seq: Option<u64>,
}

impl Tags<'_> {
    /// A fault of kind `fault`.
    pub fn fault(fault: &str) -> Tags<'_> {
        Tags { kind: Some("fault"), fault: Some(fault), seq: None }
    }
}

/// The kinds [`kind_of`] gives, and `storage` (filesystem operations, at debug level).
pub const KINDS: [&str; 5] = ["fault", "client", "service", "world", "storage"];

/// Simulated time since the runtime started (inside a simulation).
pub fn sim_now() -> Option<Duration> {
    #[cfg(madsim)]
    {
        madsim::time::TimeHandle::try_current().map(|t| t.elapsed())
    }
    #[cfg(not(madsim))]
    {
        None
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Default for Trace {
    fn default() -> Trace {
        Trace::new()
    }
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        Trace { inner: Mutex::new(Inner { hash: FNV_OFFSET, lines: 0, tail: BTreeMap::new(), all: None }) }
    }

    /// An empty trace that keeps every line, to find where two runs first differ.
    pub fn keeping() -> Trace {
        let t = Trace::new();
        t.inner.lock().unwrap_or_else(|e| e.into_inner()).all = Some(Vec::new());
        t
    }

    /// Every line so far, if kept.
    pub fn all_lines(&self) -> Option<Vec<String>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).all.clone()
    }

    /// Records one event of `node` at simulated time `at`.
    pub fn record(&self, at: Duration, node: &str, event: &str) {
        self.record_tagged(at, node, event, Tags::default());
    }

    /// Records one event with its `tracing` fields: the hash covers only the line.
    pub fn record_tagged(&self, at: Duration, node: &str, event: &str, tags: Tags<'_>) {
        let line = format!("{:>10.3}ms {node:<10} {event}", at.as_secs_f64() * 1e3);
        tracing::info!(
            target: "exsim::trace",
            sim_us = at.as_micros() as u64,
            node,
            kind = tags.kind.unwrap_or_else(|| kind_of(event)),
            fault = tags.fault,
            seq = tags.seq,
            "{event}"
        );
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.hash = fnv(inner.hash, line.as_bytes());
        inner.hash = fnv(inner.hash, b"\n");
        inner.lines += 1;
        if let Some(all) = &mut inner.all {
            all.push(line.clone());
        }
        let tail = inner.tail.entry(node.to_string()).or_default();
        if tail.len() == KEEP {
            tail.pop_front();
        }
        tail.push_back(line);
    }

    /// Adds a line to the hash only (not printed, not kept): for summaries recorded after
    /// the run, such as each disk's fault log.
    pub fn absorb(&self, line: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(all) = &mut inner.all {
            all.push(format!("(summary) {line}"));
        }
        inner.hash = fnv(inner.hash, line.as_bytes());
        inner.hash = fnv(inner.hash, b"\n");
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).hash
    }

    /// Number of lines so far.
    pub fn lines(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).lines
    }

    /// The last lines of `node`.
    pub fn tail(&self, node: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tail.get(node).map(|t| t.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_every_line_and_its_order() {
        let run = |events: &[(&str, &str)]| {
            let t = Trace::new();
            for (i, (node, e)) in events.iter().enumerate() {
                t.record(Duration::from_millis(i as u64), node, e);
            }
            t.hash()
        };
        let a = run(&[("ubscore", "crash"), ("matching", "restart")]);
        assert_eq!(a, run(&[("ubscore", "crash"), ("matching", "restart")]));
        assert_ne!(a, run(&[("matching", "restart"), ("ubscore", "crash")]));
        assert_ne!(a, run(&[("ubscore", "crash")]));
        let t = Trace::new();
        for i in 0..100 {
            t.record(Duration::ZERO, "n", &i.to_string());
        }
        assert_eq!(t.tail("n").len(), KEEP);
        assert!(t.tail("n").last().unwrap().ends_with(" 99"));
    }

    #[test]
    fn every_line_the_world_writes_has_a_kind() {
        for (event, kind) in [
            ("kill (power failure)", "fault"),
            ("restart (liveness)", "fault"),
            ("partition from matching", "fault"),
            ("ack #3 Accepted seq=Some(4) tries=1", "client"),
            ("recovered ubs_seq=3 snapshot=None replayed=3", "service"),
            ("start", "service"),
            ("liveness phase", "world"),
            ("converged", "world"),
        ] {
            assert_eq!(kind_of(event), kind, "{event}");
            assert!(KINDS.contains(&kind));
        }
    }
}
