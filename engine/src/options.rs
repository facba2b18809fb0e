//! Options of an open store.

use std::sync::Arc;
use std::time::Duration;

use crypto::vfs::{StdVfs, Vfs};
use crypto::Argon2Params;
use index::Compression;

/// Smallest accepted `max_open_files`: a compaction reads up to a level's worth of
/// inputs at once and must not thrash the table cache.
pub(crate) const MIN_OPEN_FILES: usize = 16;
/// Largest accepted `max_open_files`.
pub(crate) const MAX_OPEN_FILES: usize = 1_000_000;
/// Most threads a manual compaction uses by default: past a few, the disk and
/// the merge of the slowest part bound the time, not the cores.
const DEFAULT_MAX_SUBCOMPACTIONS: usize = 4;
/// Most threads one batch may be inserted into the memtable by.
const MAX_MEMTABLE_INSERT_THREADS: usize = 16;

/// When a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every write returns only after its WAL record is fsynced (group commit shares fsyncs).
    EveryCommit,
    /// WAL records are fsynced at most `interval_ms` after they are written; a crash
    /// may lose writes acknowledged within that window.
    Periodic {
        /// Interval between background syncs.
        interval_ms: u64,
    },
    /// Never fsync the WAL explicitly (the OS writes it back); for tests and bulk loads.
    Never,
}

/// How a store is opened.
///
/// Built from [`Options::default`] (or [`Options::tiny_for_tests`]) with one
/// `with_*` setter per field, so that fields can be added without breaking
/// callers:
///
/// ```
/// use synapsed_storage::{Options, SyncPolicy};
/// let options = Options::default().with_memtable_size_bytes(16 << 20).with_sync(SyncPolicy::Never);
/// assert_eq!(options.memtable_size_bytes, 16 << 20);
/// ```
///
/// Fields stay public for reading and for assignment on an existing value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// File system (the real one by default; `SimVfs` in crash tests).
    pub vfs: Arc<dyn Vfs>,
    /// WAL durability.
    pub sync: SyncPolicy,
    /// Size at which the active memtable is frozen and flushed.
    pub memtable_size_bytes: usize,
    /// Most immutable memtables waiting for flush before writers stall.
    pub max_immutable_memtables: usize,
    /// Target uncompressed size of an SSTable data block.
    pub block_size_bytes: usize,
    /// Keys between restart points in a block.
    pub block_restart_interval: usize,
    /// Bytes of decrypted blocks to cache (0 = no block cache).
    pub block_cache_bytes: usize,
    /// Read table blocks through a read-only memory mapping of each table file
    /// instead of `pread` (blocks are authenticated, decrypted and cached the
    /// same way). A table file shortened by something outside the engine while
    /// mapped ends the process with `SIGBUS` where `pread` would report an
    /// error: see docs/design.md, "Memory-mapped table reads".
    pub mmap_reads: bool,
    /// Block compression (applied before encryption).
    pub compression: Compression,
    /// Bloom filter bits per key (0 = no filters).
    pub bloom_bits_per_key: u32,
    /// Number of L0 files that triggers a compaction.
    pub l0_compaction_trigger: usize,
    /// Number of L0 files at which writes are slowed.
    pub l0_slowdown_trigger: usize,
    /// Number of L0 files at which writes stop until compaction catches up.
    pub l0_stop_trigger: usize,
    /// Target total size of level 1.
    pub level_base_bytes: u64,
    /// Size ratio between adjacent levels.
    pub level_size_multiplier: u64,
    /// Target size of one compaction output table.
    pub target_file_size_bytes: u64,
    /// Number of levels (L0 .. L{n-1}).
    pub num_levels: usize,
    /// Run flushes and compactions on background threads (off: only on explicit calls).
    pub background_compaction: bool,
    /// Most threads one compaction or flush that the caller waits for
    /// (`compact_range`, and through it secure deletion; `flush`; key
    /// rotation's rewrites) is cut into: each thread merges and writes a
    /// disjoint key range, and one manifest edit installs all their tables at
    /// once. 1 runs all of them on one thread. A compaction gets at most one
    /// thread per `target_file_size_bytes` of input, a flush one per eighth of
    /// it (a flush in parts writes one level-0 table per part, cut where the
    /// store's tables say the memtable's keys divide evenly), so small ones run
    /// on one. Background flushes and compactions always run on the one
    /// background thread, so they never take a second core from foreground
    /// writers. Default: the available parallelism, at most 4; accepted 1..=16.
    pub max_subcompactions: usize,
    /// Batches of at least this many operations start their WAL sync on a
    /// second thread as soon as their record is appended, and are inserted
    /// into the memtable while it runs: a large durable batch then costs about
    /// the longer of the two rather than their sum. Only under
    /// `SyncPolicy::EveryCommit`; the batch still becomes visible only once
    /// the sync covering it has returned. 0 never starts one (every sync runs
    /// on the committing thread, after the insert). Default 256.
    pub sync_overlap_min_ops: usize,
    /// Most threads that insert one batch into the memtable: a batch of at
    /// least 8,192 operations is inserted by up to one thread per 4,096 of
    /// them, each taking short runs of its sorted order, while the committing
    /// writer holds the writer lock (a bulk load of a million pairs inserts
    /// about a fifth faster on two cores). 1 inserts every batch on the
    /// committing thread. Default: the available parallelism, at most 4;
    /// accepted 1..=16.
    pub memtable_insert_threads: usize,
    /// A batch (`Db::write`) whose record would take at least this many bytes
    /// is written straight to a level-0 table instead of the WAL and the
    /// memtable: the memtables are flushed first, then the batch's operations
    /// are sorted into one table, synced, and added by one manifest edit, which
    /// is the commit (atomic and durable under every sync policy). A bulk load
    /// then writes its bytes once instead of twice (log, then flush) and holds
    /// no memtable of its size. `usize::MAX` turns it off. Default 32 MiB.
    pub ingest_min_bytes: usize,
    /// Argon2id parameters for a new passphrase slot (used by `create`,
    /// `add_credential` and `change_passphrase`). At least
    /// [`Argon2Params::PRODUCTION_FLOOR`] (OWASP's m = 19456 KiB, t = 2) unless
    /// `insecure_kdf_for_tests` is set; a passphrase change never goes below the
    /// replaced slot's cost.
    pub argon2: Argon2Params,
    /// Lets `argon2` be cheaper than the production floor. For tests only (they
    /// make hundreds of stores): a passphrase slot made so falls to guessing
    /// hundreds of times sooner. Default false; `tiny_for_tests` sets it, and the
    /// CLI's `--insecure-kdf-for-tests` does.
    pub insecure_kdf_for_tests: bool,
    /// Overwrite passes over obsolete files before unlinking them (0 = plain unlink).
    pub secure_delete_passes: u32,
    /// Per-operation metrics: counts and latency histograms of gets, writes
    /// and scans, and bytes read and written per file kind with the files held
    /// open, sent to the installed `metrics` recorder (see
    /// [`crate::MetricsHandle`]). Off by default: timing every call costs a
    /// clock read. Flush, compaction, stall, WAL-sync, document, blob,
    /// time-series, sync-session, rotation and secure-delete metrics are
    /// recorded either way.
    pub metrics: bool,
    /// How long a key rotation (and so a secure deletion) waits for read-only
    /// processes to let go of obsolete files before it overwrites them anyway;
    /// a reader still holding one then gets `Error::Retired` (default 5,000 ms;
    /// see `engine/src/db/readers.rs`).
    pub reader_wait_ms: u64,
    /// Largest accepted key (default 64 KiB; at most 1 MiB, the SSTable limit).
    pub max_key_bytes: usize,
    /// Largest accepted value (default and maximum 64 MiB, the SSTable limit;
    /// larger objects belong in the blob store).
    pub max_value_bytes: usize,
    /// Most operations in one batch or transaction (default 1,048,576).
    pub max_batch_ops: usize,
    /// Largest encoded batch, keys and values included (default 256 MiB; at most
    /// the WAL's record limit).
    pub max_batch_bytes: usize,
    /// Most SSTables a read-write handle keeps open (one file descriptor each;
    /// default 1,000, at least 16, at most 1,000,000). Beyond it the least
    /// recently used table is closed and reopened on its next read. A read-only
    /// handle keeps every table of its version open (the writer may unlink them),
    /// so it refuses to open or refresh a version with more tables than this.
    pub max_open_files: usize,
    /// Open without write access (no lock taken, no recovery writes).
    pub read_only: bool,
    /// Outside state that detects a rollback of the whole directory (see
    /// [`crate::FreshnessCounter`]); none by default.
    pub freshness_counter: Option<Arc<dyn crate::FreshnessCounter>>,
    /// Told of flushes, compactions, write stalls, background failures and
    /// files created and removed (see [`crate::EventListener`]); none by default.
    pub event_listener: Option<Arc<dyn crate::EventListener>>,
    /// Compaction filters and table-properties collectors by keyspace name
    /// (set with [`Options::with_compaction_filter`] and
    /// [`Options::with_table_properties_collector`]).
    pub(crate) hooks: crate::hooks::HookRegistry,
    /// How long the change feed ([`crate::Db::changes_since`]) keeps changes
    /// after they are in tables: with a retention, the WAL segments a flush
    /// retires are kept (still encrypted, recorded in the manifest) until they
    /// fall out of it, and batches are never written straight to a table
    /// (`ingest_min_bytes` is ignored), so every change is in a segment. `None`
    /// (the default) keeps today's behaviour: segments go once their data is in
    /// tables, and the feed covers only the segments still live.
    pub change_feed_retention: Option<ChangeFeedRetention>,
    /// Merge operators by keyspace name (see [`crate::MergeOperator`]); none by
    /// default, and a merge into a keyspace without one is refused. Set with
    /// [`Options::with_merge_operator`]. A store holding merge operands must be
    /// opened with the same operators again: a read of a key holding operands
    /// of a keyspace without one is [`crate::Error::NoMergeOperator`].
    pub merge_operators: crate::MergeOperators,
}

/// How long retired WAL segments are kept for the change feed
/// (`Options::change_feed_retention`). A segment goes once it is older than
/// `max_age` (judged from when it was retired: none of its changes is younger),
/// or, oldest first, while the kept segments take more than `max_bytes`
/// together. At least one limit must be set. A key rotation (and so
/// `rekey` and `secure_delete`) ends the retention of every kept segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeFeedRetention {
    /// Kept segments older than this go (none: no age limit).
    pub max_age: Option<Duration>,
    /// Kept segments beyond this many bytes in total go, oldest first (none: no byte limit).
    pub max_bytes: Option<u64>,
}

impl ChangeFeedRetention {
    /// A retention with an age limit only.
    pub fn max_age(age: Duration) -> Self {
        ChangeFeedRetention { max_age: Some(age), max_bytes: None }
    }

    /// A retention with a byte limit only.
    pub fn max_bytes(bytes: u64) -> Self {
        ChangeFeedRetention { max_age: None, max_bytes: Some(bytes) }
    }

    /// Returns this retention with an age limit of `age` as well.
    #[must_use]
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Returns this retention with a byte limit of `bytes` as well.
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vfs: Arc::new(StdVfs::new()),
            sync: SyncPolicy::EveryCommit,
            memtable_size_bytes: 64 << 20,
            max_immutable_memtables: 2,
            block_size_bytes: 4096,
            block_restart_interval: 16,
            block_cache_bytes: 64 << 20,
            mmap_reads: false,
            compression: Compression::Zstd(1),
            bloom_bits_per_key: 10,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 8,
            l0_stop_trigger: 12,
            level_base_bytes: 256 << 20,
            level_size_multiplier: 10,
            target_file_size_bytes: 64 << 20,
            num_levels: 7,
            background_compaction: true,
            max_subcompactions: std::thread::available_parallelism().map_or(1, |n| n.get().min(DEFAULT_MAX_SUBCOMPACTIONS)),
            sync_overlap_min_ops: 256,
            memtable_insert_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get().min(DEFAULT_MAX_SUBCOMPACTIONS)),
            ingest_min_bytes: 32 << 20,
            argon2: Argon2Params::default(),
            insecure_kdf_for_tests: false,
            secure_delete_passes: 0,
            metrics: false,
            reader_wait_ms: 5_000,
            max_key_bytes: 64 << 10,
            max_value_bytes: 64 << 20,
            max_batch_ops: 1 << 20,
            max_batch_bytes: 256 << 20,
            max_open_files: 1000,
            read_only: false,
            freshness_counter: None,
            event_listener: None,
            hooks: crate::hooks::HookRegistry::default(),
            change_feed_retention: None,
            merge_operators: crate::MergeOperators::new(),
        }
    }
}

/// Defines a `with_<field>` setter for each listed field.
macro_rules! setters {
    ($($setter:ident => $field:ident: $ty:ty;)*) => {
        impl Options {
            $(
                #[doc = concat!("Returns these options with [`Options::", stringify!($field), "`] set to `value`.")]
                #[must_use]
                pub fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    with_vfs => vfs: Arc<dyn Vfs>;
    with_sync => sync: SyncPolicy;
    with_memtable_size_bytes => memtable_size_bytes: usize;
    with_max_immutable_memtables => max_immutable_memtables: usize;
    with_block_size_bytes => block_size_bytes: usize;
    with_block_restart_interval => block_restart_interval: usize;
    with_block_cache_bytes => block_cache_bytes: usize;
    with_compression => compression: Compression;
    with_mmap_reads => mmap_reads: bool;
    with_bloom_bits_per_key => bloom_bits_per_key: u32;
    with_l0_compaction_trigger => l0_compaction_trigger: usize;
    with_l0_slowdown_trigger => l0_slowdown_trigger: usize;
    with_l0_stop_trigger => l0_stop_trigger: usize;
    with_level_base_bytes => level_base_bytes: u64;
    with_level_size_multiplier => level_size_multiplier: u64;
    with_target_file_size_bytes => target_file_size_bytes: u64;
    with_num_levels => num_levels: usize;
    with_background_compaction => background_compaction: bool;
    with_max_subcompactions => max_subcompactions: usize;
    with_sync_overlap_min_ops => sync_overlap_min_ops: usize;
    with_memtable_insert_threads => memtable_insert_threads: usize;
    with_ingest_min_bytes => ingest_min_bytes: usize;
    with_argon2 => argon2: Argon2Params;
    with_insecure_kdf_for_tests => insecure_kdf_for_tests: bool;
    with_secure_delete_passes => secure_delete_passes: u32;
    with_metrics => metrics: bool;
    with_reader_wait_ms => reader_wait_ms: u64;
    with_max_key_bytes => max_key_bytes: usize;
    with_max_value_bytes => max_value_bytes: usize;
    with_max_batch_ops => max_batch_ops: usize;
    with_max_batch_bytes => max_batch_bytes: usize;
    with_max_open_files => max_open_files: usize;
    with_read_only => read_only: bool;
    with_freshness_counter => freshness_counter: Option<Arc<dyn crate::FreshnessCounter>>;
    with_event_listener => event_listener: Option<Arc<dyn crate::EventListener>>;
    with_change_feed_retention => change_feed_retention: Option<ChangeFeedRetention>;
}

impl Options {
    /// Returns these options with `filter` as the compaction filter of the
    /// keyspace named `keyspace` ([`crate::DEFAULT_KEYSPACE`] for the default
    /// keyspace), replacing any set before. The filter sees entries as
    /// compactions rewrite them (not at flush or ingest) and keeps, removes or
    /// rewrites each one. It is offered only the newest version of a key
    /// holding a value, and only when no snapshot can read it; a removal
    /// writes a tombstone (dropped with every older version once a compaction
    /// reaches the bottom), so no older version reappears. An error from the
    /// filter keeps the entry as it is and is reported to the event listener
    /// (`docs/design.md`, "Compaction filters").
    ///
    /// ```
    /// use std::sync::Arc;
    /// use synapsed_storage::{CompactionFilter, FilterDecision, FilterEntry, HookError, Options, DEFAULT_KEYSPACE};
    ///
    /// /// Values start with their expiry time (8 bytes, big-endian, ms).
    /// struct Ttl { now_ms: u64 }
    ///
    /// impl CompactionFilter for Ttl {
    ///     fn filter(&self, entry: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
    ///         let expiry = entry.value.get(..8).ok_or_else(|| HookError::new("value without expiry"))?;
    ///         let expiry = u64::from_be_bytes(expiry.try_into().map_err(|_| HookError::new("short expiry"))?);
    ///         Ok(if expiry < self.now_ms { FilterDecision::Remove } else { FilterDecision::Keep })
    ///     }
    /// }
    ///
    /// let options = Options::default().with_compaction_filter(DEFAULT_KEYSPACE, Arc::new(Ttl { now_ms: 1_700_000_000_000 }));
    /// ```
    #[must_use]
    pub fn with_compaction_filter(mut self, keyspace: &str, filter: Arc<dyn crate::CompactionFilter>) -> Self {
        self.hooks.set_filter(keyspace, filter);
        self
    }

    /// Returns these options with `factory` making a collector for every table
    /// written for the keyspace named `keyspace` (by flushes, compactions and
    /// large batches written straight to a table). What a collector returns is
    /// sealed into its table's properties block and read back with
    /// [`crate::Db::table_properties`]; at most
    /// [`MAX_USER_PROPERTIES_BYTES`](crate::MAX_USER_PROPERTIES_BYTES) per
    /// table, else that table's write fails.
    #[must_use]
    pub fn with_table_properties_collector(
        mut self,
        keyspace: &str,
        factory: Arc<dyn crate::TablePropertiesCollectorFactory>,
    ) -> Self {
        self.hooks.set_collector(keyspace, factory);
        self
    }
}

impl Options {
    /// Returns these options with `operator` registered as the merge operator
    /// of the keyspace named `keyspace` ([`crate::DEFAULT_KEYSPACE`] for the
    /// default one), replacing an earlier one (see [`Options::merge_operators`]).
    #[must_use]
    pub fn with_merge_operator(mut self, keyspace: impl Into<String>, operator: Arc<dyn crate::MergeOperator>) -> Self {
        self.merge_operators.insert(keyspace.into(), operator);
        self
    }

    /// Options that make every structure tiny, so tests exercise flushes,
    /// compactions and many blocks with little data.
    pub fn tiny_for_tests() -> Self {
        Options {
            memtable_size_bytes: 4 << 10,
            block_size_bytes: 256,
            block_restart_interval: 4,
            block_cache_bytes: 16 << 10,
            l0_compaction_trigger: 2,
            l0_slowdown_trigger: 4,
            l0_stop_trigger: 6,
            level_base_bytes: 32 << 10,
            level_size_multiplier: 4,
            target_file_size_bytes: 8 << 10,
            argon2: Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 },
            insecure_kdf_for_tests: true,
            ..Options::default()
        }
    }
}

impl Options {
    /// How the lower layers write tables under these options.
    pub(crate) fn table_options(&self) -> index::TableOptions {
        index::TableOptions {
            block_size_bytes: self.block_size_bytes,
            restart_interval: self.block_restart_interval,
            compression: self.compression,
            bloom_bits_per_key: self.bloom_bits_per_key,
        }
    }

    /// The shape of the tree under these options.
    pub(crate) fn compaction_options(&self) -> compaction::CompactionOptions {
        compaction::CompactionOptions {
            l0_compaction_trigger: self.l0_compaction_trigger,
            level_base_bytes: self.level_base_bytes,
            level_size_multiplier: self.level_size_multiplier,
            target_file_size_bytes: self.target_file_size_bytes,
            num_levels: self.num_levels,
            table: self.table_options(),
        }
    }

    /// Rejects option values the engine cannot run with.
    /// Refuses Argon2id parameters below the production floor for a new
    /// passphrase slot, unless `insecure_kdf_for_tests` allows them.
    pub(crate) fn check_kdf_floor(&self) -> crate::Result<()> {
        let floor = Argon2Params::PRODUCTION_FLOOR;
        if self.insecure_kdf_for_tests || self.argon2.meets(&floor) {
            return Ok(());
        }
        Err(crate::Error::InvalidArgument(format!(
            "Argon2id cost m={} KiB t={} is below the floor for a store (m={} KiB t={}); \
             only tests may go lower, with insecure_kdf_for_tests",
            self.argon2.m_cost_kib, self.argon2.t_cost, floor.m_cost_kib, floor.t_cost
        )))
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |what: &str| Err(crate::Error::InvalidArgument(format!("option {what}")));
        if self.num_levels < 2 {
            return bad("num_levels must be at least 2");
        }
        if self.memtable_size_bytes == 0 {
            return bad("memtable_size_bytes must be positive");
        }
        if self.max_immutable_memtables == 0 {
            return bad("max_immutable_memtables must be at least 1");
        }
        if self.max_key_bytes == 0 || self.max_key_bytes > u32::MAX as usize {
            return bad("max_key_bytes must be in 1..=u32::MAX");
        }
        if self.max_value_bytes > u32::MAX as usize {
            return bad("max_value_bytes must fit in u32");
        }
        if self.max_key_bytes > crate::db::TABLE_MAX_KEY_BYTES {
            return bad("max_key_bytes must not exceed 1 MiB (the SSTable key limit)");
        }
        if self.max_value_bytes > crate::db::TABLE_MAX_VALUE_BYTES {
            return bad("max_value_bytes must not exceed 64 MiB (the SSTable value limit)");
        }
        if self.max_batch_ops == 0 || self.max_batch_ops > u32::MAX as usize {
            return bad("max_batch_ops must be in 1..=u32::MAX");
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > wal::MAX_RECORD_BYTES {
            return bad("max_batch_bytes must be in 1..=the WAL record limit (512 MiB)");
        }
        if !(MIN_OPEN_FILES..=MAX_OPEN_FILES).contains(&self.max_open_files) {
            return bad("max_open_files must be in 16..=1000000");
        }
        if !(1..=compaction::MAX_SUBCOMPACTIONS).contains(&self.max_subcompactions) {
            return bad("max_subcompactions must be in 1..=16 (1 = one thread per compaction)");
        }
        if !(1..=MAX_MEMTABLE_INSERT_THREADS).contains(&self.memtable_insert_threads) {
            return bad("memtable_insert_threads must be in 1..=16 (1 = the committing thread only)");
        }
        for (keyspace, operator) in self.merge_operators.iter() {
            if let Err(reason) = compaction::check_merge_operator_name(operator.name()) {
                return Err(crate::Error::InvalidArgument(format!("merge operator of keyspace {keyspace:?}: {reason}")));
            }
        }
        if self.l0_slowdown_trigger > self.l0_stop_trigger {
            return bad("l0_slowdown_trigger must not exceed l0_stop_trigger");
        }
        for name in self.hooks.names() {
            compaction::check_keyspace_name(name)
                .map_err(|e| crate::Error::InvalidArgument(format!("option compaction filter or properties collector: {e}")))?;
        }
        if self.change_feed_retention.is_some_and(|r| r.max_age.is_none() && r.max_bytes.is_none()) {
            return bad("change_feed_retention must set max_age or max_bytes (or both)");
        }
        Ok(())
    }
}
