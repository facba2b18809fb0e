//! The crate's error type.

/// Errors of the index layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Damaged bytes on disk; names the file and offset.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// File name.
        file: String,
        /// Byte offset of the damaged block.
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
    /// The caller broke a precondition (keys out of order, an entry above the size
    /// limits, options out of range, an empty table).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Other errors of the crypto layer (missing epoch, unsupported version, ...).
    #[error(transparent)]
    Crypto(crypto::Error),
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

impl Error {
    /// Builds a corruption error.
    pub fn corruption(file: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }
}

/// Result alias of the index layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
