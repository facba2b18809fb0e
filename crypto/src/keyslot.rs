//! Keyslots (like LUKS): each slot wraps the master key under a key derived from one
//! credential. The `KEYSLOTS` file holds the store id, a key-check value and the slots.

use zeroize::Zeroizing;

use crate::error::Result;
use crate::keys::MasterKey;

/// Argon2id cost parameters, stored with each passphrase slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl Default for Argon2Params {
    /// OWASP's minimum recommendation for Argon2id: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Argon2Params { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 }
    }
}

/// What unlocks a store.
pub enum Credential {
    /// A passphrase (any bytes, at least one).
    Passphrase(Zeroizing<Vec<u8>>),
    /// A raw 32-byte key, e.g. from an OS keystore.
    RawKey(Zeroizing<[u8; 32]>),
}

impl Credential {
    /// A passphrase credential.
    pub fn passphrase(p: impl AsRef<[u8]>) -> Self {
        Credential::Passphrase(Zeroizing::new(p.as_ref().to_vec()))
    }

    /// A raw 32-byte key credential.
    pub fn raw_key(key: [u8; 32]) -> Self {
        Credential::RawKey(Zeroizing::new(key))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Passphrase(_) => f.write_str("Credential::Passphrase(<redacted>)"),
            Credential::RawKey(_) => f.write_str("Credential::RawKey(<redacted>)"),
        }
    }
}

/// The kind of a keyslot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SlotKind {
    /// Argon2id(passphrase) wraps the master key.
    Passphrase = 1,
    /// A raw 32-byte key (through HKDF) wraps the master key.
    RawKey = 2,
}

/// The parsed `KEYSLOTS` file.
#[derive(Debug, Clone)]
pub struct KeyslotFile {
    pub(crate) store_id: [u8; 16],
}

impl KeyslotFile {
    /// Makes a new keyslot file for a fresh `master` key with one slot for `credential`.
    pub fn create(master: &MasterKey, store_id: [u8; 16], credential: &Credential, params: &Argon2Params) -> Result<Self> {
        let _ = (master, store_id, credential, params);
        todo!("keyslots")
    }

    /// Parses the file bytes; checks integrity (a damaged file is corruption, not a wrong key).
    pub fn decode(bytes: &[u8], file: &str) -> Result<Self> {
        let _ = (bytes, file);
        todo!("keyslots")
    }

    /// Serializes the file.
    pub fn encode(&self) -> Vec<u8> {
        todo!("keyslots")
    }

    /// Tries every slot that fits the credential; `Error::WrongKey` if none opens.
    pub fn unlock(&self, credential: &Credential) -> Result<MasterKey> {
        let _ = credential;
        todo!("keyslots")
    }

    /// The store id this file belongs to.
    pub fn store_id(&self) -> [u8; 16] {
        self.store_id
    }
}
