//! Tests of the `KEYRING` format: round trip, epochs, and every kind of damage or
//! mix-up being reported as corruption of the file.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::codec::append_crc;
use crate::format::CRC_LEN;

const STORE: [u8; 16] = *b"keyring-store-01";

fn assert_corruption<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, "KEYRING", "{what}"),
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
}

fn ring_with_three_epochs() -> Keyring {
    let mut ring = Keyring::new_random();
    assert_eq!(ring.add_epoch(), 2);
    assert_eq!(ring.add_epoch(), 3);
    ring
}

#[test]
fn seal_open_round_trip() {
    let master = MasterKey::random();
    let mut ring = ring_with_three_epochs();
    assert!(ring.remove_epoch(1).unwrap());
    let sealed = ring.seal(&master, &STORE);
    assert_eq!(&sealed[..8], b"SYNKRING");
    assert_eq!(sealed.len(), KEYRING_MIN_LEN + 2 * KEYRING_ENTRY_LEN);
    let opened = Keyring::open(&sealed, &master, &STORE, "KEYRING").unwrap();
    assert_eq!(opened.current(), 3);
    assert_eq!(opened.epochs(), vec![2, 3]);
    for e in [2, 3] {
        assert_eq!(opened.key(e), ring.key(e));
        // No data key appears in the file.
        assert!(!sealed.windows(32).any(|w| w == ring.key(e).unwrap().as_bytes()));
    }
    assert!(opened.key(1).is_none());
    // Two seals of the same keyring differ (fresh nonce) and both open.
    let again = ring.seal(&master, &STORE);
    assert_ne!(again, sealed);
    assert_eq!(Keyring::open(&again, &master, &STORE, "KEYRING").unwrap().epochs(), vec![2, 3]);
}

#[test]
fn epochs_only_grow_and_current_stays() {
    let mut ring = ring_with_three_epochs();
    assert!(matches!(ring.remove_epoch(3), Err(Error::InvalidArgument(_))));
    assert!(ring.remove_epoch(2).unwrap());
    assert!(!ring.remove_epoch(2).unwrap(), "removing twice reports absence");
    assert_eq!(ring.add_epoch(), 4);
    assert_eq!(ring.epochs(), vec![1, 3, 4]);
    assert_eq!(ring.current(), 4);
}

#[test]
fn wrong_master_or_store_is_corruption() {
    let master = MasterKey::random();
    let sealed = ring_with_three_epochs().seal(&master, &STORE);
    assert_corruption(Keyring::open(&sealed, &MasterKey::random(), &STORE, "KEYRING"), "other master key");
    assert_corruption(Keyring::open(&sealed, &master, b"some-other-store", "KEYRING"), "other store id");
}

#[test]
fn every_flipped_byte_is_corruption() {
    let master = MasterKey::random();
    let sealed = ring_with_three_epochs().seal(&master, &STORE);
    for i in 0..sealed.len() {
        for xor in [0x01u8, 0x80, 0xFF] {
            let mut bad = sealed.clone();
            bad[i] ^= xor;
            assert_corruption(Keyring::open(&bad, &master, &STORE, "KEYRING"), &format!("byte {i} ^ {xor:#x}"));
        }
    }
}

#[test]
fn truncated_file_is_corruption() {
    let master = MasterKey::random();
    let sealed = ring_with_three_epochs().seal(&master, &STORE);
    for len in 0..sealed.len() {
        assert_corruption(Keyring::open(&sealed[..len], &master, &STORE, "KEYRING"), &format!("truncated to {len}"));
    }
}

#[test]
fn flipped_byte_with_valid_crc_fails_authentication() {
    let master = MasterKey::random();
    let sealed = ring_with_three_epochs().seal(&master, &STORE);
    // Header bytes (AAD) other than magic/version/store id, and body bytes.
    for i in [KEYRING_HEADER_LEN - 1, KEYRING_HEADER_LEN, sealed.len() - CRC_LEN - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 0x40;
        bad.truncate(bad.len() - CRC_LEN);
        append_crc(&mut bad);
        assert_corruption(Keyring::open(&bad, &master, &STORE, "KEYRING"), &format!("byte {i} with fixed crc"));
    }
}
