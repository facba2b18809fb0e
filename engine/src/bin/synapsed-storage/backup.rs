//! `backup URL`, `backup ls URL`, `backup prune URL --keep N` and
//! `restore URL --to DIR [--at ID]`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use synapsed_storage::backup::{self, Target};

use super::{Exit, GlobalArgs, EXIT_USAGE};

/// Arguments of `backup`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BackupArgs {
    /// file:///dir or s3://bucket/prefix (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION from the environment).
    url: Option<String>,
    #[command(subcommand)]
    command: Option<BackupCommand>,
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Lists the backups at URL: "ID<TAB>TIME_MS<TAB>FILES<TAB>BYTES" lines.
    Ls {
        /// The backup URL.
        url: String,
    },
    /// Keeps the newest N backups and removes the data no other backup names.
    Prune {
        /// The backup URL.
        url: String,
        /// How many backups to keep (at least 1).
        #[arg(long, value_name = "N")]
        keep: usize,
    },
}

/// Arguments of `restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup URL.
    url: String,
    /// The directory to restore into (must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// The backup to restore (default: the newest).
    #[arg(long, value_name = "ID")]
    at: Option<u64>,
}

fn target(url: &str) -> anyhow::Result<Target> {
    Ok(Target::from_url(url, &backup::env_var)?)
}

pub(crate) fn backup_cmd(g: &GlobalArgs, args: &BackupArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let credential = g.credential()?;
    match (&args.command, &args.url) {
        (Some(BackupCommand::Ls { url }), _) => {
            for b in backup::list(&target(url)?, &credential)? {
                writeln!(out, "{}\t{}\t{}\t{}", b.id, b.created_unix_ms, b.files, b.bytes)?;
            }
        }
        (Some(BackupCommand::Prune { url, keep }), _) => {
            if *keep == 0 {
                return Err(Exit::new(EXIT_USAGE, "--keep must be at least 1").into());
            }
            let r = backup::prune(&target(url)?, *keep, &credential)?;
            writeln!(out, "pruned {} backups, {} objects ({} bytes)", r.removed_backups.len(), r.removed_objects, r.removed_bytes)?;
        }
        (None, Some(url)) => {
            let target = target(url)?;
            let dir = g.dir()?;
            let db = g.open(false)?;
            let progress = crate::progress::Transfer::start("backup");
            let r = backup::backup(&db, dir, &target, &credential, &|d, t| progress.update(d, t));
            drop(progress);
            let r = r.with_context(|| format!("backup of {} to {url} failed", dir.display()))?;
            db.close()?;
            writeln!(
                out,
                "backup {}: {} files ({} bytes) uploaded, {} files already there",
                r.id, r.uploaded_files, r.uploaded_bytes, r.existing_files
            )?;
        }
        (None, None) => return Err(Exit::new(EXIT_USAGE, "backup needs a URL (or: backup ls URL)").into()),
    }
    Ok(())
}

pub(crate) fn restore_cmd(g: &GlobalArgs, args: &RestoreArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let credential = g.credential()?;
    let target = target(&args.url)?;
    let progress = crate::progress::Transfer::start("restore");
    let r = backup::restore(&target, args.at, &args.to, &credential, g.options(false)?, &|d, t| progress.update(d, t));
    drop(progress);
    let r = r.with_context(|| format!("restore from {} failed", args.url))?;
    writeln!(out, "restored backup {} to {}: {} files ({} bytes)", r.id, args.to.display(), r.files, r.bytes)?;
    Ok(())
}
