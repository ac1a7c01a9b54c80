//! One node's simulated disk: files with durable bytes and the writes pending since their
//! last fsync; directories with durable entries and the entry operations pending since
//! their last fsync. Power failure resolves each pending write (kept, lost, or torn per
//! 512-byte sector) and each pending entry operation (persisted or rolled back)
//! independently, from the disk's own seeded random stream. Every fault is recorded.

use super::fates::{ItemFate, PendingFate, SectorFate, apply_torn, mask, named, stable_names};
use super::faults::{Fault, FaultConfig, Media};
use super::phase::{OpKind, Phase, PhaseTracker};
use super::resolution::{Fate, Fill, PendingItem, PendingKind, garbage};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Sector size of torn writes.
pub const SECTOR: u64 = 512;
/// Page size of the page cache: a failing buffered write stops at a page boundary.
pub const PAGE: u64 = 4096;

type Ino = u64;
const ROOT: Ino = 0;

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

#[derive(Clone, Debug)]
enum EntryOp {
    Link(String, Ino),
    Unlink(String),
    Rename(String, String),
}

#[derive(Clone, Debug, Default)]
struct FileNode {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Pending>,
    /// The durable length before the last fsync that grew the file (for lost writes).
    grown_from: u64,
    /// Sectors that fail every read until rewritten (latent sector errors).
    bad_sectors: std::collections::BTreeSet<u64>,
    /// The archive's last version of this file is exactly the durable bytes' prefix (false
    /// after anything but an fsync changed them: a power failure, media damage).
    archive_exact: bool,
    /// The cache may differ from the durable bytes beyond what is pending: a failed fsync
    /// dropped writes the cache still holds. Otherwise, with nothing pending, the cache
    /// equals the durable bytes, so a power failure need not compare them (that compare
    /// was linear in the disk at every power failure).
    cache_stale: bool,
}

#[derive(Clone, Debug, Default)]
struct DirNode {
    durable: BTreeMap<String, Ino>,
    current: BTreeMap<String, Ino>,
    pending: Vec<EntryOp>,
}

#[derive(Clone, Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// When a node dies at a filesystem operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    /// The 1-based index of the operation (counted from the last revival).
    pub op: u64,
    /// Before its effect (true) or after it (false).
    pub before: bool,
}

/// A crash point pinned to one operation of the disk's whole life: the `nth` operation of
/// `kind` in `phase` since the disk was created (restarts do not reset the count). Any number
/// can be armed at once; each fires once. A kill that landed just after such an operation,
/// pinned there, stays on that operation when the workload around it shrinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedCrash {
    /// The operation.
    pub kind: OpKind,
    /// Its storage phase.
    pub phase: Phase,
    /// Which operation of that kind and phase, counted over the disk's life (1-based).
    pub nth: u64,
    /// Before its effect, or after.
    pub before: bool,
    /// How the node dies.
    pub death: Death,
    /// The caller's name for it (told back by [`Disk::take_fired_pin`]).
    pub id: usize,
}

/// An I/O error a disk can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoFailure {
    /// A write fails with ENOSPC.
    NoSpace,
    /// A write fails with EIO.
    WriteEio,
    /// A read fails with EIO.
    ReadEio,
    /// An fsync fails with EIO (and drops the file's pending writes).
    FsyncEio,
    /// A metadata operation fails with EIO (without effect).
    MetadataEio,
}

/// An I/O error at one operation of a disk's life: the `nth` operation of `kind` in
/// `phase` since the disk was created. A disk records every error its rates draw this way,
/// and can be told to fail at such operations (a plan's I/O errors as data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct IoErrorAt {
    /// The operation.
    pub kind: OpKind,
    /// Its storage phase.
    pub phase: Phase,
    /// Which operation of that kind and phase since the disk was created (1-based).
    pub nth: u64,
    /// The error it returns.
    pub failure: IoFailure,
}

/// The last operation a disk performed: its kind, phase and place in the disk's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastOp {
    /// The operation.
    pub kind: OpKind,
    /// Its storage phase.
    pub phase: Phase,
    /// Which operation of that kind and phase since the disk was created (1-based).
    pub nth: u64,
}

/// Which operations a crash point counts: those of a kind, of a phase, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrashTarget {
    /// Only operations of this kind.
    pub kind: Option<OpKind>,
    /// Only operations of this storage phase.
    pub phase: Option<Phase>,
}

impl CrashTarget {
    fn matches(self, kind: OpKind, phase: Phase) -> bool {
        self.kind.is_none_or(|k| k == kind) && self.phase.is_none_or(|p| p == phase)
    }
}

/// An observer of every operation (see [`Disk::set_tap`]).
#[derive(Clone)]
pub struct Tap(pub std::sync::Arc<TapFn>);

/// What a [`Tap`] calls: the operation count and the disk.
pub type TapFn = dyn Fn(u64, &Disk) + Send + Sync;

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

/// One recorded operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedOp {
    /// What it was.
    pub kind: OpKind,
    /// On which path.
    pub path: PathBuf,
    /// The storage phase it belongs to.
    pub phase: Phase,
}

/// How a node dies: the kill's effect on its disk.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Death {
    /// The machine loses power: every pending write and entry operation is resolved
    /// (kept, lost or torn; persisted or rolled back) and the page cache is gone.
    #[default]
    PowerFailure,
    /// Only the process dies (kill -9, OOM, panic, a supervisor restart): the kernel's page
    /// cache survives, so unsynced writes stay readable and pending; a later power failure
    /// may still lose or tear them.
    ProcessCrash,
}

/// A node's disk. Cloning it copies everything, its random stream included: an explorer
/// clones a crashed disk to resolve its pending state in several ways.
#[derive(Clone, Debug)]
pub struct Disk {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    rng: ChaCha8Rng,
    config: FaultConfig,
    ops: u64,
    crash: Option<CrashPoint>,
    /// When set, the crash point counts only operations it matches (a kind, a phase).
    crash_target: Option<CrashTarget>,
    /// Operations matching `crash_target` since the crash point was armed.
    kind_ops: u64,
    /// Operations of each (kind, phase) since the crash point was armed: a fired crash
    /// point records which of them it hit, so a shrinker can aim at it again.
    since_armed: BTreeMap<(OpKind, Phase), u64>,
    /// Operations of each (kind, phase) since the disk was created.
    lifetime: BTreeMap<(OpKind, Phase), u64>,
    /// The last operation performed.
    last_op: Option<LastOp>,
    /// Crash points pinned to operations of the disk's life, not yet fired.
    pinned: Vec<PinnedCrash>,
    /// The id of the pinned crash point that killed the node last, until taken.
    fired_pin: Option<usize>,
    /// Operations told to fail (besides those the rates draw).
    pinned_errors: Vec<IoErrorAt>,
    /// Every I/O error returned (drawn or pinned), in order.
    io_errors: Vec<IoErrorAt>,
    /// Tells each operation's storage phase.
    phases: PhaseTracker,
    /// Every operation since recording started: (kind, path, phase), when recording.
    op_log: Option<Vec<LoggedOp>>,
    /// Called after every operation that took effect, with the operation count and the disk.
    tap: Option<Tap>,
    dead: bool,
    crashed_now: bool,
    faults: Vec<Fault>,
    owed_latency_us: u64,
    next_death: Death,
    /// The node's death has been resolved and it has not been revived since.
    resolved: bool,
    /// Every version of every file that an fsync made durable, kept even after the file
    /// is removed: the simulator's own record of what the disk ever promised to keep.
    archive: BTreeMap<Ino, Archived>,
    /// Counts archived versions: their order of first becoming durable.
    archive_clock: u64,
    /// Inodes of paths looked up since the namespace last changed: every operation looks
    /// its path up, mostly the same few files. Cleared by every change of a directory.
    lookups: RefCell<BTreeMap<OsString, Ino>>,
    /// Power-failure fates named by pinned crash points, and those the last one drew.
    fates: FateBook,
    /// The furthest offset an append to each path started at, removed files included (the
    /// simulator's record, for the checker's hygiene rules: a WAL segment past its size
    /// takes no more entries).
    furthest_appends: BTreeMap<PathBuf, u64>,
    /// Snapshot pruning cycles, open and interrupted (see `prunes.rs`).
    prunes: super::prunes::PruneBook,
}

/// Power-failure fates as data (see `fates.rs`).
#[derive(Clone, Debug, Default)]
struct FateBook {
    /// The fates a pinned crash point's power failure must have, by the pin's id.
    pinned: BTreeMap<usize, Vec<PendingFate>>,
    /// The fates the next power failure must have (set as a pinned crash point fires).
    next: Option<Vec<PendingFate>>,
    /// Every item the last power failure did not keep, and how it ended.
    drawn: Vec<PendingFate>,
}

/// One durable version of a file, as the disk's record holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedVersion {
    /// Where the file was when last fsynced.
    pub path: PathBuf,
    /// Order (among all fsyncs of the disk) of the fsync that first made this version durable.
    pub first_synced: u64,
    /// Order of the last fsync that extended it (appends extend a version).
    pub last_synced: u64,
    /// The durable bytes.
    pub bytes: Vec<u8>,
}

/// The durable versions of one file, as fsyncs made them.
#[derive(Clone, Debug, Default)]
struct Archived {
    /// Where the file was when last fsynced.
    path: PathBuf,
    /// Distinct durable contents, oldest first, with the order of the fsync that first made
    /// each durable and of the last one that extended it; a version that extends the
    /// previous one (an append) replaces it.
    versions: Vec<(u64, u64, Vec<u8>)>,
}

fn crashed() -> io::Error {
    io::Error::other("simfs: node crashed")
}

fn eio(what: &str, path: &Path) -> io::Error {
    io::Error::other(format!("simfs: EIO on {what} of {}", path.display()))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file or directory", path.display()))
}

fn components(path: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Sectors touched by `len` bytes at `offset`.
fn sectors_spanned(offset: u64, len: u64) -> u64 {
    if len == 0 { 0 } else { (offset + len).div_ceil(SECTOR) - offset / SECTOR }
}

fn apply_write(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset as usize..end].copy_from_slice(data);
}

/// A pending entry operation's kind and names, digits masked (see `fates.rs`).
fn entry_label(op: &EntryOp) -> String {
    match op {
        EntryOp::Link(name, _) => format!("link {}", mask(name)),
        EntryOp::Unlink(name) => format!("unlink {}", mask(name)),
        EntryOp::Rename(from, to) => format!("rename {} -> {}", mask(from), mask(to)),
    }
}

fn apply_entry(entries: &mut BTreeMap<String, Ino>, op: &EntryOp) {
    match op {
        EntryOp::Link(name, ino) => {
            entries.insert(name.clone(), *ino);
        }
        EntryOp::Unlink(name) => {
            entries.remove(name);
        }
        EntryOp::Rename(from, to) => {
            if let Some(ino) = entries.remove(from) {
                entries.insert(to.clone(), ino);
            }
        }
    }
}

impl Disk {
    /// An empty disk (only `/`), drawing its faults from `rng`.
    pub fn new(config: FaultConfig, rng: ChaCha8Rng) -> Disk {
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        Disk {
            nodes,
            next_ino: 1,
            rng,
            config,
            ops: 0,
            crash: None,
            crash_target: None,
            kind_ops: 0,
            since_armed: BTreeMap::new(),
            lifetime: BTreeMap::new(),
            last_op: None,
            pinned: Vec::new(),
            fired_pin: None,
            pinned_errors: Vec::new(),
            io_errors: Vec::new(),
            phases: PhaseTracker::default(),
            op_log: None,
            tap: None,
            dead: false,
            crashed_now: false,
            faults: Vec::new(),
            owed_latency_us: 0,
            next_death: Death::PowerFailure,
            resolved: false,
            archive: BTreeMap::new(),
            archive_clock: 0,
            lookups: RefCell::default(),
            fates: FateBook::default(),
            furthest_appends: BTreeMap::new(),
            prunes: Default::default(),
        }
    }

    /// Replaces the fault rates.
    pub fn set_config(&mut self, config: FaultConfig) {
        self.config = config;
    }

    /// Arms a crash point (operations counted from now).
    pub fn set_crash_point(&mut self, crash: Option<CrashPoint>) {
        self.crash_target = None;
        self.since_armed.clear();
        self.crash = crash.map(|c| CrashPoint { op: self.ops + c.op, before: c.before });
    }

    /// Arms a crash point at the `crash.op`-th operation from now that `target` matches (an
    /// operation kind such as `remove`, a storage phase such as a snapshot's rename, or
    /// both): rare operations get crash points too.
    pub fn set_crash_point_on(&mut self, target: CrashTarget, crash: CrashPoint) {
        self.crash_target = Some(target);
        self.kind_ops = 0;
        self.since_armed.clear();
        self.crash = Some(crash);
    }

    /// Arms a crash point pinned to one operation of the disk's life (see [`PinnedCrash`]).
    pub fn pin_crash(&mut self, pin: PinnedCrash) {
        assert!(pin.nth >= 1, "operations are counted from 1");
        self.pinned.push(pin);
    }

    /// Names the fates of the pending items at the power failure of pinned crash point
    /// `id` (items not named are kept) instead of drawing them.
    pub fn pin_fates(&mut self, id: usize, fates: Vec<PendingFate>) {
        self.fates.pinned.insert(id, fates);
    }

    /// Every pending item the last power failure did not keep, and how it ended.
    pub fn drawn_fates(&self) -> &[PendingFate] {
        &self.fates.drawn
    }

    /// Makes the operation `at` names fail with its error (besides what the rates draw).
    pub fn pin_error(&mut self, at: IoErrorAt) {
        assert!(at.nth >= 1, "operations are counted from 1");
        self.pinned_errors.push(at);
    }

    /// Every I/O error the rates drew or a pin caused so far, in order (not the errors of a
    /// full disk or an unreadable sector, which follow from the disk's state).
    pub fn io_errors(&self) -> &[IoErrorAt] {
        &self.io_errors
    }

    /// Whether the current operation fails with `failure`: drawn at rate `p`, or pinned.
    /// Recorded either way. A pin adds no draw, but a replay with the rates off (shrink's
    /// pinned errors) draws nothing for them, so every later draw of this disk (the fates
    /// of a power failure) comes from another point of its stream: a failure that needs
    /// both an error and one fate may not survive pinning.
    fn fails(&mut self, p: f64, failure: IoFailure) -> bool {
        let here = self.last_op.map(|l| IoErrorAt { kind: l.kind, phase: l.phase, nth: l.nth, failure });
        let drawn = self.roll(p);
        if !drawn && !here.is_some_and(|h| self.pinned_errors.contains(&h)) {
            return false;
        }
        self.io_errors.extend(here);
        self.prunes.interrupt();
        true
    }

    /// Disarms every pinned crash point and pinned I/O error.
    pub fn clear_pins(&mut self) {
        self.pinned.clear();
        self.pinned_errors.clear();
        self.fates.pinned.clear();
    }

    /// The id of the pinned crash point that fired last, once.
    pub fn take_fired_pin(&mut self) -> Option<usize> {
        self.fired_pin.take()
    }

    /// The last operation performed since the node was last revived (a kill that follows
    /// it can be pinned there; none yet in this life: nothing to pin to).
    pub fn last_op(&self) -> Option<LastOp> {
        self.last_op
    }

    /// Operations of each (kind, phase) since the disk was created: what a pinned crash
    /// counts, so a shrinker can re-aim one at the same share of a shorter run.
    pub fn lifetime_ops(&self) -> &BTreeMap<(OpKind, Phase), u64> {
        &self.lifetime
    }

    /// Starts (or restarts) recording every operation.
    pub fn record_ops(&mut self) {
        self.op_log = Some(Vec::new());
    }

    /// Calls `tap` after every operation that takes effect, with the operation count and
    /// the disk as the operation left it: an explorer sees every crash state of one run.
    pub fn set_tap(&mut self, tap: Option<Tap>) {
        self.tap = tap;
    }

    /// A copy for an explorer: the same files, pending state and random stream, without
    /// the original's observer, operation log, fault record and durable archive (which
    /// grow with every operation and would make copying each state quadratic). The hygiene
    /// records (one entry per file appended to, one per snapshot directory) are copied.
    pub fn snapshot_copy(&self) -> Disk {
        Disk {
            nodes: self.nodes.clone(),
            next_ino: self.next_ino,
            rng: self.rng.clone(),
            config: self.config,
            ops: self.ops,
            crash: self.crash,
            crash_target: self.crash_target,
            kind_ops: self.kind_ops,
            since_armed: self.since_armed.clone(),
            lifetime: self.lifetime.clone(),
            last_op: self.last_op,
            pinned: self.pinned.clone(),
            fired_pin: self.fired_pin,
            pinned_errors: self.pinned_errors.clone(),
            io_errors: Vec::new(),
            dead: self.dead,
            crashed_now: self.crashed_now,
            faults: Vec::new(),
            owed_latency_us: self.owed_latency_us,
            next_death: self.next_death,
            resolved: self.resolved,
            archive: BTreeMap::new(),
            archive_clock: self.archive_clock,
            lookups: RefCell::default(),
            phases: self.phases.clone(),
            op_log: None,
            tap: None,
            fates: self.fates.clone(),
            furthest_appends: self.furthest_appends.clone(),
            prunes: self.prunes.clone(),
        }
    }

    /// Whether what a recovery reads is what is durable (nothing pending, nothing dropped
    /// by a failed fsync but still cached): a power failure now would change nothing.
    pub fn settled(&self) -> bool {
        self.nodes.values().all(|n| match n {
            Node::File(f) => f.pending.is_empty() && (!f.cache_stale || f.current == f.durable),
            Node::Dir(d) => d.pending.is_empty() && d.current == d.durable,
        })
    }

    /// An fsync of `path` that fails with EIO: the file's pending writes are dropped from
    /// the write-back queue (still readable in the page cache) without reaching the disk.
    pub fn fail_fsync(&mut self, path: &Path) {
        if let Ok(f) = self.file_mut(path) {
            let dropped = std::mem::take(&mut f.pending).len() as u64;
            f.cache_stale |= dropped > 0;
            self.faults.push(Fault::FsyncEio { path: path.to_path_buf(), dropped });
        }
    }

    /// The operations recorded since [`Disk::record_ops`].
    pub fn op_log(&self) -> &[LoggedOp] {
        self.op_log.as_deref().unwrap_or_default()
    }

    /// Whether the node is dead (a crash point hit, or power failed, and not yet revived).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Takes the "a crash point was hit just now" flag.
    pub fn take_crashed_now(&mut self) -> bool {
        std::mem::take(&mut self.crashed_now)
    }

    /// Sets how the node's next death (a kill, or a crash point that fires) treats the disk.
    pub fn set_next_death(&mut self, death: Death) {
        self.next_death = death;
    }

    /// The node died (it was killed, or a crash point fired): resolves its disk by the kind
    /// of death set with [`Disk::set_next_death`] (then back to power failure). A node killed
    /// again before it was revived is already dead: nothing happens (`None`).
    pub fn kill(&mut self) -> Option<Death> {
        if self.resolved {
            return None;
        }
        self.resolved = true;
        self.prunes.interrupt();
        let death = std::mem::take(&mut self.next_death);
        match death {
            Death::PowerFailure => match self.fates.next.take() {
                Some(fates) => self.resolve_pending(Script::Named(&fates)),
                None => self.power_fail(),
            },
            Death::ProcessCrash => {
                self.fates.next = None;
                self.process_crash();
            }
        }
        Some(death)
    }

    /// The process died; the machine did not. Pending writes and entry operations stay
    /// pending (and readable); nothing else changes.
    pub fn process_crash(&mut self) {
        self.faults.push(Fault::ProcessCrash);
        self.dead = true;
        self.crash = None;
    }

    /// Brings the node's disk back after a restart: operations work again.
    pub fn revive(&mut self) {
        // A crash point armed while the node was down stays armed: it hits the recovery.
        self.dead = false;
        self.last_op = None;
        self.resolved = false;
    }

    /// The newest snapshot directory of the service directory `service_dir`, and the one
    /// before it, if any.
    pub fn newest_snapshots(&mut self, service_dir: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
        let snaps = service_dir.join("snapshots");
        let mut names: Vec<String> = self
            .list(&snaps)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with("snapshot-"))
            .collect();
        names.sort();
        let newest = names.pop().map(|n| snaps.join(n));
        (newest, names.pop().map(|n| snaps.join(n)))
    }

    /// Damages one file of the snapshot directory `snapshot` (state, books, `metadata.json`
    /// or `COMPLETE`, chosen by `pick`), durably, as media corruption would: one byte at a
    /// position chosen by `at`. Returns the file hit.
    pub fn corrupt_snapshot(&mut self, snapshot: &Path, pick: usize, at: u64) -> Option<PathBuf> {
        let files = self.list(snapshot).ok()?;
        let path = snapshot.join(files.get(pick % files.len().max(1))?);
        let f = self.file_mut(&path).ok()?;
        if f.durable.is_empty() {
            return None;
        }
        let at = (at % f.durable.len() as u64) as usize;
        f.durable[at] = f.durable[at].wrapping_add(0x5A) | 0x01; // never a no-op, never undone
        f.current = f.durable.clone();
        f.cache_stale = false;
        f.archive_exact = false;
        f.pending.clear();
        self.faults.push(Fault::SnapshotCorrupted { path: path.clone() });
        Some(path)
    }

    /// Damages the durable bytes of `path` at rest, around `offset`, as failing media
    /// would; recorded as a fault. Returns whether anything changed.
    pub fn inflict(&mut self, path: &Path, offset: u64, media: Media) -> bool {
        let Ok(f) = self.file_mut(path) else { return false };
        let len = f.durable.len() as u64;
        if len == 0 || !f.pending.is_empty() {
            return false; // the damage model is at rest: durable, quiescent files only
        }
        let offset = offset.min(len - 1);
        let changed = match media {
            Media::BitFlip => {
                f.durable[offset as usize] ^= 1 << (offset % 8);
                true
            }
            Media::LatentSector => f.bad_sectors.insert(offset / SECTOR),
            Media::LostWrite => {
                // The data never landed; the size (journaled metadata) did: the blocks read
                // back as zeros.
                let from = f.grown_from.min(len) as usize;
                let changed = f.durable[from..].iter().any(|b| *b != 0);
                f.durable[from..].fill(0);
                changed
            }
            Media::Misdirected => {
                // The sector at `offset` also landed one sector further on (or back).
                let src = offset / SECTOR * SECTOR;
                let dst = if src + SECTOR < len { src + SECTOR } else { src.saturating_sub(SECTOR) };
                let piece: Vec<u8> = f.durable[src as usize..(src + SECTOR).min(len) as usize].to_vec();
                let end = (dst as usize + piece.len()).min(len as usize);
                let before = f.durable[dst as usize..end].to_vec();
                f.durable[dst as usize..end].copy_from_slice(&piece[..end - dst as usize]);
                before != f.durable[dst as usize..end]
            }
        };
        f.current = f.durable.clone();
        f.cache_stale = false;
        f.archive_exact = false;
        if changed {
            self.faults.push(Fault::Media { path: path.to_path_buf(), offset, media });
        }
        changed
    }

    /// What a read of the whole file would return now, without counting an operation or
    /// drawing a fault: `None` if it does not exist or holds an unreadable sector.
    pub fn peek(&self, path: &Path) -> Option<Vec<u8>> {
        match self.nodes.get(&self.lookup(path)?) {
            Some(Node::File(f)) if f.bad_sectors.is_empty() => Some(f.current.clone()),
            _ => None,
        }
    }

    /// The names in a directory (current namespace), sorted; empty if it does not exist.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        match self.lookup(dir).and_then(|i| self.nodes.get(&i)) {
            Some(Node::Dir(d)) => d.current.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The durable content of a file (for aiming media faults).
    pub fn durable_bytes(&self, path: &Path) -> Option<&[u8]> {
        match self.nodes.get(&self.lookup(path)?) {
            Some(Node::File(f)) => Some(&f.durable),
            _ => None,
        }
    }

    /// Every file under `dir` (current namespace), sorted.
    pub fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Some(Node::Dir(node)) = self.lookup(&d).and_then(|i| self.nodes.get(&i)) else { continue };
            for (name, ino) in &node.current {
                match self.nodes.get(ino) {
                    Some(Node::Dir(_)) => stack.push(d.join(name)),
                    Some(Node::File(_)) => out.push(d.join(name)),
                    None => {}
                }
            }
        }
        out.sort();
        out
    }

    /// Every file under `dir` ever appended to (removed ones too) with the furthest offset an
    /// append to it started at, sorted by path.
    pub fn furthest_appends(&self, dir: &Path) -> Vec<(PathBuf, u64)> {
        self.furthest_appends
            .iter()
            .filter(|(p, _)| p.starts_with(dir))
            .map(|(p, at)| (p.clone(), *at))
            .collect()
    }

    /// Per snapshot directory under `dir`, the prunings an I/O error or a death
    /// interrupted (between a snapshot's rename into place and its pruning made durable).
    pub fn prunes_interrupted(&self, dir: &Path) -> Vec<(PathBuf, u64)> {
        self.prunes.interrupted(dir)
    }

    fn note_append(&mut self, path: &Path, offset: u64) {
        match self.furthest_appends.get_mut(path) {
            Some(at) => *at = (*at).max(offset),
            None => {
                self.furthest_appends.insert(path.to_path_buf(), offset);
            }
        }
    }

    /// Operations performed so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Every fault recorded so far.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Takes the simulated latency accumulated by operations since the last call.
    pub fn take_latency_us(&mut self) -> u64 {
        std::mem::take(&mut self.owed_latency_us)
    }

    /// Runs one counted operation, honouring death and crash points.
    pub fn run<T>(
        &mut self,
        op: OpKind,
        path: &Path,
        to: Option<&Path>,
        bytes: usize,
        f: impl FnOnce(&mut Disk) -> io::Result<T>,
    ) -> io::Result<T> {
        if self.dead {
            return Err(crashed());
        }
        self.ops += 1;
        self.owed_latency_us += self.config.latency_us + (bytes as u64 * self.config.latency_us) / 4096;
        let phase = self.phases.classify(op, path, to);
        let nth_of_kind = if self.crash.is_some() {
            let n = self.since_armed.entry((op, phase)).or_default();
            *n += 1;
            *n
        } else {
            0
        };
        if let Some(log) = &mut self.op_log {
            log.push(LoggedOp { kind: op, path: path.to_path_buf(), phase });
        }
        let life = self.lifetime.entry((op, phase)).or_default();
        *life += 1;
        self.last_op = Some(LastOp { kind: op, phase, nth: *life });
        let mut hit = match self.crash_target {
            None => self.crash.filter(|c| c.op == self.ops),
            Some(target) if target.matches(op, phase) => {
                self.kind_ops += 1;
                self.crash.filter(|c| c.op == self.kind_ops)
            }
            Some(_) => None,
        };
        if hit.is_none() {
            hit = self.fire_pin(op, phase);
        }
        if let Some(c) = hit.filter(|c| c.before) {
            self.die(c, op, path, phase, nth_of_kind);
            return Err(crashed());
        }
        let result = if op.is_metadata() && self.fails(self.config.eio_metadata, IoFailure::MetadataEio) {
            self.faults.push(Fault::MetadataEio { path: path.to_path_buf(), op });
            Err(eio(op.name(), path))
        } else {
            f(self)
        };
        if let Some(c) = hit {
            self.die(c, op, path, phase, nth_of_kind);
            return Err(crashed());
        }
        if let Some(tap) = self.tap.clone() {
            (tap.0)(self.ops, self);
        }
        result
    }

    /// The pinned crash point on this operation, if any: it fires (once).
    fn fire_pin(&mut self, op: OpKind, phase: Phase) -> Option<CrashPoint> {
        let nth = self.last_op.map(|l| l.nth)?;
        let i = self.pinned.iter().position(|p| (p.kind, p.phase, p.nth) == (op, phase, nth))?;
        let pin = self.pinned.remove(i);
        self.next_death = pin.death;
        self.fired_pin = Some(pin.id);
        self.fates.next = self.fates.pinned.remove(&pin.id);
        Some(CrashPoint { op: nth, before: pin.before })
    }

    fn die(&mut self, c: CrashPoint, kind: OpKind, path: &Path, phase: Phase, nth_of_kind: u64) {
        self.prunes.interrupt();
        self.dead = true;
        self.crashed_now = true;
        self.crash = None;
        self.crash_target = None;
        self.faults.push(Fault::CrashPoint {
            op: c.op,
            before: c.before,
            kind,
            path: path.to_path_buf(),
            phase,
            nth_of_kind,
        });
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    fn lookup(&self, path: &Path) -> Option<Ino> {
        if let Some(ino) = self.lookups.borrow().get(path.as_os_str()) {
            return Some(*ino);
        }
        // The common path (no `..`) walks the components without allocating.
        let found = if path.components().any(|c| matches!(c, Component::ParentDir)) {
            self.walk(components(path).iter().map(|s| Cow::Borrowed(s.as_str())))
        } else {
            self.walk(path.components().filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy()),
                _ => None,
            }))
        };
        if let Some(ino) = found {
            self.lookups.borrow_mut().insert(path.as_os_str().to_owned(), ino);
        }
        found
    }

    /// Forgets cached lookups: a directory's entries are about to change.
    fn namespace_changes(&mut self) {
        self.lookups.get_mut().clear();
    }

    /// The inode at the end of `names`, from the root.
    fn walk<'a>(&self, names: impl Iterator<Item = Cow<'a, str>>) -> Option<Ino> {
        let mut ino = ROOT;
        for name in names {
            match self.nodes.get(&ino) {
                Some(Node::Dir(d)) => ino = *d.current.get(name.as_ref())?,
                _ => return None,
            }
        }
        Some(ino)
    }

    fn parent(&self, path: &Path) -> io::Result<(Ino, String)> {
        let mut comps = components(path);
        let name = comps.pop().ok_or_else(|| io::Error::other("simfs: the root has no parent"))?;
        let parent_path: PathBuf = comps.iter().collect();
        let parent = self.lookup(&parent_path).ok_or_else(|| not_found(&parent_path))?;
        match self.nodes.get(&parent) {
            Some(Node::Dir(_)) => Ok((parent, name)),
            _ => Err(io::Error::other(format!("{}: not a directory", parent_path.display()))),
        }
    }

    /// A directory about to change (cached lookups are forgotten).
    fn dir_mut(&mut self, ino: Ino) -> &mut DirNode {
        self.namespace_changes();
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => d,
            _ => panic!("inode {ino} is not a directory"),
        }
    }

    fn file_mut(&mut self, path: &Path) -> io::Result<&mut FileNode> {
        let ino = self.lookup(path).ok_or_else(|| not_found(path))?;
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            _ => Err(io::Error::other(format!("{}: is a directory", path.display()))),
        }
    }

    fn link(&mut self, parent: Ino, name: String, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        let d = self.dir_mut(parent);
        d.current.insert(name.clone(), ino);
        d.pending.push(EntryOp::Link(name, ino));
        ino
    }

    fn used(&self) -> u64 {
        self.nodes.values().map(|n| if let Node::File(f) = n { f.current.len() as u64 } else { 0 }).sum()
    }

    /// Creates a directory and its parents.
    pub fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let mut ino = ROOT;
        for c in components(path) {
            let next = match self.nodes.get(&ino) {
                Some(Node::Dir(d)) => d.current.get(&c).copied(),
                _ => return Err(io::Error::other(format!("{}: not a directory", path.display()))),
            };
            ino = match next {
                Some(i) => i,
                None => self.link(ino, c, Node::Dir(DirNode::default())),
            };
        }
        match self.nodes.get(&ino) {
            Some(Node::Dir(_)) => Ok(()),
            _ => Err(io::Error::other(format!("{}: is a file", path.display()))),
        }
    }

    /// Creates a new empty file.
    pub fn create_new(&mut self, path: &Path) -> io::Result<()> {
        let (parent, name) = self.parent(path)?;
        if self.lookup(path).is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}: exists", path.display())));
        }
        self.link(parent, name, Node::File(FileNode::default()));
        Ok(())
    }

    /// Writes `data` at `offset` (`None`: append).
    pub fn write(&mut self, path: &Path, offset: Option<u64>, data: &[u8]) -> io::Result<()> {
        if self.fails(self.config.enospc_write, IoFailure::NoSpace) {
            self.faults.push(Fault::NoSpace { path: path.to_path_buf() });
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("simfs: ENOSPC writing {}", path.display()),
            ));
        }
        if self.fails(self.config.eio_write, IoFailure::WriteEio) {
            self.faults.push(Fault::WriteEio { path: path.to_path_buf() });
            self.copy_pages_before_failing(path, offset, data);
            return Err(eio("write", path));
        }
        let capacity = self.config.capacity;
        let used = if capacity == u64::MAX { 0 } else { self.used() };
        let f = self.file_mut(path)?;
        let append = offset.is_none();
        let offset = offset.unwrap_or(f.current.len() as u64);
        if append {
            self.note_append(path, offset);
        }
        let f = self.file_mut(path)?;
        let grow = (offset + data.len() as u64).saturating_sub(f.current.len() as u64);
        if used.saturating_add(grow) > capacity {
            self.faults.push(Fault::NoSpace { path: path.to_path_buf() });
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("simfs: ENOSPC writing {}", path.display()),
            ));
        }
        self.cache_write(path, offset, data)
    }

    /// `data` at `offset` in the page cache, pending until an fsync.
    fn cache_write(&mut self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let f = self.file_mut(path)?;
        apply_write(&mut f.current, offset, data);
        f.pending.push(Pending::Write { offset, data: data.to_vec() });
        // A rewritten sector is remapped: readable again.
        let end = offset + data.len() as u64;
        let whole = offset.div_ceil(SECTOR)..end / SECTOR;
        f.bad_sectors.retain(|s| !whole.contains(s));
        Ok(())
    }

    /// A buffered write copies into the page cache page by page, and an error on the way (a
    /// page it had to read in before overwriting part of it, say) stops it at a page boundary: the pages copied before
    /// it stay in the cache, as a short write's would, while the call returns EIO. A write
    /// that spans a page boundary leaves every whole page before its last; one inside a
    /// page leaves nothing.
    fn copy_pages_before_failing(&mut self, path: &Path, offset: Option<u64>, data: &[u8]) {
        let Ok(f) = self.file_mut(path) else { return };
        let start = offset.unwrap_or(f.current.len() as u64);
        let end = start + data.len() as u64;
        let last_page = (end.saturating_sub(1) / PAGE) * PAGE;
        if data.is_empty() || last_page <= start {
            return;
        }
        let written = (last_page - start) as usize;
        if offset.is_none() {
            self.note_append(path, start);
        }
        if self.cache_write(path, start, &data[..written]).is_ok() {
            self.faults.push(Fault::PartialWrite {
                path: path.to_path_buf(),
                offset: start,
                written: written as u64,
            });
        }
    }

    /// Reads up to `len` bytes at `offset` (`None`: the whole file).
    pub fn read(&mut self, path: &Path, offset: u64, len: Option<usize>) -> io::Result<Vec<u8>> {
        if self.fails(self.config.eio_read, IoFailure::ReadEio) {
            self.faults.push(Fault::ReadEio { path: path.to_path_buf() });
            return Err(eio("read", path));
        }
        let f = self.file_mut(path)?;
        let start = (offset as usize).min(f.current.len());
        let end = len.map_or(f.current.len(), |l| start.saturating_add(l).min(f.current.len()));
        let sectors = start as u64 / SECTOR..(end as u64).div_ceil(SECTOR);
        if let Some(bad) = f.bad_sectors.range(sectors).next().copied() {
            self.faults.push(Fault::ReadEio { path: path.to_path_buf() });
            return Err(io::Error::other(format!(
                "simfs: EIO reading {} at offset {} (unreadable sector)",
                path.display(),
                bad * SECTOR
            )));
        }
        Ok(f.current[start..end].to_vec())
    }

    /// The current length of a file.
    pub fn len(&mut self, path: &Path) -> io::Result<u64> {
        Ok(self.file_mut(path)?.current.len() as u64)
    }

    /// Cuts a file.
    pub fn truncate(&mut self, path: &Path, len: u64) -> io::Result<()> {
        let f = self.file_mut(path)?;
        f.current.resize(len as usize, 0);
        f.pending.push(Pending::Truncate { len });
        Ok(())
    }

    /// Every durable version of every file under `dir` that an fsync ever produced,
    /// including files removed since, in the order the versions first became durable.
    pub fn durable_archive(&self, dir: &Path) -> Vec<ArchivedVersion> {
        let mut out: Vec<ArchivedVersion> = self
            .archive
            .values()
            .filter(|a| a.path.starts_with(dir))
            .flat_map(|a| {
                a.versions.iter().map(|(first, last, bytes)| ArchivedVersion {
                    path: a.path.clone(),
                    first_synced: *first,
                    last_synced: *last,
                    bytes: bytes.clone(),
                })
            })
            .collect();
        out.sort_by_key(|v| v.first_synced);
        out
    }

    /// The paths of every file under `dir` that an fsync ever made durable, including files
    /// removed since (as [`Disk::durable_archive`], without copying the bytes).
    pub fn archived_paths(&self, dir: &Path) -> BTreeSet<PathBuf> {
        self.archive.values().filter(|a| a.path.starts_with(dir)).map(|a| a.path.clone()).collect()
    }

    /// Records the durable bytes of `ino` after an fsync whose writes touched nothing below
    /// `touched_from`: an append extends the last version (cheaply, when nothing else
    /// changed the file since), anything else starts a new one.
    fn archive_synced(&mut self, ino: Ino, path: &Path, touched_from: u64) {
        let Some(Node::File(f)) = self.nodes.get_mut(&ino) else { return };
        let entry = self.archive.entry(ino).or_default();
        if entry.path != path {
            entry.path = path.to_path_buf();
        }
        let exact = std::mem::replace(&mut f.archive_exact, true);
        self.archive_clock += 1;
        match entry.versions.last_mut() {
            Some((_, synced, last))
                if (exact && touched_from >= last.len() as u64 && f.durable.len() >= last.len())
                    || f.durable.starts_with(last) =>
            {
                last.extend_from_slice(&f.durable[last.len()..]);
                *synced = self.archive_clock;
            }
            _ => entry.versions.push((self.archive_clock, self.archive_clock, f.durable.clone())),
        }
    }

    /// Makes a file's pending writes durable (or, on an injected EIO, drops them).
    pub fn sync_file(&mut self, path: &Path) -> io::Result<()> {
        let fail = self.fails(self.config.eio_fsync, IoFailure::FsyncEio);
        let ino = self.lookup(path).ok_or_else(|| not_found(path))?;
        let Some(Node::File(f)) = self.nodes.get_mut(&ino) else {
            return Err(io::Error::other(format!("{}: is a directory", path.display())));
        };
        let pending = std::mem::take(&mut f.pending);
        if fail {
            // fsyncgate: the dirty pages are marked clean without reaching the disk.
            let dropped = pending.len() as u64;
            f.cache_stale |= dropped > 0;
            self.faults.push(Fault::FsyncEio { path: path.to_path_buf(), dropped });
            return Err(eio("fsync", path));
        }
        let before = f.durable.len() as u64;
        let mut touched_from = u64::MAX;
        for p in pending {
            match p {
                Pending::Write { offset, data } => {
                    touched_from = touched_from.min(offset);
                    apply_write(&mut f.durable, offset, &data)
                }
                Pending::Truncate { len } => {
                    touched_from = touched_from.min(len);
                    f.durable.resize(len as usize, 0)
                }
            }
        }
        if f.durable.len() as u64 > before {
            f.grown_from = before;
        }
        self.archive_synced(ino, path, touched_from);
        Ok(())
    }

    /// Makes a directory's pending entry operations durable.
    pub fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let ino = self.lookup(path).ok_or_else(|| not_found(path))?;
        let Some(Node::Dir(d)) = self.nodes.get_mut(&ino) else {
            return Err(io::Error::other(format!("{}: not a directory", path.display())));
        };
        for op in std::mem::take(&mut d.pending) {
            apply_entry(&mut d.durable, &op);
        }
        self.prunes.synced_dir(path);
        Ok(())
    }

    /// Renames, replacing a file at `to`.
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let ino = self.lookup(from).ok_or_else(|| not_found(from))?;
        let (src, from_name) = self.parent(from)?;
        let (dst, to_name) = self.parent(to)?;
        if let Some(existing) = self.lookup(to) {
            if let Some(Node::Dir(d)) = self.nodes.get(&existing) {
                if !d.current.is_empty() {
                    return Err(io::Error::other(format!("{}: directory not empty", to.display())));
                }
            }
        }
        if src == dst {
            let d = self.dir_mut(src);
            d.current.remove(&from_name);
            d.current.insert(to_name.clone(), ino);
            d.pending.push(EntryOp::Rename(from_name, to_name));
        } else {
            let s = self.dir_mut(src);
            s.current.remove(&from_name);
            s.pending.push(EntryOp::Unlink(from_name));
            let d = self.dir_mut(dst);
            d.current.insert(to_name.clone(), ino);
            d.pending.push(EntryOp::Link(to_name, ino));
        }
        self.prunes.renamed(from, to);
        Ok(())
    }

    /// Removes a file or (recursively) a directory.
    pub fn remove(&mut self, path: &Path, dir: bool) -> io::Result<()> {
        let ino = self.lookup(path).ok_or_else(|| not_found(path))?;
        if matches!(self.nodes.get(&ino), Some(Node::Dir(_))) != dir {
            return Err(io::Error::other(format!("{}: wrong kind for remove", path.display())));
        }
        let (parent, name) = self.parent(path)?;
        let d = self.dir_mut(parent);
        d.current.remove(&name);
        d.pending.push(EntryOp::Unlink(name));
        if dir {
            self.prunes.removed_dir(path);
        }
        Ok(())
    }

    /// The names in a directory, sorted.
    pub fn list(&mut self, path: &Path) -> io::Result<Vec<String>> {
        let ino = self.lookup(path).ok_or_else(|| not_found(path))?;
        match self.nodes.get(&ino) {
            Some(Node::Dir(d)) => Ok(d.current.keys().cloned().collect()),
            _ => Err(io::Error::other(format!("{}: not a directory", path.display()))),
        }
    }

    /// Whether a path exists.
    pub fn exists(&mut self, path: &Path) -> io::Result<bool> {
        Ok(self.lookup(path).is_some())
    }

    /// Paths of the current namespace, for naming faults.
    fn paths(&self) -> BTreeMap<Ino, PathBuf> {
        let mut out = BTreeMap::new();
        let mut stack = vec![(ROOT, PathBuf::from("/"))];
        while let Some((ino, path)) = stack.pop() {
            if let Some(Node::Dir(d)) = self.nodes.get(&ino) {
                for (name, child) in d.current.iter().chain(d.durable.iter()) {
                    if !out.contains_key(child) {
                        stack.push((*child, path.join(name)));
                    }
                }
            }
            out.insert(ino, path);
        }
        out
    }

    /// Power failure: every pending write is kept, lost or torn; every pending entry
    /// operation persists or rolls back; then the node is dead until revived.
    pub fn power_fail(&mut self) {
        self.resolve_pending(Script::Draw);
    }

    /// A power failure whose every pending item's fate is named by `fate` (by the item's
    /// index in [`Disk::pending_items`]) instead of drawn: an explorer's crash state.
    pub fn power_fail_scripted(&mut self, fate: &dyn Fn(usize) -> Fate) {
        self.resolve_pending(Script::Explore(fate));
    }

    /// The pending state a power failure would resolve now, numbered as
    /// [`Disk::power_fail_scripted`] numbers it.
    pub fn pending_items(&self) -> Vec<PendingItem> {
        let paths = self.paths();
        let name =
            |ino: Ino| paths.get(&ino).cloned().unwrap_or_else(|| PathBuf::from(format!("<inode {ino}>")));
        let mut out = Vec::new();
        for (ino, node) in &self.nodes {
            match node {
                Node::File(f) => out.extend(f.pending.iter().map(|p| PendingItem {
                    path: name(*ino),
                    kind: match p {
                        Pending::Write { offset, data } => PendingKind::Write {
                            offset: *offset,
                            len: data.len() as u64,
                            sectors: sectors_spanned(*offset, data.len() as u64),
                        },
                        Pending::Truncate { len } => PendingKind::Truncate { len: *len },
                    },
                })),
                Node::Dir(d) => out.extend(d.pending.iter().map(|op| PendingItem {
                    path: name(*ino),
                    kind: PendingKind::Entry { op: format!("{op:?}") },
                })),
            }
        }
        out
    }

    /// xxh3 of the durable and the current namespace and contents: equal fingerprints,
    /// equal crash states (after a power failure both are the same; after a process crash
    /// the current one is what a recovery reads, the durable one what a later power
    /// failure falls back to).
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for durable in [true, false] {
            let mut stack = vec![(ROOT, PathBuf::from("/"))];
            while let Some((ino, path)) = stack.pop() {
                match self.nodes.get(&ino) {
                    Some(Node::Dir(d)) => {
                        let entries = if durable { &d.durable } else { &d.current };
                        for (name, child) in entries.iter().rev() {
                            stack.push((*child, path.join(name)));
                        }
                    }
                    Some(Node::File(f)) => {
                        let bytes = if durable { &f.durable } else { &f.current };
                        h.update(path.as_os_str().as_encoded_bytes());
                        h.update(&(bytes.len() as u64).to_le_bytes());
                        h.update(bytes);
                    }
                    None => {}
                }
            }
            h.update(b"|");
        }
        h.digest()
    }

    fn resolve_pending(&mut self, script: Script) {
        self.namespace_changes();
        self.faults.push(Fault::PowerFailure);
        self.fates.drawn.clear();
        let paths = self.paths();
        let stable = stable_names(&paths);
        let mut item = 0usize;
        let inos: Vec<Ino> = self.nodes.keys().copied().collect();
        let may_rot = matches!(script, Script::Draw) && self.config.bit_rot > 0.0;
        for ino in inos {
            // A file with nothing pending that cannot rot keeps its durable bytes, and its
            // cache becomes them: no draw, no fate, and no copy of every file on the disk
            // at every power failure (the cache equals the durable bytes but after an
            // fsync error).
            if let Some(Node::File(f)) = self.nodes.get_mut(&ino) {
                if f.pending.is_empty() && (!may_rot || f.durable.is_empty()) {
                    debug_assert!(f.cache_stale || f.current == f.durable, "a fresh cache differs");
                    if std::mem::take(&mut f.cache_stale) {
                        f.current.clone_from(&f.durable);
                    }
                    f.archive_exact = false;
                    continue;
                }
            }
            let at = Item {
                path: paths.get(&ino).cloned().unwrap_or_else(|| PathBuf::from(format!("<inode {ino}>"))),
                name: stable.get(&ino).cloned().unwrap_or_else(|| (format!("<inode {ino}>"), 0)),
            };
            let mut node = self.nodes.remove(&ino).expect("listed");
            match &mut node {
                Node::File(f) => self.resolve_file(f, &at, &script, &mut item),
                Node::Dir(d) => {
                    let mut entries = std::mem::take(&mut d.durable);
                    let pending = std::mem::take(&mut d.pending);
                    // An entry operation is named by its directory, its kind and its names
                    // masked, and its place among the pending ones named alike.
                    let labels: Vec<String> = pending.iter().map(entry_label).collect();
                    for (i, op) in pending.into_iter().enumerate() {
                        let from_end = labels[i + 1..].iter().filter(|l| **l == labels[i]).count();
                        let op_at = Item {
                            path: at.path.clone(),
                            name: (format!("{} {}", at.name.0, labels[i]), at.name.1),
                        };
                        let keep = match script.fate(item, &op_at.name, from_end) {
                            Decided::Draw => self.rng.gen_bool(self.config.persist_entry_op.clamp(0.0, 1.0)),
                            Decided::Keep => true,
                            _ => false,
                        };
                        item += 1;
                        if keep {
                            apply_entry(&mut entries, &op);
                        } else {
                            self.note_lost(&op_at, from_end, format!("{op:?}"));
                        }
                    }
                    d.current = entries.clone();
                    d.durable = entries;
                }
            }
            self.nodes.insert(ino, node);
        }
        self.dead = true;
        self.crash = None;
    }

    /// Resolves one file's pending writes and truncations (`item`: the power failure's
    /// count of items so far).
    fn resolve_file(&mut self, f: &mut FileNode, at: &Item, script: &Script, item: &mut usize) {
        let mut content = std::mem::take(&mut f.durable);
        let pending = std::mem::take(&mut f.pending);
        let count = pending.len();
        for (i, p) in pending.into_iter().enumerate() {
            let (decided, from_end) = (script.fate(*item, &at.name, count - 1 - i), count - 1 - i);
            *item += 1;
            match p {
                Pending::Write { offset, data } => match decided {
                    Decided::Draw => self.resolve_write(at, from_end, &mut content, offset, &data),
                    Decided::Keep => apply_write(&mut content, offset, &data),
                    Decided::Lose => self.lose_write(at, from_end, offset, data.len() as u64),
                    Decided::Torn(sectors) => {
                        self.tear_write(at, from_end, &mut content, offset, &data, &sectors)
                    }
                    Decided::Prefix(sectors, fill) => {
                        self.tear_prefix(at, &mut content, offset, &data, sectors, fill)
                    }
                },
                Pending::Truncate { len } => {
                    let keep = match decided {
                        Decided::Draw => self.rng.gen_bool(0.5),
                        Decided::Keep => true,
                        _ => false,
                    };
                    if keep {
                        content.resize(len as usize, 0);
                    } else {
                        self.note_lost(at, from_end, format!("truncate to {len}"));
                    }
                }
            }
        }
        if matches!(script, Script::Draw) && !content.is_empty() && self.roll(self.config.bit_rot) {
            let bit = self.rng.gen_range(0..content.len() * 8);
            content[bit / 8] ^= 1 << (bit % 8);
            self.faults.push(Fault::BitRot { path: at.path.clone(), offset: (bit / 8) as u64 });
        }
        f.current = content.clone();
        f.cache_stale = false;
        f.durable = content;
        f.archive_exact = false;
    }

    /// A truncation or entry operation rolled back: recorded as a fault and a fate.
    fn note_lost(&mut self, at: &Item, from_end: usize, op: String) {
        self.faults.push(Fault::EntryRolledBack { dir: at.path.clone(), op });
        self.note_fate(at, from_end, ItemFate::Lose);
    }

    fn note_fate(&mut self, at: &Item, from_end: usize, fate: ItemFate) {
        let (node, newest) = at.name.clone();
        self.fates.drawn.push(PendingFate { node, newest, item: from_end, fate });
    }

    fn lose_write(&mut self, at: &Item, from_end: usize, offset: u64, len: u64) {
        self.faults.push(Fault::WriteLost { path: at.path.clone(), offset, len });
        self.note_fate(at, from_end, ItemFate::Lose);
    }

    /// A pending write that reaches the disk sector by sector as `sectors` say.
    fn tear_write(
        &mut self,
        at: &Item,
        from_end: usize,
        content: &mut Vec<u8>,
        offset: u64,
        data: &[u8],
        sectors: &[SectorFate],
    ) {
        let written = apply_torn(content, offset, data, sectors, SECTOR);
        let len = data.len() as u64;
        self.faults.push(Fault::WriteTorn { path: at.path.clone(), offset, len, sectors_written: written });
        self.note_fate(at, from_end, ItemFate::Tear(sectors.to_vec()));
    }

    /// An explorer's torn write: the first `sectors` sectors of the write's range hold the
    /// new data, the rest `fill`.
    fn tear_prefix(
        &mut self,
        at: &Item,
        content: &mut Vec<u8>,
        offset: u64,
        data: &[u8],
        sectors: u64,
        fill: Fill,
    ) {
        let len = data.len() as u64;
        let split = ((offset / SECTOR + sectors) * SECTOR).clamp(offset, offset + len);
        apply_write(content, offset, &data[..(split - offset) as usize]);
        let rest: Vec<u8> = (split..offset + len)
            .map(|at| match fill {
                Fill::Zeros => 0,
                Fill::Garbage => garbage(at),
            })
            .collect();
        apply_write(content, split, &rest);
        self.faults.push(Fault::WriteTorn { path: at.path.clone(), offset, len, sectors_written: sectors });
    }

    /// A pending write's fate drawn from the disk's stream: kept, lost, or torn with each
    /// sector new, old, zeros or random bytes.
    fn resolve_write(&mut self, at: &Item, from_end: usize, content: &mut Vec<u8>, offset: u64, data: &[u8]) {
        let len = data.len() as u64;
        let r: f64 = self.rng.r#gen();
        if r < self.config.lose_write {
            return self.lose_write(at, from_end, offset, len);
        }
        if r >= self.config.lose_write + self.config.tear_write {
            apply_write(content, offset, data);
            return;
        }
        let end = offset + len;
        let mut sector = offset / SECTOR * SECTOR;
        let mut written = 0;
        let mut fates = Vec::new();
        while sector < end {
            let (a, b) = (sector.max(offset), (sector + SECTOR).min(end));
            let piece = &data[(a - offset) as usize..(b - offset) as usize];
            let fate = match self.rng.gen_range(0..4) {
                0 => {
                    apply_write(content, a, piece);
                    written += 1;
                    SectorFate::New
                }
                1 => SectorFate::Old,
                2 => {
                    apply_write(content, a, &vec![0u8; piece.len()]);
                    SectorFate::Zeros
                }
                _ => {
                    let mut junk = vec![0u8; piece.len()];
                    self.rng.fill_bytes(&mut junk);
                    apply_write(content, a, &junk);
                    SectorFate::Garbage
                }
            };
            fates.push(fate);
            sector += SECTOR;
        }
        self.faults.push(Fault::WriteTorn { path: at.path.clone(), offset, len, sectors_written: written });
        self.note_fate(at, from_end, ItemFate::Tear(fates));
    }
}

/// How a power failure decides its pending items' fates.
enum Script<'a> {
    /// Drawn from the disk's stream at its rates.
    Draw,
    /// Named by an explorer, by the item's index in [`Disk::pending_items`].
    Explore(&'a dyn Fn(usize) -> Fate),
    /// Named by a plan (see `fates.rs`); items not named are kept.
    Named(&'a [PendingFate]),
}

/// One item's fate as a [`Script`] decides it.
enum Decided {
    Draw,
    Keep,
    Lose,
    Torn(Vec<SectorFate>),
    /// An explorer's tear: the write's first `.0` sectors new, every later one `.1`.
    Prefix(u64, Fill),
}

impl Script<'_> {
    /// The fate of the power failure's `index`-th item, the `from_end`-th newest pending
    /// item of the node named `name`.
    fn fate(&self, index: usize, name: &(String, usize), from_end: usize) -> Decided {
        match self {
            Script::Draw => Decided::Draw,
            Script::Explore(f) => match f(index) {
                Fate::Keep => Decided::Keep,
                Fate::Lose => Decided::Lose,
                Fate::Tear { sectors, fill } => Decided::Prefix(sectors, fill),
            },
            Script::Named(fates) => match named(fates, name, from_end) {
                None => Decided::Keep,
                Some(ItemFate::Lose) => Decided::Lose,
                Some(ItemFate::Tear(s)) => Decided::Torn(s.clone()),
            },
        }
    }
}

/// A node whose pending items a power failure resolves: its path (for fault records) and
/// its stable name (for fates).
struct Item {
    path: PathBuf,
    name: (String, usize),
}
