//! The keyring: the data-key epochs, sealed under a key derived from the master key
//! and kept in the `KEYRING` file. Rotation adds an epoch; shredding removes one.
//!
//! The body (current epoch and every (epoch, key) pair) is sealed with
//! AES-256-GCM-SIV under HKDF(MK, "synapsed-storage keyring") with the file's header
//! (magic, version, store id, nonce) as AAD, so a keyring cannot be opened under
//! another store's master key nor moved to another store. A trailing crc32 over the
//! whole file tells damage apart early and names the file. Layout: `crypto/FORMAT.md`,
//! section "KEYRING".

use std::collections::BTreeMap;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::Zeroizing;

use crate::codec::{append_crc, check_trailing_crc, hkdf_sha256, Reader};
use crate::error::{Error, Result};
use crate::format::{
    AEAD_TAG_LEN, KEYRING_BODY_PREFIX_LEN, KEYRING_ENTRY_LEN, KEYRING_HEADER_LEN, KEYRING_MAGIC, KEYRING_MIN_LEN,
    KEYRING_SEALED_VERSION, KEYRING_V2_BODY_PREFIX_LEN, KEYRING_V2_HEADER_LEN, KEYRING_VERSION, MAX_EPOCHS, NONCE_LEN,
    STORE_ID_LEN,
};
use crate::keys::{fill_random, DataKey, Epoch, MasterKey};

/// HKDF info of the key that seals the keyring.
const KEYRING_INFO: &[u8] = b"synapsed-storage keyring";

/// HKDF info of the integrity root given to a keyring that predates it (version 1).
const INTEGRITY_ROOT_INFO: &[u8] = b"synapsed-storage integrity root";

/// The store's data-key epochs; `current` wraps the keys of newly written files.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub(crate) epochs: BTreeMap<Epoch, DataKey>,
    pub(crate) current: Epoch,
    /// Counts the writes of `KEYRING` (version 2); 0 for a version-1 keyring.
    pub(crate) generation: u64,
    /// 32 random bytes made at `create` (derived from MK for a keyring that
    /// predates it), from which keys that must outlive a change of the keyring
    /// key are derived. Kept in the sealed body.
    pub(crate) integrity_root: IntegrityRoot,
}

/// The integrity root of a store (see [`Keyring`]); zeroized on drop.
#[derive(Clone)]
pub(crate) struct IntegrityRoot(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for IntegrityRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityRoot(<redacted>)")
    }
}

impl IntegrityRoot {
    fn random() -> Self {
        let mut root = Zeroizing::new([0u8; 32]);
        fill_random(&mut root[..]);
        IntegrityRoot(root)
    }

    /// The root given once to a keyring that predates it: HKDF-SHA256(ikm = MK,
    /// no salt, info = "synapsed-storage integrity root").
    pub(crate) fn legacy(master: &MasterKey) -> Self {
        let mut root = Zeroizing::new([0u8; 32]);
        hkdf_sha256(master.as_bytes(), None, INTEGRITY_ROOT_INFO, &mut root[..]);
        IntegrityRoot(root)
    }
}

/// The key that seals a version-2 keyring: HKDF-SHA256(ikm = keyring key, no
/// salt, info = "synapsed-storage keyring").
fn sealing_key_v2(keyring_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(keyring_key, None, KEYRING_INFO, &mut key[..]);
    key
}

fn sealing_key(master: &MasterKey) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(master.as_bytes(), None, KEYRING_INFO, &mut key[..]);
    key
}

impl Keyring {
    /// A keyring with one fresh random epoch (number 1).
    pub fn new_random() -> Self {
        let mut epochs = BTreeMap::new();
        epochs.insert(1, DataKey::random());
        Keyring { epochs, current: 1, generation: 0, integrity_root: IntegrityRoot::random() }
    }

    /// The version of a keyring file (its byte 8), if it has one; lets the caller
    /// pick the key to open it with.
    pub(crate) fn version_of(bytes: &[u8]) -> Option<u8> {
        bytes.get(8).copied()
    }

    /// The generation in a version-2 keyring's header, read without opening it
    /// (for error messages; the header is authenticated when the keyring opens).
    pub(crate) fn generation_of(bytes: &[u8]) -> Option<u64> {
        let start = 8 + 1 + STORE_ID_LEN;
        let mut g = [0u8; 8];
        g.copy_from_slice(bytes.get(start..start + 8)?);
        Some(u64::from_le_bytes(g))
    }

    /// Serializes the keyring as version 2, sealed under `keyring_key` (see
    /// `crypto/FORMAT.md`, section "KEYRING"), with its generation in the header.
    pub(crate) fn seal_v2(&self, keyring_key: &[u8; 32], store_id: &[u8; 16]) -> Vec<u8> {
        debug_assert!(self.epochs.contains_key(&self.current), "the current epoch is always in the keyring");
        debug_assert!(self.epochs.len() <= MAX_EPOCHS);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(KEYRING_V2_HEADER_LEN + KEYRING_V2_BODY_PREFIX_LEN + AEAD_TAG_LEN + 4);
        out.extend_from_slice(&KEYRING_MAGIC);
        out.push(KEYRING_SEALED_VERSION);
        out.extend_from_slice(store_id);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&nonce);
        debug_assert_eq!(out.len(), KEYRING_V2_HEADER_LEN);
        let body_len = KEYRING_V2_BODY_PREFIX_LEN + self.epochs.len() * KEYRING_ENTRY_LEN;
        // Reserved up front so encryption never reallocates and leaves plaintext keys behind.
        let mut body = Zeroizing::new(Vec::with_capacity(body_len + AEAD_TAG_LEN));
        body.extend_from_slice(&self.integrity_root.0[..]);
        self.push_entries(&mut body);
        seal_body(out, &nonce, body, &sealing_key_v2(keyring_key))
    }

    /// Current epoch, count, then every (epoch, key) pair: the body after any prefix.
    fn push_entries(&self, body: &mut Vec<u8>) {
        body.extend_from_slice(&self.current.to_le_bytes());
        body.extend_from_slice(&u32::try_from(self.epochs.len()).unwrap_or(u32::MAX).to_le_bytes());
        for (epoch, key) in &self.epochs {
            body.extend_from_slice(&epoch.to_le_bytes());
            body.extend_from_slice(key.as_bytes());
        }
    }

    /// Opens a version-2 keyring sealed under `keyring_key`; `file` names it in errors.
    pub(crate) fn open_v2(bytes: &[u8], keyring_key: &[u8; 32], store_id: &[u8; 16], file: &str) -> Result<Self> {
        let min = KEYRING_V2_HEADER_LEN + KEYRING_V2_BODY_PREFIX_LEN + AEAD_TAG_LEN + 4;
        let content = check_trailing_crc(bytes, min, file)?;
        let mut r = Reader::new(content, file);
        if r.array::<8>("the magic")? != KEYRING_MAGIC {
            return Err(Error::corruption(file, 0, "bad magic: not a KEYRING file"));
        }
        let version = r.u8("the version")?;
        if version != KEYRING_SEALED_VERSION {
            return Err(Error::corruption(file, 8, format!("expected KEYRING version 2, found {version}")));
        }
        let found_id = r.array::<STORE_ID_LEN>("the store id")?;
        if &found_id != store_id {
            return Err(Error::corruption(file, 9, "the keyring belongs to another store"));
        }
        let generation = u64::from_le_bytes(r.array::<8>("the generation")?);
        let body = open_body(&mut r, content, file, KEYRING_V2_HEADER_LEN, KEYRING_V2_BODY_PREFIX_LEN, &sealing_key_v2(keyring_key), || {
            format!(
                "keyring (generation {generation}) failed authentication under the keyring key of KEYSLOTS \
                 (damaged, an older copy put back, or another store's)"
            )
        })?;
        let mut br = Reader::new(&body, file);
        let root = IntegrityRoot(Zeroizing::new(br.array::<32>("the integrity root")?));
        let (epochs, current) = read_entries(&mut br, file, KEYRING_V2_HEADER_LEN + 32)?;
        Ok(Keyring { epochs, current, generation, integrity_root: root })
    }

    /// The epoch new files are written under.
    pub fn current(&self) -> Epoch {
        self.current
    }

    /// The data key of `epoch`, if the keyring still holds it.
    pub fn key(&self, epoch: Epoch) -> Option<&DataKey> {
        self.epochs.get(&epoch)
    }

    /// The epochs the keyring holds, oldest first.
    pub fn epochs(&self) -> Vec<Epoch> {
        self.epochs.keys().copied().collect()
    }

    /// Starts a new epoch with a fresh random key, makes it current and returns it.
    /// Epoch numbers only grow: the new one is one more than the highest ever held.
    ///
    /// # Panics
    /// If the epoch number would pass `u32::MAX` (four billion rotations).
    pub fn add_epoch(&mut self) -> Epoch {
        let highest = self.epochs.keys().next_back().copied().unwrap_or(0).max(self.current);
        let Some(next) = highest.checked_add(1) else {
            panic!("data-key epoch numbers exhausted");
        };
        self.epochs.insert(next, DataKey::random());
        self.current = next;
        next
    }

    /// Destroys the key of `epoch` (crypto-shredding: files under it become unreadable).
    /// Returns whether the epoch was present. The current epoch cannot be removed.
    pub fn remove_epoch(&mut self, epoch: Epoch) -> Result<bool> {
        if epoch == self.current {
            return Err(Error::InvalidArgument(format!("epoch {epoch} is the current epoch and cannot be removed")));
        }
        // DataKey zeroizes itself when dropped here.
        Ok(self.epochs.remove(&epoch).is_some())
    }

    /// Serializes and seals the keyring under `master` for the store `store_id`.
    pub fn seal(&self, master: &MasterKey, store_id: &[u8; 16]) -> Vec<u8> {
        debug_assert!(self.epochs.contains_key(&self.current), "the current epoch is always in the keyring");
        debug_assert!(self.epochs.len() <= MAX_EPOCHS);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(KEYRING_MIN_LEN + self.epochs.len() * KEYRING_ENTRY_LEN);
        out.extend_from_slice(&KEYRING_MAGIC);
        out.push(KEYRING_VERSION);
        out.extend_from_slice(store_id);
        out.extend_from_slice(&nonce);
        debug_assert_eq!(out.len(), KEYRING_HEADER_LEN);

        let body_len = KEYRING_BODY_PREFIX_LEN + self.epochs.len() * KEYRING_ENTRY_LEN;
        // Reserved up front so encryption never reallocates and leaves plaintext keys behind.
        let mut body = Zeroizing::new(Vec::with_capacity(body_len + AEAD_TAG_LEN));
        self.push_entries(&mut body);
        seal_body(out, &nonce, body, &sealing_key(master))
    }

    /// Opens a sealed keyring file; `file` names it in errors.
    pub fn open(bytes: &[u8], master: &MasterKey, store_id: &[u8; 16], file: &str) -> Result<Self> {
        let content = check_trailing_crc(bytes, KEYRING_MIN_LEN, file)?;
        let mut r = Reader::new(content, file);
        if r.array::<8>("the magic")? != KEYRING_MAGIC {
            return Err(Error::corruption(file, 0, "bad magic: not a KEYRING file"));
        }
        let version = r.u8("the version")?;
        if version != KEYRING_VERSION {
            if version > KEYRING_VERSION {
                return Err(Error::UnsupportedVersion {
                    file: file.into(),
                    found: version,
                    supported: KEYRING_VERSION,
                });
            }
            return Err(Error::corruption(file, 8, format!("bad KEYRING version {version}")));
        }
        let found_id = r.array::<STORE_ID_LEN>("the store id")?;
        if &found_id != store_id {
            return Err(Error::corruption(file, 9, "the keyring belongs to another store"));
        }
        let body = open_body(&mut r, content, file, KEYRING_HEADER_LEN, KEYRING_BODY_PREFIX_LEN, &sealing_key(master), || {
            "keyring failed authentication (damaged, or not sealed under this store's master key)".into()
        })?;
        let mut br = Reader::new(&body, file);
        let (epochs, current) = read_entries(&mut br, file, KEYRING_HEADER_LEN)?;
        Ok(Keyring { epochs, current, generation: 0, integrity_root: IntegrityRoot::legacy(master) })
    }
}

/// Seals `body` under `key` with the header `out` (ending in `nonce`) as AAD,
/// appends it and the crc: the keyring file of either version.
fn seal_body(mut out: Vec<u8>, nonce: &[u8; NONCE_LEN], mut body: Zeroizing<Vec<u8>>, key: &[u8; 32]) -> Vec<u8> {
    let cipher = Aes256GcmSiv::new(key.into());
    if cipher.encrypt_in_place(Nonce::from_slice(nonce), &out, &mut *body).is_err() {
        unreachable!("AES-GCM-SIV refused a keyring body below 1 MiB");
    }
    out.extend_from_slice(&body);
    append_crc(&mut out);
    out
}

/// Opens the sealed body that follows a keyring header of `header_len` bytes
/// (`r` stands just before the header's nonce): refuses a body longer than the
/// most epochs a keyring holds, then authenticates and decrypts it under `key`
/// with the header as AAD. `failed` gives the reason when the tag does not verify.
fn open_body(
    r: &mut Reader<'_>,
    content: &[u8],
    file: &str,
    header_len: usize,
    body_prefix_len: usize,
    key: &[u8; 32],
    failed: impl FnOnce() -> String,
) -> Result<Zeroizing<Vec<u8>>> {
    let nonce = r.array::<NONCE_LEN>("the nonce")?;
    let header = content.get(..header_len).unwrap_or_default();
    let sealed = r.take(r.remaining(), "the sealed body")?;
    let max_sealed = body_prefix_len + MAX_EPOCHS * KEYRING_ENTRY_LEN + AEAD_TAG_LEN;
    if sealed.len() > max_sealed {
        return Err(Error::corruption(file, header_len as u64, format!("sealed body of {} bytes exceeds the limit", sealed.len())));
    }
    let mut body = Zeroizing::new(sealed.to_vec());
    let cipher = Aes256GcmSiv::new(key.into());
    cipher
        .decrypt_in_place(Nonce::from_slice(&nonce), header, &mut *body)
        .map_err(|_| Error::corruption(file, header_len as u64, failed()))?;
    Ok(body)
}

/// Reads the current epoch, the count and the entries of an opened body; `base`
/// is the file offset where `br` starts, for error messages.
fn read_entries(br: &mut Reader<'_>, file: &str, base: usize) -> Result<(BTreeMap<Epoch, DataKey>, Epoch)> {
    {
        // Offsets below are reported relative to the file.
        let at = |pos: usize| (base + pos) as u64;
        let current = br.u32("the current epoch")?;
        let count = br.u32("the epoch count")?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count == 0 || count > MAX_EPOCHS || br.remaining() != count.saturating_mul(KEYRING_ENTRY_LEN) {
            return Err(Error::corruption(file, at(4), format!("epoch count {count} does not fit the body")));
        }
        let mut epochs = BTreeMap::new();
        let mut previous: Option<Epoch> = None;
        for _ in 0..count {
            let pos = br.pos();
            let epoch = br.u32("an epoch number")?;
            let dek = DataKey::from_bytes(br.array::<32>("a data key")?);
            if previous.is_some_and(|p| p >= epoch) {
                return Err(Error::corruption(file, at(pos), "epochs are not in strictly ascending order"));
            }
            previous = Some(epoch);
            epochs.insert(epoch, dek);
        }
        if !epochs.contains_key(&current) {
            return Err(Error::corruption(file, at(0), format!("current epoch {current} has no key")));
        }
        Ok((epochs, current))
    }
}

#[cfg(test)]
mod tests;
