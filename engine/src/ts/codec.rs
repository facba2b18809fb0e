//! Block codecs of the time-series store (`engine/FORMAT.md`, "Time-series
//! blocks"): delta-of-delta timestamps (Gorilla's buckets) and, per block, the
//! smallest of three value codecs: Gorilla's XOR, and two decimal-aware codecs
//! (ALP-like: the smallest exponent `e` that makes every value `v / 10^e` of an
//! integer `v` exactly, then those integers as frame-of-reference bit-packed
//! deltas or as frame-of-reference bit-packed values). XOR takes any bit pattern
//! (NaN payloads, -0.0, infinities), so every block round-trips bit-exactly.

use crate::{Error, Result};

/// Version byte that starts every encoded block.
pub(crate) const BLOCK_VERSION: u8 = 1;
/// Timestamp codec 1: first timestamp, first delta, then Gorilla DoD buckets.
pub(crate) const TS_CODEC_DOD: u8 = 1;
/// Value codec 1: Gorilla XOR.
pub(crate) const VALUE_CODEC_XOR: u8 = 1;
/// Value codec 2: decimal integers, bit-packed deltas above their minimum.
pub(crate) const VALUE_CODEC_DECIMAL_DELTA: u8 = 2;
/// Value codec 3: decimal integers, bit-packed values above their minimum.
pub(crate) const VALUE_CODEC_DECIMAL_FOR: u8 = 3;
/// Most points a block may hold (a decoder refuses more before allocating).
pub(crate) const MAX_BLOCK_POINTS: u32 = 1 << 16;
/// Largest decimal exponent tried: every power of ten up to 10^22 is exact in
/// an f64, and a value needing more digits is better served by XOR.
const MAX_EXPONENT: u8 = 18;
/// Integers of the decimal codecs stay within ±2^53, where f64 holds every
/// integer exactly, so `v as f64` loses nothing.
const MAX_DECIMAL_INT: f64 = 9_007_199_254_740_992.0;
/// Header bytes: version, count (u32 LE), timestamp codec, value codec, exponent.
const HEADER_BYTES: usize = 8;

const POW10: [f64; 19] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];
const _: () = assert!(POW10.len() == MAX_EXPONENT as usize + 1);

fn corrupt(reason: impl Into<String>) -> Error {
    Error::Corruption { file: "time-series block".to_string(), offset: 0, reason: reason.into() }
}

/// Bits appended most significant first. Fewer than 8 bits are pending at
/// any time; full bytes go straight to the output.
#[derive(Default)]
pub(crate) struct BitWriter {
    bytes: Vec<u8>,
    pending: u64,
    pending_bits: u32,
}

impl BitWriter {
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits > 56 {
            // Two pieces, so that pending bits plus a piece fit in 64.
            self.write(value >> 32, bits - 32);
            self.write(value & 0xffff_ffff, 32);
            return;
        }
        if bits == 0 {
            return;
        }
        let masked = value & ((1u64 << bits) - 1);
        self.pending = (self.pending << bits) | masked;
        self.pending_bits += bits;
        while self.pending_bits >= 8 {
            self.pending_bits -= 8;
            self.bytes.push((self.pending >> self.pending_bits) as u8);
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.pending_bits > 0 {
            self.bytes.push((self.pending << (8 - self.pending_bits)) as u8);
        }
        self.bytes
    }
}

/// Reads what [`BitWriter`] wrote; reading past the end is corruption.
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, position: 0 }
    }

    pub(crate) fn read(&mut self, bits: u32) -> Result<u64> {
        debug_assert!(bits <= 64);
        if self.position + bits as usize > self.bytes.len() * 8 {
            return Err(corrupt("bit stream ends early"));
        }
        let mut value = 0u64;
        let mut remaining = bits;
        while remaining > 0 {
            let byte = self.bytes.get(self.position / 8).copied().ok_or_else(|| corrupt("bit stream ends early"))?;
            let available = 8 - (self.position % 8) as u32;
            let take = available.min(remaining);
            let chunk = (u64::from(byte) >> (available - take)) & ((1u64 << take) - 1);
            // `value` holds at most 64 - take bits here, so the shift loses nothing.
            value = if take == 64 { chunk } else { (value << take) | chunk };
            self.position += take as usize;
            remaining -= take;
        }
        Ok(value)
    }

    fn bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }
}

fn bits_needed(value: u64) -> u32 {
    64 - value.leading_zeros()
}

fn sign_extend(value: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((value << shift) as i64) >> shift
}

/// Delta-of-delta timestamps. Deltas use wrapping arithmetic, so any i64
/// timestamps round-trip.
fn encode_timestamps(w: &mut BitWriter, timestamps: &[i64]) {
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for (i, &ts) in timestamps.iter().enumerate() {
        match i {
            0 => w.write(ts as u64, 64),
            1 => {
                prev_delta = ts.wrapping_sub(prev);
                w.write(prev_delta as u64, 64);
            }
            _ => {
                let delta = ts.wrapping_sub(prev);
                let dod = delta.wrapping_sub(prev_delta);
                prev_delta = delta;
                match dod {
                    0 => w.write(0, 1),
                    -64..=63 => {
                        w.write(0b10, 2);
                        w.write(dod as u64 & 0x7f, 7);
                    }
                    -256..=255 => {
                        w.write(0b110, 3);
                        w.write(dod as u64 & 0x1ff, 9);
                    }
                    -2048..=2047 => {
                        w.write(0b1110, 4);
                        w.write(dod as u64 & 0xfff, 12);
                    }
                    _ => {
                        w.write(0b1111, 4);
                        w.write(dod as u64, 64);
                    }
                }
            }
        }
        prev = ts;
    }
}

fn decode_timestamps(r: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(count);
    let mut prev = 0i64;
    let mut prev_delta = 0i64;
    for i in 0..count {
        let ts = match i {
            0 => r.read(64)? as i64,
            1 => {
                prev_delta = r.read(64)? as i64;
                prev.wrapping_add(prev_delta)
            }
            _ => {
                let dod = if !r.bit()? {
                    0
                } else if !r.bit()? {
                    sign_extend(r.read(7)?, 7)
                } else if !r.bit()? {
                    sign_extend(r.read(9)?, 9)
                } else if !r.bit()? {
                    sign_extend(r.read(12)?, 12)
                } else {
                    r.read(64)? as i64
                };
                prev_delta = prev_delta.wrapping_add(dod);
                prev.wrapping_add(prev_delta)
            }
        };
        if i > 0 && ts <= prev {
            return Err(corrupt("timestamps of a block are not increasing"));
        }
        out.push(ts);
        prev = ts;
    }
    Ok(out)
}

/// Gorilla XOR of each value's bits with the previous one's.
fn encode_xor(w: &mut BitWriter, values: &[f64]) {
    let mut prev = 0u64;
    // Leading zeros and length of the last window written (none yet: 65).
    let mut window: Option<(u32, u32)> = None;
    for (i, value) in values.iter().enumerate() {
        let bits = value.to_bits();
        if i == 0 {
            w.write(bits, 64);
            prev = bits;
            continue;
        }
        let xor = bits ^ prev;
        prev = bits;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        w.write(1, 1);
        let leading = xor.leading_zeros().min(63);
        let trailing = xor.trailing_zeros();
        if let Some((wl, wlen)) = window {
            if leading >= wl && trailing >= 64 - wl - wlen {
                w.write(0, 1);
                w.write(xor >> (64 - wl - wlen), wlen);
                continue;
            }
        }
        let length = 64 - leading - trailing;
        w.write(1, 1);
        w.write(u64::from(leading), 6);
        w.write(u64::from(length - 1), 6);
        w.write(xor >> trailing, length);
        window = Some((leading, length));
    }
}

fn decode_xor(r: &mut BitReader<'_>, count: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(count);
    let mut prev = 0u64;
    let mut window: Option<(u32, u32)> = None;
    for i in 0..count {
        if i == 0 {
            prev = r.read(64)?;
        } else if r.bit()? {
            let (leading, length) = if r.bit()? {
                let leading = r.read(6)? as u32;
                let length = r.read(6)? as u32 + 1;
                if leading + length > 64 {
                    return Err(corrupt("XOR window past 64 bits"));
                }
                window = Some((leading, length));
                (leading, length)
            } else {
                window.ok_or_else(|| corrupt("XOR value reuses a window before any"))?
            };
            let meaningful = r.read(length)?;
            prev ^= meaningful << (64 - leading - length);
        }
        out.push(f64::from_bits(prev));
    }
    Ok(out)
}

/// The smallest exponent that turns every value into an integer `v` with
/// `v / 10^e == value` bit for bit, with those integers; `None` if there is none
/// (NaN, infinities, -0.0, or too many digits).
fn decimal_integers(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    let first = *values.first()?;
    'exponent: for (e, &scale) in POW10.iter().enumerate() {
        // The first value alone rules most exponents out cheaply.
        if !decimal_fits(first, scale) {
            continue;
        }
        let mut ints = Vec::with_capacity(values.len());
        for &value in values {
            match decimal_int(value, scale) {
                Some(v) => ints.push(v),
                None => continue 'exponent,
            }
        }
        return Some((e as u8, ints));
    }
    None
}

fn decimal_int(value: f64, scale: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let scaled = (value * scale).round();
    if scaled.abs() > MAX_DECIMAL_INT {
        return None;
    }
    // Bit equality also rules out -0.0, which decodes as +0.0.
    if (scaled / scale).to_bits() != value.to_bits() {
        return None;
    }
    Some(scaled as i64)
}

fn decimal_fits(value: f64, scale: f64) -> bool {
    decimal_int(value, scale).is_some()
}

fn decimal_from(v: i64, exponent: u8) -> Result<f64> {
    let scale = POW10.get(usize::from(exponent)).ok_or_else(|| corrupt("decimal exponent out of range"))?;
    Ok(v as f64 / scale)
}

/// Frame of reference: the minimum (64 bits), the width (7 bits), then each
/// number minus the minimum in `width` bits.
fn encode_for(w: &mut BitWriter, numbers: &[i64]) {
    let min = numbers.iter().copied().min().unwrap_or(0);
    let width = numbers.iter().map(|&n| bits_needed(n.wrapping_sub(min) as u64)).max().unwrap_or(0);
    w.write(min as u64, 64);
    w.write(u64::from(width), 7);
    for &n in numbers {
        w.write(n.wrapping_sub(min) as u64, width);
    }
}

fn decode_for(r: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>> {
    let min = r.read(64)? as i64;
    let width = r.read(7)? as u32;
    if width > 64 {
        return Err(corrupt("bit width over 64"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(min.wrapping_add(r.read(width)? as i64));
    }
    Ok(out)
}

fn encode_decimal_delta(w: &mut BitWriter, ints: &[i64]) {
    let first = ints.first().copied().unwrap_or(0);
    w.write(first as u64, 64);
    let deltas: Vec<i64> = ints.windows(2).map(|p| match p {
        [a, b] => b.wrapping_sub(*a),
        _ => 0,
    }).collect();
    encode_for(w, &deltas);
}

fn decode_decimal_delta(r: &mut BitReader<'_>, count: usize) -> Result<Vec<i64>> {
    let first = r.read(64)? as i64;
    let deltas = decode_for(r, count.saturating_sub(1))?;
    let mut out = Vec::with_capacity(count);
    let mut v = first;
    out.push(v);
    for d in deltas {
        v = v.wrapping_add(d);
        out.push(v);
    }
    out.truncate(count);
    Ok(out)
}

/// Which value codec an encoded block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueCodec {
    /// Gorilla's XOR of consecutive values' bits.
    Xor,
    /// Decimal integers (value × 10^e), bit-packed deltas.
    DecimalDelta,
    /// Decimal integers (value × 10^e), bit-packed values above their minimum.
    DecimalFor,
}

/// Encodes points (timestamps strictly increasing, same length as `values`)
/// with the value codec that gives the fewest bytes, or with `force` if given.
pub(crate) fn encode_block_with(timestamps: &[i64], values: &[f64], force: Option<ValueCodec>) -> Vec<u8> {
    debug_assert_eq!(timestamps.len(), values.len());
    debug_assert!(timestamps.windows(2).all(|p| matches!(p, [a, b] if a < b)));
    let count = timestamps.len() as u32;
    let mut ts = BitWriter::default();
    encode_timestamps(&mut ts, timestamps);
    let mut candidates: Vec<(ValueCodec, u8, Vec<u8>)> = Vec::new();
    #[allow(clippy::unnecessary_map_or)] // is_none_or needs Rust 1.82; the workspace supports 1.80
    let want = |c: ValueCodec| force.map_or(true, |f| f == c);
    if let Some((exponent, ints)) = decimal_integers(values) {
        if want(ValueCodec::DecimalDelta) {
            let mut w = BitWriter::default();
            encode_decimal_delta(&mut w, &ints);
            candidates.push((ValueCodec::DecimalDelta, exponent, w.finish()));
        }
        if want(ValueCodec::DecimalFor) {
            let mut w = BitWriter::default();
            encode_for(&mut w, &ints);
            candidates.push((ValueCodec::DecimalFor, exponent, w.finish()));
        }
    }
    if want(ValueCodec::Xor) || candidates.is_empty() {
        let mut w = BitWriter::default();
        encode_xor(&mut w, values);
        candidates.push((ValueCodec::Xor, 0, w.finish()));
    }
    candidates.sort_by_key(|(_, _, bytes)| bytes.len());
    let (codec, exponent, value_bytes) = candidates.swap_remove(0);
    let ts_bytes = ts.finish();
    let mut out = Vec::with_capacity(HEADER_BYTES + 4 + ts_bytes.len() + value_bytes.len());
    out.push(BLOCK_VERSION);
    out.extend_from_slice(&count.to_le_bytes());
    out.push(TS_CODEC_DOD);
    out.push(match codec {
        ValueCodec::Xor => VALUE_CODEC_XOR,
        ValueCodec::DecimalDelta => VALUE_CODEC_DECIMAL_DELTA,
        ValueCodec::DecimalFor => VALUE_CODEC_DECIMAL_FOR,
    });
    out.push(exponent);
    out.extend_from_slice(&(ts_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&ts_bytes);
    out.extend_from_slice(&value_bytes);
    out
}

/// [`encode_block_with`] choosing the smallest codec.
pub(crate) fn encode_block(timestamps: &[i64], values: &[f64]) -> Vec<u8> {
    encode_block_with(timestamps, values, None)
}

/// The value codec an encoded block uses.
pub(crate) fn block_codec(block: &[u8]) -> Result<ValueCodec> {
    match block.get(6) {
        Some(&VALUE_CODEC_XOR) => Ok(ValueCodec::Xor),
        Some(&VALUE_CODEC_DECIMAL_DELTA) => Ok(ValueCodec::DecimalDelta),
        Some(&VALUE_CODEC_DECIMAL_FOR) => Ok(ValueCodec::DecimalFor),
        _ => Err(corrupt("unknown value codec")),
    }
}

/// Decodes a block: its timestamps and values. Anything malformed is
/// [`Error::Corruption`]; nothing is allocated before the count is checked.
pub(crate) fn decode_block(block: &[u8]) -> Result<(Vec<i64>, Vec<f64>)> {
    let header = block.get(..HEADER_BYTES + 4).ok_or_else(|| corrupt("block shorter than its header"))?;
    let (version, rest) = header.split_first().ok_or_else(|| corrupt("empty block"))?;
    if *version != BLOCK_VERSION {
        return Err(Error::UnsupportedVersion { file: "time-series block".to_string(), found: *version, supported: BLOCK_VERSION });
    }
    let field = |at: usize| -> Result<[u8; 4]> {
        rest.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or_else(|| corrupt("short header"))
    };
    let count = u32::from_le_bytes(field(0)?);
    if count == 0 || count > MAX_BLOCK_POINTS {
        return Err(corrupt(format!("block point count {count} outside 1..={MAX_BLOCK_POINTS}")));
    }
    let ts_codec = rest.get(4).copied().unwrap_or(0);
    let value_codec = block_codec(block)?;
    let exponent = rest.get(6).copied().unwrap_or(0);
    let ts_len = u32::from_le_bytes(field(7)?) as usize;
    if ts_codec != TS_CODEC_DOD {
        return Err(corrupt(format!("unknown timestamp codec {ts_codec}")));
    }
    let body = block.get(HEADER_BYTES + 4..).unwrap_or_default();
    let ts_bytes = body.get(..ts_len).ok_or_else(|| corrupt("timestamp stream past the block's end"))?;
    let value_bytes = body.get(ts_len..).unwrap_or_default();
    let count = count as usize;
    let timestamps = decode_timestamps(&mut BitReader::new(ts_bytes), count)?;
    let mut r = BitReader::new(value_bytes);
    let values = match value_codec {
        ValueCodec::Xor => decode_xor(&mut r, count)?,
        ValueCodec::DecimalDelta => decode_decimal_delta(&mut r, count)?.into_iter().map(|v| decimal_from(v, exponent)).collect::<Result<_>>()?,
        ValueCodec::DecimalFor => decode_for(&mut r, count)?.into_iter().map(|v| decimal_from(v, exponent)).collect::<Result<_>>()?,
    };
    Ok((timestamps, values))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(ts: &[i64], values: &[f64]) -> ValueCodec {
        let block = encode_block(ts, values);
        let (t2, v2) = decode_block(&block).expect("decodes");
        assert_eq!(t2, ts);
        let bits: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let bits2: Vec<u64> = v2.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits2, bits);
        for codec in [ValueCodec::Xor, ValueCodec::DecimalDelta, ValueCodec::DecimalFor] {
            let forced = encode_block_with(ts, values, Some(codec));
            let (t3, v3) = decode_block(&forced).expect("decodes");
            assert_eq!(t3, ts);
            assert_eq!(v3.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), bits);
        }
        block_codec(&block).expect("codec")
    }

    #[test]
    fn special_floats_round_trip_bit_exactly_through_xor() {
        let values = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, f64::from_bits(0x7ff8_dead_beef_0001), f64::MIN_POSITIVE / 2.0, 1.5];
        let ts: Vec<i64> = (0..values.len() as i64).map(|i| i * 1000).collect();
        assert_eq!(round_trip(&ts, &values), ValueCodec::Xor);
    }

    #[test]
    fn one_decimal_values_pick_a_decimal_codec_and_pack_small() {
        let mut v = 20.0f64;
        let mut values = Vec::new();
        for i in 0..1000u64 {
            v = ((v * 10.0).round() + ((i * 7919) % 21) as f64 - 10.0) / 10.0;
            values.push(v);
        }
        let ts: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        let codec = round_trip(&ts, &values);
        assert_ne!(codec, ValueCodec::Xor);
        let block = encode_block(&ts, &values);
        assert!(block.len() < 1000, "{} bytes for 1000 one-decimal points", block.len());
        let xor = encode_block_with(&ts, &values, Some(ValueCodec::Xor));
        assert!(xor.len() > 3 * block.len());
    }

    #[test]
    fn extreme_timestamps_round_trip() {
        round_trip(&[i64::MIN, -1, 0, i64::MAX - 1, i64::MAX], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        round_trip(&[5], &[0.1]);
    }

    #[test]
    fn truncated_or_damaged_blocks_are_corruption() {
        let ts: Vec<i64> = (0..100).map(|i| i * 10).collect();
        let values: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.5).collect();
        let block = encode_block(&ts, &values);
        for cut in 0..block.len() {
            let r = decode_block(&block[..cut]);
            assert!(r.is_err(), "cut at {cut} decoded");
        }
        let mut big = block.clone();
        big[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_block(&big), Err(Error::Corruption { .. })));
    }

    proptest! {
        #[test]
        fn any_points_round_trip(
            start in any::<i64>(),
            gaps in proptest::collection::vec(1i64..100_000, 0..300),
            raw in proptest::collection::vec(any::<u64>(), 301),
            decimals in any::<bool>(),
        ) {
            let mut ts = vec![start];
            for g in gaps {
                match ts.last().and_then(|l: &i64| l.checked_add(g)) {
                    Some(n) => ts.push(n),
                    None => break,
                }
            }
            let values: Vec<f64> = raw.iter().take(ts.len()).map(|&r| {
                if decimals { (r % 100_000) as f64 / 10.0 - 5000.0 } else { f64::from_bits(r) }
            }).collect();
            round_trip(&ts, &values);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod worked_example {
    /// The worked example of `engine/FORMAT.md`, "Time-series blocks".
    #[test]
    fn format_md_block_example() {
        let block = super::encode_block(&[1000, 2000, 3000], &[0.5, 1.5, 1.0]);
        let hex: String = block.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, DOC_BLOCK_HEX);
        let (t, v) = super::decode_block(&block).unwrap();
        assert_eq!((t, v), (vec![1000, 2000, 3000], vec![0.5, 1.5, 1.0]));
    }

    const DOC_BLOCK_HEX: &str = "01030000000103011100000000000000000003e800000000000003e80000000000000000050814a0";
}
