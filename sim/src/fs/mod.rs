//! SimFs: the simulated filesystem with a real crash model (see `disk.rs`), registered as
//! a madsim plugin so that killing a node resolves its disk's power failure.

mod disk;
mod faults;
mod node_fs;

pub use disk::{ArchivedVersion, CrashPoint, Death, Disk, SECTOR};
pub use faults::{Fault, FaultConfig, Media};
pub use node_fs::NodeFs;

#[cfg(madsim)]
mod plugin;
#[cfg(madsim)]
pub use plugin::SimFs;
