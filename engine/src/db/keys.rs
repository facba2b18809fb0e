//! Key management of an open store: creating a store with a recovery key,
//! changing a passphrase, adding keyslots, and rotating data keys.
//!
//! Rotation makes a new data-key epoch current and then moves every byte still
//! sealed under an older epoch to it: the WAL rolls to a new segment and the
//! memtable is flushed (so the old segments become obsolete), the manifest rolls
//! to a new file, and every SSTable under an older epoch is rewritten by a
//! compaction that runs whether or not its level is over target. Only when no
//! file in the directory is under an old epoch any more is that epoch's key
//! destroyed (crypto-shredding): the decision is taken from the file headers on
//! disk, not from the manifest, so a file still held by a reader keeps its key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use compaction::{Compaction, VersionEdit};
use crypto::{
    Credential, Epoch, HybridPublicKey, KeyManager, RecoveryKey, SlotInfo, FILE_HEADER_LEN, KEYRING_FILE, KEYSLOTS_FILE,
};

use crate::db::inner::Inner;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::options::Options;

/// The manifest size at which the version set rolls to a new manifest by
/// itself (the compaction crate's default), restored after a forced roll.
const DEFAULT_MANIFEST_ROLL_BYTES: u64 = 4 << 20;

/// The magic that starts every sealed data file (`crypto/FORMAT.md`, section 1).
const DATA_FILE_MAGIC: &[u8] = b"SYNAPSED";

/// Upper bound on rewrite steps in one rotation: each step retires at least one
/// table under an old epoch, so this only guards against a bug looping forever.
const MAX_REWRITE_STEPS: usize = 1_000_000;

/// Serializes rotations. Two at once would each make an epoch current, and the
/// first to reach its destroy step could retire the epoch the other is still
/// writing under. Rotations are rare and slow, so one at a time per process
/// (across stores too) costs nothing that matters.
static ROTATIONS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The files of the store directory under one data-key epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EpochFiles {
    /// The epoch.
    pub epoch: u32,
    /// File names (relative to the store directory), sorted.
    pub files: Vec<String>,
}

/// Progress of a key rotation, reported after each step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationProgress {
    /// The epoch everything is being moved to.
    pub new_epoch: u32,
    /// What the step did: `"wal"`, `"manifest"`, `"rewrite"` or `"destroy"`.
    pub step: &'static str,
    /// Tables under an old epoch rewritten so far.
    pub tables_rewritten: usize,
    /// Tables under an old epoch when the rewrite began.
    pub tables_total: usize,
}

/// What a finished key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RotationReport {
    /// The new current epoch.
    pub new_epoch: u32,
    /// Tables under an old epoch when the rewrite began.
    pub tables_total: usize,
    /// Compactions run to rewrite them.
    pub rewrite_compactions: usize,
    /// Epochs whose keys were destroyed.
    pub epochs_destroyed: Vec<u32>,
    /// Old epochs kept because a file under them is still in the directory (a
    /// table an open iterator still reads, or a file in `lost/`); run the rotation
    /// again after it is dropped.
    pub epochs_retained: Vec<u32>,
    /// Files in `lost/` (tables `repair` quarantined) under an old epoch: each
    /// keeps its epoch until it is removed. `secure-delete` overwrites and removes
    /// them; a plain rotation leaves them to the user (docs/security.md).
    pub lost_files: Vec<String>,
}

/// What [`Db::rekey`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Keyslots removed because they cannot be re-made without their own secret
    /// (other passphrases, raw keys, device keys, the old recovery slot), as
    /// they were listed before the change. Add them again to keep using them.
    pub removed_slots: Vec<SlotInfo>,
    /// The data-key rotation that followed: every file re-encrypted, old epochs destroyed.
    pub rotation: RotationReport,
}

impl Db {
    /// Replaces the master key and the data keys, like `cryptsetup reencrypt`: a
    /// new random master key is wrapped in a fresh `KEYSLOTS` holding a slot for
    /// `credential` (re-made with the same kind and cost) and, if given, one for
    /// the new `recovery` key; then every file is re-encrypted under a new data-key
    /// epoch and the old epochs are destroyed. Slots that only their own secret
    /// could re-make are removed and listed. Afterwards no earlier master key,
    /// keyring key or data key opens anything of the store.
    ///
    /// Have a new recovery key written down (or synced to its file) before the
    /// call: once the new `KEYSLOTS` is in place, the old recovery key is void.
    pub fn rekey(&self, credential: &Credential, recovery: Option<&RecoveryKey>) -> Result<RekeyReport> {
        self.inner.check_writable()?;
        let outcome = self.inner.keys.rekey(&self.inner.vfs, &self.inner.dir, credential, recovery)?;
        let mut rotation = self.inner.rotate_keys(&mut |_| {})?;
        self.rotate_blob_files(&mut rotation, 0)?;
        Ok(RekeyReport { removed_slots: outcome.removed, rotation })
    }

    /// Creates a new store like [`Db::create`] and also a recovery key: a hybrid
    /// (X25519 + ML-KEM-768) keyslot written in the same `KEYSLOTS` write. The
    /// returned key exists nowhere else; show it once
    /// ([`RecoveryKey::to_text`]) and drop it. It opens the store as
    /// `Credential::Recovery(key)`.
    pub fn create_with_recovery(dir: &Path, credential: &Credential, options: Options) -> Result<(Db, RecoveryKey)> {
        let (inner, recovery) = super::open::create_keyed(dir, credential, options, Some(RecoveryKey::generate()))?;
        let recovery = recovery.ok_or_else(|| Error::InvalidArgument("no recovery key was made".into()))?;
        Ok((Db::run(inner), recovery))
    }

    /// Like [`Db::create_with_recovery`] with a recovery key the caller made
    /// ([`RecoveryKey::generate`]) and has already written down or synced to its
    /// file: a crash during the create then never leaves a working store whose
    /// recovery key was never shown.
    pub fn create_with_recovery_key(
        dir: &Path,
        credential: &Credential,
        recovery: &RecoveryKey,
        options: Options,
    ) -> Result<Db> {
        let (inner, _) = super::open::create_keyed(dir, credential, options, Some(recovery.clone()))?;
        Ok(Db::run(inner))
    }

    /// Replaces a passphrase of the store in `dir` (open or not): the master key is
    /// wrapped into a new passphrase slot (Argon2id with `options.argon2`, raised to
    /// the old slot's cost where that is higher) and the
    /// old slot removed in one atomic write of `KEYSLOTS`; the old passphrase stops
    /// working at once. `current` authorizes the change: a passphrase replaces its
    /// own slot; any other credential (the recovery key after a forgotten
    /// passphrase) replaces every passphrase slot. No data file is rewritten.
    ///
    /// Takes the store lock for the change, so it never races a writer process's
    /// own key-file change (a rotation's new epoch would be lost): a store open
    /// for writing in another process is `Error::Locked`. A handle open in this
    /// process holds the lock already; its key changes and this one take turns.
    pub fn change_passphrase(dir: &Path, current: &Credential, new_passphrase: &[u8], options: &Options) -> Result<()> {
        options.check_kdf_floor()?;
        if !options.vfs.exists(&dir.join(crypto::KEYSLOTS_FILE)) {
            return Err(Error::NotFound(dir.display().to_string()));
        }
        let _lock = match super::open::take_lock(&*options.vfs, dir) {
            Ok(lock) => Some(lock),
            Err(Error::Locked { pid }) if pid == Some(std::process::id()) => None,
            Err(e) => return Err(e),
        };
        Ok(KeyManager::change_passphrase(
            &options.vfs,
            dir,
            current,
            new_passphrase,
            &options.argon2,
        )?)
    }

    /// Describes the keyslots of the store in `dir` (no credential needed: the
    /// descriptions hold no key material).
    pub fn keyslots(dir: &Path, options: &Options) -> Result<Vec<SlotInfo>> {
        Ok(KeyManager::keyslots(&options.vfs, dir)?)
    }

    /// Adds a keyslot for another device's hybrid public key; that device then
    /// opens the store with `Credential::Hybrid(its secret key)`. Returns the slot index.
    pub fn add_device_key(&self, device: &HybridPublicKey) -> Result<usize> {
        self.inner.check_writable()?;
        Ok(self.inner.keys.add_keyslot(&self.inner.vfs, &self.inner.dir, device)?)
    }

    /// Adds a keyslot for any credential (another passphrase, a raw key from an OS
    /// keystore, a device's secret key). Returns the slot index.
    pub fn add_credential(&self, credential: &Credential) -> Result<usize> {
        self.inner.check_writable()?;
        let inner = &self.inner;
        if matches!(credential, Credential::Passphrase(_)) {
            inner.options.check_kdf_floor()?;
        }
        Ok(inner
            .keys
            .add_credential(&inner.vfs, &inner.dir, credential, &inner.options.argon2)?)
    }

    /// Removes the keyslot at `index` (as [`Db::keyslots`] lists it); the last
    /// usable slot cannot be removed.
    pub fn remove_keyslot(&self, index: usize) -> Result<SlotInfo> {
        self.inner.check_writable()?;
        Ok(self
            .inner
            .keys
            .remove_keyslot(&self.inner.vfs, &self.inner.dir, index)?)
    }

    /// Makes a new recovery key and replaces the old one (which stops working at
    /// once); also adds one to a store created without.
    pub fn replace_recovery_key(&self) -> Result<RecoveryKey> {
        self.inner.check_writable()?;
        Ok(self.inner.keys.replace_recovery_key(&self.inner.vfs, &self.inner.dir)?)
    }

    /// Rotates the data keys: a new epoch for new files, every file under an older
    /// epoch re-encrypted (WAL rolled, memtable flushed, manifest rolled, tables
    /// rewritten), then every epoch no file is under any more destroyed.
    pub fn rotate_keys(&self) -> Result<RotationReport> {
        self.rotate_keys_with_progress(&mut |_| {})
    }

    /// [`Db::rotate_keys`], calling `progress` after each step.
    pub fn rotate_keys_with_progress(&self, progress: &mut dyn FnMut(&RotationProgress)) -> Result<RotationReport> {
        let mut report = self.inner.rotate_keys(progress)?;
        self.rotate_blob_files(&mut report, 0)?;
        Ok(report)
    }
}

impl Inner {
    pub(crate) fn rotate_keys(&self, progress: &mut dyn FnMut(&RotationProgress)) -> Result<RotationReport> {
        let span = tracing::info_span!("key_rotation", dir = %self.dir.display());
        let _entered = span.enter();
        self.check_writable()?;
        let _one_at_a_time = ROTATIONS.lock();
        // `writer` before `work` (the lock order of `db/inner.rs`; an ingest
        // takes `work` while it holds `writer`). `work` is held from before the
        // new keyring is written: obsolete-file removal (run under `work` by
        // background compactions) takes any `*.tmp` for a leftover and would
        // remove `KEYRING.tmp` between its write and its rename.
        let mut writer = self.pipeline.writer.lock();
        let work = self.sched.work.lock();
        let new_epoch = self.keys.rotate(&self.vfs, &self.dir)?;
        let mut report = RotationReport {
            new_epoch,
            ..RotationReport::default()
        };
        let mut tell = |step: &'static str, report: &RotationReport, done: usize| {
            crate::metrics::rotation_progress(step, done, report.tables_total);
            progress(&RotationProgress {
                new_epoch,
                step,
                tables_rewritten: done,
                tables_total: report.tables_total,
            });
        };

        // A new segment under the new epoch; the flush then retires the old ones.
        self.switch_memtable(&mut writer)?;
        drop(writer);
        let _work = work;
        self.flush_immutables()?;
        // Segments kept for the change feed are sealed under the epochs this
        // rotation destroys: their retention ends here, and the removal below
        // takes them with the other obsolete files (docs/design.md, "The change feed").
        self.release_all_feed_segments()?;
        tell("wal", &report, 0);

        // The roll writes a snapshot of the whole version into a new manifest,
        // sealed under the now current epoch.
        self.versions.set_manifest_roll_bytes(1);
        let rolled = self.versions.log_and_apply(VersionEdit::default());
        self.versions.set_manifest_roll_bytes(DEFAULT_MANIFEST_ROLL_BYTES);
        rolled?;
        tell("manifest", &report, 0);

        report.tables_total = self.tables_under_old_epochs().len();
        let mut done = 0;
        tell("rewrite", &report, done);
        for _ in 0..MAX_REWRITE_STEPS {
            let Some(c) = self.next_rewrite() else { break };
            let retired = c
                .inputs
                .iter()
                .chain(&c.next_inputs)
                .filter(|f| f.epoch != self.keys.current_epoch())
                .count();
            self.run_compaction(&self.waited_for(c))?;
            report.rewrite_compactions += 1;
            done += retired;
            tell("rewrite", &report, done);
            self.flush_immutables()?;
        }
        // Files a reader process still holds stay until it lets go, or until
        // the wait is over: only then can their epochs go (`db/readers.rs`).
        self.remove_obsolete_waiting_for_readers();

        let in_use = self.epochs_in_use()?;
        let current = self.keys.current_epoch();
        for epoch in self.keys.epochs() {
            if epoch == current {
                continue;
            }
            if in_use.contains(&epoch) {
                report.epochs_retained.push(epoch);
            } else if self.keys.destroy_epoch(&self.vfs, &self.dir, epoch)? {
                report.epochs_destroyed.push(epoch);
            }
        }
        report.lost_files = self.lost_files_under_old_epochs()?;
        tell("destroy", &report, done);
        Ok(report)
    }

    /// Table numbers of the current version under an epoch other than the current one.
    fn tables_under_old_epochs(&self) -> Vec<u64> {
        let current = self.keys.current_epoch();
        let version = self.versions.current();
        version.all_files().filter(|(_, f)| f.epoch != current).map(|(_, f)| f.number).collect()
    }

    /// A compaction that rewrites the first table under an old epoch: for a
    /// level-0 table, the level-0 tables it overlaps and what they overlap below;
    /// for a deeper table, that table alone, rewritten into its own level (its
    /// key range does not change, so the level stays disjoint). Tables of
    /// every keyspace are rewritten, each within its keyspace's levels.
    fn next_rewrite(&self) -> Option<Compaction> {
        let current = self.keys.current_epoch();
        let store = self.versions.current();
        // The first keyspace whose own levels hold a table under an old epoch.
        let version = store.all_keyspace_levels().find(|t| t.own_files().any(|(_, f)| f.epoch != current))?;
        let levels = version.num_levels();
        let (level, file) = (0..levels).find_map(|l| {
            version
                .level_files(l)
                .iter()
                .find(|f| f.epoch != current)
                .map(|f| (l, Arc::clone(f)))
        })?;
        let (lo, hi) = (file.smallest.user_key.as_slice(), file.largest.user_key.as_slice());
        if level == 0 {
            return compaction::pick_range_compaction(version, 0, Some(lo), Some(hi));
        }
        let bottommost = (level + 1..levels).all(|l| version.overlapping_files(l, Some(lo), Some(hi)).is_empty());
        Some(Compaction {
            level: level - 1,
            inputs: Vec::new(),
            next_inputs: vec![file],
            bottommost,
            max_subcompactions: 1,
            keyspace: version.keyspace_id(),
        })
    }

    /// Destroys every epoch other than the current one that no file is under
    /// any more (the blob store calls it once it has moved its files off old
    /// epochs); returns the epochs destroyed and those still in use.
    pub(crate) fn destroy_unused_epochs(&self) -> Result<(Vec<Epoch>, Vec<Epoch>)> {
        let _one_at_a_time = ROTATIONS.lock();
        // Held while the keyring is rewritten, as in `rotate_keys`.
        let _work = self.sched.work.lock();
        let in_use = self.epochs_in_use()?;
        let current = self.keys.current_epoch();
        let (mut destroyed, mut retained) = (Vec::new(), Vec::new());
        for epoch in self.keys.epochs() {
            if epoch == current {
                continue;
            }
            if in_use.contains(&epoch) {
                retained.push(epoch);
            } else if self.keys.destroy_epoch(&self.vfs, &self.dir, epoch)? {
                destroyed.push(epoch);
            }
        }
        Ok((destroyed, retained))
    }

    /// The epoch of every sealed file in the store directory, from its header.
    pub(crate) fn files_per_epoch(&self) -> Result<Vec<EpochFiles>> {
        let mut by_epoch: BTreeMap<Epoch, Vec<String>> = BTreeMap::new();
        for (name, epoch) in self.file_epochs()? {
            by_epoch.entry(epoch).or_default().push(name);
        }
        Ok(by_epoch
            .into_iter()
            .map(|(epoch, files)| EpochFiles { epoch, files })
            .collect())
    }

    fn epochs_in_use(&self) -> Result<BTreeSet<Epoch>> {
        Ok(self.file_epochs()?.into_iter().map(|(_, e)| e).collect())
    }

    /// (name, epoch) of every file in the directory that starts with a data-file
    /// header, sorted by name, then those of `lost/` (named `lost/NAME`): tables
    /// `repair` quarantined are still sealed under the epoch they were written in,
    /// so they keep it (see docs/security.md, "Files in lost/"). Subdirectories
    /// are not files: `lost/` is read as above, any other one is skipped. Files
    /// shorter than a header are skipped: only a file being created right now can
    /// be (it is under the current epoch, which is never destroyed), or a leftover
    /// cut off before its header, which holds nothing sealed.
    fn file_epochs(&self) -> Result<Vec<(String, Epoch)>> {
        let mut out = self.dir_file_epochs(&self.dir, "")?;
        let lost = self.dir.join(super::LOST_DIR);
        if self.vfs.exists(&lost) {
            out.extend(self.dir_file_epochs(&lost, &format!("{}/", super::LOST_DIR))?);
        }
        Ok(out)
    }

    /// [`Inner::file_epochs`] of one directory; names carry `prefix`.
    fn dir_file_epochs(&self, dir: &Path, prefix: &str) -> Result<Vec<(String, Epoch)>> {
        let mut names = self.vfs.list_dir(dir).map_err(|source| Error::Io {
            file: if prefix.is_empty() { ".".into() } else { prefix.trim_end_matches('/').into() },
            source,
        })?;
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if [
                KEYSLOTS_FILE,
                KEYRING_FILE,
                compaction::CURRENT_FILE,
                super::inner::LOCK_FILE,
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            let path = dir.join(&name);
            let shown = format!("{prefix}{name}");
            let file = match self.vfs.open(&path) {
                Ok(f) => f,
                // Removed between the listing and now: it needs no key.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => continue,
                Err(source) => return Err(Error::Io { file: shown, source }),
            };
            if file.len() < FILE_HEADER_LEN as u64 {
                continue;
            }
            let mut header = [0u8; FILE_HEADER_LEN];
            match file.read_exact_at(&mut header, 0) {
                Ok(()) => {}
                // A directory opens for reading on Linux; reading it fails.
                Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => continue,
                Err(source) => return Err(Error::Io { file: shown, source }),
            }
            if !header.starts_with(DATA_FILE_MAGIC) {
                continue;
            }
            let epoch = KeyManager::epoch_of(&header, &shown)?;
            out.push((shown, epoch));
        }
        Ok(out)
    }

    /// The files in `lost/` that are under an epoch other than the current one.
    pub(crate) fn lost_files_under_old_epochs(&self) -> Result<Vec<String>> {
        let current = self.keys.current_epoch();
        let lost_prefix = format!("{}/", super::LOST_DIR);
        Ok(self
            .file_epochs()?
            .into_iter()
            .filter(|(name, epoch)| name.starts_with(&lost_prefix) && *epoch != current)
            .map(|(name, _)| name)
            .collect())
    }
}
