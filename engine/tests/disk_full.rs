//! A full disk: writes fail with `Error::StorageFull` naming a file, the store
//! stays open and readable, nothing acknowledged is lost, and writes succeed
//! again once space is freed. Run twice: on `SimVfs` with a byte capacity, and
//! on a real tmpfs of 4 MiB mounted by the test (which needs root; without it,
//! or if the mount fails, the test fails rather than skip).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::{Db, Error, Options, SimVfs, SyncPolicy, WriteBatch};

mod common;
use common::cred;

/// Writes one batch of two random, incompressible values; returns the outcome.
fn write_one(
    db: &Db,
    rng: &mut StdRng,
    n: u64,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), Error> {
    let mut batch = WriteBatch::new();
    let mut ops = Vec::new();
    for half in 0..2 {
        let key = format!("k{n:06}-{half}").into_bytes();
        let mut value = vec![0u8; 700];
        rng.fill(&mut value[..]);
        batch.put(&key, &value);
        ops.push((key, value));
    }
    db.write(batch)?;
    model.extend(ops);
    Ok(())
}

/// Writes until the disk is full; returns the error seen. Every acknowledged
/// write is in `model`.
fn fill(
    db: &Db,
    rng: &mut StdRng,
    next: &mut u64,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) -> Error {
    for _ in 0..100_000 {
        *next += 1;
        if let Err(e) = write_one(db, rng, *next, model) {
            return e;
        }
    }
    panic!("the disk never filled up after 100000 batches");
}

fn check_all(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, ctx: &str) {
    for (k, v) in model {
        let got = db
            .get(k)
            .unwrap_or_else(|e| panic!("{ctx}: get {} failed: {e}", String::from_utf8_lossy(k)));
        assert_eq!(
            got.as_ref(),
            Some(v),
            "{ctx}: acknowledged key {} lost",
            String::from_utf8_lossy(k)
        );
    }
}

/// Retries writes for a while after space was freed: a flush that failed on the
/// full disk is retried by the background thread after a short back-off.
fn write_after_freeing(
    db: &Db,
    rng: &mut StdRng,
    next: &mut u64,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
) {
    let mut last = None;
    for _ in 0..100 {
        *next += 1;
        match write_one(db, rng, *next, model) {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) if e.is_storage_full() => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("write after freeing space failed with a non-retryable error: {e}"),
        }
    }
    assert!(
        last.is_none(),
        "writes still fail after space was freed: {last:?}"
    );
    for _ in 0..50 {
        *next += 1;
        write_one(db, rng, *next, model)
            .unwrap_or_else(|e| panic!("write after freeing space: {e}"));
    }
}

fn assert_storage_full(e: &Error, ctx: &str) {
    match e {
        Error::StorageFull { file } => {
            assert!(!file.is_empty(), "{ctx}: StorageFull names no file");
            let message = e.to_string();
            assert!(
                message.contains("storage full") && message.contains(file.as_str()),
                "{ctx}: unclear message: {message}"
            );
        }
        other => panic!("{ctx}: expected StorageFull, got {other:?}"),
    }
}

fn sim_run(background: bool, seed: u64) {
    let ctx = format!("SimVfs capacity (background {background}, seed {seed})");
    let sim = SimVfs::with_seed(seed);
    let dir = Path::new("/store");
    let options = Options::tiny_for_tests()
        .with_vfs(sim.clone())
        .with_sync(SyncPolicy::EveryCommit)
        .with_background_compaction(background)
        .with_memtable_size_bytes(16 << 10);
    let db = Db::create(dir, &cred(), options.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = BTreeMap::new();
    let mut next = 0;
    for round in 0..3 {
        sim.set_capacity_bytes(Some(sim.total_live_bytes() + 60_000 + round * 10_000));
        let e = fill(&db, &mut rng, &mut next, &mut model);
        println!("{ctx} round {round}: {e}");
        assert_storage_full(&e, &ctx);
        // Still open and readable, and writes keep failing cleanly while full.
        check_all(&db, &model, &ctx);
        next += 1;
        if let Err(e) = write_one(&db, &mut rng, next, &mut model) {
            assert!(
                e.is_storage_full(),
                "{ctx}: second write on a full disk: {e}"
            );
        }
        sim.set_capacity_bytes(None);
        write_after_freeing(&db, &mut rng, &mut next, &mut model);
        check_all(&db, &model, &ctx);
    }
    db.flush().unwrap();
    db.close().unwrap();
    // Power loss right after close must not lose anything either.
    sim.crash();
    let db = Db::open(dir, &cred(), options.clone()).unwrap();
    check_all(&db, &model, &format!("{ctx}, after crash and reopen"));
    let live = db.scan_prefix(b"k").unwrap().count();
    assert_eq!(
        live,
        model.len(),
        "{ctx}: extra or missing keys after reopen"
    );
    db.close().unwrap();
    let report = Db::verify(
        dir,
        &cred(),
        options
            .with_read_only(true),
    )
    .unwrap();
    assert!(report.is_ok(), "{ctx}: verify: {:?}", report.damaged);
}

#[test]
fn sim_capacity_full_disk_keeps_store_open_and_recovers_background_off() {
    for seed in 0..3 {
        sim_run(false, seed);
    }
}

#[test]
fn sim_capacity_full_disk_keeps_store_open_and_recovers_background_on() {
    for seed in 0..3 {
        sim_run(true, seed);
    }
}

/// Unmounts the tmpfs when the test ends, pass or fail.
struct Mount {
    dir: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Mount {
    // SAFETY: geteuid has no preconditions and only reads the process's credentials.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the tmpfs disk-full test must run as root to mount a small tmpfs (euid is {euid}); run it as root, e.g. in the CI container"
    );
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
    assert!(
        status.success(),
        "mount -t tmpfs -o size={size} tmpfs {} failed ({status})",
        dir.display()
    );
    Mount {
        dir: dir.to_path_buf(),
    }
}

#[test]
fn tmpfs_full_disk_keeps_store_open_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let mount = mount_tmpfs(base.path(), "4m");
    let dir = mount.dir.join("store");
    // Ballast that is removed to free space once the disk is full.
    let ballast = mount.dir.join("ballast");
    std::fs::write(&ballast, vec![0x5au8; 1 << 20]).unwrap();
    let options = Options::tiny_for_tests()
        .with_sync(SyncPolicy::EveryCommit)
        .with_memtable_size_bytes(64 << 10);
    let db = Db::create(&dir, &cred(), options.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut model = BTreeMap::new();
    let mut next = 0;
    let e = fill(&db, &mut rng, &mut next, &mut model);
    println!("tmpfs: full after {} keys: {e}", model.len());
    assert_storage_full(&e, "tmpfs");
    assert!(
        model.len() > 100,
        "the disk filled after only {} keys",
        model.len()
    );
    check_all(&db, &model, "tmpfs, disk full");
    // Reads in key order still work too.
    assert_eq!(
        db.scan_prefix(b"k").unwrap().filter(|r| r.is_ok()).count(),
        model.len()
    );
    std::fs::remove_file(&ballast).unwrap();
    write_after_freeing(&db, &mut rng, &mut next, &mut model);
    check_all(&db, &model, "tmpfs, after freeing space");
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options.clone()).unwrap();
    check_all(&db, &model, "tmpfs, after reopen");
    db.close().unwrap();
    let report = Db::verify(
        &dir,
        &cred(),
        options
            .with_read_only(true),
    )
    .unwrap();
    assert!(report.is_ok(), "tmpfs: verify: {:?}", report.damaged);
    drop(mount);
}

/// After a full disk made the store move to a fresh WAL segment, the segment
/// it left ends in a torn tail (here: the start of a frame header, as a write
/// cut short leaves it). That segment is not the last one, and recovery and
/// `verify` must still treat its tail as torn, not as damage.
#[test]
fn torn_tail_in_a_segment_that_is_not_the_last_is_accepted() {
    use synapsed_storage::Vfs;
    let sim = SimVfs::with_seed(11);
    let dir = Path::new("/torn");
    let options = Options::tiny_for_tests()
        .with_vfs(sim.clone())
        .with_sync(SyncPolicy::EveryCommit)
        .with_background_compaction(false)
        // Larger than the segment's first preallocation (1 MiB), so the segment
        // fills up before the memtable does.
        .with_memtable_size_bytes(4 << 20);
    let db = Db::create(dir, &cred(), options.clone()).unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let mut model = BTreeMap::new();
    let mut next = 0;
    for _ in 0..5 {
        next += 1;
        write_one(&db, &mut rng, next, &mut model).unwrap();
    }
    let segments = |sim: &SimVfs| -> Vec<PathBuf> {
        sim.list_files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect()
    };
    let before = segments(&sim);
    assert_eq!(before.len(), 1);
    sim.set_capacity_bytes(Some(sim.total_live_bytes() + 100));
    // The segment's preallocated space takes writes until it is used up.
    assert_storage_full(&fill(&db, &mut rng, &mut next, &mut model), "torn");
    sim.set_capacity_bytes(None);
    for _ in 0..5 {
        next += 1;
        write_one(&db, &mut rng, next, &mut model).unwrap();
    }
    let after = segments(&sim);
    assert_eq!(
        after.len(),
        2,
        "the write after the full disk did not roll the segment: {after:?}"
    );
    drop(db);
    // Leave the first segment ending in 7 bytes of a frame header.
    let old = &before[0];
    let mut bytes = sim.read_live(old).unwrap();
    bytes.extend_from_slice(&[0xAB; 7]);
    let file = sim.create(old).unwrap();
    file.append(&bytes).unwrap();
    file.sync().unwrap();
    sim.sync_dir(dir).unwrap();

    let report = Db::verify(
        dir,
        &cred(),
        options.clone()
            .with_read_only(true),
    )
    .unwrap();
    assert!(
        report.is_ok(),
        "a torn tail in an earlier segment was reported as damage: {:?}",
        report.damaged
    );
    let name = old.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report.torn_tails.iter().any(|(f, _)| *f == name),
        "torn tail not noted: {report:?}"
    );
    let db = Db::open(dir, &cred(), options).unwrap();
    check_all(&db, &model, "torn tail in an earlier segment");
    db.close().unwrap();
}
