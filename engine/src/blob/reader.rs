//! The seekable blob reader: finds the chunk holding the current offset (the
//! last chunk record of the blob at or before it), looks up where the chunk
//! is, reads and authenticates its frame, decompresses it and checks its
//! keyed hash and length against the blob's own record. It holds one chunk
//! (at most 4 MiB) and reads at the snapshot it was opened at.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Bound;

use crate::blob::file::{decode_payload, BlobFileReader};
use crate::blob::format::{
    chunk_ref_key, location_key, parse_chunk_ref_key, BlobMeta, ChunkRef, Location, BLOB_KEYSPACE, DEDUP_KEY_PURPOSE,
};
use crate::blob::BlobStore;
use crate::db::Snapshot;
use crate::error::{Error, Result};

/// Blob files a reader keeps open at once.
const OPEN_FILES: usize = 4;

/// Reads one blob; see [`BlobStore::reader`].
pub struct BlobReader<'db> {
    store: BlobStore<'db>,
    snapshot: Snapshot,
    meta: BlobMeta,
    pos: u64,
    /// The chunk in `chunk`, as (start offset in the blob).
    chunk_start: u64,
    chunk: Vec<u8>,
    sealed: Vec<u8>,
    files: HashMap<u64, BlobFileReader>,
    hasher: blake3::Hasher,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl std::fmt::Debug for BlobReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").field("len", &self.meta.len).field("pos", &self.pos).finish_non_exhaustive()
    }
}

impl<'db> BlobReader<'db> {
    pub(crate) fn new(store: BlobStore<'db>, snapshot: Snapshot, meta: BlobMeta) -> Result<BlobReader<'db>> {
        let hasher = blake3::Hasher::new_keyed(&store.db().key_manager().integrity_key(DEDUP_KEY_PURPOSE));
        let decompressor = zstd::bulk::Decompressor::new().map_err(|e| Error::Internal(format!("zstd: {e}")))?;
        store.state().lock().readers += 1;
        Ok(BlobReader { store, snapshot, meta, pos: 0, chunk_start: 0, chunk: Vec::new(), sealed: Vec::new(), files: HashMap::new(), hasher, decompressor })
    }

    /// The blob's length in bytes.
    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Whether the blob is empty.
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }

    /// Reads into `buf` from the current offset; 0 at the end.
    pub fn read_chunked(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || self.pos >= self.meta.len {
            return Ok(0);
        }
        let in_chunk = self.pos >= self.chunk_start && self.pos < self.chunk_start + self.chunk.len() as u64;
        if !in_chunk {
            self.load(self.pos)?;
        }
        let from = (self.pos - self.chunk_start) as usize;
        let available = self.chunk.get(from..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(available.get(..n).unwrap_or_default());
        self.pos += n as u64;
        crate::metrics::blob_read(n);
        Ok(n)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::Corruption { file: BLOB_KEYSPACE.into(), offset: self.pos, reason }
    }

    /// Loads the chunk holding offset `pos`.
    fn load(&mut self, pos: u64) -> Result<()> {
        let lo = chunk_ref_key(self.meta.id, 0);
        let at = chunk_ref_key(self.meta.id, pos);
        let mut it = self.store.range(Bound::Included(&lo), Bound::Included(&at), true, Some(&self.snapshot))?;
        let Some(item) = it.next() else {
            return Err(self.corrupt(format!("blob {:016x} has no chunk at offset {pos}", self.meta.id)));
        };
        let (k, v) = item?;
        let (_, start) = parse_chunk_ref_key(&k)?;
        let chunk = ChunkRef::decode(&v)?;
        let end = start + u64::from(chunk.len);
        if !(start <= pos && pos < end && end <= self.meta.len) {
            return Err(self.corrupt(format!(
                "blob {:016x}: chunk [{start}, {end}) does not hold offset {pos} within length {} (a chunk is missing)",
                self.meta.id, self.meta.len
            )));
        }
        let keyspace = self.store.keyspace()?;
        let Some(loc) = self.store.db().get_at_in(keyspace, &location_key(&chunk.hash), &self.snapshot)? else {
            return Err(self.corrupt(format!("blob {:016x}: chunk at offset {start} has no location record", self.meta.id)));
        };
        let loc = Location::decode(&loc)?;
        if loc.plain_len != chunk.len {
            return Err(self.corrupt(format!("blob {:016x}: chunk at offset {start} is {} bytes, its location says {}", self.meta.id, chunk.len, loc.plain_len)));
        }
        if !self.files.contains_key(&loc.file) {
            if self.files.len() >= OPEN_FILES {
                self.files.clear();
            }
            let db = self.store.db();
            let file = BlobFileReader::open(&**db.store_vfs(), db.store_dir(), db.key_manager(), loc.file)?;
            self.files.insert(loc.file, file);
        }
        let Some(file) = self.files.get(&loc.file) else { return Err(Error::Internal("blob file handle missing".into())) };
        let frame = file.read_frame(loc.offset, Some(loc.sealed_len), &mut self.sealed)?;
        if frame.hash != chunk.hash {
            return Err(Error::Corruption { file: file.name().into(), offset: loc.offset, reason: "blob chunk frame holds another chunk".into() });
        }
        decode_payload(file.name(), loc.offset, &frame, &self.sealed, &self.hasher, &mut self.decompressor, &mut self.chunk)?;
        self.chunk_start = start;
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_chunked(buf).map_err(io::Error::other)
    }
}

impl Seek for BlobReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.meta.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek to a negative or overflowing offset")),
        }
    }
}

impl Drop for BlobReader<'_> {
    fn drop(&mut self) {
        let mut registry = self.store.state().lock();
        registry.readers = registry.readers.saturating_sub(1);
    }
}
