//! Replicated keys that merge: counters (PN-counter) and sets (add-wins
//! observed-remove set) in keyspaces with those merge operators, and
//! documents merged field by field; concurrent writes on several stores
//! converge to the same values and versions whatever the order of sessions,
//! and a peer's state that is not a merge state is refused.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use synapsed_storage::{mem_pair, Db, Keyspace, KeyspaceOptions, Options, SessionOptions, SortedSetUnion, SyncStats, U64AddOperator};

fn opts() -> Options {
    common::options().with_merge_operator("hits", Arc::new(U64AddOperator)).with_merge_operator("tags", Arc::new(SortedSetUnion))
}

fn create(dir: &Path) -> Db {
    let db = Db::create(dir, &common::cred(), opts()).unwrap();
    for name in ["hits", "tags", "notes"] {
        let ks = db.create_keyspace(name, KeyspaceOptions::default()).unwrap();
        db.replica().unwrap().replicate(&ks).unwrap();
    }
    db.replica().unwrap().replicate_documents("cards").unwrap();
    db
}

fn ks(db: &Db, name: &str) -> Keyspace {
    db.keyspace(name).unwrap().unwrap()
}

fn session(a: &Db, b: &Db) -> (SyncStats, SyncStats) {
    let (mut ca, mut cb) = mem_pair();
    std::thread::scope(|s| {
        let responder = s.spawn(move || {
            let r = b.replica().unwrap().respond(&mut cb, &SessionOptions::default());
            drop(cb);
            r
        });
        let r1 = a.replica().unwrap().initiate(&mut ca, &SessionOptions::default());
        drop(ca);
        (r1.unwrap(), responder.join().unwrap().unwrap())
    })
}

fn counter(db: &Db, key: &[u8]) -> Option<u64> {
    db.get_in(&ks(db, "hits"), key).unwrap().map(|b| U64AddOperator::decode(&b).unwrap())
}

fn set(db: &Db, key: &[u8]) -> Vec<Vec<u8>> {
    db.get_in(&ks(db, "tags"), key).unwrap().map(|b| SortedSetUnion::decode(&b).unwrap()).unwrap_or_default()
}

fn add(n: i64) -> [u8; 8] {
    U64AddOperator::encode(n as u64)
}

/// Everything two replicas must agree on: plain values and versions.
fn fingerprint(db: &Db) -> Vec<(String, Vec<u8>, Vec<u8>, String)> {
    let r = db.replica().unwrap();
    let mut out = Vec::new();
    for name in ["hits", "tags", "notes", "doc:cards"] {
        let k = ks(db, name);
        for item in db.scan_prefix_in(&k, b"").unwrap() {
            let (key, value) = item.unwrap();
            let v = r.version_of(&k, &key).unwrap().unwrap().0;
            out.push((name.to_owned(), key, value, format!("{v:?}")));
        }
    }
    out
}

#[test]
fn concurrent_increments_and_decrements_all_count_on_every_replica() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dbs: Vec<Db> = dirs.iter().map(|d| create(d.path())).collect();
    let (a, b, c) = (&dbs[0], &dbs[1], &dbs[2]);
    a.replica().unwrap().merge(&ks(a, "hits"), b"page", &add(5)).unwrap();
    session(a, b);
    assert_eq!(counter(b, b"page"), Some(5));
    // Concurrent: a +2, b +3 and -1, c +10 (never seen the others).
    a.replica().unwrap().merge(&ks(a, "hits"), b"page", &add(2)).unwrap();
    b.replica().unwrap().merge(&ks(b, "hits"), b"page", &add(3)).unwrap();
    b.replica().unwrap().merge(&ks(b, "hits"), b"page", &add(-1)).unwrap();
    c.replica().unwrap().merge(&ks(c, "hits"), b"page", &add(10)).unwrap();
    assert_eq!(counter(a, b"page"), Some(7));
    assert_eq!(counter(b, b"page"), Some(7));
    session(c, a);
    session(b, c);
    session(a, b);
    for db in &dbs {
        assert_eq!(counter(db, b"page"), Some(19), "every increment counts once");
        assert!(db.replica().unwrap().fingerprints_match_versions().unwrap());
    }
    assert_eq!(fingerprint(a), fingerprint(b));
    assert_eq!(fingerprint(b), fingerprint(c));
    // Converged: an idle session sends nothing; no conflict was reported.
    let (sa, sb) = session(a, c);
    assert_eq!((sa.entries_sent, sb.entries_sent, sa.rounds), (0, 0, 0));
    assert!(a.replica().unwrap().conflicts().unwrap().is_empty());
    // A session repeated changes nothing (applying a state twice is a no-op).
    b.replica().unwrap().merge(&ks(b, "hits"), b"page", &add(1)).unwrap();
    session(a, b);
    session(a, b);
    assert_eq!(counter(a, b"page"), Some(20));
}

#[test]
fn put_and_delete_on_a_replicated_counter_move_it_by_the_difference() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    let hits = ks(&a, "hits");
    a.replica().unwrap().put(&hits, b"n", &U64AddOperator::encode(10)).unwrap();
    session(&a, &b);
    // a sets 4 (a change of -6) while b adds 1: both changes hold.
    a.replica().unwrap().put(&hits, b"n", &U64AddOperator::encode(4)).unwrap();
    b.replica().unwrap().merge(&ks(&b, "hits"), b"n", &add(1)).unwrap();
    session(&b, &a);
    assert_eq!((counter(&a, b"n"), counter(&b, b"n")), (Some(5), Some(5)));
    a.replica().unwrap().delete(&hits, b"n").unwrap();
    session(&a, &b);
    assert_eq!((counter(&a, b"n"), counter(&b, b"n")), (Some(0), Some(0)));
    // A malformed operand or value is refused, nothing written.
    assert!(a.replica().unwrap().merge(&hits, b"n", b"short").is_err());
    assert!(a.replica().unwrap().put(&hits, b"n", b"short").is_err());
    assert!(a.replica().unwrap().merge(&ks(&a, "notes"), b"n", &add(1)).is_err());
    assert_eq!(counter(&a, b"n"), Some(0));
}

#[test]
fn sets_keep_concurrent_adds_and_an_add_wins_over_a_concurrent_remove() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    let (ta, tb) = (ks(&a, "tags"), ks(&b, "tags"));
    a.replica().unwrap().merge(&ta, b"post", &SortedSetUnion::encode([&b"rust"[..], b"db"])).unwrap();
    session(&a, &b);
    assert_eq!(set(&b, b"post"), vec![b"db".to_vec(), b"rust".to_vec()]);
    // b removes "db" and "rust"; a concurrently re-adds "rust" and adds "sync".
    b.replica().unwrap().remove_from_set(&tb, b"post", &[b"db", b"rust"]).unwrap();
    a.replica().unwrap().merge(&ta, b"post", &SortedSetUnion::encode([&b"rust"[..], b"sync"])).unwrap();
    session(&b, &a);
    let expected = vec![b"rust".to_vec(), b"sync".to_vec()];
    assert_eq!(set(&a, b"post"), expected);
    assert_eq!(set(&b, b"post"), expected);
    assert_eq!(fingerprint(&a), fingerprint(&b));
    // A remove that saw the add holds everywhere.
    a.replica().unwrap().remove_from_set(&ta, b"post", &[b"sync"]).unwrap();
    session(&a, &b);
    assert_eq!(set(&b, b"post"), vec![b"rust".to_vec()]);
    // A put assigns (removes what it lacks), a delete empties.
    b.replica().unwrap().put(&tb, b"post", &SortedSetUnion::encode([&b"x"[..]])).unwrap();
    session(&b, &a);
    assert_eq!(set(&a, b"post"), vec![b"x".to_vec()]);
    b.replica().unwrap().delete(&tb, b"post").unwrap();
    session(&a, &b);
    assert!(set(&a, b"post").is_empty());
    assert_eq!(fingerprint(&a), fingerprint(&b));
}

#[test]
fn concurrent_edits_of_different_fields_of_a_document_both_survive() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    a.docs().create_index("cards", &synapsed_storage::docs::IndexSpec::ordered("title")).unwrap();
    let ra = a.replica().unwrap();
    ra.put_document("cards", &json!({"_id": "c1", "title": "Milk", "qty": 1, "note": "x"})).unwrap();
    session(&a, &b);
    assert_eq!(b.docs().get("cards", "c1").unwrap(), Some(json!({"_id": "c1", "title": "Milk", "qty": 1, "note": "x"})));
    // a renames; b changes the quantity and drops the note, concurrently.
    ra.put_document("cards", &json!({"_id": "c1", "title": "Oat milk", "qty": 1, "note": "x"})).unwrap();
    b.replica().unwrap().put_document("cards", &json!({"_id": "c1", "title": "Milk", "qty": 3})).unwrap();
    session(&b, &a);
    let merged = json!({"_id": "c1", "title": "Oat milk", "qty": 3});
    assert_eq!(a.docs().get("cards", "c1").unwrap(), Some(merged.clone()));
    assert_eq!(b.docs().get("cards", "c1").unwrap(), Some(merged));
    assert_eq!(fingerprint(&a), fingerprint(&b));
    // The document store's indexes follow the merged document.
    let found = a.docs().query("cards", &synapsed_storage::docs::Query::new(json!({"title": "Oat milk"}))).unwrap();
    assert_eq!(found.documents.len(), 1);
    // Concurrent edits of one field: the later write wins on both.
    ra.put_document("cards", &json!({"_id": "c1", "title": "A", "qty": 3})).unwrap();
    // Later by the clock: two writes in one millisecond tie on time and go by
    // replica id instead.
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.replica().unwrap().put_document("cards", &json!({"_id": "c1", "title": "B", "qty": 3})).unwrap();
    session(&a, &b);
    assert_eq!(a.docs().get("cards", "c1").unwrap().unwrap()["title"], json!("B"));
    assert_eq!(b.docs().get("cards", "c1").unwrap().unwrap()["title"], json!("B"));
    // A delete reaches the other document store.
    b.replica().unwrap().delete_document("cards", "c1").unwrap();
    session(&b, &a);
    assert_eq!(a.docs().get("cards", "c1").unwrap(), None);
    assert!(ra.put_document("other", &json!({"_id": "x"})).is_err(), "a collection not replicated");
}

#[test]
fn documents_already_in_a_collection_are_taken_in_when_it_is_replicated() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (create(da.path()), create(db_.path()));
    a.docs().put("books", &json!({"_id": "b1", "t": "Dune"})).unwrap();
    a.replica().unwrap().replicate_documents("books").unwrap();
    b.replica().unwrap().replicate_documents("books").unwrap();
    session(&a, &b);
    assert_eq!(b.docs().get("books", "b1").unwrap(), Some(json!({"_id": "b1", "t": "Dune"})));
}

#[test]
fn a_plain_value_sent_to_a_merging_keyspace_is_refused_and_changes_nothing() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path());
    // b's "hits" has no merge operator: its values are plain, last writer wins.
    let b = Db::create(db_.path(), &common::cred(), common::options()).unwrap();
    let hb = b.create_keyspace("hits", KeyspaceOptions::default()).unwrap();
    b.replica().unwrap().replicate(&hb).unwrap();
    b.replica().unwrap().put(&hb, b"page", &U64AddOperator::encode(99)).unwrap();
    a.replica().unwrap().merge(&ks(&a, "hits"), b"other", &add(1)).unwrap();
    let (sa, _) = session(&a, &b);
    assert!(sa.refused_writes >= 1, "{sa:?}");
    assert_eq!(counter(&a, b"page"), None);
    assert_eq!(counter(&a, b"other"), Some(1));
}

#[test]
fn merged_states_survive_a_reopen() {
    let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    {
        let (a, b) = (create(da.path()), create(db_.path()));
        a.replica().unwrap().merge(&ks(&a, "hits"), b"k", &add(2)).unwrap();
        b.replica().unwrap().merge(&ks(&b, "hits"), b"k", &add(3)).unwrap();
        session(&a, &b);
    }
    let a = Db::open(da.path(), &common::cred(), opts()).unwrap();
    let b = Db::open(db_.path(), &common::cred(), opts()).unwrap();
    a.replica().unwrap().merge(&ks(&a, "hits"), b"k", &add(1)).unwrap();
    session(&b, &a);
    assert_eq!((counter(&a, b"k"), counter(&b, b"k")), (Some(6), Some(6)));
}
