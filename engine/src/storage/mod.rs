//! The filesystem the storage layer talks to. Everything durable goes through
//! [`FileSystem`]; [`StdFs`] is the real implementation (the only code in `engine` that
//! touches the operating system's filesystem), the simulator provides its own, and [`MemFs`] is an in-memory test
//! double that can stop after the k-th operation.

mod mem_fs;
mod std_fs;

pub use mem_fs::MemFs;
pub use std_fs::StdFs;

use std::io;
use std::path::Path;

/// The filesystem operations the WAL and snapshots need. Paths are absolute or relative
/// to the implementation's root; names listed by [`FileSystem::list_dir`] are sorted.
///
/// Durability follows POSIX: data written to a file is durable only after
/// [`FileSystem::sync_file`] returns `Ok`; a created, renamed or removed directory entry
/// only after [`FileSystem::sync_dir`] of its parent returns `Ok`. An error from either
/// sync means the pending changes may be lost: the caller must stop and recover.
pub trait FileSystem: Send + Sync {
    /// Creates a directory and its parents (no error if it exists).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a new, empty file; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<()>;
    /// Appends bytes at the end of an existing file.
    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Writes bytes at an offset of an existing file (extending it if needed).
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Reads up to `len` bytes at `offset` (fewer at the end of the file).
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The length of a file.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Cuts a file to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes a file's data durable.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Makes a directory's entry operations (create, rename, remove) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Renames a file or directory, atomically replacing a file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names in a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Simulated time (µs) the operations since the last call took; a service sleeps it
    /// off so that disk work takes (simulated) time. Real disks take real time: 0.
    fn take_latency_us(&self) -> u64 {
        0
    }
}

/// Creates a directory (and its parents) durably: after it returns, the directory and
/// every ancestor's entry for it survive a power failure. `create_dir_all` alone does not:
/// a new directory's entry lives in its parent until the parent is fsynced.
pub fn create_dir_durable(fs: &dyn FileSystem, path: &Path) -> io::Result<()> {
    fs.create_dir_all(path)?;
    let mut dir = Some(path);
    while let Some(d) = dir {
        fs.sync_dir(d)?;
        dir = d.parent().filter(|p| !p.as_os_str().is_empty());
    }
    Ok(())
}
