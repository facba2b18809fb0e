//! The `synapsed-storage` command-line tool: creates, reads, writes, checks and
//! compacts a store from the shell. Users script it and the system tests drive it
//! as a black box, so its forms, output lines and exit codes are a contract (see
//! README.md): 0 success, 1 failure (including `get` of a missing key), 2 bad
//! usage or an internal error, 3 damaged data found. Errors go to stderr as
//! `error: ...`; a panic is never shown to the user.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Args, Parser, Subcommand};
use synapsed_storage::{Argon2Params, Credential, Db, Error, Options};

#[path = "synapsed-storage/backup.rs"]
mod backup;
#[path = "synapsed-storage/batch.rs"]
mod batch;
#[path = "synapsed-storage/device.rs"]
mod device;
#[path = "synapsed-storage/doc.rs"]
mod doc;
#[path = "synapsed-storage/blob.rs"]
mod blob;
#[path = "synapsed-storage/demo.rs"]
mod demo;
#[path = "synapsed-storage/ipfs.rs"]
mod ipfs;
#[path = "synapsed-storage/keycmd.rs"]
mod keycmd;
#[path = "synapsed-storage/keys.rs"]
mod keys;
#[path = "synapsed-storage/kvtext.rs"]
mod kvtext;
#[path = "synapsed-storage/progress.rs"]
mod progress;
#[path = "synapsed-storage/metrics.rs"]
mod metrics;
#[path = "synapsed-storage/report.rs"]
mod report;
#[path = "synapsed-storage/ts.rs"]
mod ts;

/// Exit status of a failed operation (also `get` of a missing key).
const EXIT_FAILURE: u8 = 1;
/// Exit status of bad usage (clap uses it too) and of internal errors.
const EXIT_USAGE: u8 = 2;
/// Exit status when damaged data was found.
const EXIT_DAMAGED: u8 = 3;
/// How often `get` and `scan` start over on a fresh read-only handle after a
/// retryable failure (the writer retired what they read; see `Error::is_retryable`).
const READ_RETRIES: u32 = 3;

/// Encrypted embedded key-value store.
#[derive(Debug, Parser)]
#[command(name = "synapsed-storage", version, about, long_about = None)]
#[command(after_help = "Key material: set SYNAPSED_PASSPHRASE, or pass --passphrase-file F, --key-file F or --recovery-key-file F.\n\
Exit status: 0 success, 1 failure (or key not found), 2 bad usage, 3 damaged data found.")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Store directory.
    #[arg(long, value_name = "DIR", global = true)]
    db: Option<PathBuf>,
    /// File holding the passphrase (one trailing newline is ignored).
    #[arg(long, value_name = "F", global = true, conflicts_with = "key_file")]
    passphrase_file: Option<PathBuf>,
    /// File holding a raw 32-byte key: 64 hex characters, or exactly 32 bytes.
    #[arg(long, value_name = "F", global = true)]
    key_file: Option<PathBuf>,
    /// File holding the recovery key (or K of its shares, one per line), as
    /// `init --recovery-out` writes it; opens the store instead of the passphrase.
    #[arg(long, value_name = "F", global = true, conflicts_with_all = ["key_file", "passphrase_file"])]
    recovery_key_file: Option<PathBuf>,
    /// Argon2id memory cost in KiB for a new passphrase slot (`init`, `key
    /// passphrase`; default 19456, OWASP's minimum, which is also the floor).
    /// `key passphrase` never goes below the replaced slot's cost.
    #[arg(long, value_name = "KIB", global = true)]
    argon2_memory_kib: Option<u32>,
    /// Argon2id iterations for a new passphrase slot (default 2, also the floor).
    #[arg(long, value_name = "N", global = true)]
    argon2_iterations: Option<u32>,
    /// Allows --argon2-memory-kib / --argon2-iterations below the floor
    /// (m=19456 KiB, t=2). For tests only: such a passphrase falls to guessing
    /// far sooner.
    #[arg(long, global = true)]
    insecure_kdf_for_tests: bool,
    /// Memtable size at which it is flushed to an SSTable (tests use small ones
    /// to exercise flushes and compactions with little data).
    #[arg(long, value_name = "BYTES", global = true, hide = true)]
    memtable_size_bytes: Option<usize>,
    /// Most SSTables kept open at once (default 1000). Read commands open the
    /// store read-only, which keeps every table open, so a store with more
    /// tables than this needs a larger value (and a file-descriptor limit to match).
    #[arg(long, value_name = "N", global = true)]
    max_open_files: Option<usize>,
    /// While the command runs, serve its metrics in Prometheus text format at
    /// http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks a free one,
    /// printed on stderr).
    #[arg(long, value_name = "ADDR", global = true)]
    metrics: Option<String>,
    /// Keys and values on the command line, on `batch` input and in output are
    /// hex digits (for bytes that are not UTF-8).
    #[arg(long, global = true)]
    hex: bool,
    /// No progress display on stderr (it is shown only when stderr is a terminal).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a store in --db DIR (fails if DIR already holds one) with a
    /// recovery key, printed once on a "recovery key:" line or written to --recovery-out.
    Init(keycmd::InitArgs),
    /// Stores VALUE under KEY (durable when the command returns).
    Put {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// Value (UTF-8).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Prints the value of KEY; exits 1 if it is absent.
    Get {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Deletes KEY (no error if it is absent).
    Delete {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Prints "KEY<TAB>VALUE" lines for every key starting with PREFIX, in key order.
    Scan {
        /// Key prefix ("" for every key).
        #[arg(allow_hyphen_values = true)]
        prefix: String,
        /// Print at most N lines.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// One JSON object per pair instead: {"key": K, "value": V}, or
        /// "key_hex" / "value_hex" for bytes that are not UTF-8 (or with --hex).
        #[arg(long)]
        json: bool,
    },
    /// Reads "put K V" / "delete K" / "commit" lines from stdin; each commit is
    /// atomic and durable, then "committed N" is printed.
    Batch,
    /// Reads and authenticates every file; exits 3 naming each damaged file.
    Verify,
    /// Rebuilds the manifest from the tables and logs that survived damage;
    /// damaged files move to DIR/lost/ and what was lost is listed.
    Repair,
    /// Compacts the whole key range of every keyspace down to the bottom level.
    Compact,
    /// Prints counters and sizes of the store.
    Stats {
        /// One JSON object instead of text.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// The store's metrics in Prometheus text format instead.
        #[arg(long)]
        prometheus: bool,
    },
    /// Key management: passphrase change, data-key rotation, master-key rotation, keyslot listing.
    Key {
        #[command(subcommand)]
        command: keycmd::KeyCommand,
    },
    /// Deletes KEY (or every key under --prefix P) so that no copy the store can
    /// open stays readable: compaction through every level, overwrite of obsolete
    /// files, key rotation, key files resealed (see docs/security.md for SSDs,
    /// copy-on-write file systems and backups).
    SecureDelete {
        /// Key (UTF-8).
        #[arg(allow_hyphen_values = true, required_unless_present = "prefix", conflicts_with = "prefix")]
        key: Option<String>,
        /// Delete every key starting with P instead.
        #[arg(long, value_name = "P", allow_hyphen_values = true)]
        prefix: Option<String>,
    },
    /// Walks through the engine's features on a throw-away store and checks each step.
    Demo,
    /// Prints a shell completion script: `source <(synapsed-storage completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Sync between devices: this store's device id, pairings, and sessions.
    #[command(flatten)]
    Device(device::DeviceCommand),
    /// JSON documents in collections: put, import, get, delete, index, query.
    Doc {
        #[command(subcommand)]
        command: doc::DocCommand,
    },
    /// Time series: float values at millisecond timestamps.
    Ts {
        #[command(subcommand)]
        command: ts::TsCommand,
    },
    /// Blobs: files of any size streamed in and out (put, get, rm, ls, gc).
    Blob {
        #[command(subcommand)]
        command: blob::BlobCommand,
    },
    /// Backs the store up to URL (file:///dir or s3://bucket/prefix), incrementally;
    /// `backup ls URL` lists the backups, `backup prune URL --keep N` removes old ones.
    Backup(backup::BackupArgs),
    /// Restores a backup from URL into a new directory (--to DIR), the newest or --at ID.
    Restore(backup::RestoreArgs),
    /// IPFS: the CID of a file (`ipfs add --cid-version=1`), CAR files.
    Ipfs {
        #[command(subcommand)]
        command: ipfs::IpfsCommand,
    },
}

/// A failure that maps to a specific exit status rather than the default 1.
#[derive(Debug)]
pub(crate) struct Exit {
    code: u8,
    message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

impl Exit {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Exit { code, message: message.into() }
    }
}

fn main() -> ExitCode {
    keys::take_env_secrets();
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors carry clap's
            // own "error: ..." text and status 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                // The reader went away (`scan | head`): not an error of ours.
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", render_error(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// A panic is a bug, but users still get one readable line and status 2, never a
/// backtrace or the word "panicked".
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unexpected failure".to_string());
        let location = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        let _ = writeln!(io::stderr(), "error: internal error: {message}{location}");
        std::process::exit(i32::from(EXIT_USAGE));
    }));
}

/// The error and its causes on one line, `: `-separated, as `{:#}` prints them but
/// without repeating a cause whose text the line already ends with: the store's
/// I/O errors show the OS error in their own text *and* hand it out as their
/// source, which `{:#}` printed twice (`File exists (os error 17): File exists
/// (os error 17)`).
fn render_error(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if let Some(err) = cause.downcast_ref::<Error>() {
            return if err.is_corruption() { EXIT_DAMAGED } else { EXIT_FAILURE };
        }
    }
    EXIT_FAILURE
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

impl GlobalArgs {
    fn dir(&self) -> anyhow::Result<&Path> {
        self.db.as_deref().ok_or_else(|| Exit::new(EXIT_USAGE, "--db DIR is required for this command").into())
    }

    fn argon2(&self) -> anyhow::Result<Argon2Params> {
        let defaults = Argon2Params::default();
        let params = Argon2Params {
            m_cost_kib: self.argon2_memory_kib.unwrap_or(defaults.m_cost_kib),
            t_cost: self.argon2_iterations.unwrap_or(defaults.t_cost),
            p_cost: defaults.p_cost,
        };
        // Argon2id refuses less than 8 KiB per lane and zero iterations.
        if params.m_cost_kib < 8 * params.p_cost {
            return Err(Exit::new(EXIT_USAGE, "--argon2-memory-kib must be at least 8").into());
        }
        if params.t_cost == 0 {
            return Err(Exit::new(EXIT_USAGE, "--argon2-iterations must be at least 1").into());
        }
        Ok(params)
    }

    fn options(&self, read_only: bool) -> anyhow::Result<Options> {
        let mut options = Options::default()
            .with_metrics(metrics::installed())
            .with_read_only(read_only)
            .with_argon2(self.argon2()?)
            .with_insecure_kdf_for_tests(self.insecure_kdf_for_tests);
        if let Some(bytes) = self.memtable_size_bytes {
            options.memtable_size_bytes = bytes;
        }
        if let Some(n) = self.max_open_files {
            options.max_open_files = n;
        }
        Ok(options)
    }

    fn credential(&self) -> anyhow::Result<Credential> {
        if let Some(path) = self.recovery_key_file.as_deref() {
            return keycmd::recovery_credential(path);
        }
        keys::credential(self.passphrase_file.as_deref(), self.key_file.as_deref())
    }

    fn open(&self, read_only: bool) -> anyhow::Result<Db> {
        let dir = self.dir()?;
        let credential = self.credential()?;
        let db = Db::open(dir, &credential, self.options(read_only)?).with_context(|| format!("cannot open {}", dir.display()))?;
        metrics::register(&db);
        Ok(db)
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    progress::set_quiet(g.quiet);
    if let Some(addr) = g.metrics.as_deref() {
        let bound = metrics::serve(addr)?;
        if addr.ends_with(":0") {
            eprintln!("metrics at http://{bound}/metrics");
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let text = kvtext::KvText { hex: g.hex };
    match &cli.command {
        Command::Init(args) => keycmd::init(g, args, &mut out)?,
        Command::Ts { command } => ts::run(g, command, &mut out)?,
        Command::Key { command } => keycmd::key(g, command, &mut out)?,
        Command::SecureDelete { key, prefix } => keycmd::secure_delete(g, key.as_deref(), prefix.as_deref(), &mut out)?,
        Command::Put { key, value } => {
            let (key, value) = (text.parse("KEY", key)?, text.parse("VALUE", value)?);
            let db = g.open(false)?;
            match device::replicated_default(&db)? {
                Some((replica, keyspace)) => drop(replica.put(&keyspace, &key, &value)?),
                None => db.put(&key, &value)?,
            }
            db.close()?;
        }
        Command::Get { key } => {
            let key_text = key;
            let key = text.parse("KEY", key)?;
            // A fresh handle sees the writer's newer state (`Error::is_retryable`).
            let mut attempt = 0;
            let found = loop {
                let db = g.open(true)?;
                match db.get(&key) {
                    Err(e) if e.is_retryable() && attempt < READ_RETRIES => attempt += 1,
                    other => break other?,
                }
            };
            match found {
                Some(value) => {
                    out.write_all(&text.show(&value))?;
                    out.write_all(b"\n")?;
                }
                None if key.is_empty() => {
                    return Err(Exit::new(EXIT_FAILURE, "key not found: the empty key (no key is empty: put refuses one)").into())
                }
                None => return Err(Exit::new(EXIT_FAILURE, format!("key not found: {key_text}")).into()),
            }
        }
        Command::Delete { key } => {
            let key = text.parse("KEY", key)?;
            let db = g.open(false)?;
            match device::replicated_default(&db)? {
                Some((replica, keyspace)) => drop(replica.delete(&keyspace, &key)?),
                None => db.delete(&key)?,
            }
            db.close()?;
        }
        Command::Scan { prefix, limit, json } => {
            let prefix = text.parse("PREFIX", prefix)?;
            let limit = usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
            // Until the first pair is out, a retryable failure starts over on a
            // fresh handle; after it, the error is reported (pairs cannot be taken back).
            let mut attempt = 0;
            'scan: loop {
                let db = g.open(true)?;
                let mut printed = 0usize;
                let scan = db.scan_prefix(&prefix);
                let items = match scan {
                    Err(e) if e.is_retryable() && attempt < READ_RETRIES => {
                        attempt += 1;
                        continue 'scan;
                    }
                    other => other?,
                };
                for item in items.take(limit) {
                    let (key, value) = match item {
                        Err(e) if e.is_retryable() && printed == 0 && attempt < READ_RETRIES => {
                            attempt += 1;
                            continue 'scan;
                        }
                        other => other?,
                    };
                    if *json {
                        out.write_all(text.json_pair(&key, &value).as_bytes())?;
                    } else {
                        out.write_all(&text.show(&key))?;
                        out.write_all(b"\t")?;
                        out.write_all(&text.show(&value))?;
                    }
                    out.write_all(b"\n")?;
                    printed += 1;
                }
                break;
            }
        }
        Command::Doc { command } => {
            let db = g.open(doc::read_only(command))?;
            let found = doc::run(&db, command, &mut out);
            let closed = db.close();
            if !found? {
                return Err(Exit::new(EXIT_FAILURE, "document not found").into());
            }
            closed?;
        }
        Command::Batch => {
            let db = g.open(false)?;
            let stdin = io::stdin();
            let replicated = device::replicated_default(&db)?;
            let result = batch::run(&db, replicated.as_ref(), &mut stdin.lock(), &mut out, text);
            drop(replicated);
            // Whatever happened, committed batches stay; closing syncs and unlocks.
            let closed = db.close();
            result?;
            closed?;
        }
        Command::Verify => {
            let dir = g.dir()?;
            let credential = g.credential()?;
            let _activity = progress::Activity::start(g.quiet, "verifying every file");
            let mut verdict = Db::verify(dir, &credential, g.options(true)?)
                .with_context(|| format!("cannot verify {}", dir.display()))?;
            if verdict.is_ok() {
                blob::verify_blobs(g, &mut verdict)?;
            }
            report::print_verify(&mut out, &verdict)?;
            if !verdict.is_ok() {
                out.flush()?;
                let names: Vec<&str> = verdict.damaged.iter().map(|(f, _)| f.as_str()).collect();
                return Err(
                    Exit::new(EXIT_DAMAGED, format!("{} damaged file(s): {}", names.len(), names.join(", "))).into()
                );
            }
        }
        Command::Repair => {
            let dir = g.dir()?;
            let credential = g.credential()?;
            let _activity = progress::Activity::start(g.quiet, "repairing");
            let done = Db::repair(dir, &credential, g.options(false)?)
                .with_context(|| format!("cannot repair {}", dir.display()))?;
            report::print_repair(&mut out, &done)?;
        }
        Command::Compact => {
            let dir = g.dir()?;
            let db = g.open(false)?;
            let before = report::dir_bytes(dir)?;
            let started = std::time::Instant::now();
            let activity = progress::Activity::start(g.quiet, "compacting the default keyspace");
            db.compact_range(None, None)?;
            for keyspace in db.keyspaces().iter().skip(1) {
                activity.step("compacting the other keyspaces");
                db.compact_range_in(keyspace, None, None)?;
            }
            drop(activity);
            let after = db.stats();
            db.close()?;
            writeln!(
                out,
                "compacted {} in {:.2?}: {} -> {} on disk, tables now: {}",
                dir.display(),
                started.elapsed(),
                report::human_bytes(before),
                report::human_bytes(report::dir_bytes(dir)?),
                after.files_per_level.iter().sum::<usize>(),
            )?;
        }
        Command::Stats { json, prometheus } => {
            let dir = g.dir()?;
            if *prometheus {
                metrics::install()?;
                let _db = g.open(true)?;
                out.write_all(metrics::render().as_bytes())?;
                out.flush()?;
                return Ok(());
            }
            let db = g.open(true)?;
            let stats = db.stats();
            let files = report::dir_files(dir)?;
            if *json {
                report::print_stats_json(&mut out, dir, &stats, &files)?;
            } else {
                report::print_stats(&mut out, dir, &stats, &files)?;
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "synapsed-storage", &mut out);
        }
        Command::Device(command) => device::run(g, command, &mut out)?,
        Command::Blob { command } => blob::run(g, command, &mut out)?,
        Command::Backup(args) => backup::backup_cmd(g, args, &mut out)?,
        Command::Restore(args) => backup::restore_cmd(g, args, &mut out)?,
        Command::Ipfs { command } => ipfs::run(g, command, &mut out)?,
        Command::Demo => {
            let passed = demo::run(g, &mut out)?;
            if !passed {
                out.flush()?;
                return Err(anyhow!("the demo found a problem (see the lines marked FAIL above)"));
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Shared with the demo: the store options and credential the global flags ask for.
pub(crate) fn demo_setup(g: &GlobalArgs) -> anyhow::Result<(Option<Credential>, Options)> {
    let explicit =
        g.passphrase_file.is_some() || g.key_file.is_some() || keys::env_passphrase().is_some();
    let credential = if explicit { Some(g.credential()?) } else { None };
    let mut options = g.options(false)?;
    if g.memtable_size_bytes.is_none() {
        // Small enough that a few thousand messages go through several flushes.
        options.memtable_size_bytes = 256 << 10;
    }
    Ok((credential, options))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_os_error_is_shown_once() {
        let io = io::Error::from_raw_os_error(17);
        let e = anyhow::Error::new(Error::Io { file: "KEYSLOTS".into(), source: io }).context("cannot create a store in d");
        let line = render_error(&e);
        assert_eq!(line.matches("os error 17").count(), 1, "{line}");
        assert!(line.starts_with("cannot create a store in d: I/O error on KEYSLOTS: "), "{line}");
    }
}
