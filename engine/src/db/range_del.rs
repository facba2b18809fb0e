//! Range deletes: `WriteBatch::delete_range` and `Db::delete_range` write one
//! range tombstone (record op kind 6, `engine/FORMAT.md`), whatever the number
//! of keys it covers.
//!
//! Every keyspace has range deletes (`WriteBatch::delete_range_in`): a
//! tombstone carries the id of its operation's keyspace and hides only that
//! keyspace's keys.
//!
//! Where tombstones live (`docs/design.md`, "Range deletes"): in the memtable
//! of their keyspace in their batch's generation while their WAL segment is
//! live, then in the version (the store's version holds every keyspace's),
//! moved there by the manifest edit of the flush (or ingest) that retires the
//! segment; a keyspace's drop edit removes its tombstones from the version.
//! A read view of a keyspace collects the sets of its memtables and its version;
//! a version of a key at seqno `s`, read at `r`, is hidden when a tombstone of
//! the view over the key has a seqno in `(s, r]`. Compaction drops what a
//! tombstone hides once no snapshot lies between the two, and the tombstone
//! leaves the version with the compaction that removes the last older entry
//! under its range.

use std::sync::Arc;

use compaction::Version;
use index::{Memtable, RangeTombstone, RangeTombstones, SeqNo};

use crate::batch::{BatchOp, WriteBatch};
use crate::error::{Error, Result};

/// Checks the bounds of a range delete before anything is written: both
/// non-empty and within `max_key_bytes`, `start` below `end`.
pub(crate) fn validate_bounds(start: &[u8], end: &[u8], max_key_bytes: usize) -> Result<()> {
    for (what, bound) in [("start", start), ("end", end)] {
        if bound.is_empty() {
            return Err(Error::InvalidArgument(format!("empty range delete {what}")));
        }
        if bound.len() > max_key_bytes {
            return Err(Error::InvalidArgument(format!(
                "range delete {what} of {} bytes exceeds max_key_bytes = {max_key_bytes}",
                bound.len()
            )));
        }
    }
    if start >= end {
        return Err(Error::InvalidArgument("range delete start is not below its end".into()));
    }
    Ok(())
}

/// The range tombstones of `batch` committed with first seqno `first`.
pub(crate) fn batch_tombstones(batch: &WriteBatch, first: SeqNo) -> Vec<RangeTombstone> {
    batch
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.range_delete)
        .map(|(i, op): (usize, &BatchOp)| op.range_tombstone(first + i as u64))
        .collect()
}

/// The range tombstones one read view of one keyspace sees: its memtables'
/// and its version's (only those of its keyspace count).
#[derive(Clone, Default)]
pub(crate) struct RangeDelView {
    /// The keyspace the view reads.
    keyspace: u32,
    sets: Vec<Arc<RangeTombstones>>,
}

impl RangeDelView {
    /// The tombstones of keyspace `keyspace` in `memtables` (that keyspace's)
    /// and `version` (the store's version, which holds every keyspace's).
    pub(crate) fn collect(keyspace: u32, memtables: &[Arc<Memtable>], version: &Version) -> Self {
        let mut sets: Vec<Arc<RangeTombstones>> = Vec::new();
        for held in memtables.iter().filter_map(|m| m.range_tombstones()) {
            sets.extend(held.iter().cloned());
        }
        // Tombstones of other keyspaces in it cost a lookup that finds nothing.
        if !version.range_tombstones().is_empty() {
            sets.push(Arc::clone(version.range_tombstones()));
        }
        RangeDelView { keyspace, sets }
    }

    /// Whether the view holds no tombstone (reads then skip every check).
    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// The seqno of the newest tombstone of the view's keyspace over `key` at
    /// or below `read_seqno`.
    pub(crate) fn newest_covering(&self, key: &[u8], read_seqno: SeqNo) -> Option<SeqNo> {
        self.sets.iter().filter_map(|s| s.newest_covering(self.keyspace, key, read_seqno)).max()
    }

    /// Whether a version of `key` at `seqno`, read at `read_seqno`, is deleted
    /// by a range tombstone.
    pub(crate) fn hides(&self, key: &[u8], seqno: SeqNo, read_seqno: SeqNo) -> bool {
        !self.is_empty() && self.newest_covering(key, read_seqno).is_some_and(|t| t > seqno)
    }
}

/// The range tombstones of `memtable` that `version` does not hold yet: what
/// the edit retiring the memtable's WAL segments must add.
pub(crate) fn not_in_version(memtable: &Memtable, version: &Version) -> Vec<RangeTombstone> {
    if memtable.range_tombstones().is_none() {
        return Vec::new();
    }
    let held = seqnos(version);
    memtable.range_tombstone_list().into_iter().filter(|t| !held.contains(&t.seqno)).collect()
}

/// The range tombstones of one generation of memtables (`default`, the
/// default keyspace's, and `others`, every other keyspace's by id) that
/// `version` does not hold yet, leaving out those of keyspaces no longer live
/// (dropped with their data): what the edit retiring the generation's WAL
/// segments must add.
pub(crate) fn generation_not_in_version<'a>(
    default: Option<&Memtable>,
    others: impl IntoIterator<Item = (u32, &'a Memtable)>,
    version: &Version,
) -> Vec<RangeTombstone> {
    let mut added: Vec<RangeTombstone> = default.map(|m| not_in_version(m, version)).unwrap_or_default();
    for (id, memtable) in others {
        if version.has_keyspace(id) {
            added.extend(not_in_version(memtable, version));
        }
    }
    added
}

fn seqnos(version: &Version) -> std::collections::HashSet<SeqNo> {
    version.range_tombstones().tombstones().iter().map(|t| t.seqno).collect()
}
