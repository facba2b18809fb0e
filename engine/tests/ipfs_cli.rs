//! The `ipfs` commands of the CLI: `ipfs cid FILE|-`, `ipfs pack`, `ipfs unpack`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_synapsed-storage");

fn run(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cid_of_a_file_and_of_stdin_is_kubos() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("hw");
    std::fs::write(&f, b"hello world").unwrap();
    let kubo = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
    assert_eq!(run(&["ipfs", "cid", f.to_str().unwrap()], b"").1.trim(), kubo);
    assert_eq!(run(&["ipfs", "cid", "-"], b"hello world").1.trim(), kubo);
    let (code, _, err) = run(&["ipfs", "cid", tmp.path().join("missing").to_str().unwrap()], b"");
    assert_eq!(code, Some(1));
    assert!(err.starts_with("error: ") && !err.contains("panicked"), "{err}");
}

#[test]
fn pack_and_unpack_round_trip_and_a_damaged_car_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(600 * 1024)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let f = tmp.path().join("data");
    std::fs::write(&f, &data).unwrap();
    let car = tmp.path().join("data.car");
    let (code, root, err) = run(&["ipfs", "pack", f.to_str().unwrap(), "--car", car.to_str().unwrap()], b"");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(root.trim(), run(&["ipfs", "cid", f.to_str().unwrap()], b"").1.trim());
    let out = tmp.path().join("out");
    let (code, _, err) = run(&["ipfs", "unpack", "--car", car.to_str().unwrap(), out.to_str().unwrap()], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(std::fs::read(&out).unwrap() == data);

    let mut bad = std::fs::read(&car).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    std::fs::write(&car, &bad).unwrap();
    let out2 = tmp.path().join("out2");
    let (code, _, err) = run(&["ipfs", "unpack", "--car", car.to_str().unwrap(), out2.to_str().unwrap()], b"");
    assert_ne!(code, Some(0));
    assert!(err.contains("does not match its hash"), "{err}");
    assert!(!out2.exists());
}
