//! The worked example of `wal/FORMAT.md`, rebuilt and checked byte for byte where
//! the bytes do not depend on the random file key, and the recovery table under it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::{scratch_dir, vfs_impls};
use crypto::{FileKind, KeyManager};
use wal::{Error, LogReader, LogWriter};

#[test]
fn format_md_worked_example() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, vfs) in vfs_impls() {
        let dir = scratch_dir();
        let records = [b"hello".to_vec(), Vec::new()];
        let path = dir.path().join("000001.wal");
        let w = LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal).unwrap();
        let ends: Vec<u64> = records.iter().map(|r| w.append(r).unwrap()).collect();
        w.sync().unwrap();
        assert_eq!(ends, vec![117, 145], "{vfs_name}");
        let file = std::fs::read(&path).unwrap();
        assert_eq!(file.len(), 145);
        assert_eq!(&file[..12], b"SYNAPSED\x01\x01\x00\x00");
        assert_eq!(&file[16..24], &1u64.to_le_bytes(), "file id");
        assert_eq!(&file[84..92], &[0x15, 0, 0, 0, 0x69, 0x92, 0x01, 0xe4]);
        assert_eq!(&file[92..96], &crc32fast::hash(&file[96..117]).to_le_bytes());
        assert_eq!(&file[117..125], &[0x10, 0, 0, 0, 0x5b, 0x62, 0xdf, 0xd3]);
        assert_eq!(&file[125..129], &crc32fast::hash(&file[129..145]).to_le_bytes());

        let cut_path = dir.path().join("000002.wal");
        let read = |bytes: &[u8]| {
            std::fs::write(&cut_path, bytes).unwrap();
            LogReader::read_all(&vfs, &cut_path, &keys, FileKind::Wal, 1)
        };
        assert!(matches!(read(&file[..60]), Err(Error::Corruption { offset: 0, .. })));
        let zero_tail = [&file[..], &[0u8; 4096]].concat();
        let mut tag_lost = file[..129].to_vec();
        tag_lost.resize(4096, 0);
        let mut zeros_damaged = zero_tail.clone();
        zeros_damaged[3000] = 1;
        let table: [(&[u8], usize, Option<u64>, u64); 9] = [
            (&file[..84], 0, None, 84),
            (&file[..90], 0, Some(84), 84),
            (&file[..100], 0, Some(84), 84),
            (&file[..117], 1, None, 117),
            (&file[..130], 1, Some(117), 117),
            (&file[..], 2, None, 145),
            (&zero_tail, 2, None, 145),
            (&tag_lost, 1, Some(117), 117),
            (&zeros_damaged, 2, Some(145), 145),
        ];
        for (bytes, n, torn, valid) in table {
            let got = read(bytes).unwrap();
            assert_eq!(got.records, records[..n], "{vfs_name}: length {}", bytes.len());
            assert_eq!((got.torn_tail_at, got.valid_len), (torn, valid), "{vfs_name}: length {}", bytes.len());
        }
        let flipped = |at: usize| {
            let mut bad = file.clone();
            bad[at] ^= 1;
            bad
        };
        let mut cut_in_tag = file[..140].to_vec();
        cut_in_tag.resize(4096, 0);
        let damaged = [
            (flipped(86), "length check", 84),
            (flipped(100), "checksum mismatch", 84),
            (cut_in_tag, "checksum mismatch", 117),
        ];
        for (bad, reason, offset) in damaged {
            match read(&bad) {
                Err(Error::Corruption { file, offset: o, reason: r }) if o == offset => {
                    assert_eq!(file, "000002.wal");
                    assert!(r.contains(reason), "{r}");
                }
                other => panic!("{vfs_name}: {reason} at {offset}: {other:?}"),
            }
        }
    }
}
