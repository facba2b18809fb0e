//! Queries answered by a scan of every body: bodies that cannot match are
//! ruled out on their bytes before parsing, which must never rule out a match
//! (escaped strings, non-ASCII, array elements, nested fields) and still counts
//! every body as examined.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use serde_json::{json, Value};
use synapsed_storage::docs::Query;
use synapsed_storage::Db;

#[test]
fn a_scan_finds_every_match_whatever_the_string_looks_like() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let tricky = ["plain", "quote \" and \\ backslash", "tab\tnew\nline", "Grüße 東京", "\u{1}ctl", "c1", "c10"];
    let mut docs = Vec::new();
    for (i, s) in tricky.iter().enumerate() {
        docs.push(json!({"_id": format!("s{i}"), "s": s, "n": i}));
        docs.push(json!({"_id": format!("a{i}"), "s": ["other", s], "n": i}));
        docs.push(json!({"_id": format!("o{i}"), "o": {"s": s}, "n": i}));
        docs.push(json!({"_id": format!("k{i}"), (*s): "as a key", "n": i}));
    }
    db.docs().import("c", &docs).unwrap();
    let all = docs.len() as u64;
    for s in tricky {
        let r = db.docs().query("c", &Query::new(json!({"s": s}))).unwrap();
        let mut got: Vec<&str> = r.documents.iter().map(|d| d["_id"].as_str().unwrap()).collect();
        got.sort_unstable();
        let i = tricky.iter().position(|t| *t == s).unwrap();
        assert_eq!(got, [format!("a{i}"), format!("s{i}")], "{s:?}");
        assert_eq!((r.explain.index, r.explain.examined), (None, all));

        let r = db.docs().query("c", &Query::new(json!({"o.s": {"$in": [s, "absent"]}, "n": {"$gte": 0}}))).unwrap();
        assert_eq!(r.documents.iter().map(|d| d["_id"].clone()).collect::<Vec<Value>>(), [json!(format!("o{i}"))]);
        assert_eq!(r.explain.examined, all);
    }
    let r = db.docs().query("c", &Query::new(json!({"s": "c1", "n": 5}))).unwrap();
    assert_eq!(r.documents.len(), 2);
    assert!(db.docs().query("c", &Query::new(json!({"s": "nowhere"}))).unwrap().documents.is_empty());
}
