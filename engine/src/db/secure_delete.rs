//! Secure deletion of a key or a key prefix: a tombstone, a flush, a compaction
//! that carries the range down through every level (so no older version
//! survives in any table), then a full key rotation. The rotation retires the
//! WAL segments, the manifest and every table that ever held the old value and
//! destroys the epochs they were sealed under (crypto-shredding). Throughout,
//! every obsolete file is overwritten before it is unlinked, at least once even
//! when `Options::secure_delete_passes` is 0.
//!
//! A live snapshot or transaction that still sees a value being deleted makes
//! the call fail before anything is written: compaction must keep the versions a
//! snapshot sees, so waiting could block forever and going on would leave the
//! value on disk. What overwriting can and cannot do on SSDs and copy-on-write
//! file systems is in `docs/security.md`.

use std::ops::Bound;
use std::sync::atomic::Ordering;

use index::{Direction, KeyRange, SeqNo};

use crate::batch::WriteBatch;
use crate::db::inner::Inner;
use crate::db::iter::{prefix_successor, RangeIter};
use crate::db::keys::RotationReport;
use crate::db::{Db, LOST_DIR};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// Deletes per write batch, so a large prefix never exceeds the WAL record limit.
const DELETES_PER_BATCH: usize = 256;

/// What a secure deletion did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SecureDeleteReport {
    /// Live keys that were deleted (0 when the key was already absent; its older
    /// versions are purged all the same).
    pub keys_deleted: usize,
    /// Overwrite passes each obsolete file received before it was unlinked.
    pub overwrite_passes: u32,
    /// Files of the store directory that were overwritten and removed.
    pub files_removed: Vec<String>,
    /// The key rotation that shredded the old epochs.
    pub rotation: RotationReport,
}

/// Serializes secure deletions, so one finishing cannot lower the overwrite
/// passes while another still runs.
static SECURE_DELETES: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Raises the overwrite passes of obsolete-file removal while it lives.
struct OverwriteGuard<'a> {
    inner: &'a Inner,
}

impl<'a> OverwriteGuard<'a> {
    fn raise(inner: &'a Inner, passes: u32) -> Self {
        inner.sched.min_overwrite_passes.fetch_max(passes, Ordering::AcqRel);
        OverwriteGuard { inner }
    }
}

impl Drop for OverwriteGuard<'_> {
    fn drop(&mut self) {
        self.inner.sched.min_overwrite_passes.store(0, Ordering::Release);
    }
}

/// The user keys a secure deletion covers.
enum Target<'a> {
    Key(&'a [u8]),
    Prefix(&'a [u8]),
}

impl Target<'_> {
    fn range(&self) -> KeyRange {
        match self {
            Target::Key(k) => KeyRange {
                start: Bound::Included(k.to_vec()),
                end: Bound::Included(k.to_vec()),
            },
            Target::Prefix(p) => KeyRange {
                start: Bound::Included(p.to_vec()),
                end: prefix_successor(p).map_or(Bound::Unbounded, Bound::Excluded),
            },
        }
    }

    /// The inclusive bounds `compact_range` takes (a little wider for a prefix).
    fn compaction_bounds(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match self {
            Target::Key(k) => (Some(k.to_vec()), Some(k.to_vec())),
            Target::Prefix(p) => (Some(p.to_vec()), prefix_successor(p)),
        }
    }
}

impl Db {
    /// Deletes `key` so that no copy of any of its values is left readable: see
    /// the module documentation of the steps. Fails with `InvalidArgument`,
    /// writing nothing, while a snapshot or transaction still sees a value of `key`.
    pub fn secure_delete(&self, key: &[u8]) -> Result<SecureDeleteReport> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("secure delete of an empty key".into()));
        }
        self.inner.secure_delete(&default_keyspace(), &Target::Key(key), &mut |r, p| self.rotate_blob_files(r, p))
    }

    /// [`Db::secure_delete`] for every key starting with `prefix` (an empty prefix
    /// is every key of the store).
    pub fn secure_delete_prefix(&self, prefix: &[u8]) -> Result<SecureDeleteReport> {
        self.inner.secure_delete(&default_keyspace(), &Target::Prefix(prefix), &mut |r, p| self.rotate_blob_files(r, p))
    }

    /// [`Db::secure_delete`] of `key` in `keyspace`: its tombstone, flush and
    /// compaction are in that keyspace; the key rotation that follows rewrites
    /// every table of every keyspace.
    pub fn secure_delete_in(&self, keyspace: &Keyspace, key: &[u8]) -> Result<SecureDeleteReport> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("secure delete of an empty key".into()));
        }
        self.inner.secure_delete(keyspace, &Target::Key(key), &mut |r, p| self.rotate_blob_files(r, p))
    }

    /// [`Db::secure_delete_prefix`] in `keyspace`.
    pub fn secure_delete_prefix_in(&self, keyspace: &Keyspace, prefix: &[u8]) -> Result<SecureDeleteReport> {
        self.inner.secure_delete(keyspace, &Target::Prefix(prefix), &mut |r, p| self.rotate_blob_files(r, p))
    }
}

/// The handle of the default keyspace.
fn default_keyspace() -> Keyspace {
    Keyspace::new(compaction::DEFAULT_KEYSPACE_ID, crate::DEFAULT_KEYSPACE)
}

impl Inner {
    /// `blob_files` completes the key rotation for blob files (moving them to
    /// the new epoch, overwriting the old ones the given number of times) before
    /// the epochs are checked (`Db::rotate_blob_files`).
    fn secure_delete(
        &self,
        keyspace: &Keyspace,
        target: &Target<'_>,
        blob_files: &mut dyn FnMut(&mut RotationReport, u32) -> Result<()>,
    ) -> Result<SecureDeleteReport> {
        let _run = crate::metrics::SecureDeleteRun::begin();
        self.check_writable()?;
        let _one_at_a_time = SECURE_DELETES.lock();
        self.refuse_if_seen(keyspace, target, SeqNo::MAX)?;
        let passes = self.options.secure_delete_passes.max(1);
        let _overwrite = OverwriteGuard::raise(self, passes);
        let before = self.vfs.list_dir(&self.dir).map_err(|source| Error::Io {
            file: ".".into(),
            source,
        })?;

        let (keys_deleted, tombstone_seqno) = self.write_tombstones(keyspace, target)?;
        // A snapshot taken between the first check and the tombstones.
        self.refuse_if_seen(keyspace, target, tombstone_seqno)?;

        self.flush()?;
        let (start, end) = target.compaction_bounds();
        if keyspace.id() == compaction::DEFAULT_KEYSPACE_ID {
            self.compact_range(start.as_deref(), end.as_deref())?;
        } else {
            self.compact_range_of(keyspace, start.as_deref(), end.as_deref())?;
        }
        // Tables `repair` quarantined are copies of old data under old epochs:
        // they may hold the value, so they go too (docs/security.md, "Files in lost/").
        let lost_removed = self.shred_lost(passes)?;
        let mut rotation = self.rotate_keys(&mut |_| {})?;
        blob_files(&mut rotation, passes)?;
        if !rotation.epochs_retained.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "the value is deleted and its tables rewritten, but an open iterator still reads files under data-key \
                 epoch(s) {:?}, so their keys were kept; drop it and run the secure delete again",
                rotation.epochs_retained
            )));
        }
        let after = self.vfs.list_dir(&self.dir).map_err(|source| Error::Io {
            file: ".".into(),
            source,
        })?;
        let mut files_removed: Vec<String> = before.into_iter().filter(|n| !after.contains(n)).collect();
        files_removed.extend(lost_removed);
        Ok(crate::metrics::secure_deleted(SecureDeleteReport {
            keys_deleted,
            overwrite_passes: passes,
            files_removed,
            rotation,
        }))
    }

    /// Overwrites (`passes` times) and removes every file in `lost/`; returns
    /// their names as `lost/NAME`. The empty directory stays.
    fn shred_lost(&self, passes: u32) -> Result<Vec<String>> {
        let lost = self.dir.join(LOST_DIR);
        if !self.vfs.exists(&lost) {
            return Ok(Vec::new());
        }
        let io = |source| Error::Io { file: LOST_DIR.into(), source };
        let mut names = self.vfs.list_dir(&lost).map_err(io)?;
        names.sort();
        let mut removed = Vec::new();
        for name in names {
            let path = lost.join(&name);
            match compaction::overwrite_and_remove(&*self.vfs, &path, passes) {
                Ok(()) => removed.push(format!("{LOST_DIR}/{name}")),
                // A subdirectory (nothing `repair` makes) is left alone.
                Err(compaction::Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::IsADirectory
                        || source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !removed.is_empty() {
            self.vfs.sync_dir(&lost).map_err(io)?;
        }
        Ok(removed)
    }

    /// The value of `key` in `keyspace` at `snapshot`.
    fn get_of(&self, keyspace: &Keyspace, key: &[u8], snapshot: Option<SeqNo>) -> Result<Option<Vec<u8>>> {
        if keyspace.id() == compaction::DEFAULT_KEYSPACE_ID {
            self.get(key, snapshot)
        } else {
            self.get_in(keyspace, key, snapshot)
        }
    }

    /// An iterator over `range` of `keyspace` at `snapshot`.
    fn range_of(&self, keyspace: &Keyspace, range: KeyRange, snapshot: Option<SeqNo>) -> Result<Option<RangeIter>> {
        if keyspace.id() == compaction::DEFAULT_KEYSPACE_ID {
            self.range_iter(range, Direction::Forward, snapshot)
        } else {
            self.range_iter_in(&self.read_view_of(keyspace, snapshot)?, range, Direction::Forward)
        }
    }

    /// Fails if a live snapshot below `below` still sees a value in `target`.
    fn refuse_if_seen(&self, keyspace: &Keyspace, target: &Target<'_>, below: SeqNo) -> Result<()> {
        for seqno in self.snapshots.list().into_iter().filter(|&s| s < below) {
            let seen = match target {
                Target::Key(k) => self.get_of(keyspace, k, Some(seqno))?.is_some(),
                Target::Prefix(_) => match self.range_of(keyspace, target.range(), Some(seqno))? {
                    Some(mut it) => it.next_ref().transpose()?.is_some(),
                    None => false,
                },
            };
            if seen {
                return Err(Error::InvalidArgument(format!(
                    "a live snapshot or transaction (seqno {seqno}) still sees a value being securely deleted; \
                     release it and try again"
                )));
            }
        }
        Ok(())
    }

    /// Writes a tombstone for the key, or for every live key under the prefix.
    /// Returns how many live keys there were and the seqno of the last tombstone.
    fn write_tombstones(&self, keyspace: &Keyspace, target: &Target<'_>) -> Result<(usize, SeqNo)> {
        match target {
            Target::Key(k) => {
                let existed = self.get_of(keyspace, k, None)?.is_some();
                let mut batch = WriteBatch::new();
                batch.delete_in(keyspace, k);
                Ok((usize::from(existed), self.write(&batch)?))
            }
            Target::Prefix(_) => {
                let mut keys = Vec::new();
                if let Some(mut it) = self.range_of(keyspace, target.range(), None)? {
                    while let Some(pair) = it.next_ref() {
                        keys.push(pair?.0.to_vec());
                    }
                }
                let mut last = self.pipeline.visible.load(Ordering::Acquire);
                for chunk in keys.chunks(DELETES_PER_BATCH) {
                    let mut batch = WriteBatch::new();
                    for k in chunk {
                        batch.delete_in(keyspace, k);
                    }
                    last = self.write(&batch)?;
                }
                Ok((keys.len(), last))
            }
        }
    }
}
