//! Versions of replicated entries and their byte form.
//!
//! Every replicated entry carries the [`Version`] of the write that made it:
//! its hybrid logical clock reading and the writing replica's id. Versions
//! are totally ordered by (hlc, replica id), which is the default conflict
//! rule (last writer wins; equal clocks are broken by the replica id, so every
//! replica picks the same winner whatever the order of arrival).

use crate::hlc::Hlc;

/// Identifies a replica (a device's copy of a store): 63 random bits, made
/// once when sync is enabled and kept with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ReplicaId(pub u64);

/// The version of one write: ordered by clock, then replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// When the write was made.
    pub hlc: Hlc,
    /// Who made it.
    pub replica: ReplicaId,
}

/// Bytes of an encoded [`Version`]: hlc u64 LE, replica u64 LE.
pub const VERSION_BYTES: usize = 16;

impl Version {
    /// The 16-byte form (`engine/FORMAT.md`, "Per-entry sync metadata").
    pub fn to_bytes(self) -> [u8; VERSION_BYTES] {
        let mut out = [0u8; VERSION_BYTES];
        let (h, r) = out.split_at_mut(8);
        h.copy_from_slice(&self.hlc.0.to_le_bytes());
        r.copy_from_slice(&self.replica.0.to_le_bytes());
        out
    }

    /// Reads the 16-byte form; `None` if `bytes` is shorter.
    pub fn from_bytes(bytes: &[u8]) -> Option<Version> {
        let h = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let r = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Version { hlc: Hlc(h), replica: ReplicaId(r) })
    }
}

/// One replicated entry as it travels: a key's newest state in a keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The version of the write.
    pub version: Version,
    /// The version this write replaced on the replica that made it (the
    /// default version when the key was new there): lets a receiver tell a
    /// successor from a concurrent write.
    pub prev: Version,
    /// `None` for a versioned tombstone.
    pub value: Option<Vec<u8>>,
}

impl Entry {
    /// Whether this is a versioned tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn versions_order_by_clock_then_replica_and_round_trip() {
        let a = Version { hlc: Hlc(5), replica: ReplicaId(9) };
        let b = Version { hlc: Hlc(6), replica: ReplicaId(1) };
        let c = Version { hlc: Hlc(6), replica: ReplicaId(2) };
        assert!(a < b && b < c);
        assert_eq!(Version::from_bytes(&c.to_bytes()), Some(c));
        assert_eq!(c.to_bytes(), [6, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Version::from_bytes(&[0; 15]), None);
    }
}
