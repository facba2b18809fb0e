//! The shared state of an open store, and the small helpers every part of the
//! engine uses: file names, error recording, and which memtables and version a
//! reader sees.
//!
//! `Inner` groups the store's shared state: its files and keys, the write
//! pipeline (`pipeline`: writer state, memtables, visible seqno), the
//! background scheduler (`sched`: work queue, condvars, counters) and the
//! failure state (`failure`).
//!
//! Lock order (never take an earlier one while holding a later one):
//! `pipeline.writer` -> `sched.work` -> `sched.bg` -> `pipeline.mems` ->
//! `failure.first` (an ingest and a key
//! rotation hold `writer` while they take `work`; docs/design.md, "Threading
//! and lock order", lists every lock). The `work` mutex serializes everything
//! that creates or removes tables (flush, compaction, obsolete-file removal),
//! so the removal can never delete a table that is still being written.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use compaction::{CompactionContext, Version, VersionSet};
use crypto::vfs::{LockGuard, Vfs};
use crypto::KeyManager;
use index::{BlockCache, Memtable, SeqNo, TableCache};
use parking_lot::{Condvar, Mutex, RwLock};
use wal::LogWriter;

use crate::db::range_del::RangeDelView;
use crate::db::readers::ReaderRegistration;
use crate::db::snapshot::SnapshotRegistry;
use crate::error::{Error, Result};
use crate::options::Options;

/// Name of the lock file in the store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// State only the writer holding `Inner::pipeline.writer` may change.
pub(crate) struct WriterState {
    /// The active WAL segment (`None` in a read-only open).
    pub(crate) wal: Option<Arc<LogWriter>>,
    /// Last seqno handed out.
    pub(crate) last_seqno: SeqNo,
    /// An append to `wal` failed because the disk was full: the next write
    /// moves to a fresh segment instead of stopping (see `db/write.rs`).
    pub(crate) wal_full: bool,
}

/// The memtables: one active, plus frozen ones waiting for flush (oldest first).
///
/// `active` and `immutables` are the default keyspace's. Every other keyspace
/// has a memtable of its own in the active generation once it is written to
/// (`active_in`); a switch freezes all of them together with the default one
/// (`immutables_in[i]` goes with `immutables[i]`), and a flush writes one
/// generation of all keyspaces with one manifest edit (docs/design.md,
/// "Keyspaces").
pub(crate) struct Memtables {
    pub(crate) active: Arc<Memtable>,
    pub(crate) immutables: VecDeque<Arc<Memtable>>,
    /// Active memtables of keyspaces other than the default one, by id.
    pub(crate) active_in: BTreeMap<u32, Arc<Memtable>>,
    /// Frozen memtables of other keyspaces, one map per entry of `immutables`.
    pub(crate) immutables_in: VecDeque<BTreeMap<u32, Arc<Memtable>>>,
}

impl Memtables {
    /// Memtables with `active` as the default keyspace's and nothing frozen.
    pub(crate) fn new(active: Arc<Memtable>) -> Self {
        Memtables { active, immutables: VecDeque::new(), active_in: BTreeMap::new(), immutables_in: VecDeque::new() }
    }

    /// Freezes the active generation (every keyspace's memtable) and makes
    /// `next` the default keyspace's active memtable.
    pub(crate) fn freeze(&mut self, next: Arc<Memtable>) {
        let frozen = std::mem::replace(&mut self.active, next);
        self.immutables.push_back(frozen);
        self.immutables_in.push_back(std::mem::take(&mut self.active_in));
    }

    /// Replaces everything with `active` alone (a read-only refresh).
    pub(crate) fn reset(&mut self, active: Arc<Memtable>) {
        *self = Memtables::new(active);
    }

    /// The memtables of keyspace `keyspace`, newest first.
    pub(crate) fn of_keyspace(&self, keyspace: u32) -> Vec<Arc<Memtable>> {
        if keyspace == compaction::DEFAULT_KEYSPACE_ID {
            let mut v = Vec::with_capacity(1 + self.immutables.len());
            v.push(self.active.clone());
            v.extend(self.immutables.iter().rev().cloned());
            return v;
        }
        let mut v = Vec::new();
        v.extend(self.active_in.get(&keyspace).cloned());
        v.extend(self.immutables_in.iter().rev().filter_map(|g| g.get(&keyspace).cloned()));
        v
    }

    /// Bytes held by the active generation, every keyspace's memtable together.
    pub(crate) fn active_bytes(&self) -> usize {
        self.active.approximate_bytes() + self.active_in.values().map(|m| m.approximate_bytes()).sum::<usize>()
    }

    /// Whether the active generation holds nothing in any keyspace.
    pub(crate) fn active_is_empty(&self) -> bool {
        self.active.is_empty() && self.active_in.values().all(|m| m.is_empty())
    }

    /// Bytes of every memtable, active and frozen, of every keyspace.
    pub(crate) fn total_bytes(&self) -> u64 {
        let others = self.active_in.values().chain(self.immutables_in.iter().flat_map(|g| g.values()));
        std::iter::once(&self.active).chain(self.immutables.iter()).chain(others).map(|m| m.approximate_bytes() as u64).sum()
    }
}

/// Coordination with the background threads.
#[derive(Default)]
pub(crate) struct BgState {
    pub(crate) shutdown: bool,
    /// Flushes and compactions begun so far: numbers each attempt.
    pub(crate) attempts: u64,
    /// The file the last flush or compaction could not write because the disk
    /// was full, and that attempt's number (cleared by the next one that
    /// succeeds); writers stalled since before that attempt began report it.
    pub(crate) full: Option<(String, u64)>,
}

/// The write pipeline: the writer's state, the memtables batches go into and
/// the seqnos that say what readers may see.
pub(crate) struct WritePipeline {
    pub(crate) writer: Mutex<WriterState>,
    pub(crate) mems: RwLock<Memtables>,
    /// Raised by 2, under the `mems` write lock, when a flushed memtable leaves
    /// `mems`; odd while a read-only refresh replaces the version and the
    /// memtables. A read view taken while it moved is taken again (see
    /// [`Inner::read_view`]).
    pub(crate) mems_generation: AtomicU64,
    /// Newest seqno readers may see: every batch up to it is applied and durable
    /// (as far as the sync policy promises).
    pub(crate) visible: AtomicU64,
    /// Last seqno whose batch has been appended to a WAL segment.
    pub(crate) last_logged: AtomicU64,
}

/// The background scheduler: coordination of flushes, compactions and
/// obsolete-file removal with the writers that wait for them, and their counts.
pub(crate) struct Scheduler {
    pub(crate) bg: Mutex<BgState>,
    /// Wakes the background threads (work queued, or shutdown).
    pub(crate) bg_wake: Condvar,
    /// Signals stalled writers that a flush or compaction finished.
    pub(crate) bg_done: Condvar,
    /// Serializes flushes, compactions and obsolete-file removal.
    pub(crate) work: Mutex<()>,
    pub(crate) flushes: AtomicU64,
    /// Batches written straight to a table (`Options::ingest_min_bytes`).
    pub(crate) ingests: AtomicU64,
    pub(crate) compactions: AtomicU64,
    /// Overwrite passes that obsolete-file removal uses at least, raised while a
    /// secure deletion runs (see `db/secure_delete.rs`).
    pub(crate) min_overwrite_passes: AtomicU32,
}

/// The failure state: the first failure that stopped writes.
pub(crate) struct FailureState {
    /// The first failure that stopped writes (WAL append/sync, or background work).
    pub(crate) first: Mutex<Option<Error>>,
    /// Whether it has been reported on stderr (once).
    pub(crate) logged: AtomicBool,
}

/// Everything an open store shares between the user's threads and its own:
/// the store's files and keys, the write pipeline, the background scheduler
/// and the failure state.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    /// The file system; a [`super::read_only_vfs::ReadOnlyVfs`] in a read-only open.
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) options: Options,
    pub(crate) keys: Arc<KeyManager>,
    pub(crate) versions: Arc<VersionSet>,
    pub(crate) tables: Arc<TableCache>,
    pub(crate) block_cache: Option<Arc<BlockCache>>,
    pub(crate) ctx: CompactionContext,
    pub(crate) pipeline: WritePipeline,
    pub(crate) snapshots: Arc<SnapshotRegistry>,
    pub(crate) sched: Scheduler,
    pub(crate) failure: FailureState,
    pub(crate) lock: Mutex<Option<Box<dyn LockGuard>>>,
    /// A read-only handle's registration as a reader (see `db/readers.rs`).
    pub(crate) reader: Option<Arc<ReaderRegistration>>,
    pub(crate) closed: AtomicBool,
    /// Per-operation metric handles, when `Options::metrics` is on.
    pub(crate) op_metrics: Option<Box<crate::metrics::OpMetrics>>,
}

/// What one read sees: memtables newest first, then the version.
pub(crate) struct ReadView {
    pub(crate) memtables: Vec<Arc<Memtable>>,
    pub(crate) version: Arc<Version>,
    pub(crate) seqno: SeqNo,
    /// The range tombstones of those memtables and that version.
    pub(crate) range_dels: RangeDelView,
    /// The keyspace read, `None` for the default one (whose reads then need
    /// no handle): its merge operator folds the operands read.
    pub(crate) keyspace: Option<crate::Keyspace>,
}

impl Inner {
    /// The memtables and version to read, and the seqno to read them at.
    ///
    /// Order matters: memtables first, then the version, then (for reads "now")
    /// the visible seqno. A memtable flushed in between is then found in both
    /// places, never in neither; and every table of the version holds only data
    /// that was visible when it was written, so nothing at or below the seqno
    /// read last has been compacted away.
    ///
    /// A memtable in the view may also be in the version as the table it was
    /// just flushed to (a flush writes every version as it is, so that view
    /// only holds exact copies, which merge folding counts once), but never
    /// with that table already compacted: compactions run after the flushed
    /// memtable left `mems` (both under `work`), and a view during which one
    /// left (`mems_generation` moved) is taken again. A compaction may fold
    /// merge operands into new entries at the same seqnos, which a reader
    /// holding the memtable's operands too would count twice.
    pub(crate) fn read_view(&self, snapshot: Option<SeqNo>) -> Result<ReadView> {
        let (visible, memtables, version) = self.stable_view(|mems| {
            let mut v = Vec::with_capacity(1 + mems.immutables.len());
            v.push(mems.active.clone());
            v.extend(mems.immutables.iter().rev().cloned());
            v
        })?;
        let seqno = snapshot.unwrap_or(visible);
        let range_dels = RangeDelView::collect(compaction::DEFAULT_KEYSPACE_ID, &memtables, &version);
        Ok(ReadView { memtables, version, seqno, range_dels, keyspace: None })
    }

    /// The visible seqno, the memtables `pick` chooses and the store's version,
    /// taken in that order while no refresh swaps them and no flushed memtable
    /// leaves (`mems_generation` even and unchanged across), as
    /// [`Inner::read_view`] explains. A refresh that failed closed the handle
    /// before its generation went even: what it left may mix a newer version
    /// with older memtables, so no read may use it ([`Error::Closed`]).
    fn stable_view(&self, pick: impl Fn(&Memtables) -> Vec<Arc<Memtable>>) -> Result<(SeqNo, Vec<Arc<Memtable>>, Arc<Version>)> {
        loop {
            let generation = self.pipeline.mems_generation.load(Ordering::SeqCst);
            if generation % 2 == 1 {
                // A read-only refresh is swapping the version and the memtables.
                std::thread::yield_now();
                continue;
            }
            // `visible` first: every batch at or below it is then in the memtables or
            // in the version loaded after it (a batch written as a table is made
            // visible only after its version is installed).
            let visible = self.pipeline.visible.load(Ordering::Acquire);
            let memtables = pick(&self.pipeline.mems.read());
            let version = self.versions.current();
            // The version's load is ordered before the second look.
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.pipeline.mems_generation.load(Ordering::SeqCst) != generation {
                continue;
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            return Ok((visible, memtables, version));
        }
    }

    /// [`Inner::read_view`] of keyspace `keyspace`: its memtables and its own
    /// levels (`version` is then that keyspace's levels, see
    /// `Version::keyspace_levels`), at the same kind of seqno, so a snapshot
    /// reads every keyspace at one seqno, and the range tombstones of the
    /// keyspace (the store's version holds every keyspace's). Taken in the
    /// same order and again when a flushed memtable left meanwhile, as
    /// [`Inner::read_view`] explains. [`Error::NoSuchKeyspace`] if it is not
    /// live.
    pub(crate) fn read_view_of(&self, keyspace: &crate::Keyspace, snapshot: Option<SeqNo>) -> Result<ReadView> {
        let id = keyspace.id();
        if id == compaction::DEFAULT_KEYSPACE_ID {
            return self.read_view(snapshot);
        }
        let (visible, memtables, store) = self.stable_view(|mems| mems.of_keyspace(id))?;
        let version = store.keyspace_levels(id).ok_or_else(|| Error::NoSuchKeyspace(keyspace.name().to_owned()))?;
        let range_dels = RangeDelView::collect(id, &memtables, &store);
        let seqno = snapshot.unwrap_or(visible);
        Ok(ReadView { memtables, version, seqno, range_dels, keyspace: Some(keyspace.clone()) })
    }

    /// The merge operator of the keyspace `view` reads.
    pub(crate) fn merge_of_view(&self, view: &ReadView) -> crate::merge::KeyspaceMerge {
        match &view.keyspace {
            None => self.merge_operator(),
            Some(k) => self.merge_operator_in(k),
        }
    }

    /// `e` as a read-only handle reports it: damage seen in a file after the
    /// writer evicted this reader is the writer's overwrite of a file it
    /// retired, not damage (see `db/readers.rs`).
    pub(crate) fn reader_error(&self, e: Error) -> Error {
        retired_if_evicted(self.reader.as_deref(), e)
    }

    /// Fails if writes are not allowed: read-only open, closed, or stopped by an earlier failure.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly("opened read-only".into()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(e) = self.failure.first.lock().as_ref() {
            return Err(e.duplicate());
        }
        Ok(())
    }

    /// Records the first failure that stops writes and reports it once on stderr.
    /// Later writes return a copy of it; reads keep working.
    pub(crate) fn record_failure(&self, what: &str, e: &Error) {
        let mut slot = self.failure.first.lock();
        if slot.is_none() {
            *slot = Some(match e {
                Error::ReadOnly(_) => e.duplicate(),
                other => Error::ReadOnly(format!("{what} failed, writes are stopped: {other}")),
            });
        }
        drop(slot);
        if !self.failure.logged.swap(true, Ordering::AcqRel) {
            tracing::error!(operation = what, dir = %self.dir.display(), error = %e, "failed: writes are stopped, reads continue");
            if let Some(l) = self.options.event_listener.as_deref() {
                l.on_background_error(&crate::events::BackgroundError {
                    operation: what.into(),
                    message: e.to_string(),
                    writes_stopped: true,
                });
            }
        }
        self.sched.bg_done.notify_all();
    }

    /// Whether `close` (or drop) has begun.
    pub(crate) fn shutting_down(&self) -> bool {
        self.sched.bg.lock().shutdown
    }

    /// Number of tables in level 0 of the current version: of the keyspace
    /// with the most, since each keyspace's level 0 is compacted on its own.
    pub(crate) fn l0_files(&self) -> usize {
        self.versions.current().all_keyspace_levels().map(|t| t.level_files(0).len()).max().unwrap_or(0)
    }

    /// Makes the directory's entries durable.
    pub(crate) fn sync_dir(&self) -> Result<()> {
        sync_dir(&*self.vfs, &self.dir)
    }
}

/// [`Inner::reader_error`] for a registration of one's own.
pub(crate) fn retired_if_evicted(reader: Option<&ReaderRegistration>, e: Error) -> Error {
    match e {
        Error::Corruption { file, .. } if reader.is_some_and(ReaderRegistration::is_evicted) => Error::Retired { file },
        other => other,
    }
}

/// Makes `dir`'s entries durable; the error names the directory.
pub(crate) fn sync_dir(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    vfs.sync_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })
}

/// The name of WAL segment `number`, as errors report it.
pub(crate) fn wal_name(number: u64) -> String {
    crypto::names::wal_file(number)
}

/// Whether WAL segment `number` holds no record and is not read as a log: it is
/// no longer than its header, or nothing but zeros. A crash can leave either in
/// place of a segment whose header was never synced: the first if no byte of it
/// reached the disk, the second if its preallocated size did and its header did
/// not. Neither can hold an acknowledged record, which is only ever synced behind
/// a synced header.
pub(crate) fn wal_segment_is_blank(vfs: &dyn Vfs, dir: &Path, number: u64) -> Result<bool> {
    const CHUNK: u64 = 64 * 1024;
    let path = wal::segment_path(dir, number);
    let io = |source| Error::Io { file: wal_name(number), source };
    let size = vfs.file_size(&path).map_err(io)?;
    if size <= crypto::FILE_HEADER_LEN as u64 {
        return Ok(true);
    }
    let file = vfs.open(&path).map_err(io)?;
    // A real segment's header starts with a magic: this stops at its first bytes
    // (never reading past them, so a segment a writer process cuts back meanwhile
    // is read safely).
    let mut buf = vec![0u8; crypto::FILE_HEADER_LEN];
    file.read_exact_at(&mut buf, 0).map_err(io)?;
    if buf.iter().any(|b| *b != 0) {
        return Ok(false);
    }
    let mut at = crypto::FILE_HEADER_LEN as u64;
    while at < file.len() {
        let n = (file.len() - at).min(CHUNK);
        buf.resize(usize::try_from(n).unwrap_or(0), 0);
        file.read_exact_at(&mut buf, at).map_err(io)?;
        if buf.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        at += n;
    }
    Ok(true)
}

/// The file number of a store file named `NNNNNN.ext` (`ext` is `sst` or
/// `wal`; `crypto::names` parses them), if `name` is one.
pub(crate) fn file_number(name: &str, ext: &str) -> Option<u64> {
    match ext {
        "sst" => crypto::names::table_number(name),
        "wal" => crypto::names::wal_number(name),
        _ => None,
    }
}

/// The largest file number any store file in `names` carries (WAL, table, manifest).
pub(crate) fn max_file_number(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| {
            file_number(n, "wal")
                .or_else(|| file_number(n, "sst"))
                .or_else(|| crypto::names::manifest_number(n))
                .or_else(|| crate::blob::blob_number(n))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_numbers_parse_only_store_names() {
        assert_eq!(file_number("000012.wal", "wal"), Some(12));
        assert_eq!(file_number("1234567.sst", "sst"), Some(1_234_567));
        assert_eq!(file_number("000012.wal", "sst"), None);
        assert_eq!(file_number(".wal", "wal"), None);
        assert_eq!(file_number("00a1.wal", "wal"), None);
        assert_eq!(file_number("000012.wal.tmp", "wal"), None);
        let names: Vec<String> = ["000003.wal", "000009.sst", "MANIFEST-000011", "CURRENT", "x.sst"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(max_file_number(&names), 11);
    }
}
