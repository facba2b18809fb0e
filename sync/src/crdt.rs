//! Merge states of the replicated keys that merge instead of last-writer-wins:
//! a PN-counter (the engine's `U64AddOperator` keyspaces), an add-wins
//! observed-remove set (`SortedSetUnion` keyspaces) and a map of
//! last-writer-wins fields (replicated documents).
//!
//! A replica sends such a key's whole state as the entry's value. Every state
//! kind has a join (`CrdtState::join`): commutative, associative and
//! idempotent, so replicas that have received the same writes hold equal
//! states whatever the order of arrival, and equal states encode to equal
//! bytes (the encoding is canonical: every list ascending, checked on
//! decode). Byte layout: `sync/FORMAT.md`, "Merge states".

use std::collections::{BTreeMap, BTreeSet};

use crate::hlc::Hlc;
use crate::version::{ReplicaId, Version, VERSION_BYTES};

/// First byte of every encoded merge state.
pub const STATE_MAGIC: u8 = 0xC7;
/// Version of the merge state encoding.
pub const STATE_VERSION: u8 = 1;

/// Which merge rule a key follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrdtKind {
    /// PN-counter: per replica, the sums of its increments and decrements.
    Counter,
    /// Add-wins observed-remove set of byte strings.
    Set,
    /// Map of fields, each a last-writer-wins register (or a field deletion).
    Fields,
}

impl CrdtKind {
    /// The kind's byte in the encoding.
    pub fn code(self) -> u8 {
        match self {
            CrdtKind::Counter => 1,
            CrdtKind::Set => 2,
            CrdtKind::Fields => 3,
        }
    }
}

/// Why a merge state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merge state: {0}")]
pub struct CrdtError(pub String);

fn bad<T>(what: &str) -> Result<T, CrdtError> {
    Err(CrdtError(what.to_owned()))
}

/// PN-counter: for each replica, the total it added and the total it took
/// away. Each replica only ever raises its own two totals, so the join is the
/// larger of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PnCounter {
    parts: BTreeMap<ReplicaId, (u128, u128)>,
}

impl PnCounter {
    /// Adds `delta` (read as a signed 64-bit number, as the engine's
    /// wrapping counter operands are) to `replica`'s totals.
    pub fn add(&mut self, replica: ReplicaId, delta: u64) -> Result<(), CrdtError> {
        let signed = delta as i64;
        let part = self.parts.entry(replica).or_default();
        let slot = if signed >= 0 { &mut part.0 } else { &mut part.1 };
        *slot = slot.checked_add(u128::from(signed.unsigned_abs())).ok_or_else(|| CrdtError("a counter total past 2^128".into()))?;
        Ok(())
    }

    /// The counter's value modulo 2^64 (what the wrapping counter reads).
    pub fn value(&self) -> u64 {
        let (p, n) = self.parts.values().fold((0u128, 0u128), |(p, n), (a, b)| (p.wrapping_add(*a), n.wrapping_add(*b)));
        // Truncation keeps the value modulo 2^64, the counter's arithmetic.
        p.wrapping_sub(n) as u64
    }

    fn join(&self, other: &PnCounter) -> PnCounter {
        let mut parts = self.parts.clone();
        for (r, (p, n)) in &other.parts {
            let slot = parts.entry(*r).or_default();
            *slot = (slot.0.max(*p), slot.1.max(*n));
        }
        PnCounter { parts }
    }
}

/// Add-wins observed-remove set. Each add tags its element with the add's
/// version (a "dot"); `seen` holds, per replica, the newest clock of that
/// replica's operations folded into this state. A remove drops the dots it
/// observed. The join keeps a dot held by both sides, or held by one side
/// and not yet seen by the other (so a concurrent add survives a remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrSet {
    seen: BTreeMap<ReplicaId, Hlc>,
    dots: BTreeSet<(Vec<u8>, ReplicaId, Hlc)>,
}

impl OrSet {
    fn note(&mut self, op: Version) {
        let slot = self.seen.entry(op.replica).or_default();
        *slot = (*slot).max(op.hlc);
    }

    fn drop_element(&mut self, element: &[u8]) {
        self.dots.retain(|(e, _, _)| e.as_slice() != element);
    }

    /// Adds `element` by the operation `op` (its dot replaces the element's
    /// dots observed here).
    pub fn add(&mut self, element: &[u8], op: Version) {
        self.drop_element(element);
        self.dots.insert((element.to_vec(), op.replica, op.hlc));
        self.note(op);
    }

    /// Removes `element` as observed here, by the operation `op`.
    pub fn remove(&mut self, element: &[u8], op: Version) {
        self.drop_element(element);
        self.note(op);
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &[u8]) -> bool {
        self.dots.iter().any(|(e, _, _)| e.as_slice() == element)
    }

    /// The elements, ascending, each once.
    pub fn elements(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for (e, _, _) in &self.dots {
            if out.last() != Some(e) {
                out.push(e.clone());
            }
        }
        out
    }

    /// Each element with the version of the add that put it there (its dot).
    pub fn dots(&self) -> impl Iterator<Item = (&[u8], Version)> + '_ {
        self.dots.iter().map(|(e, r, h)| (e.as_slice(), Version { hlc: *h, replica: *r }))
    }

    fn covers(&self, replica: ReplicaId, hlc: Hlc) -> bool {
        self.seen.get(&replica).is_some_and(|s| *s >= hlc)
    }

    fn join(&self, other: &OrSet) -> OrSet {
        let mut dots = BTreeSet::new();
        for d in &self.dots {
            if other.dots.contains(d) || !other.covers(d.1, d.2) {
                dots.insert(d.clone());
            }
        }
        for d in &other.dots {
            if !self.dots.contains(d) && !self.covers(d.1, d.2) {
                dots.insert(d.clone());
            }
        }
        let mut seen = self.seen.clone();
        for (r, h) in &other.seen {
            let slot = seen.entry(*r).or_default();
            *slot = (*slot).max(*h);
        }
        OrSet { seen, dots }
    }
}

/// Map of fields (a document's top-level fields, as opaque bytes), each a
/// last-writer-wins register: the write with the greater version wins,
/// field by field, and a deleted field keeps its version as a tombstone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    fields: BTreeMap<Vec<u8>, (Version, Option<Vec<u8>>)>,
}

impl FieldMap {
    /// Sets (`Some`) or deletes (`None`) field `name` by the write `op`, if
    /// `op` is newer than the field's current version.
    pub fn set(&mut self, name: &[u8], value: Option<Vec<u8>>, op: Version) {
        match self.fields.get(name) {
            Some((v, _)) if *v >= op => {}
            _ => {
                self.fields.insert(name.to_vec(), (op, value));
            }
        }
    }

    /// The value of field `name` (`None`: absent or deleted).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields.get(name).and_then(|(_, v)| v.as_deref())
    }

    /// The present fields, by name.
    pub fn present(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().filter_map(|(k, (_, v))| v.as_deref().map(|v| (k.as_slice(), v)))
    }

    /// Names of every field with a version, deleted ones included.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.fields.keys().map(Vec::as_slice)
    }

    fn join(&self, other: &FieldMap) -> FieldMap {
        let mut fields = self.fields.clone();
        for (k, (v, val)) in &other.fields {
            match fields.get(k) {
                Some((mine, _)) if mine >= v => {}
                _ => {
                    fields.insert(k.clone(), (*v, val.clone()));
                }
            }
        }
        FieldMap { fields }
    }
}

/// The merge state of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrdtState {
    /// A PN-counter.
    Counter(PnCounter),
    /// An observed-remove set.
    Set(OrSet),
    /// A map of last-writer-wins fields.
    Fields(FieldMap),
}

impl CrdtState {
    /// The empty state of `kind` (what a key with no writes holds).
    pub fn empty(kind: CrdtKind) -> CrdtState {
        match kind {
            CrdtKind::Counter => CrdtState::Counter(PnCounter::default()),
            CrdtKind::Set => CrdtState::Set(OrSet::default()),
            CrdtKind::Fields => CrdtState::Fields(FieldMap::default()),
        }
    }

    /// The state's kind.
    pub fn kind(&self) -> CrdtKind {
        match self {
            CrdtState::Counter(_) => CrdtKind::Counter,
            CrdtState::Set(_) => CrdtKind::Set,
            CrdtState::Fields(_) => CrdtKind::Fields,
        }
    }

    /// The join of two states of one kind (commutative, associative,
    /// idempotent); states of different kinds are an error.
    pub fn join(&self, other: &CrdtState) -> Result<CrdtState, CrdtError> {
        match (self, other) {
            (CrdtState::Counter(a), CrdtState::Counter(b)) => Ok(CrdtState::Counter(a.join(b))),
            (CrdtState::Set(a), CrdtState::Set(b)) => Ok(CrdtState::Set(a.join(b))),
            (CrdtState::Fields(a), CrdtState::Fields(b)) => Ok(CrdtState::Fields(a.join(b))),
            _ => bad("two states of different kinds"),
        }
    }

    /// The canonical bytes (`sync/FORMAT.md`, "Merge states").
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![STATE_MAGIC, STATE_VERSION, self.kind().code()];
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        match self {
            CrdtState::Counter(c) => {
                out.extend_from_slice(&len(c.parts.len()));
                for (r, (p, n)) in &c.parts {
                    out.extend_from_slice(&r.0.to_le_bytes());
                    out.extend_from_slice(&p.to_le_bytes());
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            CrdtState::Set(s) => {
                out.extend_from_slice(&len(s.seen.len()));
                for (r, h) in &s.seen {
                    out.extend_from_slice(&r.0.to_le_bytes());
                    out.extend_from_slice(&h.0.to_le_bytes());
                }
                out.extend_from_slice(&len(s.dots.len()));
                for (e, r, h) in &s.dots {
                    out.extend_from_slice(&len(e.len()));
                    out.extend_from_slice(e);
                    out.extend_from_slice(&r.0.to_le_bytes());
                    out.extend_from_slice(&h.0.to_le_bytes());
                }
            }
            CrdtState::Fields(f) => {
                out.extend_from_slice(&len(f.fields.len()));
                for (k, (v, val)) in &f.fields {
                    out.extend_from_slice(&len(k.len()));
                    out.extend_from_slice(k);
                    out.extend_from_slice(&v.to_bytes());
                    match val {
                        None => out.push(0),
                        Some(val) => {
                            out.push(1);
                            out.extend_from_slice(&len(val.len()));
                            out.extend_from_slice(val);
                        }
                    }
                }
            }
        }
        out
    }

    /// Reads an encoded state of `kind`; anything else (another kind or
    /// version, lists out of order or repeated, a set's dot newer than what
    /// its state has seen, truncated or trailing bytes) is an error.
    pub fn decode(kind: CrdtKind, bytes: &[u8]) -> Result<CrdtState, CrdtError> {
        let mut r = Reader(bytes);
        if r.u8()? != STATE_MAGIC {
            return bad("not a merge state");
        }
        if r.u8()? != STATE_VERSION {
            return bad("an unknown merge state version");
        }
        if r.u8()? != kind.code() {
            return bad("a merge state of another kind");
        }
        let state = match kind {
            CrdtKind::Counter => {
                let n = r.count(8 + 32)?;
                let mut parts = BTreeMap::new();
                let mut last: Option<ReplicaId> = None;
                for _ in 0..n {
                    let id = ReplicaId(r.u64()?);
                    if last.is_some_and(|l| l >= id) {
                        return bad("counter parts out of order");
                    }
                    last = Some(id);
                    parts.insert(id, (r.u128()?, r.u128()?));
                }
                CrdtState::Counter(PnCounter { parts })
            }
            CrdtKind::Set => {
                let n = r.count(16)?;
                let mut seen = BTreeMap::new();
                let mut last: Option<ReplicaId> = None;
                for _ in 0..n {
                    let id = ReplicaId(r.u64()?);
                    if last.is_some_and(|l| l >= id) {
                        return bad("set context out of order");
                    }
                    last = Some(id);
                    seen.insert(id, Hlc(r.u64()?));
                }
                let n = r.count(4 + 16)?;
                let mut dots = BTreeSet::new();
                let mut prev: Option<(Vec<u8>, ReplicaId, Hlc)> = None;
                for _ in 0..n {
                    let e = r.bytes()?.to_vec();
                    let dot = (e, ReplicaId(r.u64()?), Hlc(r.u64()?));
                    if prev.as_ref().is_some_and(|p| *p >= dot) {
                        return bad("set elements out of order");
                    }
                    if seen.get(&dot.1).is_none_or(|s| *s < dot.2) {
                        return bad("a set element newer than the state's context");
                    }
                    prev = Some(dot.clone());
                    dots.insert(dot);
                }
                CrdtState::Set(OrSet { seen, dots })
            }
            CrdtKind::Fields => {
                let n = r.count(4 + VERSION_BYTES + 1)?;
                let mut fields = BTreeMap::new();
                let mut last: Option<Vec<u8>> = None;
                for _ in 0..n {
                    let k = r.bytes()?.to_vec();
                    if last.as_ref().is_some_and(|l| *l >= k) {
                        return bad("fields out of order");
                    }
                    last = Some(k.clone());
                    let v = Version::from_bytes(r.take(VERSION_BYTES)?).ok_or_else(|| CrdtError("a field version".into()))?;
                    let val = match r.u8()? {
                        0 => None,
                        1 => Some(r.bytes()?.to_vec()),
                        _ => return bad("a field flag other than 0 or 1"),
                    };
                    fields.insert(k, (v, val));
                }
                CrdtState::Fields(FieldMap { fields })
            }
        };
        if !r.0.is_empty() {
            return bad("trailing bytes");
        }
        Ok(state)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CrdtError> {
        if n > self.0.len() {
            return bad("truncated");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CrdtError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    fn u32(&mut self) -> Result<u32, CrdtError> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| CrdtError("truncated".into()))?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, CrdtError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| CrdtError("truncated".into()))?;
        Ok(u64::from_le_bytes(b))
    }

    fn u128(&mut self) -> Result<u128, CrdtError> {
        let b: [u8; 16] = self.take(16)?.try_into().map_err(|_| CrdtError("truncated".into()))?;
        Ok(u128::from_le_bytes(b))
    }

    /// A count of items of at least `min_bytes` each, bounded by the bytes left.
    fn count(&mut self, min_bytes: usize) -> Result<usize, CrdtError> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min_bytes {
            return bad("a count larger than the bytes that follow");
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], CrdtError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn v(hlc: u64, r: u64) -> Version {
        Version { hlc: Hlc(hlc), replica: ReplicaId(r) }
    }

    #[test]
    fn counter_joins_concurrent_increments_and_decrements() {
        let mut a = PnCounter::default();
        let mut b = PnCounter::default();
        a.add(ReplicaId(1), 5).unwrap();
        b.add(ReplicaId(2), 3).unwrap();
        b.add(ReplicaId(2), 1u64.wrapping_neg()).unwrap();
        let (sa, sb) = (CrdtState::Counter(a), CrdtState::Counter(b));
        let ab = sa.join(&sb).unwrap();
        assert_eq!(ab, sb.join(&sa).unwrap());
        assert_eq!(ab.join(&sa).unwrap(), ab);
        let CrdtState::Counter(c) = &ab else { panic!() };
        assert_eq!(c.value(), 7);
        assert_eq!(CrdtState::decode(CrdtKind::Counter, &ab.encode()).unwrap(), ab);
        // Below zero wraps as the engine's counter does.
        let mut d = PnCounter::default();
        d.add(ReplicaId(1), 2u64.wrapping_neg()).unwrap();
        assert_eq!(d.value(), 2u64.wrapping_neg());
    }

    #[test]
    fn set_add_wins_over_a_concurrent_remove_and_an_observed_remove_holds() {
        let mut a = OrSet::default();
        a.add(b"x", v(1, 1));
        let mut b = a.clone();
        // b removes x having seen a's add; a re-adds x concurrently.
        b.remove(b"x", v(2, 2));
        a.add(b"x", v(3, 1));
        let (sa, sb) = (CrdtState::Set(a.clone()), CrdtState::Set(b.clone()));
        let CrdtState::Set(j) = sa.join(&sb).unwrap() else { panic!() };
        assert!(j.contains(b"x"));
        assert_eq!(CrdtState::Set(j.clone()), sb.join(&sa).unwrap());
        // Without the concurrent add, the remove wins.
        let mut c = OrSet::default();
        c.add(b"y", v(1, 1));
        let mut d = c.clone();
        d.remove(b"y", v(2, 2));
        let CrdtState::Set(j) = CrdtState::Set(c).join(&CrdtState::Set(d)).unwrap() else { panic!() };
        assert!(!j.contains(b"y"));
        let enc = CrdtState::Set(a).encode();
        assert_eq!(CrdtState::decode(CrdtKind::Set, &enc).unwrap().encode(), enc);
    }

    #[test]
    fn fields_keep_the_newest_write_of_each_field() {
        let mut a = FieldMap::default();
        a.set(b"title", Some(b"\"A\"".to_vec()), v(5, 1));
        let mut b = FieldMap::default();
        b.set(b"title", Some(b"\"B\"".to_vec()), v(4, 2));
        b.set(b"body", Some(b"1".to_vec()), v(4, 2));
        let j = CrdtState::Fields(a).join(&CrdtState::Fields(b)).unwrap();
        let CrdtState::Fields(f) = &j else { panic!() };
        assert_eq!(f.get(b"title"), Some(&b"\"A\""[..]));
        assert_eq!(f.get(b"body"), Some(&b"1"[..]));
        assert_eq!(CrdtState::decode(CrdtKind::Fields, &j.encode()).unwrap(), j);
    }

    /// The worked example of `sync/FORMAT.md`, "Merge states".
    #[test]
    fn counter_worked_example_matches_format_doc() {
        let mut c = PnCounter::default();
        c.add(ReplicaId(1), 5).unwrap();
        let mut expected = vec![0xc7, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5];
        expected.extend_from_slice(&[0; 15 + 16]);
        assert_eq!(CrdtState::Counter(c).encode(), expected);
    }

    #[test]
    fn malformed_states_are_refused() {
        let mut s = OrSet::default();
        s.add(b"a", v(1, 1));
        s.add(b"b", v(2, 1));
        let good = CrdtState::Set(s).encode();
        assert!(CrdtState::decode(CrdtKind::Counter, &good).is_err());
        assert!(CrdtState::decode(CrdtKind::Set, &good[..good.len() - 1]).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(CrdtState::decode(CrdtKind::Set, &trailing).is_err());
        let mut magic = good.clone();
        magic[0] = 0;
        assert!(CrdtState::decode(CrdtKind::Set, &magic).is_err());
        // A dot newer than the context: seen[1] = 2 lowered to 1.
        let mut newer = good;
        newer[3 + 4 + 8] = 1;
        assert!(CrdtState::decode(CrdtKind::Set, &newer).is_err());
        assert!(CrdtState::decode(CrdtKind::Counter, &[STATE_MAGIC, 1, 1, 255, 255, 255, 255]).is_err());
    }
}
