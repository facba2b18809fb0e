//! Keys and tags that authenticate the store's small unencrypted files (`CURRENT`)
//! under the store's keys, so that a file the engine did not write is refused.
//!
//! `integrity_key(purpose)` = HKDF-SHA256(ikm = integrity root, no salt, info =
//! `"synapsed-storage integrity " || purpose`); a tag is HMAC-SHA256 under it. The
//! integrity root is kept in the sealed `KEYRING` and survives every key change
//! (keyring key, data-key rotation, `rekey`), so a key for a purpose stays the same
//! for the life of the store (`crypto/FORMAT.md`, key hierarchy).

use hkdf::hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::KeyManager;
use crate::codec::{ct_eq, hkdf_sha256};

/// Prefix of the HKDF info string of every integrity key.
const INTEGRITY_INFO_PREFIX: &[u8] = b"synapsed-storage integrity ";

/// Length of an integrity tag (a full HMAC-SHA256 output).
pub const INTEGRITY_TAG_LEN: usize = 32;

impl KeyManager {
    /// The 32-byte key that authenticates the files of `purpose` (for example
    /// `b"CURRENT"`): HKDF-SHA256 of the integrity root with info
    /// `"synapsed-storage integrity " || purpose`. Zeroized on drop.
    pub fn integrity_key(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut info = Zeroizing::new(Vec::with_capacity(INTEGRITY_INFO_PREFIX.len() + purpose.len()));
        info.extend_from_slice(INTEGRITY_INFO_PREFIX);
        info.extend_from_slice(purpose);
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&self.integrity_root()[..], None, &info, &mut key[..]);
        key
    }

    /// HMAC-SHA256 of `message` under [`KeyManager::integrity_key`]`(purpose)`.
    pub fn integrity_tag(&self, purpose: &[u8], message: &[u8]) -> [u8; INTEGRITY_TAG_LEN] {
        let key = self.integrity_key(purpose);
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key[..]) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is [`KeyManager::integrity_tag`]`(purpose, message)`, compared
    /// in constant time.
    pub fn check_integrity_tag(&self, purpose: &[u8], message: &[u8], tag: &[u8]) -> bool {
        ct_eq(&self.integrity_tag(purpose, message), tag)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::keyring::{IntegrityRoot, Keyring};
    use crate::keys::MasterKey;

    fn manager() -> KeyManager {
        // The integrity root an upgraded store of master key 00 01 … 1f has.
        let master = MasterKey::from_bytes(std::array::from_fn(|i| i as u8));
        let mut keyring = Keyring::new_random();
        keyring.integrity_root = IntegrityRoot::legacy(&master);
        KeyManager::from_parts(master, [0xa0; 16], keyring)
    }

    /// Known answers, recomputed independently (Python `hmac`/`hashlib`) in
    /// `crypto/FORMAT.md` section 5.
    #[test]
    fn integrity_key_and_tag_known_answers() {
        let km = manager();
        let key = km.integrity_key(b"CURRENT");
        assert_eq!(hex(&key[..]), "2bf0e9c183a7be073ecf7886600403b5e2d2a4398dd33027e6ec13d016d829e9");
        assert_eq!(hex(&km.integrity_tag(b"CURRENT", b"hello")), "9e0f2e42e452f3f204acf4b812ff58331cbb829bbb06abfa2c936b40cd40f29d");
        assert!(km.check_integrity_tag(b"CURRENT", b"hello", &km.integrity_tag(b"CURRENT", b"hello")));
        assert!(!km.check_integrity_tag(b"CURRENT", b"hellp", &km.integrity_tag(b"CURRENT", b"hello")));
        assert_ne!(km.integrity_key(b"CURRENT")[..], km.integrity_key(b"OTHER")[..]);
        // The worked example of `compaction/FORMAT.md`: `CURRENT` naming manifest 7.
        let body = [&b"SYNCURR2"[..], &7u64.to_le_bytes()].concat();
        assert_eq!(hex(&km.integrity_tag(b"CURRENT", &body)), "f29b7a25899a25f97eba4669a1dab8ace2a9e38baef63b9bb980b325a73f41ae");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
