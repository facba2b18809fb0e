//! Replication between stores: versions stamped on replicated writes (plain
//! values on reads), persisted clock and replica id, sessions over an
//! in-memory channel that converge and then idle, last-writer-wins and the
//! resolver hook with conflicts listed, rights and selective sync on real
//! stores, bad frames that change nothing, and the tombstone collection rule.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;

use synapsed_storage::{
    ConflictResolver, Db, FrameChannel, KeyspaceOptions, Replica, Rights, Scope, SessionError, SessionOptions, SyncStats, Winner,
};
use sync::mem::{mem_pair, Fault, FaultyChannel, MemChannel};
use sync::Entry;

fn create(dir: &Path) -> Db {
    let db = Db::create(dir, &common::cred(), common::options()).unwrap();
    let ks = db.create_keyspace("notes", KeyspaceOptions::default()).unwrap();
    db.replica().unwrap().replicate(&ks).unwrap();
    db
}

fn notes(db: &Db) -> synapsed_storage::Keyspace {
    db.keyspace("notes").unwrap().unwrap()
}

type Outcome = (Result<SyncStats, SessionError>, Result<SyncStats, SessionError>);

/// One session: `a` initiates over `channel`, `b` responds.
fn session_over(a: &Db, b: &Db, mut channel: impl FrameChannel, mut other: MemChannel, ia: &SessionOptions, rb: &SessionOptions) -> Outcome {
    std::thread::scope(|s| {
        let responder = s.spawn(move || {
            let r = b.replica().unwrap().respond(&mut other, rb);
            drop(other);
            r
        });
        let r1 = a.replica().unwrap().initiate(&mut channel, ia);
        drop(channel);
        (r1, responder.join().unwrap())
    })
}

fn session(a: &Db, b: &Db) -> (SyncStats, SyncStats) {
    let (ca, cb) = mem_pair();
    let (r1, r2) = session_over(a, b, ca, cb, &SessionOptions::default(), &SessionOptions::default());
    (r1.unwrap(), r2.unwrap())
}

/// Every replicated key's version and state, and the plain contents.
fn state(db: &Db) -> Vec<(Vec<u8>, Option<Vec<u8>>, synapsed_storage::Version)> {
    let r = db.replica().unwrap();
    let ks = notes(db);
    let mut out = Vec::new();
    for key in all_keys(db) {
        if let Some((v, _)) = r.version_of(&ks, &key).unwrap() {
            out.push((key.clone(), db.get_in(&ks, &key).unwrap(), v));
        }
    }
    out
}

fn all_keys(db: &Db) -> Vec<Vec<u8>> {
    // Live keys plus every key the tests delete.
    let ks = notes(db);
    let mut keys: Vec<Vec<u8>> = db.scan_prefix_in(&ks, b"").unwrap().map(|r| r.unwrap().0).collect();
    for i in 0..100 {
        keys.push(format!("k{i:03}").into_bytes());
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn replicated_writes_carry_versions_and_reads_return_plain_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    let ks = notes(&db);
    let r = db.replica().unwrap();
    let id = r.id();
    let v1 = r.put(&ks, b"k001", b"hello").unwrap();
    assert_eq!(db.get_in(&ks, b"k001").unwrap(), Some(b"hello".to_vec()));
    assert_eq!(v1.replica, id);
    let v2 = r.delete(&ks, b"k001").unwrap();
    assert!(v2 > v1);
    assert_eq!(db.get_in(&ks, b"k001").unwrap(), None);
    assert_eq!(r.version_of(&ks, b"k001").unwrap(), Some((v2, true)), "a versioned tombstone");
    // Only replicated keyspaces take replicated writes.
    let other = db.create_keyspace("other", KeyspaceOptions::default()).unwrap();
    assert!(matches!(r.put(&other, b"k", b"v"), Err(synapsed_storage::Error::InvalidArgument(_))));
    drop(r);
    db.close().unwrap();
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    let r = db.replica().unwrap();
    assert_eq!(r.id(), id, "the replica id is kept");
    let v3 = r.put(&notes(&db), b"k002", b"x").unwrap();
    assert!(v3 > v2, "the clock resumes past its high-water mark");
    assert!(r.fingerprints_match_versions().unwrap());
}

#[test]
fn existing_keys_are_stamped_when_a_keyspace_becomes_replicated() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let ks = db.create_keyspace("notes", KeyspaceOptions::default()).unwrap();
    for i in 0..2_500 {
        db.put_in(&ks, format!("k{i:04}").as_bytes(), b"old").unwrap();
    }
    let r = db.replica().unwrap();
    r.replicate(&ks).unwrap();
    assert!(r.version_of(&ks, b"k2499").unwrap().is_some());
    assert!(r.fingerprints_match_versions().unwrap());
    let dir2 = tempfile::tempdir().unwrap();
    let b = create(dir2.path());
    session(&db, &b);
    assert_eq!(b.get_in(&notes(&b), b"k1234").unwrap(), Some(b"old".to_vec()));
}

#[test]
fn two_stores_converge_and_the_next_session_is_one_round_trip() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    let (ra, rb) = (a.replica().unwrap(), b.replica().unwrap());
    for i in 0..60 {
        ra.put(&notes(&a), format!("k{i:03}").as_bytes(), format!("a{i}").as_bytes()).unwrap();
    }
    let (s1, s2) = session(&a, &b);
    assert_eq!(s1.entries_sent, 60);
    assert_eq!(s2.entries_applied, 60);
    assert_eq!(state(&a), state(&b));
    // Changes on both sides, including deletes.
    for i in 0..10 {
        rb.put(&notes(&b), format!("k{:03}", 60 + i).as_bytes(), b"b").unwrap();
        ra.delete(&notes(&a), format!("k{i:03}").as_bytes()).unwrap();
        rb.put(&notes(&b), format!("k{:03}", 20 + i).as_bytes(), b"b-newer").unwrap();
    }
    let (s1, _) = session(&b, &a);
    assert_eq!(s1.entries_sent, 20);
    assert_eq!(s1.entries_received, 10);
    assert_eq!(state(&a), state(&b));
    assert_eq!(a.get_in(&notes(&a), b"k000").unwrap(), None);
    assert_eq!(a.get_in(&notes(&a), b"k025").unwrap(), Some(b"b-newer".to_vec()));
    let (idle, _) = session(&a, &b);
    assert_eq!((idle.rounds, idle.entries_sent, idle.entries_received), (0, 0, 0));
    assert!(idle.bytes_sent + idle.bytes_received < 200, "{idle:?}");
    assert!(ra.fingerprints_match_versions().unwrap() && rb.fingerprints_match_versions().unwrap());
}

#[test]
fn concurrent_writes_resolve_the_same_way_on_both_sides_and_are_listed() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    let (ra, rb) = (a.replica().unwrap(), b.replica().unwrap());
    let va = ra.put(&notes(&a), b"k001", b"from a").unwrap();
    let vb = rb.put(&notes(&b), b"k001", b"from b").unwrap();
    let (s1, s2) = session(&a, &b);
    let winner: &[u8] = if va > vb { b"from a" } else { b"from b" };
    assert_eq!(a.get_in(&notes(&a), b"k001").unwrap().as_deref(), Some(winner));
    assert_eq!(state(&a), state(&b));
    assert_eq!(s1.conflicts + s2.conflicts, 1);
    let listed: Vec<_> = ra.conflicts().unwrap().into_iter().chain(rb.conflicts().unwrap()).collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, b"k001");
    assert_eq!(listed[0].kept, va.max(vb));
    assert_eq!(listed[0].lost, va.min(vb));
    // A later write made over the winner is a successor, not a conflict.
    rb.put(&notes(&b), b"k001", b"edit").unwrap();
    let (s1, s2) = session(&a, &b);
    assert_eq!(s1.conflicts + s2.conflicts, 0);
    assert_eq!(a.get_in(&notes(&a), b"k001").unwrap(), Some(b"edit".to_vec()));
}

/// Keeps the longer value (ties: the newer version).
struct LongestWins;

impl ConflictResolver for LongestWins {
    fn resolve(&self, _: &str, _: &[u8], older: &Entry, newer: &Entry) -> Winner {
        let len = |e: &Entry| e.value.as_ref().map_or(0, Vec::len);
        if len(older) > len(newer) {
            Winner::Older
        } else {
            Winner::Newer
        }
    }
}

#[test]
fn a_resolver_decides_concurrent_writes_whatever_the_order_of_arrival() {
    for a_first in [true, false] {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (create(da.path()), create(db_.path()));
        for db in [&a, &b] {
            db.replica().unwrap().set_resolver("notes", Arc::new(LongestWins));
        }
        let (ra, rb) = (a.replica().unwrap(), b.replica().unwrap());
        // The longer value is written first, so last-writer-wins would drop it.
        if a_first {
            ra.put(&notes(&a), b"k001", b"a much longer value").unwrap();
            rb.put(&notes(&b), b"k001", b"short").unwrap();
        } else {
            rb.put(&notes(&b), b"k001", b"a much longer value").unwrap();
            ra.put(&notes(&a), b"k001", b"short").unwrap();
        }
        if a_first {
            session(&a, &b);
        } else {
            session(&b, &a);
        }
        for db in [&a, &b] {
            assert_eq!(db.get_in(&notes(db), b"k001").unwrap(), Some(b"a much longer value".to_vec()));
        }
        assert_eq!(state(&a), state(&b));
    }
}

#[test]
fn rights_and_selective_sync_on_real_stores() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    let ra = a.replica().unwrap();
    ra.put(&notes(&a), b"shared/1", b"s").unwrap();
    ra.put(&notes(&a), b"private/1", b"p").unwrap();
    ra.put(&notes(&a), b"photos/1", b"ph").unwrap();
    // Selective: b asks a for shared/ only.
    let ask = SessionOptions::default().with_scopes(vec![Scope::prefix("notes", b"shared/")]);
    let (cb, ca) = mem_pair();
    let (r1, r2) = session_over(&b, &a, cb, ca, &ask, &SessionOptions::default());
    assert!(!r1.unwrap().full && !r2.unwrap().full);
    assert_eq!(b.get_in(&notes(&b), b"shared/1").unwrap(), Some(b"s".to_vec()));
    assert_eq!(b.get_in(&notes(&b), b"private/1").unwrap(), None);
    // b lets a write under shared/ only: a's other keys are refused and counted.
    let rights = Rights { read: vec![Scope::everything()], write: vec![Scope::prefix("notes", b"shared/")] };
    let (ca, cb) = mem_pair();
    let (r1, r2) = session_over(&a, &b, ca, cb, &SessionOptions::default(), &SessionOptions::default().with_rights(rights));
    let (s1, s2) = (r1.unwrap(), r2.unwrap());
    assert_eq!((s1.refused_by_peer, s2.refused_writes), (2, 2));
    assert_eq!(b.get_in(&notes(&b), b"private/1").unwrap(), None);
    assert_eq!(b.get_in(&notes(&b), b"photos/1").unwrap(), None);
    assert!(b.replica().unwrap().fingerprints_match_versions().unwrap());
}

#[test]
fn malformed_and_out_of_turn_frames_end_the_session_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = create(dir.path());
    b.replica().unwrap().put(&notes(&b), b"k001", b"v").unwrap();
    let before = state(&b);
    let hello = sync::proto::encode(&sync::proto::Message::Hello {
        replica: sync::ReplicaId(77),
        hlc: sync::Hlc::new(sync::hlc::wall_clock_ms(), 0),
        scopes: vec![Scope::everything()],
    });
    let v = sync::Version { hlc: sync::Hlc::new(sync::hlc::wall_clock_ms(), 0), replica: sync::ReplicaId(77) };
    let push = sync::proto::encode(&sync::proto::Message::Round {
        checks: vec![],
        push: vec![sync::proto::ScopedEntry {
            scope: 0,
            entry: Entry { key: b"k001".to_vec(), version: v, prev: v, value: Some(b"evil".to_vec()) },
        }],
        want: vec![],
        refused: vec![],
    });
    let mut cut = push.clone();
    cut.truncate(push.len() - 1);
    let mut bad_scope = push.clone();
    // Header 3, no checks (1), one entry (1), then its scope index u16:
    // scope index 9 was never agreed.
    bad_scope[5] = 9;
    let far_future = sync::proto::encode(&sync::proto::Message::Hello {
        replica: sync::ReplicaId(77),
        hlc: sync::Hlc::new(sync::hlc::wall_clock_ms() + 3_600_000, 0),
        scopes: vec![Scope::everything()],
    });
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("garbage first", vec![b"\x00garbage".to_vec()]),
        ("round before hello", vec![push.clone()]),
        ("truncated round", vec![hello.clone(), cut]),
        ("unknown scope", vec![hello.clone(), bad_scope]),
        ("clock an hour ahead", vec![far_future]),
        ("two hellos", vec![hello.clone(), hello.clone()]),
    ];
    for (name, frames) in cases {
        let (mut ours, mut theirs) = mem_pair();
        let result = std::thread::scope(|s| {
            let h = s.spawn(|| b.replica().unwrap().respond(&mut theirs, &SessionOptions::default()));
            for (i, f) in frames.iter().enumerate() {
                ours.send(f).unwrap();
                if i == 0 && f == &hello {
                    ours.recv().unwrap().unwrap(); // HelloAck
                }
            }
            h.join().unwrap()
        });
        let err = result.expect_err(name);
        assert!(matches!(err, SessionError::Malformed(_) | SessionError::Protocol(_) | SessionError::ClockSkew(_)), "{name}: {err}");
        // The peer was told why.
        let reply = ours.recv().unwrap().unwrap();
        assert!(matches!(sync::proto::decode(&reply), Ok(sync::proto::Message::Error { .. })), "{name}");
        assert_eq!(state(&b), before, "{name} changed the store");
    }
}

#[test]
fn a_cut_at_any_frame_leaves_both_stores_consistent_and_a_rerun_converges() {
    for at in 0..4 {
        for fault in [Fault::CutBefore, Fault::CutAfter, Fault::Truncate { keep: 9 }] {
            let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (a, b) = (create(da.path()), create(db_.path()));
            let (ra, rb) = (a.replica().unwrap(), b.replica().unwrap());
            for i in 0..40 {
                ra.put(&notes(&a), format!("k{i:03}").as_bytes(), b"a").unwrap();
                rb.put(&notes(&b), format!("k{:03}", 40 + i).as_bytes(), b"b").unwrap();
            }
            let (ca, cb) = mem_pair();
            let _ = session_over(&a, &b, FaultyChannel::new(ca, at, fault), cb, &SessionOptions::default(), &SessionOptions::default());
            assert!(ra.fingerprints_match_versions().unwrap() && rb.fingerprints_match_versions().unwrap());
            session(&a, &b);
            assert_eq!(state(&a), state(&b), "{fault:?} at {at}");
            assert_eq!(a.scan_prefix_in(&notes(&a), b"").unwrap().count(), 80);
        }
    }
}

#[test]
fn tombstones_are_kept_until_every_peer_has_seen_them_and_never_resurrect() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<Db> = dirs.iter().map(|d| create(d.path())).collect();
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);
    let ids: Vec<_> = stores.iter().map(|s| s.replica().unwrap().id()).collect();
    a.replica().unwrap().put(&notes(a), b"k001", b"v").unwrap();
    session(a, b);
    session(a, c);
    a.replica().unwrap().delete(&notes(a), b"k001").unwrap();
    let ra = a.replica().unwrap();
    // No peer has seen the tombstone: nothing is collected.
    assert_eq!(ra.collect_tombstones(&[ids[1], ids[2]]).unwrap(), 0);
    session(a, b);
    // b has seen it, c has not (c's watermark predates the tombstone).
    assert_eq!(ra.collect_tombstones(&[ids[1], ids[2]]).unwrap(), 0);
    assert_eq!(ra.collect_tombstones(&[ids[1]]).unwrap(), 1, "b alone has seen it");
    assert!(ra.fingerprints_match_versions().unwrap());
    // Every replica collects once every peer it names has seen the tombstone:
    // the peer it came from has; another peer has once a session with it
    // began after the tombstone arrived.
    let dirs2: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<Db> = dirs2.iter().map(|d| create(d.path())).collect();
    let (a, b, c) = (&stores[0], &stores[1], &stores[2]);
    let ids: Vec<_> = stores.iter().map(|s| s.replica().unwrap().id()).collect();
    a.replica().unwrap().put(&notes(a), b"k001", b"v").unwrap();
    session(a, b);
    session(a, c);
    session(b, c);
    a.replica().unwrap().delete(&notes(a), b"k001").unwrap();
    session(a, b);
    session(a, c);
    assert_eq!(b.replica().unwrap().collect_tombstones(&[ids[0]]).unwrap(), 1, "came from a");
    // c's session with b began before the tombstone arrived at c.
    assert_eq!(c.replica().unwrap().collect_tombstones(&[ids[0], ids[1]]).unwrap(), 0, "b not known to have seen it");
    session(c, a);
    session(b, c);
    assert_eq!(c.replica().unwrap().collect_tombstones(&[ids[0], ids[1]]).unwrap(), 1);
    assert_eq!(a.replica().unwrap().collect_tombstones(&[ids[1], ids[2]]).unwrap(), 1);
    for (x, y) in [(0, 1), (1, 2), (2, 0)] {
        session(&stores[x], &stores[y]);
    }
    for s in &stores {
        assert_eq!(s.get_in(&notes(s), b"k001").unwrap(), None, "no resurrection");
    }
}

#[test]
fn replicas_hold_a_handle_per_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = create(dir.path());
    let r1: Replica<'_> = db.replica().unwrap();
    let r2 = db.replica().unwrap();
    assert_eq!(r1.id(), r2.id());
}

#[test]
fn an_entry_from_beyond_the_drift_bound_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let b = create(dir.path());
    let now = sync::hlc::wall_clock_ms();
    let hello = sync::proto::encode(&sync::proto::Message::Hello {
        replica: sync::ReplicaId(77),
        hlc: sync::Hlc::new(now, 0),
        scopes: vec![Scope::everything()],
    });
    let entry = |hlc: u64, key: &[u8]| sync::proto::ScopedEntry {
        scope: 0,
        entry: Entry {
            key: key.to_vec(),
            version: sync::Version { hlc: sync::Hlc::new(hlc, 0), replica: sync::ReplicaId(77) },
            prev: sync::Version::default(),
            value: Some(b"v".to_vec()),
        },
    };
    let round = sync::proto::encode(&sync::proto::Message::Round {
        checks: vec![],
        push: vec![entry(now + 3_600_000, b"k001"), entry(now, b"k002")],
        want: vec![],
        refused: vec![],
    });
    let (mut ours, mut theirs) = mem_pair();
    let stats = std::thread::scope(|s| {
        let h = s.spawn(|| b.replica().unwrap().respond(&mut theirs, &SessionOptions::default()));
        ours.send(&hello).unwrap();
        ours.recv().unwrap().unwrap();
        ours.send(&round).unwrap();
        let reply = sync::proto::decode(&ours.recv().unwrap().unwrap()).unwrap();
        let sync::proto::Message::Reply { refused, .. } = reply else { panic!("expected a Reply") };
        assert_eq!(refused.iter().map(|k| k.key.clone()).collect::<Vec<_>>(), vec![b"k001".to_vec()]);
        ours.send(&sync::proto::encode(&sync::proto::Message::Done)).unwrap();
        h.join().unwrap().unwrap()
    });
    assert_eq!((stats.entries_received, stats.entries_applied, stats.refused_writes), (2, 1, 1));
    assert_eq!(b.get_in(&notes(&b), b"k001").unwrap(), None);
    assert_eq!(b.get_in(&notes(&b), b"k002").unwrap(), Some(b"v".to_vec()));
    let next = b.replica().unwrap().put(&notes(&b), b"k003", b"x").unwrap();
    assert!(next.hlc.physical_ms() < now + 60_000, "the refused timestamp did not move the clock");
}
