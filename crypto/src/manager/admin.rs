//! Changing a store's keys after `create`: its keyslots (passphrase change, other
//! devices, a new recovery key) and its data-key epochs (rotation, destruction).
//!
//! Each change reads both key files from disk, changes them in memory and writes
//! them back as a pair under a new keyring key (`commit_key_files`), so a crash
//! leaves a pair that opens, and an older copy of either file stops pairing with
//! the current other one.
//! Reading the file afresh (rather than trusting this manager's copy) keeps a stale
//! manager from undoing another's change, e.g. reusing an epoch number with a new
//! key. The in-memory keyring changes only after the new `KEYRING` is durable: no
//! file is ever written under an epoch a crash could lose, and a failed write leaves
//! the manager as it was. Across processes the engine's store lock serializes
//! changes; within the process, `KEY_FILE_CHANGES` does.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{commit_key_files, open_keyring, read_key_file, KeyManager, KEYSLOTS_FILE};
use crate::error::{Error, Result};
use crate::format::{MAX_EPOCHS, MAX_KEYSLOTS_FILE_LEN};
use crate::header::FileHeader;
use crate::hybrid::HybridPublicKey;
use crate::keyring::Keyring;
use crate::keys::{Epoch, MasterKey};
use crate::keyslot::{Argon2Params, Credential, KeyState, KeyslotFile, SlotInfo, SlotKind};
use crate::recovery::RecoveryKey;
use crate::vfs::Vfs;

/// Serializes every read-modify-write of a key file in this process, whichever
/// manager (or none, for `change_passphrase`) makes it.
static KEY_FILE_CHANGES: Mutex<()> = parking_lot::const_mutex(());

/// Reads and decodes `dir/KEYSLOTS`; `NotFound` if the directory holds no store.
fn load_keyslots(vfs: &dyn Vfs, dir: &Path) -> Result<KeyslotFile> {
    let Some(bytes) = read_key_file(vfs, dir, KEYSLOTS_FILE, MAX_KEYSLOTS_FILE_LEN)? else {
        return Err(Error::NotFound(dir.display().to_string()));
    };
    KeyslotFile::decode(&bytes, KEYSLOTS_FILE)
}

/// What [`KeyManager::rekey`] did besides making a new master key.
#[derive(Debug)]
pub struct RekeyOutcome {
    /// Slots that could not be re-made without their own secret (other
    /// passphrases, raw keys, devices; the old recovery slot when no new recovery
    /// key was given) and were removed, as they were listed before the change.
    pub removed: Vec<SlotInfo>,
}

impl KeyManager {
    /// Replaces a passphrase: wraps the master key into a new passphrase slot for
    /// `new_passphrase` and removes the old slot, in one atomic rewrite of
    /// `KEYSLOTS`; the old passphrase stops working at once. The new slot's Argon2id
    /// cost is `params` raised, parameter by parameter, to the replaced slot's, so a
    /// passphrase change never makes guessing cheaper.
    ///
    /// `credential` authorizes the change. If it is a passphrase, its own slot is
    /// the one replaced. If it is another credential (the recovery key after a
    /// forgotten passphrase, a raw key, a device key), every passphrase slot is
    /// replaced by the new one. Other slots are untouched; the data keys and files
    /// are not rewritten (only the master key's wrapping changes).
    ///
    /// Errors: `NotFound` (no store), `WrongKey`, `InvalidArgument` (empty
    /// passphrase, bad parameters), `Corruption` / `Io` naming `KEYSLOTS`.
    pub fn change_passphrase(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        new_passphrase: &[u8],
        params: &Argon2Params,
    ) -> Result<()> {
        let _guard = KEY_FILE_CHANGES.lock();
        let mut keyslots = load_keyslots(&**vfs, dir)?;
        let (index, master) = keyslots.open_slot(credential)?;
        let remove: Vec<usize> = match credential {
            Credential::Passphrase(_) => vec![index],
            _ => keyslots.slots().iter().filter(|s| s.kind == Some(SlotKind::Passphrase)).map(|s| s.index).collect(),
        };
        // The new slot never costs an attacker less than the one it replaces: each
        // Argon2 parameter is the larger of the one asked for and the old slot's.
        let slots = keyslots.slots();
        let params = remove
            .iter()
            .filter_map(|&i| slots.get(i).and_then(|s| s.argon2))
            .fold(*params, |a, old| a.at_least(&old));
        let (mut keyring, state) = open_keyring(&**vfs, dir, &keyslots, &master)?;
        keyslots.replace_slots(&master, &remove, &Credential::passphrase(new_passphrase), &params)?;
        commit_key_files(&**vfs, dir, &master, &keyslots, &mut keyring, &state, &mut |_, _| {})?;
        Ok(())
    }

    /// Describes the keyslots of the store in `dir` (no credential needed: the
    /// descriptions hold no key material).
    pub fn keyslots(vfs: &Arc<dyn Vfs>, dir: &Path) -> Result<Vec<SlotInfo>> {
        Ok(load_keyslots(&**vfs, dir)?.slots())
    }

    /// Adds a keyslot for another device, given its hybrid public key; that device
    /// then unlocks with `Credential::Hybrid(its secret key)`. Returns the slot index.
    pub fn add_keyslot(&self, vfs: &Arc<dyn Vfs>, dir: &Path, recipient: &HybridPublicKey) -> Result<usize> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (mut keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        let index = keyslots.add_hybrid_slot(&self.master.read(), recipient)?;
        self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        Ok(index)
    }

    /// Adds a keyslot for any credential (a second passphrase, a raw key from an OS
    /// keystore, a device's secret key). `params` is used by passphrase slots only.
    pub fn add_credential(
        &self,
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        params: &Argon2Params,
    ) -> Result<usize> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (mut keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        let index = keyslots.add_slot(&self.master.read(), credential, params)?;
        self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        Ok(index)
    }

    /// Removes the keyslot at `index` (as listed by [`KeyManager::keyslots`]; later
    /// slots move down by one). Refuses to remove the last usable slot.
    pub fn remove_keyslot(&self, vfs: &Arc<dyn Vfs>, dir: &Path, index: usize) -> Result<SlotInfo> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (mut keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        let removed = keyslots.remove_slot(index)?;
        self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        Ok(removed)
    }

    /// Makes a new recovery key and replaces every recovery slot with one for it, in
    /// one atomic write: the old recovery key stops working at once. Also adds a
    /// recovery key to a store created without one.
    pub fn replace_recovery_key(&self, vfs: &Arc<dyn Vfs>, dir: &Path) -> Result<RecoveryKey> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (mut keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        let old: Vec<usize> = keyslots.slots().iter().filter(|s| s.recovery).map(|s| s.index).collect();
        let recovery = RecoveryKey::generate();
        let credential = Credential::Recovery(recovery.clone());
        keyslots.replace_slots(&self.master.read(), &old, &credential, &Argon2Params::default())?;
        self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        Ok(recovery)
    }

    /// Starts a new data-key epoch, makes it current and persists `KEYRING`
    /// atomically; files created afterwards are under the new epoch. Old epochs stay
    /// until [`KeyManager::destroy_epoch`], so existing files remain readable while
    /// compaction re-encrypts them.
    ///
    /// Errors: `InvalidArgument` when the keyring is full (4096 epochs) or epoch
    /// numbers are exhausted; `Io` naming `KEYRING` (the manager is then unchanged).
    pub fn rotate(&self, vfs: &Arc<dyn Vfs>, dir: &Path) -> Result<Epoch> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (keyslots, mut next, state) = self.load_own(&**vfs, dir)?;
        if next.epochs.len() >= MAX_EPOCHS {
            return Err(Error::InvalidArgument(format!(
                "the keyring holds {MAX_EPOCHS} epochs, the most it can; destroy retired epochs first"
            )));
        }
        let highest = next.epochs.keys().next_back().copied().unwrap_or(0).max(next.current);
        if highest == Epoch::MAX {
            return Err(Error::InvalidArgument("data-key epoch numbers are exhausted".into()));
        }
        let epoch = next.add_epoch();
        self.commit(&**vfs, dir, &keyslots, next, &state)?;
        Ok(epoch)
    }

    /// Destroys the data key of `epoch` and persists `KEYRING` atomically
    /// (crypto-shredding): afterwards, opening a file of that epoch fails with
    /// `Error::MissingEpoch`. Returns whether the epoch was present (an absent one
    /// writes nothing). The current epoch cannot be destroyed (`InvalidArgument`).
    ///
    /// The caller must first make sure no live file is under `epoch`
    /// ([`KeyManager::epoch_of`] on each file header).
    pub fn destroy_epoch(&self, vfs: &Arc<dyn Vfs>, dir: &Path, epoch: Epoch) -> Result<bool> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (keyslots, mut next, state) = self.load_own(&**vfs, dir)?;
        if !next.remove_epoch(epoch)? {
            // Already gone from disk (perhaps by another manager): adopt that view.
            *self.keyring.write() = next;
            return Ok(false);
        }
        // A new keyring key seals the keyring without the epoch, and the old
        // keyring's bytes are overwritten: a kept copy of the old KEYRING no
        // longer opens under the current KEYSLOTS, whatever credential is used.
        self.commit(&**vfs, dir, &keyslots, next, &state)?;
        Ok(true)
    }

    /// Brings the key files of `dir` to the current layout and settles an
    /// interrupted key-file change: a store of the first layout gets a sealed
    /// `KEYSLOTS` and a `KEYRING` under a keyring key (its integrity root fixed
    /// from MK); a `KEYSLOTS` still holding a next keyring key is rewritten
    /// without it; the temporary files of a key-file change a crash cut short
    /// before its rename are overwritten and removed (they hold keys sealed
    /// under a keyring key of that change). Returns whether anything was
    /// written. Called by a writable open, under the store lock.
    pub fn upgrade(&self, vfs: &Arc<dyn Vfs>, dir: &Path) -> Result<bool> {
        let _guard = KEY_FILE_CHANGES.lock();
        for name in [KEYSLOTS_FILE, super::KEYRING_FILE] {
            super::remove_leftover_temporary(&**vfs, dir, name)?;
        }
        let (keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        if keyslots.is_settled() {
            return Ok(false);
        }
        self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        Ok(true)
    }

    /// Replaces the master key (like `cryptsetup reencrypt` for the key layer): a
    /// new random MK, a fresh `KEYSLOTS` with a slot re-made for `credential`
    /// (same kind, same Argon2 cost) and, if `recovery` is given, a recovery slot
    /// for it; the keyring is resealed under a new keyring key. Slots that need
    /// their own secret to be re-made (other passphrases, raw keys, device keys,
    /// the old recovery slot) are removed and listed in the outcome: an old MK,
    /// however obtained, opens nothing of the store any more. The data keys are
    /// not changed here; the engine's `Db::rekey` rotates them too.
    ///
    /// A caller that gives a new recovery key should have it written down (or
    /// synced to its file) before calling: once this returns, the old one is void.
    pub fn rekey(
        &self,
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        credential: &Credential,
        recovery: Option<&RecoveryKey>,
    ) -> Result<RekeyOutcome> {
        let _guard = KEY_FILE_CHANGES.lock();
        let (keyslots, keyring, state) = self.load_own(&**vfs, dir)?;
        if !keyslots.is_settled() {
            // A first-layout KEYRING is sealed under MK itself: upgrade it first,
            // so that the crash-safe pair write below never depends on the old MK.
            self.commit(&**vfs, dir, &keyslots, keyring, &state)?;
        }
        let (keyslots, mut keyring, state) = self.load_own(&**vfs, dir)?;
        let (index, _) = keyslots.open_slot(credential)?;
        let slots = keyslots.slots();
        let params = slots.get(index).and_then(|s| s.argon2).unwrap_or_default();
        let master = MasterKey::random();
        let mut fresh = KeyslotFile::create(&master, self.store_id, credential, &params)?;
        if let Some(recovery) = recovery {
            fresh.add_slot(&master, &Credential::Recovery(recovery.clone()), &params)?;
        }
        let removed = slots.into_iter().filter(|s| s.index != index).collect();
        let new_master = master.clone();
        commit_key_files(&**vfs, dir, &master, &fresh, &mut keyring, &state, &mut |step, k| match step {
            1 => *self.master.write() = new_master.clone(),
            _ => *self.keyring.write() = k.clone(),
        })?;
        Ok(RekeyOutcome { removed })
    }

    /// The epochs whose data keys the keyring holds, oldest first.
    pub fn epochs(&self) -> Vec<Epoch> {
        self.keyring.read().epochs()
    }

    /// The epoch a data file is under, from its header (the first
    /// [`crate::FILE_HEADER_LEN`] bytes), without unwrapping its key: lets the engine
    /// find the files to re-encrypt before destroying an epoch. `file` names the
    /// file in errors.
    pub fn epoch_of(header_bytes: &[u8], file: &str) -> Result<Epoch> {
        Ok(FileHeader::decode(header_bytes, file)?.epoch)
    }

    /// Both key files of `dir`, checked to be this store's and to pair, and the
    /// key state a change starts from.
    fn load_own(&self, vfs: &dyn Vfs, dir: &Path) -> Result<(KeyslotFile, Keyring, KeyState)> {
        let keyslots = self.load_own_keyslots(vfs, dir)?;
        let (keyring, state) = open_keyring(vfs, dir, &keyslots, &self.master.read())?;
        Ok((keyslots, keyring, state))
    }

    /// Writes the pair and, once it is durable, adopts `keyring` in memory.
    fn commit(&self, vfs: &dyn Vfs, dir: &Path, keyslots: &KeyslotFile, mut keyring: Keyring, from: &KeyState) -> Result<()> {
        let master = self.master.read().clone();
        commit_key_files(vfs, dir, &master, keyslots, &mut keyring, from, &mut |step, k| {
            if step == 2 {
                *self.keyring.write() = k.clone();
            }
        })?;
        Ok(())
    }

    /// `KEYSLOTS` of `dir`, checked to be this store's.
    fn load_own_keyslots(&self, vfs: &dyn Vfs, dir: &Path) -> Result<KeyslotFile> {
        let keyslots = load_keyslots(vfs, dir)?;
        if keyslots.store_id() != self.store_id || !keyslots.matches(&self.master.read()) {
            return Err(Error::corruption(
                KEYSLOTS_FILE,
                9,
                format!("{KEYSLOTS_FILE} in {} belongs to another store than the one unlocked", dir.display()),
            ));
        }
        Ok(keyslots)
    }
}

#[cfg(test)]
mod tests;
