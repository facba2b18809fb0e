//! SIGKILL of a real process in the middle of blob puts, deletes and GC. The
//! child (this test binary again) runs a seeded mix of operations on a store
//! and reports each one as it begins and once it has returned; the parent
//! kills it at a random moment, then checks that `verify` is clean, that every
//! listed blob reads back whole as one of the contents it may have (the last
//! acknowledged one, or the one in flight), that a GC leaves the blob files at
//! most twice their live bytes, and, at the end, that deleting every blob and
//! collecting leaves no blob file at all.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use synapsed_storage::Db;

const CHILD_ENV: &str = "SYNAPSED_BLOB_KILL_CHILD";
const KEYS: u8 = 5;
const ROUNDS: u64 = 8;

/// Content of a put: shared segments (so chunks repeat across blobs), chosen by `seed`.
fn content(seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let parts = rng.gen_range(0..8);
    let mut out = Vec::new();
    for _ in 0..parts {
        let segment: u64 = rng.gen_range(0..10);
        let mut seg = vec![0u8; (segment as usize + 1) * 700_000];
        rand::rngs::StdRng::seed_from_u64(1000 + segment).fill_bytes(&mut seg);
        out.extend_from_slice(&seg);
    }
    out
}

fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// The child: runs operations until killed, reporting each on stdout.
fn child(dir: &std::path::Path, round: u64) {
    let db = Db::open(dir, &common::cred(), common::options()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    for step in 0.. {
        let key = format!("k{}", rng.gen_range(0..KEYS));
        match rng.gen_range(0..10) {
            0..=4 => {
                let data = content(round * 1_000_000 + step);
                println!("begin put {key} {}", hash(&data));
                db.blobs().unwrap().put(key.as_bytes(), &mut &data[..]).unwrap();
                println!("done put {key} {}", hash(&data));
            }
            5..=6 => {
                println!("begin rm {key}");
                db.blobs().unwrap().delete(key.as_bytes()).unwrap();
                println!("done rm {key}");
            }
            _ => {
                println!("begin gc");
                db.blobs().unwrap().gc().unwrap();
                println!("done gc");
            }
        }
    }
}

/// What a key may hold after a kill.
#[derive(Debug, Default, Clone)]
struct Possible {
    /// Hashes of contents it may hold; `None` for "absent".
    states: BTreeSet<Option<String>>,
}

fn read_hash(db: &Db, key: &[u8]) -> String {
    let mut r = db.blobs().unwrap().reader(key).unwrap().unwrap();
    let mut data = Vec::new();
    r.read_to_end(&mut data).unwrap();
    assert_eq!(data.len() as u64, r.len());
    hash(&data)
}

#[test]
fn sigkill_during_puts_deletes_and_gc_leaves_no_partial_blob_and_no_leaked_space() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (dir, round) = spec.rsplit_once(':').unwrap();
        child(std::path::Path::new(dir), round.parse().unwrap());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    Db::create(dir.path(), &common::cred(), common::options()).unwrap().close().unwrap();
    // What each key holds for sure (None: absent).
    let mut known: BTreeMap<String, Option<String>> = (0..KEYS).map(|k| (format!("k{k}"), None)).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut kills_in = BTreeSet::new();
    for round in 1..=ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sigkill_during_puts_deletes_and_gc_leaves_no_partial_blob_and_no_leaked_space", "--nocapture"])
            .env(CHILD_ENV, format!("{}:{round}", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1500)));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap).collect();
        // Replay the acknowledged operations; the last begun one may or may not have happened.
        let mut possible: BTreeMap<String, Possible> = BTreeMap::new();
        let mut in_flight: Option<Vec<String>> = None;
        for line in &lines {
            let words: Vec<String> = line.split(' ').map(str::to_string).collect();
            match words[0].as_str() {
                "begin" => in_flight = Some(words[1..].to_vec()),
                "done" => {
                    match words[1].as_str() {
                        "put" => {
                            known.insert(words[2].clone(), Some(words[3].clone()));
                        }
                        "rm" => {
                            known.insert(words[2].clone(), None);
                        }
                        _ => {}
                    }
                    in_flight = None;
                }
                // The test harness's own lines.
                _ => {}
            }
        }
        for (k, v) in &known {
            possible.entry(k.clone()).or_default().states.insert(v.clone());
        }
        if let Some(op) = &in_flight {
            kills_in.insert(op[0].clone());
            match op[0].as_str() {
                "put" => {
                    possible.get_mut(&op[1]).unwrap().states.insert(Some(op[2].clone()));
                }
                "rm" => {
                    possible.get_mut(&op[1]).unwrap().states.insert(None);
                }
                _ => {}
            }
        }

        let report = Db::verify(dir.path(), &common::cred(), common::options()).unwrap();
        assert!(report.is_ok(), "round {round}: {report:?}");
        let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
        let listed: BTreeMap<String, u64> =
            db.blobs().unwrap().list().unwrap().into_iter().map(|(k, n)| (String::from_utf8(k).unwrap(), n)).collect();
        for (key, p) in &possible {
            let now = listed.get(key).map(|_| read_hash(&db, key.as_bytes()));
            assert!(p.states.contains(&now), "round {round}: {key} holds {now:?}, possible {p:?} (last line {:?})", lines.last());
            known.insert(key.clone(), now);
        }
        let gc = db.blobs().unwrap().gc().unwrap();
        let stats = db.blobs().unwrap().stats().unwrap();
        assert!(stats.file_bytes <= 2 * stats.stored_bytes + stats.files * 128, "round {round}: space leaked after GC: {stats:?} {gc:?}");
        db.close().unwrap();
    }
    eprintln!("killed in: {kills_in:?}");
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    for k in 0..KEYS {
        db.blobs().unwrap().delete(format!("k{k}").as_bytes()).unwrap();
    }
    db.blobs().unwrap().gc().unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".blob"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
