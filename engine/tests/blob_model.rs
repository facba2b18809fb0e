//! Property test of the blob store against a model (`BTreeMap` of key ->
//! bytes): random puts and overwrites (contents made of shared segments, so
//! chunks repeat within and across blobs), abandoned uploads, ranged reads,
//! deletes, GC and reopens. After every step the listing matches the model;
//! after every GC the blob files hold at most twice their live bytes; at the
//! end, with every blob deleted, GC leaves no blob file and verify is clean.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};

use proptest::prelude::*;
use rand::{RngCore, SeedableRng};
use synapsed_storage::Db;

/// Sizes of the shared segments contents are made of.
const SEGMENTS: [usize; 5] = [0, 1, 70_000, 700_000, 1_900_000];

#[derive(Debug, Clone)]
enum Op {
    Put { key: u8, parts: Vec<(usize, u8)> },
    Abandon { key: u8, parts: Vec<(usize, u8)> },
    Read { key: u8, offset: u32, len: u32 },
    Delete { key: u8 },
    Gc,
    Reopen,
}

fn parts() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..SEGMENTS.len(), 0u8..3), 0..5)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, parts()).prop_map(|(key, parts)| Op::Put { key, parts }),
        1 => (0u8..4, parts()).prop_map(|(key, parts)| Op::Abandon { key, parts }),
        3 => (0u8..4, any::<u32>(), 0u32..3_000_000).prop_map(|(key, offset, len)| Op::Read { key, offset, len }),
        2 => (0u8..4).prop_map(|key| Op::Delete { key }),
        2 => Just(Op::Gc),
        1 => Just(Op::Reopen),
    ]
}

/// Segment `i` in variant `v`: the same bytes every time it is asked for.
fn segment(i: usize, v: u8) -> Vec<u8> {
    let mut out = vec![0u8; SEGMENTS[i]];
    rand::rngs::StdRng::seed_from_u64((i as u64) << 8 | u64::from(v)).fill_bytes(&mut out);
    out
}

fn content(parts: &[(usize, u8)]) -> Vec<u8> {
    parts.iter().flat_map(|&(i, v)| segment(i, v)).collect()
}

fn blob_file_bytes(dir: &std::path::Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().ends_with(".blob") {
            files += 1;
            bytes += e.metadata().unwrap().len();
        }
    }
    (files, bytes)
}

fn check(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let options = common::options();
    let mut db = Db::create(dir.path(), &common::cred(), options.clone()).unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put { key, parts } => {
                let data = content(&parts);
                let k = vec![b'k', key];
                let mut w = db.blobs().unwrap().writer(&k).unwrap();
                for piece in data.chunks(300_000) {
                    w.write_all(piece).unwrap();
                }
                assert_eq!(w.finish().unwrap(), data.len() as u64);
                model.insert(k, data);
            }
            Op::Abandon { key, parts } => {
                let mut w = db.blobs().unwrap().writer(&[b'k', key]).unwrap();
                w.write_all(&content(&parts)).unwrap();
            }
            Op::Read { key, offset, len } => {
                let k = vec![b'k', key];
                let reader = db.blobs().unwrap().reader(&k).unwrap();
                match (reader, model.get(&k)) {
                    (None, None) => {}
                    (Some(mut r), Some(data)) => {
                        let at = if data.is_empty() { 0 } else { offset as usize % (data.len() + 1) };
                        r.seek(SeekFrom::Start(at as u64)).unwrap();
                        let mut got = Vec::new();
                        (&mut r).take(u64::from(len)).read_to_end(&mut got).unwrap();
                        let end = (at + len as usize).min(data.len());
                        assert!(got == data[at..end], "read of {k:?} at {at} len {len}");
                    }
                    (r, m) => panic!("{k:?}: store has {:?}, model has {:?}", r.map(|r| r.len()), m.map(Vec::len)),
                }
            }
            Op::Delete { key } => {
                let k = vec![b'k', key];
                assert_eq!(db.blobs().unwrap().delete(&k).unwrap(), model.remove(&k).is_some());
            }
            Op::Gc => {
                db.blobs().unwrap().gc().unwrap();
                let stats = db.blobs().unwrap().stats().unwrap();
                let (files, bytes) = blob_file_bytes(dir.path());
                assert_eq!((stats.files, stats.file_bytes), (files, bytes));
                // Every file left is at least half live (GC moved the rest out).
                let headers = files * 128;
                assert!(bytes <= 2 * stats.stored_bytes + headers, "{stats:?}");
            }
            Op::Reopen => {
                db.close().unwrap();
                db = Db::open(dir.path(), &common::cred(), options.clone()).unwrap();
            }
        }
        let listed = db.blobs().unwrap().list().unwrap();
        let expected: Vec<(Vec<u8>, u64)> = model.iter().map(|(k, v)| (k.clone(), v.len() as u64)).collect();
        assert_eq!(listed, expected);
    }
    for (k, data) in &model {
        let mut got = Vec::new();
        db.blobs().unwrap().reader(k).unwrap().unwrap().read_to_end(&mut got).unwrap();
        assert!(got == *data, "{k:?} reads back whole");
    }
    for k in model.keys() {
        db.blobs().unwrap().delete(k).unwrap();
    }
    db.blobs().unwrap().gc().unwrap();
    assert_eq!(blob_file_bytes(dir.path()), (0, 0), "GC left blob files with no blob left");
    assert_eq!(db.blobs().unwrap().stats().unwrap().chunks, 0);
    db.close().unwrap();
    let report = Db::verify(dir.path(), &common::cred(), common::options()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn blob_store_matches_a_model(ops in prop::collection::vec(op(), 1..14)) {
        check(ops);
    }
}
