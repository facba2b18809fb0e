//! Entry points that expose the log decoder to fuzzers and to the corpus-replay
//! tests (`tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! Each entry point takes arbitrary bytes, never panics on them, and panics only
//! when the reader breaks a rule of `wal/FORMAT.md`: a record that was never sealed
//! comes back, a complete log loses a record, damage is classified as a torn tail
//! (or the reverse), or an error names the wrong file or offset. A log's header
//! carries a random wrapped key, so the inputs cannot hold real logs; instead
//! [`wal_record`] appends its bytes as frames after a header made once per process,
//! and [`wal_log`] reads its bytes as a description of records to seal plus damage
//! to do to the sealed log. [`seed_corpus`] makes the committed seed inputs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use fuzz_support::{apply_damage, must, Damage, FuzzInput};
use crypto::vfs::{SimVfs, Vfs};
use crypto::{FileKind, KeyManager, FILE_HEADER_LEN, TAG_LEN};

use crate::format::{len_check, FrameHeader, FRAME_HEADER_LEN, MAX_SEALED_LEN};
use crate::{Error, LogReader, LogWriter, Preallocation};

/// The fuzz targets of this crate, by corpus directory name.
pub const TARGETS: [&str; 2] = ["wal_record", "wal_log"];

/// Runs `target`'s entry point on `data`; `false` if the target is unknown.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "wal_record" => wal_record(data),
        "wal_log" => wal_log(data),
        _ => return false,
    }
    true
}

const LOG_NAME: &str = "000001.wal";
const FIRST_FRAME: u64 = FILE_HEADER_LEN as u64;
/// The `len_check` mask as `FORMAT.md` gives it, kept apart from `format.rs` so the
/// model below checks the code against the document rather than against itself.
const DOC_LEN_CHECK_MASK: u32 = 0xA282_EAD8;

/// A key manager and one valid WAL header under it, made once per process: no
/// record is ever sealed with that header's file key.
/// The number every log of these harnesses carries in its header.
const LOG_FILE_ID: u64 = 1;

struct Fixture {
    keys: Arc<KeyManager>,
    header: [u8; FILE_HEADER_LEN],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = KeyManager::ephemeral();
        let (header, _cipher) = keys.new_file(FileKind::Wal, LOG_FILE_ID, LOG_NAME);
        Fixture { keys, header }
    })
}

fn scratch_vfs() -> (Arc<dyn Vfs>, PathBuf) {
    let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::default());
    let dir = PathBuf::from("/fuzz");
    must(vfs.create_dir_all(&dir), "create_dir_all");
    (vfs, dir)
}

fn write_file(vfs: &Arc<dyn Vfs>, path: &Path, bytes: &[u8]) {
    let file = must(vfs.create(path), "create");
    must(file.append(bytes), "append");
}

/// How a read of a whole log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Every byte was consumed by whole records, or only zeros follow the last one.
    Clean,
    /// A torn tail at this offset.
    Torn(u64),
    /// Corruption reported at this offset.
    Corrupt(u64),
    /// `LogReader::open` refused the file.
    OpenFailed,
}

/// Reads every record of `path` one by one and checks the reader's own contracts
/// along the way (sticky errors, `valid_len`, file names in errors).
fn read_log(vfs: &Arc<dyn Vfs>, path: &Path, keys: &KeyManager, kind: FileKind) -> (Vec<Vec<u8>>, End) {
    let name = crate::writer::file_name(path);
    let file_len = must(vfs.file_size(path), "file_size");
    let mut reader = match LogReader::open(vfs, path, keys, kind, LOG_FILE_ID) {
        Ok(r) => r,
        Err(e) => {
            if let Error::Corruption { file, .. } | Error::Io { file, .. } = &e {
                assert_eq!(file, &name, "open error names another file: {e}");
            }
            return (Vec::new(), End::OpenFailed);
        }
    };
    let mut records = Vec::new();
    let end = loop {
        let before = reader.valid_len();
        match reader.next_record() {
            Ok(Some(record)) => {
                let after = reader.valid_len();
                let framed = (FRAME_HEADER_LEN + TAG_LEN + record.len()) as u64;
                assert_eq!(after, before + framed, "valid_len did not advance by the frame's size");
                assert!(after <= file_len, "a record ends past the end of the file");
                records.push(record);
            }
            Ok(None) => {
                assert_eq!(reader.valid_len(), before, "valid_len moved at the end of the log");
                let end = match reader.torn_tail_at() {
                    Some(at) => {
                        assert_eq!(at, before, "the torn tail is not where the last record ended");
                        End::Torn(at)
                    }
                    None => {
                        let bytes = must(vfs.read_all(path), "read_all");
                        let rest = bytes.get(usize::try_from(before).unwrap_or(usize::MAX)..).unwrap_or_default();
                        assert!(rest.iter().all(|b| *b == 0), "a clean end with non-zero bytes after it");
                        End::Clean
                    }
                };
                assert!(matches!(reader.next_record(), Ok(None)), "the log went on after its end");
                break end;
            }
            Err(Error::Corruption { file, offset, reason }) => {
                assert_eq!(file, name, "corruption names another file");
                assert_eq!(offset, before, "corruption reported away from the damaged frame: {reason}");
                assert_eq!(reader.valid_len(), before, "valid_len moved past a damaged frame");
                match reader.next_record() {
                    Err(Error::Corruption { offset: again, .. }) => {
                        assert_eq!(again, offset, "a second call reported another offset");
                    }
                    other => panic!("a second call after corruption returned {other:?}"),
                }
                break End::Corrupt(offset);
            }
            Err(e) => panic!("reading an in-memory log failed with a non-corruption error: {e}"),
        }
    };
    // The convenience reader must agree with the record-by-record walk.
    match (LogReader::read_all(vfs, path, keys, kind, LOG_FILE_ID), &end) {
        (Ok(all), End::Clean | End::Torn(_)) => {
            assert_eq!(all.records, records, "read_all returned other records");
            let torn = if let End::Torn(at) = end { Some(at) } else { None };
            assert_eq!(all.torn_tail_at, torn, "read_all saw another end");
        }
        (Err(Error::Corruption { offset, .. }), End::Corrupt(at)) => assert_eq!(offset, *at),
        (other, _) => panic!("read_all disagrees with next_record ({end:?}): {other:?}"),
    }
    (records, end)
}

/// Whether `bytes` holds `run` consecutive zeros: the doc's "16 zero bytes in a row".
fn doc_zero_run(bytes: &[u8], run: usize) -> bool {
    bytes.windows(run).any(|w| w.iter().all(|b| *b == 0))
}

/// What `FORMAT.md`'s recovery table says of the first frame of `frames`, when no
/// frame can authenticate: nothing but a clean end, a torn tail or corruption.
fn expected_first_frame(frames: &[u8]) -> End {
    if frames.iter().all(|b| *b == 0) {
        return End::Clean;
    }
    let Some(header) = frames.get(..FRAME_HEADER_LEN) else { return End::Torn(FIRST_FRAME) };
    if header.iter().all(|b| *b == 0) {
        return End::Torn(FIRST_FRAME);
    }
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(header.get(i..i + 4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(w)
    };
    let (len, check, crc) = (word(0), word(4), word(8));
    let after_header = frames.get(FRAME_HEADER_LEN..).unwrap_or_default();
    let header_ok = check == crc32fast::hash(&len.to_le_bytes()) ^ DOC_LEN_CHECK_MASK
        && (TAG_LEN as u32..=512 * 1024 * 1024 + TAG_LEN as u32).contains(&len);
    if !header_ok {
        let next: Vec<u8> = after_header.iter().take(TAG_LEN).copied().collect();
        return if next.iter().all(|b| *b == 0) { End::Torn(FIRST_FRAME) } else { End::Corrupt(FIRST_FRAME) };
    }
    let Some(payload) = after_header.get(..len as usize) else { return End::Torn(FIRST_FRAME) };
    if crc32fast::hash(payload) != crc && doc_zero_run(payload, TAG_LEN) {
        return End::Torn(FIRST_FRAME);
    }
    // A whole frame whose crc may or may not match: it cannot authenticate.
    End::Corrupt(FIRST_FRAME)
}

/// `data` as the frames of a log whose header is valid but whose file key never
/// sealed anything: no record may come back, and the first frame must be
/// classified as `FORMAT.md`'s recovery table says.
pub fn wal_record(data: &[u8]) {
    let fx = fixture();
    let (vfs, dir) = scratch_vfs();
    let path = dir.join(LOG_NAME);
    let mut bytes = Vec::with_capacity(FILE_HEADER_LEN + data.len());
    bytes.extend_from_slice(&fx.header);
    bytes.extend_from_slice(data);
    write_file(&vfs, &path, &bytes);
    let (records, end) = read_log(&vfs, &path, &fx.keys, FileKind::Wal);
    assert!(records.is_empty(), "{} records came back that were never sealed", records.len());
    assert_eq!(end, expected_first_frame(data), "first frame misclassified");
    // The same bytes are not a manifest: the header names the file's kind.
    let (_, as_manifest) = read_log(&vfs, &path, &fx.keys, FileKind::Manifest);
    assert_eq!(as_manifest, End::OpenFailed, "a WAL opened as a manifest");
}

/// Most records one `wal_log` input describes, and the size cap of each.
const MAX_LOG_RECORDS: usize = 12;
/// The damage a log input can do, by operation byte modulo 7: xor one byte,
/// truncate, append, append zeros, zero a range, copy a range elsewhere, insert
/// (see [`fuzz_support::Damage`] for each one's arguments).
const LOG_DAMAGE: [Damage; 7] = [
    Damage::Xor,
    Damage::Truncate,
    Damage::Append,
    Damage::AppendZeros,
    Damage::ZeroRange,
    Damage::CopyRange,
    Damage::Insert,
];

/// Applies the damage operations read from `input` to `bytes`.
pub(crate) fn apply_ops(bytes: &mut Vec<u8>, input: &mut FuzzInput<'_>) {
    apply_damage(bytes, input, &LOG_DAMAGE);
}

/// The record `i` of a `wal_log` input: `len` bytes that differ between records.
fn record_bytes(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as u8).wrapping_mul(31).wrapping_add(j as u8)).collect()
}

/// `data` describes a log and damage done to it: `kind u8` (bit 0: WAL or
/// manifest; bit 1: written preallocated, so the file goes on in zeros after its
/// frames), `count u8` records of `len u16` bytes each (capped at 600), then the
/// damage operations of `apply_ops`. The log is written with [`LogWriter`],
/// damaged, and read back. The reader must return exactly the records whose
/// frames lie wholly before the first changed byte, then stop at the next frame's
/// offset; a log that was only cut short, or cut and then zero-filled to any
/// length, must never read as corruption unless the cut left 1 to 15 bytes of a
/// frame missing (`FORMAT.md`: that cannot be told from a damaged byte); a log
/// with one changed byte in its frames must never read as a torn tail or a clean
/// end; a whole log followed by zeros must read as a clean end.
pub fn wal_log(data: &[u8]) {
    let fx = fixture();
    let mut input = FuzzInput::new(data);
    let flags = input.u8();
    let kind = if flags & 1 == 0 { FileKind::Wal } else { FileKind::Manifest };
    let preallocated = flags & 2 != 0;
    let count = usize::from(input.u8()) % (MAX_LOG_RECORDS + 1);
    let records: Vec<Vec<u8>> = (0..count).map(|i| record_bytes(i, usize::from(input.u16() % 601))).collect();

    let (vfs, dir) = scratch_vfs();
    let original_path = dir.join("000007.wal");
    let writer = if preallocated {
        let sizes = Preallocation { initial_bytes: 512, max_step_bytes: 4096 };
        must(LogWriter::create_preallocated(&vfs, &original_path, &fx.keys, LOG_FILE_ID, kind, sizes), "create_preallocated")
    } else {
        must(LogWriter::create(&vfs, &original_path, &fx.keys, LOG_FILE_ID, kind), "LogWriter::create")
    };
    let mut frame_ends = Vec::with_capacity(records.len());
    for r in &records {
        frame_ends.push(must(writer.append(r), "append"));
    }
    must(writer.sync(), "sync");
    drop(writer);
    let original = must(vfs.read_all(&original_path), "read_all");
    let frames_end = frame_ends.last().copied().unwrap_or(FIRST_FRAME);
    if preallocated {
        assert!(original.len() as u64 >= frames_end, "a preallocated log shorter than its frames");
        let tail = original.get(usize::try_from(frames_end).unwrap_or(usize::MAX)..).unwrap_or_default();
        assert!(tail.iter().all(|b| *b == 0), "preallocated space is not zero");
    } else {
        assert_eq!(original.len() as u64, frames_end, "log length");
    }

    let mut damaged = original.clone();
    apply_ops(&mut damaged, &mut input);
    let path = dir.join("000008.wal");
    write_file(&vfs, &path, &damaged);
    let (got, end) = read_log(&vfs, &path, &fx.keys, kind);

    // A preallocated log's zeros are no frame: cutting or extending them changes nothing.
    let first_change =
        original.iter().zip(&damaged).position(|(a, b)| a != b).unwrap_or(original.len().min(damaged.len()));
    let only_zeros_changed = first_change as u64 >= frames_end
        && damaged.get(first_change..).unwrap_or_default().iter().all(|b| *b == 0);
    if damaged == original || only_zeros_changed {
        assert_eq!(got, records, "an undamaged log lost records");
        assert_eq!(end, End::Clean, "an undamaged log did not end cleanly");
        return;
    }
    if (first_change as u64) < FIRST_FRAME {
        assert_eq!(end, End::OpenFailed, "a log with a damaged or missing header was opened");
        return;
    }
    let intact = frame_ends.iter().take_while(|e| **e <= first_change as u64).count();
    assert_eq!(got.len(), intact, "records returned: {}, intact frames before the damage: {intact}", got.len());
    assert!(got.iter().zip(&records).all(|(a, b)| a == b), "a record came back changed");
    let stop = if intact == 0 { FIRST_FRAME } else { frame_ends.get(intact - 1).copied().unwrap_or(FIRST_FRAME) };
    match end {
        End::Clean => {
            let rest = damaged.get(usize::try_from(stop).unwrap_or(usize::MAX)..).unwrap_or_default();
            assert!(rest.iter().all(|b| *b == 0), "a damaged log ended cleanly before non-zero bytes");
        }
        End::Torn(at) | End::Corrupt(at) => assert_eq!(at, stop, "the reader stopped away from the damaged frame"),
        End::OpenFailed => panic!("a log whose header is intact was refused"),
    }
    let cut_short = damaged.len() < original.len() && original.starts_with(&damaged);
    if cut_short {
        assert!(!matches!(end, End::Corrupt(_)), "a log cut short at {} read as corruption", damaged.len());
    }
    // Cut short, then zero-filled (a crash into preallocated space): a torn tail
    // too, except where the cut left only 1 to 15 bytes of a frame unwritten.
    let cut = first_change as u64;
    let zeros_after_cut = damaged.get(first_change..).unwrap_or_default().iter().all(|b| *b == 0);
    let cut_in_last_15 = frame_ends.iter().any(|e| cut < *e && *e - cut < TAG_LEN as u64);
    if zeros_after_cut && (damaged.len() < original.len() || cut < frames_end) && !cut_in_last_15 {
        assert!(!matches!(end, End::Corrupt(_)), "a log cut at {cut} (then {} bytes) read as corruption", damaged.len());
    }
    let one_byte_changed =
        damaged.len() == original.len() && original.iter().zip(&damaged).filter(|(a, b)| a != b).count() == 1;
    if one_byte_changed && cut < frames_end {
        assert!(matches!(end, End::Corrupt(_)), "one changed byte at {first_change} read as {end:?}");
    }
    let at_boundary = first_change as u64 == FIRST_FRAME || frame_ends.contains(&(first_change as u64));
    if at_boundary && zeros_after_cut {
        assert_eq!(end, End::Clean, "zeros after whole frames did not read as a clean end");
    }
}

/// The seed inputs of `target`, named: valid and near-valid inputs for each
/// branch of the decoder. Deterministic, so the committed corpus can be rebuilt.
pub fn seed_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "wal_record" => wal_record_seeds(),
        "wal_log" => wal_log_seeds(),
        _ => Vec::new(),
    }
}

/// A frame around `payload` whose length check and crc hold (the payload is not
/// sealed, so it fails only at the AEAD tag).
fn checked_frame(payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader::for_payload(payload);
    let mut out = header.encode().to_vec();
    out.extend_from_slice(payload);
    out
}

fn wal_record_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = vec![
        ("empty".to_string(), Vec::new()),
        ("short_header".to_string(), vec![0x15, 0, 0, 0, 0x69]),
        ("zero_header".to_string(), vec![0; FRAME_HEADER_LEN]),
        ("zero_page".to_string(), vec![0; 512]),
        ("bad_len_check".to_string(), vec![0x15, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]),
    ];
    let mut torn = FrameHeader::for_payload(&[0x5a; 21]).encode().to_vec();
    torn.extend_from_slice(&[0x5a; 9]);
    seeds.push(("payload_runs_past_end".to_string(), torn));
    for (name, len) in
        [("len_below_tag", TAG_LEN as u32 - 1), ("len_zero_nonzero_check", 0), ("len_above_max", MAX_SEALED_LEN + 1)]
    {
        let mut h = Vec::new();
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&len_check(len).to_le_bytes());
        h.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        seeds.push((name.to_string(), h));
    }
    let mut bad_crc = checked_frame(&[7; 40]);
    if let Some(b) = bad_crc.get_mut(8) {
        *b ^= 1;
    }
    seeds.push(("crc_mismatch".to_string(), bad_crc));
    for len in [16usize, 17, 64, 300] {
        seeds.push((format!("unsealed_frame_{len}"), checked_frame(&vec![0xa5; len])));
    }
    let mut two = checked_frame(&[1; 20]);
    two.extend_from_slice(&checked_frame(&[2; 33]));
    seeds.push(("two_unsealed_frames".to_string(), two));
    let mut tail_zeros = checked_frame(&[3; 16]);
    tail_zeros.extend_from_slice(&[0; 100]);
    seeds.push(("frame_then_zeros".to_string(), tail_zeros));
    // A header whose payload never landed: the crc fails over a zero tag.
    let mut zero_tag = checked_frame(&[9; 40]);
    for b in zero_tag.iter_mut().skip(FRAME_HEADER_LEN + 24) {
        *b = 0;
    }
    seeds.push(("payload_tag_zero".to_string(), zero_tag));
    let mut short_zero_run = checked_frame(&[9; 40]);
    for b in short_zero_run.iter_mut().skip(FRAME_HEADER_LEN + 25) {
        *b = 0;
    }
    seeds.push(("payload_ends_in_15_zeros".to_string(), short_zero_run));
    let mut header_cut = FrameHeader::for_payload(&[4; 30]).encode().to_vec();
    for b in header_cut.iter_mut().skip(5) {
        *b = 0;
    }
    header_cut.extend_from_slice(&[0; 30]);
    seeds.push(("header_cut_then_zeros".to_string(), header_cut));
    let mut zeros_then_bytes = vec![0u8; 40];
    zeros_then_bytes.push(1);
    seeds.push(("zeros_then_a_byte".to_string(), zeros_then_bytes));
    seeds.push(("all_ff".to_string(), vec![0xff; 64]));
    seeds
}

/// Encodes a `wal_log` input: kind, record lengths, then raw operation bytes.
fn wal_log_input(kind: u8, lens: &[u16], ops: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, lens.len() as u8];
    for l in lens {
        v.extend_from_slice(&l.to_le_bytes());
    }
    v.extend_from_slice(ops);
    v
}

fn wal_log_seeds() -> Vec<(String, Vec<u8>)> {
    let three: &[u16] = &[5, 0, 40];
    // Frame ends for lengths 5, 0, 40: 84 + 33 = 117, +28 = 145, +68 = 213.
    let mut seeds = vec![
        ("empty_log".to_string(), wal_log_input(0, &[], &[])),
        ("three_records".to_string(), wal_log_input(0, three, &[])),
        ("manifest_three_records".to_string(), wal_log_input(1, three, &[])),
        ("large_records".to_string(), wal_log_input(0, &[600, 1, 599, 300], &[])),
    ];
    let op_xor = |pos: u32, mask: u8| {
        let mut v = vec![0u8];
        v.extend_from_slice(&pos.to_le_bytes());
        v.push(mask);
        v
    };
    let op_truncate = |len: u32| {
        let mut v = vec![1u8];
        v.extend_from_slice(&len.to_le_bytes());
        v
    };
    for (name, pos) in [
        ("flip_header", 20u32),
        ("flip_len", 86),
        ("flip_len_check", 89),
        ("flip_crc", 93),
        ("flip_payload", 100),
        ("flip_last_frame", 200),
    ] {
        seeds.push((name.to_string(), wal_log_input(0, three, &op_xor(pos, 0x10))));
    }
    for (name, len) in [
        ("cut_in_header", 60u32),
        ("cut_at_first_frame", 84),
        ("cut_in_frame_header", 90),
        ("cut_in_payload", 100),
        ("cut_at_boundary", 117),
        ("cut_in_second", 130),
    ] {
        seeds.push((name.to_string(), wal_log_input(0, three, &op_truncate(len))));
    }
    seeds.push(("zeros_after_log".to_string(), wal_log_input(0, three, &[3, 0x00, 0x10])));
    // Written preallocated: the frames end at 213, zeros follow to 4096.
    seeds.push(("preallocated_three_records".to_string(), wal_log_input(2, three, &[])));
    seeds.push(("preallocated_flip_last_frame".to_string(), wal_log_input(2, three, &op_xor(212, 0x01))));
    seeds.push(("preallocated_flip_in_zeros".to_string(), wal_log_input(2, three, &op_xor(300, 0x01))));
    let zero_range = |pos: u32, n: u8| {
        let mut v = vec![4u8];
        v.extend_from_slice(&pos.to_le_bytes());
        v.push(n);
        v
    };
    seeds.push(("preallocated_tag_lost".to_string(), wal_log_input(2, three, &zero_range(197, 16))));
    seeds.push(("preallocated_cut_in_payload".to_string(), wal_log_input(2, three, &zero_range(160, 255))));
    seeds.push(("preallocated_cut_in_last_15".to_string(), wal_log_input(2, three, &zero_range(205, 8))));
    seeds.push(("preallocated_cut_in_header".to_string(), wal_log_input(2, three, &zero_range(150, 255))));
    let mut cut_then_zeros = op_truncate(145);
    cut_then_zeros.extend_from_slice(&[3, 12, 0]);
    seeds.push(("cut_then_zero_fill".to_string(), wal_log_input(0, three, &cut_then_zeros)));
    seeds.push(("garbage_appended".to_string(), wal_log_input(0, three, &[2, 8, 1, 2, 3, 4, 5, 6, 7, 8])));
    seeds.push(("zero_range_mid_log".to_string(), wal_log_input(0, three, &[4, 120, 0, 0, 0, 12])));
    let mut moved = vec![5u8];
    moved.extend_from_slice(&145u32.to_le_bytes());
    moved.extend_from_slice(&84u32.to_le_bytes());
    moved.extend_from_slice(&68u16.to_le_bytes());
    seeds.push(("frame_moved".to_string(), wal_log_input(0, three, &moved)));
    let mut inserted = vec![6u8];
    inserted.extend_from_slice(&117u32.to_le_bytes());
    inserted.extend_from_slice(&[4, 9, 9, 9, 9]);
    seeds.push(("bytes_inserted".to_string(), wal_log_input(0, three, &inserted)));
    seeds
}
