//! Writing and reading logs back: records of every size from empty to several MiB,
//! both file kinds, the incremental reader, and that no record is ever stored in
//! plaintext. Every test runs over each file system of `common::vfs_impls`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{pattern, scratch_dir, vfs_impls, write_log};
use crypto::{FileKind, KeyManager, FILE_HEADER_LEN, TAG_LEN};
use wal::{Error, LogReader, LogWriter, FRAME_HEADER_LEN, MAX_RECORD_BYTES};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const SIZES: [usize; 14] =
    [0, 1, 15, 16, 17, 100, 4095, 4096, 4097, 65_536, 100_000, 1 << 20, (3 << 20) + 7, 5];

#[test]
fn records_of_varied_sizes_round_trip() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        for kind in [FileKind::Wal, FileKind::Manifest] {
            let dir = scratch_dir();
            let records: Vec<Vec<u8>> = SIZES.iter().enumerate().map(|(i, n)| pattern(i as u64 + 1, *n)).collect();
            let (path, ends) = write_log(&vfs, dir.path(), "000001.wal", &keys, kind, &records);

            // Frame arithmetic: header, then 12 + len + 16 bytes per record.
            let mut expected_end = FILE_HEADER_LEN as u64;
            for (r, end) in records.iter().zip(&ends) {
                expected_end += (FRAME_HEADER_LEN + r.len() + TAG_LEN) as u64;
                assert_eq!(*end, expected_end, "{vfs_name} {kind:?}");
            }
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, expected_end, "{vfs_name} {kind:?}: file length");

            let got = LogReader::read_all(&vfs, &path, &keys, kind, 7).unwrap();
            assert_eq!(got.records.len(), records.len());
            for (i, (a, b)) in got.records.iter().zip(&records).enumerate() {
                assert!(a == b, "{vfs_name} {kind:?}: record {i} of {} bytes differs", b.len());
            }
            assert_eq!(got.torn_tail_at, None);
            assert_eq!(got.valid_len, expected_end);

            // No record's bytes appear in the file (records under 16 bytes could
            // match by chance, so only the longer ones are searched for).
            for r in records.iter().filter(|r| r.len() >= 32) {
                assert!(!contains(&bytes, &r[..32]), "{vfs_name} {kind:?}: plaintext found in the file");
            }
            // The other kind's reader refuses the file instead of misreading it.
            let other = if kind == FileKind::Wal { FileKind::Manifest } else { FileKind::Wal };
            let err = LogReader::read_all(&vfs, &path, &keys, other, 7).unwrap_err();
            assert!(err.to_string().contains("000001.wal"), "{err}");
        }
    }
}

#[test]
fn canary_records_never_reach_the_disk_in_plaintext() {
    let keys = KeyManager::ephemeral();
    let canary = b"CANARY-7f3a9c-do-not-store-in-plaintext";
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records: Vec<Vec<u8>> = (0..50).map(|i| [&canary[..], format!("#{i}").as_bytes()].concat()).collect();
        let (path, _) = write_log(&vfs, dir.path(), "000002.wal", &keys, FileKind::Wal, &records);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!contains(&bytes, b"CANARY"), "{vfs_name}: canary in the WAL file");
        // The same record sealed at different offsets gives different ciphertexts.
        let a = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 7).unwrap();
        assert_eq!(a.records, records);
    }
}

#[test]
fn incremental_reader_follows_the_offsets() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records: Vec<Vec<u8>> = (0..20).map(|i| pattern(i, (i as usize * 37) % 300)).collect();
        let (path, ends) = write_log(&vfs, dir.path(), "MANIFEST-000003", &keys, FileKind::Manifest, &records);
        let mut reader = LogReader::open(&vfs, &path, &keys, FileKind::Manifest, 7).unwrap();
        assert_eq!(reader.valid_len(), FILE_HEADER_LEN as u64);
        for (r, end) in records.iter().zip(&ends) {
            assert_eq!(reader.next_record().unwrap().as_ref(), Some(r), "{vfs_name}");
            assert_eq!(reader.valid_len(), *end);
        }
        assert_eq!(reader.next_record().unwrap(), None);
        assert_eq!(reader.next_record().unwrap(), None, "the clean end stays the end");
        assert_eq!(reader.torn_tail_at(), None);
    }
}

#[test]
fn writer_reports_its_length_and_an_empty_log_reads_back_empty() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let path = wal::segment_path(dir.path(), 9);
        let w = LogWriter::create(&vfs, &path, &keys, 9, FileKind::Wal).unwrap();
        assert!(w.is_empty());
        assert_eq!(w.len(), FILE_HEADER_LEN as u64);
        assert_eq!(w.file_id(), 9);
        assert_eq!(w.file_name(), "000009.wal");
        w.sync().unwrap();
        let got = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 9).unwrap();
        assert!(got.records.is_empty(), "{vfs_name}");
        assert_eq!((got.torn_tail_at, got.valid_len), (None, FILE_HEADER_LEN as u64));

        let end = w.append(b"").unwrap();
        assert!(!w.is_empty());
        assert_eq!(end, w.len());
        assert_eq!(end, (FILE_HEADER_LEN + FRAME_HEADER_LEN + TAG_LEN) as u64);
        w.sync().unwrap();
        let got = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 9).unwrap();
        assert_eq!(got.records, vec![Vec::<u8>::new()], "{vfs_name}");
    }
}

#[test]
fn a_log_of_another_store_or_kind_is_refused() {
    let keys = KeyManager::ephemeral();
    for (_, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let (path, _) = write_log(&vfs, dir.path(), "000004.wal", &keys, FileKind::Wal, &[b"x".to_vec()]);
        let err = LogReader::read_all(&vfs, &path, &KeyManager::ephemeral(), FileKind::Wal, 7).unwrap_err();
        assert!(matches!(&err, Error::Corruption { file, .. } | Error::Crypto(crypto::Error::MissingEpoch { file, .. }) if file == "000004.wal"), "{err:?}");
        // A log cannot be of a non-log kind.
        let err = LogWriter::create(&vfs, &dir.path().join("x.sst"), &keys, 1, FileKind::Sst).unwrap_err();
        assert!(err.to_string().contains("x.sst"), "{err}");
    }
}

/// A log of this store read under another number (an old segment copied over the
/// live segment's name, or put under a higher number) is refused, naming the file.
#[test]
fn a_log_under_another_number_is_refused() {
    let keys = KeyManager::ephemeral();
    for (_, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let (path, _) = write_log(&vfs, dir.path(), "000004.wal", &keys, FileKind::Wal, &[b"x".to_vec()]);
        match LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 4) {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, "000004.wal");
                assert!(reason.contains("names file 7"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 7).unwrap().records, vec![b"x".to_vec()]);
    }
}

#[test]
fn oversized_records_are_refused_before_anything_is_written() {
    let keys = KeyManager::ephemeral();
    let vfs: std::sync::Arc<dyn crypto::vfs::Vfs> = std::sync::Arc::new(crypto::StdVfs::new());
    let dir = scratch_dir();
    let w = LogWriter::create(&vfs, &dir.path().join("000005.wal"), &keys, 5, FileKind::Wal).unwrap();
    let big = vec![0u8; MAX_RECORD_BYTES + 1];
    match w.append(&big) {
        Err(Error::RecordTooLarge { len, max }) => assert_eq!((len, max), (MAX_RECORD_BYTES + 1, MAX_RECORD_BYTES)),
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    drop(big);
    assert!(w.is_empty());
    assert!(!w.is_poisoned(), "a refused record is the caller's error, not the log's");
    w.append(b"still usable").unwrap();
}
