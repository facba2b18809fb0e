//! Convergence of replicas (proptest): 3 or 4 real stores, each on its own
//! `SimVfs`, take random replicated writes and deletes, random pairwise
//! sessions over channels that cut the connection or cut or damage a frame
//! at a random frame, tombstone collections naming every other replica, and
//! power losses (`SimVfs::crash`, the old handle abandoned) followed by a
//! reopen. After each step every store's fingerprints equal sums over its
//! version records; after a crash, every write the replica acknowledged is
//! still there (or superseded). At the end, after two rounds of sessions
//! around the ring, every replica holds the same contents, equal to what
//! last-writer-wins says of all acknowledged writes: no acknowledged write
//! lost, no deleted key back.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::type_complexity)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use synapsed_storage::{Db, KeyspaceOptions, Options, SessionOptions, SimVfs, SyncPolicy, Version};
use sync::mem::{mem_pair, Fault, FaultyChannel};

const KEYS: u8 = 8;

#[derive(Debug, Clone)]
enum Op {
    Put { replica: usize, key: u8, value: u8 },
    Delete { replica: usize, key: u8 },
    Sync { from: usize, to: usize, fault: Option<(usize, u8)> },
    Collect { replica: usize },
    Crash { replica: usize },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n, 0..KEYS, any::<u8>()).prop_map(|(replica, key, value)| Op::Put { replica, key, value }),
        2 => (0..n, 0..KEYS).prop_map(|(replica, key)| Op::Delete { replica, key }),
        3 => (0..n, 0..n, prop::option::of((0..6usize, 0..4u8))).prop_map(|(from, to, fault)| Op::Sync { from, to, fault }),
        1 => (0..n).prop_map(|replica| Op::Collect { replica }),
        1 => (0..n).prop_map(|replica| Op::Crash { replica }),
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
    common::options().with_vfs(sim.clone()).with_sync(SyncPolicy::EveryCommit)
}

impl Node {
    fn new(i: usize) -> Node {
        let sim = SimVfs::with_seed(i as u64 + 1);
        let dir = PathBuf::from(format!("/replica{i}"));
        let db = Db::create(&dir, &common::cred(), options(&sim)).unwrap();
        let ks = db.create_keyspace("notes", KeyspaceOptions::default()).unwrap();
        db.replica().unwrap().replicate(&ks).unwrap();
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

fn sync(nodes: &[Node], from: usize, to: usize, fault: Option<(usize, u8)>) -> bool {
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

fn run(n: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut nodes: Vec<Node> = (0..n).map(Node::new).collect();
    let ids: Vec<_> = nodes.iter().map(|x| x.db().replica().unwrap().id()).collect();
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
            Op::Sync { from, to, fault } => {
                if from != to {
                    sync(&nodes, from, to, fault);
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
            prop_assert!(sync(&nodes, i, (i + 1) % n, None), "a clean session failed");
        }
    }
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn replicas_converge_to_last_writer_wins_of_every_acknowledged_write(
        (n, ops) in (3..=4usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..40)))
    ) {
        run(n, ops)?;
    }
}
