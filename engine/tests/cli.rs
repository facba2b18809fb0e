//! The `synapsed-storage` binary as a new user meets it: every command through the
//! real executable, checked on stdout, stderr and exit status. Every run also
//! checks that no output ever shows a panic.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::{BIN, FAST_KDF};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PASSPHRASE: &str = "correct horse battery staple";
/// Cheap Argon2id for tests; only `init` (and `demo`) use it.

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    fn failed(&self) -> &Self {
        assert_ne!(self.code, 0, "expected failure: {self:?}");
        assert!(self.stderr.starts_with("error: "), "stderr must start with \"error: \": {self:?}");
        self
    }
}

/// A command on store `dir` with the test passphrase in the environment.
fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).env_remove("RUST_BACKTRACE").arg("--db").arg(dir);
    c
}

fn finish(mut c: Command, stdin: Option<&str>) -> Out {
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    let out = Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("panicked"), "a panic reached the user: {out:?}");
        assert!(!text.contains("RUST_BACKTRACE"), "a panic reached the user: {out:?}");
    }
    out
}

fn run(dir: &Path, args: &[&str]) -> Out {
    let mut c = command(dir);
    c.args(args);
    finish(c, None)
}

fn run_stdin(dir: &Path, args: &[&str], input: &str) -> Out {
    let mut c = command(dir);
    c.args(args);
    finish(c, Some(input))
}

fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let out = run(&dir, &[&FAST_KDF[..], &["init"]].concat());
    out.ok();
    assert!(out.stdout.contains("created store"), "{out:?}");
    (tmp, dir)
}

#[test]
fn put_get_delete_round_trip() {
    let (_tmp, dir) = new_store();
    run(&dir, &["put", "user:1", "alice"]).ok();
    assert_eq!(run(&dir, &["get", "user:1"]).ok().stdout, "alice\n");
    run(&dir, &["put", "user:1", "alice smith, née -o-"]).ok();
    assert_eq!(run(&dir, &["get", "user:1"]).ok().stdout, "alice smith, née -o-\n");
    run(&dir, &["put", "-dash", "-v"]).ok();
    assert_eq!(run(&dir, &["get", "-dash"]).ok().stdout, "-v\n");
    run(&dir, &["delete", "user:1"]).ok();
    let out = run(&dir, &["get", "user:1"]);
    assert_eq!(out.code, 1, "{out:?}");
    out.failed();
    assert!(out.stderr.contains("not found") && out.stderr.contains("user:1"), "{out:?}");
    assert_eq!(out.stdout, "");
    // Deleting an absent key is not an error.
    run(&dir, &["delete", "never-there"]).ok();
}

#[test]
fn missing_key_exits_1_with_a_message() {
    let (_tmp, dir) = new_store();
    let out = run(&dir, &["get", "nope"]);
    assert_eq!(out.code, 1);
    out.failed();
    assert!(out.stderr.contains("nope"), "{out:?}");
}

#[test]
fn init_refuses_a_directory_that_holds_a_store() {
    let (_tmp, dir) = new_store();
    run(&dir, &["put", "k", "v"]).ok();
    let out = run(&dir, &[&FAST_KDF[..], &["init"]].concat());
    out.failed();
    assert!(out.stderr.contains("already"), "{out:?}");
    assert_eq!(run(&dir, &["get", "k"]).ok().stdout, "v\n");
}

#[test]
fn commands_on_a_missing_store_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nothing-here");
    for args in [&["get", "k"][..], &["put", "k", "v"], &["scan", ""], &["verify"], &["stats"]] {
        let out = run(&dir, args);
        out.failed();
        assert!(out.stderr.contains("no store") || out.stderr.contains("init"), "{args:?}: {out:?}");
    }
}

#[test]
fn no_key_material_is_explained() {
    let (_tmp, dir) = new_store();
    let mut c = command(&dir);
    c.env_remove("SYNAPSED_PASSPHRASE").args(["get", "k"]);
    let out = finish(c, None);
    out.failed();
    assert_eq!(
        out.stderr.trim_end(),
        "error: no key material: set SYNAPSED_PASSPHRASE or pass --passphrase-file/--key-file"
    );
}

#[test]
fn wrong_passphrase_is_refused_by_every_command() {
    let (_tmp, dir) = new_store();
    run(&dir, &["put", "k", "v"]).ok();
    for args in [&["get", "k"][..], &["put", "k", "w"], &["scan", ""], &["verify"], &["stats", "--json"], &["compact"]]
    {
        let mut c = command(&dir);
        c.env("SYNAPSED_PASSPHRASE", "not the passphrase").args(args);
        let out = finish(c, None);
        out.failed();
        assert!(out.stderr.contains("wrong passphrase"), "{args:?}: {out:?}");
    }
    assert_eq!(run(&dir, &["get", "k"]).ok().stdout, "v\n");
}

#[test]
fn passphrase_file_drops_one_trailing_newline() {
    let (tmp, dir) = new_store();
    run(&dir, &["put", "k", "v"]).ok();
    let file = tmp.path().join("pass");
    write_secret(&file, format!("{PASSPHRASE}\n")).unwrap();
    let mut c = command(&dir);
    c.env_remove("SYNAPSED_PASSPHRASE").arg("--passphrase-file").arg(&file).args(["get", "k"]);
    assert_eq!(finish(c, None).ok().stdout, "v\n");
    // Only one newline is dropped: a second one is part of the passphrase.
    write_secret(&file, format!("{PASSPHRASE}\n\n")).unwrap();
    let mut c = command(&dir);
    c.env_remove("SYNAPSED_PASSPHRASE").arg("--passphrase-file").arg(&file).args(["get", "k"]);
    assert!(finish(c, None).failed().stderr.contains("wrong passphrase"));
    // The file wins over the environment.
    write_secret(&file, PASSPHRASE).unwrap();
    let mut c = command(&dir);
    c.env("SYNAPSED_PASSPHRASE", "something else").arg("--passphrase-file").arg(&file).args(["get", "k"]);
    assert_eq!(finish(c, None).ok().stdout, "v\n");
}

#[test]
fn key_file_makes_a_raw_key_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let hex_file = tmp.path().join("key.hex");
    write_secret(&hex_file, format!("{hex}\n")).unwrap();
    let raw_file = tmp.path().join("key.bin");
    write_secret(&raw_file, &key).unwrap();
    let with_key = |file: &Path, args: &[&str]| {
        let mut c = command(&dir);
        c.env_remove("SYNAPSED_PASSPHRASE").arg("--key-file").arg(file).args(args);
        finish(c, None)
    };
    with_key(&hex_file, &["init"]).ok();
    with_key(&hex_file, &["put", "k", "raw"]).ok();
    assert_eq!(with_key(&raw_file, &["get", "k"]).ok().stdout, "raw\n");
    // The store has no passphrase slot.
    assert!(run(&dir, &["get", "k"]).failed().stderr.contains("wrong passphrase"));
    // Another key is wrong; a malformed key file is an error before the store is touched.
    let other = tmp.path().join("other.hex");
    write_secret(&other, "ff".repeat(32)).unwrap();
    assert!(with_key(&other, &["get", "k"]).failed().stderr.contains("wrong passphrase"));
    let bad = tmp.path().join("bad.hex");
    write_secret(&bad, "not a key").unwrap();
    assert!(with_key(&bad, &["get", "k"]).failed().stderr.contains("bad.hex"));
}

#[test]
fn batch_prints_committed_n_and_applies_each_commit() {
    let (_tmp, dir) = new_store();
    let input = "put a 1\nput b two words  here\ncommit\n\ndelete a\nput c 3\r\ncommit\ncommit\n";
    let out = run_stdin(&dir, &["batch"], input);
    out.ok();
    assert_eq!(out.stdout, "committed 1\ncommitted 2\ncommitted 3\n");
    assert_eq!(run(&dir, &["scan", ""]).ok().stdout, "b\ttwo words  here\nc\t3\n");
}

#[test]
fn batch_bad_line_discards_the_pending_batch_only() {
    let (_tmp, dir) = new_store();
    let input = "put x 1\ncommit\nput y 2\nfrobnicate now\nput z 3\ncommit\n";
    let out = run_stdin(&dir, &["batch"], input);
    out.failed();
    assert!(out.stderr.starts_with("error: line 4: "), "{out:?}");
    assert_eq!(out.stdout, "committed 1\n");
    assert_eq!(run(&dir, &["get", "x"]).ok().stdout, "1\n");
    assert_eq!(run(&dir, &["get", "y"]).code, 1);
    assert_eq!(run(&dir, &["get", "z"]).code, 1);

    for (input, line) in [("put onlykey\n", 1), ("\n\ndelete\n", 3), ("commit please\n", 1)] {
        let out = run_stdin(&dir, &["batch"], input);
        out.failed();
        assert!(out.stderr.starts_with(&format!("error: line {line}: ")), "{input:?}: {out:?}");
    }
}

#[test]
fn batch_input_ending_without_commit_writes_nothing() {
    let (_tmp, dir) = new_store();
    let out = run_stdin(&dir, &["batch"], "put q 1\ncommit\nput r 2\n");
    out.failed();
    assert_eq!(out.stdout, "committed 1\n");
    assert!(out.stderr.contains("uncommitted"), "{out:?}");
    assert_eq!(run(&dir, &["get", "q"]).ok().stdout, "1\n");
    assert_eq!(run(&dir, &["get", "r"]).code, 1);
}

#[test]
fn scan_is_in_key_order_and_honours_limit() {
    let (_tmp, dir) = new_store();
    let keys = ["m/3", "m/1", "n/0", "m/10", "m/2", "l/9"];
    let input: String = keys.iter().map(|k| format!("put {k} v-{k}\n")).collect::<String>() + "commit\n";
    run_stdin(&dir, &["batch"], &input).ok();
    assert_eq!(run(&dir, &["scan", "m/"]).ok().stdout, "m/1\tv-m/1\nm/10\tv-m/10\nm/2\tv-m/2\nm/3\tv-m/3\n");
    assert_eq!(run(&dir, &["scan", "m/", "--limit", "2"]).ok().stdout, "m/1\tv-m/1\nm/10\tv-m/10\n");
    assert_eq!(run(&dir, &["scan", "m/", "--limit", "0"]).ok().stdout, "");
    assert_eq!(run(&dir, &["scan", "zzz"]).ok().stdout, "");
    let all = run(&dir, &["scan", ""]).ok().stdout.clone();
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    let got: Vec<&str> = all.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(got, sorted);
}

#[test]
fn stats_prints_text_and_json() {
    let (_tmp, dir) = new_store();
    run_stdin(&dir, &["batch"], "put a 1\nput b 2\ncommit\n").ok();
    let text = run(&dir, &["stats"]).ok().stdout.clone();
    assert!(text.contains("last seqno"), "{text}");
    let out = run(&dir, &["stats", "--json"]);
    out.ok();
    assert_eq!(out.stdout.lines().count(), 1, "one JSON object on one line: {out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["last_seqno"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["disk_bytes"].is_u64(), "{v}");
    assert!(v["files_per_level"].is_array(), "{v}");
    let names: Vec<&str> = v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"KEYSLOTS"), "{names:?}");
    let total: u64 = v["files"].as_array().unwrap().iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(v["files_bytes"].as_u64(), Some(total));
}

#[test]
fn compact_then_verify_then_damage_is_named() {
    let (_tmp, dir) = new_store();
    let small = ["--memtable-size-bytes", "4096"];
    let mut input = String::new();
    for i in 0..600 {
        input.push_str(&format!("put key/{i:04} value number {i} with some padding to fill blocks\n"));
        if i % 100 == 99 {
            input.push_str("commit\n");
        }
    }
    let out = run_stdin(&dir, &[&small[..], &["batch"]].concat(), &input);
    out.ok();
    assert_eq!(out.stdout.lines().last(), Some("committed 6"));
    let out = run(&dir, &[&small[..], &["compact"]].concat());
    out.ok();
    assert!(out.stdout.contains("compacted"), "{out:?}");
    assert_eq!(run(&dir, &["get", "key/0421"]).ok().stdout, "value number 421 with some padding to fill blocks\n");
    assert_eq!(run(&dir, &["scan", "key/"]).ok().stdout.lines().count(), 600);
    let out = run(&dir, &["verify"]);
    out.ok();
    assert!(out.stdout.contains("ok"), "{out:?}");

    let mut tables: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    tables.sort();
    let victim = tables.first().expect("compaction left no table");
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(victim, &bytes).unwrap();
    let name = victim.file_name().unwrap().to_str().unwrap();
    let out = run(&dir, &["verify"]);
    out.failed();
    assert!(out.stdout.contains(name) || out.stderr.contains(name), "verify must name {name}: {out:?}");
    assert_eq!(out.code, 3, "damage found exits 3: {out:?}");
    // Reading through the damage is refused with the same status, naming the file.
    let out = run(&dir, &["scan", ""]);
    out.failed();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains(name), "{out:?}");
}

#[test]
fn bad_usage_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    for args in [
        &[][..],
        &["frobnicate"],
        &["put", "only-key"],
        &["get"],
        &["scan", "p", "--limit", "many"],
        &["stats", "--yaml"],
        &["--argon2-memory-kib", "1", "init"],
    ] {
        let out = run(&dir, args);
        assert_ne!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {out:?}");
    }
    // No --db at all.
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).args(["get", "k"]);
    let out = finish(c, None);
    out.failed();
    assert!(out.stderr.contains("--db"), "{out:?}");
    // Help is not an error.
    assert!(run(&dir, &["--help"]).ok().stdout.contains("batch"));
}

#[test]
fn readers_work_while_a_writer_holds_the_store() {
    let (_tmp, dir) = new_store();
    let mut c = command(&dir);
    c.arg("batch").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut writer = c.spawn().unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    let mut acks = BufReader::new(writer.stdout.take().unwrap());
    stdin.write_all(b"put w 1\ncommit\n").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    acks.read_line(&mut line).unwrap();
    assert_eq!(line, "committed 1\n");

    // Read commands open read-only and see the committed write.
    assert_eq!(run(&dir, &["get", "w"]).ok().stdout, "1\n");
    assert_eq!(run(&dir, &["scan", ""]).ok().stdout, "w\t1\n");
    run(&dir, &["stats", "--json"]).ok();
    // A second writer is turned away with the reason.
    let out = run(&dir, &["put", "w", "2"]);
    out.failed();
    assert!(out.stderr.contains("locked"), "{out:?}");

    stdin.write_all(b"put w 3\ncommit\n").unwrap();
    drop(stdin);
    let status = writer.wait().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut acks, &mut rest).unwrap();
    assert_eq!(rest, "committed 2\n");
    assert_eq!(run(&dir, &["get", "w"]).ok().stdout, "3\n");
}

#[test]
fn demo_runs_every_step() {
    let mut c = Command::new(BIN);
    c.env_remove("SYNAPSED_PASSPHRASE").args(FAST_KDF).arg("demo");
    let out = finish(c, None);
    out.ok();
    assert!(out.stdout.contains("steps passed"), "{out:?}");
    assert!(!out.stdout.contains("FAIL"), "{out:?}");
}

#[test]
fn demo_in_a_given_directory_keeps_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-store");
    let mut c = command(&dir);
    c.args(FAST_KDF).arg("demo");
    finish(c, None).ok();
    // The store is a normal store afterwards.
    let out = run(&dir, &["scan", "chat/03/", "--limit", "1"]);
    out.ok();
    assert!(out.stdout.starts_with("chat/03/"), "{out:?}");
    run(&dir, &["verify"]).ok();
}

/// Writes a secret file as a careful user would: readable by its owner only
/// (the CLI warns about a key or passphrase file others may read).
fn write_secret(path: impl AsRef<std::path::Path>, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, contents)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
}

#[test]
fn compact_compacts_every_keyspace() {
    use synapsed_storage::{Credential, Db, KeyspaceOptions, Options};
    let (_tmp, dir) = new_store();
    let options = || Options::tiny_for_tests().with_background_compaction(false);
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    let a = db.create_keyspace("a", KeyspaceOptions::default()).unwrap();
    for round in 0..2 {
        for i in 0..50 {
            db.put_in(&a, format!("k{i:02}").as_bytes(), format!("round {round}").as_bytes()).unwrap();
        }
        db.flush().unwrap();
    }
    assert!(db.stats().files_per_level[0] > 0);
    db.close().unwrap();
    run(&dir, &["compact"]).ok();
    let db = Db::open(&dir, &Credential::passphrase(PASSPHRASE), options()).unwrap();
    let stats = db.stats();
    assert_eq!(stats.files_per_level[0], 0, "keyspace a's level 0 was compacted too: {stats:?}");
    assert_eq!(db.get_in(&a, b"k07").unwrap(), Some(b"round 1".to_vec()));
}

#[test]
fn hex_keys_and_values_round_trip_bytes_that_are_not_utf8() {
    let (_tmp, dir) = new_store();
    run(&dir, &["--hex", "put", "ff00", "80c1"]).ok();
    assert_eq!(run(&dir, &["--hex", "get", "ff00"]).ok().stdout, "80c1\n");
    run_stdin(&dir, &["--hex", "batch"], "put 6b31 00\ndelete ff00\ncommit\n").ok();
    assert_eq!(run(&dir, &["--hex", "scan", ""]).ok().stdout, "6b31\t00\n");
    assert_eq!(run(&dir, &["get", "k1"]).ok().stdout, "\0\n");
    // Not hex: a clear error, nothing written.
    let out = run(&dir, &["--hex", "put", "zz", "00"]);
    out.failed();
    assert!(out.stderr.contains("KEY is not hex"), "{out:?}");
    let out = run_stdin(&dir, &["--hex", "batch"], "put 01 02\nput 0 1\ncommit\n");
    out.failed();
    assert!(out.stderr.contains("line 2") && out.stderr.contains("not hex"), "{out:?}");
    assert_eq!(run(&dir, &["--hex", "scan", ""]).ok().stdout, "6b31\t00\n");
}

#[test]
fn scan_json_prints_one_object_per_pair_and_keeps_every_byte() {
    let (_tmp, dir) = new_store();
    run(&dir, &["put", "a\"1", "x\ty"]).ok();
    run(&dir, &["--hex", "put", "62", "ff"]).ok();
    let out = run(&dir, &["scan", "", "--json"]).ok().stdout.clone();
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, vec![serde_json::json!({"key": "a\"1", "value": "x\ty"}), serde_json::json!({"key": "b", "value_hex": "ff"})]);
}

#[test]
fn completions_are_printed_for_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef synapsed-storage"), ("fish", "complete -c synapsed-storage")] {
        let out = run(tmp.path(), &["completions", shell]);
        out.ok();
        assert!(out.stdout.contains(marker), "{shell}: {out:?}");
        assert!(out.stdout.contains("secure-delete"), "{shell}: {out:?}");
    }
    run(tmp.path(), &["completions", "tcsh"]).failed();
}

/// Progress is drawn on a terminal (here the pseudo-terminal `script` makes)
/// and never on a pipe, nor with `--quiet`.
#[test]
fn progress_shows_on_a_terminal_only() {
    let (_tmp, dir) = new_store();
    let mut input = String::new();
    for i in 0..3000 {
        input.push_str(&format!("put key{i:05} {}\n", "v".repeat(200)));
    }
    input.push_str("commit\n");
    run_stdin(&dir, &["--memtable-size-bytes", "65536", "batch"], &input).ok();
    // On a pipe: nothing but the result line.
    let piped = run(&dir, &["compact"]);
    piped.ok();
    assert_eq!(piped.stderr, "", "{piped:?}");
    let on_terminal = |extra: &str| {
        let line = format!(
            "SYNAPSED_PASSPHRASE='{PASSPHRASE}' {BIN} --db {} {extra} verify",
            dir.display()
        );
        let out = Command::new("script").args(["-qec", &line, "/dev/null"]).output().expect("script(1) from util-linux runs the CLI on a pseudo-terminal");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = on_terminal("");
    assert!(drawn.contains("verifying every file"), "no progress on a terminal: {drawn:?}");
    let quiet = on_terminal("--quiet");
    assert!(!quiet.contains("verifying every file"), "progress despite --quiet: {quiet:?}");
}
