//! The `ts` commands as DESIGN.md's CLI contract gives them, driven as a black
//! box: append, import (file and stdin, "imported N"), raw and aggregated
//! queries ("TS_MS<TAB>VALUE", [from, to), buckets at --from), values in
//! shortest round-trip form, retention, ls ("SERIES<TAB>POINTS"), and bad
//! input as `error: ...` with a non-zero status.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::{BIN, FAST_KDF};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const PASSPHRASE: &str = "ts cli passphrase";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).arg("--db").arg(dir).args(args);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).unwrap();
        }
    }
    let o = child.wait_with_output().unwrap();
    let out = Out { code: o.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&o.stdout).into(), stderr: String::from_utf8_lossy(&o.stderr).into() };
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    out
}

fn ok(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = run(dir, args, stdin);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.stdout
}

fn fails(dir: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let out = run(dir, args, stdin);
    assert_ne!(out.code, 0, "{args:?} succeeded: {}", out.stdout);
    assert!(out.stderr.starts_with("error: "), "{args:?}: {}", out.stderr);
    out
}

fn init(dir: &Path) {
    let mut args: Vec<&str> = FAST_KDF.to_vec();
    args.extend(["init", "--recovery-out"]);
    let rec = dir.with_extension("rec");
    args.push(rec.to_str().unwrap());
    ok(dir, &args, None);
}

#[test]
fn append_import_query_aggregate_retention_and_ls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir);
    ok(&dir, &["ts", "append", "cpu", "1000", "0.1"], None);
    ok(&dir, &["ts", "append", "cpu", "2000", "0.30000000000000004"], None);
    ok(&dir, &["ts", "append", "cpu", "-5", "-0"], None);
    ok(&dir, &["ts", "append", "cpu", "3000", "NaN"], None);
    assert_eq!(
        ok(&dir, &["ts", "query", "cpu", "--from", "-10", "--to", "3001"], None),
        "-5\t-0\n1000\t0.1\n2000\t0.30000000000000004\n3000\tNaN\n"
    );
    // [from, to): 3000 is out.
    assert_eq!(ok(&dir, &["ts", "query", "cpu", "--from", "1000", "--to", "3000"], None), "1000\t0.1\n2000\t0.30000000000000004\n");
    assert_eq!(ok(&dir, &["ts", "latest", "cpu"], None), "3000\tNaN\n");

    let mut lines = String::new();
    for i in 0..3000 {
        lines.push_str(&format!("{} {}\n", 10_000 + i * 10, i % 7));
    }
    let file = tmp.path().join("points.txt");
    std::fs::write(&file, &lines).unwrap();
    assert_eq!(ok(&dir, &["ts", "import", "gauge", file.to_str().unwrap()], None), "imported 3000\n");
    assert_eq!(ok(&dir, &["ts", "import", "mem", "-"], Some("5 1.5\n\n6 2.5\n")), "imported 2\n");
    assert_eq!(ok(&dir, &["ts", "import", "mem"], Some("7 3.5\n")), "imported 1\n");
    assert_eq!(ok(&dir, &["ts", "ls"], None), "cpu\t4\ngauge\t3000\nmem\t3\n");

    // Buckets start at --from: [10_000, 10_100) holds i = 0..10.
    let agg = |a: &str| ok(&dir, &["ts", "query", "gauge", "--from", "10000", "--to", "10200", "--step", "100", "--agg", a], None);
    assert_eq!(agg("count"), "10000\t10\n10100\t10\n");
    assert_eq!(agg("sum"), "10000\t24\n10100\t33\n");
    assert_eq!(agg("min"), "10000\t0\n10100\t0\n");
    assert_eq!(agg("max"), "10000\t6\n10100\t6\n");
    assert_eq!(agg("avg"), "10000\t2.4\n10100\t3.3\n");
    assert_eq!(agg("first"), "10000\t0\n10100\t3\n");
    assert_eq!(agg("last"), "10000\t2\n10100\t5\n");
    let whole = ok(&dir, &["ts", "query", "gauge", "--from", "0", "--to", "100000", "--step", "100000", "--agg", "count"], None);
    assert_eq!(whole, "0\t3000\n");

    // Keep the last 1000 ms: points at newest - 1000 = 38_990 and after.
    ok(&dir, &["ts", "retention", "gauge", "--keep", "1000"], None);
    assert_eq!(ok(&dir, &["ts", "ls"], None), "cpu\t4\ngauge\t101\nmem\t3\n");
    let first = ok(&dir, &["ts", "query", "gauge", "--from", "0", "--to", "100000"], None);
    assert!(first.starts_with("38990\t"), "{first}");
}

#[test]
fn bad_input_is_an_error_line_and_a_failure_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    init(&dir);
    fails(&dir, &["ts", "append", "cpu", "12x", "1"], None);
    fails(&dir, &["ts", "append", "cpu", "1", "one"], None);
    ok(&dir, &["ts", "append", "cpu", "10000000", "1"], None);
    let old = fails(&dir, &["ts", "append", "cpu", "1", "1"], None);
    assert!(old.stderr.contains("out-of-order window"), "{}", old.stderr);
    let bad = fails(&dir, &["ts", "import", "cpu"], Some("10000001 2\n10000002 x\n"));
    assert!(bad.stderr.contains("line 2"), "{}", bad.stderr);
    fails(&dir, &["ts", "query", "cpu", "--from", "0", "--to", "5", "--step", "0", "--agg", "avg"], None);
    fails(&dir, &["ts", "query", "cpu", "--from", "0", "--to", "5", "--step", "10", "--agg", "median"], None);
    assert_eq!(run(&dir, &["ts", "latest", "nothing"], None).code, 1);
    // Nothing of the refused input was stored.
    assert_eq!(ok(&dir, &["ts", "ls"], None), "cpu\t1\n");
}
