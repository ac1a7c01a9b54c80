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
use std::fmt;
use std::path::{Path, PathBuf};

/// One of the three services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// Balances, the entry point and the agreed history.
    Ubscore,
    /// The matching engine.
    Matching,
    /// Settlement.
    Settlement,
}

impl Service {
    /// All three, upstream first.
    pub const ALL: [Service; 3] = [Service::Ubscore, Service::Matching, Service::Settlement];

    /// Its name on the command line and on disk.
    pub fn name(self) -> &'static str {
        match self {
            Service::Ubscore => "ubscore",
            Service::Matching => "matching",
            Service::Settlement => "settlement",
        }
    }

    /// Parses a name given on the command line.
    pub fn parse(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its data directory under a cluster's directory.
    pub fn dir(self, data: &Path) -> PathBuf {
        data.join(self.name())
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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
