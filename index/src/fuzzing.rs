//! Entry points that expose the SSTable decoders to fuzzers and to the
//! corpus-replay tests (`tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! Each entry point takes arbitrary bytes, never panics on them, and panics only
//! when a decoder breaks a rule of `index/FORMAT.md`. Most checks are
//! differential: a small model decoder written from the document, independent of
//! the code under test, must accept exactly what the real decoder accepts and
//! decode it to the same entries. Tables are encrypted under a per-process key, so
//! [`sst_table`] reads its input as a choice of seed table (or entries to build one
//! from) plus damage to do to the file's bytes. [`seed_corpus`] makes the committed
//! seed inputs.

use std::cmp::Ordering;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use fuzz_support::{apply_damage, must, Damage, FuzzInput};
use crypto::vfs::{SimVfs, Vfs};
use crypto::{KeyManager, FILE_HEADER_LEN};

use crate::format::{BlockHandle, Footer, FooterError, BLOCK_OVERHEAD, MAX_BLOCK_BYTES, TABLE_FORMAT_VERSION};
use crate::key::{compare_encoded, InternalKey, SeqNo, ValueKind, MAX_SEQNO};
use crate::table::block::{Block, BlockBuilder, BlockIter};
use crate::table::bloom::{hash64, BloomBuilder, BloomFilter};
use crate::table::properties::Properties;
use crate::table::reader::decode_index;
use crate::{BlockCache, Compression, Direction, Error, KeyRange, TableBuilder, TableOptions, TableReader};

/// The fuzz targets of this crate, by corpus directory name.
pub const TARGETS: [&str; 6] = ["sst_block", "sst_index", "sst_footer", "bloom", "sst_properties", "sst_table"];

/// Runs `target`'s entry point on `data`; `false` if the target is unknown.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "sst_block" => sst_block(data),
        "sst_index" => sst_index(data),
        "sst_footer" => sst_footer(data),
        "bloom" => bloom(data),
        "sst_properties" => sst_properties(data),
        "sst_table" => sst_table(data),
        _ => return false,
    }
    true
}

/// Values from `index/FORMAT.md`, restated here so the models check the code
/// against the document rather than against its own constants.
const DOC_HEADER_LEN: u64 = 84;
const DOC_FOOTER_MAGIC: [u8; 8] = [0x53, 0x59, 0x4e, 0x53, 0x53, 0x54, 0x01, 0x00];
const DOC_MAX_KEY_FIELD: usize = (1 << 20) + 8;
const DOC_MAX_USER_PROPERTIES: usize = 64 << 10;

const _: () = assert!(DOC_HEADER_LEN == FILE_HEADER_LEN as u64);

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]))
}

fn le_u64(data: &[u8], at: usize) -> Option<u64> {
    let lo = le_u32(data, at)?;
    let hi = le_u32(data, at.checked_add(4)?)?;
    Some(u64::from(lo) | (u64::from(hi) << 32))
}

// ---------------------------------------------------------------------------
// Model of a block body (data and index blocks), from FORMAT.md.

struct ModelEntry {
    offset: usize,
    shared: usize,
    key: Vec<u8>,
    value: Vec<u8>,
}

struct ModelBlock {
    restarts: Vec<usize>,
    /// Entries decoded before the end or the first malformed one.
    entries: Vec<ModelEntry>,
    /// Whether every entry decoded.
    entries_ok: bool,
}

/// LEB128 of at most 5 bytes whose value fits 32 bits.
fn model_varint(data: &[u8], pos: &mut usize) -> Option<usize> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let b = *data.get(pos.checked_add(i)?)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if v > u64::from(u32::MAX) {
                return None;
            }
            *pos += i + 1;
            return usize::try_from(v).ok();
        }
    }
    None
}

fn model_block(data: &[u8]) -> Option<ModelBlock> {
    let count_at = data.len().checked_sub(4)?;
    let count = usize::try_from(le_u32(data, count_at)?).ok()?;
    if count == 0 {
        return None;
    }
    let restarts_at = count_at.checked_sub(count.checked_mul(4)?)?;
    let mut restarts = Vec::new();
    for i in 0..count {
        let r = usize::try_from(le_u32(data, restarts_at + 4 * i)?).ok()?;
        let in_order = match restarts.last() {
            None => r == 0,
            Some(prev) => r > *prev,
        };
        if !in_order || r >= restarts_at {
            return None;
        }
        restarts.push(r);
    }
    let mut entries: Vec<ModelEntry> = Vec::new();
    let mut pos = 0;
    let mut entries_ok = true;
    while pos < restarts_at {
        let mut p = pos;
        let parsed = (|| {
            let shared = model_varint(data, &mut p)?;
            let unshared = model_varint(data, &mut p)?;
            let value_len = model_varint(data, &mut p)?;
            let prev = entries.last().map_or(&[][..], |e| e.key.as_slice());
            let stored = data.get(p..p.checked_add(unshared)?)?;
            let value_end = p.checked_add(unshared)?.checked_add(value_len)?;
            if shared > prev.len() || value_end > restarts_at {
                return None;
            }
            let mut key = prev.get(..shared)?.to_vec();
            key.extend_from_slice(stored);
            let value = data.get(p + unshared..value_end)?.to_vec();
            Some((ModelEntry { offset: pos, shared, key, value }, value_end))
        })();
        match parsed {
            Some((entry, next)) => {
                entries.push(entry);
                pos = next;
            }
            None => {
                entries_ok = false;
                break;
            }
        }
    }
    Some(ModelBlock { restarts, entries, entries_ok })
}

impl ModelBlock {
    /// Whether a seek must find the right entry: every entry decodes, keys strictly
    /// increase, and every restart point is an entry that stores its key whole.
    fn seekable(&self) -> bool {
        self.entries_ok
            && self.entries.windows(2).all(|w| matches!(w, [a, b] if compare_encoded(&a.key, &b.key) == Ordering::Less))
            && self.restarts.iter().all(|r| self.entries.iter().any(|e| e.offset == *r && e.shared == 0))
    }

    /// The first entry whose key is >= `target`.
    fn lower_bound(&self, target: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| compare_encoded(&e.key, target) != Ordering::Less)
    }
}

/// Seek targets around `keys`: each key, its neighbours by trailer, and extremes.
fn seek_targets(keys: &[&[u8]]) -> Vec<Vec<u8>> {
    let stride = (keys.len() / 64).max(1);
    let mut targets = vec![Vec::new(), vec![0u8; 8], vec![0xff; 12], b"\x00zz".to_vec()];
    for key in keys.iter().step_by(stride) {
        targets.push(key.to_vec());
        if let Some(split) = key.len().checked_sub(8) {
            let trailer = le_u64(key, split).unwrap_or(0);
            for t in [trailer.wrapping_add(1), trailer.wrapping_sub(1), 0, u64::MAX] {
                let mut k = key.get(..split).unwrap_or_default().to_vec();
                k.extend_from_slice(&t.to_le_bytes());
                targets.push(k);
            }
        }
    }
    targets
}

/// `data` as a data-block body: the decoder must accept exactly the blocks the
/// model accepts, iterate (forward, and whole for reverse) to the model's entries,
/// fail exactly where the model fails, and seek correctly in well-formed blocks.
pub fn sst_block(data: &[u8]) {
    let model = model_block(data);
    let block = match (Block::new(data.to_vec()), &model) {
        (Ok(block), Some(_)) => block,
        (Err(_), None) => return,
        (Ok(_), None) => panic!("the decoder accepted a restart array the format refuses"),
        (Err(e), Some(_)) => panic!("the decoder refused a valid restart array: {e}"),
    };
    let Some(model) = model else { return };

    let (mut keys, mut spans) = (Vec::new(), Vec::new());
    let whole = block.decode_all(&mut keys, &mut spans);
    assert_eq!(whole.is_ok(), model.entries_ok, "decode_all disagrees with the format: {whole:?}");
    if whole.is_ok() {
        assert_eq!(spans.len(), model.entries.len(), "decode_all entry count");
        for ((kr, vr), e) in spans.iter().zip(&model.entries) {
            assert_eq!(keys.get(kr.clone()), Some(e.key.as_slice()), "decode_all key");
            assert_eq!(block.value(vr.clone()), e.value.as_slice(), "decode_all value");
        }
    }

    let mut it = BlockIter::new(block.clone());
    let mut step = it.seek_to_first();
    let mut n = 0;
    loop {
        match step {
            Err(e) => {
                assert!(!model.entries_ok, "forward iteration failed on a well-formed block: {e}");
                assert_eq!(n, model.entries.len(), "forward iteration failed at another entry than the format");
                break;
            }
            Ok(()) if !it.valid() => {
                assert!(model.entries_ok, "forward iteration ended cleanly on a malformed block");
                assert_eq!(n, model.entries.len(), "forward iteration ended early");
                break;
            }
            Ok(()) => {
                let e = model.entries.get(n);
                assert!(e.is_some(), "forward iteration went past the last entry");
                if let Some(e) = e {
                    assert_eq!((it.key(), it.value()), (e.key.as_slice(), e.value.as_slice()), "entry {n}");
                }
                n += 1;
                step = it.advance();
            }
        }
    }

    let entry_keys: Vec<&[u8]> = model.entries.iter().map(|e| e.key.as_slice()).collect();
    let seekable = model.seekable();
    for target in seek_targets(&entry_keys) {
        let result = it.seek(&target);
        if !seekable {
            continue;
        }
        assert!(result.is_ok(), "seek failed in a well-formed block: {result:?}");
        match model.lower_bound(&target) {
            Some(j) => {
                assert!(it.valid(), "seek found nothing where entry {j} is >= the target");
                let e = model.entries.get(j);
                assert_eq!(Some(it.key()), e.map(|e| e.key.as_slice()), "seek landed on the wrong entry");
                assert_eq!(Some(it.value()), e.map(|e| e.value.as_slice()), "seek value");
            }
            None => assert!(!it.valid(), "seek past the last key found an entry"),
        }
    }
}

/// The first 8 bytes of `data` are `data_end` (LE), the rest an index-block body.
/// The decoder must accept exactly the index blocks the format allows (valid keys
/// in strictly increasing order, 12-byte handles tiling `[84, data_end)`), and
/// its binary search must agree with a linear scan.
pub fn sst_index(data: &[u8]) {
    let data_end = le_u64(data, 0).unwrap_or(0);
    let body = data.get(8..).unwrap_or_default();
    let expected = model_index(body, data_end);
    let index = match (decode_index(body.to_vec(), data_end), expected) {
        (Ok(index), Some(entries)) => (index, entries),
        (Err(_), None) => return,
        (Ok(_), None) => panic!("the index decoder accepted an index the format refuses"),
        (Err(e), Some(_)) => panic!("the index decoder refused a valid index: {e}"),
    };
    let (index, entries) = index;
    assert_eq!(index.len(), entries.len(), "index length");
    for (i, (key, handle)) in entries.iter().enumerate() {
        assert_eq!(index.key(i), key.as_slice(), "index key {i}");
        assert_eq!(index.handles.get(i), Some(handle), "index handle {i}");
    }
    let keys: Vec<&[u8]> = entries.iter().map(|(k, _)| k.as_slice()).collect();
    for target in seek_targets(&keys) {
        let linear = keys.iter().position(|k| compare_encoded(k, &target) != Ordering::Less);
        assert_eq!(index.find(&target), linear, "index search disagrees with a linear scan");
    }
}

/// What FORMAT.md says a valid index decodes to, or `None`.
fn model_index(body: &[u8], data_end: u64) -> Option<Vec<(Vec<u8>, BlockHandle)>> {
    let block = model_block(body)?;
    if !block.entries_ok || block.entries.is_empty() {
        return None;
    }
    let mut out: Vec<(Vec<u8>, BlockHandle)> = Vec::new();
    let mut next_offset = DOC_HEADER_LEN;
    for e in &block.entries {
        InternalKey::decode(&e.key)?;
        if let Some((prev, _)) = out.last() {
            if compare_encoded(prev, &e.key) != Ordering::Less {
                return None;
            }
        }
        if e.value.len() != 12 {
            return None;
        }
        let handle = BlockHandle { offset: le_u64(&e.value, 0)?, size: le_u32(&e.value, 8)? };
        let size = handle.size as usize;
        let end = handle.offset.checked_add(u64::from(handle.size))?;
        // A sealed block holds at least its compression tag and AEAD tag, and at most
        // the largest body plus those and a zstd length.
        if handle.offset != next_offset
            || !(BLOCK_OVERHEAD..=MAX_BLOCK_BYTES + BLOCK_OVERHEAD + 4).contains(&size)
            || end > data_end
        {
            return None;
        }
        next_offset = end;
        out.push((e.key.clone(), handle));
    }
    (next_offset == data_end).then_some(out)
}

/// `data` as a footer: accepted exactly when FORMAT.md's footer rules hold, and an
/// accepted footer re-encodes to the same bytes.
pub fn sst_footer(data: &[u8]) {
    let result = Footer::decode(data);
    let crc_ok = data.len() == 28 && {
        let mut h = crc32fast::Hasher::new();
        h.update(data.get(..16).unwrap_or_default());
        h.update(&DOC_FOOTER_MAGIC);
        le_u32(data, 16) == Some(h.finalize())
    };
    let magic_ok = data.get(20..) == Some(&DOC_FOOTER_MAGIC[..]);
    let version = data.get(12).copied().unwrap_or(0);
    let reserved_ok = data.get(13..16) == Some(&[0u8; 3][..]);
    let valid = crc_ok && magic_ok && version == 1 && reserved_ok;
    match result {
        Ok(footer) => {
            assert!(valid, "a footer the format refuses was accepted");
            assert_eq!(&footer.encode()[..], data, "an accepted footer does not re-encode to its bytes");
            assert_eq!(footer.version, TABLE_FORMAT_VERSION);
            assert_eq!(
                footer.meta,
                BlockHandle { offset: le_u64(data, 0).unwrap_or(0), size: le_u32(data, 8).unwrap_or(0) }
            );
        }
        Err(e) => {
            assert!(!valid, "a valid footer was refused: {e:?}");
            if crc_ok && magic_ok && version > 1 {
                assert_eq!(e, FooterError::NewerVersion(version), "a newer version must be reported as such");
            }
        }
    }
}

/// FORMAT.md's probe rule: probe i tests bit `(h + i * step) mod 8m`, the sum
/// taken in wrapping 64-bit arithmetic, with `step = rotl(h, 31) | 1`.
fn model_may_contain(bits: &[u8], probes: u8, key: &[u8]) -> bool {
    let nbits = bits.len() as u64 * 8;
    let h = hash64(key);
    let step = h.rotate_left(31) | 1;
    (0..u64::from(probes)).all(|i| {
        let bit = h.wrapping_add(i.wrapping_mul(step)) % nbits;
        bits.get((bit / 8) as usize).is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
    })
}

/// `data` twice over: as a filter body (decoded exactly when the format allows,
/// and answering `may_contain` by the format's probe rule), and as keys separated
/// by zero bytes after a bits-per-key byte, built into a filter that must contain
/// every one of them.
pub fn bloom(data: &[u8]) {
    let valid = data.len() >= 2 && data.last().is_some_and(|p| (1..=30).contains(p));
    match BloomFilter::decode(data.to_vec()) {
        Some(filter) => {
            assert!(valid, "a malformed filter was accepted");
            let (bits, probes) = data.split_at(data.len() - 1);
            let probes = probes.first().copied().unwrap_or(0);
            let mut keys: Vec<&[u8]> = vec![b"", b"a", b"user-key-00000001"];
            keys.extend(data.chunks(7).take(16));
            for key in keys {
                assert_eq!(filter.may_contain(key), model_may_contain(bits, probes, key), "probe rule for {key:?}");
            }
        }
        None => assert!(!valid, "a valid filter body was refused"),
    }

    let Some((&bits_per_key, rest)) = data.split_first() else { return };
    let bits_per_key = u32::from(bits_per_key % 32);
    let keys: Vec<&[u8]> = rest.split(|b| *b == 0).take(4096).collect();
    let mut builder = BloomBuilder::new(bits_per_key);
    for key in &keys {
        builder.add(key);
    }
    let body = builder.finish();
    let distinct = keys.iter().enumerate().filter(|(i, k)| *i == 0 || keys.get(i - 1) != Some(k)).count() as u64;
    let expected_bytes = (distinct * u64::from(bits_per_key)).max(64).div_ceil(8) + 1;
    assert_eq!(body.len() as u64, expected_bytes, "filter size rule");
    let expected_probes = ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32).clamp(1, 30);
    assert_eq!(body.last().map(|p| u32::from(*p)), Some(expected_probes), "probe count rule");
    match BloomFilter::decode(body) {
        Some(filter) => {
            for key in &keys {
                assert!(filter.may_contain(key), "false negative for {key:?}");
            }
        }
        None => panic!("a built filter did not decode"),
    }
}

/// `data` as a properties body: accepted exactly when FORMAT.md's layout holds
/// (with no trailing bytes), and an accepted body re-encodes to the same bytes.
pub fn sst_properties(data: &[u8]) {
    let model = (|| {
        let mut pos = 56usize;
        let mut keys = Vec::new();
        for _ in 0..2 {
            let len = usize::try_from(le_u32(data, pos)?).ok()?;
            if len > DOC_MAX_KEY_FIELD {
                return None;
            }
            let key = InternalKey::decode(data.get(pos + 4..pos + 4 + len)?)?;
            keys.push(key);
            pos += 4 + len;
        }
        if pos == data.len() {
            return Some(keys);
        }
        // The user-properties section: version 2, count u32 >= 1, then per
        // property name_len u8 >= 1 | UTF-8 name | value_len u32 | value, names
        // strictly ascending, at most 64 KiB in all, nothing after.
        if data.len() - pos > DOC_MAX_USER_PROPERTIES || *data.get(pos)? != 2 {
            return None;
        }
        let count = le_u32(data, pos + 1)?;
        pos += 5;
        let mut last: Option<&[u8]> = None;
        for _ in 0..count {
            let name_len = usize::from(*data.get(pos)?);
            let name = data.get(pos + 1..pos + 1 + name_len)?;
            if name_len == 0 || std::str::from_utf8(name).is_err() || last.is_some_and(|l| l >= name) {
                return None;
            }
            last = Some(name);
            pos += 1 + name_len;
            let value_len = usize::try_from(le_u32(data, pos)?).ok()?;
            data.get(pos + 4..pos + 4 + value_len)?;
            pos += 4 + value_len;
        }
        (count > 0 && pos == data.len()).then_some(keys)
    })();
    match (Properties::decode(data), model) {
        (Ok(props), Some(keys)) => {
            assert_eq!(props.encode(), data, "accepted properties do not re-encode to their bytes");
            assert_eq!(props.min_seqno, le_u64(data, 40).unwrap_or(0));
            assert_eq!(Some(&props.smallest), keys.first());
            assert_eq!(Some(&props.largest), keys.get(1));
        }
        (Err(_), None) => {}
        (Ok(_), None) => panic!("properties the format refuses were accepted"),
        (Err(e), Some(_)) => panic!("valid properties were refused: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Whole tables.

/// The damage a whole-table input can do, by operation byte modulo 6: xor one
/// byte, truncate, append, zero a range, copy a range elsewhere, insert (see
/// [`fuzz_support::Damage`] for each one's arguments).
const TABLE_DAMAGE: [Damage; 6] =
    [Damage::Xor, Damage::Truncate, Damage::Append, Damage::ZeroRange, Damage::CopyRange, Damage::Insert];

fn apply_ops(bytes: &mut Vec<u8>, input: &mut FuzzInput<'_>) {
    apply_damage(bytes, input, &TABLE_DAMAGE);
}

/// A table's bytes and what it holds, sorted in internal-key order.
struct BuiltTable {
    bytes: Vec<u8>,
    entries: Vec<(InternalKey, Vec<u8>)>,
}

const TABLE_FILE_ID: u64 = 42;
const TABLE_NAME: &str = "000042.sst";

fn keys() -> &'static Arc<KeyManager> {
    static KEYS: OnceLock<Arc<KeyManager>> = OnceLock::new();
    KEYS.get_or_init(KeyManager::ephemeral)
}

fn scratch_vfs() -> (Arc<dyn Vfs>, PathBuf) {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::default());
    let dir = PathBuf::from("/fuzz");
    must(vfs.create_dir_all(&dir), "create_dir_all");
    (vfs, dir)
}

/// Builds a table of `entries` (sorted, distinct) with `options`.
fn build_table(mut entries: Vec<(InternalKey, Vec<u8>)>, options: TableOptions) -> BuiltTable {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    let (vfs, dir) = scratch_vfs();
    let path = dir.join(TABLE_NAME);
    let file = must(vfs.create(&path), "create");
    let mut builder = must(TableBuilder::new(file, keys(), TABLE_FILE_ID, TABLE_NAME, options), "TableBuilder::new");
    for (k, v) in &entries {
        must(builder.add(k, v), "TableBuilder::add");
    }
    let info = must(builder.finish(), "TableBuilder::finish");
    let bytes = must(vfs.read_all(&path), "read_all");
    assert_eq!(info.file_size, bytes.len() as u64, "TableInfo::file_size");
    BuiltTable { bytes, entries }
}

fn value_for(i: usize, len: usize) -> Vec<u8> {
    // Runs of one byte so zstd has something to compress.
    (0..len).map(|j| b'a' + ((i + j / 16) % 26) as u8).collect()
}

/// The seed tables every `sst_table` input with an even first byte starts from.
fn seed_tables() -> &'static [BuiltTable] {
    static TABLES: OnceLock<Vec<BuiltTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        let versions = |n: usize| -> Vec<(InternalKey, Vec<u8>)> {
            (0..n)
                .map(|i| {
                    let kind = if i % 7 == 3 { ValueKind::Delete } else { ValueKind::Put };
                    let value = if kind == ValueKind::Delete { Vec::new() } else { value_for(i, 5 + i % 40) };
                    (InternalKey::new(format!("key{:04}", i / 3).into_bytes(), 1000 - (i % 3) as u64 * 10, kind), value)
                })
                .collect()
        };
        let worked = vec![
            (InternalKey::new(b"apple".to_vec(), 3, ValueKind::Put), b"red".to_vec()),
            (InternalKey::new(b"apple".to_vec(), 1, ValueKind::Delete), Vec::new()),
            (InternalKey::new(b"apricot".to_vec(), 2, ValueKind::Put), b"sweet".to_vec()),
        ];
        vec![
            build_table(
                versions(150),
                TableOptions {
                    block_size_bytes: 256,
                    restart_interval: 4,
                    compression: Compression::None,
                    bloom_bits_per_key: 10,
                },
            ),
            build_table(
                versions(90),
                TableOptions {
                    block_size_bytes: 512,
                    restart_interval: 16,
                    compression: Compression::Zstd(1),
                    bloom_bits_per_key: 0,
                },
            ),
            build_table(
                worked,
                TableOptions {
                    block_size_bytes: 4096,
                    restart_interval: 2,
                    compression: Compression::None,
                    bloom_bits_per_key: 10,
                },
            ),
        ]
    })
}

/// A table built from entries read from `input`: options byte, entry count, then
/// per entry `key_len u8 (mod 6), key bytes, seqno u16, kind u8, value_len u8`.
fn table_from_input(input: &mut FuzzInput<'_>) -> BuiltTable {
    let o = input.u8();
    let options = TableOptions {
        block_size_bytes: 32 + usize::from(input.u8()) * 8,
        restart_interval: 1 + usize::from((o >> 3) % 8),
        compression: if o & 1 == 1 { Compression::Zstd(1) } else { Compression::None },
        bloom_bits_per_key: match (o >> 1) & 3 {
            0 => 0,
            1 => 1,
            2 => 10,
            _ => 20,
        },
    };
    let count = 1 + usize::from(input.u8() % 80);
    let entries = (0..count)
        .map(|i| {
            let key_len = usize::from(input.u8() % 6);
            let user_key = input.bytes(key_len).to_vec();
            let seqno = SeqNo::from(input.u16());
            let kind = ValueKind::from_u8(input.u8() % 6).unwrap_or(ValueKind::Put);
            let value = value_for(i, usize::from(input.u8()));
            (InternalKey::new(user_key, seqno, kind), value)
        })
        .collect();
    build_table(entries, options)
}

fn check_error(e: &Error, damaged: bool, what: &str) {
    assert!(damaged, "{what} failed on an intact table: {e}");
    if let Error::Corruption { file, .. } | Error::Io { file, .. } = e {
        assert_eq!(file, TABLE_NAME, "{what}: the error names another file: {e}");
    }
}

/// The model's answer to `TableReader::get`.
fn model_get(
    entries: &[(InternalKey, Vec<u8>)],
    user_key: &[u8],
    snapshot: SeqNo,
) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
    entries
        .iter()
        .find(|(k, _)| k.user_key == user_key && k.seqno <= snapshot.min(MAX_SEQNO))
        .map(|(k, v)| (k.seqno, k.kind, v.clone()))
}

/// The first byte picks a seed table (even: one of the fixed seeds; odd: one
/// built from the entries that follow); the rest damages the file's bytes. Open,
/// point lookups, iteration in both directions and `verify` must never panic, and
/// whatever they return must be the table's real data: every block is
/// authenticated, so damage may only ever surface as an error naming the file, and
/// a file whose bytes changed at all must fail `open` or `verify`.
pub fn sst_table(data: &[u8]) {
    let mut input = FuzzInput::new(data);
    let mode = input.u8();
    let built;
    let table = if mode & 1 == 0 {
        let seeds = seed_tables();
        match seeds.get(usize::from(mode / 2) % seeds.len()) {
            Some(t) => t,
            None => return,
        }
    } else {
        built = table_from_input(&mut input);
        &built
    };
    let mut bytes = table.bytes.clone();
    apply_ops(&mut bytes, &mut input);
    let damaged = bytes != table.bytes;

    let (vfs, dir) = scratch_vfs();
    let path = dir.join(TABLE_NAME);
    let file = must(vfs.create(&path), "create");
    must(file.append(&bytes), "append");
    drop(file);
    let reader = match TableReader::open(
        must(vfs.open(&path), "open"),
        keys(),
        TABLE_FILE_ID,
        TABLE_NAME,
        Some(BlockCache::new(16 << 10)),
    ) {
        Ok(r) => r,
        Err(e) => return check_error(&e, damaged, "open"),
    };
    check_table(&reader, &table.entries, damaged);
    // Open reads only the authenticated metadata, which must be the original's.
    assert_eq!(reader.info().entries, table.entries.len() as u64, "TableInfo::entries");
    assert_eq!(Some(&reader.info().smallest), table.entries.first().map(|(k, _)| k), "TableInfo::smallest");
    assert_eq!(Some(&reader.info().largest), table.entries.last().map(|(k, _)| k), "TableInfo::largest");
    match reader.verify() {
        Ok(n) => {
            assert!(!damaged, "verify accepted a table whose bytes changed");
            assert_eq!(n, table.entries.len() as u64, "verify's entry count");
        }
        Err(e) => check_error(&e, damaged, "verify"),
    }
}

fn check_table(reader: &Arc<TableReader>, entries: &[(InternalKey, Vec<u8>)], damaged: bool) {
    let mut probes: Vec<Vec<u8>> = vec![Vec::new(), b"zzzz".to_vec(), b"key0000x".to_vec()];
    let stride = (entries.len() / 24).max(1);
    probes.extend(entries.iter().step_by(stride).map(|(k, _)| k.user_key.clone()));
    for user_key in &probes {
        for snapshot in [MAX_SEQNO, u64::MAX, 0, 2, 995, 1000] {
            match reader.get(user_key, snapshot) {
                Ok(found) => {
                    assert_eq!(found, model_get(entries, user_key, snapshot), "get({user_key:?} @ {snapshot})")
                }
                Err(e) => check_error(&e, damaged, "get"),
            }
        }
    }
    let middle = |i: usize| entries.get(i).map(|(k, _)| k.user_key.clone()).unwrap_or_default();
    let ranges = [
        KeyRange::all(),
        KeyRange {
            start: Bound::Included(middle(entries.len() / 3)),
            end: Bound::Excluded(middle(2 * entries.len() / 3)),
        },
        KeyRange { start: Bound::Excluded(middle(1)), end: Bound::Included(middle(entries.len().saturating_sub(2))) },
    ];
    for range in ranges {
        for direction in [Direction::Forward, Direction::Reverse] {
            let mut expected: Vec<&(InternalKey, Vec<u8>)> =
                entries.iter().filter(|(k, _)| range.contains(&k.user_key)).collect();
            if direction == Direction::Reverse {
                expected.reverse();
            }
            let mut it = reader.iter(range.clone(), direction);
            let mut n = 0;
            loop {
                match it.next_entry() {
                    Ok(Some(entry)) => {
                        let want = expected.get(n);
                        assert!(want.is_some(), "{direction:?} iteration returned more than the table holds");
                        if let Some((k, v)) = want {
                            assert_eq!((&entry.key, &entry.value), (k, v), "{direction:?} iteration entry {n}");
                        }
                        n += 1;
                    }
                    Ok(None) => {
                        assert_eq!(n, expected.len(), "{direction:?} iteration ended early without an error");
                        break;
                    }
                    Err(e) => {
                        check_error(&e, damaged, "iteration");
                        break;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Seeds.

/// The seed inputs of `target`, named: valid and near-valid inputs for each
/// branch of the decoder. Deterministic, so the committed corpus can be rebuilt.
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "sst_block" => block_seeds(),
        "sst_index" => index_seeds(),
        "sst_footer" => footer_seeds(),
        "bloom" => bloom_seeds(),
        "sst_properties" => properties_seeds(),
        "sst_table" => table_seeds(),
        _ => Vec::new(),
    }
}

fn sample_entries(n: usize, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let k = InternalKey::new(format!("key{:03}", i / 2).into_bytes(), 100 - (i % 2) as u64, ValueKind::Put);
            (k.encode(), value_for(i, value_len))
        })
        .collect()
}

fn block_of(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Vec<u8> {
    let mut b = BlockBuilder::new(interval);
    for (k, v) in entries {
        b.add(k, v);
    }
    b.finish().to_vec()
}

fn with_byte(mut v: Vec<u8>, at: usize, byte: u8) -> Vec<u8> {
    if let Some(b) = v.get_mut(at) {
        *b = byte;
    }
    v
}

fn block_seeds() -> Vec<(String, Vec<u8>)> {
    let worked = vec![
        (InternalKey::new(b"apple".to_vec(), 3, ValueKind::Put).encode(), b"red".to_vec()),
        (InternalKey::new(b"apple".to_vec(), 1, ValueKind::Delete).encode(), Vec::new()),
        (InternalKey::new(b"apricot".to_vec(), 2, ValueKind::Put).encode(), b"sweet".to_vec()),
    ];
    let twenty = sample_entries(20, 6);
    let good = block_of(&twenty, 4);
    let n = good.len();
    let mut seeds = vec![
        ("worked_example".to_string(), block_of(&worked, 2)),
        ("one_entry".to_string(), block_of(worked.get(..1).unwrap_or_default(), 16)),
        ("interval_1".to_string(), block_of(&twenty, 1)),
        ("interval_4".to_string(), good.clone()),
        ("interval_16".to_string(), block_of(&twenty, 16)),
        ("long_values".to_string(), block_of(&sample_entries(4, 200), 2)),
        ("empty".to_string(), Vec::new()),
        ("zero_restarts".to_string(), vec![0, 0, 0, 0]),
        ("restart_count_huge".to_string(), vec![0, 0, 0, 0, 0xff, 0xff, 0xff, 0x3f]),
        ("entries_area_empty".to_string(), vec![0, 0, 0, 0, 1, 0, 0, 0]),
        ("truncated_tail".to_string(), good.get(..n - 3).unwrap_or_default().to_vec()),
        ("first_restart_not_zero".to_string(), with_byte(good.clone(), n - 4 * 6, 1)),
        ("restart_mid_entry".to_string(), with_byte(good.clone(), n - 4 * 4, 7)),
        ("shared_too_long".to_string(), with_byte(good.clone(), 0, 5)),
        ("value_past_end".to_string(), with_byte(good.clone(), 2, 0x7f)),
    ];
    // A restart entry that shares a prefix, and keys out of order.
    let mut unsorted = twenty.clone();
    unsorted.swap(3, 4);
    seeds.push(("keys_out_of_order".to_string(), block_of(&unsorted, 4)));
    // Over-long and non-canonical varints.
    let mut overlong = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0];
    overlong.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    seeds.push(("varint_too_long".to_string(), overlong));
    let mut noncanonical = vec![0x80, 0x00, 0x09, 0x00];
    noncanonical.extend_from_slice(b"abcdefghi");
    noncanonical.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    seeds.push(("varint_non_canonical".to_string(), noncanonical));
    let mut short_key = vec![0x00, 0x02, 0x01, b'a', b'b', b'v'];
    short_key.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    seeds.push(("key_shorter_than_trailer".to_string(), short_key));
    seeds
}

fn index_body(entries: &[(InternalKey, BlockHandle)]) -> Vec<u8> {
    let mut b = BlockBuilder::new(16);
    for (k, h) in entries {
        let mut v = Vec::new();
        h.encode_into(&mut v);
        b.add(&k.encode(), &v);
    }
    b.finish().to_vec()
}

fn index_input(data_end: u64, body: &[u8]) -> Vec<u8> {
    let mut v = data_end.to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn index_seeds() -> Vec<(String, Vec<u8>)> {
    let entries = |n: usize, size: u32| -> Vec<(InternalKey, BlockHandle)> {
        (0..n)
            .map(|i| {
                let h = BlockHandle { offset: DOC_HEADER_LEN + i as u64 * u64::from(size), size };
                (InternalKey::new(format!("k{i:03}").into_bytes(), 9, ValueKind::Put), h)
            })
            .collect()
    };
    let end = |n: usize, size: u32| DOC_HEADER_LEN + n as u64 * u64::from(size);
    let mut seeds = vec![
        ("one_block".to_string(), index_input(end(1, 82), &index_body(&entries(1, 82)))),
        ("forty_blocks".to_string(), index_input(end(40, 300), &index_body(&entries(40, 300)))),
        ("smallest_blocks".to_string(), index_input(end(5, 17), &index_body(&entries(5, 17)))),
        ("data_end_short".to_string(), index_input(end(3, 100) - 1, &index_body(&entries(3, 100)))),
        ("data_end_long".to_string(), index_input(end(3, 100) + 1, &index_body(&entries(3, 100)))),
        ("block_below_overhead".to_string(), index_input(end(2, 16), &index_body(&entries(2, 16)))),
        ("empty_body".to_string(), index_input(DOC_HEADER_LEN, &[])),
    ];
    let mut gap = entries(3, 100);
    if let Some((_, h)) = gap.get_mut(2) {
        h.offset += 1;
    }
    seeds.push(("gap_between_blocks".to_string(), index_input(end(3, 100) + 1, &index_body(&gap))));
    let mut unsorted = entries(3, 100);
    unsorted.swap(0, 1);
    seeds.push(("keys_out_of_order".to_string(), index_input(end(3, 100), &index_body(&unsorted))));
    let mut bad_kind = entries(2, 50);
    if let Some((k, _)) = bad_kind.get_mut(0) {
        k.kind = ValueKind::DeleteWithMeta;
    }
    let mut body = index_body(&bad_kind);
    // Kind byte 5 -> 9: a trailer whose kind no version defines.
    if let Some(pos) = body.iter().position(|b| *b == 5) {
        if let Some(b) = body.get_mut(pos) {
            *b = 9;
        }
    }
    seeds.push(("unknown_kind".to_string(), index_input(end(2, 50), &body)));
    let mut short_handle = BlockBuilder::new(16);
    short_handle
        .add(&InternalKey::new(b"k".to_vec(), 1, ValueKind::Put).encode(), &[84, 0, 0, 0, 0, 0, 0, 0, 50, 0, 0]);
    seeds.push(("handle_too_short".to_string(), index_input(134, short_handle.finish())));
    seeds
}

fn footer_seeds() -> Vec<(String, Vec<u8>)> {
    let good = |offset: u64, size: u32| {
        Footer { meta: BlockHandle { offset, size }, version: TABLE_FORMAT_VERSION }.encode().to_vec()
    };
    let mut seeds = vec![
        ("worked_example".to_string(), good(356, 53)),
        ("large_offsets".to_string(), good(u64::MAX - 100, u32::MAX)),
        ("zero_handle".to_string(), good(0, 0)),
        ("short".to_string(), good(356, 53).get(1..).unwrap_or_default().to_vec()),
        ("long".to_string(), [good(356, 53), vec![0]].concat()),
        ("bad_magic".to_string(), with_byte(good(356, 53), 27, 1)),
        ("bad_crc".to_string(), with_byte(good(356, 53), 16, 0)),
    ];
    // Valid crcs around a bad version and bad reserved bytes, as a forger would write them.
    for (name, version, reserved) in [("version_2", 2u8, 0u8), ("version_0", 0, 0), ("reserved_set", 1, 1)] {
        let mut v = good(356, 53);
        if let Some(b) = v.get_mut(12) {
            *b = version;
        }
        if let Some(b) = v.get_mut(14) {
            *b = reserved;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(v.get(..16).unwrap_or_default());
        h.update(&DOC_FOOTER_MAGIC);
        let crc = h.finalize().to_le_bytes();
        for (dst, src) in v.iter_mut().skip(16).zip(crc) {
            *dst = src;
        }
        seeds.push((name.to_string(), v));
    }
    seeds
}

fn bloom_seeds() -> Vec<(String, Vec<u8>)> {
    let built = |bits: u32, n: usize| {
        let mut b = BloomBuilder::new(bits);
        for i in 0..n {
            b.add(format!("user-key-{i:08}").as_bytes());
        }
        b.finish()
    };
    let mut seeds = vec![
        ("built_10_bits_100_keys".to_string(), built(10, 100)),
        ("built_6_bits_20_keys".to_string(), built(6, 20)),
        ("built_1_bit".to_string(), built(1, 50)),
        ("built_empty".to_string(), built(10, 0)),
        ("empty".to_string(), Vec::new()),
        ("probes_only".to_string(), vec![7]),
        ("probes_zero".to_string(), vec![0xff, 0]),
        ("probes_31".to_string(), vec![0xff, 31]),
        ("all_ones".to_string(), [vec![0xff; 64], vec![30]].concat()),
        ("odd_size".to_string(), [vec![0x5a; 13], vec![3]].concat()),
    ];
    // Keys separated by zeros after a bits-per-key byte (the builder half).
    let mut keys = vec![10u8];
    for i in 0..30 {
        keys.extend_from_slice(format!("k{i}").as_bytes());
        keys.push(0);
    }
    keys.push(6);
    seeds.push(("key_list".to_string(), keys));
    seeds.push(("duplicate_keys".to_string(), vec![8, b'a', 0, b'a', 0, b'b', 0, b'b', 0, 3]));
    seeds
}

fn properties_seeds() -> Vec<(String, Vec<u8>)> {
    let props = |smallest: &[u8], largest: &[u8]| Properties {
        file_id: 7,
        entries: 3,
        data_blocks: 1,
        raw_key_bytes: 17,
        raw_value_bytes: 8,
        min_seqno: 1,
        max_seqno: 3,
        smallest: InternalKey::new(smallest.to_vec(), 3, ValueKind::Put),
        largest: InternalKey::new(largest.to_vec(), 2, ValueKind::Delete),
        user: Default::default(),
    };
    let good = props(b"apple", b"apricot").encode();
    let n = good.len();
    vec![
        ("worked_example".to_string(), good.clone()),
        ("empty_keys".to_string(), props(b"", b"").encode()),
        ("long_keys".to_string(), props(&[b'x'; 300], &[b'y'; 301]).encode()),
        ("truncated".to_string(), good.get(..n - 1).unwrap_or_default().to_vec()),
        ("trailing_byte".to_string(), [good.clone(), vec![0]].concat()),
        ("fixed_fields_only".to_string(), good.get(..56).unwrap_or_default().to_vec()),
        ("key_len_below_trailer".to_string(), with_byte(good.clone(), 56, 7)),
        ("key_len_huge".to_string(), with_byte(good.clone(), 59, 0xff)),
        ("unknown_kind".to_string(), with_byte(good.clone(), 60 + 5, 9)),
        ("empty".to_string(), Vec::new()),
        ("user_properties".to_string(), {
            let mut p = props(b"apple", b"apricot");
            p.user.insert("ts.max".into(), 9u64.to_le_bytes().to_vec());
            p.user.insert("ts.min".into(), 1u64.to_le_bytes().to_vec());
            p.encode()
        }),
        ("user_properties_unsorted".to_string(), {
            [good.clone(), vec![2, 2, 0, 0, 0, 1, b'b', 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0]].concat()
        }),
    ]
}

/// An `sst_table` input: a seed (or entries) then raw damage-operation bytes.
fn table_input(mode: u8, ops: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![mode];
    for op in ops {
        v.extend_from_slice(op);
    }
    v
}

fn op_xor(pos: u32, mask: u8) -> Vec<u8> {
    [vec![0], pos.to_le_bytes().to_vec(), vec![mask]].concat()
}

fn op_truncate(len: u32) -> Vec<u8> {
    [vec![1], len.to_le_bytes().to_vec()].concat()
}

fn table_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (i, name) in ["seed_uncompressed", "seed_zstd", "seed_worked_example"].iter().enumerate() {
        seeds.push((name.to_string(), table_input(2 * i as u8, &[])));
    }
    // Damage to the worked-example table (437 bytes; see FORMAT.md for its layout).
    for (name, pos) in [
        ("flip_header", 30u32),
        ("flip_data_block", 100),
        ("flip_filter", 170),
        ("flip_index", 200),
        ("flip_properties", 260),
        ("flip_meta", 380),
        ("flip_footer_handle", 410),
        ("flip_footer_magic", 433),
    ] {
        seeds.push((name.to_string(), table_input(4, &[&op_xor(pos, 0x04)])));
    }
    seeds.push(("cut_footer".to_string(), table_input(4, &[&op_truncate(430)])));
    seeds.push(("cut_to_header".to_string(), table_input(4, &[&op_truncate(84)])));
    seeds.push(("appended_bytes".to_string(), table_input(4, &[&[2, 4, 1, 2, 3, 4]])));
    seeds.push(("zeroed_block".to_string(), table_input(0, &[&[3, 0, 1, 0, 0, 64]])));
    let swap =
        [vec![4], 100u32.to_le_bytes().to_vec(), 400u32.to_le_bytes().to_vec(), 200u16.to_le_bytes().to_vec()].concat();
    seeds.push(("copied_range".to_string(), table_input(0, &[&swap])));
    seeds.push(("flip_zstd_block".to_string(), table_input(2, &[&op_xor(120, 0x80)])));
    // Tables built from input entries: options byte, block size, count, entries.
    let mut built = vec![1u8, 0b0001_0101, 4, 12];
    for i in 0..12u8 {
        built.extend_from_slice(&[3, b'k', b'0' + i / 4, b'a' + i % 4, 10 + i, 0, i % 6, 20 + i]);
    }
    seeds.push(("built_from_entries".to_string(), built.clone()));
    let mut built_damaged = built;
    built_damaged.extend_from_slice(&op_xor(90, 1));
    seeds.push(("built_then_damaged".to_string(), built_damaged));
    seeds.push(("built_single_empty_key".to_string(), vec![3, 0, 0, 0, 0, 0, 1, 0]));
    seeds
}
