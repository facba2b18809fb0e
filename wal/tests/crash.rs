//! Crash consistency of group commit: every record whose `sync_to` returned was
//! covered by an fsync that began after it was appended, and a power loss that keeps
//! the durable bytes plus any prefix of the unsynced tail (or whole frames of it
//! followed by zeros) recovers every acknowledged record, in order, and nothing else.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::{scratch_dir, vfs_impls, FailingVfs, Faults};
use crypto::vfs::Vfs;
use crypto::{FileKind, KeyManager, FILE_HEADER_LEN, TAG_LEN};
use rand::{Rng, SeedableRng};
use wal::{LogReader, LogWriter, FRAME_HEADER_LEN};

const THREADS: usize = 4;
const RECORDS_PER_THREAD: usize = 150;

#[test]
fn acknowledged_records_survive_a_simulated_power_loss() {
    let keys = KeyManager::ephemeral();
    for (vfs_name, inner) in vfs_impls() {
        let faults = Arc::new(Faults::default());
        let vfs: Arc<dyn Vfs> = Arc::new(FailingVfs { inner, faults: faults.clone() });
        let dir = scratch_dir();
        let path = dir.path().join("000001.wal");
        let w = LogWriter::create(&vfs, &path, &keys, 1, FileKind::Wal).unwrap();
        let acked = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (w, faults, acked) = (&w, &faults, &acked);
                s.spawn(move || {
                    for i in 0..RECORDS_PER_THREAD {
                        let record = format!("t{t} r{i} {}", "y".repeat((i * 7 + t) % 200)).into_bytes();
                        let end = w.append(&record).unwrap();
                        // Only every third record waits for durability, so the
                        // file keeps an unsynced tail at the end.
                        if i % 3 == 0 {
                            w.sync_to(end).unwrap();
                            let durable = faults.durable_len.load(Ordering::SeqCst);
                            assert!(durable >= end, "{vfs_name}: acknowledged {end} but only {durable} durable");
                            acked.lock().unwrap().push(record);
                        }
                    }
                });
            }
        });
        // Nothing after the last sync is durable; put one unsynced record there for sure.
        w.append(b"unsynced tail").unwrap();
        drop(w);
        let durable = usize::try_from(faults.durable_len.load(Ordering::SeqCst)).unwrap();
        let full = std::fs::read(&path).unwrap();
        assert!(durable < full.len());
        let in_order = LogReader::read_all(&vfs, &path, &keys, FileKind::Wal, 1).unwrap().records;
        let acked = acked.into_inner().unwrap();
        let boundaries: Vec<usize> = in_order
            .iter()
            .scan(FILE_HEADER_LEN, |end, r| {
                *end += FRAME_HEADER_LEN + r.len() + TAG_LEN;
                Some(*end)
            })
            .collect();
        assert!(boundaries.contains(&durable), "a sync covers whole frames");

        let crashed = dir.path().join("000002.wal");
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
        for round in 0..200 {
            let mut keep = durable + rng.gen_range(0..=full.len() - durable);
            if round % 2 == 1 {
                // Zero-filled space after a crash at a frame boundary is a clean end
                // (FORMAT.md): the crash lost whole frames, the file system kept its size.
                keep = *boundaries.iter().filter(|b| **b >= durable).nth(rng.gen_range(0..5)).unwrap_or(&durable);
            }
            let mut bytes = full[..keep].to_vec();
            if round % 2 == 1 {
                bytes.resize(keep + rng.gen_range(1..5000), 0);
            }
            std::fs::write(&crashed, &bytes).unwrap();
            let got = LogReader::read_all(&vfs, &crashed, &keys, FileKind::Wal, 1)
                .unwrap_or_else(|e| panic!("{vfs_name}: crash keeping {keep} bytes: {e}"));
            assert_eq!(got.records, in_order[..got.records.len()], "{vfs_name}: not a prefix of the log");
            for record in &acked {
                assert!(got.records.contains(record), "{vfs_name}: acknowledged record lost at keep {keep}");
            }
            let zeros_after = bytes[got.valid_len as usize..].iter().all(|b| *b == 0);
            assert_eq!(got.torn_tail_at.is_none(), zeros_after, "{vfs_name}: keep {keep}");
        }
    }
}
