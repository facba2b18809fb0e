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
//!
//! A store's keys are made once behind a credential, then unlocked by it; each
//! file gets a header (its key, wrapped) and a cipher whose seals are bound to
//! the file, the offset and the kind of block:
//!
//! ```
//! use std::sync::Arc;
//! use crypto::{Argon2Params, BlockKind, Credential, FileKind, KeyManager, StdVfs, Vfs};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let vfs: Arc<dyn Vfs> = Arc::new(StdVfs::new());
//! let cred = Credential::passphrase("correct horse battery staple");
//! let keys = KeyManager::create(&vfs, dir.path(), &cred, &Argon2Params::default())?;
//!
//! let (header, cipher) = keys.new_file(FileKind::Sst, 7, "000007.sst");
//! let sealed = cipher.seal(4096, BlockKind::SstData, b"a data block");
//! assert!(!sealed.windows(4).any(|w| w == b"data"));
//!
//! // Later, after a restart: the credential unlocks the keys, the header the file.
//! let keys = KeyManager::unlock(&vfs, dir.path(), &cred)?;
//! let cipher = keys.open_file(&header, FileKind::Sst, 7, "000007.sst")?;
//! assert_eq!(cipher.open(4096, BlockKind::SstData, &sealed)?, b"a data block");
//! // The same bytes at another offset do not open.
//! assert!(cipher.open(0, BlockKind::SstData, &sealed).is_err());
//! # Ok(())
//! # }
//! ```

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
