//! Key rotation and secure deletion cover blob files: a rotation re-seals
//! every blob file's live frames under the new data-key epoch and destroys the
//! old epoch; a secure deletion of a blob removes (overwritten) every file
//! that held its chunks, keeps the chunks other blobs share, and shreds the
//! epochs its bytes were sealed under.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{blob_files, random};
use synapsed_storage::Db;

/// Blob `key` read whole (it must exist).
fn read_all(db: &Db, key: &[u8]) -> Vec<u8> {
    common::read_blob(db, key).expect("the blob exists")
}

#[test]
fn key_rotation_moves_blob_files_to_the_new_epoch_and_destroys_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let a = random(5 << 20, 1);
    db.blobs().unwrap().put(b"a", &mut &a[..]).unwrap();
    let before = blob_files(dir.path());
    let old_epoch = db.stats().current_epoch;
    let report = db.rotate_keys().unwrap();
    assert!(report.epochs_destroyed.contains(&old_epoch), "{report:?}");
    assert!(report.epochs_retained.is_empty(), "{report:?}");
    let after = blob_files(dir.path());
    assert!(before.iter().all(|f| !after.contains(f)), "{before:?} -> {after:?}");
    let stats = db.stats();
    assert_eq!(stats.files_per_epoch.len(), 1, "{:?}", stats.files_per_epoch);
    assert_eq!(stats.files_per_epoch[0].epoch, stats.current_epoch);
    assert!(stats.files_per_epoch[0].files.iter().any(|f| f.ends_with(".blob")));
    assert_eq!(read_all(&db, b"a"), a);
    db.close().unwrap();
    assert!(Db::verify(dir.path(), &common::cred(), common::options()).unwrap().is_ok());
}

#[test]
fn secure_delete_of_a_blob_removes_its_files_and_keeps_what_others_share() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let shared = random(3 << 20, 2);
    let secret = random(4 << 20, 3);
    let mut both = shared.clone();
    both.extend_from_slice(&secret);
    db.blobs().unwrap().put(b"secret", &mut &both[..]).unwrap();
    db.blobs().unwrap().put(b"other", &mut &shared[..]).unwrap();
    let old_files = blob_files(dir.path());
    let old_epoch = db.stats().current_epoch;

    let (existed, report) = db.blobs().unwrap().secure_delete(b"secret").unwrap();
    assert!(existed);
    assert!(report.rotation.epochs_destroyed.contains(&old_epoch), "{report:?}");
    assert!(blob_files(dir.path()).iter().all(|f| !old_files.contains(f)));
    assert!(db.blobs().unwrap().reader(b"secret").unwrap().is_none());
    assert_eq!(read_all(&db, b"other"), shared);
    // What is left in blob files is about the shared part, not the secret one.
    let stats = db.blobs().unwrap().stats().unwrap();
    assert!(stats.stored_bytes < (4 << 20), "{stats:?}");
    db.close().unwrap();
    assert!(Db::verify(dir.path(), &common::cred(), common::options()).unwrap().is_ok());
}

#[test]
fn a_key_value_secure_delete_in_a_store_with_blobs_shreds_the_old_epoch_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let a = random(2 << 20, 4);
    db.blobs().unwrap().put(b"a", &mut &a[..]).unwrap();
    db.put(b"password", b"hunter2").unwrap();
    let old_epoch = db.stats().current_epoch;
    // Without moving blob files the old epoch would stay, and the call fail.
    let report = db.secure_delete(b"password").unwrap();
    assert!(report.rotation.epochs_destroyed.contains(&old_epoch), "{report:?}");
    assert_eq!(db.get(b"password").unwrap(), None);
    assert_eq!(read_all(&db, b"a"), a);
}
