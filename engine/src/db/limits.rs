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
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == std::io::ErrorKind::StorageFull
}

/// Whether a poisoned log's recorded reason is a full disk (the log keeps only
/// the message of the original error).
pub(crate) fn reason_is_enospc(reason: &str) -> bool {
    reason.contains(&format!("os error {}", libc::ENOSPC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_recognised_by_code_and_message() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(is_enospc(&full));
        assert!(!is_enospc(&std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(reason_is_enospc(&format!(
            "append at offset 40 failed: {full}"
        )));
        assert!(!reason_is_enospc(&format!(
            "fsync failed: {}",
            std::io::Error::from_raw_os_error(libc::EIO)
        )));
    }
}
