//! The unlocked key hierarchy of one open store: hands out per-file ciphers.

use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};

use crate::envelope::FileCipher;
use crate::error::{Error, Result};
use crate::format::{FILE_HEADER_LEN, NONCE_LEN};
use crate::header::{FileHeader, FileKind};
use crate::keyring::Keyring;
use crate::keys::{fill_random, Epoch, FileKey, MasterKey};
use crate::keyslot::{Argon2Params, Credential};
use crate::vfs::Vfs;

/// Name of the keyslot file in the store directory.
pub const KEYSLOTS_FILE: &str = "KEYSLOTS";
/// Name of the keyring file in the store directory.
pub const KEYRING_FILE: &str = "KEYRING";

/// The unlocked keys of one store.
pub struct KeyManager {
    #[allow(dead_code)]
    master: MasterKey,
    store_id: [u8; 16],
    keyring: RwLock<Keyring>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager").field("current_epoch", &self.current_epoch()).finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A manager with a random master key and one epoch, kept only in memory.
    /// For tests and tools that need ciphers without a store directory.
    pub fn ephemeral() -> Arc<Self> {
        let mut store_id = [0u8; 16];
        fill_random(&mut store_id);
        Arc::new(KeyManager { master: MasterKey::random(), store_id, keyring: RwLock::new(Keyring::new_random()) })
    }

    /// Creates the key files of a new store in `dir` (fails if `KEYSLOTS` exists) and
    /// returns the unlocked manager.
    pub fn create(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential, params: &Argon2Params) -> Result<Arc<Self>> {
        let _ = (vfs, dir, credential, params);
        todo!("create key files")
    }

    /// Unlocks an existing store's keys with `credential`.
    pub fn unlock(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential) -> Result<Arc<Self>> {
        let _ = (vfs, dir, credential);
        todo!("unlock key files")
    }

    /// The store's random id.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }

    /// The epoch new files are written under.
    pub fn current_epoch(&self) -> Epoch {
        self.keyring.read().current()
    }

    /// Makes a random key for a new file and returns its header bytes and cipher.
    /// `file` names the file in later error messages.
    pub fn new_file(&self, kind: FileKind, file_id: u64, file: &str) -> ([u8; FILE_HEADER_LEN], FileCipher) {
        let keyring = self.keyring.read();
        let epoch = keyring.current();
        let file_key = FileKey::random();
        let mut header = FileHeader { kind, epoch, file_id, wrapped_key: [0u8; crate::format::WRAPPED_KEY_LEN] };
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut buf = file_key.as_bytes().to_vec();
        let dek = keyring.key(epoch).unwrap_or_else(|| unreachable!("the current epoch is always in the keyring"));
        let wrap = Aes256GcmSiv::new(dek.as_bytes().into());
        if wrap.encrypt_in_place(Nonce::from_slice(&nonce), &header.prefix(), &mut buf).is_err() {
            unreachable!("AES-GCM-SIV refused a 32-byte message");
        }
        header.wrapped_key[..NONCE_LEN].copy_from_slice(&nonce);
        header.wrapped_key[NONCE_LEN..].copy_from_slice(&buf);
        (header.encode(), FileCipher::new(&file_key, file_id, file))
    }

    /// Parses a file header, checks it is of `expected` kind, and unwraps its key.
    pub fn open_file(&self, header_bytes: &[u8], expected: FileKind, file: &str) -> Result<FileCipher> {
        let header = FileHeader::decode(header_bytes, file)?;
        if header.kind != expected {
            return Err(Error::corruption(file, 9, format!("expected a {expected:?} file, found {:?}", header.kind)));
        }
        let keyring = self.keyring.read();
        let dek = keyring.key(header.epoch).ok_or_else(|| Error::MissingEpoch { file: file.into(), epoch: header.epoch })?;
        let wrap = Aes256GcmSiv::new(dek.as_bytes().into());
        let (nonce, ct) = header.wrapped_key.split_at(NONCE_LEN);
        let mut buf = ct.to_vec();
        wrap.decrypt_in_place(Nonce::from_slice(nonce), &header.prefix(), &mut buf)
            .map_err(|_| Error::corruption(file, 0, "file header failed authentication (damaged, or a file of another store)"))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        let file_key = FileKey::from_bytes(key);
        zeroize::Zeroize::zeroize(&mut key);
        Ok(FileCipher::new(&file_key, header.file_id, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::BlockKind;

    #[test]
    fn header_round_trip_and_tamper() {
        let km = KeyManager::ephemeral();
        let (hdr, c) = km.new_file(FileKind::Sst, 42, "000042.sst");
        let sealed = c.seal(FILE_HEADER_LEN as u64, BlockKind::SstData, b"data");
        let c2 = km.open_file(&hdr, FileKind::Sst, "000042.sst").unwrap();
        assert_eq!(c2.open(FILE_HEADER_LEN as u64, BlockKind::SstData, &sealed).unwrap(), b"data");
        assert!(km.open_file(&hdr, FileKind::Wal, "x").is_err());
        for i in 0..FILE_HEADER_LEN {
            let mut bad = hdr;
            bad[i] ^= 0x10;
            assert!(km.open_file(&bad, FileKind::Sst, "000042.sst").is_err(), "flip at {i} undetected");
        }
        let other = KeyManager::ephemeral();
        assert!(other.open_file(&hdr, FileKind::Sst, "000042.sst").is_err());
    }
}
