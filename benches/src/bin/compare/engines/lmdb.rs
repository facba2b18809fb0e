//! LMDB (through heed) under the comparison: one database of byte keys to byte
//! values, LMDB's default durable commits (the data file is synced before a
//! write transaction's commit returns). LMDB reads through a memory map and has
//! no cache of its own, so the shared cache budget does not apply: the OS page
//! cache serves it. Reads run in one read transaction per reader. LMDB has no
//! in-place compaction (only a compacting copy), so none is run.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use anyhow::Result;
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, PutFlags, RoTxn};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

/// The largest the data file may grow; address space only, not memory.
const MAP_SIZE_BYTES: usize = 64 << 30;

/// An open environment and its one database.
pub struct Lmdb {
    env: Env,
    db: Database<Bytes, Bytes>,
    dir: PathBuf,
}

impl Lmdb {
    /// Creates the environment in `dir`; `_cache_bytes` has no LMDB counterpart.
    pub fn open(dir: &Path, _cache_bytes: usize) -> Result<Self> {
        let path = dir.join("db");
        std::fs::create_dir_all(&path)?;
        // SAFETY: the harness opens this environment once, in a directory of its
        // own that nothing else maps or truncates while it is open.
        let env = unsafe { EnvOpenOptions::new().map_size(MAP_SIZE_BYTES).max_dbs(1).open(&path)? };
        let mut txn = env.write_txn()?;
        let db = env.create_database::<Bytes, Bytes>(&mut txn, Some("data"))?;
        txn.commit()?;
        Ok(Lmdb { env, db, dir: dir.to_path_buf() })
    }

    fn write(&self, pairs: &Pairs<'_>, put: bool) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        if put {
            for (k, v) in pairs.iter() {
                self.db.put(&mut txn, &k, &v)?;
            }
        } else {
            for k in pairs.keys() {
                self.db.delete(&mut txn, &k)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

struct LmdbReader<'a> {
    txn: RoTxn<'a>,
    db: Database<Bytes, Bytes>,
}

impl Reader for LmdbReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.db.get(&self.txn, key)? {
            Some(v) => {
                out.extend_from_slice(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(start), Bound::Unbounded);
        for item in self.db.range(&self.txn, &bounds)?.take(count) {
            let (k, v) = item?;
            visit(k, v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Lmdb {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        self.db.put(&mut txn, key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn bulk_load_other(&self, pairs: Pairs<'_>) -> Result<()> {
        let w = pairs.workload;
        let keys = pairs.sorted_keys();
        let mut txn = self.env.write_txn()?;
        for k in &keys {
            self.db.put_with_flags(&mut txn, PutFlags::APPEND, k, &w.value_of_key(k))?;
        }
        txn.commit()?;
        Ok(())
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(LmdbReader { txn: self.env.read_txn()?, db: self.db }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, false)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }
}
