//! Reading a log back: recovery with torn-tail handling.
//!
//! The reader walks the frames from the end of the file header. Each frame either
//! yields its record, or ends the log cleanly (the end of the file, or nothing but
//! zeros to it: space preallocated for frames never written), or is a torn tail
//! (the remains of an append cut short by a crash: the log ends there), or is
//! corruption. The rules, also in `FORMAT.md`, are chosen so that no single damaged
//! byte of the frames of a complete log can pass for a torn tail or a clean end: a
//! torn tail needs fewer than 12 bytes or an all-zero header with something after
//! it, a header whose length check holds but whose payload runs past the end of
//! the file, or a frame that fails a check *and* shows 16 zero bytes where every
//! real frame has ciphertext (right after a failed header, or anywhere in a payload
//! whose crc fails) — a run one damaged byte of ciphertext cannot make. Everything
//! else that fails a check is reported as corruption with the file name and the
//! frame's offset.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{RandomAccessFile, Vfs};
use crypto::{BlockKind, FileCipher, FileKind, KeyManager, FILE_HEADER_LEN};

use crate::error::{Error, Result};
use crate::format::{
    block_kind_for, FrameHeader, FIRST_FRAME_OFFSET, FRAME_HEADER_LEN, MAX_SEALED_LEN, MIN_SEALED_LEN, TORN_ZERO_RUN,
};
use crate::writer::file_name;

/// Every intact record of a log, and where a torn tail began, if any.
#[derive(Debug)]
pub struct RecoveredLog {
    /// Decrypted payloads in order.
    pub records: Vec<Vec<u8>>,
    /// Offset of the first byte of a torn final record (the log should be truncated there).
    pub torn_tail_at: Option<u64>,
    /// Offset just past the last intact record. At a clean end the file may go on
    /// past it with zeros (space preallocated for frames never written).
    pub valid_len: u64,
}

/// Reads the records of one log file in order.
pub struct LogReader {
    file: Arc<dyn RandomAccessFile>,
    file_len: u64,
    cipher: FileCipher,
    block_kind: BlockKind,
    name: String,
    /// Offset of the next frame: just past the last record returned.
    offset: u64,
    torn_tail_at: Option<u64>,
    /// The log ended cleanly at `offset` (nothing but zeros, if anything, after it).
    clean_end: bool,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("file", &self.name)
            .field("offset", &self.offset)
            .field("torn_tail_at", &self.torn_tail_at)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// Opens the log at `path` (named by its file name in errors) and checks its
    /// header, which must be of `kind` and name `file_id`, the number in the file's
    /// name: a log of the store put under another log's name is refused.
    pub fn open(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, kind: FileKind, file_id: u64) -> Result<Self> {
        let name = file_name(path);
        let block_kind = block_kind_for(kind).ok_or_else(|| {
            Error::Crypto(crypto::Error::InvalidArgument(format!(
                "{name}: a log is a Wal or Manifest file, not {kind:?}"
            )))
        })?;
        let file = vfs.open(path).map_err(|source| Error::Io { file: name.clone(), source })?;
        let file_len = file.len();
        if file_len < FIRST_FRAME_OFFSET {
            // A log is created with its header in one append, so a short header is
            // damage (or not a log at all), never a torn record.
            return Err(Error::Corruption {
                file: name,
                offset: 0,
                reason: format!("file of {file_len} bytes is shorter than its {FILE_HEADER_LEN}-byte header"),
            });
        }
        let mut header = [0u8; FILE_HEADER_LEN];
        file.read_exact_at(&mut header, 0).map_err(|source| Error::Io { file: name.clone(), source })?;
        let cipher = keys.open_file(&header, kind, file_id, &name)?;
        Ok(LogReader {
            file,
            file_len,
            cipher,
            block_kind,
            name,
            offset: FIRST_FRAME_OFFSET,
            torn_tail_at: None,
            clean_end: false,
        })
    }

    /// The next record. `Ok(None)` at the clean end or at a torn tail (see
    /// [`LogReader::torn_tail_at`]); `Err(Corruption)` naming file and offset when a
    /// complete record fails its checks (mid-log damage).
    ///
    /// After an error the reader stays on the damaged frame: calling again reports
    /// the same error.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>> {
        if self.torn_tail_at.is_some() || self.clean_end {
            return Ok(None);
        }
        let offset = self.offset;
        let remaining = self.file_len.saturating_sub(offset);
        if remaining < FRAME_HEADER_LEN as u64 {
            return self.end_or_torn(offset, offset);
        }
        let mut raw = [0u8; FRAME_HEADER_LEN];
        self.read_at(&mut raw, offset)?;
        if raw.iter().all(|b| *b == 0) {
            // Space the file system allocated but no frame was written to (or the
            // crash left unwritten): the end, unless a frame's bytes follow.
            return self.end_or_torn(offset, offset + FRAME_HEADER_LEN as u64);
        }
        let header = FrameHeader::decode(&raw);
        let payload_at = offset + FRAME_HEADER_LEN as u64;
        let bad_header = if !header.len_checks() {
            Some("frame header failed its length check".to_string())
        } else if header.len < MIN_SEALED_LEN {
            Some(format!("sealed length {} is shorter than a tag", header.len))
        } else if header.len > MAX_SEALED_LEN {
            Some(format!("sealed length {} exceeds the maximum of {MAX_SEALED_LEN}", header.len))
        } else {
            None
        };
        if let Some(reason) = bad_header {
            // A real frame has at least 16 bytes of ciphertext after its header; zeros
            // there mean the header's bytes never all reached the disk.
            if self.zeros_at(payload_at, TORN_ZERO_RUN as u64)? {
                return Ok(self.torn(offset));
            }
            return Err(self.corruption(offset, reason));
        }
        if u64::from(header.len) > remaining - FRAME_HEADER_LEN as u64 {
            // The length is genuine (it passed its check) but the payload never fully
            // reached the disk: the append was cut short.
            return Ok(self.torn(offset));
        }
        // The length is bounded by MAX_SEALED_LEN and by the file's size at this point.
        let len = usize::try_from(header.len).map_err(|_| self.corruption(offset, "sealed length overflows usize"))?;
        let mut payload = vec![0u8; len];
        self.read_at(&mut payload, payload_at)?;
        let crc = crc32fast::hash(&payload);
        if crc != header.crc {
            if has_zero_run(&payload, TORN_ZERO_RUN) {
                // Part of the payload (most often its tag, the last bytes written)
                // never reached the disk: an append into preallocated space cut short.
                return Ok(self.torn(offset));
            }
            return Err(self.corruption(
                offset,
                format!("payload checksum mismatch: stored {:#010x}, computed {crc:#010x}", header.crc),
            ));
        }
        self.cipher.open_in_place(offset, self.block_kind, &mut payload)?;
        self.offset = payload_at + u64::from(header.len);
        Ok(Some(payload))
    }

    /// Where a torn final record starts, once `next_record` returned `None` because of one.
    pub fn torn_tail_at(&self) -> Option<u64> {
        self.torn_tail_at
    }

    /// Offset just past the last record returned (the end of the header before the first).
    pub fn valid_len(&self) -> u64 {
        self.offset
    }

    /// The file's name, as errors report it.
    pub fn file_name(&self) -> &str {
        &self.name
    }

    /// Reads the whole log.
    pub fn read_all(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, kind: FileKind, file_id: u64) -> Result<RecoveredLog> {
        let mut reader = LogReader::open(vfs, path, keys, kind, file_id)?;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(RecoveredLog { records, torn_tail_at: reader.torn_tail_at, valid_len: reader.offset })
    }

    fn torn(&mut self, offset: u64) -> Option<Vec<u8>> {
        self.torn_tail_at = Some(offset);
        None
    }

    /// At a frame offset with no frame: a clean end if every byte from `zeros_from`
    /// to the end of the file is zero, else a torn tail at `offset`.
    fn end_or_torn(&mut self, offset: u64, zeros_from: u64) -> Result<Option<Vec<u8>>> {
        let rest = self.file_len.saturating_sub(zeros_from);
        if self.zeros_at(zeros_from, rest)? {
            self.clean_end = true;
            Ok(None)
        } else {
            Ok(self.torn(offset))
        }
    }

    /// Whether the `len` bytes at `offset` (fewer if the file ends first) are all zero.
    fn zeros_at(&self, offset: u64, len: u64) -> Result<bool> {
        const CHUNK: u64 = 64 * 1024;
        let end = offset.saturating_add(len).min(self.file_len);
        let mut at = offset;
        let mut buf = Vec::new();
        while at < end {
            let n = (end - at).min(CHUNK);
            // Bounded by CHUNK.
            buf.resize(n as usize, 0);
            self.read_at(&mut buf, at)?;
            if buf.iter().any(|b| *b != 0) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                // The length was checked against the file's size at open; a shorter
                // read means the file shrank underneath the reader.
                self.corruption(offset, "file shrank while being read")
            } else {
                Error::Io { file: self.name.clone(), source }
            }
        })
    }

    fn corruption(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corruption { file: self.name.clone(), offset, reason: reason.into() }
    }
}

/// Whether `bytes` holds `run` consecutive zero bytes.
pub(crate) fn has_zero_run(bytes: &[u8], run: usize) -> bool {
    let mut zeros = 0;
    for b in bytes {
        zeros = if *b == 0 { zeros + 1 } else { 0 };
        if zeros >= run {
            return true;
        }
    }
    false
}
