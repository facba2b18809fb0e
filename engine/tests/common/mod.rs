//! What the engine's integration tests share: the passphrase and credential
//! their stores are made with, and the options most of them open stores with.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use synapsed_storage::{Credential, Db, Options};

/// The passphrase of the test stores (given to the CLI as well).
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The credential of the test stores.
pub fn cred() -> Credential {
    Credential::passphrase(PASSPHRASE)
}

/// Tiny structures (many flushes, compactions and blocks from little data),
/// a cheap key derivation, and no background thread, so that a test decides
/// when flushes and compactions happen.
pub fn options() -> Options {
    Options::tiny_for_tests().with_background_compaction(false)
}

/// The newest WAL segment in the directory of a closed store, or `None` if it
/// has none.
pub fn newest_wal(dir: &Path) -> Option<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wal"))
        .max()
}

/// Every live keyspace's pairs, in creation order; the default keyspace is
/// named "" (first).
pub fn keyspace_contents(db: &Db) -> Vec<(String, BTreeMap<Vec<u8>, Vec<u8>>)> {
    db.keyspaces()
        .iter()
        .map(|ks| {
            let pairs = db.range_in(ks, Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect();
            (if ks.id() == 0 { String::new() } else { ks.name().to_string() }, pairs)
        })
        .collect()
}
