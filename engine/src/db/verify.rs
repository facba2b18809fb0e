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

pub(crate) fn verify(dir: &Path, credential: &Credential, options: &Options) -> Result<VerifyReport> {
    if !options.vfs.exists(&dir.join(KEYSLOTS_FILE)) {
        return Err(Error::NotFound(dir.display().to_string()));
    }
    let vfs = ReadOnlyVfs::wrap(options.vfs.clone());
    let mut report = VerifyReport::default();
    let keys = match KeyManager::unlock(&vfs, dir, credential) {
        Ok(keys) => keys,
        Err(crypto::Error::WrongKey) => return Err(Error::WrongKey),
        Err(e) => {
            report.files_checked += 1;
            damaged(&mut report, KEYSLOTS_FILE, &e.into());
            return Ok(report);
        }
    };
    report.files_checked += [KEYSLOTS_FILE, KEYRING_FILE].len();
    let names = vfs.list_dir(dir).map_err(|source| Error::Io { file: ".".into(), source })?;

    report.files_checked += 1;
    let versions = match VersionSet::recover(&vfs, dir, &keys, options.num_levels) {
        Ok(v) => Some(v),
        Err(e) => {
            damaged(&mut report, compaction::CURRENT_FILE, &e.into());
            None
        }
    };
    // Without a manifest every file is checked; with one, only what it still needs
    // (leftovers of an interrupted flush are garbage the next open removes).
    let mut live_tables: Option<HashSet<u64>> = None;
    let mut min_log = 0;
    if let Some(versions) = &versions {
        report.files_checked += 1;
        let version = versions.current();
        let mut live = HashSet::new();
        for level in 0..version.num_levels() {
            for file in version.level_files(level) {
                live.insert(file.number);
                let name = format!("{:06}.sst", file.number);
                if !names.contains(&name) {
                    report.damaged.push((name, "listed in the manifest but missing".into()));
                }
            }
        }
        live_tables = Some(live);
        min_log = versions.log_number();
    }

    for name in &names {
        if let Some(number) = file_number(name, "sst") {
            if live_tables.as_ref().is_some_and(|live| !live.contains(&number)) {
                continue;
            }
            report.files_checked += 1;
            match verify_table(&vfs, dir, &keys, number, name) {
                Ok(entries) => report.entries_checked += entries,
                Err(e) => damaged(&mut report, name, &e),
            }
        } else if let Some(number) = file_number(name, "wal") {
            if number < min_log {
                continue;
            }
            report.files_checked += 1;
            match verify_wal(&vfs, dir, &keys, number) {
                Ok((records, None)) => report.entries_checked += records,
                Ok((records, Some(at))) => {
                    report.entries_checked += records;
                    report.torn_tails.push((name.clone(), at));
                }
                Err(e) => damaged(&mut report, name, &e),
            }
        }
    }
    if versions.is_some() {
        // The segments against the manifest: a listed one missing, an unlisted
        // one holding writes, a seqno gap or overlap (a file of another state).
        // Damage already reported above is not reported twice.
        let replayed = crate::db::open::probe_and_replay(&vfs, dir, &keys, options.num_levels, false);
        // A store older than the outside counter saw (a rolled-back directory).
        let checked = replayed.and_then(|r| crate::db::open::check_freshness(options, &keys, r.last_seqno));
        if let Err(e) = checked {
            let file = error_file(&e).unwrap_or_else(|| crate::freshness::COUNTER_NAME.to_string());
            if !report.damaged.iter().any(|(f, _)| *f == file) {
                report.damaged.push((file, e.to_string()));
            }
        }
    }
    Ok(report)
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
