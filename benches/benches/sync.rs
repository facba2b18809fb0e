//! Sync between two stores: bytes on the wire, round trips and time of a
//! session for d = 0, 1, 10 and 1,000 changed entries among n, against (a)
//! sending every entry and (b) a negentropy reconciliation (the `negentropy`
//! crate, frame limit off) of the same two sets of (key, version) ids, whose
//! bytes cover only the set difference, to which the changed entries must be
//! added. Prints one row per (n, d); `SYNC_BENCH_N` sets the sizes (default
//! `10000,100000`). Run: `cargo bench -p synapsed-benches --bench sync`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::Instant;

use negentropy::{Id, Negentropy, NegentropyStorageVector};
use sha2::{Digest, Sha256};
use synapsed_storage::{Credential, Db, KeyspaceOptions, Options, SessionOptions, SyncPolicy, SyncStats, WriteBatch};
use sync::mem::mem_pair;

fn options() -> Options {
    Options::default().with_sync(SyncPolicy::Never).with_insecure_kdf_for_tests(true)
}

fn session(a: &Db, b: &Db) -> (SyncStats, f64) {
    let (mut ca, mut cb) = mem_pair();
    let t = Instant::now();
    let stats = std::thread::scope(|s| {
        let h = s.spawn(|| b.replica().unwrap().respond(&mut cb, &SessionOptions::default()).unwrap());
        let stats = a.replica().unwrap().initiate(&mut ca, &SessionOptions::default()).unwrap();
        drop(ca);
        h.join().unwrap();
        stats
    });
    (stats, t.elapsed().as_secs_f64() * 1e3)
}

fn key(i: u64) -> Vec<u8> {
    format!("item/{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).into_bytes()
}

fn value(i: u64, gen: u64) -> Vec<u8> {
    format!("value {i} generation {gen} {}", "x".repeat(64)).into_bytes()
}

/// Bytes of negentropy's messages to reconcile n (timestamp, id) items where
/// d keys were rewritten on one side: that side holds them as new items at
/// the newest timestamps (a rewrite is a new event), the other still holds
/// their old items, spread over the range as the keys are here.
fn negentropy_bytes(n: u64, d: u64) -> (u64, u32, f64) {
    let id = |i: u64, gen: u64| {
        let h: [u8; 32] = Sha256::digest([i.to_le_bytes(), gen.to_le_bytes()].concat()).into();
        Id::from_byte_array(h)
    };
    let changed: std::collections::BTreeSet<u64> = (0..d).map(|i| i * 7919 % n).collect();
    let mut sa = NegentropyStorageVector::with_capacity(n as usize);
    let mut sb = NegentropyStorageVector::with_capacity(n as usize);
    for i in 0..n {
        if !changed.contains(&i) {
            sa.insert(i, id(i, 0)).unwrap();
        }
        sb.insert(i, id(i, 0)).unwrap();
    }
    for (j, i) in changed.iter().enumerate() {
        sa.insert(n + j as u64, id(*i, 1)).unwrap();
    }
    sa.seal().unwrap();
    sb.seal().unwrap();
    let t = Instant::now();
    let mut client = Negentropy::borrowed(&sa, 0).unwrap();
    let mut server = Negentropy::borrowed(&sb, 0).unwrap();
    let mut msg = client.initiate().unwrap();
    let mut bytes = msg.len() as u64;
    let mut rounds = 0;
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        let reply = server.reconcile(&msg).unwrap();
        bytes += reply.len() as u64;
        rounds += 1;
        match client.reconcile_with_ids(&reply, &mut have, &mut need).unwrap() {
            Some(next) => {
                bytes += next.len() as u64;
                msg = next;
            }
            None => break,
        }
    }
    assert_eq!((have.len() as u64, need.len() as u64), (d, d));
    (bytes, rounds, t.elapsed().as_secs_f64() * 1e3)
}

fn main() {
    let sizes: Vec<u64> = std::env::var("SYNC_BENCH_N")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let cred = Credential::passphrase("bench");
    println!("n\td\tbytes\trounds\tms\tentry_bytes_all\tneg_bytes\tneg_rounds\tneg_ms\tentry_bytes_d");
    for n in sizes {
        let (da, db_) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Db::create(da.path(), &cred, options()).unwrap();
        let b = Db::create(db_.path(), &cred, options()).unwrap();
        let ksa = a.create_keyspace("items", KeyspaceOptions::default()).unwrap();
        let ksb = b.create_keyspace("items", KeyspaceOptions::default()).unwrap();
        let t = Instant::now();
        let mut all_bytes = 0u64;
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let mut batch = WriteBatch::new();
            for &i in chunk {
                let (k, v) = (key(i), value(i, 0));
                all_bytes += (2 + 4 + 32 + 1 + 4 + k.len() + v.len()) as u64;
                batch.put_in(&ksa, &k, &v);
            }
            a.write(batch).unwrap();
        }
        a.replica().unwrap().replicate(&ksa).unwrap();
        b.replica().unwrap().replicate(&ksb).unwrap();
        eprintln!("n = {n}: loaded and stamped in {:.1} s", t.elapsed().as_secs_f64());
        let (full, ms) = session(&a, &b);
        println!("{n}\tall\t{}\t{}\t{ms:.1}\t{all_bytes}\t-\t-\t-\t{all_bytes}", full.bytes_sent + full.bytes_received, full.rounds);
        for (gen, d) in [0u64, 1, 10, 1000].into_iter().enumerate() {
            let r = a.replica().unwrap();
            let mut d_bytes = 0u64;
            for i in 0..d {
                let (k, v) = (key(i * 7919 % n), value(i, gen as u64 + 1));
                d_bytes += (2 + 4 + 32 + 1 + 4 + k.len() + v.len()) as u64;
                r.put(&ksa, &k, &v).unwrap();
            }
            let (stats, ms) = session(&a, &b);
            assert_eq!(stats.entries_sent, d);
            let (nb, nr, nms) = negentropy_bytes(n, d);
            println!(
                "{n}\t{d}\t{}\t{}\t{ms:.2}\t{all_bytes}\t{nb}\t{nr}\t{nms:.2}\t{d_bytes}",
                stats.bytes_sent + stats.bytes_received,
                stats.rounds + 1
            );
        }
    }
}
