//! The floors under every durable write, measured directly by the harness in the
//! directory the engines will use, before any engine runs:
//!
//! - a 4 KiB append made durable (write + fdatasync): the file grows, so each
//!   sync also writes the inode's size;
//! - a 200-byte write into space reserved ahead with fallocate, made durable with
//!   fdatasync: the cheapest durable commit one writer can make, one at a time (a
//!   log that reserves its space, as synapsed-storage's WAL does, pays this);
//! - the same write followed by `sync_file_range` instead: it starts and waits
//!   for the write-back of the range but neither flushes the device's volatile
//!   write cache nor writes metadata, so on a device whose cache is write back it
//!   does not survive a power loss. It is what sled 0.34's `flush` does on Linux,
//!   and it is reported so that sled's durable rows can be read against it.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use synapsed_benches::Histogram;

use crate::rows::Recorder;

/// Bytes of one small commit (about one WAL frame of the latency run's put).
const SMALL_WRITE: usize = 200;

/// Runs the three probes (`count` commits each, each stopping early after
/// `budget`) and records their medians and p99s.
pub fn fsync_floor(dir: &Path, count: u32, budget: Duration, rec: &mut Recorder) -> Result<()> {
    let path = dir.join("fsync-probe");

    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let block = [0xa5u8; 4096];
    let h = timed(count, budget, || {
        file.write_all(&block)?;
        file.sync_data()
    })?;
    eprintln!("  device: {} syncs of 4 KiB appends", h.count());
    rec.nanos("fsync floor: 4 KiB append + fdatasync p50", h.quantile_ns(0.5))?;
    rec.nanos("fsync floor: 4 KiB append + fdatasync p99", h.quantile_ns(0.99))?;
    drop(file);
    std::fs::remove_file(&path)?;
    for flush in [Flush::Fdatasync, Flush::SyncFileRange] {
        let h = small_writes(dir, flush, count, budget)?;
        eprintln!("  device: {} x {} of {SMALL_WRITE} B into reserved space", h.count(), flush.name());
        let label = flush.row();
        rec.nanos(&format!("{label} p50"), h.quantile_ns(0.5))?;
        rec.nanos(&format!("{label} p99"), h.quantile_ns(0.99))?;
    }
    Ok(())
}

/// The durable floor alone (`count` 200-byte writes into reserved space, each
/// followed by fdatasync, stopping early after `budget`), in a probe file in `dir`.
pub fn durable_floor(dir: &Path, count: u32, budget: Duration) -> Result<Histogram> {
    small_writes(dir, Flush::Fdatasync, count, budget)
}

/// Times `count` 200-byte writes into space reserved ahead, each ended by `flush`,
/// in a probe file in `dir` (removed afterwards).
fn small_writes(dir: &Path, flush: Flush, count: u32, budget: Duration) -> Result<Histogram> {
    let path = dir.join("fsync-probe");
    let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
    let reserved = u64::from(count) * SMALL_WRITE as u64;
    reserve(&file, reserved).context("reserving the probe file")?;
    file.sync_all()?;
    let record = [0x5au8; SMALL_WRITE];
    let mut offset = 0u64;
    let h = timed(count, budget, || {
        file.write_all_at(&record, offset)?;
        flush.run(&file, offset, SMALL_WRITE)?;
        offset += SMALL_WRITE as u64;
        Ok(())
    })?;
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(h)
}

/// How a probe ends each small write.
#[derive(Clone, Copy)]
enum Flush {
    Fdatasync,
    SyncFileRange,
}

impl Flush {
    fn name(self) -> &'static str {
        match self {
            Flush::Fdatasync => "fdatasync",
            Flush::SyncFileRange => "sync_file_range",
        }
    }

    /// The row its probe records (p50 and p99 are appended).
    fn row(self) -> &'static str {
        match self {
            Flush::Fdatasync => "durable floor: 200 B write into reserved space + fdatasync",
            Flush::SyncFileRange => "not durable: 200 B write + sync_file_range (no cache flush)",
        }
    }

    fn run(self, file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<()> {
        match self {
            Flush::Fdatasync => file.sync_data(),
            Flush::SyncFileRange => {
                let flags =
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                let (offset, len) = (to_off(offset)?, to_off(len as u64)?);
                // SAFETY: the descriptor is open for as long as `file` is borrowed;
                // the call reads no memory of ours.
                let ret = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
                if ret == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            }
        }
    }
}

fn to_off(v: u64) -> std::io::Result<libc::off64_t> {
    libc::off64_t::try_from(v).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// Reserves `len` bytes with fallocate (extending the size), falling back to
/// `set_len` where the file system has no fallocate.
fn reserve(file: &std::fs::File, len: u64) -> std::io::Result<()> {
    // SAFETY: as above; fallocate reads no memory of ours.
    let ret = unsafe { libc::fallocate64(file.as_raw_fd(), 0, 0, to_off(len)?) };
    if ret == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(len),
        _ => Err(err),
    }
}

/// Times `op` up to `count` times, stopping early once `budget` has passed.
fn timed(count: u32, budget: Duration, mut op: impl FnMut() -> std::io::Result<()>) -> Result<Histogram> {
    let mut h = Histogram::new();
    let deadline = Instant::now() + budget;
    for _ in 0..count {
        let start = Instant::now();
        op()?;
        h.record(start.elapsed());
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(h)
}
