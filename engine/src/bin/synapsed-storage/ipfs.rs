//! `ipfs cid FILE|-`; blobs as CAR files: `ipfs export KEY --car F
//! [--plaintext]` (encrypted by default; prints the root CID) and `ipfs import
//! --car F KEY` (checks every block's hash, then stores the blob); and CAR
//! files of local files: `ipfs pack FILE --car F` and `ipfs unpack --car F
//! OUT|-`.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use synapsed_storage::ipfs;

use crate::{Exit, GlobalArgs, EXIT_FAILURE};

/// The `ipfs` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IpfsCommand {
    /// Prints the CID `ipfs add --cid-version=1` gives FILE ("-": stdin).
    Cid {
        /// The file, or "-" for stdin.
        file: String,
    },
    /// Writes blob KEY as a CAR v1 file F and prints its root CID: by default
    /// of the blob sealed under this store's keys (only key holders can read
    /// it back), with --plaintext as the standard UnixFS file any IPFS node serves.
    Export {
        /// The blob's key.
        #[arg(allow_hyphen_values = true)]
        key: String,
        /// The CAR file to write.
        #[arg(long, value_name = "F")]
        car: PathBuf,
        /// Export the blob's bytes as they are.
        #[arg(long)]
        plaintext: bool,
    },
    /// Reads the CAR v1 file F, checks every block's hash, and stores the file
    /// as blob KEY (unsealed when it is an encrypted export of this store).
    Import {
        /// The CAR file to read.
        #[arg(long, value_name = "F")]
        car: PathBuf,
        /// The blob's key.
        #[arg(allow_hyphen_values = true)]
        key: String,
    },
    /// Writes FILE as a CAR v1 of its UnixFS blocks (Kubo's defaults); prints the root CID.
    Pack {
        /// The file to pack.
        file: PathBuf,
        /// The CAR file to write.
        #[arg(long, value_name = "F")]
        car: PathBuf,
    },
    /// Reads a CAR v1 of one file, checking every block's hash, and writes the
    /// file to OUT ("-": stdout); prints the root CID on stderr.
    Unpack {
        /// The CAR file to read.
        #[arg(long, value_name = "F")]
        car: PathBuf,
        /// Where to write the file, or "-" for stdout.
        out: String,
    },
}

pub(crate) fn run(g: &GlobalArgs, command: &IpfsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        IpfsCommand::Export { key, car, plaintext } => {
            let db = g.open(true)?;
            let tmp = car.with_extension("car.tmp");
            let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let root = db.blobs()?.export_car(key.as_bytes(), &mut writer, *plaintext);
            let root = match root {
                Ok(Some(root)) => root,
                Ok(None) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(Exit::new(EXIT_FAILURE, format!("blob not found: {key}")).into());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.into());
                }
            };
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all().with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, car).with_context(|| format!("cannot create {}", car.display()))?;
            writeln!(out, "{root}")?;
        }
        IpfsCommand::Import { car, key } => {
            let mut input = std::io::BufReader::new(std::fs::File::open(car).with_context(|| format!("cannot open {}", car.display()))?);
            let db = g.open(false)?;
            let (root, bytes, sealed) =
                db.blobs()?.import_car(key.as_bytes(), &mut input).with_context(|| format!("{} refused", car.display()))?;
            db.close()?;
            let form = if sealed { "an encrypted export" } else { "a plaintext file" };
            writeln!(out, "imported {root} ({form}) as {key}: {bytes} bytes")?;
        }
        IpfsCommand::Cid { file } => {
            let input: Box<dyn Read> = if file == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {file}"))?)
            };
            writeln!(out, "{}", ipfs::file_cid(std::io::BufReader::new(input))?)?;
        }
        IpfsCommand::Pack { file, car } => {
            let input = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
            let tmp = car.with_extension("car.tmp");
            let output = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let root = ipfs::write_car(input, std::io::BufWriter::new(output))?;
            std::fs::rename(&tmp, car).with_context(|| format!("cannot create {}", car.display()))?;
            writeln!(out, "{root}")?;
        }
        IpfsCommand::Unpack { car, out: dest } => {
            let input = std::io::BufReader::new(std::fs::File::open(car).with_context(|| format!("cannot open {}", car.display()))?);
            // The file is assembled in memory first, so nothing is written
            // unless every block checked out.
            let mut bytes = Vec::new();
            let (root, _) = ipfs::read_car_file(input, &mut bytes).with_context(|| format!("{} refused", car.display()))?;
            if dest == "-" {
                out.write_all(&bytes)?;
            } else {
                std::fs::write(dest, &bytes).with_context(|| format!("cannot write {dest}"))?;
            }
            eprintln!("root {root}");
        }
    }
    Ok(())
}
