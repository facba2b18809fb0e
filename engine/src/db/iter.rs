//! Range iteration: a merging iterator over the memtables and the tables of one
//! version, collapsed to one live value per user key as of the read seqno.
//!
//! Forward, versions of a key arrive newest first: the first one at or below the
//! seqno decides the key. Reverse, they arrive oldest first: the last one at or
//! below the seqno decides it, so a key is only settled when the next key starts.
//! The iterator holds the version and the memtables it reads, so the files and
//! entries it needs stay alive for as long as it does.

use std::ops::Bound;
use std::sync::Arc;

use compaction::Version;
use index::{Direction, Entry, InternalIterator, KeyRange, Memtable, MergingIterator, SeqNo, ValueKind};

use crate::db::inner::Inner;
use crate::db::read::resolve;
use crate::error::{Error, Result};

/// The state behind a [`crate::DbIterator`].
pub(crate) struct RangeIter {
    merged: MergingIterator,
    direction: Direction,
    range: KeyRange,
    seqno: SeqNo,
    /// Forward: the last user key decided. Reverse: the key being collected.
    current_key: Option<Vec<u8>>,
    /// Reverse: the newest version of `current_key` at or below `seqno` so far.
    best: Option<(ValueKind, Vec<u8>)>,
    done: bool,
    _version: Arc<Version>,
    _memtables: Vec<Arc<Memtable>>,
}

/// Whether a range selects nothing (start past end), which the lower iterators
/// need not be asked about.
pub(crate) fn is_empty_range(start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

/// The smallest key greater than every key starting with `prefix`; `None` if
/// there is none (the prefix is empty or all 0xff).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut succ = prefix.to_vec();
    while let Some(last) = succ.pop() {
        if last < u8::MAX {
            succ.push(last + 1);
            return Some(succ);
        }
    }
    None
}

impl Inner {
    /// An iterator over `range` in `direction` at `snapshot` (None = now).
    /// `None` when the range is empty.
    pub(crate) fn range_iter(&self, range: KeyRange, direction: Direction, snapshot: Option<SeqNo>) -> Result<Option<RangeIter>> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if is_empty_range(&range.start, &range.end) {
            return Ok(None);
        }
        let view = self.read_view(snapshot);
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        for mem in &view.memtables {
            children.push(mem.iter(range.clone(), direction));
        }
        children.extend(view.version.iterators(&self.tables, &range, direction)?);
        Ok(Some(RangeIter {
            merged: MergingIterator::new(children, direction),
            direction,
            range,
            seqno: view.seqno,
            current_key: None,
            best: None,
            done: false,
            _version: view.version,
            _memtables: view.memtables,
        }))
    }
}

impl RangeIter {
    /// Whether `key` lies beyond the far end of the range in iteration order.
    fn past_end(&self, key: &[u8]) -> bool {
        match self.direction {
            Direction::Forward => match &self.range.end {
                Bound::Included(e) => key > e.as_slice(),
                Bound::Excluded(e) => key >= e.as_slice(),
                Bound::Unbounded => false,
            },
            Direction::Reverse => match &self.range.start {
                Bound::Included(s) => key < s.as_slice(),
                Bound::Excluded(s) => key <= s.as_slice(),
                Bound::Unbounded => false,
            },
        }
    }

    /// The next entry of the range, `None` past its end.
    fn next_in_range(&mut self) -> Result<Option<Entry>> {
        loop {
            let Some(entry) = self.merged.next_entry()? else { return Ok(None) };
            if self.past_end(&entry.key.user_key) {
                return Ok(None);
            }
            if self.range.contains(&entry.key.user_key) {
                return Ok(Some(entry));
            }
        }
    }

    fn next_forward(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        while let Some(entry) = self.next_in_range()? {
            if entry.key.seqno > self.seqno || self.current_key.as_ref() == Some(&entry.key.user_key) {
                continue;
            }
            // Reuse the buffer: a fresh allocation per entry showed up in range-read profiles.
            match self.current_key.as_mut() {
                Some(current) => {
                    current.clear();
                    current.extend_from_slice(&entry.key.user_key);
                }
                None => self.current_key = Some(entry.key.user_key.clone()),
            }
            if let Some(value) = resolve(entry.key.kind, entry.value)? {
                return Ok(Some((entry.key.user_key, value)));
            }
        }
        Ok(None)
    }

    fn next_reverse(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        loop {
            let entry = self.next_in_range()?;
            let finished = match &entry {
                Some(e) if self.current_key.as_ref() == Some(&e.key.user_key) => None,
                _ => self.current_key.take().map(|key| (key, self.best.take())),
            };
            let at_end = entry.is_none();
            if let Some(e) = entry {
                if self.current_key.is_none() {
                    self.current_key = Some(e.key.user_key.clone());
                }
                if e.key.seqno <= self.seqno {
                    self.best = Some((e.key.kind, e.value));
                }
            }
            if let Some((key, Some((kind, value)))) = finished {
                if let Some(value) = resolve(kind, value)? {
                    return Ok(Some((key, value)));
                }
            }
            if at_end {
                return Ok(None);
            }
        }
    }

    /// The next live pair; after the end or an error, `None` for good.
    pub(crate) fn next_pair(&mut self) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return None;
        }
        let result = match self.direction {
            Direction::Forward => self.next_forward(),
            Direction::Reverse => self.next_reverse(),
        };
        match result {
            Ok(Some(pair)) => Some(Ok(pair)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successors() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn empty_ranges() {
        let v = |s: &str| s.as_bytes().to_vec();
        assert!(is_empty_range(&Bound::Included(v("b")), &Bound::Included(v("a"))));
        assert!(is_empty_range(&Bound::Included(v("a")), &Bound::Excluded(v("a"))));
        assert!(!is_empty_range(&Bound::Included(v("a")), &Bound::Included(v("a"))));
        assert!(!is_empty_range(&Bound::Unbounded, &Bound::Excluded(v("a"))));
    }
}
