//! `device id`, `pair add|ls|rm`, `serve`, `sync`: this store as a device of
//! sync, the devices it trusts, and sessions with them.
//!
//! What the command line syncs is the default keyspace (the one `put`, `get`,
//! `scan` and `batch` use): pairing a device, serving or syncing marks it
//! replicated, and from then on `put`, `delete` and `batch` write it with
//! versions (see [`replicated_default`]). A paired device's read and write
//! prefixes become its rights in every session; `sync --prefix P` limits a
//! session to keys under P. After each complete session, both sides record
//! which replica the peer device syncs as and collect the tombstones every
//! paired device has seen (`sync --json` reports them as "collected").

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use synapsed_storage::device::{DeviceId, Pairing, TlsChannel, TransportOptions};
use synapsed_storage::{Db, Keyspace, Replica, Rights, Scope, SessionOptions, SyncStats, DEFAULT_KEYSPACE};

use crate::{Exit, GlobalArgs, EXIT_FAILURE, EXIT_USAGE};

/// The sync-between-devices commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DeviceCommand {
    /// This store's identity as a device.
    #[command(subcommand)]
    Device(DeviceSub),
    /// The devices this store trusts.
    #[command(subcommand)]
    Pair(PairSub),
    /// Answers sessions from paired devices at ADDR (foreground, until killed);
    /// prints "listening on ADDR" once it accepts connections.
    Serve {
        /// Address to listen on (port 0: any free port; the line printed names it).
        #[arg(long, value_name = "ADDR")]
        listen: String,
    },
    /// One session with the paired device listening at ADDR; prints
    /// "sent N, received M, B bytes".
    Sync {
        /// The peer's address (HOST:PORT).
        addr: String,
        /// Sync only keys starting with P (repeatable; default: every key).
        #[arg(long = "prefix", value_name = "P", allow_hyphen_values = true)]
        prefix: Vec<String>,
        /// One JSON object instead of the text line.
        #[arg(long)]
        json: bool,
    },
}

/// `device ...`
#[derive(Debug, Subcommand)]
pub(crate) enum DeviceSub {
    /// Prints this store's device id (made on first use): base32 of SHA-256 of
    /// its public key, 52 characters.
    Id,
}

/// `pair ...`
#[derive(Debug, Subcommand)]
pub(crate) enum PairSub {
    /// Trusts DEVICE_ID. With neither --read nor --write it may read and write
    /// everything; otherwise exactly the prefixes given ("" for everything).
    Add {
        /// The device's id, as `device id` prints it on that device.
        device_id: String,
        /// A name for the device.
        #[arg(long, value_name = "N", default_value = "")]
        name: String,
        /// A key prefix the device may read (repeatable).
        #[arg(long = "read", value_name = "PREFIX", allow_hyphen_values = true)]
        read: Vec<String>,
        /// A key prefix the device may write (repeatable).
        #[arg(long = "write", value_name = "PREFIX", allow_hyphen_values = true)]
        write: Vec<String>,
    },
    /// Lists pairings: "DEVICE_ID<TAB>NAME<TAB>read=P,...<TAB>write=P,..."
    /// ("*" everything, "-" nothing).
    Ls,
    /// Forgets DEVICE_ID; exits 1 if it was not paired.
    Rm {
        /// The device's id.
        device_id: String,
    },
}

fn parse_id(text: &str) -> anyhow::Result<DeviceId> {
    text.parse::<DeviceId>().map_err(|e| Exit::new(EXIT_USAGE, e.to_string()).into())
}

/// "*" for everything, "-" for nothing, else the prefixes comma-separated.
fn rights(list: &[Vec<u8>]) -> String {
    if list.iter().any(Vec::is_empty) {
        return "*".into();
    }
    if list.is_empty() {
        return "-".into();
    }
    list.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>().join(",")
}

pub(crate) fn run(g: &GlobalArgs, command: &DeviceCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Device(DeviceSub::Id) => {
            let db = g.open(false)?;
            let id = db.devices().device_id().context("cannot read the device identity")?;
            db.close()?;
            writeln!(out, "{id}")?;
        }
        DeviceCommand::Pair(PairSub::Add { device_id, name, read, write }) => {
            let device = parse_id(device_id)?;
            let pairing = if read.is_empty() && write.is_empty() {
                Pairing::full(device, name.clone())
            } else {
                Pairing {
                    device,
                    name: name.clone(),
                    read: read.iter().map(|p| p.as_bytes().to_vec()).collect(),
                    write: write.iter().map(|p| p.as_bytes().to_vec()).collect(),
                }
            };
            let db = g.open(false)?;
            db.devices().pair(&pairing)?;
            replicate_default(&db)?;
            db.close()?;
            writeln!(out, "paired {device}")?;
        }
        DeviceCommand::Pair(PairSub::Ls) => {
            let db = g.open(true)?;
            for p in db.devices().pairings()? {
                writeln!(out, "{}\t{}\tread={}\twrite={}", p.device, p.name, rights(&p.read), rights(&p.write))?;
            }
        }
        DeviceCommand::Pair(PairSub::Rm { device_id }) => {
            let device = parse_id(device_id)?;
            let db = g.open(false)?;
            let removed = db.devices().unpair(&device)?;
            db.close()?;
            if !removed {
                return Err(Exit::new(EXIT_FAILURE, format!("not paired: {device}")).into());
            }
            writeln!(out, "unpaired {device}")?;
        }
        DeviceCommand::Serve { listen } => {
            let db = g.open(false)?;
            replicate_default(&db)?;
            let transport = db.devices().transport(TransportOptions::default())?;
            let listener = transport.listen(listen.as_str()).with_context(|| format!("cannot listen on {listen}"))?;
            writeln!(out, "listening on {} as device {}", listener.local_addr(), transport.device_id())?;
            out.flush()?;
            loop {
                match listener.accept() {
                    Ok(channel) => {
                        let peer = channel.peer();
                        match answer(&db, channel) {
                            Ok((stats, collected)) => {
                                let mut extra = remarks(&stats).map(|r| format!("; {r}")).unwrap_or_default();
                                if collected > 0 {
                                    extra.push_str(&format!("; {collected} tombstone(s) collected"));
                                }
                                eprintln!("session with {peer}: {}{extra}", summary(&stats));
                            }
                            Err(e) => eprintln!("session with {peer} failed: {e:#}"),
                        }
                    }
                    Err(e) => {
                        eprintln!("refused a connection: {e}");
                        // Not a busy loop if accepting itself keeps failing.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
            }
        }
        DeviceCommand::Sync { addr, prefix, json } => {
            let db = g.open(false)?;
            replicate_default(&db)?;
            let transport = db.devices().transport(TransportOptions::default())?;
            let mut channel = transport.connect(addr.as_str()).with_context(|| format!("cannot open a session with {addr}"))?;
            let peer = channel.peer();
            let options = session_options(&db, &peer)?.with_scopes(prefix.iter().map(|p| scope(p.as_bytes())).collect());
            let activity = crate::progress::Activity::start(false, &format!("syncing with {peer}"));
            let stats = db.replica()?.initiate(&mut channel, &options).with_context(|| format!("the session with {peer} failed"))?;
            drop(activity);
            channel.close()?;
            let collected = after_session(&db, &peer, &stats)?;
            db.close()?;
            if *json {
                let object = serde_json::json!({
                    "peer": peer.to_string(),
                    "sent": stats.entries_sent,
                    "received": stats.entries_received,
                    "applied": stats.entries_applied,
                    "bytes": stats.bytes_sent + stats.bytes_received,
                    "rounds": stats.rounds,
                    "conflicts": stats.conflicts,
                    "refused": stats.refused_writes,
                    "refused_by_peer": stats.refused_by_peer,
                    "collected": collected,
                });
                writeln!(out, "{object}")?;
            } else {
                writeln!(out, "{}", summary(&stats))?;
                // Beside the contract's line, on stderr: conflicts and refusals.
                if let Some(remarks) = remarks(&stats) {
                    eprintln!("{remarks}");
                }
                if collected > 0 {
                    eprintln!("{collected} tombstone(s) collected");
                }
            }
        }
    }
    Ok(())
}

/// "sent N, received M, B bytes", the line the command-line contract fixes.
fn summary(stats: &SyncStats) -> String {
    format!("sent {}, received {}, {} bytes", stats.entries_sent, stats.entries_received, stats.bytes_sent + stats.bytes_received)
}

/// What else happened in a session ("2 conflict(s) resolved, 1 entry(ies)
/// refused"), or `None` when nothing did.
fn remarks(stats: &SyncStats) -> Option<String> {
    let mut parts = Vec::new();
    for (n, what) in [
        (stats.conflicts, "conflict(s) resolved"),
        (stats.refused_writes, "entry(ies) refused"),
        (stats.refused_by_peer, "entry(ies) refused by the peer"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A scope of every replicated keyspace's keys under `prefix`.
fn scope(prefix: &[u8]) -> Scope {
    Scope { keyspace: None, prefix: prefix.to_vec() }
}

/// A session's options with `peer`: its pairing's read and write prefixes as
/// its rights here (enforced on every entry by this side).
fn session_options(db: &Db, peer: &DeviceId) -> anyhow::Result<SessionOptions> {
    let pairing = db
        .devices()
        .pairing(peer)?
        .ok_or_else(|| Exit::new(EXIT_FAILURE, format!("{peer} is not paired (pair add it first)")))?;
    let rights = Rights { read: pairing.read.iter().map(|p| scope(p)).collect(), write: pairing.write.iter().map(|p| scope(p)).collect() };
    Ok(SessionOptions::default().with_rights(rights))
}

/// The default keyspace (the one the KV commands use).
fn default_keyspace(db: &Db) -> anyhow::Result<Keyspace> {
    db.keyspace(DEFAULT_KEYSPACE)?.ok_or_else(|| anyhow::anyhow!("the store has no default keyspace"))
}

/// Marks the default keyspace replicated (once; keys it holds get versions).
fn replicate_default(db: &Db) -> anyhow::Result<()> {
    let default = default_keyspace(db)?;
    db.replica()?.replicate(&default).context("cannot mark the default keyspace replicated")
}

/// The replication handle and the default keyspace when the default keyspace
/// is replicated (the store was paired, served or synced): writes then go
/// through it, with versions. `None` otherwise, creating nothing.
pub(crate) fn replicated_default(db: &Db) -> anyhow::Result<Option<(Replica<'_>, Keyspace)>> {
    let Some(replica) = db.existing_replica()? else { return Ok(None) };
    let default = default_keyspace(db)?;
    Ok(replica.is_replicated(&default)?.then_some((replica, default)))
}

/// The accepting side of one session, and the tombstones collected after it.
fn answer(db: &Db, mut channel: TlsChannel) -> anyhow::Result<(SyncStats, u64)> {
    let peer = channel.peer();
    let options = session_options(db, &peer)?;
    let stats = db.replica()?.respond(&mut channel, &options)?;
    channel.close()?;
    let collected = after_session(db, &peer, &stats)?;
    Ok((stats, collected))
}

/// After a complete session with `peer`: records the replica it syncs as,
/// then collects the tombstones every paired device has seen (none while a
/// paired device has never completed a session). Returns how many.
fn after_session(db: &Db, peer: &DeviceId, stats: &SyncStats) -> anyhow::Result<u64> {
    let replica = db.replica()?;
    replica.note_device(peer, stats)?;
    let devices: Vec<DeviceId> = db.devices().pairings()?.into_iter().map(|p| p.device).collect();
    Ok(replica.collect_tombstones_seen_by(&devices)?)
}
