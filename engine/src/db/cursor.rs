//! Seekable iterators: a [`Cursor`] reads one pinned view of the store (the
//! memtables and version of its creation, at one seqno) and can be positioned
//! anywhere in it, then stepped either way.
//!
//! Each positioning (a seek, or a change of direction) builds a fresh
//! one-directional [`RangeIter`] over the pinned view, starting at the sought
//! key and running to the bound in that direction; steps in the same direction
//! then walk it. So a cursor costs what a range scan costs, plus one reseek of
//! the merged children per seek or turn, which is what a merging iterator
//! pays in other LSM engines too (every child is repositioned). The view is
//! the same at every reseek, so the answers agree with one another whatever
//! compaction or flushes happen meanwhile.

use std::ops::Bound;
use std::sync::Arc;

use index::{Direction, KeyRange};

use crate::db::inner::{Inner, ReadView};
use crate::db::iter::RangeIter;
use crate::error::Result;

/// Bounds and other settings of a [`Cursor`], given to [`crate::Db::cursor`].
///
/// The lower bound is inclusive and the upper bound exclusive, as RocksDB's
/// `iterate_lower_bound` / `iterate_upper_bound`: a cursor never stands on a
/// key outside [lower, upper), whatever it is asked to seek. A lower bound at
/// or past the upper bound selects nothing.
#[derive(Debug, Clone, Default)]
pub struct IterOptions {
    lower_bound: Option<Vec<u8>>,
    upper_bound: Option<Vec<u8>>,
}

impl IterOptions {
    /// No bounds: every key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys at or after `key` only.
    #[must_use]
    pub fn lower_bound(mut self, key: &[u8]) -> Self {
        self.lower_bound = Some(key.to_vec());
        self
    }

    /// Keys strictly before `key` only.
    #[must_use]
    pub fn upper_bound(mut self, key: &[u8]) -> Self {
        self.upper_bound = Some(key.to_vec());
        self
    }
}

/// A seekable, bidirectional iterator over the live pairs of one consistent
/// view of the store: the snapshot it was created at
/// ([`crate::Db::cursor_at`]), or the store as it was when it was created
/// ([`crate::Db::cursor`]). Versions shadowed at that point and deleted keys
/// are never shown; writes made after it are never seen.
///
/// A new cursor stands nowhere ([`Cursor::valid`] is false): position it
/// with one of the seeks, then step with [`Cursor::next`] and
/// [`Cursor::prev`], changing direction at will. Stepping off either end (or
/// out of the bounds) leaves it invalid, and stepping an invalid cursor does
/// nothing; a seek positions it again.
///
/// A step or seek that fails (a damaged table, a value kind this build cannot
/// read, which is [`crate::Error::Unsupported`]) returns the error and leaves
/// the cursor invalid; nothing in the store changes.
///
/// The cursor keeps the memtables and tables of its view alive (their files
/// are not removed while it exists), so drop it when done.
///
/// ```no_run
/// use synapsed_storage::{Credential, Db, IterOptions, Options};
///
/// let db = Db::open(std::path::Path::new("/tmp/example-store"), &Credential::passphrase("pw"), Options::default())?;
/// // Keys in ["user:", "user;"), read newest first from "user:42" down.
/// let mut cursor = db.cursor(IterOptions::new().lower_bound(b"user:").upper_bound(b"user;"))?;
/// cursor.seek_for_prev(b"user:42")?;
/// while let Some((key, value)) = cursor.entry() {
///     println!("{key:?} = {value:?}");
///     cursor.prev()?;
/// }
/// # Ok::<(), synapsed_storage::Error>(())
/// ```
pub struct Cursor {
    inner: Arc<Inner>,
    view: ReadView,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// The walk the cursor stands in, `None` when it stands nowhere.
    walk: Option<RangeIter>,
    direction: Direction,
    valid: bool,
}

impl Cursor {
    pub(crate) fn new(inner: Arc<Inner>, view: ReadView, options: IterOptions) -> Self {
        Cursor {
            inner,
            view,
            lower: options.lower_bound,
            upper: options.upper_bound,
            walk: None,
            direction: Direction::Forward,
            valid: false,
        }
    }

    /// The sequence number the cursor reads at.
    pub fn seqno(&self) -> u64 {
        self.view.seqno
    }

    /// Whether the cursor stands on a pair.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The key the cursor stands on; `None` when it is not [`valid`](Self::valid).
    pub fn key(&self) -> Option<&[u8]> {
        self.entry().map(|(k, _)| k)
    }

    /// The value the cursor stands on; `None` when it is not [`valid`](Self::valid).
    pub fn value(&self) -> Option<&[u8]> {
        self.entry().map(|(_, v)| v)
    }

    /// The pair the cursor stands on; `None` when it is not [`valid`](Self::valid).
    pub fn entry(&self) -> Option<(&[u8], &[u8])> {
        self.walk.as_ref().filter(|_| self.valid).map(RangeIter::pair)
    }

    /// Moves to the first pair within the bounds.
    pub fn seek_to_first(&mut self) -> Result<()> {
        let start = self.lower_start();
        self.position(start, self.upper_end(), Direction::Forward)
    }

    /// Moves to the last pair within the bounds.
    pub fn seek_to_last(&mut self) -> Result<()> {
        let end = self.upper_end();
        self.position(self.lower_start(), end, Direction::Reverse)
    }

    /// Moves to the first pair whose key is at or after `key` (and within the
    /// bounds: a `key` before the lower bound seeks the lower bound).
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        let start = match &self.lower {
            Some(lower) if lower.as_slice() > key => Bound::Included(lower.clone()),
            _ => Bound::Included(key.to_vec()),
        };
        self.position(start, self.upper_end(), Direction::Forward)
    }

    /// Moves to the last pair whose key is at or before `key` (and within the
    /// bounds: a `key` at or past the upper bound finds the last pair before it).
    pub fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        let end = match &self.upper {
            Some(upper) if upper.as_slice() <= key => Bound::Excluded(upper.clone()),
            _ => Bound::Included(key.to_vec()),
        };
        self.position(self.lower_start(), end, Direction::Reverse)
    }

    /// Moves to the next pair in key order. Does nothing when the cursor is
    /// not [`valid`](Self::valid).
    // A step, not an `Iterator`: it yields nothing and may fail; the name
    // pairs with `prev` as in other engines' cursors.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<()> {
        self.step(Direction::Forward)
    }

    /// Moves to the previous pair in key order. Does nothing when the cursor
    /// is not [`valid`](Self::valid).
    pub fn prev(&mut self) -> Result<()> {
        self.step(Direction::Reverse)
    }

    fn lower_start(&self) -> Bound<Vec<u8>> {
        self.lower.clone().map_or(Bound::Unbounded, Bound::Included)
    }

    fn upper_end(&self) -> Bound<Vec<u8>> {
        self.upper.clone().map_or(Bound::Unbounded, Bound::Excluded)
    }

    /// One step in `direction`: along the current walk if it runs that way,
    /// else a new walk from just past the current key.
    fn step(&mut self, direction: Direction) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        if self.direction == direction {
            return self.advance();
        }
        let Some(current) = self.key().map(<[u8]>::to_vec) else {
            self.valid = false;
            return Ok(());
        };
        match direction {
            Direction::Forward => self.position(Bound::Excluded(current), self.upper_end(), direction),
            Direction::Reverse => self.position(self.lower_start(), Bound::Excluded(current), direction),
        }
    }

    /// Starts a walk over [`start`, `end`] in `direction` and stands on its first pair.
    fn position(&mut self, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>, direction: Direction) -> Result<()> {
        self.valid = false;
        self.walk = None;
        self.direction = direction;
        self.walk = self.inner.range_iter_in(&self.view, KeyRange { start, end }, direction)?;
        self.advance()
    }

    /// Moves the walk on by one pair.
    fn advance(&mut self) -> Result<()> {
        let Some(walk) = self.walk.as_mut() else {
            self.valid = false;
            return Ok(());
        };
        match walk.next_ref() {
            Some(Ok(_)) => {
                self.valid = true;
                Ok(())
            }
            None => {
                self.valid = false;
                Ok(())
            }
            Some(Err(e)) => {
                self.valid = false;
                self.walk = None;
                Err(e)
            }
        }
    }
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("seqno", &self.view.seqno)
            .field("valid", &self.valid)
            .field("key", &self.key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::path::Path;
    use std::sync::atomic::Ordering;

    use crypto::vfs::SimVfs;
    use crypto::Credential;
    use index::ValueKind;

    use super::*;
    use crate::{Db, Error, Options};

    fn store(pairs: &[&str]) -> Db {
        let mut options = Options::tiny_for_tests();
        options.vfs = SimVfs::new();
        let db = Db::create(Path::new("/c/store"), &Credential::passphrase("cursor"), options).unwrap();
        for k in pairs {
            db.put(k.as_bytes(), k.to_uppercase().as_bytes()).unwrap();
        }
        db
    }

    fn at(c: &Cursor) -> Option<String> {
        c.key().map(|k| String::from_utf8(k.to_vec()).unwrap())
    }

    #[test]
    fn a_new_cursor_stands_nowhere_and_steps_do_nothing() {
        let db = store(&["a", "b"]);
        let mut c = db.cursor(IterOptions::new()).unwrap();
        assert!(!c.valid());
        assert_eq!((c.key(), c.value(), c.entry()), (None, None, None));
        c.next().unwrap();
        c.prev().unwrap();
        assert!(!c.valid());
        c.seek_to_last().unwrap();
        assert_eq!(c.entry(), Some((&b"b"[..], &b"B"[..])));
        c.next().unwrap();
        assert!(!c.valid());
        // Off the end it stays off: prev does not come back.
        c.prev().unwrap();
        assert!(!c.valid());
    }

    #[test]
    fn seeks_clamp_to_the_bounds() {
        let db = store(&["a", "b", "c", "d", "e"]);
        let mut c = db.cursor(IterOptions::new().lower_bound(b"b").upper_bound(b"d")).unwrap();
        c.seek(b"a").unwrap();
        assert_eq!(at(&c).as_deref(), Some("b"));
        c.seek_for_prev(b"z").unwrap();
        assert_eq!(at(&c).as_deref(), Some("c"), "the upper bound is exclusive");
        c.seek_for_prev(b"d").unwrap();
        assert_eq!(at(&c).as_deref(), Some("c"));
        c.seek(b"d").unwrap();
        assert!(!c.valid());
        c.seek_for_prev(b"a").unwrap();
        assert!(!c.valid());
        c.seek_to_first().unwrap();
        assert_eq!(at(&c).as_deref(), Some("b"));
        c.prev().unwrap();
        assert!(!c.valid(), "the lower bound stops a reverse step");
        let mut empty = db.cursor(IterOptions::new().lower_bound(b"c").upper_bound(b"c")).unwrap();
        empty.seek_to_first().unwrap();
        assert!(!empty.valid());
        empty.seek_to_last().unwrap();
        assert!(!empty.valid());
    }

    #[test]
    fn turning_around_returns_to_the_neighbour() {
        let db = store(&["a", "b", "c"]);
        db.flush().unwrap();
        db.delete(b"b").unwrap();
        db.put(b"bb", b"BB").unwrap();
        let mut c = db.cursor(IterOptions::new()).unwrap();
        c.seek(b"b").unwrap();
        assert_eq!(at(&c).as_deref(), Some("bb"));
        c.prev().unwrap();
        assert_eq!(at(&c).as_deref(), Some("a"));
        c.next().unwrap();
        assert_eq!(at(&c).as_deref(), Some("bb"));
        c.next().unwrap();
        assert_eq!(at(&c).as_deref(), Some("c"));
        c.prev().unwrap();
        assert_eq!(at(&c).as_deref(), Some("bb"));
    }

    #[test]
    fn a_cursor_keeps_its_view_across_writes_flushes_and_compaction() {
        let db = store(&["a", "b", "c"]);
        let snap = db.snapshot();
        let mut c = db.cursor_at(&snap, IterOptions::new()).unwrap();
        let mut now = db.cursor(IterOptions::new()).unwrap();
        assert_eq!(c.seqno(), snap.seqno());
        assert_eq!(now.seqno(), db.stats().last_seqno);
        drop(snap);
        db.delete(b"b").unwrap();
        db.put(b"d", b"D").unwrap();
        db.flush().unwrap();
        db.compact_range(None, None).unwrap();
        assert_eq!(now.seqno() + 2, db.stats().last_seqno, "the cursor reads at its creation's seqno");
        for cursor in [&mut c, &mut now] {
            cursor.seek_to_first().unwrap();
            let mut keys = Vec::new();
            while let Some(k) = at(cursor) {
                keys.push(k);
                cursor.next().unwrap();
            }
            assert_eq!(keys, ["a", "b", "c"]);
        }
        let mut fresh = db.cursor(IterOptions::new()).unwrap();
        fresh.seek_to_last().unwrap();
        assert_eq!(at(&fresh).as_deref(), Some("d"));
        fresh.prev().unwrap();
        assert_eq!(at(&fresh).as_deref(), Some("c"));
        fresh.prev().unwrap();
        assert_eq!(at(&fresh).as_deref(), Some("a"));
    }

    #[test]
    fn a_reserved_value_kind_is_unsupported_and_leaves_the_cursor_invalid() {
        let db = store(&["a", "c"]);
        let seqno = db.inner.pipeline.visible.load(Ordering::Acquire);
        db.inner.pipeline.mems.read().active.insert(b"b", seqno, ValueKind::BlobRef, b"reference");
        let mut c = db.cursor(IterOptions::new()).unwrap();
        c.seek_to_first().unwrap();
        assert_eq!(at(&c).as_deref(), Some("a"));
        assert!(matches!(c.next(), Err(Error::Unsupported(_))));
        assert!(!c.valid());
        assert!(matches!(c.seek_for_prev(b"b"), Err(Error::Unsupported(_))));
        assert!(!c.valid());
        // The keys around it stay readable.
        c.seek(b"c").unwrap();
        assert_eq!(at(&c).as_deref(), Some("c"));
        c.seek_for_prev(b"a").unwrap();
        assert_eq!(at(&c).as_deref(), Some("a"));
    }

    #[test]
    fn merge_operands_without_an_operator_are_an_error_and_leave_the_cursor_invalid() {
        let db = store(&["a", "c"]);
        let seqno = db.inner.pipeline.visible.load(Ordering::Acquire);
        db.inner.pipeline.mems.read().active.insert(b"b", seqno, ValueKind::Merge, b"operand");
        let mut c = db.cursor(IterOptions::new()).unwrap();
        c.seek_to_first().unwrap();
        assert!(matches!(c.next(), Err(Error::NoMergeOperator { .. })));
        assert!(!c.valid());
        assert!(matches!(c.seek_for_prev(b"b"), Err(Error::NoMergeOperator { .. })));
        assert!(matches!(db.get(b"b"), Err(Error::NoMergeOperator { .. })));
        c.seek(b"c").unwrap();
        assert_eq!(at(&c).as_deref(), Some("c"));
    }

    #[test]
    fn a_cursor_of_a_closed_store_fails_with_closed() {
        let db = store(&["a"]);
        let mut c = db.cursor(IterOptions::new()).unwrap();
        db.close().unwrap();
        assert!(matches!(c.seek_to_first(), Err(Error::Closed)));
        assert!(!c.valid());
    }
}
