//! Group commit and poisoning: many writers share fsyncs, every acknowledged
//! record comes back, a failed fsync stops the log for good, and a failed append
//! stops appends while the frames before it can still be synced.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use common::{scratch_dir, vfs_impls, FailingVfs, Faults};
use crypto::vfs::Vfs;
use crypto::{FileKind, KeyManager};
use wal::{Error, LogReader, LogWriter};

const THREADS: usize = 8;
const APPENDS_PER_THREAD: usize = 200;

#[test]
fn concurrent_committers_share_fsyncs() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let path = dir.path().join("000001.wal");
        let writer = Arc::new(LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal).unwrap());
        let start = Barrier::new(THREADS);
        let started = std::time::Instant::now();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (writer, start) = (&writer, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..APPENDS_PER_THREAD {
                        let record = format!("thread {t} record {i:04} {}", "x".repeat(i % 97));
                        let end = writer.append(record.as_bytes()).unwrap();
                        writer.sync_to(end).unwrap();
                        // Acknowledged: durable up to at least this record.
                        assert!(writer.synced_len() >= end);
                    }
                });
            }
        });
        let elapsed = started.elapsed();
        let appends = (THREADS * APPENDS_PER_THREAD) as u64;
        let syncs = writer.sync_count();
        println!(
            "{vfs_name}: {appends} appends, each followed by sync_to, took {syncs} fsyncs \
             ({:.1} records per fsync) in {elapsed:?}",
            appends as f64 / syncs as f64
        );
        assert!(syncs < appends, "{vfs_name}: {syncs} fsyncs for {appends} appends: no grouping");
        assert!(syncs > 0);
        assert_eq!(writer.synced_len(), writer.len());

        let got = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 1).unwrap();
        assert_eq!(got.records.len() as u64, appends);
        assert_eq!(got.torn_tail_at, None);
        // Every record once, each thread's records in its own order.
        let mut next = [0usize; THREADS];
        for r in &got.records {
            let text = std::str::from_utf8(r).unwrap();
            let mut words = text.split(' ');
            let t: usize = words.nth(1).unwrap().parse().unwrap();
            let i: usize = words.nth(1).unwrap().parse().unwrap();
            assert_eq!(i, next[t], "{vfs_name}: thread {t} out of order");
            assert_eq!(text, format!("thread {t} record {i:04} {}", "x".repeat(i % 97)));
            next[t] += 1;
        }
        assert_eq!(next, [APPENDS_PER_THREAD; THREADS]);
    }
}

#[test]
fn a_covered_offset_does_not_sync_again() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let w = LogWriter::create(&vfs, &dir.path().join("000001.wal"), &keys, 1, FileKind::Wal).unwrap();
        let a = w.append(b"a").unwrap();
        let b = w.append(b"b").unwrap();
        assert_eq!(w.sync_count(), 0, "{vfs_name}: append must not sync");
        w.sync_to(a).unwrap();
        assert_eq!(w.sync_count(), 1);
        // The sync for `a` covered everything appended before it started, `b` included.
        assert_eq!(w.synced_len(), b);
        w.sync_to(b).unwrap();
        w.sync().unwrap();
        w.sync_to(u64::MAX).unwrap();
        assert_eq!(w.sync_count(), 1, "{vfs_name}: nothing new to sync");
        let c = w.append(b"c").unwrap();
        w.sync_to(c).unwrap();
        assert_eq!(w.sync_count(), 2);
    }
}

fn failing(vfs: Arc<dyn Vfs>) -> (Arc<dyn Vfs>, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    (Arc::new(FailingVfs { inner: vfs, faults: faults.clone() }), faults)
}

#[test]
fn a_failed_append_stops_appends_but_earlier_frames_still_sync() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, inner) in vfs_impls() {
        let (vfs, faults) = failing(inner);
        let dir = scratch_dir();
        let path = dir.path().join("000001.wal");
        let w = LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal).unwrap();
        let first = w.append(b"one").unwrap();
        w.sync().unwrap();
        let second = w.append(&[7u8; 300]).unwrap();

        faults.fail_append.store(true, Ordering::SeqCst);
        match w.append(&[9u8; 300]) {
            Err(Error::Io { file, .. }) => assert_eq!(file, "000001.wal"),
            other => panic!("{vfs_name}: expected the I/O error, got {other:?}"),
        }
        assert!(w.is_poisoned());
        assert_eq!(w.len(), second, "a failed frame does not count as written");
        faults.fail_append.store(false, Ordering::SeqCst);
        // The file works again, but the log does not: the failure is final.
        match w.append(b"after") {
            Err(Error::Poisoned { file, reason, cause }) => {
                assert_eq!(file, "000001.wal");
                assert!(reason.contains("injected append failure"), "{reason}");
                assert_eq!(cause.op, wal::FailedOp::Append);
                assert!(!cause.is_storage_full(), "{cause:?}");
            }
            other => panic!("{vfs_name}: expected Poisoned, got {other:?}"),
        }
        // Records synced before the failure stay acknowledged, and the record
        // appended whole before the failure can still be made durable.
        w.sync_to(first).unwrap();
        w.sync_to(second).unwrap();
        assert_eq!(w.synced_len(), second, "{vfs_name}: the sync covers exactly the whole frames");
        w.sync().unwrap();
        assert!(matches!(w.append(b"again"), Err(Error::Poisoned { .. })), "{vfs_name}");

        // Recovery sees both whole records and the half frame as a torn tail.
        let got = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 1).unwrap();
        assert_eq!(got.records, vec![b"one".to_vec(), vec![7u8; 300]], "{vfs_name}");
        assert_eq!(got.torn_tail_at, Some(second));
        assert_eq!(got.valid_len, second);
    }
}

/// A committer whose record was appended before another writer's append hit a
/// full disk still gets a durable commit: the record survives a power loss.
#[test]
fn a_record_appended_before_a_full_disk_failure_survives_a_crash() {
    let keys = KeyManager::ephemeral();
    let sim = crypto::vfs::SimVfs::new();
    let vfs: Arc<dyn Vfs> = sim.clone();
    let dir = std::path::Path::new("/store");
    vfs.create_dir_all(dir).unwrap();
    let path = dir.join("000001.wal");
    let w = LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal).unwrap();
    w.append(b"one").unwrap();
    w.sync().unwrap();
    vfs.sync_dir(dir).unwrap();
    // Writer A appends and has not synced yet when writer B's append finds the disk full.
    let a_end = w.append(&[7u8; 300]).unwrap();
    sim.set_capacity_bytes(Some(sim.total_live_bytes()));
    match w.append(&[9u8; 300]) {
        Err(Error::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(28), "{source}"),
        other => panic!("expected ENOSPC, got {other:?}"),
    }
    w.sync_to(a_end).unwrap();
    sim.crash();
    let got = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 1).unwrap();
    assert_eq!(got.records, vec![b"one".to_vec(), vec![7u8; 300]]);
}

#[test]
fn a_failed_fsync_fails_every_waiter_and_is_not_retried() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, inner) in vfs_impls() {
        let (vfs, faults) = failing(inner);
        let dir = scratch_dir();
        let w = LogWriter::create(&vfs, &dir.path().join("000001.wal"), &keys, 1, FileKind::Wal).unwrap();
        w.append(b"durable").unwrap();
        w.sync().unwrap();
        assert_eq!(w.sync_count(), 1);

        faults.fail_sync.store(true, Ordering::SeqCst);
        faults.sync_delay_ms.store(100, Ordering::SeqCst);
        let appended = Barrier::new(THREADS);
        let results: Vec<Result<(), Error>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (w, appended) = (&w, &appended);
                    s.spawn(move || {
                        let end = w.append(format!("record {t}").as_bytes());
                        appended.wait();
                        w.sync_to(end?)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let io = results.iter().filter(|r| matches!(r, Err(Error::Io { .. }))).count();
        let poisoned = results.iter().filter(|r| matches!(r, Err(Error::Poisoned { .. }))).count();
        assert_eq!((io, poisoned), (1, THREADS - 1), "{vfs_name}: {results:?}");
        assert_eq!(w.sync_count(), 2, "{vfs_name}: a failed fsync must not be retried");

        faults.fail_sync.store(false, Ordering::SeqCst);
        faults.sync_delay_ms.store(0, Ordering::SeqCst);
        assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
        assert!(matches!(w.append(b"more"), Err(Error::Poisoned { .. })));
        assert_eq!(w.sync_count(), 2);
    }
}
