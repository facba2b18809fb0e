//! The session against a plain in-memory store (fingerprints computed by
//! scanning, which is fine here): convergence, idle cost, selective sync,
//! rights, and bad frames.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::type_complexity)]

use std::collections::BTreeMap;
use std::thread;

use crate::fingerprint::{bucket_of, entry_hash, node_buckets, Fingerprint};
use crate::hlc::{ClockSkew, Hlc};
use crate::mem::{mem_pair, Fault, FaultyChannel};
use crate::proto::Scope;
use crate::session::{initiate, respond, Applied, Rights, SessionError, SessionOptions, StoreError, SyncStore};
use crate::version::{Entry, ReplicaId, Version};

#[derive(Clone, Default)]
struct MemStore {
    id: u64,
    clock: u64,
    keyspaces: Vec<String>,
    data: BTreeMap<(String, Vec<u8>), Entry>,
}

impl MemStore {
    fn new(id: u64) -> MemStore {
        MemStore { id, clock: 0, keyspaces: vec!["a".into(), "b".into()], data: BTreeMap::new() }
    }

    fn write(&mut self, ks: &str, key: &[u8], value: Option<&[u8]>) {
        self.clock += 1;
        let prev = self.data.get(&(ks.to_owned(), key.to_vec())).map(|e| e.version).unwrap_or_default();
        let version = Version { hlc: Hlc(self.clock), replica: ReplicaId(self.id) };
        self.data.insert((ks.to_owned(), key.to_vec()), Entry { key: key.to_vec(), version, prev, value: value.map(<[u8]>::to_vec) });
    }

    fn in_scope<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Entry> + 'a {
        self.data.iter().filter(move |((ks, k), _)| scope.contains(ks, k)).map(|(_, e)| e)
    }
}

impl SyncStore for MemStore {
    fn replica_id(&self) -> ReplicaId {
        ReplicaId(self.id)
    }
    fn now(&mut self) -> Result<Hlc, StoreError> {
        self.clock += 1;
        Ok(Hlc(self.clock))
    }
    fn observe(&mut self, hlc: Hlc) -> Result<(), ClockSkew> {
        self.clock = self.clock.max(hlc.0);
        Ok(())
    }
    fn replicated_keyspaces(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self.keyspaces.clone())
    }
    fn node_fingerprints(&mut self, scope: &Scope, level: u8, first: u32, count: u32) -> Result<Vec<Fingerprint>, StoreError> {
        Ok((first..first + count)
            .map(|i| {
                let (lo, hi) = node_buckets(level, i);
                self.in_scope(scope)
                    .filter(|e| (lo..hi).contains(&bucket_of(&e.key)))
                    .fold(Fingerprint::default(), |f, e| f.combine(Fingerprint::of_hash(entry_hash(&e.key, e.version, e.value.as_deref()))))
            })
            .collect())
    }
    fn node_entries(&mut self, scope: &Scope, level: u8, index: u32) -> Result<Vec<(Vec<u8>, Version)>, StoreError> {
        let (lo, hi) = node_buckets(level, index);
        Ok(self.in_scope(scope).filter(|e| (lo..hi).contains(&bucket_of(&e.key))).map(|e| (e.key.clone(), e.version)).collect())
    }
    fn read_entry(&mut self, scope: &Scope, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        Ok(self.data.get(&(scope.keyspace.clone().unwrap_or_default(), key.to_vec())).cloned())
    }
    fn apply(&mut self, entries: &[(&Scope, &Entry)]) -> Result<Vec<Applied>, StoreError> {
        Ok(entries
            .iter()
            .map(|(scope, e)| {
                let ks = scope.keyspace.clone().unwrap_or_default();
                if !self.keyspaces.contains(&ks) {
                    return Applied::Refused;
                }
                let slot = self.data.entry((ks, e.key.clone())).or_insert_with(|| Entry { version: Version::default(), ..(*e).clone() });
                self.clock = self.clock.max(e.version.hlc.0);
                if e.version > slot.version || slot.version == Version::default() {
                    *slot = (*e).clone();
                    Applied::Taken
                } else {
                    Applied::Kept
                }
            })
            .collect())
    }
}

type Outcome = (Result<crate::SyncStats, SessionError>, Result<crate::SyncStats, SessionError>);

fn run(a: &mut MemStore, b: &mut MemStore, ia: SessionOptions, rb: SessionOptions, fault: Option<(usize, Fault)>) -> Outcome {
    let (ca, mut cb) = mem_pair();
    let mut b2 = b.clone();
    let responder = thread::spawn(move || {
        let r = respond(&mut b2, &mut cb, &rb);
        drop(cb);
        (r, b2)
    });
    let r1 = match fault {
        Some((at, f)) => initiate(a, &mut FaultyChannel::new(ca, at, f), &ia),
        None => {
            let mut ca = ca;
            initiate(a, &mut ca, &ia)
        }
    };
    let (r2, b2) = responder.join().unwrap();
    *b = b2;
    (r1, r2)
}

fn contents(s: &MemStore) -> BTreeMap<(String, Vec<u8>), (Version, Option<Vec<u8>>)> {
    s.data.iter().map(|(k, e)| (k.clone(), (e.version, e.value.clone()))).collect()
}

fn seeded(n: usize) -> (MemStore, MemStore) {
    let mut a = MemStore::new(1);
    for i in 0..n {
        a.write(if i % 3 == 0 { "b" } else { "a" }, format!("key{i:05}").as_bytes(), Some(format!("v{i}").as_bytes()));
    }
    let mut b = a.clone();
    b.id = 2;
    (a, b)
}

#[test]
fn differing_stores_converge_and_a_second_session_is_idle() {
    let (mut a, mut b) = seeded(3_000);
    for i in 0..40 {
        a.write("a", format!("only-a{i}").as_bytes(), Some(b"x"));
        b.write("a", format!("only-b{i}").as_bytes(), Some(b"y"));
        b.write("a", format!("key{:05}", i * 7 + 1).as_bytes(), Some(b"newer on b"));
        a.write("b", format!("key{:05}", i * 30).as_bytes(), None);
    }
    let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default(), None);
    let (s1, s2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(s1.entries_sent, 80, "only what b lacks or holds older");
    assert_eq!(s1.entries_received, 80);
    assert_eq!(s2.entries_received, 80);
    let (r1, _) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default(), None);
    let idle = r1.unwrap();
    assert_eq!(idle.rounds, 0, "equal roots: the hello is the only round trip");
    assert!(idle.bytes_sent + idle.bytes_received < 300, "{idle:?}");
}

#[test]
fn selective_sync_moves_only_the_asked_prefix() {
    let (mut a, mut b) = seeded(10);
    a.write("a", b"photos/1", Some(b"p"));
    a.write("a", b"notes/1", Some(b"n"));
    let ask = SessionOptions::default().with_scopes(vec![Scope::prefix("a", b"notes/")]);
    let (r1, r2) = run(&mut b, &mut a, ask, SessionOptions::default(), None);
    r1.unwrap();
    r2.unwrap();
    assert!(b.data.contains_key(&("a".into(), b"notes/1".to_vec())));
    assert!(!b.data.contains_key(&("a".into(), b"photos/1".to_vec())));
}

#[test]
fn rights_are_enforced_by_the_receiver_and_refusals_are_reported() {
    let (mut a, mut b) = seeded(10);
    a.write("a", b"shared/1", Some(b"s"));
    a.write("a", b"private/1", Some(b"p"));
    b.write("a", b"shared/2", Some(b"t"));
    // b lets a write only under shared/ and read only shared/.
    let rights = Rights { read: vec![Scope::prefix("a", b"shared/")], write: vec![Scope::prefix("a", b"shared/")] };
    let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default().with_rights(rights.clone()), None);
    let (s1, s2) = (r1.unwrap(), r2.unwrap());
    assert!(b.data.contains_key(&("a".into(), b"shared/1".to_vec())));
    assert!(a.data.contains_key(&("a".into(), b"shared/2".to_vec())));
    assert!(!b.data.contains_key(&("a".into(), b"private/1".to_vec())), "outside the granted scope");
    assert_eq!((s1.refused_by_peer, s2.refused_writes), (0, 0));
    // Read everything, write only shared/: a's private key is refused and reported.
    let rights = Rights { read: vec![Scope::everything()], write: vec![Scope::prefix("a", b"shared/")] };
    let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default().with_rights(rights), None);
    let (s1, s2) = (r1.unwrap(), r2.unwrap());
    assert!(!b.data.contains_key(&("a".into(), b"private/1".to_vec())));
    assert_eq!((s1.refused_by_peer, s2.refused_writes), (1, 1));
    // Nothing readable: the session is refused.
    let none = Rights { read: vec![Scope::keyspace("zzz")], write: vec![] };
    let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default().with_rights(none), None);
    assert!(matches!(r2, Err(SessionError::NotAllowed)), "{r2:?}");
    assert!(matches!(r1, Err(SessionError::Peer { .. })), "{r1:?}");
}

#[test]
fn a_cut_or_damaged_frame_ends_the_session_and_a_rerun_converges() {
    for at in 0..6 {
        for fault in [
            Fault::CutBefore,
            Fault::CutAfter,
            Fault::Truncate { keep: 5 },
            Fault::Flip { offset: 2, mask: 0x40 },
            Fault::Flip { offset: 0, mask: 1 },
        ] {
            let (mut a, mut b) = seeded(500);
            for i in 0..30 {
                a.write("a", format!("a{i}").as_bytes(), Some(b"1"));
                b.write("a", format!("b{i}").as_bytes(), Some(b"2"));
            }
            let before = contents(&b);
            let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default(), Some((at, fault)));
            if matches!(fault, Fault::Flip { offset: 0, .. } | Fault::Flip { offset: 2, .. }) && at < 3 {
                assert!(r2.is_err(), "a damaged frame {at} is refused: {fault:?}");
            }
            if r1.is_ok() && r2.is_ok() {
                assert_eq!(contents(&a), contents(&b));
                continue;
            }
            // Whatever b took is whole entries of a (never anything else).
            for (k, v) in contents(&b) {
                if before.get(&k) != Some(&v) {
                    assert_eq!(contents(&a).get(&k), Some(&v));
                }
            }
            let (r1, r2) = run(&mut a, &mut b, SessionOptions::default(), SessionOptions::default(), None);
            r1.unwrap();
            r2.unwrap();
            assert_eq!(contents(&a), contents(&b), "rerun after {fault:?} at frame {at}");
        }
    }
}
