//! Hybrid logical clocks (Kulkarni et al.): a timestamp that follows the wall
//! clock in milliseconds but never goes backwards and always moves past every
//! timestamp the replica has seen, so that a write made after seeing another
//! is ordered after it even when the two devices' clocks disagree.
//!
//! Layout: one `u64`, the physical part (Unix milliseconds) in the high 48
//! bits and a logical counter in the low 16. Ordering the `u64` orders the
//! pairs. When more than 65,535 events fall in one millisecond the counter
//! carries into the physical part: the clock then runs at most a millisecond
//! ahead of the wall clock per 65,536 events, which the drift bound absorbs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter.
pub const LOGICAL_BITS: u32 = 16;

/// Default bound on how far a peer's clock may run ahead of this device's
/// wall clock (60 s). A timestamp further ahead is refused: accepting it would
/// drag every later local write (and, through sync, every device) that far
/// into the future.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 60_000;

/// One hybrid logical clock reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc(pub u64);

impl Hlc {
    /// The reading whose physical part is `ms` and whose counter is `logical`.
    pub fn new(ms: u64, logical: u16) -> Hlc {
        Hlc((ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// Physical part: Unix milliseconds.
    pub fn physical_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// Logical counter.
    pub fn logical(self) -> u16 {
        // The mask keeps the low 16 bits, so the conversion cannot fail.
        u16::try_from(self.0 & 0xFFFF).unwrap_or(u16::MAX)
    }
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a timestamp {ahead_ms} ms ahead of this device's clock is beyond the {max_drift_ms} ms drift bound")]
pub struct ClockSkew {
    /// How far ahead of the local wall clock the timestamp was.
    pub ahead_ms: u64,
    /// The bound in force.
    pub max_drift_ms: u64,
}

/// The current wall clock in Unix milliseconds (0 before 1970).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> LOGICAL_BITS))
}

/// A hybrid logical clock. The caller supplies the wall clock reading to
/// every call, so tests drive time by hand.
#[derive(Debug, Clone)]
pub struct Clock {
    last: Hlc,
    max_drift_ms: u64,
}

impl Clock {
    /// A clock that starts after `high_water` (the newest timestamp the replica
    /// issued or saw before, persisted by the caller), so that a restart with
    /// a wall clock set back never reissues an older timestamp.
    pub fn new(high_water: Hlc, max_drift_ms: u64) -> Clock {
        Clock { last: high_water, max_drift_ms }
    }

    /// The newest timestamp issued or seen.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// The drift bound.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// A new timestamp for a local event: the wall clock if it is ahead of
    /// everything seen, else one tick past the newest timestamp seen.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        let wall = Hlc::new(wall_ms, 0);
        self.last = if wall > self.last { wall } else { Hlc(self.last.0.saturating_add(1)) };
        self.last
    }

    /// Checks `remote` against the drift bound without taking it in.
    pub fn check(&self, remote: Hlc, wall_ms: u64) -> Result<(), ClockSkew> {
        let ahead_ms = remote.physical_ms().saturating_sub(wall_ms);
        if ahead_ms > self.max_drift_ms {
            return Err(ClockSkew { ahead_ms, max_drift_ms: self.max_drift_ms });
        }
        Ok(())
    }

    /// Takes in a timestamp seen from another replica, so that every later
    /// local timestamp is greater; refused (and not taken in) beyond the
    /// drift bound.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<(), ClockSkew> {
        self.check(remote, wall_ms)?;
        self.last = self.last.max(remote);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_when_the_wall_clock_goes_back() {
        let mut c = Clock::new(Hlc::default(), DEFAULT_MAX_DRIFT_MS);
        let a = c.tick(1_000);
        let b = c.tick(1_000);
        let d = c.tick(500);
        assert!(a < b && b < d);
        assert_eq!(a, Hlc::new(1_000, 0));
        assert_eq!(b, Hlc::new(1_000, 1));
        assert_eq!(c.tick(2_000), Hlc::new(2_000, 0));
    }

    #[test]
    fn a_restart_from_the_high_water_mark_never_reissues_a_timestamp() {
        let mut c = Clock::new(Hlc::default(), DEFAULT_MAX_DRIFT_MS);
        let before = c.tick(5_000);
        let mut restarted = Clock::new(c.last(), DEFAULT_MAX_DRIFT_MS);
        assert!(restarted.tick(4_000) > before);
    }

    #[test]
    fn observed_timestamps_order_later_local_ones_and_the_drift_bound_holds() {
        let mut c = Clock::new(Hlc::default(), 1_000);
        c.observe(Hlc::new(1_900, 7), 1_000).unwrap();
        assert_eq!(c.tick(1_000), Hlc::new(1_900, 8));
        let err = c.observe(Hlc::new(2_001, 0), 1_000).unwrap_err();
        assert_eq!(err, ClockSkew { ahead_ms: 1_001, max_drift_ms: 1_000 });
        assert_eq!(c.last(), Hlc::new(1_900, 8), "a refused timestamp is not taken in");
    }

    #[test]
    fn the_counter_carries_into_the_physical_part() {
        let mut c = Clock::new(Hlc::new(10, u16::MAX), DEFAULT_MAX_DRIFT_MS);
        assert_eq!(c.tick(10), Hlc::new(11, 0));
    }
}
