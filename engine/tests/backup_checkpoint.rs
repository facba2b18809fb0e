//! Checkpoints: a consistent, openable copy of a store at one point.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{cred, keyspace_contents, options};
use synapsed_storage::{Db, Error, KeyspaceOptions, WriteBatch};

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.scan_prefix(b"").unwrap().map(Result::unwrap).collect()
}

#[test]
fn checkpoint_opens_with_the_same_credentials_and_holds_the_state_it_was_taken_at() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let db = Db::create(&src, &cred(), options()).unwrap();
    let ks = db.create_keyspace("things", KeyspaceOptions::default()).unwrap();
    for i in 0..300u32 {
        db.put(format!("key{i:04}").as_bytes(), format!("value{i}").as_bytes()).unwrap();
    }
    db.flush().unwrap();
    for i in 0..50u32 {
        let mut batch = WriteBatch::new();
        batch.put_in(&ks, format!("k{i}").as_bytes(), b"in keyspace");
        batch.delete(format!("key{:04}", i * 3).as_bytes());
        db.write(batch).unwrap();
    }
    // The last writes live only in the WAL (and the memtable).
    let expected = keyspace_contents(&db);
    let cp = tmp.path().join("cp");
    let report = db.checkpoint(&cp).unwrap();
    assert!(report.files.iter().any(|f| f.immutable), "{report:?}");
    assert!(report.files.iter().any(|f| f.name.ends_with(".wal")), "{report:?}");
    assert!(report.last_seqno > 0);
    // Later writes do not reach the checkpoint.
    db.put(b"after", b"checkpoint").unwrap();
    db.compact_range(None, None).unwrap();

    assert!(Db::verify(&cp, &cred(), options()).unwrap().is_ok());
    let copy = Db::open(&cp, &cred(), options()).unwrap();
    assert_eq!(keyspace_contents(&copy), expected);
    assert_eq!(copy.get(b"after").unwrap(), None);
    // The copy is a store of its own: it takes writes without touching the source.
    copy.put(b"only in copy", b"1").unwrap();
    copy.compact_range(None, None).unwrap();
    copy.close().unwrap();
    assert_eq!(db.get(b"only in copy").unwrap(), None);
    assert_eq!(db.get(b"after").unwrap(), Some(b"checkpoint".to_vec()));
    db.close().unwrap();
    assert!(Db::verify(&src, &cred(), options()).unwrap().is_ok());
    assert!(Db::verify(&cp, &cred(), options()).unwrap().is_ok());
}

#[test]
fn tables_are_linked_unless_the_store_overwrites_files_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    for passes in [0u32, 1] {
        let src = tmp.path().join(format!("db{passes}"));
        let db = Db::create(&src, &cred(), options().with_secure_delete_passes(passes)).unwrap();
        for i in 0..200u32 {
            db.put(format!("key{i:04}").as_bytes(), b"v").unwrap();
        }
        db.flush().unwrap();
        let cp = tmp.path().join(format!("cp{passes}"));
        let report = db.checkpoint(&cp).unwrap();
        let tables: Vec<_> = report.files.iter().filter(|f| f.immutable).collect();
        assert!(!tables.is_empty());
        for t in tables {
            let a = std::fs::metadata(src.join(&t.name)).unwrap();
            let b = std::fs::metadata(cp.join(&t.name)).unwrap();
            assert_eq!(t.linked, passes == 0, "{t:?}");
            assert_eq!(a.ino() == b.ino(), passes == 0, "{t:?}");
            assert_eq!(b.len(), t.bytes);
        }
        for f in report.files.iter().filter(|f| !f.immutable) {
            assert!(!f.linked);
            let a = std::fs::metadata(src.join(&f.name)).unwrap();
            let b = std::fs::metadata(cp.join(&f.name)).unwrap();
            assert_ne!(a.ino(), b.ino(), "{f:?}");
        }
        db.close().unwrap();
        assert!(Db::verify(&cp, &cred(), options()).unwrap().is_ok());
    }
}

#[test]
fn a_non_empty_directory_and_a_read_only_handle_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let db = Db::create(&src, &cred(), options()).unwrap();
    db.put(b"a", b"b").unwrap();
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("x"), b"x").unwrap();
    assert!(matches!(db.checkpoint(&busy), Err(Error::InvalidArgument(_))));
    // An empty existing directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    db.checkpoint(&empty).unwrap();
    db.close().unwrap();
    let ro = Db::open(&src, &cred(), options().with_read_only(true)).unwrap();
    assert!(matches!(ro.checkpoint(&tmp.path().join("ro")), Err(Error::ReadOnly(_))));
}

#[test]
fn a_checkpoint_taken_beside_writers_holds_whole_batches_only() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("db");
    let db = Arc::new(Db::create(&src, &cred(), options().with_background_compaction(true)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut batch = WriteBatch::new();
                batch.put(format!("{i:08}a").as_bytes(), [7u8; 64]);
                batch.put(format!("{i:08}b").as_bytes(), [7u8; 64]);
                db.write(batch).unwrap();
                i += 1;
            }
            i
        })
    };
    let mut cps = Vec::new();
    for n in 0..4 {
        std::thread::sleep(std::time::Duration::from_millis(40));
        let cp = tmp.path().join(format!("cp{n}"));
        db.checkpoint(&cp).unwrap();
        cps.push(cp);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let mut last = 0usize;
    for cp in cps {
        let copy = Db::open(&cp, &cred(), options()).unwrap();
        let pairs = contents(&copy);
        assert_eq!(pairs.len() % 2, 0, "a batch is split in {}", cp.display());
        let batches = pairs.len() / 2;
        for i in 0..batches {
            assert!(pairs.contains_key(format!("{i:08}a").as_bytes()) && pairs.contains_key(format!("{i:08}b").as_bytes()));
        }
        assert!(batches >= last && batches <= written as usize);
        last = batches;
        copy.close().unwrap();
    }
    assert!(last > 0);
}

/// Blob files are part of a checkpoint: every blob reads back whole from it.
#[test]
fn a_checkpoint_carries_the_blobs() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("checkpoint"));
    let db = Db::create(&src, &cred(), options()).unwrap();
    let contents: Vec<Vec<u8>> = (0..3u32).map(|i| (0..300_000u32).map(|n| (n.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8).collect()).collect();
    for (i, content) in contents.iter().enumerate() {
        db.blobs().unwrap().put(format!("blob-{i}").as_bytes(), &mut content.as_slice()).unwrap();
    }
    db.checkpoint(&dst).unwrap();
    db.close().unwrap();
    let copy = Db::open(&dst, &cred(), options()).unwrap();
    assert!(Db::verify(&dst, &cred(), options().with_read_only(true)).unwrap().is_ok());
    for (i, content) in contents.iter().enumerate() {
        let mut back = Vec::new();
        copy.blobs().unwrap().reader(format!("blob-{i}").as_bytes()).unwrap().expect("the blob is in the checkpoint").read_to_end(&mut back).unwrap();
        assert!(back == *content, "blob {i} differs in the checkpoint");
    }
    copy.close().unwrap();
}
