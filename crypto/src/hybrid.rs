//! Hybrid post-quantum key encapsulation: X25519 and ML-KEM-768 side by side, their
//! shared secrets combined with the X-Wing combiner, so a wrapped key stays safe as
//! long as either of the two holds (X25519 against today's attackers, ML-KEM-768
//! against a future quantum computer).
//!
//! Encapsulation and the combiner follow draft-connolly-cfrg-xwing-kem exactly:
//! `ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || "\.//^\")`. Key generation differs
//! from X-Wing's (which expands one 32-byte seed with SHAKE-256) because
//! pqcrypto-mlkem offers no seeded ML-KEM key generation; keys are therefore encoded
//! whole. Layouts: `crypto/FORMAT.md`, section "Hybrid keys and keyslots".

use std::fmt;

use pqcrypto_mlkem::mlkem768 as mlkem;
use pqcrypto_traits::kem::{Ciphertext as _, PublicKey as _, SecretKey as _, SharedSecret as _};
use sha3::{Digest, Sha3_256};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

use crate::codec::ct_eq;
use crate::error::{Error, Result};
use crate::format::{
    FINGERPRINT_LEN, HYBRID_KEY_VERSION, HYBRID_PUBLIC_KEY_LEN, HYBRID_PUBLIC_MAGIC, HYBRID_SECRET_KEY_LEN,
    HYBRID_SECRET_MAGIC, MLKEM_CIPHERTEXT_LEN, MLKEM_PUBLIC_KEY_LEN, MLKEM_SECRET_KEY_LEN, MLKEM_SK_HASH_OFFSET,
    MLKEM_SK_PUBLIC_OFFSET, X25519_LEN,
};
use crate::keys::fill_random;

/// The X-Wing combiner's label, `\.//^\` (bytes `5c 2e 2f 2f 5e 5c`).
pub(crate) const XWING_LABEL: &[u8; 6] = b"\\.//^\\";

/// The X-Wing combiner: `SHA3-256(ss_M || ss_X || ct_X || pk_X || label)`.
///
/// Binding the X25519 ciphertext and public key makes the result depend on the
/// exact exchange, so a secret cannot be replayed into another slot or recipient.
pub(crate) fn xwing_combine(
    ss_m: &[u8; 32],
    ss_x: &[u8; 32],
    ct_x: &[u8; X25519_LEN],
    pk_x: &[u8; X25519_LEN],
) -> Zeroizing<[u8; 32]> {
    let mut hasher = Sha3_256::new();
    hasher.update(ss_m);
    hasher.update(ss_x);
    hasher.update(ct_x);
    hasher.update(pk_x);
    hasher.update(XWING_LABEL);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&hasher.finalize());
    out
}

fn sha3_256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha3_256::digest(bytes));
    out
}

/// Copies `src` into a fixed array when the lengths agree.
fn to_array<const N: usize>(src: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    out.copy_from_slice(src.get(..N).filter(|_| src.len() == N)?);
    Some(out)
}

/// The result of an encapsulation: the combined secret and what the recipient
/// needs to recompute it.
pub(crate) struct Encapsulated {
    /// The X-Wing combined shared secret.
    pub(crate) shared: Zeroizing<[u8; 32]>,
    /// The X25519 ciphertext: an ephemeral public key.
    pub(crate) ct_x: [u8; X25519_LEN],
    /// The ML-KEM-768 ciphertext.
    pub(crate) ct_m: Vec<u8>,
}

/// The public half of a hybrid keypair: what another device hands over so that a
/// keyslot can be made for it. Holds no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct HybridPublicKey {
    x25519: [u8; X25519_LEN],
    mlkem: Box<[u8]>,
}

impl HybridPublicKey {
    /// The encoded key (1225 bytes): magic `SYNHYBPK`, version 1, X25519 public key
    /// (32), ML-KEM-768 public key (1184).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HYBRID_PUBLIC_KEY_LEN);
        out.extend_from_slice(&HYBRID_PUBLIC_MAGIC);
        out.push(HYBRID_KEY_VERSION);
        out.extend_from_slice(&self.x25519);
        out.extend_from_slice(&self.mlkem);
        out
    }

    /// Parses an encoded public key. Errors are `InvalidArgument` naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let fields = check_encoding(bytes, &HYBRID_PUBLIC_MAGIC, HYBRID_PUBLIC_KEY_LEN, "public")?;
        let (x, m) = fields.split_at(X25519_LEN);
        let x25519 = to_array(x).ok_or_else(|| bad_key("public", "truncated X25519 key"))?;
        if !mlkem_public_key_is_canonical(m) {
            return Err(bad_key("public", "the ML-KEM-768 key has a coefficient out of range"));
        }
        Ok(HybridPublicKey { x25519, mlkem: m.into() })
    }

    /// SHA3-256 of the encoded key: names the key in keyslots and for people
    /// comparing keys between devices.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        sha3_256(&self.encode())
    }

    pub(crate) fn x25519(&self) -> &[u8; X25519_LEN] {
        &self.x25519
    }

    /// Encapsulates a fresh shared secret to this key.
    pub(crate) fn encapsulate(&self) -> Result<Encapsulated> {
        let pk_m = mlkem::PublicKey::from_bytes(&self.mlkem)
            .map_err(|e| Error::InvalidArgument(format!("ML-KEM-768 public key: {e}")))?;
        let (mut ss_m, ct_m) = mlkem::encapsulate(&pk_m);
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        fill_random(&mut ephemeral[..]);
        let ek_x = StaticSecret::from(*ephemeral);
        let ct_x = X25519Public::from(&ek_x).to_bytes();
        let ss_x = ek_x.diffie_hellman(&X25519Public::from(self.x25519));
        let ss_m_bytes = take_shared_secret(&mut ss_m);
        let ss = xwing_combine(&ss_m_bytes, ss_x.as_bytes(), &ct_x, &self.x25519);
        Ok(Encapsulated { shared: ss, ct_x, ct_m: ct_m.as_bytes().to_vec() })
    }
}

impl fmt::Debug for HybridPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fp = self.fingerprint();
        write!(f, "HybridPublicKey(fingerprint {})", crate::keyslot::hex(fp.get(..8).unwrap_or_default()))
    }
}

/// The secret half of a hybrid keypair: an X25519 secret key and an ML-KEM-768
/// secret key. Zeroized on drop; `Debug` shows only the public fingerprint.
#[derive(Clone)]
pub struct HybridSecretKey {
    x25519: StaticSecret,
    mlkem: Zeroizing<Vec<u8>>,
    public: HybridPublicKey,
}

impl HybridSecretKey {
    /// Assembles a key from its parts, checking the ML-KEM key's embedded hash of its
    /// public key (FIPS 203's input check), and computing the public key.
    pub(crate) fn from_parts(x25519: StaticSecret, mlkem_sk: Zeroizing<Vec<u8>>) -> Option<Self> {
        if mlkem_sk.len() != MLKEM_SECRET_KEY_LEN {
            return None;
        }
        let pk_m = mlkem_sk.get(MLKEM_SK_PUBLIC_OFFSET..MLKEM_SK_HASH_OFFSET)?;
        let stored_hash = mlkem_sk.get(MLKEM_SK_HASH_OFFSET..MLKEM_SK_HASH_OFFSET + 32)?;
        if !ct_eq(&sha3_256(pk_m), stored_hash) {
            return None;
        }
        debug_assert_eq!(pk_m.len(), MLKEM_PUBLIC_KEY_LEN);
        let public = HybridPublicKey { x25519: X25519Public::from(&x25519).to_bytes(), mlkem: pk_m.into() };
        Some(HybridSecretKey { x25519, mlkem: mlkem_sk, public })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &HybridPublicKey {
        &self.public
    }

    /// The encoded secret key (2441 bytes, zeroized when dropped): magic `SYNHYBSK`,
    /// version 1, X25519 secret key (32), ML-KEM-768 secret key (2400). Meant for an
    /// OS keystore or a file only the device's owner can read.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(HYBRID_SECRET_KEY_LEN));
        out.extend_from_slice(&HYBRID_SECRET_MAGIC);
        out.push(HYBRID_KEY_VERSION);
        out.extend_from_slice(self.x25519.as_bytes());
        out.extend_from_slice(&self.mlkem);
        out
    }

    /// Parses an encoded secret key. Errors are `InvalidArgument` and never include
    /// key bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let fields = check_encoding(bytes, &HYBRID_SECRET_MAGIC, HYBRID_SECRET_KEY_LEN, "secret")?;
        let (x, m) = fields.split_at(X25519_LEN);
        let x = Zeroizing::new(to_array::<X25519_LEN>(x).ok_or_else(|| bad_key("secret", "truncated X25519 key"))?);
        HybridSecretKey::from_parts(StaticSecret::from(*x), Zeroizing::new(m.to_vec()))
            .ok_or_else(|| bad_key("secret", "the ML-KEM-768 key fails its internal hash check"))
    }

    /// Recovers the combined secret from a slot's two ciphertexts.
    pub(crate) fn decapsulate(&self, ct_x: &[u8; X25519_LEN], ct_m: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        if ct_m.len() != MLKEM_CIPHERTEXT_LEN {
            return None;
        }
        let ct = mlkem::Ciphertext::from_bytes(ct_m).ok()?;
        let mut sk = mlkem::SecretKey::from_bytes(&self.mlkem).ok()?;
        let mut ss_m = mlkem::decapsulate(&ct, &sk);
        wipe_secret_key(&mut sk);
        let ss_m_bytes = take_shared_secret(&mut ss_m);
        let ss_x = self.x25519.diffie_hellman(&X25519Public::from(*ct_x));
        Some(xwing_combine(&ss_m_bytes, ss_x.as_bytes(), ct_x, self.public.x25519()))
    }

    pub(crate) fn mlkem_bytes(&self) -> &[u8] {
        &self.mlkem
    }
}

impl fmt::Debug for HybridSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fp = self.public.fingerprint();
        write!(
            f,
            "HybridSecretKey(<redacted>, public fingerprint {})",
            crate::keyslot::hex(fp.get(..8).unwrap_or_default())
        )
    }
}

/// A freshly generated hybrid keypair (for a device that wants its own keyslot).
#[derive(Clone, Debug)]
pub struct HybridKeypair {
    secret: HybridSecretKey,
}

impl HybridKeypair {
    /// Generates a keypair from the operating system's random source.
    pub fn generate() -> Self {
        let mut x = Zeroizing::new([0u8; 32]);
        fill_random(&mut x[..]);
        HybridKeypair { secret: generate_with_x25519(StaticSecret::from(*x)) }
    }

    /// The secret key.
    pub fn secret_key(&self) -> &HybridSecretKey {
        &self.secret
    }

    /// The public key.
    pub fn public_key(&self) -> &HybridPublicKey {
        self.secret.public_key()
    }

    /// Gives up the keypair for its secret key (which holds the public key too).
    pub fn into_secret_key(self) -> HybridSecretKey {
        self.secret
    }
}

/// A secret key with the given X25519 half and a fresh ML-KEM-768 half.
pub(crate) fn generate_with_x25519(x25519: StaticSecret) -> HybridSecretKey {
    let (_pk, mut sk) = mlkem::keypair();
    let bytes = Zeroizing::new(sk.as_bytes().to_vec());
    wipe_secret_key(&mut sk);
    match HybridSecretKey::from_parts(x25519, bytes) {
        Some(key) => key,
        // PQClean always embeds SHA3-256(pk) in the secret key it makes.
        None => unreachable!("ML-KEM-768 key generation produced a key failing its own hash check"),
    }
}

/// Overwrites a PQClean secret key (a `Copy` type without a zeroizing drop).
fn wipe_secret_key(sk: &mut mlkem::SecretKey) {
    if let Ok(zero) = mlkem::SecretKey::from_bytes(&[0u8; MLKEM_SECRET_KEY_LEN]) {
        *sk = zero;
    }
    // Keeps the overwrite from being removed as a dead store.
    std::hint::black_box(&*sk);
}

/// Moves a PQClean shared secret into zeroizing storage and overwrites the original.
fn take_shared_secret(ss: &mut mlkem::SharedSecret) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // Both are 32 bytes (checked at compile time in `format`).
    out.copy_from_slice(ss.as_bytes());
    if let Ok(zero) = mlkem::SharedSecret::from_bytes(&[0u8; 32]) {
        *ss = zero;
    }
    std::hint::black_box(&*ss);
    out
}

/// FIPS 203's encapsulation-key check (section 7.2): every 12-bit coefficient of
/// the encoded vector is below q = 3329 (the last 32 bytes are the matrix seed).
fn mlkem_public_key_is_canonical(pk: &[u8]) -> bool {
    const Q: u16 = 3329;
    let Some(vector) = pk.get(..MLKEM_PUBLIC_KEY_LEN - 32).filter(|_| pk.len() == MLKEM_PUBLIC_KEY_LEN) else {
        return false;
    };
    vector.chunks_exact(3).all(|c| match *c {
        [b0, b1, b2] => {
            let low = u16::from(b0) | (u16::from(b1 & 0x0f) << 8);
            let high = u16::from(b1 >> 4) | (u16::from(b2) << 4);
            low < Q && high < Q
        }
        _ => false,
    })
}

fn bad_key(which: &str, reason: &str) -> Error {
    Error::InvalidArgument(format!("not a valid hybrid {which} key: {reason}"))
}

/// Checks length, magic and version of an encoded key; returns the bytes after them.
fn check_encoding<'a>(bytes: &'a [u8], magic: &[u8; 8], len: usize, which: &str) -> Result<&'a [u8]> {
    if bytes.get(..8) != Some(&magic[..]) {
        return Err(bad_key(which, "wrong magic"));
    }
    match bytes.get(8).copied() {
        Some(HYBRID_KEY_VERSION) => {}
        Some(v) => return Err(bad_key(which, &format!("unsupported version {v}"))),
        None => return Err(bad_key(which, "truncated")),
    }
    if bytes.len() != len {
        return Err(bad_key(which, &format!("{} bytes, expected {len}", bytes.len())));
    }
    bytes.get(9..).ok_or_else(|| bad_key(which, "truncated"))
}

#[cfg(test)]
mod tests;
