//! What the async API costs per call next to the blocking one: the same get
//! (a block-cache hit) and the same non-durable put, called directly on `Db`
//! and awaited through `AsyncDb` (a hop to tokio's blocking pool and back) on a
//! multi-threaded runtime, awaited in a loop inside a task. Then the same
//! for the document store (a get by `_id`, an indexed query returning ten
//! documents) and the blob store's throughput (a 16 MiB blob written and read
//! whole through the blocking writer and reader, and streamed through
//! `stream_write` / `stream_read`).

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, Criterion};
use criterion::Throughput;
use serde_json::json;
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Argon2Params, AsyncBlobStore, AsyncDb, Credential, Db, Dispatch, DocumentStore, Options, Storage, SyncPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOCS: u64 = 2_000;
const BLOB: usize = 16 << 20;

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
    for i in 0..DOCS {
        db.docs().put("people", &json!({"_id": format!("p{i:05}"), "age": i % 100})).unwrap();
    }
    db.docs().create_index("people", &IndexSpec::ordered("age")).unwrap();
    db.flush().unwrap();
    db
}

fn doc_id(i: u64) -> String {
    format!("p{:05}", i % DOCS)
}

/// Ten of the twenty people of one age, through the `age` index.
fn age_query(i: u64) -> Query {
    Query::new(json!({"age": i % 100})).with_limit(10)
}

/// Incompressible bytes, distinct for each `seed`.
fn blob_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..BLOB)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
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
    group.bench_function("doc_get/blocking", |b| {
        b.iter(|| {
            i += 7919;
            db.docs().get("people", &doc_id(i)).unwrap()
        })
    });
    group.bench_function("doc_query/blocking", |b| {
        b.iter(|| {
            i += 7919;
            db.docs().query("people", &age_query(i)).unwrap()
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
        group.bench_function(format!("doc_get/async/{name}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for n in 0..iters {
                        std::hint::black_box(handle.get_document("people", &doc_id(n * 7919)).await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
        group.bench_function(format!("doc_query/async/{name}"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for n in 0..iters {
                        std::hint::black_box(handle.query("people", &age_query(n * 7919)).await.unwrap());
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();

    // Blob throughput: a new blob of distinct bytes per iteration (no chunk is
    // deduplicated), written whole in 1 MiB pieces, and a 16 MiB blob read whole.
    let mut group = c.benchmark_group("async_blob");
    group.sample_size(10).throughput(Throughput::Bytes(BLOB as u64));
    let db = store.blocking();
    let mut seed = 0u64;
    let mut next = || {
        seed += 1;
        blob_bytes(seed)
    };
    group.bench_function("write/blocking", |b| {
        b.iter_batched(
            &mut next,
            |data| {
                let blobs = db.blobs().unwrap();
                let mut writer = blobs.writer(b"bench").unwrap();
                for piece in data.chunks(1 << 20) {
                    std::io::Write::write_all(&mut writer, piece).unwrap();
                }
                writer.finish().unwrap()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("write/async", |b| {
        b.iter_batched(
            &mut next,
            |data| {
                runtime.block_on(async {
                    let mut writer = store.stream_write(b"bench").await.unwrap();
                    for piece in data.chunks(1 << 20) {
                        writer.write_all(piece).await.unwrap();
                    }
                    writer.finish().await.unwrap()
                })
            },
            criterion::BatchSize::PerIteration,
        )
    });
    db.blobs().unwrap().put(b"read", &mut &next()[..]).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    group.bench_function("read/blocking", |b| {
        b.iter(|| {
            let mut reader = db.blobs().unwrap().reader(b"read").unwrap().unwrap();
            while std::io::Read::read(&mut reader, &mut buf).unwrap() > 0 {}
        })
    });
    group.bench_function("read/async", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut reader = store.stream_read(b"read").await.unwrap().unwrap();
                while reader.read(&mut buf).await.unwrap() > 0 {}
                reader.close().await;
            })
        })
    });
    group.finish();
    runtime.block_on(store.close()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
