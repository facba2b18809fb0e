//! [`Vfs`] over the operating system's file system (std::fs, pread, fdatasync,
//! fallocate, flock).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LockError, LockGuard, RandomAccessFile, Vfs, WritableFile};

/// Mode of the files a store creates: its owner reads and writes them, nobody
/// else (the contents are ciphertext, but their sizes and names still tell
/// something about the store). Files that exist keep the mode they have.
pub const OWNER_ONLY_FILE: u32 = 0o600;
/// Mode of the directories a store creates (the umask can only narrow it).
pub const OWNER_ONLY_DIR: u32 = 0o700;

/// The real file system.
#[derive(Debug, Default, Clone)]
pub struct StdVfs {
    _private: (),
}

impl StdVfs {
    /// The real file system.
    pub fn new() -> Self {
        StdVfs { _private: () }
    }
}

struct StdWritable {
    file: Mutex<File>,
    sync_handle: File,
    len: AtomicU64,
}

impl WritableFile for StdWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut f = self.file.lock();
        f.write_all(data)?;
        self.len.fetch_add(data.len() as u64, Ordering::Release);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        // A second handle to the same open file description, so fsync does not wait
        // for the append mutex: appends of the next group proceed during the sync.
        self.sync_handle.sync_data()
    }
    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        // Appends write at the file position, which neither fallocate nor set_len moves.
        preallocate_file(&self.sync_handle, len)
    }
    fn start_writeback(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        if let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) {
            // SAFETY: sync_file_range only reads its integer arguments; the
            // descriptor stays open for the lifetime of `self`. A failure is
            // harmless (the hint is dropped; `sync` still writes everything).
            unsafe {
                libc::sync_file_range(self.sync_handle.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
    }
}

/// [`WritableFile::preallocate`] for a file of the OS: makes `file` at least `len`
/// bytes long with `fallocate(2)` (mode 0: blocks reserved, the size raised, the new
/// bytes reading as zeros), so a full disk fails here with `ENOSPC` and not in a
/// later append. Where the file system has no `fallocate`, it raises the size with
/// `ftruncate` instead (a sparse tail, reserving nothing). A `len` at or below the
/// size changes nothing.
pub fn preallocate_file(file: &File, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let Ok(off_len) = libc::off_t::try_from(len) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "preallocation length beyond off_t"));
        };
        loop {
            // SAFETY: fallocate only reads its integer arguments; `file` keeps the
            // descriptor open for the duration of the call.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, off_len) };
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EOPNOTSUPP | libc::ENOSYS) => break,
                _ => return Err(err),
            }
        }
    }
    if file.metadata()?.len() < len {
        file.set_len(len)?;
    }
    Ok(())
}

struct StdReadable {
    file: File,
    len: u64,
}

impl RandomAccessFile for StdReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct FlockGuard {
    _file: File,
}
impl LockGuard for FlockGuard {}

impl Vfs for StdVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().write(true).create(true).truncate(true).mode(OWNER_ONLY_FILE).open(path)?;
        let sync_handle = file.try_clone()?;
        Ok(Box::new(StdWritable { file: Mutex::new(file), sync_handle, len: AtomicU64::new(0) }))
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().write(true).open(path)?;
        let sync_handle = file.try_clone()?;
        Ok(Box::new(StdWritable { file: Mutex::new(file), sync_handle, len: AtomicU64::new(0) }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Arc::new(StdReadable { file, len }))
    }
    fn open_mapped(&self, path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        super::mapped::open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().recursive(true).mode(OWNER_ONLY_DIR).create(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn LockGuard>, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(OWNER_ONLY_FILE)
            .open(path)
            .map_err(LockError::Io)?;
        // A lock recorded under this process's own pid may be held only by a child
        // process between its fork and exec (it shares the close-on-exec descriptor
        // until exec closes it), right after this process released the store. That
        // clears within moments, so such a holder is waited for briefly; a lock of
        // another process is refused at once.
        let mut own_pid_retries = 50;
        loop {
            // SAFETY: flock on a valid, owned file descriptor.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                break;
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(LockError::Io(err));
            }
            let pid = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
            if pid == Some(std::process::id()) && own_pid_retries > 0 {
                own_pid_retries -= 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            return Err(LockError::Held { pid });
        }
        // Record the holder so a refused opener can name it.
        file.set_len(0).map_err(LockError::Io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(LockError::Io)?;
        Ok(Box::new(FlockGuard { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn preallocation_keeps_the_append_position_and_reads_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let vfs = StdVfs::new();
        let w = vfs.create(&path).unwrap();
        w.append(b"head").unwrap();
        w.preallocate(1 << 16).unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(vfs.file_size(&path).unwrap(), 1 << 16);
        w.append(b"tail").unwrap();
        w.sync().unwrap();
        // A smaller length neither shrinks the file nor moves the position.
        w.preallocate(8).unwrap();
        w.append(b"!").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1 << 16);
        assert_eq!(&bytes[..9], b"headtail!");
        assert!(bytes[9..].iter().all(|b| *b == 0));
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            // fallocate reserves the blocks (a sparse set_len would not).
            assert!(std::fs::metadata(&path).unwrap().blocks() * 512 >= 1 << 16);
        }
    }
}
