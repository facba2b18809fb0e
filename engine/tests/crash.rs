//! Crash consistency through the real binary: a `synapsed-storage batch` child
//! commits numbered batches while the parent reads its acknowledgements and kills
//! it with SIGKILL at a random moment, many times over on the same store (with a
//! small memtable, so kills also land in flushes and compactions). After each
//! kill the store is opened and must hold every acknowledged batch in full and no
//! part of any other: the batches present are exactly 1..=m for some m at least
//! the last acknowledged one, and every key holds the value of the newest present
//! batch that wrote it.
//!
//! The seed is printed; `SYNAPSED_CRASH_SEED=<seed>` replays a run and
//! `SYNAPSED_CRASH_CYCLES=<n>` changes the number of kills.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::BIN;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use synapsed_storage::{Argon2Params, Credential, Db, Options};

const PASSPHRASE: &str = "crash test passphrase";
/// Distinct `k/<i>` keys; each batch writes 10 of them.
const KEYS: usize = 30;
const KEYS_PER_BATCH: usize = 10;
const DEFAULT_CYCLES: u64 = 60;

fn options(read_only: bool) -> Options {
    Options::tiny_for_tests().with_argon2(Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 }).with_read_only(read_only)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")))
}

/// The store's state, which must equal the first `m` batches applied in order.
fn check_store(dir: &Path, written: &[Vec<usize>], acked: usize, sent: usize, read_only: bool, ctx: &str) -> usize {
    let cred = Credential::passphrase(PASSPHRASE);
    let db = Db::open(dir, &cred, options(read_only)).unwrap_or_else(|e| panic!("{ctx}: open after kill failed: {e}"));
    let mut markers = Vec::new();
    for item in db.scan_prefix(b"batch/").unwrap() {
        let (k, v) = item.unwrap_or_else(|e| panic!("{ctx}: scan failed: {e}"));
        let n: usize = std::str::from_utf8(&k[6..]).unwrap().parse().unwrap();
        assert_eq!(v, n.to_string().as_bytes(), "{ctx}: marker batch/{n} has a wrong value");
        markers.push(n);
    }
    let m = markers.len();
    assert_eq!(markers, (1..=m).collect::<Vec<_>>(), "{ctx}: the batches present are not a prefix 1..=m");
    assert!(m >= acked, "{ctx}: batch {acked} was acknowledged but only 1..={m} survived");
    assert!(m <= sent, "{ctx}: batch {m} present but only {sent} were sent");

    let mut expected: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (n, keys) in written.iter().enumerate().take(m) {
        for i in keys {
            expected.insert(format!("k/{i:02}").into_bytes(), (n + 1).to_string().into_bytes());
        }
    }
    let got: BTreeMap<Vec<u8>, Vec<u8>> =
        db.scan_prefix(b"k/").unwrap().map(|r| r.unwrap_or_else(|e| panic!("{ctx}: scan failed: {e}"))).collect();
    if got != expected {
        let show = |m: &BTreeMap<Vec<u8>, Vec<u8>>| {
            m.iter()
                .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        panic!(
            "{ctx}: with batches 1..={m} present, the keys are not those batches applied in order (a partial batch?)\n \
             got:      {}\n expected: {}",
            show(&got),
            show(&expected)
        );
    }
    for (k, v) in &expected {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{ctx}: get disagrees with scan");
    }
    db.close().unwrap();
    m
}

#[test]
fn acknowledged_batches_survive_sigkill_and_none_is_partial() {
    let seed = env_u64("SYNAPSED_CRASH_SEED").unwrap_or_else(rand::random);
    let cycles = env_u64("SYNAPSED_CRASH_CYCLES").unwrap_or(DEFAULT_CYCLES);
    println!("crash test seed {seed} ({cycles} cycles); replay with SYNAPSED_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    Db::create(&dir, &Credential::passphrase(PASSPHRASE), options(false)).unwrap().close().unwrap();

    // written[n - 1] = the keys batch n wrote; only batches known to be in the store are kept.
    let mut written: Vec<Vec<usize>> = Vec::new();
    let mut kills_after_ack = 0;
    for cycle in 0..cycles {
        let ctx = format!("seed {seed} cycle {cycle}");
        let stderr_path = tmp.path().join("child.stderr");
        let mut child = Command::new(BIN)
            .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
            .arg("--db")
            .arg(&dir)
            .args(["--memtable-size-bytes", "4096", "batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();

        let base = written.len();
        let batches = rng.gen_range(1..=30usize);
        let mut input = String::new();
        let mut sent = written.clone();
        for b in 0..batches {
            let n = base + b + 1;
            let mut keys: Vec<usize> = (0..KEYS).collect();
            keys.shuffle(&mut rng);
            keys.truncate(KEYS_PER_BATCH);
            let mut lines: Vec<String> = keys.iter().map(|i| format!("put k/{i:02} {n}\n")).collect();
            lines.insert(rng.gen_range(0..=lines.len()), format!("put batch/{n:06} {n}\n"));
            input.extend(lines);
            input.push_str("commit\n");
            sent.push(keys);
        }
        // Everything fits in the pipe buffer; a child that already died just closes it.
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes()).and_then(|()| stdin.flush());

        // A fifth of the kills land before the child can have acknowledged anything
        // (during open and WAL recovery); the others after a random number of acks.
        let wait_for = if rng.gen_bool(0.2) { 0 } else { rng.gen_range(0..=batches) };
        let mut acks = BufReader::new(child.stdout.take().unwrap());
        let mut acked = 0;
        for expect in 1..=wait_for {
            let mut line = String::new();
            acks.read_line(&mut line).unwrap();
            if line.is_empty() {
                let status = child.wait().unwrap();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("{ctx}: the child stopped before acknowledging batch {expect} ({status}): {stderr}");
            }
            assert_eq!(line, format!("committed {expect}\n"), "{ctx}");
            acked = base + expect;
        }
        if wait_for > 0 {
            kills_after_ack += 1;
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..3000)));
        }
        let _ = child.kill();
        let status = child.wait().unwrap();
        drop(stdin);
        if let Some(code) = status.code() {
            // It finished on its own before the kill; that is only fine if it exited cleanly
            // (it cannot, with input still open, unless it failed).
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("{ctx}: the child exited with status {code} instead of being killed: {stderr}");
        }

        let read_only = cycle % 2 == 1;
        let m = check_store(&dir, &sent, acked, sent.len(), read_only, &ctx);
        sent.truncate(m);
        written = sent;
    }
    assert!(kills_after_ack > 0, "no kill happened after an acknowledgement; the test proved nothing");
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    println!("{cycles} kills, {} batches in the store at the end, files: {names:?}", written.len());
    // The small memtable must have made the children flush, or no kill could land in a flush.
    assert!(written.len() < 40 || tables > 0, "{} batches but no table: flushes never ran", written.len());
    // A read-write open cuts a torn tail the last kill may have left (verify reports
    // one as a finding), so what verify sees afterwards must be intact.
    Db::open(&dir, &Credential::passphrase(PASSPHRASE), options(false)).unwrap().close().unwrap();
    let report = Db::verify(&dir, &Credential::passphrase(PASSPHRASE), options(true)).unwrap();
    assert!(report.is_ok(), "verify after the kills: {:?}", report.damaged);
}
