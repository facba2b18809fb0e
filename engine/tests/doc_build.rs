//! Index builds in slices: a build stepped (or run on another thread) while
//! documents are written meanwhile ends with exactly the entries and text
//! statistics the documents call for; the index is used only once built; a
//! crash mid-build leaves an unused index that the next build starts over.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;

use serde_json::{json, Value};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Db, SimVfs};

/// Document `i` of generation `g`: a number, some words, a unique code.
fn doc(i: u32, g: u32) -> Value {
    json!({"_id": format!("d{i:05}"), "v": (i + g) % 7, "t": format!("w{} w{} common", i % 13, (i + g) % 5), "code": format!("c{i}-{g}")})
}

fn load(db: &Db, n: u32) {
    let docs: Vec<Value> = (0..n).map(|i| doc(i, 0)).collect();
    for chunk in docs.chunks(1000) {
        db.docs().import("c", chunk).unwrap();
    }
}

fn count(db: &Db, filter: Value) -> (usize, Option<String>) {
    let r = db.docs().query("c", &Query::new(filter)).unwrap();
    (r.documents.len(), r.explain.index)
}

fn assert_agrees(db: &Db) {
    let report = db.docs().check("c").unwrap();
    assert!(report.problems.is_empty(), "{:?}", &report.problems[..report.problems.len().min(5)]);
}

/// Writes on both sides of the build cursor between slices: updates, deletes
/// and new documents. Without the cursor rule the text statistics (and the
/// entries of documents changed before their slice) would disagree.
#[test]
fn a_build_stepped_between_writes_ends_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    load(&db, 3500);
    let docs = db.docs();
    let mut v = docs.start_index_build("c", &IndexSpec::ordered("v")).unwrap();
    let mut t = docs.start_index_build("c", &IndexSpec::text("t")).unwrap();
    let mut u = docs.start_index_build("c", &IndexSpec::ordered("code").with_unique(true)).unwrap();
    assert!(!v.step().unwrap() && !t.step().unwrap() && !u.step().unwrap(), "3,500 documents take several slices");
    assert_eq!(count(&db, json!({"v": 3})).1, None, "an index is not used before it is built");
    assert!(docs.indexes("c").unwrap().iter().all(|i| !i.ready));

    let mut g = 1;
    while !(v.is_done() && t.is_done() && u.is_done()) {
        // Before the cursor (built), after it (not yet), and at both ends.
        for i in [5, 400, 999, 1000, 1500, 2600, 3499] {
            docs.put("c", &doc(i, g)).unwrap();
        }
        docs.delete("c", &format!("d{:05}", 10 + g)).unwrap();
        docs.delete("c", &format!("d{:05}", 3000 + g)).unwrap();
        docs.put("c", &json!({"_id": format!("a{g}"), "v": 3, "t": "fresh common", "code": format!("a{g}")})).unwrap();
        docs.put("c", &json!({"_id": format!("z{g}"), "v": 3, "t": "fresh", "code": format!("z{g}")})).unwrap();
        assert_agrees(&db);
        v.step().unwrap();
        t.step().unwrap();
        u.step().unwrap();
        g += 1;
    }
    assert!(v.documents() >= 3500 - 2 * u64::from(g));
    assert!(docs.indexes("c").unwrap().iter().all(|i| i.ready));
    assert_agrees(&db);
    let (n, index) = count(&db, json!({"v": 3}));
    assert_eq!(index.as_deref(), Some("v"));
    let all = db.docs().query("c", &Query::new(json!({}))).unwrap().documents;
    assert_eq!(n, all.iter().filter(|d| d["v"] == json!(3)).count());
    let (n, index) = count(&db, json!({"$text": "fresh common"}));
    assert_eq!((n, index.as_deref()), (g as usize - 1, Some("t")));
    assert_eq!(count(&db, json!({"code": "c1501-0"})), (1, Some("code".into())));

    // Another kind on a field with an index is refused.
    assert!(docs.start_index_build("c", &IndexSpec::ordered("v").with_unique(true)).is_err());
    // Duplicates on both sides of a unique build's cursor fail it, and the
    // index is removed again.
    docs.put("c", &json!({"_id": "d00001", "k": 1})).unwrap();
    docs.put("c", &json!({"_id": "d03400", "k": 1})).unwrap();
    let mut k = docs.start_index_build("c", &IndexSpec::ordered("k").with_unique(true)).unwrap();
    let mut failed = None;
    for _ in 0..5 {
        match k.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert!(matches!(failed, Some(synapsed_storage::Error::UniqueViolation { .. })), "{failed:?}");
    assert!(docs.indexes("c").unwrap().iter().all(|i| i.field != "k"), "the failed unique index is removed");
    assert_agrees(&db);
}

/// A build run on its own thread while another thread writes.
#[test]
fn a_build_on_another_thread_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    load(&db, 5000);
    let build = db.docs().start_index_build("c", &IndexSpec::text("t")).unwrap();
    std::thread::scope(|s| {
        let builder = s.spawn(move || build.run());
        for g in 1..40u32 {
            for i in (g * 7..5000).step_by(611) {
                db.docs().put("c", &doc(i, g)).unwrap();
            }
            db.docs().delete("c", &format!("d{:05}", g * 113)).unwrap();
        }
        builder.join().unwrap().unwrap();
    });
    assert!(db.docs().indexes("c").unwrap()[0].ready);
    assert_agrees(&db);
    let all = db.docs().query("c", &Query::new(json!({}))).unwrap().documents;
    let want = all.iter().filter(|d| d["t"].as_str().unwrap().split(' ').any(|w| w == "w3")).count();
    assert_eq!(count(&db, json!({"$text": "W3"})), (want, Some("t".into())));
}

/// A power loss mid-build: after reopening, the index is not ready and not
/// used, writes go on, and the next build clears it and starts over.
#[test]
fn a_crash_mid_build_restarts_cleanly() {
    let sim: Arc<SimVfs> = SimVfs::new();
    let dir = std::path::Path::new("/doc-build/db");
    let options = || common::options().with_vfs(sim.clone());
    let db = Db::create(dir, &common::cred(), options()).unwrap();
    load(&db, 2500);
    let mut build = db.docs().start_index_build("c", &IndexSpec::text("t")).unwrap();
    assert!(!build.step().unwrap());
    db.docs().put("c", &doc(1, 1)).unwrap();
    db.docs().put("c", &doc(2400, 1)).unwrap();
    drop(build);
    sim.crash();
    drop(db);

    let db = Db::open(dir, &common::cred(), options()).unwrap();
    let info = db.docs().indexes("c").unwrap();
    assert_eq!((info.len(), info[0].ready), (1, false));
    assert!(db.docs().query("c", &Query::new(json!({"$text": "common"}))).is_err(), "no built text index to answer $text");
    assert_agrees(&db);
    db.docs().put("c", &doc(7, 2)).unwrap();
    db.docs().create_index("c", &IndexSpec::text("t")).unwrap();
    assert!(db.docs().indexes("c").unwrap()[0].ready);
    assert_agrees(&db);
    assert_eq!(count(&db, json!({"$text": "common"})), (2500, Some("t".into())));
}

/// A query made before an index exists does not keep the collection's old
/// index list: the next query sees the new index.
#[test]
fn queries_see_an_index_created_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    load(&db, 50);
    assert_eq!(count(&db, json!({"v": 2})).1, None);
    db.docs().create_index("c", &IndexSpec::ordered("v")).unwrap();
    assert_eq!(count(&db, json!({"v": 2})), (7, Some("v".into())));
    db.docs().create_index("c", &IndexSpec::hashed("code")).unwrap();
    assert_eq!(count(&db, json!({"code": "c3-0"})), (1, Some("code".into())));
}
