//! Getting the manifest going again: after a write to it failed because the
//! disk was full, when a store's manifest is rebuilt from the tables that
//! survived damage (the engine's `repair`), and when a read-only handle
//! catches up with the writer process (`reload`).
//!
//! Both start a new manifest that holds a full snapshot and switch `CURRENT` to
//! it, exactly as a roll does. That is safe whatever became of the failed edit:
//! the snapshot is the version in memory, which never included it, so its new
//! tables are merely garbage and the tables it would have retired stay live.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::SeqNo;

use super::VersionSet;
use crate::edit::{FileMeta, VersionEdit};
use crate::error::{Error, ManifestFailure, Result};
use crate::manifest::{read_current_and_replay, write_current, write_new_manifest, ManifestState};
use crate::version::Version;

impl VersionSet {
    /// Why the manifest stopped accepting edits, if it did.
    pub fn manifest_failure(&self) -> Option<ManifestFailure> {
        self.manifest.lock().poisoned.clone()
    }

    /// Starts a new manifest holding the current version and switches `CURRENT`
    /// to it, so that edits are accepted again after a failed manifest write.
    /// Does nothing if no write failed. Meant for failures that left the disk
    /// itself trustworthy (a full disk); the caller decides that.
    pub fn restart_manifest(&self) -> Result<()> {
        let mut slot = self.manifest.lock();
        if slot.poisoned.is_none() {
            return Ok(());
        }
        if slot.writer.is_none() {
            return Err(Error::ReadOnly);
        }
        let version = Version::clone(&self.current());
        let segments = self.wal_segments.lock().clone();
        let feed = self.feed_segments.lock().clone();
        let (writer, number) = self.roll(version, self.log_number(), self.last_seqno(), segments, feed)?;
        slot.writer = Some(writer);
        slot.poisoned = None;
        self.manifest_number.store(number, Ordering::Release);
        Ok(())
    }

    /// Re-reads `CURRENT` and the manifest it names and installs the version
    /// found there, with its counters. For the version set of a read-only open,
    /// whose directory another process writes; versions handed out before stay
    /// valid for their holders.
    pub fn reload(&self) -> Result<()> {
        let (number, state) = read_current_and_replay(&self.vfs, &self.dir, &self.keys, self.num_levels)?;
        self.install(state.version);
        *self.feed_segments.lock() = state.feed_segments;
        *self.wal_segments.lock() = state.wal_segments;
        self.last_seqno
            .fetch_max(state.last_seqno, Ordering::AcqRel);
        self.log_number
            .fetch_max(state.log_number, Ordering::AcqRel);
        self.next_file_number
            .fetch_max(state.next_file_number, Ordering::AcqRel);
        self.manifest_number.store(number, Ordering::Release);
        Ok(())
    }

    /// Writes manifest `manifest_number` listing `tables` at level 0 with the
    /// given counters, and switches `CURRENT` to it. Every table must exist and
    /// be synced. Whatever manifest `CURRENT` named before becomes obsolete.
    #[allow(clippy::too_many_arguments)]
    pub fn rebuild(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        keys: &KeyManager,
        num_levels: usize,
        manifest_number: u64,
        tables: Vec<FileMeta>,
        last_seqno: SeqNo,
        log_number: u64,
    ) -> Result<()> {
        Self::rebuild_with_keyspaces(vfs, dir, keys, num_levels, manifest_number, tables, Vec::new(), last_seqno, log_number, Vec::new(), 0)
    }

    /// [`VersionSet::rebuild`] for a store with keyspaces and range
    /// tombstones: the manifest also creates `keyspaces` (live keyspaces other
    /// than the default one, with their ids), records `next_keyspace_id` (kept
    /// as it was, so no id is ever handed out twice) and holds
    /// `range_tombstones` (those salvaged from the old manifest and the logs);
    /// each table goes to level 0 of the keyspace its `FileMeta::keyspace` names.
    #[allow(clippy::too_many_arguments)]
    pub fn rebuild_with_keyspaces(
        vfs: &Arc<dyn Vfs>,
        dir: &Path,
        keys: &KeyManager,
        num_levels: usize,
        manifest_number: u64,
        tables: Vec<FileMeta>,
        range_tombstones: Vec<index::RangeTombstone>,
        last_seqno: SeqNo,
        log_number: u64,
        keyspaces: Vec<crate::keyspace::KeyspaceMeta>,
        next_keyspace_id: u32,
    ) -> Result<()> {
        let next_file_number = tables
            .iter()
            .map(|t| t.number)
            .chain([manifest_number, log_number])
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        super::check_levels(num_levels)?;
        let edit = VersionEdit {
            added: tables.into_iter().map(|t| (0, t)).collect(),
            created_keyspaces: keyspaces,
            next_keyspace_id: Some(next_keyspace_id).filter(|&id| id > crate::keyspace::DEFAULT_KEYSPACE_ID + 1),
            added_range_tombstones: range_tombstones,
            ..VersionEdit::default()
        };
        let version = Version::empty(num_levels).apply(&edit)?;
        let state = ManifestState {
            version,
            log_number,
            next_file_number,
            last_seqno,
            // Every segment the repair read is below `log_number`; the next open
            // lists the segment it starts.
            wal_segments: std::collections::BTreeMap::new(),
            feed_segments: std::collections::BTreeMap::new(),
            predecessor: Some((0, last_seqno)),
        };
        let writer = write_new_manifest(vfs, dir, keys, manifest_number, &state)?;
        drop(writer);
        write_current(vfs.as_ref(), dir, keys, manifest_number)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::path::PathBuf;

    use crypto::vfs::SimVfs;

    use super::*;
    use crate::edit::tests::meta;

    const LEVELS: usize = 4;

    fn setup() -> (Arc<SimVfs>, Arc<dyn Vfs>, PathBuf, Arc<KeyManager>) {
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        let dir = PathBuf::from("/db");
        vfs.create_dir_all(&dir).unwrap();
        (sim, vfs, dir, KeyManager::ephemeral())
    }

    #[test]
    fn restart_after_a_full_disk_accepts_edits_again_and_survives_a_crash() {
        let (sim, vfs, dir, keys) = setup();
        let vs = VersionSet::create(&vfs, &dir, &keys, LEVELS).unwrap();
        vs.log_and_apply(VersionEdit {
            added: vec![(0, meta(5, "a", "c"))],
            ..VersionEdit::default()
        })
        .unwrap();
        sim.set_capacity_bytes(Some(sim.total_live_bytes()));
        let edit = VersionEdit {
            added: vec![(0, meta(6, "d", "f"))],
            ..VersionEdit::default()
        };
        assert!(vs.log_and_apply(edit.clone()).is_err());
        let failure = vs.manifest_failure().unwrap();
        assert!(failure.reason.contains("os error 28"), "{failure:?}");
        assert!(failure.is_storage_full(), "a full disk is kept as a typed cause: {failure:?}");
        // Still full: the restart fails and leaves the set stopped.
        assert!(vs.restart_manifest().is_err());
        assert!(vs.log_and_apply(edit.clone()).is_err());
        sim.set_capacity_bytes(None);
        vs.restart_manifest().unwrap();
        assert!(vs.manifest_failure().is_none());
        vs.log_and_apply(edit).unwrap();
        sim.crash();
        let recovered = VersionSet::recover(&vfs, &dir, &keys, LEVELS).unwrap();
        let numbers: Vec<u64> = recovered
            .current()
            .level_files(0)
            .iter()
            .map(|f| f.number)
            .collect();
        assert_eq!(numbers.len(), 2);
        assert!(numbers.contains(&5) && numbers.contains(&6), "{numbers:?}");
    }

    #[test]
    fn rebuild_lists_the_tables_at_level_0_and_switches_current() {
        let (_sim, vfs, dir, keys) = setup();
        let vs = VersionSet::create(&vfs, &dir, &keys, LEVELS).unwrap();
        vs.log_and_apply(VersionEdit {
            added: vec![(2, meta(5, "a", "c"))],
            ..VersionEdit::default()
        })
        .unwrap();
        drop(vs);
        VersionSet::rebuild(
            &vfs,
            &dir,
            &keys,
            LEVELS,
            40,
            vec![meta(30, "a", "z")],
            77,
            41,
        )
        .unwrap();
        let vs = VersionSet::recover(&vfs, &dir, &keys, LEVELS).unwrap();
        let version = vs.current();
        assert_eq!(
            version
                .level_files(0)
                .iter()
                .map(|f| f.number)
                .collect::<Vec<_>>(),
            vec![30]
        );
        assert!(version.level_files(2).is_empty());
        assert_eq!(vs.last_seqno(), 77);
        assert_eq!(vs.log_number(), 41);
        assert!(vs.new_file_number() > 41);
    }

    #[test]
    fn reload_sees_the_writers_later_edits() {
        let (_sim, vfs, dir, keys) = setup();
        let writer = VersionSet::create(&vfs, &dir, &keys, LEVELS).unwrap();
        let reader = VersionSet::recover_read_only(&vfs, &dir, &keys, LEVELS).unwrap();
        let held = reader.current();
        writer
            .log_and_apply(VersionEdit {
                added: vec![(0, meta(5, "a", "c"))],
                last_seqno: Some(20),
                log_number: Some(4),
                ..VersionEdit::default()
            })
            .unwrap();
        assert!(reader.current().level_files(0).is_empty());
        reader.reload().unwrap();
        assert_eq!(reader.current().level_files(0).len(), 1);
        assert_eq!(reader.last_seqno(), 20);
        assert_eq!(reader.log_number(), 4);
        assert!(
            held.level_files(0).is_empty(),
            "a version handed out before changed"
        );
    }
}
