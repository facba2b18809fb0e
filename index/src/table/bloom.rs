//! The whole-table bloom filter over user keys, checked by point lookups before the
//! block index. Body: `bit array (m bytes) | probes u8`; probe positions come from
//! one 64-bit hash by double hashing (Kirsch–Mitzenmacher).

/// Collects key hashes while a table is built.
pub(crate) struct BloomBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

/// Probes for `bits_per_key`: k = bits · ln 2, kept in 1..=30.
fn probes(bits_per_key: u32) -> u8 {
    ((f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32).clamp(1, 30) as u8
}

impl BloomBuilder {
    pub(crate) fn new(bits_per_key: u32) -> Self {
        BloomBuilder { bits_per_key, hashes: Vec::new() }
    }

    /// Adds a user key; consecutive duplicates (versions of one key) are added once.
    pub(crate) fn add(&mut self, user_key: &[u8]) {
        let h = hash64(user_key);
        if self.hashes.last() != Some(&h) {
            self.hashes.push(h);
        }
    }

    /// The filter body.
    pub(crate) fn finish(&self) -> Vec<u8> {
        let k = probes(self.bits_per_key);
        let bits = (self.hashes.len() as u64 * u64::from(self.bits_per_key)).max(64);
        let bytes = bits.div_ceil(8) as usize;
        let bits = bytes as u64 * 8;
        let mut out = vec![0u8; bytes + 1];
        for &h in &self.hashes {
            let (mut a, b) = split(h);
            for _ in 0..k {
                let bit = a % bits;
                if let Some(byte) = out.get_mut((bit / 8) as usize) {
                    *byte |= 1 << (bit % 8);
                }
                a = a.wrapping_add(b);
            }
        }
        if let Some(last) = out.last_mut() {
            *last = k;
        }
        out
    }
}

/// A decoded filter.
pub(crate) struct BloomFilter {
    bits: Vec<u8>,
    probes: u8,
}

impl BloomFilter {
    /// Parses a filter body; `None` if malformed.
    pub(crate) fn decode(mut body: Vec<u8>) -> Option<Self> {
        let probes = body.pop()?;
        if body.is_empty() || !(1..=30).contains(&probes) {
            return None;
        }
        Some(BloomFilter { bits: body, probes })
    }

    /// False only if `user_key` is certainly absent.
    pub(crate) fn may_contain(&self, user_key: &[u8]) -> bool {
        let bits = self.bits.len() as u64 * 8;
        let (mut a, b) = split(hash64(user_key));
        for _ in 0..self.probes {
            let bit = a % bits;
            match self.bits.get((bit / 8) as usize) {
                Some(byte) if byte & (1 << (bit % 8)) != 0 => {}
                _ => return false,
            }
            a = a.wrapping_add(b);
        }
        true
    }
}

pub(crate) fn split(h: u64) -> (u64, u64) {
    // An odd step keeps successive probes distinct modulo any power-of-two size.
    (h, h.rotate_left(31) | 1)
}

/// A fast 64-bit hash (wyhash-style multiply-mix over 8-byte words); the filter is
/// encrypted on disk, so it need not resist chosen keys, only spread them well.
pub(crate) fn hash64(data: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    fn mix(a: u64, b: u64) -> u64 {
        let r = u128::from(a).wrapping_mul(u128::from(b));
        (r as u64) ^ ((r >> 64) as u64)
    }
    let mut h = P0 ^ (data.len() as u64).wrapping_mul(P1);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w), P1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        h = mix(h ^ u64::from_le_bytes(w) ^ 0xff, P0);
    }
    mix(h ^ (h >> 29), P1 ^ 0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn no_false_negatives_and_false_positive_rate_near_theory() {
        for bits_per_key in [6u32, 10, 16] {
            let n = 100_000u32;
            let mut b = BloomBuilder::new(bits_per_key);
            for i in 0..n {
                b.add(format!("user-key-{i:08}").as_bytes());
            }
            let f = BloomFilter::decode(b.finish()).unwrap();
            for i in 0..n {
                assert!(f.may_contain(format!("user-key-{i:08}").as_bytes()));
            }
            let trials = 200_000u32;
            let fp = (0..trials).filter(|i| f.may_contain(format!("absent-{i:08}").as_bytes())).count();
            let rate = fp as f64 / f64::from(trials);
            let k = f64::from(probes(bits_per_key));
            let theory = (1.0 - (-k / f64::from(bits_per_key)).exp()).powf(k);
            assert!(rate < theory * 1.35 && rate > theory * 0.65, "bits {bits_per_key}: rate {rate} vs theory {theory}");
        }
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert!(BloomFilter::decode(Vec::new()).is_none());
        assert!(BloomFilter::decode(vec![7]).is_none());
        assert!(BloomFilter::decode(vec![0xff, 0]).is_none());
        assert!(BloomFilter::decode(vec![0xff, 31]).is_none());
    }
}
