//! Resumable blob uploads (`BlobStore::resumable_writer`, `BlobWriter::resume`):
//! an upload dropped unfinished, or whose process is killed with SIGKILL at
//! random points (several times, the later kills landing inside resumed
//! uploads), continues after the last committed chunk, survives GC while
//! paused, is never readable before it finishes, and commits the exact
//! bytes; an aborted upload leaves nothing after GC.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use synapsed_storage::{BlobWriter, Db, Error};

const MIB: usize = 1 << 20;

fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

#[test]
fn a_dropped_upload_resumes_after_its_last_committed_chunk_and_survives_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &common::cred(), common::options()).unwrap();
    let data = common::random(20 * MIB, 5);
    let blobs = db.blobs().unwrap();
    assert!(BlobWriter::resume(&blobs, b"up").unwrap().is_none());
    let mut writer = blobs.resumable_writer(b"up").unwrap();
    writer.write_all(&data[..14 * MIB]).unwrap();
    // Another writer may not take over a live upload.
    assert!(matches!(BlobWriter::resume(&blobs, b"up"), Err(Error::InvalidArgument(_))));
    drop(writer);
    assert!(blobs.reader(b"up").unwrap().is_none(), "an unfinished upload is not readable");
    // GC while paused keeps what the upload committed.
    blobs.gc().unwrap();
    db.close().unwrap();

    let db = Db::open(tmp.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let mut writer = BlobWriter::resume(&blobs, b"up").unwrap().unwrap();
    let at = writer.bytes_written() as usize;
    // Chunk records are committed every 4 MiB of cut input; up to two
    // largest chunks (8 MiB) may still have been buffered when it dropped.
    assert!((4 * MIB..=14 * MIB).contains(&at), "resumed at {at}");
    writer.write_all(&data[at..]).unwrap();
    assert_eq!(writer.finish().unwrap(), data.len() as u64);
    assert_eq!(common::read_blob(&db, b"up").unwrap(), data);
    // Finished: nothing left to resume.
    assert!(BlobWriter::resume(&blobs, b"up").unwrap().is_none());
    blobs.gc().unwrap();
    assert!(blobs.verify().unwrap().is_empty());

    // An aborted upload: its chunks go at the next GC.
    let before = blobs.stats().unwrap().stored_bytes;
    let mut writer = blobs.resumable_writer(b"gone").unwrap();
    writer.write_all(&common::random(12 * MIB, 6)).unwrap();
    drop(writer);
    assert!(blobs.stats().unwrap().stored_bytes > before);
    assert!(blobs.abort_upload(b"gone").unwrap());
    assert!(!blobs.abort_upload(b"gone").unwrap());
    assert!(BlobWriter::resume(&blobs, b"gone").unwrap().is_none());
    blobs.gc().unwrap();
    assert_eq!(blobs.stats().unwrap().stored_bytes, before);
    assert_eq!(blobs.list().unwrap(), vec![(b"up".to_vec(), data.len() as u64)]);
    db.close().unwrap();
}

/// A plain writer dropped unfinished leaves nothing to resume.
#[test]
fn only_resumable_writers_can_be_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::create(tmp.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let mut writer = blobs.writer(b"plain").unwrap();
    writer.write_all(&common::random(10 * MIB, 1)).unwrap();
    drop(writer);
    assert!(BlobWriter::resume(&blobs, b"plain").unwrap().is_none());
    db.close().unwrap();
}

const CHILD_ENV: &str = "SYNAPSED_BLOB_RESUME_CHILD";
const UPLOAD: usize = 40 * MIB;
const ROUNDS: u64 = 4;

/// The child: resumes the upload (or begins it), reports where it resumed
/// and each MiB it hands the writer, then waits to be killed without ever
/// finishing.
fn child(dir: &std::path::Path) {
    let data = common::random(UPLOAD, 77);
    let db = Db::open(dir, &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let mut writer = match BlobWriter::resume(&blobs, b"upload").unwrap() {
        Some(w) => w,
        None => blobs.resumable_writer(b"upload").unwrap(),
    };
    let start = writer.bytes_written() as usize;
    println!("start {start}");
    for piece in data[start..].chunks(MIB) {
        writer.write_all(piece).unwrap();
        println!("wrote {}", writer.bytes_written());
    }
    println!("all");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[test]
fn sigkill_during_a_resumable_upload_then_resume_commits_the_exact_bytes() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    Db::create(dir.path(), &common::cred(), common::options()).unwrap().close().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut starts = Vec::new();
    let mut handed = 0usize;
    for _ in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sigkill_during_a_resumable_upload_then_resume_commits_the_exact_bytes", "--nocapture"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a random number of MiB handed over in this round.
        let after = rng.gen_range(6..14);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut start = None;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let words: Vec<&str> = line.split(' ').collect();
            match words[0] {
                "start" => start = Some(words[1].parse::<usize>().unwrap()),
                "wrote" => {
                    handed = words[1].parse().unwrap();
                    seen += 1;
                    if seen >= after {
                        break;
                    }
                }
                "all" => break,
                _ => {}
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let start = start.expect("the child reported where it started");
        // It resumed no further than the bytes handed over before.
        assert!(start <= handed, "resumed at {start}, {handed} handed over");
        starts.push(start);
        // Nothing of the upload is readable, and the store is sound.
        let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
        let blobs = db.blobs().unwrap();
        assert!(blobs.reader(b"upload").unwrap().is_none());
        assert!(blobs.list().unwrap().is_empty());
        assert!(blobs.verify().unwrap().is_empty(), "{:?}", blobs.verify().unwrap());
        blobs.gc().unwrap();
        db.close().unwrap();
    }
    // Each round after the first resumed some way in, and the upload moved on.
    assert_eq!(starts[0], 0);
    assert!(starts[1..].iter().all(|&s| s > 0), "starts {starts:?}");
    assert!(starts.windows(2).all(|w| w[1] >= w[0]), "starts {starts:?}");
    let data = common::random(UPLOAD, 77);
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let mut writer = BlobWriter::resume(&blobs, b"upload").unwrap().unwrap();
    let at = writer.bytes_written() as usize;
    writer.write_all(&data[at..]).unwrap();
    writer.finish().unwrap();
    assert_eq!(hash(&common::read_blob(&db, b"upload").unwrap()), hash(&data));
    blobs.gc().unwrap();
    assert!(blobs.verify().unwrap().is_empty());
    // Whatever the killed rounds wrote beyond the committed chunks went in GC:
    // the blob files hold little more than the blob.
    let stats = blobs.stats().unwrap();
    assert!(stats.file_bytes <= UPLOAD as u64 * 2, "{stats:?}");
    db.close().unwrap();
}
