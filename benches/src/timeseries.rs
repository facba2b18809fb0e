//! Time-series workload data shared by the `compare-ts` harness: regular
//! 10-second points of a one-decimal random walk and of a repeating integer
//! gauge, derived from a seed, and the bytes per point their blocks take with
//! the store's codec choice and with Gorilla's XOR alone.

use crate::data::Rng;
use synapsed_storage::{encoded_block_bytes, ValueCodec, BLOCK_POINTS};

/// Milliseconds between points.
pub const INTERVAL_MS: i64 = 10_000;
/// Timestamp of the first point (2024-01-01T00:00:00Z).
pub const START_MS: i64 = 1_704_067_200_000;

/// The kinds of data the targets are stated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A random walk rounded to one decimal: each step adds a multiple of 0.1
    /// in [-1.0, 1.0].
    OneDecimalWalk,
    /// An integer gauge that mostly repeats: 9 points in 10 keep the value,
    /// the others move it by -3..=3.
    RepeatingGauge,
}

impl Shape {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::OneDecimalWalk => "one-decimal random walk",
            Shape::RepeatingGauge => "repeating integer gauge",
        }
    }
}

/// `n` points of `shape`, every [`INTERVAL_MS`] from [`START_MS`].
pub fn points(shape: Shape, n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut ts = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut tenths: i64 = 200;
    let mut gauge: i64 = 40;
    for i in 0..n {
        ts.push(START_MS + i as i64 * INTERVAL_MS);
        match shape {
            Shape::OneDecimalWalk => {
                tenths += rng.below(21) as i64 - 10;
                values.push(tenths as f64 / 10.0);
            }
            Shape::RepeatingGauge => {
                if rng.below(10) == 0 {
                    gauge += rng.below(7) as i64 - 3;
                }
                values.push(gauge as f64);
            }
        }
    }
    (ts, values)
}

/// Bytes per point of the encoded blocks alone (no keys, summaries or
/// engine overhead), in blocks of [`BLOCK_POINTS`], with `codec` forced or
/// (`None`) chosen per block as the store does.
pub fn block_bytes_per_point(ts: &[i64], values: &[f64], codec: Option<ValueCodec>) -> f64 {
    let total: usize = ts
        .chunks(BLOCK_POINTS)
        .zip(values.chunks(BLOCK_POINTS))
        .map(|(t, v)| encoded_block_bytes(t, v, codec).unwrap_or(0))
        .sum();
    total as f64 / ts.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_targets_hold_for_the_blocks_and_xor_is_far_behind_on_decimals() {
        let (t, v) = points(Shape::OneDecimalWalk, 100_000, 1);
        let chosen = block_bytes_per_point(&t, &v, None);
        let xor = block_bytes_per_point(&t, &v, Some(ValueCodec::Xor));
        assert!(chosen <= 2.5, "{chosen}");
        assert!(xor > 3.0 * chosen, "{xor} vs {chosen}");
        let (t, v) = points(Shape::RepeatingGauge, 100_000, 1);
        let chosen = block_bytes_per_point(&t, &v, None);
        assert!(chosen <= 1.0, "{chosen}");
    }
}
