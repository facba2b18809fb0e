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

/// Result alias of the compaction layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
