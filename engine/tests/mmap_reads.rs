//! Table reads through a read-only memory mapping (`Options::mmap_reads`): the
//! same data as through pread, the tables really mapped (and not mapped with the
//! option off), a table shortened while the store is closed reported as
//! corruption, and what a table shortened under a live mapping does, against
//! what pread does.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::ops::Bound;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cred, options};
use synapsed_storage::{Db, Error};

const KEYS: u32 = 3_000;

/// A directory on tmpfs where there is one (mapped like any file, without the
/// disk's syncs).
fn tmp() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap()
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} {}", "x".repeat((i % 97) as usize)).into_bytes()
}

/// A store of `KEYS` pairs, flushed and compacted into tables, every other key
/// then deleted in the memtable-and-tables mix the read path merges.
fn filled(dir: &Path, mmap: bool) -> Db {
    let db = Db::create(dir, &cred(), options().with_mmap_reads(mmap)).unwrap();
    for i in 0..KEYS {
        db.put(&key(i), &value(i)).unwrap();
    }
    db.flush().unwrap();
    db.compact_range(None, None).unwrap();
    for i in (0..KEYS).step_by(7) {
        db.delete(&key(i)).unwrap();
    }
    db.flush().unwrap();
    db
}

fn expected(i: u32) -> Option<Vec<u8>> {
    (!i.is_multiple_of(7)).then(|| value(i))
}

fn check_all(db: &Db) {
    for i in 0..KEYS {
        assert_eq!(db.get(&key(i)).unwrap(), expected(i), "key {i}");
    }
    let want: Vec<(Vec<u8>, Vec<u8>)> = (0..KEYS).filter_map(|i| expected(i).map(|v| (key(i), v))).collect();
    let forward: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded, false, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(forward, want);
    let mut reverse: Vec<_> = db.range(Bound::Unbounded, Bound::Unbounded, true, None).unwrap().map(Result::unwrap).collect();
    reverse.reverse();
    assert_eq!(reverse, want);
}

/// Table files of `dir` that this process has mapped, from /proc/self/maps.
fn mapped_tables(dir: &Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().filter(|l| l.contains(dir.to_str().unwrap()) && l.ends_with(".sst")).count()
}

fn tables(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "sst")).collect();
    v.sort();
    v
}

fn shorten(path: &Path, to: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(to).unwrap();
}

#[test]
fn mapped_reads_return_what_pread_returns_and_map_only_with_the_option() {
    for mmap in [false, true] {
        let tmp = tmp();
        let dir = tmp.path().join("db");
        let db = filled(&dir, mmap);
        check_all(&db);
        let mapped = mapped_tables(&dir);
        assert_eq!(mapped > 0, mmap, "mmap_reads {mmap}: {mapped} tables mapped");
        db.close().unwrap();
        assert_eq!(mapped_tables(&dir), 0, "closing the store drops its mappings");
        // Reopened, with the tables read from disk again.
        let db = Db::open(&dir, &cred(), options().with_mmap_reads(mmap)).unwrap();
        check_all(&db);
        assert_eq!(mapped_tables(&dir) > 0, mmap);
        let report = Db::verify(&dir, &cred(), options().with_mmap_reads(mmap));
        drop(db);
        assert!(report.unwrap().is_ok());
    }
}

#[test]
fn a_table_shortened_while_closed_is_corruption_not_a_crash() {
    let tmp = tmp();
    let dir = tmp.path().join("db");
    filled(&dir, true).close().unwrap();
    let victim = tables(&dir).into_iter().max_by_key(|p| std::fs::metadata(p).unwrap().len()).unwrap();
    let len = std::fs::metadata(&victim).unwrap().len();
    shorten(&victim, len / 2);
    // Whether open already reads the table or the first lookup does, the
    // shortened table is reported as corrupt: its footer is not at its end.
    let corrupt = |e: &Error| matches!(e, Error::Corruption { .. });
    match Db::open(&dir, &cred(), options().with_mmap_reads(true)) {
        Err(e) => assert!(corrupt(&e), "{e}"),
        Ok(db) => {
            let mut errors = 0;
            for i in 0..KEYS {
                match db.get(&key(i)) {
                    Ok(v) => assert_eq!(v, expected(i), "key {i}: a value, so it must be the right one"),
                    Err(e) => {
                        assert!(corrupt(&e), "key {i}: {e}");
                        errors += 1;
                    }
                }
            }
            assert!(errors > 0, "no read noticed the shortened table");
        }
    }
}

#[test]
fn a_table_shortened_under_pread_reads_is_an_error() {
    let tmp = tmp();
    let dir = tmp.path().join("db");
    let db = filled(&dir, false);
    check_all(&db);
    for t in tables(&dir) {
        shorten(&t, 4096);
    }
    // The block cache (16 KiB) holds a few blocks; the others are read again.
    let errors = (0..KEYS).filter(|i| db.get(&key(*i)).is_err()).count();
    assert!(errors > 0);
}

/// Run in a child process by the test below: reads a mapped store, shortens its
/// tables under the mappings, and reads again.
#[test]
#[ignore = "run by a_table_shortened_under_a_mapping_ends_the_process_with_sigbus"]
fn shorten_under_a_mapping_child() {
    let Some(dir) = std::env::var_os("SYNAPSED_MMAP_CHILD_DIR") else { return };
    let dir = PathBuf::from(dir);
    let db = filled(&dir, true);
    check_all(&db);
    assert!(mapped_tables(&dir) > 0);
    for t in tables(&dir) {
        shorten(&t, 4096);
    }
    for i in 0..KEYS {
        let _ = db.get(&key(i));
    }
    // Reaching this line means no read touched a page past a new end.
    std::process::exit(3);
}

/// The documented limit of mapped reads: a table file shortened by something
/// outside the engine while it is mapped raises SIGBUS at the next read of a
/// page past its new end (the engine itself never shortens a table).
#[test]
fn a_table_shortened_under_a_mapping_ends_the_process_with_sigbus() {
    let tmp = tmp();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "shorten_under_a_mapping_child", "--ignored", "--nocapture"])
        .env("SYNAPSED_MMAP_CHILD_DIR", tmp.path().join("db"))
        .output()
        .unwrap()
        .status;
    assert_eq!(status.signal(), Some(libc::SIGBUS), "child ended with {status}");
}
