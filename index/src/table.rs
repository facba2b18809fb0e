//! SSTables: the builder that writes them, the reader that serves point lookups and
//! iterators, the block cache of decrypted blocks and the cache of open readers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto::vfs::{RandomAccessFile, Vfs, WritableFile};
use crypto::KeyManager;

use crate::error::Result;
use crate::iter::{Direction, InternalIterator, KeyRange};
use crate::key::{InternalKey, SeqNo, ValueKind};

/// Block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Blocks stored uncompressed (still encrypted).
    None,
    /// zstd at the given level.
    Zstd(i32),
}

/// How tables are written.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// Target size of an uncompressed data block.
    pub block_size_bytes: usize,
    /// Keys between restart points in a data block.
    pub restart_interval: usize,
    /// Block compression (applied before encryption).
    pub compression: Compression,
    /// Bloom filter bits per key (0 = no filter).
    pub bloom_bits_per_key: u32,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { block_size_bytes: 4096, restart_interval: 16, compression: Compression::Zstd(1), bloom_bits_per_key: 10 }
    }
}

/// What a finished table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// File size in bytes.
    pub file_size: u64,
    /// Number of entries.
    pub entries: u64,
    /// Smallest internal key.
    pub smallest: InternalKey,
    /// Largest internal key.
    pub largest: InternalKey,
    /// Smallest seqno in the table.
    pub min_seqno: SeqNo,
    /// Largest seqno in the table.
    pub max_seqno: SeqNo,
}

/// Writes one SSTable.
pub struct TableBuilder {
    _private: (),
}

impl TableBuilder {
    /// Starts a table in `file` (freshly created, empty) for file number `file_id`.
    /// Writes the encrypted file header at once. `name` is used in errors.
    pub fn new(file: Box<dyn WritableFile>, keys: &KeyManager, file_id: u64, name: &str, options: TableOptions) -> Result<Self> {
        let _ = (file, keys, file_id, name, options);
        todo!()
    }

    /// Adds an entry; keys must come in strictly increasing internal-key order.
    pub fn add(&mut self, key: &InternalKey, value: &[u8]) -> Result<()> {
        let _ = (key, value);
        todo!()
    }

    /// Bytes written so far plus the pending block (for splitting output files).
    pub fn estimated_size(&self) -> u64 {
        todo!()
    }

    /// Number of entries added.
    pub fn entries(&self) -> u64 {
        todo!()
    }

    /// Writes index, filter, properties and footer, syncs the file, and returns its info.
    /// Fails if no entry was added.
    pub fn finish(self) -> Result<TableInfo> {
        todo!()
    }
}

/// A cache of decrypted, decompressed blocks, bounded in bytes.
pub struct BlockCache {
    _private: (),
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        let _ = capacity_bytes;
        todo!()
    }

    /// Bytes currently held.
    pub fn used_bytes(&self) -> usize {
        todo!()
    }

    /// (hits, misses) since creation.
    pub fn hit_stats(&self) -> (u64, u64) {
        todo!()
    }
}

/// Reads one SSTable.
pub struct TableReader {
    _private: (),
}

impl TableReader {
    /// Opens a table: reads and authenticates header, footer, index, filter and
    /// properties. `name` names the file in errors.
    pub fn open(file: Arc<dyn RandomAccessFile>, keys: &KeyManager, file_id: u64, name: &str, cache: Option<Arc<BlockCache>>) -> Result<Arc<Self>> {
        let _ = (file, keys, file_id, name, cache);
        todo!()
    }

    /// The newest version of `user_key` with seqno <= `snapshot` in this table.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        let _ = (user_key, snapshot);
        todo!()
    }

    /// An iterator over every version in `range`, in `direction`.
    pub fn iter(self: &Arc<Self>, range: KeyRange, direction: Direction) -> Box<dyn InternalIterator> {
        let _ = (range, direction);
        todo!()
    }

    /// Reads and authenticates every block; returns the number of entries.
    pub fn verify(&self) -> Result<u64> {
        todo!()
    }

    /// The table's info (from its properties block).
    pub fn info(&self) -> &TableInfo {
        todo!()
    }
}

/// Open table readers by file number, opened on demand from `dir/{number:06}.sst`.
pub struct TableCache {
    _private: (),
}

impl TableCache {
    /// A cache over the tables in `dir`.
    pub fn new(vfs: Arc<dyn Vfs>, dir: PathBuf, keys: Arc<KeyManager>, block_cache: Option<Arc<BlockCache>>) -> Arc<Self> {
        let _ = (vfs, dir, keys, block_cache);
        todo!()
    }

    /// The reader of table `file_number`, opening it if needed.
    pub fn get(&self, file_number: u64) -> Result<Arc<TableReader>> {
        let _ = file_number;
        todo!()
    }

    /// Forgets the reader of a deleted table.
    pub fn evict(&self, file_number: u64) {
        let _ = file_number;
        todo!()
    }

    /// The path of table `file_number`.
    pub fn table_path(dir: &Path, file_number: u64) -> PathBuf {
        dir.join(format!("{file_number:06}.sst"))
    }
}
