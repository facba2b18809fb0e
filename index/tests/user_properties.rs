//! User properties of a table: a collector sees every entry added, its result is
//! sealed in the properties block and read back by `TableReader`; a table
//! without a collector keeps the first layout byte for byte; the size limit and
//! a collector's error fail the write with a clear message.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;

use crypto::vfs::{StdVfs, Vfs};
use crypto::KeyManager;
use index::{
    CollectedEntry, Compression, Error, HookError, InternalKey, TableBuilder, TableOptions, TablePropertiesCollector,
    TableReader, UserProperties, ValueKind, MAX_USER_PROPERTIES_BYTES,
};

/// Records the smallest and largest seqno of Put entries, the count of tombstones
/// and the keys in order, as a store would record a timestamp range.
#[derive(Default)]
struct SeqnoRange {
    min: Option<u64>,
    max: Option<u64>,
    tombstones: u64,
    keys: Vec<u8>,
    fail: bool,
    oversize: bool,
}

impl TablePropertiesCollector for SeqnoRange {
    fn add(&mut self, entry: &CollectedEntry<'_>) {
        if entry.kind.is_tombstone() {
            self.tombstones += 1;
        } else {
            self.min = Some(self.min.map_or(entry.seqno, |m| m.min(entry.seqno)));
            self.max = Some(self.max.map_or(entry.seqno, |m| m.max(entry.seqno)));
        }
        self.keys.extend_from_slice(entry.key);
        self.keys.push(b',');
    }

    fn finish(&mut self) -> Result<UserProperties, HookError> {
        if self.fail {
            return Err(HookError::new("collector gave up"));
        }
        let mut p = UserProperties::new();
        if let (Some(min), Some(max)) = (self.min, self.max) {
            p.insert("seq.min".into(), min.to_le_bytes().to_vec());
            p.insert("seq.max".into(), max.to_le_bytes().to_vec());
        }
        p.insert("tombstones".into(), self.tombstones.to_le_bytes().to_vec());
        p.insert("keys".into(), std::mem::take(&mut self.keys));
        if self.oversize {
            p.insert("padding".into(), vec![0; MAX_USER_PROPERTIES_BYTES]);
        }
        Ok(p)
    }
}

fn entries() -> Vec<(InternalKey, Vec<u8>)> {
    vec![
        (InternalKey::new(b"apple".to_vec(), 3, ValueKind::Put), b"red".to_vec()),
        (InternalKey::new(b"apple".to_vec(), 1, ValueKind::Delete), Vec::new()),
        (InternalKey::new(b"apricot".to_vec(), 2, ValueKind::Put), b"sweet".to_vec()),
        (InternalKey::new(b"banana".to_vec(), 7, ValueKind::Put), b"yellow".to_vec()),
    ]
}

fn options() -> TableOptions {
    TableOptions { block_size_bytes: 4096, restart_interval: 2, compression: Compression::None, bloom_bits_per_key: 10 }
}

fn build(dir: &Path, keys: &KeyManager, id: u64, collector: Option<SeqnoRange>) -> index::Result<index::TableInfo> {
    let vfs = StdVfs::new();
    let name = format!("{id:06}.sst");
    let mut b = TableBuilder::new(vfs.create(&dir.join(&name)).unwrap(), keys, id, &name, options()).unwrap();
    if let Some(c) = collector {
        b.set_properties_collector(Box::new(c));
    }
    for (k, v) in entries() {
        b.add(&k, &v).unwrap();
    }
    b.finish()
}

fn open(dir: &Path, keys: &KeyManager, id: u64) -> std::sync::Arc<TableReader> {
    let vfs = StdVfs::new();
    let name = format!("{id:06}.sst");
    TableReader::open(vfs.open(&dir.join(&name)).unwrap(), keys, id, &name, None).unwrap()
}

#[test]
fn collected_properties_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyManager::ephemeral();
    build(dir.path(), &keys, 1, Some(SeqnoRange::default())).unwrap();
    let t = open(dir.path(), &keys, 1);
    let p = t.user_properties();
    assert_eq!(p.get("seq.min"), Some(&2u64.to_le_bytes().to_vec()));
    assert_eq!(p.get("seq.max"), Some(&7u64.to_le_bytes().to_vec()));
    assert_eq!(p.get("tombstones"), Some(&1u64.to_le_bytes().to_vec()));
    assert_eq!(p.get("keys").map(Vec::as_slice), Some(&b"apple,apple,apricot,banana,"[..]));
    assert_eq!(t.verify().unwrap(), 4);
    assert_eq!(t.get(b"banana", 9).unwrap(), Some((7, ValueKind::Put, b"yellow".to_vec())));
}

/// Without a collector the table is the first layout byte for byte (the same
/// 437-byte shape as the worked example of `index/FORMAT.md` grows by nothing),
/// and it reads as having no user properties.
#[test]
fn a_table_without_a_collector_keeps_the_first_layout() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyManager::ephemeral();
    let plain = build(dir.path(), &keys, 1, None).unwrap();
    let with = build(dir.path(), &keys, 2, Some(SeqnoRange::default())).unwrap();
    assert!(open(dir.path(), &keys, 1).user_properties().is_empty());
    assert!(with.file_size > plain.file_size);
    // The footer of the plain table still says table format version 1.
    let bytes = StdVfs::new().read_all(&dir.path().join("000001.sst")).unwrap();
    assert_eq!(bytes[bytes.len() - 28 + 12], 1);
}

#[test]
fn properties_over_the_limit_fail_the_table_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyManager::ephemeral();
    let err = build(dir.path(), &keys, 3, Some(SeqnoRange { oversize: true, ..Default::default() })).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("000003.sst") && m.contains("more than the limit")), "{err}");
}

#[test]
fn a_collector_error_fails_the_table_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyManager::ephemeral();
    let err = build(dir.path(), &keys, 4, Some(SeqnoRange { fail: true, ..Default::default() })).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument(m) if m.contains("collector gave up")), "{err}");
}

/// The property values are sealed: none of their bytes appear in the file.
#[test]
fn property_values_are_never_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyManager::ephemeral();
    build(dir.path(), &keys, 5, Some(SeqnoRange::default())).unwrap();
    let bytes = StdVfs::new().read_all(&dir.path().join("000005.sst")).unwrap();
    for marker in [&b"apricot,banana"[..], b"seq.min", b"tombstones"] {
        assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{:?} in plaintext", String::from_utf8_lossy(marker));
    }
}
