//! Removing files no live version needs, optionally overwriting them first.

use std::collections::HashSet;
use std::path::Path;

use crypto::vfs::Vfs;

use crate::error::Result;

/// Removes from `dir` every table not in `live_tables`, every WAL segment numbered
/// below `min_log_number`, every manifest other than `manifest_number`, and stale
/// temporary files. Overwrites each `passes` times before unlinking (0 = plain
/// unlink). Returns the names removed.
pub fn delete_obsolete_files(
    vfs: &dyn Vfs,
    dir: &Path,
    live_tables: &HashSet<u64>,
    min_log_number: u64,
    manifest_number: u64,
    passes: u32,
) -> Result<Vec<String>> {
    let _ = (vfs, dir, live_tables, min_log_number, manifest_number, passes);
    todo!()
}

/// Overwrites `path` `passes` times (syncing each pass) and removes it.
pub fn overwrite_and_remove(vfs: &dyn Vfs, path: &Path, passes: u32) -> Result<()> {
    let _ = (vfs, path, passes);
    todo!()
}
