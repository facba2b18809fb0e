//! sled under the comparison: every write followed by `flush` before it returns,
//! batches applied atomically with `apply_batch`, the shared budget as its cache.
//! sled has no explicit compaction.
//!
//! `flush` is the strongest commit sled 0.34 offers, but on Linux it ends each log
//! write with `sync_file_range` (WAIT_BEFORE | WRITE | WAIT_AFTER), not fsync: the
//! data is handed to the device, whose volatile write cache is not flushed, and no
//! metadata is written. Its durable rows therefore measure a weaker guarantee than
//! the other engines' (see the harness's "not durable" floor row).

use std::path::{Path, PathBuf};

use anyhow::Result;
use sled::{Batch, Db};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

/// An open database.
pub struct Sled {
    db: Db,
    dir: PathBuf,
}

impl Sled {
    /// Creates the database in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        let db = sled::Config::new().path(dir.join("db")).cache_capacity(cache_bytes as u64).open()?;
        Ok(Sled { db, dir: dir.to_path_buf() })
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }
}

struct SledReader<'a> {
    db: &'a Db,
}

impl Reader for SledReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.db.get(key)? {
            Some(v) => {
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        for item in self.db.range(start..).take(count) {
            let (k, v) = item?;
            visit(&k, &v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Sled {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.txn_durable(pairs)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.db.insert(key, value)?;
        self.db.flush()?;
        Ok(())
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = Batch::default();
        for (k, v) in pairs.iter() {
            batch.insert(&k[..], &v[..]);
        }
        self.apply(batch)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(SledReader { db: &self.db }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = Batch::default();
        for k in pairs.keys() {
            batch.remove(&k[..]);
        }
        self.apply(batch)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }
}
