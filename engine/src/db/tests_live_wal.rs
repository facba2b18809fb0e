//! Reading a WAL segment a writer process is working on (`open::read_wal_segment`):
//! a segment cut back to its last frame while a reader had sized it before, and a
//! frame seen half copied into preallocated space, are read again rather than
//! reported; damage that stays is reported.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crypto::vfs::{ForwardingVfs, RandomAccessFile, SimVfs, Vfs};
use crypto::{FileKind, KeyManager};
use wal::{LogWriter, Preallocation};

use crate::db::open::read_wal_segment;

const SIZES: Preallocation = Preallocation { initial_bytes: 4096, max_step_bytes: 4096 };

/// A `SimVfs` whose first `stale` size queries and opens still see a file's old,
/// preallocated length: what a reader that sized the segment just before the
/// writer cut it back sees. Counts the files opened for reading.
#[derive(Debug)]
struct StaleSizeVfs {
    sim: Arc<SimVfs>,
    stale_len: u64,
    stale: AtomicU32,
    opens: AtomicU32,
}

struct StaleFile {
    inner: Arc<dyn RandomAccessFile>,
    len: u64,
}

impl RandomAccessFile for StaleFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl StaleSizeVfs {
    fn still_stale(&self) -> bool {
        self.stale.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
    }
}

impl ForwardingVfs for StaleSizeVfs {
    fn inner(&self) -> &dyn Vfs {
        &*self.sim
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        let inner = self.sim.open(path)?;
        if self.still_stale() {
            return Ok(Arc::new(StaleFile { inner, len: self.stale_len }));
        }
        Ok(inner)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        if self.still_stale() {
            return Ok(self.stale_len);
        }
        self.sim.file_size(path)
    }
}

/// A synced, preallocated segment holding `records`, cut back to its last frame
/// as a writer does at a memtable switch or close.
fn trimmed_segment(sim: &Arc<SimVfs>, keys: &KeyManager, records: &[&[u8]]) -> PathBuf {
    let vfs: Arc<dyn Vfs> = sim.clone();
    vfs.create_dir_all(Path::new("/db")).unwrap();
    let path = wal::segment_path(Path::new("/db"), 1);
    let log = LogWriter::create_preallocated(&vfs, &path, keys, 1, FileKind::Wal, SIZES).unwrap();
    for r in records {
        log.append(r).unwrap();
    }
    log.sync().unwrap();
    vfs.truncate(&path, log.len()).unwrap();
    path
}

#[test]
fn a_segment_cut_back_under_a_reader_is_read_again() {
    let keys = KeyManager::ephemeral();
    let sim = SimVfs::new();
    let path = trimmed_segment(&sim, &keys, &[b"one", b"two"]);
    // The first size query and the reader's open both see the preallocated size.
    let stale =
        || -> Arc<dyn Vfs> { Arc::new(StaleSizeVfs { sim: sim.clone(), stale_len: 4096, stale: AtomicU32::new(2), opens: AtomicU32::new(0) }) };
    let got = read_wal_segment(&stale(), &path, 1, &keys, true).unwrap();
    assert_eq!(got.records, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(got.torn_tail_at, None);
    // Without the writer possibly live (a read-write open holds the lock), the
    // shrink is reported.
    assert!(matches!(read_wal_segment(&stale(), &path, 1, &keys, false), Err(wal::Error::Corruption { .. })));
}

#[test]
fn damage_that_stays_is_reported_after_the_retries() {
    let keys = KeyManager::ephemeral();
    let sim = SimVfs::new();
    let path = trimmed_segment(&sim, &keys, &[b"one", b"two"]);
    let counting = Arc::new(StaleSizeVfs { sim: sim.clone(), stale_len: 0, stale: AtomicU32::new(0), opens: AtomicU32::new(0) });
    let vfs: Arc<dyn Vfs> = counting.clone();
    // Reads of the segment so far (each read opens it, as does the look at its last byte).
    let opens = || counting.opens.swap(0, Ordering::Relaxed);
    // Damage in the first frame of a segment that ends in a frame: reported at once
    // (unless the last byte of that frame's tag happens to be zero).
    sim.corrupt_byte(&path, 100, 0x01).unwrap();
    let ends_in_a_frame = sim.read_live(&path).unwrap().last() != Some(&0);
    assert!(matches!(read_wal_segment(&vfs, &path, 1, &keys, true), Err(wal::Error::Corruption { .. })));
    let first = opens();
    if ends_in_a_frame {
        assert!(first <= 2, "no retry was due, yet the segment was opened {first} times");
    }
    // A segment ending in zeros (as one being written into its preallocated space
    // does) is read again before the damage is believed.
    let len = sim.file_size(&path).unwrap();
    sim.truncate(&path, len + 100).unwrap();
    assert!(matches!(read_wal_segment(&vfs, &path, 1, &keys, true), Err(wal::Error::Corruption { .. })));
    let reads = opens();
    assert!(reads > 50, "the retries did not run: the segment was opened {reads} times");
}
