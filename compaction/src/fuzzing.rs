//! Entry points that expose the manifest's decoders to fuzzers and to the
//! corpus-replay tests (`tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! [`manifest_edit`] decodes arbitrary bytes as version edits (the plaintext of
//! manifest records, which the log layer seals) and applies each one it accepts to
//! a version, and decodes the same kind of bytes as a `CURRENT` file. It panics
//! only when a rule of `compaction/FORMAT.md` or of the version's invariants is
//! broken, never because the input is malformed. [`seed_corpus`] makes the
//! committed seed inputs.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use crypto::KeyManager;

use index::{InternalKey, ValueKind};

use crate::edit::{FileMeta, VersionEdit, WalSegment};
use crate::keyspace::KeyspaceMeta;
use crate::format::{
    CURRENT_LEN, CURRENT_MAGIC, CURRENT_PURPOSE, CURRENT_TAG_OFFSET, LEGACY_CURRENT_CRC_OFFSET, LEGACY_CURRENT_LEN,
    LEGACY_CURRENT_MAGIC, TAG_ADDED_FILE, TAG_DELETED_FILE, TAG_END,
};
use crate::manifest::{decode_current, encode_current, encode_legacy_current, CurrentForm};
use crate::version::Version;
use crate::{Error, CURRENT_FILE};

/// The fuzz targets of this crate, by corpus directory name.
pub const TARGETS: [&str; 1] = ["manifest_edit"];

/// Runs `target`'s entry point on `data`; `false` if the target is unknown.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "manifest_edit" => manifest_edit(data),
        _ => return false,
    }
    true
}

/// Levels of the version the edits are applied to (the engine's default).
const NUM_LEVELS: usize = 7;
/// Most records one input decodes, so each execution stays short.
const MAX_RECORDS: usize = 32;

/// `sel u8` then the rest. Bit 0 of `sel` set: the rest is a `CURRENT` file, which
/// must decode exactly when it is 48 bytes with the magic and a tag that matches
/// under this process's keys, or 20 bytes in format 1 with its magic and a
/// matching crc, to the number whose encoding is those bytes; every error is
/// corruption naming `CURRENT`. Bit 0 clear: the rest is a sequence of records `len u16 LE, len
/// bytes`, each decoded as a version edit. An accepted edit re-encodes to as many
/// bytes as it came from and decodes back to itself; it is applied to the version
/// built so far, and an applied version keeps the invariants (levels sorted, no
/// overlap below level 0, no table twice, exactly the edit's tables added and
/// removed), while a refused one is an `InvalidEdit`.
pub fn manifest_edit(data: &[u8]) {
    let Some((sel, rest)) = data.split_first() else { return };
    if sel & 1 == 1 {
        check_current(rest);
        return;
    }
    let mut version = Version::empty(NUM_LEVELS);
    let mut rest = rest;
    for _ in 0..MAX_RECORDS {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else { break };
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (record, tail) = tail.split_at(len);
        rest = tail;
        let edit = match VersionEdit::decode(record) {
            Ok(edit) => edit,
            Err(e) => {
                assert!(e.pos <= record.len(), "decode error at {} past the record's {} bytes", e.pos, record.len());
                continue;
            }
        };
        let encoded = edit.encode();
        assert_eq!(encoded.len(), record.len(), "an accepted edit re-encodes to another length");
        match VersionEdit::decode(&encoded) {
            Ok(again) => assert_eq!(again, edit, "a re-encoded edit decodes to another edit"),
            Err(e) => panic!("a re-encoded edit does not decode: {} at {}", e.reason, e.pos),
        }
        match version.apply(&edit) {
            Ok(next) => {
                check_applied(&version, &edit, &next);
                version = next;
            }
            Err(Error::InvalidEdit(_)) => {}
            Err(e) => panic!("apply failed with something other than InvalidEdit: {e}"),
        }
    }
}

/// The keys `CURRENT` inputs are checked under: made once per process.
fn current_keys() -> &'static Arc<KeyManager> {
    static KEYS: OnceLock<Arc<KeyManager>> = OnceLock::new();
    KEYS.get_or_init(KeyManager::ephemeral)
}

fn check_current(bytes: &[u8]) {
    let keys = current_keys();
    let legacy = bytes.len() == LEGACY_CURRENT_LEN
        && bytes.get(..LEGACY_CURRENT_MAGIC.len()) == Some(&LEGACY_CURRENT_MAGIC[..])
        && bytes.get(..LEGACY_CURRENT_CRC_OFFSET).map(crc32fast::hash).map(u32::to_le_bytes).as_ref().map(|c| &c[..])
            == bytes.get(LEGACY_CURRENT_CRC_OFFSET..);
    let authenticated = bytes.len() == CURRENT_LEN
        && bytes.get(..CURRENT_MAGIC.len()) == Some(&CURRENT_MAGIC[..])
        && keys.check_integrity_tag(
            CURRENT_PURPOSE,
            bytes.get(..CURRENT_TAG_OFFSET).unwrap_or_default(),
            bytes.get(CURRENT_TAG_OFFSET..).unwrap_or_default(),
        );
    let well_formed = legacy || authenticated;
    match decode_current(bytes, keys) {
        Ok((number, form)) => {
            assert!(well_formed, "CURRENT accepted bytes that break its layout");
            let again = match form {
                CurrentForm::Legacy => encode_legacy_current(number).to_vec(),
                CurrentForm::Authenticated => encode_current(keys, number).to_vec(),
            };
            assert_eq!(again, bytes, "CURRENT decoded to a number that encodes differently");
            assert_eq!(form == CurrentForm::Legacy, legacy, "CURRENT decoded in the wrong form");
        }
        Err(Error::Corruption { file, .. }) => {
            assert!(!well_formed, "a well-formed CURRENT was refused");
            assert_eq!(file, CURRENT_FILE, "CURRENT's error names another file");
        }
        Err(e) => panic!("CURRENT failed with a non-corruption error: {e}"),
    }
}

/// The invariants of `next = before.apply(edit)`.
fn check_applied(before: &Version, edit: &VersionEdit, next: &Version) {
    assert_eq!(next.num_levels(), before.num_levels(), "apply changed the number of levels");
    let mut seen = HashSet::new();
    let mut total = 0usize;
    for level in 0..next.num_levels() {
        let files = next.level_files(level);
        total += files.len();
        for f in files {
            assert!(seen.insert(f.number), "table {} appears twice", f.number);
        }
        if level > 0 {
            for pair in files.windows(2) {
                if let [a, b] = pair {
                    assert!(a.largest.user_key < b.smallest.user_key, "tables overlap or are unsorted in level {level}");
                }
            }
        }
    }
    let before_total: usize = (0..before.num_levels()).map(|l| before.level_files(l).len()).sum();
    assert_eq!(total + edit.deleted.len(), before_total + edit.added.len(), "apply lost or invented tables");
    for (level, meta) in &edit.added {
        let found = next.level_files(*level).iter().any(|f| **f == *meta);
        assert!(found, "added table {} is not in level {level}", meta.number);
    }
    for (level, number) in &edit.deleted {
        let added_back = edit.added.iter().any(|(l, f)| l == level && f.number == *number);
        if !added_back {
            assert!(!next.level_files(*level).iter().any(|f| f.number == *number), "deleted table {number} is still there");
        }
    }
}

/// The seed inputs of `target`, named: valid and near-valid inputs for each branch
/// of the decoders. Deterministic, so the committed corpus can be rebuilt.
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "manifest_edit" => manifest_edit_seeds(),
        _ => Vec::new(),
    }
}

fn meta(number: u64, lo: &str, hi: &str) -> FileMeta {
    FileMeta {
        number,
        size: 1000 + number,
        smallest: InternalKey::new(lo.as_bytes(), 10, ValueKind::Put),
        largest: InternalKey::new(hi.as_bytes(), 5, ValueKind::Delete),
        entries: 3,
        min_seqno: 5,
        max_seqno: 10,
        epoch: 1,
        keyspace: 0,
    }
}

fn records(edits: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8];
    for e in edits {
        out.extend_from_slice(&u16::try_from(e.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

fn manifest_edit_seeds() -> Vec<(String, Vec<u8>)> {
    let full = VersionEdit {
        log_number: Some(3),
        next_file_number: Some(9),
        last_seqno: Some(77),
        added: vec![(0, meta(4, "a", "k")), (1, meta(5, "a", "c")), (1, meta(6, "d", "f"))],
        deleted: Vec::new(),
        wal_segments: Vec::new(),
        predecessor: None,
        ..VersionEdit::default()
    }
    .encode();
    let chained = VersionEdit {
        log_number: Some(3),
        next_file_number: Some(9),
        last_seqno: Some(77),
        predecessor: Some((2, 70)),
        wal_segments: vec![
            (3, WalSegment { first_seqno: 71, predecessor_synced: true }),
            (8, WalSegment { first_seqno: 0, predecessor_synced: false }),
        ],
        ..VersionEdit::default()
    }
    .encode();
    let compaction = VersionEdit {
        added: vec![(2, meta(7, "a", "f"))],
        deleted: vec![(1, 5), (1, 6)],
        ..VersionEdit::default()
    }
    .encode();
    let overlapping = VersionEdit { added: vec![(1, meta(8, "b", "e"))], ..VersionEdit::default() }.encode();
    let bad_level = VersionEdit { added: vec![(20, meta(9, "a", "b"))], ..VersionEdit::default() }.encode();
    let missing_delete = VersionEdit { deleted: vec![(3, 99)], ..VersionEdit::default() }.encode();
    let mut seeds = vec![
        ("chained".to_string(), records(&[chained])),
        ("empty".to_string(), Vec::new()),
        ("one_full_edit".to_string(), records(std::slice::from_ref(&full))),
        ("flush_then_compaction".to_string(), records(&[full.clone(), compaction.clone()])),
        ("overlap_in_level_1".to_string(), records(&[full.clone(), overlapping])),
        ("level_out_of_range_for_version".to_string(), records(&[bad_level])),
        ("delete_of_missing_table".to_string(), records(&[missing_delete])),
        ("same_edit_twice".to_string(), records(&[full.clone(), full.clone()])),
        ("only_end_tag".to_string(), records(&[vec![1, TAG_END]])),
        ("bad_version".to_string(), records(&[vec![2, TAG_END]])),
        ("unknown_tag".to_string(), records(&[vec![1, 0x42, TAG_END]])),
        ("bytes_after_end".to_string(), records(&[vec![1, TAG_END, 0]])),
        ("log_number_twice".to_string(), records(&[vec![1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, TAG_END]])),
        ("delete_cut_short".to_string(), records(&[vec![1, TAG_DELETED_FILE, 1, 5, 0]])),
        ("add_cut_short".to_string(), records(&[full.get(..40).unwrap_or_default().to_vec()])),
    ];
    // An added file whose key length field is absurd, and one whose smallest key
    // sorts after its largest.
    let mut huge_key = vec![1, TAG_ADDED_FILE, 1];
    huge_key.extend_from_slice(&[0; 44]);
    huge_key.extend_from_slice(&u32::MAX.to_le_bytes());
    huge_key.push(TAG_END);
    seeds.push(("key_length_absurd".to_string(), records(&[huge_key])));
    let reversed = VersionEdit { added: vec![(1, meta(10, "z", "a"))], ..VersionEdit::default() }.encode();
    seeds.push(("smallest_after_largest".to_string(), records(&[reversed])));
    let keyspace = |id: u32, name: &str| KeyspaceMeta { id, name: name.to_string(), options: Vec::new() };
    let created = VersionEdit {
        created_keyspaces: vec![keyspace(1, "a"), keyspace(3, "_b")],
        next_keyspace_id: Some(4),
        ..VersionEdit::default()
    }
    .encode();
    let dropped = VersionEdit { dropped_keyspaces: vec![1], ..VersionEdit::default() }.encode();
    seeds.push(("keyspaces_created_then_dropped".to_string(), records(&[created.clone(), dropped.clone()])));
    seeds.push(("keyspace_dropped_twice".to_string(), records(&[created, dropped.clone(), dropped])));
    let feed_segment = |first, end| crate::edit::FeedSegment { first_seqno: first, end_seqno: end, bytes: 4096, retired_at_ms: 1 };
    let kept = VersionEdit {
        log_number: Some(9),
        feed_segments: vec![(3, feed_segment(1, 40)), (8, feed_segment(40, 77))],
        ..VersionEdit::default()
    }
    .encode();
    let released = VersionEdit { feed_released: vec![3], ..VersionEdit::default() }.encode();
    seeds.push(("feed_segments_kept_then_released".to_string(), records(&[kept.clone(), released])));
    seeds.push(("feed_segment_cut_short".to_string(), records(&[kept.get(..30).unwrap_or_default().to_vec()])));
    let mut current = vec![1u8];
    current.extend_from_slice(&encode_legacy_current(12));
    seeds.push(("current_valid".to_string(), current.clone()));
    let mut bad_crc = current.clone();
    if let Some(b) = bad_crc.get_mut(18) {
        *b ^= 1;
    }
    seeds.push(("current_bad_crc".to_string(), bad_crc));
    let mut long = current.clone();
    long.push(0);
    seeds.push(("current_too_long".to_string(), long));
    seeds.push(("current_short".to_string(), current.get(..12).unwrap_or_default().to_vec()));
    seeds
}
