//! Shared helpers of the WAL tests: the file systems every test runs over, a log
//! builder, and a file system that fails on command.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crypto::vfs::{ForwardingVfs, StdVfs, Vfs, WritableFile};
use crypto::{FileKind, KeyManager};
use wal::LogWriter;

/// The file systems the writer, reader and group-commit tests run over: `StdVfs`
/// always, and `UringVfs` when the `io-uring` feature is on.
pub fn vfs_impls() -> Vec<(&'static str, Arc<dyn Vfs>)> {
    #[allow(unused_mut)]
    let mut all: Vec<(&'static str, Arc<dyn Vfs>)> = vec![("std", Arc::new(StdVfs::new()))];
    #[cfg(all(feature = "io-uring", target_os = "linux"))]
    {
        if let Err(e) = wal::uring::UringVfs::probe() {
            panic!("the io-uring feature is on but this kernel refuses io_uring: {e}");
        }
        all.push(("io_uring", Arc::new(wal::uring::UringVfs::new())));
    }
    all
}

/// A scratch directory on the target's disk (not a tmpfs), so fsync does real work.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("wal-test").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Deterministic bytes of `len`, different for every `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes `records` to a new log at `dir/name`, syncs it, and returns the path and
/// the offset just past each record.
pub fn write_log(
    vfs: &Arc<dyn Vfs>,
    dir: &Path,
    name: &str,
    keys: &KeyManager,
    kind: FileKind,
    records: &[Vec<u8>],
) -> (PathBuf, Vec<u64>) {
    let path = dir.join(name);
    let w = LogWriter::create(vfs, &path, keys, 7, kind).unwrap();
    let ends = records.iter().map(|r| w.append(r).unwrap()).collect();
    w.sync().unwrap();
    (path, ends)
}

/// Switches shared by a [`FailingVfs`] and the files it creates.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next appends fail, after writing half their bytes (a torn frame).
    pub fail_append: AtomicBool,
    /// The next syncs fail, after sleeping `sync_delay_ms`.
    pub fail_sync: AtomicBool,
    /// How long each sync sleeps before it runs, so waiters pile up behind it.
    pub sync_delay_ms: AtomicU64,
    /// The file length a successful sync is known to have made durable: the length
    /// when that sync began (bytes appended during a sync may or may not be covered).
    pub durable_len: AtomicU64,
}

/// A file system that delegates to another and fails appends or syncs on command.
#[derive(Debug)]
pub struct FailingVfs {
    pub inner: Arc<dyn Vfs>,
    pub faults: Arc<Faults>,
}

struct FailingFile {
    inner: Box<dyn WritableFile>,
    faults: Arc<Faults>,
}

impl WritableFile for FailingFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        if self.faults.fail_append.load(Ordering::SeqCst) {
            self.inner.append(&data[..data.len() / 2])?;
            return Err(io::Error::other("injected append failure"));
        }
        self.inner.append(data)
    }
    fn sync(&self) -> io::Result<()> {
        let delay = self.faults.sync_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        let covered = self.inner.len();
        self.inner.sync()?;
        self.faults.durable_len.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.inner.preallocate(len)
    }
}

impl ForwardingVfs for FailingVfs {
    fn inner(&self) -> &dyn Vfs {
        &*self.inner
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(FailingFile { inner: self.inner.create(path)?, faults: self.faults.clone() }))
    }
}
