//! `device id`, `pair add|ls|rm`: this store as a device of sync, and the
//! devices it trusts.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use synapsed_storage::device::{DeviceId, Pairing};

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
    }
    Ok(())
}
