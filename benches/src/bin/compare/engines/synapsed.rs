//! synapsed-storage under the comparison: every commit fsynced
//! (`SyncPolicy::EveryCommit`, with group commit), the shared cache budget as its
//! block cache, everything else at its defaults (zstd level 1, 10-bit blooms).

use std::ops::Bound;
use std::path::{Path, PathBuf};

use anyhow::Result;
use synapsed_storage::{Credential, Db, Options, SyncPolicy, WriteBatch};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

/// An open store.
pub struct Synapsed {
    db: Db,
    dir: PathBuf,
}

impl Synapsed {
    /// Creates the store in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        Self::open_with(dir, cache_bytes, true)
    }

    /// Creates the store in `dir`, with large batches written straight to a
    /// table (the default) when `ingest`, through the WAL and memtable when not.
    pub fn open_with(dir: &Path, cache_bytes: usize, ingest: bool) -> Result<Self> {
        let mut options = Options::default().with_sync(SyncPolicy::EveryCommit).with_block_cache_bytes(cache_bytes);
        if !ingest {
            options = options.with_ingest_min_bytes(usize::MAX);
        }
        let db = Db::create(&dir.join("db"), &Credential::passphrase("compare harness passphrase"), options)?;
        Ok(Synapsed { db, dir: dir.to_path_buf() })
    }

    fn write(&self, pairs: &Pairs<'_>, put: bool) -> Result<()> {
        let mut batch = WriteBatch::new();
        if put {
            for (k, v) in pairs.iter() {
                batch.put(k, v);
            }
        } else {
            for k in pairs.keys() {
                batch.delete(k);
            }
        }
        self.db.write(batch)?;
        Ok(())
    }
}

struct SynapsedReader<'a> {
    db: &'a Db,
}

impl Reader for SynapsedReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        match self.db.get(key)? {
            // The engine hands out an owned value; moving it in costs no copy.
            Some(v) => {
                *out = v;
                Ok(true)
            }
            None => {
                out.clear();
                Ok(false)
            }
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        let mut it = self.db.range(Bound::Included(start), Bound::Unbounded, false, None)?;
        // Borrowed pairs, as the peers' adapters hand out theirs (slices into pages).
        while n < count {
            let Some(item) = it.next_ref() else { break };
            let (k, v) = item?;
            visit(k, v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Synapsed {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn bulk_load_other(&self, pairs: Pairs<'_>) -> Result<()> {
        // Opened by `open_with(.., false)`: the same batch, through the WAL.
        self.write(&pairs, true)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put(key, value)?)
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(SynapsedReader { db: &self.db }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, false)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        self.db.flush()?;
        self.db.compact_range(None, None)?;
        Ok(true)
    }
}
