//! CAR v1 (content-addressed archive) writer and a reader that checks the
//! hash of every block before handing it on.
//!
//! ```text
//! varint(len) header    header: dag-cbor {"roots": [CID...], "version": 1}
//! varint(len) CID block  one section per block, len = CID bytes + block bytes
//! ...
//! ```

use std::io::{Read, Write};

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

use super::unixfs::MAX_BLOCK_BYTES;
use super::{Error, MULTIHASH_IDENTITY, MULTIHASH_SHA2_256};

/// Largest CAR header accepted.
const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most roots a header may list.
const MAX_ROOTS: usize = 64;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The dag-cbor header of a CAR v1 with `roots` (map keys in dag-cbor's
/// order: "roots" before "version").
fn header(roots: &[Cid]) -> Vec<u8> {
    let mut h = vec![0xa2, 0x65];
    h.extend_from_slice(b"roots");
    cbor_head(&mut h, 4, roots.len() as u64);
    for r in roots {
        let bytes = r.to_bytes();
        h.extend_from_slice(&[0xd8, 0x2a]); // tag 42: a CID
        cbor_head(&mut h, 2, bytes.len() as u64 + 1);
        h.push(0x00); // the multibase identity prefix dag-cbor puts before a binary CID
        h.extend_from_slice(&bytes);
    }
    h.push(0x67);
    h.extend_from_slice(b"version");
    h.push(0x01);
    h
}

fn cbor_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Writes a CAR v1 stream: the header, then blocks as they are handed in.
pub struct CarWriter<W: Write> {
    out: W,
}

impl<W: Write> CarWriter<W> {
    /// Starts a CAR with `roots` in its header.
    pub fn new(mut out: W, roots: &[Cid]) -> Result<Self, Error> {
        let h = header(roots);
        let mut len = Vec::new();
        varint(h.len() as u64, &mut len);
        out.write_all(&len).map_err(Error::Io)?;
        out.write_all(&h).map_err(Error::Io)?;
        Ok(CarWriter { out })
    }

    /// Appends one block.
    pub fn write_block(&mut self, cid: &Cid, block: &[u8]) -> Result<(), Error> {
        let c = cid.to_bytes();
        let mut len = Vec::new();
        varint((c.len() + block.len()) as u64, &mut len);
        self.out.write_all(&len).map_err(Error::Io)?;
        self.out.write_all(&c).map_err(Error::Io)?;
        self.out.write_all(block).map_err(Error::Io)?;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.out.flush().map_err(Error::Io)?;
        Ok(self.out)
    }
}

/// Checks that `block` hashes to `cid` (SHA-256, or the identity hash).
pub fn verify_block(cid: &Cid, block: &[u8]) -> Result<(), Error> {
    let mh = cid.hash();
    let ok = match mh.code() {
        MULTIHASH_SHA2_256 => Multihash::<64>::wrap(MULTIHASH_SHA2_256, &Sha256::digest(block)).is_ok_and(|m| &m == mh),
        MULTIHASH_IDENTITY => mh.digest() == block,
        other => return Err(Error::Invalid(format!("block {cid}: unsupported hash function {other:#x}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::HashMismatch(cid.to_string()))
    }
}

fn read_varint<R: Read>(r: &mut R) -> Result<Option<u64>, Error> {
    let mut v = 0u64;
    for (i, shift) in (0..64).step_by(7).enumerate() {
        let mut b = [0u8; 1];
        match r.read(&mut b) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(Error::Invalid("CAR cut inside a length".into())),
            Ok(_) => {}
            Err(e) => return Err(Error::Io(e)),
        }
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(Error::Invalid("CAR length varint too long".into()))
}

/// Reads a CAR v1 stream: returns its roots and hands every block, its hash
/// checked, to `sink`. A block whose bytes do not hash to its CID stops the
/// read with [`Error::HashMismatch`].
pub fn read_car<R: Read>(mut r: R, sink: &mut dyn FnMut(Cid, Vec<u8>) -> Result<(), Error>) -> Result<Vec<Cid>, Error> {
    let len = read_varint(&mut r)?.ok_or_else(|| Error::Invalid("empty CAR".into()))?;
    let len = usize::try_from(len).ok().filter(|l| *l <= MAX_HEADER_BYTES).ok_or_else(|| Error::Invalid("CAR header too large".into()))?;
    let mut h = vec![0u8; len];
    r.read_exact(&mut h).map_err(Error::Io)?;
    let roots = parse_header(&h)?;
    while let Some(len) = read_varint(&mut r)? {
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_BLOCK_BYTES + 128)
            .ok_or_else(|| Error::Invalid(format!("CAR section of {len} bytes is over the limit")))?;
        let mut section = vec![0u8; len];
        r.read_exact(&mut section).map_err(Error::Io)?;
        let mut cursor = std::io::Cursor::new(&section[..]);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| Error::Invalid(format!("bad CID in CAR: {e}")))?;
        let at = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        let block = section.get(at..).ok_or_else(|| Error::Invalid("CAR section shorter than its CID".into()))?.to_vec();
        verify_block(&cid, &block)?;
        sink(cid, block)?;
    }
    Ok(roots)
}

/// Parses the dag-cbor header: a map with "version" = 1 and "roots", an array
/// of CIDs (tag 42). Other keys are refused.
fn parse_header(h: &[u8]) -> Result<Vec<Cid>, Error> {
    let bad = |why: &str| Error::Invalid(format!("CAR header: {why}"));
    let mut p = Cbor { b: h, pos: 0 };
    let (major, n) = p.head().ok_or_else(|| bad("truncated"))?;
    if major != 5 {
        return Err(bad("not a map"));
    }
    let mut roots = None;
    let mut version = None;
    for _ in 0..n {
        let (m, l) = p.head().ok_or_else(|| bad("truncated"))?;
        if m != 3 {
            return Err(bad("key is not a string"));
        }
        let key = p.take(l).ok_or_else(|| bad("truncated"))?;
        match key {
            b"version" => {
                let (m, v) = p.head().ok_or_else(|| bad("truncated"))?;
                if m != 0 {
                    return Err(bad("version is not a number"));
                }
                version = Some(v);
            }
            b"roots" => {
                let (m, count) = p.head().ok_or_else(|| bad("truncated"))?;
                if m != 4 || count as usize > MAX_ROOTS {
                    return Err(bad("roots is not a short array"));
                }
                let mut list = Vec::new();
                for _ in 0..count {
                    let (m, tag) = p.head().ok_or_else(|| bad("truncated"))?;
                    if m != 6 || tag != 42 {
                        return Err(bad("root is not a CID"));
                    }
                    let (m, l) = p.head().ok_or_else(|| bad("truncated"))?;
                    if m != 2 {
                        return Err(bad("root is not bytes"));
                    }
                    let bytes = p.take(l).ok_or_else(|| bad("truncated"))?;
                    let (prefix, cid) = bytes.split_first().ok_or_else(|| bad("empty CID"))?;
                    if *prefix != 0 {
                        return Err(bad("CID without its 0x00 prefix"));
                    }
                    list.push(Cid::try_from(cid).map_err(|e| bad(&format!("bad root CID: {e}")))?);
                }
                roots = Some(list);
            }
            _ => return Err(bad("unknown key")),
        }
    }
    if p.pos != h.len() {
        return Err(bad("trailing bytes"));
    }
    if version != Some(1) {
        return Err(Error::Invalid("only CAR version 1 is read".into()));
    }
    roots.ok_or_else(|| bad("no roots"))
}

struct Cbor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cbor<'a> {
    fn head(&mut self) -> Option<(u8, u64)> {
        let first = *self.b.get(self.pos)?;
        self.pos += 1;
        let major = first >> 5;
        let info = first & 0x1f;
        let v = match info {
            0..=23 => u64::from(info),
            24 => u64::from(*self.take(1)?.first()?),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
            27 => u64::from_be_bytes(self.take(8)?.try_into().ok()?),
            _ => return None,
        };
        Some((major, v))
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::ipfs::unixfs;

    #[test]
    fn round_trip_and_a_damaged_block_is_refused() {
        let data: Vec<u8> = (0..(unixfs::CHUNK_BYTES * 3 + 5)).map(|i| (i % 251) as u8).collect();
        let mut blocks = Vec::new();
        let root = unixfs::import(&data[..], &mut |c, b| {
            blocks.push((*c, b.to_vec()));
            Ok(())
        })
        .unwrap();
        let mut w = CarWriter::new(Vec::new(), &[root]).unwrap();
        for (c, b) in &blocks {
            w.write_block(c, b).unwrap();
        }
        let car = w.finish().unwrap();
        let mut got = std::collections::HashMap::new();
        let roots = read_car(&car[..], &mut |c, b| {
            got.insert(c, b);
            Ok(())
        })
        .unwrap();
        assert_eq!(roots, vec![root]);
        let mut out = Vec::new();
        unixfs::export(&root, &|c| got.get(c).cloned(), &mut out).unwrap();
        assert!(out == data);
        // Flip one byte of the last block's data.
        let mut bad = car.clone();
        let at = bad.len() - 10;
        bad[at] ^= 1;
        assert!(matches!(read_car(&bad[..], &mut |_, _| Ok(())), Err(Error::HashMismatch(_))));
        // A cut stream is refused too.
        assert!(read_car(&car[..car.len() - 3], &mut |_, _| Ok(())).is_err());
    }
}
