//! A batch at least `Options::ingest_min_bytes` large is written straight to a
//! level-0 table: it reads back like any batch (newest version wins, in-batch
//! duplicates and deletes included), snapshots taken before it do not see it,
//! later writes shadow it, it survives power loss once acknowledged, and a
//! reader never sees a later write without it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use synapsed_storage::{Db, Options, SimVfs, SyncPolicy, WriteBatch};

mod common;
use common::cred;

const DIR: &str = "/ingest";

fn options(sim: &Arc<SimVfs>, background: bool) -> Options {
    Options::tiny_for_tests()
        .with_vfs(sim.clone())
        .with_sync(SyncPolicy::EveryCommit)
        .with_background_compaction(background)
        .with_memtable_size_bytes(64 << 10)
        .with_ingest_min_bytes(16 << 10)
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: usize, round: &str) -> Vec<u8> {
    format!("{round} value of {i} {}", "v".repeat(i % 50)).into_bytes()
}

/// Every key of `model` reads back its value, and a full scan returns exactly `model`.
fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, ctx: &str) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{ctx}: {}", String::from_utf8_lossy(k));
    }
    let scanned: BTreeMap<Vec<u8>, Vec<u8>> = db.scan_prefix(b"key").unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(scanned.len(), model.len(), "{ctx}: scan length");
    assert!(scanned == *model, "{ctx}: scan differs from the model");
}

#[test]
fn a_large_batch_becomes_a_table_and_reads_like_any_batch() {
    for background in [false, true] {
        let sim = SimVfs::with_seed(7);
        let db = Db::create(Path::new(DIR), &cred(), options(&sim, background)).unwrap();
        let mut model = BTreeMap::new();
        // Older data in a table and in the memtable.
        for i in 0..300 {
            db.put(&key(i), &value(i, "old")).unwrap();
            model.insert(key(i), value(i, "old"));
        }
        db.flush().unwrap();
        for i in 300..400 {
            db.put(&key(i), &value(i, "old")).unwrap();
            model.insert(key(i), value(i, "old"));
        }
        let before = db.snapshot();
        let old_model = model.clone();

        // The large batch: overwrites, deletes, new keys, and keys written twice
        // inside the batch (the later operation wins).
        let mut batch = WriteBatch::new();
        for i in (0..400).step_by(2) {
            batch.put(key(i), value(i, "ingested"));
            model.insert(key(i), value(i, "ingested"));
        }
        for i in (1..400).step_by(7) {
            batch.delete(key(i));
            model.remove(&key(i));
        }
        for i in 400..600 {
            batch.put(key(i), value(i, "first"));
            batch.put(key(i), value(i, "second"));
            model.insert(key(i), value(i, "second"));
        }
        for i in 600..650 {
            batch.put(key(i), value(i, "gone"));
            batch.delete(key(i));
        }
        for i in 650..700 {
            batch.delete(key(i));
            batch.put(key(i), value(i, "back"));
            model.insert(key(i), value(i, "back"));
        }
        let ingests = db.stats().ingests;
        let seqno = db.write(batch).unwrap();
        assert_eq!(db.stats().ingests, ingests + 1, "background {background}: the batch did not go to a table");
        assert_eq!(db.stats().last_seqno, seqno);
        check(&db, &model, &format!("background {background}, after the ingest"));

        // A snapshot from before the batch sees none of it.
        for (k, v) in &old_model {
            assert_eq!(db.get_at(k, &before).unwrap().as_ref(), Some(v), "snapshot sees the batch");
        }
        assert_eq!(db.get_at(&key(500), &before).unwrap(), None);
        drop(before);

        // Later writes shadow the table.
        for i in (0..700).step_by(3) {
            db.put(&key(i), &value(i, "newer")).unwrap();
            model.insert(key(i), value(i, "newer"));
        }
        db.delete(&key(402)).unwrap();
        model.remove(&key(402));
        check(&db, &model, "after later writes");
        db.compact_range(None, None).unwrap();
        check(&db, &model, "after compaction");

        // Power loss right after: everything acknowledged is there.
        let extra = WriteBatch::new();
        db.write(extra).unwrap();
        std::mem::forget(db);
        sim.crash();
        let db = Db::open(Path::new(DIR), &cred(), options(&sim, background)).unwrap();
        check(&db, &model, "after power loss");
        // New writes after reopen get seqnos above the ingested batch's.
        db.put(&key(500), b"after reopen").unwrap();
        assert_eq!(db.get(&key(500)).unwrap().as_deref(), Some(&b"after reopen"[..]));
        db.close().unwrap();
        let report = Db::verify(Path::new(DIR), &cred(), options(&sim, background).with_read_only(true)).unwrap();
        assert!(report.is_ok(), "{:?}", report.damaged);
    }
}

#[test]
fn an_acknowledged_ingest_survives_power_loss_and_an_unacknowledged_one_is_all_or_nothing() {
    let (mut acknowledged, mut failed) = (0, 0);
    for fail_after in 0..12 {
        let sim = SimVfs::with_seed(fail_after);
        let db = Db::create(Path::new(DIR), &cred(), options(&sim, false)).unwrap();
        for i in 0..50 {
            db.put(&key(i), &value(i, "old")).unwrap();
        }
        let mut batch = WriteBatch::new();
        for i in 0..400 {
            batch.put(key(i), value(i, "ingested"));
        }
        sim.fail_sync_after(fail_after);
        let outcome = db.write(batch);
        std::mem::forget(db);
        sim.crash();
        sim.clear_faults();
        let db = Db::open(Path::new(DIR), &cred(), options(&sim, false)).unwrap();
        let present = (0..400).filter(|&i| db.get(&key(i)).unwrap() == Some(value(i, "ingested"))).count();
        if outcome.is_ok() {
            acknowledged += 1;
            assert_eq!(present, 400, "fail after {fail_after}: acknowledged ingest lost after power loss");
        } else {
            failed += 1;
            assert!(present == 0 || present == 400, "fail after {fail_after}: part of a batch: {present} of 400");
        }
        // The older writes are there either way (they were acknowledged).
        for i in 0..50 {
            let got = db.get(&key(i)).unwrap().unwrap();
            assert!(got == value(i, "old") || got == value(i, "ingested"), "fail after {fail_after}: key {i}");
        }
        db.close().unwrap();
    }
    assert!(acknowledged > 0 && failed > 0, "acknowledged {acknowledged}, failed {failed}: a fault never fired or always did");
}

#[test]
fn a_reader_never_sees_a_later_write_without_the_ingested_batch() {
    let sim = SimVfs::with_seed(3);
    let db = Arc::new(Db::create(Path::new(DIR), &cred(), options(&sim, true)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut checks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // One consistent view: the marker written after batch r implies
                // batch r (or a later one, written before the next marker).
                let snapshot = db.snapshot();
                if let Some(marker) = db.get_at(b"marker", &snapshot).unwrap() {
                    let marker: u32 = String::from_utf8(marker).unwrap().trim_start_matches("round").parse().unwrap();
                    for i in (0..300).step_by(37) {
                        let got = String::from_utf8(db.get_at(&key(i), &snapshot).unwrap().unwrap()).unwrap();
                        let round: u32 = got.split(' ').next().unwrap().trim_start_matches("round").parse().unwrap();
                        assert!(round == marker || round == marker + 1, "marker {marker} visible beside batch {round}");
                    }
                    checks += 1;
                }
            }
            checks
        })
    };
    for round in 0..30 {
        let name = format!("round{round}");
        let mut batch = WriteBatch::new();
        for i in 0..300 {
            batch.put(key(i), value(i, &name));
        }
        db.write(batch).unwrap();
        db.put(b"marker", name.as_bytes()).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let checks = reader.join().unwrap();
    assert!(checks > 0, "the reader never saw a marker");
    assert!(db.stats().ingests >= 30);
}
