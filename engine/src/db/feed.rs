//! The change feed: [`Db::changes_since`] hands out every committed change
//! after a seqno, in commit order, read back from the WAL.
//!
//! Its sources are the WAL segments the manifest lists: the live ones (at or
//! above the log number, still needed by recovery) and, with
//! `Options::change_feed_retention`, the change-feed segments (tag 16 of
//! `compaction/FORMAT.md`): segments a flush retired that are kept, still
//! encrypted under their own file keys, until they fall out of the retention.
//! Each kept segment is recorded with its seqno range, its length and when it
//! was retired, so a missing one is reported (never skipped) and one of
//! another length (replaced, or an older copy put back) is refused.
//!
//! The feed never hands out a gap: it checks that each change it yields
//! follows the one before it by exactly one seqno, and where one does not (a
//! segment no longer kept, a batch written straight to a table, writes a crash
//! lost under a relaxed sync policy) it yields
//! [`Error::ChangeFeedTruncated`] naming the oldest seqno it can hand out
//! after the gap, and ends. It never yields past the seqno that was visible
//! when it was made. `docs/design.md`, "The change feed", has the decisions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use compaction::{FeedSegment, VersionEdit};
use index::{SeqNo, ValueKind};

use crate::db::inner::{wal_name, wal_segment_is_blank, Inner};
use crate::db::open::read_wal_segment;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::format::{decode_batch, RecordOp};

/// What a change did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The key was set to [`Change::value`].
    Put,
    /// The key was deleted ([`Change::value`] is empty).
    Delete,
    /// [`Change::value`] is a merge operand for the key.
    Merge,
    /// Every key from [`Change::key`] (included) to [`Change::value`]
    /// (excluded) of [`Change::keyspace`] was deleted: a range delete.
    DeleteRange,
}

/// One committed change, as [`Db::changes_since`] hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// The keyspace the change belongs to (0: the default keyspace).
    pub keyspace: u32,
    /// The key.
    pub key: Vec<u8>,
    /// What the change did.
    pub kind: ChangeKind,
    /// The value (a put), the operand (a merge), empty for a delete.
    pub value: Vec<u8>,
    /// The change's sequence number: resume after it with `changes_since(seqno)`.
    pub seqno: u64,
}

/// The changes after a seqno, oldest first; see [`Db::changes_since`].
///
/// Each item is one change, or the error that ends the feed (after an error,
/// `None` for good). The feed reads one WAL segment at a time.
pub struct ChangeFeed {
    inner: Arc<Inner>,
    /// Segments still to read, oldest first.
    sources: VecDeque<Source>,
    /// Changes of the segment read last, not yet handed out.
    ready: VecDeque<Change>,
    /// The error to hand out once `ready` is empty.
    failed: Option<Error>,
    /// The seqno the next change must carry.
    next: SeqNo,
    /// The seqno visible when the feed was made: nothing after it is handed out.
    upper: SeqNo,
    done: bool,
}

/// A WAL segment the feed reads.
#[derive(Debug, Clone, Copy)]
struct Source {
    number: u64,
    /// Every batch of it is at or above this seqno (0: not recorded).
    first_seqno: SeqNo,
    /// For a kept segment, what the manifest recorded of it.
    kept: Option<FeedSegment>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed").field("next", &self.next).field("upper", &self.upper).finish_non_exhaustive()
    }
}

impl Db {
    /// Every committed change after seqno `after`, in commit order, up to the
    /// seqno visible now (call again with the last seqno handed out to go on:
    /// the feed is resumable from any seqno it handed out, across flushes,
    /// compactions and restarts). `changes_since(0)` asks for every change
    /// since the store was created.
    ///
    /// Changes are read back from the WAL: the live segments and, with
    /// [`Options::change_feed_retention`](crate::Options::change_feed_retention),
    /// the retired segments it keeps. Fails with
    /// [`Error::ChangeFeedTruncated`] when the changes right after `after` are
    /// no longer kept; the feed also yields that error, then ends, where it
    /// meets a gap further on. A read-only handle reads the feed up to what it
    /// sees (refresh to see more).
    pub fn changes_since(&self, after: u64) -> Result<ChangeFeed> {
        self.inner.changes_since(after)
    }
}

impl Inner {
    pub(crate) fn changes_since(self: &Arc<Self>, after: SeqNo) -> Result<ChangeFeed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let upper = self.pipeline.visible.load(Ordering::Acquire);
        let next = after.saturating_add(1);
        let sources = self.feed_sources();
        let mut feed = ChangeFeed {
            inner: Arc::clone(self),
            sources: VecDeque::new(),
            ready: VecDeque::new(),
            failed: None,
            next,
            upper,
            done: next > upper,
        };
        if feed.done {
            return Ok(feed);
        }
        // The oldest seqno any source can hold; one recorded above `next` is a gap.
        let oldest = sources.first().map_or(upper.saturating_add(1), |s| s.first_seqno);
        if oldest > next {
            return Err(Error::ChangeFeedTruncated { requested: after, oldest_available: oldest });
        }
        // Sources that end at or before `next` need not be read.
        let starts: Vec<SeqNo> = sources.iter().map(|s| s.first_seqno).collect();
        for (i, source) in sources.into_iter().enumerate() {
            let end = source.kept.map(|k| k.end_seqno).or_else(|| starts.get(i + 1).copied().filter(|&f| f != 0));
            if end.is_some_and(|end| end <= next) {
                continue;
            }
            feed.sources.push_back(source);
        }
        Ok(feed)
    }

    /// The segments the manifest lists, kept and live, oldest first. The live
    /// listing is read first: an edit that retires a segment records it as kept
    /// before it drops it from the live listing, so a segment moving between
    /// the two is found in one of them (or both) and never in neither.
    fn feed_sources(&self) -> Vec<Source> {
        let live = self.versions.wal_segments();
        let kept = self.versions.feed_segments();
        let mut all: BTreeMap<u64, Source> = BTreeMap::new();
        match live {
            Some(live) => {
                for (number, segment) in live {
                    all.insert(number, Source { number, first_seqno: segment.first_seqno, kept: None });
                }
            }
            None => {
                // A store of format 1 opened read-only lists no segment: those on
                // disk at or above the log number are live, their seqnos unknown.
                let log_number = self.versions.log_number();
                for name in self.vfs.list_dir(&self.dir).unwrap_or_default() {
                    if let Some(number) = crypto::names::wal_number(&name).filter(|&n| n >= log_number) {
                        all.insert(number, Source { number, first_seqno: 0, kept: None });
                    }
                }
            }
        }
        for (number, segment) in kept {
            all.insert(number, Source { number, first_seqno: segment.first_seqno, kept: Some(segment) });
        }
        all.into_values().collect()
    }

    /// The changes of segment `source` after `next` and up to `upper`, checked
    /// to follow one another without a gap. Returns them, the seqno the next
    /// change must carry, and the error that ends the feed if one was met (a
    /// gap, or the segment gone: the changes before it are still returned).
    fn read_feed_segment(&self, source: &Source, mut next: SeqNo, upper: SeqNo, following: Option<SeqNo>) -> FeedRead {
        let mut read = FeedRead { changes: VecDeque::new(), next, end: None };
        let name = wal_name(source.number);
        let path = wal::segment_path(&self.dir, source.number);
        let requested = next - 1;
        let gone = |oldest: Option<SeqNo>| Error::ChangeFeedTruncated {
            requested,
            oldest_available: oldest.unwrap_or(upper.saturating_add(1)),
        };
        let after_gap = source.kept.map(|k| k.end_seqno).or(following);
        let size = match self.vfs.file_size(&path) {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                read.end = Some(gone(after_gap));
                return read;
            }
            Err(source) => {
                read.end = Some(Error::Io { file: name, source });
                return read;
            }
        };
        if let Some(kept) = source.kept.filter(|k| k.bytes != size) {
            read.end = Some(Error::Corruption {
                file: name,
                offset: 0,
                reason: format!(
                    "this change-feed segment is {size} bytes long, but the manifest recorded {} when it was retired: \
                     it was replaced or rolled back (run `synapsed-storage verify`)",
                    kept.bytes
                ),
            });
            return read;
        }
        let records = match wal_segment_is_blank(&*self.vfs, &self.dir, source.number) {
            Ok(true) => Vec::new(),
            Ok(false) => match read_wal_segment(&self.vfs, &path, source.number, &self.keys, true) {
                Ok(log) => log.records,
                Err(_) if !self.segment_still_listed(source.number) => {
                    // Released (it aged out, or a rotation ended its retention) or
                    // retired while it was read, and removed or overwritten.
                    read.end = Some(gone(after_gap));
                    return read;
                }
                Err(e) => {
                    read.end = Some(self.reader_error(e.into()));
                    return read;
                }
            },
            Err(Error::Io { source: e, .. }) if e.kind() == std::io::ErrorKind::NotFound => {
                read.end = Some(gone(after_gap));
                return read;
            }
            Err(e) => {
                read.end = Some(e);
                return read;
            }
        };
        let mut offset = crypto::FILE_HEADER_LEN as u64;
        for record in &records {
            let batch = match decode_batch(record, &name, offset) {
                Ok(batch) => batch,
                Err(e) => {
                    read.end = Some(e);
                    break;
                }
            };
            let at = offset;
            offset += (wal::FRAME_HEADER_LEN + record.len() + crypto::TAG_LEN) as u64;
            if let Some(kept) = source.kept.filter(|k| batch.first_seqno < k.first_seqno || batch.last_seqno() >= k.end_seqno) {
                read.end = Some(Error::Corruption {
                    file: name.clone(),
                    offset: at,
                    reason: format!(
                        "batch at seqnos {}..={} outside {}..{}, the range the manifest recorded for this change-feed segment",
                        batch.first_seqno,
                        batch.last_seqno(),
                        kept.first_seqno,
                        kept.end_seqno
                    ),
                });
                break;
            }
            if batch.last_seqno() < next {
                continue;
            }
            if batch.first_seqno > upper {
                break;
            }
            if batch.first_seqno > next {
                read.end = Some(Error::ChangeFeedTruncated { requested: next - 1, oldest_available: batch.first_seqno });
                break;
            }
            for (i, op) in batch.ops.iter().enumerate() {
                let seqno = batch.first_seqno + i as u64;
                if seqno < next {
                    continue;
                }
                match change_of(op, seqno) {
                    Ok(change) => read.changes.push_back(change),
                    Err(e) => {
                        read.end = Some(e);
                        read.next = next;
                        return read;
                    }
                }
                next = seqno + 1;
            }
        }
        read.next = next;
        read
    }

    /// Whether the manifest still lists WAL segment `number`, live or kept. A
    /// read-only handle reads the writer's manifest afresh (without installing
    /// it): its own view is as old as its last refresh. A manifest sealed under
    /// an epoch this handle's keyring lacks was written by a key rotation since,
    /// which retired every segment this handle lists and released every kept
    /// one. When the manifest cannot be read otherwise, the segment is taken as
    /// listed, so a read error is reported as it is.
    fn segment_still_listed(&self, number: u64) -> bool {
        let listed = |versions: &compaction::VersionSet| {
            versions.feed_segments().contains_key(&number) || versions.wal_segments().is_none_or(|live| live.contains_key(&number))
        };
        if !self.options.read_only {
            return listed(&self.versions);
        }
        match compaction::VersionSet::recover_read_only(&self.vfs, &self.dir, &self.keys, self.options.num_levels) {
            Ok(versions) => listed(&versions),
            Err(e) => !matches!(Error::from(e), Error::MissingEpoch { .. }),
        }
    }

    /// Adds to `edit`, which moves the log number past some WAL segments, a
    /// change-feed record for each of them when a retention is configured: a
    /// flush then retires them from recovery but keeps them for the feed. A
    /// segment whose first seqno is unknown (adopted from a store of format 1),
    /// or that was never written, is not kept.
    pub(crate) fn keep_retired_for_feed(&self, edit: &mut VersionEdit) {
        if self.options.change_feed_retention.is_none() || self.options.read_only {
            return;
        }
        let Some(new_log) = edit.log_number else { return };
        let Some(mut listed) = self.versions.wal_segments() else { return };
        listed.extend(edit.wal_segments.iter().copied());
        let now = now_ms();
        let numbers: Vec<u64> = listed.range(..new_log).map(|(n, _)| *n).collect();
        for number in numbers {
            let Some(first_seqno) = listed.get(&number).map(|s| s.first_seqno).filter(|&f| f != 0) else { continue };
            let following = listed.range(number + 1..).next().map(|(_, s)| s.first_seqno);
            let Some(end_seqno) = following.filter(|&e| e >= first_seqno) else { continue };
            let Ok(bytes) = self.vfs.file_size(&wal::segment_path(&self.dir, number)) else { continue };
            if bytes <= crypto::FILE_HEADER_LEN as u64 {
                continue;
            }
            edit.feed_segments.push((number, FeedSegment { first_seqno, end_seqno, bytes, retired_at_ms: now }));
        }
    }

    /// The kept segments that fall out of the retention now: older than its age
    /// limit, or (oldest first) beyond its byte limit; all of them without a
    /// retention (a store opened without one no longer keeps any).
    fn expired_feed_segments(&self) -> Vec<u64> {
        let kept = self.versions.feed_segments();
        let Some(retention) = self.options.change_feed_retention else { return kept.into_keys().collect() };
        let now = now_ms();
        let mut total: u64 = kept.values().map(|s| s.bytes).sum();
        let mut expired = Vec::new();
        for (number, segment) in &kept {
            let too_old = retention
                .max_age
                .is_some_and(|age| now.saturating_sub(segment.retired_at_ms) > u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            let too_big = retention.max_bytes.is_some_and(|max| total > max);
            if !(too_old || too_big) {
                break;
            }
            total -= segment.bytes;
            expired.push(*number);
        }
        expired
    }

    /// Releases the kept segments that fell out of the retention, in one
    /// manifest edit; the removal of obsolete files then removes them. A
    /// failure leaves them kept until the next attempt.
    pub(crate) fn expire_feed_segments(&self) {
        if self.options.read_only {
            return;
        }
        let expired = self.expired_feed_segments();
        if expired.is_empty() {
            return;
        }
        if let Err(e) = self.versions.log_and_apply(VersionEdit { feed_released: expired, ..VersionEdit::default() }) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "releasing change-feed segments failed");
        }
    }

    /// Whether a kept segment has fallen out of the retention since the last
    /// removal (an idle store's segments age out without any flush).
    pub(crate) fn feed_expiry_due(&self) -> bool {
        !self.options.read_only && self.failure.first.lock().is_none() && !self.expired_feed_segments().is_empty()
    }

    /// Ends the retention of every kept segment (a key rotation: they are sealed
    /// under epochs it destroys). The caller then removes them.
    pub(crate) fn release_all_feed_segments(&self) -> Result<()> {
        let kept: Vec<u64> = self.versions.feed_segments().into_keys().collect();
        if kept.is_empty() {
            return Ok(());
        }
        self.versions.log_and_apply(VersionEdit { feed_released: kept, ..VersionEdit::default() })?;
        Ok(())
    }

    /// The numbers of the kept segments, which obsolete-file removal keeps.
    pub(crate) fn kept_feed_segments(&self) -> impl Iterator<Item = u64> {
        self.versions.feed_segments().into_keys()
    }
}

/// What reading one segment gave the feed.
struct FeedRead {
    changes: VecDeque<Change>,
    next: SeqNo,
    end: Option<Error>,
}

impl Iterator for ChangeFeed {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Some(Ok(change));
            }
            if let Some(e) = self.failed.take() {
                self.done = true;
                return Some(Err(e));
            }
            if self.done || self.next > self.upper {
                self.done = true;
                return None;
            }
            if self.inner.closed.load(Ordering::Acquire) {
                self.failed = Some(Error::Closed);
                continue;
            }
            let Some(source) = self.sources.pop_front() else {
                // Changes up to `upper` are in no segment: written straight to a
                // table, or in segments no longer kept.
                self.failed = Some(Error::ChangeFeedTruncated {
                    requested: self.next - 1,
                    oldest_available: self.upper.saturating_add(1),
                });
                continue;
            };
            if source.first_seqno > self.next {
                self.failed = Some(Error::ChangeFeedTruncated { requested: self.next - 1, oldest_available: source.first_seqno });
                continue;
            }
            let following = self.sources.front().map(|s| s.first_seqno).filter(|&f| f != 0);
            let read = self.inner.read_feed_segment(&source, self.next, self.upper, following);
            self.ready = read.changes;
            self.next = read.next;
            self.failed = read.end;
        }
    }
}

impl std::iter::FusedIterator for ChangeFeed {}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<ChangeFeed>();
};

/// The change `op` at `seqno` made.
fn change_of(op: &RecordOp, seqno: SeqNo) -> Result<Change> {
    let kind = match op.kind {
        // A range delete: key is its start (inclusive), value its end (exclusive).
        _ if op.range_delete => ChangeKind::DeleteRange,
        ValueKind::Put => ChangeKind::Put,
        ValueKind::Delete => ChangeKind::Delete,
        ValueKind::Merge => ChangeKind::Merge,
        other => return Err(Error::Unsupported(format!("a change of kind {other:?} at seqno {seqno}"))),
    };
    Ok(Change { keyspace: op.keyspace, key: op.key.clone(), kind, value: op.value.clone(), seqno })
}

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
