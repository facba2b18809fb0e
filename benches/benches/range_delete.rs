//! Dropping 1M keys: one range delete against a point delete per key (in
//! durable batches of 1,000, the cheapest way to write them one by one). The
//! store holds the keys in tables (loaded, then flushed) and syncs every
//! commit. Criterion times the delete itself (until durable) and the delete
//! plus the flush that moves it out of the WAL; the bytes each writes (every
//! file append: WAL, tables, manifest) are counted through a wrapping `Vfs`
//! and printed once before the timings.
//!
//! `cargo bench -p synapsed-benches --bench range_delete`

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use synapsed_storage::vfs::{ForwardingVfs, WritableFile};
use synapsed_storage::{Argon2Params, Credential, Db, Options, StdVfs, SyncPolicy, Vfs, WriteBatch};

/// Keys dropped.
const KEYS: u64 = 1_000_000;
/// Point deletes per durable batch.
const DELETES_PER_BATCH: u64 = 1_000;

/// The real file system, counting every byte appended to any file.
#[derive(Debug, Default)]
struct CountingVfs {
    inner: StdVfs,
    appended: Arc<AtomicU64>,
}

struct CountingFile {
    inner: Box<dyn WritableFile>,
    appended: Arc<AtomicU64>,
}

impl WritableFile for CountingFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.appended.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.inner.append(data)
    }
    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn start_writeback(&self, offset: u64, len: u64) {
        self.inner.start_writeback(offset, len)
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.inner.preallocate(len)
    }
}

impl ForwardingVfs for CountingVfs {
    fn inner(&self) -> &dyn Vfs {
        &self.inner
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(CountingFile { inner: self.inner.create(path)?, appended: Arc::clone(&self.appended) }))
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(CountingFile { inner: self.inner.open_for_overwrite(path)?, appended: Arc::clone(&self.appended) }))
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("series/{:016}", i).into_bytes()
}

/// A durable store holding `KEYS` keys in tables, and its byte counter.
fn loaded() -> (tempfile::TempDir, Db, Arc<AtomicU64>) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(CountingVfs::default());
    let appended = Arc::clone(&vfs.appended);
    let options = Options::default()
        .with_vfs(vfs)
        .with_sync(SyncPolicy::EveryCommit)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_insecure_kdf_for_tests(true);
    let db = Db::create(&dir.path().join("db"), &Credential::passphrase("bench"), options).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..KEYS {
        batch.put(key(i), [b'v'; 32]);
        if batch.len() == 10_000 {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    db.write(batch).unwrap();
    db.flush().unwrap();
    (dir, db, appended)
}

fn range_delete(db: &Db) {
    db.delete_range(&key(0), &key(KEYS)).unwrap();
}

fn point_deletes(db: &Db) {
    let mut batch = WriteBatch::new();
    for i in 0..KEYS {
        batch.delete(key(i));
        if batch.len() as u64 == DELETES_PER_BATCH {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    db.write(batch).unwrap();
}

/// Time and bytes of `delete` on a fresh store, and of `delete` then a flush.
fn measure(delete: fn(&Db)) -> (Duration, u64, Duration, u64) {
    let (_dir, db, appended) = loaded();
    let before = appended.load(Ordering::Relaxed);
    let started = Instant::now();
    delete(&db);
    let write_time = started.elapsed();
    let write_bytes = appended.load(Ordering::Relaxed) - before;
    db.flush().unwrap();
    let flushed_time = started.elapsed();
    let flushed_bytes = appended.load(Ordering::Relaxed) - before;
    assert_eq!(db.get(&key(KEYS / 2)).unwrap(), None);
    db.close().unwrap();
    (write_time, write_bytes, flushed_time, flushed_bytes)
}

fn drop_a_million(c: &mut Criterion) {
    for (name, delete) in [("range_delete", range_delete as fn(&Db)), ("point_deletes", point_deletes as fn(&Db))] {
        let (write_time, write_bytes, flushed_time, flushed_bytes) = measure(delete);
        eprintln!(
            "{name}: {KEYS} keys: delete {write_time:?}, {write_bytes} bytes written; \
             with the flush after it {flushed_time:?}, {flushed_bytes} bytes written"
        );
    }
    let mut g = c.benchmark_group("drop_1m_keys");
    // Each iteration needs a freshly loaded store (seconds, untimed), so one
    // iteration per sample and one for the warm-up: criterion sizes both
    // from the timed part alone, which for the range delete is well under
    // a millisecond and would otherwise ask for thousands of loads.
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_nanos(1))
        .measurement_time(Duration::from_nanos(1));
    for (name, delete) in [("range_delete", range_delete as fn(&Db)), ("point_deletes", point_deletes as fn(&Db))] {
        for flush in [false, true] {
            let id = if flush { format!("{name}+flush") } else { name.to_string() };
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (_dir, db, _) = loaded();
                        let started = Instant::now();
                        delete(&db);
                        if flush {
                            db.flush().unwrap();
                        }
                        total += started.elapsed();
                        db.close().unwrap();
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, drop_a_million);
criterion_main!(benches);
