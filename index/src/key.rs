//! Internal keys: (user key, seqno, kind), ordered by user key ascending, then
//! seqno descending, so the newest version of a key comes first.
//!
//! Encoded form (in memtable, blocks and the manifest):
//! `user_key || trailer`, where `trailer = (seqno << 8 | kind)` as u64 little-endian.

use std::cmp::Ordering;

/// A sequence number. Each write in a batch gets the next one; 56 bits are usable.
pub type SeqNo = u64;

/// The largest sequence number (reads "at the latest" use it).
pub const MAX_SEQNO: SeqNo = (1 << 56) - 1;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ValueKind {
    /// A tombstone.
    Delete = 0,
    /// A value.
    Put = 1,
    /// A merge operand (to be combined with older versions by a merge operator).
    Merge = 2,
    /// A reference to a value stored in a blob file (separated large value).
    BlobRef = 3,
    /// A value preceded by per-entry metadata (e.g. a sync version); see the engine's FORMAT.md.
    PutWithMeta = 4,
    /// A tombstone carrying per-entry metadata (a versioned delete for sync).
    DeleteWithMeta = 5,
}

impl ValueKind {
    /// Decodes a kind byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => ValueKind::Delete,
            1 => ValueKind::Put,
            2 => ValueKind::Merge,
            3 => ValueKind::BlobRef,
            4 => ValueKind::PutWithMeta,
            5 => ValueKind::DeleteWithMeta,
            _ => return None,
        })
    }

    /// Whether this kind hides older versions as a deletion.
    pub fn is_tombstone(self) -> bool {
        matches!(self, ValueKind::Delete | ValueKind::DeleteWithMeta)
    }
}

/// A key with its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The user's key.
    pub user_key: Vec<u8>,
    /// Sequence number of the write.
    pub seqno: SeqNo,
    /// Kind of the entry.
    pub kind: ValueKind,
}

impl InternalKey {
    /// Makes an internal key.
    pub fn new(user_key: impl Into<Vec<u8>>, seqno: SeqNo, kind: ValueKind) -> Self {
        InternalKey { user_key: user_key.into(), seqno, kind }
    }

    /// The trailer `seqno << 8 | kind`.
    pub fn trailer(&self) -> u64 {
        (self.seqno << 8) | self.kind as u64
    }

    /// Appends the encoded key to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.user_key);
        out.extend_from_slice(&self.trailer().to_le_bytes());
    }

    /// The encoded key.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.user_key.len() + 8);
        self.encode_into(&mut v);
        v
    }

    /// Decodes an encoded key; `None` if it is malformed.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let split = bytes.len().checked_sub(8)?;
        let (user, trailer) = bytes.split_at(split);
        let mut t = [0u8; 8];
        t.copy_from_slice(trailer);
        let t = u64::from_le_bytes(t);
        let kind = ValueKind::from_u8((t & 0xff) as u8)?;
        Some(InternalKey { user_key: user.to_vec(), seqno: t >> 8, kind })
    }
}

/// Orders two user keys as `a.cmp(b)` does. Most pairs of distinct keys
/// differ in their first 8 bytes, which are compared here as one big-endian
/// integer; a slice comparison is a call into `memcmp`, several times the cost
/// for keys this short, and searches make dozens of comparisons.
#[inline]
pub fn cmp_user_keys(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// The first 8 bytes of `user_key`, zero padded, as a big-endian integer. A
/// smaller prefix means a smaller user key (zero padding sorts a key before
/// every longer key it begins); equal prefixes decide nothing.
pub fn user_key_prefix(user_key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, k) in bytes.iter_mut().zip(user_key) {
        *b = *k;
    }
    u64::from_be_bytes(bytes)
}

/// Compares encoded internal keys without decoding them fully.
/// Malformed keys (shorter than 8 bytes) sort first; decoders reject them before use.
pub fn compare_encoded(a: &[u8], b: &[u8]) -> Ordering {
    let (ua, ta) = split_encoded(a);
    let (ub, tb) = split_encoded(b);
    cmp_user_keys(ua, ub).then_with(|| tb.cmp(&ta))
}

/// A seek target given as its parts, so a search need not build the encoded
/// key (an allocation per seek).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeekKey<'a> {
    pub(crate) user_key: &'a [u8],
    pub(crate) trailer: u64,
}

impl<'a> SeekKey<'a> {
    /// The target an encoded key names (a malformed one as [`compare_encoded`]
    /// orders it: before every well-formed key).
    pub(crate) fn from_encoded(key: &'a [u8]) -> Self {
        let (user_key, trailer) = split_encoded(key);
        SeekKey { user_key, trailer }
    }

    /// How the encoded key `key` orders against this target (as
    /// `compare_encoded(key, target)` would).
    #[inline]
    pub(crate) fn order_of(&self, key: &[u8]) -> Ordering {
        let (user_key, trailer) = split_encoded(key);
        cmp_user_keys(user_key, self.user_key).then_with(|| self.trailer.cmp(&trailer))
    }
}

fn split_encoded(k: &[u8]) -> (&[u8], u64) {
    match k.len().checked_sub(8) {
        Some(split) => {
            let (u, t) = k.split_at(split);
            let mut buf = [0u8; 8];
            buf.copy_from_slice(t);
            (u, u64::from_le_bytes(buf))
        }
        None => (&[], 0),
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.user_key
            .cmp(&other.user_key)
            .then_with(|| other.seqno.cmp(&self.seqno))
            .then_with(|| (other.kind as u8).cmp(&(self.kind as u8)))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One versioned entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The versioned key.
    pub key: InternalKey,
    /// The value bytes (empty for tombstones).
    pub value: Vec<u8>,
}

/// One versioned entry, borrowed from the iterator positioned on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// Sequence number of the write.
    pub seqno: SeqNo,
    /// Kind of the entry.
    pub kind: ValueKind,
    /// The value bytes (empty for tombstones).
    pub value: &'a [u8],
}

impl EntryRef<'_> {
    /// Internal-key order: user key ascending, then seqno and kind descending
    /// (as [`InternalKey`]'s `Ord`).
    pub fn cmp_key(&self, other: &EntryRef<'_>) -> Ordering {
        cmp_user_keys(self.user_key, other.user_key)
            .then_with(|| other.seqno.cmp(&self.seqno))
            .then_with(|| (other.kind as u8).cmp(&(self.kind as u8)))
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry { key: InternalKey { user_key: self.user_key.to_vec(), seqno: self.seqno, kind: self.kind }, value: self.value.to_vec() }
    }
}

impl Entry {
    /// The entry, borrowed.
    pub fn entry_ref(&self) -> EntryRef<'_> {
        EntryRef { user_key: &self.key.user_key, seqno: self.key.seqno, kind: self.key.kind, value: &self.value }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn user_key_order_agrees_with_slice_order() {
        let keys: Vec<&[u8]> = vec![
            b"", b"\0", b"a", b"abcdefg", b"abcdefgh", b"abcdefgh\0", b"abcdefghi", b"abcdefgi", b"abcdefgh\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff", b"\0\0\0\0\0\0\0\0", b"\0\0\0\0\0\0\0\0\0",
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(cmp_user_keys(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn order_and_encoding_agree() {
        let keys = [
            InternalKey::new(b"a".to_vec(), 9, ValueKind::Put),
            InternalKey::new(b"a".to_vec(), 3, ValueKind::Delete),
            InternalKey::new(b"ab".to_vec(), 100, ValueKind::Put),
            InternalKey::new(b"b".to_vec(), 1, ValueKind::Merge),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1]);
            assert_eq!(compare_encoded(&w[0].encode(), &w[1].encode()), Ordering::Less);
        }
        for k in &keys {
            assert_eq!(InternalKey::decode(&k.encode()).as_ref(), Some(k));
        }
        assert!(InternalKey::decode(b"short").is_none());
    }
}
