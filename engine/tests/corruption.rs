//! Damaged bytes are found and named, never served and never a panic.
//!
//! A small closed store (a few hundred keys, tiny options so there are several
//! tables, plus a WAL, a manifest, CURRENT, KEYSLOTS and KEYRING) is copied, one
//! byte of one file is changed, and then: `Db::verify` must name that file; and
//! `Db::open` either fails with an error naming the file, or every `get` and the
//! full scan return the right data or a corruption error naming the file. Small
//! files have every byte changed in turn; larger ones at least 200 random
//! positions plus their first 24 and last 8 bytes. LOCK holds only the pid of the last
//! writer and is not data, so it is left out. A wrong passphrase must be refused
//! as such and must leave every file byte-identical.
//!
//! `SYNAPSED_CORRUPTION_SEED=<seed>` replays the random positions.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use synapsed_storage::{Credential, Db, Error, WriteBatch};

mod common;
use common::{cred, options, PASSPHRASE};
use common::cli::BIN;

/// Files up to this size get every byte changed; larger ones a random sample.
const EVERY_BYTE_UP_TO: u64 = 512;
const RANDOM_POSITIONS: usize = 200;

/// A closed store and what it must hold.
struct Fixture {
    _tmp: tempfile::TempDir,
    pristine: PathBuf,
    work: PathBuf,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
    deleted: Vec<Vec<u8>>,
}

fn value_for(key: &str, round: u32) -> Vec<u8> {
    format!("value of {key} in round {round}: {}", "x".repeat(key.len() * 3 % 40)).into_bytes()
}

fn build_store() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let work = tmp.path().join("work");
    let db = Db::create(&pristine, &cred(), options()).unwrap();
    let mut model = BTreeMap::new();
    let mut deleted = Vec::new();
    // Round 0 and 1 go to tables; round 1 overwrites every third key and deletes
    // every seventh, so tables hold shadowed versions and tombstones.
    for round in 0..2u32 {
        for chunk in (0..300u32).collect::<Vec<_>>().chunks(50) {
            let mut batch = WriteBatch::new();
            for i in chunk {
                let key = format!("key/{i:04}");
                if round == 1 && i % 7 == 0 {
                    batch.delete(&key);
                    model.remove(key.as_bytes());
                    deleted.push(key.into_bytes());
                } else if round == 0 || i % 3 == 0 {
                    let v = value_for(&key, round);
                    batch.put(&key, &v);
                    model.insert(key.into_bytes(), v);
                }
            }
            db.write(batch).unwrap();
        }
        db.flush().unwrap();
        if round == 0 {
            db.compact_range(None, None).unwrap();
        }
    }
    // The last writes stay in the WAL.
    for i in 0..20u32 {
        let key = format!("wal/{i:02}");
        let v = value_for(&key, 2);
        db.put(key.as_bytes(), &v).unwrap();
        model.insert(key.into_bytes(), v);
    }
    db.close().unwrap();

    let names = data_files(&pristine);
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    assert!(tables >= 2, "tiny options should give several tables: {names:?}");
    for needed in ["CURRENT", "KEYSLOTS", "KEYRING"] {
        assert!(names.iter().any(|n| n == needed), "no {needed}: {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("MANIFEST")), "no manifest: {names:?}");
    assert!(names.iter().any(|n| n.ends_with(".wal")), "no WAL: {names:?}");
    Fixture { _tmp: tmp, pristine, work, model, deleted }
}

/// Every file of the store except LOCK, sorted.
fn data_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n != "LOCK")
        .collect();
    names.sort();
    names
}

fn restore(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_dir_all(to).unwrap();
    }
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn positions(len: u64, rng: &mut StdRng) -> Vec<u64> {
    if len <= EVERY_BYTE_UP_TO {
        return (0..len).collect();
    }
    // The 24 plaintext header bytes (magic, version, kind, epoch, file id) are each
    // read before any tag is checked, so every one of them is always tried.
    let mut p: Vec<u64> = (0..24).chain(len - 8..len).collect();
    p.extend((0..RANDOM_POSITIONS).map(|_| rng.gen_range(0..len)));
    p.sort_unstable();
    p.dedup();
    p
}

fn names_file(message: &str, file: &str) -> bool {
    message.contains(file)
}

/// The checks of one damaged copy; returns what happened, for the summary.
fn check_one(fx: &Fixture, file: &str, pos: u64, mask: u8) -> &'static str {
    let ctx = format!("{file} byte {pos} ^ {mask:#04x}");
    restore(&fx.pristine, &fx.work);
    let path = fx.work.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[pos as usize] ^= mask;
    std::fs::write(&path, &bytes).unwrap();

    // verify names the file.
    let verdict =
        catch_unwind(AssertUnwindSafe(|| Db::verify(&fx.work, &cred(), options().with_read_only(true))))
            .unwrap_or_else(|_| panic!("{ctx}: verify panicked"));
    match verdict {
        Ok(report) => assert!(
            report.damaged.iter().any(|(name, _)| names_file(name, file)),
            "{ctx}: verify did not report the file: {:?}",
            report.damaged
        ),
        Err(e) => assert!(names_file(&e.to_string(), file), "{ctx}: verify failed without naming the file: {e}"),
    }

    // open either fails naming the file, or serves only right data or named corruption.
    // Assertion failures travel out of the closure as `Err`, so that a panic caught
    // here is always the engine's own.
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<&'static str, String> {
        let db = match Db::open(&fx.work, &cred(), options()) {
            Err(e) if names_file(&e.to_string(), file) => return Ok("open refused"),
            Err(e) => return Err(format!("open failed without naming the file: {e}")),
            Ok(db) => db,
        };
        let mut errors = Tally::default();
        for (k, v) in &fx.model {
            match db.get(k) {
                Ok(got) if got.as_ref() == Some(v) => {}
                Ok(_) => return Err(format!("get {} returned wrong data", String::from_utf8_lossy(k))),
                Err(e) => errors.damage(&e, file, &format!("get {}", String::from_utf8_lossy(k)))?,
            }
        }
        for k in &fx.deleted {
            match db.get(k) {
                Ok(None) => {}
                Ok(Some(_)) => return Err(format!("deleted key {} is back", String::from_utf8_lossy(k))),
                Err(e) => errors.damage(&e, file, &format!("get deleted {}", String::from_utf8_lossy(k)))?,
            }
        }
        let mut expected = fx.model.iter();
        match db.scan_prefix(b"") {
            Err(e) => errors.damage(&e, file, "scan")?,
            Ok(iter) => {
                let mut failed = false;
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            let want = expected.next();
                            if want != Some((&k, &v)) {
                                return Err(format!(
                                    "scan returned {} where {:?} was expected",
                                    String::from_utf8_lossy(&k),
                                    want.map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                                ));
                            }
                        }
                        Err(e) => {
                            errors.damage(&e, file, "scan")?;
                            failed = true;
                            break;
                        }
                    }
                }
                if !failed && expected.next().is_some() {
                    return Err("scan ended early without an error".into());
                }
            }
        }
        // Closing may report the damage too; it must not panic.
        let _ = db.close();
        Ok(errors.outcome())
    }));
    match outcome {
        Ok(Ok(what)) => what,
        Ok(Err(failure)) => panic!("{ctx}: {failure}"),
        Err(_) => panic!("{ctx}: the engine panicked in open or a read"),
    }
}

/// Errors the reads of one damaged copy returned.
#[derive(Default)]
struct Tally {
    corruption: usize,
    /// A flipped epoch or version byte of a data-file header is looked at before
    /// the header's tag can be checked, so it surfaces as `MissingEpoch` or
    /// `UnsupportedVersion` naming the file rather than as `Corruption`.
    header: usize,
}

impl Tally {
    /// Accepts `e` if it reports damage of `file`: a corruption error naming it, or
    /// one of the header errors above naming it.
    fn damage(&mut self, e: &Error, file: &str, what: &str) -> Result<(), String> {
        match e {
            Error::Corruption { file: f, .. } | Error::TornLastFrame { file: f, .. } if f == file => self.corruption += 1,
            Error::MissingEpoch { file: f, .. } if f == file => self.header += 1,
            Error::UnsupportedVersion { file: f, .. } if f == file => self.header += 1,
            other => return Err(format!("{what}: unexpected error {other}")),
        }
        Ok(())
    }

    fn outcome(&self) -> &'static str {
        match (self.corruption, self.header) {
            (0, 0) => "every read right",
            (_, 0) => "reads reported corruption",
            _ => "reads reported a bad header epoch or version",
        }
    }
}

fn flip_files(select: impl Fn(&str) -> bool) {
    let seed: u64 =
        std::env::var("SYNAPSED_CORRUPTION_SEED").ok().map(|s| s.parse().unwrap()).unwrap_or_else(rand::random);
    println!("corruption seed {seed}; replay with SYNAPSED_CORRUPTION_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let fx = build_store();
    let files: Vec<String> = data_files(&fx.pristine).into_iter().filter(|n| select(n)).collect();
    assert!(!files.is_empty(), "no file selected");
    for file in &files {
        let len = std::fs::metadata(fx.pristine.join(file)).unwrap().len();
        let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
        for pos in positions(len, &mut rng) {
            let mask = rng.gen_range(1..=255u8);
            *tally.entry(check_one(&fx, file, pos, mask)).or_default() += 1;
        }
        println!("{file} ({len} bytes): {tally:?}");
    }
}

#[test]
fn flipped_bytes_in_key_files() {
    flip_files(|n| n == "KEYSLOTS" || n == "KEYRING");
}

#[test]
fn flipped_bytes_in_manifest_and_current() {
    flip_files(|n| n == "CURRENT" || n.starts_with("MANIFEST"));
}

#[test]
fn flipped_bytes_in_the_wal() {
    flip_files(|n| n.ends_with(".wal"));
}

#[test]
fn flipped_bytes_in_tables() {
    flip_files(|n| n.ends_with(".sst"));
}

#[test]
fn every_file_kind_is_covered() {
    let fx = build_store();
    let known = |n: &str| {
        n == "KEYSLOTS"
            || n == "KEYRING"
            || n == "CURRENT"
            || n.starts_with("MANIFEST")
            || n.ends_with(".wal")
            || n.ends_with(".sst")
    };
    let others: Vec<String> = data_files(&fx.pristine).into_iter().filter(|n| !known(n)).collect();
    assert!(others.is_empty(), "files no flip test covers: {others:?}");
}

#[test]
fn cli_verify_names_a_damaged_file_of_each_kind() {
    let fx = build_store();
    let mut rng = rand::thread_rng();
    let names = data_files(&fx.pristine);
    let mut sample: Vec<&String> = Vec::new();
    for kind in ["KEYSLOTS", "KEYRING", "CURRENT", "MANIFEST", ".wal", ".sst"] {
        if let Some(n) = names.iter().find(|n| n.starts_with(kind) || n.ends_with(kind)) {
            sample.push(n);
        }
    }
    for file in sample {
        restore(&fx.pristine, &fx.work);
        let path = fx.work.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        let pos = rng.gen_range(0..bytes.len());
        bytes[pos] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new(BIN)
            .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
            .arg("--db")
            .arg(&fx.work)
            .arg("verify")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{file} byte {pos}: verify succeeded: {stdout} {stderr}");
        assert!(
            stdout.contains(file.as_str()) || stderr.contains(file.as_str()),
            "{file} byte {pos}: not named: {stdout} {stderr}"
        );
        assert!(stderr.starts_with("error: "), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
    }
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let fx = build_store();
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        data_files(dir).into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap())).collect()
    };
    let before = snapshot(&fx.pristine);
    let wrong = Credential::passphrase("not the passphrase");
    let r = catch_unwind(AssertUnwindSafe(|| Db::open(&fx.pristine, &wrong, options()))).expect("open panicked");
    assert!(matches!(r, Err(Error::WrongKey)), "open with a wrong passphrase: {:?}", r.err());
    let r = catch_unwind(AssertUnwindSafe(|| Db::open(&fx.pristine, &wrong, options().with_read_only(true))))
        .expect("read-only open panicked");
    assert!(matches!(r, Err(Error::WrongKey)), "read-only open with a wrong passphrase: {:?}", r.err());
    let r = catch_unwind(AssertUnwindSafe(|| Db::verify(&fx.pristine, &wrong, options()))).expect("verify panicked");
    assert!(matches!(r, Err(Error::WrongKey)), "verify with a wrong passphrase: {:?}", r.err());
    let r = Db::open(&fx.pristine, &Credential::raw_key([7; 32]), options());
    assert!(matches!(r, Err(Error::WrongKey)), "open with a raw key: {:?}", r.err());
    for args in [&["get", "key/0001"][..], &["put", "a", "b"], &["batch"], &["compact"], &["verify"]] {
        let out = Command::new(BIN)
            .env("SYNAPSED_PASSPHRASE", "not the passphrase")
            .arg("--db")
            .arg(&fx.pristine)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded with a wrong passphrase");
        assert!(stderr.starts_with("error: ") && stderr.contains("wrong passphrase"), "{args:?}: {stderr}");
    }
    assert!(snapshot(&fx.pristine) == before, "a refused open changed the store's files");
    // And the right passphrase still opens it with everything in place.
    let db = Db::open(&fx.pristine, &cred(), options()).unwrap();
    for (k, v) in &fx.model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v));
    }
    db.close().unwrap();
}
