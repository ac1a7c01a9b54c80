//! The storage benchmark on a real disk: durable WAL appends per batch size (and the
//! fraction of the disk's fsynced sequential bandwidth they reach), recovery of 1M WAL
//! entries, snapshot creation and load for 1M accounts, and the longest pause of a
//! service that keeps working while its snapshot is written.

use super::thousands;
use engine::durable::{DurableConfig, DurableMarketData, DurableUbs, SnapshotPolicy};
use engine::storage::{FileSystem, StdFs};
use engine::wal::{Wal, WalConfig};
use engine::{Command, Order, OrderKind, Side, UbsRecord, codec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One measured line.
#[derive(Clone, Debug, Serialize)]
pub struct StorageRow {
    /// What was measured.
    pub name: String,
    /// Items (entries, accounts) involved.
    pub items: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Items per second.
    pub per_second: f64,
    /// Bytes per second written or read, where meaningful.
    pub bytes_per_second: Option<f64>,
    /// A remark (target, fraction of disk bandwidth).
    pub note: String,
}

/// The storage benchmark result.
#[derive(Clone, Debug, Serialize)]
pub struct StorageBench {
    /// The directory measured.
    pub dir: String,
    /// Sequential write bandwidth with an fdatasync per MiB (bytes/s).
    pub disk_bytes_per_second: f64,
    /// The rows.
    pub rows: Vec<StorageRow>,
}

impl StorageBench {
    /// The table as Markdown.
    pub fn table(&self) -> String {
        let mut s = format!(
            "exsim bench storage (dir {}; disk: {:.0} MB/s sequential with fdatasync per MiB)\n\n| measurement | items | time | items/s | MB/s | note |\n|---|---:|---:|---:|---:|---|\n",
            self.dir,
            self.disk_bytes_per_second / 1e6
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {:.3} s | {} | {} | {} |\n",
                r.name,
                thousands(r.items),
                r.seconds,
                thousands(r.per_second as u64),
                r.bytes_per_second.map_or("".into(), |b| format!("{:.0}", b / 1e6)),
                r.note
            );
        }
        s
    }
}

fn payload(i: u64) -> Vec<u8> {
    let order = Order {
        order_id: i,
        user: i % 1000,
        symbol: 0,
        side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        kind: OrderKind::Gtc,
        price: 8_500_000 + i % 1000,
        qty: 10_000_000 + i,
    };
    codec::encode(&UbsRecord { seq: i, command: Command::Place(order), outcome: engine::Outcome::Accepted })
}

fn fresh(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let d = dir.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    Ok(d)
}

fn disk_bandwidth(fs: &StdFs, dir: &Path) -> Result<f64, String> {
    let path = dir.join("bandwidth.bin");
    let _ = std::fs::remove_file(&path);
    fs.create_new(&path).map_err(|e| e.to_string())?;
    let chunk = vec![0x5Au8; 1 << 20];
    let t = Instant::now();
    for _ in 0..128 {
        fs.append(&path, &chunk).map_err(|e| e.to_string())?;
        fs.sync_file(&path).map_err(|e| e.to_string())?;
    }
    let secs = t.elapsed().as_secs_f64();
    fs.remove_file(&path).map_err(|e| e.to_string())?;
    Ok(128.0 * (1 << 20) as f64 / secs)
}

fn short(n: u64) -> String {
    if n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn row(name: &str, items: u64, elapsed: Duration, bytes: Option<u64>, note: String) -> StorageRow {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    StorageRow {
        name: name.to_string(),
        items,
        seconds,
        per_second: items as f64 / seconds,
        bytes_per_second: bytes.map(|b| b as f64 / seconds),
        note,
    }
}

/// Runs the benchmark in `dir` (created; its benchmark files are removed afterwards),
/// with `n` entries for recovery and `n` accounts for snapshots.
pub fn run_storage_bench(dir: &Path, n: u64, progress: impl Fn(&str)) -> Result<StorageBench, String> {
    if n == 0 {
        return Err("--entries must be at least 1".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let std_fs = StdFs::new();
    progress("disk bandwidth");
    let disk = disk_bandwidth(&std_fs, dir)?;
    let fs: Arc<dyn FileSystem> = Arc::new(StdFs::new());
    let mut rows = Vec::new();
    let config = WalConfig::segments(256 << 20);

    // Durable appends per batch size.
    for (batch, entries) in [(1u64, 2_000u64), (64, 128_000), (1_024, 2_048_000)] {
        progress(&format!("WAL appends, batch {batch}"));
        let d = fresh(dir, "wal-append")?;
        let (mut wal, _) = Wal::open(fs.clone(), &d, config, |_| Ok(())).map_err(|e| e.to_string())?;
        let payloads: Vec<Vec<u8>> = (0..batch).map(payload).collect();
        let bytes: u64 =
            payloads.iter().map(|p| (p.len() + engine::wal::format::RECORD_OVERHEAD) as u64).sum::<u64>()
                * (entries / batch);
        let t = Instant::now();
        for _ in 0..entries / batch {
            for p in &payloads {
                wal.append(1, p);
            }
            wal.commit().map_err(|e| e.to_string())?;
        }
        let elapsed = t.elapsed();
        let rate = bytes as f64 / elapsed.as_secs_f64() / disk * 100.0;
        let note = format!("{rate:.0}% of disk bandwidth; target ≥ 2,000,000/s with large batches");
        rows.push(row(&format!("durable WAL append, batch {batch}"), entries, elapsed, Some(bytes), note));
        drop(wal);
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())?;
    }

    // Recovery of 1M entries: WAL scan, and UBSCore re-applying 1M commands.
    progress(&format!("writing {n} commands through UBSCore"));
    let d = fresh(dir, "ubscore")?;
    let never =
        DurableConfig { wal: config, snapshots: SnapshotPolicy::never(), keep_snapshots: 2, retention: true };
    let markets = crate::workload::default_markets();
    let (mut ubs, _) =
        DurableUbs::open(fs.clone(), &d, markets.clone(), never, 0).map_err(|e| e.to_string())?;
    for i in 0..n {
        // One deposit per user: 1M accounts, 1M WAL entries.
        ubs.submit(Command::Deposit { request_id: i + 1, user: i, asset: 2, amount: 1_000 + i });
        if i % 1024 == 1023 {
            ubs.commit().map_err(|e| e.to_string())?;
        }
    }
    ubs.commit().map_err(|e| e.to_string())?;
    drop(ubs);
    progress("WAL scan");
    let t = Instant::now();
    let mut count = 0u64;
    let (wal, _) = Wal::open(fs.clone(), &d.join("wal"), config, |e| {
        let _: UbsRecord = codec::decode(e.payload)
            .map_err(|c| engine::wal::WalError::Replay { seq: e.seq, reason: c.to_string() })?;
        count += 1;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let bytes = std_fs.len(&d.join("wal").join(engine::wal::format::segment_name(1, 1))).unwrap_or(0);
    rows.push(row(
        &format!("recovery: WAL scan + decode, {} entries", short(n)),
        count,
        t.elapsed(),
        Some(bytes),
        "CRC-checked".into(),
    ));
    drop(wal);
    progress("UBSCore recovery");
    let t = Instant::now();
    let (mut ubs, info) =
        DurableUbs::open(fs.clone(), &d, markets.clone(), never, 0).map_err(|e| e.to_string())?;
    rows.push(row(
        &format!("recovery: UBSCore re-applies {} commands", short(n)),
        info.replayed,
        t.elapsed(),
        None,
        "target < 1 s".into(),
    ));

    // Snapshot of 1M accounts: creation, load, and the longest pause while it is written.
    progress("snapshot");
    let t = Instant::now();
    ubs.snapshot(0).map_err(|e| e.to_string())?;
    rows.push(row(
        &format!("snapshot creation, {} accounts", short(n)),
        n,
        t.elapsed(),
        None,
        "blocking form; target < 1 s".into(),
    ));
    drop(ubs);
    let t = Instant::now();
    let (mut ubs, info) =
        DurableUbs::open(fs.clone(), &d, markets.clone(), never, 0).map_err(|e| e.to_string())?;
    let loaded = info.snapshot_seq.is_some() && info.replayed == 0;
    rows.push(row(
        &format!("snapshot load, {} accounts", short(n)),
        n,
        t.elapsed(),
        None,
        format!("target < 1 s{}", if loaded { "" } else { " (NOT from snapshot)" }),
    ));

    progress("service pause while a snapshot is written");
    let stall = stall_while_snapshotting(&mut ubs, n)?;
    rows.push(row(
        &format!("service pause to take a snapshot, {} accounts", short(n)),
        1,
        stall.start,
        None,
        format!(
            "{:.0} µs: state frozen and shared, not copied; target < 10 ms",
            stall.start.as_secs_f64() * 1e6
        ),
    ));
    rows.push(row(
        "longest gap between commands while it is written",
        stall.submitted,
        stall.longest,
        None,
        format!(
            "snapshot written in {:.0} ms on another thread; includes group commits, whose fsync shares the disk with it",
            stall.total.as_secs_f64() * 1e3
        ),
    ));
    drop(ubs);
    std::fs::remove_dir_all(&d).map_err(|e| e.to_string())?;
    market_data_rows(dir, n, &fs, config, &mut rows, &progress)?;
    Ok(StorageBench { dir: dir.display().to_string(), disk_bytes_per_second: disk, rows })
}

/// At least `n` matching-engine events with order events on, from the seeded workload run
/// through the in-memory pipeline.
fn market_events(n: u64) -> Result<(engine::Markets, Vec<engine::MeEvent>), String> {
    let markets = crate::workload::default_markets().with_order_events(true);
    let mut pipeline = engine::Pipeline::with_logs(markets.clone());
    let mut rng = sim::seed::rng(1, sim::seed::Stream::Workload);
    // One workload (a second one would repeat its request ids: retries, no new events).
    let config = crate::workload::WorkloadConfig { commands: n as usize, users: 1_000 };
    for command in crate::workload::generate(&mut rng, &config) {
        pipeline.submit(command).map_err(|e| e.to_string())?;
        if pipeline.events().len() as u64 >= n {
            break;
        }
    }
    if (pipeline.events().len() as u64) < n {
        return Err(format!("the workload made only {} events, {n} asked", pipeline.events().len()));
    }
    let mut events = pipeline.events().to_vec();
    events.truncate(n as usize);
    Ok((markets, events))
}

/// Market data: recovery re-deriving `n` events from its WAL, and from its snapshot.
fn market_data_rows(
    dir: &Path,
    n: u64,
    fs: &Arc<dyn FileSystem>,
    wal: WalConfig,
    rows: &mut Vec<StorageRow>,
    progress: &impl Fn(&str),
) -> Result<(), String> {
    progress(&format!("writing {n} events through market data"));
    let (markets, events) = market_events(n)?;
    let d = fresh(dir, "market-data")?;
    let never =
        DurableConfig { wal, snapshots: SnapshotPolicy::never(), keep_snapshots: 2, retention: false };
    let md_config = engine::market_data::MdConfig::standard();
    let open = || {
        DurableMarketData::open_market_data(fs.clone(), &d, &markets, md_config, never, 0)
            .map_err(|e| e.to_string())
    };
    let (mut md, _) = open()?;
    for chunk in events.chunks(1024) {
        for e in chunk {
            md.apply(e).map_err(|e| e.to_string())?;
        }
        md.commit().map_err(|e| e.to_string())?;
    }
    drop(md);
    progress("market data recovery");
    let t = Instant::now();
    let (mut md, info) = open()?;
    let ticks = md.inner().state().ticks.len();
    rows.push(row(
        &format!("recovery: market data re-derives {} events", short(n)),
        info.replayed,
        t.elapsed(),
        None,
        format!("{} ticks; target < 5 s", thousands(ticks as u64)),
    ));
    md.snapshot(0).map_err(|e| e.to_string())?;
    drop(md);
    let t = Instant::now();
    let (_, info) = open()?;
    let loaded = info.snapshot_seq.is_some() && info.replayed == 0;
    rows.push(row(
        &format!("recovery: market data from its snapshot, {} events", short(n)),
        n,
        t.elapsed(),
        None,
        format!("whole derived state{}", if loaded { "" } else { " (NOT from snapshot)" }),
    ));
    std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
}

/// What the service felt while a snapshot was taken and written.
struct Stall {
    /// Taking the snapshot (the service is stopped meanwhile).
    start: Duration,
    /// The longest gap between two commands while the snapshot was written.
    longest: Duration,
    /// Writing it, on another thread.
    total: Duration,
    /// Commands submitted meanwhile.
    submitted: u64,
}

/// Keeps submitting commands while a snapshot job runs on another thread.
fn stall_while_snapshotting(ubs: &mut DurableUbs, base: u64) -> Result<Stall, String> {
    let started = Instant::now();
    let job = ubs.begin_snapshot().map_err(|e| e.to_string())?;
    let start = started.elapsed();
    let mut longest = start;
    let seq = job.seq();
    let handle = std::thread::spawn(move || job.run().map(|_| started.elapsed()));
    let mut submitted = 0u64;
    let mut last = Instant::now();
    while !handle.is_finished() {
        let i = base + submitted;
        ubs.submit(Command::Deposit {
            request_id: i + 10_000_000,
            user: i % base.max(1),
            asset: 1,
            amount: 1,
        });
        if submitted % 64 == 63 {
            ubs.commit().map_err(|e| e.to_string())?;
        }
        submitted += 1;
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
    }
    let total =
        handle.join().map_err(|_| "snapshot thread panicked".to_string())?.map_err(|e| e.to_string())?;
    ubs.commit().map_err(|e| e.to_string())?;
    ubs.finish_snapshot(seq, 0).map_err(|e| e.to_string())?;
    Ok(Stall { start, longest, total, submitted })
}
