//! The real exchange (the normal build): the three services as processes on a real disk
//! over TCP, a load generator with real clients, and the crash test that kills them with
//! SIGKILL and SIGTERM and judges what is left on disk with the simulator's checker.
//!
//! Everything here is bounded: every wait has a deadline, every loop a count or a time.

pub mod cluster;
pub mod crashtest;
pub mod judge;
pub mod load;
pub mod node;

use engine::durable::{DurableConfig, SnapshotPolicy};
use engine::wal::WalConfig;
use std::path::{Path, PathBuf};

pub use sim::plan::Service;

/// The service named `name` on the command line.
pub fn parse_service(name: &str) -> Option<Service> {
    Service::ALL.into_iter().find(|s| s.name() == name)
}

/// The data directory of `s` under a cluster's directory.
pub fn service_dir(s: Service, data: &Path) -> PathBuf {
    data.join(s.name())
}

/// Storage settings of the real services: small segments and frequent snapshots (so a
/// short crash test rotates, snapshots and recovers from snapshots), and no retention:
/// UBSCore's WAL on disk is the whole agreed history the checker replays.
pub fn storage() -> DurableConfig {
    DurableConfig {
        wal: WalConfig::segments(1 << 20),
        snapshots: SnapshotPolicy::every(2_000, 5_000),
        keep_snapshots: 2,
        retention: false,
    }
}
