//! On-disk constants of the SSTable format and the small codecs (varints, fixed-width
//! integers, block handles, the footer) shared by the builder and the reader.
//! `index/FORMAT.md` documents the layout these constants describe; keep both in step.

use crypto::{FILE_HEADER_LEN, TAG_LEN};

/// Magic at the very end of every SSTable (inside the plaintext footer).
pub(crate) const TABLE_MAGIC: [u8; 8] = *b"SYNSST\x01\x00";
/// Version of the table layout written in the footer; readers refuse newer ones.
pub(crate) const TABLE_FORMAT_VERSION: u8 = 1;

/// Length of the crypto file header at offset 0.
pub(crate) const HEADER_LEN: u64 = FILE_HEADER_LEN as u64;
/// Encoded block handle: offset u64 + size u32.
pub(crate) const HANDLE_LEN: usize = 12;
/// Footer: meta handle (12) | version (1) | reserved zero (3) | crc32 (4) | magic (8).
pub(crate) const FOOTER_LEN: usize = HANDLE_LEN + 1 + 3 + 4 + 8;
/// Bytes of the footer the crc covers before the crc field itself.
const FOOTER_CRC_AT: usize = HANDLE_LEN + 1 + 3;
/// Meta block body: handles of filter, index and properties.
pub(crate) const META_LEN: usize = 3 * HANDLE_LEN;

/// Compression tag of a block stored as is.
pub(crate) const COMPRESSION_NONE: u8 = 0;
/// Compression tag of a zstd block (`raw_len u32 || zstd frame` follows the tag).
pub(crate) const COMPRESSION_ZSTD: u8 = 1;
/// Bytes a sealed block adds around its body: compression tag + AEAD tag.
pub(crate) const BLOCK_OVERHEAD: usize = 1 + TAG_LEN;

/// Largest decoded block this build reads or writes; bounds every allocation made
/// from a length found on disk.
pub(crate) const MAX_BLOCK_BYTES: usize = 1 << 28;
/// Largest user key accepted by the builder.
pub(crate) const MAX_USER_KEY_BYTES: usize = 1 << 20;
/// Largest value accepted by the builder (larger values belong in blob files).
pub(crate) const MAX_VALUE_BYTES: usize = 64 << 20;
/// Restart points per index block; the index is decoded whole at open, so this only
/// trades prefix-compression ratio against nothing.
pub(crate) const INDEX_RESTART_INTERVAL: usize = 16;
/// The builder hands its buffer to the file once this many bytes are pending.
pub(crate) const WRITE_BUFFER_BYTES: usize = 64 << 10;
/// Version byte that starts the user-properties section of a properties block
/// (the fixed part without a section is the block's first layout, version 1).
pub(crate) const USER_PROPERTIES_VERSION: u8 = 2;
/// Most bytes the user-properties section of one table may take: small
/// per-table facts (timestamps, fingerprints), not data.
pub const MAX_USER_PROPERTIES_BYTES: usize = 64 << 10;
/// Longest user property name in bytes (its length is one byte on disk).
pub const MAX_PROPERTY_NAME_BYTES: usize = 255;

const _: () = assert!(FOOTER_LEN == 28);
const _: () = assert!(FOOTER_CRC_AT + 4 + TABLE_MAGIC.len() == FOOTER_LEN);
const _: () = assert!(MAX_USER_KEY_BYTES + 8 + MAX_VALUE_BYTES + 64 < MAX_BLOCK_BYTES);
const _: () = assert!(MAX_BLOCK_BYTES < u32::MAX as usize);
const _: () = assert!(MAX_PROPERTY_NAME_BYTES <= u8::MAX as usize);
const _: () = assert!(MAX_USER_PROPERTIES_BYTES + 2 * (MAX_USER_KEY_BYTES + 12) + 56 < MAX_BLOCK_BYTES);

/// Where a block lives: its offset in the file and its size on disk (tags included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlockHandle {
    pub(crate) offset: u64,
    pub(crate) size: u32,
}

impl BlockHandle {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        Some(BlockHandle { offset: read_u64(bytes, 0)?, size: read_u32(bytes, 8)? })
    }

    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.size)
    }

    /// Whether the handle is a plausible block lying inside `[start, end)`.
    pub(crate) fn within(&self, start: u64, end: u64) -> bool {
        self.offset >= start
            && (self.size as usize) >= BLOCK_OVERHEAD
            && (self.size as usize) <= MAX_BLOCK_BYTES + BLOCK_OVERHEAD + 4
            && self.offset.checked_add(u64::from(self.size)).is_some_and(|e| e <= end)
    }
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) meta: BlockHandle,
    pub(crate) version: u8,
}

/// Why a footer was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FooterError {
    Short,
    Magic,
    Crc,
    Reserved,
    NewerVersion(u8),
    BadVersion(u8),
}

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut v = Vec::with_capacity(FOOTER_LEN);
        self.meta.encode_into(&mut v);
        v.push(self.version);
        v.extend_from_slice(&[0u8; 3]);
        let crc = footer_crc(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        v.extend_from_slice(&TABLE_MAGIC);
        let mut out = [0u8; FOOTER_LEN];
        out.copy_from_slice(&v);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FooterError> {
        if bytes.len() != FOOTER_LEN {
            return Err(FooterError::Short);
        }
        if bytes.get(FOOTER_LEN - TABLE_MAGIC.len()..) != Some(&TABLE_MAGIC[..]) {
            return Err(FooterError::Magic);
        }
        let covered = bytes.get(..FOOTER_CRC_AT).ok_or(FooterError::Short)?;
        if read_u32(bytes, FOOTER_CRC_AT) != Some(footer_crc(covered)) {
            return Err(FooterError::Crc);
        }
        let version = bytes.get(HANDLE_LEN).copied().ok_or(FooterError::Short)?;
        if version > TABLE_FORMAT_VERSION {
            return Err(FooterError::NewerVersion(version));
        }
        if version != TABLE_FORMAT_VERSION {
            return Err(FooterError::BadVersion(version));
        }
        if bytes.get(HANDLE_LEN + 1..FOOTER_CRC_AT) != Some(&[0u8; 3][..]) {
            return Err(FooterError::Reserved);
        }
        let meta = BlockHandle::decode(bytes).ok_or(FooterError::Short)?;
        Ok(Footer { meta, version })
    }
}

/// crc32 over the footer bytes before the crc, then the magic (so every footer byte
/// is covered either by the crc or by the magic comparison).
fn footer_crc(covered: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(covered);
    h.update(&TABLE_MAGIC);
    h.finalize()
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(u32::from_le_bytes(a))
}

pub(crate) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// Appends `v` as a LEB128 varint (at most 5 bytes).
#[inline]
pub(crate) fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint32 at `*pos`, advancing it; `None` if truncated or overlong.
#[inline]
pub(crate) fn get_varint32(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    // Lengths in blocks are mostly below 128: one byte, no loop.
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u32::from(first));
    }
    let mut result: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        if shift == 28 && b > 0x0f {
            return None;
        }
        result |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(result);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn varint_round_trip_and_rejects_bad_input() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, 1 << 21, u32::MAX] {
            let mut b = Vec::new();
            put_varint32(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_varint32(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
            let mut pos = 0;
            assert_eq!(get_varint32(&b[..b.len() - 1], &mut pos), None);
        }
        let mut pos = 0;
        assert_eq!(get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x10], &mut pos), None);
    }

    #[test]
    fn footer_round_trip_and_every_flip_refused() {
        let f = Footer { meta: BlockHandle { offset: 1234, size: 53 }, version: TABLE_FORMAT_VERSION };
        let enc = f.encode();
        assert_eq!(Footer::decode(&enc), Ok(f));
        for i in 0..FOOTER_LEN {
            for bit in 0..8 {
                let mut bad = enc;
                bad[i] ^= 1 << bit;
                assert!(Footer::decode(&bad).is_err(), "flip of bit {bit} at {i} accepted");
            }
        }
    }
}
