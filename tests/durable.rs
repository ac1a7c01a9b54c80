//! Durable services under crashes: a seeded workload runs through UBSCore, Matching and
//! Settlement with their WALs and snapshots on the in-memory test filesystem, which is
//! made to fail at random operations (including during recovery). After every recovery
//! the recovered state of all three services must equal the reference model fed the same
//! commands; acknowledged commands are never lost; regenerated matching events are
//! verified against the WAL; a damaged newest snapshot falls back to the previous one; a
//! lost snapshot whose WAL holds nothing but an empty segment beyond it is refused.

use engine::durable::pipeline::PipelineConfig;
use engine::durable::{DurableConfig, DurableError, DurablePipeline, DurableUbs, SnapshotPolicy};
use engine::storage::{FileSystem, MemFs};
use engine::wal::WalConfig;
use engine::{Command, Outcome};
use rand::Rng;
use scenarios::checker::{self, ExchangeView};
use scenarios::model::Model;
use scenarios::workload::{self, WorkloadConfig};
use sim::fs::{CrashPoint, Death, Disk, FaultConfig, NodeFs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from("/data")
}

/// Tiny segments and frequent snapshots, so rotation, retention and fallback all happen.
fn config() -> PipelineConfig {
    let c = DurableConfig {
        wal: WalConfig::segments(8 << 10),
        snapshots: SnapshotPolicy::every(150, 0),
        keep_snapshots: 2,
        retention: true,
    };
    PipelineConfig {
        ubscore: c,
        matching: c,
        settlement: DurableConfig { snapshots: SnapshotPolicy::every(40, 0), ..c },
        followers: None,
    }
}

/// The recovered services equal the model: state, the ME's event log (as far as the WAL
/// keeps it), and the settlement ledger.
fn assert_equals_model(p: &DurablePipeline, model: &Model, context: &str) {
    let view = ExchangeView::of_parts(p.ubs.core(), p.me.engine(), p.settlement.durable_trade_id());
    checker::check_state(&view).unwrap_or_else(|e| panic!("{context}: invariant: {e}"));
    assert_eq!(view, ExchangeView::of_model(model), "{context}: recovered state differs from the model");
    let first = p.me.wal().first_seq();
    let events = p.me.events_after(first - 1, usize::MAX).unwrap();
    assert_eq!(events.as_slice(), &model.events()[(first - 1) as usize..], "{context}: ME event log");
    assert_eq!(p.settlement.settlement().ledger(), model.ledger(), "{context}: settlement ledger");
}

/// A test disk that can be made to crash at its k-th next operation.
trait CrashDisk {
    /// Fail (crash) at the k-th next operation.
    fn arm(&self, k: u64);
    /// The process (and, for the simulated disk, the power) went down; bring it back.
    fn restart(&self);
    /// Stops injecting I/O errors (for the final clean restart).
    fn heal(&self) {}
}

impl CrashDisk for MemFs {
    fn arm(&self, k: u64) {
        self.crash_after(k);
    }
    fn restart(&self) {
        self.revive();
    }
}

impl CrashDisk for NodeFs {
    fn arm(&self, k: u64) {
        self.disk().lock().unwrap().set_crash_point(Some(CrashPoint { op: k, before: k % 2 == 0 }));
    }
    fn restart(&self) {
        let mut d = self.disk().lock().unwrap();
        d.power_fail();
        d.revive();
    }
}

/// The simulated disk where most deaths take only the process (the page cache survives,
/// unsynced and fsync-failed writes stay readable) and every third is a power failure that
/// then resolves whatever is still unsynced.
struct ProcessThenPower {
    fs: NodeFs,
    deaths: std::sync::atomic::AtomicU64,
}

impl CrashDisk for ProcessThenPower {
    fn arm(&self, k: u64) {
        self.fs.arm(k);
    }
    fn restart(&self) {
        let n = self.deaths.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut d = self.fs.disk().lock().unwrap();
        d.set_next_death(if n % 3 == 2 { Death::PowerFailure } else { Death::ProcessCrash });
        d.kill();
        d.revive();
    }
    fn heal(&self) {
        let mut d = self.fs.disk().lock().unwrap();
        d.set_config(FaultConfig { eio_fsync: 0.0, ..FaultConfig::default() });
    }
}

impl FileSystem for ProcessThenPower {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.fs.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<()> {
        self.fs.create_new(path)
    }
    fn append(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.fs.append(path, data)
    }
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.fs.write_at(path, offset, data)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.fs.read_at(path, offset, len)
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.fs.read_all(path)
    }
    fn len(&self, path: &Path) -> std::io::Result<u64> {
        self.fs.len(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.fs.truncate(path, len)
    }
    fn sync_file(&self, path: &Path) -> std::io::Result<()> {
        self.fs.sync_file(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.fs.sync_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.fs.remove_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.fs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        self.fs.exists(path)
    }
}

/// Opens the pipeline, retrying while crashes keep hitting recovery itself.
fn recover(
    disk: &dyn CrashDisk,
    fs: &Arc<dyn FileSystem>,
    rng: &mut impl Rng,
    crashes_in_recovery: &mut u32,
) -> DurablePipeline {
    let markets = workload::default_markets();
    loop {
        let armed = rng.gen_bool(0.3);
        if armed {
            disk.arm(rng.gen_range(1..60));
        }
        match DurablePipeline::open(fs.clone(), &root(), markets.clone(), config(), 0) {
            Ok((p, _)) => {
                if armed {
                    // Disarm: a crash point left over must not fire later by surprise.
                    disk.arm(u64::MAX / 2);
                }
                return p;
            }
            Err(e) => {
                disk.restart();
                assert!(is_crash(&e), "recovery failed for a reason other than the injected crash: {e}");
                *crashes_in_recovery += 1;
            }
        }
    }
}

fn is_crash(e: &DurableError) -> bool {
    let text = e.to_string();
    text.contains("memfs: crashed")
        || text.contains("simfs: node crashed")
        || text.contains("poisoned")
        || text.contains("simfs: EIO on fsync")
}

fn run_seed<D: CrashDisk + FileSystem + 'static>(seed: u64, disk: D) -> (u32, u32) {
    let mut rng = sim::seed::rng(seed, sim::seed::Stream::Crash);
    let mut wl = sim::seed::rng(seed, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 1_200, users: 12 });
    let memfs = Arc::new(disk);
    let fs: Arc<dyn FileSystem> = memfs.clone();
    let mut model = Model::new(workload::default_markets());
    let (mut crashes, mut crashes_in_recovery) = (0, 0);
    let mut p = recover(memfs.as_ref(), &fs, &mut rng, &mut crashes_in_recovery);
    for (i, command) in commands.iter().enumerate() {
        if rng.gen_bool(0.02) {
            memfs.arm(rng.gen_range(1..80));
        }
        let mut first_try = true;
        let ack = loop {
            match p.submit(*command, 0) {
                Ok(ack) => break ack,
                Err(e) => {
                    assert!(is_crash(&e), "command #{i}: {e}");
                    crashes += 1;
                    memfs.restart();
                    drop(p);
                    p = recover(memfs.as_ref(), &fs, &mut rng, &mut crashes_in_recovery);
                    // The unacknowledged command may or may not have become durable.
                    let in_history = p.ubs.core().next_seq() - 1 == model.history().len() as u64 + 1;
                    let mut at = model.clone();
                    if in_history {
                        at.submit(*command);
                    }
                    assert_equals_model(&p, &at, &format!("seed {seed}, after a crash at command #{i}"));
                    first_try = false;
                }
            }
        };
        let want = model.submit(*command);
        if first_try {
            assert_eq!(ack, want, "seed {seed}, command #{i} {command:?}");
        } else {
            // A retry is answered from the de-duplication table if the first try was durable.
            assert_eq!(ack.outcome, want.outcome, "seed {seed}, retried command #{i} {command:?}");
        }
    }
    // A clean restart recovers exactly the final state.
    drop(p);
    memfs.restart();
    memfs.heal();
    let (p, info) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config(), 0).unwrap();
    assert!(info.ubscore.snapshot_seq.is_some(), "seed {seed}: UBSCore snapshots were taken");
    assert!(info.matching.snapshot_seq.is_some(), "seed {seed}: matching snapshots were taken");
    assert!(info.settlement.snapshot_seq.is_some(), "seed {seed}: settlement checkpoints were taken");
    assert_equals_model(&p, &model, &format!("seed {seed}, final restart"));
    (crashes, crashes_in_recovery)
}

#[test]
fn recovered_state_equals_the_model_after_every_crash() {
    let (mut crashes, mut in_recovery) = (0, 0);
    for seed in 0..6 {
        let (c, r) = run_seed(seed, MemFs::new());
        crashes += c;
        in_recovery += r;
    }
    assert!(crashes >= 20, "the test must actually crash the services ({crashes})");
    assert!(in_recovery >= 5, "and crash recovery itself ({in_recovery})");
}

/// The same on the simulated disk: every crash is also a power failure that loses, tears
/// or keeps each unsynced write and persists or rolls back each unsynced entry operation.
#[test]
fn recovered_state_equals_the_model_after_power_failures_on_the_simulated_disk() {
    let (mut crashes, mut in_recovery) = (0, 0);
    for seed in 0..6 {
        let disk = Disk::new(FaultConfig::default(), sim::seed::rng(seed, sim::seed::Stream::Disk));
        let (c, r) = run_seed(seed, NodeFs::detached(Arc::new(std::sync::Mutex::new(disk))));
        crashes += c;
        in_recovery += r;
    }
    assert!(crashes >= 20 && in_recovery >= 5, "{crashes} crashes, {in_recovery} in recovery");
}

/// Process crashes (the page cache survives) with power failures after them, and fsync
/// errors (fsyncgate): what a process restarted after an I/O error reads back through the
/// cache must not be trusted as durable. The landed engine lost committed entries here.
#[test]
fn recovered_state_equals_the_model_after_process_crashes_and_later_power_failures() {
    let (mut crashes, mut in_recovery) = (0, 0);
    for seed in 0..6 {
        let config = FaultConfig { eio_fsync: 0.02, ..FaultConfig::default() };
        let disk = Disk::new(config, sim::seed::rng(seed, sim::seed::Stream::Disk));
        let fs = NodeFs::detached(Arc::new(std::sync::Mutex::new(disk)));
        let (c, r) = run_seed(seed, ProcessThenPower { fs, deaths: 0.into() });
        crashes += c;
        in_recovery += r;
    }
    assert!(crashes >= 20 && in_recovery >= 5, "{crashes} crashes, {in_recovery} in recovery");
}

fn corrupt_file(fs: &dyn FileSystem, path: &Path) {
    let mut bytes = fs.read_all(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xFF;
    fs.remove_file(path).unwrap();
    fs.create_new(path).unwrap();
    fs.append(path, &bytes).unwrap();
}

fn run_clean(fs: &Arc<dyn FileSystem>, commands: &[Command]) -> Model {
    let mut model = Model::new(workload::default_markets());
    let (mut p, _) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config(), 0).unwrap();
    for c in commands {
        assert_eq!(p.submit(*c, 0).unwrap(), model.submit(*c));
    }
    model
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let mut wl = sim::seed::rng(7, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 1_000, users: 10 });
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let model = run_clean(&fs, &commands);
    for service in ["ubscore", "matching"] {
        let dir = root().join(service).join("snapshots");
        let mut snaps: Vec<String> =
            fs.list_dir(&dir).unwrap().into_iter().filter(|n| n.starts_with("snapshot-")).collect();
        snaps.sort();
        assert_eq!(snaps.len(), 2, "{service} keeps two snapshots");
        let newest = dir.join(snaps.last().unwrap());
        let file = fs.list_dir(&newest).unwrap().into_iter().find(|n| n.ends_with(".bin")).unwrap();
        corrupt_file(fs.as_ref(), &newest.join(file));
    }
    let (p, info) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config(), 0).unwrap();
    assert_eq!(info.ubscore.skipped_snapshots.len(), 1);
    assert_eq!(info.matching.skipped_snapshots.len(), 1);
    assert_equals_model(&p, &model, "after falling back");
}

#[test]
fn matching_recovery_refuses_a_wal_that_re_matching_contradicts() {
    // No ME snapshots: recovery re-matches everything and checks it against the WAL.
    let mut cfg = config();
    cfg.matching.snapshots = SnapshotPolicy::never();
    let mut wl = sim::seed::rng(3, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 300, users: 5 });
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    {
        let (mut p, _) =
            DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), cfg, 0).unwrap();
        for c in &commands {
            p.submit(*c, 0).unwrap();
        }
    }
    // Rewrite one trade in the ME's WAL with a valid CRC but a different quantity.
    let wal_dir = root().join("matching/wal");
    let seg = fs
        .list_dir(&wal_dir)
        .unwrap()
        .into_iter()
        .map(|n| wal_dir.join(n))
        .find(|p| p.extension().is_some_and(|e| e == "wal") && fs.len(p).unwrap() > 100)
        .unwrap();
    let bytes = fs.read_all(&seg).unwrap();
    let mut out = bytes[..engine::wal::format::SEGMENT_HEADER].to_vec();
    let mut pos = out.len();
    let mut changed = false;
    while let Some(r) = engine::wal::format::decode_record(&bytes[pos..]) {
        let mut ev: engine::MeEvent = engine::codec::decode(r.payload).unwrap();
        if let (false, engine::MeEventKind::Trade(t)) = (changed, &mut ev.kind) {
            t.qty += 1;
            changed = true;
        }
        let payload = engine::codec::encode(&ev);
        engine::wal::format::Record { payload: &payload, ..r }.encode_into(&mut out);
        pos += r.size();
    }
    assert!(changed);
    fs.remove_file(&seg).unwrap();
    fs.create_new(&seg).unwrap();
    fs.append(&seg, &out).unwrap();
    // UBSCore and Settlement already applied the true trade; the ME must refuse.
    let err = DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), cfg, 0)
        .err()
        .expect("refused");
    assert!(matches!(err, DurableError::Divergence(_)), "{err}");
    assert!(err.to_string().contains("re-matching"), "{err}");
}

#[test]
fn outcomes_survive_restarts_for_retries() {
    // A command acknowledged before a restart is answered identically after it.
    let mut wl = sim::seed::rng(11, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 400, users: 6 });
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let model = run_clean(&fs, &commands);
    let (mut p, _) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config(), 0).unwrap();
    for (i, c) in commands.iter().enumerate().step_by(7) {
        let ack = p.submit(*c, 0).unwrap();
        assert_eq!(ack.seq, None, "#{i} is a retry");
        let first = model.history().iter().find(|r| r.command.key() == c.key()).unwrap();
        let want = if first.command == *c {
            first.outcome
        } else {
            Outcome::Rejected(engine::RejectReason::DuplicateId)
        };
        assert_eq!(ack.outcome, want, "#{i}");
    }
    assert_equals_model(&p, &model, "after retries");
}

/// A promoted replica's state and log become a matching engine's directory: reopened, it
/// replays nothing, serves every event, and equals the model; adopting into a directory
/// that already holds an engine is refused.
#[test]
fn an_adopted_replica_reopens_as_the_matching_engine() {
    use engine::durable::DurableMatching;
    use engine::durable::pipeline::me_input;
    let mut rng = sim::seed::rng(11, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut rng, &WorkloadConfig { commands: 500, users: 30 });
    let markets = workload::default_markets();
    let (mut model, mut pipeline) =
        (Model::new(markets.clone()), engine::Pipeline::with_logs(markets.clone()));
    for c in &commands {
        model.submit(*c);
        pipeline.submit(*c).unwrap();
    }
    let mut replica = engine::replica::Replica::new(markets.clone());
    for r in pipeline.history() {
        replica.apply(r, &mut Vec::new()).unwrap();
    }
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let dir = root().join("replica");
    let c = config().matching;
    let state = replica.engine().export_state();
    let adopted =
        DurableMatching::adopt(fs.clone(), &dir, markets.clone(), c, state.clone(), replica.events(), 0)
            .unwrap();
    assert_eq!(adopted.durable_event_id(), model.events().len() as u64);
    drop(adopted);
    let (mut me, info) = DurableMatching::open(fs.clone(), &dir, markets.clone(), c, 0).unwrap();
    assert_eq!(
        info.snapshot_seq,
        Some(model.events().len() as u64),
        "it reopens from the handover's snapshot"
    );
    assert_eq!(info.replayed, 0, "and replays nothing after it");
    assert_eq!(me.events_after(0, usize::MAX).unwrap(), model.events());
    assert_eq!(me.engine().export_state().books, model.books());
    // Caught up: UBSCore's history after its watermark adds nothing.
    let watermark = me.last_ubs_seq();
    for r in pipeline.history().iter().filter(|r| r.seq > watermark) {
        me.process(r.seq, me_input(r).as_ref()).unwrap();
    }
    assert!(me.caught_up());
    drop(me);
    let again = DurableMatching::adopt(fs, &dir, markets, c, state, replica.events(), 0);
    assert!(matches!(again, Err(DurableError::Divergence(_))), "a second handover into the same directory");
}

/// The followers run exactly when the markets publish order events, and pull at least
/// every command: anything else is refused at open, not clamped.
#[test]
fn a_pipeline_with_followers_is_validated() {
    use engine::durable::pipeline::FollowersConfig;
    use engine::market_data::MdConfig;
    let followers = FollowersConfig {
        md: MdConfig::standard(),
        market_data: DurableConfig::settlement(),
        audit: DurableConfig::settlement(),
        pull_every: 1,
    };
    let open = |markets: engine::Markets, cfg: PipelineConfig| {
        let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
        DurablePipeline::open(fs, &root(), markets, cfg, 0).err().map(|e| e.to_string())
    };
    let events = workload::default_markets().with_order_events(true);
    let without = open(events.clone(), config()).expect("order events without followers refused");
    assert!(without.contains("order events true, followers false"), "{without}");
    let no_events = PipelineConfig { followers: Some(followers), ..config() };
    assert!(open(workload::default_markets(), no_events).is_some(), "followers without order events refused");
    let never =
        PipelineConfig { followers: Some(FollowersConfig { pull_every: 0, ..followers }), ..config() };
    let err = open(events.clone(), never).expect("pull_every 0 refused");
    assert!(err.contains("pull_every"), "{err}");
    assert_eq!(open(events, PipelineConfig { followers: Some(followers), ..config() }), None);
}

/// A snapshot whose segments are all gone (removed by retention, as one kept snapshot and
/// a downstream floor past it allow), leaving only the empty segment the snapshot rotated
/// to. If that snapshot is then lost, nothing on the disk holds the commands it covered,
/// and UBSCore must refuse to open (naming the divergence) instead of starting over from
/// nothing with its WAL numbered beyond.
#[test]
fn ubscore_refuses_an_empty_wal_that_starts_beyond_its_lost_snapshot() {
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let dir = root().join("ubscore");
    let config = DurableConfig {
        wal: WalConfig::segments(1 << 10),
        snapshots: SnapshotPolicy::every(1_000, 0),
        keep_snapshots: 1,
        retention: true,
    };
    let (mut ubs, _) = DurableUbs::open(fs.clone(), &dir, workload::default_markets(), config, 0).unwrap();
    for request_id in 1..=300 {
        ubs.submit(Command::Deposit { request_id, user: 1, asset: 1, amount: 5 });
        ubs.commit().unwrap();
    }
    let seq = ubs.snapshot(0).unwrap();
    assert_eq!(ubs.wal().next_seq(), seq + 1, "the snapshot rotated to an empty segment");
    drop(ubs);
    let wal = dir.join("wal");
    let mut segments: Vec<String> =
        fs.list_dir(&wal).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    segments.sort();
    let newest = segments.pop().expect("segments");
    assert!(newest.ends_with(&format!("{:020}.wal", seq + 1)), "{newest}");
    for old in segments {
        fs.remove_file(&wal.join(old)).unwrap();
    }
    // Consistent so far: the snapshot covers everything the removed segments held.
    let (ubs, _) = DurableUbs::open(fs.clone(), &dir, workload::default_markets(), config, 0).unwrap();
    assert_eq!(ubs.core().next_seq() - 1, 300);
    drop(ubs);
    let snaps = dir.join("snapshots");
    let only = fs.list_dir(&snaps).unwrap().into_iter().find(|n| n.starts_with("snapshot-")).unwrap();
    let file = fs.list_dir(&snaps.join(&only)).unwrap().into_iter().find(|n| n.ends_with(".bin")).unwrap();
    corrupt_file(fs.as_ref(), &snaps.join(&only).join(file));
    match DurableUbs::open(fs.clone(), &dir, workload::default_markets(), config, 0) {
        Err(DurableError::Divergence(why)) => assert!(why.contains("WAL"), "{why}"),
        Err(e) => panic!("refused, but not as a divergence: {e}"),
        Ok((ubs, info)) => panic!(
            "opened from {:?} with {} commands and its WAL at {}",
            info.snapshot_seq,
            ubs.core().next_seq() - 1,
            ubs.wal().next_seq()
        ),
    }
}

/// The matching engine's side of the same hole: its snapshot's segments gone, only the
/// empty segment it rotated to kept, then the snapshot lost. It must refuse to open rather
/// than start from no events with its WAL numbered beyond them.
#[test]
fn matching_refuses_an_empty_wal_that_starts_beyond_its_lost_snapshot() {
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let mut wl = sim::seed::rng(3, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 300, users: 5 });
    let config =
        PipelineConfig { matching: DurableConfig { keep_snapshots: 1, ..config().matching }, ..config() };
    let (mut p, _) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config, 0).unwrap();
    for c in &commands {
        p.submit(*c, 0).unwrap();
    }
    let event = p.me.snapshot(0).unwrap();
    assert_eq!(p.me.wal().next_seq(), event + 1, "the snapshot rotated to an empty segment");
    drop(p);
    let dir = root().join("matching");
    let wal = dir.join("wal");
    let mut segments: Vec<String> =
        fs.list_dir(&wal).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    segments.sort();
    segments.pop().expect("segments");
    for old in segments {
        fs.remove_file(&wal.join(old)).unwrap();
    }
    let snaps = dir.join("snapshots");
    for snap in fs.list_dir(&snaps).unwrap().into_iter().filter(|n| n.starts_with("snapshot-")) {
        for file in fs.list_dir(&snaps.join(&snap)).unwrap().into_iter().filter(|n| n.ends_with(".bin")) {
            corrupt_file(fs.as_ref(), &snaps.join(&snap).join(file));
        }
    }
    match DurablePipeline::recover(fs.clone(), &root(), workload::default_markets(), config, 0) {
        Err(DurableError::Divergence(why)) => assert!(why.contains("WAL"), "{why}"),
        Err(e) => panic!("refused, but not as a divergence: {e}"),
        Ok((p, info)) => panic!(
            "opened from {:?} at event {} with its WAL at {}",
            info.matching.snapshot_seq,
            p.me.engine().next_event_id(),
            p.me.wal().next_seq()
        ),
    }
}

/// Settlement's side: its ledger is its whole WAL. A reopening starts a fresh, empty
/// segment; with every older segment and every checkpoint gone, the WAL is numbered beyond
/// an empty ledger, and Settlement must refuse to open rather than start from no trades.
#[test]
fn settlement_refuses_an_empty_wal_numbered_beyond_its_ledger() {
    let fs: Arc<dyn FileSystem> = Arc::new(MemFs::new());
    let mut wl = sim::seed::rng(3, sim::seed::Stream::Workload);
    let commands = workload::generate(&mut wl, &WorkloadConfig { commands: 300, users: 5 });
    run_clean(&fs, &commands);
    let (p, _) =
        DurablePipeline::open(fs.clone(), &root(), workload::default_markets(), config(), 0).unwrap();
    let trades = p.settlement.settlement().last_trade_id();
    assert!(trades > 0, "the workload trades");
    drop(p);
    let wal = root().join("settlement").join("wal");
    let mut segments: Vec<String> =
        fs.list_dir(&wal).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    segments.sort_by_key(|n| n.rsplit('-').next().map(str::to_string));
    let newest = segments.pop().expect("segments");
    assert!(newest.ends_with(&format!("{:020}.wal", trades + 1)), "the reopening's empty segment: {newest}");
    for old in segments {
        fs.remove_file(&wal.join(old)).unwrap();
    }
    // Its checkpoints lost too: nothing else says trades were settled.
    let snaps = root().join("settlement").join("snapshots");
    for snap in fs.list_dir(&snaps).unwrap().into_iter().filter(|n| n.starts_with("snapshot-")) {
        corrupt_file(fs.as_ref(), &snaps.join(&snap).join("checkpoint.json"));
    }
    match DurablePipeline::recover(fs.clone(), &root(), workload::default_markets(), config(), 0) {
        Err(DurableError::Divergence(why)) => assert!(why.contains("WAL is numbered"), "{why}"),
        Err(e) => panic!("refused, but not as a divergence: {e}"),
        Ok((p, _)) => panic!(
            "opened with {} trades and its WAL at {}",
            p.settlement.settlement().last_trade_id(),
            p.settlement.wal().next_seq()
        ),
    }
}
