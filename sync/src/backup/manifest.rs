//! The backup manifest: one object per backup, `backups/<ID>` (ID as 16
//! decimal digits), naming the files of one checkpoint. Its body (file names,
//! sizes, content hashes) is sealed; what stays readable is the store's
//! `KEYSLOTS` file, which is what unlocks the key that opens the body. Format
//! in `sync/FORMAT.md`, "Backup manifest".

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::Error;

/// Magic of a backup manifest object.
pub const MANIFEST_MAGIC: &[u8; 8] = b"SYNBKMAN";
/// Format version this build writes and reads.
pub const MANIFEST_VERSION: u8 = 1;
/// File kind of the backup manifest among the store's file kinds.
pub const MANIFEST_FILE_KIND: u8 = 6;
/// Longest `KEYSLOTS` copy a manifest may carry.
pub const MAX_KEYSLOTS_BYTES: usize = 1 << 20;
/// Longest sealed body a manifest may carry.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// Most files one backup may name.
pub const MAX_FILES: usize = 1_000_000;
/// Longest file name in a backup.
pub const MAX_NAME_BYTES: usize = 255;
/// HKDF info of the manifest key, under the store's master key.
pub const MANIFEST_KEY_INFO: &[u8] = b"synapsed-storage backup manifest";
/// Magic of the sealed body's plaintext.
const BODY_MAGIC: &[u8; 4] = b"BKMB";
const NONCE_LEN: usize = 12;
/// Header: magic, version, kind, backup id.
const HEADER_LEN: usize = 8 + 1 + 1 + 8;

/// The key that seals backup manifests, derived from the store's master key.
pub struct BackupKey(Zeroizing<[u8; 32]>);

impl BackupKey {
    /// Derives the manifest key from a store's 32-byte master key.
    pub fn from_master(master: &[u8; 32]) -> BackupKey {
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(None, master).expand(MANIFEST_KEY_INFO, &mut key[..]);
        BackupKey(key)
    }
}

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Name in the store directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes: the data object's name.
    pub sha256: [u8; 32],
}

/// The sealed part of a backup manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBody {
    /// Unix time of the backup, milliseconds.
    pub created_unix_ms: u64,
    /// The last sequence number the backed-up checkpoint holds.
    pub last_seqno: u64,
    /// The files, in name order.
    pub files: Vec<ManifestFile>,
}

/// Encodes and seals a manifest for backup `id`.
pub fn seal(id: u64, keyslots: &[u8], body: &ManifestBody, key: &BackupKey) -> Result<Vec<u8>, Error> {
    if keyslots.len() > MAX_KEYSLOTS_BYTES {
        return Err(Error::InvalidArgument(format!("KEYSLOTS of {} bytes is over {MAX_KEYSLOTS_BYTES}", keyslots.len())));
    }
    let mut plain = Zeroizing::new(Vec::new());
    plain.extend_from_slice(BODY_MAGIC);
    plain.extend_from_slice(&body.created_unix_ms.to_le_bytes());
    plain.extend_from_slice(&body.last_seqno.to_le_bytes());
    plain.extend_from_slice(&(body.files.len() as u32).to_le_bytes());
    for f in &body.files {
        if f.name.is_empty() || f.name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidArgument(format!("file name of {} bytes", f.name.len())));
        }
        plain.push(f.name.len() as u8);
        plain.extend_from_slice(f.name.as_bytes());
        plain.extend_from_slice(&f.bytes.to_le_bytes());
        plain.extend_from_slice(&f.sha256);
    }
    let header = header(id);
    let nonce: [u8; NONCE_LEN] = rand::random();
    let cipher = Aes256GcmSiv::new_from_slice(&key.0[..]).map_err(|_| Error::InvalidArgument("manifest key length".into()))?;
    let aad = aad(&header, keyslots);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
        .map_err(|_| Error::InvalidArgument("manifest too large to seal".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + keyslots.len() + NONCE_LEN + 4 + sealed.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&(keyslots.len() as u32).to_le_bytes());
    out.extend_from_slice(keyslots);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// A manifest whose header and `KEYSLOTS` copy were read, body still sealed.
#[derive(Debug, Clone)]
pub struct SealedManifest {
    /// The backup's id.
    pub id: u64,
    /// The store's `KEYSLOTS` file at the time of the backup.
    pub keyslots: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    sealed: Vec<u8>,
}

impl SealedManifest {
    /// Parses a manifest object named for backup `id`; refuses one whose
    /// header names another backup.
    pub fn decode(bytes: &[u8], id: u64, object: &str) -> Result<SealedManifest, Error> {
        let corrupt = |reason: &str| Error::Corruption { object: object.to_string(), reason: reason.to_string() };
        let mut r = Reader(bytes);
        let magic = r.take(8).ok_or_else(|| corrupt("truncated header"))?;
        if magic != MANIFEST_MAGIC {
            return Err(corrupt("not a backup manifest (bad magic)"));
        }
        let version = r.u8().ok_or_else(|| corrupt("truncated header"))?;
        if version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion { object: object.to_string(), found: version, supported: MANIFEST_VERSION });
        }
        let kind = r.u8().ok_or_else(|| corrupt("truncated header"))?;
        if kind != MANIFEST_FILE_KIND {
            return Err(corrupt("wrong file kind"));
        }
        let found = r.u64().ok_or_else(|| corrupt("truncated header"))?;
        if found != id {
            return Err(corrupt(&format!("names backup {found}, stored as backup {id}")));
        }
        let ks_len = r.u32().ok_or_else(|| corrupt("truncated header"))? as usize;
        if ks_len > MAX_KEYSLOTS_BYTES {
            return Err(corrupt("KEYSLOTS length over the limit"));
        }
        let keyslots = r.take(ks_len).ok_or_else(|| corrupt("truncated KEYSLOTS"))?.to_vec();
        let nonce_bytes = r.take(NONCE_LEN).ok_or_else(|| corrupt("truncated nonce"))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(nonce_bytes);
        let body_len = r.u32().ok_or_else(|| corrupt("truncated body length"))? as usize;
        if body_len > MAX_BODY_BYTES {
            return Err(corrupt("body length over the limit"));
        }
        let sealed = r.take(body_len).ok_or_else(|| corrupt("truncated body"))?.to_vec();
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(SealedManifest { id, keyslots, nonce, sealed })
    }

    /// Opens the body with `key`. A wrong key and damaged bytes both fail the
    /// tag: [`Error::WrongKey`].
    pub fn open(&self, key: &BackupKey) -> Result<ManifestBody, Error> {
        let header = header(self.id);
        let cipher = Aes256GcmSiv::new_from_slice(&key.0[..]).map_err(|_| Error::InvalidArgument("manifest key length".into()))?;
        let aad = aad(&header, &self.keyslots);
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(&self.nonce), Payload { msg: &self.sealed, aad: &aad })
                .map_err(|_| Error::WrongKey { id: self.id })?,
        );
        let object = format!("backups/{}", object_id(self.id));
        let corrupt = |reason: &str| Error::Corruption { object: object.clone(), reason: reason.to_string() };
        let mut r = Reader(&plain);
        if r.take(4) != Some(&BODY_MAGIC[..]) {
            return Err(corrupt("bad body magic"));
        }
        let created_unix_ms = r.u64().ok_or_else(|| corrupt("truncated body"))?;
        let last_seqno = r.u64().ok_or_else(|| corrupt("truncated body"))?;
        let count = r.u32().ok_or_else(|| corrupt("truncated body"))? as usize;
        if count > MAX_FILES {
            return Err(corrupt("file count over the limit"));
        }
        let mut files = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            let len = r.u8().ok_or_else(|| corrupt("truncated file entry"))? as usize;
            let name = r.take(len).ok_or_else(|| corrupt("truncated file name"))?;
            let name = std::str::from_utf8(name).map_err(|_| corrupt("file name is not UTF-8"))?.to_string();
            if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
                return Err(corrupt("file name is not a plain name"));
            }
            let bytes = r.u64().ok_or_else(|| corrupt("truncated file entry"))?;
            let hash = r.take(32).ok_or_else(|| corrupt("truncated file hash"))?;
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(hash);
            files.push(ManifestFile { name, bytes, sha256 });
        }
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes in body"));
        }
        Ok(ManifestBody { created_unix_ms, last_seqno, files })
    }
}

/// The name of backup `id`'s manifest object under `backups/`.
pub fn object_id(id: u64) -> String {
    format!("{id:016}")
}

fn header(id: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let (magic, rest) = h.split_at_mut(8);
    magic.copy_from_slice(MANIFEST_MAGIC);
    let (vk, idb) = rest.split_at_mut(2);
    vk.copy_from_slice(&[MANIFEST_VERSION, MANIFEST_FILE_KIND]);
    idb.copy_from_slice(&id.to_le_bytes());
    h
}

/// The AAD binds the header (hence the backup id) and the `KEYSLOTS` copy, so
/// neither can be swapped without failing the tag.
fn aad(header: &[u8], keyslots: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + keyslots.len());
    a.extend_from_slice(header);
    a.extend_from_slice(keyslots);
    a
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn body() -> ManifestBody {
        ManifestBody {
            created_unix_ms: 1_700_000_000_000,
            last_seqno: 42,
            files: vec![ManifestFile { name: "000004.sst".into(), bytes: 1234, sha256: [9; 32] }],
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = BackupKey::from_master(&[1; 32]);
        let bytes = seal(7, b"keyslots", &body(), &key).unwrap();
        let m = SealedManifest::decode(&bytes, 7, "m").unwrap();
        assert_eq!(m.keyslots, b"keyslots");
        assert_eq!(m.open(&key).unwrap(), body());
        // Another key, another id, a flipped byte anywhere, a cut: all refused.
        assert!(matches!(m.open(&BackupKey::from_master(&[2; 32])), Err(Error::WrongKey { .. })));
        assert!(SealedManifest::decode(&bytes, 8, "m").is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            let ok = SealedManifest::decode(&bad, 7, "m").and_then(|m| m.open(&key));
            assert!(ok.is_err(), "flip at {i} accepted");
        }
        for n in 0..bytes.len() {
            assert!(SealedManifest::decode(&bytes[..n], 7, "m").is_err());
        }
        // No file name in the clear.
        assert!(!bytes.windows(6).any(|w| w == b"000004"));
    }
}
