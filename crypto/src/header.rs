//! The fixed header at the start of every encrypted data file.
//!
//! ```text
//! 0        8     9      10      12       16        24                      84
//! | magic  | ver | kind | rsvd  | epoch  | file id | wrapped file key (60) |
//! ```
//! The wrapped key is `nonce(12) || AES-256-GCM-SIV(DEK[epoch], file key)(32) || tag(16)`
//! with the first 24 header bytes as AAD, so every header byte is authenticated.

use crate::error::{Error, Result};
use crate::format::{FILE_HEADER_LEN, FILE_MAGIC, FORMAT_VERSION, HEADER_PREFIX_LEN, WRAPPED_KEY_LEN};
use crate::keys::Epoch;

/// What a data file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FileKind {
    /// A write-ahead-log segment.
    Wal = 1,
    /// An SSTable.
    Sst = 2,
    /// A manifest (log of version edits).
    Manifest = 3,
    /// A blob file (separated large values).
    Blob = 4,
}

impl FileKind {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => FileKind::Wal,
            2 => FileKind::Sst,
            3 => FileKind::Manifest,
            4 => FileKind::Blob,
            _ => return None,
        })
    }
}

/// A parsed file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// What the file holds.
    pub kind: FileKind,
    /// Data-key epoch whose key wraps the file key.
    pub epoch: Epoch,
    /// The file's id (its file number in the store).
    pub file_id: u64,
    /// `nonce || ciphertext || tag` of the file key.
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl FileHeader {
    /// The 24 bytes before the wrapped key (the AAD of the key wrap).
    pub(crate) fn prefix(&self) -> [u8; HEADER_PREFIX_LEN] {
        let mut p = [0u8; HEADER_PREFIX_LEN];
        p[..8].copy_from_slice(&FILE_MAGIC);
        p[8] = FORMAT_VERSION;
        p[9] = self.kind as u8;
        // p[10..12] reserved, zero.
        p[12..16].copy_from_slice(&self.epoch.to_le_bytes());
        p[16..24].copy_from_slice(&self.file_id.to_le_bytes());
        p
    }

    /// Serializes the header.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        out[..HEADER_PREFIX_LEN].copy_from_slice(&self.prefix());
        out[HEADER_PREFIX_LEN..].copy_from_slice(&self.wrapped_key);
        out
    }

    /// Parses a header; `file` names the file in errors.
    pub fn decode(bytes: &[u8], file: &str) -> Result<Self> {
        let Some(bytes) = bytes.get(..FILE_HEADER_LEN) else {
            return Err(Error::corruption(file, 0, "file shorter than its header"));
        };
        if bytes.get(..8) != Some(&FILE_MAGIC[..]) {
            return Err(Error::corruption(file, 0, "bad magic: not a synapsed-storage file"));
        }
        let version = bytes.get(8).copied().unwrap_or(0);
        if version != FORMAT_VERSION {
            if version > FORMAT_VERSION {
                return Err(Error::UnsupportedVersion { file: file.into(), found: version, supported: FORMAT_VERSION });
            }
            return Err(Error::corruption(file, 8, format!("bad format version {version}")));
        }
        let kind = bytes
            .get(9)
            .and_then(|b| FileKind::from_u8(*b))
            .ok_or_else(|| Error::corruption(file, 9, "unknown file kind"))?;
        if bytes.get(10..12) != Some(&[0u8, 0][..]) {
            return Err(Error::corruption(file, 10, "reserved header bytes are not zero"));
        }
        let mut e = [0u8; 4];
        e.copy_from_slice(bytes.get(12..16).unwrap_or(&[0; 4]));
        let mut id = [0u8; 8];
        id.copy_from_slice(bytes.get(16..24).unwrap_or(&[0; 8]));
        let mut wrapped_key = [0u8; WRAPPED_KEY_LEN];
        wrapped_key.copy_from_slice(bytes.get(HEADER_PREFIX_LEN..).unwrap_or(&[0; WRAPPED_KEY_LEN]));
        Ok(FileHeader { kind, epoch: u32::from_le_bytes(e), file_id: u64::from_le_bytes(id), wrapped_key })
    }
}
