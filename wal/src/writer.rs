//! Appending framed, encrypted records, and group commit.

use std::path::Path;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::{FileKind, KeyManager};

use crate::error::Result;

/// Appends records to one log file.
pub struct LogWriter {
    _private: (),
}

impl LogWriter {
    /// Creates the log file at `path` for file number `file_id` and writes its
    /// header. `kind` is `FileKind::Wal` or `FileKind::Manifest`. The header is not
    /// synced here; the first `sync` makes it durable with the first records.
    pub fn create(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, file_id: u64, kind: FileKind) -> Result<Self> {
        let _ = (vfs, path, keys, file_id, kind);
        todo!()
    }

    /// Appends one record (framed and sealed) and returns the file offset just past it.
    /// Callers serialize `append`; it may run while another thread is in `sync_to`.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        let _ = payload;
        todo!()
    }

    /// Makes everything up to `offset` durable. Concurrent callers share fsyncs:
    /// a caller whose offset an in-flight or finished sync already covers does not
    /// sync again. After a failed sync the log is poisoned.
    pub fn sync_to(&self, offset: u64) -> Result<()> {
        let _ = offset;
        todo!()
    }

    /// Makes every appended record durable.
    pub fn sync(&self) -> Result<()> {
        self.sync_to(self.len())
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> u64 {
        todo!()
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        todo!()
    }

    /// The file number.
    pub fn file_id(&self) -> u64 {
        todo!()
    }
}
