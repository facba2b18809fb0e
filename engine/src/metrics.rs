//! Metrics through the [`metrics`] facade.
//!
//! The engine records what an operator watches — operation counts and
//! latencies, flushes, compactions, write stalls, WAL syncs, block-cache hits,
//! open tables, bytes per level, key epochs — through the `metrics` crate's
//! macros. Whatever recorder the application installed receives them (for
//! Prometheus text, `metrics-exporter-prometheus`; the command-line tool's
//! `--metrics ADDR` and `stats --prometheus` use it); with none installed they
//! cost nothing.
//!
//! Two kinds:
//! - **Recorded as they happen.** Flushes, compactions, write stalls and WAL
//!   syncs, always (they are rare next to reads and writes). Per-operation
//!   counts and latency histograms of gets, writes and scans only with
//!   [`crate::Options::metrics`] on, since timing every call costs a clock read;
//!   so are the bytes per file kind and the open files, counted by a wrapper
//!   of the store's file system. Document queries, blob reads and writes,
//!   time-series queries, sync sessions, key rotations and secure deletes
//!   always (each costs far more than its clock reads).
//! - **Published on demand.** [`MetricsHandle::publish`] (from
//!   [`crate::Db::metrics_handle`]) sets the gauges and totals kept by the
//!   store itself (see [`crate::Stats`]); an exporter calls it before each
//!   scrape. The handle does not keep the store open.
//!
//! No metric carries a key, a value, a keyspace name or key material: names
//! and labels are fixed strings (`op`, `level`), values are counts, bytes and
//! seconds (`engine/tests/metrics.rs` checks a scrape against marker bytes).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `synapsed_ops_total` | counter | `op` = get, write, scan |
//! | `synapsed_op_duration_seconds` | histogram | `op` |
//! | `synapsed_write_batch_ops_total` | counter | operations inside written batches |
//! | `synapsed_write_bytes_total` | counter | bytes of the batch records written |
//! | `synapsed_durable_commits_total` | counter | commits that waited for a WAL sync |
//! | `synapsed_wal_syncs_total` | counter | fsyncs of WAL segments (commits per sync = group commit size) |
//! | `synapsed_wal_sync_duration_seconds` | histogram | |
//! | `synapsed_flushes_total`, `synapsed_flush_bytes_total`, `synapsed_flush_duration_seconds` | counter, counter, histogram | |
//! | `synapsed_compactions_total`, `synapsed_compaction_read_bytes_total`, `synapsed_compaction_written_bytes_total`, `synapsed_compaction_duration_seconds` | counters, histogram | |
//! | `synapsed_write_stalls_total`, `synapsed_write_stall_duration_seconds` | counter, histogram | |
//! | `synapsed_block_cache_hits_total`, `synapsed_block_cache_misses_total` | counter (published) | |
//! | `synapsed_open_tables`, `synapsed_disk_bytes`, `synapsed_memtable_bytes`, `synapsed_last_seqno`, `synapsed_live_key_epochs`, `synapsed_range_tombstones` | gauge (published) | |
//! | `synapsed_level_files`, `synapsed_level_bytes` | gauge (published) | `level` |
//! | `synapsed_files_under_epoch` | gauge (published) | `epoch` (files still under a data-key epoch: rotation and secure-delete progress) |
//! | `synapsed_store_ops_total`, `synapsed_store_op_duration_seconds` | counter, histogram | `op` = doc_query, blob_read, blob_write, ts_query, ts_downsample (always recorded) |
//! | `synapsed_blob_read_bytes_total`, `synapsed_blob_written_bytes_total` | counter | |
//! | `synapsed_file_read_bytes_total`, `synapsed_file_written_bytes_total` | counter | `kind` = wal, table, manifest, blob, keys, other (with Options::metrics) |
//! | `synapsed_open_files` | gauge | files the store holds open (with Options::metrics) |
//! | `synapsed_sync_sessions_total` | counter | `role` = initiator, responder; `outcome` = ok, failed |
//! | `synapsed_sync_session_duration_seconds` | histogram | `role` |
//! | `synapsed_sync_entries_sent_total`, `synapsed_sync_entries_received_total`, `synapsed_sync_bytes_sent_total`, `synapsed_sync_bytes_received_total`, `synapsed_sync_conflicts_total`, `synapsed_sync_refused_total` | counter | |
//! | `synapsed_key_rotations_total` | counter | |
//! | `synapsed_rotation_tables_total`, `synapsed_rotation_tables_rewritten` | gauge | tables of the running (or last) key rotation |
//! | `synapsed_secure_deletes_total`, `synapsed_secure_delete_keys_total`, `synapsed_secure_delete_files_removed_total` | counter | |
//! | `synapsed_secure_deletes_running` | gauge | |

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Histogram};

use crate::db::inner::Inner;

mod vfs;
pub(crate) use vfs::metered as metered_vfs;

/// Which operation a per-operation metric counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Get,
    Write,
    Scan,
}

/// Handles of the per-operation metrics, made once at open when
/// `Options::metrics` is on (a handle is an atomic update; looking a metric up
/// by name on every call would cost a map lookup).
pub(crate) struct OpMetrics {
    counts: [Counter; 3],
    durations: [Histogram; 3],
    batch_ops: Counter,
    write_bytes: Counter,
    durable_commits: Counter,
}

impl OpMetrics {
    pub(crate) fn new() -> Self {
        let names = ["get", "write", "scan"];
        OpMetrics {
            counts: names.map(|op| counter!("synapsed_ops_total", "op" => op)),
            durations: names.map(|op| histogram!("synapsed_op_duration_seconds", "op" => op)),
            batch_ops: counter!("synapsed_write_batch_ops_total"),
            write_bytes: counter!("synapsed_write_bytes_total"),
            durable_commits: counter!("synapsed_durable_commits_total"),
        }
    }

    fn slot(op: Op) -> usize {
        match op {
            Op::Get => 0,
            Op::Write => 1,
            Op::Scan => 2,
        }
    }
}

/// Times one operation: counts it and records its duration when dropped.
pub(crate) struct OpTimer<'a> {
    metrics: &'a OpMetrics,
    op: Op,
    started: Instant,
}

impl Drop for OpTimer<'_> {
    fn drop(&mut self) {
        let slot = OpMetrics::slot(self.op);
        if let (Some(count), Some(duration)) = (self.metrics.counts.get(slot), self.metrics.durations.get(slot)) {
            count.increment(1);
            duration.record(self.started.elapsed());
        }
    }
}

impl Inner {
    /// A timer for `op` when per-operation metrics are on.
    pub(crate) fn op_timer(&self, op: Op) -> Option<OpTimer<'_>> {
        self.op_metrics.as_deref().map(|metrics| OpTimer { metrics, op, started: Instant::now() })
    }

    /// Counts a written batch's operations and record bytes.
    pub(crate) fn record_batch(&self, ops: usize, record_bytes: usize) {
        if let Some(m) = self.op_metrics.as_deref() {
            m.batch_ops.increment(ops as u64);
            m.write_bytes.increment(record_bytes as u64);
        }
    }

    /// Counts a commit that waited for its WAL sync.
    pub(crate) fn record_durable_commit(&self) {
        if let Some(m) = self.op_metrics.as_deref() {
            m.durable_commits.increment(1);
        }
    }
}

/// Describes every metric the engine records (the `# HELP` lines of a
/// Prometheus scrape). Call it once after installing a recorder.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("synapsed_ops_total", "Reads, writes and scans started (with Options::metrics)");
    describe_histogram!("synapsed_op_duration_seconds", Unit::Seconds, "Duration of gets, writes and scan setup");
    describe_counter!("synapsed_write_batch_ops_total", "Operations inside written batches");
    describe_counter!("synapsed_write_bytes_total", Unit::Bytes, "Bytes of batch records written");
    describe_counter!("synapsed_durable_commits_total", "Commits that waited for a WAL sync");
    describe_counter!("synapsed_wal_syncs_total", "fsyncs of WAL segments");
    describe_histogram!("synapsed_wal_sync_duration_seconds", Unit::Seconds, "Duration of WAL fsyncs");
    describe_counter!("synapsed_flushes_total", "Memtable flushes");
    describe_counter!("synapsed_flush_bytes_total", Unit::Bytes, "Bytes of tables written by flushes");
    describe_histogram!("synapsed_flush_duration_seconds", Unit::Seconds, "Duration of flushes");
    describe_counter!("synapsed_compactions_total", "Compactions");
    describe_counter!("synapsed_compaction_read_bytes_total", Unit::Bytes, "Bytes of tables read by compactions");
    describe_counter!("synapsed_compaction_written_bytes_total", Unit::Bytes, "Bytes of tables written by compactions");
    describe_histogram!("synapsed_compaction_duration_seconds", Unit::Seconds, "Duration of compactions");
    describe_counter!("synapsed_write_stalls_total", "Write stalls begun");
    describe_histogram!("synapsed_write_stall_duration_seconds", Unit::Seconds, "Duration of write stalls");
    describe_counter!("synapsed_block_cache_hits_total", "Block-cache hits");
    describe_counter!("synapsed_block_cache_misses_total", "Block-cache misses");
    describe_gauge!("synapsed_open_tables", "SSTables held open");
    describe_gauge!("synapsed_disk_bytes", Unit::Bytes, "Bytes of every file in the store directory");
    describe_gauge!("synapsed_memtable_bytes", Unit::Bytes, "Bytes in memtables");
    describe_gauge!("synapsed_last_seqno", "Last committed sequence number");
    describe_gauge!("synapsed_live_key_epochs", "Data-key epochs in the keyring");
    describe_gauge!("synapsed_range_tombstones", "Live range tombstones");
    describe_gauge!("synapsed_level_files", "SSTables per level");
    describe_gauge!("synapsed_level_bytes", Unit::Bytes, "Bytes of SSTables per level");
    describe_gauge!("synapsed_files_under_epoch", "Files still under each data-key epoch");
    describe_counter!("synapsed_store_ops_total", "Document queries, blob reads and writes, time-series queries");
    describe_histogram!("synapsed_store_op_duration_seconds", Unit::Seconds, "Duration of document queries, blob reader opens and commits, time-series queries");
    describe_counter!("synapsed_blob_read_bytes_total", Unit::Bytes, "Blob bytes read");
    describe_counter!("synapsed_blob_written_bytes_total", Unit::Bytes, "Blob bytes written (committed blobs)");
    describe_counter!("synapsed_file_read_bytes_total", Unit::Bytes, "Bytes read from store files, per file kind");
    describe_counter!("synapsed_file_written_bytes_total", Unit::Bytes, "Bytes written to store files, per file kind");
    describe_gauge!("synapsed_open_files", "Files the store holds open");
    describe_counter!("synapsed_sync_sessions_total", "Sync sessions run, per role and outcome");
    describe_histogram!("synapsed_sync_session_duration_seconds", Unit::Seconds, "Duration of sync sessions");
    describe_counter!("synapsed_sync_entries_sent_total", "Entries sent to peers");
    describe_counter!("synapsed_sync_entries_received_total", "Entries received from peers");
    describe_counter!("synapsed_sync_bytes_sent_total", Unit::Bytes, "Sync frame bytes sent");
    describe_counter!("synapsed_sync_bytes_received_total", Unit::Bytes, "Sync frame bytes received");
    describe_counter!("synapsed_sync_conflicts_total", "Received entries concurrent with the local version");
    describe_counter!("synapsed_sync_refused_total", "Entries refused, either way (rights, clock)");
    describe_counter!("synapsed_key_rotations_total", "Key rotations finished");
    describe_gauge!("synapsed_rotation_tables_total", "Tables the running (or last) key rotation rewrites");
    describe_gauge!("synapsed_rotation_tables_rewritten", "Tables the running (or last) key rotation has rewritten");
    describe_counter!("synapsed_secure_deletes_total", "Secure deletes finished");
    describe_counter!("synapsed_secure_delete_keys_total", "Live keys removed by secure deletes");
    describe_counter!("synapsed_secure_delete_files_removed_total", "Files overwritten and removed by secure deletes");
    describe_gauge!("synapsed_secure_deletes_running", "Secure deletes running");
    register_unlabelled();
}

/// Registers the metrics that carry no label (or a fixed set of labels), so
/// a scrape lists them at zero before anything happened (the per-operation
/// metrics of gets, writes and scans are registered by a store opened with
/// `Options::metrics`, the gauges by [`MetricsHandle::publish`]) (a counter a scrape
/// never saw cannot be told apart from one the engine does not have).
fn register_unlabelled() {
    for name in [
        "synapsed_flushes_total",
        "synapsed_flush_bytes_total",
        "synapsed_compactions_total",
        "synapsed_compaction_read_bytes_total",
        "synapsed_compaction_written_bytes_total",
        "synapsed_write_stalls_total",
        "synapsed_wal_syncs_total",
        "synapsed_blob_read_bytes_total",
        "synapsed_blob_written_bytes_total",
        "synapsed_sync_entries_sent_total",
        "synapsed_sync_entries_received_total",
        "synapsed_sync_bytes_sent_total",
        "synapsed_sync_bytes_received_total",
        "synapsed_sync_conflicts_total",
        "synapsed_sync_refused_total",
        "synapsed_key_rotations_total",
        "synapsed_secure_deletes_total",
        "synapsed_secure_delete_keys_total",
        "synapsed_secure_delete_files_removed_total",
    ] {
        counter!(name).increment(0);
    }
    for name in [
        "synapsed_flush_duration_seconds",
        "synapsed_compaction_duration_seconds",
        "synapsed_write_stall_duration_seconds",
        "synapsed_wal_sync_duration_seconds",
    ] {
        drop(histogram!(name));
    }
    for op in StoreOp::ALL {
        counter!("synapsed_store_ops_total", "op" => op.name()).increment(0);
        drop(histogram!("synapsed_store_op_duration_seconds", "op" => op.name()));
    }
    for role in ["initiator", "responder"] {
        drop(histogram!("synapsed_sync_session_duration_seconds", "role" => role));
        for outcome in ["ok", "failed"] {
            counter!("synapsed_sync_sessions_total", "role" => role, "outcome" => outcome).increment(0);
        }
    }
    for name in ["synapsed_rotation_tables_total", "synapsed_rotation_tables_rewritten", "synapsed_secure_deletes_running", "synapsed_open_files"] {
        gauge!(name).increment(0.0);
    }
}

/// An operation of a store built on the engine (documents, blobs, time
/// series), counted and timed always: each is far costlier than a clock read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StoreOp {
    DocQuery,
    BlobRead,
    BlobWrite,
    TsQuery,
    TsDownsample,
}

impl StoreOp {
    const ALL: [StoreOp; 5] = [StoreOp::DocQuery, StoreOp::BlobRead, StoreOp::BlobWrite, StoreOp::TsQuery, StoreOp::TsDownsample];

    fn name(self) -> &'static str {
        match self {
            StoreOp::DocQuery => "doc_query",
            StoreOp::BlobRead => "blob_read",
            StoreOp::BlobWrite => "blob_write",
            StoreOp::TsQuery => "ts_query",
            StoreOp::TsDownsample => "ts_downsample",
        }
    }
}

/// Counts and times a store operation: made at its start, recorded when dropped.
pub(crate) struct StoreOpTimer {
    op: StoreOp,
    started: Instant,
}

/// Starts timing `op`.
pub(crate) fn timed(op: StoreOp) -> StoreOpTimer {
    StoreOpTimer { op, started: Instant::now() }
}

impl Drop for StoreOpTimer {
    fn drop(&mut self) {
        counter!("synapsed_store_ops_total", "op" => self.op.name()).increment(1);
        histogram!("synapsed_store_op_duration_seconds", "op" => self.op.name()).record(self.started.elapsed());
    }
}

/// `bytes` of a blob were read.
pub(crate) fn blob_read(bytes: usize) {
    counter!("synapsed_blob_read_bytes_total").increment(bytes as u64);
}

/// A blob of `bytes` was committed.
pub(crate) fn blob_written(bytes: u64) {
    counter!("synapsed_blob_written_bytes_total").increment(bytes);
}

/// One sync session: its `sync_session` span is entered while it lives, and
/// [`SyncSession::finished`] records its counts in the metrics and the span.
/// Dropped without `finished`, the session counts as failed.
pub(crate) struct SyncSession {
    role: &'static str,
    started: Instant,
    span: tracing::span::EnteredSpan,
    done: bool,
}

impl SyncSession {
    /// A session begins in `role` ("initiator" or "responder").
    pub(crate) fn begin(role: &'static str) -> Self {
        let span = tracing::info_span!(
            "sync_session",
            role,
            peer = tracing::field::Empty,
            entries_sent = tracing::field::Empty,
            entries_received = tracing::field::Empty,
            bytes_sent = tracing::field::Empty,
            bytes_received = tracing::field::Empty,
            conflicts = tracing::field::Empty,
            refused = tracing::field::Empty,
        );
        SyncSession { role, started: Instant::now(), span: span.entered(), done: false }
    }

    /// The session ended with `stats` (passed through). The peer is named by
    /// its replica id, a random number that says nothing of keys or data.
    pub(crate) fn finished(mut self, stats: sync::SyncStats) -> sync::SyncStats {
        let refused = stats.refused_writes + stats.refused_by_peer;
        let span = &self.span;
        span.record("peer", tracing::field::display(format_args!("{:016x}", stats.peer.0)));
        span.record("entries_sent", stats.entries_sent);
        span.record("entries_received", stats.entries_received);
        span.record("bytes_sent", stats.bytes_sent);
        span.record("bytes_received", stats.bytes_received);
        span.record("conflicts", stats.conflicts);
        span.record("refused", refused);
        tracing::info!(entries_applied = stats.entries_applied, rounds = stats.rounds, full = stats.full, "sync session finished");
        counter!("synapsed_sync_entries_sent_total").increment(stats.entries_sent);
        counter!("synapsed_sync_entries_received_total").increment(stats.entries_received);
        counter!("synapsed_sync_bytes_sent_total").increment(stats.bytes_sent);
        counter!("synapsed_sync_bytes_received_total").increment(stats.bytes_received);
        counter!("synapsed_sync_conflicts_total").increment(stats.conflicts);
        counter!("synapsed_sync_refused_total").increment(refused);
        self.record("ok");
        stats
    }

    fn record(&mut self, outcome: &'static str) {
        self.done = true;
        counter!("synapsed_sync_sessions_total", "role" => self.role, "outcome" => outcome).increment(1);
        histogram!("synapsed_sync_session_duration_seconds", "role" => self.role).record(self.started.elapsed());
    }
}

impl Drop for SyncSession {
    fn drop(&mut self) {
        if !self.done {
            tracing::info!("sync session failed");
            self.record("failed");
        }
    }
}

/// A key rotation reached `step` with `done` of `total` tables rewritten
/// (the last step, "destroy", ends it).
pub(crate) fn rotation_progress(step: &str, done: usize, total: usize) {
    gauge!("synapsed_rotation_tables_total").set(total as f64);
    gauge!("synapsed_rotation_tables_rewritten").set(done as f64);
    tracing::debug!(step, tables_rewritten = done, tables_total = total, "key rotation step");
    if step == "destroy" {
        counter!("synapsed_key_rotations_total").increment(1);
    }
}

/// A running secure delete: its `secure_delete` span is entered and it counts
/// in `synapsed_secure_deletes_running` while it lives.
pub(crate) struct SecureDeleteRun {
    _span: tracing::span::EnteredSpan,
}

impl SecureDeleteRun {
    /// A secure delete begins.
    pub(crate) fn begin() -> Self {
        gauge!("synapsed_secure_deletes_running").increment(1.0);
        SecureDeleteRun { _span: tracing::info_span!("secure_delete").entered() }
    }
}

impl Drop for SecureDeleteRun {
    fn drop(&mut self) {
        gauge!("synapsed_secure_deletes_running").decrement(1.0);
    }
}

/// A secure delete finished with `report` (passed through).
pub(crate) fn secure_deleted(report: crate::SecureDeleteReport) -> crate::SecureDeleteReport {
    counter!("synapsed_secure_deletes_total").increment(1);
    counter!("synapsed_secure_delete_keys_total").increment(report.keys_deleted as u64);
    counter!("synapsed_secure_delete_files_removed_total").increment(report.files_removed.len() as u64);
    tracing::info!(keys_deleted = report.keys_deleted, files_removed = report.files_removed.len(), passes = report.overwrite_passes, "secure delete finished");
    report
}

/// A finished flush.
pub(crate) fn flushed(bytes: u64, duration: Duration) {
    counter!("synapsed_flushes_total").increment(1);
    counter!("synapsed_flush_bytes_total").increment(bytes);
    histogram!("synapsed_flush_duration_seconds").record(duration);
}

/// A finished compaction.
pub(crate) fn compacted(read_bytes: u64, written_bytes: u64, duration: Duration) {
    counter!("synapsed_compactions_total").increment(1);
    counter!("synapsed_compaction_read_bytes_total").increment(read_bytes);
    counter!("synapsed_compaction_written_bytes_total").increment(written_bytes);
    histogram!("synapsed_compaction_duration_seconds").record(duration);
}

/// A write stall began.
pub(crate) fn stall_began() {
    counter!("synapsed_write_stalls_total").increment(1);
}

/// A write stall ended after `duration`.
pub(crate) fn stall_ended(duration: Duration) {
    histogram!("synapsed_write_stall_duration_seconds").record(duration);
}

/// Publishes a store's own gauges and totals to the installed recorder, for an
/// exporter to call before it renders a scrape. Made by
/// [`crate::Db::metrics_handle`]; it holds no reference that keeps the store
/// open, and publishes nothing once the store is closed and dropped.
#[derive(Clone)]
pub struct MetricsHandle {
    inner: Weak<Inner>,
}

impl std::fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsHandle").field("live", &(self.inner.strong_count() > 0)).finish()
    }
}

impl MetricsHandle {
    pub(crate) fn new(inner: &Arc<Inner>) -> Self {
        MetricsHandle { inner: Arc::downgrade(inner) }
    }

    /// Sets the gauges and totals the store keeps (block cache, open tables,
    /// files and bytes per level, disk and memtable bytes, key epochs) in the
    /// installed recorder. Returns false when the store is gone.
    pub fn publish(&self) -> bool {
        let Some(inner) = self.inner.upgrade() else { return false };
        let stats = inner.stats();
        counter!("synapsed_block_cache_hits_total").absolute(stats.block_cache_hits);
        counter!("synapsed_block_cache_misses_total").absolute(stats.block_cache_misses);
        gauge!("synapsed_open_tables").set(stats.open_tables as f64);
        gauge!("synapsed_disk_bytes").set(stats.disk_bytes as f64);
        gauge!("synapsed_memtable_bytes").set(stats.memtable_bytes as f64);
        gauge!("synapsed_last_seqno").set(stats.last_seqno as f64);
        gauge!("synapsed_live_key_epochs").set(stats.live_epochs.len() as f64);
        gauge!("synapsed_range_tombstones").set(stats.range_tombstones as f64);
        for (level, (files, bytes)) in stats.files_per_level.iter().zip(&stats.bytes_per_level).enumerate() {
            let level = level.to_string();
            gauge!("synapsed_level_files", "level" => level.clone()).set(*files as f64);
            gauge!("synapsed_level_bytes", "level" => level).set(*bytes as f64);
        }
        for epoch in &stats.files_per_epoch {
            gauge!("synapsed_files_under_epoch", "epoch" => epoch.epoch.to_string()).set(epoch.files.len() as f64);
        }
        true
    }
}
