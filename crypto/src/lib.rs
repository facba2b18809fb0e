//! Everything between the engine's bytes and the disk.
//!
//! This crate owns the key hierarchy (keyslots → master key → data-key epochs →
//! per-file keys; keyslots for passphrases, raw keys, other devices' hybrid
//! X25519 + ML-KEM-768 keys and the recovery key), key rotation, the
//! AES-256-GCM-SIV envelope that every block and record on disk is sealed with, the fixed file header that carries each file's wrapped key, and
//! the [`vfs`] layer through which every file operation of the engine passes (so
//! tests can inject faults and simulate power loss). Nothing reaches the disk
//! except through here, which is what makes "no plaintext on disk" checkable.
//! The byte layouts are documented in `crypto/FORMAT.md`.

#![deny(missing_docs)]

mod codec;
mod envelope;
mod error;
mod format;
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(test)]
mod format_examples;
mod header;
mod hybrid;
#[cfg(feature = "bench-insecure-null-cipher")]
pub mod insecure_null_cipher;
#[cfg(not(feature = "bench-insecure-null-cipher"))]
mod insecure_null_cipher;
mod keyring;
mod keys;
mod keyslot;
mod manager;
pub mod names;
mod recovery;
#[cfg(test)]
mod test_vectors;
pub mod vfs;
pub use vfs::{RandomAccessFile, StdVfs, Vfs, WritableFile};

pub use envelope::{BlockKind, FileCipher, TAG_LEN};
pub use error::{Error, Result};
pub use format::{FILE_HEADER_LEN, FORMAT_VERSION};
pub use header::{FileHeader, FileKind};
pub use keyring::Keyring;
pub use hybrid::{HybridKeypair, HybridPublicKey, HybridSecretKey};
pub use keys::{DataKey, Epoch, FileKey, MasterKey};
pub use recovery::{RecoveryKey, RecoveryShare};
pub use keyslot::{Argon2Params, Credential, KeyslotFile, SlotInfo, SlotKind};
pub use manager::{KeyManager, RekeyOutcome, INTEGRITY_TAG_LEN, KEYRING_FILE, KEYSLOTS_FILE};
