//! Key types. Every key is zeroized on drop and never printed by `Debug`.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A data-key epoch number. Epoch numbers only grow; a key rotation starts a new one.
pub type Epoch = u32;

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw key bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            /// A fresh key from the operating system's CSPRNG.
            pub fn random() -> Self {
                let mut bytes = [0u8; 32];
                crate::keys::fill_random(&mut bytes);
                Self(bytes)
            }
            /// The raw key bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_key!(
    /// The store's master key: 32 random bytes made at `init`, stored only wrapped by keyslots.
    MasterKey
);
secret_key!(
    /// A data-encryption key of one epoch; wraps the per-file keys.
    DataKey
);
secret_key!(
    /// The random key of one file, wrapped by a data key in the file header.
    FileKey
);

/// Fills `buf` from the operating system's CSPRNG.
///
/// Failure of the OS random source is not recoverable for a key-making program, so
/// it aborts with a message rather than continuing with weak keys.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::getrandom(buf) {
        // An assertion on the environment, not on input: no key may be made without entropy.
        panic!("operating-system random source failed: {e}");
    }
}
