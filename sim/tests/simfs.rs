//! The rules of the simulated disk, one by one, and what they do to naive and to careful
//! writers: fsync and directory fsync decide what survives a power failure; unsynced
//! writes are kept, lost or torn per sector; entry operations persist or roll back;
//! fsyncgate; ENOSPC; EIO of data and of metadata operations; crash points before and after an operation's effect; bit rot.

use engine::storage::FileSystem;
use engine::wal::{Wal, WalConfig};
use exsim_sim::fs::{
    CrashPoint, Death, Disk, Fault, FaultConfig, IoErrorAt, IoFailure, ItemFate, NodeFs, OpKind, PendingFate,
    PinnedCrash, SECTOR,
};
use exsim_sim::seed::{Stream, rng};
use std::path::Path;
use std::sync::{Arc, Mutex};

fn disk(config: FaultConfig, seed: u64) -> NodeFs {
    NodeFs::detached(Arc::new(Mutex::new(Disk::new(config, rng(seed, Stream::Disk)))))
}

fn power_fail(fs: &NodeFs) {
    let mut d = fs.disk().lock().unwrap();
    d.power_fail();
    d.revive();
}

fn faults(fs: &NodeFs) -> Vec<Fault> {
    fs.disk().lock().unwrap().faults().to_vec()
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// A durable empty file `/d/f` (created, directory synced).
fn durable_file(fs: &NodeFs) {
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs.create_new(p("/d/f")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
}

#[test]
fn fsync_makes_writes_durable_and_unsynced_writes_are_lost() {
    let lose_all = FaultConfig { lose_write: 1.0, tear_write: 0.0, ..FaultConfig::default() };
    let fs = disk(lose_all, 1);
    durable_file(&fs);
    fs.append(p("/d/f"), b"synced").unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    fs.append(p("/d/f"), b" and not").unwrap();
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"synced and not", "reads see the page cache");
    power_fail(&fs);
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"synced");
    assert!(faults(&fs).iter().any(|f| matches!(f, Fault::WriteLost { len: 8, .. })));
}

#[test]
fn torn_writes_are_torn_at_sector_granularity() {
    let tear_all = FaultConfig { lose_write: 0.0, tear_write: 1.0, ..FaultConfig::default() };
    let mut torn_seen = 0;
    for seed in 0..20 {
        let fs = disk(tear_all, seed);
        durable_file(&fs);
        let old: Vec<u8> = (0..8 * SECTOR).map(|i| (i % 7) as u8 + 1).collect();
        fs.append(p("/d/f"), &old).unwrap();
        fs.sync_file(p("/d/f")).unwrap();
        let new: Vec<u8> = (0..8 * SECTOR).map(|i| (i % 13) as u8 + 100).collect();
        fs.write_at(p("/d/f"), 0, &new).unwrap();
        power_fail(&fs);
        let got = fs.read_all(p("/d/f")).unwrap();
        assert_eq!(got.len(), new.len());
        for s in 0..8usize {
            let r = s * SECTOR as usize..(s + 1) * SECTOR as usize;
            let sector = &got[r.clone()];
            let whole =
                sector == &new[r.clone()] || sector == &old[r.clone()] || sector.iter().all(|b| *b == 0);
            let garbage = sector.iter().zip(&new[r.clone()]).filter(|(a, b)| a == b).count() < 64
                && sector.iter().zip(&old[r.clone()]).filter(|(a, b)| a == b).count() < 64;
            assert!(whole || garbage, "seed {seed}, sector {s} mixes contents");
        }
        if got != new && got != old {
            torn_seen += 1;
        }
        assert!(faults(&fs).iter().any(|f| matches!(f, Fault::WriteTorn { .. })));
    }
    assert!(torn_seen > 10);
}

#[test]
fn entries_need_a_directory_fsync() {
    let rollback_all = FaultConfig { persist_entry_op: 0.0, ..FaultConfig::perfect() };
    let fs = disk(rollback_all, 2);
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    // A durable file renamed without a directory fsync.
    fs.create_new(p("/d/g")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    fs.rename(p("/d/g"), p("/d/h")).unwrap();
    // A file whose data is fsynced but whose directory entry is not.
    fs.create_new(p("/d/f")).unwrap();
    fs.append(p("/d/f"), b"data").unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    power_fail(&fs);
    assert!(!fs.exists(p("/d/f")).unwrap(), "the unsynced create rolled back");
    assert!(fs.exists(p("/d/g")).unwrap() && !fs.exists(p("/d/h")).unwrap(), "the rename rolled back");
    assert!(faults(&fs).iter().filter(|f| matches!(f, Fault::EntryRolledBack { .. })).count() >= 2);
    // With the directory synced, both survive.
    let fs = disk(rollback_all, 3);
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs.create_new(p("/d/f")).unwrap();
    fs.rename(p("/d/f"), p("/d/h")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    power_fail(&fs);
    assert!(fs.exists(p("/d/h")).unwrap() && !fs.exists(p("/d/f")).unwrap());
}

#[test]
fn a_failed_fsync_drops_the_pending_data_and_the_next_fsync_lies() {
    let fs = disk(FaultConfig { eio_fsync: 1.0, ..FaultConfig::perfect() }, 4);
    fs.create_dir_all(p("/d")).unwrap();
    fs.create_new(p("/d/f")).unwrap();
    fs.disk().lock().unwrap().set_config(FaultConfig::perfect());
    fs.sync_dir(p("/")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    fs.disk().lock().unwrap().set_config(FaultConfig { eio_fsync: 1.0, ..FaultConfig::perfect() });
    fs.append(p("/d/f"), b"lost to fsyncgate").unwrap();
    assert!(fs.sync_file(p("/d/f")).is_err());
    fs.disk().lock().unwrap().set_config(FaultConfig::perfect());
    assert!(fs.sync_file(p("/d/f")).is_ok(), "a later fsync returns Ok");
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"lost to fsyncgate", "the page cache still shows it");
    power_fail(&fs);
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"", "but it never reached the disk");
    assert!(faults(&fs).iter().any(|f| matches!(f, Fault::FsyncEio { dropped: 1, .. })));
}

#[test]
fn enospc_and_eio_are_errors_without_effect() {
    let fs = disk(FaultConfig { capacity: 100, ..FaultConfig::perfect() }, 5);
    durable_file(&fs);
    fs.append(p("/d/f"), &[1; 60]).unwrap();
    let err = fs.append(p("/d/f"), &[2; 60]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert_eq!(fs.len(p("/d/f")).unwrap(), 60);
    let fs = disk(FaultConfig { eio_read: 1.0, eio_write: 1.0, ..FaultConfig::perfect() }, 6);
    durable_file(&fs);
    assert!(fs.append(p("/d/f"), b"x").is_err());
    assert!(fs.read_all(p("/d/f")).is_err());
    let kinds: Vec<_> = faults(&fs).iter().map(Fault::kind).collect();
    assert!(kinds.contains(&"write_eio") && kinds.contains(&"read_eio"), "{kinds:?}");
}

/// A metadata EIO fails the operation without effect: a failed create, rename or remove
/// leaves the namespace as it was; a failed directory fsync leaves the directory's entry
/// operations pending (a power failure may still roll them back, a later directory fsync
/// still makes them durable); reads, writes and file fsyncs are not metadata and go on.
#[test]
fn metadata_eio_fails_names_and_directory_fsyncs_without_effect() {
    let failing = FaultConfig { eio_metadata: 1.0, persist_entry_op: 0.0, ..FaultConfig::perfect() };
    let healthy = FaultConfig { persist_entry_op: 0.0, ..FaultConfig::perfect() };
    let fs = disk(healthy, 8);
    durable_file(&fs);
    let set = |c: FaultConfig| fs.disk().lock().unwrap().set_config(c);
    set(failing);
    assert!(fs.create_new(p("/d/g")).is_err() && fs.create_dir_all(p("/d/e")).is_err());
    assert!(fs.rename(p("/d/f"), p("/d/h")).is_err() && fs.remove_file(p("/d/f")).is_err());
    assert!(fs.list_dir(p("/d")).is_err() && fs.exists(p("/d/f")).is_err() && fs.len(p("/d/f")).is_err());
    assert!(fs.remove_dir_all(p("/d")).is_err());
    // Data operations are not metadata.
    fs.append(p("/d/f"), b"data").unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"data");
    set(healthy);
    assert_eq!(fs.list_dir(p("/d")).unwrap(), vec!["f".to_string()], "no failed operation took effect");
    // A create whose directory fsync failed is visible, not durable: a power failure
    // (every pending entry operation rolled back here) takes it.
    fs.create_new(p("/d/g")).unwrap();
    set(failing);
    assert!(fs.sync_dir(p("/d")).is_err());
    set(healthy);
    assert!(fs.exists(p("/d/g")).unwrap(), "the page cache shows it");
    power_fail(&fs);
    assert!(!fs.exists(p("/d/g")).unwrap(), "the failed directory fsync made nothing durable");
    // The same create, its failed directory fsync retried: durable.
    fs.create_new(p("/d/g")).unwrap();
    set(failing);
    assert!(fs.sync_dir(p("/d")).is_err());
    set(healthy);
    fs.sync_dir(p("/d")).unwrap();
    power_fail(&fs);
    assert!(fs.exists(p("/d/g")).unwrap(), "a later directory fsync still made it durable");
    let failed: Vec<OpKind> = faults(&fs)
        .iter()
        .filter_map(|f| if let Fault::MetadataEio { op, .. } = f { Some(*op) } else { None })
        .collect();
    for op in [
        OpKind::Create,
        OpKind::Mkdir,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::Rmdir,
        OpKind::List,
        OpKind::Exists,
        OpKind::Len,
        OpKind::FsyncDir,
    ] {
        assert!(failed.contains(&op), "{op:?} not recorded as a metadata EIO: {failed:?}");
    }
}

#[test]
fn crash_points_before_and_after_the_effect() {
    for before in [true, false] {
        let fs = disk(FaultConfig::perfect(), 7);
        durable_file(&fs);
        fs.disk().lock().unwrap().set_crash_point(Some(CrashPoint { op: 1, before }));
        assert!(fs.append(p("/d/f"), b"x").is_err(), "the crash point fails the operation");
        assert!(fs.exists(p("/d")).is_err(), "a dead node's disk does nothing");
        {
            let mut d = fs.disk().lock().unwrap();
            d.power_fail();
            d.revive();
        }
        // The perfect disk keeps pending writes, so the effect is visible iff it happened.
        assert_eq!(fs.read_all(p("/d/f")).unwrap(), if before { b"".to_vec() } else { b"x".to_vec() });
        assert!(faults(&fs).iter().any(|f| matches!(f, Fault::CrashPoint { before: b, .. } if *b == before)));
    }
}

#[test]
fn a_pinned_crash_fires_at_its_operation_of_the_disk_s_life_across_restarts() {
    let fs = disk(FaultConfig::perfect(), 7);
    durable_file(&fs);
    fs.append(p("/d/f"), b"a").unwrap();
    let first = fs.disk().lock().unwrap().last_op().expect("an operation ran");
    assert_eq!((first.kind, first.nth), (OpKind::Append, 1));
    let pin = PinnedCrash {
        kind: OpKind::Append,
        phase: first.phase,
        nth: 3,
        before: true,
        death: Death::ProcessCrash,
        id: 42,
    };
    fs.disk().lock().unwrap().pin_crash(pin);
    power_fail(&fs);
    fs.append(p("/d/f"), b"b").unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    assert_eq!(fs.disk().lock().unwrap().take_fired_pin(), None, "not yet: the 2nd append");
    assert!(fs.append(p("/d/f"), b"c").is_err(), "the 3rd append of the disk's life dies");
    {
        let mut d = fs.disk().lock().unwrap();
        assert_eq!(d.take_fired_pin(), Some(42));
        assert_eq!(d.take_fired_pin(), None, "told once");
        assert_eq!(d.kill(), Some(Death::ProcessCrash), "it dies as the pin says");
        d.revive();
        assert_eq!(d.last_op(), None, "a new life has done nothing yet: a kill now pins nowhere");
    }
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"ab".to_vec(), "before its effect");
    fs.append(p("/d/f"), b"d").unwrap();
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"abd".to_vec(), "a pin fires once");
}

#[test]
fn io_errors_drawn_or_pinned_are_recorded_at_their_operations() {
    let fs = disk(FaultConfig { eio_write: 1.0, ..FaultConfig::perfect() }, 9);
    durable_file(&fs);
    assert!(fs.append(p("/d/f"), b"x").is_err());
    let drawn = fs.disk().lock().unwrap().io_errors().to_vec();
    assert_eq!(drawn.len(), 1);
    assert_eq!((drawn[0].kind, drawn[0].nth, drawn[0].failure), (OpKind::Append, 1, IoFailure::WriteEio));
    // An error pinned on a disk that draws none: exactly that operation fails.
    let fs = disk(FaultConfig::perfect(), 9);
    durable_file(&fs);
    fs.append(p("/d/f"), b"x").unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    let first = fs.disk().lock().unwrap().last_op().expect("ran");
    assert_eq!((first.kind, first.nth), (OpKind::Fsync, 1));
    let at = IoErrorAt { kind: OpKind::Fsync, phase: first.phase, nth: 2, failure: IoFailure::FsyncEio };
    fs.disk().lock().unwrap().pin_error(at);
    fs.append(p("/d/f"), b"y").unwrap();
    assert!(fs.sync_file(p("/d/f")).is_err(), "the 2nd fsync fails as pinned");
    assert_eq!(fs.disk().lock().unwrap().io_errors(), &[at]);
    assert!(faults(&fs).iter().any(|f| matches!(f, Fault::FsyncEio { .. })));
    fs.append(p("/d/f"), b"z").unwrap();
    assert!(fs.sync_file(p("/d/f")).is_ok(), "the 3rd does not");
    // The liveness phase disarms every pin, errors included.
    fs.disk().lock().unwrap().pin_error(IoErrorAt { nth: 4, ..at });
    fs.disk().lock().unwrap().clear_pins();
    assert!(fs.sync_file(p("/d/f")).is_ok(), "a cleared pin does not fire");
}

#[test]
fn bit_rot_hits_durable_bytes() {
    let fs = disk(FaultConfig { bit_rot: 1.0, ..FaultConfig::perfect() }, 8);
    durable_file(&fs);
    fs.append(p("/d/f"), &[0u8; 64]).unwrap();
    fs.sync_file(p("/d/f")).unwrap();
    power_fail(&fs);
    let got = fs.read_all(p("/d/f")).unwrap();
    assert_eq!(got.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
}

// ---- Naive writers lose data under this model; careful ones do not. ----

/// Writes a "latest" pointer the naive way: remove, then create (no fsyncs).
fn naive_pointer_update(fs: &NodeFs, value: &[u8]) -> std::io::Result<()> {
    fs.remove_file(p("/d/latest"))?;
    fs.create_new(p("/d/latest"))?;
    fs.append(p("/d/latest"), value)
}

/// The careful way: write a temporary file, fsync it, rename over, fsync the directory.
fn atomic_pointer_update(fs: &NodeFs, value: &[u8]) -> std::io::Result<()> {
    fs.create_new(p("/d/latest.tmp"))?;
    fs.append(p("/d/latest.tmp"), value)?;
    fs.sync_file(p("/d/latest.tmp"))?;
    fs.rename(p("/d/latest.tmp"), p("/d/latest"))?;
    fs.sync_dir(p("/d"))
}

fn pointer_setup(fs: &NodeFs) {
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs.create_new(p("/d/latest")).unwrap();
    fs.append(p("/d/latest"), b"old").unwrap();
    fs.sync_file(p("/d/latest")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
}

#[test]
fn a_naive_pointer_update_can_lose_the_pointer_an_atomic_one_cannot() {
    let mut naive_lost = 0;
    for seed in 0..200 {
        for (naive, ops) in [(true, 3u64), (false, 5)] {
            for crash_at in 1..=ops {
                let fs = disk(FaultConfig::default(), seed * 100 + crash_at);
                pointer_setup(&fs);
                fs.disk().lock().unwrap().set_crash_point(Some(CrashPoint { op: crash_at, before: false }));
                let _ = if naive {
                    naive_pointer_update(&fs, b"new")
                } else {
                    atomic_pointer_update(&fs, b"new")
                };
                power_fail(&fs);
                let value = fs.read_all(p("/d/latest")).ok();
                let ok = matches!(value.as_deref(), Some(b"old") | Some(b"new"));
                if naive && !ok {
                    naive_lost += 1;
                }
                assert!(naive || ok, "atomic update left {value:?} (seed {seed}, crash at {crash_at})");
            }
        }
    }
    assert!(naive_lost > 50, "the naive update must be seen losing the pointer ({naive_lost})");
}

#[test]
fn a_log_without_fsync_loses_acknowledged_records_the_wal_does_not() {
    // Naive: append and "acknowledge" without fsync.
    let mut naive_lost = 0;
    for seed in 0..50 {
        let fs = disk(FaultConfig::default(), seed);
        durable_file(&fs);
        for i in 0..20u8 {
            fs.append(p("/d/f"), &[i; 100]).unwrap();
        }
        power_fail(&fs);
        if fs.read_all(p("/d/f")).unwrap() != (0..20u8).flat_map(|i| [i; 100]).collect::<Vec<_>>() {
            naive_lost += 1;
        }
    }
    assert!(naive_lost > 40, "{naive_lost}");
    // The WAL: every acknowledged record survives any crash point and power failure.
    for seed in 0..300 {
        let node = disk(FaultConfig::default(), seed);
        let d = node.disk().clone();
        let fs: Arc<dyn FileSystem> = Arc::new(node);
        let crash_at = 1 + seed % 60;
        d.lock().unwrap().set_crash_point(Some(CrashPoint { op: crash_at, before: seed % 2 == 0 }));
        let mut acked = 0u64;
        if let Ok((mut wal, _)) = Wal::open(fs.clone(), p("/wal"), WalConfig::segments(600), |_| Ok(())) {
            for batch in 0..10u64 {
                for i in 0..3 {
                    wal.append(1, format!("r{}", batch * 3 + i).as_bytes());
                }
                match wal.commit() {
                    Ok(durable) => acked = durable,
                    Err(_) => break,
                }
            }
        }
        {
            let mut g = d.lock().unwrap();
            g.power_fail();
            g.revive();
        }
        let mut seen = Vec::new();
        let (_, _) = Wal::open(fs.clone(), p("/wal"), WalConfig::segments(600), |e| {
            seen.push(String::from_utf8(e.payload.to_vec()).unwrap());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(seen.len() as u64 >= acked, "seed {seed}: {} recovered < {acked} acknowledged", seen.len());
        for (i, s) in seen.iter().enumerate() {
            assert_eq!(s, &format!("r{i}"), "seed {seed}");
        }
    }
}

#[test]
fn snapshots_survive_a_crash_and_power_failure_at_every_step() {
    use engine::snapshot;
    use std::collections::BTreeMap;
    let dir = p("/data/snapshots");
    let files = |seq: u64| vec![("state.bin".to_string(), vec![seq as u8; 1500])];
    for seed in 0..40u64 {
        for crash_at in 1..=30u64 {
            let node = disk(FaultConfig::default(), seed * 1000 + crash_at);
            let d = node.disk().clone();
            snapshot::write(&node, dir, "svc", 1, BTreeMap::new(), &files(1), 2).unwrap();
            d.lock().unwrap().set_crash_point(Some(CrashPoint { op: crash_at, before: seed % 2 == 1 }));
            let _ = snapshot::write(&node, dir, "svc", 2, BTreeMap::new(), &files(2), 2);
            {
                let mut g = d.lock().unwrap();
                g.power_fail();
                g.revive();
            }
            let loaded = snapshot::load(&node, dir, "svc").unwrap().expect("a snapshot survives");
            assert!(loaded.meta.seq == 1 || loaded.meta.seq == 2, "seed {seed} crash {crash_at}");
            assert_eq!(loaded.files["state.bin"], files(loaded.meta.seq)[0].1);
        }
    }
}

/// A snapshot taken again at a number that has one already (a graceful stop with nothing
/// logged since) must never leave that number without a snapshot: the old one is kept.
/// Replacing it (remove, then rename) lost both to a power failure in between.
#[test]
fn a_snapshot_taken_again_at_its_number_survives_a_power_failure_at_every_step() {
    use engine::snapshot;
    use std::collections::BTreeMap;
    let dir = p("/data/snapshots");
    let files = |v: u8| vec![("state.bin".to_string(), vec![v; 1500])];
    for seed in 0..40u64 {
        for crash_at in 1..=30u64 {
            let node = disk(FaultConfig::default(), seed * 1000 + crash_at);
            let d = node.disk().clone();
            snapshot::write(&node, dir, "svc", 7, BTreeMap::new(), &files(1), 2).unwrap();
            d.lock().unwrap().set_crash_point(Some(CrashPoint { op: crash_at, before: seed % 2 == 1 }));
            let _ = snapshot::write(&node, dir, "svc", 7, BTreeMap::new(), &files(2), 2);
            {
                let mut g = d.lock().unwrap();
                g.power_fail();
                g.revive();
            }
            let loaded = snapshot::load(&node, dir, "svc").unwrap();
            let loaded = loaded.unwrap_or_else(|| panic!("seed {seed} crash {crash_at}: no snapshot left"));
            assert_eq!(loaded.meta.seq, 7);
            assert_eq!(loaded.files["state.bin"], files(1)[0].1, "the first snapshot at 7 is the one kept");
        }
    }
}

#[test]
fn a_scripted_power_failure_resolves_each_pending_item_as_named() {
    use exsim_sim::fs::{Fate, Fill, PendingKind};
    let fs = disk(FaultConfig::default(), 3);
    durable_file(&fs);
    fs.write_at(p("/d/f"), 0, &[1u8; 2 * SECTOR as usize]).unwrap();
    fs.create_new(p("/d/g")).unwrap();
    let items = fs.disk().lock().unwrap().pending_items();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(items[0].kind, PendingKind::Entry { .. }), "directories first (lower inode): {items:?}");
    assert_eq!(items[1].kind, PendingKind::Write { offset: 0, len: 2 * SECTOR, sectors: 2 });
    let settled = fs.disk().lock().unwrap().settled();
    assert!(!settled, "pending state is not settled");
    let resolved = |fates: [Fate; 2]| {
        let mut d = fs.disk().lock().unwrap().snapshot_copy();
        d.power_fail_scripted(&|i| fates[i]);
        d.revive();
        assert!(d.settled());
        (d.peek(p("/d/f")).unwrap(), d.peek(p("/d/g")).is_some())
    };
    let (bytes, g) = resolved([Fate::Keep, Fate::Keep]);
    assert_eq!((bytes, g), (vec![1u8; 2 * SECTOR as usize], true));
    let (bytes, g) = resolved([Fate::Lose, Fate::Lose]);
    assert_eq!((bytes, g), (Vec::new(), false));
    let (bytes, _) = resolved([Fate::Keep, Fate::Tear { sectors: 1, fill: Fill::Zeros }]);
    assert_eq!(&bytes[..SECTOR as usize], &[1u8; SECTOR as usize][..]);
    assert!(bytes[SECTOR as usize..].iter().all(|b| *b == 0), "the second sector is zeros");
    let (bytes, _) = resolved([Fate::Keep, Fate::Tear { sectors: 0, fill: Fill::Garbage }]);
    assert!(
        bytes.iter().filter(|b| **b == 1).count() < 16,
        "no new sector landed (garbage may hold a 1 here and there)"
    );
    assert!(bytes.iter().any(|b| *b != 0), "garbage, not zeros");
    // Equal contents, equal fingerprints; different contents, different ones.
    let a = fs.disk().lock().unwrap().snapshot_copy();
    assert_eq!(a.fingerprint(), fs.disk().lock().unwrap().fingerprint());
    fs.write_at(p("/d/f"), 0, &[2]).unwrap();
    assert_ne!(a.fingerprint(), fs.disk().lock().unwrap().fingerprint());
}

#[test]
fn a_failed_fsync_leaves_the_disk_unsettled_and_crash_points_carry_their_phase() {
    use exsim_sim::fs::{CrashTarget, OpKind, Phase};
    let fs = disk(FaultConfig::perfect(), 4);
    durable_file(&fs);
    fs.write_at(p("/d/f"), 0, b"abc").unwrap();
    fs.disk().lock().unwrap().fail_fsync(p("/d/f"));
    assert!(!fs.disk().lock().unwrap().settled(), "cached but not durable");
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), b"abc");
    // A crash point aimed at the first rename of a snapshot directory.
    fs.create_dir_all(p("/s/snapshots/.tmp-00000000000000000001")).unwrap();
    let target = CrashTarget { kind: Some(OpKind::Rename), phase: Some(Phase::SnapshotRename) };
    fs.disk().lock().unwrap().set_crash_point_on(target, CrashPoint { op: 1, before: true });
    fs.write_at(p("/d/f"), 0, b"x").unwrap();
    let renamed = fs
        .rename(p("/s/snapshots/.tmp-00000000000000000001"), p("/s/snapshots/snapshot-00000000000000000001"));
    assert!(renamed.is_err(), "the crash point fired at the rename");
    assert!(faults(&fs).iter().any(|f| matches!(
        f,
        Fault::CrashPoint { kind: OpKind::Rename, phase: Phase::SnapshotRename, before: true, .. }
    )));
}

/// A disk with a durable segment `/d/wal-0001.log` holding one sector, two pending
/// three-sector writes after it, and a pending create of `/d/wal-0002.log`.
fn pending_segment(config: FaultConfig, seed: u64) -> (NodeFs, Vec<u8>) {
    let fs = disk(config, seed);
    fs.create_dir_all(p("/d")).unwrap();
    fs.sync_dir(p("/")).unwrap();
    fs.create_new(p("/d/wal-0001.log")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    fs.append(p("/d/wal-0001.log"), &[1u8; SECTOR as usize]).unwrap();
    fs.sync_file(p("/d/wal-0001.log")).unwrap();
    let new: Vec<u8> = (0..6 * SECTOR).map(|i| (i % 251) as u8).collect();
    fs.append(p("/d/wal-0001.log"), &new[..3 * SECTOR as usize]).unwrap();
    fs.append(p("/d/wal-0001.log"), &new[3 * SECTOR as usize..]).unwrap();
    fs.create_new(p("/d/wal-0002.log")).unwrap();
    (fs, new)
}

/// Pins a power failure with `fates` named at the disk's 2nd fsync, fires it (the next
/// fsync), and brings the disk back.
fn named_power_failure(fs: &NodeFs, fates: Vec<PendingFate>) {
    {
        let mut d = fs.disk().lock().unwrap();
        let phase = d.last_op().unwrap().phase;
        let pin = PinnedCrash {
            kind: OpKind::Fsync,
            phase,
            nth: 2,
            before: true,
            death: Death::PowerFailure,
            id: 1,
        };
        d.pin_crash(pin);
        d.pin_fates(1, fates);
    }
    assert!(fs.sync_file(p("/d/wal-0001.log")).is_err(), "the pin fires at the 2nd fsync");
    let mut d = fs.disk().lock().unwrap();
    assert_eq!(d.take_fired_pin(), Some(1));
    assert_eq!(d.kill(), Some(Death::PowerFailure));
    d.revive();
}

#[test]
fn drawn_power_failure_fates_are_recorded_by_stable_names_and_replay_when_named() {
    // Draw: every write torn or lost, every entry operation rolled back.
    let harsh =
        FaultConfig { lose_write: 0.3, tear_write: 0.7, persist_entry_op: 0.0, ..FaultConfig::perfect() };
    let (drawn_fs, _) = pending_segment(harsh, 5);
    let drawn = {
        let mut d = drawn_fs.disk().lock().unwrap();
        d.power_fail();
        d.revive();
        d.drawn_fates().to_vec()
    };
    let segment: Vec<&PendingFate> = drawn.iter().filter(|f| f.node == "/d/wal-#.log").collect();
    assert_eq!(segment.len(), 2, "both pending writes of the segment are named: {drawn:?}");
    // Ranked among the names the directory shows before the power failure: the pending
    // create of wal-0002 is the newest, so this segment is the second newest.
    assert!(segment.iter().all(|f| f.newest == 1), "ranked newest first: {drawn:?}");
    let mut items: Vec<usize> = segment.iter().map(|f| f.item).collect();
    items.sort_unstable();
    assert_eq!(items, vec![0, 1], "items counted from the newest");
    assert!(
        drawn.iter().any(|f| f.node == "/d link wal-#.log" && f.fate == ItemFate::Lose),
        "the rolled-back create is named by its directory and masked name: {drawn:?}"
    );
    let want = drawn_fs.read_all(p("/d/wal-0001.log")).unwrap();
    assert!(!drawn_fs.exists(p("/d/wal-0002.log")).unwrap());

    // Replay on a disk without fault rates: a pinned crash whose power failure is named.
    let (named_fs, new) = pending_segment(FaultConfig::perfect(), 99);
    named_power_failure(&named_fs, drawn.clone());
    assert_eq!(
        named_fs.disk().lock().unwrap().drawn_fates(),
        drawn.as_slice(),
        "the named fates are what happened"
    );
    assert_eq!(named_fs.read_all(p("/d/wal-0001.log")).unwrap().len(), want.len());
    // Garbage sectors replay as a fixed pattern, not the drawn random bytes: compare the rest.
    let got = named_fs.read_all(p("/d/wal-0001.log")).unwrap();
    let sector = SECTOR as usize;
    for s in 0..got.len() / sector {
        let (a, b) = (&got[s * sector..(s + 1) * sector], &want[s * sector..(s + 1) * sector]);
        let known = |x: &[u8]| {
            x == &[1u8; 512][..]
                || x.iter().all(|v| *v == 0)
                || (s >= 1 && x == &new[(s - 1) * sector..s * sector])
        };
        assert!(a == b || (!known(a) && !known(b)), "sector {s} replays as drawn");
    }
    assert!(!named_fs.exists(p("/d/wal-0002.log")).unwrap(), "the create rolls back as named");
    // Named with nothing: every pending item is kept.
    let (kept_fs, new) = pending_segment(FaultConfig::perfect(), 3);
    named_power_failure(&kept_fs, Vec::new());
    let mut all = vec![1u8; SECTOR as usize];
    all.extend_from_slice(&new);
    assert_eq!(kept_fs.read_all(p("/d/wal-0001.log")).unwrap(), all);
    assert!(kept_fs.exists(p("/d/wal-0002.log")).unwrap());
}

/// The disk's record for the hygiene rules outlives the files: the furthest offset each
/// file was appended at stays after the file is removed (writes at an offset are not
/// appends), and a snapshot's pruning is interrupted by an error or a death between its
/// rename into place and the directory fsync after a removal, not after it.
#[test]
fn appends_and_interrupted_prunings_are_recorded() {
    let fs = disk(FaultConfig::perfect(), 1);
    fs.create_dir_all(p("/d/snapshots/.tmp-1")).unwrap();
    fs.create_new(p("/d/seg")).unwrap();
    fs.append(p("/d/seg"), &[1; 100]).unwrap();
    fs.append(p("/d/seg"), &[2; 50]).unwrap();
    fs.write_at(p("/d/seg"), 4000, &[3; 10]).unwrap();
    fs.remove_file(p("/d/seg")).unwrap();
    // A snapshot put in place, pruned (a removal, then the directory fsync): complete.
    fs.rename(p("/d/snapshots/.tmp-1"), p("/d/snapshots/snapshot-1")).unwrap();
    fs.create_dir_all(p("/d/snapshots/snapshot-0")).unwrap();
    fs.remove_dir_all(p("/d/snapshots/snapshot-0")).unwrap();
    fs.sync_dir(p("/d/snapshots")).unwrap();
    // The next one put in place, and the node dies before its pruning.
    fs.create_dir_all(p("/d/snapshots/.tmp-2")).unwrap();
    fs.rename(p("/d/snapshots/.tmp-2"), p("/d/snapshots/snapshot-2")).unwrap();
    fs.sync_dir(p("/d/snapshots")).unwrap();
    let mut d = fs.disk().lock().unwrap();
    assert_eq!(d.prunes_interrupted(p("/d")), vec![]);
    d.kill();
    assert_eq!(d.furthest_appends(p("/d")), vec![(p("/d/seg").to_path_buf(), 100)]);
    assert_eq!(d.prunes_interrupted(p("/d")), vec![(p("/d/snapshots").to_path_buf(), 1)]);
}

/// A write that fails with EIO keeps the whole pages it copied before its last (pending,
/// lost at a power failure like any write); one inside a page keeps nothing.
#[test]
fn a_failed_write_keeps_the_whole_pages_before_its_last() {
    let fs = disk(FaultConfig { eio_write: 1.0, lose_write: 1.0, ..FaultConfig::perfect() }, 1);
    fs.create_dir_all(p("/d")).unwrap();
    fs.create_new(p("/d/f")).unwrap();
    fs.sync_dir(p("/d")).unwrap();
    assert!(fs.append(p("/d/f"), &[1; 100]).is_err(), "inside one page");
    assert_eq!(fs.len(p("/d/f")).unwrap(), 0);
    assert!(fs.append(p("/d/f"), &[2; 9000]).is_err(), "across two page boundaries");
    assert_eq!(fs.read_all(p("/d/f")).unwrap(), vec![2; 8192], "the two whole pages stay");
    let partial = faults(&fs).iter().any(|f| matches!(f, Fault::PartialWrite { written: 8192, .. }));
    assert!(partial, "{:?}", faults(&fs));
    power_fail(&fs);
    assert_eq!(fs.len(p("/d/f")).unwrap(), 0, "pending, and this power failure loses every pending write");
}
