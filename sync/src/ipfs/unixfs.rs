//! The UnixFS file importer with Kubo's defaults (`ipfs add --cid-version=1`):
//! fixed 256 KiB chunks stored as raw leaves, a balanced DAG of dag-pb nodes
//! of at most 174 links, CIDv1 with SHA-256 everywhere; a file of one chunk
//! (or none) is that raw leaf alone. Also the reader that reassembles a file
//! from its blocks.
//!
//! The dag-pb and UnixFS encoders are small and written here: a `PBNode` of
//! links (`Hash`, `Name` = "", `Tsize`) then `Data`, and a UnixFS `Data`
//! message of `Type` = File, `filesize` and one `blocksizes` entry per link,
//! the byte forms go-codec-dagpb and @ipld/dag-pb produce (checked against
//! Helia in `sync/tests/ipfs_helia.rs`).

use std::io::Read;

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

use super::{Error, CODEC_DAG_PB, CODEC_RAW, MULTIHASH_SHA2_256};

/// Chunk size of Kubo's default chunker (`size-262144`).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Most links of one node in Kubo's balanced layout.
pub const MAX_LINKS: usize = 174;
/// UnixFS `Type` of a file.
const UNIXFS_FILE: u64 = 2;
/// Largest block the reader accepts (Kubo's own limit is 2 MiB for bitswap;
/// ours only needs 256 KiB leaves and nodes of 174 links).
pub const MAX_BLOCK_BYTES: usize = 2 << 20;
/// Deepest DAG the reader follows (174^8 chunks is far beyond any file).
const MAX_DEPTH: usize = 8;

/// Receives every block the importer makes: its CID and bytes.
pub type BlockSink<'a> = &'a mut dyn FnMut(&Cid, &[u8]) -> Result<(), Error>;

/// A CIDv1 of `codec` over the SHA-256 of `bytes`.
pub fn cid_of(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    // A 32-byte digest always fits the 64-byte multihash.
    let mh = Multihash::<64>::wrap(MULTIHASH_SHA2_256, &digest).unwrap_or_default();
    Cid::new_v1(codec, mh)
}

/// One node of the DAG being built: its CID, the file bytes under it and the
/// encoded bytes of its whole subtree (the link's `Tsize`).
#[derive(Clone)]
struct Built {
    cid: Cid,
    file_bytes: u64,
    tree_bytes: u64,
}

/// Chunks `reader` as `ipfs add --cid-version=1` does and hands every block
/// to `sink` (leaves first, each node after its children); returns the root.
pub fn import<R: Read>(mut reader: R, sink: BlockSink<'_>) -> Result<Cid, Error> {
    // levels[d]: nodes of depth d (0: leaves) not yet under a parent. A full
    // group is reduced as soon as it forms, so memory stays bounded by the
    // depth whatever the file size; the result is the balanced builder's.
    let mut levels: Vec<Vec<Built>> = vec![Vec::new()];
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut chunks = 0u64;
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 && chunks > 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        let cid = cid_of(CODEC_RAW, chunk);
        sink(&cid, chunk)?;
        push(&mut levels, 0, Built { cid, file_bytes: n as u64, tree_bytes: n as u64 });
        chunks += 1;
        let mut d = 0;
        while levels.get(d).is_some_and(|l| l.len() == MAX_LINKS) {
            let group = levels.get_mut(d).map(std::mem::take).unwrap_or_default();
            let parent = node(&group, sink)?;
            push(&mut levels, d + 1, parent);
            d += 1;
        }
        if n < CHUNK_BYTES {
            break;
        }
    }
    if chunks == 1 {
        // One chunk in all (or an empty file): the raw leaf is the file.
        if let Some(leaf) = levels.first().and_then(|l| l.first()) {
            return Ok(leaf.cid);
        }
    }
    let mut d = 0;
    loop {
        let top = levels.iter().skip(d + 1).all(Vec::is_empty);
        let here = levels.get_mut(d).map(std::mem::take).unwrap_or_default();
        if top && d > 0 && here.len() == 1 {
            if let Some(root) = here.first() {
                return Ok(root.cid);
            }
        }
        if !here.is_empty() {
            let parent = node(&here, sink)?;
            push(&mut levels, d + 1, parent);
        }
        d += 1;
        if d > 64 {
            return Err(Error::Invalid("DAG deeper than 64 levels".into()));
        }
    }
}

fn push(levels: &mut Vec<Vec<Built>>, d: usize, node: Built) {
    if levels.len() <= d {
        levels.resize(d + 1, Vec::new());
    }
    if let Some(l) = levels.get_mut(d) {
        l.push(node);
    }
}

/// Encodes one dag-pb file node over `children`.
fn node(children: &[Built], sink: BlockSink<'_>) -> Result<Built, Error> {
    let file_bytes: u64 = children.iter().map(|c| c.file_bytes).sum();
    let mut data = Vec::new();
    put_varint_field(&mut data, 1, UNIXFS_FILE);
    put_varint_field(&mut data, 3, file_bytes);
    for c in children {
        put_varint_field(&mut data, 4, c.file_bytes);
    }
    let mut block = Vec::new();
    for c in children {
        let hash = c.cid.to_bytes();
        let mut link = Vec::new();
        put_bytes_field(&mut link, 1, &hash);
        put_bytes_field(&mut link, 2, b"");
        put_varint_field(&mut link, 3, c.tree_bytes);
        put_bytes_field(&mut block, 2, &link);
    }
    put_bytes_field(&mut block, 1, &data);
    let cid = cid_of(CODEC_DAG_PB, &block);
    sink(&cid, &block)?;
    let tree_bytes = block.len() as u64 + children.iter().map(|c| c.tree_bytes).sum::<u64>();
    Ok(Built { cid, file_bytes, tree_bytes })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Ok(filled)
}

/// Reads a protobuf varint from `bytes` at `*pos`.
pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The links of a dag-pb node and the `filesize` of its UnixFS data.
struct PbNode {
    links: Vec<Cid>,
    unixfs_type: Option<u64>,
    data: Option<Vec<u8>>,
}

fn decode_pb(block: &[u8], cid: &Cid) -> Result<PbNode, Error> {
    let bad = |why: &str| Error::Invalid(format!("block {cid}: {why}"));
    let mut pos = 0;
    let mut links = Vec::new();
    let mut unixfs = None;
    while pos < block.len() {
        let key = get_varint(block, &mut pos).ok_or_else(|| bad("bad varint"))?;
        if key & 7 != 2 {
            return Err(bad("unexpected wire type in PBNode"));
        }
        let len = usize::try_from(get_varint(block, &mut pos).ok_or_else(|| bad("bad length"))?).map_err(|_| bad("bad length"))?;
        let end = pos.checked_add(len).filter(|e| *e <= block.len()).ok_or_else(|| bad("field past the end"))?;
        let field = block.get(pos..end).ok_or_else(|| bad("field past the end"))?;
        pos = end;
        match key >> 3 {
            2 => {
                let mut lp = 0;
                let mut hash = None;
                while lp < field.len() {
                    let k = get_varint(field, &mut lp).ok_or_else(|| bad("bad link"))?;
                    match (k >> 3, k & 7) {
                        (1 | 2, 2) => {
                            let l = usize::try_from(get_varint(field, &mut lp).ok_or_else(|| bad("bad link"))?).map_err(|_| bad("bad link"))?;
                            let e = lp.checked_add(l).filter(|e| *e <= field.len()).ok_or_else(|| bad("link past the end"))?;
                            if k >> 3 == 1 {
                                let h = field.get(lp..e).ok_or_else(|| bad("bad link"))?;
                                hash = Some(Cid::try_from(h).map_err(|e| bad(&format!("bad link CID: {e}")))?);
                            }
                            lp = e;
                        }
                        (3, 0) => {
                            get_varint(field, &mut lp).ok_or_else(|| bad("bad Tsize"))?;
                        }
                        _ => return Err(bad("unexpected field in PBLink")),
                    }
                }
                links.push(hash.ok_or_else(|| bad("link without a hash"))?);
            }
            1 => unixfs = Some(field.to_vec()),
            _ => return Err(bad("unexpected field in PBNode")),
        }
    }
    let mut unixfs_type = None;
    let mut data = None;
    if let Some(u) = unixfs {
        let mut p = 0;
        while p < u.len() {
            let k = get_varint(&u, &mut p).ok_or_else(|| bad("bad UnixFS data"))?;
            match k & 7 {
                0 => {
                    let v = get_varint(&u, &mut p).ok_or_else(|| bad("bad UnixFS data"))?;
                    if k >> 3 == 1 {
                        unixfs_type = Some(v);
                    }
                }
                2 => {
                    let l = usize::try_from(get_varint(&u, &mut p).ok_or_else(|| bad("bad UnixFS data"))?).map_err(|_| bad("bad UnixFS"))?;
                    let e = p.checked_add(l).filter(|e| *e <= u.len()).ok_or_else(|| bad("UnixFS field past the end"))?;
                    if k >> 3 == 2 {
                        data = Some(u.get(p..e).unwrap_or_default().to_vec());
                    }
                    p = e;
                }
                _ => return Err(bad("unexpected wire type in UnixFS data")),
            }
        }
    }
    Ok(PbNode { links, unixfs_type, data })
}

/// Writes the file whose root is `root` to `out`, fetching blocks with `get`
/// (which returns blocks whose hash was already checked). Follows raw leaves
/// and dag-pb UnixFS file nodes (inline data included), depth first.
pub fn export(root: &Cid, get: &dyn Fn(&Cid) -> Option<Vec<u8>>, out: &mut dyn std::io::Write) -> Result<u64, Error> {
    write_node(root, get, out, 0)
}

fn write_node(cid: &Cid, get: &dyn Fn(&Cid) -> Option<Vec<u8>>, out: &mut dyn std::io::Write, depth: usize) -> Result<u64, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Invalid(format!("DAG under {cid} deeper than {MAX_DEPTH}")));
    }
    let block = get(cid).ok_or_else(|| Error::MissingBlock(cid.to_string()))?;
    match cid.codec() {
        CODEC_RAW => {
            out.write_all(&block).map_err(Error::Io)?;
            Ok(block.len() as u64)
        }
        CODEC_DAG_PB => {
            let node = decode_pb(&block, cid)?;
            if node.unixfs_type.is_some_and(|t| t != UNIXFS_FILE && t != 0) {
                return Err(Error::Invalid(format!("block {cid} is not a UnixFS file")));
            }
            let mut n = 0;
            if let Some(d) = node.data {
                out.write_all(&d).map_err(Error::Io)?;
                n += d.len() as u64;
            }
            for link in &node.links {
                n += write_node(link, get, out, depth + 1)?;
            }
            Ok(n)
        }
        other => Err(Error::Invalid(format!("block {cid} has codec {other:#x}, not raw or dag-pb"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn root_of(bytes: &[u8]) -> String {
        import(bytes, &mut |_, _| Ok(())).unwrap().to_string()
    }

    #[test]
    fn known_cids_of_kubo() {
        // `echo -n "hello world" | ipfs add --cid-version=1 -Q`
        assert_eq!(root_of(b"hello world"), "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
        // The empty file is an empty raw leaf.
        assert_eq!(root_of(b""), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    }

    #[test]
    fn export_returns_the_bytes_imported() {
        for len in [0usize, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, CHUNK_BYTES * 175 + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 1000) as u8).collect();
            let mut blocks = std::collections::HashMap::new();
            let root = import(&data[..], &mut |c, b| {
                blocks.insert(*c, b.to_vec());
                Ok(())
            })
            .unwrap();
            let mut out = Vec::new();
            let n = export(&root, &|c| blocks.get(c).cloned(), &mut out).unwrap();
            assert_eq!(n as usize, len);
            assert!(out == data, "len {len}");
        }
    }
}
