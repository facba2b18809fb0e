//! The database facade.

use std::ops::Bound;
use std::path::Path;

use crypto::Credential;

use crate::batch::WriteBatch;
use crate::error::Result;
use crate::options::Options;

/// An open store. `Send + Sync`: share it with `Arc` across threads.
pub struct Db {
    _private: (),
}

/// A consistent read view at one sequence number; released on drop.
pub struct Snapshot {
    _private: (),
}

/// An iterator over live key/value pairs in key order (or reverse key order).
pub struct DbIterator {
    _private: (),
}

impl Iterator for DbIterator {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// An optimistic transaction: reads see a snapshot plus the transaction's own
/// writes; `commit` fails with `Error::Conflict` if any key it read or wrote was
/// written by someone else after the transaction began.
pub struct Transaction<'db> {
    _db: &'db Db,
}

/// Counters and sizes of an open store.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Last committed sequence number.
    pub last_seqno: u64,
    /// Number of SSTables per level.
    pub files_per_level: Vec<usize>,
    /// Bytes of SSTables per level.
    pub bytes_per_level: Vec<u64>,
    /// Total bytes of all files in the store directory.
    pub disk_bytes: u64,
    /// Bytes in the active and immutable memtables.
    pub memtable_bytes: u64,
    /// Block-cache hits.
    pub block_cache_hits: u64,
    /// Block-cache misses.
    pub block_cache_misses: u64,
    /// Flushes done since open.
    pub flushes: u64,
    /// Compactions done since open.
    pub compactions: u64,
    /// Data-key epochs live in the keyring.
    pub live_epochs: Vec<u32>,
}

/// What `verify` found: each damaged file and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Files checked.
    pub files_checked: usize,
    /// Entries read from tables and logs.
    pub entries_checked: u64,
    /// (file name, problem) for each damaged file.
    pub damaged: Vec<(String, String)>,
}

impl VerifyReport {
    /// Whether every file is intact.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl Db {
    /// Creates a new store in `dir` (creating the directory); fails with
    /// `AlreadyExists` if it holds one.
    pub fn create(dir: &Path, credential: &Credential, options: Options) -> Result<Db> {
        let _ = (dir, credential, options);
        todo!()
    }

    /// Opens an existing store: unlocks keys, replays the WAL, truncating a torn tail.
    pub fn open(dir: &Path, credential: &Credential, options: Options) -> Result<Db> {
        let _ = (dir, credential, options);
        todo!()
    }

    /// Reads and authenticates every file of a store without opening it for writing.
    pub fn verify(dir: &Path, credential: &Credential, options: Options) -> Result<VerifyReport> {
        let _ = (dir, credential, options);
        todo!()
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _ = (key, value);
        todo!()
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        let _ = key;
        todo!()
    }

    /// The value of `key`, `None` if absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = key;
        todo!()
    }

    /// The value of `key` as of `snapshot`.
    pub fn get_at(&self, key: &[u8], snapshot: &Snapshot) -> Result<Option<Vec<u8>>> {
        let _ = (key, snapshot);
        todo!()
    }

    /// Applies `batch` atomically; returns the sequence number of its last operation.
    pub fn write(&self, batch: WriteBatch) -> Result<u64> {
        let _ = batch;
        todo!()
    }

    /// A read view of the store as it is now.
    pub fn snapshot(&self) -> Snapshot {
        todo!()
    }

    /// Live pairs with keys in (`start`, `end`), ascending (`reverse` = false) or
    /// descending, as of `snapshot` (or now).
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool, snapshot: Option<&Snapshot>) -> Result<DbIterator> {
        let _ = (start, end, reverse, snapshot);
        todo!()
    }

    /// Live pairs whose key starts with `prefix`, ascending.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<DbIterator> {
        let _ = prefix;
        todo!()
    }

    /// Begins an optimistic transaction.
    pub fn transaction(&self) -> Transaction<'_> {
        todo!()
    }

    /// Writes the memtable to an SSTable and waits for it.
    pub fn flush(&self) -> Result<()> {
        todo!()
    }

    /// Compacts every table overlapping [`start`, `end`] down to the bottom level and waits.
    pub fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        let _ = (start, end);
        todo!()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        todo!()
    }

    /// Stops background work, syncs, and releases the lock.
    pub fn close(self) -> Result<()> {
        todo!()
    }
}

impl<'db> Transaction<'db> {
    /// Reads `key` through the transaction (own writes first, then its snapshot).
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = key;
        todo!()
    }
    /// Buffers a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        let _ = (key, value);
        todo!()
    }
    /// Buffers a delete.
    pub fn delete(&mut self, key: &[u8]) {
        let _ = key;
        todo!()
    }
    /// Commits atomically, or fails with `Error::Conflict` and writes nothing.
    pub fn commit(self) -> Result<u64> {
        todo!()
    }
}
