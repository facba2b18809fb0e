//! A [`Vfs`] whose writable files append and sync through io_uring (Linux only,
//! feature `io-uring`).
//!
//! Only the write path of logs differs from [`StdVfs`]: `create` returns a file
//! whose `append` is an `IORING_OP_WRITE` at the end of what was appended (not
//! the file's size, which `preallocate` may have raised, with the same
//! `fallocate(2)` as `StdVfs`) and whose `sync` is an `IORING_OP_FSYNC` with
//! `IORING_FSYNC_DATASYNC` (fdatasync). Every other operation is delegated to
//! [`StdVfs`]. Each file has two rings, each
//! behind its own mutex: appends and syncs never wait for each other, which is
//! what lets group commit keep appending the next group while a sync runs (the
//! same property `StdVfs` gets from its second file handle). Every operation is
//! submitted and waited for before the call returns, so a buffer handed to the
//! kernel always outlives the operation that reads it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crypto::vfs::{LockError, LockGuard, RandomAccessFile, StdVfs, Vfs, WritableFile};
use io_uring::{opcode, squeue, types, IoUring};
use parking_lot::Mutex;

/// Entries per ring: one operation is in flight at a time, the rest is headroom.
const RING_ENTRIES: u32 = 4;

/// The file system, with log writes and syncs submitted through io_uring.
#[derive(Debug, Default, Clone)]
pub struct UringVfs {
    std: StdVfs,
}

impl UringVfs {
    /// The real file system, writing through io_uring.
    pub fn new() -> Self {
        UringVfs { std: StdVfs::new() }
    }

    /// Checks that this kernel lets the process create an io_uring (it may be
    /// missing, or refused by a seccomp policy as in many containers), so callers
    /// can fall back to [`StdVfs`] with a clear reason.
    pub fn probe() -> io::Result<()> {
        IoUring::new(RING_ENTRIES).map(drop)
    }
}

/// One ring; `None` after an error that left the state of the ring unknown, so no
/// stale entry can ever be submitted later.
struct Ring {
    ring: Option<IoUring>,
}

impl Ring {
    fn new() -> io::Result<Self> {
        Ok(Ring { ring: Some(IoUring::new(RING_ENTRIES)?) })
    }

    /// Submits `entry` and waits for its completion; returns the completion's result
    /// (a byte count, or `-errno`).
    ///
    /// # Safety
    /// Every buffer `entry` points to must stay valid until this call returns.
    unsafe fn run(&mut self, entry: &squeue::Entry) -> io::Result<i32> {
        let ring = self.ring.as_mut().ok_or_else(|| io::Error::other("io_uring unusable after an earlier error"))?;
        // SAFETY: the caller keeps the buffers alive until we return, and we return
        // only once the completion for this entry has been reaped (or after dropping
        // the ring, which stops the kernel from using it).
        if unsafe { ring.submission().push(entry) }.is_err() {
            return Err(io::Error::other("io_uring submission queue full"));
        }
        loop {
            match ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)) => {}
                Err(e) => {
                    // The entry may still sit in the queue; a later submit would hand
                    // the kernel a dangling buffer, so this ring is never used again.
                    self.ring = None;
                    return Err(e);
                }
            }
            if let Some(cqe) = ring.completion().next() {
                return Ok(cqe.result());
            }
        }
    }
}

struct UringWritable {
    append_ring: Mutex<Ring>,
    sync_ring: Mutex<Ring>,
    file: File,
    len: AtomicU64,
}

fn is_retryable(res: i32) -> bool {
    res == -libc::EINTR || res == -libc::EAGAIN
}

impl WritableFile for UringWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut ring = self.append_ring.lock();
        let fd = types::Fd(self.file.as_raw_fd());
        let mut offset = self.len.load(Ordering::Acquire);
        let mut rest = data;
        while !rest.is_empty() {
            let chunk = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            let entry = opcode::Write::new(fd, rest.as_ptr(), chunk).offset(offset).build();
            // SAFETY: `rest` borrows `data`, which outlives this call.
            let res = unsafe { ring.run(&entry) }?;
            if is_retryable(res) {
                continue;
            }
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
            let written = usize::try_from(res).unwrap_or(0);
            if written == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "io_uring write wrote nothing"));
            }
            // A short write (signal, size limit) continues where it stopped.
            rest = rest.get(written..).unwrap_or(&[]);
            offset += written as u64;
        }
        self.len.store(offset, Ordering::Release);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut ring = self.sync_ring.lock();
        let entry = opcode::Fsync::new(types::Fd(self.file.as_raw_fd())).flags(types::FsyncFlags::DATASYNC).build();
        loop {
            // SAFETY: an fsync entry points to no buffer.
            let res = unsafe { ring.run(&entry) }?;
            if is_retryable(res) {
                continue;
            }
            if res < 0 {
                return Err(io::Error::from_raw_os_error(-res));
            }
            return Ok(());
        }
    }

    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        // Appends write at explicit offsets (`self.len`), which the size does not move.
        crypto::vfs::preallocate_file(&self.file, len)
    }
}

impl Vfs for UringVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(crypto::vfs::OWNER_ONLY_FILE)
            .open(path)?;
        Ok(Box::new(UringWritable {
            append_ring: Mutex::new(Ring::new()?),
            sync_ring: Mutex::new(Ring::new()?),
            file,
            len: AtomicU64::new(0),
        }))
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.std.open_for_overwrite(path)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.std.open(path)
    }
    fn open_mapped(&self, path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        self.std.open_mapped(path)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.std.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.std.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.std.remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.std.truncate(path, len)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.std.list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.std.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.std.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        self.std.exists(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.std.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        self.std.lock(path)
    }
}
