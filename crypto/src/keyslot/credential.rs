//! What unlocks a keyslot: the credential types, the Argon2id cost parameters and
//! their limits, and the derivation of a slot's key-encryption key from them.

use zeroize::Zeroizing;

use crate::codec::hkdf_sha256;
use crate::error::{Error, Result};
use crate::hybrid::HybridSecretKey;
use crate::recovery::RecoveryKey;
use crate::format::{MAX_ARGON2_M_COST_KIB, MAX_ARGON2_P_COST, MAX_ARGON2_T_COST};

/// HKDF info of the raw-key slot's KEK.
const RAW_KEY_INFO: &[u8] = b"synapsed-storage raw-key slot";

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

impl Argon2Params {
    /// The smallest cost a production store's passphrase slot may have: OWASP's
    /// minimum for Argon2id, m = 19456 KiB, t = 2, p = 1. Stores are created at or
    /// above it unless a test explicitly asks for less.
    pub const PRODUCTION_FLOOR: Argon2Params = Argon2Params { m_cost_kib: 19 * 1024, t_cost: 2, p_cost: 1 };

    /// Each parameter the larger of `self`'s and `other`'s: a cost at least as high
    /// as both in memory, time and lanes.
    pub fn at_least(&self, other: &Argon2Params) -> Argon2Params {
        Argon2Params {
            m_cost_kib: self.m_cost_kib.max(other.m_cost_kib),
            t_cost: self.t_cost.max(other.t_cost),
            p_cost: self.p_cost.max(other.p_cost),
        }
    }

    /// Whether memory and time are at least those of `floor` (lanes do not make
    /// guessing dearer, so they are not compared).
    pub fn meets(&self, floor: &Argon2Params) -> bool {
        self.m_cost_kib >= floor.m_cost_kib && self.t_cost >= floor.t_cost
    }

    /// Checks the parameters are within the limits this crate writes and accepts: at
    /// most 1 GiB of memory, 32 iterations and 16 lanes, and what Argon2 itself requires
    /// (at least one iteration and lane, at least 8 KiB of memory per lane).
    ///
    /// Parameters read from disk are checked before Argon2 runs, so a damaged or
    /// hostile file cannot make an unlock allocate unbounded memory.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.m_cost_kib > MAX_ARGON2_M_COST_KIB {
            return Err(format!(
                "Argon2 memory {} KiB exceeds the limit of {MAX_ARGON2_M_COST_KIB} KiB",
                self.m_cost_kib
            ));
        }
        if self.t_cost == 0 || self.t_cost > MAX_ARGON2_T_COST {
            return Err(format!("Argon2 iterations {} outside 1..={MAX_ARGON2_T_COST}", self.t_cost));
        }
        if self.p_cost == 0 || self.p_cost > MAX_ARGON2_P_COST {
            return Err(format!("Argon2 parallelism {} outside 1..={MAX_ARGON2_P_COST}", self.p_cost));
        }
        // p_cost <= 64 here, so the product cannot overflow.
        if self.m_cost_kib < 8 * self.p_cost {
            return Err(format!(
                "Argon2 memory {} KiB is below 8 KiB per lane ({} lanes)",
                self.m_cost_kib, self.p_cost
            ));
        }
        Ok(())
    }
}

/// What unlocks a store.
pub enum Credential {
    /// A passphrase (any bytes, at least one).
    Passphrase(Zeroizing<Vec<u8>>),
    /// A raw 32-byte key, e.g. from an OS keystore.
    RawKey(Zeroizing<[u8; 32]>),
    /// A device's hybrid (X25519 + ML-KEM-768) secret key; opens the hybrid slot
    /// made for its public key.
    Hybrid(HybridSecretKey),
    /// The store's recovery key; opens its recovery slot.
    Recovery(RecoveryKey),
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

    /// A hybrid secret-key credential (another device's key).
    pub fn hybrid(key: HybridSecretKey) -> Self {
        Credential::Hybrid(key)
    }

    /// A recovery-key credential.
    pub fn recovery(key: RecoveryKey) -> Self {
        Credential::Recovery(key)
    }

    pub(super) fn slot_kind(&self) -> SlotKind {
        match self {
            Credential::Passphrase(_) => SlotKind::Passphrase,
            Credential::RawKey(_) => SlotKind::RawKey,
            Credential::Hybrid(_) | Credential::Recovery(_) => SlotKind::Hybrid,
        }
    }

    pub(super) fn check(&self) -> Result<()> {
        match self {
            Credential::Passphrase(p) if p.is_empty() => Err(Error::InvalidArgument("the passphrase is empty".into())),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Passphrase(_) => f.write_str("Credential::Passphrase(<redacted>)"),
            Credential::RawKey(_) => f.write_str("Credential::RawKey(<redacted>)"),
            Credential::Hybrid(key) => write!(f, "Credential::Hybrid({key:?})"),
            Credential::Recovery(_) => f.write_str("Credential::Recovery(<redacted>)"),
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
    /// A hybrid X25519 + ML-KEM-768 encapsulation (to another device's key, or to
    /// the recovery key) wraps the master key.
    Hybrid = 3,
}

impl SlotKind {
    pub(super) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(SlotKind::Passphrase),
            2 => Some(SlotKind::RawKey),
            3 => Some(SlotKind::Hybrid),
            _ => None,
        }
    }
}

/// A description of one slot, without any key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInfo {
    /// Position of the slot in the file (what [`super::KeyslotFile::remove_slot`] takes).
    pub index: usize,
    /// The kind byte on disk.
    pub kind_code: u8,
    /// The kind, when this build knows it.
    pub kind: Option<SlotKind>,
    /// The Argon2id parameters of a passphrase slot.
    pub argon2: Option<Argon2Params>,
    /// For a hybrid slot: the fingerprint of the public key it was made for
    /// ([`crate::HybridPublicKey::fingerprint`]).
    pub fingerprint: Option<[u8; 32]>,
    /// Whether this is the store's recovery slot (a hybrid slot opened by the recovery key).
    pub recovery: bool,
}

/// The KEK of a slot. `Err` carries a reason; callers decide whether it is the
/// caller's fault (creating) or the file's (unlocking).
pub(super) fn derive_kek(
    credential: &Credential,
    params: Option<&Argon2Params>,
    salt: &[u8],
) -> std::result::Result<Zeroizing<[u8; 32]>, String> {
    let mut kek = Zeroizing::new([0u8; 32]);
    match credential {
        Credential::Passphrase(pass) => {
            let p = params.ok_or_else(|| "passphrase slot without Argon2 parameters".to_string())?;
            p.validate()?;
            let argon_params =
                argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).map_err(|e| e.to_string())?;
            // The memory is reserved fallibly (Argon2's own allocation aborts the
            // process when it fails): a cost the machine cannot give is an error.
            let blocks = argon_params.block_count();
            let mut memory: Vec<argon2::Block> = Vec::new();
            memory.try_reserve_exact(blocks).map_err(|_| {
                format!("Argon2 needs {} KiB of memory, which could not be allocated", p.m_cost_kib)
            })?;
            memory.resize(blocks, argon2::Block::default());
            let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params);
            argon.hash_password_into_with_memory(pass, salt, &mut kek[..], &mut memory).map_err(|e| e.to_string())?;
        }
        Credential::RawKey(raw) => hkdf_sha256(&raw[..], Some(salt), RAW_KEY_INFO, &mut kek[..]),
        // Hybrid slots get their key from a key encapsulation, not from a KEK.
        Credential::Hybrid(_) | Credential::Recovery(_) => {
            return Err("a hybrid credential has no key-encryption key".to_string())
        }
    }
    Ok(kek)
}
