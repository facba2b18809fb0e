//! The key commands of the `synapsed-storage` binary, as a user scripts them:
//! `init` with its recovery key (printed, written to an owner-only file, or
//! split into shares), `--recovery-key-file`, `key passphrase`, `key rotate` with
//! its progress lines, `stats --json` epochs, `secure-delete`, and that no output
//! of any of them shows a secret.
//!
//! Kept apart from the library tests: a process spawned while another test holds
//! a store's `LOCK` inherits that lock until it execs, which would make a
//! close-then-reopen in a parallel test see the store as locked.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::{BIN, FAST_KDF};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use synapsed_storage::RecoveryKey;

const PASSPHRASE: &str = "correct horse battery staple";


#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut c = Command::new(BIN);
    c.env_remove("SYNAPSED_PASSPHRASE")
        .env_remove("SYNAPSED_NEW_PASSPHRASE")
        .env_remove("RUST_BACKTRACE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg("--db").arg(dir).args(args).stdin(Stdio::null());
    let output = c.output().unwrap();
    let out = Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

fn run(dir: &Path, args: &[&str]) -> Out {
    run_env(dir, &[("SYNAPSED_PASSPHRASE", PASSPHRASE)], args)
}

fn ok(out: Out) -> Out {
    assert_eq!(out.code, 0, "{out:?}");
    out
}

fn failed(out: Out) -> Out {
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    out
}

fn init(dir: &Path, extra: &[&str]) -> Out {
    ok(run(dir, &[&FAST_KDF[..], &["init"], extra].concat()))
}

#[test]
fn init_prints_the_recovery_key_once_and_it_opens_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = init(&dir, &[]);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("recovery key:"))
        .expect("a recovery key line")
        .to_string();
    assert_eq!(out.stdout.matches("SYN1-").count(), 1, "{out:?}");
    let key = line.trim_start_matches("recovery key:").trim();
    ok(run(&dir, &["put", "k", "v"]));
    let file = tmp.path().join("recovery.txt");
    write_secret(&file, format!("{key}\n")).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        ok(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"])).stdout,
        "v\n"
    );
    // A recovery key cannot be the credential of a new store: init makes its own.
    let other_dir = tmp.path().join("other-store");
    failed(run_env(&other_dir, &[], &["--recovery-key-file", f, "init"]));
    assert!(!other_dir.join("KEYSLOTS").exists());
    let other = tmp.path().join("other.txt");
    write_secret(&other, format!("{}\n", RecoveryKey::generate().to_text().as_str())).unwrap();
    let out = failed(run_env(
        &dir,
        &[],
        &["--recovery-key-file", other.to_str().unwrap(), "get", "k"],
    ));
    assert!(out.stderr.contains("wrong passphrase or key"), "{out:?}");
    write_secret(&other, "SYN1-0000\n").unwrap();
    failed(run_env(
        &dir,
        &[],
        &["--recovery-key-file", other.to_str().unwrap(), "get", "k"],
    ));
}

#[test]
fn init_recovery_out_is_owner_only_and_shares_combine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let file = tmp.path().join("recovery.key");
    let f = file.to_str().unwrap();
    let out = init(&dir, &["--recovery-out", f]);
    assert!(
        !out.stdout.contains("SYN1-"),
        "the key is not printed when written to a file: {out:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    ok(run(&dir, &["put", "a", "1"]));
    assert_eq!(
        ok(run_env(&dir, &[], &["--recovery-key-file", f, "get", "a"])).stdout,
        "1\n"
    );
    // An existing file is never overwritten, and no store is made.
    let dir2 = tmp.path().join("store2");
    failed(run(&dir2, &[&FAST_KDF[..], &["init", "--recovery-out", f]].concat()));
    assert!(!dir2.join("KEYSLOTS").exists());

    let shares_file = tmp.path().join("shares.txt");
    let dir3 = tmp.path().join("store3");
    init(
        &dir3,
        &[
            "--recovery-shares",
            "2/3",
            "--recovery-out",
            shares_file.to_str().unwrap(),
        ],
    );
    ok(run(&dir3, &["put", "b", "2"]));
    let shares = std::fs::read_to_string(&shares_file).unwrap();
    let lines: Vec<&str> = shares.lines().collect();
    assert_eq!(lines.len(), 3);
    let two = tmp.path().join("two.txt");
    write_secret(&two, format!("{}\n{}\n", lines[2], lines[0])).unwrap();
    assert_eq!(
        ok(run_env(
            &dir3,
            &[],
            &["--recovery-key-file", two.to_str().unwrap(), "get", "b"]
        ))
        .stdout,
        "2\n"
    );
    let one = tmp.path().join("one.txt");
    write_secret(&one, format!("{}\n", lines[1])).unwrap();
    failed(run_env(
        &dir3,
        &[],
        &["--recovery-key-file", one.to_str().unwrap(), "get", "b"],
    ));
    failed(run(
        &tmp.path().join("store4"),
        &[&FAST_KDF[..], &["init", "--recovery-shares", "1/3"]].concat(),
    ));
}

#[test]
fn key_passphrase_replaces_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    ok(run(&dir, &["put", "k", "v"]));
    failed(run(&dir, &["key", "passphrase"]));
    let new_file = tmp.path().join("new.txt");
    write_secret(&new_file, "brand new passphrase\n").unwrap();
    let out = ok(run(
        &dir,
        &[
            &FAST_KDF[..],
            &["key", "passphrase", "--new-passphrase-file", new_file.to_str().unwrap()],
        ]
        .concat(),
    ));
    assert!(out.stdout.contains("passphrase changed"), "{out:?}");
    failed(run(&dir, &["get", "k"]));
    assert_eq!(
        ok(run_env(
            &dir,
            &[("SYNAPSED_PASSPHRASE", "brand new passphrase")],
            &["get", "k"]
        ))
        .stdout,
        "v\n"
    );
    // And again through the environment variable.
    ok(run_env(
        &dir,
        &[
            ("SYNAPSED_PASSPHRASE", "brand new passphrase"),
            ("SYNAPSED_NEW_PASSPHRASE", "third one"),
        ],
        &["key", "passphrase"],
    ));
    failed(run_env(
        &dir,
        &[("SYNAPSED_PASSPHRASE", "brand new passphrase")],
        &["get", "k"],
    ));
    assert_eq!(
        ok(run_env(&dir, &[("SYNAPSED_PASSPHRASE", "third one")], &["get", "k"])).stdout,
        "v\n"
    );
    let slots = ok(run(&dir, &["key", "slots"])).stdout;
    assert!(slots.contains("Passphrase") && slots.contains("recovery"), "{slots}");
}

#[test]
fn key_rotate_prints_progress_and_stats_lists_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    let mut input = String::new();
    for i in 0..300 {
        input.push_str(&format!("put key/{i:04} value-{i}-{}\n", "p".repeat(40)));
        if i % 50 == 49 {
            input.push_str("commit\n");
        }
    }
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .arg("--db")
        .arg(&dir)
        .args(["--memtable-size-bytes", "4096", "batch"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let stats = |dir: &PathBuf| -> serde_json::Value {
        serde_json::from_str(&ok(run(dir, &["stats", "--json"])).stdout).unwrap()
    };
    let before = stats(&dir);
    let old_epoch = before["current_epoch"].as_u64().unwrap();
    assert_eq!(before["live_epochs"], serde_json::json!([old_epoch]));
    assert_eq!(before["files_per_epoch"][0]["epoch"].as_u64(), Some(old_epoch));
    assert!(!before["files_per_epoch"][0]["files"].as_array().unwrap().is_empty());

    let out = ok(run(&dir, &["key", "rotate"]));
    assert!(out.stdout.contains("rotate: rewrote"), "{out:?}");
    assert!(
        out.stdout.lines().last().unwrap().starts_with("rotated to epoch"),
        "{out:?}"
    );
    let after = stats(&dir);
    let new_epoch = after["current_epoch"].as_u64().unwrap();
    assert_ne!(new_epoch, old_epoch);
    assert_eq!(after["live_epochs"], serde_json::json!([new_epoch]));
    assert_eq!(after["files_per_epoch"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after["files_per_epoch"][0]["epoch"].as_u64(), Some(new_epoch));
    let scan = ok(run(&dir, &["scan", "key/"])).stdout;
    assert_eq!(scan.lines().count(), 300);
    assert_eq!(
        ok(run(&dir, &["get", "key/0123"])).stdout,
        format!("value-123-{}\n", "p".repeat(40))
    );
    assert!(ok(run(&dir, &["verify"])).stdout.contains("ok"));
}

#[test]
fn secure_delete_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    for (k, v) in [("a", "1"), ("p/1", "x"), ("p/2", "y"), ("q", "2")] {
        ok(run(&dir, &["put", k, v]));
    }
    let out = ok(run(&dir, &["secure-delete", "a"]));
    assert!(out.stdout.starts_with("securely deleted 1 key(s)"), "{out:?}");
    failed(run(&dir, &["get", "a"]));
    let out = ok(run(&dir, &["secure-delete", "--prefix", "p/"]));
    assert!(out.stdout.starts_with("securely deleted 2 key(s)"), "{out:?}");
    assert_eq!(ok(run(&dir, &["scan", ""])).stdout, "q\t2\n");
    failed(run(&dir, &["secure-delete"]));
    failed(run(&dir, &["secure-delete", "a", "--prefix", "p"]));
    let stats: serde_json::Value = serde_json::from_str(&ok(run(&dir, &["stats", "--json"])).stdout).unwrap();
    assert_eq!(stats["live_epochs"].as_array().unwrap().len(), 1, "{stats}");
}

/// Whether `text` shows any 8 consecutive characters of a recovery key's text
/// (dashes removed).
fn shows_text(text: &str, secret_text: &str) -> bool {
    let compact: String = secret_text.chars().filter(|c| *c != '-').skip(4).collect();
    let haystack: String = text.chars().filter(|c| *c != '-').collect();
    compact
        .as_bytes()
        .windows(8)
        .any(|w| haystack.contains(std::str::from_utf8(w).unwrap()))
}

const HYGIENE_PASSPHRASE: &str = "zq-hunter2-xv-k9-passphrase";

#[test]
fn cli_output_never_shows_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let recovery_file = tmp.path().join("recovery.key");
    let new_file = tmp.path().join("new-passphrase");
    write_secret(&new_file, "zq-new-secret-passphrase\n").unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(BIN);
        c.env_remove("SYNAPSED_PASSPHRASE")
            .env_remove("SYNAPSED_NEW_PASSPHRASE");
        c.envs(envs.iter().copied())
            .arg("--db")
            .arg(&dir)
            .args(args)
            .stdin(Stdio::null());
        let out = c.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let env = [("SYNAPSED_PASSPHRASE", HYGIENE_PASSPHRASE)];
    let kdf = ["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1"];
    let rf = recovery_file.to_str().unwrap();
    let nf = new_file.to_str().unwrap();
    let mut transcript = Vec::new();
    transcript.push(run(&env, &[&kdf[..], &["init", "--recovery-out", rf]].concat()));
    let key_text = std::fs::read_to_string(&recovery_file).unwrap();
    transcript.push(run(&env, &["put", "a", "1"]));
    transcript.push(run(&[("SYNAPSED_PASSPHRASE", "zq-wrong-passphrase")], &["get", "a"]));
    transcript.push(run(&[], &["--recovery-key-file", rf, "get", "a"]));
    let typo_file = tmp.path().join("typo.key");
    write_secret(&typo_file, {
        // 'U' is outside the recovery key's alphabet, wherever it lands.
        let mut chars: Vec<char> = key_text.trim().chars().collect();
        chars[10] = 'U';
        chars.into_iter().collect::<String>()
    })
    .unwrap();
    transcript.push(run(
        &[],
        &["--recovery-key-file", typo_file.to_str().unwrap(), "get", "a"],
    ));
    transcript.push(run(&env, &["key", "rotate"]));
    transcript.push(run(&env, &["secure-delete", "a"]));
    transcript.push(run(&env, &["stats", "--json"]));
    transcript.push(run(&env, &["key", "slots"]));
    transcript.push(run(
        &env,
        &[&kdf[..], &["key", "passphrase", "--new-passphrase-file", nf]].concat(),
    ));
    transcript.push(run(&[("SYNAPSED_PASSPHRASE", "zq-new-secret-passphrase")], &["verify"]));
    let expected = [true, true, false, true, false, true, true, true, true, true, true];
    for ((ok, text), want) in transcript.iter().zip(expected) {
        assert_eq!(*ok, want, "{text}");
        assert!(!text.contains(HYGIENE_PASSPHRASE), "{text}");
        assert!(!text.contains("zq-wrong-passphrase"), "{text}");
        assert!(!text.contains("zq-new-secret"), "{text}");
        assert!(!shows_text(text, key_text.trim()), "{text}");
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Recomputes the trailing crc32 of a key file after a test changed it.
fn recrc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

/// A `KEYSLOTS` whose passphrase slot asks Argon2id for 4 GiB (crc recomputed, as
/// an adversary would) once made the process abort in Argon2's allocation before
/// any tag was checked. It must be a clear error naming the file, exit 3.
#[test]
fn forged_argon2_cost_in_keyslots_is_an_error_not_an_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    let path = dir.join("KEYSLOTS");
    let good = std::fs::read(&path).unwrap();
    // Slot 0 is the passphrase slot: kind byte at 42, body (m_cost first) at 45.
    assert_eq!(good[42], 1, "slot 0 is a passphrase slot");
    for (field, value) in [(0usize, 4u32 * 1024 * 1024), (0, u32::MAX), (4, u32::MAX)] {
        let mut bad = good.clone();
        bad[45 + field..49 + field].copy_from_slice(&value.to_le_bytes());
        recrc(&mut bad);
        std::fs::write(&path, &bad).unwrap();
        let out = run(&dir, &["get", "k"]);
        assert_eq!(out.code, 3, "field {field} = {value}: {out:?}");
        assert!(out.stderr.contains("KEYSLOTS") && out.stderr.contains("Argon2"), "{out:?}");
    }
    std::fs::write(&path, &good).unwrap();
    ok(run(&dir, &["put", "k", "v"]));
}

/// `key passphrase` on a directory without a store says so once, in plain words
/// (it once read "no store in D (KEYSLOTS is missing) holds no store").
#[test]
fn key_passphrase_on_a_missing_store_is_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nothing-here");
    std::fs::create_dir(&dir).unwrap();
    let out = failed(run_env(
        &dir,
        &[("SYNAPSED_PASSPHRASE", PASSPHRASE), ("SYNAPSED_NEW_PASSPHRASE", "new one")],
        &["key", "passphrase"],
    ));
    assert_eq!(out.stderr.matches("holds no store").count(), 1, "{out:?}");
    assert!(!out.stderr.contains("no store in"), "{out:?}");
    assert!(out.stderr.contains("nothing-here holds no store"), "{out:?}");
}

/// `get ""` names the empty key rather than printing "key not found: ".
#[test]
fn get_of_the_empty_key_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    let out = failed(run(&dir, &["get", ""]));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("the empty key"), "{out:?}");
}

/// An I/O error shows the OS's text once (it was printed twice: once in the
/// store's message, once more as its cause).
#[test]
fn os_errors_are_not_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    // A directory where the keyring file belongs: reading it fails with EISDIR.
    std::fs::remove_file(dir.join("KEYRING")).unwrap();
    std::fs::create_dir(dir.join("KEYRING")).unwrap();
    let out = failed(run(&dir, &["get", "k"]));
    assert!(out.stderr.contains("os error"), "{out:?}");
    assert_eq!(out.stderr.matches("os error").count(), 1, "{out:?}");
}

/// `init` refuses an Argon2id cost below OWASP's minimum unless the explicit test
/// option is given (it once accepted 8 KiB/t=1 silently), and `key passphrase`
/// keeps the replaced slot's cost when a lower one is asked (a 256 MiB/t=4 slot
/// once became 19 MiB/t=2).
#[test]
fn argon2_floor_at_init_and_passphrase_change_keeps_the_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = failed(run(&dir, &["--argon2-memory-kib", "8", "--argon2-iterations", "1", "init"]));
    assert!(out.stderr.contains("below the floor"), "{out:?}");
    assert!(!dir.join("KEYSLOTS").exists(), "nothing is created");
    let out = failed(run(&dir, &["--argon2-iterations", "1", "init"]));
    assert!(out.stderr.contains("below the floor"), "{out:?}");
    ok(run(
        &dir,
        &["--insecure-kdf-for-tests", "--argon2-memory-kib", "256", "--argon2-iterations", "4", "init"],
    ));
    ok(run_env(
        &dir,
        &[("SYNAPSED_PASSPHRASE", PASSPHRASE), ("SYNAPSED_NEW_PASSPHRASE", "new one")],
        &[&FAST_KDF[..], &["key", "passphrase"]].concat(),
    ));
    let slots = ok(run(&dir, &["key", "slots"]));
    assert!(slots.stdout.contains("slot 1: Passphrase argon2id m=256 KiB t=4 p=1"), "{slots:?}");
}

fn recovery_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("recovery key:"))
        .expect("a recovery key line")
        .trim()
        .to_string()
}

/// `key rekey`: a new master key and recovery key, files re-encrypted; the
/// passphrase used still opens, the old recovery key does not, the new one does.
#[test]
fn key_rekey_replaces_the_master_and_recovery_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let old = recovery_line(&init(&dir, &[]).stdout);
    ok(run(&dir, &["put", "k", "v"]));
    let out = ok(run(&dir, &["key", "rekey"]));
    assert!(out.stdout.contains("new master key; rotated to epoch 2"), "{out:?}");
    assert!(out.stdout.contains("removed slot 1 (recovery"), "{out:?}");
    let new = recovery_line(&out.stdout);
    assert_ne!(new, old);
    assert_eq!(ok(run(&dir, &["get", "k"])).stdout, "v\n");
    let file = tmp.path().join("r.txt");
    write_secret(&file, format!("{old}\n")).unwrap();
    let f = file.to_str().unwrap();
    failed(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"]));
    write_secret(&file, format!("{new}\n")).unwrap();
    assert_eq!(ok(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"])).stdout, "v\n");
    // --recovery-out: written (owner-only) before the change, not printed.
    let out_file = tmp.path().join("new-recovery.txt");
    let out = ok(run(&dir, &["key", "rekey", "--recovery-out", out_file.to_str().unwrap()]));
    assert!(!out.stdout.contains("SYN1-"), "{out:?}");
    let written = std::fs::read_to_string(&out_file).unwrap();
    write_secret(&file, &written).unwrap();
    assert_eq!(ok(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"])).stdout, "v\n");
}

/// A passphrase file its group or others may read is used, with a warning.
#[test]
fn a_secret_file_open_to_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir, &[]);
    let file = tmp.path().join("pass.txt");
    std::fs::write(&file, format!("{PASSPHRASE}\n")).unwrap();
    let f = file.to_str().unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ok(run_env(&dir, &[], &["--passphrase-file", f, "put", "k", "v"]));
    assert!(!out.stderr.contains("warning"), "{out:?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ok(run_env(&dir, &[], &["--passphrase-file", f, "get", "k"]));
    assert!(out.stderr.contains("warning:") && out.stderr.contains("pass.txt"), "{out:?}");
    assert!(out.stderr.contains("mode 644"), "{out:?}");
}

/// `init --recovery-shares K/N --recovery-share-out-dir D` writes one owner-only
/// file per share; K of them open the store; a share of another split or a
/// repeated one is named by line before any unlock is tried.
#[test]
fn recovery_shares_one_file_each_and_a_bad_share_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let shares_dir = tmp.path().join("shares");
    let d = shares_dir.to_str().unwrap();
    let out = init(&dir, &["--recovery-shares", "2/3", "--recovery-share-out-dir", d]);
    assert!(!out.stdout.contains("SYS1-"), "{out:?}");
    let mut texts = Vec::new();
    for i in 1..=3 {
        let path = shares_dir.join(format!("share-{i}-of-3.txt"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        texts.push(std::fs::read_to_string(&path).unwrap().trim().to_string());
    }
    ok(run(&dir, &["put", "k", "v"]));
    let file = tmp.path().join("two.txt");
    let f = file.to_str().unwrap();
    write_secret(&file, format!("{}\n{}\n", texts[0], texts[2])).unwrap();
    assert_eq!(ok(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"])).stdout, "v\n");
    // A share of another store's split among them.
    let other = tmp.path().join("other");
    let other_shares = tmp.path().join("other-shares");
    init(&other, &["--recovery-shares", "2/3", "--recovery-share-out-dir", other_shares.to_str().unwrap()]);
    let foreign = std::fs::read_to_string(other_shares.join("share-2-of-3.txt")).unwrap();
    write_secret(&file, format!("{}\n{}\n{}\n", texts[0], foreign.trim(), texts[1])).unwrap();
    let out = failed(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"]));
    assert!(out.stderr.contains("line 2") && out.stderr.contains("another split"), "{out:?}");
    write_secret(&file, format!("{}\n{}\n", texts[1], texts[1])).unwrap();
    let out = failed(run_env(&dir, &[], &["--recovery-key-file", f, "get", "k"]));
    assert!(out.stderr.contains("line 2 repeats share 2 of line 1"), "{out:?}");
}

/// `init` killed at any moment: either no store opens, or the recovery key it
/// opens with was already in its file. (37 of 200 kills once left a working
/// store whose recovery key had never been written.)
#[test]
fn a_kill_during_init_never_leaves_a_store_without_its_recovery_key() {
    let tmp = tempfile::tempdir().unwrap();
    // How long an init takes here, to spread the kills over it.
    let started = std::time::Instant::now();
    init(&tmp.path().join("timing"), &["--recovery-out", tmp.path().join("t.txt").to_str().unwrap()]);
    let span = started.elapsed().as_micros().max(1000) as u64;
    let mut stores = 0;
    for i in 0..60u64 {
        let dir = tmp.path().join(format!("s{i}"));
        let key_file = tmp.path().join(format!("k{i}.txt"));
        let mut c = Command::new(BIN);
        c.env("SYNAPSED_PASSPHRASE", PASSPHRASE)
            .arg("--db")
            .arg(&dir)
            .args(FAST_KDF)
            .args(["init", "--recovery-out"])
            .arg(&key_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(span * i / 50));
        let _ = child.kill();
        child.wait().unwrap();
        let opened = run(&dir, &["put", "k", "v"]);
        if opened.code != 0 {
            continue;
        }
        stores += 1;
        let key = std::fs::read_to_string(&key_file).unwrap_or_default();
        assert!(key.starts_with("SYN1-"), "kill {i}: a working store, but its recovery key file holds {key:?}");
        let out = run_env(&dir, &[], &["--recovery-key-file", key_file.to_str().unwrap(), "get", "k"]);
        assert_eq!(out.stdout, "v\n", "kill {i}: {out:?}");
    }
    assert!(stores > 0, "no init finished: the kills came too early");
}

/// Writes a secret file as a careful user would: readable by its owner only
/// (the CLI warns about a key or passphrase file others may read).
fn write_secret(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, contents)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
}
