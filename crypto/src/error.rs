//! The crate's error type. A failed authentication tag is reported as corruption
//! (or as a wrong key where the key itself is what is being checked), never a panic.

use std::io;

/// Errors of the crypto layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error on the named file.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// File (path or name) the operation was on.
        file: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are damaged or were tampered with.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// File (name relative to the store directory, or a path).
        file: String,
        /// Byte offset of the damaged block or record.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// The passphrase or key does not unlock any keyslot.
    #[error("wrong passphrase or key: no keyslot of this store accepts it")]
    WrongKey,
    /// A file refers to a data-key epoch that is no longer in the keyring
    /// (for example because it was destroyed after key rotation).
    #[error("{file} refers to data-key epoch {epoch}, which is not in the keyring")]
    MissingEpoch {
        /// The file.
        file: String,
        /// The epoch it names.
        epoch: u32,
    },
    /// A file was written by a newer (or unknown) format version.
    #[error("{file} has format version {found}, this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        file: String,
        /// Version byte found.
        found: u8,
        /// Version this build supports.
        supported: u8,
    },
    /// Invalid argument supplied by the caller (bad parameters, empty passphrase, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Something that must not exist yet already does (e.g. a store in the directory).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The named directory holds no store (its `KEYSLOTS` is missing). Holds the
    /// directory alone, so that layers above can word their own message around it.
    #[error("{0} holds no store (KEYSLOTS is missing)")]
    NotFound(String),
}

/// Result alias for the crypto layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds a corruption error.
    pub fn corruption(file: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }

    /// Wraps an I/O error with the file it happened on.
    pub fn io(file: impl Into<String>, source: io::Error) -> Self {
        Error::Io { file: file.into(), source }
    }
}
