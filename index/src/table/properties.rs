//! The properties block: what a table holds, in fixed-width fields.
//!
//! `file_id u64 | entries u64 | data_blocks u64 | raw_key_bytes u64 |
//! raw_value_bytes u64 | min_seqno u64 | max_seqno u64 |
//! smallest_len u32 | smallest (encoded internal key) | largest_len u32 | largest`
//! and, from block version 2 on, the user-properties section of
//! [`super::user_properties`] when the table has any. A block without the
//! section (every table written before it existed) has no user properties.

use crate::format::{read_u32, read_u64, MAX_USER_KEY_BYTES};
use crate::key::InternalKey;

use super::user_properties::{self, UserProperties};

/// Decoded properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Properties {
    pub(crate) file_id: u64,
    pub(crate) entries: u64,
    pub(crate) data_blocks: u64,
    pub(crate) raw_key_bytes: u64,
    pub(crate) raw_value_bytes: u64,
    pub(crate) min_seqno: u64,
    pub(crate) max_seqno: u64,
    pub(crate) smallest: InternalKey,
    pub(crate) largest: InternalKey,
    /// What the table's collector returned; empty when it had none.
    pub(crate) user: UserProperties,
}

impl Properties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.smallest.user_key.len() + self.largest.user_key.len());
        for v in [
            self.file_id,
            self.entries,
            self.data_blocks,
            self.raw_key_bytes,
            self.raw_value_bytes,
            self.min_seqno,
            self.max_seqno,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for k in [&self.smallest, &self.largest] {
            out.extend_from_slice(&((k.user_key.len() + 8) as u32).to_le_bytes());
            k.encode_into(&mut out);
        }
        user_properties::encode_into(&self.user, &mut out);
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, &'static str> {
        const SHORT: &str = "properties block truncated";
        let mut fixed = [0u64; 7];
        for (i, f) in fixed.iter_mut().enumerate() {
            *f = read_u64(b, 8 * i).ok_or(SHORT)?;
        }
        let mut pos = 56;
        let mut key = || -> Result<InternalKey, &'static str> {
            let len = read_u32(b, pos).ok_or(SHORT)? as usize;
            if len > MAX_USER_KEY_BYTES + 8 {
                return Err("key length in properties out of range");
            }
            let bytes = b.get(pos + 4..pos + 4 + len).ok_or(SHORT)?;
            pos += 4 + len;
            InternalKey::decode(bytes).ok_or("malformed key in properties")
        };
        let smallest = key()?;
        let largest = key()?;
        let user = user_properties::decode(b.get(pos..).unwrap_or_default())?;
        let [file_id, entries, data_blocks, raw_key_bytes, raw_value_bytes, min_seqno, max_seqno] = fixed;
        Ok(Properties { file_id, entries, data_blocks, raw_key_bytes, raw_value_bytes, min_seqno, max_seqno, smallest, largest, user })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::key::ValueKind;

    /// Properties of a small table, without user properties.
    fn sample() -> Properties {
        Properties {
        file_id: 7,
        entries: 3,
        data_blocks: 1,
        raw_key_bytes: 30,
        raw_value_bytes: 40,
        min_seqno: 2,
        max_seqno: 9,
        smallest: InternalKey::new(b"a".to_vec(), 9, ValueKind::Put),
        largest: InternalKey::new(b"zz".to_vec(), 2, ValueKind::Delete),
        user: UserProperties::new(),
    }
    }

    #[test]
    fn properties_round_trip_and_truncation() {
        let p = sample();
        let enc = p.encode();
        assert_eq!(Properties::decode(&enc).unwrap(), p);
        for cut in 0..enc.len() {
            assert!(Properties::decode(&enc[..cut]).is_err());
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(Properties::decode(&longer).is_err());
    }

    /// A block of the first layout (no section) reads as no user properties;
    /// one with a section round-trips and starts with the fixed part unchanged.
    #[test]
    fn user_properties_extend_the_first_layout() {
        let mut p = sample();
        let first = p.encode();
        assert!(Properties::decode(&first).unwrap().user.is_empty());
        p.user.insert("ts.min".into(), vec![1, 2, 3]);
        let second = p.encode();
        assert_eq!(&second[..first.len()], &first[..]);
        assert_eq!(second[first.len()], 2, "the section starts with its version byte");
        assert_eq!(Properties::decode(&second).unwrap(), p);
        for cut in first.len() + 1..second.len() {
            assert!(Properties::decode(&second[..cut]).is_err());
        }
    }
}
