//! The memtable: a concurrent skiplist of internal keys. One writer at a time
//! inserts (the engine serializes writers); any number of readers read concurrently.

use std::sync::Arc;

use crate::iter::{Direction, InternalIterator, KeyRange};
use crate::key::{SeqNo, ValueKind};

/// An in-memory sorted table of recent writes.
pub struct Memtable {
    _private: (),
}

impl Memtable {
    /// An empty memtable. `id` is the number of the WAL segment that backs it.
    pub fn new(id: u64) -> Self {
        let _ = id;
        todo!()
    }

    /// The WAL segment number that backs this memtable.
    pub fn id(&self) -> u64 {
        todo!()
    }

    /// Inserts one version.
    pub fn insert(&self, user_key: &[u8], seqno: SeqNo, kind: ValueKind, value: &[u8]) {
        let _ = (user_key, seqno, kind, value);
        todo!()
    }

    /// The newest version of `user_key` with seqno <= `snapshot`, with its seqno.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        let _ = (user_key, snapshot);
        todo!()
    }

    /// Approximate memory used by the entries, in bytes.
    pub fn approximate_bytes(&self) -> usize {
        todo!()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// Whether the memtable holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An iterator over every version in `range` (no seqno filtering), in `direction`.
    /// It sees entries inserted after its creation only if they sort after its position.
    pub fn iter(self: &Arc<Self>, range: KeyRange, direction: Direction) -> Box<dyn InternalIterator> {
        let _ = (range, direction);
        todo!()
    }
}
