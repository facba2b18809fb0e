//! Compaction filters and table-properties collectors through the compaction
//! jobs: a TTL-like filter removes expired values without letting an older
//! version reappear (off the bottom and at it), never touches what a snapshot
//! can read, rewrites values, keeps entries it fails on; a collector's
//! properties land in every table of a flush and of a compaction cut into parts.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use compaction::{
    flush_memtable, pick_range_compaction, run_compaction_with, CompactionContext, CompactionFilter, CompactionOptions,
    FilterDecision, FilterEntry, FilterReport, TableHooks, VersionEdit, VersionSet,
};
use crypto::vfs::{SimVfs, Vfs};
use crypto::KeyManager;
use index::{
    CollectedEntry, Compression, HookError, Memtable, SeqNo, TableContext, TableOptions, TablePropertiesCollector,
    TablePropertiesCollectorFactory, TableReason, UserProperties, ValueKind, MAX_SEQNO,
};

const LEVELS: usize = 4;

struct Fixture {
    vs: VersionSet,
    ctx: CompactionContext,
    seqno: SeqNo,
}

fn fixture() -> Fixture {
    let vfs: Arc<dyn Vfs> = SimVfs::new();
    let dir = PathBuf::from("/store");
    vfs.create_dir_all(&dir).unwrap();
    let keys = KeyManager::ephemeral();
    let vs = VersionSet::create(&vfs, &dir, &keys, LEVELS).unwrap();
    let tables = index::TableCache::new(Arc::clone(&vfs), dir.clone(), Arc::clone(&keys), None);
    let options = CompactionOptions {
        l0_compaction_trigger: 3,
        level_base_bytes: 256 << 10,
        level_size_multiplier: 4,
        target_file_size_bytes: 2 << 10,
        num_levels: LEVELS,
        table: TableOptions { block_size_bytes: 512, restart_interval: 4, compression: Compression::None, bloom_bits_per_key: 10 },
    };
    let ctx = CompactionContext { vfs, dir, keys, tables, options, keyspace_tables: Default::default() };
    Fixture { vs, ctx, seqno: 0 }
}

/// A value that expires at `at` (a logical clock the filter compares with).
fn expiring(at: u64, body: &str) -> Vec<u8> {
    format!("exp={at:08};{body}").into_bytes()
}

/// Removes values whose expiry is below `now`; counts its calls.
struct Ttl {
    now: u64,
    calls: AtomicU64,
}

impl CompactionFilter for Ttl {
    fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let text = std::str::from_utf8(e.value).map_err(|_| HookError::new("value is not text"))?;
        let Some(at) = text.strip_prefix("exp=").and_then(|t| t.get(..8)) else { return Ok(FilterDecision::Keep) };
        let at: u64 = at.parse().map_err(|_| HookError::new(format!("bad expiry {at:?}")))?;
        Ok(if at < self.now { FilterDecision::Remove } else { FilterDecision::Keep })
    }
}

fn ttl(now: u64) -> TableHooks {
    TableHooks { filter: Some(Arc::new(Ttl { now, calls: AtomicU64::new(0) })), ..TableHooks::default() }
}

impl Fixture {
    /// Writes `puts` (key, value; an empty value is a tombstone) to a memtable and flushes it to L0.
    fn flush(&mut self, hooks: &TableHooks, puts: &[(&str, Vec<u8>)]) {
        let mem = Arc::new(Memtable::new(self.vs.new_file_number()));
        for (k, v) in puts {
            self.seqno += 1;
            let kind = if v.is_empty() { ValueKind::Delete } else { ValueKind::Put };
            mem.insert(k.as_bytes(), self.seqno, kind, v);
        }
        let meta = flush_memtable(&self.ctx, hooks, &mem, self.vs.new_file_number()).unwrap().unwrap();
        self.vs.log_and_apply(VersionEdit { added: vec![(0, meta)], last_seqno: Some(self.seqno), ..Default::default() }).unwrap();
    }

    /// Compacts everything of `level` into `level + 1` under `snapshots`.
    fn compact(&self, level: usize, snapshots: &[SeqNo], hooks: &TableHooks, parts: usize) -> FilterReport {
        let mut c = pick_range_compaction(&self.vs.current(), level, None, None).unwrap();
        c.max_subcompactions = parts;
        let out = run_compaction_with(&self.ctx, &c, snapshots, hooks, &self.vs.current(), &|| self.vs.new_file_number()).unwrap();
        self.vs.log_and_apply(out.edit).unwrap();
        out.filter
    }

    fn get(&self, key: &str, snapshot: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
        self.vs.current().get(&self.ctx.tables, key.as_bytes(), snapshot).unwrap()
    }

    /// Every entry of the current version's tables for `key`, any seqno.
    fn versions_of(&self, key: &str) -> Vec<(SeqNo, ValueKind)> {
        let v = self.vs.current();
        let mut out = Vec::new();
        for level in 0..v.num_levels() {
            for f in v.level_files(level) {
                let t = self.ctx.tables.get(f.number).unwrap();
                let mut it = t.iter(index::KeyRange::all(), index::Direction::Forward);
                while let Some(e) = index::InternalIterator::next_entry(it.as_mut()).unwrap() {
                    if e.key.user_key == key.as_bytes() {
                        out.push((e.key.seqno, e.key.kind));
                    }
                }
            }
        }
        out
    }
}

/// The expired value becomes a tombstone off the bottom (the older version in
/// the level below stays hidden), then the bottommost compaction drops it and
/// everything older.
#[test]
fn expired_values_are_removed_and_older_versions_never_reappear() {
    let mut f = fixture();
    let none = TableHooks::default();
    // a@1 never expires; pushed down to L2.
    f.flush(&none, &[("a", b"forever".to_vec()), ("b", expiring(50, "b1"))]);
    f.compact(0, &[], &none, 1);
    f.compact(1, &[], &none, 1);
    assert_eq!(f.vs.current().level_files(2).len(), 1);
    // a@3 expires at 10, c@4 at 90.
    f.flush(&none, &[("a", expiring(10, "a3")), ("c", expiring(90, "c4"))]);
    let hooks = ttl(20);
    let report = f.compact(0, &[], &hooks, 1);
    assert_eq!((report.offered, report.removed, report.changed, report.errors), (2, 1, 0, 0));
    assert_eq!(report.min_changed_seqno, Some(3));
    assert_eq!(f.get("a", MAX_SEQNO), Some((3, ValueKind::Delete, Vec::new())), "a tombstone, not a@1 again");
    assert_eq!(f.get("c", MAX_SEQNO).unwrap().2, expiring(90, "c4"));
    // Bottommost: the tombstone and a@1 go; b (expired at 50 < 60) goes too.
    let report = f.compact(1, &[], &ttl(60), 1);
    assert_eq!(report.removed, 1, "b; a's tombstone is not a value, c is not expired");
    assert!(f.versions_of("a").is_empty(), "{:?}", f.versions_of("a"));
    assert!(f.versions_of("b").is_empty());
    assert_eq!(f.get("a", MAX_SEQNO), None);
    assert_eq!(f.get("c", MAX_SEQNO).unwrap().2, expiring(90, "c4"));
}

/// Without the filter the same compaction keeps the expired value: the test
/// above depends on the hook, not on the drop rules.
#[test]
fn without_a_filter_expired_values_stay() {
    let mut f = fixture();
    let none = TableHooks::default();
    f.flush(&none, &[("a", expiring(10, "a1"))]);
    let report = f.compact(0, &[], &none, 1);
    assert_eq!(report, FilterReport::default());
    assert_eq!(f.get("a", MAX_SEQNO).unwrap().2, expiring(10, "a1"));
}

#[test]
fn entries_a_snapshot_can_read_are_never_offered() {
    let mut f = fixture();
    let none = TableHooks::default();
    f.flush(&none, &[("a", expiring(10, "a1")), ("b", expiring(10, "b2"))]);
    f.flush(&none, &[("b", expiring(10, "b3"))]);
    // A snapshot at 2 reads a@1 and b@2; b@3 is above it.
    let hooks = ttl(20);
    let report = f.compact(0, &[2], &hooks, 1);
    assert_eq!((report.offered, report.removed), (1, 1), "only b@3");
    assert_eq!(f.get("a", 2).unwrap().2, expiring(10, "a1"));
    assert_eq!(f.get("b", 2).unwrap().2, expiring(10, "b2"));
    assert_eq!(f.get("a", MAX_SEQNO).unwrap().2, expiring(10, "a1"));
    assert_eq!(f.get("b", MAX_SEQNO), Some((3, ValueKind::Delete, Vec::new())), "b@2 stays hidden from the latest readers");
    // Once the snapshot is gone, a later compaction removes the rest.
    let report = f.compact(1, &[], &hooks, 1);
    assert_eq!(report.removed, 1);
    assert_eq!(f.get("a", MAX_SEQNO), None);
    assert_eq!(f.get("b", MAX_SEQNO), None);
}

/// Uppercases every value and fails on values starting with "!".
struct Upper;

impl CompactionFilter for Upper {
    fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
        if e.value.starts_with(b"!") {
            return Err(HookError::new("refused"));
        }
        Ok(FilterDecision::ChangeValue(e.value.to_ascii_uppercase()))
    }
}

#[test]
fn a_rewriting_filter_changes_values_and_keeps_entries_it_fails_on() {
    let mut f = fixture();
    let none = TableHooks::default();
    let keys: Vec<String> = (0..200).map(|i| format!("key{i:04}")).collect();
    let puts: Vec<(&str, Vec<u8>)> = keys.iter().map(|k| (k.as_str(), format!("value of {k}").into_bytes())).collect();
    f.flush(&none, &puts);
    f.flush(&none, &[("key0007", b"!keep me".to_vec())]);
    let hooks = TableHooks { filter: Some(Arc::new(Upper)), ..TableHooks::default() };
    // Cut into parts: every part applies the filter and the report adds them up.
    let report = f.compact(0, &[], &hooks, 4);
    assert_eq!((report.offered, report.changed, report.errors), (200, 199, 1));
    assert_eq!(report.first_error.as_deref(), Some("refused"));
    assert!(f.vs.current().level_files(1).len() > 1, "the compaction was cut into parts");
    assert_eq!(f.get("key0003", MAX_SEQNO), Some((4, ValueKind::Put, b"VALUE OF KEY0003".to_vec())));
    assert_eq!(f.get("key0007", MAX_SEQNO).unwrap().2, b"!keep me");
}

/// Counts entries and records the table's reason and number.
struct Counter;

struct CountEntries {
    context: TableContext,
    entries: u64,
    tombstones: u64,
}

impl TablePropertiesCollectorFactory for Counter {
    fn create(&self, context: &TableContext) -> Box<dyn TablePropertiesCollector> {
        Box::new(CountEntries { context: *context, entries: 0, tombstones: 0 })
    }
}

impl TablePropertiesCollector for CountEntries {
    fn add(&mut self, entry: &CollectedEntry<'_>) {
        self.entries += 1;
        self.tombstones += u64::from(entry.kind.is_tombstone());
    }

    fn finish(&mut self) -> Result<UserProperties, HookError> {
        let reason = match self.context.reason {
            TableReason::Flush => "flush",
            TableReason::Compaction => "compaction",
            _ => "other",
        };
        Ok(UserProperties::from([
            ("entries".to_string(), self.entries.to_le_bytes().to_vec()),
            ("tombstones".to_string(), self.tombstones.to_le_bytes().to_vec()),
            ("reason".to_string(), reason.as_bytes().to_vec()),
            ("number".to_string(), self.context.file_number.to_le_bytes().to_vec()),
        ]))
    }
}

#[test]
fn every_table_of_a_flush_and_a_compaction_gets_its_properties() {
    let mut f = fixture();
    let hooks = TableHooks { properties: Some(Arc::new(Counter)), ..TableHooks::default() };
    let keys: Vec<String> = (0..300).map(|i| format!("key{i:04}")).collect();
    let puts: Vec<(&str, Vec<u8>)> = keys.iter().map(|k| (k.as_str(), format!("value of {k}").into_bytes())).collect();
    f.flush(&hooks, &puts);
    f.flush(&hooks, &[("key0001", Vec::new())]);
    let check = |level: usize, reason: &[u8]| {
        let mut total = 0;
        for meta in f.vs.current().level_files(level) {
            let t = f.ctx.tables.get(meta.number).unwrap();
            let p = t.user_properties();
            let entries = u64::from_le_bytes(p["entries"].as_slice().try_into().unwrap());
            assert_eq!(entries, meta.entries, "table {}", meta.number);
            assert_eq!(p["reason"], reason);
            assert_eq!(p["number"], meta.number.to_le_bytes());
            total += entries;
        }
        total
    };
    assert_eq!(check(0, b"flush"), 301);
    f.compact(0, &[], &hooks, 4);
    assert!(f.vs.current().level_files(1).len() > 1);
    // Bottommost: key0001's tombstone and value are gone.
    assert_eq!(check(1, b"compaction"), 299);
}
