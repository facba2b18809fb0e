//! Keyspaces as the manifest records them: named key spaces that share the
//! store's WAL, seqnos and manifest. Keyspace 0 is the default keyspace; it has
//! no create record, so a store written before keyspaces existed reads as a
//! store holding only the default keyspace.

use index::{Compression, TableOptions};

/// Id of the default keyspace, which every store has and which is never
/// created or dropped by an edit.
pub const DEFAULT_KEYSPACE_ID: u32 = 0;

/// Longest keyspace name in bytes (its length is one byte in the manifest).
pub const MAX_KEYSPACE_NAME_LEN: usize = 255;

/// A keyspace as its create record states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceMeta {
    /// Its id: above 0, never reused after a drop.
    pub id: u32,
    /// Its name: 1..=255 bytes of UTF-8, unique among live keyspaces.
    pub name: String,
    /// Its encoded options ([`KeyspaceTableOptions`]); empty when the store's
    /// options apply.
    pub options: Vec<u8>,
}

/// Checks that `name` is a valid keyspace name (1..=255 bytes; UTF-8 by type).
pub fn check_keyspace_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a keyspace name must not be empty".into());
    }
    if name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(format!("keyspace name of {} bytes exceeds {MAX_KEYSPACE_NAME_LEN}", name.len()));
    }
    Ok(())
}

/// Longest options field of a create record this format writes (every setting present).
pub const MAX_KEYSPACE_OPTIONS_LEN: usize = 6 + 5 + 5;

/// Option tag: compression, `kind u8` (0 none, 1 zstd) and `level i32` (0 for none).
const OPT_COMPRESSION: u8 = 1;
/// Option tag: bloom filter bits per key, `u32`.
const OPT_BLOOM_BITS_PER_KEY: u8 = 2;
/// Option tag: target size of an uncompressed data block, `u32` (at least 1).
const OPT_BLOCK_SIZE_BYTES: u8 = 3;

/// How the tables of one keyspace are built, as its create record's options
/// field stores it (`compaction/FORMAT.md`, tag 8): each setting that is
/// `None` is the store's. All `None` encodes as no bytes at all, so a keyspace
/// created without settings has the create record of the first format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyspaceTableOptions {
    /// Block compression of the keyspace's tables.
    pub compression: Option<Compression>,
    /// Bloom filter bits per key of the keyspace's tables (0: no filter).
    pub bloom_bits_per_key: Option<u32>,
    /// Target size of an uncompressed data block (at least 1).
    pub block_size_bytes: Option<u32>,
}

impl KeyspaceTableOptions {
    /// The options field: `tag u8, value` per setting present, in tag order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(c) = self.compression {
            out.push(OPT_COMPRESSION);
            let (kind, level) = match c {
                Compression::None => (0u8, 0i32),
                Compression::Zstd(level) => (1, level),
            };
            out.push(kind);
            out.extend_from_slice(&level.to_le_bytes());
        }
        if let Some(bits) = self.bloom_bits_per_key {
            out.push(OPT_BLOOM_BITS_PER_KEY);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        if let Some(size) = self.block_size_bytes {
            out.push(OPT_BLOCK_SIZE_BYTES);
            out.extend_from_slice(&size.to_le_bytes());
        }
        out
    }

    /// Reads an options field; `Err` says what is wrong (an unknown or repeated
    /// tag, tags out of order, a bad value, bytes cut short).
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut out = KeyspaceTableOptions::default();
        let mut rest = bytes;
        let mut last_tag = 0u8;
        let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
            if rest.len() < n {
                return Err("keyspace options cut short".into());
            }
            let (head, tail) = rest.split_at(n);
            *rest = tail;
            Ok(head.to_vec())
        };
        let u32_of = |b: Vec<u8>| b.try_into().map(u32::from_le_bytes).map_err(|_| "keyspace options cut short".to_string());
        while let Some((&tag, tail)) = rest.split_first() {
            rest = tail;
            if tag <= last_tag {
                return Err(format!("keyspace option tag {tag} repeated or out of order"));
            }
            last_tag = tag;
            match tag {
                OPT_COMPRESSION => {
                    let kind = take(&mut rest, 1)?.first().copied().unwrap_or(u8::MAX);
                    let level = u32_of(take(&mut rest, 4)?)? as i32;
                    out.compression = Some(match (kind, level) {
                        (0, 0) => Compression::None,
                        (1, level) => Compression::Zstd(level),
                        _ => return Err(format!("keyspace compression kind {kind} with level {level}")),
                    });
                }
                OPT_BLOOM_BITS_PER_KEY => out.bloom_bits_per_key = Some(u32_of(take(&mut rest, 4)?)?),
                OPT_BLOCK_SIZE_BYTES => {
                    let size = u32_of(take(&mut rest, 4)?)?;
                    if size == 0 {
                        return Err("keyspace block size 0".into());
                    }
                    out.block_size_bytes = Some(size);
                }
                other => return Err(format!("unknown keyspace option tag {other}")),
            }
        }
        Ok(out)
    }

    /// `base` (the store's table options) with this keyspace's settings applied.
    pub fn apply(&self, base: &TableOptions) -> TableOptions {
        let mut t = base.clone();
        if let Some(c) = self.compression {
            t.compression = c;
        }
        if let Some(bits) = self.bloom_bits_per_key {
            t.bloom_bits_per_key = bits;
        }
        if let Some(size) = self.block_size_bytes {
            t.block_size_bytes = usize::try_from(size).unwrap_or(usize::MAX);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn table_options_round_trip_and_bad_ones_are_refused() {
        let all = KeyspaceTableOptions { compression: Some(Compression::Zstd(-3)), bloom_bits_per_key: Some(0), block_size_bytes: Some(512) };
        let bytes = all.encode();
        assert_eq!(bytes.len(), MAX_KEYSPACE_OPTIONS_LEN);
        // The worked example of compaction/FORMAT.md.
        assert_eq!(bytes, [1, 1, 0xfd, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 3, 0, 2, 0, 0]);
        assert_eq!(KeyspaceTableOptions::decode(&bytes).unwrap(), all);
        assert!(KeyspaceTableOptions::default().encode().is_empty());
        let none = KeyspaceTableOptions { compression: Some(Compression::None), ..Default::default() };
        assert_eq!(KeyspaceTableOptions::decode(&none.encode()).unwrap(), none);
        for bad in [&[9u8, 0, 0, 0, 0][..], &[2, 1, 0, 0, 0, 2, 1, 0, 0, 0], &[3, 0, 0, 0, 0], &[1, 0, 1, 0, 0, 0], &[1, 2, 0, 0, 0, 0], &[2, 1, 0], &[3, 1, 0, 0, 0, 2, 1, 0, 0, 0]] {
            assert!(KeyspaceTableOptions::decode(bad).is_err(), "{bad:?} accepted");
        }
        for cut in 0..bytes.len() {
            let decoded = KeyspaceTableOptions::decode(&bytes[..cut]);
            assert!(decoded.is_err() || decoded.unwrap() != all, "cut at {cut}");
        }
        let base = TableOptions::default();
        let t = all.apply(&base);
        assert_eq!((t.compression, t.bloom_bits_per_key, t.block_size_bytes, t.restart_interval), (Compression::Zstd(-3), 0, 512, base.restart_interval));
    }
}
