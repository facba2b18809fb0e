//! Tests of the key-file pair: the sealed `KEYSLOTS` (slot set authenticated
//! under MK), the keyring generation and keyring key, the upgrade of stores of
//! the first layout, the overwrite of replaced key files, `rekey`, and the
//! integrity root that outlives every key change.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use super::*;
use crate::codec::{append_crc, hkdf_sha256};
use crate::header::FileKind;
use crate::vfs::StdVfs;

use crate::manager::test_support::{pass, sim, TINY};

fn read(vfs: &Arc<dyn Vfs>, dir: &Path, name: &str) -> Vec<u8> {
    vfs.read_all(&dir.join(name)).unwrap()
}

fn put(vfs: &Arc<dyn Vfs>, dir: &Path, name: &str, bytes: &[u8]) {
    write_file_atomic(&**vfs, dir, name, bytes).unwrap();
}

fn corruption_in(r: Result<Arc<KeyManager>>, file: &str) -> String {
    match r {
        Err(Error::Corruption { file: f, reason, .. }) => {
            assert_eq!(f, file, "{reason}");
            reason
        }
        other => panic!("expected corruption in {file}, got {other:?}"),
    }
}

/// A store as the first layout wrote it: `KEYSLOTS` without a seal, `KEYRING`
/// sealed under MK itself.
fn first_layout_store(vfs: &Arc<dyn Vfs>, dir: &Path) -> MasterKey {
    let master = MasterKey::random();
    let store_id = [7u8; 16];
    let mut slots = KeyslotFile::create(&master, store_id, &pass("p"), &TINY).unwrap();
    slots.add_slot(&master, &pass("second"), &TINY).unwrap();
    vfs.create_dir_all(dir).unwrap();
    put(vfs, dir, KEYRING_FILE, &Keyring::new_random().seal(&master, &store_id));
    let bytes = slots.encode();
    assert_eq!(bytes[8], 1, "the first layout");
    put(vfs, dir, KEYSLOTS_FILE, &bytes);
    master
}

#[test]
fn integrity_root_survives_key_changes_rekey_and_reopen() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let root = keys.integrity_root();
    keys.rotate(&vfs, &dir).unwrap();
    keys.destroy_epoch(&vfs, &dir, 1).unwrap();
    KeyManager::change_passphrase(&vfs, &dir, &pass("p"), b"q", &TINY).unwrap();
    assert_eq!(*unlock(&vfs, &dir, "q").integrity_root(), *root);
    let before = unlock(&vfs, &dir, "q");
    before.rekey(&vfs, &dir, &pass("q"), None).unwrap();
    assert_eq!(*before.integrity_root(), *root, "rekey keeps the root in memory");
    assert_eq!(*unlock(&vfs, &dir, "q").integrity_root(), *root, "and on disk");
    // Two stores never share a root.
    let other = KeyManager::create(&vfs, &dir.join("other"), &pass("p"), &TINY).unwrap();
    assert_ne!(*other.integrity_root(), *root);
}

fn unlock(vfs: &Arc<dyn Vfs>, dir: &Path, p: &str) -> Arc<KeyManager> {
    KeyManager::unlock(vfs, dir, &pass(p)).unwrap()
}

#[test]
fn first_layout_store_opens_is_upgraded_and_cannot_be_downgraded() {
    let (_, vfs, dir) = sim();
    let master = first_layout_store(&vfs, &dir);
    let old_slots = read(&vfs, &dir, KEYSLOTS_FILE);
    let old_ring = read(&vfs, &dir, KEYRING_FILE);
    let keys = unlock(&vfs, &dir, "p");
    let mut expected_root = [0u8; 32];
    hkdf_sha256(master.as_bytes(), None, b"synapsed-storage integrity root", &mut expected_root);
    assert_eq!(*keys.integrity_root(), expected_root, "the root of a first-layout keyring is derived from MK");
    let (hdr, _) = keys.new_file(FileKind::Sst, 4, "000004.sst");
    assert!(keys.upgrade(&vfs, &dir).unwrap());
    assert!(!keys.upgrade(&vfs, &dir).unwrap(), "an upgraded store needs nothing");
    assert_eq!(read(&vfs, &dir, KEYSLOTS_FILE)[8], 2);
    assert_eq!(read(&vfs, &dir, KEYRING_FILE)[8], 2);
    for p in ["p", "second"] {
        let k = unlock(&vfs, &dir, p);
        k.open_file(&hdr, FileKind::Sst, 4, "000004.sst").unwrap();
        assert_eq!(*k.integrity_root(), expected_root, "the root is fixed at the upgrade");
    }
    // Downgrades: the old KEYRING, the old KEYSLOTS, each put back alone, are refused.
    let new_ring = read(&vfs, &dir, KEYRING_FILE);
    put(&vfs, &dir, KEYRING_FILE, &old_ring);
    let reason = corruption_in(KeyManager::unlock(&vfs, &dir, &pass("p")), KEYRING_FILE);
    assert!(reason.contains("older KEYRING"), "{reason}");
    put(&vfs, &dir, KEYRING_FILE, &new_ring);
    put(&vfs, &dir, KEYSLOTS_FILE, &old_slots);
    let reason = corruption_in(KeyManager::unlock(&vfs, &dir, &pass("p")), KEYSLOTS_FILE);
    assert!(reason.contains("older KEYSLOTS"), "{reason}");
}

#[test]
fn an_upgrade_survives_a_crash_at_every_sync() {
    for failing_sync in 0..10 {
        let (sim, vfs, dir) = sim();
        first_layout_store(&vfs, &dir);
        let keys = unlock(&vfs, &dir, "p");
        let root = keys.integrity_root();
        sim.fail_sync_after(failing_sync);
        let upgraded = keys.upgrade(&vfs, &dir);
        sim.crash();
        sim.clear_faults();
        let reopened = unlock(&vfs, &dir, "second");
        assert_eq!(*reopened.integrity_root(), *root, "sync {failing_sync}");
        if upgraded.is_ok() {
            assert_eq!(read(&vfs, &dir, KEYRING_FILE)[8], 2);
        }
        // Whatever the crash left, the next writable open finishes the upgrade.
        reopened.upgrade(&vfs, &dir).unwrap();
        assert!(!reopened.upgrade(&vfs, &dir).unwrap());
        unlock(&vfs, &dir, "p");
    }
}

/// KEYSLOTS bytes with slot `drop` removed (or slots 0 and 1 swapped when
/// `drop` is `None`) and the crc recomputed: what an adversary with the disk can do.
fn edit_slots(bytes: &[u8], drop: Option<usize>) -> Vec<u8> {
    let file = KeyslotFile::decode(bytes, KEYSLOTS_FILE).unwrap();
    let mut spans = Vec::new();
    let mut at = 42;
    for _ in 0..file.slots().len() {
        let len = u16::from_le_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        spans.push(at..at + 3 + len);
        at += 3 + len;
    }
    let mut out = bytes[..42].to_vec();
    let mut order: Vec<usize> = (0..spans.len()).collect();
    match drop {
        Some(d) => {
            order.remove(d);
            out[41] -= 1;
        }
        None => order.swap(0, 1),
    }
    for i in order {
        out.extend_from_slice(&bytes[spans[i].clone()]);
    }
    out.extend_from_slice(&bytes[at..bytes.len() - 4]);
    append_crc(&mut out);
    out
}

#[test]
fn slots_dropped_reordered_or_put_back_are_refused() {
    let (_, vfs, dir) = sim();
    let (keys, _) = KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY).unwrap();
    keys.add_credential(&vfs, &dir, &pass("second"), &TINY).unwrap();
    let good = read(&vfs, &dir, KEYSLOTS_FILE);
    for (what, bytes) in
        [("dropped", edit_slots(&good, Some(1))), ("reordered", edit_slots(&good, None))]
    {
        put(&vfs, &dir, KEYSLOTS_FILE, &bytes);
        let reason = corruption_in(KeyManager::unlock(&vfs, &dir, &pass("p")), KEYSLOTS_FILE);
        assert!(reason.contains("keyslot set failed authentication"), "{what}: {reason}");
    }
    put(&vfs, &dir, KEYSLOTS_FILE, &good);
    // A removed slot put back with the whole older file: the keyring no longer pairs.
    keys.remove_keyslot(&vfs, &dir, 2).unwrap();
    assert!(matches!(KeyManager::unlock(&vfs, &dir, &pass("second")), Err(Error::WrongKey)));
    put(&vfs, &dir, KEYSLOTS_FILE, &good);
    let reason = corruption_in(KeyManager::unlock(&vfs, &dir, &pass("second")), KEYRING_FILE);
    assert!(reason.contains("older KEYSLOTS"), "{reason}");
}

#[test]
fn an_older_keyring_is_refused_by_its_generation() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    keys.rotate(&vfs, &dir).unwrap();
    let old_ring = read(&vfs, &dir, KEYRING_FILE);
    keys.destroy_epoch(&vfs, &dir, 1).unwrap();
    put(&vfs, &dir, KEYRING_FILE, &old_ring);
    let reason = corruption_in(KeyManager::unlock(&vfs, &dir, &pass("p")), KEYRING_FILE);
    assert!(reason.contains("older KEYRING"), "{reason}");
}

/// The shredding scenario at the key layer: an epoch destroyed, then the
/// passphrase changed; the current KEYSLOTS with a kept copy of the old KEYRING
/// opens nothing under the new passphrase, so the destroyed key stays gone.
#[test]
fn a_destroyed_epoch_does_not_come_back_with_an_old_keyring() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("old"), &TINY).unwrap();
    let (hdr, _) = keys.new_file(FileKind::Sst, 5, "000005.sst");
    let old_ring = read(&vfs, &dir, KEYRING_FILE);
    keys.rotate(&vfs, &dir).unwrap();
    keys.destroy_epoch(&vfs, &dir, 1).unwrap();
    KeyManager::change_passphrase(&vfs, &dir, &pass("old"), b"new", &TINY).unwrap();
    put(&vfs, &dir, KEYRING_FILE, &old_ring);
    corruption_in(KeyManager::unlock(&vfs, &dir, &pass("new")), KEYRING_FILE);
    // Not even with the (kept) keyring key of the current KEYSLOTS.
    let slots = KeyslotFile::decode(&read(&vfs, &dir, KEYSLOTS_FILE), KEYSLOTS_FILE).unwrap();
    let master = slots.unlock(&pass("new")).unwrap();
    let state = slots.open_seal(&master).unwrap().unwrap();
    assert!(Keyring::open_v2(&old_ring, &state.keyring_key, &slots.store_id(), KEYRING_FILE).is_err());
    assert!(Keyring::open(&old_ring, &master, &slots.store_id(), KEYRING_FILE).is_err());
    assert!(matches!(keys.open_file(&hdr, FileKind::Sst, 5, "000005.sst"), Err(Error::MissingEpoch { .. })));
}

#[test]
fn replaced_key_files_are_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
    let dir = tmp.path().join("db");
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    // Handles on the files as they are now: after a change they read the old inodes.
    let ring = std::fs::File::open(dir.join(KEYRING_FILE)).unwrap();
    let slots = std::fs::File::open(dir.join(KEYSLOTS_FILE)).unwrap();
    let ring_len = ring.metadata().unwrap().len() as usize;
    let slots_len = slots.metadata().unwrap().len() as usize;
    keys.rotate(&vfs, &dir).unwrap();
    use std::os::unix::fs::FileExt;
    let mut buf = vec![1u8; ring_len];
    ring.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|b| *b == 0), "the replaced KEYRING was not overwritten");
    let mut buf = vec![1u8; slots_len];
    slots.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf.iter().all(|b| *b == 0), "the replaced KEYSLOTS was not overwritten");
    unlock(&vfs, &dir, "p");
}

#[test]
fn rekey_replaces_the_master_key_and_survives_a_crash_at_every_sync() {
    let recovery_new = RecoveryKey::generate();
    let mut completed = false;
    for failing_sync in 0..10 {
        let (sim, vfs, dir) = sim();
        let (keys, old_recovery) = KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY).unwrap();
        keys.add_credential(&vfs, &dir, &pass("other"), &TINY).unwrap();
        let (hdr, _) = keys.new_file(FileKind::Sst, 3, "000003.sst");
        let old_master = keys.master.read().clone();
        sim.fail_sync_after(failing_sync);
        let result = keys.rekey(&vfs, &dir, &pass("p"), Some(&recovery_new));
        sim.crash();
        sim.clear_faults();
        // Whatever happened, the credential used still opens the store and its files.
        let reopened = unlock(&vfs, &dir, "p");
        reopened.open_file(&hdr, FileKind::Sst, 3, "000003.sst").unwrap();
        let new_master = *reopened.master.read() != old_master;
        if let Ok(outcome) = result {
            completed = true;
            assert!(new_master);
            assert_eq!(outcome.removed.len(), 2, "the old recovery slot and the other passphrase");
            assert!(matches!(KeyManager::unlock(&vfs, &dir, &pass("other")), Err(Error::WrongKey)));
            assert!(matches!(
                KeyManager::unlock(&vfs, &dir, &Credential::Recovery(old_recovery.clone())),
                Err(Error::WrongKey)
            ));
            KeyManager::unlock(&vfs, &dir, &Credential::Recovery(recovery_new.clone())).unwrap();
            assert!(*keys.master.read() == *reopened.master.read(), "the manager follows the new key");
        } else if !new_master {
            unlock(&vfs, &dir, "other");
        }
        reopened.upgrade(&vfs, &dir).unwrap();
        unlock(&vfs, &dir, "p");
    }
    assert!(completed);
}

/// A reader that reads `KEYSLOTS` before a writer's key-file change and
/// `KEYRING` after it reads both again instead of reporting a rolled-back file.
#[test]
fn unlock_beside_a_key_change_reads_the_pair_again() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (keys, vfs, dir, stop) = (keys.clone(), vfs.clone(), dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                let epoch = keys.rotate(&vfs, &dir).unwrap();
                keys.destroy_epoch(&vfs, &dir, epoch - 1).unwrap();
                n += 1;
            }
        })
    };
    for _ in 0..200 {
        if let Err(e) = KeyManager::unlock(&vfs, &dir, &pass("p")) {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            panic!("an unlock beside a writer failed: {e}");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

/// Records every path opened for overwrite.
#[derive(Debug)]
struct OverwriteLog {
    inner: Arc<dyn Vfs>,
    overwritten: parking_lot::Mutex<Vec<PathBuf>>,
}

impl crate::vfs::ForwardingVfs for OverwriteLog {
    fn inner(&self) -> &dyn Vfs {
        &*self.inner
    }
    fn open_for_overwrite(&self, path: &Path) -> std::io::Result<Box<dyn crate::vfs::WritableFile>> {
        self.overwritten.lock().push(path.to_path_buf());
        self.inner.open_for_overwrite(path)
    }
}

#[test]
fn upgrade_overwrites_and_removes_leftover_key_file_temporaries() {
    let (_, inner, dir) = sim();
    let log = Arc::new(OverwriteLog { inner, overwritten: parking_lot::Mutex::new(Vec::new()) });
    let vfs: Arc<dyn Vfs> = log.clone();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    // What a crash between a temporary's sync and its rename leaves.
    let stale = read(&vfs, &dir, KEYRING_FILE);
    for name in ["KEYRING.tmp", "KEYSLOTS.tmp"] {
        let f = vfs.create(&dir.join(name)).unwrap();
        f.append(&stale).unwrap();
        f.sync().unwrap();
    }
    log.overwritten.lock().clear();
    keys.upgrade(&vfs, &dir).unwrap();
    for name in ["KEYRING.tmp", "KEYSLOTS.tmp"] {
        assert!(!vfs.exists(&dir.join(name)), "{name} left behind");
        assert!(log.overwritten.lock().contains(&dir.join(name)), "{name} removed without being overwritten");
    }
    unlock(&vfs, &dir, "p");
}
