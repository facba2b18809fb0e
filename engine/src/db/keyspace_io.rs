//! Reads and writes in a keyspace other than the default one: the liveness
//! check of a batch's keyspaces, the memtables a batch goes into, and the
//! `*_in` methods of [`Db`]. Every keyspace shares the WAL, the seqnos and the
//! snapshots; each has memtables and levels of its own (docs/design.md,
//! "Keyspaces").

use std::ops::Bound;
use std::sync::Arc;

use compaction::DEFAULT_KEYSPACE_ID;
use index::{Direction, KeyRange, Memtable, SeqNo, ValueKind};

use crate::batch::WriteBatch;
use crate::db::inner::Inner;
use crate::db::iter::{self, RangeIter};
use crate::db::read::resolve;
use crate::db::{Cursor, Db, DbIterator, IterOptions, Snapshot};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// The memtables one batch is inserted into: the default keyspace's active
/// memtable and the active memtable of each other keyspace it writes to.
pub(crate) struct BatchTargets {
    default: Arc<Memtable>,
    others: Vec<(u32, Arc<Memtable>)>,
}

impl BatchTargets {
    /// The memtable of `keyspace` (the default one for any keyspace not
    /// among the batch's, which `memtables_for` rules out).
    pub(crate) fn of(&self, keyspace: u32) -> &Memtable {
        if keyspace == DEFAULT_KEYSPACE_ID {
            return &self.default;
        }
        self.others.iter().find(|(id, _)| *id == keyspace).map_or(&self.default, |(_, m)| m)
    }
}

impl Inner {
    /// The keyspaces `batch` writes to other than the default one, ascending,
    /// each once; the default one first if it writes there.
    pub(crate) fn batch_keyspaces(&self, batch: &WriteBatch) -> Vec<u32> {
        let mut ids: Vec<u32> = batch.ops.iter().map(|op| op.keyspace).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// [`Error::NoSuchKeyspace`] if an operation of `batch` addresses a
    /// keyspace that is not live. Writers call it holding the writer mutex,
    /// which a drop also takes, so a drop is either after the batch or
    /// refuses it; nothing of a refused batch is written.
    pub(crate) fn check_keyspaces_live(&self, batch: &WriteBatch) -> Result<()> {
        if batch.keyspaces.is_empty() {
            // Every operation is in the default keyspace.
            return Ok(());
        }
        let version = self.versions.current();
        match batch.ops.iter().find(|op| !version.has_keyspace(op.keyspace)) {
            Some(op) => Err(Error::NoSuchKeyspace(batch.keyspace_name(op.keyspace))),
            None => Ok(()),
        }
    }

    /// The active memtables `batch` goes into, creating the memtable of a
    /// keyspace at its first write in this generation. Caller holds the
    /// writer mutex (no switch runs meanwhile).
    pub(crate) fn memtables_for(&self, batch: &WriteBatch) -> BatchTargets {
        if batch.keyspaces.is_empty() {
            // Every operation is in the default keyspace: the path of a store without keyspaces.
            return BatchTargets { default: self.pipeline.mems.read().active.clone(), others: Vec::new() };
        }
        let ids = self.batch_keyspaces(batch);
        let mut mems = self.pipeline.mems.write();
        let (number, bytes) = (mems.active.id(), self.options.memtable_size_bytes);
        let others = ids
            .iter()
            .filter(|&&id| id != DEFAULT_KEYSPACE_ID)
            .map(|&id| (id, Arc::clone(mems.active_in.entry(id).or_insert_with(|| Arc::new(Memtable::with_expected_bytes(number, bytes))))))
            .collect();
        BatchTargets { default: mems.active.clone(), others }
    }

    /// The value of `key` in `keyspace` at `snapshot` (None = now).
    pub(crate) fn get_in(&self, keyspace: &Keyspace, key: &[u8], snapshot: Option<SeqNo>) -> Result<Option<Vec<u8>>> {
        let _timer = self.op_timer(crate::metrics::Op::Get);
        self.check_open()?;
        let view = self.read_view_of(keyspace, snapshot)?;
        match self.newest_version(&view, key).map_err(|e| self.reader_error(e))? {
            // Operands are folded over their base by a scan of the one key
            // (with the keyspace's operator, as `Inner::get` does).
            Some((_, ValueKind::Merge, _)) => self.fold_key(&view, key),
            Some((_, kind, value)) => resolve(kind, value),
            None => Ok(None),
        }
    }

    /// Seqno of the newest write of `key` in `keyspace`, applied or in flight,
    /// a range delete over it included (see [`Inner::newest_seqno`]).
    pub(crate) fn newest_seqno_in(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<SeqNo>> {
        let view = self.read_view_of(keyspace, Some(index::MAX_SEQNO))?;
        Ok(self.newest_version(&view, key)?.map(|(seqno, _, _)| seqno))
    }

    /// An iterator over `range` of `keyspace` (see [`Inner::range_iter`]).
    fn range_iter_of(&self, keyspace: &Keyspace, range: KeyRange, direction: Direction, snapshot: Option<SeqNo>) -> Result<Option<RangeIter>> {
        let _timer = self.op_timer(crate::metrics::Op::Scan);
        self.check_open()?;
        let view = self.read_view_of(keyspace, snapshot)?;
        self.range_iter_in(&view, range, direction)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl Db {
    /// Stores `value` under `key` in `keyspace`. [`Error::NoSuchKeyspace`]
    /// (nothing written) if the keyspace has been dropped.
    pub fn put_in(&self, keyspace: &Keyspace, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put_in(keyspace, key, value);
        self.inner.write(&batch).map(|_| ())
    }

    /// Deletes `key` in `keyspace`. [`Error::NoSuchKeyspace`] (nothing
    /// written) if the keyspace has been dropped.
    pub fn delete_in(&self, keyspace: &Keyspace, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_in(keyspace, key);
        self.inner.write(&batch).map(|_| ())
    }

    /// Deletes every key `k` of `keyspace` with `start <= k < end`, as one
    /// range tombstone of that keyspace (see [`Db::delete_range`]); keys of
    /// other keyspaces are untouched. [`Error::NoSuchKeyspace`] (nothing
    /// written) if the keyspace has been dropped.
    pub fn delete_range_in(&self, keyspace: &Keyspace, start: &[u8], end: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range_in(keyspace, start, end);
        self.inner.write(&batch).map(|_| ())
    }

    /// Writes the merge operand `operand` for `key` in `keyspace` (see
    /// [`Db::merge`]), folded with the merge operator registered under the
    /// keyspace's name. `Error::InvalidArgument` (nothing written) when the
    /// keyspace has no operator; [`Error::NoSuchKeyspace`] (nothing written)
    /// if it has been dropped.
    pub fn merge_in(&self, keyspace: &Keyspace, key: &[u8], operand: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge_in(keyspace, key, operand);
        self.inner.write(&batch).map(|_| ())
    }

    /// The value of `key` in `keyspace`, `None` if absent.
    /// [`Error::NoSuchKeyspace`] if the keyspace has been dropped.
    pub fn get_in(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_in(keyspace, key, None)
    }

    /// The value of `key` in `keyspace` as of `snapshot`. A snapshot sees
    /// every keyspace at the same seqno.
    pub fn get_at_in(&self, keyspace: &Keyspace, key: &[u8], snapshot: &Snapshot) -> Result<Option<Vec<u8>>> {
        self.inner.get_in(keyspace, key, Some(snapshot.seqno()))
    }

    /// [`Db::range`] over `keyspace`.
    pub fn range_in(
        &self,
        keyspace: &Keyspace,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        reverse: bool,
        snapshot: Option<&Snapshot>,
    ) -> Result<DbIterator> {
        let range = KeyRange { start: start.map(<[u8]>::to_vec), end: end.map(<[u8]>::to_vec) };
        let direction = if reverse { Direction::Reverse } else { Direction::Forward };
        let state = self.inner.range_iter_of(keyspace, range, direction, snapshot.map(Snapshot::seqno))?;
        Ok(DbIterator { state })
    }

    /// Live pairs of `keyspace` whose key starts with `prefix`, ascending.
    pub fn scan_prefix_in(&self, keyspace: &Keyspace, prefix: &[u8]) -> Result<DbIterator> {
        let end = iter::prefix_successor(prefix);
        self.range_in(keyspace, Bound::Included(prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded), false, None)
    }

    /// [`Db::cursor`] over `keyspace`.
    pub fn cursor_in(&self, keyspace: &Keyspace, options: IterOptions) -> Result<Cursor> {
        self.inner.check_open()?;
        Ok(Cursor::new(Arc::clone(&self.inner), self.inner.read_view_of(keyspace, None)?, options))
    }

    /// [`Db::cursor_at`] over `keyspace`: reads at the snapshot's seqno.
    pub fn cursor_at_in(&self, keyspace: &Keyspace, snapshot: &Snapshot, options: IterOptions) -> Result<Cursor> {
        self.inner.check_open()?;
        Ok(Cursor::new(Arc::clone(&self.inner), self.inner.read_view_of(keyspace, Some(snapshot.seqno()))?, options))
    }

    /// Writes every keyspace's memtable to tables and waits (as [`Db::flush`],
    /// which already flushes all keyspaces together), then compacts the
    /// tables of `keyspace` overlapping [`start`, `end`] down to one level.
    pub fn compact_range_in(&self, keyspace: &Keyspace, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.inner.compact_range_of(keyspace, start, end)
    }
}
