//! The `doc` commands of the binary, as DESIGN.md's CLI contract writes them:
//! put (argument and stdin), import, get, delete, index (ordered, --hashed,
//! --text, --unique), query with --sort, --limit, --explain and --rank; bad
//! input fails with "error: ..." and exit 1 and writes nothing.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::{BIN, FAST_KDF};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const PASSPHRASE: &str = "correct horse battery staple";

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }
    fn failed(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        assert!(self.stderr.starts_with("error: "), "stderr must start with \"error: \": {self:?}");
        self
    }
    fn lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn run_with(dir: &Path, args: &[&str], stdin: &str) -> Out {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).env_remove("RUST_BACKTRACE").arg("--db").arg(dir).args(args);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let out = Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

fn run(dir: &Path, args: &[&str]) -> Out {
    run_with(dir, args, "")
}

fn new_store() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    run(&dir, &[&FAST_KDF[..], &["init"]].concat()).ok();
    (tmp, dir)
}

fn ids(values: &[Value]) -> Vec<&str> {
    values.iter().filter_map(|v| v["_id"].as_str()).collect()
}

#[test]
fn doc_commands_follow_the_contract() {
    let (_tmp, dir) = new_store();
    run(&dir, &["doc", "put", "users", "u1", r#"{"name": "Ada", "age": 36, "address": {"zip": "1000"}}"#]).ok();
    run_with(&dir, &["doc", "put", "users", "u2", "-"], r#"{"name": "Bob", "age": 25, "address": {"zip": "2000"}}"#).ok();
    let got = run(&dir, &["doc", "get", "users", "u1"]).ok();
    assert_eq!(got.lines(), [json!({"_id": "u1", "name": "Ada", "age": 36, "address": {"zip": "1000"}})]);
    let lines: String = (3..=40).map(|i| format!("{}\n", json!({"_id": format!("u{i}"), "name": format!("n{i}"), "age": i, "bio": format!("likes rust and {}", if i % 2 == 0 {"tea"} else {"coffee"})}))).collect();
    let imported = run_with(&dir, &["doc", "import", "users", "-"], &lines).ok();
    assert_eq!(imported.stdout, "imported 38\n");

    let q = |args: &[&str]| run(&dir, &[&["doc", "query", "users"][..], args].concat()).ok().lines();
    let before = q(&[r#"{"age": {"$gte": 30, "$lt": 33}}"#, "--explain"]);
    assert_eq!(before.last().unwrap(), &json!({"explain": {"index": null, "examined": 40, "returned": 3}}));
    run(&dir, &["doc", "index", "users", "age"]).ok();
    let after = q(&[r#"{"age": {"$gte": 30, "$lt": 33}}"#, "--sort", "age:desc", "--explain"]);
    assert_eq!(ids(&after), ["u32", "u31", "u30"]);
    assert_eq!(after.last().unwrap(), &json!({"explain": {"index": "age", "examined": 3, "returned": 3}}));
    let raw = run(&dir, &["doc", "query", "users", r#"{"age": 31}"#, "--explain"]).ok().stdout;
    assert_eq!(raw.lines().last(), Some(r#"{"explain": {"index": "age", "examined": 1, "returned": 1}}"#));
    let limited = q(&[r#"{"age": {"$gt": 20}}"#, "--sort", "age", "--limit", "2"]);
    assert_eq!(ids(&limited), ["u21", "u22"]);

    run(&dir, &["doc", "index", "users", "address.zip", "--hashed", "--unique"]).ok();
    let zip = q(&[r#"{"address.zip": "2000"}"#, "--explain"]);
    assert_eq!(ids(&zip), ["u2"]);
    assert_eq!(zip[1]["explain"]["index"], "address.zip");
    run(&dir, &["doc", "put", "users", "u9", r#"{"address": {"zip": "1000"}}"#]).failed(1);
    assert_eq!(run(&dir, &["doc", "get", "users", "u9"]).ok().lines()[0]["age"], 9, "nothing written");

    run(&dir, &["doc", "index", "users", "bio", "--text"]).ok();
    let tea = q(&[r#"{"$text": "TEA Rust"}"#, "--limit", "3", "--explain"]);
    assert_eq!(ids(&tea), ["u10", "u12", "u14"]);
    assert_eq!(tea[3]["explain"]["index"], "bio");
    assert_eq!(q(&[r#"{"$or": [{"age": 3}, {"name": "Ada"}]}"#]).len(), 2);

    run(&dir, &["doc", "delete", "users", "u1"]).ok();
    run(&dir, &["doc", "get", "users", "u1"]).failed(1);
    run(&dir, &["doc", "delete", "users", "u1"]).ok();
}

#[test]
fn bad_input_fails_cleanly_and_writes_nothing() {
    let (_tmp, dir) = new_store();
    run(&dir, &["doc", "put", "c", "a", r#"{"x": 1}"#]).ok();
    for (args, input) in [
        (vec!["doc", "put", "c", "b", "{not json"], ""),
        (vec!["doc", "put", "c", "b", "[1]"], ""),
        (vec!["doc", "put", "c", "b", r#"{"_id": 5}"#], ""),
        (vec!["doc", "query", "c", r#"{"x": {"$regex": "1"}}"#], ""),
        (vec!["doc", "query", "c", "{}", "--sort", "nope"], ""),
        (vec!["doc", "query", "c", r#"{"$text": "a"}"#], ""),
        (vec!["doc", "import", "c"], "{\"_id\": \"b\"}\n{\"no_id\": 1}\n"),
        (vec!["doc", "import", "c"], "{\"_id\": \"b\"}\nnot json\n"),
    ] {
        run_with(&dir, &args, input).failed(1);
    }
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
    run(&dir, &["doc", "put", "c", "b", &deep]).failed(1);
    let all = run(&dir, &["doc", "query", "c", "{}"]).ok();
    assert_eq!(all.stdout, "{\"_id\":\"a\",\"x\":1}\n");
}
