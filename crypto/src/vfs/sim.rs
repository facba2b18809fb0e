//! [`SimVfs`]: an in-memory file system for tests that keeps live and durable
//! bytes apart, injects faults, and simulates power loss.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{LockError, LockGuard, RandomAccessFile, Vfs, WritableFile};

/// A fault [`SimVfs`] can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFault {
    /// The next N-th write (append) fails with an I/O error.
    FailWrite,
}

/// In-memory file system with crash simulation.
#[derive(Debug, Default)]
pub struct SimVfs {}

impl Vfs for SimVfs {
    fn create(&self, _path: &Path) -> io::Result<Box<dyn WritableFile>> { todo!() }
    fn open_for_overwrite(&self, _path: &Path) -> io::Result<Box<dyn WritableFile>> { todo!() }
    fn open(&self, _path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> { todo!() }
    fn rename(&self, _from: &Path, _to: &Path) -> io::Result<()> { todo!() }
    fn remove_file(&self, _path: &Path) -> io::Result<()> { todo!() }
    fn truncate(&self, _path: &Path, _len: u64) -> io::Result<()> { todo!() }
    fn list_dir(&self, _dir: &Path) -> io::Result<Vec<String>> { todo!() }
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> { todo!() }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> { todo!() }
    fn exists(&self, _path: &Path) -> bool { todo!() }
    fn file_size(&self, _path: &Path) -> io::Result<u64> { todo!() }
    fn lock(&self, _path: &Path) -> Result<Box<dyn LockGuard>, LockError> { todo!() }
}
