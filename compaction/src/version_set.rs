//! The version set: the current [`Version`], the counters the store persists
//! (next file number, last seqno, oldest needed WAL segment), and the manifest
//! that records every change.
//!
//! `log_and_apply` is the only way the tree changes. Under one mutex it builds
//! the new version (refusing edits that break its invariants), appends the edit
//! to the manifest, syncs it, and only then installs the version, so nothing a
//! reader sees was ever not durable. Every version ever installed is remembered
//! by a weak reference, so the tables of versions that readers still hold stay
//! in [`VersionSet::live_files`] until the last reader lets go.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::SeqNo;
use parking_lot::{Mutex, RwLock};
use wal::LogWriter;

use crate::edit::{FeedSegment, VersionEdit, WalSegment};
use crate::error::{Error, ManifestFailure, Result};
use crate::format::{MANIFEST_ROLL_BYTES, MAX_LEVELS};
use crate::gc;
use crate::keyspace::{check_keyspace_name, KeyspaceMeta, DEFAULT_KEYSPACE_ID};
use crate::manifest::{apply_feed_edit, read_current_and_replay, write_current, write_new_manifest, ManifestState};
use crate::version::{Version, CURRENT_FILE};

mod repair;

/// The first manifest of a new store.
const FIRST_MANIFEST_NUMBER: u64 = 1;

/// The live manifest, guarded by the edit mutex.
struct ManifestSlot {
    /// `None` when opened read-only.
    writer: Option<LogWriter>,
    /// Set once a manifest write failed: whether that edit is durable is unknown,
    /// so no later edit may follow it.
    poisoned: Option<ManifestFailure>,
}

/// The current version plus the manifest that records how it came to be.
pub struct VersionSet {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    keys: Arc<KeyManager>,
    num_levels: usize,
    manifest: Mutex<ManifestSlot>,
    current: RwLock<Arc<Version>>,
    installed: Mutex<Vec<Weak<Version>>>,
    next_file_number: AtomicU64,
    last_seqno: AtomicU64,
    log_number: AtomicU64,
    manifest_number: AtomicU64,
    roll_bytes: AtomicU64,
    /// WAL segments at or above the log number that the manifest lists.
    wal_segments: Mutex<BTreeMap<u64, WalSegment>>,
    /// WAL segments below the log number kept for the change feed.
    feed_segments: Mutex<BTreeMap<u64, FeedSegment>>,
    /// Whether the manifest lists its WAL segments (false only for a store of
    /// format 1 opened read-only, which nothing upgrades).
    tracks_wal: bool,
    /// Serializes keyspace creates and drops, so the name and id checks they make
    /// against the current version still hold when their edit is applied.
    keyspace_edits: Mutex<()>,
}

impl std::fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSet")
            .field("dir", &self.dir)
            .field("manifest_number", &self.manifest_number())
            .field("next_file_number", &self.next_file_number.load(Ordering::Acquire))
            .field("last_seqno", &self.last_seqno())
            .finish_non_exhaustive()
    }
}

fn check_levels(num_levels: usize) -> Result<()> {
    if num_levels == 0 || num_levels > MAX_LEVELS {
        return Err(Error::InvalidArgument(format!("num_levels must be 1..={MAX_LEVELS}, got {num_levels}")));
    }
    Ok(())
}

/// The number of a file name's stem (`000012` of `000012.wal`).
fn numbered_file_stem(stem: &str) -> Option<u64> {
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The number in a file name such as `000012.sst`, `000003.wal` or `MANIFEST-000004`.
fn numbered_file(name: &str) -> Option<u64> {
    let digits = match name.strip_prefix("MANIFEST-") {
        Some(rest) => rest,
        None => name.split_once('.').map(|(stem, _)| stem)?,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl VersionSet {
    fn assemble(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize, state: ManifestState, manifest_number: u64, writer: Option<LogWriter>) -> Self {
        let version = Arc::new(state.version);
        let tracks_wal = state.predecessor.is_some();
        VersionSet {
            wal_segments: Mutex::new(state.wal_segments),
            feed_segments: Mutex::new(state.feed_segments),
            tracks_wal,
            vfs: Arc::clone(vfs),
            dir: dir.to_path_buf(),
            keys: Arc::clone(keys),
            num_levels,
            manifest: Mutex::new(ManifestSlot { writer, poisoned: None }),
            installed: Mutex::new(std::iter::once(&version).chain(version.keyspace_trees()).map(Arc::downgrade).collect()),
            current: RwLock::new(version),
            next_file_number: AtomicU64::new(state.next_file_number),
            last_seqno: AtomicU64::new(state.last_seqno),
            log_number: AtomicU64::new(state.log_number),
            manifest_number: AtomicU64::new(manifest_number),
            roll_bytes: AtomicU64::new(MANIFEST_ROLL_BYTES),
            keyspace_edits: Mutex::new(()),
        }
    }

    /// Creates a new manifest and `CURRENT` in `dir` for an empty store.
    pub fn create(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize) -> Result<Self> {
        check_levels(num_levels)?;
        if vfs.exists(&dir.join(CURRENT_FILE)) {
            return Err(Error::InvalidArgument(format!("{} already holds a CURRENT file", dir.display())));
        }
        let state = ManifestState {
            version: Version::empty(num_levels),
            log_number: 0,
            next_file_number: FIRST_MANIFEST_NUMBER + 1,
            last_seqno: 0,
            wal_segments: BTreeMap::new(),
            feed_segments: BTreeMap::new(),
            predecessor: Some((0, 0)),
        };
        let writer = write_new_manifest(vfs, dir, keys, FIRST_MANIFEST_NUMBER, &state)?;
        write_current(vfs.as_ref(), dir, keys, FIRST_MANIFEST_NUMBER)?;
        Ok(Self::assemble(vfs, dir, keys, num_levels, state, FIRST_MANIFEST_NUMBER, Some(writer)))
    }

    /// Reads `CURRENT` and replays the manifest it names, then starts a new
    /// manifest holding a snapshot (so later appends never follow a torn tail)
    /// and switches `CURRENT` to it.
    pub fn recover(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize) -> Result<Self> {
        check_levels(num_levels)?;
        let (old, mut state) = read_current_and_replay(vfs, dir, keys, num_levels)?;
        // Files written after the last edit (a WAL segment, the outputs of an
        // unfinished compaction) may carry numbers the manifest never recorded.
        let names = vfs.list_dir(dir).map_err(|e| Error::io(".", e))?;
        let highest = names.iter().filter_map(|n| numbered_file(n)).max().unwrap_or(0);
        state.next_file_number = state.next_file_number.max(highest.saturating_add(1)).max(old.saturating_add(1));
        if !state.tracks_wal() {
            // A manifest of format 1 lists no segment: the segments on disk that
            // it still needs are adopted as they are (their first seqnos unknown).
            for n in names.iter().filter_map(|n| n.strip_suffix(".wal").and_then(numbered_file_stem)) {
                if n >= state.log_number {
                    state.wal_segments.insert(n, WalSegment { first_seqno: 0, predecessor_synced: false });
                }
            }
        }
        state.predecessor = Some((old, state.last_seqno));
        let number = state.next_file_number;
        state.next_file_number = number.saturating_add(1);
        let writer = write_new_manifest(vfs, dir, keys, number, &state)?;
        write_current(vfs.as_ref(), dir, keys, number)?;
        Ok(Self::assemble(vfs, dir, keys, num_levels, state, number, Some(writer)))
    }

    /// Reads `CURRENT` and replays the manifest without writing anything; the
    /// result refuses edits with [`Error::ReadOnly`].
    pub fn recover_read_only(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize) -> Result<Self> {
        check_levels(num_levels)?;
        let (number, state) = read_current_and_replay(vfs, dir, keys, num_levels)?;
        Ok(Self::assemble(vfs, dir, keys, num_levels, state, number, None))
    }

    /// The current version.
    pub fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current.read())
    }

    /// Appends `edit` to the manifest, syncs it, and installs the resulting version.
    /// Thread-safe; edits are applied one at a time.
    ///
    /// The recorded edit always carries the next file number, the last seqno and
    /// the log number; none of the three ever moves backwards.
    pub fn log_and_apply(&self, edit: VersionEdit) -> Result<()> {
        let mut slot = self.manifest.lock();
        if let Some(failure) = &slot.poisoned {
            return Err(Error::Poisoned(failure.clone()));
        }
        let Some(writer) = slot.writer.as_ref() else {
            return Err(Error::ReadOnly);
        };
        let new_version = self.current().apply(&edit)?;
        let mut edit = edit;
        if let Some(n) = edit.next_file_number {
            self.next_file_number.fetch_max(n, Ordering::AcqRel);
        }
        let last_seqno = edit.last_seqno.unwrap_or(0).max(self.last_seqno());
        let log_number = edit.log_number.unwrap_or(0).max(self.log_number());
        edit.last_seqno = Some(last_seqno);
        edit.log_number = Some(log_number);

        let mut segments = self.wal_segments.lock().clone();
        segments.extend(edit.wal_segments.iter().copied());
        let segments = segments.split_off(&log_number);
        let mut feed = self.feed_segments.lock().clone();
        if let Some((number, _)) = edit.feed_segments.iter().find(|(n, _)| *n >= log_number) {
            return Err(Error::InvalidEdit(format!(
                "WAL segment {number} kept as a change-feed segment is not below the log number {log_number}"
            )));
        }
        let touches_feed = !edit.feed_segments.is_empty() || !edit.feed_released.is_empty();
        if touches_feed && !self.tracks_wal {
            return Err(Error::InvalidEdit("change-feed segments in a manifest that does not list its WAL".into()));
        }
        apply_feed_edit(&mut feed, &edit);
        let result = if writer.len() >= self.roll_bytes.load(Ordering::Relaxed) {
            self.roll(new_version.clone(), log_number, last_seqno, segments.clone(), feed.clone()).map(|(w, number)| Some((w, number)))
        } else {
            edit.next_file_number = Some(self.next_file_number.load(Ordering::Acquire));
            writer.append(&edit.encode()).and_then(|_| writer.sync()).map(|_| None).map_err(Error::from)
        };
        match result {
            Ok(Some((new_writer, number))) => {
                slot.writer = Some(new_writer);
                self.manifest_number.store(number, Ordering::Release);
            }
            Ok(None) => {}
            Err(e) => {
                slot.poisoned = Some(ManifestFailure { reason: e.to_string(), io_kind: e.io_kind() });
                return Err(e);
            }
        }
        self.install(new_version);
        // Kept before dropped: a reader of both listings (the change feed reads
        // the live one first) finds a retired segment in one of them.
        *self.feed_segments.lock() = feed;
        *self.wal_segments.lock() = segments;
        self.last_seqno.store(last_seqno, Ordering::Release);
        self.log_number.store(log_number, Ordering::Release);
        Ok(())
    }

    /// Creates keyspace `name` with encoded `options` ([`crate::KeyspaceTableOptions`]) in one
    /// manifest edit, and returns it with its new id. Fails with
    /// [`Error::InvalidArgument`] if the name is invalid or a live keyspace has it.
    /// Checking the name against the reserved names of the caller (the default
    /// keyspace's) is the caller's business.
    pub fn create_keyspace(&self, name: &str, options: Vec<u8>) -> Result<Arc<KeyspaceMeta>> {
        check_keyspace_name(name).map_err(Error::InvalidArgument)?;
        crate::keyspace::KeyspaceTableOptions::decode(&options).map_err(Error::InvalidArgument)?;
        let _serial = self.keyspace_edits.lock();
        let current = self.current();
        if current.keyspace_by_name(name).is_some() {
            return Err(Error::InvalidArgument(format!("keyspace {name:?} already exists")));
        }
        let id = current.next_keyspace_id();
        let meta = KeyspaceMeta { id, name: name.to_owned(), options };
        let next = id.checked_add(1).ok_or_else(|| Error::InvalidArgument("keyspace ids exhausted".into()))?;
        let edit = VersionEdit { created_keyspaces: vec![meta], next_keyspace_id: Some(next), ..VersionEdit::default() };
        self.log_and_apply(edit)?;
        self.current()
            .keyspaces()
            .find(|k| k.id == id)
            .cloned()
            .ok_or_else(|| Error::InvalidEdit(format!("keyspace {id} missing after its create was applied")))
    }

    /// Drops live keyspace `id` in one manifest edit; its id is never handed out
    /// again. Returns false (and writes nothing) if no such keyspace is live.
    /// The keyspace's range tombstones leave the version with the same edit
    /// (nothing is left for them to hide).
    pub fn drop_keyspace(&self, id: u32) -> Result<bool> {
        let _serial = self.keyspace_edits.lock();
        let current = self.current();
        if id == DEFAULT_KEYSPACE_ID || !current.has_keyspace(id) {
            return Ok(false);
        }
        let dropped_range_tombstones = current.range_tombstones().tombstones().iter().filter(|t| t.keyspace == id).map(|t| t.seqno).collect();
        drop(current);
        self.log_and_apply(VersionEdit { dropped_keyspaces: vec![id], dropped_range_tombstones, ..VersionEdit::default() })?;
        Ok(true)
    }

    /// Records in one manifest edit that keyspace `id`'s merge operands are
    /// written for the merge operator `name` (1..=255 bytes), unless that is
    /// already recorded. An open with another operator for the keyspace can
    /// then be refused.
    pub fn record_merge_operator(&self, id: u32, name: &str) -> Result<()> {
        crate::edit::check_merge_operator_name(name).map_err(Error::InvalidArgument)?;
        let _serial = self.keyspace_edits.lock();
        if self.current().merge_operator_name(id) == Some(name) {
            return Ok(());
        }
        self.log_and_apply(VersionEdit { merge_operators: vec![(id, name.to_owned())], ..VersionEdit::default() })
    }

    /// Starts a new manifest whose snapshot already includes the edit being applied.
    fn roll(
        &self,
        version: Version,
        log_number: u64,
        last_seqno: SeqNo,
        wal_segments: BTreeMap<u64, WalSegment>,
        feed_segments: BTreeMap<u64, FeedSegment>,
    ) -> Result<(LogWriter, u64)> {
        let number = self.new_file_number();
        let state = ManifestState {
            version,
            log_number,
            next_file_number: self.next_file_number.load(Ordering::Acquire),
            last_seqno,
            wal_segments,
            feed_segments,
            predecessor: Some((self.manifest_number(), self.last_seqno())),
        };
        let writer = write_new_manifest(&self.vfs, &self.dir, &self.keys, number, &state)?;
        write_current(self.vfs.as_ref(), &self.dir, &self.keys, number)?;
        Ok((writer, number))
    }

    fn install(&self, version: Version) {
        let version = Arc::new(version);
        let mut installed = self.installed.lock();
        installed.retain(|w| w.strong_count() > 0);
        installed.push(Arc::downgrade(&version));
        // A reader of one keyspace holds only that keyspace's levels
        // (`Version::keyspace_levels`): they keep their tables live alone.
        installed.extend(version.keyspace_trees().map(Arc::downgrade));
        *self.current.write() = version;
    }

    /// Hands out a fresh file number.
    pub fn new_file_number(&self) -> u64 {
        self.next_file_number.fetch_add(1, Ordering::AcqRel)
    }

    /// Makes sure `number` is never handed out again (for files found on disk
    /// that the manifest does not know).
    pub fn mark_file_number_used(&self, number: u64) {
        self.next_file_number.fetch_max(number.saturating_add(1), Ordering::AcqRel);
    }

    /// The last seqno recorded in the manifest.
    pub fn last_seqno(&self) -> SeqNo {
        self.last_seqno.load(Ordering::Acquire)
    }

    /// The oldest WAL segment still needed.
    pub fn log_number(&self) -> u64 {
        self.log_number.load(Ordering::Acquire)
    }

    /// The WAL segments the manifest lists (each at or above [`VersionSet::log_number`]),
    /// or `None` for a store of format 1 opened read-only, whose manifest lists none.
    pub fn wal_segments(&self) -> Option<BTreeMap<u64, WalSegment>> {
        self.tracks_wal.then(|| self.wal_segments.lock().clone())
    }

    /// The WAL segments below [`VersionSet::log_number`] that the manifest keeps
    /// for the change feed, by number (empty unless a change-feed retention
    /// made the engine keep some).
    pub fn feed_segments(&self) -> BTreeMap<u64, FeedSegment> {
        self.feed_segments.lock().clone()
    }

    /// The live manifest's file number.
    pub fn manifest_number(&self) -> u64 {
        self.manifest_number.load(Ordering::Acquire)
    }

    /// Number of levels.
    pub fn num_levels(&self) -> usize {
        self.num_levels
    }

    /// Rewrites the manifest as a fresh snapshot once it grows past `bytes`
    /// (4 MiB by default).
    pub fn set_manifest_roll_bytes(&self, bytes: u64) {
        self.roll_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Table numbers referenced by the current version or by any older version
    /// still held by a reader.
    pub fn live_files(&self) -> HashSet<u64> {
        let mut live = HashSet::new();
        self.current().collect_numbers(&mut live);
        let mut installed = self.installed.lock();
        installed.retain(|w| match w.upgrade() {
            Some(v) => {
                v.collect_numbers(&mut live);
                true
            }
            None => false,
        });
        live
    }

    /// Runs [`crate::delete_obsolete_files`] for this store. `pending` are the
    /// numbers of tables being written right now (flush or compaction outputs not
    /// yet in any version); they are kept. WAL segments below `min_log_number` go.
    ///
    /// The live set and the directory listing are taken under the edit mutex, so
    /// no manifest rollover is half done; temporary files are removed under it
    /// too (a rollover reuses the name `CURRENT.tmp`). The other removals, which
    /// may be slow overwrites, run after the mutex is released: a file found
    /// obsolete stays obsolete, because numbers are never handed out twice.
    /// Evicting removed tables from the table cache is the caller's job.
    pub fn delete_obsolete_files(&self, pending: &HashSet<u64>, min_log_number: u64, passes: u32) -> Result<Vec<String>> {
        let (temporary, rest) = {
            let slot = self.manifest.lock();
            if slot.writer.is_none() {
                return Err(Error::ReadOnly);
            }
            let mut live = self.live_files();
            live.extend(pending.iter().copied());
            let names = gc::obsolete_files(self.vfs.as_ref(), &self.dir, &live, min_log_number, self.manifest_number())?;
            let (temporary, rest): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| gc::is_temporary(n));
            (gc::remove_files(self.vfs.as_ref(), &self.dir, temporary, passes)?, rest)
        };
        let mut removed = temporary;
        removed.extend(gc::remove_files(self.vfs.as_ref(), &self.dir, rest, passes)?);
        removed.sort();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use std::path::PathBuf;

    use crypto::vfs::SimVfs;

    use super::*;
    use crate::edit::tests::meta;

    /// A new version set with 3 levels in `/db` of a fresh simulated file system.
    fn fresh() -> (Arc<SimVfs>, Arc<dyn Vfs>, PathBuf, Arc<KeyManager>, VersionSet) {
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = sim.clone();
        let dir = PathBuf::from("/db");
        vfs.create_dir_all(&dir).unwrap();
        let keys = KeyManager::ephemeral();
        let vs = VersionSet::create(&vfs, &dir, &keys, 3).unwrap();
        (sim, vfs, dir, keys, vs)
    }

    fn names(vs: &VersionSet) -> Vec<(u32, String)> {
        vs.current().keyspaces().map(|k| (k.id, k.name.clone())).collect()
    }

    #[test]
    fn keyspaces_survive_recovery_and_rolls_and_ids_are_never_reused() {
        let (_, vfs, dir, keys, vs) = fresh();
        assert_eq!(vs.create_keyspace("a", Vec::new()).unwrap().id, 1);
        assert_eq!(vs.create_keyspace("b", Vec::new()).unwrap().id, 2);
        assert!(matches!(vs.create_keyspace("a", Vec::new()), Err(Error::InvalidArgument(_))));
        assert!(matches!(vs.create_keyspace("", Vec::new()), Err(Error::InvalidArgument(_))));
        assert!(matches!(vs.create_keyspace(&"x".repeat(256), Vec::new()), Err(Error::InvalidArgument(_))));
        assert!(matches!(vs.create_keyspace("c", vec![9]), Err(Error::InvalidArgument(_))), "options that do not decode");
        assert!(vs.drop_keyspace(2).unwrap());
        assert!(!vs.drop_keyspace(2).unwrap());
        assert!(!vs.drop_keyspace(0).unwrap(), "the default keyspace is never dropped");
        vs.log_and_apply(VersionEdit { added: vec![(0, meta(50, "k", "m"))], ..VersionEdit::default() }).unwrap();
        drop(vs);

        // Replayed from the edits as logged.
        let vs = VersionSet::recover(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(names(&vs), vec![(1, "a".to_string())]);
        assert_eq!(vs.current().next_keyspace_id(), 3);
        // Rebuilt from the snapshot that recovery wrote (b's drop is no longer in it).
        drop(vs);
        let vs = VersionSet::recover(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(names(&vs), vec![(1, "a".to_string())]);
        assert_eq!(vs.create_keyspace("b", Vec::new()).unwrap().id, 3, "id 2 of the dropped b is not reused");
        // A roll mid-run writes the keyspaces into the new manifest's snapshot.
        vs.set_manifest_roll_bytes(0);
        assert!(vs.drop_keyspace(1).unwrap());
        drop(vs);
        let vs = VersionSet::recover_read_only(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(names(&vs), vec![(3, "b".to_string())]);
        assert_eq!(vs.current().next_keyspace_id(), 4);
        assert_eq!(vs.current().level_files(0).len(), 1);
        assert!(matches!(vs.create_keyspace("c", Vec::new()), Err(Error::ReadOnly)));
    }

    #[test]
    fn keyspace_tables_survive_recovery_and_a_keyspace_s_levels_held_alone_keep_their_tables_live() {
        let (_, vfs, dir, keys, vs) = fresh();
        let a = vs.create_keyspace("a", Vec::new()).unwrap().id;
        let in_a = |n: u64| crate::edit::FileMeta { keyspace: a, ..meta(n, "k", "m") };
        vs.log_and_apply(VersionEdit { added: vec![(0, meta(50, "k", "m")), (0, in_a(51))], ..VersionEdit::default() }).unwrap();
        // A reader of keyspace a holds only a's levels.
        let held = vs.current().keyspace_levels(a).unwrap();
        vs.log_and_apply(VersionEdit { deleted: vec![(0, 51)], added: vec![(1, in_a(52))], ..VersionEdit::default() }).unwrap();
        let live = vs.live_files();
        assert!(live.contains(&51), "a table a reader of the keyspace still reads is live: {live:?}");
        drop(held);
        assert!(!vs.live_files().contains(&51));
        drop(vs);
        for _ in 0..2 {
            // Replayed from the log, then from the snapshot recovery wrote.
            let vs = VersionSet::recover(&vfs, &dir, &keys, 3).unwrap();
            let v = vs.current();
            assert_eq!(v.level_files(0).iter().map(|f| f.number).collect::<Vec<_>>(), vec![50]);
            let a_levels = v.keyspace_levels(a).unwrap();
            assert_eq!(a_levels.level_files(1).iter().map(|f| (f.number, f.keyspace)).collect::<Vec<_>>(), vec![(52, a)]);
        }
    }

    #[test]
    fn merge_operator_names_survive_recovery_and_rolls_and_go_with_their_keyspace() {
        let (_, vfs, dir, keys, vs) = fresh();
        let a = vs.create_keyspace("a", Vec::new()).unwrap().id;
        vs.record_merge_operator(0, "synapsed.u64_add").unwrap();
        vs.record_merge_operator(a, "sets").unwrap();
        assert!(matches!(vs.record_merge_operator(a, ""), Err(Error::InvalidArgument(_))));
        drop(vs);
        let vs = VersionSet::recover(&vfs, &dir, &keys, 3).unwrap();
        let recorded = |vs: &VersionSet| vs.current().merge_operator_names().map(|(id, n)| (id, n.to_string())).collect::<Vec<_>>();
        assert_eq!(recorded(&vs), vec![(0, "synapsed.u64_add".to_string()), (a, "sets".to_string())]);
        // A roll writes them into the new manifest's snapshot; a drop removes its keyspace's.
        vs.set_manifest_roll_bytes(0);
        assert!(vs.drop_keyspace(a).unwrap());
        drop(vs);
        let vs = VersionSet::recover_read_only(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(recorded(&vs), vec![(0, "synapsed.u64_add".to_string())]);
        assert_eq!(vs.current().merge_operator_name(0), Some("synapsed.u64_add"));
    }

    #[test]
    fn a_manifest_without_keyspaces_is_written_as_before() {
        // A store that never created a keyspace carries no keyspace field at all,
        // so code from before keyspaces reads it.
        let (_, _, _, _, vs) = fresh();
        vs.log_and_apply(VersionEdit { added: vec![(0, meta(50, "k", "m"))], ..VersionEdit::default() }).unwrap();
        let state = ManifestState {
            version: vs.current().as_ref().clone(),
            log_number: 0,
            next_file_number: 9,
            last_seqno: 1,
            wal_segments: BTreeMap::new(),
            feed_segments: BTreeMap::new(),
            predecessor: Some((0, 0)),
        };
        for edit in crate::manifest::snapshot_edits(&state) {
            assert!(edit.created_keyspaces.is_empty() && edit.dropped_keyspaces.is_empty() && edit.next_keyspace_id.is_none());
            assert_eq!(VersionEdit::decode(&edit.encode()).unwrap(), edit);
        }
    }

    #[test]
    fn feed_segments_survive_recovery_and_rolls_until_released() {
        let (_, vfs, dir, keys, vs) = fresh();
        let seg = |first, end| FeedSegment { first_seqno: first, end_seqno: end, bytes: 100 + first, retired_at_ms: 5 };
        // A segment at or above the log number is still needed for recovery.
        let early = VersionEdit { log_number: Some(4), feed_segments: vec![(4, seg(1, 10))], ..VersionEdit::default() };
        assert!(matches!(vs.log_and_apply(early), Err(Error::InvalidEdit(_))));
        vs.log_and_apply(VersionEdit { log_number: Some(4), feed_segments: vec![(2, seg(1, 10)), (3, seg(10, 20))], ..VersionEdit::default() })
            .unwrap();
        assert_eq!(vs.feed_segments().keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        drop(vs);
        // Replayed from the edits, then from the snapshot recovery wrote.
        let vs = VersionSet::recover(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(vs.feed_segments().get(&3), Some(&seg(10, 20)));
        vs.set_manifest_roll_bytes(0);
        vs.log_and_apply(VersionEdit { feed_released: vec![2], ..VersionEdit::default() }).unwrap();
        drop(vs);
        let vs = VersionSet::recover_read_only(&vfs, &dir, &keys, 3).unwrap();
        assert_eq!(vs.feed_segments().into_iter().collect::<Vec<_>>(), vec![(3, seg(10, 20))]);
    }

    #[test]
    fn numbered_file_names() {
        assert_eq!(numbered_file("000012.sst"), Some(12));
        assert_eq!(numbered_file("000003.wal"), Some(3));
        assert_eq!(numbered_file("MANIFEST-000004"), Some(4));
        assert_eq!(numbered_file("CURRENT"), None);
        assert_eq!(numbered_file("CURRENT.tmp"), None);
        assert_eq!(numbered_file("KEYRING"), None);
        assert_eq!(numbered_file("MANIFEST-"), None);
        assert_eq!(numbered_file(".sst"), None);
        assert_eq!(numbered_file("12a.sst"), None);
    }
}
