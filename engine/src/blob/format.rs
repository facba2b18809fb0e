//! The blob store's constants and byte layouts: blob-file frames and the
//! records it keeps in its internal keyspace `_blob` (`engine/FORMAT.md`,
//! "Blob files" and "The blob keyspace"). Everything on disk is fixed-width
//! little-endian except the key parts, which are big-endian so that keys sort
//! by blob id and by offset.

use crate::error::{Error, Result};

/// Name of the internal keyspace holding blob metadata and the chunk index.
pub(crate) const BLOB_KEYSPACE: &str = "_blob";

/// Smallest chunk FastCDC cuts (except the last chunk of a blob).
pub(crate) const MIN_CHUNK_BYTES: usize = 256 << 10;
/// Average chunk size FastCDC aims at.
pub(crate) const AVG_CHUNK_BYTES: usize = 1 << 20;
/// Largest chunk: FastCDC cuts here at the latest. Bounds every buffer the
/// writer and the reader hold.
pub(crate) const MAX_CHUNK_BYTES: usize = 4 << 20;
const _: () = assert!(MIN_CHUNK_BYTES < AVG_CHUNK_BYTES && AVG_CHUNK_BYTES < MAX_CHUNK_BYTES);
// fastcdc's own limits (v2020): min <= 1 MiB, avg <= 4 MiB, max <= 16 MiB.
const _: () = assert!(MIN_CHUNK_BYTES <= 1 << 20 && AVG_CHUNK_BYTES <= 4 << 20 && MAX_CHUNK_BYTES <= 16 << 20);

/// A writer starts a new blob file once its current one is this long.
pub(crate) const BLOB_FILE_TARGET_BYTES: u64 = 1 << 30;

/// The writer commits the chunk records gathered so far (after syncing the
/// blob file they point into) once it holds this many operations, so that a
/// blob of any size is committed in bounded batches. The blob stays invisible
/// until its `k` record is written at `finish`.
pub(crate) const PENDING_OPS: usize = 2048;
/// ... or once this many bytes of new chunks were written since the last
/// commit (each commit follows an fsync of the blob file: measured, a sync
/// every 16 MiB halved the put rate of a 2 GiB stream).
pub(crate) const PENDING_BYTES: u64 = 128 << 20;

/// Version byte of a sealed chunk's plaintext.
pub(crate) const CHUNK_VERSION: u8 = 1;
/// Codec of a chunk stored as it is.
pub(crate) const CODEC_RAW: u8 = 0;
/// Codec of a chunk compressed with zstd.
pub(crate) const CODEC_ZSTD: u8 = 1;
/// zstd level of chunk compression (a chunk is kept compressed only when that
/// saves at least 1/16 of it).
pub(crate) const ZSTD_LEVEL: i32 = 1;
/// A chunk is compressed only if its first this many bytes compress by at
/// least 1/16: incompressible data (media, archives, ciphertext) then costs one
/// small trial per chunk instead of a whole compression.
pub(crate) const COMPRESSION_PROBE_BYTES: usize = 64 << 10;

/// Length of a chunk's keyed hash.
pub(crate) const HASH_LEN: usize = 32;
/// A keyed BLAKE3 hash of a chunk's plaintext.
pub(crate) type ChunkHash = [u8; HASH_LEN];

/// Plaintext header of a sealed chunk: version, codec, plaintext length, hash.
pub(crate) const CHUNK_HEADER_LEN: usize = 1 + 1 + 4 + HASH_LEN;
/// Bytes before the sealed bytes of a frame: their length.
pub(crate) const FRAME_PREFIX_LEN: usize = 4;
/// Largest sealed part of a frame: a raw chunk of the largest size (a
/// compressed chunk is kept only when smaller).
pub(crate) const MAX_SEALED_BYTES: usize = CHUNK_HEADER_LEN + MAX_CHUNK_BYTES + crypto::TAG_LEN;
/// Smallest sealed part of a frame: an empty payload.
pub(crate) const MIN_SEALED_BYTES: usize = CHUNK_HEADER_LEN + crypto::TAG_LEN;

/// Purpose of the integrity key the chunk hashes are keyed with.
pub(crate) const DEDUP_KEY_PURPOSE: &[u8] = b"blob dedup";
/// Purpose of the integrity key the FastCDC gear table is seeded from.
pub(crate) const CHUNKING_KEY_PURPOSE: &[u8] = b"blob chunking";

/// Key prefix of a blob's metadata: `k || user key`.
pub(crate) const META_PREFIX: u8 = b'k';
/// Key prefix of a chunk reference: `c || blob id (BE) || start offset (BE)`.
pub(crate) const CHUNK_REF_PREFIX: u8 = b'c';
/// Key prefix of a chunk's location: `h || hash`.
pub(crate) const LOCATION_PREFIX: u8 = b'h';
/// Key prefix of the record of a resumable upload (`u || user key`).
pub(crate) const UPLOAD_PREFIX: u8 = b'u';
/// Version byte of an upload record.
const UPLOAD_VERSION: u8 = 1;
/// Input bytes a resumable upload cuts into chunks between two commits of
/// its records: what a resumed upload may have to send again, beyond the
/// input buffered and not yet cut.
pub(crate) const RESUMABLE_COMMIT_BYTES: u64 = 4 << 20;

/// Version byte of a metadata record.
const META_VERSION: u8 = 1;
/// Length of a metadata record.
const META_LEN: usize = 1 + 8 + 8 + 8;
/// Length of a chunk reference record.
const CHUNK_REF_LEN: usize = HASH_LEN + 4;
/// Version byte of a location record.
const LOCATION_VERSION: u8 = 1;
/// Length of a location record.
const LOCATION_LEN: usize = 1 + 8 + 8 + 4 + 4;

/// The name of blob file `number`.
pub(crate) fn blob_file(number: u64) -> String {
    format!("{number:06}.blob")
}

/// The number of blob file `name`, if it names one.
pub(crate) fn blob_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".blob")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the store knows of one committed blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobMeta {
    /// Random id naming the blob's chunk references.
    pub(crate) id: u64,
    /// Length in bytes.
    pub(crate) len: u64,
    /// Number of chunks.
    pub(crate) chunks: u64,
}

impl BlobMeta {
    pub(crate) fn encode(&self) -> [u8; META_LEN] {
        let mut out = [0u8; META_LEN];
        out[0] = META_VERSION;
        out[1..9].copy_from_slice(&self.id.to_le_bytes());
        out[9..17].copy_from_slice(&self.len.to_le_bytes());
        out[17..25].copy_from_slice(&self.chunks.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<BlobMeta> {
        let b: &[u8; META_LEN] = bytes.try_into().map_err(|_| bad("blob metadata", bytes.len()))?;
        if b[0] != META_VERSION {
            return Err(Error::Corruption { file: BLOB_KEYSPACE.into(), offset: 0, reason: format!("blob metadata version {}", b[0]) });
        }
        Ok(BlobMeta { id: le64(&b[1..9]), len: le64(&b[9..17]), chunks: le64(&b[17..25]) })
    }
}

/// One chunk of a blob: its hash and plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRef {
    pub(crate) hash: ChunkHash,
    pub(crate) len: u32,
}

impl ChunkRef {
    pub(crate) fn encode(&self) -> [u8; CHUNK_REF_LEN] {
        let mut out = [0u8; CHUNK_REF_LEN];
        out[..HASH_LEN].copy_from_slice(&self.hash);
        out[HASH_LEN..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<ChunkRef> {
        let b: &[u8; CHUNK_REF_LEN] = bytes.try_into().map_err(|_| bad("chunk reference", bytes.len()))?;
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(&b[..HASH_LEN]);
        Ok(ChunkRef { hash, len: le32(&b[HASH_LEN..]) })
    }
}

/// Where a chunk's frame is: blob file, offset of the frame, length of its
/// sealed part, plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) file: u64,
    pub(crate) offset: u64,
    pub(crate) sealed_len: u32,
    pub(crate) plain_len: u32,
}

impl Location {
    pub(crate) fn encode(&self) -> [u8; LOCATION_LEN] {
        let mut out = [0u8; LOCATION_LEN];
        out[0] = LOCATION_VERSION;
        out[1..9].copy_from_slice(&self.file.to_le_bytes());
        out[9..17].copy_from_slice(&self.offset.to_le_bytes());
        out[17..21].copy_from_slice(&self.sealed_len.to_le_bytes());
        out[21..25].copy_from_slice(&self.plain_len.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Location> {
        let b: &[u8; LOCATION_LEN] = bytes.try_into().map_err(|_| bad("chunk location", bytes.len()))?;
        if b[0] != LOCATION_VERSION {
            return Err(Error::Corruption { file: BLOB_KEYSPACE.into(), offset: 0, reason: format!("chunk location version {}", b[0]) });
        }
        Ok(Location { file: le64(&b[1..9]), offset: le64(&b[9..17]), sealed_len: le32(&b[17..21]), plain_len: le32(&b[21..25]) })
    }

    /// Bytes the frame takes in its file.
    pub(crate) fn frame_bytes(&self) -> u64 {
        FRAME_PREFIX_LEN as u64 + u64::from(self.sealed_len)
    }
}

pub(crate) fn meta_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + user_key.len());
    k.push(META_PREFIX);
    k.extend_from_slice(user_key);
    k
}

pub(crate) fn upload_key(user_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + user_key.len());
    k.push(UPLOAD_PREFIX);
    k.extend_from_slice(user_key);
    k
}

/// An upload record: version 1, then the id of the blob being written.
pub(crate) fn encode_upload(id: u64) -> [u8; 9] {
    let mut v = [0u8; 9];
    v[0] = UPLOAD_VERSION;
    v[1..].copy_from_slice(&id.to_le_bytes());
    v
}

pub(crate) fn decode_upload(bytes: &[u8]) -> Result<u64> {
    match bytes.split_first() {
        Some((&UPLOAD_VERSION, id)) => {
            let id: [u8; 8] = id.try_into().map_err(|_| Error::Corruption { file: BLOB_KEYSPACE.into(), offset: 0, reason: "an upload record of the wrong length".into() })?;
            Ok(u64::from_le_bytes(id))
        }
        _ => Err(Error::Corruption { file: BLOB_KEYSPACE.into(), offset: 0, reason: "an upload record of an unknown version".into() }),
    }
}

/// The prefix of every chunk record of blob `id`.
pub(crate) fn chunk_ref_prefix(id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = CHUNK_REF_PREFIX;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn chunk_ref_key(id: u64, start: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = CHUNK_REF_PREFIX;
    k[1..9].copy_from_slice(&id.to_be_bytes());
    k[9..17].copy_from_slice(&start.to_be_bytes());
    k
}

/// `(blob id, start offset)` of a chunk reference key.
pub(crate) fn parse_chunk_ref_key(key: &[u8]) -> Result<(u64, u64)> {
    let k: &[u8; 17] = key.try_into().map_err(|_| bad("chunk reference key", key.len()))?;
    if k[0] != CHUNK_REF_PREFIX {
        return Err(bad("chunk reference key", key.len()));
    }
    Ok((be64(&k[1..9]), be64(&k[9..17])))
}

pub(crate) fn location_key(hash: &ChunkHash) -> [u8; 1 + HASH_LEN] {
    let mut k = [0u8; 1 + HASH_LEN];
    k[0] = LOCATION_PREFIX;
    k[1..].copy_from_slice(hash);
    k
}

/// The hash of a location key.
pub(crate) fn parse_location_key(key: &[u8]) -> Result<ChunkHash> {
    match key.split_first() {
        Some((&LOCATION_PREFIX, rest)) => rest.try_into().map_err(|_| bad("chunk location key", key.len())),
        _ => Err(bad("chunk location key", key.len())),
    }
}

fn bad(what: &str, len: usize) -> Error {
    Error::Corruption { file: BLOB_KEYSPACE.into(), offset: 0, reason: format!("{what} of {len} bytes is malformed") }
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_round_trip_and_bad_lengths_are_corruption() {
        let m = BlobMeta { id: 7, len: 1 << 40, chunks: 3 };
        assert_eq!(BlobMeta::decode(&m.encode()).unwrap(), m);
        let r = ChunkRef { hash: [9; HASH_LEN], len: 12345 };
        assert_eq!(ChunkRef::decode(&r.encode()).unwrap(), r);
        let l = Location { file: 12, offset: 4096, sealed_len: 99, plain_len: 50 };
        assert_eq!(Location::decode(&l.encode()).unwrap(), l);
        assert!(BlobMeta::decode(&[1; 5]).unwrap_err().is_corruption());
        assert!(Location::decode(&[2; LOCATION_LEN]).unwrap_err().is_corruption());
        assert_eq!(parse_chunk_ref_key(&chunk_ref_key(5, 1 << 33)).unwrap(), (5, 1 << 33));
        assert_eq!(parse_location_key(&location_key(&[3; HASH_LEN])).unwrap(), [3; HASH_LEN]);
        assert_eq!(blob_number(&blob_file(42)), Some(42));
        assert_eq!(blob_number("000042.sst"), None);
        assert_eq!(blob_number(".blob"), None);
    }
}
