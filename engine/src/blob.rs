//! The blob store: files of any size streamed in and out with a fixed memory
//! budget, cut into content-defined chunks (FastCDC), deduplicated by a keyed
//! hash, compressed when it helps and sealed chunk by chunk in blob files of
//! their own (WiscKey / BlobDB style: compaction never rewrites blob bytes).
//! See `docs/design.md`, "The blob store", and `engine/FORMAT.md`, "Blob files".
//!
//! Layout: each committed blob has a metadata record `k || key` in the internal
//! keyspace `_blob` (its random id, length and chunk count); its chunks are
//! listed by `c || id || start offset` records (hash and length); each distinct
//! chunk has one location record `h || hash` (blob file, offset, lengths).
//! Chunk references name hashes, never places, so garbage collection can move
//! a chunk by rewriting its one location record.
//!
//! Crash safety: a writer syncs the blob file before any record pointing into
//! it is written, and the blob becomes visible only with its `k` record,
//! written last at [`BlobWriter::finish`]. Whatever a crash leaves (frames,
//! chunk records of an unfinished blob) is unreachable, and
//! [`BlobStore::gc`] (mark and sweep from the `k` records) removes it.

mod file;
pub(crate) mod format;
mod gc;
mod ipfs_export;
mod reader;
mod state;
mod writer;

use std::ops::Bound;

pub use gc::BlobGcReport;
pub use ipfs_export::EXPORT_SEGMENT_BYTES as IPFS_EXPORT_SEGMENT_BYTES;
pub use reader::BlobReader;
pub use writer::BlobWriter;
pub(crate) use file::verify_blob_file;
pub(crate) use format::blob_number;
pub(crate) use state::BlobState;
pub(crate) use writer::unwrap_io;

/// Moves every blob file off old data-key epochs (a key rotation's part for
/// blob files): their live frames are re-sealed under the current epoch, the
/// old files removed (overwritten at least `passes` times).
pub(crate) fn rotate(store: &BlobStore<'_>, passes: u32) -> Result<BlobGcReport> {
    gc::run_with(store, passes, &std::collections::HashSet::new())
}

use crate::db::Db;
use crate::error::{Error, Result};
use crate::keyspace::{Keyspace, KeyspaceOptions};
use format::{meta_key, BlobMeta, BLOB_KEYSPACE, META_PREFIX};

/// The blob store of one open [`Db`] (see [`Db::blobs`]). Cheap to make;
/// every handle of one `Db` shares its state.
#[derive(Debug, Clone)]
pub struct BlobStore<'db> {
    db: &'db Db,
    keyspace: Option<Keyspace>,
}

/// Sizes of the blob store, from its records and files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobStats {
    /// Committed blobs.
    pub blobs: u64,
    /// Their total length.
    pub logical_bytes: u64,
    /// Distinct chunks in the chunk index.
    pub chunks: u64,
    /// Bytes the chunk index's frames take in blob files (after dedup and compression).
    pub stored_bytes: u64,
    /// Blob files in the store directory.
    pub files: u64,
    /// Bytes of those files (live frames, dead frames and headers).
    pub file_bytes: u64,
}

impl Db {
    /// The blob store (streamed files of any size; see [`BlobStore`]). Its
    /// internal keyspace `_blob` is created at the first call on a writable
    /// store; a read-only handle of a store without blobs sees none.
    ///
    /// ```
    /// use std::io::Read;
    /// use synapsed_storage::{Credential, Db, Options};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::create(dir.path(), &Credential::passphrase("pw"), Options::default())?;
    /// let blobs = db.blobs()?;
    /// let photo = vec![7u8; 1 << 20];
    /// assert_eq!(blobs.put(b"photos/1.jpg", &mut photo.as_slice())?, photo.len() as u64);
    ///
    /// let mut read = Vec::new();
    /// blobs.reader(b"photos/1.jpg")?.expect("stored above").read_to_end(&mut read)?;
    /// assert_eq!(read, photo);
    /// # db.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn blobs(&self) -> Result<BlobStore<'_>> {
        let keyspace = match self.keyspace(BLOB_KEYSPACE)? {
            Some(k) => Some(k),
            None if self.is_read_only() => None,
            None => match self.create_internal_keyspace(BLOB_KEYSPACE, KeyspaceOptions::default()) {
                Ok(k) => Some(k),
                // Another thread made it meanwhile.
                Err(Error::KeyspaceExists(_)) => self.keyspace(BLOB_KEYSPACE)?,
                Err(e) => return Err(e),
            },
        };
        Ok(BlobStore { db: self, keyspace })
    }
}

impl<'db> BlobStore<'db> {
    pub(crate) fn db(&self) -> &'db Db {
        self.db
    }

    /// The `_blob` keyspace; `ReadOnly` if a read-only handle has none.
    pub(crate) fn keyspace(&self) -> Result<&Keyspace> {
        self.keyspace.as_ref().ok_or_else(|| Error::ReadOnly("the store holds no blobs yet".into()))
    }

    /// A streaming writer for blob `key`: write the bytes with
    /// [`std::io::Write`], then [`BlobWriter::finish`] commits the blob
    /// atomically, replacing any blob under `key`. Dropped without `finish`,
    /// nothing is visible and the next [`BlobStore::gc`] reclaims its chunks.
    pub fn writer(&self, key: &[u8]) -> Result<BlobWriter<'db>> {
        BlobWriter::new(self.clone(), key)
    }

    /// A writer for blob `key` like [`BlobStore::writer`], whose upload can be
    /// continued by [`BlobWriter::resume`] if it is dropped unfinished or the
    /// process dies: its chunk records are committed every 4 MiB, and an
    /// upload record (`u || key` in `_blob`) keeps them from GC until the
    /// blob is committed or [`BlobStore::abort_upload`] drops it. A new
    /// resumable writer of the same key replaces an earlier upload.
    pub fn resumable_writer(&self, key: &[u8]) -> Result<BlobWriter<'db>> {
        BlobWriter::new_resumable(self.clone(), key)
    }

    /// Drops the unfinished upload of blob `key` (its chunks go at the next
    /// [`BlobStore::gc`]); whether there was one.
    pub fn abort_upload(&self, key: &[u8]) -> Result<bool> {
        let keyspace = self.keyspace()?;
        let existed = self.db.get_in(keyspace, &format::upload_key(key))?.is_some();
        if existed {
            self.db.delete_in(keyspace, &format::upload_key(key))?;
        }
        Ok(existed)
    }

    /// The upload record of blob `key`, if an upload is unfinished.
    pub(crate) fn upload_record(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.keyspace.as_ref() {
            Some(keyspace) => self.db.get_in(keyspace, &format::upload_key(key)),
            None => Ok(None),
        }
    }

    /// Streams everything `source` yields into blob `key` and commits it;
    /// returns its length.
    pub fn put(&self, key: &[u8], source: &mut dyn std::io::Read) -> Result<u64> {
        let mut writer = self.writer(key)?;
        std::io::copy(source, &mut writer).map_err(|e| writer::unwrap_io(e, "blob source"))?;
        writer.finish()
    }

    /// A reader of blob `key` as it is now (`Read + Seek`), or `None`. It
    /// reads a snapshot: a later overwrite or delete does not change what it
    /// reads, and GC keeps the files it may need while it lives.
    pub fn reader(&self, key: &[u8]) -> Result<Option<BlobReader<'db>>> {
        let _timer = crate::metrics::timed(crate::metrics::StoreOp::BlobRead);
        let Some(keyspace) = self.keyspace.as_ref() else { return Ok(None) };
        let snapshot = self.db.snapshot();
        let Some(meta) = self.db.get_at_in(keyspace, &meta_key(key), &snapshot)? else { return Ok(None) };
        let meta = BlobMeta::decode(&meta)?;
        Ok(Some(BlobReader::new(self.clone(), snapshot, meta)?))
    }

    /// The length of blob `key`, or `None`.
    pub fn len(&self, key: &[u8]) -> Result<Option<u64>> {
        let Some(keyspace) = self.keyspace.as_ref() else { return Ok(None) };
        match self.db.get_in(keyspace, &meta_key(key))? {
            Some(v) => Ok(Some(BlobMeta::decode(&v)?.len)),
            None => Ok(None),
        }
    }

    /// Deletes blob `key`; returns whether it existed. Its chunks and files are
    /// reclaimed by the next [`BlobStore::gc`].
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        let keyspace = self.keyspace()?;
        let existed = self.db.get_in(keyspace, &meta_key(key))?.is_some();
        if existed {
            self.db.delete_in(keyspace, &meta_key(key))?;
        }
        Ok(existed)
    }

    /// Every blob as `(key, length)`, in key order.
    pub fn list(&self) -> Result<Vec<(Vec<u8>, u64)>> {
        let Some(keyspace) = self.keyspace.as_ref() else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for item in self.db.scan_prefix_in(keyspace, &[META_PREFIX])? {
            let (k, v) = item?;
            let key = k.get(1..).unwrap_or_default().to_vec();
            out.push((key, BlobMeta::decode(&v)?.len));
        }
        Ok(out)
    }

    /// Removes what no committed blob needs: chunk records of deleted,
    /// replaced or unfinished blobs, chunks no blob references, blob files
    /// holding no live chunk, and rewrites files mostly dead (or sealed under
    /// an old data-key epoch) so that their space comes back. Safe to run
    /// while writers and readers are at work.
    pub fn gc(&self) -> Result<BlobGcReport> {
        gc::run(self)
    }

    /// Deletes blob `key` so that no copy of its bytes stays readable: its
    /// record is deleted, the files holding its chunks are rewritten without
    /// them (live frames re-sealed into new files) and overwritten before they
    /// are unlinked, the blob keyspace is compacted down to its last level,
    /// and then [`Db::secure_delete_in`] of its record runs, whose key
    /// rotation moves every blob file to the new data-key epoch and destroys
    /// the old ones. Chunks other blobs share stay (they are theirs too).
    /// Returns whether the blob existed, and what the deletion did.
    pub fn secure_delete(&self, key: &[u8]) -> Result<(bool, crate::SecureDeleteReport)> {
        let db = self.db;
        let keyspace = self.keyspace()?.clone();
        let meta = match db.get_in(&keyspace, &meta_key(key))? {
            Some(v) => Some(BlobMeta::decode(&v)?),
            None => None,
        };
        let mut files = std::collections::HashSet::new();
        if let Some(meta) = meta {
            for item in gc::chunk_refs(self, meta.id)? {
                let hash = item?;
                if let Some(loc) = db.get_in(&keyspace, &format::location_key(&hash))? {
                    files.insert(format::Location::decode(&loc)?.file);
                }
            }
            db.delete_in(&keyspace, &meta_key(key))?;
        }
        gc::run_with(self, db.secure_delete_passes().max(1), &files)?;
        db.compact_range_in(&keyspace, None, None)?;
        let report = db.secure_delete_in(&keyspace, &meta_key(key))?;
        Ok((meta.is_some(), report))
    }

    /// Checks the blob store against its own records, beyond what
    /// [`Db::verify`] can see from the files alone: every chunk location points
    /// at an authentic frame of that chunk (a blob file cut short, removed, or
    /// holding other bytes is found here, where `Db::verify` could take a cut
    /// as a torn tail), and every committed blob's chunk records cover it
    /// exactly, each chunk stored intact. Returns (file or `blob KEY`, problem)
    /// pairs; empty when all is well.
    pub fn verify(&self) -> Result<Vec<(String, String)>> {
        gc::verify(self)
    }

    /// Counts and sizes of the blob store.
    pub fn stats(&self) -> Result<BlobStats> {
        gc::stats(self)
    }

    pub(crate) fn state(&self) -> &'db BlobState {
        self.db.blob_state()
    }

    pub(crate) fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>, reverse: bool, snapshot: Option<&crate::Snapshot>) -> Result<crate::DbIterator> {
        self.db.range_in(self.keyspace()?, start, end, reverse, snapshot)
    }
}
