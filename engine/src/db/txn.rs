//! Optimistic transactions. A transaction reads at a registered snapshot (plus
//! its own buffered writes) and records every key it reads. Commit takes the
//! writer mutex, checks that no key read or written has a version newer than
//! the snapshot, and writes the buffered batch through the normal write path
//! before releasing the mutex, so no other writer can slip in between the
//! check and the write.

use std::collections::{BTreeMap, BTreeSet};

use index::SeqNo;

use crate::batch::WriteBatch;
use crate::db::inner::Inner;
use crate::db::snapshot::SnapshotHandle;
use crate::error::{Error, Result};

/// The state of an open transaction.
pub(crate) struct TxnState {
    snapshot: SnapshotHandle,
    /// Buffered writes: `None` is a delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    reads: BTreeSet<Vec<u8>>,
}

impl TxnState {
    pub(crate) fn begin(inner: &Inner) -> Self {
        TxnState { snapshot: inner.snapshots.acquire(&inner.visible), writes: BTreeMap::new(), reads: BTreeSet::new() }
    }

    /// The seqno the transaction reads at.
    pub(crate) fn seqno(&self) -> SeqNo {
        self.snapshot.seqno()
    }

    pub(crate) fn get(&mut self, inner: &Inner, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(buffered) = self.writes.get(key) {
            return Ok(buffered.clone());
        }
        self.reads.insert(key.to_vec());
        inner.get(key, Some(self.seqno()))
    }

    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), None);
    }

    /// Commits: `Error::Conflict` (nothing written) if any key read or written
    /// changed after the snapshot. Returns the last seqno written, or the
    /// snapshot's seqno when there was nothing to write.
    pub(crate) fn commit(self, inner: &Inner) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        for (key, value) in &self.writes {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            };
        }
        inner.check_writable()?;
        let record_len = inner.validate_batch(&batch)?;
        let pending = {
            let mut writer = inner.writer.lock();
            let begin = self.seqno();
            for key in self.reads.iter().chain(self.writes.keys()) {
                if inner.newest_seqno(key)?.is_some_and(|s| s > begin) {
                    return Err(Error::Conflict);
                }
            }
            if batch.is_empty() {
                return Ok(begin);
            }
            inner.append_locked(&mut writer, &batch, record_len)?
        };
        inner.finish_write(pending)
    }
}
