//! Optimistic transactions. A transaction reads at a registered snapshot (plus
//! its own buffered writes) and records every key it reads. Commit takes the
//! writer mutex, checks that no key read or written has a version newer than
//! the snapshot, and writes the buffered batch through the normal write path
//! before releasing the mutex, so no other writer can slip in between the
//! check and the write.

use std::collections::{BTreeMap, BTreeSet};

use compaction::DEFAULT_KEYSPACE_ID;
use index::SeqNo;

use crate::batch::WriteBatch;
use crate::db::inner::Inner;
use crate::db::snapshot::SnapshotHandle;
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// The buffered writes of one key: the value the transaction put (`Some(None)`
/// a delete; `None` if it wrote none) and the merge operands written after it,
/// oldest first.
type Buffered = (Option<Option<Vec<u8>>>, Vec<Vec<u8>>);

/// The state of an open transaction.
pub(crate) struct TxnState {
    snapshot: SnapshotHandle,
    /// Buffered writes by (keyspace id, key).
    writes: BTreeMap<(u32, Vec<u8>), Buffered>,
    /// Keys read, by (keyspace id, key).
    reads: BTreeSet<(u32, Vec<u8>)>,
    /// Handles of the keyspaces other than the default one it touched.
    keyspaces: Vec<Keyspace>,
}

impl TxnState {
    pub(crate) fn begin(inner: &Inner) -> Self {
        TxnState { snapshot: inner.snapshots.acquire(&inner.pipeline.visible), writes: BTreeMap::new(), reads: BTreeSet::new(), keyspaces: Vec::new() }
    }

    /// The seqno the transaction reads at.
    pub(crate) fn seqno(&self) -> SeqNo {
        self.snapshot.seqno()
    }

    pub(crate) fn get(&mut self, inner: &Inner, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let default = Keyspace::new(DEFAULT_KEYSPACE_ID, crate::DEFAULT_KEYSPACE);
        self.get_in(inner, &default, key)
    }

    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert((DEFAULT_KEYSPACE_ID, key.to_vec()), (Some(Some(value.to_vec())), Vec::new()));
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        self.writes.insert((DEFAULT_KEYSPACE_ID, key.to_vec()), (Some(None), Vec::new()));
    }

    /// Buffers a merge operand in the default keyspace; `InvalidArgument`
    /// (nothing buffered) without a merge operator.
    pub(crate) fn merge(&mut self, inner: &Inner, key: &[u8], operand: &[u8]) -> Result<()> {
        let default = Keyspace::new(DEFAULT_KEYSPACE_ID, crate::DEFAULT_KEYSPACE);
        self.merge_in(inner, &default, key, operand)
    }

    /// Buffers a merge operand in `keyspace`; `InvalidArgument` (nothing
    /// buffered) when the keyspace has no merge operator.
    pub(crate) fn merge_in(&mut self, inner: &Inner, keyspace: &Keyspace, key: &[u8], operand: &[u8]) -> Result<()> {
        inner.merge_operator_in(keyspace).check_writable()?;
        self.note(keyspace);
        self.writes.entry((keyspace.id(), key.to_vec())).or_default().1.push(operand.to_vec());
        Ok(())
    }

    /// Reads `key` of `keyspace` through the transaction: its own writes
    /// first (operands folded over what it wrote or what the snapshot reads).
    pub(crate) fn get_in(&mut self, inner: &Inner, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let id = (keyspace.id(), key.to_vec());
        let (base, operands) = match self.writes.get(&id) {
            Some((Some(value), operands)) if operands.is_empty() => return Ok(value.clone()),
            Some((Some(value), operands)) => (value.clone(), operands.clone()),
            // Only operands: folded over the value the snapshot reads.
            Some((None, operands)) => {
                let operands = operands.clone();
                (self.read_through(inner, keyspace, key)?, operands)
            }
            None => return self.read_through(inner, keyspace, key),
        };
        let operands: Vec<&[u8]> = operands.iter().map(Vec::as_slice).collect();
        inner.merge_operator_in(keyspace).fold(key, base.as_deref(), &operands).map(Some)
    }

    /// Reads `key` of `keyspace` at the snapshot, noting the read for the
    /// conflict check.
    fn read_through(&mut self, inner: &Inner, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let found = if keyspace.id() == DEFAULT_KEYSPACE_ID {
            inner.get(key, Some(self.seqno()))
        } else {
            inner.get_in(keyspace, key, Some(self.seqno()))
        }?;
        self.note(keyspace);
        self.reads.insert((keyspace.id(), key.to_vec()));
        Ok(found)
    }

    /// Buffers a put (`Some`) or delete (`None`) of `key` in `keyspace`.
    pub(crate) fn write_in(&mut self, keyspace: &Keyspace, key: &[u8], value: Option<&[u8]>) {
        self.note(keyspace);
        self.writes.insert((keyspace.id(), key.to_vec()), (Some(value.map(<[u8]>::to_vec)), Vec::new()));
    }

    fn note(&mut self, keyspace: &Keyspace) {
        if keyspace.id() != DEFAULT_KEYSPACE_ID && !self.keyspaces.iter().any(|k| k.id() == keyspace.id()) {
            self.keyspaces.push(keyspace.clone());
        }
    }

    /// The handle of keyspace `id` among those the transaction touched.
    fn handle(&self, id: u32) -> Keyspace {
        self.keyspaces.iter().find(|k| k.id() == id).cloned().unwrap_or_else(|| Keyspace::new(id, crate::DEFAULT_KEYSPACE))
    }

    /// Commits: `Error::Conflict` (nothing written) if any key read or written
    /// changed after the snapshot. Returns the last seqno written, or the
    /// snapshot's seqno when there was nothing to write.
    pub(crate) fn commit(self, inner: &Inner) -> Result<SeqNo> {
        let mut batch = WriteBatch::new();
        let mut merges = false;
        for ((id, key), (value, operands)) in &self.writes {
            let keyspace = self.handle(*id);
            match value {
                Some(Some(v)) => {
                    batch.put_in(&keyspace, key, v);
                }
                Some(None) => {
                    batch.delete_in(&keyspace, key);
                }
                None => {}
            }
            for operand in operands {
                batch.merge_in(&keyspace, key, operand);
                merges = true;
            }
        }
        inner.check_writable()?;
        let record_len = inner.validate_batch(&batch)?;
        if merges {
            inner.record_merge_operators(&batch)?;
        }
        let pending = {
            let mut writer = inner.pipeline.writer.lock();
            let begin = self.seqno();
            inner.check_keyspaces_live(&batch)?;
            for (id, key) in self.reads.iter().chain(self.writes.keys()) {
                let newest = if *id == DEFAULT_KEYSPACE_ID { inner.newest_seqno(key)? } else { inner.newest_seqno_in(&self.handle(*id), key)? };
                if newest.is_some_and(|s| s > begin) {
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
