//! The write-ahead log: segment files of CRC-protected records with dense sequence
//! numbers, group commit (many records, one fsync) with an explicit durable watermark,
//! torn-tail repair on open, rotation and retention. See `format.rs` for the bytes.
//!
//! Each opening of a WAL is an *epoch*: it repairs the tail of the newest segment and
//! then starts a fresh segment, so a file that ever had a torn tail is never written again.

mod error;
pub mod format;
mod segment;

pub use error::WalError;

use crate::storage::FileSystem;
use error::io;
use format::{Record, SegmentHeader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// WAL settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Committed entries kept in memory (payload bytes) so that downstream reads of the
    /// recent tail need no disk read; 0 disables the cache.
    pub tail_cache_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig { segment_bytes: 64 << 20, tail_cache_bytes: 4 << 20 }
    }
}

impl WalConfig {
    /// The default settings with another segment size.
    pub fn segments(segment_bytes: u64) -> WalConfig {
        WalConfig { segment_bytes, ..WalConfig::default() }
    }
}

/// The most recent committed entries, in memory.
#[derive(Debug, Default)]
struct TailCache {
    entries: std::collections::VecDeque<(u64, u8, Vec<u8>)>,
    bytes: usize,
    cap: usize,
}

impl TailCache {
    fn push(&mut self, seq: u64, kind: u8, payload: Vec<u8>) {
        if self.cap == 0 {
            return;
        }
        // Contiguity is what makes serving from the cache correct.
        assert!(self.entries.back().is_none_or(|(s, _, _)| *s + 1 == seq), "WAL tail cache gap before {seq}");
        self.bytes += payload.len();
        self.entries.push_back((seq, kind, payload));
        while self.bytes > self.cap {
            let Some((_, _, p)) = self.entries.pop_front() else { break };
            self.bytes -= p.len();
        }
    }

    fn first_seq(&self) -> Option<u64> {
        self.entries.front().map(|(s, _, _)| *s)
    }
}

/// One entry as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Entry type.
    pub kind: u8,
    /// Payload bytes.
    pub payload: &'a [u8],
}

/// What opening the WAL found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments found (before any were removed).
    pub segments: usize,
    /// Valid entries found.
    pub entries: u64,
    /// Sequence number of the last valid entry (0 if none).
    pub last_seq: u64,
    /// A torn tail that was cut: (file, offset it was cut at, bytes removed).
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Newest segments removed because their header never became durable.
    pub removed_torn_segments: usize,
}

#[derive(Clone, Debug)]
struct Segment {
    path: PathBuf,
    first_seq: u64,
}

/// An open WAL, ready to append.
pub struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: WalConfig,
    epoch: u32,
    segments: Vec<Segment>,
    current_len: u64,
    next_seq: u64,
    durable_seq: u64,
    buf: Vec<u8>,
    /// Entries appended but not yet committed (moved to `tail` on commit).
    uncommitted: Vec<(u64, u8, Vec<u8>)>,
    tail: TailCache,
    poisoned: bool,
    /// Which seal slot the next seal goes to (they alternate).
    seal_slot: usize,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("epoch", &self.epoch)
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .finish()
    }
}

fn list_segments(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<(u32, u64, PathBuf)>, WalError> {
    let mut found: Vec<(u32, u64, PathBuf)> = fs
        .list_dir(dir)
        .map_err(io("list", dir))?
        .into_iter()
        .filter_map(|name| format::parse_segment_name(&name).map(|(e, s)| (e, s, dir.join(name))))
        .collect();
    // By first sequence number; an empty segment and its successor may share it, and
    // then the later epoch comes second.
    found.sort_by_key(|(e, s, _)| (*s, *e));
    Ok(found)
}

/// Removes copies of the newest segment left by an opening that died before renaming them,
/// durably, before anything creates one again: a leftover's unlink and a new copy's create
/// and rename must not be resolved out of order by a power failure.
fn remove_leftover_rewrites(fs: &dyn FileSystem, dir: &Path) -> Result<(), WalError> {
    let suffix = format!(".{}", format::REWRITE_EXTENSION);
    let mut removed = false;
    for name in fs.list_dir(dir).map_err(io("list", dir))? {
        if name.ends_with(&suffix) {
            let path = dir.join(name);
            fs.remove_file(&path).map_err(io("remove", &path))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir).map_err(io("sync_dir", dir))?;
    }
    Ok(())
}

/// Makes `bytes` the durable content of `path`, whatever the page cache shows. Why not
/// just fsync `path`: after a failed fsync (fsyncgate) Linux marks the dropped pages clean,
/// so a process that restarts still reads them, and its own fsync has nothing to write and
/// returns Ok, although the bytes never reached the disk. Bytes written anew to a fresh
/// file are dirty again: fsync, rename over the original, fsync the directory.
fn rewrite_durably(fs: &dyn FileSystem, dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), WalError> {
    if crate::bugs::planted(crate::bugs::Bug::TrustCacheOnReopen) {
        fs.truncate(path, bytes.len() as u64).map_err(io("truncate", path))?;
        return fs.sync_file(path).map_err(io("sync", path));
    }
    let tmp = path.with_extension(format::REWRITE_EXTENSION);
    fs.create_new(&tmp).map_err(io("create", &tmp))?;
    fs.append(&tmp, bytes).map_err(io("write", &tmp))?;
    fs.sync_file(&tmp).map_err(io("sync", &tmp))?;
    fs.rename(&tmp, path).map_err(io("rename", &tmp))?;
    fs.sync_dir(dir).map_err(io("sync_dir", dir))
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`: verifies every segment, cuts a torn tail of
    /// the newest one, makes what remains durable, and starts a new epoch's segment.
    /// `each` sees every valid entry in order (for replay into the service's state).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: WalConfig,
        each: impl FnMut(Entry<'_>) -> Result<(), WalError>,
    ) -> Result<(Wal, Recovery), WalError> {
        Wal::open_from(fs, dir, config, 0, each)
    }

    /// Like [`Wal::open`], for a caller that needs only the entries from `skip_below` on
    /// (its snapshot covers the rest): a sealed segment holding only older entries is not
    /// read when its successor's header counts its records; the headers alone must then
    /// show the segments follow each other without a hole. Its records are verified when a
    /// replay reads them. `each` may still see some older entries (those sharing a segment
    /// with newer ones).
    pub fn open_from(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: WalConfig,
        skip_below: u64,
        mut each: impl FnMut(Entry<'_>) -> Result<(), WalError>,
    ) -> Result<(Wal, Recovery), WalError> {
        crate::storage::create_dir_durable(fs.as_ref(), dir).map_err(io("create_dir", dir))?;
        if crate::bugs::planted(crate::bugs::Bug::WalTruncatedOnReopen) {
            for (_, _, path) in list_segments(fs.as_ref(), dir)? {
                fs.remove_file(&path).map_err(io("remove", &path))?;
            }
        }
        let seal_path = dir.join(format::SEAL_FILE);
        let seal = match fs.exists(&seal_path).map_err(io("exists", &seal_path))? {
            true => format::read_seal(&fs.read_all(&seal_path).map_err(io("read", &seal_path))?),
            false => None,
        };
        let sealed = seal.map(|(seq, _)| seq);
        remove_leftover_rewrites(fs.as_ref(), dir)?;
        let mut found = list_segments(fs.as_ref(), dir)?;
        let mut recovery = Recovery { segments: found.len(), ..Recovery::default() };
        let max_epoch = found.iter().map(|(e, _, _)| *e).max().unwrap_or(0);

        // A newest segment whose header is not valid and that holds nothing beyond it was
        // being created when the node died: nothing in it was ever acknowledged. One that
        // holds more had a durable header once (records are appended only after the header's
        // fsync): its header was damaged afterwards, and its records may be acknowledged.
        while let Some((_, first, path)) = found.last() {
            let bytes = fs.read_at(path, 0, format::SEGMENT_HEADER + 1).map_err(io("read", path))?;
            if SegmentHeader::decode(&bytes).is_some() {
                break;
            }
            if bytes.len() > format::SEGMENT_HEADER {
                return Err(WalError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    seq: *first,
                    reason: "damaged segment header in front of records".into(),
                });
            }
            fs.remove_file(path).map_err(io("remove", path))?;
            fs.sync_dir(dir).map_err(io("sync_dir", dir))?;
            found.pop();
            recovery.removed_torn_segments += 1;
        }

        // Every header, read alone: a sealed segment the caller need not replay is taken
        // on its header and its successor's (which counts its records) instead of a read.
        // One byte past the header tells whether a segment holds records: an empty one
        // starts where its successor does, so only a segment with records may be skipped.
        let mut headers = Vec::with_capacity(found.len());
        let mut holds_records = Vec::with_capacity(found.len());
        for (_, _, path) in &found {
            let bytes = fs.read_at(path, 0, format::SEGMENT_HEADER + 1).map_err(io("read", path))?;
            headers.push(SegmentHeader::decode(&bytes));
            holds_records.push(bytes.len() > format::SEGMENT_HEADER);
        }
        let mut segments = Vec::new();
        // The newest segment's verified bytes, rewritten once the seal has been checked.
        let mut newest: Option<(PathBuf, Vec<u8>, u64)> = None;
        let mut next: Option<u64> = None;
        let mut tail = TailCache { cap: config.tail_cache_bytes, ..TailCache::default() };
        let count = found.len();
        let firsts: Vec<u64> = found.iter().map(|(_, first, _)| *first).collect();
        // Only the newest segments can end up in the tail cache: fill it from those alone.
        let cached_segments = (config.tail_cache_bytes as u64 / config.segment_bytes.max(1)) as usize + 1;
        let cache_from = count.saturating_sub(cached_segments);
        for (i, (epoch, _, path)) in found.into_iter().enumerate() {
            let last = i + 1 == count;
            let counted = headers.get(i + 1).copied().flatten().filter(|h| h.prev_records > 0);
            let skippable = !last && holds_records[i] && firsts[i + 1] <= skip_below;
            if let Some(successor) = counted.filter(|_| skippable) {
                // Sealed and wholly below what the caller needs: its header must be valid
                // and name it, and its successor's header must count exactly the records
                // that reach the successor (a hole, e.g. a removed segment that came back,
                // is refused). Its records are checked when a replay reads them.
                let header =
                    headers[i].filter(|h| h.epoch == epoch && h.first_seq == firsts[i] && h.first_seq > 0);
                if header.is_none() {
                    return Err(WalError::Corrupt {
                        path,
                        offset: 0,
                        seq: firsts[i],
                        reason: "bad segment header (or one that does not match its file name)".into(),
                    });
                }
                let reaches = firsts[i].saturating_add(u64::from(successor.prev_records));
                if let Some(expected) = next.filter(|n| *n != firsts[i]) {
                    return Err(WalError::Gap { path, offset: 0, expected, found: firsts[i] });
                }
                if reaches != firsts[i + 1] {
                    return Err(WalError::Gap { path, offset: 0, expected: reaches, found: firsts[i + 1] });
                }
                next = Some(firsts[i + 1]);
                segments.push(Segment { path, first_seq: firsts[i] });
                continue;
            }
            let bytes = fs.read_all(&path).map_err(io("read", &path))?;
            let cache = i >= cache_from;
            let scan = segment::scan(&path, &bytes, next, last, |r| {
                if cache {
                    tail.push(r.seq, r.kind, r.payload.to_vec());
                }
                each(Entry { seq: r.seq, kind: r.kind, payload: r.payload })
                    .map(|()| ControlFlow::Continue(()))
            })?;
            recovery.entries += scan.records;
            let mut keep = bytes.len();
            if scan.torn && !crate::bugs::planted(crate::bugs::Bug::SeqReusedAfterBadRecord) {
                keep = scan.valid_len as usize;
                recovery.truncated = Some((path.clone(), scan.valid_len, (bytes.len() - keep) as u64));
            }
            next = Some(scan.next_seq);
            segments.push(Segment { path: path.clone(), first_seq: scan.header.first_seq });
            if last {
                let mut bytes = bytes;
                bytes.truncate(keep);
                newest = Some((path, bytes, scan.records));
            }
        }
        let next_seq = next.unwrap_or(1);
        recovery.last_seq = next_seq - 1;
        if let Some(sealed) = sealed.filter(|s| *s > recovery.last_seq) {
            let (path, offset) = match (segments.last(), &recovery.truncated) {
                (_, Some((path, at, _))) => (path.clone(), *at),
                (Some(s), None) => (s.path.clone(), fs.len(&s.path).map_err(io("len", &s.path))?),
                (None, None) => (seal_path.clone(), 0),
            };
            return Err(WalError::Corrupt {
                path,
                offset,
                seq: recovery.last_seq + 1,
                reason: format!(
                    "the seal vouches for entries up to {sealed}: acknowledged entries are missing"
                ),
            });
        }
        // Only now, with nothing acknowledged missing, may the cut become durable. Whatever
        // was read becomes durable before it is served (only the newest segment can hold
        // unsynced bytes or a torn tail: sealed ones were fsynced). When the seal names
        // exactly the last valid entry and nothing was cut, every byte read was fsynced
        // before the seal was written, and the segment's header before its first entry:
        // there is nothing to make durable (the common case after a clean stop or a crash
        // between commits). A segment without entries may have a header only the cache has.
        let settled = sealed == Some(recovery.last_seq) && recovery.truncated.is_none();
        if let Some((path, bytes, _)) = newest.filter(|(_, _, entries)| !settled || *entries == 0) {
            rewrite_durably(fs.as_ref(), dir, &path, &bytes)?;
        }
        if !fs.exists(&seal_path).map_err(io("exists", &seal_path))? {
            fs.create_new(&seal_path).map_err(io("create", &seal_path))?;
            fs.sync_dir(dir).map_err(io("sync_dir", dir))?;
        }
        let mut wal = Wal {
            fs,
            dir: dir.to_path_buf(),
            config,
            epoch: max_epoch + 1,
            segments,
            current_len: 0,
            next_seq,
            durable_seq: next_seq - 1,
            buf: Vec::new(),
            uncommitted: Vec::new(),
            tail,
            poisoned: false,
            seal_slot: 0,
        };
        // What survived is durable now (rewritten above) and will be served: seal it.
        // Sealed anew even when the seal already names it: the seal just read may be one
        // only the page cache holds (its fsync failed, or the process died before it).
        wal.seal_slot = seal.map_or(0, |(_, slot)| slot + 1);
        wal.write_seal(wal.durable_seq)?;
        wal.start_segment()?;
        Ok((wal, recovery))
    }

    /// Creates a new segment starting at `next_seq`, durable (file and directory) before use.
    fn start_segment(&mut self) -> Result<(), WalError> {
        let path = self.dir.join(format::segment_name(self.epoch, self.next_seq));
        // The previous segment's record count chains the headers (0 when not known).
        let prev_records =
            self.segments.last().and_then(|s| u32::try_from(self.next_seq - s.first_seq).ok()).unwrap_or(0);
        let header = SegmentHeader { epoch: self.epoch, first_seq: self.next_seq, prev_records }.encode();
        let result = (|| {
            self.fs.create_new(&path).map_err(io("create", &path))?;
            self.fs.append(&path, &header).map_err(io("write", &path))?;
            self.fs.sync_file(&path).map_err(io("sync", &path))?;
            let synced = self.fs.sync_dir(&self.dir).map_err(io("sync_dir", &self.dir));
            if crate::bugs::planted(crate::bugs::Bug::DirFsyncErrorIgnored) {
                return Ok(());
            }
            synced
        })();
        if result.is_err() {
            self.poisoned = true;
        }
        result?;
        self.segments.push(Segment { path, first_seq: self.next_seq });
        self.current_len = header.len() as u64;
        Ok(())
    }

    /// Buffers one entry and returns its sequence number. It is not durable (and must not
    /// be acknowledged or served) until a [`Wal::commit`] covering it returns.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> u64 {
        let seq = self.next_seq;
        Record { kind, epoch: self.epoch, seq, durable: self.durable_seq, payload }
            .encode_into(&mut self.buf);
        if self.tail.cap > 0 {
            self.uncommitted.push((seq, kind, payload.to_vec()));
        }
        self.next_seq += 1;
        seq
    }

    /// Writes every buffered entry and fsyncs once (group commit). Returns the durable
    /// watermark: every entry up to it is on disk. Any error poisons the WAL (fsyncgate:
    /// a failed fsync may have dropped the data, and retrying would lie).
    pub fn commit(&mut self) -> Result<u64, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if self.buf.is_empty() {
            return Ok(self.durable_seq);
        }
        let path = self.segments.last().expect("an open WAL has a current segment").path.clone();
        // Entries first, then the seal that vouches for them: each durable before the next.
        let synced = match self.write_durably(&path, &self.buf) {
            Ok(()) if crate::bugs::planted(crate::bugs::Bug::UnsealedCommits) => Ok(()),
            Ok(()) => self.write_seal(self.next_seq - 1),
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.poisoned = true;
            self.uncommitted.clear();
            return Err(e);
        }
        self.current_len += self.buf.len() as u64;
        self.buf.clear();
        for (seq, kind, payload) in self.uncommitted.drain(..) {
            self.tail.push(seq, kind, payload);
        }
        self.durable_seq = self.next_seq - 1;
        let full = self.current_len >= self.config.segment_bytes;
        if full && !crate::bugs::planted(crate::bugs::Bug::SegmentsNeverRotated) {
            self.rotate()?;
        }
        Ok(self.durable_seq)
    }

    /// Appends `bytes` to `path` and fsyncs.
    fn write_durably(&self, path: &Path, bytes: &[u8]) -> Result<(), WalError> {
        let appended = match self.fs.append(path, bytes) {
            Err(_) if crate::bugs::planted(crate::bugs::Bug::FailedAppendRetried) => {
                self.fs.append(path, bytes)
            }
            appended => appended,
        };
        appended.map_err(io("write", path))?;
        if crate::bugs::planted(crate::bugs::Bug::SkipFsync) {
            return Ok(());
        }
        self.fs.sync_file(path).map_err(io("sync", path))
    }

    /// Makes the seal name `durable` as the last acknowledged entry.
    fn write_seal(&mut self, durable: u64) -> Result<(), WalError> {
        let seal = self.dir.join(format::SEAL_FILE);
        let at = format::SEAL_SLOTS[self.seal_slot % format::SEAL_SLOTS.len()];
        self.seal_slot += 1;
        self.fs.write_at(&seal, at, &format::encode_seal(durable)).map_err(io("write", &seal))?;
        if crate::bugs::planted(crate::bugs::Bug::SkipFsync) {
            return Ok(());
        }
        self.fs.sync_file(&seal).map_err(io("sync", &seal))
    }

    /// Commits, then seals the current segment and starts a new one (no-op if the current
    /// segment holds no entries).
    pub fn rotate(&mut self) -> Result<(), WalError> {
        self.commit()?;
        if self.segments.last().is_some_and(|s| s.first_seq == self.next_seq) {
            return Ok(());
        }
        self.start_segment()
    }

    /// Removes segments whose entries are all below `seq` (never the current one).
    /// Returns how many were removed.
    pub fn retain_from(&mut self, seq: u64) -> Result<usize, WalError> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1].first_seq <= seq {
            let path = self.segments[0].path.clone();
            // Oldest first, each removal durable before the next: a power failure rolls
            // back unsynced removals one by one, and what survives must stay a contiguous
            // run of segments, never one with a hole. A failure leaves the WAL unusable
            // (its idea of the segments may no longer match the disk).
            let result = self.fs.remove_file(&path).map_err(io("remove", &path)).and_then(|()| {
                if crate::bugs::planted(crate::bugs::Bug::RetentionBatchedUnlinks) {
                    return Ok(());
                }
                self.fs.sync_dir(&self.dir).map_err(io("sync_dir", &self.dir))
            });
            if let Err(e) = result {
                self.poisoned = true;
                return Err(e);
            }
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 && crate::bugs::planted(crate::bugs::Bug::RetentionBatchedUnlinks) {
            self.fs.sync_dir(&self.dir).map_err(io("sync_dir", &self.dir))?;
        }
        if removed > 0 {
            // The cache serves only what the log still keeps.
            let first = self.first_seq();
            while self.tail.first_seq().is_some_and(|s| s < first) {
                if let Some((_, _, p)) = self.tail.entries.pop_front() {
                    self.tail.bytes -= p.len();
                }
            }
        }
        Ok(removed)
    }

    /// Reads and verifies every segment (checksums, sequence, no hole, nothing after the
    /// durable end): recovery takes sealed segments below the snapshot on their headers,
    /// so damage there is found only when a replay reads it, or by a scrub. Returns the
    /// records verified.
    pub fn scrub(&self) -> Result<u64, WalError> {
        let (mut next, mut records) = (None, 0);
        for (i, s) in self.segments.iter().enumerate() {
            let last = i + 1 == self.segments.len();
            let bytes = self.fs.read_all(&s.path).map_err(io("read", &s.path))?;
            let scan = segment::scan(&s.path, &bytes, next, last, |_| Ok(ControlFlow::Continue(())))?;
            let durable_end = scan.next_seq > self.durable_seq;
            if scan.torn && !durable_end {
                return Err(WalError::Corrupt {
                    path: s.path.clone(),
                    offset: scan.valid_len,
                    seq: scan.next_seq,
                    reason: "damaged record inside the durable log".into(),
                });
            }
            records += scan.records;
            next = Some(scan.next_seq);
        }
        match next {
            Some(n) if n <= self.durable_seq => Err(WalError::Gap {
                path: self.dir.clone(),
                offset: 0,
                expected: self.durable_seq,
                found: n - 1,
            }),
            _ => Ok(records),
        }
    }

    /// Streams durable entries with `from <= seq <= to` (to the durable watermark if
    /// `to` is `None`), one segment in memory at a time; `f` may stop early.
    pub fn replay(
        &self,
        from: u64,
        to: Option<u64>,
        mut f: impl FnMut(Entry<'_>) -> ControlFlow<()>,
    ) -> Result<(), WalError> {
        let to = to.map_or(self.durable_seq, |t| t.min(self.durable_seq));
        if from > to {
            return Ok(());
        }
        // The recent tail is served from memory (only committed entries are cached).
        if let Some(first) = self.tail.first_seq().filter(|first| *first <= from) {
            // The cache is contiguous: entry `from` is at index `from - first`.
            for (seq, kind, payload) in self.tail.entries.range((from - first) as usize..) {
                if *seq > to || f(Entry { seq: *seq, kind: *kind, payload }).is_break() {
                    break;
                }
            }
            return Ok(());
        }
        for (i, segment) in self.segments.iter().enumerate() {
            let end = self.segments.get(i + 1).map_or(u64::MAX, |s| s.first_seq);
            if end <= from || segment.first_seq > to {
                continue;
            }
            let bytes = self.fs.read_all(&segment.path).map_err(io("read", &segment.path))?;
            let scan = segment::scan(&segment.path, &bytes, Some(segment.first_seq), false, |r| {
                if r.seq > to {
                    return Ok(ControlFlow::Break(()));
                }
                if r.seq >= from {
                    return Ok(f(Entry { seq: r.seq, kind: r.kind, payload: r.payload }));
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if scan.stopped {
                return Ok(());
            }
            // Recovery takes sealed segments on their headers: a segment that ends short of
            // its successor (records lost below a snapshot) must not pass as a silent gap.
            if let Some(next) = self.segments.get(i + 1).filter(|n| n.first_seq != scan.next_seq) {
                return Err(WalError::Gap {
                    path: next.path.clone(),
                    offset: 0,
                    expected: scan.next_seq,
                    found: next.first_seq,
                });
            }
        }
        Ok(())
    }

    /// The sequence number the next appended entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every entry up to this is durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// The oldest sequence number still kept.
    pub fn first_seq(&self) -> u64 {
        self.segments.first().map_or(self.next_seq, |s| s.first_seq)
    }

    /// This opening's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Whether an earlier error made the WAL unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}
