//! Convergence of replicas (proptest): 3 or 4 real stores, each on its own
//! `SimVfs`, take random replicated writes and deletes, counter increments
//! and decrements, set adds and removes, and document field edits; random
//! pairwise sessions over a simulated network that cuts the connection,
//! cuts, damages or duplicates a frame, or delays one while the sender takes
//! a write; two sessions at once (their frames interleave in any order);
//! tombstone collections naming every other replica; and power losses
//! (`SimVfs::crash`, the old handle abandoned) followed by a reopen. (Within
//! one session the transport delivers frames in order or fails, so frames
//! are reordered only between sessions.) After each step every store's
//! fingerprints equal sums over its version records; after a crash, every
//! write the replica acknowledged is still there (or superseded). At the end,
//! after two rounds of sessions around the ring, every replica holds the same
//! contents and versions, equal to what the merge rules say of all
//! acknowledged writes: last-writer-wins per key, the sum of every increment
//! per counter, the add-wins set of the adds no remove observed, the newest
//! write of each document field; no acknowledged write lost, no deleted key
//! back.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::type_complexity)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{json, Value};
use synapsed_storage::{
    CrdtState, Db, FrameChannel, KeyspaceOptions, Options, SessionOptions, SimVfs, SortedSetUnion, SyncPolicy, U64AddOperator, Version,
};
use sync::channel::ChannelError;
use sync::mem::{mem_pair, Fault, FaultyChannel, MemChannel};

const KEYS: u8 = 8;
const COUNTERS: u8 = 3;
const SETS: u8 = 2;
const ELEMENTS: u8 = 4;
const DOCS: u8 = 2;
const FIELDS: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    Put { replica: usize, key: u8, value: u8 },
    Delete { replica: usize, key: u8 },
    Sync { from: usize, to: usize, fault: Option<(usize, u8)> },
    Collect { replica: usize },
    Crash { replica: usize },
    Incr { replica: usize, key: u8, delta: i8 },
    SetAdd { replica: usize, key: u8, element: u8 },
    SetRemove { replica: usize, key: u8, element: u8 },
    DocEdit { replica: usize, doc: u8, field: u8, value: Option<u8> },
    /// Two sessions at once.
    SyncTwo { a: (usize, usize), b: (usize, usize) },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n, 0..KEYS, any::<u8>()).prop_map(|(replica, key, value)| Op::Put { replica, key, value }),
        2 => (0..n, 0..KEYS).prop_map(|(replica, key)| Op::Delete { replica, key }),
        3 => (0..n, 0..n, prop::option::of((0..6usize, 0..6u8))).prop_map(|(from, to, fault)| Op::Sync { from, to, fault }),
        1 => (0..n).prop_map(|replica| Op::Collect { replica }),
        1 => (0..n).prop_map(|replica| Op::Crash { replica }),
        2 => (0..n, 0..COUNTERS, any::<i8>()).prop_map(|(replica, key, delta)| Op::Incr { replica, key, delta }),
        2 => (0..n, 0..SETS, 0..ELEMENTS).prop_map(|(replica, key, element)| Op::SetAdd { replica, key, element }),
        1 => (0..n, 0..SETS, 0..ELEMENTS).prop_map(|(replica, key, element)| Op::SetRemove { replica, key, element }),
        2 => (0..n, 0..DOCS, 0..FIELDS, prop::option::of(any::<u8>()))
            .prop_map(|(replica, doc, field, value)| Op::DocEdit { replica, doc, field, value }),
        1 => ((0..n, 0..n), (0..n, 0..n)).prop_map(|(a, b)| Op::SyncTwo { a, b }),
    ]
}

struct Node {
    sim: Arc<SimVfs>,
    dir: PathBuf,
    db: Option<Db>,
    /// Newest version this replica acknowledged per key (its own writes and
    /// what it took in a session are both in its store once acknowledged).
    acked: BTreeMap<u8, Version>,
}

fn options(sim: &Arc<SimVfs>) -> Options {
    common::options()
        .with_vfs(sim.clone())
        .with_sync(SyncPolicy::EveryCommit)
        .with_merge_operator("hits", Arc::new(U64AddOperator))
        .with_merge_operator("tags", Arc::new(SortedSetUnion))
}

impl Node {
    fn new(i: usize) -> Node {
        let sim = SimVfs::with_seed(i as u64 + 1);
        let dir = PathBuf::from(format!("/replica{i}"));
        let db = Db::create(&dir, &common::cred(), options(&sim)).unwrap();
        for name in ["notes", "hits", "tags"] {
            let ks = db.create_keyspace(name, KeyspaceOptions::default()).unwrap();
            db.replica().unwrap().replicate(&ks).unwrap();
        }
        db.replica().unwrap().replicate_documents("cards").unwrap();
        Node { sim, dir, db: Some(db), acked: BTreeMap::new() }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn crash_and_reopen(&mut self) {
        self.sim.crash();
        // Power loss: the old handle never runs again (its drop would shut down).
        std::mem::forget(self.db.take());
        let (db, _) = Db::open_or_repair(&self.dir, &common::cred(), options(&self.sim)).unwrap();
        // At each open: finishes copies into the document store a crash cut short.
        db.replica().unwrap().replicate_documents("cards").unwrap();
        self.db = Some(db);
    }

    fn version(&self, key: u8) -> Option<Version> {
        let db = self.db();
        let ks = db.keyspace("notes").unwrap().unwrap();
        db.replica().unwrap().version_of(&ks, &key_bytes(key)).unwrap().map(|(v, _)| v)
    }

    fn value(&self, key: u8) -> Option<Vec<u8>> {
        let db = self.db();
        db.get_in(&db.keyspace("notes").unwrap().unwrap(), &key_bytes(key)).unwrap()
    }
}

fn key_bytes(key: u8) -> Vec<u8> {
    format!("key{key}").into_bytes()
}

fn counter(db: &Db, key: u8) -> u64 {
    let ks = db.keyspace("hits").unwrap().unwrap();
    db.get_in(&ks, &key_bytes(key)).unwrap().map_or(0, |b| U64AddOperator::decode(&b).unwrap())
}

fn set(db: &Db, key: u8) -> BTreeSet<Vec<u8>> {
    let ks = db.keyspace("tags").unwrap().unwrap();
    db.get_in(&ks, &key_bytes(key)).unwrap().map(|b| SortedSetUnion::decode(&b).unwrap().into_iter().collect()).unwrap_or_default()
}

fn doc_id(doc: u8) -> String {
    format!("doc{doc}")
}

fn field(field: u8) -> String {
    format!("f{field}")
}

/// The document as the replica's document store holds it.
fn document(db: &Db, doc: u8) -> Option<Value> {
    db.docs().get("cards", &doc_id(doc)).unwrap()
}

/// Increments a write made during a delayed frame adds to counter 0.
type Log = Mutex<Vec<i64>>;

/// The simulated network's faults beyond those of [`FaultyChannel`].
#[derive(Debug, Clone, Copy)]
enum Net {
    /// The frame is held while the sender's store takes a write.
    DelayWithWrite,
    /// The frame arrives twice.
    Duplicate,
}

struct NetChannel<'a> {
    inner: MemChannel,
    sent: usize,
    at: usize,
    net: Net,
    db: &'a Db,
    log: &'a Log,
}

impl FrameChannel for NetChannel<'_> {
    fn send(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        let n = self.sent;
        self.sent += 1;
        if n == self.at {
            match self.net {
                Net::DelayWithWrite => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    let ks = self.db.keyspace("hits").unwrap().unwrap();
                    self.db.replica().unwrap().merge(&ks, &key_bytes(0), &U64AddOperator::encode(1)).unwrap();
                    self.log.lock().unwrap().push(1);
                }
                Net::Duplicate => self.inner.send(frame)?,
            }
        }
        self.inner.send(frame)
    }

    fn recv(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        self.inner.recv()
    }
}

fn sync(nodes: &[Node], from: usize, to: usize, fault: Option<(usize, u8)>, log: &Log) -> bool {
    let (a, b) = (nodes[from].db(), nodes[to].db());
    let (ca, mut cb) = mem_pair();
    std::thread::scope(|s| {
        let responder = s.spawn(move || {
            let r = b.replica().unwrap().respond(&mut cb, &SessionOptions::default());
            drop(cb);
            r.is_ok()
        });
        let ok = match fault {
            None => {
                let mut ca = ca;
                a.replica().unwrap().initiate(&mut ca, &SessionOptions::default()).is_ok()
            }
            Some((at, kind @ 4..)) => {
                let net = if kind == 4 { Net::DelayWithWrite } else { Net::Duplicate };
                let mut ch = NetChannel { inner: ca, sent: 0, at, net, db: a, log };
                let ok = a.replica().unwrap().initiate(&mut ch, &SessionOptions::default()).is_ok();
                drop(ch);
                ok
            }
            Some((at, kind)) => {
                let f = match kind {
                    0 => Fault::CutBefore,
                    1 => Fault::CutAfter,
                    2 => Fault::Truncate { keep: 7 },
                    _ => Fault::Flip { offset: 1, mask: 0x10 },
                };
                a.replica().unwrap().initiate(&mut FaultyChannel::new(ca, at, f), &SessionOptions::default()).is_ok()
            }
        };
        let ok2 = responder.join().unwrap();
        ok && ok2
    })
}

/// What the merge rules say the merging keys end as.
#[derive(Default)]
struct Merges {
    counters: BTreeMap<u8, i64>,
    /// Per set and element: the dots of its adds, and the dots removes observed.
    adds: BTreeMap<(u8, Vec<u8>), BTreeSet<Version>>,
    observed: BTreeMap<(u8, Vec<u8>), BTreeSet<Version>>,
    /// Per document and field: every write (version, value or deletion).
    fields: BTreeMap<(u8, String), Vec<(Version, Option<u8>)>>,
}

fn set_dots(db: &Db, key: u8, element: &[u8]) -> BTreeSet<Version> {
    let ks = db.keyspace("tags").unwrap().unwrap();
    match db.replica().unwrap().merge_state(&ks, &key_bytes(key)).unwrap() {
        Some(CrdtState::Set(s)) => s.dots().filter(|(e, _)| *e == element).map(|(_, v)| v).collect(),
        _ => BTreeSet::new(),
    }
}

fn apply_merge_op(node: &Node, op: &Op, m: &mut Merges) {
    let db = node.db();
    let r = db.replica().unwrap();
    match *op {
        Op::Incr { key, delta, .. } => {
            let ks = db.keyspace("hits").unwrap().unwrap();
            r.merge(&ks, &key_bytes(key), &U64AddOperator::encode(i64::from(delta) as u64)).unwrap();
            *m.counters.entry(key).or_default() += i64::from(delta);
        }
        Op::SetAdd { key, element, .. } => {
            // An add supersedes the dots of the element it observed.
            let seen = set_dots(db, key, &[element]);
            m.observed.entry((key, vec![element])).or_default().extend(seen);
            let ks = db.keyspace("tags").unwrap().unwrap();
            let v = r.merge(&ks, &key_bytes(key), &SortedSetUnion::encode([[element]])).unwrap();
            m.adds.entry((key, vec![element])).or_default().insert(v);
        }
        Op::SetRemove { key, element, .. } => {
            let seen = set_dots(db, key, &[element]);
            let ks = db.keyspace("tags").unwrap().unwrap();
            r.remove_from_set(&ks, &key_bytes(key), &[&[element]]).unwrap();
            m.observed.entry((key, vec![element])).or_default().extend(seen);
        }
        Op::DocEdit { doc, field: f, value, .. } => {
            let mut current = document(db, doc).unwrap_or_else(|| json!({"_id": doc_id(doc)}));
            let obj = current.as_object_mut().unwrap();
            let name = field(f);
            let before = obj.get(&name).cloned();
            match value {
                Some(v) => obj.insert(name.clone(), json!(v)),
                None => obj.remove(&name),
            };
            let after = obj.get(&name).cloned();
            let v = r.put_document("cards", &current).unwrap();
            // Only a changed field gets the write's version.
            if before != after {
                m.fields.entry((doc, name)).or_default().push((v, value));
            }
        }
        _ => {}
    }
}

fn run(n: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut nodes: Vec<Node> = (0..n).map(Node::new).collect();
    let ids: Vec<_> = nodes.iter().map(|x| x.db().replica().unwrap().id()).collect();
    let mut merges = Merges::default();
    let log = Log::default();
    // Every acknowledged write anywhere: key -> (version, value).
    let mut writes: BTreeMap<u8, Vec<(Version, Option<Vec<u8>>)>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put { replica, key, value } => {
                let node = &mut nodes[replica];
                let db = node.db();
                let ks = db.keyspace("notes").unwrap().unwrap();
                let v = db.replica().unwrap().put(&ks, &key_bytes(key), &[value]).unwrap();
                node.acked.insert(key, v);
                writes.entry(key).or_default().push((v, Some(vec![value])));
            }
            Op::Delete { replica, key } => {
                let node = &mut nodes[replica];
                let db = node.db();
                let ks = db.keyspace("notes").unwrap().unwrap();
                let v = db.replica().unwrap().delete(&ks, &key_bytes(key)).unwrap();
                node.acked.insert(key, v);
                writes.entry(key).or_default().push((v, None));
            }
            Op::Incr { replica, .. } | Op::SetAdd { replica, .. } | Op::SetRemove { replica, .. } | Op::DocEdit { replica, .. } => {
                apply_merge_op(&nodes[replica], &op, &mut merges);
            }
            Op::SyncTwo { a, b } => {
                if a.0 != a.1 && b.0 != b.1 {
                    let nodes = &nodes;
                    let log = &log;
                    std::thread::scope(|s| {
                        let other = s.spawn(move || sync(nodes, b.0, b.1, None, log));
                        sync(nodes, a.0, a.1, None, log);
                        other.join().unwrap();
                    });
                }
            }
            Op::Sync { from, to, fault } => {
                if from != to {
                    sync(&nodes, from, to, fault, &log);
                    for i in [from, to] {
                        for key in 0..KEYS {
                            if let Some(v) = nodes[i].version(key) {
                                let e = nodes[i].acked.entry(key).or_insert(v);
                                *e = (*e).max(v);
                            }
                        }
                    }
                }
            }
            Op::Collect { replica } => {
                let peers: Vec<_> = ids.iter().enumerate().filter(|(i, _)| *i != replica).map(|(_, id)| *id).collect();
                nodes[replica].db().replica().unwrap().collect_tombstones(&peers).unwrap();
            }
            Op::Crash { replica } => {
                nodes[replica].crash_and_reopen();
                for (key, v) in nodes[replica].acked.clone() {
                    // Still there, or collected as a tombstone (then the value is gone).
                    match nodes[replica].version(key) {
                        Some(now) => prop_assert!(now >= v, "replica {replica} lost key {key} after a crash"),
                        None => prop_assert_eq!(nodes[replica].value(key), None),
                    }
                }
            }
        }
        for x in &nodes {
            prop_assert!(x.db().replica().unwrap().fingerprints_match_versions().unwrap());
        }
    }
    for _ in 0..2 {
        for i in 0..n {
            prop_assert!(sync(&nodes, i, (i + 1) % n, None, &log), "a clean session failed");
        }
    }
    check_merges(&nodes, &merges, &log)?;
    for key in 0..KEYS {
        let expected = writes.get(&key).and_then(|w| w.iter().max_by_key(|(v, _)| *v)).and_then(|(_, value)| value.clone());
        for (i, x) in nodes.iter().enumerate() {
            prop_assert_eq!(x.value(key), expected.clone(), "replica {} key {}", i, key);
        }
        let versions: Vec<_> = nodes.iter().map(|x| x.version(key)).collect();
        if expected.is_some() {
            let newest = writes[&key].iter().map(|(v, _)| *v).max();
            prop_assert!(versions.iter().all(|v| *v == newest), "key {}: {:?}", key, versions);
        }
    }
    for x in &mut nodes {
        std::mem::forget(x.db.take());
    }
    Ok(())
}

fn check_merges(nodes: &[Node], m: &Merges, log: &Log) -> Result<(), TestCaseError> {
    let delayed: i64 = log.lock().unwrap().iter().sum();
    for key in 0..COUNTERS {
        let mut expected = m.counters.get(&key).copied().unwrap_or(0);
        if key == 0 {
            expected += delayed;
        }
        for (i, x) in nodes.iter().enumerate() {
            prop_assert_eq!(counter(x.db(), key), expected as u64, "replica {} counter {}", i, key);
        }
    }
    for key in 0..SETS {
        let expected: BTreeSet<Vec<u8>> = (0..ELEMENTS)
            .map(|e| vec![e])
            .filter(|e| {
                let adds = m.adds.get(&(key, e.clone())).cloned().unwrap_or_default();
                let observed = m.observed.get(&(key, e.clone())).cloned().unwrap_or_default();
                adds.iter().any(|d| !observed.contains(d))
            })
            .collect();
        for (i, x) in nodes.iter().enumerate() {
            prop_assert_eq!(set(x.db(), key), expected.clone(), "replica {} set {}", i, key);
        }
    }
    for doc in 0..DOCS {
        let mut expected = serde_json::Map::new();
        for f in 0..FIELDS {
            let newest = m.fields.get(&(doc, field(f))).and_then(|w| w.iter().max_by_key(|(v, _)| *v));
            if let Some((_, Some(value))) = newest {
                expected.insert(field(f), json!(value));
            }
        }
        let expected = if expected.is_empty() {
            None
        } else {
            expected.insert("_id".into(), json!(doc_id(doc)));
            Some(Value::Object(expected))
        };
        for (i, x) in nodes.iter().enumerate() {
            prop_assert_eq!(document(x.db(), doc), expected.clone(), "replica {} document {}", i, doc);
        }
    }
    // Equal merge states mean equal versions everywhere.
    for name in ["hits", "tags", "doc:cards"] {
        let listing = |x: &Node| -> Vec<(Vec<u8>, Option<Version>)> {
            let db = x.db();
            let ks = db.keyspace(name).unwrap().unwrap();
            let r = db.replica().unwrap();
            db.scan_prefix_in(&ks, b"").unwrap().map(|i| i.unwrap().0).map(|k| (k.clone(), r.version_of(&ks, &k).unwrap().map(|v| v.0))).collect()
        };
        let first = listing(&nodes[0]);
        for x in &nodes[1..] {
            prop_assert_eq!(listing(x), first.clone(), "keyspace {}", name);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn replicas_converge_to_the_merge_rules_of_every_acknowledged_write(
        (n, ops) in (3..=4usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..48)))
    ) {
        run(n, ops)?;
    }
}
