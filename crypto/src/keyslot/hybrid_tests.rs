//! Tests of hybrid keyslots (kind 3): device and recovery slots round trip, open
//! only for their own key, and a slot altered anywhere is refused with a clear error.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::codec::append_crc;
use crate::format::{HYBRID_DEVICE_BODY_LEN, HYBRID_RECOVERY_BODY_LEN, HYBRID_SLOT_PREFIX_LEN};
use crate::hybrid::HybridKeypair;
use crate::recovery::RecoveryKey;

const TINY: Argon2Params = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
const STORE: [u8; 16] = *b"store-id-0123456";

fn recrc(bytes: &mut Vec<u8>) {
    bytes.truncate(bytes.len() - CRC_LEN);
    append_crc(bytes);
}

/// A passphrase slot (0), then a device slot (1), then a recovery slot (2).
fn hybrid_file(master: &MasterKey, device: &HybridKeypair, recovery: &RecoveryKey) -> KeyslotFile {
    let mut file = KeyslotFile::create(master, STORE, &Credential::passphrase("p"), &TINY).unwrap();
    assert_eq!(file.add_hybrid_slot(master, device.public_key()).unwrap(), 1);
    assert_eq!(file.add_slot(master, &Credential::Recovery(recovery.clone()), &TINY).unwrap(), 2);
    file
}

fn device(pair: &HybridKeypair) -> Credential {
    Credential::Hybrid(pair.secret_key().clone())
}

/// Offset of slot `index`'s body in the encoded file.
fn body_offset(file: &KeyslotFile, index: usize) -> usize {
    file.slot_offset(index) as usize + SLOT_FRAME_LEN
}

#[test]
fn device_and_recovery_slots_round_trip() {
    let master = MasterKey::random();
    let pair = HybridKeypair::generate();
    let recovery = RecoveryKey::generate();
    let file = hybrid_file(&master, &pair, &recovery);
    let bytes = file.encode();
    assert_eq!(
        bytes.len(),
        KEYSLOTS_HEADER_LEN
            + 3 * SLOT_FRAME_LEN
            + PASSPHRASE_BODY_LEN
            + HYBRID_DEVICE_BODY_LEN
            + HYBRID_RECOVERY_BODY_LEN
            + CRC_LEN
    );
    let decoded = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    assert_eq!(decoded.encode(), bytes);
    assert_eq!(decoded.unlock(&device(&pair)).unwrap(), master);
    assert_eq!(decoded.find_slot(&device(&pair)).unwrap(), 1);
    assert_eq!(decoded.unlock(&Credential::Recovery(recovery.clone())).unwrap(), master);
    assert_eq!(decoded.find_slot(&Credential::Recovery(recovery)).unwrap(), 2);
    assert_eq!(decoded.unlock(&Credential::passphrase("p")).unwrap(), master);

    let info = decoded.slots();
    assert_eq!(info[1].kind, Some(SlotKind::Hybrid));
    assert_eq!(info[1].kind_code, 3);
    assert_eq!(info[1].fingerprint, Some(pair.public_key().fingerprint()));
    assert!(!info[1].recovery);
    assert_eq!(info[2].kind, Some(SlotKind::Hybrid));
    assert!(info[2].recovery && info[2].fingerprint.is_some());
    assert_eq!((info[0].fingerprint, info[0].recovery), (None, false));
    assert!(!bytes.windows(32).any(|w| w == master.as_bytes()));
}

#[test]
fn hybrid_slots_open_only_for_their_own_key() {
    let master = MasterKey::random();
    let pair = HybridKeypair::generate();
    let recovery = RecoveryKey::generate();
    let file = KeyslotFile::decode(&hybrid_file(&master, &pair, &recovery).encode(), "KEYSLOTS").unwrap();
    assert!(matches!(file.unlock(&device(&HybridKeypair::generate())), Err(Error::WrongKey)));
    assert!(matches!(file.unlock(&Credential::Recovery(RecoveryKey::generate())), Err(Error::WrongKey)));
    // A store without hybrid slots refuses both kinds of hybrid credential.
    let plain = KeyslotFile::create(&master, STORE, &Credential::passphrase("p"), &TINY).unwrap();
    assert!(matches!(plain.unlock(&device(&pair)), Err(Error::WrongKey)));
    assert!(matches!(plain.unlock(&Credential::Recovery(recovery.clone())), Err(Error::WrongKey)));
    // Two devices each open their own slot; removing one's slot locks only that one out.
    let second = HybridKeypair::generate();
    let mut file = file;
    let index = file.add_hybrid_slot(&master, second.public_key()).unwrap();
    assert_eq!(file.unlock(&device(&second)).unwrap(), master);
    assert_eq!(file.find_slot(&device(&second)).unwrap(), index);
    file.remove_slot(1).unwrap();
    let file = KeyslotFile::decode(&file.encode(), "KEYSLOTS").unwrap();
    assert!(matches!(file.unlock(&device(&pair)), Err(Error::WrongKey)));
    assert_eq!(file.unlock(&device(&second)).unwrap(), master);
    assert_eq!(file.unlock(&Credential::Recovery(recovery)).unwrap(), master);
}

#[test]
fn altered_hybrid_slot_is_refused_as_corruption() {
    let master = MasterKey::random();
    let pair = HybridKeypair::generate();
    let recovery = RecoveryKey::generate();
    let file = hybrid_file(&master, &pair, &recovery);
    let bytes = file.encode();
    let device_at = body_offset(&file, 1);
    let recovery_at = body_offset(&file, 2);
    let regions = [
        ("X25519 ciphertext", 33 + 7),
        ("ML-KEM ciphertext", 65 + 500),
        ("master-key nonce", HYBRID_SLOT_PREFIX_LEN + 3),
        ("wrapped master key", HYBRID_DEVICE_BODY_LEN - 1),
    ];
    for (what, at) in regions {
        for (cred, body_at, body_len, label) in [
            (device(&pair), device_at, HYBRID_DEVICE_BODY_LEN, "device"),
            (Credential::Recovery(recovery.clone()), recovery_at, HYBRID_RECOVERY_BODY_LEN, "recovery"),
        ] {
            // Offsets past the prefix count from the end, where nonce and wrapped key sit.
            let at = if at >= HYBRID_SLOT_PREFIX_LEN {
                body_at + body_len - (HYBRID_DEVICE_BODY_LEN - at)
            } else {
                body_at + at
            };
            let mut bad = bytes.clone();
            bad[at] ^= 0x04;
            recrc(&mut bad);
            let decoded = KeyslotFile::decode(&bad, "KEYSLOTS").unwrap();
            match decoded.unlock(&cred) {
                Err(Error::Corruption { file, offset, reason }) => {
                    assert_eq!(file, "KEYSLOTS");
                    assert_eq!(offset, (body_at - SLOT_FRAME_LEN) as u64, "{label} {what}");
                    assert!(reason.contains("was altered"), "{label} {what}: {reason}");
                }
                other => panic!("{label} slot, altered {what}: expected corruption, got {other:?}"),
            }
            // The other credentials still open their own, intact slots.
            assert_eq!(decoded.unlock(&Credential::passphrase("p")).unwrap(), master);
        }
    }
    // The sealed ML-KEM key of the recovery slot.
    for at in [HYBRID_SLOT_PREFIX_LEN + 2, HYBRID_SLOT_PREFIX_LEN + 12 + 1000] {
        let mut bad = bytes.clone();
        bad[recovery_at + at] ^= 0x01;
        recrc(&mut bad);
        let decoded = KeyslotFile::decode(&bad, "KEYSLOTS").unwrap();
        // The seal's tag fails: to the reader, this recovery key no longer opens the slot.
        assert!(matches!(decoded.unlock(&Credential::Recovery(recovery.clone())), Err(Error::WrongKey)));
        assert_eq!(decoded.unlock(&device(&pair)).unwrap(), master);
    }
}

#[test]
fn unknown_variant_or_wrong_length_is_corruption() {
    let master = MasterKey::random();
    let pair = HybridKeypair::generate();
    let recovery = RecoveryKey::generate();
    let file = hybrid_file(&master, &pair, &recovery);
    let bytes = file.encode();
    for (variant, expect) in [(9u8, "unknown variant"), (2, "expected 3641"), (0, "unknown variant")] {
        let mut bad = bytes.clone();
        bad[body_offset(&file, 1)] = variant;
        recrc(&mut bad);
        match KeyslotFile::decode(&bad, "KEYSLOTS") {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, "KEYSLOTS");
                assert!(reason.contains(expect), "variant {variant}: {reason}");
            }
            other => panic!("variant {variant}: {other:?}"),
        }
    }
}

#[test]
fn every_flipped_byte_of_a_hybrid_file_is_corruption() {
    let master = MasterKey::random();
    let file = hybrid_file(&master, &HybridKeypair::generate(), &RecoveryKey::generate());
    let bytes = file.encode();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        assert!(matches!(KeyslotFile::decode(&bad, "KEYSLOTS"), Err(Error::Corruption { .. })), "byte {i}");
    }
}

#[test]
fn hybrid_slot_moved_to_another_store_does_not_open() {
    let master = MasterKey::random();
    let pair = HybridKeypair::generate();
    let recovery = RecoveryKey::generate();
    let a = hybrid_file(&master, &pair, &recovery);
    let mut b = KeyslotFile::create(&master, *b"another-store-id", &Credential::passphrase("q"), &TINY).unwrap();
    b.slots = a.slots.clone();
    let b = KeyslotFile::decode(&b.encode(), "KEYSLOTS").unwrap();
    assert!(matches!(b.unlock(&device(&pair)), Err(Error::Corruption { .. })));
    // The recovery slot's sealed key is bound to the store id as well.
    assert!(matches!(b.unlock(&Credential::Recovery(recovery)), Err(Error::WrongKey)));
}
