//! On-disk constants of the compaction layer: the `CURRENT` file and the
//! encoding of version edits inside the manifest. The layouts, with diagrams and
//! a worked example, are in `compaction/FORMAT.md`; keep the two in step.

/// Magic at the start of `CURRENT`; the trailing `1` is the format version.
pub(crate) const CURRENT_MAGIC: [u8; 8] = *b"SYNCURR1";
/// `CURRENT` = magic (8) | manifest number u64 LE (8) | crc32 of the first 16 bytes u32 LE (4).
pub(crate) const CURRENT_LEN: usize = 8 + 8 + 4;
/// Offset of the crc32 in `CURRENT` (also the number of bytes it covers).
pub(crate) const CURRENT_CRC_OFFSET: usize = 16;

/// First byte of every encoded version edit. Readers refuse any other value.
pub(crate) const EDIT_FORMAT_VERSION: u8 = 1;

/// Tag that ends an edit; it must be the edit's last byte, so a cut-short edit
/// is detected even where a cut would fall on a field boundary.
pub(crate) const TAG_END: u8 = 0;
/// `u64` oldest WAL segment still needed.
pub(crate) const TAG_LOG_NUMBER: u8 = 1;
/// `u64` next file number to hand out.
pub(crate) const TAG_NEXT_FILE_NUMBER: u8 = 2;
/// `u64` last sequence number.
pub(crate) const TAG_LAST_SEQNO: u8 = 3;
/// `level u8 | number u64`: a table leaves a level.
pub(crate) const TAG_DELETED_FILE: u8 = 4;
/// `level u8 | number u64 | size u64 | entries u64 | min_seqno u64 | max_seqno u64 |
/// epoch u32 | smallest (u32 len + key) | largest (u32 len + key)`: a table joins a level.
pub(crate) const TAG_ADDED_FILE: u8 = 5;

/// Fixed-width part of an added-file field, after its tag.
pub(crate) const ADDED_FILE_FIXED_LEN: usize = 1 + 8 + 8 + 8 + 8 + 8 + 4;
/// Largest encoded internal key accepted in an edit (user key + 8-byte trailer).
pub(crate) const MAX_ENCODED_KEY_LEN: usize = 1 << 20;
/// Encoded internal keys carry an 8-byte trailer, so anything shorter is damage.
pub(crate) const MIN_ENCODED_KEY_LEN: usize = 8;

/// The manifest is rewritten as a fresh snapshot once it grows past this.
pub(crate) const MANIFEST_ROLL_BYTES: u64 = 4 << 20;
/// A snapshot edit is split into records of about this many bytes, so one
/// record never approaches the log's record-size limit however many tables exist.
pub(crate) const SNAPSHOT_RECORD_BYTES: usize = 256 << 10;

/// Levels are stored as one byte in edits.
pub(crate) const MAX_LEVELS: usize = 64;

const _: () = assert!(CURRENT_LEN == CURRENT_CRC_OFFSET + 4);
const _: () = assert!(CURRENT_MAGIC.len() + 8 == CURRENT_CRC_OFFSET);
const _: () = assert!(MAX_LEVELS <= u8::MAX as usize);
const _: () = assert!(MAX_ENCODED_KEY_LEN <= u32::MAX as usize);
const _: () = assert!((SNAPSHOT_RECORD_BYTES as u64) < MANIFEST_ROLL_BYTES);
const _: () = assert!(TAG_END != TAG_LOG_NUMBER && TAG_ADDED_FILE > TAG_DELETED_FILE);
