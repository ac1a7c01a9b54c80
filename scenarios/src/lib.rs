//! exsim scenarios: the workload generator, the independent reference model, the checker,
//! conformance with external golden data, benchmarks, and the `exsim` command line.

pub mod bench;
pub mod checker;
pub mod conform;
#[cfg(madsim)]
pub mod explore;
pub mod hostile;
pub mod model;
#[cfg(not(madsim))]
pub mod real;
pub mod regress;
pub mod scenario;
pub mod seeds;
#[cfg(madsim)]
pub mod shrink;
#[cfg(madsim)]
pub mod simrun;
pub mod sweep;
pub mod workload;

/// Whether this build can plant bugs (the `planted-bugs` feature reached the engine).
pub fn bugs_available() -> bool {
    engine::bugs::AVAILABLE
}
