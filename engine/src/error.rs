//! The engine's error type: what users of the store see.

/// Errors of synapsed-storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Damaged bytes on disk: names the file and offset. Run `verify` / `repair`.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// File name (relative to the store directory).
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
    /// The file system is full (ENOSPC) while writing the named file. Nothing
    /// acknowledged is lost and the store stays open and readable; writes
    /// succeed again once space is freed.
    #[error("storage full while writing {file}: free space on the disk, then retry (the store stays open and readable)")]
    StorageFull {
        /// File name (relative to the store directory).
        file: String,
    },
    /// The passphrase or key does not unlock this store.
    #[error("wrong passphrase or key: no keyslot of this store accepts it")]
    WrongKey,
    /// `create` on a directory that already holds a store.
    #[error("{0} already holds a store")]
    AlreadyExists(String),
    /// `open` on a directory with no store.
    #[error("{0} holds no store (run init first)")]
    NotFound(String),
    /// Another writer holds the store.
    #[error("store is locked by another writer{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// Holder's pid, when known.
        pid: Option<u32>,
    },
    /// An argument out of its documented limits (key or value too large, empty key, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An optimistic transaction lost a conflict: a key it read or wrote changed after it began.
    #[error("transaction conflict on a key it read or wrote")]
    Conflict,
    /// The store is read-only (opened read-only, or writes were stopped by an earlier failure).
    #[error("store is read-only: {0}")]
    ReadOnly(String),
    /// The store was written by a newer format version.
    #[error("{file} has format version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// File.
        file: String,
        /// Found version.
        found: u8,
        /// Supported version.
        supported: u8,
    },
    /// A data-key epoch a file needs is gone from the keyring.
    #[error("{file} needs data-key epoch {epoch}, which is not in the keyring")]
    MissingEpoch {
        /// File.
        file: String,
        /// Epoch.
        epoch: u32,
    },
    /// The newest WAL segment ends in a frame that is whole but for its last 1
    /// to 15 bytes, zeros after it (`docs/design.md` section 6): most likely a
    /// write a power loss cut short, which was never acknowledged; it could also
    /// be damage to the last write. [`crate::Db::open_or_repair`] (the CLI's
    /// `repair`) cuts it off and opens. Reported as damage (`is_corruption`).
    #[error(
        "{file}: the last frame, at offset {offset}, is cut short in its last bytes \
         (a write a power loss interrupted, never acknowledged, or damage to the last write); \
         `Db::open_or_repair` or `synapsed-storage repair` cuts it off and opens"
    )]
    TornLastFrame {
        /// WAL segment (relative to the store directory).
        file: String,
        /// Offset of the frame.
        offset: u64,
    },
    /// The store recovered to an older state than the outside counter
    /// (`Options::freshness_counter`) saw: the whole directory was rolled back
    /// (an old copy put back). Nothing was written.
    #[error("the store is older than its freshness counter says: it recovers to seqno {found}, the counter saw {expected} (an old copy of the store directory?)")]
    RolledBack {
        /// Last seqno the store recovers to.
        found: u64,
        /// Highest seqno the counter recorded.
        expected: u64,
    },
    /// [`crate::Db::changes_since`] cannot hand out every change after
    /// `requested`: the changes up to `oldest_available - 1` are no longer kept
    /// (they fell out of `Options::change_feed_retention`, a key rotation ended
    /// their retention, a kept WAL segment is missing, or the change was never
    /// logged: see `docs/design.md`, "The change feed"). Nothing was skipped
    /// silently: a consumer rebuilds from a full scan of a snapshot and resumes
    /// from its seqno. Resuming from `oldest_available - 1` or later may work.
    #[error(
        "the change feed no longer holds every change after seqno {requested}: the oldest it can hand out \
         after it is seqno {oldest_available} (resync from a snapshot)"
    )]
    ChangeFeedTruncated {
        /// The seqno the feed was asked to continue after.
        requested: u64,
        /// The oldest seqno the feed can still hand out after `requested`.
        oldest_available: u64,
    },
    /// The store is closed.
    #[error("store is closed")]
    Closed,
    /// A read-only handle read a file that the writer process retired and
    /// overwrote after waiting `Options::reader_wait_ms` for this handle to let
    /// go of it (see `engine/src/db/readers.rs`). Nothing is damaged and no
    /// wrong data was returned: open the store again and retry.
    #[error("{file} was retired and overwritten by the writer while this read-only handle still read it (it held the file longer than the writer waits); open the store again and retry")]
    Retired {
        /// File name (relative to the store directory).
        file: String,
    },
    /// Data this build cannot interpret yet (a reserved value kind, see `engine/FORMAT.md`).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A key holds merge operands but its keyspace has no merge operator (the
    /// store was opened without the `Options::with_merge_operator` it was
    /// written with): the operands cannot be folded, so nothing is returned
    /// for the key rather than a wrong value. Reopen with the operator.
    #[error("a key of keyspace {keyspace:?} holds merge operands, and no merge operator is configured for that keyspace")]
    NoMergeOperator {
        /// Name of the keyspace.
        keyspace: String,
    },
    /// The keyspace's merge operator could not fold a key's operands (a
    /// malformed operand or base value).
    #[error("merge operator {operator:?} of keyspace {keyspace:?} failed: {reason}")]
    MergeFailed {
        /// Name of the keyspace.
        keyspace: String,
        /// The operator's name.
        operator: String,
        /// The operator's message.
        reason: String,
    },
    /// `create_keyspace` with the name of a live keyspace.
    #[error("keyspace {0:?} already exists")]
    KeyspaceExists(String),
    /// No live keyspace has this name (it was never created, or was dropped).
    #[error("no keyspace {0:?} (never created, or dropped)")]
    NoSuchKeyspace(String),
    /// An earlier manifest write failed for a reason other than a full disk:
    /// whether its edit is durable is unknown, so the store makes no more
    /// changes to its set of files (no flush, compaction or ingest) until it is
    /// reopened. Reads continue and nothing acknowledged is lost (it is still in
    /// the WAL). A manifest stopped by a full disk is [`Error::StorageFull`].
    #[error("the manifest failed earlier and accepts no more edits until the store is reopened: {reason}")]
    ManifestFailed {
        /// The first failure's message.
        reason: String,
    },
    /// A document write would give two documents the same value in a unique
    /// index; nothing was written.
    #[error("unique index {collection}.{field}: document {id:?} has a value document {existing:?} already has")]
    UniqueViolation {
        /// Collection.
        collection: String,
        /// Indexed field.
        field: String,
        /// `_id` of the document refused.
        id: String,
        /// `_id` of the document that holds the value.
        existing: String,
    },
    /// An error a lower layer reported that no caller input can cause (an
    /// invalid version edit, an unexpected internal state): a bug in the
    /// engine, not in the caller's arguments or on the disk.
    #[error("internal error: {0}")]
    Internal(String),
    /// A backup, restore or pruning failed at the target or on its objects
    /// (bad URL, refused credentials, network, a damaged or missing object,
    /// key material that opens no backup manifest).
    #[error("{0}")]
    Backup(#[from] sync::backup::Error),
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this error reports damaged data.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. } | Error::TornLastFrame { .. } | Error::RolledBack { .. })
    }

    /// Whether this error is [`Error::TornLastFrame`]: the one outcome of a power
    /// loss that `open` cannot tell from damage, which [`crate::Db::open_or_repair`]
    /// recovers from.
    pub fn is_torn_last_frame(&self) -> bool {
        matches!(self, Error::TornLastFrame { .. })
    }

    /// Whether a read-only open or read that failed this way may succeed when
    /// retried on a fresh handle: the writer process retired a file or made a
    /// new data-key epoch while it was being read.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Retired { .. } | Error::MissingEpoch { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// Whether this error reports a full disk (retry once space is freed).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Error::StorageFull { .. })
    }

    /// An I/O error on `file`, or [`Error::StorageFull`] when the disk is full.
    pub(crate) fn from_io(file: String, source: std::io::Error) -> Error {
        if wal::io_error_kind(&source) == std::io::ErrorKind::StorageFull {
            Error::StorageFull { file }
        } else {
            Error::Io { file, source }
        }
    }
}

impl From<crypto::Error> for Error {
    fn from(e: crypto::Error) -> Self {
        match e {
            crypto::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            crypto::Error::Io { file, source } => Error::from_io(file, source),
            crypto::Error::WrongKey => Error::WrongKey,
            crypto::Error::MissingEpoch { file, epoch } => Error::MissingEpoch { file, epoch },
            crypto::Error::UnsupportedVersion { file, found, supported } => Error::UnsupportedVersion { file, found, supported },
            crypto::Error::InvalidArgument(s) => Error::InvalidArgument(s),
            crypto::Error::AlreadyExists(s) => Error::AlreadyExists(s),
            crypto::Error::NotFound(s) => Error::NotFound(s),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<wal::Error> for Error {
    fn from(e: wal::Error) -> Self {
        match e {
            wal::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            wal::Error::Io { file, source } => Error::from_io(file, source),
            wal::Error::RecordTooLarge { len, max } => {
                Error::InvalidArgument(format!("batch record of {len} bytes exceeds the log's maximum of {max} bytes"))
            }
            wal::Error::Poisoned { file, cause, .. } if cause.is_storage_full() => Error::StorageFull { file },
            wal::Error::Poisoned { file, reason, .. } => Error::ReadOnly(format!("the log {file} failed earlier: {reason}")),
            wal::Error::Crypto(c) => c.into(),
            other => Error::ReadOnly(other.to_string()),
        }
    }
}

impl From<index::Error> for Error {
    fn from(e: index::Error) -> Self {
        match e {
            index::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            index::Error::Io { file, source } => Error::from_io(file, source),
            index::Error::Crypto(c) => c.into(),
            index::Error::InvalidArgument(s) => Error::InvalidArgument(s),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<compaction::Error> for Error {
    fn from(e: compaction::Error) -> Self {
        match e {
            compaction::Error::Corruption { file, offset, reason } => Error::Corruption { file, offset, reason },
            compaction::Error::Io { file, source } => Error::from_io(file, source),
            compaction::Error::Crypto(c) => c.into(),
            compaction::Error::Wal(w) => w.into(),
            compaction::Error::Index(i) => i.into(),
            compaction::Error::Poisoned(failure) if failure.is_storage_full() => {
                Error::StorageFull { file: crate::db::MANIFEST_FILE_DESCRIPTION.into() }
            }
            compaction::Error::Poisoned(failure) => Error::ManifestFailed { reason: failure.reason },
            compaction::Error::ReadOnly => Error::ReadOnly("the manifest was opened read-only".into()),
            compaction::Error::InvalidArgument(s) => Error::InvalidArgument(s),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl Error {
    /// An equivalent error, for failures that are recorded once and reported to
    /// every later caller (`std::io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Corruption { file, offset, reason } => {
                Error::Corruption { file: file.clone(), offset: *offset, reason: reason.clone() }
            }
            Error::Io { file, source } => {
                Error::Io { file: file.clone(), source: std::io::Error::new(source.kind(), source.to_string()) }
            }
            Error::StorageFull { file } => Error::StorageFull { file: file.clone() },
            Error::WrongKey => Error::WrongKey,
            Error::AlreadyExists(s) => Error::AlreadyExists(s.clone()),
            Error::NotFound(s) => Error::NotFound(s.clone()),
            Error::Locked { pid } => Error::Locked { pid: *pid },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::Conflict => Error::Conflict,
            Error::ReadOnly(s) => Error::ReadOnly(s.clone()),
            Error::UnsupportedVersion { file, found, supported } => {
                Error::UnsupportedVersion { file: file.clone(), found: *found, supported: *supported }
            }
            Error::MissingEpoch { file, epoch } => Error::MissingEpoch { file: file.clone(), epoch: *epoch },
            Error::TornLastFrame { file, offset } => Error::TornLastFrame { file: file.clone(), offset: *offset },
            Error::RolledBack { found, expected } => Error::RolledBack { found: *found, expected: *expected },
            Error::ChangeFeedTruncated { requested, oldest_available } => {
                Error::ChangeFeedTruncated { requested: *requested, oldest_available: *oldest_available }
            }
            Error::Closed => Error::Closed,
            Error::Retired { file } => Error::Retired { file: file.clone() },
            Error::Unsupported(s) => Error::Unsupported(s.clone()),
            Error::NoMergeOperator { keyspace } => Error::NoMergeOperator { keyspace: keyspace.clone() },
            Error::MergeFailed { keyspace, operator, reason } => {
                Error::MergeFailed { keyspace: keyspace.clone(), operator: operator.clone(), reason: reason.clone() }
            }
            Error::KeyspaceExists(s) => Error::KeyspaceExists(s.clone()),
            Error::UniqueViolation { collection, field, id, existing } => Error::UniqueViolation {
                collection: collection.clone(),
                field: field.clone(),
                id: id.clone(),
                existing: existing.clone(),
            },
            Error::NoSuchKeyspace(s) => Error::NoSuchKeyspace(s.clone()),
            Error::ManifestFailed { reason } => Error::ManifestFailed { reason: reason.clone() },
            Error::Internal(s) => Error::Internal(s.clone()),
            // Never recorded as a failure that stops writes; kept as its message.
            Error::Backup(e) => Error::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisoned(kind: Option<std::io::ErrorKind>) -> compaction::Error {
        compaction::Error::Poisoned(compaction::ManifestFailure { reason: "fsync failed: injected".into(), io_kind: kind })
    }

    #[test]
    fn a_poisoned_manifest_is_manifest_failed_or_storage_full_never_invalid_argument() {
        let e: Error = poisoned(Some(std::io::ErrorKind::Other)).into();
        assert!(matches!(&e, Error::ManifestFailed { reason } if reason.contains("injected")), "{e:?}");
        let e: Error = poisoned(None).into();
        assert!(matches!(e, Error::ManifestFailed { .. }), "{e:?}");
        let e: Error = poisoned(Some(std::io::ErrorKind::StorageFull)).into();
        assert!(e.is_storage_full(), "{e:?}");
    }

    #[test]
    fn an_invalid_version_edit_is_internal() {
        let e: Error = compaction::Error::InvalidEdit("table 7 deleted twice".into()).into();
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }

    #[test]
    fn a_log_poisoned_by_a_full_disk_is_storage_full_by_its_typed_cause() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let cause = wal::FailureCause::new(wal::FailedOp::Sync, &full);
        // The message says nothing about space: only the typed cause does.
        let e: Error = wal::Error::Poisoned { file: "000004.wal".into(), reason: "sync failed".into(), cause }.into();
        assert!(matches!(&e, Error::StorageFull { file } if file == "000004.wal"), "{e:?}");
        let eio = std::io::Error::from_raw_os_error(libc::EIO);
        let cause = wal::FailureCause::new(wal::FailedOp::Sync, &eio);
        let e: Error = wal::Error::Poisoned { file: "000004.wal".into(), reason: format!("{full}"), cause }.into();
        assert!(matches!(e, Error::ReadOnly(_)), "a message that mentions ENOSPC is not a full disk: {e:?}");
    }
}
