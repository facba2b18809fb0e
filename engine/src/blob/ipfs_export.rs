//! Blobs as IPFS files: `BlobStore::export_car` writes a blob as a CAR v1 of a
//! UnixFS file (Kubo's defaults: 256 KiB chunks, raw leaves, balanced DAG),
//! and `BlobStore::import_car` stores the file a CAR holds as a blob, every
//! block's hash checked first.
//!
//! **Encrypted export (the default).** The file put into IPFS is the blob
//! sealed in segments of 256 KiB with AES-256-GCM-SIV under a key derived
//! from the store's master key (`integrity_key("ipfs export v1")`); the AAD
//! binds the segment's index and whether it is the last, so a segment cut,
//! moved or dropped fails to open. IPFS peers serve and pin the ciphertext and
//! learn its size and CIDs; only holders of this store's keys (or of a store
//! sharing its master key) can read it back. The sealing is deterministic
//! (nonce = segment index, a misuse-resistant cipher), so exporting the same
//! blob twice gives the same root CID; the price is that equal exports of one
//! store are recognisable as equal. With `plaintext`, the blob's bytes are the
//! file, as `ipfs add` would store it.
//!
//! **Import** takes either form: a file whose first segment opens under this
//! store's export key is unsealed (every segment must then open), anything
//! else is stored as it is (a CAR another IPFS node made). The CAR's blocks are
//! held in memory until the DAG is walked, so imports are for files of a few
//! hundred MiB.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crypto::{BlockKind, FileCipher, FileKey, TAG_LEN};
use sync::ipfs::{self, Cid};

use crate::blob::BlobStore;
use crate::error::{Error, Result};

/// Plaintext bytes per sealed segment.
pub const EXPORT_SEGMENT_BYTES: usize = 256 << 10;
const SEALED_SEGMENT_BYTES: usize = EXPORT_SEGMENT_BYTES + TAG_LEN;
/// Key-derivation purpose of the export key.
const EXPORT_KEY_PURPOSE: &[u8] = b"ipfs export v1";
/// The "file ids" the AAD carries: one for inner segments, one for the last.
const SEGMENT_ID: u64 = 0x1bf5_0000_0000_0001;
const LAST_SEGMENT_ID: u64 = 0x1bf5_0000_0000_0002;

fn ciphers(store: &BlobStore<'_>) -> (FileCipher, FileCipher) {
    let key = FileKey::from_bytes(*store.db().key_manager().integrity_key(EXPORT_KEY_PURPOSE));
    (FileCipher::new(&key, SEGMENT_ID, "ipfs export"), FileCipher::new(&key, LAST_SEGMENT_ID, "ipfs export"))
}

/// The blob sealed in segments, readable twice (a rewind to the start is the
/// only seek), as `write_car`'s two passes need.
struct SealedStream<R> {
    source: R,
    inner: FileCipher,
    last: FileCipher,
    index: u64,
    /// Sealed bytes of the current segment not yet read out.
    out: Vec<u8>,
    at: usize,
    done: bool,
    /// One plaintext segment read ahead, to know which segment is the last.
    ahead: Option<Vec<u8>>,
}

impl<R: Read + Seek> SealedStream<R> {
    fn new(source: R, (inner, last): (FileCipher, FileCipher)) -> Self {
        SealedStream { source, inner, last, index: 0, out: Vec::new(), at: 0, done: false, ahead: None }
    }

    fn read_segment(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; EXPORT_SEGMENT_BYTES];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.source.read(buf.get_mut(filled..).unwrap_or_default())?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Seals the next segment into `out`; false once every segment is out.
    fn next_segment(&mut self) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let current = match self.ahead.take() {
            Some(segment) => segment,
            None => self.read_segment()?,
        };
        let next = if current.len() == EXPORT_SEGMENT_BYTES { self.read_segment()? } else { Vec::new() };
        let is_last = next.is_empty();
        let cipher = if is_last { &self.last } else { &self.inner };
        self.out = cipher.seal(self.index, BlockKind::BlobChunk, &current);
        self.at = 0;
        self.index += 1;
        if is_last {
            self.done = true;
        } else {
            self.ahead = Some(next);
        }
        Ok(true)
    }
}

impl<R: Read + Seek> Read for SealedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at >= self.out.len() {
            if !self.next_segment()? {
                return Ok(0);
            }
        }
        let rest = self.out.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(rest.get(..n).unwrap_or_default());
        self.at += n;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SealedStream<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        if pos != SeekFrom::Start(0) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a sealed export stream only rewinds to its start"));
        }
        self.source.seek(SeekFrom::Start(0))?;
        self.index = 0;
        self.out.clear();
        self.at = 0;
        self.done = false;
        self.ahead = None;
        Ok(0)
    }
}

fn ipfs_error(e: ipfs::Error) -> Error {
    match e {
        ipfs::Error::Io(source) => Error::Io { file: "CAR file".into(), source },
        other => Error::InvalidArgument(format!("IPFS: {other}")),
    }
}

impl BlobStore<'_> {
    /// Writes blob `key` to `out` as a CAR v1 of one UnixFS file and returns
    /// its root CID, or `None` if there is no such blob. Encrypted (see the
    /// module documentation) unless `plaintext`.
    pub fn export_car(&self, key: &[u8], out: &mut dyn Write, plaintext: bool) -> Result<Option<Cid>> {
        let Some(reader) = self.reader(key)? else { return Ok(None) };
        let root = if plaintext {
            ipfs::write_car(reader, out)
        } else {
            ipfs::write_car(SealedStream::new(reader, ciphers(self)), out)
        };
        root.map(Some).map_err(ipfs_error)
    }

    /// Reads a CAR v1 of one UnixFS file from `input`, checks every block's
    /// hash, and stores the file as blob `key` (unsealed first when it is an
    /// encrypted export of this store). Returns the root CID, the blob's
    /// length and whether it was an encrypted export. Nothing is stored unless
    /// every block checks out.
    pub fn import_car(&self, key: &[u8], input: &mut dyn Read) -> Result<(Cid, u64, bool)> {
        let mut file = Vec::new();
        let (root, _) = ipfs::read_car_file(input, &mut file).map_err(ipfs_error)?;
        let (inner, last) = ciphers(self);
        let first = file.get(..file.len().min(SEALED_SEGMENT_BYTES)).unwrap_or_default();
        let sealed = first.len() >= TAG_LEN && {
            let cipher = if file.len() <= SEALED_SEGMENT_BYTES { &last } else { &inner };
            cipher.open(0, BlockKind::BlobChunk, first).is_ok()
        };
        if !sealed {
            let n = self.put(key, &mut file.as_slice())?;
            return Ok((root, n, false));
        }
        let segments: Vec<&[u8]> = file.chunks(SEALED_SEGMENT_BYTES).collect();
        let mut writer = self.writer(key)?;
        for (i, segment) in segments.iter().enumerate() {
            let cipher = if i + 1 == segments.len() { &last } else { &inner };
            let plain = cipher
                .open(i as u64, BlockKind::BlobChunk, segment)
                .map_err(|_| Error::InvalidArgument(format!("IPFS: segment {i} of the encrypted export does not open (cut, moved or altered)")))?;
            writer.write_all(&plain).map_err(|source| Error::Io { file: "blob".into(), source })?;
        }
        let n = writer.finish()?;
        Ok((root, n, true))
    }
}
