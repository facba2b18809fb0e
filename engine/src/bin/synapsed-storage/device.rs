//! `device id`, `pair add|ls|rm`: this store as a device of sync, and the
//! devices it trusts.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use synapsed_storage::device::{DeviceId, FrameChannel, Pairing, TlsChannel, TransportOptions, TRANSPORT_VERSION};

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
    /// One session with the paired device listening at ADDR.
    Sync {
        /// The peer's address (HOST:PORT).
        addr: String,
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
            let transport = db.devices().transport(TransportOptions::default())?;
            let listener = transport.listen(listen.as_str()).with_context(|| format!("cannot listen on {listen}"))?;
            writeln!(out, "listening on {} as device {}", listener.local_addr(), transport.device_id())?;
            out.flush()?;
            loop {
                match listener.accept() {
                    Ok(channel) => {
                        let peer = channel.peer();
                        match answer(channel) {
                            Ok(()) => eprintln!("session with {peer}: hello exchanged; the session protocol is not in this build"),
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
        DeviceCommand::Sync { addr } => {
            let db = g.open(false)?;
            let transport = db.devices().transport(TransportOptions::default())?;
            let mut channel = transport.connect(addr.as_str()).with_context(|| format!("cannot open a session with {addr}"))?;
            let peer = channel.peer();
            channel.send(&hello())?;
            let theirs = channel.recv()?.ok_or_else(|| anyhow::anyhow!("{peer} closed the session before its hello"))?;
            let version = read_hello(&theirs)?;
            channel.close()?;
            db.close()?;
            writeln!(
                out,
                "connected to {peer} (transport version {TRANSPORT_VERSION}, session version {version}); \
                 the session protocol is not in this build: nothing was synced"
            )?;
        }
    }
    Ok(())
}

// Session protocol joins here: until it does, a session is one hello frame
// each way ("SYNAPSED-HELLO" and a u32 big-endian session version), then a
// clean close. The replication session replaces `answer` and the body of
// `sync`, and its first message replaces this hello.

/// The session version the hello announces.
const SESSION_VERSION: u32 = 0;
const HELLO_MAGIC: &[u8] = b"SYNAPSED-HELLO";

fn hello() -> Vec<u8> {
    [HELLO_MAGIC, &SESSION_VERSION.to_be_bytes()[..]].concat()
}

fn read_hello(frame: &[u8]) -> anyhow::Result<u32> {
    let version = frame
        .strip_prefix(HELLO_MAGIC)
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .ok_or_else(|| anyhow::anyhow!("the peer's first frame is not a hello"))?;
    Ok(u32::from_be_bytes(version))
}

/// The accepting side of a session: the peer's hello, ours, a clean close.
fn answer(mut channel: TlsChannel) -> anyhow::Result<()> {
    let theirs = channel.recv()?.ok_or_else(|| anyhow::anyhow!("closed before its hello"))?;
    read_hello(&theirs)?;
    channel.send(&hello())?;
    // Wait for the peer's close so that it has read the hello.
    if channel.recv()?.is_some() {
        anyhow::bail!("the peer sent more than a hello");
    }
    Ok(())
}
