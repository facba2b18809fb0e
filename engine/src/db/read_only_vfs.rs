//! A file-system view that never changes the disk, for read-only opens and for
//! `verify`. Reads pass through to the real file system; anything that would
//! write, rename, remove or truncate succeeds without touching it. Recovery code
//! in the lower layers may write as part of opening (a fresh manifest, for
//! instance); through this view those writes vanish, so a read-only open or a
//! verify leaves every byte of the store as it found it.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crypto::vfs::{LockError, LockGuard, RandomAccessFile, Vfs, WritableFile};

/// Reads through to `inner`; drops every change.
#[derive(Debug)]
pub(crate) struct ReadOnlyVfs {
    inner: Arc<dyn Vfs>,
}

impl ReadOnlyVfs {
    pub(crate) fn wrap(inner: Arc<dyn Vfs>) -> Arc<dyn Vfs> {
        Arc::new(ReadOnlyVfs { inner })
    }
}

/// A file whose appends are counted and discarded.
struct DiscardFile {
    len: AtomicU64,
}

impl WritableFile for DiscardFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.len.fetch_add(data.len() as u64, Ordering::AcqRel);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }
    fn preallocate(&self, _len: u64) -> io::Result<()> {
        // Nothing is written, so nothing is reserved.
        Ok(())
    }
}

impl Vfs for ReadOnlyVfs {
    fn create(&self, _path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(DiscardFile { len: AtomicU64::new(0) }))
    }
    fn open_for_overwrite(&self, _path: &Path) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(DiscardFile { len: AtomicU64::new(0) }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.inner.open(path)
    }
    fn open_mapped(&self, path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        self.inner.open_mapped(path)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read_all(path)
    }
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> {
        Ok(())
    }
    fn remove_file(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }
    fn truncate(&self, _path: &Path, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner.file_size(path)
    }
    fn lock(&self, _path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        Err(LockError::Io(io::Error::new(io::ErrorKind::PermissionDenied, "a read-only view takes no lock")))
    }
}
