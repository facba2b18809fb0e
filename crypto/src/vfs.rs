//! The file-system layer. Every file operation of the engine goes through [`Vfs`],
//! so tests can swap in [`SimVfs`], which injects faults and, at a simulated crash,
//! throws away everything that was not made durable.
//!
//! Semantics every implementation keeps (the engine's crash analysis relies on them):
//! - bytes appended to a [`WritableFile`] are durable only after its `sync` returns;
//! - a newly created, renamed or removed directory entry is durable only after
//!   `sync_dir` of its directory returns;
//! - `rename` replaces the target atomically;
//! - a size set by [`WritableFile::preallocate`] is durable only after the file's
//!   next `sync` returns, and bytes of it that were never written read as zeros.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

mod mapped;
mod sim;
mod std_fs;

pub use sim::SimVfs;
pub use std_fs::{preallocate_file, StdVfs, OWNER_ONLY_DIR, OWNER_ONLY_FILE};

/// A file being written: append-only.
pub trait WritableFile: Send + Sync {
    /// Appends `data` at the end of the file. Callers serialize appends.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (fdatasync). May run concurrently with `append`.
    fn sync(&self) -> io::Result<()>;
    /// Bytes appended so far (the file's length).
    fn len(&self) -> u64;
    /// Whether nothing has been written.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Asks the OS to start writing `len` bytes from `offset` back to the disk
    /// without waiting for them (a hint; durability still needs `sync`). Large
    /// files written with it reach the final sync with little left to write, so
    /// that sync does not flood the device queue in front of the WAL's syncs.
    fn start_writeback(&self, _offset: u64, _len: u64) {}
    /// Makes the file at least `len` bytes long ahead of the appends that will fill
    /// it, so that a later `sync` has no file-size change to commit (an append into
    /// space the file already has costs one data write; an append that grows the
    /// file also makes the file system record the new size). Bytes past the
    /// appended data read as zeros; [`WritableFile::len`] (the append position) does
    /// not change; a `len` at or below the file's size changes nothing. The new
    /// size is durable only after the next `sync` returns. Where the file system
    /// can, the space is reserved, so a full disk is reported here (`ENOSPC`)
    /// rather than by a later append. The default does nothing.
    fn preallocate(&self, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

/// A file opened for reading at arbitrary offsets.
pub trait RandomAccessFile: Send + Sync {
    /// Fills `buf` from `offset`; an `UnexpectedEof` error if the file is too short.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's length when it was opened.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a store's lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process (or another handle in this process) holds it.
    Held {
        /// The holder's process id, when known.
        pid: Option<u32>,
    },
    /// An I/O error while taking the lock.
    Io(io::Error),
}

/// A held lock; released on drop.
pub trait LockGuard: Send + Sync + fmt::Debug {}

/// A file system.
pub trait Vfs: Send + Sync + fmt::Debug + 'static {
    /// Creates (or truncates) a file for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for writing from offset 0 without truncating it
    /// (used to overwrite obsolete files before unlinking them).
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for reading.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    /// Opens an existing file that nothing writes to or shortens while it is
    /// open (a table) for reading through a read-only memory mapping of the
    /// bytes it has now, or `Ok(None)` where this file system does not map
    /// files: the caller then reads it through [`Vfs::open`]. The file's
    /// [`RandomAccessFile::len`] is the mapped length, and reads past it fail
    /// with `UnexpectedEof` without touching the mapping. The default maps
    /// nothing.
    ///
    /// A mapping's pages are read by page faults, not system calls, so a file
    /// shortened by something outside the engine while mapped ends the process
    /// with `SIGBUS` on the next read of a page past its new end (pread would
    /// return a short read instead): see `docs/design.md`, "Memory-mapped
    /// table reads".
    fn open_mapped(&self, _path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        Ok(None)
    }
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path)?;
        let len = usize::try_from(f.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Shortens a file to `len` bytes and makes that durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Names (not paths) of the entries of a directory, sorted.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether a file exists.
    fn exists(&self, path: &Path) -> bool;
    /// Length of a file.
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    /// Takes the exclusive lock on `path` (created if missing), recording this process's pid.
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError>;
}

/// A file system that wraps another: each method hands the call to
/// [`ForwardingVfs::inner`] unless the wrapper overrides it, and every
/// implementation is a [`Vfs`]. For wrappers that watch or change a few calls
/// (counting, recording, injecting faults) and pass the rest through.
pub trait ForwardingVfs: Send + Sync + fmt::Debug + 'static {
    /// The file system calls are handed to.
    fn inner(&self) -> &dyn Vfs;
    /// [`Vfs::create`].
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.inner().create(path)
    }
    /// [`Vfs::open_for_overwrite`].
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.inner().open_for_overwrite(path)
    }
    /// [`Vfs::open`].
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.inner().open(path)
    }
    /// [`Vfs::open_mapped`]. A wrapper maps nothing unless it overrides this
    /// (so a wrapper that watches or changes reads through `open` sees every
    /// read); one that forwards it hands its reads to the mapping.
    fn open_mapped(&self, _path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        Ok(None)
    }
    /// [`Vfs::rename`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner().rename(from, to)
    }
    /// [`Vfs::remove_file`].
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner().remove_file(path)
    }
    /// [`Vfs::truncate`].
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.inner().truncate(path, len)
    }
    /// [`Vfs::list_dir`].
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner().list_dir(dir)
    }
    /// [`Vfs::create_dir_all`].
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner().create_dir_all(dir)
    }
    /// [`Vfs::sync_dir`].
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner().sync_dir(dir)
    }
    /// [`Vfs::exists`].
    fn exists(&self, path: &Path) -> bool {
        self.inner().exists(path)
    }
    /// [`Vfs::file_size`].
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.inner().file_size(path)
    }
    /// [`Vfs::lock`].
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        self.inner().lock(path)
    }
}

impl<T: ForwardingVfs> Vfs for T {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        ForwardingVfs::create(self, path)
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        ForwardingVfs::open_for_overwrite(self, path)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        ForwardingVfs::open(self, path)
    }
    fn open_mapped(&self, path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        ForwardingVfs::open_mapped(self, path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        ForwardingVfs::rename(self, from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        ForwardingVfs::remove_file(self, path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        ForwardingVfs::truncate(self, path, len)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        ForwardingVfs::list_dir(self, dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        ForwardingVfs::create_dir_all(self, dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        ForwardingVfs::sync_dir(self, dir)
    }
    fn exists(&self, path: &Path) -> bool {
        ForwardingVfs::exists(self, path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        ForwardingVfs::file_size(self, path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        ForwardingVfs::lock(self, path)
    }
}

/// Writes `data` to `dir/name` atomically and durably: temp file, sync, rename, sync dir.
pub fn write_file_atomic(vfs: &dyn Vfs, dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let f = vfs.create(&tmp)?;
    f.append(data)?;
    f.sync()?;
    drop(f);
    vfs.rename(&tmp, &dir.join(name))?;
    vfs.sync_dir(dir)
}
