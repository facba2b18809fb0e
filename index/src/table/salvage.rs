//! Reading what survives of a damaged table, block by block, for `repair`.
//!
//! `TableReader::open` refuses a table as soon as any part of it fails its
//! check. Salvage needs less: the header (for the file key), the footer, the
//! meta block and the index (for where each data block starts and ends). With
//! those, every data block is read on its own; a block that authenticates,
//! decompresses and decodes, and whose keys increase and end at the key its
//! index entry names, is handed over whole, and any other block is skipped and
//! counted. A damaged bloom filter or properties block loses nothing. Without a
//! readable index the block boundaries are unknown and nothing is salvaged.

use std::sync::Arc;

use crypto::vfs::RandomAccessFile;
use crypto::{BlockKind, KeyManager};

use super::block::Block;
use super::bloom::BloomFilter;
use super::properties::Properties;
use super::reader::{checked_block_keys, decode_index, open_cipher, read_block, read_handles};
use crate::error::{Error, Result};
use crate::format::BlockHandle;
use crate::key::Entry;

/// What [`salvage_table`] could read of one table.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Data blocks the index lists (0 if the index was unreadable).
    pub blocks: u64,
    /// Data blocks read whole; their entries were handed over.
    pub blocks_read: u64,
    /// Entries handed over.
    pub entries: u64,
    /// Entries the table's properties say it holds, if they were readable.
    pub entries_expected: Option<u64>,
    /// Every problem found, in file order: the file-level one that stopped
    /// salvage (header, footer, meta, index), or one per damaged block, filter
    /// or properties block. Empty for an intact table.
    pub damage: Vec<Error>,
}

impl Salvage {
    /// Data blocks that could not be read.
    pub fn blocks_lost(&self) -> u64 {
        self.blocks - self.blocks_read
    }
}

/// Reads every intact data block of table `file_id` and passes its entries, in
/// key order, to `each`. Never fails: what could not be read is in the result.
pub fn salvage_table(
    file: &dyn RandomAccessFile,
    keys: &KeyManager,
    file_id: u64,
    name: &str,
    each: &mut dyn FnMut(Entry),
) -> Salvage {
    let mut out = Salvage::default();
    if let Err(e) = salvage_into(file, keys, file_id, name, each, &mut out) {
        out.damage.push(e);
    }
    out
}

fn salvage_into(
    file: &dyn RandomAccessFile,
    keys: &KeyManager,
    file_id: u64,
    name: &str,
    each: &mut dyn FnMut(Entry),
    out: &mut Salvage,
) -> Result<()> {
    let corrupt = |offset: u64, reason: &str| Error::corruption(name, offset, reason);
    let cipher = open_cipher(file, keys, file_id, name)?;
    let handles = read_handles(file, &cipher, name)?;
    // Filter and properties only tell; their damage costs no entry.
    match read_block(file, &cipher, name, handles.props, BlockKind::SstProperties)
        .and_then(|b| Properties::decode(&b).map_err(|r| corrupt(handles.props.offset, r)))
    {
        Ok(p) if p.file_id == file_id => out.entries_expected = Some(p.entries),
        Ok(p) => out.damage.push(corrupt(handles.props.offset, &format!("table belongs to file {}", p.file_id))),
        Err(e) => out.damage.push(e),
    }
    if handles.filter != BlockHandle::default() {
        let filter = read_block(file, &cipher, name, handles.filter, BlockKind::SstFilter)
            .and_then(|b| BloomFilter::decode(b).ok_or_else(|| corrupt(handles.filter.offset, "malformed bloom filter")));
        if let Err(e) = filter {
            out.damage.push(e);
        }
    }
    let index_body = read_block(file, &cipher, name, handles.index, BlockKind::SstIndex)?;
    let index = decode_index(index_body, handles.data_end).map_err(|r| corrupt(handles.index.offset, r))?;
    out.blocks = index.len() as u64;

    let (mut block_keys, mut spans) = (Vec::new(), Vec::new());
    // Last key handed over: keys must keep increasing across salvaged blocks.
    let mut prev: Option<Vec<u8>> = None;
    for (i, handle) in index.handles.iter().enumerate() {
        let block = match read_block(file, &cipher, name, *handle, BlockKind::SstData)
            .and_then(|body| Block::new(body).map_err(|r| corrupt(handle.offset, r)))
        {
            Ok(b) => Arc::new(b),
            Err(e) => {
                out.damage.push(e);
                continue;
            }
        };
        let decoded = match checked_block_keys(&block, &mut block_keys, &mut spans, prev.as_deref(), index.key(i)) {
            Ok(decoded) => decoded,
            Err(reason) => {
                out.damage.push(corrupt(handle.offset, reason));
                continue;
            }
        };
        for (key, (_, vr)) in decoded.into_iter().zip(&spans) {
            each(Entry { key, value: block.value(vr.clone()).to_vec() });
            out.entries += 1;
        }
        prev = Some(index.key(i).to_vec());
        out.blocks_read += 1;
    }
    Ok(())
}
