//! The README's library example, run as written (only its store directory is
//! a fresh temporary one): `readme_example_is_this_test` checks that the
//! README still shows exactly this code.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use synapsed_storage::{Credential, Db, KeyspaceOptions, Options, U64AddOperator, WriteBatch, DEFAULT_KEYSPACE};

// README example begin
fn example(dir: &std::path::Path) -> synapsed_storage::Result<()> {
    let cred = Credential::passphrase("correct horse battery staple");
    // A 64-bit counter merge operator for the default keyspace (see below).
    let options = Options::default().with_merge_operator(DEFAULT_KEYSPACE, Arc::new(U64AddOperator));
    let db = Db::create(dir, &cred, options)?; // Db::open for an existing store
    db.put(b"user:1", b"alice")?;

    let mut batch = WriteBatch::new(); // applied atomically, durable when write returns
    batch.put(b"user:2", b"bob");
    batch.delete(b"user:1");
    db.write(batch)?;

    let snapshot = db.snapshot(); // a consistent read view
    db.put(b"user:2", b"robert")?;
    assert_eq!(db.get_at(b"user:2", &snapshot)?, Some(b"bob".to_vec()));

    for item in db.scan_prefix(b"user:")? {
        let (key, value) = item?;
        println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
    }

    // Keyspaces: named key spaces of one store, each with its own tables; one
    // batch spans them atomically and a snapshot sees all of them at once.
    let chats = db.create_keyspace("chats", KeyspaceOptions::default())?;
    let mut batch = WriteBatch::new();
    batch.put_in(&chats, b"chat:7/msg:1", b"hello").put(b"unread:7", b"1");
    db.write(batch)?;
    assert_eq!(db.get_in(&chats, b"chat:7/msg:1")?, Some(b"hello".to_vec()));
    assert_eq!(db.get(b"chat:7/msg:1")?, None); // not in the default keyspace

    // A merge operand is folded on read: no read-modify-write for a counter.
    db.merge(b"visits", &U64AddOperator::encode(1))?;
    db.merge(b"visits", &U64AddOperator::encode(2))?;
    assert_eq!(db.get(b"visits")?, Some(U64AddOperator::encode(3).to_vec()));

    // A range delete is one tombstone, whatever the number of keys it covers.
    db.delete_range(b"user:", b"user;")?;
    assert_eq!(db.get(b"user:2")?, None);

    // The change feed hands out every committed change after a seqno, in
    // commit order (kept for longer with `Options::with_change_feed_retention`).
    for change in db.changes_since(0)? {
        let change = change?;
        println!("#{} in keyspace {}: {:?}", change.seqno, change.keyspace, change.kind);
    }

    db.drop_keyspace("chats")?; // its tables are removed (overwritten with secure delete)
    db.close()
}
// README example end

#[test]
fn readme_example_runs() {
    let tmp = tempfile::tempdir().unwrap();
    example(&tmp.path().join("store")).unwrap();
}

#[test]
fn readme_example_is_this_test() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("```rust,no_run\n").unwrap() + "```rust,no_run\n".len();
    let end = start + readme[start..].find("```\n").unwrap();
    let shown = readme[start..end].replace("fn main() -> synapsed_storage::Result<()> {\n    let dir = std::path::Path::new(\"/tmp/example-store\");\n", "");
    let me = include_str!("readme_example.rs");
    let from = me.find("// README example begin\n").unwrap();
    let body_start = from + me[from..].find("{\n").unwrap() + 2;
    let body_end = me.find("}\n// README example end").unwrap();
    let uses_end = me.find("\n// README example begin").unwrap();
    let uses_start = me.find("use std::sync::Arc;").unwrap();
    let mine = format!("{}\n{}}}\n", &me[uses_start..uses_end], &me[body_start..body_end]);
    let lines = |text: &str| text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(lines(&shown), lines(&mine), "README.md's library example and engine/tests/readme_example.rs differ");
}
