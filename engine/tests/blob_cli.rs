//! The `blob` commands of the CLI as DESIGN.md's contract spells them: `put KEY
//! FILE|-` printing "stored KEY: N bytes", `get KEY FILE|- [--offset N]
//! [--length N]`, `rm KEY`, `ls` printing "KEY<TAB>BYTES" lines; no progress
//! output when stderr is not a terminal; missing blobs exit 1.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::{BIN, FAST_KDF};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rand::{RngCore, SeedableRng};

const PASSPHRASE: &str = "correct horse battery staple";

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(BIN);
    c.env("SYNAPSED_PASSPHRASE", PASSPHRASE).env_remove("RUST_BACKTRACE").arg("--db").arg(dir).args(FAST_KDF).args(args);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "no progress or other noise on a non-terminal stderr: {out:?}");
    out
}

#[test]
fn put_get_ranges_ls_and_rm_as_the_contract_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(run(&store, &["init", "--recovery-out", dir.path().join("rk").to_str().unwrap()], b""));

    let mut data = vec![0u8; (5 << 20) + 123];
    rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut data);
    let file = dir.path().join("in.bin");
    std::fs::write(&file, &data).unwrap();
    let out = ok(run(&store, &["blob", "put", "photos/cat.jpg", file.to_str().unwrap()], b""));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("stored photos/cat.jpg: {} bytes\n", data.len()));
    let out = ok(run(&store, &["blob", "put", "notes", "-"], b"from stdin"));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "stored notes: 10 bytes\n");

    let out = ok(run(&store, &["blob", "ls"], b""));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("notes\t10\nphotos/cat.jpg\t{}\n", data.len()));

    let back = dir.path().join("out.bin");
    ok(run(&store, &["blob", "get", "photos/cat.jpg", back.to_str().unwrap()], b""));
    assert!(std::fs::read(&back).unwrap() == data);
    let out = ok(run(&store, &["blob", "get", "photos/cat.jpg", "-", "--offset", "4194000", "--length", "1000"], b""));
    assert!(out.stdout == data[4_194_000..4_195_000]);
    let out = ok(run(&store, &["blob", "get", "notes", "-", "--offset", "5"], b""));
    assert_eq!(out.stdout, b"stdin");
    let out = ok(run(&store, &["blob", "get", "notes", "-", "--offset", "50"], b""));
    assert!(out.stdout.is_empty());

    let missing = run(&store, &["blob", "get", "nope", "-"], b"");
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("error: blob not found: nope"), "{missing:?}");

    ok(run(&store, &["blob", "rm", "photos/cat.jpg"], b""));
    let out = ok(run(&store, &["blob", "ls"], b""));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "notes\t10\n");
    assert_eq!(run(&store, &["blob", "rm", "photos/cat.jpg"], b"").status.code(), Some(1));
    // rm reclaimed the space: what is left in blob files is the small blob.
    let blob_bytes: u64 = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".blob"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(blob_bytes < 4096, "{blob_bytes}");
    ok(run(&store, &["verify"], b""));
}

#[test]
fn verify_names_a_cut_blob_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ok(run(&store, &["init", "--recovery-out", dir.path().join("rk").to_str().unwrap()], b""));
    ok(run(&store, &["blob", "put", "b", "-"], &[7u8; 300_000]));
    ok(run(&store, &["verify"], b""));
    let file = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "blob"))
        .unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(len - 10).unwrap();
    let out = run(&store, &["verify"], b"");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name), "{out:?}");
}
