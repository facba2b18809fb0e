//! Criterion benches of merge operators: incrementing a u64 counter with one
//! merge operand (`Db::merge`, no read) against read-modify-write (`get`, add,
//! `put`), over 10,000 counters whose values were flushed to SSTables; and
//! what the merge costs its readers: a `get` of a counter holding 1, 10 or 100
//! operands in the memtable above its value in a table. The WAL is not synced
//! (an fsync per write would hide the difference in both).

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synapsed_benches::data::Rng;
use synapsed_storage::{Argon2Params, Credential, Db, Options, SyncPolicy, U64AddOperator, WriteBatch, DEFAULT_KEYSPACE};

const COUNTERS: u64 = 10_000;

fn counter_key(i: u64) -> [u8; 16] {
    let mut k = *b"counter:00000000";
    k[8..].copy_from_slice(format!("{i:08}").as_bytes());
    k
}

/// A store of `COUNTERS` counters at 0, flushed to SSTables.
fn counters() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .with_sync(SyncPolicy::Never)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_insecure_kdf_for_tests(true)
        .with_merge_operator(DEFAULT_KEYSPACE, Arc::new(U64AddOperator));
    let db = Db::create(&dir.path().join("db"), &Credential::passphrase("bench"), options).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..COUNTERS {
        batch.put(counter_key(i), U64AddOperator::encode(0));
    }
    db.write(batch).unwrap();
    db.flush().unwrap();
    (dir, db)
}

fn increment(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_increment");
    g.throughput(Throughput::Elements(1));
    let one = U64AddOperator::encode(1);
    {
        let (_dir, db) = counters();
        let mut rng = Rng::new(7);
        g.bench_function("merge", |b| b.iter(|| db.merge(&counter_key(rng.below(COUNTERS)), &one).unwrap()));
        db.close().unwrap();
    }
    {
        let (_dir, db) = counters();
        let mut rng = Rng::new(7);
        g.bench_function("get_then_put", |b| {
            b.iter(|| {
                let key = counter_key(rng.below(COUNTERS));
                let n = db.get(&key).unwrap().map_or(0, |v| U64AddOperator::decode(&v).unwrap());
                db.put(&key, &U64AddOperator::encode(n + 1)).unwrap();
            })
        });
        db.close().unwrap();
    }
    g.finish();
}

fn read_folded(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_get");
    g.throughput(Throughput::Elements(1));
    let (_dir, db) = counters();
    let one = U64AddOperator::encode(1);
    for (round, operands) in [0u64, 1, 10, 100].into_iter().enumerate() {
        // Counters 100 * round .. 100 * (round + 1) get `operands` operands each.
        let base = round as u64 * 100;
        for i in base..base + 100 {
            for _ in 0..operands {
                db.merge(&counter_key(i), &one).unwrap();
            }
        }
        let mut rng = Rng::new(3);
        g.bench_function(format!("{operands}_operands"), |b| {
            b.iter(|| {
                let v = db.get(&counter_key(base + rng.below(100))).unwrap().unwrap();
                assert_eq!(U64AddOperator::decode(&v).unwrap(), operands);
            })
        });
    }
    g.finish();
    db.close().unwrap();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = increment, read_folded }
criterion_main!(benches);
