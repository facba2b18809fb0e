//! The `ipfs` commands of the CLI: `ipfs cid FILE|-`, `ipfs pack`, `ipfs unpack`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::cli::BIN;
use std::io::Write;
use std::process::{Command, Stdio};


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

/// `ipfs export` / `ipfs import` of blobs: encrypted by default (a root that
/// differs from the plaintext's, no marker in the CAR, read back by the store
/// that made it), `--plaintext` as `ipfs add` stores the file, a CAR another
/// node made imported, a damaged CAR refused with nothing stored.
#[test]
fn blobs_export_and_import_as_car_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let db = |args: &[&str]| {
        let mut full = vec!["--db", dir.to_str().unwrap()];
        full.extend_from_slice(args);
        let mut child = Command::new(BIN)
            .env("SYNAPSED_PASSPHRASE", "correct horse battery staple")
            .args(&full)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(db(&["--insecure-kdf-for-tests", "--argon2-memory-kib", "64", "--argon2-iterations", "1", "init"]).0, Some(0));
    let marker = b"zqxIPFSEXPORTMARKERqxz";
    let mut data: Vec<u8> = (0..(700 * 1024)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    data.extend_from_slice(marker);
    let f = tmp.path().join("data");
    std::fs::write(&f, &data).unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    assert_eq!(db(&["blob", "put", "photo", f.to_str().unwrap()]).0, Some(0));
    let plain_cid = run(&["ipfs", "cid", f.to_str().unwrap()], b"").1.trim().to_string();

    let (code, sealed_root, err) = db(&["ipfs", "export", "photo", "--car", &path("sealed.car")]);
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(sealed_root.trim(), plain_cid, "the default export is not the plaintext");
    let sealed = std::fs::read(path("sealed.car")).unwrap();
    assert!(!sealed.windows(marker.len()).any(|w| w == marker), "plaintext in the encrypted export");
    // Deterministic: the same blob exports to the same root.
    assert_eq!(db(&["ipfs", "export", "photo", "--car", &path("again.car")]).1, sealed_root);

    let (code, plain_root, err) = db(&["ipfs", "export", "photo", "--car", &path("plain.car"), "--plaintext"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(plain_root.trim(), plain_cid, "--plaintext is the file `ipfs add` makes");

    for (car, key) in [("sealed.car", "from-sealed"), ("plain.car", "from-plain")] {
        let (code, out, err) = db(&["ipfs", "import", "--car", &path(car), key]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains(&format!("{} bytes", data.len())), "{out}");
        let back = path(&format!("{key}.out"));
        assert_eq!(db(&["blob", "get", key, &back]).0, Some(0));
        assert!(std::fs::read(&back).unwrap() == data, "{key} differs");
    }
    // A CAR made without the store (as any IPFS node would) imports too.
    assert_eq!(run(&["ipfs", "pack", f.to_str().unwrap(), "--car", &path("packed.car")], b"").0, Some(0));
    assert_eq!(db(&["ipfs", "import", "--car", &path("packed.car"), "packed"]).0, Some(0));

    let mut bad = sealed.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(path("bad.car"), &bad).unwrap();
    let (code, _, err) = db(&["ipfs", "import", "--car", &path("bad.car"), "damaged"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("error: ") && err.contains("refused"), "{err}");
    let (_, listed, _) = db(&["blob", "ls"]);
    assert!(!listed.contains("damaged"), "{listed}");
    assert_eq!(db(&["ipfs", "export", "absent", "--car", &path("absent.car")]).0, Some(1));
}
