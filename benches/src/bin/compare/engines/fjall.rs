//! fjall under the comparison: one keyspace with one partition, batches and
//! single writes persisted with fdatasync before they return
//! (`PersistMode::SyncData`, the same sync synapsed-storage does), the shared
//! budget as its cache, everything else at fjall's defaults.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use crate::engine::{dir_bytes, Engine, Pairs, Reader};

/// An open keyspace and its one partition.
pub struct Fjall {
    keyspace: Keyspace,
    data: PartitionHandle,
    dir: PathBuf,
}

impl Fjall {
    /// Creates the keyspace in `dir`.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self> {
        let keyspace = Config::new(dir.join("db")).cache_size(cache_bytes as u64).open()?;
        let data = keyspace.open_partition("data", PartitionCreateOptions::default())?;
        Ok(Fjall { keyspace, data, dir: dir.to_path_buf() })
    }
}

struct FjallReader<'a> {
    data: &'a PartitionHandle,
}

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        match self.data.get(key)? {
            Some(v) => {
                out.extend_from_slice(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn range(&mut self, start: &[u8], count: usize, visit: &mut dyn FnMut(&[u8], &[u8]) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        for item in self.data.range(start..).take(count) {
            let (k, v) = item?;
            visit(&k, &v)?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for Fjall {
    fn bulk_load(&self, pairs: Pairs<'_>) -> Result<()> {
        self.txn_durable(pairs)
    }

    fn bulk_load_other(&self, pairs: Pairs<'_>) -> Result<()> {
        let w = pairs.workload;
        let keys = pairs.sorted_keys();
        self.data.ingest(keys.iter().map(|k| (&k[..], w.value_of_key(k).to_vec())))?;
        Ok(self.keyspace.persist(PersistMode::SyncData)?)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.data.insert(key, value)?;
        Ok(self.keyspace.persist(PersistMode::SyncData)?)
    }

    fn txn_durable(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = self.keyspace.batch().durability(Some(PersistMode::SyncData));
        for (k, v) in pairs.iter() {
            batch.insert(&self.data, &k[..], &v[..]);
        }
        Ok(batch.commit()?)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(FjallReader { data: &self.data }))
    }

    fn remove_bulk(&self, pairs: Pairs<'_>) -> Result<()> {
        let mut batch = self.keyspace.batch().durability(Some(PersistMode::SyncData));
        for k in pairs.keys() {
            batch.remove(&self.data, &k[..]);
        }
        Ok(batch.commit()?)
    }

    fn disk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.dir)
    }

    fn compact(&mut self) -> Result<bool> {
        self.data.rotate_memtable_and_wait()?;
        self.data.major_compact()?;
        Ok(true)
    }
}
