//! The database facade: the public types users hold, delegating to the engine
//! parts in `db/` (open and recovery, the write path, reads, iterators,
//! snapshots, transactions, background work, verify).

mod background;
mod blob_access;
#[path = "checkpoint.rs"]
mod checkpoint;
mod cursor;
mod filters;
mod feed;
pub(crate) mod inner;
mod keys;
mod iter;
mod keyspace_io;
mod keyspaces;
mod limits;
mod merge;
#[cfg(test)]
mod merge_tests;
mod open;
mod range_del;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use open::frame_cut_in_its_last_bytes;
mod read;
mod read_only_vfs;
mod readers;
mod refresh;
mod repair;
mod secure_delete;
mod snapshot;
mod table_properties;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_live_wal;
mod txn;
mod verify;
mod write;

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crypto::Credential;
use index::{Direction, KeyRange};
use parking_lot::Mutex;

use crate::batch::WriteBatch;
use crate::error::Result;
use crate::keyspace::Keyspace;
use crate::options::{Options, SyncPolicy};

use inner::Inner;
pub use repair::{BlockCounts, LostFile, RepairReport, LOST_DIR};
pub use cursor::{Cursor, IterOptions};
pub use feed::{Change, ChangeFeed, ChangeKind};

pub use keys::{EpochFiles, RekeyReport, RotationProgress, RotationReport};
pub use secure_delete::SecureDeleteReport;
pub use checkpoint::{CheckpointFile, CheckpointReport};
pub use table_properties::TableProperties;
pub(crate) use limits::{is_enospc, MANIFEST_FILE_DESCRIPTION, TABLE_MAX_KEY_BYTES, TABLE_MAX_VALUE_BYTES};

/// How often a read-only open starts over when a file vanished under it.
const READ_ONLY_OPEN_ATTEMPTS: u32 = 20;

/// An open store. `Send + Sync`: share it with `Arc` across threads.
pub struct Db {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The document store's write mutex (`doc/`).
    docs: crate::doc::DocShared,
    /// The blob store's writers, readers and GC coordinate through it.
    blob: crate::blob::BlobState,
    /// The replication state, made by the first [`Db::replica`] call.
    pub(crate) replica: Mutex<Option<Arc<crate::replica::ReplicaState>>>,
}

/// A consistent read view at one sequence number; released on drop.
pub struct Snapshot {
    handle: snapshot::SnapshotHandle,
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn seqno(&self) -> u64 {
        self.handle.seqno()
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seqno", &self.seqno()).finish()
    }
}

/// An iterator over live key/value pairs in key order (or reverse key order).
pub struct DbIterator {
    state: Option<iter::RangeIter>,
}

impl DbIterator {
    /// The next live pair, as [`Iterator::next`] returns it, but borrowed from
    /// the iterator until the next call instead of copied into two new
    /// vectors: a scan that only looks at each pair allocates nothing per pair.
    /// After the end or an error, `None` for good.
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.state.as_mut()?.next_ref()
    }
}

impl Iterator for DbIterator {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}

/// An optimistic transaction: reads see a snapshot plus the transaction's own
/// writes; `commit` fails with `Error::Conflict` if any key it read or wrote was
/// written by someone else after the transaction began.
pub struct Transaction<'db> {
    db: &'db Db,
    state: txn::TxnState,
}

/// Counters and sizes of an open store.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Last committed sequence number.
    pub last_seqno: u64,
    /// Number of SSTables per level, of every keyspace together.
    pub files_per_level: Vec<usize>,
    /// Bytes of SSTables per level, of every keyspace together.
    pub bytes_per_level: Vec<u64>,
    /// Total bytes of all files in the store directory.
    pub disk_bytes: u64,
    /// Bytes in the active and immutable memtables of every keyspace.
    pub memtable_bytes: u64,
    /// Block-cache hits.
    pub block_cache_hits: u64,
    /// Block-cache misses.
    pub block_cache_misses: u64,
    /// SSTables the table cache holds open (at most `max_open_files` in a
    /// read-write handle; every table of the version in a read-only one).
    pub open_tables: usize,
    /// Flushes done since open.
    pub flushes: u64,
    /// Batches written straight to a level-0 table since open
    /// (`Options::ingest_min_bytes`).
    pub ingests: u64,
    /// Compactions done since open.
    pub compactions: u64,
    /// Data-key epochs live in the keyring.
    pub live_epochs: Vec<u32>,
    /// The data-key epoch new files are written under.
    pub current_epoch: u32,
    /// For each epoch that some file in the store directory is under, those files.
    pub files_per_epoch: Vec<EpochFiles>,
    /// Live range tombstones (`Db::delete_range`), in memtables and in the
    /// current version. Each is held in memory and, once flushed, in the
    /// manifest, until nothing older than it is left under its range.
    pub range_tombstones: usize,
}

/// What `verify` found: each damaged file and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Files checked.
    pub files_checked: usize,
    /// Entries read from tables and logs.
    pub entries_checked: u64,
    /// (file name, problem) for each damaged file.
    pub damaged: Vec<(String, String)>,
    /// (file name, offset) of each WAL segment that ends in a torn tail: the
    /// remains of an append cut short by a crash or a full disk. Never
    /// acknowledged, so not damage; a read-write open truncates it.
    pub torn_tails: Vec<(String, u64)>,
}

impl VerifyReport {
    /// Whether every file is intact (torn WAL tails are not damage).
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl Db {
    /// Creates a new store in `dir` (creating the directory); fails with
    /// `AlreadyExists` if it holds one.
    pub fn create(dir: &Path, credential: &Credential, options: Options) -> Result<Db> {
        Ok(Db::run(open::create(dir, credential, options)?))
    }

    /// Opens an existing store: unlocks keys, replays the WAL, truncating a torn tail.
    ///
    /// ```
    /// use synapsed_storage::{Credential, Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let cred = Credential::passphrase("correct horse battery staple");
    /// let db = Db::create(dir.path(), &cred, Options::default())?;
    /// db.put(b"greeting", b"hello")?;
    /// db.close()?;
    ///
    /// let db = Db::open(dir.path(), &cred, Options::default())?;
    /// assert_eq!(db.get(b"greeting")?, Some(b"hello".to_vec()));
    /// // Another passphrase opens nothing.
    /// assert!(Db::open(dir.path(), &Credential::passphrase("wrong"), Options::default()).is_err());
    /// # db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: &Path, credential: &Credential, options: Options) -> Result<Db> {
        // A read-only open races the writer process: a manifest, table or log it
        // just listed may be retired before it opens it, or the keyring it read
        // may be older than the manifest (a key rotation). Starting over sees the
        // writer's newer state; once open, the handle holds every table it reads.
        let mut attempts = 0;
        loop {
            match open::open(dir, credential, options.clone()) {
                Err(e) if options.read_only && e.is_retryable() && attempts < READ_ONLY_OPEN_ATTEMPTS => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(inner) if options.read_only => {
                    // The open above can race a flush of the writer process and
                    // miss the logs it retired; a refresh checks for that. It reads
                    // with the keyring the open read: a rotation since then makes it
                    // fail for a missing epoch, and a new open reads the new keyring.
                    match inner.refresh() {
                        Err(e) if e.is_retryable() && attempts < READ_ONLY_OPEN_ATTEMPTS => {
                            attempts += 1;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        refreshed => {
                            refreshed?;
                            return Ok(Db::run(inner));
                        }
                    }
                }
                result => return Ok(Db::run(result?)),
            }
        }
    }

    /// The document store's shared state.
    pub(crate) fn doc_shared(&self) -> &crate::doc::DocShared {
        &self.docs
    }

    /// The key of the searchable tokens of `purpose` (the document store's
    /// blind indexes): HKDF of the store's integrity root, so it stays the same
    /// across key rotation and rekey (docs/security.md).
    pub(crate) fn search_key(&self, purpose: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
        self.inner.keys.integrity_key(purpose)
    }

    /// Starts the background threads the options ask for.
    fn run(inner: Arc<Inner>) -> Db {
        let mut threads = Vec::new();
        if !inner.options.read_only {
            if inner.options.background_compaction {
                let bg = inner.clone();
                threads.push(std::thread::spawn(move || background::run_background(bg)));
            }
            if let SyncPolicy::Periodic { interval_ms } = inner.options.sync {
                let bg = inner.clone();
                let interval = Duration::from_millis(interval_ms.max(1));
                threads.push(std::thread::spawn(move || background::run_periodic_sync(bg, interval)));
            }
        }
        Db {
            inner,
            threads: Mutex::new(threads),
            docs: Default::default(),
            blob: crate::blob::BlobState::default(),
            replica: Mutex::new(None),
        }
    }

    /// Reads and authenticates every file of a store without opening it for writing.
    pub fn verify(dir: &Path, credential: &Credential, options: Options) -> Result<VerifyReport> {
        verify::verify(dir, credential, &options)
    }

    /// Opens the store in `dir` like [`Db::open`]; if the open fails only because
    /// the newest WAL segment ends in a frame cut short in its last bytes
    /// ([`Error::TornLastFrame`](crate::Error::TornLastFrame): what a power loss can leave of a write that
    /// was never acknowledged, `docs/design.md` section 6), runs [`Db::repair`],
    /// which cuts that frame off, and opens again. Returns the repair's report
    /// when one ran. Any other failure is returned as it is, with nothing
    /// changed. The one call an application needs to get its store back after a
    /// power loss without a person; the frame it drops is reported in
    /// `RepairReport::lost` (if the frame had been acknowledged and was later
    /// damaged, that write is what is lost).
    pub fn open_or_repair(dir: &Path, credential: &Credential, options: Options) -> Result<(Db, Option<RepairReport>)> {
        match Db::open(dir, credential, options.clone()) {
            Ok(db) => Ok((db, None)),
            Err(e) if e.is_torn_last_frame() && !options.read_only => {
                let report = Db::repair(dir, credential, options.clone())?;
                Ok((Db::open(dir, credential, options)?, Some(report)))
            }
            Err(e) => Err(e),
        }
    }

    /// Rebuilds the manifest of a damaged store from the tables and logs that
    /// survived (see `engine/src/db/repair.rs`): damaged tables are salvaged
    /// around the damage and moved to `DIR/lost/`, logs are replayed up to their
    /// first damaged record, and the report says what was lost. Takes the
    /// writer lock; the store must not be open elsewhere.
    pub fn repair(dir: &Path, credential: &Credential, options: Options) -> Result<RepairReport> {
        repair::repair(dir, credential, &options)
    }

    /// Read-only handles only: catches up with the writer process (re-reads
    /// `CURRENT`, the manifest and the WAL), so later reads see everything it
    /// had committed by then. Snapshots taken before are not kept consistent;
    /// see `engine/src/db/refresh.rs`. A refresh that fails (a damaged file, more
    /// tables than `max_open_files`, a handle the writer evicted, which gets
    /// `Error::Retired`) closes the handle: later reads return `Error::Closed`,
    /// and a new read-only open starts afresh.
    pub fn refresh(&self) -> Result<()> {
        self.inner.refresh()
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.inner.write(&batch).map(|_| ())
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.inner.write(&batch).map(|_| ())
    }

    /// Deletes every key `k` with `start <= k < end`, as one range tombstone:
    /// one WAL record of one operation, whatever the number of keys covered.
    /// `start >= end` is `Error::InvalidArgument`; both bounds are subject to
    /// `max_key_bytes`. See [`WriteBatch::delete_range`].
    pub fn delete_range(&self, start: &[u8], end: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete_range(start, end);
        self.inner.write(&batch).map(|_| ())
    }

    /// Writes the merge operand `operand` for `key`: later reads fold it over
    /// the key's earlier value with the default keyspace's merge operator
    /// (see [`crate::MergeOperator`]). Without an operator for the keyspace
    /// it is `Error::InvalidArgument` and nothing is written.
    pub fn merge(&self, key: &[u8], operand: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.merge(key, operand);
        self.inner.write(&batch).map(|_| ())
    }

    /// The value of `key`, `None` if absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key, None)
    }

    /// The value of `key` as of `snapshot`.
    pub fn get_at(&self, key: &[u8], snapshot: &Snapshot) -> Result<Option<Vec<u8>>> {
        self.inner.get(key, Some(snapshot.seqno()))
    }

    /// Applies `batch` atomically; returns the sequence number of its last operation.
    pub fn write(&self, batch: WriteBatch) -> Result<u64> {
        self.inner.write(&batch)
    }

    /// A read view of the store as it is now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { handle: self.inner.snapshots.acquire(&self.inner.pipeline.visible) }
    }

    /// Live pairs with keys in (`start`, `end`), ascending (`reverse` = false) or
    /// descending, as of `snapshot` (or now).
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool, snapshot: Option<&Snapshot>) -> Result<DbIterator> {
        let range = KeyRange { start: start.map(<[u8]>::to_vec), end: end.map(<[u8]>::to_vec) };
        let direction = if reverse { Direction::Reverse } else { Direction::Forward };
        let state = self.inner.range_iter(range, direction, snapshot.map(Snapshot::seqno))?;
        Ok(DbIterator { state })
    }

    /// A seekable [`Cursor`] over the store as it is now, within the bounds
    /// of `options`. It reads at the seqno of this moment for as long as it
    /// lives, and starts unpositioned: seek before reading.
    pub fn cursor(&self, options: IterOptions) -> Result<Cursor> {
        self.cursor_in_view(None, options)
    }

    /// A seekable [`Cursor`] over the store as of `snapshot`, within the
    /// bounds of `options`. The cursor may outlive `snapshot`.
    pub fn cursor_at(&self, snapshot: &Snapshot, options: IterOptions) -> Result<Cursor> {
        self.cursor_in_view(Some(snapshot.seqno()), options)
    }

    fn cursor_in_view(&self, snapshot: Option<u64>, options: IterOptions) -> Result<Cursor> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(crate::Error::Closed);
        }
        Ok(Cursor::new(Arc::clone(&self.inner), self.inner.read_view(snapshot)?, options))
    }

    /// Live pairs whose key starts with `prefix`, ascending.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<DbIterator> {
        let end = iter::prefix_successor(prefix);
        self.range(Bound::Included(prefix), end.as_deref().map_or(Bound::Unbounded, Bound::Excluded), false, None)
    }

    /// Begins an optimistic transaction.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction { db: self, state: txn::TxnState::begin(&self.inner) }
    }

    /// Writes the memtable to an SSTable and waits for it: the memtables of
    /// every keyspace, one table (or more) each, installed together. A large
    /// memtable is written as several level-0 tables with disjoint key ranges,
    /// on up to [`Options::max_subcompactions`] threads.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Compacts every table of the default keyspace overlapping [`start`, `end`]
    /// down to the bottom level and waits (another keyspace:
    /// [`Db::compact_range_in`]).
    /// Each compaction it runs is cut into key ranges merged on up to
    /// [`Options::max_subcompactions`] threads.
    pub fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.inner.compact_range(start, end)
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// A handle that publishes this store's gauges and totals to the installed
    /// `metrics` recorder (see [`crate::MetricsHandle`]); an exporter calls
    /// [`crate::MetricsHandle::publish`] before each scrape.
    ///
    /// ```
    /// use metrics_exporter_prometheus::PrometheusBuilder;
    /// use synapsed_storage::{Credential, Db, Options};
    ///
    /// // The application installs its recorder once, then describes the metrics.
    /// let prometheus = PrometheusBuilder::new().install_recorder()?;
    /// synapsed_storage::describe_metrics();
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), &Credential::passphrase("pw"), Options::default().with_metrics(true))?;
    /// db.put(b"k", b"v")?;
    /// let handle = db.metrics_handle();
    /// // Before each scrape: publish the store's gauges, then render.
    /// handle.publish();
    /// let text = prometheus.render();
    /// assert!(text.contains("synapsed_ops_total{op=\"write\"} 1"));
    /// assert!(text.contains("synapsed_disk_bytes"));
    /// # db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics_handle(&self) -> crate::MetricsHandle {
        crate::MetricsHandle::new(&self.inner)
    }

    /// Stops background work, syncs, and releases the lock.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// Stops the background threads, syncs the WAL and releases the lock. Runs
    /// once; later calls (drop after close) do nothing.
    fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let mut bg = self.inner.sched.bg.lock();
            bg.shutdown = true;
            self.inner.sched.bg_wake.notify_all();
            self.inner.sched.bg_done.notify_all();
        }
        for handle in self.threads.lock().drain(..) {
            // A panicked background thread has nothing left to stop.
            let _ = handle.join();
        }
        let failed = self.inner.failure.first.lock().is_some();
        if !self.inner.options.read_only && !failed {
            // A reader may have held a version when the last compaction finished;
            // leave the directory without its leftovers.
            let _work = self.inner.sched.work.lock();
            self.inner.delete_obsolete();
        }
        let synced = if self.inner.options.read_only || failed { Ok(()) } else { self.inner.sync_wal() };
        if synced.is_ok() && !self.inner.options.read_only && !failed {
            self.inner.trim_active_wal();
        }
        self.inner.lock.lock().take();
        synced
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Best effort: a failure to sync here is already recorded and reported.
        let _ = self.shutdown();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl<'db> Transaction<'db> {
    /// Reads `key` through the transaction (own writes first, then its snapshot).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.state.get(&self.db.inner, key)
    }
    /// Buffers a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.state.put(key, value);
    }
    /// Buffers a delete.
    pub fn delete(&mut self, key: &[u8]) {
        self.state.delete(key);
    }
    /// Buffers a merge operand for `key` (see [`crate::MergeOperator`]): the
    /// transaction's reads of `key` fold it over the value it reads (its own
    /// put, or its snapshot's value, which then counts as read), and the
    /// commit writes it as an operand. A key it merges into conflicts as a
    /// key it writes does. `InvalidArgument` (nothing buffered) when the
    /// default keyspace has no merge operator.
    pub fn merge(&mut self, key: &[u8], operand: &[u8]) -> Result<()> {
        self.state.merge(&self.db.inner, key, operand)
    }
    /// The sequence number the transaction reads at.
    pub fn seqno(&self) -> u64 {
        self.state.seqno()
    }
    /// Reads `key` of `keyspace` through the transaction (own writes first,
    /// then its snapshot, which sees every keyspace at one seqno).
    pub fn get_in(&mut self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.state.get_in(&self.db.inner, keyspace, key)
    }
    /// Buffers a put into `keyspace`.
    pub fn put_in(&mut self, keyspace: &Keyspace, key: &[u8], value: &[u8]) {
        self.state.write_in(keyspace, key, Some(value));
    }
    /// Buffers a delete in `keyspace`.
    pub fn delete_in(&mut self, keyspace: &Keyspace, key: &[u8]) {
        self.state.write_in(keyspace, key, None);
    }
    /// [`Transaction::merge`] in `keyspace`, folded with the merge operator
    /// registered under the keyspace's name. `InvalidArgument` (nothing
    /// buffered) when the keyspace has no merge operator.
    pub fn merge_in(&mut self, keyspace: &Keyspace, key: &[u8], operand: &[u8]) -> Result<()> {
        self.state.merge_in(&self.db.inner, keyspace, key, operand)
    }
    /// Commits atomically, or fails with `Error::Conflict` and writes nothing
    /// ([`crate::Error::NoSuchKeyspace`], nothing written, if a keyspace it
    /// writes to or read from was dropped meanwhile).
    pub fn commit(self) -> Result<u64> {
        self.state.commit(&self.db.inner)
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
    assert_send_sync::<Snapshot>();
    const fn assert_send<T: Send>() {}
    assert_send::<DbIterator>();
    assert_send::<Cursor>();
};

