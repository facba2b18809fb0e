//! One iterator trait under every iterator, and the merging iterator over many.

use std::ops::Bound;

use crate::error::Result;
use crate::key::Entry;

/// Iteration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending internal-key order (user key ascending, newest version first).
    Forward,
    /// Descending internal-key order (user key descending, oldest version first).
    Reverse,
}

/// A range of user keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound on the user key.
    pub start: Bound<Vec<u8>>,
    /// Upper bound on the user key.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange { start: Bound::Unbounded, end: Bound::Unbounded }
    }

    /// Whether `user_key` lies in the range.
    pub fn contains(&self, user_key: &[u8]) -> bool {
        let after_start = match &self.start {
            Bound::Included(s) => user_key >= s.as_slice(),
            Bound::Excluded(s) => user_key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let before_end = match &self.end {
            Bound::Included(e) => user_key <= e.as_slice(),
            Bound::Excluded(e) => user_key < e.as_slice(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }
}

/// A one-directional iterator over versioned entries, in the order its
/// [`Direction`] says; every version of every key in its range is returned
/// (collapsing versions is the reader's job).
pub trait InternalIterator: Send {
    /// The next entry, `Ok(None)` at the end. After an error the iterator is done.
    fn next_entry(&mut self) -> Result<Option<Entry>>;
}

/// Merges children that each yield entries in the same direction into one stream
/// in that direction. Equal internal keys never occur across children (every
/// write has its own seqno).
pub struct MergingIterator {
    _private: (),
}

impl MergingIterator {
    /// Merges `children`, each already ordered by `direction`.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, direction: Direction) -> Self {
        let _ = (children, direction);
        todo!("merging iterator")
    }
}

impl InternalIterator for MergingIterator {
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        todo!("merging iterator")
    }
}
