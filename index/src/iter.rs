//! One iterator trait under every iterator, and the merging iterator over many.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::ops::Bound;

use crate::error::{Error, Result};
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

/// A child's current entry in the heap. `BinaryHeap` is a max-heap, so the order is
/// arranged for the entry that must come out next to compare greatest.
struct HeapItem {
    entry: Entry,
    child: usize,
    direction: Direction,
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_key = self.entry.key.cmp(&other.entry.key);
        let by_key = match self.direction {
            Direction::Forward => by_key.reverse(),
            Direction::Reverse => by_key,
        };
        // Equal keys should not occur; ties go to the earlier child, deterministically.
        by_key.then_with(|| other.child.cmp(&self.child))
    }
}

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeapItem {}

/// Merges children that each yield entries in the same direction into one stream
/// in that direction. Equal internal keys never occur across children (every
/// write has its own seqno).
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    heap: BinaryHeap<HeapItem>,
    direction: Direction,
    started: bool,
    done: bool,
    /// A child's error, reported after the entry that was already taken.
    pending: Option<Error>,
}

impl MergingIterator {
    /// Merges `children`, each already ordered by `direction`.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, direction: Direction) -> Self {
        let heap = BinaryHeap::with_capacity(children.len());
        MergingIterator { children, heap, direction, started: false, done: false, pending: None }
    }

    fn pull(&mut self, child: usize) -> Result<()> {
        if let Some(c) = self.children.get_mut(child) {
            if let Some(entry) = c.next_entry()? {
                self.heap.push(HeapItem { entry, child, direction: self.direction });
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.started = true;
            for i in 0..self.children.len() {
                self.pull(i)?;
            }
        }
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        // Refill the top slot in place and sift it down once, rather than a pop and
        // a push: in a short scan one child often supplies several entries in a row.
        let Some(mut top) = self.heap.peek_mut() else { return Ok(None) };
        let next = match self.children.get_mut(top.child) {
            Some(child) => child.next_entry(),
            None => Ok(None),
        };
        match next {
            Ok(Some(entry)) => Ok(Some(std::mem::replace(&mut top.entry, entry))),
            Ok(None) => Ok(Some(PeekMut::pop(top).entry)),
            Err(e) => {
                self.pending = Some(e);
                Ok(Some(PeekMut::pop(top).entry))
            }
        }
    }
}

impl InternalIterator for MergingIterator {
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.done {
            return Ok(None);
        }
        let r = self.step();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::key::{InternalKey, ValueKind};

    struct VecIter(std::vec::IntoIter<Result<Entry>>);
    impl InternalIterator for VecIter {
        fn next_entry(&mut self) -> Result<Option<Entry>> {
            self.0.next().transpose()
        }
    }

    fn entry(k: &str, seq: u64) -> Entry {
        Entry { key: InternalKey::new(k.as_bytes().to_vec(), seq, ValueKind::Put), value: format!("{k}@{seq}").into_bytes() }
    }

    fn child(mut entries: Vec<Entry>, direction: Direction) -> Box<dyn InternalIterator> {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        if direction == Direction::Reverse {
            entries.reverse();
        }
        Box::new(VecIter(entries.into_iter().map(Ok).collect::<Vec<_>>().into_iter()))
    }

    #[test]
    fn merges_in_both_directions() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut all = Vec::new();
        let mut parts: Vec<Vec<Entry>> = vec![Vec::new(); 5];
        for seq in 1..=2000u64 {
            let e = entry(&format!("k{:03}", rng.gen_range(0..300)), seq);
            all.push(e.clone());
            parts[rng.gen_range(0..5)].push(e);
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        for direction in [Direction::Forward, Direction::Reverse] {
            let children = parts.iter().cloned().map(|p| child(p, direction)).chain(std::iter::once(child(Vec::new(), direction))).collect();
            let mut m = MergingIterator::new(children, direction);
            let mut got = Vec::new();
            while let Some(e) = m.next_entry().unwrap() {
                got.push(e);
            }
            let mut want = all.clone();
            if direction == Direction::Reverse {
                want.reverse();
            }
            assert_eq!(got, want, "{direction:?}");
        }
    }

    #[test]
    fn child_errors_propagate_and_end_the_merge() {
        let failing = Box::new(VecIter(
            vec![Ok(entry("b", 1)), Err(Error::corruption("000009.sst", 42, "test damage"))].into_iter(),
        ));
        let mut m = MergingIterator::new(vec![child(vec![entry("a", 2), entry("c", 3)], Direction::Forward), failing], Direction::Forward);
        assert_eq!(m.next_entry().unwrap().unwrap().key.user_key, b"a");
        // Taking "b" pulls the failing child's next entry: "b" still comes out, then the error.
        assert_eq!(m.next_entry().unwrap().unwrap().key.user_key, b"b");
        let err = m.next_entry().unwrap_err();
        assert!(err.to_string().contains("000009.sst"), "{err}");
        assert!(m.next_entry().unwrap().is_none());
    }
}
