//! Tests of `SimVfs`: what survives a simulated crash, dead handles, locks and
//! injected faults.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::vfs::write_file_atomic;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

/// A file system with the directory `/d` and a durably created, synced file `/d/f` holding `content`.
fn with_durable_file(content: &[u8]) -> Arc<SimVfs> {
    let fs = SimVfs::new();
    fs.create_dir_all(&p("/d")).unwrap();
    let f = fs.create(&p("/d/f")).unwrap();
    f.append(content).unwrap();
    f.sync().unwrap();
    fs.sync_dir(&p("/d")).unwrap();
    fs
}

#[test]
fn unsynced_appends_are_dropped_at_crash() {
    let fs = with_durable_file(b"");
    let f = fs.open_for_overwrite(&p("/d/f")).unwrap();
    f.append(b"abc").unwrap();
    f.sync().unwrap();
    f.append(b"def").unwrap();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"abcdef");
    assert_eq!(fs.read_durable(&p("/d/f")).unwrap(), b"abc");
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"abc");
    assert_eq!(fs.read_all(&p("/d/f")).unwrap(), b"abc");
    assert_eq!(fs.crash_count(), 1);
}

#[test]
fn create_without_dir_sync_vanishes_even_if_synced() {
    let fs = SimVfs::new();
    fs.create_dir_all(&p("/d")).unwrap();
    let f = fs.create(&p("/d/new")).unwrap();
    f.append(b"data").unwrap();
    f.sync().unwrap();
    assert!(fs.exists(&p("/d/new")));
    fs.crash();
    assert!(!fs.exists(&p("/d/new")));
    assert!(fs.list_files().is_empty());
    // Directories themselves survive.
    assert!(fs.exists(&p("/d")));
}

#[test]
fn rename_is_durable_only_after_dir_sync() {
    let fs = with_durable_file(b"old");
    let tmp = fs.create(&p("/d/f.tmp")).unwrap();
    tmp.append(b"new").unwrap();
    tmp.sync().unwrap();
    fs.rename(&p("/d/f.tmp"), &p("/d/f")).unwrap();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"new");
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"old", "un-synced rename must revert");
    assert!(!fs.exists(&p("/d/f.tmp")), "the temp file was never durably named");

    write_file_atomic(&*fs, &p("/d"), "f", b"new").unwrap();
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"new");
    assert_eq!(fs.list_files(), vec![p("/d/f")]);
}

#[test]
fn remove_is_durable_only_after_dir_sync() {
    let fs = with_durable_file(b"keep");
    fs.remove_file(&p("/d/f")).unwrap();
    assert!(!fs.exists(&p("/d/f")));
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"keep");
    fs.remove_file(&p("/d/f")).unwrap();
    fs.sync_dir(&p("/d")).unwrap();
    fs.crash();
    assert!(!fs.exists(&p("/d/f")));
}

#[test]
fn truncate_is_durable_at_once() {
    let fs = with_durable_file(b"0123456789");
    fs.truncate(&p("/d/f"), 4).unwrap();
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"0123");
}

#[test]
fn handles_from_before_a_crash_are_dead() {
    let fs = with_durable_file(b"abc");
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    let r = fs.open(&p("/d/f")).unwrap();
    fs.crash();
    assert!(w.append(b"x").is_err());
    assert!(w.sync().is_err());
    let mut buf = [0u8; 1];
    assert!(r.read_exact_at(&mut buf, 0).is_err());
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"abc", "a dead handle wrote nothing");
    // Handles of the new boot work.
    let r2 = fs.open(&p("/d/f")).unwrap();
    r2.read_exact_at(&mut buf, 2).unwrap();
    assert_eq!(&buf, b"c");
}

#[test]
fn locks_conflict_release_on_drop_and_at_crash() {
    let fs = SimVfs::new();
    fs.create_dir_all(&p("/d")).unwrap();
    let g = fs.lock(&p("/d/LOCK")).unwrap();
    match fs.lock(&p("/d/LOCK")) {
        Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
        other => panic!("expected Held, got {other:?}"),
    }
    drop(g);
    let old = fs.lock(&p("/d/LOCK")).unwrap();
    fs.crash();
    // The crash released the lock: the "new boot" may take it...
    let new = fs.lock(&p("/d/LOCK")).unwrap();
    // ...and the dead instance dropping its guard must not release the new holder's lock.
    drop(old);
    assert!(matches!(fs.lock(&p("/d/LOCK")), Err(LockError::Held { .. })));
    drop(new);
    assert!(fs.lock(&p("/d/LOCK")).is_ok());
}

#[test]
fn capacity_gives_enospc_and_writes_nothing() {
    let fs = with_durable_file(b"12345");
    fs.set_capacity_bytes(Some(8));
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    // Rewriting in place does not grow the file.
    w.append(b"abcde").unwrap();
    let err = w.append(b"WXYZ").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28));
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"abcde");
    assert_eq!(fs.total_live_bytes(), 5);
    w.append(b"XYZ").unwrap();
    assert_eq!(fs.total_live_bytes(), 8);
    let g = fs.create(&p("/d/g")).unwrap();
    assert_eq!(g.append(b"1").unwrap_err().raw_os_error(), Some(28));
    fs.set_capacity_bytes(None);
    g.append(b"1").unwrap();
    assert_eq!(fs.total_live_bytes(), 9);
}

#[test]
fn fail_write_after_n_is_sticky_until_cleared() {
    let fs = with_durable_file(b"");
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    fs.fail_write_after(2);
    w.append(b"a").unwrap();
    w.append(b"b").unwrap();
    assert_eq!(w.append(b"c").unwrap_err().raw_os_error(), Some(5));
    assert_eq!(w.append(b"d").unwrap_err().raw_os_error(), Some(5));
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"ab");
    fs.clear_faults();
    w.append(b"e").unwrap();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"abe");
    assert_eq!(w.len(), 3);
}

#[test]
fn failed_write_may_leave_a_strict_prefix() {
    let mut lengths = BTreeSet::new();
    for seed in 0..16 {
        let fs = SimVfs::with_seed(seed);
        fs.create_dir_all(&p("/d")).unwrap();
        let w = fs.create(&p("/d/f")).unwrap();
        fs.set_partial_failed_writes(true);
        fs.fail_write_after(0);
        assert!(w.append(b"0123456789").is_err());
        let live = fs.read_live(&p("/d/f")).unwrap();
        assert!(live.len() < 10 && b"0123456789".starts_with(&live), "{live:?}");
        assert_eq!(w.len(), live.len() as u64);
        lengths.insert(live.len());
    }
    assert!(lengths.len() > 1, "the prefix length should vary with the seed: {lengths:?}");
}

#[test]
fn failed_sync_makes_nothing_durable() {
    let fs = with_durable_file(b"a");
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    w.append(b"b").unwrap();
    fs.fail_sync_after(0);
    assert_eq!(w.sync().unwrap_err().raw_os_error(), Some(5));
    assert!(fs.sync_dir(&p("/d")).is_err());
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"a");

    fs.clear_faults();
    fs.fail_sync_after(1);
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    w.append(b"c").unwrap();
    w.sync().unwrap();
    assert!(w.sync().is_err());
}

/// Where a torn write cuts the unsynced tail, for one seed.
fn torn_length(seed: u64) -> usize {
    let fs = SimVfs::with_seed(seed);
    fs.set_torn_writes(true);
    fs.create_dir_all(&p("/d")).unwrap();
    let w = fs.create(&p("/d/f")).unwrap();
    w.append(b"synced|").unwrap();
    w.sync().unwrap();
    fs.sync_dir(&p("/d")).unwrap();
    w.append(b"0123456789abcdefghij").unwrap();
    fs.crash();
    let after = fs.read_live(&p("/d/f")).unwrap();
    assert!(after.starts_with(b"synced|"), "synced bytes always survive");
    assert!(b"synced|0123456789abcdefghij".starts_with(&after), "only a prefix of the tail survives");
    // What survived is on the medium now: a second crash keeps it.
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), after);
    after.len()
}

#[test]
fn torn_writes_keep_a_seeded_prefix_of_the_tail() {
    let lengths: Vec<usize> = (0..16).map(torn_length).collect();
    assert_eq!(lengths, (0..16).map(torn_length).collect::<Vec<_>>(), "the same seed gives the same tear");
    assert!(lengths.iter().collect::<BTreeSet<_>>().len() > 1, "tears vary with the seed: {lengths:?}");
    // Without torn writes the whole tail goes.
    let fs = with_durable_file(b"x");
    fs.open_for_overwrite(&p("/d/f")).unwrap().append(b"xyz").unwrap();
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"x");
}

#[test]
fn overwrite_rewrites_in_place_without_truncating() {
    let fs = with_durable_file(b"0123456789");
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    assert_eq!(w.len(), 0);
    w.append(b"ab").unwrap();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"ab23456789");
    assert_eq!(w.len(), 2);
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 10);
    // Create, in contrast, truncates (durably only once synced).
    let c = fs.create(&p("/d/f")).unwrap();
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 0);
    c.append(b"z").unwrap();
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"0123456789");
}

#[test]
fn corrupt_byte_hits_live_and_durable_bytes() {
    let fs = with_durable_file(b"abc");
    fs.open_for_overwrite(&p("/d/f")).unwrap().append(b"abcdef").unwrap();
    fs.corrupt_byte(&p("/d/f"), 1, 0x20).unwrap();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"aBcdef");
    assert_eq!(fs.read_durable(&p("/d/f")).unwrap(), b"aBc");
    fs.corrupt_byte(&p("/d/f"), 4, 0x20).unwrap();
    assert!(fs.corrupt_byte(&p("/d/f"), 6, 1).is_err());
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"aBc");
}

#[test]
fn directories_and_listing() {
    let fs = SimVfs::new();
    assert_eq!(fs.create(&p("/missing/f")).err().unwrap().kind(), io::ErrorKind::NotFound);
    assert_eq!(fs.list_dir(&p("/missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    fs.create_dir_all(&p("/d/sub")).unwrap();
    for name in ["b", "a", "c"] {
        fs.create(&p("/d").join(name)).unwrap();
    }
    fs.create(&p("/d/sub/deep")).unwrap();
    assert_eq!(fs.list_dir(&p("/d")).unwrap(), vec!["a", "b", "c", "sub"]);
    assert_eq!(fs.list_dir(&p("/d/sub")).unwrap(), vec!["deep"]);
    assert_eq!(fs.list_files(), vec![p("/d/a"), p("/d/b"), p("/d/c"), p("/d/sub/deep")]);
    assert!(fs.create_dir_all(&p("/d/a/x")).is_err(), "a file is not a directory");
    assert_eq!(fs.rename(&p("/d/nope"), &p("/d/x")).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(fs.remove_file(&p("/d/nope")).unwrap_err().kind(), io::ErrorKind::NotFound);
    // Relative paths work as given.
    fs.create(&p("top")).unwrap().append(b"t").unwrap();
    assert_eq!(fs.read_all(&p("top")).unwrap(), b"t");
}

#[test]
fn reads_past_the_end_fail() {
    let fs = with_durable_file(b"abc");
    let r = fs.open(&p("/d/f")).unwrap();
    assert_eq!(r.len(), 3);
    let mut buf = [0u8; 2];
    assert_eq!(r.read_exact_at(&mut buf, 2).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    r.read_exact_at(&mut buf, 1).unwrap();
    assert_eq!(&buf, b"bc");
}

#[test]
fn preallocated_size_is_durable_only_after_sync() {
    let fs = with_durable_file(b"hdr");
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    w.append(b"hdr").unwrap();
    w.preallocate(64).unwrap();
    assert_eq!(w.len(), 3, "preallocation leaves the append position");
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 64);
    assert_eq!(fs.read_durable(&p("/d/f")).unwrap(), b"hdr");
    fs.crash();
    assert_eq!(fs.read_live(&p("/d/f")).unwrap(), b"hdr", "an unsynced preallocation is lost");

    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    w.append(b"hdr").unwrap();
    w.preallocate(64).unwrap();
    w.sync().unwrap();
    // A smaller size changes nothing.
    w.preallocate(10).unwrap();
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 64);
    fs.crash();
    let after = fs.read_live(&p("/d/f")).unwrap();
    assert_eq!(after.len(), 64);
    assert_eq!(&after[..3], b"hdr");
    assert!(after[3..].iter().all(|b| *b == 0), "preallocated space reads as zeros");
}

#[test]
fn appends_fill_preallocated_space_and_unsynced_ones_are_lost() {
    let fs = with_durable_file(b"");
    let w = fs.create(&p("/d/f")).unwrap();
    w.append(b"head|").unwrap();
    w.preallocate(32).unwrap();
    w.sync().unwrap();
    w.append(b"synced|").unwrap();
    w.sync().unwrap();
    w.append(b"lost").unwrap();
    assert_eq!(w.len(), 16);
    let live = fs.read_live(&p("/d/f")).unwrap();
    assert_eq!(&live[..16], b"head|synced|lost");
    assert_eq!(live.len(), 32);
    // Writing past the preallocated end grows the file as an append does.
    w.append(&[7u8; 20]).unwrap();
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 36);
    fs.crash();
    let after = fs.read_live(&p("/d/f")).unwrap();
    assert_eq!(after.len(), 32, "the durable size");
    assert_eq!(&after[..12], b"head|synced|");
    assert!(after[12..].iter().all(|b| *b == 0), "unsynced bytes in preallocated space read as zeros");
}

#[test]
fn torn_writes_into_preallocated_space_keep_a_prefix_then_zeros() {
    let mut kept = BTreeSet::new();
    for seed in 0..32 {
        let fs = SimVfs::with_seed(seed);
        fs.set_torn_writes(true);
        fs.create_dir_all(&p("/d")).unwrap();
        let w = fs.create(&p("/d/f")).unwrap();
        w.append(b"synced|").unwrap();
        w.preallocate(64).unwrap();
        w.sync().unwrap();
        fs.sync_dir(&p("/d")).unwrap();
        w.append(b"0123456789abcdefghij").unwrap();
        fs.crash();
        let after = fs.read_live(&p("/d/f")).unwrap();
        assert_eq!(after.len(), 64, "seed {seed}: the synced size survives");
        let full = b"synced|0123456789abcdefghij";
        let landed = after.iter().zip(full.iter()).take_while(|(a, b)| a == b).count();
        assert!(landed >= 7, "seed {seed}: synced bytes always survive");
        assert!(after[landed..].iter().all(|b| *b == 0), "seed {seed}: a prefix of the tail, then zeros: {after:?}");
        kept.insert(landed);
        fs.crash();
        assert_eq!(fs.read_live(&p("/d/f")).unwrap(), after, "seed {seed}: what landed stays");
    }
    assert!(kept.len() > 1, "tears vary with the seed: {kept:?}");
}

#[test]
fn preallocation_past_the_capacity_fails_with_enospc() {
    let fs = with_durable_file(b"abc");
    fs.set_capacity_bytes(Some(100));
    let w = fs.open_for_overwrite(&p("/d/f")).unwrap();
    let err = w.preallocate(101).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ENOSPC));
    assert_eq!(fs.file_size(&p("/d/f")).unwrap(), 3, "a refused preallocation changes nothing");
    w.preallocate(100).unwrap();
    assert_eq!(fs.total_live_bytes(), 100, "preallocated space counts against the capacity");
    assert_eq!(w.append(b"abc").map_err(|e| e.raw_os_error()), Ok(()));
}
