//! Flushes, compactions and removal of obsolete files, and the threads that run
//! them: one for flush + compaction, woken by a condvar, and (under the periodic
//! sync policy) one that syncs the WAL on a timer.
//!
//! Everything here that creates or removes tables runs under `Inner::sched.work`.
//! Crash safety at each step: a new table and its directory entry are made
//! durable (by `flush_memtable` / `run_compaction`) before the manifest edit
//! that names it; the
//! edit is durable before the memtable it replaces is dropped; obsolete files
//! are removed only after the edit that retired them, so a crash in between
//! leaves garbage that the next open removes, never a hole.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compaction::{Compaction, FileMeta, VersionEdit};
use index::Memtable;

use crate::db::inner::{file_number, Inner};
use crate::db::readers;
use crate::error::{Error, Result};
use crate::events::{BackgroundError, CompactionBegin, CompactionEnd, EventListener, FileDeleted, FlushBegin, FlushEnd, TableFileCreated};

/// How often an idle background thread looks for work it was not told about.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long the background thread waits before retrying work that failed on a full disk.
const FULL_DISK_BACKOFF: Duration = Duration::from_millis(100);
/// Upper bound on compactions one `compact_range` level step runs (a guard
/// against a picker that keeps choosing the same files).
const MAX_RANGE_STEPS: usize = 100_000;
/// How often a rotation waiting for readers looks at their registrations again.
const READER_POLL: Duration = Duration::from_millis(10);
/// Flushed memtables at least this large are freed on a thread of their own.
const RELEASE_ON_THREAD_BYTES: usize = 4 << 20;

impl Inner {
    /// Writes every frozen memtable to a level-0 table, oldest first. Caller holds `work`.
    pub(crate) fn flush_immutables(&self) -> Result<()> {
        self.flush_immutables_in(1)
    }

    /// Writes every frozen memtable to level-0 tables, oldest first, each cut
    /// into up to `parts` tables written on threads of their own (see
    /// `compaction::flush_memtable_in_parts`). Caller holds `work`.
    fn flush_immutables_in(&self, parts: usize) -> Result<()> {
        loop {
            let (frozen, frozen_in, next_log) = {
                let mems = self.pipeline.mems.read();
                let Some(frozen) = mems.immutables.front().cloned() else { return Ok(()) };
                let frozen_in = mems.immutables_in.front().cloned().unwrap_or_default();
                // Once `frozen` is in a table, the oldest segment still needed is
                // the one behind the next memtable.
                let next_log = mems.immutables.get(1).map_or_else(|| mems.active.id(), |m| m.id());
                (frozen, frozen_in, next_log)
            };
            let attempt = self.begin_attempt();
            let memtable_bytes = (frozen.approximate_bytes() + frozen_in.values().map(|m| m.approximate_bytes()).sum::<usize>()) as u64;
            let span = tracing::info_span!("flush", job = attempt, memtable_bytes);
            let _entered = span.enter();
            let started = Instant::now();
            if let Some(l) = self.listener() {
                l.on_flush_begin(&FlushBegin { job: attempt, memtable_bytes });
            }
            let added = self
                .restart_full_manifest()
                .and_then(|()| self.flush_one(&frozen, &frozen_in, next_log, parts))
                .inspect_err(|e| self.background_failed("memtable flush", e, attempt))?;
            let (output_files, output_bytes) = self.tables_created(&added);
            let duration = started.elapsed();
            tracing::info!(output_files = output_files.len(), output_bytes, duration_us = duration.as_micros() as u64, "flush finished");
            crate::metrics::flushed(output_bytes, duration);
            if let Some(l) = self.listener() {
                l.on_flush_end(&FlushEnd { job: attempt, output_files, output_bytes, duration });
            }
            {
                let mut mems = self.pipeline.mems.write();
                if mems.immutables.front().is_some_and(|m| Arc::ptr_eq(m, &frozen)) {
                    mems.immutables.pop_front();
                    mems.immutables_in.pop_front();
                    // Read views taken across this are taken again (`Inner::read_view`).
                    self.pipeline.mems_generation.fetch_add(2, Ordering::SeqCst);
                }
            }
            self.sched.flushes.fetch_add(1, Ordering::Relaxed);
            self.notify_progress();
            self.delete_obsolete();
            let bytes = frozen.approximate_bytes();
            release(frozen, bytes);
            for (_, m) in frozen_in {
                let bytes = m.approximate_bytes();
                release(m, bytes);
            }
        }
    }

    /// Writes `frozen` (the default keyspace's) and `frozen_in` (every other
    /// keyspace's memtable of the same generation) to level-0 tables and
    /// installs them all with one edit (an atomic flush: the log number then
    /// moves past the generation's segment only once every keyspace's data in
    /// it is in tables); returns what it added. The memtable of a keyspace
    /// dropped meanwhile is discarded (a drop holds `work`, as this does, so
    /// the version read here stays right until the edit). Caller holds `work`.
    fn flush_one(
        &self,
        frozen: &Arc<Memtable>,
        frozen_in: &BTreeMap<u32, Arc<Memtable>>,
        next_log: u64,
        parts: usize,
    ) -> Result<Vec<(usize, FileMeta)>> {
        let mut edit = VersionEdit {
            log_number: Some(next_log),
            last_seqno: Some(self.pipeline.last_logged.load(Ordering::Acquire)),
            // Every keyspace's range tombstones of the generation leave the WAL
            // with this edit.
            added_range_tombstones: crate::db::range_del::generation_not_in_version(
                Some(frozen),
                frozen_in.iter().map(|(id, m)| (*id, &**m)),
                &self.versions.current(),
            ),
            ..VersionEdit::default()
        };
        self.keep_retired_for_feed(&mut edit);
        let version = self.versions.current();
        let memtables = std::iter::once((compaction::DEFAULT_KEYSPACE_ID, frozen)).chain(frozen_in.iter().map(|(id, m)| (*id, m)));
        for (keyspace, memtable) in memtables {
            let Some(levels) = version.keyspace_levels(keyspace) else { continue };
            if !memtable.has_entries() {
                // Empty, or only range tombstones (the edit carries those): no table.
                continue;
            }
            let hooks = self.table_hooks(keyspace);
            if parts > 1 {
                // The tables of one flush hold disjoint key ranges, so a key is in
                // at most one of them, as in the single table of a plain flush.
                let like: Vec<Arc<FileMeta>> = levels.own_files().map(|(_, f)| Arc::clone(f)).collect();
                let tables = compaction::flush_memtable_in_parts_in(
                    &self.ctx,
                    keyspace,
                    &hooks,
                    memtable,
                    &like,
                    parts,
                    &|| self.versions.new_file_number(),
                )?;
                edit.added.extend(tables.into_iter().map(|meta| (0, meta)));
            } else {
                let number = self.versions.new_file_number();
                // The table is synced and its directory entry made durable by
                // `flush_memtable_in` itself, before the edit below names it.
                if let Some(meta) = compaction::flush_memtable_in(&self.ctx, keyspace, &hooks, memtable, number)? {
                    edit.added.push((0, meta));
                }
            }
        }
        drop(version);
        let added = edit.added.clone();
        self.versions.log_and_apply(edit)?;
        Ok(added)
    }

    /// The listener of `Options::event_listener`, if one is set.
    pub(crate) fn listener(&self) -> Option<&dyn EventListener> {
        self.options.event_listener.as_deref()
    }

    /// Reports each table of `added` as created; returns their names and total size.
    fn tables_created(&self, added: &[(usize, FileMeta)]) -> (Vec<String>, u64) {
        let mut names = Vec::with_capacity(added.len());
        let mut bytes = 0u64;
        for (level, meta) in added {
            let file = table_file_name(meta.number);
            tracing::debug!(file = %file, level, bytes = meta.size, "table file created");
            if let Some(l) = self.listener() {
                l.on_table_file_created(&TableFileCreated { file: file.clone(), level: *level, bytes: meta.size });
            }
            bytes = bytes.saturating_add(meta.size);
            names.push(file);
        }
        (names, bytes)
    }

    /// Flushes, then runs compactions until no level is over its target (or the
    /// store is closing). Caller holds `work`.
    pub(crate) fn compact_pending(&self) -> Result<()> {
        loop {
            self.flush_immutables()?;
            if self.shutting_down() {
                return Ok(());
            }
            let version = self.versions.current();
            let Some(c) = compaction::pick_compaction(&version, &self.ctx.options) else { return Ok(()) };
            drop(version);
            self.run_compaction(&c)?;
        }
    }

    /// Runs one compaction and installs its result. Caller holds `work`.
    pub(crate) fn run_compaction(&self, c: &Compaction) -> Result<()> {
        let attempt = self.begin_attempt();
        let input_files: Vec<String> = c.inputs.iter().chain(&c.next_inputs).map(|f| table_file_name(f.number)).collect();
        let input_bytes = c.inputs.iter().chain(&c.next_inputs).fold(0u64, |sum, f| sum.saturating_add(f.size));
        let span = tracing::info_span!("compaction", job = attempt, level = c.level, inputs = input_files.len(), input_bytes);
        let _entered = span.enter();
        let started = Instant::now();
        if let Some(l) = self.listener() {
            l.on_compaction_begin(&CompactionBegin { job: attempt, level: c.level, input_files: input_files.clone(), input_bytes });
        }
        let result = (|| {
            self.restart_full_manifest()?;
            // With the keyspace's filter and collector (`db/filters.rs`); range
            // tombstones with nothing older left under them leave with it.
            self.compact_and_install(c)
        })();
        let added = result.inspect_err(|e| self.background_failed("compaction", e, attempt))?;
        let (output_files, output_bytes) = self.tables_created(&added);
        let duration = started.elapsed();
        tracing::info!(output_files = output_files.len(), output_bytes, duration_us = duration.as_micros() as u64, "compaction finished");
        crate::metrics::compacted(input_bytes, output_bytes, duration);
        if let Some(l) = self.listener() {
            l.on_compaction_end(&CompactionEnd {
                job: attempt,
                level: c.level,
                input_files,
                input_bytes,
                output_files,
                output_bytes,
                duration,
            });
        }
        self.sched.compactions.fetch_add(1, Ordering::Relaxed);
        self.notify_progress();
        // Unlinking a table whose reader is open only removes its name; the
        // pages it had in the page cache (the whole input, right after a
        // compaction read it) are freed when the reader closes, here on a
        // thread of its own rather than in the caller's unlink.
        let files = || c.inputs.iter().chain(&c.next_inputs);
        let inputs: Vec<_> = files().filter_map(|f| self.tables.get(f.number).ok()).collect();
        let input_bytes = usize::try_from(files().map(|f| f.size).sum::<u64>()).unwrap_or(usize::MAX);
        self.delete_obsolete();
        release(inputs, input_bytes);
        Ok(())
    }

    /// `c` as a compaction a caller waits for: cut into up to
    /// `max_subcompactions` parts on threads of their own. Background
    /// compactions stay on the background thread alone.
    pub(crate) fn waited_for(&self, c: Compaction) -> Compaction {
        Compaction { max_subcompactions: self.options.max_subcompactions, ..c }
    }

    /// Freezes the active memtable (if it holds anything) and waits until every
    /// frozen memtable is in a level-0 table.
    pub(crate) fn flush(&self) -> Result<()> {
        self.check_writable()?;
        {
            let mut writer = self.pipeline.writer.lock();
            let empty = self.pipeline.mems.read().active_is_empty();
            if !empty {
                self.switch_memtable(&mut writer)?;
            }
        }
        {
            let _work = self.sched.work.lock();
            // The caller waits for this flush: it may use more than one thread.
            self.flush_immutables_in(self.options.max_subcompactions)?;
        }
        self.wake_background();
        Ok(())
    }

    /// Compacts every table overlapping [`start`, `end`] level by level until the
    /// range's data sits in one level (the deepest that held any of it, at least L1).
    pub(crate) fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.compact_range_in_keyspace(compaction::DEFAULT_KEYSPACE_ID, start, end)
    }

    /// [`Inner::compact_range`] over the levels of `keyspace`;
    /// [`Error::NoSuchKeyspace`] if it is not live.
    pub(crate) fn compact_range_of(&self, keyspace: &crate::Keyspace, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        if !self.versions.current().has_keyspace(keyspace.id()) {
            return Err(Error::NoSuchKeyspace(keyspace.name().to_owned()));
        }
        self.compact_range_in_keyspace(keyspace.id(), start, end)
    }

    /// [`Inner::compact_range`] over the levels of keyspace `id` (none if it
    /// was dropped meanwhile).
    fn compact_range_in_keyspace(&self, id: u32, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        self.flush()?;
        let _work = self.sched.work.lock();
        let Some(version) = self.versions.current().keyspace_levels(id) else { return Ok(()) };
        let overlapping = |level: usize| version.level_files(level).iter().any(|f| overlaps(f, start, end));
        let Some(deepest) = (0..version.num_levels()).rev().find(|&l| overlapping(l)) else { return Ok(()) };
        let target = deepest.max(1);
        // With a compaction filter, tables of the target level that no step
        // below rewrites are rewritten too, so the filter sees them (`db/filters.rs`).
        let refilter = self.tables_to_refilter(&version, target);
        drop(version);
        for level in 0..target {
            for _ in 0..MAX_RANGE_STEPS {
                self.flush_immutables()?;
                let Some(version) = self.versions.current().keyspace_levels(id) else { return Ok(()) };
                let Some(c) = compaction::pick_range_compaction(&version, level, start, end) else { break };
                drop(version);
                self.run_compaction(&self.waited_for(c))?;
            }
        }
        self.refilter_level(id, target, &refilter, start, end)
    }

    /// Removes files no live version needs. A failure here loses nothing (the
    /// next attempt retries), so it is reported but does not stop writes.
    pub(crate) fn delete_obsolete(&self) {
        self.remove_obsolete(true);
    }

    /// [`Inner::delete_obsolete`]; with `spare_readers` false, also what reader
    /// processes hold (once their wait is over: see
    /// [`Inner::remove_obsolete_waiting_for_readers`]). Returns whether a
    /// reader held an obsolete file back (one still opening holds back all).
    fn remove_obsolete(&self, spare_readers: bool) -> bool {
        if self.options.read_only {
            return false;
        }
        self.expire_feed_segments();
        let mut live = self.versions.live_files();
        // Segments kept for the change feed are live until they are released.
        live.extend(self.kept_feed_segments());
        let passes = self.options.secure_delete_passes.max(self.sched.min_overwrite_passes.load(Ordering::Acquire));
        let mut held_back = false;
        if passes > 0 && spare_readers {
            // Overwriting a file a reader process still reads would break its
            // reads: what readers hold stays for a later pass (`db/readers.rs`).
            // Plain unlinking needs no such care: an open descriptor keeps reading.
            let pins = readers::reader_pins(&*self.vfs, &self.dir);
            if pins.all {
                return true;
            }
            held_back = pins
                .tables
                .iter()
                .any(|t| !live.contains(t) && self.vfs.exists(&self.dir.join(table_file_name(*t))));
            live.extend(pins.tables);
        }
        match compaction::delete_obsolete_files(
            &*self.vfs,
            &self.dir,
            &live,
            self.versions.log_number(),
            self.versions.manifest_number(),
            passes,
        ) {
            Ok(removed) => {
                for name in removed {
                    if let Some(number) = file_number(&name, "sst") {
                        self.tables.evict(number);
                    }
                    tracing::debug!(file = %name, overwritten = passes > 0, "file deleted");
                    if let Some(l) = self.listener() {
                        l.on_file_deleted(&FileDeleted { file: name, overwritten: passes > 0 });
                    }
                }
            }
            Err(e) => {
                // Nothing is lost: the next removal retries.
                tracing::warn!(dir = %self.dir.display(), error = %e, "removing obsolete files failed");
                if let Some(l) = self.listener() {
                    l.on_background_error(&BackgroundError {
                        operation: "obsolete file removal".into(),
                        message: e.to_string(),
                        writes_stopped: false,
                    });
                }
            }
        }
        held_back
    }

    /// With overwriting on, waits (up to `Options::reader_wait_ms`) until no
    /// reader process holds back an obsolete file, removing each as it is let
    /// go; then evicts the readers still holding one and removes the rest. A
    /// key rotation calls it before it counts the epochs files are under, so a
    /// stuck or dead reader delays shredding by the bound, never for good.
    /// Caller holds `work`.
    pub(crate) fn remove_obsolete_waiting_for_readers(&self) {
        let deadline = std::time::Instant::now() + Duration::from_millis(self.options.reader_wait_ms);
        loop {
            // Whether a reader held something back is judged from the same
            // listing of readers the pass used: a reader that was still opening
            // then (holding back everything) may have finished since.
            if !self.remove_obsolete(true) {
                return;
            }
            if std::time::Instant::now() >= deadline {
                let pins = readers::reader_pins(&*self.vfs, &self.dir);
                let left = self.obsolete_left();
                for (name, held) in &pins.readers {
                    let holds = match held {
                        None => left.any,
                        Some(tables) => tables.iter().any(|t| left.tables.contains(t)),
                    };
                    if holds {
                        readers::evict(&*self.vfs, &self.dir, name);
                    }
                }
                // Readers that register from now on (still opening, so holding
                // back everything) must not hold the files past the bound
                // either: a reader that meets a removed or overwritten file
                // starts over on the current version, or gets `Error::Retired`.
                self.remove_obsolete(false);
                return;
            }
            std::thread::sleep(READER_POLL);
        }
    }

    /// The obsolete files still in the directory.
    fn obsolete_left(&self) -> ObsoleteLeft {
        let live = self.versions.live_files();
        let kept: std::collections::HashSet<u64> = self.kept_feed_segments().collect();
        let (log_number, manifest_number) = (self.versions.log_number(), self.versions.manifest_number());
        let mut left = ObsoleteLeft::default();
        for name in self.vfs.list_dir(&self.dir).unwrap_or_default() {
            if let Some(number) = file_number(&name, "sst").filter(|n| !live.contains(n)) {
                left.tables.insert(number);
                left.any = true;
            } else if file_number(&name, "wal").is_some_and(|n| n < log_number && !kept.contains(&n))
                || crypto::names::manifest_number(&name).is_some_and(|n| n != manifest_number)
            {
                left.any = true;
            }
        }
        left
    }

    /// Tells the background thread there may be work.
    pub(crate) fn wake_background(&self) {
        let _bg = self.sched.bg.lock();
        self.sched.bg_wake.notify_all();
    }

    /// Tells stalled writers a flush or compaction finished.
    fn notify_progress(&self) {
        let mut bg = self.sched.bg.lock();
        bg.full = None;
        self.sched.bg_done.notify_all();
    }

    /// Numbers a flush or compaction about to begin.
    fn begin_attempt(&self) -> u64 {
        let mut bg = self.sched.bg.lock();
        bg.attempts += 1;
        bg.attempts
    }

    /// Records a failed flush or compaction, attempt number `attempt`. A full
    /// disk only postpones the work (nothing acknowledged depends on it: the
    /// data is still in the WAL and the memtables), so it is retried later
    /// instead of stopping writes.
    fn background_failed(&self, what: &str, e: &Error, attempt: u64) {
        if let Error::StorageFull { file } = e {
            tracing::warn!(operation = what, file = %file, "storage full: background work postponed until space is freed");
            if let Some(l) = self.listener() {
                l.on_background_error(&BackgroundError { operation: what.into(), message: e.to_string(), writes_stopped: false });
            }
            self.sched.bg.lock().full = Some((file.clone(), attempt));
            self.sched.bg_done.notify_all();
        } else {
            self.record_failure(what, e);
        }
    }

    /// After a manifest write failed on a full disk, starts a fresh manifest so
    /// that edits are accepted again (fails with `StorageFull` while still full).
    pub(crate) fn restart_full_manifest(&self) -> Result<()> {
        if let Some(failure) = self.versions.manifest_failure() {
            if failure.is_storage_full() {
                self.versions.restart_manifest()?;
            }
        }
        Ok(())
    }

    /// Whether the background thread has something to do.
    fn has_background_work(&self) -> bool {
        if self.failure.first.lock().is_some() {
            return false;
        }
        if !self.pipeline.mems.read().immutables.is_empty() {
            return true;
        }
        compaction::pick_compaction(&self.versions.current(), &self.ctx.options).is_some()
    }
}

/// The name of table `number` in the store directory (`compaction/FORMAT.md`).
fn table_file_name(number: u64) -> String {
    crypto::names::table_file(number)
}

/// Obsolete files still in the directory: tables by number, and whether any at all.
#[derive(Default)]
struct ObsoleteLeft {
    tables: std::collections::HashSet<u64>,
    any: bool,
}

/// Drops `done` (a flushed memtable, or the readers of a compaction's
/// inputs), on a thread of its own when `bytes` says that frees a lot: freeing
/// a memtable's few hundred thousand skiplist nodes, or the page cache of a
/// few hundred MiB of unlinked tables, takes around 100 ms, which the caller
/// of `flush` or `compact_range` (or the next flush or compaction on the
/// background thread) need not wait for. Whatever a reader still holds is
/// freed by that reader later anyway.
fn release<T: Send + 'static>(done: T, bytes: usize) {
    if bytes < RELEASE_ON_THREAD_BYTES {
        return;
    }
    // If no thread can be had, the closure and `done` are dropped here.
    let _ = std::thread::Builder::new().name("release".into()).spawn(move || drop(done));
}

/// Whether `file` holds user keys in [`start`, `end`] (None = unbounded).
pub(crate) fn overlaps(file: &FileMeta, start: Option<&[u8]>, end: Option<&[u8]>) -> bool {
    let after_start = start.is_none() || start.is_some_and(|s| file.largest.user_key.as_slice() >= s);
    let before_end = end.is_none() || end.is_some_and(|e| file.smallest.user_key.as_slice() <= e);
    after_start && before_end
}

/// The flush + compaction thread. Failures are recorded by the work itself
/// (writes then return them); the thread then idles until shutdown.
pub(crate) fn run_background(inner: Arc<Inner>) {
    loop {
        {
            let mut bg = inner.sched.bg.lock();
            if bg.shutdown {
                return;
            }
            if !inner.has_background_work() {
                inner.sched.bg_wake.wait_for(&mut bg, IDLE_POLL);
                let shutdown = bg.shutdown;
                drop(bg);
                if !shutdown && inner.feed_expiry_due() {
                    // Kept change-feed segments age out on an idle store too.
                    let _work = inner.sched.work.lock();
                    inner.delete_obsolete();
                }
                continue;
            }
        }
        let result = {
            let _work = inner.sched.work.lock();
            inner.compact_pending()
        };
        if matches!(result, Err(ref e) if e.is_storage_full()) {
            // Wait for space to be freed; a shutdown still wakes the thread at once.
            let mut bg = inner.sched.bg.lock();
            if !bg.shutdown {
                inner.sched.bg_wake.wait_for(&mut bg, FULL_DISK_BACKOFF);
            }
        }
    }
}

/// Syncs the WAL every `interval` (the periodic sync policy).
pub(crate) fn run_periodic_sync(inner: Arc<Inner>, interval: Duration) {
    loop {
        {
            let mut bg = inner.sched.bg.lock();
            if bg.shutdown {
                return;
            }
            inner.sched.bg_wake.wait_for(&mut bg, interval);
            if bg.shutdown {
                return;
            }
        }
        if inner.sync_wal().is_err() {
            // Recorded by `sync_wal`; writes now fail, nothing left to sync.
            return;
        }
    }
}
