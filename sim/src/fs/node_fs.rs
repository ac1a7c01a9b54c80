//! A node's view of its simulated disk, implementing the engine's `FileSystem`. When an
//! operation hits a crash point, the node is killed at once (in a simulation): madsim
//! resets its network and this filesystem resolves the power failure, so the node is
//! inert from that instant even before its tasks reach their next `await`.

use super::disk::Disk;
use super::phase::OpKind;
use engine::storage::FileSystem;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One node's filesystem handle.
#[derive(Debug, Clone)]
pub struct NodeFs {
    disk: Arc<Mutex<Disk>>,
    #[cfg(madsim)]
    node: Option<madsim::task::NodeId>,
}

impl NodeFs {
    /// A handle on `disk`, outside any simulation (unit tests).
    pub fn detached(disk: Arc<Mutex<Disk>>) -> NodeFs {
        NodeFs {
            disk,
            #[cfg(madsim)]
            node: None,
        }
    }

    /// A handle on `disk` of simulated node `node`.
    #[cfg(madsim)]
    pub fn of_node(disk: Arc<Mutex<Disk>>, node: madsim::task::NodeId) -> NodeFs {
        NodeFs { disk, node: Some(node) }
    }

    /// The disk behind this handle.
    pub fn disk(&self) -> &Arc<Mutex<Disk>> {
        &self.disk
    }

    fn op<T>(
        &self,
        what: OpKind,
        path: &Path,
        bytes: usize,
        f: impl FnOnce(&mut Disk) -> io::Result<T>,
    ) -> io::Result<T> {
        let (result, crashed) = {
            let mut disk = self.disk.lock().unwrap_or_else(|e| e.into_inner());
            let result = disk.run(what, path, None, bytes, f);
            (result, disk.take_crashed_now())
        };
        // Not part of the trace hash: shown only when a subscriber asks for debug level.
        tracing::debug!(
            target: "exsim::storage",
            kind = "storage",
            node = super::phase::service_of(path),
            op = what.name(),
            bytes,
            outcome = if crashed { "crashed" } else if result.is_ok() { "ok" } else { "error" },
            "{} {}",
            what.name(),
            path.display()
        );
        if crashed {
            self.on_crash();
        }
        result
    }

    #[cfg(madsim)]
    fn on_crash(&self) {
        if let Some(node) = self.node {
            madsim::runtime::Handle::current().kill(node);
        }
    }

    #[cfg(not(madsim))]
    fn on_crash(&self) {}
}

impl FileSystem for NodeFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::Mkdir, path, 0, |d| d.create_dir_all(path))
    }
    fn create_new(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::Create, path, 0, |d| d.create_new(path))
    }
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.op(OpKind::Append, path, data.len(), |d| d.write(path, None, data))
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.op(OpKind::Write, path, data.len(), |d| d.write(path, Some(offset), data))
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.op(OpKind::Read, path, len, |d| d.read(path, offset, Some(len)))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.op(OpKind::Read, path, 0, |d| d.read(path, 0, None))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.op(OpKind::Len, path, 0, |d| d.len(path))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.op(OpKind::Truncate, path, 0, |d| d.truncate(path, len))
    }
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::Fsync, path, 0, |d| d.sync_file(path))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::FsyncDir, path, 0, |d| d.sync_dir(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (result, crashed) = {
            let mut disk = self.disk.lock().unwrap_or_else(|e| e.into_inner());
            let result = disk.run(OpKind::Rename, from, Some(to), 0, |d| d.rename(from, to));
            (result, disk.take_crashed_now())
        };
        if crashed {
            self.on_crash();
        }
        result
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::Remove, path, 0, |d| d.remove(path, false))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.op(OpKind::Rmdir, path, 0, |d| d.remove(path, true))
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.op(OpKind::List, path, 0, |d| d.list(path))
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.op(OpKind::Exists, path, 0, |d| d.exists(path))
    }
    fn take_latency_us(&self) -> u64 {
        self.disk.lock().unwrap_or_else(|e| e.into_inner()).take_latency_us()
    }
}
