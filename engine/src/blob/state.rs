//! What the writers, readers and the garbage collector of one open store tell
//! each other (in memory only: after a crash nothing is in flight).
//!
//! The rules that keep GC from removing what a writer or reader still needs:
//! - a writer registers its blob id before it writes any record, and GC copies
//!   the in-flight ids and takes its snapshot under the same lock, so the
//!   records of a writer GC does not know of are all newer than its snapshot;
//! - a writer that reuses an existing chunk (a dedup hit) pins its hash and
//!   looks the chunk up under this lock, and GC drops location records under
//!   it, skipping pinned hashes: either the writer sees the record gone and
//!   writes the chunk anew, or GC sees the pin;
//! - pins released while a GC runs stay protected until that GC ends;
//! - files being written (or left open for the next writer) are never removed, and no file is removed while a
//!   reader is open (its snapshot may point into any of them).

use std::collections::{HashMap, HashSet};

use parking_lot::{Mutex, MutexGuard};

use crate::blob::file::BlobFileWriter;
use crate::blob::format::ChunkHash;

/// The blob store's shared in-memory state (one per open `Db`).
#[derive(Default)]
pub(crate) struct BlobState {
    registry: Mutex<Registry>,
    /// One GC at a time.
    pub(crate) gc: Mutex<()>,
}

impl std::fmt::Debug for BlobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobState").finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Blob ids of unfinished writers.
    pub(crate) inflight: HashSet<u64>,
    /// Hashes of existing chunks that unfinished writers reuse, with counts.
    pub(crate) pins: HashMap<ChunkHash, usize>,
    /// Pins released while a GC was running: kept until it ends.
    pub(crate) protected: HashSet<ChunkHash>,
    pub(crate) gc_running: bool,
    /// Blob files being written.
    pub(crate) active_files: HashSet<u64>,
    /// Open readers.
    pub(crate) readers: usize,
    /// Blob files a finished writer left open below their target size, for
    /// the next writer to append to (their numbers stay in `active_files`), so
    /// that many small blobs share files instead of making one each.
    pub(crate) idle_files: Vec<BlobFileWriter>,
}

impl Registry {
    /// Whether GC must keep the location record of `hash`.
    pub(crate) fn is_pinned(&self, hash: &ChunkHash) -> bool {
        self.pins.contains_key(hash) || self.protected.contains(hash)
    }

    pub(crate) fn pin(&mut self, hash: ChunkHash) {
        *self.pins.entry(hash).or_insert(0) += 1;
    }

    /// Closes the idle files: GC may then move or remove them like any other.
    pub(crate) fn close_idle_files(&mut self) {
        for file in self.idle_files.drain(..) {
            self.active_files.remove(&file.number);
        }
    }

    pub(crate) fn unpin(&mut self, hash: &ChunkHash) {
        if let Some(n) = self.pins.get_mut(hash) {
            *n -= 1;
            if *n == 0 {
                self.pins.remove(hash);
                if self.gc_running {
                    self.protected.insert(*hash);
                }
            }
        }
    }
}

impl BlobState {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock()
    }
}
