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
        /// The first failure's message.
        reason: String,
        /// The first failure, typed: which operation and which kind of I/O error.
        cause: FailureCause,
    },
    /// Other crypto-layer errors.
    #[error(transparent)]
    Crypto(crypto::Error),
}

/// The operation whose failure stopped a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailedOp {
    /// Writing a frame (the frames before it can still be synced).
    Append,
    /// An fsync (nothing more is written or synced).
    Sync,
}

/// Why a log stopped: the failed operation and the kind of its I/O error, kept
/// beside the message so that callers decide on a type, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCause {
    /// The operation that failed.
    pub op: FailedOp,
    /// The error's kind; [`std::io::ErrorKind::StorageFull`] for a full disk
    /// (ENOSPC), whatever the platform reported it as.
    pub kind: std::io::ErrorKind,
}

impl FailureCause {
    /// The cause of `op` failing with `e`.
    pub fn new(op: FailedOp, e: &std::io::Error) -> FailureCause {
        FailureCause { op, kind: io_error_kind(e) }
    }

    /// Whether the file system was full.
    pub fn is_storage_full(&self) -> bool {
        self.kind == std::io::ErrorKind::StorageFull
    }
}

/// The kind of `e`, with ENOSPC always reported as
/// [`std::io::ErrorKind::StorageFull`].
pub fn io_error_kind(e: &std::io::Error) -> std::io::ErrorKind {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        std::io::ErrorKind::StorageFull
    } else {
        e.kind()
    }
}

impl Error {
    /// The kind of the I/O error behind this error, if one is: a failed read,
    /// write or sync, or the first failure of a poisoned log.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(io_error_kind(source)),
            Error::Poisoned { cause, .. } => Some(cause.kind),
            Error::Crypto(crypto::Error::Io { source, .. }) => Some(io_error_kind(source)),
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

/// Result alias of the WAL layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
