//! Recovery keys: 32 random bytes a person writes down at `init`, from which the
//! store's recovery keyslot can be opened when every passphrase and device is lost.
//!
//! From the 32 bytes, HKDF-SHA256 derives the X25519 secret of the recovery slot's
//! hybrid keypair and the key that seals its ML-KEM-768 secret key inside the slot
//! (pqcrypto-mlkem has no seeded key generation, so that half cannot be derived).
//! Either way a person keeps only the 32 bytes, written as grouped Crockford base32
//! with a checksum (`SYN1-XXXX-…`), and may split them k-of-n with Shamir's scheme
//! over GF(256) (the `blahaj` crate) into shares written the same way (`SYS1-…`).
//! Text layouts: `crypto/FORMAT.md`, section "Recovery keys and shares".

use std::fmt;
use std::str::FromStr;

use sha3::{Digest, Sha3_256};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

use crate::codec::hkdf_sha256;
use crate::error::{Error, Result};
use crate::format::{
    RECOVERY_KEY_PAYLOAD_LEN, RECOVERY_KEY_PREFIX, RECOVERY_SHARE_PAYLOAD_LEN, RECOVERY_SHARE_PREFIX,
    TEXT_CHECKSUM_LEN, TEXT_GROUP_LEN,
};
use crate::keys::fill_random;

/// HKDF info of the recovery slot's X25519 secret key.
const X25519_INFO: &[u8] = b"synapsed-storage recovery x25519";
/// HKDF info of the key sealing the recovery slot's ML-KEM-768 secret key.
const SEAL_INFO: &[u8] = b"synapsed-storage recovery ml-kem seal";

/// Crockford's base32 alphabet: digits and letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The store's recovery secret. Zeroized on drop; `Debug` never shows it, and there
/// is deliberately no `Display`: [`RecoveryKey::to_text`] is the one way to print it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey {
    secret: Zeroizing<[u8; 32]>,
}

impl RecoveryKey {
    /// A fresh recovery key from the operating system's random source.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        fill_random(&mut secret[..]);
        RecoveryKey { secret }
    }

    /// Wraps raw recovery-secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RecoveryKey { secret: Zeroizing::new(bytes) }
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The text a person writes down: `SYN1-` and 14 groups of 4 Crockford base32
    /// characters (the 32 bytes and a 3-byte checksum).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new(Vec::with_capacity(RECOVERY_KEY_PAYLOAD_LEN));
        payload.extend_from_slice(&self.secret[..]);
        let sum = checksum(RECOVERY_KEY_PREFIX, &payload);
        payload.extend_from_slice(&sum);
        to_text(RECOVERY_KEY_PREFIX, &payload)
    }

    /// Parses the text form. Case, spaces and dashes do not matter, and the letters
    /// O, I and L are read as 0, 1 and 1; a mistyped character is reported as a
    /// checksum mismatch (`InvalidArgument`).
    pub fn from_text(text: &str) -> Result<Self> {
        let payload = from_text(text, RECOVERY_KEY_PREFIX, RECOVERY_KEY_PAYLOAD_LEN, "recovery key")?;
        let (secret, _) = payload.split_at(32);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(secret);
        Ok(RecoveryKey { secret: out })
    }

    /// Splits the key into `shares` shares of which any `threshold` rebuild it
    /// (Shamir's scheme over GF(256)); fewer reveal nothing about it.
    ///
    /// Requires `2 <= threshold <= shares <= 255`.
    pub fn split(&self, threshold: u8, shares: u8) -> Result<Vec<RecoveryShare>> {
        if threshold < 2 || threshold > shares {
            return Err(Error::InvalidArgument(format!(
                "a {threshold}-of-{shares} split is not possible: \
                 the threshold must be at least 2 and at most the number of shares"
            )));
        }
        let mut split_id = [0u8; 3];
        fill_random(&mut split_id);
        let dealer = blahaj::Sharks(threshold).dealer(&self.secret[..]);
        let mut out = Vec::with_capacity(usize::from(shares));
        for share in dealer.take(usize::from(shares)) {
            let bytes = Zeroizing::new(Vec::from(&share));
            let (Some(&x), Some(y)) = (bytes.first(), bytes.get(1..).and_then(|y| <[u8; 32]>::try_from(y).ok()))
            else {
                unreachable!("a share of a 32-byte secret is 33 bytes");
            };
            out.push(RecoveryShare { split_id, threshold, x, y: Zeroizing::new(y) });
        }
        Ok(out)
    }

    /// Rebuilds the key from at least `threshold` distinct shares of one split.
    /// Errors (`InvalidArgument`): too few shares, or shares of different splits.
    pub fn combine(shares: &[RecoveryShare]) -> Result<Self> {
        let first = shares.first().ok_or_else(|| Error::InvalidArgument("no recovery shares given".into()))?;
        if shares.iter().any(|s| s.split_id != first.split_id || s.threshold != first.threshold) {
            return Err(Error::InvalidArgument(
                "the shares come from different splits (their split ids differ)".into(),
            ));
        }
        let mut xs: Vec<u8> = shares.iter().map(|s| s.x).collect();
        xs.sort_unstable();
        xs.dedup();
        if xs.len() < usize::from(first.threshold) {
            return Err(Error::InvalidArgument(format!(
                "{} distinct shares are needed to rebuild the recovery key, {} were given",
                first.threshold,
                xs.len()
            )));
        }
        let parsed: Vec<blahaj::Share> = shares
            .iter()
            .map(|s| {
                let mut bytes = Zeroizing::new(Vec::with_capacity(33));
                bytes.push(s.x);
                bytes.extend_from_slice(&s.y[..]);
                blahaj::Share::try_from(&bytes[..])
                    .map_err(|e| Error::InvalidArgument(format!("recovery share {}: {e}", s.x)))
            })
            .collect::<Result<_>>()?;
        let secret = Zeroizing::new(
            blahaj::Sharks(first.threshold)
                .recover(&parsed)
                .map_err(|e| Error::InvalidArgument(format!("recovery shares: {e}")))?,
        );
        let bytes = <[u8; 32]>::try_from(&secret[..])
            .map_err(|_| Error::InvalidArgument("the shares rebuild a secret of the wrong length".into()))?;
        Ok(RecoveryKey::from_bytes(bytes))
    }

    /// The X25519 secret key of the recovery slot.
    pub(crate) fn x25519_secret(&self) -> StaticSecret {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&self.secret[..], None, X25519_INFO, &mut bytes[..]);
        StaticSecret::from(*bytes)
    }

    /// The key sealing the recovery slot's ML-KEM-768 secret key.
    pub(crate) fn seal_key(&self) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&self.secret[..], None, SEAL_INFO, &mut key[..]);
        key
    }
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

impl FromStr for RecoveryKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        RecoveryKey::from_text(s)
    }
}

/// One share of a split recovery key. Zeroized on drop; `Debug` shows only the
/// split id, the share's index and the threshold.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryShare {
    split_id: [u8; 3],
    threshold: u8,
    x: u8,
    y: Zeroizing<[u8; 32]>,
}

impl RecoveryShare {
    /// The random id of the split this share belongs to (equal in every share of one split).
    pub fn split_id(&self) -> [u8; 3] {
        self.split_id
    }

    /// This share's x coordinate (1..=255), its number in the split.
    pub fn index(&self) -> u8 {
        self.x
    }

    /// How many shares of the split rebuild the key.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The share's secret value, for tests that look for it where it must not be.
    #[cfg(test)]
    pub(crate) fn value(&self) -> &[u8; 32] {
        &self.y
    }

    /// The text to hand to a trustee: `SYS1-` and 16 groups of 4 Crockford base32
    /// characters (split id, threshold, index, share value and a checksum).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut payload = Zeroizing::new(Vec::with_capacity(RECOVERY_SHARE_PAYLOAD_LEN));
        payload.extend_from_slice(&self.split_id);
        payload.push(self.threshold);
        payload.push(self.x);
        payload.extend_from_slice(&self.y[..]);
        let sum = checksum(RECOVERY_SHARE_PREFIX, &payload);
        payload.extend_from_slice(&sum);
        to_text(RECOVERY_SHARE_PREFIX, &payload)
    }

    /// Parses the text form, as tolerant as [`RecoveryKey::from_text`].
    pub fn from_text(text: &str) -> Result<Self> {
        let p = from_text(text, RECOVERY_SHARE_PREFIX, RECOVERY_SHARE_PAYLOAD_LEN, "recovery share")?;
        let field = |range: std::ops::Range<usize>| p.get(range).unwrap_or_default();
        let mut split_id = [0u8; 3];
        split_id.copy_from_slice(field(0..3));
        let threshold = field(3..4).first().copied().unwrap_or(0);
        let x = field(4..5).first().copied().unwrap_or(0);
        let mut y = Zeroizing::new([0u8; 32]);
        y.copy_from_slice(field(5..37));
        if threshold < 2 || x == 0 {
            return Err(Error::InvalidArgument(format!(
                "recovery share has threshold {threshold} and index {x}; neither can be below 2 or 1"
            )));
        }
        Ok(RecoveryShare { split_id, threshold, x, y })
    }
}

impl fmt::Debug for RecoveryShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryShare")
            .field("split", &crate::keyslot::hex(&self.split_id))
            .field("index", &self.x)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl FromStr for RecoveryShare {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        RecoveryShare::from_text(s)
    }
}

/// First bytes of SHA3-256(prefix || payload); the prefix keeps a share's text
/// from ever passing as a key's.
fn checksum(prefix: &str, payload: &[u8]) -> [u8; TEXT_CHECKSUM_LEN] {
    let digest = Sha3_256::new().chain_update(prefix.as_bytes()).chain_update(payload).finalize();
    let mut out = [0u8; TEXT_CHECKSUM_LEN];
    out.copy_from_slice(digest.get(..TEXT_CHECKSUM_LEN).unwrap_or(&[0u8; TEXT_CHECKSUM_LEN]));
    out
}

/// `PREFIX-XXXX-XXXX-…` of a payload whose length is a multiple of 5 bytes.
fn to_text(prefix: &str, payload: &[u8]) -> Zeroizing<String> {
    debug_assert_eq!(payload.len() % 5, 0);
    let chars = Zeroizing::new(base32_encode(payload));
    let mut out = Zeroizing::new(String::with_capacity(prefix.len() + chars.len() * 5 / 4 + 1));
    out.push_str(prefix);
    for group in chars.chunks(TEXT_GROUP_LEN) {
        out.push('-');
        out.extend(group.iter().map(|&c| char::from(c)));
    }
    out
}

fn base32_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    for block in bytes.chunks(5) {
        let mut word = [0u8; 8];
        word.get_mut(3..3 + block.len()).unwrap_or_default().copy_from_slice(block);
        let bits = u64::from_be_bytes(word);
        for i in (0..8).rev() {
            let index = usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0);
            out.push(ALPHABET.get(index).copied().unwrap_or(b'0'));
        }
    }
    out
}

/// Value of one (already upper-cased) Crockford character; O, I and L are read as the
/// digits they resemble.
fn base32_value(c: u8) -> Option<u8> {
    let c = match c {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET.iter().position(|&a| a == c).and_then(|p| u8::try_from(p).ok())
}

/// Normalises, checks the prefix, length, alphabet and checksum; returns the payload.
fn from_text(text: &str, prefix: &str, payload_len: usize, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: String| Error::InvalidArgument(format!("not a valid {what}: {reason}"));
    let cleaned: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'-').map(|b| b.to_ascii_uppercase()).collect(),
    );
    // The prefix is compared after the same letter-for-digit reading as the rest,
    // so "SYNI" or "syn1" are accepted too.
    let head: Vec<u8> = cleaned
        .iter()
        .take(prefix.len())
        .map(|&c| base32_value(c).and_then(|v| ALPHABET.get(usize::from(v)).copied()).unwrap_or(c))
        .collect();
    if head != prefix.as_bytes() {
        let other = if prefix == RECOVERY_KEY_PREFIX { RECOVERY_SHARE_PREFIX } else { RECOVERY_KEY_PREFIX };
        let hint = if head == other.as_bytes() {
            if prefix == RECOVERY_KEY_PREFIX {
                "this is a recovery share (SYS1-…); combine enough shares to rebuild the key".to_string()
            } else {
                "this is a whole recovery key (SYN1-…), not a share".to_string()
            }
        } else {
            format!("it must start with {prefix}-")
        };
        return Err(bad(hint));
    }
    let body = cleaned.get(prefix.len()..).unwrap_or_default();
    let expected_chars = payload_len * 8 / 5;
    if body.len() != expected_chars {
        return Err(bad(format!(
            "{} characters after {prefix}-, expected {expected_chars} ({} groups of {TEXT_GROUP_LEN}); \
             is a group missing or doubled?",
            body.len(),
            expected_chars / TEXT_GROUP_LEN
        )));
    }
    let mut values = Zeroizing::new(Vec::with_capacity(body.len()));
    for (i, &c) in body.iter().enumerate() {
        let Some(v) = base32_value(c) else {
            return Err(bad(format!(
                "'{}' (group {}, character {}) is not a base32 character",
                char::from(c),
                i / TEXT_GROUP_LEN + 1,
                i % TEXT_GROUP_LEN + 1
            )));
        };
        values.push(v);
    }
    let mut payload = Zeroizing::new(Vec::with_capacity(payload_len));
    for block in values.chunks(8) {
        let bits = block.iter().fold(0u64, |acc, &v| (acc << 5) | u64::from(v));
        payload.extend_from_slice(bits.to_be_bytes().get(3..).unwrap_or_default());
    }
    let (data, sum) = payload.split_at(payload_len - TEXT_CHECKSUM_LEN);
    if checksum(prefix, data) != sum {
        return Err(bad("checksum mismatch: a character is mistyped or two are swapped".into()));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests;
