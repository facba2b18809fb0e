//! A hook for state kept outside the store that tells an old copy of the whole
//! directory from the current one.
//!
//! Inside the store, every file is authentic and chained to the others (see
//! `docs/security.md`), so a file of an earlier state next to newer ones is
//! refused. An exact old copy of the *whole* directory is still a valid store:
//! nothing in it can say it is old. Only something the attacker cannot roll back
//! can: a monotonic counter in an OS keystore, a TPM NV index, a server. A
//! [`FreshnessCounter`] in `Options::freshness_counter` is told the store's last
//! committed seqno after every acknowledged write, and asked at every open for
//! the highest it was told; a store that recovers to a lower seqno is refused
//! with [`crate::Error::RolledBack`] before anything is written.

use std::fmt::Debug;

/// Outside, monotonic state the store reports its progress to. Implementations
/// must keep the highest value they were given per store id, and survive what
/// the store directory does not (a restore from backup, a copy put back).
pub trait FreshnessCounter: Send + Sync + Debug {
    /// Called after each acknowledged write (after its WAL sync, under
    /// `SyncPolicy::EveryCommit`) with the store's id and the write's last
    /// seqno. Values for one store never decrease. An error is returned to the
    /// writer, whose write is nonetheless durable.
    fn advance(&self, store_id: &[u8; 16], last_seqno: u64) -> std::io::Result<()>;

    /// Asked at every open: the highest seqno ever given to [`FreshnessCounter::advance`]
    /// for this store, or `None` if none was.
    fn highest(&self, store_id: &[u8; 16]) -> std::io::Result<Option<u64>>;
}

/// The name errors of the counter carry in place of a file name.
pub(crate) const COUNTER_NAME: &str = "freshness counter";
