//! The crate's error type.

/// Errors of the compaction layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Damaged bytes on disk; names the file and offset.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// File name.
        file: String,
        /// Byte offset.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// I/O error on the named file.
    #[error("I/O error on {file}: {source}")]
    Io {
        /// File name.
        file: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An edit that does not fit the current version (a table deleted twice, a
    /// level out of range, overlapping tables in a sorted level). A programming
    /// error in the caller; nothing was written.
    #[error("invalid version edit: {0}")]
    InvalidEdit(String),
    /// An earlier manifest write failed, so whether its edit is durable is unknown;
    /// the version set accepts no more edits until the store is reopened.
    #[error("the manifest failed earlier and accepts no more edits: {}", .0.reason)]
    Poisoned(ManifestFailure),
    /// The version set was opened read-only.
    #[error("the version set is read-only")]
    ReadOnly,
    /// Invalid argument supplied by the caller.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Other crypto-layer errors.
    #[error(transparent)]
    Crypto(crypto::Error),
    /// Other WAL-layer errors.
    #[error(transparent)]
    Wal(wal::Error),
    /// Other index-layer errors.
    #[error(transparent)]
    Index(index::Error),
}

/// Why the manifest stopped accepting edits: the first failed write's message
/// and, when it was an I/O error, its kind (typed, so that a full disk is
/// recognised without reading the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFailure {
    /// The failure's message.
    pub reason: String,
    /// The I/O error's kind ([`std::io::ErrorKind::StorageFull`] for ENOSPC),
    /// or `None` when the failure was not an I/O error.
    pub io_kind: Option<std::io::ErrorKind>,
}

impl ManifestFailure {
    /// Whether the manifest write failed because the file system was full.
    pub fn is_storage_full(&self) -> bool {
        self.io_kind == Some(std::io::ErrorKind::StorageFull)
    }
}

impl Error {
    /// The kind of the I/O error behind this error, if one is
    /// ([`std::io::ErrorKind::StorageFull`] for ENOSPC).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(wal::io_error_kind(source)),
            Error::Crypto(crypto::Error::Io { source, .. }) => Some(wal::io_error_kind(source)),
            Error::Wal(w) => w.io_kind(),
            Error::Index(index::Error::Io { source, .. }) => Some(wal::io_error_kind(source)),
            Error::Poisoned(failure) => failure.io_kind,
            _ => None,
        }
    }
}

impl From<crypto::Error> for Error {
    fn from(e: crypto::Error) -> Self {
        match e {
            crypto::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            crypto::Error::Io { file, source } => Error::Io { file, source },
            other => Error::Crypto(other),
        }
    }
}

impl From<wal::Error> for Error {
    fn from(e: wal::Error) -> Self {
        match e {
            wal::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            wal::Error::Io { file, source } => Error::Io { file, source },
            wal::Error::Crypto(c) => c.into(),
            other => Error::Wal(other),
        }
    }
}

impl From<index::Error> for Error {
    fn from(e: index::Error) -> Self {
        match e {
            index::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            index::Error::Io { file, source } => Error::Io { file, source },
            index::Error::Crypto(c) => c.into(),
            other => Error::Index(other),
        }
    }
}

impl Error {
    /// Builds a corruption error; `file` is the name relative to the store directory.
    pub fn corruption(file: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }

    /// Builds an I/O error on `file` (name relative to the store directory).
    pub fn io(file: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { file: file.into(), source }
    }
}

/// Result alias of the compaction layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
