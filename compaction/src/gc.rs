//! Removing files no live version needs, optionally overwriting them first.
//!
//! What overwriting can and cannot do: on a plain hard disk with an in-place
//! file system, rewriting a file's blocks before unlinking it replaces the old
//! ciphertext. On SSDs (the flash translation layer writes new data to fresh
//! pages and erases old ones whenever it likes), on copy-on-write or journaling
//! file systems that journal data (btrfs, ZFS, APFS, ext4 with `data=journal`),
//! and under snapshots or backups, the old bytes may survive anywhere. Every
//! byte on disk is already encrypted, so the real guarantee is crypto-shredding:
//! once no live file uses a data-key epoch, that key is destroyed and whatever
//! ciphertext survives is unreadable. Overwriting is a best-effort extra.

use std::collections::HashSet;
use std::io;
use std::path::Path;

use crypto::names;
use crypto::vfs::Vfs;

use crate::error::{Error, Result};
use crate::version::CURRENT_FILE;

/// Files this layer never removes, whatever their name looks like. The key
/// files' temporaries are among them: the key manager writes them while the
/// store is open (a key change of this process, or `key passphrase` of another
/// one holding the store lock), and removing one between its write and its
/// rename would fail that change; the key manager removes their leftovers
/// itself (`crypto::KeyManager::upgrade`, at every writable open).
const PROTECTED: [&str; 6] = ["KEYSLOTS", "KEYRING", "KEYSLOTS.tmp", "KEYRING.tmp", CURRENT_FILE, "LOCK"];

/// Bytes written per append while overwriting.
const OVERWRITE_CHUNK_BYTES: usize = 64 << 10;

/// Whether a file in the store directory is obsolete. `live` holds file
/// numbers: tables still needed, and WAL segments below `min_log_number` kept
/// for the change feed (numbers are unique across file kinds).
fn is_obsolete(name: &str, live: &HashSet<u64>, min_log_number: u64, manifest_number: u64) -> bool {
    if PROTECTED.contains(&name) {
        return false;
    }
    if is_temporary(name) {
        return true;
    }
    if let Some(n) = names::manifest_number(name) {
        return n != manifest_number;
    }
    if let Some(n) = names::table_number(name) {
        return !live.contains(&n);
    }
    if let Some(n) = names::wal_number(name) {
        return n < min_log_number && !live.contains(&n);
    }
    false
}

/// Removes from `dir` every table not in `live_tables`, every WAL segment numbered
/// below `min_log_number` and not in `live_tables` (a segment kept for the change
/// feed is listed there by its number), every manifest other than `manifest_number`, and stale
/// temporary files. Overwrites each `passes` times before unlinking (0 = plain
/// unlink). Returns the names removed.
///
/// Never touches `KEYSLOTS`, `KEYRING`, `CURRENT` or `LOCK`. The caller must make
/// sure no table, manifest or temporary file is being written concurrently (or
/// list the tables being written in `live_tables`); [`crate::VersionSet::delete_obsolete_files`]
/// does this for the manifest side.
pub fn delete_obsolete_files(
    vfs: &dyn Vfs,
    dir: &Path,
    live_tables: &HashSet<u64>,
    min_log_number: u64,
    manifest_number: u64,
    passes: u32,
) -> Result<Vec<String>> {
    let names = obsolete_files(vfs, dir, live_tables, min_log_number, manifest_number)?;
    remove_files(vfs, dir, names, passes)
}

/// Names of the obsolete files in `dir` (see [`delete_obsolete_files`]), sorted.
pub(crate) fn obsolete_files(vfs: &dyn Vfs, dir: &Path, live_tables: &HashSet<u64>, min_log_number: u64, manifest_number: u64) -> Result<Vec<String>> {
    let names = vfs.list_dir(dir).map_err(|e| Error::io(".", e))?;
    Ok(names.into_iter().filter(|n| is_obsolete(n, live_tables, min_log_number, manifest_number)).collect())
}

/// Whether `name` is a temporary file (the leftover of an interrupted atomic replace).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.ends_with(".tmp")
}

/// Removes `names` from `dir` (overwriting first when `passes > 0`), then syncs
/// the directory once. Files already gone are skipped. Returns the names removed.
pub(crate) fn remove_files(vfs: &dyn Vfs, dir: &Path, names: Vec<String>, passes: u32) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let result = if passes == 0 { vfs.remove_file(&path).map_err(|e| Error::io(&name, e)) } else { overwrite_and_remove(vfs, &path, passes) };
        match result {
            Ok(()) => removed.push(name),
            // Gone already (removed by an earlier, interrupted run): nothing to do.
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !removed.is_empty() {
        vfs.sync_dir(dir).map_err(|e| Error::io(".", e))?;
    }
    Ok(removed)
}

/// The byte pattern of overwrite pass `pass` (1-based): zeros, then ones, then random.
fn fill_pass(pass: u32, buf: &mut [u8]) -> Result<()> {
    match pass {
        1 => buf.fill(0x00),
        2 => buf.fill(0xff),
        _ => getrandom::getrandom(buf).map_err(|e| Error::io("<random>", io::Error::other(e.to_string())))?,
    }
    Ok(())
}

/// Overwrites `path` `passes` times (syncing each pass) and removes it.
///
/// The parent directory is not synced here; [`delete_obsolete_files`] syncs it
/// once after all removals.
pub fn overwrite_and_remove(vfs: &dyn Vfs, path: &Path, passes: u32) -> Result<()> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let io_err = |e: io::Error| Error::io(name.clone(), e);
    let len = vfs.file_size(path).map_err(io_err)?;
    let mut buf = vec![0u8; OVERWRITE_CHUNK_BYTES];
    for pass in 1..=passes {
        // Each pass reopens the file so it writes from offset 0 over the full length.
        let file = vfs.open_for_overwrite(path).map_err(io_err)?;
        let mut written = 0u64;
        while written < len {
            let n = usize::try_from((len - written).min(OVERWRITE_CHUNK_BYTES as u64)).unwrap_or(OVERWRITE_CHUNK_BYTES);
            let chunk = buf.get_mut(..n).unwrap_or_default();
            fill_pass(pass, chunk)?;
            file.append(chunk).map_err(io_err)?;
            written += n as u64;
        }
        file.sync().map_err(io_err)?;
    }
    vfs.remove_file(path).map_err(io_err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crypto::vfs::{ForwardingVfs, WritableFile};
    use crypto::StdVfs;
    use parking_lot::Mutex;
    use std::sync::Arc;

    #[test]
    fn obsolete_rules() {
        let live: HashSet<u64> = [2, 5, 7].into_iter().collect();
        let cases = [
            ("000005.sst", false),
            ("000006.sst", true),
            ("000007.sst", false),
            ("000003.wal", true),
            ("000004.wal", false),
            ("000009.wal", false),
            // Below the log number but kept for the change feed.
            ("000002.wal", false),
            ("MANIFEST-000008", false),
            ("MANIFEST-000002", true),
            ("MANIFEST-000010", true),
            ("CURRENT.tmp", true),
            ("CURRENT", false),
            ("KEYSLOTS", false),
            ("KEYRING", false),
            ("LOCK", false),
            ("notes.txt", false),
            ("abc.sst", false),
            ("000001.blob", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_obsolete(name, &live, 4, 8), expected, "{name}");
        }
    }

    #[test]
    fn removes_exactly_the_obsolete_files() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs::new();
        let all = [
            "000005.sst", "000006.sst", "000003.wal", "000004.wal", "MANIFEST-000002", "MANIFEST-000008", "CURRENT",
            "CURRENT.tmp", "KEYSLOTS", "KEYRING", "KEYSLOTS.tmp", "KEYRING.tmp", "LOCK",
        ];
        for name in all {
            std::fs::write(dir.path().join(name), name.as_bytes()).unwrap();
        }
        let live: HashSet<u64> = [5].into_iter().collect();
        let mut removed = delete_obsolete_files(&vfs, dir.path(), &live, 4, 8, 0).unwrap();
        removed.sort();
        assert_eq!(removed, vec!["000003.wal", "000006.sst", "CURRENT.tmp", "MANIFEST-000002"]);
        let left = vfs.list_dir(dir.path()).unwrap();
        let expected_left: Vec<String> = {
            let mut v: Vec<String> = all.iter().filter(|n| !removed.contains(&n.to_string())).map(|n| n.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(left, expected_left);
        assert!(delete_obsolete_files(&vfs, dir.path(), &live, 4, 8, 0).unwrap().is_empty(), "second run finds nothing");
    }

    /// Records every pass written through `open_for_overwrite`.
    #[derive(Debug, Default)]
    struct RecordingVfs {
        inner: StdVfs,
        passes: Arc<Mutex<Vec<Vec<u8>>>>,
        syncs: Arc<Mutex<u32>>,
    }

    struct RecordingFile {
        written: Arc<Mutex<Vec<Vec<u8>>>>,
        syncs: Arc<Mutex<u32>>,
        inner: Box<dyn WritableFile>,
    }

    impl WritableFile for RecordingFile {
        fn append(&self, data: &[u8]) -> io::Result<()> {
            self.written.lock().last_mut().unwrap().extend_from_slice(data);
            self.inner.append(data)
        }
        fn sync(&self) -> io::Result<()> {
            *self.syncs.lock() += 1;
            self.inner.sync()
        }
        fn len(&self) -> u64 {
            self.inner.len()
        }
        fn preallocate(&self, len: u64) -> io::Result<()> {
            self.inner.preallocate(len)
        }
    }

    impl ForwardingVfs for RecordingVfs {
        fn inner(&self) -> &dyn Vfs {
            &self.inner
        }
        fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
            self.passes.lock().push(Vec::new());
            Ok(Box::new(RecordingFile { written: Arc::clone(&self.passes), syncs: Arc::clone(&self.syncs), inner: self.inner.open_for_overwrite(path)? }))
        }
    }

    #[test]
    fn overwrite_passes_cover_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000009.sst");
        let len = OVERWRITE_CHUNK_BYTES * 2 + 123;
        let original: Vec<u8> = (0..len).map(|i| (i % 251) as u8 | 1).collect();
        std::fs::write(&path, &original).unwrap();
        let vfs = RecordingVfs::default();
        let removed = delete_obsolete_files(&vfs, dir.path(), &HashSet::new(), 0, 0, 3).unwrap();
        assert_eq!(removed, vec!["000009.sst"]);
        assert!(!path.exists());
        let passes = vfs.passes.lock();
        assert_eq!(passes.len(), 3);
        assert!(passes.iter().all(|p| p.len() == len), "every pass covers the full length");
        assert!(passes[0].iter().all(|&b| b == 0));
        assert!(passes[1].iter().all(|&b| b == 0xff));
        assert!(passes[2].iter().any(|&b| b != 0 && b != 0xff));
        assert_ne!(passes[2], original);
        assert_eq!(*vfs.syncs.lock(), 3, "one sync per pass");
    }

    #[test]
    fn overwrite_really_replaces_the_bytes_before_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.sst");
        std::fs::write(&path, b"secret secret secret").unwrap();
        // Keep a handle so the unlinked file's final bytes can still be read.
        let keep = std::fs::File::open(&path).unwrap();
        overwrite_and_remove(&StdVfs::new(), &path, 2).unwrap();
        assert!(!path.exists());
        let mut after = Vec::new();
        std::io::Read::read_to_end(&mut &keep, &mut after).unwrap();
        assert_eq!(after, vec![0xff; 20]);
    }
}
