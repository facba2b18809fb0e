//! RocksDB (the `rocksdb` crate) under the comparison: synced writes
//! (`WriteOptions::set_sync`), an LRU block cache of the shared budget, 10-bit
//! bloom filters like synapsed-storage's, LZ4 block compression (RocksDB's
//! usual choice; the crate is built with LZ4 only to keep its build short).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, CompactOptions, DBCompressionType, Options, WriteBatch,
    WriteOptions, DB,
};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

/// An open database.
pub struct RocksDb {
    db: DB,
    dir: PathBuf,
    sync: WriteOptions,
    // Kept alive for as long as the database uses it.
    _cache: Cache,
}

impl RocksDb {
    /// Creates the database in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        let cache = Cache::new_lru_cache(cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
        options.set_block_based_table_factory(&table);
        let db = DB::open(&options, dir.join("db"))?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(RocksDb { db, dir: dir.to_path_buf(), sync, _cache: cache })
    }
}

struct RocksReader<'a> {
    db: &'a DB,
}

impl Reader for RocksReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.db.get_pinned(key)? {
            Some(v) => {
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut it = self.db.raw_iterator();
        it.seek(start);
        let mut n = 0;
        while n < count {
            let (Some(k), Some(v)) = (it.key(), it.value()) else { break };
            visit(k, v)?;
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}

impl Engine for RocksDb {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.txn_durable(pairs)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put_opt(key, value, &self.sync)?)
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (k, v) in pairs.iter() {
            batch.put(k, v);
        }
        Ok(self.db.write_opt(batch, &self.sync)?)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(RocksReader { db: &self.db }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for k in pairs.keys() {
            batch.delete(k);
        }
        Ok(self.db.write_opt(batch, &self.sync)?)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        self.db.flush()?;
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db.compact_range_opt(None::<&[u8]>, None::<&[u8]>, &options);
        Ok(true)
    }
}
