//! Prefix-compressed blocks with restart points (the body of data and index blocks).
//!
//! Entry: `shared varint | unshared varint | value_len varint | key[shared..] | value`;
//! every `restart_interval` entries a restart point stores its key whole (`shared = 0`)
//! and the block ends with `restart offsets u32... | restart count u32`
//! (see `index/FORMAT.md`). Decoding checks every length against the block, so
//! damaged bytes surface as errors, never as panics or reads past the end.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use crate::format::{get_varint32, put_varint32, read_u32};
use crate::key::SeekKey;

/// Accumulates entries of one block.
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    since_restart: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            since_restart: 0,
            restart_interval: restart_interval.max(1),
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry; the caller guarantees keys increase and sizes are in limits.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart == 0 || self.since_restart >= self.restart_interval {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        } else {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        };
        // Invariant: `shared` counts a common prefix of `key`, so `shared <= key.len()`.
        debug_assert!(shared <= key.len());
        let unshared = key.get(shared..).unwrap_or_default();
        put_varint32(&mut self.buf, shared as u32);
        put_varint32(&mut self.buf, unshared.len() as u32);
        put_varint32(&mut self.buf, value.len() as u32);
        self.buf.extend_from_slice(unshared);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size of the block if it were finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    pub(crate) fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Appends the restart array and returns the finished body; `reset` before reuse.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        &self.buf
    }

    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

/// A decoded (decrypted, decompressed) block body, shared: a clone is a
/// reference count. The count and the body are one allocation, so taking a
/// block from the cache and reading its first entries touches one cache line
/// fewer than a reference to a block that points to its body.
#[derive(Clone)]
pub(crate) struct Block {
    data: Arc<[u8]>,
    /// Where the restart array starts; entries live in `data[..restarts_at]`.
    restarts_at: usize,
    num_restarts: usize,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("len", &self.data.len()).field("restarts", &self.num_restarts).finish()
    }
}

/// One decoded entry's position: where the next entry starts and the value's bytes.
struct Decoded {
    next: usize,
    value: Range<usize>,
}

impl Block {
    /// Validates the restart array of `data`.
    pub(crate) fn new(data: Vec<u8>) -> Result<Self, &'static str> {
        let len = data.len();
        let count_at = len.checked_sub(4).ok_or("block shorter than its restart count")?;
        let num_restarts = read_u32(&data, count_at).ok_or("block shorter than its restart count")? as usize;
        if num_restarts == 0 {
            return Err("block without restart points");
        }
        let restarts_at = num_restarts
            .checked_mul(4)
            .and_then(|n| count_at.checked_sub(n))
            .ok_or("restart array larger than the block")?;
        let mut prev = None;
        for i in 0..num_restarts {
            let r = read_u32(&data, restarts_at + 4 * i).ok_or("restart array truncated")? as usize;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p,
            };
            if !ok || r >= restarts_at {
                return Err("restart points out of order or out of bounds");
            }
            prev = Some(r);
        }
        Ok(Block { data: data.into(), restarts_at, num_restarts })
    }

    /// Reads the block's first byte and the start of its restart array with
    /// plain loads, so that both cache misses are under way at once before a
    /// caller takes a reference (an atomic increment on the first line, which
    /// waits for every earlier load) and a seek reads the restart array.
    #[inline]
    pub(crate) fn touch(&self) {
        std::hint::black_box((self.data.first().copied(), self.data.get(self.restarts_at).copied()));
    }

    /// Memory charged to the block cache.
    pub(crate) fn charge(&self) -> usize {
        self.data.len() + std::mem::size_of::<Self>() + 64
    }

    fn restart(&self, i: usize) -> usize {
        read_u32(&self.data, self.restarts_at + 4 * i).unwrap_or(0) as usize
    }

    /// The whole key stored at restart point `i` (restart entries share nothing).
    fn restart_key(&self, i: usize) -> Result<&[u8], &'static str> {
        let mut pos = self.restart(i);
        let shared = get_varint32(&self.data, &mut pos).ok_or("bad entry header")?;
        let unshared = get_varint32(&self.data, &mut pos).ok_or("bad entry header")? as usize;
        get_varint32(&self.data, &mut pos).ok_or("bad entry header")?;
        if shared != 0 {
            return Err("restart entry shares a prefix");
        }
        let end = pos.checked_add(unshared).filter(|e| *e <= self.restarts_at).ok_or("key past end of block")?;
        self.data.get(pos..end).ok_or("key past end of block")
    }

    /// Decodes the entry at `pos`, rebuilding its key in `key` (which holds the
    /// previous key on entry).
    fn decode(&self, pos: usize, key: &mut Vec<u8>) -> Result<Decoded, &'static str> {
        let mut p = pos;
        let shared = get_varint32(&self.data, &mut p).ok_or("bad entry header")? as usize;
        let unshared = get_varint32(&self.data, &mut p).ok_or("bad entry header")? as usize;
        let value_len = get_varint32(&self.data, &mut p).ok_or("bad entry header")? as usize;
        if shared > key.len() {
            return Err("entry shares more than the previous key");
        }
        let key_end = p.checked_add(unshared).ok_or("key past end of block")?;
        let value_end = key_end.checked_add(value_len).ok_or("value past end of block")?;
        if value_end > self.restarts_at {
            return Err("entry past end of block");
        }
        key.truncate(shared);
        key.extend_from_slice(self.data.get(p..key_end).ok_or("key past end of block")?);
        Ok(Decoded { next: value_end, value: key_end..value_end })
    }

    pub(crate) fn value(&self, r: Range<usize>) -> &[u8] {
        // Invariant: `r` is a range `decode` checked against `data`.
        debug_assert!(r.end <= self.data.len() && r.start <= r.end);
        self.data.get(r).unwrap_or_default()
    }

    /// Decodes every entry (for reverse iteration and verification): the keys
    /// concatenated in `keys`, and per entry `(key range, value range)`.
    pub(crate) fn decode_all(&self, keys: &mut Vec<u8>, spans: &mut Vec<(Range<usize>, Range<usize>)>) -> Result<(), &'static str> {
        keys.clear();
        spans.clear();
        let mut key = Vec::new();
        let mut pos = 0;
        while pos < self.restarts_at {
            let d = self.decode(pos, &mut key)?;
            let start = keys.len();
            keys.extend_from_slice(&key);
            spans.push((start..keys.len(), d.value));
            pos = d.next;
        }
        Ok(())
    }
}

/// A forward cursor over one block.
pub(crate) struct BlockIter {
    block: Block,
    next_pos: usize,
    key: Vec<u8>,
    value: Range<usize>,
    valid: bool,
}

impl BlockIter {
    /// A cursor positioned before the first entry; call `seek_to_first` or `seek`.
    pub(crate) fn new(block: Block) -> Self {
        BlockIter { block, next_pos: 0, key: Vec::new(), value: 0..0, valid: false }
    }

    /// Moves the cursor to another block, keeping its key buffer; positioned
    /// before the first entry, as after `new`.
    pub(crate) fn reset(&mut self, block: Block) {
        self.block = block;
        self.next_pos = 0;
        self.key.clear();
        self.value = 0..0;
        self.valid = false;
    }

    pub(crate) fn valid(&self) -> bool {
        self.valid
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value(&self) -> &[u8] {
        self.block.value(self.value.clone())
    }

    /// Moves to the next entry (or becomes invalid at the end).
    pub(crate) fn advance(&mut self) -> Result<(), &'static str> {
        if self.next_pos >= self.block.restarts_at {
            self.valid = false;
            return Ok(());
        }
        match self.block.decode(self.next_pos, &mut self.key) {
            Ok(d) => {
                self.next_pos = d.next;
                self.value = d.value;
                self.valid = true;
                Ok(())
            }
            Err(e) => {
                self.valid = false;
                Err(e)
            }
        }
    }

    pub(crate) fn seek_to_first(&mut self) -> Result<(), &'static str> {
        self.key.clear();
        self.next_pos = 0;
        self.advance()
    }

    // Used by the fuzzing module today; the seekable iterators will use it too.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    /// Positions at the first entry whose key is >= the encoded key `target`
    /// (invalid if none).
    pub(crate) fn seek(&mut self, target: &[u8]) -> Result<(), &'static str> {
        self.seek_to(SeekKey::from_encoded(target))
    }

    /// Positions at the first entry whose key is >= `target` (invalid if none).
    pub(crate) fn seek_to(&mut self, target: SeekKey<'_>) -> Result<(), &'static str> {
        // Binary search for the last restart point whose key is < target.
        let (mut lo, mut hi) = (0usize, self.block.num_restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if target.order_of(self.block.restart_key(mid)?) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.key.clear();
        self.next_pos = self.block.restart(lo);
        loop {
            self.advance()?;
            if !self.valid || target.order_of(&self.key) != Ordering::Less {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::key::{InternalKey, ValueKind};

    fn sample(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let k = InternalKey::new(format!("key{:05}", i / 3).into_bytes(), 1000 - (i % 3) as u64, ValueKind::Put);
                (k.encode(), format!("value-{i}").into_bytes())
            })
            .collect()
    }

    fn build(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Block {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in entries {
            b.add(k, v);
        }
        Block::new(b.finish().to_vec()).unwrap()
    }

    #[test]
    fn block_round_trip_and_seek() {
        for interval in [1, 2, 16, 1000] {
            let entries = sample(500);
            let block = build(&entries, interval);
            let mut it = BlockIter::new(block.clone());
            it.seek_to_first().unwrap();
            for (k, v) in &entries {
                assert!(it.valid());
                assert_eq!((it.key(), it.value()), (k.as_slice(), v.as_slice()));
                it.advance().unwrap();
            }
            assert!(!it.valid());
            for (i, (k, v)) in entries.iter().enumerate() {
                it.seek(k).unwrap();
                assert_eq!((it.key(), it.value()), (k.as_slice(), v.as_slice()), "seek {i}");
            }
            // A target between entries lands on the next one; past the end, invalid.
            it.seek(&InternalKey::new(b"key00010".to_vec(), 5000, ValueKind::Put).encode()).unwrap();
            assert_eq!(it.key(), entries[30].0.as_slice());
            it.seek(&InternalKey::new(b"zzz".to_vec(), 1, ValueKind::Put).encode()).unwrap();
            assert!(!it.valid());
            let (mut keys, mut spans) = (Vec::new(), Vec::new());
            block.decode_all(&mut keys, &mut spans).unwrap();
            assert_eq!(spans.len(), entries.len());
            for ((kr, vr), (k, v)) in spans.iter().zip(&entries) {
                assert_eq!(&keys[kr.clone()], k.as_slice());
                assert_eq!(block.value(vr.clone()), v.as_slice());
            }
        }
    }

    /// The worked example of `index/FORMAT.md`, byte for byte.
    #[test]
    fn worked_example_of_format_doc() {
        let mut b = BlockBuilder::new(2);
        b.add(&InternalKey::new(b"apple".to_vec(), 3, ValueKind::Put).encode(), b"red");
        b.add(&InternalKey::new(b"apple".to_vec(), 1, ValueKind::Delete).encode(), b"");
        b.add(&InternalKey::new(b"apricot".to_vec(), 2, ValueKind::Put).encode(), b"sweet");
        let hex: String = b.finish().iter().map(|x| format!("{x:02x}")).collect();
        let expected = concat!(
            "000d03", "6170706c65", "0103000000000000", "726564", // apple@3 Put -> red
            "050800", "0001000000000000",                         // apple@1 Delete, shares "apple"
            "000f05", "61707269636f74", "0102000000000000", "7377656574", // apricot@2 Put -> sweet (restart)
            "00000000", "1e000000", "02000000",                   // restarts 0 and 30, count 2
        );
        assert_eq!(hex, expected);
    }

    #[test]
    fn damaged_blocks_are_refused_without_panic() {
        let entries = sample(60);
        let mut b = BlockBuilder::new(4);
        for (k, v) in &entries {
            b.add(k, v);
        }
        let good = b.finish().to_vec();
        assert!(Block::new(Vec::new()).is_err());
        assert!(Block::new(vec![0, 0, 0, 0]).is_err());
        assert!(Block::new(vec![1, 0, 0, 0]).is_err());
        // Every single-byte change and every truncation either fails cleanly or decodes
        // into something; what matters here is that nothing panics or reads out of bounds.
        for i in 0..good.len() {
            for delta in [1u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = bad[i].wrapping_add(delta);
                if let Ok(block) = Block::new(bad) {
                    let mut it = BlockIter::new(block);
                    if it.seek_to_first().is_ok() {
                        while it.valid() && it.advance().is_ok() {}
                    }
                    let _ = it.seek(&entries[30].0);
                }
            }
        }
        for cut in 0..good.len() {
            if let Ok(block) = Block::new(good[..cut].to_vec()) {
                let mut it = BlockIter::new(block);
                let _ = it.seek_to_first();
            }
        }
    }
}
