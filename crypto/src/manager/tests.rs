//! Tests of the key manager: creating and unlocking a store on the real file
//! system and on `SimVfs`, and how every damaged or mismatched key file is reported.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use super::*;
use crate::envelope::BlockKind;
use crate::format::{MAX_KEYRING_FILE_LEN, MAX_KEYSLOTS_FILE_LEN};
use crate::vfs::StdVfs;

use crate::manager::test_support::{pass, sim, TINY};

/// Creates a store, writes a block under it, unlocks it again and reads the block back.
fn create_unlock_round_trip(vfs: &Arc<dyn Vfs>, dir: &Path) {
    let created = KeyManager::create(vfs, dir, &pass("open sesame"), &TINY).unwrap();
    let (hdr, cipher) = created.new_file(FileKind::Wal, 1, "000001.wal");
    let sealed = cipher.seal(FILE_HEADER_LEN as u64, BlockKind::WalRecord, b"record");
    let names = vfs.list_dir(dir).unwrap();
    assert_eq!(names, vec![KEYRING_FILE.to_string(), KEYSLOTS_FILE.to_string()], "no temporary file may remain");

    let unlocked = KeyManager::unlock(vfs, dir, &pass("open sesame")).unwrap();
    assert_eq!(unlocked.store_id(), created.store_id());
    assert_eq!(unlocked.current_epoch(), created.current_epoch());
    let reopened = unlocked.open_file(&hdr, FileKind::Wal, 1, "000001.wal").unwrap();
    assert_eq!(reopened.open(FILE_HEADER_LEN as u64, BlockKind::WalRecord, &sealed).unwrap(), b"record");

    assert!(matches!(KeyManager::unlock(vfs, dir, &pass("open sesame!")), Err(Error::WrongKey)));
    let again = KeyManager::create(vfs, dir, &pass("x"), &TINY).unwrap_err();
    assert!(matches!(again, Error::AlreadyExists(_)), "{again:?}");
    // The refused create left the store as it was.
    assert!(KeyManager::unlock(vfs, dir, &pass("open sesame")).is_ok());
}

#[test]
fn create_then_unlock_on_std_vfs() {
    let tmp = tempfile::tempdir().unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
    create_unlock_round_trip(&vfs, &tmp.path().join("db"));
}

#[test]
fn create_then_unlock_on_sim_vfs() {
    let (_, vfs, dir) = sim();
    create_unlock_round_trip(&vfs, &dir);
}

#[test]
fn created_store_survives_a_crash() {
    let (sim, vfs, dir) = sim();
    let created = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    sim.crash();
    let unlocked = KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap();
    assert_eq!(unlocked.store_id(), created.store_id());
}

#[test]
fn missing_store_is_not_found() {
    let (_, vfs, dir) = sim();
    let err = KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains("no store"), "{err}");
}

#[test]
fn missing_keyring_is_corruption_of_keyring() {
    let (_, vfs, dir) = sim();
    KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    vfs.remove_file(&dir.join(KEYRING_FILE)).unwrap();
    let err = KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap_err();
    assert!(matches!(&err, Error::Corruption { file, .. } if file == KEYRING_FILE), "{err:?}");
}

#[test]
fn invalid_arguments_write_nothing() {
    let (sim, vfs, dir) = sim();
    assert!(matches!(KeyManager::create(&vfs, &dir, &pass(""), &TINY), Err(Error::InvalidArgument(_))));
    let bad = Argon2Params { t_cost: 0, ..TINY };
    assert!(matches!(KeyManager::create(&vfs, &dir, &pass("p"), &bad), Err(Error::InvalidArgument(_))));
    assert!(sim.list_files().is_empty(), "{:?}", sim.list_files());
}

#[test]
fn raw_key_store() {
    let (_, vfs, dir) = sim();
    let key = [0x5Au8; 32];
    let created = KeyManager::create(&vfs, &dir, &Credential::raw_key(key), &TINY).unwrap();
    let unlocked = KeyManager::unlock(&vfs, &dir, &Credential::raw_key(key)).unwrap();
    assert_eq!(created.store_id(), unlocked.store_id());
    assert!(matches!(KeyManager::unlock(&vfs, &dir, &Credential::raw_key([0x5B; 32])), Err(Error::WrongKey)));
}

/// Every flipped byte of either key file on "disk" is corruption naming that file.
#[test]
fn every_flipped_byte_on_disk_is_corruption_naming_the_file() {
    let (sim, vfs, dir) = sim();
    KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    for name in [KEYSLOTS_FILE, KEYRING_FILE] {
        let path = dir.join(name);
        let len = vfs.file_size(&path).unwrap();
        for offset in 0..len {
            sim.corrupt_byte(&path, offset, 0x04).unwrap();
            match KeyManager::unlock(&vfs, &dir, &pass("p")) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, name, "flip at {name}:{offset}"),
                other => panic!("flip at {name}:{offset}: expected corruption, got {other:?}"),
            }
            sim.corrupt_byte(&path, offset, 0x04).unwrap();
        }
    }
    assert!(KeyManager::unlock(&vfs, &dir, &pass("p")).is_ok(), "undoing every flip restores the store");
}

#[test]
fn keyslots_of_another_store_do_not_open_the_keyring() {
    let (sim, vfs, _) = sim();
    let (a, b) = (PathBuf::from("/a"), PathBuf::from("/b"));
    KeyManager::create(&vfs, &a, &pass("same"), &TINY).unwrap();
    KeyManager::create(&vfs, &b, &pass("same"), &TINY).unwrap();
    // Store B's directory gets store A's keyslots.
    let a_slots = sim.read_live(&a.join(KEYSLOTS_FILE)).unwrap();
    write_file_atomic(&*vfs, &b, KEYSLOTS_FILE, &a_slots).unwrap();
    let err = KeyManager::unlock(&vfs, &b, &pass("same")).unwrap_err();
    assert!(matches!(&err, Error::Corruption { file, .. } if file == KEYRING_FILE), "{err:?}");
    assert!(err.to_string().contains("another store"), "{err}");
}

#[test]
fn debug_does_not_print_the_master_key() {
    let (_, vfs, dir) = sim();
    let km = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let text = format!("{km:?}");
    let hex = crate::keyslot::hex(km.master.read().as_bytes());
    assert!(!text.contains(&hex), "{text}");
    assert!(!text.contains(&format!("{:?}", km.master.read().as_bytes())), "{text}");
}

#[test]
fn header_round_trip_and_tamper() {
    let km = KeyManager::ephemeral();
    let (hdr, c) = km.new_file(FileKind::Sst, 42, "000042.sst");
    let sealed = c.seal(FILE_HEADER_LEN as u64, BlockKind::SstData, b"data");
    let c2 = km.open_file(&hdr, FileKind::Sst, 42, "000042.sst").unwrap();
    assert_eq!(c2.open(FILE_HEADER_LEN as u64, BlockKind::SstData, &sealed).unwrap(), b"data");
    assert!(km.open_file(&hdr, FileKind::Wal, 42, "x").is_err());
    for i in 0..FILE_HEADER_LEN {
        let mut bad = hdr;
        bad[i] ^= 0x10;
        assert!(km.open_file(&bad, FileKind::Sst, 42, "000042.sst").is_err(), "flip at {i} undetected");
    }
    let other = KeyManager::ephemeral();
    assert!(other.open_file(&hdr, FileKind::Sst, 42, "000042.sst").is_err());
}

/// An authentic header of this store opened under another file's number (an old
/// segment copied over the live one's name) is refused, naming the file.
#[test]
fn header_of_another_file_number_is_refused() {
    let km = KeyManager::ephemeral();
    let (hdr, _) = km.new_file(FileKind::Wal, 5, "000005.wal");
    match km.open_file(&hdr, FileKind::Wal, 9, "000009.wal") {
        Err(Error::Corruption { file, offset, reason }) => {
            assert_eq!((file.as_str(), offset), ("000009.wal", 16));
            assert!(reason.contains("names file 5"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    km.open_file(&hdr, FileKind::Wal, 5, "000005.wal").unwrap();
}

/// A crash at any sync of `create` leaves either no store (and `create` works again)
/// or a complete one that unlocks: never a `KEYSLOTS` without its `KEYRING`.
#[test]
fn crash_during_create_leaves_no_store_or_a_whole_one() {
    let mut outcomes = Vec::new();
    for failing_sync in 0..5 {
        let (sim, vfs, dir) = sim();
        sim.fail_sync_after(failing_sync);
        let created = KeyManager::create(&vfs, &dir, &pass("p"), &TINY);
        sim.crash();
        sim.clear_faults();
        if vfs.exists(&dir.join(KEYSLOTS_FILE)) {
            let unlocked = KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap();
            if let Ok(created) = created {
                assert_eq!(created.store_id(), unlocked.store_id());
            }
            outcomes.push("store");
        } else {
            assert!(created.is_err(), "create reported success for a store that did not survive");
            KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
            KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap();
            outcomes.push("none");
        }
    }
    // Four syncs in a create: failing any of them loses the store; past them it survives.
    assert_eq!(outcomes, vec!["none", "none", "none", "none", "store"]);
}

#[test]
fn oversized_key_files_are_refused_before_reading() {
    let (sim, vfs, dir) = sim();
    KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    for (name, max) in [(KEYSLOTS_FILE, MAX_KEYSLOTS_FILE_LEN), (KEYRING_FILE, MAX_KEYRING_FILE_LEN)] {
        let path = dir.join(name);
        let original = sim.read_live(&path).unwrap();
        let mut huge = original.clone();
        huge.resize(max + 1, 0);
        write_file_atomic(&*vfs, &dir, name, &huge).unwrap();
        let err = KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap_err();
        match &err {
            Error::Corruption { file, reason, .. } => {
                assert_eq!(file, name);
                assert!(reason.contains("longer than any valid"), "{reason}");
            }
            other => panic!("{name}: expected corruption, got {other:?}"),
        }
        write_file_atomic(&*vfs, &dir, name, &original).unwrap();
        KeyManager::unlock(&vfs, &dir, &pass("p")).unwrap();
    }
}
