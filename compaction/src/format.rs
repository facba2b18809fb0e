//! On-disk constants of the compaction layer: the `CURRENT` file and the
//! encoding of version edits inside the manifest. The layouts, with diagrams and
//! a worked example, are in `compaction/FORMAT.md`; keep the two in step.

/// Magic at the start of `CURRENT`; the trailing `2` is the format version.
pub(crate) const CURRENT_MAGIC: [u8; 8] = *b"SYNCURR2";
/// `CURRENT` = magic (8) | manifest number u64 LE (8) | HMAC-SHA256 of the first
/// 16 bytes under the master key's integrity key for [`CURRENT_PURPOSE`] (32).
pub(crate) const CURRENT_LEN: usize = 8 + 8 + 32;
/// Offset of the tag in `CURRENT` (also the number of bytes it covers).
pub(crate) const CURRENT_TAG_OFFSET: usize = 16;
/// The purpose `CURRENT`'s integrity key is derived for.
pub(crate) const CURRENT_PURPOSE: &[u8] = b"CURRENT";

/// Magic of the `CURRENT` of earlier versions (format 1), read for compatibility.
pub(crate) const LEGACY_CURRENT_MAGIC: [u8; 8] = *b"SYNCURR1";
/// Format 1 `CURRENT` = magic (8) | manifest number u64 LE (8) | crc32 of the first 16 bytes u32 LE (4).
pub(crate) const LEGACY_CURRENT_LEN: usize = 8 + 8 + 4;
/// Offset of the crc32 in a format 1 `CURRENT` (also the number of bytes it covers).
pub(crate) const LEGACY_CURRENT_CRC_OFFSET: usize = 16;

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
/// `number u64 | first seqno u64 | flags u8`: WAL segment `number` exists and its
/// batches start at `first seqno` or later (0: not recorded, a segment adopted
/// from a store of format 1); flag bit 0: every earlier segment was synced whole
/// before it was created, so the earlier one ends exactly at `first seqno - 1`.
pub(crate) const TAG_WAL_SEGMENT: u8 = 6;
/// `manifest number u64 | last seqno u64`: the manifest this one replaced and its
/// last seqno then (0, 0 for a store's first manifest). Every manifest written by
/// this format carries it in its first record.
pub(crate) const TAG_PREDECESSOR: u8 = 7;
/// `id u32 | name length u8 | name (UTF-8) | options length u16 | options`: keyspace
/// `id` is created with that name. Options must be empty in this version.
pub(crate) const TAG_CREATE_KEYSPACE: u8 = 8;
/// `id u32`: keyspace `id` is dropped; its id is never handed out again.
pub(crate) const TAG_DROP_KEYSPACE: u8 = 9;
/// `u32` the next keyspace id to hand out (in a snapshot, so ids of dropped
/// keyspaces are never reused).
pub(crate) const TAG_NEXT_KEYSPACE_ID: u8 = 10;
/// `keyspace u32`, then the fields of [`TAG_ADDED_FILE`]: a table of keyspace
/// `keyspace` (never 0: a default-keyspace table is written with tag 5) joins a
/// level of that keyspace.
pub(crate) const TAG_ADDED_FILE_IN_KEYSPACE: u8 = 11;
/// `keyspace u32 | seqno u64 | start (u32 len + bytes) | end (u32 len + bytes)`:
/// a range tombstone joins the version (written by the flush, or the ingest,
/// that moves it out of the WAL; `start < end`, both non-empty).
pub(crate) const TAG_ADD_RANGE_TOMBSTONE: u8 = 12;
/// `seqno u64`: the range tombstone of that seqno leaves the version (nothing
/// older than it is left under its range).
pub(crate) const TAG_DROP_RANGE_TOMBSTONE: u8 = 13;
/// Fixed-width part of a range tombstone field, after its tag.
pub(crate) const RANGE_TOMBSTONE_FIXED_LEN: usize = 4 + 8;
/// Largest bound of a range tombstone accepted in an edit (a user key).
pub(crate) const MAX_RANGE_BOUND_LEN: usize = MAX_ENCODED_KEY_LEN - MIN_ENCODED_KEY_LEN;
/// `number u64 | first seqno u64 | end seqno u64 | bytes u64 | retired at u64`:
/// WAL segment `number`, retired from recovery (below the log number), is kept
/// as a change-feed segment. Its batches carry seqnos in `first seqno..end seqno`
/// (end exclusive), the file is `bytes` long, and it was retired at `retired at`
/// (milliseconds since the Unix epoch). Written only by a store with a change-feed
/// retention; a manifest without one carries none.
pub(crate) const TAG_FEED_SEGMENT: u8 = 16;
/// `number u64`: change-feed segment `number` is no longer kept (it aged out, or
/// a key rotation ended its retention); the file is obsolete from then on.
pub(crate) const TAG_FEED_RELEASED: u8 = 17;
/// Fixed-width part of a change-feed segment field, after its tag.
pub(crate) const FEED_SEGMENT_LEN: usize = 8 * 5;
/// `keyspace id u32 | name length u8 | name (UTF-8)`: the merge operator the
/// keyspace's operands are written for (recorded with its first merge, kept
/// until the keyspace is dropped).
pub(crate) const TAG_MERGE_OPERATOR: u8 = 14;
/// Flag of [`TAG_WAL_SEGMENT`]: the segments before it were synced whole.
pub(crate) const WAL_SEGMENT_PREDECESSOR_SYNCED: u8 = 1;
/// Fixed-width part of a WAL segment field, after its tag.
pub(crate) const WAL_SEGMENT_LEN: usize = 8 + 8 + 1;

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

const _: () = assert!(CURRENT_LEN == CURRENT_TAG_OFFSET + crypto::INTEGRITY_TAG_LEN);
const _: () = assert!(CURRENT_MAGIC.len() + 8 == CURRENT_TAG_OFFSET);
const _: () = assert!(LEGACY_CURRENT_LEN == LEGACY_CURRENT_CRC_OFFSET + 4);
const _: () = assert!(LEGACY_CURRENT_MAGIC.len() + 8 == LEGACY_CURRENT_CRC_OFFSET);
const _: () = assert!(CURRENT_LEN != LEGACY_CURRENT_LEN);
const _: () = assert!(MAX_LEVELS <= u8::MAX as usize);
const _: () = assert!(MAX_ENCODED_KEY_LEN <= u32::MAX as usize);
const _: () = assert!((SNAPSHOT_RECORD_BYTES as u64) < MANIFEST_ROLL_BYTES);
const _: () = assert!(TAG_END != TAG_LOG_NUMBER && TAG_ADDED_FILE > TAG_DELETED_FILE);
