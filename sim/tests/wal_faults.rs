//! The WAL against the faults the landed harness could not produce: a process crash after
//! an fsync error (the page cache still shows records that never reached the disk), and
//! media damage to the newest segment's header. Each test failed on the code before its fix.

use engine::storage::FileSystem;
use engine::wal::{Wal, WalConfig, WalError};
use exsim_sim::fs::{Death, Disk, FaultConfig, NodeFs};
use exsim_sim::seed::{Stream, rng};
use std::path::Path;
use std::sync::{Arc, Mutex};

fn disk(config: FaultConfig, seed: u64) -> NodeFs {
    NodeFs::detached(Arc::new(Mutex::new(Disk::new(config, rng(seed, Stream::Disk)))))
}

/// Kills the node with `death` and brings it back.
fn die(fs: &NodeFs, death: Death) {
    let mut d = fs.disk().lock().unwrap();
    d.set_next_death(death);
    assert_eq!(d.kill(), Some(death));
    d.revive();
}

fn set_eio_fsync(fs: &NodeFs, p: f64) {
    let mut d = fs.disk().lock().unwrap();
    d.set_config(FaultConfig { eio_fsync: p, ..FaultConfig::default() });
}

/// Every entry's payload, in order, after opening the WAL in `/wal`.
fn open_entries(fs: &NodeFs) -> Result<(Wal, Vec<Vec<u8>>), WalError> {
    let mut entries = Vec::new();
    let (wal, _) = Wal::open(Arc::new(fs.clone()), Path::new("/wal"), WalConfig::segments(1 << 20), |e| {
        entries.push(e.payload.to_vec());
        Ok(())
    })?;
    Ok((wal, entries))
}

fn commit(wal: &mut Wal, payload: &[u8]) -> Result<u64, WalError> {
    wal.append(1, payload);
    wal.commit()
}

/// The landed engine's data loss: an fsync fails (the dropped pages stay readable), the
/// service stops and restarts as a process, reopens its WAL, reads the records back through
/// the cache, fsyncs (Ok: nothing is dirty) and serves them as durable. It goes on
/// committing; a power failure then takes the records the cache had shown, and the WAL has
/// a hole in the middle (a sequence gap) or silently lacks committed entries.
#[test]
fn records_seen_after_an_fsync_error_and_a_process_crash_survive_a_power_failure() {
    for seed in 0..20 {
        let fs = disk(FaultConfig::default(), seed);
        let (mut wal, _) = open_entries(&fs).unwrap();
        commit(&mut wal, b"one").unwrap();
        set_eio_fsync(&fs, 1.0);
        assert!(commit(&mut wal, b"two").is_err(), "the injected fsync error reaches the WAL");
        assert!(wal.is_poisoned());
        set_eio_fsync(&fs, 0.0);
        drop(wal);
        die(&fs, Death::ProcessCrash);

        // The restarted process sees "two" in the cache and treats it as durable.
        let (mut wal, entries) = open_entries(&fs).unwrap();
        assert_eq!(entries, [b"one".to_vec(), b"two".to_vec()], "seed {seed}");
        assert_eq!(wal.durable_seq(), 2);
        commit(&mut wal, b"three").unwrap();
        drop(wal);
        die(&fs, Death::PowerFailure);

        let (wal, entries) = open_entries(&fs)
            .unwrap_or_else(|e| panic!("seed {seed}: the WAL does not open after a power failure: {e}"));
        assert_eq!(
            entries,
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()],
            "seed {seed}: entries the WAL declared durable were lost"
        );
        assert_eq!(wal.durable_seq(), 3);
    }
}

/// A process crash alone loses nothing: the page cache survives.
#[test]
fn a_process_crash_keeps_unsynced_writes_readable_and_pending() {
    let fs = disk(FaultConfig { lose_write: 1.0, tear_write: 0.0, ..FaultConfig::default() }, 1);
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.create_new(Path::new("/d/f")).unwrap();
    fs.append(Path::new("/d/f"), b"unsynced").unwrap();
    die(&fs, Death::ProcessCrash);
    assert_eq!(fs.read_all(Path::new("/d/f")).unwrap(), b"unsynced");
    // ... and a later power failure still resolves them (here: the write and the file's
    // directory entries are lost or rolled back).
    die(&fs, Death::PowerFailure);
    let survived = fs.read_all(Path::new("/d/f")).map(|b| b.is_empty()).unwrap_or(true);
    assert!(survived, "an unsynced write survived a power failure with lose_write = 1");
}

/// A kill of a node already dead (and not revived) changes nothing.
#[test]
fn a_second_kill_before_revival_is_a_no_op() {
    let fs = disk(FaultConfig::default(), 1);
    let mut d = fs.disk().lock().unwrap();
    d.set_next_death(Death::ProcessCrash);
    assert_eq!(d.kill(), Some(Death::ProcessCrash));
    assert_eq!(d.kill(), None);
    d.revive();
    assert_eq!(d.kill(), Some(Death::PowerFailure), "the death kind is consumed by the kill");
}

/// The landed engine removed a newest segment whose header did not decode, "because it was
/// being created" — even one holding fsynced, acknowledged records behind a damaged header.
#[test]
fn a_damaged_header_in_front_of_records_is_refused_not_removed() {
    let fs = disk(FaultConfig::default(), 3);
    let (mut wal, _) = open_entries(&fs).unwrap();
    for i in 0..5u8 {
        commit(&mut wal, &[i; 40]).unwrap();
    }
    let segment = Path::new("/wal").join(engine::wal::format::segment_name(wal.epoch(), 1));
    drop(wal);
    // One flipped bit in the magic, durably (media damage at rest).
    let mut header = fs.read_at(&segment, 0, 1).unwrap();
    header[0] ^= 0x01;
    fs.write_at(&segment, 0, &header).unwrap();
    fs.sync_file(&segment).unwrap();
    die(&fs, Death::PowerFailure);

    match open_entries(&fs) {
        Err(WalError::Corrupt { path, offset, .. }) => {
            assert_eq!((path, offset), (segment.clone(), 0), "the error names the file and offset")
        }
        Err(other) => panic!("expected a corruption error, got {other}"),
        Ok((_, entries)) => panic!("opened without the damaged segment's records: {} entries", entries.len()),
    }
    assert!(fs.exists(&segment).unwrap(), "the damaged segment is kept for inspection");
}

/// A newest segment no longer than its header, with a bad header, was being created: it is
/// removed and the WAL opens.
#[test]
fn a_headerless_segment_being_created_is_removed() {
    let fs = disk(FaultConfig::default(), 4);
    let (mut wal, _) = open_entries(&fs).unwrap();
    commit(&mut wal, b"kept").unwrap();
    drop(wal);
    let partial = Path::new("/wal").join(engine::wal::format::segment_name(9, 2));
    fs.create_new(&partial).unwrap();
    fs.append(&partial, &[0u8; 10]).unwrap();
    fs.sync_file(&partial).unwrap();
    fs.sync_dir(Path::new("/wal")).unwrap();
    let (wal, entries) = open_entries(&fs).unwrap();
    assert_eq!(entries, [b"kept".to_vec()]);
    assert_eq!(wal.durable_seq(), 1);
    assert!(!fs.exists(&partial).unwrap());
}

/// A seal that only the page cache holds: the process dies just before the seal's fsync,
/// restarts (the cache still shows the new seal) and later loses power, which brings back
/// the old seal. The entry the lost seal named was durable and may have been acknowledged
/// to a retry; damage to it later must be refused, not cut like a torn write.
#[test]
fn a_seal_only_the_cache_holds_is_written_again_on_open() {
    // Unsynced writes are always lost at a power failure here.
    let fs = disk(FaultConfig { lose_write: 1.0, tear_write: 0.0, ..FaultConfig::default() }, 5);
    let (mut wal, _) = open_entries(&fs).unwrap();
    commit(&mut wal, b"one").unwrap();
    // The next commit: append, fsync, seal write, seal fsync (the 4th operation).
    fs.disk().lock().unwrap().set_crash_point(Some(exsim_sim::fs::CrashPoint { op: 4, before: true }));
    assert!(commit(&mut wal, b"two").is_err(), "the crash point fires at the seal's fsync");
    drop(wal);
    die(&fs, Death::ProcessCrash);
    let (wal, entries) = open_entries(&fs).unwrap();
    assert_eq!(entries.len(), 2);
    drop(wal);
    die(&fs, Death::PowerFailure);
    // Bit rot in entry 2's payload, at rest.
    let segment = Path::new("/wal").join(engine::wal::format::segment_name(1, 1));
    let len = fs.len(&segment).unwrap();
    let mut byte = fs.read_at(&segment, len - 6, 1).unwrap();
    byte[0] ^= 0x10;
    fs.write_at(&segment, len - 6, &byte).unwrap();
    fs.sync_file(&segment).unwrap();
    match open_entries(&fs) {
        Err(WalError::Corrupt { seq, .. }) => assert_eq!(seq, 2),
        Err(other) => panic!("expected corruption of entry 2, got {other}"),
        Ok((_, entries)) => panic!("opened with {} entries: the vouched entry 2 was cut", entries.len()),
    }
}
