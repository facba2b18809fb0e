//! Backup to a `file://` target: incremental uploads, listing, restore (the
//! newest and a given one), resumption, damaged objects, pruning with GC.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{cred, options};
use synapsed_storage::backup::{self, Target};
use synapsed_storage::{Credential, Db, Error};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn contents(db: &Db) -> Model {
    db.scan_prefix(b"").unwrap().map(Result::unwrap).collect()
}

fn restored(dir: &Path) -> Model {
    let db = Db::open(dir, &cred(), options()).unwrap();
    let m = contents(&db);
    db.close().unwrap();
    m
}

fn target(dir: &Path) -> Target {
    Target::from_url(&format!("file://{}", dir.display()), &|_| None).unwrap()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn no_progress(_: u64, _: u64) {}

#[test]
fn incremental_backups_restore_the_newest_and_any_given_one() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let remote = tmp.path().join("remote");
    let t = target(&remote);
    let db = Db::create(&src, &cred(), options()).unwrap();
    for i in 0..500u32 {
        db.put(format!("key{i:05}").as_bytes(), format!("first {i}").as_bytes()).unwrap();
    }
    db.flush().unwrap();
    let first_model = contents(&db);
    let first = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!(first.id, 1);
    assert_eq!(first.existing_files, 0);
    assert_eq!(first.uploaded_files, first.files);
    assert!(first.uploaded_bytes > 0);

    // Unchanged: nothing uploaded, every file already there.
    let second = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!((second.id, second.uploaded_files, second.uploaded_bytes), (2, 0, 0));
    assert_eq!(second.existing_files, second.files);

    for i in 0..100u32 {
        db.put(format!("key{:05}", i * 5).as_bytes(), b"changed").unwrap();
        db.delete(format!("key{:05}", i * 5 + 1).as_bytes()).unwrap();
    }
    db.flush().unwrap();
    db.put(b"only in the wal", b"yes").unwrap();
    let third_model = contents(&db);
    let third = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!(third.id, 3);
    assert!(third.existing_files > 0, "the first flush's tables are shared: {third:?}");
    assert!(third.uploaded_files < third.files);
    db.close().unwrap();

    let ls = backup::list(&t, &cred()).unwrap();
    assert_eq!(ls.iter().map(|b| b.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(ls[0].created_unix_ms > 0 && ls[0].bytes > 0 && ls[2].last_seqno > ls[0].last_seqno);

    let newest = tmp.path().join("newest");
    let r = backup::restore(&t, None, &newest, &cred(), options(), &no_progress).unwrap();
    assert_eq!(r.id, 3);
    assert_eq!(restored(&newest), third_model);
    let at1 = tmp.path().join("at1");
    backup::restore(&t, Some(1), &at1, &cred(), options(), &no_progress).unwrap();
    assert_eq!(restored(&at1), first_model);
    assert!(Db::verify(&at1, &cred(), options()).unwrap().is_ok());

    // A missing backup and a non-empty directory are refused.
    assert!(matches!(backup::restore(&t, Some(9), &tmp.path().join("x"), &cred(), options(), &no_progress), Err(Error::Backup(_))));
    assert!(backup::restore(&t, None, &newest, &cred(), options(), &no_progress).is_err());
}

#[test]
fn another_passphrase_opens_no_backup_and_names_no_file_on_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let remote = tmp.path().join("remote");
    let t = target(&remote);
    let db = Db::create(&src, &cred(), options()).unwrap();
    db.put(b"CANARY-KEY-backup", b"CANARY-VALUE-backup").unwrap();
    db.flush().unwrap();
    db.put(b"CANARY-KEY-wal", b"CANARY-VALUE-wal").unwrap();
    backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    db.close().unwrap();
    let wrong = Credential::passphrase("not the passphrase");
    let err = backup::list(&t, &wrong).unwrap_err();
    assert!(err.to_string().contains("wrong passphrase or key for backup 1"), "{err}");
    assert!(backup::restore(&t, None, &tmp.path().join("r"), &wrong, options(), &no_progress).is_err());
    assert!(!tmp.path().join("r").join("CURRENT").exists());
    // What the server holds: opaque names, ciphertext only.
    for name in backup::object_names(&t).unwrap() {
        let leaf = name.rsplit('/').next().unwrap();
        assert!(name.starts_with("data/") || name.starts_with("backups/"), "{name}");
        assert!(leaf.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    }
    for f in files_under(&remote) {
        let bytes = std::fs::read(&f).unwrap();
        for marker in [&b"CANARY"[..], b"000", b".sst", b".wal", b"MANIFEST"] {
            if marker == b"000" {
                continue; // too short to mean anything in ciphertext
            }
            assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{} holds {:?}", f.display(), String::from_utf8_lossy(marker));
        }
    }
}

#[test]
fn a_cut_backup_resumes_with_what_is_missing_and_damage_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let remote = tmp.path().join("remote");
    let t = target(&remote);
    let db = Db::create(&src, &cred(), options()).unwrap();
    for i in 0..2000u32 {
        db.put(format!("key{i:05}").as_bytes(), &[i as u8; 100]).unwrap();
    }
    db.flush().unwrap();
    let model = contents(&db);
    let full = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    // As if the run had been cut before its manifest and some uploads.
    std::fs::remove_dir_all(remote.join("backups")).unwrap();
    let mut data: Vec<_> = files_under(&remote.join("data"));
    data.sort();
    for f in data.iter().take(2) {
        std::fs::remove_file(f).unwrap();
    }
    let resumed = backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    assert_eq!(resumed.id, 1);
    assert_eq!(resumed.uploaded_files, 2, "{resumed:?} after {full:?}");
    assert_eq!(resumed.existing_files, full.files - 2);
    db.close().unwrap();
    let out = tmp.path().join("out");
    backup::restore(&t, None, &out, &cred(), options(), &no_progress).unwrap();
    assert_eq!(restored(&out), model);

    // A flipped byte in any data object: the restore names the object and fails.
    let victim = files_under(&remote.join("data")).into_iter().max_by_key(|f| std::fs::metadata(f).unwrap().len()).unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&victim, &bytes).unwrap();
    let err = backup::restore(&t, None, &tmp.path().join("bad"), &cred(), options(), &no_progress).unwrap_err();
    assert!(err.to_string().contains("damaged backup object data/"), "{err}");
}

#[test]
fn pruning_keeps_the_newest_backups_and_removes_unreferenced_data() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let remote = tmp.path().join("remote");
    let t = target(&remote);
    let db = Db::create(&src, &cred(), options()).unwrap();
    for round in 0..3u32 {
        for i in 0..300u32 {
            db.put(format!("key{i:05}").as_bytes(), format!("round {round}").as_bytes()).unwrap();
        }
        db.flush().unwrap();
        db.compact_range(None, None).unwrap();
        backup::backup(&db, &src, &t, &cred(), &no_progress).unwrap();
    }
    let model = contents(&db);
    db.close().unwrap();
    let before = files_under(&remote.join("data")).len();
    let r = backup::prune(&t, 1, &cred()).unwrap();
    assert_eq!(r.removed_backups, vec![1, 2]);
    assert!(r.removed_objects > 0 && r.removed_bytes > 0);
    assert_eq!(files_under(&remote.join("data")).len(), before - r.removed_objects);
    assert_eq!(backup::list(&t, &cred()).unwrap().iter().map(|b| b.id).collect::<Vec<_>>(), vec![3]);
    let out = tmp.path().join("out");
    backup::restore(&t, None, &out, &cred(), options(), &no_progress).unwrap();
    assert_eq!(restored(&out), model);
    // Nothing left to remove; a wrong passphrase removes nothing.
    assert_eq!(backup::prune(&t, 1, &cred()).unwrap().removed_objects, 0);
    assert!(backup::prune(&t, 1, &Credential::passphrase("wrong")).is_err());
    assert!(backup::prune(&t, 0, &cred()).is_err());
    assert_eq!(backup::list(&t, &cred()).unwrap().len(), 1);
}
