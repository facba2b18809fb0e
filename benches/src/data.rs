//! Workload data after redb's published benchmark: random 24-byte keys and
//! random 150-byte values. Key `i` is a pure function of the seed and `i`, and
//! each value a pure function of the seed and its key, so a reader can pick a
//! random index and know both the key to ask for and the value it must get
//! back, a range read can check every pair it meets, and the harness never
//! holds N pairs in memory (which would inflate every engine's peak RSS alike).

/// Key length of the standard workload.
pub const KEY_BYTES: usize = 24;
/// Value length of the standard workload.
pub const VALUE_BYTES: usize = 150;

/// SplitMix64: a tiny, fast, well-distributed generator; good enough for test
/// data, and stateless per call so that `key(i)` needs no sequence.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fill(out: &mut [u8], mut state: u64) {
    for chunk in out.chunks_mut(8) {
        state = splitmix64(state);
        let bytes = state.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(bytes.get(..n).unwrap_or(&bytes));
    }
}

/// The keys and values of one run.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    seed: u64,
}

impl Workload {
    /// The workload derived from `seed`.
    pub fn new(seed: u64) -> Self {
        Workload { seed }
    }

    /// Key number `i`.
    pub fn key(&self, i: u64) -> [u8; KEY_BYTES] {
        let mut k = [0u8; KEY_BYTES];
        fill(&mut k, self.seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f));
        k
    }

    /// Value number `i`: the value of key `i`.
    pub fn value(&self, i: u64) -> [u8; VALUE_BYTES] {
        self.value_of_key(&self.key(i))
    }

    /// The value that belongs to `key` (any bytes): what a reader must find
    /// beside it, whichever index it was written as.
    pub fn value_of_key(&self, key: &[u8]) -> [u8; VALUE_BYTES] {
        let mut state = splitmix64(!self.seed ^ key.len() as u64);
        for chunk in key.chunks(8) {
            let mut b = [0u8; 8];
            b.get_mut(..chunk.len()).unwrap_or(&mut []).copy_from_slice(chunk);
            state = splitmix64(state ^ u64::from_le_bytes(b));
        }
        let mut v = [0u8; VALUE_BYTES];
        fill(&mut v, state.wrapping_mul(0xe703_7ed1_a0b4_28db));
        v
    }
}

/// A small random-number source for picking indexes (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Rng(splitmix64(seed) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn keys_and_values_are_deterministic_and_distinct() {
        let w = Workload::new(7);
        assert_eq!(w.key(3), Workload::new(7).key(3));
        assert_ne!(w.key(3), w.key(4));
        assert_ne!(w.key(3), Workload::new(8).key(3));
        assert_ne!(w.value(3), w.value(4));
        let keys: std::collections::HashSet<_> = (0..10_000).map(|i| w.key(i)).collect();
        assert_eq!(keys.len(), 10_000);
    }

    #[test]
    fn every_value_follows_from_its_key() {
        let w = Workload::new(7);
        for i in 0..100 {
            assert_eq!(w.value(i), w.value_of_key(&w.key(i)));
        }
        assert_ne!(w.value_of_key(b"a"), w.value_of_key(b"b"));
        assert_ne!(w.value_of_key(b"a"), w.value_of_key(b"a\0"), "a key and its zero-padded form differ");
        assert_ne!(Workload::new(8).value_of_key(b"a"), w.value_of_key(b"a"), "the seed matters");
    }

    #[test]
    fn rng_stays_below_bound() {
        let mut r = Rng::new(0);
        let picks: Vec<u64> = (0..1000).map(|_| r.below(10)).collect();
        assert!(picks.iter().all(|&p| p < 10));
        assert!((0..10).all(|d| picks.contains(&d)), "every digit is drawn in 1000 picks");
    }
}
