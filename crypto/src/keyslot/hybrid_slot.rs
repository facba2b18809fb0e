//! Keyslot kind 3: the master key wrapped under a secret encapsulated to a hybrid
//! X25519 + ML-KEM-768 public key (X-Wing combiner). A device slot is opened by the
//! device's [`HybridSecretKey`]; a recovery slot also carries its ML-KEM-768 secret
//! key, sealed under a key derived from the recovery secret, and is opened by the
//! [`RecoveryKey`] alone.
//!
//! Body: variant u8 | recipient fingerprint (32) | X25519 ephemeral public key (32) |
//! ML-KEM-768 ciphertext (1088) | [recovery only: nonce (12) | sealed ML-KEM secret
//! key (2400 + 16)] | nonce (12) | wrapped MK (32 + 16). Everything before the last
//! nonce is bound into the wrap's AAD. Layout: `crypto/FORMAT.md`, "Slot kind 3".

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::Zeroizing;

use super::{slot_aad, Slot, SlotKind};
use crate::codec::hkdf_sha256;
use crate::error::{Error, Result};
use crate::format::{
    AEAD_TAG_LEN, FINGERPRINT_LEN, HYBRID_DEVICE_BODY_LEN, HYBRID_RECOVERY_BODY_LEN, HYBRID_SLOT_PREFIX_LEN,
    HYBRID_VARIANT_DEVICE, HYBRID_VARIANT_RECOVERY, MLKEM_SECRET_KEY_LEN, NONCE_LEN, SLOT_WRAPPED_MK_LEN,
    STORE_ID_LEN, X25519_LEN,
};
use crate::hybrid::{generate_with_x25519, Encapsulated, HybridPublicKey, HybridSecretKey};
use crate::keys::{fill_random, MasterKey};
use crate::recovery::RecoveryKey;

/// HKDF info turning the combined secret into the slot's key-encryption key.
const HYBRID_KEK_INFO: &[u8] = b"synapsed-storage hybrid slot";

/// Offset of the fingerprint, the X25519 ciphertext and the ML-KEM ciphertext.
const FINGERPRINT_AT: usize = 1;
const CT_X_AT: usize = FINGERPRINT_AT + FINGERPRINT_LEN;
const CT_M_AT: usize = CT_X_AT + X25519_LEN;
/// Bytes bound into the AAD of the recovery section's seal: variant and fingerprint.
const SEAL_AAD_LEN: usize = CT_X_AT;

/// The body length a hybrid slot of this variant must have, or `None` for a variant
/// this build does not know.
pub(super) fn body_len(body: &[u8]) -> Option<usize> {
    match body.first().copied() {
        Some(HYBRID_VARIANT_DEVICE) => Some(HYBRID_DEVICE_BODY_LEN),
        Some(HYBRID_VARIANT_RECOVERY) => Some(HYBRID_RECOVERY_BODY_LEN),
        _ => None,
    }
}

/// The recipient fingerprint of a hybrid slot body.
pub(super) fn fingerprint(body: &[u8]) -> Option<[u8; FINGERPRINT_LEN]> {
    let mut fp = [0u8; FINGERPRINT_LEN];
    fp.copy_from_slice(body.get(FINGERPRINT_AT..CT_X_AT)?);
    Some(fp)
}

/// Whether a hybrid slot body is a recovery slot.
pub(super) fn is_recovery(body: &[u8]) -> bool {
    body.first() == Some(&HYBRID_VARIANT_RECOVERY)
}

/// A device slot for `recipient`.
pub(super) fn make_device_slot(
    master: &MasterKey,
    store_id: &[u8; STORE_ID_LEN],
    recipient: &HybridPublicKey,
) -> Result<Slot> {
    let mut body = Vec::with_capacity(HYBRID_DEVICE_BODY_LEN);
    body.push(HYBRID_VARIANT_DEVICE);
    body.extend_from_slice(&recipient.fingerprint());
    finish(master, store_id, recipient, body, None)
}

/// A recovery slot: a fresh ML-KEM-768 keypair, the X25519 key derived from the
/// recovery secret, and the ML-KEM secret key sealed under the recovery secret.
pub(super) fn make_recovery_slot(
    master: &MasterKey,
    store_id: &[u8; STORE_ID_LEN],
    recovery: &RecoveryKey,
) -> Result<Slot> {
    let secret = generate_with_x25519(recovery.x25519_secret());
    let recipient = secret.public_key();
    let mut body = Vec::with_capacity(HYBRID_RECOVERY_BODY_LEN);
    body.push(HYBRID_VARIANT_RECOVERY);
    body.extend_from_slice(&recipient.fingerprint());
    let aad = slot_aad(store_id, SlotKind::Hybrid, &body);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    // Reserved up front so encryption never reallocates and leaves a plaintext copy behind.
    let mut sealed = Zeroizing::new(Vec::with_capacity(MLKEM_SECRET_KEY_LEN + AEAD_TAG_LEN));
    sealed.extend_from_slice(secret.mlkem_bytes());
    let key = recovery.seal_key();
    if Aes256GcmSiv::new((&*key).into()).encrypt_in_place(Nonce::from_slice(&nonce), &aad, &mut *sealed).is_err() {
        unreachable!("AES-GCM-SIV refused a 2400-byte message");
    }
    finish(master, store_id, recipient, body, Some((nonce, sealed.to_vec())))
}

/// Appends the encapsulation (and the recovery section), then wraps the master key.
fn finish(
    master: &MasterKey,
    store_id: &[u8; STORE_ID_LEN],
    recipient: &HybridPublicKey,
    mut body: Vec<u8>,
    recovery_section: Option<([u8; NONCE_LEN], Vec<u8>)>,
) -> Result<Slot> {
    let Encapsulated { shared, ct_x, ct_m } = recipient.encapsulate()?;
    body.extend_from_slice(&ct_x);
    body.extend_from_slice(&ct_m);
    debug_assert_eq!(body.len(), HYBRID_SLOT_PREFIX_LEN);
    if let Some((nonce, sealed)) = recovery_section {
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
    }
    let aad = slot_aad(store_id, SlotKind::Hybrid, &body);
    let kek = kek(&shared);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    let mut buf = Zeroizing::new(Vec::with_capacity(SLOT_WRAPPED_MK_LEN));
    buf.extend_from_slice(master.as_bytes());
    if Aes256GcmSiv::new((&*kek).into()).encrypt_in_place(Nonce::from_slice(&nonce), &aad, &mut *buf).is_err() {
        unreachable!("AES-GCM-SIV refused a 32-byte message");
    }
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&buf);
    debug_assert_eq!(Some(body.len()), body_len(&body));
    Ok(Slot { kind: SlotKind::Hybrid as u8, body })
}

fn kek(shared: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut kek = Zeroizing::new([0u8; 32]);
    hkdf_sha256(shared, None, HYBRID_KEK_INFO, &mut kek[..]);
    kek
}

/// What trying a credential on one hybrid slot gave.
pub(super) enum Opened {
    /// The slot was made for another key (or the recovery key is not this one).
    NotMine,
    /// The unwrapped master key.
    Key(Zeroizing<[u8; 32]>),
    /// The slot names this credential's key yet fails to open: it was altered.
    Tampered(&'static str),
}

/// Tries `credential` (a hybrid secret key or a recovery key) on a hybrid slot body
/// whose length was checked by the decoder.
pub(super) fn open(body: &[u8], store_id: &[u8; STORE_ID_LEN], credential: &super::Credential) -> Opened {
    let owned;
    let secret: &HybridSecretKey = match credential {
        super::Credential::Hybrid(key) => {
            if is_recovery(body) || fingerprint(body) != Some(key.public_key().fingerprint()) {
                return Opened::NotMine;
            }
            key
        }
        super::Credential::Recovery(recovery) => {
            if !is_recovery(body) {
                return Opened::NotMine;
            }
            match unseal_recovery_secret(body, store_id, recovery) {
                Ok(Some(key)) => {
                    owned = key;
                    &owned
                }
                Ok(None) => return Opened::NotMine,
                Err(reason) => return Opened::Tampered(reason),
            }
        }
        _ => return Opened::NotMine,
    };
    let (Some(ct_x), Some(ct_m)) = (
        body.get(CT_X_AT..CT_M_AT).and_then(|b| <[u8; X25519_LEN]>::try_from(b).ok()),
        body.get(CT_M_AT..HYBRID_SLOT_PREFIX_LEN),
    ) else {
        return Opened::Tampered("the slot is too short for its ciphertexts");
    };
    let Some(shared) = secret.decapsulate(&ct_x, ct_m) else {
        return Opened::Tampered("the ML-KEM-768 ciphertext is malformed");
    };
    let wrap_at = body.len().saturating_sub(NONCE_LEN + SLOT_WRAPPED_MK_LEN);
    let (Some(header), Some(nonce), Some(wrapped)) =
        (body.get(..wrap_at), body.get(wrap_at..wrap_at + NONCE_LEN), body.get(wrap_at + NONCE_LEN..))
    else {
        return Opened::Tampered("the slot is too short for its wrapped key");
    };
    let aad = slot_aad(store_id, SlotKind::Hybrid, header);
    let mut buf = Zeroizing::new(wrapped.to_vec());
    let kek = kek(&shared);
    if Aes256GcmSiv::new((&*kek).into()).decrypt_in_place(Nonce::from_slice(nonce), &aad, &mut *buf).is_err() {
        return Opened::Tampered("the wrapped master key failed authentication under the key the slot names");
    }
    let mut key = Zeroizing::new([0u8; 32]);
    match buf.get(..) {
        Some(b) if b.len() == 32 => key.copy_from_slice(b),
        _ => return Opened::Tampered("the slot wraps a key of the wrong length"),
    }
    Opened::Key(key)
}

/// Opens a recovery slot's sealed ML-KEM secret key. `Ok(None)`: this recovery key
/// does not open it. `Err`: it opens, yet what it holds does not fit the slot.
fn unseal_recovery_secret(
    body: &[u8],
    store_id: &[u8; STORE_ID_LEN],
    recovery: &RecoveryKey,
) -> std::result::Result<Option<HybridSecretKey>, &'static str> {
    let section_at = HYBRID_SLOT_PREFIX_LEN;
    let sealed_at = section_at + NONCE_LEN;
    let sealed_end = sealed_at + MLKEM_SECRET_KEY_LEN + AEAD_TAG_LEN;
    let (Some(seal_aad_bytes), Some(nonce), Some(sealed)) =
        (body.get(..SEAL_AAD_LEN), body.get(section_at..sealed_at), body.get(sealed_at..sealed_end))
    else {
        return Err("the recovery section is truncated");
    };
    let aad = slot_aad(store_id, SlotKind::Hybrid, seal_aad_bytes);
    let mut buf = Zeroizing::new(sealed.to_vec());
    let key = recovery.seal_key();
    if Aes256GcmSiv::new((&*key).into()).decrypt_in_place(Nonce::from_slice(nonce), &aad, &mut *buf).is_err() {
        return Ok(None);
    }
    let secret = HybridSecretKey::from_parts(recovery.x25519_secret(), buf)
        .ok_or("the sealed ML-KEM-768 key fails its internal hash check")?;
    if fingerprint(body) != Some(secret.public_key().fingerprint()) {
        return Err("the recovery key's public key does not match the slot's fingerprint");
    }
    Ok(Some(secret))
}

/// Error for a slot that failed as [`Opened::Tampered`].
pub(super) fn tampered(file: &str, offset: u64, index: usize, reason: &str) -> Error {
    Error::corruption(file, offset, format!("hybrid keyslot {index} was altered: {reason}"))
}
