//! Checkpoints: a consistent, openable copy of a store at one point, the basis
//! of every backup (RocksDB's `Checkpoint`).
//!
//! Under the writer's lock and the table-work lock (order 1 then 2, as a
//! keyspace drop takes them), no batch is appended, no memtable switched, no
//! table created or removed and no manifest edit written, so the live
//! manifest, the WAL segments it expects and the tables of the current version
//! form one state. Tables are immutable: they are hard-linked when the
//! checkpoint lies on the same file system and the store never overwrites
//! files in place (`secure_delete_passes` = 0), else copied. Everything else
//! (`CURRENT`, the live manifest, `KEYSLOTS`, `KEYRING`, every WAL segment) is
//! copied; the live WAL segment only up to its last whole frame, without its
//! preallocated tail. The copy is then synced, so it opens with the store's
//! credentials and replays the WAL exactly as the store would after a crash
//! at that point. Files are copied as they are: everything stays encrypted.
//!
//! Holding the writer's lock stalls writers while the (small) non-table files
//! are copied and the tables linked; copying tables when links are not
//! possible stalls them longer (in proportion to the store's size).

use std::collections::HashSet;
use std::io;
use std::path::Path;

use super::Db;
use crate::{Error, Result};

/// One file of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointFile {
    /// File name inside the checkpoint directory (no directory part).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Whether the file never changes once written (a table): a backup uploads
    /// such a file once and shares it between backups.
    pub immutable: bool,
    /// Whether the file is a hard link to the store's own file.
    pub linked: bool,
}

/// What [`Db::checkpoint`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// Every file of the checkpoint, in name order.
    pub files: Vec<CheckpointFile>,
    /// The last sequence number the checkpoint holds.
    pub last_seqno: u64,
}

/// Bytes copied per read.
const COPY_CHUNK_BYTES: usize = 1 << 20;

impl Db {
    /// Writes a consistent copy of the store into `dir`, which must not exist
    /// or be empty. The copy opens with the same credentials (it is the same
    /// store at one point: same keys, same store id) and passes `verify`.
    /// Writers wait while it is taken (see the module documentation); readers
    /// do not. Refused on a read-only handle.
    ///
    /// Tables are hard-linked where possible. A store with
    /// `secure_delete_passes` > 0 gets copies instead, because it overwrites
    /// obsolete tables in place: a link would let that overwrite reach the
    /// checkpoint. A `secure_delete` run later on the store still overwrites
    /// linked tables it retires, which is what it is for; such a checkpoint
    /// then fails `verify` by name rather than serving deleted data.
    pub fn checkpoint(&self, dir: &Path) -> Result<CheckpointReport> {
        let inner = &self.inner;
        inner.check_writable()?;
        prepare_dir(inner.vfs.as_ref(), dir)?;
        let link_allowed = inner.options.secure_delete_passes == 0;
        let writer = inner.pipeline.writer.lock();
        let _work = inner.sched.work.lock();
        let src = inner.dir.as_path();
        let live_wal = writer.wal.as_ref().map(|w| (w.file_name().to_string(), w.len()));
        let manifest = crypto::names::manifest_file(inner.versions.manifest_number());
        let tables: HashSet<u64> = inner.versions.current().table_numbers().collect();
        let names = inner.vfs.list_dir(src).map_err(|source| Error::Io { file: src.display().to_string(), source })?;
        let mut files = Vec::new();
        for name in names {
            let (immutable, limit) = if let Some(number) = crypto::names::table_number(&name) {
                if !tables.contains(&number) {
                    continue;
                }
                (true, None)
            } else if crate::blob::format::blob_number(&name).is_some() {
                // Blob files take appends while later blobs share them, so
                // they are copied (their committed frames end before the
                // copy's length; a frame in flight at most leaves a torn tail
                // that the blob records never reference).
                (false, None)
            } else if crypto::names::wal_number(&name).is_some() {
                let limit = live_wal.as_ref().filter(|(live, _)| *live == name).map(|(_, len)| *len);
                (false, limit)
            } else if name == manifest || name == compaction::CURRENT_FILE || name == crypto::KEYSLOTS_FILE || name == crypto::KEYRING_FILE {
                (false, None)
            } else {
                continue;
            };
            let from = src.join(&name);
            let to = dir.join(&name);
            let linked = immutable && link_allowed && try_link(inner.vfs.as_ref(), &from, &to);
            let bytes = if linked {
                inner.vfs.file_size(&to).map_err(|source| Error::Io { file: name.clone(), source })?
            } else {
                copy_file(inner.vfs.as_ref(), &from, &to, limit).map_err(|source| Error::Io { file: name.clone(), source })?
            };
            files.push(CheckpointFile { name, bytes, immutable, linked });
        }
        let last_seqno = writer.last_seqno;
        drop(_work);
        drop(writer);
        inner.vfs.sync_dir(dir).map_err(|source| Error::Io { file: dir.display().to_string(), source })?;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        for needed in [compaction::CURRENT_FILE, crypto::KEYSLOTS_FILE, crypto::KEYRING_FILE, manifest.as_str()] {
            if !files.iter().any(|f| f.name == needed) {
                return Err(Error::Internal(format!("checkpoint: {needed} was not found in the store directory")));
            }
        }
        Ok(CheckpointReport { files, last_seqno })
    }
}

/// Creates `dir` (mode 0700 through the store's file system) or accepts an
/// existing empty one.
fn prepare_dir(vfs: &dyn crypto::Vfs, dir: &Path) -> Result<()> {
    if vfs.exists(dir) {
        let entries = vfs.list_dir(dir).map_err(|source| Error::Io { file: dir.display().to_string(), source })?;
        if !entries.is_empty() {
            return Err(Error::InvalidArgument(format!("checkpoint directory {} is not empty", dir.display())));
        }
        return Ok(());
    }
    vfs.create_dir_all(dir).map_err(|source| Error::Io { file: dir.display().to_string(), source })
}

/// Hard-links `from` to `to` when both are real files of one file system.
/// The sizes are compared first so that a store on another [`crypto::Vfs`]
/// (a simulated one) is copied through it rather than linked to an unrelated
/// real file of the same name.
fn try_link(vfs: &dyn crypto::Vfs, from: &Path, to: &Path) -> bool {
    let Ok(real) = std::fs::metadata(from) else { return false };
    if vfs.file_size(from).ok() != Some(real.len()) || vfs.exists(to) {
        return false;
    }
    std::fs::hard_link(from, to).is_ok()
}

/// Copies `from` to `to` through the file system of the store, at most `limit`
/// bytes, and syncs the copy. Returns the bytes copied.
fn copy_file(vfs: &dyn crypto::Vfs, from: &Path, to: &Path, limit: Option<u64>) -> io::Result<u64> {
    let source = vfs.open(from)?;
    let len = limit.map_or(source.len(), |l| l.min(source.len()));
    let out = vfs.create(to)?;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut offset = 0u64;
    while offset < len {
        let n = usize::try_from((len - offset).min(COPY_CHUNK_BYTES as u64)).unwrap_or(COPY_CHUNK_BYTES);
        let chunk = buf.get_mut(..n).ok_or_else(|| io::Error::other("copy chunk out of range"))?;
        source.read_exact_at(chunk, offset)?;
        out.append(chunk)?;
        offset += n as u64;
    }
    out.sync()?;
    Ok(len)
}
