//! The command-line tool's observability: `stats --prometheus` lists every
//! metric the engine describes, and the commands that draw progress (doc
//! import, doc index, ts import, blob put/get, backup, restore, sync, compact,
//! key rotate) write nothing but their contract output when stderr is not a
//! terminal.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::PASSPHRASE;
use common::cli::{BIN, FAST_KDF};


fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).env_remove("RUST_BACKTRACE").arg("--db").arg(dir).args(FAST_KDF);
    c
}

/// Runs `args` with `stdin`; stdout and stderr are pipes (not terminals).
/// Fails unless it succeeds; returns (stdout, stderr).
fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> (String, String) {
    let mut child = command(dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

/// The names `describe_metrics` describes, read from its source, so a metric
/// added there is checked here without a change to this test.
fn described() -> Vec<String> {
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/metrics.rs")).unwrap();
    let names: Vec<String> = source
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("describe_")?;
            let (_, rest) = rest.split_once("!(\"")?;
            Some(rest.split('"').next()?.to_string())
        })
        .collect();
    assert!(names.len() > 40, "{names:?}");
    names
}

#[test]
fn stats_prometheus_lists_every_described_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    run(&dir, &["init"], b"");
    run(&dir, &["put", "k", "v"], b"");
    let (text, err) = run(&dir, &["stats", "--prometheus"], b"");
    assert_eq!(err, "");
    for name in described() {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP line for {name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "no TYPE line for {name}:\n{text}");
    }
}

/// A `serve` process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn with_stderr_not_a_terminal_only_the_contract_output_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&a, &["init"], b"");
    run(&b, &["init"], b"");

    let docs: String = (0..3000).map(|i| format!("{{\"_id\": \"d{i}\", \"n\": {i}}}\n")).collect();
    assert_eq!(run(&a, &["doc", "import", "c", "-"], docs.as_bytes()), ("imported 3000\n".into(), String::new()));
    assert_eq!(run(&a, &["doc", "index", "c", "n"], b""), (String::new(), String::new()));
    let points: String = (0..20_000).map(|i| format!("{} {}\n", i * 1000, i)).collect();
    assert_eq!(run(&a, &["ts", "import", "s", "-"], points.as_bytes()), ("imported 20000\n".into(), String::new()));
    let blob = common::random(3 << 20, 7);
    assert_eq!(run(&a, &["blob", "put", "f", "-"], &blob), (format!("stored f: {} bytes\n", blob.len()), String::new()));
    let got = command(&a).args(["blob", "get", "f", "-"]).stderr(Stdio::piped()).output().unwrap();
    assert!(got.status.success());
    assert_eq!((got.stdout == blob, String::from_utf8_lossy(&got.stderr).into_owned()), (true, String::new()));
    assert_eq!(run(&a, &["compact"], b"").1, "");
    let (out, err) = run(&a, &["key", "rotate"], b"");
    assert_eq!(err, "");
    assert!(!out.contains('\r'), "{out:?}");

    let url = format!("file://{}", tmp.path().join("remote").display());
    let (out, err) = run(&a, &["backup", &url], b"");
    assert_eq!(err, "");
    assert!(out.starts_with("backup 1: ") && out.lines().count() == 1, "{out:?}");
    let restored = tmp.path().join("restored");
    let (out, err) = run(&a, &["restore", &url, "--to", restored.to_str().unwrap()], b"");
    assert_eq!(err, "");
    assert!(out.starts_with("restored backup 1 to ") && out.lines().count() == 1, "{out:?}");

    // Sync with a paired device serving on loopback.
    let id = |dir: &Path| run(dir, &["device", "id"], b"").0.trim().to_string();
    let (id_a, id_b) = (id(&a), id(&b));
    run(&a, &["pair", "add", &id_b], b"");
    run(&b, &["pair", "add", &id_a], b"");
    run(&a, &["put", "note", "from a"], b"");
    let mut server = Server(command(&b).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.strip_prefix("listening on ").and_then(|r| r.split(' ').next()).unwrap().to_string();
    let (out, err) = run(&a, &["sync", &addr], b"");
    assert_eq!(err, "");
    assert!(out.starts_with("sent 1, received 0, ") && out.ends_with(" bytes\n") && out.lines().count() == 1, "{out:?}");
    drop(server);
}

/// Runs `args` under a pseudo-terminal (util-linux `script`), so stderr is a
/// terminal; returns what the terminal showed.
fn on_terminal(dir: &Path, args: &[&str]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![quote(BIN), "--db".into(), quote(dir.to_str().unwrap())];
    line.extend(FAST_KDF.iter().chain(args).map(|a| quote(a)));
    let out = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("SYNAPSED_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs the command under a terminal");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {shown}");
    shown
}

#[test]
fn on_a_terminal_progress_is_drawn_and_quiet_silences_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    run(&dir, &["init"], b"");
    let points = tmp.path().join("points");
    std::fs::write(&points, (0..5000).map(|i| format!("{} {}\n", i * 1000, i)).collect::<String>()).unwrap();
    let docs = tmp.path().join("docs");
    std::fs::write(&docs, (0..500).map(|i| format!("{{\"_id\": \"d{i}\", \"n\": {i}}}\n")).collect::<String>()).unwrap();
    let url = format!("file://{}", tmp.path().join("remote").display());
    // The same commands with names of their own for run `n`.
    let cases = |n: u32| -> [(Vec<String>, &str); 5] {
        let p = |s: &str| s.to_string();
        [
            (vec![p("ts"), p("import"), format!("s{n}"), p(points.to_str().unwrap())], "points imported"),
            (vec![p("doc"), p("import"), format!("c{n}"), p(docs.to_str().unwrap())], "documents imported"),
            (vec![p("doc"), p("index"), format!("c{n}"), p("n")], "building the index"),
            (vec![p("backup"), url.clone()], "backup"),
            (vec![p("restore"), url.clone(), p("--to"), tmp.path().join(format!("restored{n}")).to_str().unwrap().to_string()], "restore"),
        ]
    };
    for (args, drawn) in cases(1) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let shown = on_terminal(&dir, &args);
        assert!(shown.contains(drawn) && shown.contains("\u{1b}["), "{args:?} drew no progress: {shown:?}");
    }
    for (args, _) in cases(2) {
        let args: Vec<&str> = ["--quiet"].into_iter().chain(args.iter().map(String::as_str)).collect();
        let shown = on_terminal(&dir, &args);
        assert!(!shown.contains("\u{1b}["), "{args:?} drew progress with --quiet: {shown:?}");
    }
}
