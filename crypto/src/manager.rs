//! The unlocked key hierarchy of one open store: hands out per-file ciphers.
//!
//! `create` writes `KEYRING` first and `KEYSLOTS` last, each atomically (temp file,
//! sync, rename, directory sync), so the presence of `KEYSLOTS` is what says a store
//! exists: a crash in between leaves a stray `KEYRING` that the next `create`
//! overwrites, never a store without its keyring. Keyslot changes and key rotation
//! live in [`admin`].
//!
//! `KEYRING` is sealed under a random keyring key that `KEYSLOTS` keeps sealed
//! under MK, with the keyring's generation; every change of either file makes a
//! new keyring key and bumps the generation ([`commit_key_files`]), so an older
//! copy of either file no longer pairs with the current other one. Stores of the
//! first layout (KEYRING sealed under MK itself) are read and upgraded.

use parking_lot::RwLock;
use std::path::Path;
use std::sync::Arc;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};

use crate::envelope::FileCipher;
use crate::error::{Error, Result};
use crate::format::{
    FILE_HEADER_LEN, KEYRING_MIN_LEN, KEYRING_SEALED_VERSION, KEYRING_VERSION, MAX_KEYRING_FILE_LEN, MAX_KEYSLOTS_FILE_LEN, NONCE_LEN,
};
use crate::header::{FileHeader, FileKind};
use crate::keyring::Keyring;
use crate::keys::{fill_random, Epoch, FileKey, MasterKey};
use crate::keyslot::{Argon2Params, Credential, KeyState, KeyslotFile};
use crate::recovery::RecoveryKey;
use crate::vfs::{write_file_atomic, Vfs};
use zeroize::Zeroizing;

/// Name of the keyslot file in the store directory.
pub const KEYSLOTS_FILE: &str = "KEYSLOTS";
/// Name of the keyring file in the store directory.
pub const KEYRING_FILE: &str = "KEYRING";

/// How often `unlock` reads the key files again when a writer changed them
/// between its two reads, or a key file read as damaged (a writer may have been
/// replacing it: the replaced file is overwritten with zeros). A retry after a
/// changed `KEYSLOTS` needs a further change by that writer; a damaged key file
/// costs this many extra reads (no second key derivation) before it is reported.
const MAX_UNLOCK_RETRIES: usize = 8;

mod admin;
pub use admin::RekeyOutcome;
mod integrity;
pub use integrity::INTEGRITY_TAG_LEN;

/// The unlocked keys of one store.
pub struct KeyManager {
    /// Kept (zeroized on drop) so the keyring can be resealed after a rotation and
    /// new keyslots can wrap it.
    master: RwLock<MasterKey>,
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

    /// Like [`KeyManager::create_with_recovery`] with a recovery key the caller
    /// made, so that it can be written down (or synced to its file) before the
    /// store exists: a crash then never leaves a store whose recovery key was
    /// never shown.
    pub fn create_with_recovery_key(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        params: &Argon2Params,
        recovery: &RecoveryKey,
    ) -> Result<Arc<Self>> {
        Self::create_inner(vfs, dir, credential, params, Some(recovery))
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
        let mut keyring = Keyring::new_random();
        keyring.generation = 1;
        let state = KeyState { generation: 1, keyring_key: random_key(), next: None, legacy_keyring: false };
        vfs.create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        write_file_atomic(&**vfs, dir, KEYRING_FILE, &keyring.seal_v2(&state.keyring_key, &store_id))
            .map_err(|e| Error::io(KEYRING_FILE, e))?;
        write_file_atomic(&**vfs, dir, KEYSLOTS_FILE, &keyslots.encode_sealed(&master, &state))
            .map_err(|e| Error::io(KEYSLOTS_FILE, e))?;
        Ok(Arc::new(KeyManager::new(master, store_id, keyring)))
    }

    fn new(master: MasterKey, store_id: [u8; 16], keyring: Keyring) -> Self {
        KeyManager { master: RwLock::new(master), store_id, keyring: RwLock::new(keyring) }
    }

    /// The root from which keys that must outlive every key change are derived
    /// (e.g. the key that authenticates `CURRENT`): 32 random bytes made at
    /// `create` and kept in the sealed `KEYRING`; for a store made before it
    /// existed, HKDF-SHA256(ikm = MK, info = "synapsed-storage integrity root"),
    /// fixed at the upgrade. Neither a keyring-key change nor a master-key
    /// rotation (`rekey`) changes it.
    pub(crate) fn integrity_root(&self) -> Zeroizing<[u8; 32]> {
        self.keyring.read().integrity_root.0.clone()
    }

    /// Unlocks an existing store's keys with `credential`.
    ///
    /// Errors: `NotFound` if `dir` holds no store, `WrongKey` if no keyslot accepts
    /// the credential, `Corruption` naming `KEYSLOTS` or `KEYRING` if either is
    /// damaged, missing (`KEYRING`) or from another store.
    pub fn unlock(vfs: &Arc<dyn Vfs>, dir: &Path, credential: &Credential) -> Result<Arc<Self>> {
        let mut master: Option<MasterKey> = None;
        let mut attempt = 0;
        loop {
            let Some(keyslots_bytes) = read_key_file(&**vfs, dir, KEYSLOTS_FILE, MAX_KEYSLOTS_FILE_LEN)? else {
                return Err(Error::NotFound(dir.display().to_string()));
            };
            let keyslots = match KeyslotFile::decode(&keyslots_bytes, KEYSLOTS_FILE) {
                Ok(keyslots) => keyslots,
                // Read through a handle opened just before a writer replaced the
                // file and overwrote the old one with zeros: the name now holds
                // the new file. A damaged file fails the same way every time.
                Err(Error::Corruption { .. }) if attempt < MAX_UNLOCK_RETRIES => {
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // A retry after a concurrent change reuses the key when it is still the
            // store's (no second Argon2 run), and unlocks again after a rekey.
            let key = match master.take() {
                Some(k) if keyslots.matches(&k) => k,
                _ => keyslots.unlock(credential)?,
            };
            let store_id = keyslots.store_id();
            match open_keyring(&**vfs, dir, &keyslots, &key) {
                Ok((keyring, _)) => return Ok(Arc::new(KeyManager::new(key, store_id, keyring))),
                // A writer changed the key files between the two reads (its first
                // write replaces KEYSLOTS before KEYRING changes), or replaced
                // KEYRING while it was read (the replaced file is overwritten with
                // zeros through a handle opened before the rename, so a read of it
                // can meet the zeros): read both again. An older file put back, or
                // a damaged one, fails the same way every time.
                Err(e @ Error::Corruption { .. }) if attempt < MAX_UNLOCK_RETRIES => {
                    let keyring_failed = matches!(&e, Error::Corruption { file, .. } if file == KEYRING_FILE);
                    let now = read_key_file(&**vfs, dir, KEYSLOTS_FILE, MAX_KEYSLOTS_FILE_LEN)?;
                    if !keyring_failed && now.as_deref() == Some(keyslots_bytes.as_slice()) {
                        return Err(e);
                    }
                    attempt += 1;
                    master = Some(key);
                }
                Err(e) => return Err(e),
            }
        }
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

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    fill_random(&mut key[..]);
    key
}

/// Reads `dir/KEYRING` and opens it with what `keyslots` holds under `master`.
/// Returns the keyring and the key state a change of the key files starts from:
/// the generation and keyring key the keyring was actually opened with (the
/// next key of an interrupted change, if that is what opened it), or, for a
/// keyring of the first layout, generation 0 and the legacy flag.
///
/// Refused as corruption: a first-layout `KEYRING` beside an upgraded `KEYSLOTS`
/// (a downgrade), an upgraded `KEYRING` beside a first-layout `KEYSLOTS`, a
/// `KEYRING` whose generation is not the one `KEYSLOTS` names (an older or newer
/// copy put back), one that does not open under the keyring key.
fn open_keyring(
    vfs: &dyn Vfs,
    dir: &Path,
    keyslots: &KeyslotFile,
    master: &MasterKey,
) -> Result<(Keyring, KeyState)> {
    let store_id = keyslots.store_id();
    let Some(bytes) = read_key_file(vfs, dir, KEYRING_FILE, MAX_KEYRING_FILE_LEN)? else {
        return Err(Error::corruption(KEYRING_FILE, 0, "the keyring file is missing"));
    };
    // Damage is told apart (and named) before the version picks a key.
    crate::codec::check_trailing_crc(&bytes, KEYRING_MIN_LEN, KEYRING_FILE)?;
    let state = keyslots.open_seal(master)?;
    let version = Keyring::version_of(&bytes);
    let legacy = |generation: u64| KeyState { generation, keyring_key: random_key(), next: None, legacy_keyring: true };
    match (state, version) {
        (_, Some(v)) if v > KEYRING_SEALED_VERSION => Err(Error::UnsupportedVersion {
            file: KEYRING_FILE.into(),
            found: v,
            supported: KEYRING_SEALED_VERSION,
        }),
        (None, Some(KEYRING_VERSION)) => Ok((Keyring::open(&bytes, master, &store_id, KEYRING_FILE)?, legacy(0))),
        (None, _) => Err(Error::corruption(
            KEYSLOTS_FILE,
            8,
            "KEYSLOTS is of the first layout but KEYRING is not: an older KEYSLOTS was put back (refused)",
        )),
        (Some(st), Some(KEYRING_VERSION)) if st.legacy_keyring => {
            Ok((Keyring::open(&bytes, master, &store_id, KEYRING_FILE)?, legacy(st.generation)))
        }
        (Some(_), Some(KEYRING_VERSION)) => Err(Error::corruption(
            KEYRING_FILE,
            8,
            "KEYRING is of the first layout but the store was upgraded: an older KEYRING was put back (refused)",
        )),
        (Some(st), _) => {
            let opened = Keyring::open_v2(&bytes, &st.keyring_key, &store_id, KEYRING_FILE);
            let (keyring, key, expected) = match (opened, &st.next) {
                (Ok(k), _) => (k, st.keyring_key.clone(), st.generation),
                (Err(e), Some(next)) => match Keyring::open_v2(&bytes, next, &store_id, KEYRING_FILE) {
                    Ok(k) => (k, next.clone(), st.generation.saturating_add(1)),
                    Err(_) => return Err(generation_error(&bytes, st.generation, true).unwrap_or(e)),
                },
                (Err(e), None) => return Err(generation_error(&bytes, st.generation, false).unwrap_or(e)),
            };
            if keyring.generation != expected {
                return Err(Error::corruption(
                    KEYRING_FILE,
                    25,
                    format!(
                        "KEYRING is generation {} but KEYSLOTS pairs with generation {expected}: \
                         one of them is a copy from another time (refused)",
                        keyring.generation
                    ),
                ));
            }
            let generation = keyring.generation;
            Ok((keyring, KeyState { generation, keyring_key: key, next: None, legacy_keyring: false }))
        }
    }
}

/// A clearer error than a failed tag when the keyring's header names another
/// generation than the one `KEYSLOTS` pairs with.
fn generation_error(bytes: &[u8], expected: u64, with_next: bool) -> Option<Error> {
    let found = Keyring::generation_of(bytes)?;
    if found == expected || (with_next && found == expected.saturating_add(1)) {
        return None;
    }
    let which = if found < expected { "an older KEYRING" } else { "an older KEYSLOTS" };
    Some(Error::corruption(
        KEYRING_FILE,
        25,
        format!(
            "KEYRING is generation {found} but KEYSLOTS pairs with generation {expected}: \
             {which} was put back (refused)"
        ),
    ))
}

/// Writes `keyslots` and `keyring` as a pair under a new keyring key, one
/// generation on from `from` (see `crypto/FORMAT.md`, section 7):
///
/// 1. `KEYSLOTS` with the new slot set, the current keyring key and the next one;
/// 2. `KEYRING` under the next key, generation + 1;
/// 3. `KEYSLOTS` with only the next key, generation + 1.
///
/// Each write is atomic, and the old file's bytes are overwritten once the new
/// one is in place ([`write_key_file`]). A crash after step 1 leaves the old
/// keyring, which the current key opens; after step 2, the new keyring, which
/// the next key opens; either way the store opens, and the next change starts
/// from whichever keyring is there. Returns the new state.
///
/// `durable` is called once a step's file is in place (1: the new `KEYSLOTS`, 2:
/// the new `KEYRING`), even if a later step then fails, so that a caller's
/// in-memory keys never lag behind what is on disk.
fn commit_key_files(
    vfs: &dyn Vfs,
    dir: &Path,
    master: &MasterKey,
    keyslots: &KeyslotFile,
    keyring: &mut Keyring,
    from: &KeyState,
    durable: &mut dyn FnMut(u8, &Keyring),
) -> Result<KeyState> {
    let store_id = keyslots.store_id();
    let next = random_key();
    let pending = KeyState {
        generation: from.generation,
        keyring_key: from.keyring_key.clone(),
        next: Some(next.clone()),
        legacy_keyring: from.legacy_keyring,
    };
    let generation = from
        .generation
        .checked_add(1)
        .ok_or_else(|| Error::InvalidArgument("key-file generations are exhausted".into()))?;
    write_key_file(vfs, dir, KEYSLOTS_FILE, &keyslots.encode_sealed(master, &pending), &mut || {
        durable(1, keyring)
    })?;
    keyring.generation = generation;
    let sealed = keyring.seal_v2(&next, &store_id);
    write_key_file(vfs, dir, KEYRING_FILE, &sealed, &mut || durable(2, keyring))?;
    let done = KeyState { generation, keyring_key: next, next: None, legacy_keyring: false };
    write_key_file(vfs, dir, KEYSLOTS_FILE, &keyslots.encode_sealed(master, &done), &mut || {})?;
    Ok(done)
}

/// Replaces the key file `dir/name` with `data` atomically (temporary file,
/// sync, rename, directory sync), then overwrites the replaced file's bytes
/// with zeros through a handle opened before the rename, and syncs them: the
/// old keys do not stay readable in the file system's free blocks (on a disk
/// that rewrites in place; see docs/security.md for SSDs and copy-on-write file
/// systems). The overwrite comes after the rename so that a crash at any point
/// leaves either the old file or the new one under `name`, never a wiped one.
/// `replaced` is called as soon as the new file is durable under `name`.
fn write_key_file(vfs: &dyn Vfs, dir: &Path, name: &str, data: &[u8], replaced: &mut dyn FnMut()) -> Result<()> {
    let path = dir.join(name);
    let old = match vfs.file_size(&path) {
        Ok(len) => Some((vfs.open_for_overwrite(&path).map_err(|e| Error::io(name, e))?, len)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(name, e)),
    };
    write_file_atomic(vfs, dir, name, data).map_err(|e| Error::io(name, e))?;
    replaced();
    if let Some((file, len)) = old {
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(crate::format::MAX_KEYSLOTS_FILE_LEN);
        file.append(&vec![0u8; len]).map_err(|e| Error::io(name, e))?;
        file.sync().map_err(|e| Error::io(name, e))?;
    }
    Ok(())
}

/// Overwrites with zeros, syncs and removes `dir/name.tmp`, the leftover of an
/// atomic replace of key file `name` that a crash cut short; nothing if absent.
fn remove_leftover_temporary(vfs: &dyn Vfs, dir: &Path, name: &str) -> Result<()> {
    let tmp_name = format!("{name}.tmp");
    let path = dir.join(&tmp_name);
    let len = match vfs.file_size(&path) {
        Ok(len) => len,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(tmp_name, e)),
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX).min(crate::format::MAX_KEYSLOTS_FILE_LEN);
    let file = vfs.open_for_overwrite(&path).map_err(|e| Error::io(tmp_name.clone(), e))?;
    file.append(&vec![0u8; len]).map_err(|e| Error::io(tmp_name.clone(), e))?;
    file.sync().map_err(|e| Error::io(tmp_name.clone(), e))?;
    drop(file);
    vfs.remove_file(&path).map_err(|e| Error::io(tmp_name, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io(".", e))
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
mod key_files_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod test_support;
