//! What the blob store (`crate::blob`) needs of an open store beyond the
//! public API: its directory, file system, keys, file numbers and the blob
//! store's shared state.

use std::path::Path;
use std::sync::Arc;

use crypto::vfs::Vfs;
use crypto::KeyManager;

use crate::db::{Db, RotationReport};
use crate::error::Result;
use crate::options::Options;

impl Db {
    pub(crate) fn blob_state(&self) -> &crate::blob::BlobState {
        &self.blob
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.inner.options.read_only
    }

    pub(crate) fn options(&self) -> &Options {
        &self.inner.options
    }

    pub(crate) fn store_dir(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn store_vfs(&self) -> &Arc<dyn Vfs> {
        &self.inner.vfs
    }

    pub(crate) fn key_manager(&self) -> &Arc<KeyManager> {
        &self.inner.keys
    }

    /// A file number never handed out before (numbers are unique across file kinds).
    pub(crate) fn new_file_number(&self) -> u64 {
        self.inner.versions.new_file_number()
    }

    /// Overwrite passes before a file is unlinked (0: plain unlink).
    pub(crate) fn secure_delete_passes(&self) -> u32 {
        self.inner
            .options
            .secure_delete_passes
            .max(self.inner.sched.min_overwrite_passes.load(std::sync::atomic::Ordering::Acquire))
    }

    /// After a key rotation of the engine's own files: moves blob files off
    /// old data-key epochs (the blob store's GC re-seals their live frames
    /// under the current epoch and removes them, overwritten `passes` times at
    /// least), then destroys the epochs no file is under any more, updating
    /// `report`. Nothing to do for a store without blobs.
    pub(crate) fn rotate_blob_files(&self, report: &mut RotationReport, passes: u32) -> Result<()> {
        if report.epochs_retained.is_empty() || self.is_read_only() {
            return Ok(());
        }
        if self.keyspace(crate::blob::format::BLOB_KEYSPACE)?.is_none() {
            return Ok(());
        }
        crate::blob::rotate(&self.blobs()?, passes)?;
        let (destroyed, retained) = self.inner.destroy_unused_epochs()?;
        report.epochs_destroyed.extend(destroyed);
        report.epochs_destroyed.sort_unstable();
        report.epochs_retained = retained;
        Ok(())
    }
}
