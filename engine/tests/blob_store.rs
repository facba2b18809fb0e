//! The blob store's behaviour through its public API: streamed round trips of
//! sizes around the chunk limits, ranged reads and seeks, dedup of equal data
//! (within a blob, across blobs, after a reopen), overwrites and deletes with
//! the space GC gives back, unfinished writers leaving nothing visible, and
//! damaged chunk bytes refused on read and named by `verify`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use common::{blob_files, random, read_blob as read_all};
use rand::{RngCore, SeedableRng};
use synapsed_storage::Db;

fn blob_bytes(dir: &Path) -> u64 {
    blob_files(dir).iter().map(|n| std::fs::metadata(dir.join(n)).unwrap().len()).sum()
}

#[test]
fn round_trips_of_many_sizes_in_small_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    for (i, size) in [0usize, 1, 1000, 256 << 10, (4 << 20) + 1, 9 << 20].into_iter().enumerate() {
        let data = random(size, i as u64);
        let mut w = blobs.writer(format!("b{i}").as_bytes()).unwrap();
        for piece in data.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.finish().unwrap(), size as u64);
        assert_eq!(blobs.len(format!("b{i}").as_bytes()).unwrap(), Some(size as u64));
        assert_eq!(read_all(&db, format!("b{i}").as_bytes()).unwrap(), data, "size {size}");
    }
    assert_eq!(blobs.list().unwrap().len(), 6);
    assert!(blobs.reader(b"nope").unwrap().is_none());
    db.close().unwrap();
    // And after a reopen.
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    assert_eq!(read_all(&db, b"b5").unwrap(), random(9 << 20, 5));
    let listed: Vec<(Vec<u8>, u64)> = db.blobs().unwrap().list().unwrap();
    assert_eq!(listed[0], (b"b0".to_vec(), 0));
    assert_eq!(listed[5], (b"b5".to_vec(), 9 << 20));
}

#[test]
fn seeks_and_ranged_reads_cross_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let data = random(11 << 20, 9);
    db.blobs().unwrap().put(b"big", &mut &data[..]).unwrap();
    let mut r = db.blobs().unwrap().reader(b"big").unwrap().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for _ in 0..40 {
        let at = (rng.next_u64() % (data.len() as u64 + 10)) as usize;
        let want = (rng.next_u64() % (3 << 20)) as usize;
        assert_eq!(r.seek(SeekFrom::Start(at as u64)).unwrap(), at as u64);
        let mut buf = Vec::new();
        (&mut r).take(want as u64).read_to_end(&mut buf).unwrap();
        let end = (at + want).min(data.len());
        let expect = if at >= data.len() { &[][..] } else { &data[at..end] };
        assert_eq!(buf, expect, "at {at} len {want}");
    }
    assert_eq!(r.seek(SeekFrom::End(-5)).unwrap(), data.len() as u64 - 5);
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &data[data.len() - 5..]);
    assert!(r.seek(SeekFrom::Current(-(data.len() as i64) - 1)).is_err());
}

#[test]
fn equal_data_is_stored_once_and_gc_returns_the_space_of_deleted_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let data = random(16 << 20, 3);
    blobs.put(b"one", &mut &data[..]).unwrap();
    let after_one = blob_bytes(dir.path());
    assert!((16 << 20..(16 << 20) + (1 << 20)).contains(&after_one), "{after_one}");
    // The same bytes twice more: nothing new in blob files.
    blobs.put(b"two", &mut &data[..]).unwrap();
    assert_eq!(blob_bytes(dir.path()), after_one);
    // Twice over in one blob: chunking finds its cuts again a few chunks after the seam.
    let mut doubled = data.clone();
    doubled.extend_from_slice(&data);
    blobs.put(b"twice", &mut &doubled[..]).unwrap();
    let stats = blobs.stats().unwrap();
    assert_eq!(stats.logical_bytes, 64 << 20);
    assert!(stats.stored_bytes < (24 << 20), "{stats:?}");
    assert_eq!(read_all(&db, b"twice").unwrap(), doubled);

    // Deleting some blobs keeps the chunks others share.
    assert!(blobs.delete(b"one").unwrap());
    assert!(!blobs.delete(b"one").unwrap());
    assert!(blobs.reader(b"one").unwrap().is_none());
    let report = blobs.gc().unwrap();
    assert_eq!(report.chunks_removed, 0, "{report:?}");
    assert_eq!(read_all(&db, b"two").unwrap(), data);

    // Deleting the last ones gives every byte back.
    blobs.delete(b"two").unwrap();
    blobs.delete(b"twice").unwrap();
    let report = blobs.gc().unwrap();
    assert!(report.chunks_removed > 0 && report.files_removed > 0, "{report:?}");
    assert_eq!(blob_files(dir.path()), Vec::<String>::new());
    assert_eq!(blobs.stats().unwrap().chunks, 0);
    // Nothing left to do.
    let again = blobs.gc().unwrap();
    assert_eq!((again.chunks_removed, again.files_removed, again.chunk_refs_removed), (0, 0, 0), "{again:?}");
}

#[test]
fn overwrites_replace_atomically_and_gc_moves_what_a_mostly_dead_file_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    // One file holding a small blob that stays and a large one that goes.
    let keep = random(300 << 10, 10);
    let gone = random(12 << 20, 11);
    let mut both = keep.clone();
    both.extend_from_slice(&gone);
    blobs.put(b"both", &mut &both[..]).unwrap();
    blobs.put(b"keep", &mut &keep[..]).unwrap();
    let before = blob_bytes(dir.path());
    // Overwrite: readers opened before see the old blob.
    let mut old_reader = blobs.reader(b"both").unwrap().unwrap();
    blobs.put(b"both", &mut &b"new contents"[..]).unwrap();
    assert_eq!(read_all(&db, b"both").unwrap(), b"new contents");
    let report = blobs.gc().unwrap();
    // The file that must go is still read by the old reader.
    assert!(report.files_deferred > 0, "{report:?}");
    let mut old = Vec::new();
    old_reader.read_to_end(&mut old).unwrap();
    assert_eq!(old, both);
    drop(old_reader);
    let report = blobs.gc().unwrap();
    assert!(report.files_removed > 0, "{report:?}");
    let after = blob_bytes(dir.path());
    assert!(after < before / 4, "{before} -> {after}");
    assert_eq!(read_all(&db, b"keep").unwrap(), keep);
    assert_eq!(read_all(&db, b"both").unwrap(), b"new contents");
    db.close().unwrap();
    let report = Db::verify(dir.path(), &common::cred(), common::options()).unwrap();
    assert!(report.is_ok() && report.torn_tails.is_empty(), "{report:?}");
}

#[test]
fn an_unfinished_writer_leaves_nothing_visible_and_gc_reclaims_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    blobs.put(b"k", &mut &b"first"[..]).unwrap();
    {
        let mut w = blobs.writer(b"k").unwrap();
        w.write_all(&random(20 << 20, 4)).unwrap();
        // Dropped without finish.
    }
    assert_eq!(read_all(&db, b"k").unwrap(), b"first");
    assert_eq!(blobs.list().unwrap(), vec![(b"k".to_vec(), 5)]);
    let report = blobs.gc().unwrap();
    assert!(report.files_removed >= 1, "{report:?}");
    assert!(blob_bytes(dir.path()) < 1 << 20);
    assert_eq!(read_all(&db, b"k").unwrap(), b"first");
}

#[test]
fn gc_while_a_writer_reuses_chunks_it_is_collecting_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    let data = random(6 << 20, 21);
    blobs.put(b"a", &mut &data[..]).unwrap();
    blobs.delete(b"a").unwrap();
    // A writer reuses the now unreferenced chunks, and GC runs before it finishes.
    let mut w = blobs.writer(b"b").unwrap();
    w.write_all(&data).unwrap();
    // (It may move the reused chunks out of their mostly dead file, never drop them.)
    blobs.gc().unwrap();
    w.finish().unwrap();
    blobs.gc().unwrap();
    assert_eq!(read_all(&db, b"b").unwrap(), data);
}

#[test]
fn damaged_chunk_bytes_fail_the_read_and_verify_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let data = random(3 << 20, 5);
    db.blobs().unwrap().put(b"x", &mut &data[..]).unwrap();
    db.close().unwrap();
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1);
    let path = dir.path().join(&files[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let report = Db::verify(dir.path(), &common::cred(), common::options()).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(report.damaged[0].0, files[0]);

    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    let mut r = db.blobs().unwrap().reader(b"x").unwrap().unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    assert!(err.to_string().contains(&files[0]), "{err}");
}

#[test]
fn a_read_only_handle_reads_blobs_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    assert!(db.blobs().unwrap().list().unwrap().is_empty());
    db.blobs().unwrap().put(b"r", &mut &b"read me"[..]).unwrap();
    db.close().unwrap();
    let ro = Db::open(dir.path(), &common::cred(), common::options().with_read_only(true)).unwrap();
    assert_eq!(read_all(&ro, b"r").unwrap(), b"read me");
    assert!(ro.blobs().unwrap().writer(b"w").is_err());
    assert!(ro.blobs().unwrap().gc().is_err());
}

#[test]
fn small_blobs_share_blob_files_and_next_blob_stages_them_in_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    let blobs = db.blobs().unwrap();
    // Separate puts append to the file the previous writer left open.
    for i in 0..20u64 {
        blobs.put(format!("p{i}").as_bytes(), &mut &random(10_000, i)[..]).unwrap();
    }
    assert_eq!(blob_files(dir.path()).len(), 1, "{:?}", blob_files(dir.path()));
    // One writer, many blobs: each visible whole once committed.
    let mut w = blobs.writer(b"m0").unwrap();
    for i in 0..30u64 {
        w.write_all(&random(5_000 + i as usize, 100 + i)).unwrap();
        assert_eq!(w.next_blob(format!("m{}", i + 1).as_bytes()).unwrap(), 5_000 + i);
    }
    assert!(blobs.reader(b"m0").unwrap().is_none(), "staged, not yet committed");
    w.write_all(b"last").unwrap();
    assert_eq!(w.finish().unwrap(), 4);
    for i in 0..30u64 {
        assert_eq!(read_all(&db, format!("m{i}").as_bytes()).unwrap(), random(5_000 + i as usize, 100 + i));
    }
    assert_eq!(read_all(&db, b"m30").unwrap(), b"last");
    // Dropped before its commit: none of its staged blobs appear.
    let mut w = blobs.writer(b"d0").unwrap();
    w.write_all(b"zero").unwrap();
    w.next_blob(b"d1").unwrap();
    w.write_all(b"one").unwrap();
    drop(w);
    assert!(blobs.reader(b"d0").unwrap().is_none() && blobs.reader(b"d1").unwrap().is_none());
    blobs.gc().unwrap();
    assert_eq!(blobs.list().unwrap().len(), 51);
    assert_eq!(read_all(&db, b"p7").unwrap(), random(10_000, 7));
    db.close().unwrap();
    assert!(Db::verify(dir.path(), &common::cred(), common::options()).unwrap().is_ok());
}

#[test]
fn blob_verify_finds_a_cut_blob_file_and_names_the_blobs_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::create(dir.path(), &common::cred(), common::options()).unwrap();
    db.blobs().unwrap().put(b"x", &mut &random(3 << 20, 8)[..]).unwrap();
    db.blobs().unwrap().put(b"y", &mut &random(1000, 9)[..]).unwrap();
    assert_eq!(db.blobs().unwrap().verify().unwrap(), Vec::<(String, String)>::new());
    db.close().unwrap();
    let files = blob_files(dir.path());
    let path = dir.path().join(&files[0]);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 500).unwrap();
    let db = Db::open(dir.path(), &common::cred(), common::options()).unwrap();
    let problems = db.blobs().unwrap().verify().unwrap();
    assert!(problems.iter().any(|(f, _)| *f == files[0]), "{problems:?}");
    assert!(problems.iter().any(|(f, _)| f == "blob y"), "{problems:?}");
    assert!(!problems.iter().any(|(f, _)| f == "blob x"), "{problems:?}");
}
