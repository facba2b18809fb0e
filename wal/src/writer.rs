//! Appending framed, encrypted records, and group commit.
//!
//! Each record becomes one frame (see `FORMAT.md`) written with a single
//! `WritableFile::append`, so a crash leaves at most one partial frame at the end,
//! which recovery reads as a torn tail. Durability is decoupled from appending:
//! [`LogWriter::sync_to`] lets one fsync cover every record appended before it
//! started, so N concurrent committers pay for far fewer than N fsyncs. Any failed
//! write stops appends to the log, and a failed fsync stops everything, because after
//! a failed fsync the kernel may have dropped dirty pages and a retry could report
//! success for data that is gone. A failed write leaves the frames before it intact
//! (the partial frame it may have left is a torn tail), so syncs that cover only
//! those frames still run: a committer whose record was appended before another
//! writer's append failed (say on a full disk) still gets its record made durable.
//!
//! A log created with a [`Preallocation`] is sized ahead of its appends, in steps,
//! so that the fsync of a group commit has only data to write, no new file size to
//! record; the zeros after the last frame read back as a clean end.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crypto::vfs::{Vfs, WritableFile};
use crypto::{BlockKind, FileCipher, FileKind, KeyManager};
use parking_lot::{Condvar, Mutex};

use crate::error::{io_error_kind, Error, FailedOp, FailureCause, Result};
use crate::format::{block_kind_for, FrameHeader, FIRST_FRAME_OFFSET, FRAME_HEADER_LEN, MAX_RECORD_BYTES};

/// Preallocation sizes are rounded up to this (a file-system block), so extensions
/// end on block boundaries.
const PREALLOCATION_ALIGN: u64 = 4096;

/// How a log file is sized ahead of its appends (`FORMAT.md`, "Preallocation").
/// At create the file is made `initial_bytes` long; an append that would pass the
/// preallocated end first extends it by the file's size so far (doubling it), at
/// most by `max_step_bytes`, and always far enough for that append. Sizes are
/// rounded up to 4 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preallocation {
    /// The file's size at create, header included.
    pub initial_bytes: u64,
    /// The largest extension beyond what the append that needs it takes.
    pub max_step_bytes: u64,
}

impl Preallocation {
    /// The size to extend a file preallocated to `current` bytes to, so that an
    /// append ending at `end` fits.
    fn next_size(&self, current: u64, end: u64) -> u64 {
        let step = current.clamp(1, self.max_step_bytes.max(1));
        round_up(current.saturating_add(step).max(end))
    }
}

fn round_up(len: u64) -> u64 {
    len.div_ceil(PREALLOCATION_ALIGN).saturating_mul(PREALLOCATION_ALIGN)
}

fn is_no_space(e: &std::io::Error) -> bool {
    io_error_kind(e) == std::io::ErrorKind::StorageFull
}

/// Group-commit state, guarded by one mutex and announced through one condvar.
#[derive(Debug, Default)]
struct SyncState {
    /// Every byte below this offset is durable.
    synced_offset: u64,
    /// A leader is inside `WritableFile::sync`; others wait for it instead of syncing.
    sync_in_progress: bool,
    /// The first sync failure; once set, nothing more is written or synced.
    poisoned: Option<(String, FailureCause)>,
    /// The first append failure; once set, nothing more is appended, but the
    /// frames before the failed one can still be synced.
    append_failed: Option<(String, FailureCause)>,
}

/// Appends records to one log file.
pub struct LogWriter {
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    block_kind: BlockKind,
    name: String,
    file_id: u64,
    /// Serializes appends: a frame's offset is part of its nonce, so reading the
    /// length, sealing and writing must not interleave with another append.
    append_lock: Mutex<()>,
    /// Bytes written so far, header included; the offset of the next frame.
    len: AtomicU64,
    /// How the file is sized ahead of its appends, if it is.
    preallocation: Option<Preallocation>,
    /// The size preallocation gave the file (0 if none); changed under `append_lock`.
    preallocated: AtomicU64,
    state: Mutex<SyncState>,
    synced: Condvar,
    sync_count: AtomicU64,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("file", &self.name)
            .field("file_id", &self.file_id)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The name errors use for `path`: its file name, relative to the store directory.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

impl LogWriter {
    /// Creates the log file at `path` for file number `file_id` and writes its
    /// header. `kind` is `FileKind::Wal` or `FileKind::Manifest`. The header is not
    /// synced here; the first `sync` makes it durable with the first records.
    /// Making the new directory entry durable (`Vfs::sync_dir`) is the caller's job.
    pub fn create(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, file_id: u64, kind: FileKind) -> Result<Self> {
        Self::create_with(vfs, path, keys, file_id, kind, None)
    }

    /// Like [`LogWriter::create`], and sizes the file ahead of its appends as
    /// `preallocation` says (`WritableFile::preallocate`). The size set here is
    /// durable with the first sync, like the header; a file system without room
    /// for `initial_bytes` leaves the file unpreallocated until the first append,
    /// which then preallocates what it needs or fails.
    pub fn create_preallocated(
        vfs: &Arc<dyn Vfs>,
        path: &Path,
        keys: &KeyManager,
        file_id: u64,
        kind: FileKind,
        preallocation: Preallocation,
    ) -> Result<Self> {
        let log = Self::create_with(vfs, path, keys, file_id, kind, Some(preallocation))?;
        let initial = round_up(preallocation.initial_bytes.max(FIRST_FRAME_OFFSET));
        match log.file.preallocate(initial) {
            Ok(()) => log.preallocated.store(initial, Ordering::Release),
            Err(e) if is_no_space(&e) => {}
            Err(source) => return Err(Error::Io { file: log.name.clone(), source }),
        }
        Ok(log)
    }

    fn create_with(
        vfs: &Arc<dyn Vfs>,
        path: &Path,
        keys: &KeyManager,
        file_id: u64,
        kind: FileKind,
        preallocation: Option<Preallocation>,
    ) -> Result<Self> {
        let name = file_name(path);
        let block_kind = block_kind_for(kind).ok_or_else(|| {
            Error::Crypto(crypto::Error::InvalidArgument(format!(
                "{name}: a log is a Wal or Manifest file, not {kind:?}"
            )))
        })?;
        let file = vfs.create(path).map_err(|source| Error::Io { file: name.clone(), source })?;
        let (header, cipher) = keys.new_file(kind, file_id, &name);
        file.append(&header).map_err(|source| Error::Io { file: name.clone(), source })?;
        Ok(LogWriter {
            file,
            cipher,
            block_kind,
            name,
            file_id,
            append_lock: Mutex::new(()),
            len: AtomicU64::new(FIRST_FRAME_OFFSET),
            preallocation,
            preallocated: AtomicU64::new(0),
            state: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            sync_count: AtomicU64::new(0),
        })
    }

    /// Appends one record (framed and sealed) and returns the file offset just past it.
    /// Callers serialize `append`; it may run while another thread is in `sync_to`.
    ///
    /// A failed write returns the I/O error and poisons the log for appends: later
    /// appends fail with [`Error::Poisoned`], and the caller moves to a new log.
    /// `sync_to` still makes the frames before the failed one durable. The partial
    /// frame the failure may have left is read back as a torn tail.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_with(payload.len(), &mut |buf| buf.extend_from_slice(payload))
    }

    /// Like [`LogWriter::append`], with the record written by `write` straight
    /// into the frame buffer (no copy of the record is made): `write` appends
    /// exactly the record's bytes, `len` of them, to the buffer it is given.
    pub fn append_with(&self, len: usize, write: &mut dyn FnMut(&mut Vec<u8>)) -> Result<u64> {
        if len > MAX_RECORD_BYTES {
            return Err(Error::RecordTooLarge { len, max: MAX_RECORD_BYTES });
        }
        let _serial = self.append_lock.lock();
        self.check_not_poisoned()?;
        let offset = self.len.load(Ordering::Acquire);
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + len + crypto::TAG_LEN);
        frame.resize(FRAME_HEADER_LEN, 0);
        write(&mut frame);
        if frame.len() - FRAME_HEADER_LEN != len {
            return Err(Error::Crypto(crypto::Error::InvalidArgument(format!(
                "{}: record announced {len} bytes but wrote {}",
                self.name,
                frame.len() - FRAME_HEADER_LEN
            ))));
        }
        self.cipher.seal_tail_in_place(offset, self.block_kind, &mut frame, FRAME_HEADER_LEN);
        let header = FrameHeader::for_payload(frame.get(FRAME_HEADER_LEN..).unwrap_or_default());
        if let Some(h) = frame.get_mut(..FRAME_HEADER_LEN) {
            h.copy_from_slice(&header.encode());
        }
        let end = offset + frame.len() as u64;
        // One append per frame: a crash can tear only the last frame, never interleave
        // two. Room for it is made first, so a full disk fails before anything is written.
        if let Err(source) = self.make_room(end).and_then(|()| self.file.append(&frame)) {
            self.state.lock().append_failed.get_or_insert_with(|| {
                (format!("append at offset {offset} failed: {source}"), FailureCause::new(FailedOp::Append, &source))
            });
            return Err(Error::Io { file: self.name.clone(), source });
        }
        self.len.store(end, Ordering::Release);
        Ok(end)
    }

    /// Extends a preallocated file so that an append ending at `end` lands inside
    /// it; on a full disk, by just what that append needs. The caller holds
    /// `append_lock`. The new size is durable with the sync that covers the append.
    fn make_room(&self, end: u64) -> std::io::Result<()> {
        let Some(preallocation) = self.preallocation else { return Ok(()) };
        let current = self.preallocated.load(Ordering::Acquire);
        if end <= current {
            return Ok(());
        }
        let step = preallocation.next_size(current, end);
        let size = match self.file.preallocate(step) {
            Ok(()) => step,
            Err(e) if is_no_space(&e) => {
                self.file.preallocate(end)?;
                end
            }
            Err(e) => return Err(e),
        };
        self.preallocated.store(size, Ordering::Release);
        Ok(())
    }

    /// Makes everything up to `offset` durable. Concurrent callers share fsyncs:
    /// a caller whose offset an in-flight or finished sync already covers does not
    /// sync again. After a failed sync the log is poisoned. A failed append does
    /// not stop syncs: `len()` did not advance past the failed frame, so a sync
    /// covers only the frames appended whole before it.
    ///
    /// An `offset` beyond [`LogWriter::len`] is treated as `len()`: only appended
    /// bytes can be made durable.
    pub fn sync_to(&self, offset: u64) -> Result<()> {
        let offset = offset.min(self.len());
        let mut state = self.state.lock();
        loop {
            // Bytes synced before a later failure stay durable, so their callers succeed.
            if state.synced_offset >= offset {
                return Ok(());
            }
            if let Some((reason, cause)) = &state.poisoned {
                return Err(Error::Poisoned { file: self.name.clone(), reason: reason.clone(), cause: *cause });
            }
            if !state.sync_in_progress {
                break;
            }
            // The running sync may cover `offset`; wait for it and look again.
            self.synced.wait(&mut state);
        }
        // Leader: this fsync covers every record appended before it starts, which is
        // what lets the waiters that queued up behind the previous sync share it.
        state.sync_in_progress = true;
        let target = self.len();
        drop(state);
        let started = std::time::Instant::now();
        let result = self.file.sync();
        self.sync_count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("synapsed_wal_syncs_total").increment(1);
        metrics::histogram!("synapsed_wal_sync_duration_seconds").record(started.elapsed());
        let mut state = self.state.lock();
        state.sync_in_progress = false;
        let outcome = match result {
            Ok(()) => {
                state.synced_offset = state.synced_offset.max(target);
                Ok(())
            }
            Err(source) => {
                state
                    .poisoned
                    .get_or_insert_with(|| (format!("fsync failed: {source}"), FailureCause::new(FailedOp::Sync, &source)));
                Err(Error::Io { file: self.name.clone(), source })
            }
        };
        drop(state);
        self.synced.notify_all();
        outcome
    }

    /// Makes every appended record durable.
    pub fn sync(&self) -> Result<()> {
        self.sync_to(self.len())
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// The size preallocation gave the file (0 for a log created without it): the
    /// file's length on disk while it is larger than [`LogWriter::len`].
    pub fn preallocated_len(&self) -> u64 {
        self.preallocated.load(Ordering::Acquire)
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == FIRST_FRAME_OFFSET
    }

    /// The file number.
    pub fn file_id(&self) -> u64 {
        self.file_id
    }

    /// The file's name, as errors report it.
    pub fn file_name(&self) -> &str {
        &self.name
    }

    /// How many fsyncs this log has issued (successful or not); with group commit
    /// it is far below the number of `sync_to` calls under concurrent load.
    pub fn sync_count(&self) -> u64 {
        self.sync_count.load(Ordering::Relaxed)
    }

    /// Offset below which every byte is known durable.
    pub fn synced_len(&self) -> u64 {
        self.state.lock().synced_offset
    }

    /// Whether an earlier failed append or sync stopped appends to this log.
    pub fn is_poisoned(&self) -> bool {
        let state = self.state.lock();
        state.poisoned.is_some() || state.append_failed.is_some()
    }

    fn check_not_poisoned(&self) -> Result<()> {
        let state = self.state.lock();
        match state.poisoned.as_ref().or(state.append_failed.as_ref()) {
            Some((reason, cause)) => {
                Err(Error::Poisoned { file: self.name.clone(), reason: reason.clone(), cause: *cause })
            }
            None => Ok(()),
        }
    }
}
