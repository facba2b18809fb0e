//! Byte damage driven by a fuzz input: the part of a harness that turns the
//! rest of an input into changes to a file's bytes (flipped, zeroed, copied,
//! inserted or cut), so the decoder under test meets damaged files.

use crate::FuzzInput;

/// Most damage operations one input applies.
pub const MAX_DAMAGE_OPS: usize = 16;

/// One kind of damage. A harness lists the kinds it uses; the input's operation
/// byte, modulo the list's length, picks one. Positions are read as `u32` and
/// taken modulo the current length, so every operation applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// `pos u32, mask u8`: `bytes[pos] ^= mask`.
    Xor,
    /// `len u32`: cut to `len` (modulo length + 1).
    Truncate,
    /// `n u8`, then `n` bytes: append them.
    Append,
    /// `n u16`: append `n % 8192` zeros.
    AppendZeros,
    /// `pos u32, n u8`: zero `n` bytes from `pos`.
    ZeroRange,
    /// `from u32, to u32, n u16`: copy `n` bytes from `from` over those at `to`.
    CopyRange,
    /// `pos u32, n u8`, then `n` bytes: insert them at `pos`.
    Insert,
}

/// Applies up to [`MAX_DAMAGE_OPS`] operations read from `input` to `bytes`,
/// each an operation byte choosing among `kinds` and then its arguments (see
/// [`Damage`]). Stops when the input is used up. `kinds` must not be empty.
pub fn apply_damage(bytes: &mut Vec<u8>, input: &mut FuzzInput<'_>, kinds: &[Damage]) {
    for _ in 0..MAX_DAMAGE_OPS {
        if input.is_empty() || kinds.is_empty() {
            return;
        }
        let pick = usize::from(input.u8()) % kinds.len();
        let len = bytes.len();
        let pos = |v: u32, n: usize| if n == 0 { 0 } else { v as usize % n };
        match kinds.get(pick).copied().unwrap_or(Damage::Xor) {
            Damage::Xor => {
                let (at, mask) = (pos(input.u32(), len), input.u8());
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= mask;
                }
            }
            Damage::Truncate => bytes.truncate(pos(input.u32(), len + 1)),
            Damage::Append => {
                let n = usize::from(input.u8());
                bytes.extend_from_slice(input.bytes(n));
            }
            Damage::AppendZeros => {
                let n = usize::from(input.u16() % 8192);
                bytes.resize(len + n, 0);
            }
            Damage::ZeroRange => {
                let (at, n) = (pos(input.u32(), len), usize::from(input.u8()));
                for b in bytes.iter_mut().skip(at).take(n) {
                    *b = 0;
                }
            }
            Damage::CopyRange => {
                let (from, to, n) = (pos(input.u32(), len), pos(input.u32(), len), usize::from(input.u16()));
                let chunk: Vec<u8> = bytes.iter().skip(from).take(n).copied().collect();
                for (dst, src) in bytes.iter_mut().skip(to).zip(chunk) {
                    *dst = src;
                }
            }
            Damage::Insert => {
                let (at, n) = (pos(input.u32(), len + 1), usize::from(input.u8()));
                let insert = input.bytes(n).to_vec();
                let tail = bytes.split_off(at.min(len));
                bytes.extend_from_slice(&insert);
                bytes.extend_from_slice(&tail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Damage; 7] = [
        Damage::Xor,
        Damage::Truncate,
        Damage::Append,
        Damage::AppendZeros,
        Damage::ZeroRange,
        Damage::CopyRange,
        Damage::Insert,
    ];

    fn damaged(ops: &[u8]) -> Vec<u8> {
        let mut bytes = b"0123456789".to_vec();
        apply_damage(&mut bytes, &mut FuzzInput::new(ops), &ALL);
        bytes
    }

    #[test]
    fn each_operation_does_what_its_table_row_says() {
        assert_eq!(damaged(&[0, 12, 0, 0, 0, 0x01]), b"0133456789");
        assert_eq!(damaged(&[1, 4, 0, 0, 0]), b"0123");
        assert_eq!(damaged(&[2, 2, b'a', b'b']), b"0123456789ab");
        assert_eq!(damaged(&[3, 2, 0]), b"0123456789\0\0");
        assert_eq!(damaged(&[4, 8, 0, 0, 0, 5]), b"01234567\0\0");
        assert_eq!(damaged(&[5, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0]), b"0123456019");
        assert_eq!(damaged(&[6, 1, 0, 0, 0, 1, b'x']), b"0x123456789");
        assert_eq!(damaged(&[]), b"0123456789");
    }

    #[test]
    fn the_kind_list_decides_what_an_operation_byte_means() {
        let mut bytes = b"abc".to_vec();
        apply_damage(&mut bytes, &mut FuzzInput::new(&[1, 0, 0, 0, 0]), &[Damage::Xor, Damage::Append]);
        assert_eq!(bytes, b"abc", "byte 1 picks Append of 0 bytes, not Truncate");
        apply_damage(&mut bytes, &mut FuzzInput::new(&[0, 0, 0, 0, 0]), &[]);
        assert_eq!(bytes, b"abc");
    }
}
