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

/// The buffered writes of one key: the value the transaction put (`Some(None)`
/// a delete; `None` if it wrote none) and the merge operands written after it,
/// oldest first.
type Buffered = (Option<Option<Vec<u8>>>, Vec<Vec<u8>>);

/// The state of an open transaction.
pub(crate) struct TxnState {
    snapshot: SnapshotHandle,
    /// Buffered writes by key.
    writes: BTreeMap<Vec<u8>, Buffered>,
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
        let (base, operands) = match self.writes.get(key) {
            Some((Some(value), operands)) if operands.is_empty() => return Ok(value.clone()),
            Some((Some(value), operands)) => (value.clone(), operands),
            // Only operands: folded over the value the snapshot reads.
            Some((None, operands)) => {
                self.reads.insert(key.to_vec());
                (inner.get(key, Some(self.seqno()))?, operands)
            }
            None => {
                self.reads.insert(key.to_vec());
                return inner.get(key, Some(self.seqno()));
            }
        };
        let operands: Vec<&[u8]> = operands.iter().map(Vec::as_slice).collect();
        inner.merge_operator().fold(key, base.as_deref(), &operands).map(Some)
    }

    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), (Some(Some(value.to_vec())), Vec::new()));
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), (Some(None), Vec::new()));
    }

    /// Buffers a merge operand; `InvalidArgument` (nothing buffered) without
    /// a merge operator.
    pub(crate) fn merge(&mut self, inner: &Inner, key: &[u8], operand: &[u8]) -> Result<()> {
        inner.merge_operator().check_writable()?;
        self.writes.entry(key.to_vec()).or_default().1.push(operand.to_vec());
        Ok(())
    }

    /// Commits: `Error::Conflict` (nothing written) if any key read or written
    /// changed after the snapshot. Returns the last seqno written, or the
    /// snapshot's seqno when there was nothing to write.
    pub(crate) fn commit(self, inner: &Inner) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        let mut merges = false;
        for (key, (value, operands)) in &self.writes {
            match value {
                Some(Some(v)) => {
                    batch.put(key, v);
                }
                Some(None) => {
                    batch.delete(key);
                }
                None => {}
            }
            for operand in operands {
                batch.merge(key, operand);
                merges = true;
            }
        }
        inner.check_writable()?;
        let record_len = inner.validate_batch(&batch)?;
        if merges {
            inner.record_merge_operator()?;
        }
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
