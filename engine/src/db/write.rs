//! The write path: limits, seqno allocation, WAL append, memtable insert, group
//! commit, publication, memtable switches and write stalls.
//!
//! A batch becomes visible atomically and only once durable: under the writer
//! mutex it gets a contiguous seqno range, its record is appended to the WAL and
//! its operations are inserted into the active memtable; after the mutex is
//! released the writer waits for the WAL sync (shared with every other writer
//! whose record it covers) and then raises `visible` to its last seqno with
//! `fetch_max`. That is enough because every earlier batch was inserted before
//! its writer released the mutex and its record lies earlier in the log, so the
//! same sync made it durable too.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use compaction::VersionEdit;
use index::{user_key_prefix, EntryRef, Memtable, SeqNo, MAX_SEQNO, ValueKind};
use parking_lot::MutexGuard;
use wal::{LogWriter, Preallocation};

use crate::batch::{BatchOp, WriteBatch};
use crate::db::inner::{wal_name, Inner, WriterState};
use crate::error::{Error, Result};
use crate::format;
use crate::options::SyncPolicy;

/// A batch appended and applied under the writer mutex, not yet durable or visible.
pub(crate) struct Pending {
    last_seqno: SeqNo,
    wal: Arc<LogWriter>,
    end_offset: u64,
    /// The memtable filled up and background work is off: flush inline.
    flush_inline: bool,
}

/// How long a stalled writer sleeps between checks (the background thread also
/// wakes it as soon as a flush or compaction finishes).
const STALL_POLL: Duration = Duration::from_millis(20);
/// Batches of at least this many operations go into the memtable in key order.
const SORTED_INSERT_MIN_OPS: usize = 256;
/// Each thread inserting part of a batch takes at least this many operations.
/// Starting a thread costs about 10 inserts, but a helper that shares a core
/// with a running flush makes a batch of a thousand slower, not faster
/// (measured: 100 durable batches of 1,000 during a flush took 275 ms on one
/// thread, 375 ms on two); bulk loads gain (1M operations: 2.9 s -> 2.3 s).
const PARALLEL_INSERT_MIN_OPS: usize = 4096;
/// The pause a writer takes when level 0 reaches the slowdown trigger.
const SLOWDOWN_PAUSE: Duration = Duration::from_millis(1);

/// The indexes of `batch`'s operations in table order, each with its key's
/// first 8 bytes as an integer: user key ascending, then the later operation on
/// a key first (it gets the higher seqno, the newer version). Sorted on the
/// prefixes, full keys compared only where those tie: a fraction of the cost of
/// sorting slices (one `memcmp` call per comparison).
fn table_order(batch: &WriteBatch) -> Vec<(u64, usize)> {
    let key_of = |i: usize| batch.ops.get(i).map_or(&[][..], BatchOp::key);
    let mut order: Vec<(u64, usize)> =
        batch.ops.iter().enumerate().map(|(i, op)| (user_key_prefix(op.key()), i)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key_of(a.1).cmp(key_of(b.1))).then(b.1.cmp(&a.1)));
    order
}

/// How WAL segments are sized ahead of their appends (`docs/design.md`, "WAL
/// preallocation"): 1 MiB at create (less for a memtable under 1 MiB), then steps
/// doubling the segment up to a 32nd of the memtable size and at most 2 MiB. A
/// segment filling a 64 MiB memtable is extended about 32 times, one slower sync
/// every 2 MiB of records; an open store holds at most 2 MiB preallocated and not
/// yet written (counted in its size on disk: the space is reserved), and a closed
/// one none. A tiny memtable gets 4 KiB steps.
pub(crate) fn wal_preallocation(memtable_size_bytes: usize) -> Preallocation {
    const MIB: u64 = 1 << 20;
    let memtable = u64::try_from(memtable_size_bytes).unwrap_or(u64::MAX);
    Preallocation { initial_bytes: memtable.clamp(4096, MIB), max_step_bytes: (memtable / 32).clamp(4096, 2 * MIB) }
}

/// Runs of a sorted batch handed out to the threads inserting it: from the
/// front to the committing thread, from the back to its helpers, until they meet.
struct RunClaims {
    /// The unclaimed indexes, `front..back`.
    left: parking_lot::Mutex<(usize, usize)>,
}

impl RunClaims {
    /// Operations per claim: about 100 µs of inserts.
    const RUN: usize = 64;

    fn new(len: usize) -> Self {
        RunClaims { left: parking_lot::Mutex::new((0, len)) }
    }

    fn claim(&self, from_front: bool) -> Option<std::ops::Range<usize>> {
        let mut left = self.left.lock();
        let (front, back) = *left;
        if front >= back {
            return None;
        }
        if from_front {
            let end = back.min(front + Self::RUN);
            left.0 = end;
            Some(front..end)
        } else {
            let start = front.max(back.saturating_sub(Self::RUN));
            left.1 = start;
            Some(start..back)
        }
    }
}

/// Starts the sync that will cover a record ending at `end_offset` on a thread
/// of its own, so that the committing writer inserts its batch into the memtable
/// while the device works. The writer's own `sync_to` in `finish_write` then
/// waits for this sync (or finds it done) and reports its outcome: a failed sync
/// poisons the log, which that call returns. If the thread cannot be started,
/// or starts late, the writer syncs itself; either way nothing is published
/// before it is durable.
fn start_sync(wal: &Arc<LogWriter>, end_offset: u64) {
    let wal = Arc::clone(wal);
    // A failed spawn only loses the overlap.
    let _ = std::thread::Builder::new().name("synapsed-wal-sync".into()).spawn(move || {
        // The outcome reaches the committing writer through the log's state.
        let _ = wal.sync_to(end_offset);
    });
}

impl Inner {
    /// Applies `batch` atomically; returns the seqno of its last operation.
    pub(crate) fn write(&self, batch: &WriteBatch) -> Result<SeqNo> {
        let _timer = self.op_timer(crate::metrics::Op::Write);
        self.check_writable()?;
        let record_len = self.validate_batch(batch)?;
        self.record_batch(batch.len(), record_len);
        if batch.is_empty() {
            return Ok(self.pipeline.visible.load(Ordering::Acquire));
        }
        self.record_merge_operators(batch)?;
        self.throttle();
        // With a change-feed retention every batch goes through the WAL, which
        // the feed reads (docs/design.md, "The change feed").
        if record_len >= self.options.ingest_min_bytes && self.options.change_feed_retention.is_none() {
            let mut writer = self.pipeline.writer.lock();
            return self.ingest_locked(&mut writer, batch);
        }
        let pending = {
            let mut writer = self.pipeline.writer.lock();
            self.append_locked(&mut writer, batch, record_len)?
        };
        self.finish_write(pending)
    }

    /// Commits `batch` as a level-0 table of its own (`Options::ingest_min_bytes`).
    /// The caller holds the writer mutex, so no other batch is appended meanwhile.
    ///
    /// Every memtable is flushed first: the new table then holds the newest
    /// data of the store, as its seqnos say, and reads that look in memtables
    /// before tables stay right. The manifest edit that adds the table (with the
    /// batch's last seqno) is the commit: before it, a crash leaves an
    /// unreferenced file that the next open removes; after it, the batch is
    /// durable. `visible` is raised only once the version holding the table is
    /// installed (read views load `visible` first, then memtables and version).
    fn ingest_locked(&self, writer: &mut MutexGuard<'_, WriterState>, batch: &WriteBatch) -> Result<SeqNo> {
        self.check_writable()?;
        self.check_keyspaces_live(batch)?;
        let background = self.options.background_compaction;
        while background && self.l0_files() >= self.options.l0_stop_trigger {
            self.wait_for_background()?;
        }
        let count = batch.len() as u64;
        let first = writer.last_seqno + 1;
        let last = writer.last_seqno + count;
        if last > MAX_SEQNO {
            return Err(Error::ReadOnly("sequence numbers exhausted".into()));
        }
        self.switch_memtable(writer)?;
        let work = self.sched.work.lock();
        self.flush_immutables()?;
        let order = table_order(batch);
        // One table per keyspace the batch writes to, all added by one edit;
        // range deletes are no table entries.
        let applied = self.batch_keyspaces(batch).into_iter().try_fold(Vec::new(), |mut added, keyspace| {
            let entries = order.iter().filter_map(|&(_, i)| {
                let seqno = first + i as u64;
                batch
                    .ops
                    .get(i)
                    .filter(|op| op.keyspace == keyspace && !op.range_delete)
                    .map(|op| EntryRef { user_key: &op.key, seqno, kind: op.kind, value: &op.value })
            });
            let number = self.versions.new_file_number();
            let hooks = self.table_hooks(keyspace);
            let meta = compaction::write_sorted_table_in(&self.ctx, keyspace, &hooks, entries, number)?;
            added.extend(meta.map(|m| (0, m)));
            Ok::<_, compaction::Error>(added)
        });
        // The batch's range deletes join the version in the edit that adds its tables.
        let range_tombstones = crate::db::range_del::batch_tombstones(batch, first);
        let applied = applied.map_err(Error::from).and_then(|added| {
            let edit = VersionEdit { last_seqno: Some(last), added, added_range_tombstones: range_tombstones, ..VersionEdit::default() };
            self.versions.log_and_apply(edit).map_err(Error::from)
        });
        if let Err(e) = applied {
            // A table that failed is removed by its writer. One whose edit failed
            // stays, as after a failed flush: the edit may have reached the
            // manifest, and otherwise the next open removes the file. A full disk
            // only fails this batch.
            if !e.is_storage_full() {
                self.record_failure("writing a batch as a table", &e);
            }
            return Err(e);
        }
        writer.last_seqno = last;
        self.pipeline.last_logged.store(last, Ordering::Release);
        self.pipeline.visible.fetch_max(last, Ordering::AcqRel);
        self.sched.ingests.fetch_add(1, Ordering::Relaxed);
        self.advance_freshness(last)?;
        if !background {
            self.bound_level0_inline()?;
        }
        drop(work);
        self.wake_background();
        Ok(last)
    }

    /// Rejects batches outside the documented limits before anything is written;
    /// returns the length of the batch's log record.
    pub(crate) fn validate_batch(&self, batch: &WriteBatch) -> Result<usize> {
        if batch.len() > self.options.max_batch_ops {
            return Err(Error::InvalidArgument(format!(
                "batch of {} operations exceeds max_batch_ops = {}",
                batch.len(),
                self.options.max_batch_ops
            )));
        }
        let mut checked_merge: Vec<u32> = Vec::new();
        for op in &batch.ops {
            if op.range_delete {
                crate::db::range_del::validate_bounds(&op.key, &op.value, self.options.max_key_bytes)?;
                continue;
            }
            if op.kind == ValueKind::Merge && !checked_merge.contains(&op.keyspace) {
                self.merge_operator_of(batch, op.keyspace).check_writable()?;
                checked_merge.push(op.keyspace);
            }
            let (key, value) = (&op.key, Some(&op.value));
            if key.is_empty() {
                return Err(Error::InvalidArgument("empty key".into()));
            }
            if key.len() > self.options.max_key_bytes {
                return Err(Error::InvalidArgument(format!(
                    "key of {} bytes exceeds max_key_bytes = {}",
                    key.len(),
                    self.options.max_key_bytes
                )));
            }
            if let Some(v) = value {
                if v.len() > self.options.max_value_bytes {
                    return Err(Error::InvalidArgument(format!(
                        "value of {} bytes exceeds max_value_bytes = {}",
                        v.len(),
                        self.options.max_value_bytes
                    )));
                }
            }
        }
        let record_len = format::encoded_len(&batch.ops);
        if record_len > self.options.max_batch_bytes {
            return Err(Error::InvalidArgument(format!(
                "batch of {record_len} encoded bytes exceeds max_batch_bytes = {}",
                self.options.max_batch_bytes
            )));
        }
        if record_len > wal::MAX_RECORD_BYTES {
            return Err(Error::InvalidArgument(format!(
                "batch record of {record_len} bytes exceeds the log's maximum of {} bytes",
                wal::MAX_RECORD_BYTES
            )));
        }
        Ok(record_len)
    }

    /// Slows writers down a little while level 0 is above the slowdown trigger, so
    /// compaction catches up before the hard stop.
    fn throttle(&self) {
        if self.options.background_compaction && self.l0_files() >= self.options.l0_slowdown_trigger {
            std::thread::sleep(SLOWDOWN_PAUSE);
        }
    }

    /// Allocates seqnos for `batch`, appends its record and applies it to the
    /// active memtable. The caller holds the writer mutex; `record_len` is what
    /// `validate_batch` returned for `batch`.
    pub(crate) fn append_locked(
        &self,
        writer: &mut MutexGuard<'_, WriterState>,
        batch: &WriteBatch,
        record_len: usize,
    ) -> Result<Pending> {
        self.check_writable()?;
        self.roll_full_wal(writer)?;
        let flush_inline = self.make_room(writer)?;
        let count = batch.len() as u64;
        let first = writer.last_seqno + 1;
        let last = writer.last_seqno + count;
        if last > MAX_SEQNO {
            return Err(Error::ReadOnly("sequence numbers exhausted".into()));
        }
        let wal = writer.wal.clone().ok_or_else(|| Error::ReadOnly("opened read-only".into()))?;
        // Under the writer mutex, which a drop takes too: a keyspace dropped
        // from here on is dropped after this batch.
        self.check_keyspaces_live(batch)?;
        let end_offset = match wal.append_with(record_len, &mut |buf| format::encode_batch_into(first, &batch.ops, buf)) {
            Ok(end) => end,
            Err(wal::Error::Io { file, source }) if crate::db::is_enospc(&source) => {
                // Nothing of this batch is acknowledged and what reached the disk is
                // a torn tail; the next write moves to a fresh segment. The seqnos
                // stay used, so no later batch can ever be confused with this one.
                writer.wal_full = true;
                writer.last_seqno = last;
                return Err(Error::StorageFull { file });
            }
            Err(e) => return Err(self.wal_failed("WAL append", e)),
        };
        let overlap = self.options.sync_overlap_min_ops;
        if self.options.sync == SyncPolicy::EveryCommit && overlap > 0 && batch.ops.len() >= overlap {
            start_sync(&wal, end_offset);
        }
        let targets = self.memtables_for(batch);
        let insert = |i: usize, op: &BatchOp| {
            let seqno = first + i as u64;
            // Range deletes are added below, all of the batch's at once.
            if !op.range_delete {
                targets.of(op.keyspace).insert(&op.key, seqno, op.kind, &op.value);
            }
        };
        if batch.ops.len() >= SORTED_INSERT_MIN_OPS {
            // Inserting in key order keeps each skiplist search on the nodes the
            // previous one just visited (in cache), which for large batches costs
            // far less than the sort. The order of inserts is invisible: nothing
            // of the batch is read before it is published, so a large batch is
            // also inserted by several threads at once (the skiplist takes
            // concurrent inserts), each taking short runs of the sorted order.
            let order = table_order(batch);
            let insert_run = |run: &[(u64, usize)]| {
                for &(_, i) in run {
                    if let Some(op) = batch.ops.get(i) {
                        insert(i, op);
                    }
                }
            };
            let threads = self.options.memtable_insert_threads.min(order.len() / PARALLEL_INSERT_MIN_OPS).max(1);
            if threads > 1 {
                // Work is claimed in short runs, the committing thread from the
                // front and the others from the back: a helper that gets no core
                // (a flush running on it) leaves its share to this thread instead
                // of making it wait.
                let claims = RunClaims::new(order.len());
                std::thread::scope(|scope| {
                    for _ in 1..threads {
                        let helper = || {
                            while let Some(run) = claims.claim(false) {
                                // Invariant: `RunClaims` hands out runs inside `0..order.len()`.
                                let claimed = order.get(run);
                                debug_assert!(claimed.is_some());
                                insert_run(claimed.unwrap_or_default());
                            }
                        };
                        // A thread that cannot be started leaves its share to this one.
                        let _ = std::thread::Builder::new().spawn_scoped(scope, helper);
                    }
                    while let Some(run) = claims.claim(true) {
                        // Invariant: `RunClaims` hands out runs inside `0..order.len()`.
                        let claimed = order.get(run);
                        debug_assert!(claimed.is_some());
                        insert_run(claimed.unwrap_or_default());
                    }
                });
            } else {
                insert_run(&order);
            }
        } else {
            for (i, op) in batch.ops.iter().enumerate() {
                insert(i, op);
            }
        }
        // Each range tombstone goes to the memtable of its keyspace.
        let tombstones = crate::db::range_del::batch_tombstones(batch, first);
        if !tombstones.is_empty() {
            for keyspace in self.batch_keyspaces(batch) {
                let of_keyspace: Vec<_> = tombstones.iter().filter(|t| t.keyspace == keyspace).cloned().collect();
                if !of_keyspace.is_empty() {
                    targets.of(keyspace).add_range_tombstones(of_keyspace);
                }
            }
        }
        writer.last_seqno = last;
        self.pipeline.last_logged.store(last, Ordering::Release);
        Ok(Pending { last_seqno: last, wal, end_offset, flush_inline })
    }

    /// Makes the batch durable as the sync policy asks, then publishes it.
    pub(crate) fn finish_write(&self, pending: Pending) -> Result<SeqNo> {
        if self.options.sync == SyncPolicy::EveryCommit {
            if let Err(e) = pending.wal.sync_to(pending.end_offset) {
                return Err(self.wal_failed("WAL sync", e));
            }
            self.record_durable_commit();
        }
        self.pipeline.visible.fetch_max(pending.last_seqno, Ordering::AcqRel);
        if pending.flush_inline {
            let _work = self.sched.work.lock();
            match self.flush_immutables() {
                // The batch is durable in the log; the flush is retried at the next switch.
                Err(e) if e.is_storage_full() => {}
                Err(e) => return Err(e),
                Ok(()) => self.bound_level0_inline()?,
            }
        }
        self.advance_freshness(pending.last_seqno)?;
        Ok(pending.last_seqno)
    }

    /// Tells the outside counter (`Options::freshness_counter`) how far the
    /// store got, after a write was acknowledged.
    pub(crate) fn advance_freshness(&self, last_seqno: SeqNo) -> Result<()> {
        let Some(counter) = &self.options.freshness_counter else { return Ok(()) };
        counter
            .advance(&self.keys.store_id(), last_seqno)
            .map_err(|source| Error::Io { file: crate::freshness::COUNTER_NAME.into(), source })
    }

    /// With background work off, compacts once level 0 reaches the stop trigger
    /// rather than let it grow. Caller holds `work`. A full disk only postpones
    /// it (the next flush retries).
    fn bound_level0_inline(&self) -> Result<()> {
        if self.l0_files() < self.options.l0_stop_trigger {
            return Ok(());
        }
        match self.compact_pending() {
            Err(e) if e.is_storage_full() => Ok(()),
            other => other,
        }
    }

    /// Records a WAL failure (writes stop) and returns the error for this caller.
    /// A log stopped by a full disk on append is not a failure of the store: the
    /// writer that hit it has already arranged to move to a fresh segment.
    fn wal_failed(&self, what: &str, e: wal::Error) -> Error {
        let full_on_append = matches!(&e, wal::Error::Poisoned { cause, .. }
            if cause.op == wal::FailedOp::Append && cause.is_storage_full());
        let err: Error = e.into();
        if !full_on_append && !matches!(err, Error::InvalidArgument(_)) {
            self.record_failure(what, &err);
        }
        err
    }

    /// Moves to a fresh WAL segment after an append failed on a full disk. The
    /// old segment keeps its records and ends in a torn tail, which recovery
    /// accepts in any segment; it stays needed (and replayed) until the active
    /// memtable, which spans both, is flushed. The old segment is synced first
    /// (a failed append leaves the frames before it syncable), so every batch
    /// appended before the failure is durable before any batch of the new segment
    /// can be: the log stays a durable prefix, and a batch whose writer had not
    /// synced yet when the disk filled never becomes visible without being
    /// durable. Fails with `StorageFull`, without stopping writes, while there is
    /// still no room for a new segment.
    fn roll_full_wal(&self, writer: &mut MutexGuard<'_, WriterState>) -> Result<()> {
        if !writer.wal_full {
            return Ok(());
        }
        if self.options.sync != SyncPolicy::Never {
            if let Some(old) = writer.wal.clone() {
                if let Err(e) = old.sync() {
                    return Err(self.wal_failed("WAL sync", e));
                }
                // Gives the old segment's preallocated space back to the full disk.
                self.trim_wal(&old);
            }
        }
        let number = self.versions.new_file_number();
        // The old segment ends in a torn tail whose seqnos stay used: it is not
        // synced whole, so the manifest records no exact end for it.
        match self.create_wal(number).and_then(|wal| self.list_wal(number, writer.last_seqno, false).map(|()| wal)) {
            Ok(wal) => {
                writer.wal = Some(Arc::new(wal));
                writer.wal_full = false;
                Ok(())
            }
            Err(e) => {
                // Best effort: an empty segment left behind holds no record and is
                // skipped by recovery.
                let _ = self.vfs.remove_file(&wal::segment_path(&self.dir, number));
                if !e.is_storage_full() {
                    self.record_failure("creating a WAL segment", &e);
                }
                Err(e)
            }
        }
    }

    /// Ensures the active memtable has room, switching to a new one if it is full,
    /// and stalls while the flush queue or level 0 is over its limit. Returns
    /// whether the caller must flush inline (background work off).
    fn make_room(&self, writer: &mut MutexGuard<'_, WriterState>) -> Result<bool> {
        let mut stalled_since = None;
        let result = self.make_room_stalling(writer, &mut stalled_since);
        if let Some(since) = stalled_since {
            self.stall_ended(since);
        }
        result
    }

    /// [`Self::make_room`]'s loop; sets `stalled_since` when it first stalls.
    fn make_room_stalling(&self, writer: &mut MutexGuard<'_, WriterState>, stalled_since: &mut Option<std::time::Instant>) -> Result<bool> {
        let background = self.options.background_compaction;
        loop {
            let (active_bytes, immutables) = {
                let mems = self.pipeline.mems.read();
                (mems.active_bytes(), mems.immutables.len())
            };
            let full = active_bytes >= self.options.memtable_size_bytes;
            let stall = background
                && (self.l0_files() >= self.options.l0_stop_trigger
                    || (full && immutables >= self.options.max_immutable_memtables));
            if stall {
                if stalled_since.is_none() {
                    *stalled_since = Some(std::time::Instant::now());
                    let cause = if self.l0_files() >= self.options.l0_stop_trigger {
                        crate::events::StallCause::Level0Files
                    } else {
                        crate::events::StallCause::FrozenMemtables
                    };
                    tracing::info!(?cause, "write stall begun");
                    crate::metrics::stall_began();
                    if let Some(l) = self.listener() {
                        l.on_write_stall_begin(&crate::events::WriteStallBegin { cause });
                    }
                }
                self.wait_for_background()?;
                continue;
            }
            if !full {
                return Ok(false);
            }
            self.switch_memtable(writer)?;
            if background {
                self.wake_background();
            }
            return Ok(!background);
        }
    }

    /// Reports the end of a write stall begun at `since`.
    fn stall_ended(&self, since: std::time::Instant) {
        let duration = since.elapsed();
        tracing::info!(duration_us = duration.as_micros() as u64, "write stall ended");
        crate::metrics::stall_ended(duration);
        if let Some(l) = self.listener() {
            l.on_write_stall_end(&crate::events::WriteStallEnd { duration });
        }
    }

    /// Waits (holding the writer mutex, so other writers queue behind) until the
    /// background thread reports progress, the store closes or work failed.
    fn wait_for_background(&self) -> Result<()> {
        let mut bg = self.sched.bg.lock();
        if bg.shutdown {
            return Err(Error::Closed);
        }
        let waiting_since = bg.attempts;
        self.sched.bg_wake.notify_all();
        self.sched.bg_done.wait_for(&mut bg, STALL_POLL);
        if let Some((file, attempt)) = &bg.full {
            // The flush this writer waits for cannot run until space is freed.
            // Only an attempt begun after the wait began says so: an older one
            // may have failed before space was freed, and is being retried.
            if *attempt > waiting_since {
                return Err(Error::StorageFull { file: file.clone() });
            }
        }
        drop(bg);
        self.check_writable()
    }

    /// Freezes the active memtable and starts a new WAL segment for its successor.
    /// The old segment is synced first, so every batch in the frozen memtable is
    /// durable and can be published: tables then only ever hold visible data,
    /// which is what lets compaction drop shadowed versions safely.
    pub(crate) fn switch_memtable(&self, writer: &mut MutexGuard<'_, WriterState>) -> Result<()> {
        self.roll_full_wal(writer)?;
        let old = writer.wal.clone().ok_or_else(|| Error::ReadOnly("opened read-only".into()))?;
        // Under `Never` every batch is published at once anyway; the others also
        // keep the log a durable prefix: no later segment outlives an earlier tail.
        if self.options.sync != SyncPolicy::Never {
            if let Err(e) = old.sync() {
                return Err(self.wal_failed("WAL sync", e));
            }
            self.trim_wal(&old);
        }
        self.pipeline.visible.fetch_max(writer.last_seqno, Ordering::AcqRel);
        let number = self.versions.new_file_number();
        let wal = self.create_wal(number).inspect_err(|e| {
            if e.is_storage_full() {
                // The old segment stays active and intact; a later switch retries.
                let _ = self.vfs.remove_file(&wal::segment_path(&self.dir, number));
            } else {
                self.record_failure("creating a WAL segment", e);
            }
        })?;
        // The segment is left in place if the edit fails: the edit may have
        // reached the manifest, and a listed segment must exist. Unlisted, it
        // holds no record and is retired with the others.
        self.list_wal(number, writer.last_seqno, self.options.sync != SyncPolicy::Never).map_err(|e| {
            if e.is_storage_full() {
                // The edit did not reach the manifest (its append ran out of
                // space), so the segment is not listed and can go; the old one
                // stays active and a later switch retries. Starting the new
                // segment is what failed, so the error names it.
                let _ = self.vfs.remove_file(&wal::segment_path(&self.dir, number));
                Error::StorageFull { file: wal_name(number) }
            } else {
                self.record_failure("listing a WAL segment in the manifest", &e);
                e
            }
        })?;
        writer.wal = Some(Arc::new(wal));
        // Every keyspace's memtable is frozen with the default one (atomic flush).
        self.pipeline.mems.write().freeze(Arc::new(Memtable::with_expected_bytes(number, self.options.memtable_size_bytes)));
        Ok(())
    }

    /// Records in the manifest that WAL segment `number` exists and that its
    /// batches start after `last_seqno`, before any batch is appended to it, so
    /// recovery can tell a missing, extra or earlier segment (`open::replay_wal_checked`).
    /// `predecessor_synced`: the segment before it was synced whole, so it ends
    /// exactly at `last_seqno`.
    pub(crate) fn list_wal(&self, number: u64, last_seqno: SeqNo, predecessor_synced: bool) -> Result<()> {
        let segment = compaction::WalSegment { first_seqno: last_seqno + 1, predecessor_synced };
        let edit = VersionEdit { wal_segments: vec![(number, segment)], ..VersionEdit::default() };
        self.restart_full_manifest().and_then(|()| self.versions.log_and_apply(edit).map_err(Error::from))
    }

    /// Creates WAL segment `number`, preallocated, with a durable header, size and
    /// directory entry, so a crash never leaves a segment that recovery cannot
    /// open (one whose header did not reach the disk is blank, and skipped).
    pub(crate) fn create_wal(&self, number: u64) -> Result<LogWriter> {
        let path = wal::segment_path(&self.dir, number);
        let sizes = wal_preallocation(self.options.memtable_size_bytes);
        let wal = LogWriter::create_preallocated(&self.vfs, &path, &self.keys, number, crypto::FileKind::Wal, sizes)?;
        wal.sync()?;
        self.sync_dir()?;
        Ok(wal)
    }

    /// Cuts a segment that will take no more appends back to its last frame, so
    /// closed segments hold no preallocated space. Call only after every frame of
    /// it was synced: the truncation is synced too, and a crash during it leaves
    /// either size, each reading as the same log. Best effort: a segment that
    /// keeps its zeros reads the same, so a failure here changes nothing.
    pub(crate) fn trim_wal(&self, wal: &LogWriter) {
        if wal.preallocated_len() > wal.len() {
            let _ = self.vfs.truncate(&wal::segment_path(&self.dir, wal.file_id()), wal.len());
        }
    }

    /// Trims the active segment at close, once it was synced (see [`Inner::trim_wal`]).
    pub(crate) fn trim_active_wal(&self) {
        let wal = self.pipeline.writer.lock().wal.clone();
        if let Some(wal) = wal {
            self.trim_wal(&wal);
        }
    }

    /// Syncs the active WAL segment (periodic policy, close).
    pub(crate) fn sync_wal(&self) -> Result<()> {
        // A log stopped by a full disk still syncs the records appended before
        // the failure; the next write rolls to a new segment.
        let wal = self.pipeline.writer.lock().wal.clone();
        if let Some(wal) = wal {
            if let Err(e) = wal.sync() {
                return Err(self.wal_failed("WAL sync", e));
            }
        }
        Ok(())
    }
}
