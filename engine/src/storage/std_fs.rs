//! The real filesystem, on `std::fs`. Open files are cached so that appends and syncs do
//! not reopen the file each time.

use super::FileSystem;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The real filesystem.
#[derive(Debug, Default)]
pub struct StdFs {
    open: Mutex<BTreeMap<PathBuf, File>>,
}

impl StdFs {
    /// A filesystem handle with an empty open-file cache.
    pub fn new() -> StdFs {
        StdFs::default()
    }

    fn with_file<T>(&self, path: &Path, f: impl FnOnce(&mut File) -> io::Result<T>) -> io::Result<T> {
        let mut open = self.open.lock().map_err(|_| io::Error::other("file cache poisoned"))?;
        if !open.contains_key(path) {
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            open.insert(path.to_path_buf(), file);
        }
        f(open.get_mut(path).expect("inserted above"))
    }

    fn forget(&self, path: &Path) {
        if let Ok(mut open) = self.open.lock() {
            open.retain(|p, _| !p.starts_with(path));
        }
    }
}

impl FileSystem for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        self.open
            .lock()
            .map_err(|_| io::Error::other("file cache poisoned"))?
            .insert(path.to_path_buf(), file);
        Ok(())
    }

    fn append(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.with_file(path, |f| {
            f.seek(SeekFrom::End(0))?;
            f.write_all(data)
        })
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with_file(path, |f| f.write_all_at(data, offset))
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.with_file(path, |f| {
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            f.take(len as u64).read_to_end(&mut buf)?;
            Ok(buf)
        })
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.with_file(path, |f| f.set_len(len))
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.with_file(path, |f| f.sync_data())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        fs::remove_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
}
