//! Versions (which tables make up each level) and the version set that records
//! every change as an edit in the manifest.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use index::{Direction, InternalIterator, InternalKey, KeyRange, SeqNo, TableCache, ValueKind};

use crate::error::Result;

/// Name of the file that names the live manifest.
pub const CURRENT_FILE: &str = "CURRENT";

/// One SSTable as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (`{number:06}.sst`).
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Smallest internal key.
    pub smallest: InternalKey,
    /// Largest internal key.
    pub largest: InternalKey,
    /// Entries.
    pub entries: u64,
    /// Smallest seqno.
    pub min_seqno: SeqNo,
    /// Largest seqno.
    pub max_seqno: SeqNo,
    /// Data-key epoch the file's key is wrapped under.
    pub epoch: u32,
}

/// A change to the version set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WAL segments numbered below this are no longer needed.
    pub log_number: Option<u64>,
    /// Next file number to hand out.
    pub next_file_number: Option<u64>,
    /// Last seqno whose data is in tables (or in a WAL at or after `log_number`).
    pub last_seqno: Option<SeqNo>,
    /// Tables added, with their level.
    pub added: Vec<(usize, FileMeta)>,
    /// Tables removed: (level, file number).
    pub deleted: Vec<(usize, u64)>,
}

/// An immutable picture of the levels.
#[derive(Debug, Clone, Default)]
pub struct Version {
    _private: (),
}

impl Version {
    /// Number of levels.
    pub fn num_levels(&self) -> usize {
        todo!()
    }

    /// Tables of `level`: L0 newest first; other levels sorted by key, not overlapping.
    pub fn level_files(&self, level: usize) -> &[Arc<FileMeta>] {
        let _ = level;
        todo!()
    }

    /// Newest version of `user_key` at or below `snapshot` across the levels.
    pub fn get(&self, tables: &TableCache, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let _ = (tables, user_key, snapshot);
        todo!()
    }

    /// Iterators over every table overlapping `range` (one per L0 file, one lazily
    /// concatenating iterator per deeper level), each in `direction`.
    pub fn iterators(&self, tables: &Arc<TableCache>, range: &KeyRange, direction: Direction) -> Result<Vec<Box<dyn InternalIterator>>> {
        let _ = (tables, range, direction);
        todo!()
    }
}

/// The current version plus the manifest that records how it came to be.
pub struct VersionSet {
    _private: (),
}

impl VersionSet {
    /// Creates a new manifest and `CURRENT` in `dir` for an empty store.
    pub fn create(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize) -> Result<Self> {
        let _ = (vfs, dir, keys, num_levels);
        todo!()
    }

    /// Reads `CURRENT` and replays the manifest it names.
    pub fn recover(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, num_levels: usize) -> Result<Self> {
        let _ = (vfs, dir, keys, num_levels);
        todo!()
    }

    /// The current version.
    pub fn current(&self) -> Arc<Version> {
        todo!()
    }

    /// Appends `edit` to the manifest, syncs it, and installs the resulting version.
    /// Thread-safe; edits are applied one at a time.
    pub fn log_and_apply(&self, edit: VersionEdit) -> Result<()> {
        let _ = edit;
        todo!()
    }

    /// Hands out a fresh file number.
    pub fn new_file_number(&self) -> u64 {
        todo!()
    }

    /// The last seqno recorded in the manifest.
    pub fn last_seqno(&self) -> SeqNo {
        todo!()
    }

    /// The oldest WAL segment still needed.
    pub fn log_number(&self) -> u64 {
        todo!()
    }

    /// The live manifest's file number.
    pub fn manifest_number(&self) -> u64 {
        todo!()
    }

    /// Table numbers referenced by the current version or by any older version
    /// still held by a reader.
    pub fn live_files(&self) -> HashSet<u64> {
        todo!()
    }
}
