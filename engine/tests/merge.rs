//! Merge operators through the whole engine: operands written by batches and
//! `Db::merge`, folded by point reads, range scans in both directions, cursors,
//! snapshots and transactions, across flushes, compactions, deletes and a
//! reopen that replays the WAL; compaction folds them (a store compacted to
//! the bottom reads without its operator); a store opened without its
//! operator refuses both the write and the read of operands.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{cred, options};
use synapsed_storage::{Db, Error, IterOptions, MergeError, MergeOperator, Options, SortedSetUnion, U64AddOperator, WriteBatch, DEFAULT_KEYSPACE};

fn counter_options() -> Options {
    options().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(U64AddOperator))
}

fn n(v: u64) -> [u8; 8] {
    U64AddOperator::encode(v)
}

fn count(db: &Db, key: &[u8]) -> Option<u64> {
    db.get(key).unwrap().map(|v| U64AddOperator::decode(&v).unwrap())
}

fn pairs(iter: synapsed_storage::DbIterator) -> Vec<(Vec<u8>, u64)> {
    iter.map(|r| {
        let (k, v) = r.unwrap();
        (k, U64AddOperator::decode(&v).unwrap())
    })
    .collect()
}

#[test]
fn counters_fold_across_flushes_and_compactions_in_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"b", &n(100)).unwrap();
    for round in 0..6u64 {
        for key in [&b"a"[..], b"b", b"c"] {
            db.merge(key, &n(round + 1)).unwrap();
        }
        match round % 3 {
            0 => db.flush().unwrap(),
            1 => db.compact_range(None, None).unwrap(),
            _ => {}
        }
    }
    // 1 + 2 + ... + 6 = 21 on each key, over 100 for "b".
    assert_eq!(count(&db, b"a"), Some(21));
    assert_eq!(count(&db, b"b"), Some(121));
    assert_eq!(count(&db, b"c"), Some(21));
    assert_eq!(count(&db, b"d"), None);
    let expected = vec![(b"a".to_vec(), 21), (b"b".to_vec(), 121), (b"c".to_vec(), 21)];
    assert_eq!(pairs(db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap()), expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(pairs(db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap()), reversed);
    assert_eq!(pairs(db.scan_prefix(b"b").unwrap()), vec![(b"b".to_vec(), 121)]);
    let mut cursor = db.cursor(IterOptions::new()).unwrap();
    cursor.seek(b"b").unwrap();
    assert_eq!(U64AddOperator::decode(cursor.value().unwrap()).unwrap(), 121);
    cursor.prev().unwrap();
    assert_eq!((cursor.key().unwrap(), U64AddOperator::decode(cursor.value().unwrap()).unwrap()), (&b"a"[..], 21));
    cursor.seek_for_prev(b"zz").unwrap();
    assert_eq!((cursor.key().unwrap(), U64AddOperator::decode(cursor.value().unwrap()).unwrap()), (&b"c"[..], 21));
    db.close().unwrap();
}

#[test]
fn merges_after_a_delete_start_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"k", &n(50)).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    db.flush().unwrap();
    db.delete(b"k").unwrap();
    assert_eq!(count(&db, b"k"), None);
    db.merge(b"k", &n(7)).unwrap();
    assert_eq!(count(&db, b"k"), Some(7));
    db.flush().unwrap();
    db.merge(b"k", &n(3)).unwrap();
    assert_eq!(count(&db, b"k"), Some(10));
    assert_eq!(pairs(db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap()), vec![(b"k".to_vec(), 10)]);
    db.compact_range(None, None).unwrap();
    assert_eq!(count(&db, b"k"), Some(10));
    db.close().unwrap();
}

#[test]
fn snapshots_read_what_they_read_before_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"k", &n(10)).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    let first = db.snapshot();
    db.merge(b"k", &n(2)).unwrap();
    db.merge(b"k", &n(3)).unwrap();
    let second = db.snapshot();
    db.merge(b"k", &n(4)).unwrap();
    let read = |s: &synapsed_storage::Snapshot| U64AddOperator::decode(&db.get_at(b"k", s).unwrap().unwrap()).unwrap();
    for step in 0..3 {
        assert_eq!(read(&first), 11, "step {step}");
        assert_eq!(read(&second), 16, "step {step}");
        assert_eq!(count(&db, b"k"), Some(20), "step {step}");
        let at_first: Vec<_> = pairs(db.range(Bound::Unbounded, Bound::Unbounded, true, Some(&first)).unwrap());
        assert_eq!(at_first, vec![(b"k".to_vec(), 11)]);
        let mut cursor = db.cursor_at(&second, IterOptions::new()).unwrap();
        cursor.seek_to_last().unwrap();
        assert_eq!(U64AddOperator::decode(cursor.value().unwrap()).unwrap(), 16);
        if step == 0 {
            db.flush().unwrap();
        } else {
            db.compact_range(None, None).unwrap();
        }
    }
    drop(first);
    drop(second);
    db.compact_range(None, None).unwrap();
    assert_eq!(count(&db, b"k"), Some(20));
    db.close().unwrap();
}

#[test]
fn operands_survive_a_reopen_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a", n(5)).merge(b"a", n(6)).merge(b"b", n(1)).merge(b"b", n(1));
    db.write(batch).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    assert_eq!(count(&db, b"a"), Some(11));
    assert_eq!(count(&db, b"b"), Some(2));
    db.merge(b"b", &n(40)).unwrap();
    assert_eq!(count(&db, b"b"), Some(42));
    db.close().unwrap();
}

#[test]
fn without_an_operator_a_merge_writes_nothing_and_a_read_of_operands_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), options()).unwrap();
    let before = db.stats().last_seqno;
    let mut batch = WriteBatch::new();
    batch.put(b"p", b"v").merge(b"k", n(1));
    assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.merge(b"k", &n(1)), Err(Error::InvalidArgument(_))));
    assert_eq!(db.stats().last_seqno, before);
    assert_eq!(db.get(b"p").unwrap(), None);
    db.close().unwrap();

    // Written with the operator, reopened without it.
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"a", b"plain").unwrap();
    db.merge(b"k", &n(1)).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), &cred(), options()).unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::NoMergeOperator { .. })));
    assert_eq!(db.get(b"a").unwrap(), Some(b"plain".to_vec()));
    let mut forward = db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap();
    assert_eq!(forward.next().unwrap().unwrap().0, b"a");
    assert!(matches!(forward.next(), Some(Err(Error::NoMergeOperator { .. }))));
    let mut reverse = db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap();
    assert!(matches!(reverse.next(), Some(Err(Error::NoMergeOperator { .. }))));
    // Compaction without the operator keeps the operands as they are.
    db.compact_range(None, None).unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::NoMergeOperator { .. })));
    db.close().unwrap();
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    assert_eq!(count(&db, b"k"), Some(1));
    db.close().unwrap();
}

#[test]
fn a_compaction_to_the_bottom_folds_operands_into_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    for i in 0..200u64 {
        db.merge(format!("key{:03}", i % 20).as_bytes(), &n(i)).unwrap();
    }
    db.compact_range(None, None).unwrap();
    db.close().unwrap();
    // Folded into plain values: readable without the operator.
    let db = Db::open(dir.path(), &cred(), options()).unwrap();
    for k in 0..20u64 {
        let expected: u64 = (0..200u64).filter(|i| i % 20 == k).sum();
        let v = db.get(format!("key{k:03}").as_bytes()).unwrap().unwrap();
        assert_eq!(U64AddOperator::decode(&v).unwrap(), expected);
    }
    db.close().unwrap();
}

#[test]
fn a_live_snapshot_keeps_compaction_from_folding_across_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    let snapshot = db.snapshot();
    db.merge(b"k", &n(2)).unwrap();
    db.compact_range(None, None).unwrap();
    assert_eq!(U64AddOperator::decode(&db.get_at(b"k", &snapshot).unwrap().unwrap()).unwrap(), 1);
    assert_eq!(count(&db, b"k"), Some(3));
    db.close().unwrap();
    drop(snapshot);
    // The newer operand stayed an operand above the folded older one.
    let db = Db::open(dir.path(), &cred(), options()).unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::NoMergeOperator { .. })));
    db.close().unwrap();
}

#[test]
fn transactions_read_folded_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.merge(b"k", &n(2)).unwrap();
    db.merge(b"k", &n(3)).unwrap();
    let mut txn = db.transaction();
    assert_eq!(txn.get(b"k").unwrap(), Some(n(5).to_vec()));
    db.merge(b"k", &n(1)).unwrap();
    assert_eq!(txn.get(b"k").unwrap(), Some(n(5).to_vec()));
    txn.put(b"other", b"x");
    // The key it read changed after it began.
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    db.close().unwrap();
}

#[test]
fn transactions_merge_read_their_operands_and_commit_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"k", &n(10)).unwrap();
    let mut txn = db.transaction();
    txn.merge(b"k", &n(1)).unwrap();
    txn.merge(b"k", &n(2)).unwrap();
    assert_eq!(txn.get(b"k").unwrap(), Some(n(13).to_vec()));
    txn.put(b"p", &n(5));
    txn.merge(b"p", &n(1)).unwrap();
    assert_eq!(txn.get(b"p").unwrap(), Some(n(6).to_vec()));
    txn.delete(b"d");
    txn.merge(b"d", &n(7)).unwrap();
    assert_eq!(txn.get(b"d").unwrap(), Some(n(7).to_vec()));
    // Nothing is visible before the commit.
    assert_eq!(count(&db, b"k"), Some(10));
    txn.commit().unwrap();
    assert_eq!((count(&db, b"k"), count(&db, b"p"), count(&db, b"d")), (Some(13), Some(6), Some(7)));
    // A key merged into conflicts with a write after the snapshot.
    let mut txn = db.transaction();
    txn.merge(b"k", &n(1)).unwrap();
    db.merge(b"k", &n(100)).unwrap();
    assert!(matches!(txn.commit(), Err(Error::Conflict)));
    assert_eq!(count(&db, b"k"), Some(113));
    db.close().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), options()).unwrap();
    let mut txn = db.transaction();
    assert!(matches!(txn.merge(b"k", &n(1)), Err(Error::InvalidArgument(_))));
    assert_eq!(txn.get(b"k").unwrap(), None);
    txn.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn a_malformed_operand_is_a_merge_error_and_compaction_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    db.merge(b"k", b"short").unwrap();
    db.merge(b"ok", &n(9)).unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::MergeFailed { .. })));
    db.compact_range(None, None).unwrap();
    assert!(matches!(db.get(b"k"), Err(Error::MergeFailed { .. })));
    assert_eq!(count(&db, b"ok"), Some(9));
    // A later value replaces what could not be folded.
    db.put(b"k", &n(4)).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    assert_eq!(count(&db, b"k"), Some(5));
    db.close().unwrap();
}

#[test]
fn sets_union_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(SortedSetUnion));
    let db = Db::create(dir.path(), &cred(), opts).unwrap();
    db.merge(b"tags", &SortedSetUnion::encode(["red", "blue"])).unwrap();
    db.flush().unwrap();
    db.merge(b"tags", &SortedSetUnion::encode(["green", "red"])).unwrap();
    let set = SortedSetUnion::decode(&db.get(b"tags").unwrap().unwrap()).unwrap();
    assert_eq!(set, vec![b"blue".to_vec(), b"green".to_vec(), b"red".to_vec()]);
    db.compact_range(None, None).unwrap();
    let set = SortedSetUnion::decode(&db.get(b"tags").unwrap().unwrap()).unwrap();
    assert_eq!(set.len(), 3);
    db.close().unwrap();
}

/// An operator that refuses everything, to show a failing operator never
/// turns into a value.
struct Refuses;
impl MergeOperator for Refuses {
    fn name(&self) -> &str {
        "test.refuses"
    }
    fn full_merge(&self, _: &[u8], _: Option<&[u8]>, _: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        Err(MergeError::new("refused"))
    }
}

#[test]
fn an_operator_error_names_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), options().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(Refuses))).unwrap();
    db.merge(b"k", b"x").unwrap();
    match db.get(b"k") {
        Err(Error::MergeFailed { operator, reason, keyspace }) => {
            assert_eq!((operator.as_str(), reason.as_str(), keyspace.as_str()), ("test.refuses", "refused", "default"));
        }
        other => panic!("expected MergeFailed, got {other:?}"),
    }
    db.close().unwrap();
}

fn dir_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_reopen_with_another_operator_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sets = || options().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(SortedSetUnion));
    // A store that never merged takes any operator.
    let db = Db::create(dir.path(), &cred(), options()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.close().unwrap();
    Db::open(dir.path(), &cred(), sets()).unwrap().close().unwrap();
    // Its first merge records the operator, kept across reopens and manifest rolls.
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    db.merge(b"k", &n(3)).unwrap();
    db.close().unwrap();
    for _ in 0..2 {
        let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
        db.flush().unwrap();
        db.close().unwrap();
    }
    let before = dir_bytes(dir.path());
    match Db::open(dir.path(), &cred(), sets()) {
        Err(Error::InvalidArgument(msg)) => {
            assert!(msg.contains(U64AddOperator::NAME) && msg.contains(SortedSetUnion::NAME), "{msg}");
        }
        other => panic!("expected InvalidArgument, got {:?}", other.map(|_| ())),
    }
    assert!(dir_bytes(dir.path()) == before, "a refused open changed the store's files");
    let ro = Db::open(dir.path(), &cred(), sets().with_read_only(true));
    assert!(matches!(ro, Err(Error::InvalidArgument(_))));
    // Without an operator it opens (reads of operands fail), and with its own it reads.
    Db::open(dir.path(), &cred(), options()).unwrap().close().unwrap();
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    assert_eq!(count(&db, b"k"), Some(3));
    db.close().unwrap();
}

struct Unnamed;
impl MergeOperator for Unnamed {
    fn name(&self) -> &str {
        ""
    }
    fn full_merge(&self, _: &[u8], _: Option<&[u8]>, _: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        Ok(Vec::new())
    }
}

#[test]
fn an_operator_without_a_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(Unnamed));
    assert!(matches!(Db::create(dir.path(), &cred(), opts), Err(Error::InvalidArgument(_))));
}

/// A read-only handle's memtable holds operands that the writer meanwhile
/// folded by compaction; while a refresh swaps in the new version, no read may
/// combine the old memtable with the new version (it would fold the operands
/// over a version that already holds them folded, without their base). The
/// counter read must only ever grow, and never pass what the writer wrote.
#[test]
fn reads_of_a_read_only_handle_stay_right_while_it_refreshes_past_folded_operands() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    writer.put(b"k", &n(1_000)).unwrap();
    writer.merge(b"k", &n(1)).unwrap();
    // A refresh that the writer outruns fails and closes its handle (a
    // retryable outcome, `db/refresh.rs`): the handle is then replaced by a
    // new read-only open, as an application would, and reads go on.
    let path = dir.path().to_path_buf();
    let open_reader = move || Arc::new(Db::open(&path, &cred(), counter_options().with_read_only(true)).unwrap());
    let current = Arc::new(parking_lot::RwLock::new(open_reader()));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(1_001));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reopened = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let refresher = {
        let (current, stop, reopened) = (Arc::clone(&current), Arc::clone(&stop), Arc::clone(&reopened));
        let open_reader = open_reader.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reader = Arc::clone(&current.read());
                if let Err(e) = reader.refresh() {
                    // The writer retired logs (or removed one) faster than the
                    // refresh read them: an I/O error, never damage.
                    assert!(matches!(e, synapsed_storage::Error::Io { .. }), "refresh failed: {e}");
                    *current.write() = open_reader();
                    reopened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let checker = {
        let (current, stop, written) = (Arc::clone(&current), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut last = 0;
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reader = Arc::clone(&current.read());
                let now = match reader.get(b"k") {
                    Ok(v) => U64AddOperator::decode(&v.unwrap()).unwrap(),
                    // Closed by a refresh that failed; the next handle reads on.
                    Err(synapsed_storage::Error::Closed) => continue,
                    Err(e) => panic!("read failed: {e}"),
                };
                assert!(now >= last, "the counter went back from {last} to {now}");
                assert!(now <= written.load(std::sync::atomic::Ordering::SeqCst), "the counter read {now}, more than was written");
                last = now;
                reads += 1;
            }
            reads
        })
    };
    let started = std::time::Instant::now();
    let mut round = 0u64;
    while started.elapsed() < std::time::Duration::from_millis(1_500) {
        round += 1;
        written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        writer.merge(b"k", &n(1)).unwrap();
        match round % 15 {
            0 => {
                writer.flush().unwrap();
                writer.compact_range(None, None).unwrap();
            }
            5 | 10 => writer.flush().unwrap(),
            _ => {}
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    refresher.join().unwrap();
    let reads = checker.join().unwrap();
    assert!(reads > 0);
    println!("{reads} reads, {} handles reopened after a refresh the writer outran", reopened.load(std::sync::atomic::Ordering::Relaxed));
    let reader = open_reader();
    assert_eq!(count(&reader, b"k"), Some(written.load(std::sync::atomic::Ordering::SeqCst)));
    writer.close().unwrap();
}

/// A range delete between a counter's base and its later operands deletes the
/// base: the operands fold over nothing, in the memtable, after a flush and
/// after a compaction, for point reads and scans both ways; a snapshot taken
/// before the range delete still folds over the base.
#[test]
fn a_range_delete_ends_the_fold_at_its_seqno() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &cred(), counter_options()).unwrap();
    db.put(b"k", &n(100)).unwrap();
    db.merge(b"k", &n(1)).unwrap();
    db.put(b"z", &n(7)).unwrap();
    let before = db.snapshot();
    db.delete_range(b"a", b"m").unwrap();
    db.merge(b"k", &n(2)).unwrap();
    db.merge(b"k", &n(3)).unwrap();
    for stage in ["memtable", "flushed", "compacted"] {
        match stage {
            "flushed" => db.flush().unwrap(),
            "compacted" => db.compact_range(None, None).unwrap(),
            _ => {}
        }
        assert_eq!(count(&db, b"k"), Some(5), "{stage}: operands after the range delete fold over nothing");
        let expected = vec![(b"k".to_vec(), 5), (b"z".to_vec(), 7)];
        assert_eq!(pairs(db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap()), expected, "{stage}");
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(pairs(db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap()), reversed, "{stage}");
        assert_eq!(db.get_at(b"k", &before).unwrap().map(|v| U64AddOperator::decode(&v).unwrap()), Some(101), "{stage}");
    }
    drop(before);
    db.compact_range(None, None).unwrap();
    assert_eq!(count(&db, b"k"), Some(5));
    db.close().unwrap();
    let db = Db::open(dir.path(), &cred(), counter_options()).unwrap();
    assert_eq!(count(&db, b"k"), Some(5), "after reopen");
}
