//! Space overhead acceptance test: 1,000,000 random 24-byte keys with random
//! 150-byte values, bulk-loaded in batches of 10,000 and fully compacted, must take
//! at most 1.15x the raw key + value bytes on disk (every file in the directory
//! counted). Random bytes do not compress, so this measures the real cost of the
//! format and its encryption: tags, block framing, index, filter, internal-key
//! trailers and the key files.
//!
//! `SYNAPSED_SIZE_KEYS=<n>` runs a smaller load while working on the format.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use synapsed_storage::{Argon2Params, Credential, Db, Options, SyncPolicy, WriteBatch};

const KEY_BYTES: usize = 24;
const VALUE_BYTES: usize = 150;
const BATCH: usize = 10_000;
const MAX_RATIO: f64 = 1.15;

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[test]
fn a_million_random_pairs_compacted_take_at_most_1_15x_their_size() {
    let keys: usize = std::env::var("SYNAPSED_SIZE_KEYS").ok().map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let cred = Credential::passphrase("size test");
    let options = Options::default()
        .with_sync(SyncPolicy::Never)
        .with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
        .with_insecure_kdf_for_tests(true);
    let started = Instant::now();
    let db = Db::create(&dir, &cred, options.clone()).unwrap();
    let mut key = [0u8; KEY_BYTES];
    let mut value = [0u8; VALUE_BYTES];
    let mut batch = WriteBatch::new();
    let mut sample = Vec::new();
    for i in 0..keys {
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut value);
        batch.put(key, value);
        if i % 100_003 == 0 {
            sample.push((key, value));
        }
        if batch.len() == BATCH {
            db.write(std::mem::take(&mut batch)).unwrap();
        }
    }
    if !batch.is_empty() {
        db.write(batch).unwrap();
    }
    let loaded = started.elapsed();
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    let compacted = started.elapsed();
    for (k, v) in &sample {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]), "a loaded pair does not read back");
    }
    let stats = db.stats();
    db.close().unwrap();

    let raw = (keys * (KEY_BYTES + VALUE_BYTES)) as u64;
    let disk = dir_bytes(&dir);
    let ratio = disk as f64 / raw as f64;
    println!(
        "{keys} pairs (seed {seed}): raw {raw} bytes, on disk {disk} bytes, ratio {ratio:.4} \
         (load {:.1?}, load+flush+compaction {:.1?}); tables per level {:?}",
        loaded, compacted, stats.files_per_level
    );
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), e.metadata().unwrap().len()))
        .collect();
    files.sort();
    let non_tables: Vec<_> = files.iter().filter(|(n, _)| !n.ends_with(".sst")).collect();
    println!("files other than tables: {non_tables:?}");
    assert!(ratio <= MAX_RATIO, "{disk} bytes on disk for {raw} raw bytes: ratio {ratio:.4} > {MAX_RATIO}");
    // Not a vacuous pass: the data is really there, so the ratio cannot be below ~1.
    assert!(ratio >= 1.0, "ratio {ratio:.4} below 1 for incompressible data: the data is missing");
}
