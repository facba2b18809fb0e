//! What the fuzzing modules of the synapsed-storage crates share: [`FuzzInput`]
//! reads fixed-width fields off a fuzz input, [`apply_damage`] turns the rest of
//! an input into damage done to a file's bytes, [`must`] unwraps what a harness
//! expects to succeed, and [`CorpusReplay`] replays the committed corpus on
//! stable Rust. Each crate's `fuzzing` module (behind its `fuzzing` feature)
//! builds its entry points on these; nothing here is in a release library.

#![deny(missing_docs)]

mod corpus;
mod damage;

pub use corpus::{CorpusReplay, NamedInputs};
pub use damage::{apply_damage, Damage, MAX_DAMAGE_OPS};

/// Reads fixed-width little-endian fields off the front of a fuzz input; past
/// the end every read yields zeros, so any input drives a whole run. The
/// `*_exact` readers instead return `None` when the input ends first, for
/// decoders whose models refuse short input.
#[derive(Debug)]
pub struct FuzzInput<'a> {
    rest: &'a [u8],
}

impl<'a> FuzzInput<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        FuzzInput { rest: data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.rest.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.rest = rest;
        first
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// The next `n` bytes, or fewer at the end.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        head
    }

    /// The next four bytes, little-endian, or `None` (reading nothing) if fewer are left.
    pub fn u32_exact(&mut self) -> Option<u32> {
        let (head, tail) = self.rest.split_first_chunk::<4>()?;
        self.rest = tail;
        Some(u32::from_le_bytes(*head))
    }

    /// The next eight bytes, little-endian, or `None` (reading nothing) if fewer are left.
    pub fn u64_exact(&mut self) -> Option<u64> {
        let (head, tail) = self.rest.split_first_chunk::<8>()?;
        self.rest = tail;
        Some(u64::from_le_bytes(*head))
    }

    /// The next `n` bytes, or `None` (reading nothing) if fewer are left.
    pub fn bytes_exact(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        Some(self.bytes(n))
    }
}

/// Unwraps `result`, or panics naming `what`: for steps a harness set up itself
/// and expects to succeed (a panic is then a bug in the code under test).
pub fn must<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("fuzz harness: {what} failed: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_as_zeros_and_exact_reads_refuse() {
        let mut input = FuzzInput::new(&[1, 2, 3, 4, 5]);
        assert_eq!(input.u16(), 0x0201);
        assert_eq!(input.u64_exact(), None);
        assert_eq!(input.u32_exact(), None);
        assert_eq!(input.rest(), &[3, 4, 5]);
        assert_eq!(input.bytes_exact(4), None);
        assert_eq!(input.bytes_exact(2), Some(&[3, 4][..]));
        assert_eq!(input.u32(), 5);
        assert!(input.is_empty());
        assert_eq!(input.u64(), 0);
    }
}
