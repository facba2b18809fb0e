//! Small routines shared by the key-file decoders: a bounds-checked reader that turns
//! every short read into a `Corruption` error naming the file and offset, the
//! trailing-crc32 check, HKDF, and a constant-time comparison.

use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::format::CRC_LEN;

/// Reads fixed-width little-endian fields from untrusted bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], file: &'a str) -> Self {
        Reader { bytes, pos: 0, file }
    }

    /// Current offset from the start of the bytes given to `new`.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes; `what` names the field in the error if the input ends first.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(Error::corruption(self.file, self.pos as u64, format!("file ends inside {what}"))),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array::<1>(what)?))
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array::<2>(what)?))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array::<8>(what)?))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array::<4>(what)?))
    }
}

/// Checks the crc32 in the last four bytes and returns the bytes it covers.
///
/// Done before any other check so that a flipped byte anywhere (even in a version
/// byte or a credential parameter) is reported as corruption of `file`.
pub(crate) fn check_trailing_crc<'a>(bytes: &'a [u8], min_len: usize, file: &str) -> Result<&'a [u8]> {
    if bytes.len() < min_len {
        return Err(Error::corruption(
            file,
            bytes.len() as u64,
            format!("file is {} bytes, shorter than the smallest valid file ({min_len} bytes)", bytes.len()),
        ));
    }
    let split = bytes.len().saturating_sub(CRC_LEN);
    let (body, crc) = bytes.split_at(split);
    let mut stored = [0u8; CRC_LEN];
    stored.copy_from_slice(crc);
    let stored = u32::from_le_bytes(stored);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(Error::corruption(
            file,
            split as u64,
            format!("checksum mismatch: stored crc32 {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    Ok(body)
}

/// Appends the crc32 of everything in `out` so far.
pub(crate) fn append_crc(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// HKDF-SHA256 (extract with `salt`, expand with `info`) into `out`.
pub(crate) fn hkdf_sha256(ikm: &[u8], salt: Option<&[u8]>, info: &[u8], out: &mut [u8]) {
    if Hkdf::<Sha256>::new(salt, ikm).expand(info, out).is_err() {
        // Only lengths above 255 * 32 bytes are refused; every caller asks for at most 32.
        unreachable!("HKDF-SHA256 refused an output of {} bytes", out.len());
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reader_reports_offset_of_short_field() {
        let bytes = [1u8, 2, 3];
        let mut r = Reader::new(&bytes, "F");
        assert_eq!(r.u16("a").unwrap(), 0x0201);
        let err = r.u32("the count").unwrap_err();
        match err {
            Error::Corruption { file, offset, reason } => {
                assert_eq!(file, "F");
                assert_eq!(offset, 2);
                assert!(reason.contains("the count"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn crc_round_trip_and_mismatch() {
        let mut v = b"hello".to_vec();
        append_crc(&mut v);
        assert_eq!(check_trailing_crc(&v, 4, "F").unwrap(), b"hello");
        v[0] ^= 1;
        assert!(matches!(check_trailing_crc(&v, 4, "F"), Err(Error::Corruption { .. })));
        assert!(matches!(check_trailing_crc(&v[..3], 4, "F"), Err(Error::Corruption { .. })));
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
