//! `Db::refresh` for read-only handles: catch up with the writer process by
//! re-reading `CURRENT`, the manifest it names and the WAL segments it still
//! needs, then opening every table of the new version.
//!
//! Reads that began before a refresh keep the memtables and version they took
//! (an iterator holds both), so they stay consistent. Snapshots taken before a
//! refresh are not: the writer process knows nothing of them, so its
//! compactions may have dropped versions they would need. Take snapshots after
//! the refresh they should read from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::db::inner::Inner;
use crate::db::open::{open_tables, replay_wal_checked, ReplayFailure};
use crate::error::{Error, Result};

/// How often a refresh starts over when a file vanished under it (the writer
/// retired a manifest, table or log between listing and reading it).
const REFRESH_ATTEMPTS: u32 = 20;

/// Holds `Inner::pipeline.mems_generation` odd while it lives (even again on drop, also
/// when a refresh unwinds, so reads never wait for good).
struct Swapping<'a>(&'a AtomicU64);

impl<'a> Swapping<'a> {
    fn begin(generation: &'a AtomicU64) -> Self {
        generation.fetch_add(1, Ordering::SeqCst);
        Swapping(generation)
    }
}

impl Drop for Swapping<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Inner {
    pub(crate) fn refresh(&self) -> Result<()> {
        if !self.options.read_only {
            return Err(Error::InvalidArgument(
                "refresh is for read-only handles; a read-write handle always sees its own writes"
                    .into(),
            ));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(reader) = &self.reader {
            if reader.is_evicted() {
                // No writer counts this handle as a reader any more; damage it met
                // from now on could not be told from the writer's overwrites.
                self.closed.store(true, Ordering::Release);
                return Err(Error::Retired { file: reader.describe() });
            }
            // It may read any file until it holds the tables of its new version.
            reader.pin_all();
        }
        // No read view may mix the old memtables with a newer version (which
        // may hold the memtables' operands already folded by the writer's
        // compactions, lack what a flush moved out of a retired log, or name
        // tables the writer has removed): reads wait while the generation is
        // odd (`Inner::read_view`).
        let swapping = Swapping::begin(&self.pipeline.mems_generation);
        let result = self.refresh_attempts().map_err(|e| self.reader_error(e));
        if result.is_err() {
            // The version set may already hold the writer's newer version while the
            // memtables are still the old ones; reading that mix could miss data,
            // so a failed refresh closes the handle (before reads may go on: a
            // read view checks `closed` once the generation is even again) and
            // the caller opens a new one.
            self.closed.store(true, Ordering::Release);
        }
        drop(swapping);
        if let Some(reader) = &self.reader {
            // Closed, it reads nothing more; open, the tables it keeps open.
            let held = if result.is_ok() { self.versions.live_files() } else { Default::default() };
            reader.pin(&held);
        }
        result
    }

    fn refresh_attempts(&self) -> Result<()> {
        let mut attempts = 0;
        loop {
            match self.refresh_once() {
                Ok(false) if attempts < REFRESH_ATTEMPTS => attempts += 1,
                Ok(false) => {
                    return Err(Error::Io {
                        file: compaction::CURRENT_FILE.into(),
                        source: std::io::Error::other(
                            "the writer kept retiring logs faster than this handle could read them",
                        ),
                    })
                }
                Ok(true) => return Ok(()),
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && attempts < REFRESH_ATTEMPTS =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt; `Ok(false)` if the writer retired logs meanwhile (a flush
    /// finished), in which case what was read may miss what that flush wrote.
    fn refresh_once(&self) -> Result<bool> {
        self.versions.reload()?;
        let log_number = self.versions.log_number();
        let names = self.vfs.list_dir(&self.dir).map_err(|source| Error::Io {
            file: ".".into(),
            source,
        })?;
        let replayed = match replay_wal_checked(&self.vfs, &self.dir, &self.keys, &self.versions, &names, false) {
            Ok(replayed) => replayed,
            // The writer started or retired a segment between the two reads;
            // a real disagreement is still there after the retries.
            Err(ReplayFailure::Disagrees(_)) => return Ok(false),
            Err(ReplayFailure::Failed(e)) => return Err(e),
        };
        // Logs are removed only once a manifest edit moved the log number past
        // them: unchanged, every log the version needs was there to replay.
        self.versions.reload()?;
        if self.versions.log_number() != log_number {
            return Ok(false);
        }
        // Hold every table of the new version before anyone can read through it,
        // and close those no live version (an iterator still running) names.
        open_tables(self)?;
        let live = self.versions.live_files();
        self.tables.retain(|n| live.contains(&n));
        {
            let mut mems = self.pipeline.mems.write();
            mems.reset(Arc::new(replayed.memtable));
            mems.active_in = replayed.memtables_in.into_iter().map(|(id, m)| (id, Arc::new(m))).collect();
        }
        self.pipeline.last_logged
            .fetch_max(replayed.last_seqno, Ordering::AcqRel);
        self.pipeline.visible.fetch_max(
            replayed.last_seqno.max(self.versions.last_seqno()),
            Ordering::AcqRel,
        );
        Ok(true)
    }
}
