//! Per-table user properties: small named values an application's collector
//! computes from the entries of one table (a min/max timestamp, a range
//! fingerprint) and that the builder writes into the table's properties block,
//! so a reader can decide from them whether to look inside the table at all.
//!
//! A [`TablePropertiesCollectorFactory`] makes one [`TablePropertiesCollector`]
//! per table; the collector sees every entry added, in table order, and
//! returns its properties when the table is finished. The properties travel
//! in the same sealed block as the table's own properties (layout in
//! `index/FORMAT.md`, "User properties"), so they are as encrypted as keys.

use std::collections::BTreeMap;

use crate::format::{read_u32, MAX_PROPERTY_NAME_BYTES, MAX_USER_PROPERTIES_BYTES, USER_PROPERTIES_VERSION};
use crate::key::{SeqNo, ValueKind};

/// Named properties of one table, names in byte order.
pub type UserProperties = BTreeMap<String, Vec<u8>>;

/// An error a hook (a collector, a compaction filter) returns: a value, never a
/// panic. The message is the hook's own and is carried in the engine's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        HookError(message.into())
    }
}

/// One entry as a collector sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CollectedEntry<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for tombstones).
    pub value: &'a [u8],
    /// The entry's sequence number.
    pub seqno: SeqNo,
    /// What the entry is (a value, a tombstone, ...).
    pub kind: ValueKind,
}

/// Why a table is being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableReason {
    /// A memtable flushed to level 0 (also at open, and by `repair`).
    Flush,
    /// The output of a compaction.
    Compaction,
    /// A large batch written straight to a table.
    Ingest,
}

/// What a factory is told about the table a collector is for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TableContext {
    /// The table's file number.
    pub file_number: u64,
    /// Why it is written.
    pub reason: TableReason,
}

impl TableContext {
    /// The context of table `file_number`, written for `reason`.
    pub fn new(file_number: u64, reason: TableReason) -> Self {
        TableContext { file_number, reason }
    }
}

/// Sees each entry added to one table and returns the table's user properties
/// at its end.
pub trait TablePropertiesCollector: Send {
    /// Called for every entry, in table order (user key ascending, then newest
    /// version first).
    fn add(&mut self, entry: &CollectedEntry<'_>);

    /// The properties of the table, once every entry was added. Together they
    /// must encode to at most [`MAX_USER_PROPERTIES_BYTES`] (names of 1 to 255
    /// bytes); an error, or properties over the limit, fail the table's write.
    fn finish(&mut self) -> Result<UserProperties, HookError>;
}

/// Makes one collector per table written.
pub trait TablePropertiesCollectorFactory: Send + Sync {
    /// A fresh collector for the table described by `context`.
    fn create(&self, context: &TableContext) -> Box<dyn TablePropertiesCollector>;
}

/// Bytes `props` take in the properties block (0 when there are none).
pub(crate) fn encoded_len(props: &UserProperties) -> usize {
    if props.is_empty() {
        return 0;
    }
    1 + 4 + props.iter().map(|(name, value)| 1 + name.len() + 4 + value.len()).sum::<usize>()
}

/// Checks `props` against the limits, so the builder fails with a clear message
/// instead of writing a block no reader accepts.
pub(crate) fn check(props: &UserProperties) -> Result<(), String> {
    for name in props.keys() {
        if name.is_empty() || name.len() > MAX_PROPERTY_NAME_BYTES {
            return Err(format!("user property name of {} bytes (1..={MAX_PROPERTY_NAME_BYTES})", name.len()));
        }
    }
    let len = encoded_len(props);
    if len > MAX_USER_PROPERTIES_BYTES {
        return Err(format!("user properties take {len} bytes, more than the limit of {MAX_USER_PROPERTIES_BYTES}"));
    }
    Ok(())
}

/// Appends the user-properties section (nothing when `props` is empty). The
/// caller has checked `props` (see [`check`]).
pub(crate) fn encode_into(props: &UserProperties, out: &mut Vec<u8>) {
    if props.is_empty() {
        return;
    }
    out.push(USER_PROPERTIES_VERSION);
    out.extend_from_slice(&(props.len() as u32).to_le_bytes());
    for (name, value) in props {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
}

/// Decodes a user-properties section that fills `b` exactly; an empty `b` is no
/// properties (a table written before the section existed, or without any).
pub(crate) fn decode(b: &[u8]) -> Result<UserProperties, &'static str> {
    const SHORT: &str = "user properties truncated";
    let mut props = UserProperties::new();
    let Some((&version, rest)) = b.split_first() else { return Ok(props) };
    if version != USER_PROPERTIES_VERSION {
        return Err("unknown user properties version");
    }
    if b.len() > MAX_USER_PROPERTIES_BYTES {
        return Err("user properties over their size limit");
    }
    let count = read_u32(rest, 0).ok_or(SHORT)?;
    if count == 0 {
        return Err("empty user properties section");
    }
    let mut pos = 4usize;
    for _ in 0..count {
        let name_len = usize::from(*rest.get(pos).ok_or(SHORT)?);
        if name_len == 0 {
            return Err("empty user property name");
        }
        let name = rest.get(pos + 1..pos + 1 + name_len).ok_or(SHORT)?;
        let name = std::str::from_utf8(name).map_err(|_| "user property name is not UTF-8")?;
        pos += 1 + name_len;
        let value_len = read_u32(rest, pos).ok_or(SHORT)? as usize;
        let value = rest.get(pos + 4..pos + 4 + value_len).ok_or(SHORT)?;
        pos += 4 + value_len;
        if props.last_key_value().is_some_and(|(last, _)| last.as_str() >= name) {
            return Err("user property names out of order");
        }
        props.insert(name.to_string(), value.to_vec());
    }
    if pos != rest.len() {
        return Err("trailing bytes after user properties");
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn sample() -> UserProperties {
        let mut p = UserProperties::new();
        p.insert("ts.max".into(), 9u64.to_le_bytes().to_vec());
        p.insert("ts.min".into(), 2u64.to_le_bytes().to_vec());
        p.insert("x".into(), Vec::new());
        p
    }

    #[test]
    fn round_trip_and_every_truncation_refused() {
        let p = sample();
        let mut enc = Vec::new();
        encode_into(&p, &mut enc);
        assert_eq!(enc.len(), encoded_len(&p));
        assert_eq!(decode(&enc).unwrap(), p);
        for cut in 1..enc.len() {
            assert!(decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    /// The worked example of `index/FORMAT.md`, "User properties".
    #[test]
    fn worked_example_of_format_doc() {
        let mut p = UserProperties::new();
        p.insert("ts.max".into(), 9u64.to_le_bytes().to_vec());
        p.insert("ts.min".into(), 1u64.to_le_bytes().to_vec());
        let mut enc = Vec::new();
        encode_into(&p, &mut enc);
        let mut expected = vec![2, 2, 0, 0, 0];
        expected.extend_from_slice(b"\x06ts.max\x08\x00\x00\x00");
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.extend_from_slice(b"\x06ts.min\x08\x00\x00\x00");
        expected.extend_from_slice(&1u64.to_le_bytes());
        assert_eq!(enc, expected);
        assert_eq!(enc.len(), 43);
    }

    #[test]
    fn nothing_encodes_to_no_bytes() {
        let mut enc = Vec::new();
        encode_into(&UserProperties::new(), &mut enc);
        assert!(enc.is_empty());
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn non_canonical_sections_are_refused() {
        // Version other than 2, an empty section, names out of order, a non-UTF-8 name.
        assert!(decode(&[3, 1, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
        assert!(decode(&[2, 0, 0, 0, 0]).is_err());
        assert!(decode(&[2, 2, 0, 0, 0, 1, b'b', 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
        assert!(decode(&[2, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
        assert!(decode(&[2, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0]).is_err());
        assert_eq!(decode(&[2, 1, 0, 0, 0, 1, b'a', 1, 0, 0, 0, 7]).unwrap().get("a"), Some(&vec![7]));
    }

    #[test]
    fn limits_are_checked_with_a_clear_message() {
        let mut p = UserProperties::new();
        p.insert("big".into(), vec![0; MAX_USER_PROPERTIES_BYTES]);
        assert!(check(&p).unwrap_err().contains("more than the limit"));
        let mut p = UserProperties::new();
        p.insert("n".repeat(256), Vec::new());
        assert!(check(&p).is_err());
        let mut p = UserProperties::new();
        p.insert(String::new(), Vec::new());
        assert!(check(&p).is_err());
        assert!(check(&sample()).is_ok());
    }
}
