//! Reads and writes in keyspaces: each keyspace is its own key space (same key,
//! other value), batches across keyspaces are atomic, snapshots see every
//! keyspace at one seqno, data survives reopens, flushes and compactions in its
//! own keyspace's tables, writes to a dropped keyspace are refused with nothing
//! written, and a drop removes the keyspace's data and files.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use common::{cred, options};
use synapsed_storage::vfs::{ForwardingVfs, WritableFile};
use synapsed_storage::{Db, Error, IterOptions, Keyspace, KeyspaceOptions, Options, StdVfs, Vfs, WriteBatch};

fn all_in(db: &Db, ks: &Keyspace) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.range_in(ks, Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect()
}

fn all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect()
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

fn tables(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".sst")).collect();
    v.sort();
    v
}

#[test]
fn each_keyspace_holds_its_own_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(&tmp.path().join("s"), &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let b = db.create_keyspace("b", KeyspaceOptions::default()).unwrap();
    db.put(b"k", b"default").unwrap();
    db.put_in(&a, b"k", b"in a").unwrap();
    db.put_in(&a, b"k2", b"a2").unwrap();
    db.put_in(&b, b"k", b"in b").unwrap();
    assert_eq!(db.get(b"k").unwrap(), Some(b"default".to_vec()));
    assert_eq!(db.get_in(&a, b"k").unwrap(), Some(b"in a".to_vec()));
    assert_eq!(db.get_in(&b, b"k").unwrap(), Some(b"in b".to_vec()));
    assert_eq!(db.get_in(&b, b"k2").unwrap(), None);
    assert_eq!(db.get(b"k2").unwrap(), None);
    let default = db.keyspace("default").unwrap().unwrap();
    assert_eq!(db.get_in(&default, b"k").unwrap(), Some(b"default".to_vec()));
    db.delete_in(&a, b"k").unwrap();
    assert_eq!(db.get_in(&a, b"k").unwrap(), None);
    assert_eq!(db.get_in(&b, b"k").unwrap(), Some(b"in b".to_vec()));
    assert_eq!(all_in(&db, &a), vec![kv("k2", "a2")]);
    assert_eq!(all(&db), vec![kv("k", "default")]);
    let rev: Vec<_> = db.range_in(&b, Bound::Unbounded, Bound::Unbounded, true, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(rev, vec![kv("k", "in b")]);
    assert_eq!(db.scan_prefix_in(&a, b"k").unwrap().map(Result::unwrap).collect::<Vec<_>>(), vec![kv("k2", "a2")]);
    let mut c = db.cursor_in(&b, IterOptions::new()).unwrap();
    c.seek_to_first().unwrap();
    assert_eq!(c.entry(), Some((&b"k"[..], &b"in b"[..])));
    c.next().unwrap();
    assert!(!c.valid());
}

#[test]
fn a_batch_across_keyspaces_is_atomic_and_snapshots_see_every_keyspace_at_one_seqno() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(&tmp.path().join("s"), &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let b = db.create_keyspace("b", KeyspaceOptions::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"x", b"0").put_in(&a, b"x", b"1").put_in(&b, b"x", b"2");
    db.write(batch).unwrap();
    let snap = db.snapshot();
    let mut batch = WriteBatch::new();
    batch.delete(b"x").put_in(&a, b"x", b"1'").delete_in(&b, b"x").put_in(&b, b"y", b"new");
    db.write(batch).unwrap();
    assert_eq!(db.get_at_in(&a, b"x", &snap).unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get_at_in(&b, b"x", &snap).unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get_at(b"x", &snap).unwrap(), Some(b"0".to_vec()));
    assert_eq!(db.get_at_in(&b, b"y", &snap).unwrap(), None);
    assert_eq!(db.get_in(&a, b"x").unwrap(), Some(b"1'".to_vec()));
    assert_eq!(db.get_in(&b, b"x").unwrap(), None);
    let at: Vec<_> = db.range_in(&b, Bound::Unbounded, Bound::Unbounded, false, Some(&snap)).unwrap().map(Result::unwrap).collect();
    assert_eq!(at, vec![kv("x", "2")]);
    let mut c = db.cursor_at_in(&b, &snap, IterOptions::new()).unwrap();
    c.seek(b"a").unwrap();
    assert_eq!(c.entry(), Some((&b"x"[..], &b"2"[..])));
    // The snapshot's view holds across a flush and a compaction of every keyspace.
    db.flush().unwrap();
    db.compact_range_in(&b, None, None).unwrap();
    assert_eq!(db.get_at_in(&b, b"x", &snap).unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get_in(&b, b"y").unwrap(), Some(b"new".to_vec()));
}

#[test]
fn writes_to_a_dropped_keyspace_are_refused_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    db.put_in(&a, b"k", b"v").unwrap();
    db.drop_keyspace("a").unwrap();
    let seqno = db.snapshot().seqno();
    assert!(matches!(db.put_in(&a, b"k", b"v2"), Err(Error::NoSuchKeyspace(n)) if n == "a"));
    assert!(matches!(db.delete_in(&a, b"k"), Err(Error::NoSuchKeyspace(_))));
    let mut batch = WriteBatch::new();
    batch.put(b"default", b"must not appear").put_in(&a, b"k", b"v3");
    assert!(matches!(db.write(batch.clone()), Err(Error::NoSuchKeyspace(_))));
    assert_eq!(db.get(b"default").unwrap(), None, "no part of a refused batch is written");
    assert_eq!(db.snapshot().seqno(), seqno);
    assert!(matches!(db.get_in(&a, b"k"), Err(Error::NoSuchKeyspace(_))));
    assert!(matches!(db.range_in(&a, Bound::Unbounded, Bound::Unbounded, false, None), Err(Error::NoSuchKeyspace(_))));
    assert!(matches!(db.cursor_in(&a, IterOptions::new()), Err(Error::NoSuchKeyspace(_))));
    // A batch as large as an ingested one is refused the same way.
    let big = Options::tiny_for_tests().with_background_compaction(false).with_ingest_min_bytes(1);
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), big).unwrap();
    assert!(matches!(db.write(batch), Err(Error::NoSuchKeyspace(_))));
    assert_eq!(db.get(b"default").unwrap(), None);
    // A keyspace made again under the name is new and empty.
    let again = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    assert_ne!(again.id(), a.id());
    assert_eq!(db.get_in(&again, b"k").unwrap(), None);
    assert!(matches!(db.put_in(&a, b"k", b"old handle"), Err(Error::NoSuchKeyspace(_))));
}

#[test]
fn keyspace_data_survives_reopen_flush_and_compaction_in_its_own_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let b = db.create_keyspace("b", KeyspaceOptions::default()).unwrap();
    let value = |ks: &str, i: usize, round: usize| format!("{ks}-{i}-{round}-{}", "x".repeat(i % 50)).into_bytes();
    for round in 0..3 {
        for i in 0..300 {
            let key = format!("key{i:04}");
            let mut batch = WriteBatch::new();
            batch.put(&key, value("d", i, round)).put_in(&a, &key, value("a", i, round));
            if i % 3 == 0 {
                batch.put_in(&b, &key, value("b", i, round));
            }
            db.write(batch).unwrap();
        }
        db.flush().unwrap();
    }
    db.delete_in(&a, b"key0007").unwrap();
    let stats = db.stats();
    assert!(stats.flushes >= 3 && stats.compactions > 0, "{stats:?}");
    let check = |db: &Db| {
        for i in 0..300 {
            let key = format!("key{i:04}");
            assert_eq!(db.get(key.as_bytes()).unwrap(), Some(value("d", i, 2)));
            let want_a = (i != 7).then(|| value("a", i, 2));
            assert_eq!(db.get_in(&a, key.as_bytes()).unwrap(), want_a, "{key} in a");
            assert_eq!(db.get_in(&b, key.as_bytes()).unwrap(), (i % 3 == 0).then(|| value("b", i, 2)), "{key} in b");
        }
        assert_eq!(all_in(db, &a).len(), 299);
        assert_eq!(all_in(db, &b).len(), 100);
        assert_eq!(all(db).len(), 300);
    };
    check(&db);
    db.close().unwrap();
    // Reopen replays the delete from the WAL into keyspace a's memtable.
    let db = Db::open(&dir, &cred(), options()).unwrap();
    check(&db);
    db.compact_range_in(&a, None, None).unwrap();
    db.compact_range(None, None).unwrap();
    check(&db);
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    check(&db);
    db.close().unwrap();
    let report = Db::verify(&dir, &cred(), options()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn dropping_a_keyspace_removes_its_data_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    db.put(b"d", b"stays").unwrap();
    db.flush().unwrap();
    let base = tables(&dir);
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    for i in 0..200 {
        db.put_in(&a, format!("k{i:03}").as_bytes(), b"gone soon").unwrap();
    }
    db.flush().unwrap();
    assert!(tables(&dir).len() > base.len(), "keyspace a has tables");
    // Some of a's data only in the WAL and its memtable.
    db.put_in(&a, b"late", b"unflushed").unwrap();
    db.drop_keyspace("a").unwrap();
    assert_eq!(tables(&dir), base, "a's tables are removed with it");
    db.flush().unwrap();
    assert_eq!(tables(&dir), base, "a's memtable is discarded at the flush");
    assert_eq!(db.get(b"d").unwrap(), Some(b"stays".to_vec()));
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(tables(&dir), base);
    let again = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    assert!(all_in(&db, &again).is_empty());
}

#[test]
fn a_dropped_keyspace_s_operations_in_the_wal_are_skipped_on_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let b = db.create_keyspace("b", KeyspaceOptions::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"d").put_in(&a, b"k", b"a").put_in(&b, b"k", b"b");
    db.write(batch).unwrap();
    db.drop_keyspace("a").unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.keyspaces().len(), 2);
    assert_eq!(db.get(b"k").unwrap(), Some(b"d".to_vec()));
    assert_eq!(db.get_in(&b, b"k").unwrap(), Some(b"b".to_vec()));
    let a2 = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    assert_eq!(db.get_in(&a2, b"k").unwrap(), None);
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.get_in(&b, b"k").unwrap(), Some(b"b".to_vec()));
    assert_eq!(db.get_in(&a2, b"k").unwrap(), None);
}

#[test]
fn a_large_batch_across_keyspaces_is_ingested_as_one_table_per_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let opts = options().with_ingest_min_bytes(4096);
    let db = Db::create(&dir, &cred(), opts.clone()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let before = tables(&dir).len();
    let mut batch = WriteBatch::new();
    for i in 0..200 {
        batch.put(format!("k{i:03}"), b"d").put_in(&a, format!("k{i:03}"), b"a");
    }
    batch.delete_in(&a, b"k005");
    db.write(batch).unwrap();
    assert_eq!(db.stats().ingests, 1);
    assert_eq!(tables(&dir).len(), before + 2);
    assert_eq!(db.get(b"k005").unwrap(), Some(b"d".to_vec()));
    assert_eq!(db.get_in(&a, b"k005").unwrap(), None);
    assert_eq!(db.get_in(&a, b"k006").unwrap(), Some(b"a".to_vec()));
    assert_eq!(all_in(&db, &a).len(), 199);
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), opts).unwrap();
    assert_eq!(all_in(&db, &a).len(), 199);
    assert_eq!(all(&db).len(), 200);
}

#[test]
fn transactions_read_and_write_keyspaces_and_detect_conflicts_per_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(&tmp.path().join("s"), &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    db.put_in(&a, b"n", b"1").unwrap();
    db.put(b"n", b"default").unwrap();
    let mut t = db.transaction();
    assert_eq!(t.get_in(&a, b"n").unwrap(), Some(b"1".to_vec()));
    t.put_in(&a, b"n", b"2");
    t.put(b"m", b"d");
    assert_eq!(t.get_in(&a, b"n").unwrap(), Some(b"2".to_vec()), "own writes first");
    // A write to the same key in another keyspace is no conflict.
    db.put(b"n", b"default 2").unwrap();
    t.commit().unwrap();
    assert_eq!(db.get_in(&a, b"n").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(b"m").unwrap(), Some(b"d".to_vec()));
    // A write to the key read, in its keyspace, is one.
    let mut t = db.transaction();
    assert_eq!(t.get_in(&a, b"n").unwrap(), Some(b"2".to_vec()));
    t.put(b"other", b"x");
    db.put_in(&a, b"n", b"3").unwrap();
    assert!(matches!(t.commit(), Err(Error::Conflict)));
    assert_eq!(db.get(b"other").unwrap(), None);
    // A keyspace dropped before the commit refuses it, writing nothing.
    let mut t = db.transaction();
    t.put_in(&a, b"z", b"1");
    t.put(b"zz", b"1");
    db.drop_keyspace("a").unwrap();
    assert!(matches!(t.commit(), Err(Error::NoSuchKeyspace(_))));
    assert_eq!(db.get(b"zz").unwrap(), None);
}

/// The real file system, recording overwrites and removals by file name.
#[derive(Debug, Default)]
struct RecordingVfs {
    inner: StdVfs,
    events: parking_lot::Mutex<Vec<(bool, String)>>,
}

impl ForwardingVfs for RecordingVfs {
    fn inner(&self) -> &dyn Vfs {
        &self.inner
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.events.lock().push((true, path.file_name().unwrap().to_string_lossy().into_owned()));
        self.inner.open_for_overwrite(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.events.lock().push((false, path.file_name().unwrap().to_string_lossy().into_owned()));
        self.inner.remove_file(path)
    }
}

#[test]
fn with_secure_delete_on_a_dropped_keyspace_s_tables_are_overwritten_before_removal() {
    const SECRET: &[u8] = b"keyspace-secret-71c3";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let vfs = Arc::new(RecordingVfs::default());
    let db = Db::create(&dir, &cred(), options().with_vfs(vfs.clone()).with_secure_delete_passes(2)).unwrap();
    db.put(b"d", b"stays").unwrap();
    db.flush().unwrap();
    let base = tables(&dir);
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    for i in 0..100 {
        db.put_in(&a, format!("k{i:03}").as_bytes(), &[SECRET, format!("{i}").as_bytes()].concat()).unwrap();
    }
    db.flush().unwrap();
    let ours: Vec<String> = tables(&dir).into_iter().filter(|t| !base.contains(t)).collect();
    assert!(!ours.is_empty());
    let copies: Vec<Vec<u8>> = ours.iter().map(|t| std::fs::read(dir.join(t)).unwrap()).collect();
    vfs.events.lock().clear();
    db.drop_keyspace("a").unwrap();
    let events = vfs.events.lock().clone();
    for (name, copy) in ours.iter().zip(&copies) {
        assert!(!dir.join(name).exists(), "{name} removed");
        let overwrites: Vec<usize> = events.iter().enumerate().filter(|(_, e)| **e == (true, name.clone())).map(|(i, _)| i).collect();
        let removal = events.iter().position(|e| *e == (false, name.clone())).unwrap();
        assert_eq!(overwrites.len(), 2, "{name}: {events:?}");
        assert!(overwrites.iter().all(|&i| i < removal), "{name} overwritten before its removal");
        // None of the removed table's bytes are left in any file of the store.
        let probe = &copy[copy.len() / 2..copy.len() / 2 + 32];
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(!bytes.windows(probe.len()).any(|w| w == probe), "{name}'s bytes in {}", path.display());
            }
        }
    }
    assert_eq!(db.get(b"d").unwrap(), Some(b"stays".to_vec()));
}

#[test]
fn repair_keeps_each_keyspace_s_tables_and_log_in_their_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let gone = db.create_keyspace("gone", KeyspaceOptions::default()).unwrap();
    let b = db.create_keyspace("b", KeyspaceOptions::default()).unwrap();
    for i in 0..100 {
        let key = format!("k{i:03}");
        let mut batch = WriteBatch::new();
        batch.put(&key, b"d").put_in(&a, &key, b"a").put_in(&gone, &key, b"gone");
        db.write(batch).unwrap();
    }
    db.flush().unwrap();
    // In the log only: a write of b, and one of a keyspace dropped after it.
    db.put_in(&b, b"log", b"b").unwrap();
    db.put_in(&gone, b"log", b"gone").unwrap();
    db.put_in(&a, b"log", b"a").unwrap();
    db.drop_keyspace("gone").unwrap();
    db.close().unwrap();

    let report = Db::repair(&dir, &cred(), options()).unwrap();
    assert!(report.manifest_readable && report.nothing_lost(), "{report:?}");
    assert_eq!(report.new_tables.len(), 3, "default, a and b: {report:?}");
    let db = Db::open(&dir, &cred(), options()).unwrap();
    let names: Vec<(u32, String)> = db.keyspaces().iter().map(|k| (k.id(), k.name().to_string())).collect();
    assert_eq!(names, vec![(0, "default".into()), (a.id(), "a".into()), (b.id(), "b".into())]);
    assert_eq!(all(&db).len(), 100);
    assert!(all(&db).iter().all(|(_, v)| v == b"d"), "no other keyspace's data in the default one");
    assert_eq!(all_in(&db, &a).len(), 101);
    assert!(all_in(&db, &a).iter().all(|(_, v)| v == b"a"));
    assert_eq!(all_in(&db, &b), vec![kv("log", "b")]);
    // Ids stay taken: the next keyspace gets a new one.
    let next = db.create_keyspace("next", KeyspaceOptions::default()).unwrap();
    assert!(next.id() > b.id());
}

#[test]
fn repair_without_a_readable_manifest_leaves_out_and_reports_other_keyspaces_log_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    db.put(b"d", b"d").unwrap();
    db.put_in(&a, b"d", b"in a").unwrap();
    db.close().unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("MANIFEST-") {
            std::fs::write(e.path(), b"destroyed").unwrap();
        }
    }
    let report = Db::repair(&dir, &cred(), options()).unwrap();
    assert!(!report.manifest_readable);
    let left_out: Vec<_> = report.lost.iter().filter(|l| l.reason.contains("keyspaces other than the default")).collect();
    assert_eq!(left_out.len(), 1, "{report:?}");
    assert_eq!(left_out[0].approx_lost_entries, Some(1));
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(all(&db), vec![kv("d", "d")], "a's write is not moved into the default keyspace");
}

#[test]
fn a_keyspace_s_options_build_its_tables_and_are_kept_by_the_manifest() {
    use synapsed_storage::Compression;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // One table per keyspace and flush or compaction.
    let opts = options().with_compression(Compression::Zstd(3)).with_memtable_size_bytes(8 << 20).with_target_file_size_bytes(64 << 20);
    let db = Db::create(&dir, &cred(), opts.clone()).unwrap();
    let plain = db.create_keyspace("plain", KeyspaceOptions::default().with_compression(Compression::None).with_bloom_bits_per_key(0).with_block_size_bytes(1024)).unwrap();
    let same = db.create_keyspace("same", KeyspaceOptions::default()).unwrap();
    assert!(matches!(db.create_keyspace("bad", KeyspaceOptions::default().with_block_size_bytes(0)), Err(Error::InvalidArgument(_))));
    assert!(db.keyspace("bad").unwrap().is_none());
    // Very compressible values, the same in both keyspaces.
    let fill = |db: &Db, round: usize| {
        for i in 0..400 {
            let key = format!("key{i:04}");
            let value = format!("{round} {}", "abcdefgh".repeat(40));
            let mut batch = WriteBatch::new();
            batch.put_in(&plain, &key, &value).put_in(&same, &key, &value);
            db.write(batch).unwrap();
        }
    };
    let sizes = |dir: &Path, before: &[String]| -> Vec<u64> {
        let mut v: Vec<u64> = tables(dir).iter().filter(|t| !before.contains(t)).map(|t| std::fs::metadata(dir.join(t)).unwrap().len()).collect();
        v.sort_unstable();
        v
    };
    let before = tables(&dir);
    fill(&db, 0);
    db.flush().unwrap();
    let new = sizes(&dir, &before);
    assert_eq!(new.len(), 2, "{new:?}");
    // The uncompressed keyspace's table is several times the compressed one's.
    assert!(new[1] > 4 * new[0], "uncompressed {} vs compressed {}", new[1], new[0]);
    db.close().unwrap();
    // After a reopen the options come from the manifest: a compaction of each
    // keyspace builds its tables the same way.
    let db = Db::open(&dir, &cred(), opts).unwrap();
    fill(&db, 1);
    db.flush().unwrap();
    db.compact_range_in(&plain, None, None).unwrap();
    db.compact_range_in(&same, None, None).unwrap();
    let compacted = sizes(&dir, &before);
    assert_eq!(compacted.len(), 2, "{compacted:?}");
    assert!(compacted[1] > 4 * compacted[0], "after compaction: uncompressed {} vs compressed {}", compacted[1], compacted[0]);
    assert_eq!(db.get_in(&plain, b"key0007").unwrap(), Some(format!("1 {}", "abcdefgh".repeat(40)).into_bytes()));
    assert_eq!(db.get_in(&same, b"key0399").unwrap(), Some(format!("1 {}", "abcdefgh".repeat(40)).into_bytes()));
}

#[test]
fn a_read_only_handle_sees_a_keyspace_created_after_it_opened_once_it_refreshes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    db.put(b"d", b"1").unwrap();
    let reader = Db::open(&dir, &cred(), options().with_read_only(true)).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"d", b"2").put_in(&a, b"k", b"in a");
    db.write(batch).unwrap();
    reader.refresh().unwrap();
    let seen = reader.keyspace("a").unwrap().expect("the new keyspace");
    assert_eq!(reader.get(b"d").unwrap(), Some(b"2".to_vec()));
    assert_eq!(reader.get_in(&seen, b"k").unwrap(), Some(b"in a".to_vec()), "its writes, still only in the WAL");
    // And once they are in tables.
    db.flush().unwrap();
    reader.refresh().unwrap();
    assert_eq!(reader.get_in(&seen, b"k").unwrap(), Some(b"in a".to_vec()));
    assert!(matches!(reader.put_in(&seen, b"k", b"x"), Err(Error::ReadOnly(_))));
}

#[test]
fn secure_delete_in_a_keyspace_purges_its_key_there_and_keeps_the_same_key_elsewhere() {
    const SECRET: &[u8] = b"ks-secret-value-90ab";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    db.put(b"victim", b"the default keyspace's own").unwrap();
    db.put_in(&a, b"victim", &[SECRET, b"-v1"].concat()).unwrap();
    for i in 0..200 {
        db.put_in(&a, format!("k{i:03}").as_bytes(), b"filler").unwrap();
    }
    db.compact_range_in(&a, None, None).unwrap();
    db.put_in(&a, b"victim", &[SECRET, b"-v2"].concat()).unwrap();
    db.flush().unwrap();
    db.put_in(&a, b"victim", &[SECRET, b"-v3"].concat()).unwrap();
    let before: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();

    // A snapshot that still sees it refuses the deletion.
    let snap = db.snapshot();
    assert!(matches!(db.secure_delete_in(&a, b"victim"), Err(Error::InvalidArgument(_))));
    drop(snap);
    let report = db.secure_delete_in(&a, b"victim").unwrap();
    assert_eq!(report.keys_deleted, 1);
    assert_eq!(db.get_in(&a, b"victim").unwrap(), None);
    assert!(all_in(&db, &a).iter().all(|(k, v)| k != b"victim" && !v.windows(SECRET.len()).any(|w| w == SECRET)));
    assert_eq!(all_in(&db, &a).len(), 200);
    assert_eq!(db.get(b"victim").unwrap(), Some(b"the default keyspace's own".to_vec()));
    // Every table, log and manifest from before is gone (rewritten under new keys).
    for name in before.iter().filter(|n| n.ends_with(".sst") || n.ends_with(".wal") || n.starts_with("MANIFEST-")) {
        assert!(!dir.join(name).exists(), "{name} survived");
    }
    // A prefix in a keyspace too.
    let report = db.secure_delete_prefix_in(&a, b"k1").unwrap();
    assert_eq!(report.keys_deleted, 100);
    assert_eq!(all_in(&db, &a).len(), 100);
}

#[test]
fn a_key_rotation_rewrites_the_tables_of_every_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    // Tables in keyspace a only: the default keyspace has none to rewrite.
    for i in 0..300 {
        db.put_in(&a, format!("k{i:03}").as_bytes(), b"value").unwrap();
    }
    db.compact_range_in(&a, None, None).unwrap();
    db.flush().unwrap();
    let old = db.stats().current_epoch;
    let report = db.rotate_keys().unwrap();
    assert!(report.epochs_destroyed.contains(&old), "{report:?}");
    let stats = db.stats();
    assert_eq!(stats.files_per_epoch.iter().map(|e| e.epoch).collect::<Vec<_>>(), vec![stats.current_epoch], "{stats:?}");
    assert_eq!(all_in(&db, &a).len(), 300);
}
