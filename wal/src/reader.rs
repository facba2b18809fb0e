//! Reading a log back: recovery with torn-tail handling.

use std::path::Path;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::{FileKind, KeyManager};

use crate::error::Result;

/// Every intact record of a log, and where a torn tail began, if any.
#[derive(Debug)]
pub struct RecoveredLog {
    /// Decrypted payloads in order.
    pub records: Vec<Vec<u8>>,
    /// Offset of the first byte of a torn final record (the log should be truncated there).
    pub torn_tail_at: Option<u64>,
    /// Offset just past the last intact record.
    pub valid_len: u64,
}

/// Reads the records of one log file in order.
pub struct LogReader {
    _private: (),
}

impl LogReader {
    /// Opens the log at `path` (named by its file name in errors) and checks its header.
    pub fn open(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, kind: FileKind) -> Result<Self> {
        let _ = (vfs, path, keys, kind);
        todo!()
    }

    /// The next record. `Ok(None)` at the clean end or at a torn tail (see
    /// [`LogReader::torn_tail_at`]); `Err(Corruption)` naming file and offset when a
    /// complete record fails its checks (mid-log damage).
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        todo!()
    }

    /// Where a torn final record starts, once `next_record` returned `None` because of one.
    pub fn torn_tail_at(&self) -> Option<u64> {
        todo!()
    }

    /// Reads the whole log.
    pub fn read_all(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, kind: FileKind) -> Result<RecoveredLog> {
        let _ = (vfs, path, keys, kind);
        todo!()
    }
}
