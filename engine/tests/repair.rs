//! `repair`: a store with a destroyed table, a table with one damaged block, or
//! a damaged log is rebuilt from what survived; every key that lived in the
//! other files comes back, the report says what was lost, damaged files move
//! to `lost/`, and the repaired store verifies clean and takes writes. A store
//! refused for holding a file of another state (a deleted or an old WAL
//! segment) is rebuilt from what survives the same way.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use synapsed_storage::{Db, Options, SyncPolicy, LOST_DIR};

mod common;
use common::{cred, PASSPHRASE};

fn options() -> Options {
    // One table per explicit flush and no compaction, so the test knows which
    // keys each table holds; small blocks, so a table has many.
    common::options()
        .with_sync(SyncPolicy::EveryCommit)
        .with_memtable_size_bytes(1 << 20)
        .with_l0_compaction_trigger(100)
        .with_l0_slowdown_trigger(100)
        .with_l0_stop_trigger(100)
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Writes `count` keys `PREFIX-NNNN` and flushes them into their own table(s).
fn write_generation(db: &Db, prefix: &str, count: usize, flush: bool, model: &mut Model) {
    for i in 0..count {
        let k = format!("{prefix}-{i:04}").into_bytes();
        let v = format!("{prefix} value {i} {}", "y".repeat(i % 40)).into_bytes();
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    if flush {
        db.flush().unwrap();
    }
}

fn tables(dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    t.sort();
    t
}

/// Three generations of keys, each flushed into its own table (found by
/// diffing the directory), and a fourth left in the log.
fn build(dir: &Path) -> (Model, BTreeMap<String, Vec<Vec<u8>>>) {
    let db = Db::create(dir, &cred(), options()).unwrap();
    let mut model = Model::new();
    let mut by_table = BTreeMap::new();
    for generation in ["alpha", "bravo", "charlie"] {
        let before = tables(dir);
        let mut gen_model = Model::new();
        write_generation(&db, generation, 60, true, &mut gen_model);
        let new: Vec<String> = tables(dir)
            .into_iter()
            .filter(|t| !before.contains(t))
            .collect();
        assert_eq!(new.len(), 1, "one flush made tables {new:?}");
        by_table.insert(new[0].clone(), gen_model.keys().cloned().collect());
        model.extend(gen_model);
    }
    // Still in the log when the store closes: replayed by repair.
    write_generation(&db, "delta", 20, false, &mut model);
    db.close().unwrap();
    (model, by_table)
}

fn check_present(db: &Db, model: &Model, except: &[Vec<u8>], ctx: &str) {
    for (k, v) in model {
        let got = db.get(k).unwrap();
        if except.contains(k) {
            continue;
        }
        assert_eq!(
            got.as_ref(),
            Some(v),
            "{ctx}: key {} missing after repair",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn repair_with_one_destroyed_table_keeps_every_other_key_and_reports_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (model, by_table) = build(&dir);
    let (victim, victim_keys) = by_table
        .iter()
        .nth(1)
        .map(|(t, k)| (t.clone(), k.clone()))
        .unwrap();
    let len = std::fs::metadata(dir.join(&victim)).unwrap().len() as usize;
    std::fs::write(dir.join(&victim), vec![0xEEu8; len]).unwrap();

    // Open refuses, naming the table and pointing to repair.
    let err = Db::open(&dir, &cred(), options()).unwrap_err().to_string();
    assert!(
        err.contains(&victim) && err.contains("repair"),
        "open error: {err}"
    );
    let verdict = Db::verify(
        &dir,
        &cred(),
        options()
            .with_read_only(true),
    )
    .unwrap();
    assert!(
        verdict.damaged.iter().any(|(f, _)| f == &victim),
        "verify: {:?}",
        verdict.damaged
    );

    let report = Db::repair(&dir, &cred(), options()).unwrap();
    assert!(report.manifest_readable);
    assert_eq!(report.lost.len(), 1, "lost: {:?}", report.lost);
    let lost = &report.lost[0];
    assert_eq!(lost.file, victim);
    assert_eq!(lost.salvaged, 0);
    assert_eq!(
        lost.approx_lost_entries,
        Some(victim_keys.len() as u64),
        "{lost:?}"
    );
    assert_eq!(
        lost.quarantined_to.as_deref(),
        Some(format!("{LOST_DIR}/{victim}").as_str())
    );
    assert!(
        dir.join(LOST_DIR).join(&victim).exists(),
        "the damaged table was not moved to lost/"
    );
    assert!(!dir.join(&victim).exists());
    assert_eq!(report.logs_replayed, 1);

    let db = Db::open(&dir, &cred(), options()).unwrap();
    check_present(&db, &model, &victim_keys, "destroyed table");
    for k in &victim_keys {
        assert_eq!(
            db.get(k).unwrap(),
            None,
            "a key of the destroyed table came back"
        );
    }
    // The repaired store continues normally, with seqnos after everything kept.
    assert!(db.stats().last_seqno >= report.last_seqno);
    db.put(b"after-repair", b"ok").unwrap();
    db.put(b"alpha-0000", b"overwritten").unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(
        db.get(b"after-repair").unwrap().as_deref(),
        Some(&b"ok"[..])
    );
    assert_eq!(
        db.get(b"alpha-0000").unwrap().as_deref(),
        Some(&b"overwritten"[..])
    );
    db.close().unwrap();
    let verdict = Db::verify(
        &dir,
        &cred(),
        options()
            .with_read_only(true),
    )
    .unwrap();
    assert!(
        verdict.is_ok(),
        "verify after repair: {:?}",
        verdict.damaged
    );
}

#[test]
fn repair_salvages_the_undamaged_blocks_of_a_damaged_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (model, by_table) = build(&dir);
    let (victim, victim_keys) = by_table
        .iter()
        .next()
        .map(|(t, k)| (t.clone(), k.clone()))
        .unwrap();
    let path = dir.join(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    // Early in the data region (tables start with their data blocks): one block.
    let at = bytes.len() / 5;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let report = Db::repair(&dir, &cred(), options()).unwrap();
    assert_eq!(report.lost.len(), 1, "lost: {:?}", report.lost);
    let lost = &report.lost[0];
    assert_eq!(lost.file, victim);
    let held = victim_keys.len() as u64;
    assert!(
        lost.salvaged > 0 && lost.salvaged < held,
        "salvaged {} of {held}",
        lost.salvaged
    );
    assert_eq!(lost.approx_lost_entries, Some(held - lost.salvaged));
    let blocks = lost.blocks.expect("the damaged table's index was readable");
    assert!(blocks.total > 2, "{blocks:?}");
    assert_eq!(blocks.lost, 1, "one flipped byte costs one data block: {blocks:?}");

    let db = Db::open(&dir, &cred(), options()).unwrap();
    let other: Vec<Vec<u8>> = victim_keys.clone();
    check_present(&db, &model, &other, "damaged block");
    let kept = victim_keys
        .iter()
        .filter(|k| db.get(k).unwrap().is_some())
        .count() as u64;
    assert_eq!(
        kept, lost.salvaged,
        "keys of the damaged table served after repair"
    );
    // Whatever was salvaged holds its right value.
    for k in &victim_keys {
        if let Some(v) = db.get(k).unwrap() {
            assert_eq!(Some(&v), model.get(k));
        }
    }
    db.close().unwrap();
}

#[test]
fn repair_replays_a_damaged_log_up_to_the_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    let mut model = Model::new();
    write_generation(&db, "flushed", 30, true, &mut model);
    db.close().unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    let mut logged = Model::new();
    write_generation(&db, "logged", 40, false, &mut logged);
    drop(db);
    let wal = common::newest_wal(&dir).unwrap();
    let path = dir.join(&wal);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() * 3 / 5;
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let err = Db::open(&dir, &cred(), options()).unwrap_err().to_string();
    assert!(
        err.contains(&wal) && err.contains("repair"),
        "open error: {err}"
    );
    let report = Db::repair(&dir, &cred(), options()).unwrap();
    let lost = report
        .lost
        .iter()
        .find(|l| l.file == wal)
        .unwrap_or_else(|| panic!("log not reported: {report:?}"));
    assert!(
        lost.salvaged > 0 && lost.salvaged < 40,
        "records salvaged: {}",
        lost.salvaged
    );

    let db = Db::open(&dir, &cred(), options()).unwrap();
    check_present(&db, &model, &[], "damaged log");
    // A prefix of the logged writes survives, in order.
    let present: Vec<bool> = logged
        .keys()
        .map(|k| db.get(k).unwrap().is_some())
        .collect();
    let kept = present.iter().take_while(|p| **p).count();
    assert_eq!(
        kept as u64, lost.salvaged,
        "salvaged records are not the log's prefix"
    );
    assert!(
        present[kept..].iter().all(|p| !p),
        "records after the damage came back"
    );
    db.close().unwrap();
}

#[test]
fn cli_repair_says_what_was_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (model, by_table) = build(&dir);
    let victim = by_table.keys().last().unwrap().clone();
    std::fs::write(dir.join(&victim), b"not a table any more").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_synapsed-storage"))
            .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
            .arg("--db")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let verify = run(&["verify"]);
    assert!(!verify.status.success());
    let out = run(&["repair"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "repair failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("lost: {victim}")) && stdout.contains("lost/"),
        "repair output: {stdout}"
    );
    let verify = run(&["verify"]);
    assert!(
        verify.status.success(),
        "verify after repair: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let key = model.keys().next().unwrap();
    let get = run(&["get", std::str::from_utf8(key).unwrap()]);
    assert!(
        get.status.success(),
        "get after repair: {}",
        String::from_utf8_lossy(&get.stderr)
    );
}

/// The live WAL segment deleted: open refuses the store (the manifest lists the
/// segment); repair rebuilds from the tables, and the repaired store opens,
/// verifies clean and takes writes. Only the deleted segment's writes are gone.
#[test]
fn repair_rebuilds_a_store_whose_listed_segment_was_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let (model, _) = build(&dir);
    let wal = common::newest_wal(&dir).unwrap();
    std::fs::remove_file(dir.join(&wal)).unwrap();
    let err = Db::open(&dir, &cred(), options()).unwrap_err().to_string();
    assert!(err.contains(&wal) && err.contains("missing"), "open error: {err}");
    Db::repair(&dir, &cred(), options()).unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    let in_log: Vec<Vec<u8>> = model.keys().filter(|k| k.starts_with(b"delta")).cloned().collect();
    check_present(&db, &model, &in_log, "deleted segment");
    for k in &in_log {
        assert_eq!(db.get(k).unwrap(), None, "a write of the deleted segment came back");
    }
    db.put(b"after", b"repair").unwrap();
    db.close().unwrap();
    assert!(Db::verify(&dir, &cred(), options()).unwrap().is_ok());
}

/// An old segment of the same store copied in under a higher number: open
/// refuses it; repair leaves it out (its header names another number), and the
/// repaired store holds every key of the store and none of the old segment's.
#[test]
fn repair_leaves_out_an_old_segment_copied_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let saved = tmp.path().join("saved");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    db.put(b"old", b"value").unwrap();
    db.close().unwrap();
    std::fs::create_dir_all(&saved).unwrap();
    let old_wal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".wal"))
        .unwrap();
    std::fs::copy(dir.join(&old_wal), saved.join(&old_wal)).unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.delete(b"old").unwrap();
    db.put(b"new", b"value").unwrap();
    db.close().unwrap();
    std::fs::copy(saved.join(&old_wal), dir.join("000900.wal")).unwrap();
    assert!(Db::open(&dir, &cred(), options()).is_err());
    Db::repair(&dir, &cred(), options()).unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.get(b"old").unwrap(), None, "the deleted key came back from the old segment");
    assert_eq!(db.get(b"new").unwrap().as_deref(), Some(&b"value"[..]));
    db.close().unwrap();
    assert!(Db::verify(&dir, &cred(), options()).unwrap().is_ok());
}
