//! On-disk constants of the crypto layer. See `crypto/FORMAT.md`.

/// Magic at the start of every encrypted data file (WAL segment, SSTable, manifest, blob file).
pub(crate) const FILE_MAGIC: [u8; 8] = *b"SYNAPSED";
/// Format version written in every file header; readers refuse anything newer.
pub const FORMAT_VERSION: u8 = 1;
/// AES-256-GCM-SIV nonce length.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of a wrapped 32-byte key: nonce + ciphertext + tag.
pub(crate) const WRAPPED_KEY_LEN: usize = NONCE_LEN + 32 + 16;
/// Bytes of the header before the wrapped key; they are the AAD of the key wrap.
pub(crate) const HEADER_PREFIX_LEN: usize = 8 + 1 + 1 + 2 + 4 + 8;
/// Total length of the file header that starts every encrypted data file.
pub const FILE_HEADER_LEN: usize = HEADER_PREFIX_LEN + WRAPPED_KEY_LEN;

const _: () = assert!(FILE_HEADER_LEN == 84);
const _: () = assert!(WRAPPED_KEY_LEN == 60);
