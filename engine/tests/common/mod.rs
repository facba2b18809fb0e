//! What the engine's integration tests share: the passphrase and credential
//! their stores are made with, and the options most of them open stores with.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod cli;
pub mod netns;

use std::collections::BTreeMap;
use std::io::Read;
use std::ops::Bound;
use std::path::Path;

use rand::{RngCore, SeedableRng};

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

/// `n` bytes from a seeded generator: incompressible, and equal for equal seeds.
pub fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Blob `key` read whole, or `None`; the bytes read must match the length
/// the reader reports.
pub fn read_blob(db: &Db, key: &[u8]) -> Option<Vec<u8>> {
    let mut r = db.blobs().unwrap().reader(key).unwrap()?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out.len() as u64, r.len());
    Some(out)
}

/// The names of the blob files in `dir`, sorted.
pub fn blob_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".blob"))
        .collect();
    v.sort();
    v
}
