//! Range iteration: a merging iterator over the memtables and the tables of one
//! version, collapsed to one live value per user key as of the read seqno.
//!
//! Forward, versions of a key arrive newest first: the first one at or below the
//! seqno decides the key. Reverse, they arrive oldest first: the last one at or
//! below the seqno decides it, so a key is only settled when the next key starts.
//! Merge operands are folded over the version below them (the base) with the
//! keyspace's operator: forward, the operands of a key arrive newest first and
//! are collected down to the base (the first entry of the next key is then held
//! for the next step); reverse, they arrive oldest first after their base.
//! The iterator holds the version and the memtables it reads, so the files and
//! entries it needs stay alive for as long as it does.

use std::ops::Bound;
use std::sync::Arc;

use compaction::Version;
use index::{cmp_user_keys, Direction, EntryRef, InternalIterator, KeyRange, Memtable, MergingIterator, SeqNo, ValueKind};

use crate::db::inner::{retired_if_evicted, Inner, ReadView};
use crate::db::range_del::RangeDelView;
use crate::db::readers::ReaderRegistration;
use crate::db::read::is_live;
use crate::error::{Error, Result};
use crate::merge::KeyspaceMerge;

/// The state behind a [`crate::DbIterator`].
///
/// It reads entries where the merged children hold them (a table's cached
/// block, a memtable node) and copies only what must outlive a step: forward,
/// the user key just decided (to skip its older versions); reverse, the key
/// being collected and its newest visible value. The buffers are reused from
/// pair to pair, so a scan allocates nothing after its first pairs.
pub(crate) struct RangeIter {
    merged: MergingIterator,
    direction: Direction,
    range: KeyRange,
    seqno: SeqNo,
    /// Forward: the last user key decided. Reverse: the key being collected.
    key: Vec<u8>,
    has_key: bool,
    /// Reverse: the kind of the newest version of `key` at or below `seqno` so
    /// far (`Delete` for one a range tombstone hides), its value in `best_value`.
    best: Option<ValueKind>,
    /// The range tombstones of the view: a version they hide reads as deleted.
    range_dels: RangeDelView,
    best_value: Vec<u8>,
    /// Reverse: the merge operands of `key` above `best`, oldest first.
    operands: Vec<Vec<u8>>,
    /// Reverse: the seqno of the last version of `key` taken.
    last_seqno: Option<SeqNo>,
    /// Reverse: the pair last decided. Forward: `out_value` holds a folded value.
    out_key: Vec<u8>,
    out_value: Vec<u8>,
    /// Forward: the pair decided last is a folded value (in `out_value`).
    folded: bool,
    /// Forward: the merged stream's current entry is the first of a key not
    /// looked at yet (collecting a key's operands read one entry past them).
    held: bool,
    /// The keyspace's merge operator.
    merge: KeyspaceMerge,
    /// The merged stream has ended or left the range.
    exhausted: bool,
    done: bool,
    _version: Arc<Version>,
    _memtables: Vec<Arc<Memtable>>,
    /// A read-only handle's registration: an error after its eviction is the
    /// writer's overwrite, not damage.
    reader: Option<Arc<ReaderRegistration>>,
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
        let _timer = self.op_timer(crate::metrics::Op::Scan);
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if is_empty_range(&range.start, &range.end) {
            return Ok(None);
        }
        let view = self.read_view(snapshot)?;
        self.range_iter_in(&view, range, direction)
    }

    /// An iterator over `range` in `direction` reading `view`, which it keeps
    /// alive; `None` when the range is empty. A [`crate::Cursor`] builds one
    /// per seek over the view it pinned when it was created.
    pub(crate) fn range_iter_in(&self, view: &ReadView, range: KeyRange, direction: Direction) -> Result<Option<RangeIter>> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if is_empty_range(&range.start, &range.end) {
            return Ok(None);
        }
        let mut tables = view.version.iterators(&self.tables, &range, direction).map_err(|e| self.reader_error(e.into()))?;
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::with_capacity(view.memtables.len() + tables.len());
        for mem in &view.memtables {
            children.push(mem.iter(range.clone(), direction));
        }
        children.append(&mut tables);
        Ok(Some(RangeIter {
            merged: MergingIterator::new(children, direction),
            direction,
            range,
            seqno: view.seqno,
            key: Vec::new(),
            has_key: false,
            best: None,
            range_dels: view.range_dels.clone(),
            best_value: Vec::new(),
            operands: Vec::new(),
            last_seqno: None,
            out_key: Vec::new(),
            out_value: Vec::new(),
            folded: false,
            held: false,
            merge: self.merge_of_view(view),
            exhausted: false,
            done: false,
            _version: Arc::clone(&view.version),
            _memtables: view.memtables.clone(),
            reader: self.reader.clone(),
        }))
    }
}

/// Whether `key` lies beyond the far end of `range` in `direction`.
fn past_end(range: &KeyRange, direction: Direction, key: &[u8]) -> bool {
    match direction {
        Direction::Forward => match &range.end {
            Bound::Included(e) => key > e.as_slice(),
            Bound::Excluded(e) => key >= e.as_slice(),
            Bound::Unbounded => false,
        },
        Direction::Reverse => match &range.start {
            Bound::Included(s) => key < s.as_slice(),
            Bound::Excluded(s) => key <= s.as_slice(),
            Bound::Unbounded => false,
        },
    }
}

/// The merged stream's next entry, `None` (for good, marked in `exhausted`)
/// at its end. The children only return entries in the range; its far end is
/// checked once more here, so nothing past it is ever read as part of it.
fn next_in_range<'a>(
    merged: &'a mut MergingIterator,
    exhausted: &mut bool,
    range: &KeyRange,
    direction: Direction,
) -> Result<Option<EntryRef<'a>>> {
    if *exhausted || !merged.advance()? {
        *exhausted = true;
        return Ok(None);
    }
    match merged.current() {
        Some(e) if !past_end(range, direction, e.user_key) => {
            debug_assert!(range.contains(e.user_key), "a child returned a key outside the range");
            Ok(Some(e))
        }
        _ => {
            *exhausted = true;
            Ok(None)
        }
    }
}

impl RangeIter {
    /// Forward: versions of a key arrive newest first, so the first one at or
    /// below the seqno decides it. The pair is the merged stream's current
    /// entry, or a value folded from merge operands into `out_value`.
    fn step_forward(&mut self) -> Result<bool> {
        self.folded = false;
        loop {
            let entry = if std::mem::take(&mut self.held) {
                self.merged.current()
            } else {
                next_in_range(&mut self.merged, &mut self.exhausted, &self.range, self.direction)?
            };
            let Some(e) = entry else {
                return Ok(false);
            };
            if e.seqno > self.seqno || (self.has_key && cmp_user_keys(e.user_key, &self.key).is_eq()) {
                continue;
            }
            self.key.clear();
            self.key.extend_from_slice(e.user_key);
            self.has_key = true;
            if self.range_dels.hides(e.user_key, e.seqno, self.seqno) {
                // Its newest visible version is under a range tombstone: deleted.
                continue;
            }
            if e.kind == ValueKind::Merge {
                self.fold_forward()?;
                return Ok(true);
            }
            if is_live(e.kind)? {
                return Ok(true);
            }
        }
    }

    /// Forward, standing on the newest visible version of `key`, a merge
    /// operand: collects it and the operands below it down to their base,
    /// folds them into `out_value`, and holds the first entry of the next key.
    fn fold_forward(&mut self) -> Result<()> {
        // Newest first, as they arrive; each is at or below the seqno (older
        // versions of a key have smaller seqnos).
        let mut operands: Vec<Vec<u8>> = Vec::new();
        let mut base: Option<Vec<u8>> = None;
        let mut last_seqno = None;
        if let Some(e) = self.merged.current() {
            operands.push(e.value.to_vec());
            last_seqno = Some(e.seqno);
        }
        while let Some(e) = next_in_range(&mut self.merged, &mut self.exhausted, &self.range, self.direction)? {
            if !cmp_user_keys(e.user_key, &self.key).is_eq() {
                self.held = true;
                break;
            }
            // A view can hold one version twice (a memtable and the table it
            // was just flushed to); an operand counts once.
            if last_seqno.replace(e.seqno) == Some(e.seqno) {
                continue;
            }
            if self.range_dels.hides(e.user_key, e.seqno, self.seqno) {
                // Under a range tombstone: the operands fold over nothing.
                break;
            }
            match e.kind {
                ValueKind::Merge => operands.push(e.value.to_vec()),
                kind => {
                    if is_live(kind)? {
                        base = Some(e.value.to_vec());
                    }
                    break;
                }
            }
        }
        let oldest_first: Vec<&[u8]> = operands.iter().rev().map(Vec::as_slice).collect();
        self.out_value = self.merge.fold(&self.key, base.as_deref(), &oldest_first)?;
        self.folded = true;
        Ok(())
    }

    /// Reverse: versions arrive oldest first, so a key is decided when the next
    /// key (or the end) arrives: its newest visible value or tombstone, with
    /// the merge operands above it folded over it. The pair is moved to
    /// `out_key`/`out_value`.
    fn step_reverse(&mut self) -> Result<bool> {
        loop {
            let entry = next_in_range(&mut self.merged, &mut self.exhausted, &self.range, self.direction)?;
            let more = entry.is_some();
            let same_key = matches!(&entry, Some(e) if self.has_key && cmp_user_keys(e.user_key, &self.key).is_eq());
            let mut decided = false;
            if !same_key {
                let best = self.best.take();
                if !self.operands.is_empty() {
                    let base = match best {
                        Some(kind) if is_live(kind)? => Some(self.best_value.as_slice()),
                        _ => None,
                    };
                    let operands: Vec<&[u8]> = self.operands.iter().map(Vec::as_slice).collect();
                    self.out_value = self.merge.fold(&self.key, base, &operands)?;
                    self.operands.clear();
                    std::mem::swap(&mut self.out_key, &mut self.key);
                    decided = true;
                } else if let Some(kind) = best {
                    if is_live(kind)? {
                        std::mem::swap(&mut self.out_key, &mut self.key);
                        std::mem::swap(&mut self.out_value, &mut self.best_value);
                        decided = true;
                    }
                }
                self.key.clear();
                self.has_key = more;
                self.last_seqno = None;
                if let Some(e) = &entry {
                    self.key.extend_from_slice(e.user_key);
                }
            }
            if let Some(e) = &entry {
                // A view can hold one version twice (a memtable and the table
                // it was just flushed to); an operand counts once.
                let repeated = self.last_seqno.replace(e.seqno) == Some(e.seqno);
                if e.seqno <= self.seqno && !repeated {
                    if self.range_dels.hides(e.user_key, e.seqno, self.seqno) {
                        // Under a range tombstone: a deletion, which newer
                        // operands fold over as over nothing.
                        self.best = Some(ValueKind::Delete);
                        self.best_value.clear();
                        self.operands.clear();
                    } else if e.kind == ValueKind::Merge {
                        self.operands.push(e.value.to_vec());
                    } else {
                        self.best = Some(e.kind);
                        self.best_value.clear();
                        self.best_value.extend_from_slice(e.value);
                        self.operands.clear();
                    }
                }
            }
            if decided {
                return Ok(true);
            }
            if !more {
                return Ok(false);
            }
        }
    }

    /// The next live pair, borrowed until the next call; after the end or an
    /// error, `None` for good.
    pub(crate) fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        if self.done {
            return None;
        }
        let result = match self.direction {
            Direction::Forward => self.step_forward(),
            Direction::Reverse => self.step_reverse(),
        };
        match result {
            Ok(true) => Some(Ok(self.pair())),
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(retired_if_evicted(self.reader.as_deref(), e)))
            }
        }
    }

    /// The pair the last successful step decided.
    pub(crate) fn pair(&self) -> (&[u8], &[u8]) {
        match self.direction {
            Direction::Forward if self.folded => (&self.key, &self.out_value),
            Direction::Forward => (&self.key, self.merged.current().map_or(&[][..], |e| e.value)),
            Direction::Reverse => (&self.out_key, &self.out_value),
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
