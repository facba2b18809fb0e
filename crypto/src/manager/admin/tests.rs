//! Tests of key changes on a store: recovery keys at creation, passphrase change,
//! device keyslots, key rotation and epoch destruction, including crashes at every
//! sync of the key-file writes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]


use super::*;
use crate::manager::KEYRING_FILE;
use crate::envelope::BlockKind;
use crate::format::FILE_HEADER_LEN;
use crate::header::FileKind;
use crate::hybrid::{HybridKeypair, HybridSecretKey};
use crate::vfs::StdVfs;

use crate::manager::test_support::{pass, sim, TINY};

fn unlock(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential) -> Result<Arc<KeyManager>> {
    KeyManager::unlock(vfs, dir, credential)
}

#[test]
fn store_created_with_recovery_key_unlocks_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
    let dir = tmp.path().join("db");
    let (created, recovery) = KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let (hdr, cipher) = created.new_file(FileKind::Sst, 3, "000003.sst");
    let sealed = cipher.seal(FILE_HEADER_LEN as u64, BlockKind::SstData, b"block");
    // What a person wrote down, typed back in lower case with spaces.
    let typed = recovery.to_text().to_lowercase().replace('-', " ");
    let from_text = RecoveryKey::from_text(&typed).unwrap();
    let by_recovery = unlock(&vfs, &dir, &Credential::Recovery(from_text)).unwrap();
    assert_eq!(by_recovery.store_id(), created.store_id());
    let reopened = by_recovery.open_file(&hdr, FileKind::Sst, 3, "000003.sst").unwrap();
    assert_eq!(reopened.open(FILE_HEADER_LEN as u64, BlockKind::SstData, &sealed).unwrap(), b"block");
    unlock(&vfs, &dir, &pass("p")).unwrap();
    assert!(matches!(unlock(&vfs, &dir, &Credential::Recovery(RecoveryKey::generate())), Err(Error::WrongKey)));
    let slots = KeyManager::keyslots(&vfs, &dir).unwrap();
    assert_eq!(slots.iter().filter(|s| s.recovery).count(), 1);
    // Neither the recovery secret nor its text form is anywhere on disk.
    for name in vfs.list_dir(&dir).unwrap() {
        let bytes = vfs.read_all(&dir.join(&name)).unwrap();
        assert!(!bytes.windows(32).any(|w| w == recovery.as_bytes()), "{name}");
        let text = recovery.to_text();
        assert!(!bytes.windows(text.len()).any(|w| w == text.as_bytes()), "{name}");
    }
    // A store made without one has no recovery slot, and a recovery key does not open it.
    let plain_dir = tmp.path().join("plain");
    KeyManager::create(&vfs, &plain_dir, &pass("p"), &TINY).unwrap();
    assert!(KeyManager::keyslots(&vfs, &plain_dir).unwrap().iter().all(|s| !s.recovery));
    assert!(matches!(unlock(&vfs, &plain_dir, &Credential::Recovery(recovery)), Err(Error::WrongKey)));
}

#[test]
fn create_with_recovery_refuses_an_existing_store_and_bad_arguments() {
    let (sim, vfs, dir) = sim();
    assert!(matches!(
        KeyManager::create_with_recovery(&vfs, &dir, &pass(""), &TINY),
        Err(Error::InvalidArgument(_))
    ));
    assert!(sim.list_files().is_empty());
    KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY).unwrap();
    assert!(matches!(
        KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY),
        Err(Error::AlreadyExists(_))
    ));
}

#[test]
fn change_passphrase_replaces_the_old_one_at_once() {
    let (_, vfs, dir) = sim();
    let (created, recovery) = KeyManager::create_with_recovery(&vfs, &dir, &pass("old"), &TINY).unwrap();
    KeyManager::change_passphrase(&vfs, &dir, &pass("old"), b"new", &TINY).unwrap();
    assert!(matches!(unlock(&vfs, &dir, &pass("old")), Err(Error::WrongKey)));
    let unlocked = unlock(&vfs, &dir, &pass("new")).unwrap();
    assert_eq!(unlocked.store_id(), created.store_id());
    // The recovery slot was kept; there is still exactly one passphrase slot.
    unlock(&vfs, &dir, &Credential::Recovery(recovery.clone())).unwrap();
    let slots = KeyManager::keyslots(&vfs, &dir).unwrap();
    assert_eq!(slots.iter().filter(|s| s.kind == Some(SlotKind::Passphrase)).count(), 1);
    assert_eq!(slots.len(), 2);
    // The old passphrase cannot authorize a change any more; an empty new one is refused.
    assert!(matches!(KeyManager::change_passphrase(&vfs, &dir, &pass("old"), b"x", &TINY), Err(Error::WrongKey)));
    assert!(matches!(
        KeyManager::change_passphrase(&vfs, &dir, &pass("new"), b"", &TINY),
        Err(Error::InvalidArgument(_))
    ));
    unlock(&vfs, &dir, &pass("new")).unwrap();
    assert_eq!(vfs.list_dir(&dir).unwrap(), vec![KEYRING_FILE.to_string(), KEYSLOTS_FILE.to_string()]);
}

#[test]
fn forgotten_passphrase_is_reset_with_the_recovery_key() {
    let (_, vfs, dir) = sim();
    let (created, recovery) = KeyManager::create_with_recovery(&vfs, &dir, &pass("first"), &TINY).unwrap();
    created.add_credential(&vfs, &dir, &pass("second"), &TINY).unwrap();
    KeyManager::change_passphrase(&vfs, &dir, &Credential::Recovery(recovery.clone()), b"reset", &TINY).unwrap();
    // Every earlier passphrase is gone; the recovery key still works.
    assert!(matches!(unlock(&vfs, &dir, &pass("first")), Err(Error::WrongKey)));
    assert!(matches!(unlock(&vfs, &dir, &pass("second")), Err(Error::WrongKey)));
    unlock(&vfs, &dir, &pass("reset")).unwrap();
    unlock(&vfs, &dir, &Credential::Recovery(recovery)).unwrap();
}

#[test]
fn change_passphrase_survives_a_crash_at_every_sync() {
    let mut outcomes = Vec::new();
    for failing_sync in 0..3 {
        let (sim, vfs, dir) = sim();
        KeyManager::create(&vfs, &dir, &pass("old"), &TINY).unwrap();
        sim.fail_sync_after(failing_sync);
        let changed = KeyManager::change_passphrase(&vfs, &dir, &pass("old"), b"new", &TINY);
        sim.crash();
        sim.clear_faults();
        // Exactly one of the two passphrases works: never both, never neither.
        let old = unlock(&vfs, &dir, &pass("old")).is_ok();
        let new = unlock(&vfs, &dir, &pass("new")).is_ok();
        assert!(old != new, "sync {failing_sync}: old {old}, new {new}");
        if changed.is_ok() {
            assert!(new, "a change reported done must survive the crash");
        }
        outcomes.push(if new { "new" } else { "old" });
    }
    assert_eq!(outcomes, vec!["old", "old", "new"]);
}

#[test]
fn device_keyslots_are_added_and_removed() {
    let (_, vfs, dir) = sim();
    let created = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let laptop = HybridKeypair::generate();
    let phone = HybridKeypair::generate();
    let laptop_slot = created.add_keyslot(&vfs, &dir, laptop.public_key()).unwrap();
    let phone_slot = created.add_keyslot(&vfs, &dir, phone.public_key()).unwrap();
    assert_eq!((laptop_slot, phone_slot), (1, 2));
    let slots = KeyManager::keyslots(&vfs, &dir).unwrap();
    assert_eq!(slots[1].fingerprint, Some(laptop.public_key().fingerprint()));
    // A device keeps its secret key encoded, e.g. in an OS keystore.
    let stored = laptop.secret_key().encode();
    let laptop_key = HybridSecretKey::decode(&stored).unwrap();
    let by_laptop = unlock(&vfs, &dir, &Credential::hybrid(laptop_key.clone())).unwrap();
    assert_eq!(by_laptop.store_id(), created.store_id());
    unlock(&vfs, &dir, &Credential::hybrid(phone.secret_key().clone())).unwrap();
    // The laptop is lost: its slot goes, the others stay.
    let removed = created.remove_keyslot(&vfs, &dir, laptop_slot).unwrap();
    assert_eq!(removed.fingerprint, Some(laptop.public_key().fingerprint()));
    assert!(matches!(unlock(&vfs, &dir, &Credential::hybrid(laptop_key)), Err(Error::WrongKey)));
    unlock(&vfs, &dir, &Credential::hybrid(phone.secret_key().clone())).unwrap();
    unlock(&vfs, &dir, &pass("p")).unwrap();
    // The last usable slot cannot be removed.
    created.remove_keyslot(&vfs, &dir, 1).unwrap();
    assert!(matches!(created.remove_keyslot(&vfs, &dir, 0), Err(Error::InvalidArgument(_))));
    unlock(&vfs, &dir, &pass("p")).unwrap();
}

#[test]
fn replacing_the_recovery_key_retires_the_old_one() {
    let (_, vfs, dir) = sim();
    let (created, old) = KeyManager::create_with_recovery(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let new = created.replace_recovery_key(&vfs, &dir).unwrap();
    assert_ne!(new, old);
    assert!(matches!(unlock(&vfs, &dir, &Credential::Recovery(old)), Err(Error::WrongKey)));
    unlock(&vfs, &dir, &Credential::Recovery(new.clone())).unwrap();
    assert_eq!(KeyManager::keyslots(&vfs, &dir).unwrap().iter().filter(|s| s.recovery).count(), 1);
    // A store made without a recovery key gets one the same way.
    let (_, vfs2, dir2) = sim();
    let plain = KeyManager::create(&vfs2, &dir2, &pass("p"), &TINY).unwrap();
    let added = plain.replace_recovery_key(&vfs2, &dir2).unwrap();
    unlock(&vfs2, &dir2, &Credential::Recovery(added)).unwrap();
}

#[test]
fn key_changes_refuse_another_stores_directory() {
    let (_, vfs, dir) = sim();
    let a = KeyManager::create(&vfs, &dir.join("a"), &pass("p"), &TINY).unwrap();
    KeyManager::create(&vfs, &dir.join("b"), &pass("p"), &TINY).unwrap();
    let b_keyring = vfs.read_all(&dir.join("b").join(KEYRING_FILE)).unwrap();
    let pair = HybridKeypair::generate();
    for err in [
        a.add_keyslot(&vfs, &dir.join("b"), pair.public_key()).map(|_| ()).unwrap_err(),
        a.rotate(&vfs, &dir.join("b")).map(|_| ()).unwrap_err(),
    ] {
        assert!(matches!(&err, Error::Corruption { file, .. } if file == KEYSLOTS_FILE), "{err:?}");
    }
    assert_eq!(vfs.read_all(&dir.join("b").join(KEYRING_FILE)).unwrap(), b_keyring, "b's keyring was rewritten");
    assert_eq!(a.epochs(), vec![1]);
    assert!(matches!(a.rotate(&vfs, &dir.join("none")), Err(Error::NotFound(_))));
}

#[test]
fn rotation_adds_a_current_epoch_and_persists_it() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let (old_hdr, old_cipher) = keys.new_file(FileKind::Wal, 1, "000001.wal");
    let old_block = old_cipher.seal(FILE_HEADER_LEN as u64, BlockKind::WalRecord, b"before");
    assert_eq!(KeyManager::epoch_of(&old_hdr, "000001.wal").unwrap(), 1);

    assert_eq!(keys.rotate(&vfs, &dir).unwrap(), 2);
    assert_eq!(keys.current_epoch(), 2);
    assert_eq!(keys.epochs(), vec![1, 2]);
    let (new_hdr, new_cipher) = keys.new_file(FileKind::Wal, 2, "000002.wal");
    let new_block = new_cipher.seal(FILE_HEADER_LEN as u64, BlockKind::WalRecord, b"after");
    assert_eq!(KeyManager::epoch_of(&new_hdr, "000002.wal").unwrap(), 2);

    // After a reopen both files are readable and new files go under epoch 2.
    let reopened = unlock(&vfs, &dir, &pass("p")).unwrap();
    assert_eq!(reopened.epochs(), vec![1, 2]);
    assert_eq!(reopened.current_epoch(), 2);
    let c = reopened.open_file(&old_hdr, FileKind::Wal, 1, "000001.wal").unwrap();
    assert_eq!(c.open(FILE_HEADER_LEN as u64, BlockKind::WalRecord, &old_block).unwrap(), b"before");
    let c = reopened.open_file(&new_hdr, FileKind::Wal, 2, "000002.wal").unwrap();
    assert_eq!(c.open(FILE_HEADER_LEN as u64, BlockKind::WalRecord, &new_block).unwrap(), b"after");
    assert_eq!(reopened.rotate(&vfs, &dir).unwrap(), 3);
    assert_eq!(keys.epochs(), vec![1, 2], "another manager's view changes only on its own rotation");
}

#[test]
fn destroyed_epoch_makes_its_files_unreadable() {
    let (_, vfs, dir) = sim();
    let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let (old_hdr, _) = keys.new_file(FileKind::Sst, 5, "000005.sst");
    keys.rotate(&vfs, &dir).unwrap();
    let (new_hdr, _) = keys.new_file(FileKind::Sst, 6, "000006.sst");
    // The current epoch cannot go; an absent one is a no-op.
    assert!(matches!(keys.destroy_epoch(&vfs, &dir, 2), Err(Error::InvalidArgument(_))));
    assert!(!keys.destroy_epoch(&vfs, &dir, 7).unwrap());
    assert!(keys.destroy_epoch(&vfs, &dir, 1).unwrap());
    assert_eq!(keys.epochs(), vec![2]);
    for manager in [keys.clone(), unlock(&vfs, &dir, &pass("p")).unwrap()] {
        match manager.open_file(&old_hdr, FileKind::Sst, 5, "000005.sst") {
            Err(Error::MissingEpoch { file, epoch }) => assert_eq!((file.as_str(), epoch), ("000005.sst", 1)),
            other => panic!("expected MissingEpoch, got {other:?}"),
        }
        manager.open_file(&new_hdr, FileKind::Sst, 6, "000006.sst").unwrap();
        assert_eq!(manager.epochs(), vec![2]);
    }
    assert!(!keys.destroy_epoch(&vfs, &dir, 1).unwrap());
    // Epoch numbers are never reused after a destruction.
    assert_eq!(keys.rotate(&vfs, &dir).unwrap(), 3);
}

#[test]
fn rotation_survives_a_crash_at_every_sync() {
    let mut outcomes = Vec::new();
    // Three key-file writes (KEYSLOTS, KEYRING, KEYSLOTS), each with three syncs
    // (the new file, the directory, the overwrite of the old file), then one more
    // run in which nothing fails.
    for failing_sync in 0..10 {
        let (sim, vfs, dir) = sim();
        let keys = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
        sim.fail_sync_after(failing_sync);
        let rotated = keys.rotate(&vfs, &dir);
        if rotated.is_err() && failing_sync < 5 {
            // A rotation that failed before its KEYRING was in place leaves the
            // manager on the old epoch; one that failed after adopts the new one.
            assert_eq!((keys.current_epoch(), keys.epochs()), (1, vec![1]));
        }
        if failing_sync >= 5 {
            assert_eq!(keys.current_epoch(), 2, "the manager follows a KEYRING that is in place");
        }
        sim.crash();
        sim.clear_faults();
        let reopened = unlock(&vfs, &dir, &pass("p")).unwrap();
        if rotated.is_ok() {
            assert_eq!(reopened.current_epoch(), 2, "a rotation reported done must survive the crash");
        }
        outcomes.push(reopened.current_epoch());
    }
    // The rotation is durable once the new KEYRING's directory sync (the fifth) succeeds.
    assert_eq!(outcomes, vec![1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
}

#[test]
fn epoch_of_reads_only_the_header() {
    let keys = KeyManager::ephemeral();
    let (hdr, _) = keys.new_file(FileKind::Blob, 9, "000009.blob");
    assert_eq!(KeyManager::epoch_of(&hdr, "000009.blob").unwrap(), 1);
    // Any manager, even one without the key, can tell the epoch.
    let mut bad = hdr;
    bad[0] ^= 1;
    match KeyManager::epoch_of(&bad, "000009.blob") {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, "000009.blob"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(KeyManager::epoch_of(&hdr[..10], "x"), Err(Error::Corruption { .. })));
}

/// A manager whose keyring copy is stale never reuses an epoch number with a new key:
/// every change starts from the durable `KEYRING`.
#[test]
fn two_managers_of_one_store_do_not_undo_each_other() {
    let (_, vfs, dir) = sim();
    let a = KeyManager::create(&vfs, &dir, &pass("p"), &TINY).unwrap();
    let b = unlock(&vfs, &dir, &pass("p")).unwrap();
    assert_eq!(a.rotate(&vfs, &dir).unwrap(), 2);
    let (hdr_a, _) = a.new_file(FileKind::Sst, 1, "000001.sst");
    // b still believes epoch 1 is current; its rotation adopts epoch 2 and adds 3.
    assert_eq!(b.rotate(&vfs, &dir).unwrap(), 3);
    assert_eq!(b.epochs(), vec![1, 2, 3]);
    b.open_file(&hdr_a, FileKind::Sst, 1, "000001.sst").unwrap();
    let fresh = unlock(&vfs, &dir, &pass("p")).unwrap();
    assert_eq!((fresh.current_epoch(), fresh.epochs()), (3, vec![1, 2, 3]));
    fresh.open_file(&hdr_a, FileKind::Sst, 1, "000001.sst").unwrap();
    // a destroys epoch 1; b, asked to destroy it too, finds it gone and adopts that.
    assert!(a.destroy_epoch(&vfs, &dir, 1).unwrap());
    assert!(!b.destroy_epoch(&vfs, &dir, 1).unwrap());
    assert_eq!(b.epochs(), vec![2, 3]);
}

/// A passphrase change keeps the replaced slot's Argon2 cost when a lower one is
/// asked (a 256 MiB/t=4 slot once became 19 MiB/t=2), and takes a higher one.
#[test]
fn a_new_passphrase_slot_never_costs_less_than_the_old_one() {
    let (_, vfs, dir) = sim();
    let dear = Argon2Params { m_cost_kib: 256, t_cost: 4, p_cost: 1 };
    KeyManager::create(&vfs, &dir, &pass("old"), &dear).unwrap();
    KeyManager::change_passphrase(&vfs, &dir, &pass("old"), b"new", &TINY).unwrap();
    let slots = KeyManager::keyslots(&vfs, &dir).unwrap();
    assert_eq!(slots.iter().filter_map(|s| s.argon2).collect::<Vec<_>>(), vec![dear]);
    // Each parameter is the larger of the asked and the old one.
    let asked = Argon2Params { m_cost_kib: 512, t_cost: 2, p_cost: 2 };
    KeyManager::change_passphrase(&vfs, &dir, &pass("new"), b"newer", &asked).unwrap();
    let slots = KeyManager::keyslots(&vfs, &dir).unwrap();
    assert_eq!(
        slots.iter().filter_map(|s| s.argon2).collect::<Vec<_>>(),
        vec![Argon2Params { m_cost_kib: 512, t_cost: 4, p_cost: 2 }]
    );
    unlock(&vfs, &dir, &pass("newer")).unwrap();
}
