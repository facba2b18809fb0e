//! The document store through its library API: documents, indexes, queries,
//! the planner's choices, paging, full-text search, and bad input that must
//! write nothing.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use serde_json::{json, Value};
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Db, Error};

fn store() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    (dir, db)
}

fn ids(docs: &[Value]) -> Vec<String> {
    docs.iter().map(|d| d["_id"].as_str().unwrap().to_owned()).collect()
}

fn people(db: &Db) {
    let docs: Vec<Value> = (0..50)
        .map(|i| json!({"_id": format!("p{i:02}"), "age": i % 10, "city": if i % 2 == 0 {"Oslo"} else {"Rome"}, "address": {"zip": format!("{:05}", i)}}))
        .collect();
    assert_eq!(db.docs().import("people", &docs).unwrap(), 50);
}

#[test]
fn documents_round_trip_and_survive_reopen() {
    let (dir, db) = store();
    let docs = db.docs();
    docs.put("c", &json!({"_id": "a", "x": 1, "nested": {"y": [1, 2, {"z": null}]}})).unwrap();
    docs.put_json("c", br#"{"_id": "b", "x": 2}"#).unwrap();
    assert_eq!(docs.get("c", "a").unwrap().unwrap()["nested"]["y"][2]["z"], Value::Null);
    docs.put("c", &json!({"_id": "a", "x": 3})).unwrap();
    assert_eq!(docs.get("c", "a").unwrap(), Some(json!({"_id": "a", "x": 3})));
    assert!(docs.delete("c", "b").unwrap());
    assert!(!docs.delete("c", "b").unwrap());
    assert_eq!(docs.get("c", "b").unwrap(), None);
    assert_eq!(docs.get("nope", "a").unwrap(), None);
    db.close().unwrap();
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    assert_eq!(db.docs().get("c", "a").unwrap(), Some(json!({"_id": "a", "x": 3})));
    assert_eq!(db.docs().collections().unwrap(), ["c"]);
}

#[test]
fn an_index_built_over_existing_documents_is_used_and_agrees() {
    let (_dir, db) = store();
    people(&db);
    let docs = db.docs();
    let q = Query::new(json!({"age": 3}));
    let before = docs.query("people", &q).unwrap();
    assert_eq!(before.explain.index, None);
    assert_eq!(before.explain.examined, 50);
    docs.create_index("people", &IndexSpec::ordered("age")).unwrap();
    docs.create_index("people", &IndexSpec::hashed("city")).unwrap();
    docs.create_index("people", &IndexSpec::ordered("address.zip").with_unique(true)).unwrap();
    let after = docs.query("people", &q).unwrap();
    assert_eq!(after.explain.index.as_deref(), Some("age"));
    assert_eq!(after.explain.examined, 5);
    assert_eq!(ids(&after.documents), ids(&before.documents));
    // The most selective index wins: 5 ages of 3 against 25 Oslo people.
    let both = docs.query("people", &Query::new(json!({"city": "Oslo", "age": {"$in": [2, 4]}}))).unwrap();
    assert_eq!(both.explain.index.as_deref(), Some("age"));
    assert_eq!(both.explain.returned, 10);
    let zip = docs.query("people", &Query::new(json!({"city": "Oslo", "address.zip": "00004"}))).unwrap();
    assert_eq!(zip.explain.index.as_deref(), Some("address.zip"));
    assert_eq!((zip.explain.examined, zip.explain.returned), (1, 1));
    // A hashed index answers equality but not ranges.
    let range = docs.query("people", &Query::new(json!({"city": {"$gt": "P"}}))).unwrap();
    assert_eq!(range.explain.index, None);
    assert_eq!(range.explain.returned, 25);
    let report = docs.check("people").unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.documents, 50);
    assert_eq!(report.entries, 150);
}

#[test]
fn numbers_match_whatever_their_json_form() {
    let (_dir, db) = store();
    let docs = db.docs();
    docs.create_index("n", &IndexSpec::ordered("v")).unwrap();
    docs.put_json("n", br#"{"_id": "a", "v": 1}"#).unwrap();
    docs.put_json("n", br#"{"_id": "b", "v": 1.0}"#).unwrap();
    docs.put_json("n", br#"{"_id": "c", "v": 1e0}"#).unwrap();
    docs.put_json("n", br#"{"_id": "d", "v": "1"}"#).unwrap();
    let r = docs.query("n", &Query::new(serde_json::from_str(r#"{"v": 1.00}"#).unwrap())).unwrap();
    assert_eq!(ids(&r.documents), ["a", "b", "c"]);
    assert_eq!(r.explain.index.as_deref(), Some("v"));
}

#[test]
fn ranges_sorting_limits_and_cursors() {
    let (_dir, db) = store();
    people(&db);
    let docs = db.docs();
    docs.create_index("people", &IndexSpec::ordered("age")).unwrap();
    let q = Query::new(json!({"age": {"$gte": 7}})).with_sort("age", true).with_limit(4);
    let page = docs.query("people", &q).unwrap();
    assert_eq!(ids(&page.documents), ["p49", "p39", "p29", "p19"]);
    assert_eq!(page.explain.index.as_deref(), Some("age"));
    assert_eq!(page.explain.examined, 4, "index order stops at the limit");
    let mut all = ids(&page.documents);
    let mut cursor = page.next_cursor.clone();
    while let Some(c) = cursor {
        let next = docs.query("people", &q.clone().with_cursor(c)).unwrap();
        all.extend(ids(&next.documents));
        cursor = next.next_cursor;
    }
    assert_eq!(all.len(), 15);
    let mut expected: Vec<(i64, String)> = (0..50).filter(|i| i % 10 >= 7).map(|i| (i % 10, format!("p{i:02}"))).collect();
    expected.sort();
    expected.reverse();
    assert_eq!(all, expected.into_iter().map(|e| e.1).collect::<Vec<_>>());
    // Unindexed sort with an $or, ascending; paging by _id without a sort.
    let r = docs.query("people", &Query::new(json!({"$or": [{"age": 1}, {"city": "Oslo", "age": 0}]})).with_sort("address.zip", false)).unwrap();
    assert_eq!(ids(&r.documents), ["p00", "p01", "p10", "p11", "p20", "p21", "p30", "p31", "p40", "p41"]);
    assert_eq!(r.explain.index.as_deref(), Some("age"));
    let p1 = docs.query("people", &Query::new(json!({})).with_limit(20)).unwrap();
    let p2 = docs.query("people", &Query::new(json!({})).with_limit(40).with_cursor(p1.next_cursor.unwrap())).unwrap();
    assert_eq!(ids(&p2.documents).first().map(String::as_str), Some("p20"));
    assert_eq!(p2.documents.len(), 30);
    assert_eq!(p2.next_cursor, None);
    assert!(docs.query("people", &Query::new(json!({"age": {"$exists": false}, "zz": {"$ne": 1}}))).unwrap().documents.is_empty());
}

#[test]
fn full_text_all_words_any_case_and_ranked() {
    let (_dir, db) = store();
    let docs = db.docs();
    docs.put("notes", &json!({"_id": "1", "body": "The quick brown fox"})).unwrap();
    docs.create_index("notes", &IndexSpec::text("body")).unwrap();
    docs.put("notes", &json!({"_id": "2", "body": "QUICK thinking, quick fox, quick!"})).unwrap();
    docs.put("notes", &json!({"_id": "3", "body": "A slow brown dog and a very long text about nothing much at all here"})).unwrap();
    docs.put("notes", &json!({"_id": "4", "body": ["Grüße aus Köln", "fox"]})).unwrap();
    let r = docs.query("notes", &Query::new(json!({"$text": "fox QUICK"}))).unwrap();
    assert_eq!(ids(&r.documents), ["1", "2"]);
    assert_eq!(r.explain.index.as_deref(), Some("body"));
    assert_eq!(r.explain.examined, 2);
    let r = docs.query("notes", &Query::new(json!({"$text": "köln"}))).unwrap();
    assert_eq!(ids(&r.documents), ["4"]);
    let ranked = docs.query("notes", &Query::new(json!({"$text": "quick"})).with_rank(true)).unwrap();
    assert_eq!(ids(&ranked.documents), ["2", "1"]);
    let scores = ranked.scores.unwrap();
    assert!(scores[0] > scores[1] && scores[1] > 0.0, "{scores:?}");
    docs.delete("notes", "2").unwrap();
    assert_eq!(ids(&docs.query("notes", &Query::new(json!({"$text": "quick"}))).unwrap().documents), ["1"]);
    assert!(docs.check("notes").unwrap().problems.is_empty());
}

fn assert_invalid(r: Result<impl std::fmt::Debug, Error>) {
    match r {
        Err(Error::InvalidArgument(_)) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let (_dir, db) = store();
    let docs = db.docs();
    docs.create_index("u", &IndexSpec::ordered("email").with_unique(true)).unwrap();
    docs.put("u", &json!({"_id": "a", "email": "a@x"})).unwrap();
    assert_invalid(docs.put_json("u", b"{not json"));
    assert_invalid(docs.put_json("u", b"[1, 2]"));
    assert_invalid(docs.put_json("u", br#"{"email": "b@x"}"#));
    assert_invalid(docs.put_json("u", br#"{"_id": 7}"#));
    let deep = format!("{{\"_id\":\"d\",\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
    assert_invalid(docs.put_json("u", deep.as_bytes()));
    assert_invalid(docs.query("u", &Query::new(json!({"email": {"$regex": "a"}}))));
    assert_invalid(docs.query("u", &Query::new(json!({"$where": "1"}))));
    assert_invalid(docs.query("u", &Query::new(json!({"$text": "x"}))));
    assert_invalid(docs.query("u", &Query::new(json!({})).with_sort("missing", false)));
    // A unique clash in the middle of an import: nothing of the import is written.
    let batch = [json!({"_id": "b", "email": "b@x"}), json!({"_id": "c", "email": "a@x"})];
    match docs.import("u", &batch) {
        Err(Error::UniqueViolation { field, id, existing, .. }) => assert_eq!((field.as_str(), id.as_str(), existing.as_str()), ("email", "c", "a")),
        other => panic!("expected a unique violation, got {other:?}"),
    }
    let clash_in_import = [json!({"_id": "b", "email": "z@x"}), json!({"_id": "c", "email": "z@x"})];
    assert!(matches!(docs.import("u", &clash_in_import), Err(Error::UniqueViolation { .. })));
    let all = docs.query("u", &Query::new(json!({}))).unwrap();
    assert_eq!(ids(&all.documents), ["a"]);
    // Replacing a document keeps its own claim; a unique index existing
    // documents violate is refused and left absent.
    docs.put("u", &json!({"_id": "a", "email": "a@x", "n": 1})).unwrap();
    docs.put("u", &json!({"_id": "b", "email": "b@x", "n": 1})).unwrap();
    assert!(matches!(docs.create_index("u", &IndexSpec::hashed("n").with_unique(true)), Err(Error::UniqueViolation { .. })));
    assert_eq!(docs.indexes("u").unwrap().len(), 1);
    assert_invalid(docs.create_index("u", &IndexSpec::hashed("email")));
    assert!(docs.check("u").unwrap().problems.is_empty());
}
