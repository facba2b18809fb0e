//! The `blob` commands: `put KEY FILE|-`, `get KEY FILE|- [--offset N]
//! [--length N]`, `rm KEY`, `ls`, `gc`. Data is streamed both ways (the blob
//! store holds a few MiB whatever the size); a progress bar is drawn on stderr
//! only when stderr is a terminal.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{Exit, GlobalArgs, EXIT_FAILURE};

/// Bytes moved per read or write call.
const COPY_BUFFER_BYTES: usize = 1 << 20;

#[derive(Debug, Subcommand)]
pub(crate) enum BlobCommand {
    /// Streams FILE (or stdin for "-") into blob KEY, replacing any blob
    /// there; prints "stored KEY: N bytes".
    Put {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// File to read, "-" for stdin.
        #[arg(allow_hyphen_values = true)]
        file: String,
    },
    /// Writes blob KEY (or LENGTH bytes of it from OFFSET) to FILE, or to
    /// stdout for "-"; exits 1 if it is absent.
    Get {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// File to write, "-" for stdout.
        #[arg(allow_hyphen_values = true)]
        file: String,
        /// First byte to write.
        #[arg(long, value_name = "N")]
        offset: Option<u64>,
        /// Most bytes to write.
        #[arg(long, value_name = "N")]
        length: Option<u64>,
    },
    /// Deletes blob KEY and reclaims the space no other blob shares.
    Rm {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Prints "KEY<TAB>BYTES" lines for every blob, in key order.
    Ls,
    /// Removes what no blob needs (left by deletes, overwrites and interrupted puts).
    Gc,
}

fn progress(total: Option<u64>) -> ProgressBar {
    if !crate::progress::wanted(false) {
        return ProgressBar::hidden();
    }
    match total {
        Some(n) => {
            let bar = ProgressBar::new(n);
            if let Ok(style) = ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}") {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}") {
                bar.set_style(style);
            }
            bar
        }
    }
}

/// Copies everything from `from` to `to` through one buffer, advancing `bar`.
fn copy(from: &mut dyn Read, to: &mut dyn Write, bar: &ProgressBar) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(buf.get(..n).unwrap_or_default())?;
        total += n as u64;
        bar.inc(n as u64);
    }
}

/// `verify`'s second pass, once every file is intact on its own: the blob
/// store checked against its records (a blob file cut short is damage here,
/// where the file alone looks like a torn tail). Adds what it finds to `verdict`.
pub(crate) fn verify_blobs(g: &GlobalArgs, verdict: &mut synapsed_storage::VerifyReport) -> anyhow::Result<()> {
    let db = g.open(true)?;
    let problems = db.blobs()?.verify()?;
    verdict.damaged.extend(problems);
    Ok(())
}

pub(crate) fn run(g: &GlobalArgs, command: &BlobCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        BlobCommand::Put { key, file } => {
            let (mut source, total): (Box<dyn Read>, Option<u64>) = if file == "-" {
                (Box::new(io::stdin().lock()), None)
            } else {
                let f = File::open(file).with_context(|| format!("cannot read {file}"))?;
                let len = f.metadata().ok().map(|m| m.len());
                (Box::new(f), len)
            };
            let db = g.open(false)?;
            let blobs = db.blobs()?;
            let replaced = blobs.len(key.as_bytes())?.is_some();
            let bar = progress(total);
            let mut writer = blobs.writer(key.as_bytes())?;
            copy(&mut source, &mut writer, &bar).with_context(|| format!("cannot store blob {key}"))?;
            let n = writer.finish()?;
            bar.finish_and_clear();
            if replaced {
                blobs.gc()?;
            }
            drop(blobs);
            db.close()?;
            writeln!(out, "stored {key}: {n} bytes")?;
        }
        BlobCommand::Get { key, file, offset, length } => {
            let db = g.open(true)?;
            let blobs = db.blobs()?;
            let Some(mut reader) = blobs.reader(key.as_bytes())? else {
                return Err(Exit::new(EXIT_FAILURE, format!("blob not found: {key}")).into());
            };
            let start = offset.unwrap_or(0);
            reader.seek(SeekFrom::Start(start))?;
            let left = reader.len().saturating_sub(start);
            let want = length.map_or(left, |l| l.min(left));
            let bar = progress(Some(want));
            let mut limited = reader.take(want);
            if file == "-" {
                copy(&mut limited, out, &bar)?;
            } else {
                let mut f = File::create(file).with_context(|| format!("cannot write {file}"))?;
                copy(&mut limited, &mut f, &bar)?;
                f.sync_all().with_context(|| format!("cannot write {file}"))?;
            }
            bar.finish_and_clear();
        }
        BlobCommand::Rm { key } => {
            let db = g.open(false)?;
            let blobs = db.blobs()?;
            if !blobs.delete(key.as_bytes())? {
                return Err(Exit::new(EXIT_FAILURE, format!("blob not found: {key}")).into());
            }
            blobs.gc()?;
            drop(blobs);
            db.close()?;
        }
        BlobCommand::Ls => {
            let db = g.open(true)?;
            for (key, len) in db.blobs()?.list()? {
                writeln!(out, "{}\t{len}", String::from_utf8_lossy(&key))?;
            }
        }
        BlobCommand::Gc => {
            let db = g.open(false)?;
            let blobs = db.blobs()?;
            let report = blobs.gc()?;
            drop(blobs);
            db.close()?;
            writeln!(
                out,
                "blob gc: {} chunk(s) and {} file(s) removed ({} bytes), {} chunk(s) moved",
                report.chunks_removed, report.files_removed, report.bytes_removed, report.chunks_relocated
            )?;
        }
    }
    Ok(())
}
