//! Bytes read and written per file kind, and files held open: a file system
//! wrapper that counts every read and append of the store's files.
//!
//! Set in front of the store's file system when [`crate::Options::metrics`]
//! is on. The kind comes from the file name alone (`wal`, `table`,
//! `manifest`, `blob`, `keys`, `other`); no path, name or byte of content
//! reaches a metric.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crypto::vfs::{ForwardingVfs, RandomAccessFile, Vfs, WritableFile};
use metrics::{counter, gauge, Counter, Gauge};

/// The kinds a file is counted under, in the order of [`KindMetrics`]'s arrays.
const KINDS: [&str; 6] = ["wal", "table", "manifest", "blob", "keys", "other"];

/// The kind of the file at `path`, from its name.
pub(crate) fn file_kind(path: &Path) -> usize {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if crypto::names::wal_number(name).is_some() {
        0
    } else if crypto::names::table_number(name).is_some() {
        1
    } else if crypto::names::manifest_number(name).is_some() || name == "CURRENT" {
        2
    } else if name.ends_with(".blob") {
        3
    } else if name.starts_with("KEYRING") || name.starts_with("KEYSLOTS") {
        4
    } else {
        5
    }
}

/// Handles of the per-kind metrics, made once.
struct KindMetrics {
    read: [Counter; 6],
    written: [Counter; 6],
    open: Gauge,
}

impl KindMetrics {
    fn new() -> Self {
        KindMetrics {
            read: KINDS.map(|kind| counter!("synapsed_file_read_bytes_total", "kind" => kind)),
            written: KINDS.map(|kind| counter!("synapsed_file_written_bytes_total", "kind" => kind)),
            open: gauge!("synapsed_open_files"),
        }
    }
}

/// The store's file system with every read and append counted.
pub(crate) struct MeteredVfs {
    inner: Arc<dyn Vfs>,
    metrics: Arc<KindMetrics>,
}

impl std::fmt::Debug for MeteredVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredVfs").field("inner", &self.inner).finish()
    }
}

/// `vfs` itself when `on` is false, else `vfs` with its files counted.
pub(crate) fn metered(vfs: Arc<dyn Vfs>, on: bool) -> Arc<dyn Vfs> {
    if !on {
        return vfs;
    }
    Arc::new(MeteredVfs { inner: vfs, metrics: Arc::new(KindMetrics::new()) })
}

/// A file held open: counted in `synapsed_open_files` until dropped.
struct OpenFile<F: ?Sized> {
    file: Box<F>,
    kind: usize,
    metrics: Arc<KindMetrics>,
}

impl<F: ?Sized> OpenFile<F> {
    fn new(file: Box<F>, kind: usize, metrics: &Arc<KindMetrics>) -> Self {
        metrics.open.increment(1.0);
        OpenFile { file, kind, metrics: metrics.clone() }
    }
}

impl<F: ?Sized> Drop for OpenFile<F> {
    fn drop(&mut self) {
        self.metrics.open.decrement(1.0);
    }
}

impl WritableFile for OpenFile<dyn WritableFile> {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.file.append(data)?;
        if let Some(c) = self.metrics.written.get(self.kind) {
            c.increment(data.len() as u64);
        }
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }
    fn len(&self) -> u64 {
        self.file.len()
    }
    fn start_writeback(&self, offset: u64, len: u64) {
        self.file.start_writeback(offset, len)
    }
    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.file.preallocate(len)
    }
}

/// A reader counted the same way; the wrapped file is shared.
struct OpenReader {
    file: Arc<dyn RandomAccessFile>,
    kind: usize,
    metrics: Arc<KindMetrics>,
}

impl Drop for OpenReader {
    fn drop(&mut self) {
        self.metrics.open.decrement(1.0);
    }
}

impl RandomAccessFile for OpenReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)?;
        if let Some(c) = self.metrics.read.get(self.kind) {
            c.increment(buf.len() as u64);
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.file.len()
    }
}

impl ForwardingVfs for MeteredVfs {
    fn inner(&self) -> &dyn Vfs {
        &*self.inner
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = self.inner.create(path)?;
        Ok(Box::new(OpenFile::new(file, file_kind(path), &self.metrics)))
    }
    fn open_for_overwrite(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = self.inner.open_for_overwrite(path)?;
        Ok(Box::new(OpenFile::new(file, file_kind(path), &self.metrics)))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = self.inner.open(path)?;
        self.metrics.open.increment(1.0);
        Ok(Arc::new(OpenReader { file, kind: file_kind(path), metrics: self.metrics.clone() }))
    }
    /// Mapped reads are counted like pread ones: a mapped table under metrics
    /// stays mapped (`Options::mmap_reads`), its bytes still reach the counters.
    fn open_mapped(&self, path: &Path) -> io::Result<Option<Arc<dyn RandomAccessFile>>> {
        let Some(file) = self.inner.open_mapped(path)? else { return Ok(None) };
        self.metrics.open.increment(1.0);
        Ok(Some(Arc::new(OpenReader { file, kind: file_kind(path), metrics: self.metrics.clone() })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_names() {
        let kind = |n: &str| KINDS.get(file_kind(Path::new(n))).copied().unwrap_or("none");
        assert_eq!(kind("/s/000007.wal"), "wal");
        assert_eq!(kind("000012.sst"), "table");
        assert_eq!(kind("MANIFEST-000003"), "manifest");
        assert_eq!(kind("CURRENT"), "manifest");
        assert_eq!(kind("000004.blob"), "blob");
        assert_eq!(kind("KEYRING.tmp"), "keys");
        assert_eq!(kind("LOCK"), "other");
    }
}
