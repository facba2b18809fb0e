//! Byte layouts of the replication keyspaces (`docs/design.md`, "Sync:
//! versions, merge rules and the session"): the keys of the version index and
//! of the stored fingerprints, and the version record of one entry.

use sync::fingerprint::Fingerprint;
use sync::version::{Version, VERSION_BYTES};
use sync::{Hlc, ReplicaId};

/// Version index: `keyspace id u32 BE | bucket u16 BE | user key` -> [`Meta`].
pub(crate) const VERSIONS: &str = "_sync_versions";
/// Fingerprints of levels 2 and 4: `keyspace id u32 BE | level u8 | node u32 BE` -> fingerprint.
pub(crate) const FINGERPRINTS: &str = "_sync_fingerprints";
/// Replica id, clock high-water mark, replicated keyspaces, peers' watermarks.
pub(crate) const META: &str = "_sync_meta";
/// Conflicts resolved: `clock u64 BE` -> [`crate::ConflictRecord`] bytes.
pub(crate) const CONFLICTS: &str = "_sync_conflicts";

/// `_sync_meta` key of the replica id (u64 LE).
pub(crate) const META_REPLICA: &[u8] = b"replica";
/// `_sync_meta` key of the clock's high-water mark (u64 LE).
pub(crate) const META_CLOCK: &[u8] = b"clock";
/// `_sync_meta` key prefix of a replicated keyspace: + name -> keyspace id u32 LE.
pub(crate) const META_KEYSPACE: &[u8] = b"keyspace/";
/// `_sync_meta` key prefix of a peer's watermark: + replica id u64 BE -> clock u64 LE.
pub(crate) const META_PEER: &[u8] = b"peer/";

/// The fingerprint levels kept on disk: the others are sums of these.
pub(crate) const STORED_LEVELS: [u8; 2] = [2, 4];

/// Version of the [`Meta`] record written: 2 adds the replica it came from.
const META_VERSION: u8 = 2;
/// The first version (no sender), still read.
const META_VERSION_1: u8 = 1;
const FLAG_TOMBSTONE: u8 = 1;
/// Version 1: version u8, flags u8, version 16, prev 16, hash u128 16, arrived u64 8.
pub(crate) const META_BYTES_1: usize = 2 + 2 * VERSION_BYTES + 16 + 8;
/// Version 2: version 1's fields, then from u64 8.
pub(crate) const META_BYTES: usize = META_BYTES_1 + 8;

/// What the version index holds for one replicated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) version: Version,
    pub(crate) prev: Version,
    pub(crate) tombstone: bool,
    /// [`sync::fingerprint::entry_hash`] of the entry.
    pub(crate) hash: u128,
    /// This replica's clock when the entry was stored here (tombstone collection).
    pub(crate) arrived: Hlc,
    /// The peer replica the entry was received from (it has seen it); the
    /// default id for a local write or a version 1 record.
    pub(crate) from: ReplicaId,
}

impl Meta {
    pub(crate) fn encode(&self) -> [u8; META_BYTES] {
        let mut out = [0u8; META_BYTES];
        let mut v = Vec::with_capacity(META_BYTES);
        v.push(META_VERSION);
        v.push(if self.tombstone { FLAG_TOMBSTONE } else { 0 });
        v.extend_from_slice(&self.version.to_bytes());
        v.extend_from_slice(&self.prev.to_bytes());
        v.extend_from_slice(&self.hash.to_le_bytes());
        v.extend_from_slice(&self.arrived.0.to_le_bytes());
        v.extend_from_slice(&self.from.0.to_le_bytes());
        for (o, b) in out.iter_mut().zip(v) {
            *o = b;
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Meta> {
        let from = match (bytes.first(), bytes.len()) {
            (Some(&META_VERSION), META_BYTES) => ReplicaId(u64::from_le_bytes(bytes.get(58..66)?.try_into().ok()?)),
            (Some(&META_VERSION_1), META_BYTES_1) => ReplicaId::default(),
            _ => return None,
        };
        let flags = *bytes.get(1)?;
        if flags & !FLAG_TOMBSTONE != 0 {
            return None;
        }
        let version = Version::from_bytes(bytes.get(2..18)?)?;
        let prev = Version::from_bytes(bytes.get(18..34)?)?;
        let hash = u128::from_le_bytes(bytes.get(34..50)?.try_into().ok()?);
        let arrived = Hlc(u64::from_le_bytes(bytes.get(50..58)?.try_into().ok()?));
        Some(Meta { version, prev, tombstone: flags & FLAG_TOMBSTONE != 0, hash, arrived, from })
    }
}

/// The version index key of `key` in bucket `bucket` of keyspace `ks`.
pub(crate) fn version_key(ks: u32, bucket: u32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + key.len());
    out.extend_from_slice(&ks.to_be_bytes());
    out.extend_from_slice(&bucket_bytes(bucket));
    out.extend_from_slice(key);
    out
}

/// The first version index key of bucket `bucket` (buckets past the last map
/// to the next keyspace's first key, an exclusive end).
pub(crate) fn bucket_start(ks: u32, bucket: u32) -> Vec<u8> {
    if bucket >= sync::fingerprint::LEAVES {
        return ks.saturating_add(1).to_be_bytes().to_vec();
    }
    version_key(ks, bucket, &[])
}

fn bucket_bytes(bucket: u32) -> [u8; 2] {
    u16::try_from(bucket).unwrap_or(u16::MAX).to_be_bytes()
}

/// The fingerprint key of node `node` of `level` of keyspace `ks`.
pub(crate) fn fingerprint_key(ks: u32, level: u8, node: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.extend_from_slice(&ks.to_be_bytes());
    out.push(level);
    out.extend_from_slice(&node.to_be_bytes());
    out
}

/// Reads a stored fingerprint.
pub(crate) fn decode_fingerprint(bytes: &[u8]) -> Option<Fingerprint> {
    if bytes.len() != sync::fingerprint::FINGERPRINT_BYTES {
        return None;
    }
    Fingerprint::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn meta_round_trips_and_refuses_other_lengths_and_versions() {
        let m = Meta {
            version: Version { hlc: Hlc(7), replica: ReplicaId(9) },
            prev: Version::default(),
            tombstone: true,
            hash: 0x0102,
            arrived: Hlc(11),
            from: ReplicaId(5),
        };
        let b = m.encode();
        assert_eq!(Meta::decode(&b), Some(m));
        assert_eq!(b[..2], [2, 1]);
        assert_eq!(b[58..], [5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Meta::decode(&b[..65]), None);
        let mut other = b;
        other[0] = 3;
        assert_eq!(Meta::decode(&other), None);
        // A version 1 record (as stores made before version 2 hold): no sender.
        let mut v1 = b[..58].to_vec();
        v1[0] = 1;
        assert_eq!(Meta::decode(&v1), Some(Meta { from: ReplicaId::default(), ..m }));
        v1[0] = 2;
        assert_eq!(Meta::decode(&v1), None);
        assert_eq!(version_key(1, 0x0203, b"k"), [0, 0, 0, 1, 2, 3, b'k']);
        assert_eq!(bucket_start(1, sync::fingerprint::LEAVES), [0, 0, 0, 2]);
    }
}
