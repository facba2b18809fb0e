//! One test per row of `docs/bad-input.md`: each kind of bad input and what the
//! user gets for it, through the library (error variant) and, where the row
//! names one, through the CLI (message on stderr and exit status).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use synapsed_storage::{Credential, Db, Error, Options, SimVfs, SyncPolicy, WriteBatch};

mod common;
use common::{cred, options, PASSPHRASE};
use common::cli::BIN;


fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    Db::create(&dir, &cred(), options())
        .unwrap()
        .close()
        .unwrap();
    (tmp, dir)
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .env_remove("RUST_BACKTRACE")
        .arg("--db")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// Asserts a CLI failure: exit status, and `error: ` + `needle` on stderr, no panic.
fn assert_cli_error(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status; stderr: {stderr}"
    );
    assert!(
        stderr.starts_with("error: "),
        "stderr must start with \"error: \": {stderr}"
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "a panic reached the user: {stderr}"
    );
}

fn invalid(e: Error, needle: &str) {
    match e {
        Error::InvalidArgument(m) => assert!(m.contains(needle), "message lacks {needle:?}: {m}"),
        other => panic!("expected InvalidArgument ({needle}), got {other:?}"),
    }
}

#[test]
fn oversized_key() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    let key = vec![b'k'; options().max_key_bytes + 1];
    invalid(db.put(&key, b"v").unwrap_err(), "max_key_bytes");
    db.put(&vec![b'k'; options().max_key_bytes], b"v").unwrap();
    // A limit above what the tables accept is refused when the store opens.
    invalid(
        Db::open(
            &dir,
            &cred(),
            options()
                .with_max_key_bytes(2 << 20),
        )
        .unwrap_err(),
        "max_key_bytes",
    );
    db.close().unwrap();
    let out = cli(&dir, &["put", &"k".repeat(70_000), "v"]);
    assert_cli_error(&out, 1, "exceeds max_key_bytes");
}

#[test]
fn oversized_value() {
    let (_tmp, dir) = new_store();
    let limit = 4096;
    let db = Db::open(
        &dir,
        &cred(),
        options()
            .with_max_value_bytes(limit),
    )
    .unwrap();
    invalid(
        db.put(b"k", &vec![0u8; limit + 1]).unwrap_err(),
        "max_value_bytes",
    );
    db.put(b"k", &vec![0u8; limit]).unwrap();
    db.close().unwrap();
    // The default is what the SSTable layer accepts (64 MiB); more is refused at open.
    assert_eq!(Options::default().max_value_bytes, 64 << 20);
    invalid(
        Db::open(
            &dir,
            &cred(),
            options()
                .with_max_value_bytes((64 << 20) + 1),
        )
        .unwrap_err(),
        "max_value_bytes",
    );
    let db = Db::open(&dir, &cred(), options()).unwrap();
    invalid(
        db.put(b"big", &vec![0u8; (64 << 20) + 1]).unwrap_err(),
        "max_value_bytes",
    );
    db.close().unwrap();
}

#[test]
fn empty_key() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    invalid(db.put(b"", b"v").unwrap_err(), "empty key");
    invalid(db.delete(b"").unwrap_err(), "empty key");
    db.close().unwrap();
    assert_cli_error(&cli(&dir, &["put", "", "v"]), 1, "empty key");
}

#[test]
fn batch_too_large() {
    let (_tmp, dir) = new_store();
    let db = Db::open(
        &dir,
        &cred(),
        options()
            .with_max_batch_ops(10)
            .with_max_batch_bytes(2000),
    )
    .unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..11 {
        batch.put(format!("k{i}"), b"v");
    }
    invalid(db.write(batch).unwrap_err(), "max_batch_ops");
    let mut batch = WriteBatch::new();
    for i in 0..5 {
        batch.put(format!("k{i}"), vec![0u8; 500]);
    }
    invalid(db.write(batch).unwrap_err(), "max_batch_bytes");
    // Nothing of either batch was applied, and smaller batches go through.
    assert_eq!(db.get(b"k0").unwrap(), None);
    let mut batch = WriteBatch::new();
    batch.put(b"k0", b"v");
    db.write(batch).unwrap();
    db.close().unwrap();
}

#[test]
fn truncated_file() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    for i in 0..200 {
        db.put(format!("key{i:04}").as_bytes(), b"some value")
            .unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let table = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".sst"))
        .unwrap();
    let path = dir.join(&table);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = Db::open(&dir, &cred(), options()).unwrap_err();
    assert!(e.is_corruption(), "expected Corruption, got {e:?}");
    assert!(
        e.to_string().contains(&table) && e.to_string().contains("repair"),
        "{e}"
    );
    assert_cli_error(&cli(&dir, &["get", "key0001"]), 3, &table);
    let verify = cli(&dir, &["verify"]);
    assert_eq!(verify.status.code(), Some(3));
}

#[test]
fn file_from_a_newer_format_version() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.put(b"k", b"v").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    let table = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with(".sst"))
        .unwrap();
    let path = dir.join(&table);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] += 1; // the version byte after the 8-byte magic of every data file (crypto/FORMAT.md)
    std::fs::write(&path, &bytes).unwrap();
    match Db::open(&dir, &cred(), options()).unwrap_err() {
        Error::UnsupportedVersion {
            file,
            found,
            supported,
        } => {
            assert_eq!(file, table);
            assert!(found > supported);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_cli_error(&cli(&dir, &["get", "k"]), 1, "this build reads up to");
}

#[test]
fn wrong_key() {
    let (_tmp, dir) = new_store();
    let before: Vec<(String, Vec<u8>)> = snapshot_dir(&dir);
    assert!(matches!(
        Db::open(&dir, &Credential::passphrase("not it"), options()),
        Err(Error::WrongKey)
    ));
    let out = Command::new(BIN)
        .env("SYNAPSED_PASSPHRASE", "not it")
        .arg("--db")
        .arg(&dir)
        .args(["get", "k"])
        .output()
        .unwrap();
    assert_cli_error(&out, 1, "wrong passphrase or key");
    assert_eq!(snapshot_dir(&dir), before, "a wrong key changed the store");
}

fn snapshot_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn store_of_another_kind_in_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("other");
    std::fs::create_dir(&dir).unwrap();
    let mut sqlite = b"SQLite format 3\0".to_vec();
    sqlite.resize(4096, 0);
    std::fs::write(dir.join("app.db"), &sqlite).unwrap();
    std::fs::write(
        dir.join("random.bin"),
        [0x13u8, 0x37, 0x00, 0xff].repeat(300),
    )
    .unwrap();
    assert!(matches!(
        Db::open(&dir, &cred(), options()),
        Err(Error::NotFound(_))
    ));
    assert_cli_error(&cli(&dir, &["get", "k"]), 1, "holds no store");
    // Random bytes where a store's key file belongs are damage, not a panic.
    std::fs::write(dir.join("KEYSLOTS"), [0xabu8; 333]).unwrap();
    let e = Db::open(&dir, &cred(), options()).unwrap_err();
    assert!(
        e.is_corruption() && e.to_string().contains("KEYSLOTS"),
        "{e:?}"
    );
    assert!(
        std::fs::read(dir.join("app.db")).unwrap() == sqlite,
        "the other program's file was changed"
    );
}

#[test]
fn non_empty_non_store_directory_at_init() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("documents");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("letter.txt"), b"dear diary").unwrap();
    invalid(
        Db::create(&dir, &cred(), options()).unwrap_err(),
        "not empty",
    );
    let out = Command::new(BIN)
        .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .args([
            "--insecure-kdf-for-tests",
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
            "--db",
        ])
        .arg(&dir)
        .arg("init")
        .output()
        .unwrap();
    assert_cli_error(&out, 1, "not empty");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["letter.txt".to_string()],
        "init left files behind"
    );
    // An existing empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    Db::create(&empty, &cred(), options())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn concurrent_writer() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    let pid = std::process::id();
    match Db::open(&dir, &cred(), options()) {
        Err(Error::Locked { pid: Some(holder) }) => assert_eq!(holder, pid),
        other => panic!("expected Locked with our pid, got {other:?}"),
    }
    assert_cli_error(
        &cli(&dir, &["put", "k", "v"]),
        1,
        &format!("locked by another writer (pid {pid})"),
    );
    // Readers are not refused.
    db.put(b"k", b"v").unwrap();
    let out = cli(&dir, &["get", "k"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.close().unwrap();
}

#[test]
fn full_disk() {
    let sim = SimVfs::new();
    let dir = Path::new("/full");
    let options = options()
        .with_vfs(sim.clone())
        .with_sync(SyncPolicy::EveryCommit);
    let db = Db::create(dir, &cred(), options).unwrap();
    db.put(b"before", b"kept").unwrap();
    sim.set_capacity_bytes(Some(sim.total_live_bytes() + 64));
    // The space preallocated for the WAL segment takes writes until it is used up.
    let e = (0..1000)
        .find_map(|i| db.put(format!("too much {i}").as_bytes(), &[7u8; 500]).err())
        .expect("the disk never filled up");
    assert!(
        matches!(&e, Error::StorageFull { file } if file.ends_with(".wal")),
        "{e:?}"
    );
    assert!(e.to_string().contains("storage full"));
    assert_eq!(db.get(b"before").unwrap().as_deref(), Some(&b"kept"[..]));
    sim.set_capacity_bytes(None);
    db.put(b"after", b"ok").unwrap();
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"ok"[..]));
    db.close().unwrap();
}

#[test]
fn damaged_file() {
    let (_tmp, dir) = new_store();
    let db = Db::open(
        &dir,
        &cred(),
        options()
            .with_memtable_size_bytes(1 << 20),
    )
    .unwrap();
    for i in 0..50 {
        db.put(format!("key{i:04}").as_bytes(), b"logged value")
            .unwrap();
    }
    drop(db);
    let wal = common::newest_wal(&dir).unwrap();
    let path = dir.join(&wal);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let e = Db::open(&dir, &cred(), options()).unwrap_err();
    assert!(e.is_corruption(), "{e:?}");
    assert!(
        e.to_string().contains(&wal) && e.to_string().contains("repair"),
        "{e}"
    );
    let verify = cli(&dir, &["verify"]);
    assert_eq!(verify.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&verify.stdout).contains(&format!("damaged: {wal}")));
    assert_cli_error(&cli(&dir, &["put", "k", "v"]), 3, &wal);
}

#[test]
fn torn_wal_tail() {
    let (_tmp, dir) = new_store();
    let db = Db::open(
        &dir,
        &cred(),
        options()
            .with_memtable_size_bytes(1 << 20),
    )
    .unwrap();
    for i in 0..20 {
        db.put(format!("key{i:04}").as_bytes(), b"logged value")
            .unwrap();
    }
    drop(db);
    let wal = common::newest_wal(&dir).unwrap();
    let path = dir.join(&wal);
    let len = std::fs::metadata(&path).unwrap().len();
    // Cut the last record short, as a crash mid-append does.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let report = Db::verify(
        &dir,
        &cred(),
        options()
            .with_read_only(true),
    )
    .unwrap();
    assert!(
        report.is_ok(),
        "a torn tail is not damage: {:?}",
        report.damaged
    );
    assert_eq!(report.torn_tails.len(), 1, "{report:?}");
    assert_eq!(report.torn_tails[0].0, wal);
    let verify = cli(&dir, &["verify"]);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("torn tail"), "{stdout}");
    let db = Db::open(&dir, &cred(), options()).unwrap();
    for i in 0..19 {
        assert!(db.get(format!("key{i:04}").as_bytes()).unwrap().is_some());
    }
    assert_eq!(
        db.get(b"key0019").unwrap(),
        None,
        "the torn record was not acknowledged"
    );
    db.close().unwrap();
    let report = Db::verify(
        &dir,
        &cred(),
        options()
            .with_read_only(true),
    )
    .unwrap();
    assert!(
        report.is_ok() && report.torn_tails.is_empty(),
        "open did not truncate the tail: {report:?}"
    );
}

/// The `.sst` files this process has open right now, from `/proc/self/fd`.
fn open_table_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.extension().is_some_and(|x| x == "sst"))
        .count()
}

#[test]
fn too_many_open_files() {
    let (_tmp, dir) = new_store();
    let limited = options().with_max_open_files(16);
    let db = Db::open(&dir, &cred(), limited.clone()).unwrap();
    // Incompressible values, so the tables stay many and small.
    let value = |i: u32| {
        let mut x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..100).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }).collect::<Vec<u8>>()
    };
    let n = 4000u32;
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            batch.put(format!("key{i:06}").as_bytes(), value(i));
        }
        db.write(batch).unwrap();
    }
    db.compact_range(None, None).unwrap();
    let tables: usize = db.stats().files_per_level.iter().sum();
    assert!(tables > 40, "the test needs many more tables than the limit, got {tables}");
    // Every key reads back through a cache that keeps at most 16 tables open.
    for i in (0..n).rev().step_by(7) {
        assert_eq!(db.get(format!("key{i:06}").as_bytes()).unwrap(), Some(value(i)), "key {i}");
        assert!(db.stats().open_tables <= 16);
    }
    assert_eq!(db.scan_prefix(b"key").unwrap().count(), n as usize);
    assert!(db.stats().open_tables <= 16, "{}", db.stats().open_tables);
    assert!(open_table_descriptors() <= 16, "{} table descriptors open", open_table_descriptors());

    // A read-only handle keeps every table of its version open, so it refuses a
    // version with more tables than its limit, with the option to raise.
    let ro = |max_open_files| Db::open(&dir, &cred(), options().with_read_only(true).with_max_open_files(max_open_files));
    invalid(ro(16).unwrap_err(), "max_open_files = 16");
    let reader = ro(1000).unwrap();
    assert_eq!(reader.stats().open_tables, tables);
    assert_eq!(reader.get(b"key000123").unwrap(), Some(value(123)));
    drop(reader);
    // The option has a documented range.
    invalid(Db::open(&dir, &cred(), options().with_max_open_files(15)).unwrap_err(), "max_open_files");
    db.close().unwrap();
    let out = cli(&dir, &["--max-open-files", "16", "get", "key000123"]);
    assert_cli_error(&out, 1, "max_open_files = 16");
    let out = cli(&dir, &["get", "key000123"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn recrc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let mut crc = !0u32;
    for &b in &bytes[..n] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    bytes[n..].copy_from_slice(&(!crc).to_le_bytes());
}

#[test]
fn forged_argon2_cost_in_keyslots() {
    let (_tmp, dir) = new_store();
    let path = dir.join("KEYSLOTS");
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[42], 1, "slot 0 is the passphrase slot; its m_cost starts at 45");
    bytes[45..49].copy_from_slice(&(4u32 << 20).to_le_bytes());
    recrc(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let e = Db::open(&dir, &cred(), options()).unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains("KEYSLOTS") && e.to_string().contains("Argon2"), "{e}");
    assert_cli_error(&cli(&dir, &["get", "k"]), 3, "exceeds the limit of 1048576 KiB");
}

#[test]
fn older_key_file_put_back() {
    let (_tmp, dir) = new_store();
    let old_ring = std::fs::read(dir.join("KEYRING")).unwrap();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.rotate_keys().unwrap();
    db.close().unwrap();
    std::fs::write(dir.join("KEYRING"), &old_ring).unwrap();
    let e = Db::open(&dir, &cred(), options()).unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains("an older KEYRING was put back"), "{e}");
    assert_cli_error(&cli(&dir, &["get", "k"]), 3, "an older KEYRING was put back");
}

#[test]
fn argon2_cost_below_the_floor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let weak = options().with_insecure_kdf_for_tests(false);
    match Db::create(&dir, &cred(), weak) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("below the floor"), "{m}"),
        other => panic!("a weak Argon2 cost was accepted: {other:?}"),
    }
    assert!(!dir.exists(), "nothing written");
    let out = cli(&dir, &["--argon2-memory-kib", "8", "--argon2-iterations", "1", "init"]);
    assert_cli_error(&out, 1, "below the floor");
    assert!(!dir.join("KEYSLOTS").exists());
}

#[test]
fn file_of_another_state() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.put(b"k", b"acknowledged").unwrap();
    db.close().unwrap();
    let wal = common::newest_wal(&dir).unwrap();
    std::fs::remove_file(dir.join(&wal)).unwrap();
    match Db::open(&dir, &cred(), options()) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, wal);
            assert!(reason.contains("missing") && reason.contains("repair"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_cli_error(&cli(&dir, &["get", "k"]), 3, &format!("corruption in {wal}"));
    let out = cli(&dir, &["verify"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&wal), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn frame_cut_in_its_last_bytes() {
    let (_tmp, dir) = new_store();
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.put(b"kept", b"1").unwrap();
    db.put(b"cut", b"2").unwrap();
    db.close().unwrap();
    let path = dir.join(common::newest_wal(&dir).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3..].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let e = Db::open(&dir, &cred(), options()).err().unwrap();
    assert!(matches!(e, Error::TornLastFrame { .. }), "{e:?}");
    assert_cli_error(&cli(&dir, &["get", "kept"]), 3, "open_or_repair");
    let (db, report) = Db::open_or_repair(&dir, &cred(), options()).unwrap();
    assert!(report.is_some());
    assert_eq!(db.get(b"kept").unwrap().as_deref(), Some(&b"1"[..]));
}
