//! Keyslots (like LUKS): each slot wraps the master key under a key derived from one
//! credential. The `KEYSLOTS` file holds the store id, a key-check value and the slots.
//!
//! A passphrase slot derives its key-encryption key (KEK) with Argon2id, a raw-key
//! slot with HKDF-SHA256, a hybrid slot (kind 3, [`hybrid_slot`]) from an X25519 +
//! ML-KEM-768 encapsulation; the KEK wraps the master key with AES-256-GCM-SIV whose
//! AAD binds the file magic, version, store id, slot kind and the slot's parameters,
//! so a slot cannot be moved to another store or have its costs lowered. The file's
//! trailing crc32 is checked before anything else so that damage is reported as
//! corruption and never as a wrong passphrase. Unknown slot kinds are kept byte for
//! byte and skipped when unlocking.
//! Layout: `crypto/FORMAT.md`, section "KEYSLOTS".

use std::fmt;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::Zeroizing;

use crate::codec::{append_crc, check_trailing_crc, ct_eq, hkdf_sha256, Reader};
use crate::error::{Error, Result};
use crate::format::{
    AEAD_TAG_LEN, CRC_LEN, KCV_LEN, KEYSLOTS_COUNT_OFFSET, KEYSLOTS_FLAG_LEGACY_KEYRING, KEYSLOTS_FLAG_NEXT,
    KEYSLOTS_HEADER_LEN, KEYSLOTS_MAGIC, KEYSLOTS_SEALED_VERSION, KEYSLOTS_VERSION, MAX_SLOTS, NONCE_LEN,
    PASSPHRASE_BODY_LEN, PASSPHRASE_PARAMS_LEN, RAW_KEY_BODY_LEN, RAW_KEY_PARAMS_LEN, SLOT_FRAME_LEN, SLOT_SALT_LEN,
    SLOT_WRAPPED_MK_LEN, STORE_ID_LEN,
};
use crate::hybrid::HybridPublicKey;
use crate::keys::{fill_random, MasterKey};

mod credential;
mod hybrid_slot;
use credential::derive_kek;
pub use credential::{Argon2Params, Credential, SlotInfo, SlotKind};

/// HKDF info of the key-check value.
const KCV_INFO: &[u8] = b"synapsed-storage kcv";
/// HKDF info of the key that seals a version-2 file (its tag is the file's MAC).
const SEAL_INFO: &[u8] = b"synapsed-storage keyslots seal";
/// Name used in errors when a file was built in memory rather than read.
const DEFAULT_FILE_NAME: &str = "KEYSLOTS";

/// One slot as stored: kind byte and body, kept verbatim so unknown kinds survive a rewrite.
#[derive(Clone)]
struct Slot {
    kind: u8,
    body: Vec<u8>,
}

impl Slot {
    /// Length of the part of a KEK slot's body that is bound into the AAD
    /// (parameters and salt); `None` for hybrid slots, which have no salt.
    fn params_len(kind: SlotKind) -> Option<usize> {
        match kind {
            SlotKind::Passphrase => Some(PASSPHRASE_PARAMS_LEN),
            SlotKind::RawKey => Some(RAW_KEY_PARAMS_LEN),
            SlotKind::Hybrid => None,
        }
    }

    /// The body length a slot of a known kind must have; `None` for a hybrid slot
    /// of a variant this build does not know.
    fn expected_body_len(kind: SlotKind, body: &[u8]) -> Option<usize> {
        match kind {
            SlotKind::Passphrase => Some(PASSPHRASE_BODY_LEN),
            SlotKind::RawKey => Some(RAW_KEY_BODY_LEN),
            SlotKind::Hybrid => hybrid_slot::body_len(body),
        }
    }

    /// Argon2 parameters of a passphrase slot body (its first 12 bytes).
    fn argon2_params(&self) -> Option<Argon2Params> {
        if SlotKind::from_u8(self.kind) != Some(SlotKind::Passphrase) {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(self.body.get(i * 4..i * 4 + 4)?);
            Some(u32::from_le_bytes(w))
        };
        Some(Argon2Params { m_cost_kib: word(0)?, t_cost: word(1)?, p_cost: word(2)? })
    }

    /// Splits a passphrase or raw-key body into its fields.
    fn parts(&self, kind: SlotKind) -> Option<SlotParts<'_>> {
        let params_len = Slot::params_len(kind)?;
        if Some(self.body.len()) != Slot::expected_body_len(kind, &self.body) {
            return None;
        }
        let params_and_salt = self.body.get(..params_len)?;
        Some(SlotParts {
            params_and_salt,
            salt: params_and_salt.get(params_len - SLOT_SALT_LEN..)?,
            nonce: self.body.get(params_len..params_len + NONCE_LEN)?,
            wrapped: self.body.get(params_len + NONCE_LEN..)?,
        })
    }
}

/// The fields of a known-kind slot body.
struct SlotParts<'a> {
    /// Everything before the nonce: bound into the AAD.
    params_and_salt: &'a [u8],
    salt: &'a [u8],
    nonce: &'a [u8],
    wrapped: &'a [u8],
}

/// The parsed `KEYSLOTS` file.
#[derive(Clone)]
pub struct KeyslotFile {
    pub(crate) store_id: [u8; 16],
    kcv: [u8; KCV_LEN],
    slots: Vec<Slot>,
    /// Name used in errors (the name the file was read under).
    file: String,
    /// 1 for a file of the first layout (no seal), 2 otherwise.
    version: u8,
    /// A version-2 file's seal as read: the bytes it authenticates (everything
    /// before the sealed keys) and the sealed keys with their tag. `None` for
    /// version 1 and for files built in memory.
    seal: Option<RawSeal>,
}

#[derive(Clone)]
struct RawSeal {
    aad: Vec<u8>,
    generation: u64,
    flags: u8,
    nonce: [u8; NONCE_LEN],
    sealed: Vec<u8>,
}

/// What a version-2 `KEYSLOTS` seals under the master key: the generation of the
/// `KEYRING` it pairs with and the keyring key(s) that open it.
pub(crate) struct KeyState {
    /// The generation of the `KEYRING` sealed under `keyring_key`.
    pub(crate) generation: u64,
    /// The key the current `KEYRING` is sealed under (see `Keyring::seal_v2`).
    pub(crate) keyring_key: Zeroizing<[u8; 32]>,
    /// Set while a key-file change is under way: the `KEYRING` of generation
    /// `generation + 1` is sealed under this key.
    pub(crate) next: Option<Zeroizing<[u8; 32]>>,
    /// Set while an upgrade is under way: the `KEYRING` may still be version 1.
    pub(crate) legacy_keyring: bool,
}

/// The key that seals (authenticates) a version-2 file.
fn seal_key(master: &MasterKey) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(master.as_bytes(), None, SEAL_INFO, &mut key[..]);
    key
}

impl fmt::Debug for KeyslotFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyslotFile")
            .field("file", &self.file)
            .field("store_id", &hex(&self.store_id))
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key-check value of `master`: lets an unlock confirm the unwrapped key is this store's.
fn key_check_value(master: &MasterKey) -> [u8; KCV_LEN] {
    let mut kcv = [0u8; KCV_LEN];
    hkdf_sha256(master.as_bytes(), None, KCV_INFO, &mut kcv);
    kcv
}

/// AAD of a slot's wrap: magic || version || store id || kind || parameters and salt.
fn slot_aad(store_id: &[u8; STORE_ID_LEN], kind: SlotKind, params: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(KEYSLOTS_MAGIC.len() + 1 + STORE_ID_LEN + 1 + params.len());
    aad.extend_from_slice(&KEYSLOTS_MAGIC);
    aad.push(KEYSLOTS_VERSION);
    aad.extend_from_slice(store_id);
    aad.push(kind as u8);
    aad.extend_from_slice(params);
    aad
}

/// Builds a new slot wrapping `master` for `credential`.
fn make_slot(
    master: &MasterKey,
    store_id: &[u8; STORE_ID_LEN],
    credential: &Credential,
    params: &Argon2Params,
) -> Result<Slot> {
    credential.check()?;
    match credential {
        Credential::Hybrid(secret) => return hybrid_slot::make_device_slot(master, store_id, secret.public_key()),
        Credential::Recovery(recovery) => return hybrid_slot::make_recovery_slot(master, store_id, recovery),
        Credential::Passphrase(_) | Credential::RawKey(_) => {}
    }
    let kind = credential.slot_kind();
    let mut salt = [0u8; SLOT_SALT_LEN];
    fill_random(&mut salt);
    let mut body = Vec::with_capacity(PASSPHRASE_BODY_LEN);
    if kind == SlotKind::Passphrase {
        params.validate().map_err(Error::InvalidArgument)?;
        body.extend_from_slice(&params.m_cost_kib.to_le_bytes());
        body.extend_from_slice(&params.t_cost.to_le_bytes());
        body.extend_from_slice(&params.p_cost.to_le_bytes());
    }
    body.extend_from_slice(&salt);
    let kek = derive_kek(credential, Some(params), &salt).map_err(Error::InvalidArgument)?;
    let aad = slot_aad(store_id, kind, &body);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    // Reserved up front so encryption never reallocates and leaves a plaintext copy behind.
    let mut buf = Zeroizing::new(Vec::with_capacity(SLOT_WRAPPED_MK_LEN));
    buf.extend_from_slice(master.as_bytes());
    let cipher = Aes256GcmSiv::new((&*kek).into());
    if cipher.encrypt_in_place(Nonce::from_slice(&nonce), &aad, &mut *buf).is_err() {
        unreachable!("AES-GCM-SIV refused a 32-byte message");
    }
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&buf);
    debug_assert_eq!(Some(body.len()), Slot::expected_body_len(kind, &body));
    Ok(Slot { kind: kind as u8, body })
}

impl KeyslotFile {
    /// Makes a new keyslot file for a fresh `master` key with one slot for `credential`.
    /// `params` is used only by a passphrase slot.
    pub fn create(
        master: &MasterKey,
        store_id: [u8; 16],
        credential: &Credential,
        params: &Argon2Params,
    ) -> Result<Self> {
        let slot = make_slot(master, &store_id, credential, params)?;
        Ok(KeyslotFile {
            store_id,
            kcv: key_check_value(master),
            slots: vec![slot],
            file: DEFAULT_FILE_NAME.into(),
            version: KEYSLOTS_SEALED_VERSION,
            seal: None,
        })
    }

    /// Parses the file bytes; checks integrity (a damaged file is corruption, not a wrong key).
    pub fn decode(bytes: &[u8], file: &str) -> Result<Self> {
        let body = check_trailing_crc(bytes, KEYSLOTS_HEADER_LEN + CRC_LEN, file)?;
        let mut r = Reader::new(body, file);
        if r.array::<8>("the magic")? != KEYSLOTS_MAGIC {
            return Err(Error::corruption(file, 0, "bad magic: not a KEYSLOTS file"));
        }
        let version = r.u8("the version")?;
        if version != KEYSLOTS_VERSION && version != KEYSLOTS_SEALED_VERSION {
            if version > KEYSLOTS_SEALED_VERSION {
                return Err(Error::UnsupportedVersion {
                    file: file.into(),
                    found: version,
                    supported: KEYSLOTS_SEALED_VERSION,
                });
            }
            return Err(Error::corruption(file, 8, format!("bad KEYSLOTS version {version}")));
        }
        let store_id = r.array::<STORE_ID_LEN>("the store id")?;
        let kcv = r.array::<KCV_LEN>("the key-check value")?;
        let count = usize::from(r.u8("the slot count")?);
        if count == 0 || count > MAX_SLOTS {
            return Err(Error::corruption(
                file,
                KEYSLOTS_COUNT_OFFSET as u64,
                format!("slot count {count} outside 1..={MAX_SLOTS}"),
            ));
        }
        let mut slots = Vec::with_capacity(count);
        for index in 0..count {
            let offset = r.pos() as u64;
            let kind = r.u8("a slot kind")?;
            let len = usize::from(r.u16("a slot length")?);
            let slot = Slot { kind, body: r.take(len, "a slot body")?.to_vec() };
            if let Some(known) = SlotKind::from_u8(kind) {
                match Slot::expected_body_len(known, &slot.body) {
                    Some(expected) if expected == len => {}
                    Some(expected) => {
                        return Err(Error::corruption(
                            file,
                            offset,
                            format!("slot {index} ({known:?}) has a {len}-byte body, expected {expected}"),
                        ))
                    }
                    None => {
                        return Err(Error::corruption(
                            file,
                            offset,
                            format!("slot {index} ({known:?}) is of an unknown variant"),
                        ))
                    }
                }
                if let Some(p) = slot.argon2_params() {
                    p.validate()
                        .map_err(|reason| Error::corruption(file, offset, format!("slot {index}: {reason}")))?;
                }
            }
            slots.push(slot);
        }
        let seal = if version == KEYSLOTS_SEALED_VERSION {
            let generation = r.u64("the generation")?;
            let flags_at = r.pos() as u64;
            let flags = r.u8("the flags")?;
            if flags & !(KEYSLOTS_FLAG_NEXT | KEYSLOTS_FLAG_LEGACY_KEYRING) != 0 {
                return Err(Error::corruption(file, flags_at, format!("unknown flags {flags:#04x}")));
            }
            let nonce = r.array::<NONCE_LEN>("the seal's nonce")?;
            let aad = body.get(..r.pos()).unwrap_or_default().to_vec();
            let keys = if flags & KEYSLOTS_FLAG_NEXT != 0 { 2 } else { 1 };
            let sealed = r.take(keys * 32 + AEAD_TAG_LEN, "the sealed keyring key")?.to_vec();
            Some(RawSeal { aad, generation, flags, nonce, sealed })
        } else {
            None
        };
        if r.remaining() != 0 {
            return Err(Error::corruption(file, r.pos() as u64, "bytes after the last slot"));
        }
        Ok(KeyslotFile { store_id, kcv, slots, file: file.into(), version, seal })
    }

    /// Whether the file as read is of the current layout with no key-file change
    /// or upgrade under way (version 2, no flags).
    pub(crate) fn is_settled(&self) -> bool {
        self.version == KEYSLOTS_SEALED_VERSION && self.seal.as_ref().is_some_and(|s| s.flags == 0)
    }

    /// Checks a version-2 file's seal under `master` (the key a slot unwrapped)
    /// and returns what it holds; `None` for a version-1 file. A failed tag means
    /// the slot set, the generation or the flags were changed since this store
    /// wrote the file (a slot dropped, reordered or put back): corruption.
    pub(crate) fn open_seal(&self, master: &MasterKey) -> Result<Option<KeyState>> {
        let Some(seal) = &self.seal else { return Ok(None) };
        let mut keys = Zeroizing::new(seal.sealed.clone());
        let key = seal_key(master);
        let cipher = Aes256GcmSiv::new((&*key).into());
        cipher.decrypt_in_place(Nonce::from_slice(&seal.nonce), &seal.aad, &mut *keys).map_err(|_| {
            Error::corruption(
                &self.file,
                seal.aad.len() as u64,
                "the keyslot set failed authentication under the master key \
                 (slots dropped, reordered or put back, or the file assembled from parts)",
            )
        })?;
        let key_at = |i: usize| {
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(keys.get(i * 32..i * 32 + 32)?);
            Some(k)
        };
        let keyring_key = key_at(0).ok_or_else(|| Error::corruption(&self.file, 0, "short keyring key"))?;
        let next = if seal.flags & KEYSLOTS_FLAG_NEXT != 0 { key_at(1) } else { None };
        Ok(Some(KeyState {
            generation: seal.generation,
            keyring_key,
            next,
            legacy_keyring: seal.flags & KEYSLOTS_FLAG_LEGACY_KEYRING != 0,
        }))
    }

    /// Serializes the file as version 2 with `state` sealed under `master`; the
    /// seal's tag authenticates every byte before it (the slot set included).
    pub(crate) fn encode_sealed(&self, master: &MasterKey, state: &KeyState) -> Vec<u8> {
        let mut out = self.encode_unsealed(KEYSLOTS_SEALED_VERSION);
        out.extend_from_slice(&state.generation.to_le_bytes());
        let mut flags = 0u8;
        if state.next.is_some() {
            flags |= KEYSLOTS_FLAG_NEXT;
        }
        if state.legacy_keyring {
            flags |= KEYSLOTS_FLAG_LEGACY_KEYRING;
        }
        out.push(flags);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        out.extend_from_slice(&nonce);
        // Reserved up front so encryption never reallocates and leaves plaintext keys behind.
        let mut keys = Zeroizing::new(Vec::with_capacity(2 * 32 + AEAD_TAG_LEN));
        keys.extend_from_slice(&state.keyring_key[..]);
        if let Some(next) = &state.next {
            keys.extend_from_slice(&next[..]);
        }
        let key = seal_key(master);
        let cipher = Aes256GcmSiv::new((&*key).into());
        if cipher.encrypt_in_place(Nonce::from_slice(&nonce), &out, &mut *keys).is_err() {
            unreachable!("AES-GCM-SIV refused 64 bytes");
        }
        out.extend_from_slice(&keys);
        append_crc(&mut out);
        out
    }

    /// Serializes the file as it was read: a version-1 file in the first layout,
    /// a version-2 file with its seal as read (valid only while the slots are
    /// unchanged; writers use [`KeyslotFile::encode_sealed`]). A file built in
    /// memory is written in the first layout (worked examples, tests).
    pub fn encode(&self) -> Vec<u8> {
        match &self.seal {
            Some(seal) if self.version == KEYSLOTS_SEALED_VERSION => {
                let mut out = self.encode_unsealed(KEYSLOTS_SEALED_VERSION);
                out.extend_from_slice(&seal.generation.to_le_bytes());
                out.push(seal.flags);
                out.extend_from_slice(&seal.nonce);
                out.extend_from_slice(&seal.sealed);
                append_crc(&mut out);
                out
            }
            _ => {
                let mut out = self.encode_unsealed(KEYSLOTS_VERSION);
                append_crc(&mut out);
                out
            }
        }
    }

    /// Header and slots, without the seal and the crc.
    fn encode_unsealed(&self, version: u8) -> Vec<u8> {
        let slots_len: usize = self.slots.iter().map(|s| SLOT_FRAME_LEN + s.body.len()).sum();
        let mut out = Vec::with_capacity(KEYSLOTS_HEADER_LEN + slots_len + CRC_LEN);
        out.extend_from_slice(&KEYSLOTS_MAGIC);
        out.push(version);
        out.extend_from_slice(&self.store_id);
        out.extend_from_slice(&self.kcv);
        // Invariant kept by create/decode/add_slot/remove_slot: 1..=MAX_SLOTS slots,
        // bodies no longer than u16::MAX.
        debug_assert!(!self.slots.is_empty() && self.slots.len() <= MAX_SLOTS);
        out.push(u8::try_from(self.slots.len()).unwrap_or(u8::MAX));
        for slot in &self.slots {
            out.push(slot.kind);
            out.extend_from_slice(&u16::try_from(slot.body.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(&slot.body);
        }
        out
    }

    /// Tries every slot that fits the credential; `Error::WrongKey` if none opens.
    pub fn unlock(&self, credential: &Credential) -> Result<MasterKey> {
        self.open_slot(credential).map(|(_, mk)| mk)
    }

    /// The index of the slot `credential` opens (e.g. to remove it after a
    /// passphrase change); `Error::WrongKey` if none does.
    pub fn find_slot(&self, credential: &Credential) -> Result<usize> {
        self.open_slot(credential).map(|(index, _)| index)
    }

    /// The index of the slot `credential` opens and the master key it unwraps.
    pub(crate) fn open_slot(&self, credential: &Credential) -> Result<(usize, MasterKey)> {
        credential.check()?;
        let kind = credential.slot_kind();
        let mut mismatch = None;
        let mut tampered = None;
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.kind != kind as u8 {
                continue;
            }
            let offset = self.slot_offset(index);
            if kind == SlotKind::Hybrid {
                match hybrid_slot::open(&slot.body, &self.store_id, credential) {
                    hybrid_slot::Opened::NotMine => {}
                    hybrid_slot::Opened::Tampered(reason) => {
                        // Remembered, not returned: another slot for the same key may still open.
                        tampered.get_or_insert((index, offset, reason));
                    }
                    hybrid_slot::Opened::Key(raw) => {
                        let master = MasterKey::from_bytes(*raw);
                        if !ct_eq(&key_check_value(&master), &self.kcv) {
                            mismatch = Some((index, offset));
                            continue;
                        }
                        return Ok((index, master));
                    }
                }
                continue;
            }
            let SlotParts { params_and_salt, salt, nonce, wrapped } = slot
                .parts(kind)
                .ok_or_else(|| Error::corruption(&self.file, offset, format!("slot {index} is malformed")))?;
            let argon = slot.argon2_params();
            let kek = derive_kek(credential, argon.as_ref(), salt)
                .map_err(|reason| Error::corruption(&self.file, offset, format!("slot {index}: {reason}")))?;
            let aad = slot_aad(&self.store_id, kind, params_and_salt);
            let mut buf = Zeroizing::new(wrapped.to_vec());
            let cipher = Aes256GcmSiv::new((&*kek).into());
            if cipher.decrypt_in_place(Nonce::from_slice(nonce), &aad, &mut *buf).is_err() {
                // Another credential's slot, or this credential is wrong: try the next one.
                continue;
            }
            let mut raw = Zeroizing::new([0u8; 32]);
            match buf.get(..32) {
                Some(b) if buf.len() == 32 => raw.copy_from_slice(b),
                _ => {
                    return Err(Error::corruption(
                        &self.file,
                        offset,
                        format!("slot {index} wraps a key of the wrong length"),
                    ))
                }
            }
            let master = MasterKey::from_bytes(*raw);
            if !ct_eq(&key_check_value(&master), &self.kcv) {
                mismatch = Some((index, offset));
                continue;
            }
            return Ok((index, master));
        }
        match mismatch {
            // The slot authenticated under this credential, yet holds another key than
            // the one the file vouches for: the file was assembled from parts.
            Some((index, offset)) => Err(Error::corruption(
                &self.file,
                offset,
                format!("slot {index} unwraps to a key that does not match the key-check value"),
            )),
            None => match tampered {
                Some((index, offset, reason)) => Err(hybrid_slot::tampered(&self.file, offset, index, reason)),
                None => Err(Error::WrongKey),
            },
        }
    }

    /// Adds a slot wrapping `master` for `credential` and returns its index. `master`
    /// must be this store's key (checked against the key-check value).
    pub fn add_slot(&mut self, master: &MasterKey, credential: &Credential, params: &Argon2Params) -> Result<usize> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::InvalidArgument(format!("a store holds at most {MAX_SLOTS} keyslots")));
        }
        if !ct_eq(&key_check_value(master), &self.kcv) {
            return Err(Error::InvalidArgument("the master key does not belong to this store".into()));
        }
        let slot = make_slot(master, &self.store_id, credential, params)?;
        self.slots.push(slot);
        Ok(self.slots.len() - 1)
    }

    /// Adds a slot for `credential` and removes the slots at `remove` as one change
    /// (a passphrase change, a new recovery key); returns the new slot's index.
    /// `master` must be this store's key.
    pub fn replace_slots(
        &mut self,
        master: &MasterKey,
        remove: &[usize],
        credential: &Credential,
        params: &Argon2Params,
    ) -> Result<usize> {
        if let Some(bad) = remove.iter().find(|&&i| i >= self.slots.len()) {
            return Err(Error::InvalidArgument(format!("no keyslot {bad} (the store has {})", self.slots.len())));
        }
        if !ct_eq(&key_check_value(master), &self.kcv) {
            return Err(Error::InvalidArgument("the master key does not belong to this store".into()));
        }
        let slot = make_slot(master, &self.store_id, credential, params)?;
        let mut kept: Vec<Slot> =
            self.slots.iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, s)| s.clone()).collect();
        if kept.len() >= MAX_SLOTS {
            return Err(Error::InvalidArgument(format!("a store holds at most {MAX_SLOTS} keyslots")));
        }
        kept.push(slot);
        self.slots = kept;
        Ok(self.slots.len() - 1)
    }

    /// Adds a hybrid slot wrapping `master` for the holder of `recipient`'s secret
    /// key (another device) and returns its index. `master` must be this store's key.
    pub fn add_hybrid_slot(&mut self, master: &MasterKey, recipient: &HybridPublicKey) -> Result<usize> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(Error::InvalidArgument(format!("a store holds at most {MAX_SLOTS} keyslots")));
        }
        if !ct_eq(&key_check_value(master), &self.kcv) {
            return Err(Error::InvalidArgument("the master key does not belong to this store".into()));
        }
        let slot = hybrid_slot::make_device_slot(master, &self.store_id, recipient)?;
        self.slots.push(slot);
        Ok(self.slots.len() - 1)
    }

    /// Removes the slot at `index` (later slots move down by one). Refuses to remove
    /// the last slot this build can unlock, which would lock the store forever.
    pub fn remove_slot(&mut self, index: usize) -> Result<SlotInfo> {
        let info = self.slots().into_iter().nth(index).ok_or_else(|| {
            Error::InvalidArgument(format!("no keyslot {index} (the store has {})", self.slots.len()))
        })?;
        let usable_left =
            self.slots.iter().enumerate().filter(|(i, s)| *i != index && SlotKind::from_u8(s.kind).is_some()).count();
        if usable_left == 0 {
            return Err(Error::InvalidArgument("refusing to remove the last usable keyslot".into()));
        }
        self.slots.remove(index);
        Ok(info)
    }

    /// Describes the slots, in file order.
    pub fn slots(&self) -> Vec<SlotInfo> {
        self.slots
            .iter()
            .enumerate()
            .map(|(index, s)| SlotInfo {
                index,
                kind_code: s.kind,
                kind: SlotKind::from_u8(s.kind),
                argon2: s.argon2_params(),
                fingerprint: (s.kind == SlotKind::Hybrid as u8).then(|| hybrid_slot::fingerprint(&s.body)).flatten(),
                recovery: s.kind == SlotKind::Hybrid as u8 && hybrid_slot::is_recovery(&s.body),
            })
            .collect()
    }

    /// The store id this file belongs to.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }

    /// Whether `master` is the key this file's key-check value vouches for.
    pub fn matches(&self, master: &MasterKey) -> bool {
        ct_eq(&key_check_value(master), &self.kcv)
    }

    /// Byte offset of slot `index` in the encoded file, for error messages.
    fn slot_offset(&self, index: usize) -> u64 {
        let before: usize = self.slots.iter().take(index).map(|s| SLOT_FRAME_LEN + s.body.len()).sum();
        (KEYSLOTS_HEADER_LEN + before) as u64
    }

    /// A slot of a kind this build does not know, for tests of forward compatibility.
    #[cfg(test)]
    pub(crate) fn push_raw_slot(&mut self, kind: u8, body: Vec<u8>) {
        self.slots.push(Slot { kind, body });
    }
}

#[cfg(test)]
mod hybrid_tests;
#[cfg(test)]
mod tests;
