//! The deterministic world. So far: seed discipline (one `u64` seed, one independent
//! random stream per concern) and, in the simulation build, a runner that executes one
//! seeded simulation on a fresh thread with its own madsim runtime. The simulated
//! filesystem, crash points and network faults build on these.

pub mod coverage;
pub mod fs;
pub mod media;
pub mod plan;
pub mod seed;
pub mod snapshots;
pub mod trace;

#[cfg(madsim)]
pub mod bare;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod world;

/// Whether this binary was built for simulation (`--cfg madsim`).
pub const SIMULATION_BUILD: bool = cfg!(madsim);
