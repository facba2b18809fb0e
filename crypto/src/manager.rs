//! The unlocked key hierarchy of one open store: hands out per-file ciphers.
//!
//! `create` writes `KEYRING` first and `KEYSLOTS` last, each atomically (temp file,
//! sync, rename, directory sync), so the presence of `KEYSLOTS` is what says a store
//! exists: a crash in between leaves a stray `KEYRING` that the next `create`
//! overwrites, never a store without its keyring. Keyslot changes and key rotation
//! live in [`admin`].

use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};

use crate::envelope::FileCipher;
use crate::error::{Error, Result};
use crate::format::{FILE_HEADER_LEN, MAX_KEYRING_FILE_LEN, MAX_KEYSLOTS_FILE_LEN, NONCE_LEN};
use crate::header::{FileHeader, FileKind};
use crate::keyring::Keyring;
use crate::keys::{fill_random, Epoch, FileKey, MasterKey};
use crate::keyslot::{Argon2Params, Credential, KeyslotFile};
use crate::recovery::RecoveryKey;
use crate::vfs::{write_file_atomic, Vfs};

/// Name of the keyslot file in the store directory.
pub const KEYSLOTS_FILE: &str = "KEYSLOTS";
/// Name of the keyring file in the store directory.
pub const KEYRING_FILE: &str = "KEYRING";

mod admin;
mod integrity;
pub use integrity::INTEGRITY_TAG_LEN;

/// The unlocked keys of one store.
pub struct KeyManager {
    /// Kept (zeroized on drop) so the keyring can be resealed after a rotation and
    /// new keyslots can wrap it.
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
        Arc::new(KeyManager::new(MasterKey::random(), store_id, Keyring::new_random()))
    }

    /// Creates the key files of a new store in `dir` (fails if `KEYSLOTS` exists) and
    /// returns the unlocked manager.
    ///
    /// `dir` is created if missing. Errors: `AlreadyExists` if the directory already
    /// holds a store, `InvalidArgument` for an empty passphrase or out-of-range
    /// Argon2 parameters, `Io` naming the file that could not be written.
    pub fn create(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential, params: &Argon2Params) -> Result<Arc<Self>> {
        Self::create_inner(vfs, dir, credential, params, None)
    }

    /// Like [`KeyManager::create`], and also makes a recovery key with its own
    /// keyslot (kind 3, recovery variant), written in the same atomic `KEYSLOTS` write.
    ///
    /// The returned [`RecoveryKey`] exists nowhere else: show it to the person once
    /// ([`RecoveryKey::to_text`]) and drop it. It unlocks the store as
    /// `Credential::Recovery(key)`.
    pub fn create_with_recovery(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        params: &Argon2Params,
    ) -> Result<(Arc<Self>, RecoveryKey)> {
        let recovery = RecoveryKey::generate();
        let manager = Self::create_inner(vfs, dir, credential, params, Some(&recovery))?;
        Ok((manager, recovery))
    }

    fn create_inner(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        params: &Argon2Params,
        recovery: Option<&RecoveryKey>,
    ) -> Result<Arc<Self>> {
        let keyslots_path = dir.join(KEYSLOTS_FILE);
        if vfs.exists(&keyslots_path) {
            return Err(Error::AlreadyExists(format!(
                "{} already holds a store ({KEYSLOTS_FILE} exists)",
                dir.display()
            )));
        }
        let master = MasterKey::random();
        let mut store_id = [0u8; 16];
        fill_random(&mut store_id);
        // Built before anything is written, so bad arguments leave the directory untouched.
        let mut keyslots = KeyslotFile::create(&master, store_id, credential, params)?;
        if let Some(recovery) = recovery {
            keyslots.add_slot(&master, &Credential::Recovery(recovery.clone()), params)?;
        }
        let keyring = Keyring::new_random();
        vfs.create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        write_file_atomic(&**vfs, dir, KEYRING_FILE, &keyring.seal(&master, &store_id))
            .map_err(|e| Error::io(KEYRING_FILE, e))?;
        write_file_atomic(&**vfs, dir, KEYSLOTS_FILE, &keyslots.encode()).map_err(|e| Error::io(KEYSLOTS_FILE, e))?;
        Ok(Arc::new(KeyManager::new(master, store_id, keyring)))
    }

    fn new(master: MasterKey, store_id: [u8; 16], keyring: Keyring) -> Self {
        KeyManager { master, store_id, keyring: RwLock::new(keyring) }
    }

    /// Unlocks an existing store's keys with `credential`.
    ///
    /// Errors: `NotFound` if `dir` holds no store, `WrongKey` if no keyslot accepts
    /// the credential, `Corruption` naming `KEYSLOTS` or `KEYRING` if either is
    /// damaged, missing (`KEYRING`) or from another store.
    pub fn unlock(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential) -> Result<Arc<Self>> {
        let Some(keyslots_bytes) = read_key_file(&**vfs, dir, KEYSLOTS_FILE, MAX_KEYSLOTS_FILE_LEN)? else {
            return Err(Error::NotFound(format!("no store in {} ({KEYSLOTS_FILE} is missing)", dir.display())));
        };
        let keyslots = KeyslotFile::decode(&keyslots_bytes, KEYSLOTS_FILE)?;
        let master = keyslots.unlock(credential)?;
        let store_id = keyslots.store_id();
        let Some(keyring_bytes) = read_key_file(&**vfs, dir, KEYRING_FILE, MAX_KEYRING_FILE_LEN)? else {
            return Err(Error::corruption(KEYRING_FILE, 0, "the keyring file is missing"));
        };
        let keyring = Keyring::open(&keyring_bytes, &master, &store_id, KEYRING_FILE)?;
        Ok(Arc::new(KeyManager::new(master, store_id, keyring)))
    }

    /// A manager over keys the caller already holds (worked examples, later key tools).
    #[cfg(test)]
    pub(crate) fn from_parts(master: MasterKey, store_id: [u8; 16], keyring: Keyring) -> Self {
        KeyManager::new(master, store_id, keyring)
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

    /// Parses a file header, checks it is of `expected` kind and carries
    /// `expected_file_id` (the number in the file's name), and unwraps its key.
    ///
    /// The number check is what stops a file of the same store from being used
    /// under another file's name (an old WAL segment copied over the live one, a
    /// manifest renamed): the header is authentic, but it is not this file's.
    pub fn open_file(&self, header_bytes: &[u8], expected: FileKind, expected_file_id: u64, file: &str) -> Result<FileCipher> {
        let header = FileHeader::decode(header_bytes, file)?;
        if header.kind != expected {
            return Err(Error::corruption(file, 9, format!("expected a {expected:?} file, found {:?}", header.kind)));
        }
        if header.file_id != expected_file_id {
            return Err(Error::corruption(
                file,
                16,
                format!(
                    "header names file {}, but this is file {expected_file_id} (a file of this store put under another name)",
                    header.file_id
                ),
            ));
        }
        let keyring = self.keyring.read();
        let dek =
            keyring.key(header.epoch).ok_or_else(|| Error::MissingEpoch { file: file.into(), epoch: header.epoch })?;
        let wrap = Aes256GcmSiv::new(dek.as_bytes().into());
        let (nonce, ct) = header.wrapped_key.split_at(NONCE_LEN);
        let mut buf = ct.to_vec();
        wrap.decrypt_in_place(Nonce::from_slice(nonce), &header.prefix(), &mut buf).map_err(|_| {
            Error::corruption(file, 0, "file header failed authentication (damaged, or a file of another store)")
        })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&buf);
        zeroize::Zeroize::zeroize(&mut buf);
        let file_key = FileKey::from_bytes(key);
        zeroize::Zeroize::zeroize(&mut key);
        Ok(FileCipher::new(&file_key, header.file_id, file))
    }
}

/// Reads the key file `dir/name` whole; `None` if it does not exist. A file longer
/// than any valid one is corruption, refused before anything is allocated for it.
fn read_key_file(vfs: &dyn Vfs, dir: &Path, name: &str, max_len: usize) -> Result<Option<Vec<u8>>> {
    let file = match vfs.open(&dir.join(name)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(name, e)),
    };
    let len = file.len();
    let Some(len) = usize::try_from(len).ok().filter(|l| *l <= max_len) else {
        return Err(Error::corruption(
            name,
            max_len as u64,
            format!("file is {len} bytes, longer than any valid {name} ({max_len} bytes)"),
        ));
    };
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0).map_err(|e| Error::io(name, e))?;
    Ok(Some(buf))
}

#[cfg(test)]
mod hygiene_tests;
#[cfg(test)]
mod tests;
