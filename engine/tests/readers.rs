//! Readers beside a writer, through the real binary: `verify`, `get` and `scan`
//! run in loops in their own processes while a writer process batches,
//! compacts, rotates keys and securely deletes. A file the writer retired is
//! never reported as damage, and real damage still is. Also: `key rotate` and
//! `secure-delete` after `repair` made `lost/`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::BIN;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "readers beside a writer";

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).env_remove("RUST_BACKTRACE").arg("--db").arg(dir);
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    let out = command(dir).args(args).output().unwrap();
    for text in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(text).contains("panicked"), "a panic reached the user: {out:?}");
    }
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn init(dir: &Path) {
    ok(dir, &["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1", "init"]);
}

/// A value of `len` bytes that compresses badly (so tables grow with it).
fn noisy(seed: usize, len: usize) -> String {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

fn tables(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    out.sort();
    out
}

/// Flips 4 bytes at `offset` of `path`.
fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut bytes = [0u8; 4];
    file.read_exact_at(&mut bytes, offset).unwrap();
    for b in &mut bytes {
        *b ^= 0x5a;
    }
    file.write_all_at(&bytes, offset).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn key_rotate_and_secure_delete_work_after_repair_made_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir);
    let mut text = String::new();
    for i in 0..400 {
        text.push_str(&format!("put k{i:04} {}\n", noisy(i, 60)));
    }
    text.push_str("commit\n");
    let mut batch = command(&dir).arg("batch").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    batch.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(batch.wait_with_output().unwrap().status.success());
    ok(&dir, &["compact"]);
    let table = tables(&dir).into_iter().find(|p| std::fs::metadata(p).unwrap().len() > 6000).expect("a table over 6000 bytes");
    flip(&table, 5000);
    ok(&dir, &["repair"]);
    let lost: Vec<_> = std::fs::read_dir(dir.join("lost")).unwrap().collect();
    assert_eq!(lost.len(), 1, "repair quarantines the damaged table");

    // Rotation works, keeps the epoch the quarantined table is under, and says why.
    let rotated = ok(&dir, &["key", "rotate"]);
    assert!(rotated.contains("lost/"), "rotation names the file in lost/: {rotated}");
    assert!(rotated.contains("kept epochs [1]"), "rotation keeps the quarantined table's epoch: {rotated}");
    ok(&dir, &["verify"]);

    // Secure delete shreds lost/ too, and then the old epoch goes.
    let deleted = ok(&dir, &["secure-delete", "k0001"]);
    assert!(deleted.contains("destroyed epochs [1, 2]"), "secure delete destroys the epoch lost/ kept: {deleted}");
    assert_eq!(std::fs::read_dir(dir.join("lost")).unwrap().count(), 0, "lost/ is shredded");
    let again = ok(&dir, &["key", "rotate"]);
    assert!(!again.contains("kept epochs"), "nothing keeps an old epoch any more: {again}");
    assert!(run(&dir, &["get", "k0001"]).status.code() == Some(1), "the deleted key is gone");
    assert!(run(&dir, &["verify"]).status.success());
}

/// Keys written once and never deleted: every read must find them all.
const KEEP: usize = 40;

fn keep_value(i: usize) -> String {
    format!("keep{i}-{}", noisy(i, 30))
}

/// A store with the `keep-` keys in a table and a few rounds behind it.
fn busy_store(dir: &Path) {
    init(dir);
    let mut text = String::new();
    for i in 0..KEEP {
        text.push_str(&format!("put keep-{i:03} {}\n", keep_value(i)));
    }
    text.push_str("commit\n");
    batch(dir, &text);
    ok(dir, &["compact"]);
}

fn batch(dir: &Path, text: &str) {
    let mut child: Child = command(dir)
        .args(["--memtable-size-bytes", "2048", "batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin: ChildStdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut commits = 0;
    while stdout.read_line(&mut line).unwrap() > 0 {
        commits += 1;
        line.clear();
    }
    let _: &mut BufReader<ChildStdout> = &mut stdout;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "batch failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(commits, text.matches("commit\n").count());
}

/// Writer processes one after another until `stop`: batches (flushes and
/// compactions all the time), a compaction, and with `rotate` a key rotation
/// and a secure delete of a prefix in turn. Returns the rounds run.
fn churn(dir: PathBuf, rotate: bool, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut round = 0;
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            round += 1;
            let mut text = String::new();
            for c in 0..8 {
                for i in 0..6 {
                    text.push_str(&format!("put gone-{round}-{c}-{i} {}\n", noisy(round * 100 + c * 10 + i, 40)));
                    text.push_str(&format!("put live-{i} {round}\n"));
                }
                text.push_str("commit\n");
            }
            batch(&dir, &text);
            match (rotate, round % 3) {
                (true, 0) => {
                    ok(&dir, &["key", "rotate"]);
                }
                (true, 1) => {
                    ok(&dir, &["secure-delete", "--prefix", "gone-"]);
                }
                _ => {
                    ok(&dir, &["compact"]);
                }
            }
        }
        round
    })
}

/// Runs `check` in a loop for `for_how_long` beside `churn`; returns the runs
/// and the failures (as text).
fn beside_writer(rotate: bool, for_how_long: Duration, check: impl Fn(&Path) -> Result<(), String>) -> (usize, usize, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    busy_store(&dir);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = churn(dir.clone(), rotate, stop.clone());
    let started = Instant::now();
    let (mut runs, mut failures) = (0, Vec::new());
    while started.elapsed() < for_how_long {
        runs += 1;
        if let Err(e) = check(&dir) {
            failures.push(e);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let rounds = writer.join().unwrap();
    // After the writer stopped, the store is whole.
    if let Err(e) = check(&dir) {
        failures.push(format!("after the writer stopped: {e}"));
    }
    (runs, rounds, failures)
}

fn verify_check(dir: &Path) -> Result<(), String> {
    let out = run(dir, &["verify"]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("verify exit {:?}: {}{}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

fn read_check(dir: &Path) -> Result<(), String> {
    let out = run(dir, &["scan", "keep-"]);
    if !out.status.success() {
        return Err(format!("scan exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let expected: String = (0..KEEP).map(|i| format!("keep-{i:03}\t{}\n", keep_value(i))).collect();
    if text != expected {
        return Err(format!("scan returned {} lines, not the {KEEP} written", text.lines().count()));
    }
    let out = run(dir, &["get", "keep-007"]);
    if !out.status.success() {
        return Err(format!("get exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    if String::from_utf8_lossy(&out.stdout).trim_end() != keep_value(7) {
        return Err("get returned a wrong value".into());
    }
    // A full scan sees every batch of the writer whole: each `live-` key from one round.
    let out = run(dir, &["scan", "live-"]);
    if !out.status.success() {
        return Err(format!("scan exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    let rounds: std::collections::BTreeSet<String> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_once('\t')).map(|(_, v)| v.to_string()).collect();
    if rounds.len() > 1 {
        return Err(format!("a batch was partly visible: live- keys from rounds {rounds:?}"));
    }
    Ok(())
}

#[test]
fn verify_beside_batches_and_compactions_reports_no_damage_and_real_damage_still_shows() {
    let (runs, rounds, failures) = beside_writer(false, Duration::from_secs(5), verify_check);
    assert!(failures.is_empty(), "{} of {runs} verify runs beside {rounds} writer rounds reported damage: {failures:#?}", failures.len());
    assert!(runs >= 10 && rounds >= 3, "too little ran: {runs} verify runs, {rounds} writer rounds");
}

#[test]
fn verify_beside_rotation_and_secure_delete_reports_no_damage() {
    let (runs, rounds, failures) = beside_writer(true, Duration::from_secs(6), verify_check);
    assert!(failures.is_empty(), "{} of {runs} verify runs beside {rounds} writer rounds reported damage: {failures:#?}", failures.len());
    assert!(runs >= 10 && rounds >= 3, "too little ran: {runs} verify runs, {rounds} writer rounds");
}

#[test]
fn get_and_scan_beside_rotation_and_secure_delete_never_fail() {
    let (runs, rounds, failures) = beside_writer(true, Duration::from_secs(6), read_check);
    assert!(failures.is_empty(), "{} of {runs} read runs beside {rounds} writer rounds failed: {failures:#?}", failures.len());
    assert!(runs >= 10 && rounds >= 3, "too little ran: {runs} read runs, {rounds} writer rounds");
}

#[test]
fn verify_still_reports_real_damage_of_a_live_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    busy_store(&dir);
    let table = tables(&dir).into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let name = table.file_name().unwrap().to_string_lossy().into_owned();
    let len = std::fs::metadata(&table).unwrap().len();
    flip(&table, len / 3);
    let started = Instant::now();
    let out = run(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "verify: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name), "verify names {name}: {out:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "real damage is reported without a long wait");
    // A table missing from a store nobody writes is reported too.
    std::fs::remove_file(&table).unwrap();
    let out = run(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(3), "verify: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name), "verify names {name}: {out:?}");
}

fn library_store(dir: &Path, options: &synapsed_storage::Options) -> synapsed_storage::Db {
    let db = synapsed_storage::Db::create(dir, &synapsed_storage::Credential::passphrase(PASSPHRASE), options.clone()).unwrap();
    for i in 0..300 {
        db.put(format!("k{i:04}").as_bytes(), noisy(i, 50).as_bytes()).unwrap();
    }
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    db
}

fn reader(dir: &Path, options: &synapsed_storage::Options) -> synapsed_storage::Db {
    let options = options.clone().with_read_only(true).with_block_cache_bytes(0);
    synapsed_storage::Db::open(dir, &synapsed_storage::Credential::passphrase(PASSPHRASE), options).unwrap()
}

#[test]
fn secure_delete_waits_for_a_reader_that_lets_go_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = synapsed_storage::Options::tiny_for_tests().with_reader_wait_ms(20_000);
    let db = library_store(&dir, &options);
    let held = reader(&dir, &options);
    let first = held.scan_prefix(b"k").unwrap().count();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        // Still reads its whole view, untouched, right before it lets go.
        assert_eq!(held.scan_prefix(b"k").unwrap().collect::<Result<Vec<_>, _>>().unwrap().len(), first);
        drop(held);
    });
    let started = Instant::now();
    let report = db.secure_delete_prefix(b"k00").unwrap();
    let waited = started.elapsed();
    release.join().unwrap();
    assert!(waited >= Duration::from_millis(400), "the overwrite waited for the reader ({waited:?})");
    assert!(waited < Duration::from_secs(15), "and no longer than it held on ({waited:?})");
    assert!(!report.rotation.epochs_destroyed.is_empty() && report.rotation.epochs_retained.is_empty(), "{report:?}");
    assert_eq!(reader(&dir, &options).scan_prefix(b"k00").unwrap().count(), 0);
}

#[test]
fn a_reader_holding_tables_past_the_wait_gets_a_retryable_error_never_wrong_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let options = synapsed_storage::Options::tiny_for_tests().with_reader_wait_ms(300);
    let db = library_store(&dir, &options);
    let stuck = reader(&dir, &options);
    let started = Instant::now();
    let report = db.secure_delete_prefix(b"k00").unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "the wait is the bound");
    assert!(!report.rotation.epochs_destroyed.is_empty(), "shredding went ahead after the bound: {report:?}");
    // Its tables were overwritten after it was evicted: a clear, retryable error.
    let result: Result<Vec<_>, _> = stuck.scan_prefix(b"").and_then(|it| it.collect());
    match result {
        Err(e @ synapsed_storage::Error::Retired { .. }) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected Error::Retired, got {other:?}"),
    }
    // The evicted handle cannot catch up: it is told to reopen, and is closed.
    match stuck.refresh() {
        Err(e @ synapsed_storage::Error::Retired { .. }) => assert!(e.is_retryable(), "{e}"),
        other => panic!("expected Error::Retired from refresh, got {other:?}"),
    }
    assert!(matches!(stuck.get(b"k0200"), Err(synapsed_storage::Error::Closed)));
    // A fresh reader reads the store as it is.
    let fresh = reader(&dir, &options);
    assert_eq!(fresh.scan_prefix(b"k00").unwrap().count(), 0);
    assert_eq!(fresh.scan_prefix(b"k").unwrap().count(), 200);
}

#[test]
fn a_dead_readers_registration_holds_nothing_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    busy_store(&dir);
    // What a reader killed while opening leaves: a lock file nobody holds, no pins.
    let readers = dir.join("readers");
    std::fs::create_dir_all(&readers).unwrap();
    std::fs::write(readers.join("999999-0.lock"), "999999\n").unwrap();
    let started = Instant::now();
    let out = ok(&dir, &["secure-delete", "--prefix", "keep-00"]);
    assert!(out.contains("destroyed epochs [1]"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(4), "a dead reader was waited for: {:?}", started.elapsed());
    assert!(!readers.join("999999-0.lock").exists(), "the dead reader's registration is removed");
    assert_eq!(ok(&dir, &["scan", "keep-"]).lines().count(), KEEP - 10);
}
