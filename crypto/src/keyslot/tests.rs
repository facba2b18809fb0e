//! Tests of the `KEYSLOTS` format: round trips, wrong credentials, and damage of
//! every kind being reported as corruption of the file.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::codec::append_crc;

const TINY: Argon2Params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
const STORE: [u8; 16] = *b"store-id-0123456";

fn passphrase_file(master: &MasterKey, pass: &str) -> KeyslotFile {
    KeyslotFile::create(master, STORE, &Credential::passphrase(pass), &TINY).unwrap()
}

/// Recomputes the trailing crc after a deliberate edit, so only the deeper checks can catch it.
fn recrc(bytes: &mut Vec<u8>) {
    bytes.truncate(bytes.len() - CRC_LEN);
    append_crc(bytes);
}

fn assert_corruption(result: Result<impl fmt::Debug>, what: &str) -> String {
    match result {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, "KEYSLOTS", "{what}");
            reason
        }
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
}

#[test]
fn passphrase_slot_round_trip() {
    let master = MasterKey::random();
    let file = passphrase_file(&master, "correct horse");
    let bytes = file.encode();
    assert_eq!(bytes.len(), KEYSLOTS_HEADER_LEN + SLOT_FRAME_LEN + PASSPHRASE_BODY_LEN + CRC_LEN);
    assert_eq!(&bytes[..8], b"SYNKSLOT");
    let decoded = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    assert_eq!(decoded.store_id(), STORE);
    assert_eq!(decoded.encode(), bytes, "decode then encode must reproduce the file");
    assert_eq!(decoded.unlock(&Credential::passphrase("correct horse")).unwrap(), master);
    let info = decoded.slots();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].kind, Some(SlotKind::Passphrase));
    assert_eq!(info[0].argon2, Some(TINY));
    // The master key never appears in the file.
    assert!(!bytes.windows(32).any(|w| w == master.as_bytes()));
}

#[test]
fn raw_key_slot_round_trip() {
    let master = MasterKey::random();
    let raw = [7u8; 32];
    let file = KeyslotFile::create(&master, STORE, &Credential::raw_key(raw), &TINY).unwrap();
    let bytes = file.encode();
    assert_eq!(bytes.len(), KEYSLOTS_HEADER_LEN + SLOT_FRAME_LEN + RAW_KEY_BODY_LEN + CRC_LEN);
    let decoded = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    assert_eq!(decoded.unlock(&Credential::raw_key(raw)).unwrap(), master);
    assert_eq!(decoded.slots()[0].kind, Some(SlotKind::RawKey));
    assert_eq!(decoded.slots()[0].argon2, None);
}

#[test]
fn wrong_passphrase_and_wrong_raw_key_are_wrong_key() {
    let master = MasterKey::random();
    let mut file = passphrase_file(&master, "right");
    file.add_slot(&master, &Credential::raw_key([1; 32]), &TINY).unwrap();
    let file = KeyslotFile::decode(&file.encode(), "KEYSLOTS").unwrap();
    assert!(matches!(file.unlock(&Credential::passphrase("wrong")), Err(Error::WrongKey)));
    assert!(matches!(file.unlock(&Credential::passphrase("righ")), Err(Error::WrongKey)));
    assert!(matches!(file.unlock(&Credential::raw_key([2; 32])), Err(Error::WrongKey)));
    // Both right credentials still open it.
    assert_eq!(file.unlock(&Credential::passphrase("right")).unwrap(), master);
    assert_eq!(file.unlock(&Credential::raw_key([1; 32])).unwrap(), master);
    // A raw key never opens a passphrase-only file, even one made of the passphrase bytes.
    let only_pass = passphrase_file(&master, "right");
    assert!(matches!(only_pass.unlock(&Credential::raw_key([1; 32])), Err(Error::WrongKey)));
}

#[test]
fn empty_passphrase_is_invalid_argument() {
    let master = MasterKey::random();
    assert!(matches!(
        KeyslotFile::create(&master, STORE, &Credential::passphrase(""), &TINY),
        Err(Error::InvalidArgument(_))
    ));
    let file = passphrase_file(&master, "x");
    assert!(matches!(file.unlock(&Credential::passphrase("")), Err(Error::InvalidArgument(_))));
}

#[test]
fn out_of_range_argon2_params_are_refused_on_create() {
    let master = MasterKey::random();
    let bad = [
        Argon2Params { m_cost_kib: 64, t_cost: 0, p_cost: 1 },
        Argon2Params { m_cost_kib: 64, t_cost: 33, p_cost: 1 },
        Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 0 },
        Argon2Params { m_cost_kib: 1024, t_cost: 1, p_cost: 17 },
        Argon2Params { m_cost_kib: 1024 * 1024 + 1, t_cost: 1, p_cost: 1 },
        Argon2Params { m_cost_kib: 4 * 1024 * 1024, t_cost: 1, p_cost: 1 },
        Argon2Params { m_cost_kib: 8, t_cost: 1, p_cost: 2 },
    ];
    for p in bad {
        let r = KeyslotFile::create(&master, STORE, &Credential::passphrase("p"), &p);
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{p:?} accepted");
    }
    // The limits themselves are accepted by validation.
    assert!(Argon2Params { m_cost_kib: 1024 * 1024, t_cost: 32, p_cost: 16 }.validate().is_ok());
}

/// A file with a passphrase slot, a raw-key slot and a slot of an unknown kind.
fn three_slot_file(master: &MasterKey) -> Vec<u8> {
    let mut file = passphrase_file(master, "pass");
    file.add_slot(master, &Credential::raw_key([9; 32]), &TINY).unwrap();
    file.push_raw_slot(200, vec![0xAB; 40]);
    file.encode()
}

#[test]
fn every_flipped_byte_is_corruption() {
    let master = MasterKey::random();
    let bytes = three_slot_file(&master);
    for i in 0..bytes.len() {
        for xor in [0x01u8, 0x80, 0xFF] {
            let mut bad = bytes.clone();
            bad[i] ^= xor;
            assert_corruption(KeyslotFile::decode(&bad, "KEYSLOTS"), &format!("byte {i} ^ {xor:#x}"));
        }
    }
}

#[test]
fn truncated_or_extended_file_is_corruption() {
    let master = MasterKey::random();
    let bytes = three_slot_file(&master);
    for len in 0..bytes.len() {
        assert_corruption(KeyslotFile::decode(&bytes[..len], "KEYSLOTS"), &format!("truncated to {len}"));
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_corruption(KeyslotFile::decode(&longer, "KEYSLOTS"), "one byte appended");
}

#[test]
fn unknown_slot_kinds_are_kept_and_skipped() {
    let master = MasterKey::random();
    let bytes = three_slot_file(&master);
    let file = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    let info = file.slots();
    assert_eq!(info.iter().map(|s| s.kind_code).collect::<Vec<_>>(), vec![1, 2, 200]);
    assert_eq!(info[2].kind, None);
    assert_eq!(file.encode(), bytes, "the unknown slot must survive a rewrite byte for byte");
    assert_eq!(file.unlock(&Credential::raw_key([9; 32])).unwrap(), master);
}

#[test]
fn newer_version_is_unsupported_not_corruption() {
    let master = MasterKey::random();
    let mut bytes = passphrase_file(&master, "p").encode();
    bytes[8] = KEYSLOTS_SEALED_VERSION + 1;
    recrc(&mut bytes);
    assert!(matches!(
        KeyslotFile::decode(&bytes, "KEYSLOTS"),
        Err(Error::UnsupportedVersion { found, .. }) if found == KEYSLOTS_SEALED_VERSION + 1
    ));
}

/// Offset of the first slot's body.
const BODY: usize = KEYSLOTS_HEADER_LEN + SLOT_FRAME_LEN;

#[test]
fn absurd_argon2_params_from_disk_are_corruption_before_argon2_runs() {
    let master = MasterKey::random();
    let good = passphrase_file(&master, "p").encode();
    // (field offset in the body, value): 4 GiB of memory (which once aborted the
    // process in Argon2's allocation), 5 GiB, 1000 iterations, 1000 lanes, zero iterations.
    for (field, value) in [(0usize, 4u32 * 1024 * 1024), (0, 5 * 1024 * 1024), (4, 1000), (8, 1000), (4, 0)] {
        let mut bad = good.clone();
        bad[BODY + field..BODY + field + 4].copy_from_slice(&value.to_le_bytes());
        recrc(&mut bad);
        let reason = assert_corruption(KeyslotFile::decode(&bad, "KEYSLOTS"), &format!("field {field} = {value}"));
        assert!(reason.contains("Argon2"), "{reason}");
    }
}

#[test]
fn changed_params_or_store_id_do_not_unlock() {
    let master = MasterKey::random();
    let good = passphrase_file(&master, "p").encode();
    let pass = Credential::passphrase("p");
    // Raising the iteration count with a valid crc: the AAD no longer matches.
    let mut bad = good.clone();
    bad[BODY + 4..BODY + 8].copy_from_slice(&2u32.to_le_bytes());
    recrc(&mut bad);
    let file = KeyslotFile::decode(&bad, "KEYSLOTS").unwrap();
    assert!(matches!(file.unlock(&pass), Err(Error::WrongKey)));
    // A changed salt.
    let mut bad = good.clone();
    bad[BODY + 12] ^= 1;
    recrc(&mut bad);
    assert!(matches!(KeyslotFile::decode(&bad, "KEYSLOTS").unwrap().unlock(&pass), Err(Error::WrongKey)));
    // The same slot claimed by another store id.
    let mut bad = good.clone();
    bad[9] ^= 1;
    recrc(&mut bad);
    assert!(matches!(KeyslotFile::decode(&bad, "KEYSLOTS").unwrap().unlock(&pass), Err(Error::WrongKey)));
}

#[test]
fn slot_moved_to_another_store_does_not_open() {
    let master_a = MasterKey::random();
    let master_b = MasterKey::random();
    let a = passphrase_file(&master_a, "shared");
    let mut b = KeyslotFile::create(&master_b, *b"another-store-id", &Credential::passphrase("other"), &TINY).unwrap();
    // B gets A's slot (and A's key-check value, so only the AAD can stop it).
    b.slots = a.slots.clone();
    b.kcv = a.kcv;
    let b = KeyslotFile::decode(&b.encode(), "KEYSLOTS").unwrap();
    assert!(matches!(b.unlock(&Credential::passphrase("shared")), Err(Error::WrongKey)));
}

#[test]
fn slot_wrapping_another_key_fails_the_key_check() {
    let master = MasterKey::random();
    let other = MasterKey::random();
    // Same store id, same credential, but wrapping another key than the KCV vouches for.
    let mut file = passphrase_file(&master, "p");
    file.slots = passphrase_file(&other, "p").slots;
    let file = KeyslotFile::decode(&file.encode(), "KEYSLOTS").unwrap();
    let reason = assert_corruption(file.unlock(&Credential::passphrase("p")), "kcv mismatch");
    assert!(reason.contains("key-check"), "{reason}");
    assert!(!file.matches(&other));
    assert!(file.matches(&master));
}

#[test]
fn passphrase_change_adds_then_removes_a_slot() {
    let master = MasterKey::random();
    let mut file = passphrase_file(&master, "old");
    let new_index = file.add_slot(&master, &Credential::passphrase("new"), &TINY).unwrap();
    assert_eq!(new_index, 1);
    let old_index = file.find_slot(&Credential::passphrase("old")).unwrap();
    assert_eq!(old_index, 0);
    let removed = file.remove_slot(old_index).unwrap();
    assert_eq!(removed.kind, Some(SlotKind::Passphrase));
    let file = KeyslotFile::decode(&file.encode(), "KEYSLOTS").unwrap();
    assert!(matches!(file.unlock(&Credential::passphrase("old")), Err(Error::WrongKey)));
    assert_eq!(file.unlock(&Credential::passphrase("new")).unwrap(), master);
    assert_eq!(file.find_slot(&Credential::passphrase("new")).unwrap(), 0);
}

#[test]
fn slot_management_limits() {
    let master = MasterKey::random();
    let mut file = passphrase_file(&master, "p");
    // The last usable slot stays, even with an unknown-kind slot next to it.
    file.push_raw_slot(200, vec![1, 2, 3]);
    assert!(matches!(file.remove_slot(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(file.remove_slot(7), Err(Error::InvalidArgument(_))));
    // Only this store's master key may be wrapped into a new slot.
    assert!(matches!(
        file.add_slot(&MasterKey::random(), &Credential::raw_key([1; 32]), &TINY),
        Err(Error::InvalidArgument(_))
    ));
    for i in file.slots.len()..MAX_SLOTS {
        file.add_slot(&master, &Credential::raw_key([i as u8; 32]), &TINY).unwrap();
    }
    assert_eq!(file.slots().len(), MAX_SLOTS);
    assert!(matches!(file.add_slot(&master, &Credential::raw_key([0xEE; 32]), &TINY), Err(Error::InvalidArgument(_))));
    let bytes = file.encode();
    let decoded = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    assert_eq!(decoded.slots().len(), MAX_SLOTS);
    assert_eq!(decoded.unlock(&Credential::raw_key([(MAX_SLOTS - 1) as u8; 32])).unwrap(), master);
    // A count above the limit (with a valid crc) is corruption.
    let mut bad = bytes;
    bad[KEYSLOTS_COUNT_OFFSET] = (MAX_SLOTS + 1) as u8;
    recrc(&mut bad);
    assert_corruption(KeyslotFile::decode(&bad, "KEYSLOTS"), "17 slots");
}

#[test]
fn debug_output_holds_no_key_material() {
    let master = MasterKey::random();
    let file = passphrase_file(&master, "hunter2");
    let text = format!("{file:?} {:?} {master:?}", Credential::passphrase("hunter2"));
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains(&hex(master.as_bytes())), "{text}");
    assert!(!text.contains(&hex(&file.kcv)), "{text}");
}

#[test]
fn default_params_unlock_timing() {
    let master = MasterKey::random();
    let params = Argon2Params::default();
    let file = KeyslotFile::create(&master, STORE, &Credential::passphrase("a passphrase"), &params).unwrap();
    let file = KeyslotFile::decode(&file.encode(), "KEYSLOTS").unwrap();
    assert_eq!(file.slots()[0].argon2, Some(params));
    let start = std::time::Instant::now();
    assert_eq!(file.unlock(&Credential::passphrase("a passphrase")).unwrap(), master);
    let elapsed = start.elapsed();
    println!(
        "unlock with default Argon2id params (m={} KiB, t={}, p={}): {elapsed:?} (debug_assertions: {})",
        params.m_cost_kib,
        params.t_cost,
        params.p_cost,
        cfg!(debug_assertions)
    );
}
