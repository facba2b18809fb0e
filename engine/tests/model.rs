//! Model test: seeded random operations against the store and against a
//! `BTreeMap`, which must agree after every read. Covers puts, deletes, range
//! deletes (alone and inside batches), merges (an appending merge operator:
//! the model appends the operand), batches
//! (1..50 ops, plus one of 1,000 and one of 100,000), snapshots (each with its
//! own frozen model), forward and reverse ranges with random bounds, prefix
//! scans, flush, compact_range, close/reopen and optimistic transactions with
//! and without conflicts, under three option sets (manual compactions on one
//! thread under "tiny", cut into up to 4 parts under the others), and "tiny"
//! once more on the real file system with tables read through memory mappings.
//!
//! Keyspaces: up to three besides the default one are created and dropped at
//! random (each with its own model), batches span them and the default one
//! (puts, deletes, range deletes, and merges into the keyspaces that have the
//! appending operator, `ks1` to `ks48`), reads in them (`get_in`, `range_in`, also at snapshots) are checked, and a
//! write to a dropped keyspace must fail with `NoSuchKeyspace` and change
//! nothing.
//!
//! A failure names the seed and the op index; `SYNAPSED_MODEL_SEED=<n>` replays
//! that one seed under every option set.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::{
    Argon2Params, Credential, Db, Error, Keyspace, KeyspaceOptions, MergeError, MergeOperator, Options, SimVfs, Snapshot, StdVfs,
    SyncPolicy, WriteBatch, DEFAULT_KEYSPACE,
};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A snapshot, the default keyspace's model then and the other keyspaces' then.
type SnapshotModel = (Snapshot, Model, Vec<(Keyspace, Model)>);

const KEY_SPACE: u32 = 500;

/// Appends operands to the value: associative (partial merge concatenates), and
/// any bytes are a valid value or operand, so the model is one line per merge.
struct Append;

impl MergeOperator for Append {
    fn name(&self) -> &str {
        "model.append"
    }

    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Result<Vec<u8>, MergeError> {
        let mut v = base.unwrap_or_default().to_vec();
        operands.iter().for_each(|o| v.extend_from_slice(o));
        Ok(v)
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Result<Option<Vec<u8>>, MergeError> {
        Ok(Some(operands.concat()))
    }
}

/// The model's value of a key after a merge of `operand`.
fn model_merge(model: &mut Model, key: Vec<u8>, operand: &[u8]) {
    model.entry(key).or_default().extend_from_slice(operand);
}
const MAX_SNAPSHOTS: usize = 8;

struct Harness {
    name: &'static str,
    seed: u64,
    op: usize,
    rng: StdRng,
    dir: PathBuf,
    cred: Credential,
    options: Options,
    db: Option<Db>,
    model: Model,
    /// Live keyspaces other than the default one, each with its model.
    keyspaces: Vec<(Keyspace, Model)>,
    /// Keyspaces created so far (names them).
    keyspaces_created: u32,
    /// Each snapshot with the default keyspace's model and the other keyspaces' at that time.
    snapshots: Vec<SnapshotModel>,
    ops_done: u64,
    /// Flushes and compactions of every store instance so far.
    flushes: u64,
    compactions: u64,
}

fn key(i: u32) -> Vec<u8> {
    format!("k{i:04}").into_bytes()
}

fn in_bounds(k: &[u8], start: &Bound<Vec<u8>>, end: &Bound<Vec<u8>>) -> bool {
    let after = match start {
        Bound::Included(s) => k >= s.as_slice(),
        Bound::Excluded(s) => k > s.as_slice(),
        Bound::Unbounded => true,
    };
    let before = match end {
        Bound::Included(e) => k <= e.as_slice(),
        Bound::Excluded(e) => k < e.as_slice(),
        Bound::Unbounded => true,
    };
    after && before
}

impl Harness {
    fn ctx(&self) -> String {
        format!("[{}] seed {} op {}", self.name, self.seed, self.op)
    }

    fn ok<T>(&self, r: Result<T, Error>, what: &str) -> T {
        r.unwrap_or_else(|e| panic!("{}: {what} failed: {e}", self.ctx()))
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn random_key(&mut self) -> Vec<u8> {
        let i = self.rng.gen_range(0..KEY_SPACE);
        key(i)
    }

    fn random_value(&mut self) -> Vec<u8> {
        let len = if self.rng.gen_ratio(1, 50) { self.rng.gen_range(500..3000) } else { self.rng.gen_range(0..60) };
        let tag = format!("s{}o{}:", self.seed, self.op);
        let mut v = tag.into_bytes();
        v.extend((0..len).map(|_| self.rng.gen_range(b'a'..=b'z')));
        v
    }

    fn random_bound(&mut self) -> Bound<Vec<u8>> {
        let mut k = self.random_key();
        if self.rng.gen_bool(0.2) {
            k.push(b'x'); // a key that never exists
        }
        match self.rng.gen_range(0..5) {
            0 => Bound::Unbounded,
            1 | 2 => Bound::Included(k),
            _ => Bound::Excluded(k),
        }
    }

    fn put(&mut self) {
        let (k, v) = (self.random_key(), self.random_value());
        self.ok(self.db().put(&k, &v), "put");
        self.model.insert(k, v);
        self.ops_done += 1;
    }

    fn delete(&mut self) {
        let k = self.random_key();
        self.ok(self.db().delete(&k), "delete");
        self.model.remove(&k);
        self.ops_done += 1;
    }

    fn merge(&mut self) {
        let (k, v) = (self.random_key(), self.random_value());
        self.ok(self.db().merge(&k, &v), "merge");
        model_merge(&mut self.model, k, &v);
        self.ops_done += 1;
    }

    fn batch(&mut self, n: usize) {
        let mut batch = WriteBatch::new();
        let mut applied = self.model.clone();
        for _ in 0..n {
            let k = self.random_key();
            if self.rng.gen_ratio(1, 40) {
                let (start, end) = self.random_span();
                batch.delete_range(&start, &end);
                applied.retain(|k, _| *k < start || *k >= end);
            } else if self.rng.gen_bool(0.65) {
                let v = self.random_value();
                batch.put(&k, &v);
                applied.insert(k, v);
            } else if self.rng.gen_bool(0.4) {
                let v = self.random_value();
                batch.merge(&k, &v);
                model_merge(&mut applied, k, &v);
            } else {
                batch.delete(&k);
                applied.remove(&k);
            }
        }
        self.ok(self.db().write(batch), "write batch");
        self.model = applied;
        self.ops_done += n as u64;
    }

    /// A range of up to 30 keys, its end sometimes a key that never exists.
    fn random_span(&mut self) -> (Vec<u8>, Vec<u8>) {
        let first = self.rng.gen_range(0..KEY_SPACE);
        let start = key(first);
        let mut end = key(first + self.rng.gen_range(1..=30));
        if self.rng.gen_bool(0.3) {
            end.push(b'x');
        }
        (start, end)
    }

    fn delete_range(&mut self) {
        let (start, end) = self.random_span();
        self.ok(self.db().delete_range(&start, &end), "delete_range");
        self.model.retain(|k, _| *k < start || *k >= end);
        self.ops_done += 1;
    }

    fn check_get(&mut self) {
        let k = self.random_key();
        let got = self.ok(self.db().get(&k), "get");
        assert_eq!(got.as_ref(), self.model.get(&k), "{}: get {:?}", self.ctx(), String::from_utf8_lossy(&k));
        self.ops_done += 1;
    }

    fn check_range(&mut self, snapshot: Option<usize>) {
        let (start, end) = (self.random_bound(), self.random_bound());
        let reverse = self.rng.gen_bool(0.5);
        let model = match snapshot {
            Some(i) => &self.snapshots[i].1,
            None => &self.model,
        };
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> =
            model.iter().filter(|(k, _)| in_bounds(k, &start, &end)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if reverse {
            expected.reverse();
        }
        let snap = snapshot.map(|i| &self.snapshots[i].0);
        let iter = self.ok(self.db().range(as_ref(&start), as_ref(&end), reverse, snap), "range");
        let got: Vec<_> = iter.map(|r| self.ok(r, "range item")).collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "{}: range {start:?}..{end:?} reverse={reverse} snapshot={snapshot:?}: lengths differ",
            self.ctx()
        );
        assert!(got == expected, "{}: range {start:?}..{end:?} reverse={reverse} snapshot={snapshot:?}", self.ctx());
        self.ops_done += 1;
    }

    fn check_prefix(&mut self) {
        let digits = self.rng.gen_range(0..=4);
        let full = self.random_key();
        let prefix = full[..1 + digits].to_vec();
        let expected: Vec<_> =
            self.model.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let got: Vec<_> = self.ok(self.db().scan_prefix(&prefix), "scan_prefix").map(|r| self.ok(r, "scan item")).collect();
        assert!(got == expected, "{}: scan_prefix {:?}", self.ctx(), String::from_utf8_lossy(&prefix));
        self.ops_done += 1;
    }

    fn snapshot_op(&mut self) {
        match self.rng.gen_range(0..4) {
            0 if self.snapshots.len() < MAX_SNAPSHOTS => {
                let s = self.db().snapshot();
                self.snapshots.push((s, self.model.clone(), self.keyspaces.clone()));
            }
            1 if !self.snapshots.is_empty() => {
                let i = self.rng.gen_range(0..self.snapshots.len());
                self.snapshots.swap_remove(i);
            }
            2 if !self.snapshots.is_empty() => {
                let i = self.rng.gen_range(0..self.snapshots.len());
                let k = self.random_key();
                let got = self.ok(self.db().get_at(&k, &self.snapshots[i].0), "get_at");
                assert_eq!(got.as_ref(), self.snapshots[i].1.get(&k), "{}: get_at snapshot {i}", self.ctx());
            }
            3 if !self.snapshots.is_empty() => {
                let i = self.rng.gen_range(0..self.snapshots.len());
                self.check_range(Some(i));
            }
            _ => {}
        }
        self.ops_done += 1;
    }

    fn transaction(&mut self) {
        // The transaction borrows the store while the harness draws random numbers.
        let db = self.db.take().unwrap();
        self.transaction_on(&db);
        self.db = Some(db);
    }

    fn transaction_on(&mut self, db: &Db) {
        let conflict = self.rng.gen_bool(0.3);
        let mut txn = db.transaction();
        let mut touched = Vec::new();
        for _ in 0..self.rng.gen_range(0..=3) {
            let k = self.random_key();
            let got = txn.get(&k).unwrap_or_else(|e| panic!("{}: txn get: {e}", self.ctx()));
            assert_eq!(got.as_ref(), self.model.get(&k), "{}: txn read", self.ctx());
            touched.push(k);
        }
        // What the transaction reads once its writes are applied to its snapshot.
        let mut own_view = self.model.clone();
        for _ in 0..self.rng.gen_range(1..=3) {
            let k = self.random_key();
            match self.rng.gen_range(0..10) {
                0..=5 => {
                    let v = self.random_value();
                    txn.put(&k, &v);
                    own_view.insert(k.clone(), v);
                }
                6..=7 => {
                    let v = self.random_value();
                    txn.merge(&k, &v).unwrap_or_else(|e| panic!("{}: txn merge: {e}", self.ctx()));
                    model_merge(&mut own_view, k.clone(), &v);
                }
                _ => {
                    txn.delete(&k);
                    own_view.remove(&k);
                }
            }
            // Reads of own writes see them.
            let own = txn.get(&k).unwrap();
            assert_eq!(own.as_ref(), own_view.get(&k), "{}: txn read-your-writes", self.ctx());
            touched.push(k);
        }
        if conflict {
            let k = touched[self.rng.gen_range(0..touched.len())].clone();
            let v = self.random_value();
            self.ok(db.put(&k, &v), "conflicting put");
            self.model.insert(k, v);
        }
        match txn.commit() {
            Ok(_) => {
                assert!(!conflict, "{}: commit succeeded despite a conflicting write", self.ctx());
                // No other write ran since the snapshot: the store is now its view.
                self.model = own_view;
            }
            Err(Error::Conflict) => assert!(conflict, "{}: spurious conflict", self.ctx()),
            Err(e) => panic!("{}: commit: {e}", self.ctx()),
        }
        self.ops_done += 1;
    }

    fn close(&mut self) {
        self.snapshots.clear();
        let db = self.db.take().unwrap();
        let stats = db.stats();
        self.flushes += stats.flushes;
        self.compactions += stats.compactions;
        self.ok(db.close(), "close");
    }

    fn reopen(&mut self) {
        self.close();
        self.db = Some(self.ok(Db::open(&self.dir, &self.cred, self.options.clone()), "reopen"));
        self.ops_done += 1;
    }

    fn compact(&mut self) {
        let (a, b) = (self.random_key(), self.random_key());
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let full = self.rng.gen_bool(0.3);
        let r = if full { self.db().compact_range(None, None) } else { self.db().compact_range(Some(&lo), Some(&hi)) };
        self.ok(r, "compact_range");
        self.ops_done += 1;
    }

    fn step(&mut self) {
        match self.rng.gen_range(0..1100) {
            0..=249 => self.put(),
            250..=349 => self.delete(),
            350..=499 => self.check_get(),
            500..=599 => {
                let n = self.rng.gen_range(1..=50);
                self.batch(n)
            }
            600..=699 => self.snapshot_op(),
            700..=759 => self.check_range(None),
            760..=789 => self.check_prefix(),
            790..=889 => self.transaction(),
            890..=899 => {
                self.ok(self.db().flush(), "flush");
                self.ops_done += 1;
            }
            900..=904 => self.compact(),
            905..=907 => self.reopen(),
            908..=919 => self.keyspace_create_or_drop(),
            920..=959 => {
                let n = self.rng.gen_range(1..=30);
                self.keyspace_batch(n)
            }
            960..=979 => self.delete_range(),
            980..=999 => self.keyspace_check(),
            1000..=1051 => self.merge(),
            _ => self.check_get(),
        }
    }

    /// Creates a keyspace (up to three live), or drops one: its data goes, and
    /// a write to it is refused and changes nothing.
    fn keyspace_create_or_drop(&mut self) {
        if self.keyspaces.len() < 3 && (self.keyspaces.is_empty() || self.rng.gen_bool(0.6)) {
            self.keyspaces_created += 1;
            let name = format!("ks{}", self.keyspaces_created);
            let ks = self.ok(self.db().create_keyspace(&name, KeyspaceOptions::default()), "create_keyspace");
            self.keyspaces.push((ks, Model::new()));
        } else if !self.keyspaces.is_empty() {
            let i = self.rng.gen_range(0..self.keyspaces.len());
            let (ks, _) = self.keyspaces.swap_remove(i);
            self.ok(self.db().drop_keyspace(ks.name()), "drop_keyspace");
            let mut batch = WriteBatch::new();
            batch.put(b"after-drop", b"x").put_in(&ks, b"k", b"x");
            let r = self.db().write(batch);
            assert!(matches!(r, Err(Error::NoSuchKeyspace(_))), "{}: write to a dropped keyspace: {r:?}", self.ctx());
            let got = self.ok(self.db().get(b"after-drop"), "get");
            assert_eq!(got, None, "{}: part of a refused batch was written", self.ctx());
        }
        self.ops_done += 1;
    }

    /// A batch across the default keyspace and the live others: puts,
    /// deletes, range deletes and merges (into keyspaces with an operator).
    fn keyspace_batch(&mut self, n: usize) {
        let mut batch = WriteBatch::new();
        let mut applied = self.model.clone();
        let mut applied_in: Vec<Model> = self.keyspaces.iter().map(|(_, m)| m.clone()).collect();
        for _ in 0..n {
            let k = self.random_key();
            let target = self.rng.gen_range(0..=self.keyspaces.len());
            let (start, end) = self.random_span();
            let draw = self.rng.gen_range(0..100);
            let v = self.random_value();
            let (model, ks) = match target.checked_sub(1) {
                None => (&mut applied, None),
                Some(i) => (&mut applied_in[i], Some(&self.keyspaces[i].0)),
            };
            let mergeable = ks.is_none_or(has_merge_operator);
            match draw {
                0..=4 => {
                    match ks {
                        None => batch.delete_range(&start, &end),
                        Some(ks) => batch.delete_range_in(ks, &start, &end),
                    };
                    model.retain(|k, _| *k < start || *k >= end);
                }
                5..=19 if mergeable => {
                    match ks {
                        None => batch.merge(&k, &v),
                        Some(ks) => batch.merge_in(ks, &k, &v),
                    };
                    model_merge(model, k, &v);
                }
                20..=39 => {
                    match ks {
                        None => batch.delete(&k),
                        Some(ks) => batch.delete_in(ks, &k),
                    };
                    model.remove(&k);
                }
                _ => {
                    match ks {
                        None => batch.put(&k, &v),
                        Some(ks) => batch.put_in(ks, &k, &v),
                    };
                    model.insert(k, v);
                }
            }
        }
        self.ok(self.db().write(batch), "write batch across keyspaces");
        self.model = applied;
        for ((_, m), a) in self.keyspaces.iter_mut().zip(applied_in) {
            *m = a;
        }
        self.ops_done += n as u64;
    }

    /// A point read and a range in a live keyspace, now or at a snapshot that
    /// saw it.
    fn keyspace_check(&mut self) {
        if self.keyspaces.is_empty() {
            return;
        }
        let i = self.rng.gen_range(0..self.keyspaces.len());
        let ks = self.keyspaces[i].0.clone();
        let snap = if !self.snapshots.is_empty() && self.rng.gen_bool(0.3) { Some(self.rng.gen_range(0..self.snapshots.len())) } else { None };
        let model = match snap {
            // A snapshot taken before the keyspace existed sees it empty.
            Some(s) => self.snapshots[s].2.iter().find(|(k, _)| k.id() == ks.id()).map(|(_, m)| m.clone()).unwrap_or_default(),
            None => self.keyspaces[i].1.clone(),
        };
        let snapshot = snap.map(|s| &self.snapshots[s].0);
        let k = key(self.rng.gen_range(0..KEY_SPACE));
        let got = match snapshot {
            Some(s) => self.db().get_at_in(&ks, &k, s),
            None => self.db().get_in(&ks, &k),
        };
        let got = self.ok(got, "get_in");
        assert_eq!(got.as_ref(), model.get(&k), "{}: get_in {} snapshot {snap:?}", self.ctx(), ks.name());
        let (start, end) = (self.random_bound(), self.random_bound());
        let reverse = self.rng.gen_bool(0.5);
        let snapshot = snap.map(|s| &self.snapshots[s].0);
        let iter = self.ok(self.db().range_in(&ks, as_ref(&start), as_ref(&end), reverse, snapshot), "range_in");
        let got: Vec<_> = iter.map(|r| self.ok(r, "range_in item")).collect();
        let mut expected: Vec<_> = model.iter().filter(|(k, _)| in_bounds(k, &start, &end)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if reverse {
            expected.reverse();
        }
        assert!(got == expected, "{}: range_in {} {start:?}..{end:?} reverse={reverse} snapshot={snap:?}", self.ctx(), ks.name());
        self.ops_done += 1;
    }

    /// Every key of the model and the whole store agree.
    fn full_check(&mut self) {
        let got: Vec<_> = self
            .ok(self.db().range(Bound::Unbounded, Bound::Unbounded, false, None), "full scan")
            .map(|r| self.ok(r, "scan item"))
            .collect();
        let expected: Vec<_> = self.model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(got == expected, "{}: full scan differs ({} vs {} pairs)", self.ctx(), got.len(), expected.len());
        for (s, m, _) in &self.snapshots {
            let got: Vec<_> = self
                .ok(self.db().range(Bound::Unbounded, Bound::Unbounded, true, Some(s)), "snapshot scan")
                .map(|r| self.ok(r, "scan item"))
                .collect();
            let expected: Vec<_> = m.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert!(got == expected, "{}: snapshot scan differs", self.ctx());
        }
        for (ks, m) in &self.keyspaces {
            let got: Vec<_> = self
                .ok(self.db().range_in(ks, Bound::Unbounded, Bound::Unbounded, false, None), "keyspace scan")
                .map(|r| self.ok(r, "scan item"))
                .collect();
            let expected: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            assert!(got == expected, "{}: full scan of keyspace {} differs ({} vs {} pairs)", self.ctx(), ks.name(), got.len(), expected.len());
        }
        for (s, _, at) in &self.snapshots {
            for (ks, m) in at.iter().filter(|(k, _)| self.keyspaces.iter().any(|(l, _)| l.id() == k.id())) {
                let got: Vec<_> = self
                    .ok(self.db().range_in(ks, Bound::Unbounded, Bound::Unbounded, false, Some(s)), "keyspace snapshot scan")
                    .map(|r| self.ok(r, "scan item"))
                    .collect();
                let expected: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert!(got == expected, "{}: snapshot scan of keyspace {} differs", self.ctx(), ks.name());
            }
        }
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Keyspaces `ks1` to `ks{MERGE_KEYSPACES}` have the appending operator too;
/// later ones have none (batches draw no merges into them).
const MERGE_KEYSPACES: u32 = 48;

fn has_merge_operator(ks: &Keyspace) -> bool {
    ks.name().strip_prefix("ks").and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n <= MERGE_KEYSPACES)
}

fn with_keyspace_operators(mut options: Options, append: &Arc<dyn MergeOperator>) -> Options {
    for i in 1..=MERGE_KEYSPACES {
        options = options.with_merge_operator(format!("ks{i}"), append.clone());
    }
    options
}

fn option_sets(vfs: Arc<SimVfs>) -> Vec<(&'static str, Options)> {
    let cheap_kdf = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
    let append: Arc<dyn MergeOperator> = Arc::new(Append);
    let tiny = Options::tiny_for_tests().with_vfs(vfs.clone()).with_max_subcompactions(1).with_merge_operator(DEFAULT_KEYSPACE, append.clone());
    let tiny = with_keyspace_operators(tiny, &append);
    vec![
        ("tiny", tiny.clone()),
        // On the real file system (SimVfs maps nothing): tables read through mappings.
        ("tiny-mmap", tiny.clone().with_vfs(Arc::new(StdVfs::new())).with_mmap_reads(true).with_sync(SyncPolicy::Never)),
        ("tiny-no-cache", tiny.with_block_cache_bytes(0).with_sync(SyncPolicy::Never).with_max_subcompactions(4)),
        (
            "defaults",
            with_keyspace_operators(
                Options::default()
                    .with_vfs(vfs)
                    .with_argon2(cheap_kdf)
                    .with_insecure_kdf_for_tests(true)
                    .with_max_subcompactions(4)
                    .with_merge_operator(DEFAULT_KEYSPACE, append.clone()),
                &append,
            ),
        ),
    ]
}

/// Runs `ops` random operations under one option set; returns the operations
/// counted, flushes and compactions.
fn run(name: &'static str, seed: u64, ops: usize, big_batches: bool) -> (u64, u64, u64) {
    let vfs = SimVfs::with_seed(seed);
    let options = option_sets(vfs).into_iter().find(|(n, _)| *n == name).unwrap().1;
    // tmpfs where there is one: mapped like any file, without the disk's syncs.
    let shm = std::path::Path::new("/dev/shm");
    let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let dir = if name == "tiny-mmap" { tmp.path().join("db") } else { PathBuf::from("/model/db") };
    let cred = Credential::passphrase(format!("model seed {seed}"));
    let db = Db::create(&dir, &cred, options.clone()).unwrap_or_else(|e| panic!("[{name}] seed {seed}: create: {e}"));
    let mut h = Harness {
        name,
        seed,
        op: 0,
        rng: StdRng::seed_from_u64(seed),
        dir,
        cred,
        options,
        db: Some(db),
        model: Model::new(),
        keyspaces: Vec::new(),
        keyspaces_created: 0,
        snapshots: Vec::new(),
        ops_done: 0,
        flushes: 0,
        compactions: 0,
    };
    for i in 0..ops {
        h.op = i;
        if big_batches && i == ops / 3 {
            h.batch(1_000);
        }
        if big_batches && i == 2 * ops / 3 {
            h.batch(100_000);
            h.full_check();
        }
        h.step();
        if i % 2_000 == 1_999 {
            h.full_check();
        }
    }
    h.op = ops;
    h.full_check();
    h.reopen();
    h.full_check();
    h.close();
    // The runs are meant to exercise the tree, not just the memtable.
    assert!(h.flushes > 0 && h.compactions > 0, "{}: {} flushes, {} compactions", h.ctx(), h.flushes, h.compactions);
    let report = Db::verify(&h.dir, &h.cred, h.options.clone()).unwrap_or_else(|e| panic!("{}: verify: {e}", h.ctx()));
    assert!(report.is_ok(), "{}: verify found damage: {:?}", h.ctx(), report.damaged);
    (h.ops_done, h.flushes, h.compactions)
}

fn seeds() -> Vec<u64> {
    match std::env::var("SYNAPSED_MODEL_SEED") {
        Ok(s) => vec![s.trim().parse().expect("SYNAPSED_MODEL_SEED must be a number")],
        Err(_) => vec![1, 2],
    }
}

fn run_set(name: &'static str, ops_per_seed: usize, big_batches: bool) {
    let started = Instant::now();
    let (mut ops, mut flushes, mut compactions) = (0, 0, 0);
    for seed in seeds() {
        let (o, f, c) = run(name, seed, ops_per_seed, big_batches);
        ops += o;
        flushes += f;
        compactions += c;
    }
    eprintln!("model [{name}]: {ops} operations, {flushes} flushes, {compactions} compactions in {:.1?}", started.elapsed());
}

#[test]
fn model_tiny() {
    run_set("tiny", 20_000, false);
}

#[test]
fn model_tiny_mmap_reads() {
    run_set("tiny-mmap", 10_000, false);
}

#[test]
fn model_tiny_no_block_cache() {
    run_set("tiny-no-cache", 15_000, false);
}

#[test]
fn model_defaults_with_big_batches() {
    run_set("defaults", 15_000, true);
}
