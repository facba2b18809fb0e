//! SSTables: the builder that writes them, the reader that serves point lookups and
//! iterators, the block cache of decrypted blocks and the cache of open readers.
//! The byte layout is documented in `index/FORMAT.md`; its constants live in
//! `crate::format`.

pub(crate) mod block;
pub(crate) mod bloom;
mod builder;
mod cache;
pub(crate) mod properties;
pub(crate) mod reader;
mod salvage;
mod user_properties;

pub use builder::TableBuilder;
pub use cache::{BlockCache, TableCache};
pub use reader::TableReader;
pub use salvage::{salvage_table, Salvage};
pub use user_properties::{
    CollectedEntry, HookError, TableContext, TablePropertiesCollector, TablePropertiesCollectorFactory, TableReason,
    UserProperties,
};

use crate::key::{InternalKey, SeqNo};

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

