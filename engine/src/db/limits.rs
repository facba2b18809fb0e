//! Limits on everything that comes from outside the store, and how a full disk
//! is recognised.
//!
//! Each limit is an [`Options`](crate::Options) field with a documented default
//! and a hard ceiling set by what the lower layers accept: the SSTable builder
//! refuses user keys over 1 MiB and values over 64 MiB (`index/FORMAT.md`), and
//! the WAL refuses records over `wal::MAX_RECORD_BYTES`. Checking here, before
//! anything is written, turns what would be a failure deep in a flush (long
//! after the write was acknowledged) into an `InvalidArgument` for the caller.

/// Largest user key the SSTable builder accepts (`index::format::MAX_USER_KEY_BYTES`).
pub(crate) const TABLE_MAX_KEY_BYTES: usize = 1 << 20;
/// Largest value the SSTable builder accepts (`index::format::MAX_VALUE_BYTES`).
pub(crate) const TABLE_MAX_VALUE_BYTES: usize = 64 << 20;

/// Whether `e` says the file system is out of space.
pub(crate) fn is_enospc(e: &std::io::Error) -> bool {
    wal::io_error_kind(e) == std::io::ErrorKind::StorageFull
}

/// How a full manifest is named in [`crate::Error::StorageFull`]: the manifest
/// records only the failure's kind, not which of its files (the live manifest
/// or the one a roll was writing) it was.
pub(crate) const MANIFEST_FILE_DESCRIPTION: &str = "MANIFEST";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_recognised_by_code_and_kind() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_enospc(&full));
        assert!(is_enospc(&std::io::Error::from(std::io::ErrorKind::StorageFull)));
        assert!(!is_enospc(&std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(!is_enospc(&std::io::Error::other(format!("{full}"))), "a message is not a cause");
    }
}
