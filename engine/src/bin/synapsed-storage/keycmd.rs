//! The key commands of the CLI: `init` with its recovery key (printed once, or
//! written to an owner-only file, optionally split into k-of-n shares), the
//! `--recovery-key-file` credential, `key passphrase`, `key rotate`, `key rekey`,
//! `key slots` and `secure-delete`. Secrets stay in zeroizing buffers; no message repeats
//! one, and the recovery key reaches stdout only when `init` is asked for no file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use synapsed_storage::{Credential, Db, RecoveryKey, RecoveryShare, RotationProgress, SlotInfo};
use zeroize::Zeroizing;

use crate::keys::read_secret_file;
use crate::{Exit, GlobalArgs, EXIT_USAGE};

/// Environment variable holding the new passphrase for `key passphrase`.
pub(crate) const NEW_PASSPHRASE_ENV: &str = "SYNAPSED_NEW_PASSPHRASE";

/// Options of `init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Write the recovery key to F (created with mode 0600; must not exist)
    /// instead of printing it.
    #[arg(long, value_name = "F")]
    recovery_out: Option<PathBuf>,
    /// Split the recovery key into N shares of which any K rebuild it (K/N, e.g.
    /// 2/3); the shares are printed (or written to --recovery-out, or one file
    /// per share with --recovery-share-out-dir), not the key.
    #[arg(long, value_name = "K/N")]
    recovery_shares: Option<String>,
    /// With --recovery-shares: write share i to D/share-i-of-N.txt (each created
    /// with mode 0600, never over an existing file; D is created if missing), so
    /// each can go to its own device or trustee.
    #[arg(long, value_name = "D", requires = "recovery_shares", conflicts_with = "recovery_out")]
    recovery_share_out_dir: Option<PathBuf>,
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Replaces the passphrase (the new one from --new-passphrase-file or
    /// SYNAPSED_NEW_PASSPHRASE); the old one stops working at once.
    Passphrase {
        /// File holding the new passphrase (one trailing newline is ignored).
        #[arg(long, value_name = "F")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Starts a new data-key epoch, re-encrypts every file under older epochs and
    /// destroys their keys.
    Rotate,
    /// Replaces the master key and every data key (like `cryptsetup reencrypt`):
    /// a new master key wrapped for the credential given, a new recovery key,
    /// every file re-encrypted. Other passphrases, raw keys and device slots are
    /// removed (listed) and must be added again.
    Rekey {
        /// Write the new recovery key to F (created with mode 0600; must not
        /// exist) before the change, instead of printing it after.
        #[arg(long, value_name = "F")]
        recovery_out: Option<PathBuf>,
        /// Make no new recovery key (the old one stops working all the same).
        #[arg(long, conflicts_with = "recovery_out")]
        no_recovery_key: bool,
    },
    /// Lists the keyslots (kinds and parameters; no key material).
    Slots,
}

/// The credential of `--recovery-key-file`: a recovery key (`SYN1-...`) or at
/// least K share lines (`SYS1-...`), as `init` writes them.
pub(crate) fn recovery_credential(path: &Path) -> anyhow::Result<Credential> {
    let text = read_secret_file(path)?;
    let text =
        std::str::from_utf8(&text).map_err(|_| anyhow::anyhow!("recovery key file {} is not text", path.display()))?;
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let is_share = |l: &str| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SYS1"));
    let key = if !lines.is_empty() && lines.iter().all(|l| is_share(l)) {
        let shares = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                RecoveryShare::from_text(l)
                    .with_context(|| format!("recovery key file {}, share on line {}", path.display(), i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        check_shares(&shares).with_context(|| format!("recovery key file {}", path.display()))?;
        RecoveryKey::combine(&shares).with_context(|| format!("recovery key file {}", path.display()))?
    } else {
        match lines.as_slice() {
            [one] => RecoveryKey::from_text(one).with_context(|| format!("recovery key file {}", path.display()))?,
            _ => bail!(
                "recovery key file {} must hold one recovery key line or share lines",
                path.display()
            ),
        }
    };
    Ok(Credential::recovery(key))
}

/// Names, by line, a share that does not belong with the others before any
/// unlock is tried: one of another split (or threshold) than most of the lines,
/// or one that repeats an earlier share's number.
fn check_shares(shares: &[RecoveryShare]) -> anyhow::Result<()> {
    let mut counts: std::collections::BTreeMap<([u8; 3], u8), usize> = std::collections::BTreeMap::new();
    for share in shares {
        *counts.entry((share.split_id(), share.threshold())).or_default() += 1;
    }
    let Some((&majority, _)) = counts.iter().max_by_key(|(_, n)| **n) else {
        return Ok(());
    };
    let mut seen = std::collections::BTreeMap::new();
    for (line, share) in shares.iter().enumerate() {
        let line = line + 1;
        if (share.split_id(), share.threshold()) != majority {
            bail!("the share on line {line} (share {}) is from another split than the others", share.index());
        }
        if let Some(first) = seen.insert(share.index(), line) {
            bail!("the share on line {line} repeats share {} of line {first}", share.index());
        }
    }
    Ok(())
}

/// `init`: creates the store with a recovery key and hands the key out once.
///
/// The key is made first and handed out (written and synced to its file(s), or
/// printed and flushed) before the store is created, so a kill at any moment
/// never leaves a working store whose recovery key was never shown; a key handed
/// out for a create that then fails belongs to no store (its files are removed).
pub(crate) fn init(g: &GlobalArgs, args: &InitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = g.dir()?;
    if g.recovery_key_file.is_some() {
        return Err(Exit::new(
            EXIT_USAGE,
            "init makes a new recovery key; give it a passphrase or --key-file",
        )
        .into());
    }
    let credential = g.credential()?;
    let split = args.recovery_shares.as_deref().map(parse_split).transpose()?;
    let options = g.options(false)?;
    if dir.join("CURRENT").exists() {
        return Err(anyhow::Error::new(synapsed_storage::Error::AlreadyExists(dir.display().to_string())))
            .with_context(|| format!("cannot create a store in {}", dir.display()));
    }
    let recovery = RecoveryKey::generate();
    let mut lines: Vec<(String, Zeroizing<String>)> = Vec::new();
    match split {
        Some((k, n)) => {
            for share in recovery.split(k, n)? {
                lines.push((
                    format!("recovery share {}/{n} (any {k} open the store)", share.index()),
                    share.to_text(),
                ));
            }
        }
        None => lines.push(("recovery key".to_string(), recovery.to_text())),
    }
    let written = hand_out(args, split, &lines, out)?;
    let created = Db::create_with_recovery_key(dir, &credential, &recovery, options);
    let db = match created {
        Ok(db) => db,
        Err(e) => {
            for path in &written {
                let _ = std::fs::remove_file(path);
            }
            if written.is_empty() {
                writeln!(out, "no store was created: the recovery key above opens nothing")?;
            }
            return Err(e).with_context(|| format!("cannot create a store in {}", dir.display()));
        }
    };
    db.close()?;
    writeln!(out, "created store in {}", dir.display())?;
    let what = if split.is_some() { "recovery shares" } else { "recovery key" };
    match (&args.recovery_out, &args.recovery_share_out_dir) {
        (Some(path), _) => writeln!(
            out,
            "{what} written to {} (keep it offline; it is shown nowhere else)",
            path.display()
        )?,
        (None, Some(d)) => writeln!(
            out,
            "{what} written to {}, one file each (give each to its keeper; they are shown nowhere else)",
            d.display()
        )?,
        (None, None) => writeln!(
            out,
            "write the recovery key down and keep it offline: it is shown only this once"
        )?,
    }
    Ok(())
}

/// Writes the recovery key or shares where `init` was asked to (synced, files
/// and their directory), or prints them (flushed); returns the files written.
fn hand_out(
    args: &InitArgs,
    split: Option<(u8, u8)>,
    lines: &[(String, Zeroizing<String>)],
    out: &mut dyn Write,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        match (&args.recovery_out, &args.recovery_share_out_dir, split) {
            (Some(path), _, _) => {
                let mut file = create_owner_only(path)?;
                written.push(path.clone());
                for (_, text) in lines {
                    file.write_all(text.as_bytes())?;
                    file.write_all(b"\n")?;
                }
                file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
                sync_parent(path)?;
            }
            (None, Some(d), Some((_, n))) => {
                std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
                for (i, (_, text)) in lines.iter().enumerate() {
                    let path = d.join(format!("share-{}-of-{n}.txt", i + 1));
                    let mut file = create_owner_only(&path)?;
                    written.push(path.clone());
                    file.write_all(text.as_bytes())?;
                    file.write_all(b"\n")?;
                    file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
                }
                sync_dir(d)?;
            }
            _ => {
                for (label, text) in lines {
                    writeln!(out, "{label}: {}", text.as_str())?;
                }
                out.flush()?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    Ok(written)
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => sync_dir(Path::new(".")),
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// `key ...`.
pub(crate) fn key(g: &GlobalArgs, command: &KeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = g.dir()?;
    match command {
        KeyCommand::Passphrase { new_passphrase_file } => {
            let current = g.credential()?;
            let new = new_passphrase(new_passphrase_file.as_deref())?;
            Db::change_passphrase(dir, &current, &new, &g.options(false)?)
                .with_context(|| format!("cannot change the passphrase of {}", dir.display()))?;
            writeln!(out, "passphrase changed; the old one no longer opens {}", dir.display())?;
        }
        KeyCommand::Rotate => {
            let db = g.open(false)?;
            let started = std::time::Instant::now();
            let activity = crate::progress::Activity::start(g.quiet, "rotating the data key");
            let mut failed_write = None;
            let mut progress = |p: &RotationProgress| {
                let line = match p.step {
                    "wal" => format!("rotate: epoch {} current; WAL rolled and memtable flushed", p.new_epoch),
                    "manifest" => "rotate: manifest rolled".to_string(),
                    "rewrite" => format!("rotate: rewrote {}/{} tables", p.tables_rewritten, p.tables_total),
                    other => format!("rotate: {other}"),
                };
                activity.step(&line);
                if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                    failed_write.get_or_insert(e);
                }
            };
            let report = db.rotate_keys_with_progress(&mut progress)?;
            db.close()?;
            if let Some(e) = failed_write {
                return Err(e.into());
            }
            writeln!(
                out,
                "rotated to epoch {} in {:.2?}: {} table(s) rewritten, destroyed epochs {:?}",
                report.new_epoch,
                started.elapsed(),
                report.tables_total,
                report.epochs_destroyed
            )?;
            if !report.lost_files.is_empty() {
                writeln!(
                    out,
                    "kept epochs {:?}: {} in lost/ (quarantined by repair) still under them: {}; \
                     remove them (repair already salvaged what they held) or run secure-delete, \
                     which overwrites them, then rotate again",
                    report.epochs_retained,
                    report.lost_files.len(),
                    report.lost_files.join(", ")
                )?;
            } else if !report.epochs_retained.is_empty() {
                writeln!(
                    out,
                    "kept epochs {:?}: files under them are still in use",
                    report.epochs_retained
                )?;
            }
        }
        KeyCommand::Rekey { recovery_out, no_recovery_key } => {
            let credential = g.credential()?;
            let db = Db::open(dir, &credential, g.options(false)?)
                .with_context(|| format!("cannot open {}", dir.display()))?;
            let recovery = (!*no_recovery_key).then(RecoveryKey::generate);
            if let (Some(path), Some(key)) = (recovery_out, &recovery) {
                // Durable before the old recovery key stops working.
                let mut file = create_owner_only(path)?;
                file.write_all(key.to_text().as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
            }
            let activity = crate::progress::Activity::start(g.quiet, "replacing the master key and re-encrypting every file");
            let report = db.rekey(&credential, recovery.as_ref())?;
            drop(activity);
            db.close()?;
            for slot in &report.removed_slots {
                writeln!(out, "removed slot {} ({}): add it again to keep using it", slot.index, describe(slot))?;
            }
            writeln!(
                out,
                "new master key; rotated to epoch {}: {} table(s) rewritten, destroyed epochs {:?}",
                report.rotation.new_epoch, report.rotation.tables_total, report.rotation.epochs_destroyed
            )?;
            match (recovery_out, &recovery) {
                (Some(path), Some(_)) => writeln!(
                    out,
                    "new recovery key written to {} (keep it offline; it is shown nowhere else)",
                    path.display()
                )?,
                (None, Some(key)) => {
                    writeln!(out, "recovery key: {}", key.to_text().as_str())?;
                    writeln!(out, "write the new recovery key down and keep it offline: it is shown only this once")?;
                }
                _ => writeln!(out, "the store has no recovery key now")?,
            }
        }
        KeyCommand::Slots => {
            for slot in Db::keyslots(dir, &g.options(true)?)? {
                writeln!(out, "slot {}: {}", slot.index, describe(&slot))?;
            }
        }
    }
    Ok(())
}

/// A slot's kind and parameters, as `key slots` lists them.
fn describe(slot: &SlotInfo) -> String {
    let kind = match (slot.kind, slot.recovery) {
        (_, true) => "recovery (X25519 + ML-KEM-768)".to_string(),
        (Some(kind), false) => format!("{kind:?}"),
        (None, false) => format!("unknown kind {}", slot.kind_code),
    };
    let params = slot
        .argon2
        .map(|a| format!(" argon2id m={} KiB t={} p={}", a.m_cost_kib, a.t_cost, a.p_cost))
        .unwrap_or_default();
    format!("{kind}{params}")
}

/// `secure-delete KEY` / `secure-delete --prefix P`.
pub(crate) fn secure_delete(
    g: &GlobalArgs,
    key: Option<&str>,
    prefix: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let text = crate::kvtext::KvText { hex: g.hex };
    let key = key.map(|k| text.parse("KEY", k)).transpose()?;
    let prefix = prefix.map(|p| text.parse("PREFIX", p)).transpose()?;
    let db = g.open(false)?;
    let activity = crate::progress::Activity::start(g.quiet, "deleting, compacting, overwriting and rotating keys");
    let report = match (key, prefix) {
        (Some(key), None) => db.secure_delete(&key)?,
        (None, Some(prefix)) => db.secure_delete_prefix(&prefix)?,
        _ => return Err(Exit::new(EXIT_USAGE, "secure-delete takes KEY or --prefix P").into()),
    };
    db.close()?;
    drop(activity);
    writeln!(
        out,
        "securely deleted {} key(s): {} file(s) overwritten ({} pass(es)) and removed, {} table(s) re-encrypted, destroyed epochs {:?}",
        report.keys_deleted,
        report.files_removed.len(),
        report.overwrite_passes,
        report.rotation.tables_total,
        report.rotation.epochs_destroyed
    )?;
    Ok(())
}

fn parse_split(text: &str) -> anyhow::Result<(u8, u8)> {
    let parsed = text
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u8>().ok()?, n.trim().parse::<u8>().ok()?)));
    match parsed {
        Some((k, n)) if 2 <= k && k <= n => Ok((k, n)),
        _ => Err(Exit::new(
            EXIT_USAGE,
            format!("--recovery-shares wants K/N with 2 <= K <= N <= 255, got {text:?}"),
        )
        .into()),
    }
}

fn new_passphrase(file: Option<&Path>) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut bytes = match file {
        Some(path) => read_secret_file(path)?,
        None => match crate::keys::env_new_passphrase() {
            Some(value) => Zeroizing::new(value.to_vec()),
            None => bail!("no new passphrase: pass --new-passphrase-file F or set {NEW_PASSPHRASE_ENV}"),
        },
    };
    if file.is_some() && bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    if bytes.is_empty() {
        bail!("the new passphrase is empty");
    }
    Ok(bytes)
}

/// Creates `path` readable and writable by its owner only; refuses an existing file.
fn create_owner_only(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, crypto::vfs::OWNER_ONLY_FILE);
    options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}
