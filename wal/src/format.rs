//! On-disk constants of the log format and the 12-byte frame header codec.
//! The layout, with a diagram and a worked example, is in `wal/FORMAT.md`; the
//! rules that tell a torn tail from corruption are in `reader.rs` and that file.

use crypto::{BlockKind, FileKind, FILE_HEADER_LEN, TAG_LEN};

/// Length of the header in front of every record: `len u32 | len_check u32 | crc u32`.
pub const FRAME_HEADER_LEN: usize = 12;

/// Largest record payload (plaintext) a log accepts: 512 MiB.
pub const MAX_RECORD_BYTES: usize = 512 * 1024 * 1024;

/// Largest value of a frame's `len` field: the sealed payload of a maximal record.
pub(crate) const MAX_SEALED_LEN: u32 = (MAX_RECORD_BYTES + TAG_LEN) as u32;

/// Smallest value of a frame's `len` field: an empty record still carries its tag.
pub(crate) const MIN_SEALED_LEN: u32 = TAG_LEN as u32;

/// XORed into the crc of the length bytes, so the check is not a plain crc32: an
/// all-zero header fails it (asserted below), and data that embeds its own crc32
/// values is not mistaken for a frame header.
pub(crate) const LEN_CHECK_MASK: u32 = 0xA282_EAD8;

/// Offset of the first frame: frames follow the crypto file header.
pub(crate) const FIRST_FRAME_OFFSET: u64 = FILE_HEADER_LEN as u64;

/// Zero bytes in a row that mark a frame failing a check as cut short rather than
/// damaged: where a real frame holds ciphertext (its sealed payload, whose first
/// and last 16 bytes follow the header and end the frame), this many zeros occur
/// with probability about 2^-128 per position, and one damaged byte cannot make
/// them. The tag's length: a tag that never reached the disk is such a run.
pub(crate) const TORN_ZERO_RUN: usize = TAG_LEN;

const _: () = assert!(FRAME_HEADER_LEN == 4 + 4 + 4);
const _: () = assert!(FILE_HEADER_LEN == 84);
// The sealed length must fit the u32 `len` field, and the whole frame in a usize.
const _: () = assert!((MAX_RECORD_BYTES as u64) + (TAG_LEN as u64) <= u32::MAX as u64);
const _: () = assert!((MAX_SEALED_LEN as u64) + (FRAME_HEADER_LEN as u64) <= usize::MAX as u64);
// An all-zero header must never pass its length check, or zero-filled space left by
// a crash would be read as an empty record instead of a torn tail.
const _: () = assert!(len_check(0) != 0);
// A zero-length sealed payload cannot exist, so an all-zero header is never a frame.
const _: () = assert!(MIN_SEALED_LEN > 0);
// Every frame has at least TORN_ZERO_RUN bytes of sealed payload after its header,
// where the torn-frame test for a failed header looks.
const _: () = assert!(MIN_SEALED_LEN as usize >= TORN_ZERO_RUN);

/// The record block kind sealed into files of `kind`, or `None` for files that are not logs.
pub(crate) fn block_kind_for(kind: FileKind) -> Option<BlockKind> {
    match kind {
        FileKind::Wal => Some(BlockKind::WalRecord),
        FileKind::Manifest => Some(BlockKind::ManifestRecord),
        _ => None,
    }
}

/// crc32 (IEEE, as `crc32fast` computes it), usable in constant expressions.
pub(crate) const fn crc32_const(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut rest = bytes;
    while let [b, tail @ ..] = rest {
        crc ^= *b as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        rest = tail;
    }
    !crc
}

/// The `len_check` field for a frame whose sealed payload is `len` bytes.
pub(crate) const fn len_check(len: u32) -> u32 {
    crc32_const(&len.to_le_bytes()) ^ LEN_CHECK_MASK
}

/// A decoded frame header; see `FORMAT.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Length of the sealed payload (plaintext + tag).
    pub(crate) len: u32,
    /// `len_check(len)` as written.
    pub(crate) len_check: u32,
    /// crc32 of the sealed payload.
    pub(crate) crc: u32,
}

impl FrameHeader {
    /// The header of a frame around `sealed`.
    pub(crate) fn for_payload(sealed: &[u8]) -> Self {
        // Callers checked the record size against MAX_RECORD_BYTES first.
        let len = u32::try_from(sealed.len()).unwrap_or(u32::MAX);
        FrameHeader { len, len_check: len_check(len), crc: crc32fast::hash(sealed) }
    }

    pub(crate) fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        for (dst, src) in out.iter_mut().zip(
            self.len.to_le_bytes().into_iter().chain(self.len_check.to_le_bytes()).chain(self.crc.to_le_bytes()),
        ) {
            *dst = src;
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 4];
            for (dst, src) in w.iter_mut().zip(bytes.iter().skip(i * 4)) {
                *dst = *src;
            }
            u32::from_le_bytes(w)
        };
        FrameHeader { len: word(0), len_check: word(1), crc: word(2) }
    }

    /// Whether the length field is protected by a matching check.
    pub(crate) fn len_checks(&self) -> bool {
        self.len_check == len_check(self.len)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn const_crc_matches_crc32fast() {
        for input in [&b""[..], b"a", b"123456789", &[0u8; 4], &[0xFF; 4], &[0x15, 0, 0, 0]] {
            assert_eq!(crc32_const(input), crc32fast::hash(input), "{input:?}");
        }
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32_const(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = FrameHeader::for_payload(&[7u8; 21]);
        let bytes = h.encode();
        assert_eq!(&bytes[..4], &21u32.to_le_bytes());
        assert_eq!(&bytes[4..8], &len_check(21).to_le_bytes());
        assert_eq!(&bytes[8..], &crc32fast::hash(&[7u8; 21]).to_le_bytes());
        assert_eq!(FrameHeader::decode(&bytes), h);
        assert!(h.len_checks());
        assert!(!FrameHeader::decode(&[0u8; FRAME_HEADER_LEN]).len_checks());
    }

    #[test]
    fn no_real_header_is_one_byte_away_from_all_zeros() {
        // A valid length is non-zero; if it has a single non-zero byte, its check
        // must be non-zero, so every real header has two non-zero bytes in its first
        // eight and one flipped byte cannot make it read as zero-filled space.
        for shift in [0u32, 8, 16, 24] {
            for b in 1u32..=255 {
                let len = b << shift;
                if (MIN_SEALED_LEN..=MAX_SEALED_LEN).contains(&len) {
                    assert_ne!(len_check(len), 0, "len {len:#x}");
                }
            }
        }
    }

    #[test]
    fn every_single_byte_change_of_the_length_fails_its_check() {
        let h = FrameHeader::for_payload(&[1u8; 300]).encode();
        for i in 0..8 {
            for bit in 0..8 {
                let mut bad = h;
                bad[i] ^= 1 << bit;
                assert!(!FrameHeader::decode(&bad).len_checks(), "flip of bit {bit} in byte {i}");
            }
        }
    }
}
