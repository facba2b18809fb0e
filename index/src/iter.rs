//! One iterator trait under every iterator, and the merging iterator over many.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::error::Result;
use crate::key::{Entry, EntryRef};

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

/// A one-directional cursor over versioned entries, in the order its
/// [`Direction`] says; every version of every key in its range is returned
/// (collapsing versions is the reader's job).
///
/// The cursor hands out the entry it stands on as an [`EntryRef`] borrowed from
/// itself (a block of a table, a node of the memtable), so walking costs no
/// allocation; [`InternalIterator::next_entry`] copies an entry out for callers
/// that keep it.
pub trait InternalIterator: Send {
    /// Moves to the next entry (the first one on the first call); `Ok(false)`
    /// at the end. After the end or an error the iterator stays ended.
    fn advance(&mut self) -> Result<bool>;

    /// The entry the last `advance` moved to; `None` before the first
    /// `advance`, at the end and after an error.
    fn current(&self) -> Option<EntryRef<'_>>;

    /// The next entry, copied out; `Ok(None)` at the end.
    fn next_entry(&mut self) -> Result<Option<Entry>> {
        if !self.advance()? {
            return Ok(None);
        }
        Ok(self.current().map(|e| e.to_entry()))
    }
}

/// Merges children that each yield entries in the same direction into one stream
/// in that direction. Equal internal keys never occur across children (every
/// write has its own seqno); should they, the earlier child's entry comes first.
///
/// The children positioned on an entry form a binary heap (by index, compared
/// through their current entries) whose root holds the merged stream's entry.
/// Advancing moves the root child on and sifts it down once: in a short scan one
/// child often supplies several entries in a row, and then nothing moves.
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    heap: Vec<usize>,
    direction: Direction,
    started: bool,
    done: bool,
}

impl MergingIterator {
    /// Merges `children`, each already ordered by `direction`.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, direction: Direction) -> Self {
        let heap = Vec::with_capacity(children.len());
        MergingIterator { children, heap, direction, started: false, done: false }
    }

    /// Whether child `a`'s entry comes out before child `b`'s.
    fn before(&self, a: usize, b: usize) -> bool {
        let (Some(ea), Some(eb)) =
            (self.children.get(a).and_then(|c| c.current()), self.children.get(b).and_then(|c| c.current()))
        else {
            return false;
        };
        let by_key = match self.direction {
            Direction::Forward => ea.cmp_key(&eb),
            Direction::Reverse => eb.cmp_key(&ea),
        };
        by_key.then_with(|| a.cmp(&b)) == Ordering::Less
    }

    /// Restores the heap order below position `at`.
    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let child_at = |i: usize| self.heap.get(i).copied();
            let Some(here) = child_at(at) else { return };
            let mut best = (at, here);
            if let Some(l) = child_at(left) {
                if self.before(l, best.1) {
                    best = (left, l);
                }
            }
            if let Some(r) = child_at(right) {
                if self.before(r, best.1) {
                    best = (right, r);
                }
            }
            if best.0 == at {
                return;
            }
            self.heap.swap(at, best.0);
            at = best.0;
        }
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        for i in 0..self.children.len() {
            if let Some(c) = self.children.get_mut(i) {
                if c.advance()? {
                    self.heap.push(i);
                }
            }
        }
        for at in (0..self.heap.len() / 2).rev() {
            self.sift_down(at);
        }
        Ok(())
    }

    fn step(&mut self) -> Result<bool> {
        if !self.started {
            self.start()?;
        } else if let Some(&top) = self.heap.first() {
            let more = match self.children.get_mut(top) {
                Some(child) => child.advance()?,
                None => false,
            };
            if !more {
                self.heap.swap_remove(0);
            }
            self.sift_down(0);
        }
        Ok(!self.heap.is_empty())
    }
}

impl InternalIterator for MergingIterator {
    fn advance(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let r = self.step();
        if !matches!(r, Ok(true)) {
            self.done = true;
            self.heap.clear();
        }
        r
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.children.get(*self.heap.first()?)?.current()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::error::Error;
    use crate::key::{InternalKey, ValueKind};

    struct VecIter {
        entries: std::vec::IntoIter<Result<Entry>>,
        current: Option<Entry>,
    }

    impl VecIter {
        fn boxed(entries: Vec<Result<Entry>>) -> Box<dyn InternalIterator> {
            Box::new(VecIter { entries: entries.into_iter(), current: None })
        }
    }

    impl InternalIterator for VecIter {
        fn advance(&mut self) -> Result<bool> {
            self.current = self.entries.next().transpose()?;
            Ok(self.current.is_some())
        }

        fn current(&self) -> Option<EntryRef<'_>> {
            self.current.as_ref().map(Entry::entry_ref)
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
        VecIter::boxed(entries.into_iter().map(Ok).collect())
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
        let failing = VecIter::boxed(vec![Ok(entry("b", 1)), Err(Error::corruption("000009.sst", 42, "test damage"))]);
        let mut m = MergingIterator::new(vec![child(vec![entry("a", 2), entry("c", 3)], Direction::Forward), failing], Direction::Forward);
        assert_eq!(m.next_entry().unwrap().unwrap().key.user_key, b"a");
        // Taking "b" pulls the failing child's next entry: "b" still comes out, then the error.
        assert_eq!(m.next_entry().unwrap().unwrap().key.user_key, b"b");
        let err = m.next_entry().unwrap_err();
        assert!(err.to_string().contains("000009.sst"), "{err}");
        assert!(m.next_entry().unwrap().is_none());
    }
}
