//! The encrypted write-ahead log of synapsed-storage, and the record log format
//! that the manifest reuses.
//!
//! A log file is the crypto file header followed by framed records; each record's
//! payload is sealed with the file's key (AAD binds file id, offset and kind).
//! [`LogWriter::sync_to`] is the group commit: one fsync serves every writer whose
//! record was appended before it started. The layout is in `wal/FORMAT.md`.

mod error;
mod reader;
mod writer;

pub use error::{Error, Result};
pub use reader::{LogReader, RecoveredLog};
pub use writer::LogWriter;

/// The path of WAL segment `number` in `dir`.
pub fn segment_path(dir: &std::path::Path, number: u64) -> std::path::PathBuf {
    dir.join(format!("{number:06}.wal"))
}
