//! The floor under every durable write: how long this device takes to make a
//! 4 KiB append durable (write + fdatasync), measured directly by the harness in
//! the directory the engines will use. No engine can commit durably faster than
//! this, one commit at a time.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use synapsed_benches::Histogram;

use crate::rows::Recorder;

/// Appends and fdatasyncs 4 KiB `count` times (stopping early after `budget`)
/// and records the median and p99.
pub fn fsync_floor(dir: &Path, count: u32, budget: Duration, rec: &mut Recorder) -> Result<()> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let block = [0xa5u8; 4096];
    let mut h = Histogram::new();
    let deadline = Instant::now() + budget;
    for _ in 0..count {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        h.record(start.elapsed());
        if Instant::now() > deadline {
            break;
        }
    }
    drop(file);
    std::fs::remove_file(&path)?;
    eprintln!("  device: {} syncs of 4 KiB", h.count());
    rec.nanos("fsync floor: 4 KiB append + fdatasync p50", h.quantile_ns(0.5))?;
    rec.nanos("fsync floor: 4 KiB append + fdatasync p99", h.quantile_ns(0.99))?;
    Ok(())
}
