//! What the async API costs per call next to the blocking one: the same get
//! (a block-cache hit) and the same non-durable put, called directly on `Db`
//! and awaited through `AsyncDb` (a hop to tokio's blocking pool and back) on a
//! multi-threaded runtime, awaited in a loop inside a task.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion};
use synapsed_storage::{Argon2Params, AsyncDb, Credential, Db, Dispatch, Options, Storage, SyncPolicy};

const KEYS: u64 = 10_000;

fn key(i: u64) -> Vec<u8> {
    format!("key{:08}", i % KEYS).into_bytes()
}

fn store(dir: &tempfile::TempDir) -> Db {
    let options = Options::default()
        .with_sync(SyncPolicy::Never)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_insecure_kdf_for_tests(true);
    let db = Db::create(&dir.path().join("db"), &Credential::passphrase("bench"), options).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &[7u8; 100]).unwrap();
    }
    db.flush().unwrap();
    db
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = store(&dir);
    let mut group = c.benchmark_group("async_overhead");
    let mut i = 0u64;
    group.bench_function("get/blocking", |b| {
        b.iter(|| {
            i += 7919;
            db.get(&key(i)).unwrap()
        })
    });
    group.bench_function("put/blocking", |b| {
        b.iter(|| {
            i += 7919;
            db.put(&key(i), &[9u8; 100]).unwrap()
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    // Awaited one after another inside a task on the runtime, as an
    // application's handler would: through block_in_place (the default) and
    // through the blocking pool.
    let store = AsyncDb::new(db);
    for (name, handle) in [("block_in_place", store.clone()), ("spawn_blocking", store.clone().with_dispatch(Dispatch::SpawnBlocking))] {
        group.bench_function(format!("get/async/{name}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for n in 0..iters {
                        std::hint::black_box(handle.get(&key(n * 7919)).await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
        group.bench_function(format!("put/async/{name}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for n in 0..iters {
                        handle.put(&key(n * 7919), &[9u8; 100]).await.unwrap();
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
    runtime.block_on(store.close()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
