//! Keys and small records of the time-series store's internal keyspace `_ts`
//! (`engine/FORMAT.md`, "Time-series store"): series metadata, block
//! summaries, sealed blocks and head points. Fixed-width little-endian values;
//! keys big-endian so that they sort by series, then time.

use crate::{Error, Result};

/// The internal keyspace holding every series.
pub(crate) const KEYSPACE: &str = "_ts";
/// `m` + series name: the series' [`Meta`].
pub(crate) const META: u8 = b'm';
/// `n`: the next series id (u64 LE).
pub(crate) const NEXT_ID: &[u8] = b"n";
/// `b` + series id + block start: a sealed block (`codec.rs`).
pub(crate) const BLOCK: u8 = b'b';
/// `s` + series id + block start: that block's [`Summary`].
pub(crate) const SUMMARY: u8 = b's';
/// `p` + series id + timestamp: one point of the head (f64 bits, LE).
pub(crate) const POINT: u8 = b'p';

/// Version byte of a series' metadata record.
pub(crate) const META_VERSION: u8 = 1;
/// Version byte of a block summary.
pub(crate) const SUMMARY_VERSION: u8 = 1;
/// Longest series name, label name or label value, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;
/// Most labels a series may carry.
pub const MAX_LABELS: usize = 64;

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corruption { file: "time-series record".to_string(), offset: 0, reason: reason.into() }
}

/// A timestamp as 8 big-endian bytes that sort as the signed value does.
pub(crate) fn ts_key(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

pub(crate) fn ts_from_key(bytes: &[u8]) -> Result<i64> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| corrupt("timestamp key of the wrong length"))?;
    Ok((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(META);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `kind` + series id: the prefix of a series' blocks, summaries or points.
pub(crate) fn series_prefix(kind: u8, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(kind);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub(crate) fn timed_key(kind: u8, id: u64, ts: i64) -> Vec<u8> {
    let mut k = series_prefix(kind, id);
    k.extend_from_slice(&ts_key(ts));
    k
}

/// The timestamp at the end of a [`timed_key`].
pub(crate) fn key_ts(key: &[u8]) -> Result<i64> {
    ts_from_key(key.get(9..).ok_or_else(|| corrupt("short time-series key"))?)
}

/// What the store keeps per series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Meta {
    pub id: u64,
    /// Retention: keep points newer than `newest - keep_ms` (none if `None`).
    pub keep_ms: Option<i64>,
    /// Out-of-order window: a point older than `newest - window` is refused.
    pub window_ms: i64,
    /// Newest timestamp ever accepted (None: no point yet).
    pub newest: Option<i64>,
    /// Newest timestamp in a sealed block (None: none sealed yet). Head points
    /// are all newer; older points go to the sealed block covering them.
    pub sealed_last: Option<i64>,
    /// Points in the head.
    pub head_count: u32,
    /// The highest retention cutoff ever in force: points older than it stay
    /// hidden even if the retention window grows later (they may be deleted).
    pub floor: Option<i64>,
    pub labels: Vec<(String, String)>,
}

fn put_opt(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => {
            out.push(0);
            out.extend_from_slice(&0i64.to_le_bytes());
        }
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(corrupt("record ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| corrupt("short u32"))?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| corrupt("short u64"))?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn opt(&mut self) -> Result<Option<i64>> {
        let flag = self.u8()?;
        let v = self.i64()?;
        match flag {
            0 => Ok(None),
            1 => Ok(Some(v)),
            _ => Err(corrupt("bad option flag")),
        }
    }
    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        if len > MAX_NAME_BYTES {
            return Err(corrupt("label longer than its limit"));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| corrupt("label not UTF-8"))
    }
}

impl Meta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![META_VERSION];
        out.extend_from_slice(&self.id.to_le_bytes());
        put_opt(&mut out, self.keep_ms);
        out.extend_from_slice(&self.window_ms.to_le_bytes());
        put_opt(&mut out, self.newest);
        put_opt(&mut out, self.sealed_last);
        out.extend_from_slice(&self.head_count.to_le_bytes());
        put_opt(&mut out, self.cutoff());
        out.extend_from_slice(&(self.labels.len() as u32).to_le_bytes());
        for (k, v) in &self.labels {
            for s in [k, v] {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Meta> {
        let mut c = Cursor(bytes);
        let version = c.u8()?;
        if version != META_VERSION {
            return Err(Error::UnsupportedVersion { file: "time-series metadata".to_string(), found: version, supported: META_VERSION });
        }
        let id = c.u64()?;
        let keep_ms = c.opt()?;
        let window_ms = c.i64()?;
        let newest = c.opt()?;
        let sealed_last = c.opt()?;
        let head_count = c.u32()?;
        let floor = c.opt()?;
        let n = c.u32()? as usize;
        if n > MAX_LABELS {
            return Err(corrupt("more labels than the limit"));
        }
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            labels.push((c.string()?, c.string()?));
        }
        if !c.0.is_empty() {
            return Err(corrupt("trailing bytes after series metadata"));
        }
        Ok(Meta { id, keep_ms, window_ms, newest, sealed_last, head_count, floor, labels })
    }

    /// Points older than this are past retention (hidden, then deleted):
    /// the newest minus the window, never below an earlier cutoff.
    pub(crate) fn cutoff(&self) -> Option<i64> {
        let now = match (self.keep_ms, self.newest) {
            (Some(keep), Some(newest)) => Some(newest.saturating_sub(keep)),
            _ => None,
        };
        match (now, self.floor) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Per-block facts that let aggregates skip decoding a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub count: u32,
    pub first_ts: i64,
    pub last_ts: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub first: f64,
    pub last: f64,
}

impl Summary {
    pub(crate) fn of(timestamps: &[i64], values: &[f64]) -> Option<Summary> {
        let (&first_ts, &last_ts) = (timestamps.first()?, timestamps.last()?);
        let (&first, &last) = (values.first()?, values.last()?);
        let mut s = Summary { count: 0, first_ts, last_ts, min: first, max: first, sum: 0.0, first, last };
        for &v in values {
            s.count += 1;
            s.min = s.min.min(v);
            s.max = s.max.max(v);
            s.sum += v;
        }
        Some(s)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(61);
        out.push(SUMMARY_VERSION);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.first_ts.to_le_bytes());
        out.extend_from_slice(&self.last_ts.to_le_bytes());
        for v in [self.min, self.max, self.sum, self.first, self.last] {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Summary> {
        let mut c = Cursor(bytes);
        let version = c.u8()?;
        if version != SUMMARY_VERSION {
            return Err(Error::UnsupportedVersion { file: "time-series summary".to_string(), found: version, supported: SUMMARY_VERSION });
        }
        let s = Summary { count: c.u32()?, first_ts: c.i64()?, last_ts: c.i64()?, min: c.f64()?, max: c.f64()?, sum: c.f64()?, first: c.f64()?, last: c.f64()? };
        if !c.0.is_empty() || s.count == 0 || s.first_ts > s.last_ts {
            return Err(corrupt("malformed block summary"));
        }
        Ok(s)
    }
}

/// A series name or label: 1..=[`MAX_NAME_BYTES`] bytes.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidArgument(format!("{what} must be 1..={MAX_NAME_BYTES} bytes, got {}", name.len())));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn ts_keys_sort_as_signed_timestamps() {
        let mut all = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let keys: Vec<[u8; 8]> = all.iter().map(|&t| ts_key(t)).collect();
        assert!(keys.windows(2).all(|p| p[0] < p[1]));
        for (k, t) in keys.iter().zip(all.iter_mut()) {
            assert_eq!(ts_from_key(k).expect("decodes"), *t);
        }
    }

    #[test]
    fn meta_and_summary_round_trip() {
        let m = Meta { id: 9, keep_ms: Some(60_000), window_ms: 3_600_000, newest: Some(-4), sealed_last: None, head_count: 3, floor: Some(-60_004), labels: vec![("host".into(), "a".into())] };
        assert_eq!(Meta::decode(&m.encode()).expect("decodes"), m);
        let s = Summary::of(&[1, 2, 3], &[2.0, -1.0, 4.5]).expect("summary");
        assert_eq!(Summary::decode(&s.encode()).expect("decodes"), s);
        assert_eq!((s.min, s.max, s.sum, s.count), (-1.0, 4.5, 5.5, 3));
        let enc = m.encode();
        for cut in 0..enc.len() {
            assert!(Meta::decode(&enc[..cut]).is_err());
        }
    }
}
