//! Produces the worked examples of `crypto/FORMAT.md` from the real encoders, with
//! fixed keys so a reader can check every byte. Run with
//! `cargo test -p synapsed-storage-crypto print_format_examples -- --ignored --nocapture`
//! (and `print_hybrid_examples` for the hybrid keyslots).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use crate::codec::hkdf_sha256;
use crate::envelope::BlockKind;
use crate::format::FILE_HEADER_LEN;
use crate::header::{FileHeader, FileKind};
use crate::keyring::Keyring;
use crate::keys::{DataKey, MasterKey};
use crate::hybrid::HybridSecretKey;
use crate::keyslot::{hex, Argon2Params, Credential, KeyslotFile};
use crate::manager::KeyManager;
use crate::recovery::RecoveryKey;

fn seq(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

fn dump(title: &str, bytes: &[u8]) {
    println!("{title} ({} bytes)", bytes.len());
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let words: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        println!("{:04x}  {}", i * 16, words.join(" "));
    }
    println!();
}

#[test]
#[ignore = "prints the worked examples of FORMAT.md"]
fn print_format_examples() {
    let master = MasterKey::from_bytes(seq(0x00));
    let store_id: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    let tiny = Argon2Params { m_cost_kib: 64, t_cost: 1, p_cost: 1 };
    println!("MK       = {}", hex(master.as_bytes()));
    println!("store id = {}", hex(&store_id));
    let mut kcv = [0u8; 16];
    hkdf_sha256(master.as_bytes(), None, b"synapsed-storage kcv", &mut kcv);
    println!("KCV      = {}", hex(&kcv));
    let mut ring_key = [0u8; 32];
    hkdf_sha256(master.as_bytes(), None, b"synapsed-storage keyring", &mut ring_key);
    println!("keyring sealing key = {}\n", hex(&ring_key));

    let pass = Credential::passphrase("correct horse battery staple");
    let raw = Credential::raw_key(seq(0x40));
    let mut slots = KeyslotFile::create(&master, store_id, &pass, &tiny).unwrap();
    slots.add_slot(&master, &raw, &tiny).unwrap();
    let slot_bytes = slots.encode();
    dump("KEYSLOTS (passphrase slot m=64 KiB t=1 p=1, then raw-key slot 40..5f)", &slot_bytes);
    let decoded = KeyslotFile::decode(&slot_bytes, "KEYSLOTS").unwrap();
    assert_eq!(decoded.unlock(&pass).unwrap(), master);
    assert_eq!(decoded.unlock(&raw).unwrap(), master);

    let mut epochs = BTreeMap::new();
    epochs.insert(1, DataKey::from_bytes(seq(0x20)));
    let mut ring = Keyring::new_random();
    ring.epochs = epochs;
    let ring_bytes = ring.seal(&master, &store_id);
    dump("KEYRING (epoch 1, DEK 20..3f)", &ring_bytes);
    assert_eq!(Keyring::open(&ring_bytes, &master, &store_id, "KEYRING").unwrap().key(1), ring.key(1));

    let km = KeyManager::from_parts(master, store_id, ring.clone());
    let (header, cipher) = km.new_file(FileKind::Wal, 7, "000007.wal");
    dump("file header (WAL segment, file id 7, epoch 1)", &header);
    assert_eq!(FileHeader::decode(&header, "000007.wal").unwrap().file_id, 7);
    let block = cipher.seal(FILE_HEADER_LEN as u64, BlockKind::WalRecord, b"hello");
    dump("its first WalRecord block at offset 84, plaintext \"hello\"", &block);
    assert_eq!(
        km.open_file(&header, FileKind::Wal, 7, "000007.wal").unwrap().open(84, BlockKind::WalRecord, &block).unwrap(),
        b"hello"
    );

    let fixed = crate::envelope::FileCipher::new(&crate::keys::FileKey::from_bytes(seq(0x60)), 7, "000007.wal");
    dump(
        "block sealed with file key 60..7f, file id 7, offset 84, WalRecord, \"hello\"",
        &fixed.seal(84, BlockKind::WalRecord, b"hello"),
    );
}

#[test]
#[ignore = "prints the hybrid keyslot examples of FORMAT.md"]
fn print_hybrid_examples() {
    let master = MasterKey::from_bytes(seq(0x00));
    let store_id: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
    // A device key whose X25519 half is 80..9f; its ML-KEM half is random, as
    // pqcrypto-mlkem cannot generate one from a seed.
    let device = crate::hybrid::generate_with_x25519(x25519_dalek::StaticSecret::from(seq(0x80)));
    let recovery = RecoveryKey::from_bytes(seq(0x00));
    println!("recovery key = {}", &*recovery.to_text());
    dump("device secret key", &device.encode());
    dump("device public key", &device.public_key().encode());
    println!("device fingerprint = {}\n", hex(&device.public_key().fingerprint()));

    let params = Argon2Params::default();
    let mut slots = KeyslotFile::create(&master, store_id, &Credential::Hybrid(device.clone()), &params).unwrap();
    slots.add_slot(&master, &Credential::Recovery(recovery.clone()), &params).unwrap();
    let bytes = slots.encode();
    dump("KEYSLOTS (device slot, then recovery slot)", &bytes);
    let decoded = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    let decoded_device = HybridSecretKey::decode(&device.encode()).unwrap();
    assert_eq!(decoded.unlock(&Credential::Hybrid(decoded_device)).unwrap(), master);
    assert_eq!(decoded.unlock(&Credential::Recovery(recovery)).unwrap(), master);
}

/// The bytes of the dump titled `title` in a printed examples file.
fn parse_dump(text: &str, title: &str) -> Vec<u8> {
    let start = text.find(title).unwrap();
    let part = text[start..].split("\n\n").next().unwrap();
    part.lines()
        .skip(1)
        .flat_map(|line| line[6..].split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()).collect::<Vec<_>>())
        .collect()
}

/// The committed hybrid example (checked independently by
/// `testdata/verify_hybrid_example.py`) still opens with this build: the format
/// of kind-3 slots and of hybrid secret keys has not drifted.
#[test]
fn committed_hybrid_example_still_opens() {
    let text = include_str!("../testdata/hybrid_slot_example.txt");
    let device = HybridSecretKey::decode(&parse_dump(text, "device secret key")).unwrap();
    assert_eq!(device.public_key().encode(), parse_dump(text, "device public key"));
    let bytes = parse_dump(text, "KEYSLOTS");
    let file = KeyslotFile::decode(&bytes, "KEYSLOTS").unwrap();
    assert_eq!(file.encode(), bytes);
    let recovery_line = text.lines().find_map(|l| l.strip_prefix("recovery key = ")).unwrap();
    let recovery = RecoveryKey::from_text(recovery_line).unwrap();
    assert_eq!(recovery.as_bytes(), &seq(0x00));
    let master = MasterKey::from_bytes(seq(0x00));
    assert_eq!(file.unlock(&Credential::Hybrid(device)).unwrap(), master);
    assert_eq!(file.unlock(&Credential::Recovery(recovery)).unwrap(), master);
    assert!(matches!(
        file.unlock(&Credential::Recovery(RecoveryKey::from_bytes(seq(0x01)))),
        Err(crate::Error::WrongKey)
    ));
}

/// The committed block-envelope example (FORMAT.md §2, checked independently by
/// `testdata/verify_format_examples.py`) is what this build's block cipher seals,
/// and it opens again: the envelope's bytes have not drifted with the cipher
/// implementation under it.
#[test]
fn committed_envelope_example_still_seals_and_opens() {
    let title = "block sealed with file key 60..7f, file id 7, offset 84, WalRecord, \"hello\"";
    let committed = parse_dump(include_str!("../testdata/format_examples.txt"), title);
    assert_eq!(committed.len(), 5 + crate::envelope::TAG_LEN);
    let format_md = include_str!("../FORMAT.md");
    assert!(format_md.contains("0000  8b 40 8e 8b 9a c2 91 bb a5 dc 26 87 14 dd cc 03"), "FORMAT.md's worked example moved");
    let fixed = crate::envelope::FileCipher::new(&crate::keys::FileKey::from_bytes(seq(0x60)), 7, "000007.wal");
    assert_eq!(fixed.seal(84, BlockKind::WalRecord, b"hello"), committed);
    assert_eq!(fixed.open(84, BlockKind::WalRecord, &committed).unwrap(), b"hello");
    assert!(fixed.open(84 + 1, BlockKind::WalRecord, &committed).is_err());
}
