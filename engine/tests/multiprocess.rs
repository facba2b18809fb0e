//! Several processes on one store: the CLI binary runs as the writer (`batch`
//! on stdin, with a tiny memtable so flushes and compactions run all the time);
//! a second writer process is refused with the holder's pid; read-only
//! processes (CLI `get` and `scan`) and read-only handles in this process read
//! consistent data while the writer writes: every batch the writer
//! acknowledged before the read began is there, and no batch is partly there.
//! A long-lived read-only handle catches up with `Db::refresh` after every
//! commit; one that never refreshes keeps reading its first view unchanged.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::BIN;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use synapsed_storage::{Credential, Db, Options};

const PASSPHRASE: &str = "several processes";
/// Keys each batch writes (all in one atomic commit).
const PER_BATCH: usize = 6;
const ROUNDS: usize = 60;

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_BACKTRACE")
        .arg("--db")
        .arg(dir);
    c
}

struct Writer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    committed: usize,
}

impl Writer {
    fn start(dir: &Path) -> Writer {
        let mut child = command(dir)
            .args(["--memtable-size-bytes", "2048", "batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Writer {
            child,
            stdin,
            stdout,
            committed: 0,
        }
    }

    /// Commits batch `n`: PER_BATCH keys `b{n}-{i}`, and overwrites of keys
    /// shared by every batch; returns once the writer acknowledged it.
    fn commit(&mut self, n: usize) {
        let mut text = String::new();
        for i in 0..PER_BATCH {
            text.push_str(&format!("put b{n:04}-{i} v{n}-{i}-{}\n", "p".repeat(40)));
            text.push_str(&format!("put shared-{i} {n}\n"));
        }
        text.push_str("commit\n");
        self.stdin.write_all(text.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        self.committed += 1;
        assert_eq!(
            line.trim(),
            format!("committed {}", self.committed),
            "writer output"
        );
    }

    fn finish(mut self) {
        drop(self.stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "writer exited with {status}");
    }
}

/// Checks a key/value listing against the batches: every batch up to `acked`
/// whole, no batch partly present, and the shared keys all from one batch >= acked.
fn check_listing(pairs: &BTreeMap<String, String>, acked: usize, ctx: &str) {
    let mut per_batch: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, v) in pairs {
        if let Some(rest) = k.strip_prefix('b') {
            let n: usize = rest[..4].parse().unwrap();
            let i: usize = rest[5..].parse().unwrap();
            assert_eq!(
                v,
                &format!("v{n}-{i}-{}", "p".repeat(40)),
                "{ctx}: value of {k}"
            );
            *per_batch.entry(n).or_default() += 1;
        }
    }
    for n in 1..=acked {
        assert_eq!(
            per_batch.get(&n).copied(),
            Some(PER_BATCH),
            "{ctx}: acknowledged batch {n} missing or partial"
        );
    }
    for (n, count) in &per_batch {
        assert_eq!(*count, PER_BATCH, "{ctx}: batch {n} partly visible");
    }
    let newest = per_batch.keys().max().copied().unwrap_or(0);
    for i in 0..PER_BATCH {
        let shared = pairs
            .get(&format!("shared-{i}"))
            .map(|v| v.parse::<usize>().unwrap())
            .unwrap_or(0);
        assert_eq!(
            shared, newest,
            "{ctx}: shared-{i} is from batch {shared}, the newest batch seen is {newest}"
        );
    }
}

fn cli_scan(dir: &Path) -> BTreeMap<String, String> {
    let out = command(dir).args(["scan", ""]).output().unwrap();
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn handle_listing(db: &Db) -> BTreeMap<String, String> {
    db.scan_prefix(b"")
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
        })
        .collect()
}

fn library_scan(dir: &Path) -> BTreeMap<String, String> {
    let options = Options::default()
        .with_read_only(true);
    let db = Db::open(dir, &Credential::passphrase(PASSPHRASE), options).unwrap();
    let pairs = handle_listing(&db);
    db.close().unwrap();
    pairs
}

#[test]
fn one_writer_process_readers_see_consistent_data_and_a_second_writer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let init = command(&dir)
        .args([
            "--insecure-kdf-for-tests",
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
            "init",
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );

    let mut writer = Writer::start(&dir);
    writer.commit(1);
    let pid = writer.child.id();

    // A second writer is refused, naming the holder.
    let second = command(&dir)
        .args(["put", "intruder", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second writer was let in");
    assert!(
        stderr.contains("locked") && stderr.contains(&format!("pid {pid}")),
        "second writer's error: {stderr}"
    );
    let second_lib = Db::open(
        &dir,
        &Credential::passphrase(PASSPHRASE),
        Options::default(),
    )
    .unwrap_err();
    assert!(
        second_lib.to_string().contains(&format!("pid {pid}")),
        "library writer's error: {second_lib}"
    );

    // A read-only handle opened now keeps reading its snapshot while the writer
    // flushes and compacts underneath (tables it holds may be unlinked).
    let early = Db::open(
        &dir,
        &Credential::passphrase(PASSPHRASE),
        Options::default()
            .with_read_only(true),
    )
    .unwrap();
    let early_view: Vec<(Vec<u8>, Vec<u8>)> = early
        .scan_prefix(b"")
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    // A long-lived read-only handle that catches up after every commit.
    let live = Db::open(
        &dir,
        &Credential::passphrase(PASSPHRASE),
        Options::default()
            .with_read_only(true),
    )
    .unwrap();

    for n in 2..=ROUNDS {
        writer.commit(n);
        let acked = writer.committed;
        if n % 3 == 0 {
            check_listing(&cli_scan(&dir), acked, &format!("CLI scan after batch {n}"));
        }
        if n % 3 == 1 {
            check_listing(
                &library_scan(&dir),
                acked,
                &format!("library read-only after batch {n}"),
            );
        }
        if n % 5 == 0 {
            let out = command(&dir)
                .args(["get", &format!("b{:04}-0", n)])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "CLI get of batch {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("v{n}-0-")));
        }
        live.refresh()
            .unwrap_or_else(|e| panic!("refresh after batch {n}: {e}"));
        check_listing(
            &handle_listing(&live),
            acked,
            &format!("refreshed handle after batch {n}"),
        );
        let again: Vec<(Vec<u8>, Vec<u8>)> = early
            .scan_prefix(b"")
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            again, early_view,
            "the early read-only handle's view changed or broke after batch {n}"
        );
    }
    drop(early);
    live.refresh().unwrap();
    drop(live);
    let stats = command(&dir).args(["stats", "--json"]).output().unwrap();
    assert!(stats.status.success());
    writer.finish();

    let stats_text = String::from_utf8_lossy(&stats.stdout).into_owned();
    let tables = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sst")
        })
        .count();
    assert!(tables > 0, "the writer never flushed: {stats_text}");
    check_listing(&library_scan(&dir), ROUNDS, "after the writer exited");
}

/// A passphrase change from another process waits for no one and races no one:
/// while a writer process holds the store it is refused with the holder's pid
/// (the writer's own key changes, a rotation's new epoch among them, would
/// otherwise be lost to it), nothing changes, and once the writer is gone it
/// goes through. In this process, a handle that holds the lock does not stop it.
#[test]
fn a_passphrase_change_beside_a_writer_process_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let init = command(&dir)
        .args(["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1", "init"])
        .output()
        .unwrap();
    assert!(init.status.success(), "init: {}", String::from_utf8_lossy(&init.stderr));
    let options = || {
        Options::default()
            .with_insecure_kdf_for_tests(true)
            .with_argon2(synapsed_storage::Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 })
    };
    let keyslots = std::fs::read(dir.join("KEYSLOTS")).unwrap();

    let mut writer = Writer::start(&dir);
    writer.commit(1);
    let pid = writer.child.id();
    match Db::change_passphrase(&dir, &Credential::passphrase(PASSPHRASE), b"new one", &options()) {
        Err(synapsed_storage::Error::Locked { pid: holder }) => assert_eq!(holder, Some(pid)),
        other => panic!("a passphrase change beside a writer process: {other:?}"),
    }
    assert_eq!(std::fs::read(dir.join("KEYSLOTS")).unwrap(), keyslots, "KEYSLOTS changed");
    writer.finish();

    // In this process: an open handle holds the lock, and the change goes through.
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    Db::change_passphrase(&dir, &Credential::passphrase(PASSPHRASE), b"new one", &options()).unwrap();
    db.close().unwrap();
    Db::open(&dir, &Credential::passphrase("new one"), options()).unwrap().close().unwrap();
}
