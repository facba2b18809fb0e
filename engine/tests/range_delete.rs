//! Range deletes: one range tombstone hides every key of `[start, end)` older
//! than it from every read path (get, range scans both ways, prefix scans,
//! cursors, snapshots, transactions), through flushes, compactions, ingests,
//! reopens, read-only handles, repair and secure deletion; compaction drops
//! what it hides once no snapshot needs it, and the tombstone itself once
//! nothing older is left under it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;
use std::path::Path;

use common::{cred, options};
use synapsed_storage::{Db, Error, IterOptions, Options, WriteBatch};

fn key(i: usize) -> Vec<u8> {
    format!("k/{i:04}").into_bytes()
}

fn value(i: usize, round: usize) -> Vec<u8> {
    format!("value {i} round {round}").into_bytes()
}

/// The keys under `k/`, ascending or descending.
fn all(db: &Db, reverse: bool) -> Vec<Vec<u8>> {
    db.range(Bound::Included(b"k/"), Bound::Excluded(b"k0"), reverse, None).unwrap().map(|r| r.unwrap().0).collect()
}

fn keys(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(key).collect()
}

/// Keys 0..100 with keys 20..60 deleted by one range delete.
fn expected_after_delete() -> Vec<Vec<u8>> {
    keys(0..20).into_iter().chain(keys(60..100)).collect()
}

fn fill(db: &Db, round: usize) {
    let mut batch = WriteBatch::new();
    for i in 0..100 {
        batch.put(key(i), value(i, round));
    }
    db.write(batch).unwrap();
}

/// Every read path agrees that keys 0..20 and 60..100 are live and 20..60 gone.
fn check_every_read_path(db: &Db) {
    let expected = expected_after_delete();
    assert_eq!(all(db, false), expected, "forward scan");
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(all(db, true), rev, "reverse scan");
    for i in [0, 19, 20, 21, 40, 59, 60, 99] {
        let live = !(20..60).contains(&i);
        assert_eq!(db.get(&key(i)).unwrap().is_some(), live, "get {i}");
    }
    assert_eq!(db.scan_prefix(b"k/003").unwrap().count(), 0, "prefix scan inside the range");
    assert_eq!(db.scan_prefix(b"k/006").unwrap().count(), 10);
    let mut c = db.cursor(IterOptions::new().lower_bound(&key(10)).upper_bound(&key(70))).unwrap();
    c.seek(&key(25)).unwrap();
    assert_eq!(c.key(), Some(&key(60)[..]), "seek into the range lands past it");
    c.prev().unwrap();
    assert_eq!(c.key(), Some(&key(19)[..]), "prev from past the range skips it");
    c.seek_for_prev(&key(45)).unwrap();
    assert_eq!(c.key(), Some(&key(19)[..]));
    c.next().unwrap();
    assert_eq!(c.key(), Some(&key(60)[..]));
    c.seek_to_last().unwrap();
    assert_eq!(c.key(), Some(&key(69)[..]));
}

#[test]
fn a_range_delete_hides_its_keys_from_every_read_path_in_memtable_table_and_after_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    fill(&db, 0);
    db.flush().unwrap();
    fill(&db, 1);
    db.delete_range(&key(20), &key(60)).unwrap();
    check_every_read_path(&db);
    db.flush().unwrap();
    check_every_read_path(&db);
    db.compact_range(None, None).unwrap();
    check_every_read_path(&db);
    // Writes after the delete are not hidden by it.
    db.put(&key(30), b"new").unwrap();
    assert_eq!(db.get(&key(30)).unwrap(), Some(b"new".to_vec()));
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(&key(30)).unwrap(), Some(b"new".to_vec()));
    assert_eq!(db.get(&key(31)).unwrap(), None);
    db.close().unwrap();
}

#[test]
fn operations_of_one_batch_take_effect_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a1", b"before").put(b"b", b"outside");
    batch.delete_range(b"a", b"b");
    batch.put(b"a2", b"after");
    db.write(batch).unwrap();
    assert_eq!(db.get(b"a1").unwrap(), None, "a put before the range delete is deleted");
    assert_eq!(db.get(b"a2").unwrap(), Some(b"after".to_vec()), "a put after it is not");
    assert_eq!(db.get(b"b").unwrap(), Some(b"outside".to_vec()), "the end is exclusive");
    db.close().unwrap();
}

#[test]
fn bad_bounds_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_max_key_bytes(16);
    let db = Db::create(tmp.path(), &cred(), opts).unwrap();
    db.put(b"b", b"v").unwrap();
    let seqno = db.stats().last_seqno;
    let long = [b'z'; 17];
    for (start, end) in [(&b"b"[..], &b"b"[..]), (b"c", b"a"), (b"", b"c"), (b"a", b""), (b"a", &long[..]), (&long[..], b"zz")] {
        match db.delete_range(start, end) {
            Err(Error::InvalidArgument(_)) => {}
            other => panic!("{start:?}..{end:?}: {other:?}"),
        }
        let mut batch = WriteBatch::new();
        batch.put(b"c", b"v").delete_range(start, end);
        assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))), "in a batch: {start:?}..{end:?}");
    }
    assert_eq!(db.stats().last_seqno, seqno, "nothing was written");
    assert_eq!(db.get(b"b").unwrap(), Some(b"v".to_vec()));
    assert_eq!(db.get(b"c").unwrap(), None);
    db.close().unwrap();
}

#[test]
fn a_range_delete_is_one_operation_whatever_it_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    for round in 0..20 {
        let mut batch = WriteBatch::new();
        for i in 0..500 {
            batch.put(format!("c/{round:02}/{i:04}"), b"x");
        }
        db.write(batch).unwrap();
    }
    let before = db.stats().last_seqno;
    let mut batch = WriteBatch::new();
    batch.delete_range(b"c/", b"c0");
    assert_eq!(batch.len(), 1);
    assert_eq!(db.write(batch).unwrap(), before + 1, "one seqno for 10,000 keys");
    assert_eq!(db.scan_prefix(b"c/").unwrap().count(), 0);
    db.close().unwrap();
}

#[test]
fn snapshots_and_cursors_taken_before_keep_seeing_the_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    fill(&db, 0);
    let snap = db.snapshot();
    let mut cursor = db.cursor(IterOptions::new()).unwrap();
    db.delete_range(&key(20), &key(60)).unwrap();
    let check = |db: &Db| {
        assert_eq!(db.get_at(&key(30), &snap).unwrap(), Some(value(30, 0)));
        assert_eq!(db.range(Bound::Unbounded, Bound::Unbounded, false, Some(&snap)).unwrap().count(), 100);
        let mut c = db.cursor_at(&snap, IterOptions::new()).unwrap();
        c.seek(&key(25)).unwrap();
        assert_eq!(c.key(), Some(&key(25)[..]));
        assert_eq!(db.get(&key(30)).unwrap(), None);
    };
    check(&db);
    cursor.seek(&key(30)).unwrap();
    assert_eq!(cursor.key(), Some(&key(30)[..]), "a cursor keeps its view");
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    check(&db);
    drop(snap);
    db.compact_range(None, None).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
}

/// Entries the store's tables and logs hold, as `verify` counts them.
fn entries_on_disk(dir: &Path, opts: &Options) -> u64 {
    let report = Db::verify(dir, &cred(), opts.clone()).unwrap();
    assert!(report.is_ok(), "{:?}", report.damaged);
    report.entries_checked
}

#[test]
fn compaction_drops_what_the_tombstone_hides_unless_a_snapshot_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options();
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    fill(&db, 0);
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let snap = db.snapshot();
    db.delete_range(&key(0), &key(90)).unwrap();
    assert_eq!(db.stats().range_tombstones, 1, "in the memtable");
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    // The snapshot still reads keys 0..90: nothing was dropped.
    assert_eq!(db.range(Bound::Unbounded, Bound::Unbounded, false, Some(&snap)).unwrap().count(), 100);
    let held = entries_on_disk(tmp.path(), &opts);
    assert!(held >= 100, "{held}");
    assert_eq!(db.stats().range_tombstones, 1);
    drop(snap);
    // A table over the whole range makes the next compaction rewrite every
    // table under the tombstone.
    db.put(&key(0), b"again").unwrap();
    db.put(&key(99), b"again").unwrap();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let left = entries_on_disk(tmp.path(), &opts);
    assert_eq!(left, 11, "keys 90..100 and the new key 0 are left, nothing the tombstone hid");
    assert_eq!(db.stats().range_tombstones, 0, "with nothing older under it, the tombstone left the version");
    let expected: Vec<Vec<u8>> = keys(0..1).into_iter().chain(keys(90..100)).collect();
    assert_eq!(all(&db, false), expected);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), opts).unwrap();
    assert_eq!(all(&db, false), expected);
    db.close().unwrap();
}

#[test]
fn range_deletes_survive_reopen_from_the_wal_and_from_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    fill(&db, 0);
    db.flush().unwrap();
    db.delete_range(&key(20), &key(60)).unwrap();
    db.close().unwrap();
    // `verify` reads the range delete in the WAL as a valid record.
    let report = Db::verify(tmp.path(), &cred(), options()).unwrap();
    assert!(report.is_ok(), "{:?}", report.damaged);
    // Replayed from the WAL (and flushed by the open).
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
    // Read from the manifest, rewritten as a snapshot by every open.
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
    let ro = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    check_every_read_path(&ro);
    drop(ro);

    // A range delete still in the WAL, seen by a read-only handle.
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    db.delete_range(&key(0), &key(10)).unwrap();
    let ro = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    assert_eq!(all(&ro, false), keys(10..20).into_iter().chain(keys(60..100)).collect::<Vec<_>>());
    drop(ro);
    db.close().unwrap();
}

#[test]
fn a_transaction_that_read_a_key_conflicts_with_a_range_delete_over_it() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    fill(&db, 0);
    let mut txn = db.transaction();
    assert!(txn.get(&key(30)).unwrap().is_some());
    txn.put(b"other", b"x");
    db.delete_range(&key(20), &key(60)).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    let mut txn = db.transaction();
    assert!(txn.get(&key(70)).unwrap().is_some());
    txn.put(b"other", b"x");
    db.delete_range(&key(20), &key(60)).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn a_range_delete_in_a_batch_written_as_a_table_hides_older_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_ingest_min_bytes(4096);
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    fill(&db, 0);
    let mut batch = WriteBatch::new();
    for i in 0..200 {
        batch.put(format!("big/{i:04}"), vec![b'v'; 64]);
    }
    batch.delete_range(key(20), key(60));
    db.write(batch).unwrap();
    assert!(db.stats().ingests >= 1, "the batch went straight to a table");
    check_every_read_path(&db);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), opts).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
}

#[test]
fn repair_keeps_range_deletes_of_the_manifest_and_of_the_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    fill(&db, 0);
    db.delete_range(&key(20), &key(40)).unwrap();
    db.flush().unwrap();
    db.delete_range(&key(40), &key(60)).unwrap();
    db.close().unwrap();
    Db::repair(tmp.path(), &cred(), options()).unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
}

#[test]
fn a_secure_delete_after_a_range_delete_purges_the_covered_data() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options();
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    fill(&db, 0);
    db.compact_range(None, None).unwrap();
    fill(&db, 1);
    db.flush().unwrap();
    fill(&db, 2);
    db.delete_range(&key(20), &key(60)).unwrap();
    db.secure_delete(&key(20)).unwrap();
    check_every_read_path(&db);
    db.close().unwrap();
    // Tables and logs hold the 60 live keys and nothing of the deleted ones.
    assert_eq!(entries_on_disk(tmp.path(), &opts), 60);
}

#[test]
fn thousands_of_range_deletes_in_one_batch_and_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_memtable_size_bytes(4 << 20);
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..4000 {
        batch.put(format!("s/{i:05}/a"), b"x").put(format!("s/{i:05}/b"), b"x");
    }
    db.write(batch).unwrap();
    db.flush().unwrap();
    // Series 0..2000 dropped in one batch, 2000..3000 one by one; 3000.. stay.
    let mut batch = WriteBatch::new();
    for i in 0..2000 {
        batch.delete_range(format!("s/{i:05}/"), format!("s/{i:05}0"));
    }
    db.write(batch).unwrap();
    for i in 2000..3000 {
        db.delete_range(format!("s/{i:05}/").as_bytes(), format!("s/{i:05}0").as_bytes()).unwrap();
    }
    assert_eq!(db.stats().range_tombstones, 3000);
    let check = |db: &Db| {
        assert_eq!(db.scan_prefix(b"s/").unwrap().count(), 2000);
        for i in [0, 1999, 2000, 2999] {
            assert_eq!(db.get(format!("s/{i:05}/a").as_bytes()).unwrap(), None, "{i}");
        }
        assert_eq!(db.get(b"s/03000/b").unwrap(), Some(b"x".to_vec()));
    };
    check(&db);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), opts).unwrap();
    check(&db);
    db.compact_range(None, None).unwrap();
    check(&db);
    assert_eq!(db.stats().range_tombstones, 0, "every tombstone retired with the data under it");
    db.close().unwrap();
}
