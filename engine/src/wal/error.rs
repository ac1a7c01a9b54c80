//! WAL errors: each names the file and, where it applies, the offset and sequence number.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the WAL cannot go on.
#[derive(Debug)]
pub enum WalError {
    /// An I/O operation failed. After a failed write or fsync the WAL is poisoned.
    Io { op: &'static str, path: PathBuf, source: io::Error },
    /// A damaged record or header in durable data (not a torn tail).
    Corrupt { path: PathBuf, offset: u64, seq: u64, reason: String },
    /// Sequence numbers are not dense across or within segments.
    Gap { path: PathBuf, offset: u64, expected: u64, found: u64 },
    /// An earlier write or fsync failed: the service must stop and recover from disk.
    Poisoned,
    /// The service refused an entry while replaying it.
    Replay { seq: u64, reason: String },
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { op, path, source } => write!(f, "{}: {op} failed: {source}", path.display()),
            WalError::Corrupt { path, offset, seq, reason } => {
                write!(f, "{}: corrupt WAL at offset {offset} (expected seq {seq}): {reason}", path.display())
            }
            WalError::Gap { path, offset, expected, found } => write!(
                f,
                "{}: WAL sequence gap at offset {offset}: expected seq {expected}, found {found}",
                path.display()
            ),
            WalError::Poisoned => {
                f.write_str("WAL poisoned by an earlier write or fsync error; recover from disk")
            }
            WalError::Replay { seq, reason } => write!(f, "replaying WAL entry {seq}: {reason}"),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Attaches the operation and path to an I/O error.
pub(crate) fn io<'p>(op: &'static str, path: &'p std::path::Path) -> impl FnOnce(io::Error) -> WalError + 'p {
    move |source| WalError::Io { op, path: path.to_path_buf(), source }
}
