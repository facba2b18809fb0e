//! Write batches: a group of puts, deletes and merges applied atomically.

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchOp {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
    /// A merge operand (see [`crate::MergeOperator`]).
    Merge { key: Vec<u8>, value: Vec<u8> },
}

impl BatchOp {
    /// The value kind, key and value (empty for a delete) of the operation.
    pub(crate) fn parts(&self) -> (index::ValueKind, &[u8], &[u8]) {
        match self {
            BatchOp::Put { key, value } => (index::ValueKind::Put, key, value),
            BatchOp::Delete { key } => (index::ValueKind::Delete, key, &[]),
            BatchOp::Merge { key, value } => (index::ValueKind::Merge, key, value),
        }
    }

    /// The key the operation writes.
    pub(crate) fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } | BatchOp::Merge { key, .. } => key,
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

    /// Adds a merge operand for `key`: reads fold it over the key's earlier
    /// value with the keyspace's merge operator (see [`crate::MergeOperator`]).
    /// [`crate::Db::write`] refuses the whole batch (`InvalidArgument`, nothing
    /// written) when the keyspace has no operator.
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref().to_vec(), operand.as_ref().to_vec());
        self.bytes += key.len() + value.len();
        self.ops.push(BatchOp::Merge { key, value });
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
