//! No plaintext of the document store on disk: document bodies, field names,
//! collection names, index terms and text tokens are markers, and every file
//! under the store directory is searched for each marker (and for its halves)
//! after the WAL-only stage, after a flush and compaction, and after close.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;

use serde_json::json;
use synapsed_storage::docs::{IndexSpec, Query};
use synapsed_storage::{Compression, Db};

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_no_markers(dir: &Path, markers: &[String], stage: &str) {
    let mut all = Vec::new();
    files(dir, &mut all);
    for path in all {
        let bytes = std::fs::read(&path).unwrap();
        for m in markers {
            for needle in [m.as_str(), &m[..m.len() / 2], &m[m.len() / 2..]] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{stage}: {needle:?} in plaintext in {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn document_bodies_fields_terms_and_tokens_never_reach_disk_in_plaintext() {
    for compression in [Compression::None, Compression::Zstd(3)] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::create(dir.path(), &common::cred(), common::options().with_compression(compression)).unwrap();
        let m = |role: &str| format!("CANARYDOC{role}{:08x}", rand::random::<u32>());
        let (coll, field, value, word, id) = (m("coll"), m("field"), m("value"), m("word"), m("id"));
        let markers = vec![coll.clone(), field.clone(), value.clone(), word.clone(), id.clone()];
        let docs = db.docs();
        docs.create_index(&coll, &IndexSpec::ordered(format!("{field}.inner"))).unwrap();
        docs.create_index(&coll, &IndexSpec::hashed("h")).unwrap();
        docs.create_index(&coll, &IndexSpec::text("body")).unwrap();
        for i in 0..200 {
            docs.put(
                &coll,
                &json!({"_id": format!("{id}-{i}"), field.clone(): {"inner": format!("{value}{i}")}, "h": value.clone(),
                        "body": format!("lorem {word} ipsum {i}")}),
            )
            .unwrap();
        }
        assert_no_markers(dir.path(), &markers, "WAL only");
        let hits = docs.query(&coll, &Query::new(json!({"$text": word.to_uppercase()}))).unwrap();
        assert_eq!(hits.documents.len(), 200);
        db.flush().unwrap();
        db.compact_range(None, None).unwrap();
        for ks in db.keyspaces() {
            db.compact_range_in(&ks, None, None).unwrap();
        }
        assert_no_markers(dir.path(), &markers, "after flush and compaction");
        db.close().unwrap();
        assert_no_markers(dir.path(), &markers, "after close");
        let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
        assert_eq!(db.docs().query(&coll, &Query::new(json!({"h": value}))).unwrap().documents.len(), 200);
        assert!(db.docs().check(&coll).unwrap().problems.is_empty());
        db.close().unwrap();
    }
}
