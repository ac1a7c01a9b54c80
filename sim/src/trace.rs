//! The trace of a run: one compact line per event (simulated time, node, event), a 64-bit
//! hash over every line (FNV-1a), and the last lines of each node for failure reports.
//! Printing is off by default; `print` turns it on for one seed.

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
    print: bool,
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

impl Trace {
    /// An empty trace; `print` writes every line to stderr as it is recorded.
    pub fn new(print: bool) -> Trace {
        Trace {
            inner: Mutex::new(Inner { hash: FNV_OFFSET, lines: 0, tail: BTreeMap::new(), all: None }),
            print,
        }
    }

    /// An empty trace that keeps every line, to find where two runs first differ.
    pub fn keeping(print: bool) -> Trace {
        let t = Trace::new(print);
        t.inner.lock().unwrap_or_else(|e| e.into_inner()).all = Some(Vec::new());
        t
    }

    /// Every line so far, if kept.
    pub fn all_lines(&self) -> Option<Vec<String>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).all.clone()
    }

    /// Records one event of `node` at simulated time `at`.
    pub fn record(&self, at: Duration, node: &str, event: &str) {
        let line = format!("{:>10.3}ms {node:<10} {event}", at.as_secs_f64() * 1e3);
        if self.print {
            eprintln!("{line}");
        }
        tracing::debug!(target: "exsim::trace", "{line}");
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
            let t = Trace::new(false);
            for (i, (node, e)) in events.iter().enumerate() {
                t.record(Duration::from_millis(i as u64), node, e);
            }
            t.hash()
        };
        let a = run(&[("ubscore", "crash"), ("matching", "restart")]);
        assert_eq!(a, run(&[("ubscore", "crash"), ("matching", "restart")]));
        assert_ne!(a, run(&[("matching", "restart"), ("ubscore", "crash")]));
        assert_ne!(a, run(&[("ubscore", "crash")]));
        let t = Trace::new(false);
        for i in 0..100 {
            t.record(Duration::ZERO, "n", &i.to_string());
        }
        assert_eq!(t.tail("n").len(), KEEP);
        assert!(t.tail("n").last().unwrap().ends_with(" 99"));
    }
}
