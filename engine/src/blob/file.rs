//! Blob files: `NNNNNN.blob`, a crypto header (`FileKind::Blob`, the file's own
//! key) followed by chunk frames, appended and never rewritten
//! (`engine/FORMAT.md`, "Blob files"):
//!
//! ```text
//! frame at offset o: sealed_len u32 LE | sealed (sealed_len bytes)
//! sealed = AES-256-GCM-SIV(file key, nonce(o, BlobChunk), AAD(file id, o, BlobChunk),
//!                          version u8 | codec u8 | plain_len u32 LE | hash [32] | payload)
//! ```
//!
//! The AAD binds the frame to its file and offset; the keyed hash inside binds
//! it to its content, which the reader recomputes after decompressing.

use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{RandomAccessFile, Vfs, WritableFile};
use crypto::{BlockKind, FileCipher, FileKind, KeyManager, FILE_HEADER_LEN};

use crate::blob::format::{
    blob_file, ChunkHash, Location, CHUNK_HEADER_LEN, CHUNK_VERSION, CODEC_RAW, CODEC_ZSTD, FRAME_PREFIX_LEN, HASH_LEN, MAX_CHUNK_BYTES,
    MAX_SEALED_BYTES, MIN_SEALED_BYTES,
};
use crate::error::{Error, Result};

/// A blob file being appended to.
pub(crate) struct BlobFileWriter {
    pub(crate) number: u64,
    name: String,
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    len: u64,
    synced: bool,
    frame: Vec<u8>,
}

impl BlobFileWriter {
    /// Creates blob file `number` in `dir` and writes its header (not synced).
    pub(crate) fn create(vfs: &dyn Vfs, dir: &Path, keys: &KeyManager, number: u64) -> Result<BlobFileWriter> {
        let name = blob_file(number);
        let (header, cipher) = keys.new_file(FileKind::Blob, number, &name);
        let file = vfs.create(&dir.join(&name)).map_err(|e| Error::from_io(name.clone(), e))?;
        file.append(&header).map_err(|e| Error::from_io(name.clone(), e))?;
        // The directory entry must be durable before anything points into the file.
        vfs.sync_dir(dir).map_err(|e| Error::from_io(".".into(), e))?;
        Ok(BlobFileWriter { number, name, file, cipher, len: FILE_HEADER_LEN as u64, synced: false, frame: Vec::new() })
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one chunk (`payload` already compressed if `codec` says so) and
    /// returns where it is. Not durable until [`BlobFileWriter::sync`].
    pub(crate) fn append(&mut self, hash: &ChunkHash, plain_len: u32, codec: u8, payload: &[u8]) -> Result<Location> {
        let offset = self.len;
        let sealed_len = CHUNK_HEADER_LEN + payload.len() + crypto::TAG_LEN;
        if sealed_len > MAX_SEALED_BYTES {
            return Err(Error::Internal(format!("blob chunk of {sealed_len} sealed bytes is over the limit")));
        }
        let sealed_len = sealed_len as u32;
        self.frame.clear();
        self.frame.extend_from_slice(&sealed_len.to_le_bytes());
        self.frame.push(CHUNK_VERSION);
        self.frame.push(codec);
        self.frame.extend_from_slice(&plain_len.to_le_bytes());
        self.frame.extend_from_slice(hash);
        self.frame.extend_from_slice(payload);
        self.cipher.seal_tail_in_place(offset, BlockKind::BlobChunk, &mut self.frame, FRAME_PREFIX_LEN);
        self.file.append(&self.frame).map_err(|e| Error::from_io(self.name.clone(), e))?;
        self.len += self.frame.len() as u64;
        self.synced = false;
        Ok(Location { file: self.number, offset, sealed_len, plain_len })
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if !self.synced {
            self.file.sync().map_err(|e| Error::from_io(self.name.clone(), e))?;
            self.synced = true;
        }
        Ok(())
    }
}

/// A blob file open for reading: its handle and cipher.
pub(crate) struct BlobFileReader {
    name: String,
    file: Arc<dyn RandomAccessFile>,
    cipher: FileCipher,
}

impl BlobFileReader {
    /// Opens blob file `number` and unwraps its key.
    pub(crate) fn open(vfs: &dyn Vfs, dir: &Path, keys: &KeyManager, number: u64) -> Result<BlobFileReader> {
        let name = blob_file(number);
        let file = vfs.open(&dir.join(&name)).map_err(|e| Error::from_io(name.clone(), e))?;
        let mut header = [0u8; FILE_HEADER_LEN];
        file.read_exact_at(&mut header, 0).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Corruption { file: name.clone(), offset: 0, reason: "shorter than its header".into() }
            } else {
                Error::from_io(name.clone(), e)
            }
        })?;
        let cipher = keys.open_file(&header, FileKind::Blob, number, &name)?;
        Ok(BlobFileReader { name, file, cipher })
    }

    /// The file's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Reads, authenticates and decodes the frame at `at`: `(codec, plain_len,
    /// hash, payload)` with the payload still compressed. `expected_sealed`
    /// (from the chunk's location) must match the frame's own length.
    pub(crate) fn read_frame(&self, at: u64, expected_sealed: Option<u32>, buf: &mut Vec<u8>) -> Result<Frame> {
        let corrupt = |reason: String| Error::Corruption { file: self.name.clone(), offset: at, reason };
        let mut prefix = [0u8; FRAME_PREFIX_LEN];
        self.read_at(&mut prefix, at)?;
        let sealed_len = u32::from_le_bytes(prefix);
        if let Some(expected) = expected_sealed {
            if sealed_len != expected {
                return Err(corrupt(format!("blob chunk frame of {sealed_len} sealed bytes, its location says {expected}")));
            }
        }
        let n = sealed_len as usize;
        if !(MIN_SEALED_BYTES..=MAX_SEALED_BYTES).contains(&n) {
            return Err(corrupt(format!("blob chunk frame length {n} is out of range")));
        }
        buf.clear();
        buf.resize(n, 0);
        self.read_at(buf, at + FRAME_PREFIX_LEN as u64)?;
        self.cipher.open_in_place(at, BlockKind::BlobChunk, buf)?;
        let (head, _) = buf.split_at(CHUNK_HEADER_LEN.min(buf.len()));
        let head: &[u8; CHUNK_HEADER_LEN] = head.try_into().map_err(|_| corrupt("blob chunk shorter than its header".into()))?;
        if head[0] != CHUNK_VERSION {
            return Err(corrupt(format!("blob chunk version {}", head[0])));
        }
        let codec = head[1];
        if codec != CODEC_RAW && codec != CODEC_ZSTD {
            return Err(corrupt(format!("blob chunk codec {codec}")));
        }
        let plain_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
        if plain_len as usize > MAX_CHUNK_BYTES {
            return Err(corrupt(format!("blob chunk of {plain_len} bytes is over the limit")));
        }
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(&head[6..6 + HASH_LEN]);
        Ok(Frame { codec, plain_len, hash, next: at + FRAME_PREFIX_LEN as u64 + n as u64 })
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<()> {
        self.file.read_exact_at(buf, at).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Corruption { file: self.name.clone(), offset: at, reason: "blob chunk frame cut short by the end of the file".into() }
            } else {
                Error::from_io(self.name.clone(), e)
            }
        })
    }

    /// The file's length now.
    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }
}

/// What [`BlobFileReader::read_frame`] found; the payload is `buf[CHUNK_HEADER_LEN..]`.
pub(crate) struct Frame {
    pub(crate) codec: u8,
    pub(crate) plain_len: u32,
    pub(crate) hash: ChunkHash,
    /// Offset of the next frame.
    pub(crate) next: u64,
}

/// Decodes the payload of a frame read into `sealed_buf` into `out`, checking
/// its length and its keyed hash.
pub(crate) fn decode_payload(
    file: &str,
    at: u64,
    frame: &Frame,
    sealed_buf: &[u8],
    hasher: &blake3::Hasher,
    decompressor: &mut zstd::bulk::Decompressor<'static>,
    out: &mut Vec<u8>,
) -> Result<()> {
    let corrupt = |reason: String| Error::Corruption { file: file.into(), offset: at, reason };
    let payload = sealed_buf.get(CHUNK_HEADER_LEN..).unwrap_or_default();
    out.clear();
    match frame.codec {
        CODEC_ZSTD => {
            out.reserve(frame.plain_len as usize);
            decompressor
                .decompress_to_buffer(payload, out)
                .map_err(|e| corrupt(format!("blob chunk does not decompress: {e}")))?;
        }
        _ => out.extend_from_slice(payload),
    }
    if out.len() != frame.plain_len as usize {
        return Err(corrupt(format!("blob chunk holds {} bytes, its header says {}", out.len(), frame.plain_len)));
    }
    let mut h = hasher.clone();
    h.update(out);
    if *h.finalize().as_bytes() != frame.hash {
        return Err(corrupt("blob chunk does not match its hash".into()));
    }
    Ok(())
}

/// Reads every frame of blob file `number`; returns the number of chunks.
/// A frame cut short by the end of the file is a torn tail (`Ok(Err(offset))`
/// after the chunks before it): what a crash in the middle of an append leaves,
/// never referenced by a committed blob (the writer syncs before it commits).
pub(crate) fn verify_blob_file(vfs: &dyn Vfs, dir: &Path, keys: &KeyManager, number: u64) -> Result<(u64, Option<u64>)> {
    let size = vfs.file_size(&dir.join(blob_file(number))).map_err(|e| Error::from_io(blob_file(number), e))?;
    if size < FILE_HEADER_LEN as u64 {
        // Cut off while its header was written: holds nothing sealed.
        return Ok((0, Some(0)));
    }
    let reader = BlobFileReader::open(vfs, dir, keys, number)?;
    let hasher = blake3::Hasher::new_keyed(&keys.integrity_key(crate::blob::format::DEDUP_KEY_PURPOSE));
    let mut decompressor = zstd::bulk::Decompressor::new().map_err(|e| Error::Internal(format!("zstd: {e}")))?;
    let len = reader.len();
    let mut at = FILE_HEADER_LEN as u64;
    let mut chunks = 0;
    let (mut sealed, mut plain) = (Vec::new(), Vec::new());
    while at < len {
        if len - at < FRAME_PREFIX_LEN as u64 {
            return Ok((chunks, Some(at)));
        }
        let mut prefix = [0u8; FRAME_PREFIX_LEN];
        reader.read_at(&mut prefix, at)?;
        let sealed_len = u64::from(u32::from_le_bytes(prefix));
        if sealed_len <= MAX_SEALED_BYTES as u64 && at + FRAME_PREFIX_LEN as u64 + sealed_len > len {
            return Ok((chunks, Some(at)));
        }
        let frame = reader.read_frame(at, None, &mut sealed)?;
        decode_payload(reader.name(), at, &frame, &sealed, &hasher, &mut decompressor, &mut plain)?;
        chunks += 1;
        at = frame.next;
    }
    Ok((chunks, None))
}
