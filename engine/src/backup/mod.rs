//! Backup and restore of a store: the engine's side of `sync::backup`.
//!
//! The engine supplies what the sync crate cannot know: the files (a
//! checkpoint, taken beside the store so tables are hard links), the store's
//! `KEYSLOTS` and the key that seals backup manifests (derived from the master
//! key the credential unlocks). The sync crate uploads, lists, restores and
//! prunes. See docs/design.md, "Backups".

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crypto::{Credential, KeyslotFile};
pub use sync::backup::Error as BackupError;
pub use sync::backup::{object_names, BackupInfo, BackupReport, PruneReport, RestoreReport, Target};

use crate::{Db, Error, Options, Result};

/// Progress callback of long operations: bytes done, bytes in all.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// The environment's value of a variable (AWS_*), for [`Target::from_url`].
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The manifest key of a backup whose `KEYSLOTS` copy is `keyslots`, if
/// `credential` opens one of its slots.
fn unlock(keyslots: &[u8], credential: &Credential) -> std::result::Result<sync::backup::BackupKey, sync::backup::Error> {
    let file = KeyslotFile::decode(keyslots, crypto::KEYSLOTS_FILE).map_err(|e| sync::backup::Error::Corruption {
        object: "backup manifest KEYSLOTS".into(),
        reason: e.to_string(),
    })?;
    match file.unlock(credential) {
        Ok(master) => Ok(sync::backup::BackupKey::from_master(master.as_bytes())),
        Err(crypto::Error::WrongKey) => Err(sync::backup::Error::WrongKey { id: 0 }),
        Err(e) => Err(sync::backup::Error::InvalidArgument(e.to_string())),
    }
}

/// Removes a temporary checkpoint directory when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Backs `db` up to `target`: a checkpoint beside the store (removed
/// afterwards), then the upload of what the target does not hold yet and a
/// new sealed manifest. `credential` must open the store (it unlocks the key
/// that seals the manifest).
///
/// ```
/// use synapsed_storage::backup::{self, Target};
/// use synapsed_storage::{Credential, Db, Options};
///
/// let tmp = tempfile::tempdir()?;
/// let (store, remote, restored) = (tmp.path().join("store"), tmp.path().join("remote"), tmp.path().join("restored"));
/// let cred = Credential::passphrase("pw");
/// let db = Db::create(&store, &cred, Options::default())?;
/// db.put(b"k", b"v")?;
/// let target = Target::from_url(&format!("file://{}", remote.display()), &backup::env_var)?;
/// let report = backup::backup(&db, &store, &target, &cred, &|_done, _total| {})?;
/// assert_eq!(report.id, 1);
/// db.close()?;
///
/// backup::restore(&target, None, &restored, &cred, Options::default(), &|_, _| {})?;
/// let copy = Db::open(&restored, &cred, Options::default())?;
/// assert_eq!(copy.get(b"k")?, Some(b"v".to_vec()));
/// # copy.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn backup(db: &Db, store_dir: &Path, target: &Target, credential: &Credential, progress: Progress<'_>) -> Result<BackupReport> {
    let parent = store_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = store_dir.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = TempDir(parent.join(format!(".{base}.backup-{}-{n}", std::process::id())));
    let report = db.checkpoint(&tmp.0)?;
    let keyslots_path = tmp.0.join(crypto::KEYSLOTS_FILE);
    let keyslots = std::fs::read(&keyslots_path).map_err(|source| Error::Io { file: crypto::KEYSLOTS_FILE.into(), source })?;
    let key = unlock(&keyslots, credential).map_err(|e| match e {
        sync::backup::Error::WrongKey { .. } => Error::WrongKey,
        other => Error::Backup(other),
    })?;
    let files: Vec<sync::backup::SourceFile> =
        report.files.iter().map(|f| sync::backup::SourceFile { name: f.name.clone(), path: tmp.0.join(&f.name) }).collect();
    Ok(sync::backup::backup(target, &files, &keyslots, &key, report.last_seqno, progress)?)
}

/// The backups at `target`, oldest first.
pub fn list(target: &Target, credential: &Credential) -> Result<Vec<BackupInfo>> {
    Ok(sync::backup::list(target, &|ks| unlock(ks, credential))?)
}

/// Restores backup `at` (the newest when `None`) into `dir` and checks the
/// result: it opens with `credential` and passes `verify`.
pub fn restore(
    target: &Target,
    at: Option<u64>,
    dir: &Path,
    credential: &Credential,
    options: Options,
    progress: Progress<'_>,
) -> Result<RestoreReport> {
    let report = sync::backup::restore(target, at, dir, &|ks| unlock(ks, credential), progress)?;
    let verify = Db::verify(dir, credential, options)?;
    if !verify.is_ok() {
        return Err(Error::Corruption {
            file: dir.display().to_string(),
            offset: 0,
            reason: format!("the restored store fails verify: {verify:?}"),
        });
    }
    Ok(report)
}

/// Keeps the newest `keep` backups at `target` and removes the data no
/// remaining backup names.
pub fn prune(target: &Target, keep: usize, credential: &Credential) -> Result<PruneReport> {
    Ok(sync::backup::prune(target, keep, &|ks| unlock(ks, credential))?)
}
