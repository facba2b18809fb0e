//! `verify`: read and authenticate every file of a store without opening it for
//! writing and without taking its lock. Everything goes through a
//! [`ReadOnlyVfs`], so recovery code that would write (a fresh manifest, say)
//! changes nothing. Each damaged file is reported with its reason and the check
//! goes on with the rest; only a wrong key stops it, since nothing else can be
//! read then.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use compaction::VersionSet;
use crypto::vfs::Vfs;
use crypto::{Credential, KeyManager, KEYRING_FILE, KEYSLOTS_FILE};
use index::TableReader;

use crate::db::inner::{file_number, wal_name, wal_segment_is_blank};
use crate::db::read_only_vfs::ReadOnlyVfs;
use crate::db::VerifyReport;
use crate::error::{Error, Result};
use crate::format::decode_batch;
use crate::options::Options;

/// The file an error names, if it names one.
fn error_file(e: &Error) -> Option<String> {
    match e {
        Error::Corruption { file, .. }
        | Error::Io { file, .. }
        | Error::UnsupportedVersion { file, .. }
        | Error::MissingEpoch { file, .. }
        | Error::TornLastFrame { file, .. } => Some(file.clone()),
        _ => None,
    }
}

fn damaged(report: &mut VerifyReport, fallback: &str, e: &Error) {
    report.damaged.push((error_file(e).unwrap_or_else(|| fallback.to_string()), e.to_string()));
}

/// How often `verify` starts over when a file it found damaged or missing turns
/// out to be one a writer process retired meanwhile (a compaction, a flush, a
/// manifest roll or a key rotation replaced it), and how long it waits first.
const VERIFY_ATTEMPTS: u32 = 20;
const VERIFY_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// What a fresh look at the store says is still needed.
struct View {
    tables: HashSet<u64>,
    log_number: u64,
    /// WAL segments below the log number kept for the change feed.
    kept: HashSet<u64>,
    manifest_number: u64,
}

impl View {
    fn read(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, options: &Options) -> Result<View> {
        let versions = VersionSet::recover(vfs, dir, keys, options.num_levels)?;
        Ok(View {
            tables: versions.live_files(),
            log_number: versions.log_number(),
            kept: versions.feed_segments().into_keys().collect(),
            manifest_number: versions.manifest_number(),
        })
    }

    /// Whether the store file `name` is one this view still needs (or one that
    /// is never retired, like the key files).
    fn needs(&self, name: &str) -> bool {
        if let Some(number) = file_number(name, "sst") {
            return self.tables.contains(&number);
        }
        if let Some(number) = file_number(name, "wal") {
            return number >= self.log_number || self.kept.contains(&number);
        }
        if let Some(number) = crypto::names::manifest_number(name) {
            return number == self.manifest_number;
        }
        // `CURRENT` read again without trouble: it was being replaced.
        name != compaction::CURRENT_FILE
    }
}

/// One pass of `verify` and whether a damaged file failed for want of an epoch.
struct Pass {
    report: VerifyReport,
    epoch_missing: bool,
}

/// A writer process may run beside `verify` (it takes no lock): between listing
/// the directory, reading the manifest and reading each file, the writer can
/// retire and remove a table, a log or a manifest, overwrite it first when
/// secure deletion is on, or make a new data-key epoch that files written since
/// are under. None of that is damage. So a pass that found damage is checked
/// against a fresh look at the store: a file the store no longer needs was
/// retired, not damaged, and the pass starts over (so what replaced it is
/// checked too); a missing epoch is looked for in the keyring read again. A
/// file still needed after that is reported; after [`VERIFY_ATTEMPTS`] passes a
/// writer that keeps retiring files only leaves its retired files unreported.
pub(crate) fn verify(dir: &Path, credential: &Credential, options: &Options) -> Result<VerifyReport> {
    if !options.vfs.exists(&dir.join(KEYSLOTS_FILE)) {
        return Err(Error::NotFound(dir.display().to_string()));
    }
    let vfs = ReadOnlyVfs::wrap(options.vfs.clone());
    let unlock = || match KeyManager::unlock(&vfs, dir, credential) {
        Ok(keys) => Ok(Ok(keys)),
        Err(crypto::Error::WrongKey) => Err(Error::WrongKey),
        Err(e) => {
            let mut report = VerifyReport { files_checked: 1, ..VerifyReport::default() };
            damaged(&mut report, KEYSLOTS_FILE, &e.into());
            Ok(Err(report))
        }
    };
    let mut keyring = vfs.read_all(&dir.join(KEYRING_FILE)).ok();
    let mut keys = match unlock()? {
        Ok(keys) => keys,
        Err(report) => return Ok(report),
    };
    let mut attempts = 0;
    loop {
        let mut pass = verify_once(&vfs, dir, &keys, options)?;
        if pass.report.damaged.is_empty() {
            return Ok(pass.report);
        }
        attempts += 1;
        if pass.epoch_missing && attempts < 2 * VERIFY_ATTEMPTS {
            // A rotation may have made a new epoch after the keyring was read:
            // that is never damage, whatever the count of passes so far (a
            // loaded machine can spend every ordinary attempt on retired files).
            let now = vfs.read_all(&dir.join(KEYRING_FILE)).ok();
            if now != keyring {
                keyring = now;
                keys = match unlock()? {
                    Ok(keys) => keys,
                    Err(report) => return Ok(report),
                };
                std::thread::sleep(VERIFY_RETRY_PAUSE);
                continue;
            }
        }
        if attempts >= VERIFY_ATTEMPTS {
            // Keep what is still needed; files retired meanwhile are not damage.
            if let Ok(view) = View::read(&vfs, dir, &keys, options) {
                pass.report.damaged.retain(|(name, _)| view.needs(name));
            }
            return Ok(pass.report);
        }
        std::thread::sleep(VERIFY_RETRY_PAUSE);
        match View::read(&vfs, dir, &keys, options) {
            Ok(view) => {
                if pass.report.damaged.iter().all(|(name, _)| view.needs(name)) {
                    return Ok(pass.report);
                }
            }
            // The manifest was being replaced (or needs a newer keyring): look again.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(Error::MissingEpoch { .. }) if vfs.read_all(&dir.join(KEYRING_FILE)).ok() != keyring => {}
            // The manifest itself is damaged: the pass already said so.
            Err(_) => return Ok(pass.report),
        }
    }
}

fn verify_once(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &Arc<KeyManager>, options: &Options) -> Result<Pass> {
    let mut report = VerifyReport { files_checked: [KEYSLOTS_FILE, KEYRING_FILE].len(), ..VerifyReport::default() };
    let mut epoch_missing = false;
    let mut note = |report: &mut VerifyReport, fallback: &str, e: &Error| {
        epoch_missing |= matches!(e, Error::MissingEpoch { .. });
        damaged(report, fallback, e);
    };

    report.files_checked += 1;
    let versions = match VersionSet::recover(vfs, dir, keys, options.num_levels) {
        Ok(v) => Some(v),
        Err(e) => {
            note(&mut report, compaction::CURRENT_FILE, &e.into());
            None
        }
    };
    // Listed after the manifest was read: a table it names was made before it
    // was named, so it is in the listing unless it was removed since.
    let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;
    // Without a manifest every file is checked; with one, only what it still needs
    // (leftovers of an interrupted flush are garbage the next open removes).
    let mut live_tables: Option<HashSet<u64>> = None;
    let mut min_log = 0;
    // WAL segments below `min_log` kept for the change feed: checked like the others.
    let mut kept: HashSet<u64> = HashSet::new();
    if let Some(versions) = &versions {
        report.files_checked += 1;
        let version = versions.current();
        let mut live = HashSet::new();
        // The tables of every keyspace.
        for (_, file) in version.all_files() {
            live.insert(file.number);
            let name = crypto::names::table_file(file.number);
            if !names.contains(&name) {
                report.damaged.push((name, "listed in the manifest but missing".into()));
            }
        }
        live_tables = Some(live);
        min_log = versions.log_number();
        kept = versions.feed_segments().into_keys().collect();
    }

    for name in &names {
        if let Some(number) = file_number(name, "sst") {
            if live_tables.as_ref().is_some_and(|live| !live.contains(&number)) {
                continue;
            }
            report.files_checked += 1;
            match verify_table(vfs, dir, keys, number, name) {
                Ok(entries) => report.entries_checked += entries,
                Err(e) => note(&mut report, name, &e),
            }
        } else if let Some(number) = file_number(name, "wal") {
            if number < min_log && !kept.contains(&number) {
                continue;
            }
            report.files_checked += 1;
            match verify_wal(vfs, dir, keys, number) {
                Ok((records, None)) => report.entries_checked += records,
                Ok((records, Some(at))) => {
                    report.entries_checked += records;
                    report.torn_tails.push((name.clone(), at));
                }
                Err(e) => note(&mut report, name, &e),
            }
        } else if let Some(number) = crate::blob::blob_number(name) {
            // Blob files are checked whole, live or not: every frame authenticates
            // under the file's key and matches its keyed hash.
            report.files_checked += 1;
            match crate::blob::verify_blob_file(&**vfs, dir, keys, number) {
                Ok((chunks, None)) => report.entries_checked += chunks,
                Ok((chunks, Some(at))) => {
                    report.entries_checked += chunks;
                    report.torn_tails.push((name.clone(), at));
                }
                // Removed by the blob store's GC since the listing.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => note(&mut report, name, &e),
            }
        }
    }
    if versions.is_some() {
        // The segments against the manifest: a listed one missing, an unlisted
        // one holding writes, a seqno gap or overlap (a file of another state).
        // Damage already reported above is not reported twice.
        let replayed = crate::db::open::probe_and_replay(vfs, dir, keys, options.num_levels, false);
        // A store older than the outside counter saw (a rolled-back directory).
        let checked = replayed.and_then(|r| crate::db::open::check_freshness(options, keys, r.last_seqno));
        if let Err(e) = checked {
            let file = error_file(&e).unwrap_or_else(|| crate::freshness::COUNTER_NAME.to_string());
            if !report.damaged.iter().any(|(f, _)| *f == file) {
                report.damaged.push((file, e.to_string()));
            }
        }
    }
    Ok(Pass { report, epoch_missing })
}

fn verify_table(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &KeyManager, number: u64, name: &str) -> Result<u64> {
    let path = index::TableCache::table_path(dir, number);
    let file = vfs.open(&path).map_err(|source| Error::Io { file: name.to_string(), source })?;
    let reader = TableReader::open(file, keys, number, name, None)?;
    Ok(reader.verify()?)
}

/// Reads a segment and decodes every batch; returns the record count and where a torn tail starts.
fn verify_wal(vfs: &Arc<dyn Vfs>, dir: &Path, keys: &KeyManager, number: u64) -> Result<(u64, Option<u64>)> {
    let path = wal::segment_path(dir, number);
    let name = wal_name(number);
    if wal_segment_is_blank(&**vfs, dir, number)? {
        // Created but never synced before a crash: holds no record.
        return Ok((0, None));
    }
    let log = crate::db::open::read_wal_segment(vfs, &path, number, keys, true)?;
    for record in &log.records {
        decode_batch(record, &name, 0)?;
    }
    Ok((log.records.len() as u64, log.torn_tail_at))
}
