//! Criterion benches of the engine's hot paths through its public API: single
//! puts (durable and not), point reads (block-cache hit, block-cache miss, absent
//! key), batch writes, prefix scans and cursor seeks. Each read bench first flushes its data so
//! that reads go to SSTables, not the memtable, which is what they mean to measure.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use synapsed_benches::data::{Rng, Workload};
use synapsed_storage::{Argon2Params, Credential, Db, IterOptions, Options, SyncPolicy, WriteBatch};

/// Keys loaded before the read benches.
const LOADED: u64 = 50_000;

fn options(sync: SyncPolicy, block_cache_bytes: usize) -> Options {
    Options::default()
        .with_sync(sync)
        .with_block_cache_bytes(block_cache_bytes)
        // Unlocking cost is not what these benches measure.
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_insecure_kdf_for_tests(true)
}

fn create(dir: &tempfile::TempDir, options: Options) -> Db {
    Db::create(&dir.path().join("db"), &Credential::passphrase("bench"), options).unwrap()
}

/// A store holding keys `0..LOADED` of `w`, flushed to SSTables.
fn loaded(w: &Workload, block_cache_bytes: usize) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir, options(SyncPolicy::Never, block_cache_bytes));
    let mut batch = WriteBatch::new();
    for i in 0..LOADED {
        batch.put(w.key(i), w.value(i));
        if batch.len() == 1000 {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    db.write(batch).unwrap();
    db.flush().unwrap();
    (dir, db)
}

fn put(c: &mut Criterion) {
    let w = Workload::new(1);
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    for (name, sync, time) in [("no_sync", SyncPolicy::Never, 3), ("durable", SyncPolicy::EveryCommit, 4)] {
        let dir = tempfile::tempdir().unwrap();
        let db = create(&dir, options(sync, 8 << 20));
        let mut i = 0u64;
        g.measurement_time(Duration::from_secs(time));
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                db.put(&w.key(i), &w.value(i)).unwrap();
            })
        });
        db.close().unwrap();
    }
    g.finish();
}

fn get(c: &mut Criterion) {
    let w = Workload::new(2);
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));

    let (_dir, db) = loaded(&w, 64 << 20);
    for i in 0..LOADED {
        assert!(db.get(&w.key(i)).unwrap().is_some(), "warming the block cache");
    }
    let mut rng = Rng::new(1);
    g.bench_function("block_cache_hit", |b| {
        b.iter(|| {
            let i = rng.below(LOADED);
            let v = db.get(&w.key(i)).unwrap();
            assert_eq!(v.as_deref(), Some(&w.value(i)[..]));
        })
    });
    let absent = Workload::new(3);
    g.bench_function("absent_key", |b| {
        b.iter(|| {
            let v = db.get(&absent.key(rng.next_u64())).unwrap();
            assert!(v.is_none());
        })
    });
    let before = db.stats();
    drop(db);

    // No block cache: every lookup reads, decrypts and decompresses its block
    // (from the OS page cache; the bench does not drop that).
    let (_dir2, db) = loaded(&w, 0);
    g.bench_function("block_cache_miss", |b| {
        b.iter(|| {
            let i = rng.below(LOADED);
            let v = db.get(&w.key(i)).unwrap();
            assert_eq!(v.as_deref(), Some(&w.value(i)[..]));
        })
    });
    g.finish();
    assert!(before.block_cache_hits > 0, "the hit bench must have hit the cache: {before:?}");
}

fn batch_write(c: &mut Criterion) {
    const OPS: u64 = 100;
    let w = Workload::new(4);
    let mut g = c.benchmark_group("batch_write_100");
    g.throughput(Throughput::Elements(OPS));
    for (name, sync) in [("no_sync", SyncPolicy::Never), ("durable", SyncPolicy::EveryCommit)] {
        let dir = tempfile::tempdir().unwrap();
        let db = create(&dir, options(sync, 8 << 20));
        let mut next = 0u64;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mut batch = WriteBatch::new();
                    for i in next..next + OPS {
                        batch.put(w.key(i), w.value(i));
                    }
                    next += OPS;
                    batch
                },
                |batch| db.write(batch).unwrap(),
                BatchSize::SmallInput,
            )
        });
        db.close().unwrap();
    }
    g.finish();
}

fn prefix_scan(c: &mut Criterion) {
    const PREFIXES: u64 = 200;
    const PER_PREFIX: u64 = 100;
    let w = Workload::new(5);
    let dir = tempfile::tempdir().unwrap();
    let db = create(&dir, options(SyncPolicy::Never, 64 << 20));
    for p in 0..PREFIXES {
        let mut batch = WriteBatch::new();
        for j in 0..PER_PREFIX {
            let mut key = format!("user:{p:04}/").into_bytes();
            key.extend_from_slice(&w.key(p * PER_PREFIX + j)[..8]);
            batch.put(key, w.value(j));
        }
        db.write(batch).unwrap();
    }
    db.flush().unwrap();
    let mut rng = Rng::new(2);
    let mut g = c.benchmark_group("prefix_scan");
    g.throughput(Throughput::Elements(PER_PREFIX));
    g.bench_function("100_keys", |b| {
        b.iter(|| {
            let prefix = format!("user:{:04}/", rng.below(PREFIXES));
            let mut n = 0;
            for item in db.scan_prefix(prefix.as_bytes()).unwrap() {
                let (k, _) = item.unwrap();
                assert!(k.starts_with(prefix.as_bytes()));
                n += 1;
            }
            assert_eq!(n, PER_PREFIX);
        })
    });
    g.finish();
}

/// Seeks of a [`synapsed_storage::Cursor`] to random loaded keys (block-cache
/// hits): the seek alone, the seek and ten steps on, the seek for the previous
/// key, and, as the baseline the cursor is built on, a one-pair `range` scan
/// from the same key.
fn cursor_seek(c: &mut Criterion) {
    let w = Workload::new(6);
    let mut g = c.benchmark_group("cursor_seek");
    g.throughput(Throughput::Elements(1));
    let (_dir, db) = loaded(&w, 64 << 20);
    for i in 0..LOADED {
        assert!(db.get(&w.key(i)).unwrap().is_some(), "warming the block cache");
    }
    let mut rng = Rng::new(3);
    let mut cursor = db.cursor(IterOptions::new()).unwrap();
    g.bench_function("seek", |b| {
        b.iter(|| {
            let i = rng.below(LOADED);
            cursor.seek(&w.key(i)).unwrap();
            assert_eq!(cursor.key(), Some(&w.key(i)[..]));
        })
    });
    g.bench_function("seek_for_prev", |b| {
        b.iter(|| {
            let i = rng.below(LOADED);
            cursor.seek_for_prev(&w.key(i)).unwrap();
            assert_eq!(cursor.key(), Some(&w.key(i)[..]));
        })
    });
    g.bench_function("seek_then_10_next", |b| {
        b.iter(|| {
            cursor.seek(&w.key(rng.below(LOADED))).unwrap();
            for _ in 0..10 {
                cursor.next().unwrap();
            }
        })
    });
    g.bench_function("range_first_pair", |b| {
        b.iter(|| {
            let i = rng.below(LOADED);
            let key = w.key(i);
            let mut it = db.range(std::ops::Bound::Included(&key[..]), std::ops::Bound::Unbounded, false, None).unwrap();
            let (k, _) = it.next_ref().unwrap().unwrap();
            assert_eq!(k, &key[..]);
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = put, get, batch_write, prefix_scan, cursor_seek }
criterion_main!(benches);
