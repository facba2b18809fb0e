//! The AES-256-GCM-SIV envelope around every block and record on disk.
//!
//! The nonce is derived from the block's byte offset and kind, and the AAD binds the
//! file id, the offset and the kind, so a block moved to another offset, swapped
//! with a block of another file, or relabelled as another kind fails authentication.
//! Files are append-only and every file has its own random key, so a
//! (file key, offset) pair never seals two different blocks.
//!
//! The cipher itself is in [`aead`]: the file key is prepared once, when the
//! [`FileCipher`] is made, and no block rebuilds or allocates anything of it.

mod aead;

use std::fmt;
use std::sync::Arc;

use self::aead::{BlockAead, NONCE_LEN};

use crate::error::{Error, Result};
use crate::keys::FileKey;

/// Length of the authentication tag appended to every sealed block.
pub const TAG_LEN: usize = 16;

/// What a sealed block is; part of the nonce and the AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlockKind {
    /// One write-ahead-log record.
    WalRecord = 1,
    /// An SSTable data block.
    SstData = 2,
    /// An SSTable block index.
    SstIndex = 3,
    /// An SSTable bloom filter.
    SstFilter = 4,
    /// An SSTable properties block.
    SstProperties = 5,
    /// One manifest (version edit) record.
    ManifestRecord = 6,
    /// A chunk of a blob file.
    BlobChunk = 7,
    /// The SSTable metaindex / footer block.
    SstMeta = 8,
}

/// Seals and opens the blocks of one file with that file's key.
#[derive(Clone)]
pub struct FileCipher {
    cipher: BlockAead,
    file_id: u64,
    file: Arc<str>,
}

impl fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCipher").field("file_id", &self.file_id).field("file", &self.file).finish_non_exhaustive()
    }
}

fn nonce_for(offset: u64, kind: BlockKind) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&offset.to_le_bytes());
    n[8] = kind as u8;
    n
}

impl FileCipher {
    /// A cipher for the file `file_id` (named `file` in error messages) with `key`.
    pub fn new(key: &FileKey, file_id: u64, file: impl Into<Arc<str>>) -> Self {
        Self { cipher: BlockAead::new(key.as_bytes()), file_id, file: file.into() }
    }

    /// The id of the file this cipher belongs to.
    pub fn file_id(&self) -> u64 {
        self.file_id
    }

    /// The file's name as used in error messages.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    fn aad(&self, offset: u64, kind: BlockKind) -> [u8; 17] {
        let mut a = [0u8; 17];
        a[..8].copy_from_slice(&self.file_id.to_le_bytes());
        a[8..16].copy_from_slice(&offset.to_le_bytes());
        a[16] = kind as u8;
        a
    }

    /// Encrypts `buf` in place and appends the tag (`buf` grows by [`TAG_LEN`]).
    pub fn seal_in_place(&self, offset: u64, kind: BlockKind, buf: &mut Vec<u8>) {
        self.seal_tail_in_place(offset, kind, buf, 0);
    }

    /// Encrypts `buf[start..]` in place and appends the tag, leaving `buf[..start]`
    /// (say, a frame header still to be filled in) as it is.
    pub fn seal_tail_in_place(&self, offset: u64, kind: BlockKind, buf: &mut Vec<u8>, start: usize) {
        if crate::insecure_null_cipher::is_on() {
            buf.extend_from_slice(&[0u8; TAG_LEN]);
            return;
        }
        let nonce = nonce_for(offset, kind);
        let aad = self.aad(offset, kind);
        let Some(tail) = buf.get_mut(start..) else {
            unreachable!("seal_tail_in_place: start {start} past the end of the buffer");
        };
        let tag = self.cipher.seal(&nonce, &aad, tail);
        buf.extend_from_slice(&tag);
    }

    /// Encrypts `plaintext` into a new buffer of `plaintext.len() + TAG_LEN` bytes.
    pub fn seal(&self, offset: u64, kind: BlockKind, plaintext: &[u8]) -> Vec<u8> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.seal_in_place(offset, kind, &mut buf);
        buf
    }

    /// Authenticates and decrypts `buf` in place (it shrinks by [`TAG_LEN`]).
    ///
    /// A failed tag is reported as corruption of this file at `offset`; `buf` then
    /// holds no plaintext (its bytes are unspecified: zeros or the ciphertext).
    pub fn open_in_place(&self, offset: u64, kind: BlockKind, buf: &mut Vec<u8>) -> Result<()> {
        let Some(msg_len) = buf.len().checked_sub(TAG_LEN) else {
            return Err(Error::corruption(&*self.file, offset, format!("{kind:?} shorter than its tag")));
        };
        if crate::insecure_null_cipher::is_on() {
            buf.truncate(msg_len);
            return Ok(());
        }
        let nonce = nonce_for(offset, kind);
        let aad = self.aad(offset, kind);
        let (msg, tag_bytes) = buf.split_at_mut(msg_len);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        if !self.cipher.open(&nonce, &aad, msg, &tag) {
            return Err(Error::corruption(&*self.file, offset, format!("{kind:?} failed authentication")));
        }
        buf.truncate(msg_len);
        Ok(())
    }

    /// Authenticates and decrypts `ciphertext` into a new buffer.
    pub fn open(&self, offset: u64, kind: BlockKind, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut buf = ciphertext.to_vec();
        self.open_in_place(offset, kind, &mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = FileKey::random();
        let c = FileCipher::new(&key, 7, "000007.sst");
        let sealed = c.seal(100, BlockKind::SstData, b"hello block");
        assert_eq!(sealed.len(), 11 + TAG_LEN);
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(c.open(100, BlockKind::SstData, &sealed).unwrap(), b"hello block");
        // Moved to another offset, relabelled, or opened by another file: refused.
        assert!(c.open(101, BlockKind::SstData, &sealed).is_err());
        assert!(c.open(100, BlockKind::SstIndex, &sealed).is_err());
        let other = FileCipher::new(&key, 8, "000008.sst");
        let err = other.open(100, BlockKind::SstData, &sealed).unwrap_err();
        assert!(err.to_string().contains("000008.sst"), "{err}");
        let mut flipped = sealed.clone();
        flipped[3] ^= 1;
        assert!(c.open(100, BlockKind::SstData, &flipped).is_err());
    }
}
