//! Point reads and store statistics. A read looks in the active memtable, then
//! the frozen ones newest first, then the tables of the current version; the
//! first source holding a version of the key at or below the read seqno has the
//! newest one, because newer sources hold only newer seqnos.

use std::sync::atomic::Ordering;

use std::ops::Bound;

use index::{Direction, KeyRange, SeqNo, ValueKind, MAX_SEQNO};

use crate::db::inner::{Inner, ReadView};
use crate::db::Stats;
use crate::error::{Error, Result};

/// What a found version means to a reader: a value, a deletion, or a kind this
/// build reserves but does not implement.
pub(crate) fn resolve(kind: ValueKind, value: Vec<u8>) -> Result<Option<Vec<u8>>> {
    Ok(is_live(kind)?.then_some(value))
}

/// Whether a found version of `kind` holds a value (`false`: a deletion), or an
/// error for a kind this build reserves but does not implement.
pub(crate) fn is_live(kind: ValueKind) -> Result<bool> {
    match kind {
        ValueKind::Put => Ok(true),
        k if k.is_tombstone() => Ok(false),
        // Nothing in this build writes these (see engine/FORMAT.md, "Value kinds");
        // a store holding them was written by a newer build.
        other => Err(Error::Unsupported(format!("value kind {other:?} is reserved and not readable by this build"))),
    }
}

impl Inner {
    /// The value of `key` at `snapshot` (None = the newest visible state).
    pub(crate) fn get(&self, key: &[u8], snapshot: Option<SeqNo>) -> Result<Option<Vec<u8>>> {
        let _timer = self.op_timer(crate::metrics::Op::Get);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let view = self.read_view(snapshot)?;
        match self.newest_version(&view, key).map_err(|e| self.reader_error(e))? {
            // Operands need every version down to their base: a scan of the
            // one key over the same view folds them (`iter.rs`).
            Some((_, ValueKind::Merge, _)) => self.fold_key(&view, key),
            Some((_, kind, value)) => resolve(kind, value),
            None => Ok(None),
        }
    }

    /// The value of `key` in `view` when its newest visible version is a merge
    /// operand: the operands folded over their base (a scan of the one key,
    /// which stops at a range tombstone as at any deletion).
    pub(crate) fn fold_key(&self, view: &ReadView, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let range = KeyRange { start: Bound::Included(key.to_vec()), end: Bound::Included(key.to_vec()) };
        let Some(mut iter) = self.range_iter_in(view, range, Direction::Forward)? else {
            return Ok(None);
        };
        match iter.next_ref() {
            Some(Ok((_, value))) => Ok(Some(value.to_vec())),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// The newest version of `key` at or below the view's seqno, with its
    /// seqno; a version a range tombstone hides reads as a `Delete` at the
    /// tombstone's seqno.
    pub(crate) fn newest_version(&self, view: &ReadView, key: &[u8]) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let found = self.newest_point_version(view, key)?;
        if let Some(t) = view.range_dels.newest_covering(key, view.seqno) {
            if found.as_ref().is_none_or(|(seqno, ..)| *seqno < t) {
                return Ok(Some((t, ValueKind::Delete, Vec::new())));
            }
        }
        Ok(found)
    }

    /// The newest point version (put, delete or operand) of `key` in `view`.
    fn newest_point_version(&self, view: &ReadView, key: &[u8]) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        for mem in &view.memtables {
            if let Some(found) = mem.get(key, view.seqno) {
                return Ok(Some(found));
            }
        }
        Ok(view.version.get(&self.tables, key, view.seqno)?)
    }

    /// Seqno of the newest write of `key` in the store, applied or in flight,
    /// a range delete over it included. Transactions call it holding the
    /// writer mutex, so nothing newer can appear.
    pub(crate) fn newest_seqno(&self, key: &[u8]) -> Result<Option<SeqNo>> {
        Ok(self.newest_version(&self.read_view(Some(MAX_SEQNO))?, key)?.map(|(seqno, _, _)| seqno))
    }

    /// Counters and sizes.
    pub(crate) fn stats(&self) -> Stats {
        let version = self.versions.current();
        let levels = version.num_levels();
        // Every keyspace's tables, level by level.
        let mut files_per_level = vec![0; levels];
        let mut bytes_per_level = vec![0u64; levels];
        for (level, f) in version.all_files() {
            if let (Some(files), Some(bytes)) = (files_per_level.get_mut(level), bytes_per_level.get_mut(level)) {
                *files += 1;
                *bytes += f.size;
            }
        }
        let disk_bytes = self
            .vfs
            .list_dir(&self.dir)
            .map(|names| names.iter().filter_map(|n| self.vfs.file_size(&self.dir.join(n)).ok()).sum())
            .unwrap_or(0);
        let memtable_bytes = self.pipeline.mems.read().total_bytes();
        let range_tombstones = {
            let mems = self.pipeline.mems.read();
            // Every keyspace's, active and frozen, not yet in the version.
            let others = mems.active_in.iter().chain(mems.immutables_in.iter().flat_map(|g| g.iter()));
            let default = std::iter::once(&mems.active).chain(mems.immutables.iter()).map(|m| (compaction::DEFAULT_KEYSPACE_ID, &**m));
            let all = default.chain(others.map(|(id, m)| (*id, &**m)));
            let in_memtables = crate::db::range_del::generation_not_in_version(None, all, &version).len();
            in_memtables + version.range_tombstones().len()
        };
        let (block_cache_hits, block_cache_misses) = self.block_cache.as_ref().map_or((0, 0), |c| c.hit_stats());
        Stats {
            last_seqno: self.pipeline.visible.load(Ordering::Acquire),
            files_per_level,
            bytes_per_level,
            disk_bytes,
            memtable_bytes,
            block_cache_hits,
            block_cache_misses,
            open_tables: self.tables.open_count(),
            flushes: self.sched.flushes.load(Ordering::Relaxed),
            ingests: self.sched.ingests.load(Ordering::Relaxed),
            compactions: self.sched.compactions.load(Ordering::Relaxed),
            live_epochs: self.keys.epochs(),
            current_epoch: self.keys.current_epoch(),
            files_per_epoch: self.files_per_epoch().unwrap_or_default(),
            range_tombstones,
        }
    }
}
