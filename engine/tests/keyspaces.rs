//! Keyspaces: create, look up, list and drop; names and their rules; what
//! survives a reopen; ids never reused; and a store made without keyspaces
//! opening, reading and writing unchanged.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use synapsed_storage::{Argon2Params, Credential, Db, Error, KeyspaceOptions, Options, DEFAULT_KEYSPACE};

fn cred() -> Credential {
    Credential::passphrase("keyspace tests")
}

fn options(read_only: bool) -> Options {
    Options::tiny_for_tests().with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 }).with_read_only(read_only)
}

fn names(db: &Db) -> Vec<(u32, String)> {
    db.keyspaces().iter().map(|k| (k.id(), k.name().to_string())).collect()
}

fn open(dir: &Path) -> Db {
    Db::open(dir, &cred(), options(false)).unwrap()
}

#[test]
fn create_list_drop_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options(false)).unwrap();
    assert_eq!(names(&db), vec![(0, DEFAULT_KEYSPACE.to_string())]);
    let users = db.create_keyspace("users", KeyspaceOptions::default()).unwrap();
    assert_eq!((users.id(), users.name(), users.is_internal()), (1, "users", false));
    let idx = db.create_internal_keyspace("_doc_index", KeyspaceOptions::default()).unwrap();
    assert_eq!(idx.id(), 2);
    assert!(idx.is_internal());
    let temp = db.create_keyspace("temp \u{1f600}", KeyspaceOptions::default()).unwrap();
    assert_eq!(db.keyspace("users").unwrap(), Some(users.clone()));
    assert_eq!(db.keyspace(DEFAULT_KEYSPACE).unwrap().map(|k| k.id()), Some(0));
    assert_eq!(db.keyspace("nope").unwrap(), None);
    db.drop_keyspace(temp.name()).unwrap();
    assert_eq!(db.keyspace(temp.name()).unwrap(), None);
    assert_eq!(names(&db), vec![(0, "default".into()), (1, "users".into()), (2, "_doc_index".into())]);
    db.close().unwrap();

    let db = open(&dir);
    assert_eq!(names(&db), vec![(0, "default".into()), (1, "users".into()), (2, "_doc_index".into())]);
    // Ids are never reused, across reopens and after drops: the dropped one had 3.
    let again = db.create_keyspace(temp.name(), KeyspaceOptions::default()).unwrap();
    assert_eq!(again.id(), 4);
    db.drop_internal_keyspace("_doc_index").unwrap();
    db.close().unwrap();

    // Twice, so the keyspaces also come back from the snapshot the first reopen wrote.
    for _ in 0..2 {
        let db = open(&dir);
        assert_eq!(names(&db), vec![(0, "default".into()), (1, "users".into()), (4, temp.name().into())]);
        db.close().unwrap();
    }
    let db = open(&dir);
    assert_eq!(db.create_keyspace("next", KeyspaceOptions::default()).unwrap().id(), 5);
    db.close().unwrap();

    // A read-only handle lists them and refuses changes.
    let ro = Db::open(&dir, &cred(), options(true)).unwrap();
    assert_eq!(ro.keyspace("next").unwrap().map(|k| k.id()), Some(5));
    assert!(matches!(ro.create_keyspace("other", KeyspaceOptions::default()), Err(Error::ReadOnly(_))));
    assert!(matches!(ro.drop_keyspace("next"), Err(Error::ReadOnly(_))));
}

#[test]
fn names_are_checked_and_clear_errors_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options(false)).unwrap();
    let o = KeyspaceOptions::default;
    assert!(matches!(db.create_keyspace("", o()), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.create_keyspace(&"n".repeat(256), o()), Err(Error::InvalidArgument(_))));
    assert_eq!(db.create_keyspace(&"n".repeat(255), o()).unwrap().name().len(), 255);
    let internal = db.create_keyspace("_index", o());
    assert!(matches!(&internal, Err(Error::InvalidArgument(m)) if m.contains("reserved")), "{internal:?}");
    assert!(matches!(db.create_keyspace(DEFAULT_KEYSPACE, o()), Err(Error::KeyspaceExists(_))));
    db.create_keyspace("a", o()).unwrap();
    assert!(matches!(db.create_keyspace("a", o()), Err(Error::KeyspaceExists(n)) if n == "a"));
    assert!(matches!(db.drop_keyspace("b"), Err(Error::NoSuchKeyspace(n)) if n == "b"));
    assert!(matches!(db.drop_keyspace(DEFAULT_KEYSPACE), Err(Error::InvalidArgument(_))));
    db.create_internal_keyspace("_meta", o()).unwrap();
    assert!(matches!(db.drop_keyspace("_meta"), Err(Error::InvalidArgument(_))));
    assert!(matches!(db.create_internal_keyspace("_meta", o()), Err(Error::KeyspaceExists(_))));
    db.drop_keyspace("a").unwrap();
    assert!(matches!(db.drop_keyspace("a"), Err(Error::NoSuchKeyspace(_))));
    // None of the refusals stopped the store.
    db.put(b"k", b"v").unwrap();
    let expected = vec![(0, "default".to_string()), (1, "n".repeat(255)), (3, "_meta".to_string())];
    assert_eq!(names(&db), expected);
    db.close().unwrap();
    let db = open(&dir);
    assert_eq!(names(&db), expected);
    assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn a_store_made_without_keyspaces_opens_reads_and_writes_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = Db::create(&dir, &cred(), options(false)).unwrap();
    for i in 0..300u32 {
        db.put(format!("key{i:04}").as_bytes(), format!("value{i}").as_bytes()).unwrap();
    }
    db.flush().unwrap();
    db.put(b"in the wal", b"yes").unwrap();
    db.close().unwrap();

    let db = open(&dir);
    assert_eq!(names(&db), vec![(0, DEFAULT_KEYSPACE.to_string())]);
    assert_eq!(db.get(b"key0123").unwrap(), Some(b"value123".to_vec()));
    assert_eq!(db.get(b"in the wal").unwrap(), Some(b"yes".to_vec()));
    assert_eq!(db.scan_prefix(b"key").unwrap().count(), 300);
    db.put(b"after", b"1").unwrap();
    let ks = db.create_keyspace("added later", KeyspaceOptions::default()).unwrap();
    assert_eq!(ks.id(), 1);
    db.close().unwrap();

    let db = open(&dir);
    assert_eq!(names(&db), vec![(0, DEFAULT_KEYSPACE.to_string()), (1, "added later".to_string())]);
    assert_eq!(db.get(b"after").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.scan_prefix(b"key").unwrap().count(), 300);
}

/// A store written by the code from before keyspaces existed (the CLI of that
/// version, see `tests/data/store_before_keyspaces/HOW`): it opens read-only
/// and read-write, reads back, holds only the default keyspace, and takes a
/// keyspace afterwards.
#[test]
fn a_store_written_before_keyspaces_existed_opens_and_takes_keyspaces() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store_before_keyspaces");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture.join("store")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let cred = Credential::passphrase("before keyspaces");
    let check = |db: &Db| {
        assert_eq!(names(db), vec![(0, DEFAULT_KEYSPACE.to_string())]);
        assert_eq!(db.get(b"user:1").unwrap(), Some(b"alice".to_vec()));
        assert_eq!(db.get(b"user:2").unwrap(), None, "deleted before the compaction");
        assert_eq!(db.get(b"late").unwrap(), Some(b"in the log".to_vec()));
        assert_eq!(db.scan_prefix(b"bulk:").unwrap().count(), 100);
    };
    let ro = Db::open(&dir, &cred, options(true)).unwrap();
    check(&ro);
    drop(ro);
    let db = Db::open(&dir, &cred, options(false)).unwrap();
    check(&db);
    let ks = db.create_keyspace("new", KeyspaceOptions::default()).unwrap();
    assert_eq!(ks.id(), 1);
    db.put(b"after", b"upgrade").unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, &cred, options(false)).unwrap();
    assert_eq!(names(&db), vec![(0, DEFAULT_KEYSPACE.to_string()), (1, "new".to_string())]);
    assert_eq!(db.get(b"after").unwrap(), Some(b"upgrade".to_vec()));
    assert_eq!(db.get(b"user:1").unwrap(), Some(b"alice".to_vec()));
}

/// Creates racing from several threads: one create per name wins, the others
/// get `KeyspaceExists`, and every keyspace gets its own id.
#[test]
fn racing_creates_of_one_name_make_one_keyspace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let db = std::sync::Arc::new(Db::create(&dir, &cred(), options(false)).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                let shared = db.create_keyspace("shared", KeyspaceOptions::default());
                let own = db.create_keyspace(&format!("own{t}"), KeyspaceOptions::default()).unwrap();
                (shared, own.id())
            })
        })
        .collect();
    let mut winners = 0;
    let mut ids = Vec::new();
    for t in threads {
        let (shared, own) = t.join().unwrap();
        match shared {
            Ok(ks) => {
                winners += 1;
                ids.push(ks.id());
            }
            Err(Error::KeyspaceExists(name)) => assert_eq!(name, "shared"),
            Err(e) => panic!("racing create failed with {e}"),
        }
        ids.push(own);
    }
    assert_eq!(winners, 1);
    ids.sort_unstable();
    assert_eq!(ids, (1..=9).collect::<Vec<u32>>(), "ids 1..=9, each once");
    assert_eq!(db.keyspaces().len(), 10);
}
