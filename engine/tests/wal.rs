//! WAL behaviour on the in-memory test filesystem and on the real disk: restart and
//! append, every kind of torn tail, corruption and gaps refused with file/offset/seq,
//! rotation and retention, replay, fsync errors, crashes after every operation, and no
//! panic on arbitrary bytes.

use exsim_engine::storage::{FileSystem, MemFs, StdFs};
use exsim_engine::wal::format::{self, Record, SegmentHeader};
use exsim_engine::wal::{Wal, WalConfig, WalError};
use proptest::prelude::*;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn payload(seq: u64) -> Vec<u8> {
    format!("entry-{seq}-{}", "x".repeat((seq % 7) as usize)).into_bytes()
}

/// An opened WAL, the entries it replayed, and its recovery report.
type Opened = (Wal, Vec<(u64, Vec<u8>)>, exsim_engine::wal::Recovery);

fn open(fs: &Arc<dyn FileSystem>, dir: &Path, config: WalConfig) -> Result<Opened, WalError> {
    let mut seen = Vec::new();
    let (wal, rec) = Wal::open(fs.clone(), dir, config, |e| {
        seen.push((e.seq, e.payload.to_vec()));
        Ok(())
    })?;
    Ok((wal, seen, rec))
}

/// Appends entries `from..=to` with their canonical payloads in one commit.
fn write_batch(wal: &mut Wal, from: u64, to: u64) {
    for seq in from..=to {
        assert_eq!(wal.append(1, &payload(seq)), seq);
    }
    assert_eq!(wal.commit().unwrap(), to);
}

fn assert_prefix(seen: &[(u64, Vec<u8>)], n: u64) {
    assert_eq!(seen.len() as u64, n, "recovered entries");
    for (i, (seq, p)) in seen.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(*p, payload(*seq));
    }
}

fn mem() -> Arc<dyn FileSystem> {
    Arc::new(MemFs::new())
}

fn dir() -> PathBuf {
    PathBuf::from("/data/ubscore/wal")
}

/// The newest segment file.
fn last_segment(fs: &Arc<dyn FileSystem>, dir: &Path) -> PathBuf {
    let names = fs.list_dir(dir).unwrap();
    let mut segs: Vec<_> =
        names.iter().filter_map(|n| format::parse_segment_name(n).map(|(e, s)| (s, e, n.clone()))).collect();
    segs.sort();
    dir.join(&segs.last().unwrap().2)
}

/// The segment holding entries (the newest one with records).
fn segment_with_records(fs: &Arc<dyn FileSystem>, dir: &Path) -> PathBuf {
    let mut names: Vec<_> = fs.list_dir(dir).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    names.sort();
    names
        .into_iter()
        .map(|n| dir.join(n))
        .rfind(|p| fs.len(p).unwrap() > format::SEGMENT_HEADER as u64)
        .unwrap()
}

/// Appends records `from..=to` to the newest segment holding records as one group write
/// that never finished: no seal follows (the crash came before its fsync returned), so
/// nothing in it was acknowledged. Their `durable` field says `from - 1` was durable.
fn write_unsealed_batch(fs: &Arc<dyn FileSystem>, from: u64, to: u64) {
    let path = segment_with_records(fs, &dir());
    let header = SegmentHeader::decode(&fs.read_all(&path).unwrap()).unwrap();
    let mut buf = Vec::new();
    for seq in from..=to {
        let p = payload(seq);
        Record { kind: 1, epoch: header.epoch, seq, durable: from - 1, payload: &p }.encode_into(&mut buf);
    }
    fs.append(&path, &buf).unwrap();
}

#[test]
fn restart_continues_after_the_durable_prefix() {
    let fs = mem();
    let (mut wal, seen, rec) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert!(seen.is_empty() && rec.last_seq == 0);
    write_batch(&mut wal, 1, 10);
    wal.append(1, b"never committed");
    drop(wal);
    let (mut wal, seen, rec) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert_prefix(&seen, 10);
    assert_eq!((rec.last_seq, rec.truncated), (10, None));
    assert_eq!(wal.next_seq(), 11);
    write_batch(&mut wal, 11, 15);
    drop(wal);
    let (wal, seen, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert_prefix(&seen, 15);
    assert_eq!(wal.epoch(), 3, "one epoch per opening");
}

#[test]
fn every_torn_tail_recovers_the_durable_prefix() {
    // A commit of 1..=10, then a group write of 11..=20 that never got its seal (its
    // records say 10 was durable).
    type Tear = fn(&mut Vec<u8>, usize);
    let tears: [(&str, Tear); 7] = [
        ("cut in the last record's header", |b, last| b.truncate(last + 10)),
        ("cut in the last record's payload", |b, last| b.truncate(last + format::RECORD_HEADER + 2)),
        ("cut just before the CRC end", |b, _| b.truncate(b.len() - 1)),
        ("zeros after the valid prefix", |b, _| b.extend_from_slice(&[0u8; 700])),
        ("garbage after the valid prefix", |b, _| b.extend((0..700u32).map(|i| (i * 151 % 251) as u8))),
        ("last record's payload overwritten", |b, last| b[last + format::RECORD_HEADER] ^= 0xFF),
        ("last record zeroed", |b, last| b[last..].iter_mut().for_each(|x| *x = 0)),
    ];
    for (name, tear) in tears {
        let fs = mem();
        let (mut wal, _, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
        write_batch(&mut wal, 1, 10);
        drop(wal);
        write_unsealed_batch(&fs, 11, 20);
        let path = segment_with_records(&fs, &dir());
        let mut bytes = fs.read_all(&path).unwrap();
        let last_record = bytes.len() - (format::RECORD_OVERHEAD + payload(20).len());
        let original = bytes.len();
        tear(&mut bytes, last_record);
        fs.remove_file(&path).unwrap();
        fs.create_new(&path).unwrap();
        fs.append(&path, &bytes).unwrap();
        let (wal, seen, rec) =
            open(&fs, &dir(), WalConfig::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kept = if bytes.len() > original { 20 } else { 19 };
        assert_prefix(&seen, kept);
        assert_eq!(wal.next_seq(), kept + 1, "{name}");
        assert_eq!(
            rec.truncated.is_some(),
            bytes.len() != original || name.contains("overwritten") || name.contains("zeroed"),
            "{name}"
        );
        // The repaired WAL reopens cleanly, with nothing left to cut.
        drop(wal);
        let (_, seen, rec) = open(&fs, &dir(), WalConfig::default()).unwrap();
        assert_prefix(&seen, kept);
        assert_eq!(rec.truncated, None, "{name}");
    }
}

#[test]
fn damage_to_the_last_unproven_batch_is_a_torn_tail() {
    // Records 11..=20 were written in one batch when only 10 was durable: damage at 15
    // with intact 16..=20 is what a torn group write looks like, so 15.. is cut.
    let fs = mem();
    let (mut wal, _, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    write_batch(&mut wal, 1, 10);
    drop(wal);
    write_unsealed_batch(&fs, 11, 20);
    let path = segment_with_records(&fs, &dir());
    let offset = record_offset(&fs.read_all(&path).unwrap(), 15);
    fs.write_at(&path, offset as u64 + 30, b"\xFF").unwrap();
    let (_, seen, rec) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert_prefix(&seen, 14);
    assert_eq!(rec.truncated.as_ref().map(|t| t.1), Some(offset as u64));
}

#[test]
fn damage_to_the_last_committed_batch_is_refused_not_cut() {
    // 11..=20 were committed: their seal vouches for them, so damage at 15 (or at 20, the
    // very last entry) is corruption of acknowledged data, not a torn write.
    for damaged in [15, 20] {
        let (fs, path) = two_committed_batches();
        let offset = record_offset(&fs.read_all(&path).unwrap(), damaged);
        fs.write_at(&path, offset as u64 + 30, b"\xFF").unwrap();
        match open(&fs, &dir(), WalConfig::default()) {
            Err(WalError::Corrupt { path: p, offset: o, seq, .. }) => {
                assert_eq!((p, o, seq), (path.clone(), offset as u64, damaged), "names file, offset and seq")
            }
            Err(other) => panic!("entry {damaged}: expected corruption, got {other}"),
            Ok((_, seen, _)) => {
                panic!("entry {damaged}: opened with {} entries, cutting committed ones", seen.len())
            }
        }
    }
}

#[test]
fn a_damaged_seal_loses_nothing() {
    let fs = mem();
    let (mut wal, _, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    write_batch(&mut wal, 1, 10);
    drop(wal);
    let seal = dir().join(format::SEAL_FILE);
    let (sealed, slot) = format::read_seal(&fs.read_all(&seal).unwrap()).unwrap();
    assert_eq!(sealed, 10);
    // Damage the newest slot (inside its CRC): the older slot still vouches for less.
    fs.write_at(&seal, format::SEAL_SLOTS[slot] + 14, b"\xAB").unwrap();
    assert!(format::read_seal(&fs.read_all(&seal).unwrap()).is_some_and(|(s, _)| s < 10));
    let (wal, seen, rec) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert_prefix(&seen, 10);
    assert_eq!(rec.truncated, None);
    assert_eq!(
        format::read_seal(&fs.read_all(&seal).unwrap()).map(|(s, _)| s),
        Some(10),
        "sealed anew on open"
    );
    drop(wal);
}

#[test]
fn a_tail_lost_with_everything_after_it_is_refused_by_the_seal() {
    // Entries 11..=20 and anything that could vouch for them inside the segment are gone
    // (a lost or misdirected write at rest): only the seal, in its own file, remembers.
    let (fs, path) = two_committed_batches();
    let offset = record_offset(&fs.read_all(&path).unwrap(), 11);
    let len = fs.len(&path).unwrap();
    fs.write_at(&path, offset as u64, &vec![0u8; (len - offset as u64) as usize]).unwrap();
    match open(&fs, &dir(), WalConfig::default()) {
        Err(WalError::Corrupt { path: p, seq, reason, .. }) => {
            assert_eq!((p, seq), (path, 11), "{reason}");
            assert!(reason.contains("up to 20"), "{reason}");
        }
        Err(other) => panic!("expected corruption, got {other}"),
        Ok((_, seen, _)) => panic!("opened with {} entries: acknowledged entries cut silently", seen.len()),
    }
}

/// A WAL with two committed (sealed) batches, 1..=10 and 11..=20, and its segment.
fn two_committed_batches() -> (Arc<dyn FileSystem>, PathBuf) {
    let fs = mem();
    let (mut wal, _, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    write_batch(&mut wal, 1, 10);
    write_batch(&mut wal, 11, 20);
    drop(wal);
    let path = segment_with_records(&fs, &dir());
    (fs, path)
}

fn record_offset(bytes: &[u8], seq: u64) -> usize {
    let mut pos = format::SEGMENT_HEADER;
    loop {
        let r = format::decode_record(&bytes[pos..]).expect("valid records up to seq");
        if r.seq == seq {
            return pos;
        }
        pos += r.size();
    }
}

#[test]
fn corruption_of_durable_data_is_refused_with_file_offset_and_seq() {
    let (fs, path) = two_committed_batches();
    let offset = record_offset(&fs.read_all(&path).unwrap(), 5);
    fs.write_at(&path, offset as u64 + format::RECORD_HEADER as u64, b"\x00\x00").unwrap();
    let err = open(&fs, &dir(), WalConfig::default()).unwrap_err();
    match &err {
        WalError::Corrupt { path: p, offset: o, seq, .. } => {
            assert_eq!((p, *o, *seq), (&path, offset as u64, 5));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string())
            && text.contains(&format!("offset {offset}"))
            && text.contains("seq 5"),
        "{text}"
    );
    // Refusing changed nothing: the data is still there for an operator to inspect.
    assert!(fs.len(&path).unwrap() > offset as u64 + 100);
}

#[test]
fn a_sequence_gap_is_refused() {
    let fs = mem();
    let d = dir();
    fs.create_dir_all(&d).unwrap();
    let path = d.join(format::segment_name(1, 1));
    let mut bytes = SegmentHeader { epoch: 1, first_seq: 1, prev_records: 0 }.encode().to_vec();
    for seq in [1u64, 2, 4] {
        Record { kind: 1, epoch: 1, seq, durable: 0, payload: b"p" }.encode_into(&mut bytes);
    }
    fs.create_new(&path).unwrap();
    fs.append(&path, &bytes).unwrap();
    match open(&fs, &d, WalConfig::default()).unwrap_err() {
        WalError::Gap { expected: 3, found: 4, path: p, .. } => assert_eq!(p, path),
        other => panic!("expected a gap, got {other}"),
    }
}

#[test]
fn damage_in_a_sealed_segment_is_corruption_and_segments_must_be_contiguous() {
    let fs = mem();
    let config = WalConfig::segments(300);
    let (mut wal, _, _) = open(&fs, &dir(), config).unwrap();
    for seq in 1..=30 {
        write_batch(&mut wal, seq, seq);
    }
    assert!(wal.segment_count() > 3);
    drop(wal);
    let mut names: Vec<_> = fs
        .list_dir(&dir())
        .unwrap()
        .into_iter()
        .filter(|n| format::parse_segment_name(n).is_some())
        .collect();
    names.sort_by_key(|n| format::parse_segment_name(n).map(|(e, s)| (s, e)));
    let first = dir().join(&names[0]);
    let len = fs.len(&first).unwrap();
    fs.write_at(&first, len - 2, b"\x00\x00").unwrap();
    assert!(matches!(open(&fs, &dir(), config).unwrap_err(), WalError::Corrupt { .. }));
    // Removing a middle segment leaves a hole in the sequence.
    let fs = mem();
    let (mut wal, _, _) = open(&fs, &dir(), config).unwrap();
    for seq in 1..=30 {
        write_batch(&mut wal, seq, seq);
    }
    drop(wal);
    let mut names: Vec<_> = fs
        .list_dir(&dir())
        .unwrap()
        .into_iter()
        .filter(|n| format::parse_segment_name(n).is_some())
        .collect();
    names.sort_by_key(|n| format::parse_segment_name(n).map(|(e, s)| (s, e)));
    fs.remove_file(&dir().join(&names[1])).unwrap();
    assert!(matches!(open(&fs, &dir(), config).unwrap_err(), WalError::Gap { .. }));
}

#[test]
fn rotation_retention_and_replay() {
    // Without the in-memory tail cache, so that every read goes to the segments.
    rotation_retention_and_replay_with(WalConfig { segment_bytes: 256, tail_cache_bytes: 0 });
}

#[test]
fn the_tail_cache_serves_exactly_what_the_disk_does() {
    rotation_retention_and_replay_with(WalConfig { segment_bytes: 256, tail_cache_bytes: 300 });
    rotation_retention_and_replay_with(WalConfig { segment_bytes: 256, tail_cache_bytes: 1 << 20 });
}

fn rotation_retention_and_replay_with(config: WalConfig) {
    let fs = mem();
    let (mut wal, _, _) = open(&fs, &dir(), config).unwrap();
    for seq in (1..=100).step_by(5) {
        write_batch(&mut wal, seq, seq + 4);
    }
    let segments = wal.segment_count();
    assert!(segments >= 10, "{segments} segments");
    let collect = |wal: &Wal, from, to| {
        let mut out = Vec::new();
        wal.replay(from, to, |e| {
            out.push(e.seq);
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    };
    assert_eq!(collect(&wal, 1, None), (1..=100).collect::<Vec<_>>());
    assert_eq!(collect(&wal, 37, Some(52)), (37..=52).collect::<Vec<_>>());
    // Early stop.
    let mut n = 0;
    wal.replay(10, None, |_| {
        n += 1;
        if n == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .unwrap();
    assert_eq!(n, 3);
    // Only durable entries are served.
    wal.append(1, &payload(101));
    assert_eq!(collect(&wal, 95, None), (95..=100).collect::<Vec<_>>());
    wal.commit().unwrap();
    assert_eq!(collect(&wal, 95, None), (95..=101).collect::<Vec<_>>());
    // Retention drops only whole segments below the kept point.
    let removed = wal.retain_from(60).unwrap();
    assert!(removed > 0);
    assert!(wal.first_seq() <= 60 && wal.first_seq() > 1);
    let first = wal.first_seq();
    assert_eq!(collect(&wal, 1, None), (first..=101).collect::<Vec<_>>());
    drop(wal);
    let (wal, seen, _) = open(&fs, &dir(), config).unwrap();
    assert_eq!(seen.first().map(|s| s.0), Some(first));
    assert_eq!(seen.last().map(|s| s.0), Some(101));
    assert_eq!(wal.next_seq(), 102);
}

#[test]
fn a_failed_fsync_poisons_the_wal_and_recovery_goes_through_disk() {
    let memfs = Arc::new(MemFs::new());
    let fs: Arc<dyn FileSystem> = memfs.clone();
    let (mut wal, _, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    write_batch(&mut wal, 1, 3);
    wal.append(1, &payload(4));
    memfs.crash_after(2); // the append of the batch succeeds, its fsync fails
    assert!(matches!(wal.commit(), Err(WalError::Io { op: "sync", .. })));
    assert!(wal.is_poisoned());
    memfs.revive();
    assert!(matches!(wal.commit(), Err(WalError::Poisoned)), "never retry an fsync");
    assert_eq!(wal.durable_seq(), 3);
    drop(wal);
    let (_, seen, _) = open(&fs, &dir(), WalConfig::default()).unwrap();
    assert!(seen.len() >= 3, "acknowledged entries survive");
}

#[test]
fn a_crash_after_any_operation_keeps_every_acknowledged_entry() {
    let config = WalConfig::segments(200);
    // Count the operations of a full run first.
    let total = {
        let memfs = Arc::new(MemFs::new());
        let fs: Arc<dyn FileSystem> = memfs.clone();
        let (mut wal, _, _) = open(&fs, &dir(), config).unwrap();
        for seq in 1..=12 {
            write_batch(&mut wal, seq, seq);
        }
        memfs.ops()
    };
    for k in 1..=total {
        let memfs = Arc::new(MemFs::new());
        let fs: Arc<dyn FileSystem> = memfs.clone();
        memfs.crash_after(k);
        let mut acked = 0;
        if let Ok((mut wal, _, _)) = open(&fs, &dir(), config) {
            for seq in 1..=12 {
                wal.append(1, &payload(seq));
                match wal.commit() {
                    Ok(d) => acked = d,
                    Err(_) => break,
                }
            }
        }
        memfs.revive();
        let (mut wal, seen, _) = open(&fs, &dir(), config).unwrap_or_else(|e| panic!("crash at op {k}: {e}"));
        assert!(
            seen.len() as u64 >= acked,
            "crash at op {k}: {} recovered < {acked} acknowledged",
            seen.len()
        );
        assert_prefix(&seen, seen.len() as u64);
        // And the WAL goes on from there.
        let next = wal.next_seq();
        write_batch(&mut wal, next, next + 1);
    }
}

#[test]
fn garbage_after_a_sealed_segment_is_corruption_on_the_real_disk_too() {
    let tmp = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(StdFs::new());
    let d = tmp.path().join("wal");
    let (mut wal, _, _) = open(&fs, &d, WalConfig::segments(1024)).unwrap();
    for seq in (1..=100).step_by(10) {
        write_batch(&mut wal, seq, seq + 9);
    }
    wal.rotate().unwrap();
    let sealed = segment_with_records(&fs, &d);
    assert_ne!(sealed, last_segment(&fs, &d), "rotation sealed the segment");
    drop(wal);
    fs.append(&sealed, &[0xAB; 77]).unwrap();
    assert!(matches!(open(&fs, &d, WalConfig::default()), Err(WalError::Corrupt { .. })));
}

#[test]
fn the_real_disk_behaves_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(StdFs::new());
    let d = tmp.path().join("wal");
    let (mut wal, _, _) = open(&fs, &d, WalConfig::segments(4096)).unwrap();
    for seq in (1..=500).step_by(50) {
        write_batch(&mut wal, seq, seq + 49);
    }
    drop(wal);
    // Tear the tail with garbage, as a crash mid-write would.
    // (Only the newest segment can have a torn tail; here it may be a fresh, empty one.)
    fs.append(&last_segment(&fs, &d), &[0xAB; 77]).unwrap();
    let (mut wal, seen, rec) = open(&fs, &d, WalConfig::segments(4096)).unwrap();
    assert_prefix(&seen, 500);
    assert_eq!(rec.truncated.as_ref().map(|t| t.2), Some(77));
    write_batch(&mut wal, 501, 510);
    drop(wal);
    let (_, seen, _) = open(&fs, &d, WalConfig::default()).unwrap();
    assert_prefix(&seen, 510);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes as the newest segment: opening returns Ok or an error, never panics.
    #[test]
    fn opening_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        valid_header in any::<bool>(),
    ) {
        let fs = mem();
        let d = dir();
        fs.create_dir_all(&d).unwrap();
        let path = d.join(format::segment_name(1, 1));
        let mut content = if valid_header { SegmentHeader { epoch: 1, first_seq: 1, prev_records: 0 }.encode().to_vec() } else { Vec::new() };
        content.extend_from_slice(&bytes);
        fs.create_new(&path).unwrap();
        fs.append(&path, &content).unwrap();
        let _ = open(&fs, &d, WalConfig::default());
    }

    /// Arbitrary damage to a valid WAL: never a panic, and when it opens, what it yields
    /// is a prefix of what was written.
    #[test]
    fn damaged_wals_never_panic_and_yield_a_prefix(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (fs, path) = two_committed_batches();
        let mut bytes = fs.read_all(&path).unwrap();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        fs.remove_file(&path).unwrap();
        fs.create_new(&path).unwrap();
        fs.append(&path, &bytes).unwrap();
        if let Ok((_, seen, _)) = open(&fs, &dir(), WalConfig::default()) {
            for (i, (seq, p)) in seen.iter().enumerate() {
                prop_assert_eq!(*seq, i as u64 + 1);
                prop_assert_eq!(p, &payload(*seq));
            }
        }
    }
}

/// A log of 100 single-entry commits in 256-byte segments (about twenty of them).
fn hundred_commits_in_small_segments() -> (Arc<dyn FileSystem>, WalConfig) {
    let fs = mem();
    let config = WalConfig { segment_bytes: 256, tail_cache_bytes: 0 };
    let (mut wal, _, _) = open(&fs, &dir(), config).unwrap();
    for seq in 1..=100 {
        write_batch(&mut wal, seq, seq);
    }
    (fs, config)
}

#[test]
fn open_from_skips_older_segments_on_their_headers_refuses_a_hole_and_finds_damage_on_read() {
    let (fs, config) = hundred_commits_in_small_segments();
    let open_from = |skip_below: u64| {
        let mut seen = Vec::new();
        Wal::open_from(fs.clone(), &dir(), config, skip_below, |e| {
            seen.push(e.seq);
            Ok(())
        })
        .map(|(wal, _)| (wal, seen))
    };
    let (wal, seen) = open_from(60).unwrap();
    assert_eq!(wal.next_seq(), 101);
    assert_eq!(wal.scrub().expect("an intact log scrubs clean"), 100);
    drop(wal);
    assert!(seen.first().is_some_and(|s| *s > 1 && *s <= 60), "older segments skipped: {:?}", seen.first());
    assert_eq!(seen.last(), Some(&100));
    // A sealed segment in the middle of the skipped part goes missing: a hole, refused.
    let mut segs: Vec<_> = fs.list_dir(&dir()).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    segs.sort();
    let middle = dir().join(&segs[2]);
    let saved = fs.read_all(&middle).unwrap();
    fs.remove_file(&middle).unwrap();
    assert!(matches!(open_from(60), Err(WalError::Gap { .. })), "a hole below the skip point");
    // Put back with a flipped byte in its last record: open need not read it, but a
    // replay that does refuses it.
    let mut bad = saved.clone();
    let at = bad.len() - 2;
    bad[at] ^= 0x40;
    fs.create_new(&middle).unwrap();
    fs.append(&middle, &bad).unwrap();
    let (wal, _) = open_from(60).expect("the headers chain");
    let mut replayed = Vec::new();
    let read = wal.replay(1, None, |e| {
        replayed.push(e.seq);
        ControlFlow::Continue(())
    });
    assert!(matches!(read, Err(WalError::Corrupt { .. })), "damage found on read: {read:?}");
    assert!(replayed.last().is_some_and(|s| *s < 60), "nothing served past the damage");
    assert!(matches!(wal.scrub(), Err(WalError::Corrupt { .. })), "a scrub finds it too");
    drop(wal);
    // A full open reads every segment and refuses the damage at once.
    assert!(matches!(open(&fs, &dir(), config), Err(WalError::Corrupt { .. })));
}

#[test]
fn a_sealed_segment_cut_short_below_the_skip_point_is_a_gap_when_read() {
    let (fs, config) = hundred_commits_in_small_segments();
    // A middle segment loses all but its first record; its successor's header still
    // counts them all, so recovery (which does not read it) cannot tell.
    let mut segs: Vec<_> = fs.list_dir(&dir()).unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    segs.sort();
    let middle = dir().join(&segs[2]);
    let bytes = fs.read_all(&middle).unwrap();
    let first = format::decode_record(&bytes[format::SEGMENT_HEADER..]).expect("a first record");
    let keep = format::SEGMENT_HEADER + first.size();
    assert!(keep < bytes.len(), "the segment held more than one record");
    fs.remove_file(&middle).unwrap();
    fs.create_new(&middle).unwrap();
    fs.append(&middle, &bytes[..keep]).unwrap();
    let (wal, _) = Wal::open_from(fs.clone(), &dir(), config, 60, |_| Ok(())).expect("the headers chain");
    let read = wal.replay(1, None, |_| ControlFlow::Continue(()));
    assert!(matches!(read, Err(WalError::Gap { .. })), "a replay across it: {read:?}");
    assert!(matches!(wal.scrub(), Err(WalError::Gap { .. })), "a scrub");
}

#[test]
fn an_empty_segment_is_read_not_skipped_so_a_hole_after_it_is_refused() {
    // Segments as retention and a rolled-back unlink can leave them: an empty segment of
    // epoch 1 at 11 (its successor, epoch 2 at 11 with ten records, is gone), then epoch 2
    // at 21 whose header counts ten records before it, then the newest at 31.
    let fs = mem();
    fs.create_dir_all(&dir()).unwrap();
    let segment = |epoch: u32, first: u64, prev_records: u32, records: u64| {
        let mut bytes = SegmentHeader { epoch, first_seq: first, prev_records }.encode().to_vec();
        for seq in first..first + records {
            let p = payload(seq);
            Record { kind: 1, epoch, seq, durable: seq - 1, payload: &p }.encode_into(&mut bytes);
        }
        let path = dir().join(format::segment_name(epoch, first));
        fs.create_new(&path).unwrap();
        fs.append(&path, &bytes).unwrap();
    };
    segment(1, 11, 0, 0);
    segment(2, 21, 10, 10);
    segment(2, 31, 10, 5);
    let opened =
        Wal::open_from(fs.clone(), &dir(), WalConfig { segment_bytes: 256, tail_cache_bytes: 0 }, 35, |_| {
            Ok(())
        });
    assert!(matches!(opened, Err(WalError::Gap { .. })), "records 11..=20 are missing: {:?}", opened.err());
}
