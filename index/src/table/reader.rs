//! Reads one SSTable: `open` authenticates footer, meta, index, filter and properties
//! and keeps the index and filter decoded in memory; point lookups and iterators read
//! data blocks through the block cache. Every byte read from the file is either
//! checked by an AEAD tag (blocks, via the crypto layer) or by the footer crc, so a
//! damaged file yields `Corruption` naming it, never wrong data.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::ops::{Bound, Range};
use std::sync::Arc;

use crypto::vfs::RandomAccessFile;
use crypto::{BlockKind, FileCipher, FileKind, KeyManager, FILE_HEADER_LEN};

use super::block::{Block, BlockIter};
use super::bloom::BloomFilter;
use super::cache::BlockCache;
use super::properties::Properties;
use super::user_properties::UserProperties;
use super::TableInfo;
use crate::error::{Error, Result};
use crate::format::{
    read_u32, BlockHandle, Footer, FooterError, BLOCK_OVERHEAD, COMPRESSION_NONE, COMPRESSION_ZSTD,
    FOOTER_LEN, HANDLE_LEN, HEADER_LEN, MAX_BLOCK_BYTES, META_LEN,
};
use crate::iter::{Direction, InternalIterator, KeyRange};
use crate::key::{compare_encoded, user_key_prefix, EntryRef, InternalKey, SeekKey, SeqNo, ValueKind, MAX_SEQNO};

/// The largest trailer: seeking to `user_key || MAX_TRAILER` lands before every version.
const MAX_TRAILER: u64 = u64::MAX;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The decoded index: per data block, its last internal key and its handle.
///
/// Beside the keys it keeps the first 8 bytes of each key's user key as one
/// big-endian `u64` in a contiguous array, so a binary search compares
/// integers from a few cache lines and reads a whole key only where the
/// prefixes are equal: a lookup in a large table touched two scattered cache
/// lines (key end, key bytes) at every step.
pub(crate) struct IndexBlock {
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    prefixes: Vec<u64>,
    pub(crate) handles: Vec<BlockHandle>,
}

impl IndexBlock {
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.key_ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.key_ends.get(i).copied().unwrap_or(start);
        // Invariant: decoding checked that `key_ends` rises and stays within `keys`.
        debug_assert!(start <= end && end <= self.keys.len());
        self.keys.get(start..end).unwrap_or_default()
    }

    fn push(&mut self, key: &[u8], handle: BlockHandle) {
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len());
        self.prefixes.push(user_key_prefix(SeekKey::from_encoded(key).user_key));
        self.handles.push(handle);
    }

    // Used by the fuzzing module today; the seekable iterators will use it too.
    #[cfg_attr(not(any(test, feature = "fuzzing")), allow(dead_code))]
    /// The first block whose last key is >= the encoded key `target`.
    pub(crate) fn find(&self, target: &[u8]) -> Option<usize> {
        self.find_key(SeekKey::from_encoded(target))
    }

    /// The first block whose last key is >= `target`.
    pub(crate) fn find_key(&self, target: SeekKey<'_>) -> Option<usize> {
        let target_prefix = user_key_prefix(target.user_key);
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = match self.prefixes.get(mid).map(|p| p.cmp(&target_prefix)) {
                Some(Ordering::Less) => true,
                Some(Ordering::Greater) => false,
                _ => target.order_of(self.key(mid)) == Ordering::Less,
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo < self.len()).then_some(lo)
    }
}

/// Reads one SSTable.
pub struct TableReader {
    file: Arc<dyn RandomAccessFile>,
    cipher: FileCipher,
    name: String,
    file_id: u64,
    cache: Option<Arc<BlockCache>>,
    index: IndexBlock,
    filter: Option<BloomFilter>,
    info: TableInfo,
    user_properties: UserProperties,
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader").field("file", &self.name).field("info", &self.info).finish_non_exhaustive()
    }
}

/// Reads `handle`'s bytes, authenticates them, and undoes the compression.
pub(crate) fn read_block(file: &dyn RandomAccessFile, cipher: &FileCipher, name: &str, handle: BlockHandle, kind: BlockKind) -> Result<Vec<u8>> {
    let corrupt = |reason: String| Error::corruption(name, handle.offset, reason);
    let mut buf = vec![0u8; handle.size as usize];
    file.read_exact_at(&mut buf, handle.offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt(format!("{kind:?} block extends past the end of the file"))
        } else {
            Error::Io { file: name.to_string(), source: e }
        }
    })?;
    cipher.open_in_place(handle.offset, kind, &mut buf)?;
    match buf.first().copied() {
        Some(COMPRESSION_NONE) => {
            buf.remove(0);
            Ok(buf)
        }
        Some(COMPRESSION_ZSTD) => {
            let raw_len = read_u32(&buf, 1).ok_or_else(|| corrupt("compressed block without its length".into()))? as usize;
            if raw_len > MAX_BLOCK_BYTES {
                return Err(corrupt(format!("compressed block claims {raw_len} bytes")));
            }
            let frame = buf.get(5..).unwrap_or_default();
            let mut out = Vec::with_capacity(raw_len);
            let n = DECOMPRESSOR.with(|d| -> std::io::Result<usize> {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                match d.as_mut() {
                    Some(d) => d.decompress_to_buffer(frame, &mut out),
                    None => Err(std::io::Error::other("no decompressor")),
                }
            });
            match n {
                Ok(n) if n == raw_len => Ok(out),
                Ok(n) => Err(corrupt(format!("block decompressed to {n} bytes, expected {raw_len}"))),
                Err(e) => Err(corrupt(format!("zstd: {e}"))),
            }
        }
        Some(t) => Err(corrupt(format!("unknown compression tag {t}"))),
        None => Err(corrupt("empty block".into())),
    }
}

/// Everything `open` (and `verify`) reads besides the data blocks.
struct Layout {
    filter: Option<BloomFilter>,
    index: IndexBlock,
    props: Properties,
}

/// Where the parts of a table after its data blocks are, from the footer and
/// the meta block, each handle checked to sit where the layout says.
pub(crate) struct Handles {
    pub(crate) filter: BlockHandle,
    pub(crate) index: BlockHandle,
    pub(crate) props: BlockHandle,
    /// End of the data blocks.
    pub(crate) data_end: u64,
}

pub(crate) fn read_handles(file: &dyn RandomAccessFile, cipher: &FileCipher, name: &str) -> Result<Handles> {
    let corrupt = |offset: u64, reason: &str| Error::corruption(name, offset, reason);
    let len = file.len();
    let min_len = HEADER_LEN + 4 * BLOCK_OVERHEAD as u64 + META_LEN as u64 + FOOTER_LEN as u64;
    if len < min_len {
        return Err(corrupt(0, "file too short to be a table"));
    }
    let footer_at = len - FOOTER_LEN as u64;
    let mut fb = [0u8; FOOTER_LEN];
    file.read_exact_at(&mut fb, footer_at).map_err(|source| Error::Io { file: name.to_string(), source })?;
    let footer = Footer::decode(&fb).map_err(|e| {
        let reason = match e {
            FooterError::Short => "footer truncated".to_string(),
            FooterError::Magic => "bad footer magic: not a table, or truncated".to_string(),
            FooterError::Crc => "footer checksum mismatch".to_string(),
            FooterError::Reserved => "reserved footer bytes are not zero".to_string(),
            FooterError::NewerVersion(v) => format!("table format version {v} is newer than this build reads"),
            FooterError::BadVersion(v) => format!("unknown table format version {v}"),
        };
        Error::corruption(name, footer_at, reason)
    })?;
    // The meta block sits right before the footer; nothing may hide between them.
    if !footer.meta.within(HEADER_LEN, footer_at) || footer.meta.end() != footer_at {
        return Err(corrupt(footer_at, "meta block handle out of bounds"));
    }
    let meta = read_block(file, cipher, name, footer.meta, BlockKind::SstMeta)?;
    if meta.len() != META_LEN {
        return Err(corrupt(footer.meta.offset, "meta block has the wrong size"));
    }
    let handle = |i: usize| BlockHandle::decode(meta.get(i * HANDLE_LEN..).unwrap_or_default());
    let (Some(filter_h), Some(index_h), Some(props_h)) = (handle(0), handle(1), handle(2)) else {
        return Err(corrupt(footer.meta.offset, "meta block truncated"));
    };
    // Layout: data | filter | index | properties | meta; each part ends where the next starts.
    if !props_h.within(HEADER_LEN, footer.meta.offset) || props_h.end() != footer.meta.offset {
        return Err(corrupt(footer.meta.offset, "properties handle out of bounds"));
    }
    if !index_h.within(HEADER_LEN, props_h.offset) || index_h.end() != props_h.offset {
        return Err(corrupt(footer.meta.offset, "index handle out of bounds"));
    }
    let data_end = if filter_h == BlockHandle::default() {
        index_h.offset
    } else {
        if !filter_h.within(HEADER_LEN, index_h.offset) || filter_h.end() != index_h.offset {
            return Err(corrupt(footer.meta.offset, "filter handle out of bounds"));
        }
        filter_h.offset
    };
    Ok(Handles { filter: filter_h, index: index_h, props: props_h, data_end })
}

fn load_layout(file: &dyn RandomAccessFile, cipher: &FileCipher, name: &str, file_id: u64) -> Result<Layout> {
    let corrupt = |offset: u64, reason: &str| Error::corruption(name, offset, reason);
    let Handles { filter: filter_h, index: index_h, props: props_h, data_end } = read_handles(file, cipher, name)?;
    let props_body = read_block(file, cipher, name, props_h, BlockKind::SstProperties)?;
    let props = Properties::decode(&props_body).map_err(|r| corrupt(props_h.offset, r))?;
    if props.file_id != file_id {
        return Err(corrupt(props_h.offset, &format!("table belongs to file {}, expected {file_id}", props.file_id)));
    }

    let index_body = read_block(file, cipher, name, index_h, BlockKind::SstIndex)?;
    let index = decode_index(index_body, data_end).map_err(|r| corrupt(index_h.offset, r))?;
    if index.len() as u64 != props.data_blocks || props.entries < props.data_blocks {
        return Err(corrupt(props_h.offset, "block count disagrees with the index"));
    }
    if compare_encoded(index.key(index.len().saturating_sub(1)), &props.largest.encode()) != Ordering::Equal {
        return Err(corrupt(props_h.offset, "largest key disagrees with the index"));
    }

    let filter = if filter_h == BlockHandle::default() {
        None
    } else {
        let body = read_block(file, cipher, name, filter_h, BlockKind::SstFilter)?;
        Some(BloomFilter::decode(body).ok_or_else(|| corrupt(filter_h.offset, "malformed bloom filter"))?)
    };
    Ok(Layout { filter, index, props })
}

/// Decodes the index block and checks its keys increase and its handles tile the
/// data region `[HEADER_LEN, data_end)` exactly.
pub(crate) fn decode_index(body: Vec<u8>, data_end: u64) -> Result<IndexBlock, &'static str> {
    let block = Block::new(body)?;
    let mut it = BlockIter::new(block);
    let mut index = IndexBlock { keys: Vec::new(), key_ends: Vec::new(), prefixes: Vec::new(), handles: Vec::new() };
    let mut expected_offset = HEADER_LEN;
    let mut prev_end = 0;
    it.seek_to_first()?;
    while it.valid() {
        if InternalKey::decode(it.key()).is_none() {
            return Err("malformed key in index");
        }
        if !index.handles.is_empty() {
            let prev = index.keys.get(prev_end..).unwrap_or_default();
            if compare_encoded(prev, it.key()) != Ordering::Less {
                return Err("index keys out of order");
            }
        }
        let h = BlockHandle::decode(it.value()).filter(|_| it.value().len() == HANDLE_LEN).ok_or("malformed handle in index")?;
        if h.offset != expected_offset || !h.within(HEADER_LEN, data_end) {
            return Err("data block handle out of place");
        }
        expected_offset = h.end();
        prev_end = index.keys.len();
        index.push(it.key(), h);
        it.advance()?;
    }
    if index.handles.is_empty() || expected_offset != data_end {
        return Err("index does not cover the data blocks");
    }
    Ok(index)
}

/// Decodes every entry of a data block into `keys`/`spans` and checks its keys:
/// each well formed, strictly increasing from `prev` (the previous block's last
/// key), the last one equal to `last` (its index entry). Returns the decoded keys.
pub(crate) fn checked_block_keys(
    block: &Block,
    keys: &mut Vec<u8>,
    spans: &mut Vec<(Range<usize>, Range<usize>)>,
    prev: Option<&[u8]>,
    last: &[u8],
) -> Result<Vec<InternalKey>, &'static str> {
    block.decode_all(keys, spans)?;
    let mut decoded = Vec::with_capacity(spans.len());
    let mut before = prev;
    for (kr, _) in spans.iter() {
        let k = keys.get(kr.clone()).ok_or("malformed key")?;
        decoded.push(InternalKey::decode(k).ok_or("malformed key")?);
        if before.is_some_and(|b| compare_encoded(b, k) != Ordering::Less) {
            return Err("keys out of order");
        }
        before = Some(k);
    }
    match before {
        Some(k) if !spans.is_empty() && k == last => Ok(decoded),
        _ => Err("block's last key disagrees with the index"),
    }
}

/// Reads the file header of table `file_id` and unwraps its file key.
pub(crate) fn open_cipher(file: &dyn RandomAccessFile, keys: &KeyManager, file_id: u64, name: &str) -> Result<FileCipher> {
    let mut header = [0u8; FILE_HEADER_LEN];
    if file.len() < HEADER_LEN {
        return Err(Error::corruption(name, 0, "file shorter than its header"));
    }
    file.read_exact_at(&mut header, 0).map_err(|source| Error::Io { file: name.to_string(), source })?;
    Ok(keys.open_file(&header, FileKind::Sst, file_id, name)?)
}

impl TableReader {
    /// Opens a table: reads and authenticates header, footer, index, filter and
    /// properties. `name` names the file in errors.
    pub fn open(file: Arc<dyn RandomAccessFile>, keys: &KeyManager, file_id: u64, name: &str, cache: Option<Arc<BlockCache>>) -> Result<Arc<Self>> {
        let cipher = open_cipher(file.as_ref(), keys, file_id, name)?;
        let mut layout = load_layout(file.as_ref(), &cipher, name, file_id)?;
        let user_properties = std::mem::take(&mut layout.props.user);
        let p = &layout.props;
        let info = TableInfo {
            file_size: file.len(),
            entries: p.entries,
            smallest: p.smallest.clone(),
            largest: p.largest.clone(),
            min_seqno: p.min_seqno,
            max_seqno: p.max_seqno,
        };
        Ok(Arc::new(TableReader {
            file,
            cipher,
            name: name.to_string(),
            file_id,
            cache,
            index: layout.index,
            filter: layout.filter,
            info,
            user_properties,
        }))
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corruption(&self.name, offset, reason)
    }

    /// Data block `i`, from the cache or from disk.
    fn data_block(&self, i: usize) -> Result<(Block, u64)> {
        let handle = *self.index.handles.get(i).ok_or_else(|| self.corrupt(0, "block number out of range"))?;
        if let Some(b) = self.cache.as_ref().and_then(|c| c.get(self.file_id, handle.offset)) {
            return Ok((b, handle.offset));
        }
        let block = self.read_data_block(handle)?;
        if let Some(c) = &self.cache {
            c.insert(self.file_id, handle.offset, block.clone());
        }
        Ok((block, handle.offset))
    }

    fn read_data_block(&self, handle: BlockHandle) -> Result<Block> {
        let body = read_block(self.file.as_ref(), &self.cipher, &self.name, handle, BlockKind::SstData)?;
        Block::new(body).map_err(|r| self.corrupt(handle.offset, r))
    }

    /// The newest version of `user_key` with seqno <= `snapshot` in this table.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo) -> Result<Option<(SeqNo, ValueKind, Vec<u8>)>> {
        if self.filter.as_ref().is_some_and(|f| !f.may_contain(user_key)) {
            return Ok(None);
        }
        let target = SeekKey { user_key, trailer: (snapshot.min(MAX_SEQNO) << 8) | 0xff };
        let Some(i) = self.index.find_key(target) else { return Ok(None) };
        let (block, offset) = self.data_block(i)?;
        let mut it = BlockIter::new(block);
        it.seek_to(target).map_err(|r| self.corrupt(offset, r))?;
        if !it.valid() {
            return Err(self.corrupt(offset, "block ends before the key its index entry promises"));
        }
        let key = it.key();
        let split = key.len().checked_sub(8).ok_or_else(|| self.corrupt(offset, "key shorter than its trailer"))?;
        if key.get(..split) != Some(user_key) {
            return Ok(None);
        }
        let trailer = crate::format::read_u64(key, split).unwrap_or(0);
        let kind = ValueKind::from_u8((trailer & 0xff) as u8).ok_or_else(|| self.corrupt(offset, "unknown value kind"))?;
        Ok(Some((trailer >> 8, kind, it.value().to_vec())))
    }

    /// An iterator over every version in `range`, in `direction`.
    pub fn iter(self: &Arc<Self>, range: KeyRange, direction: Direction) -> Box<dyn InternalIterator> {
        Box::new(TableIter {
            table: self.clone(),
            range,
            direction,
            block: None,
            past_start: false,
            block_idx: 0,
            started: false,
            done: false,
            seqno: 0,
            kind: ValueKind::Delete,
            rev_keys: Vec::new(),
            rev_spans: Vec::new(),
            rev_pos: 0,
            rev_block: None,
        })
    }

    /// Reads and authenticates every block; returns the number of entries.
    pub fn verify(&self) -> Result<u64> {
        let layout = load_layout(self.file.as_ref(), &self.cipher, &self.name, self.file_id)?;
        let (mut keys, mut spans) = (Vec::new(), Vec::new());
        let mut prev: Option<Vec<u8>> = None;
        let mut entries = 0u64;
        for (i, handle) in layout.index.handles.iter().enumerate() {
            let block = self.read_data_block(*handle)?;
            let decoded = checked_block_keys(&block, &mut keys, &mut spans, prev.as_deref(), layout.index.key(i))
                .map_err(|r| self.corrupt(handle.offset, r))?;
            for ik in &decoded {
                if ik.seqno < layout.props.min_seqno || ik.seqno > layout.props.max_seqno {
                    return Err(self.corrupt(handle.offset, "seqno outside the table's range"));
                }
                if entries == 0 && *ik != layout.props.smallest {
                    return Err(self.corrupt(handle.offset, "first key disagrees with the properties"));
                }
                entries += 1;
            }
            prev = Some(layout.index.key(i).to_vec());
        }
        if entries != layout.props.entries {
            return Err(self.corrupt(0, format!("{entries} entries found, properties say {}", layout.props.entries)));
        }
        Ok(entries)
    }

    /// The table's info (from its properties block).
    pub fn info(&self) -> &TableInfo {
        &self.info
    }

    /// The user properties its collector wrote (empty for a table written
    /// without a collector, or before user properties existed).
    pub fn user_properties(&self) -> &UserProperties {
        &self.user_properties
    }

    /// The table's file name, as used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the bloom filter admits `user_key` (true when there is no filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        match &self.filter {
            Some(f) => f.may_contain(user_key),
            None => true,
        }
    }

    /// At most `max` user keys spread evenly over the data blocks (from the block
    /// index, no data read), ascending, each with the stored bytes of the data
    /// blocks after the previous key up to its own block; the last is the table's
    /// largest user key. They say where to cut this table's key range into pieces
    /// of similar size.
    pub fn key_anchors(&self, max: usize) -> Vec<(Vec<u8>, u64)> {
        let blocks = self.index.len();
        let step = blocks.div_ceil(max.max(1)).max(1);
        let mut anchors: Vec<(Vec<u8>, u64)> = Vec::with_capacity(blocks.div_ceil(step));
        let mut bytes = 0u64;
        for (i, handle) in self.index.handles.iter().enumerate() {
            bytes += u64::from(handle.size);
            if (i + 1) % step == 0 || i + 1 == blocks {
                let key = self.index.key(i);
                let user_key = key.get(..key.len().saturating_sub(8)).unwrap_or_default();
                // A key whose versions fill more than one block ends several blocks.
                match anchors.last_mut() {
                    Some((last, last_bytes)) if last.as_slice() == user_key => *last_bytes += bytes,
                    _ => anchors.push((user_key.to_vec(), bytes)),
                }
                bytes = 0;
            }
        }
        anchors
    }
}

/// A lazy iterator over one table, reading blocks as it goes. It lends out the
/// entry it stands on: the key from its block cursor's buffer (reused from entry
/// to entry and block to block), the value straight from the cached block.
struct TableIter {
    table: Arc<TableReader>,
    range: KeyRange,
    direction: Direction,
    /// Forward: cursor in the current block, with the block's offset (for errors).
    block: Option<(BlockIter, u64)>,
    /// Forward: an entry at or after the range's start has been reached.
    past_start: bool,
    block_idx: usize,
    started: bool,
    done: bool,
    /// The current entry's seqno and kind, checked when the iterator moved to it.
    seqno: SeqNo,
    kind: ValueKind,
    /// Reverse: the current block decoded whole, walked from the back; the
    /// current entry is `rev_spans[rev_pos]`.
    rev_keys: Vec<u8>,
    rev_spans: Vec<(Range<usize>, Range<usize>)>,
    rev_pos: usize,
    rev_block: Option<(Block, u64)>,
}

fn before_start(range: &KeyRange, user_key: &[u8]) -> bool {
    match &range.start {
        Bound::Included(s) => user_key < s.as_slice(),
        Bound::Excluded(s) => user_key <= s.as_slice(),
        Bound::Unbounded => false,
    }
}

fn after_end(range: &KeyRange, user_key: &[u8]) -> bool {
    match &range.end {
        Bound::Included(e) => user_key > e.as_slice(),
        Bound::Excluded(e) => user_key >= e.as_slice(),
        Bound::Unbounded => false,
    }
}

/// The user key of an encoded internal key (empty if it is malformed).
fn user_key_of(key: &[u8]) -> &[u8] {
    key.get(..key.len().saturating_sub(8)).unwrap_or_default()
}

/// The seqno and kind in an encoded key's trailer; an error naming the block if
/// the key is malformed.
fn checked_trailer(table: &TableReader, key: &[u8], offset: u64) -> Result<(SeqNo, ValueKind)> {
    let trailer = key.len().checked_sub(8).and_then(|split| crate::format::read_u64(key, split));
    let kind = trailer.and_then(|t| ValueKind::from_u8((t & 0xff) as u8));
    match (trailer, kind) {
        (Some(t), Some(kind)) => Ok((t >> 8, kind)),
        _ => Err(table.corrupt(offset, "malformed key")),
    }
}

impl TableIter {
    /// Moves the block cursor in `slot` to block `idx` of `table`, at `lower`
    /// (or the block's first entry); the cursor keeps its key buffer.
    fn enter_block(table: &TableReader, slot: &mut Option<(BlockIter, u64)>, idx: usize, lower: Option<SeekKey<'_>>) -> Result<()> {
        let (block, offset) = table.data_block(idx)?;
        let it = match slot.take() {
            Some((mut it, _)) => {
                it.reset(block);
                it
            }
            None => BlockIter::new(block),
        };
        let (it, _) = slot.insert((it, offset));
        match lower {
            Some(l) => it.seek_to(l),
            None => it.seek_to_first(),
        }
        .map_err(|r| table.corrupt(offset, r))
    }

    fn advance_forward(&mut self) -> Result<bool> {
        if !self.started {
            self.started = true;
            let lower = match &self.range.start {
                Bound::Included(s) => Some(SeekKey { user_key: s, trailer: MAX_TRAILER }),
                Bound::Excluded(s) => Some(SeekKey { user_key: s, trailer: 0 }),
                Bound::Unbounded => None,
            };
            let idx = match lower {
                Some(l) => self.table.index.find_key(l),
                None => Some(0),
            };
            let Some(idx) = idx else { return Ok(false) };
            self.block_idx = idx;
            Self::enter_block(&self.table, &mut self.block, idx, lower)?;
        } else if let Some((it, offset)) = self.block.as_mut() {
            let offset = *offset;
            it.advance().map_err(|r| self.table.corrupt(offset, r))?;
        }
        loop {
            let Some((it, offset)) = self.block.as_mut() else { return Ok(false) };
            let offset = *offset;
            if !it.valid() {
                if self.block_idx + 1 >= self.table.index.len() {
                    self.block = None;
                    return Ok(false);
                }
                self.block_idx += 1;
                Self::enter_block(&self.table, &mut self.block, self.block_idx, None)?;
                continue;
            }
            let user_key = user_key_of(it.key());
            if after_end(&self.range, user_key) {
                self.block = None;
                return Ok(false);
            }
            // Keys only grow: once one is past the start, all are.
            if !self.past_start {
                if before_start(&self.range, user_key) {
                    it.advance().map_err(|r| self.table.corrupt(offset, r))?;
                    continue;
                }
                self.past_start = true;
            }
            (self.seqno, self.kind) = checked_trailer(&self.table, it.key(), offset)?;
            return Ok(true);
        }
    }

    fn load_reverse_block(&mut self, idx: usize) -> Result<()> {
        let (block, offset) = self.table.data_block(idx)?;
        block.decode_all(&mut self.rev_keys, &mut self.rev_spans).map_err(|r| self.table.corrupt(offset, r))?;
        self.rev_pos = self.rev_spans.len();
        self.rev_block = Some((block, offset));
        self.block_idx = idx;
        Ok(())
    }

    fn advance_reverse(&mut self) -> Result<bool> {
        if !self.started {
            self.started = true;
            let upper = match &self.range.end {
                Bound::Included(e) => Some(SeekKey { user_key: e, trailer: 0 }),
                Bound::Excluded(e) => Some(SeekKey { user_key: e, trailer: MAX_TRAILER }),
                Bound::Unbounded => None,
            };
            let last = self.table.index.len().saturating_sub(1);
            let idx = upper.and_then(|u| self.table.index.find_key(u)).unwrap_or(last);
            self.load_reverse_block(idx)?;
        }
        loop {
            if self.rev_pos == 0 {
                if self.block_idx == 0 || self.rev_block.is_none() {
                    self.rev_block = None;
                    return Ok(false);
                }
                self.load_reverse_block(self.block_idx - 1)?;
                continue;
            }
            self.rev_pos -= 1;
            let Some((_, offset)) = &self.rev_block else { return Ok(false) };
            let Some((kr, _)) = self.rev_spans.get(self.rev_pos) else { return Ok(false) };
            let key = self.rev_keys.get(kr.clone()).unwrap_or_default();
            let user_key = user_key_of(key);
            if before_start(&self.range, user_key) {
                self.rev_block = None;
                self.rev_pos = 0;
                return Ok(false);
            }
            if after_end(&self.range, user_key) {
                continue;
            }
            (self.seqno, self.kind) = checked_trailer(&self.table, key, *offset)?;
            return Ok(true);
        }
    }
}

impl InternalIterator for TableIter {
    fn advance(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let r = match self.direction {
            Direction::Forward => self.advance_forward(),
            Direction::Reverse => self.advance_reverse(),
        };
        if !matches!(r, Ok(true)) {
            self.done = true;
        }
        r
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        if self.done || !self.started {
            return None;
        }
        let (key, value) = match self.direction {
            Direction::Forward => {
                let (it, _) = self.block.as_ref()?;
                (it.key(), it.value())
            }
            Direction::Reverse => {
                let (block, _) = self.rev_block.as_ref()?;
                let (kr, vr) = self.rev_spans.get(self.rev_pos)?;
                (self.rev_keys.get(kr.clone())?, block.value(vr.clone()))
            }
        };
        Some(EntryRef { user_key: user_key_of(key), seqno: self.seqno, kind: self.kind, value })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::table::block::BlockBuilder;

    /// The prefix search agrees with a linear scan where 8-byte prefixes tie or
    /// mislead: short keys, zero bytes (which the padding also produces), keys
    /// equal in their first 8 bytes and versions of one key.
    #[test]
    fn index_search_agrees_with_a_linear_scan() {
        let mut user_keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\x00".to_vec(),
            b"\x00\x00".to_vec(),
            b"a".to_vec(),
            b"a\x00".to_vec(),
            b"a\x00\x01".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\x00".to_vec(),
            b"abcdefghi".to_vec(),
            b"abcdefghij".to_vec(),
            b"abcdefgi".to_vec(),
            b"\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ];
        user_keys.sort();
        let mut keys = Vec::new();
        for uk in &user_keys {
            for seqno in [9, 5, 1] {
                keys.push(InternalKey::new(uk.clone(), seqno, ValueKind::Put).encode());
            }
        }
        let mut b = BlockBuilder::new(4);
        let mut offset = HEADER_LEN;
        for k in &keys {
            let mut h = Vec::new();
            BlockHandle { offset, size: 100 }.encode_into(&mut h);
            b.add(k, &h);
            offset += 100;
        }
        let index = decode_index(b.finish().to_vec(), offset).unwrap();
        let mut targets = keys.clone();
        for uk in user_keys.iter().chain([b"ab".to_vec(), b"abcdefgh\x00\x00".to_vec(), b"b".to_vec()].iter()) {
            for trailer in [0, u64::MAX, (7 << 8) | 1] {
                let mut target = uk.clone();
                target.extend_from_slice(&trailer.to_le_bytes());
                targets.push(target);
            }
        }
        for target in &targets {
            let linear = keys.iter().position(|k| compare_encoded(k, target) != Ordering::Less);
            assert_eq!(index.find(target), linear, "{target:?}");
        }
    }
}
