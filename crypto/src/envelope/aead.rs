//! The AES-256-GCM-SIV (RFC 8452) primitive under the block envelope, with the
//! file key prepared once: [`BlockAead::new`] runs the key setup (for aws-lc, the
//! expanded key inside one `EVP_AEAD_CTX`) and every block after that only pays
//! what RFC 8452 itself does per message (deriving the message keys from the
//! nonce, one AES-256 key expansion for them, POLYVAL and CTR over the bytes).
//!
//! Two implementations give the same bytes: aws-lc's (`aws-lc-rs`, assembly with
//! AES-NI / ARMv8 crypto instructions) on x86_64 and aarch64, 2.8 to 4.8 times as
//! fast as RustCrypto's `aes-gcm-siv` on 4 and 16 KiB blocks (docs/design.md, "The
//! block cipher"), and RustCrypto's on every other target. Tests run both against
//! the RFC's vectors and against each other.

use super::TAG_LEN;

/// Length of the nonce every block is sealed under.
pub(super) const NONCE_LEN: usize = 12;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) use self::aws_lc::BlockAead;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub(super) use self::rust_crypto::BlockAead;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) mod aws_lc {
    use std::sync::Arc;

    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM_SIV};

    use super::{NONCE_LEN, TAG_LEN};

    /// AES-256-GCM-SIV through aws-lc. The prepared key lives in one heap-allocated
    /// `EVP_AEAD_CTX`, shared by clones and wiped (`OPENSSL_cleanse`) when freed.
    #[derive(Clone)]
    pub(crate) struct BlockAead {
        key: Arc<LessSafeKey>,
    }

    impl BlockAead {
        /// Prepares `key` for sealing and opening.
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            match UnboundKey::new(&AES_256_GCM_SIV, key) {
                Ok(key) => Self { key: Arc::new(LessSafeKey::new(key)) },
                // Refused only for a key length other than the algorithm's 32 bytes.
                Err(_) => unreachable!("aws-lc refused a 32-byte AES-256-GCM-SIV key"),
            }
        }

        /// Encrypts `msg` in place and returns its tag.
        pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &mut [u8]) -> [u8; TAG_LEN] {
            let nonce = Nonce::assume_unique_for_key(*nonce);
            let tag = match self.key.seal_in_place_separate_tag(nonce, Aad::from(aad), msg) {
                Ok(tag) => tag,
                // Only messages beyond 2^36 bytes are refused, far above every size limit here.
                Err(_) => unreachable!("AES-GCM-SIV refused a message below its size limit"),
            };
            let mut out = [0u8; TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }

        /// Authenticates and decrypts `msg` in place against `tag`. On failure
        /// `msg` holds zeros, never unauthenticated plaintext.
        pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            let nonce = Nonce::assume_unique_for_key(*nonce);
            self.key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, msg).is_ok()
        }
    }
}

// Compiled on every target: the implementation elsewhere, and on x86_64 / aarch64
// the reference the tests hold aws-lc's output to.
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), cfg(test))]
pub(super) mod rust_crypto {
    use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
    use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};

    use super::{NONCE_LEN, TAG_LEN};

    /// AES-256-GCM-SIV through RustCrypto's `aes-gcm-siv` (its key schedules are
    /// wiped on drop through the `aes` crate's `zeroize` feature).
    #[derive(Clone)]
    pub(crate) struct BlockAead {
        cipher: Aes256GcmSiv,
    }

    impl BlockAead {
        /// Prepares `key` for sealing and opening.
        pub(crate) fn new(key: &[u8; 32]) -> Self {
            Self { cipher: Aes256GcmSiv::new(key.into()) }
        }

        /// Encrypts `msg` in place and returns its tag.
        pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &mut [u8]) -> [u8; TAG_LEN] {
            match self.cipher.encrypt_in_place_detached(Nonce::from_slice(nonce), aad, msg) {
                Ok(tag) => tag.into(),
                // Only messages beyond 2^36 bytes are refused, far above every size limit here.
                Err(_) => unreachable!("AES-GCM-SIV refused a message below its size limit"),
            }
        }

        /// Authenticates and decrypts `msg` in place against `tag`. On failure
        /// `msg` holds the ciphertext again, never unauthenticated plaintext.
        pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
            self.cipher.decrypt_in_place_detached(Nonce::from_slice(nonce), aad, msg, Tag::from_slice(tag)).is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    const RFC8452: &str = include_str!("../../testdata/rfc8452_aes256_gcm_siv.txt");

    struct Vector {
        name: String,
        key: [u8; 32],
        nonce: [u8; NONCE_LEN],
        aad: Vec<u8>,
        plaintext: Vec<u8>,
        result: Vec<u8>,
    }

    fn hex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0, "odd hex {s}");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn vectors() -> Vec<Vector> {
        let mut out = Vec::new();
        for para in RFC8452.split("\n\n").filter(|p| p.lines().any(|l| l.starts_with("key ="))) {
            let mut name = String::new();
            let field = |k: &str| {
                let line = para.lines().find(|l| l.split(" =").next() == Some(k)).unwrap_or_else(|| panic!("{k} missing in {para}"));
                hex(line.split_once(" =").unwrap().1.trim())
            };
            if let Some(c) = para.lines().find_map(|l| l.strip_prefix("# ")) {
                name = c.to_string();
            }
            out.push(Vector {
                name,
                key: field("key").try_into().unwrap(),
                nonce: field("nonce").try_into().unwrap(),
                aad: field("aad"),
                plaintext: field("plaintext"),
                result: field("result"),
            });
        }
        out
    }

    /// Seals and opens every vector with `new`'s implementation, and checks that a
    /// flipped bit in the ciphertext, the tag or the AAD is refused.
    fn check_all<A>(
        new: impl Fn(&[u8; 32]) -> A,
        seal: impl Fn(&A, &[u8; NONCE_LEN], &[u8], &mut [u8]) -> [u8; TAG_LEN],
        open: impl Fn(&A, &[u8; NONCE_LEN], &[u8], &mut [u8], &[u8; TAG_LEN]) -> bool,
    ) {
        let vs = vectors();
        assert_eq!(vs.len(), 26, "24 vectors of RFC 8452 C.2 and 2 of C.3");
        for v in &vs {
            let aead = new(&v.key);
            let mut buf = v.plaintext.clone();
            let tag = seal(&aead, &v.nonce, &v.aad, &mut buf);
            buf.extend_from_slice(&tag);
            assert_eq!(buf, v.result, "seal, {}", v.name);

            let (ct, tag) = v.result.split_at(v.result.len() - TAG_LEN);
            let tag: [u8; TAG_LEN] = tag.try_into().unwrap();
            let mut msg = ct.to_vec();
            assert!(open(&aead, &v.nonce, &v.aad, &mut msg, &tag), "open, {}", v.name);
            assert_eq!(msg, v.plaintext, "open, {}", v.name);

            let mut bad_tag = tag;
            bad_tag[15] ^= 0x80;
            let mut msg = ct.to_vec();
            assert!(!open(&aead, &v.nonce, &v.aad, &mut msg, &bad_tag), "flipped tag opened, {}", v.name);
            assert!(v.plaintext.is_empty() || msg != v.plaintext, "plaintext left after a failed open, {}", v.name);
            if !ct.is_empty() {
                let mut msg = ct.to_vec();
                msg[0] ^= 1;
                assert!(!open(&aead, &v.nonce, &v.aad, &mut msg, &tag), "flipped ciphertext opened, {}", v.name);
            }
            let mut aad = v.aad.clone();
            aad.push(0);
            let mut msg = ct.to_vec();
            assert!(!open(&aead, &v.nonce, &aad, &mut msg, &tag), "longer AAD opened, {}", v.name);
        }
    }

    #[test]
    fn rfc8452_vectors_through_the_block_cipher_in_use() {
        check_all(BlockAead::new, BlockAead::seal, BlockAead::open);
    }

    #[test]
    fn rfc8452_vectors_through_rust_crypto() {
        use rust_crypto::BlockAead;
        check_all(BlockAead::new, BlockAead::seal, BlockAead::open);
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn rfc8452_vectors_through_aws_lc() {
        use aws_lc::BlockAead;
        check_all(BlockAead::new, BlockAead::seal, BlockAead::open);
    }

    /// aws-lc and RustCrypto give the same ciphertext and tag at every length from 0
    /// to 300 bytes (every tail length of the 8-block and 4-block loops) and at the
    /// block sizes the engine writes, and each opens the other's output.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn aws_lc_and_rust_crypto_agree() {
        let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(3));
        let a = aws_lc::BlockAead::new(&key);
        let r = rust_crypto::BlockAead::new(&key);
        let lens = (0..=300usize).chain([1023, 4096, 4097, 16384, 65536 + 5]);
        for (i, len) in lens.enumerate() {
            let plain: Vec<u8> = (0..len).map(|j| (j * 131 + i * 7) as u8).collect();
            let mut nonce = [0u8; NONCE_LEN];
            nonce[..8].copy_from_slice(&(i as u64 * 4096).to_le_bytes());
            nonce[8] = (i % 8) as u8 + 1;
            let aad: Vec<u8> = (0..(i % 40)).map(|j| j as u8).collect();
            let (mut x, mut y) = (plain.clone(), plain.clone());
            let tx = a.seal(&nonce, &aad, &mut x);
            let ty = r.seal(&nonce, &aad, &mut y);
            assert_eq!((&x, tx), (&y, ty), "length {len}");
            assert!(r.open(&nonce, &aad, &mut x, &tx), "length {len}");
            assert!(a.open(&nonce, &aad, &mut y, &ty), "length {len}");
            assert_eq!((&x, &y), (&plain, &plain), "length {len}");
        }
    }
}
