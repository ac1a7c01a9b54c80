//! An in-memory filesystem for tests: every operation counts, and the filesystem can be
//! told to "crash" after the k-th operation, failing that one and all later ones. What was
//! written before stays (a process crash: the OS keeps its page cache), so a test can
//! `revive` it and recover, as after a restart. Power-failure losses are the simulator's.

use super::FileSystem;
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

#[derive(Clone, Debug)]
enum Node {
    File(Vec<u8>),
    Dir,
}

#[derive(Debug, Default)]
struct State {
    nodes: BTreeMap<PathBuf, Node>,
    ops: u64,
    crash_after: Option<u64>,
}

/// The in-memory test filesystem.
#[derive(Debug, Default)]
pub struct MemFs {
    state: Mutex<State>,
}

fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

impl MemFs {
    /// An empty filesystem (only `/` exists).
    pub fn new() -> MemFs {
        let fs = MemFs::default();
        fs.state.lock().expect("fresh").nodes.insert(PathBuf::from("/"), Node::Dir);
        fs
    }

    /// Fails operation number `k` (1-based, counted from now) and every later one.
    pub fn crash_after(&self, k: u64) {
        let mut s = self.lock();
        s.crash_after = Some(s.ops + k.saturating_sub(1));
    }

    /// Clears a crash: the next operations succeed again (a restart).
    pub fn revive(&self) {
        self.lock().crash_after = None;
    }

    /// Operations performed so far (including failed ones).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one counted operation on the state.
    fn op<T>(&self, f: impl FnOnce(&mut BTreeMap<PathBuf, Node>) -> io::Result<T>) -> io::Result<T> {
        let mut s = self.lock();
        s.ops += 1;
        if s.crash_after.is_some_and(|limit| s.ops > limit) {
            return Err(io::Error::other("memfs: crashed"));
        }
        f(&mut s.nodes)
    }

    fn file<'a>(nodes: &'a mut BTreeMap<PathBuf, Node>, path: &Path) -> io::Result<&'a mut Vec<u8>> {
        match nodes.get_mut(&normal(path)) {
            Some(Node::File(data)) => Ok(data),
            Some(Node::Dir) => Err(io::Error::other(format!("{}: is a directory", path.display()))),
            None => Err(not_found(path)),
        }
    }

    fn parent_exists(nodes: &BTreeMap<PathBuf, Node>, path: &Path) -> io::Result<()> {
        let p = normal(path);
        match p.parent() {
            Some(parent) if !matches!(nodes.get(parent), Some(Node::Dir)) => Err(not_found(parent)),
            _ => Ok(()),
        }
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| {
            let mut p = PathBuf::from("/");
            for c in normal(path).components().skip(1) {
                p.push(c);
                match nodes.get(&p) {
                    Some(Node::File(_)) => {
                        return Err(io::Error::other(format!("{}: is a file", p.display())));
                    }
                    Some(Node::Dir) => {}
                    None => {
                        nodes.insert(p.clone(), Node::Dir);
                    }
                }
            }
            Ok(())
        })
    }

    fn create_new(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| {
            Self::parent_exists(nodes, path)?;
            let p = normal(path);
            if nodes.contains_key(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: exists", path.display()),
                ));
            }
            nodes.insert(p, Node::File(Vec::new()));
            Ok(())
        })
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.op(|nodes| {
            Self::file(nodes, path)?.extend_from_slice(data);
            Ok(())
        })
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.op(|nodes| {
            let file = Self::file(nodes, path)?;
            let end = offset as usize + data.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[offset as usize..end].copy_from_slice(data);
            Ok(())
        })
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.op(|nodes| {
            let file = Self::file(nodes, path)?;
            let start = (offset as usize).min(file.len());
            let end = start.saturating_add(len).min(file.len());
            Ok(file[start..end].to_vec())
        })
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.op(|nodes| Ok(Self::file(nodes, path)?.clone()))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        self.op(|nodes| Ok(Self::file(nodes, path)?.len() as u64))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.op(|nodes| {
            Self::file(nodes, path)?.resize(len as usize, 0);
            Ok(())
        })
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| Self::file(nodes, path).map(|_| ()))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| match nodes.get(&normal(path)) {
            Some(Node::Dir) => Ok(()),
            _ => Err(not_found(path)),
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op(|nodes| {
            let (from, to) = (normal(from), normal(to));
            if !nodes.contains_key(&from) {
                return Err(not_found(&from));
            }
            Self::parent_exists(nodes, &to)?;
            if matches!(nodes.get(&to), Some(Node::Dir))
                && nodes.keys().any(|k| k.starts_with(&to) && *k != to)
            {
                return Err(io::Error::other(format!("{}: directory not empty", to.display())));
            }
            let moved: Vec<PathBuf> = nodes.keys().filter(|k| k.starts_with(&from)).cloned().collect();
            nodes.retain(|k, _| !k.starts_with(&to));
            for old in moved {
                let node = nodes.remove(&old).expect("listed above");
                let new = to.join(old.strip_prefix(&from).expect("under from"));
                nodes.insert(new, node);
            }
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| match nodes.get(&normal(path)) {
            Some(Node::File(_)) => {
                nodes.remove(&normal(path));
                Ok(())
            }
            _ => Err(not_found(path)),
        })
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.op(|nodes| {
            let p = normal(path);
            if !matches!(nodes.get(&p), Some(Node::Dir)) {
                return Err(not_found(path));
            }
            nodes.retain(|k, _| !k.starts_with(&p));
            Ok(())
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.op(|nodes| {
            let p = normal(path);
            if !matches!(nodes.get(&p), Some(Node::Dir)) {
                return Err(not_found(path));
            }
            Ok(nodes
                .keys()
                .filter(|k| k.parent() == Some(p.as_path()))
                .filter_map(|k| k.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect())
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.op(|nodes| Ok(nodes.contains_key(&normal(path))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_dirs_and_renames() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/a/b")).unwrap();
        fs.create_new(Path::new("/a/b/f")).unwrap();
        fs.append(Path::new("/a/b/f"), b"hello").unwrap();
        fs.write_at(Path::new("/a/b/f"), 7, b"!").unwrap();
        assert_eq!(fs.read_all(Path::new("/a/b/f")).unwrap(), b"hello\0\0!");
        fs.rename(Path::new("/a/b"), Path::new("/a/c")).unwrap();
        assert_eq!(fs.list_dir(Path::new("/a")).unwrap(), vec!["c".to_string()]);
        assert_eq!(fs.read_at(Path::new("/a/c/f"), 1, 3).unwrap(), b"ell");
        assert!(fs.create_new(Path::new("/a/c/f")).is_err());
        assert!(fs.create_new(Path::new("/nope/f")).is_err());
    }

    #[test]
    fn crash_after_k_fails_that_operation_and_all_later() {
        let fs = MemFs::new();
        fs.crash_after(2);
        fs.create_dir_all(Path::new("/d")).unwrap();
        assert!(fs.create_new(Path::new("/d/f")).is_err());
        assert!(fs.exists(Path::new("/d")).is_err());
        fs.revive();
        assert!(fs.exists(Path::new("/d")).unwrap());
        assert!(!fs.exists(Path::new("/d/f")).unwrap());
    }
}
