//! The messages of a sync session and their byte form (`sync/FORMAT.md`).
//!
//! Every frame is one message: a magic byte, the protocol version, a type byte
//! and the body. Decoding checks every length against what is left of the
//! frame before allocating, caps keys and values, and refuses trailing bytes,
//! so a malformed or oversized frame is an error before anything in it is
//! used.

use crate::fingerprint::{Fingerprint, FINGERPRINT_BYTES};
use crate::hlc::Hlc;
use crate::version::{Entry, ReplicaId, Version, VERSION_BYTES};

/// First byte of every frame.
pub const FRAME_MAGIC: u8 = 0x5C;
/// The protocol version this build speaks. Version 3 names a child node in a
/// `check` without its fingerprint (only the root check carries one) and
/// writes every length and count as a LEB128 varint; version 2 sent a
/// `Reply`'s children in groups of one node's 16. A peer of another version
/// is refused at its first frame with an error naming both versions.
pub const PROTOCOL_VERSION: u8 = 3;
/// Longest key a frame may carry.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Longest value a frame may carry.
pub const MAX_VALUE_BYTES: usize = 8 << 20;
/// Longest keyspace name (as the engine's).
pub const MAX_KEYSPACE_NAME_BYTES: usize = 255;
/// Longest error message.
pub const MAX_MESSAGE_BYTES: usize = 4 << 10;
/// Most scope items a session may name.
pub const MAX_SCOPES: usize = 256;

/// Type bytes.
pub mod kind {
    /// [`super::Message::Hello`].
    pub const HELLO: u8 = 1;
    /// [`super::Message::HelloAck`].
    pub const HELLO_ACK: u8 = 2;
    /// [`super::Message::Round`].
    pub const ROUND: u8 = 3;
    /// [`super::Message::Reply`].
    pub const REPLY: u8 = 4;
    /// [`super::Message::Done`].
    pub const DONE: u8 = 5;
    /// [`super::Message::Error`].
    pub const ERROR: u8 = 6;
}

/// What part of a store a session covers: a keyspace (by name; `None` in a
/// request: every replicated keyspace) and a key prefix (empty: every key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// Keyspace name; `None` for any keyspace.
    pub keyspace: Option<String>,
    /// Key prefix.
    pub prefix: Vec<u8>,
}

impl Scope {
    /// Every key of every replicated keyspace.
    pub fn everything() -> Scope {
        Scope { keyspace: None, prefix: Vec::new() }
    }

    /// Every key of keyspace `name`.
    pub fn keyspace(name: &str) -> Scope {
        Scope { keyspace: Some(name.to_owned()), prefix: Vec::new() }
    }

    /// Keys starting with `prefix` in keyspace `name`.
    pub fn prefix(name: &str, prefix: &[u8]) -> Scope {
        Scope { keyspace: Some(name.to_owned()), prefix: prefix.to_vec() }
    }

    /// Whether key `key` of keyspace `keyspace` is in this scope.
    pub fn contains(&self, keyspace: &str, key: &[u8]) -> bool {
        self.keyspace.as_deref().is_none_or(|k| k == keyspace) && key.starts_with(&self.prefix)
    }

    /// The keys in both scopes, if any.
    pub fn intersect(&self, other: &Scope) -> Option<Scope> {
        let keyspace = match (&self.keyspace, &other.keyspace) {
            (Some(a), Some(b)) if a != b => return None,
            (Some(a), _) | (None, Some(a)) => Some(a.clone()),
            (None, None) => None,
        };
        let prefix = if self.prefix.starts_with(&other.prefix) {
            self.prefix.clone()
        } else if other.prefix.starts_with(&self.prefix) {
            other.prefix.clone()
        } else {
            return None;
        };
        Some(Scope { keyspace, prefix })
    }

    /// Whether every key of `self` is in `other`.
    pub fn within(&self, other: &Scope) -> bool {
        (other.keyspace.is_none() || other.keyspace == self.keyspace) && self.prefix.starts_with(&other.prefix)
    }
}

/// A node of one scope's fingerprint tree and its fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCheck {
    /// Index into the session's agreed scopes.
    pub scope: u16,
    /// Tree level (0 = root).
    pub level: u8,
    /// Node index within the level.
    pub index: u32,
    /// The sender's fingerprint of the node. In a `Round`'s checks only the
    /// root's (level 0) travels: a child's is left out (the initiator has
    /// already compared it with the responder's) and decodes as the empty
    /// fingerprint.
    pub fingerprint: Fingerprint,
}

/// The sender's entries (key and version) under one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Index into the session's agreed scopes.
    pub scope: u16,
    /// Tree level.
    pub level: u8,
    /// Node index within the level.
    pub index: u32,
    /// The keys under the node with their versions.
    pub items: Vec<(Vec<u8>, Version)>,
}

/// A key of one scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRef {
    /// Index into the session's agreed scopes.
    pub scope: u16,
    /// The key.
    pub key: Vec<u8>,
}

/// An entry of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedEntry {
    /// Index into the session's agreed scopes.
    pub scope: u16,
    /// The entry.
    pub entry: Entry,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Initiator: who it is, its clock, what it asks to sync.
    Hello {
        /// Sender's replica id.
        replica: ReplicaId,
        /// Sender's clock.
        hlc: Hlc,
        /// Requested scopes.
        scopes: Vec<Scope>,
    },
    /// Responder: who it is, its clock, the scopes granted (each naming a
    /// keyspace) with its root fingerprint of each.
    HelloAck {
        /// Sender's replica id.
        replica: ReplicaId,
        /// Sender's clock.
        hlc: Hlc,
        /// Granted scopes and the responder's root fingerprint of each.
        scopes: Vec<(Scope, Fingerprint)>,
    },
    /// Initiator: nodes to compare, entries it sends, keys it wants, entries
    /// of the last reply it refused.
    Round {
        /// Nodes to compare.
        checks: Vec<NodeCheck>,
        /// Entries for the responder.
        push: Vec<ScopedEntry>,
        /// Keys the initiator wants.
        want: Vec<KeyRef>,
        /// Entries of the last reply refused by the initiator's rules.
        refused: Vec<KeyRef>,
    },
    /// Responder: the children of nodes that differed, summaries of small
    /// nodes that differed, the entries wanted, the pushed entries refused.
    Reply {
        /// Child fingerprints of differing nodes.
        children: Vec<NodeCheck>,
        /// Entry summaries of small differing nodes.
        summaries: Vec<NodeSummary>,
        /// Entries asked for.
        entries: Vec<ScopedEntry>,
        /// Pushed entries refused by the responder's rules.
        refused: Vec<KeyRef>,
    },
    /// Initiator: the session is complete.
    Done,
    /// Either side: the session ends with this error.
    Error {
        /// [`ErrorCode`] byte.
        code: u8,
        /// Human-readable reason.
        message: String,
    },
}

/// Error codes of [`Message::Error`].
pub mod error_code {
    /// The frame could not be decoded.
    pub const MALFORMED: u8 = 1;
    /// A message arrived out of turn or referred to something not agreed.
    pub const PROTOCOL: u8 = 2;
    /// The peer's clock is beyond the drift bound.
    pub const CLOCK_SKEW: u8 = 3;
    /// The store failed.
    pub const STORE: u8 = 4;
    /// Nothing the peer asked for may be synced with it.
    pub const NOT_ALLOWED: u8 = 5;
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte of the frame where decoding stopped.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError { offset: self.pos, reason: reason.into() })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        match end.and_then(|e| self.bytes.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.fail(format!("{n} bytes needed, {} left", self.bytes.len() - self.pos.min(self.bytes.len()))),
        }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b.first().copied().unwrap_or(0), b.get(1).copied().unwrap_or(0)]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self, max: usize, what: &str) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        if len > max {
            return self.fail(format!("{what} of {len} bytes, more than the {max}-byte limit"));
        }
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self, max: usize, what: &str) -> Result<String, DecodeError> {
        let start = self.pos;
        let b = self.bytes(max, what)?;
        String::from_utf8(b).map_err(|_| DecodeError { offset: start, reason: format!("{what} is not UTF-8") })
    }

    /// An item count, bounded by the bytes left (each item takes at least
    /// `min_item_bytes`), so a forged count cannot make us allocate.
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let left = self.bytes.len().saturating_sub(self.pos);
        if n.saturating_mul(min_item_bytes.max(1)) > left {
            return self.fail(format!("{n} items announced, at most {} fit in the {left} bytes left", left / min_item_bytes.max(1)));
        }
        Ok(n)
    }

    fn version(&mut self) -> Result<Version, DecodeError> {
        let b = self.take(VERSION_BYTES)?;
        match Version::from_bytes(b) {
            Some(v) => Ok(v),
            None => self.fail("short version"),
        }
    }

    fn fingerprint(&mut self) -> Result<Fingerprint, DecodeError> {
        let b = self.take(FINGERPRINT_BYTES)?;
        match Fingerprint::from_bytes(b) {
            Some(f) => Ok(f),
            None => self.fail("short fingerprint"),
        }
    }

    fn scope(&mut self) -> Result<Scope, DecodeError> {
        let keyspace = match self.u8()? {
            0 => None,
            1 => Some(self.string(MAX_KEYSPACE_NAME_BYTES, "keyspace name")?),
            other => return self.fail(format!("keyspace flag {other}")),
        };
        let prefix = self.bytes(MAX_KEY_BYTES, "prefix")?;
        Ok(Scope { keyspace, prefix })
    }

    fn check(&mut self) -> Result<NodeCheck, DecodeError> {
        let scope = self.u16()?;
        let level = self.u8()?;
        let index = self.u32()?;
        let fingerprint = if level == 0 { self.fingerprint()? } else { Fingerprint::default() };
        Ok(NodeCheck { scope, level, index, fingerprint })
    }

    /// LEB128 unsigned, at most 10 bytes, no overflow.
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for i in 0..10u32 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return self.fail("a varint past 64 bits");
            }
            out |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        self.fail("a varint longer than 10 bytes")
    }

    /// One node's children (`sync/FORMAT.md`, "child group").
    fn child_group(&mut self) -> Result<Vec<NodeCheck>, DecodeError> {
        let scope = self.u16()?;
        let level = self.u8()?;
        let first = self.u32()?;
        let listed = self.u16()?;
        let nonempty = self.u16()?;
        if first % CHILD_GROUP != 0 || listed == 0 || nonempty & !listed != 0 {
            return self.fail("a malformed child group");
        }
        let mut out = Vec::new();
        for i in 0..CHILD_GROUP {
            if listed & (1 << i) == 0 {
                continue;
            }
            let fingerprint = if nonempty & (1 << i) != 0 {
                let b = self.take(16)?;
                let sum = u128::from_le_bytes(b.try_into().map_err(|_| DecodeError { offset: self.pos, reason: "short sum".into() })?);
                Fingerprint { sum, count: self.varint()? }
            } else {
                Fingerprint::default()
            };
            out.push(NodeCheck { scope, level, index: first.saturating_add(i), fingerprint });
        }
        Ok(out)
    }

    fn key_ref(&mut self) -> Result<KeyRef, DecodeError> {
        let scope = self.u16()?;
        let key = self.bytes(MAX_KEY_BYTES, "key")?;
        Ok(KeyRef { scope, key })
    }

    fn entry(&mut self) -> Result<ScopedEntry, DecodeError> {
        let scope = self.u16()?;
        let key = self.bytes(MAX_KEY_BYTES, "key")?;
        let version = self.version()?;
        let prev = self.version()?;
        let value = match self.u8()? {
            0 => None,
            1 => Some(self.bytes(MAX_VALUE_BYTES, "value")?),
            other => return self.fail(format!("entry kind {other}")),
        };
        Ok(ScopedEntry { scope, entry: Entry { key, version, prev, value } })
    }

    fn list<T>(&mut self, min_item_bytes: usize, mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>) -> Result<Vec<T>, DecodeError> {
        let n = self.count(min_item_bytes)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// A child check: scope u16, level u8, node index u32 (a root check adds its
/// fingerprint).
const CHECK_BYTES: usize = 2 + 1 + 4;
/// Children per group: a node's fan-out.
const CHILD_GROUP: u32 = 16;
/// scope u16, level u8, first index u32, listed u16, non-empty u16.
const CHILD_GROUP_MIN_BYTES: usize = 2 + 1 + 4 + 2 + 2;
const KEY_REF_MIN_BYTES: usize = 2 + 1;
const ENTRY_MIN_BYTES: usize = 2 + 1 + 2 * VERSION_BYTES + 1;
const SCOPE_MIN_BYTES: usize = 1 + 1;

/// Decodes one frame.
pub fn decode(frame: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes: frame, pos: 0 };
    if r.u8()? != FRAME_MAGIC {
        return Err(DecodeError { offset: 0, reason: "not a sync frame (magic)".into() });
    }
    let version = r.u8()?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError { offset: 1, reason: format!("protocol version {version}, this build speaks {PROTOCOL_VERSION}") });
    }
    let msg = match r.u8()? {
        kind::HELLO => {
            let replica = ReplicaId(r.u64()?);
            let hlc = Hlc(r.u64()?);
            let scopes = r.list(SCOPE_MIN_BYTES, Reader::scope)?;
            if scopes.len() > MAX_SCOPES {
                return r.fail(format!("{} scopes, more than {MAX_SCOPES}", scopes.len()));
            }
            Message::Hello { replica, hlc, scopes }
        }
        kind::HELLO_ACK => {
            let replica = ReplicaId(r.u64()?);
            let hlc = Hlc(r.u64()?);
            let scopes = r.list(SCOPE_MIN_BYTES + FINGERPRINT_BYTES, |r| Ok((r.scope()?, r.fingerprint()?)))?;
            if scopes.len() > MAX_SCOPES {
                return r.fail(format!("{} scopes, more than {MAX_SCOPES}", scopes.len()));
            }
            Message::HelloAck { replica, hlc, scopes }
        }
        kind::ROUND => {
            let checks = r.list(CHECK_BYTES, Reader::check)?;
            let push = r.list(ENTRY_MIN_BYTES, Reader::entry)?;
            let want = r.list(KEY_REF_MIN_BYTES, Reader::key_ref)?;
            let refused = r.list(KEY_REF_MIN_BYTES, Reader::key_ref)?;
            Message::Round { checks, push, want, refused }
        }
        kind::REPLY => {
            let groups = r.list(CHILD_GROUP_MIN_BYTES, Reader::child_group)?;
            let children = groups.into_iter().flatten().collect();
            let summaries = r.list(2 + 1 + 4 + 1, |r| {
                let scope = r.u16()?;
                let level = r.u8()?;
                let index = r.u32()?;
                let items = r.list(1 + VERSION_BYTES, |r| Ok((r.bytes(MAX_KEY_BYTES, "key")?, r.version()?)))?;
                Ok(NodeSummary { scope, level, index, items })
            })?;
            let entries = r.list(ENTRY_MIN_BYTES, Reader::entry)?;
            let refused = r.list(KEY_REF_MIN_BYTES, Reader::key_ref)?;
            Message::Reply { children, summaries, entries, refused }
        }
        kind::DONE => Message::Done,
        kind::ERROR => {
            let code = r.u8()?;
            let message = r.string(MAX_MESSAGE_BYTES, "error message")?;
            Message::Error { code, message }
        }
        other => return Err(DecodeError { offset: 2, reason: format!("unknown message type {other}") }),
    };
    if r.pos != frame.len() {
        return r.fail(format!("{} trailing bytes", frame.len() - r.pos));
    }
    Ok(msg)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_scope(out: &mut Vec<u8>, s: &Scope) {
    match &s.keyspace {
        None => out.push(0),
        Some(k) => {
            out.push(1);
            put_bytes(out, k.as_bytes());
        }
    }
    put_bytes(out, &s.prefix);
}

fn put_check(out: &mut Vec<u8>, c: &NodeCheck) {
    out.extend_from_slice(&c.scope.to_le_bytes());
    out.push(c.level);
    out.extend_from_slice(&c.index.to_le_bytes());
    if c.level == 0 {
        out.extend_from_slice(&c.fingerprint.to_bytes());
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A `Reply`'s children as groups: each group is a run of children of one
/// scope and level within one aligned block of 16 node indexes, ascending.
fn put_children(out: &mut Vec<u8>, children: &[NodeCheck]) {
    let mut groups: Vec<&[NodeCheck]> = Vec::new();
    let mut start = 0;
    for i in 1..=children.len() {
        let split = match (children.get(i - 1), children.get(i)) {
            (Some(a), Some(b)) => a.scope != b.scope || a.level != b.level || a.index / CHILD_GROUP != b.index / CHILD_GROUP || b.index <= a.index,
            _ => true,
        };
        if split {
            groups.push(children.get(start..i).unwrap_or_default());
            start = i;
        }
    }
    put_list(out, &groups, |o, g| {
        let Some(head) = g.first() else { return };
        let first = head.index - head.index % CHILD_GROUP;
        let (mut listed, mut nonempty) = (0u16, 0u16);
        for c in g.iter() {
            let bit = 1u16 << (c.index - first);
            listed |= bit;
            if c.fingerprint != Fingerprint::default() {
                nonempty |= bit;
            }
        }
        o.extend_from_slice(&head.scope.to_le_bytes());
        o.push(head.level);
        o.extend_from_slice(&first.to_le_bytes());
        o.extend_from_slice(&listed.to_le_bytes());
        o.extend_from_slice(&nonempty.to_le_bytes());
        for c in g.iter().filter(|c| c.fingerprint != Fingerprint::default()) {
            o.extend_from_slice(&c.fingerprint.sum.to_le_bytes());
            put_varint(o, c.fingerprint.count);
        }
    });
}

fn put_key_ref(out: &mut Vec<u8>, k: &KeyRef) {
    out.extend_from_slice(&k.scope.to_le_bytes());
    put_bytes(out, &k.key);
}

fn put_entry(out: &mut Vec<u8>, e: &ScopedEntry) {
    out.extend_from_slice(&e.scope.to_le_bytes());
    put_bytes(out, &e.entry.key);
    out.extend_from_slice(&e.entry.version.to_bytes());
    out.extend_from_slice(&e.entry.prev.to_bytes());
    match &e.entry.value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_bytes(out, v);
        }
    }
}

fn put_list<T>(out: &mut Vec<u8>, items: &[T], mut put: impl FnMut(&mut Vec<u8>, &T)) {
    put_varint(out, items.len() as u64);
    for i in items {
        put(out, i);
    }
}

/// Bytes an entry takes in a frame (to fill frames up to a budget).
pub fn entry_bytes(e: &Entry) -> usize {
    ENTRY_MIN_BYTES - 1 + varint_len(e.key.len()) + e.key.len() + e.value.as_ref().map_or(0, |v| varint_len(v.len()) + v.len())
}

/// Bytes a key reference takes in a frame.
pub fn key_ref_bytes(k: &KeyRef) -> usize {
    KEY_REF_MIN_BYTES - 1 + varint_len(k.key.len()) + k.key.len()
}

/// Bytes a child node check takes in a frame (a root check adds the
/// 24-byte fingerprint).
pub const NODE_CHECK_BYTES: usize = CHECK_BYTES;

/// Bytes of `n` as a LEB128 varint.
fn varint_len(n: usize) -> usize {
    let mut len = 1;
    let mut n = n >> 7;
    while n > 0 {
        len += 1;
        n >>= 7;
    }
    len
}

/// Encodes one message as a frame.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = vec![FRAME_MAGIC, PROTOCOL_VERSION];
    match msg {
        Message::Hello { replica, hlc, scopes } => {
            out.push(kind::HELLO);
            out.extend_from_slice(&replica.0.to_le_bytes());
            out.extend_from_slice(&hlc.0.to_le_bytes());
            put_list(&mut out, scopes, put_scope);
        }
        Message::HelloAck { replica, hlc, scopes } => {
            out.push(kind::HELLO_ACK);
            out.extend_from_slice(&replica.0.to_le_bytes());
            out.extend_from_slice(&hlc.0.to_le_bytes());
            put_list(&mut out, scopes, |o, (s, f)| {
                put_scope(o, s);
                o.extend_from_slice(&f.to_bytes());
            });
        }
        Message::Round { checks, push, want, refused } => {
            out.push(kind::ROUND);
            put_list(&mut out, checks, put_check);
            put_list(&mut out, push, put_entry);
            put_list(&mut out, want, put_key_ref);
            put_list(&mut out, refused, put_key_ref);
        }
        Message::Reply { children, summaries, entries, refused } => {
            out.push(kind::REPLY);
            put_children(&mut out, children);
            put_list(&mut out, summaries, |o, s| {
                o.extend_from_slice(&s.scope.to_le_bytes());
                o.push(s.level);
                o.extend_from_slice(&s.index.to_le_bytes());
                put_list(o, &s.items, |o, (k, v)| {
                    put_bytes(o, k);
                    o.extend_from_slice(&v.to_bytes());
                });
            });
            put_list(&mut out, entries, put_entry);
            put_list(&mut out, refused, put_key_ref);
        }
        Message::Done => out.push(kind::DONE),
        Message::Error { code, message } => {
            out.push(kind::ERROR);
            out.push(*code);
            let m = message.as_bytes();
            let mut cut = m.len().min(MAX_MESSAGE_BYTES);
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            put_bytes(&mut out, m.get(..cut).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn samples() -> Vec<Message> {
        let v = Version { hlc: Hlc(7), replica: ReplicaId(3) };
        let e = Entry { key: b"k".to_vec(), version: v, prev: Version::default(), value: Some(b"val".to_vec()) };
        let t = Entry { key: b"t".to_vec(), version: v, prev: v, value: None };
        vec![
            Message::Hello { replica: ReplicaId(1), hlc: Hlc(2), scopes: vec![Scope::everything(), Scope::prefix("notes", b"a/")] },
            Message::HelloAck { replica: ReplicaId(1), hlc: Hlc(2), scopes: vec![(Scope::keyspace("notes"), Fingerprint { sum: 9, count: 1 })] },
            Message::Round {
                checks: vec![
                    NodeCheck { scope: 0, level: 0, index: 0, fingerprint: Fingerprint { sum: 1, count: 2 } },
                    NodeCheck { scope: 0, level: 1, index: 3, fingerprint: Fingerprint::default() },
                ],
                push: vec![ScopedEntry { scope: 0, entry: e.clone() }, ScopedEntry { scope: 1, entry: t }],
                want: vec![KeyRef { scope: 0, key: b"w".to_vec() }],
                refused: vec![],
            },
            Message::Reply {
                children: children(),
                summaries: vec![NodeSummary { scope: 0, level: 4, index: 9, items: vec![(b"k".to_vec(), v)] }],
                entries: vec![ScopedEntry { scope: 0, entry: e }],
                refused: vec![KeyRef { scope: 0, key: b"r".to_vec() }],
            },
            Message::Done,
            Message::Error { code: error_code::PROTOCOL, message: "out of turn".into() },
        ]
    }

    /// A node's 16 children (some empty), two of another block, one of another scope.
    fn children() -> Vec<NodeCheck> {
        let mut out: Vec<NodeCheck> = (32..48)
            .map(|i| {
                let fingerprint = if i % 4 == 0 { Fingerprint::default() } else { Fingerprint { sum: u128::from(i) << 100, count: u64::from(i) } };
                NodeCheck { scope: 0, level: 2, index: i, fingerprint }
            })
            .collect();
        out[5].fingerprint = Fingerprint { sum: 7, count: 0 };
        out.push(NodeCheck { scope: 0, level: 2, index: 3, fingerprint: Fingerprint { sum: 1, count: u64::MAX } });
        out.push(NodeCheck { scope: 0, level: 2, index: 1, fingerprint: Fingerprint::default() });
        out.push(NodeCheck { scope: 1, level: 2, index: 1, fingerprint: Fingerprint { sum: 2, count: 1 } });
        out
    }

    #[test]
    fn children_travel_in_groups_with_empty_ones_and_small_counts_compact() {
        let grouped = encode(&Message::Reply { children: children()[..16].to_vec(), summaries: vec![], entries: vec![], refused: vec![] });
        // 3 header, 1 count, 11 group header; 4 empty children take nothing,
        // 12 others 16 + a 1-byte count; then three empty lists.
        assert_eq!(grouped.len(), 3 + 1 + 11 + 12 * 17 + 3);
        let old = 16 * (CHECK_BYTES + FINGERPRINT_BYTES);
        assert!(grouped.len() < old * 2 / 3, "{} vs {old}", grouped.len());
        // A non-empty bit outside the listed ones, a misaligned block, a
        // varint past 64 bits: malformed.
        let group = |listed: u16, nonempty: u16, first: u32, tail: &[u8]| {
            let mut f = vec![FRAME_MAGIC, PROTOCOL_VERSION, kind::REPLY, 1, 0, 0, 2];
            f.extend_from_slice(&first.to_le_bytes());
            f.extend_from_slice(&listed.to_le_bytes());
            f.extend_from_slice(&nonempty.to_le_bytes());
            f.extend_from_slice(tail);
            f.extend_from_slice(&[0; 3]);
            decode(&f)
        };
        assert!(group(1, 0, 16, &[]).is_ok());
        assert!(group(1, 2, 16, &[]).is_err());
        assert!(group(1, 0, 17, &[]).is_err());
        let mut big = vec![0u8; 16];
        big.extend_from_slice(&[0xff; 9]);
        big.push(0x02);
        assert!(group(1, 1, 16, &big).unwrap_err().reason.contains("varint"));
        // A version 1 or 2 peer's frame: refused, naming both versions.
        for old in [1u8, 2] {
            let err = decode(&[FRAME_MAGIC, old, kind::DONE]).unwrap_err();
            assert!(err.reason.contains(&format!("protocol version {old}, this build speaks 3")), "{err}");
        }
    }

    #[test]
    fn only_a_root_check_carries_its_fingerprint() {
        let fp = Fingerprint { sum: 5, count: 3 };
        let round = |checks: Vec<NodeCheck>| Message::Round { checks, push: vec![], want: vec![], refused: vec![] };
        let root = NodeCheck { scope: 0, level: 0, index: 0, fingerprint: fp };
        let child = NodeCheck { scope: 1, level: 3, index: 4095, fingerprint: fp };
        // 3 header, 1 count, the check, three empty lists.
        assert_eq!(encode(&round(vec![root])).len(), 3 + 1 + 7 + 24 + 3);
        assert_eq!(encode(&round(vec![child])).len(), 3 + 1 + 7 + 3);
        assert_eq!(decode(&encode(&round(vec![root, child]))), Ok(round(vec![root, NodeCheck { fingerprint: Fingerprint::default(), ..child }])));
    }

    #[test]
    fn lengths_and_counts_are_varints() {
        let v = Version { hlc: Hlc(7), replica: ReplicaId(3) };
        for (klen, vlen) in [(0usize, 0usize), (127, 128), (128, 16_383), (16_384, 70_000)] {
            let entry = Entry { key: vec![b'k'; klen], version: v, prev: v, value: Some(vec![b'v'; vlen]) };
            let m = Message::Reply { children: vec![], summaries: vec![], entries: vec![ScopedEntry { scope: 0, entry: entry.clone() }], refused: vec![] };
            let f = encode(&m);
            // 3 header, 1 + 1 + 1 list counts, then the entry.
            assert_eq!(f.len(), 3 + 1 + 1 + 1 + 1 + entry_bytes(&entry), "{klen} {vlen}");
            let len = |n: usize| if n < 128 { 1 } else if n < 16_384 { 2 } else { 3 };
            assert_eq!(entry_bytes(&entry), 2 + len(klen) + klen + 32 + 1 + len(vlen) + vlen);
            assert_eq!(decode(&f), Ok(m));
            let k = KeyRef { scope: 0, key: entry.key };
            assert_eq!(key_ref_bytes(&k), 2 + len(klen) + klen);
        }
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(decode(&encode(&m)), Ok(m));
        }
    }

    #[test]
    fn every_cut_and_every_extra_byte_is_refused() {
        for m in samples() {
            let f = encode(&m);
            for cut in 0..f.len() {
                assert!(decode(&f[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            let mut longer = f.clone();
            longer.push(0);
            assert!(decode(&longer).is_err());
        }
    }

    #[test]
    fn forged_counts_and_lengths_are_refused_before_allocating() {
        // A Round announcing 2^64-1 checks in a 13-byte frame.
        let mut f = vec![FRAME_MAGIC, PROTOCOL_VERSION, kind::ROUND];
        f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        let err = decode(&f).unwrap_err();
        assert!(err.reason.contains("items announced"), "{err}");
        // A key longer than the limit (no checks, one pushed entry).
        let mut f = vec![FRAME_MAGIC, PROTOCOL_VERSION, kind::ROUND, 0, 1, 0, 0];
        put_varint(&mut f, (MAX_KEY_BYTES + 1) as u64);
        f.extend_from_slice(&[0; 40]);
        let err = decode(&f).unwrap_err();
        assert!(err.reason.contains("limit"), "{err}");
        // A length past 64 bits.
        let mut f = vec![FRAME_MAGIC, PROTOCOL_VERSION, kind::ROUND, 0, 1, 0, 0];
        f.extend_from_slice(&[0xff; 10]);
        f.extend_from_slice(&[0; 40]);
        assert!(decode(&f).unwrap_err().reason.contains("varint"));
        assert!(decode(&[0x00, PROTOCOL_VERSION, kind::DONE]).is_err());
        assert!(decode(&[FRAME_MAGIC, 9, kind::DONE]).unwrap_err().reason.contains("protocol version 9"));
        assert!(decode(&[FRAME_MAGIC, PROTOCOL_VERSION, 77]).is_err());
    }

    #[test]
    fn scopes_intersect() {
        let all = Scope::everything();
        let notes = Scope::keyspace("notes");
        let a = Scope::prefix("notes", b"a/");
        assert_eq!(all.intersect(&a), Some(a.clone()));
        assert_eq!(notes.intersect(&a), Some(a.clone()));
        assert_eq!(Scope::prefix("notes", b"b/").intersect(&a), None);
        assert_eq!(Scope::keyspace("other").intersect(&a), None);
        assert!(a.within(&notes) && a.within(&all) && !notes.within(&a));
        assert!(a.contains("notes", b"a/x") && !a.contains("notes", b"b") && !a.contains("x", b"a/x"));
    }
}

#[cfg(test)]
mod format_doc {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The worked example of `sync/FORMAT.md`.
    #[test]
    fn hello_worked_example_matches_format_doc() {
        let hello = Message::Hello { replica: ReplicaId(1), hlc: Hlc::new(1000, 2), scopes: vec![Scope::prefix("notes", b"a/")] };
        let expected: Vec<u8> = [
            &[0x5c, 0x03, 0x01][..],
            &[1, 0, 0, 0, 0, 0, 0, 0],
            &[0x02, 0x00, 0xe8, 0x03, 0, 0, 0, 0],
            &[1],
            &[1],
            &[5],
            b"notes",
            &[2],
            b"a/",
        ]
        .concat();
        assert_eq!(encode(&hello), expected);
        assert_eq!(expected.len(), 30);
        assert_eq!(encode(&Message::Done), [0x5c, 0x03, 0x05]);
    }

    /// The `Round` worked example of `sync/FORMAT.md`: the root check, a
    /// child check, one wanted key.
    #[test]
    fn round_worked_example_matches_format_doc() {
        let round = Message::Round {
            checks: vec![
                NodeCheck { scope: 0, level: 0, index: 0, fingerprint: Fingerprint { sum: 1, count: 2 } },
                NodeCheck { scope: 0, level: 2, index: 33, fingerprint: Fingerprint::default() },
            ],
            push: vec![],
            want: vec![KeyRef { scope: 0, key: b"a/x".to_vec() }],
            refused: vec![],
        };
        let expected: Vec<u8> = [
            &[0x5c, 0x03, 0x03][..],
            &[2],
            &[0, 0, 0, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[2, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 2, 33, 0, 0, 0],
            &[0],
            &[1],
            &[0, 0, 3],
            b"a/x",
            &[0],
        ]
        .concat();
        assert_eq!(encode(&round), expected);
        assert_eq!(expected.len(), 51);
        assert_eq!(decode(&expected), Ok(round));
    }
}
