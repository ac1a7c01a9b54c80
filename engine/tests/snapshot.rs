//! Snapshots: round trip, pruning, a crash after every single step of creation, fallback
//! past damaged snapshots, and no panic on arbitrary bytes.

use exsim_engine::snapshot::{self, Loaded};
use exsim_engine::storage::{FileSystem, MemFs, StdFs};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    PathBuf::from("/data/matching/snapshots")
}

fn files(seq: u64) -> Vec<(String, Vec<u8>)> {
    vec![
        ("book-0.bin".to_string(), format!("book zero at {seq}").repeat(50).into_bytes()),
        ("book-1.bin".to_string(), vec![seq as u8; 3000]),
    ]
}

fn fields(seq: u64) -> BTreeMap<String, u64> {
    BTreeMap::from([("last_ubs_seq".to_string(), seq * 10)])
}

fn take(fs: &dyn FileSystem, seq: u64, keep: usize) {
    snapshot::write(fs, &dir(), "matching", seq, fields(seq), &files(seq), keep).unwrap();
}

fn check(loaded: &Loaded, seq: u64) {
    assert_eq!(loaded.meta.seq, seq);
    assert_eq!(loaded.meta.fields, fields(seq));
    let want: BTreeMap<_, _> = files(seq).into_iter().collect();
    assert_eq!(loaded.files, want);
}

#[test]
fn round_trip_pointer_and_pruning() {
    let fs = MemFs::new();
    assert_eq!(snapshot::load(&fs, &dir(), "matching").unwrap(), None);
    for seq in [100, 200, 300] {
        take(&fs, seq, 2);
    }
    check(&snapshot::load(&fs, &dir(), "matching").unwrap().unwrap(), 300);
    let names = fs.list_dir(&dir()).unwrap();
    assert_eq!(
        names,
        vec![snapshot::LATEST.to_string(), snapshot::snapshot_name(200), snapshot::snapshot_name(300)]
    );
    assert_eq!(fs.read_all(&dir().join(snapshot::LATEST)).unwrap(), snapshot::snapshot_name(300).as_bytes());
    // Another service's snapshot is not ours.
    assert_eq!(snapshot::load(&fs, &dir(), "ubscore").unwrap(), None);
}

#[test]
fn a_crash_after_any_step_of_creation_leaves_a_loadable_snapshot() {
    // Count the operations of one snapshot creation after a first snapshot.
    let ops = {
        let fs = MemFs::new();
        take(&fs, 100, 2);
        let before = fs.ops();
        take(&fs, 200, 2);
        fs.ops() - before
    };
    assert!(ops > 15, "creation has many steps ({ops})");
    let mut new_seen = false;
    for k in 1..=ops {
        let fs = MemFs::new();
        take(&fs, 100, 1);
        fs.crash_after(k);
        let crashed = snapshot::write(&fs, &dir(), "matching", 200, fields(200), &files(200), 1).is_err();
        assert!(crashed || k == ops, "op {k} of {ops} should have crashed the writer");
        fs.revive();
        let loaded = snapshot::load(&fs, &dir(), "matching").unwrap().expect("a snapshot survives any crash");
        // Either the old or the new snapshot, whole.
        if loaded.meta.seq == 200 {
            check(&loaded, 200);
            new_seen = true;
        } else {
            check(&loaded, 100);
        }
        let names = fs.list_dir(&dir()).unwrap();
        assert!(
            names.iter().all(|n| !n.starts_with(".tmp-") && !n.ends_with(".tmp")),
            "leftovers removed: {names:?}"
        );
        // The next snapshot after the crash works.
        take(&fs, 300, 1);
        check(&snapshot::load(&fs, &dir(), "matching").unwrap().unwrap(), 300);
    }
    assert!(new_seen, "crashes late in creation keep the new snapshot");
}

fn corrupt(fs: &dyn FileSystem, path: &Path) {
    let mut bytes = fs.read_all(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x55;
    fs.remove_file(path).unwrap();
    fs.create_new(path).unwrap();
    fs.append(path, &bytes).unwrap();
}

#[test]
fn damaged_newest_snapshots_fall_back_to_the_previous_one() {
    type Damage = fn(&dyn FileSystem, &Path);
    let damages: [(&str, Damage); 5] = [
        ("state file bit flip", |fs, d| corrupt(fs, &d.join("book-1.bin"))),
        ("state file missing", |fs, d| fs.remove_file(&d.join("book-0.bin")).unwrap()),
        ("COMPLETE missing", |fs, d| fs.remove_file(&d.join(snapshot::COMPLETE)).unwrap()),
        ("metadata damaged", |fs, d| corrupt(fs, &d.join(snapshot::METADATA))),
        ("state file truncated", |fs, d| fs.truncate(&d.join("book-0.bin"), 10).unwrap()),
    ];
    for (name, damage) in damages {
        let fs = MemFs::new();
        take(&fs, 100, 3);
        take(&fs, 200, 3);
        damage(&fs, &dir().join(snapshot::snapshot_name(200)));
        let loaded =
            snapshot::load(&fs, &dir(), "matching").unwrap().unwrap_or_else(|| panic!("{name}: none"));
        check(&loaded, 100);
        assert_eq!(loaded.skipped, vec![snapshot::snapshot_name(200)], "{name}");
        // When every snapshot is damaged there is none, and the caller starts empty.
        damage(&fs, &dir().join(snapshot::snapshot_name(100)));
        assert_eq!(snapshot::load(&fs, &dir(), "matching").unwrap(), None, "{name}");
    }
}

#[test]
fn the_real_disk_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = StdFs::new();
    let d = tmp.path().join("snapshots");
    for seq in [1, 2, 3] {
        snapshot::write(&fs, &d, "settlement", seq, fields(seq), &files(seq), 2).unwrap();
    }
    let loaded = snapshot::load(&fs, &d, "settlement").unwrap().unwrap();
    assert_eq!(loaded.meta.seq, 3);
    assert_eq!(fs.list_dir(&d).unwrap().len(), 3, "two snapshots and the pointer");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes in any snapshot file: loading never panics; it returns the older
    /// snapshot or this one only if it still verifies.
    #[test]
    fn loading_arbitrary_bytes_never_panics(
        which in 0..4usize,
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let fs = MemFs::new();
        take(&fs, 100, 3);
        take(&fs, 200, 3);
        let d = dir().join(snapshot::snapshot_name(200));
        let name = ["book-0.bin", "book-1.bin", snapshot::METADATA, snapshot::COMPLETE][which];
        fs.remove_file(&d.join(name)).unwrap();
        fs.create_new(&d.join(name)).unwrap();
        fs.append(&d.join(name), &bytes).unwrap();
        let loaded = snapshot::load(&fs, &dir(), "matching").unwrap().unwrap();
        prop_assert_eq!(loaded.meta.seq, 100);
    }
}
