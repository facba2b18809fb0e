//! Write batches: a group of puts and deletes applied atomically.

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    /// Deletes every key in `[start, end)` older than the operation, as one
    /// range tombstone (record op kind 6; `engine/FORMAT.md`).
    DeleteRange { start: Vec<u8>, end: Vec<u8> },
}

impl BatchOp {
    /// The key the operation writes (a range delete: its start).
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
            BatchOp::DeleteRange { start, .. } => start,
        }
    }
}

/// Puts and deletes applied atomically: after a crash either all of a committed
/// batch is visible or none of it; readers never see part of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<BatchOp>,
    pub(crate) bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        self.bytes += key.len() + value.len();
        self.ops.push(BatchOp::Put { key, value });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref().to_vec();
        self.bytes += key.len();
        self.ops.push(BatchOp::Delete { key });
        self
    }

    /// Adds a range delete: every key `k` with `start <= k < end` written
    /// before this operation (earlier in this batch included) is deleted;
    /// writes after it (later in the batch included) are not. One operation
    /// and one range tombstone, whatever the number of keys covered.
    /// `start >= end` fails the write with `Error::InvalidArgument`, and both
    /// bounds are subject to `max_key_bytes`.
    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        let (start, end) = (start.as_ref().to_vec(), end.as_ref().to_vec());
        self.bytes += start.len() + end.len();
        self.ops.push(BatchOp::DeleteRange { start, end });
        self
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
    }
}
