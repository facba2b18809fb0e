//! Range deletes and merge operands in keyspaces other than the default one:
//! a keyspace's range tombstone hides only that keyspace's keys, from every
//! read path, in memtables, tables, after compaction and reopen, and leaves
//! the version with its keyspace's drop; a keyspace's merge operands are
//! folded with the operator registered under its name, on reads and in its
//! compactions, and the operator's name is recorded for its id.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{cred, options};
use synapsed_storage::{Db, Error, IterOptions, Keyspace, KeyspaceOptions, Options, SortedSetUnion, U64AddOperator, WriteBatch};

fn key(i: usize) -> Vec<u8> {
    format!("k/{i:04}").into_bytes()
}

fn value(i: usize, round: usize) -> Vec<u8> {
    format!("value {i} round {round}").into_bytes()
}

fn keys(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(key).collect()
}

/// Keys 0..100 with keys 20..60 deleted.
fn expected_after_delete() -> Vec<Vec<u8>> {
    keys(0..20).into_iter().chain(keys(60..100)).collect()
}

/// Puts keys 0..100 into the default keyspace and into `a` and `b`, one batch.
fn fill(db: &Db, a: &Keyspace, b: &Keyspace, round: usize) {
    let mut batch = WriteBatch::new();
    for i in 0..100 {
        batch.put(key(i), value(i, round));
        batch.put_in(a, key(i), value(i, round));
        batch.put_in(b, key(i), value(i, round));
    }
    db.write(batch).unwrap();
}

fn all_in(db: &Db, ks: &Keyspace, reverse: bool) -> Vec<Vec<u8>> {
    db.range_in(ks, Bound::Included(b"k/"), Bound::Excluded(b"k0"), reverse, None).unwrap().map(|r| r.unwrap().0).collect()
}

/// Every read path of keyspace `ks` agrees that keys 0..20 and 60..100 are
/// live and 20..60 gone.
fn check_deleted_in(db: &Db, ks: &Keyspace) {
    let expected = expected_after_delete();
    assert_eq!(all_in(db, ks, false), expected, "forward scan");
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(all_in(db, ks, true), rev, "reverse scan");
    for i in [0, 19, 20, 21, 40, 59, 60, 99] {
        let live = !(20..60).contains(&i);
        assert_eq!(db.get_in(ks, &key(i)).unwrap().is_some(), live, "get {i}");
    }
    assert_eq!(db.scan_prefix_in(ks, b"k/003").unwrap().count(), 0, "prefix scan inside the range");
    assert_eq!(db.scan_prefix_in(ks, b"k/006").unwrap().count(), 10);
    let mut c = db.cursor_in(ks, IterOptions::new().lower_bound(&key(10)).upper_bound(&key(70))).unwrap();
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

/// Every read path of `ks` sees all keys 0..100.
fn check_untouched(db: &Db, ks: Option<&Keyspace>) {
    match ks {
        Some(ks) => {
            assert_eq!(all_in(db, ks, false), keys(0..100));
            assert_eq!(all_in(db, ks, true).len(), 100);
            assert!(db.get_in(ks, &key(30)).unwrap().is_some());
            let mut c = db.cursor_in(ks, IterOptions::new()).unwrap();
            c.seek(&key(25)).unwrap();
            assert_eq!(c.key(), Some(&key(25)[..]));
        }
        None => {
            assert_eq!(db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().count(), 100);
            assert!(db.get(&key(30)).unwrap().is_some());
        }
    }
}

fn three(db: &Db) -> (Keyspace, Keyspace) {
    (db.create_keyspace("a", KeyspaceOptions::default()).unwrap(), db.create_keyspace("b", KeyspaceOptions::default()).unwrap())
}

#[test]
fn a_keyspace_range_delete_hides_only_that_keyspace_s_keys_in_memtable_table_compaction_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    db.flush().unwrap();
    fill(&db, &a, &b, 1);
    db.delete_range_in(&a, &key(20), &key(60)).unwrap();
    assert_eq!(db.stats().range_tombstones, 1, "counted while in the memtable");
    // In the memtable, over a memtable and a table.
    check_deleted_in(&db, &a);
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.flush().unwrap();
    assert_eq!(db.stats().range_tombstones, 1, "counted once in the version");
    check_deleted_in(&db, &a);
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.compact_range_in(&b, None, None).unwrap();
    db.compact_range(None, None).unwrap();
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.compact_range_in(&a, None, None).unwrap();
    check_deleted_in(&db, &a);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = (db.keyspace("a").unwrap().unwrap(), db.keyspace("b").unwrap().unwrap());
    check_deleted_in(&db, &a);
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.close().unwrap();
}

#[test]
fn a_keyspace_range_delete_survives_reopen_from_the_wal_and_is_seen_by_a_read_only_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    db.flush().unwrap();
    // Only a tombstone in the keyspace's memtable: no entry of `a` in the generation.
    db.delete_range_in(&a, &key(20), &key(60)).unwrap();
    let ro = Db::open(tmp.path(), &cred(), options().with_read_only(true)).unwrap();
    let ro_a = ro.keyspace("a").unwrap().unwrap();
    check_deleted_in(&ro, &ro_a);
    drop(ro);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = (db.keyspace("a").unwrap().unwrap(), db.keyspace("b").unwrap().unwrap());
    check_deleted_in(&db, &a);
    check_untouched(&db, Some(&b));
    assert_eq!(db.stats().range_tombstones, 1);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    check_deleted_in(&db, &db.keyspace("a").unwrap().unwrap());
    db.close().unwrap();
}

#[test]
fn snapshots_and_cursors_of_a_keyspace_taken_before_its_range_delete_keep_seeing_the_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    let snap = db.snapshot();
    let mut before = db.cursor_in(&a, IterOptions::new()).unwrap();
    db.delete_range_in(&a, &key(20), &key(60)).unwrap();
    // Writes after the tombstone are not hidden by it.
    db.put_in(&a, &key(30), b"after").unwrap();
    for flushed in [false, true] {
        if flushed {
            db.flush().unwrap();
            db.compact_range_in(&a, None, None).unwrap();
        }
        assert_eq!(db.range_in(&a, Bound::Unbounded, Bound::Unbounded, false, Some(&snap)).unwrap().count(), 100, "flushed {flushed}");
        assert!(db.get_at_in(&a, &key(40), &snap).unwrap().is_some());
        let mut c = db.cursor_at_in(&a, &snap, IterOptions::new()).unwrap();
        c.seek(&key(25)).unwrap();
        assert_eq!(c.key(), Some(&key(25)[..]));
        before.seek(&key(45)).unwrap();
        assert_eq!(before.key(), Some(&key(45)[..]));
        assert_eq!(db.get_in(&a, &key(30)).unwrap().as_deref(), Some(&b"after"[..]));
        assert_eq!(db.get_in(&a, &key(31)).unwrap(), None);
        assert_eq!(all_in(&db, &a, false).len(), 61);
    }
    db.close().unwrap();
}

#[test]
fn a_range_delete_in_one_keyspace_and_puts_in_another_in_one_batch_take_effect_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    let mut batch = WriteBatch::new();
    batch.put_in(&a, key(1), b"before");
    batch.put_in(&b, key(1), b"other");
    batch.delete_range_in(&a, key(0), key(10));
    batch.put_in(&a, key(2), b"after");
    db.write(batch).unwrap();
    assert_eq!(db.get_in(&a, &key(1)).unwrap(), None);
    assert_eq!(db.get_in(&a, &key(2)).unwrap().as_deref(), Some(&b"after"[..]));
    assert_eq!(db.get_in(&b, &key(1)).unwrap().as_deref(), Some(&b"other"[..]));
    // Bad bounds fail the whole batch.
    let mut bad = WriteBatch::new();
    bad.put_in(&b, key(3), b"x");
    bad.delete_range_in(&a, key(5), key(5));
    assert!(matches!(db.write(bad), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get_in(&b, &key(3)).unwrap(), None);
    db.close().unwrap();
}

#[test]
fn compaction_of_a_keyspace_drops_what_its_tombstone_hides_and_then_the_tombstone() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options();
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    db.flush().unwrap();
    db.compact_range_in(&a, None, None).unwrap();
    let before = Db::verify(tmp.path(), &cred(), opts.clone()).unwrap().entries_checked;
    db.delete_range_in(&a, &key(0), &key(90)).unwrap();
    // New tables over the whole range make the compaction rewrite every table under it.
    db.put_in(&a, &key(0), b"again").unwrap();
    db.put_in(&a, &key(99), b"again").unwrap();
    db.flush().unwrap();
    let expected: Vec<Vec<u8>> = keys(0..1).into_iter().chain(keys(90..100)).collect();
    assert_eq!(all_in(&db, &a, false), expected, "hidden before the compaction too");
    db.compact_range_in(&a, None, None).unwrap();
    let after = Db::verify(tmp.path(), &cred(), opts.clone()).unwrap().entries_checked;
    // Keyspace `a` holds keys 90..100 and the new key 0 (11), the others 100 each.
    assert_eq!(before, 300);
    assert_eq!(after, 211, "the hidden entries of `a` are gone, the other keyspaces' stay");
    assert_eq!(db.stats().range_tombstones, 0, "nothing older under it: the tombstone left the version");
    assert_eq!(all_in(&db, &a, false), expected);
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.close().unwrap();
}

#[test]
fn dropping_a_keyspace_removes_its_range_tombstones_with_the_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    db.delete_range_in(&a, &key(0), &key(10)).unwrap();
    db.delete_range_in(&b, &key(0), &key(10)).unwrap();
    db.delete_range(&key(0), &key(10)).unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().range_tombstones, 3);
    db.drop_keyspace("a").unwrap();
    assert_eq!(db.stats().range_tombstones, 2, "a's tombstone left the version with the drop");
    // One still in a memtable when its keyspace is dropped never reaches the version.
    db.delete_range_in(&b, &key(10), &key(20)).unwrap();
    assert_eq!(db.stats().range_tombstones, 3);
    db.drop_keyspace("b").unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().range_tombstones, 1, "only the default keyspace's is left");
    // A keyspace created under the old name starts without them.
    let a2 = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    db.put_in(&a2, &key(5), b"new").unwrap();
    assert_eq!(db.get_in(&a2, &key(5)).unwrap().as_deref(), Some(&b"new"[..]));
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    assert_eq!(db.stats().range_tombstones, 1);
    let a2 = db.keyspace("a").unwrap().unwrap();
    assert_eq!(db.get_in(&a2, &key(5)).unwrap().as_deref(), Some(&b"new"[..]));
    assert!(matches!(db.delete_range_in(&a, &key(0), &key(1)), Err(Error::NoSuchKeyspace(_))));
    db.close().unwrap();
}

#[test]
fn repair_keeps_each_keyspace_s_range_deletes_in_their_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    db.delete_range_in(&a, &key(20), &key(40)).unwrap();
    db.flush().unwrap();
    db.delete_range_in(&a, &key(40), &key(60)).unwrap();
    db.close().unwrap();
    Db::repair(tmp.path(), &cred(), options()).unwrap();
    let db = Db::open(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = (db.keyspace("a").unwrap().unwrap(), db.keyspace("b").unwrap().unwrap());
    check_deleted_in(&db, &a);
    check_untouched(&db, Some(&b));
    check_untouched(&db, None);
    db.close().unwrap();
}

fn counter_options() -> Options {
    options().with_merge_operator("counts", Arc::new(U64AddOperator))
}

fn count(v: Option<Vec<u8>>) -> Option<u64> {
    v.map(|v| U64AddOperator::decode(&v).unwrap())
}

#[test]
fn a_keyspace_s_operator_folds_its_operands_on_reads_and_in_its_compactions() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), counter_options()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    db.put_in(&counts, b"c/base", &U64AddOperator::encode(100)).unwrap();
    for round in 0..4 {
        for i in 0..5u64 {
            db.merge_in(&counts, format!("c/{i}").as_bytes(), &U64AddOperator::encode(i + 1)).unwrap();
            db.merge_in(&counts, b"c/base", &U64AddOperator::encode(1)).unwrap();
        }
        if round % 2 == 0 {
            db.flush().unwrap();
        }
    }
    let check = |db: &Db, counts: &Keyspace| {
        for i in 0..5u64 {
            assert_eq!(count(db.get_in(counts, format!("c/{i}").as_bytes()).unwrap()), Some(4 * (i + 1)), "c/{i}");
        }
        assert_eq!(count(db.get_in(counts, b"c/base").unwrap()), Some(120));
        let forward: Vec<(Vec<u8>, u64)> = db
            .range_in(counts, Bound::Unbounded, Bound::Unbounded, false, None)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(k, v)| (k, U64AddOperator::decode(&v).unwrap()))
            .collect();
        assert_eq!(forward.len(), 6);
        assert_eq!(forward[0], (b"c/0".to_vec(), 4));
        assert_eq!(forward[5], (b"c/base".to_vec(), 120));
        let mut reverse: Vec<(Vec<u8>, u64)> = db
            .range_in(counts, Bound::Unbounded, Bound::Unbounded, true, None)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|(k, v)| (k, U64AddOperator::decode(&v).unwrap()))
            .collect();
        reverse.reverse();
        assert_eq!(reverse, forward);
        let mut c = db.cursor_in(counts, IterOptions::new()).unwrap();
        c.seek(b"c/3").unwrap();
        assert_eq!(U64AddOperator::decode(c.value().unwrap()).unwrap(), 16);
        c.prev().unwrap();
        assert_eq!(U64AddOperator::decode(c.value().unwrap()).unwrap(), 12);
        assert_eq!(db.scan_prefix_in(counts, b"c/b").unwrap().count(), 1);
    };
    check(&db, &counts);
    let entries = |dir| Db::verify(dir, &cred(), counter_options()).unwrap().entries_checked;
    let before = entries(tmp.path());
    db.compact_range_in(&counts, None, None).unwrap();
    let after = entries(tmp.path());
    // 41 operands and puts, folded to one value per key by the compaction
    // (bottommost, no snapshot): the keyspace's operator ran in it.
    assert!(before > 6, "{before}");
    assert_eq!(after, 6, "the compaction folded the keyspace's operands");
    check(&db, &counts);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), counter_options()).unwrap();
    check(&db, &db.keyspace("counts").unwrap().unwrap());
    db.close().unwrap();
}

#[test]
fn a_merge_into_a_keyspace_without_an_operator_is_refused_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // The default keyspace's operator is not the keyspace `plain`'s.
    let opts = counter_options().with_merge_operator(synapsed_storage::DEFAULT_KEYSPACE, Arc::new(U64AddOperator));
    let db = Db::create(tmp.path(), &cred(), opts).unwrap();
    let plain = db.create_keyspace("plain", KeyspaceOptions::default()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    let last = db.stats().last_seqno;
    assert!(matches!(db.merge_in(&plain, b"k", &U64AddOperator::encode(1)), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get_in(&plain, b"k").unwrap(), None);
    let mut batch = WriteBatch::new();
    batch.put_in(&counts, b"k", U64AddOperator::encode(1));
    batch.merge_in(&counts, b"k", U64AddOperator::encode(1));
    batch.merge_in(&plain, b"k", U64AddOperator::encode(1));
    assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))));
    assert_eq!(db.stats().last_seqno, last, "nothing of the batch was written");
    assert_eq!(db.get_in(&counts, b"k").unwrap(), None);
    let mut txn = db.transaction();
    assert!(matches!(txn.merge_in(&plain, b"k", &U64AddOperator::encode(1)), Err(Error::InvalidArgument(_))));
    txn.put_in(&plain, b"other", b"x");
    txn.commit().unwrap();
    assert_eq!(db.get_in(&plain, b"k").unwrap(), None, "the refused operand was not buffered");
    // Without an operator in the default keyspace, a keyspace's own still works.
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), counter_options()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    assert!(matches!(db.merge(b"k", &U64AddOperator::encode(1)), Err(Error::InvalidArgument(_))));
    db.merge_in(&counts, b"k", &U64AddOperator::encode(1)).unwrap();
    assert_eq!(count(db.get_in(&counts, b"k").unwrap()), Some(1));
    db.close().unwrap();
}

#[test]
fn the_operator_name_is_recorded_per_keyspace_and_a_reopen_with_another_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = counter_options().with_merge_operator("sets", Arc::new(SortedSetUnion));
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    let sets = db.create_keyspace("sets", KeyspaceOptions::default()).unwrap();
    db.merge_in(&counts, b"k", &U64AddOperator::encode(7)).unwrap();
    db.merge_in(&sets, b"k", &SortedSetUnion::encode(vec![b"x".to_vec()])).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    // Another operator under the keyspace's name: refused.
    let swapped = options()
        .with_merge_operator("counts", Arc::new(SortedSetUnion))
        .with_merge_operator("sets", Arc::new(SortedSetUnion));
    assert!(matches!(Db::open(tmp.path(), &cred(), swapped), Err(Error::InvalidArgument(_))));
    // No operator for the keyspace: the store opens, reading its operands is an error.
    let without = options().with_merge_operator("sets", Arc::new(SortedSetUnion));
    let db = Db::open(tmp.path(), &cred(), without).unwrap();
    let counts = db.keyspace("counts").unwrap().unwrap();
    assert!(matches!(db.get_in(&counts, b"k"), Err(Error::NoMergeOperator { keyspace }) if keyspace == "counts"));
    assert!(db.range_in(&counts, Bound::Unbounded, Bound::Unbounded, false, None).unwrap().next().unwrap().is_err());
    let sets = db.keyspace("sets").unwrap().unwrap();
    assert_eq!(db.get_in(&sets, b"k").unwrap(), Some(SortedSetUnion::encode(vec![b"x".to_vec()])));
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), opts).unwrap();
    let counts = db.keyspace("counts").unwrap().unwrap();
    assert_eq!(count(db.get_in(&counts, b"k").unwrap()), Some(7));
    db.close().unwrap();
}

#[test]
fn a_transaction_merges_into_a_keyspace_with_its_operator() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), counter_options()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    db.put_in(&counts, b"k", &U64AddOperator::encode(10)).unwrap();
    let mut txn = db.transaction();
    txn.merge_in(&counts, b"k", &U64AddOperator::encode(5)).unwrap();
    txn.merge_in(&counts, b"k", &U64AddOperator::encode(1)).unwrap();
    assert_eq!(count(txn.get_in(&counts, b"k").unwrap()), Some(16), "own operands over the snapshot's value");
    assert_eq!(txn.get(b"k").unwrap(), None, "the default keyspace is another key space");
    txn.commit().unwrap();
    assert_eq!(count(db.get_in(&counts, b"k").unwrap()), Some(16));
    // A key merged into conflicts like a key written.
    let mut txn = db.transaction();
    txn.merge_in(&counts, b"k", &U64AddOperator::encode(1)).unwrap();
    db.merge_in(&counts, b"k", &U64AddOperator::encode(1)).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(count(db.get_in(&counts, b"k").unwrap()), Some(17));
    db.close().unwrap();
}

#[test]
fn a_keyspace_range_delete_ends_a_fold_of_its_operands() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), counter_options()).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    db.put_in(&counts, b"c/1", &U64AddOperator::encode(100)).unwrap();
    db.merge_in(&counts, b"c/1", &U64AddOperator::encode(1)).unwrap();
    let snap = db.snapshot();
    db.delete_range_in(&counts, b"c/", b"c0").unwrap();
    db.merge_in(&counts, b"c/1", &U64AddOperator::encode(2)).unwrap();
    for step in 0..3 {
        match step {
            1 => db.flush().unwrap(),
            2 => db.compact_range_in(&counts, None, None).unwrap(),
            _ => {}
        }
        assert_eq!(count(db.get_in(&counts, b"c/1").unwrap()), Some(2), "step {step}");
        assert_eq!(count(db.get_at_in(&counts, b"c/1", &snap).unwrap()), Some(101), "step {step}");
        let rev: Vec<_> = db.range_in(&counts, Bound::Unbounded, Bound::Unbounded, true, None).unwrap().map(|r| r.unwrap().1).collect();
        assert_eq!(rev, vec![U64AddOperator::encode(2).to_vec()]);
    }
    db.close().unwrap();
}

#[test]
fn a_keyspace_range_delete_in_a_batch_written_as_a_table_hides_older_keys_of_that_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_ingest_min_bytes(4096);
    let db = Db::create(tmp.path(), &cred(), opts.clone()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    let mut batch = WriteBatch::new();
    for i in 0..200 {
        batch.put_in(&b, format!("big/{i:04}"), vec![b'v'; 64]);
    }
    batch.delete_range_in(&a, key(20), key(60));
    db.write(batch).unwrap();
    assert!(db.stats().ingests >= 1, "the batch went straight to a table");
    check_deleted_in(&db, &a);
    check_untouched(&db, None);
    db.close().unwrap();
    let db = Db::open(tmp.path(), &cred(), opts).unwrap();
    check_deleted_in(&db, &db.keyspace("a").unwrap().unwrap());
    db.close().unwrap();
}

#[test]
fn a_transaction_that_read_a_keyspace_key_conflicts_with_a_range_delete_over_it_in_that_keyspace_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options()).unwrap();
    let (a, b) = three(&db);
    fill(&db, &a, &b, 0);
    let mut txn = db.transaction();
    assert!(txn.get_in(&a, &key(30)).unwrap().is_some());
    txn.put(b"other", b"x");
    db.delete_range_in(&b, &key(20), &key(60)).unwrap();
    txn.commit().unwrap();
    let mut txn = db.transaction();
    assert!(txn.get_in(&a, &key(30)).unwrap().is_some());
    txn.put(b"other", b"y");
    db.delete_range_in(&a, &key(20), &key(60)).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    db.close().unwrap();
}

#[test]
fn the_change_feed_names_the_keyspace_of_a_range_delete_and_of_a_merge() {
    use synapsed_storage::{ChangeFeedRetention, ChangeKind};
    let tmp = tempfile::tempdir().unwrap();
    let opts = counter_options().with_change_feed_retention(Some(ChangeFeedRetention::max_bytes(1 << 30)));
    let db = Db::create(tmp.path(), &cred(), opts).unwrap();
    let counts = db.create_keyspace("counts", KeyspaceOptions::default()).unwrap();
    let start = db.stats().last_seqno;
    db.merge_in(&counts, b"c", &U64AddOperator::encode(3)).unwrap();
    db.delete_range_in(&counts, b"a", b"b").unwrap();
    db.flush().unwrap();
    let changes: Vec<_> = db.changes_since(start).unwrap().map(|c| c.unwrap()).collect();
    assert_eq!(changes.len(), 2);
    assert_eq!((changes[0].keyspace, changes[0].kind, changes[0].key.as_slice()), (counts.id(), ChangeKind::Merge, &b"c"[..]));
    assert_eq!(changes[0].value, U64AddOperator::encode(3).to_vec());
    assert_eq!((changes[1].keyspace, changes[1].kind, changes[1].key.as_slice()), (counts.id(), ChangeKind::DeleteRange, &b"a"[..]));
    assert_eq!(changes[1].value, b"b".to_vec());
    db.close().unwrap();
}
