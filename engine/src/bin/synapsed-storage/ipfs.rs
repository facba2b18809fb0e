//! `ipfs cid FILE|-`, and CAR files of local files: `ipfs pack FILE --car F`
//! (a standard UnixFS CAR any IPFS node can serve; prints the root) and
//! `ipfs unpack --car F OUT|-` (checks every block's hash, then writes the
//! file). `ipfs export KEY` / `ipfs import KEY` (blobs) build on the same code.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use synapsed_storage::ipfs;

/// The `ipfs` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IpfsCommand {
    /// Prints the CID `ipfs add --cid-version=1` gives FILE ("-": stdin).
    Cid {
        /// The file, or "-" for stdin.
        file: String,
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

pub(crate) fn run(command: &IpfsCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
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
