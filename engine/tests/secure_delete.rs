//! Secure deletion: after `secure_delete`, the value is gone through every API;
//! every file that existed before and is gone afterwards was overwritten before
//! it was unlinked (a wrapper `Vfs` records both); and copies of those files,
//! kept beforehand, can no longer be decrypted with any key left in the store.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use synapsed_storage::vfs::{ForwardingVfs, WritableFile};
use synapsed_storage::{Credential, Db, Error, Options, SimVfs, StdVfs, Vfs, WriteBatch};

const PASSPHRASE: &str = "secure delete passphrase";
const SECRET: &[u8] = b"the-secret-value-4f1c9e";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Overwrite(String),
    Remove(String),
}

/// The real file system, recording every overwrite and removal by file name.
#[derive(Debug, Default)]
struct RecordingVfs {
    inner: StdVfs,
    events: Mutex<Vec<Event>>,
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

impl ForwardingVfs for RecordingVfs {
    fn inner(&self) -> &dyn Vfs {
        &self.inner
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.events.lock().push(Event::Overwrite(name_of(path)));
        self.inner.open_for_overwrite(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.events.lock().push(Event::Remove(name_of(path)));
        self.inner.remove_file(path)
    }
}

fn options(vfs: &Arc<RecordingVfs>, passes: u32) -> Options {
    Options::tiny_for_tests()
        .with_vfs(vfs.clone())
        .with_background_compaction(false)
        .with_secure_delete_passes(passes)
}

fn filler(i: usize) -> Vec<u8> {
    format!("filler {i} {}", "f".repeat(i % 40)).into_bytes()
}

/// A store where the secret has several versions spread over the WAL, level 0
/// and deeper levels.
fn store_with_secret(dir: &Path, opts: Options) -> Db {
    let db = Db::create(dir, &Credential::passphrase(PASSPHRASE), opts).unwrap();
    db.put(b"victim", &[SECRET, b"-v1"].concat()).unwrap();
    for i in 0..300 {
        db.put(format!("k/{i:04}").as_bytes(), &filler(i)).unwrap();
    }
    db.compact_range(None, None).unwrap();
    db.put(b"victim", &[SECRET, b"-v2"].concat()).unwrap();
    for i in 300..400 {
        db.put(format!("k/{i:04}").as_bytes(), &filler(i)).unwrap();
    }
    db.flush().unwrap();
    db.put(b"victim", &[SECRET, b"-v3"].concat()).unwrap();
    let stats = db.stats();
    assert!(
        stats.files_per_level[0] > 0 && stats.files_per_level[1..].iter().sum::<usize>() > 0,
        "{stats:?}"
    );
    db
}

fn snapshot_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn is_data_file(bytes: &[u8]) -> bool {
    bytes.len() >= 84 && bytes.starts_with(b"SYNAPSED")
}

fn epoch_of(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[12..16].try_into().unwrap())
}

fn assert_gone_everywhere(db: &Db) {
    assert_eq!(db.get(b"victim").unwrap(), None);
    let all: Vec<(Vec<u8>, Vec<u8>)> = db
        .range(Bound::Unbounded, Bound::Unbounded, false, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(all
        .iter()
        .all(|(k, v)| k != b"victim" && !v.windows(SECRET.len()).any(|w| w == SECRET)));
    let rev: Vec<(Vec<u8>, Vec<u8>)> = db
        .range(Bound::Unbounded, Bound::Unbounded, true, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rev.len(), all.len());
    assert!(db.scan_prefix(b"vic").unwrap().next().is_none());
    let snap = db.snapshot();
    assert_eq!(db.get_at(b"victim", &snap).unwrap(), None);
    let mut txn = db.transaction();
    assert_eq!(txn.get(b"victim").unwrap(), None);
}

fn check_secure_delete(passes: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let vfs = Arc::new(RecordingVfs::default());
    let db = store_with_secret(&dir, options(&vfs, passes));
    let before = snapshot_files(&dir);
    let old_epochs: BTreeSet<u32> = before
        .values()
        .filter(|b| is_data_file(b))
        .map(|b| epoch_of(b))
        .collect();
    vfs.events.lock().clear();

    let report = db.secure_delete(b"victim").unwrap();
    assert_eq!(report.keys_deleted, 1);
    assert_eq!(report.overwrite_passes, passes.max(1));
    assert_gone_everywhere(&db);
    for i in 0..400 {
        assert_eq!(
            db.get(format!("k/{i:04}").as_bytes()).unwrap(),
            Some(filler(i)),
            "other keys stay"
        );
    }

    // Every old file that is gone was overwritten (each pass) before it was removed.
    let after = snapshot_files(&dir);
    let events = vfs.events.lock().clone();
    let mut gone = 0;
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        gone += 1;
        let overwrites: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| **e == Event::Overwrite(name.clone()))
            .map(|(i, _)| i)
            .collect();
        let removal = events
            .iter()
            .position(|e| *e == Event::Remove(name.clone()))
            .unwrap_or_else(|| panic!("{name} vanished unseen"));
        assert_eq!(overwrites.len(), passes.max(1) as usize, "{name}: {events:?}");
        assert!(
            overwrites.iter().all(|&i| i < removal),
            "{name} overwritten before unlink"
        );
    }
    assert!(gone >= 3, "WAL, tables and manifest were retired: {gone}");
    assert_eq!(report.files_removed.len(), gone);
    // No old data file survives under its name: all were rewritten under new names.
    for (name, bytes) in &before {
        if is_data_file(bytes) {
            assert!(!after.contains_key(name), "{name} survived");
        }
    }

    // Copies kept beforehand: no key left in the store opens them.
    let live = db.stats().live_epochs;
    assert!(
        old_epochs.iter().all(|e| !live.contains(e)),
        "old epochs {old_epochs:?}, live {live:?}"
    );
    db.close().unwrap();
    let copy = tmp.path().join("old-copy");
    std::fs::create_dir_all(&copy).unwrap();
    for (name, bytes) in &before {
        if name != "LOCK" && name != "KEYRING" {
            std::fs::write(copy.join(name), bytes).unwrap();
        }
    }
    std::fs::write(copy.join("KEYRING"), &after["KEYRING"]).unwrap();
    match Db::open(
        &copy,
        &Credential::passphrase(PASSPHRASE),
        Options::tiny_for_tests()
            .with_read_only(true),
    ) {
        Err(Error::MissingEpoch { .. }) => {}
        // The new KEYRING does not pair with the old KEYSLOTS either.
        Err(Error::Corruption { file, .. }) if file == "KEYRING" => {}
        other => panic!("the old files opened with the store's keys: {other:?}"),
    }
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options(&vfs, passes)).unwrap();
    assert_gone_everywhere(&db);
    db.close().unwrap();
    for (name, bytes) in snapshot_files(&dir) {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET),
            "{name} holds the plaintext"
        );
    }
}

#[test]
fn secure_delete_overwrites_and_shreds_with_the_default_passes() {
    check_secure_delete(0);
}

#[test]
fn secure_delete_honours_configured_passes() {
    check_secure_delete(3);
}

#[test]
fn live_snapshots_and_transactions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let vfs = Arc::new(RecordingVfs::default());
    let db = store_with_secret(&dir, options(&vfs, 0));
    let snap = db.snapshot();
    let err = db.secure_delete(b"victim").unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(_)) && err.to_string().contains("snapshot"),
        "{err}"
    );
    assert!(db.get(b"victim").unwrap().is_some(), "nothing was written");
    // A snapshot that does not see the key is no obstacle.
    assert!(db.secure_delete(b"never-written").is_ok());
    drop(snap);
    let mut txn = db.transaction();
    txn.get(b"k/0001").unwrap();
    assert!(db.secure_delete(b"victim").is_err());
    drop(txn);
    db.secure_delete(b"victim").unwrap();
    assert_gone_everywhere(&db);
    db.close().unwrap();
}

#[test]
fn secure_delete_prefix_removes_every_key_under_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("store");
    let vfs = Arc::new(RecordingVfs::default());
    let db = store_with_secret(&dir, options(&vfs, 0));
    let mut batch = WriteBatch::new();
    for i in 0..600 {
        batch.put(format!("p/{i:04}").as_bytes(), SECRET);
    }
    db.write(batch).unwrap();
    db.flush().unwrap();
    let report = db.secure_delete_prefix(b"p/").unwrap();
    assert_eq!(report.keys_deleted, 600);
    assert!(db.scan_prefix(b"p/").unwrap().next().is_none());
    assert!(db.get(b"victim").unwrap().is_some(), "keys outside the prefix stay");
    assert_eq!(db.scan_prefix(b"k/").unwrap().count(), 400);
    db.close().unwrap();
}

/// Power fails at every sync of a secure deletion in turn: the store reopens
/// with every other key, and running the deletion again completes it.
#[test]
fn a_crash_at_any_sync_of_a_secure_delete_is_recoverable() {
    let dir = PathBuf::from("/store");
    let cred = Credential::passphrase(PASSPHRASE);
    for n in 0..2_000 {
        let sim = SimVfs::new();
        let opts = Options::tiny_for_tests()
            .with_vfs(sim.clone())
            .with_background_compaction(false);
        let db = store_with_secret(&dir, opts.clone());
        sim.fail_sync_after(n);
        let result = db.secure_delete(b"victim");
        drop(db);
        sim.crash();
        sim.clear_faults();
        let db = Db::open(&dir, &cred, opts).unwrap_or_else(|e| panic!("crash after {n} syncs: {e}"));
        for i in 0..400 {
            assert_eq!(
                db.get(format!("k/{i:04}").as_bytes()).unwrap(),
                Some(filler(i)),
                "crash after {n} syncs"
            );
        }
        if result.is_ok() {
            assert_gone_everywhere(&db);
        }
        db.secure_delete(b"victim").unwrap();
        assert_gone_everywhere(&db);
        assert_eq!(db.stats().live_epochs.len(), 1);
        db.close().unwrap();
        if result.is_ok() {
            assert!(n >= 10, "a secure delete makes many syncs; only {n} were crashed at");
            return;
        }
    }
    panic!("the secure delete never got through");
}
