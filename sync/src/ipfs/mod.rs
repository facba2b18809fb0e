//! IPFS: the CID `ipfs add --cid-version=1` gives a file (UnixFS with Kubo's
//! defaults), CAR v1 files of its blocks, and reading such a CAR back with
//! every block's hash checked. Everything works on any `Read` / `Write`, so
//! the engine can feed it a file, stdin or a blob reader.

pub mod car;
pub mod unixfs;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

pub use cid::Cid;

/// Multicodec of raw blocks.
pub const CODEC_RAW: u64 = 0x55;
/// Multicodec of dag-pb blocks.
pub const CODEC_DAG_PB: u64 = 0x70;
/// Multihash code of SHA-256.
pub const MULTIHASH_SHA2_256: u64 = 0x12;
/// Multihash code of the identity hash.
pub const MULTIHASH_IDENTITY: u64 = 0x00;

/// Errors of the IPFS code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the input or writing the output failed.
    #[error("I/O error: {0}")]
    Io(#[source] std::io::Error),
    /// A block whose bytes do not hash to its CID.
    #[error("block {0} does not match its hash")]
    HashMismatch(String),
    /// A block the DAG names is not in the CAR.
    #[error("block {0} is missing from the CAR")]
    MissingBlock(String),
    /// Malformed CAR, CID, dag-pb or UnixFS bytes, or an unsupported form.
    #[error("{0}")]
    Invalid(String),
}

/// The CID `ipfs add --cid-version=1` gives the bytes of `reader`.
pub fn file_cid<R: Read>(reader: R) -> Result<Cid, Error> {
    unixfs::import(reader, &mut |_, _| Ok(()))
}

/// Writes the file `input` holds as a CAR v1 whose root is its UnixFS root
/// (the CID `ipfs add --cid-version=1` gives). Two passes over `input`: the
/// first finds the root the header names, the second writes the blocks, so
/// memory stays bounded whatever the file size. Returns the root.
pub fn write_car<R: Read + Seek, W: Write>(mut input: R, out: W) -> Result<Cid, Error> {
    let root = unixfs::import(&mut input, &mut |_, _| Ok(()))?;
    input.seek(SeekFrom::Start(0)).map_err(Error::Io)?;
    let mut w = car::CarWriter::new(out, &[root])?;
    let again = unixfs::import(&mut input, &mut |c, b| w.write_block(c, b))?;
    if again != root {
        return Err(Error::Invalid("the input changed while it was written".into()));
    }
    w.finish()?;
    Ok(root)
}

/// Reads a CAR v1 of one UnixFS file, checks every block's hash and writes
/// the file's bytes to `out`. Blocks are held in memory until the DAG is
/// walked (CARs of a few hundred MiB); returns the root and the byte count.
pub fn read_car_file<R: Read>(input: R, out: &mut dyn Write) -> Result<(Cid, u64), Error> {
    let mut blocks = HashMap::new();
    let roots = car::read_car(input, &mut |c, b| {
        blocks.insert(c, b);
        Ok(())
    })?;
    let [root] = roots[..] else {
        return Err(Error::Invalid(format!("a CAR of one file has one root, this one has {}", roots.len())));
    };
    let n = unixfs::export(&root, &|c| blocks.get(c).cloned(), out)?;
    Ok((root, n))
}
