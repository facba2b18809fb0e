//! Encrypted, incremental backup of a store's files to an object store, and
//! restore.
//!
//! The engine hands over the files of a checkpoint (already encrypted, every
//! one) and the store's `KEYSLOTS`; this module uploads them under opaque
//! names and records each backup in a sealed manifest. Layout under the
//! target's prefix:
//!
//! ```text
//! data/<sha256 of the file, hex>    one object per distinct file content
//! backups/<ID, 16 digits>           the manifest of backup ID (manifest.rs)
//! ```
//!
//! A data object is named by the SHA-256 of its bytes, which are ciphertext:
//! a file already on the server (an SSTable of an earlier backup, or an
//! unchanged WAL segment) is not uploaded again, and a restored file is
//! checked against its name. The manifest is written last, so a backup cut
//! short leaves only data objects, which the next run finds and does not
//! upload again (resume), and which pruning removes if no backup ever names
//! them.

mod manifest;
mod target;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

pub use manifest::{
    object_id, seal, BackupKey, ManifestBody, ManifestFile, SealedManifest, MANIFEST_FILE_KIND, MANIFEST_KEY_INFO, MANIFEST_MAGIC,
    MANIFEST_VERSION,
};
pub use target::Target;

/// Files at most this large are uploaded in one request; larger ones in parts
/// of this size.
pub const PART_BYTES: usize = 8 << 20;
/// Uploads and downloads in flight at once.
pub const PARALLEL_TRANSFERS: usize = 4;

/// Errors of backup and restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bad URL, setting or argument.
    #[error("{0}")]
    InvalidArgument(String),
    /// The server refused the credentials (wrong access key or secret).
    #[error("the backup server refused the credentials (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY): {0}")]
    Unauthorized(String),
    /// Any other failure of the object store (network, server).
    #[error("backup target: {0}")]
    Store(String),
    /// A local file could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An object on the server is damaged or not what its name says.
    #[error("damaged backup object {object}: {reason}")]
    Corruption {
        /// The object's name under the prefix.
        object: String,
        /// What check failed.
        reason: String,
    },
    /// A manifest of a newer format.
    #[error("{object} has format version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// The object.
        object: String,
        /// Its version.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// The key material does not open backup `id`'s manifest.
    #[error("wrong passphrase or key for backup {id}")]
    WrongKey {
        /// The backup.
        id: u64,
    },
    /// No such backup (or none at all) at the target.
    #[error("{0}")]
    NoBackup(String),
}

impl Error {
    pub(crate) fn from_store(e: object_store::Error, what: &str) -> Error {
        match e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Error::Unauthorized(format!("{what}: {e}"))
            }
            other => {
                let text = other.to_string();
                // Servers answer a bad signature with 403 and one of these codes.
                if text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId") || text.contains("AccessDenied") {
                    Error::Unauthorized(format!("{what}: {text}"))
                } else {
                    Error::Store(format!("{what}: {text}"))
                }
            }
        }
    }
}

/// One file handed over for backup.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its name in the store directory.
    pub name: String,
    /// Where to read it.
    pub path: PathBuf,
}

/// What one backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The new backup's id.
    pub id: u64,
    /// Files the backup names.
    pub files: usize,
    /// Files uploaded by this run.
    pub uploaded_files: usize,
    /// Bytes uploaded by this run.
    pub uploaded_bytes: u64,
    /// Files whose content was already on the server.
    pub existing_files: usize,
}

/// One backup at a target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// Its id.
    pub id: u64,
    /// When it was taken (Unix time, milliseconds).
    pub created_unix_ms: u64,
    /// Files it names.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// The last sequence number it holds.
    pub last_seqno: u64,
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The backup restored.
    pub id: u64,
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// What pruning removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Backups removed.
    pub removed_backups: Vec<u64>,
    /// Data objects no remaining backup names, removed.
    pub removed_objects: usize,
    /// Their bytes.
    pub removed_bytes: u64,
}

/// Progress callback: bytes done so far, bytes in all.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Opens a manifest's key from the `KEYSLOTS` copy it carries.
pub type Unlock<'a> = &'a dyn Fn(&[u8]) -> Result<BackupKey, Error>;

/// Runs `unlock` on a manifest's `KEYSLOTS`, naming the backup in a refusal.
fn unlock_named(unlock: Unlock<'_>, sealed: &SealedManifest) -> Result<BackupKey, Error> {
    unlock(&sealed.keyslots).map_err(|e| match e {
        Error::WrongKey { .. } => Error::WrongKey { id: sealed.id },
        other => other,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Io { path: "tokio runtime".into(), source: e })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

fn hash_file(path: &Path) -> Result<([u8; 32], u64), Error> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
        total += n as u64;
    }
    Ok((h.finalize().into(), total))
}

/// Ids of the backups at `target`, ascending.
pub fn list_ids(target: &Target) -> Result<Vec<u64>, Error> {
    runtime()?.block_on(backup_ids(target))
}

async fn backup_ids(target: &Target) -> Result<Vec<u64>, Error> {
    let prefix = target.path(&["backups"]);
    let metas: Vec<_> = target.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::from_store(e, target.url()))?;
    let mut ids: Vec<u64> = metas.iter().filter_map(|m| m.location.filename().and_then(|n| n.parse().ok())).collect();
    ids.sort_unstable();
    Ok(ids)
}

async fn data_objects(target: &Target) -> Result<HashMap<String, u64>, Error> {
    let prefix = target.path(&["data"]);
    let metas: Vec<_> = target.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::from_store(e, target.url()))?;
    Ok(metas.into_iter().filter_map(|m| m.location.filename().map(|n| (n.to_string(), m.size))).collect())
}

async fn read_manifest(target: &Target, id: u64) -> Result<SealedManifest, Error> {
    let object = format!("backups/{}", object_id(id));
    let path = target.path(&["backups", &object_id(id)]);
    let got = target.store.get(&path).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => Error::NoBackup(format!("no backup {id} at {}", target.url())),
        e => Error::from_store(e, &object),
    })?;
    let bytes = got.bytes().await.map_err(|e| Error::from_store(e, &object))?;
    SealedManifest::decode(&bytes, id, &object)
}

/// Uploads `files` (a checkpoint's) as a new backup: contents not yet at the
/// target go up, [`PARALLEL_TRANSFERS`] at a time, each checked after upload
/// (its size as the server reports it; its name is its SHA-256, checked again
/// at restore); then the sealed manifest. Running it again after a failure
/// uploads only what is still missing.
pub fn backup(
    target: &Target,
    files: &[SourceFile],
    keyslots: &[u8],
    key: &BackupKey,
    last_seqno: u64,
    progress: Progress<'_>,
) -> Result<BackupReport, Error> {
    let mut entries = Vec::with_capacity(files.len());
    for f in files {
        let (sha256, bytes) = hash_file(&f.path)?;
        entries.push((f, ManifestFile { name: f.name.clone(), bytes, sha256 }));
    }
    entries.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let rt = runtime()?;
    rt.block_on(async {
        let existing = data_objects(target).await?;
        let id = backup_ids(target).await?.last().map_or(1, |last| last + 1);
        let mut seen = HashSet::new();
        let mut uploads = Vec::new();
        let mut existing_files = 0;
        for (src, m) in &entries {
            let name = hex(&m.sha256);
            if existing.get(&name) == Some(&m.bytes) {
                existing_files += 1;
            } else if seen.insert(name.clone()) {
                uploads.push((src.path.clone(), name, m.bytes, m.sha256));
            } else {
                existing_files += 1;
            }
        }
        let total: u64 = uploads.iter().map(|u| u.2).sum();
        let done = Arc::new(AtomicU64::new(0));
        progress(0, total);
        let uploaded_files = uploads.len();
        futures::stream::iter(uploads.into_iter().map(|(path, name, bytes, sha)| {
            let done = Arc::clone(&done);
            async move {
                upload(target, &path, &name, bytes, sha).await?;
                progress(done.fetch_add(bytes, Ordering::Relaxed) + bytes, total);
                Ok::<(), Error>(())
            }
        }))
        .buffer_unordered(PARALLEL_TRANSFERS)
        .try_collect::<Vec<()>>()
        .await?;
        let created_unix_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        let body = ManifestBody { created_unix_ms, last_seqno, files: entries.iter().map(|(_, m)| m.clone()).collect() };
        let sealed = seal(id, keyslots, &body, key)?;
        let object = format!("backups/{}", object_id(id));
        target
            .store
            .put(&target.path(&["backups", &object_id(id)]), PutPayload::from(sealed))
            .await
            .map_err(|e| Error::from_store(e, &object))?;
        Ok(BackupReport { id, files: entries.len(), uploaded_files, uploaded_bytes: total, existing_files })
    })
}

async fn upload(target: &Target, path: &Path, name: &str, bytes: u64, sha: [u8; 32]) -> Result<(), Error> {
    let object = format!("data/{name}");
    let location = target.path(&["data", name]);
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    if bytes <= PART_BYTES as u64 {
        let mut buf = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0));
        file.read_to_end(&mut buf).map_err(io_err(path))?;
        hasher.update(&buf);
        sent = buf.len() as u64;
        check_read(path, sent, bytes, hasher, sha)?;
        target.store.put(&location, PutPayload::from(buf)).await.map_err(|e| Error::from_store(e, &object))?;
    } else {
        let upload = target.store.put_multipart(&location).await.map_err(|e| Error::from_store(e, &object))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = read_full(&mut file, &mut buf).map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            sent += n as u64;
            writer.wait_for_capacity(2).await.map_err(|e| Error::from_store(e, &object))?;
            writer.put(Bytes::copy_from_slice(chunk));
        }
        if let Err(e) = check_read(path, sent, bytes, hasher, sha) {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer.finish().await.map_err(|e| Error::from_store(e, &object))?;
    }
    let meta = target.store.head(&location).await.map_err(|e| Error::from_store(e, &object))?;
    if meta.size != sent {
        return Err(Error::Corruption { object, reason: format!("server holds {} bytes after an upload of {sent}", meta.size) });
    }
    Ok(())
}

/// The file must still be what was hashed when the backup began.
fn check_read(path: &Path, sent: u64, bytes: u64, hasher: Sha256, sha: [u8; 32]) -> Result<(), Error> {
    let got: [u8; 32] = hasher.finalize().into();
    if sent != bytes || got != sha {
        return Err(Error::Io { path: path.display().to_string(), source: std::io::Error::other("file changed while it was backed up") });
    }
    Ok(())
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        let n = file.read(rest)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Every backup at `target`, oldest first, each opened with `unlock`.
pub fn list(target: &Target, unlock: Unlock<'_>) -> Result<Vec<BackupInfo>, Error> {
    runtime()?.block_on(async {
        let mut out = Vec::new();
        for id in backup_ids(target).await? {
            let sealed = read_manifest(target, id).await?;
            let body = sealed.open(&unlock_named(unlock, &sealed)?)?;
            out.push(BackupInfo {
                id,
                created_unix_ms: body.created_unix_ms,
                files: body.files.len(),
                bytes: body.files.iter().map(|f| f.bytes).sum(),
                last_seqno: body.last_seqno,
            });
        }
        Ok(out)
    })
}

/// Restores backup `at` (the newest when `None`) into `dir`, which must not
/// exist or be empty. Every file is checked against its SHA-256 before it
/// counts as restored; the directory is synced at the end.
pub fn restore(target: &Target, at: Option<u64>, dir: &Path, unlock: Unlock<'_>, progress: Progress<'_>) -> Result<RestoreReport, Error> {
    if dir.exists() && std::fs::read_dir(dir).map_err(io_err(dir))?.next().is_some() {
        return Err(Error::InvalidArgument(format!("{} is not empty", dir.display())));
    }
    let rt = runtime()?;
    rt.block_on(async {
        let id = match at {
            Some(id) => id,
            None => *backup_ids(target).await?.last().ok_or_else(|| Error::NoBackup(format!("no backup at {}", target.url())))?,
        };
        let sealed = read_manifest(target, id).await?;
        let body = sealed.open(&unlock_named(unlock, &sealed)?)?;
        create_private_dir(dir)?;
        let total: u64 = body.files.iter().map(|f| f.bytes).sum();
        let done = Arc::new(AtomicU64::new(0));
        progress(0, total);
        futures::stream::iter(body.files.iter().map(|f| {
            let done = Arc::clone(&done);
            async move {
                download(target, f, dir).await?;
                progress(done.fetch_add(f.bytes, Ordering::Relaxed) + f.bytes, total);
                Ok::<(), Error>(())
            }
        }))
        .buffer_unordered(PARALLEL_TRANSFERS)
        .try_collect::<Vec<()>>()
        .await?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
        Ok(RestoreReport { id, files: body.files.len(), bytes: total })
    })
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
    }
    Ok(())
}

async fn download(target: &Target, f: &ManifestFile, dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = hex(&f.sha256);
    let object = format!("data/{name}");
    let got = target.store.get(&target.path(&["data", &name])).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => Error::Corruption { object: object.clone(), reason: "missing".into() },
        e => Error::from_store(e, &object),
    })?;
    let path = dir.join(&f.name);
    let part = dir.join(format!("{}.part", f.name));
    let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&part).map_err(io_err(&part))?;
    let mut stream = got.into_stream();
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::from_store(e, &object))?;
        len += chunk.len() as u64;
        if len > f.bytes {
            break;
        }
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(io_err(&part))?;
    }
    let got: [u8; 32] = hasher.finalize().into();
    if len != f.bytes || got != f.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Corruption { object, reason: format!("content does not match its name ({len} bytes, {} expected)", f.bytes) });
    }
    out.sync_all().map_err(io_err(&part))?;
    std::fs::rename(&part, &path).map_err(io_err(&path))?;
    Ok(())
}

/// Removes every backup but the newest `keep`, then every data object no
/// remaining backup names. Every remaining manifest must open with `unlock`
/// (else nothing is removed). Run it while no backup to the same target is
/// under way: that backup's new data objects are named by no manifest yet.
///
/// `keep` must be at least 1: the kept manifests are what proves the key
/// material right before anything is removed.
pub fn prune(target: &Target, keep: usize, unlock: Unlock<'_>) -> Result<PruneReport, Error> {
    if keep == 0 {
        return Err(Error::InvalidArgument("pruning keeps at least one backup".into()));
    }
    runtime()?.block_on(async {
        let ids = backup_ids(target).await?;
        let cut = ids.len().saturating_sub(keep);
        let (old, kept) = ids.split_at(cut);
        let mut referenced = BTreeSet::new();
        for &id in kept {
            let sealed = read_manifest(target, id).await?;
            let body = sealed.open(&unlock_named(unlock, &sealed)?)?;
            referenced.extend(body.files.iter().map(|f| hex(&f.sha256)));
        }
        for &id in old {
            let object = format!("backups/{}", object_id(id));
            target.store.delete(&target.path(&["backups", &object_id(id)])).await.map_err(|e| Error::from_store(e, &object))?;
        }
        let mut removed_objects = 0;
        let mut removed_bytes = 0;
        for (name, size) in data_objects(target).await? {
            if !referenced.contains(&name) {
                let object = format!("data/{name}");
                target.store.delete(&target.path(&["data", &name])).await.map_err(|e| Error::from_store(e, &object))?;
                removed_objects += 1;
                removed_bytes += size;
            }
        }
        Ok(PruneReport { removed_backups: old.to_vec(), removed_objects, removed_bytes })
    })
}

/// The object names under the target's prefix (for tests and `backup ls
/// --objects`): what the server sees.
pub fn object_names(target: &Target) -> Result<Vec<String>, Error> {
    runtime()?.block_on(async {
        let metas: Vec<_> =
            target.store.list(Some(&target.prefix)).try_collect().await.map_err(|e| Error::from_store(e, target.url()))?;
        let mut names: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        names.sort();
        Ok(names)
    })
}
