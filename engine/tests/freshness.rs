//! Files the engine did not write, or wrote earlier: an old WAL segment copied
//! over the live one's name or put under a higher number, a deleted segment, an
//! older `CURRENT` + manifest put back. Each is refused by `open` (read-write and
//! read-only) and named by `verify`, never silently used; `repair` still rebuilds
//! from what survives.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::process::Command;

use synapsed_storage::{Db, Error, Options};

mod common;
use common::{cred, options, PASSPHRASE};
use common::cli::BIN;


fn read_only() -> Options {
    options().with_read_only(true)
}

fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The reproduction: `x` and `y` written and the store closed (saved
/// aside); then `x` deleted, `y` overwritten, everything compacted, `w` written.
/// Returns (tmp, live store, saved copy).
fn two_states() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let saved = tmp.path().join("saved");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    db.put(b"x", b"secret").unwrap();
    db.put(b"y", b"keep").unwrap();
    db.close().unwrap();
    copy_dir(&dir, &saved);
    let db = Db::open(&dir, &cred(), options()).unwrap();
    db.delete(b"x").unwrap();
    db.put(b"y", b"new").unwrap();
    db.compact_range(None, None).unwrap();
    db.put(b"w", b"latest").unwrap();
    db.close().unwrap();
    (tmp, dir, saved)
}

/// `open` (read-write and read-only) fails with a corruption naming `file`, and
/// `verify` names it as damaged.
fn refused_naming(dir: &Path, file: &str) {
    for opts in [read_only(), options()] {
        let ro = opts.read_only;
        match Db::open(dir, &cred(), opts) {
            Err(Error::Corruption { file: named, .. }) => assert_eq!(named, file, "read_only={ro}"),
            Err(e) => panic!("read_only={ro}: expected a corruption naming {file}, got {e}"),
            Ok(db) => {
                let x = db.get(b"x").unwrap();
                panic!("read_only={ro}: opened a store holding a file of an earlier state (x = {x:?})")
            }
        }
    }
    let report = Db::verify(dir, &cred(), options()).unwrap();
    assert!(report.damaged.iter().any(|(f, _)| f == file), "verify must name {file}: {report:?}");
}

#[test]
fn old_segment_copied_over_the_live_segment_is_refused() {
    let (_tmp, dir, saved) = two_states();
    let old = names(&saved, ".wal");
    let live = names(&dir, ".wal");
    assert_eq!((old.len(), live.len()), (1, 1), "{old:?} {live:?}");
    std::fs::copy(saved.join(&old[0]), dir.join(&live[0])).unwrap();
    refused_naming(&dir, &live[0]);
}

#[test]
fn old_segment_under_a_higher_number_is_refused() {
    let (_tmp, dir, saved) = two_states();
    let old = names(&saved, ".wal");
    std::fs::copy(saved.join(&old[0]), dir.join("000900.wal")).unwrap();
    refused_naming(&dir, "000900.wal");
}

/// The reproduction through the real binary: `verify` exits 3 naming the
/// segment, and `get x` does not return the deleted value.
#[test]
fn cli_refuses_an_old_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let saved = tmp.path().join("saved");
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(BIN);
        c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).arg("--db").arg(&dir).args(args);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            if let Some(input) = stdin {
                pipe.write_all(input.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("panicked"), "{text}");
        (out.status.code().unwrap_or(-1), text)
    };
    assert_eq!(run(&["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1", "init"], None).0, 0);
    assert_eq!(run(&["batch"], Some("put x secret\ncommit\nput y keep\ncommit\n")).0, 0);
    copy_dir(&dir, &saved);
    for args in [&["delete", "x"][..], &["put", "y", "new"], &["compact"], &["put", "w", "latest"]] {
        let (code, text) = run(args, None);
        assert_eq!(code, 0, "{args:?}: {text}");
    }
    let old = names(&saved, ".wal");
    let live = names(&dir, ".wal");
    std::fs::copy(saved.join(&old[0]), dir.join(&live[0])).unwrap();
    let (code, text) = run(&["verify"], None);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains(&live[0]), "{text}");
    let (code, text) = run(&["get", "x"], None);
    assert_ne!(code, 0, "{text}");
    assert!(!text.contains("secret"), "{text}");
}

/// The live segment of a closed store deleted: its writes would be silently
/// lost; the manifest lists the segment, so its absence is refused by name.
#[test]
fn deleted_live_segment_is_refused() {
    let (_tmp, dir, _saved) = two_states();
    let live = names(&dir, ".wal");
    assert_eq!(live.len(), 1);
    std::fs::remove_file(dir.join(&live[0])).unwrap();
    refused_naming(&dir, &live[0]);
}

/// An older `CURRENT` + manifest put back into a newer store: the newer WAL
/// segment on disk (not listed by the old manifest) reveals it. Nothing is
/// deleted or rewritten by the refused opens: the store, given its own
/// `CURRENT` and manifest back, opens with every write.
#[test]
fn older_current_and_manifest_put_back_are_refused_and_change_nothing() {
    let (tmp, dir, saved) = two_states();
    let aside = tmp.path().join("aside");
    copy_dir(&dir, &aside);
    for m in names(&dir, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::remove_file(dir.join(m)).unwrap();
    }
    for m in names(&saved, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::copy(saved.join(&m), dir.join(&m)).unwrap();
    }
    let before = names(&dir, "");
    let current_before = std::fs::read(dir.join("CURRENT")).unwrap();
    for opts in [read_only(), options()] {
        match Db::open(&dir, &cred(), opts) {
            Err(Error::Corruption { file, .. }) => assert!(file.ends_with(".wal"), "{file}"),
            Err(e) => panic!("expected a corruption naming a segment, got {e}"),
            Ok(db) => panic!("an older manifest was accepted (x = {:?})", db.get(b"x").unwrap()),
        }
    }
    let report = Db::verify(&dir, &cred(), options()).unwrap();
    assert!(!report.is_ok(), "{report:?}");
    // No newer table was deleted as obsolete.
    let after: Vec<String> = names(&dir, "").into_iter().filter(|n| n.ends_with(".sst") || n.ends_with(".wal")).collect();
    let kept: Vec<String> = before.into_iter().filter(|n| n.ends_with(".sst") || n.ends_with(".wal")).collect();
    assert_eq!(after, kept);
    // Nor was the stale state made the store's: no manifest written, CURRENT unchanged.
    assert_eq!(names(&dir, "").into_iter().filter(|n| n.starts_with("MANIFEST-")).count(), names(&saved, "").into_iter().filter(|n| n.starts_with("MANIFEST-")).count());
    assert_eq!(std::fs::read(dir.join("CURRENT")).unwrap(), current_before);
    for m in names(&dir, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::remove_file(dir.join(m)).unwrap();
    }
    for m in names(&aside, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::copy(aside.join(&m), dir.join(&m)).unwrap();
    }
    let db = Db::open(&dir, &cred(), options()).unwrap();
    assert_eq!(db.get(b"x").unwrap(), None);
    assert_eq!(db.get(b"y").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(db.get(b"w").unwrap().as_deref(), Some(&b"latest"[..]));
}

/// A power loss that leaves the newest segment's last frame whole but for its
/// last bytes (zeros after) is a typed error, and the application's one call,
/// `Db::open_or_repair`, gets the store back with every earlier write.
#[test]
fn frame_cut_in_its_last_bytes_is_typed_and_open_or_repair_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"2").unwrap();
    db.put(b"last", b"cut by the power loss").unwrap();
    db.close().unwrap();
    let live = names(&dir, ".wal");
    let path = dir.join(&live[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    // The last 5 bytes of the last frame (its tag) never reached the disk.
    bytes[n - 5..].fill(0);
    bytes.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    match Db::open(&dir, &cred(), options()) {
        Err(e @ Error::TornLastFrame { .. }) => {
            assert!(e.is_corruption() && e.is_torn_last_frame());
            assert!(e.to_string().contains(&live[0]), "{e}");
        }
        Err(e) => panic!("expected TornLastFrame, got {e}"),
        Ok(_) => panic!("a frame cut in its last bytes opened as if whole"),
    }
    let (db, report) = Db::open_or_repair(&dir, &cred(), options()).unwrap();
    assert!(report.is_some(), "open_or_repair did not repair");
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(db.get(b"last").unwrap(), None);
    db.close().unwrap();
    // Once repaired, a plain open works again and open_or_repair repairs nothing.
    let (db, report) = Db::open_or_repair(&dir, &cred(), options()).unwrap();
    assert!(report.is_none());
    db.close().unwrap();
}

/// Other damage is not repaired by `open_or_repair`: it is returned as it is.
#[test]
fn open_or_repair_leaves_other_damage_alone() {
    let (_tmp, dir, saved) = two_states();
    let old = names(&saved, ".wal");
    let live = names(&dir, ".wal");
    std::fs::copy(saved.join(&old[0]), dir.join(&live[0])).unwrap();
    let before: Vec<(String, Vec<u8>)> = names(&dir, "").into_iter().filter(|n| n != "LOCK").map(|n| { let b = std::fs::read(dir.join(&n)).unwrap(); (n, b) }).collect();
    assert!(matches!(Db::open_or_repair(&dir, &cred(), options()), Err(Error::Corruption { .. })));
    let after: Vec<(String, Vec<u8>)> = names(&dir, "").into_iter().filter(|n| n != "LOCK").map(|n| { let b = std::fs::read(dir.join(&n)).unwrap(); (n, b) }).collect();
    assert!(before == after, "a refused open changed the store");
}

/// An in-memory stand-in for an OS keystore counter or a TPM NV index.
#[derive(Debug, Default)]
struct MemCounter(std::sync::Mutex<std::collections::HashMap<[u8; 16], u64>>);

impl synapsed_storage::FreshnessCounter for MemCounter {
    fn advance(&self, store_id: &[u8; 16], last_seqno: u64) -> std::io::Result<()> {
        let mut map = self.0.lock().unwrap();
        let v = map.entry(*store_id).or_insert(0);
        assert!(last_seqno >= *v, "the counter went backwards");
        *v = last_seqno;
        Ok(())
    }
    fn highest(&self, store_id: &[u8; 16]) -> std::io::Result<Option<u64>> {
        Ok(self.0.lock().unwrap().get(store_id).copied())
    }
}

/// A copy of the whole directory put back is a valid store (every file is
/// authentic); only outside state can tell it is old. With a counter it is
/// refused by open (read-write and read-only) and by verify, changing nothing.
#[test]
fn whole_directory_rollback_is_refused_with_an_outside_counter() {
    let counter: Arc<MemCounter> = Arc::default();
    let with_counter = |read_only: bool| options().with_freshness_counter(Some(counter.clone())).with_read_only(read_only);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let old = tmp.path().join("old");
    let db = Db::create(&dir, &cred(), with_counter(false)).unwrap();
    db.put(b"balance", b"100").unwrap();
    db.close().unwrap();
    copy_dir(&dir, &old);
    let db = Db::open(&dir, &cred(), with_counter(false)).unwrap();
    db.put(b"balance", b"0").unwrap();
    db.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    copy_dir(&old, &dir);
    // Without outside state the old copy is indistinguishable from the store.
    let db = Db::open(&dir, &cred(), options().with_read_only(true)).unwrap();
    assert_eq!(db.get(b"balance").unwrap().as_deref(), Some(&b"100"[..]));
    drop(db);
    for read_only in [true, false] {
        match Db::open(&dir, &cred(), with_counter(read_only)) {
            Err(Error::RolledBack { found, expected }) => assert!(found < expected, "{found} {expected}"),
            Err(e) => panic!("read_only={read_only}: {e}"),
            Ok(db) => panic!("read_only={read_only}: a rolled-back store opened (balance {:?})", db.get(b"balance").unwrap()),
        }
    }
    let report = Db::verify(&dir, &cred(), with_counter(false)).unwrap();
    assert!(report.damaged.iter().any(|(_, why)| why.contains("older than its freshness counter")), "{report:?}");
}

/// An older copy of the live manifest (written before a compaction retired the
/// tables it lists) put back: refused naming a missing table, before anything
/// is written.
#[test]
fn manifest_from_before_a_compaction_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let saved = tmp.path().join("saved");
    let db = Db::create(&dir, &cred(), options()).unwrap();
    for i in 0..40u32 {
        db.put(format!("k{i:03}").as_bytes(), &[1u8; 100]).unwrap();
    }
    db.flush().unwrap();
    for i in 0..40u32 {
        db.put(format!("k{i:03}").as_bytes(), &[2u8; 100]).unwrap();
    }
    db.flush().unwrap();
    std::fs::create_dir_all(&saved).unwrap();
    for m in names(&dir, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::copy(dir.join(&m), saved.join(&m)).unwrap();
    }
    let tables_then = names(&dir, ".sst");
    db.compact_range(None, None).unwrap();
    db.close().unwrap();
    let gone: Vec<&String> = tables_then.iter().filter(|t| !dir.join(t).exists()).collect();
    assert!(!gone.is_empty(), "the compaction retired no table");
    for m in names(&dir, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::remove_file(dir.join(m)).unwrap();
    }
    for m in names(&saved, "") {
        std::fs::copy(saved.join(&m), dir.join(&m)).unwrap();
    }
    let before: Vec<String> = names(&dir, "").into_iter().filter(|n| n != "LOCK").collect();
    let current = std::fs::read(dir.join("CURRENT")).unwrap();
    match Db::open(&dir, &cred(), options()) {
        Err(Error::Corruption { file, .. }) => assert!(file.ends_with(".sst") || file.ends_with(".wal"), "{file}"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a manifest from before a compaction was accepted"),
    }
    let after: Vec<String> = names(&dir, "").into_iter().filter(|n| n != "LOCK").collect();
    assert_eq!(before, after, "a refused open changed the directory");
    assert_eq!(std::fs::read(dir.join("CURRENT")).unwrap(), current);
}

/// The reproduction as given: an older `CURRENT` + `MANIFEST-*` copied
/// back into the current store, the newer manifest left in place. The newer
/// manifest chains past the old one, and the open is refused naming `CURRENT`
/// (or, where the newer manifest is gone, the segments reveal it: see
/// `older_current_and_manifest_put_back_are_refused_and_change_nothing`).
#[test]
fn older_current_put_back_next_to_a_newer_manifest_is_refused() {
    let (_tmp, dir, saved) = two_states();
    for m in names(&saved, "").into_iter().filter(|n| n.starts_with("MANIFEST-") || n == "CURRENT") {
        std::fs::copy(saved.join(&m), dir.join(&m)).unwrap();
    }
    for opts in [read_only(), options()] {
        match Db::open(&dir, &cred(), opts) {
            Err(Error::Corruption { file, reason, .. }) => {
                assert!(file == "CURRENT" || file.ends_with(".wal"), "{file}: {reason}");
            }
            Err(e) => panic!("{e}"),
            Ok(db) => panic!("an older CURRENT was accepted (x = {:?})", db.get(b"x").unwrap()),
        }
    }
    let report = Db::verify(&dir, &cred(), options()).unwrap();
    assert!(!report.is_ok(), "{report:?}");
}
