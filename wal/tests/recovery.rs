//! Recovery: a log cut at every possible length gives back exactly the records
//! wholly before the cut and the right torn-tail offset; every single damaged byte
//! of a complete log is reported as corruption naming the file (and the frame's
//! offset), never read as a wrong record or a torn tail; zero-filled space after
//! whole frames is a clean end; frames moved to another offset fail
//! authentication. `preallocation.rs` has the same for logs that go on in zeros.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{pattern, scratch_dir, vfs_impls, write_log};
use crypto::vfs::Vfs;
use crypto::{FileKind, KeyManager, FILE_HEADER_LEN};
use wal::{Error, LogReader};

const NAME: &str = "000001.wal";

fn small_records() -> Vec<Vec<u8>> {
    vec![pattern(1, 0), pattern(2, 1), pattern(3, 30), pattern(4, 100), pattern(5, 17), pattern(6, 5)]
}

/// Start offsets of the frames, given the offsets just past each.
fn frame_starts(ends: &[u64]) -> Vec<u64> {
    std::iter::once(FILE_HEADER_LEN as u64).chain(ends.iter().copied()).take(ends.len()).collect()
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn truncation_at_every_length_keeps_exactly_the_whole_records() {
    let keys = KeyManager::ephemeral();
    for kind in [FileKind::Wal, FileKind::Manifest] {
        for (vfs_name, vfs) in vfs_impls() {
            let dir = scratch_dir();
            let records = small_records();
            let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, kind, &records);
            let full = std::fs::read(&path).unwrap();
            let starts = frame_starts(&ends);
            let mut torn_seen = 0;
            for cut in 0..=full.len() {
                let p = write_bytes(dir.path(), NAME, &full[..cut]);
                let result = LogReader::read_all(&vfs, &p, &keys, kind, 7);
                if cut < FILE_HEADER_LEN {
                    match result {
                        Err(Error::Corruption { file, offset, .. }) => assert_eq!((file.as_str(), offset), (NAME, 0)),
                        other => panic!("{vfs_name}: cut {cut} inside the header gave {other:?}"),
                    }
                    continue;
                }
                let got = result.unwrap_or_else(|e| panic!("{vfs_name} {kind:?}: cut at {cut}: {e}"));
                let whole = ends.iter().filter(|e| **e <= cut as u64).count();
                assert_eq!(got.records, records[..whole], "{vfs_name} {kind:?}: cut at {cut}");
                let valid = if whole == 0 { FILE_HEADER_LEN as u64 } else { ends[whole - 1] };
                assert_eq!(got.valid_len, valid, "cut at {cut}");
                let expected_torn = (valid != cut as u64).then(|| starts[whole]);
                assert_eq!(got.torn_tail_at, expected_torn, "{vfs_name} {kind:?}: cut at {cut}");
                torn_seen += usize::from(expected_torn.is_some());
            }
            // Every length that is not a frame boundary is a torn tail.
            assert_eq!(torn_seen, full.len() - FILE_HEADER_LEN - records.len());
        }
    }
}

#[test]
fn incremental_reader_reports_the_torn_tail() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = small_records();
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        // Cut in the middle of the fourth frame's payload.
        let cut = usize::try_from(ends[3]).unwrap() - 20;
        let p = write_bytes(dir.path(), NAME, &full[..cut]);
        let mut reader = LogReader::open(&vfs, &p, &keys, FileKind::Wal, 7).unwrap();
        for r in &records[..3] {
            assert_eq!(reader.next_record().unwrap().as_ref(), Some(r), "{vfs_name}");
            assert_eq!(reader.torn_tail_at(), None);
        }
        assert_eq!(reader.next_record().unwrap(), None);
        assert_eq!(reader.torn_tail_at(), Some(ends[2]));
        assert_eq!(reader.valid_len(), ends[2]);
        assert_eq!(reader.next_record().unwrap(), None);
    }
}

/// Reads a damaged copy; asserts the outcome is an error naming the file and returns it.
fn read_damaged(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &KeyManager, bytes: &[u8], what: &str) -> Error {
    let p = write_bytes(dir, NAME, bytes);
    match LogReader::read_all(vfs, &p, keys, FileKind::Wal, 7) {
        Ok(got) => panic!("{what}: damage went unnoticed, read {} records", got.records.len()),
        Err(e) => {
            assert!(e.to_string().contains(NAME), "{what}: error does not name the file: {e}");
            e
        }
    }
}

#[test]
fn every_flipped_byte_is_corruption_at_its_frame() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = vec![pattern(1, 3), pattern(2, 0), pattern(3, 40)];
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        let starts = frame_starts(&ends);
        let mut checked = 0;
        for i in 0..full.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = full.clone();
                bad[i] ^= mask;
                let what = format!("{vfs_name}: byte {i} ^ {mask:#04x}");
                let err = read_damaged(&vfs, dir.path(), &keys, &bad, &what);
                if i >= FILE_HEADER_LEN {
                    let frame = starts.iter().rev().find(|s| **s <= i as u64).copied().unwrap();
                    match err {
                        Error::Corruption { file, offset, .. } => {
                            assert_eq!((file.as_str(), offset), (NAME, frame), "{what}")
                        }
                        other => panic!("{what}: expected corruption, got {other:?}"),
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, full.len() * 3);
    }
}

#[test]
fn a_damaged_last_frame_is_corruption_not_a_torn_tail() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = vec![pattern(1, 64), pattern(2, 64)];
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        let last = usize::try_from(ends[0]).unwrap();
        // A length grown past the end of the file, but without a matching check:
        // exactly the damage that must not pass for an interrupted append.
        let mut bad = full.clone();
        bad[last + 1] ^= 0x10;
        match read_damaged(&vfs, dir.path(), &keys, &bad, vfs_name) {
            Error::Corruption { offset, reason, .. } => {
                assert_eq!(offset, ends[0]);
                assert!(reason.contains("length check"), "{reason}");
            }
            other => panic!("{vfs_name}: {other:?}"),
        }
    }
}

#[test]
fn zero_filled_space_after_whole_frames_is_a_clean_end() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = small_records();
        let (path, _) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        for zeros in [1usize, 11, 12, 13, 100, 4096] {
            let mut bytes = full.clone();
            bytes.resize(full.len() + zeros, 0);
            let p = write_bytes(dir.path(), NAME, &bytes);
            let got = LogReader::read_all(&vfs, &p, &keys, FileKind::Wal, 7).unwrap();
            assert_eq!(got.records, records, "{vfs_name}: {zeros} zeros");
            assert_eq!(got.torn_tail_at, None, "{vfs_name}: {zeros} zeros");
            assert_eq!(got.valid_len, full.len() as u64);
            // A non-zero byte among them is no longer the end the writer left.
            *bytes.last_mut().unwrap() = 1;
            let p = write_bytes(dir.path(), NAME, &bytes);
            let got = LogReader::read_all(&vfs, &p, &keys, FileKind::Wal, 7).unwrap();
            assert_eq!(got.records, records, "{vfs_name}: {zeros} zeros then a byte");
            assert_eq!(got.torn_tail_at, Some(full.len() as u64), "{vfs_name}: {zeros} zeros then a byte");
        }
    }
}

#[test]
fn a_frame_moved_to_another_offset_fails_authentication() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        // Two records of one size: their frames can be swapped without touching
        // any length, so only the AEAD binding of the offset can catch it.
        let records = vec![pattern(1, 50), pattern(2, 50)];
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        let (a, b, c) = (FILE_HEADER_LEN, usize::try_from(ends[0]).unwrap(), full.len());
        let swapped = [&full[..a], &full[b..c], &full[a..b]].concat();
        match read_damaged(&vfs, dir.path(), &keys, &swapped, vfs_name) {
            Error::Corruption { offset, reason, .. } => {
                assert_eq!(offset, FILE_HEADER_LEN as u64);
                assert!(reason.contains("authentication"), "{reason}");
            }
            other => panic!("{vfs_name}: {other:?}"),
        }
        // A frame copied from another log of the same store fails the same way.
        let (other_path, _) = write_log(&vfs, dir.path(), "000002.wal", &keys, FileKind::Wal, &records);
        let other = std::fs::read(other_path).unwrap();
        let spliced = [&full[..b], &other[b..c]].concat();
        match read_damaged(&vfs, dir.path(), &keys, &spliced, vfs_name) {
            Error::Corruption { offset, .. } => assert_eq!(offset, ends[0]),
            other => panic!("{vfs_name}: {other:?}"),
        }
    }
}

#[test]
fn a_partly_written_frame_followed_by_zeros_is_a_torn_tail() {
    // The crc fails, but the payload's tail (16 bytes and more) reads as zeros: the
    // append was cut short, as a crash into preallocated space leaves it.
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = small_records();
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        let last_start = usize::try_from(ends[ends.len() - 2]).unwrap();
        let mut bytes = full[..last_start + 14].to_vec();
        bytes.resize(full.len() + 100, 0);
        let p = write_bytes(dir.path(), NAME, &bytes);
        let got = LogReader::read_all(&vfs, &p, &keys, FileKind::Wal, 7).unwrap();
        assert_eq!(got.records, records[..records.len() - 1], "{vfs_name}");
        assert_eq!(got.torn_tail_at, Some(last_start as u64), "{vfs_name}");
    }
}

#[test]
fn a_frame_missing_only_its_last_bytes_before_zeros_is_corruption() {
    // Zeros over the last 1 to 15 bytes of the last frame are exactly what one
    // damaged byte can leave (FORMAT.md), so they stay corruption.
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = vec![pattern(1, 30), pattern(2, 40)];
        let (path, ends) = write_log(&vfs, dir.path(), NAME, &keys, FileKind::Wal, &records);
        let full = std::fs::read(&path).unwrap();
        let end = full.len();
        for lost in 1..16 {
            let mut bytes = full[..end - lost].to_vec();
            if full[end - lost - 1] == 0 {
                // A zero right before the cut would lengthen the run; not this case.
                continue;
            }
            if full[end - lost..].iter().all(|&b| b == 0) {
                // The cut bytes were zeros already (the tag's random last bytes,
                // one time in 256 for one byte): the zero fill changes nothing.
                continue;
            }
            bytes.resize(end + 4096, 0);
            match read_damaged(&vfs, dir.path(), &keys, &bytes, vfs_name) {
                Error::Corruption { offset, reason, .. } => {
                    assert_eq!(offset, ends[0], "{vfs_name}: {lost} bytes lost");
                    assert!(reason.contains("checksum"), "{reason}");
                }
                other => panic!("{vfs_name}: {other:?}"),
            }
        }
    }
}
