//! Text and JSON output of `stats` and `verify`, and sizes of the store directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use synapsed_storage::{RepairReport, Stats, VerifyReport};

/// One file of the store directory.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct FileSize {
    pub(crate) name: String,
    pub(crate) bytes: u64,
}

/// Every regular file directly under `dir`, sorted by name.
pub(crate) fn dir_files(dir: &Path) -> anyhow::Result<Vec<FileSize>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Removed since the listing (the store's own cleanup of obsolete
            // files runs beside this): no longer one of its files.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", entry.path().display())),
        };
        if meta.is_file() {
            files.push(FileSize { name: entry.file_name().to_string_lossy().into_owned(), bytes: meta.len() });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Total bytes of the files directly under `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    Ok(dir_files(dir)?.iter().map(|f| f.bytes).sum())
}

/// `1234567` -> `1.2 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {name}")
    }
}

pub(crate) fn print_verify(out: &mut dyn Write, report: &VerifyReport) -> anyhow::Result<()> {
    writeln!(out, "checked {} files, {} entries", report.files_checked, report.entries_checked)?;
    for (file, problem) in &report.damaged {
        writeln!(out, "damaged: {file}: {problem}")?;
    }
    for (file, offset) in &report.torn_tails {
        writeln!(
            out,
            "note: {file}: torn tail at offset {offset} (an unacknowledged record cut short by a crash or a full disk; the next open truncates it)"
        )?;
    }
    if report.is_ok() {
        writeln!(out, "ok: every file is intact")?;
    }
    Ok(())
}

pub(crate) fn print_repair(out: &mut dyn Write, report: &RepairReport) -> anyhow::Result<()> {
    writeln!(
        out,
        "repaired: {} tables and {} logs read, {} entries kept (last seqno {}), new manifest {}",
        report.tables_scanned, report.logs_replayed, report.entries_recovered, report.last_seqno, report.new_manifest
    )?;
    if !report.manifest_readable {
        writeln!(out, "note: the old manifest was unreadable; every table in the directory was used")?;
    }
    for lost in &report.lost {
        let entries = lost.approx_lost_entries.map_or_else(|| "an unknown number of".to_string(), |n| format!("about {n}"));
        let moved = lost.quarantined_to.as_deref().map(|p| format!(", moved to {p}")).unwrap_or_default();
        let blocks = lost
            .blocks
            .map(|b| format!(", {} of {} data blocks lost", b.lost, b.total))
            .unwrap_or_default();
        writeln!(
            out,
            "lost: {}: {} ({} entries salvaged, {entries} entries lost{blocks}{moved})",
            lost.file, lost.reason, lost.salvaged
        )?;
    }
    if report.nothing_lost() {
        writeln!(out, "ok: nothing was lost")?;
    }
    Ok(())
}

pub(crate) fn print_stats(out: &mut dyn Write, dir: &Path, stats: &Stats, files: &[FileSize]) -> anyhow::Result<()> {
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    writeln!(out, "store             {}", dir.display())?;
    writeln!(out, "last seqno        {}", stats.last_seqno)?;
    writeln!(out, "files on disk     {} ({})", files.len(), human_bytes(total))?;
    writeln!(out, "memtables         {}", human_bytes(stats.memtable_bytes))?;
    writeln!(out, "level  tables  bytes")?;
    for (level, count) in stats.files_per_level.iter().enumerate() {
        let bytes = stats.bytes_per_level.get(level).copied().unwrap_or(0);
        if *count > 0 {
            writeln!(out, "L{level:<5} {count:<7} {}", human_bytes(bytes))?;
        }
    }
    if stats.files_per_level.iter().all(|c| *c == 0) {
        writeln!(out, "(no tables yet: everything is in the write-ahead log)")?;
    }
    writeln!(out, "block cache       {} hits, {} misses", stats.block_cache_hits, stats.block_cache_misses)?;
    writeln!(out, "since open        {} flushes, {} compactions", stats.flushes, stats.compactions)?;
    let epochs: Vec<String> = stats.live_epochs.iter().map(u32::to_string).collect();
    writeln!(out, "data-key epochs   {}", epochs.join(", "))?;
    Ok(())
}

/// One JSON object: the engine's counters plus the directory listing.
pub(crate) fn print_stats_json(
    out: &mut dyn Write,
    dir: &Path,
    stats: &Stats,
    files: &[FileSize],
) -> anyhow::Result<()> {
    let mut object = match serde_json::to_value(stats)? {
        serde_json::Value::Object(map) => map,
        other => anyhow::bail!("stats did not serialize to an object: {other}"),
    };
    object.insert("dir".into(), serde_json::Value::String(dir.display().to_string()));
    object.insert("files".into(), serde_json::to_value(files)?);
    object.insert("files_bytes".into(), files.iter().map(|f| f.bytes).sum::<u64>().into());
    serde_json::to_writer(&mut *out, &serde_json::Value::Object(object))?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
