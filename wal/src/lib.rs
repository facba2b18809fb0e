//! The encrypted write-ahead log of synapsed-storage, and the record log format
//! that the manifest reuses.
//!
//! A log file is the crypto file header followed by framed records; each record's
//! payload is sealed with the file's key (AAD binds file id, offset and kind).
//! [`LogWriter::sync_to`] is the group commit: one fsync serves every writer whose
//! record was appended before it started. The layout and the recovery rules are
//! in `wal/FORMAT.md`.
//!
//! With the `io-uring` feature on Linux, `uring::UringVfs` writes and syncs log
//! files through io_uring; everything else runs over any [`crypto::vfs::Vfs`].
//!
//! ```
//! use std::sync::Arc;
//! use crypto::{FileKind, KeyManager, StdVfs, Vfs};
//! use wal::{LogReader, LogWriter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
//! let keys = KeyManager::ephemeral();
//! let path = wal::segment_path(dir.path(), 1);
//!
//! let log = LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal)?;
//! let end = log.append(b"put k v")?;
//! log.sync_to(end)?; // durable once this returns
//!
//! let recovered = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 1)?;
//! assert_eq!(recovered.records, vec![b"put k v".to_vec()]);
//! assert_eq!(recovered.torn_tail_at, None);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod error;
mod format;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod reader;
#[cfg(all(feature = "io-uring", target_os = "linux"))]
pub mod uring;
mod writer;

pub use error::{io_error_kind, Error, FailedOp, FailureCause, Result};
pub use format::{FRAME_HEADER_LEN, MAX_RECORD_BYTES};
pub use reader::{LogReader, RecoveredLog};
pub use writer::{LogWriter, Preallocation};

/// The path of WAL segment `number` in `dir`.
pub fn segment_path(dir: &std::path::Path, number: u64) -> std::path::PathBuf {
    dir.join(crypto::names::wal_file(number))
}
