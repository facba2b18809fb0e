//! Writer processes killed with SIGKILL while they create and drop keyspaces,
//! write batches across them and run range deletes in them (background flushes
//! and compactions on, tiny memtables, every commit synced): after each kill
//! the reopened store holds exactly the state after some number of the
//! writer's steps, at least the ones it acknowledged (it runs ahead of the
//! acknowledgements this process reads), never part of a batch, never a
//! dropped keyspace's data.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{cred, keyspace_contents};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::{Db, KeyspaceOptions, Options, SyncPolicy, WriteBatch};

/// The environment variables that make `keyspace_child_writer` the writer process.
const CHILD_DIR_ENV: &str = "SYNAPSED_KS_CRASH_DIR";
const CHILD_SEED_ENV: &str = "SYNAPSED_KS_CRASH_SEED";

type Pairs = BTreeMap<Vec<u8>, Vec<u8>>;

/// A store's state: its keyspaces in creation order ("" is the default one),
/// each with its pairs.
type State = Vec<(String, Pairs)>;

/// One step of a writer.
#[derive(Debug, Clone)]
enum Step {
    Create(String),
    Drop(String),
    /// A batch of (keyspace, key, value or delete).
    Batch(Vec<(String, Vec<u8>, Option<Vec<u8>>)>),
    /// A range delete [start, end) in a keyspace.
    DeleteRange(String, Vec<u8>, Vec<u8>),
}

fn options() -> Options {
    Options::tiny_for_tests().with_sync(SyncPolicy::EveryCommit)
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:02}").into_bytes()
}

/// The next step, from the keyspaces `state` holds; the writer and the parent
/// draw the same steps from the same seed and state.
fn next_step(rng: &mut StdRng, state: &State, tag: &str, n: u64) -> Step {
    let names: Vec<&String> = state.iter().map(|(name, _)| name).collect();
    let others: Vec<&String> = names.iter().copied().filter(|n| !n.is_empty()).collect();
    match rng.gen_range(0..100) {
        0..=5 if others.len() < 3 => Step::Create(format!("{tag}k{n}")),
        6..=9 if !others.is_empty() => Step::Drop(others[rng.gen_range(0..others.len())].clone()),
        10..=24 => {
            let ks = names[rng.gen_range(0..names.len())].clone();
            let (a, b) = (rng.gen_range(0..40), rng.gen_range(0..40));
            let (lo, hi) = if a <= b { (a, b + 1) } else { (b, a + 1) };
            Step::DeleteRange(ks, key(lo), key(hi))
        }
        _ => {
            let ops = (0..rng.gen_range(1..8))
                .map(|i| {
                    let ks = names[rng.gen_range(0..names.len())].clone();
                    let value = rng.gen_bool(0.8).then(|| format!("{tag}-{n}-{i}").into_bytes());
                    (ks, key(rng.gen_range(0..40)), value)
                })
                .collect();
            Step::Batch(ops)
        }
    }
}

/// `step` applied to a model state.
fn apply(state: &mut State, step: &Step) {
    let pairs = |state: &mut State, ks: &str| -> usize { state.iter().position(|(n, _)| n == ks).unwrap() };
    match step {
        Step::Create(name) => state.push((name.clone(), Pairs::new())),
        Step::Drop(name) => state.retain(|(n, _)| n != name),
        Step::Batch(ops) => {
            for (ks, k, v) in ops {
                let i = pairs(state, ks);
                match v {
                    Some(v) => state[i].1.insert(k.clone(), v.clone()),
                    None => state[i].1.remove(k),
                };
            }
        }
        Step::DeleteRange(ks, start, end) => {
            let i = pairs(state, ks);
            state[i].1.retain(|k, _| k < start || k >= end);
        }
    }
}

/// `step` applied to the store.
fn run(db: &Db, step: &Step) {
    let handle = |name: &str| db.keyspace(if name.is_empty() { "default" } else { name }).unwrap().unwrap();
    match step {
        Step::Create(name) => {
            db.create_keyspace(name, KeyspaceOptions::default()).unwrap();
        }
        Step::Drop(name) => db.drop_keyspace(name).unwrap(),
        Step::Batch(ops) => {
            let mut batch = WriteBatch::new();
            for (ks, k, v) in ops {
                let h = handle(ks);
                match v {
                    Some(v) => batch.put_in(&h, k, v),
                    None => batch.delete_in(&h, k),
                };
            }
            db.write(batch).unwrap();
        }
        Step::DeleteRange(ks, start, end) => db.delete_range_in(&handle(ks), start, end).unwrap(),
    }
}

/// What the store holds, keyspaces in creation order.
fn read_state(db: &Db) -> State {
    keyspace_contents(db)
}

/// Draws steps from the seed and the store's state, runs each and
/// acknowledges it on stdout, until it is killed.
#[test]
#[ignore = "the writer process of keyspaces_and_range_deletes_survive_sigkilled_writers"]
fn keyspace_child_writer() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let seed: u64 = std::env::var(CHILD_SEED_ENV).unwrap().parse().unwrap();
    let db = Db::open(Path::new(&dir), &cred(), options()).unwrap();
    let mut state = read_state(&db);
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0u64.. {
        let step = next_step(&mut rng, &state, &format!("s{seed}"), n);
        run(&db, &step);
        apply(&mut state, &step);
        println!("ack {n}");
    }
}

#[test]
fn keyspaces_and_range_deletes_survive_sigkilled_writers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    Db::create(&dir, &cred(), options()).unwrap().close().unwrap();
    let seed: u64 = std::env::var("SYNAPSED_KS_CRASH_SEED_BASE").ok().map_or_else(rand::random, |s| s.parse().unwrap());
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state: State = vec![(String::new(), Pairs::new())];
    let (mut creates, mut drops, mut range_deletes, mut past_acked) = (0, 0, 0, 0);
    for cycle in 0..8u64 {
        let ctx = format!("seed {seed} cycle {cycle}");
        let child_seed = seed ^ (cycle + 1).wrapping_mul(0x9e37_79b9);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["keyspace_child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, &dir)
            .env(CHILD_SEED_ENV, child_seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = rng.gen_range(1..300u64);
        let mut acked = 0;
        while acked < wait_for {
            let Some(line) = lines.next() else { panic!("{ctx}: the writer stopped before it was killed") };
            if line.unwrap().starts_with("ack ") {
                acked += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The writer runs ahead of what this process read of its acks: the
        // store must hold the state after some number of its steps, at least
        // the acknowledged ones, and never anything in between two steps.
        let db = Db::open(&dir, &cred(), options()).unwrap_or_else(|e| panic!("{ctx}: open after the kill: {e}"));
        let found = read_state(&db);
        let mut draw = StdRng::seed_from_u64(child_seed);
        let tag = format!("s{child_seed}");
        let mut model = state.clone();
        let mut steps = Vec::new();
        let mut done = None;
        for n in 0..acked + 100_000 {
            if n >= acked && model == found {
                done = Some(n);
                break;
            }
            let step = next_step(&mut draw, &model, &tag, n);
            apply(&mut model, &step);
            steps.push(step);
        }
        let Some(done) = done else { panic!("{ctx}: {acked} steps acknowledged; the store holds no state the writer went through: {found:?}") };
        for step in steps.iter().take(done as usize) {
            match step {
                Step::Create(_) => creates += 1,
                Step::Drop(_) => drops += 1,
                Step::DeleteRange(..) => range_deletes += 1,
                Step::Batch(_) => {}
            }
        }
        past_acked += done - acked;
        if cycle % 3 == 2 {
            for ks in db.keyspaces() {
                db.compact_range_in(&ks, None, None).unwrap();
            }
            assert_eq!(read_state(&db), found, "{ctx}: after compacting every keyspace");
        }
        db.close().unwrap();
        state = found;
    }
    println!("{creates} creates, {drops} drops, {range_deletes} range deletes reached the disk; {past_acked} steps past the last ack read");
    assert!(creates > 0 && range_deletes > 0, "the writers drew no keyspace create or range delete: the test proved little");
    assert!(Db::verify(&dir, &cred(), options()).unwrap().is_ok());
}
