//! Produces the worked examples of `crypto/FORMAT.md` from the real encoders, with
//! fixed keys so a reader can check every byte. Run with
//! `cargo test -p synapsed-storage-crypto print_format_examples -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use crate::codec::hkdf_sha256;
use crate::envelope::BlockKind;
use crate::format::FILE_HEADER_LEN;
use crate::header::{FileHeader, FileKind};
use crate::keyring::Keyring;
use crate::keys::{DataKey, MasterKey};
use crate::keyslot::{hex, Argon2Params, Credential, KeyslotFile};
use crate::manager::KeyManager;

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
    let ring = Keyring { epochs, current: 1 };
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
        km.open_file(&header, FileKind::Wal, "000007.wal").unwrap().open(84, BlockKind::WalRecord, &block).unwrap(),
        b"hello"
    );

    let fixed = crate::envelope::FileCipher::new(&crate::keys::FileKey::from_bytes(seq(0x60)), 7, "000007.wal");
    dump(
        "block sealed with file key 60..7f, file id 7, offset 84, WalRecord, \"hello\"",
        &fixed.seal(84, BlockKind::WalRecord, b"hello"),
    );
}
