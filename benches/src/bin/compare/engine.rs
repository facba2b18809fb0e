//! The small interface every engine under comparison implements, and the table
//! of engines compiled into this build. Adapters live in `engines/`, one file
//! per engine, each behind its own cargo feature so that a peer that does not
//! build can be left out.
//!
//! Reads go through a [`Reader`] so that engines which can only read inside a
//! read transaction (redb, LMDB, SQLite) open one per reading thread, as redb's
//! published benchmark does, instead of paying for a transaction per lookup.

use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use synapsed_benches::data::{Workload, KEY_BYTES, VALUE_BYTES};

/// A run of consecutive pairs of the workload, `key(i)` → `value(i)` for `i` in `range`.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    /// Where keys and values come from.
    pub workload: &'a Workload,
    /// Which pairs.
    pub range: Range<u64>,
}

impl Pairs<'_> {
    /// The pairs, generated on the fly.
    pub fn iter(&self) -> impl Iterator<Item = ([u8; KEY_BYTES], [u8; VALUE_BYTES])> + '_ {
        self.range.clone().map(|i| (self.workload.key(i), self.workload.value(i)))
    }

    /// The keys only.
    pub fn keys(&self) -> impl Iterator<Item = [u8; KEY_BYTES]> + '_ {
        self.range.clone().map(|i| self.workload.key(i))
    }

    /// The keys in ascending order (for bulk paths that need sorted input; the
    /// sort is part of what they are timed for).
    pub fn sorted_keys(&self) -> Vec<[u8; KEY_BYTES]> {
        let mut keys: Vec<_> = self.keys().collect();
        keys.sort_unstable();
        keys
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        usize::try_from(self.range.end.saturating_sub(self.range.start)).unwrap_or(usize::MAX)
    }
}

/// A read session: one thread's view for a run of lookups.
pub trait Reader {
    /// Copies the value of `key` into `out` (cleared first); false if absent.
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool>;
    /// Reads up to `count` pairs from the first key at or after `start`, in key
    /// order, handing each (key, value) to `visit` (which checks it); returns
    /// how many were read.
    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize>;
}

/// An engine opened on a directory, with every write durable when it returns.
pub trait Engine: Send + Sync {
    /// Inserts `pairs` in one transaction, durably.
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()>;
    /// Inserts one pair in its own durable transaction.
    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Inserts `pairs` in one durable transaction.
    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()>;
    /// Starts a read session.
    fn reader(&self) -> Result<Box<dyn Reader + '_>>;
    /// Removes the keys of `pairs` in one durable transaction.
    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()>;
    /// Bytes the engine's files occupy on disk.
    fn disk_bytes(&self) -> Result<u64>;
    /// Compacts everything as far as the engine can; false if it cannot compact.
    fn compact(&mut self) -> Result<bool>;

    /// Loads `pairs` into this fresh, empty engine through its other bulk path
    /// ([`bulk_path`] says which), durably, sorting included where the path
    /// needs sorted input. Only called for engines [`bulk_path`] names one for.
    fn bulk_load_other(&self, pairs: Pairs<'_>) -> Result<()> {
        let _ = pairs;
        anyhow::bail!("this engine has no other bulk path")
    }

    /// One lookup in a session of its own.
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        self.reader()?.get(key, out)
    }
    /// One range read in a session of its own.
    fn range(&self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        self.reader()?.range(start, count, visit)
    }
}

/// Every engine the harness knows, in table order (synapsed-storage first: the
/// ratios are relative to it).
pub const ALL: [&str; 8] =
    ["synapsed-storage", NULL_CIPHER, "rocksdb", "fjall", "redb", "sled", "sqlite", "lmdb"];

/// synapsed-storage with its block and record cipher replaced by a plain copy
/// (feature `null-cipher`): its ratio to synapsed-storage is what encryption costs.
pub const NULL_CIPHER: &str = "synapsed-null-cipher";

/// Whether `name` was compiled into this build.
pub fn compiled(name: &str) -> bool {
    match name {
        "synapsed-storage" => true,
        NULL_CIPHER => cfg!(feature = "null-cipher"),
        "rocksdb" => cfg!(feature = "peer-rocksdb"),
        "fjall" => cfg!(feature = "peer-fjall"),
        "redb" => cfg!(feature = "peer-redb"),
        "sled" => cfg!(feature = "peer-sled"),
        "sqlite" => cfg!(feature = "peer-sqlite"),
        "lmdb" => cfg!(feature = "peer-lmdb"),
        _ => false,
    }
}

/// Why `name`'s "durable" rows are not durable, for engines whose commit does
/// not flush the device's write cache: their durable cells are marked in the table.
pub fn weaker_durability(name: &str) -> Option<&'static str> {
    match name {
        "sled" => Some("sled's flush ends with sync_file_range, not fsync: its commits are not durable across a power cut on a write-back cache (see the \"not durable\" device row)"),
        _ => None,
    }
}

/// The bulk path beside the one the "bulk load" row takes, for engines that
/// have one: the "bulk load" row is synapsed-storage's ingest (a batch this
/// large goes straight to a table) and one write transaction for the peers;
/// the other path is synapsed-storage's batch through the WAL and the
/// memtable, and the peers' own bulk loaders.
pub fn bulk_path(name: &str) -> Option<&'static str> {
    match name {
        "synapsed-storage" | NULL_CIPHER => {
            Some("the batch through the WAL and the memtable, its ingest path turned off (`ingest_min_bytes = usize::MAX`)")
        }
        "fjall" => Some("`PartitionHandle::ingest` of the pairs in key order (the sort is timed)"),
        "lmdb" => Some("`MDB_APPEND` puts of the pairs in key order in one transaction (the sort is timed)"),
        // RocksDB's SstFileWriter + IngestExternalFile is its bulk path; it is
        // not wired here yet.
        _ => None,
    }
}

/// Opens engine `name` in the fresh directory `dir` for a load through its
/// other bulk path ([`bulk_path`]).
pub fn open_for_other_bulk_load(name: &str, dir: &Path, cache_bytes: usize) -> Result<Box<dyn Engine>> {
    match name {
        "synapsed-storage" => {
            std::fs::create_dir_all(dir)?;
            Ok(Box::new(crate::engines::synapsed::Synapsed::open_with(dir, cache_bytes, false)?))
        }
        #[cfg(feature = "null-cipher")]
        NULL_CIPHER => {
            std::fs::create_dir_all(dir)?;
            crypto::insecure_null_cipher::enable_for_this_process();
            Ok(Box::new(crate::engines::synapsed::Synapsed::open_with(dir, cache_bytes, false)?))
        }
        _ => open(name, dir, cache_bytes),
    }
}

/// Opens engine `name` in the fresh directory `dir` with a cache of `cache_bytes`.
pub fn open(name: &str, dir: &Path, cache_bytes: usize) -> Result<Box<dyn Engine>> {
    std::fs::create_dir_all(dir)?;
    Ok(match name {
        "synapsed-storage" => Box::new(crate::engines::synapsed::Synapsed::open(dir, cache_bytes)?),
        #[cfg(feature = "null-cipher")]
        NULL_CIPHER => {
            // This child process runs only this engine; the switch dies with it.
            crypto::insecure_null_cipher::enable_for_this_process();
            Box::new(crate::engines::synapsed::Synapsed::open(dir, cache_bytes)?)
        }
        #[cfg(feature = "peer-rocksdb")]
        "rocksdb" => Box::new(crate::engines::rocksdb::RocksDb::open(dir, cache_bytes)?),
        #[cfg(feature = "peer-fjall")]
        "fjall" => Box::new(crate::engines::fjall::Fjall::open(dir, cache_bytes)?),
        #[cfg(feature = "peer-redb")]
        "redb" => Box::new(crate::engines::redb::Redb::open(dir, cache_bytes)?),
        #[cfg(feature = "peer-sled")]
        "sled" => Box::new(crate::engines::sled::Sled::open(dir, cache_bytes)?),
        #[cfg(feature = "peer-sqlite")]
        "sqlite" => Box::new(crate::engines::sqlite::Sqlite::open(dir, cache_bytes)?),
        #[cfg(feature = "peer-lmdb")]
        "lmdb" => Box::new(crate::engines::lmdb::Lmdb::open(dir, cache_bytes)?),
        other => anyhow::bail!("engine {other} is not compiled into this build (see the peer-* features)"),
    })
}

/// Bytes allocated on disk for every file under `dir` (blocks, not lengths, so
/// sparse or preallocated files count as what they really occupy).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}
