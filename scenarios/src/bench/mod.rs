//! Benchmarks that print tables (and JSON): `exsim bench pipeline`, `exsim bench storage`.

pub mod alloc;
mod pipeline;
#[cfg(madsim)]
mod sim;
mod storage;

pub use pipeline::{PipelineBench, Row, run_pipeline_bench};
#[cfg(madsim)]
pub use sim::{SimBench, SimRow, run_sim_bench};
pub use storage::{StorageBench, StorageRow, run_storage_bench};

/// Median of some durations in nanoseconds.
pub fn median(mut xs: Vec<u64>) -> u64 {
    assert!(!xs.is_empty());
    xs.sort_unstable();
    xs[xs.len() / 2]
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
