//! WAL segments are sized ahead of their appends (`docs/design.md`, "WAL
//! preallocation"): the active segment is preallocated while the store is open and
//! reads back with a clean end (no torn tail for `verify` to report), a segment
//! that takes no more appends is cut back to its last frame (at a memtable switch
//! and at close), acknowledged batches survive a power loss into preallocated
//! space, and a segment a crash left blank (zeros, no header) is skipped.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use synapsed_storage::vfs::ForwardingVfs;
use synapsed_storage::{Db, Options, SimVfs, SyncPolicy, Vfs};

mod common;
use common::cred;

const DIR: &str = "/store";

fn options(vfs: Arc<dyn Vfs>, memtable_size_bytes: usize) -> Options {
    Options::tiny_for_tests()
        .with_vfs(vfs)
        .with_sync(SyncPolicy::EveryCommit)
        .with_background_compaction(false)
        .with_memtable_size_bytes(memtable_size_bytes)
}

fn segments(sim: &SimVfs) -> Vec<PathBuf> {
    sim.list_files().into_iter().filter(|p| p.extension().is_some_and(|e| e == "wal")).collect()
}

/// Where the frames of a log end: the offset past its last non-zero byte.
fn frames_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)
}

fn put_many(db: &Db, from: u32, to: u32) {
    for i in from..to {
        db.put(format!("key{i:05}").as_bytes(), format!("value {i}").as_bytes()).unwrap();
    }
}

fn check_many(db: &Db, from: u32, to: u32) {
    for i in from..to {
        assert_eq!(
            db.get(format!("key{i:05}").as_bytes()).unwrap(),
            Some(format!("value {i}").into_bytes()),
            "key{i:05}"
        );
    }
}

#[test]
fn the_active_segment_is_preallocated_while_open_and_exact_once_closed() {
    let sim = SimVfs::new();
    // A 64 KiB memtable: segments start at 64 KiB and grow in 4 KiB steps.
    let db = Db::create(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
    put_many(&db, 0, 100);
    let wal = segments(&sim);
    assert_eq!(wal.len(), 1, "{wal:?}");
    let live = sim.read_live(&wal[0]).unwrap();
    assert_eq!(live.len(), 64 << 10, "the segment is preallocated");
    assert!(frames_end(&live) < live.len());
    // The same bytes are what a power loss would leave: the size was synced.
    assert_eq!(sim.read_durable(&wal[0]).unwrap().len(), 64 << 10);

    // verify of the open store: a clean end, not a torn tail.
    let report =
        Db::verify(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10).with_read_only(true)).unwrap();
    assert!(report.is_ok() && report.torn_tails.is_empty(), "{report:?}");

    db.close().unwrap();
    let closed = sim.read_durable(&wal[0]).unwrap();
    // The last frame ends with a 16-byte tag whose last bytes may be zeros
    // (one time in 256 for the last one), so its end is within 15 bytes after
    // the last non-zero byte; everything cut was preallocated zeros.
    let end = frames_end(&live);
    assert!((end..end + 16).contains(&closed.len()), "close cuts the segment back to its last frame: {} vs {end}", closed.len());
    assert_eq!(&closed[..], &live[..closed.len()]);
    assert!(live[closed.len()..].iter().all(|&b| b == 0), "only zeros were cut");
    assert!(closed.len() < live.len());
    let db = Db::open(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
    check_many(&db, 0, 100);
    db.close().unwrap();
}

#[test]
fn acknowledged_batches_survive_a_power_loss_into_preallocated_space() {
    for seed in 0..20 {
        let sim = SimVfs::with_seed(seed);
        let db = Db::create(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
        put_many(&db, 0, 50 + seed as u32 * 10);
        // Power loss: the store never runs again, and nothing unsynced survives.
        sim.set_torn_writes(true);
        sim.crash();
        std::mem::forget(db);
        sim.clear_faults();
        let db = Db::open(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
        check_many(&db, 0, 50 + seed as u32 * 10);
        db.close().unwrap();
    }
}

#[test]
fn a_blank_segment_left_by_a_crash_is_skipped_and_retired() {
    let sim = SimVfs::new();
    let db = Db::create(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
    put_many(&db, 0, 20);
    db.close().unwrap();
    // What a crash in `create_wal` before its sync can leave: the preallocated size
    // reached the disk, the header did not.
    let blank = Path::new(DIR).join("000999.wal");
    let file = sim.create(&blank).unwrap();
    file.preallocate(64 << 10).unwrap();
    file.sync().unwrap();
    sim.sync_dir(Path::new(DIR)).unwrap();
    drop(file);

    let report =
        Db::verify(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10).with_read_only(true)).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let db = Db::open(Path::new(DIR), &cred(), options(sim.clone(), 64 << 10)).unwrap();
    check_many(&db, 0, 20);
    assert!(!sim.list_files().contains(&blank), "the blank segment was not retired");
    db.close().unwrap();
}

/// A file system that records every `truncate` and delegates everything to `SimVfs`.
#[derive(Debug)]
struct RecordingVfs {
    sim: Arc<SimVfs>,
    truncated: Mutex<Vec<(PathBuf, u64)>>,
}

impl ForwardingVfs for RecordingVfs {
    fn inner(&self) -> &dyn Vfs {
        &*self.sim
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.truncated.lock().push((path.to_path_buf(), len));
        self.sim.truncate(path, len)
    }
}

#[test]
fn a_segment_is_cut_back_to_its_last_frame_when_the_memtable_switches() {
    let sim = SimVfs::new();
    let vfs = Arc::new(RecordingVfs { sim: sim.clone(), truncated: Mutex::new(Vec::new()) });
    let db = Db::create(Path::new(DIR), &cred(), options(vfs.clone(), 64 << 10)).unwrap();
    let first = segments(&sim);
    assert_eq!(first.len(), 1);
    put_many(&db, 0, 20);
    let before = sim.read_live(&first[0]).unwrap();
    // The last frame ends within 15 bytes after the last non-zero byte (its
    // tag's last bytes may be zeros).
    let written = frames_end(&before) as u64;
    assert!(vfs.truncated.lock().is_empty());
    db.flush().unwrap();
    let cut = vfs.truncated.lock().clone();
    assert_eq!(cut.len(), 1, "the segment behind the flushed memtable was cut back: {cut:?}");
    assert_eq!(cut[0].0, first[0]);
    assert!((written..written + 16).contains(&cut[0].1), "cut back to its frames: {} vs {written}", cut[0].1);
    assert!(before[usize::try_from(cut[0].1).unwrap()..].iter().all(|&b| b == 0), "only zeros were cut");
    put_many(&db, 20, 40);
    check_many(&db, 0, 40);
    db.close().unwrap();
    let truncated = vfs.truncated.lock().clone();
    assert_eq!(truncated.len(), 2, "close cuts back the active segment: {truncated:?}");
    let db = Db::open(Path::new(DIR), &cred(), options(vfs.clone(), 64 << 10)).unwrap();
    check_many(&db, 0, 40);
    db.close().unwrap();
}
