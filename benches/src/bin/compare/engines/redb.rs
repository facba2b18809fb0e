//! redb under the comparison: one table of byte keys to byte values, every write
//! transaction committed with redb's default `Durability::Immediate` (fsynced
//! before `commit` returns), the shared budget as its cache. Reads run in one
//! read transaction per reader, as in redb's own benchmark.

use std::path::{Path, PathBuf};

use anyhow::Result;
use redb::{Builder, Database, ReadOnlyTable, TableDefinition};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");

/// Compaction passes before giving up on reaching a fixed point.
const MAX_COMPACTION_PASSES: usize = 64;

/// An open database file.
pub struct Redb {
    db: Database,
    dir: PathBuf,
}

impl Redb {
    /// Creates the database file in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        let db = Builder::new().set_cache_size(cache_bytes).create(dir.join("data.redb"))?;
        // Create the table up front so that readers never find it missing.
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Redb { db, dir: dir.to_path_buf() })
    }

    fn write(&self, pairs: &Pairs<'_>, put: bool) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(TABLE)?;
            if put {
                for (k, v) in pairs.iter() {
                    table.insert(&k[..], &v[..])?;
                }
            } else {
                for k in pairs.keys() {
                    table.remove(&k[..])?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

struct RedbReader {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.table.get(key)? {
            Some(v) => {
                out.extend_from_slice(v.value());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        for item in self.table.range(start..)?.take(count) {
            let (k, v) = item?;
            visit(k.value(), v.value())?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Redb {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(TABLE)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, true)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let table = self.db.begin_read()?.open_table(TABLE)?;
        Ok(Box::new(RedbReader { table }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        self.write(&pairs, false)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        for _ in 0..MAX_COMPACTION_PASSES {
            if !self.db.compact()? {
                break;
            }
        }
        Ok(true)
    }
}
