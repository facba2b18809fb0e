//! Compaction filters and table user properties through the public API: a
//! TTL-like filter removes expired entries at `compact_range` while a snapshot
//! taken before still reads them, a rewriting filter, results kept by reopen,
//! filter errors reported and harmless; collected properties read back with
//! `Db::table_properties` after flush, compaction, ingest and reopen, and a
//! store written before user properties existed reads as having none.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{cred, options};
use synapsed_storage::{
    BackgroundError, CollectedEntry, CompactionFilter, Credential, Db, EventListener, FilterDecision, FilterEntry,
    HookError, Options, TableContext, TablePropertiesCollector, TablePropertiesCollectorFactory, TableReason,
    UserProperties, WriteBatch, DEFAULT_KEYSPACE,
};

/// Values are `"<expiry u64 decimal>:<body>"`; expired when expiry < now.
struct Ttl {
    now: AtomicU64,
}

impl CompactionFilter for Ttl {
    fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
        let text = std::str::from_utf8(e.value).map_err(|_| HookError::new("not text"))?;
        let (at, _) = text.split_once(':').ok_or_else(|| HookError::new("no expiry"))?;
        let at: u64 = at.parse().map_err(|_| HookError::new("expiry is not a number"))?;
        Ok(if at < self.now.load(Ordering::Relaxed) { FilterDecision::Remove } else { FilterDecision::Keep })
    }
}

fn value(expiry: u64, body: &str) -> Vec<u8> {
    format!("{expiry}:{body}").into_bytes()
}

fn with_ttl(now: u64) -> (Arc<Ttl>, Options) {
    let ttl = Arc::new(Ttl { now: AtomicU64::new(now) });
    let opts = options().with_compaction_filter(DEFAULT_KEYSPACE, ttl.clone());
    (ttl, opts)
}

#[test]
fn a_ttl_filter_drops_expired_entries_at_compact_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (ttl, opts) = with_ttl(0);
    let db = Db::create(&dir, &cred(), opts.clone()).unwrap();
    for i in 0..200u64 {
        db.put(format!("k{i:03}").as_bytes(), &value(i, "payload")).unwrap();
    }
    // An older version that must not come back once the newer one expires.
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    db.put(b"k007", &value(7, "newer")).unwrap();
    db.flush().unwrap();
    ttl.now.store(100, Ordering::Relaxed);
    db.compact_range(None, None).unwrap();
    for i in 0..200u64 {
        let got = db.get(format!("k{i:03}").as_bytes()).unwrap();
        if i < 100 {
            assert_eq!(got, None, "k{i:03} expired");
        } else {
            assert_eq!(got, Some(value(i, "payload")));
        }
    }
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 100);
    db.close().unwrap();
    // After reopen (with or without the filter) the expired keys stay gone.
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.get(b"k007").unwrap(), None);
    assert_eq!(db.get(b"k150").unwrap(), Some(value(150, "payload")));
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 100);
    let entries: u64 = db.table_properties().unwrap().iter().map(|t| t.entries).sum();
    assert_eq!(entries, 100, "the bottommost compaction dropped the expired entries entirely");
    db.close().unwrap();
}

#[test]
fn a_snapshot_taken_before_still_reads_expired_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let (ttl, opts) = with_ttl(0);
    let db = Db::create(tmp.path(), &cred(), opts).unwrap();
    db.put(b"a", &value(1, "old")).unwrap();
    db.put(b"b", &value(1, "old")).unwrap();
    let snap = db.snapshot();
    db.put(b"c", &value(1, "after the snapshot")).unwrap();
    db.flush().unwrap();
    ttl.now.store(10, Ordering::Relaxed);
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get_at(b"a", &snap).unwrap(), Some(value(1, "old")));
    assert_eq!(db.get_at(b"b", &snap).unwrap(), Some(value(1, "old")));
    assert_eq!(db.get(b"a").unwrap(), Some(value(1, "old")), "readable by the snapshot: not offered");
    assert_eq!(db.get(b"c").unwrap(), None, "above the snapshot: removed");
    drop(snap);
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(b"a").unwrap(), None);
    assert_eq!(db.get(b"b").unwrap(), None);
    db.close().unwrap();
}

/// Appends "!" to every value and counts how often it is asked.
struct Shout {
    calls: AtomicU64,
}

impl CompactionFilter for Shout {
    fn filter(&self, e: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if e.value.starts_with(b"?") {
            return Err(HookError::new("will not shout a question"));
        }
        Ok(FilterDecision::ChangeValue([e.value, b"!"].concat()))
    }
}

#[derive(Debug, Default)]
struct Errors(Mutex<Vec<BackgroundError>>);

impl EventListener for Errors {
    fn on_background_error(&self, e: &BackgroundError) {
        self.0.lock().unwrap().push(e.clone());
    }
}

#[test]
fn a_rewriting_filter_changes_values_and_its_errors_keep_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let shout = Arc::new(Shout { calls: AtomicU64::new(0) });
    let errors = Arc::new(Errors::default());
    let opts = options().with_compaction_filter(DEFAULT_KEYSPACE, shout.clone()).with_event_listener(Some(errors.clone()));
    let db = Db::create(&dir, &cred(), opts).unwrap();
    db.put(b"hello", b"world").unwrap();
    db.put(b"why", b"?not").unwrap();
    db.flush().unwrap();
    assert_eq!(shout.calls.load(Ordering::Relaxed), 0, "a flush runs no filter");
    assert_eq!(db.get(b"hello").unwrap(), Some(b"world".to_vec()));
    db.compact_range(None, None).unwrap();
    assert_eq!(db.get(b"hello").unwrap(), Some(b"world!".to_vec()));
    assert_eq!(db.get(b"why").unwrap(), Some(b"?not".to_vec()), "kept as it was");
    let seen = errors.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!seen[0].writes_stopped);
    assert!(seen[0].message.contains("will not shout a question"));
    db.put(b"still", b"writable").unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.get(b"hello").unwrap(), Some(b"world!".to_vec()));
    db.close().unwrap();
}

/// Records the min and max of the 8-byte big-endian timestamp that starts
/// each key, as a time-series store would.
struct TimeRange;

struct TimeRangeCollector {
    reason: TableReason,
    min: Option<u64>,
    max: Option<u64>,
}

impl TablePropertiesCollectorFactory for TimeRange {
    fn create(&self, context: &TableContext) -> Box<dyn TablePropertiesCollector> {
        Box::new(TimeRangeCollector { reason: context.reason, min: None, max: None })
    }
}

impl TablePropertiesCollector for TimeRangeCollector {
    fn add(&mut self, entry: &CollectedEntry<'_>) {
        if let Some(ts) = entry.key.get(..8).map(|b| u64::from_be_bytes(b.try_into().unwrap())) {
            self.min = Some(self.min.map_or(ts, |m| m.min(ts)));
            self.max = Some(self.max.map_or(ts, |m| m.max(ts)));
        }
    }

    fn finish(&mut self) -> Result<UserProperties, HookError> {
        let mut p = UserProperties::new();
        if let (Some(min), Some(max)) = (self.min, self.max) {
            p.insert("ts.min".into(), min.to_be_bytes().to_vec());
            p.insert("ts.max".into(), max.to_be_bytes().to_vec());
        }
        let reason = match self.reason {
            TableReason::Flush => "flush",
            TableReason::Compaction => "compaction",
            TableReason::Ingest => "ingest",
            _ => "other",
        };
        p.insert("reason".into(), reason.into());
        Ok(p)
    }
}

fn ts_key(ts: u64) -> Vec<u8> {
    [ts.to_be_bytes().as_slice(), b"/series"].concat()
}

fn be(v: &[u8]) -> u64 {
    u64::from_be_bytes(v.try_into().unwrap())
}

/// Every table's time range covers exactly its keys, with the reason it was written.
fn check_ranges(db: &Db) -> Vec<String> {
    let tables = db.table_properties().unwrap();
    assert!(!tables.is_empty());
    tables
        .iter()
        .map(|t| {
            let p = &t.user_properties;
            assert_eq!(be(&p["ts.min"]), be(&t.smallest_key[..8]), "table {}", t.file_number);
            assert_eq!(be(&p["ts.max"]), be(&t.largest_key[..8]), "table {}", t.file_number);
            assert!(t.min_seqno <= t.max_seqno && t.entries > 0);
            String::from_utf8(p["reason"].clone()).unwrap()
        })
        .collect()
}

fn collecting() -> Options {
    options().with_table_properties_collector(DEFAULT_KEYSPACE, Arc::new(TimeRange))
}

#[test]
fn properties_survive_flush_compaction_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), collecting()).unwrap();
    for round in 0..3u64 {
        for i in 0..100u64 {
            db.put(&ts_key(round * 1000 + i), b"0.5").unwrap();
        }
        db.flush().unwrap();
    }
    // Tiny memtables: flushes, and the compactions a full level 0 forces inline.
    let reasons = check_ranges(&db);
    assert!(reasons.iter().any(|r| r == "flush"), "{reasons:?}");
    assert!(reasons.iter().all(|r| r == "flush" || r == "compaction"), "{reasons:?}");
    db.compact_range(None, None).unwrap();
    let reasons = check_ranges(&db);
    assert!(reasons.iter().all(|r| r == "compaction"), "{reasons:?}");
    let after = db.table_properties().unwrap();
    assert!(after.iter().all(|t| t.level > 0));
    // A store can skip tables: only one table holds timestamps in [1000, 1100).
    let hits: Vec<_> = after.iter().filter(|t| be(&t.user_properties["ts.max"]) >= 1000 && be(&t.user_properties["ts.min"]) < 1100).collect();
    assert!(!hits.is_empty() && hits.len() < after.len(), "{} of {}", hits.len(), after.len());
    db.close().unwrap();
    // Reopened without the collector: the properties are in the files.
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.table_properties().unwrap(), after);
    db.close().unwrap();
    let ro = Db::open(&dir, &cred(), options().with_read_only(true)).unwrap();
    assert_eq!(ro.table_properties().unwrap(), after);
}

#[test]
fn an_ingested_batch_gets_its_properties() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), collecting().with_ingest_min_bytes(1 << 10)).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..200u64 {
        batch.put(ts_key(5000 + i), b"1.25");
    }
    db.write(batch).unwrap();
    assert_eq!(check_ranges(&db), vec!["ingest".to_string()]);
    db.close().unwrap();
}

#[test]
fn properties_over_the_limit_fail_the_flush_clearly() {
    struct Huge;
    struct HugeCollector;
    impl TablePropertiesCollectorFactory for Huge {
        fn create(&self, _: &TableContext) -> Box<dyn TablePropertiesCollector> {
            Box::new(HugeCollector)
        }
    }
    impl TablePropertiesCollector for HugeCollector {
        fn add(&mut self, _: &CollectedEntry<'_>) {}
        fn finish(&mut self) -> Result<UserProperties, HookError> {
            Ok(UserProperties::from([("big".to_string(), vec![0; synapsed_storage::MAX_USER_PROPERTIES_BYTES])]))
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &cred(), options().with_table_properties_collector(DEFAULT_KEYSPACE, Arc::new(Huge))).unwrap();
    db.put(b"k", b"v").unwrap();
    let err = db.flush().unwrap_err();
    assert!(err.to_string().contains("more than the limit"), "{err}");
}

#[test]
fn hooks_under_an_invalid_keyspace_name_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_table_properties_collector("", Arc::new(TimeRange));
    assert!(Db::create(tmp.path(), &cred(), opts).is_err());
}

/// A store written by the code from before user properties existed reads as
/// having tables without any, and keeps them after compaction when no
/// collector is set; with one, the rewritten tables get theirs.
#[test]
fn tables_written_before_user_properties_read_as_having_none() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store_before_keyspaces/store");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let cred = Credential::passphrase("before keyspaces");
    let db = Db::open(&dir, &cred, options()).unwrap();
    let tables = db.table_properties().unwrap();
    assert!(!tables.is_empty());
    assert!(tables.iter().all(|t| t.user_properties.is_empty()));
    db.close().unwrap();
    let db = Db::open(&dir, &cred, collecting()).unwrap();
    db.compact_range(None, None).unwrap();
    let tables = db.table_properties().unwrap();
    assert!(tables.iter().all(|t| t.user_properties.get("reason").map(Vec::as_slice) == Some(&b"compaction"[..])));
    assert_eq!(db.get(b"user:1").unwrap(), Some(b"alice".to_vec()));
    db.close().unwrap();
}

/// Removes every value, and takes a snapshot of the store the first time it is
/// asked: a snapshot taken while the compaction runs, which can read what the
/// filter removes.
#[derive(Default)]
struct SnapshotDuringCompaction {
    db: Mutex<Option<Arc<Db>>>,
    taken: Mutex<Vec<synapsed_storage::Snapshot>>,
    calls: AtomicU64,
}

impl CompactionFilter for SnapshotDuringCompaction {
    fn filter(&self, _: &FilterEntry<'_>) -> Result<FilterDecision, HookError> {
        if self.calls.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Some(db) = self.db.lock().unwrap().as_ref() {
                self.taken.lock().unwrap().push(db.snapshot());
            }
        }
        Ok(FilterDecision::Remove)
    }
}

/// The compaction listed no snapshot when it started; one taken while it ran
/// still reads every value afterwards (its output is discarded and the
/// compaction runs again with the snapshot in its list).
#[test]
fn a_snapshot_taken_during_a_filtered_compaction_never_sees_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let filter = Arc::new(SnapshotDuringCompaction::default());
    let db = Arc::new(Db::create(tmp.path(), &cred(), options().with_compaction_filter(DEFAULT_KEYSPACE, filter.clone())).unwrap());
    *filter.db.lock().unwrap() = Some(Arc::clone(&db));
    for i in 0..50u32 {
        db.put(format!("k{i:02}").as_bytes(), b"v").unwrap();
    }
    db.compact_range(None, None).unwrap();
    let snap = filter.taken.lock().unwrap().pop().expect("the filter took a snapshot");
    for i in 0..50u32 {
        assert_eq!(db.get_at(format!("k{i:02}").as_bytes(), &snap).unwrap(), Some(b"v".to_vec()), "k{i:02} at the snapshot");
    }
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 50, "nothing was removed while the snapshot lived");
    drop(snap);
    db.compact_range(None, None).unwrap();
    assert_eq!(db.scan_prefix(b"k").unwrap().count(), 0);
    filter.db.lock().unwrap().take();
    Arc::try_unwrap(db).ok().unwrap().close().unwrap();
}

/// A keyspace's collector and compaction filter, registered under its name,
/// run on that keyspace's tables only; `table_properties_in` lists them.
#[test]
fn a_keyspace_s_hooks_run_on_its_own_tables() {
    use synapsed_storage::KeyspaceOptions;
    let tmp = tempfile::tempdir().unwrap();
    let opts = options().with_table_properties_collector("series", Arc::new(TimeRange));
    let db = Db::create(tmp.path(), &cred(), opts).unwrap();
    let series = db.create_keyspace("series", KeyspaceOptions::default()).unwrap();
    for i in 0..50u64 {
        db.put_in(&series, &ts_key(i), b"1.5").unwrap();
        db.put(&ts_key(i), b"x").unwrap();
    }
    db.flush().unwrap();
    // Tiny memtables: each keyspace's data is in a few tables of its own.
    let in_series = db.table_properties_in(&series).unwrap();
    assert!(!in_series.is_empty());
    for t in &in_series {
        assert_eq!(be(&t.user_properties["ts.min"]), be(&t.smallest_key[..8]), "table {}", t.file_number);
        assert_eq!(be(&t.user_properties["ts.max"]), be(&t.largest_key[..8]), "table {}", t.file_number);
    }
    let min = in_series.iter().map(|t| be(&t.user_properties["ts.min"])).min();
    let max = in_series.iter().map(|t| be(&t.user_properties["ts.max"])).max();
    assert_eq!((min, max), (Some(0), Some(49)));
    let in_default = db.table_properties().unwrap();
    assert!(!in_default.is_empty());
    assert!(in_default.iter().all(|t| t.user_properties.is_empty()), "the default keyspace has no collector");
    let series_tables: Vec<u64> = in_series.iter().map(|t| t.file_number).collect();
    assert!(in_default.iter().all(|t| !series_tables.contains(&t.file_number)));
    db.drop_keyspace("series").unwrap();
    assert!(matches!(db.table_properties_in(&series), Err(synapsed_storage::Error::NoSuchKeyspace(_))));
}
