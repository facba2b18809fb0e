//! One sync session between two replicas, above a [`FrameChannel`].
//!
//! The initiator drives; the responder answers. The state machine:
//!
//! ```text
//! initiator                                  responder
//!   Hello(replica, hlc, requested scopes) ──▶
//!                                       ◀── HelloAck(replica, hlc, granted scopes + roots)
//!   [roots equal: Done, end]
//!   Round(checks, push, want, refused)    ──▶ compare, apply pushed entries (version
//!                                             check, write rights), read wanted ones
//!                                       ◀── Reply(children, summaries, entries, refused)
//!   ... (a Round per reply, while anything is left to compare, send or fetch)
//!   Done                                  ──▶ end
//! ```
//!
//! Either side may send `Error` and end instead. A received frame is decoded
//! whole and checked before anything in it is applied, so a malformed,
//! oversized or out-of-turn frame ends the session with nothing of it applied;
//! each frame's entries are applied together by [`SyncStore::apply`], so a
//! cut at any byte leaves each store with whole frames applied, and a rerun
//! finishes the job (applying an entry twice changes nothing).

use std::collections::{BTreeMap, VecDeque};

use crate::channel::{ChannelError, FrameChannel, MAX_FRAME_BYTES};
use crate::fingerprint::{nodes_at, Fingerprint, FANOUT, LEAF_LEVEL};
use crate::hlc::{ClockSkew, Hlc};
use crate::proto::{self, error_code, DecodeError, KeyRef, Message, NodeCheck, NodeSummary, Scope, ScopedEntry};
use crate::version::{Entry, ReplicaId, Version};

/// An error of the store under a session.
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A node with at most this many entries on the responder's side is answered
/// with its entries' keys and versions instead of its children.
pub const SUMMARY_MAX_ENTRIES: u64 = 16;
/// Most node checks in one Round.
pub const MAX_CHECKS_PER_ROUND: usize = 1024;
/// Most wanted keys in one Round.
pub const MAX_WANTS_PER_ROUND: usize = 1024;
/// Entry bytes a frame is filled up to (at least one entry goes in any frame).
pub const ENTRY_BUDGET_BYTES: usize = 4 << 20;

/// What a store offers a session. Scopes given to it always name a keyspace.
pub trait SyncStore {
    /// This replica's id.
    fn replica_id(&self) -> ReplicaId;
    /// A fresh clock reading.
    fn now(&mut self) -> Result<Hlc, StoreError>;
    /// Takes in the peer's clock (refused beyond the drift bound).
    fn observe(&mut self, hlc: Hlc) -> Result<(), ClockSkew>;
    /// Names of the replicated keyspaces.
    fn replicated_keyspaces(&mut self) -> Result<Vec<String>, StoreError>;
    /// Fingerprints of nodes `first..first + count` of `level` of `scope`'s tree.
    fn node_fingerprints(&mut self, scope: &Scope, level: u8, first: u32, count: u32) -> Result<Vec<Fingerprint>, StoreError>;
    /// Keys and versions of `scope`'s entries under a node.
    fn node_entries(&mut self, scope: &Scope, level: u8, index: u32) -> Result<Vec<(Vec<u8>, Version)>, StoreError>;
    /// The entry (value or versioned tombstone) of `key`, if any.
    fn read_entry(&mut self, scope: &Scope, key: &[u8]) -> Result<Option<Entry>, StoreError>;
    /// Applies received entries, each with its version check, all in one
    /// atomic write: an entry older than what the store holds changes
    /// nothing. Returns what happened to each.
    fn apply(&mut self, entries: &[(&Scope, &Entry)]) -> Result<Vec<Applied>, StoreError>;
    /// Told the peer's replica id once the hello names it, before any entry
    /// is applied (a store may record where the entries it applies came from).
    fn begin_session(&mut self, peer: ReplicaId) {
        let _ = peer;
    }
    /// Whether concurrent writes in `scope` go to a resolver, which may keep
    /// the older one: the initiator then exchanges both entries of a key
    /// whose versions differ, instead of only the newer one.
    fn has_resolver(&mut self, scope: &Scope) -> bool {
        let _ = scope;
        false
    }
}

/// What [`SyncStore::apply`] did with one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Newer than what the store held: taken.
    Taken,
    /// Taken, and it was concurrent with the local version (a conflict).
    TakenConflict,
    /// Not newer (or lost to the resolver): the store keeps its version.
    Kept,
    /// Kept, and it was concurrent with the local version (a conflict).
    KeptConflict,
    /// Refused (a clock beyond the drift bound, or a keyspace not replicated here).
    Refused,
}

/// What a peer may do with this store: the scopes it may read (receive from
/// here) and write (send here). The receiving side enforces both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rights {
    /// Scopes the peer may read.
    pub read: Vec<Scope>,
    /// Scopes the peer may write.
    pub write: Vec<Scope>,
}

impl Rights {
    /// Every replicated keyspace, both ways.
    pub fn full() -> Rights {
        Rights { read: vec![Scope::everything()], write: vec![Scope::everything()] }
    }

    fn may_write(&self, keyspace: &str, key: &[u8]) -> bool {
        self.write.iter().any(|s| s.contains(keyspace, key))
    }
}

/// Parameters of one session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Scopes asked for (initiator; empty: everything). Selective sync.
    pub scopes: Vec<Scope>,
    /// What the peer may read and write here.
    pub rights: Rights,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { scopes: Vec::new(), rights: Rights::full() }
    }
}

impl SessionOptions {
    /// Sets the scopes asked for.
    pub fn with_scopes(mut self, scopes: Vec<Scope>) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the peer's rights.
    pub fn with_rights(mut self, rights: Rights) -> Self {
        self.rights = rights;
        self
    }
}

/// Counters of one session (one side's view).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Entries sent to the peer.
    pub entries_sent: u64,
    /// Entries received from the peer (taken or not).
    pub entries_received: u64,
    /// Received entries that changed this store.
    pub entries_applied: u64,
    /// Frame bytes sent.
    pub bytes_sent: u64,
    /// Frame bytes received.
    pub bytes_received: u64,
    /// Round trips after the hello.
    pub rounds: u64,
    /// Received entries concurrent with the local version.
    pub conflicts: u64,
    /// The peer's entries this side refused (rights, clock).
    pub refused_writes: u64,
    /// This side's entries the peer refused.
    pub refused_by_peer: u64,
    /// Peer's replica id.
    pub peer: ReplicaId,
    /// Whether the session covered every keyspace this side replicates,
    /// whole (no prefix, nothing left out by rights or selection).
    pub full: bool,
}

/// Why a session ended without completing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The channel failed or was cut.
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
    /// The peer closed the channel before the session was complete.
    #[error("the peer closed the channel mid-session")]
    Closed,
    /// A frame could not be decoded.
    #[error("{0}")]
    Malformed(#[from] DecodeError),
    /// A frame broke the protocol's rules.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer ended the session with an error.
    #[error("the peer ended the session (code {code}): {message}")]
    Peer {
        /// The peer's error code.
        code: u8,
        /// The peer's message.
        message: String,
    },
    /// The peer's clock is beyond the drift bound.
    #[error("{0}")]
    ClockSkew(#[from] ClockSkew),
    /// Nothing asked for may be synced with this peer.
    #[error("nothing asked for may be synced with this peer")]
    NotAllowed,
    /// The store failed.
    #[error("store: {0}")]
    Store(StoreError),
}

struct Link<'c> {
    channel: &'c mut dyn FrameChannel,
    stats: SyncStats,
}

impl Link<'_> {
    fn send(&mut self, msg: &Message) -> Result<(), SessionError> {
        let frame = proto::encode(msg);
        if frame.len() > MAX_FRAME_BYTES {
            return Err(SessionError::Protocol(format!("a frame of {} bytes would pass the frame limit", frame.len())));
        }
        self.stats.bytes_sent += frame.len() as u64;
        self.channel.send(&frame)?;
        Ok(())
    }

    fn recv(&mut self) -> Result<Message, SessionError> {
        let frame = self.channel.recv()?.ok_or(SessionError::Closed)?;
        self.stats.bytes_received += frame.len() as u64;
        match proto::decode(&frame) {
            Ok(Message::Error { code, message }) => Err(SessionError::Peer { code, message }),
            Ok(m) => Ok(m),
            Err(e) => Err(SessionError::Malformed(e)),
        }
    }

    /// Ends the session with `err`, telling the peer first (best effort).
    fn fail<T>(&mut self, err: SessionError) -> Result<T, SessionError> {
        let code = match &err {
            SessionError::Malformed(_) => Some(error_code::MALFORMED),
            SessionError::Protocol(_) => Some(error_code::PROTOCOL),
            SessionError::ClockSkew(_) => Some(error_code::CLOCK_SKEW),
            SessionError::Store(_) => Some(error_code::STORE),
            SessionError::NotAllowed => Some(error_code::NOT_ALLOWED),
            _ => None,
        };
        if let Some(code) = code {
            let _ = self.send(&Message::Error { code, message: err.to_string() });
        }
        Err(err)
    }
}

fn store_err(e: StoreError) -> SessionError {
    SessionError::Store(e)
}

/// The scopes in both lists, without duplicates or scopes inside others.
fn intersect_all(a: &[Scope], b: &[Scope]) -> Vec<Scope> {
    let mut out: Vec<Scope> = a.iter().flat_map(|x| b.iter().filter_map(move |y| x.intersect(y))).collect();
    out.sort();
    out.dedup();
    let all = out.clone();
    out.retain(|s| !all.iter().any(|o| o != s && s.within(o)));
    out
}

fn scope_at(scopes: &[Scope], i: u16) -> Result<&Scope, SessionError> {
    scopes.get(usize::from(i)).ok_or_else(|| SessionError::Protocol(format!("scope {i} was not agreed")))
}

fn check_node(level: u8, index: u32) -> Result<(), SessionError> {
    if level > LEAF_LEVEL || index >= nodes_at(level) {
        return Err(SessionError::Protocol(format!("no node {index} at level {level}")));
    }
    Ok(())
}

/// Whether `scopes` are whole keyspaces covering all of `replicated`.
fn covers(scopes: &[Scope], replicated: &[String]) -> bool {
    scopes.iter().all(|s| s.prefix.is_empty())
        && replicated.iter().all(|k| scopes.iter().any(|s| s.keyspace.as_deref() == Some(k.as_str())))
}

fn keyspace_of(scope: &Scope) -> &str {
    scope.keyspace.as_deref().unwrap_or_default()
}

/// Applies the peer's entries (already checked to lie in their scopes),
/// refusing those outside its write rights; returns the refused keys.
fn receive(
    store: &mut dyn SyncStore,
    rights: &Rights,
    scopes: &[Scope],
    entries: &[ScopedEntry],
    stats: &mut SyncStats,
) -> Result<Vec<KeyRef>, SessionError> {
    let mut refused = Vec::new();
    let mut allowed: Vec<(&Scope, &Entry)> = Vec::new();
    let mut allowed_refs = Vec::new();
    for e in entries {
        let scope = scope_at(scopes, e.scope)?;
        if !scope.contains(keyspace_of(scope), &e.entry.key) {
            return Err(SessionError::Protocol("an entry outside its scope".into()));
        }
        stats.entries_received += 1;
        if rights.may_write(keyspace_of(scope), &e.entry.key) {
            allowed.push((scope, &e.entry));
            allowed_refs.push(KeyRef { scope: e.scope, key: e.entry.key.clone() });
        } else {
            refused.push(KeyRef { scope: e.scope, key: e.entry.key.clone() });
        }
    }
    if !allowed.is_empty() {
        let outcome = store.apply(&allowed).map_err(store_err)?;
        for (applied, key) in outcome.into_iter().zip(allowed_refs) {
            match applied {
                Applied::Taken => stats.entries_applied += 1,
                Applied::TakenConflict => {
                    stats.entries_applied += 1;
                    stats.conflicts += 1;
                }
                Applied::Kept => {}
                Applied::KeptConflict => stats.conflicts += 1,
                Applied::Refused => refused.push(key),
            }
        }
    }
    stats.refused_writes += refused.len() as u64;
    Ok(refused)
}

/// Runs the initiator's side of a session to completion.
pub fn initiate(store: &mut dyn SyncStore, channel: &mut dyn FrameChannel, options: &SessionOptions) -> Result<SyncStats, SessionError> {
    let mut link = Link { channel, stats: SyncStats::default() };
    match initiate_inner(store, &mut link, options) {
        Ok(()) => Ok(link.stats),
        Err(e) => link.fail(e),
    }
}

#[derive(Default)]
struct Queues {
    checks: VecDeque<NodeCheck>,
    push: VecDeque<KeyRef>,
    want: VecDeque<KeyRef>,
    refused: Vec<KeyRef>,
}

fn initiate_inner(store: &mut dyn SyncStore, link: &mut Link<'_>, options: &SessionOptions) -> Result<(), SessionError> {
    let requested = if options.scopes.is_empty() { vec![Scope::everything()] } else { options.scopes.clone() };
    let asked = intersect_all(&requested, &options.rights.read);
    if asked.is_empty() {
        return Err(SessionError::NotAllowed);
    }
    let hlc = store.now().map_err(store_err)?;
    link.send(&Message::Hello { replica: store.replica_id(), hlc, scopes: asked.clone() })?;
    let Message::HelloAck { replica, hlc, scopes: granted } = link.recv()? else {
        return Err(SessionError::Protocol("expected HelloAck".into()));
    };
    link.stats.peer = replica;
    store.observe(hlc)?;
    store.begin_session(replica);
    let mut scopes = Vec::with_capacity(granted.len());
    let mut q = Queues::default();
    for (i, (scope, root)) in granted.into_iter().enumerate() {
        if scope.keyspace.is_none() || !asked.iter().any(|a| scope.within(a)) {
            return Err(SessionError::Protocol("a granted scope that was not asked for".into()));
        }
        let index = u16::try_from(i).map_err(|_| SessionError::Protocol("too many scopes".into()))?;
        let mine = store.node_fingerprints(&scope, 0, 0, 1).map_err(store_err)?.first().copied().unwrap_or_default();
        if mine != root {
            q.checks.push_back(NodeCheck { scope: index, level: 0, index: 0, fingerprint: mine });
        }
        scopes.push(scope);
    }
    link.stats.full = covers(&scopes, &store.replicated_keyspaces().map_err(store_err)?);
    loop {
        let round = next_round(store, &scopes, &mut q)?;
        let Some((msg, wanted)) = round else {
            link.send(&Message::Done)?;
            return Ok(());
        };
        if let Message::Round { push, .. } = &msg {
            link.stats.entries_sent += push.len() as u64;
        }
        link.send(&msg)?;
        link.stats.rounds += 1;
        let Message::Reply { children, summaries, entries, refused } = link.recv()? else {
            return Err(SessionError::Protocol("expected Reply".into()));
        };
        link.stats.refused_by_peer += refused.len() as u64;
        // Check the whole reply before applying any of it.
        for c in &children {
            scope_at(&scopes, c.scope)?;
            check_node(c.level, c.index)?;
        }
        for s in &summaries {
            let scope = scope_at(&scopes, s.scope)?;
            check_node(s.level, s.index)?;
            if s.items.iter().any(|(k, _)| !scope.contains(keyspace_of(scope), k)) {
                return Err(SessionError::Protocol("a summary key outside its scope".into()));
            }
        }
        let mut answered = BTreeMap::new();
        for e in &entries {
            answered.insert(KeyRef { scope: e.scope, key: e.entry.key.clone() }, ());
        }
        q.refused = receive(store, &options.rights, &scopes, &entries, &mut link.stats)?;
        // Wanted keys a size-limited reply left out are asked again, as long
        // as each reply answers some.
        if !answered.is_empty() {
            for k in wanted.into_iter().filter(|k| !answered.contains_key(k)) {
                q.want.push_back(k);
            }
        }
        for c in children {
            let scope = scope_at(&scopes, c.scope)?;
            let mine = store.node_fingerprints(scope, c.level, c.index, 1).map_err(store_err)?.first().copied().unwrap_or_default();
            if mine == c.fingerprint {
                continue;
            }
            if c.fingerprint.count == 0 {
                for (key, _) in store.node_entries(scope, c.level, c.index).map_err(store_err)? {
                    q.push.push_back(KeyRef { scope: c.scope, key });
                }
            } else {
                q.checks.push_back(NodeCheck { fingerprint: mine, ..c });
            }
        }
        for s in summaries {
            diff_summary(store, &scopes, s, &mut q)?;
        }
    }
}

/// Compares the responder's entries under a node with ours: we want what is
/// missing or older here, and push what is missing or older there.
fn diff_summary(store: &mut dyn SyncStore, scopes: &[Scope], s: NodeSummary, q: &mut Queues) -> Result<(), SessionError> {
    let scope = scope_at(scopes, s.scope)?;
    let both = store.has_resolver(scope);
    let mut mine: BTreeMap<Vec<u8>, Version> = store.node_entries(scope, s.level, s.index).map_err(store_err)?.into_iter().collect();
    for (key, theirs) in s.items {
        match mine.remove(&key) {
            Some(v) if v == theirs => {}
            Some(v) if both => {
                let _ = v;
                q.push.push_back(KeyRef { scope: s.scope, key: key.clone() });
                q.want.push_back(KeyRef { scope: s.scope, key });
            }
            Some(v) if v > theirs => q.push.push_back(KeyRef { scope: s.scope, key }),
            _ => q.want.push_back(KeyRef { scope: s.scope, key }),
        }
    }
    for key in mine.into_keys() {
        q.push.push_back(KeyRef { scope: s.scope, key });
    }
    Ok(())
}

/// The next Round to send (and the keys it wants), or `None` when nothing is left.
#[allow(clippy::type_complexity)]
fn next_round(store: &mut dyn SyncStore, scopes: &[Scope], q: &mut Queues) -> Result<Option<(Message, Vec<KeyRef>)>, SessionError> {
    let take = q.checks.len().min(MAX_CHECKS_PER_ROUND);
    let checks: Vec<NodeCheck> = q.checks.drain(..take).collect();
    let mut push = Vec::new();
    let mut bytes = 0usize;
    while !(q.push.is_empty() || (!push.is_empty() && bytes >= ENTRY_BUDGET_BYTES)) {
        let Some(k) = q.push.pop_front() else { break };
        let scope = scope_at(scopes, k.scope)?;
        if let Some(entry) = store.read_entry(scope, &k.key).map_err(store_err)? {
            bytes += proto::entry_bytes(&entry);
            push.push(ScopedEntry { scope: k.scope, entry });
        }
    }
    let take = q.want.len().min(MAX_WANTS_PER_ROUND);
    let want: Vec<KeyRef> = q.want.drain(..take).collect();
    let refused = std::mem::take(&mut q.refused);
    if checks.is_empty() && push.is_empty() && want.is_empty() && refused.is_empty() {
        return Ok(None);
    }
    Ok(Some((Message::Round { checks, push, want: want.clone(), refused }, want)))
}

/// Runs the responder's side of a session to completion (the initiator's Done).
pub fn respond(store: &mut dyn SyncStore, channel: &mut dyn FrameChannel, options: &SessionOptions) -> Result<SyncStats, SessionError> {
    let mut link = Link { channel, stats: SyncStats::default() };
    match respond_inner(store, &mut link, options) {
        Ok(()) => Ok(link.stats),
        Err(e) => link.fail(e),
    }
}

fn respond_inner(store: &mut dyn SyncStore, link: &mut Link<'_>, options: &SessionOptions) -> Result<(), SessionError> {
    let Message::Hello { replica, hlc, scopes: asked } = link.recv()? else {
        return Err(SessionError::Protocol("expected Hello".into()));
    };
    link.stats.peer = replica;
    store.observe(hlc)?;
    store.begin_session(replica);
    let names = store.replicated_keyspaces().map_err(store_err)?;
    let replicated: Vec<Scope> = names.iter().map(|k| Scope::keyspace(k)).collect();
    let scopes = intersect_all(&intersect_all(&asked, &options.rights.read), &replicated);
    link.stats.full = covers(&scopes, &names);
    if scopes.is_empty() {
        return Err(SessionError::NotAllowed);
    }
    let mut granted = Vec::with_capacity(scopes.len());
    for s in &scopes {
        let root = store.node_fingerprints(s, 0, 0, 1).map_err(store_err)?.first().copied().unwrap_or_default();
        granted.push((s.clone(), root));
    }
    let hlc = store.now().map_err(store_err)?;
    link.send(&Message::HelloAck { replica: store.replica_id(), hlc, scopes: granted })?;
    loop {
        let (checks, push, want, refused) = match link.recv()? {
            Message::Done => return Ok(()),
            Message::Round { checks, push, want, refused } => (checks, push, want, refused),
            _ => return Err(SessionError::Protocol("expected Round or Done".into())),
        };
        link.stats.rounds += 1;
        link.stats.refused_by_peer += refused.len() as u64;
        for c in &checks {
            scope_at(&scopes, c.scope)?;
            check_node(c.level, c.index)?;
        }
        for k in &want {
            let scope = scope_at(&scopes, k.scope)?;
            if !scope.contains(keyspace_of(scope), &k.key) {
                return Err(SessionError::Protocol("a wanted key outside its scope".into()));
            }
        }
        let refused = receive(store, &options.rights, &scopes, &push, &mut link.stats)?;
        let mut children = Vec::new();
        let mut summaries = Vec::new();
        for c in checks {
            let scope = scope_at(&scopes, c.scope)?;
            let mine = store.node_fingerprints(scope, c.level, c.index, 1).map_err(store_err)?.first().copied().unwrap_or_default();
            // Only a root check carries the initiator's fingerprint; a
            // child was named because the initiator found it differing from
            // ours in the last Reply.
            if c.level == 0 && mine == c.fingerprint {
                continue;
            }
            if c.level == LEAF_LEVEL || mine.count <= SUMMARY_MAX_ENTRIES {
                let items = store.node_entries(scope, c.level, c.index).map_err(store_err)?;
                summaries.push(NodeSummary { scope: c.scope, level: c.level, index: c.index, items });
            } else {
                let level = c.level + 1;
                let first = c.index * FANOUT;
                let fps = store.node_fingerprints(scope, level, first, FANOUT).map_err(store_err)?;
                for (i, fingerprint) in (first..).zip(fps) {
                    children.push(NodeCheck { scope: c.scope, level, index: i, fingerprint });
                }
            }
        }
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        for k in want {
            if !entries.is_empty() && bytes >= ENTRY_BUDGET_BYTES {
                break;
            }
            let scope = scope_at(&scopes, k.scope)?;
            if let Some(entry) = store.read_entry(scope, &k.key).map_err(store_err)? {
                bytes += proto::entry_bytes(&entry);
                entries.push(ScopedEntry { scope: k.scope, entry });
            }
        }
        link.stats.entries_sent += entries.len() as u64;
        link.send(&Message::Reply { children, summaries, entries, refused })?;
    }
}
