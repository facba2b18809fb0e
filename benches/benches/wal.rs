//! Criterion benches of the write-ahead log: appending a 150-byte record
//! (sealed and framed, not synced), committing it durably from one thread, and
//! group commit, where several threads append and wait for durability at once
//! and share fsyncs. With the `io-uring` feature each bench runs over both the
//! std file path and io_uring, so the two can be read side by side.

#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crypto::{FileKind, KeyManager, StdVfs, Vfs};
use wal::LogWriter;

const RECORD: [u8; 150] = [0x5a; 150];

/// The file systems to compare: always std, plus io_uring when built with it and
/// the kernel allows it (containers often refuse io_uring_setup).
fn backends() -> Vec<(&'static str, Arc<dyn Vfs>)> {
    #[allow(unused_mut)]
    let mut out: Vec<(&'static str, Arc<dyn Vfs>)> = vec![("std", Arc::new(StdVfs::new()))];
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    match wal::uring::UringVfs::probe() {
        Ok(()) => out.push(("io_uring", Arc::new(wal::uring::UringVfs::new()))),
        Err(e) => eprintln!("io_uring unavailable ({e}); benching the std path only"),
    }
    out
}

/// A fresh log per sample, so files do not grow without bound across samples.
struct Logs {
    dir: tempfile::TempDir,
    vfs: Arc<dyn Vfs>,
    keys: Arc<KeyManager>,
    next: u64,
}

impl Logs {
    fn new(vfs: Arc<dyn Vfs>) -> Self {
        Logs { dir: tempfile::tempdir().unwrap(), vfs, keys: KeyManager::ephemeral(), next: 0 }
    }

    fn fresh(&mut self) -> LogWriter {
        self.next += 1;
        let path = wal::segment_path(self.dir.path(), self.next);
        if self.next > 1 {
            let _ = std::fs::remove_file(wal::segment_path(self.dir.path(), self.next - 1));
        }
        let log = LogWriter::create(&self.vfs, &path, &self.keys, self.next, FileKind::Wal).unwrap();
        // The header's first sync is not part of any measured commit.
        log.sync().unwrap();
        log
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_append_150B");
    g.throughput(Throughput::Elements(1));
    for (name, vfs) in backends() {
        let mut logs = Logs::new(vfs);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let log = logs.fresh();
                let start = Instant::now();
                for _ in 0..iters {
                    log.append(&RECORD).unwrap();
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// `threads` writers each append a record and wait until it is durable, `iters`
/// commits in all; returns the wall time and the number of fsyncs it took.
fn commit_round(log: &LogWriter, threads: u64, iters: u64) -> (Duration, u64) {
    let remaining = AtomicU64::new(iters);
    let syncs_before = log.sync_count();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while remaining.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1)).is_ok() {
                    let end = log.append(&RECORD).unwrap();
                    log.sync_to(end).unwrap();
                }
            });
        }
    });
    (start.elapsed(), log.sync_count() - syncs_before)
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_durable_commit_150B");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    for (name, vfs) in backends() {
        let mut logs = Logs::new(vfs);
        for threads in [1u64, 4, 16] {
            let (mut commits, mut syncs) = (0u64, 0u64);
            g.bench_function(format!("{name}/{threads}_threads"), |b| {
                b.iter_custom(|iters| {
                    let log = logs.fresh();
                    let (elapsed, n) = commit_round(&log, threads, iters);
                    commits += iters;
                    syncs += n;
                    elapsed
                })
            });
            if commits > 0 {
                eprintln!("  {name}, {threads} threads: {:.2} commits per fsync", commits as f64 / syncs.max(1) as f64);
            }
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = append, group_commit }
criterion_main!(benches);
