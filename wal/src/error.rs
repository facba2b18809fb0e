//! The crate's error type.

/// Errors of the WAL layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Damaged bytes in a log; names the file and the record's offset.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// File name.
        file: String,
        /// Offset of the damaged record.
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
    /// A record larger than the format allows.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Record length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// An earlier write or sync of this log failed; the log accepts no more records.
    #[error("the log {file} failed earlier and accepts no more writes: {reason}")]
    Poisoned {
        /// File name.
        file: String,
        /// The first failure.
        reason: String,
    },
    /// Other crypto-layer errors.
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

/// Result alias of the WAL layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
