//! Writes one SSTable: data blocks as entries arrive, then filter, index, properties,
//! meta block and footer (layout in `index/FORMAT.md`). Every block is compressed
//! (when that pays) and sealed with the file offset it will be written at, so the
//! AEAD tag also pins the block to its place in the file.

use std::cmp::Ordering;

use crypto::vfs::WritableFile;
use crypto::{BlockKind, FileCipher, FileKind, KeyManager};

use super::block::BlockBuilder;
use super::bloom::BloomBuilder;
use super::properties::Properties;
use super::user_properties::{self, CollectedEntry, TablePropertiesCollector};
use super::{Compression, TableInfo, TableOptions};
use crate::error::{Error, Result};
use crate::format::{
    BlockHandle, Footer, COMPRESSION_NONE, COMPRESSION_ZSTD, HANDLE_LEN, INDEX_RESTART_INTERVAL, MAX_BLOCK_BYTES,
    MAX_USER_KEY_BYTES, MAX_VALUE_BYTES, META_LEN, TABLE_FORMAT_VERSION, WRITE_BUFFER_BYTES,
};
use crate::key::{compare_encoded, InternalKey, MAX_SEQNO};

/// Written bytes are handed to the OS's writeback in steps of this size, so a
/// large table's final sync has little left to write.
const WRITEBACK_BYTES: u64 = 1 << 20;
/// Smaller bodies are not worth a zstd frame header.
const MIN_COMPRESS_BYTES: usize = 64;
/// After this many blocks in a row that did not compress, compression is
/// skipped for a while: incompressible data (random or already compressed
/// values, encrypted payloads) would otherwise cost a zstd pass per block for
/// nothing.
const MISSES_BEFORE_SKIPPING: u32 = 8;
/// Blocks skipped after the first run of misses; doubled after each further
/// failed retry, up to [`MAX_SKIPPED_BLOCKS`], and reset by a block that compresses.
const FIRST_SKIP_BLOCKS: u32 = 16;
const MAX_SKIPPED_BLOCKS: u32 = 256;

/// Seals blocks and buffers the file's bytes.
struct BlockWriter {
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    name: String,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    /// Sealed bytes not yet handed to the file.
    out: Vec<u8>,
    /// Bytes already handed to the file.
    flushed: u64,
    sealed: Vec<u8>,
    compressed: Vec<u8>,
    /// Offset from which written bytes have not yet been handed to writeback.
    writeback_from: u64,
    /// Blocks in a row that did not compress.
    misses: u32,
    /// Blocks still to write without trying to compress.
    skip: u32,
    /// How many blocks the next run of misses skips.
    next_skip: u32,
}

impl BlockWriter {
    fn offset(&self) -> u64 {
        self.flushed + self.out.len() as u64
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io { file: self.name.clone(), source }
    }

    /// Compresses (if that saves at least 1/8), seals and queues one block.
    fn write_block(&mut self, body: &[u8], kind: BlockKind) -> Result<BlockHandle> {
        if body.len() > MAX_BLOCK_BYTES {
            return Err(Error::InvalidArgument(format!("{kind:?} of {} bytes exceeds the block size limit", body.len())));
        }
        let offset = self.offset();
        self.sealed.clear();
        let try_compress = body.len() >= MIN_COMPRESS_BYTES && self.skip == 0;
        self.skip = self.skip.saturating_sub(1);
        if let Some(c) = self.compressor.as_mut().filter(|_| try_compress) {
            let limit = body.len() - body.len() / 8;
            self.compressed.clear();
            self.compressed.reserve(limit);
            if let Ok(n) = c.compress_to_buffer(body, &mut self.compressed) {
                if n + 4 <= limit {
                    self.sealed.push(COMPRESSION_ZSTD);
                    self.sealed.extend_from_slice(&(body.len() as u32).to_le_bytes());
                    self.sealed.extend_from_slice(&self.compressed);
                }
            }
            if self.sealed.is_empty() {
                self.misses += 1;
                if self.misses >= MISSES_BEFORE_SKIPPING {
                    // Skip a while, then try again with a single block.
                    self.skip = self.next_skip;
                    self.next_skip = (self.next_skip * 2).min(MAX_SKIPPED_BLOCKS);
                    self.misses = MISSES_BEFORE_SKIPPING - 1;
                }
            } else {
                self.misses = 0;
                self.next_skip = FIRST_SKIP_BLOCKS;
            }
        }
        if self.sealed.is_empty() {
            self.sealed.push(COMPRESSION_NONE);
            self.sealed.extend_from_slice(body);
        }
        self.cipher.seal_in_place(offset, kind, &mut self.sealed);
        self.out.extend_from_slice(&self.sealed);
        let handle = BlockHandle { offset, size: self.sealed.len() as u32 };
        if self.out.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(handle)
    }

    fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.file.append(&self.out).map_err(|e| self.io(e))?;
            self.flushed += self.out.len() as u64;
            self.out.clear();
            if self.flushed - self.writeback_from >= WRITEBACK_BYTES {
                self.file.start_writeback(self.writeback_from, self.flushed - self.writeback_from);
                self.writeback_from = self.flushed;
            }
        }
        Ok(())
    }
}

/// Writes one SSTable.
///
/// After any error the file is incomplete: drop the builder and remove the file.
/// `finish` syncs the file's bytes; making its directory entry durable is the
/// caller's (`Vfs::sync_dir`).
pub struct TableBuilder {
    writer: BlockWriter,
    file_id: u64,
    options: TableOptions,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    bloom: Option<BloomBuilder>,
    /// Encoded internal key of the last entry added.
    last_key: Vec<u8>,
    key_buf: Vec<u8>,
    smallest: Option<InternalKey>,
    entries: u64,
    data_blocks: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    min_seqno: u64,
    max_seqno: u64,
    /// The application's collector of user properties, if any.
    collector: Option<Box<dyn TablePropertiesCollector>>,
}

impl TableBuilder {
    /// Starts a table in `file` (freshly created, empty) for file number `file_id`.
    /// Writes the encrypted file header at once. `name` is used in errors.
    pub fn new(file: Box<dyn WritableFile>, keys: &KeyManager, file_id: u64, name: &str, options: TableOptions) -> Result<Self> {
        if options.block_size_bytes == 0 || options.block_size_bytes > MAX_BLOCK_BYTES / 2 || options.restart_interval == 0 {
            return Err(Error::InvalidArgument(format!(
                "table options out of range: block_size_bytes {} (1..={}), restart_interval {} (>= 1)",
                options.block_size_bytes,
                MAX_BLOCK_BYTES / 2,
                options.restart_interval
            )));
        }
        if !file.is_empty() {
            return Err(Error::InvalidArgument(format!("{name}: a table must be written to an empty file")));
        }
        let compressor = match options.compression {
            Compression::None => None,
            Compression::Zstd(level) => Some(
                zstd::bulk::Compressor::new(level).map_err(|source| Error::Io { file: name.to_string(), source })?,
            ),
        };
        let (header, cipher) = keys.new_file(FileKind::Sst, file_id, name);
        let mut out = Vec::with_capacity(WRITE_BUFFER_BYTES + options.block_size_bytes * 2);
        out.extend_from_slice(&header);
        let bloom = (options.bloom_bits_per_key > 0).then(|| BloomBuilder::new(options.bloom_bits_per_key));
        Ok(TableBuilder {
            writer: BlockWriter {
                file,
                cipher,
                name: name.to_string(),
                compressor,
                out,
                flushed: 0,
                sealed: Vec::new(),
                compressed: Vec::new(),
                writeback_from: 0,
                misses: 0,
                skip: 0,
                next_skip: FIRST_SKIP_BLOCKS,
            },
            file_id,
            data_block: BlockBuilder::new(options.restart_interval),
            index_block: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            options,
            bloom,
            last_key: Vec::new(),
            key_buf: Vec::new(),
            smallest: None,
            entries: 0,
            data_blocks: 0,
            raw_key_bytes: 0,
            raw_value_bytes: 0,
            min_seqno: u64::MAX,
            max_seqno: 0,
            collector: None,
        })
    }

    /// Gives every entry added from now on to `collector`, and writes what it
    /// returns at `finish` as the table's user properties. Set it before the
    /// first `add`.
    pub fn set_properties_collector(&mut self, collector: Box<dyn TablePropertiesCollector>) {
        self.collector = Some(collector);
    }

    /// Adds an entry; keys must come in strictly increasing internal-key order.
    pub fn add(&mut self, key: &InternalKey, value: &[u8]) -> Result<()> {
        if key.seqno > MAX_SEQNO {
            return Err(Error::InvalidArgument(format!("seqno {} above the maximum {MAX_SEQNO}", key.seqno)));
        }
        if key.user_key.len() > MAX_USER_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(Error::InvalidArgument(format!(
                "entry too large: key {} bytes (max {MAX_USER_KEY_BYTES}), value {} bytes (max {MAX_VALUE_BYTES})",
                key.user_key.len(),
                value.len()
            )));
        }
        self.key_buf.clear();
        key.encode_into(&mut self.key_buf);
        if self.entries > 0 && compare_encoded(&self.key_buf, &self.last_key) != Ordering::Greater {
            return Err(Error::InvalidArgument(format!(
                "{}: keys must be strictly increasing; {:?} does not follow {:?}",
                self.writer.name,
                key,
                InternalKey::decode(&self.last_key)
            )));
        }
        if self.smallest.is_none() {
            self.smallest = Some(key.clone());
        }
        self.data_block.add(&self.key_buf, value);
        if let Some(b) = self.bloom.as_mut() {
            b.add(&key.user_key);
        }
        std::mem::swap(&mut self.last_key, &mut self.key_buf);
        self.entries += 1;
        self.raw_key_bytes += key.user_key.len() as u64;
        self.raw_value_bytes += value.len() as u64;
        self.min_seqno = self.min_seqno.min(key.seqno);
        self.max_seqno = self.max_seqno.max(key.seqno);
        if let Some(c) = self.collector.as_mut() {
            c.add(&CollectedEntry { key: &key.user_key, value, seqno: key.seqno, kind: key.kind });
        }
        if self.data_block.estimated_size() >= self.options.block_size_bytes {
            self.flush_data_block()?;
        }
        Ok(())
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data_block.is_empty() {
            return Ok(());
        }
        let handle = self.writer.write_block(self.data_block.finish(), BlockKind::SstData)?;
        let mut h = Vec::with_capacity(HANDLE_LEN);
        handle.encode_into(&mut h);
        self.index_block.add(self.data_block.last_key(), &h);
        self.data_block.reset();
        self.data_blocks += 1;
        Ok(())
    }

    /// Bytes written so far plus the pending block (for splitting output files).
    pub fn estimated_size(&self) -> u64 {
        self.writer.offset() + self.data_block.estimated_size() as u64
    }

    /// Number of entries added.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes index, filter, properties and footer, syncs the file, and returns its info.
    /// Fails if no entry was added.
    pub fn finish(mut self) -> Result<TableInfo> {
        let Some(smallest) = self.smallest.take() else {
            return Err(Error::InvalidArgument(format!("{}: a table needs at least one entry", self.writer.name)));
        };
        let largest = InternalKey::decode(&self.last_key)
            .ok_or_else(|| Error::InvalidArgument("last key does not decode".to_string()))?;
        self.flush_data_block()?;
        let filter = match self.bloom.take() {
            Some(b) => self.writer.write_block(&b.finish(), BlockKind::SstFilter)?,
            None => BlockHandle::default(),
        };
        let index = self.writer.write_block(self.index_block.finish(), BlockKind::SstIndex)?;
        let user = match self.collector.as_mut() {
            Some(c) => c.finish().map_err(|e| {
                Error::InvalidArgument(format!("{}: the table properties collector failed: {e}", self.writer.name))
            })?,
            None => Default::default(),
        };
        user_properties::check(&user).map_err(|e| Error::InvalidArgument(format!("{}: {e}", self.writer.name)))?;
        let props = Properties {
            file_id: self.file_id,
            entries: self.entries,
            data_blocks: self.data_blocks,
            raw_key_bytes: self.raw_key_bytes,
            raw_value_bytes: self.raw_value_bytes,
            min_seqno: self.min_seqno,
            max_seqno: self.max_seqno,
            smallest: smallest.clone(),
            largest: largest.clone(),
            user,
        };
        let properties = self.writer.write_block(&props.encode(), BlockKind::SstProperties)?;
        let mut meta_body = Vec::with_capacity(META_LEN);
        for h in [filter, index, properties] {
            h.encode_into(&mut meta_body);
        }
        let meta = self.writer.write_block(&meta_body, BlockKind::SstMeta)?;
        let footer = Footer { meta, version: TABLE_FORMAT_VERSION };
        self.writer.out.extend_from_slice(&footer.encode());
        self.writer.flush()?;
        self.writer.file.sync().map_err(|e| self.writer.io(e))?;
        Ok(TableInfo {
            file_size: self.writer.flushed,
            entries: self.entries,
            smallest,
            largest,
            min_seqno: self.min_seqno,
            max_seqno: self.max_seqno,
        })
    }
}
