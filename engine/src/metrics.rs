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
//!   [`crate::Options::metrics`] on, since timing every call costs a clock read.
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

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Histogram};

use crate::db::inner::Inner;

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
