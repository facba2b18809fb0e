//! The streaming blob writer: input is cut into content-defined chunks as it
//! arrives (FastCDC with a gear table seeded from a store secret, so chunk
//! boundaries of equal files differ between stores), each chunk is hashed with
//! the store's dedup key, and only chunks the store does not hold yet are
//! compressed, sealed and appended to the writer's own blob file.
//!
//! Memory: the input buffer holds at most two largest chunks, plus one
//! compression buffer and one frame; chunk records are committed every
//! [`PENDING_OPS`] operations. So a writer holds about 4 x 4 MiB whatever the
//! blob size, plus the hashes of the existing chunks it reuses (32 bytes each).

use std::io;

use fastcdc::v2020::{cut_gear, get_gear_with_seed, logarithm2, MASKS};

use crate::batch::WriteBatch;
use crate::blob::file::BlobFileWriter;
use crate::blob::format::{
    chunk_ref_key, location_key, meta_key, BlobMeta, ChunkHash, ChunkRef, Location, AVG_CHUNK_BYTES, BLOB_FILE_TARGET_BYTES,
    CHUNKING_KEY_PURPOSE, CODEC_RAW, CODEC_ZSTD, DEDUP_KEY_PURPOSE, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, COMPRESSION_PROBE_BYTES, PENDING_BYTES, PENDING_OPS, ZSTD_LEVEL,
};
use crate::blob::format::{chunk_ref_prefix, decode_upload, encode_upload, parse_chunk_ref_key, upload_key, RESUMABLE_COMMIT_BYTES};
use crate::blob::BlobStore;
use crate::error::{Error, Result};

/// Bytes the input buffer accepts before chunks must be cut from it.
const INPUT_BUFFER_BYTES: usize = 2 * MAX_CHUNK_BYTES;

/// FastCDC parameters and the store's seeded gear tables.
pub(crate) struct Chunker {
    mask_s: u64,
    mask_l: u64,
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
}

impl Chunker {
    pub(crate) fn new(seed: u64) -> Chunker {
        // Normalization level 1, as fastcdc's default.
        let bits = logarithm2(AVG_CHUNK_BYTES as u32) as usize;
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Chunker { mask_s: MASKS.get(bits + 1).copied().unwrap_or(0), mask_l: MASKS.get(bits - 1).copied().unwrap_or(0), gear, gear_ls }
    }

    /// Length of the first chunk of `data` (all of it if it is not longer than
    /// the minimum). Only depends on `data[..MAX_CHUNK_BYTES]`.
    pub(crate) fn cut(&self, data: &[u8]) -> usize {
        let (_, n) =
            cut_gear(data, MIN_CHUNK_BYTES, AVG_CHUNK_BYTES, MAX_CHUNK_BYTES, self.mask_s, self.mask_l, self.mask_s << 1, self.mask_l << 1, &self.gear, &self.gear_ls);
        n.clamp(1.min(data.len()), data.len())
    }
}

/// Writes one blob; see [`BlobStore::writer`]. Implements [`io::Write`]; the
/// blob is committed by [`BlobWriter::finish`] and not before.
pub struct BlobWriter<'db> {
    store: BlobStore<'db>,
    key: Vec<u8>,
    id: u64,
    /// Ids of the blobs staged by [`BlobWriter::next_blob`] (in flight until the writer ends).
    staged: Vec<u64>,
    input: Vec<u8>,
    /// Bytes of `input` already cut into chunks.
    consumed: usize,
    len: u64,
    chunks: u64,
    file: Option<BlobFileWriter>,
    /// Blob files this writer made (registered as active until it ends).
    files: Vec<u64>,
    /// Hashes of existing chunks it reuses (pinned until it ends).
    pinned: Vec<ChunkHash>,
    /// Chunks it wrote whose location records are not committed yet.
    unflushed: std::collections::HashMap<ChunkHash, Location>,
    batch: WriteBatch,
    /// Bytes of new frames since the last commit of records.
    pending_bytes: u64,
    hasher: blake3::Hasher,
    chunker: Chunker,
    compressor: zstd::bulk::Compressor<'static>,
    compressed: Vec<u8>,
    /// A failed write leaves the writer unusable.
    failed: bool,
    ended: bool,
    /// Whether the current blob is a resumable upload (its `u` record names
    /// its id until the blob is committed).
    upload: bool,
    /// The blob's length when its records were last committed.
    committed_len: u64,
}

impl std::fmt::Debug for BlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").field("id", &self.id).field("len", &self.len).finish_non_exhaustive()
    }
}

/// Maps an engine error carried through `io` back to it.
pub(crate) fn unwrap_io(e: io::Error, what: &str) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(err) = inner.downcast::<Error>() {
                return *err;
            }
        }
        return Error::Internal(format!("{what}: error lost"));
    }
    Error::Io { file: what.into(), source: e }
}

impl<'db> BlobWriter<'db> {
    pub(crate) fn new(store: BlobStore<'db>, key: &[u8]) -> Result<BlobWriter<'db>> {
        let db = store.db();
        store.keyspace()?;
        if db.is_read_only() {
            return Err(Error::ReadOnly("cannot write a blob".into()));
        }
        check_key(&store, key)?;
        let keys = db.key_manager();
        let hasher = blake3::Hasher::new_keyed(&keys.integrity_key(DEDUP_KEY_PURPOSE));
        let seed_key = keys.integrity_key(CHUNKING_KEY_PURPOSE);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(seed_key.get(..8).unwrap_or(&[1; 8]));
        let chunker = Chunker::new(u64::from_le_bytes(seed) | 1);
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| Error::Internal(format!("zstd: {e}")))?;
        let id = new_id(&store);
        Ok(BlobWriter {
            store,
            key: key.to_vec(),
            id,
            staged: Vec::new(),
            input: Vec::with_capacity(INPUT_BUFFER_BYTES),
            consumed: 0,
            len: 0,
            chunks: 0,
            file: None,
            files: Vec::new(),
            pinned: Vec::new(),
            unflushed: std::collections::HashMap::new(),
            batch: WriteBatch::new(),
            pending_bytes: 0,
            hasher,
            chunker,
            compressor,
            compressed: Vec::new(),
            failed: false,
            ended: false,
            upload: false,
            committed_len: 0,
        })
    }

    /// A writer whose upload can be resumed ([`BlobWriter::resume`]) after
    /// it is dropped unfinished or the process dies: its upload record is
    /// written first, and its chunk records are committed every 4 MiB.
    pub(crate) fn new_resumable(store: BlobStore<'db>, key: &[u8]) -> Result<BlobWriter<'db>> {
        let mut writer = BlobWriter::new(store, key)?;
        let keyspace = writer.store.keyspace()?.clone();
        writer.store.db().put_in(&keyspace, &upload_key(key), &encode_upload(writer.id))?;
        writer.upload = true;
        Ok(writer)
    }

    /// Reopens the unfinished resumable upload of blob `key` (begun with
    /// [`BlobStore::resumable_writer`]), or `None` if there is none. The
    /// writer continues after the last chunk whose records were committed:
    /// [`BlobWriter::bytes_written`] says how many bytes of the source it
    /// holds, so write the source from that offset on, then
    /// [`BlobWriter::finish`]. After a crash, that is what the store
    /// recovered (with [`crate::SyncPolicy::Always`], every commit). An
    /// upload another live writer is working on is
    /// [`Error::InvalidArgument`].
    pub fn resume(store: &BlobStore<'db>, key: &[u8]) -> Result<Option<BlobWriter<'db>>> {
        let Some(record) = store.upload_record(key)? else { return Ok(None) };
        let id = decode_upload(&record)?;
        let mut writer = BlobWriter::new(store.clone(), key)?;
        {
            let mut registry = store.state().lock();
            if registry.inflight.contains(&id) {
                return Err(Error::InvalidArgument("another writer is working on this upload".into()));
            }
            registry.inflight.remove(&writer.id);
            registry.inflight.insert(id);
            writer.id = id;
        }
        // The committed chunks, contiguous from offset 0.
        let (mut len, mut chunks) = (0u64, 0u64);
        for item in store.db().scan_prefix_in(store.keyspace()?, &chunk_ref_prefix(id))? {
            let (k, v) = item?;
            let (_, start) = parse_chunk_ref_key(&k)?;
            if start != len {
                break;
            }
            len += u64::from(ChunkRef::decode(&v)?.len);
            chunks += 1;
        }
        writer.len = len;
        writer.chunks = chunks;
        writer.committed_len = len;
        writer.upload = true;
        Ok(Some(writer))
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.len + (self.input.len() - self.consumed) as u64
    }

    /// Ends the current blob and starts one under `key`, in the same writer:
    /// many small blobs then share one blob file, one sync and few commits.
    /// The ended blob is staged: it becomes visible, whole, with the next
    /// commit of the writer's records (at the latest at [`BlobWriter::finish`]);
    /// if the writer is dropped before, staged blobs never appear. Returns the
    /// ended blob's length.
    pub fn next_blob(&mut self, key: &[u8]) -> Result<u64> {
        if self.failed || self.ended {
            return Err(Error::InvalidArgument("blob writer failed earlier or is finished".into()));
        }
        check_key(&self.store, key)?;
        let result = self.stage_current();
        if result.is_err() {
            self.failed = true;
        }
        let len = result?;
        self.staged.push(self.id);
        self.id = new_id(&self.store);
        self.key = key.to_vec();
        self.len = 0;
        self.chunks = 0;
        Ok(len)
    }

    /// Cuts the rest of the input into the current blob's last chunks and puts
    /// its metadata record into the pending batch.
    fn stage_current(&mut self) -> Result<u64> {
        while self.consumed < self.input.len() {
            self.cut_one()?;
        }
        self.input.clear();
        self.consumed = 0;
        let meta = BlobMeta { id: self.id, len: self.len, chunks: self.chunks };
        let keyspace = self.store.keyspace()?.clone();
        self.batch.put_in(&keyspace, meta_key(&self.key), meta.encode());
        if self.upload {
            // Committed with the blob: the upload is over.
            self.batch.delete_in(&keyspace, upload_key(&self.key));
            self.upload = false;
        }
        if self.batch.len() >= PENDING_OPS {
            self.commit_pending()?;
        }
        Ok(self.len)
    }

    /// Cuts the remaining input into chunks, syncs the blob file and commits
    /// the blob in one batch (its metadata record, replacing any blob under
    /// its key, and the last chunk records). Returns the blob's length.
    pub fn finish(mut self) -> Result<u64> {
        if self.failed {
            return Err(Error::InvalidArgument("blob writer failed earlier; nothing was committed".into()));
        }
        let _timer = crate::metrics::timed(crate::metrics::StoreOp::BlobWrite);
        let result = self.finish_inner();
        if let Ok(len) = &result { crate::metrics::blob_written(*len) }
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn finish_inner(&mut self) -> Result<u64> {
        let len = self.stage_current()?;
        if let Some(file) = self.file.as_mut() {
            file.sync()?;
        }
        let batch = std::mem::take(&mut self.batch);
        self.store.db().write(batch)?;
        // Its file, synced and below its target size, serves the next writer.
        if let Some(file) = self.file.take() {
            if file.len() < BLOB_FILE_TARGET_BYTES {
                self.files.retain(|n| *n != file.number);
                self.store.state().lock().idle_files.push(file);
            }
        }
        self.end();
        Ok(len)
    }

    /// Cuts and stores the first chunk of the unconsumed input.
    fn cut_one(&mut self) -> Result<()> {
        let rest = self.input.get(self.consumed..).unwrap_or_default();
        let n = self.chunker.cut(rest);
        let start = self.consumed;
        self.consumed += n;
        self.store_chunk(start, n)
    }

    /// Cuts chunks while a full largest chunk is buffered (a cut then depends
    /// on nothing not yet written), then moves what is left to the front.
    fn drain(&mut self) -> Result<()> {
        while self.input.len() - self.consumed >= MAX_CHUNK_BYTES {
            self.cut_one()?;
        }
        if self.consumed > 0 {
            self.input.drain(..self.consumed);
            self.consumed = 0;
        }
        Ok(())
    }

    fn store_chunk(&mut self, start: usize, n: usize) -> Result<()> {
        let keyspace = self.store.keyspace()?.clone();
        let chunk = self.input.get(start..start + n).unwrap_or_default();
        let mut h = self.hasher.clone();
        h.update(chunk);
        let hash: ChunkHash = *h.finalize().as_bytes();
        let plain_len = n as u32;
        let blob_offset = self.len;
        if !self.unflushed.contains_key(&hash) && !reuse(&self.store, &mut self.pinned, &hash)? {
            // Kept compressed only when that saves at least 1/16 of the chunk,
            // and tried only when a probe of its start does.
            let probe = chunk.get(..COMPRESSION_PROBE_BYTES.min(n)).unwrap_or_default();
            let mut codec = CODEC_RAW;
            if compresses(&mut self.compressor, probe, &mut self.compressed) {
                self.compressed.clear();
                self.compressed.reserve(n - n / 16);
                if let Ok(c) = self.compressor.compress_to_buffer(chunk, &mut self.compressed) {
                    if c < n - n / 16 {
                        codec = CODEC_ZSTD;
                    }
                }
            }
            let payload = if codec == CODEC_ZSTD { &self.compressed[..] } else { chunk };
            let location = output_file(&self.store, &mut self.file, &mut self.files)?.append(&hash, plain_len, codec, payload)?;
            self.batch.put_in(&keyspace, location_key(&hash), location.encode());
            self.unflushed.insert(hash, location);
            self.pending_bytes += location.frame_bytes();
        }
        self.batch.put_in(&keyspace, chunk_ref_key(self.id, blob_offset), ChunkRef { hash, len: plain_len }.encode());
        self.len += n as u64;
        self.chunks += 1;
        let resumable_point = self.upload && self.len - self.committed_len >= RESUMABLE_COMMIT_BYTES;
        if self.batch.len() >= PENDING_OPS || self.pending_bytes >= PENDING_BYTES || resumable_point {
            self.commit_pending()?;
        }
        Ok(())
    }

    /// Syncs the blob file, then commits the records gathered so far (still
    /// invisible: no metadata record names this blob's id yet).
    fn commit_pending(&mut self) -> Result<()> {
        if let Some(file) = self.file.as_mut() {
            file.sync()?;
        }
        let batch = std::mem::take(&mut self.batch);
        self.store.db().write(batch)?;
        self.unflushed.clear();
        self.pending_bytes = 0;
        self.committed_len = self.len;
        Ok(())
    }

    /// Unregisters the writer: its id, pins and files.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let mut registry = self.store.state().lock();
        registry.inflight.remove(&self.id);
        for id in self.staged.drain(..) {
            registry.inflight.remove(&id);
        }
        for hash in self.pinned.drain(..) {
            registry.unpin(&hash);
        }
        for number in self.files.drain(..) {
            registry.active_files.remove(&number);
        }
    }
}

/// Refuses a key the blob keyspace cannot hold (one byte goes to the prefix).
fn check_key(store: &BlobStore<'_>, key: &[u8]) -> Result<()> {
    let max = store.db().options().max_key_bytes;
    if key.len() + 1 > max {
        return Err(Error::InvalidArgument(format!("blob key of {} bytes is over the limit of {} bytes", key.len(), max - 1)));
    }
    Ok(())
}

/// A random blob id no unfinished writer uses, registered as in flight.
fn new_id(store: &BlobStore<'_>) -> u64 {
    let mut registry = store.state().lock();
    let id = loop {
        let id: u64 = rand::random();
        if !registry.inflight.contains(&id) {
            break id;
        }
    };
    registry.inflight.insert(id);
    id
}

/// Whether `data` compresses by at least 1/16 (`scratch` is clobbered).
fn compresses(compressor: &mut zstd::bulk::Compressor<'static>, data: &[u8], scratch: &mut Vec<u8>) -> bool {
    let n = data.len();
    scratch.clear();
    scratch.reserve(n - n / 16);
    matches!(compressor.compress_to_buffer(data, scratch), Ok(c) if c < n - n / 16)
}

/// Whether the store holds chunk `hash` already; if so it is pinned (and
/// recorded in `pinned`) until the writer ends.
fn reuse(store: &BlobStore<'_>, pinned: &mut Vec<ChunkHash>, hash: &ChunkHash) -> Result<bool> {
    let mut registry = store.state().lock();
    let found = store.db().get_in(store.keyspace()?, &location_key(hash))?.is_some();
    if found {
        registry.pin(*hash);
        drop(registry);
        pinned.push(*hash);
    }
    Ok(found)
}

/// The blob file to append to, rolling to a new one past the target size.
fn output_file<'f>(store: &BlobStore<'_>, file: &'f mut Option<BlobFileWriter>, files: &mut Vec<u64>) -> Result<&'f mut BlobFileWriter> {
    if file.as_ref().is_some_and(|f| f.len() >= BLOB_FILE_TARGET_BYTES) {
        // Records pointing into it are committed after this sync.
        if let Some(mut old) = file.take() {
            old.sync()?;
        }
    }
    if file.is_none() {
        let idle = store.state().lock().idle_files.pop();
        if let Some(idle) = idle {
            // Still registered as active; this writer now owns it.
            files.push(idle.number);
            *file = Some(idle);
        }
    }
    if file.is_none() {
        let db = store.db();
        let number = db.new_file_number();
        store.state().lock().active_files.insert(number);
        files.push(number);
        *file = Some(BlobFileWriter::create(&**db.store_vfs(), db.store_dir(), db.key_manager(), number)?);
    }
    match file.as_mut() {
        Some(f) => Ok(f),
        None => Err(Error::Internal("blob file missing".into())),
    }
}

impl io::Write for BlobWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed || self.ended {
            return Err(io::Error::other(Error::InvalidArgument("blob writer failed earlier or is finished".into())));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = INPUT_BUFFER_BYTES - self.input.len();
        let n = data.len().min(room);
        self.input.extend_from_slice(data.get(..n).unwrap_or_default());
        if let Err(e) = self.drain() {
            self.failed = true;
            return Err(io::Error::other(e));
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        // Unfinished: nothing of it is visible; GC reclaims what it wrote.
        self.end();
    }
}
