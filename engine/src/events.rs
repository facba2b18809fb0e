//! What the store tells an application about its own work: flushes,
//! compactions, write stalls, background failures, files created and removed.
//!
//! An [`EventListener`] set in [`crate::Options::event_listener`] is called on
//! the thread that does the work, after (or, for "begun" events, before) it;
//! every method has an empty default body, so a listener implements only what
//! it needs. The same events are emitted through the `tracing` crate (target
//! `synapsed_storage`), inside spans for open, flush, compaction, key
//! rotation, secure delete and sync sessions. No event and no span field carries key or value bytes, key
//! material or a passphrase: only file names, levels, counts, sizes, durations
//! and error messages (which name files and offsets, never contents).
//!
//! A listener must not call back into the store from an event (the store may
//! hold its internal locks while it reports); hand the event to another thread
//! if it needs to.

use std::time::Duration;

/// Receives the store's events. Every method does nothing by default.
pub trait EventListener: Send + Sync + std::fmt::Debug {
    /// A memtable flush begins.
    fn on_flush_begin(&self, _event: &FlushBegin) {}
    /// A memtable flush finished: its tables are in the current version.
    fn on_flush_end(&self, _event: &FlushEnd) {}
    /// A compaction begins.
    fn on_compaction_begin(&self, _event: &CompactionBegin) {}
    /// A compaction finished: its outputs replaced its inputs in the current version.
    fn on_compaction_end(&self, _event: &CompactionEnd) {}
    /// A writer began to wait for background work (too many level-0 tables or
    /// frozen memtables).
    fn on_write_stall_begin(&self, _event: &WriteStallBegin) {}
    /// The stalled writer stopped waiting (room was made, or the wait failed).
    fn on_write_stall_end(&self, _event: &WriteStallEnd) {}
    /// A flush, compaction or file removal failed.
    fn on_background_error(&self, _event: &BackgroundError) {}
    /// A table file was written and synced (by a flush or a compaction).
    fn on_table_file_created(&self, _event: &TableFileCreated) {}
    /// An obsolete file was removed from the store directory.
    fn on_file_deleted(&self, _event: &FileDeleted) {}
}

/// A flush begins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushBegin {
    /// Number of this flush or compaction among the store's background jobs.
    pub job: u64,
    /// Approximate bytes of the memtable being flushed.
    pub memtable_bytes: u64,
}

/// A flush finished.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlushEnd {
    /// Same as in [`FlushBegin`].
    pub job: u64,
    /// Names of the level-0 tables written (none for an empty memtable).
    pub output_files: Vec<String>,
    /// Their total size in bytes.
    pub output_bytes: u64,
    /// Time the flush took.
    pub duration: Duration,
}

/// A compaction begins.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionBegin {
    /// Number of this flush or compaction among the store's background jobs.
    pub job: u64,
    /// Level of the first inputs; the outputs go to the next level.
    pub level: usize,
    /// Names of the input tables, of both levels.
    pub input_files: Vec<String>,
    /// Their total size in bytes.
    pub input_bytes: u64,
}

/// A compaction finished.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CompactionEnd {
    /// Same as in [`CompactionBegin`].
    pub job: u64,
    /// Level of the first inputs.
    pub level: usize,
    /// Names of the input tables, now obsolete.
    pub input_files: Vec<String>,
    /// Their total size in bytes.
    pub input_bytes: u64,
    /// Names of the tables written, in level `level + 1`.
    pub output_files: Vec<String>,
    /// Their total size in bytes.
    pub output_bytes: u64,
    /// Time the compaction took.
    pub duration: Duration,
}

/// Why a writer stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StallCause {
    /// Level 0 holds `Options::l0_stop_trigger` tables or more.
    Level0Files,
    /// The active memtable is full and `Options::max_immutable_memtables` wait
    /// to be flushed.
    FrozenMemtables,
}

/// A writer began to stall.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriteStallBegin {
    /// Why.
    pub cause: StallCause,
}

/// A stalled writer stopped waiting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriteStallEnd {
    /// How long it waited.
    pub duration: Duration,
}

/// A background failure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackgroundError {
    /// What failed ("memtable flush", "compaction", "obsolete file removal", ...).
    pub operation: String,
    /// The error's message.
    pub message: String,
    /// Whether writes are now stopped (reads continue). A full disk only
    /// postpones the work, and a failed file removal is retried later: neither
    /// stops writes.
    pub writes_stopped: bool,
}

/// A table file was created.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TableFileCreated {
    /// File name, relative to the store directory.
    pub file: String,
    /// Level it was written for.
    pub level: usize,
    /// Size in bytes.
    pub bytes: u64,
}

/// An obsolete file was removed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileDeleted {
    /// File name, relative to the store directory.
    pub file: String,
    /// Whether it was overwritten before it was unlinked (secure delete).
    pub overwritten: bool,
}
