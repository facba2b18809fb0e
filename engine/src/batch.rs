//! Write batches: a group of puts, deletes, merges and range deletes applied
//! atomically, in one or several keyspaces.

use index::ValueKind;

use crate::keyspace::Keyspace;

/// One operation of a batch, as the batch record carries it: its kind, the
/// keyspace it writes to, its key and its value (empty for a delete). The
/// record format is driven by the kind (`engine/src/format.rs`), so a new kind
/// needs no new variant here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchOp {
    /// What the operation does (`Delete`, unused, for a range delete).
    pub(crate) kind: ValueKind,
    /// The keyspace it writes to (0: the default keyspace).
    pub(crate) keyspace: u32,
    /// The key it writes (a range delete: its start, inclusive).
    pub(crate) key: Vec<u8>,
    /// Its value; empty for a delete (a range delete: its end, exclusive).
    pub(crate) value: Vec<u8>,
    /// A range delete (record op kind 6; `engine/FORMAT.md`): every key in
    /// `[key, value)` older than the operation is deleted, as one range
    /// tombstone. Not a value kind, so it never becomes a table entry.
    pub(crate) range_delete: bool,
}

impl BatchOp {
    /// A put of `key` = `value` into `keyspace`.
    pub(crate) fn put(keyspace: u32, key: Vec<u8>, value: Vec<u8>) -> Self {
        BatchOp { kind: ValueKind::Put, keyspace, key, value, range_delete: false }
    }

    /// A delete of `key` in `keyspace`.
    pub(crate) fn delete(keyspace: u32, key: Vec<u8>) -> Self {
        BatchOp { kind: ValueKind::Delete, keyspace, key, value: Vec::new(), range_delete: false }
    }

    /// A range delete of `[start, end)` in `keyspace`.
    pub(crate) fn delete_range(keyspace: u32, start: Vec<u8>, end: Vec<u8>) -> Self {
        BatchOp { kind: ValueKind::Delete, keyspace, key: start, value: end, range_delete: true }
    }

    /// A merge operand `value` for `key` in `keyspace` (see [`crate::MergeOperator`]).
    pub(crate) fn merge(keyspace: u32, key: Vec<u8>, value: Vec<u8>) -> Self {
        BatchOp { kind: ValueKind::Merge, keyspace, key, value, range_delete: false }
    }

    /// The key the operation writes (a range delete: its start).
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

/// Puts and deletes applied atomically: after a crash either all of a committed
/// batch is visible or none of it; readers never see part of one. The
/// operations may address several keyspaces ([`WriteBatch::put_in`]); the batch
/// is still one WAL record, committed at one seqno range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<BatchOp>,
    pub(crate) bytes: usize,
    /// The keyspaces other than the default one the batch writes to, each
    /// once: empty exactly when every operation is in the default keyspace.
    pub(crate) keyspaces: Vec<Keyspace>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put into the default keyspace.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push(BatchOp::put(compaction::DEFAULT_KEYSPACE_ID, key.as_ref().to_vec(), value.as_ref().to_vec()))
    }

    /// Adds a delete in the default keyspace.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(BatchOp::delete(compaction::DEFAULT_KEYSPACE_ID, key.as_ref().to_vec()))
    }

    /// Adds a put into `keyspace`. The write fails with
    /// [`crate::Error::NoSuchKeyspace`], writing nothing of the batch, if
    /// `keyspace` has been dropped by then.
    pub fn put_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.note(keyspace);
        self.push(BatchOp::put(keyspace.id(), key.as_ref().to_vec(), value.as_ref().to_vec()))
    }

    /// Adds a delete in `keyspace` (see [`WriteBatch::put_in`] for a dropped one).
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>) -> &mut Self {
        self.note(keyspace);
        self.push(BatchOp::delete(keyspace.id(), key.as_ref().to_vec()))
    }

    fn note(&mut self, keyspace: &Keyspace) {
        if keyspace.id() != compaction::DEFAULT_KEYSPACE_ID && !self.keyspaces.iter().any(|k| k.id() == keyspace.id()) {
            self.keyspaces.push(keyspace.clone());
        }
    }

    /// The name of keyspace `id` as the batch's handles give it.
    pub(crate) fn keyspace_name(&self, id: u32) -> String {
        self.keyspaces.iter().find(|k| k.id() == id).map_or_else(|| format!("#{id}"), |k| k.name().to_owned())
    }

    fn push(&mut self, op: BatchOp) -> &mut Self {
        self.bytes += op.key.len() + op.value.len();
        self.ops.push(op);
        self
    }

    /// Adds a range delete: every key `k` with `start <= k < end` written
    /// before this operation (earlier in this batch included) is deleted;
    /// writes after it (later in the batch included) are not. One operation
    /// and one range tombstone, whatever the number of keys covered.
    /// `start >= end` fails the write with `Error::InvalidArgument`, and both
    /// bounds are subject to `max_key_bytes`.
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        self.push(BatchOp::delete_range(compaction::DEFAULT_KEYSPACE_ID, start.as_ref().to_vec(), end.as_ref().to_vec()))
    }

    /// Adds a merge operand for `key`: reads fold it over the key's earlier
    /// value with the keyspace's merge operator (see [`crate::MergeOperator`]).
    /// [`crate::Db::write`] refuses the whole batch (`InvalidArgument`, nothing
    /// written) when the keyspace has no operator.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> &mut Self {
        self.push(BatchOp::merge(compaction::DEFAULT_KEYSPACE_ID, key.as_ref().to_vec(), operand.as_ref().to_vec()))
    }

    /// [`WriteBatch::delete_range`] in `keyspace`: the tombstone deletes only
    /// keys of `keyspace` (see [`WriteBatch::put_in`] for a dropped one).
    pub fn delete_range_in(&mut self, keyspace: &Keyspace, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        self.note(keyspace);
        self.push(BatchOp::delete_range(keyspace.id(), start.as_ref().to_vec(), end.as_ref().to_vec()))
    }

    /// [`WriteBatch::merge`] in `keyspace`: folded with the merge operator
    /// registered under the keyspace's name. [`crate::Db::write`] refuses the
    /// whole batch (`InvalidArgument`, nothing written) when the keyspace has
    /// no operator (see [`WriteBatch::put_in`] for a dropped one).
    pub fn merge_in(&mut self, keyspace: &Keyspace, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> &mut Self {
        self.note(keyspace);
        self.push(BatchOp::merge(keyspace.id(), key.as_ref().to_vec(), operand.as_ref().to_vec()))
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Sum of key and value bytes.
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.bytes = 0;
        self.keyspaces.clear();
    }
}
