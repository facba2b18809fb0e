//! The keyring: the data-key epochs, sealed under a key derived from the master key
//! and kept in the `KEYRING` file. Rotation adds an epoch; shredding removes one.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::keys::{DataKey, Epoch, MasterKey};

/// The store's data-key epochs; `current` wraps the keys of newly written files.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub(crate) epochs: BTreeMap<Epoch, DataKey>,
    pub(crate) current: Epoch,
}

impl Keyring {
    /// A keyring with one fresh random epoch (number 1).
    pub fn new_random() -> Self {
        let mut epochs = BTreeMap::new();
        epochs.insert(1, DataKey::random());
        Keyring { epochs, current: 1 }
    }

    /// The epoch new files are written under.
    pub fn current(&self) -> Epoch {
        self.current
    }

    /// The data key of `epoch`, if the keyring still holds it.
    pub fn key(&self, epoch: Epoch) -> Option<&DataKey> {
        self.epochs.get(&epoch)
    }

    /// The epochs the keyring holds, oldest first.
    pub fn epochs(&self) -> Vec<Epoch> {
        self.epochs.keys().copied().collect()
    }

    /// Serializes and seals the keyring under `master` for the store `store_id`.
    pub fn seal(&self, master: &MasterKey, store_id: &[u8; 16]) -> Vec<u8> {
        let _ = (master, store_id);
        todo!("keyring file format")
    }

    /// Opens a sealed keyring file; `file` names it in errors.
    pub fn open(bytes: &[u8], master: &MasterKey, store_id: &[u8; 16], file: &str) -> Result<Self> {
        let _ = (bytes, master, store_id, file);
        todo!("keyring file format")
    }
}
