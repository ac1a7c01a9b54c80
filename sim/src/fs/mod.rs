//! SimFs: the simulated filesystem with a real crash model (see `disk.rs`), registered as
//! a madsim plugin so that killing a node resolves its disk's power failure.

mod disk;
mod fates;
mod faults;
mod node_fs;
mod phase;
mod prunes;
mod resolution;

pub use disk::{
    ArchivedVersion, CrashPoint, CrashTarget, Death, Disk, IoErrorAt, IoFailure, LastOp, LoggedOp,
    PinnedCrash, SECTOR, Tap,
};
pub use fates::{ItemFate, PendingFate, SectorFate};
pub use faults::{Fault, FaultConfig, Media};
pub use node_fs::NodeFs;
pub use phase::{OpKind, Phase, PhaseTracker, service_of};
pub use resolution::{Fate, Fill, PendingItem, PendingKind};

#[cfg(madsim)]
mod plugin;
#[cfg(madsim)]
pub use plugin::SimFs;
