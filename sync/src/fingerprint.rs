//! Range fingerprints: what two replicas compare to find where they differ.
//!
//! Each key falls in one of [`LEAVES`] buckets, chosen by a hash of the key,
//! so buckets fill evenly whatever the keys look like. The buckets are the
//! leaves of a fixed tree of fan-out [`FANOUT`] and height [`LEAF_LEVEL`]: a
//! node at level `l` covers `FANOUT^(LEAF_LEVEL - l)` consecutive buckets, the
//! root (level 0) all of them. A node's [`Fingerprint`] is the sum, modulo
//! 2^128, of the hashes of the entries in its buckets, with their count. The
//! sum is associative and commutative and has an inverse, so a write updates
//! a bucket's fingerprint by subtracting the old entry's hash and adding the
//! new one's, and a node's fingerprint is the sum of its children's: nothing
//! is ever rescanned to compute one (negentropy's "sum of hashes"; the sum is
//! not collision-resistant against a party choosing entries, which is why only
//! paired, authenticated devices take part).

use sha2::{Digest, Sha256};

use crate::version::Version;

/// log2 of the number of buckets.
pub const LEAF_BITS: u32 = 16;
/// Number of buckets (leaves of the tree).
pub const LEAVES: u32 = 1 << LEAF_BITS;
/// Children per inner node.
pub const FANOUT: u32 = 16;
/// Level of the leaves (the root is level 0).
pub const LEAF_LEVEL: u8 = 4;

const _: () = assert!(FANOUT.pow(LEAF_LEVEL as u32) == LEAVES);

/// The sum of a set of entry hashes and the set's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// Sum of the entries' 128-bit hashes, modulo 2^128.
    pub sum: u128,
    /// Number of entries.
    pub count: u64,
}

/// Bytes of an encoded [`Fingerprint`]: sum u128 LE, count u64 LE.
pub const FINGERPRINT_BYTES: usize = 24;

impl Fingerprint {
    /// The fingerprint of one entry.
    pub fn of_hash(hash: u128) -> Fingerprint {
        Fingerprint { sum: hash, count: 1 }
    }

    /// The fingerprint of the union of two disjoint sets.
    #[must_use]
    pub fn combine(self, other: Fingerprint) -> Fingerprint {
        Fingerprint { sum: self.sum.wrapping_add(other.sum), count: self.count.wrapping_add(other.count) }
    }

    /// The fingerprint of `self` without `other` (a subset of it).
    #[must_use]
    pub fn remove(self, other: Fingerprint) -> Fingerprint {
        Fingerprint { sum: self.sum.wrapping_sub(other.sum), count: self.count.wrapping_sub(other.count) }
    }

    /// The 24-byte form.
    pub fn to_bytes(self) -> [u8; FINGERPRINT_BYTES] {
        let mut out = [0u8; FINGERPRINT_BYTES];
        let (s, c) = out.split_at_mut(16);
        s.copy_from_slice(&self.sum.to_le_bytes());
        c.copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Reads the 24-byte form; `None` if `bytes` is shorter.
    pub fn from_bytes(bytes: &[u8]) -> Option<Fingerprint> {
        let sum = u128::from_le_bytes(bytes.get(..16)?.try_into().ok()?);
        let count = u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?);
        Some(Fingerprint { sum, count })
    }
}

/// The bucket of `key`: the first 16 bits of SHA-256("synapsed-sync bucket\0" || key).
pub fn bucket_of(key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(b"synapsed-sync bucket\0");
    h.update(key);
    let d: [u8; 32] = h.finalize().into();
    let [b0, b1, ..] = d;
    u32::from(u16::from_be_bytes([b0, b1]))
}

/// The 128-bit hash of an entry's whole state (key, version, tombstone or
/// value): two replicas holding the same state of a key hold the same hash.
pub fn entry_hash(key: &[u8], version: Version, value: Option<&[u8]>) -> u128 {
    let mut h = Sha256::new();
    h.update(b"synapsed-sync entry\0");
    h.update((key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(version.to_bytes());
    match value {
        Some(v) => {
            h.update([1u8]);
            h.update((v.len() as u64).to_le_bytes());
            h.update(v);
        }
        None => h.update([0u8]),
    }
    let d: [u8; 32] = h.finalize().into();
    let mut first = [0u8; 16];
    for (f, b) in first.iter_mut().zip(d) {
        *f = b;
    }
    u128::from_le_bytes(first)
}

/// Number of nodes at `level` (0 for a level past the leaves).
pub fn nodes_at(level: u8) -> u32 {
    if level > LEAF_LEVEL {
        return 0;
    }
    FANOUT.pow(u32::from(level))
}

/// The buckets node `index` of `level` covers: `first..end`.
pub fn node_buckets(level: u8, index: u32) -> (u32, u32) {
    let width = FANOUT.pow(u32::from(LEAF_LEVEL.saturating_sub(level)));
    let first = index.saturating_mul(width);
    (first, first.saturating_add(width))
}

/// The node of `level` that holds `bucket`.
pub fn node_of(level: u8, bucket: u32) -> u32 {
    bucket / FANOUT.pow(u32::from(LEAF_LEVEL.saturating_sub(level)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::hlc::Hlc;
    use crate::version::ReplicaId;

    #[test]
    fn sums_are_incremental_and_order_free() {
        let v = Version { hlc: Hlc(1), replica: ReplicaId(2) };
        let h: Vec<u128> = (0..10u8).map(|i| entry_hash(&[i], v, Some(b"x"))).collect();
        let all = h.iter().fold(Fingerprint::default(), |f, x| f.combine(Fingerprint::of_hash(*x)));
        let rev = h.iter().rev().fold(Fingerprint::default(), |f, x| f.combine(Fingerprint::of_hash(*x)));
        assert_eq!(all, rev);
        let without = all.remove(Fingerprint::of_hash(h[3]));
        assert_eq!(without.count, 9);
        assert_eq!(without.combine(Fingerprint::of_hash(h[3])), all);
        assert_eq!(Fingerprint::from_bytes(&all.to_bytes()), Some(all));
    }

    #[test]
    fn the_hash_covers_version_and_value_and_tombstone() {
        let v = Version { hlc: Hlc(1), replica: ReplicaId(2) };
        let w = Version { hlc: Hlc(1), replica: ReplicaId(3) };
        let base = entry_hash(b"k", v, Some(b""));
        assert_ne!(base, entry_hash(b"k", w, Some(b"")));
        assert_ne!(base, entry_hash(b"k", v, None));
        assert_ne!(base, entry_hash(b"k", v, Some(b"a")));
        assert_ne!(base, entry_hash(b"j", v, Some(b"")));
    }

    #[test]
    fn tree_geometry() {
        assert_eq!(nodes_at(0), 1);
        assert_eq!(nodes_at(LEAF_LEVEL), LEAVES);
        assert_eq!(node_buckets(0, 0), (0, LEAVES));
        assert_eq!(node_buckets(2, 3), (3 * 256, 4 * 256));
        assert_eq!(node_buckets(LEAF_LEVEL, 7), (7, 8));
        assert_eq!(node_of(2, 3 * 256 + 5), 3);
        assert!(bucket_of(b"anything") < LEAVES);
    }
}
