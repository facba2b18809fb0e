//! The block cache (decrypted, decompressed blocks, bounded in bytes) and the table
//! cache (open readers by file number).
//!
//! The block cache is split into shards, each a `Mutex` around a CLOCK ring: a hit
//! only sets a reference bit, and eviction sweeps the ring giving referenced blocks
//! a second chance — LRU-like behaviour with O(1) work per operation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;
use parking_lot::{Mutex, RwLock};

use super::block::Block;
use super::reader::TableReader;
use crate::error::{Error, Result};

/// Most shards a cache is split into.
const MAX_SHARDS: usize = 16;
/// Smallest shard worth splitting off: a shard must hold many blocks, or blocks
/// larger than a shard's share would never be cached at all.
const MIN_SHARD_BYTES: usize = 1 << 20;

type CacheKey = (u64, u64);

/// Hashes the integers making up a cache key. Keys are file numbers and block
/// offsets chosen by the store, not by a caller, so flooding one bucket on purpose
/// is not a concern and SipHash's defence against it is not worth its cost.
#[derive(Default, Clone, Copy)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits down: the table indexes by the low ones.
        let h = self.0;
        h ^ (h >> 29) ^ (h >> 47)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// A cached block as the map holds it: everything a hit reads or writes sits
/// in the map's bucket next to the key, so a hit touches the bucket and the
/// block, not a third line elsewhere.
struct Cached {
    block: Block,
    /// The block's place in the CLOCK ring.
    slot: u32,
    /// Set by every hit, cleared by the sweep.
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    map: IntMap<CacheKey, Cached>,
    /// The CLOCK ring: the key held in each slot, `None` for a free slot.
    ring: Vec<Option<CacheKey>>,
    free: Vec<u32>,
    hand: usize,
    used: usize,
    hits: u64,
    misses: u64,
}

impl Shard {
    fn get(&mut self, key: CacheKey) -> Option<Block> {
        match self.map.get_mut(&key) {
            Some(c) => {
                self.hits += 1;
                c.referenced = true;
                c.block.touch();
                Some(c.block.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn evict_one(&mut self) -> bool {
        // Two sweeps clear every reference bit, so one of them finds a victim.
        for _ in 0..2 * self.ring.len() {
            if self.hand >= self.ring.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let Some(Some(key)) = self.ring.get(i).copied() else { continue };
            let Some(c) = self.map.get_mut(&key) else { continue };
            if c.referenced {
                c.referenced = false;
                continue;
            }
            if let Some(c) = self.map.remove(&key) {
                self.used -= c.block.charge();
                self.free.push(c.slot);
            }
            if let Some(s) = self.ring.get_mut(i) {
                *s = None;
            }
            return true;
        }
        false
    }

    fn insert(&mut self, key: CacheKey, block: Block, capacity: usize) -> usize {
        let charge = block.charge();
        if charge > capacity || self.map.contains_key(&key) {
            return self.used;
        }
        while self.used + charge > capacity {
            if !self.evict_one() {
                return self.used;
            }
        }
        let slot = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.ring.get_mut(i as usize) {
                    *s = Some(key);
                }
                i
            }
            None => {
                self.ring.push(Some(key));
                (self.ring.len() - 1) as u32
            }
        };
        self.map.insert(key, Cached { block, slot, referenced: false });
        self.used += charge;
        self.used
    }
}

/// A cache of decrypted, decompressed blocks, bounded in bytes.
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    used: Vec<AtomicUsize>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache").field("used_bytes", &self.used_bytes()).field("hit_stats", &self.hit_stats()).finish()
    }
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of blocks.
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        // A power of two, so picking a shard is a mask, not a division.
        let fit = (capacity_bytes / MIN_SHARD_BYTES).clamp(1, MAX_SHARDS);
        let shards = 1 << fit.ilog2();
        Arc::new(BlockCache {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity: capacity_bytes / shards,
            used: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// Bytes currently held.
    pub fn used_bytes(&self) -> usize {
        self.used.iter().map(|u| u.load(Ordering::Relaxed)).sum()
    }

    /// (hits, misses) since creation.
    pub fn hit_stats(&self) -> (u64, u64) {
        // Counted under the shard locks a lookup takes anyway: a shared counter
        // would be one more contended cache line per read across threads.
        self.shards.iter().fold((0, 0), |(h, m), s| {
            let s = s.lock();
            (h + s.hits, m + s.misses)
        })
    }

    fn shard_of(&self, key: CacheKey) -> usize {
        let h = (key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1).wrapping_mul(0xff51_afd7_ed55_8ccd);
        (h >> 32) as usize & (self.shards.len() - 1)
    }

    pub(crate) fn get(&self, file_id: u64, offset: u64) -> Option<Block> {
        let key = (file_id, offset);
        self.shards.get(self.shard_of(key)).and_then(|s| s.lock().get(key))
    }

    pub(crate) fn insert(&self, file_id: u64, offset: u64, block: Block) {
        let key = (file_id, offset);
        let i = self.shard_of(key);
        if let (Some(shard), Some(used)) = (self.shards.get(i), self.used.get(i)) {
            let now = shard.lock().insert(key, block, self.shard_capacity);
            used.store(now, Ordering::Relaxed);
        }
    }
}

/// Open table readers by file number, opened on demand from `dir/{number:06}.sst`.
///
/// With a capacity, the cache holds at most that many readers (each owns one file
/// descriptor) and closes the least recently used one to make room; a closed
/// table is reopened (footer, index and filter read again) on its next use. A
/// reader still held elsewhere (an iterator in progress) stays open until it is
/// dropped, so the descriptors in use can briefly exceed the capacity by the
/// number of tables being read at that moment. Without a capacity, every reader
/// stays open until [`TableCache::evict`] or [`TableCache::retain`].
pub struct TableCache {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    keys: Arc<KeyManager>,
    block_cache: Option<Arc<BlockCache>>,
    capacity: Option<usize>,
    readers: RwLock<Readers>,
    /// Counts table opens; a lookup stamps its reader with the current value.
    tick: AtomicU64,
    /// Whether tables opened from now on are read through a memory mapping.
    mmap_reads: AtomicBool,
}

/// The open readers, each with the tick of its last use (an atomic, so a hit
/// needs only the read lock).
type Readers = IntMap<u64, (Arc<TableReader>, AtomicU64)>;

impl TableCache {
    /// A cache over the tables in `dir` that keeps every reader it opens.
    pub fn new(vfs: Arc<dyn Vfs>, dir: PathBuf, keys: Arc<KeyManager>, block_cache: Option<Arc<BlockCache>>) -> Arc<Self> {
        Self::with_capacity(vfs, dir, keys, block_cache, None)
    }

    /// A cache over the tables in `dir` holding at most `capacity` readers
    /// (at least one), or every reader when `capacity` is `None`.
    pub fn with_capacity(
        vfs: Arc<dyn Vfs>,
        dir: PathBuf,
        keys: Arc<KeyManager>,
        block_cache: Option<Arc<BlockCache>>,
        capacity: Option<usize>,
    ) -> Arc<Self> {
        let capacity = capacity.map(|c| c.max(1));
        Arc::new(TableCache {
            vfs,
            dir,
            keys,
            block_cache,
            capacity,
            readers: RwLock::new(Readers::default()),
            tick: AtomicU64::new(0),
            mmap_reads: AtomicBool::new(false),
        })
    }

    /// Reads the tables opened from now on through a read-only memory mapping
    /// ([`crypto::vfs::Vfs::open_mapped`]) when `on` and the file system maps
    /// files, through `pread` otherwise. Blocks are authenticated, decrypted and
    /// cached exactly the same either way; readers already open keep their way.
    pub fn set_mmap_reads(&self, on: bool) {
        self.mmap_reads.store(on, Ordering::Relaxed);
    }

    /// Whether tables opened from now on are read through a memory mapping
    /// (where the file system maps files).
    pub fn mmap_reads(&self) -> bool {
        self.mmap_reads.load(Ordering::Relaxed)
    }

    /// The reader of table `file_number`, opening it if needed.
    pub fn get(&self, file_number: u64) -> Result<Arc<TableReader>> {
        if let Some((r, used)) = self.readers.read().get(&file_number) {
            if self.capacity.is_some() {
                // The counter moves only when a table is opened, so a hit writes
                // nothing shared: it marks its reader as used since the last open,
                // and the reader unused through the most opens goes first.
                let now = self.tick.load(Ordering::Relaxed);
                if used.load(Ordering::Relaxed) != now {
                    used.store(now, Ordering::Relaxed);
                }
            }
            return Ok(r.clone());
        }
        // Opened outside the lock: two racing opens of one table are harmless, and a
        // slow open must not hold up lookups of tables already open.
        let name = crypto::names::table_file(file_number);
        let path = Self::table_path(&self.dir, file_number);
        let io = |source| Error::Io { file: name.clone(), source };
        let mapped = if self.mmap_reads() { self.vfs.open_mapped(&path).map_err(io)? } else { None };
        let file = match mapped {
            Some(file) => file,
            None => self.vfs.open(&path).map_err(io)?,
        };
        let reader = TableReader::open(file, &self.keys, file_number, &name, self.block_cache.clone())?;
        let tick = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let mut readers = self.readers.write();
        if let Some(capacity) = self.capacity {
            while readers.len() >= capacity && !readers.contains_key(&file_number) {
                // Least recently used first; a linear pass is fine next to the file
                // open it follows, and the capacity is bounded by the descriptor limit.
                let Some(oldest) =
                    readers.iter().min_by_key(|(_, (_, used))| used.load(Ordering::Relaxed)).map(|(n, _)| *n)
                else {
                    break;
                };
                readers.remove(&oldest);
            }
        }
        let entry = readers.entry(file_number).or_insert((reader, AtomicU64::new(tick)));
        entry.1.store(tick, Ordering::Relaxed);
        Ok(entry.0.clone())
    }

    /// Forgets the reader of a deleted table.
    pub fn evict(&self, file_number: u64) {
        self.readers.write().remove(&file_number);
    }

    /// Closes every reader whose table `keep` rejects (tables no live version
    /// names any more).
    pub fn retain(&self, mut keep: impl FnMut(u64) -> bool) {
        self.readers.write().retain(|n, _| keep(*n));
    }

    /// How many readers the cache holds open.
    pub fn open_count(&self) -> usize {
        self.readers.read().len()
    }

    /// The most readers the cache holds, if bounded.
    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// The path of table `file_number`.
    pub fn table_path(dir: &Path, file_number: u64) -> PathBuf {
        dir.join(crypto::names::table_file(file_number))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::block::BlockBuilder;
    use super::*;

    fn block(bytes: usize) -> Block {
        let mut b = BlockBuilder::new(16);
        b.add(b"key-----", &vec![7u8; bytes]);
        Block::new(b.finish().to_vec()).unwrap()
    }

    #[test]
    fn bounded_and_second_chance_for_hot_blocks() {
        let cache = BlockCache::new(64 << 10);
        let charge = block(4000).charge();
        let fit = (64 << 10) / charge;
        cache.insert(1, 0, block(4000));
        for offset in 1..200u64 {
            // Touch block 0 before every insert: it is always referenced, so the sweep
            // passes over it and evicts colder blocks.
            assert!(cache.get(1, 0).is_some(), "hot block evicted after {offset} inserts");
            cache.insert(1, offset * 4096, block(4000));
            assert!(cache.used_bytes() <= 64 << 10);
        }
        let cached = (1..200u64).filter(|o| cache.get(1, o * 4096).is_some()).count();
        assert!(cached >= fit - 2 && cached < fit, "{cached} of {fit}");
        assert!(cache.get(2, 0).is_none(), "file ids keep blocks apart");
        let (hits, misses) = cache.hit_stats();
        assert_eq!(hits as usize, 199 + cached);
        assert_eq!(misses as usize, 199 - cached + 1);
        // A block larger than the whole cache is simply not kept.
        cache.insert(3, 0, block(100 << 10));
        assert!(cache.get(3, 0).is_none());
    }
}
