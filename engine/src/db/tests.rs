//! Behaviour of the store as a whole on the simulated file system: creation and
//! open rules, locking, read-only opens, limits, WAL handling, verify, write
//! failures, snapshots and iterators across background work, and concurrent
//! writers against readers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto::vfs::{SimVfs, Vfs};
use crypto::Credential;

use crate::{Db, Error, Options, SyncPolicy, WriteBatch};

fn dir() -> PathBuf {
    PathBuf::from("/t/store")
}

fn cred() -> Credential {
    Credential::passphrase("test passphrase")
}

fn tiny(sim: &Arc<SimVfs>) -> Options {
    Options { vfs: sim.clone(), ..Options::tiny_for_tests() }
}

/// Every file under the store and its bytes.
fn files(sim: &SimVfs) -> BTreeMap<PathBuf, Vec<u8>> {
    sim.list_files().into_iter().map(|p| (p.clone(), sim.read_live(&p).unwrap())).collect()
}

fn names_with(sim: &SimVfs, ext: &str) -> Vec<PathBuf> {
    sim.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == ext)).collect()
}

fn create_with(sim: &Arc<SimVfs>, pairs: &[(&str, &str)]) -> Db {
    let db = Db::create(&dir(), &cred(), tiny(sim)).unwrap();
    for (k, v) in pairs {
        db.put(k.as_bytes(), v.as_bytes()).unwrap();
    }
    db
}

#[test]
fn create_refuses_an_existing_store_and_open_needs_one() {
    let sim = SimVfs::new();
    assert!(matches!(Db::open(&dir(), &cred(), tiny(&sim)), Err(Error::NotFound(_))));
    create_with(&sim, &[("a", "1")]).close().unwrap();
    assert!(matches!(Db::create(&dir(), &cred(), tiny(&sim)), Err(Error::AlreadyExists(_))));
    let db = Db::open(&dir(), &cred(), tiny(&sim)).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn wrong_key_leaves_every_file_untouched() {
    let sim = SimVfs::new();
    create_with(&sim, &[("a", "1"), ("b", "2")]).close().unwrap();
    let before = files(&sim);
    let wrong = Credential::passphrase("not the passphrase");
    assert!(matches!(Db::open(&dir(), &wrong, tiny(&sim)), Err(Error::WrongKey)));
    assert!(matches!(Db::verify(&dir(), &wrong, tiny(&sim)), Err(Error::WrongKey)));
    assert!(files(&sim) == before, "a failed unlock changed the store's files");
}

#[test]
fn second_writer_is_refused_but_read_only_open_is_not() {
    let sim = SimVfs::new();
    let db = create_with(&sim, &[("a", "1")]);
    assert!(matches!(Db::open(&dir(), &cred(), tiny(&sim)), Err(Error::Locked { .. })));
    let reader = Db::open(&dir(), &cred(), Options { read_only: true, ..tiny(&sim) }).unwrap();
    assert_eq!(reader.get(b"a").unwrap(), Some(b"1".to_vec()));
    drop(reader);
    db.close().unwrap();
    Db::open(&dir(), &cred(), tiny(&sim)).unwrap().close().unwrap();
}

#[test]
fn read_only_open_replays_the_wal_writes_nothing_and_refuses_writes() {
    let sim = SimVfs::new();
    let db = create_with(&sim, &[("a", "1"), ("b", "2")]);
    db.delete(b"a").unwrap();
    db.close().unwrap();
    let before = files(&sim);
    let ro = Db::open(&dir(), &cred(), Options { read_only: true, ..tiny(&sim) }).unwrap();
    assert_eq!(ro.get(b"a").unwrap(), None);
    assert_eq!(ro.get(b"b").unwrap(), Some(b"2".to_vec()));
    assert!(matches!(ro.put(b"c", b"3"), Err(Error::ReadOnly(_))));
    assert!(matches!(ro.flush(), Err(Error::ReadOnly(_))));
    let mut txn = ro.transaction();
    txn.put(b"c", b"3");
    assert!(matches!(txn.commit(), Err(Error::ReadOnly(_))));
    ro.close().unwrap();
    assert!(files(&sim) == before, "a read-only open changed the store's files");
}

#[test]
fn limits_are_checked_before_anything_is_written() {
    let sim = SimVfs::new();
    let options = Options { max_key_bytes: 8, max_value_bytes: 16, ..tiny(&sim) };
    let db = Db::create(&dir(), &cred(), options).unwrap();
    let seqno = db.stats().last_seqno;
    assert!(matches!(db.put(b"", b"v"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.put(b"123456789", b"v"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.put(b"k", &[0u8; 17]), Err(Error::InvalidArgument(_))));
    let mut batch = WriteBatch::new();
    batch.put(b"ok", b"v").delete(b"");
    assert!(matches!(db.write(batch), Err(Error::InvalidArgument(_))));
    assert_eq!(db.get(b"ok").unwrap(), None, "a rejected batch was partly applied");
    assert_eq!(db.stats().last_seqno, seqno);
    db.put(b"12345678", &[7u8; 16]).unwrap();
    assert_eq!(db.stats().last_seqno, seqno + 1);
}

#[test]
fn open_close_cycles_do_not_pile_up_wal_segments() {
    let sim = SimVfs::new();
    create_with(&sim, &[]).close().unwrap();
    for i in 0..20 {
        let db = Db::open(&dir(), &cred(), tiny(&sim)).unwrap();
        db.put(format!("k{i}").as_bytes(), b"v").unwrap();
        db.close().unwrap();
    }
    let wals = names_with(&sim, "wal");
    assert_eq!(wals.len(), 1, "WAL segments left: {wals:?}");
    let db = Db::open(&dir(), &cred(), tiny(&sim)).unwrap();
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 20);
}

#[test]
fn mid_log_corruption_names_the_file_and_offset() {
    let sim = SimVfs::new();
    let db = create_with(&sim, &[]);
    for i in 0..20 {
        db.put(format!("key{i:02}").as_bytes(), &[b'v'; 40]).unwrap();
    }
    db.close().unwrap();
    let wal = names_with(&sim, "wal").pop().unwrap();
    let len = sim.read_live(&wal).unwrap().len() as u64;
    sim.corrupt_byte(&wal, len / 2, 0x40).unwrap();
    let wal_name = wal.file_name().unwrap().to_string_lossy().into_owned();
    match Db::open(&dir(), &cred(), tiny(&sim)) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, wal_name);
            assert!(reason.contains("verify"), "no hint in {reason:?}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let report = Db::verify(&dir(), &cred(), tiny(&sim)).unwrap();
    assert!(report.damaged.iter().any(|(f, _)| *f == wal_name), "{:?}", report.damaged);
}

#[test]
fn verify_reports_every_damaged_and_missing_table() {
    let sim = SimVfs::new();
    // No background compaction: the two flushed tables must stay two tables.
    let db = Db::create(&dir(), &cred(), Options { background_compaction: false, ..tiny(&sim) }).unwrap();
    for round in 0..2 {
        for i in 0..30 {
            db.put(format!("r{round}k{i:02}").as_bytes(), &[b'v'; 30]).unwrap();
        }
        db.flush().unwrap();
    }
    db.close().unwrap();
    let clean = Db::verify(&dir(), &cred(), tiny(&sim)).unwrap();
    assert!(clean.is_ok(), "{:?}", clean.damaged);
    assert!(clean.entries_checked >= 60);
    let tables = names_with(&sim, "sst");
    assert!(tables.len() >= 2, "{tables:?}");
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let len = sim.read_live(&tables[0]).unwrap().len() as u64;
    sim.corrupt_byte(&tables[0], len / 3, 0x01).unwrap();
    sim.remove_file(&tables[1]).unwrap();
    let report = Db::verify(&dir(), &cred(), tiny(&sim)).unwrap();
    let damaged: Vec<&str> = report.damaged.iter().map(|(f, _)| f.as_str()).collect();
    assert!(damaged.contains(&name(&tables[0]).as_str()), "{:?}", report.damaged);
    assert!(damaged.contains(&name(&tables[1]).as_str()), "{:?}", report.damaged);
}

#[test]
fn a_failed_sync_stops_writes_but_not_reads() {
    let sim = SimVfs::new();
    let db = Db::create(&dir(), &cred(), Options { sync: SyncPolicy::EveryCommit, ..tiny(&sim) }).unwrap();
    db.put(b"a", b"1").unwrap();
    sim.fail_sync_after(0);
    assert!(db.put(b"b", b"2").is_err());
    sim.clear_faults();
    assert!(matches!(db.put(b"c", b"3"), Err(Error::ReadOnly(_))));
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"b").unwrap(), None, "a batch whose sync failed became visible");
}

fn big_batch(tag: u8, n: usize) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in 0..n {
        batch.put([tag, (i >> 8) as u8, i as u8], [tag; 40]);
    }
    batch
}

/// Large batches start their sync on a thread of their own (`sync_overlap_min_ops`);
/// with two writers mixing large and small batches, every acknowledged batch is
/// visible at once and survives a crash right after the last acknowledgement.
#[test]
fn overlapped_syncs_make_every_acknowledged_batch_durable() {
    let sim = SimVfs::new();
    let options = Options {
        sync: SyncPolicy::EveryCommit,
        memtable_size_bytes: 256 << 10,
        sync_overlap_min_ops: 16,
        ..tiny(&sim)
    };
    let db = Arc::new(Db::create(&dir(), &cred(), options.clone()).unwrap());
    let writers: Vec<_> = (0..2u8)
        .map(|w| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for round in 0..20u8 {
                    let tag = w * 100 + round;
                    let n = if round % 2 == 0 { 300 } else { 3 };
                    db.write(big_batch(tag, n)).unwrap();
                    let last = [tag, ((n - 1) >> 8) as u8, (n - 1) as u8];
                    assert_eq!(db.get(&last).unwrap(), Some(vec![tag; 40]), "batch {tag} not visible once acknowledged");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    sim.crash();
    drop(db);
    let db = Db::open(&dir(), &cred(), options).unwrap();
    for w in 0..2u8 {
        for round in 0..20u8 {
            let tag = w * 100 + round;
            let n = if round % 2 == 0 { 300 } else { 3 };
            for i in 0..n {
                let key = [tag, (i >> 8) as u8, i as u8];
                assert_eq!(db.get(&key).unwrap(), Some(vec![tag; 40]), "batch {tag} lost op {i} in the crash");
            }
        }
    }
}

/// A sync started on its own thread that fails fails the batch that started it,
/// stops writes, and leaves the batch invisible, as a sync on the writer's
/// thread does.
#[test]
fn a_failed_overlapped_sync_stops_writes_but_not_reads() {
    let sim = SimVfs::new();
    let options = Options { sync: SyncPolicy::EveryCommit, sync_overlap_min_ops: 16, ..tiny(&sim) };
    let db = Db::create(&dir(), &cred(), options).unwrap();
    db.write(big_batch(1, 100)).unwrap();
    sim.fail_sync_after(0);
    assert!(db.write(big_batch(2, 100)).is_err());
    sim.clear_faults();
    assert!(matches!(db.put(b"c", b"3"), Err(Error::ReadOnly(_))));
    assert_eq!(db.get(&[1, 0, 99]).unwrap(), Some(vec![1; 40]));
    for i in [0usize, 50, 99] {
        assert_eq!(db.get(&[2, 0, i as u8]).unwrap(), None, "a batch whose sync failed became visible");
    }
}

#[test]
fn periodic_policy_syncs_in_the_background() {
    let sim = SimVfs::new();
    let options = Options { sync: SyncPolicy::Periodic { interval_ms: 5 }, ..tiny(&sim) };
    let db = Db::create(&dir(), &cred(), options.clone()).unwrap();
    db.put(b"a", b"1").unwrap();
    let wal = names_with(&sim, "wal").pop().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sim.read_durable(&wal).unwrap() != sim.read_live(&wal).unwrap() {
        assert!(std::time::Instant::now() < deadline, "the WAL was never synced");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    sim.crash();
    drop(db);
    let db = Db::open(&dir(), &cred(), options).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn snapshots_and_iterators_keep_their_view_across_flush_and_compaction() {
    let sim = SimVfs::new();
    let db = create_with(&sim, &[]);
    for i in 0..200 {
        db.put(format!("k{i:03}").as_bytes(), b"old").unwrap();
    }
    let snap = db.snapshot();
    let iter = db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap();
    for i in 0..200 {
        if i % 2 == 0 {
            db.delete(format!("k{i:03}").as_bytes()).unwrap();
        } else {
            db.put(format!("k{i:03}").as_bytes(), b"new").unwrap();
        }
    }
    db.compact_range(None, None).unwrap();
    let old: Vec<_> = iter.map(|r| r.unwrap()).collect();
    assert_eq!(old.len(), 200);
    assert!(old.iter().all(|(_, v)| v == b"old"));
    let at_snap: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded, true, Some(&snap)).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(at_snap.len(), 200);
    assert_eq!(at_snap[0].0, b"k199");
    assert_eq!(db.get_at(b"k000", &snap).unwrap(), Some(b"old".to_vec()));
    assert_eq!(db.get(b"k000").unwrap(), None);
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 100);
    let stats = db.stats();
    assert!(stats.files_per_level.iter().sum::<usize>() > 0 && stats.disk_bytes > 0, "{stats:?}");
    drop(db);
    // The snapshot may outlive its store.
    drop(snap);
}

#[test]
fn concurrent_batches_are_atomic_to_readers() {
    let sim = SimVfs::new();
    let db = Arc::new(Db::create(&dir(), &cred(), tiny(&sim)).unwrap());
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let v = format!("w{w}i{i}");
                    let mut batch = WriteBatch::new();
                    batch.put(format!("a{}", i % 7), &v).put(format!("b{}", i % 7), &v);
                    db.write(batch).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let db = db.clone();
        std::thread::spawn(move || {
            for _ in 0..300 {
                let snap = db.snapshot();
                for k in 0..7 {
                    let a = db.get_at(format!("a{k}").as_bytes(), &snap).unwrap();
                    let b = db.get_at(format!("b{k}").as_bytes(), &snap).unwrap();
                    assert_eq!(a, b, "a batch was seen half-applied");
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    assert_eq!(db.stats().last_seqno, 3 * 300 * 2);
}

#[test]
fn manual_compactions_cut_into_parts_read_the_same() {
    let scan = |db: &Db, snap: Option<&crate::Snapshot>| -> Vec<(Vec<u8>, Vec<u8>)> {
        db.range(Bound::Unbounded, Bound::Unbounded, false, snap).unwrap().map(|r| r.unwrap()).collect()
    };
    let mut results = Vec::new();
    for parts in [1, 4] {
        let sim = SimVfs::new();
        let options = Options { background_compaction: false, max_subcompactions: parts, ..tiny(&sim) };
        let db = Db::create(&dir(), &cred(), options).unwrap();
        let mut snaps = Vec::new();
        for round in 0..4u32 {
            for i in 0..600u32 {
                let k = format!("k{:05}", (i * 7919 + round * 13) % 1000);
                if (i + round) % 5 == 0 {
                    db.delete(k.as_bytes()).unwrap();
                } else {
                    db.put(k.as_bytes(), format!("r{round}-{i}-{}", "v".repeat((i % 40) as usize)).as_bytes()).unwrap();
                }
            }
            db.flush().unwrap();
            snaps.push(db.snapshot());
        }
        snaps.remove(1);
        db.compact_range(None, None).unwrap();
        let stats = db.stats();
        assert_eq!(stats.files_per_level.first(), Some(&0), "{parts} parts: {stats:?}");
        let views: Vec<_> = std::iter::once(scan(&db, None)).chain(snaps.iter().map(|s| scan(&db, Some(s)))).collect();
        let tables: usize = stats.files_per_level.iter().sum();
        results.push((views, tables));
    }
    let (one, split) = (&results[0], &results[1]);
    assert_eq!(one.0, split.0, "the same data at the latest state and at every snapshot");
    assert!(split.1 > one.1, "4 parts write more (smaller) tables: {} vs {}", split.1, one.1);
}

/// The thread-count options refuse 0 and more than 16, naming the option.
#[test]
fn thread_counts_out_of_range_are_refused() {
    type Set = fn(&mut Options, usize);
    let options: [(&str, Set); 2] = [
        ("max_subcompactions", |o, n| o.max_subcompactions = n),
        ("memtable_insert_threads", |o, n| o.memtable_insert_threads = n),
    ];
    for (name, set) in options {
        for bad in [0, 17] {
            let sim = SimVfs::new();
            let mut o = tiny(&sim);
            set(&mut o, bad);
            let e = Db::create(&dir(), &cred(), o).unwrap_err();
            assert!(matches!(&e, Error::InvalidArgument(m) if m.contains(name)), "{name} = {bad}: {e:?}");
        }
    }
    assert!((1..=4).contains(&Options::default().max_subcompactions));
    assert!((1..=4).contains(&Options::default().memtable_insert_threads));
}

/// A batch large enough to be inserted by several threads (with a reader
/// scanning the whole time) leaves the same store as one thread: repeated keys
/// resolve to the batch's last operation on them, deletes shadow earlier puts
/// of the same batch and of earlier batches, and nothing of a batch is seen
/// before its write returns.
#[test]
fn parallel_memtable_insert_matches_one_thread() {
    let mut results = Vec::new();
    for threads in [1, 4] {
        let sim = SimVfs::new();
        let options = Options { memtable_size_bytes: 16 << 20, memtable_insert_threads: threads, ..tiny(&sim) };
        let db = Arc::new(Db::create(&dir(), &cred(), options).unwrap());
        let mut first = WriteBatch::new();
        for i in 0..3000u32 {
            first.put((i * 7).to_be_bytes(), b"old");
        }
        db.write(first).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().count();
                    assert!(n == 3000 || n > 12_000, "a scan saw part of a batch: {n} pairs");
                }
            })
        };
        let mut batch = WriteBatch::new();
        for i in 0..40_000u32 {
            let key = (i % 15_000).to_be_bytes();
            if i % 11 == 0 {
                batch.delete(key);
            } else {
                batch.put(key, i.to_le_bytes());
            }
        }
        db.write(batch).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
        let all: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(|r| r.unwrap()).collect();
        results.push(all);
    }
    let mut expected = BTreeMap::new();
    for i in 0..3000u32 {
        expected.insert((i * 7).to_be_bytes().to_vec(), b"old".to_vec());
    }
    for i in 0..40_000u32 {
        let key = (i % 15_000).to_be_bytes().to_vec();
        if i % 11 == 0 {
            expected.remove(&key);
        } else {
            expected.insert(key, i.to_le_bytes().to_vec());
        }
    }
    let expected: Vec<_> = expected.into_iter().collect();
    assert_eq!(results[0], expected, "one thread");
    assert_eq!(results[1], expected, "four threads");
}

/// `next_ref` lends out the same pairs as `next` copies, in both directions,
/// within bounds, at a snapshot and across memtables and tables of several
/// levels, while the iterator reuses its buffers from pair to pair; the two
/// may be mixed on one iterator.
#[test]
fn borrowed_pairs_match_owned_pairs_and_the_model() {
    use rand::{Rng, SeedableRng};
    let sim = SimVfs::new();
    let db = Db::create(&dir(), &cred(), tiny(&sim)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snapshot = None;
    for round in 0..6 {
        for _ in 0..300 {
            let k = format!("k{:03}", rng.gen_range(0..200)).into_bytes();
            if rng.gen_ratio(1, 4) {
                db.delete(&k).unwrap();
                model.remove(&k);
            } else {
                // Values of varied length, so a reused buffer that kept a longer one shows.
                let v = vec![b'a' + (round as u8); rng.gen_range(0..40)];
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        match round {
            1 => db.flush().unwrap(),
            2 => db.compact_range(None, None).unwrap(),
            3 => snapshot = Some((db.snapshot(), model.clone())),
            _ => {}
        }
    }
    let stats = db.stats();
    assert!(stats.files_per_level.iter().skip(1).any(|&n| n > 0) && stats.memtable_bytes > 0, "{stats:?}");
    let key = |i: u32| format!("k{i:03}").into_bytes();
    let bounds = [
        (Bound::Unbounded, Bound::Unbounded),
        (Bound::Included(key(50)), Bound::Excluded(key(120))),
        (Bound::Excluded(key(7)), Bound::Included(key(8))),
        (Bound::Included(key(199)), Bound::Unbounded),
    ];
    let (snap, snap_model) = snapshot.unwrap();
    for (start, end) in &bounds {
        for reverse in [false, true] {
            for (at, m) in [(None, &model), (Some(&snap), &snap_model)] {
                let mut want: Vec<(Vec<u8>, Vec<u8>)> =
                    m.range::<Vec<u8>, _>((start.clone(), end.clone())).map(|(k, v)| (k.clone(), v.clone())).collect();
                if reverse {
                    want.reverse();
                }
                let open = || db.range(start.as_ref().map(|b| b.as_slice()), end.as_ref().map(|b| b.as_slice()), reverse, at).unwrap();
                let mut borrowed = Vec::new();
                let mut it = open();
                while let Some(pair) = it.next_ref() {
                    let (k, v) = pair.unwrap();
                    borrowed.push((k.to_vec(), v.to_vec()));
                }
                assert!(it.next_ref().is_none() && it.next().is_none(), "an ended iterator stays ended");
                assert_eq!(borrowed, want, "{start:?}..{end:?} reverse={reverse} snapshot={}", at.is_some());
                let mut mixed = Vec::new();
                let mut it = open();
                for i in 0.. {
                    let pair = if i % 2 == 0 { it.next() } else { it.next_ref().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))) };
                    let Some(pair) = pair else { break };
                    mixed.push(pair.unwrap());
                }
                assert_eq!(mixed, want, "mixed, {start:?}..{end:?} reverse={reverse}");
            }
        }
    }
}

/// Two listed segments, the first synced whole before the second was created:
/// the first replaced by an earlier, shorter copy of itself leaves a seqno gap
/// the manifest reveals (it records where the second starts); the segments put
/// back in full open with every write.
#[test]
fn a_segment_replaced_by_its_earlier_copy_shows_a_seqno_gap() {
    let sim = SimVfs::new();
    let options = Options { background_compaction: false, memtable_size_bytes: 1 << 20, ..tiny(&sim) };
    let db = Db::create(&dir(), &cred(), options.clone()).unwrap();
    db.put(b"a", b"1").unwrap();
    let first = names_with(&sim, "wal");
    assert_eq!(first.len(), 1);
    let early = sim.read_live(&first[0]).unwrap();
    db.put(b"b", b"2").unwrap();
    {
        // A memtable switch whose flush has not run yet: both segments listed.
        let mut writer = db.inner.pipeline.writer.lock();
        db.inner.switch_memtable(&mut writer).unwrap();
    }
    db.put(b"c", b"3").unwrap();
    assert_eq!(names_with(&sim, "wal").len(), 2);
    sim.crash();
    drop(db);
    let full = sim.read_live(&first[0]).unwrap();
    let replace = |bytes: &[u8]| {
        sim.remove_file(&first[0]).unwrap();
        let f = sim.create(&first[0]).unwrap();
        f.append(bytes).unwrap();
        f.sync().unwrap();
    };
    replace(&early);
    let name = first[0].file_name().unwrap().to_string_lossy().into_owned();
    for read_only in [true, false] {
        match Db::open(&dir(), &cred(), Options { read_only, ..options.clone() }) {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, name);
                assert!(reason.contains("writes are missing"), "{reason}");
            }
            Err(e) => panic!("{e}"),
            Ok(db) => panic!("read_only={read_only}: an earlier copy of a segment was accepted (b = {:?})", db.get(b"b").unwrap()),
        }
    }
    replace(&full);
    let db = Db::open(&dir(), &cred(), options).unwrap();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(db.get(k.as_bytes()).unwrap().as_deref(), Some(v.as_bytes()), "{k}");
    }
}
